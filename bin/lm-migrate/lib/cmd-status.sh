# shellcheck shell=bash
# lm-migrate: the command status.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "cmd-status.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

# status_json [-c]: the status gathered, as one JSON object (-c: on one line)
status_json() {
    local att warn
    # one item each, whatever bytes a name in it holds (JSON escapes them)
    att=$(jq -cn '$ARGS.positional' --args "${ST_ATTENTION[@]}")
    warn=$(jq -cn '$ARGS.positional' --args "${ST_WARNINGS[@]}")
    jq -n "$@" --arg phase "$ST_PHASE" --arg slot "$SLOT" --arg time "$ST_TIME" \
        --arg source_lsn "$ST_SOURCE_LSN" --arg position "$ST_POS" --arg cp "$ST_CP" \
        --arg lag_bytes "$ST_LAG_BYTES" --arg lag_seconds "$ST_LAG_SECONDS" \
        --arg apply_rate "$ST_APPLY_RATE" --arg source_rate "$ST_SOURCE_RATE" --arg eta "$ST_ETA" \
        --arg spool "$ST_SPOOL" --arg free "$ST_FREE" --arg tdone "${ST_TABLES_DONE:-0}" --arg ttotal "${ST_TABLES_TOTAL:-0}" \
        --arg rows "${ST_ROWS:-0}" --arg bytes "${ST_BYTES:-0}" --arg rows_est "$ST_ROWS_EST" --arg bytes_est "$ST_BYTES_EST" \
        --arg wal_status "$ST_WAL_STATUS" --arg active "$ST_SLOT_ACTIVE" --arg retained "$ST_RETAINED" \
        --arg decode "$(stage_alive decode && echo true || echo false)" --arg caught_up "$ST_CAUGHT_UP" \
        --arg apply "$(stage_alive apply && echo true || echo false)" \
        --arg target_schema "${TARGET_SCHEMA:-restore}" \
        --arg snapshot "$(stage_alive snapshot && echo true || echo false)" \
        --arg history "$(stage_alive history && echo true || echo false)" \
        --argjson attention "$att" --argjson warnings "$warn" --argjson failed "${ST_FAILED:-null}" \
        --argjson rehearsal "${ST_REHEARSAL:-null}" '
        def num: if . == "" then null else tonumber end;
        { phase: $phase, slot: $slot, target_schema: $target_schema, time: ($time | num),
          source_lsn: ($source_lsn | if . == "" then null else . end),
          position: ($position | if . == "" then null else . end),
          consistent_point: ($cp | if . == "" then null else . end),
          lag_bytes: ($lag_bytes | num), lag_seconds: ($lag_seconds | num),
          caught_up: ($caught_up == "true"),
          apply_rate_bytes: ($apply_rate | num), source_rate_bytes: ($source_rate | num),
          eta_seconds: ($eta | num), spool_bytes: ($spool | num), workdir_free_bytes: ($free | num),
          copy: { tables_done: ($tdone | num), tables_total: ($ttotal | num), rows: ($rows | num), bytes: ($bytes | num),
                  rows_estimate: ($rows_est | num), bytes_estimate: ($bytes_est | num) },
          slot_state: { wal_status: ($wal_status | if . == "" then null else . end),
                        active: ($active == "t"), retained_bytes: ($retained | num) },
          stages: { decode: ($decode == "true"), snapshot: ($snapshot == "true"), apply: ($apply == "true"),
                    history: ($history == "true") },
          failed: $failed, attention: $attention, warnings: $warnings, last_rehearsal: $rehearsal }'
}

