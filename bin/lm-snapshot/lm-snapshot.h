/* lm-snapshot: schema and data of a source database as of an exported
 * snapshot, copied to a target (or written as a change stream). */
#ifndef LM_SNAPSHOT_H
#define LM_SNAPSHOT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "progress.h"
#include "schema.h"
#include "stream.h"

typedef struct hypertable_opt {
    char *table;      /* as given: [schema.]table */
    char *column;
    char *interval;   /* NULL: the extension's default */
} hypertable_opt;

typedef struct options {
    const char *source;
    const char *target;
    const char *output;       /* stream mode */
    const char *snapshot;
    const char *slot;         /* for the stream header */
    const char *workdir;
    int jobs;
    uint64_t split_bytes;
    bool schema_only, data_only, post_data_only;
    bool no_owner, resume, compress;
    lm_progress_when progress;   /* --progress[=WHEN] */
    bool existing;            /* --target-schema=existing: the DBA made the target's tables */
    bool check_target;        /* --check-target: compare them with the source's, then exit */
    bool skip_db_settings;    /* --skip-db-settings: no ALTER DATABASE/ROLE ... SET copied */
    bool have_sync_lsn;
    uint64_t sync_lsn;
    const char **tables; int ntables;
    const char **schemas; int nschemas;
    const char **excludes; int nexcludes;
    hypertable_opt *hypertables; int nhypertables;
    int test_delay_ms;        /* LM_SNAPSHOT_TEST_DELAY_MS: slow each chunk */
} options;

/* A TimescaleDB hypertable of the source, as of the snapshot. */
typedef struct hyper_dim {
    char *column;
    bool open;                /* by range (time); else by hash (space) */
    char *interval;           /* open: interval_length (microseconds for a time type) */
    int partitions;           /* closed: number of partitions */
    char *func;               /* partitioning function to name, or NULL (the default) */
    char *now_func;           /* open: integer_now function, or NULL */
} hyper_dim;

typedef struct hyper_part {
    char *qname;              /* a chunk table of the source, or the hypertable itself */
    uint64_t bytes;
} hyper_part;

typedef struct hyper_src {
    int id;
    char *nspname, *relname;
    hyper_dim *dims; int ndims;
    hyper_part *parts; int nparts;   /* [0]: the hypertable itself (ONLY), then its chunks */
    bool compressed;          /* a chunk is compressed */
} hyper_src;

typedef struct table {
    unsigned oid;             /* on the source */
    char *nspname, *relname;
    char *qname;              /* "nsp"."rel" */
    char *columns;            /* "a", "b" (generated columns left out) */
    bool binary;              /* every column type built in, same major */
    bool hypertable;          /* made a hypertable on the target */
    hyper_src *src_hyper;     /* a hypertable on the source: copied chunk by chunk */
    bool routed;              /* --target-schema=existing: partitioned (or with children)
                               * on the target: no TRUNCATE ONLY, no COPY FREEZE */
    uint64_t bytes;           /* pg_relation_size on the source */
    uint64_t pages;
    double reltuples;         /* pg_class.reltuples on the source (-1: not known) */
    /* filled while copying */
    int nchunks, chunks_done, chunks_started;
    uint64_t rows, copied;    /* rows and COPY bytes so far */
    int64_t start_us, end_us;
    bool skipped;             /* finished in an earlier run */
} table;

typedef struct chunk {
    table *t;
    int chunk;                /* number recorded in lm.copy */
    int nchunks;
    int64_t first_page;       /* -1: no ctid range (whole table) */
    int64_t end_page;         /* exclusive; -1: open-ended */
    bool whole;               /* the whole table in one transaction (FREEZE) */
    const char *src_rel;      /* read FROM ONLY this relation (a hypertable's chunk) */
    uint64_t est_bytes;
    double est_rows;          /* from reltuples, by the chunk's share of the pages */
    uint64_t copied;          /* progress (bytes relayed so far) */
    uint64_t rows_seen;       /* progress (rows relayed so far) */
    bool done;                /* committed (under run.mu) */
} chunk;

