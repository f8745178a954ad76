#!/usr/bin/env bats
# The change format (lm-format(5)): every record type and value kind through
# the real encoder (lm-testgen) and decoder (lm-cat), plain and zstd, through
# the zstd CLI, concatenated segments, and every way a stream can be broken.
# No PostgreSQL needed.

bats_require_minimum_version 1.5.0
load helpers
# with SANITIZE=1, leaks are errors here (make check turns them off for the
# one-shot programs of the other suites)
if [ "${SANITIZE:-0}" = 1 ]; then export ASAN_OPTIONS=detect_leaks=1; fi

setup() {
    T=$BATS_TEST_TMPDIR
    export NOTE='note "quoted"'
}

# gen FILE [lm-testgen options]: a stream with every record type
gen() {
    local f=$1; shift
    lm-testgen "$@" >"$f"
}

# The blocks of a plain stream, one line each: offset payload-length.
blocks() {
    perl -e '
        open my $f, "<:raw", $ARGV[0] or die; local $/; my $d = <$f>;
        my $p = 0;
        while ($p + 12 <= length $d) {
            my $len = unpack "N", substr($d, $p + 4, 4);
            print "$p $len\n";
            $p += 12 + $len;
        }' "$1"
}

# patch IN OUT OFFSET HEXBYTES...: overwrite bytes of a plain stream at
# OFFSET, then recompute every block's CRC-32C, so that the change reaches
# the record decoder instead of being caught by the checksum.
patch() {
    local in=$1 out=$2 off=$3; shift 3
    perl -e '
        my ($in, $out, $off, @bytes) = @ARGV;
        open my $f, "<:raw", $in or die; local $/; my $d = <$f>; close $f;
        my @t;
        for my $i (0 .. 255) {
            my $c = $i;
            $c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1) for 1 .. 8;
            $t[$i] = $c;
        }
        sub crc { my $c = 0xFFFFFFFF;
                  $c = $t[($c ^ $_) & 0xFF] ^ ($c >> 8) for unpack "C*", $_[0];
                  return $c ^ 0xFFFFFFFF }
        substr($d, $off + $_, 1) = chr(hex $bytes[$_]) for 0 .. $#bytes;
        my $p = 0;
        while ($p + 12 <= length $d) {
            my $len = unpack "N", substr($d, $p + 4, 4);
            last if $p + 12 + $len > length $d;
            substr($d, $p + 8, 4) = pack "N", crc(substr($d, $p, 8) . substr($d, $p + 12, $len));
            $p += 12 + $len;
        }
        open my $o, ">:raw", $out or die; print $o $d;' "$in" "$out" "$off" "$@"
}

# flip IN OUT OFFSET: a copy of IN with the byte at OFFSET inverted (no CRC fix)
flip() {
    perl -e '
        my ($in, $out, $off) = @ARGV;
        open my $f, "<:raw", $in or die; local $/; my $d = <$f>; close $f;
        substr($d, $off, 1) = chr(ord(substr($d, $off, 1)) ^ 0xFF);
        open my $o, ">:raw", $out or die; print $o $d;' "$1" "$2" "$3"
}

# The stream offset of the first record of TYPE (lm-cat --json offsets)
rec_offset() {
    lm-cat --json "$1" | jq -r --arg t "$2" 'select(.type == $t) | .offset' | head -1
}

# lm-cat must fail the way it should, never crash
refute_crash() {
    [ "$status" -ne 0 ] || { echo "expected failure, got 0"; return 1; }
    [ "$status" -lt 128 ] || { echo "crashed with status $status"; return 1; }
}

# ------------------------------------------------------------ round trips

@test "format: every record type round-trips in order; an unknown lower-case type is skipped" {
    gen "$T/s.lm"
    run --separate-stderr lm-cat --json "$T/s.lm"
    assert_success
    [ -z "$stderr" ]
    types=$(echo "$output" | jq -r .type | paste -sd' ')
    assert_equal "$types" "header relation type begin origin insert insert insert update delete truncate message commit position archive copy_begin copy_data copy_end end"
    # lm-testgen wrote 20 records: the lower-case 'x' was skipped, not shown
    run lm-cat --json "$T/s.lm"
    refute_output --partial '"unknown"'
}

