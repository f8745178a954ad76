/* lm-decode on a TimescaleDB source: each chunk's changes go into the
 * stream under its hypertable's schema and name.
 *
 * lm-slot publishes the chunk schemas whole (TABLES IN SCHEMA), so pgoutput
 * sends a chunk's changes as the chunk's, with a Relation message for its
 * relation id before the first of them. On a Relation message for a relid
 * not seen yet, the source's catalog says, over an ordinary SQL connection
 * of its own, whether that relid is a chunk and of which hypertable: the
 * chunk's row in _timescaledb_catalog.chunk is matched to the relation by
 * its schema and name as pg_class has them for the relid, never by parsing
 * the chunk's name (custom prefixes exist: timescaledb issue 6972). The
 * answer is kept for the run; the chunks that exist at start are loaded in
 * one query, so a chunk dropped later is still known.
 *
 * The record keeps the chunk's relid: consumers key relations by relid, so
 * several relids under one hypertable's name are several definitions of
 * the same table (a chunk's columns may differ in order or dropped columns
 * from another's; they match the hypertable's by name).
 *
 * A chunk can be gone by the time its changes are decoded (a TRUNCATE of
 * its hypertable drops it, drop_chunks). lm-slot also publishes
 * TimescaleDB's chunk catalog, _timescaledb_catalog.chunk, whose rows
 * arrive in the transaction that makes a chunk, before the chunk's first
 * row: they are kept (never written out), and a relation gone from the
 * catalog is found there by the schema and name its Relation message
 * carries, as the catalog had them then.
 *
 * Published schemas carry more than chunks: TimescaleDB's own tables
 * (members of the extension) and internal hypertables. Their Relation
 * records and changes are left out, as are the chunks of a hypertable the
 * publication does not name. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chunkmap.h"
#include "exitcodes.h"
#include "log.h"
#include "pgconn.h"

/* What to do with a relid's records. */
enum {
    CM_PASS = 'p',           /* a table of the user's, written as it is */
    CM_HYPER = 'h',          /* a hypertable: the same */
    CM_MAP = 'm',            /* a chunk: written under its hypertable's name */
    CM_SKIP = 's',           /* not user data: left out */
    CM_GONE = 'g'            /* a chunk gone from the source, of a hypertable unknown */
};

typedef struct cm_entry {
    uint32_t relid;          /* 0: empty slot */
    char what;
    char *nspname;           /* CM_MAP: the hypertable's; CM_GONE: the chunk's */
    char *relname;
} cm_entry;

static bool cm_active;       /* the source has TimescaleDB */
static PGconn *cm_conn;
static char *cm_conninfo;
static char *cm_publication;
static cm_entry *cm_tab;
static size_t cm_cap;        /* a power of two */
static size_t cm_n;

/* The chunk catalog's rows seen in the stream: schema, name, hypertable */
typedef struct cm_hist {
    char *nspname;
    char *relname;
    char *hypertable_id;
} cm_hist;
static cm_hist *cm_hists;
static size_t cm_nhists;
static uint32_t cat_relid;          /* _timescaledb_catalog.chunk in the stream */
static int cat_schema = -1, cat_table = -1, cat_htid = -1;

/* The classification of relations c (pg_class) in n (pg_namespace), with
 * their chunk row ch and hypertable h when they are chunks; $1 is the
 * publication. Columns: oid, nspname, relname, what, hypertable schema,
 * hypertable name. */
#define CM_SELECT \
    "WITH pub AS MATERIALIZED (SELECT schemaname, tablename FROM pg_publication_tables" \
    "  WHERE pubname = $1)" \
    " SELECT c.oid, n.nspname, c.relname," \
    " CASE WHEN ch.id IS NOT NULL THEN" \
    "   CASE WHEN h.schema_name NOT LIKE '\\_timescaledb\\_%' AND EXISTS (SELECT 1 FROM pub" \
    "     WHERE pub.schemaname = h.schema_name AND pub.tablename = h.table_name)" \
    "   THEN 'm' ELSE 's' END" \
    "  WHEN EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass" \
    "   AND d.objid = c.oid AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')" \
    "   OR n.nspname LIKE '\\_timescaledb\\_%' THEN 's'" \
    "  WHEN EXISTS (SELECT 1 FROM _timescaledb_catalog.hypertable ht" \
    "   WHERE ht.schema_name = n.nspname AND ht.table_name = c.relname) THEN 'h'" \
    "  ELSE 'p' END," \
    " h.schema_name, h.table_name" \
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace" \
    " LEFT JOIN _timescaledb_catalog.chunk ch" \
    "  ON ch.schema_name = n.nspname AND ch.table_name = c.relname" \
    " LEFT JOIN _timescaledb_catalog.hypertable h ON h.id = ch.hypertable_id"

