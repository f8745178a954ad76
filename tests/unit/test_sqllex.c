/* common/sqllex.c: statement counting over quotes, dollar quotes,
 * comments and SQL-standard function bodies. */
#include <string.h>

#include "sqllex.h"
#include "unit.h"

static void statements(void)
{
    /* the SQL, how many statements it holds, the first one's first word */
    static const unit_case cases[] = {
        {"CREATE TABLE x ()", 1, "create"},
        {"CREATE TABLE x ();", 1, "create"},
        {"  create table x () ;  ;; ", 1, "create"},
        {"", 0, ""},
        {" ; -- nothing\n", 0, ""},
        {"CREATE TABLE x (); INSERT INTO y VALUES (1)", 2, "create"},
        {"ALTER TABLE a ADD b int;ALTER TABLE a ADD c int", 2, "alter"},
        /* semicolons in literals, identifiers and comments do not split */
        {"COMMENT ON TABLE t IS 'a; b'", 1, "comment"},
        {"COMMENT ON TABLE t IS 'it''s; here'", 1, "comment"},
        {"CREATE TABLE \"a;b\" (\"c\"\"; d\" int)", 1, "create"},
        {"CREATE TABLE t (a int) -- x; DROP TABLE u\n", 1, "create"},
        {"CREATE TABLE t /* ; /* nested ; */ still; */ (a int)", 1, "create"},
        {"/* lead */ -- line\n ALTER TABLE t ADD c int", 1, "alter"},
        {"COMMENT ON TABLE t IS E'a\\'; b'", 1, "comment"},
        {"COMMENT ON TABLE t IS e'\\\\'; DROP TABLE t", 2, "comment"},
        /* a backslash in a plain literal is a character (standard_conforming_strings) */
        {"COMMENT ON TABLE t IS 'a\\'; DROP TABLE t", 2, "comment"},
        {"COMMENT ON TABLE t IS U&'d\\0061t; a'", 1, "comment"},
        {"CREATE TABLE U&\"a;\" ()", 1, "create"},
        {"SELECT B'1010'; SELECT X'ff;'", 2, "select"},
        /* dollar quotes, with and without a tag, holding other delimiters */
        {"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT 2 $$ LANGUAGE sql", 1, "create"},
        {"CREATE FUNCTION f() RETURNS int AS $body$ SELECT '$$'; $x$ $body$ LANGUAGE sql; DROP TABLE t",
         2, "create"},
        {"DO $a$ BEGIN PERFORM 1; END $a$", 1, "do"},
        /* $1 and identifiers with $ are no dollar quotes */
        {"PREPARE p AS SELECT $1; EXECUTE p(1)", 2, "prepare"},
        {"CREATE TABLE a$b (c$ int); SELECT 1", 2, "create"},
        /* SQL-standard bodies: their semicolons belong to the statement */
        {"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END", 1, "create"},
        {"CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); "
         "SELECT CASE WHEN true THEN 1 ELSE 2 END; END; DROP TABLE t", 2, "create"},
        {"CREATE TABLE begin_atomic (begin int); SELECT 1", 2, "create"},
    };

    for (size_t i = 0; i < UNIT_NCASES(cases); i++) {
        char first[16];
        int n = lm_sql_statements(cases[i].in, strlen(cases[i].in), first, sizeof first);
        if (!CHECK_I64(n, cases[i].n) || !CHECK_STR(first, cases[i].want))
            unit_note("case %zu: %s", i, cases[i].in);
    }
}

static void unterminated(void)
{
    static const char *const bad[] = {
        "COMMENT ON TABLE t IS 'a",
        "CREATE TABLE \"a (b int)",
        "CREATE FUNCTION f() AS $x$ SELECT 1 $y$",
        "CREATE TABLE t () /* /* */",
        "COMMENT ON TABLE t IS E'\\'",
    };

    for (size_t i = 0; i < UNIT_NCASES(bad); i++)
        if (!CHECK_I64(lm_sql_statements(bad[i], strlen(bad[i]), NULL, 0), -1))
            unit_note("case %zu: %s", i, bad[i]);
}

static void first_word(void)
{
    char first[4];
    /* cut to the buffer, lower-cased */
    CHECK_I64(lm_sql_statements("ALTER TABLE t", 13, first, sizeof first), 1);
    CHECK_STR(first, "alt");
    /* a statement that starts with no word */
    CHECK_I64(lm_sql_statements("(SELECT 1)", 10, first, sizeof first), 1);
    CHECK_STR(first, "");
    /* the length given counts, not a NUL */
    CHECK_I64(lm_sql_statements("DROP TABLE t; DROP TABLE u", 12, first, sizeof first), 1);
}

static void tokens(void)
{
    const char *sql = "CREATE INDEX CONCURRENTLY \"i\" ON t (a)";
    lm_sqllex lx;
    lm_sqltoken t;

    lm_sqllex_init(&lx, sql, strlen(sql));
    t = lm_sqllex_next(&lx);
    CHECK(lm_sqltok_is(&lx, &t, "create"));
    t = lm_sqllex_next(&lx);
    CHECK(lm_sqltok_is(&lx, &t, "INDEX"));
    t = lm_sqllex_next(&lx);
    CHECK(lm_sqltok_is(&lx, &t, "concurrently"));
    CHECK_U64(t.start, 13);
    CHECK_U64(t.len, 12);
    t = lm_sqllex_next(&lx);
    CHECK_I64(t.kind, LM_TOK_IDENT);
    CHECK(!lm_sqltok_is(&lx, &t, "i"));
}

const unit_test unit_sqllex_tests[] = {
    {"statements", statements},
    {"unterminated", unterminated},
    {"first word", first_word},
    {"tokens", tokens},
    {NULL, NULL},
};
