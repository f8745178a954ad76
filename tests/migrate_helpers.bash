# Shared by the suites that run lm-migrate between a source and a target
# cluster (lm-migrate.bats, migrate-start.bats, migrate-rehearse.bats,
# fidelity.bats), loaded after helpers: the two clusters, setup and
# teardown_file, a database pair per test, lm-migrate with its output kept,
# and what a teardown looks at.
# Each test migrates into work directory $W.

# migrate_clusters: the source and target clusters of the file (setup_file)
migrate_clusters() {
    pg_start source "max_connections = 200"
    pg_start target "max_connections = 200"
}

# migrate_template PSQL-ARG...: the file's clusters, and on the source the
# template database tmpl that mkdb clones for each test, made by psql with
# those arguments (-c SQL, -f FILE; its output is dropped).
migrate_template() {
    migrate_clusters
    q source -c "CREATE DATABASE tmpl"
    PGDATABASE_TEST=tmpl q source "$@" >/dev/null
}

teardown_file() {
    pg_stop_all
}

setup() {
    pg_env
    W=$BATS_TEST_TMPDIR/work
}

# mkdb NAME [TEMPLATE]: a database pair for one test: s_NAME on the source,
# a clone of TEMPLATE (default tmpl, which setup_file fills), and an empty
# t_NAME on the target; SRC and TGT are their connection strings, DB is
# NAME (for qs and qt)
mkdb() {
    q source -c "CREATE DATABASE s_$1 TEMPLATE ${2:-tmpl}"
    q target -c "CREATE DATABASE t_$1"
    # shellcheck disable=SC2034  # SRC and TGT are for the suites
    SRC="host=127.0.0.1 port=$SOURCE_PORT dbname=s_$1 user=postgres"
    # shellcheck disable=SC2034
    TGT="host=127.0.0.1 port=$TARGET_PORT dbname=t_$1 user=postgres"
    DB=$1
}

# psql on the test's source database, on its target database
qs() { PGDATABASE_TEST=s_$DB q source "$@"; }
qt() { PGDATABASE_TEST=t_$DB q target "$@"; }

# lm-migrate, its output also kept for the log of a failed test
lmm() {
    lm-migrate "$@" 2>&1 | tee -a "$BATS_TEST_TMPDIR/lmm.log"
    return "${PIPESTATUS[0]}"
}

# the migration's phase is PHASE: phase_is PHASE
phase_is() { [ "$(cat "$W/phase" 2>/dev/null)" = "$1" ]; }
# the pid lm-migrate recorded for a stage: pid_of STAGE
pid_of() { awk '{print $1}' "$W/pids/$1" 2>/dev/null; }

# Every sequence of the target at or past the source's value, identity
# sequences included, and no sequence missing on either side.
# sequences_caught_up SCHEMA: those of that schema only (a target whose
# extensions have sequences the source lacks).
sequences_caught_up() {
    # as JSON objects: a sequence's name may hold a space, a tab, a newline
    local q="SELECT json_object_agg(format('%I.%I', schemaname, sequencename), coalesce(last_value, 0)) FROM pg_sequences"
    [ -z "${1:-}" ] || q+=" WHERE schemaname = '${1//\'/\'\'}'"
    local s t
    s=$(qs -c "$q")
    t=$(qt -c "$q")
    [ -n "$s" ] || return 1
    jq -en --argjson s "$s" --argjson t "$t" '
        ($s | keys) == ($t | keys) and all($s | to_entries[]; $t[.key] >= .value)' ||
        { echo "sequences behind or missing: $s / $t"; false; }
}

# TERM, then KILL after 10 s, the process whose pid is in FILE
stop_pid_file() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 0
    kill -TERM "$pid" 2>/dev/null
    wait_for 10 bash -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null
    rm -f "$1"
}

# For a teardown: when the test failed after running lmm, lm-migrate's
# output, the end of each stage's log and of each FILE there is:
#   show_failed_migration [FILE...]
show_failed_migration() {
    [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -f "$BATS_TEST_TMPDIR/lmm.log" ] || return 0
    echo "--- lm-migrate output"; cat "$BATS_TEST_TMPDIR/lmm.log"
    [ -d "$W/logs" ] && tail -n 15 "$W"/logs/*.log
    local f
    for f in "$@"; do
        [ -f "$f" ] && tail -n 5 "$f"
    done
    return 0
}

# For a teardown: a migration the test left behind, aborted
abort_migration() {
    if [ -f "$W/config" ]; then
        lm-migrate abort --workdir "$W" >/dev/null 2>&1 || true
    fi
}
