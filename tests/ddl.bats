#!/usr/bin/env bats
# Schema changes during the migration (issue 21, first milestone): the DDL
# capture of lm-slot create --ddl, DDL records in the stream, lm-apply
# replaying each at its place.  A source and a target cluster; each test
# copies a database with lm-snapshot under a held snapshot, changes the
# source's schema under pgbench writes, and streams lm-decode | lm-apply to
# the end; the target's schema (an independent catalog query) and rows
# must equal the source's.  Also: an unprivileged role gets nothing run on
# the target, a multi-statement query string and a DDL that fails on the
# target stop lm-apply with their exit codes, the origin before them.

load helpers
bats_require_minimum_version 1.5.0

setup_file() { pg_start_pair; }
teardown_file() { pg_stop_all; }
setup() { test_env; }

teardown() {
    load_stop
    exec 7>&- 2>/dev/null || true
    [ -z "${HOLD_PID:-}" ] || stop_proc "$HOLD_PID" 10 || true
    return 0
}

# start DB [SCALE]: pgbench tables of SCALE (none without) and the test's own on the source,
# lm-slot create --ddl with a held snapshot, lm-snapshot to the target;
# SLOT and SYNC_LSN are set. Extra SQL for the source: stdin.
start() {
    SLOT=$1
    both_dbs "$1" "${2:-}"
    src -f - >/dev/null
    rm -f "$T/hold.in"
    mkfifo "$T/hold.in"
    bg_start HOLD_PID bash -c 'exec "$@" <"$0" >"$0.out" 2>"$0.err"' "$T/hold.in" \
        lm-slot create --source "$S" --slot "$SLOT" --ddl --replica-identity-full --hold
    exec 7>"$T/hold.in"
    wait_for 60 grep -q '^snapshot:' "$T/hold.in.out" || { cat "$T/hold.in.err" >&2; return 1; }
    SYNC_LSN=$(sed -n 's/^consistent_point: *//p' "$T/hold.in.out")
    lm-snapshot --source "$S" --target "$TG" --snapshot "$(sed -n 's/^snapshot: *//p' "$T/hold.in.out")" \
        --sync-lsn "$SYNC_LSN" --slot "$SLOT" --jobs 2 --workdir "$T/work" 2>"$T/snapshot.err" ||
        { cat "$T/snapshot.err" >&2; return 1; }
    exec 7>&-
    wait_pid "$HOLD_PID" 30 "lm-slot --hold to end"
    HOLD_PID=
}

# stream [lm-apply args]: lm-decode from the slot to the source's current
# position, piped into lm-apply; the stream is kept in $T/stream.lm; sets
# RC (lm-apply's exit status)
stream() {
    local end
    end=$(src -c "SELECT pg_current_wal_lsn()")
    src -c "SELECT 1 FROM pg_logical_emit_message(false, 'lm-test', 'tick')" >/dev/null
    set +e
    lm-decode --source "$S" --slot "$SLOT" --endpos "$end" 2>>"$T/decode.err" | tee "$T/stream.lm" |
        lm-apply --target "$TG" "$@" 2>"$T/apply.err"
    RC=$?
    set -e
}

# schema NAME: the user schemas' columns (type, default, not null), indexes
# and enum labels of database $DB on cluster NAME, from the catalogs
schema() {
    PGDATABASE_TEST=$DB q "$1" -c "
        SELECT format('column %I.%I.%I %s default %s%s', n.nspname, c.relname, a.attname,
                      format_type(a.atttypid, a.atttypmod),
                      coalesce(pg_get_expr(d.adbin, d.adrelid), '-'),
                      CASE WHEN a.attnotnull THEN ' not null' ELSE '' END)
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lm', 'pg_toast')
        UNION ALL
        SELECT 'index ' || pg_get_indexdef(i.indexrelid)
          FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'lm', 'pg_toast')
        UNION ALL
        SELECT format('enum %s %s', t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder))
          FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid GROUP BY t.typname
        ORDER BY 1"
}

# the target's schema and rows equal the source's
equal() {
    schema source >"$T/src.schema"
    schema target >"$T/tgt.schema"
    diff "$T/src.schema" "$T/tgt.schema"
    same
}

origin_lsn() { tgt -c "SELECT coalesce(remote_lsn::text, '') FROM pg_replication_origin_status s JOIN pg_replication_origin o ON o.roident = s.local_id WHERE o.roname = '$SLOT'"; }

