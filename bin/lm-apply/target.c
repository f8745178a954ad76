/* The target side of lm-apply: one session in pipeline mode, prepared
 * statements per (table, operation, column set), runs of inserts as COPY,
 * batched updates and deletes, and the replication origin that makes every
 * target transaction carry its source position atomically. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "exitcodes.h"
#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "state.h"

apply_limits lim = {
    .group_changes = 50000,
    .group_bytes = 8u << 20,  /* also bounds the kept records: memory */
    .group_time_us = 500000,
    .batch_rows = 2000,
};
PGconn *tconn;
const char *origin_name;
uint64_t st_rows_copy, st_rows_insert, st_rows_update, st_rows_delete, st_stmts;

static void put_str(lm_buf *b, const char *s) { lm_buf_put(b, s, strlen(s)); }

/* ------------------------------------------------------------ pipeline */

#define DESC_LEN 120
static bool pipeline_on;
static bool xact_open;
static char (*descs)[DESC_LEN];  /* what each pending query is, for errors */
static size_t dq_head, dq_len, dq_cap;
static size_t pending_syncs;
static bool capture_next;         /* keep the result of the query marked so */
static PGresult *captured;
static unsigned stmt_counter;
static size_t sends_since_consume;

static void desc_push(const char *fmt, ...) LM_PRINTF(1, 2);
static void desc_push(const char *fmt, ...)
{
    va_list ap;
    if (dq_len == dq_cap) {
        size_t ncap = dq_cap ? dq_cap * 2 : 256;
        char (*n)[DESC_LEN] = lm_malloc(ncap * DESC_LEN);
        for (size_t i = 0; i < dq_len; i++)
            memcpy(n[i], descs[(dq_head + i) % dq_cap], DESC_LEN);
        free(descs);
        descs = n;
        dq_cap = ncap;
        dq_head = 0;
    }
    va_start(ap, fmt);
    vsnprintf(descs[(dq_head + dq_len) % dq_cap], DESC_LEN, fmt, ap);
    va_end(ap);
    dq_len++;
}

static void fail_result(PGresult *res, const char *what)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    int code = LM_EXIT_SERVER;

    lm_error("could not apply %s: %s", what,
             PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                 ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                 : PQerrorMessage(tconn));
    if (PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL))
        lm_detail("%s", PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
    lm_detail("the target transaction was rolled back; nothing of it was applied, and a restart "
              "resumes after the last committed one");
    /* missing table or column, insufficient privilege: the target does not
     * match what the stream needs */
    if (state && (strcmp(state, "42P01") == 0 || strcmp(state, "42703") == 0 ||
                  strcmp(state, "42501") == 0))
        code = LM_EXIT_PREFLIGHT;
    exit(code);
}

/* Process results; wait: until every pending query and sync is done. */
static void consume(bool wait)
{
    static bool got;

    while (dq_len > 0 || pending_syncs > 0) {
        PGresult *res;
        if (!wait) {
            if (!PQconsumeInput(tconn))
                lm_fatal(LM_EXIT_SERVER, "lost the target connection: %s", PQerrorMessage(tconn));
            if (PQisBusy(tconn))
                return;
        }
        res = PQgetResult(tconn);
        if (res == NULL) {
            if (got) {
                got = false;
                dq_head = (dq_head + 1) % dq_cap;
                dq_len--;
                continue;
            }
            if (PQstatus(tconn) != CONNECTION_OK)
                lm_fatal(LM_EXIT_SERVER, "lost the target connection: %s", PQerrorMessage(tconn));
            if (!wait)
                return;
            continue;
        }
        switch (PQresultStatus(res)) {
        case PGRES_PIPELINE_SYNC:
            pending_syncs--;
            PQclear(res);
            break;
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
            got = true;
            if (capture_next && dq_len == 1 && !captured)
                captured = res;
            else
                PQclear(res);
            break;
        default:
            fail_result(res, dq_len ? descs[dq_head] : "a statement");
        }
    }
}

static void pipeline_enter(void)
{
    if (!pipeline_on) {
        if (!PQenterPipelineMode(tconn))
            lm_fatal(LM_EXIT_SERVER, "could not enter pipeline mode: %s", PQerrorMessage(tconn));
        pipeline_on = true;
    }
}

static void sent(int ok)
{
    if (!ok)
        lm_fatal(LM_EXIT_SERVER, "could not send to the target: %s", PQerrorMessage(tconn));
    st_stmts++;
    if (++sends_since_consume >= 64) {
        sends_since_consume = 0;
        consume(false);
    }
}

static void send_sql(const char *sql, int n, const char *const *vals, const char *desc)
{
    pipeline_enter();
    desc_push("%s", desc);
    sent(PQsendQueryParams(tconn, sql, n, NULL, vals, NULL, NULL, 0));
}

static void send_prepared(const char *name, int n, const char *const *vals, const char *desc)
{
    pipeline_enter();
    desc_push("%s", desc);
    sent(PQsendQueryPrepared(tconn, name, n, vals, NULL, NULL, 0));
}

/* Sync and wait for everything sent so far. */
static void sync_wait(void)
{
    if (!pipeline_on)
        return;
    if (!PQpipelineSync(tconn))
        lm_fatal(LM_EXIT_SERVER, "could not sync with the target: %s", PQerrorMessage(tconn));
    pending_syncs++;
    consume(true);
}

static void pipeline_exit(void)
{
    if (!pipeline_on)
        return;
    sync_wait();
    if (!PQexitPipelineMode(tconn))
        lm_fatal(LM_EXIT_SERVER, "could not leave pipeline mode: %s", PQerrorMessage(tconn));
    pipeline_on = false;
}

PGresult *tgt_query(const char *sql, int nparams, const char *const *params)
{
    PGresult *res;
    pipeline_enter();
    capture_next = true;
    send_sql(sql, nparams, params, "an internal query");
    sync_wait();
    capture_next = false;
    res = captured;
    captured = NULL;
    if (!res)
        lm_fatal(LM_EXIT_SERVER, "no result for: %s", sql);
    return res;
}

