#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "lsn.h"
#include "spool.h"
#include "stream.h"

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
    /* The good prefix goes into a new file, never cut in place: a reader
     * following the partial keeps its old file (and sees by the inode that
     * it was replaced) instead of reading on into bytes that changed. */
    {
        char *tmp = lm_psprintf("%s/%s.recover", dir, name);
        int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        char *final = spool_final_name(start, s.cut_lsn);
        char *fpath = lm_psprintf("%s/%s", dir, final);
        char buf[65536];
        uint64_t left = s.cut_file;
        lm_writer *w;
        lm_record t;

        if (out < 0)
            lm_fatal(LM_EXIT_IO, "could not create \"%s\": %s", tmp, strerror(errno));
        if (lseek(fd, 0, SEEK_SET) < 0)
            lm_fatal(LM_EXIT_IO, "could not seek in \"%s\": %s", path, strerror(errno));
        while (left > 0) {
            ssize_t n = read(fd, buf, left < sizeof buf ? (size_t)left : sizeof buf);
            if (n <= 0)
                lm_fatal(LM_EXIT_IO, "could not read \"%s\": %s", path,
                         n < 0 ? strerror(errno) : "unexpected end of file");
            if (write(out, buf, (size_t)n) != n)
                lm_fatal(LM_EXIT_IO, "could not write \"%s\": %s", tmp, strerror(errno));
            left -= (uint64_t)n;
        }
        w = lm_writer_new(out, tmp, true, 1);
        memset(&t, 0, sizeof t);
        t.type = LM_REC_TRAILER;
        t.u.trailer.last_lsn = s.cut_lsn;
        lm_writer_put(w, &t);
        lm_writer_flush(w, LM_FLUSH_FRAME);
        lm_writer_sync(w);
        lm_writer_free(w);
        close(out);
        close(fd);
        if (rename(tmp, fpath) != 0)
            lm_fatal(LM_EXIT_IO, "could not rename \"%s\": %s", tmp, strerror(errno));
        if (unlink(path) != 0)
            lm_fatal(LM_EXIT_IO, "could not remove \"%s\": %s", path, strerror(errno));
        spool_sync_dir(dir);
        lm_info("recovered partial segment as %s (cut at its last complete transaction, %s)",
                final, lm_lsn_format(s.cut_lsn, a));
        free(final);
        free(fpath);
        free(tmp);
    }
    free(path);
    free(s.mark_stream);
    free(s.mark_file);
    return s.cut_lsn;
}
