/* The tool's state on the target: one schema, "lm", defined here and only
 * here (man/lm-state.7 documents it). lm-snapshot and lm-apply share it:
 *
 *   lm.meta      key/value facts about the migration (format version, ...)
 *   lm.origin    which source system, database and slot a replication
 *                origin was started from (a stream from another is refused)
 *   lm.copy      copy progress: one row per finished table chunk, written in
 *                the same transaction as the chunk's data
 *   lm.sync      per-table sync position: changes to the table are applied
 *                only from transactions that committed at or after it
 *   lm.marker    cutover markers applied, in the transaction that applied
 *                everything before them
 *   lm.progress  the last source transaction applied per origin (for lag)
 */
#ifndef LM_STATE_H
#define LM_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "buf.h"
#include "exitcodes.h"   /* LM_MARKER_PREFIX */

#define LM_STATE_SCHEMA "lm"
#define LM_STATE_VERSION 1

/* Create the schema and its tables if missing (idempotent, safe against
 * concurrent callers); exits with LM_EXIT_PREFLIGHT if the role may not. */
void lm_state_ensure(PGconn *target);
/* Whether the schema exists. */
bool lm_state_exists(PGconn *target);
/* The DDL, for documentation and tests. */
const char *lm_state_ddl(void);

/* The accessors below run on the target's connection and exit with
 * LM_EXIT_SERVER when a statement fails; those that write do so in the
 * caller's transaction, if one is open. */

/* lm.meta: whether key has a row. */
bool lm_meta_has(PGconn *target, const char *key);
/* lm.meta: key set to value, replacing an earlier value. */
void lm_meta_set(PGconn *target, const char *key, const char *value);
/* lm.meta: key set to the server's time unless it has a row: the first
 * time it was marked is kept. */
void lm_meta_mark_once(PGconn *target, const char *key);

/* lm.marker: the statement that records a cutover marker as applied, in
 * the transaction that moves the origin past it; parameters $1 origin,
 * $2 payload, $3 the marker's LSN (text). A marker applied again (a replay)
 * changes nothing. lm-migrate's cutover reads the row (lib: marker_applied). */
const char *lm_marker_insert_sql(void);

/* A finished chunk of a table's bulk copy, as lm.copy keeps it. */
typedef struct lm_copy_chunk {
    const char *nspname;
    const char *relname;
    int64_t chunk;           /* 0-based, of nchunks (int in lm.copy: a larger */
    int64_t nchunks;         /* number is the server's error) */
    int64_t first_page;      /* its block range; -1: not known (NULL) */
    int64_t last_page;
    uint64_t rows;
    uint64_t bytes;
    const char *snapshot;    /* the snapshot it was copied under; NULL: not known */
    bool have_sync_lsn;      /* sync_lsn is the copy's consistent point (else NULL) */
    uint64_t sync_lsn;
} lm_copy_chunk;

/* lm.copy: record a finished chunk; the caller commits it with the chunk's
 * rows. */
void lm_copy_done(PGconn *target, const lm_copy_chunk *c);
/* lm.copy: whether chunk of nsp.rel is recorded as finished. */
bool lm_copy_has(PGconn *target, const char *nsp, const char *rel, int64_t chunk);
/* lm.copy: how many finished chunks are recorded. */
long long lm_copy_count(PGconn *target);
/* lm.copy: every finished chunk, ordered by table and chunk, with the
 * columns nspname, relname, chunk, first_page, last_page, snapshot (text;
 * PQclear the result). */
PGresult *lm_copy_list(PGconn *target);
/* Append to sql the statement that forgets the finished chunks of nsp.rel
 * (no ';'), for a batch that also empties the table. */
void lm_copy_forget_sql(lm_buf *sql, const char *nsp, const char *rel);

#endif
