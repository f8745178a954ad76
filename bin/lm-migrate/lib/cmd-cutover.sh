# shellcheck shell=bash
# lm-migrate: the command cutover.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "cmd-cutover.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

# shellcheck disable=SC2317  # called by the EXIT trap
on_cutover_exit() {
    local rc=$?
    [ "$rc" -ne 0 ] || return 0
    if [ -n "$FENCED" ]; then
        warn "cutover failed: lifting the fence"
        unfence
    fi
    # the source takes writes again: the stream must go on past the marker,
    # and the next cutover sends a marker of its own
    rm -f "$W/cutover.id" "$W/cutover.lsn"
    set_phase streaming
    start_decode
    start_apply
    start_history
    history_event cutover_failed "$(jq -cn --arg rc "$rc" '{exit_code: ($rc | tonumber)}')"
    warn "capture and apply run again; run cutover once the cause is fixed"
}

# The marker PAYLOAD's row is in lm.marker on the target (lm-apply wrote
# it with every change before it).
marker_on_target() {
    [ "$(tgt "SELECT count(*) FROM lm.marker WHERE origin = $(lit "$SLOT") AND payload = $(lit "$1")" 2>/dev/null)" = 1 ]
}

# wait_marker PAYLOAD WHAT CHECK HINT: polls until the marker is on the
# target; after --timeout seconds, WHAT was not applied (exit EX_TIMEOUT,
# with HINT); CHECK runs between polls and exits when a stage it needs died.
wait_marker() {
    local end=$(($(epoch) + TIMEOUT))
    until marker_on_target "$1"; do
        if [ "$(epoch)" -ge "$end" ]; then
            error "$2 was not applied within ${TIMEOUT}s"
            hint "$4"
            exit "$EX_TIMEOUT"
        fi
        "$3"
        sleep 0.1
    done
}

# The cutover's stages while it waits: lm-decode ends by itself at the
# marker ("stopped (marker)"), any other end fails the cutover.
cutover_stages_ok() {
    if ! stage_alive decode && ! tail -n 2 "$W/logs/decode.log" 2>/dev/null | grep -q marker; then
        error "lm-decode stopped before the marker arrived"; stage_log_tail decode 10
        exit "$EX_FAILURE"
    fi
    if ! stage_alive apply; then
        error "lm-apply stopped before the marker was applied"; stage_log_tail apply 10
        exit "$EX_FAILURE"
    fi
}

# A rehearsal's: both stages keep running through it.
rehearsal_stages_ok() {
    if ! stage_alive decode || ! stage_alive apply; then
        error "$(stage_alive decode && echo lm-apply || echo lm-decode) stopped during the rehearsal"
        stage_log_tail "$(stage_alive decode && echo apply || echo decode)" 10
        hint "See $PROG status; $PROG start --resume runs it again."
        exit "$EX_FAILURE"
    fi
}

