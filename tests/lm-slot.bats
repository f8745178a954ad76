#!/usr/bin/env bats
# lm-slot: preflight, publication, slot with an exported snapshot, --hold,
# status, drop, advance. Against real clusters: "source" runs with 1 s idle
# timeouts (the holder must survive them), "nolog" with wal_level = replica
# and a single, used, replication slot.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
    pg_start source "idle_in_transaction_session_timeout = '1s'" "idle_session_timeout = '1s'"
    pg_start nolog "wal_level = replica" "max_replication_slots = 1" "max_slot_wal_keep_size = 1MB"
    q source -c "
        CREATE TABLE items (id int PRIMARY KEY, v text);
        INSERT INTO items SELECT g, 'before' FROM generate_series(1, 100) g;
        CREATE TABLE keyless (a int, b text);
        INSERT INTO keyless VALUES (1, 'x'), (2, 'y');
        CREATE TABLE defer_pk (id int PRIMARY KEY DEFERRABLE);
        CREATE TABLE nothing_ri (id int PRIMARY KEY);
        ALTER TABLE nothing_ri REPLICA IDENTITY NOTHING;
        CREATE TABLE idx_ri (id int NOT NULL);
        CREATE UNIQUE INDEX idx_ri_id ON idx_ri (id);
        ALTER TABLE idx_ri REPLICA IDENTITY USING INDEX idx_ri_id;
        DROP INDEX idx_ri_id;
        CREATE SCHEMA scope;
        CREATE TABLE scope.plain (id int PRIMARY KEY);
        CREATE TABLE scope.parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
        CREATE TABLE scope.parted_1 PARTITION OF scope.parted FOR VALUES FROM (0) TO (10);
        CREATE TABLE scope.parted_2 PARTITION OF scope.parted FOR VALUES FROM (10) TO (20);
        CREATE TABLE scope.skipme (id int PRIMARY KEY);
        CREATE UNLOGGED TABLE scope.unlogged (id int PRIMARY KEY);
        CREATE VIEW scope.a_view AS SELECT * FROM scope.plain;
        CREATE MATERIALIZED VIEW scope.a_matview AS SELECT * FROM scope.plain;
        CREATE SCHEMA \"Sch ema\";
        CREATE TABLE \"Sch ema\".\"we\"\"ird; drop table x\" (id int PRIMARY KEY, v text);
        CREATE TABLE \"Sch ema\".\"tâblé.ü\" (id int PRIMARY KEY);
        CREATE ROLE norepl LOGIN;"
    q source -c "CREATE DATABASE alltab"
    PGDATABASE_TEST=alltab q source -c "CREATE TABLE t1 (id int PRIMARY KEY); CREATE TABLE t2 (id int PRIMARY KEY)"
    q nolog -c "CREATE TABLE items (id int PRIMARY KEY); SELECT pg_create_physical_replication_slot('phys', true)" >/dev/null
}

teardown_file() {
    pg_stop_all
}

setup() { pg_env; }

teardown() {
    exec 5>&- 2>/dev/null || true
}

