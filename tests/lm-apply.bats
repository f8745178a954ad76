#!/usr/bin/env bats
# lm-apply against real clusters: a mixed workload (every operation and
# value kind, hostile names, TOAST, keyless FULL tables, TRUNCATE CASCADE
# and RESTART IDENTITY, a column added mid-stream, the cutover marker)
# through a pipe and through a spool; exactly once across kill -9 and a
# second run; per-table sync positions; damaged and frgn streams;
# missing tables, columns and privileges; --status, --ack, --follow,
# --prune; memory on a large transaction; the command line.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
    # tests leave their slots on the source, and every test's database
    # takes a replication origin state on the target, one of
    # max_replication_slots', for the suite's life
    pg_start source "max_replication_slots = 64"
    pg_start target "max_replication_slots = 64"
    pg_start other     # a second source system (another system identifier)
}

teardown_file() {
    pg_stop_all
}

setup() {
    pg_env
    T=$BATS_TEST_TMPDIR
    F=$BATS_FILE_TMPDIR
}

teardown() {
    # a failed test must not leave a background program behind
    local p
    for p in ${APPLY_PID:-} ${DEC_PID:-} ${GATE_PID:-}; do
        kill -CONT "$p" 2>/dev/null || true
        kill -9 "$p" 2>/dev/null || true
    done
    return 0
}

# ------------------------------------------------------------------ helpers

