/* The spool's names, its writer and the recovery of a leftover partial
 * (rules in spool.h); the follower is in spoolread.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "lsn.h"
#include "privdir.h"
#include "spool.h"
#include "stream.h"

/* ---------------------------------------------------------------- names */

/* Exactly 16 upper-case hex digits, as spool_*_name write them.  Not
 * scanf's %16llX: it also takes leading blanks, a sign, "0x" and lower
 * case, so that files lm-decode never wrote ("seg--000000000000001-...",
 * a copy named in lower case) were listed, read and pruned as segments. */
static bool parse_lsn16(const char *s, uint64_t *v)
{
    uint64_t r = 0;

    for (int i = 0; i < 16; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            r = r << 4 | (uint64_t)(c - '0');
        else if (c >= 'A' && c <= 'F')
            r = r << 4 | (uint64_t)(c - 'A' + 10);
        else
            return false;
    }
    *v = r;
    return true;
}

bool spool_parse_name(const char *name, spool_seg *seg)
{
    uint64_t a, b;
    size_t len = strlen(name);

    memset(seg, 0, sizeof *seg);
    if (strncmp(name, "seg-", 4) != 0)
        return false;
    if (len == 4 + 16 + 1 + 16 + 4 && name[20] == '-' && strcmp(name + 37, ".lmz") == 0 &&
        parse_lsn16(name + 4, &a) && parse_lsn16(name + 21, &b)) {
        seg->start = a;
        seg->end = b;
        return true;
    }
    if (len == 4 + 16 + 12 && strcmp(name + 20, ".lmz.partial") == 0 &&
        parse_lsn16(name + 4, &a)) {
        seg->start = a;
        seg->partial = true;
        return true;
    }
    return false;
}

char *spool_partial_name(uint64_t start)
{
    return lm_psprintf("seg-%016" PRIX64 ".lmz.partial", start);
}

char *spool_final_name(uint64_t start, uint64_t end)
{
    return lm_psprintf("seg-%016" PRIX64 "-%016" PRIX64 ".lmz", start, end);
}

static int cmp_seg(const void *a, const void *b)
{
    const spool_seg *x = a, *y = b;
    if (x->partial != y->partial)
        return x->partial ? 1 : -1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return strcmp(x->name, y->name);
}

int spool_list(const char *dir, spool_seg **segs)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0, cap = 0;
    spool_seg *v = NULL;

    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL) {
        spool_seg s;
        if (!spool_parse_name(de->d_name, &s))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = lm_realloc(v, (size_t)cap * sizeof *v);
        }
        s.name = lm_strdup(de->d_name);
        v[n++] = s;
    }
    closedir(d);
    if (n)
        qsort(v, (size_t)n, sizeof *v, cmp_seg);
    *segs = v;
    return n;
}

void spool_list_free(spool_seg *segs, int n)
{
    for (int i = 0; i < n; i++)
        free(segs[i].name);
    free(segs);
}

void spool_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        lm_fatal(LM_EXIT_IO, "could not open spool directory \"%s\": %s", dir, strerror(errno));
    if (fsync(fd) != 0)
        lm_fatal(LM_EXIT_IO, "could not fsync spool directory \"%s\": %s", dir, strerror(errno));
    close(fd);
}

/* ------------------------------------------------------------- recovery */

/* The scan of a partial: frame ends are the only places it can be cut. */
typedef struct scan {
    uint64_t *mark_stream;   /* frame ends not yet reached by records */
    uint64_t *mark_file;
    size_t nmarks, cap, head;
    bool in_xact;
    bool have_lsn;
    uint64_t lsn;            /* last durable position read */
    uint64_t cut_file;       /* best cut so far: compressed offset */
    uint64_t cut_lsn;
    bool have_cut;
} scan;

static void on_frame(lm_reader *r, uint64_t stream_off, uint64_t file_off, void *arg)
{
    scan *s = arg;
    if (s->nmarks == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->mark_stream = lm_realloc(s->mark_stream, s->cap * sizeof(uint64_t));
        s->mark_file = lm_realloc(s->mark_file, s->cap * sizeof(uint64_t));
    }
    s->mark_stream[s->nmarks] = stream_off;
    s->mark_file[s->nmarks] = file_off;
    s->nmarks++;
}

/* A frame end at or before stream offset off has been reached by records. */
static void reach(scan *s, uint64_t off)
{
    while (s->head < s->nmarks && s->mark_stream[s->head] <= off) {
        if (!s->in_xact && s->have_lsn) {
            s->have_cut = true;
            s->cut_file = s->mark_file[s->head];
            s->cut_lsn = s->lsn;
        }
        s->head++;
    }
}

