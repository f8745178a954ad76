/* common/spool.c: segment names from LSNs and back, the listing order;
 * common/spoolread.c: which segment a follower reads next (spool.h,
 * rule 7), among the names a restarted writer leaves too. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"
#include "unit.h"

static void names(void)
{
    char *s;

    s = spool_final_name(UINT64_C(0x16B374D848), UINT64_C(0x16B374D9A0));
    CHECK_STR(s, "seg-00000016B374D848-00000016B374D9A0.lmz");
    free(s);
    s = spool_partial_name(UINT64_C(0x16B374D848));
    CHECK_STR(s, "seg-00000016B374D848.lmz.partial");
    free(s);
    s = spool_final_name(0, UINT64_MAX);
    CHECK_STR(s, "seg-0000000000000000-FFFFFFFFFFFFFFFF.lmz");
    free(s);
    s = spool_partial_name(UINT64_MAX);
    CHECK_STR(s, "seg-FFFFFFFFFFFFFFFF.lmz.partial");
    free(s);
}

static void parse(void)
{
    spool_seg seg;

    if (CHECK(spool_parse_name("seg-00000016B374D848-00000016B374D9A0.lmz", &seg))) {
        CHECK_U64(seg.start, UINT64_C(0x16B374D848));
        CHECK_U64(seg.end, UINT64_C(0x16B374D9A0));
        CHECK(!seg.partial);
        CHECK(seg.name == NULL);
    }
    if (CHECK(spool_parse_name("seg-00000016B374D848.lmz.partial", &seg))) {
        CHECK_U64(seg.start, UINT64_C(0x16B374D848));
        CHECK_U64(seg.end, 0);
        CHECK(seg.partial);
    }
    if (CHECK(spool_parse_name("seg-FFFFFFFFFFFFFFFF-FFFFFFFFFFFFFFFF.lmz", &seg))) {
        CHECK_U64(seg.start, UINT64_MAX);
        CHECK_U64(seg.end, UINT64_MAX);
    }
}

static void round_trip(void)
{
    static const uint64_t lsns[] = {0, 1, UINT64_C(0x16B374D848), UINT64_C(0x8000000000000000),
                                    UINT64_MAX};

    for (size_t i = 0; i < sizeof lsns / sizeof lsns[0]; i++) {
        for (size_t j = i; j < sizeof lsns / sizeof lsns[0]; j++) {
            char *name = spool_final_name(lsns[i], lsns[j]);
            spool_seg seg;
            if (CHECK(spool_parse_name(name, &seg))) {
                CHECK_U64(seg.start, lsns[i]);
                CHECK_U64(seg.end, lsns[j]);
                CHECK(!seg.partial);
            }
            free(name);
        }
        {
            char *name = spool_partial_name(lsns[i]);
            spool_seg seg;
            if (CHECK(spool_parse_name(name, &seg))) {
                CHECK_U64(seg.start, lsns[i]);
                CHECK(seg.partial);
            }
            free(name);
        }
    }
}

static void not_segments(void)
{
    static const char *const bad[] = {
        "",
        "seg-",
        "seg-.lmz",
        "seg-00000016B374D848.lmz",                     /* neither finished nor partial */
        "seg-00000016B374D848-00000016B374D9A0",         /* no suffix */
        "seg-00000016B374D848-00000016B374D9A0.lmz.partial",
        "seg-00000016B374D848-00000016B374D9A0.lmz.tmp",
        "seg-00000016B374D848-00000016B374D9A0.lmzx",
        "seg-00000016B374D848.lmz.partial~",
        "seg-00000016B374D848.partial",
        "xseg-00000016B374D848.lmz.partial",
        "seg-0000016B374D848-00000016B374D9A0.lmz",      /* 15 digits */
        "seg-000000016B374D848-00000016B374D9A0.lmz",    /* 17 digits */
        "seg-00000016B374D848-0000016B374D9A0.lmz",
        "seg-000000016B374D848.lmz.partial",
        "seg-0000016B374D848.lmz.partial",
        "seg-00000016B374D84G-00000016B374D9A0.lmz",     /* not hex */
        "seg-00000016B374D848_00000016B374D9A0.lmz",     /* wrong separator */
        "SEG-00000016B374D848-00000016B374D9A0.lmz",
        /* sixteen characters that scanf's %X would take for a number, but
         * not the sixteen hex digits the writer makes */
        "seg-0x000016B374D848-00000016B374D9A0.lmz",
        "seg-+000016B374D8480-00000016B374D9A0.lmz",
        "seg--000000000000001-00000016B374D9A0.lmz",
        "seg- 00000016B374D84-00000016B374D9A0.lmz",
        "seg-00000016B374D848-+0000016B374D9A0.lmz",
        "seg-0X000016B374D848.lmz.partial",
        "seg- 00000016B374D84.lmz.partial",
        "seg--000000000000001.lmz.partial",
        /* lower case: the writer's %X never makes it, so such a file is
         * not one of ours even when its value matches one that is */
        "seg-00000016b374d848-00000016b374d9a0.lmz",
        "seg-00000016b374d848.lmz.partial",
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spool_seg seg;
        if (!CHECK(!spool_parse_name(bad[i], &seg)))
            unit_note("accepted \"%s\"", bad[i]);
    }
}

