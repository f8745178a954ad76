#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exitcodes.h"
#include "log.h"

static const char *progname = "lm";
static int level = LM_LOG_INFO;

void lm_log_init(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *env = getenv("LM_LOG_LEVEL");

    progname = slash ? slash + 1 : name;
    if (env) {
        if (strcasecmp(env, "error") == 0) level = LM_LOG_ERROR;
        else if (strcasecmp(env, "warning") == 0) level = LM_LOG_WARNING;
        else if (strcasecmp(env, "info") == 0) level = LM_LOG_INFO;
        else if (strcasecmp(env, "debug") == 0) level = LM_LOG_DEBUG;
    }
}

const char *lm_progname(void) { return progname; }
void lm_log_set_level(int l) { level = l; }
int lm_log_level(void) { return level; }

/* fmt is a printf format with its arguments in ap: gcc then checks that
 * only formats reach it (-Wmissing-format-attribute, -Wformat=2) */
LM_PRINTF(3, 0)
static void vlog(int l, const char *tag, const char *fmt, va_list ap)
{
    char buf[8192];
    size_t n;

    if (l > level)
        return;
    vsnprintf(buf, sizeof buf, fmt, ap);
    n = strlen(buf);
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (tag)
        fprintf(stderr, "%s: %s: %s\n", progname, tag, buf);
    else
        fprintf(stderr, "%s: %s\n", progname, buf);
    fflush(stderr);
}

#define DEFINE_LOG(fn, lvl, tag)                 \
    void fn(const char *fmt, ...)                \
    {                                            \
        va_list ap;                              \
        va_start(ap, fmt);                       \
        vlog(lvl, tag, fmt, ap);                 \
        va_end(ap);                              \
    }
DEFINE_LOG(lm_error, LM_LOG_ERROR, "error")
DEFINE_LOG(lm_warning, LM_LOG_WARNING, "warning")
DEFINE_LOG(lm_info, LM_LOG_INFO, NULL)
DEFINE_LOG(lm_debug, LM_LOG_DEBUG, "debug")
DEFINE_LOG(lm_detail, LM_LOG_ERROR, "detail")
DEFINE_LOG(lm_hint, LM_LOG_ERROR, "hint")

void lm_fatal(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(LM_LOG_ERROR, "error", fmt, ap);
    va_end(ap);
    exit(code);
}

void lm_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(LM_LOG_ERROR, "error", fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
    exit(LM_EXIT_USAGE);
}

void *lm_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        lm_fatal(LM_EXIT_FAILURE, "out of memory (%zu bytes)", n);
    return p;
}

void *lm_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        lm_fatal(LM_EXIT_FAILURE, "out of memory (%zu bytes)", n);
    return q;
}

char *lm_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(lm_malloc(n), s, n);
}

char *lm_psprintf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    s = lm_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}
