/* common/record.c: every record type lm-format(5) defines, encoded and
 * decoded back field by field; the bytes of a few checked against the
 * spec; truncated and malformed bodies refused. */
#include <string.h>

#include "record.h"
#include "unit.h"

/* Encode r, check that the body decodes (into *out, strings in arena),
 * that it encodes again to the same bytes, and that every proper prefix is
 * refused: each field is required, so a body cut anywhere is malformed. */
static bool round_trip(const lm_record *r, lm_record *out, lm_arena *arena, lm_buf *body)
{
    lm_buf again = {0};
    bool ok;

    lm_buf_reset(body);
    lm_record_encode(body, r);
    ok = CHECK(lm_record_decode(r->type, body->data, body->len, out, arena));
    if (!ok)
        return false;
    CHECK_U64(out->type, r->type);
    lm_record_encode(&again, out);
    CHECK_MEM(again.data, again.len, body->data, body->len);
    lm_buf_free(&again);
    for (size_t len = 0; len < body->len; len++) {
        lm_record cut;
        lm_arena scratch = {0};
        if (!CHECK(!lm_record_decode(r->type, body->data, len, &cut, &scratch)))
            unit_note("%s record cut to %zu of %zu bytes was accepted",
                      lm_rectype_name(r->type), len, body->len);
        lm_arena_free(&scratch);
    }
    return true;
}

/* What a round-trip test holds: the record it encodes (r), the record
 * decoded (d), the decoded strings (a) and the encoded body (b). */
typedef struct fixture {
    lm_record r, d;
    lm_arena a;
    lm_buf b;
} fixture;

/* round_trip of f->r; whether f->d holds what was decoded */
static bool trip(fixture *f)
{
    return round_trip(&f->r, &f->d, &f->a, &f->b);
}

/* f->r encoded anew into f->b, with no decoding */
static void encode(fixture *f)
{
    lm_buf_reset(&f->b);
    lm_record_encode(&f->b, &f->r);
}

/* f->b is the body lm-format(5) gives, in hex */
static void body_is(const fixture *f, const char *hex)
{
    uint8_t want[64];
    size_t n = unit_unhex(hex, want, sizeof want);

    if (!CHECK_MEM(f->b.data, f->b.len, want, n))
        unit_note("the %s record's body", lm_rectype_name(f->r.type));
}

static void fixture_free(fixture *f)
{
    lm_buf_free(&f->b);
    lm_arena_free(&f->a);
}

static void check_tuple(const lm_tuple *got, const lm_tuple *want)
{
    if (!CHECK_U64(got->ncols, want->ncols))
        return;
    for (uint32_t i = 0; i < want->ncols; i++) {
        const lm_value *g = &got->cols[i], *w = &want->cols[i];
        CHECK_U64((uint8_t)g->kind, (uint8_t)w->kind);
        if (w->kind == 't' || w->kind == 'b')
            CHECK_MEM(g->data, g->len, w->data, w->len);
        else
            CHECK_U64(g->len, 0);
    }
}

/* a row with every value kind, an empty text and a binary NUL */
static lm_value row_vals[] = {
    {'t', 5, (const uint8_t *)"hello"},
    {'n', 0, NULL},
    {'u', 0, NULL},
    {'t', 0, (const uint8_t *)""},
    {'b', 3, (const uint8_t *)"\x00\xff\x01"},
};
static lm_value key_vals[] = {
    {'t', 2, (const uint8_t *)"42"},
    {'n', 0, NULL},
    {'n', 0, NULL},
    {'n', 0, NULL},
    {'n', 0, NULL},
};
static const lm_tuple row = {5, row_vals};
static const lm_tuple key = {5, key_vals};

