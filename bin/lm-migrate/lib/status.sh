# shellcheck shell=bash disable=SC2034  # its variables are read in the other files
# lm-migrate: the numbers of a status (status, and start
# while it waits for the target to catch up).
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "status.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

# Gathers the numbers of a status into variables ST_*.  With ST_LIGHT set
# (the history sampler), only the figures history.jsonl keeps: the phase,
# the copy's counts, the lag, the rates, the spool; WAL differences computed
# here, not asked of the source (a few queries an interval).
gather_status() {
    ST_PHASE=$(phase)
    # the applied position first: the lag is never underestimated
    ST_POS=$(applied_position)
    ST_SOURCE_LSN=$(source_lsn 2>/dev/null)
    ST_CP=$(consistent_point)
    local base=${ST_POS:-$ST_CP}
    ST_LAG_BYTES=
    if [ -n "$ST_SOURCE_LSN" ] && [ -n "$base" ]; then
        if [ -n "${ST_LIGHT:-}" ] && lsn_bytes "$ST_SOURCE_LSN" >/dev/null && lsn_bytes "$base" >/dev/null; then
            ST_LAG_BYTES=$(($(lsn_bytes "$ST_SOURCE_LSN") - $(lsn_bytes "$base")))
            [ "$ST_LAG_BYTES" -ge 0 ] || ST_LAG_BYTES=0
        else
            ST_LAG_BYTES=$(lsn_diff "$ST_SOURCE_LSN" "$base" 2>/dev/null)
        fi
    fi
    # WAL with nothing to apply: when the slot is confirmed at or past the
    # current position and the apply holds every transaction the spool has,
    # there is nothing left to do whatever the WAL position says.
    ST_LAG_SECONDS=0
    local ts
    if [ -n "$ST_LAG_BYTES" ] && [ "$ST_LAG_BYTES" -gt "$CAUGHT_UP_BYTES" ]; then
        ts=$(tgt "SELECT extract(epoch FROM now() - commit_ts)::numeric(20,1) FROM lm.progress WHERE origin = $(lit "$SLOT")" 2>/dev/null)
        if [ -z "$ts" ] && [ -n "${STARTED:-}" ]; then
            ts=$(($(epoch) - STARTED))
        fi
        ST_LAG_SECONDS=${ts:-0}
        case $ST_LAG_SECONDS in -*) ST_LAG_SECONDS=0 ;; esac
    fi
    ST_SPOOL=$(spool_bytes)
    ST_TABLES_TOTAL=
    [ -f "$W/tables.list" ] && read_names "$W/tables.list" && ST_TABLES_TOTAL=${#NAMES[@]}
    read -r ST_TABLES_DONE ST_ROWS ST_BYTES <<<"$(copy_counts)"
    # what the copy is measured against (the source's estimates), and the
    # room left where the work directory (the spool, unless remote) is
    ST_ROWS_EST='' ST_BYTES_EST=''
    [ -n "${ST_LIGHT:-}" ] || case $ST_PHASE in
        slot|copy|postdata|streaming|cutover) read -r ST_ROWS_EST ST_BYTES_EST <<<"$(copy_estimates)" ;;
    esac
    ST_FREE=''
    [ -n "${ST_LIGHT:-}" ] || ST_FREE=$(df -P -B1 -- "$W" 2>/dev/null | awk 'NR == 2 { print $4 }')
    ST_TIME=$(epoch)
    # rates: against the previous sample once it is 2 s old, kept in the
    # work directory so that successive status commands see them too
    # (ST_SAMPLES_FILE: the history sampler keeps its own)
    local t0='' p0='' s0='' t1 dt r
    ST_APPLY_RATE='' ST_SOURCE_RATE='' ST_ETA=''
    t1=$(now)
    [ -f "${ST_SAMPLES_FILE:-$W/status.samples}" ] && read -r t0 p0 s0 _ <"${ST_SAMPLES_FILE:-$W/status.samples}"
    if [ -n "$ST_POS" ] && [ -n "$ST_SOURCE_LSN" ]; then
        dt=$(awk -v a="$t1" -v b="${t0:-0}" 'BEGIN { printf "%.3f", a - b }')
        if [ -n "$p0" ] && awk -v d="$dt" 'BEGIN { exit !(d >= 2) }'; then
            if [ -n "${ST_LIGHT:-}" ] && lsn_bytes "$ST_POS" >/dev/null && lsn_bytes "$p0" >/dev/null &&
                lsn_bytes "$ST_SOURCE_LSN" >/dev/null && lsn_bytes "$s0" >/dev/null; then
                r="$(($(lsn_bytes "$ST_POS") - $(lsn_bytes "$p0")))|$(($(lsn_bytes "$ST_SOURCE_LSN") - $(lsn_bytes "$s0")))"
            else
                r=$(src "SELECT pg_wal_lsn_diff($(lit "$ST_POS"), $(lit "$p0"))::bigint || '|' || pg_wal_lsn_diff($(lit "$ST_SOURCE_LSN"), $(lit "$s0"))::bigint" 2>/dev/null)
            fi
            if [ -n "$r" ]; then
                ST_APPLY_RATE=$(awk -v b="${r%%|*}" -v d="$dt" 'BEGIN { printf "%d", b / d }')
                ST_SOURCE_RATE=$(awk -v b="${r##*|}" -v d="$dt" 'BEGIN { printf "%d", b / d }')
                printf '%s %s %s %s %s\n' "$t1" "$ST_POS" "$ST_SOURCE_LSN" "$ST_APPLY_RATE" "$ST_SOURCE_RATE" >"${ST_SAMPLES_FILE:-$W/status.samples}"
            fi
        elif [ -z "$p0" ]; then
            printf '%s %s %s\n' "$t1" "$ST_POS" "$ST_SOURCE_LSN" >"${ST_SAMPLES_FILE:-$W/status.samples}"
        else
            # too recent: the rates of the last sample
            read -r _ _ _ ST_APPLY_RATE ST_SOURCE_RATE <"${ST_SAMPLES_FILE:-$W/status.samples}"
        fi
    fi
    # caught up only once the apply has a position of its own (a commit,
    # or a keepalive carried to the target once everything was applied):
    # measured from the consistent point, a few small transactions look
    # caught up before the apply has read them, or while it fails on them
    ST_CAUGHT_UP=false
    if [ -n "$ST_POS" ] && [ -n "$ST_LAG_BYTES" ] && { [ "$ST_LAG_BYTES" -le "$CAUGHT_UP_BYTES" ] ||
        awk -v s="$ST_LAG_SECONDS" -v m="$CAUGHT_UP_SECONDS" 'BEGIN { exit !(s <= m) }'; }; then
        ST_CAUGHT_UP=true
    fi
    if [ "${ST_LAG_BYTES:-1}" -le "$CAUGHT_UP_BYTES" ] 2>/dev/null; then
        ST_ETA=0
    elif [ -n "$ST_APPLY_RATE" ] && [ "$ST_APPLY_RATE" -gt "${ST_SOURCE_RATE:-0}" ]; then
        ST_ETA=$((ST_LAG_BYTES / (ST_APPLY_RATE - ${ST_SOURCE_RATE:-0})))
    fi
    [ -z "${ST_LIGHT:-}" ] || return 0
    # the slot
    ST_SLOT=$(src "SELECT coalesce(wal_status, 'unknown') || '|' || CASE WHEN active THEN 't' ELSE 'f' END || '|' ||
                          coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, 0)
                   FROM pg_replication_slots WHERE slot_name = $(lit "$SLOT")" 2>/dev/null)
    IFS='|' read -r ST_WAL_STATUS ST_SLOT_ACTIVE ST_RETAINED <<<"$ST_SLOT"
    # warnings: nothing broken yet, but it will be if it goes on
    ST_WARNINGS=()
    case $ST_WAL_STATUS in
        extended) ST_WARNINGS+=("the slot $SLOT retains $(human_bytes "${ST_RETAINED:-0}") of WAL on the source, more than its max_wal_size (wal_status extended): watch the source's disk") ;;
        unreserved) ST_WARNINGS+=("the slot $SLOT retains $(human_bytes "${ST_RETAINED:-0}") of WAL, past max_slot_wal_keep_size (wal_status unreserved): it is lost at the source's next checkpoint unless the decode catches up") ;;
    esac
    if [ -n "$ST_FREE" ] && [ "$ST_FREE" -lt "$LOW_DISK_BYTES" ]; then
        ST_WARNINGS+=("only $(human_bytes "$ST_FREE") free on the work directory's filesystem ($W)")
    fi
    # what needs the operator
    ST_ATTENTION=()
    local s expect
    case $ST_PHASE in
        slot) expect="slot migrate" ;;
        copy) expect="decode snapshot migrate" ;;
        postdata) expect="decode snapshot migrate" ;;
        streaming) expect="decode apply" ;;
        *) expect="" ;;
    esac
    # a step that failed: the stage's own error, and nothing it left
    # behind taken for a new problem
    ST_FAILED=null
    if [ -f "$W/failed" ] && jq -e 'type == "object"' "$W/failed" >/dev/null 2>&1; then
        ST_FAILED=$(jq -c . "$W/failed")
        ST_ATTENTION+=("$(jq -r '"step \(.step) failed: \(.stage) \(.how)" + ((.errors | map(select(test("error|fatal|FATAL|ERROR")))[0] // null) as $e | if $e then ": \($e)" else "" end) + "; \(.hint)"' "$W/failed")")
        expect=""
    fi
    # while the orchestrator runs, the stages are its to watch: one that has
    # ended (its step done, or a failure it records) is no news here, nor
    # one not started yet
    stage_alive migrate && expect=""

    for s in $expect; do
        if [ -f "$W/pids/$s" ] && ! stage_alive "$s"; then
            ST_ATTENTION+=("stage $s (pid $(stage_pid "$s")) died: see $W/logs/$s.log, then run $PROG start --resume")
        elif [ ! -f "$W/pids/$s" ] && [ "$s" != slot ] && [ "$s" != migrate ] && [ "$s" != snapshot ]; then
            ST_ATTENTION+=("stage $s is not running: run $PROG start --resume")
        elif [ ! -f "$W/pids/$s" ] && [ "$s" = migrate ]; then
            ST_ATTENTION+=("the orchestrator stopped during phase $ST_PHASE: run $PROG start --resume")
        fi
    done
    local slot_expected=1
    # being created (lm-slot waits for running transactions), or never
    # made (the slot step failed)
    if [ "$ST_PHASE" = slot ] && { stage_alive migrate || [ "$ST_FAILED" != null ]; }; then slot_expected=; fi
    case $ST_PHASE in
        slot|copy|postdata|streaming|cutover)
            if [ -z "$slot_expected" ]; then
                :
            elif [ -z "$ST_SLOT" ]; then
                ST_ATTENTION+=("the slot $SLOT is missing on the source: the migration cannot continue; run $PROG abort and start over")
            elif [ "$ST_WAL_STATUS" = lost ]; then
                ST_ATTENTION+=("the slot $SLOT is lost (max_slot_wal_keep_size): run $PROG abort and start over")
            fi
            ;;
    esac
    # the last cutover rehearsal (cutover --rehearse): its time and
    # estimated downtime, or null
    ST_REHEARSAL=null
    if [ -s "$W/rehearsals.log" ]; then
        ST_REHEARSAL=$(tail -n 1 "$W/rehearsals.log" | jq -c 'select(type == "object" and (.estimated_downtime_seconds | type) == "number")
            | {time, estimated_downtime_seconds, estimated_cutover_seconds, fence}' 2>/dev/null)
        [ -n "$ST_REHEARSAL" ] || ST_REHEARSAL=null
    fi
    if [ "$ST_PHASE" = streaming ]; then
        local ddl
        ddl=$(ddl_changes)
        [ -n "$ddl" ] && ST_ATTENTION+=("columns differ between source and target (DDL on the source?): $ddl; apply the same DDL on the target")
        local new=() t
        local -A known=()
        read_names "$W/unpublished.list"
        for t in "${NAMES[@]}"; do known[$t]=1; done
        while IFS= read -r -d '' t; do
            [ -n "${known[$t]:-}" ] || new+=("$t")
        done < <(unpublished_tables 2>/dev/null)
        [ ${#new[@]} -gt 0 ] && ST_ATTENTION+=("tables created on the source since the start are not migrated: $(IFS=,; echo "${new[*]}")")
    fi
}
