# shellcheck shell=bash
# lm-migrate: the command verify.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "cmd-verify.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }


# verify: what verify_cmd (lib/verify.sh, shared with cutover) finds; exit
# status 10 (EX_DIFF) when a table differs
cmd_verify() {
    verify_cmd
}
