/* lm-apply's target side: changes pending. Consecutive changes of one
 * kind to one table wait here and go out together: a run of inserts as
 * pipelined INSERTs or, once long, as a COPY the rows stream into; updates
 * (of one column set) and deletes as one UPDATE ... FROM unnest() or
 * DELETE ... USING unnest() per batch of up to --batch-rows keys. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "target_int.h"

/* A run of inserts into one table becomes a COPY from this many rows on:
 * opening one costs about three round trips (pipeline sync, COPY start,
 * COPY end), which pipelined INSERTs (~140k rows/s) would spend on about a
 * hundred rows. */
#define COPY_MIN_ROWS 100

static void arrays_reset(apply_target *t, uint32_t n)
{
    if (t->pend.narrays < n) {
        t->pend.arrays = lm_realloc(t->pend.arrays, n * sizeof(lm_buf));
        memset(t->pend.arrays + t->pend.narrays, 0, (n - t->pend.narrays) * sizeof(lm_buf));
        t->pend.narrays = n;
    }
    for (uint32_t i = 0; i < t->pend.narrays; i++)
        t->pend.arrays[i].len = 0;
}

static void arr_add(lm_buf *b, const lm_value *v)
{
    lm_buf_u8(b, b->len == 0 ? '{' : ',');
    if (v->kind == 'n') {
        lm_buf_puts(b, "NULL");
        return;
    }
    lm_buf_reserve(b, v->len + 2);
    lm_buf_u8(b, '"');
    for (uint32_t i = 0; i < v->len; i++) {
        uint8_t ch = v->data[i];
        if (ch == '"' || ch == '\\')
            lm_buf_u8(b, '\\');
        lm_buf_u8(b, ch);
    }
    lm_buf_u8(b, '"');
}

static uint64_t hash_key(const lm_tuple *tup, const tabinfo *ti)
{
    uint64_t h = 1469598103934665603ULL;
    for (uint32_t k = 0; k < ti->nkey; k++) {
        const lm_value *v = &tup->cols[ti->key[k]];
        h ^= v->len + 0x9e37u;
        h *= 1099511628211ULL;
        for (uint32_t i = 0; i < v->len; i++) {
            h ^= v->data[i];
            h *= 1099511628211ULL;
        }
    }
    return h ? h : 1;
}

/* false if the key is in the batch already (or the set is full) */
static bool key_add(apply_target *t, uint64_t h)
{
    size_t mask;
    if (t->pend.keycap < t->lim.batch_rows * 2) {
        size_t cap = 64;
        while (cap < t->lim.batch_rows * 2)
            cap *= 2;
        free(t->pend.keyhash);
        t->pend.keyhash = calloc(cap, sizeof(uint64_t));
        if (!t->pend.keyhash)
            lm_fatal(LM_EXIT_FAILURE, "out of memory");
        t->pend.keycap = cap;
    }
    mask = t->pend.keycap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (t->pend.keyhash[i] == 0) {
            t->pend.keyhash[i] = h;
            return true;
        }
        if (t->pend.keyhash[i] == h)
            return false;
    }
}

static void copy_escape(lm_buf *b, const uint8_t *p, uint32_t n)
{
    lm_buf_reserve(b, (size_t)n + 16);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t ch = p[i];
        const char *esc = NULL;
        switch (ch) {
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        }
        if (esc) {
            lm_buf_puts(b, esc);
        } else {
            if (b->len == b->cap)
                lm_buf_reserve(b, 64);
            b->data[b->len++] = ch;
        }
    }
}

/* One cell of t->pend.rowbuf (kind byte, u32 length, bytes: see the insert
 * path that keeps them): its kind and length, a pointer to its bytes; *p
 * moves past it. */
static const uint8_t *row_cell(const uint8_t **p, char *kind, uint32_t *len)
{
    const uint8_t *data;
    *kind = (char)**p;
    memcpy(len, *p + 1, 4);
    data = *p + 5;
    *p = data + *len;
    return data;
}

