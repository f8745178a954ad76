#!/usr/bin/env bats
# lm-cat: options, each output mode and the filters, on streams written by
# lm-testgen (one transaction committed at 0/1000100 on table public.t).
# No PostgreSQL needed.

bats_require_minimum_version 1.5.0
load helpers
# with SANITIZE=1, leaks are errors here (make check turns them off for the
# one-shot programs of the other suites)
if [ "${SANITIZE:-0}" = 1 ]; then export ASAN_OPTIONS=detect_leaks=1; fi

setup() {
    T=$BATS_TEST_TMPDIR
    lm-testgen --big 10 >"$T/s.lm"
}

# the one test with a cluster starts it itself
teardown_file() {
    pg_stop_all
}

# ------------------------------------------------------------ options

@test "lm-cat: --help prints usage with every option on stdout, exit 0" {
    program_help_ok lm-cat
    assert_line --index 0 --partial "lm-cat shows what is inside an lm change stream"
    for opt in --json --stats --verify --table= --from= --to= --quiet --version --help; do
        assert_output --partial -- "$opt"
    done
    run -0 lm-cat -'?'
    assert_output --partial Usage:
    # after other options too
    run -0 lm-cat --quiet --help
    assert_output --partial Usage:
}

@test "lm-cat: --version prints the version, exit 0" {
    program_version_ok lm-cat
    run -0 lm-cat -V
    assert_output --regexp '^lm-cat \(lm\) '
}

@test "lm-cat: a bad option is a usage error (exit 2) with a hint" {
    program_options_handling_ok lm-cat
}

@test "lm-cat: conflicting modes and bad LSNs are usage errors (exit 2)" {
    run --separate-stderr lm-cat --json --stats "$T/s.lm"
    assert_failure 2
    [[ "$stderr" == *"cannot be combined"* && "$stderr" == *Try* ]]
    run --separate-stderr lm-cat --from nonsense "$T/s.lm"
    assert_failure 2
    [[ "$stderr" == *'--from'* && "$stderr" == *Try* ]]
    run --separate-stderr lm-cat --from 0/2 --to 0/1 "$T/s.lm"
    assert_failure 2
    [[ "$stderr" == *"--from must not be after --to"* ]]
    run --separate-stderr lm-cat --table
    assert_failure 2
}

@test "lm-cat: a missing file is an I/O error (exit 9)" {
    run --separate-stderr lm-cat "$T/nonexistent"
    assert_failure 9
    [[ "$stderr" == *"could not open"*nonexistent* ]]
}

# ------------------------------------------------------------ output modes

@test "lm-cat: text mode prints one line per record" {
    run --separate-stderr lm-cat "$T/s.lm"
    assert_success
    [ -z "$stderr" ]
    [ "${#lines[@]}" -eq 19 ]
    assert_line --index 0 --regexp '^header version 1 system 7000000000000000001 timeline 1 server 150020 database "db" slot "lm_test" publication "pub" encoding UTF8 producer "lm-testgen" start 0/16B3748 '
    assert_line 'relation 16384 public.t (replica identity d): id[23](key) name[25] data[17] note "quoted"[1043]'
    assert_line 'begin 0/1000100 xid 742 at 2025-11-21 00:26:40.000000+00'
    assert_line "insert public.t: id[23]:'1' name[25]:'grüß dich' data[17]:\\x0001ff note \"quoted\"[1043]:null"
    assert_line "insert public.t: id[23]:'2' name[25]:'' data[17]:\\x0001ff note \"quoted\"[1043]:'abcdefghij'"
    assert_line "update public.t: old-key: id[23]:'1' name[25]:null data[17]:null note \"quoted\"[1043]:null new: id[23]:'10' name[25]:'it''s' data[17]:unchanged-toast-datum note \"quoted\"[1043]:unchanged-toast-datum"
    assert_line 'truncate public.t (relid 16385) cascade restart_identity'
    assert_line 'commit 0/1000100 end 0/1000130 at 2025-11-21 00:26:40.000000+00'
    assert_line 'end endpos at 0/1000200'
}

