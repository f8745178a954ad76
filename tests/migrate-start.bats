#!/usr/bin/env bats
# lm-migrate start: a failed stage stops the migration at its step (status
# shows the stage's own error), start never acts on a slot result it has
# not read and checked, a planned hand-over is never a death, a database
# without tables migrates, and the database's settings travel.  One source
# and one target cluster for the file; every test migrates a database of
# its own, cloned from a small template.

load helpers
load migrate_helpers   # setup, teardown_file, mkdb, qs, qt, lmm, ...
bats_require_minimum_version 1.5.0

setup_file() {
    migrate_template \
        -c "CREATE TABLE public.items (id int PRIMARY KEY, v text)" \
        -c "INSERT INTO public.items SELECT g, md5(g::text) FROM generate_series(1, 1000) g" \
        -c "CREATE TABLE public.big (id bigint PRIMARY KEY, v text)" \
        -c "INSERT INTO public.big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 100000) g" \
        -c "CREATE SEQUENCE public.free_seq START 1000"
}

teardown() {
    show_failed_migration
    local p
    for p in $(cat "$BATS_TEST_TMPDIR"/*.bgpid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    abort_migration
}

# A foreground start in the background: its exit status lands in
# $BATS_TEST_TMPDIR/start.rc, its output in start.out
start_bg() {
    rm -f "$BATS_TEST_TMPDIR/start.rc"
    bg_start START_PID bash -c 'lm-migrate start "$@" >"$0/start.out" 2>&1; echo $? >"$0/start.rc"' "$BATS_TEST_TMPDIR" "$@"
    echo "$START_PID" >"$BATS_TEST_TMPDIR/start.bgpid"
}
start_rc() { cat "$BATS_TEST_TMPDIR/start.rc"; }

migrate_gone() { local p; p=$(pid_of migrate); [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null; }

# status --json and text both name the failed STEP and STAGE, with the
# stage's own error (matching RE), and blame nothing else
assert_failed() {   # assert_failed STEP STAGE CODE RE
    run -0 --separate-stderr lm-migrate status --workdir "$W" --json
    echo "$output"; [ -z "$stderr" ]
    echo "$output" | jq -e --arg step "$1" --arg stage "$2" --argjson code "$3" --arg re "$4" '
        (.failed.step | test("^(" + $step + ")$")) and .failed.stage == $stage and .failed.exit_code == $code
        and (.failed.errors | join("\n") | test($re))
        and (.failed.hint | length > 0)
        and (.attention | length == 1) and (.attention[0] | test("^step (" + $step + ") failed"))' >/dev/null
    run -0 lm-migrate status --workdir "$W"
    assert_output --regexp "failed: +step ($1): $2"
    assert_output --regexp "$4"
    refute_output --partial "died"
    refute_output --partial "is missing"
}

# ---------------------------------------------------------------- 15.13

@test "start: lm-slot refusing (a keyless table) stops at the slot step with its exit 4: nothing else started, status shows lm-slot's error, abort cleans; the same detached" {
    mkdb slotfail
    qs -c "CREATE TABLE public.keyless (a int)"
    run -4 lmm start --source "$SRC" --target "$TGT" --workdir "$W"
    assert_output --partial "has no replica identity"
    refute_output --partial "could not import snapshot"
    [ ! -e "$W/logs/decode.log" ] && [ ! -e "$W/logs/snapshot.log" ] && [ ! -e "$W/slot.json" ]
    assert_failed slot lm-slot 4 "keyless has no replica identity"
    run -0 lmm abort --workdir "$W"
    run -0 qs -c "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)"
    assert_output 0
    run -0 lmm clean --workdir "$W"

    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --detach
    wait_for 60 migrate_gone
    [ ! -e "$W/logs/decode.log" ] && [ ! -e "$W/logs/snapshot.log" ]
    run ! grep -q "could not import snapshot" "$W/logs/migrate.log"
    assert_failed slot lm-slot 4 "keyless has no replica identity"
    # fixed on the source, --resume goes on from the slot step
    qs -c "ALTER TABLE public.keyless REPLICA IDENTITY FULL"
    run -0 lmm start --resume --workdir "$W"
    assert_output --partial "caught up"
    run -0 lm-migrate status --workdir "$W" --json
    echo "$output" | jq -e '.failed == null and .attention == []' >/dev/null
}

@test "start: lm-snapshot failing (a role missing on the target) stops at the schema step with its exit 4; status shows its error; the same detached" {
    mkdb snapfail
    q source -c "CREATE ROLE only_on_source_1"
    qs -c "ALTER TABLE public.items OWNER TO only_on_source_1"
    run -4 lmm start --source "$SRC" --target "$TGT" --workdir "$W"
    assert_output --partial "only_on_source_1"
    assert_failed schema lm-snapshot 4 "only_on_source_1"
    run -0 lmm abort --workdir "$W"
    run -0 lmm clean --workdir "$W"

    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --detach
    wait_for 60 migrate_gone
    assert_failed schema lm-snapshot 4 "only_on_source_1"
    # made on the target, the migration goes on
    q target -c "CREATE ROLE only_on_source_1"
    run -0 lmm start --resume --workdir "$W"
    assert_output --partial "caught up"
}

# stray_decode: an lm-decode of another slot writing into this
# migration's spool directory (left from an earlier attempt)
stray_decode() {
    mkdir -p "$W/spool"
    bg_start STRAY lm-decode --source "$SRC" --slot stray --publication stray --spool "$W/spool"
    echo "$STRAY" >"$BATS_TEST_TMPDIR/stray.bgpid"
    wait_for 20 grep -q streaming "$BATS_TEST_TMPDIR/stray.log"
}

@test "start: lm-decode failing (a stray lm-decode holds the spool) stops the migration with lm-decode's exit 4; status shows its error; the same detached" {
    mkdb decfail
    run -0 lm-slot create --source "$SRC" --slot stray
    stray_decode 2>"$BATS_TEST_TMPDIR/stray.log"
    run -4 lmm start --source "$SRC" --target "$TGT" --workdir "$W"
    assert_output --partial "another lm-decode"
    # lm-decode is never started again behind the operator's back
    [ "$(grep -c "starting decode" "$W/logs/decode.log")" = 1 ]
    assert_failed "copy|schema" lm-decode 4 "another lm-decode is writing into spool"
    [ ! -e "$W/pids/snapshot" ]
    run -0 lmm abort --workdir "$W"
    run -0 lmm clean --workdir "$W"
    kill "$STRAY"
    wait_for 10 bash -c "! kill -0 $STRAY 2>/dev/null"

    stray_decode 2>"$BATS_TEST_TMPDIR/stray.log"
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --detach
    wait_for 60 migrate_gone
    assert_failed "copy|schema" lm-decode 4 "another lm-decode is writing into spool"
    kill "$STRAY"
    wait_for 10 bash -c "! kill -0 $STRAY 2>/dev/null"
    run -0 lmm abort --workdir "$W"
    lm-slot drop --source "$SRC" --slot stray
}

@test "start: lm-apply failing (a trigger enabled ALWAYS refuses replicated rows) stops the streaming step; start's exit status is lm-apply's; the same detached" {
    mkdb applyfail
    qs -c "CREATE TABLE public.guarded (id int PRIMARY KEY, v text)" \
        -c "CREATE FUNCTION public.no_replica() RETURNS trigger LANGUAGE plpgsql AS \$\$
            BEGIN
                IF current_setting('session_replication_role') = 'replica' THEN
                    RAISE EXCEPTION 'guarded refuses replicated rows';
                END IF;
                RETURN NEW;
            END \$\$" \
        -c "CREATE TRIGGER guard BEFORE INSERT ON public.guarded FOR EACH ROW EXECUTE FUNCTION public.no_replica()" \
        -c "ALTER TABLE public.guarded ENABLE ALWAYS TRIGGER guard"
    start_bg --source "$SRC" --target "$TGT" --workdir "$W"
    wait_for 60 phase_is copy
    # after the snapshot: streamed, not copied
    qs -c "INSERT INTO public.guarded VALUES (1, 'x')"
    wait_for 120 test -s "$BATS_TEST_TMPDIR/start.rc"
    cat "$BATS_TEST_TMPDIR/start.out"
    local rc
    rc=$(start_rc)
    [ "$rc" -ne 0 ]
    grep -q "guarded refuses replicated rows" "$BATS_TEST_TMPDIR/start.out"
    assert_failed streaming lm-apply "$rc" "guarded refuses replicated rows"
    run -0 lmm abort --workdir "$W"
    run -0 lmm clean --workdir "$W"

    q target -c "DROP DATABASE t_applyfail" -c "CREATE DATABASE t_applyfail"
    qs -c "DELETE FROM public.guarded"
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --detach
    wait_for 60 phase_is copy
    qs -c "INSERT INTO public.guarded VALUES (2, 'y')"
    wait_for 120 migrate_gone
    assert_failed streaming lm-apply "$rc" "guarded refuses replicated rows"
}

# ---------------------------------------------------------------- 16.4

@test "start: a transaction open on the source for 15 s: start waits for lm-slot's result, completes; cutover verifies" {
    mkdb slow
    bg_start TX psql -X -q -d "$SRC" -c "BEGIN" -c "INSERT INTO public.items VALUES (100001, 'open')" -c "SELECT pg_sleep(15)" -c "COMMIT"
    echo "$TX" >"$BATS_TEST_TMPDIR/tx.bgpid"
    wait_for 10 bash -c "[ \"\$(psql -X -At -d '$SRC' -c \"SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL\")\" = 1 ]"
    local t0=$SECONDS
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W"
    assert_output --partial "caught up"
    [ $((SECONDS - t0)) -ge 8 ]
    grep -q "waits for 1 running transaction" "$W/logs/slot.log"
    run -0 lmm cutover --workdir "$W" --timeout 120
    assert_output --partial "tables equal"
    run -0 qt -c "SELECT v FROM public.items WHERE id = 100001"
    assert_output open
    run -0 lmm verify --workdir "$W"
}

@test "start: lm-slot killed while it waits for an open transaction: start fails naming it, status shows the slot step, nothing half-made is used, abort cleans up" {
    mkdb slowkill
    bg_start TX psql -X -q -d "$SRC" -c "BEGIN" -c "INSERT INTO public.items VALUES (100001, 'open')" -c "SELECT pg_sleep(20)" -c "COMMIT"
    echo "$TX" >"$BATS_TEST_TMPDIR/tx.bgpid"
    wait_for 10 bash -c "[ \"\$(psql -X -At -d '$SRC' -c \"SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL\")\" = 1 ]"
    start_bg --source "$SRC" --target "$TGT" --workdir "$W"
    wait_for 30 grep -q "waits for 1 running transaction" "$W/logs/slot.log"
    kill -9 "$(pid_of slot)"
    wait_for 30 test -s "$BATS_TEST_TMPDIR/start.rc"
    cat "$BATS_TEST_TMPDIR/start.out"
    [ "$(start_rc)" = 1 ]
    grep -q "lm-slot create was killed by signal 9" "$BATS_TEST_TMPDIR/start.out"
    # nothing after the slot step ran; no half-made result is left
    [ ! -e "$W/slot.json" ] && [ ! -e "$W/logs/decode.log" ] && [ ! -e "$W/logs/snapshot.log" ]
    run -0 lm-migrate status --workdir "$W" --json
    echo "$output" | jq -e '.failed.step == "slot" and .failed.stage == "lm-slot" and .failed.exit_code == 137' >/dev/null
    run -0 lm-migrate status --workdir "$W"
    assert_output --partial "failed:     step slot: lm-slot was killed by signal 9"
    refute_output --partial "died"
    # the slot creation it began was ended with its session
    local slot
    slot=$(lm-migrate status --workdir "$W" --json | jq -r .slot)
    wait_for 10 bash -c "[ \"\$(psql -X -At -d '$SRC' -c \"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'\")\" = 0 ]"
    run -0 lmm abort --workdir "$W"
    run -0 qs -c "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)"
    assert_output 0
}

@test "start: LM_SLOT_TIMEOUT bounds the wait for lm-slot (exit 11), which is stopped" {
    mkdb slottimeout
    bg_start TX psql -X -q -d "$SRC" -c "BEGIN" -c "INSERT INTO public.items VALUES (100001, 'open')" -c "SELECT pg_sleep(30)" -c "COMMIT"
    echo "$TX" >"$BATS_TEST_TMPDIR/tx.bgpid"
    wait_for 10 bash -c "[ \"\$(psql -X -At -d '$SRC' -c \"SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL\")\" = 1 ]"
    LM_SLOT_TIMEOUT=x run -2 lmm start --source "$SRC" --target "$TGT" --workdir "$W"
    LM_SLOT_TIMEOUT=3 run -11 lmm start --source "$SRC" --target "$TGT" --workdir "$W"
    assert_output --partial "created no slot in 3s"
    run -0 lm-migrate status --workdir "$W" --json
    echo "$output" | jq -e '.failed.step == "slot" and .failed.exit_code == 11' >/dev/null
    run -0 lmm abort --workdir "$W"
    run -0 qs -c "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)"
    assert_output 0
}

# ---------------------------------------------------------------- 16.6

@test "start: status polled throughout a successful start never reports a stage dead or missing" {
    mkdb handover
    # a slower copy (each chunk waits 2 s): the copy phase is seen
    LM_SNAPSHOT_TEST_DELAY_MS=2000 start_bg --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2
    # two pollers: each hand-over (end of schema, copy, post-data; the
    # switch to streaming) falls in some status's look at the stages
    local i
    for i in 1 2; do
        bg_start POLL bash -c 'while [ ! -s "$0/start.rc" ]; do lm-migrate status --workdir "$1" >>"$0/status.$2.log" 2>&1; echo >>"$0/polls"; done' "$BATS_TEST_TMPDIR" "$W" "$i"
        echo "$POLL" >"$BATS_TEST_TMPDIR/poll$i.bgpid"
    done
    wait_for 300 test -s "$BATS_TEST_TMPDIR/start.rc"
    cat "$BATS_TEST_TMPDIR/start.out"
    [ "$(start_rc)" = 0 ]
    sleep 2
    [ "$(wc -l <"$BATS_TEST_TMPDIR/polls")" -ge 4 ]
    cat "$BATS_TEST_TMPDIR"/status.*.log >"$BATS_TEST_TMPDIR/status.log"
    grep -q "phase:      copy\|phase:      postdata" "$BATS_TEST_TMPDIR/status.log"
    run ! grep -E "died|is missing|not running|orchestrator stopped" "$BATS_TEST_TMPDIR/status.log"
}

# ---------------------------------------------------------------- 16.7

@test "start: a database without tables (a function, a view over VALUES, an extension, GRANTs) migrates: start, cutover, verify" {
    q source -c "CREATE DATABASE s_notables" -c "CREATE ROLE nt_reader"
    q target -c "CREATE DATABASE t_notables" -c "CREATE ROLE nt_reader"
    DB=notables
    SRC="host=127.0.0.1 port=$SOURCE_PORT dbname=s_notables user=postgres"
    TGT="host=127.0.0.1 port=$TARGET_PORT dbname=t_notables user=postgres"
    qs -c "CREATE EXTENSION citext" \
        -c "CREATE FUNCTION public.add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b'" \
        -c "CREATE VIEW public.colors AS SELECT * FROM (VALUES (1, 'red'::citext), (2, 'green')) v(id, name)" \
        -c "GRANT EXECUTE ON FUNCTION public.add(int, int) TO nt_reader" \
        -c "GRANT SELECT ON public.colors TO nt_reader"
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W"
    assert_output --partial "caught up"
    grep -q "no tables to publish: the publication is created empty" "$W/logs/slot.log"
    run -0 lmm cutover --workdir "$W" --fence --timeout 120
    assert_output --partial "cutover complete"
    run -0 lmm verify --workdir "$W"
    run -0 qt -c "SELECT public.add(2, 3), (SELECT id FROM public.colors WHERE name = 'RED'),
                         has_function_privilege('nt_reader', 'public.add(int, int)', 'EXECUTE'),
                         has_table_privilege('nt_reader', 'public.colors', 'SELECT'),
                         (SELECT count(*) FROM pg_extension WHERE extname = 'citext')"
    assert_output "5|1|t|t|1"
    run -0 lmm clean --workdir "$W"
}

# ---------------------------------------------------------------- 16.8

# Every setting of the current database, "role|name=value" lines (role "-"
# for the database's own).
db_settings() {   # db_settings qs|qt
    "$1" -c "SELECT coalesce(r.rolname, '-') || '|' || c FROM pg_db_role_setting s
        LEFT JOIN pg_roles r ON r.oid = s.setrole CROSS JOIN LATERAL unnest(s.setconfig) c
        WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1"
}

@test "start: the database's settings travel (search_path, a role's setting), named in the log; default_transaction_read_only does not; --skip-db-settings leaves them out" {
    mkdb dbset
    q source -c "CREATE ROLE ms_app" -c "CREATE ROLE ms_ro"
    q target -c "CREATE ROLE ms_app" -c "CREATE ROLE ms_ro"
    qs -c "CREATE SCHEMA app" \
        -c "ALTER DATABASE s_dbset SET search_path = app, \"\$user\", public" \
        -c "ALTER ROLE ms_app IN DATABASE s_dbset SET work_mem = '8MB'" \
        -c "ALTER ROLE ms_ro IN DATABASE s_dbset SET default_transaction_read_only = on"
    local want
    want=$(db_settings qs | grep -v default_transaction_read_only)
    [ "$(echo "$want" | wc -l)" = 2 ]
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W"
    assert_output --partial "caught up"
    grep -q 'database setting: ALTER DATABASE "t_dbset" SET "search_path"' "$W/logs/snapshot.log"
    run -0 lmm cutover --workdir "$W" --fence --timeout 120
    assert_output --partial "cutover complete"
    run -0 db_settings qt
    assert_output "$want"
    run -0 qt -c "SHOW search_path"
    assert_output 'app, "$user", public'
    # the fence made the source read-only; the target stays writable
    run -0 qt -c "SHOW default_transaction_read_only"
    assert_output off
    run -0 lmm clean --workdir "$W"
    qs -c "SET default_transaction_read_only = off" -c "ALTER DATABASE s_dbset RESET default_transaction_read_only"

    q target -c "CREATE DATABASE t_dbset2"
    TGT="host=127.0.0.1 port=$TARGET_PORT dbname=t_dbset2 user=postgres"
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --skip-db-settings --no-wait
    grep -q "database settings not copied (--skip-db-settings)" "$W/logs/snapshot.log"
    run -0 psql -X -At -d "$TGT" -c "SELECT count(*) FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
    assert_output 0
}
