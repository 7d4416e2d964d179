/* sp_multipart.h: a strict multipart/form-data parser over a body held in
 * memory (bounded by the handler's body limit). Parts point into the body:
 * nothing is copied, nothing outlives the request. */
#ifndef SP_MULTIPART_H
#define SP_MULTIPART_H

#include <stddef.h>

#define MP_MAX_PARTS 256
#define MP_NAME_MAX  256

typedef struct mp_part {
    char name[MP_NAME_MAX];     /* form field name */
    char filename[MP_NAME_MAX]; /* "" when the part is not a file */
    const char *data;           /* points into the body */
    size_t len;
} mp_part;

/* Extract the boundary from a Content-Type value into out (>= 72 bytes).
 * Returns 0, or -1 if it is not multipart/form-data with a valid one. */
int mp_boundary(const char *content_type, char *out, size_t outlen);

/* Split body into at most max parts. Returns the number of parts, or -1 if
 * the body is malformed (missing boundary, unterminated part, bad
 * headers, too many parts). */
int mp_parse(const char *body, size_t len, const char *boundary, mp_part *parts,
             int max);

#endif
