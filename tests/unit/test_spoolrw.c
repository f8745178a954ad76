/* common/spool.c and spoolread.c on files: the writer's segments, the
 * recovery of a partial left by a crash (cut back in place to its last
 * cut point), and a follower reading a growing partial that is finished,
 * cut back or replaced under it (spool.h, rules 3, 5 and 8). Each test
 * works in a directory of its own under /tmp. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "unit.h"

/* ------------------------------------------------------------- helpers */

static char *tmp_dir(void)
{
    char tmpl[] = "/tmp/lm-unit-spoolrw.XXXXXX";
    char *d = mkdtemp(tmpl);

    /* recovery reports what it cuts: expected here, and shown with
     * LM_LOG_LEVEL=info */
    if (!getenv("LM_LOG_LEVEL"))
        lm_log_set_level(LM_LOG_WARNING);

    CHECK(d != NULL);
    return d ? lm_strdup(d) : NULL;
}

/* remove dir and the files in it */
static void rm_dir(const char *dir)
{
    spool_seg *segs;
    int n = spool_list(dir, &segs);
    static const char *const others[] = {"lm-decode.lock", "lm-decode.reserve"};
    char path[512];

    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, segs[i].name);
        unlink(path);
    }
    if (n > 0)
        spool_list_free(segs, n);
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, others[i]);
        unlink(path);
    }
    CHECK(rmdir(dir) == 0);
}

static void put_header(lm_writer *w, uint64_t start)
{
    lm_record h = {.type = LM_REC_HEADER,
                   .u.header = {.version = LM_FORMAT_VERSION, .sysid = 42, .dbname = "db",
                                .slot = "s1", .publication = "", .encoding = "", .producer = "",
                                .start_lsn = start}};

    lm_writer_put(w, &h);
}

/* Begin a transaction ending at end; with a transactional message of
 * pad bytes that do not compress, so that its frame has some size. */
static void put_begin(lm_writer *w, uint64_t end, uint32_t pad)
{
    lm_record r;

    memset(&r, 0, sizeof r);
    r.type = LM_REC_BEGIN;
    r.u.begin.final_lsn = end;
    r.u.begin.xid = 700;
    lm_writer_put(w, &r);
    if (pad) {
        uint8_t *junk = lm_malloc(pad);
        uint32_t x = 2463534242u;
        for (uint32_t i = 0; i < pad; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            junk[i] = (uint8_t)x;
        }
        memset(&r, 0, sizeof r);
        r.type = LM_REC_MESSAGE;
        r.u.message.flags = 1;
        r.u.message.lsn = end - 1;
        r.u.message.prefix = "unit";
        r.u.message.len = pad;
        r.u.message.content = junk;
        lm_writer_put(w, &r);
        free(junk);
    }
}

static void put_commit(lm_writer *w, uint64_t end)
{
    lm_record r;

    memset(&r, 0, sizeof r);
    r.type = LM_REC_COMMIT;
    r.u.commit.commit_lsn = end - 8;
    r.u.commit.end_lsn = end;
    lm_writer_put(w, &r);
}

static void put_position(lm_writer *w, uint64_t lsn)
{
    lm_record r;

    memset(&r, 0, sizeof r);
    r.type = LM_REC_POSITION;
    r.u.position.lsn = lsn;
    lm_writer_put(w, &r);
}

/* A new segment at start as lm-decode begins one: header, cut. */
static lm_writer *begin_segment(spool_writer *sw, uint64_t start)
{
    lm_writer *w = spool_writer_begin(sw, start);

    put_header(w, start);
    spool_writer_cut(sw, start);
    return w;
}

/* A complete transaction ending at end, then a cut there. */
static void put_xact(spool_writer *sw, lm_writer *w, uint64_t end)
{
    put_begin(w, end, 0);
    put_commit(w, end);
    spool_writer_cut(sw, end);
}

