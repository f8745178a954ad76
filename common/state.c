#include <stdlib.h>

#include "exitcodes.h"
#include "log.h"
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