static void header(void)
{
    fixture f = {.r = {.type = LM_REC_HEADER, .u.header = {
        .version = LM_FORMAT_VERSION, .sysid = UINT64_C(7301234567890123456), .timeline = 3,
        .server_version = 150004, .dbname = "app db", .slot = "lm_slot", .publication = "",
        .encoding = "UTF8", .producer = "lm-decode 0.1.0", .start_lsn = UINT64_C(0x16B374D848),
        .created = INT64_C(762525296789012)}}};

    if (trip(&f)) {
        CHECK_U64(f.d.u.header.version, LM_FORMAT_VERSION);
        CHECK_U64(f.d.u.header.sysid, UINT64_C(7301234567890123456));
        CHECK_U64(f.d.u.header.timeline, 3);
        CHECK_U64(f.d.u.header.server_version, 150004);
        CHECK_STR(f.d.u.header.dbname, "app db");
        CHECK_STR(f.d.u.header.slot, "lm_slot");
        CHECK_STR(f.d.u.header.publication, "");
        CHECK_STR(f.d.u.header.encoding, "UTF8");
        CHECK_STR(f.d.u.header.producer, "lm-decode 0.1.0");
        CHECK_U64(f.d.u.header.start_lsn, UINT64_C(0x16B374D848));
        CHECK_I64(f.d.u.header.created, INT64_C(762525296789012));
    }
    /* the sysid is a fixed 8 bytes, big-endian, after the version */
    CHECK_MEM(f.b.data, 9, "\x01\x65\x53\x32\x27\xe8\xe4\xba\xc0", 9);
    fixture_free(&f);
}

static void relation(void)
{
    lm_column cols[] = {
        {LM_COL_KEY, "id", 23, -1},
        {0, "Name \"quoted\"", 1043, 68},
        {0, "", 16385, INT32_MIN},
        {LM_COL_KEY, "ts", 1184, INT32_MAX},
    };
    fixture f = {.r = {.type = LM_REC_RELATION, .u.rel = {
        .relid = 4000000000u, .nspname = "public", .relname = "t", .replident = 'f',
        .natts = 4, .cols = cols}}};

    if (trip(&f)) {
        CHECK_U64(f.d.u.rel.relid, 4000000000u);
        CHECK_STR(f.d.u.rel.nspname, "public");
        CHECK_STR(f.d.u.rel.relname, "t");
        CHECK_U64((uint8_t)f.d.u.rel.replident, 'f');
        if (CHECK_U64(f.d.u.rel.natts, 4)) {
            for (int i = 0; i < 4; i++) {
                CHECK_U64(f.d.u.rel.cols[i].flags, cols[i].flags);
                CHECK_STR(f.d.u.rel.cols[i].name, cols[i].name);
                CHECK_U64(f.d.u.rel.cols[i].typoid, cols[i].typoid);
                CHECK_I64(f.d.u.rel.cols[i].typmod, cols[i].typmod);
            }
        }
    }
    /* no columns at all is a relation too */
    f.r.u.rel.natts = 0;
    if (trip(&f))
        CHECK_U64(f.d.u.rel.natts, 0);
    fixture_free(&f);
}

/* a copy owns every string: changing or freeing the original leaves it whole */
static void relation_dup_free(void)
{
    char nsp[] = "public", rel[] = "t", c0[] = "id", c1[] = "Name \"quoted\"";
    lm_column cols[] = {
        {LM_COL_KEY, c0, 23, -1},
        {0, c1, 1043, 68},
    };
    lm_relation r = {4000000000u, nsp, rel, 'i', 2, cols, NULL}, d, none;

    d = lm_relation_dup(&r);
    CHECK(d.nspname != r.nspname && d.relname != r.relname && d.cols != r.cols);
    nsp[0] = rel[0] = c0[0] = c1[0] = 'X';
    CHECK_U64(d.relid, 4000000000u);
    CHECK_STR(d.nspname, "public");
    CHECK_STR(d.relname, "t");
    CHECK_U64((uint8_t)d.replident, 'i');
    if (CHECK_U64(d.natts, 2)) {
        CHECK(d.cols[0].name != c0 && d.cols[1].name != c1);
        CHECK_STR(d.cols[0].name, "id");
        CHECK_STR(d.cols[1].name, "Name \"quoted\"");
        for (int i = 0; i < 2; i++) {
            CHECK_U64(d.cols[i].flags, cols[i].flags);
            CHECK_U64(d.cols[i].typoid, cols[i].typoid);
            CHECK_I64(d.cols[i].typmod, cols[i].typmod);
        }
    }
    lm_relation_free(&d);
    CHECK(d.cols == NULL && d.names == NULL && d.nspname == NULL && d.relname == NULL);
    CHECK_U64(d.natts, 0);
    /* a relation without columns, as pgoutput sends for a table with none */
    r.natts = 0;
    r.cols = NULL;
    none = lm_relation_dup(&r);
    CHECK_U64(none.natts, 0);
    CHECK_STR(none.nspname, "Xublic");
    CHECK_STR(none.relname, "X");
    lm_relation_free(&none);
}

