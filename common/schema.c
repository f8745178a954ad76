#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "exitcodes.h"
#include "log.h"
#include "pgconn.h"
#include "schema.h"
#include "tsdbrestore.h"

extern char **environ;

/* connection keyword -> libpq environment variable (libpq's own table) */
static const struct { const char *key, *env; } envmap[] = {
    {"host", "PGHOST"}, {"hostaddr", "PGHOSTADDR"}, {"port", "PGPORT"},
    {"dbname", "PGDATABASE"}, {"user", "PGUSER"}, {"password", "PGPASSWORD"},
    {"passfile", "PGPASSFILE"}, {"service", "PGSERVICE"}, {"options", "PGOPTIONS"},
    {"application_name", "PGAPPNAME"}, {"sslmode", "PGSSLMODE"},
    {"requiressl", "PGREQUIRESSL"}, {"sslcompression", "PGSSLCOMPRESSION"},
    {"sslcert", "PGSSLCERT"}, {"sslkey", "PGSSLKEY"}, {"sslrootcert", "PGSSLROOTCERT"},
    {"sslcrl", "PGSSLCRL"}, {"sslcrldir", "PGSSLCRLDIR"}, {"sslsni", "PGSSLSNI"},
    {"ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION"},
    {"ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION"},
    {"gssencmode", "PGGSSENCMODE"}, {"krbsrvname", "PGKRBSRVNAME"},
    {"gsslib", "PGGSSLIB"}, {"channel_binding", "PGCHANNELBINDING"},
    {"connect_timeout", "PGCONNECT_TIMEOUT"}, {"client_encoding", "PGCLIENTENCODING"},
    {"target_session_attrs", "PGTARGETSESSIONATTRS"},
    {"load_balance_hosts", "PGLOADBALANCEHOSTS"},
};

const char *lm_pgbin(void)
{
    const char *e = getenv("PGBIN");
    if (e && *e)
        return e;
    if (access("/usr/lib/postgresql/15/bin/pg_dump", X_OK) == 0)
        return "/usr/lib/postgresql/15/bin";
    return NULL;
}

bool lm_conninfo_to_env(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", NULL);
    if (!opts)
        return false;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        for (size_t i = 0; i < sizeof envmap / sizeof envmap[0]; i++)
            if (strcmp(o->keyword, envmap[i].key) == 0)
                setenv(envmap[i].env, o->val, 1);
    }
    PQconninfoFree(opts);
    return true;
}

static size_t name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* Replace or append "NAME=value" in a growing envp. */
static void env_set(char ***envp, size_t *n, char *entry)
{
    size_t nl = name_len(entry);
    for (size_t i = 0; i < *n; i++)
        if (name_len((*envp)[i]) == nl && strncmp((*envp)[i], entry, nl) == 0) {
            free((*envp)[i]);
            (*envp)[i] = entry;
            return;
        }
    *envp = lm_realloc(*envp, (*n + 2) * sizeof **envp);
    (*envp)[(*n)++] = entry;
    (*envp)[*n] = NULL;
}

char **lm_conninfo_envp(const char *conninfo, const char *const *extra_env)
{
    PQconninfoOption *opts = NULL;
    char **envp;
    size_t n = 0;

    if (conninfo) {
        opts = PQconninfoParse(conninfo, NULL);
        if (!opts)
            return NULL;
    }
    for (char **e = environ; *e; e++)
        n++;
    envp = lm_malloc((n + 1) * sizeof *envp);
    for (size_t i = 0; i < n; i++)
        envp[i] = lm_strdup(environ[i]);
    envp[n] = NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        for (size_t i = 0; i < sizeof envmap / sizeof envmap[0]; i++)
            if (strcmp(o->keyword, envmap[i].key) == 0)
                env_set(&envp, &n, lm_psprintf("%s=%s", envmap[i].env, o->val));
    }
    for (const char *const *x = extra_env; x && *x; x++)
        env_set(&envp, &n, lm_strdup(*x));
    if (opts)
        PQconninfoFree(opts);
    return envp;
}