static bool exists(const char *dir, const char *name)
{
    char path[512];
    struct stat sb;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

static ino_t inode_of(const char *dir, const char *name, off_t *size)
{
    char path[512];
    struct stat sb;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!CHECK(stat(path, &sb) == 0))
        return 0;
    if (size)
        *size = sb.st_size;
    return sb.st_ino;
}

/* The record types of a segment file, as letters, and its trailer's
 * last_lsn (0 if none); "!" and the reader's code for an error. */
static void read_types(const char *dir, const char *name, char *types, size_t cap,
                       uint64_t *last_lsn)
{
    char path[512];
    int fd, rc;
    lm_reader *r;
    lm_record rec;
    size_t n = 0;

    *last_lsn = 0;
    types[0] = '\0';
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_RDONLY);
    if (!CHECK(fd >= 0))
        return;
    r = lm_reader_new(fd, path);
    while ((rc = lm_reader_next(r, &rec)) > 0 && n + 1 < cap) {
        types[n++] = (char)rec.type;
        if (rec.type == LM_REC_TRAILER)
            *last_lsn = rec.u.trailer.last_lsn;
    }
    if (rc < 0)
        n += (size_t)snprintf(types + n, cap - n, "!%d", lm_reader_errcode(r));
    types[n < cap ? n : cap - 1] = '\0';
    lm_reader_free(r);
    close(fd);
}

/* A spool in a directory of its own, with a writer, its partial at 0x100
 * and a follower. For the follower's tests a script plays the writer's
 * part at each end of input: act(t, step) changes the spool, false when
 * the script is over. */
typedef struct sp_t {
    char *dir;
    spool_writer *sw;
    lm_writer *w;            /* of the open segment; NULL if none */
    spool_follower *sf;
    bool (*act)(struct sp_t *t, int step);
    int step;
    char checks[16];         /* what spool_follower_check said: '+' 1, '0', '-' -1 */
    int errcode;             /* the reader's error, if any */
    char error[512];
} sp_t;

#define PARTIAL_100 "seg-0000000000000100.lmz.partial"

/* With a complete transaction up to xact_end in the partial unless that
 * is 0; false if there is no directory for it. */
static bool sp_start(sp_t *t, bool (*act)(sp_t *, int), uint64_t xact_end)
{
    uint64_t end;

    memset(t, 0, sizeof *t);
    t->dir = tmp_dir();
    t->act = act;
    if (!t->dir)
        return false;
    t->sw = spool_writer_open(t->dir, &end);
    CHECK_U64(end, 0);
    t->w = begin_segment(t->sw, 0x100);
    if (xact_end)
        put_xact(t->sw, t->w, xact_end);
    t->sf = spool_follower_new(t->dir);
    return true;
}

/* The writer dies: its partial stays as it is. */
static void sp_crash(sp_t *t)
{
    spool_writer_close(t->sw);
    t->sw = NULL;
    t->w = NULL;
}

static void sp_end(sp_t *t)
{
    spool_follower_free(t->sf);
    spool_writer_close(t->sw);
    rm_dir(t->dir);
    free(t->dir);
}

static int count_segments(const char *dir)
{
    spool_seg *segs = NULL;
    int n = spool_list(dir, &segs);

    if (n > 0)
        spool_list_free(segs, n);
    return n;
}

/* -------------------------------------------------------------- writer */

