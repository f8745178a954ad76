/* Progress of long work on standard error (see progress.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <sys/ioctl.h>
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
    p->interval_us = p->live ? 250000 : 1000000;
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

int lm_progress_fit(int lines, int rows)
{
    if (rows <= 0 || lines < rows)
        return lines;
    return rows > 1 ? rows - 1 : 1;
}

size_t lm_progress_cut(const char *s, size_t len, int cols)
{
    int used = 0;

    if (cols <= 1)
        return len;
    for (size_t i = 0; i < len; i++) {
        /* a character starts at any byte but a UTF-8 continuation */
        if (((unsigned char)s[i] & 0xc0) != 0x80 && ++used > cols - 1)
            return i;
    }
    return len;
}

/* the terminal's size (0: not known) */
static void term_size(FILE *f, int *rows, int *cols)
{
    struct winsize ws;

    *rows = *cols = 0;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    }
}

void lm_progress_show(lm_progress *p, const char *text)
{
    const char *s = text;
    int n = 0, total = 0, fit, rows = 0, cols = 0;

    if (!p->on)
        return;
    for (const char *q = text; *q; q++)
        if (*q == '\n' && q[1])
            total++;
    if (*text)
        total++;
    if (p->live)
        term_size(p->f, &rows, &cols);
    fit = p->live ? lm_progress_fit(total, rows) : total;
    if (p->live && p->lines > 0)
        fprintf(p->f, "\r\033[%dA", p->lines);   /* back to the first line drawn */
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        if (n == fit)
            break;
        if (p->live && fit < total && fit > 1 && n == fit - 1) {
            fprintf(p->f, "\r\033[2K... %d more\n", total - n);
            n++;
            break;
        }
        if (p->live)   /* cut to the width: a wrapped line would take two rows */
            fprintf(p->f, "\r\033[2K%.*s\n", (int)lm_progress_cut(s, len, cols), s);
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

void lm_progress_finish(lm_progress *p)
{
    p->lines = 0;
    p->last_us = 0;
}

char *lm_progress_name(char *buf, size_t size, const char *name)
{
    size_t o = 0;

    if (size == 0)
        return buf;
    for (const unsigned char *q = (const unsigned char *)name; *q; q++) {
        char e[8];
        size_t len;

        switch (*q) {
        case '\n': strcpy(e, "\\n"); break;
        case '\r': strcpy(e, "\\r"); break;
        case '\t': strcpy(e, "\\t"); break;
        default:
            if (*q < 0x20 || *q == 0x7f)
                snprintf(e, sizeof e, "\\x%02x", *q);
            else {
                e[0] = (char)*q;
                e[1] = '\0';
            }
        }
        len = strlen(e);
        if (o + len > size - 1) {
            /* cut: "..." in place of what does not fit */
            if (size >= 4) {
                o = o > size - 4 ? size - 4 : o;
                memcpy(buf + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(buf + o, e, len);
        o += len;
    }
    buf[o < size ? o : size - 1] = '\0';
    return buf;
}

char *lm_progress_copy_line(char *buf, size_t size, const lm_copy_progress *cp)
{
    double pct = cp->total_bytes > 0 ? 100.0 * cp->done_bytes / cp->total_bytes : 100.0;
    double rate = cp->secs > 0 ? cp->done_bytes / cp->secs : 0;
    char bar[32] = "", b1[16], b2[16], b3[16], eta[16], rows[64] = "";

    if (pct > 100)
        pct = 100;
    if (!cp->last && pct > 99.9)
        pct = 99.9;
    if (cp->last)
        pct = 100.0;
    if (cp->bar) {
        lm_progress_bar(bar + 1, sizeof bar - 1, pct / 100.0, 20);
        bar[0] = ' ';
    }
    lm_progress_secs(eta, sizeof eta,
                     !cp->last && rate > 0 && cp->total_bytes > cp->done_bytes
                         ? (cp->total_bytes - cp->done_bytes) / rate : -1);
    if (cp->est_rows > 0 && !cp->last)
        snprintf(rows, sizeof rows, "%.0f of ~%.0f rows", cp->rows, cp->est_rows);
    else
        snprintf(rows, sizeof rows, "%.0f rows", cp->rows);
    snprintf(buf, size, "copying: %.1f%%%s (%s of %s), %s, %s/s, ETA %s, %d of %d tables done",
             pct, bar, lm_progress_bytes(b1, sizeof b1, cp->done_bytes),
             lm_progress_bytes(b2, sizeof b2, cp->total_bytes), rows,
             lm_progress_bytes(b3, sizeof b3, rate), eta, cp->tables_done, cp->tables_total);
    return buf;
}

char *lm_progress_index_line(char *buf, size_t size, const lm_index_progress *ip)
{
    char name[128];
    int n;

    n = snprintf(buf, size, "%s: %s, %s", lm_progress_name(name, sizeof name, ip->name),
                 ip->command, ip->phase);
    if (ip->blocks_total > 0 && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ", blocks %" PRId64 " of %" PRId64 " (%.0f%%)",
                      ip->blocks_done, ip->blocks_total,
                      100.0 * (double)ip->blocks_done / (double)ip->blocks_total);
    if (ip->tuples_total > 0 && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ", tuples %" PRId64 " of %" PRId64 " (%.0f%%)",
                 ip->tuples_done, ip->tuples_total,
                 100.0 * (double)ip->tuples_done / (double)ip->tuples_total);
    return buf;
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
