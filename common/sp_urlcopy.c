/* sp_urlcopy.c: URL → sandbox copies (sp_urlcopy.h): the body streams
 * from the pinned, public address into a spool file that the helper
 * writes into the sandbox (hc_file_write_with). */
#include "sp_urlcopy.h"

#include "sp_egress.h"
#include "sp_helper.h"
#include "sp_outhttp.h"
#include "sp_spool.h"

#include <stdio.h>
#include <string.h>

#define URLCOPY_TIMEOUT 30
/* One URL's whole fetch at most: 64 MiB at a modest 1 MiB/s and some. */
#define URLCOPY_TOTAL 120

typedef struct urlcopy_ctx {
    const char *url, *pin;
    int fd;
    urlcopy_res *res;
} urlcopy_ctx;

static int urlcopy_sink(void *ctx, const char *buf, size_t len)
{
    urlcopy_ctx *c = ctx;

    if (c->res->got + (long long)len > (long long)SPOOL_BODY_MAX) {
        c->res->fail = URLCOPY_TOO_LARGE;
        return -1;
    }
    c->res->got += (long long)len;
    return spool_write_all(c->fd, buf, len);
}

/* hc_file_write_with's fill: the URL's body into the spool file. */
static long long urlcopy_fill(void *ctx, int fd)
{
    urlcopy_ctx *c = ctx;
    oh_req q = {0};
    oh_resp resp;
    int rc;

    q.method = "GET";
    q.url = c->url;
    q.pin = c->pin;
    q.sink = urlcopy_sink;
    q.sink_ctx = c;
    q.timeout_s = URLCOPY_TIMEOUT;
    q.total_s = URLCOPY_TOTAL;
    q.tls_verify = 1;
    c->fd = fd;
    rc = oh_perform(&q, &resp);
    c->res->status = resp.status;
    if (c->res->fail == URLCOPY_OK &&
        (rc != 0 || resp.status < 200 || resp.status > 299))
        c->res->fail = URLCOPY_FETCH;
    return c->res->fail == URLCOPY_OK ? c->res->got : -1;
}

const char *urlcopy_form(const char *url)
{
    return strlen(url) > URLCOPY_URL_LEN ? "url_malformed" : egress_form(url);
}

const char *urlcopy_check(const char *url, char *pin, size_t pinlen)
{
    return strlen(url) > URLCOPY_URL_LEN ? "url_malformed"
                                         : egress_url(url, pin, pinlen);
}

void urlcopy_name(const char *url, char *out, size_t outlen)
{
    const char *p = strstr(url, "://"), *end, *slash;

    p = p ? p + 3 : url;
    end = p + strcspn(p, "?#");
    slash = memrchr(p, '/', (size_t)(end - p));
    if (slash == NULL || end - slash - 1 <= 0 ||
        end - slash - 1 >= URLCOPY_NAME_MAX ||
        (end - slash - 1 <= 2 && slash[1] == '.')) {
        snprintf(out, outlen, "download");
        return;
    }
    snprintf(out, outlen, "%.*s", (int)(end - slash - 1), slash + 1);
}

int urlcopy_import(const char *helper, const char *sbx, const char *url,
                   const char *path, urlcopy_res *res, rpc_err *err)
{
    char pin[EGRESS_PIN_MAX];
    urlcopy_ctx c = {url, pin, -1, res};
    rpc_reply rep;

    *res = (urlcopy_res){0, 0, URLCOPY_OK, NULL};
    res->rule = urlcopy_check(url, pin, sizeof pin);
    if (res->rule != NULL) {
        res->fail = URLCOPY_REFUSED;
        return -1;
    }
    if (hc_file_write_with(helper, sbx, path, urlcopy_fill, &c, &rep, err) !=
        0) {
        if (res->fail == URLCOPY_OK)
            res->fail = URLCOPY_HELPER;
        return -1;
    }
    rpc_reply_free(&rep);
    return 0;
}
