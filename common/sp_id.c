/* sp_id.c: id generation and validation (sp_id.h). */
#include "sp_id.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int id_valid(const char *s)
{
    size_t i;
    if (s == NULL)
        return 0;
    for (i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        if (i >= SP_ID_MAX)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return i > 0;
}

int id_valid_typed(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return id_valid(s) && strncmp(s, prefix, n) == 0 && s[n] != '\0';
}

int id_random_bytes(void *out, size_t n)
{
    unsigned char *p = out;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int id_b64url(const unsigned char *in, size_t n, char *out, size_t outlen)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, need = (n * 8 + 5) / 6;
    unsigned int acc = 0;
    int bits = 0;

    if (outlen < need + 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = tab[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = tab[(acc << (6 - bits)) & 63];
    out[o] = '\0';
    return (int)o;
}

int id_generate(const char *prefix, char *out, size_t outlen)
{
    unsigned char rnd[17]; /* 136 bits; the first 22 chars carry 132 */
    char enc[32];
    size_t plen = strlen(prefix);

    if (outlen < plen + ID_RANDOM_CHARS + 1)
        return -1;
    if (id_random_bytes(rnd, sizeof rnd) != 0)
        return -1;
    id_b64url(rnd, sizeof rnd, enc, sizeof enc);
    memcpy(out, prefix, plen);
    memcpy(out + plen, enc, ID_RANDOM_CHARS);
    out[plen + ID_RANDOM_CHARS] = '\0';
    return 0;
}

int id_generate_sandbox(char *out, size_t outlen)
{
    static const char tab[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char rnd[ID_LOWER_CHARS]; /* 5 random bits used of each byte */
    size_t plen = sizeof ID_SANDBOX_PREFIX - 1;

    if (outlen < plen + ID_LOWER_CHARS + 1)
        return -1;
    if (id_random_bytes(rnd, sizeof rnd) != 0)
        return -1;
    memcpy(out, ID_SANDBOX_PREFIX, plen);
    for (size_t i = 0; i < ID_LOWER_CHARS; i++)
        out[plen + i] = tab[rnd[i] & 31];
    out[plen + ID_LOWER_CHARS] = '\0';
    return 0;
}
