/* common/spool.c: segment names from LSNs and back, and the listing
 * order lm-apply reads them in. */
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

const unit_test unit_spool_tests[] = {
    {"segment names from LSNs", names},
    {"segment names parsed", parse},
    {"name then parse round trips", round_trip},
    {"names that are not segments refused", not_segments},
    {"listing order, other files skipped", listing},
    {NULL, NULL},
};