# use_db, both_dbs (a database on source and target), src, tgt, hashes,
# same and the LSN comparisons: tests/helpers.bash
both() { src "$@" && tgt "$@"; }
# a publication p of every table and pgoutput slots named as given
pub_slots() {
    local s
    src -c "CREATE PUBLICATION p FOR ALL TABLES"
    for s in "$@"; do
        src -c "SELECT 1 FROM pg_create_logical_replication_slot('$s', 'pgoutput')" >/dev/null
    done
}
lsn() { src -c "SELECT pg_current_wal_lsn()"; }
# decode SLOT ENDPOS [ARGS...]: the stream on stdout (or where ARGS say)
decode() {
    local s=$1 e=$2
    shift 2
    # WAL past ENDPOS, so an idle stream ends at once on a keepalive
    src -c "SELECT 1 FROM pg_logical_emit_message(false, 'lm-test', 'tick')" >/dev/null
    lm-decode --source "$S" --slot "$s" --publication p --endpos "$e" --marker-token-file "$(marker_key)" "$@" 2>>"$T/decode.err"
}
# the file's marker token (as lm-migrate's marker.key), made once
marker_key() {
    [ -s "$F/marker.key" ] || (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$F/marker.key")
    echo "$F/marker.key"
}
# marker ID: the cutover marker lm-migrate would send for ID
marker() { printf 'cutover %s %s' "$1" "$(printf '%s' "$1" | lm-testgen --hmac "$(cat "$(marker_key)")")"; }
# no lm-apply session left on the target (a killed one's backend is gone)
no_apply_session() {
    [ "$(q target -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lm-apply'")" = 0 ]
}
# bg_prog VAR FILE PROGRAM ARGS...: PROGRAM in the background; VAR is its
# own pid (bg_start's is a subshell's, which signals would not reach); its
# exit status goes to FILE.rc
bg_prog() {
    local __var=$1 f=$2 wrap
    shift 2
    rm -f "$f.pid" "$f.rc"
    bg_start wrap bash -c 'f=$0; "$@" & echo $! >"$f.pid"; wait $!; echo $? >"$f.rc"' "$f" "$@"
    wait_for 10 test -s "$f.pid"
    printf -v "$__var" '%s' "$(cat "$f.pid")"
}
# wait_exit FILE: wait (at most 30 s) for the program of bg_prog FILE; sets RC
wait_exit() {
    wait_for 30 test -s "$1.rc"
    RC=$(cat "$1.rc")
}
# kill_decoder_when_durable SLOT: once the slot is acknowledged up to the
# current position (lm-decode acknowledges only what its spool holds
# durably), lm-decode ($DEC_PID, from bg_prog "$T/dec") is killed with -9,
# leaving its partial segment as it is
kill_decoder_when_durable() {
    local end
    end=$(lsn)
    durable() { lsn_le "$end" "$(src -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$1'")"; }
    wait_for 20 durable "$1"
    kill -9 "$DEC_PID"
    wait_exit "$T/dec"
    DEC_PID=
}
# the end LSN of a stream's last commit
last_commit_end() { lm-cat --json "$@" | grep '^{"type":"commit"' | tail -1 | jq -r .end_lsn; }
# the origin's position on the target ("" when it does not exist)
progress_of() {
    q target -c "SELECT pg_replication_origin_progress(roname, true) FROM pg_replication_origin WHERE roname = '$1'"
}

# flip_byte FILE OFFSET: invert one byte in place
flip_byte() {
    local b
    b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    printf "\\x$(printf %02x $((b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# ------------------------------------------------------------ the workload

schema_sql() {
    cat <<'SQL'
CREATE SCHEMA "Sch ema";
CREATE TYPE "Sch ema".mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE "Sch ema".items (
  id int PRIMARY KEY, v text, n numeric, b bytea, arr text[], ia int[], j jsonb,
  m "Sch ema".mood, big text, ts timestamptz);
CREATE TABLE "Sch ema"."we""ird; x" (id int PRIMARY KEY, "select" text, "Grp" int);
CREATE TABLE parent (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text);
CREATE TABLE child (id int PRIMARY KEY, pid int REFERENCES parent (id));
CREATE TABLE bag (a int, b text, j json, p point, x xml);
ALTER TABLE bag REPLICA IDENTITY FULL;
CREATE TABLE uq (id int PRIMARY KEY, code text UNIQUE, v int);
SQL
}

part1_sql() {
    cat <<'SQL'
INSERT INTO "Sch ema".items (id, v, n, b, arr, ia, j, m, ts)
SELECT g, 'row ' || g || E' ÄÖü 日本 "q" \\ tab\tnl\nx', g * 1.5,
  decode(lpad(to_hex(g), 2, '0') || '00ff5c0a', 'hex'),
  ARRAY['a,b', 'c"d', NULL, 'e\f', ''], ARRAY[g, NULL, -g],
  jsonb_build_object('k', g, 's', 'x"y', 'n', NULL),
  (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::"Sch ema".mood,
  '2024-01-01 00:00+00'::timestamptz + g * interval '1 hour'
FROM generate_series(1, 40) g;
INSERT INTO "Sch ema".items (id, v, n) VALUES (41, NULL, 'NaN'), (42, '', '-0.000100');
BEGIN;
INSERT INTO "Sch ema".items (id, v) VALUES (43, 'single');
UPDATE "Sch ema".items SET v = 'upd ' || id, n = n + 1 WHERE id BETWEEN 1 AND 10;
UPDATE "Sch ema".items SET id = id + 1000 WHERE id IN (11, 12);
UPDATE "Sch ema".items SET v = 'again' WHERE id = 1;
DELETE FROM "Sch ema".items WHERE id IN (20, 21, 1011);
INSERT INTO "Sch ema".items (id, v) VALUES (20, 'reinserted');
COMMIT;
UPDATE "Sch ema".items SET id = 2000 WHERE id = 2;
UPDATE "Sch ema".items SET id = 2, v = 'back' WHERE id = 3;
INSERT INTO "Sch ema".items (id, big)
  VALUES (100, (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 300)));
UPDATE "Sch ema".items SET v = 'toast kept' WHERE id = 100;
UPDATE "Sch ema".items SET ts = NULL WHERE id = 100;
INSERT INTO "Sch ema"."we""ird; x" VALUES (1, 'from', 1), (2, 'where', 2), (3, NULL, 3);
UPDATE "Sch ema"."we""ird; x" SET "select" = 'drop table x; --' WHERE id = 2;
DELETE FROM "Sch ema"."we""ird; x" WHERE id = 1;
INSERT INTO parent (name) SELECT 'p' || g FROM generate_series(1, 5) g;
INSERT INTO child SELECT g, g FROM generate_series(1, 5) g;
TRUNCATE parent RESTART IDENTITY CASCADE;
INSERT INTO parent (name) VALUES ('after truncate');
INSERT INTO bag VALUES (1, 'a', '{"x": 1}', '(1,2)', '<a/>'), (1, 'a', '{"x": 1}', '(1,2)', '<a/>'),
  (2, NULL, '[1, 2]', '(3,4)', NULL), (3, 'c', NULL, NULL, '<c>3</c>');
UPDATE bag SET b = 'one of two' WHERE ctid = (SELECT ctid FROM bag WHERE a = 1 LIMIT 1);
INSERT INTO bag VALUES (4, 'd', '{"y": 2}', '(5,6)', '<d/>'), (4, 'd', '{"y": 2}', '(5,6)', '<d/>');
DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE a = 4 LIMIT 1);
UPDATE bag SET p = '(7,8)' WHERE a = 2;
UPDATE bag SET j = '{"z": 3}' WHERE a = 3;
DELETE FROM bag WHERE a = 3;
INSERT INTO uq VALUES (1, 'a', 1), (2, 'b', 2);
BEGIN;
UPDATE uq SET code = 'tmp' WHERE id = 1;
UPDATE uq SET code = 'a' WHERE id = 2;
UPDATE uq SET code = 'b' WHERE id = 1;
UPDATE uq SET v = v + 10;
COMMIT;
SQL
}

alter_sql() { echo "ALTER TABLE \"Sch ema\".items ADD COLUMN extra text DEFAULT 'd'"; }

part2_sql() {
    cat <<'SQL'
INSERT INTO "Sch ema".items (id, v, extra) VALUES (300, 'after alter', 'x');
UPDATE "Sch ema".items SET extra = 'set ' || id WHERE id BETWEEN 4 AND 8;
UPDATE "Sch ema".items SET v = 'toast kept again' WHERE id = 100;
SQL
    echo "SELECT pg_logical_emit_message(true, 'lm-migrate', '$(marker 1)');"
}

# ------------------------------------------------------------ command line

@test "lm-apply: --help on stdout with every option, exit 0" {
    program_help_ok lm-apply
    for opt in --target --origin --spool --follow --ack --prune --status --json --batch-rows \
        --group-changes --group-time --progress --verbose --version --help; do
        [[ "$output" == *"$opt"* ]] || { echo "--help lacks $opt"; false; }
    done
}

@test "lm-apply: --version" {
    program_version_ok lm-apply
}

@test "lm-apply: bad options are usage errors (exit 2) with a hint, before connecting" {
    program_options_handling_ok lm-apply
    run --separate-stderr lm-apply
    [ "$status" -eq 2 ]
    [[ "$stderr" == *--target* ]]
    # none of these may reach the (unreachable) target
    local t="host=127.0.0.1 port=1 connect_timeout=1"
    run -2 lm-apply --target "$t" --follow
    run -2 lm-apply --target "$t" --prune x.lm
    run -2 lm-apply --target "$t" --spool /tmp x.lm
    run -2 lm-apply --target "$t" --json
    run --separate-stderr lm-apply --target "$t" --batch-rows 0
    [ "$status" -eq 2 ]
    [[ "$stderr" == *1000000* ]]
    run -2 lm-apply --target "$t" --group-changes x
    run -2 lm-apply --target "$t" --group-time -1
}

@test "lm-apply: an unreachable target exits 3 without the password" {
    run --separate-stderr lm-apply --target "host=127.0.0.1 port=1 user=u password=sekrit connect_timeout=2" </dev/null
    [ "$status" -eq 3 ]
    [[ "$stderr" != *sekrit* ]]
}

# (its EXIT STATUS: tests/constants.bats)
@test "lm-apply: the man page documents every option of --help, and its sections" {
    local page
    page=$(cat "$LM_ROOT/man/lm-apply.1")
    for opt in $(lm-apply --help | grep -o -- '--[a-z-]\+' | sort -u); do
        [[ "$page" == *"\\-\\-${opt#--}"* ]] || { echo "man page lacks $opt"; false; }
    done
    for sec in NAME SYNOPSIS DESCRIPTION OPTIONS INPUT "EXIT STATUS" FAILURES EXAMPLES "SEE ALSO"; do
        grep -q "^\.SH \"\?$sec\"\?$" "$LM_ROOT/man/lm-apply.1" || { echo "man page lacks $sec"; false; }
    done
    if command -v man >/dev/null; then
        run man --warnings -l "$LM_ROOT/man/lm-apply.1"
        assert_success
    fi
}

# ------------------------------------------------------------ the workload

@test "lm-apply: a mixed workload through a pipe, in two parts around ADD COLUMN: target equals source" {
    both_dbs mixed
    schema_sql >"$F/schema.sql"
    both -f "$F/schema.sql"
    pub_slots s_pipe s_spool
    # the target's identity sequence is ahead: RESTART IDENTITY must reset it
    tgt -c "SELECT setval('parent_id_seq', 500)" >/dev/null
    part1_sql | src >/dev/null 2>&1
    E1=$(lsn)
    decode s_pipe "$E1" >"$F/p1.lm"
    decode s_spool "$E1" --spool "$F/spool"
    run --separate-stderr lm-apply --target "$TG" "$F/p1.lm"
    assert_success
    same
    # TRUNCATE ... RESTART IDENTITY restarted the target's sequence
    run tgt -c "SELECT last_value, is_called FROM parent_id_seq"
    assert_output "1|f"
    # exactly one of two identical rows changed, one of two was deleted
    [ "$(tgt -c "SELECT count(*) FROM bag WHERE a = 1 AND b = 'one of two'")" = 1 ]
    [ "$(tgt -c "SELECT count(*) FROM bag WHERE a = 4")" = 1 ]
    # the TOASTed value survived updates that left it out
    [ "$(tgt -c "SELECT length(big) FROM \"Sch ema\".items WHERE id = 100")" = 9600 ]

    # the source's table changes mid-stream; the target has not changed yet
    alter_sql | src
    part2_sql | src >/dev/null
    E2=$(lsn)
    decode s_pipe "$E2" >"$F/p2.lm"
    before=$(progress_of s_pipe)
    run --separate-stderr lm-apply --target "$TG" "$F/p2.lm"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'column "extra"'*'"Sch ema".items'* ]] || [[ "$stderr" == *'column "extra"'*'Sch ema.items'* ]]
    [ "$(tgt -c 'SELECT count(*) FROM "Sch ema".items WHERE id = 300')" = 0 ]
    [ "$(progress_of s_pipe)" = "$before" ]
    # the same change on the target, then the rest applies
    alter_sql | tgt
    run --separate-stderr lm-apply --target "$TG" "$F/p2.lm"
    assert_success
    same
    # the cutover marker is recorded with the data
    [ "$(tgt -c "SELECT payload FROM lm.marker WHERE origin = 's_pipe'")" = "$(marker 1)" ]
    # the origin is at the end LSN of the last commit
    last=$(last_commit_end "$F/p2.lm")
    [ "$(progress_of s_pipe)" = "$last" ]
}