static void touch(const char *dir, const char *name)
{
    char path[512];
    int fd;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (CHECK(fd >= 0))
        close(fd);
}

static void listing(void)
{
    static const char *const files[] = {
        "seg-0000000000000300-0000000000000400.lmz",
        "seg-0000000000000400.lmz.partial",
        "seg-0000000000000100-0000000000000200.lmz",
        "seg-0000000000000200-0000000000000300.lmz",
        "README",
        "seg-0000000000000100-0000000000000200.lmz.tmp",
        "lm-apply.lock",
        /* not a name lm-decode writes, though scanf would read one */
        "seg-0x00000000000100-0000000000000200.lmz",
    };
    char tmpl[] = "/tmp/lm-unit-spool.XXXXXX";
    char *dir = mkdtemp(tmpl), path[512];
    spool_seg *segs = NULL;
    int n;

    if (!CHECK(dir != NULL))
        return;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        touch(dir, files[i]);
    /* finished segments by start, then the partial; the rest is not ours */
    n = spool_list(dir, &segs);
    if (CHECK_I64(n, 4)) {
        CHECK_STR(segs[0].name, "seg-0000000000000100-0000000000000200.lmz");
        CHECK_STR(segs[1].name, "seg-0000000000000200-0000000000000300.lmz");
        CHECK_STR(segs[2].name, "seg-0000000000000300-0000000000000400.lmz");
        CHECK_STR(segs[3].name, "seg-0000000000000400.lmz.partial");
        CHECK_U64(segs[0].start, 0x100);
        CHECK_U64(segs[2].end, 0x400);
        CHECK(segs[3].partial);
    }
    if (n > 0)
        spool_list_free(segs, n);
    spool_sync_dir(dir);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    /* empty, then gone */
    segs = NULL;
    CHECK_I64(spool_list(dir, &segs), 0);
    spool_list_free(segs, 0);
    rmdir(dir);
    errno = 0;
    CHECK_I64(spool_list(dir, &segs), -1);
    CHECK_I64(errno, ENOENT);
}

/* A listing as spool_list gives it (names in its order), the test's own. */
typedef struct listing_t {
    spool_seg segs[8];
    int n;
} listing_t;

static void make_listing(listing_t *l, const char *const *names)
{
    l->n = 0;
    for (; *names; names++) {
        spool_seg *s = &l->segs[l->n];
        if (!CHECK(spool_parse_name(*names, s)))
            unit_note("not a segment name: \"%s\"", *names);
        s->name = (char *)*names;
        l->n++;
    }
}

/* the file being read, by name (the follower compares inodes) */
static bool is_named(const spool_seg *s, void *arg)
{
    return strcmp(s->name, (const char *)arg) == 0;
}

#define SEG(a, b) "seg-00000000000" a "-00000000000" b ".lmz"
#define PART(a) "seg-00000000000" a ".lmz.partial"

/* the name pick_next chooses, or "none" */
static const char *pick(const listing_t *l, uint64_t pos, const char *current)
{
    int i = spool_pick_next(l->segs, l->n, pos, current ? is_named : NULL, (void *)current);
    return i < 0 ? "none" : l->segs[i].name;
}

static void pick_starting_over(void)
{
    static const char *const names[] = {SEG("00100", "00200"), SEG("00200", "00300"),
                                        SEG("00300", "00400"), PART("00400"), NULL};
    listing_t l;

    make_listing(&l, names);
    /* the first finished segment not wholly applied, then the partial */
    CHECK_STR(pick(&l, 0, NULL), SEG("00100", "00200"));
    CHECK_STR(pick(&l, 0x150, NULL), SEG("00100", "00200"));
    CHECK_STR(pick(&l, 0x200, NULL), SEG("00200", "00300"));
    CHECK_STR(pick(&l, 0x3FF, NULL), SEG("00300", "00400"));
    CHECK_STR(pick(&l, 0x400, NULL), PART("00400"));
    CHECK_STR(pick(&l, 0x900, NULL), PART("00400"));
    /* an empty spool */
    CHECK_I64(spool_pick_next(l.segs, 0, 0, NULL, NULL), -1);
}