static void type_and_origin(void)
{
    fixture f = {.r = {.type = LM_REC_TYPE,
                       .u.type = {.oid = 16390, .nspname = "public", .typname = "mood"}}};

    if (trip(&f)) {
        CHECK_U64(f.d.u.type.oid, 16390);
        CHECK_STR(f.d.u.type.nspname, "public");
        CHECK_STR(f.d.u.type.typname, "mood");
    }
    f.r = (lm_record){.type = LM_REC_ORIGIN, .u.origin = {.lsn = UINT64_MAX, .name = "pg_16399"}};
    if (trip(&f)) {
        CHECK_U64(f.d.u.origin.lsn, UINT64_MAX);
        CHECK_STR(f.d.u.origin.name, "pg_16399");
    }
    fixture_free(&f);
}

static void begin_commit(void)
{
    fixture f = {.r = {.type = LM_REC_BEGIN, .u.begin = {
        .final_lsn = UINT64_C(0x16B374D848), .commit_ts = -INT64_C(3150576001000000),
        .xid = UINT32_MAX}}};

    if (trip(&f)) {
        CHECK_U64(f.d.u.begin.final_lsn, UINT64_C(0x16B374D848));
        CHECK_I64(f.d.u.begin.commit_ts, -INT64_C(3150576001000000));
        CHECK_U64(f.d.u.begin.xid, UINT32_MAX);
    }

    f.r = (lm_record){.type = LM_REC_COMMIT, .u.commit = {
        .flags = 0, .commit_lsn = UINT64_C(0x16B374D848), .end_lsn = UINT64_C(0x16B374D878),
        .commit_ts = INT64_C(762525296789012)}};
    if (trip(&f)) {
        CHECK_U64(f.d.u.commit.flags, 0);
        CHECK_U64(f.d.u.commit.commit_lsn, UINT64_C(0x16B374D848));
        CHECK_U64(f.d.u.commit.end_lsn, UINT64_C(0x16B374D878));
        CHECK_I64(f.d.u.commit.commit_ts, INT64_C(762525296789012));
    }
    /* lm-format(5): flags u8, commit_lsn varint, end_lsn as the svarint
     * delta 0x30, commit_ts svarint */
    body_is(&f, "00 c8 b0 d3 9b eb 02 60 a8 98 94 97 e8 e0 da 02");

    /* an end before the commit (the delta is signed) and the extremes */
    f.r.u.commit.flags = 0xff;
    f.r.u.commit.commit_lsn = UINT64_MAX;
    f.r.u.commit.end_lsn = 5;
    f.r.u.commit.commit_ts = INT64_MIN;
    if (trip(&f)) {
        CHECK_U64(f.d.u.commit.flags, 0xff);
        CHECK_U64(f.d.u.commit.commit_lsn, UINT64_MAX);
        CHECK_U64(f.d.u.commit.end_lsn, 5);
        CHECK_I64(f.d.u.commit.commit_ts, INT64_MIN);
    }
    fixture_free(&f);
}

static void insert(void)
{
    lm_value two[] = {{'t', 2, (const uint8_t *)"ab"}, {'n', 0, NULL}, {'u', 0, NULL}};
    fixture f = {.r = {.type = LM_REC_INSERT, .u.insert = {.relid = 16384, .newtup = row}}};

    if (trip(&f)) {
        CHECK_U64(f.d.u.insert.relid, 16384);
        check_tuple(&f.d.u.insert.newtup, &row);
    }
    /* relid 16384, three values: t "ab", n, u */
    f.r.u.insert.newtup = (lm_tuple){3, two};
    encode(&f);
    body_is(&f, "80 80 01 03 74 02 61 62 6e 75");
    /* an empty row */
    f.r.u.insert.newtup = (lm_tuple){0, NULL};
    if (trip(&f))
        CHECK_U64(f.d.u.insert.newtup.ncols, 0);
    fixture_free(&f);
}

static void update(void)
{
    static const char kinds[] = {0, 'K', 'O'};
    fixture f = {0};

    for (size_t i = 0; i < sizeof kinds; i++) {
        f.r = (lm_record){.type = LM_REC_UPDATE,
                          .u.update = {.relid = 77, .oldkind = kinds[i], .newtup = row}};
        if (kinds[i])
            f.r.u.update.oldtup = kinds[i] == 'K' ? key : row;
        if (trip(&f)) {
            CHECK_U64(f.d.u.update.relid, 77);
            CHECK_U64((uint8_t)f.d.u.update.oldkind, (uint8_t)kinds[i]);
            if (kinds[i])
                check_tuple(&f.d.u.update.oldtup, &f.r.u.update.oldtup);
            else
                CHECK_U64(f.d.u.update.oldtup.ncols, 0);
            check_tuple(&f.d.u.update.newtup, &row);
        }
        lm_arena_reset(&f.a);
    }
    fixture_free(&f);
}

