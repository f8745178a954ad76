#!/usr/bin/env bats
# lm-migrate's libraries (bin/lm-migrate/lib/*.sh) on their own: each test
# sources what it needs and calls functions directly.  No server: the
# config, quoting, numbers, the command line, and lm-migrate installed with
# make install finding its libraries.

bats_require_minimum_version 1.5.0
load helpers

MIGRATE=$LM_ROOT/bin/lm-migrate
LIBS=$MIGRATE/lib

# lib NAME...: source these libraries (constants.sh and util.sh first)
lib() {
    local l
    # shellcheck source=/dev/null
    source "$LIBS/constants.sh"
    # shellcheck source=/dev/null
    source "$LIBS/util.sh"
    for l in "$@"; do
        # shellcheck source=/dev/null
        source "$LIBS/$l.sh"
    done
}

# gives WANT COMMAND [ARG...]: what COMMAND prints is WANT; on failure
# both are shown.  Its exit status is not checked.
gives() {
    local want=$1 got
    shift
    got=$("$@") || true
    [ "$got" = "$want" ] || { printf 'got %q from %q, want %q\n' "$got" "$*" "$want"; return 1; }
}

# Values no byte of which may be lost or run: quotes, a newline, a tab,
# ESC, a backslash, %, $(...), = and non-ASCII.
hostile_values() {
    printf '%s\0' "host=x dbname='a b' user=\"u\"" $'two\nlines\tand a tab' $'esc\e[31m' 'back\slash\\' \
        '100% %41 %00' '$(touch /tmp/lm-pwned) `id` ;rm -rf /' 'k=v=w' 'café ünïcödé' "it's" '' ' ' '-' \
        $'\x01\x7f\xc2\x9b' 'postgresql://u@h:5432/d?sslmode=require&application_name=x'
}

@test "migrate-lib: a library run directly is refused; sourced, it defines functions and changes nothing" {
    local l
    for l in "$LIBS"/*.sh; do
        [ "${l##*/}" = constants.sh ] && continue
        run -2 bash "$l"
        assert_output "${l##*/}: a library of lm-migrate: source it, do not run it"
    done
    # sourced: no output, the umask, the directory and the environment as
    # they were, no file made
    local d=$BATS_TEST_TMPDIR/src
    mkdir -p "$d"
    cd "$d"
    run -0 bash -c 'before=$(umask; pwd; trap; env | sort)
                    for l in "$1"/constants.sh "$1"/[!c]*.sh "$1"/c*.sh; do source "$l" || exit 1; done
                    declare -F cmd_start cmd_status cmd_cutover cmd_verify cmd_abort cmd_clean cmd_detached cmd_ship \
                        cfg_enc lock_workdir spawn ssh_run psqlc gather_status verify_cmd parse_options >/dev/null || exit 3
                    after=$(umask; pwd; trap; env | sort)
                    [ "$before" = "$after" ] || exit 4' _ "$LIBS"
    assert_output ""
    [ -z "$(ls -A "$d")" ]
}

@test "migrate-lib: cfg_enc and cfg_dec: hostile values round trip, the encoding is plain, bad encodings are refused" {
    lib config
    local v e n=0
    while IFS= read -r -d '' v; do
        e=$(cfg_enc "$v")
        # one line of the safe characters only
        [[ $e =~ ^([A-Za-z0-9._~:/@+,=-]|%[0-9A-F]{2})*$ ]]
        cfg_dec "$e"
        [ "$CFG_VAL" = "$v" ]
        n=$((n + 1))
    done < <(hostile_values)
    [ "$n" -eq 14 ]
    [ "$(cfg_enc $'a b\n%')" = 'a%20b%0A%25' ]
    [ "$(LC_ALL=en_US.UTF-8 cfg_enc 'é')" = '%C3%A9' ]
    cfg_dec 'abc%41' && [ "$CFG_VAL" = abcA ]
    # not written by cfg_enc: refused
    for e in 'a b' '%0a' '%4' '%G0' 'a%00b' '\x41' "it's" '$x' 'a"b'; do
        run -1 cfg_dec "$e"
    done
}

