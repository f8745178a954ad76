/* lm-slot: what the subcommands share. */
#ifndef LM_SLOT_H
#define LM_SLOT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

typedef struct slot_opts {
    const char *source;      /* connection string; "" = libpq environment */
    const char *slot;
    const char *publication; /* default: the slot name */
    const char **tables;
    int ntables;
    const char **schemas;
    int nschemas;
    const char **excludes;
    int nexcludes;
    bool all_tables;
    bool ri_full;
    bool hold;
    bool ddl;                /* create: install the DDL capture (ddl.c) */
    bool json;
    const char *output;      /* create: the report into this file (temp + rename) */
    uint64_t to_lsn;
} slot_opts;

/* Every DDL on the source waits at most this long for a lock, so that it
 * never queues behind the application (and makes the application queue
 * behind it). */
#define LM_SLOT_LOCK_TIMEOUT "5s"

/* The application_name the holding replication connection sets, so that
 * status can find the session that pins the exported snapshot. */
#define LM_SLOT_HOLDER_PREFIX "lm-slot hold "

/* Reports on stdout: "key: value" lines, or one JSON object with --json.
 * Flushed at kv_end, since a reader may act on it while we keep running. */
typedef struct kvout {
    bool json;
    int n;
    FILE *f;       /* stdout, or the temporary file of kv_begin_file */
    char *path;    /* kv_begin_file: the file renamed into place at kv_end */
    char *tmp;
} kvout;
void kv_begin(kvout *k, bool json);
/* The same into PATH: written to PATH.tmp, flushed, fsynced and renamed
 * over PATH at kv_end, so a reader never sees part of it. */
void kv_begin_file(kvout *k, bool json, const char *path);
/* A string value; NULL is JSON null (an empty text line). */
void kv_str(kvout *k, const char *key, const char *val);
/* A number or boolean as the server printed it; NULL is null. */
void kv_raw(kvout *k, const char *key, const char *val);
void kv_bool(kvout *k, const char *key, bool val);
void kv_end(kvout *k);

/* A table the publication would cover (create). */
typedef struct pubtable {
    char *display;       /* nsp.rel, for messages */
    char *qual;          /* "nsp"."rel", quoted */
    char replident;      /* d, n, f, i */
    bool has_pk;
    bool has_ri_index;
    bool owned;
    char *owner;
    char *chunk_schema;  /* a TimescaleDB hypertable: where its chunks are; else NULL */
} pubtable;

typedef struct scope {
    pubtable *t;
    int n;
    /* TimescaleDB: the schemas the publication covers whole (TABLES IN
     * SCHEMA), so that chunks made after the slot are in it */
    char **schemas;
    int nschemas;
} scope;

/* create's preflight: log a problem (lm_error) and count it */
void slot_problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A relation that belongs to an extension (pg_depend deptype 'e'): not user
 * data, never published. C is the pg_class alias. */
#define LM_EXT_MEMBER(c) \
    "EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass" \
    " AND d.objid = " c ".oid AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')"

/* ARRAY['a', 'b']::text[] of v[0..n-1], every element quoted ('{}'::text[]
 * when n is 0); malloc'd (create.c). */
char *slot_text_array(const char *const *v, int n);

/* TimescaleDB on the source (tsdb.c). */
/* The extension's version, or NULL when it is not installed. */
char *tsdb_version(PGconn *conn);
/* SQL (a boolean) for "relation C in namespace N is a chunk or lies in one
 * of the extension's own schemas": left out of the explicit table list. */
char *tsdb_not_user_table(const char *n, const char *c);
/* What cannot be migrated live (compressed chunks, continuous aggregates,
 * background jobs that drop or rewrite chunks), each a problem with what
 * to do; the chunk schemas to publish into sc; their checks. */
void tsdb_preflight(PGconn *conn, const slot_opts *o, scope *sc, bool superuser,
                    const char *user);
/* After REPLICA IDENTITY FULL on hypertable QUAL (inside the transaction):
 * every chunk of it carries it too. Returns false (logged) if not. */
bool tsdb_check_chunks_full(PGconn *conn, const char *qual);

/* The subcommands; each returns the exit code. */
int slot_create(const slot_opts *o);
int slot_status(const slot_opts *o);
int slot_drop(const slot_opts *o);
int slot_advance(const slot_opts *o);

/* ddl.c, the DDL capture of create --ddl. The problems found, each logged. */
#include <libpq-fe.h>
int ddl_preflight(PGconn *conn, const slot_opts *o);
/* install it (one transaction) and publish lm.ddl_log; false: logged, nothing left */
bool ddl_install(PGconn *conn, const slot_opts *o);
/* remove it (only_if_ours: only if installed for that publication); the exit code */
int ddl_uninstall(PGconn *conn, const char *publication, bool only_if_ours);

#endif
