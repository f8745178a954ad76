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

#define DESC_LEN 120

typedef struct stmt {
    char *key;               /* operation and column set */
    char name[16];
} stmt;

typedef struct tabinfo {
    struct apply_target *t;  /* the session its statements are prepared in */
    unsigned generation;
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

enum pend_kind { PEND_NONE, PEND_INSERT, PEND_UPDATE, PEND_DELETE };

typedef struct pending {
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
    bool copying;            /* insert: a COPY is open; rows stream into it */
    lm_buf copybuf;          /* COPY text not sent yet */
} pending;

/* The target session: the connection, its open transaction, the queries
 * in flight in pipeline mode, the changes pending, and what is known of
 * the target's tables. lm-apply has one; every tgt_ function takes it. */
struct apply_target {
    PGconn *conn;
    const char *conninfo;    /* for pg_restore (bulk.c) */
    apply_limits lim;
    const char *origin;      /* the replication origin, once set up */
    void (*mismatch_hook)(void *arg);
    void *mismatch_arg;
    apply_stats st;
    bool xact_open;
    char *encoding;          /* client_encoding of the session (NULL: the default) */
    struct {
        bool on;             /* in pipeline mode */
        char (*descs)[DESC_LEN];  /* what each pending query is, for errors */
        size_t head, len, cap;
        size_t syncs;        /* syncs sent and not yet consumed */
        bool got;            /* the head query has given its result */
        bool capture_next;   /* keep the result of the query marked so */
        PGresult *captured;
        size_t sends;        /* since the last consume */
    } pl;
    unsigned stmt_counter;   /* names prepared statements */
    syncpos *syncs;          /* lm.sync: per-table sync positions */
    size_t nsyncs;
    char (*unused)[16];      /* statements of redefined tables, to deallocate
                              * before the next prepare */
    size_t n_unused, cap_unused;
    pending pend;
};

static void put_str(lm_buf *b, const char *s) { lm_buf_put(b, s, strlen(s)); }

/* ------------------------------------------------------------ pipeline */

static void desc_push(apply_target *t, const char *fmt, ...) LM_PRINTF(2, 3);
static void desc_push(apply_target *t, const char *fmt, ...)
{
    va_list ap;
    if (t->pl.len == t->pl.cap) {
        size_t ncap = t->pl.cap ? t->pl.cap * 2 : 256;
        char (*n)[DESC_LEN] = lm_malloc(ncap * DESC_LEN);
        for (size_t i = 0; i < t->pl.len; i++)
            memcpy(n[i], t->pl.descs[(t->pl.head + i) % t->pl.cap], DESC_LEN);
        free(t->pl.descs);
        t->pl.descs = n;
        t->pl.cap = ncap;
        t->pl.head = 0;
    }
    va_start(ap, fmt);
    vsnprintf(t->pl.descs[(t->pl.head + t->pl.len) % t->pl.cap], DESC_LEN, fmt, ap);
    va_end(ap);
    t->pl.len++;
}

static void fail_result(apply_target *t, PGresult *res, const char *what)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    int code = LM_EXIT_SERVER;

    lm_error("could not apply %s: %s", what,
             PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                 ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                 : PQerrorMessage(t->conn));
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
static void consume(apply_target *t, bool wait)
{
    while (t->pl.len > 0 || t->pl.syncs > 0) {
        PGresult *res;
        if (!wait) {
            if (!PQconsumeInput(t->conn))
                lm_fatal(LM_EXIT_SERVER, "lost the target connection: %s", PQerrorMessage(t->conn));
            if (PQisBusy(t->conn))
                return;
        }
        res = PQgetResult(t->conn);
        if (res == NULL) {
            if (t->pl.got) {
                t->pl.got = false;
                t->pl.head = (t->pl.head + 1) % t->pl.cap;
                t->pl.len--;
                continue;
            }
            if (PQstatus(t->conn) != CONNECTION_OK)
                lm_fatal(LM_EXIT_SERVER, "lost the target connection: %s", PQerrorMessage(t->conn));
            if (!wait)
                return;
            continue;
        }
        switch (PQresultStatus(res)) {
        case PGRES_PIPELINE_SYNC:
            t->pl.syncs--;
            PQclear(res);
            break;
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
            t->pl.got = true;
            if (t->pl.capture_next && t->pl.len == 1 && !t->pl.captured)
                t->pl.captured = res;
            else
                PQclear(res);
            break;
        default:
            fail_result(t, res, t->pl.len ? t->pl.descs[t->pl.head] : "a statement");
        }
    }
}

static void pipeline_enter(apply_target *t)
{
    if (!t->pl.on) {
        if (!PQenterPipelineMode(t->conn))
            lm_fatal(LM_EXIT_SERVER, "could not enter pipeline mode: %s", PQerrorMessage(t->conn));
        t->pl.on = true;
    }
}

static void sent(apply_target *t, int ok)
{
    if (!ok)
        lm_fatal(LM_EXIT_SERVER, "could not send to the target: %s", PQerrorMessage(t->conn));
    t->st.stmts++;
    if (++t->pl.sends >= 64) {
        t->pl.sends = 0;
        consume(t, false);
    }
}

static void send_sql(apply_target *t, const char *sql, int n, const char *const *vals, const char *desc)
{
    pipeline_enter(t);
    desc_push(t, "%s", desc);
    sent(t, PQsendQueryParams(t->conn, sql, n, NULL, vals, NULL, NULL, 0));
}

static void send_prepared(apply_target *t, const char *name, int n, const char *const *vals, const char *desc)
{
    pipeline_enter(t);
    desc_push(t, "%s", desc);
    sent(t, PQsendQueryPrepared(t->conn, name, n, vals, NULL, NULL, 0));
}

/* Sync and wait for everything sent so far. */
static void sync_wait(apply_target *t)
{
    if (!t->pl.on)
        return;
    if (!PQpipelineSync(t->conn))
        lm_fatal(LM_EXIT_SERVER, "could not sync with the target: %s", PQerrorMessage(t->conn));
    t->pl.syncs++;
    consume(t, true);
}

static void pipeline_exit(apply_target *t)
{
    if (!t->pl.on)
        return;
    sync_wait(t);
    if (!PQexitPipelineMode(t->conn))
        lm_fatal(LM_EXIT_SERVER, "could not leave pipeline mode: %s", PQerrorMessage(t->conn));
    t->pl.on = false;
}

PGresult *tgt_query(apply_target *t, const char *sql, int nparams, const char *const *params)
{
    PGresult *res;
    pipeline_enter(t);
    t->pl.capture_next = true;
    send_sql(t, sql, nparams, params, "an internal query");
    sync_wait(t);
    t->pl.capture_next = false;
    res = t->pl.captured;
    t->pl.captured = NULL;
    if (!res)
        lm_fatal(LM_EXIT_SERVER, "no result for: %s", sql);
    return res;
}

static void begin_if_needed(apply_target *t)
{
    if (!t->xact_open) {
        send_sql(t, "BEGIN", 0, NULL, "BEGIN");
        t->xact_open = true;
    }
}

bool tgt_in_xact(apply_target *t) { return t->xact_open; }
void tgt_touch(apply_target *t) { begin_if_needed(t); }
void tgt_leave_pipeline(apply_target *t) { pipeline_exit(t); }

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
    pipeline_exit(t);
    lit = lm_literal(enc);
    sql = lm_psprintf("SET client_encoding = %s", lit);
    lm_exec_cmd(t->conn, LM_EXIT_SERVER, sql);
    free(sql);
    free(lit);
    free(t->encoding);
    t->encoding = lm_strdup(enc);
}

