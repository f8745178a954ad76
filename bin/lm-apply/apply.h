/* lm-apply internals: the target side (target.c) and the bulk loader
 * (bulk.c), driven by the record loop in lm-apply.c. */
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

extern apply_limits lim;
extern PGconn *tconn;
extern const char *origin_name;

/* connection and session */
void tgt_connect(const char *conninfo);
/* pairing of the origin with the stream's source, then session setup;
 * returns the origin's position (0 if new) */
uint64_t tgt_origin_setup(const lm_record *header);
/* the origin's position; flush: make it durable first (what may be acked) */
uint64_t tgt_origin_progress(bool flush);

/* per-table sync positions from lm.sync (0 when none) */
void tgt_load_sync(void);

/* changes; the transaction's commit LSN decides per-table sync skips */
bool tgt_change_wanted(lm_relentry *e, uint64_t commit_lsn);
void tgt_insert(lm_relentry *e, const lm_tuple *t);
void tgt_update(lm_relentry *e, const lm_record *r);
void tgt_delete(lm_relentry *e, const lm_record *r);
void tgt_truncate(lm_relentry **rels, uint32_t n, uint8_t flags);
void tgt_marker(const lm_record *msg);
/* send what is pending (batches, COPY runs) */
void tgt_flush_pending(void);
/* commit the open target transaction, moving the origin to end_lsn */
void tgt_commit(uint64_t end_lsn, int64_t commit_ts);
void tgt_rollback(void);
bool tgt_in_xact(void);
/* open the target transaction if none is (a source transaction with no
 * change still moves the origin) */
void tgt_touch(void);
/* leave pipeline mode with nothing pending (for COPY and plain queries) */
void tgt_leave_pipeline(void);
void tgt_set_encoding(const char *enc);
/* run a statement outside a group and wait (pipeline-safe) */
PGresult *tgt_query(const char *sql, int nparams, const char *const *params);
/* called before exiting because the target lacks a table or column the
 * stream needs, with the target transaction still usable */
extern void (*tgt_mismatch_hook)(void);
/* free a table's target metadata (relcache callback) */
void tgt_free_tabinfo(void *p);
/* stats */
extern uint64_t st_rows_copy, st_rows_insert, st_rows_update, st_rows_delete, st_stmts;

/* bulk table data from lm-snapshot --output */
void bulk_begin(const lm_record *r);
void bulk_data(const lm_record *r);
void bulk_end(const lm_record *r);
void bulk_archive(const lm_record *r);
void bulk_finish(void);
bool bulk_active(void);

#endif
