# shellcheck shell=bash
# lm-migrate: the command status.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "cmd-status.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

status_cmd() {
    load_config
    gather_status
    if [ -n "$JSON" ]; then
        local att
        # one item each, whatever bytes a name in it holds (JSON escapes them)
        att=$(jq -cn '$ARGS.positional' --args "${ST_ATTENTION[@]}")
        jq -n --arg phase "$ST_PHASE" --arg slot "$SLOT" \
            --arg source_lsn "$ST_SOURCE_LSN" --arg position "$ST_POS" --arg cp "$ST_CP" \
            --arg lag_bytes "$ST_LAG_BYTES" --arg lag_seconds "$ST_LAG_SECONDS" \
            --arg apply_rate "$ST_APPLY_RATE" --arg source_rate "$ST_SOURCE_RATE" --arg eta "$ST_ETA" \
            --arg spool "$ST_SPOOL" --arg tdone "${ST_TABLES_DONE:-0}" --arg ttotal "${ST_TABLES_TOTAL:-0}" \
            --arg rows "${ST_ROWS:-0}" --arg bytes "${ST_BYTES:-0}" \
            --arg wal_status "$ST_WAL_STATUS" --arg active "$ST_SLOT_ACTIVE" --arg retained "$ST_RETAINED" \
            --arg decode "$(stage_alive decode && echo true || echo false)" --arg caught_up "$ST_CAUGHT_UP" \
            --arg apply "$(stage_alive apply && echo true || echo false)" \
            --arg target_schema "${TARGET_SCHEMA:-restore}" \
            --arg snapshot "$(stage_alive snapshot && echo true || echo false)" \
            --argjson attention "$att" --argjson failed "${ST_FAILED:-null}" --argjson rehearsal "${ST_REHEARSAL:-null}" '
            def num: if . == "" then null else tonumber end;
            { phase: $phase, slot: $slot, target_schema: $target_schema, source_lsn: ($source_lsn | if . == "" then null else . end),
              position: ($position | if . == "" then null else . end),
              consistent_point: ($cp | if . == "" then null else . end),
              lag_bytes: ($lag_bytes | num), lag_seconds: ($lag_seconds | num),
              caught_up: ($caught_up == "true"),
              apply_rate_bytes: ($apply_rate | num), source_rate_bytes: ($source_rate | num),
              eta_seconds: ($eta | num), spool_bytes: ($spool | num),
              copy: { tables_done: ($tdone | num), tables_total: ($ttotal | num), rows: ($rows | num), bytes: ($bytes | num) },
              slot_state: { wal_status: ($wal_status | if . == "" then null else . end),
                            active: ($active == "t"), retained_bytes: ($retained | num) },
              stages: { decode: ($decode == "true"), snapshot: ($snapshot == "true"), apply: ($apply == "true") },
              failed: $failed, attention: $attention, last_rehearsal: $rehearsal }'
        return 0
    fi
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
    if [ "${ST_FAILED:-null}" != null ]; then
        jq -r '"failed:     step \(.step): \(.stage) \(.how) (\(.time); log: \(.log))", (.errors[] | "    \(.)"), "    hint: \(.hint)"' <<<"$ST_FAILED"
    fi
    if [ ${#ST_ATTENTION[@]} -gt 0 ]; then
        printf 'needs attention:\n'
        local a
        for a in "${ST_ATTENTION[@]}"; do printf '  - %s\n' "$(printable "$a")"; done
    fi
}

cmd_status() {
    status_cmd
    return "$EX_OK"
}
