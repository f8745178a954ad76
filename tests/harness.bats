#!/usr/bin/env bats
# The test harness itself: clusters start as the unprivileged user, with
# wal_level=logical, on distinct ports, and nothing is left running.

load helpers

setup_file() {
    pg_start source
    pg_start target
}

teardown_file() {
    pg_stop_all
}

setup() { pg_env; }

@test "harness: source and target run with wal_level=logical on distinct ports" {
    run q source -c "SHOW wal_level"
    assert_success
    assert_output logical
    run q target -c "SHOW wal_level"
    assert_output logical
    [ "$SOURCE_PORT" != "$TARGET_PORT" ]
}

@test "harness: clusters run as the postgres user, not root" {
    run q source -c "SELECT current_setting('data_directory')"
    assert_success
    owner=$(stat -c %U "$output")
    [ "$owner" = postgres ] || [ "$(id -u)" -ne 0 ]
}

@test "harness: pg_stop_all leaves no server running" {
    pg_start extra
    local dir=$EXTRA_DIR port=$EXTRA_PORT
    run q extra -c "SELECT 1"
    assert_output 1
    # a separate root, so this file's other clusters stay up
    local saved=$LM_CLUSTER_ROOT
    LM_CLUSTER_ROOT=$(mktemp -d /tmp/lm-test.XXXXXX)
    chmod 755 "$LM_CLUSTER_ROOT"; [ "$(id -u)" -eq 0 ] && chown postgres: "$LM_CLUSTER_ROOT"
    pg_start probe
    local pdir=$PROBE_DIR pport=$PROBE_PORT
    pg_stop_all
    LM_CLUSTER_ROOT=$saved
    [ ! -e "$pdir/postmaster.pid" ]
    ! port_in_use "$pport"
    pg_stop extra
    [ ! -e "$dir/postmaster.pid" ]
    ! port_in_use "$port"
}

@test "harness: every shell script (lm-migrate, scripts/, test helpers) passes shellcheck" {
    command -v shellcheck >/dev/null || skip "shellcheck is not installed (scripts/install-deps installs it)"
    run make -C "$LM_ROOT" -s shellcheck
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "harness: a cluster root made under /tmp leaves /tmp's mode (sticky, writable by all) alone" {
    [ "$(stat -c %a /tmp)" = 1777 ] || skip "/tmp is not 1777 on this machine"
    run bash -c 'unset LM_TEST_RUN_DIR LM_CLUSTER_ROOT; . "$0/tests/helpers.bash" 2>/dev/null; d=$(lm_cluster_root); rmdir "$d"; stat -c %a /tmp' "$LM_ROOT"
    assert_success
    assert_output 1777
}

@test "harness: load_stop ends a pgbench started with SIGINT ignored (as under sh -c 'make check & wait') within its bound" {
    q source -c "CREATE DATABASE load"
    DB=load T=$BATS_TEST_TMPDIR
    pgbench -i -q -h 127.0.0.1 -p "$SOURCE_PORT" -U postgres "$DB" >"$T/init.log" 2>&1
    # started as a background job of a non-interactive sh is: SIGINT ignored,
    # which pgbench inherits
    local saved
    saved=$(trap -p INT)
    trap '' INT
    load_start 50
    eval "${saved:-trap - INT}"
    local pid=$LOAD_PID
    sleep 1
    kill -0 "$pid"
    local ign
    ign=$(awk '/^SigIgn:/ {print $2}' "/proc/$pid/status")
    (( 16#$ign & 2 ))   # SIGINT (2) ignored
    # should load_stop not end it, this ends it after 45 s (not pgbench's
    # hour), so that the test fails instead of hanging
    bg_start DOG bash -c 'trap "exit 0" TERM; for _ in $(seq 450); do sleep 0.1; done; kill -9 "$1"' _ "$pid"
    local t0=$SECONDS
    load_stop
    local took=$((SECONDS - t0))
    kill "$DOG" 2>/dev/null || true
    echo "load_stop took $took s"
    [ "$took" -lt 20 ]
    ! kill -0 "$pid" 2>/dev/null
    [ -z "$LOAD_PID" ]
}

@test "harness: under scripts/run-tests a hanging test fails at the per-test timeout, naming what it was running" {
    local d=$BATS_TEST_TMPDIR/hang
    mkdir -p "$d"
    {
        echo "load '$LM_ROOT/tests/helpers'"
        # (an @test line here would be taken for one of this file's tests)
        sed 's/^T /@test /' <<'BATS'
T "sleeps in the foreground" { sleep 300; }
T "a program under run that does not end" { run bash -c 'sleep 301; true'; }
T "waits for a background process" { bg_start P sleep 302; wait "$P"; }
T "passes" { true; }
BATS
    } >"$d/hang.bats"
    # run as a run of its own: none of this bats run's settings (a -f
    # filter, a timeout) nor this file's clusters
    local v unset=(-u LM_CLUSTER_ROOT -u LM_TEST_RUN_DIR)
    for v in $(compgen -e); do
        [[ $v == BATS_* ]] && unset+=(-u "$v")
    done
    local t0=$SECONDS
    # a bound of its own: without a per-test timeout the run would take
    # 15 minutes
    run env "${unset[@]}" LM_TEST_TIMEOUT=3 timeout 120 "$LM_ROOT/scripts/run-tests" "$d/hang.bats"
    local took=$((SECONDS - t0))
    echo "$output"
    echo "took $took s"
    [ "$status" -eq 1 ]
    [ "$took" -lt 90 ]
    grep -q '^not ok 1 sleeps in the foreground # timeout after 3s' <<<"$output"
    grep -q '^not ok 2 a program under run that does not end # timeout after 3s' <<<"$output"
    grep -q '^not ok 3 waits for a background process # timeout after 3s' <<<"$output"
    [[ $output == *"1 passed, 3 failed"* ]]
    # what each was still running is named
    [[ $output == *"sleep 300"* ]]
    [[ $output == *"sleep 301"* ]]
    [[ $output == *"sleep 302"* ]]
    # nothing of it is left running
    ! pgrep -f 'sleep 30[012]$'
}
