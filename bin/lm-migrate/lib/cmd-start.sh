# shellcheck shell=bash disable=SC2034  # its variables are read in the other files
# lm-migrate: the commands start and _detached (the
# background half of start --detach).
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "cmd-start.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

preflight_target() {
    local out rc
    out=$(tgt "SELECT 1" 2>&1); rc=$?
    if [ $rc -ne 0 ]; then
        error "cannot connect to the target: $out"
        hint "Check the connection string; passwords belong in ~/.pgpass."
        exit "$EX_CONNECT"
    fi
    out=$(src "SELECT 1" 2>&1); rc=$?
    if [ $rc -ne 0 ]; then
        error "cannot connect to the source: $out"
        hint "Check the connection string; passwords belong in ~/.pgpass."
        exit "$EX_CONNECT"
    fi
    local problems=0
    local sysid_s sysid_t db_s db_t
    sysid_s=$(src "SELECT system_identifier FROM pg_control_system()" 2>/dev/null)
    sysid_t=$(tgt "SELECT system_identifier FROM pg_control_system()" 2>/dev/null)
    db_s=$(src "SELECT current_database()")
    db_t=$(tgt "SELECT current_database()")
    if [ -n "$sysid_s" ] && [ "$sysid_s" = "$sysid_t" ] && [ "$db_s" = "$db_t" ]; then
        error "source and target are the same database ($(printable "$db_s") on system $sysid_s)"
        problems=$((problems + 1))
    fi
    local seqs
    seqs=$(unreadable_sequences 2>/dev/null)
    if [ -n "$seqs" ]; then
        error "the source role cannot read these sequences, which cutover sets on the target: $(printable "$seqs")"
        hint "GRANT SELECT ON SEQUENCE ... to the role of the source connection."
        problems=$((problems + 1))
    fi
    # a TimescaleDB source: lm-slot publishes its chunk schemas whole
    # (TABLES IN SCHEMA, so that a chunk made after the slot is captured),
    # which PostgreSQL 15 allows a superuser only.  With table filters
    # lm-slot decides (the hypertables may all be left out).
    local tsdb_user
    if [ -z "$RESUME" ] && [ ${#FILTERS[@]} -eq 0 ] &&
        [ "$(src "SELECT count(*) FROM pg_extension e, pg_roles r WHERE e.extname = 'timescaledb' AND r.rolname = current_user AND NOT r.rolsuper" 2>/dev/null)" = 1 ] &&
        [ "$(src "SELECT count(*) > 0 FROM _timescaledb_catalog.hypertable" 2>/dev/null)" = t ]; then
        tsdb_user=$(src "SELECT current_user")
        error "the source role $(printable "$tsdb_user") is not a superuser: a TimescaleDB source's hypertables are migrated through a publication of its chunk schemas (TABLES IN SCHEMA), which needs a superuser on PostgreSQL 15"
        hint "Connect to the source as a superuser (see lm-migrate(1), TIMESCALEDB)."
        problems=$((problems + 1))
    fi
    if [ -z "$RESUME" ] && [ "$TARGET_SCHEMA" = existing ]; then
        # the DBA's tables: each must take the source's rows (lm-snapshot
        # checks them as its copy will use them)
        local out
        if ! out=$(lm-snapshot --source "$SOURCE" --target "$TARGET" --target-schema existing --check-target "${FILTERS[@]}" 2>&1); then
            printf '%s\n' "$out" >&2
            error "the target's tables do not fit the source's (--target-schema=existing)"
            problems=$((problems + 1))
        fi
    elif [ -z "$RESUME" ]; then
        local tables
        tables=$(tgt "SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY 1) FROM (
                        SELECT c.* FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lm')
                          AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE '\\_timescaledb%'
                          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
                        LIMIT 5) c JOIN pg_namespace n ON n.oid = c.relnamespace")
        if [ -n "$tables" ]; then
            error "the target database is not empty: it has user tables ($(printable "$tables")...)"
            hint "Migrate into an empty database, or drop those tables; --resume continues a migration; --target-schema=existing uses tables made on purpose."
            problems=$((problems + 1))
        fi
    fi
    local priv
    priv=$(tgt "SELECT r.rolsuper,
                   has_function_privilege('pg_replication_origin_create(text)', 'EXECUTE')
                   AND has_function_privilege('pg_replication_origin_session_setup(text)', 'EXECUTE')
                   AND has_function_privilege('pg_replication_origin_xact_setup(pg_lsn, timestamp with time zone)', 'EXECUTE')
                   AND has_function_privilege('pg_replication_origin_progress(text, boolean)', 'EXECUTE')
                   AND has_function_privilege('pg_replication_origin_drop(text)', 'EXECUTE'),
                   current_setting('server_version_num')::int,
                   current_user
                FROM pg_roles r WHERE r.rolname = current_user")
    local super origin_ok vnum user
    IFS='|' read -r super origin_ok vnum user <<<"$priv"
    if [ "$super" != t ]; then
        if [ "$origin_ok" != t ]; then
            error "the target role $user may not use replication origins"
            hint "As a superuser on the target: GRANT EXECUTE ON FUNCTION pg_replication_origin_create(text), pg_replication_origin_session_setup(text), pg_replication_origin_xact_setup(pg_lsn, timestamptz), pg_replication_origin_progress(text, boolean), pg_replication_origin_drop(text) TO $user;"
            problems=$((problems + 1))
        fi
        local srr=f
        if [ "${vnum:-0}" -ge 150000 ]; then
            srr=$(tgt "SELECT has_parameter_privilege('session_replication_role', 'SET')")
        fi
        if [ "$srr" != t ]; then
            error "the target role $user may not set session_replication_role"
            if [ "${vnum:-0}" -ge 150000 ]; then
                hint "As a superuser on the target: GRANT SET ON PARAMETER session_replication_role TO $user;"
            else
                hint "Before PostgreSQL 15 only a superuser may set it: apply as a superuser."
            fi
            problems=$((problems + 1))
        fi
    fi
    # the spool: it holds the changes made during the copy
    if [ -z "$DECODE_HOST" ]; then
        local free need dbsize
        mkdir -p "$W/spool"
        free=$(df -Pk "$W/spool" | awk 'NR == 2 { printf "%.0f", $4 * 1024 }')
        dbsize=$(src "SELECT pg_database_size(current_database())")
        need=${LM_SPOOL_MIN_FREE:-$((256 * 1024 * 1024))}
        if [ -n "$free" ] && [ "$free" -lt "$need" ]; then
            error "only $(human_bytes "$free") free for the spool in $W/spool (need at least $(human_bytes "$need"))"
            hint "Use a --workdir on a larger file system, or set LM_SPOOL_MIN_FREE (bytes)."
            problems=$((problems + 1))
        elif [ -n "$free" ] && [ -n "$dbsize" ] && [ "$free" -lt $((dbsize / 10)) ]; then
            warn "$(human_bytes "$free") free for the spool, less than a tenth of the source database ($(human_bytes "$dbsize")): a long copy under heavy writes may fill it"
        fi
    fi
    local p
    for p in lm-slot lm-snapshot; do need_prog "$p"; done
    if [ -n "$DECODE_HOST" ]; then
        check_remote_prog "$DECODE_HOST" lm-decode || problems=$((problems + 1))
    else
        need_prog lm-decode
    fi
    if [ -n "$APPLY_HOST" ]; then
        check_remote_prog "$APPLY_HOST" lm-apply || problems=$((problems + 1))
    else
        need_prog lm-apply
    fi
    if [ "$problems" -gt 0 ]; then
        die "$EX_PREFLIGHT" "preflight found $problems problem(s); nothing was changed"
    fi
}

# Snapshot-holding lm-slot: its stdin is a FIFO whose only writer is this
# process (descriptor HOLD_FD); closing it releases the snapshot.  Its
# result is acted on only once lm-slot runs and slot.json (written to a
# temporary file and renamed) reads as a valid result; lm-slot's exit, or
# no result in LM_SLOT_TIMEOUT seconds, stops the migration at this step.
create_slot() {
    rm -f "$W/hold.fifo" "$W/slot.json" "$W/slot.json.tmp"
    mkfifo "$W/hold.fifo" || die "$EX_IO" "cannot create $W/hold.fifo"
    local a=(lm-slot create --source "$SOURCE" --slot "$SLOT" --publication "$SLOT" --hold --json --output "$W/slot.json" "${FILTERS[@]}")
    [ -n "$RIF" ] && a+=(--replica-identity-full)
    SPAWN_IN=$W/hold.fifo spawn slot "${a[@]}"
    local pid=$LAST_PID t0
    t0=$(epoch)
    # read-write: never blocks, and we are the only writer
    exec {HOLD_FD}<>"$W/hold.fifo"
    while :; do
        if ! proc_alive "$pid"; then
            local rc=0
            wait_child "$pid" || rc=$?
            slot_failed "$rc" "lm-slot create $(exit_words "$rc")"
        fi
        if [ -e "$W/slot.json" ]; then
            slot_json_ok && break
            stop_stage slot 10
            slot_failed "$EX_FAILURE" "lm-slot wrote a result that is not valid (no snapshot name or consistent point of the right form): it is not used"
        fi
        if [ $(($(epoch) - t0)) -ge "$SLOT_TIMEOUT" ]; then
            stop_stage slot 10
            slot_failed "$EX_TIMEOUT" "lm-slot created no slot in ${SLOT_TIMEOUT}s (LM_SLOT_TIMEOUT): a long transaction on the source?"
        fi
        sleep 0.2
    done
    read_slot_json || die "$EX_FAILURE" "cannot read $W/slot.json"
    info "slot $SLOT created at $CP, snapshot $SNAPSHOT held"
    write_table_lists
}

# What the publication covers and what it leaves out, as of now (each list
# written whole, then renamed: a kill leaves none or all of it).
write_table_lists() {
    local l f
    for l in published:tables unpublished:unpublished; do
        f=$W/${l#*:}.list
        if ! "${l%%:*}_tables" >"$f.tmp" || ! mv "$f.tmp" "$f"; then
            die "$EX_FAILURE" "cannot list the ${l%%:*} tables of the source into $f"
        fi
    done
}

# The failure of lm-slot create: nothing it may have begun is used (its
# replication session, still waiting to create the slot, is ended; abort or
# --resume drops the publication); the step is recorded; exit.
slot_failed() {   # slot_failed RC MESSAGE
    local rc=$1
    if [ -n "${HOLD_FD:-}" ]; then exec {HOLD_FD}>&-; HOLD_FD=; fi
    src "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $(lit "lm-slot hold $SLOT")" >/dev/null 2>&1
    rm -f "$W/pids/slot" "$W/slot.json" "$W/slot.json.tmp" "$W/hold.fifo"
    error "$2"
    stage_log_tail slot 20
    [ "$rc" -eq "$EX_PREFLIGHT" ] && hint "Fix what lm-slot reports on the source, then run start --resume (or abort)."
    record_failure slot slot "$rc" "Fix the cause lm-slot reports, then run: $PROG start --resume --workdir $W (it drops what this attempt left and creates the slot again), or $PROG abort --workdir $W"
    rm -f "$W/pids/migrate"
    [ "$rc" -gt 1 ] && [ "$rc" -le 11 ] || rc=$EX_FAILURE
    exit "$rc"
}

snapshot_args() {
    SNAP_ARGS=(--source "$SOURCE" --target "$TARGET" --snapshot "$SNAPSHOT" --workdir "$W/snapshot")
    local h
    for h in "${HYPERTABLES[@]}"; do SNAP_ARGS+=(--hypertable "$h"); done
    [ "$TARGET_SCHEMA" = existing ] && SNAP_ARGS+=(--target-schema existing)
    [ -n "${SKIP_DB_SETTINGS:-}" ] && SNAP_ARGS+=(--skip-db-settings)
    return 0
}

# Runs a stage to its end, showing progress; returns its exit status.
run_stage() {   # run_stage STAGE WHAT command...
    local stage=$1 what=$2; shift 2
    spawn "$stage" "$@"
    local pid=$LAST_PID last=0 rc=0
    while proc_alive "$pid"; do
        if [ "$stage" = snapshot ] && stage_ended decode; then
            # the capture ended: what is copied now could not be followed
            stop_stage snapshot 30
            wait_child "$pid"
            stage_died "$what" decode "$STAGE_RC"
            return "$STAGE_RC"
        fi
        if [ -z "$QUIET" ] && [ $(($(epoch) - last)) -ge "$PROGRESS_INTERVAL" ]; then
            [ "$last" -ne 0 ] && progress_line "$what"
            last=$(epoch)
        fi
        sleep 0.5
    done
    wait_child "$pid" || rc=$?
    rm -f "$W/pids/$stage"
    if [ $rc -ne 0 ]; then
        error "$1 ($what) failed (exit $rc); its log: $W/logs/$stage.log"
        stage_log_tail "$stage" 10
        record_failure "$what" "$stage" "$rc" "The capture (lm-decode) keeps running. After fixing the cause, run: $PROG start --resume --workdir $W"
    fi
    return $rc
}

progress_line() {
    local what=$1
    case $what in
        copy)
            local total ndone rows bytes
            total='?'
            [ -f "$W/tables.list" ] && read_names "$W/tables.list" && total=${#NAMES[@]}
            read -r ndone rows bytes <<<"$(copy_counts)"
            info "copy: ${ndone:-0}/$total tables, ${rows:-0} rows, $(human_bytes "${bytes:-0}") copied; spool $(human_bytes "$(spool_bytes)")$(stage_alive decode || echo '; DECODE IS NOT RUNNING')"
            ;;
        postdata) info "post-data: building indexes and constraints; spool $(human_bytes "$(spool_bytes)")" ;;
        *) info "$what: running" ;;
    esac
}

start_cmd() {
    if [ -n "$RESUME" ] || [ -n "$DETACHED" ]; then
        load_config
        local i
        # one just killed may take a moment to go (a detached run finds
        # its own pid there: nothing to wait for)
        for ((i = 0; i < 10; i++)); do
            if ! stage_alive migrate || [ "$(stage_pid migrate)" = "$$" ]; then break; fi
            sleep 0.2
        done
        if [ -f "$W/pids/migrate" ] && stage_alive migrate && [ "$(stage_pid migrate)" != "$$" ] && [ -z "$DETACHED" ]; then
            die "$EX_FAILURE" "another lm-migrate (pid $(stage_pid migrate)) runs this migration"
        fi
    else
        [ -n "$SOURCE" ] || usage_error "start needs --source"
        [ -n "$TARGET" ] || usage_error "start needs --target"
        if [ -z "$DETACHED" ] && [ -f "$W/phase" ]; then
            case $(phase) in
                aborted | preflight) ;;   # nothing was made on the servers
                *) die "$EX_USAGE" "$W already holds a migration (phase $(phase)): use start --resume, or lm-migrate clean first" ;;
            esac
        fi
        [ -n "$SLOT" ] || SLOT="lm_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
        [[ $SLOT =~ ^[a-z0-9_]{1,63}$ ]] || usage_error "invalid slot name \"$SLOT\": only lower case letters, digits and underscores are allowed"
        local h
        for h in "$DECODE_HOST" "$APPLY_HOST"; do
            [ -z "$h" ] || valid_host "$h" || usage_error "invalid host \"$h\": letters, digits and . _ @ : % [ ] -, not starting with -"
        done
        REMOTE_DIR=${REMOTE_DIR:-lm-$SLOT}
        STARTED=$(epoch)
        SPOOL=$(spool_path)
    fi
    mkdir -p "$W/pids" "$W/logs" "$W/snapshot" || die "$EX_IO" "cannot create $W"
    if [ -z "$DETACHED" ] && [ -z "$RESUME" ]; then
        rm -f "$W/phase" "$W/cutover.id" "$W/slot.ours" "$W/slot.json" "$W/status.samples" "$W/schema.done" "$W/apply.ack" "$W/marker.key" \
            "$W/history.jsonl" "$W/history.samples"
        save_config
        ensure_marker_key
        set_phase preflight
    fi
    if [ -z "$DETACHED" ]; then
        preflight_target
        if [ -z "$RESUME" ]; then
            # a slot or publication of that name is somebody else's: this
            # migration must never take it over, nor drop it on abort
            local taken
            taken=$(src "SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $(lit "$SLOT"))
                              + (SELECT count(*) FROM pg_publication WHERE pubname = $(lit "$SLOT"))" 2>/dev/null)
            [ "${taken:-0}" = 0 ] ||
                die "$EX_PREFLIGHT" "a replication slot or publication named $SLOT already exists on the source: choose another --slot (it is left alone)"
        fi
        if [ -n "$DETACH" ]; then
            # the lock goes with it (the same open file)
            ( close_fds "$LOCK_FD"; _LM_LOCK_FD=$LOCK_FD exec setsid "$SELF" _detached --workdir "$W" </dev/null >>"$W/logs/migrate.log" 2>&1 ) &
            echo "$! $(proc_start_time $!)" >"$W/pids/migrate"
            info "running in the background (pid $!); log: $W/logs/migrate.log"
            info "follow it with: $PROG status --workdir $W"
            exit 0
        fi
    fi
    echo "$$ $(proc_start_time $$)" >"$W/pids/migrate"
    run_phases
}

run_phases() {
    local ph
    ph=$(phase)
    ENTRY_PHASE=$ph
    rm -f "$W/failed"
    case $ph in
        done) info "the migration is complete (cutover done)"; exit 0 ;;
        aborted) die "$EX_USAGE" "the migration was aborted: run lm-migrate clean, then start again" ;;
        cutover) die "$EX_USAGE" "a cutover was started: run lm-migrate cutover again to finish it" ;;
    esac
    # the history: sampled while the migration runs, whatever it does
    start_history

    # slot: create it with a held snapshot, unless an earlier run did
    local snapshot_dead=
    if [ "$ph" = preflight ] || [ "$ph" = none ] || [ "$ph" = slot ]; then
        if [ "$ph" = slot ]; then
            if slot_json_ok && slot_exists; then
                snapshot_dead=1
            else
                info "the slot was not created completely: dropping what there is and creating it again"
                stop_stage slot 5
                drop_slot_and_publication
            fi
        fi
        if [ -z "$snapshot_dead" ]; then
            # from here on, a slot, publication and origin of this name are
            # this migration's (the preflight found none): abort drops them
            : >"$W/slot.ours"
            set_phase slot
            create_slot
        fi
        # capture at once: the source keeps no WAL for us during the copy
        start_decode
        set_phase copy
        ph=copy
    fi
    read_slot_json || die "$EX_FAILURE" "$W/slot.json holds no valid slot result: run $PROG abort, then start again"
    # a start killed between the slot's result and the table lists
    if [ ! -f "$W/tables.list" ] || [ ! -f "$W/unpublished.list" ]; then write_table_lists; fi
    snapshot_args

    if [ "$ph" = copy ]; then
        start_decode
        local resume_arg=() rc=0
        if [ -z "${HOLD_FD:-}" ]; then
            # not our snapshot: a resumed copy (lm-snapshot takes a fresh
            # snapshot for unfinished tables); a copy left running by a
            # killed orchestrator is started again
            resume_arg=(--resume)
            stop_stage snapshot 30
            stop_stage slot 5
        fi
        # the schema (dumped under the snapshot, pre-data restored), then the
        # data; indexes and constraints come after the snapshot is released
        if [ ! -f "$W/schema.done" ]; then
            run_stage snapshot schema lm-snapshot "${SNAP_ARGS[@]}" --jobs "$JOBS" --schema-only "${FILTERS[@]}" "${resume_arg[@]}" || rc=$?
            [ $rc -eq 0 ] && touch "$W/schema.done"
        fi
        [ $rc -eq 0 ] &&
            { run_stage snapshot copy lm-snapshot "${SNAP_ARGS[@]}" --jobs "$JOBS" --data-only --sync-lsn "$CP" "${FILTERS[@]}" "${resume_arg[@]}" || rc=$?; }
        if [ $rc -ne 0 ]; then
            release_snapshot
            exit_stage_failed $rc
        fi
        release_snapshot
        info "data copied; snapshot released"
        set_phase postdata
        ph=postdata
    fi

    if [ "$ph" = postdata ]; then
        start_decode
        local resume_arg=() rc=0
        [ "$ENTRY_PHASE" = postdata ] && resume_arg=(--resume)
        stop_stage snapshot 30
        run_stage snapshot postdata lm-snapshot "${SNAP_ARGS[@]}" --jobs "$JOBS" --post-data "${FILTERS[@]}" "${resume_arg[@]}" || rc=$?
        [ $rc -eq 0 ] || exit_stage_failed $rc
        set_phase streaming
        ph=streaming
    fi

    if [ "$ph" = streaming ]; then
        start_decode
        start_apply
        if [ -n "$NO_WAIT" ]; then
            info "apply runs; see $PROG status"
            rm -f "$W/pids/migrate"
            exit 0
        fi
        wait_caught_up
        rm -f "$W/pids/migrate"
        info "the target has caught up; changes keep flowing. Run \"$PROG cutover --workdir $W\" when ready."
        exit 0
    fi
    die "$EX_FAILURE" "unknown phase \"$ph\" in $W/phase"
}

