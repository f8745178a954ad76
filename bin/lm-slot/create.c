/* lm-slot create: preflight, publication, slot with an exported snapshot,
 * and --hold. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "lsn.h"
#include "pgconn.h"
#include "sig.h"
#include "slot.h"

static int nproblems;

#define PROBLEM(...) do { lm_error(__VA_ARGS__); nproblems++; } while (0)

void slot_problem(const char *fmt, ...)
{
    va_list ap;
    char m[2048];

    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    PROBLEM("%s", m);
}

/* Schemas whose tables are never published: the system's and the tool's. */
#define USER_SCHEMA(n) \
    "(" n ".nspname NOT IN ('pg_catalog', 'information_schema', 'lm')" \
    " AND " n ".nspname !~ '^pg_(toast|temp_)')"

/* slot.h */
char *slot_text_array(const char *const *v, int n)
{
    lm_buf b = {0};
    if (n == 0) {
        lm_buf_puts(&b, "'{}'::text[]");
    } else {
        lm_buf_puts(&b, "ARRAY[");
        for (int i = 0; i < n; i++) {
            if (i)
                lm_buf_u8(&b, ',');
            lm_quote_literal(&b, v[i]);
        }
        lm_buf_puts(&b, "]::text[]");
    }
    lm_buf_u8(&b, '\0');
    return (char *)b.data;
}

/* Whether relation c in namespace n matches one of the names in arr: as
 * schema.table, as a bare table name, or quoted as "schema"."table". Exact
 * string comparison, so names holding dots, quotes or spaces match too. */
static char *match_expr(const char *n, const char *c, const char *arr)
{
    return lm_psprintf("(%s.nspname::text || '.' || %s.relname::text = ANY(%s)"
                       " OR %s.relname::text = ANY(%s)"
                       " OR quote_ident(%s.nspname) || '.' || quote_ident(%s.relname) = ANY(%s))",
                       n, c, arr, c, arr, n, c, arr);
}

/* The source's TimescaleDB version; NULL when it has none. */
static char *tsdb_ver;

static bool is_t(PGresult *res, int row, int col)
{
    return strcmp(PQgetvalue(res, row, col), "t") == 0;
}

/* The leaf tables in scope: ordinary, permanent tables and the leaf
 * partitions of partitioned ones, in user schemas, filtered by the options. */
