#!/usr/bin/env bats
# common/constants.tab, the one table of what the C programs and lm-migrate
# share, against every form made from it or written after it: the shell
# file, each program's --version and --help, each man page's EXIT STATUS.
# No server.  (tests/unit checks the C header against the shell file.)

bats_require_minimum_version 1.5.0
load helpers

TABLE=$LM_ROOT/common/constants.tab
CPROGS=(lm-apply lm-cat lm-decode lm-slot lm-snapshot)

# table_exits: "CODE NAME PROGRAMS" for each exit code of the table
table_exits() {
    local kind name code progs
    while read -r kind name code progs _; do
        [ "$kind" = exit ] && printf '%s %s %s\n' "$code" "$name" "$progs"
    done <"$TABLE"
}

# codes_of PROG: the codes the table says PROG (lm-x) can exit with, one a line
codes_of() {
    local code name progs
    while read -r code name progs; do
        [[ ,$progs, == *,all,* || ,$progs, == *,${1#lm-},* ]] && echo "$code"
    done < <(table_exits)
}

# help_exit_status PROG...: the "Exit status:" paragraph of its --help, on one line
help_exit_status() {
    "$@" --help | sed -n '/^Exit status:/,/^$/p' | tr '\n' ' ' | sed 's/ *$//'
}

@test "constants: lib/constants.sh has the table's constants and exit codes, nothing else" {
    local sh=$LM_ROOT/bin/lm-migrate/lib/constants.sh kind name value n=0
    run -0 head -1 "$sh"
    assert_output "# generated from common/constants.tab by make: do not edit"
    # shellcheck source=/dev/null
    source "$sh"
    while read -r kind name value; do
        case $kind in
        const) [ "${!name}" = "$value" ] || { echo "$name: \"${!name}\", the table: \"$value\""; false; } ;;
        exit) local v=EX_$name
              [ "${!v}" = "${value%% *}" ] || { echo "$v: \"${!v}\", the table: ${value%% *}"; false; } ;;
        *) continue ;;
        esac
        n=$((n + 1))
    done <"$TABLE"
    [ "$n" -ge 15 ]
    # a line per entry, and the header line
    [ "$(grep -c '^[A-Z_]*=' "$sh")" -eq "$n" ]
    [ "$(wc -l <"$sh")" -eq $((n + 1)) ]
}

@test "constants: every program prints the table's version" {
    local version p
    version=$(sed -n 's/^const LM_VERSION //p' "$TABLE")
    [ -n "$version" ]
    for p in "${CPROGS[@]}" lm-migrate; do
        run -0 "$p" --version
        assert_output "$p (lm) $version"
    done
}

@test "constants: each program's --help lists the exit codes the table gives it" {
    local p want code name progs
    for p in "${CPROGS[@]}"; do
        want="Exit status:"
        while read -r code name progs; do
            [[ ,$progs, == *,all,* || ,$progs, == *,${p#lm-},* ]] && want+=" $code ${name,,},"
        done < <(table_exits)
        want="${want%,} (see $p(1))."
        [ "$(help_exit_status "$p")" = "$want" ] ||
            { echo "$p --help: $(help_exit_status "$p")"; echo "the table: $want"; false; }
    done
    # lm-migrate's text is its own: the same codes
    assert_equal "$(help_exit_status lm-migrate | grep -oE '(: |, )[0-9]+ ' | tr -dc '0-9\n ' | xargs)" \
        "$(codes_of lm-migrate | xargs)"
}

@test "constants: each man page's EXIT STATUS has every code with its name, the program's marked" {
    local page p rows code name progs marked
    for page in "$LM_ROOT"/man/lm-*.1; do
        p=$(basename "$page" .1)
        # the table's rows: "CODE[ *]<tab>NAME<tab>..."
        rows=$(sed -n '/^\.SH "\{0,1\}EXIT STATUS/,/^\.SH/p' "$page" | grep -E $'^[0-9]+( \\*)?\t')
        while read -r code name progs; do
            grep -qE "^$code( \\*)?"$'\t'"${name,,}"$'\t' <<<"$rows" ||
                { echo "$p(1) lacks exit status $code ${name,,}"; false; }
        done < <(table_exits)
        marked=$(grep -oE '^[0-9]+ \*' <<<"$rows" | tr -d ' *' | xargs)
        [ "$marked" = "$(codes_of "$p" | xargs)" ] ||
            { echo "$p(1) marks $marked, the table: $(codes_of "$p" | xargs)"; false; }
    done
}
