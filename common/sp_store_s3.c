/* sp_store_s3.c: the "s3" storage backend, any S3-compatible service
 * through sp_outhttp (libcurl, SigV4). SP_STORAGE_URL s3://<bucket>[/<p>]
 * names one real bucket (it must exist); sandpipe's bucket B of subject S
 * is the key prefix [<p>/]<st_subject_dir(S)>/<B>/, so buckets cost
 * nothing to make and no S3 bucket name is spent per user.
 *
 * PUT is in sp_store_s3_put.c. */
#include "sp_store.h"
#include "sp_config.h"
#include "sp_log.h"
#include "sp_objname.h"
#include "sp_outhttp.h"
#include "sp_pct.h"
#include "sp_s3xml.h"
#include "sp_store_s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S3_RETRIES 3
#define S3_XML_MAX (8 * 1024 * 1024)

s3_config s3_cfg;

int st_s3_init(const char *url, char *err, size_t errlen)
{
    const char *slash = strchr(url, '/'), *ep = cfg_str(CFG_SP_S3_ENDPOINT);
    size_t blen = slash ? (size_t)(slash - url) : strlen(url);

    if (blen < 3 || blen >= sizeof s3_cfg.bucket ||
        (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)) {
        snprintf(err, errlen,
                 "SP_STORAGE_URL/SP_S3_ENDPOINT: need "
                 "s3://bucket[/prefix] and an http(s) endpoint");
        return -1;
    }
    if (cfg_str(CFG_SP_S3_ACCESS_KEY)[0] == '\0' ||
        cfg_str(CFG_SP_S3_SECRET_KEY)[0] == '\0') {
        snprintf(err, errlen,
                 "SP_S3_ACCESS_KEY/SP_S3_SECRET_KEY: required "
                 "for s3:// storage");
        return -1;
    }
    memcpy(s3_cfg.bucket, url, blen);
    s3_cfg.bucket[blen] = '\0';
    if (slash != NULL && slash[1] != '\0')
        snprintf(s3_cfg.prefix, sizeof s3_cfg.prefix, "%s/", slash + 1);
    snprintf(s3_cfg.endpoint, sizeof s3_cfg.endpoint, "%s", ep);
    s3_cfg.endpoint[strcspn(s3_cfg.endpoint, "?#")] = '\0';
    while (s3_cfg.endpoint[0] &&
           s3_cfg.endpoint[strlen(s3_cfg.endpoint) - 1] == '/')
        s3_cfg.endpoint[strlen(s3_cfg.endpoint) - 1] = '\0';
    /* libcurl's provider string (":s3" apart: no Redis key). */
    snprintf(s3_cfg.sigv4, sizeof s3_cfg.sigv4,
             "aws:amz:%s"
             ":s3",
             cfg_str(CFG_SP_S3_REGION));
    /* curl's "user:password" (the ":" apart from a "%s": no Redis key). */
    snprintf(s3_cfg.userpwd, sizeof s3_cfg.userpwd,
             "%s"
             ":%s",
             cfg_str(CFG_SP_S3_ACCESS_KEY), cfg_str(CFG_SP_S3_SECRET_KEY));
    s3_cfg.path_style = (int)cfg_int(CFG_SP_S3_PATH_STYLE);
    s3_cfg.tls_verify = (int)cfg_int(CFG_SP_S3_TLS_VERIFY);
    s3_cfg.timeout_s = (long)cfg_int(CFG_SP_S3_TIMEOUT_S);
    s3_cfg.part = (size_t)cfg_int(CFG_SP_S3_PART_MB) * 1024 * 1024;
    return 0;
}

/* The URL of the real bucket (key NULL) or of an object, then query. */
int s3_url(sp_buf *u, const char *sub, const char *bucket, const char *key,
           const char *query)
{
    char sd[ST_SUBDIR_SIZE];
    const char *hostp = strstr(s3_cfg.endpoint, "://") + 3;

    buf_init(u, S3_URL_MAX);
    if (s3_cfg.path_style)
        buf_printf(u, "%s/%s/", s3_cfg.endpoint, s3_cfg.bucket);
    else
        buf_printf(u, "%.*s%s.%s/", (int)(hostp - s3_cfg.endpoint),
                   s3_cfg.endpoint, s3_cfg.bucket, hostp);
    if (key != NULL) {
        st_subject_dir(sub, sd);
        pct_encode(u, s3_cfg.prefix, "/");
        buf_printf(u, "%s/%s/", sd, bucket);
        pct_encode(u, key, "/");
    }
    if (query != NULL)
        buf_printf(u, "?%s", query);
    return buf_failed(u) ? -1 : 0;
}

