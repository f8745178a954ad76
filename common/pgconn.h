/* libpq helpers: connect with a clear error and no password in it, run a
 * statement and fail with the server's message and the statement, quote. */
#ifndef LM_PGCONN_H
#define LM_PGCONN_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "buf.h"
#include "exitcodes.h"   /* LM_SESSION_OPTIONS */

enum lm_conn_flags {
    LM_CONN_REPLICATION = 1,   /* replication=database: walsender commands */
    LM_CONN_NO_SETTINGS = 2    /* leave the session settings alone */
};

/* Connect to conninfo (a libpq connection string or URI; empty means the
 * libpq environment). role names the connection in messages ("source",
 * "target"). On failure: a message naming host, port, database and user
 * (never the password) with libpq's reason, exit LM_EXIT_CONNECT. */
PGconn *lm_connect(const char *conninfo, const char *role, int flags);
/* Same, returning NULL and a malloc'd message instead of exiting. */
PGconn *lm_connect_try(const char *conninfo, const char *role, int flags, char **errmsg);
/* "host=... port=... dbname=... user=..." for messages: no password. */
char *lm_conninfo_describe(const char *conninfo);
/* Whether the connection string parses; the error otherwise (malloc'd). */
bool lm_conninfo_valid(const char *conninfo, char **errmsg);

/* Run sql (simple protocol); on anything but COMMAND_OK or TUPLES_OK log
 * the server's message, detail and hint plus the statement, and exit with
 * code (LM_EXIT_SERVER usually). */
PGresult *lm_exec(PGconn *conn, int code, const char *sql);
/* Same with parameters (extended protocol, text, types inferred). */
PGresult *lm_execp(PGconn *conn, int code, const char *sql, int nparams,
                   const char *const *params);
/* Run and discard the result. */
void lm_exec_cmd(PGconn *conn, int code, const char *sql);
/* NULL on failure, the error left for lm_result_error (PQclear'd). */
PGresult *lm_exec_try(PGconn *conn, const char *sql, char **errmsg);
/* After a failed lm_exec_try: when the connection itself is gone (the
 * server restarted, the session was terminated), log it as such and exit
 * LM_EXIT_SERVER, so the failure is not taken for a missing privilege. */
void lm_exit_if_lost(PGconn *conn, const char *role, const char *err);
/* A malloc'd copy of the first value of the first row, NULL for SQL NULL
 * or no row. */
char *lm_query_value(PGconn *conn, int code, const char *sql);
/* Log a failed result: message, detail, hint and the statement. */
void lm_log_result_error(const PGresult *res, PGconn *conn, const char *sql);
/* Whether a result's SQLSTATE equals state. */
bool lm_result_sqlstate_is(const PGresult *res, const char *state);

/* Append "ident" quoted as an SQL identifier (always quoted). */
void lm_quote_ident(lm_buf *b, const char *ident);
/* Append nsp.rel, both quoted. */
void lm_quote_qualified(lm_buf *b, const char *nsp, const char *rel);
/* Append a quoted SQL string literal (E'' form when it has backslashes). */
void lm_quote_literal(lm_buf *b, const char *s);
/* Malloc'd versions. */
char *lm_ident(const char *ident);
char *lm_qualified(const char *nsp, const char *rel);
char *lm_literal(const char *s);
/* "dbname='...'" for a connection string (malloc'd) */
char *lm_conninfo_dbname(const char *db);

/* server_version_num of a connection. */
int lm_server_version(PGconn *conn);

#endif
