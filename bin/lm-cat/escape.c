/* lm-cat's escaping of names and values for text and JSON output.
 *
 * Names and values come from the source database: an ESC in a table name
 * or a value must not drive the terminal that shows lm-cat's output (see
 * escape.h and lm-cat(1), ESCAPES). */
#include <stdint.h>
#include <string.h>

#include "escape.h"
#include "json.h"

/* The length of the valid UTF-8 sequence at p (at most n bytes), 0 when the
 * byte there does not start one (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xbf;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* What the text and JSON escapings share, at p[0..n): a run of printable
 * ASCII other than a backslash and quote copied at once, or a valid UTF-8
 * sequence of more than one byte passed through (a C1 control as \u0080 to
 * \u009f).  The bytes it took, or 0 for a byte the caller escapes its own
 * way; *seq is then utf8_seq's length there (1 ASCII, 0 not UTF-8). */
static size_t put_plain(lm_buf *b, const uint8_t *p, size_t n, uint8_t quote, size_t *seq)
{
    size_t j = 0;

    while (j < n && p[j] >= 0x20 && p[j] < 0x7f && p[j] != '\\' && p[j] != quote)
        j++;
    if (j) {
        lm_buf_put(b, p, j);
        return j;
    }
    *seq = utf8_seq(p, n);
    if (*seq <= 1)
        return 0;
    if (p[0] == 0xc2 && p[1] <= 0x9f)   /* C1 control */
        lm_json_u00(b, p[1]);
    else
        lm_buf_put(b, p, *seq);
    return *seq;
}

/* p[0..n) escaped into b; quote, when not 0, is doubled (a quoted literal) */
void esc_put(lm_buf *b, const uint8_t *p, size_t n, char quote)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t len = 0, took = put_plain(b, p + i, n - i, (uint8_t)quote, &len);

        i += took ? took : 1;
        if (took)
            continue;
        if (len == 1 && c >= 0x20 && c != 0x7f && c != '\\') {
            if (quote && c == (uint8_t)quote)
                lm_buf_u8(b, c);
            lm_buf_u8(b, c);
        } else if (c == '\\')
            lm_buf_puts(b, "\\\\");
        else if (c == '\n')
            lm_buf_puts(b, "\\n");
        else if (c == '\t')
            lm_buf_puts(b, "\\t");
        else if (c == '\r')
            lm_buf_puts(b, "\\r");
        else {
            char x[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            lm_buf_put(b, x, 4);
        }
    }
}

/* A JSON string, escaped as lm_json_str does (quote, backslash, every
 * control character), and besides: a byte that is not part of valid UTF-8
 * as \ufffd (the replacement character: JSON has no bytes), the C1
 * controls as \u0080 to \u009f.  The output is valid UTF-8 and JSON. */
void esc_json(lm_buf *out, const void *s, size_t n)
{
    const uint8_t *p = s;

    lm_buf_u8(out, '"');
    for (size_t i = 0; i < n;) {
        size_t len = 0, took = put_plain(out, p + i, n - i, '"', &len);

        if (took) {
            i += took;
        } else {
            if (len == 0)
                lm_buf_puts(out, "\\ufffd");
            else
                lm_json_byte(out, p[i]);
            i++;
        }
    }
    lm_buf_u8(out, '"');
}
