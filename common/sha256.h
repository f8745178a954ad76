/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104): small, for the cutover
 * marker's authentication, not for bulk data. */
#ifndef LM_SHA256_H
#define LM_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LM_SHA256_LEN 32

typedef struct lm_sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t fill;
} lm_sha256;

/* Incremental hashing: init, update any number of times, final. */
void lm_sha256_init(lm_sha256 *c);
void lm_sha256_update(lm_sha256 *c, const void *data, size_t len);
void lm_sha256_final(lm_sha256 *c, uint8_t out[LM_SHA256_LEN]);

/* HMAC-SHA256 of msg under key (any length). */
void lm_hmac_sha256(const uint8_t *key, size_t keylen, const void *msg, size_t msglen,
                    uint8_t out[LM_SHA256_LEN]);

/* Compare n bytes in time independent of where they differ. */
bool lm_equal_ct(const uint8_t *a, const uint8_t *b, size_t n);

#endif
