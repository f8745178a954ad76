/* lm-slot create on a TimescaleDB source.
 *
 * A hypertable's rows live in its chunks, tables that TimescaleDB makes
 * as the data needs them (in the hypertable's associated schema,
 * _timescaledb_internal by default). A list of tables fixed at the slot's
 * creation would miss every chunk made later, so the publication covers
 * the chunk schemas whole (TABLES IN SCHEMA, which needs superuser) and
 * names the hypertables themselves (a TRUNCATE of one arrives on it);
 * the chunks are never listed one by one. lm-decode writes a chunk's
 * changes under its hypertable's name (bin/lm-decode/chunkmap.c).
 *
 * What cannot be followed live is refused before anything is created:
 * compressed chunks (their rows are in TimescaleDB's internal compressed
 * chunks), continuous aggregates (materialized by TimescaleDB itself), and
 * background jobs that drop, compress or rewrite chunks (dropping a chunk
 * writes no row changes: its rows would stay on the target). */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "exitcodes.h"
#include "log.h"
#include "pgconn.h"
#include "slot.h"

/* The most items of one kind named; the rest are counted. */
#define TSDB_MAX_LISTED 20

/* Whether relation C has a replica identity the server takes (as
 * create.c's has_replica_identity). */
#define HAS_IDENTITY(c) \
    "(" c ".relreplident = 'f'" \
    " OR (" c ".relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = " c ".oid" \
    "  AND i.indisprimary AND i.indimmediate AND i.indisvalid))" \
    " OR (" c ".relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = " c ".oid" \
    "  AND i.indisreplident AND i.indimmediate AND i.indisvalid)))"

char *tsdb_version(PGconn *conn)
{
    return lm_query_value(conn, LM_EXIT_SERVER,
                          "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'");
}

char *tsdb_not_user_table(const char *n, const char *c)
{
    return lm_psprintf("(%s.nspname LIKE '\\_timescaledb\\_%%'"
                       " OR EXISTS (SELECT 1 FROM _timescaledb_catalog.chunk ch"
                       "  WHERE ch.schema_name = %s.nspname AND ch.table_name = %s.relname))",
                       n, n, c);
}

/* Hypertable h's name quoted as lm_qualified quotes it: no regclass
 * casts, which fail on a schema the role may not use. */
#define HT_QUAL "('\"' || replace(h.schema_name, '\"', '\"\"') || '\".\"' || replace(h.table_name, '\"', '\"\"') || '\"')"

/* The pg_class rows of chunk ch (c) and of its hypertable h (hc), joined by
 * name. */
#define CHUNK_CLASSES \
    " JOIN pg_namespace cn ON cn.nspname = ch.schema_name" \
    " JOIN pg_class c ON c.relnamespace = cn.oid AND c.relname = ch.table_name" \
    " JOIN pg_namespace hn ON hn.nspname = h.schema_name" \
    " JOIN pg_class hc ON hc.relnamespace = hn.oid AND hc.relname = h.table_name"

/* ARRAY['"a"."b"', ...]::text[] of the hypertables in scope. */
static char *hypertables_array(const scope *sc)
{
    lm_buf b = {0};
    int n = 0;

    lm_buf_puts(&b, "ARRAY[");
    for (int i = 0; i < sc->n; i++) {
        if (!sc->t[i].chunk_schema)
            continue;
        if (n++)
            lm_buf_u8(&b, ',');
        lm_quote_literal(&b, sc->t[i].qual);
    }
    lm_buf_puts(&b, "]::text[]");
    lm_buf_u8(&b, '\0');
    if (n == 0) {
        lm_buf_free(&b);
        return lm_strdup("'{}'::text[]");
    }
    return (char *)b.data;
}

/* Run sql (first column: the item's description) and report each row as
 * a problem: "<what> <row>: <why>", at most TSDB_MAX_LISTED. Returns the
 * number of rows. */
static int list_problems(PGconn *conn, const char *sql, const char *what, const char *why)
{
    PGresult *res = lm_exec(conn, LM_EXIT_SERVER, sql);
    int n = PQntuples(res);

    for (int i = 0; i < n && i < TSDB_MAX_LISTED; i++)
        slot_problem("%s %s: %s", what, PQgetvalue(res, i, 0), why);
    if (n > TSDB_MAX_LISTED)
        slot_problem("and %d more %s", n - TSDB_MAX_LISTED, what);
    PQclear(res);
    return n;
}

/* The chunk schemas of the hypertables in scope, _timescaledb_internal
 * always among them; each once. */
