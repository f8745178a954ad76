/* lm-apply's target side: the connection and its session settings, the
 * replication origin that makes every target transaction carry its source
 * position atomically, and the per-change entry points, which open the
 * target transaction and hand each change to a batch (batch.c) or a
 * single-row statement (single.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "lsn.h"
#include "pgconn.h"
#include "state.h"
#include "target_int.h"

/* --------------------------------------------------- connect, session */

apply_target *tgt_connect(const char *conninfo, const apply_limits *lim)
{
    apply_target *t = lm_malloc(sizeof *t);
    PGresult *res;
    char *err = NULL;

    memset(t, 0, sizeof *t);
    t->lim = *lim;
    t->conninfo = conninfo;
    t->conn = lm_connect(conninfo, "target", 0);
    res = lm_exec_try(t->conn, "SET session_replication_role = replica", &err);
    if (!res) {
        lm_exit_if_lost(t->conn, "target", err);
        lm_error("the target role may not set session_replication_role: %s", err);
        lm_hint("Use a superuser, or on PostgreSQL 15 GRANT SET ON PARAMETER session_replication_role TO the role.");
        exit(LM_EXIT_PREFLIGHT);
    }
    PQclear(res);
    lm_exec_cmd(t->conn, LM_EXIT_SERVER, "SET synchronous_commit = off");
    return t;
}

void tgt_close(apply_target *t)
{
    PQfinish(t->conn);
    free(t->encoding);
    free(t->pl.descs);
    for (size_t i = 0; i < t->nsyncs; i++) {
        free(t->syncs[i].nsp);
        free(t->syncs[i].rel);
    }
    free(t->syncs);
    free(t->unused);
    free(t->tabs);
    free(t->pend.colmask);
    lm_buf_free(&t->pend.rowbuf);
    for (uint32_t i = 0; i < t->pend.narrays; i++)
        lm_buf_free(&t->pend.arrays[i]);
    free(t->pend.arrays);
    free(t->pend.keyhash);
    lm_buf_free(&t->pend.copybuf);
    free(t);
}

PGconn *tgt_conn(apply_target *t) { return t->conn; }
const char *tgt_conninfo(const apply_target *t) { return t->conninfo; }
apply_stats *tgt_stats(apply_target *t) { return &t->st; }

void tgt_on_mismatch(apply_target *t, void (*hook)(void *arg), void *arg)
{
    t->mismatch_hook = hook;
    t->mismatch_arg = arg;
}

/* Text values arrive in the encoding the stream's producer read them in:
 * the target session reads them in that one too. Only between target
 * transactions (a SET is undone with a rolled back one). */
void tgt_set_encoding(apply_target *t, const char *enc)
{
    char *lit, *sql;

    if (!enc || !*enc || (t->encoding && strcmp(t->encoding, enc) == 0))
        return;
    if (t->xact_open)
        lm_fatal(LM_EXIT_FAILURE, "internal error: client_encoding set inside a transaction");
    pl_exit(t);
    lit = lm_literal(enc);
    sql = lm_psprintf("SET client_encoding = %s", lit);
    lm_exec_cmd(t->conn, LM_EXIT_SERVER, sql);
    free(sql);
    free(lit);
    free(t->encoding);
    t->encoding = lm_strdup(enc);
}

/* ------------------------------------------------------------- origin */

static bool origin_exists(apply_target *t)
{
    const char *p[1] = {t->origin};
    PGresult *res = lm_execp(t->conn, LM_EXIT_SERVER,
                             "SELECT 1 FROM pg_replication_origin WHERE roname = $1", 1, p);
    bool e = PQntuples(res) > 0;
    PQclear(res);
    return e;
}

