/* sp_store_s3_put.c: the s3 backend's PUT (see sp_store_s3.c): a body
 * that fits one part is one PUT of a buffer (sent again on a retry); a
 * longer one a multipart upload, each part sent on a thread while the
 * next is read (two buffers), completed at the end or aborted on any
 * failure, so nothing is half-written either way. */
#include "sp_log.h"
#include "sp_pct.h"
#include "sp_s3xml.h"
#include "sp_store_s3.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
        pct_encode(&q, up->id, NULL);
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
    pct_encode(&q, up->id, NULL);
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
    *k = s3_fill(src, ctx, next, s3_cfg.part);
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
    char *other = malloc(s3_cfg.part), *cur = buf, *next = other;
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

sp_status s3_put(const char *sub, const char *bucket, const char *key,
                 const char *ctype, long long max, st_source src, void *ctx,
                 st_meta *out)
{
    char *buf = malloc(s3_cfg.part);
    s3_upload up = {sub, bucket, key, "", NULL, 0};
    long long n;
    sp_status st = SP_E_INTERNAL;
    sp_buf u;

    memset(out, 0, sizeof *out);
    snprintf(out->ctype, sizeof out->ctype, "%s", ctype);
    if (buf == NULL)
        return SP_E_INTERNAL;
    n = s3_fill(src, ctx, buf, s3_cfg.part);
    if (n < 0) {
        st = SP_E_INVALID_ARGUMENT; /* the body ended early */
    } else if (n > max) {
        st = SP_E_PAYLOAD_TOO_LARGE;
    } else if ((size_t)n < s3_cfg.part) {
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
