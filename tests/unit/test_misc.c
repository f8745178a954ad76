/* Small pieces of common/ with exact answers: JSON string escaping, slot
 * name rules, the cutover marker's token and MAC. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "marker.h"
#include "opts.h"
#include "tsdbrestore.h"
#include "unit.h"

static void json_strings(void)
{
    static const unit_case cases[] = {   /* the input, its length, the JSON */
        {"abc", 3, "\"abc\""},
        {"", 0, "\"\""},
        {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
        {"\n\r\t", 3, "\"\\n\\r\\t\""},
        {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\""},
        {"a\0b", 3, "\"a\\u0000b\""},
        /* UTF-8 passes through as it is */
        {"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""},
    };

    for (size_t i = 0; i < UNIT_NCASES(cases); i++) {
        lm_buf b = {0};
        lm_json_str(&b, cases[i].in, cases[i].n);
        lm_buf_u8(&b, '\0');
        CHECK_STR((char *)b.data, cases[i].want);
        lm_buf_free(&b);
    }
}

static void slot_names(void)
{
    const char *why = NULL;
    char long_name[80];

    CHECK(lm_slot_name_valid("lm_slot_1", &why));
    memset(long_name, 'a', 63);
    long_name[63] = '\0';
    CHECK(lm_slot_name_valid(long_name, &why));
    long_name[63] = 'a';
    long_name[64] = '\0';
    CHECK(!lm_slot_name_valid(long_name, &why));
    CHECK_STR(why, "it is longer than 63 characters");
    CHECK(!lm_slot_name_valid("", &why));
    CHECK_STR(why, "it is empty");
    CHECK(!lm_slot_name_valid("Upper", &why));
    CHECK_STR(why, "only lower case letters, digits and underscores are allowed");
    CHECK(!lm_slot_name_valid("with-dash", &why));
    CHECK(!lm_slot_name_valid("sp ace", &why));
}

static void marker_key(void)
{
    lm_marker_key k;
    char hex[200];

    /* 16 to 64 bytes, white space around ignored, either case */
    CHECK(lm_marker_key_parse("000102030405060708090a0b0c0d0e0F", 32, &k));
    CHECK_U64(k.len, 16);
    CHECK_U64(k.key[15], 0x0f);
    CHECK(lm_marker_key_parse("  0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b\n", 44, &k));
    CHECK_U64(k.len, 20);
    memset(hex, 'f', sizeof hex);
    CHECK(lm_marker_key_parse(hex, 128, &k));
    CHECK_U64(k.len, 64);
    CHECK(!lm_marker_key_parse(hex, 130, &k));      /* 65 bytes */
    CHECK(!lm_marker_key_parse(hex, 30, &k));       /* 15 bytes */
    CHECK(!lm_marker_key_parse(hex, 33, &k));       /* odd */
    CHECK(!lm_marker_key_parse("", 0, &k));
    CHECK(!lm_marker_key_parse("0g0102030405060708090a0b0c0d0e0f", 32, &k));
    CHECK(!lm_marker_key_parse("0001020304050607 08090a0b0c0d0e0f", 33, &k));
}

/* A valid marker M (its ID's digit at IDPOS) with any change refused: the
 * MAC's last digit, the ID, one byte short; M is as it was afterwards. */
static void marker_changes(const lm_marker_key *k, char *m, size_t idpos,
                           bool (*verify)(const lm_marker_key *, const char *, size_t))
{
    size_t n = strlen(m);
    char last = m[n - 1], id = m[idpos];

    m[n - 1] = last == 'a' ? 'b' : 'a';
    CHECK(!verify(k, m, n));
    m[n - 1] = last;
    m[idpos] = id == '2' ? '3' : '2';
    CHECK(!verify(k, m, n));
    m[idpos] = id;
    CHECK(verify(k, m, n));
    CHECK(!verify(k, m, n - 1));
}

/* What a marker of either kind (WORD) refuses: an ID with a space (it
 * cannot be told from the MAC), the word alone, another key's marker. */
static void marker_refusals(lm_marker_key k, const char *word,
                            char *(*make)(const lm_marker_key *, const char *),
                            bool (*verify)(const lm_marker_key *, const char *, size_t))
{
    char *m = lm_psprintf("%s a b %064d", word, 0);
    CHECK(!verify(&k, m, strlen(m)));
    free(m);
    m = lm_psprintf("%s ", word);
    CHECK(!verify(&k, m, strlen(m)));
    free(m);
    m = make(&k, "m1");
    k.key[0] ^= 1;
    CHECK(!verify(&k, m, strlen(m)));
    free(m);
}