@test "lm-cat: --json prints one valid JSON object per record with type and offset" {
    run --separate-stderr lm-cat --json "$T/s.lm"
    assert_success
    [ "${#lines[@]}" -eq 19 ]
    # every line parses alone and has a type and a growing offset
    run jq -sc 'map(.type | type == "string") | all' <<<"$output"
    assert_output true
    run jq -s '[.[].offset] | . == (sort) and (unique | length) == length' < <(lm-cat --json "$T/s.lm")
    assert_output true
    run jq -c 'select(.type == "insert")' < <(lm-cat --json "$T/s.lm")
    assert_line --index 0 '{"type":"insert","offset":161,"table":"public.t","new":{"id":"1","name":"grüß dich","data":{"binary":"0001ff"},"note \"quoted\"":null}}'
}

@test "lm-cat: --stats counts records, transactions, and each table's operations" {
    run --separate-stderr lm-cat --stats "$T/s.lm"
    assert_success
    assert_line 'records:      19'
    assert_line 'transactions: 1'
    assert_line 'commits:      0/1000100 .. 0/1000100'
    assert_line --regexp '^insert +3 +[0-9]+$'
    assert_line --regexp '^update +1 +[0-9]+$'
    assert_line --regexp '^public\.t +3 +1 +1 +1 +[0-9]+$'
    # two transactions when the stream is read twice (a concatenation)
    lm-testgen --big 10 --end trailer >"$T/seg.lm"
    run --separate-stderr lm-cat --stats "$T/seg.lm" "$T/s.lm"
    assert_success
    assert_line 'transactions: 2'
    assert_line --regexp '^public\.t +6 +2 +2 +2 +[0-9]+$'
}

@test "lm-cat: --verify prints one success line, and fails without it on a broken stream" {
    run --separate-stderr lm-cat --verify "$T/s.lm"
    assert_success
    assert_output 'ok: 1 file, system 7000000000000000001, slot "lm_test", ends with end record: endpos'
    run --separate-stderr lm-cat --verify - <"$T/s.lm"
    assert_success
    assert_output --partial 'ok: 1 file'
    head -c 100 "$T/s.lm" >"$T/cut.lm"
    run --separate-stderr lm-cat --verify "$T/cut.lm"
    assert_failure 7
    assert_output ''
}

@test "lm-cat: -q keeps errors" {
    head -c 100 "$T/s.lm" >"$T/cut.lm"
    run --separate-stderr lm-cat -q --verify "$T/cut.lm"
    assert_failure 7
    [[ "$stderr" == *truncated* ]]
}

# ------------------------------------------------------------ filters

@test "lm-cat: --table shows only that table's changes, by schema.table or table" {
    for name in t public.t; do
        run --separate-stderr lm-cat --table "$name" "$T/s.lm"
        assert_success
        [ "${#lines[@]}" -eq 7 ]
        run -0 lm-cat --json --table "$name" "$T/s.lm"
        run jq -r .type <<<"$output"
        assert_output "$(printf '%s\n' relation insert insert insert update delete truncate)"
    done
    # no such table: nothing shown, still a good stream
    run --separate-stderr lm-cat --table other "$T/s.lm"
    assert_success
    assert_output ''
    # repeated: either table
    run -0 lm-cat -t other -t public.t "$T/s.lm"
    [ "${#lines[@]}" -eq 7 ]
    # --stats counts only the chosen tables
    run -0 lm-cat --stats --table other "$T/s.lm"
    refute_output --partial public.t
}