/* A request to the service: method, url, optional body, headers. */
int s3_call(const char *method, const char *url, const char *body, size_t len,
            const char *const *hdrs, sp_buf *keep,
            int (*sink)(void *, const char *, size_t), void *ctx, oh_resp *resp)
{
    const char *h[8] = {"x-amz-content-sha256: UNSIGNED-PAYLOAD"};
    int n = 1;
    oh_req q = {0};

    for (; hdrs != NULL && *hdrs != NULL && n < 7; hdrs++)
        h[n++] = *hdrs;
    h[n] = NULL;
    q.method = method;
    q.url = url;
    q.headers = h;
    q.sigv4 = s3_cfg.sigv4;
    q.userpwd = s3_cfg.userpwd;
    q.body = body;
    q.body_len = len;
    q.keep = keep;
    q.sink = sink;
    q.sink_ctx = ctx;
    q.timeout_s = s3_cfg.timeout_s;
    q.retries = S3_RETRIES;
    q.tls_verify = s3_cfg.tls_verify;
    return oh_perform(&q, resp);
}

/* The status of an answer (or of none) as the store's. */
sp_status s3_status(int rc, const oh_resp *r, const char *what)
{
    if (rc != 0 || r->status >= 500)
        return SP_E_UNAVAILABLE;
    if (r->status >= 200 && r->status < 300)
        return SP_OK;
    if (r->status == 404)
        return SP_E_NOT_FOUND;
    if (r->status == 412)
        return SP_E_CONFLICT;
    if (r->status == 400)
        return SP_E_INVALID_ARGUMENT;
    log_warn("storage: s3 %s answered %ld", what, r->status);
    return SP_E_INTERNAL;
}

static sp_status s3_bucket_make(const char *sub, const char *bucket)
{
    (void)sub;
    (void)bucket;
    return SP_OK; /* a key prefix: nothing to make */
}

sp_status s3_stat(const char *sub, const char *bucket, const char *key,
                  st_meta *out)
{
    sp_buf u;
    oh_resp r;
    sp_status st = SP_E_INTERNAL;

    memset(out, 0, sizeof *out);
    if (s3_url(&u, sub, bucket, key, NULL) == 0)
        st = s3_status(
            s3_call("HEAD", u.data, NULL, 0, NULL, NULL, NULL, NULL, &r), &r,
            "HEAD");
    buf_free(&u);
    if (st != SP_OK)
        return st;
    out->size = r.length < 0 ? 0 : r.length;
    out->mtime = r.mtime;
    snprintf(out->etag, sizeof out->etag, "%s", r.etag);
    snprintf(out->ctype, sizeof out->ctype, "%s",
             r.ctype[0] ? r.ctype : "application/octet-stream");
    return SP_OK;
}

static sp_status s3_get(const char *sub, const char *bucket, const char *key,
                        const char *etag, long long off, long long len,
                        st_sink sink, void *ctx)
{
    char range[64], match[ST_ETAG_MAX + 16];
    const char *h[] = {range, match, NULL};
    sp_buf u;
    oh_resp r;
    sp_status st = SP_E_INTERNAL;

    snprintf(range, sizeof range, "Range: bytes=%lld-%lld", off, off + len - 1);
    snprintf(match, sizeof match, "If-Match: \"%s\"", etag ? etag : "*");
    if (s3_url(&u, sub, bucket, key, NULL) == 0)
        st = s3_status(s3_call("GET", u.data, NULL, 0, h, NULL, sink, ctx, &r),
                       &r, "GET");
    buf_free(&u);
    return st;
}

static sp_status s3_del(const char *sub, const char *bucket, const char *key)
{
    sp_buf u;
    oh_resp r;
    sp_status st = SP_E_INTERNAL;

    if (s3_url(&u, sub, bucket, key, NULL) == 0)
        st = s3_status(
            s3_call("DELETE", u.data, NULL, 0, NULL, NULL, NULL, NULL, &r), &r,
            "DELETE");
    buf_free(&u);
    return st == SP_E_NOT_FOUND ? SP_OK : st;
}

/* The real key prefix of a sandpipe bucket (and a key prefix in it). */
static void s3_real_prefix(sp_buf *b, const char *sub, const char *bucket,
                           const char *prefix)
{
    char sd[ST_SUBDIR_SIZE];

    st_subject_dir(sub, sd);
    buf_printf(b, "%s%s/%s/%s", s3_cfg.prefix, sd, bucket, prefix);
}