static void origin_priv_error(apply_target *t, const char *what, const char *err)
{
    lm_exit_if_lost(t->conn, "target", err);
    if (strstr(err, "free replication state slot")) {
        /* not a privilege: every origin that has tracked progress holds
         * one of max_replication_slots' states until it is dropped */
        lm_error("the target has no free replication origin state to %s: %s", what, err);
        lm_hint("Raise max_replication_slots on the target (a restart), or drop the replication "
                "origins of finished migrations (SELECT pg_replication_origin_drop(roname) FROM "
                "pg_replication_origin).");
        exit(LM_EXIT_PREFLIGHT);
    }
    lm_error("the target role may not %s: %s", what, err);
    lm_hint("Use a superuser, or GRANT EXECUTE ON FUNCTION pg_replication_origin_create(text), "
            "pg_replication_origin_session_setup(text), pg_replication_origin_xact_setup(pg_lsn, timestamptz), "
            "pg_replication_origin_progress(text, boolean) TO the role.");
    exit(LM_EXIT_PREFLIGHT);
}

uint64_t tgt_origin_setup(apply_target *t, const char *origin, const lm_record *h)
{
    char sysid[32];
    const char *p[4];
    PGresult *res;
    char *err = NULL;
    char *sql;

    t->origin = origin;
    lm_state_ensure(t->conn);
    snprintf(sysid, sizeof sysid, "%" PRIu64, h->u.header.sysid);
    p[0] = t->origin;
    res = lm_execp(t->conn, LM_EXIT_SERVER,
                   "SELECT source_sysid::text, source_db, slot FROM lm.origin WHERE origin = $1", 1, p);
    if (PQntuples(res) > 0) {
        if (strcmp(PQgetvalue(res, 0, 0), sysid) != 0 ||
            strcmp(PQgetvalue(res, 0, 1), h->u.header.dbname) != 0) {
            lm_error("the stream is from another source: system %s, database \"%s\"; origin \"%s\" "
                     "on the target was started from system %s, database \"%s\"",
                     sysid, h->u.header.dbname, t->origin, PQgetvalue(res, 0, 0),
                     PQgetvalue(res, 0, 1));
            lm_hint("Apply each source's stream into its own target, or drop the origin with "
                    "lm-migrate clean first.");
            exit(LM_EXIT_MISMATCH);
        }
        PQclear(res);
    } else {
        PQclear(res);
        if (!origin_exists(t)) {
            char *lit = lm_literal(t->origin);
            sql = lm_psprintf("SELECT pg_replication_origin_create(%s)", lit);
            res = lm_exec_try(t->conn, sql, &err);
            if (!res)
                origin_priv_error(t, "create a replication origin", err);
            PQclear(res);
            free(sql);
            free(lit);
        }
        p[1] = sysid;
        p[2] = h->u.header.dbname;
        p[3] = h->u.header.slot;
        PQclear(lm_execp(t->conn, LM_EXIT_SERVER,
                         "INSERT INTO lm.origin (origin, source_sysid, source_db, slot) "
                         "VALUES ($1, $2::numeric, $3, $4) ON CONFLICT (origin) DO NOTHING",
                         4, p));
    }
    {
        char *lit = lm_literal(t->origin);
        sql = lm_psprintf("SELECT pg_replication_origin_session_setup(%s)", lit);
        res = lm_exec_try(t->conn, sql, &err);
        if (!res) {
            lm_exit_if_lost(t->conn, "target", err);
            if (strstr(err, "is already active"))
                lm_fatal(LM_EXIT_PREFLIGHT, "replication origin \"%s\" is in use by another "
                         "session (another lm-apply?): %s", t->origin, err);
            origin_priv_error(t, "use a replication origin", err);
        }
        PQclear(res);
        free(sql);
        free(lit);
    }
    return tgt_origin_progress(t, false);
}

uint64_t tgt_origin_progress(apply_target *t, bool flush)
{
    const char *p[1] = {t->origin};
    PGresult *res;
    uint64_t lsn = 0;

    if (t->pl.on)
        res = tgt_query(t,
                        flush ? "SELECT pg_replication_origin_progress($1, true)"
                              : "SELECT pg_replication_origin_progress($1, false)",
                        1, p);
    else
        res = lm_execp(t->conn, LM_EXIT_SERVER,
                       flush ? "SELECT pg_replication_origin_progress($1, true)"
                             : "SELECT pg_replication_origin_progress($1, false)", 1, p);
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        lm_lsn_parse(PQgetvalue(res, 0, 0), &lsn);
    PQclear(res);
    return lsn;
}

/* -------------------------------------------------------- transaction */