static void writer_segments(void)
{
    char *dir = tmp_dir(), *spool;
    spool_writer *sw;
    lm_writer *w;
    uint64_t end = 99, last;
    char types[32];
    struct stat sb;

    if (!dir)
        return;
    spool = lm_psprintf("%s/spool", dir);
    /* a new spool: created private, empty, reserve set aside */
    sw = spool_writer_open(spool, &end);
    CHECK_U64(end, 0);
    CHECK(stat(spool, &sb) == 0 && (sb.st_mode & 0777) == 0700);
    CHECK(exists(spool, "lm-decode.reserve"));
    w = begin_segment(sw, 0x100);
    CHECK(exists(spool, PARTIAL_100));
    put_xact(sw, w, 0x180);
    CHECK_U64(spool_writer_last_cut(sw), 0x180);
    CHECK_U64(spool_writer_sync(sw), 0x180);
    /* rotation: only when ready, then by size or age */
    CHECK(!spool_writer_due(sw, false, 0, 0));
    CHECK(!spool_writer_due(sw, true, UINT64_C(1) << 40, INT64_C(1) << 50));
    CHECK(spool_writer_due(sw, true, 1, INT64_C(1) << 50));
    CHECK(spool_writer_due(sw, true, UINT64_C(1) << 40, 0));
    CHECK_U64(spool_writer_finish(sw, 0x180, true), 0x180);
    CHECK(!exists(spool, PARTIAL_100));
    read_types(spool, "seg-0000000000000100-0000000000000180.lmz", types, sizeof types, &last);
    CHECK_STR(types, "HBCZ");
    CHECK_U64(last, 0x180);
    /* the next one, ended by the writer's end record: no trailer */
    w = begin_segment(sw, 0x180);
    put_position(w, 0x200);
    {
        lm_record e = {.type = LM_REC_END, .u.end = {.reason = LM_END_SHUTDOWN, .detail = ""}};
        lm_writer_put(w, &e);
    }
    spool_writer_finish(sw, 0x200, false);
    read_types(spool, "seg-0000000000000180-0000000000000200.lmz", types, sizeof types, &last);
    CHECK_STR(types, "HPE");
    spool_writer_close(sw);
    /* a restarted writer goes on from the last END */
    sw = spool_writer_open(spool, &end);
    CHECK_U64(end, 0x200);
    spool_writer_close(sw);
    rm_dir(spool);
    rmdir(dir);
    free(spool);
    free(dir);
}

/* ------------------------------------------------------------ recovery */

static void append(const char *dir, const char *name, const void *p, size_t n)
{
    char path[512];
    int fd;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_APPEND);
    if (CHECK(fd >= 0)) {
        CHECK(write(fd, p, n) == (ssize_t)n);
        close(fd);
    }
}

static void recovery_cuts_in_place(void)
{
    static const char final[] = "seg-0000000000000100-0000000000000250.lmz";
    sp_t t;
    uint64_t last;
    ino_t before, after;
    off_t size_before = 0, size_after = 0;
    char types[32];

    if (!sp_start(&t, NULL, 0x180))
        return;
    put_xact(t.sw, t.w, 0x200);
    put_position(t.w, 0x250);
    spool_writer_cut(t.sw, 0x250);
    /* a transaction the crash cuts off, across a frame end that is no
     * cut point (lm-decode ends frames inside a huge transaction) */
    put_begin(t.w, 0x300, 3000);
    lm_writer_flush(t.w, LM_FLUSH_FRAME);
    put_begin(t.w, 0x300, 100);
    spool_writer_sync(t.sw);
    sp_crash(&t);
    /* and a torn write: the start of a frame that never got written */
    append(t.dir, PARTIAL_100, "\x28\xb5\x2f\xfd\x00\x58\x61", 7);
    before = inode_of(t.dir, PARTIAL_100, &size_before);

    CHECK_U64(spool_recover_partial(t.dir, PARTIAL_100, 0x100), 0x250);
    CHECK(!exists(t.dir, PARTIAL_100));
    after = inode_of(t.dir, final, &size_after);
    CHECK(after == before);              /* the same file, cut in place */
    CHECK(size_after < size_before - 3000);
    read_types(t.dir, final, types, sizeof types, &last);
    CHECK_STR(types, "HBCBCPZ");         /* a clean end after the trailer */
    CHECK_U64(last, 0x250);
    CHECK_I64(count_segments(t.dir), 1);
    sp_end(&t);
}

/* A partial without a complete transaction is removed by the next writer,
 * which goes on from its START. */