count_slots() { q source -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$1'"; }
count_pubs() { q source -c "SELECT count(*) FROM pg_publication WHERE pubname = '$1'"; }

# start_hold SLOT [create options...]: lm-slot create --hold in the
# background, its stdin a FIFO that fd 5 keeps open; waits for its report.
start_hold() {
    local slot=$1; shift
    HOLD_FIFO=$BATS_TEST_TMPDIR/hold.in
    HOLD_OUT=$BATS_TEST_TMPDIR/hold.out
    HOLD_ERR=$BATS_TEST_TMPDIR/hold.err
    rm -f "$HOLD_FIFO"
    mkfifo "$HOLD_FIFO"
    exec 5<>"$HOLD_FIFO"
    bg_start HOLD_PID bash -c 'echo $$ >"$6"; exec lm-slot create --source "$1" --slot "$2" --hold "${@:7}" <"$3" >"$4" 2>"$5"' \
        _ "$SOURCE_CONN" "$slot" "$HOLD_FIFO" "$HOLD_OUT" "$HOLD_ERR" "$BATS_TEST_TMPDIR/hold.pid" "$@"
    wait_for 30 grep -Eq '^database: |"database":' "$HOLD_OUT" || { cat "$HOLD_ERR" >&2; return 1; }
    HOLD_SNAPSHOT=$(sed -n 's/^snapshot: //p' "$HOLD_OUT")
}

import_count() {   # import_count SNAPSHOT TABLE
    q source -c "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '$1'; SELECT count(*) FROM $2; COMMIT"
}

peek_count() {     # peek_count SLOT PUBLICATION
    q source -c "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('$1', NULL, NULL, 'proto_version', '1', 'publication_names', '$2')"
}

# ---------- help, version, usage ----------

@test "lm-slot --help and each subcommand's --help print usage on stdout and exit 0" {
    program_help_ok lm-slot
    for w in create status drop advance --source --slot --publication --table --schema \
        --exclude-table --all-tables --replica-identity-full --hold --json --output --to; do
        [[ "$output" == *"$w"* ]] || { echo "missing $w"; return 1; }
    done
    for c in create status drop advance; do
        program_help_ok lm-slot "$c"
        [[ "$output" == *"lm-slot $c"* ]]
    done
    # after other options too, and only the subcommand's
    run -0 lm-slot status --slot s --help
    assert_output --partial "lm-slot status"
    refute_output --partial "lm-slot create"
}

@test "lm-slot --version prints the version" {
    program_version_ok lm-slot
    program_version_ok lm-slot status
}

@test "lm-slot: usage errors exit 2 with a hint" {
    program_options_handling_ok lm-slot
    for c in create status drop advance; do
        program_options_handling_ok lm-slot "$c"
        # getopt's message names the program, not the subcommand
        [[ ${stderr_lines[0]} == "lm-slot: "* ]] || { echo "$c: ${stderr_lines[0]}"; false; }
    done
    run --separate-stderr lm-slot
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"no subcommand"* ]]
    run --separate-stderr lm-slot frobnicate --slot s
    [ "$status" -eq 2 ]
    [[ "$stderr" == *'unknown subcommand "frobnicate"'* ]]
    run --separate-stderr lm-slot status --slot s --hold
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--hold is not valid with status"* ]]
    run --separate-stderr lm-slot create --source "$SOURCE_CONN"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"no slot given"* ]]
    run --separate-stderr lm-slot advance --source "$SOURCE_CONN" --slot s --to nonsense
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"not an LSN"* ]]
    run --separate-stderr lm-slot advance --source "$SOURCE_CONN" --slot s
    [ "$status" -eq 2 ]
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot s --all-tables --table items
    [ "$status" -eq 2 ]
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot s extra
    [ "$status" -eq 2 ]
    [[ "$stderr" == *'unexpected argument "extra"'* ]]
}

@test "lm-slot: invalid slot names are refused before connecting" {
    local closed="host=127.0.0.1 port=1 dbname=postgres user=postgres connect_timeout=2"
    local long
    long=$(printf 'a%.0s' {1..64})
    for name in 'Bad' 'a-b' 'x y' "$long" '' 'sl"ot'; do
        for cmd in create status drop; do
            run --separate-stderr lm-slot "$cmd" --source "$closed" --slot "$name"
            [ "$status" -eq 2 ] || { echo "$cmd '$name': status $status: $stderr"; return 1; }
            [[ "$stderr" == *"invalid slot name"* ]]
            [[ "$stderr" != *"connect"* ]]
        done
    done
}

@test "lm-slot: an unreachable source exits 3 and never prints the password" {
    run --separate-stderr lm-slot create --slot s \
        --source "host=127.0.0.1 port=1 dbname=postgres user=postgres password=secret connect_timeout=2"
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"could not connect to the source"* ]]
    [[ "$stderr" != *secret* ]]
    [[ "$output" != *secret* ]]
    run --separate-stderr lm-slot status --slot s \
        --source "postgresql://postgres:secret@127.0.0.1:1/postgres?connect_timeout=2"
    [ "$status" -eq 3 ]
    [[ "$stderr" != *secret* ]]
}

