/* Stream framing of the change format: blocks of records, each block
 * checksummed with CRC-32C, optionally inside zstd frames. A reader
 * detects zstd by its magic number, so plain and compressed input are read
 * alike (and `zstd -dc segment` gives a valid plain stream).
 *
 *   block  := "LM" version:u8 flags:u8 length:u32be crc32c:u32be payload
 *   payload:= record+            (at most LM_BLOCK_MAX bytes unless one
 *                                 record alone is larger; never more than
 *                                 LM_BLOCK_PAYLOAD_MAX)
 *   record := type:u8 length:varint body
 *
 * The CRC covers the 8 bytes before it and the payload. */
#ifndef LM_STREAM_H
#define LM_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "record.h"

#define LM_BLOCK_MAX 65536
#define LM_BLOCK_HEADER 12
/* The largest payload a block may have (a single record alone larger than
 * LM_BLOCK_MAX): 256 MiB. A writer refuses a bigger record, a reader a
 * bigger block before it allocates anything for it, so that a few bytes of
 * zstd cannot make a reader allocate gigabytes (lm-format(5)). */
#define LM_BLOCK_PAYLOAD_MAX (256u << 20)
/* zstd frames needing a larger window than 2^27 bytes (128 MiB, zstd's
 * default limit; frames of zstd --long=28 and up) are refused as corrupt */
#define LM_ZSTD_WINDOWLOG_MAX 27

typedef struct lm_writer lm_writer;

enum lm_flush {
    LM_FLUSH_BLOCK = 0,  /* close the current block (no I/O needed) */
    LM_FLUSH_WRITE = 1,  /* ... and hand everything to the file descriptor */
    LM_FLUSH_FRAME = 2   /* ... ending the zstd frame first (a cut point) */
};

/* A writer on fd (not closed by lm_writer_free). name is for messages.
 * compress: zstd at level (1..19; 0 means the default, 1). Write errors are
 * fatal (LM_EXIT_IO), naming the file. */
lm_writer *lm_writer_new(int fd, const char *name, bool compress, int level);
/* While a write to fd cannot go on (fd is non-blocking and full: a pipe
 * whose reader is slow), call fn(arg) about once a second until it can. */
void lm_writer_set_wait(lm_writer *w, void (*fn)(void *), void *arg);
/* Append one record; may write to fd when buffers fill. A record larger
 * than a block may hold (LM_BLOCK_PAYLOAD_MAX) is fatal (LM_EXIT_FAILURE). */
void lm_writer_put(lm_writer *w, const lm_record *r);
/* Append a record whose body is already encoded. */
void lm_writer_put_raw(lm_writer *w, uint8_t type, const void *body, size_t len);
void lm_writer_flush(lm_writer *w, enum lm_flush how);
/* fsync the file descriptor (after LM_FLUSH_WRITE or FRAME). */
void lm_writer_sync(lm_writer *w);
/* Uncompressed bytes framed so far (the stream offset of the next block). */
uint64_t lm_writer_offset(const lm_writer *w);
/* Bytes handed to the file descriptor so far. */
uint64_t lm_writer_file_bytes(const lm_writer *w);
/* Bytes in buffers not yet handed to the file descriptor (roughly). */
uint64_t lm_writer_pending(const lm_writer *w);
uint64_t lm_writer_records(const lm_writer *w);
/* Flush (FRAME) and free; does not close fd. */
void lm_writer_free(lm_writer *w);

typedef struct lm_reader lm_reader;

/* Called by the reader at end of input: return 1 to try reading again
 * (following a growing file), 0 to treat it as the end, -1 to stop with an
 * error (set with lm_reader_set_error). */
typedef int (*lm_reader_wait_fn)(lm_reader *r, void *arg);

/* Called when a zstd frame ends: stream_off is the uncompressed stream
 * offset and file_off the compressed file offset just past the frame. */
typedef void (*lm_reader_frame_fn)(lm_reader *r, uint64_t stream_off, uint64_t file_off,
                                   void *arg);

/* A reader on fd (not closed by lm_reader_free); name is for messages. */
lm_reader *lm_reader_new(int fd, const char *name);
void lm_reader_set_wait(lm_reader *r, lm_reader_wait_fn fn, void *arg);
void lm_reader_set_frame_cb(lm_reader *r, lm_reader_frame_fn fn, void *arg);
/* Start over on a new fd with a new name (next file of a sequence), keeping
 * the stream identity seen so far: its header must match. */
void lm_reader_reset_input(lm_reader *r, int fd, const char *name);
/* Next record: 1 = got one (valid until the next call), 0 = clean end of
 * input at a block boundary, -1 = error (lm_reader_error, lm_reader_errcode:
 * LM_EXIT_CORRUPT, LM_EXIT_TRUNCATED, LM_EXIT_MISMATCH or LM_EXIT_IO). Every
 * record of a block is returned only after the block's CRC was checked. */
int lm_reader_next(lm_reader *r, lm_record *rec);
const char *lm_reader_error(const lm_reader *r);
int lm_reader_errcode(const lm_reader *r);
void lm_reader_set_error(lm_reader *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *lm_reader_name(const lm_reader *r);
/* Uncompressed stream offset of the block holding the last record. */
uint64_t lm_reader_block_offset(const lm_reader *r);
/* Uncompressed stream offset of the last record returned. */
uint64_t lm_reader_record_offset(const lm_reader *r);
/* Bytes of the current input file consumed so far (compressed if zstd). */
uint64_t lm_reader_file_offset(const lm_reader *r);
/* The last record's encoded bytes (type, length, body), valid until the
 * next call: for keeping records to replay. */
const uint8_t *lm_reader_record_raw(const lm_reader *r, size_t *len);
/* Whether input is buffered already (the next record may not block). */
bool lm_reader_buffered(const lm_reader *r);
/* Encoded size of the last record (type + length + body). */
size_t lm_reader_record_size(const lm_reader *r);
/* The first header seen (NULL before one was read); strings stay valid. */
const lm_record *lm_reader_header(const lm_reader *r);
bool lm_reader_compressed(const lm_reader *r);
/* Whether the input is at a zstd frame boundary (always true for plain). */
bool lm_reader_at_frame_end(const lm_reader *r);
void lm_reader_free(lm_reader *r);

#endif
