#!/usr/bin/env bats
# lm-snapshot: schema and data as of an exported snapshot, resumable, and a
# stream mode. Real clusters; each test copies into a database of its own.

load helpers
bats_require_minimum_version 1.5.0


# hold_snapshot DB [lm-slot options...]: export a snapshot of DB on the source
# and keep it importable; sets SNAP, SYNC_LSN (empty with psql) and HOLD_PID.
# lm-slot create --hold when it is built, else a psql session in a
# repeatable read transaction (LM_TEST_HOLDER=psql forces that).
hold_snapshot() {
    local db=$1; shift
    local dir=$BATS_TEST_TMPDIR/hold
    mkdir -p "$dir"
    SYNC_LSN=
    if [ -x "$LM_ROOT/bin/lm-slot/lm-slot" ] && [ "${LM_TEST_HOLDER:-}" != psql ]; then
        HOLD_SLOT=snap_$(( RANDOM % 100000 ))
        slot_snapshot "$dir" --source "host=127.0.0.1 port=$SOURCE_PORT dbname=$db user=postgres" \
            --slot "$HOLD_SLOT" --hold "$@" || return 1
    else
        HOLD_SLOT=
        psql_snapshot "$dir" "$db" || return 1
    fi
    [ -n "$SNAP" ]
}

release_snapshot() {
    exec 7>&- 2>/dev/null || true
    [ -n "${HOLD_PID:-}" ] && { wait_pid "$HOLD_PID" 60 "lm-slot create --hold to end (its input closed)" || true; }
    if [ -n "${HOLD_SLOT:-}" ]; then
        lm-slot drop --source "host=127.0.0.1 port=$SOURCE_PORT dbname=$1 user=postgres" \
            --slot "$HOLD_SLOT" >/dev/null 2>&1 || true
    fi
}

kill_holder() {
    kill -9 "$HOLD_PID" 2>/dev/null || true
    wait_pid "$HOLD_PID" 30 "the snapshot holder to end on SIGKILL" || true
    exec 7>&- 2>/dev/null || true
}

# the connection string of database DB on the source, on the target:
# src_conn|tgt_conn DB (src and tgt of tests/helpers.bash run psql on $DB)
src_conn() { echo "host=127.0.0.1 port=$SOURCE_PORT dbname=$1 user=postgres"; }
tgt_conn() { echo "host=127.0.0.1 port=$TARGET_PORT dbname=$1 user=postgres"; }
qs() { local db=$1; shift; PGDATABASE_TEST=$db q source "$@"; }
qt() { local db=$1; shift; PGDATABASE_TEST=$db q target "$@"; }
sql_true() { [ "$(qt "$1" -c "$2" 2>/dev/null)" = t ]; }
newdb() { q target -c "CREATE DATABASE \"$1\""; }

# per-table content hashes of a database: DB=NAME hashes SIDE (tests/helpers.bash)

AWKWARD_SQL="
CREATE SCHEMA \"Sch ema\";
CREATE DOMAIN \"Sch ema\".posint AS integer CHECK (VALUE > 0);
CREATE TYPE \"Sch ema\".mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE \"Sch ema\".\"we\"\"ird; x\" (
  \"Id\" serial PRIMARY KEY,
  \"Mixed Case\" text,
  \"co\"\"l\" \"Sch ema\".posint,
  m \"Sch ema\".mood,
  tags text[],
  moods \"Sch ema\".mood[],
  num numeric,
  blob bytea,
  total int GENERATED ALWAYS AS (\"Id\" * 2) STORED);
INSERT INTO \"Sch ema\".\"we\"\"ird; x\" (\"Mixed Case\", \"co\"\"l\", m, tags, moods, num, blob)
SELECT 'row ' || i || E' tab\\there, quote '' and \\\\ backslash', i, (ARRAY['sad','ok','happy'])[1 + i % 3]::\"Sch ema\".mood,
  ARRAY['a', NULL, 'c,d', 'e\"f'], ARRAY['ok', 'happy']::\"Sch ema\".mood[],
  (ARRAY['NaN', 'Infinity', '-Infinity', '3.14159265358979323846264338327950288'])[1 + i % 4]::numeric,
  CASE WHEN i % 10 = 0 THEN (SELECT decode(string_agg(md5(i::text || g::text), ''), 'hex') FROM generate_series(1, 800) g)
       ELSE decode('00ff' || lpad(to_hex(i), 8, '0'), 'hex') END
FROM generate_series(1, 200) i;
CREATE TABLE \"Sch ema\".nocols (gone int);
INSERT INTO \"Sch ema\".nocols SELECT generate_series(1, 3);
ALTER TABLE \"Sch ema\".nocols DROP COLUMN gone;
CREATE TABLE \"Sch ema\".ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
INSERT INTO \"Sch ema\".ident (v) SELECT 'i' || i FROM generate_series(1, 20) i;
CREATE TABLE \"Sch ema\".allgen (a int GENERATED ALWAYS AS (7) STORED, b text GENERATED ALWAYS AS ('g') STORED);
INSERT INTO \"Sch ema\".allgen SELECT FROM generate_series(1, 4);
CREATE TABLE \"Sch ema\".keyless (a int, dropme int, b text);
ALTER TABLE \"Sch ema\".keyless DROP COLUMN dropme;
INSERT INTO \"Sch ema\".keyless SELECT i % 7, 'dup' FROM generate_series(1, 50) i;
CREATE TABLE \"Sch ema\".parted (id int, created date, v text, PRIMARY KEY (id, created)) PARTITION BY RANGE (created);
CREATE TABLE \"Sch ema\".parted_2023 PARTITION OF \"Sch ema\".parted FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE \"Sch ema\".parted_2024 PARTITION OF \"Sch ema\".parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO \"Sch ema\".parted SELECT i, date '2023-06-01' + i, 'v' || i FROM generate_series(1, 300) i;
CREATE TABLE \"Sch ema\".child (id serial PRIMARY KEY, weird_id int REFERENCES \"Sch ema\".\"we\"\"ird; x\" (\"Id\"), note text);
INSERT INTO \"Sch ema\".child (weird_id, note) SELECT i, 'note ' || i FROM generate_series(1, 100) i;
CREATE FUNCTION \"Sch ema\".shout() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN NEW.note := upper(NEW.note); RETURN NEW; END\$\$;
CREATE TRIGGER shout BEFORE INSERT ON \"Sch ema\".child FOR EACH ROW EXECUTE FUNCTION \"Sch ema\".shout();
CREATE SEQUENCE \"Sch ema\".\"Free Seq\";
SELECT setval('\"Sch ema\".\"Free Seq\"', 42);
CREATE VIEW \"Sch ema\".v AS SELECT \"Id\", total FROM \"Sch ema\".\"we\"\"ird; x\" WHERE num = 'NaN';
SELECT lo_from_bytea(424242, decode(repeat('0123456789abcdef', 5000), 'hex'));
"

setup_file() {
    pg_start source
    pg_start target
    q source -c "CREATE DATABASE pagila" -c "CREATE DATABASE awk" -c "CREATE DATABASE big"
    PGDATABASE_TEST=pagila q source -f "$LM_FIXTURES/pagila/pagila-schema.sql" >/dev/null 2>&1
    PGDATABASE_TEST=pagila q source -f "$LM_FIXTURES/pagila/pagila-data.sql" >/dev/null 2>&1
    PGDATABASE_TEST=awk q source -c "$AWKWARD_SQL" >/dev/null
    # and the names of any byte every suite uses (helpers.bash)
    hostile_names_sql | PGDATABASE_TEST=awk q source -f - >/dev/null
    # one table of ~1.3 MB to split, small ones to finish early
    PGDATABASE_TEST=big q source -c "
        CREATE TABLE big (id int PRIMARY KEY, pad text);
        INSERT INTO big SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 10000) i;
        CREATE TABLE small1 (id int PRIMARY KEY, v text); CREATE TABLE small2 (LIKE small1 INCLUDING ALL);
        CREATE TABLE small3 (LIKE small1 INCLUDING ALL); CREATE TABLE small4 (LIKE small1 INCLUDING ALL);
        CREATE TABLE small5 (LIKE small1 INCLUDING ALL); CREATE TABLE small6 (LIKE small1 INCLUDING ALL);
        INSERT INTO small1 SELECT i, 's' || i FROM generate_series(1, 100) i;
        INSERT INTO small2 SELECT * FROM small1; INSERT INTO small3 SELECT * FROM small1;
        INSERT INTO small4 SELECT * FROM small1; INSERT INTO small5 SELECT * FROM small1;
        INSERT INTO small6 SELECT * FROM small1;" >/dev/null
}

