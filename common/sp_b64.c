/* sp_b64.c: base64 encoding and decoding (sp_b64.h). */
#include "sp_b64.h"

#include <stdlib.h>
#include <string.h>

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_encode(sp_buf *b, const void *p, size_t n)
{
    const unsigned char *in = p;
    size_t need = (n + 2) / 3 * 4, o = 0;
    char *out;

    if (n > ((size_t)-1 / 4) * 3 - 3 || buf_ensure(b, need + 1) != 0)
        return -1;
    out = (char *)b->data + b->len;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64_std[(v >> 18) & 63];
        out[o++] = b64_std[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_std[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64_std[v & 63] : '=';
    }
    b->len += o;
    out[o] = '\0';
    return 0;
}

static int b64_digit(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

unsigned char *b64_decode(const char *s, size_t n, size_t *outlen)
{
    unsigned char *out;
    unsigned acc = 0;
    size_t o = 0;
    int bits = 0;

    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return NULL; /* a lone sextet is no byte */
    out = malloc(n / 4 * 3 + 3);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int v = b64_digit((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *outlen = o;
    return out;
}