cutover_cmd() {
    load_config
    local ph
    ph=$(phase)
    case $ph in
        streaming|cutover) ;;
        done) info "the cutover is already done"; return 0 ;;
        *) die "$EX_USAGE" "cannot cut over in phase $ph: the target must be streaming (see $PROG status)" ;;
    esac
    local id payload
    if [ -f "$W/cutover.id" ]; then
        payload=$(cat "$W/cutover.id")
    else
        id="$SLOT-$(date -u +%Y%m%dT%H%M%SZ)-$$"
        # only a marker made with the token ends capture (lm-decode verifies)
        payload=$(marker_payload "$id") || exit $?
    fi
    local marked=0
    marker_on_target "$payload" && marked=1
    if [ "$marked" != 1 ]; then
        if [ "$ph" = cutover ]; then
            # an earlier cutover died (kill -9, lost session) before its
            # marker was applied: the stages may have ended at the marker or
            # with it; started again they read from the slot's acknowledged
            # position, so the marker comes again
            start_decode
            start_apply
        elif ! stage_alive decode || ! stage_alive apply; then
            die "$EX_FAILURE" "decode or apply is not running: run $PROG start --resume first (see $PROG status)"
        fi
    fi
    # a fence set by an earlier cutover that died stays ours to lift
    [ -f "$W/fenced" ] && FENCED=1
    set_phase cutover
    CUTOVER_START=$(now)
    history_event cutover_start "$(jq -cn --arg f "${FENCE:-}" '{fence: ($f != "")}')"
    trap on_cutover_exit EXIT
    local t0 db
    # quoted, for messages
    db=$(src "SELECT format('%I', current_database())") || die "$EX_CONNECT" "cannot connect to the source"
    if [ -n "$FENCE" ] && [ "$marked" != 1 ]; then
        if [ -z "$FENCED" ]; then
            # recorded first: a cutover killed right after the ALTER still
            # knows there is a fence to lift (lifting one never set is harmless)
            touch "$W/fenced"
            printf '%s\n' 'SELECT current_database() AS db \gset' 'ALTER DATABASE :"db" SET default_transaction_read_only = on;' |
                PGOPTIONS="${PGOPTIONS:-} -c default_transaction_read_only=off" psqlf "$SOURCE" >/dev/null ||
                { rm -f "$W/fenced"; die "$EX_SERVER" "could not fence the source (ALTER DATABASE needs its owner or a superuser)"; }
            FENCED=1
        fi
        # sessions older than the fence are not read-only: end them (again,
        # when an earlier cutover died before it got that far)
        t0=$(now)
        local killed
        killed=$(src "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                      WHERE datname = current_database() AND pid <> pg_backend_pid()
                        AND backend_type = 'client backend'
                        AND coalesce(application_name, '') NOT LIKE 'lm-%'")
        info "fence: $(printable "$db") is read-only for new transactions; $killed application session(s) terminated"
    fi
    if [ "$marked" != 1 ]; then
        echo "$payload" >"$W/cutover.id"
        [ -z "${t0:-}" ] && t0=$(now)
        local mlsn
        mlsn=$(src "BEGIN READ WRITE; SELECT pg_logical_emit_message(true, 'lm-migrate', $(lit "$payload")); COMMIT;") ||
            die "$EX_SERVER" "could not emit the cutover marker on the source"
        mlsn=$(printf '%s\n' "$mlsn" | grep / | head -1)
        echo "$mlsn" >"$W/cutover.lsn"
        info "cutover marker sent at $mlsn; waiting for it on the target (at most ${TIMEOUT}s)"
        wait_marker "$payload" "the marker" cutover_stages_ok \
            "See $PROG status; run cutover again (with a larger --timeout) once the lag is small."
    else
        t0=$(now)
        info "the marker $payload is already on the target"
    fi
    info "marker applied: every change before it is on the target"
    sync_sequences || die "$EX_SERVER" "could not set the sequences on the target"
    local t1
    t1=$(now)
    # the stages end by themselves at the marker; make sure
    local i
    for ((i = 0; i < 100; i++)); do
        stage_alive decode || stage_alive apply || break
        sleep 0.1
    done
    stop_all_stages
    DOWNTIME=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
    echo "$DOWNTIME" >"$W/downtime"
    info "sequences set; write downtime so far ${DOWNTIME}s (from $([ -n "$FENCE" ] && echo fence || echo marker) to sequences synced)"
    refresh_matviews || warn "refreshing materialized views failed"
    sync_large_objects || warn "re-syncing large objects failed"
    local vrc=0
    IN_CUTOVER=1 verify_cmd || vrc=$?
    if [ $vrc -ne 0 ]; then
        error "verify found differences after the cutover marker"
        if [ -z "$FENCED" ]; then
            # the application may have written after the marker: those
            # changes must still reach the target, so replication goes on
            # (the exit trap restarts the stages) and cutover can run again
            hint "Without --fence the application may have written after the marker: replication goes on; stop the writes (or use --fence) and run $PROG cutover again."
            exit $vrc
        fi
        hint "The slot is kept; nothing was switched. Investigate, then run $PROG clean."
        trap - EXIT
        warn "the source stays fenced (read-only); undo with: ALTER DATABASE $(printable "$db") RESET default_transaction_read_only"
        exit $vrc
    fi
    if [ -z "$KEEP" ]; then
        if drop_slot_and_publication; then
            info "slot and publication $SLOT dropped on the source"
        else
            warn "could not drop slot $SLOT or publication $SLOT on the source: the slot retains WAL there until $PROG clean drops it"
        fi
    else
        info "slot and publication $SLOT kept (--keep); drop them with $PROG clean"
    fi
    trap - EXIT
    set_phase "done"
    local rows bytes ndone cp mlsn2 wal
    read -r ndone rows bytes <<<"$(copy_counts)"
    cp=$(consistent_point)
    mlsn2=$(cat "$W/cutover.lsn" 2>/dev/null)
    wal=$( [ -n "$cp" ] && [ -n "$mlsn2" ] && lsn_diff "$mlsn2" "$cp" 2>/dev/null)
    # the history's last record: the figures printed below, the downtime
    # and when it began and ended
    history_event cutover "$(jq -cn --arg cs "$CUTOVER_START" --arg t0 "$t0" --arg t1 "$t1" --arg d "$DOWNTIME" \
        --arg f "${FENCE:-}" --arg td "${ndone:-0}" --arg rows "${rows:-0}" --arg bytes "${bytes:-0}" --arg wal "${wal:-}" \
        --arg cp "$cp" --arg m "$mlsn2" '
        {phase: "done", cutover_start: ($cs | tonumber), downtime_start: ($t0 | tonumber), downtime_end: ($t1 | tonumber),
         downtime_seconds: ($d | tonumber), fence: ($f != ""), tables_done: ($td | tonumber), rows: ($rows | tonumber),
         bytes: ($bytes | tonumber), streamed_bytes: (if $wal == "" then null else ($wal | tonumber) end),
         consistent_point: $cp, marker_lsn: $m}')"
    cat <<EOF
cutover complete
  copied:    ${ndone:-0} tables, ${rows:-0} rows, $(human_bytes "${bytes:-0}")
  streamed:  $(human_bytes "${wal:-0}") of source WAL from $cp to $mlsn2
  downtime:  ${DOWNTIME}s of writes ($([ -n "$FENCE" ] && echo "fence" || echo "marker") to sequences synced)
  point of no return: the target now holds everything; once the application
  writes to the target, going back to the source loses those writes.
EOF
    if [ -n "$FENCED" ]; then
        echo "  the source stays read-only (soft fence): point the application at the target."
        echo "  undo on the source with: ALTER DATABASE $(printable "$db") RESET default_transaction_read_only"
    fi
    echo "  lm's state stays in schema lm on the target until: $PROG clean --workdir $W"
}

