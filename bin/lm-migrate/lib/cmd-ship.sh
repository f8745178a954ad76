# shellcheck shell=bash
# lm-migrate: the internal command _ship: segments across
# ssh, from the decode host's spool into lm-apply.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "cmd-ship.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

# With --decode-host or --apply-host, segments cross ssh: each finished
# segment is read on the decode side (cat) and piped into lm-apply on the
# apply side, in LSN order; the origin makes a repeated segment harmless.
# Segments at or below the applied position are pruned on the decode side.
ship_loop() {
    load_config
    trap 'exit 0' TERM INT
    local list seg e pos payload
    while :; do
        payload=$(cat "$W/cutover.id" 2>/dev/null)
        if [ -n "$payload" ] && [ "$(tgt "SELECT count(*) FROM lm.marker WHERE origin = $(lit "$SLOT") AND payload = $(lit "$payload")" 2>/dev/null)" = 1 ]; then
            info "cutover marker applied: shipping ends"
            exit 0
        fi
        if [ -n "$DECODE_HOST" ]; then
            list=$(ssh_run "$DECODE_HOST" "cd $(shq "$SPOOL") 2>/dev/null && ls seg-*-*.lmz 2>/dev/null" </dev/null) || { sleep 2; continue; }
        else
            list=$(cd "$SPOOL" 2>/dev/null && ls seg-*-*.lmz 2>/dev/null)
        fi
        pos=$(origin_position)
        local prune=() todo=()
        for seg in $list; do
            e=${seg%.lmz}; e=${e##*-}
            if [ -n "$pos" ] && [ "$(lsn_ge_hex "$pos" "$e")" = 1 ]; then
                prune+=("$seg")
            else
                todo+=("$seg")
            fi
        done
        # every pending segment in one pass (concatenated segments are one
        # stream): a connection per segment could not keep up with a busy
        # source rotating a segment a second
        if [ ${#todo[@]} -gt 0 ]; then
            apply_segments "${todo[@]}" || { error "applying ${todo[0]}${todo[1]:+ ... ${todo[-1]}} failed"; exit "$EX_FAILURE"; }
            pos=$(origin_position)
            for seg in "${todo[@]}"; do
                e=${seg%.lmz}; e=${e##*-}
                [ -n "$pos" ] && [ "$(lsn_ge_hex "$pos" "$e")" = 1 ] && prune+=("$seg")
            done
        fi
        [ ${#prune[@]} -gt 0 ] && prune_segments "${prune[@]}"
        sleep 1
    done
}

prune_segments() {
    if [ -n "$DECODE_HOST" ]; then
        ssh_run "$DECODE_HOST" "cd $(shq "$SPOOL") && rm -f $(shq "$@")" </dev/null
    else
        (cd "$SPOOL" && rm -f "$@")
    fi
}

apply_segments() {   # apply_segments SEG...: in LSN order, as one stream
    local reader applier paths=() seg
    local apply=(lm-apply --target "$TARGET" --origin "$SLOT" --changes-only --ack /dev/stdout)
    for seg in "$@"; do paths+=("$SPOOL/$seg"); done
    if [ -n "$DECODE_HOST" ]; then
        reader=("$SSH" "${SSH_OPTS[@]}" "$DECODE_HOST" "cat $(shq "${paths[@]}")")
    else
        reader=(cat "${paths[@]}")
    fi
    if [ -n "$APPLY_HOST" ]; then
        applier=("$SSH" "${SSH_OPTS[@]}" "$APPLY_HOST" "$(shq "${apply[@]}")")
    else
        applier=("${apply[@]}")
    fi
    "${reader[@]}" </dev/null | "${applier[@]}" >>"$W/apply.ack"
}

# _ship: the apply stage of a migration with --decode-host or --apply-host
cmd_ship() {
    LM_LOG_TIME=1 ship_loop
    return "$EX_OK"
}
