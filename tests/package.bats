#!/usr/bin/env bats
# make deb, the Debian package of lm (scripts/build-deb, packaging/deb/):
# what it holds against what make install installs, its control fields,
# lintian, and the installed programs, man pages and bash completion, run
# from a scratch root the package is unpacked into (dpkg -x).  No server.

bats_require_minimum_version 1.5.0
load helpers

CPROGS=(lm-slot lm-snapshot lm-decode lm-apply lm-cat)

setup_file() {
    VERSION=$(sed -n 's/^const LM_VERSION //p' "$LM_ROOT/common/constants.tab")
    DEB=$LM_ROOT/build/deb/lm_$VERSION-1_$(dpkg --print-architecture).deb
    ROOT=$BATS_FILE_TMPDIR/root
    export VERSION DEB ROOT
    rm -f "$DEB"
    make -C "$LM_ROOT" --no-print-directory deb >"$BATS_FILE_TMPDIR/make.log" 2>&1 ||
        { cat "$BATS_FILE_TMPDIR/make.log" >&3; return 1; }
    dpkg -x "$DEB" "$ROOT"
}

# complete PROGRAM WORD...: the candidates (one a line) the completion
# installed for PROGRAM offers for the command line "PROGRAM WORD...", the
# last word being completed; its function is the one "complete -p" names
complete_line() {
    local prog=$1
    shift
    # shellcheck disable=SC2016  # for the inner bash
    bash -c '
        . "$1" || exit 1
        spec=$(complete -p "$2") || exit 1
        fn=${spec#*-F }; fn=${fn%% *}
        shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
        "$fn" || exit 1
        [ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}"' \
        _ "$ROOT/usr/share/bash-completion/completions/$prog" "$prog" "$prog" "$@"
}

@test "package: make deb makes lm_VERSION-1_ARCH.deb, the version that of constants.tab" {
    [ -n "$VERSION" ]
    assert_equal "$(tail -1 "$BATS_FILE_TMPDIR/make.log")" "$DEB"
    run -0 dpkg-deb -f "$DEB" Package Version Architecture
    assert_output "Package: lm
Version: $VERSION-1
Architecture: $(dpkg --print-architecture)"
}

@test "package: depends on the libraries it links (dpkg-shlibdeps) and the programs lm-migrate runs" {
    local dep
    run -0 dpkg-deb -f "$DEB" Depends
    for dep in 'libc6 (>= ' 'libpq5' 'libzstd1' 'postgresql-client-15' 'jq' 'util-linux (>= '; do
        [[ ", $output, " == *", $dep"* ]] || { echo "no $dep in: $output"; false; }
    done
    # each is a package this Debian 12 has installed (make check's
    # install-deps installs them all), at the version asked: a misspelt name
    # or a version that does not exist fails
    local deps d name have op ver
    IFS=, read -ra deps <<<"$output"
    for d in "${deps[@]}"; do
        d=${d# }; d=${d%%|*}; name=${d%% *}
        have=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$name" 2>/dev/null) || true
        [[ $have == ii* ]] || { echo "not installed: $name"; false; }
        if [[ $d =~ \(([\<\>=]+)\ ([^\)]+)\) ]]; then
            op=${BASH_REMATCH[1]} ver=${BASH_REMATCH[2]}
            case $op in '>=') op=ge ;; '<=') op=le ;; '>>') op=gt ;; '<<') op=lt ;; '=') op=eq ;; esac
            dpkg --compare-versions "${have#*|}" "$op" "$ver" || { echo "$name ${have#*|} is not $d"; false; }
        fi
    done
    # and the programs link the libraries it names
    for dep in libpq.so.5 libzstd.so.1; do
        readelf -d "$ROOT/usr/bin/lm-apply" | grep -q "NEEDED.*\[$dep\]"
    done
}

