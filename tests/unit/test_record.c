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
    lm_record r = {.type = LM_REC_HEADER}, d;
    lm_arena a = {0};
    lm_buf b = {0};

    r.u.header.version = LM_FORMAT_VERSION;
    r.u.header.sysid = UINT64_C(7301234567890123456);
    r.u.header.timeline = 3;
    r.u.header.server_version = 150004;
    r.u.header.dbname = "app db";
    r.u.header.slot = "lm_slot";
    r.u.header.publication = "";
    r.u.header.encoding = "UTF8";
    r.u.header.producer = "lm-decode 0.1.0";
    r.u.header.start_lsn = UINT64_C(0x16B374D848);
    r.u.header.created = INT64_C(762525296789012);
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.header.version, LM_FORMAT_VERSION);
        CHECK_U64(d.u.header.sysid, UINT64_C(7301234567890123456));
        CHECK_U64(d.u.header.timeline, 3);
        CHECK_U64(d.u.header.server_version, 150004);
        CHECK_STR(d.u.header.dbname, "app db");
        CHECK_STR(d.u.header.slot, "lm_slot");
        CHECK_STR(d.u.header.publication, "");
        CHECK_STR(d.u.header.encoding, "UTF8");
        CHECK_STR(d.u.header.producer, "lm-decode 0.1.0");
        CHECK_U64(d.u.header.start_lsn, UINT64_C(0x16B374D848));
        CHECK_I64(d.u.header.created, INT64_C(762525296789012));
    }
    /* the sysid is a fixed 8 bytes, big-endian, after the version */
    CHECK_MEM(b.data, 9, "\x01\x65\x53\x32\x27\xe8\xe4\xba\xc0", 9);
    lm_buf_free(&b);
    lm_arena_free(&a);
}

static void relation(void)
{
    lm_column cols[] = {
        {LM_COL_KEY, "id", 23, -1},
        {0, "Name \"quoted\"", 1043, 68},
        {0, "", 16385, INT32_MIN},
        {LM_COL_KEY, "ts", 1184, INT32_MAX},
    };
    lm_record r = {.type = LM_REC_RELATION}, d;
    lm_arena a = {0};
    lm_buf b = {0};

    r.u.rel.relid = 4000000000u;
    r.u.rel.nspname = "public";
    r.u.rel.relname = "t";
    r.u.rel.replident = 'f';
    r.u.rel.natts = 4;
    r.u.rel.cols = cols;
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.rel.relid, 4000000000u);
        CHECK_STR(d.u.rel.nspname, "public");
        CHECK_STR(d.u.rel.relname, "t");
        CHECK_U64((uint8_t)d.u.rel.replident, 'f');
        if (CHECK_U64(d.u.rel.natts, 4)) {
            for (int i = 0; i < 4; i++) {
                CHECK_U64(d.u.rel.cols[i].flags, cols[i].flags);
                CHECK_STR(d.u.rel.cols[i].name, cols[i].name);
                CHECK_U64(d.u.rel.cols[i].typoid, cols[i].typoid);
                CHECK_I64(d.u.rel.cols[i].typmod, cols[i].typmod);
            }
        }
    }
    /* no columns at all is a relation too */
    r.u.rel.natts = 0;
    if (round_trip(&r, &d, &a, &b))
        CHECK_U64(d.u.rel.natts, 0);
    lm_buf_free(&b);
    lm_arena_free(&a);
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
    lm_record r = {.type = LM_REC_TYPE}, d;
    lm_arena a = {0};
    lm_buf b = {0};

    r.u.type.oid = 16390;
    r.u.type.nspname = "public";
    r.u.type.typname = "mood";
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.type.oid, 16390);
        CHECK_STR(d.u.type.nspname, "public");
        CHECK_STR(d.u.type.typname, "mood");
    }
    memset(&r, 0, sizeof r);
    r.type = LM_REC_ORIGIN;
    r.u.origin.lsn = UINT64_MAX;
    r.u.origin.name = "pg_16399";
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.origin.lsn, UINT64_MAX);
        CHECK_STR(d.u.origin.name, "pg_16399");
    }
    lm_buf_free(&b);
    lm_arena_free(&a);
}