static void marker_mac(void)
{
    lm_marker_key k;
    char *m;

    if (!CHECK(lm_marker_key_parse("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", 40, &k)))
        return;
    /* HMAC-SHA256(key, "m1") in lower-case hex (Python's hmac module) */
    m = lm_marker_make(&k, "m1");
    CHECK_STR(m, "cutover m1 1892f3106f13183073fdec42752e7550347dc51317b506d011893a2a9473007d");
    CHECK(lm_marker_verify(&k, m, strlen(m)));
    /* any change refused: the MAC, the ID, the length, the upper case */
    marker_changes(&k, m, 9, lm_marker_verify);
    for (char *p = m + 11; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    CHECK(!lm_marker_verify(&k, m, strlen(m)));
    free(m);
    CHECK(!lm_marker_verify(&k, "", 0));
    marker_refusals(k, "cutover", lm_marker_make, lm_marker_verify);
}

/* The rehearsal marker: its MAC is over "rehearse ID", so it verifies as no
 * cutover marker and no cutover marker verifies as one. */
static void marker_rehearsal(void)
{
    lm_marker_key k;
    char *m, *c;

    if (!CHECK(lm_marker_key_parse("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", 40, &k)))
        return;
    /* HMAC-SHA256(key, "rehearse m1") in lower-case hex (Python's hmac module) */
    m = lm_marker_make_rehearsal(&k, "m1");
    CHECK_STR(m, "rehearse m1 df9d1eef2083146d566357b83f3ef8438a205de40b4e44b5fbaac783a23510ba");
    CHECK(lm_marker_verify_rehearsal(&k, m, strlen(m)));
    CHECK(!lm_marker_verify(&k, m, strlen(m)));
    /* the cutover's MAC under a rehearsal's word, and the other way round */
    c = lm_marker_make(&k, "m1");
    CHECK(!lm_marker_verify_rehearsal(&k, c, strlen(c)));
    free(m);
    m = lm_psprintf("rehearse m1 %s", c + strlen("cutover m1 "));
    CHECK(!lm_marker_verify_rehearsal(&k, m, strlen(m)));
    free(m);
    m = lm_marker_make_rehearsal(&k, "m1");
    free(c);
    c = lm_psprintf("cutover m1 %s", m + strlen("rehearse m1 "));
    CHECK(!lm_marker_verify(&k, c, strlen(c)));
    free(c);
    /* any change refused: the MAC, the ID, the length; an ID with a space */
    marker_changes(&k, m, 10, lm_marker_verify_rehearsal);
    free(m);
    marker_refusals(k, "rehearse", lm_marker_make_rehearsal, lm_marker_verify_rehearsal);
}

/* a hypertable's constraint from pg_restore's script, without ONLY */
static void tsdb_without_only(void)
{
    const char *head = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abcDEF123\n\n"
                       "SET statement_timeout = 0;\n"
                       "SELECT pg_catalog.set_config('search_path', '', false);\n\n"
                       "--\n-- Name: ALTER TABLE ONLY x; Type: CONSTRAINT; Schema: public; Owner: o\n--\n\n";
    const char *tail = "\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abcDEF123\n\n";
    const char *set = "SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n";
    char *in, *out, *want;

    in = lm_psprintf("%sALTER TABLE ONLY \"Sch ema\".\"t;x\"\n    ADD CONSTRAINT k PRIMARY KEY (a);%s", head, tail);
    out = lm_tsdb_without_only(in, "\"Sch ema\".\"t;x\"");
    want = lm_psprintf("%sALTER TABLE \"Sch ema\".\"t;x\"\n    ADD CONSTRAINT k PRIMARY KEY (a);\n\n--\n"
                       "-- PostgreSQL database dump complete\n--\n\n", set);
    CHECK_STR(out, want);
    free(out);
    free(want);
    /* another table: refused; a check constraint comes without ONLY */
    CHECK(lm_tsdb_without_only(in, "public.t") == NULL);
    free(in);
    in = lm_psprintf("%sALTER TABLE public.r\n    ADD CONSTRAINT c CHECK ((v <> '\nALTER TABLE ONLY public.r\n'::text)) "
                     "NOT VALID;%s", head, tail);
    out = lm_tsdb_without_only(in, "public.r");
    CHECK(out && strstr(out, "ALTER TABLE public.r\n    ADD CONSTRAINT c CHECK ((v <> '\nALTER TABLE ONLY public.r\n'"));
    CHECK(out && !strstr(out, "restrict"));
    free(out);
    free(in);
    CHECK(lm_tsdb_without_only("SET x = 1;\n", "public.r") == NULL);
}

const unit_test unit_misc_tests[] = {
    {"JSON string escaping", json_strings},
    {"replication slot name rules", slot_names},
    {"cutover marker token parsing", marker_key},
    {"cutover marker MAC made and verified", marker_mac},
    {"rehearsal marker MAC made and verified, never a cutover's", marker_rehearsal},
    {"a hypertable's constraint without ONLY", tsdb_without_only},
    {NULL, NULL},
};
