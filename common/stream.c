#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "crc32c.h"
#include "exitcodes.h"
#include "log.h"
#include "lsn.h"
#include "sig.h"
#include "stream.h"

#define OUT_HIGH_WATER (256 * 1024)
#define IN_CHUNK (128 * 1024)

/* ------------------------------------------------------------------ writer */

struct lm_writer {
    int fd;
    char *name;
    ZSTD_CCtx *cctx;       /* NULL: plain */
    lm_buf block;          /* LM_BLOCK_HEADER bytes of header, then payload */
    lm_buf body;           /* scratch for one record body */
    lm_buf out;            /* bytes for fd, not written yet */
    uint64_t offset;
    uint64_t file_bytes;
    uint64_t records;
    bool frame_open;       /* bytes went into the zstd frame since it last ended */
    void (*wait)(void *);  /* while fd is full */
    void *wait_arg;
};

void lm_writer_set_wait(lm_writer *w, void (*fn)(void *), void *arg)
{
    w->wait = fn;
    w->wait_arg = arg;
}

lm_writer *lm_writer_new(int fd, const char *name, bool compress, int level)
{
    lm_writer *w = lm_malloc(sizeof *w);

    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->name = lm_strdup(name);
    if (compress) {
        w->cctx = ZSTD_createCCtx();
        if (!w->cctx)
            lm_fatal(LM_EXIT_FAILURE, "could not create a zstd context");
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level > 0 ? level : 1);
    }
    return w;
}

static void write_out(lm_writer *w)
{
    size_t done = 0;

    while (done < w->out.len) {
        ssize_t n = write(w->fd, w->out.data + done, w->out.len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && w->wait) {
                struct pollfd pfd = {w->fd, POLLOUT, 0};
                (void)poll(&pfd, 1, 1000);
                w->wait(w->wait_arg);
                continue;
            }
            if (errno == EPIPE)
                lm_fatal(LM_EXIT_IO, "could not write to %s: the reading side closed the pipe",
                         w->name);
            lm_fatal(LM_EXIT_IO, "could not write to %s: %s", w->name, strerror(errno));
        }
        done += (size_t)n;
    }
    w->file_bytes += w->out.len;
    w->out.len = 0;
}

static void zstd_check(lm_writer *w, size_t rc)
{
    if (ZSTD_isError(rc))
        lm_fatal(LM_EXIT_FAILURE, "zstd compression of %s failed: %s", w->name,
                 ZSTD_getErrorName(rc));
}

/* Feed bytes (possibly none) through zstd with the given directive. */
static void compress_bytes(lm_writer *w, const void *p, size_t n, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {p, n, 0};

    if (n > 0)
        w->frame_open = true;
    for (;;) {
        size_t rc;
        ZSTD_outBuffer out;

        lm_buf_reserve(&w->out, ZSTD_CStreamOutSize());
        out.dst = w->out.data + w->out.len;
        out.size = w->out.cap - w->out.len;
        out.pos = 0;
        rc = ZSTD_compressStream2(w->cctx, &out, &in, mode);
        zstd_check(w, rc);
        w->out.len += out.pos;
        if (w->out.len >= OUT_HIGH_WATER)
            write_out(w);
        if (mode == ZSTD_e_continue ? in.pos == in.size : rc == 0)
            break;
    }
}

static void close_block(lm_writer *w)
{
    uint8_t *h;
    uint32_t len, crc;

    if (w->block.len <= LM_BLOCK_HEADER)
        return;
    h = w->block.data;
    len = (uint32_t)(w->block.len - LM_BLOCK_HEADER);
    h[0] = 'L';
    h[1] = 'M';
    h[2] = LM_FORMAT_VERSION;
    h[3] = 0;
    lm_put_be32(h + 4, len);
    crc = lm_crc32c(0, h, 8);
    crc = lm_crc32c(crc, h + LM_BLOCK_HEADER, len);
    lm_put_be32(h + 8, crc);
    if (w->cctx)
        compress_bytes(w, w->block.data, w->block.len, ZSTD_e_continue);
    else {
        lm_buf_put(&w->out, w->block.data, w->block.len);
        if (w->out.len >= OUT_HIGH_WATER)
            write_out(w);
    }
    w->offset += w->block.len;
    w->block.len = 0;
}