static void begin_if_needed(void)
{
    if (!xact_open) {
        send_sql("BEGIN", 0, NULL, "BEGIN");
        xact_open = true;
    }
}

bool tgt_in_xact(void) { return xact_open; }
void tgt_touch(void) { begin_if_needed(); }
void tgt_leave_pipeline(void) { pipeline_exit(); }

/* Text values arrive in the encoding the stream's producer read them in:
 * the target session reads them in that one too. Only between target
 * transactions (a SET is undone with a rolled back one). */
void tgt_set_encoding(const char *enc)
{
    static char *current;
    char *lit, *sql;

    if (!enc || !*enc || (current && strcmp(current, enc) == 0))
        return;
    if (xact_open)
        lm_fatal(LM_EXIT_FAILURE, "internal error: client_encoding set inside a transaction");
    pipeline_exit();
    lit = lm_literal(enc);
    sql = lm_psprintf("SET client_encoding = %s", lit);
    lm_exec_cmd(tconn, LM_EXIT_SERVER, sql);
    free(sql);
    free(lit);
    free(current);
    current = lm_strdup(enc);
}

/* ------------------------------------------------------- connect, origin */

void tgt_connect(const char *conninfo)
{
    PGresult *res;
    char *err = NULL;

    tconn = lm_connect(conninfo, "target", 0);
    res = lm_exec_try(tconn, "SET session_replication_role = replica", &err);
    if (!res) {
        lm_exit_if_lost(tconn, "target", err);
        lm_error("the target role may not set session_replication_role: %s", err);
        lm_hint("Use a superuser, or on PostgreSQL 15 GRANT SET ON PARAMETER session_replication_role TO the role.");
        exit(LM_EXIT_PREFLIGHT);
    }
    PQclear(res);
    lm_exec_cmd(tconn, LM_EXIT_SERVER, "SET synchronous_commit = off");
}

static bool origin_exists(void)
{
    const char *p[1] = {origin_name};
    PGresult *res = lm_execp(tconn, LM_EXIT_SERVER,
                             "SELECT 1 FROM pg_replication_origin WHERE roname = $1", 1, p);
    bool e = PQntuples(res) > 0;
    PQclear(res);
    return e;
}

