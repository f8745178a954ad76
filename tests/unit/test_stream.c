/* common/stream.c: block framing against lm-format(5)'s worked example,
 * plain and zstd round trips, and damaged input refused with the exit
 * status the spec gives it. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crc32c.h"
#include "exitcodes.h"
#include "lsn.h"
#include "stream.h"
#include "unit.h"

/* lm-format(5), EXAMPLE: the smallest complete stream */
static const char example_hex[] =
    "4c 4d 01 00 00 00 00 22 40 ea 91 15"
    "48 1b 01 00 00 00 00 00 00 00 2a 01 84 94 09 02 64 62 02 73 31 00 00 00 c8 ee ac 0b 00"
    "45 03 04 00 00";

static void example_records(lm_record *h, lm_record *e)
{
    memset(h, 0, sizeof *h);
    h->type = LM_REC_HEADER;
    h->u.header.version = 1;
    h->u.header.sysid = 42;
    h->u.header.timeline = 1;
    h->u.header.server_version = 150020;
    h->u.header.dbname = "db";
    h->u.header.slot = "s1";
    h->u.header.publication = "";
    h->u.header.encoding = "";
    h->u.header.producer = "";
    h->u.header.start_lsn = 0x16B3748;
    h->u.header.created = 0;
    memset(e, 0, sizeof *e);
    e->type = LM_REC_END;
    e->u.end.reason = LM_END_COMPLETE;
    e->u.end.detail = "";
}

/* an in-memory file holding n bytes, at offset 0 */
static int mem_file(const void *p, size_t n)
{
    int fd = memfd_create("lm-unit", 0);
    if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n) || lseek(fd, 0, SEEK_SET) != 0) {
        CHECK(!"memfd");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* the file's bytes (malloc'd) */
static uint8_t *slurp(int fd, size_t *n)
{
    off_t end = lseek(fd, 0, SEEK_END);
    uint8_t *p = malloc(end > 0 ? (size_t)end : 1);

    *n = 0;
    if (end > 0 && pread(fd, p, (size_t)end, 0) == end)
        *n = (size_t)end;
    lseek(fd, 0, SEEK_SET);
    return p;
}

/* read the example's two records back from fd; whether all went well */
static bool read_example(int fd, bool compressed)
{
    lm_reader *r = lm_reader_new(fd, "example");
    lm_record rec;
    bool ok = true;

    ok &= CHECK_I64(lm_reader_next(r, &rec), 1);
    ok &= CHECK_U64(rec.type, LM_REC_HEADER);
    ok &= CHECK_U64(rec.u.header.sysid, 42);
    ok &= CHECK_U64(rec.u.header.server_version, 150020);
    ok &= CHECK_STR(rec.u.header.dbname, "db");
    ok &= CHECK_STR(rec.u.header.slot, "s1");
    ok &= CHECK_U64(rec.u.header.start_lsn, 0x16B3748);
    ok &= CHECK_I64(lm_reader_next(r, &rec), 1);
    ok &= CHECK_U64(rec.type, LM_REC_END);
    ok &= CHECK_U64(rec.u.end.reason, LM_END_COMPLETE);
    ok &= CHECK_I64(lm_reader_next(r, &rec), 0);
    ok &= CHECK(lm_reader_compressed(r) == compressed);
    ok &= CHECK(lm_reader_header(r) != NULL);
    if (!ok)
        unit_note("reader: %s", lm_reader_error(r) ? lm_reader_error(r) : "(no error)");
    lm_reader_free(r);
    return ok;
}

static void writes_the_example(void)
{
    uint8_t want[64], *got;
    size_t nwant = unit_unhex(example_hex, want, sizeof want), ngot;
    lm_record h, e;
    lm_writer *w;
    int fd = mem_file(NULL, 0);

    if (fd < 0)
        return;
    CHECK_U64(nwant, 46);
    example_records(&h, &e);
    w = lm_writer_new(fd, "example", false, 0);
    lm_writer_put(w, &h);
    lm_writer_put(w, &e);
    lm_writer_flush(w, LM_FLUSH_FRAME);
    CHECK_U64(lm_writer_records(w), 2);
    CHECK_U64(lm_writer_offset(w), 46);
    lm_writer_free(w);
    got = slurp(fd, &ngot);
    CHECK_MEM(got, ngot, want, nwant);
    /* the block's CRC: of its first 8 bytes, then the payload */
    CHECK_U64(lm_crc32c(lm_crc32c(0, want, 8), want + 12, 34), 0x40ea9115);
    free(got);
    close(fd);
}

