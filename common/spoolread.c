/* The spool's follower (rules 6 to 8 in spool.h): which segment to read
 * next, whether the one being read changed under the reader, pruning. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "spool.h"

struct spool_follower {
    char *dir;
    int fd;            /* the segment being read, -1 if none */
    char *path;        /* its path; NULL: nothing read yet (starting over) */
    spool_seg seg;     /* its name as listed; END known once finished */
    uint64_t read;     /* the stream is read up to here (segment ENDs,
                        * trailers): where the next segment must go on from */
};

/* Rule 7: whether the stream goes on in segment s after pos. A segment
 * holds what lies between its START and its END, and segments of a
 * restarted writer may overlap what was read (it restarts at the slot's
 * confirmed position, which can be behind): what matters is whether s
 * reaches past pos, never whether it starts before it. */
static bool goes_on(const spool_seg *s, uint64_t pos, spool_current_fn current, void *arg)
{
    if (s->partial)
        return !current(s, arg);
    /* a segment without a transaction (START = END) holds an end record
     * alone, which must still be read */
    if (!(s->end > pos || (s->end == pos && s->start == pos)))
        return false;
    return !current(s, arg);
}

int spool_pick_next(const spool_seg *segs, int n, uint64_t pos, spool_current_fn current, void *arg)
{
    for (int i = 0; i < n; i++) {
        const spool_seg *s = &segs[i];
        if (current ? goes_on(s, pos, current, arg)
                    : s->partial || s->end > pos || s->end == 0)   /* not wholly applied */
            return i;
    }
    return -1;
}

/* Whether the segment file s is the file being read (sf->fd), whatever its
 * name is now. */
static bool is_current(const spool_seg *s, void *arg)
{
    const spool_follower *sf = arg;
    struct stat sb, cb;
    char *fpath = lm_psprintf("%s/%s", sf->dir, s->name);
    bool same = stat(fpath, &sb) == 0 && fstat(sf->fd, &cb) == 0 && sb.st_ino == cb.st_ino &&
                sb.st_dev == cb.st_dev;
    free(fpath);
    return same;
}

/* How far the stream has been read. */
static uint64_t position(const spool_follower *sf, uint64_t applied, uint64_t grouped)
{
    uint64_t pos = applied;
    if (grouped > pos)
        pos = grouped;
    if (sf->read > pos)
        pos = sf->read;
    if (sf->seg.end > pos)   /* known once the segment is finished */
        pos = sf->seg.end;
    return pos;
}

spool_follower *spool_follower_new(const char *dir)
{
    spool_follower *sf = lm_malloc(sizeof *sf);

    memset(sf, 0, sizeof *sf);
    sf->dir = lm_strdup(dir);
    sf->fd = -1;
    return sf;
}

void spool_follower_free(spool_follower *sf)
{
    if (!sf)
        return;
    spool_follower_restart(sf);
    free(sf->dir);
    free(sf);
}

/* The listing's choice (rule 7), or -1; *out gets a copy of it. */
static int choose(spool_follower *sf, uint64_t applied, uint64_t grouped, spool_seg *out)
{
    spool_seg *segs = NULL;
    int n = spool_list(sf->dir, &segs);
    int i;

    if (n < 0)
        lm_fatal(LM_EXIT_IO, "could not read spool directory \"%s\": %s", sf->dir, strerror(errno));
    if (sf->path)
        i = spool_pick_next(segs, n, position(sf, applied, grouped), is_current, sf);
    else
        i = spool_pick_next(segs, n, applied, NULL, NULL);
    if (i >= 0 && out) {
        *out = segs[i];
        out->name = lm_strdup(segs[i].name);
    }
    if (n > 0)
        spool_list_free(segs, n);
    return i;
}

int spool_follower_next(spool_follower *sf, uint64_t applied, uint64_t grouped)
{
    spool_seg s;

    if (choose(sf, applied, grouped, &s) < 0)
        return -1;
    if (sf->fd >= 0)
        close(sf->fd);
    sf->fd = -1;
    if (sf->path && sf->seg.end > sf->read)
        sf->read = sf->seg.end;
    free(sf->seg.name);
    sf->seg = s;
    free(sf->path);
    sf->path = lm_psprintf("%s/%s", sf->dir, s.name);
    sf->fd = open(sf->path, O_RDONLY | O_CLOEXEC);
    if (sf->fd < 0) {
        if (errno == ENOENT) {
            /* renamed or pruned between listing and opening: list again */
            free(sf->path);
            sf->path = NULL;
            return spool_follower_next(sf, applied, grouped);
        }
        lm_fatal(LM_EXIT_IO, "could not open \"%s\": %s", sf->path, strerror(errno));
    }
    lm_debug("reading %s", s.name);
    return sf->fd;
}

