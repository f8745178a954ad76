/* Logging to stderr with the program name as prefix (PostgreSQL's style:
 * lowercase, no trailing period; details and hints are full sentences). */
#ifndef LM_LOG_H
#define LM_LOG_H

#include <stdarg.h>

enum lm_log_level { LM_LOG_ERROR = 0, LM_LOG_WARNING, LM_LOG_INFO, LM_LOG_DEBUG };

/* Set the program name used as prefix; reads LM_LOG_LEVEL (error..debug). */
void lm_log_init(const char *progname);
/* Program name given to lm_log_init. */
const char *lm_progname(void);
/* Change the level: messages above it are dropped. */
void lm_log_set_level(int level);
int lm_log_level(void);

#define LM_PRINTF(a, b) __attribute__((format(printf, a, b)))
void lm_error(const char *fmt, ...) LM_PRINTF(1, 2);
void lm_warning(const char *fmt, ...) LM_PRINTF(1, 2);
void lm_info(const char *fmt, ...) LM_PRINTF(1, 2);
void lm_debug(const char *fmt, ...) LM_PRINTF(1, 2);
/* "DETAIL: ..." / "HINT: ..." lines following an error or warning. */
void lm_detail(const char *fmt, ...) LM_PRINTF(1, 2);
void lm_hint(const char *fmt, ...) LM_PRINTF(1, 2);
/* Log an error and exit with code. */
void lm_fatal(int code, const char *fmt, ...) LM_PRINTF(2, 3) __attribute__((noreturn));
/* Usage error: the message, then 'Try "prog --help"', exit LM_EXIT_USAGE. */
void lm_usage_error(const char *fmt, ...) LM_PRINTF(1, 2) __attribute__((noreturn));
/* Abort on out of memory. */
void *lm_malloc(size_t n);
void *lm_realloc(void *p, size_t n);
char *lm_strdup(const char *s);
char *lm_psprintf(const char *fmt, ...) LM_PRINTF(1, 2);

#endif
