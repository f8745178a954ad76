# Shared test helpers: throwaway PostgreSQL clusters and paths.
#
# Clusters run as the unprivileged "postgres" user when the tests run as root
# (PostgreSQL refuses root), in a directory of their own made with mktemp -d
# (bats' temp dirs are 0700 and owned by root), on a free port, with
# wal_level=logical. Every cluster a test file starts is stopped in
# teardown_file, also when tests fail; scripts/run-tests sweeps leftovers.

LM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LM_ROOT
for _p in lm-slot lm-snapshot lm-decode lm-apply lm-cat lm-migrate; do
    PATH="$LM_ROOT/bin/$_p:$PATH"
done
PATH="$LM_ROOT/tests/tools:$PATH"
export PATH
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export PGBIN
# pagila, in the repository (PostgreSQL licence: tests/fixtures/pagila/LICENSE.txt)
export LM_FIXTURES="${LM_FIXTURES:-$LM_ROOT/tests/fixtures}"

# valgrind for the programs when VALGRIND=1 (see lm_run)
load_bats_libs() {
    if [ -f /usr/lib/bats/bats-support/load.bash ]; then
        load /usr/lib/bats/bats-support/load.bash
        load /usr/lib/bats/bats-assert/load.bash
    fi
}
load_bats_libs

# The directory all clusters of this test file live in.
lm_cluster_root() {
    if [ -z "${LM_CLUSTER_ROOT:-}" ] || [ ! -d "$LM_CLUSTER_ROOT" ]; then
        # under the run's own directory when scripts/run-tests made one, so
        # that its sweep stops only this run's servers
        local parent=${LM_TEST_RUN_DIR:-/tmp}
        LM_CLUSTER_ROOT=$(mktemp -d "$parent/lm-test.XXXXXX")
        # the postgres user must reach it; /tmp itself is left as it is
        # (1777: a chmod would take its sticky bit and others' access)
        [ "$parent" = /tmp ] || chmod 755 "$parent" 2>/dev/null
        chmod 755 "$LM_CLUSTER_ROOT"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$LM_CLUSTER_ROOT"
        export LM_CLUSTER_ROOT
    fi
    echo "$LM_CLUSTER_ROOT"
}

# Run a command as the cluster owner.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Run a command with every file descriptor above 2 closed: a server or
# background process that kept bats' pipes open would hang the suite.
no_fds() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
    done
    "$@"
}

