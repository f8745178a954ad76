/* Progress of long work on standard error (see progress.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "progress.h"
#include "lsn.h"   /* lm_monotonic_us */

lm_progress_when lm_opt_progress(const char *val)
{
    if (!val || strcmp(val, "always") == 0)
        return LM_PROGRESS_ALWAYS;
    if (strcmp(val, "auto") == 0)
        return LM_PROGRESS_AUTO;
    if (strcmp(val, "never") == 0)
        return LM_PROGRESS_NEVER;
    lm_usage_error("invalid value \"%s\" for option --progress: use auto, always or never", val);
}

void lm_progress_init(lm_progress *p, lm_progress_when when, FILE *f)
{
    const char *force = getenv("LM_PROGRESS_TTY");
    bool tty = force && *force ? strcmp(force, "1") == 0 : isatty(fileno(f)) == 1;

    memset(p, 0, sizeof *p);
    p->f = f;
    p->live = tty && when != LM_PROGRESS_NEVER;
    p->on = when == LM_PROGRESS_ALWAYS || p->live;
    p->interval_us = p->live ? 200000 : 1000000;
}

bool lm_progress_due(lm_progress *p, bool force)
{
    int64_t now;

    if (!p->on)
        return false;
    now = lm_monotonic_us();
    if (!force && p->last_us && now - p->last_us < p->interval_us)
        return false;
    p->last_us = now;
    return true;
}

void lm_progress_show(lm_progress *p, const char *text)
{
    const char *s = text;
    int n = 0;

    if (!p->on)
        return;
    if (p->live && p->lines > 0)
        fprintf(p->f, "\r\033[%dA", p->lines);   /* back to the first line drawn */
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        if (p->live)
            fprintf(p->f, "\r\033[2K%.*s\n", (int)len, s);
        else
            fprintf(p->f, "%s: %.*s\n", lm_progname(), (int)len, s);
        n++;
        s += len;
        if (*s == '\n')
            s++;
    }
    /* a view shorter than the last one: clear what is left below it */
    if (p->live) {
        if (n < p->lines)
            fputs("\033[J", p->f);
        p->lines = n;
    }
    fflush(p->f);
}

char *lm_progress_bar(char *buf, size_t size, double fraction, int width)
{
    int full;

    if (size < (size_t)width + 3) {
        if (size)
            buf[0] = '\0';
        return buf;
    }
    if (!(fraction > 0))
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    full = (int)(fraction * width + 0.5);
    buf[0] = '[';
    for (int i = 0; i < width; i++)
        buf[1 + i] = i < full ? '#' : '.';
    buf[width + 1] = ']';
    buf[width + 2] = '\0';
    return buf;
}

char *lm_progress_bytes(char *buf, size_t size, double bytes)
{
    static const char *unit[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    int u = 0;

    while (bytes >= 1000 && u < 5) {
        bytes /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f B", bytes);
    else
        snprintf(buf, size, "%.1f %s", bytes, unit[u]);
    return buf;
}

char *lm_progress_secs(char *buf, size_t size, double secs)
{
    long s;

    if (!(secs >= 0)) {
        snprintf(buf, size, "-");
        return buf;
    }
    s = (long)(secs + 0.5);
    if (s >= 3600)
        snprintf(buf, size, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60)
        snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, size, "%lds", s);
    return buf;
}