void lm_envp_free(char **envp)
{
    if (!envp)
        return;
    for (char **e = envp; *e; e++)
        free(*e);
    free(envp);
}

int lm_run_pgtool(const char *conninfo, const char *const *argv,
                  const char *const *extra_env, char **errout)
{
    const char *bin = lm_pgbin();
    char *path = bin ? lm_psprintf("%s/%s", bin, argv[0]) : lm_strdup(argv[0]);
    char **envp = lm_conninfo_envp(conninfo, extra_env);
    int pfd[2];
    pid_t pid;
    lm_buf err = {0};
    int status = 0, rc;

    if (errout)
        *errout = NULL;
    if (!envp) {
        free(path);
        if (errout)
            *errout = lm_strdup("invalid connection string");
        return 127;
    }
    if (pipe(pfd) != 0) {
        lm_envp_free(envp);
        free(path);
        if (errout)
            *errout = lm_psprintf("pipe: %s", strerror(errno));
        return 127;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        lm_envp_free(envp);
        free(path);
        if (errout)
            *errout = lm_psprintf("fork: %s", strerror(errno));
        return 127;
    }
    if (pid == 0) {
        /* only async-signal-safe calls here: the parent may have threads */
        close(pfd[0]);
        dup2(STDERR_FILENO, STDOUT_FILENO);
        dup2(pfd[1], STDERR_FILENO);
        close(pfd[1]);
        if (strchr(path, '/'))
            execve(path, (char *const *)argv, envp);
        else
            execvpe(path, (char *const *)argv, envp);
        {
            static const char m[] = "could not execute the program\n";
            ssize_t w = write(STDERR_FILENO, m, sizeof m - 1);
            (void)w;
        }
        _exit(127);
    }
    close(pfd[1]);
    for (;;) {
        char tmp[4096];
        ssize_t r = read(pfd[0], tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        lm_buf_put(&err, tmp, (size_t)r);
    }
    close(pfd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status))
        rc = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        rc = 128 + WTERMSIG(status);
    else
        rc = 127;
    lm_buf_u8(&err, '\0');
    if (errout)
        *errout = (char *)err.data;
    else
        free(err.data);
    lm_envp_free(envp);
    free(path);
    return rc;
}

/* Log a tool's stderr line by line as details (at most the last 40). */
static void log_tool_output(const char *out, bool as_detail)
{
    int nlines = 0, skip;
    const char *p;

    if (!out)
        return;
    for (p = out; *p; p++)
        if (*p == '\n')
            nlines++;
    skip = nlines > 40 ? nlines - 40 : 0;
    p = out;
    while (*p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        if (skip > 0)
            skip--;
        else if (len > 0) {
            if (as_detail)
                lm_detail("%.*s", len, p);
            else
                lm_debug("%.*s", len, p);
        }
        p += len + (nl ? 1 : 0);
    }
}