@test "lm-apply: the same workload through a spool of two segments: target equals source" {
    [ -f "$F/schema.sql" ] || skip "needs the pipe test's source"
    use_db mixed
    q target -c 'CREATE DATABASE mixed_spool'
    TG="host=127.0.0.1 port=$TARGET_PORT dbname=mixed_spool user=postgres"
    PGDATABASE_TEST=mixed_spool q target -f "$F/schema.sql"
    # the first segment (before ADD COLUMN) alone
    run --separate-stderr lm-apply --target "$TG" --spool "$F/spool"
    assert_success
    # then the target's ALTER and the rest of the stream in a second segment
    PGDATABASE_TEST=mixed_spool q target -c "$(alter_sql)"
    decode s_spool "$(lsn)" --spool "$F/spool"
    [ "$(ls "$F/spool"/seg-*.lmz | wc -l)" -eq 2 ]
    run --separate-stderr lm-apply --target "$TG" --spool "$F/spool" -v
    assert_success
    [[ "$stderr" == *"ended (marker)"* ]]
    DB=mixed_spool same mixed
    [ "$(PGDATABASE_TEST=mixed_spool q target -c "SELECT payload FROM lm.marker WHERE origin = 's_spool'")" = "$(marker 1)" ]
    # the two segments concatenated (as lm-migrate ships them through ssh),
    # on stdin and as one file: every segment is applied, not only the first
    local how
    for how in stdin file; do
        q target -c "CREATE DATABASE mixed_cat_$how"
        TG="host=127.0.0.1 port=$TARGET_PORT dbname=mixed_cat_$how user=postgres"
        PGDATABASE_TEST=mixed_cat_$how q target -f "$F/schema.sql" -c "$(alter_sql)"
        cat "$F/spool"/seg-*.lmz >"$BATS_TEST_TMPDIR/cat.lmz"
        # an origin of its own (origins are per cluster, not per database)
        if [ $how = stdin ]; then
            run --separate-stderr lm-apply --target "$TG" --origin "s_cat_$how" <"$BATS_TEST_TMPDIR/cat.lmz"
        else
            run --separate-stderr lm-apply --target "$TG" --origin "s_cat_$how" "$BATS_TEST_TMPDIR/cat.lmz"
        fi
        assert_success
        DB=mixed_cat_$how same mixed
        [ "$(PGDATABASE_TEST=mixed_cat_$how q target -c "SELECT payload FROM lm.marker WHERE origin = 's_cat_$how'")" = "$(marker 1)" ]
        [ "$(progress_of "s_cat_$how")" = "$(progress_of s_spool)" ]
    done
}

@test "lm-apply: the same stream applied twice: the second run changes nothing" {
    [ -f "$F/p2.lm" ] || skip "needs the pipe test's streams"
    use_db mixed
    xmins() {
        tgt -c 'SELECT string_agg(xmin::text, $$,$$ ORDER BY id) FROM "Sch ema".items'
        tgt -c 'SELECT string_agg(xmin::text, $$,$$ ORDER BY a, b) FROM bag'
        tgt -c "SELECT xmin FROM lm.progress WHERE origin = 's_pipe'"
    }
    before=$(xmins)
    pos=$(progress_of s_pipe)
    run --separate-stderr lm-apply --target "$TG" --progress "$F/p1.lm" "$F/p2.lm"
    assert_success
    [ "$(xmins)" = "$before" ]
    [ "$(progress_of s_pipe)" = "$pos" ]
    n=$(lm-cat --json "$F/p1.lm" "$F/p2.lm" | jq -s '[.[] | select(.type == "commit")] | length')
    [[ "$stderr" == *"0 transactions applied, $n skipped (already applied), 0 rows"*"(done)"* ]]
    same
}

@test "lm-apply: --progress: redrawn in place on a terminal, plain lines with =always in a log, nothing by default there; the lag ends at 0" {
    use_db mixed
    # LM_PROGRESS_TTY=1 stands for a terminal (progress.h)
    run --separate-stderr env LM_PROGRESS_TTY=1 lm-apply --target "$TG" "$F/p1.lm" "$F/p2.lm"
    assert_success
    [[ $stderr == *$'\r\e[2K'"0 transactions applied"*"(done)"$'\n\r\e[2K'"lag 0 B ("*" read), 0s behind the source's commits"* ]]
    # not a terminal: nothing by default (lm-migrate's logs stay as they were)
    run --separate-stderr lm-apply --target "$TG" "$F/p1.lm" "$F/p2.lm"
    assert_success
    [[ $stderr != *"transactions applied"* ]]
    # =always in a log: each line with the program's name, no escape sequence
    run --separate-stderr lm-apply --target "$TG" --progress=always "$F/p1.lm" "$F/p2.lm"
    assert_success
    [[ $stderr == *"lm-apply: 0 transactions applied"*"(done)"$'\n'"lm-apply: lag 0 B ("* ]]
    [[ $stderr != *$'\e'* && $stderr != *$'\r'* ]]
    # =never on a terminal: nothing
    run --separate-stderr env LM_PROGRESS_TTY=1 lm-apply --target "$TG" --progress=never "$F/p1.lm"
    assert_success
    [[ $stderr != *"transactions applied"* ]]
    run --separate-stderr lm-apply --target "$TG" --progress=sometimes "$F/p1.lm"
    [ "$status" -eq 2 ]
    [[ $stderr == *'invalid value "sometimes" for option --progress: use auto, always or never'* ]]
}

# -------------------------------------------------------------- exactly once

@test "lm-apply: kill -9 at several points of a long stream: target equals source, the origin never goes back" {
    both_dbs killed
    both -c "CREATE TABLE k (id int PRIMARY KEY, v int, pad text)"
    pub_slots s_kill
    # 200k rows in 2000 transactions, with updates and deletes
    src -c "DO \$\$ BEGIN FOR i IN 0..1999 LOOP
        INSERT INTO k SELECT g, g, md5(g::text) FROM generate_series(i * 100 + 1, i * 100 + 100) g;
        UPDATE k SET v = v + 1 WHERE id = i * 100 + 1;
        IF i % 10 = 0 THEN DELETE FROM k WHERE id = i * 100 + 2; END IF;
        COMMIT; END LOOP; END \$\$"
    decode s_kill "$(lsn)" >"$F/k.lm"
    last=0/0
    for delay in 0.5 1.0 1.5; do
        # the stream is fed slowly, so that each kill lands mid-stream however
        # fast the machine applies
        bg_prog APPLY_PID "$T/apply" bash -c '
            throttle() { local i=0 size; size=$(stat -c %s "$1")
                while [ $((i * 32768)) -lt "$size" ]; do
                    dd if="$1" bs=32768 skip=$i count=1 2>/dev/null; i=$((i + 1)); sleep 0.02; done; }
            exec lm-apply --target "$0" --ack "$1" <(throttle "$2") 2>>"$3"' \
            "$TG" "$T/ack" "$F/k.lm" "$T/apply.err"
        sleep "$delay"
        kill -9 "$APPLY_PID"
        wait_exit "$T/apply"
        APPLY_PID=
        # the killed session's backend lets go of the origin
        wait_for 10 no_apply_session
        # no position yet (nothing committed) counts as 0/0
        pos=$(progress_of s_kill)
        pos=${pos:-0/0}
        echo "after ${delay}s: $pos"
        lsn_le "$last" "$pos"
        last=$pos
    done
    [ "$last" != 0/0 ]
    # a kill that left everything applied would prove nothing
    final=$(last_commit_end "$F/k.lm")
    ! lsn_le "$final" "$last"
    run --separate-stderr lm-apply --target "$TG" --ack "$T/ack" "$F/k.lm"
    assert_success
    [[ "$stderr" != *duplicate* ]]
    ! grep -q duplicate "$T/apply.err"
    same
    [ "$(progress_of s_kill)" = "$final" ]
    # the ack lines never go backwards and end at the final position
    prev=0/0
    while read -r a; do
        lsn_le "$prev" "$a"
        prev=$a
    done <"$T/ack"
    [ "$prev" = "$final" ]
}

