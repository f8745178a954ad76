/* TimescaleDB: hypertables on the target, made before the data, either
 * from --hypertable (a PostgreSQL source) or from the source's own
 * hypertables (a TimescaleDB source), and copied chunk by chunk.
 *
 * The source's hypertables are restored as plain tables by pre-data (the
 * chunk tables and the extension's own schemas are left out of the dump),
 * then made hypertables with the source's dimensions as of the snapshot
 * (create_hypertable and add_dimension, by_range/by_hash), before any row
 * arrives; the rows of each chunk are a unit of the parallel copy, read
 * FROM ONLY that chunk and written into the hypertable, which makes its
 * own chunks. The target's TimescaleDB builds its own catalog: none of the
 * source's is copied. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "log.h"
#include "pgconn.h"
#include "lm-snapshot.h"

/* The oldest TimescaleDB that has by_range() and by_hash(). */
#define TSDB_MIN_MAJOR 2
#define TSDB_MIN_MINOR 13

/* The schemas of the timescaledb extension (its own catalog's), one a row
 * (uncorrelated: its aliases shadow a query's around it) */
#define TSDB_SCHEMAS_SQL \
    "SELECT n.nspname FROM pg_extension e JOIN pg_depend d ON d.refobjid = e.oid" \
    " AND d.refclassid = 'pg_extension'::regclass AND d.classid = 'pg_namespace'::regclass" \
    " AND d.deptype = 'e' JOIN pg_namespace n ON n.oid = d.objid WHERE e.extname = 'timescaledb'"

static void put_s(lm_buf *b, const char *s) { lm_buf_put(b, s, strlen(s)); }

static bool parse_version(const char *v, int *major, int *minor)
{
    return v && sscanf(v, "%d.%d", major, minor) == 2;
}

/* The hypertable a catalog row (hypertable id in column 0) belongs to,
 * or NULL when it is not one of those read. */
static hyper_src *src_of_row(run *r, const PGresult *res, int row)
{
    int id = atoi(PQgetvalue(res, row, 0));
    for (int i = 0; i < r->nhsrc; i++)
        if (r->hsrc[i].id == id)
            return &r->hsrc[i];
    return NULL;
}

/* Run sql, whose rows start with a hypertable id, on src and hand each row
 * of a hypertable read (src_of_row) to fn. */
static void each_src_row(run *r, PGconn *src, const char *sql,
                         void (*fn)(hyper_src *h, const PGresult *res, int row))
{
    PGresult *res = lm_exec(src, LM_EXIT_SERVER, sql);

    for (int i = 0; i < PQntuples(res); i++) {
        hyper_src *h = src_of_row(r, res, i);
        if (h)
            fn(h, res, i);
    }
    PQclear(res);
}

/* a row of _timescaledb_catalog.dimension, as hyper_read_source reads it */
static void read_dim(hyper_src *h, const PGresult *res, int i)
{
    hyper_dim *d;

    h->dims = lm_realloc(h->dims, (size_t)(h->ndims + 1) * sizeof *h->dims);
    d = memset(&h->dims[h->ndims++], 0, sizeof *d);
    d->column = lm_strdup(PQgetvalue(res, i, 1));
    d->open = PQgetvalue(res, i, 2)[0] == 't';
    if (d->open)
        d->interval = lm_strdup(PQgetvalue(res, i, 3));
    else
        d->partitions = atoi(PQgetvalue(res, i, 4));
    if (!PQgetisnull(res, i, 5))
        d->func = lm_strdup(PQgetvalue(res, i, 5));
    if (!PQgetisnull(res, i, 6))
        d->now_func = lm_strdup(PQgetvalue(res, i, 6));
}

/* a chunk that has a table, as hyper_read_source reads it */
static void read_chunk(hyper_src *h, const PGresult *res, int i)
{
    h->parts = lm_realloc(h->parts, (size_t)(h->nparts + 1) * sizeof *h->parts);
    h->parts[h->nparts].qname = lm_strdup(PQgetvalue(res, i, 1));
    h->parts[h->nparts++].bytes = strtoull(PQgetvalue(res, i, 2), NULL, 10);
    h->compressed |= PQgetvalue(res, i, 3)[0] == 't';
}