@test "ddl: lm-slot create --ddl refuses a role that is not superuser, clearly, and changes nothing" {
    both_dbs nosu
    src -c "CREATE ROLE nosu LOGIN REPLICATION" -c "GRANT CREATE ON DATABASE nosu TO nosu"
    run -4 --separate-stderr lm-slot create --source "host=127.0.0.1 port=$SOURCE_PORT dbname=nosu user=nosu" --slot nosu --ddl
    [[ $stderr == *"--ddl needs a superuser on the source"* ]]
    [[ $stderr == *"nothing was created"* ]]
    [ "$(src -c "SELECT count(*) FROM pg_publication")" = 0 ]
    [ "$(src -c "SELECT count(*) FROM pg_event_trigger")" = 0 ]
    # --ddl is create's only
    run -2 lm-slot status --source "$S" --slot nosu --ddl
}

@test "ddl: ADD/DROP/RENAME COLUMN, ALTER TYPE, CREATE TABLE with rows, CREATE INDEX (also CONCURRENTLY), enum ADD VALUE, hostile names, search_path: replayed in place under writes; schema and rows equal" {
    start ddl1 1 <<'SQL'
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE t (id int PRIMARY KEY, v text, m mood);
INSERT INTO t SELECT g, 'snap ' || g, 'ok' FROM generate_series(1, 100) g;
CREATE SCHEMA "s p";
CREATE TABLE "s p".other (id int PRIMARY KEY);
SQL
    load_start 50
    src -c "INSERT INTO t VALUES (101, 'before', 'sad')"
    src -c "ALTER TABLE pgbench_history ADD COLUMN note text DEFAULT 'added'"
    src -c "ALTER TABLE t ADD COLUMN d int DEFAULT 7"
    src -c "INSERT INTO t (id, v, d) VALUES (102, 'with d', 8)"
    src -c "ALTER TABLE t RENAME COLUMN v TO v2"
    src -c "UPDATE t SET v2 = v2 || ' renamed' WHERE id <= 5"
    src -c "ALTER TABLE t ALTER COLUMN d TYPE bigint"
    src -c "UPDATE t SET d = 5000000000 WHERE id = 102"
    # a change in the middle of a transaction: rows before and after it
    src -c "BEGIN" -c "INSERT INTO t (id, v2) VALUES (103, 'before drop')" \
        -c "ALTER TABLE t DROP COLUMN m" -c "INSERT INTO t (id, v2) VALUES (104, 'after drop')" -c "COMMIT"
    # a new table and its rows, in one transaction
    src -c "BEGIN" -c "CREATE TABLE n (id int PRIMARY KEY, w text DEFAULT 'w')" \
        -c "INSERT INTO n SELECT g, 'n ' || g FROM generate_series(1, 50) g" -c "COMMIT"
    src -c "INSERT INTO n VALUES (51)"
    src -c "CREATE INDEX t_v2 ON t (v2)"
    src -c "CREATE UNIQUE INDEX n_w ON n (w)"
    # replayed without CONCURRENTLY, inside the transaction that moves the origin
    src -c "CREATE INDEX CONCURRENTLY t_d ON t (d)"
    src -c "CREATE INDEX CONCURRENTLY t_id_v2 ON t (id, v2)"
    src -c "DROP INDEX CONCURRENTLY t_id_v2"
    # a new enum value, used right after
    src -c "CREATE TYPE feel AS ENUM ('a')" -c "CREATE TABLE f (id int PRIMARY KEY, x feel)"
    src -c "ALTER TYPE feel ADD VALUE 'b'"
    src -c "INSERT INTO f VALUES (1, 'b'), (2, 'a')"
    # hostile names
    src -c "CREATE TABLE \"x;y\"\"z
w\" (\"a b\" int PRIMARY KEY, \"c'd\" text)"
    src -c "INSERT INTO \"x;y\"\"z
w\" VALUES (1, 'e;f'), (2, E'g\\nh')"
    src -c "ALTER TABLE \"x;y\"\"z
w\" ADD COLUMN \"i;j\" text DEFAULT 'k''l;'"
    # unqualified DDL under a non-default search_path
    src -c "SET search_path = \"s p\", public" -c "CREATE TABLE unq (id int PRIMARY KEY, v text)" \
        -c "INSERT INTO unq VALUES (1, 'one')" -c "ALTER TABLE other ADD COLUMN z int DEFAULT 3" \
        -c "INSERT INTO other (id) VALUES (1)"
    src -c "INSERT INTO t (id, v2, d) VALUES (105, 'last', 9)"
    sleep 1
    load_stop
    stream -v
    [ "$RC" -eq 0 ] || { cat "$T/apply.err" >&2; false; }
    equal
    # the new tables came with their rows; names and the path as on the source
    [ "$(tgt -c "SELECT count(*) FROM n")" = 51 ]
    [ "$(tgt -c "SELECT count(*) FROM \"s p\".unq")" = 1 ]
    [ "$(tgt -c "SELECT x FROM f WHERE id = 1")" = b ]
    [ "$(tgt -c "SELECT count(*) FROM public.pgbench_history WHERE note = 'added'")" -gt 0 ]
    grep -q 'replayed ALTER TYPE' "$T/apply.err"
    # lm-cat shows the records, escaped, and counts them
    run -0 lm-cat "$T/stream.lm"
    assert_output --partial "ddl "
    assert_output --partial "'ALTER TABLE t RENAME COLUMN v TO v2'"
    assert_output --partial 'search_path '"'"'"s p", public'"'"
    assert_output --partial "\\nw"
    run -0 lm-cat --json "$T/stream.lm"
    [ "$(jq -r 'select(.type == "ddl") | .command' <<<"$output" | grep -c 'CREATE TABLE')" -ge 4 ]
    [ "$(jq -r 'select(.type == "ddl" and .tag == "ALTER TYPE") | .role' <<<"$output")" = postgres ]
    run -0 lm-cat --stats "$T/stream.lm"
    assert_output --regexp 'ddl: +1[5-9] \(schema changes\)'
    # lm-slot drop takes the capture away
    run -0 lm-slot drop --source "$S" --slot ddl1
    [ "$(src -c "SELECT count(*) FROM pg_event_trigger")" = 0 ]
    [ "$(src -c "SELECT to_regclass('lm.ddl_log') IS NULL AND to_regnamespace('lm') IS NULL")" = t ]
    # the target got no capture of its own
    [ "$(tgt -c "SELECT count(*) FROM pg_event_trigger")" = 0 ]
}

