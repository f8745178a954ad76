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