void hyper_read_source(run *r, PGconn *src)
{
    PGresult *res;

    res = lm_exec(src, LM_EXIT_SERVER,
                  "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'");
    if (PQntuples(res) == 0) {
        PQclear(res);
        return;
    }
    r->src_tsdb = lm_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    /* the schemas one by one: names with any character */
    res = lm_exec(src, LM_EXIT_SERVER,
                  TSDB_SCHEMAS_SQL " ORDER BY 1");
    r->ntsdb_schemas = PQntuples(res);
    r->tsdb_schemas = lm_malloc((size_t)(r->ntsdb_schemas + 1) * sizeof *r->tsdb_schemas);
    for (int i = 0; i < r->ntsdb_schemas; i++)
        r->tsdb_schemas[i] = lm_strdup(PQgetvalue(res, i, 0));
    PQclear(res);

    /* the hypertables of the application: not those in the extension's
     * own schemas (a compressed hypertable's internal one) */
    res = lm_exec(src, LM_EXIT_SERVER,
                  "SELECT h.id, h.schema_name, h.table_name FROM _timescaledb_catalog.hypertable h"
                  " WHERE h.schema_name NOT IN (" TSDB_SCHEMAS_SQL ")"
                  " ORDER BY h.id");
    r->nhsrc = PQntuples(res);
    r->hsrc = lm_malloc((size_t)(r->nhsrc + 1) * sizeof *r->hsrc);
    memset(r->hsrc, 0, (size_t)(r->nhsrc + 1) * sizeof *r->hsrc);
    for (int i = 0; i < r->nhsrc; i++) {
        hyper_src *h = &r->hsrc[i];
        h->id = atoi(PQgetvalue(res, i, 0));
        h->nspname = lm_strdup(PQgetvalue(res, i, 1));
        h->relname = lm_strdup(PQgetvalue(res, i, 2));
        /* unit 0: rows in the hypertable itself (none, normally) */
        h->parts = lm_malloc(sizeof *h->parts);
        h->parts[0].qname = lm_qualified(h->nspname, h->relname);
        h->parts[0].bytes = 0;
        h->nparts = 1;
    }
    PQclear(res);
    if (r->nhsrc == 0)
        return;

    /* dimensions in the order they were made: the first is
     * create_hypertable's. The extension's own hash function is the
     * default (named on the target by its schema there); another is the
     * application's, restored with the schema. */
    each_src_row(r, src,
                 "SELECT d.hypertable_id, d.column_name, d.interval_length IS NOT NULL,"
                 " d.interval_length::text, d.num_slices,"
                 " CASE WHEN d.partitioning_func IS NULL THEN NULL"
                 "  WHEN d.partitioning_func_schema IN (" TSDB_SCHEMAS_SQL ")"
                 "  THEN CASE WHEN d.partitioning_func = 'get_partition_hash' THEN NULL"
                 "   ELSE format('_timescaledb_functions.%I', d.partitioning_func) END"
                 "  ELSE format('%I.%I', d.partitioning_func_schema, d.partitioning_func) END,"
                 " CASE WHEN d.integer_now_func IS NULL THEN NULL"
                 "  ELSE format('%I.%I', d.integer_now_func_schema, d.integer_now_func) END"
                 " FROM _timescaledb_catalog.dimension d ORDER BY d.hypertable_id, d.id",
                 read_dim);

    /* the chunks that have a table, in the order they were made */
    each_src_row(r, src,
                 "SELECT ch.hypertable_id, format('%I.%I', ch.schema_name, ch.table_name),"
                 " pg_relation_size(c.oid), ch.compressed_chunk_id IS NOT NULL"
                 " FROM _timescaledb_catalog.chunk ch JOIN pg_namespace n ON n.nspname = ch.schema_name"
                 " JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = ch.table_name"
                 " WHERE c.relkind = 'r' ORDER BY ch.hypertable_id, ch.id",
                 read_chunk);
    lm_info("TimescaleDB %s on the source: %d hypertable%s", r->src_tsdb, r->nhsrc,
            r->nhsrc == 1 ? "" : "s");
}

char *hyper_exclude_sql(const run *r)
{
    lm_buf b = {0};
    if (!r->src_tsdb)
        return lm_strdup("true");
    put_s(&b, "NOT EXISTS (SELECT 1 FROM _timescaledb_catalog.chunk ch"
              " WHERE ch.schema_name = n.nspname AND ch.table_name = c.relname)"
              " AND n.nspname <> ALL (ARRAY[''");
    for (int i = 0; i < r->ntsdb_schemas; i++) {
        put_s(&b, ", ");
        lm_quote_literal(&b, r->tsdb_schemas[i]);
    }
    put_s(&b, "]::text[])");
    lm_buf_u8(&b, '\0');
    return (char *)b.data;
}

