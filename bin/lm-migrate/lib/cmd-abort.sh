# shellcheck shell=bash disable=SC2034  # its variables are read in the other files
# lm-migrate: the commands abort and clean.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "cmd-abort.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

abort_cmd() {
    if [ ! -f "$W/config" ]; then
        info "nothing to abort in $W"
        return 0
    fi
    load_config
    if stage_alive migrate && [ "$(stage_pid migrate)" != "$$" ]; then
        local pid
        pid=$(stage_pid migrate)
        kill -TERM "$pid" 2>/dev/null
        sleep 1
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$W/pids/migrate"
    stop_all_stages
    local rc=0
    # a fence a failed or killed cutover left is lifted; after a completed
    # cutover the old source stays read-only (the application writes to the
    # target now): lifting it is the operator's call
    if [ -f "$W/fenced" ] && [ "$(phase)" != "done" ]; then
        FENCED=1
        unfence || rc=$EX_CONNECT
    elif [ -f "$W/fenced" ]; then
        info "the source stays fenced (read-only) after the cutover; undo with: ALTER DATABASE ... RESET default_transaction_read_only"
    fi
    if [ ! -f "$W/slot.ours" ]; then
        # stopped before its slot: what has that name on the servers is not ours
        info "nothing was made on the servers (the migration stopped before its slot)"
    elif src "SELECT 1" >/dev/null 2>&1; then
        drop_slot_and_publication || { error "could not drop slot or publication $SLOT on the source"; rc=$EX_SERVER; }
    else
        error "cannot reach the source: the slot $SLOT may still exist there (it retains WAL)"; rc=$EX_CONNECT
    fi
    if [ ! -f "$W/slot.ours" ]; then
        :
    elif tgt "SELECT 1" >/dev/null 2>&1; then
        tgt "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = $(lit "$SLOT")" >/dev/null ||
            { error "could not drop the replication origin $SLOT on the target"; rc=$EX_SERVER; }
        tgt "DROP SCHEMA IF EXISTS lm CASCADE" >/dev/null 2>&1 ||
            { error "could not drop schema lm on the target"; rc=$EX_SERVER; }
    else
        error "cannot reach the target: its replication origin $SLOT and schema lm remain"; rc=$EX_CONNECT
    fi
    if [ -n "$DECODE_HOST" ]; then
        ssh_run "$DECODE_HOST" "rm -rf $(shq "$REMOTE_DIR")" </dev/null || warn "could not remove $REMOTE_DIR on $DECODE_HOST"
    fi
    [ -n "$APPLY_HOST" ] && ssh_run "$APPLY_HOST" "rm -rf $(shq "$REMOTE_DIR")" </dev/null
    rm -rf "$W/spool" "$W/snapshot" "$W/hold.fifo"
    [ "$rc" -eq 0 ] && set_phase aborted
    return "$rc"
}

clean_cmd() {
    local rc=0
    if [ -d "$W" ] && [ ! -f "$W/config" ] && [ -n "$(ls -A "$W")" ]; then
        # rm -rf of a directory lm-migrate did not make: never
        die "$EX_USAGE" "$W is not an lm-migrate work directory (no config in it): nothing removed"
    fi
    abort_cmd || rc=$?
    if [ $rc -eq 0 ] && [ -d "$W" ]; then
        rm -rf "$W"
        info "removed $W"
    fi
    return $rc
}

cmd_abort() {
    [ -f "$W/config" ] && { require_private_workdir; lock_workdir "$CMD"; }
    abort_cmd
}

cmd_clean() {
    [ -f "$W/config" ] && { require_private_workdir; lock_workdir "$CMD"; }
    clean_cmd
}
