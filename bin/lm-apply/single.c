/* lm-apply's target side: one statement for one row, where a batch does
 * not do: an update that changes the key or may meet another unique index,
 * a row found by all its columns (REPLICA IDENTITY FULL without a key),
 * and an update that moves an identity column's value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target_int.h"

static char *value_dup(const lm_value *v)
{
    char *s;
    if (v->kind == 'n')
        return NULL;
    s = lm_malloc(v->len + 1);
    memcpy(s, v->data, v->len);
    s[v->len] = '\0';
    return s;
}

/* WHERE clause text for single-row statements, params from first. */
static void where_clause(lm_buf *sql, lm_relentry *e, tabinfo *ti, const lm_tuple *old,
                         uint32_t first, char **vals, uint32_t *np, char *keybuf)
{
    char tmp[64];
    if (!ti->by_ctid) {
        lm_buf_puts(sql, " WHERE ");
        for (uint32_t k = 0; k < ti->nkey; k++) {
            uint32_t c = ti->key[k];
            if (k)
                lm_buf_puts(sql, " AND ");
            lm_buf_put(sql, ti->colq[c], strlen(ti->colq[c]));
            snprintf(tmp, sizeof tmp, " = $%u", first + *np + 1);
            lm_buf_put(sql, tmp, strlen(tmp));
            vals[first + (*np)++] = value_dup(&old->cols[c]);
        }
        return;
    }
    /* REPLICA IDENTITY FULL without a key: exactly one matching row */
    /* a partitioned table's rows: a ctid is unique within one partition */
    lm_buf_puts(sql, ti->routed ? " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM "
                                : " WHERE ctid = (SELECT ctid FROM ONLY ");
    lm_buf_put(sql, e->qualname, strlen(e->qualname));
    lm_buf_puts(sql, " WHERE ");
    {
        bool firstc = true;
        for (uint32_t c = 0; c < ti->natts && c < old->ncols; c++) {
            if (old->cols[c].kind == 'u')
                continue;
            keybuf[c] = '1';
            if (!firstc)
                lm_buf_puts(sql, " AND ");
            firstc = false;
            lm_buf_put(sql, ti->colq[c], strlen(ti->colq[c]));
            if (ti->col_eq[c])
                snprintf(tmp, sizeof tmp, " IS NOT DISTINCT FROM $%u", first + *np + 1);
            else
                snprintf(tmp, sizeof tmp, "::text IS NOT DISTINCT FROM $%u::text", first + *np + 1);
            lm_buf_put(sql, tmp, strlen(tmp));
            vals[first + (*np)++] = value_dup(&old->cols[c]);
        }
        if (firstc)
            lm_buf_puts(sql, "true");
    }
    lm_buf_puts(sql, " LIMIT 1)");
    if (!ti->warned_scan) {
        ti->warned_scan = true;
        lm_warning("table %s has no key: each update or delete scans it (REPLICA IDENTITY FULL "
                   "without a primary key on the target)", e->display);
    }
}

/* Prepare (once) and send one statement: sql with the n parameters vals;
 * mask says which columns it names (with keyprefix, the statement's key).
 * Frees sql, mask and vals. */
static void send_single(apply_target *t, lm_relentry *e, tabinfo *ti, const char *keyprefix,
                        lm_buf *sql, char *mask, char **vals, uint32_t n, const char *what)
{
    char *key = lm_psprintf("%s:%s", keyprefix, mask);
    const char *name;
    char desc[DESC_LEN];
    lm_buf_u8(sql, '\0');
    name = tab_prepared(t, ti, key, (char *)sql->data, (int)n);
    snprintf(desc, sizeof desc, "%s %s", what, e->display);
    tab_send(t, ti, name, (int)n, (const char *const *)vals, desc);
    for (uint32_t i = 0; i < n; i++)
        free(vals[i]);
    free(vals);
    free(mask);
    lm_buf_free(sql);
    free(key);
}

/* An update that may give an identity column GENERATED ALWAYS a new value
 * (UPDATE ... SET id = DEFAULT on the source): an UPDATE may set such a
 * column only to DEFAULT, which would draw the target's own sequence, so
 * the row moves in one statement: deleted, and inserted again with its new
 * values; the columns the stream left out (unchanged TOAST, columns only
 * the target has) are taken from the deleted row. Under session_replication_role = replica no foreign key
 * or ordinary trigger sees the move. */