@test "ddl: an unprivileged role gets nothing run on the target: no insert into the log, messages are no DDL, its DDL runs as itself" {
    q source -c "DROP ROLE IF EXISTS mallory" -c "CREATE ROLE mallory LOGIN"
    q target -c "DROP ROLE IF EXISTS mallory" -c "CREATE ROLE mallory LOGIN"
    start ddl2 <<'SQL'
CREATE SCHEMA mal;
GRANT USAGE, CREATE ON SCHEMA mal TO mallory;
SQL
    local M="host=127.0.0.1 port=$SOURCE_PORT dbname=ddl2 user=mallory"
    # (a) the capture's table takes no row from it
    run psql -X -v ON_ERROR_STOP=1 -d "$M" -c "INSERT INTO lm.ddl_log (tag, command, search_path, role, session_role, objects) VALUES ('CREATE TABLE', 'CREATE TABLE public.pwned_a ()', 'public', 'postgres', 'postgres', '[]')"
    [ "$status" -ne 0 ]
    assert_output --partial "permission denied"
    # nor can it call the capture's function
    run psql -X -v ON_ERROR_STOP=1 -d "$M" -c "SELECT lm.ddl_capture()"
    [ "$status" -ne 0 ]
    # (b) a logical message that looks like a DDL is no DDL
    psql -X -q -d "$M" -c "SELECT pg_logical_emit_message(true, 'lm', 'CREATE TABLE public.pwned_b ()')" \
        -c "SELECT pg_logical_emit_message(true, 'lm-ddl', 'S CREATE TABLE public.pwned_c ()')" >/dev/null
    # nor is a table of its own that claims the name (another schema: lm is not its)
    psql -X -q -d "$M" -c "CREATE TABLE mal.ddl_log (tag text, command text)" \
        -c "INSERT INTO mal.ddl_log VALUES ('CREATE TABLE', 'CREATE TABLE public.pwned_d ()')" >/dev/null
    # (c) its DDL is replayed as itself: what it may do here it may do there
    psql -X -q -d "$M" -c "CREATE TABLE mal.mine (id int PRIMARY KEY)" -c "INSERT INTO mal.mine VALUES (1)" >/dev/null
    stream -v
    [ "$RC" -eq 0 ] || { cat "$T/apply.err" >&2; false; }
    [ "$(tgt -c "SELECT count(*) FROM pg_class WHERE relname LIKE 'pwned%'")" = 0 ]
    [ "$(tgt -c "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'mal.mine'::regclass")" = mallory ]
    [ "$(tgt -c "SELECT count(*) FROM mal.mine")" = 1 ]
    grep -q 'replayed CREATE TABLE .* as role "mallory"' "$T/apply.err"
    # on the target it lacks a privilege it has on the source: the replay
    # fails there (it gains none), exit 5, the origin before it
    tgt -c "REVOKE CREATE ON SCHEMA mal FROM mallory"
    before=$(origin_lsn)
    psql -X -q -d "$M" -c "CREATE TABLE mal.more (id int)" >/dev/null
    stream
    [ "$RC" -eq 5 ]
    grep -q 'the target refused the CREATE TABLE: permission denied for schema mal' "$T/apply.err"
    grep -q 'command: CREATE TABLE mal.more (id int)' "$T/apply.err"
    [ "$(origin_lsn)" = "$before" ]
}