void lm_writer_put_raw(lm_writer *w, uint8_t type, const void *body, size_t len)
{
    size_t total = 1 + 10 + len;

    /* a reader refuses a bigger block: never write one */
    if (len > LM_BLOCK_PAYLOAD_MAX - 1 - 10)
        lm_fatal(LM_EXIT_FAILURE,
                 "%s: %s record of %zu bytes is larger than a stream block may hold "
                 "(%u bytes, see lm-format(5))",
                 w->name, lm_rectype_name(type), len, LM_BLOCK_PAYLOAD_MAX);

    if (w->block.len > LM_BLOCK_HEADER &&
        w->block.len - LM_BLOCK_HEADER + total > LM_BLOCK_MAX)
        close_block(w);
    if (w->block.len == 0) {
        lm_buf_reserve(&w->block, LM_BLOCK_HEADER);
        w->block.len = LM_BLOCK_HEADER;
    }
    lm_buf_u8(&w->block, type);
    lm_buf_varint(&w->block, len);
    lm_buf_put(&w->block, body, len);
    w->records++;
}

void lm_writer_put(lm_writer *w, const lm_record *r)
{
    w->body.len = 0;
    lm_record_encode(&w->body, r);
    lm_writer_put_raw(w, r->type, w->body.data, w->body.len);
}

void lm_writer_flush(lm_writer *w, enum lm_flush how)
{
    close_block(w);
    if (how == LM_FLUSH_BLOCK)
        return;
    /* a frame with nothing in it is not ended again: no empty frames,
     * and nothing written after the fsync that closes a segment */
    if (w->cctx && w->frame_open) {
        compress_bytes(w, NULL, 0, how == LM_FLUSH_FRAME ? ZSTD_e_end : ZSTD_e_flush);
        if (how == LM_FLUSH_FRAME)
            w->frame_open = false;
    }
    write_out(w);
}

void lm_writer_sync(lm_writer *w)
{
    if (fsync(w->fd) != 0 && errno != EINVAL && errno != EROFS)
        lm_fatal(LM_EXIT_IO, "could not fsync %s: %s", w->name, strerror(errno));
}

uint64_t lm_writer_offset(const lm_writer *w) { return w->offset + w->block.len; }
uint64_t lm_writer_file_bytes(const lm_writer *w) { return w->file_bytes; }
uint64_t lm_writer_pending(const lm_writer *w) { return w->out.len + w->block.len; }
uint64_t lm_writer_records(const lm_writer *w) { return w->records; }

void lm_writer_free(lm_writer *w)
{
    if (!w)
        return;
    lm_writer_flush(w, LM_FLUSH_FRAME);
    ZSTD_freeCCtx(w->cctx);
    lm_buf_free(&w->block);
    lm_buf_free(&w->body);
    lm_buf_free(&w->out);
    free(w->name);
    free(w);
}

/* ------------------------------------------------------------------ reader */

enum { DETECT_UNKNOWN, DETECT_PLAIN, DETECT_ZSTD };

struct lm_reader {
    int fd;
    char *name;
    int detected;
    ZSTD_DCtx *dctx;
    bool frame_end;          /* zstd decoder sits at a frame boundary */
    uint8_t *in;             /* raw bytes from fd */
    size_t in_len, in_pos;
    bool in_eof;
    lm_buf plain;            /* decoded bytes */
    size_t plain_pos;        /* next unconsumed byte in plain */
    uint64_t plain_base;     /* stream offset of plain.data[0] */
    const uint8_t *block;    /* current block payload (points into plain) */
    size_t block_len, bpos;
    uint64_t block_off;
    uint64_t rec_off;
    size_t rec_size;
    uint64_t file_off;
    bool started;            /* a header was seen in this stream */
    lm_arena arena;
    lm_arena hdr_arena;
    lm_record header;
    bool have_header;
    lm_reader_wait_fn wait;
    void *wait_arg;
    lm_reader_frame_fn frame_cb;
    void *frame_arg;
    int errcode;
    char err[1024];
};

lm_reader *lm_reader_new(int fd, const char *name)
{
    lm_reader *r = lm_malloc(sizeof *r);

    memset(r, 0, sizeof *r);
    r->in = lm_malloc(IN_CHUNK);
    lm_reader_reset_input(r, fd, name);
    return r;
}