/* ------------------------------------------------------- connect, origin */

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
        res = tgt_query(t, flush ? "SELECT pg_replication_origin_progress($1, true)"
                              : "SELECT pg_replication_origin_progress($1, false)", 1, p);
    else
        res = lm_execp(t->conn, LM_EXIT_SERVER,
                       flush ? "SELECT pg_replication_origin_progress($1, true)"
                             : "SELECT pg_replication_origin_progress($1, false)", 1, p);
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        lm_lsn_parse(PQgetvalue(res, 0, 0), &lsn);
    PQclear(res);
    return lsn;
}

/* ------------------------------------------------------- table metadata */

void tgt_free_tabinfo(void *p)
{
    tabinfo *ti = p;
    apply_target *t;
    if (!ti)
        return;
    t = ti->t;
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
        if (t->n_unused == t->cap_unused) {
            t->cap_unused = t->cap_unused ? t->cap_unused * 2 : 64;
            t->unused = lm_realloc(t->unused, t->cap_unused * sizeof *t->unused);
        }
        memcpy(t->unused[t->n_unused++], ti->stmts[i].name, sizeof *t->unused);
        free(ti->stmts[i].key);
    }
    free(ti->stmts);
    free(ti);
}

void tgt_load_sync(apply_target *t)
{
    PGresult *res;
    for (size_t i = 0; i < t->nsyncs; i++) {
        free(t->syncs[i].nsp);
        free(t->syncs[i].rel);
    }
    free(t->syncs);
    t->syncs = NULL;
    t->nsyncs = 0;
    if (!lm_state_exists(t->conn))
        return;
    res = lm_exec(t->conn, LM_EXIT_SERVER, "SELECT nspname, relname, sync_lsn::text FROM lm.sync");
    t->nsyncs = (size_t)PQntuples(res);
    t->syncs = lm_malloc(sizeof *t->syncs * (t->nsyncs + 1));
    for (size_t i = 0; i < t->nsyncs; i++) {
        t->syncs[i].nsp = lm_strdup(PQgetvalue(res, (int)i, 0));
        t->syncs[i].rel = lm_strdup(PQgetvalue(res, (int)i, 1));
        lm_lsn_parse(PQgetvalue(res, (int)i, 2), &t->syncs[i].lsn);
    }
    PQclear(res);
}