static void recovery_removes_empty(void)
{
    sp_t t;
    uint64_t end;

    if (!sp_start(&t, NULL, 0))
        return;
    put_begin(t.w, 0x180, 10);
    spool_writer_sync(t.sw);
    sp_crash(&t);
    CHECK(exists(t.dir, PARTIAL_100));
    t.sw = spool_writer_open(t.dir, &end);
    CHECK_U64(end, 0x100);
    CHECK_I64(count_segments(t.dir), 0);
    sp_end(&t);
}

/* ------------------------------------------------------------ follower */

static int follow_wait(lm_reader *r, void *arg)
{
    sp_t *t = arg;
    int rc = spool_follower_check(t->sf, r);
    size_t n = strlen(t->checks);

    if (n + 1 < sizeof t->checks) {
        t->checks[n] = rc > 0 ? '+' : rc == 0 ? '0' : '-';
        t->checks[n + 1] = '\0';
    }
    if (rc != 1)
        return rc;
    return t->act(t, t->step++) ? 1 : 0;
}

/* Read the segment the follower opens next to its end (or error): the
 * record types as letters; lm_reader_next's last result. */
static int follow_read(sp_t *t, uint64_t applied, char *types, size_t cap)
{
    int fd = spool_follower_next(t->sf, applied, 0);
    lm_reader *r;
    lm_record rec;
    size_t n = 0;
    int rc;

    types[0] = '\0';
    if (!CHECK(fd >= 0))
        return -1;
    r = lm_reader_new(fd, spool_follower_path(t->sf));
    lm_reader_set_wait(r, follow_wait, t);
    while ((rc = lm_reader_next(r, &rec)) > 0 && n + 1 < cap) {
        types[n++] = (char)rec.type;
        if (rec.type == LM_REC_TRAILER)
            spool_follower_trailer(t->sf, rec.u.trailer.last_lsn);
    }
    types[n] = '\0';
    if (rc < 0) {
        t->errcode = lm_reader_errcode(r);
        snprintf(t->error, sizeof t->error, "%s", lm_reader_error(r));
    }
    lm_reader_free(r);
    return rc;
}

/* the writer goes on, then finishes the segment */
static bool act_finish(sp_t *t, int step)
{
    if (step == 0) {
        put_xact(t->sw, t->w, 0x200);
        spool_writer_sync(t->sw);
        return true;
    }
    if (step == 1) {
        spool_writer_finish(t->sw, 0x200, true);
        t->w = NULL;
        return true;
    }
    return false;
}

static void follow_finished(void)
{
    sp_t t;
    char types[32];

    if (!sp_start(&t, act_finish, 0x180))
        return;
    spool_writer_sync(t.sw);
    /* the partial grows, is finished under the reader and read to its end */
    CHECK_I64(follow_read(&t, 0, types, sizeof types), 0);
    CHECK_STR(types, "HBCBCZ");
    CHECK_STR(t.checks, "++0");
    CHECK(spool_follower_partial(t.sf));   /* what was opened */
    CHECK(spool_follower_replaced(t.sf));  /* no partial of that name now */
    /* nothing after it yet; then the next partial, from its END */
    CHECK(!spool_follower_more(t.sf, 0, 0));
    CHECK_I64(spool_follower_next(t.sf, 0, 0), -1);
    t.w = begin_segment(t.sw, 0x200);
    CHECK(spool_follower_more(t.sf, 0, 0));
    if (CHECK(spool_follower_next(t.sf, 0, 0) >= 0))
        CHECK_STR(strrchr(spool_follower_path(t.sf), '/'), "/seg-0000000000000200.lmz.partial");
    sp_end(&t);
}

/* The writer crashes (at the reader's first wait) and a new one starts:
 * it recovers the partial, then begins a segment at its END when the
 * partial held no complete transaction. */
