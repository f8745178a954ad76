/* lm-slot create --ddl: the DDL capture on the source, and its removal.
 *
 * Event triggers on ddl_command_end and sql_drop call one SECURITY DEFINER
 * function that writes a row per DDL command into lm.ddl_log: the command
 * text (current_query()), its tag, the search_path and role it ran under,
 * the objects it touched.  The table is published, so its rows travel in
 * the slot as ordinary inserts, in commit order among the row changes;
 * lm-decode turns the inserts of exactly this table (by OID) into DDL
 * records.  Only the function may write the table: it is the one source
 * of DDL records, which is what makes them authentic (a logical message
 * needs no privilege and proves nothing).
 *
 * The function reads the caller's search_path before it pins its own
 * (pg_catalog, pg_temp) for the rest of its body: a SET clause on the
 * function would hide the caller's value.  Until then it only calls
 * schema-qualified functions, so no object of the caller's path runs with
 * its privileges.  The role recorded is the session's SET ROLE (or the
 * session user): current_user inside a SECURITY DEFINER function is its
 * owner.
 *
 * With a publication that lists its tables, the function also adds each
 * table created later (permanent, ordinary or a partition, in a user
 * schema; under --schema only in those schemas, with --table alone in any) to the publication in the
 * creating command, so that the rows written in the same transaction are
 * published too; a new table without a primary key gets REPLICA IDENTITY
 * FULL, or its UPDATE and DELETE would fail on the source. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "log.h"
#include "pgconn.h"
#include "slot.h"

static bool is_t(PGresult *res, int row, int col)
{
    return strcmp(PQgetvalue(res, row, col), "t") == 0;
}

int ddl_preflight(PGconn *conn, const slot_opts *o)
{
    PGresult *res = lm_exec(conn, LM_EXIT_SERVER,
                            "SELECT r.rolsuper, current_user,"
                            " (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'lm'),"
                            " to_regclass('lm.ddl_log') IS NOT NULL,"
                            " EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname IN ('lm_ddl_end', 'lm_ddl_drop'))"
                            " FROM pg_roles r WHERE r.rolname = current_user");
    int problems = 0;

    (void)o;
    if (!is_t(res, 0, 0)) {
        lm_error("--ddl needs a superuser on the source (event triggers need one on PostgreSQL 15) "
                 "and role \"%s\" is not one", PQgetvalue(res, 0, 1));
        lm_detail("Without DDL capture a schema change on the source stops lm-apply with a "
                  "mismatch, naming the table (see lm-failures(7)).");
        lm_hint("Run lm-slot create --ddl as a superuser (on managed services: the admin role "
                "that may create event triggers), or leave out --ddl.");
        problems++;
    }
    if (!PQgetisnull(res, 0, 2) && strcmp(PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 1)) != 0) {
        lm_error("schema \"lm\" exists on the source and belongs to role \"%s\", not \"%s\": the DDL "
                 "capture keeps its table there", PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 1));
        lm_hint("Run lm-slot as the schema's owner, or drop the schema if it is left from "
                "something else.");
        problems++;
    }
    if (is_t(res, 0, 3) || is_t(res, 0, 4)) {
        lm_error("a DDL capture is already installed on the source (lm.ddl_log or the event "
                 "triggers lm_ddl_end, lm_ddl_drop exist)");
        lm_hint("One migration with --ddl per database: drop the other one's slot with lm-slot "
                "drop first, or leave out --ddl.");
        problems++;
    }
    PQclear(res);
    return problems;
}

/* The event trigger function; %1$s: the publication as a literal, %2$s:
 * whether it is FOR ALL TABLES, %3$s: the schemas new tables are published
 * from (a text[] literal, NULL: every user schema). */