void lm_reader_reset_input(lm_reader *r, int fd, const char *name)
{
    free(r->name);
    r->fd = fd;
    r->name = lm_strdup(name);
    r->detected = DETECT_UNKNOWN;
    if (r->dctx)
        ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only);
    r->frame_end = true;
    r->in_len = r->in_pos = 0;
    r->in_eof = false;
    r->plain.len = 0;
    r->plain_pos = 0;
    r->plain_base = 0;
    r->block = NULL;
    r->block_len = r->bpos = 0;
    r->block_off = r->rec_off = 0;
    r->file_off = 0;
    r->errcode = 0;
    r->err[0] = '\0';
    r->started = false;     /* every file starts with its header */
}

void lm_reader_set_wait(lm_reader *r, lm_reader_wait_fn fn, void *arg)
{
    r->wait = fn;
    r->wait_arg = arg;
}

void lm_reader_set_frame_cb(lm_reader *r, lm_reader_frame_fn fn, void *arg)
{
    r->frame_cb = fn;
    r->frame_arg = arg;
}

void lm_reader_set_error(lm_reader *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->errcode = code;
}

const char *lm_reader_error(const lm_reader *r) { return r->err; }
int lm_reader_errcode(const lm_reader *r) { return r->errcode; }
const char *lm_reader_name(const lm_reader *r) { return r->name; }
uint64_t lm_reader_block_offset(const lm_reader *r) { return r->block_off; }
uint64_t lm_reader_record_offset(const lm_reader *r) { return r->rec_off; }
uint64_t lm_reader_file_offset(const lm_reader *r) { return r->file_off; }
size_t lm_reader_record_size(const lm_reader *r) { return r->rec_size; }

const uint8_t *lm_reader_record_raw(const lm_reader *r, size_t *len)
{
    *len = r->rec_size;
    return r->block + (r->bpos - r->rec_size);
}

bool lm_reader_buffered(const lm_reader *r)
{
    return r->bpos < r->block_len || r->plain.len > r->plain_pos || r->in_pos < r->in_len;
}
const lm_record *lm_reader_header(const lm_reader *r) { return r->have_header ? &r->header : NULL; }
bool lm_reader_compressed(const lm_reader *r) { return r->detected == DETECT_ZSTD; }
bool lm_reader_at_frame_end(const lm_reader *r) { return r->detected != DETECT_ZSTD || r->frame_end; }

static size_t avail(const lm_reader *r) { return r->plain.len - r->plain_pos; }

/* Read raw bytes from fd; 1 = some, 0 = end of input, -1 = error. */
static int read_raw(lm_reader *r)
{
    for (;;) {
        ssize_t n;

        if (r->in_pos == r->in_len)
            r->in_pos = r->in_len = 0;
        if (r->in_len == IN_CHUNK) /* caller consumes before asking again */
            return 1;
        n = read(r->fd, r->in + r->in_len, IN_CHUNK - r->in_len);
        if (n < 0) {
            if (errno == EINTR && lm_interrupted) {
                /* SIGINT/SIGTERM while waiting for input: stop now, not
                 * when the next byte comes */
                lm_reader_set_error(r, LM_EXIT_OK, "interrupted");
                return -1;
            }
            if (errno == EINTR)
                continue;
            lm_reader_set_error(r, LM_EXIT_IO, "could not read %s: %s", r->name, strerror(errno));
            return -1;
        }
        if (n == 0) {
            int rc = r->wait ? r->wait(r, r->wait_arg) : 0;
            if (rc < 0) {
                if (!r->errcode && !lm_interrupted)
                    lm_reader_set_error(r, LM_EXIT_FAILURE, "reading %s was stopped", r->name);
                return -1;
            }
            if (rc == 0)
                return 0;
            continue;
        }
        r->in_len += (size_t)n;
        r->file_off += (uint64_t)n;
        return 1;
    }
}

/* Room in plain for the next read or decompression step, want being the
 * bytes still missing for what the caller needs. The buffer grows
 * geometrically, but not past what is needed: a block of 200 MB takes
 * 200 MB, not the 256 MB of the next power of two. */
