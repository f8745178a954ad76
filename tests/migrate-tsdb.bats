#!/usr/bin/env bats
# lm-migrate from a TimescaleDB source to a TimescaleDB target (issue 18):
# start under writes that make new chunks after the slot and change rows of
# old chunks, a kill -9 of the orchestrator during the start and of lm-apply
# and lm-decode in the live phase, each followed by --resume, cutover,
# verify; the target's hypertables are hypertables with the source's
# dimensions, their rows equal row for row, through the hypertables. And a
# PostgreSQL source's table made a hypertable (--hypertable) the same way.

# shellcheck disable=SC2016,SC2154  # bash -c scripts; output: set by bats' run
load helpers
load migrate_helpers   # setup, teardown_file, mkdb, qs, qt, lmm, ...
bats_require_minimum_version 1.5.0

HT='public."Odd ""reading"" name"'

setup_file() {
    tsdb_installed || {
        echo "TimescaleDB is not installed: run scripts/install-deps tsdb" >&2
        return 1
    }
    pg_start source "${TSDB_CONF[@]}" "max_connections = 100"
    pg_start target "${TSDB_CONF[@]}" "max_connections = 100"
    q source -c "CREATE DATABASE tmpl"
}

teardown() {
    show_failed_migration
    [ -z "${WRITER:-}" ] || kill "$WRITER" 2>/dev/null || true
    abort_migration
}

# the source: a hypertable with a space dimension and a hostile name, an
# integer-time hypertable with a sequence, one whose rows are in a single
# chunk (its copy is one unit: lm-apply empties the hypertable first), a
# plain table
make_source() {
    qt -c "CREATE EXTENSION timescaledb"
    qs -c "CREATE EXTENSION timescaledb" \
       -c "CREATE TABLE $HT (ts timestamptz NOT NULL, dev int NOT NULL, v text, PRIMARY KEY (ts, dev))" \
       -c "SELECT create_hypertable('$HT', 'ts', chunk_time_interval => interval '1 day')" \
       -c "SELECT add_dimension('$HT', 'dev', number_partitions => 3)" \
       -c "INSERT INTO $HT SELECT timestamptz '2026-01-01' + g * interval '1 hour', d, md5(g::text)
             FROM generate_series(0, 119) g, generate_series(1, 6) d" \
       -c "CREATE TABLE public.ticks (t bigint NOT NULL, id bigserial, v int, PRIMARY KEY (t, id))" \
       -c "SELECT create_hypertable('public.ticks', 't', chunk_time_interval => 1000)" \
       -c "INSERT INTO public.ticks (t, v) SELECT g, g FROM generate_series(0, 4999) g" \
       -c "CREATE TABLE public.one (k int NOT NULL PRIMARY KEY, v text)" \
       -c "SELECT create_hypertable('public.one', 'k', chunk_time_interval => 1000000)" \
       -c "INSERT INTO public.one SELECT g, md5(g::text) FROM generate_series(1, 10) g" \
       -c "CREATE TABLE public.plain (id serial PRIMARY KEY, v text)" \
       -c "INSERT INTO public.plain (v) SELECT md5(g::text) FROM generate_series(1, 500) g"
}

# writes, one transaction a round, until killed: rows in new chunks (days
# and tick ranges past the loaded ones), updates and deletes in old chunks
writer() {
    bg_start WRITER bash -c '
        i=0
        while :; do
            i=$((i + 1))
            psql -X -q -v ON_ERROR_STOP=1 -d "$0" -c "BEGIN" \
              -c "INSERT INTO $1 SELECT timestamptz '\''2026-01-06'\'' + ($i * 3 + g) * interval '\''1 hour'\'', d, '\''new'\'' || $i
                    FROM generate_series(0, 2) g, generate_series(1, 6) d" \
              -c "INSERT INTO public.ticks (t, v) SELECT 5000 + $i * 50 + g, $i FROM generate_series(0, 49) g" \
              -c "UPDATE $1 SET v = v || '\''u'\'' WHERE ts = timestamptz '\''2026-01-01'\'' + ($i % 120) * interval '\''1 hour'\''" \
              -c "DELETE FROM $1 WHERE ts = timestamptz '\''2026-01-02'\'' + ($i % 24) * interval '\''1 hour'\'' AND dev = 1" \
              -c "UPDATE public.ticks SET v = -v WHERE t = $i" \
              -c "DELETE FROM public.ticks WHERE t = 2000 + $i" \
              -c "UPDATE public.plain SET v = v || '\''u'\'' WHERE id = $i" \
              -c "INSERT INTO public.plain (v) VALUES ('\''w'\'' || $i)" \
              -c "COMMIT" >/dev/null 2>>"$2" || exit 1
            echo "$i" >"$3"
            sleep 0.1
        done' "$SRC" "$HT" "$BATS_TEST_TMPDIR/writer.err" "$BATS_TEST_TMPDIR/writer.n"
}
rounds() { cat "$BATS_TEST_TMPDIR/writer.n" 2>/dev/null || echo 0; }

