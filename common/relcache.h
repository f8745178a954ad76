/* Relations seen in a stream, by source relid. Each Relation record
 * replaces the entry (pgoutput re-sends one after DDL). */
#ifndef LM_RELCACHE_H
#define LM_RELCACHE_H

#include "record.h"

typedef struct lm_relentry {
    lm_relation rel;         /* deep copy */
    char *qualname;          /* "nsp"."rel", quoted */
    char *display;           /* nsp.rel, for messages */
    unsigned generation;     /* bumped each time the definition is replaced */
    void *user;              /* owner's data, freed by the owner's callback */
} lm_relentry;

typedef struct lm_relcache lm_relcache;

/* free_user is called on an entry's user pointer when it is replaced. */
lm_relcache *lm_relcache_new(void (*free_user)(void *));
/* The same definition (name, replica identity, columns), whatever the relids. */
bool lm_relation_same(const lm_relation *a, const lm_relation *b);
/* Store a copy of rel, replacing an entry with the same relid. */
lm_relentry *lm_relcache_put(lm_relcache *c, const lm_relation *rel);
lm_relentry *lm_relcache_get(lm_relcache *c, uint32_t relid);
/* Iterate: i from 0 while the result is not NULL. */
lm_relentry *lm_relcache_at(lm_relcache *c, size_t i);
size_t lm_relcache_count(const lm_relcache *c);
void lm_relcache_free(lm_relcache *c);

#endif