@test "lm-cat: --from and --to select transactions by commit LSN, bounds included" {
    n_all=$(lm-cat "$T/s.lm" | wc -l)
    for range in "--from 0/1000100" "--to 0/1000200" "--from 0/1000100 --to 0/1000200" "--from 0/0"; do
        # shellcheck disable=SC2086
        run -0 lm-cat $range "$T/s.lm"
        [ "${#lines[@]}" -eq "$n_all" ] || { echo "$range: ${#lines[@]} lines"; false; }
    done
    for range in "--from 0/1000101" "--to 0/10000FF"; do
        # shellcheck disable=SC2086
        run --separate-stderr lm-cat --json $range "$T/s.lm"
        assert_success
        run jq -r .type <<<"$output"
        refute_line begin
        refute_line insert
        refute_line commit
        refute_line truncate
        refute_line message
        refute_line origin
        assert_line header
        assert_line end
    done
    # position records are filtered by their own LSN (0/1000200)
    run -0 lm-cat --json --from 0/1000101 "$T/s.lm"
    assert_output --partial '"type":"position"'
    run -0 lm-cat --json --to 0/1000100 "$T/s.lm"
    refute_output --partial '"type":"position"'
}

@test "lm-cat: --stats with --from or --to counts no change outside the range" {
    run --separate-stderr lm-cat --stats --from 0/1000101 "$T/s.lm"
    assert_success
    assert_line 'transactions: 0'
    refute_output --partial public.t
    refute_line --regexp '^(insert|update|delete|truncate|commit|begin|message) '
    run -0 lm-cat --stats --to 0/1000100 "$T/s.lm"
    assert_line --regexp '^public\.t +3 +1 +1 +1 +[0-9]+$'
}

# ------------------------------------------------------------ inputs

@test "lm-cat: reads standard input, '-' and several files as one stream" {
    lm-cat "$T/s.lm" >"$T/expected"
    run -0 lm-cat <"$T/s.lm"
    assert_output "$(cat "$T/expected")"
    lm-testgen --big 10 --end trailer >"$T/seg.lm"
    run --separate-stderr lm-cat "$T/seg.lm" - <"$T/s.lm"
    assert_success
    [ "${#lines[@]}" -eq 38 ]
    assert_line --index 18 --partial trailer
    assert_line --index 37 'end endpos at 0/1000200'
}

@test "lm-cat: exit statuses of broken streams: 6 corrupt, 7 truncated, 8 mismatch" {
    printf 'garbage garbage garbage' >"$T/g"
    run -6 lm-cat "$T/g"
    head -c 50 "$T/s.lm" >"$T/cut.lm"
    run -7 lm-cat "$T/cut.lm"
    lm-testgen --big 10 --format-version 9 >"$T/v9.lm"
    run -8 lm-cat "$T/v9.lm"
}

# ------------------------------------------------------------ escaping

# raw control bytes (but the newline ending each line) or DEL in a file
raw_controls() { LC_ALL=C grep -c -P '[\x00-\x09\x0b-\x1f\x7f]' "$1"; }

