/* Progress of long work on standard error, the same way in every program.
 *
 *   --progress[=WHEN]   auto (the default): a live view when standard
 *                       error is a terminal, nothing otherwise;
 *                       always: the live view on a terminal, plain lines
 *                       (one a second at most) otherwise; never: nothing.
 *                       A bare --progress means always.
 *
 * On a terminal the view is redrawn in place (the cursor goes back up over
 * the lines drawn last and each line is cleared) and stays on the screen
 * when the work ends. Elsewhere (a log file, a pipe) every report is one or
 * more plain lines with the program name in front: no carriage return, no
 * escape sequence, nothing that corrupts a log. */
#ifndef LM_PROGRESS_H
#define LM_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { LM_PROGRESS_NEVER, LM_PROGRESS_AUTO, LM_PROGRESS_ALWAYS } lm_progress_when;

/* The value of --progress (NULL: given bare, so always); a bad value is a
 * usage error naming the option. */
lm_progress_when lm_opt_progress(const char *val);

typedef struct lm_progress {
    FILE *f;
    bool on;                 /* anything is shown */
    bool live;               /* redrawn in place (a terminal) */
    int lines;               /* lines drawn last (live) */
    int64_t last_us;         /* when the last report was made */
    int64_t interval_us;     /* between reports */
} lm_progress;

/* Decides from WHEN and whether F is a terminal (LM_PROGRESS_TTY=1 or 0 in
 * the environment overrides the test, for tests and for terminals a
 * program cannot see, such as ssh without -t). */
void lm_progress_init(lm_progress *p, lm_progress_when when, FILE *f);

/* Whether a report is due now (one a second; a live view four times a
 * second): callers build the text only then. FORCE: always, when on. */
bool lm_progress_due(lm_progress *p, bool force);

/* Shows TEXT (one or more lines, '\n' between them, no trailing one
 * needed): live, in place of the last report, never more lines than the
 * terminal has rows (the last shown says how many more there are, unless
 * it is the only one), each cut to its width;
 * otherwise each line as "prog: line". */
void lm_progress_show(lm_progress *p, const char *text);

/* The last report stays as it is: the next one (another phase) is drawn
 * below it rather than over it. */
void lm_progress_finish(lm_progress *p);

/* The lines of TEXT that a terminal of ROWS rows shows (0: not known, all
 * of them): at most ROWS - 1, the cursor needs one. */
int lm_progress_fit(int lines, int rows);

/* How many of the LEN bytes of S a terminal of COLS columns shows on one
 * row (COLS - 1 characters at most, never half a UTF-8 character; COLS 0:
 * not known, all of them): a line that wraps would take two rows. */
size_t lm_progress_cut(const char *s, size_t len, int cols);

/* NAME for a progress line: control characters as \n, \r, \t or \xNN
 * (a name cannot move the cursor or end a log line), cut to fit buf with
 * "..." at its end. */
char *lm_progress_name(char *buf, size_t size, const char *name);

/* The copy's overall progress, one line ("copying: 42.0% ..."). Bytes:
 * COPY bytes relayed against the source's estimate; rows against an
 * estimate (est_rows 0: none shown). */
typedef struct lm_copy_progress {
    double done_bytes, total_bytes;
    double rows, est_rows;
    double secs;              /* since the copy began */
    int tables_done, tables_total;
    bool last;                /* the copy is over: 100%, no ETA */
    bool bar;                 /* a bar after the percentage */
} lm_copy_progress;
char *lm_progress_copy_line(char *buf, size_t size, const lm_copy_progress *cp);

/* One row of pg_stat_progress_create_index, one line: "NAME: COMMAND,
 * PHASE, blocks D of T (P%), tuples D of T (P%)" (totals of 0 left out;
 * NAME escaped with lm_progress_name). */
typedef struct lm_index_progress {
    const char *name;         /* the index, or the table while it has none */
    const char *command, *phase;
    int64_t blocks_done, blocks_total;
    int64_t tuples_done, tuples_total;
} lm_index_progress;
char *lm_progress_index_line(char *buf, size_t size, const lm_index_progress *ip);

/* A bar of WIDTH cells for a fraction (clamped to 0..1) into buf (at least
 * WIDTH + 3 bytes): "[#####.....]". */
char *lm_progress_bar(char *buf, size_t size, double fraction, int width);

/* "1.5 GB", "12.0 MB", "512 B": into buf (at least 16 bytes). */
char *lm_progress_bytes(char *buf, size_t size, double bytes);

/* "1h02m", "3m05s", "42s", "-" when not known (negative): into buf (at
 * least 16 bytes). */
char *lm_progress_secs(char *buf, size_t size, double secs);

#endif