static size_t cm_hash(uint32_t relid)
{
    return (size_t)(relid * 2654435761u) & (cm_cap - 1);
}

static cm_entry *cm_find(uint32_t relid)
{
    if (!cm_cap)
        return NULL;
    for (size_t i = cm_hash(relid);; i = (i + 1) & (cm_cap - 1)) {
        if (cm_tab[i].relid == relid)
            return &cm_tab[i];
        if (cm_tab[i].relid == 0)
            return NULL;
    }
}

static cm_entry *cm_insert(uint32_t relid);

static void cm_grow(void)
{
    cm_entry *old = cm_tab;
    size_t oldcap = cm_cap;

    cm_cap = cm_cap ? cm_cap * 2 : 256;
    cm_tab = lm_malloc(sizeof *cm_tab * cm_cap);
    memset(cm_tab, 0, sizeof *cm_tab * cm_cap);
    cm_n = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].relid)
            *cm_insert(old[i].relid) = old[i];
    free(old);
}

/* The entry for relid, made empty if new. */
static cm_entry *cm_insert(uint32_t relid)
{
    cm_entry *e;
    size_t i;

    if ((e = cm_find(relid)))
        return e;
    if ((cm_n + 1) * 2 > cm_cap)
        cm_grow();
    for (i = cm_hash(relid); cm_tab[i].relid; i = (i + 1) & (cm_cap - 1))
        ;
    cm_tab[i].relid = relid;
    cm_n++;
    return &cm_tab[i];
}

/* Keep row i of a CM_SELECT result. */
static cm_entry *cm_store(PGresult *res, int i)
{
    cm_entry *e = cm_insert((uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10));

    free(e->nspname);
    free(e->relname);
    e->what = PQgetvalue(res, i, 3)[0];
    e->nspname = e->what == CM_MAP ? lm_strdup(PQgetvalue(res, i, 4)) : NULL;
    e->relname = e->what == CM_MAP ? lm_strdup(PQgetvalue(res, i, 5)) : NULL;
    if (e->what == CM_MAP)
        lm_debug("relation %s.%s (relid %u) is a chunk of hypertable %s.%s",
                 PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), e->relid, e->nspname, e->relname);
    return e;
}

/* A query on the look-up connection, with a few reconnections when the
 * connection was lost (the source restarting: the replication connection
 * has its own retries). */
static PGresult *cm_query(const char *sql, int nparams, const char *const *params)
{
    for (int attempt = 0;; attempt++) {
        char *err = NULL;
        if (cm_conn) {
            PGresult *res = PQexecParams(cm_conn, sql, nparams, NULL, params, NULL, NULL, 0);
            if (PQresultStatus(res) == PGRES_TUPLES_OK)
                return res;
            if (PQstatus(cm_conn) == CONNECTION_OK || attempt >= 10) {
                lm_log_result_error(res, cm_conn, sql);
                PQclear(res);
                exit(LM_EXIT_SERVER);
            }
            PQclear(res);
            lm_warning("lost the connection for the chunk look-ups; reconnecting");
        } else if (attempt >= 10)
            lm_fatal(LM_EXIT_CONNECT, "could not connect to the source for the chunk look-ups");
        {
            struct timespec ts = {attempt < 3 ? 0 : 2, attempt < 3 ? 500000000 : 0};
            nanosleep(&ts, NULL);
        }
        PQfinish(cm_conn);
        cm_conn = lm_connect_try(cm_conninfo, "source", 0, &err);
        if (!cm_conn)
            lm_warning("%s", err);
        free(err);
    }
}

void chunkmap_init(const char *conninfo, const char *publication)
{
    const char *params[1] = {publication};
    char *ver;
    PGresult *res;

    cm_conn = lm_connect(conninfo, "source", 0);
    ver = lm_query_value(cm_conn, LM_EXIT_SERVER,
                         "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'");
    if (!ver) {
        PQfinish(cm_conn);
        cm_conn = NULL;
        return;
    }
    cm_active = true;
    cm_conninfo = lm_strdup(conninfo);
    cm_publication = lm_strdup(publication);
    res = cm_query(CM_SELECT " WHERE c.relkind IN ('r', 'p', 'f') AND (ch.id IS NOT NULL"
                   " OR n.nspname LIKE '\\_timescaledb\\_%' OR EXISTS (SELECT 1 FROM pg_depend d"
                   "  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid"
                   "  AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'))",
                   1, params);
    for (int i = 0; i < PQntuples(res); i++)
        cm_store(res, i);
    lm_info("the source has TimescaleDB %s: chunks' changes are written under their "
            "hypertables' names (%d relations known at start)", ver, PQntuples(res));
    PQclear(res);
    free(ver);
}

