#!/usr/bin/env bats
# lm-decode against a real source: every change kind reaches the stream,
# spool segments rotate, verify alone and survive kill -9 with every commit
# exactly once, the slot is never acknowledged past what is durable, pipe
# mode acknowledges only what the ack channel reports, the endings, the
# reconnects, quiet publications, memory on a huge transaction, and the
# command line with its exit codes.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
    # set the cluster root here, not in pg_start's command substitution (a
    # subshell), so that pg_restart and pg_stop_all find it
    lm_cluster_root >/dev/null
    pg_start src "wal_sender_timeout = 20s"
}

teardown_file() {
    pg_stop_all
}

setup() {
    pg_env
    T=$BATS_TEST_TMPDIR
}

teardown() {
    [ -z "${LM_TIMING:-}" ] || echo "# ${SECONDS}s: $BATS_TEST_DESCRIPTION" >&3
    # a failed test must not leave a decoder or writer behind
    local p
    for p in ${DEC_PID:-} ${WRITER:-}; do
        kill -9 "$p" 2>/dev/null || true
    done
    return 0
}

# ------------------------------------------------------------------ helpers

curlsn() { q src -c "SELECT pg_current_wal_insert_lsn()"; }
confirmed() { q src -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$1'"; }
# lsn_le A B (A <= B) and lsn_lt: tests/helpers.bash
confirmed_ge() { lsn_le "$2" "$(confirmed "$1")"; }

# mkslot NAME "publication body": a publication and a pgoutput slot named NAME
mkslot() {
    q src -c "CREATE PUBLICATION $1 FOR $2"
    q src -c "SELECT 1 FROM pg_create_logical_replication_slot('$1', 'pgoutput')" >/dev/null
}

# dec_start ARGS...: lm-decode in the background on slot/publication $SLOT;
# DEC_PID is lm-decode itself, DEC_WRAP the job to wait for (same exit code);
# stderr goes to $T/dec.err.
dec_start() {
    rm -f "$T/dec.pid"
    bg_start DEC_WRAP bash -c 'echo $$ >"$0"; exec lm-decode "$@" 2>>"${0%.pid}.err"' \
        "$T/dec.pid" --source "$SRC_CONN" --slot "$SLOT" --publication "$SLOT" "$@"
    wait_for 10 test -s "$T/dec.pid"
    DEC_PID=$(cat "$T/dec.pid")
}

# dec_wait: wait for the background decoder (at most 60 s); sets DEC_RC
dec_wait() {
    local i
    for i in $(seq 1 300); do
        kill -0 "$DEC_PID" 2>/dev/null || break
        sleep 0.2
    done
    DEC_RC=0
    wait_pid "$DEC_WRAP" 10 "lm-decode (dec_start), seen ended" || DEC_RC=$?
    DEC_PID=
}

# the slot's walsender is streaming
slot_active() { [ "$(q src -c "SELECT active FROM pg_replication_slots WHERE slot_name = '$SLOT'")" = t ]; }

# writer_start TABLE FIRST N ROWS [PAUSE]: N transactions of ROWS rows each,
# ids from FIRST on, in one session, PAUSE seconds (default 0.01) apart
writer_start() {
    local i a
    for i in $(seq 0 $(($3 - 1))); do
        a=$(($2 + i * $4))
        echo "INSERT INTO $1 SELECT g, md5(g::text) FROM generate_series($a, $((a + $4 - 1))) g;"
        echo "SELECT pg_sleep(${5:-0.01});"
    done >"$T/writer.sql"
    bg_start WRITER psql -X -q -o /dev/null -h 127.0.0.1 -p "$SRC_PORT" -U postgres -d postgres -f "$T/writer.sql"
}

# writer_start_each: the same, one psql per transaction (a restart of the
# source fails only the transactions it hits)
writer_start_each() {
    bg_start WRITER bash -c '
        t=$0 first=$1 n=$2 rows=$3 port=$4
        for i in $(seq 0 $((n - 1))); do
            a=$((first + i * rows))
            psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
                -c "INSERT INTO $t SELECT g, md5(g::text) FROM generate_series($a, $((a + rows - 1))) g" \
                >/dev/null 2>&1 || sleep 0.3
            sleep 0.02
        done' "$@" "$SRC_PORT"
}

writer_wait() { wait_pid "$WRITER" 120 "the writer (psql) to finish its transactions" || true; WRITER=; }

# make_token FILE: a random marker token, mode 0600 (as lm-migrate start)
make_token() { (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$1"); }
# marker_for FILE ID: the cutover marker content for ID under the token in FILE
marker_for() { printf 'cutover %s %s' "$2" "$(printf '%s' "$2" | lm-testgen --hmac "$(cat "$1")")"; }
# rehearsal_for FILE ID: a cutover rehearsal's marker (MAC over "rehearse ID")
rehearsal_for() { printf 'rehearse %s %s' "$2" "$(printf 'rehearse %s' "$2" | lm-testgen --hmac "$(cat "$1")")"; }

# json of every record of the given stream files (a growing one may end
# truncated: its complete records are still printed)
records() { lm-cat --json "$@" 2>/dev/null || true; }

# ids of committed inserts into TABLE, in stream order, one per line;
# inserts of a transaction abandoned at an end record are dropped
committed_ids() {
    jq -r --arg t "$1" '
        if .type == "insert" and .table == $t then "I " + .new.id
        elif .type == "commit" then "C"
        elif .type == "begin" or .type == "end" or .type == "header" then "X"
        else empty end' |
    awk '$1 == "I" { cur[n++] = $2; next }
         $1 == "C" { for (i = 0; i < n; i++) print cur[i] }
         { n = 0 }'
}

# every commit once: no commit_lsn twice
assert_commits_unique() {
    local all uniq
    all=$(jq -r 'select(.type == "commit") | .commit_lsn' "$1" | wc -l)
    uniq=$(jq -r 'select(.type == "commit") | .commit_lsn' "$1" | sort -u | wc -l)
    [ "$all" -gt 0 ]
    [ "$all" -eq "$uniq" ] || { echo "commits: $all, distinct: $uniq" >&2; return 1; }
}

# the stream holds every id of TABLE exactly once, and nothing else
assert_ids_match_table() {   # assert_ids_match_table JSONFILE TABLE
    committed_ids "public.$2" <"$1" | sort -n >"$T/ids.stream"
    q src -c "SELECT id FROM $2 ORDER BY id" >"$T/ids.table"
    [ -s "$T/ids.table" ]
    if ! cmp -s "$T/ids.stream" "$T/ids.table"; then
        echo "stream ids differ from table ids:" >&2
        diff "$T/ids.table" "$T/ids.stream" | head -20 >&2
        return 1
    fi
}

spool_finished() { ls "$1" | grep -E '^seg-[0-9A-F]{16}-[0-9A-F]{16}\.lmz$' | sort; }
# the END of a finished segment name as an LSN
seg_end() { local e=${1#seg-*-}; e=${e%.lmz}; printf '%X/%X' $((16#${e:0:8})) $((16#${e:8:8})); }
seg_start() { local s=${1#seg-}; s=${s:0:16}; printf '%X/%X' $((16#${s:0:8})) $((16#${s:8:8})); }

# the highest durable position a spool holds: finished segment ENDs and the
# complete transactions and positions of the partial
spool_high() {
    local d=$1 best=0/0 f l
    for f in $(spool_finished "$d"); do
        l=$(seg_end "$f")
        lsn_lt "$best" "$l" && best=$l
    done
    for f in "$d"/*.partial; do
        [ -f "$f" ] || continue
        l=$(records "$f" | jq -r 'select(.type == "commit") .end_lsn, select(.type == "position") .lsn' | tail -1)
        [ -n "$l" ] && lsn_lt "$best" "$l" && best=$l
    done
    echo "$best"
}

# ---------------------------------------------------------- command line

@test "lm-decode: --help on stdout with every option group, exit 0" {
    program_help_ok lm-decode
    for o in --source --slot --publication --start --endpos --output --spool --ack \
             --compress --segment-size --segment-time --status-interval --max-retries \
             --no-stop-at-marker --progress --verbose --version --help; do
        assert_output --partial -- "$o"
    done
}

@test "lm-decode: --version" {
    program_version_ok lm-decode
}

@test "lm-decode: bad options are usage errors (exit 2) with a hint, before connecting" {
    program_options_handling_ok lm-decode
    run -2 --separate-stderr lm-decode --source "host=192.0.2.1 connect_timeout=30" --publication p
    [[ $stderr == *"no slot given"* ]]
    # an invalid slot name is refused before connecting (the host does not exist)
    run -2 --separate-stderr lm-decode --source "host=192.0.2.1 connect_timeout=30" --slot "Bad-Name"
    [[ $stderr == *'invalid slot name "Bad-Name"'* ]]
    run -2 --separate-stderr lm-decode --slot s --endpos nonsense
    [[ $stderr == *"not an LSN"* ]]
    run -2 --separate-stderr lm-decode --slot s --spool "$T/sp" -o "$T/f"
    [[ $stderr == *"cannot be combined"* ]]
    run -2 --separate-stderr lm-decode --slot s --spool "$T/sp" --ack "$T/ack"
    [[ $stderr == *"--ack is for pipe mode"* ]]
    run -2 --separate-stderr lm-decode --slot s --segment-size 10
    [[ $stderr == *"--segment-size must be in range"* ]]
    run -2 --separate-stderr lm-decode --slot s extra
    [[ $stderr == *"too many arguments"* ]]
    run -2 --separate-stderr lm-decode --slot s --progress=loud
    [[ $stderr == *'invalid value "loud" for option --progress: use auto, always or never'* ]]
}

@test "lm-decode: a source that cannot be reached exits 3 without a password in the message" {
    local port
    port=$(free_port)
    run -3 --separate-stderr lm-decode --source "host=127.0.0.1 port=$port user=postgres password=sekrit dbname=postgres" --slot s
    [[ $stderr == *"$port"* ]]
    [[ $stderr != *sekrit* ]]
    rmdir "/tmp/lm-ports/$port" 2>/dev/null || true
}

@test "lm-decode: unknown slot, a test_decoding slot and a missing publication exit 4" {
    q src -c "CREATE TABLE IF NOT EXISTS cli_t (id int PRIMARY KEY)"
    run -4 --separate-stderr lm-decode --source "$SRC_CONN" --slot no_such_slot -o "$T/x"
    [[ $stderr == *'replication slot "no_such_slot" does not exist'* ]]
    q src -c "SELECT 1 FROM pg_create_logical_replication_slot('cli_td', 'test_decoding')"
    run -4 --separate-stderr lm-decode --source "$SRC_CONN" --slot cli_td -o "$T/x"
    [[ $stderr == *'output plugin "test_decoding", not pgoutput'* ]]
    q src -c "SELECT 1 FROM pg_create_logical_replication_slot('cli_po', 'pgoutput')"
    run -4 --separate-stderr lm-decode --source "$SRC_CONN" --slot cli_po --publication nopub -o "$T/x"
    [[ $stderr == *'publication "nopub" does not exist'* ]]
    q src -c "SELECT pg_drop_replication_slot('cli_td'), pg_drop_replication_slot('cli_po')"
}

# ------------------------------------------------------------ change kinds

@test "lm-decode: every operation and value kind reaches the stream; --endpos ends it" {
    q src <<'SQL'
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE k (id int PRIMARY KEY, txt text, b bytea, arr int[], j jsonb, n numeric, m mood, big text);
ALTER TABLE k ALTER big SET STORAGE EXTERNAL;
CREATE TABLE kfull (a int, b text);
ALTER TABLE kfull REPLICA IDENTITY FULL;
CREATE TABLE kparent (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
CREATE TABLE kchild (id int PRIMARY KEY, pid int REFERENCES kparent);
CREATE TABLE kpart (id int, k int, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
CREATE TABLE kpart_a PARTITION OF kpart FOR VALUES FROM (0) TO (100);
CREATE TABLE kpart_b PARTITION OF kpart FOR VALUES FROM (100) TO (200);
CREATE PUBLICATION kinds FOR TABLE k, kfull, kparent, kchild, kpart WITH (publish_via_partition_root = true);
SELECT 1 FROM pg_create_logical_replication_slot('kinds', 'pgoutput');
SQL
    q src <<'SQL'
INSERT INTO k VALUES (1, 'héllo wörld ✓ 日本', '\x00ff10', '{1,2,NULL}', '{"a": [1, 2], "b": null}', 'NaN', 'happy',
                      (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 300)));
INSERT INTO k (id) VALUES (2);
UPDATE k SET txt = 'changed' WHERE id = 1;
UPDATE k SET id = 20 WHERE id = 2;
DELETE FROM k WHERE id = 20;
INSERT INTO kfull VALUES (1, 'x'), (2, 'y');
UPDATE kfull SET b = 'x2' WHERE a = 1;
DELETE FROM kfull WHERE a = 2;
INSERT INTO kpart VALUES (1, 5), (2, 150);
ALTER TABLE k ADD COLUMN extra int DEFAULT 7;
INSERT INTO k (id, extra) VALUES (3, 8);
BEGIN;
SELECT pg_logical_emit_message(true, 'test', 'hello message');
INSERT INTO k (id) VALUES (4);
COMMIT;
INSERT INTO kparent (v) VALUES ('p1');
INSERT INTO kchild VALUES (1, 1);
TRUNCATE kparent RESTART IDENTITY CASCADE;
SQL
    local end
    end=$(curlsn)
    SLOT=kinds
    run -0 --separate-stderr timeout 60 lm-decode --source "$SRC_CONN" --slot kinds --endpos "$end" -o "$T/s.lm"
    run -0 lm-cat --verify "$T/s.lm"
    records "$T/s.lm" >"$T/s.json"
    local J=$T/s.json
    # the end record: reason endpos, at or past --endpos
    [ "$(jq -r 'select(.type == "end") .reason' "$J")" = endpos ]
    [ "$(tail -1 "$J" | jq -r .type)" = end ]
    # inserts: non-ASCII text, bytea, arrays, jsonb, numeric NaN, an enum, an
    # external TOAST value
    run jq -c 'select(.type == "insert" and .table == "public.k" and .new.id == "1") | .new | del(.big)' "$J"
    assert_output '{"id":"1","txt":"héllo wörld ✓ 日本","b":"\\x00ff10","arr":"{1,2,NULL}","j":"{\"a\": [1, 2], \"b\": null}","n":"NaN","m":"happy"}'
    [ "$(jq -r 'select(.type == "insert" and .table == "public.k" and .new.id == "1") | .new.big | length' "$J")" -eq 9600 ]
    # NULLs
    run jq -c 'select(.type == "insert" and .table == "public.k" and .new.id == "2") | .new' "$J"
    assert_output '{"id":"2","txt":null,"b":null,"arr":null,"j":null,"n":null,"m":null,"big":null}'
    # the enum's type record, and the column typed with it
    local oid
    oid=$(jq -r 'select(.type == "type" and .name == "mood") | .oid' "$J" | head -1)
    [ "$oid" = "$(q src -c "SELECT 'mood'::regtype::oid")" ]
    [ "$(jq -r 'select(.type == "relation" and .table == "k") | .columns[] | select(.name == "m") | .type_oid' "$J" | head -1)" = "$oid" ]
    # an update that leaves the TOASTed column alone: unchanged_toast, no old key
    run jq -c 'select(.type == "update" and .table == "public.k" and .new.id == "1") | [.new.txt, .new.big, has("old_key"), has("old")]' "$J"
    assert_output '["changed",{"unchanged_toast":true},false,false]'
    # an update of the key: old key with the old id, non-key columns null
    run jq -c 'select(.type == "update" and .table == "public.k" and .new.id == "20") | [.old_key.id, .old_key.txt]' "$J"
    assert_output '["2",null]'
    run jq -c 'select(.type == "delete" and .table == "public.k") | .old_key.id' "$J"
    assert_output '"20"'
    # REPLICA IDENTITY FULL without a key: the old tuple
    run jq -c 'select(.type == "relation" and .table == "kfull") | .replica_identity' "$J"
    assert_output '"f"'
    run jq -c 'select(.type == "update" and .table == "public.kfull") | [.old, .new]' "$J"
    assert_output '[{"a":"1","b":"x"},{"a":"1","b":"x2"}]'
    run jq -c 'select(.type == "delete" and .table == "public.kfull") | .old' "$J"
    assert_output '{"a":"2","b":"y"}'
    # partitions published via the root: under the root's name only
    run jq -r 'select(.type == "insert" and (.table | startswith("public.kpart"))) | .table + " " + .new.id + " " + .new.k' "$J"
    assert_output $'public.kpart 1 5\npublic.kpart 2 150'
    # ADD COLUMN mid-stream: a new relation record with it, used by the next insert
    run jq -c 'select(.type == "relation" and .table == "k") | [.columns[].name] | length' "$J"
    assert_output $'8\n9'
    run jq -c 'select(.type == "insert" and .new.id == "3") | [.new.extra, .new.txt]' "$J"
    assert_output '["8",null]'
    # the transactional message, inside its transaction
    run jq -c 'select(.type == "message") | [.transactional, .prefix, .content]' "$J"
    assert_output '[true,"test","hello message"]'
    run jq -rs 'map(.type) | join(" ")' "$J"
    assert_output --partial "begin message insert commit"
    # truncate with CASCADE and RESTART IDENTITY lists every cascaded table
    run jq -c 'select(.type == "truncate") | [.cascade, .restart_identity, (.tables | sort)]' "$J"
    assert_output '[true,true,["public.kchild","public.kparent"]]'
    # begin and commit carry the same commit LSN; end LSNs grow
    [ "$(jq -r 'select(.type == "begin") .commit_lsn' "$J")" = "$(jq -r 'select(.type == "commit") .commit_lsn' "$J")" ]
    # the text form says the same
    run lm-cat "$T/s.lm"
    assert_output --partial "unchanged-toast-datum"
    assert_output --partial "truncate public.kparent public.kchild cascade restart_identity"
}

@test "lm-decode: the cutover marker and SIGTERM end the stream with exit 0; a rehearsal's marker passes on" {
    q src -c "CREATE TABLE em (id int PRIMARY KEY, v text)"
    mkslot endm "TABLE em"
    SLOT=endm
    make_token "$T/marker.key"
    q src -c "INSERT INTO em VALUES (1, 'a')"
    q src -c "SELECT pg_logical_emit_message(true, 'lm-migrate', '$(rehearsal_for "$T/marker.key" r1)')" >/dev/null
    q src -c "BEGIN; INSERT INTO em VALUES (2, 'b'); SELECT pg_logical_emit_message(true, 'lm-migrate', '$(marker_for "$T/marker.key" m1)'); COMMIT;"
    q src -c "INSERT INTO em VALUES (3, 'after the marker')"
    run -0 --separate-stderr timeout 60 lm-decode --source "$SRC_CONN" --slot endm -o "$T/m.lm" --marker-token-file "$T/marker.key"
    records "$T/m.lm" >"$T/m.json"
    run jq -r 'select(.type == "end") .reason' "$T/m.json"
    assert_output marker
    # the marker's transaction is complete before the end; nothing after it
    run jq -r 'select(.type == "insert") .new.id' "$T/m.json"
    assert_output $'1\n2'
    [ "$(jq -r 'select(.type == "commit")' "$T/m.json" | jq -s length)" -eq 3 ]
    # the rehearsal's marker went into the stream and ended nothing
    run jq -r 'select(.type == "message") .content' "$T/m.json"
    assert_line --index 0 "$(rehearsal_for "$T/marker.key" r1)"
    assert_line --index 1 "$(marker_for "$T/marker.key" m1)"
    [[ $stderr == *"a cutover rehearsal marker at "*" verifies: it passes on"* ]]

    # SIGTERM: end record "shutdown", exit 0, stream verifies
    dec_start -o "$T/t.lm" --no-stop-at-marker --marker-token-file "$T/marker.key"
    wait_for 10 slot_active
    q src -c "INSERT INTO em VALUES (4, 'd')"
    wait_for 10 bash -c "lm-cat --json '$T/t.lm' 2>/dev/null | grep -q '\"id\":\"4\"'"
    kill -TERM "$DEC_PID"
    dec_wait
    [ "$DEC_RC" -eq 0 ]
    run -0 lm-cat --verify "$T/t.lm"
    assert_output --partial "end record: shutdown"
    # the marker transaction again (the slot was not acknowledged: no --ack),
    # and this time past it
    run jq -r 'select(.type == "insert") .new.id' <(records "$T/t.lm")
    assert_output $'1\n2\n3\n4'
    grep -q "no --ack channel" "$T/dec.err"
}

@test "lm-decode: --endpos reached while idle ends at a position past it; one at or before the start ends at once" {
    q src -c "CREATE TABLE ep (id int PRIMARY KEY); CREATE TABLE ep_unpub (id int)"
    mkslot endp "TABLE ep"
    q src -c "INSERT INTO ep VALUES (1)"
    q src -c "INSERT INTO ep_unpub SELECT generate_series(1, 1000)"
    local end
    end=$(curlsn)
    run -0 --separate-stderr timeout 60 lm-decode --source "$SRC_CONN" --slot endp --endpos "$end" -o "$T/e.lm" --progress=always
    # --progress=always in a log: a plain final line with the count
    [[ $stderr == *"lm-decode: 1 changes in "*" transactions, "*" (done)"* ]]
    [[ $stderr != *$'\e'* ]]
    records "$T/e.lm" >"$T/e.json"
    [ "$(jq -r 'select(.type == "end") .reason' "$T/e.json")" = endpos ]
    [ "$(jq -r 'select(.type == "insert") .new.id' "$T/e.json")" = 1 ]
    lsn_le "$end" "$(jq -r 'select(.type == "position") .lsn' "$T/e.json" | tail -1)"
    # the slot was not acknowledged (no --ack): move it, then ask for less
    q src -c "SELECT 1 FROM pg_replication_slot_advance('endp', pg_current_wal_insert_lsn())" >/dev/null
    run -0 --separate-stderr timeout 8 lm-decode --source "$SRC_CONN" --slot endp --endpos 0/1 -o "$T/e2.lm"
    run -0 lm-cat --verify "$T/e2.lm"
    assert_output --partial "end record: endpos"
    [ "$(records "$T/e2.lm" | jq -r 'select(.type == "insert")' | wc -l)" -eq 0 ]
}

# ------------------------------------------------------------------ spool

@test "lm-decode: spool segments rotate, each verifies alone, and the slot is acknowledged only up to what the spool holds" {
    q src -c "CREATE TABLE sp (id int PRIMARY KEY, v text)"
    mkslot spool1 "TABLE sp"
    SLOT=spool1
    local start
    start=$(confirmed spool1)
    dec_start --spool "$T/spool" --segment-size 16kB --segment-time 1 --status-interval 1
    wait_for 10 slot_active
    # 6 s of writes at least, so the slot is sampled while they go on
    # however fast or loaded the machine is
    writer_start sp 1 150 50 0.04
    local samples=0 c h
    while kill -0 "$WRITER" 2>/dev/null; do
        c=$(confirmed spool1)
        h=$(spool_high "$T/spool")
        # (the slot's own start counts as held: nothing before it is owed)
        lsn_le "$c" "$h" || [ "$c" = "$start" ] || { echo "slot confirmed $c, spool holds only $h" >&2; false; }
        samples=$((samples + 1))
        sleep 0.3
    done
    writer_wait
    [ "$samples" -ge 3 ]
    local end
    end=$(curlsn)
    # the slot catches up with what was written, then stop
    wait_for 30 confirmed_ge spool1 "$end"
    kill -TERM "$DEC_PID"
    dec_wait
    [ "$DEC_RC" -eq 0 ]
    c=$(confirmed spool1)
    lsn_lt "$start" "$c"
    ! ls "$T/spool" | grep -q partial
    local segs n=0 prev= seen_rel=
    segs=$(spool_finished "$T/spool")
    for f in $segs; do
        run -0 lm-cat --verify "$T/spool/$f"
        # names chain: each START is the previous END
        [ -z "$prev" ] || [ "$(seg_start "$f")" = "$prev" ]
        prev=$(seg_end "$f")
        # each starts with a header, and the relation of sp comes before
        # its first change: readable alone
        run -0 lm-cat "$T/spool/$f"
        [[ ${lines[0]} == header* ]]
        run -0 jq -s 'map(.type) | (index("relation") // 1e9) < (index("insert") // 1e9 + 1)' <(records "$T/spool/$f")
        assert_output true
        # once the relation is known, every segment repeats it right after the header
        if [ -n "$seen_rel" ]; then
            [ "$(lm-cat "$T/spool/$f" | sed -n 2p | cut -d' ' -f1)" = relation ]
        fi
        lm-cat "$T/spool/$f" | grep -q '^relation ' && seen_rel=1
        n=$((n + 1))
    done
    [ "$n" -ge 3 ]
    # the last segment's END is where the slot is
    lsn_le "$c" "$prev"
    # the whole spool: every commit once, every row once
    (cd "$T/spool" && records $segs) >"$T/all.json"
    assert_commits_unique "$T/all.json"
    assert_ids_match_table "$T/all.json" sp
    [ "$(jq -r 'select(.type == "end") .reason' "$T/all.json")" = shutdown ]
}

@test "lm-decode: kill -9 mid-stream, restart: the partial is cut back and every commit is in the spool exactly once" {
    q src -c "CREATE TABLE kl (id int PRIMARY KEY, v text)"
    mkslot kill9 "TABLE kl"
    SLOT=kill9
    dec_start --spool "$T/spool" --segment-size 64kB --status-interval 1
    wait_for 10 slot_active
    writer_start kl 1 300 40
    sleep 2
    kill -9 "$DEC_PID"
    dec_wait
    local at_kill partial
    at_kill=$(confirmed kill9)
    partial=$(ls "$T/spool" | grep partial || true)
    [ -n "$partial" ]
    # restart while the writer goes on
    dec_start --spool "$T/spool" --segment-size 64kB --status-interval 1
    wait_for 10 slot_active
    # the partial was finished, cut back to a point at or past what the slot had
    local recovered
    recovered=$(spool_finished "$T/spool" | grep "^${partial%.lmz.partial}-")
    [ -n "$recovered" ]
    lsn_le "$at_kill" "$(seg_end "$recovered")"
    run -0 lm-cat --verify "$T/spool/$recovered"
    grep -q "recovered partial segment" "$T/dec.err" || grep -q "removed partial" "$T/dec.err"
    writer_wait
    local end
    end=$(curlsn)
    wait_for 30 confirmed_ge kill9 "$end"
    kill -TERM "$DEC_PID"
    dec_wait
    [ "$DEC_RC" -eq 0 ]
    local segs
    segs=$(spool_finished "$T/spool")
    (cd "$T/spool" && records $segs) >"$T/all.json"
    assert_commits_unique "$T/all.json"
    assert_ids_match_table "$T/all.json" kl
    [ "$(q src -c "SELECT count(*) FROM kl")" -eq 12000 ]
}

@test "lm-decode: writes only to an unpublished table still advance the slot (spool)" {
    q src -c "CREATE TABLE pubd (id int PRIMARY KEY); CREATE TABLE unpub (id int PRIMARY KEY, v text)"
    mkslot quiet1 "TABLE pubd"
    SLOT=quiet1
    local before
    dec_start --spool "$T/spool" --status-interval 1
    wait_for 10 slot_active
    before=$(confirmed quiet1)
    writer_start unpub 1 20 100
    writer_wait
    local end
    end=$(curlsn)
    wait_for 30 confirmed_ge quiet1 "$end"
    lsn_lt "$before" "$(confirmed quiet1)"
    kill -TERM "$DEC_PID"
    dec_wait
    [ "$DEC_RC" -eq 0 ]
    # positions, no transaction
    records "$T"/spool/*.lmz >"$T/q.json"
    [ "$(jq -r 'select(.type == "commit")' "$T/q.json" | wc -l)" -eq 0 ]
    [ "$(jq -r 'select(.type == "position")' "$T/q.json" | jq -s length)" -ge 1 ]
}

# ------------------------------------------------------------------- pipe

@test "lm-decode: pipe mode without --ack leaves the slot where it was; with an ack FIFO it follows the acks" {
    q src -c "CREATE TABLE pp (id int PRIMARY KEY, v text)"
    mkslot pipe1 "TABLE pp"
    SLOT=pipe1
    local before
    before=$(confirmed pipe1)
    dec_start -o "$T/p.lm" --status-interval 1
    wait_for 10 slot_active
    writer_start pp 1 10 10
    writer_wait
    wait_for 20 bash -c "[ \$(lm-cat --json '$T/p.lm' 2>/dev/null | grep -c '\"type\":\"commit\"') -eq 10 ]"
    sleep 2.5   # more than the status interval
    [ "$(confirmed pipe1)" = "$before" ]
    kill -TERM "$DEC_PID"
    dec_wait
    [ "$DEC_RC" -eq 0 ]
    [ "$(confirmed pipe1)" = "$before" ]
    grep -q "no --ack channel: nothing will be acknowledged" "$T/dec.err"

    # with an ack FIFO: the slot moves to exactly what is acknowledged
    mkfifo "$T/ack"
    dec_start -o "$T/p2.lm" --ack "$T/ack" --status-interval 1
    wait_for 10 slot_active
    records "$T/p2.lm" >"$T/p2.json"
    local -a ends
    mapfile -t ends < <(jq -r 'select(.type == "commit") .end_lsn' "$T/p2.json")
    [ "${#ends[@]}" -eq 10 ]
    echo "${ends[3]}" >"$T/ack"
    wait_for 10 bash -c "[ \"\$(psql -X -At -h 127.0.0.1 -p $SRC_PORT -U postgres -d postgres -c \"SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'pipe1'\")\" = '${ends[3]}' ]"
    sleep 1.5
    [ "$(confirmed pipe1)" = "${ends[3]}" ]
    # an ack past what was written is held back to what was written
    printf '%s\nFFFF/0\n' "${ends[9]}" >"$T/ack"
    wait_for 10 confirmed_ge pipe1 "${ends[9]}"
    lsn_le "$(confirmed pipe1)" "$(jq -r 'select(.type == "commit") .end_lsn, select(.type == "position") .lsn' <(records "$T/p2.lm") | tail -1)"
    kill -TERM "$DEC_PID"
    dec_wait
    [ "$DEC_RC" -eq 0 ]
}

@test "lm-decode: lines left in a regular ack file by an earlier run acknowledge nothing; lines appended after the start do" {
    q src -c "CREATE TABLE pa (id int PRIMARY KEY, v text)"
    mkslot packf "TABLE pa"
    SLOT=packf
    local before
    before=$(confirmed packf)
    # what an earlier run (or anyone) left: far past anything written here
    printf 'FFFFFFFF/0\n7FFFFFFF/0\n' >"$T/ack"
    # a backlog in the slot (written before lm-decode starts), and more
    # while it runs
    writer_start pa 1 5 10
    writer_wait
    # started past the backlog (--start): nothing is written, nothing
    # acknowledged; the old lines must not move the slot to where it starts
    dec_start -o "$T/a0.lm" --ack "$T/ack" --status-interval 1 --start "$(curlsn)"
    wait_for 10 slot_active
    sleep 2.5
    kill -TERM "$DEC_PID"
    dec_wait
    [ "$DEC_RC" -eq 0 ]
    [ "$(confirmed packf)" = "$before" ]
    # the backlog and more: written, not acknowledged
    dec_start -o "$T/a.lm" --ack "$T/ack" --status-interval 1
    wait_for 10 slot_active
    writer_start pa 51 5 10
    writer_wait
    wait_for 20 bash -c "[ \$(lm-cat --json '$T/a.lm' 2>/dev/null | grep -c '\"type\":\"commit\"') -eq 10 ]"
    sleep 2.5   # more than the status interval
    [ "$(confirmed packf)" = "$before" ]
    # a line appended by this run's consumer counts
    local -a ends
    mapfile -t ends < <(records "$T/a.lm" | jq -r 'select(.type == "commit") .end_lsn')
    [ "${#ends[@]}" -eq 10 ]
    echo "${ends[3]}" >>"$T/ack"
    wait_for 10 confirmed_ge packf "${ends[3]}"
    sleep 1.5
    [ "$(confirmed packf)" = "${ends[3]}" ]
    kill -TERM "$DEC_PID"
    dec_wait
    [ "$DEC_RC" -eq 0 ]
    [ "$(confirmed packf)" = "${ends[3]}" ]
}

@test "lm-decode: writes only to an unpublished table advance the slot in pipe mode when positions are acknowledged" {
    q src -c "CREATE TABLE pubq (id int PRIMARY KEY); CREATE TABLE unpubq (id int PRIMARY KEY, v text)"
    mkslot quiet2 "TABLE pubq"
    SLOT=quiet2
    mkfifo "$T/ack"
    local before
    before=$(confirmed quiet2)
    dec_start -o "$T/q.lm" --ack "$T/ack" --status-interval 1
    wait_for 10 slot_active
    writer_start unpubq 1 20 100
    writer_wait
    local end
    end=$(curlsn)
    # feed back the positions the stream carries, as lm-apply --ack would
    local i pos=
    for i in $(seq 1 60); do
        pos=$(records "$T/q.lm" | jq -r 'select(.type == "position") .lsn' | tail -1)
        if [ -n "$pos" ] && lsn_le "$end" "$pos"; then break; fi
        sleep 0.5
    done
    [ -n "$pos" ]
    echo "$pos" >"$T/ack"
    wait_for 15 confirmed_ge quiet2 "$pos"
    lsn_lt "$before" "$(confirmed quiet2)"
    kill -TERM "$DEC_PID"
    dec_wait
    [ "$DEC_RC" -eq 0 ]
}

# -------------------------------------------------------------- reconnects

@test "lm-decode: the walsender terminated mid-stream: reconnects, every commit exactly once" {
    q src -c "CREATE TABLE rc (id int PRIMARY KEY, v text)"
    mkslot recon1 "TABLE rc"
    SLOT=recon1
    make_token "$T/marker.key"
    dec_start -o "$T/r.lm" --marker-token-file "$T/marker.key"
    wait_for 10 slot_active
    writer_start rc 1 150 200
    local k
    for k in 1 2 3; do
        sleep 0.8
        q src -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'recon1' AND active_pid IS NOT NULL" >/dev/null
        wait_for 20 slot_active
    done
    writer_wait
    # one large transaction, and the walsender terminated while it streams:
    # abandoned with an end record, then sent again in full
    local size0 size
    size0=$(stat -c %s "$T/r.lm")
    bg_start WRITER psql -X -q -h 127.0.0.1 -p "$SRC_PORT" -U postgres -d postgres \
        -c "INSERT INTO rc SELECT g, md5(g::text) FROM generate_series(1000001, 1200000) g"
    for k in $(seq 1 600); do
        size=$(stat -c %s "$T/r.lm")
        [ "$size" -gt $((size0 + 500000)) ] && break
        sleep 0.05
    done
    q src -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'recon1' AND active_pid IS NOT NULL" >/dev/null
    writer_wait
    wait_for 20 slot_active
    q src -c "SELECT pg_logical_emit_message(true, 'lm-migrate', '$(marker_for "$T/marker.key" r)')" >/dev/null
    dec_wait
    [ "$DEC_RC" -eq 0 ]
    records "$T/r.lm" >"$T/r.json"
    [ "$(jq -r 'select(.type == "end") .reason' "$T/r.json" | tail -1)" = marker ]
    jq -r 'if .type == "end" then "end:" + .reason else .type end' "$T/r.json" >"$T/types"
    # a new header for each reconnection
    [ "$(grep -c '^header$' "$T/types")" -ge 5 ]
    # the abandoned transaction ends with "shutdown", and a header follows
    run bash -c "awk 'p == \"end:shutdown\" { print } { p = \$0 }' '$T/types' | sort -u"
    assert_output header
    # which readers drop: the large transaction's rows are there once
    [ "$(q src -c "SELECT count(*) FROM rc WHERE id > 1000000")" -eq 200000 ]
    grep -q "reconnected" "$T/dec.err"
    assert_commits_unique "$T/r.json"
    assert_ids_match_table "$T/r.json" rc
}

@test "lm-decode: while catching up a backlog (busy), the slot is acknowledged as the spool grows, not only at the end" {
    q src -c "CREATE TABLE busy (id int PRIMARY KEY, v text)"
    mkslot busyspool "TABLE busy"
    SLOT=busyspool
    q src -c "DO \$\$ BEGIN FOR i IN 0..599 LOOP
                INSERT INTO busy SELECT g, md5(g::text) FROM generate_series(i * 1000 + 1, i * 1000 + 1000) g;
                COMMIT; END LOOP; END \$\$"
    end=$(curlsn)
    start=$(confirmed busyspool)
    dec_start --spool "$T/spool" --endpos "$end"
    # sample the slot while lm-decode works through the backlog
    local seen=() c
    while kill -0 "$DEC_PID" 2>/dev/null; do
        c=$(confirmed busyspool)
        seen+=("$c")
        sleep 0.3
    done
    dec_wait
    [ "$DEC_RC" -eq 0 ]
    printf '%s\n' "${seen[@]}" | uniq
    # some position strictly between the start and the end was acknowledged
    local mid=0
    for c in "${seen[@]}"; do
        if lsn_lt "$start" "$c" && lsn_lt "$c" "$end"; then mid=1; fi
    done
    [ "$mid" = 1 ]
}

@test "lm-decode: a pipe whose reader stops reading does not get the connection killed by wal_sender_timeout" {
    q src -c "ALTER SYSTEM SET wal_sender_timeout = '3s'" -c "SELECT pg_reload_conf()" >/dev/null
    q src -c "CREATE TABLE slow (id int PRIMARY KEY, v text)"
    mkslot slowpipe "TABLE slow"
    SLOT=slowpipe
    # ~10 MB of stream: far more than the pipe and the sockets hold
    q src -c "INSERT INTO slow SELECT g, md5(g::text) FROM generate_series(1, 150000) g"
    end=$(curlsn)
    q src -c "SELECT pg_logical_emit_message(false, 'lm-test', 'tick')" >/dev/null
    # the reader sleeps 4 x wal_sender_timeout before it reads anything
    run --separate-stderr bash -c 'lm-decode --source "$0" --slot slowpipe --publication slowpipe --endpos "$1" \
        --status-interval 1 -v 2>"$2" | { sleep 12; cat; } >"$3"' "$SRC_CONN" "$end" "$T/dec.err" "$T/slow.lm"
    q src -c "ALTER SYSTEM RESET wal_sender_timeout" -c "SELECT pg_reload_conf()" >/dev/null
    cat "$T/dec.err"
    assert_success
    ! grep -q "lost the replication connection" "$T/dec.err"
    ! grep -q "reconnected" "$T/dec.err"
    [ "$(records "$T/slow.lm" | jq -r 'select(.type == "insert") | 1' | wc -l)" -eq 150000 ]
}

@test "lm-decode: the source restarted with -m immediate mid-stream: reconnects, every commit exactly once (spool)" {
    q src -c "CREATE TABLE ri (id int PRIMARY KEY, v text)"
    mkslot recon2 "TABLE ri"
    SLOT=recon2
    dec_start --spool "$T/spool" --segment-size 16kB --status-interval 1
    wait_for 10 slot_active
    writer_start_each ri 1 100 100
    sleep 1.5
    pg_restart src immediate
    writer_wait
    local end
    end=$(curlsn)
    wait_for 60 confirmed_ge recon2 "$end"
    kill -TERM "$DEC_PID"
    dec_wait
    [ "$DEC_RC" -eq 0 ]
    grep -q "reconnected" "$T/dec.err"
    local segs
    segs=$(spool_finished "$T/spool")
    for f in $segs; do lm-cat --verify "$T/spool/$f" >/dev/null; done
    (cd "$T/spool" && records $segs) >"$T/all.json"
    assert_commits_unique "$T/all.json"
    assert_ids_match_table "$T/all.json" ri
    [ "$(q src -c "SELECT count(*) FROM ri")" -ge 1000 ]
}

# ------------------------------------------------------------------ memory

@test "lm-decode: one huge transaction (LM_BIG_MB, default 40 here; 200 for the full check) in bounded memory" {
    local mb=${LM_BIG_MB:-40} rows
    rows=$(( mb * 1024 * 1024 / 300 ))
    q src -c "CREATE TABLE big (id int PRIMARY KEY, pad text)"
    mkslot big1 "TABLE big"
    q src -c "INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, $rows) g"
    local end
    end=$(curlsn)
    run -0 --separate-stderr /usr/bin/time -f 'maxrss %M' -o "$T/time" \
        lm-decode --source "$SRC_CONN" --slot big1 --endpos "$end" -z -o "$T/big.lmz"
    local kb
    kb=$(awk '/maxrss/ {print $2}' "$T/time")
    echo "peak RSS ${kb} kB for $rows rows (~${mb} MB)" >&3
    rss_below "$kb" $((64 * 1024))
    run -0 lm-cat --stats "$T/big.lmz"
    assert_output --regexp "insert +$rows "
    assert_output --partial "transactions: 1"
}

@test "lm-decode: SHA-256 and HMAC-SHA256 of the marker give the FIPS 180-4 and RFC 4231 known answers" {
    run -0 lm-testgen --sha256 < <(printf abc)
    assert_output ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
    run -0 lm-testgen --sha256 < <(printf abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq)
    assert_output 248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1
    run -0 lm-testgen --sha256 </dev/null
    assert_output e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
    # RFC 4231 test cases 1, 2, 3, 6 and 7 (keys longer than a block hashed first)
    run -0 lm-testgen --hmac 0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b < <(printf 'Hi There')
    assert_output b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7
    run -0 lm-testgen --hmac 4a656665 < <(printf 'what do ya want for nothing?')
    assert_output 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843
    run -0 lm-testgen --hmac "$(printf 'aa%.0s' $(seq 20))" < <(printf '\xdd%.0s' $(seq 50))
    assert_output 773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe
    run -0 lm-testgen --hmac "$(printf 'aa%.0s' $(seq 131))" < <(printf 'Test Using Larger Than Block-Size Key - Hash Key First')
    assert_output 60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54
    run -0 lm-testgen --hmac "$(printf 'aa%.0s' $(seq 131))" < <(printf 'This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.')
    assert_output 9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2
}

@test "lm-decode: a marker forged by a role without privileges neither ends the stream nor enters it; a token file others may read is refused" {
    q src -c "CREATE TABLE fm (id int PRIMARY KEY, v text)"
    q src -c "DROP ROLE IF EXISTS forger; CREATE ROLE forger LOGIN"
    mkslot forgem "TABLE fm"
    SLOT=forgem
    make_token "$T/marker.key"
    forge() { psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SRC_PORT" -U forger -d postgres -c "$1"; }
    q src -c "INSERT INTO fm VALUES (1, 'a')"
    # the old marker, a MAC for another ID, a MAC under another token, a
    # non-transactional one: none needs a privilege
    forge "SELECT pg_logical_emit_message(true, 'lm-migrate', 'cutover forged')"
    q src -c "INSERT INTO fm VALUES (2, 'after the first forgery')"
    good=$(marker_for "$T/marker.key" m1)
    forge "SELECT pg_logical_emit_message(true, 'lm-migrate', 'cutover m2 ${good##* }')"
    make_token "$T/other.key"
    forge "SELECT pg_logical_emit_message(true, 'lm-migrate', '$(marker_for "$T/other.key" m1)')"
    forge "SELECT pg_logical_emit_message(false, 'lm-migrate', '$good')"
    q src -c "INSERT INTO fm VALUES (3, 'after every forgery')"
    q src -c "BEGIN; INSERT INTO fm VALUES (4, 'd'); SELECT pg_logical_emit_message(true, 'lm-migrate', '$good'); COMMIT;"
    q src -c "INSERT INTO fm VALUES (5, 'after the real marker')"

    # a token file others may read, or a link to one: refused (exit 9), the token never printed
    cp "$T/marker.key" "$T/open.key"; chmod 644 "$T/open.key"
    run -9 --separate-stderr lm-decode --source "$SRC_CONN" --slot forgem -o "$T/x.lm" --marker-token-file "$T/open.key"
    [[ $stderr == *"only it may read and write"* ]]
    [[ $stderr != *"$(cat "$T/marker.key")"* ]]
    ln -s "$T/marker.key" "$T/link.key"
    run -9 --separate-stderr lm-decode --source "$SRC_CONN" --slot forgem -o "$T/x.lm" --marker-token-file "$T/link.key"

    run -0 --separate-stderr timeout 60 lm-decode --source "$SRC_CONN" --slot forgem -o "$T/f.lm" --marker-token-file "$T/marker.key"
    records "$T/f.lm" >"$T/f.json"
    run jq -r 'select(.type == "end") .reason' "$T/f.json"
    assert_output marker
    run jq -r 'select(.type == "insert") .new.id' "$T/f.json"
    assert_output $'1\n2\n3\n4'
    # only the real marker enters the stream (lm-apply records what comes)
    [ "$(jq -c 'select(.type == "message")' "$T/f.json" | wc -l)" -eq 1 ]
    [ "$(grep -c "is not this migration's cutover marker (transaction [0-9]*, LSN [0-9A-F]*/[0-9A-F]*)" <<<"$stderr")" -eq 3 ]
    [ "$(grep -c "non-transactional" <<<"$stderr")" -eq 1 ]
    [[ $stderr != *"$(cat "$T/marker.key")"* ]]

    # without a token file no marker ends the stream: every row arrives
    q src -c "SELECT pg_drop_replication_slot('forgem')"
    q src -c "SELECT 1 FROM pg_create_logical_replication_slot('forgem', 'pgoutput', false, false)" >/dev/null
    q src -c "BEGIN; INSERT INTO fm VALUES (6, 'f'); SELECT pg_logical_emit_message(true, 'lm-migrate', 'cutover x'); COMMIT;"
    q src -c "INSERT INTO fm VALUES (7, 'g')"
    run -0 --separate-stderr timeout 60 lm-decode --source "$SRC_CONN" --slot forgem -o "$T/n.lm" --endpos "$(curlsn)"
    run jq -r 'select(.type == "end") .reason' <(records "$T/n.lm")
    assert_output endpos
    run jq -r 'select(.type == "insert") .new.id' <(records "$T/n.lm")
    assert_output $'6\n7'
}

@test "lm-decode: a spool directory others may write to, or another user's, is refused (exit 9) and left alone" {
    q src -c "CREATE TABLE sd (id int PRIMARY KEY)"
    mkslot spoold "TABLE sd"
    mkdir "$T/open" && chmod 777 "$T/open"
    run -9 --separate-stderr timeout 30 lm-decode --source "$SRC_CONN" --slot spoold --spool "$T/open" --endpos 0/1
    [[ $stderr == *"spool directory \"$T/open\" is not a directory of this user"* ]]
    [ -z "$(ls -A "$T/open")" ]
    mkdir "$T/theirs" && chown nobody "$T/theirs"
    run -9 --separate-stderr timeout 30 lm-decode --source "$SRC_CONN" --slot spoold --spool "$T/theirs" --endpos 0/1
    [[ $stderr == *"belongs to user id"* ]]
    [ -z "$(ls -A "$T/theirs")" ]
    # a spool of its own is accepted (and made 0700)
    run -0 --separate-stderr timeout 30 lm-decode --source "$SRC_CONN" --slot spoold --spool "$T/mine" --endpos 0/1
    [ "$(stat -c %a "$T/mine")" = 700 ]
}