static void pick_following(void)
{
    static const char *const names[] = {SEG("00100", "00200"), SEG("00200", "00300"),
                                        SEG("00300", "00400"), PART("00400"), NULL};
    static const char *const finished[] = {SEG("00100", "00200"), SEG("00200", "00300"), NULL};
    listing_t l;

    make_listing(&l, names);
    CHECK_STR(pick(&l, 0x200, SEG("00100", "00200")), SEG("00200", "00300"));
    CHECK_STR(pick(&l, 0x300, SEG("00200", "00300")), SEG("00300", "00400"));
    CHECK_STR(pick(&l, 0x400, SEG("00300", "00400")), PART("00400"));
    /* the partial being read is never chosen again: wait for more */
    CHECK_STR(pick(&l, 0x400, PART("00400")), "none");
    /* a partial finished under the reader is the file just read, under
     * its new name, before its END is known: not chosen again either */
    CHECK_STR(pick(&l, 0x350, SEG("00300", "00400")), PART("00400"));
    /* read past everything finished, no partial: nothing yet */
    make_listing(&l, finished);
    CHECK_STR(pick(&l, 0x300, SEG("00200", "00300")), "none");
}

/* A restarted writer begins at the slot's confirmed position when no
 * finished segment is left, which can be behind what was read: its
 * segments overlap what was read. What counts is how far a segment
 * reaches, never where it starts. */
static void pick_overlap(void)
{
    static const char *const restarted[] = {SEG("00100", "00200"), SEG("00200", "00300"),
                                            SEG("00250", "00350"), PART("00350"), NULL};
    static const char *const pruned[] = {SEG("00150", "00260"), PART("00260"), NULL};
    static const char *const behind[] = {SEG("00150", "00260"), SEG("00260", "00380"),
                                         PART("00380"), NULL};
    listing_t l;

    make_listing(&l, restarted);
    CHECK_STR(pick(&l, 0x300, SEG("00200", "00300")), SEG("00250", "00350"));
    CHECK_STR(pick(&l, 0x350, SEG("00250", "00350")), PART("00350"));
    /* starting over at the applied position: the first that reaches past */
    CHECK_STR(pick(&l, 0x260, NULL), SEG("00200", "00300"));
    CHECK_STR(pick(&l, 0x300, NULL), SEG("00250", "00350"));
    /* what was read was pruned; the new segments start behind it */
    make_listing(&l, pruned);
    CHECK_STR(pick(&l, 0x300, SEG("00100", "00300")), PART("00260"));
    make_listing(&l, behind);
    CHECK_STR(pick(&l, 0x300, SEG("00100", "00300")), SEG("00260", "00380"));
    CHECK_STR(pick(&l, 0x250, SEG("00100", "00250")), SEG("00150", "00260"));
}

/* A run that stopped with nothing new writes a segment holding its end
 * record alone (START = END): it must still be read. */
static void pick_empty_segment(void)
{
    static const char *const names[] = {SEG("00200", "00300"), SEG("00300", "00300"),
                                        PART("00300"), NULL};
    static const char *const zero[] = {SEG("00000", "00000"), SEG("00000", "00100"), NULL};
    listing_t l;

    make_listing(&l, names);
    CHECK_STR(pick(&l, 0x300, SEG("00200", "00300")), SEG("00300", "00300"));
    CHECK_STR(pick(&l, 0x300, SEG("00300", "00300")), PART("00300"));
    /* read further than it (another segment's END): no longer */
    CHECK_STR(pick(&l, 0x301, SEG("00200", "00300")), PART("00300"));
    /* starting over, an END of 0 is never taken for wholly applied */
    make_listing(&l, zero);
    CHECK_STR(pick(&l, 0x50, NULL), SEG("00000", "00000"));
}

const unit_test unit_spool_tests[] = {
    {"segment names from LSNs", names},
    {"segment names parsed", parse},
    {"name then parse round trips", round_trip},
    {"names that are not segments refused", not_segments},
    {"listing order, other files skipped", listing},
    {"next segment when starting over", pick_starting_over},
    {"next segment while following", pick_following},
    {"next segment among a restarted writer's overlaps", pick_overlap},
    {"next segment holding an end record alone", pick_empty_segment},
    {NULL, NULL},
};