static bool copy_is_open(apply_target *t);

/* The target lacks a table or column: nothing failed on the server yet, so
 * the complete source transactions before this one can still be committed
 * (the hook) before exiting. */
static void target_mismatch_exit(apply_target *t)
{
    void (*hook)(void *) = t->mismatch_hook;
    t->mismatch_hook = NULL;
    if (hook)
        hook(t->mismatch_arg);
    exit(LM_EXIT_PREFLIGHT);
}

static tabinfo *table_info(apply_target *t, lm_relentry *e)
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
    ti->t = t;
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
    if (copy_is_open(t))
        tgt_flush_pending(t);
    res = tgt_query(t,
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
        target_mismatch_exit(t);
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
            target_mismatch_exit(t);
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
    res = tgt_query(t, "SELECT c.relkind = 'p' OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid"
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
    for (size_t i = 0; i < t->nsyncs; i++)
        if (strcmp(t->syncs[i].nsp, e->rel.nspname) == 0 && strcmp(t->syncs[i].rel, e->rel.relname) == 0)
            ti->sync_lsn = t->syncs[i].lsn;
    return ti;
}

bool tgt_change_wanted(apply_target *t, lm_relentry *e, uint64_t commit_lsn)
{
    tabinfo *ti = table_info(t, e);
    return ti->sync_lsn == 0 || commit_lsn >= ti->sync_lsn;
}

/* Prepare (once) a statement for this table and key; returns its name. */
static const char *prepared(apply_target *t, tabinfo *ti, const char *key, const char *sql, int nparams)
{
    stmt *s;
    for (size_t i = 0; i < ti->nstmts; i++)
        if (strcmp(ti->stmts[i].key, key) == 0)
            return ti->stmts[i].name;
    while (t->n_unused > 0) {
        char *dsql = lm_psprintf("DEALLOCATE %s", t->unused[--t->n_unused]);
        send_sql(t, dsql, 0, NULL, dsql);
        free(dsql);
    }
    ti->stmts = lm_realloc(ti->stmts, (ti->nstmts + 1) * sizeof *ti->stmts);
    s = &ti->stmts[ti->nstmts++];
    s->key = lm_strdup(key);
    snprintf(s->name, sizeof s->name, "lm%u", ++t->stmt_counter);
    pipeline_enter(t);
    lm_debug("preparing %s: %.120s", s->name, sql);
    desc_push(t, "PREPARE %.80s", sql);
    sent(t, PQsendPrepare(t->conn, s->name, sql, nparams, NULL));
    return s->name;
}

/* ------------------------------------------------------ pending changes */

/* A run of inserts into one table becomes a COPY from this many rows on:
 * opening one costs about three round trips (pipeline sync, COPY start,
 * COPY end), which pipelined INSERTs (~140k rows/s) would spend on about a
 * hundred rows. */
#define COPY_MIN_ROWS 100

static bool copy_is_open(apply_target *t) { return t->pend.copying; }

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
        lm_fatal(LM_EXIT_SERVER, "could not send COPY data to the target: %s", PQerrorMessage(t->conn));
    t->pend.copybuf.len = 0;
}

/* A run of inserts has grown long: open a COPY and let the rows stream into
 * it as they arrive, so the target works while the stream is read. */
