# shellcheck shell=bash
# lm-migrate: the stages (lm-slot, lm-snapshot, lm-decode,
# lm-apply) as processes: started, watched, stopped, their failures recorded.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "stages.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

proc_start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# Alive and not a zombie (an orphan's zombie lingers where nothing reaps it).
proc_alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
    [ "$st" != Z ] && [ "$st" != X ]
}

# Close every descriptor above 2: a stage must not inherit the snapshot FIFO
# (or it would never be released) nor a caller's pipes (bats, ssh), nor the
# work directory's lock.  close_fds [KEEP]: all but descriptor KEEP.
# shellcheck disable=SC2120  # start --detach passes one
close_fds() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd=${fd##*/}
        [ "$fd" = "${1:-}" ] && continue
        [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
    done
    return 0
}

# spawn STAGE command...: runs command in a session of its own (so a stop
# reaches its children), stdin from $SPAWN_IN or /dev/null, stdout to
# $SPAWN_OUT or the log, stderr to logs/STAGE.log.
spawn() {
    local stage=$1; shift
    local in=${SPAWN_IN:-/dev/null} out=${SPAWN_OUT:-$W/logs/$stage.log}
    printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PROG" "starting $stage: $1" >>"$W/logs/$stage.log"
    (
        close_fds
        exec setsid "$@" <"$in" >>"$out" 2>>"$W/logs/$stage.log"
    ) &
    local pid=$!
    echo "$pid $(proc_start_time "$pid")" >"$W/pids/$stage"
    LAST_PID=$pid
}

stage_pid() { [ -f "$W/pids/$1" ] && awk '{print $1}' "$W/pids/$1"; }

# Whether a stage recorded in pids/ still runs (the start time guards against
# a reused pid).
stage_alive() {
    local pid st
    [ -f "$W/pids/$1" ] || return 1
    read -r pid st _ <"$W/pids/$1" || return 1
    # without its start time a pid may name anybody's process by now
    [[ $pid =~ ^[1-9][0-9]*$ ]] && [[ $st =~ ^[0-9]+$ ]] || return 1
    proc_alive "$pid" && [ "$(proc_start_time "$pid")" = "$st" ]
}

# stop_stage STAGE [SECONDS]: SIGTERM to its process group, SIGKILL after.
stop_stage() {
    local stage=$1 secs=${2:-20} pid i
    if stage_alive "$stage"; then
        pid=$(stage_pid "$stage")
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < secs * 5; i++)); do
            stage_alive "$stage" || break
            sleep 0.2
        done
        if stage_alive "$stage"; then
            warn "$stage (pid $pid) did not stop in ${secs}s: killing it"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
            sleep 0.2
        fi
    elif [ -f "$W/pids/$stage" ]; then
        local p st
        read -r p st _ <"$W/pids/$stage"
        [[ $p =~ ^[1-9][0-9]*$ ]] && proc_alive "$p" &&
            warn "pids/$stage names process $p $([ -n "$st" ] && echo "with another start time than its own ($st)" || echo "without its start time"): not a stage of this migration, left alone"
    fi
    # a stage on another host: stop it there (its local ssh client is gone)
    if [ -f "$W/pids/$stage.remote" ]; then
        local host rdir
        read -r host rdir <"$W/pids/$stage.remote"
        ssh_run "$host" "p=\$(cat $(shq "$rdir/$stage.pid") 2>/dev/null) && kill -TERM \"\$p\" 2>/dev/null; for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 \"\$p\" 2>/dev/null || exit 0; sleep 1; done; kill -KILL \"\$p\" 2>/dev/null; true" </dev/null || true
        rm -f "$W/pids/$stage.remote"
    fi
    rm -f "$W/pids/$stage"
}

stop_all_stages() {
    local s
    for s in apply snapshot decode slot history; do stop_stage "$s" 20; done
}

# Wait for a spawned child; its exit status.
wait_child() { local rc=0; wait "$1" 2>/dev/null || rc=$?; return $rc; }

# The last lines of a stage's log, on standard error; their control
# characters escaped (a stage logs names as they are, ESC too).
stage_log_tail() {
    local line
    [ -f "$W/logs/$1.log" ] && tail -n "${2:-5}" "$W/logs/$1.log" |
        while IFS= read -r line; do printf '    %s: %s\n' "$1" "$(printable "$line")"; done >&2
}