static bool act_crash(sp_t *t, int step)
{
    uint64_t end;

    if (step != 0)
        return false;
    sp_crash(t);
    t->sw = spool_writer_open(t->dir, &end);
    if (end == 0x100)
        t->w = begin_segment(t->sw, end);
    return true;
}

/* Follow the partial through a writer's crash and restart: the reader is
 * told to read the spool again, saying why; what it read before is in
 * want. */
static void follow_restart(sp_t *t, const char *want, const char *why)
{
    char types[32], msg[128];

    CHECK_I64(follow_read(t, 0, types, sizeof types), -1);
    CHECK_STR(types, want);
    CHECK_STR(t->checks, "+-");
    CHECK_I64(t->errcode, LM_SPOOL_RESTART);
    snprintf(msg, sizeof msg, "%s was %s under the reader", PARTIAL_100, why);
    if (!CHECK(strstr(t->error, msg) != NULL))
        unit_note("error: %s", t->error);
    spool_follower_restart(t->sf);
}

/* after a complete transaction, inside a large one: the partial is cut
 * back in place, to less than the reader read */
static void follow_cut_back(void)
{
    sp_t t;
    char types[32];

    if (!sp_start(&t, act_crash, 0x180))
        return;
    put_begin(t.w, 0x300, 4000);
    lm_writer_flush(t.w, LM_FLUSH_WRITE);
    spool_writer_sync(t.sw);
    follow_restart(&t, "HBCBM", "cut back");
    /* read again from the applied position: the recovered segment */
    CHECK_I64(spool_follower_next(t.sf, 0x180, 0), -1);   /* wholly applied */
    CHECK_I64(follow_read(&t, 0, types, sizeof types), 0);
    CHECK_STR(types, "HBCZ");
    sp_end(&t);
}

/* before any complete transaction: the partial is removed and a new one
 * begun under the same name */
static void follow_replaced(void)
{
    sp_t t;

    if (!sp_start(&t, act_crash, 0))
        return;
    put_begin(t.w, 0x180, 0);
    lm_writer_flush(t.w, LM_FLUSH_WRITE);
    follow_restart(&t, "HB", "replaced");
    CHECK(spool_follower_next(t.sf, 0, 0) >= 0);   /* the new partial */
    CHECK(spool_follower_partial(t.sf));
    sp_end(&t);
}

/* ---------------------------------------------------------------- prune */

static void prune(void)
{
    sp_t t;
    spool_seg *segs = NULL;
    int n;

    if (!sp_start(&t, NULL, 0x180))
        return;
    spool_writer_finish(t.sw, 0x180, true);
    t.w = begin_segment(t.sw, 0x180);
    put_xact(t.sw, t.w, 0x200);
    spool_writer_finish(t.sw, 0x200, true);
    t.w = begin_segment(t.sw, 0x200);
    /* what is durable on the target goes; the partial never */
    spool_prune(t.dir, 0x1FF);
    n = spool_list(t.dir, &segs);
    if (CHECK_I64(n, 2)) {
        CHECK_STR(segs[0].name, "seg-0000000000000180-0000000000000200.lmz");
        CHECK(segs[1].partial);
    }
    if (n > 0)
        spool_list_free(segs, n);
    spool_prune(t.dir, UINT64_MAX);
    CHECK_I64(count_segments(t.dir), 1);
    CHECK(exists(t.dir, "seg-0000000000000200.lmz.partial"));
    sp_end(&t);
}

const unit_test unit_spoolrw_tests[] = {
    {"writer: segments begun, cut, finished and named", writer_segments},
    {"recovery cuts a partial back in place to its last cut point", recovery_cuts_in_place},
    {"recovery removes a partial without a complete transaction", recovery_removes_empty},
    {"follower: a partial finished under the reader", follow_finished},
    {"follower: a partial cut back under the reader", follow_cut_back},
    {"follower: a partial replaced under the reader", follow_replaced},
    {"prune: finished segments at or below the durable position", prune},
    {NULL, NULL},
};
