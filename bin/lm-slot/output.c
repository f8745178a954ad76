/* lm-slot's reports on stdout: text lines or one JSON object. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "exitcodes.h"
#include "json.h"
#include "log.h"
#include "slot.h"

void kv_begin(kvout *k, bool json)
{
    k->json = json;
    k->n = 0;
    if (json)
        fputc('{', stdout);
}

static void key(kvout *k, const char *name)
{
    if (k->json) {
        if (k->n)
            fputc(',', stdout);
        lm_json_fputs(stdout, name);
        fputc(':', stdout);
    } else
        printf("%s: ", name);
    k->n++;
}

void kv_str(kvout *k, const char *name, const char *val)
{
    key(k, name);
    if (k->json) {
        if (val)
            lm_json_fputs(stdout, val);
        else
            fputs("null", stdout);
    } else
        printf("%s\n", val ? val : "");
}

void kv_raw(kvout *k, const char *name, const char *val)
{
    key(k, name);
    if (k->json)
        fputs(val ? val : "null", stdout);
    else
        printf("%s\n", val ? val : "");
}

void kv_bool(kvout *k, const char *name, bool val)
{
    kv_raw(k, name, val ? "true" : "false");
}

void kv_end(kvout *k)
{
    if (k->json)
        fputs("}\n", stdout);
    if (fflush(stdout) != 0 || ferror(stdout))
        lm_fatal(LM_EXIT_IO, "could not write to standard output: %s", strerror(errno));
}
