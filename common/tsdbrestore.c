/* Post-data entries on TimescaleDB hypertables: see tsdbrestore.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "pgconn.h"
#include "schema.h"
#include "tsdbrestore.h"

/* The target's hypertables: the list's key ("SCHEMA TABLE " as pg_restore
 * -l writes names, newlines as spaces) and the name as pg_dump quotes it
 * (quote_ident: the same keyword list for the same major version). */
static const char hyper_sql[] =
    "SELECT translate(h.schema_name, E'\\n\\r', '  ') || ' ' || translate(h.table_name, E'\\n\\r', '  ')"
    " || ' ', format('%I.%I', h.schema_name, h.table_name)"
    " FROM _timescaledb_catalog.hypertable h"
    " WHERE EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    "   WHERE n.nspname = h.schema_name AND c.relname = h.table_name)";

/* The post-data entries on a hypertable: "DESC SCHEMA TABLE ..." of these
 * kinds (fk: the kind is a foreign key) */
static const struct { const char *desc; bool fk; } kinds[] = {
    {"CONSTRAINT ", false}, {"CHECK CONSTRAINT ", false}, {"FK CONSTRAINT ", true}};

/* lm_tsdb_split_list's lm_restore_list_rewrite argument */
typedef struct split_arg {
    PGresult *res;   /* hyper_sql's */
    int nh;
    lm_tsdb_split *out;
} split_arg;

/* An entry on a hypertable (then added to the split's entries) */
static bool hypertable_entry(char *line, void *arg)
{
    split_arg *sa = arg;
    const char *rest = lm_restore_list_desc(line);
    int match = -1, kind = -1;
    lm_tsdb_entry *e;

    for (size_t k = 0; rest && k < sizeof kinds / sizeof kinds[0] && match < 0; k++) {
        size_t dl = strlen(kinds[k].desc);
        if (strncmp(rest, kinds[k].desc, dl) != 0)
            continue;
        for (int h = 0; h < sa->nh && match < 0; h++) {
            const char *key = PQgetvalue(sa->res, h, 0);
            if (strncmp(rest + dl, key, strlen(key)) == 0) {
                match = h;
                kind = (int)k;
            }
        }
    }
    if (match < 0)
        return false;
    sa->out->e = lm_realloc(sa->out->e, (size_t)(sa->out->n + 1) * sizeof *sa->out->e);
    e = &sa->out->e[sa->out->n++];
    e->line = lm_strdup(line);
    e->qname = lm_strdup(PQgetvalue(sa->res, match, 1));
    e->fk = kinds[kind].fk;
    return true;
}

bool lm_tsdb_split_list(PGconn *conn, const char *listfile, lm_tsdb_split *out)
{
    split_arg sa = {NULL, 0, out};
    char *err = NULL, *v, *tmp;
    bool ok = false;

    memset(out, 0, sizeof *out);
    v = lm_query_value(conn, LM_EXIT_SERVER,
                       "SELECT to_regclass('_timescaledb_catalog.hypertable') IS NOT NULL");
    if (!v || v[0] != 't') {
        free(v);
        return true;
    }
    free(v);
    sa.res = lm_exec_try(conn, hyper_sql, &err);
    if (!sa.res) {
        lm_error("listing the hypertables of the target failed: %s", err);
        free(err);
        return false;
    }
    sa.nh = PQntuples(sa.res);
    if (sa.nh == 0) {
        PQclear(sa.res);
        return true;
    }
    tmp = lm_psprintf("%s.tmp", listfile);
    if (lm_restore_list_rewrite(listfile, tmp, hypertable_entry, &sa) >= 0) {
        if (rename(tmp, listfile) == 0)
            ok = true;
        else {
            lm_error("could not rename \"%s\": %s", tmp, strerror(errno));
            unlink(tmp);
        }
    }
    free(tmp);
    PQclear(sa.res);
    return ok;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    lm_buf b = {0};
    char tmp[8192];
    size_t n;
    if (!f)
        return NULL;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        lm_buf_put(&b, tmp, n);
    fclose(f);
    lm_buf_u8(&b, '\0');
    return (char *)b.data;
}

/* The script of one entry, its ALTER TABLE ONLY qname made ALTER TABLE
 * qname (a check constraint comes without ONLY already): the first line
 * that starts with ALTER TABLE is the statement (pg_restore's comments
 * start with "--"; a literal inside the statement comes after its first
 * line). Of the lines before it, pg_restore's header, only the SET and
 * set_config commands are kept, not its psql meta-commands (\restrict KEY;
 * \unrestrict KEY after the statement, since 15.14). NULL if the script
 * has no such statement on qname. */