void single_move(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *ot,
                 const lm_tuple *nt)
{
    lm_buf sql = {0};
    char **vals = lm_malloc(sizeof(char *) * (2 * ti->natts + 2));
    char *keymask = lm_malloc(2 * ti->natts + 2);
    char *cols = tab_columns(ti, NULL);
    uint32_t n = 0, nw = 0;
    char tmp[32];

    tgt_flush_pending(t);
    memset(keymask, '0', 2 * ti->natts + 1);
    keymask[2 * ti->natts + 1] = '\0';
    lm_buf_puts(&sql, "WITH lm_moved AS (DELETE FROM ONLY ");
    lm_buf_put(&sql, e->qualname, strlen(e->qualname));
    where_clause(&sql, e, ti, ot, 0, vals, &nw, keymask + ti->natts);
    lm_buf_puts(&sql, " RETURNING *) INSERT INTO ");
    lm_buf_put(&sql, e->qualname, strlen(e->qualname));
    lm_buf_puts(&sql, " (");
    lm_buf_put(&sql, cols, strlen(cols));
    lm_buf_put(&sql, ti->extra_cols, strlen(ti->extra_cols));
    lm_buf_puts(&sql, ") OVERRIDING SYSTEM VALUE SELECT ");
    for (uint32_t c = 0; c < ti->natts; c++) {
        if (c)
            lm_buf_puts(&sql, ", ");
        if (nt->cols[c].kind == 'u') {
            lm_buf_puts(&sql, "lm_moved.");
            lm_buf_put(&sql, ti->colq[c], strlen(ti->colq[c]));
            continue;
        }
        keymask[c] = '1';
        snprintf(tmp, sizeof tmp, "$%u::", nw + n + 1);
        lm_buf_put(&sql, tmp, strlen(tmp));
        lm_buf_put(&sql, ti->coltype[c], strlen(ti->coltype[c]));
        vals[nw + n++] = value_dup(&nt->cols[c]);
    }
    lm_buf_put(&sql, ti->extra_sel, strlen(ti->extra_sel));
    lm_buf_puts(&sql, " FROM lm_moved");
    send_single(t, e, ti, "M1", &sql, keymask, vals, nw + n, "an update (moving an identity value) of");
    t->st.rows_update++;
    free(cols);
}

void single_update(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *ot,
                   const lm_tuple *nt, const char *skip)
{
    lm_buf sql = {0};
    char **vals = lm_malloc(sizeof(char *) * (2 * ti->natts + 2));
    uint32_t n = 0, nw = 0;
    char *keymask = lm_malloc(2 * ti->natts + 2);
    char tmp[32];

    tgt_flush_pending(t);
    memset(keymask, '0', 2 * ti->natts + 1);
    keymask[2 * ti->natts + 1] = '\0';
    lm_buf_puts(&sql, ti->routed ? "UPDATE " : "UPDATE ONLY ");
    lm_buf_put(&sql, e->qualname, strlen(e->qualname));
    lm_buf_puts(&sql, " SET ");
    for (uint32_t c = 0; c < ti->natts; c++) {
        if (nt->cols[c].kind == 'u' || (skip && skip[c]))
            continue;
        keymask[c] = '1';
        if (n)
            lm_buf_puts(&sql, ", ");
        lm_buf_put(&sql, ti->colq[c], strlen(ti->colq[c]));
        snprintf(tmp, sizeof tmp, " = $%u", n + 1);
        lm_buf_put(&sql, tmp, strlen(tmp));
        vals[n++] = value_dup(&nt->cols[c]);
    }
    if (n == 0) {
        free(vals);
        free(keymask);
        lm_buf_free(&sql);
        return;
    }
    where_clause(&sql, e, ti, ot, n, vals, &nw, keymask + ti->natts);
    send_single(t, e, ti, "U1", &sql, keymask, vals, n + nw, "an update of");
    t->st.rows_update++;
}

void single_delete(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *ot)
{
    lm_buf sql = {0};
    char **vals = lm_malloc(sizeof(char *) * (ti->natts + 1));
    char *keymask = lm_malloc(ti->natts + 1);
    uint32_t n = 0;

    tgt_flush_pending(t);
    memset(keymask, '0', ti->natts);
    keymask[ti->natts] = '\0';
    lm_buf_puts(&sql, ti->routed ? "DELETE FROM " : "DELETE FROM ONLY ");
    lm_buf_put(&sql, e->qualname, strlen(e->qualname));
    where_clause(&sql, e, ti, ot, 0, vals, &n, keymask);
    send_single(t, e, ti, "D1", &sql, keymask, vals, n, "a delete from");
    t->st.rows_delete++;
}
