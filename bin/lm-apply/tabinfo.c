/* lm-apply's target side: what the target says of each table of the
 * stream (its columns, types, key, unique indexes, partitioning), queried
 * once per definition and kept in the relcache entry; the tables' sync
 * positions (lm.sync); the statements prepared per table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "lsn.h"
#include "pgconn.h"
#include "state.h"
#include "target_int.h"

/* The relcache's callback has no session argument: the tabinfo points to
 * its own, where its prepared statements wait to be deallocated. */
void tgt_free_tabinfo(void *p)
{
    tabinfo *ti = p;
    apply_target *t;
    if (!ti || --ti->refs > 0)
        return;
    t = ti->t;
    for (size_t i = 0; i < t->ntabs; i++)
        if (t->tabs[i] == ti) {
            t->tabs[i] = t->tabs[--t->ntabs];
            break;
        }
    lm_relation_free(&ti->shape);
    for (uint32_t i = 0; i < ti->natts; i++) {
        free(ti->colq[i]);
        free(ti->coltype[i]);
    }
    free(ti->colq);
    free(ti->coltype);
    free(ti->col_eq);
    free(ti->col_always);
    free(ti->extra_cols);
    free(ti->extra_sel);
    free(ti->key);
    for (size_t i = 0; i < ti->nstmts; i++) {
        /* the session keeps a prepared statement until it is deallocated */
        if (t->n_unused == t->cap_unused) {
            t->cap_unused = t->cap_unused ? t->cap_unused * 2 : 64;
            t->unused = lm_realloc(t->unused, t->cap_unused * sizeof *t->unused);
        }
        memcpy(t->unused[t->n_unused++], ti->stmts[i].name, sizeof *t->unused);
        free(ti->stmts[i].key);
    }
    free(ti->stmts);
    free(ti);
}

void tgt_load_sync(apply_target *t)
{
    PGresult *res;
    for (size_t i = 0; i < t->nsyncs; i++) {
        free(t->syncs[i].nsp);
        free(t->syncs[i].rel);
    }
    free(t->syncs);
    t->syncs = NULL;
    t->nsyncs = 0;
    if (!lm_state_exists(t->conn))
        return;
    res = lm_exec(t->conn, LM_EXIT_SERVER, "SELECT nspname, relname, sync_lsn::text FROM lm.sync");
    t->nsyncs = (size_t)PQntuples(res);
    t->syncs = lm_malloc(sizeof *t->syncs * (t->nsyncs + 1));
    for (size_t i = 0; i < t->nsyncs; i++) {
        t->syncs[i].nsp = lm_strdup(PQgetvalue(res, (int)i, 0));
        t->syncs[i].rel = lm_strdup(PQgetvalue(res, (int)i, 1));
        lm_lsn_parse(PQgetvalue(res, (int)i, 2), &t->syncs[i].lsn);
    }
    PQclear(res);
}

/* The target lacks a table or column: nothing failed on the server yet, so
 * the complete source transactions before this one can still be committed
 * (the hook) before exiting. */
static void target_mismatch_exit(apply_target *t)
{
    void (*hook)(void *) = t->mismatch_hook;
    t->mismatch_hook = NULL;
    if (hook)
        hook(t->mismatch_arg);
    exit(LM_EXIT_PREFLIGHT);
}

