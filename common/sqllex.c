#include <string.h>

#include "sqllex.h"

void lm_sqllex_init(lm_sqllex *lx, const char *s, size_t len)
{
    lx->s = s;
    lx->len = len;
    lx->pos = 0;
}

static bool ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool ident_cont(unsigned char c)
{
    return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* p at an opening quote q: past the closing one (a doubled quote is part
 * of the text; backslash escapes only in E'' strings).  false if it does
 * not end. */
static bool skip_quoted(lm_sqllex *lx, char q, bool backslash)
{
    lx->pos++;
    while (lx->pos < lx->len) {
        char c = lx->s[lx->pos];
        if (backslash && c == '\\') {
            lx->pos += 2;
            continue;
        }
        lx->pos++;
        if (c == q) {
            if (lx->pos < lx->len && lx->s[lx->pos] == q) {
                lx->pos++;
                continue;
            }
            return true;
        }
    }
    return false;
}

/* p at '$': the length of a dollar-quote delimiter ($$ or $tag$), else 0 */
static size_t dollar_tag(const lm_sqllex *lx, size_t p)
{
    size_t q = p + 1;
    if (q < lx->len && lx->s[q] == '$')
        return 2;
    if (q >= lx->len || !ident_start((unsigned char)lx->s[q]))
        return 0;
    while (q < lx->len && ident_cont((unsigned char)lx->s[q]) && lx->s[q] != '$')
        q++;
    if (q < lx->len && lx->s[q] == '$')
        return q - p + 1;
    return 0;
}

lm_sqltoken lm_sqllex_next(lm_sqllex *lx)
{
    lm_sqltoken t = {LM_TOK_END, lx->len, 0};

    for (;;) {
        while (lx->pos < lx->len && strchr(" \t\n\r\f\v", lx->s[lx->pos]) && lx->s[lx->pos])
            lx->pos++;
        if (lx->pos + 1 < lx->len && lx->s[lx->pos] == '-' && lx->s[lx->pos + 1] == '-') {
            while (lx->pos < lx->len && lx->s[lx->pos] != '\n' && lx->s[lx->pos] != '\r')
                lx->pos++;
            continue;
        }
        if (lx->pos + 1 < lx->len && lx->s[lx->pos] == '/' && lx->s[lx->pos + 1] == '*') {
            int depth = 0;
            size_t start = lx->pos;
            while (lx->pos + 1 < lx->len) {
                if (lx->s[lx->pos] == '/' && lx->s[lx->pos + 1] == '*') {
                    depth++;
                    lx->pos += 2;
                } else if (lx->s[lx->pos] == '*' && lx->s[lx->pos + 1] == '/') {
                    lx->pos += 2;
                    if (--depth == 0)
                        break;
                } else
                    lx->pos++;
            }
            if (depth > 0) {
                t.kind = LM_TOK_ERROR;
                t.start = start;
                t.len = lx->len - start;
                lx->pos = lx->len;
                return t;
            }
            continue;
        }
        break;
    }
    if (lx->pos >= lx->len)
        return t;
    t.start = lx->pos;
    {
        const char *s = lx->s;
        size_t p = lx->pos;
        char c = s[p];
        bool ok = true;

        if (c == ';') {
            t.kind = LM_TOK_SEMICOLON;
            lx->pos++;
        } else if (c == '\'') {
            t.kind = LM_TOK_STRING;
            ok = skip_quoted(lx, '\'', false);
        } else if (c == '"') {
            t.kind = LM_TOK_IDENT;
            ok = skip_quoted(lx, '"', false);
        } else if ((c == 'e' || c == 'E') && p + 1 < lx->len && s[p + 1] == '\'') {
            t.kind = LM_TOK_STRING;
            lx->pos++;
            ok = skip_quoted(lx, '\'', true);
        } else if ((c == 'b' || c == 'B' || c == 'x' || c == 'X' || c == 'n' || c == 'N') &&
                   p + 1 < lx->len && s[p + 1] == '\'') {
            t.kind = LM_TOK_STRING;
            lx->pos++;
            ok = skip_quoted(lx, '\'', false);
        } else if ((c == 'u' || c == 'U') && p + 2 < lx->len && s[p + 1] == '&' &&
                   (s[p + 2] == '\'' || s[p + 2] == '"')) {
            t.kind = s[p + 2] == '"' ? LM_TOK_IDENT : LM_TOK_STRING;
            lx->pos += 2;
            ok = skip_quoted(lx, s[p + 2], false);
        } else if (c == '$' && dollar_tag(lx, p) > 0) {
            size_t tl = dollar_tag(lx, p);
            size_t q = p + tl;
            t.kind = LM_TOK_STRING;
            ok = false;
            for (; q + tl <= lx->len; q++)
                if (s[q] == '$' && memcmp(s + q, s + p, tl) == 0) {
                    ok = true;
                    break;
                }
            lx->pos = ok ? q + tl : lx->len;
        } else if (ident_start((unsigned char)c)) {
            t.kind = LM_TOK_WORD;
            while (lx->pos < lx->len && ident_cont((unsigned char)s[lx->pos]))
                lx->pos++;
        } else {
            /* numbers, operators, $1: one character at a time is enough,
             * no quote or comment can start inside them unnoticed */
            t.kind = LM_TOK_OTHER;
            lx->pos++;
            if (c == '$' || (c >= '0' && c <= '9'))
                while (lx->pos < lx->len && ((s[lx->pos] >= '0' && s[lx->pos] <= '9') ||
                                             (c != '$' && (ident_cont((unsigned char)s[lx->pos]) ||
                                                           s[lx->pos] == '.'))))
                    lx->pos++;
        }
        if (!ok) {
            t.kind = LM_TOK_ERROR;
            lx->pos = lx->len;
        }
        t.len = lx->pos - t.start;
    }
    return t;
}

bool lm_sqltok_is(const lm_sqllex *lx, const lm_sqltoken *t, const char *kw)
{
    size_t n = strlen(kw);
    if (t->kind != LM_TOK_WORD || t->len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(lx->s[t->start + i]) != lower(kw[i]))
            return false;
    return true;
}

int lm_sql_statements(const char *s, size_t len, char *first, size_t firstsz)
{
    lm_sqllex lx;
    lm_sqltoken t;
    int n = 0;
    size_t ntok = 0;     /* tokens of the statement so far */
    bool routine = false; /* CREATE [OR REPLACE] FUNCTION or PROCEDURE */
    bool after_begin = false;
    int depth = 0;       /* BEGIN ATOMIC ... END, CASE ... END inside it */

    if (first && firstsz)
        first[0] = '\0';
    lm_sqllex_init(&lx, s, len);
    for (;;) {
        t = lm_sqllex_next(&lx);
        if (t.kind == LM_TOK_ERROR)
            return -1;
        if (t.kind == LM_TOK_END)
            break;
        if (t.kind == LM_TOK_SEMICOLON && depth == 0) {
            ntok = 0;
            routine = false;
            after_begin = false;
            continue;
        }
        if (ntok == 0) {
            n++;
            if (n == 1 && first && firstsz && t.kind == LM_TOK_WORD) {
                size_t k = t.len < firstsz - 1 ? t.len : firstsz - 1;
                for (size_t i = 0; i < k; i++)
                    first[i] = lower(s[t.start + i]);
                first[k] = '\0';
            }
        }
        ntok++;
        if (ntok <= 4 && (lm_sqltok_is(&lx, &t, "function") || lm_sqltok_is(&lx, &t, "procedure")))
            routine = true;
        if (routine) {
            if (after_begin && lm_sqltok_is(&lx, &t, "atomic"))
                depth++;
            else if (depth > 0 && (lm_sqltok_is(&lx, &t, "begin") || lm_sqltok_is(&lx, &t, "case")))
                depth++;
            else if (depth > 0 && lm_sqltok_is(&lx, &t, "end"))
                depth--;
            after_begin = depth == 0 && lm_sqltok_is(&lx, &t, "begin");
        }
    }
    return n;
}
