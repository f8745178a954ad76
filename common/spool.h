/* The spool: lm-decode writes the change stream into zstd segment files in
 * a directory, lm-apply --spool reads them, following the writer live with
 * --follow. This header is the protocol both sides rely on; spool.c holds
 * the names, the writer and recovery, spoolread.c the follower.
 *
 * 1. Names. LSNs as exactly 16 upper-case hex digits, so that names sort
 *    in stream order:
 *      seg-<START>.lmz.partial    the segment being written
 *      seg-<START>-<END>.lmz      a finished segment
 *    START is where the segment's stream begins (the previous segment's
 *    END, or where the writer began streaming); END the last durable
 *    position in it (a commit's end LSN or a keepalive position). Every
 *    other file (lm-decode.lock, lm-decode.reserve) is no segment.
 *
 * 2. Content. A segment is a sequence of zstd frames that can be read
 *    alone: its first frame holds a header and every relation and type
 *    known. A frame ends between transactions only (at each commit when
 *    idle, at the first commit after ~100 ms when busy): a frame end after
 *    a complete transaction or position is a cut point, where recovery may
 *    cut the partial. A segment begins between transactions and is
 *    rotated only between transactions once it holds a complete
 *    transaction or position (a transaction larger than the segment size
 *    makes a larger segment). A finished segment ends with a trailer
 *    (last_lsn = END), or with an end record when the writer stopped.
 *
 * 3. Durability, in this order. The partial is created and the directory
 *    fsync'd before anything in it is acknowledged. The writer tells the
 *    slot only positions at a cut point that is fsync'd in the partial.
 *    Finishing: trailer, fsync, rename to the final name, fsync of the
 *    directory. The rename is atomic: a reader sees either name, and both
 *    are the same file (inode).
 *
 * 4. One writer per directory at a time: it holds a lock on
 *    lm-decode.lock while it runs.
 *
 * 5. What a restarted writer does. First, every leftover partial (a
 *    crash, kill -9, a full disk) is cut back in place (ftruncate: a copy
 *    would need room a full disk has not got) to its last cut point, gets
 *    a trailer, is fsync'd, renamed seg-<START>-<cut>.lmz and the
 *    directory fsync'd; a partial without a complete transaction is
 *    removed. A trailer that does not fit on a full disk takes the room of
 *    lm-decode.reserve (64 kB written at every start when there is room);
 *    failing that the partial stays cut back and the next start finishes
 *    it. Finished segments are never changed. Then the writer streams on
 *    from the last END, or from the slot's confirmed position when no
 *    finished segment is left (all pruned): that can be behind what a
 *    reader read, so its new segments overlap what was read.
 *
 * 6. What a reader may assume while the writer is live. Finished segments
 *    never change. The partial only grows, and may end inside a frame or
 *    a block (not written yet, not damage). A reader never removes a
 *    partial; it may remove (prune) a finished segment whose END is at or
 *    below what the target holds durably, then fsync the directory.
 *
 * 7. Which segment a reader reads next: by position, not by name. Let pos
 *    be how far the stream was read (applied, read into an open group,
 *    segment ENDs and trailers read). The next is the first, by START, of
 *    the finished segments that reach past pos (END > pos, or START = END
 *    = pos: a segment holding an end record alone), other than the file
 *    just read; failing that the partial, unless it is the file just read.
 *    Starting over (nothing read yet): the first finished segment not
 *    wholly applied (END above the applied position), else the partial.
 *    What a segment holds at or below the applied position is skipped by
 *    the target's replication origin.
 *
 * 8. How a reader notices a restarted writer (rule 5) under it: the file
 *    it reads became shorter than what it read (cut back); or the
 *    partial's name is another file (inode) now; or the partial is gone
 *    and no finished segment with its START is its file; or it read
 *    damage in a partial that is no longer a partial of that name (it read
 *    past the cut into the new trailer). It then forgets what it read and
 *    reads the spool again from the applied position
 *    (LM_SPOOL_RESTART). */
#ifndef LM_SPOOL_H
#define LM_SPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "stream.h"

/* ------------------------------------------------------------ names (1) */

typedef struct spool_seg {
    char *name;
    uint64_t start, end;
    bool partial;
} spool_seg;

/* List segments in LSN order (finished ones by START, then the partial if
 * any). Returns the count; *segs is malloc'd. -1 on error (errno). */
int spool_list(const char *dir, spool_seg **segs);
void spool_list_free(spool_seg *segs, int n);
/* Parse a segment file name; false for any other name. */
bool spool_parse_name(const char *name, spool_seg *seg);
char *spool_partial_name(uint64_t start);
char *spool_final_name(uint64_t start, uint64_t end);
/* fsync a directory (after a create, rename or unlink); exits on error. */
void spool_sync_dir(const char *dir);

/* ---------------------------------------------------- the writer (2-4) */

typedef struct spool_writer spool_writer;

