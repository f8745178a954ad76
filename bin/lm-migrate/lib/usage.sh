# shellcheck shell=bash
# lm-migrate: the text of --help.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "usage.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

usage() {
    cat <<EOF
$PROG runs a live migration of a PostgreSQL database: copy, follow, cut over.

Usage:
  $PROG start --source CONN --target CONN [OPTION]...
  $PROG start --resume [--workdir DIR]
  $PROG status [--json] [--watch[=SECONDS]] | --prometheus
  $PROG cutover [--fence] [--timeout SECONDS] [--keep]
  $PROG cutover --rehearse [--fence] [--timeout SECONDS] [--json]
  $PROG verify [--table NAME]...
  $PROG report [--output FILE]
  $PROG abort | clean

Commands:
  start      preflight, slot with a held snapshot, change capture to a spool,
             schema and parallel data copy, indexes, then apply following the
             spool; returns once the target has caught up (or at once with
             --detach) and leaves capture and apply running
  status     phase, copy progress, lag in bytes and seconds, apply rate, spool
             size, ETA, and what needs the operator; once, or redrawn every
             SECONDS (--watch), or for Prometheus (--prometheus)
  cutover    (optionally fence the source), send a marker through the stream,
             wait until it is applied, stop the stages, sync sequences, refresh
             materialized views, re-sync large objects, verify, drop the slot;
             prints the write downtime; with --rehearse, runs the steps that
             stop nothing (marker, wait, sequences read, verify), timed, while
             the migration goes on, and prints the downtime they add up to
  verify     row counts and content hashes of every table, source and target
  report     an HTML page (self-contained, charts drawn by gnuplot) of the
             migration: its figures, copy progress, lag, apply and source
             rates over time, rehearsals and the cutover's downtime, from
             WORKDIR/history.jsonl (sampled every LM_HISTORY_INTERVAL
             seconds, default 10, while the migration runs)
  abort      stop the stages, drop slot, publication, replication origin and
             the lm schema on the target, remove the spool (idempotent)
  clean      the same as abort, and remove the work directory

Options for all commands:
  -w, --workdir=DIR          state directory (default: \$LM_WORKDIR or ./lm-migrate.d)
  -q, --quiet                print errors only
  -V, --version              output version information, then exit
  -?, --help                 show this help, then exit

Options for start:
  -s, --source=CONN          source connection string or URI (no password)
  -t, --target=CONN          target connection string or URI (no password)
  -j, --jobs=N               parallel copy workers (1..64, default 4)
      --slot=NAME            slot, publication and origin name (default lm_<id>)
      --table=NAME           migrate only this table (repeatable)
      --schema=NAME          migrate only this schema (repeatable)
      --exclude-table=NAME   leave this table out (repeatable)
      --hypertable=T:C[:I]   make table T a TimescaleDB hypertable on column C
      --target-schema=MODE   restore (default): restore the source's schema into an
                             empty database; existing: copy and stream into the
                             tables the target has (partitioned, extra columns, ...)
                             and build only the indexes and constraints it lacks
      --replica-identity-full  set REPLICA IDENTITY FULL on published tables
                             that have no key (else preflight refuses them)
      --skip-db-settings     leave out the source database's settings (ALTER DATABASE
                             ... SET, ALTER ROLE ... IN DATABASE ... SET)
      --decode-host=HOST     run lm-decode on HOST through ssh (the spool lives there)
      --apply-host=HOST      run lm-apply on HOST through ssh
      --remote-dir=DIR       work directory on those hosts (default lm-<slot>)
      --detach               run in the background; log to WORKDIR/logs/migrate.log
      --resume               continue from the work directory's state
      --no-wait              return once apply runs, without waiting to catch up

Options for status:    --json, --watch[=SECONDS] (default 2; with --json one
                       object a line), --prometheus (text exposition format)
Options for cutover:   --fence, --timeout=SECONDS (default 300), --keep,
                       --rehearse, --json (with --rehearse)
Options for verify:    --table=NAME (repeatable); --source/--target without a workdir
Options for report:    -o, --output=FILE (default WORKDIR/report.html)

Passwords never go on the command line: use ~/.pgpass or a service file.

start, cutover, abort and clean lock the work directory: a second one at
the same time is refused (exit 1). status and verify work at any time.

Exit status: 0 ok, 1 failure (also: work directory in use), 2 usage,
3 connection, 4 preflight, 5 server error, 9 I/O error, 10 verify found
differences, 11 timeout (see lm-migrate(1)).
EOF
}
