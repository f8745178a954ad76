# shellcheck shell=bash disable=SC2034  # its variables are read in the other files
# lm-migrate: messages and small helpers (no state of the
# migration; they read PROG and the EX_* codes of constants.sh).
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "util.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

PROG=lm-migrate
# Every session lm-migrate (and the stages it starts here) opens reads
# '...' literals as standard SQL, whatever the database or role sets (its
# owner may turn standard_conforming_strings off, and a backslash would
# then escape a closing quote).
LM_SESSION_OPTS="-c standard_conforming_strings=on"

# The settings taken from the environment, and the environment of the
# sessions and stages: the dispatcher calls it once, before anything else.
lm_settings() {
    PROGRESS_INTERVAL=${LM_PROGRESS_INTERVAL:-5}
    # how long lm-slot may take to create the slot (it waits for every
    # transaction running on the source to finish)
    SLOT_TIMEOUT=${LM_SLOT_TIMEOUT:-600}
    # "caught up": the apply is at most this far behind the source
    CAUGHT_UP_BYTES=${LM_CAUGHT_UP_BYTES:-65536}
    # ... or its last applied commit is at most this old (under steady writes the
    # byte lag never settles at 0)
    CAUGHT_UP_SECONDS=${LM_CAUGHT_UP_SECONDS:-3}
    # status warns when the work directory's filesystem has less free
    LOW_DISK_BYTES=${LM_LOW_DISK_BYTES:-1073741824}
    SSH=${LM_SSH:-ssh}
    SSH_OPTS=(-o BatchMode=yes -o ConnectTimeout=10)
    VERIFY_BUCKET=${LM_VERIFY_BUCKET:-1000000}
    export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
    export PGOPTIONS="${PGOPTIONS:-} $LM_SESSION_OPTS"
}

# ---------------------------------------------------------------- messages

