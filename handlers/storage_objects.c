/* handlers/storage_objects.c: the storage family: one object. PUT streams
 * the request body into the backend (never whole in memory; nginx passes
 * it unbuffered, storage.conf), GET and HEAD stream it back with its
 * Content-Type and ETag (a single Range: 206, or 416), DELETE removes it.
 * The key is the raw request URI's path after /buckets/{name}/objects/,
 * percent-decoded, so that every byte S3 allows (and "//", a trailing
 * "/") reaches the key as sent; it is then checked (sp_objname.h). */
#include "storage.h"
#include "sp_auth.h"
#include "sp_config.h"
#include "sp_json.h"
#include "sp_log.h"
#include "sp_pct.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STG_URI_MAX 4096

typedef struct stg_body {
    FCGX_Stream *in;
    long long want; /* Content-Length, -1 when none */
    long long got;
} stg_body;

/* The key of this request into key (OBJ_KEY_MAX + 1, NUL-terminated; its
 * length in *len). 0, or -1 after having answered. */
static int stg_key(http_req *r, const char *bucket, char *key, size_t *len)
{
    const char *uri = FCGX_GetParam("REQUEST_URI", r->fcgi.envp);
    char path[STG_URI_MAX], prefix[128];
    size_t plen;
    long n;
    const char *rule;

    uri = uri ? uri : "";
    n = pct_decode(uri, strcspn(uri, "?"), 0, path, sizeof path);
    plen =
        (size_t)snprintf(prefix, sizeof prefix, "/buckets/%s/objects/", bucket);
    if (n >= 0 && ((size_t)n < plen || memcmp(path, prefix, plen) != 0)) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "no such route");
        return -1;
    }
    *len = n >= 0 ? (size_t)n - plen : 0;
    if (n < 0) /* -1: longer than any key; -2: a NUL */
        rule = n == -1 ? "key_length" : "key_control_character";
    else if (*len > st_get()->key_max(r->auth.sub, bucket))
        rule = "key_length";
    else
        rule = obj_key_rule(path + plen, *len);
    if (rule != NULL) {
        http_send_error_rule(r, SP_E_INVALID_ARGUMENT, "key", rule,
                             "bad object key (%s)", rule);
        return -1;
    }
    memcpy(key, path + plen, *len);
    key[*len] = '\0';
    return 0;
}

/* The caller: a presigned URL (GET and PUT only) or a credential. 0, or
 * -1 after having answered. */
static int stg_caller(http_req *r)
{
    int rc = stg_presigned(r);

    return rc <= 0 ? rc : http_authenticate(r, AUTH_REQUIRED);
}

/* Caller, bucket and key of this request; 0, or -1 after having
 * answered. */
static int stg_target(http_req *r, const char **bucket, char *key)
{
    size_t len;

    if (stg_caller(r) != 0)
        return -1;
    *bucket = stg_bucket(r, 0);
    return *bucket != NULL && stg_key(r, *bucket, key, &len) == 0 ? 0 : -1;
}

cJSON *stg_object_json(const char *bucket, const char *key, const st_meta *m)
{
    cJSON *o = cJSON_CreateObject();
    char ts[JSON_TIME_SIZE];

    if (bucket != NULL)
        cJSON_AddStringToObject(o, "bucket", bucket);
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddNumberToObject(o, "size", (double)m->size);
    cJSON_AddStringToObject(o, "etag", m->etag);
    cJSON_AddStringToObject(o, "content_type", m->ctype);
    json_time(m->mtime, ts, sizeof ts);
    cJSON_AddStringToObject(o, "last_modified", ts);
    return o;
}

static long stg_body_read(void *ctx, char *buf, size_t len)
{
    stg_body *b = ctx;
    int n = FCGX_GetStr(buf, len > (1 << 30) ? 1 << 30 : (int)len, b->in);

    /* A body cut short (the client went away) is no object: a length not
     * reached, or, for a body of chunks without one, the connection from
     * nginx closed before its end (libfcgi's stream error; a short read
     * alone looks like the end). */
    if (n < 0 || FCGX_GetError(b->in) != 0)
        return -1;
    b->got += n;
    if (n == 0 && b->want >= 0 && b->got != b->want)
        return -1;
    return n;
}

/* The request's Content-Type, checked; NULL after having answered. */
static const char *stg_ctype(http_req *r)
{
    const char *ct = FCGX_GetParam("CONTENT_TYPE", r->fcgi.envp);

    if (ct == NULL || ct[0] == '\0')
        return "application/octet-stream";
    for (const char *p = ct; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e ||
            p - ct >= ST_CTYPE_MAX - 1) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "Content-Type",
                            "Content-Type must be printable ASCII, at most "
                            "%d bytes",
                            ST_CTYPE_MAX - 1);
            return NULL;
        }
    }
    return ct;
}

