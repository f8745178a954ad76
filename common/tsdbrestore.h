/* Post-data on TimescaleDB hypertables (used by schema.c).
 *
 * pg_dump adds a table's constraints with ALTER TABLE ONLY, which
 * TimescaleDB refuses on a hypertable ("ONLY option not supported on
 * hypertable operations"); without ONLY it adds them to the hypertable and
 * every chunk. So the post-data entries that add a constraint to a table
 * that is a hypertable on the target are taken out of the restore list and
 * run on their own, each printed by pg_restore and its ALTER TABLE ONLY
 * (checked to name that hypertable) made an ALTER TABLE: the primary keys,
 * unique, exclusion and check constraints before the rest of post-data (a
 * plain table's foreign key may reference them), the foreign keys after it
 * (they may reference a plain table's key). */
#ifndef LM_TSDBRESTORE_H
#define LM_TSDBRESTORE_H

#include <stdbool.h>
#include <libpq-fe.h>

typedef struct lm_tsdb_entry {
    char *line;        /* the restore list's line */
    char *qname;       /* the hypertable, as pg_dump quotes it */
    bool fk;           /* a foreign key: after the rest of post-data */
} lm_tsdb_entry;

typedef struct lm_tsdb_split {
    lm_tsdb_entry *e;
    int n;
} lm_tsdb_split;

/* The target's hypertables (none when TimescaleDB is not installed there):
 * rewrite listfile (a pg_restore list) with the entries adding constraints
 * to them commented out, those entries in *out. false with the error
 * logged. */
bool lm_tsdb_split_list(PGconn *conn, const char *listfile, lm_tsdb_split *out);

/* Run the entries of s (fk: the foreign keys, else the others) from
 * archive_path on conn, each without ONLY. Returns an exit code (0 ok,
 * LM_EXIT_SERVER with the failure logged). */
int lm_tsdb_run_entries(PGconn *conn, const char *archive_path, const lm_tsdb_split *s, bool fk);

void lm_tsdb_split_free(lm_tsdb_split *s);

/* The script pg_restore printed for one entry, made a statement on qname
 * without ONLY: its header's SET lines, then its first ALTER TABLE [ONLY]
 * qname statement, up to pg_restore's closing \unrestrict line. NULL when
 * the first ALTER TABLE names another table (or there is none). Malloc'd. */
char *lm_tsdb_without_only(const char *script, const char *qname);

#endif
