# shellcheck shell=bash
# lm-migrate: row counts and content hashes of tables on
# source and target (verify, and cutover before it switches).
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "verify.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

# Per-table count and an order-independent content hash (sum of the first 64
# bits of md5 of each row's text), in one pass and constant memory; tables
# with a single integer key are hashed per key range so a difference is
# located.  Both sides use the same session settings, so text forms match.
VERIFY_OPTS="$LM_SESSION_OPTS -c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex -c statement_timeout=0"

# One script per side: a line "N|bucket|count|hash" per key range of the
# Nth table (one range for tables without a single integer key), and a line
# with bucket -1 that only a table that could be read gives (an empty one
# too). The statements are made by the source from the names it resolves,
# so no name the user gave is put into SQL, and names are never split on.
verify_statements() {   # verify_statements NAME...: "N|sql64|name64|key64" lines
    # the names travel as a psql variable (a JSON array): psql quotes it
    # for the session, whatever bytes the names hold
    local names
    names=$(jq -cn '$ARGS.positional | map(select(length > 0))' --args "$@") || return 1
    PGCLIENTENCODING=UTF8 PGAPPNAME=lm-migrate psql -X -q -At -v ON_ERROR_STOP=1 -d "$SOURCE" \
        -v names="$names" -v name_re="$VERIFY_NAME_RE" -f - <<SQL
        SELECT u.i,
               coalesce(translate(encode(convert_to(CASE WHEN r.qual IS NOT NULL THEN format(
                   'SELECT %s, %s AS b, count(*), coalesce(sum((''x'' || left(md5(ROW(%s)::text), 16))::bit(64)::bigint::numeric), 0) FROM %s t GROUP BY 2 UNION ALL SELECT %s, -1, 0, 0 ORDER BY 2;',
                   u.i, CASE WHEN k.key IS NULL THEN '0' ELSE format('(t.%I / %s)', k.key, $VERIFY_BUCKET) END, r.cols, r.qual, u.i) END,
                   'UTF8'), 'base64'), E'\n', ''), ''),
               translate(encode(convert_to(coalesce(r.qual, u.t), 'UTF8'), 'base64'), E'\n', ''),
               coalesce(translate(encode(convert_to(quote_ident(k.key), 'UTF8'), 'base64'), E'\n', ''), '')
        FROM json_array_elements_text(:'names'::json) WITH ORDINALITY AS u(t, i)
        LEFT JOIN LATERAL (SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS qual,
                                  -- the source's columns by name: a target that has more
                                  -- (--target-schema=existing) or orders them otherwise compares
                                  (SELECT coalesce(string_agg(format('t.%I', a.attname), ', ' ORDER BY a.attnum), '')
                                   FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS cols
                           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE c.oid = CASE WHEN u.t ~ :'name_re' THEN to_regclass(u.t) END) r ON true
        LEFT JOIN LATERAL (SELECT min(a.attname) AS key
                           FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey)
                           WHERE x.indrelid = r.oid AND x.indisprimary
                           HAVING count(*) = 1 AND bool_and(a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype))) k ON true
        ORDER BY u.i
SQL
}

# what to_regclass can parse (one or two parts, quoted or not): anything
# else is no table, rather than an error that would stop the whole verify
VERIFY_NAME_RE='^\s*("([^"]|"")+"|[^".\s]+)(\s*\.\s*("([^"]|"")+"|[^".\s]+))?\s*$'

verify_side() {   # verify_side CONN SCRIPT OUT: psql's status (2: no connection)
    PGCLIENTENCODING=UTF8 PGOPTIONS=$VERIFY_OPTS PGAPPNAME=lm-migrate psql -X -q -At -d "$1" -f "$2" >"$3" 2>"$3.err"
}

