/* Minimal JSON output: escaped strings into a buffer or a stream. */
#ifndef LM_JSON_H
#define LM_JSON_H

#include <stdio.h>
#include "buf.h"

/* Append s (n bytes) as a JSON string, quotes included. */
void lm_json_str(lm_buf *b, const void *s, size_t n);
/* Write a NUL-terminated string as a JSON string to f. */
void lm_json_fputs(FILE *f, const char *s);

#endif
