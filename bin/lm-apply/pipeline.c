/* lm-apply's target side: the queries in flight. The session runs in
 * pipeline mode: statements are sent without waiting, each with a
 * description for the error that may fail it, and their results are
 * consumed as they come (every 64 sends) or all at once at a sync. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "target_int.h"

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

void pl_fail(apply_target *t, PGresult *res, const char *what)
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
            pl_fail(t, res, t->pl.len ? t->pl.descs[t->pl.head] : "a statement");
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

void pl_send_sql(apply_target *t, const char *sql, int n, const char *const *vals,
                 const char *desc)
{
    pipeline_enter(t);
    desc_push(t, "%s", desc);
    sent(t, PQsendQueryParams(t->conn, sql, n, NULL, vals, NULL, NULL, 0));
}

void pl_send_prepared(apply_target *t, const char *name, int n, const char *const *vals,
                      const char *desc)
{
    pipeline_enter(t);
    desc_push(t, "%s", desc);
    sent(t, PQsendQueryPrepared(t->conn, name, n, vals, NULL, NULL, 0));
}

void pl_prepare(apply_target *t, const char *name, const char *sql, int nparams)
{
    pipeline_enter(t);
    lm_debug("preparing %s: %.120s", name, sql);
    desc_push(t, "PREPARE %.80s", sql);
    sent(t, PQsendPrepare(t->conn, name, sql, nparams, NULL));
}

/* Sync and wait for everything sent so far. */
void pl_sync_wait(apply_target *t)
{
    if (!t->pl.on)
        return;
    if (!PQpipelineSync(t->conn))
        lm_fatal(LM_EXIT_SERVER, "could not sync with the target: %s", PQerrorMessage(t->conn));
    t->pl.syncs++;
    consume(t, true);
}

void pl_exit(apply_target *t)
{
    if (!t->pl.on)
        return;
    pl_sync_wait(t);
    if (!PQexitPipelineMode(t->conn))
        lm_fatal(LM_EXIT_SERVER, "could not leave pipeline mode: %s", PQerrorMessage(t->conn));
    t->pl.on = false;
}

PGresult *tgt_query(apply_target *t, const char *sql, int nparams, const char *const *params)
{
    PGresult *res;
    pipeline_enter(t);
    t->pl.capture_next = true;
    pl_send_sql(t, sql, nparams, params, "an internal query");
    pl_sync_wait(t);
    t->pl.capture_next = false;
    res = t->pl.captured;
    t->pl.captured = NULL;
    if (!res)
        lm_fatal(LM_EXIT_SERVER, "no result for: %s", sql);
    return res;
}

void tgt_leave_pipeline(apply_target *t) { pl_exit(t); }
