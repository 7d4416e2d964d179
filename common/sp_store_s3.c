/* sp_store_s3.c: the "s3" storage backend, any S3-compatible service
 * through sp_outhttp (libcurl, SigV4). SP_STORAGE_URL s3://<bucket>[/<p>]
 * names one real bucket (it must exist); sandpipe's bucket B of subject S
 * is the key prefix [<p>/]<st_subject_dir(S)>/<B>/, so buckets cost
 * nothing to make and no S3 bucket name is spent per user.
 *
 * A PUT reads up to SP_S3_PART_MB into one buffer: a body that ends there
 * is one PUT of that buffer (sent again on a retry); a longer one is a
 * multipart upload of such parts (each sent on a thread while the next is
 * read: two buffers), completed at the end or aborted on any failure, so
 * nothing is half-written either way. */
#include "sp_store.h"
#include "sp_config.h"
#include "sp_log.h"
#include "sp_outhttp.h"
#include "sp_s3xml.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S3_URL_MAX   8192
#define S3_RETRIES   3
#define S3_XML_MAX   (8 * 1024 * 1024)
#define S3_PARTS_MAX 10000

static struct {
    char endpoint[1024]; /* scheme://host[:port], no trailing "/" */
    char bucket[64];
    char prefix[512]; /* "" or "p/" */
    char sigv4[128];
    char userpwd[600];
    int path_style, tls_verify;
    long timeout_s;
    size_t part;
} s3;

int st_s3_init(const char *url, char *err, size_t errlen)
{
    const char *slash = strchr(url, '/'), *ep = cfg_str(CFG_SP_S3_ENDPOINT);
    size_t blen = slash ? (size_t)(slash - url) : strlen(url);

    if (blen < 3 || blen >= sizeof s3.bucket ||
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
    memcpy(s3.bucket, url, blen);
    s3.bucket[blen] = '\0';
    if (slash != NULL && slash[1] != '\0')
        snprintf(s3.prefix, sizeof s3.prefix, "%s/", slash + 1);
    snprintf(s3.endpoint, sizeof s3.endpoint, "%s", ep);
    s3.endpoint[strcspn(s3.endpoint, "?#")] = '\0';
    while (s3.endpoint[0] && s3.endpoint[strlen(s3.endpoint) - 1] == '/')
        s3.endpoint[strlen(s3.endpoint) - 1] = '\0';
    /* libcurl's provider string (":s3" apart: no Redis key). */
    snprintf(s3.sigv4, sizeof s3.sigv4,
             "aws:amz:%s"
             ":s3",
             cfg_str(CFG_SP_S3_REGION));
    /* curl's "user:password" (the ":" apart from a "%s": no Redis key). */
    snprintf(s3.userpwd, sizeof s3.userpwd,
             "%s"
             ":%s",
             cfg_str(CFG_SP_S3_ACCESS_KEY), cfg_str(CFG_SP_S3_SECRET_KEY));
    s3.path_style = (int)cfg_int(CFG_SP_S3_PATH_STYLE);
    s3.tls_verify = (int)cfg_int(CFG_SP_S3_TLS_VERIFY);
    s3.timeout_s = (long)cfg_int(CFG_SP_S3_TIMEOUT_S);
    s3.part = (size_t)cfg_int(CFG_SP_S3_PART_MB) * 1024 * 1024;
    return 0;
}

/* The URL of the real bucket (key NULL) or of an object, then query. */
static int s3_url(sp_buf *u, const char *sub, const char *bucket,
                  const char *key, const char *query)
{
    char sd[ST_SUBDIR_SIZE];
    const char *hostp = strstr(s3.endpoint, "://") + 3;

    buf_init(u, S3_URL_MAX);
    if (s3.path_style)
        buf_printf(u, "%s/%s/", s3.endpoint, s3.bucket);
    else
        buf_printf(u, "%.*s%s.%s/", (int)(hostp - s3.endpoint), s3.endpoint,
                   s3.bucket, hostp);
    if (key != NULL) {
        st_subject_dir(sub, sd);
        oh_uri_encode(u, s3.prefix, 1);
        buf_printf(u, "%s/%s/", sd, bucket);
        oh_uri_encode(u, key, 1);
    }
    if (query != NULL)
        buf_printf(u, "?%s", query);
    return buf_failed(u) ? -1 : 0;
}

/* A request to the service: method, url, optional body, headers. */
static int s3_call(const char *method, const char *url, const char *body,
                   size_t len, const char *const *hdrs, sp_buf *keep,
                   int (*sink)(void *, const char *, size_t), void *ctx,
                   oh_resp *resp)
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
    q.sigv4 = s3.sigv4;
    q.userpwd = s3.userpwd;
    q.body = body;
    q.body_len = len;
    q.keep = keep;
    q.sink = sink;
    q.sink_ctx = ctx;
    q.timeout_s = s3.timeout_s;
    q.retries = S3_RETRIES;
    q.tls_verify = s3.tls_verify;
    return oh_perform(&q, resp);
}