static void origin_priv_error(const char *what, const char *err)
{
    lm_exit_if_lost(tconn, "target", err);
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

uint64_t tgt_origin_setup(const lm_record *h)
{
    char sysid[32];
    const char *p[4];
    PGresult *res;
    char *err = NULL;
    char *sql;

    lm_state_ensure(tconn);
    snprintf(sysid, sizeof sysid, "%" PRIu64, h->u.header.sysid);
    p[0] = origin_name;
    res = lm_execp(tconn, LM_EXIT_SERVER,
                   "SELECT source_sysid::text, source_db, slot FROM lm.origin WHERE origin = $1", 1, p);
    if (PQntuples(res) > 0) {
        if (strcmp(PQgetvalue(res, 0, 0), sysid) != 0 ||
            strcmp(PQgetvalue(res, 0, 1), h->u.header.dbname) != 0) {
            lm_error("the stream is from another source: system %s, database \"%s\"; origin \"%s\" "
                     "on the target was started from system %s, database \"%s\"",
                     sysid, h->u.header.dbname, origin_name, PQgetvalue(res, 0, 0),
                     PQgetvalue(res, 0, 1));
            lm_hint("Apply each source's stream into its own target, or drop the origin with "
                    "lm-migrate clean first.");
            exit(LM_EXIT_MISMATCH);
        }
        PQclear(res);
    } else {
        PQclear(res);
        if (!origin_exists()) {
            char *lit = lm_literal(origin_name);
            sql = lm_psprintf("SELECT pg_replication_origin_create(%s)", lit);
            res = lm_exec_try(tconn, sql, &err);
            if (!res)
                origin_priv_error("create a replication origin", err);
            PQclear(res);
            free(sql);
            free(lit);
        }
        p[1] = sysid;
        p[2] = h->u.header.dbname;
        p[3] = h->u.header.slot;
        PQclear(lm_execp(tconn, LM_EXIT_SERVER,
                         "INSERT INTO lm.origin (origin, source_sysid, source_db, slot) "
                         "VALUES ($1, $2::numeric, $3, $4) ON CONFLICT (origin) DO NOTHING",
                         4, p));
    }
    {
        char *lit = lm_literal(origin_name);
        sql = lm_psprintf("SELECT pg_replication_origin_session_setup(%s)", lit);
        res = lm_exec_try(tconn, sql, &err);
        if (!res) {
            lm_exit_if_lost(tconn, "target", err);
            if (strstr(err, "is already active"))
                lm_fatal(LM_EXIT_PREFLIGHT, "replication origin \"%s\" is in use by another "
                         "session (another lm-apply?): %s", origin_name, err);
            origin_priv_error("use a replication origin", err);
        }
        PQclear(res);
        free(sql);
        free(lit);
    }
    return tgt_origin_progress(false);
}

uint64_t tgt_origin_progress(bool flush)
{
    const char *p[1] = {origin_name};
    PGresult *res;
    uint64_t lsn = 0;

    if (pipeline_on)
        res = tgt_query(flush ? "SELECT pg_replication_origin_progress($1, true)"
                              : "SELECT pg_replication_origin_progress($1, false)", 1, p);
    else
        res = lm_execp(tconn, LM_EXIT_SERVER,
                       flush ? "SELECT pg_replication_origin_progress($1, true)"
                             : "SELECT pg_replication_origin_progress($1, false)", 1, p);
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        lm_lsn_parse(PQgetvalue(res, 0, 0), &lsn);
    PQclear(res);
    return lsn;
}

/* ------------------------------------------------------- table metadata */

typedef struct stmt {
    char *key;               /* operation and column set */
    char name[16];
} stmt;

typedef struct tabinfo {
    unsigned generation;
    bool checked;
    uint32_t natts;
    char **colq;             /* quoted column names, in stream order */
    char **coltype;          /* target types, for casts from text */
    bool *col_eq;            /* the type has an equality operator */
    bool *col_always;        /* an identity column GENERATED ALWAYS */
    bool any_always;         /* inserts say OVERRIDING SYSTEM VALUE */
    char *extra_cols;        /* ", c1, c2": target columns the stream lacks
                              * that are not generated ("" if none) */
    char *extra_sel;         /* ", lm_moved.c1, lm_moved.c2" */
    uint32_t *key;           /* stream columns that identify a row */
    uint32_t nkey;
    bool by_ctid;            /* no usable key: REPLICA IDENTITY FULL without one */
    bool other_unique;       /* unique indexes besides the key: no batched updates */
    bool routed;             /* partitioned (or a hypertable) on the target: rows live
                              * in its children, so no ONLY (a target schema the DBA
                              * prepared, lm-snapshot --target-schema=existing) */
    bool warned_scan;
    uint64_t sync_lsn;
    stmt *stmts;
    size_t nstmts;
} tabinfo;

typedef struct syncpos {
    char *nsp, *rel;
    uint64_t lsn;
} syncpos;
static syncpos *syncs;
static size_t nsyncs;

/* statements of redefined tables, to deallocate before the next prepare */
static char (*unused)[16];
static size_t n_unused, cap_unused;

void tgt_free_tabinfo(void *p)
{
    tabinfo *ti = p;
    if (!ti)
        return;
    for (uint32_t i = 0; i < ti->natts; i++) {
        free(ti->colq[i]);
        free(ti->coltype[i]);
    }
    free(ti->colq);
    free(ti->coltype);
    free(ti->col_eq);
    free(ti->col_always);
    free(ti->extra_cols);
    free(ti->extra_sel);
    free(ti->key);
    for (size_t i = 0; i < ti->nstmts; i++) {
        /* the session keeps a prepared statement until it is deallocated */
        if (n_unused == cap_unused) {
            cap_unused = cap_unused ? cap_unused * 2 : 64;
            unused = lm_realloc(unused, cap_unused * sizeof *unused);
        }
        memcpy(unused[n_unused++], ti->stmts[i].name, sizeof *unused);
        free(ti->stmts[i].key);
    }
    free(ti->stmts);
    free(ti);
}

void tgt_load_sync(void)
{
    PGresult *res;
    for (size_t i = 0; i < nsyncs; i++) {
        free(syncs[i].nsp);
        free(syncs[i].rel);
    }
    free(syncs);
    syncs = NULL;
    nsyncs = 0;
    if (!lm_state_exists(tconn))
        return;
    res = lm_exec(tconn, LM_EXIT_SERVER, "SELECT nspname, relname, sync_lsn::text FROM lm.sync");
    nsyncs = (size_t)PQntuples(res);
    syncs = lm_malloc(sizeof *syncs * (nsyncs + 1));
    for (size_t i = 0; i < nsyncs; i++) {
        syncs[i].nsp = lm_strdup(PQgetvalue(res, (int)i, 0));
        syncs[i].rel = lm_strdup(PQgetvalue(res, (int)i, 1));
        lm_lsn_parse(PQgetvalue(res, (int)i, 2), &syncs[i].lsn);
    }
    PQclear(res);
}

static bool copy_is_open(void);

void (*tgt_mismatch_hook)(void);

/* The target lacks a table or column: nothing failed on the server yet, so
 * the complete source transactions before this one can still be committed
 * (the hook) before exiting. */
static void target_mismatch_exit(void)
{
    void (*hook)(void) = tgt_mismatch_hook;
    tgt_mismatch_hook = NULL;
    if (hook)
        hook();
    exit(LM_EXIT_PREFLIGHT);
}

static tabinfo *table_info(lm_relentry *e)
{
    tabinfo *ti = e->user;
    const char *p[3];
    char replident[2];
    PGresult *res;
    uint32_t *pk = NULL;
    uint32_t npk = 0;
    bool pk_complete = true;

    if (ti && ti->generation == e->generation)
        return ti;
    if (ti)
        tgt_free_tabinfo(ti);
    ti = lm_malloc(sizeof *ti);
    memset(ti, 0, sizeof *ti);
    e->user = ti;
    ti->generation = e->generation;
    ti->natts = e->rel.natts;
    ti->colq = lm_malloc(sizeof(char *) * (ti->natts + 1));
    ti->coltype = lm_malloc(sizeof(char *) * (ti->natts + 1));
    ti->col_eq = lm_malloc(sizeof(bool) * (ti->natts + 1));
    ti->col_always = lm_malloc(sizeof(bool) * (ti->natts + 1));
    ti->key = lm_malloc(sizeof(uint32_t) * (ti->natts + 1));
    pk = lm_malloc(sizeof(uint32_t) * (ti->natts + 1));

    p[0] = e->rel.nspname;
    p[1] = e->rel.relname;
    replident[0] = (char)e->rel.replident;
    replident[1] = '\0';
    p[2] = replident;
    if (copy_is_open())
        tgt_flush_pending();
    res = tgt_query(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "  EXISTS (SELECT 1 FROM pg_operator o WHERE o.oprname = '=' AND o.oprleft = a.atttypid "
        "          AND o.oprright = a.atttypid), "
        "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary "
        "          AND a.attnum = ANY (i.indkey)), "
        /* unique indexes other than the one the stream's key matches: a
         * batched UPDATE could pass through a transient duplicate there */
        "  (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique "
        "          AND NOT CASE WHEN $3 = 'i' THEN i.indisreplident ELSE i.indisprimary END), "
        /* an identity column GENERATED ALWAYS takes a value only with
         * OVERRIDING SYSTEM VALUE, and never in an UPDATE */
        "  a.attidentity = 'a', a.attgenerated <> '' "
        /* a table without columns (CREATE TABLE t ()) is one row of NULLs */
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = $1 AND c.relname = $2 ORDER BY a.attnum",
        3, p);
    if (PQntuples(res) == 0) {
        lm_error("table %s does not exist on the target", e->display);
        lm_detail("nothing of the transaction that changes it was applied");
        lm_hint("Create it on the target (lm-snapshot copies the schema), then restart lm-apply.");
        target_mismatch_exit();
    }
    for (uint32_t i = 0; i < ti->natts; i++) {
        const char *name = e->rel.cols[i].name;
        int row = -1;
        for (int k = 0; k < PQntuples(res); k++)
            if (!PQgetisnull(res, k, 0) && strcmp(PQgetvalue(res, k, 0), name) == 0)
                row = k;
        if (row < 0) {
            lm_error("column \"%s\" of table %s does not exist on the target", name, e->display);
            lm_detail("nothing of the transaction that changes it was applied");
            lm_hint("The source's table changed (ALTER TABLE): make the same change on the "
                    "target, then restart lm-apply.");
            target_mismatch_exit();
        }
        ti->colq[i] = lm_ident(name);
        ti->coltype[i] = lm_strdup(PQgetvalue(res, row, 1));
        ti->col_eq[i] = PQgetvalue(res, row, 2)[0] == 't';
        ti->col_always[i] = PQgetvalue(res, row, 5)[0] == 't';
        ti->any_always |= ti->col_always[i];
        if (PQgetvalue(res, row, 3)[0] == 't')
            pk[npk++] = i;
        if (e->rel.cols[i].flags & LM_COL_KEY)
            ti->key[ti->nkey++] = i;
    }
    {
        /* every primary key column of the target must be in the stream */
        int target_pk = 0;
        for (int k = 0; k < PQntuples(res); k++)
            if (PQgetvalue(res, k, 3)[0] == 't')
                target_pk++;
        pk_complete = target_pk > 0 && (uint32_t)target_pk == npk;
    }
    ti->other_unique = PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 4), "0") != 0;
    {
        /* what a row moved by delete and insert keeps besides the stream's
         * columns */
        lm_buf b = {0}, sel = {0};
        for (int k = 0; k < PQntuples(res); k++) {
            bool in_stream = false;
            char *q;
            if (PQgetisnull(res, k, 0) || PQgetvalue(res, k, 6)[0] == 't')
                continue;
            for (uint32_t i = 0; i < ti->natts && !in_stream; i++)
                in_stream = strcmp(e->rel.cols[i].name, PQgetvalue(res, k, 0)) == 0;
            if (in_stream)
                continue;
            q = lm_ident(PQgetvalue(res, k, 0));
            lm_buf_puts(&b, ", ");
            lm_buf_put(&b, q, strlen(q));
            lm_buf_puts(&sel, ", lm_moved.");
            lm_buf_put(&sel, q, strlen(q));
            free(q);
        }
        lm_buf_u8(&b, '\0');
        lm_buf_u8(&sel, '\0');
        ti->extra_cols = (char *)b.data;
        ti->extra_sel = (char *)sel.data;
    }
    PQclear(res);
    /* UPDATE ONLY, DELETE FROM ONLY of a partitioned table touch no row,
     * TRUNCATE ONLY of one is an error; a TimescaleDB hypertable keeps its
     * rows in chunks that inherit from it */
    res = tgt_query("SELECT c.relkind = 'p' OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid"
                    " AND t.tgname = 'ts_insert_blocker') FROM pg_class c JOIN pg_namespace n"
                    " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2", 2, p);
    ti->routed = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);

    if (e->rel.replident == 'f') {
        /* the old tuple carries every column: a primary key on the target
         * finds the row by index; without one, match all columns */
        if (pk_complete) {
            memcpy(ti->key, pk, npk * sizeof *pk);
            ti->nkey = npk;
        } else {
            ti->nkey = 0;
            ti->by_ctid = true;
        }
    } else if (ti->nkey == 0 && e->rel.replident != 'n') {
        ti->by_ctid = true;
    }
    free(pk);
    for (size_t i = 0; i < nsyncs; i++)
        if (strcmp(syncs[i].nsp, e->rel.nspname) == 0 && strcmp(syncs[i].rel, e->rel.relname) == 0)
            ti->sync_lsn = syncs[i].lsn;
    return ti;
}