/* --hypertable's [schema.]table names t (names as in the catalog) */
static bool spec_names(const char *spec, const table *t)
{
    const char *dot = strchr(spec, '.');
    return dot ? strncmp(spec, t->nspname, (size_t)(dot - spec)) == 0 && t->nspname[dot - spec] == '\0' &&
                 strcmp(dot + 1, t->relname) == 0
               : strcmp(spec, t->relname) == 0;
}

void hyper_attach(run *r)
{
    for (int i = 0; i < r->ntables; i++) {
        table *t = &r->tables[i];
        for (int h = 0; h < r->nhsrc; h++)
            if (strcmp(r->hsrc[h].nspname, t->nspname) == 0 && strcmp(r->hsrc[h].relname, t->relname) == 0) {
                t->src_hyper = &r->hsrc[h];
                t->hypertable = true;
            }
        for (int h = 0; h < r->o->nhypertables; h++)
            if (spec_names(r->o->hypertables[h].table, t)) {
                if (t->src_hyper)
                    lm_warning("--hypertable=%s: %s is a hypertable on the source, made with the "
                               "source's dimensions", r->o->hypertables[h].table, t->qname);
                t->hypertable = true;
            }
        if (t->src_hyper && t->src_hyper->compressed) {
            lm_error("hypertable %s has compressed chunks on the source", t->qname);
            lm_detail("The rows of a compressed chunk are not in its table: they cannot be copied "
                      "chunk by chunk.");
            lm_hint("Decompress them first (SELECT decompress_chunk(c) FROM show_chunks('%s') c), "
                    "or leave the table out (--exclude-table).", t->qname);
            exit(LM_EXIT_PREFLIGHT);
        }
    }
}

/* pg_dump's pattern for a name, taken literally */
static char *quoted_pattern(const char *name)
{
    lm_buf b = {0};
    lm_buf_u8(&b, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            lm_buf_u8(&b, '"');
        lm_buf_u8(&b, (uint8_t)*p);
    }
    lm_buf_u8(&b, '"');
    lm_buf_u8(&b, '\0');
    return (char *)b.data;
}

void hyper_dump_excludes(const run *r, char ***tables, int *ntables, char ***schemas,
                         int *nschemas)
{
    int n = 0;
    *tables = NULL;
    *ntables = 0;
    *schemas = NULL;
    *nschemas = 0;
    if (!r->src_tsdb)
        return;
    *schemas = lm_malloc((size_t)(r->ntsdb_schemas + 1) * sizeof **schemas);
    for (int i = 0; i < r->ntsdb_schemas; i++)
        (*schemas)[(*nschemas)++] = quoted_pattern(r->tsdb_schemas[i]);
    /* chunks elsewhere (a hypertable's associated_schema_name), each by
     * its quoted name, which is also pg_dump's literal pattern */
    for (int h = 0; h < r->nhsrc; h++)
        n += r->hsrc[h].nparts;
    *tables = lm_malloc((size_t)(n + 1) * sizeof **tables);
    for (int h = 0; h < r->nhsrc; h++)
        for (int p = 1; p < r->hsrc[h].nparts; p++)
            (*tables)[(*ntables)++] = lm_strdup(r->hsrc[h].parts[p].qname);
}

/* The target's TimescaleDB: installed version, or the version CREATE
 * EXTENSION would install (NULL: neither). */
typedef struct tsdb_target {
    char *installed, *available;
    bool preloaded, may_create;
} tsdb_target;

static tsdb_target target_tsdb(PGconn *tgt)
{
    tsdb_target t = {0};
    PGresult *res = lm_exec(tgt, LM_EXIT_SERVER,
        "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),"
        " (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'),"
        " 'timescaledb' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')),"
        " has_database_privilege(current_database(), 'CREATE')"
        "   OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)");
    if (!PQgetisnull(res, 0, 0))
        t.installed = lm_strdup(PQgetvalue(res, 0, 0));
    if (!PQgetisnull(res, 0, 1))
        t.available = lm_strdup(PQgetvalue(res, 0, 1));
    t.preloaded = PQgetvalue(res, 0, 2)[0] == 't';
    t.may_create = PQgetvalue(res, 0, 3)[0] == 't';
    PQclear(res);
    return t;
}

/* create_hypertable for --hypertable h on table t (qname; the option's
 * name when no table is planned) */
