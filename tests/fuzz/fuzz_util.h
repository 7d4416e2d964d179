/* fuzz_util.h: what the fuzz harnesses share: a failed-invariant report
 * that libFuzzer records as a crash, and a strict UTF-8 validator written
 * apart from common/sp_utf8.c so that the two can disagree. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* Report a broken invariant and abort: libFuzzer saves the input. */
#define FZ_CHECK(cond, ...)                                                    \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "invariant failed at %s:%d: %s: ", __FILE__,       \
                    __LINE__, #cond);                                          \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629, table 3-7
 * of Unicode), or 0 if there is none. */
static inline size_t fz_utf8_one(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    /* The second byte's range depends on the first (no overlongs, no
     * surrogates, nothing past U+10FFFF). */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    }
    return len;
}

/* 1 if s[0..n) is well-formed UTF-8. */
static inline int fz_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t l = fz_utf8_one(s + i, n - i);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

#endif