int lm_schema_dump(const char *source_conninfo, const char *snapshot,
                   const char *archive_path, const lm_schema_filter *filter)
{
    const char **argv;
    int argc = 0, rc, n = 18;
    char *tmp = lm_psprintf("%s.partial", archive_path);
    char *fileopt = lm_psprintf("--file=%s", tmp);
    char *snapopt = snapshot ? lm_psprintf("--snapshot=%s", snapshot) : NULL;
    char *out = NULL;
    int code = 0;

    if (filter)
        n += 2 * (filter->ntables + filter->nschemas + filter->nexclude + filter->nexclude_schemas);
    argv = lm_malloc((size_t)n * sizeof *argv);
    argv[argc++] = "pg_dump";
    argv[argc++] = "--format=custom";
    argv[argc++] = "--schema-only";
    argv[argc++] = "--no-publications";
    argv[argc++] = "--no-subscriptions";
    /* the tool's own state schema is not the application's */
    argv[argc++] = "--exclude-schema=lm";
    argv[argc++] = fileopt;
    if (snapopt)
        argv[argc++] = snapopt;
    for (int i = 0; filter && i < filter->nschemas; i++) {
        argv[argc++] = "--schema";
        argv[argc++] = filter->schemas[i];
    }
    for (int i = 0; filter && i < filter->ntables; i++) {
        argv[argc++] = "--table";
        argv[argc++] = filter->tables[i];
    }
    for (int i = 0; filter && i < filter->nexclude; i++) {
        argv[argc++] = "--exclude-table";
        argv[argc++] = filter->exclude[i];
    }
    for (int i = 0; filter && i < filter->nexclude_schemas; i++) {
        argv[argc++] = "--exclude-schema";
        argv[argc++] = filter->exclude_schemas[i];
    }
    argv[argc] = NULL;

    rc = lm_run_pgtool(source_conninfo, argv, NULL, &out);
    if (rc != 0) {
        if (out && strstr(out, "invalid snapshot identifier")) {
            lm_error("pg_dump could not use snapshot \"%s\": it is not (or no longer) exported",
                     snapshot ? snapshot : "");
            code = LM_EXIT_PREFLIGHT;
        } else {
            lm_error("pg_dump of the schema failed (exit status %d)", rc);
            code = rc == 127 ? LM_EXIT_FAILURE : LM_EXIT_SERVER;
        }
        log_tool_output(out, true);
        unlink(tmp);
        goto done;
    }
    log_tool_output(out, false);
    if (rename(tmp, archive_path) != 0) {
        lm_error("could not rename \"%s\" to \"%s\": %s", tmp, archive_path, strerror(errno));
        code = LM_EXIT_IO;
    }
done:
    free(out);
    free(argv);
    free(snapopt);
    free(fileopt);
    free(tmp);
    return code;
}

char *lm_restore_list_desc(char *line)
{
    char *p;
    if (*line == ';')
        return NULL;
    p = strchr(line, ';');
    for (int f = 0; p && f < 3; f++)
        p = strchr(p + 1, ' ');
    return p ? p + 1 : NULL;
}

int lm_restore_list_rewrite(const char *from, const char *to,
                            bool (*comment_out)(char *line, void *arg), void *arg)
{
    FILE *in, *o = NULL;
    char *line = NULL;
    size_t cap = 0;
    int n = 0;

    if (!(in = fopen(from, "r"))) {
        lm_error("could not read the restore list \"%s\": %s", from, strerror(errno));
        return -1;
    }
    if (!(o = fopen(to, "w"))) {
        lm_error("could not write the restore list \"%s\": %s", to, strerror(errno));
        fclose(in);
        return -1;
    }
    while (getline(&line, &cap, in) > 0) {
        if (comment_out(line, arg)) {
            fputc(';', o);
            n++;
        }
        fputs(line, o);
    }
    free(line);
    fclose(in);
    if (fclose(o) != 0) {
        lm_error("could not write the restore list \"%s\": %s", to, strerror(errno));
        unlink(to);
        return -1;
    }
    return n;
}

/* The objects of the kinds a post-data section makes that exist on the
 * target, each as pg_restore -l names it after the two OIDs: "DESC SCHEMA
 * TAG" (newlines turned to spaces, as pg_restore does). */