# WORKDIR/failed: the step at which stage STAGE (slot, snapshot, decode,
# apply) failed with status RC, its last error lines and what to do.
record_failure() {   # record_failure STEP STAGE RC HINT
    local step=$1 stage=$2 rc=$3 lines
    lines=$(tail -n 60 "$W/logs/$stage.log" 2>/dev/null | grep -E ': (error|fatal|detail|hint|FATAL|ERROR|DETAIL|HINT)' | tail -n 8)
    [ -n "$lines" ] || lines=$(tail -n 5 "$W/logs/$stage.log" 2>/dev/null)
    jq -n --arg step "$step" --arg stage "lm-$stage" --arg rc "$rc" --arg how "$(exit_words "$rc")" \
        --arg lines "$lines" --arg hint "$4" --arg log "$W/logs/$stage.log" --arg time "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        '{ step: $step, stage: $stage, exit_code: ($rc | tonumber), how: $how, time: $time, log: $log,
           errors: ($lines | split("\n") | map(select(length > 0))), hint: $hint }' >"$W/failed.tmp" &&
        mv -f "$W/failed.tmp" "$W/failed"
    FAIL_HINT=$4
}

# Whether STAGE (started by this process) has ended: sets STAGE_RC to its
# exit status (1 when it was started by an earlier run: not ours to wait for).
stage_ended() {   # stage_ended STAGE
    local pid rc=0
    [ -f "$W/pids/$1" ] || return 1
    stage_alive "$1" && return 1
    pid=$(stage_pid "$1")
    wait_child "$pid" || rc=$?
    [ "$rc" -eq 127 ] && rc=$EX_FAILURE
    STAGE_RC=$rc
    return 0
}

# A stage running beside the one the orchestrator waits for (decode during
# the copy, decode and apply while catching up) ended: the step fails.
stage_died() {   # stage_died STEP STAGE RC
    error "lm-$2 $(exit_words "$3") during the $1 step; its log: $W/logs/$2.log"
    stage_log_tail "$2" 10
    rm -f "$W/pids/$2"
    record_failure "$1" "$2" "$3" "After fixing the cause, run: $PROG start --resume --workdir $W"
}

exit_stage_failed() {   # exit_stage_failed RC
    local rc=$1
    [ "$rc" -gt 1 ] && [ "$rc" -le 11 ] || rc=$EX_FAILURE
    hint "${FAIL_HINT:-After fixing the cause, run: $PROG start --resume --workdir $W}"
    rm -f "$W/pids/migrate"
    exit "$rc"
}

start_decode() {
    stage_alive decode && return 0
    # one this run started has ended: that is a failure, not a restart
    if [ -n "${DECODE_OURS:-}" ] && stage_ended decode; then
        stage_died "$(phase)" decode "$STAGE_RC"
        [ -n "${HOLD_FD:-}" ] && release_snapshot
        exit_stage_failed "$STAGE_RC"
    fi
    stop_stage decode 10    # leftovers, also on the decode host
    ensure_marker_key
    local cmd=(lm-decode --source "$SOURCE" --slot "$SLOT" --publication "$SLOT" --spool "$SPOOL")
    # segments cross ssh only when finished: rotate them often
    if uses_ssh; then
        cmd+=(--segment-time "${LM_SEGMENT_TIME:-5}")
    fi
    if [ -n "$DECODE_HOST" ]; then
        # the token travels on ssh's stdin into a 0600 file there
        ssh_run "$DECODE_HOST" "umask 077 && mkdir -p $(shq "$REMOTE_DIR") && cat >$(shq "$REMOTE_DIR/marker.key")" <"$W/marker.key" ||
            die "$EX_CONNECT" "cannot copy the marker token to $DECODE_HOST"
        cmd+=(--marker-token-file "$REMOTE_DIR/marker.key")
        remote_cmd decode "$DECODE_HOST" "mkdir -p $(shq "$SPOOL")" "${cmd[@]}"
        spawn decode "${REMOTE[@]}"
    else
        mkdir -p "$SPOOL"
        cmd+=(--marker-token-file "$W/marker.key")
        spawn decode "${cmd[@]}"
    fi
    DECODE_OURS=1
    info "decode started (pid $LAST_PID): changes go to the spool $SPOOL${DECODE_HOST:+ on $DECODE_HOST}"
}

start_apply() {
    stage_alive apply && return 0
    if uses_ssh; then
        # segments travel through ssh: see ship_loop
        spawn apply "$SELF" _ship --workdir "$W"
    else
        spawn apply lm-apply --target "$TARGET" --origin "$SLOT" --spool "$SPOOL" --follow --prune --ack "$W/apply.ack"
    fi
    info "apply started (pid $LAST_PID)"
}

release_snapshot() {
    if [ -n "${HOLD_FD:-}" ]; then
        exec {HOLD_FD}>&-
        HOLD_FD=
    fi
    local i
    for ((i = 0; i < 150; i++)); do stage_alive slot || break; sleep 0.2; done
    stage_alive slot && stop_stage slot 5
    rm -f "$W/pids/slot" "$W/hold.fifo"
}
