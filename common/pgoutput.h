/* Parser of pgoutput messages (logical replication protocol 1 and 2, without
 * streamed transactions) into change format records. */
#ifndef LM_PGOUTPUT_H
#define LM_PGOUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* Parse one pgoutput message (the bytes after the XLogData 'w' header).
 * Fills rec with the matching change format record; values point into msg,
 * arrays and strings come from arena. Returns 0 on success, -1 if the
 * message is malformed or of a kind lm does not handle (err says which). */
int lm_pgoutput_parse(const uint8_t *msg, size_t len, lm_record *rec, lm_arena *arena,
                      char *err, size_t errlen);

#endif