sync_sequences() {
    local bad
    bad=$(unreadable_sequences) || return 1
    if [ -n "$bad" ]; then
        error "cannot read these sequences on the source: $(printable "$bad")"
        hint "GRANT SELECT on them to the migration's role, then run cutover again."
        return 1
    fi
    # the statements are made by the source (names as literals, %L), one
    # NUL-terminated each: a name's newline is no statement's end
    local stmts=()
    mapfile -t -d '' stmts < <(src "SELECT format('SELECT setval(%L, %s, %L) WHERE to_regclass(%L) IS NOT NULL;',
                      format('%I.%I', schemaname, sequencename),
                      coalesce(last_value, start_value), last_value IS NOT NULL,
                      format('%I.%I', schemaname, sequencename))
               FROM pg_sequences WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'lm')
                 AND schemaname NOT LIKE '\\_timescaledb%' AND $SEQ_NOT_MEMBER" -0)
    wait $! || return 1
    [ ${#stmts[@]} -gt 0 ] || return 0
    printf '%s\n' "${stmts[@]}" | PGAPPNAME=lm-migrate psql -X -q -At -v ON_ERROR_STOP=1 -d "$TARGET" -f - >/dev/null || return 1
    info "${#stmts[@]} sequence(s) set on the target"
}

# Each view's schema and name come NUL-separated and go back as psql
# variables, quoted by psql (:"v"): no name is put into SQL by the shell.
refresh_matviews() {
    local sch mv qual
    while IFS= read -r -d '' sch && IFS= read -r -d '' mv && IFS= read -r -d '' qual; do
        echo 'REFRESH MATERIALIZED VIEW :"sch".:"mv";' | psqlf "$TARGET" -v sch="$sch" -v mv="$mv" >/dev/null || return 1
        info "refreshed $(printable "$qual")"
    done < <(tgt "SELECT schemaname, matviewname, format('%I.%I', schemaname, matviewname) FROM pg_matviews WHERE schemaname NOT IN ('lm') ORDER BY 1, 2" -z -0)
}

# Large objects are not replicated: compare them by md5 and copy what differs.
sync_large_objects() {
    local s t
    s=$(src "SELECT oid || ' ' || md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY 1") || return 1
    t=$(tgt "SELECT oid || ' ' || md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY 1") || return 1
    [ "$s" = "$t" ] && return 0
    local oid n=0
    # gone on the source
    while read -r oid; do
        [ -n "$oid" ] || continue
        tgt "SELECT lo_unlink($oid)" >/dev/null || return 1
        n=$((n + 1))
    done < <(comm -13 <(awk '{print $1}' <<<"$s" | sort) <(awk '{print $1}' <<<"$t" | sort))
    # new or changed
    while read -r oid; do
        [ -n "$oid" ] || continue
        src "SELECT 'SELECT lo_unlink(' || $oid || ') FROM pg_largeobject_metadata WHERE oid = ' || $oid || ';' ||
                    'SELECT lo_from_bytea(' || $oid || ', ''\\x' || encode(lo_get($oid), 'hex') || '''::bytea);'" |
            PGAPPNAME=lm-migrate psql -X -q -At -v ON_ERROR_STOP=1 -d "$TARGET" -f - >/dev/null || return 1
        n=$((n + 1))
    done < <(comm -23 <(sort <<<"$s") <(sort <<<"$t") | awk '{print $1}')
    info "$n large object(s) re-synced"
}

# ---------------------------------------------------------------- rehearsal

# jq's form of printable (util.sh): a newline, tab, CR as \n, \t, \r, other
# control characters as \xHH, the C1 codes as \xc2\xHH
JQ_PRINTABLE='def hex: [(. / 16 | floor), (. % 16)] | map("0123456789abcdef"[.:. + 1]) | add;
  def printable: gsub("\n"; "\\n") | gsub("\t"; "\\t") | gsub("\r"; "\\r")
    | gsub("(?<c>[\u0001-\u001f\u007f])"; "\\x" + (.c | explode[0] | hex))
    | gsub("(?<c>[\u0080-\u009f])"; "\\xc2\\x" + (.c | explode[0] | hex));'

# rehearse_step NAME START END IN_DOWNTIME DETAIL [JSON]: a timed step of a
# rehearsal (IN_DOWNTIME 1: the cutover counts it in the write downtime it
# reports); JSON holds the step's figures for --json and rehearsals.log
rehearse_step() {
    local secs
    secs=$(awk -v a="$3" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = 0; printf "%.2f", d }')
    R_NAME+=("$1") R_SECS+=("$secs") R_DOWN+=("$4") R_NOTE+=("$5")
    R_JSON+=("$(jq -cn --arg step "$1" --arg s "$secs" --arg down "$4" --arg detail "$5" --argjson extra "${6:-"{}"}" \
        '{step: $step, seconds: ($s | tonumber), in_downtime: ($down == "1"), detail: $detail} + $extra')")
}

# only while streaming: refused otherwise with exit 2, as cutover is
rehearse_phase() {
    load_config
    local ph
    ph=$(phase)
    case $ph in
        streaming) ;;
        done) die "$EX_USAGE" "the cutover is already done: there is nothing left to rehearse" ;;
        *) die "$EX_USAGE" "cannot rehearse the cutover in phase $ph: the migration must be streaming (see $PROG status)" ;;
    esac
}

# rehearse_cmd: the steps of the cutover that do not stop the application,
# each timed, against the live migration: a rehearsal marker through the
# stream (lm-decode passes it on, lm-apply records it in lm.marker), the
# wait for it on the target, the sequence values the cutover would set (read
# on both sides, set on neither: setval cannot be rolled back, and the
# cutover sets every sequence itself), the materialized views refreshed in
# a transaction rolled back, the large objects compared, and verify (which
# differs while the source takes writes: reported, no failure).  Nothing the
# cutover relies on changes: the phase, cutover.id, the stages, the slot.
# Prints the steps and the downtime they add up to, and appends them to
# WORKDIR/rehearsals.log (one JSON object a line).
rehearse_cmd() {
    rehearse_phase
    if ! stage_alive decode || ! stage_alive apply; then
        die "$EX_FAILURE" "decode or apply is not running: run $PROG start --resume first (see $PROG status)"
    fi
    R_NAME=() R_SECS=() R_DOWN=() R_NOTE=() R_JSON=()
    local problems=() a b db started
    started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    db=$(src "SELECT format('%I', current_database())") || die "$EX_CONNECT" "cannot connect to the source"
    info "rehearsing the cutover: capture and apply keep running, the source keeps taking writes"
    # 1. the fence: what it would end (its ALTER DATABASE is not rehearsed)
    if [ -n "$FENCE" ]; then
        local n
        a=$(now)
        n=$(src "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND backend_type = 'client backend'
                   AND coalesce(application_name, '') NOT LIKE 'lm-%'") || die "$EX_CONNECT" "cannot read the source's sessions"
        b=$(now)
        rehearse_step fence "$a" "$b" 1 "would make $(printable "$db") read-only and end $n application session(s) (not done)" \
            "{\"sessions\": $n}"
    fi
    # 2. the marker, as the cutover sends it but of the rehearsal's kind
    local id payload mlsn pos lag=''
    id="$SLOT-$(date -u +%Y%m%dT%H%M%SZ)-$$"
    payload=$(marker_payload "$id" rehearse) || exit $?
    pos=$(applied_position)
    a=$(now)
    mlsn=$(src "BEGIN READ WRITE; SELECT pg_logical_emit_message(true, 'lm-migrate', $(lit "$payload")); COMMIT;") ||
        die "$EX_SERVER" "could not emit the rehearsal marker on the source"
    b=$(now)
    mlsn=$(printf '%s\n' "$mlsn" | grep / | head -1)
    [ -n "$pos" ] && lag=$(lsn_diff "$mlsn" "$pos" 2>/dev/null)
    rehearse_step marker "$a" "$b" 1 "rehearsal marker sent at $mlsn" "{\"lsn\": \"$mlsn\"}"
    # 3. the drain: the cutover's wait, the same polling
    info "rehearsal marker sent at $mlsn; waiting for it on the target (at most ${TIMEOUT}s)"
    a=$b
    wait_marker "$payload" "the rehearsal marker" rehearsal_stages_ok \
        "The real cutover would time out the same way: see $PROG status; rehearse again (with a larger --timeout) once the lag is small."
    b=$(now)
    rehearse_step drain "$a" "$b" 1 "marker applied on the target${lag:+ ($(human_bytes "$lag") of WAL behind when it was sent)}" \
        "{\"lag_bytes\": ${lag:-null}}"
    # 4. the sequences: the values the cutover would set, not set
    local bad svals tvals seqs nseq ndiff
    a=$(now)
    bad=$(unreadable_sequences) || die "$EX_CONNECT" "cannot read the source's sequences"
    [ -n "$bad" ] && problems+=("the cutover would fail: the migration's role cannot read these sequences on the source: $bad")
    svals=$(src "SELECT coalesce(json_object_agg(format('%I.%I', schemaname, sequencename), coalesce(last_value, start_value)::text), '{}')
                 FROM pg_sequences WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'lm')
                   AND schemaname NOT LIKE '\\_timescaledb%' AND $SEQ_NOT_MEMBER") ||
        die "$EX_CONNECT" "cannot read the source's sequences"
    tvals=$(tgt "SELECT coalesce(json_object_agg(format('%I.%I', schemaname, sequencename), last_value::text), '{}')
                 FROM pg_sequences WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'lm')") ||
        die "$EX_CONNECT" "cannot read the target's sequences"
    b=$(now)
    # name, source's value, target's (null: not used there; absent: no such sequence)
    seqs=$(jq -cn --argjson s "$svals" --argjson t "$tvals" \
        '[$s | to_entries[] | .key as $k | {name: $k, source: .value, target: $t[$k], on_target: ($t | has($k))}] | sort_by(.name)') ||
        die "$EX_FAILURE" "cannot read the sequences' values (jq failed)"
    nseq=$(jq length <<<"$seqs")
    ndiff=$(jq '[.[] | select(.on_target and .source != .target)] | length' <<<"$seqs")
    rehearse_step sequences "$a" "$b" 1 "$nseq sequence(s) read on both sides, $ndiff of them behind on the target (a rehearsal sets none)" \
        "{\"count\": $nseq, \"differ\": $ndiff}"
    # 5. the materialized views, refreshed in a transaction rolled back
    local stmts=() mvrc=0
    a=$(now)
    mapfile -t -d '' stmts < <(tgt "SELECT format('REFRESH MATERIALIZED VIEW %I.%I;', schemaname, matviewname)
                                    FROM pg_matviews WHERE schemaname NOT IN ('lm') ORDER BY schemaname, matviewname" -0)
    if [ ${#stmts[@]} -gt 0 ]; then
        { echo 'BEGIN;'; printf '%s\n' "${stmts[@]}"; echo 'ROLLBACK;'; } | psqlf "$TARGET" >/dev/null || mvrc=1
    fi
    b=$(now)
    [ $mvrc -eq 0 ] || problems+=("refreshing the materialized views on the target failed (the cutover only warns)")
    rehearse_step matviews "$a" "$b" 0 "${#stmts[@]} materialized view(s) refreshed in a transaction rolled back" \
        "{\"count\": ${#stmts[@]}}"
    # 6. the large objects: compared as the cutover compares them, none copied
    local slo tlo nlo
    a=$(now)
    slo=$(src "SELECT oid || ' ' || md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY 1") || die "$EX_CONNECT" "cannot read the source's large objects"
    tlo=$(tgt "SELECT oid || ' ' || md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY 1") || die "$EX_CONNECT" "cannot read the target's large objects"
    b=$(now)
    nlo=$(comm -3 <(sort <<<"$slo") <(sort <<<"$tlo") | awk '{ sub(/^\t/, ""); print $1 }' | sort -u | grep -c .)
    rehearse_step large_objects "$a" "$b" 0 "$nlo large object(s) differ and would be copied again (compared, not copied)" \
        "{\"differ\": $nlo}"
    # 7. verify, on the live data
    local vout vrc=0 vlast ntab=0 ntdiff=0
    a=$(now)
    vout=$(IN_CUTOVER=1 verify_cmd) || vrc=$?
    b=$(now)
    [ $vrc -eq 0 ] || [ $vrc -eq "$EX_DIFF" ] || { printf '%s\n' "$vout"; die "$vrc" "verify failed during the rehearsal"; }
    vlast=$(printf '%s\n' "$vout" | tail -n 1)
    if [[ $vlast =~ ^verify:\ ([0-9]+)\ of\ ([0-9]+)\ tables\ differ ]]; then
        ntdiff=${BASH_REMATCH[1]} ntab=${BASH_REMATCH[2]}
    elif [[ $vlast =~ ^verify:\ ([0-9]+)\ tables\ equal ]]; then
        ntab=${BASH_REMATCH[1]}
    fi
    if [ "$ntdiff" -gt 0 ]; then
        rehearse_step verify "$a" "$b" 0 "$ntdiff of $ntab tables differ: expected while the source takes writes" \
            "{\"tables\": $ntab, \"differ\": $ntdiff}"
    else
        rehearse_step verify "$a" "$b" 0 "$ntab tables equal on source and target" "{\"tables\": $ntab, \"differ\": 0}"
    fi
    # the downtime the cutover reports (fence or marker to sequences set),
    # and the whole of it (until "cutover complete")
    local down total i
    down=$(printf '%s\n' "${R_JSON[@]}" | jq -s '[.[] | select(.in_downtime) .seconds] | add * 100 | round / 100')
    total=$(printf '%s\n' "${R_JSON[@]}" | jq -s '[.[] .seconds] | add * 100 | round / 100')
    local rec
    rec=$(printf '%s\n' "${R_JSON[@]}" | jq -cs --arg time "$started" --arg lsn "$mlsn" --arg fence "${FENCE:-}" \
        --argjson down "$down" --argjson total "$total" --argjson problems "$(jq -cn '$ARGS.positional' --args "${problems[@]}")" \
        '{time: $time, marker_lsn: $lsn, fence: ($fence != ""), steps: ., estimated_downtime_seconds: $down,
          estimated_cutover_seconds: $total, problems: $problems}')
    printf '%s\n' "$rec" >>"$W/rehearsals.log" || die "$EX_IO" "cannot write $W/rehearsals.log"
    local p
    for p in "${problems[@]}"; do warn "$(printable "$p")"; done
    if [ -n "$JSON" ]; then
        jq --argjson seqs "$seqs" '. + {sequences: $seqs}' <<<"$rec"
        return 0
    fi
    echo "cutover rehearsal: capture and apply kept running; nothing was stopped or switched"
    printf '  %-14s %8s  %s\n' STEP SECONDS DETAIL
    for i in "${!R_NAME[@]}"; do
        printf '  %-14s %8s  %s\n' "${R_NAME[i]}" "${R_SECS[i]}" "${R_NOTE[i]}"
        if [ "${R_NAME[i]}" = sequences ] && [ "$nseq" -gt 0 ]; then
            # in jq, names as printable shows them (control characters escaped)
            jq -r --arg pad "$(printf '%27s' '')" "$JQ_PRINTABLE"'
                .[] | $pad + (.name | printable) + ": " + (if .on_target
                    then "would be set to \(.source) (target now \(.target // "unused"))"
                    else "\(.source) on the source, not on the target (skipped)" end)' <<<"$seqs"
        fi
        if [ "${R_NAME[i]}" = verify ] && [ "$ntdiff" -gt 0 ]; then
            printf '%s\n' "$vout" | sed '$d' | sed 's/^/                            /'
        fi
    done
    echo "estimated downtime: $(awk -v d="$down" 'BEGIN { printf "%.2f", d }')s of writes ($([ -n "$FENCE" ] && echo fence || echo marker) to sequences set, as cutover counts it)"
    echo "estimated cutover:  $(awk -v d="$total" 'BEGIN { printf "%.2f", d }')s in all, until cutover completes (without stopping the stages and dropping the slot)"
    echo "recorded in $W/rehearsals.log"
}

cmd_cutover() {
    if [ -n "$REHEARSE" ]; then
        # the phase first: a start still running holds the lock, and the
        # answer to a rehearsal then is the phase, not the lock
        [ -f "$W/config" ] && { require_private_workdir; rehearse_phase; lock_workdir "$CMD --rehearse"; }
        rehearse_cmd
        return "$EX_OK"
    fi
    [ -f "$W/config" ] && { require_private_workdir; lock_workdir "$CMD"; }
    cutover_cmd
    return "$EX_OK"
}