tabinfo *tab_info(apply_target *t, lm_relentry *e)
{
    tabinfo *ti = e->user;
    const char *p[3];
    char replident[2];
    PGresult *res;
    uint32_t *pk = NULL;
    uint32_t npk = 0;
    bool pk_complete = true;

    /* (a new definition, or a DDL's, has freed the entry's last one) */
    if (ti)
        return ti;
    /* the chunks of a TimescaleDB hypertable come as relations of their
     * own, one definition under the hypertable's name: they share what the
     * target says of it and its prepared statements (made once a table,
     * not once a chunk) */
    for (size_t i = 0; i < t->ntabs; i++)
        if (lm_relation_same(&t->tabs[i]->shape, &e->rel)) {
            ti = t->tabs[i];
            ti->refs++;
            e->user = ti;
            return ti;
        }
    ti = lm_malloc(sizeof *ti);
    memset(ti, 0, sizeof *ti);
    ti->t = t;
    ti->refs = 1;
    ti->shape = lm_relation_dup(&e->rel);
    e->user = ti;
    ti->natts = e->rel.natts;
    ti->colq = lm_malloc(sizeof(char *) * (ti->natts + 1));
    ti->coltype = lm_malloc(sizeof(char *) * (ti->natts + 1));
    /* a mismatch exit may free this tabinfo half read (the group's earlier
     * definition put back): what is not read yet must be NULL */
    memset(ti->colq, 0, sizeof(char *) * (ti->natts + 1));
    memset(ti->coltype, 0, sizeof(char *) * (ti->natts + 1));
    ti->col_eq = lm_malloc(sizeof(bool) * (ti->natts + 1));
    ti->col_always = lm_malloc(sizeof(bool) * (ti->natts + 1));
    ti->key = lm_malloc(sizeof(uint32_t) * (ti->natts + 1));
    pk = lm_malloc(sizeof(uint32_t) * (ti->natts + 1));

    p[0] = e->rel.nspname;
    p[1] = e->rel.relname;
    replident[0] = (char)e->rel.replident;
    replident[1] = '\0';
    p[2] = replident;
    if (t->pend.copying)
        tgt_flush_pending(t);
    res = tgt_query(t,
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "  EXISTS (SELECT 1 FROM pg_operator o WHERE o.oprname = '=' AND o.oprleft = a.atttypid "
        "          AND o.oprright = a.atttypid), "
        "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary "
        "          AND a.attnum = ANY (i.indkey)), "
        /* unique indexes other than the one the stream's key matches: a
         * batched UPDATE could pass through a transient duplicate there */
        "  (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique "
        "          AND NOT CASE WHEN $3 = 'i' THEN i.indisreplident ELSE i.indisprimary END), "
        /* an identity column GENERATED ALWAYS takes a value only with
         * OVERRIDING SYSTEM VALUE, and never in an UPDATE */
        "  a.attidentity = 'a', a.attgenerated <> '' "
        /* a table without columns (CREATE TABLE t ()) is one row of NULLs */
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = $1 AND c.relname = $2 ORDER BY a.attnum",
        3, p);
    if (PQntuples(res) == 0) {
        lm_error("table %s does not exist on the target", e->display);
        lm_detail("nothing of the transaction that changes it was applied");
        lm_hint("Create it on the target (lm-snapshot copies the schema), then restart lm-apply.");
        target_mismatch_exit(t);
    }
    for (uint32_t i = 0; i < ti->natts; i++) {
        const char *name = e->rel.cols[i].name;
        int row = -1;
        for (int k = 0; k < PQntuples(res); k++)
            if (!PQgetisnull(res, k, 0) && strcmp(PQgetvalue(res, k, 0), name) == 0)
                row = k;
        if (row < 0) {
            lm_error("column \"%s\" of table %s does not exist on the target", name, e->display);
            lm_detail("nothing of the transaction that changes it was applied");
            lm_hint("The source's table changed (ALTER TABLE): make the same change on the "
                    "target, then restart lm-apply.");
            target_mismatch_exit(t);
        }
        ti->colq[i] = lm_ident(name);
        ti->coltype[i] = lm_strdup(PQgetvalue(res, row, 1));
        ti->col_eq[i] = PQgetvalue(res, row, 2)[0] == 't';
        ti->col_always[i] = PQgetvalue(res, row, 5)[0] == 't';
        ti->any_always |= ti->col_always[i];
        if (PQgetvalue(res, row, 3)[0] == 't')
            pk[npk++] = i;
        if (e->rel.cols[i].flags & LM_COL_KEY)
            ti->key[ti->nkey++] = i;
    }
    {
        /* every primary key column of the target must be in the stream */
        int target_pk = 0;
        for (int k = 0; k < PQntuples(res); k++)
            if (PQgetvalue(res, k, 3)[0] == 't')
                target_pk++;
        pk_complete = target_pk > 0 && (uint32_t)target_pk == npk;
    }
    ti->other_unique = PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 4), "0") != 0;
    {
        /* what a row moved by delete and insert keeps besides the stream's
         * columns */
        lm_buf b = {0}, sel = {0};
        for (int k = 0; k < PQntuples(res); k++) {
            bool in_stream = false;
            char *q;
            if (PQgetisnull(res, k, 0) || PQgetvalue(res, k, 6)[0] == 't')
                continue;
            for (uint32_t i = 0; i < ti->natts && !in_stream; i++)
                in_stream = strcmp(e->rel.cols[i].name, PQgetvalue(res, k, 0)) == 0;
            if (in_stream)
                continue;
            q = lm_ident(PQgetvalue(res, k, 0));
            lm_buf_puts(&b, ", ");
            lm_buf_put(&b, q, strlen(q));
            lm_buf_puts(&sel, ", lm_moved.");
            lm_buf_put(&sel, q, strlen(q));
            free(q);
        }
        lm_buf_u8(&b, '\0');
        lm_buf_u8(&sel, '\0');
        ti->extra_cols = (char *)b.data;
        ti->extra_sel = (char *)sel.data;
    }
    PQclear(res);
    /* UPDATE ONLY, DELETE FROM ONLY of a partitioned table touch no row,
     * TRUNCATE ONLY of one is an error; a TimescaleDB hypertable keeps its
     * rows in chunks that inherit from it (older TimescaleDB marks one with
     * its ts_insert_blocker trigger; its catalog says so in every version) */
    res = tgt_query(t,
                    "SELECT c.relkind = 'p', EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid"
                    " AND t.tgname = 'ts_insert_blocker'),"
                    " EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
                    " FROM pg_class c JOIN pg_namespace n"
                    " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                    2, p);
    if (PQntuples(res) == 1) {
        ti->routed = PQgetvalue(res, 0, 0)[0] == 't';
        ti->hypertable = PQgetvalue(res, 0, 1)[0] == 't';
        if (!ti->routed && !ti->hypertable && PQgetvalue(res, 0, 2)[0] == 't') {
            PQclear(res);
            res = tgt_query(t,
                            "SELECT EXISTS (SELECT 1 FROM _timescaledb_catalog.hypertable"
                            " WHERE schema_name = $1 AND table_name = $2)", 2, p);
            ti->hypertable = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
        }
        ti->routed = ti->routed || ti->hypertable;
    }
    PQclear(res);

    if (e->rel.replident == 'f') {
        /* the old tuple carries every column: a primary key on the target
         * finds the row by index; without one, match all columns */
        if (pk_complete) {
            memcpy(ti->key, pk, npk * sizeof *pk);
            ti->nkey = npk;
        } else {
            ti->nkey = 0;
            ti->by_ctid = true;
        }
    } else if (ti->nkey == 0 && e->rel.replident != 'n') {
        ti->by_ctid = true;
    }
    free(pk);
    for (size_t i = 0; i < t->nsyncs; i++)
        if (strcmp(t->syncs[i].nsp, e->rel.nspname) == 0 &&
            strcmp(t->syncs[i].rel, e->rel.relname) == 0)
            ti->sync_lsn = t->syncs[i].lsn;
    /* whole now: another entry of this definition may share it */
    if (t->ntabs == t->cap_tabs) {
        t->cap_tabs = t->cap_tabs ? t->cap_tabs * 2 : 16;
        t->tabs = lm_realloc(t->tabs, t->cap_tabs * sizeof *t->tabs);
    }
    t->tabs[t->ntabs++] = ti;
    return ti;
}

