/* common/buf.h and buf.c: varints, big-endian integers, the bounds-checked
 * cursor, the growable buffer and the arena. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "unit.h"

/* LEB128 as lm-format(5) writes it: seven bits a byte, low group first,
 * the high bit set on every byte but the last */
static const struct {
    uint64_t v;
    const char *hex;
} varints[] = {
    {0, "00"},
    {1, "01"},
    {127, "7f"},
    {128, "80 01"},
    {300, "ac 02"},
    {16383, "ff 7f"},
    {16384, "80 80 01"},
    {UINT64_C(0xFFFFFFFF), "ff ff ff ff 0f"},
    {UINT64_C(0x100000000), "80 80 80 80 10"},
    {UINT64_C(0x8000000000000000), "80 80 80 80 80 80 80 80 80 01"},
    {UINT64_MAX, "ff ff ff ff ff ff ff ff ff 01"},
};

/* zigzag: 0, -1, 1, -2, ... map to 0, 1, 2, 3, ... */
static const struct {
    int64_t v;
    const char *hex;
} svarints[] = {
    {0, "00"},
    {-1, "01"},
    {1, "02"},
    {-2, "03"},
    {63, "7e"},
    {-64, "7f"},
    {64, "80 01"},
    {INT64_MAX, "fe ff ff ff ff ff ff ff ff 01"},
    {INT64_MIN, "ff ff ff ff ff ff ff ff ff 01"},
};

static void varint_encode(void)
{
    for (size_t i = 0; i < sizeof varints / sizeof varints[0]; i++) {
        lm_buf b = {0};
        uint8_t want[16];
        size_t n = unit_unhex(varints[i].hex, want, sizeof want);

        lm_buf_varint(&b, varints[i].v);
        CHECK_MEM(b.data, b.len, want, n);
        lm_buf_free(&b);
    }
}

static void varint_decode(void)
{
    for (size_t i = 0; i < sizeof varints / sizeof varints[0]; i++) {
        uint8_t in[16];
        size_t n = unit_unhex(varints[i].hex, in, sizeof in);
        lm_cursor c;
        uint64_t v = 42;

        lm_cursor_init(&c, in, n);
        CHECK(lm_cur_varint(&c, &v));
        CHECK_U64(v, varints[i].v);
        CHECK_U64(lm_cursor_left(&c), 0);
    }
}

static void svarint_round_trip(void)
{
    for (size_t i = 0; i < sizeof svarints / sizeof svarints[0]; i++) {
        lm_buf b = {0};
        uint8_t want[16];
        size_t n = unit_unhex(svarints[i].hex, want, sizeof want);
        lm_cursor c;
        int64_t v = 42;

        lm_buf_svarint(&b, svarints[i].v);
        CHECK_MEM(b.data, b.len, want, n);
        lm_cursor_init(&c, b.data, b.len);
        CHECK(lm_cur_svarint(&c, &v));
        CHECK_I64(v, svarints[i].v);
        CHECK_U64(lm_cursor_left(&c), 0);
        lm_buf_free(&b);
    }
}

static void varint_truncated(void)
{
    for (size_t i = 0; i < sizeof varints / sizeof varints[0]; i++) {
        uint8_t in[16];
        size_t n = unit_unhex(varints[i].hex, in, sizeof in);

        /* every proper prefix, the empty one included */
        for (size_t len = 0; len < n; len++) {
            lm_cursor c;
            uint64_t v;
            lm_cursor_init(&c, in, len);
            CHECK(!lm_cur_varint(&c, &v));
            CHECK(!c.ok);
        }
    }
}

static void varint_overflow(void)
{
    static const char *const bad[] = {
        "ff ff ff ff ff ff ff ff ff 02",     /* 2^64 and more */
        "ff ff ff ff ff ff ff ff ff 7f",
        "80 80 80 80 80 80 80 80 80 81 00",  /* an eleventh byte */
        "80 80 80 80 80 80 80 80 80 80 80 80 01",
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t in[16];
        size_t n = unit_unhex(bad[i], in, sizeof in);
        lm_cursor c;
        uint64_t v;

        lm_cursor_init(&c, in, n);
        if (!CHECK(!lm_cur_varint(&c, &v)))
            unit_note("accepted %s", bad[i]);
        CHECK(!c.ok);
    }
}

