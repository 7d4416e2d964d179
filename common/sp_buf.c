/* sp_buf.c: the bounded buffer of sp_buf.h. */
#include "sp_buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(sp_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->failed = 0;
    b->sticky = 0;
}

void buf_init_sticky(sp_buf *b, size_t max)
{
    buf_init(b, max);
    b->sticky = 1;
}

int buf_failed(const sp_buf *b)
{
    return b->failed;
}

static int buf_reserve(sp_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (b->sticky && b->failed)
        return -1;
    /* need = len + extra + 1 must neither pass max + 1 nor wrap. */
    if (extra > b->max || b->len > b->max - extra || b->len + extra == SIZE_MAX)
        return -1;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap - 1 > b->max)
        cap = b->max == SIZE_MAX ? need : b->max + 1;
    if (cap < need)
        cap = need;
    p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_ensure(sp_buf *b, size_t extra)
{
    return buf_reserve(b, extra);
}

int buf_append(sp_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0) {
        b->failed = 1;
        return -1;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_puts(sp_buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(sp_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0) {
        b->failed = 1;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void buf_reset(sp_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void buf_free(sp_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
