/* The data copy: N worker threads, each with one source connection inside
 * the snapshot and (direct mode) one target connection, relaying COPY
 * buffers without parsing them. A chunk's data and its lm.copy row commit
 * in one target transaction. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "sig.h"
#include "state.h"
#include "lm-snapshot.h"

#define PIECE_MAX (60 * 1024)

static void put_s(lm_buf *b, const char *s) { lm_buf_put(b, s, strlen(s)); }

static char *fmt_bytes(uint64_t n, char *buf, size_t len)
{
    const char *u[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)n;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
    return buf;
}

/* Import the run's snapshot in a read-only repeatable read transaction. */
static PGconn *source_session(run *r)
{
    PGconn *src = lm_connect(r->o->source, "source", 0);
    char *lit = lm_literal(r->snapshot);
    char *sql = lm_psprintf("SET client_encoding = %s; BEGIN ISOLATION LEVEL REPEATABLE READ "
                            "READ ONLY; SET TRANSACTION SNAPSHOT %s", r->src_encoding, lit);
    char *err = NULL;
    PGresult *res = lm_exec_try(src, sql, &err);
    if (!res) {
        lm_exit_if_lost(src, "source", err);
        lm_error("could not import snapshot \"%s\" on the source: %s", r->snapshot, err);
        lm_hint("The process holding the snapshot has gone; run again with --resume to "
                "re-copy unfinished tables under a fresh snapshot.");
        exit(LM_EXIT_PREFLIGHT);
    }
    PQclear(res);
    free(sql);
    free(lit);
    return src;
}

static PGconn *target_session(run *r)
{
    PGconn *tgt = lm_connect(r->o->target, "target", 0);
    char *sql = lm_psprintf("SET synchronous_commit = off; SET client_encoding = %s",
                            r->src_encoding);
    lm_exec_cmd(tgt, LM_EXIT_SERVER, sql);
    free(sql);
    return tgt;
}

/* " (a, b)"; nothing for a table without columns to copy (all dropped or
 * generated), where COPY's own default is the same and "()" is an error */
static void put_cols(lm_buf *b, const char *cols)
{
    if (!*cols)
        return;
    put_s(b, " (");
    put_s(b, cols);
    put_s(b, ")");
}

static char *source_copy_sql(const chunk *c)
{
    const table *t = c->t;
    lm_buf b = {0};
    if (c->src_rel) {
        /* a chunk of a hypertable on the source */
        put_s(&b, "COPY (SELECT ");
        put_s(&b, t->columns);
        put_s(&b, " FROM ONLY ");
        put_s(&b, c->src_rel);
        put_s(&b, ") TO STDOUT");
    } else if (c->first_page < 0) {
        put_s(&b, "COPY ");
        put_s(&b, t->qname);
        put_cols(&b, t->columns);
        put_s(&b, " TO STDOUT");
    } else {
        char tmp[128];
        put_s(&b, "COPY (SELECT ");
        put_s(&b, t->columns);
        put_s(&b, " FROM ONLY ");
        put_s(&b, t->qname);
        snprintf(tmp, sizeof tmp, " WHERE ctid >= '(%" PRId64 ",0)'::tid", c->first_page);
        put_s(&b, tmp);
        if (c->end_page >= 0) {
            snprintf(tmp, sizeof tmp, " AND ctid < '(%" PRId64 ",0)'::tid", c->end_page);
            put_s(&b, tmp);
        }
        put_s(&b, ") TO STDOUT");
    }
    if (t->binary)
        put_s(&b, " WITH (FORMAT binary)");
    lm_buf_u8(&b, '\0');
    return (char *)b.data;
}

/* Finish a COPY on conn: the command's result, rows from its tag. */
static uint64_t copy_result(PGconn *conn, const char *what, const char *sql)
{
    PGresult *res;
    uint64_t rows = 0;
    bool failed = false;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            if (!failed)
                lm_log_result_error(res, conn, sql);
            failed = true;
        } else
            rows = strtoull(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    if (failed) {
        lm_error("copy %s failed", what);
        exit(LM_EXIT_SERVER);
    }
    return rows;
}