@test "migrate-lib: save_config and load_config: hostile values come back as they were; a changed config is refused" {
    lib options workdir config
    options_init
    W=$BATS_TEST_TMPDIR/w
    mkdir -m 700 "$W"
    SOURCE=$'host=/tmp dbname=\'s ö\'\nuser=$(id)' TARGET='postgresql://u@h/d?x=%41&y=`z`' SLOT=lm_abc JOBS=7
    DECODE_HOST='user@[::1]' APPLY_HOST='' REMOTE_DIR=$'it\'s a $dir\t%2' RIF=1 TARGET_SCHEMA=existing SKIP_DB_SETTINGS='' STARTED=12345
    FILTERS=(--table $'a\nb' --exclude-table '"x"."y%z"') HYPERTABLES=('m:ts:1 day' "q'q:c")
    local want=("$SOURCE" "$TARGET" "$SLOT" "$JOBS" "$DECODE_HOST" "$APPLY_HOST" "$REMOTE_DIR" "$RIF" "$TARGET_SCHEMA" "$STARTED")
    local wf=("${FILTERS[@]}") wh=("${HYPERTABLES[@]}")
    save_config
    [ "$(head -1 "$W/config")" = "lm-migrate config 2" ]
    # no line breaks inside values: one line per key and element
    [ "$(wc -l <"$W/config")" -eq 18 ]
    options_init
    load_config
    local got=("$SOURCE" "$TARGET" "$SLOT" "$JOBS" "$DECODE_HOST" "$APPLY_HOST" "$REMOTE_DIR" "$RIF" "$TARGET_SCHEMA" "$STARTED")
    [ "${got[*]@Q}" = "${want[*]@Q}" ]
    [ "${FILTERS[*]@Q}" = "${wf[*]@Q}" ]
    [ "${HYPERTABLES[*]@Q}" = "${wh[*]@Q}" ]
    [ "$SPOOL" = "$REMOTE_DIR/spool" ]
    # the accessors
    [ "$(cfg SOURCE)" = "${want[0]}" ]
    [ "$(cfg JOBS)" = 7 ]
    run -1 cfg FILTERS
    run -1 cfg 'SOURCE TARGET'
    run -1 cfg PATH
    uses_ssh
    DECODE_HOST='' APPLY_HOST=''
    run -1 uses_ssh
    [ "$(spool_path)" = "$W/spool" ]
    # a value changed by hand, an unknown key, a key twice: exit 4
    sed -i 's/^SLOT=.*/SLOT=Bad%20slot/' "$W/config"
    run -4 load_config
    assert_output --partial "config: invalid SLOT"
    sed -i 's/^SLOT=.*/SLOT=lm_abc/; $a EVIL=1' "$W/config"
    run -4 load_config
    assert_output --partial 'unknown key "EVIL"'
    sed -i 's/^EVIL=1$/JOBS=3/' "$W/config"
    run -4 load_config
    assert_output --partial "JOBS given twice"
    printf 'SOURCE=$(id)\n' >"$W/config"
    run -4 load_config
    assert_output --partial "format of an older lm-migrate"
    # a work directory others may write to is not trusted
    chmod 770 "$W"
    run -9 load_config
    assert_output --partial "is not a directory of this user that only it may write to"
}

@test "migrate-lib: lsn_ge_hex compares an LSN with a segment's 16-digit end" {
    lib
    gives 1 lsn_ge_hex 0/16B3748 00000000016B3748
    gives 0 lsn_ge_hex 0/16B3748 00000000016B3749
    gives 1 lsn_ge_hex 0/16B3749 00000000016B3748
    # the high half counts first; hex digits in either case
    gives 1 lsn_ge_hex 1/0 00000000FFFFFFFF
    gives 0 lsn_ge_hex 0/FFFFFFFF 0000000100000000
    gives 1 lsn_ge_hex a/b 0000000A0000000B
    gives 1 lsn_ge_hex FFFFFFFF/FFFFFFFF FFFFFFFFFFFFFFFF
}