wait_caught_up() {
    local last=0
    while :; do
        local s
        for s in apply decode; do
            if stage_ended "$s"; then
                stage_died streaming "$s" "$STAGE_RC"
                exit_stage_failed "$STAGE_RC"
            fi
        done
        gather_status
        if [ ${#ST_ATTENTION[@]} -gt 0 ]; then
            local a
            for a in "${ST_ATTENTION[@]}"; do warn "$(printable "$a")"; done
            if ! stage_alive decode || ! stage_alive apply; then
                rm -f "$W/pids/migrate"
                die "$EX_FAILURE" "a stage stopped while catching up"
            fi
        fi
        [ "$ST_CAUGHT_UP" = true ] && return 0
        if [ -z "$QUIET" ] && [ $(($(epoch) - last)) -ge "$PROGRESS_INTERVAL" ]; then
            info "apply: lag $(human_bytes "${ST_LAG_BYTES:-0}") ($(human_secs "$ST_LAG_SECONDS")), ${ST_APPLY_RATE:+$(human_bytes "$ST_APPLY_RATE")/s, }spool $(human_bytes "${ST_SPOOL:-0}")${ST_ETA:+, eta $(human_secs "$ST_ETA")}"
            last=$(epoch)
        fi
        sleep 1
    done
}

# start: the preflight, then the phases in this process (or, with --detach,
# in a background one that holds the lock)
cmd_start() {
    mkdir -p "$W" || die "$EX_IO" "cannot create $W"
    require_private_workdir
    lock_workdir "start${RESUME:+ --resume}${DETACH:+ --detach}"
    local p
    for p in jq psql setsid; do need_prog "$p"; done
    [[ $SLOT_TIMEOUT =~ ^[1-9][0-9]{0,8}$ ]] || usage_error "LM_SLOT_TIMEOUT must be a positive number of seconds"
    history_interval >/dev/null
    start_cmd
    return "$EX_OK"
}

# _detached: the background process of start --detach (the lock handed over)
cmd_detached() {
    lock_workdir "start --detach"
    DETACHED=1 LM_LOG_TIME=1
    start_cmd
    return "$EX_OK"
}
