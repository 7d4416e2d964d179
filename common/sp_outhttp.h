/* sp_outhttp.h: outbound HTTP, the one libcurl wrapper (docs/DESIGN.md
 * §7): timeouts, retries with back-off on 5xx and transport failures (when
 * the request body can be sent again and no answer byte was passed on),
 * response bodies streamed to a sink or kept with a ceiling, AWS SigV4
 * signing by libcurl, and no credential in any log line. One curl handle
 * per thread is kept, so connections are reused. */
#ifndef SP_OUTHTTP_H
#define SP_OUTHTTP_H

#include <stddef.h>

#include "sp_buf.h"

#define OH_HDR_MAX 256

typedef struct oh_req {
    const char *method;         /* "GET", "PUT", "HEAD", "POST", "DELETE" */
    const char *url;            /* never logged with its query */
    const char *const *headers; /* "Name: value" lines, NULL-terminated */
    const char *sigv4;          /* "aws:amz:<region>:s3", or NULL */
    const char *userpwd;        /* "<access>:<secret>" for sigv4 */
    const char *body;           /* the request body (sent again on retry) */
    size_t body_len;
    int (*sink)(void *ctx, const char *buf, size_t len); /* 2xx body */
    void *sink_ctx;
    sp_buf *keep;    /* or: the body kept here (its max), any status */
    long timeout_s;  /* connect timeout and stall limit */
    long total_s;    /* the whole transfer at most (0: no limit) */
    int retries;     /* attempts after the first */
    int tls_verify;  /* 0: no certificate check (a test service) */
    const char *pin; /* "host:port:address" (sp_egress.h), or NULL: then
                        no proxy either (a proxy would resolve the name
                        again, and the pin would not hold) */
} oh_req;

typedef struct oh_resp {
    long status;      /* HTTP status; 0 when no answer came */
    long long length; /* Content-Length, -1 when none */
    long long mtime;  /* Last-Modified as Unix seconds, 0 when none */
    char etag[80];    /* without quotes (ST_ETAG_MAX) */
    char ctype[OH_HDR_MAX];
} oh_resp;

/* Perform q; the answer's facts into *out. 0 when an answer came (any
 * status: the caller judges it), -1 when none did after the retries (or
 * the sink stopped). Thread-safe. */
int oh_perform(const oh_req *q, oh_resp *out);

/* A streamed answer read line by line (server-sent events, NDJSON): an
 * oh_lines is the sink context of oh_req (sink = oh_lines_sink), which
 * cuts the body into lines ("\n", a "\r" before it dropped) and hands
 * each to line(ctx, text, len) without its end; the text is NUL-terminated
 * and valid only during the call. A line longer than max (set with
 * oh_lines_init) stops the transfer (too_long is then 1), as does a
 * non-zero return of line. oh_lines_end hands over a last line without
 * "\n"; oh_lines_free releases the buffer (NULL-safe). */
typedef struct oh_lines {
    int (*line)(void *ctx, const char *text, size_t len);
    void *ctx;
    sp_buf buf;
    int too_long;
} oh_lines;

void oh_lines_init(oh_lines *l, size_t max,
                   int (*line)(void *ctx, const char *text, size_t len),
                   void *ctx);
int oh_lines_sink(void *lines, const char *buf, size_t len);
int oh_lines_end(oh_lines *l);
void oh_lines_free(oh_lines *l);

#endif
