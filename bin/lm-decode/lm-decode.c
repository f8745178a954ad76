/* lm-decode: from a logical slot's pgoutput stream to the change format.
 *
 * One loop reads the replication connection without blocking on the
 * downstream for long, writes each message as a record as it arrives
 * (memory does not grow with transaction size), and reports as flushed to
 * the slot only what is durable downstream: fsync'd spool segments, or the
 * positions the consumer acknowledges on the ack channel.
 *
 * Why this file is over 800 lines: it is that one loop and the state it
 * carries (positions written and durable, the open segment, the transaction
 * being received), as file-scope variables that every part reads: the
 * output and spool cut points, the status messages, the message handlers,
 * reconnection. Splitting it would turn that state into a shared header of
 * globals. What stands alone lives elsewhere: the ack channel (ack.c), the
 * spool protocol (common/spool.c), records and frames (common/stream.c,
 * common/record.c), pgoutput parsing (common/pgoutput.c), the relation
 * cache (common/relcache.c). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ack.h"
#include "chunkmap.h"
#include "ddl.h"
#include "exitcodes.h"
#include "log.h"
#include "lsn.h"
#include "marker.h"
#include "opts.h"
#include "pgconn.h"
#include "pgoutput.h"
#include "progress.h"
#include "relcache.h"
#include "sig.h"
#include "spool.h"
#include "state.h"
#include "stream.h"

/* ---------------------------------------------------------------- options */
static const char *opt_source = "";
static const char *opt_slot;
static const char *opt_publication;
static const char *opt_output;         /* -o FILE; NULL = stdout */
static const char *opt_spool;
static const char *opt_ack;
static uint64_t opt_start;
static uint64_t opt_endpos;
static bool opt_have_endpos;
static bool opt_compress;
static lm_progress_when opt_progress = LM_PROGRESS_AUTO;
static lm_progress prog;
static uint64_t opt_seg_size = 64ull << 20;
static int64_t opt_seg_time_ms = 60000;
static int64_t opt_status_ms = 10000;
static long opt_max_retries = 100;
static bool opt_stop_at_marker = true;
static const char *opt_marker_token;   /* --marker-token-file */
static lm_marker_key marker_key;

/* ------------------------------------------------------------------ state */
static PGconn *conn;
static lm_writer *w;
static int out_fd = -1;
static char *out_name;
static lm_relcache *rels;
static lm_record *types;               /* type records seen, for new segments */
static size_t ntypes;
static lm_arena types_arena;

static uint64_t sysid;
static uint32_t timeline;
static char *dbname;
static char *encoding;
static int server_version;
static uint64_t stream_start;          /* start LSN of this run */

static uint64_t written_lsn;           /* end of the last complete transaction or position written */
static uint64_t durable_lsn;           /* what may be reported as flushed */
static uint64_t last_flush_sent;
static uint64_t last_walend;
static bool in_xact;
static bool skipping;                  /* a transaction we already have, sent again */
static bool marker_in_xact;
static uint32_t cur_xid;               /* of the transaction being received */
static bool told_no_token;
static bool unflushed;                 /* records written since the last flush */
static int64_t last_status_us;
static int64_t last_flush_us;

/* spool (the protocol: spool.h) */
static spool_writer *spool;
static uint64_t seg_start;
static bool seg_has_lsn;               /* holds a complete transaction or position */
static int64_t last_sync_us;

/* ack channel (pipe mode) */
static ack_channel ack = {.fd = -1};

/* counters */
static uint64_t n_changes, n_xacts, n_bytes_in, n_skipped;
static int64_t started_us;

static lm_arena arena;

static void usage(void)
{
    printf("%s streams a logical replication slot (pgoutput) into an lm change stream.\n\n"
           "Usage:\n  %s --source CONN --slot NAME --publication NAME [OPTION]...\n\n"
           "Connection and slot:\n"
           "  -s, --source=CONN        source connection string or URI (a role with REPLICATION)\n"
           "  -S, --slot=NAME          logical replication slot (pgoutput), e.g. from lm-slot\n"
           "  -P, --publication=NAME   publication to decode (default: the slot name)\n"
           "      --start=LSN          start at LSN (the server starts at the later of this\n"
           "                           and the slot's confirmed position)\n"
           "  -E, --endpos=LSN         stop after the first commit at or past LSN (or an idle\n"
           "                           position past it), write an end record, exit 0\n"
           "Output (one):\n"
           "  -o, --output=FILE        write the stream to FILE (default: standard output)\n"
           "      --spool=DIR          write zstd segment files into DIR and acknowledge the\n"
           "                           slot per fsync'd segment\n"
           "Acknowledgement and durability:\n"
           "      --ack=FILE           read durable LSNs (lines) from FILE or FIFO, written by\n"
           "                           lm-apply --ack; without it, pipe mode acknowledges nothing\n"
           "  -z, --compress           compress the stream with zstd (spool: always)\n"
           "      --segment-size=SIZE  rotate spool segments at SIZE compressed (default 64MB)\n"
           "      --segment-time=SECS  rotate spool segments after SECS (default 60)\n"
           "      --status-interval=SECS  send a status update at least this often (default 10)\n"
           "      --max-retries=N      reconnect at most N times in a row (default 100; 0: never)\n"
           "      --marker-token-file=FILE  end the stream at a cutover marker made with the\n"
           "                           token in FILE (mode 0600; lm-migrate's marker.key);\n"
           "                           without it no marker ends the stream\n"
           "      --no-stop-at-marker  do not end the stream at a cutover marker\n"
           "Other:\n"
           "      --progress[=WHEN]    changes, rate and positions on stderr: auto (the\n"
           "                           default: live on a terminal), always (plain lines\n"
           "                           once a second elsewhere) or never\n"
           "  -v, --verbose            more messages (repeat for debug)\n"
           "  -V, --version            output version information, then exit\n"
           "  -?, --help               show this help, then exit\n\n"
           "SIGINT or SIGTERM end the stream cleanly (end record \"shutdown\"), exit 0.\n"
           LM_EXIT_HELP_DECODE,
           lm_progname(), lm_progname());
}

