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

#define EXIT_CODE_LINE(name) {"EX_" #name, NULL, LM_EXIT_##name},

static void shell_file_matches_header(void)
{
    /* each line of the shell file: a string's value, or an exit code's */
    static const struct {
        const char *name;
        const char *string;
        int code;
    } want[] = {
        {"LM_VERSION", LM_VERSION, 0},
        {"LM_MARKER_PREFIX", LM_MARKER_PREFIX, 0},
        {"LM_SESSION_OPTIONS", LM_SESSION_OPTIONS, 0},
        LM_EXIT_CODES(EXIT_CODE_LINE)
    };
    char *text = read_all(CONSTANTS_SH);
    int lines = 0;

    if (!text) {
        CHECK(text != NULL);
        unit_note("cannot read %s: run make in the repository root first", CONSTANTS_SH);
        return;
    }
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *v = sh_value(text, want[i].name);
        if (want[i].string ? !CHECK_STR(v, want[i].string)
                           : !CHECK(v != NULL && atoi(v) == want[i].code))
            unit_note("%s", want[i].name);
        free(v);
    }
    /* and nothing the list above does not know: a NAME=VALUE line each */
    for (const char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        lines += *line != '#';
        line += n + (line[n] == '\n');
    }
    CHECK_I64(lines, (int64_t)(sizeof want / sizeof want[0]));
    free(text);
}

const unit_test unit_constants_tests[] = {
    {"lib/constants.sh holds the values of the C header", shell_file_matches_header},
    {NULL, NULL},
};