@test "lm-apply: a table re-copied under a later snapshot: changes before its sync position are skipped" {
    both_dbs synced
    both -c "CREATE TABLE st (id int PRIMARY KEY, v text)" -c "CREATE TABLE other (id int PRIMARY KEY)"
    pub_slots s_sync
    src -c "INSERT INTO st SELECT g, 'a' FROM generate_series(1, 10) g" -c "INSERT INTO other VALUES (1)"
    X=$(lsn)
    # the re-copy: the target's table as of X, with its sync position
    src -c "COPY st TO STDOUT" | tgt -c "COPY st FROM STDIN"
    # lm-apply on a stream without transactions creates the lm schema
    decode s_sync 0/1 >"$T/empty.lm"
    run lm-apply --target "$TG" "$T/empty.lm"
    assert_success
    [ "$(tgt -c "SELECT slot FROM lm.origin")" = s_sync ]
    tgt -c "INSERT INTO lm.sync (nspname, relname, sync_lsn) VALUES ('public', 'st', '$X')"
    # changes after X
    src -c "UPDATE st SET v = 'b' WHERE id <= 3" -c "INSERT INTO st SELECT g, 'c' FROM generate_series(11, 20) g" \
        -c "DELETE FROM st WHERE id = 5" -c "INSERT INTO other VALUES (2)"
    decode s_sync "$(lsn)" >"$T/s.lm"
    run --separate-stderr lm-apply --target "$TG" "$T/s.lm"
    assert_success
    [[ "$stderr" != *duplicate* ]]
    same
}

# ------------------------------------------------------------ broken input

@test "lm-apply: an empty stream exits 7, random bytes exit 6, a truncated stream 7 after its complete transactions" {
    both_dbs broken
    run --separate-stderr lm-apply --target "$TG" </dev/null
    [ "$status" -eq 7 ]
    [[ "$stderr" == *empty* ]]
    head -c 4096 /dev/urandom >"$T/random"
    run --separate-stderr lm-apply --target "$TG" "$T/random"
    [ "$status" -eq 6 ]
    [ "$(tgt -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'lm'")" = 0 ]
}

@test "lm-apply: a commit time out of range (lm-testgen) exits 6 naming it; nothing applied, no progress" {
    both_dbs badts
    tgt -c "CREATE TABLE t (id int PRIMARY KEY, name text, data bytea, \"note \"\"quoted\"\"\" varchar(10))"
    lm-testgen --big 10 --commit-ts 9223372036854775807 >"$T/ts.lm"
    run --separate-stderr lm-apply --target "$TG" "$T/ts.lm"
    [ "$status" -eq 6 ]
    [[ "$stderr" == *"malformed begin record at offset "*"timestamp 9223372036854775807 is out of range"* ]]
    [ "$(tgt -c "SELECT count(*) FROM t")" = 0 ]
    [ "$(tgt -c "SELECT count(*) FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
                 WHERE n.nspname = 'lm' AND c.relname = 'progress'")" = 0 ] ||
        [ "$(tgt -c "SELECT count(*) FROM lm.progress")" = 0 ]
}

@test "lm-apply: a 32 KB zstd bomb whose block claims 1 GiB exits 6 in 600 MB of address space, no out of memory" {
    both_dbs bomb
    lm-testgen --bomb 1073741824 >"$T/bomb"
    limit=(bash -c 'ulimit -v 600000 && exec "$@"' _)
    # ASan reserves terabytes of address space: no limit there
    [ "${SANITIZE:-0}" = 1 ] && limit=()
    run --separate-stderr "${limit[@]}" lm-apply --target "$TG" "$T/bomb"
    [ "$status" -eq 6 ]
    [[ "$stderr" == *"bad block length 1073741824 at offset 63 (a block holds 1 to 268435456 bytes)"* ]]
    [[ "$stderr" != *"out of memory"* ]]
}

@test "lm-apply: a corrupt block mid-stream exits 6 naming its offset; the transactions before it are applied, none after" {
    both_dbs corrupt
    both -c "CREATE TABLE c (id int PRIMARY KEY, txn int, pad text)"
    pub_slots s_corrupt
    src -c "DO \$\$ BEGIN FOR i IN 1..60 LOOP
        INSERT INTO c SELECT i * 1000 + g, i, repeat(md5(g::text), 4) FROM generate_series(1, 100) g;
        COMMIT; END LOOP; END \$\$"
    decode s_corrupt "$(lsn)" >"$T/c.lm"
    lm-cat --json "$T/c.lm" >"$T/c.json"
    # damage the record in the middle of the 40th transaction
    off=$(jq -rs '[.[] | select(.type == "begin")][39].offset' "$T/c.json")
    flip_byte "$T/c.lm" $((off + 400))
    run --separate-stderr lm-apply --target "$TG" "$T/c.lm"
    [ "$status" -eq 6 ]
    [[ "$stderr" == *checksum* ]]
    block=$(grep -o 'at offset [0-9]*' <<<"$stderr" | head -1 | grep -o '[0-9]*$')
    [ -n "$block" ]
    [ "$block" -le $((off + 400)) ]
    # every transaction whose commit lies before the damaged block, whole
    n=$(jq -s --argjson b "$block" '[.[] | select(.type == "commit" and .offset < $b)] | length' "$T/c.json")
    [ "$n" -gt 0 ]
    [ "$n" -lt 60 ]
    [ "$(tgt -c "SELECT count(*) || ' ' || count(DISTINCT txn) || ' ' || coalesce(max(txn), 0) FROM c")" = "$((n * 100)) $n $n" ]
    last=$(jq -rs --argjson b "$block" '[.[] | select(.type == "commit" and .offset < $b)][-1].end_lsn' "$T/c.json")
    [ "$(progress_of s_corrupt)" = "$last" ]
}

@test "lm-apply: a target missing a table or a column exits 4 naming it; nothing of that transaction is applied" {
    both_dbs missing
    both -c "CREATE TABLE a (id int PRIMARY KEY)"
    src -c "CREATE TABLE \"b T\" (id int PRIMARY KEY, v text)" -c "CREATE TABLE c (id int PRIMARY KEY, v text, \"new Col\" int)"
    tgt -c "CREATE TABLE c (id int PRIMARY KEY, v text)"
    pub_slots s_missing
    src -c "INSERT INTO a VALUES (1)"
    E1=$(lsn)
    src -c "BEGIN" -c "INSERT INTO a VALUES (2)" -c "INSERT INTO \"b T\" VALUES (1, 'x')" -c "COMMIT"
    decode s_missing "$(lsn)" >"$T/m1.lm"
    run --separate-stderr lm-apply --target "$TG" "$T/m1.lm"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'"b T"'*"does not exist"* ]] || [[ "$stderr" == *'b T'*"does not exist"* ]]
    # the complete transaction before it is applied, and the origin is there
    [ "$(tgt -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM a")" = 1 ]
    lsn_le "$(progress_of s_missing)" "$E1"
    [ -n "$(progress_of s_missing)" ]
    # the column
    tgt -c "CREATE TABLE \"b T\" (id int PRIMARY KEY, v text)"
    E2=$(lsn)
    src -c "BEGIN" -c "INSERT INTO a VALUES (3)" -c "INSERT INTO c VALUES (1, 'y', 7)" -c "COMMIT"
    decode s_missing "$(lsn)" >"$T/m2.lm"
    run --separate-stderr lm-apply --target "$TG" "$T/m2.lm"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'column "new Col"'* ]]
    [ "$(tgt -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM a")" = 1,2 ]
    [ "$(tgt -c "SELECT count(*) FROM c")" = 0 ]
    tgt -c "ALTER TABLE c ADD COLUMN \"new Col\" int"
    run --separate-stderr lm-apply --target "$TG" "$T/m2.lm"
    assert_success
    same
}

@test "lm-apply: a column the target lacks, met after the table's earlier definition in the same group: exit 4, no crash" {
    both_dbs redef
    both -c "CREATE TABLE a (id int PRIMARY KEY)" -c "CREATE TABLE c (id int PRIMARY KEY, v text)"
    pub_slots s_redef
    src -c "INSERT INTO c VALUES (1, 'x')" -c "INSERT INTO a VALUES (1)"
    src -c "ALTER TABLE c ADD COLUMN w int, ADD COLUMN \"new Col\" int"
    src -c "INSERT INTO c VALUES (2, 'y', 5, 7)"
    decode s_redef "$(lsn)" >"$T/redef.lm"
    # one group: the table's first definition, a complete transaction, then
    # the new definition whose third column the target lacks. Dropping the
    # group's last transaction puts the first definition back, which frees
    # the half-read new one: MALLOC_PERTURB_ makes fresh memory garbage, so
    # freeing what was never set crashes instead of passing by luck.
    run --separate-stderr env MALLOC_PERTURB_=165 lm-apply --target "$TG" "$T/redef.lm"
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'column "w"'* ]]
    # the complete transactions before it are applied
    [ "$(tgt -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM c")" = 1 ]
    [ "$(tgt -c "SELECT count(*) FROM a")" = 1 ]
    tgt -c "ALTER TABLE c ADD COLUMN w int, ADD COLUMN \"new Col\" int"
    run --separate-stderr lm-apply --target "$TG" "$T/redef.lm"
    assert_success
    same
}