static const char existing_sql[] =
    "SELECT translate(k, E'\\n\\r', '  ') FROM ("
    " SELECT 'INDEX ' || n.nspname || ' ' || c.relname FROM pg_class c"
    "  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('i', 'I')"
    " UNION ALL SELECT 'INDEX ATTACH ' || n.nspname || ' ' || c.relname FROM pg_inherits i"
    "  JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    "  WHERE c.relkind IN ('i', 'I')"
    " UNION ALL SELECT CASE co.contype WHEN 'f' THEN 'FK CONSTRAINT ' WHEN 'c' THEN 'CHECK CONSTRAINT '"
    "  ELSE 'CONSTRAINT ' END || n.nspname || ' ' || coalesce(cl.relname, t.typname) || ' ' || co.conname"
    "  FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace"
    "  LEFT JOIN pg_class cl ON cl.oid = co.conrelid LEFT JOIN pg_type t ON t.oid = co.contypid"
    " UNION ALL SELECT 'TRIGGER ' || n.nspname || ' ' || cl.relname || ' ' || tg.tgname FROM pg_trigger tg"
    "  JOIN pg_class cl ON cl.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = cl.relnamespace"
    "  WHERE NOT tg.tgisinternal"
    " UNION ALL SELECT 'RULE ' || n.nspname || ' ' || cl.relname || ' ' || r.rulename FROM pg_rewrite r"
    "  JOIN pg_class cl ON cl.oid = r.ev_class JOIN pg_namespace n ON n.oid = cl.relnamespace"
    " UNION ALL SELECT 'POLICY ' || n.nspname || ' ' || cl.relname || ' ' || p.polname FROM pg_policy p"
    "  JOIN pg_class cl ON cl.oid = p.polrelid JOIN pg_namespace n ON n.oid = cl.relnamespace"
    " UNION ALL SELECT 'STATISTICS ' || n.nspname || ' ' || s.stxname FROM pg_statistic_ext s"
    "  JOIN pg_namespace n ON n.oid = s.stxnamespace"
    " UNION ALL SELECT 'EVENT TRIGGER - ' || evtname FROM pg_event_trigger) k(k)";

/* The event triggers of lm-slot create --ddl: pg_dump dumps every event
 * trigger (they belong to no schema, so --exclude-schema=lm does not leave
 * them out), and on the target their function is missing.  A restore
 * list entry: "ID; TABLEOID OID EVENT TRIGGER - NAME OWNER". */
static bool ddl_capture_entry(const char *line)
{
    return *line != ';' && (strstr(line, " EVENT TRIGGER - lm_ddl_end ") ||
                            strstr(line, " EVENT TRIGGER - lm_ddl_drop "));
}

/* ddl_capture_entry as lm_restore_list_rewrite's comment_out */
static bool capture_entry(char *line, void *arg)
{
    return ddl_capture_entry(line);
}

/* A restore list of the post-data section without the DDL capture's event
 * triggers, or NULL when the archive has none (or on an error, logged:
 * then the restore goes on without a list and reports what fails). */
static char *post_data_list_without_capture(const char *archive_path)
{
    char *listfile = lm_psprintf("%s.post-data.list", archive_path);
    char *fileopt = lm_psprintf("--file=%s.all", listfile);
    char *all = lm_psprintf("%s.all", listfile);
    const char *argv[] = {"pg_restore", "--list", "--section=post-data", fileopt, archive_path, NULL};
    char *out = NULL, *line = NULL;
    size_t cap = 0;
    FILE *in = NULL;
    int found = 0;

    if (lm_run_pgtool(NULL, argv, NULL, &out) != 0 || !(in = fopen(all, "r")))
        goto fail;
    while (getline(&line, &cap, in) > 0)
        found += ddl_capture_entry(line);
    fclose(in);
    in = NULL;
    if (found == 0 || lm_restore_list_rewrite(all, listfile, capture_entry, NULL) < 0)
        goto fail;
    unlink(all);
    lm_info("post-data: the DDL capture's event triggers are the source's, not restored");
    free(line);
    free(out);
    free(fileopt);
    free(all);
    return listfile;
fail:
    if (in)
        fclose(in);
    unlink(all);
    unlink(listfile);
    free(line);
    free(out);
    free(fileopt);
    free(all);
    free(listfile);
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The target's objects, sorted (post_data_list's comment_out argument) */
typedef struct existing_keys {
    char **keys;
    int nkeys;
} existing_keys;

/* An entry whose object exists on the target, or one of the DDL capture's */
static bool existing_entry(char *line, void *arg)
{
    const existing_keys *ek = arg;
    char *rest = lm_restore_list_desc(line);
    bool made = false;
    /* the object exists when some prefix of "DESC SCHEMA TAG OWNER" ending
     * before a space is a key (names may hold spaces: every such prefix is
     * tried) */
    for (char *sp = rest ? strchr(rest, ' ') : NULL; sp && !made; sp = strchr(sp + 1, ' ')) {
        char *k = rest, save = *sp;
        *sp = '\0';
        made = bsearch(&k, ek->keys, (size_t)ek->nkeys, sizeof *ek->keys, cmp_str) != NULL;
        *sp = save;
    }
    return made || ddl_capture_entry(line);
}

