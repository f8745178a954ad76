#!/usr/bin/env bats
# scripts/bench at a tiny scale: the copy, backlog and small-transaction
# measures run for every tool, with pgcopydb 0.18 (built from vendor/pgcopydb
# by scripts/install-deps bench), and every target is verified equal to its
# source. The figures themselves are only checked to be figures (a shared
# machine makes them noise).

load helpers

PGCOPYDB_018=/usr/local/lib/lm-peers/pgcopydb-0.18/bin/pgcopydb

setup_file() {
    if ! "$PGCOPYDB_018" --version 2>/dev/null | grep -q '^pgcopydb version 0.18$'; then
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
# The Figure column of the row for MEASURE and TOOL.
figure_of() {
    awk -F' \\| ' -v m="$1" -v t="$2" '$1 == "| " m && $2 == t { print $3 }' "$BENCH_DIR/results.md"
}
# assert_row MEASURE TOOL: the row exists, its figure is a number and its
# target was verified equal to the source.
assert_row() {
    local fig v
    fig=$(figure_of "$1" "$2")
    v=$(verified_of "$1" "$2")
    echo "$1, $2: figure \"$fig\", verified \"$v\""
    [[ $fig =~ ^[0-9]+(\.[0-9]+)?$ ]] || return 1
    [ "$v" = ok ]
}

@test "bench: copy, backlog and smalltx rows for every tool (pgcopydb 0.18, native binary and text, the floor), every target verified ok" {
    "$PGCOPYDB_018" --version 2>/dev/null | grep -q '^pgcopydb version 0.18$' ||
        skip "pgcopydb 0.18 cannot be built (scripts/install-deps bench failed): the peers cannot be measured"
    [ -x "$LM_ROOT/bin/lm-decode/lm-decode" ] && [ -x "$LM_ROOT/bin/lm-apply/lm-apply" ] ||
        skip "lm programs not built (run make)"
    run timeout 400 "$LM_ROOT/scripts/bench" --scale 1 --changes 1000 \
        --only copy,backlog,smalltx --workdir "$BENCH_DIR"
    echo "$output" | tail -60
    assert_success
    [ -s "$BENCH_DIR/results.md" ]
    grep -q '^| Measure | Tool | Figure .*| Verified |$' "$BENCH_DIR/results.md"
    # the pgcopydb measured is the vendored 0.18, and the header says so
    grep -qF "pgcopydb 0.18 ($PGCOPYDB_018)" "$BENCH_DIR/results.md"
    local split tool m
    # the clone splits its tables larger than the largest one over --jobs
    split=$(grep -o 'pgcopydb clone --split-tables-larger-than [0-9]*MB' "$BENCH_DIR/results.md" | head -1)
    [ -n "$split" ]
    for tool in "pg_dump -Fc / pg_restore" "pg_dump -Fd -j / pg_restore -j" "$split" "lm-slot + lm-snapshot"; do
        for m in "copy: wall s" "copy: server CPU s"; do
            assert_row "$m" "$tool"
        done
    done
    for tool in "native (binary)" "native (text)" "pgcopydb follow" "lm-decode + lm-apply (pipe)" "lm-decode + lm-apply (spool)"; do
        for m in "backlog: catch-up s" "backlog: changes/s" "backlog: server CPU s"; do
            assert_row "$m" "$tool"
        done
    done
    for tool in "native (binary)" "native (text)" "lm-decode + lm-apply (pipe)" "lm-decode + lm-apply (spool)" "pg_recvlogical to a file (floor)"; do
        for m in "smalltx: catch-up s" "smalltx: changes/s" "smalltx: server CPU s"; do
            assert_row "$m" "$tool"
        done
    done
    # 1000 changes: 200 transactions of an UPDATE and an INSERT
    grep -q '^Small transactions (smalltx): 200 transactions of one UPDATE and one INSERT (400 changes)' "$BENCH_DIR/results.md"
    # lm is compared with the best peer, not with the floor, and with the floor too
    run grep -E '^\| smalltx: catch-up s \| lm-decode \+ lm-apply \(pipe\) \| [0-9.]+ \| - \| [0-9.]+x of native \((binary|text)\); [0-9.]+x of the floor \| ok \|$' "$BENCH_DIR/results.md"
    assert_success
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