# Start a background command detached from bats' descriptors:
#   bg_start VAR command...   (sets VAR to its pid)
bg_start() {
    local __var=$1; shift
    # exec: the pid is the program's own, so kill -9 reaches it
    ( no_fds exec "$@" ) &
    printf -v "$__var" '%s' "$!"
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A free TCP port, reserved with a lock directory so parallel suites differ.
free_port() {
    local p
    mkdir -p /tmp/lm-ports && chmod 1777 /tmp/lm-ports 2>/dev/null
    for _ in $(seq 1 200); do
        # below Linux's ephemeral range (32768-60999): a client connection's
        # local port there made a cluster's bind fail now and then
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
        port_in_use "$p" && continue
        if mkdir "/tmp/lm-ports/$p" 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

# The postgresql.conf lines of a cluster with TimescaleDB (vendor/timescaledb,
# built by scripts/install-deps tsdb): pg_start NAME "${TSDB_CONF[@]}", then
# CREATE EXTENSION timescaledb in a database.
# shellcheck disable=SC2034  # for the suites
TSDB_CONF=("shared_preload_libraries = 'timescaledb'" "timescaledb.telemetry_level = off")
# TimescaleDB is installed (the vendored version's library and script)
tsdb_installed() {
    [ -f /usr/lib/postgresql/15/lib/timescaledb.so ] &&
        ls /usr/share/postgresql/15/extension/timescaledb--*.sql >/dev/null 2>&1
}

# pg_start NAME [postgresql.conf lines...]
# Creates and starts cluster NAME; sets NAME_PORT, NAME_DIR, NAME_CONN.
pg_start() {
    local name=$1; shift
    local root dir port
    # not root=$(lm_cluster_root): a subshell would lose the export, so each
    # cluster got a root of its own and pg_stop_all in teardown_file saw none
    lm_cluster_root >/dev/null
    root=$LM_CLUSTER_ROOT
    dir="$root/$name"
    port=$(free_port) || return 1
    if [ ! -d "$dir" ]; then
        as_pg "$PGBIN/initdb" -D "$dir" -U postgres -A trust --no-sync -E UTF8 \
            --locale=C.UTF-8 >"$root/$name.initdb.log" 2>&1 || {
            cat "$root/$name.initdb.log" >&2; return 1; }
    fi
    cat >>"$dir/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_worker_processes = 16
max_connections = 100
fsync = off
full_page_writes = off
shared_buffers = 64MB
logging_collector = off
log_min_messages = warning
CONF
    local line
    for line in "$@"; do
        echo "$line" >>"$dir/postgresql.conf"
    done
    local try
    for try in 1 2 3; do
        ( no_fds as_pg "$PGBIN/pg_ctl" -D "$dir" -l "$root/$name.log" -w -t 60 start >/dev/null ) && break
        # another process took the port between the check and the bind:
        # another port (the last port line of the file wins)
        if [ "$try" -lt 3 ] && grep -q 'could not bind.*Address already in use' "$root/$name.log"; then
            port=$(free_port) || return 1
            echo "port = $port" >>"$dir/postgresql.conf"
            continue
        fi
        tail -20 "$root/$name.log" >&2
        return 1
    done
    echo "$dir" >>"$root/clusters"
    local up=${name^^}
    printf -v "${up}_PORT" '%s' "$port"
    printf -v "${up}_DIR" '%s' "$dir"
    printf -v "${up}_CONN" '%s' "host=127.0.0.1 port=$port dbname=postgres user=postgres"
    export "${up}_PORT" "${up}_DIR" "${up}_CONN"
    # also remembered in a file so that tests in other bats processes see them
    cat >"$root/$name.env" <<ENV
export ${up}_PORT=$port ${up}_DIR=$dir ${up}_CONN="host=127.0.0.1 port=$port dbname=postgres user=postgres"
ENV
}

# Re-read what pg_start exported in setup_file (bats runs tests in subshells).
pg_env() {
    local f
    for f in "${LM_CLUSTER_ROOT:-/nonexistent}"/*.env; do
        # shellcheck source=/dev/null
        [ -f "$f" ] && . "$f"
    done
    return 0
}

# pg_start_pair [postgresql.conf lines...]: a suite's setup_file with a
# source and a target cluster, both with the lines given
pg_start_pair() {
    pg_start source "$@" || return 1
    pg_start target "$@"
}

# tsdb_start_pair: pg_start_pair with TimescaleDB preloaded; fails, saying
# how to install it, where TimescaleDB is not installed
tsdb_start_pair() {
    tsdb_installed || {
        echo "TimescaleDB is not installed: run scripts/install-deps tsdb" >&2
        return 1
    }
    pg_start_pair "${TSDB_CONF[@]}"
}

# test_env: a test's setup: the clusters' variables (pg_env) and T, the
# test's own temporary directory
test_env() {
    pg_env
    # shellcheck disable=SC2034  # for the suites
    T=$BATS_TEST_TMPDIR
}

# holder_start DIR COMMAND...: COMMAND in the background reading the fifo
# DIR/in (made afresh, then held open as fd 7: closing fd 7 ends its input),
# writing DIR/out and DIR/err; sets HOLD_PID
holder_start() {
    local dir=$1; shift
    rm -f "$dir/in" "$dir/out" "$dir/err"
    mkfifo "$dir/in"
    # shellcheck disable=SC2016  # the script's own arguments
    bg_start HOLD_PID bash -c 'i=$1 o=$2 e=$3; shift 3; exec "$@" <"$i" >"$o" 2>"$e"' _ "$dir/in" "$dir/out" "$dir/err" "$@"
    exec 7>"$dir/in"
}

# psql_snapshot DIR DB: a psql session on the source's DB (holder_start DIR)
# that exports a snapshot in a repeatable read transaction and holds it
# until fd 7 is closed; sets SNAP and HOLD_PID
psql_snapshot() {
    holder_start "$1" psql -X -At -h 127.0.0.1 -p "$SOURCE_PORT" -U postgres -d "$2"
    echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT pg_export_snapshot();" >&7
    wait_for 30 grep -q -- '-' "$1/out" || { cat "$1/err" >&2; return 1; }
    SNAP=$(grep -- '-' "$1/out" | tail -1)
}

# slot_snapshot DIR LM-SLOT-CREATE-OPTIONS...: lm-slot create with the
# options (--hold among them; holder_start DIR), its snapshot held until fd 7
# is closed; sets SNAP, SYNC_LSN (its consistent point) and HOLD_PID
# shellcheck disable=SC2034  # for the suites
slot_snapshot() {
    local dir=$1; shift
    holder_start "$dir" lm-slot create "$@"
    wait_for 30 grep -q '^snapshot:' "$dir/out" || { cat "$dir/err" >&2; return 1; }
    SNAP=$(sed -n 's/^snapshot: *//p' "$dir/out")
    SYNC_LSN=$(sed -n 's/^consistent_point: *//p' "$dir/out")
}

pg_restart() {   # pg_restart NAME [fast|immediate]
    local up=${1^^}
    local dir_var="${up}_DIR"
    ( no_fds as_pg "$PGBIN/pg_ctl" -D "${!dir_var}" -l "$LM_CLUSTER_ROOT/$1.log" -w -t 60 -m "${2:-fast}" restart >/dev/null )
}

pg_stop() {   # pg_stop NAME
    local up=${1^^}
    local dir_var="${up}_DIR" port_var="${up}_PORT"
    as_pg "$PGBIN/pg_ctl" -D "${!dir_var}" -w -t 60 -m fast stop >/dev/null 2>&1 || true
    rmdir "/tmp/lm-ports/${!port_var}" 2>/dev/null || true
}

# Stop every cluster this test file started and remove their files.
pg_stop_all() {
    local root=${LM_CLUSTER_ROOT:-}
    [ -n "$root" ] && [ -d "$root" ] || return 0
    if [ -f "$root/clusters" ]; then
        local dir
        while read -r dir; do
            [ -d "$dir" ] || continue
            if [ -f "$dir/postmaster.pid" ]; then
                local port
                port=$(sed -n 4p "$dir/postmaster.pid" 2>/dev/null)
                as_pg "$PGBIN/pg_ctl" -D "$dir" -w -t 30 -m immediate stop >/dev/null 2>&1 || true
                [ -n "$port" ] && rmdir "/tmp/lm-ports/$port" 2>/dev/null
            fi
        done <"$root/clusters"
    fi
    [ -n "${LM_KEEP_CLUSTERS:-}" ] || rm -rf "$root"
}

# psql against cluster NAME: q NAME [psql args...] "SQL"
q() {
    local up=${1^^}; shift
    local port_var="${up}_PORT"
    psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${!port_var}" -U postgres -d "${PGDATABASE_TEST:-postgres}" "$@"
}

# Ordered content hash of a table: qhash NAME TABLE (table as SQL text)
qhash() {
    q "$1" -c "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text COLLATE \"C\")), '') FROM $2 t"
}

# Every user table's hash on cluster NAME, one line per table (of database
# $PGDATABASE_TEST when set); names with any byte (a newline too: they come
# NUL-terminated) are kept whole.
db_hashes() {
    local name=$1 t
    q "$name" -0 -c "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'lm') ORDER BY 1" |
        while IFS= read -r -d '' t; do
            printf '%s %s\n' "$t" "$(qhash "$name" "$t")"
        done
}

# ------------------------------------------------ every program's front door
# The first tests of each program's suite, after PostgreSQL's
# program_help_ok, program_version_ok and program_options_handling_ok
# (src/test/perl/PostgreSQL/Test/Utils.pm).  PROG... is a program, or a
# program and its subcommand (lm-slot create).  Each leaves bats' $output
# (stdout), $stderr and $status of its run for the suite's own checks.
# Every check returns at once on failure, also where errexit is off (under
# run, or in a condition).

# program_help_ok PROG...: --help exits 0 with a usage on stdout and
# nothing on stderr
# shellcheck disable=SC2154  # stderr: set by bats' run
program_help_ok() {
    run -0 --separate-stderr "$@" --help || return 1
    assert_output --partial "Usage:" || return 1
    assert_equal "$stderr" ""
}

# program_version_ok PROG...: --version exits 0 with "PROG (lm) X.Y[.Z]"
# (PROG the program's own name) as the only line on stdout, nothing on stderr
# shellcheck disable=SC2154  # stderr: set by bats' run
program_version_ok() {
    run -0 --separate-stderr "$@" --version || return 1
    assert_output --regexp "^$1 \\(lm\\) [0-9]+\\.[0-9]+(\\.[0-9]+)?\$" || return 1
    assert_equal "$stderr" ""
}

# program_options_handling_ok PROG...: a bad option (--not-a-valid-option)
# exits 2 with nothing on stdout; stderr names the option and ends in
# 'Try "PROG... --help" for more information.'
# shellcheck disable=SC2154  # output, stderr, stderr_lines: set by bats' run
program_options_handling_ok() {
    run -2 --separate-stderr "$@" --not-a-valid-option || return 1
    assert_equal "$output" "" || return 1
    [[ $stderr == *--not-a-valid-option* ]] || { echo "stderr does not name the option: $stderr"; return 1; }
    assert_equal "${stderr_lines[-1]}" "Try \"$* --help\" for more information."
}

# ------------------------------------------------ one database on both sides
# The suites that take a database of the source to the same-named one of
# the target (lm-apply, faults) work on database $DB of each cluster.

# use_db NAME: work on database NAME; S and TG are its connection strings
# shellcheck disable=SC2034  # S and TG are for the suites
use_db() {
    DB=$1
    S="host=127.0.0.1 port=$SOURCE_PORT dbname=$DB user=postgres"
    TG="host=127.0.0.1 port=$TARGET_PORT dbname=$DB user=postgres"
}
# both_dbs NAME [SCALE]: database NAME on the source and on the target (and
# use_db it); with SCALE, pgbench's tables of that scale on the source
both_dbs() {
    use_db "$1"
    q source -c "CREATE DATABASE \"$1\""
    q target -c "CREATE DATABASE \"$1\""
    [ -z "${2:-}" ] || pgbench -i -q -s "$2" -h 127.0.0.1 -p "$SOURCE_PORT" -U postgres "$1" >"$BATS_TEST_TMPDIR/pgbench-init.log" 2>&1
}
# psql on database $DB of the source, of the target: src|tgt [psql args...]
src() { PGDATABASE_TEST=$DB q source "$@"; }
tgt() { PGDATABASE_TEST=$DB q target "$@"; }
# hashes NAME: db_hashes of database $DB on cluster NAME
hashes() { PGDATABASE_TEST=$DB db_hashes "$1"; }
# same [SDB]: database $DB of the target equals database SDB (default: $DB)
# of the source, table by table, and has tables; the hashes are left in
# $BATS_TEST_TMPDIR/src.hash and tgt.hash
same() {
    local sdb=${1:-$DB}
    DB=$sdb hashes source >"$BATS_TEST_TMPDIR/src.hash"
    hashes target >"$BATS_TEST_TMPDIR/tgt.hash"
    diff "$BATS_TEST_TMPDIR/src.hash" "$BATS_TEST_TMPDIR/tgt.hash"
    [ -s "$BATS_TEST_TMPDIR/src.hash" ]
}

# LSN comparisons in the shell, without a server: lsn_le A B is A <= B
lsn_int() { local h=${1%/*} l=${1#*/}; echo $(( (16#$h << 32) | 16#$l )); }
lsn_le() { [ "$(lsn_int "$1")" -le "$(lsn_int "$2")" ]; }
lsn_lt() { [ "$(lsn_int "$1")" -lt "$(lsn_int "$2")" ]; }

# Wait until a command succeeds: wait_for SECONDS command...
wait_for() {
    local secs=$1; shift
    local end=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$end" ] && return 1
        sleep 0.2
    done
}

# Run a program under valgrind when VALGRIND=1 (memcheck, leaks not fatal).
lm_vg() {
    if [ -n "${VALGRIND:-}" ] && [ "$VALGRIND" != 0 ]; then
        valgrind -q --error-exitcode=99 --track-origins=yes "$@"
    else
        "$@"
    fi
}

# An sshd of the test's own on a loopback port, with generated keys; LM_SSH
# points lm-migrate at it.  Host "lmtest" has the lm programs in its PATH,
# host "bare" (the same server) does not.
start_sshd() {
    local d=$BATS_TEST_TMPDIR/ssh
    mkdir -p "$d"
    [ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$d/hostkey" || return 1
    ssh-keygen -q -t ed25519 -N '' -f "$d/userkey" || return 1
    cp "$d/userkey.pub" "$d/authorized_keys"
    # a home of its own: the shell sshd starts reads no ~/.bashrc of the
    # machine's (one that runs pyenv init made each ssh command take
    # seconds, and a stage's host is a bare one anyway)
    mkdir -m 700 "$d/home"
    chmod 600 "$d/authorized_keys"
    SSHD_PORT=$(free_port) || return 1
    # other users' keys (see dash_user_or_skip): sshd reads them as that
    # user, who cannot enter the test's 0700 directory
    local kd
    kd=$(mktemp -d /tmp/lm-sshkeys.XXXXXX) || return 1
    chmod 755 "$kd"
    echo "$kd" >"$d/keysdir"
    cp "$d/userkey.pub" "$kd/$LM_DASH_USER.keys"
    chmod 644 "$kd/$LM_DASH_USER.keys"
    cat >"$d/sshd_config" <<CONF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $d/hostkey
AuthorizedKeysFile $d/authorized_keys $kd/%u.keys
PidFile $d/sshd.pid
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
SetEnv PATH=$LM_ROOT/bin/lm-decode:$LM_ROOT/bin/lm-apply:/usr/local/bin:/usr/bin:/bin HOME=$d/home
CONF
    cat >"$d/ssh_config" <<CONF
Host lmtest bare
  HostName 127.0.0.1
  Port $SSHD_PORT
  User $(id -un)
  IdentityFile $d/userkey
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
Host lmdash
  HostName 127.0.0.1
  Port $SSHD_PORT
  User $LM_DASH_USER
  IdentityFile $d/userkey
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
CONF
    cat >"$d/ssh" <<'WRAP'
#!/bin/bash
# ssh with the test's config; on host "bare" the lm programs are not in PATH
args=("$@"); n=${#args[@]}
if [ "${args[n-2]}" = bare ]; then
    args[n-1]="PATH=/usr/bin:/bin; ${args[n-1]}"
fi
exec ssh -F "$(dirname "$0")/ssh_config" "${args[@]}"
WRAP
    chmod +x "$d/ssh"
    bg_start SSHD_SH sh -c "echo \$\$ >'$d/sshd.sh.pid'; exec /usr/sbin/sshd -D -e -f '$d/sshd_config' 2>'$d/sshd.log'"
    wait_for 10 port_in_use "$SSHD_PORT" || return 1
    export LM_SSH=$d/ssh
    wait_for 10 "$LM_SSH" lmtest true </dev/null
}

stop_sshd() {
    local pid kd
    pid=$(cat "$BATS_TEST_TMPDIR/ssh/sshd.sh.pid" 2>/dev/null) && kill "$pid" 2>/dev/null
    kd=$(cat "$BATS_TEST_TMPDIR/ssh/keysdir" 2>/dev/null) && [ -n "$kd" ] && rm -rf "$kd"
    rmdir "/tmp/lm-ports/${SSHD_PORT:-none}" 2>/dev/null || true
}

# start_sshd, or skip the test with the reason
sshd_or_skip() {
    [ -x /usr/sbin/sshd ] || skip "sshd is not installed (scripts/install-deps installs openssh-server)"
    command -v ssh-keygen >/dev/null || skip "ssh-keygen is not installed"
    if ! start_sshd; then
        local why
        why=$(tail -n 3 "$BATS_TEST_TMPDIR/ssh/sshd.log" 2>/dev/null)
        stop_sshd
        skip "could not start an sshd on a loopback port: ${why:-unknown reason}"
    fi
}

# A user whose login shell is dash (a POSIX sh, not bash), reachable as
# ssh host "lmdash" once start_sshd ran; made when missing (needs root).
LM_DASH_USER=lmdash
dash_user_or_skip() {
    [ -x /bin/dash ] || skip "dash is not installed"
    if ! id -u "$LM_DASH_USER" >/dev/null 2>&1; then
        [ "$(id -u)" -eq 0 ] || skip "a user with dash as login shell is needed (run as root)"
        useradd -M -d /nonexistent -s /bin/dash "$LM_DASH_USER" 2>/dev/null ||
            id -u "$LM_DASH_USER" >/dev/null 2>&1 || skip "could not create user $LM_DASH_USER"
    fi
    # not locked (sshd without PAM refuses a "!" password), no password
    [ "$(id -u)" -eq 0 ] && usermod -p '*' "$LM_DASH_USER" 2>/dev/null
    [ "$(getent passwd "$LM_DASH_USER" | cut -d: -f7)" = /bin/dash ] ||
        skip "user $LM_DASH_USER exists with another login shell"
}

# Cut every ssh connection of that sshd, as a network failure would: its
# per-connection processes die, both ends see the link gone.  Prints how
# many there were.
cut_ssh_links() {
    local pid n
    pid=$(cat "$BATS_TEST_TMPDIR/ssh/sshd.sh.pid" 2>/dev/null) || { echo 0; return; }
    n=$(pgrep -c -P "$pid" || true)
    pkill -9 -P "$pid" || true
    echo "${n:-0}"
}


# rss_below KB LIMIT_KB: a peak RSS under its bound.  Not checked in a
# SANITIZE=1 build: ASan's shadow memory and quarantine (freed memory is kept
# a while) multiply a program's RSS; the test still runs, for its errors.
rss_below() {
    if grep -q fsanitize "$LM_ROOT/.build-flags" 2>/dev/null; then
        echo "# peak RSS ${1} kB: not held to ${2} kB in a sanitizer build" >&3
        return 0
    fi
    [ "$1" -lt "$2" ]
}

# ---------------------------------------------------------------- hostile names
# One set of table names with every byte a shell or a line-based reader
# trips on, for every suite: a newline, a tab, a quote, a double quote, a
# trailing backslash, non-ASCII, a space, $(...), a leading dash, an escape
# (ESC: a terminal's control sequence), psql's "|" separator, a 63-byte name
# (NAMEDATALEN - 1), and a schema and a key column with a newline too.  Each
# table has an identity column (its sequence has a hostile name as well); a
# free sequence and a materialized view have one.  hostile_names_tables gives
# the tables as quoted identifiers, NUL-terminated.
HOSTILE_SCHEMA=$'sch\nema'
# shellcheck disable=SC1003,SC2016  # a backslash at the end, $(...): on purpose
HOSTILE_TABLES=($'nl\nname' $'tab\tname' "quote's" 'dq"name' 'back\' 'café é' 'sp ace'
    '$(touch pwned)' '-dash' $'esc\e[31mred' "$(printf 'x%.0s' {1..61})é")
# the table in the hostile schema, and its key column
HOSTILE_SCHEMA_TABLE=$'x|y\nz'
HOSTILE_KEY=$'k\ney'
HOSTILE_SEQ=$'seq\nfree'
HOSTILE_MATVIEW=$'mv\nview'

# a quoted identifier: qident NAME
qident() { printf '"%s"' "${1//\"/\"\"}"; }

# The quoted schema.table of each hostile table, each followed by a NUL:
#   mapfile -d '' tables < <(hostile_names_tables)
hostile_names_tables() {
    local t
    for t in "${HOSTILE_TABLES[@]}"; do printf 'public.%s\0' "$(qident "$t")"; done
    printf '%s.%s\0' "$(qident "$HOSTILE_SCHEMA")" "$(qident "$HOSTILE_SCHEMA_TABLE")"
}

# The hostile tables with rows (20 each, a value with a newline among them)
# and the free sequence: hostile_names_sql | q NAME -f -
hostile_names_sql() {
    local t
    printf 'CREATE SCHEMA %s;\n' "$(qident "$HOSTILE_SCHEMA")"
    for t in "${HOSTILE_TABLES[@]}"; do
        printf 'CREATE TABLE public.%s (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text);\n' "$(qident "$t")"
    done
    printf 'CREATE TABLE %s.%s (%s bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);\n' \
        "$(qident "$HOSTILE_SCHEMA")" "$(qident "$HOSTILE_SCHEMA_TABLE")" "$(qident "$HOSTILE_KEY")"
    printf 'CREATE SEQUENCE public.%s START 500;\n' "$(qident "$HOSTILE_SEQ")"
    printf 'CREATE MATERIALIZED VIEW public.%s AS SELECT count(*) AS n FROM public.%s;\n' \
        "$(qident "$HOSTILE_MATVIEW")" "$(qident "${HOSTILE_TABLES[0]}")"
    while IFS= read -r -d '' t; do
        printf "INSERT INTO %s (v) SELECT 'snap ' || g FROM generate_series(1, 19) g;\n" "$t"
        printf "INSERT INTO %s (v) VALUES (E'two\\\\nlines');\n" "$t"
    done < <(hostile_names_tables)
}

# Inserts, updates and deletes on every hostile table, each its own
# transaction, and a nextval of the free sequence: a psql script.
hostile_names_writes_sql() {
    local t
    while IFS= read -r -d '' t; do
        printf "INSERT INTO %s (v) SELECT 'live ' || g FROM generate_series(1, 30) g;\n" "$t"
        printf "UPDATE %s SET v = v || E' upd\\\\t' WHERE v IN ('snap 1', 'snap 2', 'snap 3');\n" "$t"
        printf "DELETE FROM %s WHERE v IN ('snap 4', 'snap 5', 'live 7');\n" "$t"
    done < <(hostile_names_tables)
    printf 'SELECT nextval(%s);\n' "'public.$(qident "$HOSTILE_SEQ")'"
}

# ------------------------------------------------------------ processes
#
# A test's background processes end within a bound, and never by SIGINT: a
# process started with SIGINT ignored (any background job of a
# non-interactive shell, as under `sh -c 'make check & wait'`) keeps it
# ignored, and a pgbench -T 3600 sent SIGINT ran on for the hour while the
# suite waited for it.

# wait_pid PID SECONDS [WHAT]: wait at most SECONDS for PID (a background
# process of this shell) to end; returns its exit status.  Still running
# after SECONDS: says so, naming WHAT, stops it (stop_proc) and fails with
# 124.
wait_pid() {
    local pid=$1 secs=$2 what=${3:-process $1}
    local end=$(( $(date +%s) + secs ))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$end" ]; then
            echo "wait_pid: gave up waiting for $what (pid $pid): still running after $secs s; stopped" >&2
            stop_proc "$pid" 5
            return 124
        fi
        sleep 0.1
    done
    wait "$pid"
}

# stop_proc PID [SECONDS]: SIGTERM to PID, SIGKILL when it is still there
# after SECONDS (default 10); waits for it (a child of this shell is reaped,
# its exit status dropped).  Fails only when it outlives the SIGKILL.
stop_proc() {
    local pid=$1 secs=${2:-10} end
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    end=$(( $(date +%s) + secs ))
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop_proc: pid $pid ($(ps -o args= -p "$pid" 2>/dev/null)) still running $secs s after SIGTERM: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        end=$(( $(date +%s) + 10 ))
        while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do
            sleep 0.1
        done
    fi
    wait "$pid" 2>/dev/null || true
    ! kill -0 "$pid" 2>/dev/null
}

# load_start [RATE]: pgbench on the source's database $DB (transactions per
# second: RATE, unthrottled without), logging to $T/pgbench.log; LOAD_PID
load_start() {
    # shellcheck disable=SC2016
    bg_start LOAD_PID bash -c 'exec pgbench -n -c 2 -T 3600 ${4:+-R "$4"} -h 127.0.0.1 -p "$1" -U postgres "$2" >>"$3" 2>&1' _ \
        "$SOURCE_PORT" "${DB:-postgres}" "${T:-$BATS_TEST_TMPDIR}/pgbench.log" "${1:-}"
}
# load_stop: pgbench ended (SIGTERM, then SIGKILL after 10 s)
load_stop() {
    [ -n "${LOAD_PID:-}" ] || return 0
    stop_proc "$LOAD_PID" 10
    LOAD_PID=
}

# lm_descendants PID [SKIP]: the pids of every process below PID, each
# before its own children, leaving out SKIP and what runs below it
lm_descendants() {
    local c
    for c in $(pgrep -P "$1"); do
        [ "$c" = "${2:-}" ] && continue
        echo "$c"
        lm_descendants "$c" "${2:-}"
    done
}

# The per-test timeout (BATS_TEST_TIMEOUT, set by scripts/run-tests).  At
# the timeout bats 1.8's countdown process sends the test SIGABRT (it ends
# at once, or once its foreground command has) and SIGTERM to the test's
# direct children (bats_kill_childprocesses_of); the test, ending, stops
# the countdown with SIGABRT (bats_abort_timeout_countdown).  Both are
# replaced here: a program under `run` (a grandchild, writing into a
# command substitution) kept the test waiting for its output all the
# same; background processes outlived a test that ended before the
# countdown reached them, or that stopped the countdown first.  Every
# process below the test is stopped (SIGTERM, SIGKILL 5 s later) while the
# test waits for that, and the TAP output names them: what the test was
# waiting for.
bats_kill_childprocesses_of() {
    # in bats' countdown process, under set -e: nothing here may fail
    local self=$BASHPID pids list p end
    # (not "$BASHPID" inside $(...): that is the substitution's own)
    pids=$(lm_descendants "$1" "$self") || true
    [ -n "$pids" ] || return 0
    list=$(ps -o pid=,args= -p "$(paste -sd, <<<"$pids")" 2>/dev/null | sed 's/^ */#   /') || true
    if [ -n "$list" ]; then
        printf '# %s s timeout: the test was still running:\n%s\n' "${BATS_TEST_TIMEOUT:-?}" "$list" >&3 2>/dev/null || true
    fi
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    end=$(( $(date +%s) + 5 ))
    for p in $pids; do
        while kill -0 "$p" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
    done
    return 0
}
bats_abort_timeout_countdown() {   # COUNTDOWN_PID, from the ending test
    if [ -n "${BATS_TIMED_OUT:-}" ]; then
        # timed out: the countdown is stopping this test's processes; it
        # finds them only while this process (their parent) is there
        local end=$(( $(date +%s) + 20 ))
        while kill -0 "$1" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do
            sleep 0.1
        done
        return 0
    fi
    kill -ABRT "$1" &>/dev/null || true
}
