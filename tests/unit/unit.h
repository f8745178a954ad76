/* A small test runner for common/: each test_*.c file defines static test
 * functions and one table of them; unit.c runs the tables in order and
 * prints one TAP line per test.  A failed check does not stop its test, so
 * one run shows every wrong value; each failure names file:line, the
 * expression and the values on both sides. */
#ifndef LM_UNIT_H
#define LM_UNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct unit_test {
    const char *name;
    void (*fn)(void);
} unit_test;

/* The rows of a table-driven test's cases: an input and the string wanted,
 * and in a unit_case a number the test reads its own way (a length, a
 * count).  UNIT_NCASES(cases) is a table's number of rows. */
typedef struct unit_str_case {
    const char *in, *want;
} unit_str_case;

typedef struct unit_case {
    const char *in;
    size_t n;
    const char *want;
} unit_case;

#define UNIT_NCASES(cases) (sizeof (cases) / sizeof (cases)[0])

/* The tables, each ended by {NULL, NULL}. */
extern const unit_test unit_lsn_tests[];
extern const unit_test unit_buf_tests[];
extern const unit_test unit_hash_tests[];
extern const unit_test unit_quote_tests[];
extern const unit_test unit_record_tests[];
extern const unit_test unit_spool_tests[];
extern const unit_test unit_spoolrw_tests[];
extern const unit_test unit_stream_tests[];
extern const unit_test unit_misc_tests[];
extern const unit_test unit_constants_tests[];
extern const unit_test unit_sqllex_tests[];
extern const unit_test unit_progress_tests[];

/* Record a failure of the running test: "file:line: expr" and the values.
 * Returns false so that a check can be used as a condition. */
bool unit_check_true(bool ok, const char *file, int line, const char *expr);
bool unit_check_u64(uint64_t got, uint64_t want, const char *file, int line,
                    const char *expr, const char *wexpr);
bool unit_check_i64(int64_t got, int64_t want, const char *file, int line,
                    const char *expr, const char *wexpr);
bool unit_check_str(const char *got, const char *want, const char *file, int line,
                    const char *expr, const char *wexpr);
bool unit_check_mem(const void *got, size_t gotlen, const void *want, size_t wantlen,
                    const char *file, int line, const char *expr, const char *wexpr);

/* Each evaluates its arguments once; the values are printed on failure. */
#define CHECK(e) unit_check_true((e), __FILE__, __LINE__, #e)
#define CHECK_U64(got, want) \
    unit_check_u64((uint64_t)(got), (uint64_t)(want), __FILE__, __LINE__, #got, #want)
#define CHECK_I64(got, want) \
    unit_check_i64((int64_t)(got), (int64_t)(want), __FILE__, __LINE__, #got, #want)
#define CHECK_STR(got, want) unit_check_str((got), (want), __FILE__, __LINE__, #got, #want)
#define CHECK_MEM(got, gotlen, want, wantlen) \
    unit_check_mem((got), (gotlen), (want), (wantlen), __FILE__, __LINE__, #got, #want)

/* Add a line to the running test's diagnostics (which case of a loop
 * failed); does not fail the test by itself. */
void unit_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Hex digits to bytes ("e3 06" and "E306" alike); the count, or aborts the
 * run on a malformed literal (a bug in the test itself). */
size_t unit_unhex(const char *hex, uint8_t *out, size_t cap);

#endif
