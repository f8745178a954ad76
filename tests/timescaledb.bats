#!/usr/bin/env bats
# TimescaleDB (vendor/timescaledb, the Apache-2.0 build) on real clusters:
# a PostgreSQL source's tables made hypertables on a TimescaleDB target
# (--hypertable), live changes applied through them, and a TimescaleDB
# source's hypertables migrated as hypertables (the source's dimensions,
# chunk by chunk), with keys, foreign keys and checks on both.

# shellcheck disable=SC2016,SC2154  # bash -c scripts; stderr: set by bats' run
load helpers
bats_require_minimum_version 1.5.0

setup_file() { tsdb_start_pair; }
teardown_file() { pg_stop_all; }
setup() { test_env; }

teardown() {
    exec 7>&- 2>/dev/null || true
    [ -z "${HOLD_PID:-}" ] || kill -9 "$HOLD_PID" 2>/dev/null || true
    return 0
}

# hold DB [lm-slot options...]: an exported snapshot of DB on the source, held
# open; sets SNAP, SYNC_LSN and HOLD_PID. With LM_TEST_HOLDER=psql a psql
# session's (no slot, SYNC_LSN empty), else lm-slot create --hold's (slot
# and publication "s_DB").
hold() {
    local db=$1; shift
    SYNC_LSN=
    if [ "${LM_TEST_HOLDER:-}" = psql ]; then
        psql_snapshot "$T" "$db" || return 1
    else
        slot_snapshot "$T" --source "$S" --slot "s_$db" --hold "$@" || return 1
    fi
    [ -n "$SNAP" ]
}
release() {
    exec 7>&- 2>/dev/null || true
    wait_pid "$HOLD_PID" 60 "the snapshot holder to end" || true
    HOLD_PID=
}

# the tables' contents compared through the tables themselves (a
# hypertable's rows are its chunks'): same_tables TABLE...
same_tables() {
    local t a b
    for t in "$@"; do
        a=$(PGDATABASE_TEST=$DB qhash source "$t")
        b=$(PGDATABASE_TEST=$DB qhash target "$t")
        [ "$a" = "$b" ] || { echo "$t differs: source $a, target $b"; return 1; }
        [ "${a%%:*}" -gt 0 ] || { echo "$t is empty"; return 1; }
    done
}

tgt_true() { [ "$(tgt -c "$1" 2>/dev/null)" = t ]; }

# same_text TARGET SOURCE: equal, else both shown
same_text() {
    [ "$1" = "$2" ] || { printf 'target:\n%s\nsource:\n%s\n' "$1" "$2"; return 1; }
}

# the constraints and indexes of a table, as one line each (not the foreign
# keys TimescaleDB adds for one that references a hypertable: one per chunk)
constraints_of() {   # constraints_of source|target TABLE
    PGDATABASE_TEST=$DB q "$1" -c "SELECT conname || ' ' || contype::text || ' ' || convalidated::text || ' ' || pg_get_constraintdef(oid)
        FROM pg_constraint WHERE conrelid = '$2'::regclass
        AND pg_get_constraintdef(oid) !~ 'REFERENCES _timescaledb_internal[.]' ORDER BY 1"
}
indexes_of() {
    PGDATABASE_TEST=$DB q "$1" -c "SELECT indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid)
        FROM pg_index WHERE indrelid = '$2'::regclass ORDER BY 1"
}

HOSTILE_SCHEMA='Sch ema'
HOSTILE_TABLE='Ev"ents; x'
HOSTILE_Q='"Sch ema"."Ev""ents; x"'

