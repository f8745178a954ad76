/* lm-slot status, drop and advance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "slot.h"

/* Logged as an error with the fix; the caller exits LM_EXIT_PREFLIGHT. */
static void slot_active_error(const char *slot, const char *pid)
{
    lm_error("replication slot \"%s\" is active: in use by the process with pid %s", slot, pid);
    lm_hint("Stop its consumer (lm-decode, pg_recvlogical or a subscription) first, or end "
            "that session with SELECT pg_terminate_backend(%s).", pid);
}

static void slot_missing_error(const char *slot, PGconn *conn)
{
    lm_error("replication slot \"%s\" does not exist on the source (database \"%s\")", slot,
             PQdb(conn));
}

static const char *val(PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? NULL : PQgetvalue(res, 0, col);
}

/* A boolean column: NULL is false, never a string to compare. */
static bool is_true(PGresult *res, int col)
{
    return !PQgetisnull(res, 0, col) && strcmp(PQgetvalue(res, 0, col), "t") == 0;
}

int slot_status(const slot_opts *o)
{
    static const char sql[] =
        "SELECT s.slot_name, s.plugin, s.slot_type, s.database, s.active, s.active_pid,"
        " s.confirmed_flush_lsn, s.restart_lsn, w.cur,"
        " pg_wal_lsn_diff(w.cur, s.confirmed_flush_lsn)::bigint,"
        " pg_wal_lsn_diff(w.cur, s.restart_lsn)::bigint,"
        " s.wal_status, s.safe_wal_size, s.catalog_xmin, s.xmin, s.temporary,"
        " h.pid, h.backend_xmin, age(h.backend_xmin)"
        " FROM pg_replication_slots s"
        " CROSS JOIN (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
        "             ELSE pg_current_wal_lsn() END AS cur) w"
        " LEFT JOIN LATERAL (SELECT a.pid, a.backend_xmin FROM pg_stat_activity a"
        "   WHERE a.application_name = $2 ORDER BY a.backend_start LIMIT 1) h ON true"
        " WHERE s.slot_name = $1";
    PGconn *conn = lm_connect(o->source, "source", 0);
    char *holder = lm_psprintf("%s%s", LM_SLOT_HOLDER_PREFIX, o->slot);
    const char *params[] = {o->slot, holder};
    PGresult *res = lm_execp(conn, LM_EXIT_SERVER, sql, 2, params);
    const char *wal_status;
    kvout k;
    int rc = LM_EXIT_OK;

    if (PQntuples(res) == 0) {
        slot_missing_error(o->slot, conn);
        lm_hint("List the slots with SELECT slot_name, database FROM pg_replication_slots.");
        rc = LM_EXIT_PREFLIGHT;
        goto done;
    }
    wal_status = val(res, 11);
    kv_begin(&k, o->json);
    kv_str(&k, "slot", val(res, 0));
    kv_bool(&k, "exists", true);
    kv_str(&k, "slot_type", val(res, 2));
    kv_str(&k, "plugin", val(res, 1));
    kv_str(&k, "database", val(res, 3));
    kv_bool(&k, "temporary", is_true(res, 15));
    kv_bool(&k, "active", is_true(res, 4));
    kv_raw(&k, "active_pid", val(res, 5));
    kv_str(&k, "confirmed_flush_lsn", val(res, 6));
    kv_str(&k, "restart_lsn", val(res, 7));
    kv_str(&k, "current_lsn", val(res, 8));
    kv_raw(&k, "lag_bytes", val(res, 9));
    kv_raw(&k, "retained_wal_bytes", val(res, 10));
    kv_str(&k, "wal_status", wal_status);
    kv_raw(&k, "safe_wal_size", val(res, 12));
    kv_str(&k, "catalog_xmin", val(res, 13));
    kv_str(&k, "xmin", val(res, 14));
    kv_bool(&k, "snapshot_held", !PQgetisnull(res, 0, 16));
    kv_raw(&k, "snapshot_holder_pid", val(res, 16));
    kv_str(&k, "snapshot_xmin", val(res, 17));
    kv_raw(&k, "snapshot_xmin_age", val(res, 18));
    kv_end(&k);

    if (wal_status && strcmp(wal_status, "lost") == 0) {
        lm_error("replication slot \"%s\" is lost: the source removed WAL it still needed "
                 "(max_slot_wal_keep_size)", o->slot);
        lm_detail("Changes after its position are gone; the slot cannot be used any more.");
        lm_hint("Drop it with \"%s drop\" and start the migration again with a new slot.",
                lm_progname());
        rc = LM_EXIT_PREFLIGHT;
    } else if (wal_status && strcmp(wal_status, "unreserved") == 0)
        lm_warning("replication slot \"%s\" is about to be lost: it retains more WAL than "
                   "max_slot_wal_keep_size allows and will be invalidated at the next "
                   "checkpoint unless its consumer catches up", o->slot);
done:
    PQclear(res);
    free(holder);
    PQfinish(conn);
    return rc;
}

/* Run an SQL statement under the lock timeout; exit on failure. */
static void exec_ddl(PGconn *conn, const char *sql)
{
    lm_exec_cmd(conn, LM_EXIT_SERVER, "SET lock_timeout = '" LM_SLOT_LOCK_TIMEOUT "'");
    lm_exec_cmd(conn, LM_EXIT_SERVER, sql);
}

