#include <stdlib.h>

#include "buf.h"
#include "log.h"

void lm_buf_reserve(lm_buf *b, size_t n)
{
    size_t need = b->len + n;
    size_t cap = b->cap ? b->cap : 256;

    if (need <= b->cap)
        return;
    while (cap < need)
        cap *= 2;
    b->data = lm_realloc(b->data, cap);
    b->cap = cap;
}

void lm_buf_free(lm_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static inline bool fail(lm_cursor *c)
{
    c->ok = false;
    return false;
}

bool lm_cur_u8(lm_cursor *c, uint8_t *v)
{
    if (!c->ok || c->p >= c->end)
        return fail(c);
    *v = *c->p++;
    return true;
}

bool lm_cur_be16(lm_cursor *c, uint16_t *v)
{
    if (!c->ok || lm_cursor_left(c) < 2)
        return fail(c);
    *v = lm_get_be16(c->p);
    c->p += 2;
    return true;
}

bool lm_cur_be32(lm_cursor *c, uint32_t *v)
{
    if (!c->ok || lm_cursor_left(c) < 4)
        return fail(c);
    *v = lm_get_be32(c->p);
    c->p += 4;
    return true;
}

bool lm_cur_be64(lm_cursor *c, uint64_t *v)
{
    if (!c->ok || lm_cursor_left(c) < 8)
        return fail(c);
    *v = lm_get_be64(c->p);
    c->p += 8;
    return true;
}

bool lm_cur_varint(lm_cursor *c, uint64_t *v)
{
    uint64_t r = 0;
    unsigned shift = 0;

    if (!c->ok)
        return false;
    while (c->p < c->end) {
        uint8_t byte = *c->p++;
        if (shift == 63 && byte > 1)
            return fail(c);
        r |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *v = r;
            return true;
        }
        shift += 7;
        if (shift > 63)
            return fail(c);
    }
    return fail(c);
}

bool lm_cur_svarint(lm_cursor *c, int64_t *v)
{
    uint64_t u;
    if (!lm_cur_varint(c, &u))
        return false;
    *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return true;
}

bool lm_cur_raw(lm_cursor *c, size_t n, const uint8_t **p)
{
    if (!c->ok || lm_cursor_left(c) < n)
        return fail(c);
    *p = c->p;
    c->p += n;
    return true;
}

bool lm_cur_bytes(lm_cursor *c, const uint8_t **p, size_t *n)
{
    uint64_t len;
    if (!lm_cur_varint(c, &len) || len > lm_cursor_left(c))
        return fail(c);
    *n = (size_t)len;
    *p = c->p;
    c->p += len;
    return true;
}

bool lm_cur_cstr(lm_cursor *c, const char **s)
{
    const uint8_t *nul;
    if (!c->ok)
        return false;
    nul = memchr(c->p, 0, lm_cursor_left(c));
    if (!nul)
        return fail(c);
    *s = (const char *)c->p;
    c->p = nul + 1;
    return true;
}

struct lm_arena_block {
    lm_arena_block *next;
    size_t size;
    _Alignas(16) uint8_t data[];
};

void *lm_arena_alloc(lm_arena *a, size_t n)
{
    void *p;

    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->size - a->used < n) {
        size_t size = n > 16384 ? n : 16384;
        lm_arena_block *b = lm_malloc(sizeof *b + size);
        b->size = size;
        b->next = a->head;
        a->head = b;
        a->used = 0;
    }
    p = a->head->data + a->used;
    a->used += n;
    return p;
}

char *lm_arena_strndup(lm_arena *a, const void *p, size_t n)
{
    char *s = lm_arena_alloc(a, n + 1);
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

void lm_arena_reset(lm_arena *a)
{
    lm_arena_block *b = a->head;

    if (!b)
        return;
    while (b->next) {
        lm_arena_block *n = b->next;
        /* keep the oldest (last) block, free the rest */
        a->head = n;
        free(b);
        b = n;
    }
    a->used = 0;
}

void lm_arena_free(lm_arena *a)
{
    while (a->head) {
        lm_arena_block *n = a->head->next;
        free(a->head);
        a->head = n;
    }
    a->used = 0;
}
