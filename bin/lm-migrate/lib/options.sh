# shellcheck shell=bash disable=SC2034  # its variables are read in the other files
# lm-migrate: the command line.  One parser for every command (options may
# come before or after the command word); each option is then checked
# against the commands it means something for.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "options.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

# The commands, and the internal ones lm-migrate runs itself (_detached: the
# background start of start --detach; _ship: segments through ssh;
# _sample: the history sampler).
LM_COMMANDS="start status cutover verify report abort clean"
LM_INTERNAL_COMMANDS="_detached _ship _sample"

# The options' values, empty (or their defaults) before parsing.
options_init() {
    WORKDIR='' SOURCE='' TARGET='' JOBS=4 SLOT='' DECODE_HOST='' APPLY_HOST='' REMOTE_DIR='' RIF='' TARGET_SCHEMA='' SKIP_DB_SETTINGS=''
    DETACH='' DETACHED='' RESUME='' NO_WAIT='' JSON='' FENCE='' KEEP='' TIMEOUT=300 QUIET='' STARTED=
    REHEARSE='' OUTPUT=''
    FILTERS=() HYPERTABLES=() VERIFY_TABLES=()
    WATCH='' PROMETHEUS=''   # status --watch SECONDS, status --prometheus
    CMD=
}

# is_command WORD: WORD is a command or an internal one
is_command() {
    local c
    for c in $LM_COMMANDS $LM_INTERNAL_COMMANDS; do [ "$1" = "$c" ] && return 0; done
    return 1
}

need_arg() { [ "$2" -ge 2 ] || usage_error "option $1 needs a value"; }

# valid_interval S: S is a number of seconds above 0, at most a day (2, 0.5)
valid_interval() {
    [[ $1 =~ ^([0-9]{1,5}(\.[0-9]{1,3})?|\.[0-9]{1,3})$ ]] &&
        awk -v s="$1" 'BEGIN { exit !(s > 0 && s <= 86400) }'
}

# parse_options ARG...: sets the options' variables and CMD; --help and
# --version print and exit; a bad option or value is a usage error.
parse_options() {
    local opt val eq
    while [ $# -gt 0 ]; do
        opt=$1
        val='' eq=''
        case $opt in
            --*=*) val=${opt#*=}; opt=${opt%%=*}; eq=1; set -- "$opt" "$val" "${@:2}" ;;
        esac
        case $opt in
            -\?|-h|--help) usage; exit 0 ;;
            -V|--version) echo "$PROG (lm) $LM_VERSION"; exit 0 ;;
            -w|--workdir) need_arg "$1" $#; WORKDIR=$2; shift 2 ;;
            -s|--source) need_arg "$1" $#; SOURCE=$2; shift 2 ;;
            -t|--target) need_arg "$1" $#; TARGET=$2; shift 2 ;;
            -j|--jobs) need_arg "$1" $#; JOBS=$2; shift 2
                in_range "$JOBS" 1 64 || usage_error "invalid --jobs \"$JOBS\": must be in range 1..64" ;;
            --slot) need_arg "$1" $#; SLOT=$2; shift 2 ;;
            --table)
                need_arg "$1" $#
                FILTERS+=(--table "$2"); VERIFY_TABLES+=("$2"); shift 2 ;;
            --schema|--exclude-table) need_arg "$1" $#; FILTERS+=("$1" "$2"); shift 2 ;;
            --hypertable) need_arg "$1" $#; HYPERTABLES+=("$2"); shift 2 ;;
            --target-schema) need_arg "$1" $#; TARGET_SCHEMA=$2; shift 2
                [ "$TARGET_SCHEMA" = restore ] || [ "$TARGET_SCHEMA" = existing ] ||
                    usage_error "invalid --target-schema \"$TARGET_SCHEMA\": use restore or existing" ;;
            --replica-identity-full) RIF=1; shift ;;
            --skip-db-settings) SKIP_DB_SETTINGS=1; shift ;;
            --decode-host) need_arg "$1" $#; DECODE_HOST=$2; shift 2 ;;
            --apply-host) need_arg "$1" $#; APPLY_HOST=$2; shift 2 ;;
            --remote-dir) need_arg "$1" $#; REMOTE_DIR=$2; shift 2 ;;
            --detach) DETACH=1; shift ;;
            --resume) RESUME=1; shift ;;
            --no-wait) NO_WAIT=1; shift ;;
            --json) JSON=1; shift ;;
            --watch)
                # SECONDS is optional: --watch=S, or a next word that is
                # neither an option nor a command
                if [ -n "$eq" ] || { [ $# -ge 2 ] && [[ $2 != -* ]] && ! is_command "$2"; }; then
                    WATCH=$2; shift 2
                else
                    WATCH=2; shift
                fi
                valid_interval "$WATCH" || usage_error "invalid --watch \"$WATCH\": SECONDS must be a number above 0 and at most 86400 (2, 0.5)" ;;
            --prometheus) PROMETHEUS=1; shift ;;
            -o|--output) need_arg "$1" $#; OUTPUT=$2; shift 2 ;;
            --fence) FENCE=1; shift ;;
            --keep) KEEP=1; shift ;;
            --rehearse) REHEARSE=1; shift ;;
            --timeout) need_arg "$1" $#; TIMEOUT=$2; shift 2
                in_range "$TIMEOUT" 1 604800 || usage_error "invalid --timeout \"$TIMEOUT\": must be in range 1..604800 seconds" ;;
            -q|--quiet) QUIET=1; shift ;;
            --) shift; break ;;
            -*) usage_error "unrecognized option \"$opt\"" ;;
            *)
                [ -z "$CMD" ] || usage_error "too many arguments: \"$opt\""
                CMD=$opt; shift ;;
        esac
    done
    [ $# -eq 0 ] || usage_error "too many arguments: \"$1\""
    [ -n "$SOURCE" ] && check_conn_arg source "$SOURCE"
    [ -n "$TARGET" ] && check_conn_arg target "$TARGET"
    return 0
}