static const char capture_fn[] =
    "CREATE FUNCTION lm.ddl_capture() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS $lm$\n"
    "DECLARE\n"
    "  path text := pg_catalog.current_setting('search_path');\n"
    "  pub text := %1$s;\n"
    "  all_tables boolean := %2$s;\n"
    "  schemas text[] := %3$s;\n"
    "  objs jsonb;\n"
    "  who text;\n"
    "  r record;\n"
    "BEGIN\n"
    "  PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);\n"
    /* our own commands below (ALTER PUBLICATION, REPLICA IDENTITY) */
    "  IF coalesce(current_setting('lm.ddl_busy', true), '') = 'on' THEN\n"
    "    PERFORM set_config('search_path', path, true);\n"
    "    RETURN;\n"
    "  END IF;\n"
    "  IF TG_EVENT = 'sql_drop' THEN\n"
    /* kept for the ddl_command_end of the same command */
    "    SELECT coalesce(nullif(current_setting('lm.ddl_dropped', true), ''), '[]')::jsonb ||\n"
    "           coalesce(jsonb_agg(jsonb_build_object('type', object_type, 'schema', schema_name,\n"
    "             'identity', object_identity, 'temporary', is_temporary)), '[]')\n"
    "      INTO objs FROM pg_event_trigger_dropped_objects() WHERE original;\n"
    "    PERFORM set_config('lm.ddl_dropped', objs::text, true);\n"
    "    PERFORM set_config('search_path', path, true);\n"
    "    RETURN;\n"
    "  END IF;\n"
    "  SELECT coalesce(jsonb_agg(jsonb_build_object('type', object_type, 'schema', schema_name,\n"
    "           'identity', object_identity, 'temporary', coalesce(schema_name LIKE 'pg\\_temp%%', false))), '[]')\n"
    "    INTO objs FROM pg_event_trigger_ddl_commands() WHERE NOT in_extension;\n"
    "  objs := objs || coalesce(nullif(current_setting('lm.ddl_dropped', true), ''), '[]')::jsonb;\n"
    "  PERFORM set_config('lm.ddl_dropped', '', true);\n"
    /* publications are the migration's own business; objects of the
     * session's temporary schema and of lm are not the application's */
    "  IF TG_TAG LIKE '%% PUBLICATION' OR TG_TAG LIKE '%% SUBSCRIPTION'\n"
    "     OR EXISTS (SELECT 1 FROM jsonb_array_elements(objs) e WHERE e->>'schema' = 'lm')\n"
    "     OR (jsonb_array_length(objs) > 0 AND NOT EXISTS (\n"
    "           SELECT 1 FROM jsonb_array_elements(objs) e WHERE NOT (e->>'temporary')::boolean)) THEN\n"
    "    PERFORM set_config('search_path', path, true);\n"
    "    RETURN;\n"
    "  END IF;\n"
    "  who := current_setting('role');\n"
    "  IF who IS NULL OR who = 'none' THEN who := session_user; END IF;\n"
    "  INSERT INTO lm.ddl_log (tag, command, search_path, role, session_role, objects)\n"
    "    VALUES (TG_TAG, coalesce(current_query(), ''), path, who, session_user, objs::text);\n"
    "  IF NOT all_tables THEN\n"
    "    FOR r IN SELECT c.oid::regclass AS rel,\n"
    "        NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS keyless\n"
    "      FROM pg_event_trigger_ddl_commands() d JOIN pg_class c ON c.oid = d.objid\n"
    "      JOIN pg_namespace n ON n.oid = c.relnamespace\n"
    "      WHERE d.command_tag = 'CREATE TABLE' AND d.classid = 'pg_class'::regclass\n"
    "        AND c.relkind = 'r' AND c.relpersistence = 'p'\n"
    "        AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lm')\n"
    "        AND n.nspname !~ '^pg_(toast|temp_)'\n"
    "        AND (schemas IS NULL OR n.nspname = ANY (schemas))\n"
    "        AND NOT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid\n"
    "                        WHERE p.pubname = pub AND pr.prrelid = c.oid)\n"
    "    LOOP\n"
    "      PERFORM set_config('lm.ddl_busy', 'on', true);\n"
    "      EXECUTE format('ALTER PUBLICATION %%I ADD TABLE ONLY %%s', pub, r.rel);\n"
    "      IF r.keyless THEN\n"
    "        EXECUTE format('ALTER TABLE ONLY %%s REPLICA IDENTITY FULL', r.rel);\n"
    "      END IF;\n"
    "      PERFORM set_config('lm.ddl_busy', 'off', true);\n"
    "    END LOOP;\n"
    "  END IF;\n"
    "  PERFORM set_config('search_path', path, true);\n"
    "END\n"
    "$lm$";

static char *schema_array(const slot_opts *o)
{
    /* --table alone: a table created later is made on the target by its
     * replayed DDL, so its rows must come too */
    if (o->all_tables || o->nschemas == 0)
        return lm_strdup("NULL");
    return slot_text_array(o->schemas, o->nschemas);
}

