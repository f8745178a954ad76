/* lm-apply: applies an lm change stream to the target exactly once.
 *
 * Source transactions are grouped into target transactions; each target
 * transaction moves the replication origin to the end LSN of the last
 * source commit it holds, atomically with the data. Every transaction at or
 * below the origin's position is skipped, whenever it comes. A group's
 * complete source transactions are kept (as raw records, bounded) until the
 * group commits, so that a transaction the stream abandons (producer
 * reconnected, corrupt input) can be rolled back alone.
 *
 * Why this file is over 800 lines: it is the record loop and its state (the
 * source transaction being read, the group and its kept records, the input
 * file or spool segment, positions applied and acknowledged), which every
 * part of it reads and changes; apart, they would share that state through
 * globals. The target session (target.c, pipeline.c, tabinfo.c, batch.c,
 * single.c), the bulk loader (bulk.c), --status (status.c) and the spool
 * follower (common/spoolread.c) live on their own. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "exitcodes.h"
#include "json.h"
#include "log.h"
#include "lsn.h"
#include "opts.h"
#include "pgconn.h"
#include "privdir.h"
#include "progress.h"
#include "sig.h"
#include "spool.h"
#include "state.h"
#include "stream.h"

static const char *target_conninfo = "";
static const char *opt_origin;
static const char *opt_spool;
static bool opt_follow;
static const char *opt_ack;
static bool opt_prune;
static bool opt_changes_only;
static lm_progress_when opt_progress = LM_PROGRESS_AUTO;
static lm_progress prog;
static bool opt_status;
static bool opt_json;
static const char *const *files;
static int nfiles;

/* the limits (options), and the target session main opens with them; the
 * record loop and the reader's wait hook reach it here, as rd and rels */
static apply_limits lim = APPLY_LIMITS_DEFAULT;
static apply_target *tgt;
static lm_reader *rd;
static lm_relcache *rels;
static int cur_fd = -1;
static int file_idx;
static spool_follower *follower; /* spool: what is read of it (the protocol: spool.h) */
static char *cur_path;

static bool origin_ready;
static uint64_t applied;       /* origin position: everything at or below is applied */
static uint64_t last_position; /* last keepalive position seen between transactions */
static uint64_t last_acked;
static int ack_fd = -1;
static int64_t last_ack_us, last_prune_us, started_us;
static uint64_t seen_lsn;      /* the furthest source position read: commits and keepalives */
static int64_t applied_ts;     /* source commit time of the last group applied */

/* the source transaction being read */
static bool in_src;
static bool src_skip;
static uint64_t src_commit_lsn;
static bool src_marker;
static bool src_ddl;            /* the transaction being read holds DDL */

/* the group: source transactions in the open target transaction */
static struct {
    uint64_t ntxn;
    uint64_t changes;
    uint64_t bytes;
    int64_t started_us;
    uint64_t end_lsn;
    int64_t commit_ts;
} grp;
static lm_buf rbuf;            /* raw records of the group, for replay */
static size_t rbuf_mark;       /* where the transaction being read starts */
static bool rbuf_on = true;    /* false: the transaction being read is not kept */
static bool replaying;
static bool done;              /* an end record that stops the stream */
static int end_reason;
/* an end record read from a file or pipe: the stream ends there unless the
 * next segment of a concatenation follows (its header) */
static bool end_pending;
static uint64_t n_xacts, n_skipped;

static void usage(void)
{
    printf("%s applies an lm change stream to the target, exactly once.\n\n"
           "Usage:\n  %s --target CONN [OPTION]... [FILE]...\n"
           "  %s --target CONN --spool DIR [--follow] [OPTION]...\n"
           "  %s --target CONN --origin NAME --status [--json]\n\n"
           "Input is standard input, the FILEs in order, or a spool directory of\n"
           "lm-decode; plain or zstd-compressed alike.\n\n"
           "Options:\n"
           "  -t, --target=CONN        target connection string or URI\n"
           "      --origin=NAME        replication origin (default: the stream's slot name)\n"
           "      --spool=DIR          read the segments of DIR in LSN order\n"
           "  -f, --follow             with --spool: wait for new segments; stop at an end\n"
           "                           record whose reason is endpos or the cutover marker\n"
           "      --ack=FILE           write the durable position (LSN lines) to FILE or FIFO\n"
           "                           for lm-decode --ack\n"
           "      --prune              with --spool: delete segments wholly applied and durable\n"
           "      --changes-only       refuse bulk records (schema archive, table data): for\n"
           "                           input that must hold captured changes only (--spool: always)\n"
           "      --ddl-done=SEQ       the DDL record SEQ was made by hand on the target: apply\n"
           "                           its transaction without running it (repeatable)\n"
           "      --status             print the origin's position and exit\n"
           "      --json               with --status: JSON output\n"
           "      --batch-rows=N       rows per batched UPDATE/DELETE (default 2000)\n"
           "      --group-changes=N    source changes per target transaction (default 50000)\n"
           "      --group-time=SECS    age of a target transaction before it commits at the\n"
           "                           next source commit (default 0.5)\n"
           "      --progress[=WHEN]    show what is applied and the lag on stderr: auto (the\n"
           "                           default: live on a terminal), always (plain lines\n"
           "                           once a second elsewhere) or never\n"
           "  -v, --verbose            more messages (repeat for debug)\n"
           "  -V, --version            output version information, then exit\n"
           "  -?, --help               show this help, then exit\n\n"
           LM_EXIT_HELP_APPLY,
           lm_progname(), lm_progname(), lm_progname(), lm_progname());
}