teardown_file() {
    pg_stop_all
}

setup() {
    pg_env
    WORK=$BATS_TEST_TMPDIR/work
}

# ---------- options ----------

@test "lm-snapshot: --help prints usage on stdout and exits 0" {
    program_help_ok lm-snapshot
    assert_output --partial "--split-larger-than"
    assert_output --partial "--skip-db-settings"
    # after other options too
    run -0 lm-snapshot --jobs 2 --help
    assert_output --partial "Usage:"
}

@test "lm-snapshot: --version prints the version" {
    program_version_ok lm-snapshot
    run -0 lm-snapshot --source x --version
    assert_output --regexp '^lm-snapshot \(lm\) '
}

@test "lm-snapshot: bad options are usage errors (exit 2) with a hint" {
    program_options_handling_ok lm-snapshot
    run -2 --separate-stderr lm-snapshot --source x --target y
    [[ $stderr == *"no snapshot given"* ]]
    run -2 --separate-stderr lm-snapshot --source "$(src_conn pagila)" --target "$(tgt_conn x)" --snapshot 1-2-3 --jobs 0
    [[ $stderr == *"--jobs must be in range 1..64"* ]]
    run -2 --separate-stderr lm-snapshot --source "$(src_conn pagila)" --target "$(tgt_conn x)" --output - --snapshot 1-2-3
    [[ $stderr == *"cannot be combined"* ]]
    run -2 --separate-stderr lm-snapshot --source "$(src_conn pagila)" --target "$(tgt_conn x)" --snapshot "1'; drop"
    [[ $stderr == *"invalid snapshot name"* ]]
    run -2 --separate-stderr lm-snapshot --source "$(src_conn pagila)" --target "$(tgt_conn x)" --snapshot 1-2-3 --hypertable t
    [[ $stderr == *"TABLE:COLUMN"* ]]
    run -2 --separate-stderr lm-snapshot --source "$(src_conn pagila)" --target "$(tgt_conn x)" --snapshot 1-2-3 --split-larger-than 12parsecs
    [[ $stderr == *"invalid unit"* ]]
    run -2 --separate-stderr lm-snapshot --source "$(src_conn pagila)" --target "$(tgt_conn x)" --snapshot 1-2-3 --progress=sometimes
    [[ $stderr == *'invalid value "sometimes" for option --progress: use auto, always or never'* ]]
    run -2 --separate-stderr lm-snapshot --source "$(src_conn pagila)" --target "$(tgt_conn x)" --snapshot 1-2-3 --progress=
    [[ $stderr == *'invalid value "" for option --progress'* ]]
}

@test "lm-snapshot: a dead snapshot is a clear error (exit 4) that points to --resume" {
    newdb dead
    run -4 --separate-stderr lm-snapshot --source "$(src_conn pagila)" --target "$(tgt_conn dead)" \
        --snapshot 00000003-000000AA-1 --workdir "$WORK"
    [[ $stderr == *'could not import snapshot "00000003-000000AA-1"'* ]]
    [[ $stderr == *"--resume"* ]]
    # nothing restored
    run -0 qt dead -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert_output 0
}

# ---------- direct mode ----------