static void deletion(void)
{
    static const char kinds[] = {'K', 'O'};
    fixture f = {0};

    for (size_t i = 0; i < sizeof kinds; i++) {
        f.r = (lm_record){.type = LM_REC_DELETE, .u.del = {
            .relid = 78, .oldkind = kinds[i], .oldtup = kinds[i] == 'K' ? key : row}};
        if (trip(&f)) {
            CHECK_U64(f.d.u.del.relid, 78);
            CHECK_U64((uint8_t)f.d.u.del.oldkind, (uint8_t)kinds[i]);
            check_tuple(&f.d.u.del.oldtup, &f.r.u.del.oldtup);
        }
    }
    fixture_free(&f);
}

static void truncation(void)
{
    uint32_t relids[] = {1, 16384, UINT32_MAX};
    fixture f = {.r = {.type = LM_REC_TRUNCATE, .u.truncate = {
        .flags = LM_TRUNCATE_CASCADE | LM_TRUNCATE_RESTART_IDENTITY, .nrels = 3,
        .relids = relids}}};

    if (trip(&f)) {
        CHECK_U64(f.d.u.truncate.flags, 3);
        if (CHECK_U64(f.d.u.truncate.nrels, 3))
            for (int i = 0; i < 3; i++)
                CHECK_U64(f.d.u.truncate.relids[i], relids[i]);
    }
    fixture_free(&f);
}

static void message(void)
{
    fixture f = {.r = {.type = LM_REC_MESSAGE, .u.message = {
        .flags = 1, .lsn = UINT64_C(0x16B374D848), .prefix = "lm-migrate",
        .content = (const uint8_t *)"cutover\0x", .len = 9}}};

    if (trip(&f)) {
        CHECK_U64(f.d.u.message.flags, 1);
        CHECK_U64(f.d.u.message.lsn, UINT64_C(0x16B374D848));
        CHECK_STR(f.d.u.message.prefix, "lm-migrate");
        CHECK_MEM(f.d.u.message.content, f.d.u.message.len, "cutover\0x", 9);
    }
    f.r.u.message.len = 0;
    if (trip(&f))
        CHECK_U64(f.d.u.message.len, 0);
    fixture_free(&f);
}

static void ddl(void)
{
    fixture f = {.r = {.type = LM_REC_DDL, .u.ddl = {
        .seq = 300, .tag = "ALTER TABLE", .search_path = "\"a b\", public", .role = "app",
        .session_role = "postgres", .command = "ALTER TABLE t ADD c int DEFAULT 1",
        .objects = "[]"}}};

    if (trip(&f)) {
        CHECK_U64(f.d.u.ddl.seq, 300);
        CHECK_STR(f.d.u.ddl.tag, "ALTER TABLE");
        CHECK_STR(f.d.u.ddl.search_path, "\"a b\", public");
        CHECK_STR(f.d.u.ddl.role, "app");
        CHECK_STR(f.d.u.ddl.session_role, "postgres");
        CHECK_STR(f.d.u.ddl.command, "ALTER TABLE t ADD c int DEFAULT 1");
        CHECK_STR(f.d.u.ddl.objects, "[]");
    }
    /* the bytes lm-format(5) gives: varint seq, then six strings */
    f.r = (lm_record){.type = LM_REC_DDL, .u.ddl = {
        .seq = 1, .tag = "DROP TABLE", .search_path = "", .role = "r", .session_role = "",
        .command = "DROP TABLE t", .objects = ""}};
    encode(&f);
    body_is(&f, "01 0a 44 52 4f 50 20 54 41 42 4c 45 00 01 72 00"
                " 0c 44 52 4f 50 20 54 41 42 4c 45 20 74 00");
    CHECK(lm_rectype_critical(LM_REC_DDL));
    CHECK_STR(lm_rectype_name(LM_REC_DDL), "ddl");
    fixture_free(&f);
}

static void position(void)
{
    fixture f = {.r = {.type = LM_REC_POSITION,
                       .u.position = {.lsn = UINT64_C(0x16B374D848), .time = -1}}};

    if (trip(&f)) {
        CHECK_U64(f.d.u.position.lsn, UINT64_C(0x16B374D848));
        CHECK_I64(f.d.u.position.time, -1);
    }
    body_is(&f, "c8 b0 d3 9b eb 02 01");
    fixture_free(&f);
}