@test "format: header, relation and type records keep every field" {
    gen "$T/s.lm" --sysid 18446744073709551615 --slot 'slot_ü'
    lm-cat --json "$T/s.lm" >"$T/j"
    run jq -c 'select(.type == "header") | [.version, .system_identifier, .timeline, .server_version, .database, .slot, .publication, .encoding, .producer, .start_lsn, .created, .offset]' "$T/j"
    assert_output '[1,"18446744073709551615",1,150020,"db","slot_ü","pub","UTF8","lm-testgen","0/16B3748","2000-01-01 00:00:00.000000+00",12]'
    run jq -c 'select(.type == "relation") | [.relid, .schema, .table, .replica_identity, .columns]' "$T/j"
    assert_output '[16384,"public","t","d",[{"name":"id","type_oid":23,"typmod":-1,"key":true},{"name":"name","type_oid":25,"typmod":-1,"key":false},{"name":"data","type_oid":17,"typmod":-1,"key":false},{"name":"note \"quoted\"","type_oid":1043,"typmod":14,"key":false}]]'
    run jq -c 'select(.type == "type") | [.oid, .schema, .name]' "$T/j"
    assert_output '[16500,"public","mood"]'
}

@test "format: transaction records: begin, origin, commit with end_lsn as a delta, message, position" {
    gen "$T/s.lm"
    lm-cat --json "$T/s.lm" >"$T/j"
    run jq -c 'select(.type == "begin") | [.commit_lsn, .xid, .commit_time]' "$T/j"
    assert_output '["0/1000100",742,"2025-11-21 00:26:40.000000+00"]'
    run jq -c 'select(.type == "origin") | [.name, .lsn]' "$T/j"
    assert_output '["other","0/55"]'
    run jq -c 'select(.type == "commit") | [.commit_lsn, .end_lsn, .commit_time]' "$T/j"
    assert_output '["0/1000100","0/1000130","2025-11-21 00:26:40.000000+00"]'
    run jq -c 'select(.type == "message") | [.transactional, .lsn, .prefix, .content]' "$T/j"
    assert_output '[true,"0/1000050","lm-migrate","cutover-1"]'
    run jq -c 'select(.type == "position") | .lsn' "$T/j"
    assert_output '"0/1000200"'
    run jq -c 'select(.type == "end") | [.reason, .lsn, has("detail")]' "$T/j"
    assert_output '["endpos","0/1000200",false]'
}

@test "format: value kinds: text, non-ASCII, binary as hex, null, '' distinct from null, unchanged TOAST" {
    gen "$T/s.lm" --big 100
    lm-cat --json "$T/s.lm" >"$T/j"
    run jq -sc 'map(select(.type == "insert") | .new) | .[0]' "$T/j"
    assert_output '{"id":"1","name":"grüß dich","data":{"binary":"0001ff"},"note \"quoted\"":null}'
    # the empty string is a value, not a null
    run jq -sc 'map(select(.type == "insert") | .new) | .[1] | [.name, (.name | type), (.[env.NOTE] | length)]' "$T/j"
    assert_output '["","string",100]'
    run jq -sc 'map(select(.type == "insert") | .new) | .[0] | [.["note \"quoted\""], (.["note \"quoted\""] | type)]' "$T/j"
    assert_output '[null,"null"]'
    run jq -c 'select(.type == "update") | [.old_key, .new]' "$T/j"
    assert_output '[{"id":"1","name":null,"data":null,"note \"quoted\"":null},{"id":"10","name":"it'"'"'s","data":{"unchanged_toast":true},"note \"quoted\"":{"unchanged_toast":true}}]'
    run jq -c 'select(.type == "delete") | [.old_key, has("old")]' "$T/j"
    assert_output '[{"id":"1","name":null,"data":null,"note \"quoted\"":null},false]'
    run jq -c 'select(.type == "truncate") | [.cascade, .restart_identity, .tables]' "$T/j"
    assert_output '[true,true,["public.t","(relid 16385)"]]'
}