static char *option_sql(const hypertable_opt *ho, const char *qname)
{
    char *tl = lm_literal(qname), *cl = lm_literal(ho->column), *sql;
    if (ho->interval) {
        /* a number is the interval in the column's units (microseconds
         * for a time type), as TimescaleDB takes an integer */
        bool number = ho->interval[strspn(ho->interval, "0123456789")] == '\0';
        char *il = lm_literal(ho->interval);
        sql = lm_psprintf("SELECT create_hypertable(%s, %s, chunk_time_interval => %s%s)", tl, cl,
                          number ? "" : "INTERVAL ", number ? ho->interval : il);
        free(il);
    } else
        sql = lm_psprintf("SELECT create_hypertable(%s, %s)", tl, cl);
    free(tl);
    free(cl);
    return sql;
}

static const table *option_table(const run *r, const hypertable_opt *ho)
{
    for (int i = 0; i < r->ntables; i++)
        if (spec_names(ho->table, &r->tables[i]))
            return &r->tables[i];
    return NULL;
}

void hyper_check_target(run *r, PGconn *tgt)
{
    int nsrc = 0, tmaj, tmin, smaj, smin;
    tsdb_target tt;
    const char *version;

    for (int i = 0; i < r->ntables; i++)
        if (r->tables[i].src_hyper)
            nsrc++;
    if (!r->o->nhypertables && !nsrc)
        return;
    tt = target_tsdb(tgt);
    version = tt.installed ? tt.installed : tt.available;
    if (!tt.installed && (!tt.available || !tt.preloaded || !tt.may_create)) {
        if (nsrc)
            lm_error("the source has %d hypertable%s, and the target has no TimescaleDB%s", nsrc,
                     nsrc == 1 ? "" : "s",
                     !tt.available ? "" : !tt.preloaded ? " loaded (shared_preload_libraries)"
                                                        : " and this role may not create it");
        else {
            const hypertable_opt *ho = &r->o->hypertables[0];
            const table *t = option_table(r, ho);
            char *sql = option_sql(ho, t ? t->qname : ho->table);
            lm_error("--hypertable needs the timescaledb extension on the target, and it is not installed%s",
                     !tt.available ? "" : !tt.preloaded ? " (nor in shared_preload_libraries)"
                                                        : " (and this role may not create it)");
            lm_detail("would run: %s", sql);
            free(sql);
        }
        lm_hint("Install TimescaleDB on the target server, add it to shared_preload_libraries, and run "
                "CREATE EXTENSION timescaledb in the target database first.");
        exit(LM_EXIT_PREFLIGHT);
    }
    /* The hypertables are made through the target's own API (by_range,
     * by_hash: 2.13 and later), not by copying the source's catalog, so
     * the versions need not be equal; but a target older than the source
     * may lack what the source's hypertables use. */
    if (!parse_version(version, &tmaj, &tmin) || tmaj < TSDB_MIN_MAJOR ||
        (tmaj == TSDB_MIN_MAJOR && tmin < TSDB_MIN_MINOR)) {
        lm_error("TimescaleDB %s on the target is too old: lm makes hypertables with by_range() and "
                 "by_hash(), TimescaleDB %d.%d or later", version, TSDB_MIN_MAJOR, TSDB_MIN_MINOR);
        lm_hint("Update TimescaleDB on the target (ALTER EXTENSION timescaledb UPDATE).");
        exit(LM_EXIT_PREFLIGHT);
    }
    if (nsrc && parse_version(r->src_tsdb, &smaj, &smin) && (tmaj < smaj || (tmaj == smaj && tmin < smin))) {
        lm_error("TimescaleDB %s on the target is older than the source's (%s)", version, r->src_tsdb);
        lm_detail("The target makes the hypertables with its own version: it must be the source's "
                  "major.minor or newer.");
        lm_hint("Update TimescaleDB on the target first.");
        exit(LM_EXIT_PREFLIGHT);
    }
    for (int h = 0; h < r->o->nhypertables; h++)
        if (!option_table(r, &r->o->hypertables[h])) {
            lm_error("--hypertable=%s: no such table is copied", r->o->hypertables[h].table);
            lm_hint("Name a table of the source as [SCHEMA.]TABLE, its names as they are in the catalog.");
            exit(LM_EXIT_PREFLIGHT);
        }
    if (!tt.installed)
        lm_info("TimescaleDB %s is created on the target", version);
    free(tt.installed);
    free(tt.available);
}

static bool is_hypertable(PGconn *tgt, const table *t)
{
    const char *p[2] = {t->nspname, t->relname};
    PGresult *res = lm_execp(tgt, LM_EXIT_SERVER,
                             "SELECT 1 FROM _timescaledb_catalog.hypertable WHERE schema_name = $1"
                             " AND table_name = $2", 2, p);
    bool yes = PQntuples(res) > 0;
    PQclear(res);
    return yes;
}

