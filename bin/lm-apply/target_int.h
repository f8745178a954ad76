/* lm-apply's target side inside: the session (struct apply_target) and
 * what its files share. apply.h is the interface the rest of lm-apply
 * uses; this header is for pipeline.c, tabinfo.c, batch.c, single.c and
 * target.c only.
 *
 * The target side, file by file:
 *   pipeline.c  queries in flight in pipeline mode: send, consume, sync
 *   tabinfo.c   what the target says of a table; prepared statements
 *   batch.c     changes pending: runs of inserts (COPY), batched UPDATE
 *               and DELETE, and their flush
 *   single.c    single-row UPDATE and DELETE statements
 *   target.c    connection, origin, session; the per-change entry points */
#ifndef LM_TARGET_INT_H
#define LM_TARGET_INT_H

#include "apply.h"
#include "buf.h"
#include "log.h"

/* a description of each query in flight, for the error that fails it */
#define DESC_LEN 120

/* a statement prepared on the session */
typedef struct stmt {
    char *key;               /* operation and column set */
    char name[16];
} stmt;

/* A table as the target has it (the relcache entry's user pointer). */
typedef struct tabinfo {
    apply_target *t;         /* the session its statements are prepared in */
    unsigned refs;           /* the relcache entries that share it */
    lm_relation shape;       /* their definition (tab_info) */
    uint32_t natts;
    char **colq;             /* quoted column names, in stream order */
    char **coltype;          /* target types, for casts from text */
    bool *col_eq;            /* the type has an equality operator */
    bool *col_always;        /* an identity column GENERATED ALWAYS */
    bool any_always;         /* inserts say OVERRIDING SYSTEM VALUE */
    char *extra_cols;        /* ", c1, c2": target columns the stream lacks
                              * that are not generated ("" if none) */
    char *extra_sel;         /* ", lm_moved.c1, lm_moved.c2" */
    uint32_t *key;           /* stream columns that identify a row */
    uint32_t nkey;
    bool by_ctid;            /* no usable key: REPLICA IDENTITY FULL without one */
    bool other_unique;       /* unique indexes besides the key: no batched updates */
    bool routed;             /* partitioned (or a hypertable) on the target: rows live
                              * in its children, so no ONLY (a target schema the DBA
                              * prepared, lm-snapshot --target-schema=existing) */
    bool hypertable;         /* a TimescaleDB hypertable on the target (routed too):
                              * its statements run generic plans (tab_send) */
    bool warned_scan;
    uint64_t sync_lsn;
    stmt *stmts;
    size_t nstmts;
} tabinfo;

/* a table's row of lm.sync */
typedef struct syncpos {
    char *nsp, *rel;
    uint64_t lsn;
} syncpos;

enum pend_kind { PEND_NONE, PEND_INSERT, PEND_UPDATE, PEND_DELETE };

/* changes of one kind to one table, not sent yet (batch.c) */
typedef struct pending {
    enum pend_kind kind;
    lm_relentry *rel;
    unsigned generation;
    char *colmask;           /* update: which columns are set */
    uint64_t rows;
    lm_buf rowbuf;           /* insert: rows as (kind, u32 len, bytes) */
    lm_buf *arrays;          /* update/delete: one text[] literal per parameter */
    uint32_t narrays;
    uint64_t *keyhash;       /* open addressing set of key hashes */
    size_t keycap;
    bool copying;            /* insert: a COPY is open; rows stream into it */
    lm_buf copybuf;          /* COPY text not sent yet */
} pending;

/* The target session: the connection, its open transaction, the queries
 * in flight in pipeline mode, the changes pending, and what is known of
 * the target's tables. lm-apply has one; every tgt_ function takes it. */
struct apply_target {
    PGconn *conn;
    const char *conninfo;    /* for pg_restore (bulk.c) */
    apply_limits lim;
    const char *origin;      /* the replication origin, once set up */
    void (*mismatch_hook)(void *arg);
    void *mismatch_arg;
    apply_stats st;
    bool xact_open;
    bool generic_plans;      /* plan_cache_mode is force_generic_plan in this
                              * transaction (tab_send) */
    char *encoding;          /* client_encoding of the session (NULL: the default) */
    struct {
        bool on;             /* in pipeline mode */
        char (*descs)[DESC_LEN];  /* what each pending query is, for errors */
        size_t head, len, cap;
        size_t syncs;        /* syncs sent and not yet consumed */
        bool got;            /* the head query has given its result */
        bool capture_next;   /* keep the result of the query marked so */
        PGresult *captured;
        size_t sends;        /* since the last consume */
    } pl;
    unsigned stmt_counter;   /* names prepared statements */
    syncpos *syncs;          /* lm.sync: per-table sync positions */
    size_t nsyncs;
    char (*unused)[16];      /* statements of redefined tables, to deallocate
                              * before the next prepare */
    size_t n_unused, cap_unused;
    tabinfo **tabs;          /* every tabinfo made whole, to share (tab_info) */
    size_t ntabs, cap_tabs;
    pending pend;
};

/* pipeline.c: every send enters pipeline mode and counts a statement; a
 * query that fails exits (pl_fail) with the target transaction rolled back */
void pl_send_sql(apply_target *t, const char *sql, int n, const char *const *vals,
                 const char *desc);
void pl_send_prepared(apply_target *t, const char *name, int n, const char *const *vals,
                      const char *desc);
void pl_prepare(apply_target *t, const char *name, const char *sql, int nparams);
/* sync and wait for everything sent so far */
void pl_sync_wait(apply_target *t);
/* sync, then leave pipeline mode (for COPY and plain queries) */
void pl_exit(apply_target *t);
/* report a failed query (what: the query, for the message) and exit */
void pl_fail(apply_target *t, PGresult *res, const char *what) __attribute__((noreturn));

/* tabinfo.c: the table's metadata, queried once per definition (a missing
 * table or column exits through the mismatch hook) */
tabinfo *tab_info(apply_target *t, lm_relentry *e);
/* the name of the statement prepared for key, or NULL */
const char *tab_stmt(const tabinfo *ti, const char *key);
/* prepare (once) a statement for this table and key; returns its name */
void tab_send(apply_target *t, const tabinfo *ti, const char *name, int n,
              const char *const *vals, const char *desc);
const char *tab_prepared(apply_target *t, tabinfo *ti, const char *key, const char *sql,
                         int nparams);
/* "c1, c2": the columns, those set in mask ('1') if mask; malloc'd */
char *tab_columns(const tabinfo *ti, const char *mask);

/* batch.c: add a change to the pending batch (flushing the one pending
 * when it is of another kind, table or column set, or full) */
void batch_insert(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *tup);
/* mask: the columns set (taken over); nset: how many */
void batch_update(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *ot,
                  const lm_tuple *nt, char *mask, uint32_t nset);
void batch_delete(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *ot);
/* forget what is pending (the transaction is rolled back) */
void batch_discard(apply_target *t);

/* single.c: one statement for one row (flush what is pending first).
 * skip: identity columns GENERATED ALWAYS to leave out (NULL: none) */
void single_update(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *ot,
                   const lm_tuple *nt, const char *skip);
void single_delete(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *ot);
/* an update that gives an identity column GENERATED ALWAYS a new value */
void single_move(apply_target *t, lm_relentry *e, tabinfo *ti, const lm_tuple *ot,
                 const lm_tuple *nt);

#endif