@test "format: a 1 MB value round-trips byte for byte" {
    gen "$T/s.lm" --big 1048576
    lm-cat --json "$T/s.lm" >"$T/j"
    run jq -sr 'map(select(.type == "insert") | .new) | .[1] | .[env.NOTE] | [length, .[0:30], .[-4:]] | @tsv' "$T/j"
    assert_output "$(printf '1048576\tabcdefghijklmnopqrstuvwxyzabcd\tstuv')"
    expected=$(perl -e 'print join "", map { chr(97 + $_ % 26) } 0 .. 1048575' | md5sum)
    actual=$(jq -sj 'map(select(.type == "insert") | .new) | .[1] | .[env.NOTE]' "$T/j" | md5sum)
    assert_equal "$actual" "$expected"
}

@test "format: bulk data and archive records" {
    gen "$T/s.lm"
    lm-cat --json "$T/s.lm" >"$T/j"
    run jq -c 'select(.type == "archive") | [.seq, .last, .bytes]' "$T/j"
    assert_output '[0,true,5]'
    run jq -c 'select(.type == "copy_begin") | [.schema, .table, .chunk, .chunks, .format, .sync_lsn, .columns]' "$T/j"
    assert_output '["public","t",0,1,"text","0/16B3748",""]'
    run jq -c 'select(.type == "copy_data") | .bytes' "$T/j"
    assert_output 4
    run jq -c 'select(.type == "copy_end") | [.rows, .bytes]' "$T/j"
    assert_output '[1,4]'
}

# ------------------------------------------------------------ framing

