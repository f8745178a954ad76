# shellcheck shell=bash
# lm-migrate: psql sessions and what lm-migrate asks the
# servers.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "queries.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

# psql with our settings: psqlc CONN SQL [psql args...].  Rows unaligned, "|"
# separated.  psql's exit status 2 means the connection failed.
psqlc() {
    local conn=$1 sql=$2; shift 2
    # our own sessions carry application_name lm-migrate: the fence spares them
    PGAPPNAME=lm-migrate psql -X -q -At -v ON_ERROR_STOP=1 -d "$conn" "$@" -c "$sql"
}

src() { psqlc "$SOURCE" "$@"; }

tgt() { psqlc "$TARGET" "$@"; }

# A script on standard input, with psql's variables and \gset: names go
# into SQL as :"var", quoted by psql, never by the shell.  psqlf CONN [args]
psqlf() { PGAPPNAME=lm-migrate psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" "${@:2}" -f -; }

source_lsn() { src "SELECT pg_current_wal_lsn()"; }

# The durable position of our replication origin on the target ("" if none).
origin_position() {
    tgt "SELECT coalesce(pg_replication_origin_progress(roname, false)::text, '') FROM pg_replication_origin WHERE roname = $(lit "$SLOT")" 2>/dev/null
}

# Position the apply has reached: the origin's, lm.progress's, or the last
# durable position lm-apply wrote to its ack file when that is later (it
# includes keepalive positions: WAL with nothing to apply is not lag).
applied_position() {
    local ack
    ack=$(tail -n 1 "$W/apply.ack" 2>/dev/null)
    [[ $ack =~ ^[0-9A-Fa-f]+/[0-9A-Fa-f]+$ ]] || ack=
    tgt "SELECT coalesce(greatest(
            (SELECT pg_replication_origin_progress(roname, false) FROM pg_replication_origin WHERE roname = $(lit "$SLOT")),
            (SELECT end_lsn FROM lm.progress WHERE origin = $(lit "$SLOT")),
            $( [ -n "$ack" ] && echo "$(lit "$ack")::pg_lsn" || echo NULL))::text, '')" 2>/dev/null ||
        origin_position
}

lsn_diff() {   # lsn_diff A B: bytes from B to A (on the source), >= 0
    src "SELECT greatest(0, pg_wal_lsn_diff($(lit "$1"), $(lit "$2")))::bigint"
}

# the spool's size in bytes: the first field of du's first line (the path
# after it may hold a newline)
spool_bytes() {
    if [ -n "$DECODE_HOST" ]; then
        ssh_run "$DECODE_HOST" "du -sb -- $(shq "$SPOOL") 2>/dev/null | awk 'NR == 1 { print \$1 }'" </dev/null 2>/dev/null || echo 0
    else
        du -sb -- "$SPOOL" 2>/dev/null | awk 'NR == 1 { print $1 }' || echo 0
    fi
}

# Tables the publication covers, as schema.table (quoted identifiers), each
# NUL-terminated (a quoted name may hold a newline).
# A TimescaleDB source publishes its chunk schemas whole: the chunks are
# its hypertables' rows, counted and compared through the hypertables, so
# they are left out here, and so is every extension member.
published_tables() {
    local chunks
    chunks=$(not_chunk_sql src) || return 1
    src "SELECT format('%I.%I', p.schemaname, p.tablename) FROM pg_publication_tables p
          JOIN pg_namespace n ON n.nspname = p.schemaname
          JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
          WHERE p.pubname = $(lit "$SLOT")
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
            $chunks
          ORDER BY 1" -0
}

# not_chunk_sql src|tgt: a condition on a relation c in schema n that
# leaves TimescaleDB's chunks out, by the extension's catalog (the
# relation's schema and name as the catalog records them, never a name's
# pattern: chunks may have any prefix); empty where the extension is absent
TSDB_NOT_CHUNK="AND NOT EXISTS (SELECT 1 FROM _timescaledb_catalog.chunk ch WHERE ch.schema_name = n.nspname AND ch.table_name = c.relname)"
not_chunk_sql() {
    local has
    has=$("$1" "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") || return 1
    [ "$has" = 0 ] || printf '%s' "$TSDB_NOT_CHUNK"
}

# a condition on pg_sequences' row that leaves out extension members
# (by the catalog's names: no cast of a name that could need a privilege)
SEQ_NOT_MEMBER="NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class sc ON sc.oid = d.objid JOIN pg_namespace sn ON sn.oid = sc.relnamespace
                  WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND sn.nspname = schemaname AND sc.relname = sequencename)"

# Source tables (not partitioned parents, not extension members) outside the
# publication, NUL-terminated.
unpublished_tables() {
    local chunks
    chunks=$(not_chunk_sql src) || return 1
    src "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r'
            AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lm') AND n.nspname NOT LIKE 'pg_toast%'
            AND n.nspname NOT LIKE '\\_timescaledb%' AND c.relpersistence = 'p'
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
            AND NOT EXISTS (SELECT 1 FROM pg_publication_tables p WHERE p.pubname = $(lit "$SLOT") AND p.schemaname = n.nspname AND p.tablename = c.relname)
            $chunks
          ORDER BY 1" -0
}

copy_counts() {   # "tables_done rows bytes" from lm.copy
    tgt "SELECT count(*), coalesce(sum(rows), 0), coalesce(sum(bytes), 0) FROM (
           SELECT sum(rows) AS rows, sum(bytes) AS bytes FROM lm.copy GROUP BY nspname, relname
           HAVING count(*) >= max(nchunks)) t" 2>/dev/null | tr '|' ' '
}

