/* The schema with PostgreSQL's own tools: pg_dump into a custom-format
 * archive, pg_restore of its pre-data or post-data section. Shared by
 * lm-snapshot (dump and restore) and lm-apply (restore from an archive that
 * came through a stream).
 *
 * Credentials never appear in a child's argv (where ps shows them): the
 * connection string is parsed with PQconninfoParse and handed over as the
 * libpq environment variables (PGHOST, PGPORT, PGDATABASE, PGUSER,
 * PGPASSWORD, PGSSLMODE, ...) of the child only.
 *
 * The tools are taken from $PGBIN, else /usr/lib/postgresql/15/bin, else
 * the PATH. Their stderr is captured; on failure it is logged as the detail
 * of the error (pg_restore --exit-on-error names the statement that
 * failed). */
#ifndef LM_SCHEMA_H
#define LM_SCHEMA_H

#include <stdbool.h>

/* Which tables the dump covers: psql-style patterns as pg_dump's -t, -n
 * and -T take them. Empty lists mean everything. */
typedef struct lm_schema_filter {
    const char *const *tables;    /* -t */
    int ntables;
    const char *const *schemas;   /* -n */
    int nschemas;
    const char *const *exclude;   /* -T */
    int nexclude;
    const char *const *exclude_schemas;   /* -N */
    int nexclude_schemas;
} lm_schema_filter;

/* Directory of the PostgreSQL client programs ($PGBIN or the default). */
const char *lm_pgbin(void);

/* In a child process (after fork, before exec): set the libpq environment
 * variables from conninfo, so the child connects where conninfo says. Keys
 * conninfo leaves out keep the caller's environment. false if conninfo does
 * not parse. */
bool lm_conninfo_to_env(const char *conninfo);

/* A new environment (NULL-terminated, malloc'd with its strings; free
 * with lm_envp_free): the caller's, with the libpq variables conninfo sets
 * (NULL: none) and the extra "NAME=value" entries (may be NULL) replacing
 * any of the same name. Safe to build before fork for execve. NULL if
 * conninfo does not parse. */
char **lm_conninfo_envp(const char *conninfo, const char *const *extra_env);
void lm_envp_free(char **envp);

/* Run a PostgreSQL program (argv[0] is its name, looked up in lm_pgbin())
 * connected by environment to conninfo (NULL: leave the environment),
 * with extra "NAME=value" environment entries (NULL-terminated list, may be
 * NULL). Its stdout goes to stderr; its stderr is captured into *errout
 * (malloc'd, may be NULL). Returns the program's exit status, 127 if it
 * could not be started, 128+N if killed by signal N. */
int lm_run_pgtool(const char *conninfo, const char *const *argv,
                  const char *const *extra_env, char **errout);

/* A pg_restore list entry's "DESC SCHEMA TAG OWNER" (line is "ID; TABLEOID
 * OID DESC SCHEMA TAG OWNER"): a pointer into line, or NULL for a comment
 * or a line of another form. */
char *lm_restore_list_desc(char *line);

/* Writes the pg_restore list file `from` again as `to`, each line through
 * comment_out(line, arg): the entries it returns true for are commented out
 * (";" before them). Returns how many were, or -1 with the error logged
 * (then `to` is removed). */
int lm_restore_list_rewrite(const char *from, const char *to,
                            bool (*comment_out)(char *line, void *arg), void *arg);

/* pg_dump -Fc --schema-only --snapshot=snapshot --no-publications
 * --no-subscriptions of source_conninfo's database into archive_path
 * (written to a temporary name, renamed when complete). snapshot may be
 * NULL (no snapshot). Returns an exit code: 0 ok, LM_EXIT_PREFLIGHT if the
 * snapshot is not valid, LM_EXIT_SERVER if pg_dump failed (logged). */
int lm_schema_dump(const char *source_conninfo, const char *snapshot,
                   const char *archive_path, const lm_schema_filter *filter);

/* pg_restore --section=section ("pre-data" or "post-data") --exit-on-error
 * of archive_path into target_conninfo's database, with -j jobs (post-data
 * only; pre-data runs in one session) and maintenance_work_mem=512MB
 * (LM_MAINTENANCE_WORK_MEM overrides) for index builds. no_owner adds
 * --no-owner --no-privileges. again says an earlier run may have restored
 * part of the section before it was killed, so that it does not fail as
 * "already exists": post-data is restored from a list (pg_restore -L)
 * without the indexes, constraints, triggers, ... that exist on the target;
 * pre-data gets --clean --if-exists, dropped and made again (the caller
 * makes sure no data was copied into it yet; it is not restored in a single
 * transaction instead: a lock per table would exhaust the lock table on a
 * schema of thousands). Returns an exit code: 0 ok,
 * LM_EXIT_SERVER if the restore failed part-way (what failed is logged),
 * LM_EXIT_FAILURE if pg_restore could not run. */
int lm_schema_restore(const char *archive_path, const char *target_conninfo,
                      const char *section, int jobs, bool no_owner, bool again);

#endif
