/* sp_utf8.h: UTF-8 helpers for program output: where a chunk may be cut
 * without splitting a character, and making arbitrary bytes valid UTF-8
 * (each invalid byte becomes U+FFFD) before they go into JSON. */
#ifndef SP_UTF8_H
#define SP_UTF8_H

#include <stddef.h>

#include "sp_buf.h"

/* Length of the longest prefix of s[0..n) that does not end inside an
 * incomplete (but so far valid) multi-byte sequence. The rest (at most 3
 * bytes) should be carried over to the next chunk. */
size_t utf8_cut(const unsigned char *s, size_t n);

/* The tail of a stream's last chunk that ends inside a character. */
typedef struct utf8_carry {
    unsigned char b[4];
    size_t len; /* 0..3 */
} utf8_carry;

/* Join the carried bytes of c and p[0..n) into out (room for c->len + n
 * bytes) and return how many bytes of out may go now: whole characters
 * only, or everything when at_eof. The rest (at most 3 bytes) stays in c
 * for the next chunk. */
size_t utf8_carry_join(utf8_carry *c, const unsigned char *p, size_t n,
                       int at_eof, unsigned char *out);

/* Append s[0..n) to out with every byte that is not part of a valid UTF-8
 * sequence replaced by U+FFFD. Returns 0, or -1 if out is full. */
int utf8_sanitize(const unsigned char *s, size_t n, sp_buf *out);

/* Append s[0..n) as a quoted JSON string: invalid bytes become U+FFFD,
 * control characters (NUL included) \u00XX escapes. 0, or -1 if full. */
int utf8_json_string(const unsigned char *s, size_t n, sp_buf *out);

/* Length of the well-formed UTF-8 sequence at s[0..n) (no overlong
 * forms, no surrogates, nothing past U+10FFFF; n >= 1), or 0 if there is
 * none (also when it is cut off by the end of the buffer). */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* 1 if s[0..n) is all valid UTF-8 (nothing cut off at the end). */
int utf8_valid(const unsigned char *s, size_t n);

#endif