/* A restore list for the post-data section of archive_path without the
 * entries whose object a killed run already made on the target (pg_restore
 * --clean cannot drop them: a partition's inherited constraint refuses).
 * Returns the list file's path (archive_path.post-data.list), or NULL with
 * the error logged. */
static char *post_data_list(const char *archive_path, const char *target_conninfo)
{
    char *listfile = lm_psprintf("%s.post-data.list", archive_path);
    char *fileopt = lm_psprintf("--file=%s.all", listfile);
    char *all = lm_psprintf("%s.all", listfile);
    const char *argv[] = {"pg_restore", "--list", "--section=post-data", fileopt, archive_path, NULL};
    char *out = NULL, *err = NULL;
    existing_keys ek = {NULL, 0};
    int skipped = -1, rc;
    PGconn *conn = NULL;
    PGresult *res = NULL;

    rc = lm_run_pgtool(NULL, argv, NULL, &out);
    if (rc != 0) {
        lm_error("pg_restore --list of \"%s\" failed (exit status %d)", archive_path, rc);
        log_tool_output(out, true);
        goto done;
    }
    conn = lm_connect_try(target_conninfo, "target", LM_CONN_NO_SETTINGS, &err);
    if (!conn) {
        lm_error("%s", err);
        goto done;
    }
    res = lm_exec_try(conn, existing_sql, &err);
    if (!res) {
        lm_error("listing the indexes, constraints and triggers of the target failed: %s", err);
        goto done;
    }
    ek.nkeys = PQntuples(res);
    ek.keys = lm_malloc((size_t)(ek.nkeys ? ek.nkeys : 1) * sizeof *ek.keys);
    for (int i = 0; i < ek.nkeys; i++)
        ek.keys[i] = PQgetvalue(res, i, 0);
    qsort(ek.keys, (size_t)ek.nkeys, sizeof *ek.keys, cmp_str);
    skipped = lm_restore_list_rewrite(all, listfile, existing_entry, &ek);
    if (skipped >= 0)
        lm_info("post-data: %d object%s that exist on the target left as they are, the rest restored",
                skipped, skipped == 1 ? "" : "s");
done:
    unlink(all);
    free(ek.keys);
    PQclear(res);
    if (conn)
        PQfinish(conn);
    free(err);
    free(out);
    free(fileopt);
    free(all);
    if (skipped < 0) {
        free(listfile);
        return NULL;
    }
    return listfile;
}

/* The whole list of a section of archive_path, in archive_path.SECTION.list
 * (NULL with the error logged). */
static char *full_list(const char *archive_path, const char *section)
{
    char *listfile = lm_psprintf("%s.%s.list", archive_path, section);
    char *fileopt = lm_psprintf("--file=%s", listfile);
    char *sectopt = lm_psprintf("--section=%s", section);
    const char *argv[] = {"pg_restore", "--list", sectopt, fileopt, archive_path, NULL};
    char *out = NULL;
    int rc = lm_run_pgtool(NULL, argv, NULL, &out);
    if (rc != 0) {
        lm_error("pg_restore --list of \"%s\" failed (exit status %d)", archive_path, rc);
        log_tool_output(out, true);
        unlink(listfile);
        free(listfile);
        listfile = NULL;
    }
    free(out);
    free(fileopt);
    free(sectopt);
    return listfile;
}

