/* A growable byte buffer and the primitive encoders of the change format:
 * unsigned LEB128 varints, zigzag signed varints, big-endian fixed ints. */
#ifndef LM_BUF_H
#define LM_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct lm_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} lm_buf;

/* Make room for n more bytes. */
void lm_buf_reserve(lm_buf *b, size_t n);
void lm_buf_free(lm_buf *b);
static inline void lm_buf_reset(lm_buf *b) { b->len = 0; }

static inline void lm_buf_put(lm_buf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n)
        lm_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* Append the C string s, not its NUL. Afterwards data is NUL-terminated
 * (data[len] == '\0'), so (char *)data is the text so far, and len does
 * not count the NUL: the next append writes over it, and sending len bytes
 * sends the text alone. Appends other than lm_buf_puts (lm_buf_put,
 * lm_buf_u8, lm_quote_ident...) do not terminate: a buffer that ends with
 * one needs lm_buf_u8(b, '\0') before use as a string, as before. */
static inline void lm_buf_puts(lm_buf *b, const char *s)
{
    size_t n = strlen(s);

    if (b->cap - b->len <= n)
        lm_buf_reserve(b, n + 1);
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
}

static inline void lm_buf_u8(lm_buf *b, uint8_t v)
{
    if (b->cap == b->len)
        lm_buf_reserve(b, 1);
    b->data[b->len++] = v;
}

static inline void lm_buf_varint(lm_buf *b, uint64_t v)
{
    if (b->cap - b->len < 10)
        lm_buf_reserve(b, 10);
    while (v >= 0x80) {
        b->data[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (uint8_t)v;
}

static inline void lm_buf_svarint(lm_buf *b, int64_t v)
{
    lm_buf_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static inline void lm_buf_be32(lm_buf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    lm_buf_put(b, t, 4);
}

static inline void lm_buf_be64(lm_buf *b, uint64_t v)
{
    lm_buf_be32(b, (uint32_t)(v >> 32));
    lm_buf_be32(b, (uint32_t)v);
}

/* Length-prefixed bytes: varint length, then the bytes. */
static inline void lm_buf_bytes(lm_buf *b, const void *p, size_t n)
{
    lm_buf_varint(b, n);
    lm_buf_put(b, p, n);
}

static inline void lm_buf_str(lm_buf *b, const char *s)
{
    lm_buf_bytes(b, s, s ? strlen(s) : 0);
}

static inline uint32_t lm_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t lm_get_be64(const uint8_t *p)
{
    return ((uint64_t)lm_get_be32(p) << 32) | lm_get_be32(p + 4);
}

static inline uint16_t lm_get_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline void lm_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static inline void lm_put_be64(uint8_t *p, uint64_t v)
{
    lm_put_be32(p, (uint32_t)(v >> 32));
    lm_put_be32(p + 4, (uint32_t)v);
}

/* A region allocator: allocations stay put until lm_arena_reset. */
typedef struct lm_arena_block lm_arena_block;
typedef struct lm_arena {
    lm_arena_block *head;
    size_t used;             /* in head */
} lm_arena;
void *lm_arena_alloc(lm_arena *a, size_t n);
/* A NUL-terminated copy of n bytes. */
char *lm_arena_strndup(lm_arena *a, const void *p, size_t n);
/* Free everything but the first block, which is kept for reuse. */
void lm_arena_reset(lm_arena *a);
void lm_arena_free(lm_arena *a);

/* A bounds-checked cursor over bytes: every getter fails (returns false and
 * sets ok = false) rather than read past the end. */
typedef struct lm_cursor {
    const uint8_t *p;
    const uint8_t *end;
    bool ok;
} lm_cursor;

static inline void lm_cursor_init(lm_cursor *c, const void *p, size_t n)
{
    c->p = p;
    c->end = (const uint8_t *)p + n;
    c->ok = true;
}

static inline size_t lm_cursor_left(const lm_cursor *c) { return (size_t)(c->end - c->p); }

bool lm_cur_u8(lm_cursor *c, uint8_t *v);
bool lm_cur_be16(lm_cursor *c, uint16_t *v);
bool lm_cur_be32(lm_cursor *c, uint32_t *v);
bool lm_cur_be64(lm_cursor *c, uint64_t *v);
bool lm_cur_varint(lm_cursor *c, uint64_t *v);
bool lm_cur_svarint(lm_cursor *c, int64_t *v);
/* n bytes, returned as a pointer into the input. */
bool lm_cur_raw(lm_cursor *c, size_t n, const uint8_t **p);
/* varint length then bytes. */
bool lm_cur_bytes(lm_cursor *c, const uint8_t **p, size_t *n);
/* NUL-terminated string (pgoutput's). */
bool lm_cur_cstr(lm_cursor *c, const char **s);

#endif
