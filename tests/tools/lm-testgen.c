/* lm-testgen: writes a change stream holding every record type and every
 * kind of value, through the real encoder, for the format tests.
 *
 *   lm-testgen [--compress] [--end none|endpos|trailer] [--sysid N]
 *              [--slot NAME] [--big BYTES] [--rows N] [--format-version N]
 *              [--commit-ts N]
 *   lm-testgen --bomb BYTES
 *   lm-testgen --sha256 | --hmac KEYHEX      (standard input to a hex digest)
 *
 *   --producer NAME the header's producer (default lm-testgen)
 *   --archive FILE  only the header, FILE as schema archive records (a
 *                   pg_dump -Fc archive, as lm-snapshot --output carries)
 *                   and the --end record
 *   --commit-ts N   the transaction's commit time (begin and commit records),
 *                   microseconds since 2000-01-01, any 64-bit value
 *   --bomb BYTES    a zstd stream: a frame with the header, then a frame
 *                   holding a block that claims and holds BYTES of payload
 *                   as RLE blocks of zeros, 4 bytes of zstd per 128 KB (a
 *                   1 GiB block in 32 KB); its checksum is wrong
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "exitcodes.h"
#include "log.h"
#include "marker.h"
#include "sha256.h"
#include "stream.h"

static void write_all(const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(1, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            lm_fatal(LM_EXIT_IO, "could not write: %s", strerror(errno));
        c += k;
        n -= (size_t)k;
    }
}

/* zstd block header: 3 bytes little-endian, size << 3 | type << 1 | last */
/* --sha256 / --hmac: a digest of standard input, in hex, for the RFC 4231
 * and FIPS 180-4 vectors */
static int digest_stdin(const char *keyhex)
{
    lm_buf in = {0};
    uint8_t out[LM_SHA256_LEN], chunk[4096];
    size_t n;

    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        lm_buf_put(&in, chunk, n);
    if (keyhex) {
        lm_buf key = {0};
        for (const char *p = keyhex; p[0] && p[1]; p += 2) {
            unsigned v;
            if (sscanf(p, "%2x", &v) != 1)
                return 2;
            lm_buf_u8(&key, (uint8_t)v);
        }
        lm_hmac_sha256(key.data, key.len, in.data, in.len, out);
        lm_buf_free(&key);
    } else {
        lm_sha256 c;
        lm_sha256_init(&c);
        lm_sha256_update(&c, in.data, in.len);
        lm_sha256_final(&c, out);
    }
    for (int i = 0; i < LM_SHA256_LEN; i++)
        printf("%02x", out[i]);
    printf("\n");
    lm_buf_free(&in);
    return 0;
}

static void zstd_block(lm_buf *b, uint32_t size, unsigned type, bool last)
{
    uint32_t h = size << 3 | type << 1 | (last ? 1u : 0u);
    lm_buf_u8(b, (uint8_t)h);
    lm_buf_u8(b, (uint8_t)(h >> 8));
    lm_buf_u8(b, (uint8_t)(h >> 16));
}

/* The frame after the header: one lm block header claiming len bytes
 * (raw zstd block), then len zero bytes as RLE blocks of 128 KB. */