verify_cmd() {
    if [ -f "$W/config" ]; then
        load_config
    fi
    [ -n "$SOURCE" ] || usage_error "verify needs --source and --target, or a --workdir of a migration"
    [ -n "$TARGET" ] || usage_error "verify needs --target"
    [[ $VERIFY_BUCKET =~ ^[1-9][0-9]*$ ]] || usage_error "LM_VERIFY_BUCKET must be a positive integer"
    local tables=()
    if [ ${#VERIFY_TABLES[@]} -gt 0 ]; then
        tables=("${VERIFY_TABLES[@]}")
    elif [ -s "$W/tables.list" ]; then
        read_names "$W/tables.list"
        tables=("${NAMES[@]}")
    else
        # a hypertable is compared through itself (its chunks' names
        # differ by design): chunks and extension members are left out
        local chunks
        chunks=$(not_chunk_sql src) || die "$EX_CONNECT" "cannot read the source's extensions"
        mapfile -t -d '' tables < <(src "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                   WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lm')
                                     AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE '\\_timescaledb%'
                                     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
                                     $chunks ORDER BY 1" -0)
    fi
    if [ -f "$W/phase" ] && [ "$(phase)" != "done" ] && [ -z "${IN_CUTOVER:-}" ] && stage_alive decode; then
        warn "changes are still being replicated: differences are expected while the source takes writes; the result is only meaningful once writes have stopped (after cutover)"
    fi
    [ ${#tables[@]} -gt 0 ] || { echo "verify: no tables"; return 0; }
    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/lm-verify.XXXXXX") || die "$EX_IO" "cannot create a temporary directory"
    verify_statements "${tables[@]}" >"$tmp/keys" 2>"$tmp/keys.err" ||
        { cat "$tmp/keys.err" >&2; rm -rf "$tmp"; die "$EX_CONNECT" "cannot read the tables' names and keys on the source"; }
    local i sql64 name64 key64
    while IFS='|' read -r i sql64 name64 key64; do
        [ -n "$sql64" ] && { b64 "$sql64"; echo; }
    done <"$tmp/keys" >"$tmp/script.sql"
    verify_side "$SOURCE" "$tmp/script.sql" "$tmp/source" &
    local spid=$! src_rc tgt_rc
    verify_side "$TARGET" "$tmp/script.sql" "$tmp/target"
    tgt_rc=$?
    wait "$spid"
    src_rc=$?
    if [ "$src_rc" -eq 2 ] || [ "$tgt_rc" -eq 2 ]; then
        local side=source
        [ "$src_rc" -eq 2 ] || side=target
        head -3 "$tmp/$side.err" >&2
        rm -rf "$tmp"
        die "$EX_CONNECT" "verify could not connect to the $side"
    fi
    # a name may hold "|": names and what differs are kept apart
    local t key diffs=0 n=0 report=() what=()
    while IFS='|' read -r i sql64 name64 key64; do
        [ -n "$i" ] || continue
        n=$((n + 1))
        t=$(b64 "$name64")
        if [ -z "$sql64" ]; then
            diffs=$((diffs + 1))
            report+=("$t") what+=("no such table on the source")
            continue
        fi
        key=$(b64 "$key64")
        local s_out t_out
        s_out=$(awk -F'|' -v i="$i" '$1 == i { print $2 "|" $3 "|" $4 }' "$tmp/source")
        t_out=$(awk -F'|' -v i="$i" '$1 == i { print $2 "|" $3 "|" $4 }' "$tmp/target")
        [ "$s_out" = "$t_out" ] && [ -n "$s_out" ] && continue
        diffs=$((diffs + 1))
        if [ -z "$s_out" ]; then
            report+=("$t") what+=("cannot be read on the source")
            continue
        elif [ -z "$t_out" ]; then
            report+=("$t") what+=("missing or unreadable on the target")
            continue
        fi
        local sc tc ranges=''
        sc=$(awk -F'|' '{ s += $2 } END { print s + 0 }' <<<"$s_out")
        tc=$(awk -F'|' '{ s += $2 } END { print s + 0 }' <<<"$t_out")
        if [ -n "$key" ]; then
            ranges=$(join -t'|' -a1 -a2 -e missing -o 0,1.2,1.3,2.2,2.3 <(sort -t'|' -k1,1 <<<"$s_out") <(sort -t'|' -k1,1 <<<"$t_out") |
                awk -F'|' -v b="$VERIFY_BUCKET" '$2 != $4 || $3 != $5 { printf "%s[%d,%d)", sep, $1 * b, ($1 + 1) * b; sep = ", " }')
            ranges="$key in $ranges"
        fi
        report+=("$t") what+=("source $sc rows, target $tc rows${ranges:+; differs where $ranges}")
    done <"$tmp/keys"
    if [ -s "$tmp/source.err" ] || [ -s "$tmp/target.err" ]; then
        sed 's/^/source: /' "$tmp/source.err" >&2
        sed 's/^/target: /' "$tmp/target.err" >&2
    fi
    rm -rf "$tmp"
    if [ "$diffs" -gt 0 ]; then
        printf '%-40s %s\n' TABLE DIFFERENCE
        local r
        for r in "${!report[@]}"; do printf '%-40s %s\n' "$(printable "${report[r]}")" "$(printable "${what[r]}")"; done
        echo "verify: $diffs of $n tables differ"
        return "$EX_DIFF"
    fi
    echo "verify: $n tables equal on source and target (row counts and content hashes)"
    return 0
}
