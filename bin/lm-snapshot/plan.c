/* Which tables to copy, cut into which chunks, and what an earlier run
 * already finished (lm.copy on the target). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "log.h"
#include "pgconn.h"
#include "state.h"
#include "lm-snapshot.h"

#define BLCKSZ_DEFAULT 8192

/* psql's pattern rules: unquoted letters fold to lower case, * and ? are
 * wildcards, an unquoted dot separates schema from name, $ is literal,
 * other regex characters work as regex; double quotes quote literally. */
char *pattern_regex(const char *pattern, char **nsp_regex)
{
    lm_buf cur = {0};
    char *first = NULL;
    bool inq = false;

    lm_buf_u8(&cur, '^');
    lm_buf_u8(&cur, '(');
    for (const char *p = pattern; *p; p++) {
        char c = *p;
        if (c == '"') {
            if (inq && p[1] == '"') {
                lm_buf_u8(&cur, '"');
                p++;
            } else
                inq = !inq;
        } else if (!inq && c == '.' && !first) {
            lm_buf_puts(&cur, ")$");
            first = (char *)cur.data;
            memset(&cur, 0, sizeof cur);
            lm_buf_puts(&cur, "^(");
        } else if (inq) {
            if (strchr("|*+?()[]{}.^$\\", c))
                lm_buf_u8(&cur, '\\');
            lm_buf_u8(&cur, (uint8_t)c);
        } else if (c == '*')
            lm_buf_puts(&cur, ".*");
        else if (c == '?')
            lm_buf_u8(&cur, '.');
        else if (c == '$')
            lm_buf_puts(&cur, "\\$");
        else
            lm_buf_u8(&cur, (uint8_t)tolower((unsigned char)c));
    }
    lm_buf_puts(&cur, ")$");
    if (nsp_regex)
        *nsp_regex = first;
    else
        free(first);
    return (char *)cur.data;
}

static void put_s(lm_buf *b, const char *s) { lm_buf_put(b, s, strlen(s)); }

/* SQL condition on n.nspname / c.relname (or a partition's root) for the
 * filters; "true" without filters. */
static char *scope_condition(const options *o)
{
    lm_buf b = {0};
    put_s(&b, "true");
    if (o->nschemas) {
        put_s(&b, " AND (false");
        for (int i = 0; i < o->nschemas; i++) {
            char *re = pattern_regex(o->schemas[i], NULL);
            put_s(&b, " OR n.nspname ~ ");
            lm_quote_literal(&b, re);
            free(re);
        }
        put_s(&b, ")");
    }
    for (int pass = 0; pass < 2; pass++) {
        const char **pats = pass ? o->excludes : o->tables;
        int npats = pass ? o->nexcludes : o->ntables;
        if (!npats)
            continue;
        put_s(&b, pass ? " AND NOT (false" : " AND (false");
        for (int i = 0; i < npats; i++) {
            char *nre = NULL;
            char *re = pattern_regex(pats[i], &nre);
            /* a partition goes with its root */
            put_s(&b, " OR EXISTS (SELECT 1 FROM pg_class pc JOIN pg_namespace pn ON pn.oid = pc.relnamespace"
                      " WHERE pc.oid IN (c.oid, pg_partition_root(c.oid)) AND pc.relname ~ ");
            lm_quote_literal(&b, re);
            if (nre) {
                put_s(&b, " AND pn.nspname ~ ");
                lm_quote_literal(&b, nre);
            }
            put_s(&b, ")");
            free(re);
            free(nre);
        }
        put_s(&b, ")");
    }
    lm_buf_u8(&b, '\0');
    return (char *)b.data;
}

