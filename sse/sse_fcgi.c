/* sse_fcgi.c: the responder side of the FastCGI protocol (version 1),
 * written for a non-blocking event loop: libfcgi reads with blocking
 * calls, so the relay parses records itself.
 *
 * In: BEGIN_REQUEST (role RESPONDER), PARAMS (name-value pairs, ended by
 * an empty record), STDIN (read and dropped: SSE routes are GET),
 * ABORT_REQUEST, and the management record GET_VALUES. Out: STDOUT
 * records, END_REQUEST, GET_VALUES_RESULT, UNKNOWN_TYPE. One request per
 * connection (nginx uses fastcgi_keep_conn off for this family); a second
 * BEGIN_REQUEST while one is open is refused with CANT_MPX_CONN. Every
 * size is bounded; a violation makes the caller close the connection. */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

#define FCGI_VERSION_1         1
#define FCGI_BEGIN_REQUEST     1
#define FCGI_ABORT_REQUEST     2
#define FCGI_END_REQUEST       3
#define FCGI_PARAMS            4
#define FCGI_STDIN             5
#define FCGI_STDOUT            6
#define FCGI_GET_VALUES        9
#define FCGI_GET_VALUES_RESULT 10
#define FCGI_UNKNOWN_TYPE      11
#define FCGI_RESPONDER         1
#define FCGI_CANT_MPX_CONN     1
#define FCGI_UNKNOWN_ROLE      3
#define FCGI_REC_MAX           65535
#define SSE_FCGI_REPLY_MAX     4096

static void sse_fcgi_header(unsigned char *h, unsigned type, unsigned rid,
                            size_t len)
{
    h[0] = FCGI_VERSION_1;
    h[1] = (unsigned char)type;
    h[2] = (unsigned char)(rid >> 8);
    h[3] = (unsigned char)rid;
    h[4] = (unsigned char)(len >> 8);
    h[5] = (unsigned char)len;
    h[6] = 0;
    h[7] = 0;
}

/* Queue a management or refusal record; 0, or -1 past the bound. */
static int sse_fcgi_reply(sse_fcgi *f, unsigned type, unsigned rid,
                          const unsigned char *body, size_t len)
{
    unsigned char *p;
    if (len > FCGI_REC_MAX || f->reply_len + 8 + len > SSE_FCGI_REPLY_MAX)
        return -1;
    p = realloc(f->reply, f->reply_len + 8 + len);
    if (p == NULL)
        return -1;
    f->reply = p;
    sse_fcgi_header(p + f->reply_len, type, rid, len);
    if (len > 0)
        memcpy(p + f->reply_len + 8, body, len);
    f->reply_len += 8 + len;
    return 0;
}

void sse_fcgi_end_record(unsigned rid, unsigned char out[16])
{
    sse_fcgi_header(out, FCGI_END_REQUEST, rid, 8);
    memset(out + 8, 0, 8); /* appStatus 0, REQUEST_COMPLETE */
}

/* Read one name-value length (1 or 4 bytes) at p[*i..n). */
static int sse_nv_len(const unsigned char *p, size_t n, size_t *i,
                      uint32_t *out)
{
    if (*i >= n)
        return -1;
    if (p[*i] < 0x80) {
        *out = p[(*i)++];
        return 0;
    }
    if (n - *i < 4)
        return -1;
    *out = ((uint32_t)(p[*i] & 0x7f) << 24) | ((uint32_t)p[*i + 1] << 16) |
           ((uint32_t)p[*i + 2] << 8) | p[*i + 3];
    *i += 4;
    return 0;
}

/* Walk the pairs of p[0..n); calls back for each, stops on non-zero.
 * Returns 0 if well formed, -1 if not. */
static int sse_nv_walk(const unsigned char *p, size_t n,
                       int (*fn)(const unsigned char *, uint32_t,
                                 const unsigned char *, uint32_t, void *),
                       void *arg)
{
    size_t i = 0;
    unsigned count = 0;
    while (i < n) {
        uint32_t nl, vl;
        if (sse_nv_len(p, n, &i, &nl) != 0 || sse_nv_len(p, n, &i, &vl) != 0 ||
            nl > n - i || vl > n - i - nl || ++count > SSE_FCGI_NPARAMS_MAX)
            return -1;
        if (fn(p + i, nl, p + i + nl, vl, arg) != 0)
            return 0;
        i += (size_t)nl + vl;
    }
    return 0;
}

static int sse_nv_count(const unsigned char *n, uint32_t nl,
                        const unsigned char *v, uint32_t vl, void *arg)
{
    (void)n, (void)nl, (void)v, (void)vl, (void)arg;
    return 0;
}

