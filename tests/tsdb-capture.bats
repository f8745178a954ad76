#!/usr/bin/env bats
# The source side of changes with TimescaleDB (issue 18), against real
# TimescaleDB clusters: lm-slot leaves every extension's own tables out and
# publishes the hypertables with their chunk schemas whole (chunks made
# after the slot are captured from their first row), refuses what cannot be
# followed live before creating anything, and sets REPLICA IDENTITY FULL
# through a keyless hypertable; lm-decode writes each chunk's changes under
# its hypertable's name (looked up by relation id); lm-apply applies them
# to the target's hypertables.

bats_require_minimum_version 1.5.0
load helpers

# A hostile hypertable, whose chunks live in a schema and under a prefix
# of its own (never parsed: the map goes by relation id)
HT='"Sch ema"."We""ird ht.x"'
HT_CHUNKS_LIT="'Chunk''s \"sch\"'"

setup_file() { tsdb_start_pair; }
teardown_file() { pg_stop_all; }
setup() { test_env; }

# What schema_sql and target_schema_sql share: metrics' dimensions (its
# table is each side's own), ints, rides and the hostile one's table
both_sides_sql() {
    cat <<SQL
SELECT create_hypertable('metrics', 't', chunk_time_interval => interval '1 day');
SELECT add_dimension('metrics', 'dev', number_partitions => 3);
CREATE TABLE ints (id bigint PRIMARY KEY, v int);
SELECT create_hypertable('ints', 'id', chunk_time_interval => 1000);
CREATE TABLE rides (t timestamptz NOT NULL, vendor text, fare numeric);
SELECT create_hypertable('rides', 't', chunk_time_interval => interval '7 days');
CREATE SCHEMA "Sch ema";
CREATE TABLE $HT (t timestamptz NOT NULL PRIMARY KEY, "a b" int);
SQL
}

# The hypertables: a space dimension with a large text column (TOAST) and
# a column dropped after the first chunks were made (old chunks keep a
# dropped attribute, new ones do not), an integer time column, a keyless
# one, and the hostile one. Rows at fixed times in 2024.
schema_sql() {
    cat <<SQL
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE TABLE metrics (t timestamptz NOT NULL, junk int, dev int NOT NULL, v float8, note text,
                      PRIMARY KEY (t, dev));
$(both_sides_sql)
SELECT create_hypertable('$HT', 't', chunk_time_interval => interval '1 day',
    associated_schema_name => $HT_CHUNKS_LIT, associated_table_prefix => 'my chunk');
INSERT INTO metrics (t, junk, dev, v, note)
    SELECT timestamptz '2024-01-01' + g * interval '3 hours', 0, g % 5, g,
           CASE WHEN g % 10 = 0 THEN (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 300) i)
                ELSE 'n' || g END
    FROM generate_series(1, 60) g;
ALTER TABLE metrics DROP COLUMN junk;
INSERT INTO ints SELECT g * 97, g FROM generate_series(1, 40) g;
INSERT INTO rides SELECT timestamptz '2024-01-01' + g * interval '1 day', 'v' || g % 3, g FROM generate_series(1, 30) g;
INSERT INTO rides SELECT timestamptz '2024-01-02', 'dup', 7 FROM generate_series(1, 2);
INSERT INTO $HT SELECT timestamptz '2024-01-01' + g * interval '5 hours', g FROM generate_series(1, 20) g;
CREATE TABLE trunc (t int NOT NULL PRIMARY KEY, v text);
SELECT create_hypertable('trunc', 't', chunk_time_interval => 10);
INSERT INTO trunc SELECT g, 'old' FROM generate_series(1, 25) g;
SQL
}

# The target's hypertables, made by hand (the snapshot side is
# lm-snapshot's): metrics has its columns in another order.
target_schema_sql() {
    cat <<SQL
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE TABLE metrics (note text, v float8, dev int NOT NULL, t timestamptz NOT NULL, PRIMARY KEY (t, dev));
$(both_sides_sql)
SELECT create_hypertable('$HT', 't', chunk_time_interval => interval '1 day');
CREATE TABLE trunc (t int NOT NULL PRIMARY KEY, v text);
SELECT create_hypertable('trunc', 't', chunk_time_interval => 10);
SQL
}

