#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lsn.h"

static bool parse_hex32(const char *s, size_t n, uint32_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 8)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return false;
        v = v * 16 + (uint64_t)d;
    }
    *out = (uint32_t)v;
    return true;
}

bool lm_lsn_parse(const char *s, uint64_t *lsn)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    uint32_t hi, lo;

    if (!slash)
        return false;
    if (!parse_hex32(s, (size_t)(slash - s), &hi) ||
        !parse_hex32(slash + 1, strlen(slash + 1), &lo))
        return false;
    *lsn = ((uint64_t)hi << 32) | lo;
    return true;
}

char *lm_lsn_format(uint64_t lsn, char *buf)
{
    snprintf(buf, LM_LSN_BUFSZ, "%X/%X", (uint32_t)(lsn >> 32), (uint32_t)lsn);
    return buf;
}

int64_t lm_now_pgtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - LM_PG_EPOCH_OFFSET_US;
}

bool lm_pgtime_valid(int64_t t)
{
    return t >= LM_PGTIME_MIN && t <= LM_PGTIME_MAX;
}

char *lm_pgtime_format(int64_t t, char *buf)
{
    /* seconds and microseconds apart, so that nothing overflows: t plus
     * the epoch offset would for values near INT64_MAX */
    int64_t sec = t / 1000000, frac = t % 1000000;
    time_t unix_sec;
    struct tm tm;

    if (frac < 0) {
        frac += 1000000;
        sec -= 1;
    }
    unix_sec = (time_t)(sec + LM_PG_EPOCH_OFFSET_US / 1000000);
    if (!lm_pgtime_valid(t) || !gmtime_r(&unix_sec, &tm)) {
        snprintf(buf, 64, "(invalid timestamp %" PRId64 ")", t);
        return buf;
    }
    snprintf(buf, 64, "%04d-%02d-%02d %02d:%02d:%02d.%06" PRId64 "+00",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec, frac);
    return buf;
}

int64_t lm_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
