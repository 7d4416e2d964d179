/* handlers/storage_presign.c: the storage family: presigned object URLs.
 * POST /buckets/{name}/presign {key, method, expires_in} answers a URL of
 * this server that GETs or PUTs that one object without a credential
 * until it expires. It is signed as AWS signs a presigned S3 URL (SigV4
 * in the query, common/sp_sigv4.c): the access key id is the subject, the
 * secret an HMAC of JWT_SECRET (so nothing is stored, and changing
 * JWT_SECRET revokes every URL), the region "sandpipe". Method, host,
 * path (bucket and key), time and lifetime are signed: any change is 401. */
#include "storage.h"
#include "sp_auth.h"
#include "sp_json.h"
#include "sp_outhttp.h"
#include "sp_pct.h"
#include "sp_sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STG_PRESIGN_MAX_S 604800 /* seven days, as S3 */
#define STG_REGION        "sandpipe"
#define STG_SKEW_S        60

/* The presigning secret of this server into out (hex, 65 bytes). */
static void stg_presign_secret(char *out)
{
    static const char purpose[] = "sandpipe presigned object URL";
    unsigned char md[32];
    unsigned len = 32;
    size_t slen;
    const char *s = auth_secret(&slen);

    HMAC(EVP_sha256(), s, (int)slen, (const unsigned char *)purpose,
         sizeof purpose - 1, md, &len);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The raw path of the request URI into out; 0 or -1. */
static int stg_raw_path(http_req *r, char *out, size_t outlen)
{
    const char *uri = FCGX_GetParam("REQUEST_URI", r->fcgi.envp);
    size_t n = uri ? strcspn(uri, "?") : 0;

    if (n == 0 || n >= outlen)
        return -1;
    memcpy(out, uri, n);
    out[n] = '\0';
    return 0;
}

/* The fields of a presigned query into p (strings in the arrays given). */
static int stg_presign_parse(http_req *r, sv4_presign *p, char *cred,
                             char *date, char *sig)
{
    char algo[32], exp[16], hdrs[16], *slash;

    if (http_query(r, "X-Amz-Algorithm", algo, sizeof algo) != 1 ||
        strcmp(algo, "AWS4-HMAC-SHA256") != 0 ||
        http_query(r, "X-Amz-Credential", cred, 256) != 1 ||
        http_query(r, "X-Amz-Date", date, SV4_DATE_SIZE) != 1 ||
        http_query(r, "X-Amz-Expires", exp, sizeof exp) != 1 ||
        http_query(r, "X-Amz-SignedHeaders", hdrs, sizeof hdrs) != 1 ||
        strcmp(hdrs, "host") != 0 ||
        http_query(r, "X-Amz-Signature", sig, SV4_SIG_SIZE) != 1 ||
        strspn(exp, "0123456789") != strlen(exp) || strlen(exp) > 7)
        return -1;
    /* <subject>/<date>/sandpipe/s3/aws4_request */
    slash = strchr(cred, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    if (!id_valid(cred) || strncmp(slash + 1, date, 8) != 0 ||
        strcmp(slash + 9, "/" STG_REGION "/s3/aws4_request") != 0)
        return -1;
    p->access = cred;
    p->date = date;
    p->expires = strtol(exp, NULL, 10);
    p->region = STG_REGION;
    p->service = "s3";
    return 0;
}

int stg_presigned(http_req *r)
{
    char cred[256], date[SV4_DATE_SIZE], sig[SV4_SIG_SIZE], want[SV4_SIG_SIZE],
        secret[65], path[4096];
    sv4_presign p = {0};
    long long t, now = (long long)time(NULL);

    if (http_query(r, "X-Amz-Signature", sig, sizeof sig) == 0)
        return 1;
    p.method = r->method;
    p.host = http_header(r, "Host");
    stg_presign_secret(secret);
    p.secret = secret;
    if (p.host == NULL || stg_raw_path(r, path, sizeof path) != 0 ||
        stg_presign_parse(r, &p, cred, date, sig) != 0 ||
        (t = sv4_parse_date(date)) < 0 || p.expires < 1 ||
        p.expires > STG_PRESIGN_MAX_S || t > now + STG_SKEW_S ||
        now >= t + p.expires)
        goto refused;
    p.path = path;
    if (sv4_signature(&p, want) != 0 ||
        CRYPTO_memcmp(want, sig, SV4_SIG_SIZE) != 0)
        goto refused;
    OPENSSL_cleanse(secret, sizeof secret);
    /* id_valid: at most 64 characters, as sub holds. */
    memcpy(r->auth.sub, cred, strlen(cred) + 1);
    return 0;
refused:
    OPENSSL_cleanse(secret, sizeof secret);
    http_send_error(r, SP_E_UNAUTHENTICATED, NULL,
                    "presigned URL invalid or expired");
    return -1;
}

/* The request's key field, checked; NULL after having answered. */
static const char *stg_presign_key(http_req *r, const cJSON *body,
                                   const char *bucket)
{
    const char *key, *rule;

    if (json_str(r, body, "key", 1, 4096, &key) != 0)
        return NULL;
    rule = strlen(key) > st_get()->key_max(r->auth.sub, bucket)
               ? "key_length"
               : obj_key_rule(key, strlen(key));
    if (rule == NULL)
        return key;
    http_send_error_rule(r, SP_E_INVALID_ARGUMENT, "key", rule,
                         "bad object key (%s)", rule);
    return NULL;
}

void stg_presign(http_req *r)
{
    const char *bucket = stg_bucket(r, 0), *key, *method = NULL;
    cJSON *body = bucket ? http_json_body(r, 0) : NULL, *out;
    char secret[65], date[SV4_DATE_SIZE], query[1024], sig[SV4_SIG_SIZE],
        ts[JSON_TIME_SIZE];
    sv4_presign p = {0};
    long long exp, now = (long long)time(NULL);
    sp_buf path, url;

    buf_init(&path, 8192);
    buf_init(&url, 12288);
    if (body == NULL || (key = stg_presign_key(r, body, bucket)) == NULL ||
        json_str(r, body, "method", 0, 8, &method) != 0 ||
        json_int(r, body, "expires_in", 0, 1, STG_PRESIGN_MAX_S, 3600, &exp) !=
            0)
        goto out;
    if (method == NULL)
        method = "GET";
    if (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "method",
                        "method must be GET or PUT");
        goto out;
    }
    buf_printf(&path, "/buckets/%s/objects/", bucket);
    pct_encode(&path, key, "/");
    stg_presign_secret(secret);
    sv4_date(now, date);
    p = (sv4_presign){method,    http_header(r, "Host"),
                      path.data, r->auth.sub,
                      secret,    STG_REGION,
                      "s3",      date,
                      (long)exp};
    if (p.host == NULL || buf_failed(&path) ||
        sv4_query(&p, query, sizeof query) != 0 ||
        sv4_signature(&p, sig) != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, NULL,
                        "cannot sign for this request's Host");
        goto out;
    }
    buf_printf(&url, "%s?%s&X-Amz-Signature=%s", path.data, query, sig);
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "method", method);
    cJSON_AddStringToObject(out, "path", url.data);
    buf_reset(&path);
    buf_printf(&path, "http://%s%s", p.host, url.data);
    cJSON_AddStringToObject(out, "url", path.data);
    json_time(now + exp, ts, sizeof ts);
    cJSON_AddStringToObject(out, "expires_at", ts);
    http_send_json(r, 200, out);
    cJSON_Delete(out);
out:
    OPENSSL_cleanse(secret, sizeof secret);
    buf_free(&path);
    buf_free(&url);
    cJSON_Delete(body);
}