static void begin_if_needed(apply_target *t)
{
    if (!t->xact_open) {
        pl_send_sql(t, "BEGIN", 0, NULL, "BEGIN");
        t->xact_open = true;
        t->generic_plans = false;
    }
}

bool tgt_in_xact(apply_target *t) { return t->xact_open; }
void tgt_touch(apply_target *t) { begin_if_needed(t); }

void tgt_commit(apply_target *t, uint64_t end_lsn, int64_t commit_ts)
{
    char lsn[LM_LSN_BUFSZ], ts[64];
    const char *p[3];

    if (!t->xact_open)
        return;
    tgt_flush_pending(t);
    p[0] = lm_lsn_format(end_lsn, lsn);
    p[1] = lm_pgtime_format(commit_ts, ts);
    pl_send_sql(t, "SELECT pg_replication_origin_xact_setup($1::pg_lsn, $2::timestamptz)", 2, p,
                "the origin position");
    p[0] = t->origin;
    p[1] = lsn;
    p[2] = ts;
    pl_send_sql(t,
                "INSERT INTO lm.progress (origin, end_lsn, commit_ts, applied_at) "
                "VALUES ($1, $2::pg_lsn, $3::timestamptz, clock_timestamp()) ON CONFLICT (origin) DO "
                "UPDATE SET end_lsn = excluded.end_lsn, commit_ts = excluded.commit_ts, "
                "applied_at = excluded.applied_at",
                3, p, "the progress row");
    pl_send_sql(t, "COMMIT", 0, NULL, "COMMIT");
    t->xact_open = false;
    pl_sync_wait(t);
}

void tgt_rollback(apply_target *t)
{
    /* forget what is pending, undo what was sent */
    batch_discard(t);
    if (t->xact_open) {
        pl_send_sql(t, "ROLLBACK", 0, NULL, "ROLLBACK");
        t->xact_open = false;
    }
    pl_sync_wait(t);
}

/* ------------------------------------------------------------ changes */