static void write_bomb(uint64_t len)
{
    lm_buf b = {0};
    uint8_t h[LM_BLOCK_HEADER] = {'L', 'M', LM_FORMAT_VERSION, 0};

    lm_put_be32(h + 4, (uint32_t)len);
    /* magic; frame header: no content size, no checksum, no dictionary;
     * window descriptor 0x38: a window of 2^17 = 128 KB */
    lm_buf_put(&b, "\x28\xb5\x2f\xfd\x00\x38", 6);
    zstd_block(&b, LM_BLOCK_HEADER, 0, len == 0);
    lm_buf_put(&b, h, sizeof h);
    while (len > 0) {
        uint32_t n = len > (128u << 10) ? (128u << 10) : (uint32_t)len;
        len -= n;
        zstd_block(&b, n, 1, len == 0);
        lm_buf_u8(&b, 0);
    }
    write_all(b.data, b.len);
    lm_buf_free(&b);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"compress", no_argument, NULL, 'z'},
        {"end", required_argument, NULL, 'e'},
        {"sysid", required_argument, NULL, 's'},
        {"slot", required_argument, NULL, 'l'},
        {"big", required_argument, NULL, 'b'},
        {"rows", required_argument, NULL, 'r'},
        {"format-version", required_argument, NULL, 'v'},
        {"commit-ts", required_argument, NULL, 't'},
        {"bomb", required_argument, NULL, 'B'},
        {"sha256", no_argument, NULL, 'H'},
        {"hmac", required_argument, NULL, 'M'},
        {"producer", required_argument, NULL, 'p'},
        {"archive", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0}};
    bool compress = false;
    const char *end = "endpos";
    uint64_t sysid = 7000000000000000001ULL;
    const char *slot = "lm_test";
    size_t big = 1 << 20;
    long rows = 3;
    unsigned version = LM_FORMAT_VERSION;
    int64_t commit_ts = 817000000000000LL;
    long long bomb = -1;
    const char *producer = "lm-testgen";
    const char *archive = NULL;
    int c;
    lm_writer *w;
    lm_record r;
    char *bigval = NULL;

    lm_log_init(argv[0]);
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'z': compress = true; break;
        case 'e': end = optarg; break;
        case 's': sysid = strtoull(optarg, NULL, 10); break;
        case 'l': slot = optarg; break;
        case 'b': big = (size_t)strtoull(optarg, NULL, 10); break;
        case 'r': rows = strtol(optarg, NULL, 10); break;
        case 'v': version = (unsigned)strtoul(optarg, NULL, 10); break;
        case 't': commit_ts = strtoll(optarg, NULL, 10); break;
        case 'B': bomb = strtoll(optarg, NULL, 10); compress = true; break;
        case 'H': return digest_stdin(NULL);
        case 'M': return digest_stdin(optarg);
        case 'p': producer = optarg; break;
        case 'a': archive = optarg; break;
        default: return 2;
        }
    }
    w = lm_writer_new(1, "standard output", compress, 3);

    memset(&r, 0, sizeof r);
    r.type = LM_REC_HEADER;
    r.u.header.version = version;
    r.u.header.sysid = sysid;
    r.u.header.timeline = 1;
    r.u.header.server_version = 150020;
    r.u.header.dbname = "db";
    r.u.header.slot = slot;
    r.u.header.publication = "pub";
    r.u.header.encoding = "UTF8";
    r.u.header.producer = producer;
    r.u.header.start_lsn = 0x16B3748;
    r.u.header.created = 0;
    lm_writer_put(w, &r);
    if (bomb >= 0) {
        lm_writer_flush(w, LM_FLUSH_FRAME);
        write_bomb((uint64_t)bomb);
        lm_writer_free(w);
        return 0;
    }

    if (archive) {
        FILE *f = fopen(archive, "rb");
        uint8_t piece[65536];
        size_t n;
        uint32_t seq = 0;
        if (!f)
            return 1;
        while ((n = fread(piece, 1, sizeof piece, f)) > 0) {
            int ch = getc(f);
            memset(&r, 0, sizeof r);
            r.type = LM_REC_ARCHIVE;
            r.u.archive.seq = seq++;
            r.u.archive.last = ch == EOF;
            r.u.archive.data = piece;
            r.u.archive.len = (uint32_t)n;
            lm_writer_put(w, &r);
            if (ch != EOF)
                ungetc(ch, f);
        }
        fclose(f);
        goto end;
    }

    lm_column cols[4] = {
        {LM_COL_KEY, "id", 23, -1},
        {0, "name", 25, -1},
        {0, "data", 17, -1},
        {0, "note \"quoted\"", 1043, 14}};
    memset(&r, 0, sizeof r);
    r.type = LM_REC_RELATION;
    r.u.rel = (lm_relation){16384, "public", "t", 'd', 4, cols, NULL};
    lm_writer_put(w, &r);

    memset(&r, 0, sizeof r);
    r.type = LM_REC_TYPE;
    r.u.type.oid = 16500;
    r.u.type.nspname = "public";
    r.u.type.typname = "mood";
    lm_writer_put(w, &r);

    memset(&r, 0, sizeof r);
    r.type = LM_REC_BEGIN;
    r.u.begin.final_lsn = 0x1000100;
    r.u.begin.commit_ts = commit_ts;
    r.u.begin.xid = 742;
    lm_writer_put(w, &r);

    memset(&r, 0, sizeof r);
    r.type = LM_REC_ORIGIN;
    r.u.origin.lsn = 0x55;
    r.u.origin.name = "other";
    lm_writer_put(w, &r);

    bigval = lm_malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        bigval[i] = (char)('a' + i % 26);
    for (long i = 0; i < rows; i++) {
        char id[32];
        lm_value v[4];
        snprintf(id, sizeof id, "%ld", i + 1);
        v[0] = (lm_value){'t', (uint32_t)strlen(id), (const uint8_t *)id};
        v[1] = (lm_value){'t', 11, (const uint8_t *)"gr\xc3\xbc\xc3\x9f dich"};
        v[2] = (lm_value){'b', 3, (const uint8_t *)"\x00\x01\xff"};
        v[3] = (lm_value){'n', 0, NULL};
        if (i == 1) {
            v[1] = (lm_value){'t', 0, (const uint8_t *)""};
            v[3] = (lm_value){'t', (uint32_t)big, (const uint8_t *)bigval};
        }
        memset(&r, 0, sizeof r);
        r.type = LM_REC_INSERT;
        r.u.insert.relid = 16384;
        r.u.insert.newtup = (lm_tuple){4, v};
        lm_writer_put(w, &r);
    }
    {
        lm_value oldv[4] = {{'t', 1, (const uint8_t *)"1"}, {'n', 0, NULL}, {'n', 0, NULL}, {'n', 0, NULL}};
        lm_value newv[4] = {{'t', 2, (const uint8_t *)"10"}, {'t', 4, (const uint8_t *)"it's"},
                            {'u', 0, NULL}, {'u', 0, NULL}};
        memset(&r, 0, sizeof r);
        r.type = LM_REC_UPDATE;
        r.u.update.relid = 16384;
        r.u.update.oldkind = 'K';
        r.u.update.oldtup = (lm_tuple){4, oldv};
        r.u.update.newtup = (lm_tuple){4, newv};
        lm_writer_put(w, &r);
        memset(&r, 0, sizeof r);
        r.type = LM_REC_DELETE;
        r.u.del.relid = 16384;
        r.u.del.oldkind = 'K';
        r.u.del.oldtup = (lm_tuple){4, oldv};
        lm_writer_put(w, &r);
    }
    {
        uint32_t relids[2] = {16384, 16385};
        memset(&r, 0, sizeof r);
        r.type = LM_REC_TRUNCATE;
        r.u.truncate.flags = LM_TRUNCATE_CASCADE | LM_TRUNCATE_RESTART_IDENTITY;
        r.u.truncate.nrels = 2;
        r.u.truncate.relids = relids;
        lm_writer_put(w, &r);
    }
    memset(&r, 0, sizeof r);
    r.type = LM_REC_MESSAGE;
    r.u.message.flags = 1;
    r.u.message.lsn = 0x1000050;
    r.u.message.prefix = "lm-migrate";
    r.u.message.content = (const uint8_t *)"cutover-1";
    r.u.message.len = 9;
    lm_writer_put(w, &r);

    memset(&r, 0, sizeof r);
    r.type = LM_REC_COMMIT;
    r.u.commit.commit_lsn = 0x1000100;
    r.u.commit.end_lsn = 0x1000130;
    r.u.commit.commit_ts = commit_ts;
    lm_writer_put(w, &r);

    memset(&r, 0, sizeof r);
    r.type = LM_REC_POSITION;
    r.u.position.lsn = 0x1000200;
    lm_writer_put(w, &r);

    memset(&r, 0, sizeof r);
    r.type = LM_REC_ARCHIVE;
    r.u.archive.seq = 0;
    r.u.archive.last = 1;
    r.u.archive.data = (const uint8_t *)"PGDMP";
    r.u.archive.len = 5;
    lm_writer_put(w, &r);

    memset(&r, 0, sizeof r);
    r.type = LM_REC_COPY_BEGIN;
    r.u.copy_begin.nspname = "public";
    r.u.copy_begin.relname = "t";
    r.u.copy_begin.chunk = 0;
    r.u.copy_begin.nchunks = 1;
    r.u.copy_begin.format = 't';
    r.u.copy_begin.sync_lsn = 0x16B3748;
    r.u.copy_begin.columns = "";
    lm_writer_put(w, &r);
    memset(&r, 0, sizeof r);
    r.type = LM_REC_COPY_DATA;
    r.u.copy_data.data = (const uint8_t *)"1\tx\n";
    r.u.copy_data.len = 4;
    lm_writer_put(w, &r);
    memset(&r, 0, sizeof r);
    r.type = LM_REC_COPY_END;
    r.u.copy_end.rows = 1;
    r.u.copy_end.bytes = 4;
    lm_writer_put(w, &r);
    /* a record type from the future that readers may skip */
    lm_writer_put_raw(w, 'x', "skip me", 7);

end:
    memset(&r, 0, sizeof r);
    if (strcmp(end, "endpos") == 0) {
        r.type = LM_REC_END;
        r.u.end.reason = LM_END_ENDPOS;
        r.u.end.lsn = 0x1000200;
        r.u.end.detail = "";
        lm_writer_put(w, &r);
    } else if (strcmp(end, "trailer") == 0) {
        r.type = LM_REC_TRAILER;
        r.u.trailer.last_lsn = 0x1000130;
        r.u.trailer.records = lm_writer_records(w);
        lm_writer_put(w, &r);
    }
    lm_writer_free(w);
    free(bigval);
    return 0;
}
