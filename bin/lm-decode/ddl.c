#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ddl.h"
#include "exitcodes.h"
#include "log.h"
#include "pgconn.h"

static uint32_t ddl_relid;       /* 0: no DDL capture on the source */
static lm_relation ddl_rel;      /* its columns, from its relation record */
static bool have_rel;
static uint64_t n_left_out;

/* The table counts only when the capture that writes it is in place and
 * was made by a superuser: the event trigger (only a superuser can create
 * one) calls lm.ddl_capture(), a SECURITY DEFINER function owned by the
 * owner of lm.ddl_log and of schema lm, a superuser.  A role that made
 * itself a schema "lm" with a table "ddl_log" has none of that. */
static const char relid_sql[] =
    "SELECT c.oid FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_catalog.pg_roles o ON o.oid = c.relowner"
    " JOIN pg_catalog.pg_event_trigger e ON e.evtname = 'lm_ddl_end'"
    " JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid"
    " WHERE n.nspname = 'lm' AND c.relname = 'ddl_log' AND c.relkind = 'r'"
    " AND o.rolsuper AND n.nspowner = c.relowner AND p.proowner = c.relowner"
    " AND p.pronamespace = n.oid AND p.proname = 'ddl_capture' AND p.prosecdef"
    " AND e.evtenabled <> 'D'";

void ddl_setup(PGconn *conn, bool initial)
{
    PGresult *res;
    char *err = NULL;
    uint32_t relid = 0;

    if (initial)
        res = lm_exec(conn, LM_EXIT_SERVER, relid_sql);
    else if (!(res = lm_exec_try(conn, relid_sql, &err))) {
        lm_warning("could not look up the DDL capture again: %s", err);
        free(err);
        return;
    }
    if (PQntuples(res) == 1)
        relid = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (relid != ddl_relid) {
        if (relid)
            lm_info("DDL capture on the source: rows of lm.ddl_log (OID %u) become DDL records", relid);
        else if (ddl_relid)
            lm_warning("the DDL capture on the source is gone: schema changes are no longer captured");
        if (have_rel)
            lm_relation_free(&ddl_rel);
        have_rel = false;
    }
    ddl_relid = relid;
}

bool ddl_relation(const lm_record *r)
{
    if (ddl_relid && r->u.rel.relid == ddl_relid) {
        if (have_rel)
            lm_relation_free(&ddl_rel);
        ddl_rel = lm_relation_dup(&r->u.rel);
        have_rel = true;
        return true;
    }
    if (ddl_relid && strcmp(r->u.rel.nspname, "lm") == 0 && strcmp(r->u.rel.relname, "ddl_log") == 0)
        lm_fatal(LM_EXIT_SERVER, "relation lm.ddl_log in the stream has OID %u, but the DDL capture's "
                 "table has OID %u: its rows are no DDL", r->u.rel.relid, ddl_relid);
    return false;
}

/* The text of column name of the capture row, or exits. */
static const char *column(const lm_tuple *t, const char *name, lm_arena *a)
{
    for (uint32_t i = 0; i < ddl_rel.natts && i < t->ncols; i++) {
        const lm_value *v = &t->cols[i];
        if (strcmp(ddl_rel.cols[i].name, name) != 0)
            continue;
        if (v->kind != 't')
            break;
        return lm_arena_strndup(a, v->data, v->len);
    }
    lm_fatal(LM_EXIT_SERVER, "a row of lm.ddl_log lacks a text value for column \"%s\"", name);
}

int ddl_change(lm_record *r, lm_record *out, lm_arena *a)
{
    if (!ddl_relid)
        return -1;
    switch (r->type) {
    case LM_REC_INSERT:
        if (r->u.insert.relid != ddl_relid)
            return -1;
        if (!have_rel)
            lm_fatal(LM_EXIT_SERVER, "a row of lm.ddl_log before its relation message");
        memset(out, 0, sizeof *out);
        out->type = LM_REC_DDL;
        out->u.ddl.seq = strtoull(column(&r->u.insert.newtup, "seq", a), NULL, 10);
        out->u.ddl.tag = column(&r->u.insert.newtup, "tag", a);
        out->u.ddl.search_path = column(&r->u.insert.newtup, "search_path", a);
        out->u.ddl.role = column(&r->u.insert.newtup, "role", a);
        out->u.ddl.session_role = column(&r->u.insert.newtup, "session_role", a);
        out->u.ddl.command = column(&r->u.insert.newtup, "command", a);
        out->u.ddl.objects = column(&r->u.insert.newtup, "objects", a);
        lm_debug("DDL %" PRIu64 ": %s", out->u.ddl.seq, out->u.ddl.tag);
        return 1;
    case LM_REC_UPDATE:
    case LM_REC_DELETE:
        if ((r->type == LM_REC_UPDATE ? r->u.update.relid : r->u.del.relid) != ddl_relid)
            return -1;
        /* the log's owner tidying it: no schema change */
        if (n_left_out++ == 0)
            lm_info("left out an update or delete of lm.ddl_log (only its inserts are DDL)");
        return 0;
    case LM_REC_TRUNCATE: {
        uint32_t n = 0;
        for (uint32_t i = 0; i < r->u.truncate.nrels; i++)
            if (r->u.truncate.relids[i] != ddl_relid)
                r->u.truncate.relids[n++] = r->u.truncate.relids[i];
        if (n == r->u.truncate.nrels)
            return -1;
        r->u.truncate.nrels = n;
        return n ? -1 : 0;
    }
    default:
        return -1;
    }
}
