/* Spool directory of lm-decode, read by lm-apply: zstd segment files named
 * by LSN range.
 *
 *   seg-<START>.lmz.partial    the segment being written
 *   seg-<START>-<END>.lmz      a finished segment: fsync'd, renamed, acked
 *
 * START and END are LSNs as 16 hex digits, so names sort in stream order.
 * START is where the segment's stream begins (the previous segment's END),
 * END the last durable position in it (a commit's end LSN or a keepalive
 * position). */
#ifndef LM_SPOOLDIR_H
#define LM_SPOOLDIR_H

#include <stdbool.h>
#include <stdint.h>

typedef struct spool_seg {
    char *name;
    uint64_t start, end;
    bool partial;
} spool_seg;

/* List segments in LSN order (finished ones, then the partial if any).
 * Returns the count; *segs is malloc'd. -1 on error (errno). */
int spool_list(const char *dir, spool_seg **segs);
void spool_list_free(spool_seg *segs, int n);
/* Parse a segment file name. */
bool spool_parse_name(const char *name, spool_seg *seg);
char *spool_partial_name(uint64_t start);
char *spool_final_name(uint64_t start, uint64_t end);
/* fsync a directory (after a rename or unlink); exits on error. */
void spool_sync_dir(const char *dir);

#endif