static void plain_room(lm_reader *r, size_t want)
{
    const size_t unit = IN_CHUNK > ZSTD_DStreamOutSize() ? IN_CHUNK : ZSTD_DStreamOutSize();
    size_t step = want > 0 && want < unit ? want : unit;
    size_t useful = r->plain.len + (want > unit ? want : unit);
    size_t cap;

    if (r->plain.cap - r->plain.len >= step)
        return;
    cap = r->plain.cap ? r->plain.cap * 2 : unit;
    while (cap < r->plain.len + step)
        cap *= 2;
    if (cap > useful)
        cap = useful;
    r->plain.data = lm_realloc(r->plain.data, cap);
    r->plain.cap = cap;
}

/* Decode more bytes into plain (want: how many the caller still misses);
 * 1 = some, 0 = end of input, -1 = error. */
static int fill(lm_reader *r, size_t want)
{
    /* drop consumed bytes so the buffer does not grow without bound */
    if (r->plain_pos > 0 && (r->plain_pos >= r->plain.len || r->plain_pos > (1u << 20))) {
        size_t left = avail(r);
        memmove(r->plain.data, r->plain.data + r->plain_pos, left);
        r->plain_base += r->plain_pos;
        r->plain.len = left;
        r->plain_pos = 0;
    }
    for (;;) {
        if (r->in_pos == r->in_len) {
            int rc = read_raw(r);
            if (rc <= 0)
                return rc;
        }
        if (r->detected == DETECT_UNKNOWN) {
            if (r->in_len - r->in_pos < 4) {
                int rc = read_raw(r);
                if (rc < 0)
                    return rc;
                if (rc > 0 && r->in_len - r->in_pos < 4)
                    continue;
            }
            if (r->in_len - r->in_pos >= 4 &&
                lm_get_be32(r->in + r->in_pos) == 0x28B52FFDu) {
                r->detected = DETECT_ZSTD;
                if (!r->dctx) {
                    if (!(r->dctx = ZSTD_createDCtx()))
                        lm_fatal(LM_EXIT_FAILURE, "could not create a zstd context");
                    ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, LM_ZSTD_WINDOWLOG_MAX);
                }
                r->frame_end = false;
            } else
                r->detected = DETECT_PLAIN;
        }
        if (r->detected == DETECT_PLAIN) {
            size_t n = r->in_len - r->in_pos;
            plain_room(r, want);
            if (n > r->plain.cap - r->plain.len)
                n = r->plain.cap - r->plain.len;
            memcpy(r->plain.data + r->plain.len, r->in + r->in_pos, n);
            r->plain.len += n;
            r->in_pos += n;
            return 1;
        } else {
            ZSTD_inBuffer in = {r->in, r->in_len, r->in_pos};
            ZSTD_outBuffer out;
            size_t rc;

            plain_room(r, want);
            out.dst = r->plain.data + r->plain.len;
            out.size = r->plain.cap - r->plain.len;
            out.pos = 0;
            rc = ZSTD_decompressStream(r->dctx, &out, &in);
            r->in_pos = in.pos;
            if (ZSTD_isError(rc)) {
                lm_reader_set_error(r, LM_EXIT_CORRUPT,
                                    "%s: zstd data corrupt near compressed byte %llu: %s",
                                    r->name, (unsigned long long)(r->file_off - (r->in_len - r->in_pos)),
                                    ZSTD_getErrorName(rc));
                return -1;
            }
            r->frame_end = rc == 0;
            r->plain.len += out.pos;
            if (rc == 0 && r->frame_cb)
                r->frame_cb(r, r->plain_base + r->plain.len,
                            r->file_off - (r->in_len - r->in_pos), r->frame_arg);
            if (out.pos > 0)
                return 1;
        }
    }
}

/* Make n bytes available; 1 = yes, 0 = clean end (nothing pending),
 * -1 = error (including truncation). */
static int need(lm_reader *r, size_t n)
{
    while (avail(r) < n) {
        int rc = fill(r, n - avail(r));
        if (rc < 0)
            return -1;
        if (rc == 0) {
            uint64_t at = r->plain_base + r->plain_pos;
            if (avail(r) == 0 && lm_reader_at_frame_end(r))
                return 0;
            lm_reader_set_error(r, LM_EXIT_TRUNCATED,
                                "%s: stream truncated at offset %llu (%s)", r->name,
                                (unsigned long long)at,
                                avail(r) ? "inside a block" : "inside a zstd frame");
            return -1;
        }
    }
    return 1;
}