/* Whether a CopyData message of COPY TO is a row: one message a row, but
 * in binary the header comes with the first message and the trailer
 * (-1 as int16) is a message of its own, or with the header alone for no
 * rows (11 + 4 + 4 + 2 bytes). */
static bool copy_message_is_row(bool binary, const char *buf, int n, bool first)
{
    bool trailer_end = n >= 2 && (uint8_t)buf[n - 2] == 0xff && (uint8_t)buf[n - 1] == 0xff;

    if (!binary)
        return true;
    if (n == 2 && trailer_end)
        return false;
    return !(first && n == 21 && trailer_end);
}

static void copy_one(run *r, chunk *c, PGconn *src, PGconn *tgt)
{
    table *t = c->t;
    char *src_sql = source_copy_sql(c);
    lm_buf tsql = {0};
    lm_buf piece = {0};
    PGresult *res;
    uint64_t bytes = 0, rows, seen = 0, seen_rows = 0;
    int64_t start = lm_monotonic_us();
    char *buf;
    int n;

    if (tgt) {
        put_s(&tsql, "BEGIN; ");
        if (c->whole) {
            put_s(&tsql, t->hypertable || t->routed ? "TRUNCATE " : "TRUNCATE ONLY ");
            put_s(&tsql, t->qname);
            put_s(&tsql, "; ");
            lm_copy_forget_sql(&tsql, t->nspname, t->relname);
            put_s(&tsql, "; ");
        }
        put_s(&tsql, "COPY ");
        put_s(&tsql, t->qname);
        put_cols(&tsql, t->columns);
        put_s(&tsql, " FROM STDIN");
        if (t->binary || (c->whole && !t->hypertable && !t->routed)) {
            put_s(&tsql, " WITH (");
            if (t->binary)
                put_s(&tsql, "FORMAT binary");
            if (c->whole && !t->hypertable && !t->routed)
                put_s(&tsql, t->binary ? ", FREEZE" : "FREEZE");
            put_s(&tsql, ")");
        }
        lm_buf_u8(&tsql, '\0');
        res = PQexec(tgt, (char *)tsql.data);
        if (PQresultStatus(res) != PGRES_COPY_IN) {
            lm_log_result_error(res, tgt, (char *)tsql.data);
            exit(LM_EXIT_SERVER);
        }
        PQclear(res);
    } else {
        lm_record rec;
        pthread_mutex_lock(&r->wmu);
        memset(&rec, 0, sizeof rec);
        rec.type = LM_REC_COPY_BEGIN;
        rec.u.copy_begin.nspname = t->nspname;
        rec.u.copy_begin.relname = t->relname;
        rec.u.copy_begin.chunk = (uint32_t)c->chunk;
        rec.u.copy_begin.nchunks = (uint32_t)c->nchunks;
        rec.u.copy_begin.format = t->binary ? 'b' : 't';
        rec.u.copy_begin.sync_lsn = r->have_sync ? r->sync_lsn : 0;
        rec.u.copy_begin.columns = t->columns;
        lm_writer_put(r->w, &rec);
    }

    res = PQexec(src, src_sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        lm_log_result_error(res, src, src_sql);
        exit(LM_EXIT_SERVER);
    }
    PQclear(res);
    while ((n = PQgetCopyData(src, &buf, 0)) > 0) {
        bytes += (uint64_t)n;
        if (copy_message_is_row(t->binary, buf, n, seen == 0))
            __atomic_store_n(&c->rows_seen, ++seen_rows, __ATOMIC_RELAXED);
        seen++;
        if (tgt) {
            if (PQputCopyData(tgt, buf, n) != 1) {
                lm_error("copy of %s to the target failed: %s", t->qname, PQerrorMessage(tgt));
                exit(LM_EXIT_SERVER);
            }
        } else {
            /* pieces of at most PIECE_MAX bytes, rows may straddle them */
            for (int off = 0; off < n;) {
                size_t room = PIECE_MAX - piece.len;
                size_t take = (size_t)(n - off) < room ? (size_t)(n - off) : room;
                lm_buf_put(&piece, buf + off, take);
                off += (int)take;
                if (piece.len == PIECE_MAX) {
                    lm_record rec;
                    rec.type = LM_REC_COPY_DATA;
                    rec.u.copy_data.len = (uint32_t)piece.len;
                    rec.u.copy_data.data = piece.data;
                    lm_writer_put(r->w, &rec);
                    lm_buf_reset(&piece);
                }
            }
        }
        PQfreemem(buf);
        __atomic_store_n(&c->copied, bytes, __ATOMIC_RELAXED);
        if (lm_interrupted)
            lm_fatal(LM_EXIT_FAILURE, "interrupted by signal %d", (int)lm_signal_number);
    }
    if (n == -2) {
        lm_error("copy of %s from the source failed: %s", t->qname, PQerrorMessage(src));
        exit(LM_EXIT_SERVER);
    }
    rows = copy_result(src, "from the source", src_sql);

    if (tgt) {
        if (PQputCopyEnd(tgt, NULL) != 1) {
            lm_error("copy of %s to the target failed: %s", t->qname, PQerrorMessage(tgt));
            exit(LM_EXIT_SERVER);
        }
        copy_result(tgt, "to the target", (char *)tsql.data);
        if (r->o->test_delay_ms > 0)
            usleep((useconds_t)r->o->test_delay_ms * 1000);
        /* the chunk is finished in the transaction that holds its rows */
        lm_copy_done(tgt, &(lm_copy_chunk){.nspname = t->nspname, .relname = t->relname,
                                           .chunk = c->chunk, .nchunks = c->nchunks,
                                           .first_page = c->first_page,
                                           .last_page = c->end_page >= 0 ? c->end_page - 1 : -1,
                                           .rows = rows, .bytes = bytes, .snapshot = r->snapshot_id,
                                           .have_sync_lsn = r->have_sync, .sync_lsn = r->sync_lsn});
        lm_exec_cmd(tgt, LM_EXIT_SERVER, "COMMIT");
    } else {
        lm_record rec;
        if (piece.len) {
            rec.type = LM_REC_COPY_DATA;
            rec.u.copy_data.len = (uint32_t)piece.len;
            rec.u.copy_data.data = piece.data;
            lm_writer_put(r->w, &rec);
        }
        rec.type = LM_REC_COPY_END;
        rec.u.copy_end.rows = rows;
        rec.u.copy_end.bytes = bytes;
        lm_writer_put(r->w, &rec);
        lm_writer_flush(r->w, LM_FLUSH_WRITE);
        pthread_mutex_unlock(&r->wmu);
    }

    pthread_mutex_lock(&r->mu);
    t->rows += rows;
    t->copied += bytes;
    t->chunks_done++;
    c->done = true;
    if (!t->start_us || start < t->start_us)
        t->start_us = start;
    t->end_us = lm_monotonic_us();
    /* a log gets a line per table; a terminal's view shows the tables in flight */
    if (r->prog.on && !r->prog.live && t->chunks_done == t->nchunks) {
        char b1[32], name[256];
        fprintf(stderr, "%s: %s: %" PRIu64 " rows, %s in %.1f s\n", lm_progname(),
                lm_progress_name(name, sizeof name, t->qname), t->rows,
                fmt_bytes(t->copied, b1, sizeof b1),
                (double)(t->end_us - t->start_us) / 1e6);
    }
    pthread_mutex_unlock(&r->mu);
    __atomic_store_n(&c->copied, c->est_bytes > bytes ? c->est_bytes : bytes, __ATOMIC_RELAXED);
    free(piece.data);
    free(tsql.data);
    free(src_sql);
}