/* ------------------------------------------------------------- the output */

static void put_header(void)
{
    lm_record h;
    char producer[64];

    snprintf(producer, sizeof producer, "lm-decode %s", LM_VERSION);
    memset(&h, 0, sizeof h);
    h.type = LM_REC_HEADER;
    h.u.header.version = LM_FORMAT_VERSION;
    h.u.header.sysid = sysid;
    h.u.header.timeline = timeline;
    h.u.header.server_version = (uint32_t)server_version;
    h.u.header.dbname = dbname;
    h.u.header.slot = opt_slot;
    h.u.header.publication = opt_publication;
    h.u.header.encoding = encoding;
    h.u.header.producer = producer;
    h.u.header.start_lsn = opt_spool ? seg_start : stream_start;
    h.u.header.created = lm_now_pgtime();
    lm_writer_put(w, &h);
}

/* A new segment starts with the header and every relation and type known,
 * so that it can be read alone. */
static void put_catalog(void)
{
    for (size_t i = 0; i < ntypes; i++)
        lm_writer_put(w, &types[i]);
    for (size_t i = 0; lm_relcache_at(rels, i); i++) {
        lm_record r;
        memset(&r, 0, sizeof r);
        r.type = LM_REC_RELATION;
        r.u.rel = lm_relcache_at(rels, i)->rel;
        lm_writer_put(w, &r);
    }
}

static void open_segment(void)
{
    w = spool_writer_begin(spool, seg_start);
    seg_has_lsn = false;
    put_header();
    put_catalog();
    /* the header and catalog make a frame of their own: a cut point */
    spool_writer_cut(spool, seg_start);
}

/* End the zstd frame between transactions: a point where a crashed
 * partial can be cut (spool_recover_partial), so a point that may be
 * acknowledged once fsync'd. A frame end inside a transaction is no cut
 * point: recovery would go back to the frame end before its Begin. */
static void end_frame(void)
{
    if (!in_xact)
        spool_writer_cut(spool, written_lsn);
    else
        lm_writer_flush(w, LM_FLUSH_FRAME);
    unflushed = false;
    last_flush_us = lm_monotonic_us();
}

/* fsync what is written; everything up to the last cut point becomes
 * durable and may be acknowledged. */
static void sync_segment(void)
{
    uint64_t d;

    if (!w)
        return;
    if (!in_xact)
        end_frame();
    d = spool_writer_sync(spool);
    if (d > durable_lsn)
        durable_lsn = d;
    last_sync_us = lm_monotonic_us();
}

/* Finish the open segment (trailer, fsync, rename, directory fsync),
 * always between transactions: everything in it is durable. */
static void close_segment(bool trailer)
{
    if (!w)
        return;
    seg_start = spool_writer_finish(spool, written_lsn, trailer);
    w = NULL;
    if (seg_start > durable_lsn)
        durable_lsn = seg_start;
    unflushed = false;
    last_flush_us = last_sync_us = lm_monotonic_us();
}

static void maybe_rotate(void)
{
    /* rotate only between transactions: a segment that began inside a
     * transaction could not be read alone, and a crash while writing it
     * could not be cut back without touching the finished segment before
     * it. A transaction larger than --segment-size makes a larger segment. */
    if (spool_writer_due(spool, seg_has_lsn && !in_xact, opt_seg_size, opt_seg_time_ms * 1000)) {
        close_segment(true);
        open_segment();
    }
}

static void put(const lm_record *r)
{
    lm_writer_put(w, r);
    unflushed = true;
}

/* Make what is written visible downstream (pipe) or cuttable (spool:
 * only between transactions). */
static void flush_output(void)
{
    if (!w || !unflushed)
        return;
    if (opt_spool) {
        if (!in_xact)
            end_frame();
        return;
    }
    lm_writer_flush(w, LM_FLUSH_WRITE);
    unflushed = false;
    last_flush_us = lm_monotonic_us();
}

