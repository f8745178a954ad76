#!/usr/bin/env bats
# lm-migrate status --watch and --prometheus on one real migration: a small
# database migrated once in setup_file (left streaming, into a work
# directory whose name holds a double quote, a backslash and a newline),
# watched and scraped by every test; the last test aborts it, and the
# watch of it ends by itself.

load helpers
load migrate_helpers   # teardown_file, lmm, ...
bats_require_minimum_version 1.5.0

# the rows of the three tables (ANALYZEd: the source's estimate is exact)
ROWS_A=3000 ROWS_B=200 ROWS_C=5

setup_file() {
    migrate_clusters
    q source -c "CREATE DATABASE s_st"
    q target -c "CREATE DATABASE t_st"
    PGDATABASE_TEST=s_st q source \
        -c "CREATE TABLE a (id int PRIMARY KEY, v text)" \
        -c "INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, $ROWS_A) g" \
        -c "CREATE TABLE b (id int PRIMARY KEY, v text)" \
        -c "INSERT INTO b SELECT g, 'x' FROM generate_series(1, $ROWS_B) g" \
        -c "CREATE TABLE c (id int PRIMARY KEY)" \
        -c "INSERT INTO c SELECT generate_series(1, $ROWS_C)" \
        -c "ANALYZE"
    MIG_W=$BATS_FILE_TMPDIR/$'work "q" \\b\nn'
    export MIG_W
    lm-migrate start --workdir "$MIG_W" --jobs 2 \
        --source "host=127.0.0.1 port=$SOURCE_PORT dbname=s_st user=postgres" \
        --target "host=127.0.0.1 port=$TARGET_PORT dbname=t_st user=postgres" \
        >"$BATS_FILE_TMPDIR/start.log" 2>&1 || { cat "$BATS_FILE_TMPDIR/start.log" >&3; return 1; }
}

teardown_file() {
    [ -f "$MIG_W/config" ] && lm-migrate abort --workdir "$MIG_W" >/dev/null 2>&1
    pg_stop_all
}

setup() {
    pg_env
    W=$MIG_W
    T=$BATS_TEST_TMPDIR
}

# the value of a sample: prom_value OUTPUT 'name{labels}'
prom_value() { awk -v k="$2" '$1 == k { print $2; n++ } END { exit n != 1 }' <<<"$1"; }

