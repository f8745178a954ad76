# shellcheck shell=bash disable=SC2034  # its variables are read in the other files
# lm-migrate: the options of start as the work directory's
# config file: written, read back and checked.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "config.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

# The config is data, read back by a parser of its own: never sourced or
# eval'd (a config made by someone else must not run anything).  Format 2:
# the line CONFIG_HEADER, then KEY=VALUE lines, each value percent-encoded
# (every byte outside [A-Za-z0-9._~:/@+,=-] as %XX); the arrays FILTERS and
# HYPERTABLES as one line per element, in order.
CONFIG_HEADER='lm-migrate config 2'
CONFIG_KEYS=" SOURCE TARGET SLOT JOBS DECODE_HOST APPLY_HOST REMOTE_DIR RIF TARGET_SCHEMA SKIP_DB_SETTINGS STARTED "
cfg_enc() {
    local LC_ALL=C
    local s=$1 out='' c h i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
            [A-Za-z0-9._~:/@+,=-]) out+=$c ;;
            *) printf -v h '%%%02X' "'$c"; out+=$h ;;
        esac
    done
    printf '%s' "$out"
}

# cfg_dec VALUE: sets CFG_VAL, or fails on anything cfg_enc does not write
cfg_dec() {
    local re='^([A-Za-z0-9._~:/@+,=-]|%[0-9A-F][0-9A-F])*$'
    [[ $1 =~ $re ]] && [[ $1 != *%00* ]] || return 1
    # only %XX became \xXX: no other backslash is in it
    printf -v CFG_VAL '%b' "${1//%/\\x}"
}

save_config() {
    local k e
    {
        echo "$CONFIG_HEADER"
        for k in $CONFIG_KEYS; do printf '%s=%s\n' "$k" "$(cfg_enc "${!k}")"; done
        for e in "${FILTERS[@]}"; do printf 'FILTERS=%s\n' "$(cfg_enc "$e")"; done
        for e in "${HYPERTABLES[@]}"; do printf 'HYPERTABLES=%s\n' "$(cfg_enc "$e")"; done
    } >"$W/config.tmp" && mv -f "$W/config.tmp" "$W/config"
}

# An ssh destination: a host ssh would take for an option (-oProxyCommand=...)
# would run what it says.
valid_host() {
    local re='^[][A-Za-z0-9_.@:%][][A-Za-z0-9_.@:%-]*$'
    [[ $1 =~ $re ]]
}

config_error() {   # config_error WHAT
    error "$W/config: $1"
    hint "lm-migrate reads its config as data (see FILES in lm-migrate(1)); it was not written by this lm-migrate, or was changed since."
    exit "$EX_PREFLIGHT"
}

load_config() {
    [ -f "$W/config" ] || die "$EX_USAGE" "no migration in $W (no config file)"
    require_private_workdir
    local line key n=1 seen=" " i
    FILTERS=() HYPERTABLES=()
    {
        IFS= read -r line || line=
        if [ "$line" != "$CONFIG_HEADER" ]; then
            if [[ $line =~ ^[A-Z_]+= ]]; then
                error "$W/config is in the format of an older lm-migrate (shell assignments), which this one no longer runs"
                hint "Finish or abort that migration with the lm-migrate that started it, or rewrite the file as format 2 (see FILES in lm-migrate(1))."
                exit "$EX_PREFLIGHT"
            fi
            config_error "not an lm-migrate config (its first line is not \"$CONFIG_HEADER\")"
        fi
        while IFS= read -r line || [ -n "$line" ]; do
            n=$((n + 1))
            key=${line%%=*}
            [ "$key" != "$line" ] || config_error "line $n is not KEY=VALUE"
            cfg_dec "${line#*=}" || config_error "the value of $key (line $n) is not percent-encoded"
            case $key in
                FILTERS) FILTERS+=("$CFG_VAL") ;;
                HYPERTABLES) HYPERTABLES+=("$CFG_VAL") ;;
                *)
                    [[ $CONFIG_KEYS == *" $key "* ]] || config_error "unknown key \"$key\" (line $n)"
                    [[ $seen != *" $key "* ]] || config_error "$key given twice (line $n)"
                    seen+="$key "
                    printf -v "$key" '%s' "$CFG_VAL" ;;
            esac
        done
    } <"$W/config"
    # every value as start would have taken it
    if [ -z "$SOURCE" ] || [ -z "$TARGET" ]; then config_error "SOURCE or TARGET is missing"; fi
    has_password "$SOURCE" && config_error "the SOURCE connection string holds a password"
    has_password "$TARGET" && config_error "the TARGET connection string holds a password"
    [[ $SLOT =~ ^[a-z0-9_]{1,63}$ ]] || config_error "invalid SLOT"
    in_range "$JOBS" 1 64 || config_error "invalid JOBS"
    local h
    for h in "$DECODE_HOST" "$APPLY_HOST"; do
        [ -z "$h" ] || valid_host "$h" || config_error "invalid host \"$h\""
    done
    [[ $REMOTE_DIR != -* && $REMOTE_DIR != *$'\n'* ]] || config_error "invalid REMOTE_DIR"
    uses_ssh && [ -z "$REMOTE_DIR" ] && config_error "REMOTE_DIR is missing"
    [[ $RIF =~ ^1?$ ]] || config_error "invalid RIF"
    [[ $SKIP_DB_SETTINGS =~ ^1?$ ]] || config_error "invalid SKIP_DB_SETTINGS"
    [[ $TARGET_SCHEMA =~ ^(restore|existing)?$ ]] || config_error "invalid TARGET_SCHEMA"
    [[ $STARTED =~ ^[0-9]*$ ]] || config_error "invalid STARTED"
    [ $((${#FILTERS[@]} % 2)) -eq 0 ] || config_error "FILTERS must come in pairs"
    for ((i = 0; i < ${#FILTERS[@]}; i += 2)); do
        case ${FILTERS[i]} in
            --table|--schema|--exclude-table) ;;
            *) config_error "invalid filter option \"${FILTERS[i]}\"" ;;
        esac
    done
    TARGET_SCHEMA=${TARGET_SCHEMA:-restore}
    SPOOL=$(spool_path)
}

# ---------------------------------------------------------------- accessors

# cfg KEY: the value of config key KEY (as load_config read it, or as start
# took it from the command line); fails for a key the config does not have
cfg() {
    [[ $1 =~ ^[A-Z_]+$ && $CONFIG_KEYS == *" $1 "* ]] || return 1
    printf '%s' "${!1}"
}

# whether a stage runs on another host (segments then cross ssh)
uses_ssh() { [ -n "$DECODE_HOST" ] || [ -n "$APPLY_HOST" ]; }

# the spool: in the work directory, or in REMOTE_DIR on the decode host
spool_path() {
    if [ -n "$DECODE_HOST" ]; then printf '%s' "$REMOTE_DIR/spool"; else printf '%s' "$W/spool"; fi
}