bool ddl_install(PGconn *conn, const slot_opts *o)
{
    char *publit = lm_literal(o->publication);
    char *pubident = lm_ident(o->publication);
    char *schemas = schema_array(o);
    char *fn = lm_psprintf(capture_fn, publit, o->all_tables ? "true" : "false", schemas);
    char *addpub = lm_psprintf("ALTER PUBLICATION %s ADD TABLE ONLY lm.ddl_log", pubident);
    /* which publication it is for: on the function, whose schema lm
     * pg_dump leaves out (a comment on the event trigger it would dump) */
    char *comment = lm_psprintf("COMMENT ON FUNCTION lm.ddl_capture() IS %s", publit);
    const char *steps[] = {
        "BEGIN",
        "SET LOCAL lock_timeout = '" LM_SLOT_LOCK_TIMEOUT "'",
        "CREATE SCHEMA IF NOT EXISTS lm",
        "REVOKE ALL ON SCHEMA lm FROM PUBLIC",
        "CREATE TABLE lm.ddl_log (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " tag text NOT NULL, command text NOT NULL, search_path text NOT NULL,"
        " role text NOT NULL, session_role text NOT NULL, objects text NOT NULL,"
        " logged_at timestamptz NOT NULL DEFAULT now())",
        "REVOKE ALL ON lm.ddl_log FROM PUBLIC",
        fn,
        "REVOKE ALL ON FUNCTION lm.ddl_capture() FROM PUBLIC",
        /* FOR ALL TABLES covers it already */
        o->all_tables ? "SELECT" : addpub,
        "CREATE EVENT TRIGGER lm_ddl_end ON ddl_command_end EXECUTE FUNCTION lm.ddl_capture()",
        "CREATE EVENT TRIGGER lm_ddl_drop ON sql_drop EXECUTE FUNCTION lm.ddl_capture()",
        comment,
        "COMMIT",
    };
    bool ok = true;

    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && ok; i++) {
        char *err = NULL;
        PGresult *res = lm_exec_try(conn, steps[i], &err);
        if (!res) {
            lm_error("could not install the DDL capture: %s", err);
            lm_detail("statement: %.300s", steps[i]);
            PQclear(PQexec(conn, "ROLLBACK"));
            free(err);
            ok = false;
        }
        PQclear(res);
    }
    if (ok)
        lm_info("installed the DDL capture: event triggers lm_ddl_end and lm_ddl_drop write "
                "lm.ddl_log, published in \"%s\"", o->publication);
    free(publit);
    free(pubident);
    free(schemas);
    free(fn);
    free(addpub);
    free(comment);
    return ok;
}

int ddl_uninstall(PGconn *conn, const char *publication, bool only_if_ours)
{
    const char *p[1] = {publication};
    PGresult *res = lm_execp(conn, LM_EXIT_SERVER,
                             "SELECT obj_description(p.oid, 'pg_proc') FROM pg_event_trigger e"
                             " JOIN pg_proc p ON p.oid = e.evtfoid WHERE e.evtname = 'lm_ddl_end'", 0, NULL);
    const char *steps[] = {
        "BEGIN",
        "SET LOCAL lock_timeout = '" LM_SLOT_LOCK_TIMEOUT "'",
        "DROP EVENT TRIGGER IF EXISTS lm_ddl_end",
        "DROP EVENT TRIGGER IF EXISTS lm_ddl_drop",
        "DROP FUNCTION IF EXISTS lm.ddl_capture()",
        "DROP TABLE IF EXISTS lm.ddl_log",
        "COMMIT",
    };
    bool present = PQntuples(res) > 0;
    int rc = LM_EXIT_OK;

    (void)p;
    if (present && only_if_ours && !PQgetisnull(res, 0, 0) &&
        strcmp(PQgetvalue(res, 0, 0), publication) != 0) {
        lm_info("the DDL capture on the source belongs to publication \"%s\": left as it is",
                PQgetvalue(res, 0, 0));
        PQclear(res);
        return LM_EXIT_OK;
    }
    PQclear(res);
    res = lm_exec(conn, LM_EXIT_SERVER,
                  "SELECT to_regclass('lm.ddl_log') IS NOT NULL OR"
                  " to_regprocedure('lm.ddl_capture()') IS NOT NULL");
    present = present || is_t(res, 0, 0);
    PQclear(res);
    if (!present)
        return LM_EXIT_OK;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char *err = NULL;
        PGresult *r = lm_exec_try(conn, steps[i], &err);
        if (!r) {
            lm_error("could not remove the DDL capture: %s", err);
            lm_detail("statement: %s", steps[i]);
            lm_hint("Remove it by hand as a superuser: DROP EVENT TRIGGER lm_ddl_end; DROP EVENT "
                    "TRIGGER lm_ddl_drop; DROP FUNCTION lm.ddl_capture(); DROP TABLE lm.ddl_log;");
            PQclear(PQexec(conn, "ROLLBACK"));
            free(err);
            return LM_EXIT_SERVER;
        }
        PQclear(r);
    }
    /* the schema only if nothing else lives in it */
    PQclear(PQexec(conn, "DROP SCHEMA IF EXISTS lm RESTRICT"));
    lm_info("removed the DDL capture (event triggers lm_ddl_end and lm_ddl_drop, lm.ddl_capture(), "
            "lm.ddl_log)");
    return rc;
}