static int read_block(lm_reader *r)
{
    const uint8_t *h;
    uint32_t len, crc;
    int rc;

    r->block_off = r->plain_base + r->plain_pos;
    rc = need(r, LM_BLOCK_HEADER);
    if (rc <= 0)
        return rc;
    h = r->plain.data + r->plain_pos;
    if (h[0] != 'L' || h[1] != 'M') {
        if (r->block_off == 0)
            lm_reader_set_error(r, LM_EXIT_CORRUPT,
                                "%s: not an lm change stream (bad magic at offset 0)", r->name);
        else
            lm_reader_set_error(r, LM_EXIT_CORRUPT, "%s: bad block magic at offset %llu",
                                r->name, (unsigned long long)r->block_off);
        return -1;
    }
    if (h[2] == 0) {
        lm_reader_set_error(r, LM_EXIT_CORRUPT, "%s: bad block version 0 at offset %llu", r->name,
                            (unsigned long long)r->block_off);
        return -1;
    }
    if (h[2] > LM_FORMAT_VERSION) {
        lm_reader_set_error(r, LM_EXIT_MISMATCH,
                            "%s: format version %u at offset %llu; this build reads version %d",
                            r->name, h[2], (unsigned long long)r->block_off, LM_FORMAT_VERSION);
        return -1;
    }
    len = lm_get_be32(h + 4);
    /* before anything is allocated for it: a few bytes of zstd can claim
     * and produce gigabytes */
    if (len == 0 || len > LM_BLOCK_PAYLOAD_MAX) {
        lm_reader_set_error(r, LM_EXIT_CORRUPT,
                            "%s: bad block length %u at offset %llu (a block holds 1 to %u bytes)",
                            r->name, len, (unsigned long long)r->block_off, LM_BLOCK_PAYLOAD_MAX);
        return -1;
    }
    rc = need(r, LM_BLOCK_HEADER + (size_t)len);
    if (rc == 0) {
        lm_reader_set_error(r, LM_EXIT_TRUNCATED, "%s: stream truncated inside the block at offset %llu",
                            r->name, (unsigned long long)r->block_off);
        return -1;
    }
    if (rc < 0)
        return rc;
    h = r->plain.data + r->plain_pos;
    crc = lm_crc32c(lm_crc32c(0, h, 8), h + LM_BLOCK_HEADER, len);
    if (crc != lm_get_be32(h + 8)) {
        lm_reader_set_error(r, LM_EXIT_CORRUPT, "%s: checksum mismatch in the block at offset %llu",
                            r->name, (unsigned long long)r->block_off);
        return -1;
    }
    r->block = h + LM_BLOCK_HEADER;
    r->block_len = len;
    r->bpos = 0;
    r->plain_pos += LM_BLOCK_HEADER + len;
    return 1;
}

static void keep_header(lm_reader *r, const lm_record *h)
{
    lm_arena *a = &r->hdr_arena;
    r->header = *h;
#define KEEP(f) r->header.u.header.f = lm_arena_strndup(a, h->u.header.f, strlen(h->u.header.f))
    KEEP(dbname);
    KEEP(slot);
    KEEP(publication);
    KEEP(encoding);
    KEEP(producer);
#undef KEEP
    r->have_header = true;
}

static int check_header(lm_reader *r, const lm_record *h)
{
    if (h->u.header.version == 0) {
        lm_reader_set_error(r, LM_EXIT_CORRUPT, "%s: header with format version 0 at offset %llu",
                            r->name, (unsigned long long)r->rec_off);
        return -1;
    }
    if (h->u.header.version > LM_FORMAT_VERSION) {
        lm_reader_set_error(r, LM_EXIT_MISMATCH,
                            "%s: stream format version %u; this build reads version %d",
                            r->name, h->u.header.version, LM_FORMAT_VERSION);
        return -1;
    }
    if (!r->have_header) {
        keep_header(r, h);
        return 0;
    }
    if (h->u.header.sysid != r->header.u.header.sysid ||
        strcmp(h->u.header.dbname, r->header.u.header.dbname) != 0 ||
        strcmp(h->u.header.slot, r->header.u.header.slot) != 0) {
        lm_reader_set_error(r, LM_EXIT_MISMATCH,
                            "%s: stream at offset %llu is from another source (system %llu, "
                            "database \"%s\", slot \"%s\"; expected system %llu, database \"%s\", slot \"%s\")",
                            r->name, (unsigned long long)r->rec_off,
                            (unsigned long long)h->u.header.sysid, h->u.header.dbname,
                            h->u.header.slot, (unsigned long long)r->header.u.header.sysid,
                            r->header.u.header.dbname, r->header.u.header.slot);
        return -1;
    }
    return 0;
}

