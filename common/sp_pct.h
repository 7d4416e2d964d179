/* sp_pct.h: percent-encoding, the one codec: URI paths and queries
 * decoded (sp_http's query arguments, an object key from the request
 * URI), S3's canonical encoding of keys and query values (sp_store_s3,
 * presigned URLs), and the local store's file names made of keys. */
#ifndef SP_PCT_H
#define SP_PCT_H

#include <stddef.h>

#include "sp_buf.h"

/* Append s to b with every byte but A-Z a-z 0-9 - . _ ~ (and those in
 * keep, e.g. "/") as %XX, upper-case hex (RFC 3986; S3's canonical URI).
 * 0, or -1 when b's maximum would be passed. */
int pct_encode(sp_buf *b, const char *s, const char *keep);

/* Decode s[0..n) into out (NUL-terminated): %XX with either case of hex,
 * '+' as a space when plus (a query), anything else as it is (a '%' not
 * followed by two hex digits too). Returns the decoded length, -1 when
 * it does not fit outlen, -2 when it decodes a NUL byte. */
long pct_decode(const char *s, size_t n, int plus, char *out, size_t outlen);

#endif
