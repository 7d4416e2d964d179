/* sp_pct.c: percent-encoding (see sp_pct.h). */
#include "sp_pct.h"

#include <string.h>

static int pct_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pct_encode(sp_buf *b, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
                    *p == '_' || *p == '~' ||
                    (keep != NULL && strchr(keep, *p) != NULL);
        char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        if (buf_append(b, plain ? (const char *)p : e, plain ? 1 : 3) != 0)
            return -1;
    }
    return 0;
}

long pct_decode(const char *s, size_t n, int plus, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+' && plus) {
            c = ' ';
        } else if (c == '%' && i + 2 < n) {
            int hi = pct_hexval(s[i + 1]), lo = pct_hexval(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = hi * 16 + lo;
                i += 2;
            }
        }
        if (c == 0)
            return -2;
        if (o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (long)o;
}