/* GET_VALUES: answer the three variables the specification names. */
static int sse_fcgi_values_one(const unsigned char *n, uint32_t nl,
                               const unsigned char *v, uint32_t vl, void *arg)
{
    static const char *const names[] = {"FCGI_MAX_CONNS", "FCGI_MAX_REQS",
                                        "FCGI_MPXS_CONNS"};
    static const char *const values[] = {"10000", "10000", "0"};
    unsigned char *out = arg; /* out[0..1]: used length */
    size_t used = (size_t)out[0] << 8 | out[1];
    (void)v, (void)vl;
    for (int k = 0; k < 3; k++) {
        size_t ln = strlen(names[k]), lv = strlen(values[k]);
        if (nl != ln || memcmp(n, names[k], ln) != 0 ||
            used + 2 + ln + lv > 400)
            continue;
        out[2 + used] = (unsigned char)ln;
        out[3 + used] = (unsigned char)lv;
        memcpy(out + 4 + used, names[k], ln);
        memcpy(out + 4 + used + ln, values[k], lv);
        used += 2 + ln + lv;
    }
    out[0] = (unsigned char)(used >> 8);
    out[1] = (unsigned char)used;
    return 0;
}

/* A whole record's content is in hand (BEGIN, GET_VALUES, unknown). */
static int sse_fcgi_small_done(sse_fcgi *f, unsigned rid)
{
    unsigned char out[512] = {0}, body[8] = {0};

    switch (f->type) {
    case FCGI_BEGIN_REQUEST:
        if (f->small_len < 8 || rid == 0)
            return SSE_FCGI_ERROR;
        if (f->began) {
            sse_fcgi_end_record(rid, out);
            out[12] = FCGI_CANT_MPX_CONN;
            return sse_fcgi_reply(f, FCGI_END_REQUEST, rid, out + 8, 8) == 0
                       ? SSE_FCGI_MORE
                       : SSE_FCGI_ERROR;
        }
        if (((unsigned)f->small[0] << 8 | f->small[1]) != FCGI_RESPONDER) {
            body[4] = FCGI_UNKNOWN_ROLE;
            return sse_fcgi_reply(f, FCGI_END_REQUEST, rid, body, 8) == 0
                       ? SSE_FCGI_MORE
                       : SSE_FCGI_ERROR;
        }
        f->began = 1;
        f->rid = rid;
        return SSE_FCGI_MORE;
    case FCGI_GET_VALUES:
        if (sse_nv_walk(f->small, f->small_len, sse_fcgi_values_one, out) != 0)
            return SSE_FCGI_ERROR;
        return sse_fcgi_reply(f, FCGI_GET_VALUES_RESULT, 0, out + 2,
                              (size_t)out[0] << 8 | out[1]) == 0
                   ? SSE_FCGI_MORE
                   : SSE_FCGI_ERROR;
    default:
        body[0] = (unsigned char)f->type;
        return sse_fcgi_reply(f, FCGI_UNKNOWN_TYPE, 0, body, 8) == 0
                   ? SSE_FCGI_MORE
                   : SSE_FCGI_ERROR;
    }
}

/* A record header is complete: check it against the state. */
static int sse_fcgi_header_done(sse_fcgi *f)
{
    unsigned rid = (unsigned)f->hdr[2] << 8 | f->hdr[3];
    if (f->hdr[0] != FCGI_VERSION_1)
        return SSE_FCGI_ERROR;
    f->type = f->hdr[1];
    f->content_left = (uint32_t)f->hdr[4] << 8 | f->hdr[5];
    f->pad_left = f->hdr[6];
    f->small_len = 0;
    if (rid == 0 || f->type == FCGI_BEGIN_REQUEST)
        return SSE_FCGI_MORE; /* management or begin: content into small */
    if (!f->began || rid != f->rid)
        return SSE_FCGI_MORE; /* another request id: ignored */
    if (f->type == FCGI_ABORT_REQUEST)
        return SSE_FCGI_ABORT;
    if (f->type == FCGI_PARAMS && f->content_left == 0 && !f->params_done) {
        f->params_done = 1;
        if (sse_nv_walk((unsigned char *)f->params, f->params_len, sse_nv_count,
                        NULL) != 0)
            return SSE_FCGI_ERROR;
        f->ready_sent = 1;
        return SSE_FCGI_READY;
    }
    return SSE_FCGI_MORE;
}

/* Content bytes of the current record. */
static int sse_fcgi_content(sse_fcgi *f, const unsigned char *p, size_t n)
{
    unsigned rid = (unsigned)f->hdr[2] << 8 | f->hdr[3];
    int managed = rid == 0 || f->type == FCGI_BEGIN_REQUEST;

    if (managed) {
        size_t room = sizeof f->small - f->small_len;
        size_t take = n < room ? n : room;
        memcpy(f->small + f->small_len, p, take);
        f->small_len += (unsigned)take;
        return SSE_FCGI_MORE;
    }
    if (f->type == FCGI_PARAMS && f->began && rid == f->rid &&
        !f->params_done) {
        char *np;
        if (f->params_len + n > SSE_FCGI_PARAMS_MAX)
            return SSE_FCGI_ERROR;
        np = realloc(f->params, f->params_len + n);
        if (np == NULL)
            return SSE_FCGI_ERROR;
        f->params = np;
        memcpy(f->params + f->params_len, p, n);
        f->params_len += n;
    }
    return SSE_FCGI_MORE; /* STDIN and the rest: dropped */
}