bool tgt_change_wanted(apply_target *t, lm_relentry *e, uint64_t commit_lsn)
{
    tabinfo *ti = tab_info(t, e);
    return ti->sync_lsn == 0 || commit_lsn >= ti->sync_lsn;
}

const char *tab_stmt(const tabinfo *ti, const char *key)
{
    for (size_t i = 0; i < ti->nstmts; i++)
        if (strcmp(ti->stmts[i].key, key) == 0)
            return ti->stmts[i].name;
    return NULL;
}

/* Prepare (once) a statement for this table and key; returns its name. */
const char *tab_prepared(apply_target *t, tabinfo *ti, const char *key, const char *sql,
                         int nparams)
{
    stmt *s;
    const char *name = tab_stmt(ti, key);
    if (name)
        return name;
    while (t->n_unused > 0) {
        char *dsql = lm_psprintf("DEALLOCATE %s", t->unused[--t->n_unused]);
        pl_send_sql(t, dsql, 0, NULL, dsql);
        free(dsql);
    }
    ti->stmts = lm_realloc(ti->stmts, (ti->nstmts + 1) * sizeof *ti->stmts);
    s = &ti->stmts[ti->nstmts++];
    s->key = lm_strdup(key);
    snprintf(s->name, sizeof s->name, "lm%u", ++t->stmt_counter);
    pl_prepare(t, s->name, sql, nparams);
    return s->name;
}

/* Sends a table's prepared statement. On a TimescaleDB hypertable it runs
 * its generic plan: a custom plan is made again at each execution over
 * every chunk (about 20 ms a row with 500 chunks, against 2.5 ms), and the
 * plan cache keeps choosing custom plans because the generic plan's cost
 * counts every chunk, which it excludes at run time. Set for the
 * transaction only (SET LOCAL), and back to auto before another table's
 * statement: a plain table's batches keep plans made for their size, a
 * partitioned one's its plan-time pruning. */
void tab_send(apply_target *t, const tabinfo *ti, const char *name, int n,
              const char *const *vals, const char *desc)
{
    if (ti->hypertable != t->generic_plans) {
        pl_send_sql(t, ti->hypertable ? "SET LOCAL plan_cache_mode = force_generic_plan"
                                      : "SET LOCAL plan_cache_mode = auto",
                    0, NULL, "plan_cache_mode");
        t->generic_plans = ti->hypertable;
    }
    pl_send_prepared(t, name, n, vals, desc);
}

char *tab_columns(const tabinfo *ti, const char *mask)
{
    lm_buf b = {0};
    for (uint32_t i = 0; i < ti->natts; i++) {
        if (mask && mask[i] != '1')
            continue;
        if (b.len)
            lm_buf_puts(&b, ", ");
        lm_buf_put(&b, ti->colq[i], strlen(ti->colq[i]));
    }
    lm_buf_u8(&b, '\0');
    return (char *)b.data;
}