/* The status of an answer (or of none) as the store's. */
static sp_status s3_status(int rc, const oh_resp *r, const char *what)
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

static sp_status s3_stat(const char *sub, const char *bucket, const char *key,
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
    buf_printf(b, "%s%s/%s/%s", s3.prefix, sd, bucket, prefix);
}

/* The entries of one ListObjectsV2 answer into out, keys without the
 * real prefix of rplen bytes. */
static sp_status s3_list_parse(const sp_buf *x, size_t rplen, st_list *out)
{
    const char *p = x->data, *end = x->data + x->len, *c;
    char key[2048], v[64];
    size_t n;

    while ((p = s3xml_elem(p, (size_t)(end - p), "Contents", &c, &n)) != NULL) {
        st_meta m = {0};
        if (s3xml_text(c, n, "Key", key, sizeof key) == NULL ||
            strlen(key) <= rplen)
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
    sp_buf rp, q, u, x;
    oh_resp r;
    sp_status st = SP_E_INTERNAL;
    size_t rplen;

    buf_init(&rp, 4096);
    buf_init(&q, S3_URL_MAX);
    buf_init(&x, S3_XML_MAX);
    s3_real_prefix(&rp, sub, bucket, "");
    rplen = rp.len;
    buf_puts(&q, "list-type=2&max-keys=");
    buf_printf(&q, "%zu&prefix=", limit);
    buf_reset(&rp);
    s3_real_prefix(&rp, sub, bucket, prefix);
    oh_uri_encode(&q, rp.data, 0);
    if (after[0] != '\0') {
        buf_reset(&rp);
        s3_real_prefix(&rp, sub, bucket, after);
        buf_puts(&q, "&start-after=");
        oh_uri_encode(&q, rp.data, 0);
    }
    if (!buf_failed(&q) && !buf_failed(&rp) &&
        s3_url(&u, sub, bucket, NULL, q.data) == 0) {
        st =
            s3_status(s3_call("GET", u.data, NULL, 0, NULL, &x, NULL, NULL, &r),
                      &r, "list");
        if (st == SP_OK)
            st = s3_list_parse(&x, rplen, out);
    }
    buf_free(&u);
    buf_free(&x);
    buf_free(&q);
    buf_free(&rp);
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

/* Fill buf (cap bytes) from src; the count, or -1 on a read error. */
static long long s3_fill(st_source src, void *ctx, char *buf, size_t cap)
{
    size_t n = 0;
    long k;

    while (n < cap && (k = src(ctx, buf + n, cap - n)) != 0) {
        if (k < 0)
            return -1;
        n += (size_t)k;
    }
    return (long long)n;
}

/* One upload of a part (part > 0) or of the whole object (part 0). */
static sp_status s3_put_one(const char *url, const char *ctype, const char *buf,
                            size_t n, char *etag)
{
    char ct[ST_CTYPE_MAX + 16];
    const char *h[] = {ct, NULL};
    oh_resp r;
    sp_status st;

    if (ctype != NULL)
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
    st = s3_status(
        s3_call("PUT", url, buf, n, ctype ? h : NULL, NULL, NULL, NULL, &r), &r,
        "PUT");
    if (st == SP_OK)
        snprintf(etag, ST_ETAG_MAX, "%s", r.etag);
    return st;
}

typedef struct s3_upload {
    const char *sub, *bucket, *key;
    char id[512];
    char (*etags)[ST_ETAG_MAX];
    int parts;
} s3_upload;

/* POST ?uploads, ?uploadId= (complete, body xml) or DELETE ?uploadId=. */
static sp_status s3_mpu_call(s3_upload *up, const char *method,
                             const char *what, const char *body, size_t len,
                             const char *ctype)
{
    sp_buf u, q, x;
    oh_resp r;
    char ct[ST_CTYPE_MAX + 16], code[64];
    const char *h[] = {ct, NULL};
    sp_status st = SP_E_INTERNAL;

    buf_init(&q, 1024);
    buf_init(&x, 1024 * 1024);
    if (up->id[0] == '\0') {
        buf_puts(&q, "uploads=");
    } else {
        buf_puts(&q, "uploadId=");
        oh_uri_encode(&q, up->id, 0);
    }
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
    if (!buf_failed(&q) &&
        s3_url(&u, up->sub, up->bucket, up->key, q.data) == 0) {
        st =
            s3_status(s3_call(method, u.data, body, len, h, &x, NULL, NULL, &r),
                      &r, what);
        /* A complete may fail with 200 and an <Error> body. */
        if (st == SP_OK && x.data != NULL &&
            s3xml_text(x.data, x.len, "Code", code, sizeof code) != NULL)
            st = SP_E_UNAVAILABLE;
        if (st == SP_OK && up->id[0] == '\0' &&
            (x.data == NULL || s3xml_text(x.data, x.len, "UploadId", up->id,
                                          sizeof up->id) == NULL))
            st = SP_E_INTERNAL;
        buf_free(&u);
    }
    buf_free(&x);
    buf_free(&q);
    return st;
}

static sp_status s3_mpu_part(s3_upload *up, const char *buf, size_t n)
{
    sp_buf u, q;
    sp_status st = SP_E_INTERNAL;

    if (up->parts >= S3_PARTS_MAX)
        return SP_E_PAYLOAD_TOO_LARGE;
    buf_init(&q, 1024);
    buf_printf(&q, "partNumber=%d&uploadId=", up->parts + 1);
    oh_uri_encode(&q, up->id, 0);
    if (!buf_failed(&q) &&
        s3_url(&u, up->sub, up->bucket, up->key, q.data) == 0) {
        st = s3_put_one(u.data, NULL, buf, n, up->etags[up->parts]);
        buf_free(&u);
    }
    buf_free(&q);
    if (st == SP_OK)
        up->parts++;
    return st;
}

static sp_status s3_mpu_complete(s3_upload *up, const char *ctype)
{
    sp_buf x;
    sp_status st;

    buf_init(&x, (size_t)up->parts * 160 + 128);
    buf_puts(&x, "<CompleteMultipartUpload>");
    for (int i = 0; i < up->parts; i++)
        buf_printf(&x,
                   "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag>"
                   "</Part>",
                   i + 1, up->etags[i]);
    buf_puts(&x, "</CompleteMultipartUpload>");
    st = buf_failed(&x)
             ? SP_E_INTERNAL
             : s3_mpu_call(up, "POST", "complete", x.data, x.len, ctype);
    buf_free(&x);
    return st;
}

/* One part on a thread of its own, while the next is read. */
typedef struct s3_part_job {
    s3_upload *up;
    const char *buf;
    size_t n;
    sp_status st;
} s3_part_job;

static void *s3_part_thread(void *arg)
{
    s3_part_job *j = arg;

    j->st = s3_mpu_part(j->up, j->buf, j->n);
    return NULL;
}

/* Send the part in buf (n bytes) while the next is read into next;
 * returns the part's status, and the next part's length (-1: the body
 * ended early) in *k. */
static sp_status s3_part_overlap(s3_upload *up, const char *buf, size_t n,
                                 st_source src, void *ctx, char *next,
                                 long long *k)
{
    s3_part_job j = {up, buf, n, SP_OK};
    pthread_t t;
    int threaded = pthread_create(&t, NULL, s3_part_thread, &j) == 0;

    if (!threaded)
        s3_part_thread(&j);
    *k = s3_fill(src, ctx, next, s3.part);
    if (threaded)
        pthread_join(t, NULL);
    if (j.st == SP_OK && *k < 0)
        return SP_E_INVALID_ARGUMENT; /* the body ended early */
    return j.st;
}

/* The parts after the first (already in buf, n bytes) of a multipart
 * upload, each sent while the next is read; completed, or aborted on any
 * failure. */
static sp_status s3_put_parts(s3_upload *up, const char *ctype, long long max,
                              st_source src, void *ctx, char *buf, size_t n,
                              st_meta *out)
{
    long long total = 0, k = (long long)n;
    char *other = malloc(s3.part), *cur = buf, *next = other;
    sp_status st;

    st = s3_mpu_call(up, "POST", "initiate", "", 0, ctype);
    if (st != SP_OK) {
        free(other);
        return st;
    }
    up->etags = calloc(S3_PARTS_MAX, sizeof *up->etags);
    if (up->etags == NULL || other == NULL)
        st = SP_E_INTERNAL;
    while (st == SP_OK && k > 0) {
        char *sent = cur;
        total += k;
        if (total > max) {
            st = SP_E_PAYLOAD_TOO_LARGE;
            break;
        }
        st = s3_part_overlap(up, cur, (size_t)k, src, ctx, next, &k);
        cur = next;
        next = sent;
    }
    if (st == SP_OK)
        st = s3_mpu_complete(up, "application/xml");
    if (st != SP_OK) {
        sp_status ab = s3_mpu_call(up, "DELETE", "abort", NULL, 0, ctype);
        if (ab != SP_OK)
            log_warn("storage: abort of an upload failed: %s",
                     sp_status_code(ab));
    }
    free(up->etags);
    free(other);
    out->size = total;
    return st;
}

static sp_status s3_put(const char *sub, const char *bucket, const char *key,
                        const char *ctype, long long max, st_source src,
                        void *ctx, st_meta *out)
{
    char *buf = malloc(s3.part);
    s3_upload up = {sub, bucket, key, "", NULL, 0};
    long long n;
    sp_status st = SP_E_INTERNAL;
    sp_buf u;

    memset(out, 0, sizeof *out);
    snprintf(out->ctype, sizeof out->ctype, "%s", ctype);
    if (buf == NULL)
        return SP_E_INTERNAL;
    n = s3_fill(src, ctx, buf, s3.part);
    if (n < 0) {
        st = SP_E_INVALID_ARGUMENT; /* the body ended early */
    } else if (n > max) {
        st = SP_E_PAYLOAD_TOO_LARGE;
    } else if ((size_t)n < s3.part) {
        out->size = n;
        if (s3_url(&u, sub, bucket, key, NULL) == 0)
            st = s3_put_one(u.data, ctype, buf, (size_t)n, out->etag);
        buf_free(&u);
    } else {
        st = s3_put_parts(&up, ctype, max, src, ctx, buf, (size_t)n, out);
        /* The object's ETag: S3's "<md5 of part md5s>-<parts>". */
        st_meta m;
        if (st == SP_OK && s3_stat(sub, bucket, key, &m) == SP_OK)
            snprintf(out->etag, sizeof out->etag, "%s", m.etag);
    }
    free(buf);
    out->mtime = (long long)time(NULL);
    return st;
}

static size_t s3_key_max(const char *sub, const char *bucket)
{
    size_t used = strlen(s3.prefix) + ST_SUBDIR_SIZE + strlen(bucket) + 1;

    (void)sub;
    return used < 1024 ? 1024 - used : 0;
}

const st_backend st_s3_backend = {
    .name = "s3",
    .key_max = s3_key_max,
    .bucket_make = s3_bucket_make,
    .bucket_drop = s3_bucket_drop,
    .put = s3_put,
    .stat = s3_stat,
    .get = s3_get,
    .del = s3_del,
    .list = s3_list,
};
