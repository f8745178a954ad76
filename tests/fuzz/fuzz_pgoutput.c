/* libFuzzer target: lm_pgoutput_parse on one message (the bytes after the
 * XLogData header), as lm-decode receives them from the walsender. A parsed
 * message is also encoded as a change format record and decoded again:
 * whatever the parser accepts must survive the round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgoutput.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    static lm_arena arena, arena2;
    lm_record rec, back;
    lm_buf enc = {0};
    char err[256];
    uint8_t *copy;

    if (!inited) {
        lm_log_init("fuzz_pgoutput");
        inited = 1;
    }
    /* an exact-size heap copy: ASan sees any read past the message */
    copy = lm_malloc(size);
    memcpy(copy, data, size);
    err[0] = '\0';
    if (lm_pgoutput_parse(copy, size, &rec, &arena, err, sizeof err) == 0) {
        lm_record_encode(&enc, &rec);
        if (!lm_record_decode(rec.type, enc.data, enc.len, &back, &arena2))
            abort(); /* the parser produced a record its own format rejects */
        if (back.type != rec.type)
            abort();
    } else if (!err[0])
        abort(); /* a refusal must say why */
    lm_buf_free(&enc);
    lm_arena_reset(&arena);
    lm_arena_reset(&arena2);
    free(copy);
    return 0;
}