int slot_drop(const slot_opts *o)
{
    PGconn *conn = lm_connect(o->source, "source", 0);
    const char *params[] = {o->slot};
    const char *pparams[] = {o->publication};
    /* after a cutover fence the database defaults to read-only: dropping
     * what lm created must still work */
    lm_exec_cmd(conn, LM_EXIT_SERVER, "SET default_transaction_read_only = off");
    PGresult *res = lm_execp(conn, LM_EXIT_SERVER,
                             "SELECT active, active_pid FROM pg_replication_slots"
                             " WHERE slot_name = $1", 1, params);
    bool slot_exists = PQntuples(res) > 0;
    bool pub_exists;
    int rc = LM_EXIT_OK;

    if (slot_exists && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        slot_active_error(o->slot, PQgetvalue(res, 0, 1));
        lm_detail("Nothing was dropped.");
        rc = LM_EXIT_PREFLIGHT;
        goto done;
    }
    PQclear(res);
    res = lm_execp(conn, LM_EXIT_SERVER, "SELECT 1 FROM pg_publication WHERE pubname = $1", 1,
                   pparams);
    pub_exists = PQntuples(res) > 0;

    if (slot_exists) {
        PQclear(res);
        res = PQexecParams(conn, "SELECT pg_drop_replication_slot($1)", 1, NULL, params, NULL,
                           NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            /* it became active since we looked */
            if (lm_result_sqlstate_is(res, "55006")) {
                lm_log_result_error(res, conn, NULL);
                rc = LM_EXIT_PREFLIGHT;
            } else {
                lm_log_result_error(res, conn, "SELECT pg_drop_replication_slot($1)");
                rc = LM_EXIT_SERVER;
            }
            goto done;
        }
        lm_info("dropped replication slot \"%s\"", o->slot);
    } else
        lm_info("replication slot \"%s\" does not exist: nothing to drop", o->slot);

    /* the DDL capture first: it would see the DROP PUBLICATION */
    rc = ddl_uninstall(conn, o->publication, true);
    if (rc != LM_EXIT_OK)
        goto done;
    if (pub_exists) {
        char *ident = lm_ident(o->publication);
        char *sql = lm_psprintf("DROP PUBLICATION IF EXISTS %s", ident);
        exec_ddl(conn, sql);
        lm_info("dropped publication %s", ident);
        free(sql);
        free(ident);
    } else
        lm_info("publication \"%s\" does not exist: nothing to drop", o->publication);
done:
    PQclear(res);
    PQfinish(conn);
    return rc;
}

int slot_advance(const slot_opts *o)
{
    PGconn *conn = lm_connect(o->source, "source", 0);
    char to[LM_LSN_BUFSZ];
    const char *params[] = {o->slot, lm_lsn_format(o->to_lsn, to)};
    PGresult *res = lm_execp(conn, LM_EXIT_SERVER,
                             "SELECT active, active_pid, slot_type,"
                             " coalesce(confirmed_flush_lsn, restart_lsn)"
                             " FROM pg_replication_slots WHERE slot_name = $1", 1, params);
    int rc = LM_EXIT_OK;
    kvout k;
    uint64_t before = 0, after = 0;

    if (PQntuples(res) == 0) {
        slot_missing_error(o->slot, conn);
        rc = LM_EXIT_PREFLIGHT;
        goto done;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        slot_active_error(o->slot, PQgetvalue(res, 0, 1));
        rc = LM_EXIT_PREFLIGHT;
        goto done;
    }
    if (!PQgetisnull(res, 0, 3))
        lm_lsn_parse(PQgetvalue(res, 0, 3), &before);
    PQclear(res);
    if (before && o->to_lsn <= before) {
        /* the server refuses to go back (55000): a position already passed
         * is nothing to do */
        char a[LM_LSN_BUFSZ];
        lm_info("slot \"%s\" was already at %s, at or past %s: nothing to do", o->slot,
                lm_lsn_format(before, a), to);
        kv_begin(&k, o->json);
        kv_str(&k, "slot", o->slot);
        kv_str(&k, "position", a);
        kv_end(&k);
        res = NULL;
        goto done;
    }
    res = PQexecParams(conn, "SELECT end_lsn FROM pg_replication_slot_advance($1, $2::pg_lsn)",
                       2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        lm_log_result_error(res, conn, NULL);
        rc = lm_result_sqlstate_is(res, "55006") || lm_result_sqlstate_is(res, "55000")
                 ? LM_EXIT_PREFLIGHT : LM_EXIT_SERVER;
        goto done;
    }
    lm_lsn_parse(PQgetvalue(res, 0, 0), &after);
    if (after < o->to_lsn)
        lm_info("slot \"%s\" advanced only to %s: the source has not written WAL up to %s yet",
                o->slot, PQgetvalue(res, 0, 0), to);
    else if (after == before && before > o->to_lsn)
        lm_info("slot \"%s\" was already at %s, past %s: nothing to do", o->slot,
                PQgetvalue(res, 0, 0), to);
    kv_begin(&k, o->json);
    kv_str(&k, "slot", o->slot);
    kv_str(&k, "position", PQgetvalue(res, 0, 0));
    kv_end(&k);
done:
    PQclear(res);
    PQfinish(conn);
    return rc;
}