/* The entry for a relation not seen yet, from the catalog as it is now. */
static cm_entry *cm_lookup(const lm_relation *rel)
{
    char oid[16];
    const char *params[2] = {cm_publication, oid};
    PGresult *res;
    cm_entry *e;

    snprintf(oid, sizeof oid, "%u", rel->relid);
    res = cm_query(CM_SELECT " WHERE c.oid = $2::oid", 2, params);
    if (PQntuples(res) == 1) {
        e = cm_store(res, 0);
        PQclear(res);
        return e;
    }
    PQclear(res);

    /* gone: the chunk catalog's rows seen in the stream may know it */
    for (size_t i = cm_nhists; i-- > 0;) {
        if (strcmp(cm_hists[i].nspname, rel->nspname) != 0 ||
            strcmp(cm_hists[i].relname, rel->relname) != 0)
            continue;
        {
            const char *p[2] = {cm_publication, cm_hists[i].hypertable_id};
            res = cm_query("WITH pub AS MATERIALIZED (SELECT schemaname, tablename"
                           "  FROM pg_publication_tables WHERE pubname = $1)"
                           " SELECT h.id, '', '', CASE WHEN h.schema_name NOT LIKE '\\_timescaledb\\_%'"
                           "  AND EXISTS (SELECT 1 FROM pub WHERE pub.schemaname = h.schema_name"
                           "   AND pub.tablename = h.table_name) THEN 'm' ELSE 's' END,"
                           " h.schema_name, h.table_name"
                           " FROM _timescaledb_catalog.hypertable h WHERE h.id = $2::int", 2, p);
        }
        if (PQntuples(res) == 1) {
            e = cm_insert(rel->relid);
            free(e->nspname);
            free(e->relname);
            e->what = PQgetvalue(res, 0, 3)[0];
            e->nspname = e->what == CM_MAP ? lm_strdup(PQgetvalue(res, 0, 4)) : NULL;
            e->relname = e->what == CM_MAP ? lm_strdup(PQgetvalue(res, 0, 5)) : NULL;
            lm_info("relation %s.%s (relid %s), gone from the source, was a chunk of hypertable "
                    "%s.%s", rel->nspname, rel->relname, oid, PQgetvalue(res, 0, 4),
                    PQgetvalue(res, 0, 5));
            PQclear(res);
            return e;
        }
        PQclear(res);
        break;
    }

    /* gone: harmless for a table of the user's (the stream names it as
     * pgoutput did), but a chunk's hypertable cannot be known any more:
     * its rows changed are an error (cm_gone); a TRUNCATE of its
     * hypertable, which dropped it, is not */
    {
        const char *p[1] = {rel->nspname};
        res = cm_query("SELECT $1 LIKE '\\_timescaledb\\_%' OR EXISTS (SELECT 1 FROM"
                       " _timescaledb_catalog.hypertable WHERE associated_schema_name = $1)",
                       1, p);
        if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
            PQclear(res);
            e = cm_insert(rel->relid);
            free(e->nspname);
            free(e->relname);
            e->what = CM_GONE;
            e->nspname = lm_strdup(rel->nspname);
            e->relname = lm_strdup(rel->relname);
            return e;
        }
        PQclear(res);
    }
    e = cm_insert(rel->relid);
    e->what = CM_PASS;
    return e;
}

/* Rows of a chunk whose hypertable cannot be known: the end. */
static void cm_gone(const cm_entry *e, const char *what)
{
    lm_error("%s of relation %s.%s (relid %u), which no longer exists on the source: a chunk "
             "dropped before lm-decode reached its changes, whose hypertable cannot be known",
             what, e->nspname, e->relname, e->relid);
    lm_detail("Its changes cannot be written under its hypertable's name; nothing past the "
              "last complete transaction was acknowledged.");
    lm_hint("Chunks must not be dropped on the source during a migration (drop_chunks, "
            "retention policies, DROP TABLE of a chunk) before lm-decode has passed their "
            "changes; start the migration again.");
    exit(LM_EXIT_PREFLIGHT);
}