@test "lm-apply: a stream from another source system into the same origin exits 8" {
    both_dbs frgn
    both -c "CREATE TABLE f (id int PRIMARY KEY)"
    pub_slots s_frgn
    src -c "INSERT INTO f VALUES (1)"
    decode s_frgn "$(lsn)" >"$T/f1.lm"
    run lm-apply --target "$TG" --origin shared "$T/f1.lm"
    assert_success
    # the other cluster: same database name, table, slot and origin
    q other -c "CREATE DATABASE frgn"
    PGDATABASE_TEST=frgn q other -c "CREATE TABLE f (id int PRIMARY KEY)" -c "CREATE PUBLICATION p FOR ALL TABLES" \
        -c "SELECT 1 FROM pg_create_logical_replication_slot('s_frgn', 'pgoutput')" >/dev/null
    PGDATABASE_TEST=frgn q other -c "INSERT INTO f VALUES (2)"
    E=$(PGDATABASE_TEST=frgn q other -c "SELECT pg_current_wal_lsn()")
    PGDATABASE_TEST=frgn q other -c "SELECT 1 FROM pg_logical_emit_message(false, 'lm-test', 'tick')" >/dev/null
    lm-decode --source "host=127.0.0.1 port=$OTHER_PORT dbname=frgn user=postgres" --slot s_frgn \
        --publication p --endpos "$E" >"$T/f2.lm" 2>/dev/null
    run --separate-stderr lm-apply --target "$TG" --origin shared "$T/f2.lm"
    [ "$status" -eq 8 ]
    [[ "$stderr" == *"another source"* ]]
    [ "$(tgt -c "SELECT string_agg(id::text, ',') FROM f")" = 1 ]
}

@test "lm-apply: a target role without the needed privileges exits 4 with a hint" {
    both_dbs privs
    tgt -c "CREATE ROLE lm_weak LOGIN"
    both -c "CREATE TABLE w (id int PRIMARY KEY)"
    pub_slots s_privs
    src -c "INSERT INTO w VALUES (1)"
    decode s_privs "$(lsn)" >"$T/w.lm"
    local weak="host=127.0.0.1 port=$TARGET_PORT dbname=privs user=lm_weak"
    run --separate-stderr lm-apply --target "$weak" "$T/w.lm"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *session_replication_role* ]]
    [[ "$stderr" == *hint:* ]]
    # allowed that, but not the origin functions
    tgt -c "GRANT SET ON PARAMETER session_replication_role TO lm_weak" -c "GRANT CREATE ON DATABASE privs TO lm_weak"
    run --separate-stderr lm-apply --target "$weak" "$T/w.lm"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"replication origin"* ]]
    [[ "$stderr" == *"hint:"*GRANT* ]]
    [ "$(tgt -c "SELECT count(*) FROM w")" = 0 ]
}

# ------------------------------------------------------ status, ack, spool

@test "lm-apply: --status prints the origin's position; --json parses" {
    [ -f "$F/p2.lm" ] || skip "needs the pipe test's streams"
    use_db mixed
    run --separate-stderr lm-apply --target "$TG" --origin s_pipe --status --json
    assert_success
    [ "$(jq -r .position <<<"$output")" = "$(progress_of s_pipe)" ]
    [ "$(jq -r .slot <<<"$output")" = s_pipe ]
    [ "$(jq -r .source_system_identifier <<<"$output")" = "$(q source -c "SELECT system_identifier FROM pg_control_system()")" ]
    run lm-apply --target "$TG" --origin s_pipe --status
    assert_success
    assert_line "position: $(progress_of s_pipe)"
    run --separate-stderr lm-apply --target "$TG" --origin nosuch --status --json
    assert_success
    [ "$(jq -r .position <<<"$output")" = null ]
    run -2 lm-apply --target "$TG" --status
}

@test "lm-apply: --status on a target lm has never written to: no position, exit 0" {
    q target -c "CREATE DATABASE fresh"
    run --separate-stderr lm-apply --target "host=127.0.0.1 port=$TARGET_PORT dbname=fresh user=postgres" \
        --origin nothing --status --json
    echo "$stderr"
    assert_success
    [ "$(jq -r .position <<<"$output")" = null ]
    # and it left nothing behind
    [ "$(PGDATABASE_TEST=fresh q target -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'lm'")" = 0 ]
}

@test "lm-apply: --spool --follow applies live while lm-decode writes, crosses a shutdown, stops at endpos; --prune" {
    both_dbs live
    both -c "CREATE TABLE l (id int PRIMARY KEY, v text)"
    pub_slots s_live
    mkdir "$T/spool"
    bg_prog APPLY_PID "$T/apply" sh -c 'exec lm-apply --target "$0" --spool "$1" --follow --prune --ack "$2" -vv 2>"$3"' \
        "$TG" "$T/spool" "$T/ack" "$T/apply.err"
    bg_prog DEC_PID "$T/dec" sh -c 'exec lm-decode --source "$0" --slot s_live --publication p --spool "$1" \
        --segment-time 1 2>"$2"' "$S" "$T/spool" "$T/dec.err"
    n_l() { [ "$(tgt -c "SELECT count(*) FROM l")" = "$1" ]; }
    for i in 1 2 3; do
        src -c "INSERT INTO l SELECT g, 'r$i' FROM generate_series($i * 100 + 1, $i * 100 + 100) g"
        start=$SECONDS
        wait_for 5 n_l $((i * 100))
        echo "round $i: $((SECONDS - start)) s"
        sleep 1
    done
    # lm-decode stops with a shutdown end; lm-apply goes on waiting
    kill -TERM "$DEC_PID"
    wait_exit "$T/dec"
    DEC_PID=
    [ "$RC" -eq 0 ]
    sleep 1
    kill -0 "$APPLY_PID"
    src -c "UPDATE l SET v = 'late' WHERE id % 7 = 0" -c "DELETE FROM l WHERE id % 11 = 0"
    run --separate-stderr decode s_live "$(lsn)" --spool "$T/spool"
    assert_success
    # the end record (endpos) ends lm-apply too
    wait_exit "$T/apply"
    APPLY_PID=
    cat "$T/apply.err"
    [ "$RC" -eq 0 ]
    grep -q "ended (endpos)" "$T/apply.err"
    same
    # applied segments were pruned; acks increased
    [ "$(ls "$T/spool"/seg-*.lmz 2>/dev/null | wc -l)" -le 1 ]
    prev=0/0
    while read -r a; do lsn_le "$prev" "$a"; prev=$a; done <"$T/ack"
    [ "$prev" = "$(progress_of s_live)" ]
}

