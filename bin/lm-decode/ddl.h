/* lm-decode: DDL records from the rows of lm.ddl_log, the table of the
 * DDL capture that lm-slot create --ddl installs (bin/lm-slot/ddl.c).
 * Only inserts into that table, known by its OID, become DDL records;
 * nothing else (a logical message, a table of the same name) ever does. */
#ifndef LM_DECODE_DDL_H
#define LM_DECODE_DDL_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "record.h"

/* Learn the capture table's OID on conn (a replication connection, before
 * START_REPLICATION). initial: exit on a failed query; later (a
 * reconnection) keep what was known. */
void ddl_setup(PGconn *conn, bool initial);
/* A relation record: true when it is the capture table's (kept here, not
 * written). Exits when a table of that name has another OID. */
bool ddl_relation(const lm_record *r);
/* A row change: -1 not the capture table's (a truncate has it taken out
 * of its list), 0 to leave out, 1 turned into the DDL record *out
 * (strings in arena). Exits on a malformed capture row. */
int ddl_change(lm_record *r, lm_record *out, lm_arena *arena);

#endif