# ---------- create and --hold ----------

@test "create --hold: the snapshot holds exactly the rows before the slot, the slot the rows after; it survives 1 s idle timeouts" {
    [ "$(q source -c "SHOW idle_session_timeout")" = 1s ]
    [ "$(q source -c "SHOW idle_in_transaction_session_timeout")" = 1s ]
    start_hold hold1 --table items
    grep -q '^slot: hold1$' "$HOLD_OUT"
    grep -q '^publication: hold1$' "$HOLD_OUT"
    grep -q '^database: postgres$' "$HOLD_OUT"
    grep -Eq '^consistent_point: [0-9A-F]+/[0-9A-F]+$' "$HOLD_OUT"
    grep -Eq "^system_identifier: $(q source -c "SELECT system_identifier FROM pg_control_system()")$" "$HOLD_OUT"
    [ -n "$HOLD_SNAPSHOT" ]
    [ "$(peek_count hold1 hold1)" = 0 ]

    q source -c "INSERT INTO items SELECT g, 'after' FROM generate_series(101, 110) g"
    sleep 3   # longer than both idle timeouts
    run import_count "$HOLD_SNAPSHOT" items
    assert_success
    assert_output 100
    run import_count "$HOLD_SNAPSHOT" "items WHERE v = 'after'"
    assert_output 0
    [ "$(q source -c "SELECT count(*) FROM items")" = 110 ]
    # the ten inserts (begin, relation, 10 inserts, commit) are in the stream
    [ "$(peek_count hold1 hold1)" -ge 12 ]

    # status sees the holder and the xmin it pins
    run --separate-stderr lm-slot status --source "$SOURCE_CONN" --slot hold1 --json
    assert_success
    [ "$(jq -r .snapshot_held <<<"$output")" = true ]
    [ "$(jq -r .snapshot_xmin <<<"$output")" != null ]

    # closing stdin releases the snapshot, the slot stays
    exec 5>&-
    wait_pid "$HOLD_PID" 60 "lm-slot create --hold to end (its input closed)"
    grep -q 'released snapshot' "$HOLD_ERR"
    run import_count "$HOLD_SNAPSHOT" items
    assert_failure
    [[ "$output" == *"invalid snapshot identifier"* ]]
    [ "$(count_slots hold1)" = 1 ]
    q source -c "DELETE FROM items WHERE id > 100"
    lm-slot drop --source "$SOURCE_CONN" --slot hold1
}

