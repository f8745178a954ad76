/* lm-decode on a TimescaleDB source: a chunk's changes under its
 * hypertable's name (chunkmap.c). */
#ifndef LM_DECODE_CHUNKMAP_H
#define LM_DECODE_CHUNKMAP_H

#include <stdbool.h>

#include "record.h"

/* Once at start: whether the source (CONNINFO, an ordinary connection)
 * has the timescaledb extension; if so, keep the connection for look-ups
 * and load the map of the chunks that exist now. Without it, every record
 * passes unchanged. */
void chunkmap_init(const char *conninfo, const char *publication);

/* Whether record r goes into the stream. A chunk's Relation record is
 * rewritten in place to carry its hypertable's schema and name (the relid
 * stays the chunk's). Relations that are not user data - an extension's
 * own tables, TimescaleDB's internal ones, chunks of a hypertable outside
 * the publication - are left out with their changes. A relation that no
 * longer exists on the source and lies in a chunk schema (a chunk dropped
 * before lm-decode reached its changes) is an error: exit
 * LM_EXIT_PREFLIGHT. */
bool chunkmap_filter(lm_record *r);

#endif