void plan_tables(run *r, PGconn *plan)
{
    char *cond, *hcond, *sql;
    bool same_major = r->src_version / 10000 == r->tgt_version / 10000;
    PGresult *res;
    int n;

    hyper_read_source(r, plan);
    cond = scope_condition(r->o);
    hcond = hyper_exclude_sql(r);
    sql = lm_psprintf(
        "SELECT c.oid, n.nspname, c.relname, pg_relation_size(c.oid),"
        " (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a"
        "   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''),"
        " (SELECT coalesce(bool_and(a.atttypid < 16384), true) FROM pg_attribute a"
        "   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''),"
        " current_setting('block_size')::int, c.reltuples"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND c.relpersistence <> 't'"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lm')"
        " AND n.nspname !~ '^pg_(toast|temp)'"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
        "   AND d.objid = c.oid AND d.deptype = 'e')"
        " AND %s AND %s"
        " ORDER BY 4 DESC, 2, 3", cond, hcond);
    res = lm_exec(plan, LM_EXIT_SERVER, sql);
    n = PQntuples(res);

    r->tables = lm_malloc((size_t)(n ? n : 1) * sizeof *r->tables);
    memset(r->tables, 0, (size_t)(n ? n : 1) * sizeof *r->tables);
    r->ntables = n;
    for (int i = 0; i < n; i++) {
        table *t = &r->tables[i];
        uint64_t blcksz = strtoull(PQgetvalue(res, i, 6), NULL, 10);
        t->oid = (unsigned)strtoul(PQgetvalue(res, i, 0), NULL, 10);
        t->nspname = lm_strdup(PQgetvalue(res, i, 1));
        t->relname = lm_strdup(PQgetvalue(res, i, 2));
        t->qname = lm_qualified(t->nspname, t->relname);
        t->bytes = strtoull(PQgetvalue(res, i, 3), NULL, 10);
        t->pages = t->bytes / (blcksz ? blcksz : BLCKSZ_DEFAULT);
        t->reltuples = strtod(PQgetvalue(res, i, 7), NULL);
        t->columns = lm_strdup(PQgetisnull(res, i, 4) ? "" : PQgetvalue(res, i, 4));
        t->binary = same_major && strcmp(PQgetvalue(res, i, 5), "t") == 0 &&
                    !getenv("LM_SNAPSHOT_TEXT");
    }
    PQclear(res);
    free(sql);
    free(cond);
    free(hcond);
    hyper_attach(r);
}

typedef struct range { int64_t first, end; } range;   /* end -1: open */

