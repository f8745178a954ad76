/* common/lsn.c: LSNs as PostgreSQL writes them, PostgreSQL timestamps. */
#include <stdio.h>

#include "lsn.h"
#include "unit.h"

static void parse_known(void)
{
    uint64_t v = 0;

    CHECK(lm_lsn_parse("16/B374D848", &v));
    CHECK_U64(v, UINT64_C(0x16B374D848));
    v = 0;
    CHECK(lm_lsn_parse("16/b374d848", &v));
    CHECK_U64(v, UINT64_C(0x16B374D848));
    CHECK(lm_lsn_parse("0/0", &v));
    CHECK_U64(v, 0);
    CHECK(lm_lsn_parse("FFFFFFFF/FFFFFFFF", &v));
    CHECK_U64(v, UINT64_MAX);
    CHECK(lm_lsn_parse("1/0", &v));
    CHECK_U64(v, UINT64_C(0x100000000));
    CHECK(lm_lsn_parse("0/1", &v));
    CHECK_U64(v, 1);
    /* eight digits a side, leading zeros included, as pg_lsn_in takes them */
    CHECK(lm_lsn_parse("00000000/0000000A", &v));
    CHECK_U64(v, 10);
}

static void parse_refuses(void)
{
    static const char *const bad[] = {
        "",                     /* empty */
        "/",                    /* no digits either side */
        "16/",                  /* no low half */
        "/B374D848",            /* no high half */
        "16B374D848",           /* no slash */
        "16/B374D84G",          /* not hex */
        "1G/0",
        "123456789/0",          /* nine digits */
        "0/123456789",
        "16/B374D848 ",         /* trailing junk */
        "16/B374D848x",
        "16/B374D848\n",
        " 16/B374D848",         /* leading space */
        "16 /B374D848",
        "+1/0",                 /* signs and prefixes strtoul would take */
        "-1/0",
        "0/-1",
        "0x1/0",
        "1/2/3",                /* two slashes */
    };
    uint64_t v;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 42;
        if (!CHECK(!lm_lsn_parse(bad[i], &v)))
            unit_note("accepted \"%s\"", bad[i]);
    }
    CHECK(!lm_lsn_parse(NULL, &v));
}

static void format_known(void)
{
    char buf[LM_LSN_BUFSZ];

    CHECK_STR(lm_lsn_format(0, buf), "0/0");
    CHECK_STR(lm_lsn_format(UINT64_C(0x16B374D848), buf), "16/B374D848");
    CHECK_STR(lm_lsn_format(UINT64_MAX, buf), "FFFFFFFF/FFFFFFFF");
    /* no zero padding, upper case: the server's own %X/%X */
    CHECK_STR(lm_lsn_format(UINT64_C(0x100000000), buf), "1/0");
    CHECK_STR(lm_lsn_format(10, buf), "0/A");
    CHECK(lm_lsn_format(1, buf) == buf);
}

static void format_round_trip(void)
{
    static const uint64_t vals[] = {
        0, 1, 0xFFFFFFFF, UINT64_C(0x100000000), UINT64_C(0x16B374D848),
        UINT64_C(0x8000000000000000), UINT64_C(0x0123456789ABCDEF), UINT64_MAX - 1, UINT64_MAX,
    };
    char buf[LM_LSN_BUFSZ];

    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint64_t back = 0;
        CHECK(lm_lsn_parse(lm_lsn_format(vals[i], buf), &back));
        CHECK_U64(back, vals[i]);
    }
}

static void pgtime_format_known(void)
{
    char buf[64];

    CHECK_STR(lm_pgtime_format(0, buf), "2000-01-01 00:00:00.000000+00");
    /* before the epoch: the microseconds count up from the second below */
    CHECK_STR(lm_pgtime_format(-1, buf), "1999-12-31 23:59:59.999999+00");
    CHECK_STR(lm_pgtime_format(-INT64_C(946684800000000), buf), "1970-01-01 00:00:00.000000+00");
    /* date -u -d '2024-02-29 12:34:56' +%s is 1709210096 */
    CHECK_STR(lm_pgtime_format(INT64_C(762525296789012), buf), "2024-02-29 12:34:56.789012+00");
    /* 1900 is not a leap year: a second before 1900-03-01 */
    CHECK_STR(lm_pgtime_format(-INT64_C(3150576001000000), buf), "1900-02-28 23:59:59.000000+00");
}

static void pgtime_range(void)
{
    char buf[64];

    /* 730119 days from 0001-01-01 to 2000-01-01 */
    CHECK_I64(LM_PGTIME_MIN, -INT64_C(730119) * 86400 * 1000000);
    CHECK(lm_pgtime_valid(LM_PGTIME_MIN));
    CHECK(lm_pgtime_valid(LM_PGTIME_MAX));
    CHECK(lm_pgtime_valid(0));
    CHECK(!lm_pgtime_valid(LM_PGTIME_MIN - 1));
    CHECK(!lm_pgtime_valid(LM_PGTIME_MAX + 1));
    CHECK(!lm_pgtime_valid(INT64_MIN));
    CHECK(!lm_pgtime_valid(INT64_MAX));
    CHECK_STR(lm_pgtime_format(LM_PGTIME_MIN, buf), "0001-01-01 00:00:00.000000+00");
    CHECK_STR(lm_pgtime_format(LM_PGTIME_MAX, buf), "9999-12-31 23:59:59.999999+00");
    /* years 0 and 10000 are refused, not written with the wrong digits */
    CHECK_STR(lm_pgtime_format(LM_PGTIME_MIN - 1, buf), "(invalid timestamp -63082281600000001)");
    CHECK_STR(lm_pgtime_format(LM_PGTIME_MAX + 1, buf), "(invalid timestamp 252455616000000000)");
    /* no overflow on the way to the refusal (UBSan would say) */
    CHECK_STR(lm_pgtime_format(INT64_MAX, buf), "(invalid timestamp 9223372036854775807)");
    CHECK_STR(lm_pgtime_format(INT64_MIN, buf), "(invalid timestamp -9223372036854775808)");
}

static void clocks(void)
{
    int64_t now = lm_now_pgtime(), m1, m2;

    /* after 2020-01-01 (631152000 s after 2000), inside the valid range */
    CHECK(now > INT64_C(631152000) * 1000000);
    CHECK(lm_pgtime_valid(now));
    m1 = lm_monotonic_us();
    m2 = lm_monotonic_us();
    CHECK(m1 > 0);
    CHECK(m2 >= m1);
}

const unit_test unit_lsn_tests[] = {
    {"parse known LSNs", parse_known},
    {"parse refuses malformed LSNs", parse_refuses},
    {"format known LSNs", format_known},
    {"format then parse round trip", format_round_trip},
    {"timestamps format as ISO 8601 UTC", pgtime_format_known},
    {"timestamps outside years 1..9999 refused", pgtime_range},
    {"wall and monotonic clocks", clocks},
    {NULL, NULL},
};