/* ------------------------------------------------------ replication status */

static bool send_status(bool force);

/* A pipe whose reader does not read must not get the replication
 * connection killed by wal_sender_timeout: while the output is full, the
 * status goes on being sent (acks read, the position re-sent every
 * --status-interval). */
static void output_blocked(void *arg)
{
    (void)arg;
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return;
    ack_read(&ack, written_lsn, &durable_lsn);
    (void)send_status(false);
}

static int out_flags = -1;
static void restore_output_flags(void)
{
    if (out_flags >= 0)
        (void)fcntl(out_fd, F_SETFL, out_flags);
}

static void output_nonblocking(void)
{
    struct stat sb;

    /* pipes and sockets only: a terminal's file is shared with the shell */
    if (fstat(out_fd, &sb) != 0 || !(S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode)))
        return;
    out_flags = fcntl(out_fd, F_GETFL);
    if (out_flags < 0 || fcntl(out_fd, F_SETFL, out_flags | O_NONBLOCK) != 0)
        return;
    atexit(restore_output_flags);
    lm_writer_set_wait(w, output_blocked, NULL);
}

static bool send_status(bool force)
{
    uint8_t msg[34];
    int64_t now = lm_monotonic_us();

    if (!force && durable_lsn == last_flush_sent && now - last_status_us < opt_status_ms * 1000)
        return true;
    if (!force && now - last_status_us < 1000000 && durable_lsn - last_flush_sent < (16u << 20))
        return true;
    msg[0] = 'r';
    lm_put_be64(msg + 1, written_lsn);   /* write */
    lm_put_be64(msg + 9, durable_lsn);   /* flush: what is durable downstream */
    lm_put_be64(msg + 17, durable_lsn);  /* apply */
    lm_put_be64(msg + 25, (uint64_t)lm_now_pgtime());
    msg[33] = 0;
    if (PQputCopyData(conn, (const char *)msg, sizeof msg) <= 0 || PQflush(conn) < 0)
        return false;
    last_status_us = now;
    last_flush_sent = durable_lsn;
    {
        char a[LM_LSN_BUFSZ];
        lm_debug("status: flushed %s", lm_lsn_format(durable_lsn, a));
    }
    return true;
}

/* ------------------------------------------------------------- connection */

static void fetch_identity(void)
{
    PGresult *res = lm_exec(conn, LM_EXIT_SERVER, "IDENTIFY_SYSTEM");
    if (PQntuples(res) != 1 || PQnfields(res) < 4)
        lm_fatal(LM_EXIT_SERVER, "unexpected IDENTIFY_SYSTEM result");
    sysid = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    timeline = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    free(dbname);
    dbname = lm_strdup(PQgetisnull(res, 0, 3) ? "" : PQgetvalue(res, 0, 3));
    PQclear(res);
    free(encoding);
    encoding = lm_query_value(conn, LM_EXIT_SERVER, "SHOW client_encoding");
    server_version = PQserverVersion(conn);
}

/* The slot must exist, be logical with pgoutput, and be in this database;
 * the publication must exist. Returns the slot's confirmed position. */
static uint64_t preflight(void)
{
    char *lit = lm_literal(opt_slot);
    char *publit = lm_literal(opt_publication);
    char *sql = lm_psprintf("SELECT plugin, database, confirmed_flush_lsn, active_pid, "
                            "wal_status, (SELECT count(*) FROM pg_publication WHERE pubname = %s) "
                            "FROM pg_replication_slots WHERE slot_name = %s", publit, lit);
    PGresult *res = lm_exec(conn, LM_EXIT_SERVER, sql);
    uint64_t confirmed = 0;
    int problems = 0;

    if (server_version < 140000) {
        lm_error("the source runs PostgreSQL %d; lm-decode needs 14 or later", server_version / 10000);
        problems++;
    }
    if (PQntuples(res) == 0) {
        lm_error("replication slot \"%s\" does not exist on the source", opt_slot);
        lm_hint("Create it with lm-slot create --slot %s.", opt_slot);
        problems++;
    } else {
        const char *plugin = PQgetisnull(res, 0, 0) ? "(physical)" : PQgetvalue(res, 0, 0);
        if (strcmp(plugin, "pgoutput") != 0) {
            lm_error("replication slot \"%s\" uses the output plugin \"%s\", not pgoutput", opt_slot,
                     plugin);
            lm_hint("lm-decode reads pgoutput slots only; create one with lm-slot create.");
            problems++;
        } else if (strcmp(PQgetvalue(res, 0, 1), dbname) != 0) {
            lm_error("replication slot \"%s\" belongs to database \"%s\", not \"%s\"", opt_slot,
                     PQgetvalue(res, 0, 1), dbname);
            problems++;
        }
        if (!PQgetisnull(res, 0, 4) && strcmp(PQgetvalue(res, 0, 4), "lost") == 0) {
            lm_error("replication slot \"%s\" is lost: the WAL it needed was removed", opt_slot);
            lm_hint("The changes since the slot's position are gone; the migration must start over.");
            problems++;
        }
        if (!PQgetisnull(res, 0, 2))
            lm_lsn_parse(PQgetvalue(res, 0, 2), &confirmed);
        if (strcmp(PQgetvalue(res, 0, 5), "0") == 0) {
            lm_error("publication \"%s\" does not exist on the source", opt_publication);
            problems++;
        }
    }
    PQclear(res);
    free(sql);
    free(lit);
    free(publit);
    if (problems)
        exit(LM_EXIT_PREFLIGHT);
    return confirmed;
}

