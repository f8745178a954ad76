#!/usr/bin/env bats
# lm-migrate: the whole story on real clusters.  One source and one target
# cluster for the file; every test migrates a database of its own, cloned
# from a template that holds pagila, pgbench's tables and a sequence no
# column owns.  ROUNDS=N repeats the kill -9 rounds of the resume test.

load helpers
load migrate_helpers   # setup, teardown_file, mkdb, qs, qt, lmm, ...
bats_require_minimum_version 1.5.0

setup_file() {
    migrate_template -f "$LM_FIXTURES/pagila/pagila-schema.sql" -f "$LM_FIXTURES/pagila/pagila-data.sql"
    pgbench -i -q -s 1 "host=127.0.0.1 port=$SOURCE_PORT dbname=tmpl user=postgres" >/dev/null 2>&1
    PGDATABASE_TEST=tmpl q source -c "CREATE SEQUENCE public.free_seq START 1000" \
        -c "CREATE TABLE public.big (id bigint PRIMARY KEY, v text)" \
        -c "INSERT INTO public.big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 150000) g"
}

teardown() {
    show_failed_migration
    stop_load
    abort_migration
    stop_sshd
}

# Writes on the source: pgbench's transaction plus inserts, updates and
# deletes on pagila tables and a sequence no column owns.
start_load() {   # start_load RATE
    cat >"$BATS_TEST_TMPDIR/extra.sql" <<'SQL'
\set a random(1, 200)
INSERT INTO actor (first_name, last_name) VALUES ('LOAD', 'TEST');
UPDATE actor SET last_update = now() WHERE actor_id = :a;
DELETE FROM film_actor WHERE actor_id = :a AND film_id = (SELECT min(film_id) FROM film_actor WHERE actor_id = :a);
SELECT nextval('free_seq');
SQL
    bg_start LOAD_SH sh -c "echo \$\$ >'$BATS_TEST_TMPDIR/load.pid'; exec pgbench -n -c 2 -j 2 -T 600 -R ${1:-100} -b tpcb-like@4 -f '$BATS_TEST_TMPDIR/extra.sql@1' '$SRC' >'$BATS_TEST_TMPDIR/load.log' 2>&1"
    wait_for 10 test -s "$BATS_TEST_TMPDIR/load.pid"
}

stop_load() { stop_pid_file "$BATS_TEST_TMPDIR/load.pid"; }