@test "lm-snapshot: pagila copied as of the snapshot; later writes absent; indexes, FKs, triggers after" {
    newdb pagila1
    hold_snapshot pagila
    DB=pagila hashes source >"$BATS_TEST_TMPDIR/before"
    # written after the snapshot: must not show up on the target
    qs pagila -c "INSERT INTO actor (first_name, last_name) VALUES ('AFTER', 'SNAPSHOT')"
    qs pagila -c "UPDATE film SET title = 'CHANGED' WHERE film_id = 1"
    run -0 --separate-stderr lm-snapshot --source "$(src_conn pagila)" --target "$(tgt_conn pagila1)" \
        --snapshot "$SNAP" --jobs 2 --workdir "$WORK" --progress
    release_snapshot pagila
    [[ $stderr == *"copying: 100.0%"* ]]
    DB=pagila1 hashes target >"$BATS_TEST_TMPDIR/after"
    diff "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
    run -0 qt pagila1 -c "SELECT count(*) FROM actor WHERE first_name = 'AFTER'"
    assert_output 0
    # post-data objects are there
    [ "$(qs pagila -c "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")" = \
      "$(qt pagila1 -c "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")" ]
    [ "$(qs pagila -c "SELECT count(*) FROM pg_constraint WHERE contype = 'f'")" = \
      "$(qt pagila1 -c "SELECT count(*) FROM pg_constraint WHERE contype = 'f'")" ]
    [ "$(qs pagila -c "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal")" = \
      "$(qt pagila1 -c "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal")" ]
    # sequences at the source's value
    [ "$(qs pagila -c "SELECT last_value FROM actor_actor_id_seq")" = \
      "$(qt pagila1 -c "SELECT last_value FROM actor_actor_id_seq")" ]
    # one lm.copy row per table, analyzed
    # (recorded as name@source start time: names repeat after a restart)
    local started
    started=$(qs pagila -c "SELECT extract(epoch FROM pg_postmaster_start_time())::bigint")
    run -0 qt pagila1 -c "SELECT count(*) FROM lm.copy WHERE snapshot = '$SNAP@$started'"
    [ "$output" -ge 20 ]
    run -0 qt pagila1 -c "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'rental' AND last_analyze IS NOT NULL"
    assert_output 1
    # no password or credentials in the pg_dump/pg_restore command lines: nothing to see, but no crash
    qs pagila -c "DELETE FROM actor WHERE first_name = 'AFTER'"
}

@test "lm-snapshot: awkward schema (hostile names, domains, enums, arrays, TOAST, NaN, partitions, LO, generated columns)" {
    newdb awk1
    hold_snapshot awk --replica-identity-full
    DB=awk hashes source >"$BATS_TEST_TMPDIR/before"
    qs awk -c "INSERT INTO \"Sch ema\".keyless VALUES (99, 'after')"
    run -0 --separate-stderr lm-snapshot --source "$(src_conn awk)" --target "$(tgt_conn awk1)" \
        --snapshot "$SNAP" ${SYNC_LSN:+--sync-lsn "$SYNC_LSN"} --jobs 3 --workdir "$WORK" --progress=always
    release_snapshot awk
    # names in progress lines and the summary with their control characters escaped
    [[ $stderr == *'lm-snapshot: "public"."nl\nname": 20 rows, '* ]]
    [[ $stderr == *'"public"."esc\x1b[31mred"'* ]]
    [[ $stderr != *$'\e'* ]]
    DB=awk1 hashes target >"$BATS_TEST_TMPDIR/after"
    diff "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/after")" -ge 6 ]
    # the trigger came after the data: notes are not upper-cased
    run -0 qt awk1 -c "SELECT count(*) FROM \"Sch ema\".child WHERE note LIKE 'note %'"
    assert_output 100
    # the out-of-line TOAST values, the view, the generated column, the sequence
    run -0 qt awk1 -c "SELECT count(*) FROM \"Sch ema\".\"we\"\"ird; x\" WHERE length(blob) > 8000"
    assert_output 20
    run -0 qt awk1 -c "SELECT count(*) FROM \"Sch ema\".v"
    assert_output 50
    run -0 qt awk1 -c "SELECT sum(total) = sum(\"Id\" * 2) FROM \"Sch ema\".\"we\"\"ird; x\""
    assert_output t
    run -0 qt awk1 -c "SELECT last_value FROM \"Sch ema\".\"Free Seq\""
    assert_output 42
    # the large object, byte for byte
    [ "$(qs awk -c "SELECT md5(lo_get(424242))")" = "$(qt awk1 -c "SELECT md5(lo_get(424242))")" ]
    # leaves of the partitioned table were copied, through the root they are one table
    run -0 qt awk1 -c "SELECT count(*) FROM \"Sch ema\".parted"
    assert_output 300
    # a table whose every column was dropped keeps its rows
    run -0 qt awk1 -c "SELECT count(*) FROM \"Sch ema\".nocols"
    assert_output 3
    # an identity column GENERATED ALWAYS keeps the source's values, a table
    # whose every column is generated its rows
    run -0 qt awk1 -c "SELECT count(*), sum(id) FROM \"Sch ema\".ident"
    assert_output "20|210"
    run -0 qt awk1 -c "SELECT count(*), sum(a) FROM \"Sch ema\".allgen"
    assert_output "4|28"
    # a binary copy where every type is built in, text where a domain or enum is used
    if [ -n "$SYNC_LSN" ]; then
        run -0 qt awk1 -c "SELECT count(*) FROM lm.sync WHERE sync_lsn = '$SYNC_LSN'"
        [ "$output" -ge 5 ]
    fi
}

@test "lm-snapshot: --table naming a partitioned table copies it with its partitions" {
    newdb part1
    # pg_dump --table dumps no schema: it exists on the target already
    qt part1 -c 'CREATE SCHEMA "Sch ema"'
    hold_snapshot awk --replica-identity-full
    run --separate-stderr lm-snapshot --source "$(src_conn awk)" --target "$(tgt_conn part1)" \
        --snapshot "$SNAP" --jobs 2 --workdir "$BATS_TEST_TMPDIR/pw" --table '"Sch ema".parted'
    echo "$stderr"
    release_snapshot awk
    assert_success
    run -0 qt part1 -c "SELECT count(*) FROM \"Sch ema\".parted"
    assert_output 300
    run -0 qt part1 -c "SELECT count(*) FROM pg_inherits WHERE inhparent = '\"Sch ema\".parted'::regclass"
    assert_output 2
    # nothing else came with it
    run -0 qt part1 -c "SELECT count(*) FROM pg_class WHERE relname = 'child'"
    assert_output 0
}

