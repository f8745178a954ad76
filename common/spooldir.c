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

bool spool_parse_name(const char *name, spool_seg *seg)
{
    unsigned long long a, b;
    int n = 0;
    size_t len = strlen(name);

    memset(seg, 0, sizeof *seg);
    if (len == 4 + 16 + 1 + 16 + 4 &&
        sscanf(name, "seg-%16llX-%16llX.lmz%n", &a, &b, &n) == 2 && (size_t)n == len) {
        seg->start = a;
        seg->end = b;
        return true;
    }
    if (len == 4 + 16 + 12 && sscanf(name, "seg-%16llX.lmz.partial%n", &a, &n) == 1 &&
        (size_t)n == len) {
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