static void archive(void)
{
    uint8_t data[300];
    fixture f = {.r = {.type = LM_REC_ARCHIVE,
                       .u.archive = {.seq = 12, .last = 1, .len = sizeof data, .data = data}}};

    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)i;
    if (trip(&f)) {
        CHECK_U64(f.d.u.archive.seq, 12);
        CHECK_U64(f.d.u.archive.last, 1);
        CHECK_MEM(f.d.u.archive.data, f.d.u.archive.len, data, sizeof data);
    }
    fixture_free(&f);
}

static void copy_records(void)
{
    fixture f = {.r = {.type = LM_REC_COPY_BEGIN, .u.copy_begin = {
        .nspname = "public", .relname = "big table", .chunk = 7, .nchunks = 16, .format = 'b',
        .sync_lsn = UINT64_C(0x16B374D848), .columns = "\"id\", \"Name\""}}};

    if (trip(&f)) {
        CHECK_STR(f.d.u.copy_begin.nspname, "public");
        CHECK_STR(f.d.u.copy_begin.relname, "big table");
        CHECK_U64(f.d.u.copy_begin.chunk, 7);
        CHECK_U64(f.d.u.copy_begin.nchunks, 16);
        CHECK_U64(f.d.u.copy_begin.format, 'b');
        CHECK_U64(f.d.u.copy_begin.sync_lsn, UINT64_C(0x16B374D848));
        CHECK_STR(f.d.u.copy_begin.columns, "\"id\", \"Name\"");
    }
    f.r.u.copy_begin.format = 't';
    f.r.u.copy_begin.columns = "";
    if (trip(&f)) {
        CHECK_U64(f.d.u.copy_begin.format, 't');
        CHECK_STR(f.d.u.copy_begin.columns, "");
    }

    /* copy data is the body itself: any length, none cut short */
    f.r = (lm_record){.type = LM_REC_COPY_DATA,
                      .u.copy_data = {.data = (const uint8_t *)"1\tone\n2\t\\N\n", .len = 12}};
    encode(&f);
    CHECK_MEM(f.b.data, f.b.len, "1\tone\n2\t\\N\n", 12);
    if (CHECK(lm_record_decode(LM_REC_COPY_DATA, f.b.data, f.b.len, &f.d, &f.a)))
        CHECK_MEM(f.d.u.copy_data.data, f.d.u.copy_data.len, "1\tone\n2\t\\N\n", 12);
    CHECK(lm_record_decode(LM_REC_COPY_DATA, f.b.data, 0, &f.d, &f.a));
    CHECK_U64(f.d.u.copy_data.len, 0);

    f.r = (lm_record){.type = LM_REC_COPY_END,
                      .u.copy_end = {.rows = UINT64_C(1000000000000), .bytes = UINT64_MAX}};
    if (trip(&f)) {
        CHECK_U64(f.d.u.copy_end.rows, UINT64_C(1000000000000));
        CHECK_U64(f.d.u.copy_end.bytes, UINT64_MAX);
    }
    fixture_free(&f);
}

static void trailer_end(void)
{
    fixture f = {.r = {.type = LM_REC_TRAILER,
                       .u.trailer = {.last_lsn = UINT64_C(0x16B374D848), .records = 123456789}}};

    if (trip(&f)) {
        CHECK_U64(f.d.u.trailer.last_lsn, UINT64_C(0x16B374D848));
        CHECK_U64(f.d.u.trailer.records, 123456789);
    }
    f.r = (lm_record){.type = LM_REC_END, .u.end = {
        .reason = LM_END_MARKER, .lsn = UINT64_C(0x16B374D848), .detail = "cutover marker m1"}};
    if (trip(&f)) {
        CHECK_U64(f.d.u.end.reason, LM_END_MARKER);
        CHECK_U64(f.d.u.end.lsn, UINT64_C(0x16B374D848));
        CHECK_STR(f.d.u.end.detail, "cutover marker m1");
    }
    fixture_free(&f);
}

/* decode a body given in hex; whether it was accepted */
static bool decode_hex(uint8_t type, const char *hex, lm_arena *a)
{
    uint8_t body[64];
    size_t n = unit_unhex(hex, body, sizeof body);
    lm_record r;
    return lm_record_decode(type, body, n, &r, a);
}

