/* sp_buf.h: a growable byte buffer with a hard maximum set at creation
 * (request bodies, captured output, JSON, SSE frames). */
#ifndef SP_BUF_H
#define SP_BUF_H

#include <stddef.h>

typedef struct sp_buf {
    char *data; /* always NUL-terminated when non-NULL; owned by the buf */
    size_t len;
    size_t cap;
    size_t max; /* len never exceeds max */
} sp_buf;

/* Start an empty buffer that will never hold more than max bytes. */
void buf_init(sp_buf *b, size_t max);

/* Append n bytes. Returns 0, or -1 (nothing appended) if the result would
 * exceed the maximum or memory ran out. */
int buf_append(sp_buf *b, const void *p, size_t n);

/* Make room for extra more bytes (plus the NUL) without appending, for a
 * caller that writes into data + len itself and then adds to len. Returns
 * 0, or -1 if that would pass the maximum or memory ran out. */
int buf_ensure(sp_buf *b, size_t extra);

/* Append a NUL-terminated string; as buf_append. */
int buf_puts(sp_buf *b, const char *s);

/* printf into the buffer; as buf_append. */
int buf_printf(sp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* 1 if an append has failed since init (TEMPORARY until sticky). */
int buf_failed(const sp_buf *b);

/* Forget the contents, keep the allocation. */
void buf_reset(sp_buf *b);

/* Free the storage; the buf may be reused after buf_init. NULL-safe. */
void buf_free(sp_buf *b);

#endif