static bool start_streaming(uint64_t from, char **err)
{
    char a[LM_LSN_BUFSZ];
    lm_buf pubs = {0};
    char *publit, *sql;
    PGresult *res;

    lm_quote_ident(&pubs, opt_publication);
    lm_buf_u8(&pubs, '\0');
    publit = lm_literal((char *)pubs.data);
    sql = lm_psprintf("START_REPLICATION SLOT %s LOGICAL %s (proto_version '%d', "
                      "publication_names %s%s)",
                      opt_slot, lm_lsn_format(from, a), server_version >= 140000 ? 2 : 1, publit,
                      server_version >= 140000 ? ", messages 'true'" : "");
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        *err = lm_strdup(m ? m : PQerrorMessage(conn));
        PQclear(res);
        free(sql);
        free(publit);
        lm_buf_free(&pubs);
        return false;
    }
    PQclear(res);
    lm_debug("%s", sql);
    free(sql);
    free(publit);
    lm_buf_free(&pubs);
    last_status_us = 0;
    return true;
}

/* -------------------------------------------------------------- messages */

static void end_stream(uint8_t reason, const char *detail)
{
    lm_record e;

    memset(&e, 0, sizeof e);
    e.type = LM_REC_END;
    e.u.end.reason = reason;
    e.u.end.lsn = written_lsn;
    e.u.end.detail = detail;
    put(&e);
}

/* A message with the marker's prefix: anyone who can connect to the source
 * can emit one (pg_logical_emit_message needs no privilege).  Only a
 * transactional one whose MAC verifies under --marker-token-file is the
 * cutover marker, one that verifies as a rehearsal marker passes on
 * without ending anything; with a token, any other is left out of the
 * stream (so that lm-apply never records it) with a warning.  Returns whether r goes
 * into the stream. */
static bool marker_message(const lm_record *r)
{
    char a[LM_LSN_BUFSZ];
    bool xact = (r->u.message.flags & 1) && in_xact;

    if (!opt_marker_token) {
        if (!told_no_token && r->u.message.len >= 7 && memcmp(r->u.message.content, "cutover", 7) == 0) {
            lm_info("a message with prefix \"%s\" at %s passes on: without --marker-token-file no "
                    "marker ends the stream", LM_MARKER_PREFIX, lm_lsn_format(r->u.message.lsn, a));
            told_no_token = true;
        }
        return true;
    }
    if (xact && lm_marker_verify(&marker_key, (const char *)r->u.message.content, r->u.message.len)) {
        lm_info("the cutover marker at %s verifies", lm_lsn_format(r->u.message.lsn, a));
        marker_in_xact = true;
        return true;
    }
    /* a cutover rehearsal's (lm-migrate cutover --rehearse): into the
     * stream, so that lm-apply records it, and the stream goes on */
    if (xact && lm_marker_verify_rehearsal(&marker_key, (const char *)r->u.message.content, r->u.message.len)) {
        lm_info("a cutover rehearsal marker at %s verifies: it passes on", lm_lsn_format(r->u.message.lsn, a));
        return true;
    }
    if (xact)
        lm_warning("ignoring a message with prefix \"%s\" that is not this migration's cutover "
                   "marker (transaction %u, LSN %s)", LM_MARKER_PREFIX, cur_xid,
                   lm_lsn_format(r->u.message.lsn, a));
    else
        lm_warning("ignoring a non-transactional message with prefix \"%s\" (LSN %s): it is no "
                   "cutover marker", LM_MARKER_PREFIX, lm_lsn_format(r->u.message.lsn, a));
    return false;
}