# The rows of each hypertable, read through it, in one column order.
SELECTS=("SELECT t, dev, v, note FROM metrics" "SELECT id, v FROM ints"
         "SELECT t, vendor, fare FROM rides" "SELECT t, \"a b\" FROM $HT" "SELECT t, v FROM trunc")
ht_hashes() {   # ht_hashes CLUSTER
    local s
    for s in "${SELECTS[@]}"; do
        PGDATABASE_TEST=$DB qhash "$1" "($s)"
    done
}

# Copy the rows as they are now from the source's hypertables into the
# target's (a stand-in for lm-snapshot, before the slot).
copy_rows() {
    local s
    for s in "${SELECTS[@]}"; do
        local into=${s#SELECT } cols
        cols=${into% FROM *}
        into=${into#* FROM }
        src -c "COPY ($s) TO STDOUT" | tgt -c "COPY $into ($cols) FROM STDIN"
    done
}

# A database NAME on the source only (use_db: S is its connection string).
src_db() {
    use_db "$1"
    q source -c "CREATE DATABASE \"$1\""
}

slot_tables() { src -c "SELECT format('%I.%I', schemaname, tablename) FROM pg_publication_tables WHERE pubname = '$1' ORDER BY 1"; }

@test "lm-slot create leaves every extension's own tables out, TimescaleDB's and others' alike" {
    # a table that belongs to another extension (ALTER EXTENSION ... ADD
    # TABLE makes the same pg_depend row an extension script does), keyless
    src_db ext
    src -c "CREATE EXTENSION isn" -c "CREATE TABLE isn_owned (a int)" \
        -c "ALTER EXTENSION isn ADD TABLE isn_owned" -c "CREATE TABLE mine (id int PRIMARY KEY)"
    run -0 --separate-stderr lm-slot create --source "$S" --slot ext_plain
    run -0 slot_tables ext_plain
    assert_output "public.mine"
    run -0 lm-slot drop --source "$S" --slot ext_plain

    # TimescaleDB's catalog (some of it keyless) on top: still only the user's
    src -c "CREATE EXTENSION timescaledb"
    run -0 --separate-stderr lm-slot create --source "$S" --slot ext_tsdb
    run -0 slot_tables ext_tsdb
    assert_output "public.mine"
    run -0 lm-slot drop --source "$S" --slot ext_tsdb

    # naming one is refused, with the extension it belongs to
    run -4 --separate-stderr lm-slot create --source "$S" --slot ext_named --table isn_owned
    [[ $stderr == *'table "isn_owned" belongs to extension "isn"'* ]]
    run -4 --separate-stderr lm-slot create --source "$S" --slot ext_named --table _timescaledb_catalog.hypertable
    [[ $stderr == *'belongs to extension "timescaledb"'* ]]
    run -0 src -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ext_named'"
    assert_output 0
}

@test "a TimescaleDB source: hypertables plus their chunk schemas, keyless ones FULL through the hypertable" {
    src_db pub
    schema_sql | src -q -f - >/dev/null
    # without --replica-identity-full the keyless hypertable is named (the
    # chunks never are, nor TimescaleDB's keyless catalog tables)
    run -4 --separate-stderr lm-slot create --source "$S" --slot pub
    [[ $stderr == *"hypertable public.rides has no replica identity"* ]]
    [[ $stderr != *_chunk* && $stderr != *_timescaledb_* ]]
    [[ $stderr == *"1 problem found"* ]]

    run -0 --separate-stderr lm-slot create --source "$S" --slot pub --replica-identity-full
    [[ $stderr == *"set REPLICA IDENTITY FULL on hypertable public.rides"* ]]
    # the explicit list: the hypertables (TimescaleDB itself adds the
    # chunks that exist to a publication that names their hypertable) and
    # TimescaleDB's chunk catalog (for lm-decode only), no other table of
    # TimescaleDB's
    run -0 src -c "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_publication_rel pr
                   JOIN pg_publication p ON p.oid = pr.prpubid JOIN pg_class c ON c.oid = pr.prrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = 'pub'
                   AND NOT EXISTS (SELECT 1 FROM _timescaledb_catalog.chunk ch
                                   WHERE ch.schema_name = n.nspname AND ch.table_name = c.relname)
                   ORDER BY 1"
    assert_output "$(printf '%s\n' "$HT" _timescaledb_catalog.chunk public.ints public.metrics public.rides public.trunc)"
    # the schemas: TimescaleDB's default and the hostile hypertable's own
    run -0 src -c "SELECT pn.pnnspid::regnamespace::text FROM pg_publication_namespace pn
                   JOIN pg_publication p ON p.oid = pn.pnpubid WHERE p.pubname = 'pub' ORDER BY 1"
    assert_output "$(printf '%s\n' '"Chunk'"'"'s ""sch"""' _timescaledb_internal)"
    # every chunk is published, and so is one made after the slot, and the
    # keyless hypertable's chunks carry FULL, the new one too
    src -c "INSERT INTO rides VALUES ('2031-06-01', 'new', 1)" \
        -c "INSERT INTO $HT VALUES ('2031-06-01', 1)"
    run -0 src -c "SELECT count(*)::text FROM show_chunks('rides') c WHERE c::text NOT IN (
                     SELECT format('%I.%I', schemaname, tablename) FROM pg_publication_tables WHERE pubname = 'pub')
                   UNION ALL SELECT count(*)::text FROM show_chunks('$HT') c WHERE c::text NOT IN (
                     SELECT format('%I.%I', schemaname, tablename) FROM pg_publication_tables WHERE pubname = 'pub')
                   UNION ALL SELECT count(*)::text FROM show_chunks('rides') c
                     JOIN pg_class r ON r.oid = c WHERE r.relreplident <> 'f'
                   UNION ALL SELECT (SELECT relreplident FROM pg_class WHERE oid = 'rides'::regclass)::text"
    assert_output "$(printf '0\n0\n0\nf')"
    run -0 src -c "SELECT count(*) >= 5 FROM show_chunks('rides')"
    assert_output t
    run -0 lm-slot drop --source "$S" --slot pub

    # the chunk schemas need superuser; said so, and nothing is created
    src -c "CREATE ROLE lm_notsuper LOGIN REPLICATION" -c "GRANT CREATE ON DATABASE pub TO lm_notsuper" \
        -c "ALTER TABLE metrics OWNER TO lm_notsuper" -c "ALTER TABLE ints OWNER TO lm_notsuper" \
        -c "ALTER TABLE rides OWNER TO lm_notsuper" -c "ALTER TABLE $HT OWNER TO lm_notsuper" \
        -c "ALTER TABLE trunc OWNER TO lm_notsuper"
    run -4 --separate-stderr lm-slot create --source "${S/user=postgres/user=lm_notsuper}" --slot pub_ns
    [[ $stderr == *'role "lm_notsuper" is not a superuser'*'TABLES IN SCHEMA'* ]]
    [[ $stderr == *"1 problem found"* ]]
    run -0 src -c "SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pub_ns')
                        + (SELECT count(*) FROM pg_publication WHERE pubname = 'pub_ns')"
    assert_output 0
}

@test "lm-slot create names compressed chunks, continuous aggregates and chunk-dropping jobs first" {
    src_db pre
    schema_sql | src -q -f - >/dev/null
    # The apache build of TimescaleDB can make none of these, so their
    # catalog rows are written by hand as superuser (in one transaction,
    # rolled back below): a retention policy and a user job (scheduled far
    # in the future, so that no scheduler runs them), a continuous
    # aggregate, a chunk marked compressed.
    src -c "INSERT INTO _timescaledb_catalog.bgw_job (application_name, schedule_interval, max_runtime,
              max_retries, retry_period, proc_schema, proc_name, scheduled, initial_start, hypertable_id, config)
            VALUES ('Retention Policy [1000]', '1 day', '5 min', -1, '5 min', '_timescaledb_functions',
              'policy_retention', true, '2100-01-01', (SELECT id FROM _timescaledb_catalog.hypertable
              WHERE table_name = 'metrics'), '{\"drop_after\": \"30 days\"}'),
                   ('User-Defined Action [1001]', '1 hour', '5 min', -1, '5 min', 'public', 'my_job', true,
              '2100-01-01', NULL, NULL),
                   ('Paused [1002]', '1 hour', '5 min', -1, '5 min', 'public', 'paused_job', false,
              '2100-01-01', NULL, NULL)" \
        -c "INSERT INTO _timescaledb_catalog.continuous_agg (mat_hypertable_id, raw_hypertable_id,
              user_view_schema, user_view_name, partial_view_schema, partial_view_name, direct_view_schema,
              direct_view_name) SELECT (SELECT id FROM _timescaledb_catalog.hypertable WHERE table_name = 'ints'),
              (SELECT id FROM _timescaledb_catalog.hypertable WHERE table_name = 'metrics'),
              'public', 'daily \"avg\"', 'public', 'p', 'public', 'd'" \
        -c "UPDATE _timescaledb_catalog.chunk SET status = 1 WHERE id = (SELECT min(id) FROM
              _timescaledb_catalog.chunk WHERE hypertable_id = (SELECT id FROM _timescaledb_catalog.hypertable
              WHERE table_name = 'ints'))"
    run -4 --separate-stderr lm-slot create --source "$S" --slot pre --replica-identity-full
    echo "$stderr"
    [[ $stderr == *"background job 1000 (\"Retention Policy [1000]\", _timescaledb_functions.policy_retention on hypertable public.metrics) is a retention policy: it drops chunks"* ]]
    [[ $stderr == *"alter_job(1000, scheduled => false)"* ]]
    [[ $stderr == *"background job 1001 (\"User-Defined Action [1001]\", public.my_job) is a user-defined job"* ]]
    [[ $stderr == *"alter_job(1001, scheduled => false)"* ]]
    [[ $stderr != *"1002"* ]]
    [[ $stderr == *'continuous aggregate public."daily ""avg""": it cannot be migrated live'* ]]
    [[ $stderr == *"DROP MATERIALIZED VIEW"* ]]
    [[ $stderr == *"compressed chunk _timescaledb_internal."*" of hypertable public.ints"* ]]
    [[ $stderr == *"decompress_chunk"* ]]
    [[ $stderr == *"4 problems found: nothing was created on the source"* ]]
    run -0 src -c "SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pre')
                        + (SELECT count(*) FROM pg_publication WHERE pubname = 'pre')
                        + (SELECT count(*) FROM pg_class WHERE relname = 'rides' AND relreplident = 'f')"
    assert_output 0
    src -c "DELETE FROM _timescaledb_catalog.bgw_job WHERE id >= 1000" \
        -c "DELETE FROM _timescaledb_catalog.continuous_agg" -c "UPDATE _timescaledb_catalog.chunk SET status = 0"
    run -0 --separate-stderr lm-slot create --source "$S" --slot pre --replica-identity-full
    run -0 lm-slot drop --source "$S" --slot pre
}