bool spool_follower_more(spool_follower *sf, uint64_t applied, uint64_t grouped)
{
    spool_seg *segs = NULL;
    int n = spool_list(sf->dir, &segs);
    bool found = spool_pick_next(segs, n, position(sf, applied, grouped), is_current, sf) >= 0;

    if (n > 0)
        spool_list_free(segs, n);
    return found;
}

void spool_follower_trailer(spool_follower *sf, uint64_t last_lsn)
{
    if (last_lsn > sf->read)
        sf->read = last_lsn;
}

/* Rule 8 at the end of what the file holds: a partial finished under the
 * reader keeps its inode (a rename); one recovered by a restarted writer
 * is cut back in place, or removed and begun anew. */
int spool_follower_check(spool_follower *sf, lm_reader *r)
{
    struct stat sb, cur;
    char *partial;
    int ret = 1;

    if (fstat(sf->fd, &cur) != 0 || (uint64_t)cur.st_size < lm_reader_file_offset(r)) {
        lm_reader_set_error(r, LM_SPOOL_RESTART,
                            "%s was cut back under the reader (lm-decode restarted)", sf->path);
        return -1;
    }
    if (!sf->seg.partial)
        return 0;
    partial = lm_psprintf("%s/%s", sf->dir, sf->seg.name);
    if (stat(partial, &sb) == 0) {
        if (sb.st_ino != cur.st_ino) {
            lm_reader_set_error(r, LM_SPOOL_RESTART,
                                "%s was replaced under the reader (lm-decode restarted)", sf->path);
            ret = -1;
        }
    } else {
        /* finished (renamed), or recovered into a new file, or removed */
        spool_seg *segs;
        int n = spool_list(sf->dir, &segs);
        bool same = false;
        for (int i = 0; i < n; i++) {
            if (segs[i].partial || segs[i].start != sf->seg.start)
                continue;
            if (is_current(&segs[i], sf)) {
                same = true;
                if ((uint64_t)cur.st_size == lm_reader_file_offset(r)) {
                    sf->seg.end = segs[i].end;
                    ret = 0;
                }
            }
        }
        if (n > 0)
            spool_list_free(segs, n);
        if (!same) {
            lm_reader_set_error(r, LM_SPOOL_RESTART,
                                "%s was replaced under the reader (lm-decode restarted)", sf->path);
            ret = -1;
        }
    }
    free(partial);
    return ret;
}

bool spool_follower_replaced(spool_follower *sf)
{
    return sf->seg.partial && sf->fd >= 0 && !is_current(&sf->seg, sf);
}

bool spool_follower_partial(const spool_follower *sf)
{
    return sf->seg.partial;
}

const char *spool_follower_path(const spool_follower *sf)
{
    return sf->path;
}

void spool_follower_restart(spool_follower *sf)
{
    if (sf->fd >= 0)
        close(sf->fd);
    sf->fd = -1;
    free(sf->path);
    sf->path = NULL;
    free(sf->seg.name);
    memset(&sf->seg, 0, sizeof sf->seg);
    sf->read = 0;
}

void spool_prune(const char *dir, uint64_t durable)
{
    spool_seg *segs;
    int n = spool_list(dir, &segs);
    bool removed = false;

    for (int i = 0; i < n; i++) {
        char *path;
        if (segs[i].partial || segs[i].end > durable || segs[i].end == 0)
            continue;
        path = lm_psprintf("%s/%s", dir, segs[i].name);
        if (unlink(path) == 0) {
            removed = true;
            lm_debug("pruned %s", segs[i].name);
        } else if (errno != ENOENT)
            lm_warning("could not remove \"%s\": %s", path, strerror(errno));
        free(path);
    }
    if (n > 0)
        spool_list_free(segs, n);
    if (removed)
        spool_sync_dir(dir);
}
