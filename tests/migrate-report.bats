#!/usr/bin/env bats
# lm-migrate's history (WORKDIR/history.jsonl, sampled every
# LM_HISTORY_INTERVAL seconds by the stage "history") and lm-migrate report
# (a self-contained HTML page with gnuplot's SVG charts): one small real
# migration under light writes, a rehearsal, a cutover.  Well under a minute.

load helpers
load migrate_helpers   # setup, teardown_file, mkdb, qs, qt, lmm, ...
bats_require_minimum_version 1.5.0

# a table name with every byte HTML gives a meaning to
HOSTILE=$'a<b>&"\'c'
# a password the clients could send (trust auth ignores it): never printed
PASSWORD='Sekr3t-pw-report-XYZ'

setup_file() {
    migrate_clusters
    q source -c "CREATE DATABASE tmpl"
    local h=${HOSTILE//\"/\"\"}
    PGDATABASE_TEST=tmpl q source \
        -c "CREATE TABLE public.busy (id bigserial PRIMARY KEY, v text)" \
        -c "CREATE TABLE public.\"$h\" (id int PRIMARY KEY, v text)" \
        -c "INSERT INTO public.busy (v) SELECT md5(g::text) FROM generate_series(1, 3000) g" \
        -c "INSERT INTO public.\"$h\" SELECT g, 'h' || g FROM generate_series(1, 50) g"
}

teardown() {
    show_failed_migration "$W/history.jsonl"
    stop_pid_file "$BATS_TEST_TMPDIR/load.pid"
    abort_migration
}

# light writes on the source: an insert a transaction, 20 a second
start_load() {
    echo "INSERT INTO busy (v) VALUES ('load');" >"$BATS_TEST_TMPDIR/load.sql"
    bg_start LOAD_SH sh -c "echo \$\$ >'$BATS_TEST_TMPDIR/load.pid'; exec pgbench -n -c 1 -T 300 -R 20 -f '$BATS_TEST_TMPDIR/load.sql' '$SRC' >'$BATS_TEST_TMPDIR/load.log' 2>&1"
    wait_for 10 test -s "$BATS_TEST_TMPDIR/load.pid"
}

samples() { jq -R 'fromjson? | select(.event == "sample")' "$W/history.jsonl" | jq -s length; }
# the text of the element with id ID in the report: field REPORT ID
field() { grep -o "id=\"$2\">[^<]*<" "$1" | sed -e 's/^id="[^"]*">//' -e 's/<$//'; }

@test "migrate-report: history sampled while it runs (0600, JSON lines, phases in order), stopped by the cutover; report: self-contained HTML, charts, the cutover's figures, names escaped, no password" {
    mkdb rep
    export LM_HISTORY_INTERVAL=1
    printf '*:*:*:*:%s\n' "$PASSWORD" >"$BATS_TEST_TMPDIR/pgpass"
    chmod 600 "$BATS_TEST_TMPDIR/pgpass"
    export PGPASSFILE=$BATS_TEST_TMPDIR/pgpass
    # an interval that is no number: refused before anything is made
    LM_HISTORY_INTERVAL=soon run -2 lmm start --source "$SRC" --target "$TGT" --workdir "$W"
    assert_output --partial 'invalid LM_HISTORY_INTERVAL "soon"'
    [ ! -e "$W/config" ]
    start_load
    run -0 lmm start --source "$SRC" --target "$TGT" --workdir "$W" --jobs 2
    assert_output --partial "history sampler started"
    phase_is streaming

    # the sampler: a stage like the others, seen by status
    local hpid
    hpid=$(pid_of history)
    [ -n "$hpid" ] && kill -0 "$hpid"
    run -0 lm-migrate status --workdir "$W" --json
    jq -e '.stages.history == true' <<<"$output" >/dev/null
    # the file: 0600, every line a JSON object, growing while streaming
    [ "$(stat -c %a "$W/history.jsonl")" = 600 ]
    jq -e -R 'fromjson | type == "object" and (.time | type) == "number"' "$W/history.jsonl" >/dev/null
    local n1
    n1=$(samples)
    grown() { [ "$(samples)" -ge $((n1 + 2)) ]; }
    wait_for 20 grown
    # phases in order: the events, and the samples' phases never go back
    [ "$(jq -R -c 'fromjson | select(.event == "phase") | .phase' "$W/history.jsonl" | jq -sc .)" = '["preflight","slot","copy","postdata","streaming"]' ]
    jq -R -s -e '[split("\n")[] | fromjson? | select(.event == "sample") | .phase
        | {preflight: 0, slot: 1, copy: 2, postdata: 3, streaming: 4}[.]] | . == sort and .[-1] == 4' "$W/history.jsonl" >/dev/null
    # a streaming sample holds the figures
    jq -R -s -e '[split("\n")[] | fromjson? | select(.event == "sample" and .phase == "streaming")] | last
        | .tables_done == 2 and .tables_total == 2 and .rows >= 3050 and .bytes > 0 and (.lag_bytes | type) == "number"
          and (.spool_bytes | type) == "number" and (.position | test("^[0-9A-F]+/[0-9A-F]+$"))' "$W/history.jsonl" >/dev/null
    # a sample with rates (they need two samples 2 s apart)
    jq -R -s -e '[split("\n")[] | fromjson? | select(.event == "sample" and (.apply_rate_bytes | type) == "number"
        and (.source_rate_bytes | type) == "number")] | length > 0' "$W/history.jsonl" >/dev/null

    run -0 lmm cutover --rehearse --workdir "$W" --timeout 60
    # a report while it runs says so
    run -0 lmm report --workdir "$W" --output "$BATS_TEST_TMPDIR/running.html"
    [[ "$(field "$BATS_TEST_TMPDIR/running.html" state)" =~ ^Still\ running\ \(phase\ streaming\):\ the\ figures\ are\ those\ of\ the\ last\ sample,\ at\ [0-9-]{10}\ [0-9:]{8}\ UTC\.$ ]]
    [ "$(grep -c '<svg' "$BATS_TEST_TMPDIR/running.html")" = 3 ]
    [ "$(field "$BATS_TEST_TMPDIR/running.html" downtime)" = "none yet (no cutover)" ]

    stop_pid_file "$BATS_TEST_TMPDIR/load.pid"
    run -0 lmm cutover --workdir "$W" --timeout 60
    assert_output --partial "cutover complete"
    local rows down
    rows=$(sed -n 's/^  copied: *[0-9]* tables, \([0-9]*\) rows, .*/\1/p' <<<"$output")
    down=$(sed -n 's/^  downtime: *\([0-9.]*\)s of writes .*/\1/p' <<<"$output")
    [ -n "$rows" ] && [ -n "$down" ]
    phase_is done
    # the sampler is stopped: its pid file gone, its process and no other left
    [ ! -e "$W/pids/history" ]
    ! kill -0 "$hpid" 2>/dev/null
    ! pgrep -f -- "_sample --workdir $W" >/dev/null
    # the cutover's records: its start, then its end with the figures printed
    jq -R -s -e --argjson rows "$rows" --argjson down "$down" '[split("\n")[] | fromjson?] as $r
        | ($r | map(select(.event == "cutover_start")) | length == 1)
        and ($r | map(select(.event == "cutover")) | length == 1)
        and ($r | map(select(.event == "cutover"))[0] | .rows == $rows and .downtime_seconds == $down
             and .downtime_end >= .downtime_start and .downtime_start >= .cutover_start and (.streamed_bytes > 0))' \
        "$W/history.jsonl" >/dev/null
    local nsamples
    nsamples=$(samples)
    # a kill in the middle of a write: half a line at the end, skipped
    printf '{"time": 1, "event": "sample", "phase": "co' >>"$W/history.jsonl"

    run -0 lmm report --workdir "$W"
    assert_output --partial "report written to $W/report.html"
    local r=$W/report.html
    # a sample for the documentation (LM_REPORT_SAMPLE=FILE)
    [ -z "${LM_REPORT_SAMPLE:-}" ] || cp "$r" "$LM_REPORT_SAMPLE"
    [ "$(stat -c %a "$r")" = 600 ]
    # well-formed (as XML: stricter than HTML), and parsed as HTML
    run -0 xmllint --noout "$r"
    python3 -c 'import sys, html.parser
