#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "log.h"
#include "pgconn.h"

bool lm_conninfo_valid(const char *conninfo, char **errmsg)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", &err);

    if (!opts) {
        if (errmsg) {
            /* libpq quotes the piece it could not parse, which may be a
             * password or a whole URI holding one: that piece is left out
             * (an option's name and one-character pieces are kept) */
            const char *m = err ? err : "out of memory";
            bool keep = strstr(m, "invalid connection option") == m;
            lm_buf b = {0};
            const char *p = m, *q, *end;

            while (*p && *p != '\n') {
                if (*p != '"' || !(end = strchr(p + 1, '"'))) {
                    lm_buf_u8(&b, (uint8_t)*p++);
                    continue;
                }
                q = p + 1;
                lm_buf_u8(&b, '"');
                if (keep || end - q <= 1)
                    lm_buf_put(&b, q, (size_t)(end - q));
                else
                    lm_buf_puts(&b, "...");
                lm_buf_u8(&b, '"');
                p = end + 1;
            }
            lm_buf_u8(&b, '\0');
            *errmsg = (char *)b.data;
        }
        PQfreemem(err);
        return false;
    }
    PQconninfoFree(opts);
    return true;
}

char *lm_conninfo_describe(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", NULL);
    const char *keys[] = {"host", "hostaddr", "port", "dbname", "user", "service"};
    const char *envs[] = {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"};
    lm_buf b = {0};

    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *val = NULL;
        if (opts)
            for (PQconninfoOption *o = opts; o->keyword; o++)
                if (strcmp(o->keyword, keys[k]) == 0 && o->val && *o->val)
                    val = o->val;
        if (!val)
            val = getenv(envs[k]);
        if (!val || !*val)
            continue;
        if (b.len)
            lm_buf_u8(&b, ' ');
        lm_buf_put(&b, keys[k], strlen(keys[k]));
        lm_buf_u8(&b, '=');
        lm_buf_put(&b, val, strlen(val));
    }
    if (opts)
        PQconninfoFree(opts);
    lm_buf_u8(&b, '\0');
    if (b.len == 1) {
        free(b.data);
        return lm_strdup("defaults");
    }
    return (char *)b.data;
}

static char *trim_msg(const char *m)
{
    char *s = lm_strdup(m ? m : "");
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
    return s;
}

PGconn *lm_connect_try(const char *conninfo, const char *role, int flags, char **errmsg)
{
    const char *keys[8];
    const char *vals[8];
    int n = 0;
    char *parse_err = NULL;
    PGconn *conn;
    char *options = NULL;
    PQconninfoOption *opts;

    if (!lm_conninfo_valid(conninfo, &parse_err)) {
        *errmsg = lm_psprintf("invalid connection string for the %s: %s", role, parse_err);
        free(parse_err);
        return NULL;
    }
    /* the user's own options= come after ours, so they can override */
    opts = PQconninfoParse(conninfo ? conninfo : "", NULL);
    if (!(flags & LM_CONN_NO_SETTINGS)) {
        const char *user_opts = getenv("PGOPTIONS");
        for (PQconninfoOption *o = opts; o && o->keyword; o++)
            if (strcmp(o->keyword, "options") == 0 && o->val)
                user_opts = o->val;
        options = lm_psprintf("%s%s%s", LM_SESSION_OPTIONS, user_opts ? " " : "",
                              user_opts ? user_opts : "");
    }
    PQconninfoFree(opts);

    keys[n] = "dbname"; vals[n++] = conninfo ? conninfo : "";
    keys[n] = "fallback_application_name"; vals[n++] = lm_progname();
    keys[n] = "keepalives"; vals[n++] = "1";
    keys[n] = "keepalives_idle"; vals[n++] = "30";
    if (options) {
        keys[n] = "options";
        vals[n++] = options;
    }
    if (flags & LM_CONN_REPLICATION) {
        keys[n] = "replication";
        vals[n++] = "database";
    }
    keys[n] = NULL;
    vals[n] = NULL;
    /* expand_dbname: the first dbname is the whole connection string; the
     * keywords after it override what it says */
    conn = PQconnectdbParams(keys, vals, 1);
    free(options);
    if (!conn) {
        *errmsg = lm_strdup("out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char *desc = lm_conninfo_describe(conninfo);
        char *m = trim_msg(PQerrorMessage(conn));
        *errmsg = lm_psprintf("could not connect to the %s (%s): %s%s", role, desc, m,
                              PQconnectionNeedsPassword(conn)
                                  ? "\nhint: Put the password in ~/.pgpass or a service file, not on the command line."
                                  : "");
        free(desc);
        free(m);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

PGconn *lm_connect(const char *conninfo, const char *role, int flags)
{
    char *err = NULL;
    PGconn *conn = lm_connect_try(conninfo, role, flags, &err);
    if (!conn) {
        lm_error("%s", err);
        exit(LM_EXIT_CONNECT);
    }
    return conn;
}

bool lm_result_sqlstate_is(const PGresult *res, const char *state)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s && strcmp(s, state) == 0;
}

void lm_log_result_error(const PGresult *res, PGconn *conn, const char *sql)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    char *m;

    if (msg)
        m = lm_strdup(msg);
    else
        m = trim_msg(conn ? PQerrorMessage(conn) : "unknown error");
    lm_error("%s", m);
    if (detail)
        lm_detail("%s", detail);
    if (hint)
        lm_hint("%s", hint);
    if (sql) {
        if (strlen(sql) > 2000)
            lm_detail("statement: %.2000s...", sql);
        else
            lm_detail("statement: %s", sql);
    }
    free(m);
}

static bool result_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_OUT ||
           st == PGRES_COPY_IN || st == PGRES_COPY_BOTH;
}