/* Take the spool DIR for writing: create it (mode 0700) if missing,
 * require it private (privdir.h), lock it (exit LM_EXIT_PREFLIGHT while
 * another writer holds it), recover every leftover partial and set aside
 * the reserve. *end: the END of the last segment, where streaming goes on
 * (0: no segment). Exits on I/O errors. */
spool_writer *spool_writer_open(const char *dir, uint64_t *end);
/* Create seg-<start>.lmz.partial and fsync the directory. Returns the
 * stream writer of the segment (zstd), owned by sw: the caller puts the
 * header and catalog, then cuts at start. */
lm_writer *spool_writer_begin(spool_writer *sw, uint64_t start);
/* End the zstd frame between transactions, where the stream is complete
 * up to lsn: a cut point, which may be acknowledged once fsync'd. */
void spool_writer_cut(spool_writer *sw, uint64_t lsn);
/* The lsn of the last cut point of the open segment. */
uint64_t spool_writer_last_cut(const spool_writer *sw);
/* Write out and fsync the open segment; returns the position now durable
 * (the last cut point). */
uint64_t spool_writer_sync(spool_writer *sw);
/* Whether the open segment is due for rotation: ready (between
 * transactions, and it holds a complete transaction or position) and at
 * max_bytes compressed (written or buffered) or max_age_us old. */
bool spool_writer_due(const spool_writer *sw, bool ready, uint64_t max_bytes, int64_t max_age_us);
/* Finish the open segment between transactions, complete up to end: a
 * trailer if asked (the writer did not end it with an end record), a cut,
 * fsync, rename to seg-<START>-<end>.lmz, fsync of the directory. Its
 * writer is freed. Returns end, the next segment's START. */
uint64_t spool_writer_finish(spool_writer *sw, uint64_t end, bool trailer);
/* Give the directory up (the lock). A segment still open stays a partial,
 * as after a crash: the next writer recovers it. */
void spool_writer_close(spool_writer *sw);

/* ------------------------------------------------------- recovery (5) */

/* Cut a leftover partial back to its last cut point, append a trailer and
 * finish it, or remove it if it holds no complete transaction. Returns
 * the END of the finished segment, or start if it was removed. Exits on
 * I/O errors. */
uint64_t spool_recover_partial(const char *dir, const char *name, uint64_t start);

/* ------------------------------------------------- the follower (6-8) */

typedef struct spool_follower spool_follower;

/* The error code (lm_reader_errcode) that spool_follower_check sets when
 * the segment being read changed under the reader (rule 8): read the
 * spool again from the applied position (spool_follower_restart). Not an
 * exit status (those are below 256): it never leaves the program. */
enum { LM_SPOOL_RESTART = 1000 };

/* Whether s is the file being read (whatever its name is now). */
typedef bool (*spool_current_fn)(const spool_seg *s, void *arg);
/* Rule 7 over segs as spool_list orders them: the index of the segment to
 * read next, or -1. With current (something is being read): pos is how far
 * the stream was read, and the file being read is never chosen. Without
 * (starting over): pos is the applied position. */
int spool_pick_next(const spool_seg *segs, int n, uint64_t pos, spool_current_fn current, void *arg);

/* A follower of the spool DIR, reading nothing yet. */
spool_follower *spool_follower_new(const char *dir);
void spool_follower_free(spool_follower *sf);
/* Open the next segment (rule 7) and return its file descriptor (owned by
 * sf), or -1 if there is none yet. applied: the target's position;
 * grouped: the end of the last transaction read into an open group (0:
 * none). The segment read so far is closed. Exits on I/O errors. */
int spool_follower_next(spool_follower *sf, uint64_t applied, uint64_t grouped);
/* Whether a segment after the one being read exists (same arguments). */
bool spool_follower_more(spool_follower *sf, uint64_t applied, uint64_t grouped);
/* A trailer read: the stream is read up to last_lsn. */
void spool_follower_trailer(spool_follower *sf, uint64_t last_lsn);
/* At the end of what the segment being read holds now (r reads it): as an
 * lm_reader_wait_fn, 1 to read again (a partial, which may grow, or one
 * finished under the reader with its tail still to read), 0 if it is
 * finished and read to its end, -1 if it changed under the reader (rule
 * 8; the error, LM_SPOOL_RESTART, is set on r). */
int spool_follower_check(spool_follower *sf, lm_reader *r);
/* Whether the partial being read is no longer a partial of that name
 * (finished, recovered or replaced): after damage read in it, rule 8. */
bool spool_follower_replaced(spool_follower *sf);
/* Whether the segment being read is the partial. */
bool spool_follower_partial(const spool_follower *sf);
/* The path of the segment being read (NULL when none). */
const char *spool_follower_path(const spool_follower *sf);
/* Forget what was read (rule 8): the next segment is chosen as when
 * starting over. */
void spool_follower_restart(spool_follower *sf);
/* Remove the finished segments whose END is at or below durable (rule 6),
 * then fsync the directory; a segment that cannot be removed is a
 * warning. */
void spool_prune(const char *dir, uint64_t durable);

#endif
