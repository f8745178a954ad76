/* The cutover marker: token files, making and verifying "cutover ID MAC". */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "marker.h"
#include "sha256.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool lm_marker_key_parse(const char *hex, size_t len, lm_marker_key *k)
{
    size_t i = 0, n = 0;

    while (len > 0 && strchr(" \t\r\n", hex[len - 1]))
        len--;
    while (i < len && strchr(" \t\r\n", hex[i]))
        i++;
    if ((len - i) % 2 != 0 || (len - i) / 2 < 16 || (len - i) / 2 > LM_MARKER_KEY_MAX)
        return false;
    for (; i < len; i += 2) {
        int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        k->key[n++] = (uint8_t)(hi << 4 | lo);
    }
    k->len = n;
    return true;
}

bool lm_marker_key_load(const char *path, lm_marker_key *k, char **err)
{
    char buf[4 * LM_MARKER_KEY_MAX];
    struct stat sb;
    ssize_t n;
    bool ok;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        *err = lm_psprintf("could not open marker token file \"%s\": %s", path, strerror(errno));
        return false;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
        (sb.st_mode & 077) != 0) {
        *err = lm_psprintf("marker token file \"%s\" is not a regular file of this user that only "
                           "it may read and write (mode 0600)", path);
        close(fd);
        return false;
    }
    n = read(fd, buf, sizeof buf);
    close(fd);
    ok = n > 0 && (size_t)n < sizeof buf && lm_marker_key_parse(buf, (size_t)n, k);
    memset(buf, 0, sizeof buf);
    if (!ok)
        *err = lm_psprintf("marker token file \"%s\" does not hold a token (32 to 128 hex digits)", path);
    return ok;
}

static void mac_hex(const lm_marker_key *k, const char *id, size_t idlen, char out[2 * LM_SHA256_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t mac[LM_SHA256_LEN];

    lm_hmac_sha256(k->key, k->len, id, idlen, mac);
    for (int i = 0; i < LM_SHA256_LEN; i++) {
        out[2 * i] = digits[mac[i] >> 4];
        out[2 * i + 1] = digits[mac[i] & 15];
    }
    out[2 * LM_SHA256_LEN] = '\0';
}

char *lm_marker_make(const lm_marker_key *k, const char *id)
{
    char mac[2 * LM_SHA256_LEN + 1];

    mac_hex(k, id, strlen(id), mac);
    return lm_psprintf("cutover %s %s", id, mac);
}

char *lm_marker_make_rehearsal(const lm_marker_key *k, const char *id)
{
    char mac[2 * LM_SHA256_LEN + 1];
    char *in = lm_psprintf("rehearse %s", id);

    mac_hex(k, in, strlen(in), mac);
    free(in);
    return lm_psprintf("rehearse %s %s", id, mac);
}

/* content is "WORD ID MAC" (WORD with its space: ws, wslen bytes) and MAC
 * is HMAC-SHA256(token, ID), or of "WORD ID" when whole is true */
static bool verify_kind(const lm_marker_key *k, const char *ws, size_t wslen, bool whole,
                        const char *content, size_t len)
{
    char mac[2 * LM_SHA256_LEN + 1];
    const size_t maclen = 2 * LM_SHA256_LEN;
    size_t idlen;
    const char *id;

    if (len < wslen + 1 + 1 + maclen || memcmp(content, ws, wslen) != 0)
        return false;
    id = content + wslen;
    idlen = len - wslen - 1 - maclen;
    if (id[idlen] != ' ' || memchr(id, ' ', idlen) || memchr(id, '\0', idlen))
        return false;
    if (whole)
        mac_hex(k, content, wslen + idlen, mac);
    else
        mac_hex(k, id, idlen, mac);
    return lm_equal_ct((const uint8_t *)mac, (const uint8_t *)id + idlen + 1, maclen);
}

bool lm_marker_verify(const lm_marker_key *k, const char *content, size_t len)
{
    return verify_kind(k, "cutover ", 8, false, content, len);
}

bool lm_marker_verify_rehearsal(const lm_marker_key *k, const char *content, size_t len)
{
    return verify_kind(k, "rehearse ", 9, true, content, len);
}