/* ------------------------------------------------------------- ack, prune */

static void open_ack(void)
{
    struct stat sb;
    if (!opt_ack)
        return;
    if (stat(opt_ack, &sb) == 0 && S_ISFIFO(sb.st_mode))
        ack_fd = open(opt_ack, O_RDWR | O_CLOEXEC);
    else
        ack_fd = open(opt_ack, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (ack_fd < 0)
        lm_fatal(LM_EXIT_IO, "could not open ack file \"%s\": %s", opt_ack, strerror(errno));
}

/* The durable position: with synchronous_commit off a returned COMMIT is
 * not durable yet, so ask the origin with flush. A keepalive position is
 * acknowledged once everything before it is durable. */
static uint64_t durable_position(void)
{
    uint64_t d;
    if (!origin_ready)
        return 0;
    d = tgt_origin_progress(tgt, true);
    if (d >= applied && !in_src && !tgt_in_xact(tgt) && last_position > d)
        d = last_position;
    return d;
}

/* A quiet source sends keepalive positions only: carry the origin (and
 * lm.progress) to them when idle, so lag reads 0 once everything is applied
 * and a restart starts there. At most once a second. */
static void advance_to_position(void)
{
    static int64_t last_us;
    int64_t now = lm_monotonic_us();

    if (!origin_ready || in_src || tgt_in_xact(tgt) || last_position <= applied ||
        now - last_us < 1000000)
        return;
    last_us = now;
    tgt_touch(tgt);
    tgt_commit(tgt, last_position, lm_now_pgtime());
    applied = last_position;
}

static void acknowledge(bool force)
{
    int64_t now = lm_monotonic_us();
    uint64_t d;

    advance_to_position();

    if (!origin_ready || (ack_fd < 0 && !opt_prune))
        return;
    if (!force && now - last_ack_us < 1000000)
        return;
    if (tgt_in_xact(tgt))
        return;  /* a query between groups only */
    last_ack_us = now;
    d = durable_position();
    if (ack_fd >= 0 && d > last_acked) {
        static bool line_open;   /* a line was cut short: end it first */
        char line[LM_LSN_BUFSZ + 2];
        size_t n = 0, put = 0;
        ssize_t k = 0;
        if (line_open)
            line[n++] = '\n';
        lm_lsn_format(d, line + n);
        n += strlen(line + n);
        line[n++] = '\n';
        while (put < n) {
            k = write(ack_fd, line + put, n - put);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            put += (size_t)k;
        }
        if (put > 0)
            line_open = line[put - 1] != '\n';
        if (put == n)
            last_acked = d;
        else   /* a write that stops short sets no errno: never print "Success" */
            lm_warning("could not write to ack file \"%s\": %s", opt_ack,
                       k < 0 ? strerror(errno) : "short write (file system full?)");
    }
    if (opt_prune && opt_spool && (force || now - last_prune_us > 5000000)) {
        last_prune_us = now;
        spool_prune(opt_spool, d);
    }
}

/* --progress: what is applied, and how far behind what is read it is: in
 * bytes of the source's WAL, and in seconds since the source committed
 * the last transaction applied (0 once nothing read waits). */
static void progress(bool force)
{
    int64_t now = lm_monotonic_us();
    double secs, lag_secs = 0;
    char a[LM_LSN_BUFSZ], b[LM_LSN_BUFSZ], bytes[16], lag[16];
    const apply_stats *st = tgt_stats(tgt);
    uint64_t rows = st->rows_copy + st->rows_insert + st->rows_update + st->rows_delete;
    uint64_t behind = seen_lsn > applied ? seen_lsn - applied : 0;
    char *text;

    if (!lm_progress_due(&prog, force))
        return;
    secs = (double)(now - started_us) / 1e6;
    if (behind && applied_ts)
        lag_secs = (double)(lm_now_pgtime() - applied_ts) / 1e6;
    text = lm_psprintf("%" PRIu64 " transactions applied, %" PRIu64 " skipped (already applied), %" PRIu64 " rows "
                       "(%" PRIu64 " copied, %" PRIu64 " inserted, %" PRIu64 " updated, %" PRIu64 " deleted), "
                       "%.0f rows/s, applied %s%s\n"
                       "lag %s (%s read), %s behind the source's commits",
                       n_xacts, n_skipped, rows, st->rows_copy, st->rows_insert, st->rows_update,
                       st->rows_delete, secs > 0 ? (double)rows / secs : 0.0, lm_lsn_format(applied, a),
                       force ? " (done)" : "", lm_progress_bytes(bytes, sizeof bytes, (double)behind),
                       lm_lsn_format(seen_lsn > applied ? seen_lsn : applied, b),
                       behind && applied_ts ? lm_progress_secs(lag, sizeof lag, lag_secs < 0 ? 0 : lag_secs) : "0s");
    lm_progress_show(&prog, text);
    free(text);
}

/* ------------------------------------------------------------- the group */

/* Definitions of relations as they were when the open group began, for
 * those redefined since: a replay of the group's kept records (split,
 * abandon) starts from them, and the kept relation records bring the
 * later ones back in order. */
static lm_relation *grp_defs;
static size_t n_grp_defs;

static void grp_defs_clear(void)
{
    for (size_t i = 0; i < n_grp_defs; i++)
        lm_relation_free(&grp_defs[i]);
    free(grp_defs);
    grp_defs = NULL;
    n_grp_defs = 0;
}

static void grp_defs_keep(const lm_relation *rel)
{
    for (size_t i = 0; i < n_grp_defs; i++)
        if (grp_defs[i].relid == rel->relid)
            return;   /* the first one, from before the group, counts */
    grp_defs = lm_realloc(grp_defs, (n_grp_defs + 1) * sizeof *grp_defs);
    grp_defs[n_grp_defs++] = lm_relation_dup(rel);
}

/* before replaying the group from its start */
static void grp_defs_restore(void)
{
    for (size_t i = 0; i < n_grp_defs; i++)
        lm_relcache_put(rels, &grp_defs[i]);
}

static void group_reset(void)
{
    memset(&grp, 0, sizeof grp);
    rbuf.len = 0;
    rbuf_mark = 0;
    rbuf_on = true;
}

static void commit_group(void)
{
    if (tgt_in_xact(tgt)) {
        tgt_commit(tgt, grp.end_lsn, grp.commit_ts);
        if (grp.end_lsn > applied)
            applied = grp.end_lsn;
        applied_ts = grp.commit_ts;
    }
    group_reset();
    if (!replaying)
        grp_defs_clear();
}

static void process(const lm_record *r);

/* Feed kept raw records through process() again. */
static void replay(const uint8_t *p, size_t len)
{
    lm_arena a = {0};
    lm_cursor c;
    bool saved = replaying;

    replaying = true;
    lm_cursor_init(&c, p, len);
    while (lm_cursor_left(&c) > 0) {
        uint8_t type;
        uint64_t blen;
        const uint8_t *body;
        lm_record rec;
        if (!lm_cur_u8(&c, &type) || !lm_cur_varint(&c, &blen) || !lm_cur_raw(&c, (size_t)blen, &body) ||
            !lm_record_decode(type, body, (size_t)blen, &rec, &a))
            lm_fatal(LM_EXIT_FAILURE, "internal error: a kept record does not decode");
        process(&rec);
        lm_arena_reset(&a);
    }
    lm_arena_free(&a);
    replaying = saved;
}

/* The source transaction being read will not complete here: undo it alone. */
static void abandon(const char *why)
{
    uint8_t *keep = NULL;
    size_t keep_len = rbuf_mark;
    uint64_t ntxn = grp.ntxn;
    uint64_t end_lsn = grp.end_lsn;
    int64_t ts = grp.commit_ts;

    lm_info("dropping the unfinished source transaction at %X/%X (%s)",
            (unsigned)(src_commit_lsn >> 32), (unsigned)src_commit_lsn, why);
    if (ntxn > 0 && !rbuf_on && rbuf_mark == 0)
        lm_fatal(LM_EXIT_FAILURE, "internal error: complete transactions of the group were not kept");
    if (keep_len) {
        keep = lm_malloc(keep_len);
        memcpy(keep, rbuf.data, keep_len);
    }
    tgt_rollback(tgt);
    group_reset();
    in_src = false;
    src_skip = false;
    if (ntxn > 0 && keep_len) {
        grp_defs_restore();
        replay(keep, keep_len);
        grp.end_lsn = end_lsn;
        grp.commit_ts = ts;
        commit_group();
    }
    grp_defs_clear();
    free(keep);
}

/* The target lacks a table or column the transaction being read needs:
 * commit the complete transactions of the group before it, so that a
 * restart after the fix resumes exactly at the failing one. */
static void keep_complete_before_exit(void *arg)
{
    if (!replaying && in_src && grp.ntxn > 0 && tgt_in_xact(tgt))
        abandon("the target lacks what it needs");
}

/* The transaction being read has outgrown what is kept: commit the
 * complete ones before it, and go on with it as the group's first. */
static void split_group(void)
{
    uint8_t *tail;
    size_t tail_len = rbuf.len - rbuf_mark;
    uint8_t *head = lm_malloc(rbuf_mark + 1);
    size_t head_len = rbuf_mark;
    uint64_t end_lsn = grp.end_lsn;
    int64_t ts = grp.commit_ts;

    memcpy(head, rbuf.data, head_len);
    tail = lm_malloc(tail_len + 1);
    memcpy(tail, rbuf.data + rbuf_mark, tail_len);
    tgt_rollback(tgt);
    group_reset();
    in_src = false;
    grp_defs_restore();
    if (head_len) {
        replay(head, head_len);
        grp.end_lsn = end_lsn;
        grp.commit_ts = ts;
        commit_group();
    }
    grp_defs_clear();
    replay(tail, tail_len);   /* reopens the transaction: in_src again */
    rbuf_on = false;
    lm_buf_free(&rbuf);
    rbuf_mark = 0;
    free(head);
    free(tail);
}

static bool input_idle(void)
{
    struct pollfd pfd;
    if (lm_reader_buffered(rd))
        return false;
    if (opt_spool)
        return false;   /* files always poll readable; the wait hook handles idleness */
    pfd.fd = cur_fd;
    pfd.events = POLLIN;
    return poll(&pfd, 1, 0) == 0;
}

static void maybe_commit(void)
{
    bool full = grp.changes >= lim.group_changes || grp.bytes >= lim.group_bytes ||
                lm_monotonic_us() - grp.started_us >= lim.group_time_us;
    if (src_marker || full || input_idle())
        commit_group();
}

static void ensure_origin(void)
{
    const lm_record *h;
    if (origin_ready)
        return;
    h = lm_reader_header(rd);
    if (!h)
        lm_fatal(LM_EXIT_CORRUPT, "changes before a stream header");
    if (!opt_origin) {
        if (!*h->u.header.slot)
            lm_fatal(LM_EXIT_USAGE, "the stream names no slot: give --origin");
        opt_origin = h->u.header.slot;
        opt_origin = lm_strdup(opt_origin);
    }
    applied = tgt_origin_setup(tgt, opt_origin, h);
    tgt_load_sync(tgt);
    origin_ready = true;
    {
        char a[LM_LSN_BUFSZ];
        lm_info("origin \"%s\" is at %s", opt_origin, applied ? lm_lsn_format(applied, a) : "the start");
    }
}

static lm_relentry *relation(uint32_t relid)
{
    lm_relentry *e = lm_relcache_get(rels, relid);
    if (!e)
        lm_fatal(LM_EXIT_CORRUPT, "%s: change to relation %u before its relation record (offset %" PRIu64 ")",
                 lm_reader_name(rd), relid, lm_reader_record_offset(rd));
    return e;
}

static void keep_raw(const lm_record *r)
{
    const uint8_t *raw;
    size_t len;
    if (replaying || !rbuf_on)
        return;
    raw = lm_reader_record_raw(rd, &len);
    if (in_src && rbuf.len + len - rbuf_mark > lim.group_bytes) {
        /* r is not kept: the caller applies it once this returns, so the
         * replay of the transaction so far must not hold it too */
        if (grp.ntxn == 0) {
            rbuf_on = false;   /* first of the group: a plain rollback undoes it */
            lm_buf_free(&rbuf); /* and give the memory back */
        } else
            split_group();
        return;
    }
    lm_buf_put(&rbuf, raw, len);
    grp.bytes += len;
}

/* spool: whether a segment after the one being read exists */
static bool later_segment(void)
{
    return spool_follower_more(follower, applied, grp.end_lsn);
}

/* Bulk records (lm-snapshot --output) carry a pg_dump archive that
 * pg_restore runs and COPY data for any table.  A change stream never
 * holds them: in a spool or after an lm-decode header one is a planted or
 * foreign segment, and nothing of it may run. */
static void refuse_bulk_in_changes(const lm_record *r)
{
    const lm_record *h = lm_reader_header(rd);
    bool from_decode = h && strncmp(h->u.header.producer, "lm-decode", 9) == 0;

    if (!opt_spool && !opt_changes_only && !from_decode)
        return;
    lm_error("%s: %s record at offset %" PRIu64 " in a change stream", lm_reader_name(rd),
             lm_rectype_name(r->type), lm_reader_record_offset(rd));
    lm_detail("%s never holds bulk records (schema archive, table data); this input is not what "
              "lm-decode wrote.", opt_spool ? "A spool" : from_decode ? "A stream of lm-decode"
                                                                    : "Input under --changes-only");
    lm_hint("Remove the segment or file and find out who put it there.");
    exit(LM_EXIT_CORRUPT);
}

static void process(const lm_record *r)
{
    switch (r->type) {
    case LM_REC_HEADER:
        if (end_pending) {
            lm_info("%s: the stream ended (%s) but another segment follows; going on",
                    lm_reader_name(rd), lm_end_reason_name((uint8_t)end_reason));
            end_pending = false;
        }
        /* pair the origin with a change stream's source now: a foreign
         * stream is refused even when it holds no transaction, and the lm
         * schema exists from the first run on. Bulk streams (lm-snapshot)
         * leave the origin alone until a transaction comes, so that one can
         * be loaded while another lm-apply holds the origin. */
        if (!origin_ready && (opt_origin || *r->u.header.slot) &&
            strncmp(r->u.header.producer, "lm-decode", 9) == 0)
            ensure_origin();
        /* segments begin between source transactions */
        if (!in_src)
            commit_group();
        tgt_set_encoding(tgt, r->u.header.encoding);
        break;
    case LM_REC_RELATION: {
        lm_relentry *old = lm_relcache_get(rels, r->u.rel.relid);
        /* what is pending was built for the old definition */
        tgt_flush_pending(tgt);
        if (!replaying && rbuf_on && (in_src || grp.ntxn > 0)) {
            /* a replay of the group must see each record with the
             * definition it was made with */
            if (old)
                grp_defs_keep(&old->rel);
            keep_raw(r);
        }
        lm_relcache_put(rels, &r->u.rel);
        break;
    }
    case LM_REC_TYPE:
    case LM_REC_ORIGIN:
        break;
    case LM_REC_BEGIN:
        if (in_src && !replaying)
            abandon("a new transaction began before it committed");
        ensure_origin();
        in_src = true;
        src_marker = false;
        src_ddl = false;
        src_commit_lsn = r->u.begin.final_lsn;
        if (src_commit_lsn > seen_lsn)
            seen_lsn = src_commit_lsn;
        src_skip = r->u.begin.final_lsn < applied ||
                   (grp.ntxn > 0 && r->u.begin.final_lsn < grp.end_lsn);
        if (src_skip) {
            n_skipped++;
            break;
        }
        if (grp.ntxn == 0 && !tgt_in_xact(tgt))
            grp.started_us = lm_monotonic_us();
        if (!replaying) {
            rbuf_mark = rbuf.len;
            keep_raw(r);
        }
        break;
    case LM_REC_COMMIT:
        if (!in_src)
            lm_fatal(LM_EXIT_CORRUPT, "%s: commit without a transaction at offset %" PRIu64,
                     lm_reader_name(rd), lm_reader_record_offset(rd));
        in_src = false;
        if (src_skip)
            break;
        keep_raw(r);
        tgt_touch(tgt);
        grp.ntxn++;
        grp.end_lsn = r->u.commit.end_lsn;
        grp.commit_ts = r->u.commit.commit_ts;
        rbuf_mark = rbuf.len;
        if (!rbuf_on && !replaying) {
            /* a big transaction was not kept: nothing before it to keep either */
            commit_group();
        }
        n_xacts++;
        if (src_ddl && !replaying) {
            /* alone: what it made (an enum value) is usable after it */
            commit_group();
            break;
        }
        if (!replaying)
            maybe_commit();
        break;
    case LM_REC_INSERT:
    case LM_REC_UPDATE:
    case LM_REC_DELETE: {
        uint32_t relid = r->type == LM_REC_INSERT ? r->u.insert.relid
                         : r->type == LM_REC_UPDATE ? r->u.update.relid : r->u.del.relid;
        lm_relentry *e;
        if (!in_src)
            lm_fatal(LM_EXIT_CORRUPT, "%s: %s outside a transaction at offset %" PRIu64,
                     lm_reader_name(rd), lm_rectype_name(r->type), lm_reader_record_offset(rd));
        if (src_skip)
            break;
        keep_raw(r);
        e = relation(relid);
        if (!tgt_change_wanted(tgt, e, src_commit_lsn))
            break;
        if (r->type == LM_REC_INSERT)
            tgt_insert(tgt, e, &r->u.insert.newtup);
        else if (r->type == LM_REC_UPDATE)
            tgt_update(tgt, e, r);
        else
            tgt_delete(tgt, e, r);
        grp.changes++;
        break;
    }
    case LM_REC_TRUNCATE: {
        lm_relentry **list;
        uint32_t n = 0;
        if (!in_src || src_skip)
            break;
        keep_raw(r);
        list = lm_malloc(sizeof *list * (r->u.truncate.nrels + 1));
        for (uint32_t i = 0; i < r->u.truncate.nrels; i++) {
            lm_relentry *e = relation(r->u.truncate.relids[i]);
            if (tgt_change_wanted(tgt, e, src_commit_lsn))
                list[n++] = e;
        }
        tgt_truncate(tgt, list, n, r->u.truncate.flags);
        grp.changes++;
        free(list);
        break;
    }
    case LM_REC_MESSAGE:
        if (!(r->u.message.flags & 1) || !in_src || src_skip)
            break;
        keep_raw(r);
        if (strcmp(r->u.message.prefix, LM_MARKER_PREFIX) == 0) {
            tgt_marker(tgt, r);
            src_marker = true;
        }
        break;
    case LM_REC_DDL:
        if (!in_src)
            lm_fatal(LM_EXIT_CORRUPT, "%s: ddl outside a transaction at offset %" PRIu64,
                     lm_reader_name(rd), lm_reader_record_offset(rd));
        if (src_skip)
            break;
        /* the group's complete transactions first, committed: a DDL that
         * stops lm-apply leaves the origin right before its transaction */
        if (!replaying && grp.ntxn > 0) {
            if (!rbuf_on)
                lm_fatal(LM_EXIT_FAILURE, "internal error: complete transactions of the group were not kept");
            split_group();
        }
        keep_raw(r);
        tgt_ddl(tgt, rels, r, src_commit_lsn);
        src_ddl = true;
        grp.changes++;
        break;
    case LM_REC_POSITION:
        if (!in_src && r->u.position.lsn > last_position)
            last_position = r->u.position.lsn;
        if (r->u.position.lsn > seen_lsn)
            seen_lsn = r->u.position.lsn;
        break;
    case LM_REC_END:
        if (r->u.end.reason == LM_END_SHUTDOWN) {
            /* the producer stopped; a transaction it did not finish is dropped,
             * and more may follow (a restarted producer) */
            if (in_src)
                abandon("the producer stopped inside it");
            commit_group();
        } else {
            if (in_src)
                abandon("the stream ended inside it");
            commit_group();
            if (opt_spool ? later_segment() : file_idx < nfiles) {
                /* lm-decode stopped there and was started again: its next
                 * run's segments (or the next FILE) continue the stream */
                lm_info("%s: the stream ended (%s) but more input follows; going on",
                        lm_reader_name(rd), lm_end_reason_name(r->u.end.reason));
                break;
            }
            end_reason = r->u.end.reason;
            if (!opt_spool) {
                /* concatenated segments (cat seg-* | lm-apply) go on after
                 * an end record: read on to the end of the input.  What is
                 * applied is acknowledged now, for a producer that waits */
                end_pending = true;
                acknowledge(true);
                break;
            }
            done = true;
        }
        break;
    case LM_REC_TRAILER:
        if (opt_spool)
            spool_follower_trailer(follower, r->u.trailer.last_lsn);
        break;
    case LM_REC_ARCHIVE:
        refuse_bulk_in_changes(r);
        commit_group();
        bulk_archive(tgt, r);
        break;
    case LM_REC_COPY_BEGIN:
        refuse_bulk_in_changes(r);
        commit_group();
        bulk_begin(tgt, r);
        break;
    case LM_REC_COPY_DATA:
        refuse_bulk_in_changes(r);
        bulk_data(tgt, r);
        break;
    case LM_REC_COPY_END:
        refuse_bulk_in_changes(r);
        bulk_end(tgt, r);
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------- input */

static int open_file(const char *path)
{
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        lm_fatal(LM_EXIT_IO, "could not open \"%s\": %s", path, strerror(errno));
    return fd;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* When a reader waits for more input: commit what is complete first, so
 * a live stream is applied with low latency. */
static void idle_work(void)
{
    if (!in_src)
        commit_group();
    acknowledge(false);
    progress(false);
}

/* spool: at the end of the file being read (an lm_reader_wait_fn). 1:
 * read again, 0: the file is finished, -1: stop; a segment changed under
 * the reader (spool.h, rule 8) stops with LM_SPOOL_RESTART. */
static int spool_wait(lm_reader *r, void *arg)
{
    int ret;

    (void)arg;
    if (lm_interrupted) {
        lm_reader_set_error(r, LM_EXIT_OK, "interrupted");
        return -1;
    }
    ret = spool_follower_check(follower, r);
    if (ret != 1)
        return ret;
    if (!opt_follow)
        return 0;
    idle_work();
    sleep_ms(50);
    return 1;
}

static bool open_next_input(void)
{
    if (opt_spool) {
        int fd;
        if (!follower)
            follower = spool_follower_new(opt_spool);
        while ((fd = spool_follower_next(follower, applied, grp.end_lsn)) < 0) {
            if (!opt_follow || lm_interrupted)
                return false;
            idle_work();
            sleep_ms(100);
        }
        cur_fd = fd;   /* the follower's: it closes it */
        free(cur_path);
        cur_path = lm_strdup(spool_follower_path(follower));
    } else {
        if (file_idx >= nfiles)
            return false;
        if (cur_fd > 0)
            close(cur_fd);
        free(cur_path);
        cur_path = lm_strdup(files[file_idx]);
        cur_fd = open_file(cur_path);
        file_idx++;
    }
    if (cur_fd == 0) {
        /* a deeper pipe lets the producer run ahead while the target works */
        (void)fcntl(0, F_SETPIPE_SZ, 1 << 20);
    }
    if (!rd) {
        rd = lm_reader_new(cur_fd, strcmp(cur_path, "-") == 0 ? "standard input" : cur_path);
        if (opt_spool)
            lm_reader_set_wait(rd, spool_wait, NULL);
    } else
        lm_reader_reset_input(rd, cur_fd, strcmp(cur_path, "-") == 0 ? "standard input" : cur_path);
    return true;
}

/* spool: the partial being read is no longer a partial of that name (it
 * was finished, or recovered, or replaced) */
static bool partial_replaced(void)
{
    return opt_spool && spool_follower_replaced(follower);
}

/* Start reading the spool again from the beginning (a segment changed under
 * the reader): everything applied is skipped by the origin. */
static void restart_spool(const char *why)
{
    lm_warning("%s; reading the spool again from the applied position", why);
    if (in_src)
        abandon("the segment holding it changed");
    commit_group();
    spool_follower_restart(follower);
    cur_fd = -1;
    free(cur_path);
    cur_path = NULL;
    lm_relcache_free(rels);
    rels = lm_relcache_new(tgt_free_tabinfo);
}

static int run(void)
{
    lm_record rec;
    uint8_t last_type = 0;

    if (!open_next_input())
        return 0;
    for (;;) {
        int rc;
        if (lm_interrupted)
            break;
        rc = lm_reader_next(rd, &rec);
        if (rc > 0) {
            last_type = rec.type;
            process(&rec);
            if (done)
                break;
            if (opt_spool && (rec.type == LM_REC_TRAILER || (rec.type == LM_REC_END && !spool_follower_partial(follower)))) {
                /* this segment ends; the stream goes on in the next (a
                 * file or pipe of concatenated segments goes on in itself:
                 * the next segment's header follows the trailer) */
                if (!open_next_input())
                    break;
            }
            acknowledge(false);
            progress(false);
            continue;
        }
        if (rc == 0) {
            /* end of this input. A finished segment ends with its trailer
             * (or an end record), where reading has moved on already: one
             * that just stops lost its tail, which must not be skipped */
            if (opt_spool && !spool_follower_partial(follower) && !lm_interrupted) {
                if (in_src)
                    abandon("its segment is cut short");
                commit_group();
                lm_error("%s: the segment ends at byte %" PRIu64 " without its trailer (truncated?)",
                         cur_path, lm_reader_file_offset(rd));
                lm_detail("every transaction before that point is applied (up to %X/%X); none after it",
                          (unsigned)(applied >> 32), (unsigned)applied);
                acknowledge(true);
                return LM_EXIT_TRUNCATED;
            }
            if (!open_next_input())
                break;
            continue;
        }
        /* an error in the input; in a partial that a restarted lm-decode
         * cut back and finished while it was read, the reader may have
         * been past the cut: read the spool again from the applied
         * position (the segment, now finished, is read anew) */
        if (lm_reader_errcode(rd) == LM_EXIT_OK && lm_interrupted)
            break;
        if (lm_reader_errcode(rd) == LM_SPOOL_RESTART || partial_replaced()) {
            restart_spool(lm_reader_error(rd));
            lm_reader_free(rd);
            rd = NULL;
            if (!open_next_input())
                break;
            continue;
        }
        if (opt_spool && spool_follower_partial(follower) && !opt_follow &&
            lm_reader_errcode(rd) == LM_EXIT_TRUNCATED) {
            /* the growing segment's unfinished tail */
            last_type = LM_REC_TRAILER;
            break;
        }
        /* corrupt or truncated: keep what is complete, drop the rest */
        if (in_src)
            abandon("the input is damaged after it");
        commit_group();
        lm_error("%s", lm_reader_error(rd));
        lm_detail("every transaction before that point is applied (up to %X/%X); none after it",
                  (unsigned)(applied >> 32), (unsigned)applied);
        acknowledge(true);
        return lm_reader_errcode(rd);
    }
    if (end_pending && !lm_interrupted)
        done = true;
    if (lm_interrupted) {
        if (in_src)
            abandon("interrupted");
        commit_group();
        acknowledge(true);
        return 0;
    }
    if (in_src)
        abandon("the input ended inside it");
    commit_group();
    bulk_finish(tgt);
    acknowledge(true);
    if (!done && !opt_spool && last_type != LM_REC_END && last_type != LM_REC_TRAILER) {
        if (last_type == 0) {
            lm_error("empty stream: no header, no records");
            return LM_EXIT_TRUNCATED;
        }
        lm_error("%s: the stream ends without an end record (truncated?); every complete "
                 "transaction was applied", lm_reader_name(rd));
        return LM_EXIT_TRUNCATED;
    }
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_ORIGIN = LM_OPT_OWN, OPT_SPOOL, OPT_ACK, OPT_PRUNE, OPT_STATUS, OPT_JSON,
           OPT_BATCH_ROWS, OPT_GROUP_CHANGES, OPT_GROUP_TIME, OPT_PROGRESS, OPT_CHANGES_ONLY,
           OPT_DDL_DONE };
    static const struct option longopts[] = {
        {"target", required_argument, NULL, 't'},
        {"origin", required_argument, NULL, OPT_ORIGIN},
        {"spool", required_argument, NULL, OPT_SPOOL},
        {"follow", no_argument, NULL, 'f'},
        {"ack", required_argument, NULL, OPT_ACK},
        {"prune", no_argument, NULL, OPT_PRUNE},
        {"status", no_argument, NULL, OPT_STATUS},
        {"json", no_argument, NULL, OPT_JSON},
        {"batch-rows", required_argument, NULL, OPT_BATCH_ROWS},
        {"group-changes", required_argument, NULL, OPT_GROUP_CHANGES},
        {"group-time", required_argument, NULL, OPT_GROUP_TIME},
        {"progress", optional_argument, NULL, OPT_PROGRESS},
        {"changes-only", no_argument, NULL, OPT_CHANGES_ONLY},
        {"ddl-done", required_argument, NULL, OPT_DDL_DONE},
        {"verbose", no_argument, NULL, 'v'},
        LM_OPTIONS_COMMON,
        {NULL, 0, NULL, 0}};
    int c, verbose = 0, rc;
    bool have_target = false;

    lm_program_start(argc, argv, usage);
    while ((c = getopt_long(argc, argv, "t:fvV", longopts, NULL)) != -1) {
        switch (c) {
        case 't': target_conninfo = optarg; have_target = true; break;
        case OPT_ORIGIN: opt_origin = optarg; break;
        case OPT_SPOOL: opt_spool = optarg; break;
        case 'f': opt_follow = true; break;
        case OPT_ACK: opt_ack = optarg; break;
        case OPT_PRUNE: opt_prune = true; break;
        case OPT_STATUS: opt_status = true; break;
        case OPT_JSON: opt_json = true; break;
        case OPT_BATCH_ROWS:
            lim.batch_rows = (uint64_t)lm_opt_int("--batch-rows", optarg, 1, 1000000);
            break;
        case OPT_GROUP_CHANGES:
            lim.group_changes = (uint64_t)lm_opt_int("--group-changes", optarg, 1, 100000000);
            break;
        case OPT_GROUP_TIME:
            lim.group_time_us = lm_opt_duration_ms("--group-time", optarg, 0, 3600000) * 1000;
            break;
        case OPT_PROGRESS: opt_progress = lm_opt_progress(optarg); break;
        case OPT_CHANGES_ONLY: opt_changes_only = true; break;
        case OPT_DDL_DONE: tgt_ddl_done((uint64_t)lm_opt_int("--ddl-done", optarg, 1, LONG_MAX)); break;
        case 'v': verbose++; break;
        default: lm_program_option(c);
        }
    }
    if (!have_target)
        lm_usage_error("no target given: use --target");
    files = (const char *const *)(argv + optind);
    nfiles = argc - optind;
    if (opt_spool && nfiles > 0)
        lm_usage_error("--spool and FILE arguments cannot be combined");
    if (opt_follow && !opt_spool)
        lm_usage_error("--follow needs --spool");
    if (opt_prune && !opt_spool)
        lm_usage_error("--prune needs --spool");
    if (opt_json && !opt_status)
        lm_usage_error("--json goes with --status");
    if (nfiles == 0 && !opt_spool) {
        static const char *const dash[] = {"-"};
        files = dash;
        nfiles = 1;
    }
    if (verbose)
        lm_log_set_level(verbose > 1 ? LM_LOG_DEBUG : LM_LOG_INFO);
    else
        lm_log_set_level(LM_LOG_WARNING);

    /* what the spool's segments say is applied (and an archive in one
     * would run through pg_restore): nobody else may put one there */
    if (opt_spool && !opt_status)
        lm_require_private_dir(opt_spool, "spool directory");
    tgt = tgt_connect(target_conninfo, &lim);
    if (opt_status)
        return apply_print_status(tgt, opt_origin, opt_json);
    lm_signals_init();
    rels = lm_relcache_new(tgt_free_tabinfo);
    tgt_on_mismatch(tgt, keep_complete_before_exit, NULL);
    started_us = lm_monotonic_us();
    lm_progress_init(&prog, opt_progress, stderr);
    open_ack();
    rc = run();
    progress(true);
    if (rc == 0 && done)
        lm_info("the stream ended (%s)", lm_end_reason_name((uint8_t)end_reason));
    tgt_close(tgt);
    return rc;
}
