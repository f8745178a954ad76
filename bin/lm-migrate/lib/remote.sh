# shellcheck shell=bash disable=SC2034  # its variables are read in the other files
# lm-migrate: stages on other hosts, through ssh
# (--decode-host, --apply-host).
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "remote.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

ssh_run() {   # ssh_run HOST COMMAND-STRING
    "$SSH" "${SSH_OPTS[@]}" "$1" "$2"
}

# Sets REMOTE to the ssh command line that runs a stage on HOST: the remote
# shell records its pid in REMOTE_DIR/STAGE.pid (so that a stop reaches it
# even when the ssh connection is gone), runs PREP, then becomes the program.
remote_cmd() {   # remote_cmd STAGE HOST PREP command...
    local stage=$1 host=$2 prep=$3; shift 3
    echo "$host $REMOTE_DIR" >"$W/pids/$stage.remote"
    REMOTE=("$SSH" "${SSH_OPTS[@]}" "$host"
        "mkdir -p $(shq "$REMOTE_DIR") && echo \$\$ > $(shq "$REMOTE_DIR/$stage.pid") && $prep && exec $(shq "$@")")
}

check_remote_prog() {   # check_remote_prog HOST PROG
    local out rc
    out=$(ssh_run "$1" "command -v $2" </dev/null 2>&1); rc=$?
    if [ $rc -eq 255 ]; then
        error "cannot reach $1 through ssh: $out"
        hint "The host must accept key-based ssh logins (BatchMode) from this host."
        return 1
    elif [ $rc -ne 0 ]; then
        error "$2 is not installed on $1 (not in the PATH of a non-interactive ssh session)"
        hint "Install lm on $1 (make install), or put its bin directory in PATH for ssh sessions (~/.ssh/environment or the shell's rc file)."
        return 1
    fi
    return 0
}
