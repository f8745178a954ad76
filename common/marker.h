/* The cutover marker's authentication.  lm-migrate cutover sends the
 * marker as a transactional logical message, prefix LM_MARKER_PREFIX,
 * content "cutover ID MAC": MAC is HMAC-SHA256(token, ID) in lower-case
 * hex, the token a random secret lm-migrate start keeps in the work
 * directory (marker.key, mode 0600: hex digits on one line).  Anyone who
 * can connect to the source can emit a message with that prefix; only one
 * who knows the token can make a marker that verifies.
 *
 * lm-migrate cutover --rehearse sends a rehearsal marker the same way,
 * content "rehearse ID MAC", MAC = HMAC-SHA256(token, "rehearse ID"): it
 * verifies as no cutover marker (the MAC is over other bytes), lm-decode
 * passes it on without ending the stream and lm-apply records it in
 * lm.marker like the cutover's, which is what the rehearsal waits for. */
#ifndef LM_MARKER_H
#define LM_MARKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LM_MARKER_KEY_MAX 64

typedef struct lm_marker_key {
    uint8_t key[LM_MARKER_KEY_MAX];
    size_t len;
} lm_marker_key;

/* Parse hex digits (16 to 64 bytes' worth; surrounding white space
 * ignored) into a key. */
bool lm_marker_key_parse(const char *hex, size_t len, lm_marker_key *k);
/* Read a token file: a regular file of this user that nobody else may read
 * or write. false with *err (malloc'd, names the file, never the token). */
bool lm_marker_key_load(const char *path, lm_marker_key *k, char **err);
/* The marker content "cutover ID MAC" for id (malloc'd). */
char *lm_marker_make(const lm_marker_key *k, const char *id);
/* Whether content (len bytes, not NUL-terminated) is a marker this key
 * made: "cutover ", an ID without spaces, a space, 64 hex digits. */
bool lm_marker_verify(const lm_marker_key *k, const char *content, size_t len);
/* The rehearsal marker "rehearse ID MAC" for id (malloc'd), and whether
 * content is one this key made. */
char *lm_marker_make_rehearsal(const lm_marker_key *k, const char *id);
bool lm_marker_verify_rehearsal(const lm_marker_key *k, const char *content, size_t len);

#endif