@test "chunks made after the slot are captured from their first row, under the hypertable's name, and applied to the target's hypertables" {
    both_dbs cap
    schema_sql | src -q -f - >/dev/null
    target_schema_sql | tgt -q -f - >/dev/null
    copy_rows
    run -0 --separate-stderr lm-slot create --source "$S" --slot cap --replica-identity-full
    src -c "SELECT count(*) FROM show_chunks('metrics')" >"$T/chunks.before"

    # one transaction: rows in new chunks (far in the future: each needs a
    # chunk made in this transaction) with updates and deletes of rows in
    # old chunks, TOAST-unchanged updates (note not updated), and a row
    # TimescaleDB's own table in the published schema gets
    src -q <<SQL
BEGIN;
INSERT INTO metrics SELECT timestamptz '2030-01-01' + g * interval '7 hours', g % 5, -g, 'future ' || g FROM generate_series(1, 12) g;
UPDATE metrics SET v = v + 1000 WHERE t < '2024-01-04';
DELETE FROM metrics WHERE t BETWEEN '2024-01-04' AND '2024-01-05';
INSERT INTO ints SELECT 100000 + g * 333, g FROM generate_series(1, 9) g;
UPDATE ints SET v = -v WHERE id < 1000;
DELETE FROM ints WHERE id BETWEEN 1000 AND 1500;
INSERT INTO rides VALUES ('2030-02-01', 'far', 1.5), ('2030-03-01', 'far', 2.5);
UPDATE rides SET fare = fare * 10 WHERE t < '2024-01-10';
DELETE FROM rides WHERE vendor = 'v1' AND t > '2024-01-20';
UPDATE rides SET fare = 8 WHERE vendor = 'dup';
INSERT INTO $HT VALUES ('2030-01-01', -1), ('2030-01-02 12:00', -2);
UPDATE $HT SET "a b" = "a b" * 100 WHERE t < '2024-01-02';
DELETE FROM $HT WHERE t BETWEEN '2024-01-03' AND '2024-01-04';
INSERT INTO _timescaledb_internal.bgw_job_stat_history (job_id, pid, execution_start, succeeded) VALUES (3, 0, now(), true);
COMMIT;
SQL
    # then the new chunks' rows changed, TOAST-unchanged again, and a chunk
    # made in a transaction of its own
    src -c "UPDATE metrics SET note = (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i) WHERE t >= '2030-01-01' AND dev = 1" \
        -c "UPDATE metrics SET v = v * 2 WHERE t >= '2030-01-01'" \
        -c "UPDATE metrics SET v = 0 WHERE note LIKE '%' AND length(note) > 1000" \
        -c "DELETE FROM metrics WHERE t >= '2030-01-01' AND dev = 2" \
        -c "DELETE FROM ints WHERE id = 100333" -c "UPDATE rides SET vendor = 'farther' WHERE t = '2030-03-01'" \
        -c "INSERT INTO ints VALUES (900000, 1)"
    # a chunk made after the slot and dropped again by a TRUNCATE of its
    # hypertable before lm-decode runs: the stream's chunk catalog rows
    # name its hypertable; the chunks from before the slot, gone too, are
    # in the TRUNCATE with their hypertable
    src -c "INSERT INTO trunc VALUES (1000, 'gone')" \
        -c "TRUNCATE trunc" -c "INSERT INTO trunc VALUES (2000, 'new'), (5, 'again')"
    run -0 src -c "SELECT count(*) > $(cat "$T/chunks.before") FROM show_chunks('metrics')"
    assert_output t
    end=$(src -c "SELECT pg_current_wal_lsn()")

    run -0 lm-decode --source "$S" --slot cap --endpos "$end" -o "$T/cap.lm"
    run -0 lm-cat "$T/cap.lm"
    echo "$output" | grep '^relation' >"$T/relations"
    cat "$T/relations"
    # every relation under a hypertable's name, none a chunk's, none of
    # TimescaleDB's own; several relids for metrics (old and new chunks)
    run -1 grep -E '_hyper_|my chunk|Chunk|_timescaledb|bgw_' "$T/relations"
    run -0 grep -c ' public\.metrics ' "$T/relations"
    [ "$output" -ge 3 ]
    grep -q " Sch ema\\.We\"ird ht\\.x " "$T/relations"
    grep -q ' public\.rides (replica identity f)' "$T/relations"
    run -1 grep -E '_hyper_|my chunk' <(lm-cat "$T/cap.lm")

    run -0 --separate-stderr lm-apply --target "$TG" "$T/cap.lm"
    run -0 ht_hashes source
    src_h=$output
    run -0 ht_hashes target
    assert_output "$src_h"
    # the target made chunks of its own for the new rows
    run -0 tgt -c "SELECT count(*) > $(cat "$T/chunks.before") FROM show_chunks('metrics')"
    assert_output t
    run -0 tgt -c "SELECT count(*) FROM _timescaledb_internal.bgw_job_stat_history WHERE pid = 0"
    assert_output 0
    run -0 lm-slot drop --source "$S" --slot cap
}

