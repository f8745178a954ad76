/* common/progress.c: bars, sizes, durations, and what a report writes on a
 * terminal (redrawn in place) and elsewhere (plain lines). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "progress.h"
#include "unit.h"

static void bars(void)
{
    char b[32];
    CHECK_STR(lm_progress_bar(b, sizeof b, 0.0, 10), "[..........]");
    CHECK_STR(lm_progress_bar(b, sizeof b, 0.5, 10), "[#####.....]");
    CHECK_STR(lm_progress_bar(b, sizeof b, 1.0, 10), "[##########]");
    CHECK_STR(lm_progress_bar(b, sizeof b, 7.5, 4), "[####]");   /* clamped */
    CHECK_STR(lm_progress_bar(b, sizeof b, -1, 4), "[....]");
    CHECK_STR(lm_progress_bar(b, 5, 0.5, 4), "");                /* too small: empty */
}

static void sizes_and_times(void)
{
    char b[16];
    CHECK_STR(lm_progress_bytes(b, sizeof b, 512), "512 B");
    CHECK_STR(lm_progress_bytes(b, sizeof b, 12e6), "12.0 MB");
    CHECK_STR(lm_progress_bytes(b, sizeof b, 1.5e9), "1.5 GB");
    CHECK_STR(lm_progress_secs(b, sizeof b, 42.2), "42s");
    CHECK_STR(lm_progress_secs(b, sizeof b, 185), "3m05s");
    CHECK_STR(lm_progress_secs(b, sizeof b, 3720), "1h02m");
    CHECK_STR(lm_progress_secs(b, sizeof b, -1), "-");
}

static void when_values(void)
{
    CHECK(lm_opt_progress(NULL) == LM_PROGRESS_ALWAYS);
    CHECK(lm_opt_progress("auto") == LM_PROGRESS_AUTO);
    CHECK(lm_opt_progress("never") == LM_PROGRESS_NEVER);
    CHECK(lm_opt_progress("always") == LM_PROGRESS_ALWAYS);
}

/* what lm_progress_show wrote for two reports, with the terminal test set */
static char *shown(const char *tty, lm_progress_when when)
{
    FILE *f = tmpfile();
    lm_progress p;
    long n;
    char *out;

    setenv("LM_PROGRESS_TTY", tty, 1);
    lm_progress_init(&p, when, f);
    unsetenv("LM_PROGRESS_TTY");
    if (lm_progress_due(&p, false))
        lm_progress_show(&p, "copy 1/2\nrows 10");
    if (lm_progress_due(&p, true))
        lm_progress_show(&p, "copy 2/2");
    n = ftell(f);
    out = calloc(1, (size_t)n + 1);
    if (out == NULL)
        abort();
    rewind(f);
    if (fread(out, 1, (size_t)n, f) != (size_t)n)
        out[0] = '\0';
    fclose(f);
    return out;
}

static void check_shown(const char *tty, lm_progress_when when, const char *want)
{
    char *s = shown(tty, when);
    unit_note("LM_PROGRESS_TTY=%s, when %d", tty, (int)when);
    CHECK_STR(s, want);
    free(s);
}

static void reports(void)
{
    lm_log_init("unit");
    /* a log: plain lines with the program's name, no escape, no \r */
    check_shown("0", LM_PROGRESS_ALWAYS, "unit: copy 1/2\nunit: rows 10\nunit: copy 2/2\n");
    /* auto and never show nothing when not a terminal */
    check_shown("0", LM_PROGRESS_AUTO, "");
    check_shown("1", LM_PROGRESS_NEVER, "");
    /* a terminal: each line cleared; the second report goes back up over
     * the two lines of the first and clears what it no longer covers */
    check_shown("1", LM_PROGRESS_AUTO,
                "\r\033[2Kcopy 1/2\n\r\033[2Krows 10\n\r\033[2A\r\033[2Kcopy 2/2\n\033[J");
}

static void names(void)
{
    char b[32], small[8];
    CHECK_STR(lm_progress_name(b, sizeof b, "\"public\".\"t\""), "\"public\".\"t\"");
    /* nothing that moves the cursor or ends a line */
    CHECK_STR(lm_progress_name(b, sizeof b, "nl\nname\ttab\r"), "nl\\nname\\ttab\\r");
    CHECK_STR(lm_progress_name(b, sizeof b, "esc\033[31mred\177"), "esc\\x1b[31mred\\x7f");
    CHECK_STR(lm_progress_name(b, sizeof b, "caf\xc3\xa9"), "caf\xc3\xa9");   /* UTF-8 as it is */
    /* too long: cut, "..." at the end, never past the buffer */
    CHECK_STR(lm_progress_name(small, sizeof small, "abcdefghij"), "abcd...");
    CHECK_STR(lm_progress_name(small, sizeof small, "abcdefg"), "abcdefg");
    CHECK_STR(lm_progress_name(small, sizeof small, "ab\n\n\ncd"), "ab\\n...");   /* cut where it fits */
}