static int range_cmp(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

void plan_add_chunk(run *r, int *cap, table *t, int num, int nchunks, int64_t first, int64_t end,
                    bool whole)
{
    chunk *c;
    if (r->nchunks == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        r->chunks = lm_realloc(r->chunks, (size_t)*cap * sizeof *r->chunks);
    }
    c = &r->chunks[r->nchunks++];
    memset(c, 0, sizeof *c);
    c->t = t;
    c->chunk = num;
    c->nchunks = nchunks;
    c->first_page = first;
    c->end_page = end;
    c->whole = whole;
    if (whole || t->pages == 0)
        c->est_bytes = t->bytes;
    else {
        int64_t e = end < 0 ? (int64_t)t->pages : end;
        c->est_bytes = e > first ? (uint64_t)(e - first) * (t->bytes / (t->pages ? t->pages : 1)) : 0;
    }
    t->nchunks++;
    r->total_est += c->est_bytes;
    /* rows by the chunk's share of the table's bytes; nothing for a table
     * never analyzed (reltuples -1) */
    if (t->reltuples < 0 || (t->reltuples == 0 && t->pages > 0) || t->src_hyper)
        r->rows_unknown = true;
    else if (t->reltuples > 0)
        c->est_rows = t->bytes ? t->reltuples * (double)c->est_bytes / (double)t->bytes : t->reltuples;
    r->total_rows_est += c->est_rows;
}

/* A fresh plan for a table: one whole chunk, or ctid ranges. */
static void plan_fresh(run *r, int *cap, table *t)
{
    uint64_t split = r->o->split_bytes;
    if (split == 0) {
        /* automatic: about two chunks per worker of the whole copy, so one
         * big table keeps every worker busy, within 64 MB .. 1 GB */
        uint64_t total = 0;
        for (int i = 0; i < r->ntables; i++)
            total += r->tables[i].bytes;
        split = total / (uint64_t)(2 * (r->o->jobs > 0 ? r->o->jobs : 1));
        if (split < (64ull << 20))
            split = 64ull << 20;
        if (split > (1ull << 30))
            split = 1ull << 30;
    }
    /* a --hypertable's table too: its ranges go into the hypertable in
     * parallel, which makes the chunks */
    if (t->bytes > split && t->pages > 1) {
        uint64_t n = (t->bytes + split - 1) / split;
        uint64_t per, count;
        if (n > t->pages)
            n = t->pages;
        per = (t->pages + n - 1) / n;
        count = (t->pages + per - 1) / per;
        for (uint64_t i = 0; i < count; i++)
            plan_add_chunk(r, cap, t, (int)i, (int)count, (int64_t)(i * per),
                      i + 1 == count ? -1 : (int64_t)((i + 1) * per), false);
    } else
        plan_add_chunk(r, cap, t, 0, 1, -1, -1, true);
}

static void reset_table(run *r, PGconn *target, table *t)
{
    lm_buf b = {0};
    put_s(&b, "BEGIN; TRUNCATE ");
    put_s(&b, t->hypertable || t->routed ? "" : "ONLY ");
    put_s(&b, t->qname);
    put_s(&b, "; ");
    lm_copy_forget_sql(&b, t->nspname, t->relname);
    put_s(&b, "; COMMIT");
    lm_buf_u8(&b, '\0');
    lm_exec_cmd(target, LM_EXIT_SERVER, (char *)b.data);
    free(b.data);
}

void plan_chunks(run *r, PGconn *target)
{
    PGresult *done = NULL;
    int cap = 0, ndone = 0, skipped = 0, reset = 0;
    lm_buf sync = {0};

    r->chunks = NULL;
    r->nchunks = 0;
    r->total_est = 0;
    if (target) {
        done = lm_copy_list(target);
        ndone = PQntuples(done);
    }
    for (int i = 0; i < r->ntables; i++) {
        table *t = &r->tables[i];
        range *rg = NULL;
        int nr = 0, maxchunk = -1;
        bool other_snapshot = false;

        for (int k = 0; k < ndone; k++) {
            if (strcmp(PQgetvalue(done, k, 0), t->nspname) != 0 ||
                strcmp(PQgetvalue(done, k, 1), t->relname) != 0)
                continue;
            rg = lm_realloc(rg, (size_t)(nr + 1) * sizeof *rg);
            rg[nr].first = PQgetisnull(done, k, 3) ? 0 : strtoll(PQgetvalue(done, k, 3), NULL, 10);
            rg[nr].end = PQgetisnull(done, k, 4) ? -1 : strtoll(PQgetvalue(done, k, 4), NULL, 10) + 1;
            nr++;
            if (atoi(PQgetvalue(done, k, 2)) > maxchunk)
                maxchunk = atoi(PQgetvalue(done, k, 2));
            if (PQgetisnull(done, k, 5) || strcmp(PQgetvalue(done, k, 5), r->snapshot_id) != 0)
                other_snapshot = true;
        }
        if (t->src_hyper) {
            /* a source hypertable: its units are its chunks, numbered
             * as of the snapshot; those of another snapshot cannot be
             * completed under this one */
            bool *done_units = lm_malloc((size_t)t->src_hyper->nparts * sizeof *done_units);
            memset(done_units, 0, (size_t)t->src_hyper->nparts * sizeof *done_units);
            for (int k = 0; k < ndone && !other_snapshot; k++) {
                int u = atoi(PQgetvalue(done, k, 2));
                if (strcmp(PQgetvalue(done, k, 0), t->nspname) == 0 &&
                    strcmp(PQgetvalue(done, k, 1), t->relname) == 0 && u >= 0 && u < t->src_hyper->nparts)
                    done_units[u] = true;
            }
            if (other_snapshot) {
                lm_info("%s: %d chunk%s from snapshot other than \"%s\": reloading the hypertable",
                        t->qname, nr, nr == 1 ? "" : "s", r->snapshot);
                reset_table(r, target, t);
                memset(done_units, 0, (size_t)t->src_hyper->nparts * sizeof *done_units);
                reset++;
            }
            hyper_plan_units(r, &cap, t, done_units);
            if (nr > 0 && !other_snapshot && t->nchunks == 0) {
                t->skipped = true;
                skipped++;
            }
            free(done_units);
        } else if (nr == 0)
            plan_fresh(r, &cap, t);
        else {
            /* the pages not covered by finished chunks */
            range *gaps = NULL;
            int ngaps = 0;
            int64_t cursor = 0;
            qsort(rg, (size_t)nr, sizeof *rg, range_cmp);
            for (int k = 0; k < nr && cursor >= 0; k++) {
                if (rg[k].first > cursor) {
                    gaps = lm_realloc(gaps, (size_t)(ngaps + 1) * sizeof *gaps);
                    gaps[ngaps++] = (range){cursor, rg[k].first};
                }
                if (rg[k].end < 0)
                    cursor = -1;
                else if (rg[k].end > cursor)
                    cursor = rg[k].end;
            }
            if (cursor >= 0) {
                gaps = lm_realloc(gaps, (size_t)(ngaps + 1) * sizeof *gaps);
                gaps[ngaps++] = (range){cursor, -1};
            }
            if (ngaps == 0) {
                t->skipped = true;
                skipped++;
            } else if (other_snapshot) {
                /* chunks of another (dead) snapshot cannot be completed
                 * under this one: reload the whole table */
                lm_info("%s: %d chunk%s from snapshot other than \"%s\": reloading the table",
                        t->qname, nr, nr == 1 ? "" : "s", r->snapshot);
                plan_fresh(r, &cap, t);
                if (!r->chunks[r->nchunks - 1].whole)
                    reset_table(r, target, t);
                reset++;
            } else {
                for (int g = 0; g < ngaps; g++)
                    plan_add_chunk(r, &cap, t, maxchunk + 1 + g, nr + ngaps, gaps[g].first,
                              gaps[g].end, false);
            }
            free(gaps);
        }
        free(rg);
        if (!t->skipped && r->have_sync && target) {
            char lsn[32];
            snprintf(lsn, sizeof lsn, "%X/%X", (unsigned)(r->sync_lsn >> 32), (unsigned)r->sync_lsn);
            put_s(&sync, sync.len ? ", (" : "(");
            lm_quote_literal(&sync, t->nspname);
            put_s(&sync, ", ");
            lm_quote_literal(&sync, t->relname);
            put_s(&sync, ", ");
            lm_quote_literal(&sync, lsn);
            put_s(&sync, ", ");
            lm_quote_literal(&sync, r->snapshot_id);
            put_s(&sync, ")");
        }
    }
    if (sync.len) {
        char *sql;
        lm_buf_u8(&sync, '\0');
        sql = lm_psprintf("INSERT INTO lm.sync (nspname, relname, sync_lsn, snapshot) VALUES %s"
                          " ON CONFLICT (nspname, relname) DO UPDATE SET sync_lsn = EXCLUDED.sync_lsn,"
                          " snapshot = EXCLUDED.snapshot, updated_at = clock_timestamp()",
                          (char *)sync.data);
        lm_exec_cmd(target, LM_EXIT_SERVER, sql);
        free(sql);
    }
    free(sync.data);
    if (skipped)
        lm_info("%d table%s finished by an earlier run, left as they are", skipped,
                skipped == 1 ? "" : "s");
    if (reset)
        lm_info("%d unfinished table%s reloaded whole", reset, reset == 1 ? "" : "s");
    PQclear(done);
}

void check_roles(run *r, PGconn *src, PGconn *tgt)
{
    const options *o = r->o;
    lm_buf b = {0};
    PGresult *res, *have;
    int missing = 0;
    char *cond;

    /* the namespaces in scope, the classes in scope, and what lives there */
    if (o->ntables) {
        lm_buf ids = {0};
        put_s(&ids, "ARRAY[0");
        for (int i = 0; i < r->ntables; i++) {
            char tmp[32];
            snprintf(tmp, sizeof tmp, ",%u", r->tables[i].oid);
            put_s(&ids, tmp);
        }
        put_s(&ids, "]::oid[]");
        lm_buf_u8(&ids, '\0');
        cond = lm_psprintf(
            "WITH sel AS (SELECT unnest(%s) AS oid),"
            " cls AS (SELECT c.oid, c.relowner, c.relacl FROM pg_class c"
            " WHERE c.oid IN (SELECT oid FROM sel)"
            " OR c.oid IN (SELECT a.relid FROM sel, pg_partition_ancestors(sel.oid) a)"
            " OR c.oid IN (SELECT d.objid FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
            "   AND d.deptype = 'a' AND d.refobjid IN (SELECT oid FROM sel)))"
            " SELECT DISTINCT ro.rolname FROM ("
            " SELECT relowner AS r FROM cls"
            " UNION SELECT (aclexplode(relacl)).grantee FROM cls WHERE relacl IS NOT NULL"
            " ) x JOIN pg_roles ro ON ro.oid = x.r ORDER BY 1", (char *)ids.data);
        put_s(&b, cond);
        free(cond);
        free(ids.data);
    } else {
        char *sc = NULL;
        if (o->nschemas) {
            lm_buf s = {0};
            put_s(&s, "(false");
            for (int i = 0; i < o->nschemas; i++) {
                char *re = pattern_regex(o->schemas[i], NULL);
                put_s(&s, " OR n.nspname ~ ");
                lm_quote_literal(&s, re);
                free(re);
            }
            put_s(&s, ")");
            lm_buf_u8(&s, '\0');
            sc = (char *)s.data;
        }
        cond = lm_psprintf(
            "WITH ns AS (SELECT n.oid, n.nspowner, n.nspacl FROM pg_namespace n"
            " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'lm')"
            " AND n.nspname !~ '^pg_(toast|temp)' AND %s"
            " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass"
            "   AND d.objid = n.oid AND d.deptype = 'e'))"
            " SELECT DISTINCT ro.rolname FROM ("
            " SELECT nspowner AS r FROM ns"
            " UNION SELECT (aclexplode(nspacl)).grantee FROM ns WHERE nspacl IS NOT NULL"
            " UNION SELECT relowner FROM pg_class WHERE relnamespace IN (SELECT oid FROM ns)"
            " UNION SELECT (aclexplode(relacl)).grantee FROM pg_class"
            "   WHERE relnamespace IN (SELECT oid FROM ns) AND relacl IS NOT NULL"
            " UNION SELECT (aclexplode(a.attacl)).grantee FROM pg_attribute a JOIN pg_class c"
            "   ON c.oid = a.attrelid WHERE c.relnamespace IN (SELECT oid FROM ns) AND a.attacl IS NOT NULL"
            " UNION SELECT proowner FROM pg_proc WHERE pronamespace IN (SELECT oid FROM ns)"
            " UNION SELECT (aclexplode(proacl)).grantee FROM pg_proc"
            "   WHERE pronamespace IN (SELECT oid FROM ns) AND proacl IS NOT NULL"
            " UNION SELECT typowner FROM pg_type WHERE typnamespace IN (SELECT oid FROM ns)"
            " UNION SELECT (aclexplode(typacl)).grantee FROM pg_type"
            "   WHERE typnamespace IN (SELECT oid FROM ns) AND typacl IS NOT NULL"
            " UNION SELECT defaclrole FROM pg_default_acl"
            " UNION SELECT (aclexplode(defaclacl)).grantee FROM pg_default_acl"
            " UNION SELECT lomowner FROM pg_largeobject_metadata"
            " ) x JOIN pg_roles ro ON ro.oid = x.r ORDER BY 1",
            sc ? sc : "true");
        put_s(&b, cond);
        free(cond);
        free(sc);
    }
    lm_buf_u8(&b, '\0');
    res = lm_exec(src, LM_EXIT_SERVER, (char *)b.data);
    have = lm_exec(tgt, LM_EXIT_SERVER, "SELECT rolname FROM pg_roles");
    for (int i = 0; i < PQntuples(res); i++) {
        const char *role = PQgetvalue(res, i, 0);
        bool found = false;
        for (int k = 0; k < PQntuples(have) && !found; k++)
            found = strcmp(PQgetvalue(have, k, 0), role) == 0;
        if (!found) {
            if (!missing)
                lm_error("roles the schema needs (owners, grantees) do not exist on the target");
            lm_detail("missing role: %s", role);
            missing++;
        }
    }
    PQclear(have);
    PQclear(res);
    free(b.data);
    if (missing) {
        lm_hint("Create the roles on the target (pg_dumpall --roles-only on the source lists them), "
                "or run with --no-owner to restore without owners and privileges.");
        exit(LM_EXIT_PREFLIGHT);
    }
}

/* One source column of a planned table. */
typedef struct srccol {
    const char *name, *type;
    bool generated;
} srccol;

/* t is a TimescaleDB hypertable on the target (one without chunks yet
 * has no children: TRUNCATE ONLY would be refused) */
static bool target_hypertable(PGconn *tgt, const table *t)
{
    const char *p[2] = {t->nspname, t->relname};
    char *v = lm_query_value(tgt, LM_EXIT_SERVER,
                             "SELECT to_regclass('_timescaledb_catalog.hypertable') IS NOT NULL");
    bool yes = false;
    if (v && v[0] == 't') {
        PGresult *res = lm_execp(tgt, LM_EXIT_SERVER,
                                 "SELECT 1 FROM _timescaledb_catalog.hypertable WHERE schema_name = $1"
                                 " AND table_name = $2", 2, p);
        yes = PQntuples(res) > 0;
        PQclear(res);
    }
    free(v);
    return yes;
}

void check_target_tables(run *r, PGconn *src, PGconn *tgt)
{
    lm_buf ids = {0};
    PGresult *scols;
    int problems = 0, nrows, row = 0;
    bool have_copy;

    put_s(&ids, "{");
    for (int i = 0; i < r->ntables; i++) {
        char tmp[16];
        snprintf(tmp, sizeof tmp, "%s%u", i ? "," : "", r->tables[i].oid);
        put_s(&ids, tmp);
    }
    put_s(&ids, "}");
    lm_buf_u8(&ids, '\0');
    {
        const char *p[1] = {(char *)ids.data};
        scols = lm_execp(src, LM_EXIT_SERVER,
                         "SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod),"
                         " a.attgenerated <> '' FROM pg_attribute a WHERE a.attrelid = ANY ($1::oid[])"
                         " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum", 1, p);
    }
    nrows = PQntuples(scols);
    {
        char *v = lm_query_value(tgt, LM_EXIT_SERVER, "SELECT to_regclass('lm.copy') IS NOT NULL");
        have_copy = v && v[0] == 't';
        free(v);
    }

    for (int pass = 0; pass < r->ntables; pass++) {
        table *t = NULL;
        srccol *sc = NULL;
        int nsc = 0;
        PGresult *tc;
        const char *p[2];
        int ntc;

        t = &r->tables[pass];
        sc = lm_malloc((size_t)(nrows ? nrows : 1) * sizeof *sc);
        for (row = 0; row < nrows; row++)
            if ((unsigned)strtoul(PQgetvalue(scols, row, 0), NULL, 10) == t->oid) {
                sc[nsc].name = PQgetvalue(scols, row, 1);
                sc[nsc].type = PQgetvalue(scols, row, 2);
                sc[nsc].generated = PQgetvalue(scols, row, 3)[0] == 't';
                nsc++;
            }

        p[0] = t->nspname;
        p[1] = t->relname;
        tc = lm_execp(tgt, LM_EXIT_SERVER,
                      "SELECT c.relkind = 'p' OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid)"
                      "  OR EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal),"
                      " a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
                      " a.atthasdef OR a.attidentity <> '', a.attgenerated <> ''"
                      " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                      " LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
                      " WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')"
                      " ORDER BY a.attnum", 2, p);
        ntc = PQntuples(tc);
        if (ntc == 0) {
            lm_error("table %s does not exist on the target", t->qname);
            problems++;
            goto next;
        }
        t->routed = PQgetvalue(tc, 0, 0)[0] == 't' || target_hypertable(tgt, t);
        for (int s = 0; s < nsc; s++) {
            int k;
            for (k = 0; k < ntc; k++)
                if (!PQgetisnull(tc, k, 1) && strcmp(PQgetvalue(tc, k, 1), sc[s].name) == 0)
                    break;
            if (k == ntc) {
                lm_error("column \"%s\" (%s) of table %s is missing on the target", sc[s].name, sc[s].type,
                         t->qname);
                problems++;
                continue;
            }
            if (sc[s].generated != (PQgetvalue(tc, k, 5)[0] == 't')) {
                lm_error("column \"%s\" of table %s is generated on the %s only", sc[s].name, t->qname,
                         sc[s].generated ? "source" : "target");
                problems++;
            } else if (strcmp(sc[s].type, PQgetvalue(tc, k, 2)) != 0) {
                lm_warning("column \"%s\" of table %s is %s on the source and %s on the target: "
                           "copied as text, for the target to convert", sc[s].name, t->qname, sc[s].type,
                           PQgetvalue(tc, k, 2));
                t->binary = false;
            }
        }
        for (int k = 0; k < ntc; k++) {
            bool found = false;
            if (PQgetisnull(tc, k, 1))
                continue;
            for (int s = 0; s < nsc && !found; s++)
                found = strcmp(PQgetvalue(tc, k, 1), sc[s].name) == 0;
            if (!found && PQgetvalue(tc, k, 3)[0] == 't' && PQgetvalue(tc, k, 4)[0] != 't' &&
                PQgetvalue(tc, k, 5)[0] != 't') {
                lm_error("column \"%s\" of table %s exists on the target only, is NOT NULL and has no "
                         "default: no row could be written", PQgetvalue(tc, k, 1), t->qname);
                problems++;
            }
        }
        /* rows no lm.copy row accounts for are someone else's: the copy
         * would truncate them (a whole table) or add to them (a split one) */
        {
            char *sql = lm_psprintf("SELECT EXISTS (SELECT 1 FROM %s)%s", t->qname,
                                    have_copy ? " AND NOT EXISTS (SELECT 1 FROM lm.copy WHERE nspname = $1"
                                                " AND relname = $2)" : "");
            PGresult *e = lm_execp(tgt, LM_EXIT_SERVER, sql, have_copy ? 2 : 0, have_copy ? p : NULL);
            if (PQgetvalue(e, 0, 0)[0] == 't') {
                lm_error("table %s on the target holds rows that no earlier lm-snapshot run copied", t->qname);
                problems++;
            }
            PQclear(e);
            free(sql);
        }
    next:
        PQclear(tc);
        free(sc);
    }
    PQclear(scols);
    free(ids.data);
    if (problems) {
        lm_detail("--target-schema=existing copies into the target's own tables: each needs every "
                  "column of the source's (by name), its other columns a default or NULL, and no rows");
        lm_hint("Change the target's tables (ALTER TABLE, TRUNCATE), or migrate into an empty "
                "database with --target-schema=restore.");
        exit(LM_EXIT_PREFLIGHT);
    }
    lm_info("%d table%s on the target fit the source's", r->ntables, r->ntables == 1 ? "" : "s");
}