static void load_scope(PGconn *conn, const slot_opts *o, scope *sc)
{
    char *tarr = slot_text_array(o->tables, o->ntables);
    char *sarr = slot_text_array(o->schemas, o->nschemas);
    char *xarr = slot_text_array(o->excludes, o->nexcludes);
    char *inc_match = match_expr("n", "c", tarr);
    char *exc_match = match_expr("n", "c", xarr);
    char *anc_match = match_expr("an", "ac", xarr);
    char *include;
    char *sql;
    char *not_tsdb = tsdb_ver ? tsdb_not_user_table("n", "c") : lm_strdup("false");
    char *chunk_schema = lm_strdup(tsdb_ver ?
        "(SELECT h.associated_schema_name::text FROM _timescaledb_catalog.hypertable h"
        " WHERE h.schema_name = n.nspname AND h.table_name = c.relname)" : "NULL::text");
    PGresult *res;

    if (o->ntables == 0 && o->nschemas == 0)
        include = lm_strdup("true");
    else
        include = lm_psprintf("(n.nspname::text = ANY(%s) OR %s)", sarr, inc_match);
    sql = lm_psprintf(
        "WITH inc AS ("
        " SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND " USER_SCHEMA("n")
        " AND %s),"
        " leaf AS ("
        " SELECT oid FROM inc WHERE relkind = 'r'"
        " UNION SELECT t.relid FROM inc CROSS JOIN LATERAL pg_partition_tree(inc.oid) t"
        " WHERE inc.relkind = 'p' AND t.isleaf)"
        " SELECT n.nspname, c.relname, c.relreplident,"
        /* the server takes neither a deferrable nor an invalid index as
         * the replica identity */
        " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary"
        "  AND i.indimmediate AND i.indisvalid),"
        " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident"
        "  AND i.indimmediate AND i.indisvalid),"
        " pg_has_role(c.relowner, 'USAGE'), pg_get_userbyid(c.relowner), %s"
        " FROM leaf JOIN pg_class c ON c.oid = leaf.oid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND " USER_SCHEMA("n")
        /* an extension's own tables are not user data (the extension
         * makes them on the target); TimescaleDB's chunks are published
         * through their schemas (tsdb.c) */
        " AND NOT " LM_EXT_MEMBER("c") " AND NOT %s"
        " AND NOT %s"
        " AND NOT EXISTS (SELECT 1 FROM pg_partition_ancestors(c.oid) a"
        "  JOIN pg_class ac ON ac.oid = a.relid JOIN pg_namespace an ON an.oid = ac.relnamespace"
        "  WHERE %s)"
        " ORDER BY 1, 2",
        include, chunk_schema, not_tsdb, exc_match, anc_match);
    res = lm_exec(conn, LM_EXIT_SERVER, sql);
    sc->n = PQntuples(res);
    sc->t = lm_malloc(sizeof *sc->t * (size_t)(sc->n ? sc->n : 1));
    for (int i = 0; i < sc->n; i++) {
        pubtable *t = &sc->t[i];
        t->display = lm_psprintf("%s.%s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
        t->qual = lm_qualified(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
        t->replident = PQgetvalue(res, i, 2)[0];
        t->has_pk = is_t(res, i, 3);
        t->has_ri_index = is_t(res, i, 4);
        t->owned = is_t(res, i, 5);
        t->owner = lm_strdup(PQgetvalue(res, i, 6));
        t->chunk_schema = PQgetisnull(res, i, 7) ? NULL : lm_strdup(PQgetvalue(res, i, 7));
    }
    PQclear(res);
    free(sql);

    /* unlogged tables write no WAL, so no change to them can be captured:
     * they are left out of the publication, and said so (a copy made as
     * of the snapshot would not follow them) */
    sql = lm_psprintf("SELECT string_agg(format('%%I.%%I', n.nspname, c.relname), ', ' ORDER BY 1, 2)"
                      " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                      " WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'u' AND " USER_SCHEMA("n")
                      " AND NOT " LM_EXT_MEMBER("c") " AND %s AND NOT %s",
                      include, exc_match);
    res = lm_exec(conn, LM_EXIT_SERVER, sql);
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        lm_warning("unlogged tables are not published (they write no WAL, so their changes cannot be "
                   "captured): %s", PQgetvalue(res, 0, 0));
    PQclear(res);
    free(sql);

    /* names given that match nothing are mistakes, not empty sets */
    if (o->ntables) {
        char *m = match_expr("n", "c", "ARRAY[p]");
        /* with the extension that owns it, when one does */
        sql = lm_psprintf("SELECT p, (SELECT e.extname FROM pg_class c"
                          "  JOIN pg_namespace n ON n.oid = c.relnamespace"
                          "  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid"
                          "   AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'"
                          "  JOIN pg_extension e ON e.oid = d.refobjid WHERE %s LIMIT 1)"
                          " FROM unnest(%s) p WHERE NOT EXISTS ("
                          " SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                          " WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p'"
                          " AND " USER_SCHEMA("n") " AND NOT " LM_EXT_MEMBER("c")
                          " AND NOT %s AND %s)", m, tarr, not_tsdb, m);
        res = lm_exec(conn, LM_EXIT_SERVER, sql);
        for (int i = 0; i < PQntuples(res); i++)
            if (!PQgetisnull(res, i, 1))
                PROBLEM("table \"%s\" belongs to extension \"%s\": an extension's own tables are "
                        "not user data and are never published (the extension makes them on "
                        "the target)", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
            else if (tsdb_ver)
                PROBLEM("table \"%s\" not found: --table names an ordinary or partitioned, "
                        "permanent table in a user schema, or a TimescaleDB hypertable (its "
                        "chunks are published through the hypertable, never one by one)",
                        PQgetvalue(res, i, 0));
            else
                PROBLEM("table \"%s\" not found: --table names an ordinary or partitioned, permanent "
                        "table in a user schema (views, materialized views, foreign, unlogged and "
                        "temporary tables cannot be published)", PQgetvalue(res, i, 0));
        PQclear(res);
        free(sql);
        free(m);
    }
    if (o->nschemas) {
        sql = lm_psprintf("SELECT s FROM unnest(%s) s WHERE NOT EXISTS ("
                          " SELECT 1 FROM pg_namespace n WHERE n.nspname = s AND " USER_SCHEMA("n")
                          ")", sarr);
        res = lm_exec(conn, LM_EXIT_SERVER, sql);
        for (int i = 0; i < PQntuples(res); i++)
            PROBLEM("schema \"%s\" not found among the user schemas", PQgetvalue(res, i, 0));
        PQclear(res);
        free(sql);
    }
    if (o->nexcludes) {
        char *m = match_expr("n", "c", "ARRAY[p]");
        sql = lm_psprintf("SELECT p FROM unnest(%s) p WHERE NOT EXISTS ("
                          " SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                          " WHERE %s)", xarr, m);
        res = lm_exec(conn, LM_EXIT_SERVER, sql);
        for (int i = 0; i < PQntuples(res); i++)
            lm_warning("--exclude-table \"%s\" matches no table", PQgetvalue(res, i, 0));
        PQclear(res);
        free(sql);
        free(m);
    }
    free(include);
    free(not_tsdb);
    free(chunk_schema);
    free(inc_match);
    free(exc_match);
    free(anc_match);
    free(tarr);
    free(sarr);
    free(xarr);
}

/* Whether UPDATE and DELETE of a published table would work. */
static bool has_replica_identity(const pubtable *t)
{
    switch (t->replident) {
    case 'f': return true;
    case 'd': return t->has_pk;
    case 'i': return t->has_ri_index;
    default: return false;
    }
}

static const char *why_no_identity(const pubtable *t)
{
    switch (t->replident) {
    case 'n': return "REPLICA IDENTITY NOTHING";
    case 'i': return "REPLICA IDENTITY USING INDEX names an index that no longer exists, is deferrable or is invalid";
    default: return "no primary key (a deferrable or invalid one does not count) and REPLICA IDENTITY DEFAULT";
    }
}

/* Check everything before changing anything; every problem is logged and
 * counted. Returns the tables whose replica identity needs fixing (or is
 * fixed with --replica-identity-full) through fix/nfix. */
static void preflight(PGconn *conn, const slot_opts *o, scope *sc, int **fix, int *nfix)
{
    static const char facts_sql[] =
        "SELECT current_setting('wal_level'),"
        " current_setting('max_replication_slots')::int,"
        " (SELECT count(*) FROM pg_replication_slots),"
        " current_setting('max_wal_senders')::int,"
        " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'),"
        " r.rolreplication, r.rolsuper, current_user,"
        " has_database_privilege(current_database(), 'CREATE'), current_database(),"
        " (SELECT count(*) FROM pg_prepared_xacts),"
        " (SELECT string_agg(format('%L (database %s, owner %s, since %s)', gid, database,"
        "   owner, prepared), ', ' ORDER BY prepared) FROM pg_prepared_xacts),"
        " (SELECT database FROM pg_replication_slots WHERE slot_name = $1),"
        " (SELECT slot_type FROM pg_replication_slots WHERE slot_name = $1),"
        " EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1),"
        " EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $2)"
        " FROM pg_roles r WHERE r.rolname = current_user";
    const char *params[] = {o->slot, o->publication};
    int version = lm_server_version(conn);
    PGresult *res;
    int max_slots, used_slots, max_senders, used_senders, nprepared;
    bool superuser;
    const char *user, *db;
    int nbad_owner = 0;

    if (version < 140000) {
        PROBLEM("the source runs PostgreSQL %d.%d; lm needs 14 or later (logical decoding "
                "messages for the cutover marker, TID range scans for split table copies)",
                version / 10000, version % 10000 / 100);
        if (version < 100000)
            return;
    }
    res = lm_execp(conn, LM_EXIT_SERVER, facts_sql, 2, params);
    if (PQntuples(res) != 1)
        lm_fatal(LM_EXIT_SERVER, "could not read the current role from pg_roles");
    max_slots = atoi(PQgetvalue(res, 0, 1));
    used_slots = atoi(PQgetvalue(res, 0, 2));
    max_senders = atoi(PQgetvalue(res, 0, 3));
    used_senders = atoi(PQgetvalue(res, 0, 4));
    superuser = is_t(res, 0, 6);
    user = PQgetvalue(res, 0, 7);
    db = PQgetvalue(res, 0, 9);
    nprepared = atoi(PQgetvalue(res, 0, 10));

    if (strcmp(PQgetvalue(res, 0, 0), "logical") != 0) {
        PROBLEM("wal_level is \"%s\" on the source: logical decoding needs \"logical\"",
                PQgetvalue(res, 0, 0));
        lm_hint("Run ALTER SYSTEM SET wal_level = logical; and restart the server.");
    }
    if (max_slots - used_slots < 1) {
        PROBLEM("no free replication slot: max_replication_slots is %d and %d %s in use",
                max_slots, used_slots, used_slots == 1 ? "is" : "are");
        lm_hint("Drop an unused slot (see SELECT slot_name, active FROM pg_replication_slots) "
                "or raise max_replication_slots and restart the server.");
    }
    if (max_senders - used_senders < 1) {
        PROBLEM("no free WAL sender: max_wal_senders is %d and %d %s in use", max_senders,
                used_senders, used_senders == 1 ? "is" : "are");
        lm_hint("Raise max_wal_senders (at least 2 more than in use: one holds the snapshot, "
                "one streams the changes) and restart the server.");
    } else if (max_senders - used_senders < 2)
        lm_warning("only one WAL sender is free (max_wal_senders is %d, %d in use): the "
                   "snapshot holder takes it and streaming the changes needs another",
                   max_senders, used_senders);
    if (!is_t(res, 0, 5) && !superuser) {
        PROBLEM("role \"%s\" has neither the REPLICATION attribute nor superuser: it cannot "
                "create a replication slot", user);
        lm_hint("Run ALTER ROLE %s REPLICATION; as a superuser.", lm_ident(user));
    }
    if (!o->all_tables && !is_t(res, 0, 8)) {
        PROBLEM("role \"%s\" lacks the CREATE privilege on database \"%s\", which CREATE "
                "PUBLICATION needs", user, db);
        lm_hint("Run GRANT CREATE ON DATABASE %s TO %s;", lm_ident(db), lm_ident(user));
    }
    if (o->all_tables && !superuser) {
        PROBLEM("--all-tables needs superuser (CREATE PUBLICATION ... FOR ALL TABLES) and role "
                "\"%s\" is not one", user);
        lm_hint("Leave out --all-tables: by default the publication lists the tables.");
    }
    if (nprepared > 0) {
        PROBLEM("%d prepared transaction%s on the source: creating the slot would wait until "
                "%s committed or rolled back", nprepared, nprepared == 1 ? "" : "s",
                nprepared == 1 ? "it is" : "they are");
        lm_detail("Prepared: %s.", PQgetvalue(res, 0, 11));
        lm_hint("Finish them with COMMIT PREPARED 'gid' or ROLLBACK PREPARED 'gid'.");
    }
    if (is_t(res, 0, 14)) {
        if (!PQgetisnull(res, 0, 12))
            PROBLEM("replication slot \"%s\" already exists (%s, database \"%s\")", o->slot,
                    PQgetvalue(res, 0, 13), PQgetvalue(res, 0, 12));
        else
            PROBLEM("replication slot \"%s\" already exists (%s)", o->slot,
                    PQgetvalue(res, 0, 13));
        lm_hint("Choose another --slot, or if it is left from an earlier attempt, drop it with "
                "\"%s drop --slot=%s\".", lm_progname(), o->slot);
    }
    if (is_t(res, 0, 15)) {
        PROBLEM("publication \"%s\" already exists in database \"%s\"", o->publication, db);
        lm_hint("Choose another --publication, or drop it with DROP PUBLICATION %s; if it is "
                "left from an earlier attempt.", lm_ident(o->publication));
    }

    tsdb_ver = tsdb_version(conn);
    if (tsdb_ver)
        lm_info("the source has TimescaleDB %s: hypertables are published with their chunks",
                tsdb_ver);
    load_scope(conn, o, sc);
    /* a database of functions, views and extensions only has nothing to
     * stream, but its schema migrates: an empty publication and the slot
     * (for the cutover marker). Filters that leave nothing are a mistake. */
    if (sc->n == 0 && !o->all_tables && (o->ntables || o->nschemas || o->nexcludes))
        PROBLEM("no tables to publish in database \"%s\" with the given --table, --schema and "
                "--exclude-table", db);
    else if (sc->n == 0 && !o->all_tables)
        lm_info("database \"%s\" has no tables to publish: the publication is created empty "
                "(nothing to stream but the cutover's marker)", db);
    /* FOR TABLE needs ownership; the replica identity change needs it too */
    for (int i = 0; i < sc->n && !o->all_tables; i++)
        if (!sc->t[i].owned) {
            PROBLEM("role \"%s\" does not own table %s (owner: %s): publishing it needs "
                    "ownership", user, sc->t[i].display, sc->t[i].owner);
            nbad_owner++;
        }
    if (nbad_owner)
        lm_hint("Run lm-slot as the tables' owner (or a member of the owning role) or a "
                "superuser, or leave those tables out with --exclude-table.");
    if (tsdb_ver)
        tsdb_preflight(conn, o, sc, superuser, user);

    *fix = lm_malloc(sizeof **fix * (size_t)(sc->n ? sc->n : 1));
    *nfix = 0;
    for (int i = 0; i < sc->n; i++) {
        pubtable *t = &sc->t[i];
        if (has_replica_identity(t))
            continue;
        (*fix)[(*nfix)++] = i;
        if (o->ri_full)
            continue;
        PROBLEM("%s %s has no replica identity (%s): once published, its UPDATE and DELETE "
                "would fail on the source%s", t->chunk_schema ? "hypertable" : "table",
                t->display, why_no_identity(t),
                t->chunk_schema ? " (its chunks take the replica identity set on it)" : "");
        if (t->replident == 'i' && t->has_pk)
            lm_hint("ALTER TABLE %s REPLICA IDENTITY DEFAULT;", t->qual);
        else
            lm_hint("ALTER TABLE %s REPLICA IDENTITY FULL;  (or add a primary key)", t->qual);
    }
    if (*nfix && !o->ri_full)
        lm_hint("Or run again with --replica-identity-full to have lm-slot set REPLICA "
                "IDENTITY FULL on %s.", *nfix == 1 ? "it" : "them");
    PQclear(res);
}

/* Replica identity changes and the publication, in one transaction: all or
 * nothing, and no lock waited on for long. */
static void create_publication(PGconn *conn, const slot_opts *o, const scope *sc,
                               const int *fix, int nfix)
{
    lm_buf b = {0};
    char *err = NULL;
    PGresult *res;

    lm_exec_cmd(conn, LM_EXIT_SERVER, "BEGIN");
    lm_exec_cmd(conn, LM_EXIT_SERVER, "SET LOCAL lock_timeout = '" LM_SLOT_LOCK_TIMEOUT "'");
    for (int i = 0; i < nfix; i++) {
        char *sql = lm_psprintf("ALTER TABLE %s REPLICA IDENTITY FULL", sc->t[fix[i]].qual);
        if (!(res = lm_exec_try(conn, sql, &err)))
            goto fail_sql;
        PQclear(res);
        free(sql);
        /* TimescaleDB passes it on to the hypertable's chunks (and gives
         * it to each chunk it makes later): make sure */
        if (sc->t[fix[i]].chunk_schema && !tsdb_check_chunks_full(conn, sc->t[fix[i]].qual)) {
            lm_detail("Nothing was created on the source.");
            exit(LM_EXIT_SERVER);
        }
        continue;
fail_sql:
        lm_error("%s", err);
        lm_detail("statement: %s", sql);
        if (strstr(err, "lock timeout"))
            lm_hint("The application holds a lock on that table; try again when it is quieter.");
        lm_detail("Nothing was created on the source.");
        exit(LM_EXIT_SERVER);
    }
    lm_buf_puts(&b, "CREATE PUBLICATION ");
    lm_quote_ident(&b, o->publication);
    if (o->all_tables)
        lm_buf_puts(&b, " FOR ALL TABLES");
    else if (sc->n > 0) {
        lm_buf_puts(&b, " FOR TABLE ");
        for (int i = 0; i < sc->n; i++) {
            if (i)
                lm_buf_puts(&b, ", ");
            lm_buf_put(&b, sc->t[i].qual, strlen(sc->t[i].qual));
        }
        /* TimescaleDB: its chunk catalog, whose rows tell lm-decode the
         * hypertable of a chunk gone by the time its changes are decoded
         * (lm-decode keeps them to itself), and every table in the chunk
         * schemas, those made later too, so that a new chunk is published
         * from its first row */
        if (sc->nschemas)
            lm_buf_puts(&b, ", _timescaledb_catalog.chunk");
        for (int i = 0; i < sc->nschemas; i++) {
            lm_buf_puts(&b, i ? ", " : ", TABLES IN SCHEMA ");
            lm_quote_ident(&b, sc->schemas[i]);
        }
    }
    lm_buf_u8(&b, '\0');
    if (!(res = lm_exec_try(conn, (char *)b.data, &err))) {
        lm_error("could not create publication: %s", err);
        lm_detail("statement: %.2000s", (char *)b.data);
        if (strstr(err, "lock timeout"))
            lm_hint("The application holds a lock on one of the tables; try again when it is "
                    "quieter.");
        lm_detail("Nothing was created on the source.");
        exit(LM_EXIT_SERVER);
    }
    PQclear(res);
    lm_exec_cmd(conn, LM_EXIT_SERVER, "COMMIT");
    for (int i = 0; i < nfix; i++)
        lm_info("set REPLICA IDENTITY FULL on %s %s (it has no primary key)",
                sc->t[fix[i]].chunk_schema ? "hypertable" : "table",
                sc->t[fix[i]].display);
    if (o->all_tables) {
        lm_info("created publication \"%s\" FOR ALL TABLES", o->publication);
        lm_warning("FOR ALL TABLES also covers tables created later, keyless ones included: "
                   "UPDATE and DELETE on a new table without a primary key or replica identity "
                   "will fail on the source until it gets one");
    } else if (sc->nschemas) {
        lm_buf s2 = {0};
        for (int i = 0; i < sc->nschemas; i++) {
            if (i)
                lm_buf_puts(&s2, ", ");
            lm_buf_puts(&s2, sc->schemas[i]);
        }
        lm_buf_u8(&s2, '\0');
        lm_info("created publication \"%s\" for %d table%s and every table in the chunk "
                "schema%s %s", o->publication, sc->n, sc->n == 1 ? "" : "s",
                sc->nschemas == 1 ? "" : "s", (char *)s2.data);
        lm_buf_free(&s2);
    } else
        lm_info("created publication \"%s\" for %d table%s", o->publication, sc->n,
                sc->n == 1 ? "" : "s");
    lm_buf_free(&b);
}

static void drop_publication(PGconn *conn, const slot_opts *o, int nfix)
{
    char *ident = lm_ident(o->publication);
    char *sql = lm_psprintf("DROP PUBLICATION IF EXISTS %s", ident);
    char *err = NULL;
    PGresult *res;

    PQclear(PQexec(conn, "SET lock_timeout = '" LM_SLOT_LOCK_TIMEOUT "'"));
    if ((res = lm_exec_try(conn, sql, &err))) {
        lm_info("dropped publication %s again", ident);
        PQclear(res);
    } else {
        lm_error("could not drop publication %s again: %s", ident, err);
        lm_hint("Drop it by hand: %s;", sql);
    }
    if (nfix)
        lm_info("the REPLICA IDENTITY FULL settings made stay (they are harmless)");
    free(sql);
    free(ident);
}

/* Tell the user what the slot waits for: CREATE_REPLICATION_SLOT waits
 * until every transaction running at its start has finished. */
static void report_waiting(PGconn *conn)
{
    PGresult *res = PQexec(conn,
                           "SELECT pid, coalesce(state, ''), date_trunc('second', now() - xact_start),"
                           " usename, datname FROM pg_stat_activity"
                           " WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
                           " ORDER BY xact_start LIMIT 10");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
        lm_info("creating the slot waits for %d running transaction%s on the source to finish:",
                PQntuples(res), PQntuples(res) == 1 ? "" : "s");
        for (int i = 0; i < PQntuples(res); i++)
            lm_info("  pid %s (%s, user %s, database %s, open for %s)", PQgetvalue(res, i, 0),
                    PQgetvalue(res, i, 1), PQgetvalue(res, i, 3), PQgetvalue(res, i, 4),
                    PQgetvalue(res, i, 2));
    } else
        lm_info("creating the slot waits for running transactions on the source to finish");
    PQclear(res);
}

/* Send sql on the replication connection and wait for its result, staying
 * interruptible and saying what it waits for. NULL when interrupted. */
static PGresult *repl_exec_wait(PGconn *repl, PGconn *conn, const char *sql)
{
    int64_t start = lm_monotonic_us();
    bool reported = false, cancelled = false;
    PGresult *res, *last = NULL;

    if (!PQsendQuery(repl, sql))
        lm_fatal(LM_EXIT_SERVER, "could not send %s: %s", sql, PQerrorMessage(repl));
    while (PQisBusy(repl)) {
        struct pollfd p = {PQsocket(repl), POLLIN, 0};
        int n = poll(&p, 1, 1000);
        if (n < 0 && errno != EINTR)
            lm_fatal(LM_EXIT_FAILURE, "poll failed: %s", strerror(errno));
        if (lm_interrupted && !cancelled) {
            PGcancel *c = PQgetCancel(repl);
            char errbuf[256];
            if (c) {
                PQcancel(c, errbuf, sizeof errbuf);
                PQfreeCancel(c);
            }
            cancelled = true;
        }
        if (n > 0 && !PQconsumeInput(repl))
            break;
        if (!reported && lm_monotonic_us() - start > 5000000) {
            report_waiting(conn);
            reported = true;
        }
    }
    while ((res = PQgetResult(repl))) {
        PQclear(last);
        last = res;
    }
    if (cancelled && (!last || PQresultStatus(last) != PGRES_TUPLES_OK)) {
        PQclear(last);
        return NULL;
    }
    return last;
}

/* Keep the exporting connection idle until stdin closes or a signal
 * arrives. Returns the exit code. */
static int hold(PGconn *repl, const char *snapshot)
{
    struct pollfd p[2];
    char buf[4096];
    const char *why = NULL;

    lm_info("holding snapshot %s: close standard input or send SIGTERM to release it", snapshot);
    p[0].fd = STDIN_FILENO;
    p[0].events = POLLIN;
    p[1].fd = PQsocket(repl);
    p[1].events = POLLIN;
    while (!why) {
        int n;
        if (lm_interrupted) {
            why = lm_signal_number == SIGINT ? "SIGINT" : lm_signal_number == SIGHUP ? "SIGHUP"
                                                                                      : "SIGTERM";
            break;
        }
        p[0].revents = p[1].revents = 0;
        n = poll(p, 2, 1000);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            lm_fatal(LM_EXIT_FAILURE, "poll failed: %s", strerror(errno));
        }
        if (p[0].revents) {
            ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN) ||
                (p[0].revents & POLLNVAL))
                why = "standard input closed";
        }
        if (p[1].revents) {
            if (!PQconsumeInput(repl) || PQstatus(repl) == CONNECTION_BAD) {
                char *m = lm_strdup(PQerrorMessage(repl));
                size_t len = strlen(m);
                while (len && (m[len - 1] == '\n' || m[len - 1] == ' '))
                    m[--len] = '\0';
                lm_error("lost the connection holding the snapshot: %s", m);
                lm_detail("The exported snapshot is gone; the slot remains.");
                lm_hint("Copies still running under the snapshot are unaffected; to copy more, "
                        "take a fresh snapshot (see lm-slot(1), FAILURES).");
                free(m);
                PQfinish(repl);
                return LM_EXIT_SERVER;
            }
        }
    }
    /* one more command ends the exporting transaction, so the snapshot is
     * gone by the time we exit, not whenever the server notices */
    PQclear(PQexec(repl, "IDENTIFY_SYSTEM"));
    PQfinish(repl);
    lm_info("released snapshot %s (%s)", snapshot, why);
    return LM_EXIT_OK;
}

