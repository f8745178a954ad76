/* lm-apply: replay of the DDL records lm-decode makes from the source's
 * DDL capture (lm-slot create --ddl).
 *
 * A DDL runs at its place among the changes of its source transaction, in
 * the same target transaction, under the role and search_path it ran under
 * on the source (SET LOCAL ROLE, set_config(..., true)), both reset right
 * after.  The loop (lm-apply.c) commits the group's complete transactions
 * before the DDL's transaction and commits that one alone: ALTER TYPE ...
 * ADD VALUE is usable only once committed, and a DDL that fails leaves the
 * origin right before its own transaction.  Being in the transaction that
 * moves the origin, a replayed DDL is never applied twice, whatever is
 * killed when.  CREATE INDEX CONCURRENTLY and DROP INDEX CONCURRENTLY
 * cannot run in a transaction: they are replayed without CONCURRENTLY (the
 * target serves no one during the migration), which keeps that guarantee.
 *
 * What is never replayed, and stops lm-apply with the origin before the
 * transaction (exit 4): a command text of more than one statement (the
 * simple query protocol allows "CREATE TABLE x (); INSERT ..."; the other
 * statements already arrived as row changes, or could run anything), a
 * text that is not the command (DDL run by a function or DO block: the
 * text is the outer statement), CREATE TABLE AS and SELECT INTO (their
 * rows arrive as inserts too), a role the target lacks.  A DDL the target
 * refuses stops it the same way (exit 5). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "lsn.h"
#include "pgconn.h"
#include "sqllex.h"
#include "target_int.h"

static uint64_t *done;           /* --ddl-done */
static size_t ndone;

void tgt_ddl_done(uint64_t seq)
{
    done = lm_realloc(done, (ndone + 1) * sizeof *done);
    done[ndone++] = seq;
}

static bool made_by_hand(uint64_t seq)
{
    for (size_t i = 0; i < ndone; i++)
        if (done[i] == seq)
            return true;
    return false;
}

/* what the target said of any table (columns, types, keys, unique
 * indexes) may have changed: ask again, prepare again */
static void forget_tables(lm_relcache *rels)
{
    for (size_t i = 0; lm_relcache_at(rels, i); i++) {
        lm_relentry *e = lm_relcache_at(rels, i);
        if (e->user) {
            tgt_free_tabinfo(e->user);
            e->user = NULL;
        }
        e->generation++;
    }
}

static void ddl_context(const lm_record *r, uint64_t commit_lsn)
{
    char a[LM_LSN_BUFSZ];
    lm_detail("DDL %" PRIu64 " of the source transaction committed at %s, run by role \"%s\" "
              "(session \"%s\") with search_path \"%s\"", r->u.ddl.seq,
              lm_lsn_format(commit_lsn, a), r->u.ddl.role, r->u.ddl.session_role,
              r->u.ddl.search_path);
    lm_detail("command: %.4000s", r->u.ddl.command);
}

static void refuse(apply_target *t, const lm_record *r, uint64_t commit_lsn, const char *why)
{
    tgt_rollback(t);
    lm_error("cannot replay the %s at this place in the stream: %s", r->u.ddl.tag, why);
    ddl_context(r, commit_lsn);
    lm_detail("Nothing of its source transaction was applied; the origin stays before it.");
    lm_hint("Make the change on the target by hand, then run lm-apply again with --ddl-done=%"
            PRIu64 ": it applies the transaction's row changes without running the DDL "
            "(lm-failures(7), \"A schema change cannot be replayed\").", r->u.ddl.seq);
    exit(LM_EXIT_PREFLIGHT);
}

/* Words a statement may hold between those of its command tag: "CREATE
 * UNIQUE INDEX" has the tag CREATE INDEX, "CREATE OR REPLACE TEMP VIEW"
 * CREATE VIEW, "CREATE CONSTRAINT TRIGGER" CREATE TRIGGER. */
static const char *const filler[] = {
    "or", "replace", "unique", "temp", "temporary", "unlogged", "global", "local",
    "recursive", "trusted", "procedural", "constraint", "default", NULL,
};

/* Whether the statement opens with the words of the command tag, only
 * those fillers between them: the query string is then this command, not
 * an outer statement (SELECT f(), DO ..., CREATE SCHEMA s CREATE TABLE ...
 * for its CREATE TABLE). */
static bool tag_opens(const char *tag, const char *sql)
{
    lm_sqllex lx;
    lm_sqltoken tok;
    const char *w = tag;
    bool first = true;

    lm_sqllex_init(&lx, sql, strlen(sql));
    while (*w) {
        char kw[64];
        size_t n = strcspn(w, " ");
        if (n == 0 || n >= sizeof kw)
            return false;
        memcpy(kw, w, n);
        kw[n] = '\0';
        for (;;) {
            bool skip = false;
            tok = lm_sqllex_next(&lx);
            if (tok.kind != LM_TOK_WORD)
                return false;
            if (lm_sqltok_is(&lx, &tok, kw))
                break;
            for (int i = 0; !first && filler[i] && !skip; i++)
                skip = lm_sqltok_is(&lx, &tok, filler[i]);
            if (!skip)
                return false;
        }
        first = false;
        w += n;
        while (*w == ' ')
            w++;
    }
    return true;
}