@test "lm-cat: control characters and bytes that are not UTF-8, in names and values, are escaped in text, --stats and errors; --json stays valid and round-trips" {
    pg_start esc
    # SQL_ASCII: the server takes any bytes, as a source database of that
    # encoding may hold
    q esc -c "CREATE DATABASE esc ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    local conn="host=127.0.0.1 port=$ESC_PORT dbname=esc user=postgres"
    local name=$'ev\e[2Jil\n\tname' col=$'c\e]0;x\a'
    PGDATABASE_TEST=esc q esc -v name="$name" -v col="$col" <<'SQL'
CREATE TABLE public.:"name" (id int PRIMARY KEY, :"col" text, w text);
CREATE PUBLICATION p FOR ALL TABLES;
SELECT 1 FROM pg_create_logical_replication_slot('s', 'pgoutput');
INSERT INTO public.:"name" VALUES (1, E'a\x1b[31mred\x7f', E'back\\slash ''q'' \xff\xfe end'),
    (2, E'tab\there\nnl\r', E'\xc2\x9b C1 and ü');
SQL
    lm-decode --source "$conn" --slot s --publication p \
        --endpos "$(PGDATABASE_TEST=esc q esc -c "SELECT pg_current_wal_lsn()")" >"$T/e.lm"

    # text: no raw control byte, valid UTF-8, the escaped forms shown
    lm-cat "$T/e.lm" >"$T/e.txt"
    cat -v "$T/e.txt"
    [ "$(raw_controls "$T/e.txt")" = 0 ]
    iconv -f UTF-8 -t UTF-8 "$T/e.txt" >/dev/null
    [ "$(wc -l <"$T/e.txt")" = "$(lm-cat --json "$T/e.lm" | wc -l)" ]
    grep -qF 'relation ' "$T/e.txt"
    grep -qF ' public.ev\x1b[2Jil\n\tname (replica identity d): id[23](key) c\x1b]0;x\x07[25] w[25]' "$T/e.txt"
    grep -qF "insert public.ev\\x1b[2Jil\\n\\tname: id[23]:'1' c\\x1b]0;x\\x07[25]:'a\\x1b[31mred\\x7f' w[25]:'back\\\\slash ''q'' \\xff\\xfe end'" "$T/e.txt"
    grep -qF "id[23]:'2' c\\x1b]0;x\\x07[25]:'tab\\there\\nnl\\r' w[25]:'\\u009b C1 and ü'" "$T/e.txt"

    # --stats: the table's name escaped too
    lm-cat --stats "$T/e.lm" >"$T/e.stats"
    [ "$(raw_controls "$T/e.stats")" = 0 ]
    grep -qE '^public\.ev\\x1b\[2Jil\\n\\tname +2 ' "$T/e.stats"

    # an error naming a file whose name has control characters
    local bad=$T/$'cut\e[2J\n.lm'
    head -c 100 "$T/e.lm" >"$bad"
    run --separate-stderr lm-cat "$bad"
    [ "$status" -eq 7 ]
    printf '%s' "$stderr" >"$T/e.err"
    [ "$(raw_controls "$T/e.err")" = 0 ]
    [ "$(wc -l <"$T/e.err")" -le 1 ]
    [[ $stderr == *'cut\x1b[2J\n.lm'* ]]
    run --separate-stderr lm-cat "$T/"$'no\e[2Jsuch'
    [ "$status" -eq 9 ]
    [[ $stderr == *'no\x1b[2Jsuch'* && $stderr != *$'\e'* ]]

    # --json: parses, no raw control byte, valid UTF-8; names and values
    # round-trip; a byte that is not UTF-8 is U+FFFD
    lm-cat --json "$T/e.lm" >"$T/e.json"
    jq -e . "$T/e.json" >/dev/null
    [ "$(raw_controls "$T/e.json")" = 0 ]
    iconv -f UTF-8 -t UTF-8 "$T/e.json" >/dev/null
    jq -e -s --arg n "$name" 'map(select(.type == "relation")) | .[0].table == $n' "$T/e.json"
    jq -e -s --arg n "public.$name" --arg c "$col" \
        'map(select(.type == "insert" and .new.id == "1")) | .[0] | .table == $n and .new[$c] == "a\u001b[31mred\u007f"' "$T/e.json"
    jq -e -s --arg c "$col" 'map(select(.type == "insert" and .new.id == "2")) | .[0].new | .[$c] == "tab\there\nnl\r" and .w == "\u009b C1 and ü"' "$T/e.json"
    jq -e -s 'map(select(.type == "insert" and .new.id == "1")) | .[0].new.w == "back\\slash '"'q'"' \ufffd\ufffd end"' "$T/e.json"
    pg_stop esc
}

# (its EXIT STATUS: tests/constants.bats)
@test "lm-cat: the man page documents every option of --help" {
    page=$(cat "$LM_ROOT/man/lm-cat.1")
    for opt in $(lm-cat --help | grep -o -- '--[a-z]\+' | sort -u); do
        [[ "$page" == *"\\-\\-${opt#--}"* ]] || { echo "man page lacks $opt"; false; }
    done
}