@test "create --hold: SIGTERM releases the snapshot and exits 0" {
    start_hold hold2 --table items --json
    jq -e '.slot == "hold2" and (.system_identifier | type) == "string" and .publication == "hold2"' "$HOLD_OUT"
    HOLD_SNAPSHOT=$(jq -r .snapshot "$HOLD_OUT")
    run import_count "$HOLD_SNAPSHOT" items
    assert_output 100
    local pid
    pid=$(q source -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'lm-slot hold hold2'")
    [ -n "$pid" ]
    kill -TERM "$(cat "$BATS_TEST_TMPDIR/hold.pid")"
    wait_pid "$HOLD_PID" 60 "lm-slot create --hold to end on SIGTERM"
    grep -q 'released snapshot .* (SIGTERM)' "$HOLD_ERR"
    run import_count "$HOLD_SNAPSHOT" items
    assert_failure
    lm-slot drop --source "$SOURCE_CONN" --slot hold2
}

@test "create without --hold prints the slot and exits; the publication lists the tables" {
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot plain1 --table items --publication 'pub "one"; x'
    assert_success
    [[ "$output" == *"publication: pub \"one\"; x"* ]]
    [ "$(count_slots plain1)" = 1 ]
    [ "$(q source -c "SELECT string_agg(schemaname || '.' || tablename, ',') FROM pg_publication_tables WHERE pubname = 'pub \"one\"; x'")" = public.items ]
    [ "$(q source -c "SELECT puballtables FROM pg_publication WHERE pubname = 'pub \"one\"; x'")" = f ]
    run lm-slot drop --source "$SOURCE_CONN" --slot plain1 --publication 'pub "one"; x'
    assert_success
    [ "$(count_slots plain1)" = 0 ]
    [ "$(q source -c "SELECT count(*) FROM pg_publication WHERE pubname = 'pub \"one\"; x'")" = 0 ]
}

@test "create: scope is leaf tables and partitions; views, matviews, unlogged and excluded tables are left out" {
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot scope1 --schema scope --exclude-table scope.skipme
    assert_success
    run q source -c "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'scope1'"
    assert_output "scope.parted_1,scope.parted_2,scope.plain"
    # the unlogged table in scope is named: its changes cannot be captured
    [[ "$stderr" == *"unlogged tables are not published"*"scope.unlogged"* ]]
    [ "$(q source -c "SELECT pubviaroot FROM pg_publication WHERE pubname = 'scope1'")" = f ]
    lm-slot drop --source "$SOURCE_CONN" --slot scope1

    # a partitioned table named with --table means its partitions; excluding a partition
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot scope2 --table scope.parted --exclude-table parted_2
    assert_success
    run q source -c "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'scope2'"
    assert_output "scope.parted_1"
    lm-slot drop --source "$SOURCE_CONN" --slot scope2

    # a view, an unlogged table and a missing one are errors, all reported
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot scope3 --table scope.a_view --table scope.unlogged --table nosuch --schema nosuchschema
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'table "scope.a_view" not found'* ]]
    [[ "$stderr" == *'table "scope.unlogged" not found'* ]]
    [[ "$stderr" == *'table "nosuch" not found'* ]]
    [[ "$stderr" == *'schema "nosuchschema" not found'* ]]
    [ "$(count_slots scope3)" = 0 ]
    [ "$(count_pubs scope3)" = 0 ]
}

@test "create: hostile schema and table names are published correctly" {
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot hostile1 --schema 'Sch ema'
    assert_success
    run q source -c "SELECT string_agg(schemaname || '|' || tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'hostile1'"
    assert_output 'Sch ema|tâblé.ü,Sch ema|we"ird; drop table x'
    lm-slot drop --source "$SOURCE_CONN" --slot hostile1

    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot hostile2 \
        --table 'Sch ema.we"ird; drop table x' --table '"Sch ema"."tâblé.ü"'
    assert_success
    run q source -c "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'hostile2'"
    assert_output 2
    # the table the name tries to drop is still there, and so is everything else
    [ "$(q source -c "SELECT count(*) FROM items")" = 100 ]
    lm-slot drop --source "$SOURCE_CONN" --slot hostile2
}

# ---------- preflight ----------

@test "preflight: tables without replica identity are refused with the exact fix, nothing created" {
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot ri1 --table items --table keyless --table nothing_ri --table idx_ri --table defer_pk
    [ "$status" -eq 4 ]
    # the server ignores a deferrable primary key for the replica identity
    [[ "$stderr" == *"table public.defer_pk has no replica identity (no primary key (a deferrable"* ]]
    [[ "$stderr" == *"table public.keyless has no replica identity"* ]]
    [[ "$stderr" == *'ALTER TABLE "public"."keyless" REPLICA IDENTITY FULL;'* ]]
    [[ "$stderr" == *"table public.nothing_ri has no replica identity (REPLICA IDENTITY NOTHING)"* ]]
    [[ "$stderr" == *"table public.idx_ri has no replica identity (REPLICA IDENTITY USING INDEX"* ]]
    [[ "$stderr" == *"--replica-identity-full"* ]]
    [[ "$stderr" == *"4 problems found: nothing was created"* ]]
    [[ "$stderr" != *items* ]]
    [ "$(count_slots ri1)" = 0 ]
    [ "$(count_pubs ri1)" = 0 ]
    [ "$(q source -c "SELECT relreplident FROM pg_class WHERE relname = 'keyless'")" = d ]
    # the default scope (all of public, scope, Sch ema) includes the keyless tables too
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot ri1
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"public.keyless"* ]]
}

