/* sp_sigv4.c: SigV4 query signing (see sp_sigv4.h). */
#include "sp_sigv4.h"
#include "sp_buf.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SV4_ALGO "AWS4-HMAC-SHA256"

static void sv4_hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static void sv4_hmac(const unsigned char *key, size_t klen, const char *msg,
                     unsigned char out[32])
{
    unsigned len = 32;

    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg),
         out, &len);
}

/* "<date>/<region>/<service>/aws4_request" into out. */
static void sv4_scope(const sv4_presign *p, char *out, size_t outlen)
{
    snprintf(out, outlen, "%.8s/%s/%s/aws4_request", p->date, p->region,
             p->service);
}

int sv4_query(const sv4_presign *p, char *out, size_t outlen)
{
    char scope[256];
    int n;

    sv4_scope(p, scope, sizeof scope);
    /* The parameters in byte order, as the canonical query wants them;
     * "/" of the credential encoded. */
    n = snprintf(out, outlen,
                 "X-Amz-Algorithm=" SV4_ALGO "&X-Amz-Credential=%s%%2F%.8s%%2F"
                 "%s%%2F%s%%2Faws4_request&X-Amz-Date=%s&X-Amz-Expires=%ld&"
                 "X-Amz-SignedHeaders=host",
                 p->access, p->date, p->region, p->service, p->date,
                 p->expires);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

int sv4_signature(const sv4_presign *p, char sig[SV4_SIG_SIZE])
{
    char query[1024], scope[256], key0[600], hash[65];
    unsigned char k[32], md[32];
    unsigned mdlen = 32;
    sp_buf creq, sts;
    int rc = -1;

    buf_init(&creq, 16384);
    buf_init(&sts, 1024);
    if (sv4_query(p, query, sizeof query) != 0)
        goto out;
    buf_printf(&creq, "%s\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD",
               p->method, p->path, query, p->host);
    if (buf_failed(&creq))
        goto out;
    EVP_Digest(creq.data, creq.len, md, &mdlen, EVP_sha256(), NULL);
    sv4_hex(md, 32, hash);
    sv4_scope(p, scope, sizeof scope);
    buf_printf(&sts, SV4_ALGO "\n%s\n%s\n%s", p->date, scope, hash);
    if (buf_failed(&sts) ||
        snprintf(key0, sizeof key0, "AWS4%s", p->secret) >= (int)sizeof key0)
        goto out;
    char day[9];
    snprintf(day, sizeof day, "%.8s", p->date);
    sv4_hmac((const unsigned char *)key0, strlen(key0), day, k);
    sv4_hmac(k, 32, p->region, k);
    sv4_hmac(k, 32, p->service, k);
    sv4_hmac(k, 32, "aws4_request", k);
    sv4_hmac(k, 32, sts.data, md);
    sv4_hex(md, 32, sig);
    rc = 0;
out:
    OPENSSL_cleanse(key0, sizeof key0);
    buf_free(&creq);
    buf_free(&sts);
    return rc;
}

void sv4_date(long long t, char out[SV4_DATE_SIZE])
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, SV4_DATE_SIZE, "%Y%m%dT%H%M%SZ", &tm);
}

long long sv4_parse_date(const char *s)
{
    struct tm tm = {0};
    const char *end;

    if (strlen(s) != SV4_DATE_SIZE - 1)
        return -1;
    end = strptime(s, "%Y%m%dT%H%M%SZ", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    return (long long)timegm(&tm);
}
