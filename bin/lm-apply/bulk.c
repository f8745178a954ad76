/* Bulk table data from `lm-snapshot --output`: the schema archive and
 * COPY chunks. Each chunk is loaded and marked done in lm.copy in one target
 * transaction, so loading a stream twice loads nothing twice. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "exitcodes.h"
#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "schema.h"
#include "state.h"

static bool active;         /* inside a chunk */
static bool skipping;       /* the chunk is done already */
static char *nsp, *rel;
static uint32_t chunk, nchunks;
static uint64_t sync_lsn;
static uint64_t rows_loaded;
static FILE *archive;
static char archive_path[256];
static bool have_archive;

bool bulk_active(void) { return active; }

/* Restore a section of the carried archive and mark it done (key). KEY_begun
 * is written first: a run killed during the restore left part of the section
 * made, and the next run restores it with "again" (see lm_schema_restore)
 * when may_again allows. */
static void restore_section(apply_target *t, const char *section, int jobs, const char *key, bool may_again)
{
    PGconn *conn = tgt_conn(t);
    char *begun = lm_psprintf("%s_begun", key);
    bool again = lm_meta_has(conn, begun);
    int rc;
    if (!again)
        lm_meta_mark_once(conn, begun);
    rc = lm_schema_restore(archive_path, tgt_conninfo(t), section, jobs, false, again && may_again);
    if (rc)
        exit(rc);
    lm_meta_mark_once(conn, key);
    free(begun);
}

void bulk_archive(apply_target *t, const lm_record *r)
{
    PGconn *conn = tgt_conn(t);

    if (!archive) {
        int fd;
        const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(archive_path, sizeof archive_path, "%s/lm-apply-schema.XXXXXX", tmp);
        fd = mkstemp(archive_path);
        if (fd < 0 || !(archive = fdopen(fd, "w")))
            lm_fatal(LM_EXIT_IO, "could not create a temporary file for the schema archive: %s",
                     strerror(errno));
    }
    if (fwrite(r->u.archive.data, 1, r->u.archive.len, archive) != r->u.archive.len)
        lm_fatal(LM_EXIT_IO, "could not write \"%s\": %s", archive_path, strerror(errno));
    if (!r->u.archive.last)
        return;
    if (fclose(archive) != 0)
        lm_fatal(LM_EXIT_IO, "could not write \"%s\": %s", archive_path, strerror(errno));
    archive = NULL;
    have_archive = true;
    tgt_leave_pipeline(t);
    lm_state_ensure(conn);
    if (lm_meta_has(conn, "stream_pre_data")) {
        lm_info("schema from the stream was restored before; not again");
        return;
    }
    lm_info("restoring the schema (pre-data) from the stream");
    {
        /* made again only while no chunk was loaded into it */
        restore_section(t, "pre-data", 1, "stream_pre_data", lm_copy_count(conn) == 0);
    }
}

void bulk_finish(apply_target *t)
{
    if (!have_archive)
        return;
    have_archive = false;
    tgt_leave_pipeline(t);
    if (!lm_meta_has(tgt_conn(t), "stream_post_data")) {
        lm_info("restoring indexes and constraints (post-data) from the stream");
        restore_section(t, "post-data", 2, "stream_post_data", true);
    }
    unlink(archive_path);
}

/* A column list as lm-snapshot writes it (quote_ident names joined by
 * ", "): anything else in a stream is refused rather than put into SQL. */
