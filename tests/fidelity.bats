#!/usr/bin/env bats
# Fidelity: schemas nobody on the team wrote, migrated live end to end.
# tests/fixtures/odd holds the kinds of tables other migration tools' own
# suites carry (identity and generated columns, tables without columns,
# inheritance with rows in the parent, exclusion constraints, enums in quoted
# schemas, nondeterministic collations, long index definitions, text search,
# uuid); the hostile-names fixture adds names with every byte a name can hold.
# Each test migrates under writes, cuts over and compares independently.

load helpers
load migrate_helpers   # setup, teardown_file, mkdb, qs, qt, lmm, ...
bats_require_minimum_version 1.5.0

setup_file() {
    migrate_clusters
}

teardown() {
    show_failed_migration "$BATS_TEST_TMPDIR/load.log"
    stop_pid_file "$BATS_TEST_TMPDIR/load.pid"
    stop_pid_file "$BATS_TEST_TMPDIR/long.pid"
    abort_migration
}

# Writes during the live phase: pgbench over every odd table, and a loop of
# inserts, updates and deletes on every hostile name; each with a pid file.
start_writes() {
    bg_start LOAD_SH sh -c "echo \$\$ >'$BATS_TEST_TMPDIR/load.pid'; exec pgbench -n -c 2 -j 2 -T 600 -R 20 -f '$LM_FIXTURES/odd/load.sql' '$SRC' >'$BATS_TEST_TMPDIR/load.log' 2>&1"
    hostile_names_writes_sql >"$BATS_TEST_TMPDIR/hostile-writes.sql"
    bg_start HOSTILE_SH bash -c "echo \$\$ >'$BATS_TEST_TMPDIR/hostile.pid'; for i in \$(seq 1 1200); do psql -X -q -v ON_ERROR_STOP=1 -d '$SRC' -f '$BATS_TEST_TMPDIR/hostile-writes.sql' >>'$BATS_TEST_TMPDIR/hostile.log' 2>&1 || exit 1; sleep 0.3; done"
    wait_for 10 test -s "$BATS_TEST_TMPDIR/load.pid"
    wait_for 10 test -s "$BATS_TEST_TMPDIR/hostile.pid"
}

stop_writes() {
    stop_pid_file "$BATS_TEST_TMPDIR/load.pid"
    stop_pid_file "$BATS_TEST_TMPDIR/hostile.pid"
}

# Every user table's content, hashed on each side by the test itself (not
# by lm): table name, row count and an ordered md5 of the rows as text.
tables_equal() {
    PGDATABASE_TEST=s_$DB db_hashes source >"$BATS_TEST_TMPDIR/src.hashes"
    PGDATABASE_TEST=t_$DB db_hashes target >"$BATS_TEST_TMPDIR/tgt.hashes"
    diff "$BATS_TEST_TMPDIR/src.hashes" "$BATS_TEST_TMPDIR/tgt.hashes"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/src.hashes")" -ge "$1" ]
}

@test "fidelity: identity, zero-column, all-generated, inherited, exclusion, enum, collation, text search and hostile-named tables, database settings and a long transaction at start: live migration verified equal" {
    mkdb odd template1   # empty: the test loads its own fixtures
    qs -f "$LM_FIXTURES/odd/schema.sql" >/dev/null
    hostile_names_sql | qs -f - >/dev/null
    # the settings an application relies on, and a role of the target's
    qs -c "ALTER DATABASE s_odd SET search_path = public, \"\"\"abc\"\"\"" \
       -c "ALTER DATABASE s_odd SET work_mem = '7MB'" \
       -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN CREATE ROLE app; END IF; END \$\$" \
       -c "ALTER ROLE app IN DATABASE s_odd SET statement_timeout = '42s'"
    q target -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN CREATE ROLE app; END IF; END \$\$"
    # a transaction open on the source when the slot is made: the slot
    # waits for it, and start must wait for the slot
    bg_start LONG_SH sh -c "echo \$\$ >'$BATS_TEST_TMPDIR/long.pid'; exec psql -X -q -v ON_ERROR_STOP=1 -d '$SRC' -c 'BEGIN' -c \"INSERT INTO ident_default (note) VALUES ('long')\" -c 'SELECT pg_sleep(12)' -c 'COMMIT' >'$BATS_TEST_TMPDIR/long.log' 2>&1"
    wait_for 10 test -s "$BATS_TEST_TMPDIR/long.pid"
    start_writes
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2
    assert_output --partial "caught up"
    # the long transaction ended before the slot was made, and is there
    [ "$(qt -c "SELECT count(*) FROM ident_default WHERE note = 'long'")" = 1 ]
    sleep 5
    stop_writes
    [ ! -s "$BATS_TEST_TMPDIR/hostile.log" ] || ! grep -q ERROR "$BATS_TEST_TMPDIR/hostile.log"
    run -0 lmm cutover --workdir "$W" --fence --timeout 180
    assert_output --partial "cutover complete"
    run -0 lmm verify --workdir "$W"
    # independently: every table, every row
    tables_equal 20
    sequences_caught_up
    # live writes did reach every kind of table
    [ "$(qt -c "SELECT count(*) FROM ident_always WHERE note LIKE 'live%'")" -gt 0 ]
    [ "$(qt -c "SELECT count(*) FROM public.\"nl
name\" WHERE v LIKE 'live%'")" -gt 0 ]
    # the application can go on writing on the target: identity values
    # follow the source's
    local max_src
    max_src=$(qs -c "SELECT max(id) FROM ident_always")
    qt -c "SET default_transaction_read_only = off" -c "INSERT INTO ident_always (note) VALUES ('after')"
    [ "$(qt -c "SELECT id FROM ident_always WHERE note = 'after'")" -gt "$max_src" ]
    # the database's settings came along; the fence's read-only did not
    run -0 qt -c "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 't_odd' AND s.setrole = 0"
    assert_output --partial 'search_path=public, """abc"""'
    assert_output --partial "work_mem=7MB"
    refute_output --partial "default_transaction_read_only"
    run -0 qt -c "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = 't_odd' AND r.rolname = 'app'"
    assert_output "statement_timeout=42s"
}
