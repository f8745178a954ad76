#include <string.h>

#include "json.h"

void lm_json_u00(lm_buf *b, uint8_t c)
{
    static const char hex[] = "0123456789abcdef";
    char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

    lm_buf_put(b, u, 6);
}

void lm_json_byte(lm_buf *b, uint8_t c)
{
    switch (c) {
    case '"': lm_buf_puts(b, "\\\""); break;
    case '\\': lm_buf_puts(b, "\\\\"); break;
    case '\n': lm_buf_puts(b, "\\n"); break;
    case '\r': lm_buf_puts(b, "\\r"); break;
    case '\t': lm_buf_puts(b, "\\t"); break;
    default:
        if (c < 0x20 || c == 0x7f)
            lm_json_u00(b, c);
        else
            lm_buf_u8(b, c);
    }
}

void lm_json_str(lm_buf *b, const void *s, size_t n)
{
    const uint8_t *p = s;

    lm_buf_u8(b, '"');
    for (size_t i = 0; i < n; i++)
        lm_json_byte(b, p[i]);
    lm_buf_u8(b, '"');
}

void lm_json_fputs(FILE *f, const char *s)
{
    lm_buf b = {0};
    lm_json_str(&b, s, strlen(s));
    fwrite(b.data, 1, b.len, f);
    lm_buf_free(&b);
}