@test "lm-apply: --follow goes on by position when a restarted lm-decode's segments overlap what was read (its last status lost, the spool pruned)" {
    both_dbs overlap
    both -c "CREATE TABLE o (id int PRIMARY KEY, v text)"
    pub_slots s_ovl
    mkdir "$T/spool"
    # lm-decode's first run goes through a gate that can drop what it
    # sends (its status updates), as a source out of reach would
    local gport
    gport=$(free_port)
    bg_prog GATE_PID "$T/gate" lm-tcp-gate "$gport" "$SOURCE_PORT" "$T/gate.closed"
    wait_for 10 port_in_use "$gport"
    bg_prog APPLY_PID "$T/apply" sh -c 'exec lm-apply --target "$0" --spool "$1" --follow --prune -v 2>"$2"' \
        "$TG" "$T/spool" "$T/apply.err"
    bg_prog DEC_PID "$T/dec" sh -c 'exec lm-decode --source "$0" --slot s_ovl --publication p --spool "$1" \
        --segment-time 1 --status-interval 1 2>"$2"' \
        "host=127.0.0.1 port=$gport dbname=$DB user=postgres" "$T/spool" "$T/dec.err"
    n_o() { [ "$(tgt -c "SELECT count(*) FROM o")" = "$1" ]; }
    confirmed() { src -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 's_ovl'"; }
    acked() { lsn_le "$1" "$(confirmed)"; }
    src -c "INSERT INTO o SELECT g, 'a' FROM generate_series(1, 100) g"
    wait_for 30 n_o 100
    wait_for 30 acked "$(lsn)"
    local c
    c=$(confirmed)
    # lm-apply pauses; lm-decode's status updates are lost from now on
    kill -STOP "$APPLY_PID"
    touch "$T/gate.closed"
    src -c "INSERT INTO o SELECT g, 'b' FROM generate_series(101, 150) g"
    sleep 1.5   # a rotation: the next segment is finished before lm-apply opens it
    src -c "INSERT INTO o SELECT g, 'b' FROM generate_series(151, 200) g"
    sleep 1.5
    kill -TERM "$DEC_PID"
    wait_exit "$T/dec"
    DEC_PID=
    [ "$RC" -eq 0 ]
    ls -l "$T/spool"
    [ "$(ls "$T/spool"/seg-*.lmz | wc -l)" -ge 2 ]
    [ "$(confirmed)" = "$c" ]
    # lm-apply catches up and prunes every finished segment
    kill -CONT "$APPLY_PID"
    wait_for 30 n_o 200
    no_segments() { ! ls "$T/spool"/seg-* >/dev/null 2>&1; }
    wait_for 30 no_segments
    kill "$GATE_PID"
    GATE_PID=
    inactive() { [ "$(src -c "SELECT active FROM pg_replication_slots WHERE slot_name = 's_ovl'")" = f ]; }
    wait_for 30 inactive
    # lm-decode again: nothing in the spool, so it starts at the slot's
    # confirmed position, behind what lm-apply read
    bg_prog DEC_PID "$T/dec" sh -c 'exec lm-decode --source "$0" --slot s_ovl --publication p --spool "$1" \
        --segment-time 1 --status-interval 1 2>>"$2"' "$S" "$T/spool" "$T/dec.err"
    src -c "INSERT INTO o SELECT g, 'c' FROM generate_series(201, 300) g"
    sleep 1.5   # one rotation
    src -c "INSERT INTO o SELECT g, 'd' FROM generate_series(301, 400) g"
    ls -l "$T/spool"
    kill -TERM "$DEC_PID"
    wait_exit "$T/dec"
    DEC_PID=
    [ "$RC" -eq 0 ]
    run --separate-stderr decode s_ovl "$(lsn)" --spool "$T/spool"
    assert_success
    wait_exit "$T/apply"
    APPLY_PID=
    cat "$T/apply.err"
    [ "$RC" -eq 0 ]
    [ "$(tgt -c "SELECT count(*) FROM o")" = 400 ]
    same
}

@test "lm-apply: a column added between a small transaction and one that outgrows the group: both applied with their own definitions" {
    both_dbs splitddl
    both -c "CREATE TABLE sd (id int PRIMARY KEY, pad text)"
    pub_slots s_splitddl
    src -c "INSERT INTO sd VALUES (0, 'before')"
    both -c "ALTER TABLE sd ADD COLUMN extra text"
    src -c "INSERT INTO sd SELECT g, md5(g::text) || repeat('x', 60), 'e' || g FROM generate_series(1, 100000) g"
    decode s_splitddl "$(lsn)" -o "$T/splitddl.lm"
    run --separate-stderr lm-apply --target "$TG" "$T/splitddl.lm"
    echo "$stderr"
    assert_success
    same
}

@test "lm-apply: --spool without --follow reads each segment once and ends at the end of the partial one; a table's statements are prepared once across segments" {
    both_dbs once
    both -c "CREATE TABLE o (id int PRIMARY KEY, v text)"
    pub_slots s_once
    mkdir "$T/spool"
    bg_prog DEC_PID "$T/dec" sh -c 'exec lm-decode --source "$0" --slot s_once --publication p --spool "$1" \
        --segment-time 1 2>"$2"' "$S" "$T/spool" "$T/dec.err"
    for i in 1 2 3; do
        src -c "INSERT INTO o SELECT g, 'r$i' FROM generate_series($i * 100 + 1, $i * 100 + 100) g" \
            -c "UPDATE o SET v = 'u$i' WHERE id = 101"
        sleep 1.5
    done
    # everything durable in the spool, lm-decode killed with its partial
    kill_decoder_when_durable s_once
    ls "$T/spool"
    n=$(ls "$T/spool" | grep -c '^seg-')
    [ "$(ls "$T/spool" | grep -c '^seg-.*\.lmz$')" -ge 2 ]
    ls "$T/spool"/seg-*.partial
    run --separate-stderr timeout 60 lm-apply --target "$TG" --spool "$T/spool" -vv
    echo "$stderr"
    assert_success
    same
    # each segment read once: none read again after the partial
    [ "$(grep -c 'reading seg-' <<<"$stderr")" -eq "$n" ]
    # every segment starts with the relation again: unchanged, it keeps
    # its prepared statements (one UPDATE shape here), nothing piles up
    # on the target's session
    [ "$(grep -c 'preparing .*UPDATE' <<<"$stderr")" -eq 1 ]
}

@test "lm-apply: a finished spool segment that stops without its trailer (at a frame end) exits 7; what it holds is applied" {
    both_dbs cut
    both -c "CREATE TABLE c (id int PRIMARY KEY)"
    pub_slots s_cut
    mkdir "$T/spool"
    bg_prog DEC_PID "$T/dec" sh -c 'exec lm-decode --source "$0" --slot s_cut --publication p --spool "$1" 2>"$2"' \
        "$S" "$T/spool" "$T/dec.err"
    src -c "INSERT INTO c SELECT generate_series(1, 100)"
    kill_decoder_when_durable s_cut
    # the partial, cut at a transaction's frame end, named as a finished
    # segment: what a lost tail looks like
    p=$(ls "$T/spool"/seg-*.lmz.partial)
    start=${p##*/seg-}
    start=${start%.lmz.partial}
    mv "$p" "$T/spool/seg-$start-00000000FFFFFFFF.lmz"
    run --separate-stderr lm-apply --target "$TG" --spool "$T/spool"
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ $stderr == *"without its trailer"* ]]
    [ "$(tgt -c "SELECT count(*) FROM c")" = 100 ]
}

@test "lm-apply: a LATIN1 source into a UTF8 target: text arrives in the stream's encoding and is stored right" {
    q source -c "CREATE DATABASE enc ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    q target -c "CREATE DATABASE enc ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    use_db enc
    both -c "CREATE TABLE e (id int PRIMARY KEY, v text)"
    pub_slots s_enc
    src -c "INSERT INTO e VALUES (1, 'caf' || chr(233) || ' ' || chr(252) || 'ber'), (2, repeat(chr(246), 3))"
    src -c "UPDATE e SET v = v || chr(241) WHERE id = 2"
    decode s_enc "$(lsn)" -o "$T/enc.lm"
    lm-cat --json "$T/enc.lm" | head -1 | grep -q '"encoding":"LATIN1"'
    run --separate-stderr lm-apply --target "$TG" "$T/enc.lm"
    echo "$stderr"
    assert_success
    sql="SELECT string_agg(id || ':' || encode(convert_to(v, 'UTF8'), 'hex'), ',' ORDER BY id) FROM e"
    [ "$(src -c "$sql")" = "$(tgt -c "$sql")" ]
    [ "$(tgt -c "SELECT v FROM e WHERE id = 1")" = "café über" ]
}