int lm_schema_restore(const char *archive_path, const char *target_conninfo,
                      const char *section, int jobs, bool no_owner, bool again)
{
    const char *argv[16];
    const char *env[2];
    int argc = 0, rc, code = 0;
    char *sectopt = lm_psprintf("--section=%s", section);
    char *jobsopt = NULL, *dbopt = NULL, *out = NULL, *err = NULL, *options = NULL;
    char *listfile = NULL, *listopt = NULL;
    const char *mwm = getenv("LM_MAINTENANCE_WORK_MEM");
    const char *user_opts = getenv("PGOPTIONS");
    PQconninfoOption *opts;
    PGconn *conn;
    lm_tsdb_split hyper = {0};

    /* pg_restore needs -d to restore rather than print a script: give it
     * only the database name (no secrets), the rest comes by environment */
    conn = lm_connect_try(target_conninfo, "target", LM_CONN_NO_SETTINGS, &err);
    if (!conn) {
        lm_error("%s", err);
        free(err);
        free(sectopt);
        return LM_EXIT_CONNECT;
    }
    dbopt = lm_conninfo_dbname(PQdb(conn));
    PQfinish(conn);
    conn = NULL;

    opts = PQconninfoParse(target_conninfo ? target_conninfo : "", NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "options") == 0 && o->val && *o->val)
            user_opts = o->val;
    options = lm_psprintf("PGOPTIONS=-c maintenance_work_mem=%s -c synchronous_commit=off%s%s",
                          mwm && *mwm ? mwm : "512MB", user_opts ? " " : "",
                          user_opts ? user_opts : "");
    if (opts)
        PQconninfoFree(opts);
    env[0] = options;
    env[1] = NULL;

    argv[argc++] = "pg_restore";
    argv[argc++] = sectopt;
    argv[argc++] = "--exit-on-error";
    argv[argc++] = "-d";
    argv[argc++] = dbopt;
    if (jobs > 1 && strcmp(section, "pre-data") != 0) {
        jobsopt = lm_psprintf("--jobs=%d", jobs);
        argv[argc++] = jobsopt;
    }
    if (strcmp(section, "post-data") == 0) {
        /* what exists is left out (again), and the constraints of the
         * target's hypertables are run on their own (tsdbrestore.h) */
        if (again)
            listfile = post_data_list(archive_path, target_conninfo);
        else if (!(listfile = post_data_list_without_capture(archive_path)))
            listfile = full_list(archive_path, "post-data");
        if (!listfile) {
            code = LM_EXIT_FAILURE;
            goto done;
        }
        conn = lm_connect_try(target_conninfo, "target", LM_CONN_NO_SETTINGS, &err);
        if (!conn) {
            lm_error("%s", err);
            code = LM_EXIT_CONNECT;
            goto done;
        }
        {
            /* index builds of the hypertables' keys, as pg_restore's */
            char *lit = lm_literal(mwm && *mwm ? mwm : "512MB");
            char *set = lm_psprintf("SET maintenance_work_mem = %s", lit);
            PQclear(lm_exec_try(conn, set, NULL));
            free(set);
            free(lit);
        }
        if (!lm_tsdb_split_list(conn, listfile, &hyper)) {
            code = LM_EXIT_FAILURE;
            goto done;
        }
        if ((code = lm_tsdb_run_entries(conn, archive_path, &hyper, false)) != 0)
            goto done;
        listopt = lm_psprintf("--use-list=%s", listfile);
        argv[argc++] = listopt;
    } else if (again) {
        /* pre-data, before any data: dropped and made again */
        argv[argc++] = "--clean";
        argv[argc++] = "--if-exists";
    }
    if (no_owner) {
        argv[argc++] = "--no-owner";
        argv[argc++] = "--no-privileges";
    }
    argv[argc++] = archive_path;
    argv[argc] = NULL;

    rc = lm_run_pgtool(target_conninfo, argv, env, &out);
    if (rc != 0) {
        lm_error("restoring the %s section of the schema failed (pg_restore exit status %d)",
                 section, rc);
        log_tool_output(out, true);
        code = rc == 127 ? LM_EXIT_FAILURE : LM_EXIT_SERVER;
    } else {
        log_tool_output(out, false);
        if (conn)
            code = lm_tsdb_run_entries(conn, archive_path, &hyper, true);
    }
done:
    if (conn)
        PQfinish(conn);
    free(err);
    lm_tsdb_split_free(&hyper);
    if (listfile)
        unlink(listfile);
    free(listfile);
    free(listopt);
    free(out);
    free(options);
    free(jobsopt);
    free(dbopt);
    free(sectopt);
    return code;
}