static void reads_the_example(void)
{
    uint8_t bytes[64];
    size_t n = unit_unhex(example_hex, bytes, sizeof bytes);
    int fd = mem_file(bytes, n);

    if (fd < 0)
        return;
    read_example(fd, false);
    close(fd);
}

static void zstd_round_trip(void)
{
    uint8_t *got;
    size_t ngot;
    lm_record h, e;
    lm_writer *w;
    int fd = mem_file(NULL, 0);

    if (fd < 0)
        return;
    example_records(&h, &e);
    w = lm_writer_new(fd, "example.lmz", true, 3);
    lm_writer_put(w, &h);
    lm_writer_put(w, &e);
    lm_writer_free(w);
    got = slurp(fd, &ngot);
    /* a zstd frame: its magic number, little-endian 0xFD2FB528 */
    if (CHECK(ngot > 4))
        CHECK_MEM(got, 4, "\x28\xb5\x2f\xfd", 4);
    read_example(fd, true);
    free(got);
    close(fd);
}

/* the error a reader stops with on these bytes (0: none) */
static int reader_error(const uint8_t *p, size_t n)
{
    int fd = mem_file(p, n), rc, code;
    lm_reader *r;
    lm_record rec;

    if (fd < 0)
        return -1;
    r = lm_reader_new(fd, "damaged");
    while ((rc = lm_reader_next(r, &rec)) > 0)
        ;
    code = rc < 0 ? lm_reader_errcode(r) : 0;
    lm_reader_free(r);
    close(fd);
    return code;
}

static void damage_refused(void)
{
    uint8_t good[64], bad[64];
    size_t n = unit_unhex(example_hex, good, sizeof good);

    CHECK_I64(reader_error(good, n), 0);
    /* any flipped bit of the header or payload: the CRC or the magic */
    for (size_t i = 0; i < n; i++) {
        if (i == 3)
            continue;   /* the flags byte: reserved, ignored by readers */
        memcpy(bad, good, n);
        bad[i] ^= 0x10;
        if (!CHECK(reader_error(bad, n) != 0))
            unit_note("byte %zu flipped was not noticed", i);
    }
    memcpy(bad, good, n);
    bad[13] ^= 0x01;    /* in the payload */
    CHECK_I64(reader_error(bad, n), LM_EXIT_CORRUPT);
    memcpy(bad, good, n);
    bad[0] = 'X';
    CHECK_I64(reader_error(bad, n), LM_EXIT_CORRUPT);
    /* cut anywhere inside the block, its header included */
    for (size_t len = 1; len < n; len++)
        if (!CHECK_I64(reader_error(good, len), LM_EXIT_TRUNCATED))
            unit_note("cut to %zu bytes", len);
    /* a version from the future: not corrupt, just not readable here */
    memcpy(bad, good, n);
    bad[2] = 2;
    lm_put_be32(bad + 8, lm_crc32c(lm_crc32c(0, bad, 8), bad + 12, 34));
    CHECK_I64(reader_error(bad, n), LM_EXIT_MISMATCH);
}

/* A stream of the one record REC: its reader's exit code for it. */
static int lone_record_error(const lm_record *rec)
{
    lm_record out;
    lm_writer *w;
    lm_reader *r;
    int code;
    int fd = mem_file(NULL, 0);

    if (fd < 0)
        return -1;
    w = lm_writer_new(fd, "rules", false, 0);
    lm_writer_put(w, rec);
    lm_writer_free(w);
    lseek(fd, 0, SEEK_SET);
    r = lm_reader_new(fd, "rules");
    code = lm_reader_next(r, &out) == -1 ? lm_reader_errcode(r) : 0;
    lm_reader_free(r);
    close(fd);
    return code;
}

static void stream_rules(void)
{
    lm_record h, e;

    /* a stream must start with a header; a header's time is in range */
    example_records(&h, &e);
    CHECK_I64(lone_record_error(&e), LM_EXIT_CORRUPT);
    h.u.header.created = LM_PGTIME_MAX + 1;
    CHECK_I64(lone_record_error(&h), LM_EXIT_CORRUPT);
}

const unit_test unit_stream_tests[] = {
    {"writer makes lm-format(5)'s example byte for byte", writes_the_example},
    {"reader reads lm-format(5)'s example", reads_the_example},
    {"zstd-compressed round trip", zstd_round_trip},
    {"damaged, cut and future streams refused", damage_refused},
    {"header first, timestamps in range", stream_rules},
    {NULL, NULL},
};
