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

const unit_test unit_progress_tests[] = {
    {"progress bars", bars},
    {"progress sizes and durations", sizes_and_times},
    {"progress --progress values", when_values},
    {"progress reports on a terminal and in a log", reports},
    {NULL, NULL},
};
