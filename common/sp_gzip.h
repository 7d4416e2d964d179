/* sp_gzip.h: gzip bodies with zlib, both ways and always bounded: an
 * upload sent with Content-Encoding: gzip is inflated into a buffer whose
 * maximum is the files API's (a small body that would inflate past it, a
 * "gzip bomb", is refused once the maximum is passed, having produced
 * nothing usable), and a file read with Accept-Encoding: gzip is
 * deflated for the answer. */
#ifndef SP_GZIP_H
#define SP_GZIP_H

#include <stddef.h>

#include "sp_buf.h"

#define GZ_OK        0
#define GZ_TOO_LARGE 1 /* the inflated bytes would pass out's maximum */
#define GZ_BAD       2 /* not gzip, truncated, a bad checksum, or junk after */
#define GZ_NOMEM     3

/* Inflate the gzip data in[0..n) (one or more members, as gzip(1) writes
 * and reads them) into out, which the caller made with buf_init and the
 * maximum it accepts; inflating stops as soon as that maximum is passed.
 * Returns GZ_OK, or another GZ_* with out's contents meaningless. */
int gz_inflate(const void *in, size_t n, sp_buf *out);

/* Deflate in[0..n) as one gzip member into out (buf_init'd; a maximum of
 * at least n + n / 1000 + 64 always fits). GZ_OK, GZ_TOO_LARGE or
 * GZ_NOMEM. */
int gz_deflate(const void *in, size_t n, sp_buf *out);

/* 1 if an Accept-Encoding header value h accepts gzip (a "gzip" coding
 * not given q=0), else 0. NULL-safe. */
int gz_accepted(const char *h);

#endif