@test "ddl: a query string of several statements, or of a DO block, stops lm-apply (exit 4) naming it, the transactions before it applied, the origin before it; --ddl-done goes on" {
    start ddl3 </dev/null
    src -c "CREATE TABLE a (id int PRIMARY KEY)"
    src -c "INSERT INTO a VALUES (1)"
    # one simple query, two statements: the INSERT arrives as a row change too
    src -c "CREATE TABLE b (id int PRIMARY KEY); INSERT INTO a VALUES (2)"
    stream
    [ "$RC" -eq 4 ]
    grep -q 'cannot replay the CREATE TABLE at this place in the stream: its query string holds more than one statement' "$T/apply.err"
    grep -q 'command: CREATE TABLE b (id int PRIMARY KEY); INSERT INTO a VALUES (2)' "$T/apply.err"
    # what came before is there, nothing of that transaction is
    [ "$(tgt -c "SELECT string_agg(id::text, ',') FROM a")" = 1 ]
    [ "$(tgt -c "SELECT to_regclass('public.b') IS NULL")" = t ]
    # again: the same stop at the same place
    stream
    [ "$RC" -eq 4 ]
    # lm-failures(7): the DDL part by hand, then --ddl-done with its number
    seq=$(grep -o -- '--ddl-done=[0-9]*' "$T/apply.err" | head -1)
    [ -n "$seq" ]
    tgt -c "CREATE TABLE b (id int PRIMARY KEY)"
    stream "$seq" -v
    [ "$RC" -eq 0 ] || { cat "$T/apply.err" >&2; false; }
    grep -q 'passed over CREATE TABLE [0-9]* (--ddl-done' "$T/apply.err"
    equal
    [ "$(tgt -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM a")" = 1,2 ]
    # DDL run by a DO block: the query string is the block, which is no DDL
    # to replay (it would run its INSERT again)
    src -c "DO \$\$ BEGIN CREATE TABLE c (id int); INSERT INTO a VALUES (3); END \$\$"
    stream
    [ "$RC" -eq 4 ]
    grep -q 'cannot replay the CREATE TABLE at this place in the stream: the query string is not the command' "$T/apply.err"
    [ "$(tgt -c "SELECT to_regclass('public.c') IS NULL")" = t ]
}

@test "ddl: a DDL that fails on the target stops lm-apply (exit 5) with the command and the error, origin not moved; fixed by hand, a restart goes on" {
    start ddl4 <<'SQL'
CREATE TABLE gone (id int PRIMARY KEY);
CREATE TABLE keep (id int PRIMARY KEY);
SQL
    # dropped by hand on the target
    tgt -c "DROP TABLE gone"
    src -c "INSERT INTO keep VALUES (100)"
    src -c "ALTER TABLE gone ADD COLUMN v text"
    before=$(origin_lsn)
    stream
    [ "$RC" -eq 5 ]
    grep -q 'the target refused the ALTER TABLE: relation "gone" does not exist' "$T/apply.err"
    grep -q 'command: ALTER TABLE gone ADD COLUMN v text' "$T/apply.err"
    # the transaction before it was applied and committed: the origin moved
    # to it, and no further
    [ "$(tgt -c "SELECT count(*) FROM keep WHERE id = 100")" = 1 ]
    after=$(origin_lsn)
    [ "$after" != "$before" ]
    stream
    [ "$RC" -eq 5 ]
    [ "$(origin_lsn)" = "$after" ]
    # lm-failures(7): make the command able to run, start again
    tgt -c "CREATE TABLE gone (id int PRIMARY KEY)"
    stream
    [ "$RC" -eq 0 ] || { cat "$T/apply.err" >&2; false; }
    equal
}