static void malformed(void)
{
    lm_arena a = {0};

    /* the well-formed bodies these are variations of */
    CHECK(decode_hex(LM_REC_INSERT, "05 01 74 01 61", &a));
    CHECK(decode_hex(LM_REC_DELETE, "05 4b 01 6e", &a));
    CHECK(decode_hex(LM_REC_UPDATE, "05 00 01 6e", &a));
    /* a value kind other than n, u, t, b */
    CHECK(!decode_hex(LM_REC_INSERT, "05 01 78", &a));
    /* more columns than PostgreSQL allows (1664), or than bytes left */
    CHECK(!decode_hex(LM_REC_INSERT, "05 81 0d 6e 6e", &a));
    CHECK(!decode_hex(LM_REC_INSERT, "05 03 6e", &a));
    /* a delete needs its old tuple: kind 0 is malformed, so is 'X' */
    CHECK(!decode_hex(LM_REC_DELETE, "05 00 01 6e", &a));
    CHECK(!decode_hex(LM_REC_DELETE, "05 58 01 6e", &a));
    CHECK(!decode_hex(LM_REC_UPDATE, "05 58 01 6e 01 6e", &a));
    /* a relid past 32 bits */
    CHECK(!decode_hex(LM_REC_INSERT, "80 80 80 80 10 00", &a));
    /* a copy format other than t and b */
    CHECK(!decode_hex(LM_REC_COPY_BEGIN, "00 00 00 01 78 00 00", &a));
    CHECK(decode_hex(LM_REC_COPY_BEGIN, "00 00 00 01 74 00 00", &a));
    /* a relation with more columns than bytes left */
    CHECK(!decode_hex(LM_REC_RELATION, "01 00 00 64 05 00", &a));
    /* a truncate with more relids than bytes left */
    CHECK(!decode_hex(LM_REC_TRUNCATE, "00 03 01 02", &a));
    /* trailing bytes are kept for later minor versions: accepted */
    CHECK(decode_hex(LM_REC_POSITION, "01 02 ff ff", &a));
    /* an unknown skippable (lower-case) type decodes to nothing */
    CHECK(decode_hex('x', "01 02 03", &a));
    lm_arena_free(&a);
}

static void type_names(void)
{
    static const char known[] = "HRYOBCIUDTMSPAGWJZE";

    for (const char *t = known; *t; t++) {
        if (!CHECK(lm_rectype_known((uint8_t)*t)))
            unit_note("type %c", *t);
        CHECK(lm_rectype_critical((uint8_t)*t));
        CHECK(strcmp(lm_rectype_name((uint8_t)*t), "unknown") != 0);
    }
    CHECK(!lm_rectype_known(0));
    CHECK(!lm_rectype_known('X'));
    CHECK(!lm_rectype_known('h'));
    CHECK(lm_rectype_critical('X'));
    CHECK(!lm_rectype_critical('x'));
    CHECK(!lm_rectype_critical(0));
    CHECK_STR(lm_rectype_name(LM_REC_INSERT), "insert");
    CHECK_STR(lm_rectype_name(LM_REC_COPY_BEGIN), "copy_begin");
    CHECK_STR(lm_rectype_name('x'), "unknown");
    CHECK_STR(lm_end_reason_name(LM_END_ENDPOS), "endpos");
    CHECK_STR(lm_end_reason_name(LM_END_MARKER), "marker");
    CHECK_STR(lm_end_reason_name(LM_END_SHUTDOWN), "shutdown");
    CHECK_STR(lm_end_reason_name(LM_END_COMPLETE), "complete");
    CHECK_STR(lm_end_reason_name(0), "unknown");
}

const unit_test unit_record_tests[] = {
    {"header round trip", header},
    {"relation round trip", relation},
    {"relation deep copy and free", relation_dup_free},
    {"type and origin round trips", type_and_origin},
    {"begin and commit round trips, commit bytes", begin_commit},
    {"insert round trip, insert bytes", insert},
    {"update round trips with each old kind", update},
    {"delete round trips", deletion},
    {"truncate round trip", truncation},
    {"message round trip", message},
    {"ddl round trip, ddl bytes", ddl},
    {"position round trip, position bytes", position},
    {"archive round trip", archive},
    {"copy begin, data and end round trips", copy_records},
    {"trailer and end round trips", trailer_end},
    {"malformed bodies refused", malformed},
    {"type and end reason names", type_names},
    {NULL, NULL},
};