void stg_object_put(http_req *r)
{
    const char *bucket, *ctype, *cl;
    char key[OBJ_KEY_MAX + 1];
    long long max = cfg_int(CFG_SP_OBJECT_MAX);
    stg_body b = {r->fcgi.in, -1, 0};
    st_meta m;
    sp_status st;
    cJSON *out;

    if (stg_target(r, &bucket, key) != 0 || (ctype = stg_ctype(r)) == NULL)
        return;
    cl = FCGX_GetParam("CONTENT_LENGTH", r->fcgi.envp);
    if (cl != NULL && cl[0] != '\0') {
        char *end;
        errno = 0;
        b.want = strtoll(cl, &end, 10);
        if (*end != '\0' || errno != 0 || b.want < 0)
            b.want = max + 1;
    }
    if (b.want > max) {
        http_send_error(r, SP_E_PAYLOAD_TOO_LARGE, NULL,
                        "object larger than %lld bytes", max);
        return;
    }
    st = st_get()->put(r->auth.sub, bucket, key, ctype, max, stg_body_read, &b,
                       &m);
    if (st != SP_OK) {
        if (st == SP_E_PAYLOAD_TOO_LARGE)
            http_send_error(r, st, NULL, "object larger than %lld bytes", max);
        else
            stg_send_status(r, st, "object put");
        return;
    }
    http_add_header(r, "ETag: \"%s\"", m.etag);
    out = stg_object_json(bucket, key, &m);
    http_send_json(r, 200, out);
    cJSON_Delete(out);
}

/* The single byte range of a "Range: bytes=a-b" header for an object of
 * size bytes into *off and *len. 1: a range applies (206); 0: none or one
 * this server ignores (several ranges, other units: 200 whole); -1: not
 * satisfiable (416). */
static int stg_range(const char *h, long long size, long long *off,
                     long long *len)
{
    long long a = -1, b = -1;
    const char *p;
    char *end;

    if (h == NULL || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
        return 0;
    p = h + 6;
    if (*p >= '0' && *p <= '9') {
        a = strtoll(p, &end, 10);
        p = end;
    }
    if (*p++ != '-')
        return 0;
    if (*p >= '0' && *p <= '9') {
        b = strtoll(p, &end, 10);
        p = end;
    }
    if (*p != '\0' || (a < 0 && b < 0))
        return 0;
    if (a < 0) { /* the last b bytes */
        if (b == 0 || size == 0)
            return -1;
        a = b >= size ? 0 : size - b;
        b = size - 1;
    } else if (b < 0 || b >= size) {
        b = size - 1;
    }
    if (a >= size || a > b)
        return -1;
    *off = a;
    *len = b - a + 1;
    return 1;
}

static int stg_sink(void *ctx, const char *buf, size_t len)
{
    return http_write_body(ctx, buf, len);
}

/* GET and HEAD: the head from the object's meta, then (GET) its bytes. */
static void stg_object_send(http_req *r, int body)
{
    const char *bucket;
    char key[OBJ_KEY_MAX + 1];
    long long off = 0, len;
    int ranged = 0;
    st_meta m;
    sp_status st;

    if (stg_target(r, &bucket, key) != 0)
        return;
    st = st_get()->stat(r->auth.sub, bucket, key, &m);
    if (st != SP_OK) {
        if (st == SP_E_NOT_FOUND)
            http_send_error(r, st, NULL, "no such object");
        else
            stg_send_status(r, st, "object get");
        return;
    }
    len = m.size;
    if (body)
        ranged = stg_range(http_header(r, "Range"), m.size, &off, &len);
    if (ranged < 0) {
        http_add_header(r, "Content-Range: bytes */%lld", m.size);
        http_send_error(r, SP_E_RANGE, "Range", "range outside the object");
        return;
    }
    http_add_header(r, "ETag: \"%s\"", m.etag);
    http_add_header(r, "Accept-Ranges: bytes");
    if (ranged)
        http_add_header(r, "Content-Range: bytes %lld-%lld/%lld", off,
                        off + len - 1, m.size);
    if (http_send_head(r, ranged ? 206 : 200, m.ctype,
                       (unsigned long long)len) != 0 ||
        !body || len == 0)
        return;
    st = st_get()->get(r->auth.sub, bucket, key, m.etag, off, len, stg_sink, r);
    if (st != SP_OK) /* the head is gone: cut the answer short */
        log_warn("storage: object get of %s failed after the head: %s", bucket,
                 sp_status_code(st));
}

void stg_object_get(http_req *r)
{
    stg_object_send(r, 1);
}

void stg_object_head(http_req *r)
{
    stg_object_send(r, 0);
}

void stg_object_delete(http_req *r)
{
    const char *bucket;
    char key[OBJ_KEY_MAX + 1];
    sp_status st;

    if (stg_target(r, &bucket, key) != 0)
        return;
    st = st_get()->del(r->auth.sub, bucket, key);
    if (st != SP_OK) {
        stg_send_status(r, st, "object delete");
        return;
    }
    http_send_raw(r, 204, "application/json; charset=utf-8", NULL, 0);
}
