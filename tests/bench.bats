#!/usr/bin/env bats
# scripts/bench at a tiny scale: the copy and backlog measures run for every
# tool, and every target is verified equal to its source. The figures
# themselves are not checked (a shared machine makes them noise).

load helpers

setup_file() {
    if ! command -v pgcopydb >/dev/null 2>&1; then
        "$LM_ROOT/scripts/install-deps" bench >/dev/null 2>&1 || true
    fi
    BENCH_DIR=$(mktemp -d /tmp/lm-bench.XXXXXX)
    export BENCH_DIR
}

teardown_file() {
    [ -n "${BENCH_DIR:-}" ] && rm -rf "$BENCH_DIR"
}

# The Verified column (the last one) of the table row for MEASURE and TOOL.
verified_of() {
    awk -F' \\| ' -v m="$1" -v t="$2" '$1 == "| " m && $2 == t { v = $NF; sub(/ \|$/, "", v); print v }' \
        "$BENCH_DIR/results.md"
}

@test "bench: copy and backlog rows for every tool, every target verified ok" {
    if ! command -v pgcopydb >/dev/null 2>&1; then
        skip "pgcopydb cannot be installed (scripts/install-deps bench failed): the peers cannot be measured"
    fi
    [ -x "$LM_ROOT/bin/lm-decode/lm-decode" ] && [ -x "$LM_ROOT/bin/lm-apply/lm-apply" ] ||
        skip "lm programs not built (run make)"
    run timeout 300 "$LM_ROOT/scripts/bench" --scale 1 --changes 2000 --live-seconds 3 \
        --only copy,backlog --workdir "$BENCH_DIR"
    echo "$output" | tail -40
    assert_success
    [ -s "$BENCH_DIR/results.md" ]
    grep -q '^| Measure | Tool | Figure .*| Verified |$' "$BENCH_DIR/results.md"
    local tool
    for tool in "pg_dump -Fc / pg_restore" "pg_dump -Fd -j / pg_restore -j" "pgcopydb clone" "lm-slot + lm-snapshot"; do
        run verified_of "copy: wall s" "$tool"
        echo "copy, $tool: $output"
        assert_output ok
    done
    for tool in "native subscription" "pgcopydb follow" "lm-decode + lm-apply (pipe)" "lm-decode + lm-apply (spool)"; do
        run verified_of "backlog: catch-up s" "$tool"
        echo "backlog, $tool: $output"
        assert_output ok
    done
    # the lm rows carry a figure, not n/a
    run grep -E '^\| (copy: wall s \| lm-slot|backlog: catch-up s \| lm-decode).* \| n/a' "$BENCH_DIR/results.md"
    assert_failure
    # nothing left running
    run bash -c "ls $BENCH_DIR/clusters/*/postmaster.pid"
    assert_failure
}

@test "bench: --only slots splits the tables over N slots and the N lm-decode streams hold every insert once" {
    [ -x "$LM_ROOT/bin/lm-decode/lm-decode" ] || skip "lm programs not built (run make)"
    run timeout 300 "$LM_ROOT/scripts/bench" --only slots --changes 3000 --slots 1,2,3 --workdir "$BENCH_DIR"
    echo "$output" | tail -30
    assert_success
    local n
    for n in 1 2 3; do
        run verified_of "slots: N=$n: wall s" "lm-decode, $n at once"
        echo "N=$n: $output"
        assert_output ok
        # the floor was measured too, with a figure
        run grep -E "^\| slots: N=$n: wall s \| pg_recvlogical \(pgoutput\), $n at once \| [0-9.]+ \|" "$BENCH_DIR/results.md"
        assert_success
    done
    run bash -c "ls $BENCH_DIR/clusters/*/postmaster.pid"
    assert_failure
}
