/* fuzz_fcgi.c: the relay's FastCGI record parser, sse_fcgi_feed and
 * sse_fcgi_param (sse/sse_fcgi.c). No socket is needed: the parser takes
 * bytes as read() returned them.
 *
 * Input: one byte choosing a read size (1..64), then the bytes nginx would
 * send. The stream is fed once whole and once in reads of that size, as
 * the epoll loop does. Invariants: both agree on the outcome (error,
 * abort, ready), the parameters and the queued replies; READY comes once;
 * the bounds on parameters and replies hold; replies are well-formed
 * records; after READY every parameter lookup agrees with an independent
 * reading of the name-value pairs (first occurrence wins). */
#include "fuzz_util.h"
#include "sse.h"

#include <stdint.h>
#include <string.h>

#define FZ_REPLY_MAX 4096 /* SSE_FCGI_REPLY_MAX in sse_fcgi.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Independent reading of a name-value length. */
static int fz_nv_len(const unsigned char *p, size_t n, size_t *i, size_t *out)
{
    if (*i >= n)
        return -1;
    if (p[*i] < 0x80) {
        *out = p[(*i)++];
        return 0;
    }
    if (n - *i < 4)
        return -1;
    *out = (size_t)(p[*i] & 0x7f) << 24 | (size_t)p[*i + 1] << 16 |
           (size_t)p[*i + 2] << 8 | p[*i + 3];
    *i += 4;
    return 0;
}

/* Value of the first pair called name: its offset and length, or -1. */
static long fz_lookup(const unsigned char *p, size_t n, const char *name,
                      size_t *voff)
{
    size_t i = 0, nl, vl, want = strlen(name);
    while (i < n) {
        if (fz_nv_len(p, n, &i, &nl) != 0 || fz_nv_len(p, n, &i, &vl) != 0 ||
            nl > n - i || vl > n - i - nl)
            return -1;
        if (nl == want && memcmp(p + i, name, nl) == 0) {
            *voff = i + nl;
            return (long)vl;
        }
        i += nl + vl;
    }
    return -1;
}

static void fz_check_param(const sse_fcgi *f, const char *name, size_t outlen)
{
    char *out = malloc(outlen + 1);
    size_t voff = 0;
    long want = -1, got;

    if (f->params != NULL)
        want = fz_lookup((const unsigned char *)f->params, f->params_len, name,
                         &voff);
    got = sse_fcgi_param(f, name, out, outlen);
    if (want < 0 || outlen == 0) {
        FZ_CHECK(got == -1, "%s: absent but got %ld", name, got);
    } else if ((size_t)want >= outlen ||
               memchr(f->params + voff, '\0', (size_t)want) != NULL) {
        FZ_CHECK(got == -2, "%s: too long or NUL, got %ld", name, got);
    } else {
        FZ_CHECK(got == want && out[got] == '\0' &&
                     memcmp(out, f->params + voff, (size_t)want) == 0,
                 "%s: got %ld, want %ld", name, got, want);
    }
    free(out);
}

/* Replies must be whole records of the types the relay sends. */
static void fz_check_replies(const sse_fcgi *f)
{
    size_t i = 0;
    FZ_CHECK(f->reply_len <= FZ_REPLY_MAX, "replies of %zu bytes",
             f->reply_len);
    while (i < f->reply_len) {
        const unsigned char *h = f->reply + i;
        size_t cl;
        FZ_CHECK(f->reply_len - i >= 8, "truncated reply header");
        cl = (size_t)h[4] << 8 | h[5];
        FZ_CHECK(h[0] == 1 && (h[1] == 3 || h[1] == 10 || h[1] == 11) &&
                     h[6] == 0,
                 "bad reply record %u/%u", h[0], h[1]);
        FZ_CHECK(f->reply_len - i - 8 >= cl, "truncated reply content");
        i += 8 + cl;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sse_fcgi whole, split;
    size_t step, off;
    int rw, rs = SSE_FCGI_MORE, ready = 0;

    if (size < 1)
        return 0;
    step = 1 + data[0] % 64;
    data++;
    size--;
    memset(&whole, 0, sizeof whole);
    memset(&split, 0, sizeof split);

    rw = sse_fcgi_feed(&whole, data, size);
    for (off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        int rc = sse_fcgi_feed(&split, data + off, n);
        FZ_CHECK(rc >= SSE_FCGI_MORE && rc <= SSE_FCGI_ERROR, "rc %d", rc);
        if (rc == SSE_FCGI_READY) {
            FZ_CHECK(!ready, "READY twice");
            ready = 1;
        }
        if (rc == SSE_FCGI_ERROR || rc == SSE_FCGI_ABORT) {
            rs = rc;
            break;
        }
        FZ_CHECK(split.params_len <= SSE_FCGI_PARAMS_MAX, "params %zu",
                 split.params_len);
        fz_check_replies(&split);
    }
    if (rw == SSE_FCGI_ERROR || rw == SSE_FCGI_ABORT || rs != SSE_FCGI_MORE) {
        FZ_CHECK(rw == rs, "whole feed %d, reads of %zu: %d", rw, step, rs);
    } else {
        FZ_CHECK((rw == SSE_FCGI_READY) == ready,
                 "whole feed %d, reads of %zu: ready %d", rw, step, ready);
        FZ_CHECK(whole.began == split.began && whole.rid == split.rid &&
                     whole.params_done == split.params_done &&
                     whole.params_len == split.params_len &&
                     whole.reply_len == split.reply_len,
                 "whole and split states differ");
        FZ_CHECK(whole.params_len == 0 ||
                     memcmp(whole.params, split.params, whole.params_len) == 0,
                 "whole and split parameters differ");
        FZ_CHECK(whole.reply_len == 0 ||
                     memcmp(whole.reply, split.reply, whole.reply_len) == 0,
                 "whole and split replies differ");
        FZ_CHECK(ready == whole.ready_sent, "ready_sent %d, READY seen %d",
                 whole.ready_sent, ready);
        if (ready) {
            static const char *const names[] = {"SP_PATH",
                                                "REQUEST_METHOD",
                                                "QUERY_STRING",
                                                "HTTP_LAST_EVENT_ID",
                                                "HTTP_AUTHORIZATION",
                                                "A",
                                                ""};
            for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
                fz_check_param(&whole, names[k], 0);
                fz_check_param(&whole, names[k], 1);
                fz_check_param(&whole, names[k], 16);
                fz_check_param(&whole, names[k], 4096);
            }
        }
    }
    sse_fcgi_free(&whole);
    sse_fcgi_free(&split);
    return 0;
}
