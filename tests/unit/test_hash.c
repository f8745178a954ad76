/* common/crc32c.c and sha256.c against published answers: RFC 3720
 * (iSCSI) B.4 for CRC-32C, FIPS 180-4's examples for SHA-256, RFC 4231
 * for HMAC-SHA256. */
#include <string.h>

#include "crc32c.h"
#include "sha256.h"
#include "unit.h"

/* the textbook bit-at-a-time CRC-32C (reflected, polynomial 0x1EDC6F41),
 * to hold the sliced and SSE4.2 paths to at every length and alignment */
static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFF;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78 : c >> 1;
    }
    return ~c;
}

static void crc_known(void)
{
    uint8_t b[32];

    CHECK_U64(lm_crc32c(0, "123456789", 9), 0xE3069283);
    CHECK_U64(lm_crc32c(0, "", 0), 0);
    memset(b, 0, sizeof b);
    CHECK_U64(lm_crc32c(0, b, 32), 0x8A9136AA);
    memset(b, 0xff, sizeof b);
    CHECK_U64(lm_crc32c(0, b, 32), 0x62A8AB43);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    CHECK_U64(lm_crc32c(0, b, 32), 0x46DD794E);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    CHECK_U64(lm_crc32c(0, b, 32), 0x113FDB5C);
}

static void crc_incremental(void)
{
    const char *s = "123456789";
    uint8_t big[1000];
    uint32_t whole;

    /* every split of "123456789" into two pieces */
    for (size_t cut = 0; cut <= 9; cut++) {
        uint32_t c = lm_crc32c(0, s, cut);
        CHECK_U64(lm_crc32c(c, s + cut, 9 - cut), 0xE3069283);
    }
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 31 + 7);
    whole = lm_crc32c(0, big, sizeof big);
    CHECK_U64(whole, crc_bitwise(big, sizeof big));
    /* odd pieces, so that the 8-byte loop starts unaligned */
    {
        uint32_t c = 0;
        size_t off = 0, step = 1;
        while (off < sizeof big) {
            size_t n = step < sizeof big - off ? step : sizeof big - off;
            c = lm_crc32c(c, big + off, n);
            off += n;
            step = step * 3 % 17 + 1;
        }
        CHECK_U64(c, whole);
    }
}

static void crc_lengths_and_alignments(void)
{
    uint8_t buf[80];
    int bad = 0;

    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 167 + 13);
    for (size_t off = 0; off < 8 && bad < 3; off++)
        for (size_t n = 0; off + n <= 72 && bad < 3; n++)
            if (!CHECK_U64(lm_crc32c(0, buf + off, n), crc_bitwise(buf + off, n))) {
                unit_note("offset %zu, length %zu", off, n);
                bad++;
            }
}

static void sha256_of(const void *data, size_t n, uint8_t out[LM_SHA256_LEN])
{
    lm_sha256 c;
    lm_sha256_init(&c);
    lm_sha256_update(&c, data, n);
    lm_sha256_final(&c, out);
}

#define CHECK_DIGEST(got, hex)                                    \
    do {                                                          \
        uint8_t want_[LM_SHA256_LEN];                             \
        size_t n_ = unit_unhex((hex), want_, sizeof want_);       \
        CHECK_MEM((got), LM_SHA256_LEN, want_, n_);               \
    } while (0)

static void sha256_known(void)
{
    static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    uint8_t d[LM_SHA256_LEN];

    sha256_of("abc", 3, d);
    CHECK_DIGEST(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_of("", 0, d);
    CHECK_DIGEST(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* 56 bytes: the length no longer fits the first block's padding */
    sha256_of(two_blocks, strlen(two_blocks), d);
    CHECK_DIGEST(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void sha256_million(void)
{
    uint8_t chunk[1000], d[LM_SHA256_LEN];
    lm_sha256 c;

    /* a million 'a', fed in pieces that do not divide the 64-byte block */
    memset(chunk, 'a', sizeof chunk);
    lm_sha256_init(&c);
    for (int i = 0; i < 1000; i++)
        lm_sha256_update(&c, chunk, sizeof chunk);
    lm_sha256_final(&c, d);
    CHECK_DIGEST(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void sha256_incremental(void)
{
    uint8_t msg[200], whole[LM_SHA256_LEN], parts[LM_SHA256_LEN];

    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i ^ 0x5a);
    /* lengths around the block and padding edges, fed a byte at a time */
    for (size_t n = 50; n <= 130; n++) {
        lm_sha256 c;
        sha256_of(msg, n, whole);
        lm_sha256_init(&c);
        for (size_t i = 0; i < n; i++)
            lm_sha256_update(&c, msg + i, 1);
        lm_sha256_final(&c, parts);
        if (!CHECK_MEM(parts, sizeof parts, whole, sizeof whole))
            unit_note("length %zu", n);
    }
}

static void hmac_rfc4231(void)
{
    uint8_t key[131], data[160], d[LM_SHA256_LEN];
    const char *m;

    /* test case 1 */
    memset(key, 0x0b, 20);
    lm_hmac_sha256(key, 20, "Hi There", 8, d);
    CHECK_DIGEST(d, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    /* test case 2: a key shorter than the output */
    m = "what do ya want for nothing?";
    lm_hmac_sha256((const uint8_t *)"Jefe", 4, m, strlen(m), d);
    CHECK_DIGEST(d, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* test case 3 */
    memset(key, 0xaa, 20);
    memset(data, 0xdd, 50);
    lm_hmac_sha256(key, 20, data, 50, d);
    CHECK_DIGEST(d, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    /* test case 4 */
    for (int i = 0; i < 25; i++)
        key[i] = (uint8_t)(i + 1);
    memset(data, 0xcd, 50);
    lm_hmac_sha256(key, 25, data, 50, d);
    CHECK_DIGEST(d, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
    /* test cases 6 and 7: a key longer than a block is hashed first */
    memset(key, 0xaa, 131);
    m = "Test Using Larger Than Block-Size Key - Hash Key First";
    lm_hmac_sha256(key, 131, m, strlen(m), d);
    CHECK_DIGEST(d, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    m = "This is a test using a larger than block-size key and a larger than block-size data. "
        "The key needs to be hashed before being used by the HMAC algorithm.";
    lm_hmac_sha256(key, 131, m, strlen(m), d);
    CHECK_DIGEST(d, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

static void equal_ct(void)
{
    uint8_t a[32], b[32];

    memset(a, 7, sizeof a);
    memcpy(b, a, sizeof b);
    CHECK(lm_equal_ct(a, b, sizeof a));
    CHECK(lm_equal_ct(a, b, 0));
    b[0] ^= 1;
    CHECK(!lm_equal_ct(a, b, sizeof a));
    b[0] ^= 1;
    b[31] ^= 0x80;
    CHECK(!lm_equal_ct(a, b, sizeof a));
    CHECK(lm_equal_ct(a, b, 31));
}

const unit_test unit_hash_tests[] = {
    {"crc32c known answers (RFC 3720)", crc_known},
    {"crc32c incremental equals one-shot", crc_incremental},
    {"crc32c equals the bitwise definition at every length and offset",
     crc_lengths_and_alignments},
    {"sha256 known answers (FIPS 180-4)", sha256_known},
    {"sha256 of a million 'a'", sha256_million},
    {"sha256 incremental equals one-shot", sha256_incremental},
    {"hmac-sha256 known answers (RFC 4231)", hmac_rfc4231},
    {"constant-time comparison", equal_ct},
    {NULL, NULL},
};