/* Returns an end reason when the stream should stop after this message. */
static int handle_xlogdata(const uint8_t *msg, size_t len)
{
    lm_record r;
    char err[256];

    lm_arena_reset(&arena);
    if (lm_pgoutput_parse(msg, len, &r, &arena, err, sizeof err) < 0)
        lm_fatal(LM_EXIT_SERVER, "%s", err);
    /* TimescaleDB: a chunk's relation under its hypertable's name */
    if (!chunkmap_filter(&r))
        return 0;

    switch (r.type) {
    case LM_REC_BEGIN:
        if (in_xact && !skipping) {
            /* cannot happen with a sane server; keep readers consistent */
            end_stream(LM_END_SHUTDOWN, "transaction abandoned");
        }
        in_xact = true;
        marker_in_xact = false;
        cur_xid = r.u.begin.xid;
        /* a transaction we already wrote, sent again (source crash) */
        skipping = r.u.begin.final_lsn < written_lsn;
        if (skipping) {
            n_skipped++;
            return 0;
        }
        put(&r);
        return 0;
    case LM_REC_COMMIT:
        in_xact = false;
        if (skipping) {
            skipping = false;
            return 0;
        }
        put(&r);
        written_lsn = r.u.commit.end_lsn;
        seg_has_lsn = true;
        n_xacts++;
        /* busy: end a frame at the first commit after ~100 ms, so that the
         * partial keeps getting cut points */
        if (opt_spool && lm_monotonic_us() - last_flush_us >= 100000)
            end_frame();
        if (marker_in_xact && opt_stop_at_marker)
            return LM_END_MARKER;
        if (opt_have_endpos && r.u.commit.end_lsn >= opt_endpos)
            return LM_END_ENDPOS;
        return 0;
    case LM_REC_RELATION:
        if (ddl_relation(&r))
            return 0;
        lm_relcache_put(rels, &r.u.rel);
        put(&r);
        return 0;
    case LM_REC_TYPE: {
        lm_record *t = NULL;
        /* replace a type sent again (after a reconnect): new segments
         * repeat each type once */
        for (size_t i = 0; i < ntypes && !t; i++)
            if (types[i].u.type.oid == r.u.type.oid)
                t = &types[i];
        if (!t) {
            types = lm_realloc(types, (ntypes + 1) * sizeof *types);
            t = &types[ntypes++];
        }
        *t = r;
        t->u.type.nspname = lm_arena_strndup(&types_arena, r.u.type.nspname, strlen(r.u.type.nspname));
        t->u.type.typname = lm_arena_strndup(&types_arena, r.u.type.typname, strlen(r.u.type.typname));
        put(&r);
        return 0;
    }
    case LM_REC_MESSAGE:
        if (skipping)
            return 0;
        if (strcmp(r.u.message.prefix, LM_MARKER_PREFIX) == 0 && !marker_message(&r))
            return 0;
        put(&r);
        return 0;
    default:
        if (skipping)
            return 0;
        {
            lm_record d;
            int k = ddl_change(&r, &d, &arena);
            if (k == 0)
                return 0;
            if (k == 1) {
                put(&d);
                return 0;
            }
        }
        if (r.type == LM_REC_INSERT || r.type == LM_REC_UPDATE || r.type == LM_REC_DELETE ||
            r.type == LM_REC_TRUNCATE)
            n_changes++;
        put(&r);
        return 0;
    }
}

static int handle_keepalive(const uint8_t *p, size_t len, bool *reply)
{
    uint64_t walend;

    if (len < 18)
        lm_fatal(LM_EXIT_SERVER, "malformed keepalive message from the server");
    walend = lm_get_be64(p + 1);
    *reply = p[17] != 0;
    last_walend = walend;
    if (!in_xact && walend > written_lsn) {
        lm_record r;
        memset(&r, 0, sizeof r);
        r.type = LM_REC_POSITION;
        r.u.position.lsn = walend;
        r.u.position.time = (int64_t)lm_get_be64(p + 9);
        put(&r);
        written_lsn = walend;
        seg_has_lsn = true;
    }
    /* also when the server has nothing new: an --endpos at or before the
     * start must end the stream, not wait for more WAL */
    if (opt_have_endpos && !in_xact && walend >= opt_endpos)
        return LM_END_ENDPOS;
    return 0;
}

/* ------------------------------------------------------------------ loop */

static void progress(bool force)
{
    int64_t now = lm_monotonic_us();
    char a[LM_LSN_BUFSZ], b[LM_LSN_BUFSZ];
    double secs;

    char *text;

    if (!lm_progress_due(&prog, force))
        return;
    secs = (double)(now - started_us) / 1e6;
    text = lm_psprintf("%" PRIu64 " changes in %" PRIu64 " transactions, %.1f MB received, "
                       "%.0f changes/s, written %s, acknowledged %s%s",
                       n_changes, n_xacts, (double)n_bytes_in / 1e6,
                       secs > 0 ? (double)n_changes / secs : 0.0, lm_lsn_format(written_lsn, a),
                       lm_lsn_format(durable_lsn, b), force ? " (done)" : "");
    lm_progress_show(&prog, text);
    free(text);
}

/* Periodic work while waiting for or between messages. */
static void housekeeping(void)
{
    int64_t now = lm_monotonic_us();

    /* pipe: hand over what is complete when idle, and every ~100 ms when
     * busy; spool: end a frame between transactions */
    if (unflushed && (!in_xact || now - last_flush_us >= 100000))
        flush_output();
    if (opt_spool) {
        if (now - last_sync_us >= 1000000 &&
            (spool_writer_last_cut(spool) > durable_lsn || (!in_xact && written_lsn > durable_lsn)))
            sync_segment();
        maybe_rotate();
    } else
        ack_read(&ack, written_lsn, &durable_lsn);
}