alive() { local p; p=$(pid_of "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
lag_zero() { [ "$(lm-migrate status --workdir "$W" --json | jq -r .lag_bytes)" = 0 ]; }
lag_all_zero() { lm-migrate status --workdir "$W" --json | jq -e '.lag_bytes == 0 and .lag_seconds == 0 and .caught_up' >/dev/null; }

@test "lm-migrate: --help, --version, bad options and commands" {
    program_help_ok lm-migrate
    assert_output --partial "cutover"
    program_version_ok lm-migrate
    program_options_handling_ok lm-migrate
    [[ $stderr == *'unrecognized option "--not-a-valid-option"'* ]]
    run -2 lm-migrate
    assert_output --partial "no command given"
    run -2 lmm frobnicate
    assert_output --partial 'unknown command "frobnicate"'
    run -2 lmm start --jobs 0 --source x --target y
    assert_output --partial "1..64"
    run -2 lmm cutover --timeout abc
    assert_output --partial "--timeout"
    run -2 lmm status --fence
    assert_output --partial "not valid"
    run -2 lmm start --source
    assert_output --partial "needs a value"
    run -2 lmm status --workdir "$BATS_TEST_TMPDIR/none"
    assert_output --partial "no migration"
    # the man page lists every exit status of common/exitcodes.h
    local code n=0
    for code in $(sed -n 's/^ *LM_EXIT_[A-Z]* = \([0-9]*\).*/\1/p' "$LM_ROOT/common/exitcodes.h"); do
        grep -q "^$code \{0,1\}\*\{0,1\}"$'\t' "$LM_ROOT/man/lm-migrate.1"
        n=$((n + 1))
    done
    [ "$n" -ge 12 ]
}

@test "lm-migrate: a password in a connection string is refused before anything runs" {
    run -2 lmm start --source "host=x password=secret" --target "host=y" --workdir "$W"
    assert_output --partial "contains a password"
    assert_output --partial ".pgpass"
    run -2 lmm start --source "postgresql://u:secret@h/db" --target "host=y" --workdir "$W"
    assert_output --partial "contains a password"
    # libpq takes a ? in the password, and decodes %XX in a URI's keys
    run -2 lmm start --source "postgresql://u:sec?ret@h/db" --target "host=y" --workdir "$W"
    assert_output --partial "contains a password"
    run -2 lmm start --source "host=x" --target "postgresql://u@h/db?pass%77ord=secret" --workdir "$W"
    assert_output --partial "contains a password"
    [ ! -e "$W/config" ]
}

@test "lm-migrate: a slot or publication of that name already on the source is refused (exit 4) and left alone by start, abort and clean" {
    mkdb taken
    qs -c "SELECT 1 FROM pg_create_logical_replication_slot('theirs', 'pgoutput')" -c "CREATE PUBLICATION theirs FOR TABLE actor"
    run -4 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --slot theirs
    assert_output --partial "already exists"
    # a second start is allowed (nothing was made), and refused the same way
    run -4 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --slot theirs
    run -0 lmm abort --workdir "$W"
    run -0 lmm clean --workdir "$W"
    [ ! -e "$W" ]
    [ "$(qs -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'theirs'")" = 1 ]
    [ "$(qs -c "SELECT count(*) FROM pg_publication WHERE pubname = 'theirs'")" = 1 ]
    qs -c "SELECT pg_drop_replication_slot('theirs')" -c "DROP PUBLICATION theirs"
}

@test "lm-migrate: a source role that cannot read a sequence is refused in the preflight (exit 4), naming it" {
    mkdb seqpriv
    qs -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'noseq') THEN
             CREATE ROLE noseq LOGIN REPLICATION; END IF; END \$\$" \
       -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO noseq"
    run -4 lmm start --source "host=127.0.0.1 port=$SOURCE_PORT dbname=s_seqpriv user=noseq" --target "$TGT" --workdir "$W"
    assert_output --partial "cannot read these sequences"
    assert_output --partial "public.actor_actor_id_seq"
    [ "$(qs -c "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()")" = 0 ]
}

@test "lm-migrate: clean refuses a directory that is not a work directory, and removes nothing" {
    local d=$BATS_TEST_TMPDIR/precious
    mkdir -p "$d/sub"
    echo keep >"$d/sub/file"
    run -2 lmm clean --workdir "$d"
    assert_output --partial "not an lm-migrate work directory"
    [ "$(cat "$d/sub/file")" = keep ]
    # an empty one goes
    mkdir "$d/empty"
    run -0 lmm clean --workdir "$d/empty"
    [ ! -e "$d/empty" ]
}

@test "lm-migrate: preflight refuses a non-empty target (exit 4) and creates nothing" {
    mkdb pre
    qt -c "CREATE TABLE squatter (i int)"
    run -4 lmm start --source "$SRC" --target "$TGT" --workdir "$W"
    assert_output --partial "not empty"
    assert_output --partial "public.squatter"
    run -0 qs -c "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
    assert_output 0
    run -0 qs -c "SELECT count(*) FROM pg_publication"
    assert_output 0
    # a target we cannot reach: exit 3
    run -3 lmm start --source "$SRC" --target "host=127.0.0.1 port=1 user=postgres dbname=x" --workdir "$BATS_TEST_TMPDIR/w2"
}

@test "lm-migrate: the full story under pgbench load: start, caught up, cutover, verify, sequences, pgbench on the target" {
    mkdb story
    start_load 100
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --replica-identity-full
    assert_output --partial "caught up"
    run -0 lmm status --workdir "$W" --json
    echo "$output" | jq -e '.phase == "streaming" and .stages.decode and .stages.apply and .copy.tables_done == .copy.tables_total' >/dev/null
    echo "$output" | jq -e '.attention == []' >/dev/null
    run -0 lmm status --workdir "$W"
    assert_output --partial "phase:      streaming"
    sleep 2
    run -0 lmm cutover --workdir "$W" --fence --timeout 120
    assert_output --partial "cutover complete"
    assert_output --regexp "downtime: +[0-9.]+s"
    assert_output --partial "point of no return"
    assert_output --regexp "[0-9]+ tables equal"
    phase_is "done"
    # the fence ended pgbench's sessions: nothing writes any more
    local slot
    slot=$(jq -r .slot "$W/slot.json")
    run -0 lmm verify --workdir "$W"
    sequences_caught_up
    run -0 qs -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'"
    assert_output 0
    run -0 qs -c "SELECT count(*) FROM pg_publication WHERE pubname = '$slot'"
    assert_output 0
    # the source is fenced; the application can write to the target
    run -0 qs -c "SHOW default_transaction_read_only"
    assert_output on
    run -0 pgbench -n -c 2 -T 2 -f "$BATS_TEST_TMPDIR/extra.sql" -b tpcb-like "$TGT"
    # a second cutover is a no-op
    run -0 lmm cutover --workdir "$W"
    assert_output --partial "already done"
    # clean removes lm's state; the old source stays fenced
    run -0 lmm clean --workdir "$W"
    assert_output --partial "stays fenced"
    run -0 qs -c "SHOW default_transaction_read_only"
    assert_output on
}

@test "lm-migrate: identity columns (ALWAYS, BY DEFAULT), a table without columns and an all-generated one, written live: cutover verifies, rows equal, identity sequences past the source's" {
    # a database of its own (not the template's): these tables only
    q source -c "CREATE DATABASE s_oddcols"
    q target -c "CREATE DATABASE t_oddcols"
    SRC="host=127.0.0.1 port=$SOURCE_PORT dbname=s_oddcols user=postgres"
    TGT="host=127.0.0.1 port=$TARGET_PORT dbname=t_oddcols user=postgres"
    DB=oddcols
    qs >/dev/null <<'SQL'
CREATE TABLE ida (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
CREATE TABLE idd (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text);
CREATE TABLE idk (k text PRIMARY KEY, n int GENERATED ALWAYS AS IDENTITY (START 100), v text);
CREATE TABLE nocols ();
ALTER TABLE nocols REPLICA IDENTITY FULL;
CREATE TABLE gen (a int GENERATED ALWAYS AS (1) STORED, b text GENERATED ALWAYS AS ('x') STORED);
ALTER TABLE gen REPLICA IDENTITY FULL;
CREATE TABLE gmix (id int PRIMARY KEY, v int, g int GENERATED ALWAYS AS (v * 2) STORED);
INSERT INTO ida (v) SELECT 'snap ' || g FROM generate_series(1, 50) g;
INSERT INTO idd (v) SELECT 'snap ' || g FROM generate_series(1, 50) g;
INSERT INTO idk (k, v) SELECT 'k' || g, 'snap' FROM generate_series(1, 20) g;
INSERT INTO nocols SELECT FROM generate_series(1, 5);
INSERT INTO gen SELECT FROM generate_series(1, 5);
INSERT INTO gmix SELECT g, g FROM generate_series(1, 20) g;
SQL
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2
    assert_output --partial "caught up"
    # the live phase: inserts (one by one and runs), updates that keep and
    # that move identity values, deletes
    qs >/dev/null <<'SQL'
INSERT INTO ida (v) VALUES ('live');
INSERT INTO ida (v) SELECT 'run ' || g FROM generate_series(1, 200) g;
UPDATE ida SET v = 'updated' WHERE id <= 10;
UPDATE ida SET id = DEFAULT WHERE id = 11;
DELETE FROM ida WHERE id = 12;
INSERT INTO idd (v) VALUES ('live');
INSERT INTO idd VALUES (5000, 'explicit');
UPDATE idd SET id = 6000, v = 'moved' WHERE id = 1;
DELETE FROM idd WHERE id = 2;
INSERT INTO idk (k, v) VALUES ('live', 'x');
UPDATE idk SET v = 'updated' WHERE k = 'k1';
UPDATE idk SET n = DEFAULT WHERE k = 'k2';
DELETE FROM idk WHERE k = 'k3';
INSERT INTO nocols DEFAULT VALUES;
INSERT INTO nocols SELECT FROM generate_series(1, 150);
DELETE FROM nocols WHERE ctid = (SELECT ctid FROM nocols LIMIT 1);
INSERT INTO gen DEFAULT VALUES;
INSERT INTO gen SELECT FROM generate_series(1, 150);
UPDATE gen SET a = DEFAULT WHERE ctid = (SELECT ctid FROM gen LIMIT 1);
DELETE FROM gen WHERE ctid IN (SELECT ctid FROM gen LIMIT 2);
INSERT INTO gmix (id, v) VALUES (100, 100);
UPDATE gmix SET v = v + 1 WHERE id <= 5;
DELETE FROM gmix WHERE id = 6;
SQL
    run -0 lmm cutover --workdir "$W" --timeout 120
    assert_output --partial "cutover complete"
    assert_output --regexp "[0-9]+ tables equal"
    # compared here too, independently of lm-migrate's verify
    diff <(PGDATABASE_TEST=s_oddcols db_hashes source) <(PGDATABASE_TEST=t_oddcols db_hashes target)
    [ "$(qt -c "SELECT count(*) FROM nocols")" = 155 ]
    [ "$(qt -c "SELECT count(*) FROM gen")" = 154 ]
    # the identity sequences are at the source's values: the next value the
    # target draws is past every value the source gave
    sequences_caught_up
    local t
    for t in ida.id idd.id idk.n; do
        [ "$(qt -c "SELECT nextval(pg_get_serial_sequence('${t%.*}', '${t#*.}'))")" -gt \
          "$(qs -c "SELECT max(${t#*.}) FROM ${t%.*} WHERE ${t#*.} < 5000")" ]
    done
    # the application inserts on the target without a duplicate key
    run -0 qt -c "INSERT INTO ida (v) VALUES ('on the target') RETURNING id"
    [ "$output" -gt "$(qs -c "SELECT max(id) FROM ida")" ]
}

@test "lm-migrate: kill -9 of the orchestrator and of each stage, then --resume: verify passes" {
    mkdb resume
    # a sample a second: the count below does not depend on how fast
    # this machine runs the story
    export LM_HISTORY_INTERVAL=1
    start_load 50
    # the orchestrator dies during the copy
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 1 --replica-identity-full --detach
    wait_for 60 test -f "$W/pids/snapshot"
    phase_is copy
    local mpid
    mpid=$(pid_of migrate)
    kill -9 "$mpid"
    wait_for 10 bash -c "! kill -0 $mpid 2>/dev/null"
    run -2 lmm start --source "$SRC" --target "$TGT" --workdir "$W"
    assert_output --partial "start --resume"
    run lm-migrate status --workdir "$W" --json
    echo "$output" | jq -e '.attention | map(select(test("orchestrator|died"))) | length > 0' >/dev/null
    # resumed in the background; now the copy stage dies
    local old
    old=$(cat "$W/pids/snapshot")
    run -0 lmm start --resume --workdir "$W" --detach
    if wait_for 30 bash -c "[ -f '$W/pids/snapshot' ] && [ \"\$(cat '$W/pids/snapshot')\" != '$old' ]"; then
        kill -9 "$(pid_of snapshot)" 2>/dev/null || true
    fi
    wait_for 120 bash -c "! kill -0 $(pid_of migrate) 2>/dev/null"
    run -0 lmm start --resume --workdir "$W"
    assert_output --partial "caught up"
    # the history sampler outlived the kills (or was started again)
    run -0 lm-migrate status --workdir "$W" --json
    jq -e '.stages.history' <<<"$output" >/dev/null
    # stages die while streaming
    local stage
    for _ in $(seq 1 "${ROUNDS:-1}"); do
        for stage in decode apply; do
            kill -9 "$(pid_of "$stage")"
            wait_for 10 bash -c "! kill -0 $(pid_of "$stage") 2>/dev/null"
            run -0 lmm status --workdir "$W" --json
            echo "$output" | jq -e --arg s "$stage" '.stages[$s] == false and (.attention | length > 0)' >/dev/null
            sleep 1
            run -0 lmm start --resume --workdir "$W"
            assert_output --partial "caught up"
        done
    done
    # writes stop: the lag reaches 0 and status --json says so
    # (one status says all three: idle WAL, a checkpoint or autovacuum, may
    # move the source's position between two statuses until the next
    # keepalive carries it to the target)
    local resumed
    resumed=$(date +%s)
    stop_load
    wait_for 60 lag_all_zero
    sleep 2
    run -0 lmm cutover --workdir "$W" --timeout 120
    assert_output --partial "tables equal"
    jq -R -s -e --argjson t "$resumed" '[split("\n")[] | fromjson? | select(.event == "sample" and .time >= $t)] | length > 0' "$W/history.jsonl" >/dev/null
    # the history kept sampling through the kills (samples after the last
    # resume too), and the cutover ended it
    [ ! -e "$W/pids/history" ]
    jq -R -s -e '[split("\n")[] | fromjson? | select(.event == "sample")] | length > 10' "$W/history.jsonl" >/dev/null
    jq -R -s -e '[split("\n")[] | fromjson? | select(.event == "cutover")] | length == 1' "$W/history.jsonl" >/dev/null
    run -0 lmm verify --workdir "$W"
    sequences_caught_up
}

@test "lm-migrate: a cutover without --fence whose verify differs goes on replicating; the next cutover completes" {
    mkdb unfenced
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --replica-identity-full --no-wait
    wait_for 60 lag_zero
    # a difference the marker cannot explain (as writes after it would be)
    # (as replica: pagila's trigger would change last_update too)
    qt -c "SET session_replication_role = replica" -c "UPDATE actor SET first_name = 'DIFF' WHERE actor_id = 1"
    run -10 lmm cutover --workdir "$W" --timeout 60
    assert_output --partial "replication goes on"
    phase_is streaming
    alive decode
    alive apply
    # what the source takes now still reaches the target
    qs -c "INSERT INTO actor (first_name, last_name) VALUES ('AFTER', 'MARKER')"
    on_target() { [ "$(qt -c "SELECT count(*) FROM actor WHERE first_name = 'AFTER'")" = 1 ]; }
    wait_for 30 on_target
    qs -c "SELECT first_name FROM actor WHERE actor_id = 1" >"$BATS_TEST_TMPDIR/fn"
    qt -c "SET session_replication_role = replica" \
       -c "UPDATE actor SET first_name = '$(cat "$BATS_TEST_TMPDIR/fn")' WHERE actor_id = 1"
    run -0 lmm cutover --workdir "$W" --timeout 60
    assert_output --partial "cutover complete"
    phase_is done
    run -0 lmm clean --workdir "$W"
}

@test "lm-migrate: abort leaves no slot, publication, origin or lm schema behind (twice)" {
    mkdb abort
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --replica-identity-full --no-wait
    local slot
    slot=$(jq -r .slot "$W/slot.json")
    run -0 qs -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'"
    assert_output 1
    # a stuck apply: the cutover gives up after --timeout (exit 11), lifts
    # the fence and leaves the migration streaming
    kill -STOP "$(pid_of apply)"
    run -11 lmm cutover --workdir "$W" --fence --timeout 2
    kill -CONT "$(pid_of apply)"
    assert_output --partial "not applied within 2s"
    assert_output --partial "fence lifted"
    run -0 qs -c "SHOW default_transaction_read_only"
    assert_output off
    phase_is streaming
    run -0 lmm abort --workdir "$W"
    run -0 qs -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'"
    assert_output 0
    run -0 qs -c "SELECT count(*) FROM pg_publication WHERE pubname = '$slot'"
    assert_output 0
    run -0 qt -c "SELECT count(*) FROM pg_replication_origin WHERE roname = '$slot'"
    assert_output 0
    run -0 qt -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'lm'"
    assert_output 0
    [ ! -e "$W/spool" ]
    local s
    for s in decode apply snapshot slot; do
        ! alive "$s"
    done
    run -0 lmm abort --workdir "$W"
    run -0 lmm clean --workdir "$W"
    [ ! -e "$W" ]
    run -0 lmm clean --workdir "$W"
}

@test "lm-migrate: verify reports a difference with exit 10 and names the key range; hostile names are never split or run as SQL" {
    mkdb verify
    # a name with the separator of psql's output, a backslash, a quote and
    # SQL in it; a key column named alike
    qs -c 'CREATE TABLE public."x|oid) FROM pg_class t; DROP TABLE public.actor; --\" (
             "k|ey" int PRIMARY KEY, v text)' \
       -c 'INSERT INTO public."x|oid) FROM pg_class t; DROP TABLE public.actor; --\" SELECT g, $$v$$ || g FROM generate_series(1, 50) g'
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --replica-identity-full --no-wait
    wait_for 60 lag_zero
    run -0 lmm verify --workdir "$W"
    [[ $output == *"tables equal"* ]]
    # the work directory is this user's only: logs, config, dump, spool
    find "$W" -perm /077 -printf '%m %p\n' >"$BATS_TEST_TMPDIR/perms"
    cat "$BATS_TEST_TMPDIR/perms"
    [ ! -s "$BATS_TEST_TMPDIR/perms" ]
    run -0 lmm verify --workdir "$W" --table public.actor --table public.big
    qt -c "UPDATE public.big SET v = 'x' WHERE id = 7"
    run -10 lmm verify --workdir "$W" --table public.actor --table public.big
    assert_output --partial "public.big"
    assert_output --partial "id in [0,1000000)"
    refute_output --partial "public.actor "
    # the hostile table, changed on the target: found, named whole, its
    # key range located; nothing it holds is run on either side
    qt -c 'UPDATE public."x|oid) FROM pg_class t; DROP TABLE public.actor; --\" SET v = $$changed$$ WHERE "k|ey" = 3'
    run -10 lmm verify --workdir "$W"
    assert_output --partial 'DROP TABLE public.actor; --\"'
    assert_output --partial '"k|ey" in [0,1000000)'
    assert_output --partial "verify: 2 of"
    [ "$(qs -c "SELECT count(*) FROM public.actor")" -gt 0 ]
    [ "$(qt -c "SELECT count(*) FROM public.actor")" -gt 0 ]
    # a table that does not exist is named, not run; a target that cannot
    # be reached is exit 3, not a difference
    run -10 lmm verify --workdir "$W" --table 'public.nosuch; SELECT 1'
    assert_output --partial "no such table on the source"
    run -3 lm-migrate verify --source "$SRC" --target "host=127.0.0.1 port=1 dbname=x user=postgres connect_timeout=2" --table public.actor
}

@test "lm-migrate: decode and apply on other hosts through ssh" {
    sshd_or_skip
    mkdb ssh
    local rd=$BATS_TEST_TMPDIR/remote
    # a host without the programs: a clear refusal before anything is created
    run -4 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --replica-identity-full \
        --decode-host bare --remote-dir "$rd"
    assert_output --partial "lm-decode is not installed on bare"
    rm -rf "$W"
    start_load 30
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --replica-identity-full \
        --decode-host lmtest --apply-host lmtest --remote-dir "$rd"
    # the spool lives on the decode host; nothing in argv holds a password
    [ -d "$rd/spool" ]
    [ ! -e "$W/spool" ] || [ -z "$(ls "$W/spool")" ]
    run -0 lmm status --workdir "$W" --json
    echo "$output" | jq -e '.stages.decode and .stages.apply and .phase == "streaming"' >/dev/null
    sleep 3
    stop_load
    run -0 lmm cutover --workdir "$W" --timeout 180
    assert_output --regexp "[0-9]+ tables equal"
    run -0 lmm verify --workdir "$W"
    sequences_caught_up
    # no stage left running on the "remote" host
    [ ! -e "$rd/decode.pid" ] || ! kill -0 "$(cat "$rd/decode.pid")" 2>/dev/null
    run -0 lmm clean --workdir "$W"
    [ ! -e "$rd" ]
    stop_sshd
}

@test "lm-migrate: ssh stages under a POSIX login shell (dash): non-ASCII, a newline and quotes in what ssh runs" {
    dash_user_or_skip
    sshd_or_skip
    wait_for 10 "$LM_SSH" lmdash true </dev/null || skip "cannot log in as $LM_DASH_USER through ssh"
    # the remote user runs dash: what bash's printf %q makes of these
    # ($'...') is not quoting there
    [ "$("$LM_SSH" lmdash 'echo $0' </dev/null)" = dash ] || [ "$("$LM_SSH" lmdash 'readlink -f /proc/$$/exe' </dev/null)" = /bin/dash ]
    q source -c 'CREATE DATABASE "s_café" TEMPLATE tmpl'
    q target -c 'CREATE DATABASE "t_café"'
    DB=café
    # tables with names of any byte: nothing of them goes through ssh but
    # their rows, which must come out whole
    hostile_names_sql | qs -f - >/dev/null
    # libpq takes a newline as the space between two settings
    SRC="host=127.0.0.1 port=$SOURCE_PORT"$'\n'"dbname=s_café user=postgres"
    TGT="host=127.0.0.1"$'\n'"port=$TARGET_PORT dbname=t_café user=postgres"
    local parent
    parent=$(mktemp -d /tmp/lm-dash.XXXXXX)
    chmod 755 "$parent"
    chown "$LM_DASH_USER" "$parent"
    local rd="$parent/it's a \$dir"
    start_load 20
    LC_ALL=C run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --replica-identity-full \
        --decode-host lmdash --apply-host lmdash --remote-dir "$rd"
    # the spool is on the decode host, made by the dash user
    [ -d "$rd/spool" ]
    [ "$(stat -c %U "$rd/spool")" = "$LM_DASH_USER" ]
    run -0 lmm status --workdir "$W" --json
    echo "$output" | jq -e '.stages.decode and .stages.apply and .phase == "streaming"' >/dev/null
    hostile_names_writes_sql | qs -f - >/dev/null
    sleep 3
    stop_load
    LC_ALL=C run -0 lmm cutover --workdir "$W" --timeout 180
    assert_output --regexp "[0-9]+ tables equal"
    local t
    while IFS= read -r -d '' t; do
        [ "$(qt -c "SELECT count(*) FROM $t")" = 47 ]
        [ "$(PGDATABASE_TEST=s_$DB qhash source "$t")" = "$(PGDATABASE_TEST=t_$DB qhash target "$t")" ]
    done < <(hostile_names_tables)
    run -0 lmm verify --workdir "$W"
    [ ! -e "$rd/decode.pid" ] || ! kill -0 "$(cat "$rd/decode.pid")" 2>/dev/null
    LC_ALL=C run -0 lmm clean --workdir "$W"
    [ ! -e "$rd" ]
    rm -rf "$parent"
    stop_sshd
}

@test "lm-migrate: standard_conforming_strings off on source and target: a table name ending in a backslash migrates and verifies" {
    mkdb scs
    # made before the setting, as an owner may have: a name that ends in a
    # backslash, a row with one, a large object
    qs -c 'CREATE TABLE public."back\" (id int PRIMARY KEY, v text)' \
       -c "INSERT INTO public.\"back\\\" SELECT g, 'v\\' || g FROM generate_series(1, 20) g" \
       -c "SELECT lo_from_bytea(4242, '\\x0102ff'::bytea)"
    qs -c "ALTER DATABASE s_scs SET standard_conforming_strings = off"
    qt -c "ALTER DATABASE t_scs SET standard_conforming_strings = off"
    [ "$(qs -c "SHOW standard_conforming_strings")" = off ]
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --replica-identity-full
    qs -c "INSERT INTO public.\"back\\\" VALUES (21, E'x\\\\')" -c 'DELETE FROM public."back\" WHERE id = 1'
    run -0 lmm verify --workdir "$W" --table 'public."back\"' --table public.actor
    run -0 lmm cutover --workdir "$W" --timeout 120
    assert_output --regexp "[0-9]+ tables equal"
    run -0 lmm verify --workdir "$W"
    [ "$(qt -c 'SELECT count(*) FROM public."back\"')" = 20 ]
    [ "$(qt -c "SELECT encode(lo_get(4242), 'hex')")" = 0102ff ]
    # the other way round: a backslash-ending name that is no table
    run -10 lmm verify --workdir "$W" --table 'public."nosuch\"'
    assert_output --partial "no such table on the source"
}

# slots of this test's source database
db_slots() { q source -c "SELECT count(*) FROM pg_replication_slots WHERE database = 's_$DB'"; }

@test "lm-migrate: the work directory is locked: two starts at once make one slot, two cutovers at once finish once" {
    mkdb lock
    local o=$BATS_TEST_TMPDIR rc1=0 rc2=0
    timeout 300 lm-migrate start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --replica-identity-full --no-wait >"$o/s1" 2>&1 &
    local p1=$!
    timeout 300 lm-migrate start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --replica-identity-full --no-wait >"$o/s2" 2>&1 &
    local p2=$!
    wait_pid "$p1" 310 "the first lm-migrate (timeout 300)" || rc1=$?
    wait_pid "$p2" 310 "the second lm-migrate (timeout 300)" || rc2=$?
    cat "$o/s1" "$o/s2"
    # one ran, the other was refused at once, naming the holder
    [ $((rc1 + rc2)) = 1 ]
    grep -q "is in use: lm-migrate start (pid [0-9]*) is running there" "$o/s1" "$o/s2"
    [ "$(db_slots)" = 1 ]
    # the stages left running do not hold the lock; status needs none
    alive decode
    alive apply
    flock -n "$W/lock" true
    wait_for 60 lag_zero
    run -0 lmm status --workdir "$W"
    # two cutovers at once: the loser is refused before it touches anything
    rc1=0 rc2=0
    timeout 300 lm-migrate cutover --workdir "$W" --fence --timeout 30 >"$o/c1" 2>&1 &
    p1=$!
    timeout 300 lm-migrate cutover --workdir "$W" --fence --timeout 30 >"$o/c2" 2>&1 &
    p2=$!
    wait_pid "$p1" 310 "the first lm-migrate (timeout 300)" || rc1=$?
    wait_pid "$p2" 310 "the second lm-migrate (timeout 300)" || rc2=$?
    cat "$o/c1" "$o/c2"
    [ $((rc1 + rc2)) = 1 ]
    grep -q "is in use: lm-migrate cutover (pid [0-9]*) is running there" "$o/c1" "$o/c2"
    grep -q "cutover complete" "$o/c1" "$o/c2"
    # nothing was set back: done, stages stopped, the source still fenced
    sleep 2
    phase_is done
    ! alive decode
    ! alive apply
    [ "$(qs -c "SHOW default_transaction_read_only")" = on ]
    [ "$(db_slots)" = 0 ]
    run -0 lmm verify --workdir "$W"
}

@test "lm-migrate: a detached start holds the lock: a second start is refused (exit 1), status works, abort stops it and takes over" {
    mkdb lockdetach
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 1 --replica-identity-full --detach
    # the background process holds the lock, named in it
    wait_for 10 grep -q "start --detach" "$W/lock"
    run -1 lmm start --resume --workdir "$W"
    assert_output --partial "is in use: lm-migrate start --detach (pid"
    run -1 lmm cutover --workdir "$W"
    assert_output --partial "is in use: lm-migrate start --detach"
    run -0 lmm status --workdir "$W" --json
    echo "$output" | jq -e '.phase' >/dev/null
    # abort stops the start, then cleans up as always
    run -0 lmm abort --workdir "$W"
    phase_is aborted
    [ "$(db_slots)" = 0 ]
    for s in migrate decode apply snapshot slot; do
        ! alive "$s"
    done
    flock -n "$W/lock" true
}

# A database pair of our own (no template): SRC with the given SQL, TGT
# with the DBA's.
mkdb_bare() {   # mkdb_bare NAME SOURCE_SQL TARGET_SQL
    mkdb "$1" template1
    qs -c "$2"
    qt -c "$3"
}

@test "lm-migrate: --target-schema=existing: a table the target range-partitions (an extra column with a default, columns in another order) under live writes that move rows across partitions; verify equal" {
    mkdb_bare existing \
        "CREATE TABLE public.parted (id int PRIMARY KEY, k int NOT NULL, v text);
         CREATE INDEX parted_v_idx ON public.parted (v);
         CREATE SEQUENCE public.parted_seq START 100000;
         INSERT INTO public.parted SELECT g, g % 300, md5(g::text) FROM generate_series(1, 3000) g" \
        "CREATE TABLE public.parted (id int NOT NULL, note text NOT NULL DEFAULT 'dba', k int NOT NULL, v text,
                                     PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
         CREATE TABLE public.parted_lo PARTITION OF public.parted FOR VALUES FROM (MINVALUE) TO (150);
         CREATE TABLE public.parted_hi PARTITION OF public.parted FOR VALUES FROM (150) TO (MAXVALUE);
         CREATE SEQUENCE public.parted_seq"
    # writes during copy and streaming: updates that move rows to the other
    # partition, inserts, deletes
    cat >"$BATS_TEST_TMPDIR/parted.sql" <<'SQL'
\set id random(10, 3000)
\set k random(0, 299)
UPDATE parted SET k = (k + 150) % 300, v = md5(v) WHERE id = :id;
INSERT INTO parted (id, k, v) VALUES (nextval('parted_seq'), :k, 'live');
DELETE FROM parted WHERE id = :id + 1;
SQL
    bg_start LOAD_SH sh -c "echo \$\$ >'$BATS_TEST_TMPDIR/load.pid'; exec pgbench -n -c 2 -j 2 -T 600 -R 50 -f '$BATS_TEST_TMPDIR/parted.sql' '$SRC' >'$BATS_TEST_TMPDIR/load.log' 2>&1"
    wait_for 10 test -s "$BATS_TEST_TMPDIR/load.pid"
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --target-schema existing
    assert_output --partial "caught up"
    run -0 lmm status --workdir "$W" --json
    echo "$output" | jq -e '.target_schema == "existing" and .phase == "streaming" and .attention == []' >/dev/null
    # known rows: one moves from the low partition to the high one, one goes
    qs -c "UPDATE parted SET k = 299, v = 'moved' WHERE id = 1" -c "DELETE FROM parted WHERE id = 2"
    sleep 2
    run -0 lmm cutover --workdir "$W" --fence --timeout 120
    assert_output --regexp "1 tables equal"
    run -0 lmm verify --workdir "$W"
    assert_output --partial "1 tables equal"
    # an independent comparison over the common columns
    local s t
    s=$(qs -c "SELECT count(*) || ':' || md5(string_agg(format('%s|%s|%s', id, k, v), ',' ORDER BY id)) FROM parted")
    t=$(qt -c "SELECT count(*) || ':' || md5(string_agg(format('%s|%s|%s', id, k, v), ',' ORDER BY id)) FROM parted")
    assert_equal "$t" "$s"
    # rows live in the partition their k says; the DBA's column has its default
    run -0 qt -c "SELECT tableoid::regclass, k, v FROM parted WHERE id = 1"
    assert_output "parted_hi|299|moved"
    run -0 qt -c "SELECT count(*) FROM parted WHERE id = 2"
    assert_output 0
    run -0 qt -c "SELECT count(*) FROM parted_lo WHERE k >= 150"
    assert_output 0
    run -0 qt -c "SELECT count(*) FROM parted WHERE note <> 'dba'"
    assert_output 0
    [ "$(qt -c "SELECT count(*) FROM parted_hi")" -gt 0 ]
    # only what the target lacked was built: the source's index, not its
    # primary key (the target's own, on (id, k), stays)
    run -0 qt -c "SELECT count(*) FROM pg_indexes WHERE tablename = 'parted' AND indexname = 'parted_v_idx'"
    assert_output 1
    run -0 qt -c "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'parted'::regclass AND contype = 'p'"
    assert_output "PRIMARY KEY (id, k)"
    sequences_caught_up
}

@test "lm-migrate: --target-schema=existing refuses at preflight (exit 4) a target table missing a source column, naming it, and creates nothing" {
    mkdb_bare notfit \
        "CREATE TABLE public.t (id int PRIMARY KEY, a int, b text); CREATE TABLE public.u (id int PRIMARY KEY)" \
        "CREATE TABLE public.t (id int PRIMARY KEY, a bigint, x int NOT NULL)"
    run -2 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --target-schema bogus
    assert_output --partial "restore or existing"
    run -4 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --target-schema existing
    assert_output --partial 'column "b" (text) of table "public"."t" is missing on the target'
    assert_output --partial 'column "x" of table "public"."t" exists on the target only, is NOT NULL and has no default'
    assert_output --partial 'table "public"."u" does not exist on the target'
    # a type that differs by name is said, not refused
    assert_output --partial 'column "a" of table "public"."t" is integer on the source and bigint on the target'
    assert_output --partial "nothing was changed"
    run -0 qs -c "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
    assert_output 0
    run -0 qt -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'lm'"
    assert_output 0
    # the default mode refuses the same target as not empty
    run -4 lmm start --source "$SRC" --target "$TGT" --workdir "$W"
    assert_output --partial "not empty"
}

@test "lm-migrate: status names a table whose columns changed on the source, and none for a type one side's search_path shows unqualified" {
    mkdb ddlwarn
    qs -c "CREATE SCHEMA s2" -c "CREATE TYPE s2.mood AS ENUM ('a', 'b')" \
       -c "CREATE TABLE moody (id int PRIMARY KEY, m s2.mood)" -c "INSERT INTO moody VALUES (1, 'a')"
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --replica-identity-full --no-wait
    wait_for 60 lag_zero
    # the source's sessions now have s2 on their search_path, the target's not
    qs -c "ALTER DATABASE s_ddlwarn SET search_path = public, s2"
    run lm-migrate status --workdir "$W"
    refute_output --partial "columns differ"
    qs -c "ALTER TABLE actor ADD COLUMN extra int"
    run lm-migrate status --workdir "$W"
    assert_output --partial "columns differ between source and target (DDL on the source?): public.actor"
    refute_output --partial "moody"
}

# a conninfo value in single quotes: a quote and a backslash escaped
conn_quote() { local s=${1//\\/\\\\}; printf "'%s'" "${s//\'/\\\'}"; }

@test "lm-migrate: names with any byte (newline, tab, quotes, trailing backslash, é, \$(...), ESC, a 63-byte one) in tables, a schema, a key, sequences and the databases: abort, then a live migration, status, fenced cutover, verify, sequences" {
    # the databases' names are hostile too: the fence alters them by name
    DB=$'host "db" \'q\'\n$(touch pwned)'
    local sdb=s_$DB tdb=t_$DB
    q source -c "CREATE DATABASE $(qident "$sdb")"
    q target -c "CREATE DATABASE $(qident "$tdb")" -c "CREATE DATABASE $(qident "${tdb}2")"
    SRC="host=127.0.0.1 port=$SOURCE_PORT user=postgres dbname=$(conn_quote "$sdb")"
    TGT="host=127.0.0.1 port=$TARGET_PORT user=postgres dbname=$(conn_quote "$tdb")"
    hostile_names_sql | qs -f - >/dev/null
    local tables n
    mapfile -d '' tables < <(hostile_names_tables)
    n=${#tables[@]}
    # nothing in a name is ever run by a shell
    cd "$BATS_TEST_TMPDIR"

    # a run that is aborted: a cutover gives up (apply stopped) and lifts
    # its fence, then abort drops all it made
    local w2=$BATS_TEST_TMPDIR/work2 slot
    run -0 lmm start --source "$SRC" --target "host=127.0.0.1 port=$TARGET_PORT user=postgres dbname=$(conn_quote "${tdb}2")" \
        --workdir "$w2" --jobs 2 --no-wait
    slot=$(jq -r .slot "$w2/slot.json")
    kill -STOP "$(awk '{print $1}' "$w2/pids/apply")"
    run -11 lmm cutover --workdir "$w2" --fence --timeout 2
    kill -CONT "$(awk '{print $1}' "$w2/pids/apply")"
    assert_output --partial "fence lifted"
    [ "$(qs -c "SHOW default_transaction_read_only")" = off ]
    run -0 lmm abort --workdir "$w2"
    [ "$(qs -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'")" = 0 ]
    [ "$(qs -c "SELECT count(*) FROM pg_publication WHERE pubname = '$slot'")" = 0 ]
    [ "$(PGDATABASE_TEST=${tdb}2 q target -c "SELECT count(*) FROM pg_replication_origin WHERE roname = '$slot'")" = 0 ]
    [ "$(PGDATABASE_TEST=${tdb}2 q target -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'lm'")" = 0 ]

    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2
    assert_output --partial "caught up"
    # the live phase: inserts, updates and deletes on every hostile table
    hostile_names_writes_sql | qs -f - >/dev/null
    # status counts the tables whole; the names it prints (a table made
    # since the start, columns that differ) are whole, control characters
    # escaped for the terminal; --json carries them as they are
    qs -c "CREATE TABLE public.$(qident $'new\nt\e]0;x\a')()" \
       -c "ALTER TABLE public.$(qident $'nl\nname') ADD COLUMN extra int"
    run -0 --separate-stderr lm-migrate status --workdir "$W"
    echo "$output"
    assert_output --partial "copy:       $n/$n tables"
    assert_output --partial 'tables created on the source since the start are not migrated: public."new\nt\x1b]0;x\x07"'
    assert_output --partial 'columns differ between source and target (DDL on the source?): public."nl\nname";'
    [[ $output != *[$'\e\a']* ]]
    run -0 --separate-stderr lm-migrate status --workdir "$W" --json
    echo "$output" | jq -e --arg t $'public."new\nt\e]0;x\a"' --arg d $'public."nl\nname"' --argjson n "$n" '
        .copy.tables_total == $n and (.attention | length) == 2 and
        (.attention[0] | contains($d)) and (.attention[1] | contains($t))' >/dev/null
    # the DDL done on the target too; the new table goes
    qt -c "ALTER TABLE public.$(qident $'nl\nname') ADD COLUMN extra int"
    qs -c "DROP TABLE public.$(qident $'new\nt\e]0;x\a')"
    run -0 lmm verify --workdir "$W" --table "${tables[0]}" --table "${tables[-1]}"
    assert_output --partial "2 tables equal"

    run -0 lmm cutover --workdir "$W" --fence --timeout 120
    assert_output --partial "cutover complete"
    assert_output --partial "$n tables equal"
    assert_output --partial "$((n + 1)) sequence(s) set"
    assert_output --partial 'refreshed public."mv\nview"'
    phase_is done
    # compared here too, independently of lm-migrate's verify
    diff <(PGDATABASE_TEST=$sdb db_hashes source) <(PGDATABASE_TEST=$tdb db_hashes target)
    # every sequence of the hostile tables, and the free one, at the source's value
    local seqs="SELECT string_agg(format('%I.%I=%s', schemaname, sequencename, last_value), ',' ORDER BY schemaname, sequencename) FROM pg_sequences"
    assert_equal "$(qt -c "$seqs")" "$(qs -c "$seqs")"
    [ "$(qt -c "SELECT last_value FROM pg_sequences WHERE sequencename = E'nl\\nname_id_seq'")" -gt 20 ]
    [ "$(qt -c "SELECT last_value FROM pg_sequences WHERE sequencename = E'seq\\nfree'")" = 500 ]
    [ "$(qt -c "SELECT n FROM public.$(qident "$HOSTILE_MATVIEW")")" = "$(qt -c "SELECT count(*) FROM ${tables[0]}")" ]
    # a difference in a hostile table: named once, whole, with its key
    qt -c "UPDATE ${tables[-1]} SET v = 'changed' WHERE $(qident "$HOSTILE_KEY") = 3"
    run -10 --separate-stderr lm-migrate verify --workdir "$W"
    echo "$output"
    assert_output --partial 'sch\nema"."x|y\nz"'
    assert_output --partial '"k\ney" in [0,1000000)'
    assert_output --partial "verify: 1 of $n tables differ"
    [[ $output != *[$'\e\a']* ]]
    [ ! -e "$BATS_TEST_TMPDIR/pwned" ]
    [ ! -e "$W/pwned" ]
    run -0 lmm clean --workdir "$W"
    assert_output --partial "stays fenced"
}

@test "lm-migrate: markers forged by a role without privileges, mid-stream and during the cutover, stop nothing: rows after them arrive, the cutover completes and verifies" {
    mkdb forged
    qs -c "DROP ROLE IF EXISTS forger" -c "CREATE ROLE forger LOGIN"
    forge() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$SRC user=forger" -c "SELECT pg_logical_emit_message(true, 'lm-migrate', '$1')" >/dev/null; }
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --replica-identity-full --no-wait
    [ "$(stat -c %a "$W/marker.key")" = 600 ]
    wait_for 60 lag_zero
    # mid-stream: what lm-migrate's own marker looked like, and one with a MAC for another id
    forge "cutover $(jq -r .slot "$W/slot.json")-20260101T000000Z-1"
    forge "cutover x 0000000000000000000000000000000000000000000000000000000000000000"
    qs -c "INSERT INTO actor (first_name, last_name) VALUES ('AFTER', 'FORGERY')"
    on_target() { [ "$(qt -c "SELECT count(*) FROM actor WHERE first_name = 'AFTER'")" = 1 ]; }
    wait_for 30 on_target
    alive decode
    alive apply
    grep -q "not this migration's cutover marker (transaction [0-9]*, LSN" "$W/logs/decode.log"
    ! grep -q "$(cat "$W/marker.key")" "$W"/logs/*.log
    [ "$(qt -c "SELECT count(*) FROM lm.marker")" = 0 ]
    # during the cutover: forgeries keep coming while it waits for its marker
    bg_start FORGER bash -c 'for i in $(seq 1 100); do psql -X -q -d "$0 user=forger" -c "SELECT pg_logical_emit_message(true, '"'lm-migrate'"', '"'cutover forged-'"' || $i)" >/dev/null 2>&1; sleep 0.05; done' "$SRC"
    forge "cutover planted-before-the-real-one"
    run -0 lmm cutover --workdir "$W" --timeout 60
    kill "$FORGER" 2>/dev/null || true
    assert_output --partial "cutover complete"
    assert_output --partial "verify: "
    phase_is done
    run -0 lmm verify --source "$SRC" --target "$TGT"
    # only the real marker was recorded
    [ "$(qt -c "SELECT count(*) FROM lm.marker")" = 1 ]
    [ "$(qt -c "SELECT payload FROM lm.marker")" = "$(cat "$W/cutover.id")" ]
    run -0 lmm clean --workdir "$W"
}

@test "lm-migrate: a config holding shell code is never run (status, abort: exit 4, clear error); a work directory others may write to or another user's is refused (exit 9)" {
    mkdb cfg
    # a start that stops at the preflight leaves a config
    run -3 lmm start --source "$SRC" --target "host=127.0.0.1 port=1 dbname=x" --workdir "$W"
    head -1 "$W/config" | grep -qx 'lm-migrate config 2'
    cp "$W/config" "$BATS_TEST_TMPDIR/config.good"
    printf 'SOURCE=x; touch %q\nTARGET=$(touch %q)\n' "$BATS_TEST_TMPDIR/PWNED" "$BATS_TEST_TMPDIR/PWNED2" >"$W/config"
    run -4 lmm status --workdir "$W"
    assert_output --partial "older lm-migrate (shell assignments), which this one no longer runs"
    run -4 lmm abort --workdir "$W"
    [ ! -e "$BATS_TEST_TMPDIR/PWNED" ] && [ ! -e "$BATS_TEST_TMPDIR/PWNED2" ]
    # format 2 with a key it does not know, or a value that is not encoded
    { cat "$BATS_TEST_TMPDIR/config.good"; echo "PATH=/tmp"; } >"$W/config"
    run -4 lmm status --workdir "$W"
    assert_output --partial 'unknown key "PATH"'
    sed 's/^SLOT=.*/SLOT=$(touch x)/' "$BATS_TEST_TMPDIR/config.good" >"$W/config"
    run -4 lmm status --workdir "$W"
    assert_output --partial "not percent-encoded"
    sed 's/^DECODE_HOST=.*/DECODE_HOST=-oProxyCommand=x/' "$BATS_TEST_TMPDIR/config.good" >"$W/config"
    run -4 lmm status --workdir "$W"
    assert_output --partial "invalid host"
    cp "$BATS_TEST_TMPDIR/config.good" "$W/config"
    run -0 lmm status --workdir "$W"
    # the work directory must be this user's alone
    chmod 777 "$W"
    run -9 lmm status --workdir "$W"
    assert_output --partial "is not a directory of this user that only it may write to"
    run -9 lmm abort --workdir "$W"
    chmod 700 "$W"
    chown nobody "$W"
    run -9 lmm status --workdir "$W"
    chown "$(id -u)" "$W"
    # start refuses one before it writes anything into it
    mkdir -m 777 "$BATS_TEST_TMPDIR/open"
    run -9 lmm start --source "$SRC" --target "$TGT" --workdir "$BATS_TEST_TMPDIR/open"
    [ -z "$(ls -A "$BATS_TEST_TMPDIR/open")" ]
}

@test "lm-migrate: a pid file naming an unrelated process without its start time, or with another, is never signalled: abort leaves it running" {
    mkdb pids
    run -3 lmm start --source "$SRC" --target "host=127.0.0.1 port=1 dbname=x" --workdir "$W"
    bg_start VICTIM sleep 600
    wait_for 10 test -e "/proc/$VICTIM/stat"
    echo "$VICTIM" >"$W/pids/decode"
    echo "$VICTIM 12345" >"$W/pids/apply"
    echo "$VICTIM" >"$W/pids/migrate"
    run -0 lmm abort --workdir "$W"
    assert_output --partial "pids/decode names process $VICTIM without its start time"
    sleep 0.5
    kill -0 "$VICTIM"
    kill "$VICTIM"
    # a pid file with the right start time is still a stage: stopped
    bg_start STAGE sleep 600
    wait_for 10 test -e "/proc/$STAGE/stat"
    echo "$STAGE $(awk '{print $22}' "/proc/$STAGE/stat")" >"$W/pids/decode"
    run -0 lmm abort --workdir "$W"
    wait_for 10 bash -c "! kill -0 $STAGE 2>/dev/null || grep -q '^State:.Z' /proc/$STAGE/status"
}
