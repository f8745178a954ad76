/* The shell form of common/constants.tab (bin/lm-migrate/lib/constants.sh,
 * made by make) against the C header built from the same table: what
 * lm-migrate sources is what the programs were compiled with.  Run from
 * the repository root (make unit does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "unit.h"

#define CONSTANTS_SH "bin/lm-migrate/lib/constants.sh"

/* The value of NAME in the shell file (one 'quoted' or bare word, as
 * gen-constants writes it), malloc'd; NULL when it has no such line. */
static char *sh_value(const char *text, const char *name)
{
    size_t n = strlen(name);
    const char *line = text;

    while (strncmp(line, name, n) != 0 || line[n] != '=') {
        line = strchr(line, '\n');
        if (!line)
            return NULL;
        line++;
    }
    const char *v = line + n + 1;
    const char *end = v + strcspn(v, "\n");
    char *out = malloc((size_t)(end - v) + 1), *o = out;
    bool quoted = false;

    if (!out)
        abort();
    for (; v < end; v++) {
        if (*v == '\'')
            quoted = !quoted;   /* '\'' is a quote, an escaped one, a quote */
        else if (*v == '\\' && !quoted && v + 1 < end)
            *o++ = *++v;
        else
            *o++ = *v;
    }
    *o = '\0';
    return out;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)n + 1);
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n)
        abort();
    fclose(f);
    return text;
}

static void shell_file_matches_header(void)
{
    static const struct {
        const char *name;
        const char *want;
    } strings[] = {
        {"LM_VERSION", LM_VERSION},
        {"LM_MARKER_PREFIX", LM_MARKER_PREFIX},
        {"LM_SESSION_OPTIONS", LM_SESSION_OPTIONS},
    };
    static const struct {
        const char *name;
        int code;
    } codes[] = {
        {"EX_OK", LM_EXIT_OK},
        {"EX_FAILURE", LM_EXIT_FAILURE},
        {"EX_USAGE", LM_EXIT_USAGE},
        {"EX_CONNECT", LM_EXIT_CONNECT},
        {"EX_PREFLIGHT", LM_EXIT_PREFLIGHT},
        {"EX_SERVER", LM_EXIT_SERVER},
        {"EX_CORRUPT", LM_EXIT_CORRUPT},
        {"EX_TRUNCATED", LM_EXIT_TRUNCATED},
        {"EX_MISMATCH", LM_EXIT_MISMATCH},
        {"EX_IO", LM_EXIT_IO},
        {"EX_DIFF", LM_EXIT_DIFF},
        {"EX_TIMEOUT", LM_EXIT_TIMEOUT},
    };
    char *text = read_all(CONSTANTS_SH);
    int nex = 0;

    if (!text) {
        CHECK(text != NULL);
        unit_note("cannot read %s: run make in the repository root first", CONSTANTS_SH);
        return;
    }
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        char *v = sh_value(text, strings[i].name);
        if (!CHECK_STR(v, strings[i].want))
            unit_note("%s", strings[i].name);
        free(v);
    }
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char *v = sh_value(text, codes[i].name);
        if (!CHECK(v != NULL && atoi(v) == codes[i].code))
            unit_note("%s=%s, the C header: %d", codes[i].name, v ? v : "(no line)", codes[i].code);
        free(v);
    }
    /* every code of the shell file is one the list above knows */
    for (const char *p = text; (p = strstr(p, "\nEX_")) != NULL; p++)
        nex++;
    CHECK_I64(nex, (int64_t)(sizeof codes / sizeof codes[0]));
    free(text);
}

const unit_test unit_constants_tests[] = {
    {"lib/constants.sh holds the values of the C header", shell_file_matches_header},
    {NULL, NULL},
};