# the dimensions of a database's hypertables, as one comparable text
dims() {
    "$1" -c "SELECT string_agg(format('%s.%s %s %s %s %s %s', hypertable_schema, hypertable_name, dimension_number,
                 column_name, dimension_type, coalesce(time_interval::text, integer_interval::text), coalesce(num_partitions, 0)),
                 E'\n' ORDER BY hypertable_schema, hypertable_name, dimension_number) FROM timescaledb_information.dimensions"
}

# row for row, through the hypertables (chunk names differ by design)
tables_equal() {
    local t s d
    for t in "$HT" public.one public.ticks public.plain; do
        s=$(PGDATABASE_TEST=s_$DB qhash source "$t")
        d=$(PGDATABASE_TEST=t_$DB qhash target "$t")
        echo "$t: source $s target $d"
        [ "$s" = "$d" ] || return 1
        [ "${s%%:*}" -gt 0 ] || return 1
    done
}

@test "migrate-tsdb: TimescaleDB to TimescaleDB under writes that make new chunks, kill -9 of the orchestrator, lm-apply and lm-decode, --resume, cutover, verify" {
    mkdb live
    make_source
    local chunks0
    chunks0=$(qs -c "SELECT count(*) FROM timescaledb_information.chunks")
    writer
    wait_for 20 bash -c "[ \"\$(cat '$BATS_TEST_TMPDIR/writer.n' 2>/dev/null || echo 0)\" -ge 2 ]"
    # the orchestrator dies early in the start (wherever it is by then)
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --detach
    local mpid
    wait_for 30 bash -c "[ -s '$W/pids/migrate' ]"
    mpid=$(pid_of migrate)
    sleep 1
    kill -9 "$mpid"
    wait_for 10 bash -c "! kill -0 $mpid 2>/dev/null"
    # as if it died between the slot's result and writing the table lists
    rm -f "$W/tables.list" "$W/unpublished.list"
    run -0 lmm start --resume --workdir "$W"
    assert_output --partial "caught up"
    # the migration's table list: hypertable parents and the plain table,
    # no chunk and no extension member
    read_list() { tr '\0' '\n' <"$W/tables.list"; }
    run -0 read_list
    assert_output "$(printf '%s\n' "$HT" public.one public.plain public.ticks | LC_ALL=C sort)"
    # the live phase: each stage dies in turn while the writes go on
    # (new chunks keep coming), --resume
    local r0 pid stage
    for stage in apply decode; do
        r0=$(rounds)
        pid=$(pid_of "$stage")
        [ -n "$pid" ]
        kill -9 "$pid"
        wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"
        wait_for 30 bash -c "[ \"\$(cat '$BATS_TEST_TMPDIR/writer.n')\" -ge $((r0 + 5)) ]"
        run -0 lmm start --resume --workdir "$W"
        assert_output --partial "caught up"
        [ "$(pid_of "$stage")" != "$pid" ]
    done
    sleep 1
    kill "$WRITER"; wait "$WRITER" 2>/dev/null || true
    WRITER=
    [ ! -s "$BATS_TEST_TMPDIR/writer.err" ] || { cat "$BATS_TEST_TMPDIR/writer.err"; false; }
    # chunks were made on the source after the slot
    local chunks1
    chunks1=$(qs -c "SELECT count(*) FROM timescaledb_information.chunks")
    echo "chunks: $chunks0 before, $chunks1 after, $(rounds) write rounds"
    [ "$chunks1" -gt $((chunks0 + 4)) ]
    run -0 lmm cutover --workdir "$W" --timeout 120
    assert_output --partial "cutover complete"
    assert_output --partial "4 tables equal"
    run -0 lmm verify --workdir "$W"
    assert_output --partial "4 tables equal"
    # an independent comparison, through the hypertables
    tables_equal
    sequences_caught_up
    # the target's hypertables: the source's dimensions, chunks of their own
    run -0 dims qs
    local sd=$output
    [ -n "$sd" ]
    run -0 dims qt
    assert_equal "$output" "$sd"
    run -0 qt -c "SELECT count(*) FROM timescaledb_information.hypertables"
    assert_output 3
    run -0 qt -c "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'Odd \"reading\" name'"
    [ "$output" -gt 3 ]
    # no stray plain copy of a chunk and no row outside the chunks: every
    # user table of the target is one of the three or a chunk of its own
    run -0 qt -c "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lm')
                    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
                    AND NOT EXISTS (SELECT 1 FROM _timescaledb_catalog.chunk ch WHERE ch.schema_name = n.nspname AND ch.table_name = c.relname)
                  ORDER BY 1"
    assert_output "$(printf '%s\n' "$HT" public.one public.plain public.ticks | LC_ALL=C sort)"
    run -0 qt -c "SELECT (SELECT count(*) FROM ONLY $HT) + (SELECT count(*) FROM ONLY public.ticks) + (SELECT count(*) FROM ONLY public.one)"
    assert_output 0
}

