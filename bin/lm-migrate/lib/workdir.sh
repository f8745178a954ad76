# shellcheck shell=bash disable=SC2034  # its variables are read in the other files
# lm-migrate: the work directory: where it is, its owner, the
# phase, the lock, the marker token and the slot result.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "workdir.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

set_workdir() {
    W=${WORKDIR:-${LM_WORKDIR:-./lm-migrate.d}}
    case $W in /*) ;; *) W="$PWD/$W" ;; esac
}

# Everything in the work directory is trusted (the config, pid files, the
# spool, the marker token): it must be this user's alone, as lm-snapshot,
# lm-decode and lm-apply require of theirs.
require_private_workdir() {
    local uid mode type
    read -r uid mode type < <(stat -c '%u %a %F' -- "$W" 2>/dev/null) ||
        die "$EX_IO" "cannot stat the work directory $W"
    if [ "$type" != directory ] || [ "$uid" != "$(id -u)" ] || (( 8#$mode & 8#022 )); then
        error "work directory $W is not a directory of this user that only it may write to (owner uid $uid, mode $mode, $type)"
        hint "Use a work directory of your own that only you may write to (chmod 700)."
        exit "$EX_IO"
    fi
}

phase() { cat "$W/phase" 2>/dev/null || echo none; }

# set_phase PHASE: recorded (renamed into place), and in the history
set_phase() {
    echo "$1" >"$W/phase.tmp" && mv -f "$W/phase.tmp" "$W/phase"
    ! declare -F history_event >/dev/null || history_event phase "$(jq -cn --arg p "$1" '{phase: $p}')"
    info "phase: $1"
}

# ---------------------------------------------------------------- lock

# A command that changes the migration (start, cutover, abort, clean) holds
# an exclusive flock(1) on WORKDIR/lock while it runs; the file names the
# holder ("pid starttime command").  A second one is refused at once with
# EX_LOCKED, naming the holder.  status and verify only read: no lock.  The
# stages never hold it (spawn closes every descriptor); the background
# process of start --detach inherits it and keeps it until it returns.
# abort and clean stop a running start (as they always did) and then take
# the lock; they never take it from a running cutover.
EX_LOCKED=$EX_FAILURE
LOCK_FD=
lock_holder() { head -n 1 "$W/lock" 2>/dev/null; }

holder_alive() {   # holder_alive "pid starttime command"
    local pid st
    read -r pid st _ <<<"$1"
    [[ $pid =~ ^[0-9]+$ ]] && proc_alive "$pid" && [ "$(proc_start_time "$pid")" = "$st" ]
}

lock_workdir() {   # lock_workdir COMMAND-WORDS
    local what=$1 h pid cmd
    need_prog flock
    if [ -n "${_LM_LOCK_FD:-}" ] && [ "$CMD" = _detached ]; then
        # inherited from start --detach: the same open file, its lock
        LOCK_FD=$_LM_LOCK_FD
        unset _LM_LOCK_FD
        if ! [[ $LOCK_FD =~ ^[0-9]+$ ]] || ! flock -n "$LOCK_FD"; then
            die "$EX_LOCKED" "the lock on $W was not handed over to the background start"
        fi
    else
        exec {LOCK_FD}>>"$W/lock" || die "$EX_IO" "cannot open $W/lock"
        if ! flock -n "$LOCK_FD"; then
            # a holder that just took it writes its line right after
            local j
            for ((j = 0; j < 10; j++)); do
                h=$(lock_holder)
                holder_alive "$h" && break
                sleep 0.1
            done
            read -r pid _ cmd <<<"$h"
            if [ -n "$h" ] && holder_alive "$h" && [ "${cmd%% *}" = start ] &&
                { [ "$CMD" = abort ] || [ "$CMD" = clean ]; }; then
                # the start being aborted: stop it first
                info "stopping the running $cmd (pid $pid)"
                kill -TERM "$pid" 2>/dev/null
                local i
                for ((i = 0; i < 25; i++)); do holder_alive "$h" || break; sleep 0.2; done
                holder_alive "$h" && kill -KILL "$pid" 2>/dev/null
            elif [ -n "$h" ] && holder_alive "$h"; then
                error "$W is in use: lm-migrate $cmd (pid $pid) is running there"
                hint "Wait for it to end (see $PROG status), or stop it (kill $pid) first."
                exit "$EX_LOCKED"
            fi
            # the holder is gone; what it ran a moment ago (psql, sleep)
            # may still hold the lock for a moment
            if ! flock -w 15 "$LOCK_FD"; then
                h=$(lock_holder)
                read -r pid _ cmd <<<"$h"
                error "$W is in use: lm-migrate ${cmd:-?} (pid ${pid:-?}) or a process it started still holds $W/lock"
                hint "Wait for it to end (see $PROG status), or stop it first."
                exit "$EX_LOCKED"
            fi
        fi
    fi
    echo "$$ $(proc_start_time $$) $what" >"$W/lock"
}

# ---------------------------------------------------------------- marker token

# The token that authenticates the cutover marker: 32 random bytes as hex
# in marker.key (0600), made once per migration.  lm-decode reads it from
# the file: it never goes on a command line or into an environment.
ensure_marker_key() {
    [ -s "$W/marker.key" ] && return 0
    (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$W/marker.key.tmp" &&
        mv -f "$W/marker.key.tmp" "$W/marker.key") || die "$EX_IO" "cannot create $W/marker.key"
}

# marker_payload ID: "cutover ID MAC", MAC = HMAC-SHA256(token, ID) in hex
# (RFC 2104 over sha256sum; the key bytes pass only through builtins and pipes)
# marker_payload ID rehearse: "rehearse ID MAC", MAC over "rehearse ID" (a
# rehearsal's marker: lm-decode passes it on and ends nothing, marker.h)
marker_payload() {
    local id=$1 kind=${2:-cutover} key k i ipad='' opad='' inner ih='' mac msg=$1
    [ "$kind" = rehearse ] && msg="rehearse $id"
    read -r key <"$W/marker.key" 2>/dev/null
    [[ $key =~ ^([0-9a-fA-F]{2}){16,64}$ ]] || die "$EX_IO" "$W/marker.key does not hold a marker token"
    for ((i = 0; i < 128; i += 2)); do
        k=0
        [ "$i" -lt ${#key} ] && k=$((16#${key:i:2}))
        printf -v ipad '%s\\x%02x' "$ipad" $((k ^ 0x36))
        printf -v opad '%s\\x%02x' "$opad" $((k ^ 0x5c))
    done
    inner=$({ printf '%b' "$ipad"; printf '%s' "$msg"; } | sha256sum) || die "$EX_FAILURE" "sha256sum failed"
    for ((i = 0; i < 64; i += 2)); do ih+="\\x${inner:i:2}"; done
    mac=$({ printf '%b' "$opad"; printf '%b' "$ih"; } | sha256sum) || die "$EX_FAILURE" "sha256sum failed"
    printf '%s %s %s' "$kind" "$id" "${mac%% *}"
}

# ---------------------------------------------------------------- slot result

# slot.json: one complete JSON object with a snapshot name and a
# consistent point of the right form (never a value not read and checked)
slot_json_ok() {
    [ -s "$W/slot.json" ] && jq -se 'length == 1 and (.[0] | type == "object"
        and (.snapshot | type == "string" and test("^[0-9A-F]+-[0-9A-F]+-[0-9]+$"))
        and (.consistent_point | type == "string" and test("^[0-9A-F]{1,8}/[0-9A-F]{1,8}$")))' "$W/slot.json" >/dev/null 2>&1
}

read_slot_json() {   # sets SNAPSHOT and CP from a valid slot.json
    slot_json_ok || return 1
    SNAPSHOT=$(jq -r .snapshot "$W/slot.json") && CP=$(jq -r .consistent_point "$W/slot.json")
}

consistent_point() { jq -r '.consistent_point // empty' "$W/slot.json" 2>/dev/null; }