/* The chunk catalog's Relation message: where its columns are. */
static void cat_relation(const lm_relation *rel)
{
    cat_relid = rel->relid;
    cat_schema = cat_table = cat_htid = -1;
    for (uint32_t i = 0; i < rel->natts; i++) {
        if (strcmp(rel->cols[i].name, "schema_name") == 0)
            cat_schema = (int)i;
        else if (strcmp(rel->cols[i].name, "table_name") == 0)
            cat_table = (int)i;
        else if (strcmp(rel->cols[i].name, "hypertable_id") == 0)
            cat_htid = (int)i;
    }
}

static char *text_col(const lm_tuple *t, int i)
{
    if (i < 0 || (uint32_t)i >= t->ncols || t->cols[i].kind != 't')
        return NULL;
    {
        char *s = lm_malloc(t->cols[i].len + 1);
        memcpy(s, t->cols[i].data, t->cols[i].len);
        s[t->cols[i].len] = '\0';
        return s;
    }
}

/* A chunk catalog row, new or changed: keep where it points. */
static void cat_row(const lm_tuple *t)
{
    cm_hist h = {text_col(t, cat_schema), text_col(t, cat_table), text_col(t, cat_htid)};

    if (!h.nspname || !h.relname || !h.hypertable_id) {
        free(h.nspname);
        free(h.relname);
        free(h.hypertable_id);
        return;
    }
    cm_hists = lm_realloc(cm_hists, (cm_nhists + 1) * sizeof *cm_hists);
    cm_hists[cm_nhists++] = h;
}

bool chunkmap_filter(lm_record *r)
{
    cm_entry *e;
    uint32_t relid;

    if (!cm_active)
        return true;
    switch (r->type) {
    case LM_REC_RELATION:
        if (strcmp(r->u.rel.nspname, "_timescaledb_catalog") == 0 &&
            strcmp(r->u.rel.relname, "chunk") == 0) {
            cat_relation(&r->u.rel);
            return false;
        }
        e = cm_find(r->u.rel.relid);
        if (!e)
            e = cm_lookup(&r->u.rel);
        if (e->what == CM_GONE) {
            lm_info("relation %s.%s (relid %u) is gone from the source; its hypertable is not "
                    "known", e->nspname, e->relname, e->relid);
            return false;
        }
        if (e->what == CM_SKIP) {
            lm_info("leaving out relation %s.%s (relid %u): TimescaleDB's or an extension's own "
                    "table, or a chunk of a hypertable the publication does not name",
                    r->u.rel.nspname, r->u.rel.relname, r->u.rel.relid);
            return false;
        }
        if (e->what == CM_MAP) {
            r->u.rel.nspname = e->nspname;
            r->u.rel.relname = e->relname;
        }
        return true;
    case LM_REC_INSERT:
    case LM_REC_UPDATE: {
        /* a row of the chunk catalog (kept, not streamed) */
        bool ins = r->type == LM_REC_INSERT;
        relid = ins ? r->u.insert.relid : r->u.update.relid;
        if (cat_relid && relid == cat_relid) {
            cat_row(ins ? &r->u.insert.newtup : &r->u.update.newtup);
            return false;
        }
        break;
    }
    case LM_REC_DELETE: relid = r->u.del.relid; break;
    case LM_REC_TRUNCATE: {
        /* a TRUNCATE of a hypertable drops its chunks: one gone by now is
         * one of those (with the hypertable in the list, its rows go) */
        uint32_t n = 0;
        const cm_entry *gone = NULL;
        bool hyper = false;
        for (uint32_t i = 0; i < r->u.truncate.nrels; i++) {
            e = cm_find(r->u.truncate.relids[i]);
            if (e && e->what == CM_GONE)
                gone = e;
            hyper |= e && e->what == CM_HYPER;
            if ((!e || (e->what != CM_SKIP && e->what != CM_GONE)) &&
                r->u.truncate.relids[i] != cat_relid)
                r->u.truncate.relids[n++] = r->u.truncate.relids[i];
        }
        if (gone && !hyper)
            cm_gone(gone, "a TRUNCATE");
        r->u.truncate.nrels = n;
        return n > 0;
    }
    default:
        return true;
    }
    if (cat_relid && relid == cat_relid)
        return false;
    e = cm_find(relid);
    if (e && e->what == CM_GONE)
        cm_gone(e, r->type == LM_REC_INSERT ? "an INSERT" : r->type == LM_REC_UPDATE ? "an UPDATE"
                                                                                    : "a DELETE");
    return !e || e->what != CM_SKIP;
}
