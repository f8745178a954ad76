#!/usr/bin/env bats
# lm-migrate cutover --rehearse: the steps of the cutover that stop nothing,
# timed, against a live migration under light writes; the migration goes
# on, and a real cutover after it completes.  Small: one migration of a few
# tables, well under a minute.

load helpers
load migrate_helpers   # setup, teardown_file, mkdb, qs, qt, lmm, ...
bats_require_minimum_version 1.5.0

setup_file() {
    migrate_template \
        -c "CREATE TABLE public.busy (id bigserial PRIMARY KEY, v text)" \
        -c "CREATE TABLE public.quiet (id int PRIMARY KEY, v text)" \
        -c "CREATE SEQUENCE public.free_seq START 1000" -c "SELECT nextval('public.free_seq')" \
        -c "INSERT INTO public.busy (v) SELECT md5(g::text) FROM generate_series(1, 2000) g" \
        -c "INSERT INTO public.quiet SELECT g, 'q' || g FROM generate_series(1, 100) g" \
        -c "CREATE MATERIALIZED VIEW public.busy_count AS SELECT count(*) AS n FROM public.busy"
}

teardown() {
    show_failed_migration
    stop_pid_file "$BATS_TEST_TMPDIR/load.pid"
    exec 7>&- 2>/dev/null || true
    abort_migration
}

# light writes on the source: an insert a transaction, 20 a second
start_load() {
    echo "INSERT INTO busy (v) VALUES ('load');" >"$BATS_TEST_TMPDIR/load.sql"
    bg_start LOAD_SH sh -c "echo \$\$ >'$BATS_TEST_TMPDIR/load.pid'; exec pgbench -n -c 1 -T 300 -R 20 -f '$BATS_TEST_TMPDIR/load.sql' '$SRC' >'$BATS_TEST_TMPDIR/load.log' 2>&1"
    wait_for 10 test -s "$BATS_TEST_TMPDIR/load.pid"
}