log_time() { [ -n "${LM_LOG_TIME:-}" ] && printf '%s ' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"; }

info() { printf '%s%s: %s\n' "$(log_time)" "$PROG" "$*" >&2; }

warn() { printf '%s%s: warning: %s\n' "$(log_time)" "$PROG" "$*" >&2; }

error() { printf '%s%s: error: %s\n' "$(log_time)" "$PROG" "$*" >&2; }

hint() { printf '%s%s: hint: %s\n' "$(log_time)" "$PROG" "$*" >&2; }

die() { local code=$1; shift; error "$*"; exit "$code"; }

usage_error() {
    error "$*"
    printf 'Try "%s --help" for more information.\n' "$PROG" >&2
    exit "$EX_USAGE"
}

# ---------------------------------------------------------------- helpers

# A connection string with a password in it would end up in argv, ps output
# and the work directory: refuse it.
has_password() {
    local c=$1 d
    # libpq decodes %XX in a URI's keys and values: so does this check
    d=$(printf '%s' "$c" | sed 's/%\([0-9A-Fa-f][0-9A-Fa-f]\)/\\x\1/g')
    printf -v d '%b' "$d"
    [[ $c =~ (^|[[:space:]])password[[:space:]]*= ]] && return 0
    # URI credentials: user:password@ before the first / (libpq's rule)
    [[ $c =~ ^postgres(ql)?://[^/@]*:[^/@]*@ ]] && return 0
    [[ $d =~ [?\&][[:space:]]*password[[:space:]]*= ]] && return 0
    return 1
}

check_conn_arg() {   # check_conn_arg WHAT CONN
    if has_password "$2"; then
        error "the $1 connection string contains a password"
        hint "Put the password in ~/.pgpass (or a service file, PGSERVICEFILE) and leave it out of the connection string."
        exit "$EX_USAGE"
    fi
}

now() { date +%s.%N | cut -c1-14; }

epoch() { date +%s; }

# lsn_bytes X/Y: the WAL position as a number of bytes
lsn_bytes() { [[ $1 =~ ^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$ ]] && echo $(((16#${1%/*} << 32) + 16#${1#*/})); }

# SQL literal, right whatever standard_conforming_strings is (as
# lm_quote_literal in C): with a backslash in it, an E'' string
lit() {
    local s=${1//\'/\'\'}
    if [[ $s == *\\* ]]; then printf "E'%s'" "${s//\\/\\\\}"; else printf "'%s'" "$s"; fi
}

# A name (or a message holding one) safe for a terminal: control characters
# (a newline, ESC, the C1 codes of UTF-8) as \n, \t, \r or \xHH; other
# bytes as they are.  Byte by byte: a name need not be valid in the locale.
printable() {
    local LC_ALL=C s=$1 out='' c r b
    local re=$'^([^\x01-\x1f\x7f]*)([\x01-\x1f\x7f])(.*)$'
    s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}
    while [[ $s =~ $re ]]; do
        printf -v c '\\x%02x' "'${BASH_REMATCH[2]}"
        out+=${BASH_REMATCH[1]}$c
        s=${BASH_REMATCH[3]}
    done
    s=$out$s
    if [[ $s == *$'\xc2'* ]]; then
        for ((b = 0x80; b <= 0x9f; b++)); do
            printf -v c '\\xc2\\x%02x' "$b"
            printf -v r '%b' "$c"
            s=${s//"$r"/"$c"}
        done
    fi
    printf '%s' "$s"
}

# Names kept in a file, one NUL-terminated each (a file of a work directory
# from before, one a line, is read as such): read_names FILE sets NAMES.
read_names() {
    NAMES=()
    [ -s "$1" ] || return 0
    if [ "$(tr -d '\0' <"$1" | wc -c)" -lt "$(wc -c <"$1")" ]; then
        mapfile -t -d '' NAMES <"$1"
    else
        mapfile -t NAMES <"$1"
    fi
}

human_bytes() {
    local b=${1:-0}
    awk -v b="$b" 'BEGIN { split("B KB MB GB TB PB", u, " "); i = 1;
        while (b >= 1024 && i < 6) { b /= 1024; i++ }
        if (i == 1) printf "%d %s", b, u[i]; else printf "%.1f %s", b, u[i] }'
}

# Seconds with two decimals, as the cutover prints its downtime (a figure
# read back from JSON, 1.6, is shown 1.60 again).
secs2() { awk -v d="$1" 'BEGIN { printf "%.2f", d }'; }

human_secs() {
    local s=${1%.*}
    [ -z "$s" ] && s=0
    if [ "$s" -ge 3600 ]; then printf '%dh%02dm' $((s / 3600)) $((s % 3600 / 60))
    elif [ "$s" -ge 60 ]; then printf '%dm%02ds' $((s / 60)) $((s % 60))
    else printf '%ds' "$s"; fi
}

need_prog() {
    command -v "$1" >/dev/null 2>&1 && return 0
    error "$1 not found in PATH"
    hint "Build the programs with make, or install them (make install)."
    exit "$EX_PREFLIGHT"
}

# Quote arguments for a remote shell, which may be any POSIX sh (dash as a
# login shell): single quotes, a quote inside as '\'' (printf %q's $'...'
# is bash's only, and it emits that for control characters and, under
# LC_ALL=C, for every non-ASCII byte).
shq() { local a out=; for a in "$@"; do out+=" '${a//\'/\'\\\'\'}'"; done; printf '%s' "${out# }"; }

# "exited with status N" or "was killed by signal S"
exit_words() {
    if [ "$1" -gt 128 ] && [ "$1" -lt 160 ]; then
        printf 'was killed by signal %s (%s)' "$(($1 - 128))" "$(kill -l "$1" 2>/dev/null || echo ?)"
    else
        printf 'exited with status %s' "$1"
    fi
}

# 1 when LSN (X/Y) >= 16-hex-digit position
lsn_ge_hex() {
    local hi=${1%/*} lo=${1#*/}
    local a
    a=$(printf '%08X%08X' "0x$hi" "0x$lo")
    [[ $a > $2 || $a == "$2" ]] && echo 1 || echo 0
}

b64() { printf '%s' "$1" | base64 -d; }

in_range() { [[ $1 =~ ^[0-9]{1,9}$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
