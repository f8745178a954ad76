# shellcheck shell=bash
# lm-migrate: the history of a migration: WORKDIR/history.jsonl, one
# compact JSON object a line, appended by the sampler (the stage "history",
# the internal command _sample: one status gather every
# LM_HISTORY_INTERVAL seconds), by set_phase (each phase's start) and by
# cutover (its start, and its end with the downtime).  lm-migrate report
# draws it.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "history.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

HISTORY_INTERVAL_DEFAULT=10

# history_interval: LM_HISTORY_INTERVAL, or the default when it is unset
# (a usage error when it is not a number of seconds above 0)
history_interval() {
    local i=${LM_HISTORY_INTERVAL:-$HISTORY_INTERVAL_DEFAULT}
    valid_interval "$i" || usage_error "invalid LM_HISTORY_INTERVAL \"$i\": a number of seconds above 0 and at most 86400"
    printf '%s' "$i"
}

# history_append LINE: LINE (one JSON object, no newline in it) appended to
# WORKDIR/history.jsonl in one write.  A line a kill cut short is ended
# first, so that it stays one line the report skips and never swallows
# the next.  Never fails the caller: the history is for reading only.
history_append() {
    local f=$W/history.jsonl line=$1
    [ -n "$line" ] && [ -d "$W" ] || return 0
    if [ -s "$f" ] && [ -n "$(tail -c 1 "$f" 2>/dev/null)" ]; then line=$'\n'$line; fi
    printf '%s\n' "$line" >>"$f" 2>/dev/null
    return 0
}

# history_event EVENT [JSON]: a record {time, event} (and JSON's keys)
history_event() {
    history_append "$(jq -cn --arg t "$(now)" --arg e "$1" --argjson x "${2:-"{}"}" \
        '{time: ($t | tonumber), event: $e} + $x' 2>/dev/null)"
}

# history_sample TIME INTERVAL: the status gathered (gather_status) as one
# record
history_sample() {
    jq -cn --arg t "$1" --arg phase "$ST_PHASE" --arg td "${ST_TABLES_DONE:-}" --arg tt "${ST_TABLES_TOTAL:-}" \
        --arg rows "${ST_ROWS:-}" --arg bytes "${ST_BYTES:-}" --arg lb "${ST_LAG_BYTES:-}" --arg ls "${ST_LAG_SECONDS:-}" \
        --arg ar "${ST_APPLY_RATE:-}" --arg sr "${ST_SOURCE_RATE:-}" --arg sp "${ST_SPOOL:-}" --arg pos "${ST_POS:-}" \
        --arg iv "${2:-}" '
        def num: if . == "" then null else (tonumber? // null) end;
        {time: ($t | tonumber), event: "sample", phase: $phase,
         tables_done: ($td | num), tables_total: ($tt | num), rows: ($rows | num), bytes: ($bytes | num),
         lag_bytes: ($lb | num), lag_seconds: ($ls | num), apply_rate_bytes: ($ar | num),
         source_rate_bytes: ($sr | num), spool_bytes: ($sp | num),
         position: (if $pos == "" then null else $pos end), interval: ($iv | num)}' 2>/dev/null
}

# start_history: the sampler, unless it runs (start and start --resume)
start_history() {
    stage_alive history && return 0
    history_interval >/dev/null
    spawn history "$SELF" _sample --workdir "$W"
    info "history sampler started (pid $LAST_PID): every $(history_interval)s into $W/history.jsonl"
}

# _sample: the sampler's loop; it ends with the migration (phase done,
# aborted, or the work directory gone), or when stopped (SIGTERM)
cmd_sample() {
    local interval t next wait
    load_config
    interval=$(history_interval)
    trap 'exit 0' TERM INT
    next=$(now)
    while [ -f "$W/config" ]; do
        case $(phase) in done | aborted | none) break ;; esac
        t=$(now)
        ST_LIGHT=1 ST_SAMPLES_FILE=$W/history.samples gather_status
        history_append "$(history_sample "$t" "$interval")"
        # the next one an interval after this one began (none skipped to
        # catch up when a gather took longer)
        read -r next wait < <(awk -v n="$next" -v i="$interval" -v t="$(now)" \
            'BEGIN { n += i; if (n < t) n = t; printf "%.3f %.3f\n", n, n - t }')
        sleep "$wait"
    done
    return "$EX_OK"
}