@test "format: blocks start with LM, version 1; none is over 64 KB unless one record alone is" {
    gen "$T/many.lm" --rows 20000 --big 10
    [ "$(head -c 4 "$T/many.lm" | od -An -tx1 | tr -d ' ')" = 4c4d0100 ]
    blocks "$T/many.lm" >"$T/b"
    [ "$(wc -l <"$T/b")" -gt 5 ]
    run awk '$2 > 65536' "$T/b"
    assert_output ''
    # every block ends where the next starts, the last at the end of the file
    last=$(tail -1 "$T/b")
    [ $(( ${last% *} + 12 + ${last#* } )) -eq "$(stat -c %s "$T/many.lm")" ]

    # a 1 MB record gets a block of its own: the insert holding the value
    # (22 bytes of type, length, relid, column count and other columns)
    gen "$T/big.lm" --big 1048576
    blocks "$T/big.lm" >"$T/b"
    run awk '$2 > 65536 { n++; len = $2 } END { print n, len }' "$T/b"
    assert_output "1 $(( 1048576 + 22 ))"
}

@test "format: a segment trailer ends a file cleanly and counts the records before it" {
    gen "$T/seg.lm" --end trailer
    run --separate-stderr lm-cat --json "$T/seg.lm"
    assert_success
    run jq -c 'select(.type == "trailer") | [.last_lsn, .records]' <<<"$output"
    # 19 records precede it: the 18 lm-cat shows and the lower-case one it skips
    assert_output '["0/1000130",19]'
    run lm-cat --verify "$T/seg.lm"
    assert_success
    assert_output --partial "ends with segment trailer"
}

# ------------------------------------------------------------ zstd

@test "format: --compress writes zstd that reads the same; zstd -dc gives the plain stream byte for byte" {
    gen "$T/s.lm" --big 200000
    gen "$T/s.zst" --big 200000 --compress
    [ "$(head -c 4 "$T/s.zst" | od -An -tx1 | tr -d ' ')" = 28b52ffd ]
    [ "$(stat -c %s "$T/s.zst")" -lt "$(stat -c %s "$T/s.lm")" ]
    zstd -q -t "$T/s.zst"
    zstd -q -dc "$T/s.zst" >"$T/d.lm"
    cmp "$T/d.lm" "$T/s.lm"
    lm-cat --json "$T/s.lm" >"$T/plain.out"
    lm-cat --json "$T/s.zst" >"$T/zstd.out"
    cmp "$T/plain.out" "$T/zstd.out"
    # and through a pipe
    zstd -q -dc "$T/s.zst" | lm-cat --json >"$T/pipe.out"
    cmp "$T/plain.out" "$T/pipe.out"
}

@test "format: the zstd CLI compressing a plain stream gives the same lm-cat output" {
    gen "$T/s.lm"
    lm-cat "$T/s.lm" >"$T/plain.out"
    for level in 1 19; do
        zstd -q -"$level" -c "$T/s.lm" >"$T/s.$level.zst"
        lm-cat "$T/s.$level.zst" >"$T/z.out"
        cmp "$T/plain.out" "$T/z.out"
        lm-cat <"$T/s.$level.zst" >"$T/z.out"
        cmp "$T/plain.out" "$T/z.out"
    done
}

@test "format: zstd frames ended at commit boundaries concatenate to one valid stream" {
    gen "$T/a.lm" --end trailer
    gen "$T/b.lm"
    { zstd -q -c "$T/a.lm"; zstd -q -c "$T/b.lm"; } >"$T/ab.zst"
    cat "$T/a.lm" "$T/b.lm" >"$T/ab.lm"
    zstd -q -dc "$T/ab.zst" | cmp - "$T/ab.lm"
    lm-cat --json "$T/ab.lm" >"$T/plain.out"
    lm-cat --json "$T/ab.zst" >"$T/zstd.out"
    cmp "$T/plain.out" "$T/zstd.out"
    run jq -r .type "$T/zstd.out"
    [ "$(grep -c '^header$' <<<"$output")" -eq 2 ]
}

# ------------------------------------------------------------ concatenation

@test "format: segments with the same header read as one stream, concatenated or as several files" {
    gen "$T/1.lm" --end trailer
    gen "$T/2.lm" --end trailer
    gen "$T/3.lm"
    cat "$T/1.lm" "$T/2.lm" "$T/3.lm" >"$T/all.lm"
    run --separate-stderr lm-cat --verify "$T/all.lm"
    assert_success
    assert_output 'ok: 1 file, system 7000000000000000001, slot "lm_test", ends with end record: endpos'
    run --separate-stderr lm-cat --verify "$T/1.lm" "$T/2.lm" "$T/3.lm"
    assert_success
    assert_output 'ok: 3 files, system 7000000000000000001, slot "lm_test", ends with end record: endpos'
    n=$(lm-cat --json "$T/all.lm" | jq -r .type | grep -c '^insert$')
    [ "$n" -eq 9 ]
    # offsets keep counting across the concatenation
    run jq -sc 'map(select(.type == "header") | .offset)' < <(lm-cat --json "$T/all.lm")
    s1=$(stat -c %s "$T/1.lm")
    assert_output "[12,$(( s1 + 12 )),$(( 2 * s1 + 12 ))]"
}

@test "format: a stream from another source or slot concatenated to the first is refused (exit 8)" {
    gen "$T/a.lm" --end trailer
    gen "$T/other.lm" --sysid 42
    cat "$T/a.lm" "$T/other.lm" >"$T/mixed.lm"
    run --separate-stderr lm-cat "$T/mixed.lm"
    assert_failure 8
    [[ "$stderr" == *"from another source"*"system 42"* ]]
    # the records before the foreign header were still shown
    [[ "$output" == *"trailer"* ]]
    run --separate-stderr lm-cat "$T/a.lm" "$T/other.lm"
    assert_failure 8
    gen "$T/slot2.lm" --slot lm_other
    run --separate-stderr lm-cat "$T/a.lm" "$T/slot2.lm"
    assert_failure 8
    [[ "$stderr" == *'slot "lm_other"'* ]]
}

# ------------------------------------------------------------ damage

@test "format: a flipped payload byte is a checksum mismatch naming the block's offset (exit 6)" {
    gen "$T/s.lm" --big 70000
    blocks "$T/s.lm" >"$T/b"
    [ "$(wc -l <"$T/b")" -ge 3 ]
    while read -r off len; do
        for at in $(( off + 12 )) $(( off + 12 + len / 2 )) $(( off + 12 + len - 1 )); do
            flip "$T/s.lm" "$T/bad.lm" "$at"
            run --separate-stderr lm-cat "$T/bad.lm"
            assert_failure 6
            [[ "$stderr" == *"checksum mismatch in the block at offset $off"* ]] ||
                { echo "byte $at: $stderr"; false; }
        done
    done <"$T/b"
    # a flipped CRC byte is caught the same way
    flip "$T/s.lm" "$T/bad.lm" 9
    run --separate-stderr lm-cat --verify "$T/bad.lm"
    assert_failure 6
    [[ "$stderr" == *"checksum mismatch in the block at offset 0"* ]]
}

@test "format: flipped bytes in zstd data are detected (exit 6), never a crash" {
    gen "$T/s.zst" --compress --big 5000
    size=$(stat -c %s "$T/s.zst")
    for at in 4 8 $(( size / 4 )) $(( size / 2 )) $(( size * 3 / 4 )) $(( size - 20 )); do
        flip "$T/s.zst" "$T/bad.zst" "$at"
        run --separate-stderr lm-cat --json "$T/bad.zst"
        [ "$status" -eq 6 ] || { echo "byte $at: status $status: $stderr"; false; }
    done
    flip "$T/s.zst" "$T/bad.zst" $(( size / 2 ))
    run --separate-stderr lm-cat "$T/bad.zst"
    [[ "$stderr" == *"zstd data corrupt"* || "$stderr" == *"checksum mismatch"* ]]
}

@test "format: a truncated stream is exit 7 at every kind of cut point" {
    gen "$T/s.lm" --big 100000
    size=$(stat -c %s "$T/s.lm")
    for cut in 1 4 11 12 30 $(( size / 2 )) $(( size - 8 )) $(( size - 1 )); do
        head -c "$cut" "$T/s.lm" >"$T/cut.lm"
        run --separate-stderr lm-cat "$T/cut.lm"
        [ "$status" -eq 7 ] || { echo "cut at $cut: status $status: $stderr"; false; }
        [[ "$stderr" == *truncated* ]]
    done
}

@test "format: a cut exactly at a block boundary is exit 7 'without an end record'" {
    gen "$T/s.lm" --big 100000
    blocks "$T/s.lm" >"$T/b"
    [ "$(wc -l <"$T/b")" -ge 3 ]
    for off in $(awk 'NR > 1 { print $1 }' "$T/b"); do
        head -c "$off" "$T/s.lm" >"$T/cut.lm"
        run --separate-stderr lm-cat "$T/cut.lm"
        assert_failure 7
        [[ "$stderr" == *"stream ends at offset $off without an end record"* ]] || { echo "$stderr"; false; }
    done
}

@test "format: a truncated zstd stream is exit 7" {
    gen "$T/s.zst" --compress --big 100000
    size=$(stat -c %s "$T/s.zst")
    for cut in 6 $(( size / 2 )) $(( size - 1 )); do
        head -c "$cut" "$T/s.zst" >"$T/cut.zst"
        run --separate-stderr lm-cat "$T/cut.zst"
        [ "$status" -eq 7 ] || { echo "cut at $cut: status $status: $stderr"; false; }
    done
}

@test "format: a stream with no end record is exit 7" {
    gen "$T/none.lm" --end none
    run --separate-stderr lm-cat "$T/none.lm"
    assert_failure 7
    [[ "$stderr" == *"without an end record or segment trailer"* ]]
    # every record was still shown
    [ "$(echo "$output" | wc -l)" -eq 18 ]
    run --separate-stderr lm-cat --verify "$T/none.lm"
    assert_failure 7
    refute_output --partial ok:
}

@test "format: a wrong magic is 'not an lm change stream' (exit 6)" {
    gen "$T/s.lm"
    patch "$T/s.lm" "$T/bad.lm" 0 4b
    run --separate-stderr lm-cat "$T/bad.lm"
    assert_failure 6
    [[ "$stderr" == *"not an lm change stream"* ]]
    printf 'hello, this is text\n' >"$T/text"
    run --separate-stderr lm-cat "$T/text"
    assert_failure 6
    [[ "$stderr" == *"not an lm change stream"* ]]
    # a bad magic later on names its offset
    gen "$T/a.lm" --end trailer
    { cat "$T/a.lm"; printf 'XXXXXXXXXXXXXXXX'; } >"$T/tail.lm"
    run --separate-stderr lm-cat "$T/tail.lm"
    assert_failure 6
    [[ "$stderr" == *"bad block magic at offset $(stat -c %s "$T/a.lm")"* ]]
}

@test "format: each file starts with its own header: a second file without one is refused (exit 6); version 0 is corrupt" {
    gen "$T/a.lm" --rows 5000
    # the same stream without its first block (the header)
    dd if="$T/a.lm" of="$T/nohead.lm" bs=189 skip=1 status=none
    [ "$(blocks "$T/a.lm" | head -1)" = "0 177" ]
    run --separate-stderr lm-cat "$T/a.lm" "$T/nohead.lm"
    assert_failure 6
    [[ "$stderr" == *"nohead.lm: stream does not start with a header"* ]]
    # a block, or a header record, of version 0 is damage, not a newer format
    patch "$T/a.lm" "$T/b0.lm" 2 00
    run --separate-stderr lm-cat "$T/b0.lm"
    assert_failure 6
    gen "$T/v0.lm" --format-version 0
    run --separate-stderr lm-cat "$T/v0.lm"
    assert_failure 6
}

@test "format: a future version is refused (exit 8): in the header record and in a block" {
    gen "$T/v9.lm" --format-version 9
    run --separate-stderr lm-cat "$T/v9.lm"
    assert_failure 8
    [[ "$stderr" == *"format version 9"* ]]
    gen "$T/s.lm"
    patch "$T/s.lm" "$T/b2.lm" 2 02
    run --separate-stderr lm-cat "$T/b2.lm"
    assert_failure 8
    [[ "$stderr" == *"format version 2"* ]]
}

@test "format: an unknown upper-case record type is refused (exit 8), a lower-case one skipped" {
    gen "$T/s.lm"
    off=$(rec_offset "$T/s.lm" type)
    # 'Y' (type) becomes 'Q', unknown and critical
    patch "$T/s.lm" "$T/q.lm" "$off" 51
    run --separate-stderr lm-cat "$T/q.lm"
    assert_failure 8
    [[ "$stderr" == *"record type 'Q' at offset $off is unknown"* ]]
    # 'Y' becomes 'y': unknown but skippable
    patch "$T/s.lm" "$T/y.lm" "$off" 79
    run --separate-stderr lm-cat --json "$T/y.lm"
    assert_success
    refute_output --partial '"type":"type"'
    [ "$(echo "$output" | wc -l)" -eq 18 ]
}

@test "format: malformed record bodies with a valid checksum are exit 6" {
    gen "$T/s.lm"
    # a value kind that does not exist: the first column's kind 't' becomes 'q'
    off=$(rec_offset "$T/s.lm" insert)
    # insert: type, length, relid varint (16384 = 3 bytes), ncols, kind
    patch "$T/s.lm" "$T/k.lm" $(( off + 6 )) 71
    run --separate-stderr lm-cat "$T/k.lm"
    assert_failure 6
    [[ "$stderr" == *"malformed insert record at offset $off"* ]]
    # a record length past the end of its block
    off=$(rec_offset "$T/s.lm" end)
    patch "$T/s.lm" "$T/l.lm" $(( off + 1 )) 7f
    run --separate-stderr lm-cat "$T/l.lm"
    assert_failure 6
    [[ "$stderr" == *"bad record framing at offset $off"* ]]
    # a stream that does not start with a header: 'H' becomes 'P' (position)
    patch "$T/s.lm" "$T/h.lm" 12 50
    run --separate-stderr lm-cat "$T/h.lm"
    [ "$status" -eq 6 ]
}

@test "format: a commit time outside years 1..9999 is a malformed record (exit 6) in every mode, the first and last ones read" {
    # 9223372036854775807 overflowed the old formatter (signed overflow,
    # UBSan) and printed a year no target accepts
    for ts in 9223372036854775807 -9223372036854775808 252455616000000000 -63082281600000001; do
        gen "$T/t.lm" --commit-ts "$ts"
        for m in "" --json --stats --verify; do
            run --separate-stderr lm-cat $m "$T/t.lm"
            assert_failure 6
            [[ "$stderr" == *"malformed begin record at offset "*": timestamp $ts is out of range (years 1 to 9999)"* ]]
        done
        # nothing of that transaction was shown
        run --separate-stderr lm-cat "$T/t.lm"
        refute_output --partial insert
        refute_output --partial commit
    done
    # the bounds themselves are fine
    gen "$T/lo.lm" --commit-ts -63082281600000000
    run --separate-stderr lm-cat --json "$T/lo.lm"
    assert_success
    [ "$(jq -r 'select(.type == "commit") | .commit_time' <<<"$output")" = "0001-01-01 00:00:00.000000+00" ]
    gen "$T/hi.lm" --commit-ts 252455615999999999
    run --separate-stderr lm-cat "$T/hi.lm"
    assert_success
    assert_output --partial "commit 0/1000100 end 0/1000130 at 9999-12-31 23:59:59.999999+00"
}

# limited PROGRAM ARGS...: PROGRAM with its address space limited to KB
# (LIMIT_KB, default 600000); under ASan (which reserves terabytes of
# address space) without the limit
limited() {
    if [ "${SANITIZE:-0}" = 1 ]; then
        "$@"
    else
        bash -c 'ulimit -v "$1" && shift && exec "$@"' _ "${LIMIT_KB:-600000}" "$@"
    fi
}

@test "format: a 32 KB zstd bomb whose block claims 1 GiB is corrupt (exit 6) before anything is allocated for it" {
    lm-testgen --bomb 1073741824 >"$T/bomb"
    [ "$(stat -c %s "$T/bomb")" -lt 40000 ]
    for m in --verify "" --json --stats; do
        run --separate-stderr limited lm-cat $m "$T/bomb"
        assert_failure 6
        [[ "$stderr" == *"bad block length 1073741824 at offset 63 (a block holds 1 to 268435456 bytes)"* ]]
        [[ "$stderr" != *"out of memory"* ]]
    done
    # the same claim in a plain stream, and one byte over the limit
    { head -c 63 < <(zstd -dc "$T/bomb" 2>/dev/null); printf 'LM\x01\x00\x10\x00\x00\x01\x00\x00\x00\x00'; } >"$T/plain"
    run --separate-stderr limited lm-cat --verify "$T/plain"
    assert_failure 6
    [[ "$stderr" == *"bad block length 268435457 at offset 63"* ]]
}

@test "format: a block at the 256 MiB limit is read in its own size, not twice that; the writer refuses a bigger record" {
    [ "${SANITIZE:-0}" = 1 ] && skip "ASan's own memory makes the limits meaningless"
    # 8 KB of zstd that make a 256 MiB block (with a wrong checksum): read
    # whole in 400 MB of address space; growing by doubling needed 512 MiB
    lm-testgen --bomb 268435456 >"$T/bomb"
    run --separate-stderr env LIMIT_KB=400000 bash -c "$(declare -f limited); limited lm-cat --verify '$T/bomb'"
    assert_failure 6
    [[ "$stderr" == *"checksum mismatch in the block at offset 63"* ]]
    # a record that would not fit a block is never written
    run --separate-stderr lm-testgen --big 268435456
    assert_failure 1
    [[ "$stderr" == *"standard output: insert record of 2684354"*" bytes is larger than a stream block may hold (268435456 bytes, see lm-format(5))"* ]]
    # one just under the limit is written and read back
    lm-testgen --big 268435000 >"$T/big.lm"
    run --separate-stderr lm-cat --verify "$T/big.lm"
    assert_success
}

@test "format: an empty input is exit 7" {
    : >"$T/empty"
    run --separate-stderr lm-cat "$T/empty"
    assert_failure 7
    [[ "$stderr" == *"empty stream"* ]]
    run --separate-stderr lm-cat </dev/null
    assert_failure 7
    # an empty zstd frame holds no stream either
    zstd -q -c </dev/null >"$T/empty.zst"
    run --separate-stderr lm-cat "$T/empty.zst"
    assert_failure 7
}

@test "format: random bytes fail cleanly, never a crash" {
    for i in 1 2 3; do
        head -c 100000 /dev/urandom >"$T/r"
        run lm-cat --json "$T/r"
        refute_crash
        # the same behind a zstd magic, and behind a block header
        { printf '\x28\xb5\x2f\xfd'; cat "$T/r"; } >"$T/rz"
        run lm-cat "$T/rz"
        refute_crash
        { printf 'LM\x01\x00\x00\x00\x10\x00\x00\x00\x00\x00'; cat "$T/r"; } >"$T/rl"
        run lm-cat "$T/rl"
        refute_crash
    done
}

@test "format: random bytes with valid checksums reach the record decoder, never a crash" {
    gen "$T/s.lm" --big 64
    size=$(stat -c %s "$T/s.lm")
    for i in $(seq 1 60); do
        at=$(( 12 + RANDOM % (size - 12) ))
        byte=$(printf %02x $(( RANDOM % 256 )))
        patch "$T/s.lm" "$T/f.lm" "$at" "$byte"
        run lm-cat --json "$T/f.lm"
        [ "$status" -lt 128 ] || { echo "byte $at = $byte: status $status"; false; }
        run lm-cat --stats "$T/f.lm"
        [ "$status" -lt 128 ] || { echo "byte $at = $byte: stats status $status"; false; }
    done
}

@test "format: the decoder is clean under valgrind on normal, corrupt and truncated streams" {
    command -v valgrind >/dev/null || skip "valgrind not installed"
    # an ASan build (make check SANITIZE=1) checks memory itself, and valgrind cannot run it
    [ "${SANITIZE:-0}" = 1 ] && skip "built with ASan (SANITIZE=1): the sanitizers check memory instead"
    gen "$T/s.lm" --big 100000
    gen "$T/s.zst" --big 100000 --compress
    flip "$T/s.lm" "$T/bad.lm" 100
    head -c 50000 "$T/s.lm" >"$T/cut.lm"
    head -c 200 "$T/s.zst" >"$T/cut.zst"
    run valgrind -q --error-exitcode=99 lm-cat --json "$T/s.lm"
    assert_success
    run valgrind -q --error-exitcode=99 lm-cat --stats "$T/s.zst"
    assert_success
    run valgrind -q --error-exitcode=99 lm-cat "$T/bad.lm"
    [ "$status" -ne 99 ]
    assert_failure 6
    run valgrind -q --error-exitcode=99 lm-cat "$T/cut.lm"
    [ "$status" -ne 99 ]
    assert_failure 7
    run valgrind -q --error-exitcode=99 lm-cat --verify "$T/cut.zst"
    [ "$status" -ne 99 ]
    assert_failure 7
}