int sse_fcgi_feed(sse_fcgi *f, const unsigned char *p, size_t n)
{
    int result = SSE_FCGI_MORE;

    while (n > 0) {
        int rc = SSE_FCGI_MORE;
        if (f->hdr_got < 8) {
            size_t take = 8 - f->hdr_got < n ? 8 - f->hdr_got : n;
            memcpy(f->hdr + f->hdr_got, p, take);
            f->hdr_got += (unsigned)take;
            p += take;
            n -= take;
            if (f->hdr_got == 8)
                rc = sse_fcgi_header_done(f);
        } else if (f->content_left > 0) {
            size_t take = f->content_left < n ? f->content_left : n;
            rc = sse_fcgi_content(f, p, take);
            f->content_left -= (uint32_t)take;
            p += take;
            n -= take;
        } else {
            size_t take = f->pad_left < n ? f->pad_left : n;
            f->pad_left -= (uint32_t)take;
            p += take;
            n -= take;
        }
        if (f->hdr_got == 8 && f->content_left == 0 && f->pad_left == 0) {
            unsigned rid = (unsigned)f->hdr[2] << 8 | f->hdr[3];
            if (rc == SSE_FCGI_MORE &&
                (rid == 0 || f->type == FCGI_BEGIN_REQUEST))
                rc = sse_fcgi_small_done(f, rid);
            f->hdr_got = 0;
        }
        if (rc == SSE_FCGI_ERROR || rc == SSE_FCGI_ABORT)
            return rc;
        if (rc == SSE_FCGI_READY)
            result = SSE_FCGI_READY;
    }
    return result;
}

struct sse_find {
    const char *name;
    char *out;
    size_t outlen;
    long result;
};

static int sse_find_one(const unsigned char *n, uint32_t nl,
                        const unsigned char *v, uint32_t vl, void *arg)
{
    struct sse_find *q = arg;
    if (nl != strlen(q->name) || memcmp(n, q->name, nl) != 0)
        return 0;
    if (vl >= q->outlen || memchr(v, '\0', vl) != NULL) {
        q->result = -2;
        return 1;
    }
    memcpy(q->out, v, vl);
    q->out[vl] = '\0';
    q->result = (long)vl;
    return 1;
}

long sse_fcgi_param(const sse_fcgi *f, const char *name, char *out,
                    size_t outlen)
{
    struct sse_find q = {name, out, outlen, -1};
    if (f->params == NULL || outlen == 0)
        return -1;
    sse_nv_walk((const unsigned char *)f->params, f->params_len, sse_find_one,
                &q);
    return q.result;
}

void sse_fcgi_free(sse_fcgi *f)
{
    free(f->params);
    free(f->reply);
    f->params = NULL;
    f->reply = NULL;
    f->params_len = f->reply_len = 0;
}

size_t sse_fcgi_wire_len(const sse_ev *ev)
{
    if (ev->kind != SSE_EV_STDOUT)
        return ev->len;
    return ev->len + 8 * (((size_t)ev->len + FCGI_REC_MAX - 1) / FCGI_REC_MAX);
}

int sse_fcgi_iov(const sse_ev *ev, unsigned rid, size_t off, struct iovec *iov,
                 int maxiov, unsigned char (*hdrs)[8])
{
    int n = 0, nh = 0;
    size_t pos = 0;

    if (ev->kind != SSE_EV_STDOUT) {
        if (off >= ev->len || maxiov < 1)
            return 0;
        iov[0].iov_base = (char *)ev->data + off;
        iov[0].iov_len = ev->len - off;
        return 1;
    }
    /* Virtual layout: [hdr 8][seg <= 65535] repeated. */
    for (size_t seg = 0; seg < ev->len && n + 2 <= maxiov;
         seg += FCGI_REC_MAX) {
        size_t sl = ev->len - seg < FCGI_REC_MAX ? ev->len - seg : FCGI_REC_MAX;
        if (off < pos + 8) {
            sse_fcgi_header(hdrs[nh], FCGI_STDOUT, rid, sl);
            iov[n].iov_base = hdrs[nh] + (off - pos);
            iov[n++].iov_len = 8 - (off - pos);
            nh++;
            off = pos + 8;
        }
        pos += 8;
        if (off < pos + sl) {
            iov[n].iov_base = (char *)ev->data + seg + (off - pos);
            iov[n++].iov_len = sl - (off - pos);
            off = pos + sl;
        }
        pos += sl;
    }
    return n;
}