@test "migrate-tsdb: a TimescaleDB source needs a superuser: a replication role is refused before anything is made, with what to do" {
    mkdb nosuper
    make_source
    q source -c "DO \$\$ BEGIN CREATE ROLE tsdb_rep LOGIN REPLICATION; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$"
    qs -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO tsdb_rep" -c "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO tsdb_rep" \
       -c "GRANT CREATE ON DATABASE s_nosuper TO tsdb_rep"
    run -4 lmm start --source "${SRC/user=postgres/user=tsdb_rep}" --target "$TGT" --workdir "$W"
    assert_output --partial "source role tsdb_rep is not a superuser"
    assert_output --partial "TABLES IN SCHEMA"
    assert_output --partial "preflight found 1 problem(s)"
    [ ! -e "$W/logs/slot.log" ]
    run -0 qs -c "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)"
    assert_output 0
}

@test "migrate-tsdb: a PostgreSQL table made a hypertable (--hypertable) under live writes: a hypertable with chunks of its own, cutover, verify, rows equal" {
    mkdb pgsrc
    qt -c "CREATE EXTENSION timescaledb"
    qs -c "CREATE TABLE public.readings (time timestamptz NOT NULL, dev int NOT NULL, v double precision, id bigserial,
             PRIMARY KEY (dev, time))" \
       -c "INSERT INTO public.readings (time, dev, v) SELECT timestamptz '2026-01-01' + g * interval '1 hour', d, g
             FROM generate_series(0, 239) g, generate_series(1, 3) d" \
       -c "CREATE TABLE public.plain (id serial PRIMARY KEY, v text)" \
       -c "INSERT INTO public.plain (v) SELECT md5(g::text) FROM generate_series(1, 100) g"
    bg_start WRITER bash -c '
        i=0
        while :; do
            i=$((i + 1))
            psql -X -q -v ON_ERROR_STOP=1 -d "$0" -c "BEGIN" \
              -c "INSERT INTO public.readings (time, dev, v) SELECT timestamptz '\''2026-01-11'\'' + ($i * 2 + g) * interval '\''1 hour'\'', d, -$i
                    FROM generate_series(0, 1) g, generate_series(1, 3) d" \
              -c "UPDATE public.readings SET v = v + 0.5 WHERE time = timestamptz '\''2026-01-01'\'' + ($i % 240) * interval '\''1 hour'\''" \
              -c "DELETE FROM public.readings WHERE time = timestamptz '\''2026-01-02'\'' + ($i % 24) * interval '\''1 hour'\'' AND dev = 2" \
              -c "INSERT INTO public.plain (v) VALUES ('\''w'\'' || $i)" \
              -c "COMMIT" >/dev/null 2>>"$1" || exit 1
            echo "$i" >"$2"
            sleep 0.1
        done' "$SRC" "$BATS_TEST_TMPDIR/writer.err" "$BATS_TEST_TMPDIR/writer.n"
    wait_for 20 bash -c "[ \"\$(cat '$BATS_TEST_TMPDIR/writer.n' 2>/dev/null || echo 0)\" -ge 2 ]"
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2 --hypertable "public.readings:time:2 days"
    assert_output --partial "caught up"
    wait_for 30 bash -c "[ \"\$(cat '$BATS_TEST_TMPDIR/writer.n')\" -ge 40 ]"
    kill "$WRITER"; wait "$WRITER" 2>/dev/null || true
    WRITER=
    [ ! -s "$BATS_TEST_TMPDIR/writer.err" ] || { cat "$BATS_TEST_TMPDIR/writer.err"; false; }
    run -0 lmm cutover --workdir "$W" --timeout 120
    assert_output --partial "cutover complete"
    assert_output --partial "2 tables equal"
    run -0 lmm verify --workdir "$W"
    assert_output --partial "2 tables equal"
    # a hypertable on time with 2-day chunks, its rows in chunks of its own
    # (the live rows' days too), none in the parent; rows equal
    run -0 qt -c "SELECT column_name || ' ' || time_interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'readings'"
    assert_output "time 2 days"
    run -0 qt -c "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings' AND range_start >= '2026-01-11'"
    [ "$output" -ge 1 ]
    run -0 qt -c "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'"
    [ "$output" -ge 6 ]
    run -0 qt -c "SELECT count(*) FROM ONLY public.readings"
    assert_output 0
    local t
    for t in public.readings public.plain; do
        [ "$(PGDATABASE_TEST=s_$DB qhash source "$t")" = "$(PGDATABASE_TEST=t_$DB qhash target "$t")" ]
    done
    sequences_caught_up public
}