@test "create --replica-identity-full fixes keyless tables, so UPDATE and DELETE keep working" {
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot rifull --table keyless --replica-identity-full
    assert_success
    [[ "$stderr" == *"set REPLICA IDENTITY FULL on table public.keyless"* ]]
    [ "$(q source -c "SELECT relreplident FROM pg_class WHERE relname = 'keyless'")" = f ]
    [ "$(count_pubs rifull)" = 1 ]
    run q source -c "UPDATE keyless SET b = 'z' WHERE a = 1; DELETE FROM keyless WHERE a = 2; SELECT count(*) FROM keyless"
    assert_success
    assert_output 1
    lm-slot drop --source "$SOURCE_CONN" --slot rifull
    q source -c "INSERT INTO keyless VALUES (2, 'y'); ALTER TABLE keyless REPLICA IDENTITY DEFAULT"
}

@test "preflight: an existing slot or publication is refused, nothing created" {
    q source -c "SELECT pg_create_logical_replication_slot('taken', 'pgoutput')" >/dev/null
    q source -c "CREATE PUBLICATION taken_pub FOR TABLE items"
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot taken --table items
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'replication slot "taken" already exists'* ]]
    [ "$(count_pubs taken)" = 0 ]
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot taken --publication taken_pub --table items
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'replication slot "taken" already exists'* ]]
    [[ "$stderr" == *'publication "taken_pub" already exists'* ]]
    [[ "$stderr" == *"2 problems found"* ]]
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot fresh --publication taken_pub --table items
    [ "$status" -eq 4 ]
    [ "$(count_slots fresh)" = 0 ]
    q source -c "SELECT pg_drop_replication_slot('taken'); DROP PUBLICATION taken_pub" >/dev/null
}

@test "preflight: a role without REPLICATION, CREATE or ownership gets every problem at once" {
    local conn="host=127.0.0.1 port=$SOURCE_PORT dbname=postgres user=norepl"
    run --separate-stderr lm-slot create --source "$conn" --slot norepl1 --table items
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'role "norepl" has neither the REPLICATION attribute nor superuser'* ]]
    [[ "$stderr" == *'ALTER ROLE "norepl" REPLICATION;'* ]]
    [[ "$stderr" == *'lacks the CREATE privilege on database "postgres"'* ]]
    [[ "$stderr" == *'does not own table public.items (owner: postgres)'* ]]
    [[ "$stderr" == *"3 problems found"* ]]
    run --separate-stderr lm-slot create --source "$conn" --slot norepl1 --all-tables
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"--all-tables needs superuser"* ]]
    [ "$(count_slots norepl1)" = 0 ]
    [ "$(count_pubs norepl1)" = 0 ]
}

@test "preflight: wal_level=replica and no free slot are both reported, nothing created" {
    run --separate-stderr lm-slot create --source "$NOLOG_CONN" --slot s1 --table items
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'wal_level is "replica"'* ]]
    [[ "$stderr" == *"ALTER SYSTEM SET wal_level = logical"* ]]
    [[ "$stderr" == *"no free replication slot: max_replication_slots is 1 and 1 is in use"* ]]
    [[ "$stderr" == *"2 problems found: nothing was created"* ]]
    [ "$(q nolog -c "SELECT count(*) FROM pg_publication")" = 0 ]
    [ "$(q nolog -c "SELECT string_agg(slot_name, ',') FROM pg_replication_slots")" = phys ]
}

@test "preflight: a prepared transaction is reported" {
    pg_start prep "max_prepared_transactions = 2"
    q prep -c "CREATE TABLE t (id int PRIMARY KEY); BEGIN; INSERT INTO t VALUES (1); PREPARE TRANSACTION 'gid''1'"
    run --separate-stderr lm-slot create --source "$PREP_CONN" --slot p1
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"1 prepared transaction on the source"* ]]
    [[ "$stderr" == *"'gid''1'"* ]]
    [ "$(q prep -c "SELECT count(*) FROM pg_publication")" = 0 ]
    pg_stop prep
}

