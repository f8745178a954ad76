/* lm-cat's escaping: no byte of the stream reaches a terminal raw.
 *
 * Text output (records, --stats, --verify, error messages) escapes C-style
 * (lm-cat(1), ESCAPES): a backslash as \\, newline, tab and carriage return
 * as \n \t \r, every other C0 control, DEL and each byte that is not part of
 * valid UTF-8 as \xNN, the C1 controls (U+0080 to U+009F) as \u0080 to
 * \u009f. Valid UTF-8 otherwise passes unchanged. JSON escapes the control
 * characters its way and writes a byte that is not valid UTF-8 as U+FFFD. */
#ifndef LM_CAT_ESCAPE_H
#define LM_CAT_ESCAPE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* p[0..n) escaped into b; quote, when not 0, is doubled (a quoted literal) */
void esc_put(lm_buf *b, const uint8_t *p, size_t n, char quote);

/* s[0..n) as a JSON string, quotes included, into out: escaped as
 * lm_json_str does (quote, backslash, every control character), and
 * besides a byte that is not valid UTF-8 as \ufffd, the C1 controls as
 * \u0080 to \u009f. The output is valid UTF-8 and JSON. */
void esc_json(lm_buf *out, const void *s, size_t n);

#endif
