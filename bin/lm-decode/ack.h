/* The ack channel of pipe mode: the consumer (lm-apply --ack) writes one
 * LSN a line once a transaction is durable on the target; lm-decode reads
 * them without blocking and reports only those positions as flushed.
 *
 * A FIFO is opened read-write (open never blocks, no EOF when the writer
 * goes); a regular file is read from its end at open, so lines of an
 * earlier run never count. */
#ifndef LM_DECODE_ACK_H
#define LM_DECODE_ACK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ack_channel {
    int fd;                 /* -1: no channel */
    bool is_fifo;
    bool skip;              /* up to the next newline: a line of an earlier run */
    off_t offset;           /* regular file: bytes read so far */
    size_t len;
    char line[128];
} ack_channel;

/* Opens PATH (NULL: no channel; a.fd stays -1). Exits LM_EXIT_IO when it
 * cannot be opened. */
void ack_open(ack_channel *a, const char *path);

/* Reads every complete line there is. The highest valid position, never
 * past WRITTEN (a consumer of another stream cannot make the slot skip
 * anything), raises *durable. Malformed lines are warned about, skipped. */
void ack_read(ack_channel *a, uint64_t written, uint64_t *durable);

/* The descriptor worth polling: a FIFO's; -1 for a regular file (always
 * readable: polling it would spin) or no channel. */
int ack_pollfd(const ack_channel *a);

#endif