@test "timescaledb: PostgreSQL source, --hypertable: hypertables made before the data, chunks of their own, keys and foreign keys, live changes applied through them" {
    both_dbs pgsrc
    src -c "
        CREATE TABLE devices (id int PRIMARY KEY, name text);
        CREATE TABLE readings (time timestamptz NOT NULL, dev int NOT NULL REFERENCES devices,
            v double precision CHECK (v >= 0), note text, PRIMARY KEY (dev, time), UNIQUE (time, dev, v));
        ALTER TABLE readings ADD CONSTRAINT v_small CHECK (v < 1e9) NOT VALID;
        CREATE INDEX readings_v ON readings (v);
        CREATE TABLE alerts (id int PRIMARY KEY, dev int, t timestamptz,
            FOREIGN KEY (dev, t) REFERENCES readings (dev, time));
        CREATE SCHEMA \"$HOSTILE_SCHEMA\";
        CREATE TABLE $HOSTILE_Q (\"T\" bigint NOT NULL, \"Kind\" text NOT NULL, n int,
            PRIMARY KEY (\"T\", \"Kind\"));
        INSERT INTO devices SELECT g, 'd' || g FROM generate_series(1, 5) g;
        INSERT INTO readings SELECT '2024-01-01'::timestamptz + g * interval '1 hour', g % 5 + 1, g, repeat('x', g % 50)
            FROM generate_series(1, 480) g;
        INSERT INTO alerts SELECT g, g % 5 + 1, '2024-01-01'::timestamptz + g * interval '1 hour'
            FROM generate_series(1, 20) g;
        INSERT INTO $HOSTILE_Q SELECT g, 'k' || (g % 3), g FROM generate_series(1, 3000) g;"
    hold pgsrc
    run --separate-stderr lm-snapshot --source "$S" --target "$TG" --snapshot "$SNAP" --sync-lsn "$SYNC_LSN" \
        --workdir "$T/w" --jobs 2 --split-larger-than 8kB --hypertable "public.readings:time:2 days" \
        --hypertable "$HOSTILE_SCHEMA.$HOSTILE_TABLE:T:500"
    echo "$stderr"
    release
    [ "$status" -eq 0 ]

    # hypertables, with the dimensions asked for, before the data: every
    # row is in a chunk, none in the parent
    run -0 tgt -c "SELECT format('%I.%I', hypertable_schema, hypertable_name) || ' ' || dimension_type || ' '
        || coalesce(time_interval::text, integer_interval::text) FROM timescaledb_information.dimensions ORDER BY 1"
    assert_output "$HOSTILE_Q Time 500
public.readings Time 2 days"
    run -0 tgt -c "SELECT (SELECT count(*) FROM show_chunks('readings')) >= 10,
        (SELECT count(*) FROM show_chunks('$HOSTILE_Q')) >= 6,
        (SELECT count(*) FROM ONLY readings) + (SELECT count(*) FROM ONLY $HOSTILE_Q)"
    assert_output "t|t|0"
    same_tables devices readings alerts "$HOSTILE_Q"
    # the large one went in ctid ranges, in parallel
    run -0 tgt -c "SELECT count(*) > 1 FROM lm.copy WHERE relname = 'readings'"
    assert_output t
    # post-data: keys, unique, check (NOT VALID too), foreign keys, indexes,
    # on the hypertables (TimescaleDB refuses ALTER TABLE ONLY there)
    local t want
    for t in readings alerts "$HOSTILE_Q"; do
        run -0 constraints_of source "$t"
        want=$output
        run -0 constraints_of target "$t"
        same_text "$output" "$want"
    done
    run -0 constraints_of target readings
    [ "${#lines[@]}" -eq 5 ] || { echo "$output"; false; }
    run -0 indexes_of source readings
    local src_idx=$output
    run -0 indexes_of target readings
    while IFS= read -r line; do
        [[ $output == *"$line"* ]] || { echo "index missing on the target: $line"; false; }
    done <<<"$src_idx"
    # the chunks carry the keys: a duplicate is refused
    run -1 tgt -c "INSERT INTO readings SELECT time, dev, v FROM readings LIMIT 1"
    [[ $output == *"duplicate key"* ]]

    # live changes, into new chunks and old ones, through the hypertables
    src -c "
        INSERT INTO readings SELECT '2024-03-01'::timestamptz + g * interval '1 hour', g % 5 + 1, g, 'new'
            FROM generate_series(1, 200) g;
        UPDATE readings SET v = v + 1000, note = 'upd' WHERE time < '2024-01-03';
        DELETE FROM readings WHERE time BETWEEN '2024-01-10' AND '2024-01-11' AND dev <> 1
            AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.dev = readings.dev AND a.t = readings.time);
        INSERT INTO $HOSTILE_Q SELECT g, 'k' || (g % 3), g FROM generate_series(3001, 4500) g;
        UPDATE $HOSTILE_Q SET n = -n WHERE \"T\" % 7 = 0;
        DELETE FROM $HOSTILE_Q WHERE \"T\" BETWEEN 100 AND 199;"
    local end
    end=$(src -c "SELECT pg_current_wal_lsn()")
    src -c "SELECT 1 FROM pg_logical_emit_message(false, 'lm-test', 'tick')" >/dev/null
    lm-decode --source "$S" --slot s_pgsrc --endpos "$end" 2>"$T/decode.err" |
        lm-apply --target "$TG" 2>"$T/apply.err" || { cat "$T/decode.err" "$T/apply.err"; false; }
    same_tables devices readings alerts "$HOSTILE_Q"
    run -0 tgt -c "SELECT (SELECT count(*) FROM show_chunks('readings')) >= 14,
        (SELECT count(*) FROM show_chunks('$HOSTILE_Q')) >= 9,
        (SELECT count(*) FROM ONLY readings) + (SELECT count(*) FROM ONLY $HOSTILE_Q)"
    assert_output "t|t|0"
    lm-slot drop --source "$S" --slot s_pgsrc >/dev/null 2>&1 || true
}

# a TimescaleDB source: hypertables with a space dimension, an integer
# time column, a hostile name; a plain table they reference. With SCHEMA,
# the extension is in that schema, and $TS is its quoted name and a dot
# (for the extension's functions), else empty.
tsdb_source() {
    both_dbs "$1"
    TS=
    if [ -n "${2:-}" ]; then
        TS="\"$2\"."
        src -c "CREATE SCHEMA \"$2\""
    fi
    src -c "
        CREATE EXTENSION timescaledb ${2:+WITH SCHEMA \"$2\"};
        CREATE TABLE devices (id int PRIMARY KEY, name text);
        CREATE TABLE metrics (time timestamptz NOT NULL, dev int NOT NULL REFERENCES devices,
            val double precision CHECK (val > -1), PRIMARY KEY (dev, time));
        SELECT ${TS}create_hypertable('metrics', ${TS}by_range('time', interval '1 day'));
        SELECT ${TS}add_dimension('metrics', ${TS}by_hash('dev', 3));
        CREATE INDEX metrics_val ON metrics (val);
        CREATE SCHEMA \"$HOSTILE_SCHEMA\";
        CREATE TABLE $HOSTILE_Q (\"T\" bigint NOT NULL, \"Kind\" text NOT NULL, n int,
            UNIQUE (\"T\", \"Kind\"));
        SELECT ${TS}create_hypertable('$HOSTILE_Q', ${TS}by_range('T', 250));
        INSERT INTO devices SELECT g, 'd' || g FROM generate_series(1, 6) g;
        INSERT INTO metrics SELECT '2024-01-01'::timestamptz + g * interval '15 minutes', g % 6 + 1, g
            FROM generate_series(1, 500) g;
        INSERT INTO $HOSTILE_Q SELECT g, 'k' || (g % 3), g FROM generate_series(1, 2000) g;"
}

dims() {   # dims source|target: the hypertables' dimensions, one line each
    PGDATABASE_TEST=$DB q "$1" -c "SELECT hypertable_schema, hypertable_name, dimension_number, column_name,
        column_type, dimension_type, time_interval, integer_interval, num_partitions
        FROM timescaledb_information.dimensions ORDER BY 1, 2, 3"
}

@test "timescaledb: TimescaleDB source, no options: the source's dimensions, chunk by chunk, rows equal through the hypertables" {
    # the extension in a schema of its own, not on the search path
    tsdb_source tsrc "ts ext"
    # and one whose chunks are in a schema and under a prefix of its own
    src -c "CREATE SCHEMA \"my chunks\"; CREATE TABLE ev (t int NOT NULL, v text);
        SELECT ${TS}create_hypertable('ev', 't', chunk_time_interval => 100,
            associated_schema_name => 'my chunks', associated_table_prefix => 'odd');
        INSERT INTO ev SELECT g, 'v' || g FROM generate_series(1, 500) g"
    [ "$(src -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'my chunks'")" -ge 5 ]
    LM_TEST_HOLDER=psql hold tsrc
    run --separate-stderr lm-snapshot --source "$S" --target "$TG" --snapshot "$SNAP" --workdir "$T/w" --jobs 2
    echo "$stderr"
    release
    [ "$status" -eq 0 ]
    [[ $stderr == *"TimescaleDB 2.28.3 on the source: 3 hypertables"* ]]
    # the source's chunks in the custom schema were neither restored nor
    # copied as tables: the target's chunks are its own
    run -0 tgt -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'my chunks'"
    assert_output 0
    same_tables ev

    # the same dimensions (time, space: intervals and partitions)
    run -0 dims source
    local want=$output
    [ "$(echo "$want" | wc -l)" -eq 4 ]
    run -0 dims target
    assert_equal "$output" "$want"
    # chunks of its own: none of the source's chunk tables were restored
    # (every table in the chunk schema is a chunk of the target's catalog),
    # the parents hold no rows of their own
    run -0 tgt -c "SELECT (SELECT count(*) FROM ${TS}show_chunks('metrics')) >= 12,
        (SELECT count(*) FROM ${TS}show_chunks('$HOSTILE_Q')) >= 8,
        (SELECT count(*) FROM pg_class t WHERE t.relnamespace = '_timescaledb_internal'::regnamespace
          AND t.relkind = 'r' AND NOT EXISTS (SELECT 1 FROM _timescaledb_catalog.chunk c
            WHERE c.schema_name = '_timescaledb_internal' AND c.table_name = t.relname)
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
            AND d.objid = t.oid AND d.deptype = 'e')),
        (SELECT count(*) FROM ONLY metrics) + (SELECT count(*) FROM ONLY $HOSTILE_Q)"
    assert_output "t|t|0|0"
    same_tables devices metrics "$HOSTILE_Q"
    # the copy went chunk by chunk, its state under the hypertables' names
    local nm nh
    nm=$(src -c "SELECT count(*) FROM ${TS}show_chunks('metrics')")
    nh=$(src -c "SELECT count(*) FROM ${TS}show_chunks('$HOSTILE_Q')")
    run -0 tgt -c "SELECT relname, count(*) FROM lm.copy GROUP BY 1 ORDER BY 1"
    assert_output "$HOSTILE_TABLE|$((nh + 1))
devices|1
ev|7
metrics|$((nm + 1))"
    # keys, checks, foreign keys and indexes as on the source
    local t
    for t in metrics "$HOSTILE_Q"; do
        run -0 constraints_of source "$t"
        want=$output
        [ "${#lines[@]}" -ge 1 ]
        run -0 constraints_of target "$t"
        same_text "$output" "$want"
        run -0 indexes_of source "$t"
        want=$output
        run -0 indexes_of target "$t"
        same_text "$output" "$want"
    done
    # TimescaleDB's catalog is the target's own: its sequences were not set
    run -0 tgt -c "SELECT count(*) FROM _timescaledb_catalog.hypertable"
    assert_output 3
}

@test "timescaledb: TimescaleDB source, a target without TimescaleDB loaded: exit 4 before anything is made" {
    pg_start plain
    tsdb_source tplain
    q plain -c "CREATE DATABASE tplain"
    LM_TEST_HOLDER=psql hold tplain
    run -4 --separate-stderr lm-snapshot --source "$S" \
        --target "host=127.0.0.1 port=$PLAIN_PORT dbname=tplain user=postgres" --snapshot "$SNAP" --workdir "$T/w"
    release
    [[ $stderr == *"the source has 2 hypertables, and the target has no TimescaleDB loaded (shared_preload_libraries)"* ]]
    local n
    n=$(PGDATABASE_TEST=tplain q plain -c "SELECT count(*) FROM pg_tables
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'lm')")
    assert_equal "$n" 0
    pg_stop plain
}

@test "timescaledb: kill -9 mid-copy of a hypertable, then --resume: the chunks not done are copied, nothing doubled; a dead snapshot reloads the hypertable" {
    tsdb_source tkill
    LM_TEST_HOLDER=psql hold tkill
    local units
    units=$(( $(src -c "SELECT count(*) FROM show_chunks('metrics')") + 1 ))
    LM_SNAPSHOT_TEST_DELAY_MS=200 bg_start PID lm-snapshot --source "$S" --target "$TG" --snapshot "$SNAP" \
        --workdir "$T/w" --jobs 2
    wait_for 60 tgt_true "SELECT count(*) >= 4 FROM lm.copy WHERE relname = 'metrics'"
    kill -9 "$PID"
    wait_pid "$PID" 30 "lm-snapshot to end on SIGKILL" || true
    run -0 tgt -c "SELECT count(*) FROM lm.copy WHERE relname = 'metrics'"
    [ "$output" -ge 4 ] && [ "$output" -lt "$units" ]
    run --separate-stderr lm-snapshot --source "$S" --target "$TG" --snapshot "$SNAP" --workdir "$T/w" \
        --jobs 2 --resume
    echo "$stderr"
    [ "$status" -eq 0 ]
    release
    same_tables devices metrics "$HOSTILE_Q"
    run -0 tgt -c "SELECT count(*), sum(rows) FROM lm.copy WHERE relname = 'metrics'"
    assert_output "$units|500"

    # again, and the snapshot dies with the copy: the hypertable is
    # reloaded whole under a fresh snapshot, which sees later rows
    q target -c "DROP DATABASE tkill" -c "CREATE DATABASE tkill"
    LM_TEST_HOLDER=psql hold tkill
    LM_SNAPSHOT_TEST_DELAY_MS=200 bg_start PID lm-snapshot --source "$S" --target "$TG" --snapshot "$SNAP" \
        --workdir "$T/w2" --jobs 2
    wait_for 60 tgt_true "SELECT count(*) >= 4 FROM lm.copy WHERE relname = 'metrics'"
    kill -9 "$PID"
    wait_pid "$PID" 30 "lm-snapshot to end on SIGKILL" || true
    kill -9 "$HOLD_PID"
    release
    src -c "INSERT INTO metrics SELECT '2024-06-01'::timestamptz + g * interval '1 hour', g % 6 + 1, g
        FROM generate_series(1, 50) g"
    run --separate-stderr lm-snapshot --source "$S" --target "$TG" --snapshot "$SNAP" --workdir "$T/w2" \
        --jobs 2 --resume
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ $stderr == *"fresh snapshot"* ]]
    [[ $stderr == *"reloading the hypertable"* ]]
    same_tables devices metrics "$HOSTILE_Q"
    units=$(( $(src -c "SELECT count(*) FROM show_chunks('metrics')") + 1 ))
    run -0 tgt -c "SELECT count(*), sum(rows) FROM lm.copy WHERE relname = 'metrics'"
    assert_output "$units|550"
}