@test "lm-snapshot: a table split into ctid chunks across workers is complete and not duplicated" {
    newdb split1
    hold_snapshot big
    run -0 --separate-stderr lm-snapshot --source "$(src_conn big)" --target "$(tgt_conn split1)" \
        --snapshot "$SNAP" --jobs 3 --split-larger-than 64kB --workdir "$WORK"
    release_snapshot big
    run -0 qt split1 -c "SELECT count(*), max(nchunks) FROM lm.copy WHERE relname = 'big'"
    n=${output%%|*}
    [ "$n" -ge 10 ]
    [ "$output" = "$n|$n" ]
    # the ranges tile the table: first pages ascending, each after the last
    run -0 qt split1 -c "SELECT bool_and(first_page = prev + 1) FROM (SELECT first_page,
        lag(last_page) OVER (ORDER BY chunk) AS prev FROM lm.copy WHERE relname = 'big') s WHERE prev IS NOT NULL"
    assert_output t
    [ "$(PGDATABASE_TEST=big qhash source big)" = "$(PGDATABASE_TEST=split1 qhash target big)" ]
    run -0 qt split1 -c "SELECT sum(rows) FROM lm.copy WHERE relname = 'big'"
    assert_output 10000
}

# ---------- progress ----------

# the "copying:" lines of a plain progress log, as "PERCENT ROWS" lines
copy_figures() {
    sed -n 's/^lm-snapshot: copying: \([0-9.]*\)% .*), \([0-9]*\) \(of ~[0-9]* \)\{0,1\}rows, .*/\1 \2/p' "$1"
}

@test "lm-snapshot: --progress=always in a log: plain lines, percent and rows growing to 100% and the rows copied; the index builds of post-data" {
    q source -c "CREATE DATABASE prog"
    # an index whose build takes a few seconds (an expression calling
    # pg_sleep), to be seen in flight; a table cut into chunks, slowed
    qs prog -c "
        CREATE FUNCTION slow(int) RETURNS int LANGUAGE plpgsql IMMUTABLE
            AS \$\$BEGIN PERFORM pg_sleep(0.01); RETURN \$1; END\$\$;
        CREATE TABLE t (id int PRIMARY KEY, pad text);
        INSERT INTO t SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 10000) i;
        CREATE TABLE s (id int PRIMARY KEY);
        INSERT INTO s SELECT generate_series(1, 250);
        CREATE INDEX s_slow ON s (slow(id));
        ANALYZE t, s" >/dev/null
    newdb prog1
    hold_snapshot prog
    local log=$BATS_TEST_TMPDIR/progress.log
    LM_SNAPSHOT_TEST_DELAY_MS=150 lm-snapshot --source "$(src_conn prog)" --target "$(tgt_conn prog1)" \
        --snapshot "$SNAP" --jobs 2 --split-larger-than 64kB --workdir "$WORK" --progress=always \
        2>"$log" </dev/null
    release_snapshot prog
    # nothing that corrupts a log: no escape, no carriage return, each line whole
    run grep -c $'[\e\r]' "$log"
    assert_output 0
    [ "$(tail -c 1 "$log" | od -An -c | tr -d ' ')" = '\n' ]
    # several reports, percent and rows never going back, the last 100%
    # with the rows copied
    copy_figures "$log" >"$BATS_TEST_TMPDIR/fig"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/fig")" -ge 3 ]
    run awk 'NR > 1 && ($1 < p || $2 < r) { print "went back at " NR ": " $0 } { p = $1; r = $2 }' "$BATS_TEST_TMPDIR/fig"
    assert_output ""
    run -0 tail -n 1 "$BATS_TEST_TMPDIR/fig"
    assert_output "100.0 10250"
    [ "$(qt prog1 -c "SELECT sum(rows) FROM lm.copy")" = 10250 ]
    # before the end: rows against the estimate (reltuples, the tables analyzed)
    grep -q '^lm-snapshot: copying: [0-9.]*% ([^)]* of [^)]*), [0-9]* of ~10250 rows, .*/s, ETA ' "$log"
    grep -q '^lm-snapshot: copying: 100.0% (.*), 10250 rows, .*, 2 of 2 tables done$' "$log"
    # a line per table
    grep -q '^lm-snapshot: "public"."t": 10000 rows, ' "$log"
    # the index build, seen in flight, then post-data done
    grep -q '^lm-snapshot: post-data: running for [0-9]*s, [1-9][0-9]* index builds\{0,1\} in flight$' "$log"
    grep -q '^lm-snapshot:   "public"."s": CREATE INDEX, building index' "$log"
    grep -q '^lm-snapshot: post-data: done in [0-9]*s, 0 index builds in flight$' "$log"
    [ "$(qt prog1 -c "SELECT count(*) FROM pg_indexes WHERE indexname = 's_slow'")" = 1 ]
}

