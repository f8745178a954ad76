/* Minimal JSON output: escaped strings into a buffer or a stream. */
#ifndef LM_JSON_H
#define LM_JSON_H

#include <stdio.h>
#include "buf.h"

/* Append one byte of a JSON string: the quote, a backslash and the control
 * characters escaped, any other byte as it is (UTF-8 passes through). */
void lm_json_byte(lm_buf *b, uint8_t c);
/* Append \u00XX, the escape of the code point c (below U+0100). */
void lm_json_u00(lm_buf *b, uint8_t c);
/* Append s (n bytes) as a JSON string, quotes included. */
void lm_json_str(lm_buf *b, const void *s, size_t n);
/* Write a NUL-terminated string as a JSON string to f. */
void lm_json_fputs(FILE *f, const char *s);

#endif