class P(html.parser.HTMLParser):
    pass
P().feed(open(sys.argv[1], encoding="utf-8").read())' "$r"
    # the charts: copy progress, lag, rates, each an inline SVG with the
    # cutover's band and the rehearsal's line
    [ "$(grep -c '<svg' "$r")" = 3 ]
    [ "$(grep -c 'rehearsal: est\.' "$r")" = 3 ]
    [ "$(grep -c "downtime ${down}s" "$r")" = 3 ]
    # the summary: the cutover's figures
    [ "$(field "$r" state)" = "Complete: the cutover is done." ]
    [ "$(field "$r" rows)" = "$rows" ]
    [[ "$(field "$r" downtime)" == "${down}s of writes (marker to sequences synced)" ]]
    [[ "$(field "$r" tables)" == "2 of 2" ]]
    [[ "$(field "$r" streamed)" =~ ^[1-9][0-9]*\ \( ]]
    [[ "$(field "$r" copy-duration)" =~ ^[0-9.]+s\ \(data\),\ [0-9.]+s\ with\ indexes ]]
    [[ "$(field "$r" samples)" == "$nsamples (every 1s while running)" ]]
    # the rehearsal's row
    grep -q "<td class=\"n\">$(jq -r .estimated_downtime_seconds "$W/rehearsals.log")s</td>" "$r"
    # the hostile name escaped, never raw
    grep -qF 'public.&quot;a&lt;b&gt;&amp;&quot;&quot;&#39;c&quot;' "$r"
    ! grep -qF '<b>' "$r"
    ! grep -qF 'a<b' "$r"
    # self-contained: no URL, no script; no password
    ! grep -qiE 'https?://' "$r"
    ! grep -qi '<script' "$r"
    ! grep -qF "$PASSWORD" "$r"
    # the source and target as given (no password in them)
    [ "$(field "$r" source)" = "$SRC" ]
    # a work directory without a migration: exit 2
    run -2 lmm report --workdir "$BATS_TEST_TMPDIR/nothing"
    assert_output --partial "holds no migration"
}