# status_text: the status gathered, as text
status_text() {
    printf 'phase:      %s\n' "$ST_PHASE"
    printf 'slot:       %s (wal_status %s, %s, retains %s)\n' "$SLOT" "${ST_WAL_STATUS:-missing}" \
        "$([ "$ST_SLOT_ACTIVE" = t ] && echo active || echo inactive)" "$(human_bytes "${ST_RETAINED:-0}")"
    [ "${TARGET_SCHEMA:-restore}" = existing ] && printf 'target:     tables prepared on the target (--target-schema=existing)\n'
    printf 'copy:       %s/%s tables, %s rows, %s\n' "${ST_TABLES_DONE:-0}" "${ST_TABLES_TOTAL:-?}" "${ST_ROWS:-0}" "$(human_bytes "${ST_BYTES:-0}")"
    printf 'position:   applied %s, source at %s\n' "${ST_POS:-none}" "${ST_SOURCE_LSN:-?}"
    printf 'lag:        %s, %s\n' "$(human_bytes "${ST_LAG_BYTES:-0}")" "$(human_secs "$ST_LAG_SECONDS")"
    printf 'apply rate: %s\n' "$([ -n "$ST_APPLY_RATE" ] && echo "$(human_bytes "$ST_APPLY_RATE")/s of WAL (source writes $(human_bytes "${ST_SOURCE_RATE:-0}")/s)" || echo "(run status again for rates)")"
    printf 'eta:        %s\n' "$([ -n "$ST_ETA" ] && human_secs "$ST_ETA" || echo unknown)"
    printf 'spool:      %s\n' "$(human_bytes "${ST_SPOOL:-0}")"
    if [ "${ST_REHEARSAL:-null}" != null ]; then
        jq -r '"\(.estimated_downtime_seconds) \(.estimated_cutover_seconds) \(.time) \(.fence)"' <<<"$ST_REHEARSAL" |
            awk '{ printf "rehearsal:  estimated downtime %.2fs (cutover %.2fs in all%s) at %s\n", $1, $2, $4 == "true" ? ", with --fence" : "", $3 }'
    fi
    local s
    printf 'stages:    '
    for s in decode snapshot apply; do printf ' %s=%s' "$s" "$(stage_alive "$s" && echo running || echo stopped)"; done
    printf '\n'
    status_failed_and_attention
}

