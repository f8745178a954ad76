/* Unit tests of common/: `make unit`, run first by `make check`.
 *
 *   tests/unit/unit [SUBSTRING...]
 *
 * Runs every test (or those whose "suite: name" contains one of the
 * substrings) and prints TAP: a plan, "ok N - suite: name" or "not ok ...",
 * the failed checks as "#" lines under their test, and a summary.  Exit
 * status 1 if any test failed, 2 if none matched; a test that crashes is
 * reported "not ok ... # crashed" and ends the run with its signal. */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "unit.h"

static const struct {
    const char *suite;
    const unit_test *tests;
} suites[] = {
    {"lsn", unit_lsn_tests},
    {"buf", unit_buf_tests},
    {"hash", unit_hash_tests},
    {"quote", unit_quote_tests},
    {"record", unit_record_tests},
    {"spool", unit_spool_tests},
    {"spoolrw", unit_spoolrw_tests},
    {"stream", unit_stream_tests},
    {"misc", unit_misc_tests},
    {"constants", unit_constants_tests},
    {"sqllex", unit_sqllex_tests},
    {"progress", unit_progress_tests},
};
#define NSUITES (sizeof suites / sizeof suites[0])

/* failed checks of the running test, and their messages: printed after
 * its verdict line, as TAP readers expect */
static int failed_checks;
static FILE *diag;

void unit_note(const char *fmt, ...)
{
    va_list ap;

    fputs("#   ", diag);
    va_start(ap, fmt);
    vfprintf(diag, fmt, ap);
    va_end(ap);
    putc('\n', diag);
}

static void fail_line(const char *file, int line, const char *expr)
{
    failed_checks++;
    fprintf(diag, "# %s:%d: %s\n", file, line, expr);
}

bool unit_check_true(bool ok, const char *file, int line, const char *expr)
{
    if (!ok)
        fail_line(file, line, expr);
    return ok;
}

/* a failed comparison of numbers: the check's line, then both values as
 * their checks print them */
static bool fail_values(const char *file, int line, const char *expr, const char *got,
                        const char *want, const char *wexpr)
{
    fail_line(file, line, expr);
    fprintf(diag, "#   got:  %s\n", got);
    fprintf(diag, "#   want: %s  [%s]\n", want, wexpr);
    return false;
}

bool unit_check_u64(uint64_t got, uint64_t want, const char *file, int line,
                    const char *expr, const char *wexpr)
{
    char g[48], w[48];

    if (got == want)
        return true;
    snprintf(g, sizeof g, "%" PRIu64 " (0x%" PRIX64 ")", got, got);
    snprintf(w, sizeof w, "%" PRIu64 " (0x%" PRIX64 ")", want, want);
    return fail_values(file, line, expr, g, w, wexpr);
}

bool unit_check_i64(int64_t got, int64_t want, const char *file, int line,
                    const char *expr, const char *wexpr)
{
    char g[24], w[24];

    if (got == want)
        return true;
    snprintf(g, sizeof g, "%" PRId64, got);
    snprintf(w, sizeof w, "%" PRId64, want);
    return fail_values(file, line, expr, g, w, wexpr);
}

/* a string as C would write it, so that quotes, backslashes and control
 * characters in a failure are seen for what they are */
static void print_c_string(const char *s)
{
    if (!s) {
        fputs("NULL", diag);
        return;
    }
    putc('"', diag);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(diag, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(diag, "\\x%02x", *p);
        else
            putc(*p, diag);
    }
    putc('"', diag);
}

bool unit_check_str(const char *got, const char *want, const char *file, int line,
                    const char *expr, const char *wexpr)
{
    if (got && want && strcmp(got, want) == 0)
        return true;
    fail_line(file, line, expr);
    fputs("#   got:  ", diag);
    print_c_string(got);
    fputs("\n#   want: ", diag);
    print_c_string(want);
    fprintf(diag, "  [%s]\n", wexpr);
    return false;
}