/* Append the kept rows of the run as COPY text to t->pend.copybuf. */
static void rows_to_copy(apply_target *t, tabinfo *ti)
{
    const uint8_t *p = t->pend.rowbuf.data, *end = p + t->pend.rowbuf.len;
    while (p < end) {
        for (uint32_t i = 0; i < ti->natts; i++) {
            char kind;
            uint32_t len;
            const uint8_t *data = row_cell(&p, &kind, &len);
            if (i)
                lm_buf_u8(&t->pend.copybuf, '\t');
            if (kind == 'n')
                lm_buf_puts(&t->pend.copybuf, "\\N");
            else
                copy_escape(&t->pend.copybuf, data, len);
        }
        lm_buf_u8(&t->pend.copybuf, '\n');
    }
    t->pend.rowbuf.len = 0;
}

static void copy_send(apply_target *t)
{
    if (t->pend.copybuf.len == 0)
        return;
    if (PQputCopyData(t->conn, (const char *)t->pend.copybuf.data, (int)t->pend.copybuf.len) != 1)
        lm_fatal(LM_EXIT_SERVER, "could not send COPY data to the target: %s",
                 PQerrorMessage(t->conn));
    t->pend.copybuf.len = 0;
}

/* A run of inserts has grown long: open a COPY and let the rows stream into
 * it as they arrive, so the target works while the stream is read. */
static void copy_open(apply_target *t)
{
    lm_relentry *e = t->pend.rel;
    tabinfo *ti = tab_info(t, e);
    char *cols = tab_columns(ti, NULL);
    char *sql = lm_psprintf("COPY %s (%s) FROM STDIN", e->qualname, cols);
    PGresult *res;

    pl_exit(t);
    res = PQexec(t->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN)
        pl_fail(t, res, lm_psprintf("a COPY into %s", e->display));
    PQclear(res);
    t->pend.copying = true;
    rows_to_copy(t, ti);
    copy_send(t);
    free(sql);
    free(cols);
}

