/* The tool's state on the target: one schema, "lm", defined here and only
 * here (man/lm-state.7 documents it). lm-snapshot and lm-apply share it:
 *
 *   lm.meta      key/value facts about the migration (format version, ...)
 *   lm.origin    which source system, database and slot a replication
 *                origin was started from (a stream from another is refused)
 *   lm.copy      copy progress: one row per finished table chunk, written in
 *                the same transaction as the chunk's data
 *   lm.sync      per-table sync position: changes to the table are applied
 *                only from transactions that committed at or after it
 *   lm.marker    cutover markers applied, in the transaction that applied
 *                everything before them
 *   lm.progress  the last source transaction applied per origin (for lag)
 */
#ifndef LM_STATE_H
#define LM_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "exitcodes.h"   /* LM_MARKER_PREFIX */

#define LM_STATE_SCHEMA "lm"
#define LM_STATE_VERSION 1

/* Create the schema and its tables if missing (idempotent, safe against
 * concurrent callers); exits with LM_EXIT_PREFLIGHT if the role may not. */
void lm_state_ensure(PGconn *target);
/* Whether the schema exists. */
bool lm_state_exists(PGconn *target);
/* The DDL, for documentation and tests. */
const char *lm_state_ddl(void);

#endif