static void print_hex(const void *p, size_t n)
{
    const uint8_t *b = p;
    if (!p) {
        fputs("NULL", diag);
        return;
    }
    for (size_t i = 0; i < n; i++)
        fprintf(diag, "%s%02x", i ? " " : "", b[i]);
    fprintf(diag, " (%zu bytes)", n);
}

bool unit_check_mem(const void *got, size_t gotlen, const void *want, size_t wantlen,
                    const char *file, int line, const char *expr, const char *wexpr)
{
    if (gotlen == wantlen && (gotlen == 0 || (got && want && memcmp(got, want, gotlen) == 0)))
        return true;
    fail_line(file, line, expr);
    fputs("#   got:  ", diag);
    print_hex(got, gotlen);
    fputs("\n#   want: ", diag);
    print_hex(want, wantlen);
    fprintf(diag, "  [%s]\n", wexpr);
    return false;
}

size_t unit_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;

    for (const char *p = hex; *p; p++) {
        int d;
        if (*p == ' ')
            continue;
        if (*p >= '0' && *p <= '9') d = *p - '0';
        else if (*p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F') d = *p - 'A' + 10;
        else d = -1;
        if (d < 0 || (hi < 0 && n == cap)) {
            fprintf(stderr, "unit: bad hex literal in a test: \"%s\"\n", hex);
            abort();
        }
        if (hi < 0) {
            hi = d;
        } else {
            out[n++] = (uint8_t)(hi << 4 | d);
            hi = -1;
        }
    }
    if (hi >= 0) {
        fprintf(stderr, "unit: odd number of hex digits in a test: \"%s\"\n", hex);
        abort();
    }
    return n;
}

static bool selected(const char *suite, const char *name, int nfilters, char **filters)
{
    char full[256];

    if (nfilters == 0)
        return true;
    snprintf(full, sizeof full, "%s: %s", suite, name);
    for (int i = 0; i < nfilters; i++)
        if (strstr(full, filters[i]))
            return true;
    return false;
}

/* A test that crashes still gets its "not ok" line: written from the
 * handler (write(2) only), then the signal is raised again, unhandled,
 * so the run ends the way a crash does. */
static char crash_line[320];
static size_t crash_len;

static void on_crash(int sig)
{
    ssize_t w = write(STDOUT_FILENO, crash_line, crash_len);
    (void)w;
    raise(sig);
}

static void catch_crashes(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sa.sa_flags = (int)SA_RESETHAND;   /* glibc defines it as 0x80000000u */
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* Run one test; whether it passed. */
static bool run_one(int n, const char *suite, const unit_test *t)
{
    char *msgs = NULL;
    size_t msglen = 0;

    snprintf(crash_line, sizeof crash_line, "not ok %d - %s: %s # crashed\n", n, suite, t->name);
    crash_len = strlen(crash_line);
    failed_checks = 0;
    diag = open_memstream(&msgs, &msglen);
    if (!diag) {
        perror("unit: open_memstream");
        exit(1);
    }
    t->fn();
    fclose(diag);
    printf("%s %d - %s: %s\n", failed_checks ? "not ok" : "ok", n, suite, t->name);
    fwrite(msgs, 1, msglen, stdout);
    free(msgs);
    fflush(stdout);
    return failed_checks == 0;
}

int main(int argc, char **argv)
{
    int planned = 0, n = 0, failed = 0;
    struct timespec t0, t1;

    lm_log_init("unit");
    catch_crashes();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t s = 0; s < NSUITES; s++)
        for (const unit_test *t = suites[s].tests; t->name; t++)
            planned += selected(suites[s].suite, t->name, argc - 1, argv + 1);
    if (planned == 0) {
        fprintf(stderr, "unit: no test matches\n");
        return 2;
    }
    printf("1..%d\n", planned);
    fflush(stdout);
    for (size_t s = 0; s < NSUITES; s++)
        for (const unit_test *t = suites[s].tests; t->name; t++)
            if (selected(suites[s].suite, t->name, argc - 1, argv + 1))
                failed += !run_one(++n, suites[s].suite, t);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("# %d tests, %d passed, %d failed (%.2f s)\n", n, n - failed, failed,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return failed ? 1 : 0;
}
