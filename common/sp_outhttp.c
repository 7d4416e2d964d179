/* sp_outhttp.c: the libcurl wrapper (see sp_outhttp.h). */
#include "sp_outhttp.h"
#include "sp_log.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define OH_BACKOFF_MS 100

typedef struct oh_call {
    const oh_req *q;
    oh_resp *out;
    size_t sent;   /* body bytes handed to curl in this attempt */
    int passed_on; /* a sink got answer bytes: no retry */
    int stopped;   /* the sink said stop */
} oh_call;

static pthread_once_t oh_once = PTHREAD_ONCE_INIT;
/* Each thread's handle, cleaned up when the thread ends. */
static pthread_key_t oh_key;

static void oh_handle_free(void *h)
{
    curl_easy_cleanup(h);
}

static void oh_global(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_key_create(&oh_key, oh_handle_free);
}

static size_t oh_read(char *buf, size_t size, size_t n, void *ctx)
{
    oh_call *c = ctx;
    size_t left = c->q->body_len - c->sent,
           k = size * n < left ? size * n : left;

    memcpy(buf, c->q->body + c->sent, k);
    c->sent += k;
    return k;
}

static size_t oh_write(char *buf, size_t size, size_t n, void *ctx)
{
    oh_call *c = ctx;
    size_t len = size * n;

    if (c->q->sink != NULL && c->out->status >= 200 && c->out->status < 300) {
        c->passed_on = 1;
        if (c->q->sink(c->q->sink_ctx, buf, len) != 0) {
            c->stopped = 1;
            return 0;
        }
        return len;
    }
    if (c->q->keep != NULL && buf_append(c->q->keep, buf, len) != 0)
        return 0; /* past its ceiling */
    return len;
}

/* The value of header line h if it is name's, trimmed, into out. */
static void oh_header_value(const char *h, size_t len, const char *name,
                            char *out, size_t outlen)
{
    size_t nl = strlen(name), v, e;

    if (len <= nl || strncasecmp(h, name, nl) != 0 || h[nl] != ':')
        return;
    for (v = nl + 1; v < len && (h[v] == ' ' || h[v] == '"'); v++)
        ;
    for (e = len; e > v && (h[e - 1] == '\r' || h[e - 1] == '\n' ||
                            h[e - 1] == ' ' || h[e - 1] == '"');
         e--)
        ;
    if (e - v < outlen) {
        memcpy(out, h + v, e - v);
        out[e - v] = '\0';
    }
}

static size_t oh_header(char *buf, size_t size, size_t n, void *ctx)
{
    oh_call *c = ctx;
    size_t len = size * n;
    char v[OH_HDR_MAX] = "";

    if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) {
        const char *sp = memchr(buf, ' ', len);
        c->out->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    oh_header_value(buf, len, "ETag", c->out->etag, sizeof c->out->etag);
    oh_header_value(buf, len, "Content-Type", c->out->ctype,
                    sizeof c->out->ctype);
    oh_header_value(buf, len, "Content-Length", v, sizeof v);
    if (v[0])
        c->out->length = strtoll(v, NULL, 10);
    v[0] = '\0';
    oh_header_value(buf, len, "Last-Modified", v, sizeof v);
    if (v[0])
        c->out->mtime = (long long)curl_getdate(v, NULL);
    return len;
}

/* Set up the thread's handle for one attempt of c. */
static int oh_setup(CURL *h, oh_call *c, struct curl_slist **hl,
                    struct curl_slist **pin)
{
    const oh_req *q = c->q;