/* Wait for input on the connection (or the ack channel) for at most ms. */
static void wait_input(int ms)
{
    struct pollfd pfd[2];
    int n = 0;

    pfd[n].fd = PQsocket(conn);
    pfd[n].events = POLLIN;
    n++;
    /* a regular file is always readable: polling it would spin */
    if (ack_pollfd(&ack) >= 0) {
        pfd[n].fd = ack_pollfd(&ack);
        pfd[n].events = POLLIN;
        n++;
    }
    if (poll(pfd, (nfds_t)n, ms) < 0 && errno != EINTR)
        lm_fatal(LM_EXIT_FAILURE, "poll failed: %s", strerror(errno));
}

typedef enum { LOOP_END, LOOP_LOST } loop_result;

static loop_result stream_loop(int *reason)
{
    for (;;) {
        char *buf = NULL;
        int len;

        if (lm_interrupted) {
            *reason = LM_END_SHUTDOWN;
            return LOOP_END;
        }
        len = PQgetCopyData(conn, &buf, 1);
        if (len > 0) {
            int r = 0;
            bool reply = false;
            n_bytes_in += (uint64_t)len;
            if (buf[0] == 'w') {
                if (len < 25)
                    lm_fatal(LM_EXIT_SERVER, "malformed XLogData message from the server");
                r = handle_xlogdata((const uint8_t *)buf + 25, (size_t)len - 25);
            } else if (buf[0] == 'k') {
                r = handle_keepalive((const uint8_t *)buf, (size_t)len, &reply);
            }
            PQfreemem(buf);
            if (r) {
                *reason = r;
                return LOOP_END;
            }
            if (reply && !send_status(true))
                return LOOP_LOST;
            /* status updates go out on time even while data keeps coming:
             * about a second after the durable position moves (send_status
             * paces itself), and every --status-interval */
            {
                int64_t now = lm_monotonic_us();
                if (now - last_flush_us >= 100000 || now - last_status_us >= 1000000) {
                    housekeeping();
                    if (!send_status(false))
                        return LOOP_LOST;
                }
            }
            continue;
        }
        if (len == 0) {
            housekeeping();
            if (!send_status(false))
                return LOOP_LOST;
            progress(false);
            wait_input(100);
            if (PQconsumeInput(conn) == 0)
                return LOOP_LOST;
            continue;
        }
        if (len == -1) {
            /* the server ended the copy */
            PGresult *res = PQgetResult(conn);
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                lm_warning("replication stream ended: %s", PQresultErrorMessage(res));
                PQclear(res);
                return LOOP_LOST;
            }
            PQclear(res);
            lm_warning("the server ended the replication stream");
            return LOOP_LOST;
        }
        return LOOP_LOST;
    }
}

static void finish_copy(void)
{
    int64_t until = lm_monotonic_us() + 5000000;
    PGresult *res;

    if (PQputCopyEnd(conn, NULL) <= 0 || PQflush(conn) < 0)
        return;
    /* drain what the server still sends until it ends the copy too, for
     * at most a few seconds (a busy walsender may have much in flight) */
    for (;;) {
        char *buf;
        int len = PQgetCopyData(conn, &buf, 1);
        if (len > 0) {
            PQfreemem(buf);
            continue;
        }
        if (len == 0) {
            if (lm_monotonic_us() > until)
                return;
            wait_input(50);
            if (PQconsumeInput(conn) == 0)
                return;
            continue;
        }
        break;
    }
    /* still in copy mode, PQgetResult would hand out copy results forever */
    for (int i = 0; i < 10 && (res = PQgetResult(conn)) != NULL; i++) {
        ExecStatusType st = PQresultStatus(res);
        PQclear(res);
        if (st == PGRES_COPY_BOTH || st == PGRES_COPY_OUT || st == PGRES_COPY_IN)
            break;
    }
}

static PGconn *connect_source(bool first)
{
    char *err = NULL;
    PGconn *c = lm_connect_try(opt_source, "source", LM_CONN_REPLICATION, &err);
    if (!c) {
        if (first) {
            lm_error("%s", err);
            exit(LM_EXIT_CONNECT);
        }
        lm_warning("%s", err);
    }
    free(err);
    return c;
}

/* ----------------------------------------------------------------- main */

static void prepare_spool(void)
{
    uint64_t end;

    spool = spool_writer_open(opt_spool, &end);
    if (end > opt_start)
        opt_start = end;
    /* what is in finished segments is durable */
    durable_lsn = end;
    written_lsn = end;
}