alive() { local p; p=$(pid_of "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
# the seconds of a step in the text output: secs STEP
secs() { awk -v s="$1" '$1 == s && $2 ~ /^[0-9]+\.[0-9][0-9]$/ { print $2 }' <<<"$output"; }
# the target's sequences, name and value, as one JSON object
tgt_seqs() { qt -c "SELECT json_object_agg(format('%I.%I', schemaname, sequencename), last_value) FROM pg_sequences"; }

# One migration for the whole story (a second would double the suite's time).
@test "migrate-rehearse: refused before streaming (exit 2); under writes each step timed, the downtime estimated; streaming goes on, sequences untouched, recorded; status shows it; --json; a real cutover after it verifies" {
    mkdb live
    # before streaming: a transaction with an xid on the source holds the
    # slot's creation (it waits for it), and the phase with it
    holder_start "$BATS_TEST_TMPDIR" psql -X -At -d "$SRC"
    echo "BEGIN; SELECT txid_current();" >&7
    wait_for 10 grep -q '^[0-9]' "$BATS_TEST_TMPDIR/out"
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --detach
    wait_for 20 phase_is slot
    run -2 lmm cutover --rehearse --workdir "$W"
    assert_output --partial "cannot rehearse the cutover in phase slot: the migration must be streaming"
    [ ! -e "$W/rehearsals.log" ]
    phase_is slot
    # the transaction ends: the start goes on and returns once caught up
    exec 7>&-
    wait_for 60 test ! -e "$W/pids/migrate"
    phase_is streaming
    grep -q "caught up" "$W/logs/migrate.log"
    qs -c "SELECT setval('free_seq', 4242)" >/dev/null
    start_load
    # a difference the writes do not explain, so that verify differs for sure
    qt -c "SET session_replication_role = replica" -c "UPDATE quiet SET v = 'DIFF' WHERE id = 7"
    local before
    before=$(tgt_seqs)

    run -0 --separate-stderr lm-migrate cutover --rehearse --workdir "$W" --timeout 60
    echo "$output" >>"$BATS_TEST_TMPDIR/lmm.log"
    assert_line --index 0 "cutover rehearsal: capture and apply kept running; nothing was stopped or switched"
    assert_line --regexp '^  marker +[0-9]+\.[0-9]{2}  rehearsal marker sent at [0-9A-F]+/[0-9A-F]+$'
    assert_line --regexp '^  drain +[0-9]+\.[0-9]{2}  marker applied on the target'
    assert_line --regexp '^  sequences +[0-9]+\.[0-9]{2}  2 sequence\(s\) read on both sides, 2 of them behind on the target \(a rehearsal sets none\)$'
    assert_line --regexp '^ +public\.free_seq: would be set to 4242 \(target now 1000\)$'
    assert_line --regexp '^  matviews +[0-9]+\.[0-9]{2}  1 materialized view\(s\) refreshed in a transaction rolled back$'
    assert_line --regexp '^  large_objects +[0-9]+\.[0-9]{2}  0 large object\(s\) differ'
    assert_line --regexp '^  verify +[0-9]+\.[0-9]{2}  [12] of 2 tables differ: expected while the source takes writes$'
    assert_line --regexp '^ +public\.quiet +source 100 rows, target 100 rows; differs where id in \[0,1000000\)$'
    refute_line --regexp '^  fence '
    # the estimate: marker, drain and sequences; the whole: every step
    local down total
    down=$(awk -v a="$(secs marker)" -v b="$(secs drain)" -v c="$(secs sequences)" 'BEGIN { printf "%.2f", a + b + c }')
    total=$(awk -v d="$down" -v a="$(secs matviews)" -v b="$(secs large_objects)" -v c="$(secs verify)" 'BEGIN { printf "%.2f", d + a + b + c }')
    assert_line "estimated downtime: ${down}s of writes (marker to sequences set, as cutover counts it)"
    assert_line --regexp "^estimated cutover:  ${total}s in all"
    assert_line "recorded in $W/rehearsals.log"
    [[ $stderr == *"rehearsal marker sent at"* ]]

    # nothing the cutover relies on changed: phase, stages, the slot, no
    # cutover.id, the target's sequences; the rehearsal's marker recorded
    phase_is streaming
    alive decode
    alive apply
    [ ! -e "$W/cutover.id" ]
    [ "$(tgt_seqs)" = "$before" ]
    [ "$(qt -c "SELECT count(*) FROM lm.marker WHERE payload LIKE 'rehearse %'")" = 1 ]
    [ "$(qt -c "SELECT count(*) FROM lm.marker")" = 1 ]
    # the view's refresh was rolled back: still as restored, not populated
    [ "$(qt -c "SELECT relispopulated FROM pg_class WHERE oid = 'public.busy_count'::regclass")" = f ]
    # rows written after it still arrive
    qs -c "INSERT INTO quiet VALUES (1000, 'after the rehearsal')"
    on_target() { [ "$(qt -c "SELECT count(*) FROM quiet WHERE id = 1000")" = 1 ]; }
    wait_for 30 on_target
    run -0 lm-migrate status --workdir "$W" --json
    jq -e '.phase == "streaming" and .stages.decode and .stages.apply' <<<"$output" >/dev/null
    jq -e --argjson d "$down" '.last_rehearsal.estimated_downtime_seconds == $d and .last_rehearsal.fence == false' <<<"$output" >/dev/null

    # recorded: one JSON line with the steps and figures shown
    [ "$(wc -l <"$W/rehearsals.log")" = 1 ]
    jq -e --argjson d "$down" --argjson t "$total" '
        (.steps | map(.step)) == ["marker", "drain", "sequences", "matviews", "large_objects", "verify"]
        and .estimated_downtime_seconds == $d and .estimated_cutover_seconds == $t
        and (.steps | map(select(.in_downtime) .step)) == ["marker", "drain", "sequences"]
        and (.steps[] | select(.step == "verify") | .tables == 2 and .differ >= 1)
        and (.steps[] | select(.step == "sequences") | .count == 2 and .differ == 2)
        and (.marker_lsn | test("^[0-9A-F]+/[0-9A-F]+$")) and .problems == [] and (has("sequences") | not)' "$W/rehearsals.log" >/dev/null
    run -0 lm-migrate status --workdir "$W"
    assert_line --regexp "^rehearsal:  estimated downtime ${down}s \(cutover ${total}s in all\) at [0-9-]+T[0-9:]+Z$"

    # --json (and --fence: what the fence would end, nothing ended): one
    # object, stdout only; the estimate is the sum of the steps in it
    run -0 --separate-stderr lm-migrate cutover --rehearse --fence --json --workdir "$W" --timeout 60
    jq -e '
        (.steps | map(.step)) == ["fence", "marker", "drain", "sequences", "matviews", "large_objects", "verify"]
        and all(.steps[]; (.seconds | type) == "number" and .seconds >= 0)
        and .fence == true and (.steps[0].sessions >= 1)
        and .estimated_downtime_seconds == ([.steps[] | select(.in_downtime) .seconds] | add * 100 | round / 100)
        and .estimated_cutover_seconds == ([.steps[] .seconds] | add * 100 | round / 100)
        and (.sequences | map(select(.name == "public.free_seq"))) == [{name: "public.free_seq", source: "4242", target: "1000", on_target: true}]' \
        <<<"$output" >/dev/null
    [ "$(wc -l <"$W/rehearsals.log")" = 2 ]
    [ "$(qs -c "SHOW default_transaction_read_only")" = off ]
    [ -s "$BATS_TEST_TMPDIR/load.pid" ] && kill -0 "$(cat "$BATS_TEST_TMPDIR/load.pid")"
    phase_is streaming
    [ "$(tgt_seqs)" = "$before" ]

    # the real cutover afterwards: writes stopped, the difference undone
    stop_pid_file "$BATS_TEST_TMPDIR/load.pid"
    qt -c "SET session_replication_role = replica" -c "UPDATE quiet SET v = 'q7' WHERE id = 7"
    run -0 lmm cutover --workdir "$W" --timeout 60
    assert_output --partial "cutover complete"
    assert_output --regexp "verify: 2 tables equal"
    phase_is done
    sequences_caught_up
    [ "$(qt -c "SELECT last_value FROM free_seq")" = 4242 ]
    run -0 lmm verify --workdir "$W"
    # after it, nothing to rehearse (exit 2)
    run -2 lmm cutover --rehearse --workdir "$W"
    assert_output --partial "the cutover is already done: there is nothing left to rehearse"
}