    curl_easy_reset(h);
    if (q->pin != NULL) {
        *pin = curl_slist_append(*pin, q->pin);
        curl_easy_setopt(h, CURLOPT_RESOLVE, *pin);
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    }
    for (const char *const *p = q->headers; p != NULL && *p != NULL; p++)
        *hl = curl_slist_append(*hl, *p);
    if (strcmp(q->method, "PUT") == 0 || strcmp(q->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, oh_read);
        curl_easy_setopt(h, CURLOPT_READDATA, c);
        /* No "Expect: 100-continue" wait on every part. */
        *hl = curl_slist_append(*hl, "Expect:");
    }
    if (strcmp(q->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hl);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, q->timeout_s);
    /* A stall, not a total: a large object may take long, a dead peer
     * may not. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, q->timeout_s);
    if (q->total_s > 0) /* a trickle stays above the stall limit */
        curl_easy_setopt(h, CURLOPT_TIMEOUT, q->total_s);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, q->tls_verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, q->tls_verify ? 2L : 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, oh_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, oh_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
    if (q->sigv4 != NULL) {
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, q->sigv4);
        curl_easy_setopt(h, CURLOPT_USERPWD, q->userpwd);
    }
    return 0;
}

int oh_perform(const oh_req *q, oh_resp *out)
{
    oh_call c = {q, out, 0, 0, 0};
    CURLcode rc = CURLE_OK;

    CURL *h;

    pthread_once(&oh_once, oh_global);
    h = pthread_getspecific(oh_key);
    if (h == NULL) {
        if ((h = curl_easy_init()) == NULL)
            return -1;
        pthread_setspecific(oh_key, h);
    }
    for (int attempt = 0; attempt <= q->retries; attempt++) {
        struct curl_slist *hl = NULL, *pin = NULL;
        if (attempt > 0) {
            struct timespec ts = {0, (long)OH_BACKOFF_MS * 1000000L
                                         << (attempt - 1)};
            nanosleep(&ts, NULL);
        }
        memset(out, 0, sizeof *out);
        out->length = -1;
        c.sent = 0;
        if (q->keep != NULL)
            buf_reset(q->keep);
        oh_setup(h, &c, &hl, &pin);
        rc = curl_easy_perform(h);
        curl_slist_free_all(hl);
        curl_slist_free_all(pin);
        if (c.stopped || c.passed_on)
            break;
        if (rc == CURLE_OK && out->status < 500)
            break;
        /* The method and host only: a query may hold a signature. */
        log_warn("outbound %s %.*s: %s (status %ld), attempt %d", q->method,
                 (int)strcspn(q->url, "?"), q->url,
                 rc == CURLE_OK ? "server error" : curl_easy_strerror(rc),
                 out->status, attempt + 1);
    }
    if (c.stopped)
        return -1;
    return rc == CURLE_OK ? 0 : -1;
}

void oh_lines_init(oh_lines *l, size_t max,
                   int (*line)(void *ctx, const char *text, size_t len),
                   void *ctx)
{
    l->line = line;
    l->ctx = ctx;
    l->too_long = 0;
    buf_init(&l->buf, max);
}

/* Hand the buffered line over and forget it. */
static int oh_lines_emit(oh_lines *l)
{
    size_t n = l->buf.len;
    int rc;

    if (n > 0 && l->buf.data[n - 1] == '\r')
        l->buf.data[--n] = '\0';
    rc = l->line(l->ctx, n > 0 ? l->buf.data : "", n);
    buf_reset(&l->buf);
    return rc;
}

int oh_lines_sink(void *lines, const char *buf, size_t len)
{
    oh_lines *l = lines;

    while (len > 0) {
        const char *nl = memchr(buf, '\n', len);
        size_t k = nl != NULL ? (size_t)(nl - buf) : len;
        if (buf_append(&l->buf, buf, k) != 0) {
            l->too_long = 1;
            return -1;
        }
        if (nl == NULL)
            return 0;
        if (oh_lines_emit(l) != 0)
            return -1;
        buf += k + 1;
        len -= k + 1;
    }
    return 0;
}

int oh_lines_end(oh_lines *l)
{
    return l->buf.len > 0 ? oh_lines_emit(l) : 0;
}

void oh_lines_free(oh_lines *l)
{
    if (l != NULL)
        buf_free(&l->buf);
}