# OUTPUT is in the text exposition format: every line a HELP, a TYPE or a
# sample of a metric named lm_migrate_* whose HELP and TYPE came first
# (once each), counters named *_total, label values escaped
prom_grammar_ok() {
    local line name type
    local lv='"([^"\\]|\\[\\"n])*"'
    local labels="\\{[a-zA-Z_][a-zA-Z0-9_]*=$lv(,[a-zA-Z_][a-zA-Z0-9_]*=$lv)*\\}"
    local sample="^(lm_migrate_[a-z0-9_]+)($labels)? -?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$"
    local -A help=() types=()
    while IFS= read -r line; do
        if [[ $line =~ ^#\ HELP\ (lm_migrate_[a-z0-9_]+)\ [^[:cntrl:]]+$ ]]; then
            name=${BASH_REMATCH[1]}
            [ -z "${help[$name]:-}" ] || { echo "HELP twice: $line"; return 1; }
            help[$name]=1
        elif [[ $line =~ ^#\ TYPE\ (lm_migrate_[a-z0-9_]+)\ (counter|gauge)$ ]]; then
            name=${BASH_REMATCH[1]} type=${BASH_REMATCH[2]}
            [ -z "${types[$name]:-}" ] || { echo "TYPE twice: $line"; return 1; }
            [ -n "${help[$name]:-}" ] || { echo "TYPE before HELP: $line"; return 1; }
            [[ $type != counter || $name == *_total ]] || { echo "a counter not named _total: $line"; return 1; }
            [[ $name != *_total || $type == counter ]] || { echo "_total not a counter: $line"; return 1; }
            types[$name]=$type
        elif [[ $line =~ $sample ]]; then
            name=${BASH_REMATCH[1]}
            [ -n "${types[$name]:-}" ] || { echo "no TYPE before: $line"; return 1; }
        else
            echo "not in the exposition format: $(printf '%q' "$line")"
            return 1
        fi
    done <<<"$1"
}

@test "migrate-status: bad --watch SECONDS and bad combinations are usage errors (exit 2), before anything is read" {
    local s
    for s in 0 0.0 -1 abc 1e3 '' 86401 1.2.3 ' 2'; do
        run -2 lm-migrate status --workdir "$W" --watch="$s"
        assert_output --partial "invalid --watch \"$s\": SECONDS must be a number above 0"
    done
    run -2 lm-migrate status --workdir "$W" --watch abc
    assert_output --partial 'invalid --watch "abc"'
    run -2 lm-migrate status --workdir "$W" --prometheus --json
    assert_output --partial "--prometheus cannot be combined"
    run -2 lm-migrate status --workdir "$W" --watch --prometheus
    assert_output --partial "--prometheus cannot be combined"
    run -2 lm-migrate cutover --workdir "$W" --watch 1
    assert_output --partial 'option --watch is not valid for "cutover"'
    run -2 lm-migrate verify --workdir "$W" --prometheus
    assert_output --partial 'option --prometheus is not valid for "verify"'
    # the command word after --watch is not its SECONDS
    run -2 lm-migrate --watch status --workdir "$BATS_TEST_TMPDIR/none"
    assert_output --partial "no migration"
}

@test "migrate-status: --prometheus is in the exposition format, its figures those of --json, the work directory's name escaped in a label" {
    local out j1 j2 i lag
    # the source's WAL may move between two commands (idle WAL, until the
    # next keepalive reaches the target): the figures of a --prometheus
    # between two --json that agree with it (a --prometheus that computes
    # the lag otherwise never agrees, and the assertion below fails)
    for i in 1 2 3 4 5 6 7 8; do
        j1=$(lm-migrate status --workdir "$W" --json)
        run -0 --separate-stderr lm-migrate status --workdir "$W" --prometheus
        j2=$(lm-migrate status --workdir "$W" --json)
        [ "$(jq .lag_bytes <<<"$j1")" = "$(jq .lag_bytes <<<"$j2")" ] &&
            [ "$(prom_value "$output" lm_migrate_lag_bytes)" = "$(jq .lag_bytes <<<"$j1")" ] && break
        sleep 1
    done
    out=$output
    assert_equal "$stderr" ""
    prom_grammar_ok "$out"
    # the values
    lag=$(jq -r .lag_bytes <<<"$j1")
    [[ $lag =~ ^[0-9]+$ ]]
    assert_equal "$(prom_value "$out" lm_migrate_lag_bytes)" "$lag"
    assert_equal "$(prom_value "$out" 'lm_migrate_phase{phase="streaming"}')" 1
    assert_equal "$(jq -r .phase <<<"$j1")" streaming
    assert_equal "$(grep -c '^lm_migrate_phase{' <<<"$out")" 8
    assert_equal "$(grep -c '^lm_migrate_phase{.*} 1$' <<<"$out")" 1
    assert_equal "$(prom_value "$out" lm_migrate_copy_tables)" 3
    assert_equal "$(prom_value "$out" lm_migrate_copy_tables_done)" 3
    assert_equal "$(jq -c '[.copy.tables_total, .copy.tables_done]' <<<"$j1")" "[3,3]"
    assert_equal "$(prom_value "$out" lm_migrate_copy_rows_total)" $((ROWS_A + ROWS_B + ROWS_C))
    assert_equal "$(prom_value "$out" lm_migrate_copy_estimated_rows)" $((ROWS_A + ROWS_B + ROWS_C))
    assert_equal "$(prom_value "$out" lm_migrate_copy_bytes_total)" "$(jq .copy.bytes <<<"$j1")"
    assert_equal "$(prom_value "$out" lm_migrate_copy_estimated_bytes)" "$(jq .copy.bytes_estimate <<<"$j1")"
    assert_equal "$(prom_value "$out" lm_migrate_copy_estimated_bytes)" \
        "$(PGDATABASE_TEST=s_st q source -c "SELECT sum(pg_relation_size(c)) FROM unnest('{a,b,c}'::regclass[]) c")"
    assert_equal "$(prom_value "$out" lm_migrate_caught_up)" "$(jq -r 'if .caught_up then 1 else 0 end' <<<"$j1")"
    assert_equal "$(prom_value "$out" lm_migrate_spool_bytes)" "$(jq .spool_bytes <<<"$j1")"
    assert_equal "$(prom_value "$out" 'lm_migrate_stage_running{stage="decode"}')" 1
    assert_equal "$(prom_value "$out" 'lm_migrate_stage_running{stage="apply"}')" 1
    assert_equal "$(prom_value "$out" 'lm_migrate_slot_wal_status{wal_status="reserved"}')" 1
    assert_equal "$(prom_value "$out" lm_migrate_slot_active)" 1
    assert_equal "$(prom_value "$out" lm_migrate_attention_items)" 0
    # the WAL positions as numbers: the source's that of --json's source_lsn
    local lsn hi lo
    lsn=$(jq -r .source_lsn <<<"$j1")
    hi=${lsn%/*} lo=${lsn#*/}
    assert_equal "$(prom_value "$out" lm_migrate_source_wal_position_bytes)" $(((16#$hi << 32) + 16#$lo))
    # the work directory's name ("q", a backslash, a newline) escaped in
    # the label; unescaped it is the name
    local slot
    slot=$(jq -r .slot <<<"$j1")
    [[ $slot =~ ^lm_ ]]
    local wesc=${W//\\/\\\\}
    wesc=${wesc//\"/\\\"}
    wesc=${wesc//$'\n'/\\n}
    assert_line "lm_migrate_info{slot=\"$slot\",workdir=\"$wesc\",target_schema=\"restore\"} 1"
    [[ $out == *'\"q\" \\b\nn"'* ]]
    # a warning: less free space than LM_LOW_DISK_BYTES asks for
    LM_LOW_DISK_BYTES=999999999999999999 run -0 lm-migrate status --workdir "$W" --prometheus
    assert_equal "$(prom_value "$output" lm_migrate_warnings)" 1
    # df's figure, give or take what others wrote since (1%)
    local free df
    free=$(prom_value "$output" lm_migrate_workdir_free_bytes)
    df=$(df -P -B1 -- "$W" | awk 'NR == 2 { print $4 }')
    awk -v a="$free" -v b="$df" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= b / 100) }' ||
        { echo "free $free, df $df"; false; }
    LM_LOW_DISK_BYTES=999999999999999999 run -0 lm-migrate status --workdir "$W" --json
    assert_equal "$(jq -r '.warnings | length' <<<"$output")" 1
    [[ $(jq -r '.warnings[0]' <<<"$output") == "only "*" free on the work directory's filesystem ($W)" ]]
}

# watch_start FILE ARG...: lm-migrate status --watch ARG... in the
# background, its output in FILE, its errors in FILE.err; WPID, WSTART
watch_start() {
    local f=$1
    shift
    WSTART=$(date +%s.%N)
    lm-migrate status --workdir "$W" "$@" >"$f" 2>"$f.err" </dev/null &
    WPID=$!
}

# count_at_least N FILE REGEX: FILE has at least N lines matching REGEX
count_at_least() { [ "$(grep -ac -- "$3" "$2")" -ge "$1" ]; }

# watch_stop SIGNAL: the watch sent SIGNAL; it must end with status 0;
# WSECS: how long it ran
watch_stop() {
    local rc=0
    kill "-$1" "$WPID"
    wait_pid "$WPID" 30 "status --watch" || rc=$?
    WSECS=$(awk -v a="$WSTART" -v b="$(date +%s.%N)" 'BEGIN { printf "%d", b - a + 1 }')
    assert_equal "$rc" 0
}

@test "migrate-status: --watch on a pipe prints a plain block an interval, a blank line between; SIGTERM ends it with status 0 and nothing else" {
    local n out=$T/watch.out
    watch_start "$out" --watch 1
    wait_for 60 count_at_least 3 "$out" '^phase:'
    watch_stop TERM
    assert_equal "$(cat "$out.err")" ""
    run -0 cat "$out"
    # no terminal escape at all
    [[ $output != *$'\e'* ]]
    n=$(grep -c '^phase:      streaming' <<<"$output")
    # one block an interval at most (gathering may take longer than one)
    [ "$n" -ge 3 ] && [ "$n" -le $((WSECS + 1)) ] || { echo "$n blocks in $WSECS s"; false; }
    # blocks apart by one blank line, each opening with its time
    assert_equal "$(grep -c '^$' <<<"$output")" $((n - 1))
    assert_equal "$(grep -c '^lm-migrate: .*, every 1s   [0-9-]* [0-9:]* UTC$' <<<"$output")" "$n"
    assert_equal "$(grep -c '^tables:     \[##############################\] 100% 3/3 copied$' <<<"$output")" "$n"
    local rows=$((ROWS_A + ROWS_B + ROWS_C))
    assert_equal "$(grep -c "^rows:       \[#*\] 100% $rows of ~$rows (source estimate)$" <<<"$output")" "$n"
    assert_equal "$(grep -c "^stages:     decode=running snapshot=stopped apply=running$" <<<"$output")" "$n"
    assert_equal "$(grep -c "^slot:       lm_[0-9a-f]* (wal_status reserved, active, retains [0-9.]* [KMG]*B of WAL)$" <<<"$output")" "$n"
    # the rates are measured once a sample is 2 s old
    assert_line --regexp '^rates:      apply [0-9.]+ [KMG]?B/s, source writes [0-9.]+ [KMG]?B/s \(WAL\)$'
    # the default interval: 2 s
    watch_start "$out" --watch
    wait_for 60 count_at_least 1 "$out" '^phase:'
    watch_stop TERM
    run -0 cat "$out"
    assert_line --index 0 --regexp '^lm-migrate: .*, every 2s   '
}

@test "migrate-status: --watch on a terminal redraws in place (cursor home, lines cleared to their end), hides the cursor and shows it again on Ctrl-C, status 0" {
    local out=$T/pty.out
    # script(1) gives it a terminal; Ctrl-C sends SIGINT to the terminal's
    # foreground process group (lm-migrate and what it runs at the time)
    # (through the environment: script runs it with $SHELL -c; SIGINT
    # back to its default: a command started with & ignores it)
    # shellcheck disable=SC2016
    PIDF=$T/pid WD=$W env --default-signal=INT script -qec 'stty cols 200 rows 40; echo $$ >"$PIDF"; exec lm-migrate status --workdir "$WD" --watch 1' \
        /dev/null </dev/null >"$out" 2>&1 &
    local spid=$! rc=0
    wait_for 10 test -s "$T/pid"
    wait_for 60 count_at_least 3 "$out" '^phase:      streaming'
    kill -INT -- "-$(cat "$T/pid")"
    wait_pid "$spid" 30 script || rc=$?
    assert_equal "$rc" 0
    run -0 cat -v "$out"
    # the screen cleared once; then each frame from the cursor's home,
    # each line cleared to its end, and the rest of the screen below it
    assert_equal "$(grep -o '\^\[\[2J' <<<"$output" | wc -l)" 1
    local frames
    frames=$(grep -o '\^\[\[J' <<<"$output" | wc -l)
    [ "$frames" -ge 3 ]
    assert_equal "$(grep -o '\^\[\[H' <<<"$output" | wc -l)" $((frames + 1))
    assert_equal "$(grep -c '^phase:      streaming (caught up)^\[\[K' <<<"$output")" "$frames"
    assert_equal "$(grep -c '^tables:     \[#*\] 100% 3/3 copied^\[\[K' <<<"$output")" "$frames"
    # the cursor hidden first, shown again at the end, after which nothing
    [[ $output == '^[[?25l^[[H^[[2J^[[H'* ]]
    [[ $output == *'^[[?25h' ]]
}

@test "migrate-status: --watch --json prints one JSON object a line (NDJSON), an interval apart" {
    local out=$T/watch.out line t prev=0 n
    watch_start "$out" --watch 1 --json
    wait_for 60 count_at_least 2 "$out" '^{.*}$'
    watch_stop TERM
    assert_equal "$(cat "$out.err")" ""
    n=$(wc -l <"$out")
    [ "$n" -ge 2 ] && [ "$n" -le $((WSECS + 1)) ] || { echo "$n lines in $WSECS s"; false; }
    while IFS= read -r line; do
        # each line one object, on that line alone
        assert_equal "$(jq -c 'select(type == "object") | [.phase, .copy.tables_total, .copy.tables_done, .copy.rows_estimate]' <<<"$line")" \
            "[\"streaming\",3,3,$((ROWS_A + ROWS_B + ROWS_C))]"
        t=$(jq .time <<<"$line")
        [ "$t" -ge "$prev" ]
        prev=$t
    done <"$out"
}

@test "migrate-status: --watch ends by itself, status 0, with the final status when the migration is aborted (runs last: it ends the migration)" {
    local out=$T/watch.out rc=0
    watch_start "$out" --watch 1
    wait_for 60 count_at_least 1 "$out" '^phase:      streaming'
    run -0 lm-migrate abort --workdir "$W"
    wait_pid "$WPID" 60 "status --watch" || rc=$?
    assert_equal "$rc" 0
    assert_equal "$(cat "$out.err")" ""
    # its last block: the phase aborted
    run -0 awk 'BEGIN { RS = "" } { last = $0 } END { print last }' "$out"
    assert_line 'phase:      aborted'
    assert_line 'stages:     decode=stopped snapshot=stopped apply=stopped'
}