static void copy_close(apply_target *t)
{
    lm_relentry *e = t->pend.rel;
    PGresult *res;

    copy_send(t);
    if (PQputCopyEnd(t->conn, NULL) != 1)
        lm_fatal(LM_EXIT_SERVER, "could not send COPY data to the target: %s",
                 PQerrorMessage(t->conn));
    res = PQgetResult(t->conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        pl_fail(t, res, lm_psprintf("a COPY of %" PRIu64 " rows into %s", t->pend.rows, e->display));
    PQclear(res);
    while ((res = PQgetResult(t->conn)) != NULL)
        PQclear(res);
    t->st.rows_copy += t->pend.rows;
    t->st.stmts++;
    t->pend.copying = false;
}

static void flush_inserts(apply_target *t)
{
    lm_relentry *e = t->pend.rel;
    tabinfo *ti = tab_info(t, e);
    const uint8_t *p = t->pend.rowbuf.data;

    if (t->pend.copying) {
        copy_close(t);
        return;
    }
    /* a short run: pipelined INSERTs beat a COPY round trip */
    {
        lm_buf sql = {0};
        const char *name;
        char **vals = lm_malloc(sizeof(char *) * (ti->natts + 1));
        char desc[DESC_LEN];
        char *cols = tab_columns(ti, NULL);
        lm_buf_puts(&sql, "INSERT INTO ");
        lm_buf_put(&sql, e->qualname, strlen(e->qualname));
        if (ti->natts == 0) {
            /* no column in the stream (none, or every one generated) */
            lm_buf_puts(&sql, " DEFAULT VALUES");
        } else {
            lm_buf_puts(&sql, " (");
            lm_buf_put(&sql, cols, strlen(cols));
            lm_buf_puts(&sql, ")");
            if (ti->any_always)
                lm_buf_puts(&sql, " OVERRIDING SYSTEM VALUE");
            lm_buf_puts(&sql, " VALUES (");
            for (uint32_t i = 0; i < ti->natts; i++) {
                char tmp[16];
                snprintf(tmp, sizeof tmp, "%s$%u", i ? ", " : "", i + 1);
                lm_buf_put(&sql, tmp, strlen(tmp));
            }
            lm_buf_puts(&sql, ")");
        }
        name = tab_prepared(t, ti, "I", (char *)sql.data, (int)ti->natts);
        snprintf(desc, sizeof desc, "an insert into %s", e->display);
        for (uint64_t r = 0; r < t->pend.rows; r++) {
            for (uint32_t i = 0; i < ti->natts; i++) {
                char kind;
                uint32_t len;
                const uint8_t *data = row_cell(&p, &kind, &len);
                vals[i] = NULL;
                if (kind != 'n') {
                    vals[i] = lm_malloc(len + 1);
                    memcpy(vals[i], data, len);
                    vals[i][len] = '\0';
                }
            }
            tab_send(t, ti, name, (int)ti->natts, (const char *const *)vals, desc);
            for (uint32_t i = 0; i < ti->natts; i++)
                free(vals[i]);
            t->st.rows_insert++;
        }
        free(vals);
        free(cols);
        lm_buf_free(&sql);
    }
}

/* The key columns of a batched UPDATE or DELETE: "$1::text[], $2::text[]"
 * (the first unnest arguments) into args, "t.k1 = u.p1::type AND ..." into
 * where. */
static void unnest_keys(const tabinfo *ti, lm_buf *args, lm_buf *where)
{
    char tmp[64];
    for (uint32_t k = 0; k < ti->nkey; k++) {
        uint32_t c = ti->key[k];
        snprintf(tmp, sizeof tmp, "%s$%u::text[]", k ? ", " : "", k + 1);
        lm_buf_put(args, tmp, strlen(tmp));
        if (k)
            lm_buf_puts(where, " AND ");
        lm_buf_puts(where, "t.");
        lm_buf_put(where, ti->colq[c], strlen(ti->colq[c]));
        snprintf(tmp, sizeof tmp, " = u.p%u::", k + 1);
        lm_buf_put(where, tmp, strlen(tmp));
        lm_buf_put(where, ti->coltype[c], strlen(ti->coltype[c]));
    }
}

/* UPDATE ... FROM unnest(text arrays): one statement per batch */
static void flush_updates(apply_target *t)
{
    lm_relentry *e = t->pend.rel;
    tabinfo *ti = tab_info(t, e);
    char *key = lm_psprintf("UB:%s", t->pend.colmask);
    const char *name = tab_stmt(ti, key);
    const char **vals;
    uint32_t np = 0;
    char desc[DESC_LEN];

    if (!name) {
        lm_buf sql = {0}, from = {0}, where = {0};
        uint32_t n = 0;
        char tmp[64];
        lm_buf_puts(&sql, ti->routed ? "UPDATE " : "UPDATE ONLY ");
        lm_buf_put(&sql, e->qualname, strlen(e->qualname));
        lm_buf_puts(&sql, " AS t SET ");
        lm_buf_puts(&from, " FROM unnest(");
        unnest_keys(ti, &from, &where);
        n = ti->nkey;
        {
            bool first = true;
            for (uint32_t c = 0; c < ti->natts; c++) {
                if (t->pend.colmask[c] != '1')
                    continue;
                snprintf(tmp, sizeof tmp, ", $%u::text[]", n + 1);
                lm_buf_put(&from, tmp, strlen(tmp));
                if (!first)
                    lm_buf_puts(&sql, ", ");
                first = false;
                lm_buf_put(&sql, ti->colq[c], strlen(ti->colq[c]));
                snprintf(tmp, sizeof tmp, " = u.p%u::", n + 1);
                lm_buf_put(&sql, tmp, strlen(tmp));
                lm_buf_put(&sql, ti->coltype[c], strlen(ti->coltype[c]));
                n++;
            }
        }
        lm_buf_puts(&from, ") AS u(");
        for (uint32_t i = 0; i < n; i++) {
            snprintf(tmp, sizeof tmp, "%sp%u", i ? ", " : "", i + 1);
            lm_buf_put(&from, tmp, strlen(tmp));
        }
        lm_buf_puts(&from, ") WHERE ");
        lm_buf_put(&sql, from.data, from.len);
        lm_buf_put(&sql, where.data, where.len);
        lm_buf_u8(&sql, '\0');
        name = tab_prepared(t, ti, key, (char *)sql.data, (int)n);
        lm_buf_free(&sql);
        lm_buf_free(&from);
        lm_buf_free(&where);
    }
    vals = lm_malloc(sizeof(char *) * (t->pend.narrays + 1));
    for (uint32_t i = 0; i < t->pend.narrays && t->pend.arrays[i].len; i++) {
        lm_buf_u8(&t->pend.arrays[i], '}');
        lm_buf_u8(&t->pend.arrays[i], '\0');
        vals[np++] = (const char *)t->pend.arrays[i].data;
    }
    snprintf(desc, sizeof desc, "a batch of %" PRIu64 " updates of %s", t->pend.rows, e->display);
    tab_send(t, ti, name, (int)np, vals, desc);
    t->st.rows_update += t->pend.rows;
    free(vals);
    free(key);
}

static void flush_deletes(apply_target *t)
{
    lm_relentry *e = t->pend.rel;
    tabinfo *ti = tab_info(t, e);
    const char *name = tab_stmt(ti, "DB");
    const char **vals;
    char desc[DESC_LEN];

    if (!name) {
        lm_buf sql = {0}, where = {0};
        char tmp[64];
        lm_buf_puts(&sql, ti->routed ? "DELETE FROM " : "DELETE FROM ONLY ");
        lm_buf_put(&sql, e->qualname, strlen(e->qualname));
        lm_buf_puts(&sql, " AS t USING unnest(");
        unnest_keys(ti, &sql, &where);
        lm_buf_puts(&sql, ") AS u(");
        for (uint32_t k = 0; k < ti->nkey; k++) {
            snprintf(tmp, sizeof tmp, "%sp%u", k ? ", " : "", k + 1);
            lm_buf_put(&sql, tmp, strlen(tmp));
        }
        lm_buf_puts(&sql, ") WHERE ");
        lm_buf_put(&sql, where.data, where.len);
        lm_buf_u8(&sql, '\0');
        name = tab_prepared(t, ti, "DB", (char *)sql.data, (int)ti->nkey);
        lm_buf_free(&sql);
        lm_buf_free(&where);
    }
    vals = lm_malloc(sizeof(char *) * (ti->nkey + 1));
    for (uint32_t k = 0; k < ti->nkey; k++) {
        lm_buf_u8(&t->pend.arrays[k], '}');
        lm_buf_u8(&t->pend.arrays[k], '\0');
        vals[k] = (const char *)t->pend.arrays[k].data;
    }
    snprintf(desc, sizeof desc, "a batch of %" PRIu64 " deletes from %s", t->pend.rows, e->display);
    tab_send(t, ti, name, (int)ti->nkey, vals, desc);
    t->st.rows_delete += t->pend.rows;
    free(vals);
}

/* an empty batch of no kind (rel stays: a rolled back batch's) */
static void pend_clear(apply_target *t)
{
    t->pend.kind = PEND_NONE;
    t->pend.rows = 0;
    t->pend.rowbuf.len = 0;
    free(t->pend.colmask);
    t->pend.colmask = NULL;
    if (t->pend.keyhash)
        memset(t->pend.keyhash, 0, t->pend.keycap * sizeof(uint64_t));
}

void tgt_flush_pending(apply_target *t)
{
    if (t->pend.kind == PEND_NONE || t->pend.rows == 0) {
        t->pend.kind = PEND_NONE;
        return;
    }
    switch (t->pend.kind) {
    case PEND_INSERT: flush_inserts(t); break;
    case PEND_UPDATE: flush_updates(t); break;
    case PEND_DELETE: flush_deletes(t); break;
    default: break;
    }
    pend_clear(t);
    t->pend.rel = NULL;
}

static bool pend_matches(apply_target *t, enum pend_kind kind, lm_relentry *e)
{
    return t->pend.kind == kind && t->pend.rel == e && t->pend.generation == e->generation;
}

static void pend_start(apply_target *t, enum pend_kind kind, lm_relentry *e)
{
    tgt_flush_pending(t);
    t->pend.kind = kind;
    t->pend.rel = e;
    t->pend.generation = e->generation;
    t->pend.rows = 0;
}

void batch_insert(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *tup)
{
    if (!pend_matches(t, PEND_INSERT, e))
        pend_start(t, PEND_INSERT, e);
    for (uint32_t i = 0; i < tup->ncols; i++) {
        const lm_value *v = &tup->cols[i];
        if (v->kind == 'u' || v->kind == 'b')
            lm_fatal(LM_EXIT_CORRUPT, "insert into %s carries a%s value, which inserts never have",
                     e->display, v->kind == 'u' ? "n unchanged-TOAST" : " binary");
    }
    t->pend.rows++;
    if (t->pend.copying) {
        for (uint32_t i = 0; i < tup->ncols; i++) {
            const lm_value *v = &tup->cols[i];
            if (i)
                lm_buf_u8(&t->pend.copybuf, '\t');
            if (v->kind == 'n')
                lm_buf_puts(&t->pend.copybuf, "\\N");
            else
                copy_escape(&t->pend.copybuf, v->data, v->len);
        }
        lm_buf_u8(&t->pend.copybuf, '\n');
        if (t->pend.copybuf.len >= 65536)
            copy_send(t);
        return;
    }
    for (uint32_t i = 0; i < tup->ncols; i++) {
        const lm_value *v = &tup->cols[i];
        uint32_t len = v->kind == 'n' ? 0 : v->len;
        lm_buf_u8(&t->pend.rowbuf, (uint8_t)v->kind);
        lm_buf_put(&t->pend.rowbuf, &len, 4);
        lm_buf_put(&t->pend.rowbuf, v->data, len);
    }
    /* COPY needs a column list (the target's own default list may differ) */
    if (t->pend.rows >= COPY_MIN_ROWS && ti->natts > 0)
        copy_open(t);
}

/* Room in the batch for a row with the key of ot: two changes to one key
 * never share a batch, so a key the batch has starts a new one (of the
 * same column set). */
static void batch_key(apply_target *t, enum pend_kind kind, lm_relentry *e, tabinfo *ti,
                      const lm_tuple *ot, uint32_t narrays)
{
    char *m;
    if (key_add(t, hash_key(ot, ti)))
        return;
    m = t->pend.colmask ? lm_strdup(t->pend.colmask) : NULL;
    pend_start(t, kind, e);
    t->pend.colmask = m;
    arrays_reset(t, narrays);
    key_add(t, hash_key(ot, ti));
}

void batch_update(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *ot,
                  const lm_tuple *nt, char *mask, uint32_t nset)
{
    uint32_t a = 0;

    if (!pend_matches(t, PEND_UPDATE, e) || strcmp(t->pend.colmask, mask) != 0 ||
        t->pend.rows >= t->lim.batch_rows) {
        pend_start(t, PEND_UPDATE, e);
        t->pend.colmask = mask;
        arrays_reset(t, ti->nkey + nset);
    } else
        free(mask);
    batch_key(t, PEND_UPDATE, e, ti, ot, ti->nkey + nset);
    for (uint32_t k = 0; k < ti->nkey; k++)
        arr_add(&t->pend.arrays[a++], &ot->cols[ti->key[k]]);
    for (uint32_t c = 0; c < ti->natts; c++)
        if (t->pend.colmask[c] == '1')
            arr_add(&t->pend.arrays[a++], &nt->cols[c]);
    t->pend.rows++;
}

void batch_delete(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *ot)
{
    if (!pend_matches(t, PEND_DELETE, e) || t->pend.rows >= t->lim.batch_rows) {
        pend_start(t, PEND_DELETE, e);
        arrays_reset(t, ti->nkey);
    }
    batch_key(t, PEND_DELETE, e, ti, ot, ti->nkey);
    for (uint32_t k = 0; k < ti->nkey; k++)
        arr_add(&t->pend.arrays[k], &ot->cols[ti->key[k]]);
    t->pend.rows++;
}

void batch_discard(apply_target *t)
{
    if (t->pend.copying) {
        PGresult *res;
        PQputCopyEnd(t->conn, "transaction abandoned");
        while ((res = PQgetResult(t->conn)) != NULL)
            PQclear(res);
        t->pend.copying = false;
        t->pend.copybuf.len = 0;
    }
    pend_clear(t);
}