status_failed_and_attention() {
    if [ "${ST_FAILED:-null}" != null ]; then
        jq -r '"failed:     step \(.step): \(.stage) \(.how) (\(.time); log: \(.log))", (.errors[] | "    \(.)"), "    hint: \(.hint)"' <<<"$ST_FAILED"
    fi
    local a
    if [ ${#ST_ATTENTION[@]} -gt 0 ]; then
        printf 'needs attention:\n'
        for a in "${ST_ATTENTION[@]}"; do printf '  - %s\n' "$(printable "$a")"; done
    fi
    if [ ${#ST_WARNINGS[@]} -gt 0 ]; then
        printf 'warnings:\n'
        for a in "${ST_WARNINGS[@]}"; do printf '  - %s\n' "$(printable "$a")"; done
    fi
}

# text_bar DONE TOTAL [WIDTH]: "[#########...........]  45%" (DONE past
# TOTAL, as an estimate may be low, is a full bar); nothing when TOTAL is
# unknown or 0
text_bar() {
    local n=${1:-0} total=${2:-0} width=${3:-30} fill pct bar
    [[ $n =~ ^[0-9]{1,15}$ && $total =~ ^[0-9]{1,15}$ ]] && [ "$total" -gt 0 ] || return 0
    [ "$n" -gt "$total" ] && n=$total
    fill=$((n * width / total))
    pct=$((n * 100 / total))
    printf -v bar '%*s' "$fill" ''
    bar=${bar// /#}
    printf -v bar '%s%*s' "$bar" $((width - fill)) ''
    printf '[%s] %3d%%' "${bar// /.}" "$pct"
}

# status_watch_text: the one-screen view of status --watch
status_watch_text() {
    local s
    printf 'lm-migrate: %s, every %ss   %s\n' "$(printable "$W")" "$WATCH" "$(date -u -d "@$ST_TIME" +'%Y-%m-%d %H:%M:%S UTC')"
    printf 'phase:      %s%s\n' "$ST_PHASE" "$([ "$ST_CAUGHT_UP" = true ] && echo ' (caught up)')"
    printf 'tables:     %s %s/%s copied\n' "$(text_bar "${ST_TABLES_DONE:-0}" "${ST_TABLES_TOTAL:-0}")" "${ST_TABLES_DONE:-0}" "${ST_TABLES_TOTAL:-?}"
    if [ "${ST_ROWS_EST:-0}" -gt 0 ] 2>/dev/null; then
        printf 'rows:       %s %s of ~%s (source estimate)\n' "$(text_bar "${ST_ROWS:-0}" "$ST_ROWS_EST")" "${ST_ROWS:-0}" "$ST_ROWS_EST"
    else
        printf 'rows:       %s\n' "${ST_ROWS:-0}"
    fi
    printf 'bytes:      %s copied%s\n' "$(human_bytes "${ST_BYTES:-0}")" \
        "$([ "${ST_BYTES_EST:-0}" -gt 0 ] 2>/dev/null && echo " (tables ~$(human_bytes "$ST_BYTES_EST") on the source's disk)")"
    printf 'lag:        %s, %s (applied %s, source at %s)\n' "$(human_bytes "${ST_LAG_BYTES:-0}")" "$(human_secs "$ST_LAG_SECONDS")" \
        "${ST_POS:-none}" "${ST_SOURCE_LSN:-?}"
    if [ -n "$ST_APPLY_RATE" ]; then
        printf 'rates:      apply %s/s, source writes %s/s (WAL)\n' "$(human_bytes "$ST_APPLY_RATE")" "$(human_bytes "${ST_SOURCE_RATE:-0}")"
    else
        printf 'rates:      (measured from the next interval on)\n'
    fi
    printf 'eta:        %s\n' "$([ -n "$ST_ETA" ] && human_secs "$ST_ETA" || echo unknown)"
    printf 'spool:      %s; %s free on the work directory'"'"'s filesystem\n' "$(human_bytes "${ST_SPOOL:-0}")" \
        "$([ -n "$ST_FREE" ] && human_bytes "$ST_FREE" || echo '?')"
    printf 'slot:       %s (wal_status %s, %s, retains %s of WAL)\n' "$SLOT" "${ST_WAL_STATUS:-missing}" \
        "$([ "$ST_SLOT_ACTIVE" = t ] && echo active || echo inactive)" "$(human_bytes "${ST_RETAINED:-0}")"
    printf 'stages:    '
    for s in decode snapshot apply; do printf ' %s=%s' "$s" "$(stage_alive "$s" && echo running || echo stopped)"; done
    printf '\n'
    status_failed_and_attention
}

# ---------------------------------------------------------------- --prometheus

# prom_label VALUE: VALUE as a label value of the text exposition format:
# a backslash, a double quote and a newline escaped; a byte that is not
# UTF-8 (the format's encoding) as U+FFFD
prom_label() {
    local s
    # (a character after it: $(...) would drop the value's trailing newlines)
    s=$(printf '%s' "$1" | jq -Rsj '. + "."') || s=.
    s=${s%.}
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '%s' "${s//$'\n'/\\n}"
}

# prom NAME TYPE HELP [LABELS VALUE]...: a metric's HELP and TYPE lines and
# its samples; a sample with an empty VALUE (unknown) is left out, and the
# metric with it when it has none
prom() {
    local name=$1 type=$2 help=$3 out='' labels
    shift 3
    while [ $# -ge 2 ]; do
        labels=''
        [ -z "$1" ] || labels="{$1}"
        [ -z "$2" ] || out+="$name$labels $2"$'\n'
        shift 2
    done
    [ -n "$out" ] || return 0
    printf '# HELP %s %s\n# TYPE %s %s\n%s' "$name" "$help" "$name" "$type" "$out"
}

b01() { [ "$1" = "$2" ] && echo 1 || echo 0; }

# status_prometheus: the status gathered, in Prometheus' text exposition
# format (for node_exporter's textfile collector)
status_prometheus() {
    local p args=() s
    for p in preflight slot copy postdata streaming cutover 'done' aborted; do
        args+=("phase=\"$p\"" "$(b01 "$ST_PHASE" "$p")")
    done
    prom lm_migrate_info gauge "The migration this work directory holds (always 1)." \
        "slot=\"$(prom_label "$SLOT")\",workdir=\"$(prom_label "$W")\",target_schema=\"$(prom_label "${TARGET_SCHEMA:-restore}")\"" 1
    prom lm_migrate_phase gauge "The migration's phase: 1 for the current one, 0 for the others." "${args[@]}"
    prom lm_migrate_status_timestamp_seconds gauge "When these figures were gathered (Unix time)." "" "$ST_TIME"
    prom lm_migrate_copy_tables gauge "Tables published (to copy)." "" "${ST_TABLES_TOTAL:-0}"
    prom lm_migrate_copy_tables_done gauge "Tables copied whole." "" "${ST_TABLES_DONE:-0}"
    prom lm_migrate_copy_rows_total counter "Rows of the tables copied whole." "" "${ST_ROWS:-0}"
    prom lm_migrate_copy_bytes_total counter "Bytes of COPY data of the tables copied whole." "" "${ST_BYTES:-0}"
    prom lm_migrate_copy_estimated_rows gauge "Rows of the published tables, the source's estimate (reltuples)." "" "$ST_ROWS_EST"
    prom lm_migrate_copy_estimated_bytes gauge "Size of the published tables on the source's disk (pg_relation_size)." "" "$ST_BYTES_EST"
    prom lm_migrate_lag_bytes gauge "WAL bytes from the applied position to the source's current one." "" "$ST_LAG_BYTES"
    prom lm_migrate_lag_seconds gauge "Age of the last applied commit while behind, 0 when caught up." "" "$ST_LAG_SECONDS"
    prom lm_migrate_caught_up gauge "1 when the target has caught up with the source." "" "$(b01 "$ST_CAUGHT_UP" true)"
    prom lm_migrate_source_wal_position_bytes gauge "The source's current WAL position (LSN) in bytes." "" "$(lsn_bytes "$ST_SOURCE_LSN")"
    prom lm_migrate_applied_wal_position_bytes gauge "The applied position (LSN) in bytes." "" "$(lsn_bytes "$ST_POS")"
    prom lm_migrate_apply_rate_bytes_per_second gauge "WAL bytes applied per second, since the previous status." "" "$ST_APPLY_RATE"
    prom lm_migrate_source_write_rate_bytes_per_second gauge "WAL bytes the source wrote per second, since the previous status." "" "$ST_SOURCE_RATE"
    prom lm_migrate_eta_seconds gauge "Estimated time until the target catches up." "" "$ST_ETA"
    prom lm_migrate_spool_bytes gauge "Size of the spool of decoded changes." "" "$ST_SPOOL"
    prom lm_migrate_workdir_free_bytes gauge "Free space on the work directory's filesystem." "" "$ST_FREE"
    args=()
    [ -n "$ST_WAL_STATUS" ] && for s in reserved extended unreserved lost; do
        args+=("wal_status=\"$s\"" "$(b01 "$ST_WAL_STATUS" "$s")")
    done
    [ ${#args[@]} -gt 0 ] && prom lm_migrate_slot_wal_status gauge "The slot's wal_status: 1 for the current one." "${args[@]}"
    prom lm_migrate_slot_present gauge "1 when the slot exists on the source." "" "$([ -n "$ST_WAL_STATUS" ] && echo 1 || echo 0)"
    prom lm_migrate_slot_active gauge "1 when a process reads the slot." "" "$(b01 "$ST_SLOT_ACTIVE" t)"
    prom lm_migrate_slot_retained_wal_bytes gauge "WAL the slot keeps on the source." "" "$ST_RETAINED"
    args=()
    for s in decode snapshot apply; do
        args+=("stage=\"$s\"" "$(stage_alive "$s" && echo 1 || echo 0)")
    done
    prom lm_migrate_stage_running gauge "1 when the stage runs." "${args[@]}"
    prom lm_migrate_failed gauge "1 when a step failed (see lm-migrate status)." "" "$([ "${ST_FAILED:-null}" != null ] && echo 1 || echo 0)"
    prom lm_migrate_attention_items gauge "Problems that need the operator (see lm-migrate status)." "" "${#ST_ATTENTION[@]}"
    prom lm_migrate_warnings gauge "Warnings (see lm-migrate status)." "" "${#ST_WARNINGS[@]}"
}

# ---------------------------------------------------------------- --watch

WATCH_SLEEP=''

# the end of a watch (Ctrl-C, SIGTERM, the migration's end): the cursor
# shown again, the line a ^C was echoed on cleared
watch_end() {
    [ -n "$WATCH_SLEEP" ] && kill "$WATCH_SLEEP" 2>/dev/null
    [ -n "$WATCH_TTY" ] && printf '\r\033[K\033[?25h'
    exit "$EX_OK"
}

# watch_frame TEXT: TEXT over the previous one, on a terminal each line
# cut to its width and cleared to its end, the rest of the screen cleared;
# elsewhere a block, a blank line between two
watch_frame() {
    local rows=24 cols=80 line out=$'\033[H' n=0 lines=()
    if [ -z "$WATCH_TTY" ]; then
        [ -n "$WATCH_FIRST" ] || printf '\n'
        printf '%s\n' "$1"
        return 0
    fi
    # the terminal's size now (it may have been resized)
    read -r rows cols <<<"$(stty size <&"$WATCH_FD" 2>/dev/null)" || true
    [[ $rows =~ ^[1-9][0-9]*$ && $cols =~ ^[1-9][0-9]*$ ]] || { rows=24 cols=80; }
    mapfile -t lines <<<"$1"
    if [ ${#lines[@]} -ge "$rows" ]; then
        n=$((${#lines[@]} - rows + 2))
        lines=("${lines[@]:0:rows-2}" "($n more lines: run $PROG status)")
    fi
    for line in "${lines[@]}"; do out+="${line:0:cols}"$'\033[K\n'; done
    printf '%s\033[J' "$out"
}

status_watch() {
    local next t wait ended=
    WATCH_TTY='' WATCH_FIRST=1
    # standard output, for stty to read its size through
    exec {WATCH_FD}>&1
    [ -t 1 ] && WATCH_TTY=1
    trap watch_end INT TERM
    # hide the cursor, clear the screen once
    [ -n "$WATCH_TTY" ] && printf '\033[?25l\033[H\033[2J'
    next=$(now)
    while :; do
        gather_status
        case $ST_PHASE in done|aborted|none) ended=1 ;; esac
        if [ -n "$JSON" ]; then
            status_json -c
        else
            watch_frame "$(status_watch_text)"
        fi
        WATCH_FIRST=
        [ -z "$ended" ] || watch_end
        # the next frame an interval after this one began (none skipped
        # to catch up when gathering took longer)
        t=$(now)
        read -r next wait < <(awk -v n="$next" -v i="$WATCH" -v t="$t" \
            'BEGIN { n += i; if (n < t) n = t; printf "%.3f %.3f\n", n, n - t }')
        sleep "$wait" &
        WATCH_SLEEP=$!
        wait "$WATCH_SLEEP"
        WATCH_SLEEP=''
    done
}

status_cmd() {
    load_config
    if [ -n "$WATCH" ]; then
        status_watch
        return 0
    fi
    gather_status
    if [ -n "$PROMETHEUS" ]; then
        status_prometheus
    elif [ -n "$JSON" ]; then
        status_json
    else
        status_text
    fi
}

cmd_status() {
    status_cmd
    return "$EX_OK"
}
