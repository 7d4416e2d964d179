/* sp_b64.h: standard base64 (RFC 4648 §4) as protobuf's JSON mapping and
 * the context drivers' frames carry bytes: encoding with padding, decoding
 * of the standard or the URL-safe alphabet with or without padding. */
#ifndef SP_B64_H
#define SP_B64_H

#include <stddef.h>

#include "sp_buf.h"

/* Append the padded standard base64 of p[0..n) to b. 0, or -1 when b's
 * maximum would be passed (b is left as it was). */
int b64_encode(sp_buf *b, const void *p, size_t n);

/* Decode s[0..n) (either alphabet, '=' padding optional at the end only)
 * into a new buffer (caller frees) of *outlen bytes; NULL if s is not
 * base64 or memory ran out. */
unsigned char *b64_decode(const char *s, size_t n, size_t *outlen);

#endif
