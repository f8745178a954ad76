/* CRC-32C (Castagnoli), as in iSCSI and PostgreSQL's WAL. Uses the SSE4.2
 * instruction where the CPU has it. */
#ifndef LM_CRC32C_H
#define LM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc = lm_crc32c(0, ...) for a fresh one, then feed more. */
uint32_t lm_crc32c(uint32_t crc, const void *data, size_t n);

#endif