@test "create --all-tables publishes FOR ALL TABLES and warns about later tables" {
    local conn="host=127.0.0.1 port=$SOURCE_PORT dbname=alltab user=postgres"
    run --separate-stderr lm-slot create --source "$conn" --slot all1 --all-tables
    assert_success
    [[ "$output" == *"database: alltab"* ]]
    [[ "$stderr" == *"FOR ALL TABLES also covers tables created later"* ]]
    [ "$(PGDATABASE_TEST=alltab q source -c "SELECT puballtables FROM pg_publication WHERE pubname = 'all1'")" = t ]
    lm-slot drop --source "$conn" --slot all1
}

@test "create: interrupted while waiting for a running transaction, it cancels and leaves nothing behind" {
    bg_start BLOCKER psql -X -q -h 127.0.0.1 -p "$SOURCE_PORT" -U postgres -d postgres \
        -c "BEGIN; INSERT INTO keyless VALUES (99, 'blocker'); SELECT pg_sleep(60); COMMIT"
    wait_for 10 bash -c "[ \"\$(psql -X -At -h 127.0.0.1 -p $SOURCE_PORT -U postgres -d postgres -c \"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()\")\" = 1 ]"
    local err=$BATS_TEST_TMPDIR/wait.err
    bg_start WPID bash -c 'echo $$ >"$1"; exec lm-slot create --source "$2" --slot waiting1 --table items 2>"$3" >/dev/null' \
        _ "$BATS_TEST_TMPDIR/wait.pid" "$SOURCE_CONN" "$err"
    wait_for 20 grep -q "waits for 1 running transaction" "$err"
    grep -q "pg_sleep\|idle\|active" "$err"
    kill -TERM "$(cat "$BATS_TEST_TMPDIR/wait.pid")"
    local rc=0
    wait_pid "$WPID" 60 "lm-slot create to end on SIGTERM" || rc=$?
    [ "$rc" -eq 1 ]
    grep -q "dropped publication" "$err"
    [ "$(count_slots waiting1)" = 0 ]
    [ "$(count_pubs waiting1)" = 0 ]
    q source -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
    wait_pid "$BLOCKER" 30 "the blocking psql to end (its backend terminated)" || true
    [ "$(q source -c "SELECT count(*) FROM keyless WHERE a = 99")" = 0 ]
}

@test "create: DDL gives up after lock_timeout 5s instead of queueing behind the application" {
    bg_start LOCKER psql -X -q -h 127.0.0.1 -p "$SOURCE_PORT" -U postgres -d postgres \
        -c "BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT"
    wait_for 10 bash -c "[ \"\$(psql -X -At -h 127.0.0.1 -p $SOURCE_PORT -U postgres -d postgres -c \"SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'items' AND l.mode = 'AccessExclusiveLock' AND l.granted\")\" = 1 ]"
    local t0=$SECONDS
    run --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot locked1 --table items
    [ "$status" -eq 5 ]
    [ $((SECONDS - t0)) -lt 30 ]
    [[ "$stderr" == *"lock timeout"* ]]
    [[ "$stderr" == *"Nothing was created on the source"* ]]
    [ "$(count_slots locked1)" = 0 ]
    [ "$(count_pubs locked1)" = 0 ]
    q source -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%LOCK TABLE items%' AND pid <> pg_backend_pid()" >/dev/null
    wait_pid "$LOCKER" 30 "the locking psql to end (its backend terminated)" || true
}

# ---------- status, drop, advance ----------

