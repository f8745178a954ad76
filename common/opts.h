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
/* Every program's front door, in this order:
 *   lm_program_start      first thing in main
 *   lm_program_subcommand (lm-slot) once argv[1] named a subcommand
 *   getopt_long with LM_OPTIONS_COMMON at the end of the options table and
 *   lm_program_option as the loop's default branch
 * Long-only options get values from LM_OPT_OWN up: no made-up short
 * letters. */
enum { LM_OPT_HELP = 256, LM_OPT_OWN };
#define LM_OPTIONS_COMMON \
    {"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, LM_OPT_HELP}
/* Logging with the program name as prefix (also in getopt's messages), and
 * --help / -? (usage on stdout) or --version / -V as the first argument
 * answered at once with exit 0. */
void lm_program_start(int argc, char **argv, void (*usage)(void));
/* The same for the first argument after the subcommand name (argv[2]),
 * with the subcommand's usage; bad options then say 'Try "prog name
 * --help"'. */
void lm_program_subcommand(int argc, char **argv, const char *name, void (*usage)(void));
/* The default branch of an option loop: --help and --version anywhere
 * answered as above; anything else (getopt said what) ends with 'Try
 * "prog --help" for more information.' and exit LM_EXIT_USAGE. */
void lm_program_option(int c) __attribute__((noreturn));
/* Print the version line: "prog (lm) VERSION". */
void lm_print_version(void);

#endif