@test "a chunk made before the slot, dropped before lm-decode started: exit 4, naming it" {
    src_db gone
    src -c "CREATE EXTENSION timescaledb" -c "CREATE TABLE g (t timestamptz NOT NULL PRIMARY KEY)" \
        -c "SELECT create_hypertable('g', 't')" -c "INSERT INTO g VALUES ('2024-01-01'), ('2035-01-01')" >/dev/null
    run -0 --separate-stderr lm-slot create --source "$S" --slot gone
    src -c "INSERT INTO g VALUES ('2035-01-02')"
    chunk=$(src -c "SELECT c FROM show_chunks('g', newer_than => timestamptz '2030-01-01') c")
    src -c "SELECT drop_chunks('g', newer_than => timestamptz '2030-01-01')" >/dev/null
    end=$(src -c "SELECT pg_current_wal_lsn()")
    run -4 --separate-stderr lm-decode --source "$S" --slot gone --endpos "$end" -o "$T/gone.lm"
    [[ $stderr == *"an INSERT of relation $chunk (relid "*"), which no longer exists on the source"* ]]
    [[ $stderr == *"drop_chunks"* ]]
    run -0 lm-slot drop --source "$S" --slot gone
}

@test "lm-apply: a hypertable's chunks share its statements, prepared once, run with generic plans; another table's keep the default" {
    # each chunk's changes come under a relation of its own (its relid):
    # a statement prepared per chunk, planned per row over every chunk,
    # made each row cost tens of milliseconds
    both_dbs plans
    for side in src tgt; do
        $side -q -c "CREATE EXTENSION IF NOT EXISTS timescaledb" \
            -c "CREATE TABLE h (t timestamptz NOT NULL, id int, v int, PRIMARY KEY (t, id))" \
            -c "SELECT create_hypertable('h', 't', chunk_time_interval => interval '1 day')" \
            -c "INSERT INTO h SELECT timestamptz '2024-01-01' + g * interval '1 hour', g, 0 FROM generate_series(0, 30 * 24 - 1) g" \
            -c "CREATE TABLE p (id int PRIMARY KEY, v int)" -c "INSERT INTO p SELECT g, 0 FROM generate_series(1, 10) g" >/dev/null
    done
    run -0 --separate-stderr lm-slot create --source "$S" --slot plans
    # a row in each of the 30 chunks, a transaction each, with a row of p
    src -q -c "DO \$\$ BEGIN FOR d IN 0..29 LOOP
                 UPDATE h SET v = v + 1 WHERE id = d * 24 + 5 AND t = timestamptz '2024-01-01' + (d * 24 + 5) * interval '1 hour';
                 UPDATE p SET v = v + 1 WHERE id = d % 10 + 1; COMMIT; END LOOP; END \$\$"
    src -c "DELETE FROM h WHERE id % 24 = 7"
    end=$(src -c "SELECT pg_current_wal_lsn()")
    run -0 lm-decode --source "$S" --slot plans --endpos "$end" -o "$T/plans.lm"
    run -0 lm-cat --stats "$T/plans.lm"
    run -0 bash -c "lm-cat '$T/plans.lm' | grep -c '^relation .* public\\.h '"
    [ "$output" -ge 30 ]
    log=$(dirname "$TARGET_DIR")/target.log
    from=$(($(wc -l <"$log") + 1))
    PGOPTIONS="-c log_statement=all" run -0 --separate-stderr lm-apply --target "$TG" "$T/plans.lm"
    tail -n +"$from" "$log" >"$T/plans.log"
    for s in "SELECT id, v FROM p" "SELECT t, id, v FROM h"; do
        [ "$(src -c "SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM ($s) x")" = \
          "$(tgt -c "SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM ($s) x")" ]
    done
    # one statement name for the updates of h, one for its deletes
    run -0 bash -c "grep -o 'execute lm[0-9]*: UPDATE \"public\"\\.\"h\"' '$T/plans.log' | sort -u | wc -l"
    assert_output 1
    run -0 bash -c "grep -c 'execute lm[0-9]*: UPDATE \"public\"\\.\"h\"' '$T/plans.log'"
    [ "$output" -eq 30 ]
    run -0 bash -c "grep -o 'execute lm[0-9]*: DELETE FROM \"public\"\\.\"h\"' '$T/plans.log' | sort -u | wc -l"
    assert_output 1
    # generic plans for h, set before its statements; auto again before p's
    run -0 bash -c "grep -E 'plan_cache_mode|execute lm[0-9]*: UPDATE' '$T/plans.log' | sed -E 's/.*(force_generic_plan|= auto|\"public\"\\.\"[hp]\").*/\\1/' | uniq -c | head -4"
    [[ $output == *"force_generic_plan"*'"public"."h"'*"= auto"*'"public"."p"'* ]]
    run -0 grep -c 'SET LOCAL plan_cache_mode = force_generic_plan' "$T/plans.log"
    [ "$output" -ge 30 ]
    run -0 lm-slot drop --source "$S" --slot plans
}