static void fixed_ints(void)
{
    lm_buf b = {0};
    uint8_t want[16], p[8];
    size_t n = unit_unhex("01 02 03 04 01 02 03 04 05 06 07 08", want, sizeof want);
    lm_cursor c;
    uint32_t v32;
    uint64_t v64;
    uint16_t v16;
    uint8_t v8;

    lm_buf_be32(&b, 0x01020304);
    lm_buf_be64(&b, UINT64_C(0x0102030405060708));
    CHECK_MEM(b.data, b.len, want, n);
    CHECK_U64(lm_get_be16(want), 0x0102);
    CHECK_U64(lm_get_be32(want), 0x01020304);
    CHECK_U64(lm_get_be64(want + 4), UINT64_C(0x0102030405060708));
    lm_put_be32(p, 0xDEADBEEF);
    CHECK_MEM(p, 4, "\xde\xad\xbe\xef", 4);
    lm_put_be64(p, UINT64_C(0xFFEEDDCCBBAA9988));
    CHECK_MEM(p, 8, "\xff\xee\xdd\xcc\xbb\xaa\x99\x88", 8);

    lm_cursor_init(&c, b.data, b.len);
    CHECK(lm_cur_be32(&c, &v32));
    CHECK_U64(v32, 0x01020304);
    CHECK(lm_cur_be16(&c, &v16));
    CHECK_U64(v16, 0x0102);
    CHECK(lm_cur_u8(&c, &v8));
    CHECK_U64(v8, 3);
    CHECK_U64(lm_cursor_left(&c), 5);
    /* five bytes left: a be64 is refused and the cursor stays failed */
    CHECK(!lm_cur_be64(&c, &v64));
    CHECK(!c.ok);
    CHECK(!lm_cur_u8(&c, &v8));

    lm_cursor_init(&c, b.data, 3);
    CHECK(!lm_cur_be32(&c, &v32));
    lm_cursor_init(&c, b.data, 1);
    CHECK(!lm_cur_be16(&c, &v16));
    lm_cursor_init(&c, b.data, 0);
    CHECK(!lm_cur_u8(&c, &v8));
    lm_cursor_init(&c, b.data, 8);
    CHECK(lm_cur_be64(&c, &v64));
    CHECK_U64(v64, UINT64_C(0x0102030401020304));
    lm_buf_free(&b);
}

static void bytes_and_strings(void)
{
    lm_buf b = {0};
    lm_cursor c;
    const uint8_t *p;
    const char *s;
    size_t n;

    lm_buf_str(&b, "abc");
    lm_buf_str(&b, NULL);          /* written as the empty string */
    lm_buf_bytes(&b, "\0x", 2);
    CHECK_MEM(b.data, b.len, "\x03" "abc" "\x00" "\x02\x00x", 8);

    lm_cursor_init(&c, b.data, b.len);
    CHECK(lm_cur_bytes(&c, &p, &n));
    CHECK_MEM(p, n, "abc", 3);
    CHECK(lm_cur_bytes(&c, &p, &n));
    CHECK_U64(n, 0);
    CHECK(lm_cur_bytes(&c, &p, &n));
    CHECK_MEM(p, n, "\0x", 2);
    CHECK_U64(lm_cursor_left(&c), 0);

    /* a length past the end is refused, not read */
    lm_cursor_init(&c, b.data, 3);
    CHECK(!lm_cur_bytes(&c, &p, &n));
    CHECK(!c.ok);
    lm_cursor_init(&c, "\xff\xff\xff\xff\x0f" "ab", 7);
    CHECK(!lm_cur_bytes(&c, &p, &n));

    lm_cursor_init(&c, "ab", 2);
    CHECK(lm_cur_raw(&c, 2, &p));
    CHECK_MEM(p, 2, "ab", 2);
    CHECK(!lm_cur_raw(&c, 1, &p));

    /* pgoutput's NUL-terminated strings */
    lm_cursor_init(&c, "ab\0c\0d", 6);
    CHECK(lm_cur_cstr(&c, &s));
    CHECK_STR(s, "ab");
    CHECK(lm_cur_cstr(&c, &s));
    CHECK_STR(s, "c");
    CHECK(!lm_cur_cstr(&c, &s));    /* "d" has no terminator */
    CHECK(!c.ok);
    lm_buf_free(&b);
}

