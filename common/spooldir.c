#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "spooldir.h"

/* Exactly 16 upper-case hex digits, as spool_*_name write them.  Not
 * scanf's %16llX: it also takes leading blanks, a sign, "0x" and lower
 * case, so that files lm-decode never wrote ("seg--000000000000001-...",
 * a copy named in lower case) were listed, read and pruned as segments. */
static bool parse_lsn16(const char *s, uint64_t *v)
{
    uint64_t r = 0;

    for (int i = 0; i < 16; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            r = r << 4 | (uint64_t)(c - '0');
        else if (c >= 'A' && c <= 'F')
            r = r << 4 | (uint64_t)(c - 'A' + 10);
        else
            return false;
    }
    *v = r;
    return true;
}

bool spool_parse_name(const char *name, spool_seg *seg)
{
    uint64_t a, b;
    size_t len = strlen(name);

    memset(seg, 0, sizeof *seg);
    if (strncmp(name, "seg-", 4) != 0)
        return false;
    if (len == 4 + 16 + 1 + 16 + 4 && name[20] == '-' && strcmp(name + 37, ".lmz") == 0 &&
        parse_lsn16(name + 4, &a) && parse_lsn16(name + 21, &b)) {
        seg->start = a;
        seg->end = b;
        return true;
    }
    if (len == 4 + 16 + 12 && strcmp(name + 20, ".lmz.partial") == 0 &&
        parse_lsn16(name + 4, &a)) {
        seg->start = a;
        seg->partial = true;
        return true;
    }
    return false;
}

char *spool_partial_name(uint64_t start)
{
    return lm_psprintf("seg-%016" PRIX64 ".lmz.partial", start);
}

char *spool_final_name(uint64_t start, uint64_t end)
{
    return lm_psprintf("seg-%016" PRIX64 "-%016" PRIX64 ".lmz", start, end);
}

static int cmp_seg(const void *a, const void *b)
{
    const spool_seg *x = a, *y = b;
    if (x->partial != y->partial)
        return x->partial ? 1 : -1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return strcmp(x->name, y->name);
}

int spool_list(const char *dir, spool_seg **segs)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0, cap = 0;
    spool_seg *v = NULL;

    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL) {
        spool_seg s;
        if (!spool_parse_name(de->d_name, &s))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = lm_realloc(v, (size_t)cap * sizeof *v);
        }
        s.name = lm_strdup(de->d_name);
        v[n++] = s;
    }
    closedir(d);
    if (n)
        qsort(v, (size_t)n, sizeof *v, cmp_seg);
    *segs = v;
    return n;
}

void spool_list_free(spool_seg *segs, int n)
{
    for (int i = 0; i < n; i++)
        free(segs[i].name);
    free(segs);
}

void spool_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        lm_fatal(LM_EXIT_IO, "could not open spool directory \"%s\": %s", dir, strerror(errno));
    if (fsync(fd) != 0)
        lm_fatal(LM_EXIT_IO, "could not fsync spool directory \"%s\": %s", dir, strerror(errno));
    close(fd);
}