@test "migrate-lib: human_bytes, human_secs, in_range and exit_words" {
    lib
    gives "0 B" human_bytes 0
    gives "1023 B" human_bytes 1023
    gives "1.0 KB" human_bytes 1024
    gives "1.5 KB" human_bytes 1536
    gives "5.0 GB" human_bytes $((5 * 1024 * 1024 * 1024))
    gives "3.0 PB" human_bytes $((3 * 1024 ** 5))
    gives "2048.0 PB" human_bytes $((2048 * 1024 ** 5))
    gives "0 B" human_bytes ''
    gives 0s human_secs 0
    gives 59s human_secs 59.9
    gives 1m00s human_secs 60
    gives 59m59s human_secs 3599
    gives 1h00m human_secs 3600
    gives 25h01m human_secs 90061
    gives 0s human_secs ''
    in_range 1 1 64 && in_range 64 1 64
    run -1 in_range 0 1 64
    run -1 in_range 65 1 64
    run -1 in_range 1x 1 64
    run -1 in_range '' 1 64
    run -1 in_range 1234567890 1 9999999999
    gives "exited with status 4" exit_words 4
    gives "was killed by signal 9 (KILL)" exit_words 137
    gives "was killed by signal 15 (TERM)" exit_words 143
}

@test "migrate-lib: shq quotes hostile arguments for any POSIX shell (dash), ssh's remote side" {
    lib
    local args=() v
    while IFS= read -r -d '' v; do args+=("$v"); done < <(hostile_values)
    args+=("'" "''" "a'b'c" '\' '"' '*' '~' '#x' '!x')
    local sh got=()
    for sh in sh bash dash; do
        command -v "$sh" >/dev/null || continue
        # the remote shell gets the string as ssh passes it: one command line
        got=()
        while IFS= read -r -d '' v; do got+=("$v"); done < <(LC_ALL=C "$sh" -c "printf '%s\\0' $(LC_ALL=C shq "${args[@]}")")
        [ "${#got[@]}" -eq "${#args[@]}" ]
        [ "${got[*]@Q}" = "${args[*]@Q}" ]
    done
    gives "'it'\\''s'" shq "it's"
    gives "'a' 'b'" shq a b
    [ -z "$(shq)" ]
}

@test "migrate-lib: lit makes SQL literals, E'' with a backslash" {
    lib
    gives "'abc'" lit abc
    gives "'it''s'" lit "it's"
    gives "E'a\\\\b'" lit 'a\b'
    gives "E'\\\\'''" lit "\\'"
    gives "''" lit ''
}

@test "migrate-lib: printable escapes control characters, C1 codes included, and keeps other bytes" {
    lib
    gives 'a\nb\tc\rd' printable $'a\nb\tc\rd'
    gives '\x1b[31mred' printable $'\e[31mred'
    gives 'x\x01\x7fy' printable $'x\x01\x7fy'
    gives '\xc2\x9b2J' printable $'\xc2\x9b2J'
    gives 'café, naïve | "q"' printable 'café, naïve | "q"'
    # a byte that is no character in the locale passes as it is
    gives $'\xff\xfe' printable $'\xff\xfe'
}

@test "migrate-lib: valid_host takes ssh destinations and refuses what ssh would read as an option" {
    lib config
    local h
    for h in db1 db1.example.com postgres@db1 '[::1]' 'fe80::1%eth0' u_1@10.0.0.1 a-b; do
        valid_host "$h" || { echo "refused: $h"; false; }
    done
    for h in -oProxyCommand=x '-p' '' 'a b' 'a;b' 'a$(id)' $'a\nb' "a'b" 'a/b' '*'; do
        run -1 valid_host "$h"
    done
}

@test "migrate-lib: has_password finds a password in a connection string or URI, encoded too" {
    lib
    local c
    for c in 'host=x password=y' 'password =y host=x' $'host=x\npassword=y' 'postgresql://u:p@h/d' 'postgres://u:@h/d' \
        'postgresql://u@h/d?password=x' 'postgresql://u@h/d?sslmode=require&password=x' 'postgresql://u@h/d?%70assword=x'; do
        has_password "$c" || { echo "not found in: $c"; false; }
    done
    for c in 'host=x user=y' 'postgresql://u@h/d' 'postgresql://h/d?user=password' 'host=x dbname=password'; do
        run -1 has_password "$c"
    done
}

@test "migrate-lib: parse_options and check_command: each command's options, values and usage errors" {
    lib usage options workdir
    # parse_options NAME...: in a subshell, the status and what it says
    po() { (options_init; parse_options "$@" && set_workdir && check_command && declare -p CMD SOURCE JOBS TIMEOUT TARGET_SCHEMA REHEARSE FILTERS VERIFY_TABLES W); }
    run -0 po --workdir=/tmp/w -s 'host=a' start --jobs=8 --table 't 1' --exclude-table x --target-schema existing
    assert_output --partial 'CMD="start"'
    assert_output --partial 'JOBS="8"'
    assert_output --partial 'TARGET_SCHEMA="existing"'
    assert_output --partial 'FILTERS=([0]="--table" [1]="t 1" [2]="--exclude-table" [3]="x")'
    assert_output --partial 'VERIFY_TABLES=([0]="t 1")'
    assert_output --partial 'W="/tmp/w"'
    run -0 po status
    assert_output --partial 'TARGET_SCHEMA="restore"'
    assert_output --partial 'TIMEOUT="300"'
    # an option of another command
    local o c
    for o in --detach --resume --no-wait --replica-identity-full --skip-db-settings '--target-schema restore' \
        '--decode-host h' '--apply-host h'; do
        for c in status cutover verify abort clean _ship; do
            # shellcheck disable=SC2086
            run -2 po "$c" $o
            assert_output --partial "option ${o%% *} is not valid for \"$c\""
        done
        # shellcheck disable=SC2086
        run -0 po start $o
        # shellcheck disable=SC2086
        run -0 po _detached $o
    done
    run -2 po start --json
    assert_output --partial 'option --json is not valid for "start"'
    run -0 po status --json
    run -2 po verify --fence
    assert_output --partial 'option --fence is not valid for "verify"'
    run -2 po abort --keep
    assert_output --partial 'option --keep is not valid for "abort"'
    run -0 po cutover --fence --keep --timeout=5
    # --rehearse is cutover's; --json there only with it, --keep never with it
    run -0 po cutover --rehearse --fence --json --timeout=5
    assert_output --partial 'REHEARSE="1"'
    run -2 po status --rehearse
    assert_output --partial 'option --rehearse is not valid for "status"'
    run -2 po cutover --json
    assert_output --partial 'option --json is valid for "cutover" only with --rehearse'
    run -2 po cutover --rehearse --keep
    assert_output --partial 'option --keep is not valid with --rehearse'
    # values
    run -2 po start --jobs 0
    assert_output --partial 'invalid --jobs "0": must be in range 1..64'
    run -2 po start --jobs=65
    run -2 po cutover --timeout 604801
    assert_output --partial 'invalid --timeout "604801"'
    run -2 po start --target-schema=other
    assert_output --partial 'invalid --target-schema "other": use restore or existing'
    run -2 po start --workdir
    assert_output --partial 'option --workdir needs a value'
    run -2 po start --source 'host=a password=b'
    assert_output --partial 'the source connection string contains a password'
    refute_output --partial 'password=b'
    # commands
    run -2 po
    assert_output --partial 'no command given (start, status, cutover, verify, report, abort, clean)'
    run -2 po bogus
    assert_output --partial 'unknown command "bogus"'
    run -2 po 'start status'
    assert_output --partial 'unknown command "start status"'
    run -2 po status verify
    assert_output --partial 'too many arguments: "verify"'
    run -2 po status -- x
    assert_output --partial 'too many arguments: "x"'
    run -2 po --frobnicate status
    assert_output --partial 'unrecognized option "--frobnicate"'
    assert_output --partial 'Try "lm-migrate --help" for more information.'
}

@test "migrate-lib: the lock: a second holder of the work directory is refused, naming the first" {
    lib workdir stages
    W=$BATS_TEST_TMPDIR/w
    CMD=cutover
    mkdir -m 700 "$W"
    # a holder: flock on the lock file, its line written as lock_workdir does
    # (its pid taken outside the $(...), which is a process of its own)
    ( p=$BASHPID; exec 9>>"$W/lock"; flock 9; echo "$p $(proc_start_time "$p") cutover" >"$W/lock"; exec sleep 30 ) &
    local holder=$!
    wait_for 10 test -s "$W/lock"
    run -1 lock_workdir status
    assert_output --partial "is in use: lm-migrate cutover (pid $holder) is running there"
    kill "$holder"
    wait "$holder" 2>/dev/null || true
    # free again: taken, and the file names this shell
    lock_workdir "cutover"
    [ "$(cut -d' ' -f1,3 "$W/lock")" = "$$ cutover" ]
}

@test "migrate-lib: the work directory's phase, and lm-migrate finds its libraries through a symbolic link" {
    lib workdir
    W=$BATS_TEST_TMPDIR/w
    mkdir -m 700 "$W"
    [ "$(phase)" = none ]
    run -0 set_phase copy
    assert_output "lm-migrate: phase: copy"
    [ "$(phase)" = copy ]
    ln -s "$MIGRATE/lm-migrate" "$BATS_TEST_TMPDIR/lmm"
    run -0 "$BATS_TEST_TMPDIR/lmm" --version
    assert_output "lm-migrate (lm) $LM_VERSION"
    # the libraries missing: a clear error, exit 1
    mkdir "$BATS_TEST_TMPDIR/bin"
    cp "$MIGRATE/lm-migrate" "$BATS_TEST_TMPDIR/bin/"
    run -1 "$BATS_TEST_TMPDIR/bin/lm-migrate" --help
    assert_output --partial "its libraries are not in $BATS_TEST_TMPDIR/bin/lib"
}

@test "migrate-lib: make install puts the libraries beside lm-migrate's path; the installed one finds them, and uninstall removes them" {
    local d=$BATS_TEST_TMPDIR/inst
    run -0 make -C "$LM_ROOT" install DESTDIR="$d" PREFIX=/usr
    [ -f "$d/usr/lib/lm/lm-migrate/util.sh" ]
    [ -f "$d/usr/lib/lm/lm-migrate/cmd-start.sh" ]
    [ -f "$d/usr/lib/lm/lm-migrate/constants.sh" ]
    [ ! -x "$d/usr/lib/lm/lm-migrate/util.sh" ]
    # the same help as the source tree's, from the installed libraries
    run -0 "$d/usr/bin/lm-migrate" --help
    [ "$output" = "$("$MIGRATE/lm-migrate" --help)" ]
    run -0 "$d/usr/bin/lm-migrate" --version
    assert_output "lm-migrate (lm) $(sed -n 's/^const LM_VERSION //p' "$LM_ROOT/common/constants.tab")"
    run -2 "$d/usr/bin/lm-migrate" status --fence
    assert_output --partial 'option --fence is not valid for "status"'
    # a command's own file is found too
    run -2 "$d/usr/bin/lm-migrate" status --workdir "$BATS_TEST_TMPDIR/none"
    assert_output "lm-migrate: error: no migration in $BATS_TEST_TMPDIR/none (no config file)"
    run -0 "$d/usr/bin/lm-migrate" abort --workdir "$BATS_TEST_TMPDIR/none"
    assert_output "lm-migrate: nothing to abort in $BATS_TEST_TMPDIR/none"
    # linked from elsewhere: found through the link's target
    ln -s "$d/usr/bin/lm-migrate" "$BATS_TEST_TMPDIR/lm-migrate-link"
    run -0 "$BATS_TEST_TMPDIR/lm-migrate-link" --help
    assert_output --partial "Usage:"
    # not the source tree's libraries: without the installed ones it fails
    mv "$d/usr/lib/lm/lm-migrate" "$d/usr/lib/lm/moved"
    run -1 "$d/usr/bin/lm-migrate" --help
    assert_output --partial "its libraries are not in"
    mv "$d/usr/lib/lm/moved" "$d/usr/lib/lm/lm-migrate"
    run -0 make -C "$LM_ROOT" uninstall DESTDIR="$d" PREFIX=/usr
    [ ! -e "$d/usr/bin/lm-migrate" ]
    [ ! -e "$d/usr/lib/lm" ]
}

@test "migrate-lib: status --watch's bar and SECONDS, --prometheus's label escaping and samples" {
    lib usage options workdir status cmd-status
    po() { (options_init; parse_options "$@" && set_workdir && check_command && declare -p CMD WATCH PROMETHEUS JSON); }
    # the bar: width, fill rounded down, a done count past the total full
    assert_equal "$(text_bar 5 10 20)" "[##########..........]  50%"
    assert_equal "$(text_bar 0 3 6)" "[......]   0%"
    assert_equal "$(text_bar 2 3 6)" "[####..]  66%"
    assert_equal "$(text_bar 3 3 6)" "[######] 100%"
    assert_equal "$(text_bar 5000 3205 4)" "[####] 100%"
    assert_equal "$(text_bar 123456789012 987654321098 10)" "[#.........]  12%"
    # no total (unknown, 0, not a number): no bar
    assert_equal "$(text_bar 1 0)" ""
    assert_equal "$(text_bar 1 '')" ""
    assert_equal "$(text_bar x 5)" ""
    # --watch SECONDS: above 0, at most a day, a plain decimal number
    local s
    for s in 1 2 0.5 .25 86400 10.125; do valid_interval "$s" || { echo "refused: $s"; false; }; done
    for s in 0 0.0 -1 '' abc 1e3 0x10 86401 1.2345 ' 1' '1 '; do
        ! valid_interval "$s" || { echo "accepted: $s"; false; }
    done
    run -0 po status --watch
    assert_output --partial 'WATCH="2"'
    run -0 po status --watch 0.5
    assert_output --partial 'WATCH="0.5"'
    run -0 po status --watch=3 --json
    assert_output --partial 'WATCH="3"'
    run -0 po --watch status
    assert_output --partial 'WATCH="2"'
    run -2 po status --watch=
    assert_output --partial 'invalid --watch ""'
    run -2 po status --watch 0
    run -2 po status --prometheus --watch
    run -2 po status --prometheus --json
    run -0 po status --prometheus
    assert_output --partial 'PROMETHEUS="1"'
    run -2 po cutover --watch
    run -2 po start --prometheus
    # a label value: backslash, double quote and newline escaped, other
    # bytes as they are; a byte that is not UTF-8 as U+FFFD
    assert_equal "$(prom_label $'a\\b"c\nd\te\n')" 'a\\b\"c\nd'$'\t''e\n'
    assert_equal "$(prom_label $'x\xffy')" $'x\xef\xbf\xbdy'
    assert_equal "$(prom_label '')" ""
    # unescape S: a label value read back
    unescape() {
        local s=$1 out='' i c
        for ((i = 0; i < ${#s}; i++)); do
            c=${s:i:1}
            if [ "$c" = '\' ]; then
                i=$((i + 1)); c=${s:i:1}
                [ "$c" = n ] && c=$'\n'
            fi
            out+=$c
        done
        printf '%s' "$out"
    }
    local v u
    while IFS= read -r -d '' v; do
        u=$(prom_label "$v")
        # nothing but the three escapes after a backslash, no bare quote or newline
        [[ $u =~ ^([^\"\\$'\n']|\\[\\\"n])*$ ]] || { echo "badly escaped: $(printf '%q' "$u")"; false; }
        # unescaped, the value again (each is UTF-8)
        u=$(unescape "$u"; printf .); u=${u%.}
        [ "$u" = "$v" ] || { echo "$(printf '%q' "$v") came back as $(printf '%q' "$u")"; false; }
    done < <(hostile_values)
    # samples: unknown values (empty) left out, with HELP and TYPE when none is left
    assert_equal "$(prom lm_migrate_x gauge 'An x.' '' 5 'k="a"' '' 'k="b"' 0)" \
        "# HELP lm_migrate_x An x.
# TYPE lm_migrate_x gauge
lm_migrate_x 5
lm_migrate_x{k=\"b\"} 0"
    assert_equal "$(prom lm_migrate_y gauge 'A y.' '' '')" ""
    # a WAL position in bytes
    assert_equal "$(lsn_bytes 0/16B3748)" $((16#16B3748))
    assert_equal "$(lsn_bytes 3B/2A000F10)" $(((16#3B << 32) + 16#2A000F10))
    assert_equal "$(lsn_bytes bogus)" ""
}

@test "migrate-lib: report's HTML escaping, connection strings without a password, history lines" {
    lib usage options workdir history cmd-report
    po() { (options_init; parse_options "$@" && set_workdir && check_command && declare -p CMD OUTPUT); }
    run -0 po report -o "$BATS_TEST_TMPDIR/r.html"
    assert_output --partial "OUTPUT=\"$BATS_TEST_TMPDIR/r.html\""
    run -0 po report --output=x.html
    assert_output --partial 'OUTPUT="x.html"'
    run -2 po status --output x.html
    assert_output --partial 'option --output is not valid for "status"'
    # every byte HTML gives a meaning to, as an entity; control characters
    # as printable shows them; the rest as it is
    assert_equal "$(html_escape $'a<b>&"\'c')" 'a&lt;b&gt;&amp;&quot;&#39;c'
    assert_equal "$(html_escape '&amp;')" '&amp;amp;'
    assert_equal "$(html_escape $'x\ny\e[31m')" 'x\ny\x1b[31m'
    assert_equal "$(html_escape 'café')" 'café'
    assert_equal "$(html_escape '')" ''
    # the downtime as the cutover printed it, whatever JSON made of it
    assert_equal "$(secs2 1.6)" 1.60
    assert_equal "$(secs2 0.5)" 0.50
    assert_equal "$(secs2 12)" 12.00
    # no hostile value leaves a raw < > " ' or a & that starts no entity
    local v e
    while IFS= read -r -d '' v; do
        e=$(html_escape "$v<>&\"'")
        [[ $e != *[\<\>\"\']* ]] || { echo "raw: $e"; false; }
        ! grep -qE '&($|[^a-z#]|[a-z]+[^a-z;]|#[0-9]+[^0-9;])' <<<"$e" || { echo "bare &: $e"; false; }
    done < <(hostile_values)
    # a password in a connection string is never shown
    assert_equal "$(conn_display 'host=h password=s3cr3t dbname=d')" 'host=h password=(hidden) dbname=d'
    assert_equal "$(conn_display "password = 'a b\\' c' user=u")" 'password=(hidden) user=u'
    assert_equal "$(conn_display 'postgresql://u:s3cr3t@h:5432/d?sslmode=require&password=x')" \
        'postgresql://u:(hidden)@h:5432/d?sslmode=require&password=(hidden)'
    assert_equal "$(conn_display 'host=h dbname=d user=u')" 'host=h dbname=d user=u'
    # history_append: one line a record; a line a kill cut short is ended
    # first, and the report's reader skips it
    W=$BATS_TEST_TMPDIR
    history_append '{"time":1,"event":"sample"}'
    printf '{"time":2,"ev' >>"$W/history.jsonl"
    history_append '{"time":3,"event":"sample"}'
    assert_equal "$(wc -l <"$W/history.jsonl")" 3
    assert_equal "$(report_records | jq -sc 'map(.time)')" '[1,3]'
    # a chart: gnuplot's SVG without URL (no namespace, no xlink); with no
    # figure known, a line saying so
    R_DIR=$BATS_TEST_TMPDIR R_XMAX=10 R_T0=0 R_MARKS='set arrow 1 from 5, graph 0 to 5, graph 1 nohead'
    printf '0\t1\t?\n4\t3\t?\n' >"$R_DIR/samples.tsv"
    run -0 report_chart t 'A <chart>' 'y' '' 'plot "samples.tsv" using 1:2 with lines title "a"'
    [[ $output == '<svg'* ]] && [[ $output == *'</svg>' ]]
    [[ $output != *'http'* && $output != *'xmlns'* && $output != *'<?xml'* ]]
    run -0 report_chart t 'A <chart>' 'y' '' 'plot "samples.tsv" using 1:3 with lines title "b"'
    assert_output '<p class="muted">A &lt;chart&gt;: no figures recorded yet.</p>'
    # LM_HISTORY_INTERVAL: the default, a value, a usage error
    assert_equal "$(unset LM_HISTORY_INTERVAL; history_interval)" 10
    assert_equal "$(LM_HISTORY_INTERVAL=0.5 history_interval)" 0.5
    LM_HISTORY_INTERVAL=0 run -2 history_interval
    assert_output --partial 'invalid LM_HISTORY_INTERVAL "0"'
}
