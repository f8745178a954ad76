/* Option value parsing with ranges named in the error (usage exit). */
#ifndef LM_OPTS_H
#define LM_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "exitcodes.h"   /* LM_VERSION */

/* Parse an integer in [min, max] for option opt, or exit with a usage error. */
long lm_opt_int(const char *opt, const char *val, long min, long max);
/* Parse a size: bytes with optional kB, MB, GB, TB suffix (1024-based). */
uint64_t lm_opt_size(const char *opt, const char *val, uint64_t min, uint64_t max);
/* Parse an LSN, or exit with a usage error. */
uint64_t lm_opt_lsn(const char *opt, const char *val);
/* Duration in seconds, with optional ms, s, min, h suffix; returns ms. */
int64_t lm_opt_duration_ms(const char *opt, const char *val, int64_t min_ms, int64_t max_ms);
/* Replication slot names: a-z, 0-9, _ and at most 63 bytes (the server's
 * rule), checked before connecting. */
bool lm_slot_name_valid(const char *name, const char **why);
/* Start of every program: logging with the program name as prefix (also in
 * getopt's messages), and --help / -? (usage on stdout) or --version / -V as
 * the first argument answered at once with exit 0. */
void lm_program_start(int argc, char **argv, void (*usage)(void));
/* Print the version line: "prog (lm) VERSION". */
void lm_print_version(void);

#endif