@test "package: holds every file make install installs, man pages compressed, and the Debian files" {
    local list=$LM_ROOT/build/deb/install.list f want p m
    run -0 dpkg-deb --contents "$DEB"
    local contents
    contents=$(awk '{ print $6 }' <<<"$output" | sed 's|^\./|/|; /\/$/d' | sort)
    # what make install must install, whatever else it does
    for p in "${CPROGS[@]}" lm-migrate; do
        grep -qx "/usr/bin/$p" "$list" || { echo "make install has no /usr/bin/$p"; false; }
        grep -qx "/usr/share/bash-completion/completions/$p" "$list" ||
            { echo "make install has no completion for $p"; false; }
    done
    for m in "$LM_ROOT"/man/*.[157]; do
        grep -qx "/usr/share/man/man${m##*.}/${m##*/}" "$list" || { echo "make install has no ${m##*/}"; false; }
    done
    # each file make install installed is in the package (a man page gzipped)
    while read -r f; do
        want=$f
        [[ $f == /usr/share/man/* ]] && want=$f.gz
        grep -qxF "$want" <<<"$contents" || { echo "not in the package: $want"; false; }
    done <"$list"
    # and nothing else but the Debian files
    for f in /usr/share/doc/lm/copyright /usr/share/doc/lm/changelog.Debian.gz \
        /usr/share/lintian/overrides/lm; do
        grep -qxF "$f" <<<"$contents" || { echo "not in the package: $f"; false; }
    done
    assert_equal "$(wc -l <<<"$contents")" "$(($(wc -l <"$list") + 3))"
    # man pages gzip -9n, as policy asks (no name, no time in the header)
    for m in "$ROOT"/usr/share/man/man*/*; do
        [[ $m == *.gz ]] || { echo "not compressed: $m"; false; }
        gzip -t "$m"
        [ "$(od -An -tx1 -j3 -N5 "$m" | tr -d ' ')" = 0000000000 ] || { echo "$m: gzip with a name or a time"; false; }
    done
    # executables stripped, owned by root
    for p in "${CPROGS[@]}"; do
        run -0 readelf -S "$ROOT/usr/bin/$p"
        refute_output --partial .debug_info
    done
    run -0 dpkg-deb --contents "$DEB"
    assert_equal "$(awk '$2 != "root/root"' <<<"$output")" ""
}

@test "package: lintian finds no error or warning; each override says why and is used" {
    local line prev=
    # (--fail-on counts the overridden tags --show-overrides shows)
    run lintian -I -E --pedantic --show-overrides "$DEB"
    assert_success
    refute_line --regexp '^[EW]: '
    refute_output --partial 'unused-override'
    refute_output --partial 'mismatched-override'
    # every tag overridden is shown as such (O:), and its line has a comment above it
    while IFS= read -r line; do
        if [[ $line == lm:* ]]; then
            [[ $prev == '#'* ]] || { echo "no comment above: $line"; false; }
            assert_line --regexp "^O: ${line%% *} ${line#* }( |$)"
        fi
        prev=$line
    done <"$LM_ROOT/packaging/deb/lintian-overrides"
}

@test "package: the installed programs run and print the version of constants.tab" {
    local p
    for p in lm-migrate "${CPROGS[@]}"; do
        run -0 "$ROOT/usr/bin/$p" --version
        assert_output "$p (lm) $VERSION"
    done
    # lm-migrate finds whatever of itself make install put elsewhere
    run -0 "$ROOT/usr/bin/lm-migrate" --help
    assert_line --regexp '^Usage:'
    assert_line --regexp '^  lm-migrate start '
}

@test "package: man -l shows the installed man pages, lm-migrate(1) naming lm-migrate" {
    local m name
    run -0 env MANWIDTH=80 man -l "$ROOT/usr/share/man/man1/lm-migrate.1.gz"
    assert_line --index 0 --regexp '^LM-MIGRATE\(1\) '
    assert_line --regexp '^ +lm-migrate +- +live +migration'
    [ "${#lines[@]}" -gt 100 ]
    for m in "$ROOT"/usr/share/man/man*/*.gz; do
        name=${m##*/}; name=${name%.*.gz}
        run -0 env MANWIDTH=80 man -l "$m"
        assert_line --regexp "^ +$name +- "
    done
}

@test "package: the completion completes lm-migrate's commands and each command's options" {
    run -0 complete_line lm-migrate st
    assert_output "start
status"
    run -0 complete_line lm-migrate start --sl
    assert_output "--slot="
    # options by command: --json is status's, --jobs start's
    run -0 complete_line lm-migrate status --j
    assert_output "--json"
    run -0 complete_line lm-migrate status --wa
    assert_output "--watch"
    run -0 complete_line lm-migrate status --pr
    assert_output "--prometheus"
    run -0 complete_line lm-migrate start --j
    assert_output "--jobs="
    run -0 complete_line lm-migrate cutover --
    assert_line --regexp '^--fence$'
    assert_line --regexp '^--timeout=$'
    assert_line --regexp '^--rehearse$'
    assert_line --regexp '^--json$'
    assert_line --regexp '^--workdir=$'
    refute_line --regexp '^--slot=$'
    # report and its --output (a file), only report's
    run -0 complete_line lm-migrate rep
    assert_output "report"
    run -0 complete_line lm-migrate report --o
    assert_output "--output="
    run -0 complete_line lm-migrate status --o
    assert_output ""
    # after an option's value, still the command
    run -0 complete_line lm-migrate --workdir /tmp ver
    assert_output "verify"
    # a directory for --workdir=, split at the "=" as bash does
    mkdir -p "$BATS_TEST_TMPDIR/wd-one" "$BATS_TEST_TMPDIR/wd-two"
    touch "$BATS_TEST_TMPDIR/wd-file"
    run -0 complete_line lm-migrate --workdir = "$BATS_TEST_TMPDIR/wd-"
    assert_output "$(printf '%s\n' "$BATS_TEST_TMPDIR/wd-one" "$BATS_TEST_TMPDIR/wd-two" | sort)"
}

@test "package: the completion completes the C programs' commands, options and values" {
    # through the links bash-completion loads them by
    [ "$(readlink "$ROOT/usr/share/bash-completion/completions/lm-slot")" = lm-migrate ]
    run -0 complete_line lm-slot cr
    assert_output "create"
    run -0 complete_line lm-slot create --pub
    assert_output "--publication="
    run -0 complete_line lm-snapshot --target-schema = ''
    assert_output "restore
existing"
    # a value that may be left out (--progress[=WHEN]): offered bare, its
    # values after "=", and the next word is not taken for it
    run -0 complete_line lm-snapshot --progr
    assert_output "--progress"
    run -0 complete_line lm-snapshot --progress = ''
    assert_output "auto
always
never"
    run -0 complete_line lm-snapshot --progress=n
    assert_output "--progress=never"
    run -0 complete_line lm-snapshot --progress ''
    assert_output ""
    run -0 complete_line lm-cat --st
    assert_output "--stats"
}

@test "package: the completion offers the commands and options lm-migrate --help names, no other" {
    local cmd got=
    run -0 "$ROOT/usr/bin/lm-migrate" --help
    local help=$output
    # the commands: the first word of each line of the Commands: section
    run -0 complete_line lm-migrate ''
    assert_equal "$(xargs <<<"$output")" \
        "$(sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\)  .*/\1/p' <<<"$help" | xargs)"
    # the options: every --name the text shows, over all commands
    # shellcheck disable=SC2046  # the commands, one a word
    for cmd in '' $(complete_line lm-migrate ''); do
        got+=$(complete_line lm-migrate ${cmd:+"$cmd"} --)$'\n'
    done
    assert_equal "$(sed 's/=$//; /^$/d' <<<"$got" | sort -u | xargs)" \
        "$(grep -oE -- '--[a-z][a-z0-9-]*' <<<"$help" | sort -u | xargs)"
    shellcheck -s bash "$ROOT/usr/share/bash-completion/completions/lm-migrate"
}