static void copy_open(apply_target *t)
{
    lm_relentry *e = t->pend.rel;
    tabinfo *ti = table_info(t, e);
    char *cols = column_list(ti, NULL);
    char *sql = lm_psprintf("COPY %s (%s) FROM STDIN", e->qualname, cols);
    PGresult *res;

    pipeline_exit(t);
    res = PQexec(t->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN)
        fail_result(t, res, lm_psprintf("a COPY into %s", e->display));
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
        lm_fatal(LM_EXIT_SERVER, "could not send COPY data to the target: %s", PQerrorMessage(t->conn));
    res = PQgetResult(t->conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_result(t, res, lm_psprintf("a COPY of %" PRIu64 " rows into %s", t->pend.rows, e->display));
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
    tabinfo *ti = table_info(t, e);
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
        name = prepared(t, ti, "I", (char *)sql.data, (int)ti->natts);
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
            send_prepared(t, name, (int)ti->natts, (const char *const *)vals, desc);
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
    tabinfo *ti = table_info(t, e);
    char *key = lm_psprintf("UB:%s", t->pend.colmask);
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
        name = prepared(t, ti, key, (char *)sql.data, (int)n);
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
    send_prepared(t, name, (int)np, vals, desc);
    t->st.rows_update += t->pend.rows;
    free(vals);
    free(key);
}

static void flush_deletes(apply_target *t)
{
    lm_relentry *e = t->pend.rel;
    tabinfo *ti = table_info(t, e);
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
        name = prepared(t, ti, "DB", (char *)sql.data, (int)ti->nkey);
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
    send_prepared(t, name, (int)ti->nkey, vals, desc);
    t->st.rows_delete += t->pend.rows;
    free(vals);
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
    t->pend.kind = PEND_NONE;
    t->pend.rows = 0;
    t->pend.rel = NULL;
    t->pend.rowbuf.len = 0;
    free(t->pend.colmask);
    t->pend.colmask = NULL;
    if (t->pend.keyhash)
        memset(t->pend.keyhash, 0, t->pend.keycap * sizeof(uint64_t));
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

/* ------------------------------------------------------------- changes */

void tgt_insert(apply_target *t, lm_relentry *e, const lm_tuple *tup)
{
    tabinfo *ti = table_info(t, e);

    if (tup->ncols != ti->natts)
        lm_fatal(LM_EXIT_CORRUPT, "insert into %s has %u columns; its relation has %u",
                 e->display, tup->ncols, ti->natts);
    begin_if_needed(t);
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

static void send_single(apply_target *t, lm_relentry *e, tabinfo *ti, const char *keyprefix, lm_buf *sql,
                        char *mask, char **vals, uint32_t n, const char *what)
{
    char *key = lm_psprintf("%s:%s", keyprefix, mask);
    const char *name;
    char desc[DESC_LEN];
    lm_buf_u8(sql, '\0');
    name = prepared(t, ti, key, (char *)sql->data, (int)n);
    snprintf(desc, sizeof desc, "%s %s", what, e->display);
    send_prepared(t, name, (int)n, (const char *const *)vals, desc);
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
static void update_by_move(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *ot, const lm_tuple *nt)
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
    send_single(t, e, ti, "M1", &sql, keymask, vals, nw + n, "an update (moving an identity value) of");
    t->st.rows_update++;
    free(vals);
    free(keymask);
    free(cols);
    lm_buf_free(&sql);
}

void tgt_update(apply_target *t, lm_relentry *e, const lm_record *r)
{
    tabinfo *ti = table_info(t, e);
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
            begin_if_needed(t);
            tgt_flush_pending(t);
            update_by_move(t, e, ti, ot, nt);
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
        if (!pend_matches(t, PEND_UPDATE, e) || strcmp(t->pend.colmask, mask) != 0 ||
            t->pend.rows >= t->lim.batch_rows) {
            pend_start(t, PEND_UPDATE, e);
            t->pend.colmask = mask;
            arrays_reset(t, ti->nkey + nset);
        } else
            free(mask);
        if (!key_add(t, hash_key(ot, ti))) {
            /* two changes to one key never share a batch */
            char *m = lm_strdup(t->pend.colmask);
            pend_start(t, PEND_UPDATE, e);
            t->pend.colmask = m;
            arrays_reset(t, ti->nkey + nset);
            key_add(t, hash_key(ot, ti));
        }
        {
            uint32_t a = 0;
            for (uint32_t k = 0; k < ti->nkey; k++)
                arr_add(&t->pend.arrays[a++], &ot->cols[ti->key[k]]);
            for (uint32_t c = 0; c < ti->natts; c++)
                if (t->pend.colmask[c] == '1')
                    arr_add(&t->pend.arrays[a++], &nt->cols[c]);
        }
        t->pend.rows++;
        return;
    }

    /* one row: key changes, other unique indexes, or matching by all columns */
    tgt_flush_pending(t);
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
            send_single(t, e, ti, "U1", &sql, keymask, vals, n + nw, "an update of");
        }
        t->st.rows_update++;
        free(vals);
        free(keymask);
        free(mask);
        lm_buf_free(&sql);
    }
}

