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
int64_t lm_now_pgtime(void);
/* Format a PostgreSQL timestamp as ISO 8601 UTC into buf (64 bytes). */
char *lm_pgtime_format(int64_t t, char *buf);
/* Monotonic clock in microseconds. */
int64_t lm_monotonic_us(void);

#endif