/* The timestamp a record carries, if any (false: none). */
static bool record_time(const lm_record *rec, int64_t *t)
{
    switch (rec->type) {
    case LM_REC_HEADER: *t = rec->u.header.created; return true;
    case LM_REC_BEGIN: *t = rec->u.begin.commit_ts; return true;
    case LM_REC_COMMIT: *t = rec->u.commit.commit_ts; return true;
    case LM_REC_POSITION: *t = rec->u.position.time; return true;
    default: return false;
    }
}

int lm_reader_next(lm_reader *r, lm_record *rec)
{
    if (r->errcode)
        return -1;
    lm_arena_reset(&r->arena);
    for (;;) {
        lm_cursor c;
        uint8_t type;
        uint64_t len;
        const uint8_t *body;

        if (r->bpos >= r->block_len) {
            int rc = read_block(r);
            if (rc <= 0)
                return rc;
        }
        lm_cursor_init(&c, r->block + r->bpos, r->block_len - r->bpos);
        r->rec_off = r->block_off + LM_BLOCK_HEADER + r->bpos;
        if (!lm_cur_u8(&c, &type) || !lm_cur_varint(&c, &len) || len > lm_cursor_left(&c) ||
            !lm_cur_raw(&c, (size_t)len, &body)) {
            lm_reader_set_error(r, LM_EXIT_CORRUPT, "%s: bad record framing at offset %llu",
                                r->name, (unsigned long long)r->rec_off);
            return -1;
        }
        r->rec_size = (size_t)(c.p - (r->block + r->bpos));
        r->bpos = (size_t)(c.p - r->block);
        if (!lm_rectype_known(type)) {
            if (lm_rectype_critical(type)) {
                lm_reader_set_error(r, LM_EXIT_MISMATCH,
                                    "%s: record type '%c' at offset %llu is unknown to this version",
                                    r->name, type, (unsigned long long)r->rec_off);
                return -1;
            }
            continue;
        }
        if (!lm_record_decode(type, body, (size_t)len, rec, &r->arena)) {
            lm_reader_set_error(r, LM_EXIT_CORRUPT, "%s: malformed %s record at offset %llu",
                                r->name, lm_rectype_name(type), (unsigned long long)r->rec_off);
            return -1;
        }
        {
            /* no server writes a commit time in year 10000 or before year
             * 1; such a value would fail on the target at every restart */
            int64_t t;
            if (record_time(rec, &t) && !lm_pgtime_valid(t)) {
                lm_reader_set_error(r, LM_EXIT_CORRUPT,
                                    "%s: malformed %s record at offset %llu: timestamp %lld is "
                                    "out of range (years 1 to 9999)",
                                    r->name, lm_rectype_name(type), (unsigned long long)r->rec_off,
                                    (long long)t);
                return -1;
            }
        }
        if (type == LM_REC_HEADER) {
            if (check_header(r, rec) < 0)
                return -1;
            r->started = true;
        } else if (!r->started) {
            lm_reader_set_error(r, LM_EXIT_CORRUPT,
                                "%s: stream does not start with a header (found %s at offset %llu)",
                                r->name, lm_rectype_name(type), (unsigned long long)r->rec_off);
            return -1;
        }
        return 1;
    }
}

void lm_reader_free(lm_reader *r)
{
    if (!r)
        return;
    ZSTD_freeDCtx(r->dctx);
    lm_buf_free(&r->plain);
    lm_arena_free(&r->arena);
    lm_arena_free(&r->hdr_arena);
    free(r->in);
    free(r->name);
    free(r);
}
