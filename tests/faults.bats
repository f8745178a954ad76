#!/usr/bin/env bats
# Faults and bad input: the whole pipeline (lm-slot, lm-snapshot, lm-decode
# to a spool, lm-apply --follow) under a pgbench load on the source while
# things break: kill -9 of each program at random points (ROUNDS rounds,
# seeded: SEED=N reproduces a run), server restarts, terminated sessions, a
# full spool disk, damaged spool segments; then every kind of bad input,
# hostile identifiers end to end, and the fuzz targets (FUZZ_SECONDS each).
# After every fault story the target must equal the source.
#
#   make check-faults ROUNDS=10 FUZZ_SECONDS=300     the long run
# ROUNDS defaults to 2, and to 1 under CI=true (make check's time budget).
#   SEED=1234 scripts/run-tests tests/faults.bats    replay a seed

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
    lm_cluster_root >/dev/null   # in this shell: pg_restart and pg_stop_all need it
    pg_start source
    pg_start target
}

teardown_file() {
    pg_stop_all
}

setup() {
    pg_env
    T=$BATS_TEST_TMPDIR
    if [ "${CI:-}" = true ]; then ROUNDS=${ROUNDS:-1}; else ROUNDS=${ROUNDS:-2}; fi
    SEED=${SEED:-$(( $(date +%s%N) % 32768 ))}
    RANDOM=$SEED
    echo "# seed $SEED (ROUNDS=$ROUNDS)" >&3
}

teardown() {
    local p
    for p in ${LOAD_PID:-} ${DEC_PID:-} ${APPLY_PID:-} ${SNAP_PID:-} ${HOLD_PID:-} ${CUT_PID:-}; do
        kill -9 "$p" 2>/dev/null || true
    done
    exec 7>&- 2>/dev/null || true
    # a migration left by a failed test: its log, then nothing left running
    if [ -f "${W:-/nonexistent}/config" ]; then
        [ -n "${BATS_TEST_COMPLETED:-}" ] || tail -n 15 "$W"/logs/*.log "$T"/*.out 2>/dev/null
        lm-migrate abort --workdir "$W" >/dev/null 2>&1 || true
    fi
    stop_sshd
    if [ -n "${MOUNTED:-}" ]; then
        umount "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED" 2>/dev/null || true
    fi
    return 0
}

# ------------------------------------------------------------------ helpers

# use_db, both_dbs, src, tgt, hashes, same and lsn_le: tests/helpers.bash

# a random pause of 0.3 to 3.2 seconds
rnd_sleep() { sleep "$(( RANDOM % 30 / 10 )).$(( RANDOM % 10 + 3 ))"; }

# hold_snapshot SLOT [lm-slot options]: lm-slot create --hold in the
# background; sets SNAP and SYNC_LSN
hold_snapshot() {
    local slot=$1; shift
    rm -f "$T/hold.in" "$T/hold.out"
    mkfifo "$T/hold.in"
    bg_start HOLD_PID bash -c 'i=$1 o=$2 e=$3; shift 3; exec "$@" <"$i" >"$o" 2>"$e"' _ \
        "$T/hold.in" "$T/hold.out" "$T/hold.err" lm-slot create --source "$S" --slot "$slot" --hold "$@"
    exec 7>"$T/hold.in"
    wait_for 60 grep -q '^snapshot:' "$T/hold.out" || { cat "$T/hold.err" >&2; return 1; }
    SNAP=$(sed -n 's/^snapshot: *//p' "$T/hold.out")
    SYNC_LSN=$(sed -n 's/^consistent_point: *//p' "$T/hold.out")
}
release_snapshot() {
    exec 7>&- 2>/dev/null || true
    [ -z "${HOLD_PID:-}" ] || wait_pid "$HOLD_PID" 60 "lm-slot create --hold to end (its input closed)" || true
    HOLD_PID=
}

