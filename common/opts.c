#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "lsn.h"
#include "opts.h"

long lm_opt_int(const char *opt, const char *val, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(val, &end, 10);
    if (errno || end == val || *end != '\0')
        lm_usage_error("invalid value \"%s\" for option %s: not an integer", val, opt);
    if (v < min || v > max)
        lm_usage_error("%s must be in range %ld..%ld", opt, min, max);
    return v;
}

uint64_t lm_opt_size(const char *opt, const char *val, uint64_t min, uint64_t max)
{
    char *end;
    unsigned long long v;
    uint64_t mult = 1;

    errno = 0;
    if (*val == '-')
        lm_usage_error("invalid value \"%s\" for option %s: not a size", val, opt);
    v = strtoull(val, &end, 10);
    if (errno || end == val)
        lm_usage_error("invalid value \"%s\" for option %s: not a size", val, opt);
    while (*end == ' ')
        end++;
    if (*end == '\0' || strcasecmp(end, "b") == 0) mult = 1;
    else if (strcasecmp(end, "kb") == 0 || strcasecmp(end, "k") == 0) mult = 1024;
    else if (strcasecmp(end, "mb") == 0 || strcasecmp(end, "m") == 0) mult = 1024 * 1024;
    else if (strcasecmp(end, "gb") == 0 || strcasecmp(end, "g") == 0) mult = 1024ull * 1024 * 1024;
    else if (strcasecmp(end, "tb") == 0 || strcasecmp(end, "t") == 0) mult = 1024ull * 1024 * 1024 * 1024;
    else
        lm_usage_error("invalid unit \"%s\" for option %s: use kB, MB, GB or TB", end, opt);
    if (v > UINT64_MAX / mult || v * mult < min || v * mult > max)
        lm_usage_error("%s must be in range %" PRIu64 "..%" PRIu64 " bytes", opt, min, max);
    return v * mult;
}

uint64_t lm_opt_lsn(const char *opt, const char *val)
{
    uint64_t lsn;
    if (!lm_lsn_parse(val, &lsn))
        lm_usage_error("invalid value \"%s\" for option %s: not an LSN like 0/16B3748", val, opt);
    return lsn;
}

int64_t lm_opt_duration_ms(const char *opt, const char *val, int64_t min_ms, int64_t max_ms)
{
    char *end;
    double v;
    double mult = 1000;

    errno = 0;
    v = strtod(val, &end);
    if (errno || end == val || v < 0)
        lm_usage_error("invalid value \"%s\" for option %s: not a duration", val, opt);
    if (*end == '\0' || strcmp(end, "s") == 0) mult = 1000;
    else if (strcmp(end, "ms") == 0) mult = 1;
    else if (strcmp(end, "min") == 0 || strcmp(end, "m") == 0) mult = 60000;
    else if (strcmp(end, "h") == 0) mult = 3600000;
    else
        lm_usage_error("invalid unit \"%s\" for option %s: use ms, s, min or h", end, opt);
    if (v * mult < (double)min_ms || v * mult > (double)max_ms)
        lm_usage_error("%s must be in range %.3g..%.3g seconds", opt, (double)min_ms / 1000.0,
                       (double)max_ms / 1000.0);
    return (int64_t)(v * mult);
}

bool lm_slot_name_valid(const char *name, const char **why)
{
    size_t n = strlen(name);
    if (n == 0) {
        *why = "it is empty";
        return false;
    }
    if (n > 63) {
        *why = "it is longer than 63 characters";
        return false;
    }
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            *why = "only lower case letters, digits and underscores are allowed";
            return false;
        }
    return true;
}

void lm_print_version(void)
{
    printf("%s (lm) %s\n", lm_progname(), LM_VERSION);
}

static void (*help)(void);
static const char *subcommand;

/* --help, -?, --version or -V: answered, exit 0 */
static void answer(const char *arg)
{
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-?") == 0)
        lm_program_option(LM_OPT_HELP);
    if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0)
        lm_program_option('V');
}

void lm_program_start(int argc, char **argv, void (*usage)(void))
{
    lm_log_init(argv[0]);
    argv[0] = (char *)lm_progname();
    help = usage;
    if (argc > 1)
        answer(argv[1]);
}

void lm_program_subcommand(int argc, char **argv, const char *name, void (*usage)(void))
{
    help = usage;
    subcommand = name;
    if (argc > 2)
        answer(argv[2]);
}

void lm_program_option(int c)
{
    if (c == LM_OPT_HELP) {
        help();
        exit(LM_EXIT_OK);
    }
    if (c == 'V') {
        lm_print_version();
        exit(LM_EXIT_OK);
    }
    fprintf(stderr, "Try \"%s%s%s --help\" for more information.\n", lm_progname(),
            subcommand ? " " : "", subcommand ? subcommand : "");
    exit(LM_EXIT_USAGE);
}