static void chunk_schemas(scope *sc)
{
    sc->schemas = lm_malloc(sizeof *sc->schemas * (size_t)(sc->n + 1));
    sc->nschemas = 0;
    sc->schemas[sc->nschemas++] = lm_strdup("_timescaledb_internal");
    for (int i = 0; i < sc->n; i++) {
        bool seen = false;
        if (!sc->t[i].chunk_schema)
            continue;
        for (int j = 0; j < sc->nschemas && !seen; j++)
            seen = strcmp(sc->schemas[j], sc->t[i].chunk_schema) == 0;
        if (!seen)
            sc->schemas[sc->nschemas++] = lm_strdup(sc->t[i].chunk_schema);
    }
}

/* A chunk schema of the user's own (associated_schema_name => 'x') is
 * published whole: a table there that is outside the selection would be
 * published too. */
static void check_shared_schemas(PGconn *conn, const scope *sc)
{
    char *arr = slot_text_array((const char *const *)sc->schemas, sc->nschemas);
    PGresult *res;
    char *sql, *not_user;

    not_user = tsdb_not_user_table("n", "c");
    sql = lm_psprintf("SELECT n.nspname, c.relname FROM pg_class c"
                      " JOIN pg_namespace n ON n.oid = c.relnamespace"
                      " WHERE n.nspname = ANY(%s) AND c.relkind = 'r' AND c.relpersistence = 'p'"
                      " AND NOT " LM_EXT_MEMBER("c") " AND NOT %s ORDER BY 1, 2",
                      arr, not_user);
    res = lm_exec(conn, LM_EXIT_SERVER, sql);
    for (int i = 0; i < PQntuples(res); i++) {
        char *qual = lm_qualified(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
        bool in = false;
        for (int j = 0; j < sc->n && !in; j++)
            in = strcmp(sc->t[j].qual, qual) == 0;
        if (!in) {
            slot_problem("table %s.%s is outside the tables to publish, but its schema holds "
                         "hypertable chunks and is published whole (TABLES IN SCHEMA), so its "
                         "changes would be published too", PQgetvalue(res, i, 0),
                         PQgetvalue(res, i, 1));
            lm_hint("Publish it as well (leave out the --exclude-table or add a --table for "
                    "it), or move it to another schema.");
        }
        free(qual);
    }
    PQclear(res);
    free(sql);
    free(not_user);
    free(arr);
}

void tsdb_preflight(PGconn *conn, const slot_opts *o, scope *sc, bool superuser,
                    const char *user)
{
    char *hts = hypertables_array(sc);
    int nhyper = 0;
    char *sql;
    PGresult *res;

    for (int i = 0; i < sc->n; i++)
        nhyper += sc->t[i].chunk_schema != NULL;

    if (nhyper && !o->all_tables) {
        chunk_schemas(sc);
        if (!superuser) {
            slot_problem("role \"%s\" is not a superuser: with TimescaleDB hypertables to publish "
                         "(%d), the publication must cover their chunk schemas whole (CREATE "
                         "PUBLICATION ... TABLES IN SCHEMA, which needs superuser), so that a "
                         "chunk made after the slot is published from its first row", user,
                         nhyper);
            lm_hint("Run lm-slot create as a superuser on a TimescaleDB source.");
        }
        check_shared_schemas(conn, sc);
    }

    /* a chunk's UPDATE and DELETE need a replica identity as much as any
     * published table's: the hypertable's is checked with the tables in
     * scope; a chunk that lacks the one its hypertable has is named */
    sql = lm_psprintf("SELECT format('%%I.%%I of hypertable %%I.%%I', ch.schema_name, ch.table_name,"
                      " h.schema_name, h.table_name)"
                      " FROM _timescaledb_catalog.chunk ch"
                      " JOIN _timescaledb_catalog.hypertable h ON h.id = ch.hypertable_id"
                      CHUNK_CLASSES
                      " WHERE " HT_QUAL " = ANY(%s) AND " HAS_IDENTITY("hc") " AND NOT " HAS_IDENTITY("c")
                      " ORDER BY ch.id", hts);
    if (list_problems(conn, sql, "chunk",
                      "it lacks the replica identity its hypertable has, so its UPDATE and DELETE "
                      "would fail on the source once published"))
        lm_hint("Set the replica identity again through the hypertable (ALTER TABLE hypertable "
                "REPLICA IDENTITY ...), which TimescaleDB passes on to every chunk.");
    free(sql);

    sql = lm_psprintf("SELECT format('%%I.%%I of hypertable %%I.%%I', ch.schema_name, ch.table_name,"
                      " h.schema_name, h.table_name)"
                      " FROM _timescaledb_catalog.chunk ch"
                      " JOIN _timescaledb_catalog.hypertable h ON h.id = ch.hypertable_id"
                      " WHERE (ch.compressed_chunk_id IS NOT NULL OR ch.status & 1 <> 0)"
                      " AND " HT_QUAL " = ANY(%s)"
                      " ORDER BY ch.id", hts);
    if (list_problems(conn, sql, "compressed chunk",
                      "its rows are in TimescaleDB's internal compressed form, whose changes "
                      "cannot be followed as row changes"))
        lm_hint("Decompress it for the migration (SELECT decompress_chunk('chunk');) and pause "
                "the compression policy (see the jobs, if any); compress again on the target "
                "afterwards.");
    free(sql);

    if (list_problems(conn,
                      "SELECT format('%I.%I', user_view_schema, user_view_name)"
                      " FROM _timescaledb_catalog.continuous_agg ORDER BY 1",
                      "continuous aggregate",
                      "it cannot be migrated live (TimescaleDB materializes it on each side "
                      "from the hypertable)"))
        lm_hint("Drop it on the source for the migration (DROP MATERIALIZED VIEW name;) and "
                "create it again on the target once the migration is done.");

    /* TimescaleDB's own housekeeping jobs (telemetry, the job history's
     * retention) have ids below 1000 and touch no hypertable */
    res = lm_exec(conn, LM_EXIT_SERVER,
                  "SELECT j.id, j.application_name, j.proc_schema, j.proc_name,"
                  " CASE WHEN h.id IS NOT NULL THEN format(' on hypertable %I.%I', h.schema_name,"
                  "  h.table_name) ELSE '' END"
                  " FROM _timescaledb_config.bgw_job j"
                  " LEFT JOIN _timescaledb_catalog.hypertable h ON h.id = j.hypertable_id"
                  " WHERE j.id >= 1000 AND j.scheduled ORDER BY j.id");
    for (int i = 0; i < PQntuples(res) && i < TSDB_MAX_LISTED; i++) {
        const char *proc = PQgetvalue(res, i, 3);
        bool own = strcmp(PQgetvalue(res, i, 2), "_timescaledb_functions") == 0 ||
                   strcmp(PQgetvalue(res, i, 2), "_timescaledb_internal") == 0;
        const char *does =
            !own ? "is a user-defined job, which may change, drop or rewrite chunks"
            : strcmp(proc, "policy_retention") == 0 ? "is a retention policy: it drops chunks, "
                                                      "which writes no row changes, so their rows "
                                                      "would stay on the target"
            : strcmp(proc, "policy_compression") == 0 ? "is a compression policy: it compresses "
                                                        "chunks, whose changes cannot be followed"
            : strcmp(proc, "policy_reorder") == 0 ? "is a reorder policy: it rewrites chunks"
            : strcmp(proc, "policy_refresh_continuous_aggregate") == 0
                ? "refreshes a continuous aggregate"
                : "is a TimescaleDB job that may drop or rewrite chunks";
        slot_problem("background job %s (\"%s\", %s.%s%s) %s", PQgetvalue(res, i, 0),
                     PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), proc, PQgetvalue(res, i, 4),
                     does);
        lm_hint("Pause it for the migration: SELECT alter_job(%s, scheduled => false); and "
                "schedule it (or the policy) on the target once the migration is done.",
                PQgetvalue(res, i, 0));
    }
    if (PQntuples(res) > TSDB_MAX_LISTED)
        slot_problem("and %d more background jobs", PQntuples(res) - TSDB_MAX_LISTED);
    PQclear(res);
    free(hts);
}

bool tsdb_check_chunks_full(PGconn *conn, const char *qual)
{
    char *lit = lm_literal(qual);
    char *sql = lm_psprintf("SELECT string_agg(format('%%I.%%I', ch.schema_name, ch.table_name), ', ')"
                            " FROM _timescaledb_catalog.chunk ch"
                            " JOIN _timescaledb_catalog.hypertable h ON h.id = ch.hypertable_id"
                            CHUNK_CLASSES
                            " WHERE " HT_QUAL " = %s"
                            " AND c.relreplident <> 'f'", lit);
    char *bad = lm_query_value(conn, LM_EXIT_SERVER, sql);

    free(sql);
    free(lit);
    if (!bad)
        return true;
    lm_error("REPLICA IDENTITY FULL set on hypertable %s did not reach its chunks %s", qual, bad);
    lm_hint("This TimescaleDB does not pass the replica identity on to chunks: set it on each "
            "chunk by hand, and on every chunk it makes later, or add a primary key.");
    free(bad);
    return false;
}
