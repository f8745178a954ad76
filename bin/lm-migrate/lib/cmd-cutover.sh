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
    warn "capture and apply run again; run cutover once the cause is fixed"
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
    local marked
    marked=$(tgt "SELECT count(*) FROM lm.marker WHERE origin = $(lit "$SLOT") AND payload = $(lit "$payload")" 2>/dev/null)
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
        local end=$(($(epoch) + TIMEOUT))
        while :; do
            marked=$(tgt "SELECT count(*) FROM lm.marker WHERE origin = $(lit "$SLOT") AND payload = $(lit "$payload")" 2>/dev/null)
            [ "$marked" = 1 ] && break
            if [ "$(epoch)" -ge "$end" ]; then
                error "the marker was not applied within ${TIMEOUT}s"
                hint "See $PROG status; run cutover again (with a larger --timeout) once the lag is small."
                exit "$EX_TIMEOUT"
            fi
            # lm-decode ends by itself at the marker ("stopped (marker)")
            if ! stage_alive decode && ! tail -n 2 "$W/logs/decode.log" 2>/dev/null | grep -q marker; then
                error "lm-decode stopped before the marker arrived"; stage_log_tail decode 10
                exit "$EX_FAILURE"
            fi
            if ! stage_alive apply; then
                error "lm-apply stopped before the marker was applied"; stage_log_tail apply 10
                exit "$EX_FAILURE"
            fi
            sleep 0.1
        done
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

cmd_cutover() {
    [ -f "$W/config" ] && { require_private_workdir; lock_workdir "$CMD"; }
    cutover_cmd
    return "$EX_OK"
}