static int active_workers;

static void *worker(void *arg)
{
    run *r = arg;
    PGconn *src = NULL, *tgt = NULL;

    for (;;) {
        chunk *c = NULL;
        pthread_mutex_lock(&r->mu);
        if (r->next < r->nchunks) {
            c = &r->chunks[r->next++];
            c->t->chunks_started++;
        }
        pthread_mutex_unlock(&r->mu);
        if (!c)
            break;
        if (!src)
            src = source_session(r);
        if (!tgt && r->o->target)
            tgt = target_session(r);
        copy_one(r, c, src, tgt);
    }
    if (src) {
        PQclear(PQexec(src, "COMMIT"));
        PQfinish(src);
    }
    if (tgt)
        PQfinish(tgt);
    pthread_mutex_lock(&r->mu);
    active_workers--;
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* The view of the copy: the overall line, then (on a terminal) the tables
 * in flight with their chunks done and bytes so far. */
static void copy_progress(run *r, int64_t start_us, bool last)
{
    lm_copy_progress cp = {0};
    uint64_t *inflight;
    lm_buf text = {0};
    char line[512];

    if (!lm_progress_due(&r->prog, last))
        return;
    inflight = lm_malloc((size_t)(r->ntables ? r->ntables : 1) * sizeof *inflight);
    memset(inflight, 0, (size_t)(r->ntables ? r->ntables : 1) * sizeof *inflight);
    cp.secs = (double)(lm_monotonic_us() - start_us) / 1e6;
    cp.last = last;
    cp.bar = r->prog.live;
    cp.total_bytes = (double)r->total_est;
    cp.est_rows = r->rows_unknown ? 0 : r->total_rows_est;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nchunks; i++) {
        chunk *c = &r->chunks[i];
        uint64_t b = __atomic_load_n(&c->copied, __ATOMIC_RELAXED);
        cp.done_bytes += (double)(b < c->est_bytes ? b : c->est_bytes);
        if (!c->done) {
            cp.rows += (double)__atomic_load_n(&c->rows_seen, __ATOMIC_RELAXED);
            inflight[c->t - r->tables] += b;
        }
    }
    for (int i = 0; i < r->ntables; i++) {
        table *t = &r->tables[i];
        if (t->skipped || !t->nchunks)
            continue;
        cp.rows += (double)t->rows;
        cp.tables_total++;
        if (t->chunks_done == t->nchunks)
            cp.tables_done++;
    }
    lm_buf_puts(&text, lm_progress_copy_line(line, sizeof line, &cp));
    for (int i = 0; r->prog.live && !last && i < r->ntables; i++) {
        table *t = &r->tables[i];
        char name[256], b1[16];
        if (!t->nchunks || t->chunks_started == 0 || t->chunks_done == t->nchunks)
            continue;
        snprintf(line, sizeof line, "\n  %s: %d of %d chunks, %s",
                 lm_progress_name(name, sizeof name, t->qname), t->chunks_done, t->nchunks,
                 lm_progress_bytes(b1, sizeof b1, (double)(t->copied + inflight[i])));
        lm_buf_puts(&text, line);
    }
    pthread_mutex_unlock(&r->mu);
    lm_buf_u8(&text, '\0');
    lm_progress_show(&r->prog, (char *)text.data);
    if (last)
        lm_progress_finish(&r->prog);
    free(text.data);
    free(inflight);
}