@test "lm-snapshot: on a terminal progress is shown by default, redrawn in place, the last screen at 100%; never, and auto without a terminal, show none" {
    newdb tty1
    hold_snapshot big
    local out=$BATS_TEST_TMPDIR/pty.out
    # script(1) gives it a terminal (the command through the environment)
    # shellcheck disable=SC2016
    CMD_SRC=$(src_conn big) CMD_TGT=$(tgt_conn tty1) LM_SNAPSHOT_TEST_DELAY_MS=100 \
        script -qec 'stty rows 40 cols 200; lm-snapshot --source "$CMD_SRC" --target "$CMD_TGT" --snapshot '"$SNAP"' --jobs 2 --split-larger-than 64kB --workdir '"$WORK" \
        /dev/null </dev/null >"$out" 2>&1
    release_snapshot big
    [ "$(qt tty1 -c "SELECT count(*) FROM big")" = 10000 ]
    run -0 cat -v "$out"
    # each line cleared, and redrawn from the top of the last view
    [ "$(grep -o '\^\[\[2K' <<<"$output" | wc -l)" -ge 4 ]
    [ "$(grep -o '\^\[\[[0-9]*A' <<<"$output" | wc -l)" -ge 2 ]
    # a bar, the tables in flight with their chunks
    [[ $output == *'copying: '*'% ['*'] ('* ]]
    [[ $output =~ \"public\"\.\"big\":\ [0-9]+\ of\ [0-9]+\ chunks ]]
    # the last view of the copy: 100%, every table done
    local last
    last=$(grep -o 'copying: [0-9.]*% \[[#.]*\][^^]*' <<<"$output" | tail -n 1)
    [[ $last == 'copying: 100.0% [####################] ('*', 10600 rows, '*', 7 of 7 tables done' ]]
    [[ $output == *'post-data: done in '* ]]

    # a terminal of two rows and 60 columns: one line a view (the cursor
    # never goes up more), none wider than 59 columns
    newdb tty2
    hold_snapshot big
    # shellcheck disable=SC2016
    CMD_SRC=$(src_conn big) CMD_TGT=$(tgt_conn tty2) LM_SNAPSHOT_TEST_DELAY_MS=50 \
        script -qec 'stty rows 2 cols 60; lm-snapshot --source "$CMD_SRC" --target "$CMD_TGT" --snapshot '"$SNAP"' --jobs 2 --split-larger-than 64kB --workdir '"$WORK/tty2" \
        /dev/null </dev/null >"$out" 2>&1
    release_snapshot big
    run -0 cat -v "$out"
    [ "$(grep -o '\^\[\[[0-9]*A' <<<"$output" | sort -u)" = '^[[1A' ]
    [[ $output != *' chunks, '* ]]   # no table in flight shown
    [[ $output == *'copying: 100.0% [####################'* ]]
    run -0 awk '{ n = split($0, v, "\033\\[2K"); for (i = 2; i <= n; i++) { sub(/\r.*/, "", v[i]); if (length(v[i]) > m) m = length(v[i]) } } END { print m }' "$out"
    assert_output 59

    # never; auto (the default) without a terminal: none
    local db
    local -a when
    for db in never1 auto1; do
        when=()
        [ "$db" = never1 ] && when=(--progress=never)
        newdb "$db"
        hold_snapshot big
        run -0 --separate-stderr lm-snapshot --source "$(src_conn big)" --target "$(tgt_conn "$db")" \
            --snapshot "$SNAP" --table small1 --workdir "$WORK/$db" "${when[@]}"
        release_snapshot big
        [ "$(qt "$db" -c "SELECT count(*) FROM small1")" = 100 ]
        [[ $stderr != *"copying:"* ]]
        [[ $stderr != *"post-data:"* ]]
        [[ $stderr != *'"public"."small1": 100 rows'* ]]
        [[ $stderr != *$'\e'* ]]
    done
}

@test "lm-snapshot: --schema-only, --data-only, then --post-data (snapshot released) add up to a full copy" {
    newdb phases
    hold_snapshot pagila
    run -0 --separate-stderr lm-snapshot --source "$(src_conn pagila)" --target "$(tgt_conn phases)" \
        --snapshot "$SNAP" --workdir "$WORK" --schema-only
    run -0 qt phases -c "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
    assert_output 0
    run -0 --separate-stderr lm-snapshot --source "$(src_conn pagila)" --target "$(tgt_conn phases)" \
        --snapshot "$SNAP" --workdir "$WORK" --data-only --jobs 2
    release_snapshot pagila
    run -0 --separate-stderr lm-snapshot --target "$(tgt_conn phases)" --workdir "$WORK" --post-data
    [ "$(qs pagila -c "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")" = \
      "$(qt phases -c "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")" ]
    DB=pagila hashes source >"$BATS_TEST_TMPDIR/s"
    DB=phases hashes target >"$BATS_TEST_TMPDIR/t"
    diff "$BATS_TEST_TMPDIR/s" "$BATS_TEST_TMPDIR/t"
    # a --post-data without the archive is a precondition error
    run -4 --separate-stderr lm-snapshot --target "$(tgt_conn phases)" --workdir "$BATS_TEST_TMPDIR/none" --post-data
    [[ $stderr == *"no schema archive"* ]]
}

# what pre-data and post-data made: relations, constraints, triggers
schema_objects() {
    PGDATABASE_TEST=$2 q "$1" -c "
        SELECT string_agg(x, ',' ORDER BY x) FROM (
          SELECT 'rel ' || n.nspname || '.' || c.relname || ' ' || c.relkind FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname !~ '^(pg_|information_schema$|lm$)'
          UNION ALL SELECT 'con ' || conrelid::regclass || ' ' || conname FROM pg_constraint
            WHERE connamespace::regnamespace::text !~ '^(pg_|information_schema$|lm$)'
          UNION ALL SELECT 'trg ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal) s(x)"
}

@test "lm-snapshot: pre-data and post-data left half-made by a killed run are made again on --resume, never dropping copied data" {
    newdb halfmade
    hold_snapshot awk --replica-identity-full
    run -0 --separate-stderr lm-snapshot --source "$(src_conn awk)" --target "$(tgt_conn halfmade)" \
        --snapshot "$SNAP" --workdir "$WORK" --schema-only
    # as if killed during pre-data: begun, not done, some of it made
    qt halfmade -c "DELETE FROM lm.meta WHERE key = 'lm-snapshot.pre-data'"
    run -0 --separate-stderr lm-snapshot --source "$(src_conn awk)" --target "$(tgt_conn halfmade)" \
        --snapshot "$SNAP" --workdir "$WORK" --schema-only --resume
    [[ $stderr != *"already exists"* ]]
    run -0 --separate-stderr lm-snapshot --source "$(src_conn awk)" --target "$(tgt_conn halfmade)" \
        --snapshot "$SNAP" --workdir "$WORK" --data-only --jobs 2 --resume
    release_snapshot awk
    # as if killed during post-data: the FK and the trigger made, the rest not
    run -0 --separate-stderr lm-snapshot --target "$(tgt_conn halfmade)" --workdir "$WORK" --post-data --jobs 2
    qt halfmade -c "DELETE FROM lm.meta WHERE key = 'lm-snapshot.post-data'" \
        -c "ALTER TABLE \"Sch ema\".child DROP CONSTRAINT child_weird_id_fkey" \
        -c "ALTER TABLE \"Sch ema\".\"we\"\"ird; x\" DROP CONSTRAINT \"we\"\"ird; x_pkey\"" \
        -c "ALTER TABLE \"Sch ema\".child DROP CONSTRAINT child_pkey"
    run --separate-stderr lm-snapshot --target "$(tgt_conn halfmade)" --workdir "$WORK" --post-data --jobs 2 --resume
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ $stderr != *"already exists"* ]]
    [ "$(schema_objects source awk)" = "$(schema_objects target halfmade)" ]
    DB=awk hashes source >"$BATS_TEST_TMPDIR/s"
    DB=halfmade hashes target >"$BATS_TEST_TMPDIR/t"
    diff "$BATS_TEST_TMPDIR/s" "$BATS_TEST_TMPDIR/t"
    # pre-data begun again after data was copied (the state of a target
    # whose tables were made by hand for --data-only): not dropped, a
    # clear failure instead
    qt halfmade -c "DELETE FROM lm.meta WHERE key = 'lm-snapshot.pre-data'"
    hold_snapshot awk --replica-identity-full
    run -5 --separate-stderr lm-snapshot --source "$(src_conn awk)" --target "$(tgt_conn halfmade)" \
        --snapshot "$SNAP" --workdir "$WORK" --schema-only --resume
    release_snapshot awk
    [[ $stderr == *"already exists"* ]]
    DB=halfmade hashes target >"$BATS_TEST_TMPDIR/t2"
    diff "$BATS_TEST_TMPDIR/s" "$BATS_TEST_TMPDIR/t2"
}

@test "lm-snapshot: existing lm.copy rows without --resume are refused (exit 4)" {
    newdb again
    hold_snapshot big
    run -0 --separate-stderr lm-snapshot --source "$(src_conn big)" --target "$(tgt_conn again)" --snapshot "$SNAP" \
        --workdir "$WORK" --table small1
    run -4 --separate-stderr lm-snapshot --source "$(src_conn big)" --target "$(tgt_conn again)" --snapshot "$SNAP" --workdir "$WORK"
    release_snapshot big
    [[ $stderr == *"earlier lm-snapshot run"* ]]
    [[ $stderr == *"--resume"* ]]
}

@test "lm-snapshot: kill -9 mid-copy, then --resume: complete and nothing doubled" {
    newdb kill1
    hold_snapshot big
    local conn; conn=$(tgt_conn kill1)
    LM_SNAPSHOT_TEST_DELAY_MS=300 bg_start PID lm-snapshot --source "$(src_conn big)" --target "$conn" \
        --snapshot "$SNAP" --jobs 2 --split-larger-than 64kB --workdir "$WORK"
    wait_for 60 sql_true kill1 "SELECT count(*) >= 4 FROM lm.copy"
    kill -9 "$PID"
    wait_pid "$PID" 30 "lm-snapshot to end on SIGKILL" || true
    run -0 qt kill1 -c "SELECT count(*) FROM lm.copy"
    before=$output
    [ "$before" -ge 4 ]
    [ "$before" -lt 27 ]
    run -0 --separate-stderr lm-snapshot --source "$(src_conn big)" --target "$conn" \
        --snapshot "$SNAP" --jobs 2 --split-larger-than 64kB --workdir "$WORK" --resume
    release_snapshot big
    DB=big hashes source >"$BATS_TEST_TMPDIR/s"
    DB=kill1 hashes target >"$BATS_TEST_TMPDIR/t"
    diff "$BATS_TEST_TMPDIR/s" "$BATS_TEST_TMPDIR/t"
    run -0 qt kill1 -c "SELECT sum(rows) FROM lm.copy WHERE relname = 'big'"
    assert_output 10000
    run -0 qt kill1 -c "SELECT count(*) FROM big"
    assert_output 10000
}

@test "lm-snapshot: snapshot holder dies mid-copy; --resume re-copies unfinished tables under a fresh snapshot" {
    newdb fresh1
    hold_snapshot big
    local conn; conn=$(tgt_conn fresh1)
    DB=big hashes source >"$BATS_TEST_TMPDIR/at_snapshot"
    LM_SNAPSHOT_TEST_DELAY_MS=400 bg_start PID lm-snapshot --source "$(src_conn big)" --target "$conn" \
        --snapshot "$SNAP" --jobs 1 --split-larger-than 256kB --workdir "$WORK"
    # big goes first (largest first); stop once a small table is done
    wait_for 90 sql_true fresh1 "SELECT count(*) > 0 FROM lm.copy WHERE relname LIKE 'small%'"
    kill -9 "$PID"
    wait_pid "$PID" 30 "lm-snapshot to end on SIGKILL" || true
    kill_holder
    run -0 qt fresh1 -c "SELECT string_agg(DISTINCT relname, ',' ORDER BY relname) FROM lm.copy"
    finished=$output
    [[ $finished == big,small* ]]
    xmin_before=$(qt fresh1 -c "SELECT md5(string_agg(xmin::text, ',' ORDER BY id)) FROM big")
    # written after the lost snapshot: the fresh one sees them
    qs big -c "INSERT INTO small6 VALUES (1000, 'later')"
    qs big -c "UPDATE big SET pad = 'later' WHERE id = 1"
    run -0 --separate-stderr lm-snapshot --source "$(src_conn big)" --target "$conn" \
        --snapshot "$SNAP" --jobs 2 --split-larger-than 256kB --workdir "$WORK" --resume
    [[ $stderr == *"fresh snapshot"* ]]
    # finished tables untouched: same rows, same xmin
    [ "$(qt fresh1 -c "SELECT md5(string_agg(xmin::text, ',' ORDER BY id)) FROM big")" = "$xmin_before" ]
    grep "^public.big " "$BATS_TEST_TMPDIR/at_snapshot" >"$BATS_TEST_TMPDIR/want"
    DB=fresh1 hashes target | grep "^public.big " | diff "$BATS_TEST_TMPDIR/want" -
    # re-copied tables match the source now, and have a sync position
    for t in small1 small2 small3 small4 small5 small6; do
        [ "$(PGDATABASE_TEST=big qhash source $t)" = "$(PGDATABASE_TEST=fresh1 qhash target $t)" ]
    done
    run -0 qt fresh1 -c "SELECT count(*) FROM lm.sync WHERE relname = 'small6' AND split_part(snapshot, '@', 1) <> '$SNAP'"
    assert_output 1
    run -0 qt fresh1 -c "SELECT count(*) FROM lm.copy WHERE relname = 'small6' AND sync_lsn IS NOT NULL"
    assert_output 1
    run -0 qt fresh1 -c "SELECT count(*) FROM small6 WHERE v = 'later'"
    assert_output 1
    # the temporary slot is gone with its connection
    run -0 qs big -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'lm_tmp_%'"
    assert_output 0
    qs big -c "DELETE FROM small6 WHERE id = 1000"
    release_snapshot big
}

@test "lm-snapshot: credentials reach pg_dump and pg_restore by environment, never in argv" {
    newdb creds
    local bin=$BATS_TEST_TMPDIR/pgbin
    mkdir -p "$bin"
    for p in pg_dump pg_restore vacuumdb; do
        cat >"$bin/$p" <<EOF
#!/bin/sh
echo "$p argv: \$*" >>"$bin/log"
echo "$p PGPASSWORD=\$PGPASSWORD PGHOST=\$PGHOST" >>"$bin/log"
exec "$PGBIN/$p" "\$@"
EOF
        chmod +x "$bin/$p"
    done
    hold_snapshot big
    PGBIN=$bin run -0 --separate-stderr lm-snapshot --source "$(src_conn big) password=s3cret" \
        --target "$(tgt_conn creds) password=s3cret" --snapshot "$SNAP" --workdir "$WORK" --table small1
    release_snapshot big
    ! grep argv "$bin/log" | grep -q s3cret
    grep -q "pg_dump PGPASSWORD=s3cret PGHOST=127.0.0.1" "$bin/log"
    grep -q "pg_restore PGPASSWORD=s3cret" "$bin/log"
    [[ $stderr != *s3cret* ]]
}

# ---------- schema: roles, failures, hypertables ----------

@test "lm-snapshot: roles missing on the target are named before anything is restored (exit 4); --no-owner works" {
    q source -c "CREATE ROLE lm_test_owner" -c "CREATE ROLE lm_test_reader" -c "CREATE DATABASE roles"
    qs roles -c "CREATE TABLE owned (id int); ALTER TABLE owned OWNER TO lm_test_owner;
                 GRANT SELECT ON owned TO lm_test_reader; INSERT INTO owned VALUES (1)"
    newdb roles1
    hold_snapshot roles --replica-identity-full
    run -4 --separate-stderr lm-snapshot --source "$(src_conn roles)" --target "$(tgt_conn roles1)" \
        --snapshot "$SNAP" --workdir "$WORK"
    [[ $stderr == *"missing role: lm_test_owner"* ]]
    [[ $stderr == *"missing role: lm_test_reader"* ]]
    [[ $stderr == *"--no-owner"* ]]
    run -0 qt roles1 -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert_output 0
    run -0 --separate-stderr lm-snapshot --source "$(src_conn roles)" --target "$(tgt_conn roles1)" \
        --snapshot "$SNAP" --workdir "$WORK" --no-owner
    release_snapshot roles
    run -0 qt roles1 -c "SELECT id FROM owned"
    assert_output 1
}

@test "lm-snapshot: a restore failing part-way is exit 5 showing what failed" {
    newdb clash
    qt clash -c "CREATE TABLE actor (x int)"
    hold_snapshot pagila
    run -5 --separate-stderr lm-snapshot --source "$(src_conn pagila)" --target "$(tgt_conn clash)" \
        --snapshot "$SNAP" --workdir "$WORK"
    release_snapshot pagila
    [[ $stderr == *"pre-data"* ]]
    [[ $stderr == *'relation "actor" already exists'* ]]
}

@test "lm-snapshot: --hypertable without timescaledb on the target is exit 4 naming the call" {
    # TimescaleDB is not packaged here: the error path and the generated call
    newdb hyper
    hold_snapshot big
    run -4 --separate-stderr lm-snapshot --source "$(src_conn big)" --target "$(tgt_conn hyper)" \
        --snapshot "$SNAP" --workdir "$WORK" --hypertable "public.big:id:1000"
    release_snapshot big
    [[ $stderr == *"timescaledb"* ]]
    [[ $stderr == *"SELECT create_hypertable('\"public\".\"big\"', 'id', chunk_time_interval => 1000)"* ]]
    run -0 qt hyper -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert_output 0
}

# ---------- stream mode ----------

@test "lm-snapshot: a work directory another user owns, or others may write to, is refused (exit 9)" {
    local d=$BATS_TEST_TMPDIR/theirs
    mkdir -m 0777 "$d"
    run -9 --separate-stderr lm-snapshot --source "$(src_conn awk)" --target "$(tgt_conn awk)" \
        --snapshot 00000003-000000AA-1 --workdir "$d"
    [[ $stderr == *"only it may write to"* ]]
    chmod 0700 "$d"
    chown postgres "$d"
    run -9 --separate-stderr lm-snapshot --source "$(src_conn awk)" --target "$(tgt_conn awk)" \
        --snapshot 00000003-000000AA-1 --workdir "$d"
    [[ $stderr == *"only it may write to"* ]]
    [ -z "$(ls -A "$d")" ]
}

@test "lm-snapshot: --output writes a stream lm-cat --verify accepts, with the archive and every chunk" {
    hold_snapshot awk --replica-identity-full
    run -0 --separate-stderr lm-snapshot --source "$(src_conn awk)" --output "$BATS_TEST_TMPDIR/snap.lm" \
        --snapshot "$SNAP" --slot myslot --jobs 2 --split-larger-than 64kB --workdir "$WORK"
    release_snapshot awk
    # every row of the database is in it: the owner's only
    [ "$(stat -c %a "$BATS_TEST_TMPDIR/snap.lm")" = 600 ]
    run -0 lm-cat --verify "$BATS_TEST_TMPDIR/snap.lm"
    assert_output --partial 'slot "myslot"'
    assert_output --partial "complete"
    run -0 lm-cat --json "$BATS_TEST_TMPDIR/snap.lm"
    # the archive's pieces, then chunks; the last archive piece is flagged
    echo "$output" | grep -q '"last":true'
    [ "$(echo "$output" | grep -c '"type":"copy_begin"')" = "$(echo "$output" | grep -c '"type":"copy_end"')" ]
    echo "$output" | grep '"type":"copy_begin"' | grep -q 'we\\"ird; x'
    # the COPY data of the keyless table is all there: 50 rows
    echo "$output" | grep '"type":"copy_end"' | grep -q '"rows":5[01],'
}

@test "lm-snapshot: stream to stdout, zstd-compressed with --compress" {
    hold_snapshot big
    lm-snapshot --source "$(src_conn big)" --output - --compress --snapshot "$SNAP" --workdir "$WORK" \
        --table small1 --table 'small[23]' 2>"$BATS_TEST_TMPDIR/err" >"$BATS_TEST_TMPDIR/s.zst"
    release_snapshot big
    run -0 zstd -t "$BATS_TEST_TMPDIR/s.zst"
    run -0 lm-cat --stats "$BATS_TEST_TMPDIR/s.zst"
    run -0 lm-cat --json "$BATS_TEST_TMPDIR/s.zst"
    [ "$(echo "$output" | grep -c '"type":"copy_begin"')" = 3 ]
}

@test "lm-snapshot: a stream loaded by lm-apply gives the target direct mode gives; loaded twice, nothing is loaded twice; a half-made post-data is made again" {
    newdb streamed
    hold_snapshot awk --replica-identity-full
    lm-snapshot --source "$(src_conn awk)" --output - --snapshot "$SNAP" --slot streamslot --jobs 2 \
        --split-larger-than 64kB --workdir "$WORK" 2>"$BATS_TEST_TMPDIR/snap.err" >"$BATS_TEST_TMPDIR/snap.lm"
    release_snapshot awk
    # through a pipe, as across ssh
    run --separate-stderr lm-apply --target "$(tgt_conn streamed)" <"$BATS_TEST_TMPDIR/snap.lm"
    echo "$stderr"
    [ "$status" -eq 0 ]
    DB=awk hashes source >"$BATS_TEST_TMPDIR/s"
    DB=streamed hashes target >"$BATS_TEST_TMPDIR/t"
    diff "$BATS_TEST_TMPDIR/s" "$BATS_TEST_TMPDIR/t"
    [ "$(schema_objects source awk)" = "$(schema_objects target streamed)" ]
    # every chunk is marked done; a second load loads nothing (same xmin)
    [ "$(qt streamed -c "SELECT count(*) > 0 FROM lm.copy")" = t ]
    local xmins
    xmins=$(qt streamed -c "SELECT md5(string_agg(xmin::text, ',' ORDER BY \"Id\")) FROM \"Sch ema\".\"we\"\"ird; x\"")
    run -0 --separate-stderr lm-apply --target "$(tgt_conn streamed)" "$BATS_TEST_TMPDIR/snap.lm"
    [ "$(qt streamed -c "SELECT md5(string_agg(xmin::text, ',' ORDER BY \"Id\")) FROM \"Sch ema\".\"we\"\"ird; x\"")" = "$xmins" ]
    DB=streamed hashes target >"$BATS_TEST_TMPDIR/t2"
    diff "$BATS_TEST_TMPDIR/s" "$BATS_TEST_TMPDIR/t2"
    # as if killed during post-data: begun, not done, a constraint missing
    qt streamed -c "DELETE FROM lm.meta WHERE key = 'stream_post_data'" \
        -c "ALTER TABLE \"Sch ema\".child DROP CONSTRAINT child_weird_id_fkey"
    run --separate-stderr lm-apply --target "$(tgt_conn streamed)" "$BATS_TEST_TMPDIR/snap.lm"
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ $stderr != *"already exists"* ]]
    [ "$(schema_objects source awk)" = "$(schema_objects target streamed)" ]
}

# ---------- database settings ----------

# Every setting of the current database, "role|name=value" lines (role "-"
# for the database's own).
db_settings() {   # db_settings SIDE DB
    PGDATABASE_TEST=$2 q "$1" -c "SELECT coalesce(r.rolname, '-') || '|' || c FROM pg_db_role_setting s
        LEFT JOIN pg_roles r ON r.oid = s.setrole CROSS JOIN LATERAL unnest(s.setconfig) c
        WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1"
}

@test "lm-snapshot: the database's settings (ALTER DATABASE / ROLE IN DATABASE SET) are set on the target, lists and quotes intact; default_transaction_read_only and a role the target lacks are left out; --skip-db-settings leaves all out" {
    q source -c "CREATE DATABASE dbset" -c "CREATE ROLE lm_set_app" -c "CREATE ROLE lm_set_gone"
    q target -c "CREATE ROLE lm_set_app"
    qs dbset -c "CREATE TABLE t (id int PRIMARY KEY); CREATE SCHEMA app; CREATE SCHEMA \"My, Schema\"" \
        -c "ALTER DATABASE dbset SET search_path = app, \"My, Schema\", \"\$user\", public" \
        -c "ALTER DATABASE dbset SET work_mem = '8MB'" \
        -c "ALTER DATABASE dbset SET \"myapp.tenant\" = 'a b''c \\d'" \
        -c "ALTER DATABASE dbset SET DateStyle = 'ISO, DMY'" \
        -c "ALTER ROLE lm_set_app IN DATABASE dbset SET statement_timeout = '5min'" \
        -c "ALTER ROLE lm_set_app IN DATABASE dbset SET default_transaction_read_only = on" \
        -c "ALTER ROLE lm_set_gone IN DATABASE dbset SET work_mem = '1MB'"
    local want
    want=$(db_settings source dbset | grep -v 'default_transaction_read_only\|^lm_set_gone|')
    [ "$(echo "$want" | wc -l)" = 5 ]
    newdb dbset1
    newdb dbset2
    hold_snapshot dbset
    run -0 --separate-stderr lm-snapshot --source "$(src_conn dbset)" --target "$(tgt_conn dbset1)" \
        --snapshot "$SNAP" --workdir "$WORK"
    echo "$stderr"
    [[ $stderr == *"database setting: ALTER DATABASE \"dbset1\" SET \"search_path\" TO 'app', 'My, Schema', '\$user', 'public'"* ]]
    [[ $stderr == *"database setting default_transaction_read_only=on of role lm_set_app left out"* ]]
    [[ $stderr == *'warning: database setting work_mem=1MB of role "lm_set_gone" left out: the role does not exist on the target'* ]]
    run -0 db_settings target dbset1
    assert_output "$want"
    # the search_path a new session gets is the source's
    run -0 qt dbset1 -c "SHOW search_path"
    assert_output 'app, "My, Schema", "$user", public'
    run -0 qt dbset1 -c "SHOW myapp.tenant"
    assert_output 'a b'"'"'c \d'
    run -0 --separate-stderr lm-snapshot --source "$(src_conn dbset)" --target "$(tgt_conn dbset2)" \
        --snapshot "$SNAP" --workdir "$WORK.2" --skip-db-settings
    release_snapshot dbset
    [[ $stderr == *"database settings not copied (--skip-db-settings)"* ]]
    run -0 db_settings target dbset2
    assert_output ""
}
