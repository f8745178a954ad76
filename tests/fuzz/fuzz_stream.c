/* libFuzzer target: the stream reader (framing, CRC, zstd, record decoder).
 *
 * The first input byte chooses how the rest reaches lm_reader_next:
 *   bit 0: fix every block's CRC-32C first, so that mutations get past the
 *          checksum and reach the record decoder (else nearly every mutant
 *          dies at "checksum mismatch");
 *   bit 1: compress the bytes with zstd first (the reader detects zstd by
 *          its magic, so input that is already zstd is read as such anyway).
 * The bytes go through a memfd, as a file would, and every record is read
 * until the end or an error; each record is also encoded again, which
 * exercises the encoder on whatever the decoder accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zstd.h>

#include "crc32c.h"
#include "exitcodes.h"
#include "log.h"
#include "stream.h"

static void fix_crcs(uint8_t *p, size_t n)
{
    size_t pos = 0;

    while (pos + LM_BLOCK_HEADER <= n) {
        uint8_t *h = p + pos;
        uint32_t len = lm_get_be32(h + 4), crc;

        if (len == 0 || len > n - pos - LM_BLOCK_HEADER)
            break;
        crc = lm_crc32c(lm_crc32c(0, h, 8), h + LM_BLOCK_HEADER, len);
        h[8] = (uint8_t)(crc >> 24);
        h[9] = (uint8_t)(crc >> 16);
        h[10] = (uint8_t)(crc >> 8);
        h[11] = (uint8_t)crc;
        pos += LM_BLOCK_HEADER + len;
    }
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            abort();
        p += w;
        n -= (size_t)w;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* written with bytes read only for ASan to check them: volatile, so the
 * compiler keeps the reads */
static volatile uint8_t touched;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    uint8_t mode, *buf, *z = NULL;
    size_t n;
    int fd, rc;
    lm_reader *r;
    lm_record rec;
    lm_buf enc = {0};

    if (!inited) {
        lm_log_init("fuzz_stream");
        inited = 1;
    }
    if (size < 1)
        return 0;
    mode = data[0];
    n = size - 1;
    buf = lm_malloc(n);
    memcpy(buf, data + 1, n);
    if (mode & 1)
        fix_crcs(buf, n);
    if (mode & 2) {
        size_t cap = ZSTD_compressBound(n), zn;
        z = lm_malloc(cap);
        zn = ZSTD_compress(z, cap, buf, n, 1);
        if (ZSTD_isError(zn))
            abort();
        free(buf);
        buf = z;
        n = zn;
    }
    fd = memfd_create("fuzz", 0);
    if (fd < 0)
        abort();
    write_all(fd, buf, n);
    lseek(fd, 0, SEEK_SET);

    r = lm_reader_new(fd, "fuzz input");
    while ((rc = lm_reader_next(r, &rec)) > 0) {
        size_t rawlen;
        const uint8_t *raw = lm_reader_record_raw(r, &rawlen);
        /* read the ends of the reported range so ASan checks it */
        if (rawlen)
            touched = (uint8_t)(raw[0] ^ raw[rawlen - 1]);
        (void)lm_reader_record_offset(r);
        (void)lm_reader_header(r);
        lm_buf_reset(&enc);
        lm_record_encode(&enc, &rec);
    }
    if (rc < 0) {
        int code = lm_reader_errcode(r);
        /* the documented codes only, with a message */
        if (code != LM_EXIT_CORRUPT && code != LM_EXIT_TRUNCATED && code != LM_EXIT_MISMATCH &&
            code != LM_EXIT_IO)
            abort();
        if (!lm_reader_error(r) || !*lm_reader_error(r))
            abort();
    }
    lm_reader_free(r);
    lm_buf_free(&enc);
    close(fd);
    free(buf);
    return 0;
}
