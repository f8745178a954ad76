# shellcheck shell=bash
# lm-migrate: the command report: WORKDIR/history.jsonl (and
# rehearsals.log, the config, tables.list) as one self-contained HTML page:
# the summary figures and charts drawn by gnuplot as inline SVG.  It reads
# the work directory only (no server is asked), takes no lock, and works
# while the migration runs.
# A library: bin/lm-migrate/lm-migrate sources it (tests/migrate-lib.bats
# too); sourcing it only defines functions and constants.
[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "cmd-report.sh: a library of lm-migrate: source it, do not run it" >&2; exit 2; }

# html_escape TEXT: TEXT for HTML text or a quoted attribute: & < > " '
# as entities, control characters as printable shows them (\n, \x1b)
html_escape() {
    local s
    s=$(printable "$1")
    # the replacements quoted: bash 5.2 reads an unquoted & there as the match
    s=${s//&/"&amp;"}
    s=${s//</"&lt;"}
    s=${s//>/"&gt;"}
    s=${s//\"/"&quot;"}
    s=${s//\'/"&#39;"}
    printf '%s' "$s"
}

# conn_display CONN: a connection string without any password in it
# (none is stored; this is the belt to those braces)
conn_display() {
    printf '%s' "$1" | sed -E "s/(^|[[:space:]])password[[:space:]]*=[[:space:]]*('([^'\\\\]|\\\\.)*'|[^[:space:]]*)/\\1password=(hidden)/g;
                               s#^([a-z]+://[^:/@]*):[^@/]*@#\\1:(hidden)@#;
                               s/([?&])password=[^&]*/\\1password=(hidden)/g"
}

# report_records: history.jsonl's records, one compact object a line; a
# line that is not a JSON object (cut short by a kill) is skipped
report_records() {
    [ -f "$W/history.jsonl" ] || return 0
    jq -cR 'fromjson? | select(type == "object" and (.time | type) == "number")' "$W/history.jsonl" 2>/dev/null
}

# report_rehearsals: rehearsals.log's records with their time as epoch
report_rehearsals() {
    [ -f "$W/rehearsals.log" ] || return 0
    jq -cR 'fromjson? | select(type == "object" and (.estimated_downtime_seconds | type) == "number")
            | . + {epoch: (.time | try fromdateiso8601 catch null)}' "$W/rehearsals.log" 2>/dev/null
}

# report_chart FILE TITLE YLABEL Y2LABEL PLOT: one chart, gnuplot's SVG
# without its XML prologue and namespace declarations (inline in HTML
# they are implied: the page names no URL), or nothing when gnuplot fails
report_chart() {
    local out
    {
        printf 'set terminal svg size 960,320 dynamic noenhanced font "sans,11" background rgb "white"\n'
        printf 'set title "%s"\nset ylabel "%s"\n' "$2" "$3"
        if [ -n "$4" ]; then printf 'set y2label "%s"\nset y2tics\nset ytics nomirror\nset y2range [0:*]\n' "$4"; fi
        printf 'set yrange [0:*]\nset xrange [0:%s]\n' "$R_XMAX"
        printf 'set xlabel "time since the first record (h:mm:ss; it is at %s UTC)"\n' "$(date -u -d "@${R_T0%.*}" '+%Y-%m-%d %H:%M:%S')"
        printf 'set format x "%%tH:%%tM:%%tS" time\nset grid\nset key top left opaque\nset datafile missing "?"\nset datafile separator "\\t"\n'
        printf '%s\n' "$R_MARKS"
        printf '%s\n' "$5"
    } >"$R_DIR/$1.gp"
    if ! out=$(cd "$R_DIR" && gnuplot "$1.gp" 2>"$1.err") || [[ $out != *"<svg"* ]]; then
        # no figure of the chart known yet (early in the copy, rates need
        # two samples): said in its place; another failure is warned of
        grep -q 'undefined' "$R_DIR/$1.err" ||
            warn "gnuplot failed on the chart \"$2\": $(grep -v '^ *$' "$R_DIR/$1.err" | tail -n 2 | tr '\n' ' ')"
        printf '<p class="muted">%s: no figures recorded yet.</p>\n' "$(html_escape "$2")"
        return 0
    fi
    # the prologue, the namespace declarations (their URIs), xlink:href as href
    printf '%s\n' "$out" | sed -e '/^<?xml/d' -e '/^<!DOCTYPE/,/>$/d' -e 's/ *xmlns\(:xlink\)\?="[^"]*"//g' -e 's/xlink:href=/href=/g'
}

# fmt_secs SECONDS: 1h02m03s, 4m05s, 6.78s
fmt_secs() {
    awk -v s="$1" 'BEGIN { if (s == "") { print "?"; exit }
        if (s >= 3600) printf "%dh%02dm%02ds", s / 3600, s % 3600 / 60, s % 60
        else if (s >= 60) printf "%dm%02ds", s / 60, s % 60
        else printf "%.2fs", s }'
}

# report_row NAME VALUE [ID]: a row of the summary; VALUE is escaped
report_row() {
    printf '<tr><th>%s</th><td%s>%s</td></tr>\n' "$1" "${3:+ id=\"$3\"}" "$(html_escape "$2")"
}

report_html() {
    local recs last cut phase r t
    recs=$(report_records)
    R_DIR=$(mktemp -d "${TMPDIR:-/tmp}/lm-report.XXXXXX") || die "$EX_IO" "cannot make a temporary directory"
    # shellcheck disable=SC2064  # the directory now
    trap "rm -rf '$R_DIR'" EXIT
    phase=$(phase)
    last=$(jq -cs 'map(select(.event == "sample")) | last // empty' <<<"$recs")
    cut=$(jq -cs 'map(select(.event == "cutover")) | last // empty' <<<"$recs")
    # the samples as columns: seconds since the first record, then figures
    R_T0=$(jq -s 'map(.time) | min // empty' <<<"$recs")
    [ -n "$R_T0" ] || R_T0=$(epoch)
    jq -r --argjson t0 "$R_T0" 'select(.event == "sample") | [(.time - $t0), .tables_done, .tables_total, .rows,
        (.bytes | if . == null then null else . / 1048576 end), (.lag_bytes | if . == null then null else . / 1024 end),
        .lag_seconds, (.apply_rate_bytes | if . == null then null else . / 1024 end),
        (.source_rate_bytes | if . == null then null else . / 1024 end), (.spool_bytes | if . == null then null else . / 1048576 end)]
        | map(if . == null then "?" else tostring end) | @tsv' <<<"$recs" >"$R_DIR/samples.tsv"
    R_XMAX=$(jq -s --argjson t0 "$R_T0" '[.[] | .time - $t0, (.downtime_end // empty) - $t0] | max // 1 | if . < 1 then 1 else . * 1.02 end' <<<"$recs")
    # the marks: the cutover (a band over the downtime, a line at its
    # start), each rehearsal (a dashed line)
    R_MARKS=''
    local n=1 x
    while IFS= read -r r; do
        [ -n "$r" ] || continue
        x=$(jq -r --argjson t0 "$R_T0" '(.epoch // empty) - $t0' <<<"$r")
        [ -n "$x" ] || continue
        R_MARKS+="set arrow $n from $x, graph 0 to $x, graph 1 nohead lc rgb \"#1f77b4\" dt 2 lw 1.5"$'\n'
        R_MARKS+="set label $n \"rehearsal: est. $(jq -r '.estimated_downtime_seconds' <<<"$r")s\" at $x, graph 0.92 left offset 0.5,0 tc rgb \"#1f77b4\""$'\n'
        n=$((n + 1))
    done < <(report_rehearsals)
    while IFS= read -r r; do
        [ -n "$r" ] || continue
        x=$(jq -r --argjson t0 "$R_T0" '.time - $t0' <<<"$r")
        R_MARKS+="set arrow $n from $x, graph 0 to $x, graph 1 nohead lc rgb \"#d62728\" dt 3 lw 1.5"$'\n'
        R_MARKS+="set label $n \"cutover\" at $x, graph 0.84 right offset -0.5,0 tc rgb \"#d62728\""$'\n'
        n=$((n + 1))
    done < <(jq -c 'select(.event == "cutover_start")' <<<"$recs")
    if [ -n "$cut" ]; then
        local a b d
        read -r a b d < <(jq -r --argjson t0 "$R_T0" '"\(.downtime_start - $t0) \(.downtime_end - $t0) \(.downtime_seconds)"' <<<"$cut")
        R_MARKS+="set object 1 rect from $a, graph 0 to $(awk -v a="$a" -v b="$b" -v m="$R_XMAX" 'BEGIN { w = m / 400; printf "%.3f", (b - a < w) ? a + w : b }'), graph 1 fc rgb \"#d62728\" fs transparent solid 0.35 noborder behind"$'\n'
        d=$(secs2 "$d")
        R_MARKS+="set label $n \"downtime ${d}s\" at $b, graph 0.76 right offset -0.5,0 tc rgb \"#d62728\""$'\n'
    fi
    local charts=() c
    if [ -s "$R_DIR/samples.tsv" ]; then
        c=$(report_chart copy "Copy progress" "MiB copied (tables copied whole)" "tables copied" \
            'plot "samples.tsv" using 1:5 with lines lw 2 lc rgb "#2ca02c" title "MiB copied", "" using 1:2 axes x1y2 with steps lw 2 lc rgb "#9467bd" title "tables copied", "" using 1:3 axes x1y2 with lines dt 2 lc rgb "#9467bd" title "tables to copy"') && charts+=("$c")
        c=$(report_chart lag "Lag of the target" "KiB of WAL" "seconds" \
            'plot "samples.tsv" using 1:6 with lines lw 2 lc rgb "#ff7f0e" title "lag (KiB of WAL)", "" using 1:7 axes x1y2 with lines lw 2 lc rgb "#8c564b" title "lag (seconds)"') && charts+=("$c")
        c=$(report_chart rates "Apply rate against the source's write rate" "KiB of WAL per second" "" \
            'plot "samples.tsv" using 1:8 with lines lw 2 lc rgb "#2ca02c" title "apply", "" using 1:9 with lines lw 2 lc rgb "#d62728" title "source writes", "" using 1:10 with lines dt 2 lc rgb "#7f7f7f" title "spool (MiB)"') && charts+=("$c")
    fi

    # the summary: the cutover's figures when it is done, else the last sample's
    local src=$SOURCE tgt=$TARGET tdone rows bytes streamed down nsamples started copy_s copy_e stream_s
    # in one jq (fields separated by US: an empty one stays a field)
    local fence cp mlsn interval
    IFS=$'\x1f' read -r tdone rows bytes streamed down fence cp mlsn nsamples copy_s copy_e stream_s interval < <(jq -rs '
        (map(select(.event == "sample")) | last) as $last | (map(select(.event == "cutover")) | last) as $cut
        | ($cut // $last // {}) as $f
        | def phase_start(p): map(select(.event == "phase" and .phase == p)) | first | .time;
        [$f.tables_done, $f.rows, $f.bytes, $cut.streamed_bytes, $cut.downtime_seconds, $cut.fence, $cut.consistent_point,
         $cut.marker_lsn, (map(select(.event == "sample")) | length), phase_start("copy"), phase_start("postdata"),
         phase_start("streaming"), $last.interval]
        | map(if . == null then "" else tostring end) | join("\u001f")' <<<"$recs")
    [ -n "$down" ] || { [ "$phase" = "done" ] && down=$(cat "$W/downtime" 2>/dev/null); }
    [ -z "$down" ] || down=$(secs2 "$down")
    # phases' starts: the copy's duration from "copy" to "postdata" (data),
    # and to "streaming" (indexes and constraints too)
    started=''
    [ -n "${STARTED:-}" ] && started=$(date -u -d "@$STARTED" '+%Y-%m-%d %H:%M:%S UTC')
    read_names "$W/tables.list"
    local tables=("${NAMES[@]}")

    cat <<EOF
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<title>lm-migrate report: $(html_escape "$SLOT")</title>
<style>
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.5em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; } th, td { text-align: left; padding: 0.2em 0.8em; border-bottom: 1px solid #eee; vertical-align: top; }
th { font-weight: 600; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.state { padding: 0.5em 1em; border-radius: 4px; } .running { background: #fff4ce; } .done { background: #dff6dd; }
.chart { margin: 1em 0; } .chart svg { max-width: 100%; height: auto; }
code { font-size: 0.95em; } .muted { color: #666; }
</style>
</head>
<body>
<h1>Live migration <code>$(html_escape "$SLOT")</code></h1>
EOF
    if [ "$phase" = "done" ]; then
        printf '<p class="state done" id="state">Complete: the cutover is done.</p>\n'
    else
        printf '<p class="state running" id="state">Still running (phase %s): the figures are those of the last sample%s.</p>\n' \
            "$(html_escape "$phase")" "$([ -n "$last" ] && echo ", at $(date -u -d "@$(jq -r '.time | floor' <<<"$last")" '+%Y-%m-%d %H:%M:%S') UTC")"
    fi
    printf '<h2>Summary</h2>\n<table id="summary">\n'
    report_row source "$(conn_display "$src")" source
    report_row target "$(conn_display "$tgt")" target
    report_row "slot, publication, origin" "$SLOT" slot
    report_row "work directory" "$W" workdir
    [ -n "$started" ] && report_row started "$started" started
    report_row phase "$phase" phase
    report_row "tables copied" "${tdone:-0} of ${#tables[@]}" tables
    report_row "rows copied" "${rows:-0}" rows
    report_row "bytes copied" "${bytes:-0} ($(human_bytes "${bytes:-0}"))" bytes
    if [ -n "$copy_s" ] && [ -n "$copy_e" ]; then
        report_row "copy duration" "$(fmt_secs "$(awk -v a="$copy_e" -v b="$copy_s" 'BEGIN { print a - b }')") (data)$([ -n "$stream_s" ] && echo ", $(fmt_secs "$(awk -v a="$stream_s" -v b="$copy_s" 'BEGIN { print a - b }')") with indexes and constraints")" copy-duration
    fi
    if [ -n "$streamed" ]; then
        report_row "streamed WAL" "$streamed ($(human_bytes "$streamed")) from $cp to $mlsn" streamed
    fi
    if [ -n "$down" ]; then
        report_row "downtime of the cutover" "${down}s of writes ($([ "$fence" = true ] && echo fence || echo marker) to sequences synced)" downtime
    else
        report_row "downtime of the cutover" "none yet (no cutover)" downtime
    fi
    report_row "samples" "$nsamples${interval:+ (every ${interval}s while running)}" samples
    printf '</table>\n'

    printf '<h2>Cutover rehearsals</h2>\n'
    local reh
    reh=$(report_rehearsals)
    if [ -z "$reh" ]; then
        printf '<p class="muted">None (lm-migrate cutover --rehearse records them).</p>\n'
    else
        printf '<table id="rehearsals">\n<tr><th>time</th><th>estimated downtime</th><th>estimated cutover</th><th>fence</th><th>problems</th></tr>\n'
        while IFS= read -r r; do
            [ -n "$r" ] || continue
            local rt rd rc rf rp
            IFS=$'\x1f' read -r -d '' rt rd rc rf rp < <(jq -j '[.time, .estimated_downtime_seconds, .estimated_cutover_seconds,
                (if .fence then "yes" else "no" end), (.problems // [] | join("; "))] | map(tostring) | join("\u001f")' <<<"$r")
            printf '<tr><td>%s</td><td class="n">%ss</td><td class="n">%ss</td><td>%s</td><td>%s</td></tr>\n' \
                "$(html_escape "$rt")" "$(html_escape "$rd")" "$(html_escape "$rc")" "$rf" "$(html_escape "$rp")"
        done <<<"$reh"
        printf '</table>\n'
    fi

    printf '<h2>Over time</h2>\n'
    if [ ${#charts[@]} -eq 0 ]; then
        printf '<p class="muted">No samples recorded yet (history.jsonl).</p>\n'
    else
        printf '<p class="muted">Red: the cutover (dotted: its start; band: the write downtime). Blue, dashed: cutover rehearsals.</p>\n'
        for c in "${charts[@]}"; do printf '<div class="chart">\n%s\n</div>\n' "$c"; done
    fi

    printf '<h2>Tables (%d)</h2>\n<ul id="tables">\n' "${#tables[@]}"
    for t in "${tables[@]}"; do printf '<li><code>%s</code></li>\n' "$(html_escape "$t")"; done
    printf '</ul>\n<p class="muted">Made by %s (lm) %s at %s UTC from %s.</p>\n</body>\n</html>\n' \
        "$PROG" "$(html_escape "$LM_VERSION")" "$(date -u '+%Y-%m-%d %H:%M:%S')" "$(html_escape "$W/history.jsonl")"
}

cmd_report() {
    [ -f "$W/config" ] || die "$EX_USAGE" "$W holds no migration (no config): nothing to report"
    require_private_workdir
    load_config
    need_prog jq
    need_prog gnuplot
    local out=${OUTPUT:-$W/report.html}
    case $out in /*) ;; *) out=$PWD/$out ;; esac
    report_html >"$out.tmp" || { rm -f "$out.tmp"; die "$EX_IO" "cannot write $out"; }
    mv -f "$out.tmp" "$out" || die "$EX_IO" "cannot write $out"
    info "report written to $out"
    return "$EX_OK"
}