bool tgt_change_wanted(lm_relentry *e, uint64_t commit_lsn)
{
    tabinfo *ti = table_info(e);
    return ti->sync_lsn == 0 || commit_lsn >= ti->sync_lsn;
}

/* Prepare (once) a statement for this table and key; returns its name. */
static const char *prepared(tabinfo *ti, const char *key, const char *sql, int nparams)
{
    stmt *s;
    for (size_t i = 0; i < ti->nstmts; i++)
        if (strcmp(ti->stmts[i].key, key) == 0)
            return ti->stmts[i].name;
    while (n_unused > 0) {
        char *dsql = lm_psprintf("DEALLOCATE %s", unused[--n_unused]);
        send_sql(dsql, 0, NULL, dsql);
        free(dsql);
    }
    ti->stmts = lm_realloc(ti->stmts, (ti->nstmts + 1) * sizeof *ti->stmts);
    s = &ti->stmts[ti->nstmts++];
    s->key = lm_strdup(key);
    snprintf(s->name, sizeof s->name, "lm%u", ++stmt_counter);
    pipeline_enter();
    lm_debug("preparing %s: %.120s", s->name, sql);
    desc_push("PREPARE %.80s", sql);
    sent(PQsendPrepare(tconn, s->name, sql, nparams, NULL));
    return s->name;
}

/* ------------------------------------------------------ pending changes */

enum pend_kind { PEND_NONE, PEND_INSERT, PEND_UPDATE, PEND_DELETE };