/* The entries of one ListObjectsV2 answer into out, keys without the
 * bucket's real prefix real (rplen bytes). A key the answer holds that is
 * not under it, or that is no valid key below it, is left out: the keys
 * listed reach paths (an import's) as any key does. */
static sp_status s3_list_parse(const sp_buf *x, const char *real, size_t rplen,
                               st_list *out)
{
    const char *p = x->data, *end = x->data + x->len, *c;
    char key[2048], v[64];
    size_t n;

    while ((p = s3xml_elem(p, (size_t)(end - p), "Contents", &c, &n)) != NULL) {
        st_meta m = {0};
        if (s3xml_text(c, n, "Key", key, sizeof key) == NULL ||
            strncmp(key, real, rplen) != 0 ||
            obj_key_rule(key + rplen, strlen(key + rplen)) != NULL)
            continue;
        s3xml_text(c, n, "ETag", m.etag, sizeof m.etag);
        if (m.etag[0] == '"') {
            memmove(m.etag, m.etag + 1, strlen(m.etag));
            m.etag[strcspn(m.etag, "\"")] = '\0';
        }
        if (s3xml_text(c, n, "Size", v, sizeof v) != NULL)
            m.size = strtoll(v, NULL, 10);
        if (s3xml_text(c, n, "LastModified", v, sizeof v) != NULL) {
            struct tm tm = {0};
            if (strptime(v, "%Y-%m-%dT%H:%M:%S", &tm) != NULL)
                m.mtime = (long long)timegm(&tm);
        }
        if (st_list_add(out, key + rplen, &m) != 0)
            return SP_E_INTERNAL;
    }
    if (s3xml_text(x->data, x->len, "IsTruncated", v, sizeof v) != NULL)
        out->truncated = strcmp(v, "true") == 0;
    return SP_OK;
}

static sp_status s3_list(const char *sub, const char *bucket,
                         const char *prefix, const char *after, size_t limit,
                         st_list *out)
{
    sp_buf real, rp, q, u, x;
    oh_resp r;
    sp_status st = SP_E_INTERNAL;

    buf_init(&u, 0); /* s3_url's, when it is reached */
    buf_init(&real, 4096);
    buf_init(&rp, 4096);
    buf_init(&q, S3_URL_MAX);
    buf_init(&x, S3_XML_MAX);
    s3_real_prefix(&real, sub, bucket, "");
    buf_puts(&q, "list-type=2&max-keys=");
    buf_printf(&q, "%zu&prefix=", limit);
    s3_real_prefix(&rp, sub, bucket, prefix);
    pct_encode(&q, rp.data, NULL);
    if (after[0] != '\0') {
        buf_reset(&rp);
        s3_real_prefix(&rp, sub, bucket, after);
        buf_puts(&q, "&start-after=");
        pct_encode(&q, rp.data, NULL);
    }
    if (!buf_failed(&q) && !buf_failed(&rp) && !buf_failed(&real) &&
        s3_url(&u, sub, bucket, NULL, q.data) == 0) {
        st =
            s3_status(s3_call("GET", u.data, NULL, 0, NULL, &x, NULL, NULL, &r),
                      &r, "list");
        if (st == SP_OK)
            st = s3_list_parse(&x, real.data, real.len, out);
    }
    buf_free(&u);
    buf_free(&x);
    buf_free(&q);
    buf_free(&rp);
    buf_free(&real);
    return st;
}

static sp_status s3_bucket_drop(const char *sub, const char *bucket)
{
    sp_status st = SP_OK;

    /* Bounded: each round removes what it listed, or fails. */
    for (int round = 0; round < 1000000 && st == SP_OK; round++) {
        st_list l = {0};
        st = s3_list(sub, bucket, "", "", ST_LIST_MAX, &l);
        for (size_t i = 0; st == SP_OK && i < l.n; i++)
            st = s3_del(sub, bucket, l.v[i].key);
        size_t n = l.n;
        st_list_free(&l);
        if (n == 0)
            break;
    }
    return st;
}

static size_t s3_key_max(const char *sub, const char *bucket)
{
    size_t used = strlen(s3_cfg.prefix) + ST_SUBDIR_SIZE + strlen(bucket) + 1;

    (void)sub;
    return used < 1024 ? 1024 - used : 0;
}

const st_backend st_s3_backend = {
    .name = "s3",
    .key_max = s3_key_max,
    .bucket_make = s3_bucket_make,
    .bucket_drop = s3_bucket_drop,
    .put = s3_put, /* sp_store_s3_put.c */
    .stat = s3_stat,
    .get = s3_get,
    .del = s3_del,
    .list = s3_list,
};
