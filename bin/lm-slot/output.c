/* lm-slot's reports on stdout (or a file): text lines or one JSON object. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcodes.h"
#include "json.h"
#include "log.h"
#include "slot.h"

void kv_begin(kvout *k, bool json)
{
    k->json = json;
    k->n = 0;
    k->f = stdout;
    k->path = k->tmp = NULL;
    if (json)
        fputc('{', k->f);
}

void kv_begin_file(kvout *k, bool json, const char *path)
{
    k->json = json;
    k->n = 0;
    k->path = lm_strdup(path);
    k->tmp = lm_psprintf("%s.tmp", path);
    if (!(k->f = fopen(k->tmp, "w")))
        lm_fatal(LM_EXIT_IO, "could not create \"%s\": %s", k->tmp, strerror(errno));
    if (json)
        fputc('{', k->f);
}

static void key(kvout *k, const char *name)
{
    if (k->json) {
        if (k->n)
            fputc(',', k->f);
        lm_json_fputs(k->f, name);
        fputc(':', k->f);
    } else
        fprintf(k->f, "%s: ", name);
    k->n++;
}

void kv_str(kvout *k, const char *name, const char *val)
{
    key(k, name);
    if (k->json) {
        if (val)
            lm_json_fputs(k->f, val);
        else
            fputs("null", k->f);
    } else
        fprintf(k->f, "%s\n", val ? val : "");
}

void kv_raw(kvout *k, const char *name, const char *val)
{
    key(k, name);
    if (k->json)
        fputs(val ? val : "null", k->f);
    else
        fprintf(k->f, "%s\n", val ? val : "");
}

void kv_bool(kvout *k, const char *name, bool val)
{
    kv_raw(k, name, val ? "true" : "false");
}

void kv_end(kvout *k)
{
    if (k->json)
        fputs("}\n", k->f);
    if (!k->path) {
        if (fflush(k->f) != 0 || ferror(k->f))
            lm_fatal(LM_EXIT_IO, "could not write to standard output: %s", strerror(errno));
        return;
    }
    if (fflush(k->f) != 0 || ferror(k->f) || fsync(fileno(k->f)) != 0 || fclose(k->f) != 0)
        lm_fatal(LM_EXIT_IO, "could not write \"%s\": %s", k->tmp, strerror(errno));
    if (rename(k->tmp, k->path) != 0)
        lm_fatal(LM_EXIT_IO, "could not rename \"%s\" to \"%s\": %s", k->tmp, k->path,
                 strerror(errno));
    k->f = NULL;
    free(k->tmp);
    free(k->path);
    k->tmp = k->path = NULL;
}