static bool values_equal(const lm_value *a, const lm_value *b)
{
    return a->kind == b->kind && a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

void tgt_insert(apply_target *t, lm_relentry *e, const lm_tuple *tup)
{
    tabinfo *ti = tab_info(t, e);

    if (tup->ncols != ti->natts)
        lm_fatal(LM_EXIT_CORRUPT, "insert into %s has %u columns; its relation has %u",
                 e->display, tup->ncols, ti->natts);
    begin_if_needed(t);
    batch_insert(t, e, ti, tup);
}

void tgt_update(apply_target *t, lm_relentry *e, const lm_record *r)
{
    tabinfo *ti = tab_info(t, e);
    const lm_tuple *nt = &r->u.update.newtup;
    const lm_tuple *ot = r->u.update.oldkind ? &r->u.update.oldtup : nt;
    bool key_changed = r->u.update.oldkind == 'K';
    bool key_ok = true;
    char *skip = NULL;       /* identity columns GENERATED ALWAYS left out */

    if (nt->ncols != ti->natts || (r->u.update.oldkind && ot->ncols != ti->natts))
        lm_fatal(LM_EXIT_CORRUPT, "update of %s has a tuple of the wrong width", e->display);
    if (e->rel.replident == 'n')
        lm_fatal(LM_EXIT_CORRUPT, "update of %s, which has REPLICA IDENTITY NOTHING", e->display);
    if (ti->any_always) {
        /* an identity column GENERATED ALWAYS is never SET: left out when
         * its value is known to stay (a key column the update keeps, or the
         * full old row says so), else the row moves */
        bool move = false;
        skip = lm_malloc(ti->natts + 1);
        memset(skip, 0, ti->natts + 1);
        for (uint32_t c = 0; c < ti->natts; c++) {
            if (!ti->col_always[c] || nt->cols[c].kind == 'u')
                continue;
            if ((r->u.update.oldkind == 'O' || (e->rel.cols[c].flags & LM_COL_KEY)) &&
                values_equal(&ot->cols[c], &nt->cols[c]))
                skip[c] = 1;
            else
                move = true;
        }
        if (move) {
            begin_if_needed(t);
            single_move(t, e, ti, ot, nt);
            free(skip);
            return;
        }
    }
    if (r->u.update.oldkind == 'O' && !ti->by_ctid)
        for (uint32_t k = 0; k < ti->nkey; k++)
            if (nt->cols[ti->key[k]].kind != 'u' &&
                !values_equal(&ot->cols[ti->key[k]], &nt->cols[ti->key[k]]))
                key_changed = true;
    for (uint32_t k = 0; k < ti->nkey; k++)
        if (ot->cols[ti->key[k]].kind == 'u' || ot->cols[ti->key[k]].kind == 'n')
            key_ok = false;
    begin_if_needed(t);

    if (!ti->by_ctid && !key_changed && key_ok && !ti->other_unique) {
        /* batched: SET the present non-key columns */
        char *mask = lm_malloc(ti->natts + 1);
        uint32_t nset = 0;
        memset(mask, '0', ti->natts);
        mask[ti->natts] = '\0';
        for (uint32_t c = 0; c < ti->natts; c++) {
            bool is_key = false;
            for (uint32_t k = 0; k < ti->nkey; k++)
                is_key |= ti->key[k] == c;
            if (!is_key && nt->cols[c].kind != 'u' && !(skip && skip[c])) {
                mask[c] = '1';
                nset++;
            }
        }
        if (nset == 0)
            free(mask); /* nothing changes: never an empty SET list */
        else
            batch_update(t, e, ti, ot, nt, mask, nset);
    } else {
        /* one row: key changes, other unique indexes, or matching by all columns */
        single_update(t, e, ti, ot, nt, skip);
    }
    free(skip);
}

void tgt_delete(apply_target *t, lm_relentry *e, const lm_record *r)
{
    tabinfo *ti = tab_info(t, e);
    const lm_tuple *ot = &r->u.del.oldtup;
    bool key_ok = !ti->by_ctid;

    if (ot->ncols != ti->natts)
        lm_fatal(LM_EXIT_CORRUPT, "delete from %s has a tuple of the wrong width", e->display);
    for (uint32_t k = 0; k < ti->nkey && key_ok; k++)
        if (ot->cols[ti->key[k]].kind == 'u' || ot->cols[ti->key[k]].kind == 'n')
            key_ok = false;
    begin_if_needed(t);
    if (key_ok)
        batch_delete(t, e, ti, ot);
    else
        single_delete(t, e, ti, ot);
}

void tgt_truncate(apply_target *t, lm_relentry **rels, uint32_t n, uint8_t flags)
{
    lm_buf sql = {0};
    char desc[DESC_LEN];

    if (n == 0)
        return;
    tgt_flush_pending(t);
    begin_if_needed(t);
    /* exactly the relations listed (the source's cascade is already in the
     * list), never CASCADE here */
    lm_buf_puts(&sql, "TRUNCATE ");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            lm_buf_puts(&sql, ", ");
        if (!tab_info(t, rels[i])->routed)
            lm_buf_puts(&sql, "ONLY ");
        lm_buf_put(&sql, rels[i]->qualname, strlen(rels[i]->qualname));
    }
    if (flags & LM_TRUNCATE_RESTART_IDENTITY)
        lm_buf_puts(&sql, " RESTART IDENTITY");
    lm_buf_u8(&sql, '\0');
    snprintf(desc, sizeof desc, "a truncate of %s%s", rels[0]->display, n > 1 ? " and others" : "");
    pl_send_sql(t, (char *)sql.data, 0, NULL, desc);
    lm_buf_free(&sql);
}

void tgt_marker(apply_target *t, const lm_record *m)
{
    char lsn[LM_LSN_BUFSZ];
    char *payload = lm_malloc(m->u.message.len + 1);
    const char *p[3];

    tgt_flush_pending(t);
    begin_if_needed(t);
    memcpy(payload, m->u.message.content, m->u.message.len);
    payload[m->u.message.len] = '\0';
    p[0] = t->origin;
    p[1] = payload;
    p[2] = lm_lsn_format(m->u.message.lsn, lsn);
    pl_send_sql(t, lm_marker_insert_sql(), 3, p, "the cutover marker");
    free(payload);
}