/* The command to run: the text, or without its CONCURRENTLY (malloc'd). */
static char *runnable(const char *sql)
{
    lm_sqllex lx;
    lm_sqltoken tok;

    lm_sqllex_init(&lx, sql, strlen(sql));
    for (int i = 0; i < 4; i++) {
        tok = lm_sqllex_next(&lx);
        if (tok.kind != LM_TOK_WORD)
            break;
        if (lm_sqltok_is(&lx, &tok, "concurrently")) {
            char *s = lm_malloc(strlen(sql) + 1);
            memcpy(s, sql, tok.start);
            strcpy(s + tok.start, sql + tok.start + tok.len);
            return s;
        }
    }
    return lm_strdup(sql);
}

static PGresult *run(apply_target *t, const char *sql, int n, const char *const *p)
{
    return PQexecParams(t->conn, sql, n, NULL, p, NULL, NULL, 0);
}

static bool ok(PGresult *res)
{
    return PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
}

void tgt_ddl(apply_target *t, lm_relcache *rels, const lm_record *r, uint64_t commit_lsn)
{
    char first[32];
    int n = lm_sql_statements(r->u.ddl.command, strlen(r->u.ddl.command), first, sizeof first);
    const char *p[1];
    char *sql, *setrole, *ident;
    PGresult *res;

    if (made_by_hand(r->u.ddl.seq)) {
        tgt_flush_pending(t);
        tgt_touch(t);
        lm_info("passed over %s %" PRIu64 " (--ddl-done: made by hand on the target)",
                r->u.ddl.tag, r->u.ddl.seq);
        forget_tables(rels);
        return;
    }
    if (n < 0)
        refuse(t, r, commit_lsn, "its text does not end (an unterminated quote or comment)");
    if (n > 1)
        refuse(t, r, commit_lsn, "its query string holds more than one statement: replayed whole, "
                                 "the other statements would run again");
    if (n == 0 || !tag_opens(r->u.ddl.tag, r->u.ddl.command))
        refuse(t, r, commit_lsn, "the query string is not the command (DDL run inside a function, "
                                 "a procedure or a DO block)");
    if (strcmp(r->u.ddl.tag, "CREATE TABLE AS") == 0 || strcmp(r->u.ddl.tag, "SELECT INTO") == 0)
        refuse(t, r, commit_lsn, "its rows arrive as inserts too: replayed, they would be there twice");

    tgt_flush_pending(t);
    tgt_touch(t);
    tgt_leave_pipeline(t);
    p[0] = r->u.ddl.role;
    res = run(t, "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", 1, p);
    if (!ok(res))
        pl_fail(t, res, "a role lookup");
    if (PQntuples(res) == 0) {
        PQclear(res);
        refuse(t, r, commit_lsn, "its role does not exist on the target (it runs as the role it "
                                 "ran as on the source)");
    }
    PQclear(res);
    p[0] = r->u.ddl.search_path;
    res = run(t, "SELECT pg_catalog.set_config('search_path', $1, true)", 1, p);
    if (!ok(res))
        pl_fail(t, res, "the DDL's search_path");
    PQclear(res);
    ident = lm_ident(r->u.ddl.role);
    setrole = lm_psprintf("SET LOCAL ROLE %s", ident);
    res = run(t, setrole, 0, NULL);
    if (!ok(res))
        pl_fail(t, res, "the DDL's role");
    PQclear(res);

    sql = runnable(r->u.ddl.command);
    /* the extended protocol runs exactly one statement */
    res = run(t, sql, 0, NULL);
    if (!ok(res)) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *d = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        lm_error("the target refused the %s: %s", r->u.ddl.tag, m ? m : PQerrorMessage(t->conn));
        if (d)
            lm_detail("%s", d);
        ddl_context(r, commit_lsn);
        lm_detail("The target transaction was rolled back; the origin stays before this source "
                  "transaction.");
        lm_hint("Fix the target by hand so that the command can run (or make its effect and "
                "skip the transaction), then start lm-apply again: see lm-failures(7), \"A schema "
                "change failed on the target\".");
        PQclear(res);
        tgt_rollback(t);
        exit(LM_EXIT_SERVER);
    }
    PQclear(res);
    res = run(t, "RESET ROLE", 0, NULL);
    if (!ok(res))
        pl_fail(t, res, "RESET ROLE");
    PQclear(res);
    res = run(t, "RESET search_path", 0, NULL);
    if (!ok(res))
        pl_fail(t, res, "RESET search_path");
    PQclear(res);
    t->st.stmts++;
    lm_info("replayed %s %" PRIu64 " as role \"%s\"", r->u.ddl.tag, r->u.ddl.seq, r->u.ddl.role);
    forget_tables(rels);
    free(sql);
    free(setrole);
    free(ident);
}