@test "status: text and JSON, lag and retained WAL in bytes; a missing slot exits 4" {
    lm-slot create --source "$SOURCE_CONN" --slot st1 --table items >/dev/null 2>&1
    q source -c "INSERT INTO items VALUES (1000, 'lag'); DELETE FROM items WHERE id = 1000"
    run --separate-stderr lm-slot status --source "$SOURCE_CONN" --slot st1
    assert_success
    [[ "$output" == *"slot: st1"* ]]
    [[ "$output" == *"plugin: pgoutput"* ]]
    [[ "$output" == *"active: false"* ]]
    [[ "$output" == *"wal_status: reserved"* ]]
    [[ "$output" =~ lag_bytes:\ [1-9][0-9]* ]]
    [[ "$output" =~ catalog_xmin:\ [0-9]+ ]]
    run --separate-stderr lm-slot status --source "$SOURCE_CONN" --slot st1 --json
    assert_success
    jq -e '.slot == "st1" and .exists == true and .active == false and .active_pid == null
           and (.lag_bytes | type) == "number" and .lag_bytes > 0
           and .retained_wal_bytes >= .lag_bytes and .wal_status == "reserved"
           and .snapshot_held == false and (.confirmed_flush_lsn | test("^[0-9A-F]+/[0-9A-F]+$"))' <<<"$output"
    run --separate-stderr lm-slot status --source "$SOURCE_CONN" --slot nosuchslot
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'replication slot "nosuchslot" does not exist'* ]]
    [ -z "$output" ]
}

@test "advance moves the slot forward and releases its lag" {
    q source -c "INSERT INTO items VALUES (1001, 'adv'); DELETE FROM items WHERE id = 1001"
    local to
    to=$(q source -c "SELECT pg_current_wal_lsn()")
    run --separate-stderr lm-slot advance --source "$SOURCE_CONN" --slot st1 --to "$to"
    assert_success
    [[ "$output" == *"position: "* ]]
    [ "$(q source -c "SELECT confirmed_flush_lsn >= '$to'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'st1'")" = t ]
    # a position already passed is a no-op (lm-slot(1)), not an error
    local at
    at=$(q source -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'st1'")
    run --separate-stderr lm-slot advance --source "$SOURCE_CONN" --slot st1 --to 0/1
    assert_success
    [[ "$stderr" == *"nothing to do"* ]]
    [[ "$output" == *"position: $at"* ]]
    [ "$(q source -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'st1'")" = "$at" ]
    run --separate-stderr lm-slot advance --source "$SOURCE_CONN" --slot nosuchslot --to 0/1
    [ "$status" -eq 4 ]
}

@test "drop refuses an active slot naming its pid, then drops; a second drop is a no-op" {
    bg_start RECV pg_recvlogical --no-loop -h 127.0.0.1 -p "$SOURCE_PORT" -U postgres -d postgres \
        -S st1 --start -f /dev/null -o proto_version=1 -o publication_names=st1
    wait_for 20 bash -c "[ \"\$(psql -X -At -h 127.0.0.1 -p $SOURCE_PORT -U postgres -d postgres -c \"SELECT active FROM pg_replication_slots WHERE slot_name = 'st1'\")\" = t ]"
    local pid
    pid=$(q source -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'st1'")
    run --separate-stderr lm-slot drop --source "$SOURCE_CONN" --slot st1
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"is active: in use by the process with pid $pid"* ]]
    [ "$(count_slots st1)" = 1 ]
    [ "$(count_pubs st1)" = 1 ]
    run --separate-stderr lm-slot status --source "$SOURCE_CONN" --slot st1 --json
    [ "$(jq -r .active_pid <<<"$output")" = "$pid" ]
    run --separate-stderr lm-slot advance --source "$SOURCE_CONN" --slot st1 --to 0/1
    [ "$status" -eq 4 ]
    q source -c "SELECT pg_terminate_backend($pid)" >/dev/null
    wait_pid "$RECV" 30 "the receiver to end (its walsender terminated)" || true
    wait_for 10 bash -c "[ \"\$(psql -X -At -h 127.0.0.1 -p $SOURCE_PORT -U postgres -d postgres -c \"SELECT active FROM pg_replication_slots WHERE slot_name = 'st1'\")\" = f ]"
    run --separate-stderr lm-slot drop --source "$SOURCE_CONN" --slot st1
    assert_success
    [[ "$stderr" == *'dropped replication slot "st1"'* ]]
    [ "$(count_slots st1)" = 0 ]
    [ "$(count_pubs st1)" = 0 ]
    run --separate-stderr lm-slot drop --source "$SOURCE_CONN" --slot st1
    assert_success
    [[ "$stderr" == *"does not exist: nothing to drop"* ]]
}

