#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "exitcodes.h"
#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "state.h"

static const char ddl[] =
    "CREATE SCHEMA IF NOT EXISTS lm;\n"
    "COMMENT ON SCHEMA lm IS 'state of an lm live migration (see lm-state(7)); dropped by lm-migrate clean';\n"
    "CREATE TABLE IF NOT EXISTS lm.meta (\n"
    "  key text PRIMARY KEY,\n"
    "  value text NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS lm.origin (\n"
    "  origin text PRIMARY KEY,\n"
    "  source_sysid numeric(20,0) NOT NULL,\n"
    "  source_db text NOT NULL,\n"
    "  slot text NOT NULL,\n"
    "  created_at timestamptz NOT NULL DEFAULT now());\n"
    "CREATE TABLE IF NOT EXISTS lm.copy (\n"
    "  nspname text NOT NULL,\n"
    "  relname text NOT NULL,\n"
    "  chunk integer NOT NULL,\n"
    "  nchunks integer NOT NULL,\n"
    "  first_page bigint,\n"
    "  last_page bigint,\n"
    "  rows bigint,\n"
    "  bytes bigint,\n"
    "  snapshot text,\n"
    "  sync_lsn pg_lsn,\n"
    "  done_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
    "  PRIMARY KEY (nspname, relname, chunk));\n"
    "CREATE TABLE IF NOT EXISTS lm.sync (\n"
    "  nspname text NOT NULL,\n"
    "  relname text NOT NULL,\n"
    "  sync_lsn pg_lsn NOT NULL,\n"
    "  snapshot text,\n"
    "  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
    "  PRIMARY KEY (nspname, relname));\n"
    "CREATE TABLE IF NOT EXISTS lm.marker (\n"
    "  origin text NOT NULL,\n"
    "  payload text NOT NULL,\n"
    "  lsn pg_lsn NOT NULL,\n"
    "  applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
    "  PRIMARY KEY (origin, payload));\n"
    "CREATE TABLE IF NOT EXISTS lm.progress (\n"
    "  origin text PRIMARY KEY,\n"
    "  end_lsn pg_lsn NOT NULL,\n"
    "  commit_ts timestamptz,\n"
    "  applied_at timestamptz NOT NULL DEFAULT clock_timestamp());\n"
    "INSERT INTO lm.meta VALUES ('state_version', '1') ON CONFLICT (key) DO NOTHING;\n";

const char *lm_state_ddl(void) { return ddl; }

bool lm_state_exists(PGconn *target)
{
    char *v = lm_query_value(target, LM_EXIT_SERVER,
                             "SELECT count(*) FROM pg_namespace WHERE nspname = 'lm'");
    bool exists = v && v[0] != '0';
    free(v);
    return exists;
}

void lm_state_ensure(PGconn *target)
{
    char *err = NULL;
    PGresult *res;
    char *sql;

    if (lm_state_exists(target)) {
        char *v = lm_query_value(target, LM_EXIT_SERVER,
                                 "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE n.nspname = 'lm' AND c.relname = 'progress'");
        bool complete = v && v[0] != '0';
        free(v);
        if (complete)
            return;
    }
    /* one creator at a time: parallel workers may race here */
    sql = lm_psprintf("BEGIN; SELECT pg_advisory_xact_lock(7091, 1);\n%sCOMMIT;", ddl);
    res = lm_exec_try(target, sql, &err);
    free(sql);
    if (!res) {
        lm_exit_if_lost(target, "target", err);
        PQclear(PQexec(target, "ROLLBACK"));
        lm_error("could not create the lm state schema on the target: %s", err);
        lm_hint("The target role needs CREATE on the database (or create schema \"lm\" owned by it).");
        free(err);
        exit(LM_EXIT_PREFLIGHT);
    }
    PQclear(res);
}

/* ------------------------------------------------------------ lm.meta */

bool lm_meta_has(PGconn *target, const char *key)
{
    const char *p[1] = {key};
    PGresult *res = lm_execp(target, LM_EXIT_SERVER, "SELECT 1 FROM lm.meta WHERE key = $1", 1, p);
    bool has = PQntuples(res) > 0;
    PQclear(res);
    return has;
}