# "rows bytes" the source estimates for the published tables: pg_class's
# reltuples (0 for a table never analyzed) and pg_relation_size, as
# lm-snapshot plans the copy by; nothing once the publication is gone
copy_estimates() {
    src "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint || ' ' || coalesce(sum(pg_relation_size(c.oid)), 0)
           FROM pg_publication_tables p
           JOIN pg_namespace n ON n.nspname = p.schemaname
           JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
          WHERE p.pubname = $(lit "$SLOT") HAVING count(*) > 0" 2>/dev/null
}

slot_exists() {
    [ "$(src "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $(lit "$SLOT")" 2>/dev/null)" = 1 ]
}

drop_slot_and_publication() {
    # the walsender of a stopped lm-decode may hold the slot a moment longer
    local i
    for ((i = 0; i < 20; i++)); do
        [ "$(src "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $(lit "$SLOT") AND active" 2>/dev/null)" = 1 ] || break
        sleep 0.5
    done
    # read-write sessions: a fenced source is read-only by default
    local PGOPTIONS="${PGOPTIONS:-} -c default_transaction_read_only=off"
    export PGOPTIONS
    if command -v lm-slot >/dev/null 2>&1 &&
        lm-slot drop --source "$SOURCE" --slot "$SLOT" --publication "$SLOT" >>"$W/logs/slot.log" 2>&1; then
        return 0
    fi
    tail -n 3 "$W/logs/slot.log" >&2
    # fallback in SQL (lm-slot missing or failing)
    src "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $(lit "$SLOT") AND NOT active" >/dev/null 2>&1
    # the publication goes with its slot only: an active slot is in use
    slot_exists || echo 'DROP PUBLICATION IF EXISTS :"slot";' | psqlf "$SOURCE" -v slot="$SLOT" >/dev/null 2>&1
    ! slot_exists && [ "$(src "SELECT count(*) FROM pg_publication WHERE pubname = $(lit "$SLOT")" 2>/dev/null)" = 0 ]
}

# Every sequence, owned by a column or not: the target gets the source's value.
# sequences of the source this role cannot read: pg_sequences shows no
# last_value for them, which must never be taken for "not used yet"
unreadable_sequences() {
    src "SELECT string_agg(format('%I.%I', schemaname, sequencename), ', ' ORDER BY 1)
         FROM pg_sequences WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'lm')
           AND schemaname NOT LIKE '\\_timescaledb%' AND $SEQ_NOT_MEMBER
           AND NOT has_sequence_privilege(format('%I.%I', schemaname, sequencename), 'SELECT')"
}

# Published tables whose columns differ on the target, comma separated.
# With --target-schema=existing the target's tables may have more columns
# and other types (the preflight said which): only a source column missing
# on the target counts.  Names and columns come NUL-separated, the columns
# of a table as a JSON array: no byte of a name splits or joins them.
ddl_changes() {
    # the type by schema, name and modifier: format_type() would leave out
    # a schema that is on one side's search_path and not the other's
    local col="a.attname || ':' || tn.nspname || '.' || tt.typname || '(' || a.atttypmod || ')'" subset=
    [ "${TARGET_SCHEMA:-restore}" = existing ] && col=a.attname subset=1
    local q="SELECT format('%I.%I', n.nspname, c.relname),
                    json_agg($col ORDER BY a.attname)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             JOIN pg_type tt ON tt.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = tt.typnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lm')
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE '\\_timescaledb%'
             GROUP BY n.nspname, c.relname ORDER BY 1"
    local -A scols=() tcols=()
    local t cols out=()
    while IFS= read -r -d '' t && IFS= read -r -d '' cols; do scols[$t]=$cols; done < <(src "$q" -z -0 2>/dev/null)
    wait $! || return 0
    while IFS= read -r -d '' t && IFS= read -r -d '' cols; do tcols[$t]=$cols; done < <(tgt "$q" -z -0 2>/dev/null)
    wait $! || return 0
    # only published tables
    read_names "$W/tables.list"
    for t in "${NAMES[@]}"; do
        [ -n "${scols[$t]:-}" ] || continue
        [ "${scols[$t]}" = "${tcols[$t]:-}" ] && continue
        if [ -n "$subset" ] && [ -n "${tcols[$t]:-}" ] &&
            jq -en --argjson s "${scols[$t]}" --argjson t "${tcols[$t]}" '$s - $t == []' >/dev/null 2>&1; then
            continue
        fi
        out+=("$t")
    done
    (IFS=,; printf '%s' "${out[*]}")
}

FENCED=
unfence() {
    [ -n "$FENCED" ] || return 0
    local db
    db=$(src "SELECT format('%I', current_database())")
    # this session must not be read-only itself; the name is quoted by the
    # server (a database's name may hold any byte)
    if [ -n "$db" ] && printf '%s\n' 'SELECT current_database() AS db \gset' 'ALTER DATABASE :"db" RESET default_transaction_read_only;' |
        PGOPTIONS="${PGOPTIONS:-} -c default_transaction_read_only=off" psqlf "$SOURCE" >/dev/null; then
        info "fence lifted: the source takes writes again"
        FENCED=
        rm -f "$W/fenced"
        return 0
    fi
    # the record of the fence stays, so that abort lifts it when it can
    error "could not lift the fence: the source stays read-only; run lm-migrate abort again once it can be reached (or ALTER DATABASE ... RESET default_transaction_read_only there)"
    FENCED=
    return 1
}