@test "lm-apply: SIGTERM while it waits for input (an idle pipe, an idle spool with --follow) exits 0 at once" {
    both_dbs term
    mkdir "$T/spool"
    mkfifo "$T/fifo"
    bg_prog APPLY_PID "$T/a1" sh -c 'exec lm-apply --target "$0" <"$1"' "$TG" "$T/fifo"
    local w
    exec {w}>"$T/fifo"   # a writer that writes nothing
    bg_prog DEC_PID "$T/a2" lm-apply --target "$TG" --origin term --spool "$T/spool" --follow
    sleep 1
    kill -TERM "$APPLY_PID" "$DEC_PID"
    wait_exit "$T/a1"
    exec {w}>&-
    [ "$RC" -eq 0 ]
    wait_exit "$T/a2"
    [ "$RC" -eq 0 ]
    APPLY_PID= DEC_PID=
}

@test "lm-apply: replica identity on a unique index besides the primary key: updates that move primary key values apply in order" {
    both_dbs ri
    both -c "CREATE TABLE ri (id int PRIMARY KEY, code text NOT NULL UNIQUE, v int)" \
         -c "ALTER TABLE ri REPLICA IDENTITY USING INDEX ri_code_key"
    both -c "INSERT INTO ri SELECT g, 'c' || g, 0 FROM generate_series(1, 2000) g"
    pub_slots s_ri
    # every id moves up by one, highest first (the only order the source
    # allows): the code, the replica identity, stays
    src -c "DO \$\$ BEGIN FOR i IN REVERSE 2000..1 LOOP UPDATE ri SET id = i + 1, v = i WHERE id = i; END LOOP; END \$\$"
    decode s_ri "$(lsn)" -o "$T/ri.lm"
    run --separate-stderr lm-apply --target "$TG" "$T/ri.lm"
    echo "$stderr"
    assert_success
    same
}

# ------------------------------------------------------------------ memory

@test "lm-apply: peak memory stays under 64 MB on one large transaction (LM_BIG_MB, default 40)" {
    local mb=${LM_BIG_MB:-40}
    both_dbs big
    both -c "CREATE TABLE big (id int PRIMARY KEY, pad text)" -c "CREATE TABLE bigu (id int PRIMARY KEY, v int, pad text)"
    both -c "INSERT INTO bigu SELECT g, 0, repeat('y', 90) FROM generate_series(1, 50000) g"
    pub_slots s_big
    # ~130 bytes a row in the stream
    src -c "BEGIN" -c "INSERT INTO big SELECT g, md5(g::text) || repeat('x', 90) FROM generate_series(1, $((mb * 8000))) g" \
        -c "UPDATE bigu SET v = v + 1" -c "COMMIT"
    decode s_big "$(lsn)" --spool "$T/spool"
    run --separate-stderr /usr/bin/time -f "maxrss %M" lm-apply --target "$TG" --spool "$T/spool"
    assert_success
    kb=$(grep -o 'maxrss [0-9]*' <<<"$stderr" | grep -o '[0-9]*')
    echo "peak RSS ${kb} kB for ${mb} MB"
    rss_below "$kb" 65536
    # everything arrived (a cheap comparison: the content hashes cost more
    # than the apply here)
    sums="SELECT count(*), sum(hashtext(pad)), (SELECT sum(v) FROM bigu) FROM big"
    [ "$(src -c "$sums")" = "$(tgt -c "$sums")" ]
}

@test "lm-apply: a transaction that outgrows its group after smaller ones: every change applied once" {
    # the kept records of a group are bounded (8 MB): a transaction that
    # passes the bound after complete ones in the same group splits it
    # (the complete ones commit, it goes on alone); the change that made
    # it pass must be applied once, not by the split and again after it
    both_dbs split
    both -c "CREATE TABLE sk (id int PRIMARY KEY, pad text)" -c "CREATE TABLE sn (id int, pad text)"
    both -c "ALTER TABLE sn REPLICA IDENTITY FULL"
    pub_slots s_split
    src -c "INSERT INTO sk VALUES (0, 'first')" -c "INSERT INTO sn VALUES (0, 'first')"
    # ~12 MB of changes in one transaction, alternating the two tables
    src -c "BEGIN" -c "INSERT INTO sk SELECT g, md5(g::text) || repeat('x', 60) FROM generate_series(1, 50000) g" \
        -c "INSERT INTO sn SELECT g, md5(g::text) || repeat('x', 60) FROM generate_series(1, 50000) g" -c "COMMIT"
    decode s_split "$(lsn)" -o "$T/split.lm"
    run --separate-stderr lm-apply --target "$TG" "$T/split.lm"
    assert_success
    [ "$(tgt -c "SELECT count(*), count(DISTINCT id) FROM sn")" = "50001|50001" ]
    same
}

# ------------------------------------------------- identity, odd tables

@test "lm-apply: identity columns (ALWAYS and BY DEFAULT; the key or not; keyless FULL): inserts, runs, updates that keep or move the identity value, deletes" {
    both_dbs ident
    both -c "CREATE TABLE ida (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)" \
         -c "CREATE TABLE idd (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text)" \
         -c "CREATE TABLE idk (k text PRIMARY KEY, n int GENERATED ALWAYS AS IDENTITY, v text, big text)" \
         -c "CREATE TABLE idf (n int GENERATED ALWAYS AS IDENTITY, v text)" \
         -c "ALTER TABLE idf REPLICA IDENTITY FULL"
    pub_slots s_ident
    src >/dev/null <<'SQL'
INSERT INTO ida (v) VALUES ('a'), ('b'), ('c');
INSERT INTO ida (v) SELECT 'run ' || g FROM generate_series(1, 150) g;
INSERT INTO ida OVERRIDING SYSTEM VALUE VALUES (1000, 'overriding');
UPDATE ida SET v = 'updated' WHERE id <= 2;
UPDATE ida SET id = DEFAULT WHERE id = 3;
BEGIN;
UPDATE ida SET v = 'twice' WHERE id = 4;
UPDATE ida SET id = DEFAULT, v = 'moved' WHERE id = 4;
COMMIT;
DELETE FROM ida WHERE id IN (5, 1000);
INSERT INTO idd (v) VALUES ('d1'), ('d2');
INSERT INTO idd VALUES (500, 'explicit');
INSERT INTO idd (v) SELECT 'run ' || g FROM generate_series(1, 150) g;
UPDATE idd SET id = 600 WHERE id = 1;
UPDATE idd SET v = 'upd' WHERE id = 2;
DELETE FROM idd WHERE id = 500;
INSERT INTO idk (k, v, big) VALUES ('k1', 'a', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 300) g)),
  ('k2', 'b', NULL), ('k3', 'c', NULL);
UPDATE idk SET v = 'big kept' WHERE k = 'k1';
UPDATE idk SET v = 'plain' WHERE k = 'k2';
UPDATE idk SET n = DEFAULT WHERE k = 'k1';
UPDATE idk SET k = 'k3 moved' WHERE k = 'k3';
DELETE FROM idk WHERE k = 'k2';
INSERT INTO idf (v) VALUES ('f'), ('f'), ('g');
INSERT INTO idf OVERRIDING SYSTEM VALUE VALUES (1, 'f');
UPDATE idf SET v = 'one' WHERE ctid = (SELECT ctid FROM idf WHERE n = 1 LIMIT 1);
UPDATE idf SET n = DEFAULT WHERE v = 'g';
DELETE FROM idf WHERE ctid = (SELECT ctid FROM idf WHERE n = 1 LIMIT 1);
SQL
    decode s_ident "$(lsn)" -o "$T/ident.lm"
    run --separate-stderr lm-apply --target "$TG" "$T/ident.lm"
    echo "$stderr"
    assert_success
    same
    # the identity values the source drew arrived, and the TOASTed value stayed
    [ "$(tgt -c "SELECT count(*) FROM ida WHERE id IN (3, 4, 5, 1000)")" = 0 ]
    [ "$(tgt -c "SELECT v FROM ida WHERE id = (SELECT max(id) FROM ida)")" = moved ]
    [ "$(tgt -c "SELECT length(big) FROM idk WHERE k = 'k1'")" = 9600 ]
    [ "$(tgt -c "SELECT n FROM idk WHERE k = 'k1'")" = 4 ]
    [ "$(tgt -c "SELECT count(*) FROM idf WHERE n = 4 AND v = 'g'")" = 1 ]
}