static void begin_commit(void)
{
    lm_record r = {.type = LM_REC_BEGIN}, d;
    lm_arena a = {0};
    lm_buf b = {0};
    uint8_t want[32];
    size_t n;

    r.u.begin.final_lsn = UINT64_C(0x16B374D848);
    r.u.begin.commit_ts = -INT64_C(3150576001000000);
    r.u.begin.xid = UINT32_MAX;
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.begin.final_lsn, UINT64_C(0x16B374D848));
        CHECK_I64(d.u.begin.commit_ts, -INT64_C(3150576001000000));
        CHECK_U64(d.u.begin.xid, UINT32_MAX);
    }

    memset(&r, 0, sizeof r);
    r.type = LM_REC_COMMIT;
    r.u.commit.flags = 0;
    r.u.commit.commit_lsn = UINT64_C(0x16B374D848);
    r.u.commit.end_lsn = UINT64_C(0x16B374D878);
    r.u.commit.commit_ts = INT64_C(762525296789012);
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.commit.flags, 0);
        CHECK_U64(d.u.commit.commit_lsn, UINT64_C(0x16B374D848));
        CHECK_U64(d.u.commit.end_lsn, UINT64_C(0x16B374D878));
        CHECK_I64(d.u.commit.commit_ts, INT64_C(762525296789012));
    }
    /* lm-format(5): flags u8, commit_lsn varint, end_lsn as the svarint
     * delta 0x30, commit_ts svarint */
    n = unit_unhex("00 c8 b0 d3 9b eb 02 60 a8 98 94 97 e8 e0 da 02", want, sizeof want);
    CHECK_MEM(b.data, b.len, want, n);

    /* an end before the commit (the delta is signed) and the extremes */
    r.u.commit.flags = 0xff;
    r.u.commit.commit_lsn = UINT64_MAX;
    r.u.commit.end_lsn = 5;
    r.u.commit.commit_ts = INT64_MIN;
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.commit.flags, 0xff);
        CHECK_U64(d.u.commit.commit_lsn, UINT64_MAX);
        CHECK_U64(d.u.commit.end_lsn, 5);
        CHECK_I64(d.u.commit.commit_ts, INT64_MIN);
    }
    lm_buf_free(&b);
    lm_arena_free(&a);
}

static void insert(void)
{
    lm_value two[] = {{'t', 2, (const uint8_t *)"ab"}, {'n', 0, NULL}, {'u', 0, NULL}};
    lm_record r = {.type = LM_REC_INSERT}, d;
    lm_arena a = {0};
    lm_buf b = {0};
    uint8_t want[32];
    size_t n;

    r.u.insert.relid = 16384;
    r.u.insert.newtup = row;
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.insert.relid, 16384);
        check_tuple(&d.u.insert.newtup, &row);
    }
    /* relid 16384, three values: t "ab", n, u */
    r.u.insert.newtup = (lm_tuple){3, two};
    lm_buf_reset(&b);
    lm_record_encode(&b, &r);
    n = unit_unhex("80 80 01 03 74 02 61 62 6e 75", want, sizeof want);
    CHECK_MEM(b.data, b.len, want, n);
    /* an empty row */
    r.u.insert.newtup = (lm_tuple){0, NULL};
    if (round_trip(&r, &d, &a, &b))
        CHECK_U64(d.u.insert.newtup.ncols, 0);
    lm_buf_free(&b);
    lm_arena_free(&a);
}

static void update(void)
{
    static const char kinds[] = {0, 'K', 'O'};
    lm_arena a = {0};
    lm_buf b = {0};

    for (size_t i = 0; i < sizeof kinds; i++) {
        lm_record r = {.type = LM_REC_UPDATE}, d;
        r.u.update.relid = 77;
        r.u.update.oldkind = kinds[i];
        if (kinds[i])
            r.u.update.oldtup = kinds[i] == 'K' ? key : row;
        r.u.update.newtup = row;
        if (round_trip(&r, &d, &a, &b)) {
            CHECK_U64(d.u.update.relid, 77);
            CHECK_U64((uint8_t)d.u.update.oldkind, (uint8_t)kinds[i]);
            if (kinds[i])
                check_tuple(&d.u.update.oldtup, &r.u.update.oldtup);
            else
                CHECK_U64(d.u.update.oldtup.ncols, 0);
            check_tuple(&d.u.update.newtup, &row);
        }
        lm_arena_reset(&a);
    }
    lm_buf_free(&b);
    lm_arena_free(&a);
}