int slot_create(const slot_opts *o)
{
    PGconn *conn, *repl;
    scope sc = {0};
    int *fix = NULL, nfix = 0;
    PGresult *res;
    char *sql, *lit, *sysid, *dbname;
    kvout k;

    lm_signals_init();
    /* the output file first: one that cannot be written changes nothing */
    if (o->output)
        kv_begin_file(&k, o->json, o->output);
    conn = lm_connect(o->source, "source", 0);
    preflight(conn, o, &sc, &fix, &nfix);
    if (o->ddl)
        nproblems += ddl_preflight(conn, o);
    if (nproblems) {
        lm_error("%d problem%s found: nothing was created on the source", nproblems,
                 nproblems == 1 ? "" : "s");
        PQfinish(conn);
        return LM_EXIT_PREFLIGHT;
    }
    if (lm_interrupted)
        lm_fatal(LM_EXIT_FAILURE, "interrupted: nothing was created on the source");

    /* connect before changing anything, so that a connection refused for
     * replication leaves the source as it was */
    repl = lm_connect(o->source, "source", LM_CONN_REPLICATION);
    sql = lm_psprintf("%s%s", LM_SLOT_HOLDER_PREFIX, o->slot);
    lit = lm_literal(sql);
    free(sql);
    sql = lm_psprintf("SET application_name = %s", lit);
    lm_exec_cmd(repl, LM_EXIT_SERVER, sql);
    free(sql);
    free(lit);
    res = lm_exec(repl, LM_EXIT_SERVER, "IDENTIFY_SYSTEM");
    sysid = lm_strdup(PQgetvalue(res, 0, 0));
    dbname = lm_strdup(PQgetisnull(res, 0, 3) ? PQdb(conn) : PQgetvalue(res, 0, 3));
    PQclear(res);

    create_publication(conn, o, &sc, fix, nfix);
    if (o->ddl && !ddl_install(conn, o)) {
        drop_publication(conn, o, nfix);
        return LM_EXIT_SERVER;
    }

    if (lm_server_version(repl) >= 150000)
        sql = lm_psprintf("CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput (SNAPSHOT 'export')",
                          o->slot);
    else
        sql = lm_psprintf("CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput EXPORT_SNAPSHOT",
                          o->slot);
    res = repl_exec_wait(repl, conn, sql);
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (res)
            lm_log_result_error(res, repl, sql);
        else
            lm_error("interrupted while creating the slot");
        if (o->ddl)
            (void)ddl_uninstall(conn, o->publication, false);
        drop_publication(conn, o, nfix);
        PQclear(res);
        return res ? LM_EXIT_SERVER : LM_EXIT_FAILURE;
    }
    free(sql);
    PQfinish(conn);

    if (!o->output)
        kv_begin(&k, o->json);
    kv_str(&k, "slot", PQgetvalue(res, 0, 0));
    kv_str(&k, "consistent_point", PQgetvalue(res, 0, 1));
    kv_str(&k, "snapshot", PQgetvalue(res, 0, 2));
    kv_str(&k, "system_identifier", sysid);
    kv_str(&k, "publication", o->publication);
    kv_str(&k, "database", dbname);
    kv_end(&k);
    lm_info("created replication slot \"%s\" at %s", o->slot, PQgetvalue(res, 0, 1));

    if (o->hold) {
        char *snap = lm_strdup(PQgetvalue(res, 0, 2));
        int rc;
        PQclear(res);
        rc = hold(repl, snap);
        free(snap);
        return rc;
    }
    PQclear(res);
    PQfinish(repl);
    free(sysid);
    free(dbname);
    return LM_EXIT_OK;
}
