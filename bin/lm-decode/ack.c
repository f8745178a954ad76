/* The ack channel of pipe mode (see ack.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ack.h"
#include "exitcodes.h"
#include "log.h"
#include "lsn.h"

void ack_open(ack_channel *a, const char *path)
{
    struct stat sb;

    memset(a, 0, sizeof *a);
    a->fd = -1;
    if (!path)
        return;
    if (stat(path, &sb) == 0 && S_ISFIFO(sb.st_mode)) {
        /* read-write: open never blocks and the FIFO never reports EOF */
        a->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        a->is_fifo = true;
    } else
        a->fd = open(path, O_RDONLY | O_NONBLOCK | O_CREAT | O_CLOEXEC, 0600);
    if (a->fd < 0)
        lm_fatal(LM_EXIT_IO, "could not open ack file \"%s\": %s", path, strerror(errno));
    if (!a->is_fifo) {
        /* A regular file keeps the lines of earlier runs (lm-apply
         * appends): they acknowledge data of another stream, or not yet
         * applied. Only lines written from now on count: reading starts at
         * the end, and a line cut short there is no line of ours. */
        char last;
        off_t end = lseek(a->fd, 0, SEEK_END);
        if (end < 0)
            lm_fatal(LM_EXIT_IO, "could not seek in ack file \"%s\": %s", path, strerror(errno));
        if (end > 0 && pread(a->fd, &last, 1, end - 1) == 1 && last != '\n')
            a->skip = true;
        a->offset = end;
    }
}

static void take_line(ack_channel *a, uint64_t written, uint64_t *durable)
{
    uint64_t lsn;

    a->line[a->len] = '\0';
    if (lm_lsn_parse(a->line, &lsn)) {
        if (lsn > written)
            lsn = written;
        if (lsn > *durable)
            *durable = lsn;
    } else if (a->len)
        lm_warning("ignoring a malformed line on the ack channel: \"%s\"", a->line);
    a->len = 0;
}

void ack_read(ack_channel *a, uint64_t written, uint64_t *durable)
{
    char buf[4096];

    if (a->fd < 0)
        return;
    if (!a->is_fifo) {
        /* a file cut back (truncated by its owner) is read again from
         * its start: its lines are new */
        struct stat sb;
        if (fstat(a->fd, &sb) == 0 && sb.st_size < a->offset) {
            a->offset = lseek(a->fd, 0, SEEK_SET);
            a->len = 0;
            a->skip = false;
        }
    }
    for (;;) {
        ssize_t n = read(a->fd, buf, sizeof buf);
        if (n <= 0)
            return;
        if (!a->is_fifo)
            a->offset += n;
        for (ssize_t i = 0; i < n; i++) {
            char ch = buf[i];
            if (a->skip) {
                a->skip = ch != '\n';
                continue;
            }
            if (ch == '\n')
                take_line(a, written, durable);
            else if (a->len < sizeof a->line - 1)
                a->line[a->len++] = ch;
        }
        if (!a->is_fifo && (size_t)n < sizeof buf)
            return;
    }
}

int ack_pollfd(const ack_channel *a)
{
    return a->is_fifo ? a->fd : -1;
}