/* A run of inserts into one table becomes a COPY from this many rows on:
 * opening one costs about three round trips (pipeline sync, COPY start,
 * COPY end), which pipelined INSERTs (~140k rows/s) would spend on about a
 * hundred rows. */
#define COPY_MIN_ROWS 100

static struct {
    enum pend_kind kind;
    lm_relentry *rel;
    unsigned generation;
    char *colmask;           /* update: which columns are set */
    uint64_t rows;
    lm_buf rowbuf;           /* insert: rows as (kind, u32 len, bytes) */
    lm_buf *arrays;          /* update/delete: one text[] literal per parameter */
    uint32_t narrays;
    uint64_t *keyhash;       /* open addressing set of key hashes */
    size_t keycap;
    uint64_t lsn;            /* for messages */
    bool copying;            /* insert: a COPY is open; rows stream into it */
    lm_buf copybuf;          /* COPY text not sent yet */
} pend;

static bool copy_is_open(void) { return pend.copying; }

static void arrays_reset(uint32_t n)
{
    if (pend.narrays < n) {
        pend.arrays = lm_realloc(pend.arrays, n * sizeof(lm_buf));
        memset(pend.arrays + pend.narrays, 0, (n - pend.narrays) * sizeof(lm_buf));
        pend.narrays = n;
    }
    for (uint32_t i = 0; i < pend.narrays; i++)
        pend.arrays[i].len = 0;
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

static uint64_t hash_key(const lm_tuple *t, const tabinfo *ti)
{
    uint64_t h = 1469598103934665603ULL;
    for (uint32_t k = 0; k < ti->nkey; k++) {
        const lm_value *v = &t->cols[ti->key[k]];
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
static bool key_add(uint64_t h)
{
    size_t mask;
    if (pend.keycap < lim.batch_rows * 2) {
        size_t cap = 64;
        while (cap < lim.batch_rows * 2)
            cap *= 2;
        free(pend.keyhash);
        pend.keyhash = calloc(cap, sizeof(uint64_t));
        if (!pend.keyhash)
            lm_fatal(LM_EXIT_FAILURE, "out of memory");
        pend.keycap = cap;
    }
    mask = pend.keycap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (pend.keyhash[i] == 0) {
            pend.keyhash[i] = h;
            return true;
        }
        if (pend.keyhash[i] == h)
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

static char *column_list(const tabinfo *ti, const char *mask)
{
    lm_buf b = {0};
    for (uint32_t i = 0; i < ti->natts; i++) {
        if (mask && mask[i] != '1')
            continue;
        if (b.len)
            lm_buf_puts(&b, ", ");
        lm_buf_put(&b, ti->colq[i], strlen(ti->colq[i]));
    }
    lm_buf_u8(&b, '\0');
    return (char *)b.data;
}

/* One cell of pend.rowbuf (kind byte, u32 length, bytes: see the insert
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

/* Append the kept rows of the run as COPY text to pend.copybuf. */
static void rows_to_copy(tabinfo *ti)
{
    const uint8_t *p = pend.rowbuf.data, *end = p + pend.rowbuf.len;
    while (p < end) {
        for (uint32_t i = 0; i < ti->natts; i++) {
            char kind;
            uint32_t len;
            const uint8_t *data = row_cell(&p, &kind, &len);
            if (i)
                lm_buf_u8(&pend.copybuf, '\t');
            if (kind == 'n')
                lm_buf_puts(&pend.copybuf, "\\N");
            else
                copy_escape(&pend.copybuf, data, len);
        }
        lm_buf_u8(&pend.copybuf, '\n');
    }
    pend.rowbuf.len = 0;
}

static void copy_send(void)
{
    if (pend.copybuf.len == 0)
        return;
    if (PQputCopyData(tconn, (const char *)pend.copybuf.data, (int)pend.copybuf.len) != 1)
        lm_fatal(LM_EXIT_SERVER, "could not send COPY data to the target: %s", PQerrorMessage(tconn));
    pend.copybuf.len = 0;
}

/* A run of inserts has grown long: open a COPY and let the rows stream into
 * it as they arrive, so the target works while the stream is read. */
static void copy_open(void)
{
    lm_relentry *e = pend.rel;
    tabinfo *ti = table_info(e);
    char *cols = column_list(ti, NULL);
    char *sql = lm_psprintf("COPY %s (%s) FROM STDIN", e->qualname, cols);
    PGresult *res;

    pipeline_exit();
    res = PQexec(tconn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN)
        fail_result(res, lm_psprintf("a COPY into %s", e->display));
    PQclear(res);
    pend.copying = true;
    rows_to_copy(ti);
    copy_send();
    free(sql);
    free(cols);
}

static void copy_close(void)
{
    lm_relentry *e = pend.rel;
    PGresult *res;

    copy_send();
    if (PQputCopyEnd(tconn, NULL) != 1)
        lm_fatal(LM_EXIT_SERVER, "could not send COPY data to the target: %s", PQerrorMessage(tconn));
    res = PQgetResult(tconn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_result(res, lm_psprintf("a COPY of %" PRIu64 " rows into %s", pend.rows, e->display));
    PQclear(res);
    while ((res = PQgetResult(tconn)) != NULL)
        PQclear(res);
    st_rows_copy += pend.rows;
    st_stmts++;
    pend.copying = false;
}

static void flush_inserts(void)
{
    lm_relentry *e = pend.rel;
    tabinfo *ti = table_info(e);
    const uint8_t *p = pend.rowbuf.data;

    if (pend.copying) {
        copy_close();
        return;
    }
    /* a short run: pipelined INSERTs beat a COPY round trip */
    {
        lm_buf sql = {0};
        const char *name;
        char **vals = lm_malloc(sizeof(char *) * (ti->natts + 1));
        char desc[DESC_LEN];
        char *cols = column_list(ti, NULL);
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
        name = prepared(ti, "I", (char *)sql.data, (int)ti->natts);
        snprintf(desc, sizeof desc, "an insert into %s", e->display);
        for (uint64_t r = 0; r < pend.rows; r++) {
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
            send_prepared(name, (int)ti->natts, (const char *const *)vals, desc);
            for (uint32_t i = 0; i < ti->natts; i++)
                free(vals[i]);
            st_rows_insert++;
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
static void flush_updates(void)
{
    lm_relentry *e = pend.rel;
    tabinfo *ti = table_info(e);
    char *key = lm_psprintf("UB:%s", pend.colmask);
    const char *name = NULL;
    const char **vals;
    uint32_t np = 0;
    char desc[DESC_LEN];

    for (size_t i = 0; i < ti->nstmts; i++)
        if (strcmp(ti->stmts[i].key, key) == 0)
            name = ti->stmts[i].name;
    if (!name) {
        lm_buf sql = {0}, from = {0}, where = {0};
        uint32_t n = 0;
        char tmp[64];
        put_str(&sql, ti->routed ? "UPDATE " : "UPDATE ONLY ");
        lm_buf_put(&sql, e->qualname, strlen(e->qualname));
        lm_buf_puts(&sql, " AS t SET ");
        lm_buf_puts(&from, " FROM unnest(");
        unnest_keys(ti, &from, &where);
        n = ti->nkey;
        {
            bool first = true;
            for (uint32_t c = 0; c < ti->natts; c++) {
                if (pend.colmask[c] != '1')
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
        name = prepared(ti, key, (char *)sql.data, (int)n);
        lm_buf_free(&sql);
        lm_buf_free(&from);
        lm_buf_free(&where);
    }
    vals = lm_malloc(sizeof(char *) * (pend.narrays + 1));
    for (uint32_t i = 0; i < pend.narrays && pend.arrays[i].len; i++) {
        lm_buf_u8(&pend.arrays[i], '}');
        lm_buf_u8(&pend.arrays[i], '\0');
        vals[np++] = (const char *)pend.arrays[i].data;
    }
    snprintf(desc, sizeof desc, "a batch of %" PRIu64 " updates of %s", pend.rows, e->display);
    send_prepared(name, (int)np, vals, desc);
    st_rows_update += pend.rows;
    free(vals);
    free(key);
}

static void flush_deletes(void)
{
    lm_relentry *e = pend.rel;
    tabinfo *ti = table_info(e);
    const char *name = NULL;
    const char **vals;
    char desc[DESC_LEN];

    for (size_t i = 0; i < ti->nstmts; i++)
        if (strcmp(ti->stmts[i].key, "DB") == 0)
            name = ti->stmts[i].name;
    if (!name) {
        lm_buf sql = {0}, where = {0};
        char tmp[64];
        put_str(&sql, ti->routed ? "DELETE FROM " : "DELETE FROM ONLY ");
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
        name = prepared(ti, "DB", (char *)sql.data, (int)ti->nkey);
        lm_buf_free(&sql);
        lm_buf_free(&where);
    }
    vals = lm_malloc(sizeof(char *) * (ti->nkey + 1));
    for (uint32_t k = 0; k < ti->nkey; k++) {
        lm_buf_u8(&pend.arrays[k], '}');
        lm_buf_u8(&pend.arrays[k], '\0');
        vals[k] = (const char *)pend.arrays[k].data;
    }
    snprintf(desc, sizeof desc, "a batch of %" PRIu64 " deletes from %s", pend.rows, e->display);
    send_prepared(name, (int)ti->nkey, vals, desc);
    st_rows_delete += pend.rows;
    free(vals);
}

void tgt_flush_pending(void)
{
    if (pend.kind == PEND_NONE || pend.rows == 0) {
        pend.kind = PEND_NONE;
        return;
    }
    switch (pend.kind) {
    case PEND_INSERT: flush_inserts(); break;
    case PEND_UPDATE: flush_updates(); break;
    case PEND_DELETE: flush_deletes(); break;
    default: break;
    }
    pend.kind = PEND_NONE;
    pend.rows = 0;
    pend.rel = NULL;
    pend.rowbuf.len = 0;
    free(pend.colmask);
    pend.colmask = NULL;
    if (pend.keyhash)
        memset(pend.keyhash, 0, pend.keycap * sizeof(uint64_t));
}

static bool pend_matches(enum pend_kind kind, lm_relentry *e)
{
    return pend.kind == kind && pend.rel == e && pend.generation == e->generation;
}

static void pend_start(enum pend_kind kind, lm_relentry *e)
{
    tgt_flush_pending();
    pend.kind = kind;
    pend.rel = e;
    pend.generation = e->generation;
    pend.rows = 0;
}

/* ------------------------------------------------------------- changes */

void tgt_insert(lm_relentry *e, const lm_tuple *t)
{
    tabinfo *ti = table_info(e);

    if (t->ncols != ti->natts)
        lm_fatal(LM_EXIT_CORRUPT, "insert into %s has %u columns; its relation has %u",
                 e->display, t->ncols, ti->natts);
    begin_if_needed();
    if (!pend_matches(PEND_INSERT, e))
        pend_start(PEND_INSERT, e);
    for (uint32_t i = 0; i < t->ncols; i++) {
        const lm_value *v = &t->cols[i];
        if (v->kind == 'u' || v->kind == 'b')
            lm_fatal(LM_EXIT_CORRUPT, "insert into %s carries a%s value, which inserts never have",
                     e->display, v->kind == 'u' ? "n unchanged-TOAST" : " binary");
    }
    pend.rows++;
    if (pend.copying) {
        for (uint32_t i = 0; i < t->ncols; i++) {
            const lm_value *v = &t->cols[i];
            if (i)
                lm_buf_u8(&pend.copybuf, '\t');
            if (v->kind == 'n')
                lm_buf_puts(&pend.copybuf, "\\N");
            else
                copy_escape(&pend.copybuf, v->data, v->len);
        }
        lm_buf_u8(&pend.copybuf, '\n');
        if (pend.copybuf.len >= 65536)
            copy_send();
        return;
    }
    for (uint32_t i = 0; i < t->ncols; i++) {
        const lm_value *v = &t->cols[i];
        uint32_t len = v->kind == 'n' ? 0 : v->len;
        lm_buf_u8(&pend.rowbuf, (uint8_t)v->kind);
        lm_buf_put(&pend.rowbuf, &len, 4);
        lm_buf_put(&pend.rowbuf, v->data, len);
    }
    /* COPY needs a column list (the target's own default list may differ) */
    if (pend.rows >= COPY_MIN_ROWS && ti->natts > 0)
        copy_open();
}

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

static bool values_equal(const lm_value *a, const lm_value *b)
{
    return a->kind == b->kind && a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
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
    put_str(sql, ti->routed ? " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM "
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

static void send_single(lm_relentry *e, tabinfo *ti, const char *keyprefix, lm_buf *sql,
                        char *mask, char **vals, uint32_t n, const char *what)
{
    char *key = lm_psprintf("%s:%s", keyprefix, mask);
    const char *name;
    char desc[DESC_LEN];
    lm_buf_u8(sql, '\0');
    name = prepared(ti, key, (char *)sql->data, (int)n);
    snprintf(desc, sizeof desc, "%s %s", what, e->display);
    send_prepared(name, (int)n, (const char *const *)vals, desc);
    for (uint32_t i = 0; i < n; i++)
        free(vals[i]);
    free(key);
}

/* An update that may give an identity column GENERATED ALWAYS a new value
 * (UPDATE ... SET id = DEFAULT on the source): an UPDATE may set such a
 * column only to DEFAULT, which would draw the target's own sequence, so
 * the row moves in one statement: deleted, and inserted again with its new
 * values; the columns the stream left out (unchanged TOAST, columns only
 * the target has) are taken from the deleted row. Under session_replication_role = replica no foreign key
 * or ordinary trigger sees the move. */
static void update_by_move(lm_relentry *e, tabinfo *ti, const lm_tuple *ot, const lm_tuple *nt)
{
    lm_buf sql = {0};
    char **vals = lm_malloc(sizeof(char *) * (2 * ti->natts + 2));
    char *keymask = lm_malloc(2 * ti->natts + 2);
    char *cols = column_list(ti, NULL);
    uint32_t n = 0, nw = 0;
    char tmp[32];

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
    send_single(e, ti, "M1", &sql, keymask, vals, nw + n, "an update (moving an identity value) of");
    st_rows_update++;
    free(vals);
    free(keymask);
    free(cols);
    lm_buf_free(&sql);
}

void tgt_update(lm_relentry *e, const lm_record *r)
{
    tabinfo *ti = table_info(e);
    const lm_tuple *nt = &r->u.update.newtup;
    const lm_tuple *ot = r->u.update.oldkind ? &r->u.update.oldtup : nt;
    bool key_changed = r->u.update.oldkind == 'K';
    bool key_ok = true;
    char *mask;
    char *skip = NULL;       /* identity columns GENERATED ALWAYS left out */
    uint32_t nset = 0;

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
            begin_if_needed();
            tgt_flush_pending();
            update_by_move(e, ti, ot, nt);
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
    begin_if_needed();

    mask = lm_malloc(ti->natts + 1);
    memset(mask, '0', ti->natts);
    mask[ti->natts] = '\0';

    if (!ti->by_ctid && !key_changed && key_ok && !ti->other_unique) {
        /* batched: SET the present non-key columns */
        for (uint32_t c = 0; c < ti->natts; c++) {
            bool is_key = false;
            for (uint32_t k = 0; k < ti->nkey; k++)
                is_key |= ti->key[k] == c;
            if (!is_key && nt->cols[c].kind != 'u' && !(skip && skip[c])) {
                mask[c] = '1';
                nset++;
            }
        }
        free(skip);
        if (nset == 0) {
            free(mask); /* nothing changes: never an empty SET list */
            return;
        }
        if (!pend_matches(PEND_UPDATE, e) || strcmp(pend.colmask, mask) != 0 ||
            pend.rows >= lim.batch_rows) {
            pend_start(PEND_UPDATE, e);
            pend.colmask = mask;
            arrays_reset(ti->nkey + nset);
        } else
            free(mask);
        if (!key_add(hash_key(ot, ti))) {
            /* two changes to one key never share a batch */
            char *m = lm_strdup(pend.colmask);
            pend_start(PEND_UPDATE, e);
            pend.colmask = m;
            arrays_reset(ti->nkey + nset);
            key_add(hash_key(ot, ti));
        }
        {
            uint32_t a = 0;
            for (uint32_t k = 0; k < ti->nkey; k++)
                arr_add(&pend.arrays[a++], &ot->cols[ti->key[k]]);
            for (uint32_t c = 0; c < ti->natts; c++)
                if (pend.colmask[c] == '1')
                    arr_add(&pend.arrays[a++], &nt->cols[c]);
        }
        pend.rows++;
        return;
    }

    /* one row: key changes, other unique indexes, or matching by all columns */
    tgt_flush_pending();
    {
        lm_buf sql = {0};
        char **vals = lm_malloc(sizeof(char *) * (2 * ti->natts + 2));
        uint32_t n = 0;
        char *keymask = lm_malloc(2 * ti->natts + 2);
        char tmp[32];
        memset(keymask, '0', 2 * ti->natts + 1);
        keymask[2 * ti->natts + 1] = '\0';
        put_str(&sql, ti->routed ? "UPDATE " : "UPDATE ONLY ");
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
        free(skip);
        if (n == 0) {
            free(vals);
            free(keymask);
            free(mask);
            lm_buf_free(&sql);
            return;
        }
        {
            uint32_t nw = 0;
            where_clause(&sql, e, ti, ot, n, vals, &nw, keymask + ti->natts);
            send_single(e, ti, "U1", &sql, keymask, vals, n + nw, "an update of");
        }
        st_rows_update++;
        free(vals);
        free(keymask);
        free(mask);
        lm_buf_free(&sql);
    }
}

void tgt_delete(lm_relentry *e, const lm_record *r)
{
    tabinfo *ti = table_info(e);
    const lm_tuple *ot = &r->u.del.oldtup;
    bool key_ok = !ti->by_ctid;

    if (ot->ncols != ti->natts)
        lm_fatal(LM_EXIT_CORRUPT, "delete from %s has a tuple of the wrong width", e->display);
    for (uint32_t k = 0; k < ti->nkey && key_ok; k++)
        if (ot->cols[ti->key[k]].kind == 'u' || ot->cols[ti->key[k]].kind == 'n')
            key_ok = false;
    begin_if_needed();
    if (key_ok) {
        if (!pend_matches(PEND_DELETE, e) || pend.rows >= lim.batch_rows) {
            pend_start(PEND_DELETE, e);
            arrays_reset(ti->nkey);
        }
        if (!key_add(hash_key(ot, ti))) {
            pend_start(PEND_DELETE, e);
            arrays_reset(ti->nkey);
            key_add(hash_key(ot, ti));
        }
        for (uint32_t k = 0; k < ti->nkey; k++)
            arr_add(&pend.arrays[k], &ot->cols[ti->key[k]]);
        pend.rows++;
        return;
    }
    tgt_flush_pending();
    {
        lm_buf sql = {0};
        char **vals = lm_malloc(sizeof(char *) * (ti->natts + 1));
        char *keymask = lm_malloc(ti->natts + 1);
        uint32_t n = 0;
        memset(keymask, '0', ti->natts);
        keymask[ti->natts] = '\0';
        put_str(&sql, ti->routed ? "DELETE FROM " : "DELETE FROM ONLY ");
        lm_buf_put(&sql, e->qualname, strlen(e->qualname));
        where_clause(&sql, e, ti, ot, 0, vals, &n, keymask);
        send_single(e, ti, "D1", &sql, keymask, vals, n, "a delete from");
        st_rows_delete++;
        free(vals);
        free(keymask);
        lm_buf_free(&sql);
    }
}

void tgt_truncate(lm_relentry **rels, uint32_t n, uint8_t flags)
{
    lm_buf sql = {0};
    char desc[DESC_LEN];

    if (n == 0)
        return;
    tgt_flush_pending();
    begin_if_needed();
    /* exactly the relations listed (the source's cascade is already in the
     * list), never CASCADE here */
    lm_buf_puts(&sql, "TRUNCATE ");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            lm_buf_puts(&sql, ", ");
        if (!table_info(rels[i])->routed)
            lm_buf_puts(&sql, "ONLY ");
        lm_buf_put(&sql, rels[i]->qualname, strlen(rels[i]->qualname));
    }
    if (flags & LM_TRUNCATE_RESTART_IDENTITY)
        lm_buf_puts(&sql, " RESTART IDENTITY");
    lm_buf_u8(&sql, '\0');
    snprintf(desc, sizeof desc, "a truncate of %s%s", rels[0]->display, n > 1 ? " and others" : "");
    send_sql((char *)sql.data, 0, NULL, desc);
    lm_buf_free(&sql);
}

void tgt_marker(const lm_record *m)
{
    char lsn[LM_LSN_BUFSZ];
    char *payload = lm_malloc(m->u.message.len + 1);
    const char *p[3];

    tgt_flush_pending();
    begin_if_needed();
    memcpy(payload, m->u.message.content, m->u.message.len);
    payload[m->u.message.len] = '\0';
    p[0] = origin_name;
    p[1] = payload;
    p[2] = lm_lsn_format(m->u.message.lsn, lsn);
    send_sql("INSERT INTO lm.marker (origin, payload, lsn) VALUES ($1, $2, $3::pg_lsn) "
             "ON CONFLICT (origin, payload) DO NOTHING", 3, p, "the cutover marker");
    free(payload);
}

void tgt_commit(uint64_t end_lsn, int64_t commit_ts)
{
    char lsn[LM_LSN_BUFSZ], ts[64];
    const char *p[3];

    if (!xact_open)
        return;
    tgt_flush_pending();
    p[0] = lm_lsn_format(end_lsn, lsn);
    p[1] = lm_pgtime_format(commit_ts, ts);
    send_sql("SELECT pg_replication_origin_xact_setup($1::pg_lsn, $2::timestamptz)", 2, p,
             "the origin position");
    p[0] = origin_name;
    p[1] = lsn;
    p[2] = ts;
    send_sql("INSERT INTO lm.progress (origin, end_lsn, commit_ts, applied_at) "
             "VALUES ($1, $2::pg_lsn, $3::timestamptz, clock_timestamp()) ON CONFLICT (origin) DO "
             "UPDATE SET end_lsn = excluded.end_lsn, commit_ts = excluded.commit_ts, "
             "applied_at = excluded.applied_at", 3, p, "the progress row");
    send_sql("COMMIT", 0, NULL, "COMMIT");
    xact_open = false;
    sync_wait();
}

void tgt_rollback(void)
{
    /* forget what is pending, undo what was sent */
    if (pend.copying) {
        PGresult *res;
        PQputCopyEnd(tconn, "transaction abandoned");
        while ((res = PQgetResult(tconn)) != NULL)
            PQclear(res);
        pend.copying = false;
        pend.copybuf.len = 0;
    }
    pend.kind = PEND_NONE;
    pend.rows = 0;
    pend.rowbuf.len = 0;
    free(pend.colmask);
    pend.colmask = NULL;
    if (pend.keyhash)
        memset(pend.keyhash, 0, pend.keycap * sizeof(uint64_t));
    if (xact_open) {
        send_sql("ROLLBACK", 0, NULL, "ROLLBACK");
        xact_open = false;
    }
    sync_wait();
}
