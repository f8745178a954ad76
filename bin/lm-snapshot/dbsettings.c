/* lm-snapshot: the source database's own settings (ALTER DATABASE ... SET,
 * ALTER ROLE ... IN DATABASE ... SET), which no dump of the database's
 * objects carries, set on the target database. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "exitcodes.h"
#include "log.h"
#include "lm-snapshot.h"
#include "pgconn.h"

/* Settings never moved: the cutover fences the source with
 * default_transaction_read_only (moved, it would make the new primary
 * read-only), and the per-transaction ones only make sense as such. */
static const char *const left_out[] = {
    "default_transaction_read_only", "transaction_read_only", "transaction_isolation",
    "transaction_deferrable", NULL};

/* Settings whose value is a list of names the server quotes (GUC_LIST_QUOTE,
 * as pg_dump's variable_is_guc_list_quote): each element is given as a
 * literal of its own, so that "$user", public comes back as it was. */
static const char *const list_quoted[] = {
    "local_preload_libraries", "search_path", "session_preload_libraries",
    "shared_preload_libraries", "temp_tablespaces", "unix_socket_directories", NULL};

static bool in_list(const char *const *l, const char *name)
{
    for (; *l; l++)
        if (strcasecmp(*l, name) == 0)
            return true;
    return false;
}

/* Splits a GUC list value ('"$user", public') into its elements as the
 * server's SplitGUCList does: comma separated, surrounding blanks dropped,
 * double-quoted elements with "" for a quote. Appends "'a', 'b'" to b;
 * false when the value does not parse. */
static bool put_list(lm_buf *b, const char *v)
{
    const char *p = v;
    int n = 0;
    lm_buf el = {0};

    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (!*p) {
        lm_buf_puts(b, "''");
        return true;
    }
    for (;;) {
        el.len = 0;
        if (*p == '"') {
            for (p++;; p++) {
                if (!*p) {
                    lm_buf_free(&el);
                    return false;
                }
                if (*p == '"') {
                    if (p[1] != '"')
                        break;
                    p++;
                }
                lm_buf_u8(&el, (uint8_t)*p);
            }
            p++;
        } else {
            while (*p && *p != ',' && *p != ' ' && *p != '\t' && *p != '\n')
                lm_buf_u8(&el, (uint8_t)*p++);
            if (el.len == 0) {
                lm_buf_free(&el);
                return false;
            }
        }
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        lm_buf_u8(&el, '\0');
        if (n++)
            lm_buf_puts(b, ", ");
        lm_quote_literal(b, (const char *)el.data);
        if (!*p)
            break;
        if (*p != ',') {
            lm_buf_free(&el);
            return false;
        }
        p++;
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
    }
    lm_buf_free(&el);
    return true;
}

void copy_db_settings(const options *o, PGconn *tgt)
{
    static const char sql[] =
        "SELECT r.rolname, s.setrole <> 0, c.cfg"
        " FROM pg_db_role_setting s"
        " LEFT JOIN pg_roles r ON r.oid = s.setrole"
        " CROSS JOIN LATERAL unnest(s.setconfig) WITH ORDINALITY AS c(cfg, i)"
        " WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " ORDER BY s.setrole <> 0, r.rolname, c.i";
    PGconn *src;
    PGresult *res;
    char *tdb, *tdb_ident;
    int set = 0, skipped = 0;

    if (!o->source) {
        lm_info("database settings not copied: no --source given");
        return;
    }
    src = lm_connect(o->source, "source", 0);
    res = lm_exec(src, LM_EXIT_SERVER, sql);
    tdb = lm_query_value(tgt, LM_EXIT_SERVER, "SELECT current_database()");
    tdb_ident = lm_ident(tdb);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *role = PQgetvalue(res, i, 0);
        bool for_role = strcmp(PQgetvalue(res, i, 1), "t") == 0;
        const char *cfg = PQgetvalue(res, i, 2);
        const char *eq = strchr(cfg, '=');
        char *name, *err = NULL;
        lm_buf b = {0};
        PGresult *r;

        if (!eq || eq == cfg) {
            lm_warning("database setting \"%s\" not understood: left out", cfg);
            skipped++;
            continue;
        }
        name = lm_strdup(cfg);
        name[eq - cfg] = '\0';
        if (in_list(left_out, name)) {
            lm_info("database setting %s%s%s left out: it is never copied (the cutover fences "
                    "the source with default_transaction_read_only; the others are per "
                    "transaction)", cfg, for_role ? " of role " : "", for_role ? role : "");
            free(name);
            continue;
        }
        if (for_role && PQgetisnull(res, i, 0)) {
            free(name);
            continue;   /* a dropped role's leftover */
        }
        if (for_role) {
            lm_buf_puts(&b, "ALTER ROLE ");
            lm_quote_ident(&b, role);
            lm_buf_puts(&b, " IN DATABASE ");
        } else
            lm_buf_puts(&b, "ALTER DATABASE ");
        lm_buf_put(&b, tdb_ident, strlen(tdb_ident));
        lm_buf_puts(&b, " SET ");
        lm_quote_ident(&b, name);
        lm_buf_puts(&b, " TO ");
        if (in_list(list_quoted, name)) {
            if (!put_list(&b, eq + 1)) {
                lm_warning("database setting %s: the list does not parse, left out", cfg);
                skipped++;
                free(name);
                lm_buf_free(&b);
                continue;
            }
        } else
            lm_quote_literal(&b, eq + 1);
        lm_buf_u8(&b, '\0');
        if (for_role) {
            /* roles are the cluster's, made by the DBA: one missing is no
             * reason to stop the migration, but is said */
            const char *p[] = {role};
            PGresult *e = lm_execp(tgt, LM_EXIT_SERVER, "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, p);
            bool exists = PQntuples(e) == 1;
            PQclear(e);
            if (!exists) {
                lm_warning("database setting %s of role \"%s\" left out: the role does not exist "
                           "on the target", cfg, role);
                lm_hint("Create the role on the target, then run: %s;", (const char *)b.data);
                skipped++;
                free(name);
                lm_buf_free(&b);
                continue;
            }
        }
        if ((r = lm_exec_try(tgt, (const char *)b.data, &err))) {
            PQclear(r);
            lm_info("database setting: %s", (const char *)b.data);
            set++;
        } else {
            lm_warning("database setting %s%s%s not set on the target: %s", cfg,
                       for_role ? " of role " : "", for_role ? role : "", err);
            lm_detail("statement: %s", (const char *)b.data);
            skipped++;
            free(err);
        }
        free(name);
        lm_buf_free(&b);
    }
    if (set || skipped)
        lm_info("database settings: %d set on the target, %d left out", set, skipped);
    PQclear(res);
    PQfinish(src);
    free(tdb);
    free(tdb_ident);
}