char *lm_tsdb_without_only(const char *script, const char *qname)
{
    static const char alter[] = "ALTER TABLE ", only[] = "ONLY ";
    size_t al = sizeof alter - 1, ol = sizeof only - 1, ql = strlen(qname);
    const char *p = script;
    while (p && *p) {
        if (strncmp(p, alter, al) == 0) {
            const char *after = p + al, *end;
            lm_buf b = {0};
            if (strncmp(after, only, ol) == 0)
                after += ol;
            if (strncmp(after, qname, ql) != 0 || (after[ql] != '\n' && after[ql] != ' '))
                return NULL;
            for (const char *l = script; l < p;) {
                const char *nl = strchr(l, '\n');
                size_t len = nl ? (size_t)(nl - l) + 1 : strlen(l);
                if (strncmp(l, "SET ", 4) == 0 || strncmp(l, "SELECT pg_catalog.set_config(", 29) == 0)
                    lm_buf_put(&b, l, len);
                l += len;
            }
            lm_buf_puts(&b, alter);
            end = strstr(after, "\n\\unrestrict ");
            lm_buf_put(&b, after, end ? (size_t)(end - after) + 1 : strlen(after));
            lm_buf_u8(&b, '\0');
            return (char *)b.data;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

int lm_tsdb_run_entries(PGconn *conn, const char *archive_path, const lm_tsdb_split *s, bool fk)
{
    char *listfile = lm_psprintf("%s.hyper.list", archive_path);
    char *sqlfile = lm_psprintf("%s.hyper.sql", archive_path);
    char *listopt = lm_psprintf("--use-list=%s", listfile);
    char *fileopt = lm_psprintf("--file=%s", sqlfile);
    const char *argv[] = {"pg_restore", listopt, fileopt, archive_path, NULL};
    int code = 0, ran = 0;

    for (int i = 0; i < s->n && code == 0; i++) {
        const lm_tsdb_entry *e = &s->e[i];
        FILE *f;
        char *out = NULL, *script = NULL, *sql = NULL, *err = NULL;
        PGresult *res;
        int rc;

        if (e->fk != fk)
            continue;
        f = fopen(listfile, "w");
        if (!f) {
            lm_error("could not write \"%s\": %s", listfile, strerror(errno));
            code = LM_EXIT_IO;
            break;
        }
        if (fputs(e->line, f) < 0) {
            lm_error("could not write \"%s\": %s", listfile, strerror(errno));
            fclose(f);
            code = LM_EXIT_IO;
            break;
        }
        if (fclose(f) != 0) {
            lm_error("could not write \"%s\": %s", listfile, strerror(errno));
            code = LM_EXIT_IO;
            break;
        }
        rc = lm_run_pgtool(NULL, argv, NULL, &out);
        if (rc != 0) {
            lm_error("pg_restore of a constraint of hypertable %s failed (exit status %d): %s", e->qname, rc,
                     out ? out : "");
            code = rc == 127 ? LM_EXIT_FAILURE : LM_EXIT_SERVER;
        } else if (!(script = read_file(sqlfile))) {
            lm_error("could not read \"%s\": %s", sqlfile, strerror(errno));
            code = LM_EXIT_IO;
        } else if (!(sql = lm_tsdb_without_only(script, e->qname))) {
            lm_error("constraint of hypertable %s: no ALTER TABLE [ONLY] %s in its definition", e->qname,
                     e->qname);
            lm_detail("%s", script);
            code = LM_EXIT_SERVER;
        } else if (!(res = lm_exec_try(conn, sql, &err))) {
            lm_error("restoring a constraint of hypertable %s failed: %s", e->qname, err);
            lm_detail("%s", sql);
            code = LM_EXIT_SERVER;
        } else {
            PQclear(res);
            ran++;
        }
        free(err);
        free(sql);
        free(script);
        free(out);
    }
    if (ran)
        lm_info("post-data: %d %s of hypertables added without ONLY", ran,
                fk ? "foreign key(s)" : "constraint(s)");
    unlink(listfile);
    unlink(sqlfile);
    free(listfile);
    free(sqlfile);
    free(listopt);
    free(fileopt);
    return code;
}

void lm_tsdb_split_free(lm_tsdb_split *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->e[i].line);
        free(s->e[i].qname);
    }
    free(s->e);
    memset(s, 0, sizeof *s);
}