void copy_chunks(run *r)
{
    int nw = r->o->jobs;
    pthread_t *th;
    int64_t start = lm_monotonic_us();

    if (r->nchunks == 0)
        return;
    if (nw > r->nchunks)
        nw = r->nchunks;
    r->next = 0;
    active_workers = nw;
    th = lm_malloc((size_t)nw * sizeof *th);
    for (int i = 0; i < nw; i++)
        if (pthread_create(&th[i], NULL, worker, r) != 0)
            lm_fatal(LM_EXIT_FAILURE, "could not start a worker thread");
    for (;;) {
        int active;
        usleep(50 * 1000);
        pthread_mutex_lock(&r->mu);
        active = active_workers;
        pthread_mutex_unlock(&r->mu);
        if (active == 0)
            break;
        copy_progress(r, start, false);
    }
    for (int i = 0; i < nw; i++)
        pthread_join(th[i], NULL);
    free(th);
    copy_progress(r, start, true);
}

/* ---------- post-data: the target's index builds ---------- */

typedef struct post_watch {
    run *r;
    const char *target;
    int64_t start_us;
    volatile int stop;
} post_watch;

static void post_progress(post_watch *w, PGconn *conn, bool last)
{
    lm_buf text = {0};
    char line[512], secs[16];
    PGresult *res = NULL;
    int n = 0;

    if (conn && !last)
        res = PQexec(conn,
                     /* the index; the table while a CREATE INDEX has none yet */
                     "SELECT coalesce(ni.nspname, nc.nspname), coalesce(i.relname, c.relname, p.relid::text),"
                     " p.command, p.phase, p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total"
                     " FROM pg_stat_progress_create_index p"
                     " LEFT JOIN pg_class i ON i.oid = p.index_relid"
                     " LEFT JOIN pg_namespace ni ON ni.oid = i.relnamespace"
                     " LEFT JOIN pg_class c ON c.oid = p.relid"
                     " LEFT JOIN pg_namespace nc ON nc.oid = c.relnamespace"
                     " WHERE p.datid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                     " ORDER BY p.pid");
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
        n = PQntuples(res);
    snprintf(line, sizeof line, "post-data: %s %s, %d index build%s in flight",
             last ? "done in" : "running for",
             lm_progress_secs(secs, sizeof secs, (double)(lm_monotonic_us() - w->start_us) / 1e6),
             n, n == 1 ? "" : "s");
    lm_buf_puts(&text, line);
    for (int i = 0; i < n; i++) {
        char *name = PQgetisnull(res, i, 0) ? lm_strdup(PQgetvalue(res, i, 1))
                                            : lm_qualified(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
        lm_index_progress ip = {
            .name = name, .command = PQgetvalue(res, i, 2), .phase = PQgetvalue(res, i, 3),
            .blocks_done = strtoll(PQgetvalue(res, i, 4), NULL, 10),
            .blocks_total = strtoll(PQgetvalue(res, i, 5), NULL, 10),
            .tuples_done = strtoll(PQgetvalue(res, i, 6), NULL, 10),
            .tuples_total = strtoll(PQgetvalue(res, i, 7), NULL, 10)};
        lm_buf_puts(&text, "\n  ");
        lm_buf_puts(&text, lm_progress_index_line(line, sizeof line, &ip));
        free(name);
    }
    PQclear(res);
    lm_buf_u8(&text, '\0');
    lm_progress_show(&w->r->prog, (char *)text.data);
    free(text.data);
}

static void *post_watch_thread(void *arg)
{
    post_watch *w = arg;
    char *err = NULL;
    PGconn *conn = lm_connect_try(w->target, "target", 0, &err);
    int64_t last_query = 0;

    /* no connection: the elapsed time alone */
    free(err);
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
        int64_t now = lm_monotonic_us();
        if (now - last_query >= 1000000) {
            last_query = now;
            post_progress(w, conn, false);
        }
        usleep(50 * 1000);
    }
    if (conn)
        PQfinish(conn);
    return NULL;
}

int watch_post_data(run *r, const char *target, int (*restore)(void *), void *arg)
{
    post_watch w = {.r = r, .target = target, .start_us = lm_monotonic_us()};
    pthread_t th;
    bool watching = r->prog.on && pthread_create(&th, NULL, post_watch_thread, &w) == 0;
    int rc = restore(arg);

    if (watching) {
        __atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
        pthread_join(th, NULL);
        if (rc == 0) {
            lm_progress_due(&r->prog, true);
            post_progress(&w, NULL, true);
        }
        lm_progress_finish(&r->prog);
    }
    return rc;
}

void print_summary(run *r)
{
    char b1[32], name[512];
    int shown = 0;
    for (int i = 0; i < r->ntables; i++) {
        table *t = &r->tables[i];
        if (!t->nchunks)
            continue;
        if (!shown++)
            fprintf(stderr, "%-40s %8s %12s %10s %8s\n", "table", "chunks", "rows", "bytes", "seconds");
        fprintf(stderr, "%-40s %8d %12" PRIu64 " %10s %8.1f\n",
                lm_progress_name(name, sizeof name, t->qname), t->nchunks, t->rows,
                fmt_bytes(t->copied, b1, sizeof b1), (double)(t->end_us - t->start_us) / 1e6);
    }
}