/* by_range(...) or by_hash(...) for a dimension */
static void put_dim(lm_buf *b, const hyper_dim *d)
{
    char tmp[32];
    put_s(b, d->open ? "by_range(" : "by_hash(");
    lm_quote_literal(b, d->column);
    put_s(b, "::name, ");
    if (d->open) {
        put_s(b, d->interval);
        put_s(b, "::bigint");
    } else {
        snprintf(tmp, sizeof tmp, "%d", d->partitions);
        put_s(b, tmp);
    }
    if (d->func) {
        put_s(b, ", ");
        lm_quote_literal(b, d->func);
        put_s(b, "::regproc");
    }
    put_s(b, ")");
}

void hyper_create(run *r, PGconn *tgt)
{
    bool any = r->o->nhypertables > 0;
    int made = 0;
    char *ext_schema;

    for (int i = 0; i < r->ntables && !any; i++)
        any = r->tables[i].src_hyper != NULL;
    if (!any)
        return;
    {
        char *v = lm_query_value(tgt, LM_EXIT_SERVER,
                                 "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'");
        if (strcmp(v, "0") == 0) {
            /* a TimescaleDB source's dump creates it in pre-data; for
             * --hypertable, the preflight found it may be created */
            lm_info("CREATE EXTENSION timescaledb");
            lm_exec_cmd(tgt, LM_EXIT_SERVER, "CREATE EXTENSION IF NOT EXISTS timescaledb");
        }
        free(v);
    }
    /* its functions are called by name in the schema it is in (a source's
     * dump creates it WITH SCHEMA as on the source) */
    ext_schema = lm_query_value(tgt, LM_EXIT_SERVER,
                                "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n"
                                " ON n.oid = e.extnamespace WHERE e.extname = 'timescaledb'");
    for (int i = 0; i < r->ntables; i++) {
        table *t = &r->tables[i];
        lm_buf b = {0};
        if (!t->hypertable)
            continue;
        if (is_hypertable(tgt, t)) {
            lm_info("%s is a hypertable on the target already", t->qname);
            continue;
        }
        put_s(&b, "BEGIN; SET LOCAL search_path = ");
        put_s(&b, ext_schema);
        put_s(&b, "; ");
        if (t->src_hyper) {
            const hyper_src *h = t->src_hyper;
            /* the source's indexes come with post-data: none of the defaults */
            for (int d = 0; d < h->ndims; d++) {
                put_s(&b, d ? "SELECT add_dimension(" : "SELECT create_hypertable(");
                lm_quote_literal(&b, t->qname);
                put_s(&b, "::regclass, ");
                put_dim(&b, &h->dims[d]);
                put_s(&b, d ? "); " : ", create_default_indexes => false); ");
            }
            for (int d = 0; d < h->ndims; d++)
                if (h->dims[d].now_func) {
                    put_s(&b, "SELECT set_integer_now_func(");
                    lm_quote_literal(&b, t->qname);
                    put_s(&b, "::regclass, ");
                    lm_quote_literal(&b, h->dims[d].now_func);
                    put_s(&b, "::regproc); ");
                }
        } else {
            for (int h = 0; h < r->o->nhypertables; h++)
                if (spec_names(r->o->hypertables[h].table, t)) {
                    char *sql = option_sql(&r->o->hypertables[h], t->qname);
                    put_s(&b, sql);
                    put_s(&b, "; ");
                    free(sql);
                    break;
                }
        }
        put_s(&b, "COMMIT");
        lm_buf_u8(&b, '\0');
        lm_info("%s", (char *)b.data);
        lm_exec_cmd(tgt, LM_EXIT_SERVER, (char *)b.data);
        free(b.data);
        made++;
    }
    if (made)
        lm_info("%d hypertable%s made on the target", made, made == 1 ? "" : "s");
    free(ext_schema);
}

void hyper_plan_units(run *r, int *cap, table *t, const bool *done)
{
    const hyper_src *h = t->src_hyper;
    for (int p = 0; p < h->nparts; p++) {
        if (done && done[p])
            continue;
        plan_add_chunk(r, cap, t, p, h->nparts, -1, -1, false);
        r->chunks[r->nchunks - 1].src_rel = h->parts[p].qname;
        r->total_est -= r->chunks[r->nchunks - 1].est_bytes;
        r->chunks[r->nchunks - 1].est_bytes = h->parts[p].bytes;
        r->total_est += h->parts[p].bytes;
    }
}