static void copy_lines(void)
{
    char b[256];
    lm_copy_progress cp = {.done_bytes = 5e6, .total_bytes = 20e6, .rows = 1200, .est_rows = 4800,
                           .secs = 5, .tables_done = 1, .tables_total = 3};

    CHECK_STR(lm_progress_copy_line(b, sizeof b, &cp),
              "copying: 25.0% (5.0 MB of 20.0 MB), 1200 of ~4800 rows, 1.0 MB/s, ETA 15s, "
              "1 of 3 tables done");
    cp.bar = true;
    CHECK_STR(lm_progress_copy_line(b, sizeof b, &cp),
              "copying: 25.0% [#####...............] (5.0 MB of 20.0 MB), 1200 of ~4800 rows, "
              "1.0 MB/s, ETA 15s, 1 of 3 tables done");
    /* not over until it is: 99.9% at most; no row estimate, none shown */
    cp.bar = false;
    cp.done_bytes = 20e6;
    cp.est_rows = 0;
    CHECK_STR(lm_progress_copy_line(b, sizeof b, &cp),
              "copying: 99.9% (20.0 MB of 20.0 MB), 1200 rows, 4.0 MB/s, ETA -, 1 of 3 tables done");
    /* the end: 100%, the rows copied (not the estimate), no ETA */
    cp.last = true;
    cp.rows = 4790;
    cp.est_rows = 4800;
    cp.tables_done = 3;
    CHECK_STR(lm_progress_copy_line(b, sizeof b, &cp),
              "copying: 100.0% (20.0 MB of 20.0 MB), 4790 rows, 4.0 MB/s, ETA -, 3 of 3 tables done");
    /* nothing to copy by the estimates (empty tables) */
    memset(&cp, 0, sizeof cp);
    cp.last = true;
    CHECK_STR(lm_progress_copy_line(b, sizeof b, &cp),
              "copying: 100.0% (0 B of 0 B), 0 rows, 0 B/s, ETA -, 0 of 0 tables done");
}

static void index_lines(void)
{
    char b[256];
    /* a pg_stat_progress_create_index row of a CREATE INDEX scanning its table */
    lm_index_progress ip = {.name = "\"public\".\"big\"", .command = "CREATE INDEX",
                            .phase = "building index: scanning table", .blocks_done = 30,
                            .blocks_total = 120, .tuples_done = 0, .tuples_total = 0};

    CHECK_STR(lm_progress_index_line(b, sizeof b, &ip),
              "\"public\".\"big\": CREATE INDEX, building index: scanning table, blocks 30 of 120 (25%)");
    ip.phase = "building index: loading tuples in tree";
    ip.blocks_done = ip.blocks_total = 0;
    ip.tuples_done = 500;
    ip.tuples_total = 2000;
    ip.name = "\"public\".\"nl\nname_pkey\"";
    CHECK_STR(lm_progress_index_line(b, sizeof b, &ip),
              "\"public\".\"nl\\nname_pkey\": CREATE INDEX, building index: loading tuples in tree, "
              "tuples 500 of 2000 (25%)");
    /* a small buffer: cut, still a string */
    CHECK_STR(lm_progress_index_line(b, 12, &ip), "\"public\".\"n");
}

static void fit_terminal(void)
{
    CHECK(lm_progress_fit(5, 0) == 5);     /* rows not known: all */
    CHECK(lm_progress_fit(5, 24) == 5);
    CHECK(lm_progress_fit(24, 24) == 23);  /* one row for the cursor */
    CHECK(lm_progress_fit(50, 10) == 9);
    CHECK(lm_progress_fit(3, 1) == 1);
    /* and no wider than it, never half a character */
    CHECK(lm_progress_cut("abcdef", 6, 0) == 6);     /* width not known */
    CHECK(lm_progress_cut("abcdef", 6, 80) == 6);
    CHECK(lm_progress_cut("abcdef", 6, 5) == 4);
    CHECK(lm_progress_cut("ab\xc3\xa9\xc3\xa9z", 7, 4) == 4);  /* "ab" and one e-acute */
    CHECK(lm_progress_cut("ab\xc3\xa9\xc3\xa9z", 7, 5) == 6);   /* and the other */
    CHECK(lm_progress_cut("ab\xc3\xa9\xc3\xa9z", 7, 6) == 7);
}

const unit_test unit_progress_tests[] = {
    {"progress names escaped and cut", names},
    {"progress the copy's line", copy_lines},
    {"progress an index build's line", index_lines},
    {"progress never more lines than the terminal's rows", fit_terminal},
    {"progress bars", bars},
    {"progress sizes and durations", sizes_and_times},
    {"progress --progress values", when_values},
    {"progress reports on a terminal and in a log", reports},
    {NULL, NULL},
};