void tgt_delete(apply_target *t, lm_relentry *e, const lm_record *r)
{
    tabinfo *ti = table_info(t, e);
    const lm_tuple *ot = &r->u.del.oldtup;
    bool key_ok = !ti->by_ctid;

    if (ot->ncols != ti->natts)
        lm_fatal(LM_EXIT_CORRUPT, "delete from %s has a tuple of the wrong width", e->display);
    for (uint32_t k = 0; k < ti->nkey && key_ok; k++)
        if (ot->cols[ti->key[k]].kind == 'u' || ot->cols[ti->key[k]].kind == 'n')
            key_ok = false;
    begin_if_needed(t);
    if (key_ok) {
        if (!pend_matches(t, PEND_DELETE, e) || t->pend.rows >= t->lim.batch_rows) {
            pend_start(t, PEND_DELETE, e);
            arrays_reset(t, ti->nkey);
        }
        if (!key_add(t, hash_key(ot, ti))) {
            pend_start(t, PEND_DELETE, e);
            arrays_reset(t, ti->nkey);
            key_add(t, hash_key(ot, ti));
        }
        for (uint32_t k = 0; k < ti->nkey; k++)
            arr_add(&t->pend.arrays[k], &ot->cols[ti->key[k]]);
        t->pend.rows++;
        return;
    }
    tgt_flush_pending(t);
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
        send_single(t, e, ti, "D1", &sql, keymask, vals, n, "a delete from");
        t->st.rows_delete++;
        free(vals);
        free(keymask);
        lm_buf_free(&sql);
    }
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
        if (!table_info(t, rels[i])->routed)
            lm_buf_puts(&sql, "ONLY ");
        lm_buf_put(&sql, rels[i]->qualname, strlen(rels[i]->qualname));
    }
    if (flags & LM_TRUNCATE_RESTART_IDENTITY)
        lm_buf_puts(&sql, " RESTART IDENTITY");
    lm_buf_u8(&sql, '\0');
    snprintf(desc, sizeof desc, "a truncate of %s%s", rels[0]->display, n > 1 ? " and others" : "");
    send_sql(t, (char *)sql.data, 0, NULL, desc);
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
    send_sql(t, "INSERT INTO lm.marker (origin, payload, lsn) VALUES ($1, $2, $3::pg_lsn) "
             "ON CONFLICT (origin, payload) DO NOTHING", 3, p, "the cutover marker");
    free(payload);
}

void tgt_commit(apply_target *t, uint64_t end_lsn, int64_t commit_ts)
{
    char lsn[LM_LSN_BUFSZ], ts[64];
    const char *p[3];

    if (!t->xact_open)
        return;
    tgt_flush_pending(t);
    p[0] = lm_lsn_format(end_lsn, lsn);
    p[1] = lm_pgtime_format(commit_ts, ts);
    send_sql(t, "SELECT pg_replication_origin_xact_setup($1::pg_lsn, $2::timestamptz)", 2, p,
             "the origin position");
    p[0] = t->origin;
    p[1] = lsn;
    p[2] = ts;
    send_sql(t, "INSERT INTO lm.progress (origin, end_lsn, commit_ts, applied_at) "
             "VALUES ($1, $2::pg_lsn, $3::timestamptz, clock_timestamp()) ON CONFLICT (origin) DO "
             "UPDATE SET end_lsn = excluded.end_lsn, commit_ts = excluded.commit_ts, "
             "applied_at = excluded.applied_at", 3, p, "the progress row");
    send_sql(t, "COMMIT", 0, NULL, "COMMIT");
    t->xact_open = false;
    sync_wait(t);
}

void tgt_rollback(apply_target *t)
{
    /* forget what is pending, undo what was sent */
    if (t->pend.copying) {
        PGresult *res;
        PQputCopyEnd(t->conn, "transaction abandoned");
        while ((res = PQgetResult(t->conn)) != NULL)
            PQclear(res);
        t->pend.copying = false;
        t->pend.copybuf.len = 0;
    }
    t->pend.kind = PEND_NONE;
    t->pend.rows = 0;
    t->pend.rowbuf.len = 0;
    free(t->pend.colmask);
    t->pend.colmask = NULL;
    if (t->pend.keyhash)
        memset(t->pend.keyhash, 0, t->pend.keycap * sizeof(uint64_t));
    if (t->xact_open) {
        send_sql(t, "ROLLBACK", 0, NULL, "ROLLBACK");
        t->xact_open = false;
    }
    sync_wait(t);
}
