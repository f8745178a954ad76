/* A small SQL lexer: enough of PostgreSQL's lexical rules (quotes, quoted
 * identifiers, dollar quotes, nested comments, SQL-standard function bodies)
 * to tell where a statement ends, how many statements a query string holds,
 * and which keyword starts each.  lm-apply uses it on the command text of a
 * captured DDL: a query string holding more than one statement must never
 * be replayed whole (its other statements already arrived as row changes,
 * or could run anything).  No parser: it does not know the grammar. */
#ifndef LM_SQLLEX_H
#define LM_SQLLEX_H

#include <stdbool.h>
#include <stddef.h>

enum lm_sqltok {
    LM_TOK_END = 0,
    LM_TOK_WORD,        /* keyword or unquoted identifier */
    LM_TOK_IDENT,       /* "quoted identifier" (also U&"...") */
    LM_TOK_STRING,      /* '...', E'...', B'...', X'...', U&'...', $tag$...$tag$ */
    LM_TOK_SEMICOLON,
    LM_TOK_OTHER,       /* numbers, operators, punctuation, parameters */
    LM_TOK_ERROR        /* an unterminated quote or comment */
};

typedef struct lm_sqllex {
    const char *s;
    size_t len, pos;
} lm_sqllex;

typedef struct lm_sqltoken {
    enum lm_sqltok kind;
    size_t start, len;  /* bytes of the token in the text */
} lm_sqltoken;

void lm_sqllex_init(lm_sqllex *lx, const char *s, size_t len);
/* The next token, skipping white space and comments.  LM_TOK_ERROR (and
 * from then on LM_TOK_END) when a quote or comment does not end. */
lm_sqltoken lm_sqllex_next(lm_sqllex *lx);
/* Whether a WORD token is the keyword kw (ASCII, case-insensitive). */
bool lm_sqltok_is(const lm_sqllex *lx, const lm_sqltoken *t, const char *kw);

/* The statements of a query string: how many hold a token (empty ones, as
 * in "a;;", do not count); first: the first word of the first statement,
 * lower case, at most firstsz - 1 bytes ("" if it does not start with a
 * word).  Semicolons inside BEGIN ATOMIC ... END of CREATE FUNCTION or
 * PROCEDURE do not split.  Returns -1 when the text does not lex (an
 * unterminated quote or comment). */
int lm_sql_statements(const char *s, size_t len, char *first, size_t firstsz);

#endif