@test "lm-apply: a table without columns and a table whose every column is generated (REPLICA IDENTITY FULL), and one with some generated columns: inserts, runs, updates, deletes" {
    both_dbs oddcols
    both -c "CREATE TABLE nocols ()" -c "ALTER TABLE nocols REPLICA IDENTITY FULL" \
         -c "CREATE TABLE gen (a int GENERATED ALWAYS AS (1) STORED, b text GENERATED ALWAYS AS ('x') STORED)" \
         -c "ALTER TABLE gen REPLICA IDENTITY FULL" \
         -c "CREATE TABLE gmix (id int PRIMARY KEY, v int, g int GENERATED ALWAYS AS (v * 2) STORED, w text)"
    pub_slots s_odd
    src >/dev/null <<'SQL'
INSERT INTO nocols DEFAULT VALUES;
INSERT INTO nocols DEFAULT VALUES;
INSERT INTO nocols SELECT FROM generate_series(1, 150);
DELETE FROM nocols WHERE ctid = (SELECT ctid FROM nocols LIMIT 1);
DELETE FROM nocols WHERE ctid IN (SELECT ctid FROM nocols LIMIT 10);
INSERT INTO gen DEFAULT VALUES;
INSERT INTO gen DEFAULT VALUES;
INSERT INTO gen SELECT FROM generate_series(1, 150);
UPDATE gen SET a = DEFAULT WHERE ctid = (SELECT ctid FROM gen LIMIT 1);
DELETE FROM gen WHERE ctid IN (SELECT ctid FROM gen LIMIT 3);
INSERT INTO gmix (id, v, w) SELECT g, g, 'w' FROM generate_series(1, 150) g;
INSERT INTO gmix (id, v) VALUES (1000, 1);
UPDATE gmix SET v = v + 1 WHERE id <= 10;
UPDATE gmix SET id = 2000, v = 7 WHERE id = 11;
DELETE FROM gmix WHERE id = 12;
SQL
    decode s_odd "$(lsn)" -o "$T/odd.lm"
    run --separate-stderr lm-apply --target "$TG" "$T/odd.lm"
    echo "$stderr"
    assert_success
    same
    [ "$(tgt -c "SELECT count(*) FROM nocols")" = 141 ]
    [ "$(tgt -c "SELECT count(*) FROM gen")" = 149 ]
    [ "$(tgt -c "SELECT g FROM gmix WHERE id = 2000")" = 14 ]
}

@test "lm-apply: a row moved for a new identity value keeps the columns only the target has" {
    both_dbs identx
    src -c "CREATE TABLE idx (k int PRIMARY KEY, n int GENERATED ALWAYS AS IDENTITY, v text)"
    tgt -c "CREATE TABLE idx (k int PRIMARY KEY, n int GENERATED ALWAYS AS IDENTITY, v text, note text DEFAULT 'default')"
    pub_slots s_identx
    src -c "INSERT INTO idx (k, v) VALUES (1, 'a'), (2, 'b')"
    decode s_identx "$(lsn)" -o "$T/x1.lm"
    run --separate-stderr lm-apply --target "$TG" "$T/x1.lm"
    assert_success
    tgt -c "UPDATE idx SET note = 'target only'"
    src -c "UPDATE idx SET n = DEFAULT WHERE k = 1" -c "UPDATE idx SET v = 'c' WHERE k = 2"
    decode s_identx "$(lsn)" -o "$T/x2.lm"
    run --separate-stderr lm-apply --target "$TG" "$T/x2.lm"
    echo "$stderr"
    assert_success
    run tgt -c "SELECT k, n, v, note FROM idx ORDER BY k"
    assert_output "1|3|a|target only
2|2|c|target only"
}

@test "lm-apply: a target without a free replication origin state is exit 4 naming max_replication_slots, not a privilege error" {
    pg_start tiny "max_replication_slots = 1"
    both_dbs nostate
    q tiny -c "CREATE DATABASE nostate"
    # the one state the cluster has, taken by an origin with progress
    q tiny -c "SELECT pg_replication_origin_create('busy')" \
        -c "SELECT pg_replication_origin_advance('busy', '0/10')" >/dev/null
    src -c "CREATE TABLE ns (k int PRIMARY KEY)"
    pub_slots s_nostate
    src -c "INSERT INTO ns VALUES (1)"
    decode s_nostate "$(lsn)" -o "$T/ns.lm"
    run --separate-stderr lm-apply --target "host=127.0.0.1 port=$TINY_PORT dbname=nostate user=postgres" "$T/ns.lm"
    pg_stop tiny
    [ "$status" -eq 4 ]
    [[ $stderr == *"no free replication origin state"* ]]
    [[ $stderr == *"max_replication_slots"* ]]
    [[ $stderr != *"may not"* ]]
}

@test "lm-apply: a spool segment holding a schema archive is refused (exit 6) before pg_restore runs; so is one after an lm-decode header, and under --changes-only; a spool others may write to exits 9" {
    both_dbs planted
    # an archive whose pre-data would run SQL on the target
    src -c "CREATE TABLE planted (id int); CREATE FUNCTION planted_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'"
    pg_dump -Fc --schema-only -f "$T/planted.dump" "$S"
    mkdir -m 700 "$T/spool"
    lm-testgen --archive "$T/planted.dump" --producer lm-snapshot --slot planted --end trailer --compress \
        >"$T/spool/seg-0000000001000000-0000000001000130.lmz"
    run -6 --separate-stderr lm-apply --target "$TG" --origin planted --spool "$T/spool"
    [[ $stderr == *"archive record at offset"*"in a change stream"* ]]
    [ "$(tgt -c "SELECT count(*) FROM pg_class WHERE relname = 'planted'")" = 0 ]
    [ "$(tgt -c "SELECT count(*) FROM pg_proc WHERE proname = 'planted_fn'")" = 0 ]
    # the same archive behind a header that names lm-decode, through a pipe
    # (no slot and no --origin: no replication origin is set up for it,
    # this file's tests use up the target's replication state slots)
    lm-testgen --archive "$T/planted.dump" --producer "lm-decode 0.1.0" --slot "" >"$T/dec.lm"
    run -6 --separate-stderr lm-apply --target "$TG" "$T/dec.lm"
    [ "$(tgt -c "SELECT count(*) FROM pg_class WHERE relname = 'planted'")" = 0 ]
    # whatever the producer says, under --changes-only
    lm-testgen --archive "$T/planted.dump" --slot planted >"$T/snap.lm"
    run -6 --separate-stderr lm-apply --target "$TG" --origin planted --changes-only "$T/snap.lm"
    [ "$(tgt -c "SELECT count(*) FROM pg_class WHERE relname = 'planted'")" = 0 ]
    # a spool others may write to, another user's: refused, nothing read
    chmod 777 "$T/spool"
    run -9 --separate-stderr lm-apply --target "$TG" --origin planted --spool "$T/spool"
    [[ $stderr == *"spool directory \"$T/spool\" is not a directory of this user"* ]]
    chmod 700 "$T/spool"
    chown nobody "$T/spool"
    run -9 --separate-stderr lm-apply --target "$TG" --origin planted --spool "$T/spool"
    [ "$(tgt -c "SELECT count(*) FROM pg_class WHERE relname = 'planted'")" = 0 ]
    # lm-snapshot's own stream through a pipe is still loaded
    run -0 --separate-stderr lm-apply --target "$TG" --origin planted "$T/snap.lm"
    [ "$(tgt -c "SELECT count(*) FROM pg_class WHERE relname = 'planted'")" = 1 ]
}
