#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgconn.h"
#include "relcache.h"

struct lm_relcache {
    lm_relentry **items;     /* insertion order */
    size_t n, cap;
    lm_relentry *last;       /* lookups mostly hit the relation used last */
    void (*free_user)(void *);
};

lm_relcache *lm_relcache_new(void (*free_user)(void *))
{
    lm_relcache *c = lm_malloc(sizeof *c);
    memset(c, 0, sizeof *c);
    c->free_user = free_user;
    return c;
}

static void clear_entry(lm_relcache *c, lm_relentry *e)
{
    lm_relation_free(&e->rel);
    free(e->qualname);
    free(e->display);
    if (e->user && c->free_user)
        c->free_user(e->user);
    e->user = NULL;
}

lm_relentry *lm_relcache_get(lm_relcache *c, uint32_t relid)
{
    /* linear is fine for hundreds of tables; a hash would pay off only for
     * many thousands */
    if (c->last && c->last->rel.relid == relid)
        return c->last;
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i]->rel.relid == relid)
            return c->last = c->items[i];
    return NULL;
}

bool lm_relation_same(const lm_relation *x, const lm_relation *rel)
{
    if (strcmp(x->nspname, rel->nspname) != 0 || strcmp(x->relname, rel->relname) != 0 ||
        x->replident != rel->replident || x->natts != rel->natts)
        return false;
    for (uint32_t i = 0; i < rel->natts; i++) {
        const lm_column *a = &x->cols[i], *b = &rel->cols[i];
        if (a->flags != b->flags || a->typoid != b->typoid || a->typmod != b->typmod ||
            strcmp(a->name, b->name) != 0)
            return false;
    }
    return true;
}

lm_relentry *lm_relcache_put(lm_relcache *c, const lm_relation *rel)
{
    lm_relentry *e = NULL;
    unsigned gen = 0;

    for (size_t i = 0; i < c->n; i++)
        if (c->items[i]->rel.relid == rel->relid)
            e = c->items[i];
    if (e && lm_relation_same(&e->rel, rel))
        return e;   /* sent again (a new segment, a reconnect): keep what was made of it */
    if (e) {
        gen = e->generation + 1;
        clear_entry(c, e);
    } else {
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 16;
            c->items = lm_realloc(c->items, c->cap * sizeof *c->items);
        }
        e = lm_malloc(sizeof *e);
        c->items[c->n++] = e;
    }
    memset(e, 0, sizeof *e);
    e->generation = gen;
    e->rel = lm_relation_dup(rel);
    e->qualname = lm_qualified(*rel->nspname ? rel->nspname : "pg_catalog", rel->relname);
    e->display = lm_psprintf("%s.%s", *rel->nspname ? rel->nspname : "pg_catalog", rel->relname);
    return e;
}

lm_relentry *lm_relcache_at(lm_relcache *c, size_t i) { return i < c->n ? c->items[i] : NULL; }
size_t lm_relcache_count(const lm_relcache *c) { return c->n; }

void lm_relcache_free(lm_relcache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        clear_entry(c, c->items[i]);
        free(c->items[i]);
    }
    free(c->items);
    free(c);
}