# load_start [RATE] and load_stop (pgbench on the source): tests/helpers.bash
decode_start() {   # extra lm-decode options as arguments
    bg_start DEC_PID bash -c 'e=$1; shift; exec "$@" 2>>"$e"' _ "$T/decode.err" \
        lm-decode --source "$S" --slot "$SLOT" --spool "$SPOOL" --status-interval 1 --segment-time 2 "$@"
}
apply_start() {
    bg_start APPLY_PID bash -c 'e=$1; shift; exec "$@" 2>>"$e"' _ "$T/apply.err" \
        lm-apply --target "$TG" --spool "$SPOOL" --follow
}
slot_inactive() { [ "$(src -c "SELECT NOT active FROM pg_replication_slots WHERE slot_name = '$SLOT'")" = t ]; }
apply_gone() { [ "$(tgt -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lm-apply'")" = 0 ]; }
kill9() {   # kill9 PIDVAR
    local pid=${!1}
    kill -9 "$pid" 2>/dev/null || true
    wait_pid "$pid" 30 "$1 $pid to end on SIGKILL" || true
    printf -v "$1" '%s' ""
}
# a program that must still be running (else show why it ended)
running() {
    local var=$1 err=$2
    kill -0 "${!var}" 2>/dev/null && return 0
    echo "$var ended early:" >&2
    tail -20 "$err" >&2
    return 1
}

# pipeline DB: a pgbench database on the source, slot with a held snapshot,
# schema and data copied by lm-snapshot, then lm-decode to a spool and
# lm-apply --follow, with the load running
pipeline() {
    SLOT=$1
    SPOOL=${SPOOL:-$T/spool}
    mkdir -p "$SPOOL"
    both_dbs "$1" "${SCALE:-1}"
    hold_snapshot "$SLOT" --replica-identity-full
    load_start
    lm-snapshot --source "$S" --target "$TG" --snapshot "$SNAP" --sync-lsn "$SYNC_LSN" \
        --slot "$SLOT" --jobs 2 --workdir "$T/work" 2>"$T/snapshot.err" || { cat "$T/snapshot.err" >&2; return 1; }
    release_snapshot
    decode_start
    apply_start
}

# finish: stop the load, end the stream at the current position with
# --endpos, let lm-apply --follow apply it and stop; the target equals the
# source and the origin is at the last commit
finish() {
    local end rc
    load_stop
    if [ -n "${DEC_PID:-}" ]; then
        kill -TERM "$DEC_PID"
        wait_pid "$DEC_PID" 60 "lm-decode to end on SIGTERM" && rc=0 || rc=$?
        DEC_PID=
        [ "$rc" -eq 0 ] || { echo "lm-decode ended with $rc on SIGTERM" >&2; tail "$T/decode.err" >&2; return 1; }
    fi
    wait_for 30 slot_inactive
    end=$(src -c "SELECT pg_current_wal_lsn()")
    # a commit past the end, so that --endpos ends at once; made after the
    # stopped lm-decode, so that the last segment holds it (a segment of an
    # end record alone is tested on its own below)
    src -c "SELECT pg_logical_emit_message(true, 'lm_faults', 'tick')" >/dev/null
    run timeout 120 lm-decode --source "$S" --slot "$SLOT" --spool "$SPOOL" --endpos "$end" 2>>"$T/decode.err"
    [ "$status" -eq 0 ] || { echo "lm-decode --endpos: exit $status" >&2; tail "$T/decode.err" >&2; return 1; }
    [ -n "${APPLY_PID:-}" ] || apply_start
    wait_for 120 bash -c "! kill -0 $APPLY_PID" || {
        { echo "lm-apply --follow did not stop at the end record $end"
          ls -l "$SPOOL"
          tail -n 20 "$T/apply.err" "$T/decode.err"
          lm-apply --target "$TG" --origin "$SLOT" --status; } 2>&1 | sed 's/^/# /' >&3 || true
        return 1; }
    wait_pid "$APPLY_PID" 10 "lm-apply --follow, seen ended" && rc=0 || rc=$?
    APPLY_PID=
    [ "$rc" -eq 0 ] || { echo "lm-apply ended with $rc" >&2; tail "$T/apply.err" >&2; return 1; }
    echo "# load: $(src -c "SELECT count(*) FROM pgbench_history") pgbench transactions replicated" >&3
    same
    ! grep -qi 'duplicate key' "$T/apply.err"
}

# ------------------------------------------------------- killed programs

@test "faults: kill -9 of lm-decode and of lm-apply at random points, ROUNDS each, under pgbench: target equals source" {
    pipeline kill9
    for r in $(seq 1 "$ROUNDS"); do
        rnd_sleep
        running DEC_PID "$T/decode.err"
        kill9 DEC_PID
        echo "# round $r: lm-decode killed" >&3
        wait_for 30 slot_inactive
        decode_start
        rnd_sleep
        running APPLY_PID "$T/apply.err"
        kill9 APPLY_PID
        echo "# round $r: lm-apply killed" >&3
        wait_for 30 apply_gone
        apply_start
    done
    rnd_sleep
    finish
}

@test "faults: kill -9 of lm-snapshot mid-copy, ROUNDS times, then --resume: target equals source" {
    SLOT=snapkill
    both_dbs snapkill 3
    hold_snapshot "$SLOT" --replica-identity-full
    hashes source >"$T/at-snapshot"
    load_start
    resume=()
    killed=0
    for r in $(seq 1 "$ROUNDS"); do
        bg_start SNAP_PID bash -c 'e=$1; shift; exec "$@" 2>>"$e"' _ "$T/snapshot.err" \
            lm-snapshot --source "$S" --target "$TG" --snapshot "$SNAP" --sync-lsn "$SYNC_LSN" \
            --slot "$SLOT" --jobs 2 --workdir "$T/work" --split-larger-than 1MB "${resume[@]}"
        sleep "0.$(( RANDOM % 9 + 1 ))"
        if kill -0 "$SNAP_PID" 2>/dev/null; then
            killed=$((killed + 1))
            echo "# round $r: lm-snapshot killed" >&3
        fi
        kill9 SNAP_PID
        # children (pg_dump, pg_restore) of a killed lm-snapshot must not linger
        # and hold locks: let them end
        wait_for 30 bash -c "! pgrep -f '^[^ ]*pg_(restore|dump) .*$T' >/dev/null"
        resume=(--resume)
    done
    run --separate-stderr lm-snapshot --source "$S" --target "$TG" --snapshot "$SNAP" --sync-lsn "$SYNC_LSN" \
        --slot "$SLOT" --jobs 2 --workdir "$T/work" --split-larger-than 1MB --resume
    echo "$stderr"
    [ "$status" -eq 0 ]
    load_stop
    release_snapshot
    hashes target >"$T/copied"
    diff "$T/at-snapshot" "$T/copied"
    echo "# lm-snapshot killed mid-copy in $killed of $ROUNDS rounds" >&3
    lm-slot drop --source "$S" --slot "$SLOT" >/dev/null
}

# lm-migrate's own pid (the orchestrator), from its work directory
# (none once it has finished: its pid file goes with it)
migrate_pid() { awk '{print $1}' "$W/pids/migrate" 2>/dev/null || true; }
phase() { cat "$W/phase" 2>/dev/null || echo none; }

@test "faults: kill -9 of lm-migrate at random points of start and of cutover, ROUNDS each, under pgbench: resumed, verify passes" {
    W=$T/work
    both_dbs migkill 3
    load_start 200
    lm-migrate start --source "$S" --target "$TG" --workdir "$W" --jobs 2 --replica-identity-full --detach >>"$T/migrate.out" 2>&1
    local r pid
    for r in $(seq 1 "$ROUNDS"); do
        # odd rounds die early (0-0.5 s: preflight, slot, copy), even ones later
        if [ $((r % 2)) = 1 ]; then sleep "0.$(( RANDOM % 5 ))$(( RANDOM % 10 ))"; else rnd_sleep; fi
        pid=$(migrate_pid)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid"
            echo "# start round $r: lm-migrate killed in phase $(phase)" >&3
            wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"
        else
            echo "# start round $r: lm-migrate had finished its start (phase $(phase))" >&3
        fi
        lm-migrate start --resume --workdir "$W" --detach >>"$T/migrate.out" 2>&1
    done
    # the last resumed orchestrator runs to "caught up" and ends
    wait_for 300 bash -c "p=\$(awk '{print \$1}' '$W/pids/migrate' 2>/dev/null); [ -z \"\$p\" ] || ! kill -0 \"\$p\" 2>/dev/null" || {
        tail -n 20 "$W/logs/migrate.log" >&2; return 1; }
    run -0 lm-migrate start --resume --workdir "$W"
    assert_output --partial "caught up"
    [ "$(phase)" = streaming ]
    # cutover with the fence, killed at a random point; run again until done
    for r in $(seq 1 "$ROUNDS"); do
        bg_start CUT_PID bash -c 'o=$1; shift; exec "$@" >>"$o" 2>&1' _ "$T/cutover.out" \
            lm-migrate cutover --workdir "$W" --fence --timeout 120
        # every third round dies within 0.3 s (before or at the fence), the
        # others within 2 s (marker, sequences, stopping stages, verify)
        if [ $((r % 3)) = 1 ]; then sleep "0.$(( RANDOM % 3 ))$(( RANDOM % 10 ))"
        else sleep "$(( RANDOM % 2 )).$(( RANDOM % 10 ))"; fi
        if kill -0 "$CUT_PID" 2>/dev/null; then
            kill -9 "$CUT_PID"
            echo "# cutover round $r: lm-migrate killed in phase $(phase)$([ -f "$W/fenced" ] && echo ', source fenced')$([ -f "$W/cutover.lsn" ] && echo ', marker sent')" >&3
        else
            echo "# cutover round $r: the cutover had finished (phase $(phase))" >&3
        fi
        wait_pid "$CUT_PID" 30 "lm-migrate cutover to end (killed or finished)" || true
        CUT_PID=
        [ "$(phase)" != done ] || break
    done
    load_stop
    if [ "$(phase)" != done ]; then
        run -0 lm-migrate cutover --workdir "$W" --fence --timeout 120
        assert_output --partial "cutover complete"
    fi
    [ "$(phase)" = done ]
    # the fence holds: the source takes no writes
    run ! src -c "INSERT INTO pgbench_history (tid, bid, aid, delta) VALUES (1, 1, 1, 1)"
    run -0 lm-migrate verify --workdir "$W"
    echo "# $(src -c "SELECT count(*) FROM pgbench_history") pgbench transactions migrated; verify: equal" >&3
    same
    # clean leaves nothing behind, and the old source fenced: the
    # application writes to the target now
    run -0 lm-migrate clean --workdir "$W"
    assert_output --partial "stays fenced"
    [ "$(src -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'lm_%'")" = 0 ]
    run ! src -c "INSERT INTO pgbench_history (tid, bid, aid, delta) VALUES (1, 1, 1, 1)"
}

@test "faults: the ssh link cut mid-stream (decode and apply on other hosts), ROUNDS times, under pgbench: resumed, verify passes" {
    sshd_or_skip
    W=$T/work
    both_dbs sshcut 2
    load_start 100
    # --no-wait: what is tested is the cut and the resume; on a loaded
    # machine the remote apply may stay more than 3 s behind pgbench for
    # minutes, and the cutover drains it once the load stops
    LM_SEGMENT_TIME=1 lm-migrate start --source "$S" --target "$TG" --workdir "$W" --jobs 2 --replica-identity-full \
        --decode-host lmtest --apply-host lmtest --remote-dir "$T/remote" --no-wait >>"$T/migrate.out" 2>&1
    local r n
    for r in $(seq 1 "$ROUNDS"); do
        rnd_sleep
        n=$(cut_ssh_links)
        echo "# round $r: $n ssh connection(s) cut" >&3
        [ "$n" -gt 0 ]
        # the local end of the decode stage is gone: status says so
        wait_for 30 bash -c "lm-migrate status --workdir '$W' --json | jq -e '.stages.decode == false' >/dev/null"
        LM_SEGMENT_TIME=1 lm-migrate start --resume --workdir "$W" --no-wait >>"$T/migrate.out" 2>&1
        lm-migrate status --workdir "$W" --json | jq -e '.stages.decode and .stages.apply' >/dev/null
    done
    sleep 2
    load_stop
    run -0 lm-migrate cutover --workdir "$W" --timeout 180
    assert_output --partial "cutover complete"
    run -0 lm-migrate verify --workdir "$W"
    echo "# $(src -c "SELECT count(*) FROM pgbench_history") pgbench transactions migrated; verify: equal" >&3
    same
    run -0 lm-migrate clean --workdir "$W"
}

# ------------------------------------------------------- server faults

@test "faults: source restarted fast and immediate mid-stream, walsender terminated: target equals source" {
    pipeline srcrestart
    for mode in fast immediate; do
        rnd_sleep
        load_stop
        pg_restart source "$mode"
        echo "# source restarted ($mode)" >&3
        load_start
    done
    rnd_sleep
    # lm-decode reconnects with a backoff after the restarts: its walsender
    # is there again before it is terminated
    decoding() { [ "$(src -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'lm-decode'")" = 1 ]; }
    wait_for 30 decoding
    src -c "SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'lm-decode'" >"$T/term"
    grep -q t "$T/term"
    echo "# walsender terminated" >&3
    rnd_sleep
    # lm-decode reconnects by itself
    running DEC_PID "$T/decode.err"
    finish
}

@test "faults: source restarted fast and immediate mid-copy: lm-snapshot stops clearly, --resume under a fresh snapshot, stream applied: target equals source" {
    SLOT=srccopy
    SPOOL=$T/spool
    mkdir -p "$SPOOL"
    both_dbs srccopy 3
    hold_snapshot "$SLOT" --replica-identity-full
    load_start 200
    decode_start   # the capture runs from the start, as lm-migrate runs it
    local mode resume=() rc t0 n
    for mode in fast immediate; do
        t0=$(tgt -c "SELECT clock_timestamp()")
        # chunks of about 1 MB, each held open 100 ms: the copy takes seconds
        LM_SNAPSHOT_TEST_DELAY_MS=100 bg_start SNAP_PID bash -c 'e=$1; shift; exec "$@" 2>>"$e"' _ "$T/snapshot.err" \
            lm-snapshot --source "$S" --target "$TG" --snapshot "$SNAP" --sync-lsn "$SYNC_LSN" \
            --slot "$SLOT" --jobs 2 --workdir "$T/work" --split-larger-than 1MB "${resume[@]}"
        # mid-copy: this run has committed 1 to 6 chunks (a random number)
        n=$(( RANDOM % 6 + 1 ))
        chunks_done() { [ "$(tgt -c "SELECT count(*) >= $n FROM lm.copy WHERE done_at > '$t0'")" = t ]; }
        wait_for 120 chunks_done || { tail -5 "$T/snapshot.err" >&2; return 1; }
        load_stop
        pg_restart source "$mode"
        load_start 200
        wait_pid "$SNAP_PID" 120 "lm-snapshot to stop after the source restart" && rc=0 || rc=$?
        SNAP_PID=
        echo "# source restarted ($mode) after $n chunks of this run: lm-snapshot exited $rc" >&3
        # a lost source is a connection or server error, never a crash nor a success
        [ "$rc" -eq 3 ] || [ "$rc" -eq 5 ] || { tail -5 "$T/snapshot.err" >&2; return 1; }
        resume=(--resume)
    done
    # the restart ended the snapshot's holder: the snapshot is gone
    wait_for 30 bash -c "! kill -0 $HOLD_PID 2>/dev/null"
    release_snapshot
    run --separate-stderr lm-snapshot --source "$S" --target "$TG" --snapshot "$SNAP" --sync-lsn "$SYNC_LSN" \
        --slot "$SLOT" --jobs 2 --workdir "$T/work" --split-larger-than 1MB --resume
    echo "$stderr" | tail -n 5 | sed 's/^/# /' >&3
    [ "$status" -eq 0 ]
    running DEC_PID "$T/decode.err"
    apply_start
    rnd_sleep
    finish
}

@test "faults: target restarted mid-apply, apply session terminated: lm-apply exits (or reconnects), restarted: target equals source" {
    pipeline tgtrestart
    for what in restart terminate; do
        rnd_sleep
        running APPLY_PID "$T/apply.err"
        if [ "$what" = restart ]; then
            pg_restart target immediate
        else
            tgt -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lm-apply'" >"$T/term"
            grep -q t "$T/term"
        fi
        echo "# target: $what" >&3
        # lm-apply gives up with exit 5 (the operator or lm-migrate restarts it)
        if wait_for 30 bash -c "! kill -0 $APPLY_PID"; then
            wait_pid "$APPLY_PID" 10 "lm-apply, seen ended" && rc=0 || rc=$?
            echo "# lm-apply exited $rc after $what" >&3
            [ "$rc" -eq 5 ]
            grep -q 'lm-apply' "$T/apply.err"
            APPLY_PID=
            wait_for 30 apply_gone
            apply_start
        fi
    done
    rnd_sleep
    finish
}

@test "faults: lm-apply --follow stops at an end record that is alone in its segment (lm-decode --endpos with nothing new)" {
    SLOT=endalone
    SPOOL=$T/spool
    mkdir -p "$SPOOL"
    both_dbs endalone
    src -c "CREATE TABLE k (id int PRIMARY KEY)"
    tgt -c "CREATE TABLE k (id int PRIMARY KEY)"
    src -c "CREATE PUBLICATION endalone FOR TABLE k"
    src -c "SELECT 1 FROM pg_create_logical_replication_slot('endalone', 'pgoutput')" >/dev/null
    decode_start
    apply_start
    src -c "INSERT INTO k VALUES (1)"
    # the count is read again at every try (wait_for runs its command anew)
    k_applied() { [ "$(tgt -c "SELECT count(*) FROM k")" = 1 ]; }
    wait_for 30 k_applied
    end=$(src -c "SELECT pg_current_wal_lsn()")
    kill -TERM "$DEC_PID"; wait_pid "$DEC_PID" 60 "lm-decode to end on SIGTERM"; DEC_PID=
    wait_for 30 slot_inactive
    # everything up to end is in the spool already: this run writes a
    # segment holding the end record alone
    timeout 60 lm-decode --source "$S" --slot "$SLOT" --spool "$SPOOL" --endpos "$end" 2>>"$T/decode.err"
    ls "$SPOOL" >&2
    wait_pid "$APPLY_PID" 30 "lm-apply --follow to stop at the end record"
    APPLY_PID=
}

# ------------------------------------------------------- spool disk full

# the highest commit or position the spool's segments hold, complete or not
spool_high() {
    local f l high=0/0
    for f in "$SPOOL"/seg-*; do
        [ -f "$f" ] || continue
        l=$(lm-cat --json "$f" 2>/dev/null | jq -r 'select(.type == "commit") .end_lsn, select(.type == "position") .lsn' | tail -1)
        [ -n "$l" ] && lsn_le "$high" "$l" && high=$l
    done
    echo "$high"
}

@test "faults: spool disk full: lm-decode stops with exit 9, the slot is not acknowledged past the spool; restarted still full: the partial is recovered in place; space back: resumes, target equals source" {
    SPOOL=$T/spool
    mkdir -p "$SPOOL"
    if ! mount -t tmpfs -o size=2m,mode=0700 tmpfs "$SPOOL" 2>"$T/mount.err"; then
        skip "cannot mount a tmpfs for the spool: $(cat "$T/mount.err")"
    fi
    MOUNTED=$SPOOL
    pipeline diskfull
    sleep 2
    # fill the disk, leaving a little room
    dd if=/dev/zero of="$SPOOL/filler" bs=64k count=100 2>/dev/null || true
    rm -f "$SPOOL/filler"
    avail=$(df -B1 --output=avail "$SPOOL" | tail -1)
    dd if=/dev/zero of="$SPOOL/filler" bs=1k count=$(( avail / 1024 - 64 )) 2>/dev/null || true
    wait_for 120 bash -c "! kill -0 $DEC_PID"
    wait_pid "$DEC_PID" 10 "lm-decode, seen ended" && rc=0 || rc=$?
    DEC_PID=
    cat "$T/decode.err"
    [ "$rc" -eq 9 ]
    grep -qi 'space' "$T/decode.err"
    # what the slot confirmed is held by the spool
    confirmed=$(src -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$SLOT'")
    high=$(spool_high)
    echo "# disk full: confirmed $confirmed, spool holds up to $high" >&3
    lsn_le "$confirmed" "$high"
    run ! grep -q 'Success' "$T/decode.err"
    # started again on the still full disk (what is left filled too): the
    # partial is cut back in place and finished (its trailer has the
    # spool's reserve if need be); no copy is left behind, and nothing
    # complete is lost
    wait_for 30 slot_inactive
    dd if=/dev/zero of="$SPOOL/filler2" bs=4k 2>/dev/null || true
    run timeout 30 lm-decode --source "$S" --slot "$SLOT" --spool "$SPOOL" --status-interval 1 \
        --segment-time 2 -vv
    echo "# restarted on a full disk: exit $status: $(grep -E 'recover|space' <<<"$output" | head -3)" >&3
    [ "$status" -eq 9 ] || [ "$status" -eq 124 ]
    [[ $output != *Success* ]]
    [[ $output == *"recovered partial segment"* ]]
    [ -z "$(find "$SPOOL" -name '*recover*')" ]
    confirmed=$(src -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$SLOT'")
    lsn_le "$confirmed" "$(spool_high)"
    # space returns
    rm -f "$SPOOL/filler2"
    rm -f "$SPOOL/filler"
    mount -o remount,size=64m "$SPOOL"
    wait_for 30 slot_inactive
    decode_start
    # streaming (a SIGTERM before that would find no handler yet)
    wait_for 30 bash -c "! kill -0 $DEC_PID 2>/dev/null || [ \$(grep -c 'streaming slot' '$T/decode.err') -ge 2 ]"
    rnd_sleep
    finish
}

# ------------------------------------------------------- damaged spool

# a spool of several segments for the damage tests: sets DB, SLOT, SEGS
damage_spool() {
    SLOT=$1
    both_dbs "$1"
    src -c "CREATE TABLE d (id int PRIMARY KEY, v text)"
    tgt -c "CREATE TABLE d (id int PRIMARY KEY, v text)"
    src -c "CREATE PUBLICATION \"$SLOT\" FOR TABLE d"
    src -c "SELECT 1 FROM pg_create_logical_replication_slot('$SLOT', 'pgoutput')" >/dev/null
    mkdir -p "$T/spool"
    # three lm-decode runs: each ends its own segment (rotation by size alone
    # is not reliable for a burst of WAL decoded faster than a frame flush)
    for part in 0 1 2; do
        src -c "DO \$\$ BEGIN FOR i IN $((part * 100))..$((part * 100 + 99)) LOOP
            INSERT INTO d SELECT g, md5(g::text) || repeat(md5(random()::text), 8) FROM generate_series(i * 50, i * 50 + 49) g;
            COMMIT; END LOOP; END \$\$"
        lm-decode --source "$S" --slot "$SLOT" --spool "$T/spool" --segment-size 100kB \
            --endpos "$(src -c "SELECT pg_current_wal_lsn()")" 2>>"$T/decode.err"
    done
    mapfile -t SEGS < <(ls "$T/spool"/seg-*.lmz | sort)
    [ "${#SEGS[@]}" -ge 3 ] || { ls -l "$T/spool"; cat "$T/decode.err"; false; }
}
origin_pos() {
    tgt -c "SELECT pg_replication_origin_progress(roname, true) FROM pg_replication_origin WHERE roname = '$SLOT'"
}
# the end LSN of the last commit readable before the damage
last_good_commit() {
    lm-cat --json "$@" 2>/dev/null | jq -r 'select(.type == "commit") .end_lsn' | tail -1
}

@test "faults: a spool segment with a flipped byte: lm-apply stops at the last good transaction, names file and offset, exit 6" {
    damage_spool flipped
    seg=${SEGS[1]}
    size=$(stat -c %s "$seg")
    off=$(( size / 2 ))
    b=$(dd if="$seg" bs=1 skip="$off" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    printf "\\x$(printf %02x $((b ^ 0x5a)))" | dd of="$seg" bs=1 seek="$off" conv=notrunc 2>/dev/null
    good=$(last_good_commit "${SEGS[@]}")
    run --separate-stderr lm-apply --target "$TG" --spool "$T/spool"
    echo "$stderr"
    [ "$status" -eq 6 ]
    [[ $stderr == *"$(basename "$seg")"* ]]
    [[ $stderr == *offset* || $stderr == *byte* ]]
    [ -n "$good" ]
    [ "$(origin_pos)" = "$good" ]
    # every row applied belongs to a whole transaction (50 rows each)
    [ $(( $(tgt -c "SELECT count(*) FROM d") % 50 )) -eq 0 ]
    # a stream of another source system is refused by this origin: exit 8
    run --separate-stderr bash -c 'lm-testgen --slot "$1" --sysid 42 | lm-apply --target "$2"' _ "$SLOT" "$TG"
    echo "$stderr"
    [ "$status" -eq 8 ]
    [[ $stderr == *42* || $stderr == *system* ]]
}

@test "faults: a truncated spool segment: lm-apply stops at the last good transaction, names file and offset, exit 6 or 7" {
    damage_spool truncated
    seg=${SEGS[1]}
    truncate -s $(( $(stat -c %s "$seg") / 2 )) "$seg"
    good=$(last_good_commit "${SEGS[@]}")
    run --separate-stderr lm-apply --target "$TG" "${SEGS[@]}"
    echo "$stderr"
    [[ $status -eq 7 || $status -eq 6 ]]
    [[ $stderr == *"$(basename "$seg")"* ]]
    [[ $stderr == *offset* || $stderr == *byte* ]]
    [ "$(origin_pos)" = "$good" ]
    [ $(( $(tgt -c "SELECT count(*) FROM d") % 50 )) -eq 0 ]
}

# ------------------------------------------------------- bad input

# what the servers hold that a refused command must leave alone
server_state() {
    local c
    for c in source target; do
        echo "== $c"
        q "$c" -c "SELECT slot_name FROM pg_replication_slots ORDER BY 1"
        q "$c" -c "SELECT roname FROM pg_replication_origin ORDER BY 1"
        q "$c" -c "SELECT datname FROM pg_database ORDER BY 1"
        PGDATABASE_TEST=badin q "$c" -c "SELECT pubname FROM pg_publication ORDER BY 1"
        PGDATABASE_TEST=badin q "$c" -c "SELECT relname, relreplident FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1"
        PGDATABASE_TEST=badin q "$c" -c "SELECT nspname FROM pg_namespace ORDER BY 1"
    done
}
# expect CODE CMD...: exit CODE with an "lm-" error line, no password
expect() {
    local code=$1; shift
    run --separate-stderr "$@"
    echo "\$ $* -> $status: $stderr"
    [ "$status" -eq "$code" ] || { echo "expected exit $code, got $status" >&2; return 1; }
    [[ $stderr == *lm-* ]]
    [[ $stderr != *Secr3t* && $output != *Secr3t* ]]
    # refused means nothing changed: compared after each command, so that a
    # failure names the command that changed something
    if [ -f "$T/before" ]; then
        server_state >"$T/now"
        diff "$T/before" "$T/now" || { echo "the refused command changed the servers: $*" >&2; return 1; }
    fi
}

@test "faults: bad input: each refused with a clear message and its exit code, nothing changed on either server" {
    both_dbs badin
    src -c "CREATE TABLE k (id int PRIMARY KEY, v text); CREATE TABLE nokey (v text); INSERT INTO k VALUES (1, 'a')"
    tgt -c "CREATE TABLE k (id int PRIMARY KEY, v text)"
    src -c "CREATE ROLE norepl LOGIN; CREATE ROLE pwuser LOGIN REPLICATION SUPERUSER"
    src -c "SET password_encryption = 'scram-sha-256'; ALTER ROLE pwuser PASSWORD 'Secr3t-right'"
    tgt -c "CREATE ROLE plain LOGIN; GRANT ALL ON TABLE k TO plain"
    sed -i '1i host all pwuser 127.0.0.1/32 scram-sha-256\nhost replication pwuser 127.0.0.1/32 scram-sha-256' "$SOURCE_DIR/pg_hba.conf"
    src -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
    # a valid stream for the target-side cases
    src -c "CREATE PUBLICATION okpub FOR TABLE k"
    src -c "SELECT 1 FROM pg_create_logical_replication_slot('okslot', 'pgoutput')" >/dev/null
    src -c "INSERT INTO k VALUES (2, 'b')"
    lm-decode --source "$S" --slot okslot --publication okpub --endpos "$(src -c "SELECT pg_current_wal_lsn()")" \
        >"$T/ok.lm" 2>"$T/decode.err"
    # applied once: the origin okslot is paired with this source
    lm-apply --target "$TG" "$T/ok.lm" 2>"$T/apply.err"
    closed=$(free_port)
    server_state >"$T/before"

    # connections
    expect 3 lm-slot create --source "host=127.0.0.1 port=$closed dbname=badin user=postgres" --slot s1
    expect 3 lm-decode --source "host=no-such-host.invalid dbname=badin user=postgres" --slot s1
    expect 3 lm-apply --target "host=127.0.0.1 port=$closed dbname=badin user=postgres" "$T/ok.lm"
    expect 3 lm-slot create --source "host=127.0.0.1 port=$SOURCE_PORT dbname=badin user=pwuser password=Secr3t-wrong" --slot s1
    expect 3 lm-decode --source "host=127.0.0.1 port=$SOURCE_PORT dbname=badin user=pwuser password=Secr3t-wrong" --slot okslot --publication okpub
    expect 3 lm-snapshot --source "host=127.0.0.1 port=$SOURCE_PORT dbname=badin user=pwuser password=Secr3t-wrong" \
        --target "$TG" --snapshot 00000003-00000002-1 --workdir "$T/snapwork"
    expect 3 lm-slot create --source "host=127.0.0.1 port=$SOURCE_PORT dbname=nosuchdb user=postgres" --slot s1
    # malformed connection strings: libpq quotes the piece it cannot parse,
    # here a password (or a URI holding one); it is left out of the message
    expect 3 lm-decode --source "postgresql://pwuser:Secr3t%zz@127.0.0.1:$SOURCE_PORT/badin" --slot okslot --publication okpub
    [[ $stderr == *"invalid percent-encoded token"* ]]
    expect 3 lm-apply --target "host=127.0.0.1 password=Secr3t wrong" "$T/ok.lm"
    [[ $stderr == *'missing "=" after'* ]]
    expect 3 lm-slot status --source "postgresql://pwuser:Secr3t@[::1/badin" --slot s1
    expect 2 lm-snapshot --source "postgresql://pwuser:Secr3t@h/d?x=Secr3t%20 y" --target "$TG" \
        --snapshot 00000003-00000002-1 --workdir "$T/snapwork"
    expect 3 lm-apply --target "host=127.0.0.1 port=$TARGET_PORT dbname=nosuchdb user=postgres" "$T/ok.lm"
    # preconditions
    expect 4 lm-slot create --source "host=127.0.0.1 port=$SOURCE_PORT dbname=badin user=norepl" --slot s1 --table k
    [[ $stderr == *REPLICATION* || $stderr == *replication* ]]
    expect 4 lm-slot create --source "$S" --slot s1
    [[ $stderr == *nokey* ]]
    [[ $stderr == *"REPLICA IDENTITY"* || $stderr == *replica-identity* ]]
    expect 4 lm-apply --target "host=127.0.0.1 port=$TARGET_PORT dbname=badin user=plain" "$T/ok.lm"
    # streams
    expect 7 lm-apply --target "$TG" </dev/null
    head -c 4096 /dev/urandom >"$T/random"
    expect 6 lm-apply --target "$TG" "$T/random"
    # the same slot name from another source system
    lm-testgen --slot okslot --sysid 42 >"$T/foreign.lm"
    expect 8 lm-apply --target "$TG" "$T/foreign.lm"
    [[ $stderr == *"system"* ]]
    # options out of range and invalid names, refused before connecting
    expect 2 lm-decode --source "host=127.0.0.1 port=$closed" --slot okslot --status-interval 0
    expect 2 lm-decode --source "host=127.0.0.1 port=$closed" --slot okslot --max-retries -1
    expect 2 lm-decode --source "host=127.0.0.1 port=$closed" --slot okslot --segment-size 1x
    expect 2 lm-apply --target "host=127.0.0.1 port=$closed" --batch-rows 0 "$T/ok.lm"
    expect 2 lm-apply --target "host=127.0.0.1 port=$closed" --group-time -1 "$T/ok.lm"
    expect 2 lm-snapshot --source "host=127.0.0.1 port=$closed" --target "$TG" --snapshot x --jobs 65
    for bad in 'Bad-Name' 'a;drop table k' "$(printf 'x%.0s' {1..64})" '' 'sl"ot' 'ünï'; do
        expect 2 lm-slot create --source "host=127.0.0.1 port=$closed dbname=badin" --slot "$bad"
        [[ $stderr == *slot* ]]
        [[ $stderr != *connect* ]]
        expect 2 lm-decode --source "host=127.0.0.1 port=$closed dbname=badin" --slot "$bad"
        [[ $stderr == *slot* ]]
        [[ $stderr != *connect* ]]
    done
    server_state >"$T/after"
    diff "$T/before" "$T/after"
}

@test "faults: lm-snapshot with a source it cannot connect to exits 3 and leaves the target alone" {
    use_db snapnoconn
    q target -c "CREATE DATABASE snapnoconn"
    closed=$(free_port)
    run --separate-stderr lm-snapshot --source "host=127.0.0.1 port=$closed dbname=x user=postgres" \
        --target "$TG" --snapshot 00000003-00000002-1 --workdir "$T/work"
    echo "$stderr"
    [ "$status" -eq 3 ]
    [ "$(tgt -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'lm'")" = 0 ]
}

@test "faults: wal_level=replica and no free replication slot: lm-slot create exits 4, nothing created" {
    pg_start replica "wal_level = replica"
    pg_start tight "max_replication_slots = 1"
    run --separate-stderr lm-slot create --source "$REPLICA_CONN" --slot s1
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ $stderr == *wal_level* ]]
    [ "$(q replica -c "SELECT count(*) FROM pg_publication")" = 0 ]
    q tight -c "SELECT 1 FROM pg_create_logical_replication_slot('taken', 'pgoutput')" >/dev/null
    q tight -c "CREATE TABLE k (id int PRIMARY KEY)"
    run --separate-stderr lm-slot create --source "$TIGHT_CONN" --slot s1
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ $stderr == *slot* ]]
    [ "$(q tight -c "SELECT count(*) FROM pg_publication")" = 0 ]
    [ "$(q tight -c "SELECT string_agg(slot_name, ',') FROM pg_replication_slots")" = taken ]
    pg_stop replica
    pg_stop tight
}

# ------------------------------------------------------- hostile identifiers

@test "faults: hostile identifiers (quotes, semicolons, unicode, spaces, dots, reserved words) through lm-slot, lm-snapshot, lm-decode, lm-apply" {
    use_db "hostile \"db\" o'k; x"
    # libpq's quoting: single quotes around a value with spaces and quotes,
    # a backslash before a single quote inside
    S="host=127.0.0.1 port=$SOURCE_PORT dbname='hostile \"db\" o\\'k; x' user=postgres"
    TG="host=127.0.0.1 port=$TARGET_PORT dbname='hostile \"db\" o\\'k; x' user=postgres"
    q source -c "CREATE DATABASE \"hostile \"\"db\"\" o'k; x\""
    q target -c "CREATE DATABASE \"hostile \"\"db\"\" o'k; x\""
    src <<'SQL'
CREATE SCHEMA "we;ird ""s"".x";
CREATE SCHEMA "select";
CREATE TABLE "we;ird ""s"".x"."tab.le ""q""; DROP TABLE x" (
    "id" int PRIMARY KEY, "col umn" text, "from" int, "ünï cødé ""q""" text, "a.b;c" numeric);
CREATE TABLE "select"."from" ("where" int PRIMARY KEY, "order" text);
CREATE TABLE public."Mixed Case ✓" ("KEY" text PRIMARY KEY, "val'ue" jsonb);
CREATE TABLE public."keyless; --" ("x y" int, "z" text);
INSERT INTO "we;ird ""s"".x"."tab.le ""q""; DROP TABLE x" SELECT g, 'v ' || g, g, 'ü' || g, g / 3.0 FROM generate_series(1, 50) g;
INSERT INTO "select"."from" SELECT g, 'o''' || g FROM generate_series(1, 20) g;
INSERT INTO public."Mixed Case ✓" VALUES ('a;b', '{"k": "v''"}'), ('c"d', '[1, 2]');
INSERT INTO public."keyless; --" VALUES (1, 'one'), (2, 'two'), (2, 'two');
SQL
    SLOT=hostile_slot
    hold_snapshot "$SLOT" --publication 'pub "x"; drop' --replica-identity-full
    lm-snapshot --source "$S" --target "$TG" --snapshot "$SNAP" --sync-lsn "$SYNC_LSN" --slot "$SLOT" \
        --jobs 2 --workdir "$T/work" 2>"$T/snapshot.err" || { cat "$T/snapshot.err"; false; }
    release_snapshot
    src <<'SQL'
INSERT INTO "we;ird ""s"".x"."tab.le ""q""; DROP TABLE x" SELECT g, 'v ' || g, g, 'ü' || g, g FROM generate_series(51, 80) g;
UPDATE "we;ird ""s"".x"."tab.le ""q""; DROP TABLE x" SET "col umn" = 'changed; ''q''', "from" = -1 WHERE "id" % 7 = 0;
UPDATE "we;ird ""s"".x"."tab.le ""q""; DROP TABLE x" SET "id" = "id" + 1000 WHERE "id" = 3;
DELETE FROM "we;ird ""s"".x"."tab.le ""q""; DROP TABLE x" WHERE "id" % 11 = 0;
UPDATE "select"."from" SET "order" = 'ordered ✓' WHERE "where" < 5;
DELETE FROM "select"."from" WHERE "where" = 20;
UPDATE public."Mixed Case ✓" SET "val'ue" = '{"n": null}' WHERE "KEY" = 'a;b';
INSERT INTO public."Mixed Case ✓" VALUES ('e f', NULL);
DELETE FROM public."keyless; --" WHERE "x y" = 2 AND ctid = (SELECT min(ctid) FROM public."keyless; --" WHERE "x y" = 2);
UPDATE public."keyless; --" SET "z" = 'uno' WHERE "x y" = 1;
TRUNCATE "select"."from";
INSERT INTO "select"."from" VALUES (1, 'after truncate');
SQL
    end=$(src -c "SELECT pg_current_wal_lsn()")
    lm-decode --source "$S" --slot "$SLOT" --publication 'pub "x"; drop' --endpos "$end" >"$T/h.lm" 2>"$T/decode.err" ||
        { cat "$T/decode.err"; false; }
    run --separate-stderr lm-apply --target "$TG" "$T/h.lm"
    echo "$stderr"
    [ "$status" -eq 0 ]
    same
    [ "$(wc -l <"$T/src.hash")" -eq 4 ]
    # no identifier was executed as SQL
    [ "$(q target -c "SELECT count(*) FROM pg_database WHERE datname = 'hostile \"db\" o''k; x'")" = 1 ]
    run lm-slot drop --source "$S" --slot "$SLOT" --publication 'pub "x"; drop'
    [ "$status" -eq 0 ]
}

# ------------------------------------------------------- fuzzing

@test "faults: fuzz targets run FUZZ_SECONDS each without a crash" {
    if ! command -v clang >/dev/null 2>&1; then
        skip "clang is not installed (scripts/install-deps fuzz)"
    fi
    if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
        clang -x c -fsanitize=fuzzer -o "$T/probe" - 2>"$T/probe.err"; then
        skip "clang cannot link libFuzzer (libclang-rt-14-dev): $(head -1 "$T/probe.err")"
    fi
    run "$LM_ROOT/scripts/fuzz" "${FUZZ_SECONDS:-10}"
    echo "$output"
    echo "$output" | sed 's/^/# /' >&3
    [ "$status" -eq 0 ]
    [[ $output == *"fuzz_stream: #"*DONE* ]]
    [[ $output == *"fuzz_pgoutput: #"*DONE* ]]
}
