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

/* Whether a report is due now (one a second; a live view five times a
 * second): callers build the text only then. FORCE: always, when on. */
bool lm_progress_due(lm_progress *p, bool force);

/* Shows TEXT (one or more lines, '\n' between them, no trailing one
 * needed): live, in place of the last report; otherwise each line as
 * "prog: line". */
void lm_progress_show(lm_progress *p, const char *text);

/* A bar of WIDTH cells for a fraction (clamped to 0..1) into buf (at least
 * WIDTH + 3 bytes): "[#####.....]". */
char *lm_progress_bar(char *buf, size_t size, double fraction, int width);

/* "1.5 GB", "12.0 MB", "512 B": into buf (at least 16 bytes). */
char *lm_progress_bytes(char *buf, size_t size, double bytes);

/* "1h02m", "3m05s", "42s", "-" when not known (negative): into buf (at
 * least 16 bytes). */
char *lm_progress_secs(char *buf, size_t size, double secs);

#endif