/* Write all of len bytes at off. false with errno set on failure; a write
 * that makes no progress is reported as ENOSPC, never as errno 0. */
static bool pwrite_all(int fd, const void *p, size_t len, off_t off)
{
    const char *c = p;

    while (len > 0) {
        ssize_t n = pwrite(fd, c, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (n == 0) {
            errno = ENOSPC;
            return false;
        }
        c += n;
        len -= (size_t)n;
        off += n;
    }
    return true;
}

/* A file of RESERVE_BYTES in the spool, written (not sparse), that
 * recovery gives back when a full disk leaves no room for a trailer. */
#define RESERVE_NAME "lm-decode.reserve"
#define RESERVE_BYTES (64 * 1024)

static bool spool_release_reserve(const char *dir)
{
    char *path = lm_psprintf("%s/" RESERVE_NAME, dir);
    struct stat sb;
    bool had = stat(path, &sb) == 0 && sb.st_size > 0;

    if (had && unlink(path) != 0)
        had = false;
    free(path);
    return had;
}

/* Set aside the reserve; only a warning if there is no room. */
static void spool_make_reserve(const char *dir)
{
    char *path = lm_psprintf("%s/" RESERVE_NAME, dir);
    struct stat sb;
    int fd;

    if (stat(path, &sb) == 0 && sb.st_size >= RESERVE_BYTES) {
        free(path);
        return;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        static const char zero[RESERVE_BYTES];
        bool ok = pwrite_all(fd, zero, sizeof zero, 0) && fsync(fd) == 0;
        close(fd);
        if (!ok) {
            /* a full disk: no reserve until there is room again */
            lm_warning("could not set aside %d kB in the spool for recovery after a full disk: %s",
                       RESERVE_BYTES / 1024, strerror(errno));
            unlink(path);
        }
    }
    free(path);
}

/* The trailer frame of a recovered segment, encoded in memory (through a
 * pipe: the writer writes to a file descriptor), so that writing it can
 * fail with a message of our own. */
static void encode_trailer(lm_buf *out, uint64_t last_lsn)
{
    int p[2];
    lm_writer *w;
    lm_record t;
    char buf[4096];
    ssize_t n;

    if (pipe(p) != 0)
        lm_fatal(LM_EXIT_IO, "could not create a pipe: %s", strerror(errno));
    w = lm_writer_new(p[1], "a pipe", true, 1);
    memset(&t, 0, sizeof t);
    t.type = LM_REC_TRAILER;
    t.u.trailer.last_lsn = last_lsn;
    lm_writer_put(w, &t);
    lm_writer_flush(w, LM_FLUSH_FRAME);
    lm_writer_free(w);
    close(p[1]);
    while ((n = read(p[0], buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            lm_fatal(LM_EXIT_IO, "could not read a pipe: %s", strerror(errno));
        }
        lm_buf_put(out, buf, (size_t)n);
    }
    close(p[0]);
}

uint64_t spool_recover_partial(const char *dir, const char *name, uint64_t start)
{
    char *path = lm_psprintf("%s/%s", dir, name);
    int fd = open(path, O_RDWR);
    lm_reader *rd;
    lm_record rec;
    scan s;
    int rc;
    char a[LM_LSN_BUFSZ];

    memset(&s, 0, sizeof s);
    {
        /* the copy an older lm-decode made here and could not finish */
        char *old = lm_psprintf("%s.recover", path);
        if (unlink(old) == 0)
            lm_info("removed \"%s\", left by an unfinished recovery", old);
        free(old);
    }
    if (fd < 0)
        lm_fatal(LM_EXIT_IO, "could not open \"%s\": %s", path, strerror(errno));
    rd = lm_reader_new(fd, path);
    lm_reader_set_frame_cb(rd, on_frame, &s);
    while ((rc = lm_reader_next(rd, &rec)) > 0) {
        switch (rec.type) {
        case LM_REC_BEGIN: case LM_REC_INSERT: case LM_REC_UPDATE: case LM_REC_DELETE:
        case LM_REC_TRUNCATE: case LM_REC_ORIGIN:
            s.in_xact = true;
            break;
        case LM_REC_MESSAGE:
            if (rec.u.message.flags & 1)
                s.in_xact = true;
            break;
        case LM_REC_COMMIT:
            s.in_xact = false;
            s.have_lsn = true;
            s.lsn = rec.u.commit.end_lsn;
            break;
        case LM_REC_POSITION:
            if (!s.in_xact) {
                s.have_lsn = true;
                if (rec.u.position.lsn > s.lsn)
                    s.lsn = rec.u.position.lsn;
            }
            break;
        case LM_REC_END:
            s.in_xact = false;   /* an abandoned transaction ends here */
            break;
        default:
            break;
        }
        reach(&s, lm_reader_record_offset(rd) + lm_reader_record_size(rd));
    }
    /* an error or truncation past the last good frame is exactly what is cut */
    if (rc < 0)
        lm_info("partial segment %s: %s; cutting back to the last complete transaction",
                name, lm_reader_error(rd));
    lm_reader_free(rd);

    if (!s.have_cut) {
        close(fd);
        if (unlink(path) != 0)
            lm_fatal(LM_EXIT_IO, "could not remove \"%s\": %s", path, strerror(errno));
        spool_sync_dir(dir);
        lm_info("removed partial segment %s: it held no complete transaction", name);
        free(path);
        free(s.mark_stream);
        free(s.mark_file);
        return start;
    }
    /* Cut in place: a copy of the good prefix would need as much free
     * space as the segment, which a full disk (the usual reason for a
     * partial) does not have. Truncating frees space; the trailer frame
     * then goes where the cut is. A reader following the partial sees the
     * file shrink under it, or its name change, and reads the spool again
     * from its applied position (spool.h, rule 8). */
    {
        char *final = spool_final_name(start, s.cut_lsn);
        char *fpath = lm_psprintf("%s/%s", dir, final);
        lm_buf trailer = {0};
        bool ok;

        encode_trailer(&trailer, s.cut_lsn);
        {
            struct stat sb;
            if (fstat(fd, &sb) == 0)
                lm_debug("partial segment %s: cut at byte %" PRIu64 " of %lld, trailer of %zu bytes",
                         name, s.cut_file, (long long)sb.st_size, trailer.len);
        }
        if (ftruncate(fd, (off_t)s.cut_file) != 0)
            lm_fatal(LM_EXIT_IO, "could not cut back \"%s\": %s", path, strerror(errno));
        if (fsync(fd) != 0)
            lm_fatal(LM_EXIT_IO, "could not fsync \"%s\": %s", path, strerror(errno));
        ok = pwrite_all(fd, trailer.data, trailer.len, (off_t)s.cut_file);
        if (!ok && errno == ENOSPC && spool_release_reserve(dir)) {
            lm_info("no room for the trailer of %s: using the spool's reserve", name);
            ok = ftruncate(fd, (off_t)s.cut_file) == 0 &&
                 pwrite_all(fd, trailer.data, trailer.len, (off_t)s.cut_file);
        }
        if (!ok || fsync(fd) != 0) {
            int e = errno;
            /* what was cut stays cut, at a frame end: a later run finds
             * the same cut and tries again */
            if (ftruncate(fd, (off_t)s.cut_file) != 0) {
                /* the error below is reported either way; (void) does not
                 * quiet -Wunused-result (glibc's _FORTIFY_SOURCE) */
            }
            (void)fsync(fd);
            lm_error("could not finish partial segment \"%s\" after cutting it back to its last "
                     "complete transaction (%s): %s", path, lm_lsn_format(s.cut_lsn, a),
                     strerror(e));
            if (e == ENOSPC || e == EDQUOT)
                lm_hint("Free space on the spool's file system (lm-apply --prune removes "
                        "applied segments) and start lm-decode again; nothing is lost.");
            exit(LM_EXIT_IO);
        }
        close(fd);
        if (rename(path, fpath) != 0)
            lm_fatal(LM_EXIT_IO, "could not rename \"%s\": %s", path, strerror(errno));
        spool_sync_dir(dir);
        lm_info("recovered partial segment as %s (cut at its last complete transaction, %s)",
                final, lm_lsn_format(s.cut_lsn, a));
        lm_buf_free(&trailer);
        free(final);
        free(fpath);
    }
    free(path);
    free(s.mark_stream);
    free(s.mark_file);
    return s.cut_lsn;
}

/* --------------------------------------------------------------- writer */

struct spool_writer {
    char *dir;
    int lock_fd;            /* holds the lock on lm-decode.lock */
    int fd;                 /* the open partial, -1 if none */
    char *partial;          /* its file name */
    lm_writer *w;
    uint64_t start;         /* its START */
    uint64_t cut_lsn;       /* its last cut point */
    int64_t opened_us;
};

spool_writer *spool_writer_open(const char *dir, uint64_t *end)
{
    spool_writer *sw = lm_malloc(sizeof *sw);
    spool_seg *segs;
    int n;
    uint64_t e = 0;
    char *lockpath;

    memset(sw, 0, sizeof *sw);
    sw->dir = lm_strdup(dir);
    sw->fd = -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        lm_fatal(LM_EXIT_IO, "could not create spool directory \"%s\": %s", dir, strerror(errno));
    /* lm-apply applies what the segments say: nobody else may put one there */
    lm_require_private_dir(dir, "spool directory");
    lockpath = lm_psprintf("%s/lm-decode.lock", dir);
    sw->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sw->lock_fd < 0)
        lm_fatal(LM_EXIT_IO, "could not open \"%s\": %s", lockpath, strerror(errno));
    if (flock(sw->lock_fd, LOCK_EX | LOCK_NB) != 0)
        lm_fatal(LM_EXIT_PREFLIGHT, "another lm-decode is writing into spool \"%s\"", dir);
    free(lockpath);
    n = spool_list(dir, &segs);
    if (n < 0)
        lm_fatal(LM_EXIT_IO, "could not read spool directory \"%s\": %s", dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        if (segs[i].partial)
            e = spool_recover_partial(dir, segs[i].name, segs[i].start > e ? segs[i].start : e);
        else if (segs[i].end > e)
            e = segs[i].end;
    }
    spool_list_free(segs, n);
    spool_make_reserve(dir);
    *end = e;
    return sw;
}

lm_writer *spool_writer_begin(spool_writer *sw, uint64_t start)
{
    char *path;

    sw->start = start;
    sw->partial = spool_partial_name(start);
    path = lm_psprintf("%s/%s", sw->dir, sw->partial);
    sw->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (sw->fd < 0)
        lm_fatal(LM_EXIT_IO, "could not create spool segment \"%s\": %s", path, strerror(errno));
    sw->w = lm_writer_new(sw->fd, path, true, 3);
    free(path);
    /* the new name is durable before anything in the file is acknowledged */
    spool_sync_dir(sw->dir);
    sw->opened_us = lm_monotonic_us();
    sw->cut_lsn = start;
    return sw->w;
}

void spool_writer_cut(spool_writer *sw, uint64_t lsn)
{
    lm_writer_flush(sw->w, LM_FLUSH_FRAME);
    sw->cut_lsn = lsn;
}

uint64_t spool_writer_last_cut(const spool_writer *sw)
{
    return sw->cut_lsn;
}

uint64_t spool_writer_sync(spool_writer *sw)
{
    lm_writer_flush(sw->w, LM_FLUSH_WRITE);
    lm_writer_sync(sw->w);
    return sw->cut_lsn;
}

bool spool_writer_due(const spool_writer *sw, bool ready, uint64_t max_bytes, int64_t max_age_us)
{
    if (!ready)
        return false;
    return lm_writer_file_bytes(sw->w) + lm_writer_pending(sw->w) >= max_bytes ||
           lm_monotonic_us() - sw->opened_us >= max_age_us;
}

uint64_t spool_writer_finish(spool_writer *sw, uint64_t end, bool trailer)
{
    char *from, *to, *final;

    if (trailer) {
        lm_record t;
        memset(&t, 0, sizeof t);
        t.type = LM_REC_TRAILER;
        t.u.trailer.last_lsn = end;
        t.u.trailer.records = lm_writer_records(sw->w);
        lm_writer_put(sw->w, &t);
    }
    spool_writer_cut(sw, end);
    spool_writer_sync(sw);
    lm_writer_free(sw->w);
    sw->w = NULL;
    close(sw->fd);
    sw->fd = -1;
    from = lm_psprintf("%s/%s", sw->dir, sw->partial);
    final = spool_final_name(sw->start, end);
    to = lm_psprintf("%s/%s", sw->dir, final);
    if (rename(from, to) != 0)
        lm_fatal(LM_EXIT_IO, "could not rename \"%s\": %s", from, strerror(errno));
    spool_sync_dir(sw->dir);
    free(final);
    free(to);
    free(from);
    free(sw->partial);
    sw->partial = NULL;
    return end;
}

void spool_writer_close(spool_writer *sw)
{
    if (!sw)
        return;
    if (sw->w) {
        lm_writer_free(sw->w);
        close(sw->fd);
    }
    close(sw->lock_fd);
    free(sw->partial);
    free(sw->dir);
    free(sw);
}