int main(int argc, char **argv)
{
    enum { OPT_START = LM_OPT_OWN, OPT_SPOOL, OPT_ACK, OPT_SEGMENT_SIZE, OPT_SEGMENT_TIME,
           OPT_STATUS_INTERVAL, OPT_MAX_RETRIES, OPT_NO_STOP_AT_MARKER, OPT_PROGRESS,
           OPT_MARKER_TOKEN_FILE };
    static const struct option longopts[] = {
        {"source", required_argument, NULL, 's'},
        {"slot", required_argument, NULL, 'S'},
        {"publication", required_argument, NULL, 'P'},
        {"start", required_argument, NULL, OPT_START},
        {"endpos", required_argument, NULL, 'E'},
        {"output", required_argument, NULL, 'o'},
        {"spool", required_argument, NULL, OPT_SPOOL},
        {"ack", required_argument, NULL, OPT_ACK},
        {"compress", no_argument, NULL, 'z'},
        {"segment-size", required_argument, NULL, OPT_SEGMENT_SIZE},
        {"segment-time", required_argument, NULL, OPT_SEGMENT_TIME},
        {"status-interval", required_argument, NULL, OPT_STATUS_INTERVAL},
        {"max-retries", required_argument, NULL, OPT_MAX_RETRIES},
        {"no-stop-at-marker", no_argument, NULL, OPT_NO_STOP_AT_MARKER},
        {"progress", optional_argument, NULL, OPT_PROGRESS},
        {"marker-token-file", required_argument, NULL, OPT_MARKER_TOKEN_FILE},
        {"verbose", no_argument, NULL, 'v'},
        LM_OPTIONS_COMMON,
        {NULL, 0, NULL, 0}};
    int c, verbose = 0;
    const char *why;
    uint64_t confirmed;
    int reason = 0;
    long retries = 0;
    char a[LM_LSN_BUFSZ];

    lm_program_start(argc, argv, usage);
    while ((c = getopt_long(argc, argv, "s:S:P:E:o:zvV", longopts, NULL)) != -1) {
        switch (c) {
        case 's': opt_source = optarg; break;
        case 'S': opt_slot = optarg; break;
        case 'P': opt_publication = optarg; break;
        case OPT_START: opt_start = lm_opt_lsn("--start", optarg); break;
        case 'E': opt_endpos = lm_opt_lsn("--endpos", optarg); opt_have_endpos = true; break;
        case 'o': opt_output = optarg; break;
        case OPT_SPOOL: opt_spool = optarg; break;
        case OPT_ACK: opt_ack = optarg; break;
        case 'z': opt_compress = true; break;
        case OPT_SEGMENT_SIZE:
            opt_seg_size = lm_opt_size("--segment-size", optarg, 4096, 1ull << 40);
            break;
        case OPT_SEGMENT_TIME:
            opt_seg_time_ms = lm_opt_duration_ms("--segment-time", optarg, 100, 86400000);
            break;
        case OPT_STATUS_INTERVAL:
            opt_status_ms = lm_opt_duration_ms("--status-interval", optarg, 100, 3600000);
            break;
        case OPT_MAX_RETRIES: opt_max_retries = lm_opt_int("--max-retries", optarg, 0, 1000000); break;
        case OPT_NO_STOP_AT_MARKER: opt_stop_at_marker = false; break;
        case OPT_PROGRESS: opt_progress = lm_opt_progress(optarg); break;
        case OPT_MARKER_TOKEN_FILE: opt_marker_token = optarg; break;
        case 'v': verbose++; break;
        default: lm_program_option(c);
        }
    }
    if (optind < argc)
        lm_usage_error("too many arguments (first: \"%s\")", argv[optind]);
    if (!opt_slot)
        lm_usage_error("no slot given: use --slot");
    if (!lm_slot_name_valid(opt_slot, &why))
        lm_usage_error("invalid slot name \"%s\": %s", opt_slot, why);
    if (!opt_publication)
        opt_publication = opt_slot;
    if (opt_spool && opt_output)
        lm_usage_error("--output and --spool cannot be combined");
    if (opt_spool && opt_ack)
        lm_usage_error("--ack is for pipe mode: in spool mode the slot is acknowledged per fsync'd segment");
    if (verbose)
        lm_log_set_level(verbose > 1 ? LM_LOG_DEBUG : LM_LOG_INFO);
    if (opt_marker_token) {
        char *err = NULL;
        if (!lm_marker_key_load(opt_marker_token, &marker_key, &err))
            lm_fatal(LM_EXIT_IO, "%s", err);
    }
    lm_signals_init();
    rels = lm_relcache_new(NULL);
    started_us = lm_monotonic_us();
    lm_progress_init(&prog, opt_progress, stderr);

    conn = connect_source(true);
    fetch_identity();
    confirmed = preflight();
    chunkmap_init(opt_source, opt_publication);
    ddl_setup(conn, true);

    if (opt_spool)
        prepare_spool();
    stream_start = opt_start > confirmed ? opt_start : confirmed;
    if (!written_lsn)
        written_lsn = stream_start;
    if (opt_start > written_lsn)
        written_lsn = opt_start;
    seg_start = stream_start;

    if (opt_spool) {
        open_segment();
    } else {
        if (opt_output) {
            out_fd = open(opt_output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (out_fd < 0)
                lm_fatal(LM_EXIT_IO, "could not open \"%s\": %s", opt_output, strerror(errno));
            out_name = lm_strdup(opt_output);
        } else {
            out_fd = 1;
            out_name = lm_strdup("standard output");
        }
        w = lm_writer_new(out_fd, out_name, opt_compress, 3);
        output_nonblocking();
        /* before anything is written: the consumer's acks for this run
         * come after it, and only those are read */
        ack_open(&ack, opt_ack);
        put_header();
        flush_output();
        if (!opt_ack)
            lm_warning("no --ack channel: nothing will be acknowledged, and the slot will retain "
                       "WAL from %s on", lm_lsn_format(confirmed, a));
    }

    {
        char *err = NULL;
        if (!start_streaming(written_lsn, &err)) {
            lm_error("could not start streaming from slot \"%s\": %s", opt_slot, err);
            exit(strstr(err, "active for PID") ? LM_EXIT_PREFLIGHT : LM_EXIT_SERVER);
        }
    }
    lm_info("streaming slot \"%s\" from %s", opt_slot, lm_lsn_format(written_lsn, a));

    /* nothing to wait for: every transaction still to come commits past
     * --endpos (the server may never send a keepalive to say so) */
    if (opt_have_endpos && written_lsn >= opt_endpos)
        reason = LM_END_ENDPOS;
    while (reason == 0) {
        loop_result lr = stream_loop(&reason);
        int64_t backoff_ms;

        if (lr == LOOP_END)
            break;
        /* connection lost: reconnect and resume after the last complete
         * transaction; a half-received one is abandoned downstream */
        if (lm_interrupted) {
            reason = LM_END_SHUTDOWN;
            break;
        }
        if (in_xact && !skipping)
            end_stream(LM_END_SHUTDOWN, "connection lost; the transaction will be sent again");
        in_xact = false;
        skipping = false;
        flush_output();
        if (opt_spool)
            sync_segment();
        lm_warning("lost the replication connection: %s", PQerrorMessage(conn));
        PQfinish(conn);
        conn = NULL;
        for (;;) {
            char *err = NULL;
            if (++retries > opt_max_retries)
                lm_fatal(LM_EXIT_SERVER, "giving up after %ld reconnection attempts", opt_max_retries);
            backoff_ms = 200LL << (retries < 6 ? retries : 6);
            if (backoff_ms > 5000)
                backoff_ms = 5000;
            for (int64_t t = 0; t < backoff_ms && !lm_interrupted; t += 50) {
                struct timespec ts = {0, 50 * 1000000};
                nanosleep(&ts, NULL);
            }
            if (lm_interrupted)
                break;
            conn = connect_source(false);
            if (!conn)
                continue;
            ddl_setup(conn, false);
            if (start_streaming(written_lsn, &err)) {
                lm_info("reconnected; streaming from %s", lm_lsn_format(written_lsn, a));
                retries = 0;
                free(err);
                put_header();
                break;
            }
            lm_warning("could not restart streaming: %s", err);
            free(err);
            PQfinish(conn);
            conn = NULL;
        }
        if (lm_interrupted) {
            reason = LM_END_SHUTDOWN;
            break;
        }
    }

    /* the end: an end record, everything durable, the slot told */
    if (reason == LM_END_SHUTDOWN && in_xact && !skipping)
        end_stream(LM_END_SHUTDOWN, "stopped inside a transaction; it will be sent again");
    else
        end_stream((uint8_t)reason, reason == LM_END_SHUTDOWN ? "stopped by a signal" : "");
    /* an abandoned transaction ends at the end record: readers drop it, and
     * the next run receives it again from written_lsn */
    in_xact = false;
    skipping = false;
    if (opt_spool) {
        /* a finished segment even when stopped inside a transaction: its
         * END is the last complete transaction, where the next run resumes */
        seg_has_lsn = true;
        close_segment(false);
    } else {
        lm_writer_flush(w, LM_FLUSH_FRAME);
        if (opt_ack) {
            /* give the consumer a moment to acknowledge the tail */
            int64_t until = lm_monotonic_us() + 5000000;
            while (durable_lsn < written_lsn && lm_monotonic_us() < until) {
                wait_input(100);
                ack_read(&ack, written_lsn, &durable_lsn);
                if (conn && PQstatus(conn) == CONNECTION_OK && PQconsumeInput(conn)) {
                    char *buf;
                    while (PQgetCopyData(conn, &buf, 1) > 0)
                        PQfreemem(buf);
                }
            }
        }
    }
    if (conn && PQstatus(conn) == CONNECTION_OK) {
        send_status(true);
        finish_copy();
    }
    progress(true);
    {
        char b[LM_LSN_BUFSZ];
        lm_info("stopped (%s) at %s; acknowledged %s", lm_end_reason_name((uint8_t)reason),
                lm_lsn_format(written_lsn, a), lm_lsn_format(durable_lsn, b));
    }
    if (!opt_spool) {
        lm_writer_free(w);
        if (out_fd > 1 && close(out_fd) != 0)
            lm_fatal(LM_EXIT_IO, "could not close \"%s\": %s", out_name, strerror(errno));
    }
    if (conn)
        PQfinish(conn);
    return 0;
}
