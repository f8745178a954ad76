/* lm-apply internals: the target side (target.c and the files that
 * target_int.h lists) and the bulk loader (bulk.c), driven by the record
 * loop in lm-apply.c. */
#ifndef LM_APPLY_H
#define LM_APPLY_H

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "record.h"
#include "relcache.h"

/* limits of one target transaction and of pending batches */
typedef struct apply_limits {
    uint64_t group_changes;    /* source changes per target transaction */
    uint64_t group_bytes;      /* stream bytes per target transaction */
    int64_t group_time_us;     /* age of a target transaction */
    uint64_t batch_rows;       /* rows in one batched UPDATE or DELETE */
} apply_limits;

/* lm-apply's defaults */
#define APPLY_LIMITS_DEFAULT { \
    .group_changes = 50000, \
    .group_bytes = 8u << 20, /* also bounds the kept records: memory */ \
    .group_time_us = 500000, \
    .batch_rows = 2000, \
}

/* what was applied, for --progress */
typedef struct apply_stats {
    uint64_t rows_copy, rows_insert, rows_update, rows_delete;
    uint64_t stmts;            /* statements sent (a COPY counts one) */
} apply_stats;

/* The target session: connection, limits, origin, the open target
 * transaction and what is pending in it, statistics. Opaque; every tgt_
 * and bulk_ function takes it (target_int.h has its insides). */
typedef struct apply_target apply_target;

/* connection and session; exits on failure. conninfo and lim are kept
 * (conninfo by pointer: it must outlive the session). */
apply_target *tgt_connect(const char *conninfo, const apply_limits *lim);
/* close the connection and free the session (free the relcache whose
 * entries hold its table metadata first) */
void tgt_close(apply_target *t);
PGconn *tgt_conn(apply_target *t);
const char *tgt_conninfo(const apply_target *t);
/* the counters; bulk loading adds its rows */
apply_stats *tgt_stats(apply_target *t);
/* hook: called before exiting because the target lacks a table or column
 * the stream needs, with the target transaction still usable */
void tgt_on_mismatch(apply_target *t, void (*hook)(void *arg), void *arg);
/* pairing of the origin with the stream's source, then session setup;
 * returns the origin's position (0 if new). origin is kept by pointer. */
uint64_t tgt_origin_setup(apply_target *t, const char *origin, const lm_record *header);
/* the origin's position; flush: make it durable first (what may be acked) */
uint64_t tgt_origin_progress(apply_target *t, bool flush);

/* per-table sync positions from lm.sync (0 when none) */
void tgt_load_sync(apply_target *t);

/* changes; the transaction's commit LSN decides per-table sync skips */
bool tgt_change_wanted(apply_target *t, lm_relentry *e, uint64_t commit_lsn);
void tgt_insert(apply_target *t, lm_relentry *e, const lm_tuple *tuple);
void tgt_update(apply_target *t, lm_relentry *e, const lm_record *r);
void tgt_delete(apply_target *t, lm_relentry *e, const lm_record *r);
void tgt_truncate(apply_target *t, lm_relentry **rels, uint32_t n, uint8_t flags);
void tgt_marker(apply_target *t, const lm_record *msg);
/* replay a DDL record (ddl.c) in the open target transaction, as its role
 * and with its search_path; every table's target metadata is read again
 * after it. Exits when it cannot be replayed or fails, rolled back. */
void tgt_ddl(apply_target *t, lm_relcache *rels, const lm_record *r, uint64_t commit_lsn);
/* --ddl-done: the DDL record seq was made by hand; tgt_ddl passes over it */
void tgt_ddl_done(uint64_t seq);
/* send what is pending (batches, COPY runs) */
void tgt_flush_pending(apply_target *t);
/* commit the open target transaction, moving the origin to end_lsn */
void tgt_commit(apply_target *t, uint64_t end_lsn, int64_t commit_ts);
void tgt_rollback(apply_target *t);
bool tgt_in_xact(apply_target *t);
/* open the target transaction if none is (a source transaction with no
 * change still moves the origin) */
void tgt_touch(apply_target *t);
/* leave pipeline mode with nothing pending (for COPY and plain queries) */
void tgt_leave_pipeline(apply_target *t);
void tgt_set_encoding(apply_target *t, const char *enc);
/* run a statement outside a group and wait (pipeline-safe) */
PGresult *tgt_query(apply_target *t, const char *sql, int nparams, const char *const *params);
/* free a table's target metadata (relcache callback: the metadata knows
 * its session, whose prepared statements it gives back) */
void tgt_free_tabinfo(void *p);

/* bulk table data from lm-snapshot --output */
void bulk_begin(apply_target *t, const lm_record *r);
void bulk_data(apply_target *t, const lm_record *r);
void bulk_end(apply_target *t, const lm_record *r);
void bulk_archive(apply_target *t, const lm_record *r);
void bulk_finish(apply_target *t);
bool bulk_active(void);

/* --status: the origin's position and what lm.origin and lm.progress hold
 * about it, as text or JSON on standard output (status.c) */
int apply_print_status(apply_target *tgt, const char *origin, bool json);

#endif