PGresult *lm_exec(PGconn *conn, int code, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (!result_ok(res)) {
        lm_log_result_error(res, conn, sql);
        PQclear(res);
        exit(code);
    }
    return res;
}

PGresult *lm_execp(PGconn *conn, int code, const char *sql, int nparams,
                   const char *const *params)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (!result_ok(res)) {
        lm_log_result_error(res, conn, sql);
        PQclear(res);
        exit(code);
    }
    return res;
}

void lm_exec_cmd(PGconn *conn, int code, const char *sql)
{
    PQclear(lm_exec(conn, code, sql));
}

PGresult *lm_exec_try(PGconn *conn, const char *sql, char **errmsg)
{
    PGresult *res = PQexec(conn, sql);
    if (!result_ok(res)) {
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        if (errmsg)
            *errmsg = msg ? lm_strdup(msg) : trim_msg(PQerrorMessage(conn));
        PQclear(res);
        return NULL;
    }
    return res;
}

void lm_exit_if_lost(PGconn *conn, const char *role, const char *err)
{
    if (PQstatus(conn) != CONNECTION_BAD)
        return;
    /* a server that restarted or ended the session is not a missing
     * privilege: a retry may well succeed */
    lm_error("lost the %s connection: %s", role, err ? err : trim_msg(PQerrorMessage(conn)));
    exit(LM_EXIT_SERVER);
}

char *lm_query_value(PGconn *conn, int code, const char *sql)
{
    PGresult *res = lm_exec(conn, code, sql);
    char *v = NULL;
    if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
        v = lm_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

void lm_quote_ident(lm_buf *b, const char *ident)
{
    lm_buf_u8(b, '"');
    for (const char *p = ident; *p; p++) {
        if (*p == '"')
            lm_buf_u8(b, '"');
        lm_buf_u8(b, (uint8_t)*p);
    }
    lm_buf_u8(b, '"');
}

void lm_quote_qualified(lm_buf *b, const char *nsp, const char *rel)
{
    lm_quote_ident(b, nsp);
    lm_buf_u8(b, '.');
    lm_quote_ident(b, rel);
}

void lm_quote_literal(lm_buf *b, const char *s)
{
    if (strchr(s, '\\'))
        lm_buf_u8(b, 'E');
    lm_buf_u8(b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\'' || *p == '\\')
            lm_buf_u8(b, (uint8_t)*p);
        lm_buf_u8(b, (uint8_t)*p);
    }
    lm_buf_u8(b, '\'');
}

static char *finish(lm_buf *b)
{
    lm_buf_u8(b, '\0');
    return (char *)b->data;
}

char *lm_ident(const char *ident)
{
    lm_buf b = {0};
    lm_quote_ident(&b, ident);
    return finish(&b);
}

char *lm_qualified(const char *nsp, const char *rel)
{
    lm_buf b = {0};
    lm_quote_qualified(&b, nsp, rel);
    return finish(&b);
}

char *lm_conninfo_dbname(const char *db)
{
    /* conninfo quoting: backslash before ' and \ (SQL's '' is not conninfo
     * syntax) */
    lm_buf c = {0};
    lm_buf_puts(&c, "dbname='");
    for (const char *p = db; *p; p++) {
        if (*p == '\'' || *p == '\\')
            lm_buf_u8(&c, '\\');
        lm_buf_u8(&c, (uint8_t)*p);
    }
    lm_buf_puts(&c, "'");
    return finish(&c);
}

char *lm_literal(const char *s)
{
    lm_buf b = {0};
    lm_quote_literal(&b, s);
    return finish(&b);
}

int lm_server_version(PGconn *conn)
{
    return PQserverVersion(conn);
}
