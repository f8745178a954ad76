/* Log sequence numbers as PostgreSQL writes them: %X/%X. */
#ifndef LM_LSN_H
#define LM_LSN_H

#include <stdbool.h>
#include <stdint.h>

#define LM_LSN_BUFSZ 24
/* Parse "16/B374D848" (hex, upper or lower case); false if malformed. */
bool lm_lsn_parse(const char *s, uint64_t *lsn);
/* Format into buf (LM_LSN_BUFSZ bytes); returns buf. */
char *lm_lsn_format(uint64_t lsn, char *buf);

/* PostgreSQL timestamps: microseconds since 2000-01-01 00:00:00 UTC. */
#define LM_PG_EPOCH_OFFSET_US INT64_C(946684800000000)
/* The timestamps a stream may carry: 0001-01-01 00:00:00 UTC up to
 * 9999-12-31 23:59:59.999999 UTC, the years an ISO 8601 date writes with
 * four digits and PostgreSQL reads back (lm-format(5)). */
#define LM_PGTIME_MIN INT64_C(-63082281600000000)
#define LM_PGTIME_MAX INT64_C(252455615999999999)
int64_t lm_now_pgtime(void);
/* Whether t lies in LM_PGTIME_MIN .. LM_PGTIME_MAX. */
bool lm_pgtime_valid(int64_t t);
/* Format a PostgreSQL timestamp as ISO 8601 UTC into buf (64 bytes); a
 * value outside the valid range is written as "(invalid timestamp N)". */
char *lm_pgtime_format(int64_t t, char *buf);
/* Monotonic clock in microseconds. */
int64_t lm_monotonic_us(void);

#endif
