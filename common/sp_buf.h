/* sp_buf.h: a growable byte buffer with a hard maximum set at creation
 * (request bodies, captured output, JSON, SSE frames).
 *
 * Failure is remembered: once an append fails (past the maximum, out of
 * memory) buf_failed() says so until buf_reset. A buffer made with
 * buf_init_sticky, for building one document, goes further: after a
 * failure every append does nothing and returns -1, so a chain of appends
 * needs one check at the end (buf_failed) and never yields a document
 * with a hole in it. A buffer made with buf_init keeps taking appends
 * that fit after one that did not (captured output, "what fits"). */
#ifndef SP_BUF_H
#define SP_BUF_H

#include <stddef.h>

typedef struct sp_buf {
    char *data; /* always NUL-terminated when non-NULL; owned by the buf */
    size_t len;
    size_t cap;
    size_t max; /* len never exceeds max */
    int failed; /* an append failed since buf_init or buf_reset */
    int sticky; /* buf_init_sticky: a failure stops all later appends */
} sp_buf;

/* Start an empty buffer that will never hold more than max bytes. */
void buf_init(sp_buf *b, size_t max);

/* As buf_init, for a buffer whose failure is sticky (see above). */
void buf_init_sticky(sp_buf *b, size_t max);

/* 1 if an append failed since buf_init or buf_reset, else 0. */
int buf_failed(const sp_buf *b);

/* Append n bytes. Returns 0, or -1 (nothing appended, the buffer failed)
 * if the result would exceed the maximum or memory ran out, or if the
 * buffer is sticky and failed before. */
int buf_append(sp_buf *b, const void *p, size_t n);

/* Make room for extra more bytes (plus the NUL) without appending, for a
 * caller that writes into data + len itself and then adds to len. Returns
 * 0, or -1 if that would pass the maximum, memory ran out, or the buffer
 * is sticky and failed. Asking is not appending: a refusal does not fail
 * the buffer (a caller may go on with less, as utf8_json_string does). */
int buf_ensure(sp_buf *b, size_t extra);

/* Append a NUL-terminated string; as buf_append. */
int buf_puts(sp_buf *b, const char *s);

/* printf into the buffer; as buf_append. */
int buf_printf(sp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Forget the contents, keep the allocation. */
void buf_reset(sp_buf *b);

/* Free the storage; the buf may be reused after buf_init. NULL-safe. */
void buf_free(sp_buf *b);

#endif