static bool column_list_ok(const char *s)
{
    while (*s) {
        if (*s == '"') {
            for (s++;; s++) {
                if (!*s)
                    return false;
                if (*s == '"') {
                    if (s[1] != '"')
                        break;
                    s++;
                }
            }
            s++;
        } else {
            /* quote_ident leaves non-ASCII letters unquoted */
            if (!((*s >= 'a' && *s <= 'z') || *s == '_' || (unsigned char)*s >= 0x80))
                return false;
            while ((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '$' ||
                   (unsigned char)*s >= 0x80)
                s++;
        }
        if (!*s)
            return true;
        if (s[0] != ',' || s[1] != ' ')
            return false;
        s += 2;
    }
    return true;
}

void bulk_begin(apply_target *t, const lm_record *r)
{
    PGconn *conn = tgt_conn(t);
    PGresult *res;
    char *qual, *sql;
    const char *cols = r->u.copy_begin.columns;

    if (!column_list_ok(cols))
        lm_fatal(LM_EXIT_CORRUPT, "%s.%s: the column list of a table's data is not a list of names: %.80s",
                 r->u.copy_begin.nspname, r->u.copy_begin.relname, cols);
    tgt_leave_pipeline(t);
    lm_state_ensure(conn);
    free(nsp);
    free(rel);
    nsp = lm_strdup(r->u.copy_begin.nspname);
    rel = lm_strdup(r->u.copy_begin.relname);
    chunk = r->u.copy_begin.chunk;
    nchunks = r->u.copy_begin.nchunks;
    sync_lsn = r->u.copy_begin.sync_lsn;
    rows_loaded = 0;
    active = true;
    skipping = lm_copy_has(conn, nsp, rel, chunk);
    if (skipping) {
        lm_info("%s.%s chunk %u/%u was loaded before; skipping it", nsp, rel, chunk + 1, nchunks);
        return;
    }
    qual = lm_qualified(nsp, rel);
    lm_exec_cmd(conn, LM_EXIT_SERVER, "BEGIN");
    if (nchunks == 1) {
        /* a whole table: start it empty, and let COPY freeze its rows */
        sql = lm_psprintf("TRUNCATE ONLY %s", qual);
        lm_exec_cmd(conn, LM_EXIT_SERVER, sql);
        free(sql);
    }
    sql = lm_psprintf("COPY %s %s%s%s FROM STDIN WITH (FORMAT %s%s)", qual, *cols ? "(" : "", cols,
                      *cols ? ")" : "", r->u.copy_begin.format == 'b' ? "binary" : "text",
                      nchunks == 1 ? ", FREEZE" : "");
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        lm_log_result_error(res, conn, sql);
        exit(LM_EXIT_SERVER);
    }
    PQclear(res);
    free(sql);
    free(qual);
}

void bulk_data(apply_target *t, const lm_record *r)
{
    PGconn *conn = tgt_conn(t);

    if (!active)
        lm_fatal(LM_EXIT_CORRUPT, "bulk data outside a table chunk in the stream");
    if (skipping)
        return;
    if (PQputCopyData(conn, (const char *)r->u.copy_data.data, (int)r->u.copy_data.len) != 1)
        lm_fatal(LM_EXIT_SERVER, "could not send COPY data: %s", PQerrorMessage(conn));
}

void bulk_end(apply_target *t, const lm_record *r)
{
    PGconn *conn = tgt_conn(t);
    PGresult *res;
    char lsn[LM_LSN_BUFSZ];

    if (!active)
        lm_fatal(LM_EXIT_CORRUPT, "end of a table chunk that did not begin");
    active = false;
    if (skipping)
        return;
    if (PQputCopyEnd(conn, NULL) != 1)
        lm_fatal(LM_EXIT_SERVER, "could not end COPY: %s", PQerrorMessage(conn));
    res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        lm_error("could not load %s.%s chunk %u: %s", nsp, rel, chunk + 1, PQresultErrorMessage(res));
        exit(LM_EXIT_SERVER);
    }
    PQclear(res);
    while ((res = PQgetResult(conn)) != NULL)
        PQclear(res);
    lm_copy_done(conn, &(lm_copy_chunk){.nspname = nsp, .relname = rel, .chunk = chunk,
                                        .nchunks = nchunks, .first_page = -1, .last_page = -1,
                                        .rows = r->u.copy_end.rows, .bytes = r->u.copy_end.bytes,
                                        .have_sync_lsn = sync_lsn != 0, .sync_lsn = sync_lsn});
    if (sync_lsn)
        PQclear(lm_execp(conn, LM_EXIT_SERVER,
                         "INSERT INTO lm.sync (nspname, relname, sync_lsn) VALUES ($1, $2, $3::pg_lsn) "
                         "ON CONFLICT (nspname, relname) DO UPDATE SET sync_lsn = excluded.sync_lsn, "
                         "updated_at = clock_timestamp()",
                         3, (const char *const[]){nsp, rel, lm_lsn_format(sync_lsn, lsn)}));
    lm_exec_cmd(conn, LM_EXIT_SERVER, "COMMIT");
    tgt_stats(t)->rows_copy += r->u.copy_end.rows;
}