void lm_meta_set(PGconn *target, const char *key, const char *value)
{
    const char *p[2] = {key, value};
    PQclear(lm_execp(target, LM_EXIT_SERVER,
                     "INSERT INTO lm.meta VALUES ($1, $2) ON CONFLICT (key)"
                     " DO UPDATE SET value = EXCLUDED.value", 2, p));
}

void lm_meta_mark_once(PGconn *target, const char *key)
{
    const char *p[1] = {key};
    PQclear(lm_execp(target, LM_EXIT_SERVER,
                     "INSERT INTO lm.meta VALUES ($1, now()::text) ON CONFLICT (key) DO NOTHING", 1, p));
}

/* ------------------------------------------------------------ lm.copy */

void lm_copy_done(PGconn *target, const lm_copy_chunk *c)
{
    char chunk[24], nchunks[24], first[24], last[24], rows[24], bytes[24], lsn[LM_LSN_BUFSZ];
    const char *p[10];

    snprintf(chunk, sizeof chunk, "%" PRId64, c->chunk);
    snprintf(nchunks, sizeof nchunks, "%" PRId64, c->nchunks);
    snprintf(first, sizeof first, "%" PRId64, c->first_page);
    snprintf(last, sizeof last, "%" PRId64, c->last_page);
    snprintf(rows, sizeof rows, "%" PRIu64, c->rows);
    snprintf(bytes, sizeof bytes, "%" PRIu64, c->bytes);
    p[0] = c->nspname;
    p[1] = c->relname;
    p[2] = chunk;
    p[3] = nchunks;
    p[4] = c->first_page >= 0 ? first : NULL;
    p[5] = c->last_page >= 0 ? last : NULL;
    p[6] = rows;
    p[7] = bytes;
    p[8] = c->snapshot;
    p[9] = c->have_sync_lsn ? lm_lsn_format(c->sync_lsn, lsn) : NULL;
    PQclear(lm_execp(target, LM_EXIT_SERVER,
                     "INSERT INTO lm.copy (nspname, relname, chunk, nchunks, first_page, last_page,"
                     " rows, bytes, snapshot, sync_lsn) VALUES ($1, $2, $3::int, $4::int,"
                     " $5::bigint, $6::bigint, $7::bigint, $8::bigint, $9, $10::pg_lsn)",
                     10, p));
}

bool lm_copy_has(PGconn *target, const char *nsp, const char *rel, int64_t chunk)
{
    char num[24];
    const char *p[3] = {nsp, rel, num};
    PGresult *res;
    bool has;

    snprintf(num, sizeof num, "%" PRId64, chunk);
    res = lm_execp(target, LM_EXIT_SERVER,
                   "SELECT 1 FROM lm.copy WHERE nspname = $1 AND relname = $2 AND chunk = $3::int",
                   3, p);
    has = PQntuples(res) > 0;
    PQclear(res);
    return has;
}

long long lm_copy_count(PGconn *target)
{
    char *v = lm_query_value(target, LM_EXIT_SERVER, "SELECT count(*) FROM lm.copy");
    long long n = v ? strtoll(v, NULL, 10) : 0;
    free(v);
    return n;
}

PGresult *lm_copy_list(PGconn *target)
{
    return lm_exec(target, LM_EXIT_SERVER,
                   "SELECT nspname, relname, chunk, first_page, last_page, snapshot"
                   " FROM lm.copy ORDER BY nspname, relname, chunk");
}

const char *lm_marker_insert_sql(void)
{
    return "INSERT INTO lm.marker (origin, payload, lsn) VALUES ($1, $2, $3::pg_lsn) "
           "ON CONFLICT (origin, payload) DO NOTHING";
}

void lm_copy_forget_sql(lm_buf *sql, const char *nsp, const char *rel)
{
    lm_buf_puts(sql, "DELETE FROM lm.copy WHERE nspname = ");
    lm_quote_literal(sql, nsp);
    lm_buf_puts(sql, " AND relname = ");
    lm_quote_literal(sql, rel);
}
