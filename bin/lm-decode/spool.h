/* lm-decode's own part of the spool: recovery of a leftover partial
 * segment. Naming and listing are in common/spooldir.h. */
#ifndef LM_DECODE_SPOOL_H
#define LM_DECODE_SPOOL_H

#include <stdint.h>

#include "spooldir.h"

/* Cut a leftover partial back to its last complete transaction, append a
 * trailer and finish it, or remove it if it holds no complete transaction.
 * Returns the END of the finished segment, or start if it was removed.
 * Exits on I/O errors. */
uint64_t spool_recover_partial(const char *dir, const char *name, uint64_t start);
/* Set aside a little space in the spool (lm-decode.reserve) for the trailer
 * of a partial recovered on a full disk; only a warning if there is none. */
void spool_make_reserve(const char *dir);

#endif