@test "status: a lost slot is fatal (exit 4) with what to do" {
    # nolog keeps at most 1MB of WAL for slots: switching segments and a
    # checkpoint remove what the physical slot reserved
    local i
    for i in 1 2 3 4; do
        q nolog -c "INSERT INTO items SELECT coalesce(max(id), 0) + 1 FROM items; SELECT pg_switch_wal()" >/dev/null
    done
    q nolog -c "CHECKPOINT"
    wait_for 20 bash -c "[ \"\$(psql -X -At -h 127.0.0.1 -p $NOLOG_PORT -U postgres -d postgres -c \"SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'phys'\")\" = lost ]"
    run --separate-stderr lm-slot status --source "$NOLOG_CONN" --slot phys
    [ "$status" -eq 4 ]
    [[ "$output" == *"wal_status: lost"* ]]
    [[ "$stderr" == *'replication slot "phys" is lost'* ]]
    [[ "$stderr" == *"lm-slot drop"* ]]
}

@test "create: a database without tables (functions, views, extensions) gets an empty publication and its slot; filters that leave nothing are refused" {
    q source -c "CREATE DATABASE notables"
    local conn="host=127.0.0.1 port=$SOURCE_PORT dbname=notables user=postgres"
    PGDATABASE_TEST=notables q source -c "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'" \
        -c "CREATE VIEW v AS SELECT * FROM (VALUES (1)) x(a)"
    run -4 --separate-stderr lm-slot create --source "$conn" --slot nt1 --schema public
    [[ $stderr == *"no tables to publish"* ]]
    [ "$(PGDATABASE_TEST=notables q source -c "SELECT count(*) FROM pg_publication")" = 0 ]
    run -0 --separate-stderr lm-slot create --source "$conn" --slot nt1 --json --output "$BATS_TEST_TMPDIR/nt1.json"
    [[ $stderr == *'has no tables to publish: the publication is created empty'* ]]
    [ -z "$output" ]
    [ ! -e "$BATS_TEST_TMPDIR/nt1.json.tmp" ]
    jq -e '.slot == "nt1" and (.snapshot | test("^[0-9A-F]+-[0-9A-F]+-[0-9]+$"))' "$BATS_TEST_TMPDIR/nt1.json"
    [ "$(count_slots nt1)" = 1 ]
    [ "$(PGDATABASE_TEST=notables q source -c "SELECT count(*) FROM pg_publication p WHERE pubname = 'nt1' AND NOT puballtables AND NOT EXISTS (SELECT 1 FROM pg_publication_tables t WHERE t.pubname = p.pubname)")" = 1 ]
    run -0 lm-slot drop --source "$conn" --slot nt1
}

@test "create --output: the result is written to a temporary file and renamed; an unwritable one changes nothing (exit 9)" {
    run -9 --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot out1 --table items --output "$BATS_TEST_TMPDIR/none/x.json"
    [[ $stderr == *"could not create"* ]]
    [ "$(count_slots out1)" = 0 ]
    [ "$(count_pubs out1)" = 0 ]
    run -0 --separate-stderr lm-slot create --source "$SOURCE_CONN" --slot out1 --table items --output "$BATS_TEST_TMPDIR/out1.txt"
    [ -z "$output" ]
    grep -q '^slot: out1$' "$BATS_TEST_TMPDIR/out1.txt"
    [ ! -e "$BATS_TEST_TMPDIR/out1.txt.tmp" ]
    run -0 lm-slot drop --source "$SOURCE_CONN" --slot out1
}