/* Shared run state. */
typedef struct run {
    options *o;
    const char *snapshot;     /* the snapshot the data is read under */
    char *snapshot_id;        /* that snapshot and the source's start time: names
                               * repeat after a restart ("00000003-00000002-1"
                               * again), and chunks of two snapshots must never
                               * be taken for one */
    bool fresh;               /* a fresh snapshot replaced a dead one */
    bool have_sync;           /* sync_lsn valid */
    uint64_t sync_lsn;
    int src_version, tgt_version;
    char *src_encoding;
    table *tables; int ntables;
    chunk *chunks; int nchunks;
    char *src_tsdb;           /* the source's TimescaleDB version, NULL: none */
    char **tsdb_schemas; int ntsdb_schemas;   /* the extension's own schemas on the source */
    hyper_src *hsrc; int nhsrc;
    /* work queue and progress */
    pthread_mutex_t mu;
    int next;
    uint64_t total_est;
    double total_rows_est;
    bool rows_unknown;        /* a table never analyzed, or a hypertable: no row estimate */
    lm_progress prog;
    lm_writer *w;             /* stream mode */
    pthread_mutex_t wmu;
} run;

/* plan.c */
/* The source's copyable leaf tables in scope, under the run's snapshot
 * (plan is a source connection inside the snapshot transaction). */
void plan_tables(run *r, PGconn *plan);
/* Cut tables into chunks, skipping what lm.copy on target says is done
 * (target NULL: stream mode, nothing done). Tables to reload whole are
 * reset on the target here. Returns the chunks, largest table first. */
void plan_chunks(run *r, PGconn *target);
/* Roles the schema needs that the target lacks: logs them, exit 4. */
void check_roles(run *r, PGconn *src, PGconn *tgt);
/* --target-schema=existing: every planned table must have a target table
 * with every source column (same name; a type differing by name is a
 * warning, that table copied as text), and the target's other columns
 * need a default or must take NULL; a target table holding rows that no
 * lm.copy row accounts for is refused. Logs each problem, exit 4. Sets
 * t->routed (and clears t->binary where types differ). */
void check_target_tables(run *r, PGconn *src, PGconn *tgt);
/* A psql-style name pattern as an anchored POSIX regex for one part. */
char *pattern_regex(const char *pattern, char **nsp_regex);

/* Add a chunk (a unit of the copy) to the plan. */
void plan_add_chunk(run *r, int *cap, table *t, int num, int nchunks, int64_t first, int64_t end,
                    bool whole);

/* hyper.c: TimescaleDB */
/* TimescaleDB on the source (under the snapshot): its version, its own
 * schemas, the hypertables with their dimensions and chunks. Nothing when
 * the extension is not there. */
void hyper_read_source(run *r, PGconn *src);
/* SQL condition on pg_class c / pg_namespace n leaving out the source's
 * chunk tables and the tables of TimescaleDB's own schemas ("true" without
 * TimescaleDB). */
char *hyper_exclude_sql(const run *r);
/* After plan_tables: the planned tables that are hypertables on the
 * source (copied chunk by chunk, made hypertables on the target), and
 * --hypertable's tables; a --hypertable naming no planned table is exit 4. */
void hyper_attach(run *r);
/* pg_dump's exclusions: the chunk tables and TimescaleDB's schemas
 * (patterns in *tables and *schemas, malloc'd). */
void hyper_dump_excludes(const run *r, char ***tables, int *ntables, char ***schemas,
                         int *nschemas);
/* The target can take the hypertables (TimescaleDB installed, or
 * available to CREATE EXTENSION, at a version that fits): else exit 4,
 * before anything is made. */
void hyper_check_target(run *r, PGconn *tgt);
/* After pre-data: make the hypertables (the source's dimensions, or
 * --hypertable's), each in one transaction; one that is one already (an
 * earlier run) is left as it is. */
void hyper_create(run *r, PGconn *tgt);
/* The copy units of a source hypertable not finished on the target
 * (done[i]: unit i is). */
void hyper_plan_units(run *r, int *cap, table *t, const bool *done);

/* dbsettings.c */
/* The source database's settings (pg_db_role_setting: ALTER DATABASE ...
 * SET and ALTER ROLE ... IN DATABASE ... SET) set on the target database,
 * each logged; default_transaction_read_only and the per-transaction ones
 * left out; a role missing on the target, or a value the target refuses,
 * is a warning and left out. */
void copy_db_settings(const options *o, PGconn *tgt);

/* copy.c */
/* Copy every chunk with o->jobs workers; progress on stderr (r->prog):
 * overall, and the tables in flight. */
void copy_chunks(run *r);
/* Run restore(arg) (pg_restore of post-data) while the target's index
 * builds (pg_stat_progress_create_index, from a connection of its own,
 * once a second) are shown on r->prog; returns what restore returned. */
int watch_post_data(run *r, const char *target, int (*restore)(void *), void *arg);
/* Print the per-table summary on stderr. */
void print_summary(run *r);

#endif
