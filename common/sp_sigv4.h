/* sp_sigv4.h: AWS Signature Version 4 in query parameters (presigned
 * URLs), which libcurl does not make: the one place it is computed
 * (OpenSSL HMAC-SHA256). Header signing of requests is libcurl's
 * (CURLOPT_AWS_SIGV4, common/sp_outhttp.c). sp-storage signs its own
 * presigned object URLs this way with a key derived from JWT_SECRET; the
 * unit tests check it against the example of AWS's documentation. */
#ifndef SP_SIGV4_H
#define SP_SIGV4_H

#include <stddef.h>

#define SV4_SIG_SIZE  65 /* 64 hex characters and the NUL */
#define SV4_DATE_SIZE 17 /* YYYYMMDDTHHMMSSZ and the NUL */

typedef struct sv4_presign {
    const char *method; /* "GET", "PUT" */
    const char *host;   /* the Host header the URL is used with */
    const char *path;   /* the URI path, already percent-encoded */
    const char *access; /* access key id: no "/" or "&" */
    const char *secret;
    const char *region, *service;
    const char *date; /* YYYYMMDDTHHMMSSZ */
    long expires;     /* seconds */
} sv4_presign;

/* The query string of p without its signature ("X-Amz-Algorithm=…&…&
 * X-Amz-SignedHeaders=host") into out; 0, or -1 if it does not fit. */
int sv4_query(const sv4_presign *p, char *out, size_t outlen);

/* The signature of p (hex) into sig; 0 or -1. */
int sv4_signature(const sv4_presign *p, char sig[SV4_SIG_SIZE]);

/* The Unix time t as a SigV4 date into out. */
void sv4_date(long long t, char out[SV4_DATE_SIZE]);

/* The Unix time of a SigV4 date, or -1 if it is not one. */
long long sv4_parse_date(const char *s);

#endif