static void buffer_growth(void)
{
    lm_buf b = {0};
    bool same = true;

    for (uint32_t i = 0; i < 100000; i++)
        lm_buf_u8(&b, (uint8_t)(i * 7));
    CHECK_U64(b.len, 100000);
    CHECK(b.cap >= b.len);
    for (uint32_t i = 0; i < 100000 && same; i++)
        same = b.data[i] == (uint8_t)(i * 7);
    CHECK(same);
    lm_buf_reset(&b);
    CHECK_U64(b.len, 0);
    lm_buf_put(&b, "xy", 2);
    lm_buf_put(&b, NULL, 0);
    CHECK_MEM(b.data, b.len, "xy", 2);
    lm_buf_free(&b);
    CHECK(b.data == NULL);
    CHECK_U64(b.len + b.cap, 0);
}

/* lm_buf_puts: the text without its NUL in len, a NUL after it in data,
 * whatever room the buffer had left */
static void buffer_puts(void)
{
    lm_buf b = {0};
    char s[300];
    bool terminated = true, same = true;

    lm_buf_puts(&b, "");
    if (CHECK(b.data != NULL))
        CHECK_U64(b.data[0], 0);
    CHECK_U64(b.len, 0);
    lm_buf_puts(&b, "SELECT ");
    lm_buf_puts(&b, "1");
    CHECK_U64(b.len, 8);
    CHECK_STR((char *)b.data, "SELECT 1");
    CHECK_MEM(b.data, b.len, "SELECT 1", 8);
    /* after a byte-level append, the next lm_buf_puts terminates again */
    lm_buf_u8(&b, ',');
    lm_buf_puts(&b, " 2");
    CHECK_STR((char *)b.data, "SELECT 1, 2");
    CHECK_U64(b.len, 11);
    lm_buf_reset(&b);
    lm_buf_puts(&b, "x");
    CHECK_STR((char *)b.data, "x");
    lm_buf_free(&b);

    /* every string length against every room left, the NUL at the edge */
    memset(s, 'a', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    for (size_t fill = 250; fill <= 256; fill++) {
        for (size_t n = 0; n < 8; n++) {
            lm_buf c = {0};
            for (size_t i = 0; i < fill; i++)
                lm_buf_u8(&c, 'a');
            lm_buf_puts(&c, s + sizeof s - 1 - n);
            terminated = terminated && c.len == fill + n && c.cap > c.len && c.data[c.len] == '\0';
            same = same && strspn((char *)c.data, "a") == fill + n;
            lm_buf_free(&c);
        }
    }
    CHECK(terminated);
    CHECK(same);
}

static void arena(void)
{
    lm_arena a = {0};
    char *s = lm_arena_strndup(&a, "hello world", 5), *e;
    void *big, *p;

    CHECK_STR(s, "hello");
    e = lm_arena_strndup(&a, NULL, 0);
    CHECK_STR(e, "");
    /* 16-byte aligned, for any type */
    p = lm_arena_alloc(&a, 3);
    CHECK_U64((uintptr_t)p % 16, 0);
    /* larger than a block: a block of its own, earlier allocations kept */
    big = lm_arena_alloc(&a, 100000);
    memset(big, 0xab, 100000);
    CHECK_STR(s, "hello");
    lm_arena_reset(&a);
    s = lm_arena_strndup(&a, "again", 5);
    CHECK_STR(s, "again");
    lm_arena_free(&a);
    CHECK(a.head == NULL);
}

const unit_test unit_buf_tests[] = {
    {"varint encodings at the boundaries", varint_encode},
    {"varint decodings at the boundaries", varint_decode},
    {"zigzag svarint round trips", svarint_round_trip},
    {"truncated varints refused", varint_truncated},
    {"varints past 64 bits refused", varint_overflow},
    {"big-endian fixed integers", fixed_ints},
    {"length-prefixed bytes and C strings", bytes_and_strings},
    {"buffer growth keeps the bytes", buffer_growth},
    {"string appends stay NUL-terminated, len without the NUL", buffer_puts},
    {"arena allocations", arena},
    {NULL, NULL},
};