static void deletion(void)
{
    static const char kinds[] = {'K', 'O'};
    lm_arena a = {0};
    lm_buf b = {0};

    for (size_t i = 0; i < sizeof kinds; i++) {
        lm_record r = {.type = LM_REC_DELETE}, d;
        r.u.del.relid = 78;
        r.u.del.oldkind = kinds[i];
        r.u.del.oldtup = kinds[i] == 'K' ? key : row;
        if (round_trip(&r, &d, &a, &b)) {
            CHECK_U64(d.u.del.relid, 78);
            CHECK_U64((uint8_t)d.u.del.oldkind, (uint8_t)kinds[i]);
            check_tuple(&d.u.del.oldtup, &r.u.del.oldtup);
        }
    }
    lm_buf_free(&b);
    lm_arena_free(&a);
}

static void truncation(void)
{
    uint32_t relids[] = {1, 16384, UINT32_MAX};
    lm_record r = {.type = LM_REC_TRUNCATE}, d;
    lm_arena a = {0};
    lm_buf b = {0};

    r.u.truncate.flags = LM_TRUNCATE_CASCADE | LM_TRUNCATE_RESTART_IDENTITY;
    r.u.truncate.nrels = 3;
    r.u.truncate.relids = relids;
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.truncate.flags, 3);
        if (CHECK_U64(d.u.truncate.nrels, 3))
            for (int i = 0; i < 3; i++)
                CHECK_U64(d.u.truncate.relids[i], relids[i]);
    }
    lm_buf_free(&b);
    lm_arena_free(&a);
}

static void message(void)
{
    lm_record r = {.type = LM_REC_MESSAGE}, d;
    lm_arena a = {0};
    lm_buf b = {0};

    r.u.message.flags = 1;
    r.u.message.lsn = UINT64_C(0x16B374D848);
    r.u.message.prefix = "lm-migrate";
    r.u.message.content = (const uint8_t *)"cutover\0x";
    r.u.message.len = 9;
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.message.flags, 1);
        CHECK_U64(d.u.message.lsn, UINT64_C(0x16B374D848));
        CHECK_STR(d.u.message.prefix, "lm-migrate");
        CHECK_MEM(d.u.message.content, d.u.message.len, "cutover\0x", 9);
    }
    r.u.message.len = 0;
    if (round_trip(&r, &d, &a, &b))
        CHECK_U64(d.u.message.len, 0);
    lm_buf_free(&b);
    lm_arena_free(&a);
}

static void ddl(void)
{
    lm_record r = {.type = LM_REC_DDL}, d;
    lm_arena a = {0};
    lm_buf b = {0};
    uint8_t want[64];
    size_t n;

    r.u.ddl.seq = 300;
    r.u.ddl.tag = "ALTER TABLE";
    r.u.ddl.search_path = "\"a b\", public";
    r.u.ddl.role = "app";
    r.u.ddl.session_role = "postgres";
    r.u.ddl.command = "ALTER TABLE t ADD c int DEFAULT 1";
    r.u.ddl.objects = "[]";
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.ddl.seq, 300);
        CHECK_STR(d.u.ddl.tag, "ALTER TABLE");
        CHECK_STR(d.u.ddl.search_path, "\"a b\", public");
        CHECK_STR(d.u.ddl.role, "app");
        CHECK_STR(d.u.ddl.session_role, "postgres");
        CHECK_STR(d.u.ddl.command, "ALTER TABLE t ADD c int DEFAULT 1");
        CHECK_STR(d.u.ddl.objects, "[]");
    }
    /* the bytes lm-format(5) gives: varint seq, then six strings */
    r.u.ddl.seq = 1;
    r.u.ddl.tag = "DROP TABLE";
    r.u.ddl.search_path = "";
    r.u.ddl.role = "r";
    r.u.ddl.session_role = "";
    r.u.ddl.command = "DROP TABLE t";
    r.u.ddl.objects = "";
    lm_buf_reset(&b);
    lm_record_encode(&b, &r);
    n = unit_unhex("01 0a 44 52 4f 50 20 54 41 42 4c 45 00 01 72 00"
                   " 0c 44 52 4f 50 20 54 41 42 4c 45 20 74 00", want, sizeof want);
    CHECK_MEM(b.data, b.len, want, n);
    CHECK(lm_rectype_critical(LM_REC_DDL));
    CHECK_STR(lm_rectype_name(LM_REC_DDL), "ddl");
    lm_buf_free(&b);
    lm_arena_free(&a);
}

static void position(void)
{
    lm_record r = {.type = LM_REC_POSITION}, d;
    lm_arena a = {0};
    lm_buf b = {0};
    uint8_t want[16];
    size_t n;

    r.u.position.lsn = UINT64_C(0x16B374D848);
    r.u.position.time = -1;
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.position.lsn, UINT64_C(0x16B374D848));
        CHECK_I64(d.u.position.time, -1);
    }
    n = unit_unhex("c8 b0 d3 9b eb 02 01", want, sizeof want);
    CHECK_MEM(b.data, b.len, want, n);
    lm_buf_free(&b);
    lm_arena_free(&a);
}

