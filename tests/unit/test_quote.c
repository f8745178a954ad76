/* common/pgconn.c's quoting and connection-string helpers, and a statement
 * of state.c built with them: none of these needs a connection (the rest of
 * pgconn.c and state.c does, and is left to the bats suites). */
#include <stdlib.h>
#include <string.h>

#include "pgconn.h"
#include "state.h"
#include "unit.h"

/* Each case's input through fn (a string made with malloc), checked against
 * the string it wants. */
static void check_each(char *(*fn)(const char *), const unit_str_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *s = fn(cases[i].in);
        if (!CHECK_STR(s, cases[i].want))
            unit_note("case %zu", i);
        free(s);
    }
}

static void ident(void)
{
    static const unit_str_case cases[] = {
        {"abc", "\"abc\""},
        {"", "\"\""},
        {"Mixed Case", "\"Mixed Case\""},
        {"select", "\"select\""},
        /* the only character doubled */
        {"a\"b", "\"a\"\"b\""},
        {"\"", "\"\"\"\""},
        {"\"\"", "\"\"\"\"\"\""},
        /* nothing else is special inside a quoted identifier */
        {"a'b", "\"a'b\""},
        {"a\\b", "\"a\\b\""},
        {"a.b", "\"a.b\""},
        {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
    };

    check_each(lm_ident, cases, UNIT_NCASES(cases));
}

static void qualified(void)
{
    char *s = lm_qualified("public", "t");
    CHECK_STR(s, "\"public\".\"t\"");
    free(s);
    s = lm_qualified("my\"schema", "a.b");
    CHECK_STR(s, "\"my\"\"schema\".\"a.b\"");
    free(s);
}

static void literal(void)
{
    static const unit_str_case cases[] = {
        {"abc", "'abc'"},
        {"", "''"},
        {"it's", "'it''s'"},
        {"''", "''''''"},
        {"a\"b", "'a\"b'"},
        /* a backslash: the E'' form, where it is doubled, so that the
         * value is the same whatever standard_conforming_strings says */
        {"a\\b", "E'a\\\\b'"},
        {"\\", "E'\\\\'"},
        {"it's a \\", "E'it''s a \\\\'"},
        {"\\'", "E'\\\\'''"},
        {"line\nbreak", "'line\nbreak'"},
    };

    check_each(lm_literal, cases, UNIT_NCASES(cases));
}

static void append_to_buffer(void)
{
    lm_buf b = {0};

    /* the quoting functions append: a statement is built in one buffer */
    lm_buf_put(&b, "SELECT ", 7);
    lm_quote_literal(&b, "x");
    lm_buf_put(&b, " FROM ", 6);
    lm_quote_qualified(&b, "s", "t");
    lm_buf_put(&b, " WHERE ", 7);
    lm_quote_ident(&b, "c");
    lm_buf_u8(&b, '\0');
    CHECK_STR((char *)b.data, "SELECT 'x' FROM \"s\".\"t\" WHERE \"c\"");
    lm_buf_free(&b);
}

/* common/state.c's one statement for a batch: the names as literals */
static void copy_forget_statement(void)
{
    lm_buf b = {0};

    lm_buf_puts(&b, "BEGIN; ");
    lm_copy_forget_sql(&b, "public", "it's\\");
    lm_buf_u8(&b, '\0');
    CHECK_STR((char *)b.data,
              "BEGIN; DELETE FROM lm.copy WHERE nspname = 'public' AND relname = E'it''s\\\\'");
    lm_buf_free(&b);
}

static void conninfo_dbname(void)
{
    /* conninfo quoting: a backslash before ' and \, not SQL's '' */
    static const unit_str_case cases[] = {
        {"mydb", "dbname='mydb'"},
        {"my db", "dbname='my db'"},
        {"a'b\\c", "dbname='a\\'b\\\\c'"},
        {"", "dbname=''"},
    };

    check_each(lm_conninfo_dbname, cases, UNIT_NCASES(cases));
}

static void conninfo_dbname_parses_back(void)
{
    /* what libpq reads back is the name given */
    static const char *const names[] = {"plain", "my db", "a'b", "back\\slash", "x'\\'y", ""};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *ci = lm_conninfo_dbname(names[i]);
        PQconninfoOption *opts = PQconninfoParse(ci, NULL);
        const char *got = NULL;

        if (CHECK(opts != NULL)) {
            for (PQconninfoOption *o = opts; o->keyword; o++)
                if (strcmp(o->keyword, "dbname") == 0)
                    got = o->val ? o->val : "";
            CHECK_STR(got, names[i]);
            PQconninfoFree(opts);
        } else {
            unit_note("%s", ci);
        }
        free(ci);
    }
}

static void conninfo_describe(void)
{
    static const char *const env[] = {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE",
                                      "PGUSER", "PGSERVICE"};
    static const unit_str_case cases[] = {
        {"host=db1 port=5433 dbname=app user=alice password=secret",
         "host=db1 port=5433 dbname=app user=alice"},
        {"postgresql://bob:secret@db2:6000/shop?sslmode=require",
         "host=db2 port=6000 dbname=shop user=bob"},
        {"", "defaults"},
    };
    static const unit_str_case with_port[] = {{"host=h", "host=h port=7777"}};

    /* the description falls back on the libpq environment: none here */
    for (size_t i = 0; i < UNIT_NCASES(env); i++)
        unsetenv(env[i]);
    check_each(lm_conninfo_describe, cases, UNIT_NCASES(cases));
    setenv("PGPORT", "7777", 1);
    check_each(lm_conninfo_describe, with_port, UNIT_NCASES(with_port));
    unsetenv("PGPORT");
}

static void conninfo_valid(void)
{
    /* pieces libpq quotes back in its message: the whole URI, or the
     * password it could not decode */
    static const char *const leaky[] = {
        "postgresql://u:secret@[h/d",
        "postgresql://u:sec%zzret@h/d",
    };
    char *err = NULL;

    CHECK(lm_conninfo_valid("host=h dbname=d", &err));
    CHECK(lm_conninfo_valid("", &err));
    CHECK(lm_conninfo_valid(NULL, &err));
    CHECK(lm_conninfo_valid("postgresql://u@h/d", &err));
    CHECK(err == NULL);

    /* an unknown keyword is named */
    CHECK(!lm_conninfo_valid("host=h bogus=1", &err));
    if (CHECK(err != NULL))
        CHECK(strstr(err, "invalid connection option \"bogus\"") != NULL);
    free(err);
    /* a quoted piece may hold a password: left out */
    for (size_t i = 0; i < sizeof leaky / sizeof leaky[0]; i++) {
        err = NULL;
        CHECK(!lm_conninfo_valid(leaky[i], &err));
        if (CHECK(err != NULL)) {
            if (!CHECK(strstr(err, "sec") == NULL) || !CHECK(strstr(err, "\"...\"") != NULL))
                unit_note("%s", err);
        }
        free(err);
    }
}

const unit_test unit_quote_tests[] = {
    {"identifiers always quoted, double quotes doubled", ident},
    {"schema-qualified names", qualified},
    {"literals: quotes doubled, E'' for backslashes", literal},
    {"quoting appends to a statement", append_to_buffer},
    {"lm.copy: forgetting a table's chunks, in a batch", copy_forget_statement},
    {"dbname for a connection string", conninfo_dbname},
    {"dbname parses back through libpq", conninfo_dbname_parses_back},
    {"connection description leaves the password out", conninfo_describe},
    {"connection string validation hides quoted pieces", conninfo_valid},
    {NULL, NULL},
};