# a command's options only where they mean something
only_for() {   # only_for CMD... -- VAR OPTION
    local ok=
    while [ "$1" != -- ]; do [ "$CMD" = "$1" ] && ok=1; shift; done
    [ -n "$ok" ] || [ -z "${!2}" ] || usage_error "option $3 is not valid for \"$CMD\""
}

# check_command: CMD is a command and every option given is one of its own
# (a usage error otherwise).
check_command() {
    [ -n "$CMD" ] || usage_error "no command given (${LM_COMMANDS// /, })"
    is_command "$CMD" || usage_error "unknown command \"$CMD\""
    only_for start _detached -- DETACH --detach
    only_for start _detached -- RESUME --resume
    only_for start _detached -- NO_WAIT --no-wait
    only_for start _detached -- RIF --replica-identity-full
    only_for start _detached -- SKIP_DB_SETTINGS --skip-db-settings
    only_for start _detached -- TARGET_SCHEMA --target-schema
    TARGET_SCHEMA=${TARGET_SCHEMA:-restore}
    only_for start _detached -- DECODE_HOST --decode-host
    only_for start _detached -- APPLY_HOST --apply-host
    only_for status cutover -- JSON --json
    only_for status -- WATCH --watch
    only_for status -- PROMETHEUS --prometheus
    [ -z "$PROMETHEUS" ] || [ -z "$JSON$WATCH" ] ||
        usage_error "option --prometheus cannot be combined with --json or --watch"
    only_for report -- OUTPUT --output
    only_for cutover -- FENCE --fence
    only_for cutover -- KEEP --keep
    only_for cutover -- REHEARSE --rehearse
    if [ "$CMD" = cutover ]; then
        [ -z "$JSON" ] || [ -n "$REHEARSE" ] || usage_error "option --json is valid for \"cutover\" only with --rehearse"
        [ -z "$KEEP" ] || [ -z "$REHEARSE" ] || usage_error "option --keep is not valid with --rehearse (a rehearsal drops nothing)"
    fi
}