static void archive(void)
{
    uint8_t data[300];
    lm_record r = {.type = LM_REC_ARCHIVE}, d;
    lm_arena a = {0};
    lm_buf b = {0};

    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)i;
    r.u.archive.seq = 12;
    r.u.archive.last = 1;
    r.u.archive.len = sizeof data;
    r.u.archive.data = data;
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.archive.seq, 12);
        CHECK_U64(d.u.archive.last, 1);
        CHECK_MEM(d.u.archive.data, d.u.archive.len, data, sizeof data);
    }
    lm_buf_free(&b);
    lm_arena_free(&a);
}

static void copy_records(void)
{
    lm_record r = {.type = LM_REC_COPY_BEGIN}, d;
    lm_arena a = {0};
    lm_buf b = {0};

    r.u.copy_begin.nspname = "public";
    r.u.copy_begin.relname = "big table";
    r.u.copy_begin.chunk = 7;
    r.u.copy_begin.nchunks = 16;
    r.u.copy_begin.format = 'b';
    r.u.copy_begin.sync_lsn = UINT64_C(0x16B374D848);
    r.u.copy_begin.columns = "\"id\", \"Name\"";
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_STR(d.u.copy_begin.nspname, "public");
        CHECK_STR(d.u.copy_begin.relname, "big table");
        CHECK_U64(d.u.copy_begin.chunk, 7);
        CHECK_U64(d.u.copy_begin.nchunks, 16);
        CHECK_U64(d.u.copy_begin.format, 'b');
        CHECK_U64(d.u.copy_begin.sync_lsn, UINT64_C(0x16B374D848));
        CHECK_STR(d.u.copy_begin.columns, "\"id\", \"Name\"");
    }
    r.u.copy_begin.format = 't';
    r.u.copy_begin.columns = "";
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.copy_begin.format, 't');
        CHECK_STR(d.u.copy_begin.columns, "");
    }

    /* copy data is the body itself: any length, none cut short */
    memset(&r, 0, sizeof r);
    r.type = LM_REC_COPY_DATA;
    r.u.copy_data.data = (const uint8_t *)"1\tone\n2\t\\N\n";
    r.u.copy_data.len = 12;
    lm_buf_reset(&b);
    lm_record_encode(&b, &r);
    CHECK_MEM(b.data, b.len, "1\tone\n2\t\\N\n", 12);
    if (CHECK(lm_record_decode(LM_REC_COPY_DATA, b.data, b.len, &d, &a)))
        CHECK_MEM(d.u.copy_data.data, d.u.copy_data.len, "1\tone\n2\t\\N\n", 12);
    CHECK(lm_record_decode(LM_REC_COPY_DATA, b.data, 0, &d, &a));
    CHECK_U64(d.u.copy_data.len, 0);

    memset(&r, 0, sizeof r);
    r.type = LM_REC_COPY_END;
    r.u.copy_end.rows = UINT64_C(1000000000000);
    r.u.copy_end.bytes = UINT64_MAX;
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.copy_end.rows, UINT64_C(1000000000000));
        CHECK_U64(d.u.copy_end.bytes, UINT64_MAX);
    }
    lm_buf_free(&b);
    lm_arena_free(&a);
}

static void trailer_end(void)
{
    lm_record r = {.type = LM_REC_TRAILER}, d;
    lm_arena a = {0};
    lm_buf b = {0};

    r.u.trailer.last_lsn = UINT64_C(0x16B374D848);
    r.u.trailer.records = 123456789;
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.trailer.last_lsn, UINT64_C(0x16B374D848));
        CHECK_U64(d.u.trailer.records, 123456789);
    }
    memset(&r, 0, sizeof r);
    r.type = LM_REC_END;
    r.u.end.reason = LM_END_MARKER;
    r.u.end.lsn = UINT64_C(0x16B374D848);
    r.u.end.detail = "cutover marker m1";
    if (round_trip(&r, &d, &a, &b)) {
        CHECK_U64(d.u.end.reason, LM_END_MARKER);
        CHECK_U64(d.u.end.lsn, UINT64_C(0x16B374D848));
        CHECK_STR(d.u.end.detail, "cutover marker m1");
    }
    lm_buf_free(&b);
    lm_arena_free(&a);
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
