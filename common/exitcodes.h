/* Exit codes shared by every lm program: the one table, listed in every
 * man page's EXIT STATUS section. */
#ifndef LM_EXITCODES_H
#define LM_EXITCODES_H

enum lm_exit {
    LM_EXIT_OK = 0,          /* success */
    LM_EXIT_FAILURE = 1,     /* unexpected failure (a bug, out of memory) */
    LM_EXIT_USAGE = 2,       /* bad command line: unknown option, value out of range */
    LM_EXIT_CONNECT = 3,     /* could not connect or authenticate */
    LM_EXIT_PREFLIGHT = 4,   /* a precondition on a server is not met (privilege,
                                wal_level, replica identity, existing slot, missing
                                table or column on the target, ...); nothing changed */
    LM_EXIT_SERVER = 5,      /* a server refused a statement while working, or the
                                connection was lost for good */
    LM_EXIT_CORRUPT = 6,     /* stream corrupt: bad magic, checksum mismatch, bad record */
    LM_EXIT_TRUNCATED = 7,   /* stream ends without an end record or segment trailer */
    LM_EXIT_MISMATCH = 8,    /* stream not for this target: another source system or
                                slot, or a format version this build cannot read */
    LM_EXIT_IO = 9,          /* local I/O error: disk full, permission, broken pipe */
    LM_EXIT_DIFF = 10,       /* verify found differences */
    LM_EXIT_TIMEOUT = 11     /* a wait ran out of time (cutover, --timeout) */
};

#endif
