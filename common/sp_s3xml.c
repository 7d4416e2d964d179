/* sp_s3xml.c: reading S3's XML answers (see sp_s3xml.h). */
#include "sp_s3xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *s3xml_elem(const char *xml, size_t len, const char *name,
                       const char **start, size_t *n)
{
    char open[80], close[80];
    const char *a, *b;
    int ol = snprintf(open, sizeof open, "<%s>", name);
    int cl = snprintf(close, sizeof close, "</%s>", name);

    if (ol <= 0 || ol >= (int)sizeof open || cl >= (int)sizeof close)
        return NULL;
    a = memmem(xml, len, open, (size_t)ol);
    if (a == NULL)
        return NULL;
    a += ol;
    b = memmem(a, len - (size_t)(a - xml), close, (size_t)cl);
    if (b == NULL)
        return NULL;
    *start = a;
    *n = (size_t)(b - a);
    return b + cl;
}

/* Decode one entity at s (after '&', up to ';'): bytes into out, count in
 * *w; returns the characters consumed, or 0 if it is not one. */
static size_t s3xml_entity(const char *s, size_t n, char *out, size_t *w)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"amp;", '&'},
                 {"lt;", '<'},
                 {"gt;", '>'},
                 {"quot;", '"'},
                 {"apos;", '\''}};
    const char *semi = memchr(s, ';', n < 12 ? n : 12);
    unsigned long cp;

    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t l = strlen(named[i].name);
        if (n >= l && memcmp(s, named[i].name, l) == 0) {
            out[0] = named[i].c;
            *w = 1;
            return l;
        }
    }
    if (semi == NULL || s[0] != '#')
        return 0;
    cp = s[1] == 'x' ? strtoul(s + 2, NULL, 16) : strtoul(s + 1, NULL, 10);
    if (cp == 0 || cp > 0x10FFFF)
        return 0;
    if (cp < 0x80) {
        out[0] = (char)cp, *w = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 63));
        *w = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 63));
        out[2] = (char)(0x80 | (cp & 63)), *w = 3;
    } else {
        out[0] = (char)(0xF0 | cp >> 18);
        out[1] = (char)(0x80 | ((cp >> 12) & 63));
        out[2] = (char)(0x80 | ((cp >> 6) & 63));
        out[3] = (char)(0x80 | (cp & 63)), *w = 4;
    }
    return (size_t)(semi - s) + 1;
}

const char *s3xml_text(const char *xml, size_t len, const char *name, char *out,
                       size_t outlen)
{
    const char *a, *end;
    size_t n, o = 0;

    end = s3xml_elem(xml, len, name, &a, &n);
    if (end == NULL)
        return NULL;
    for (size_t i = 0; i < n;) {
        char dec[4];
        size_t w = 1, used = 0;
        if (a[i] == '&')
            used = s3xml_entity(a + i + 1, n - i - 1, dec, &w);
        if (o + w >= outlen)
            return NULL;
        if (used > 0) {
            memcpy(out + o, dec, w);
            i += used + 1;
        } else {
            out[o] = a[i++];
        }
        o += w;
    }
    out[o] = '\0';
    return end;
}
