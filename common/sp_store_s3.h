/* sp_store_s3.h: what the two files of the s3 backend share
 * (common/sp_store_s3.c: set-up, requests, stat, get, delete, list;
 * sp_store_s3_put.c: PUT, single or multipart). Not for other modules:
 * they use the backend through sp_store.h. */
#ifndef SP_STORE_S3_H
#define SP_STORE_S3_H

#include "sp_buf.h"
#include "sp_outhttp.h"
#include "sp_store.h"

#define S3_URL_MAX   8192
#define S3_PARTS_MAX 10000

typedef struct s3_config {
    char endpoint[1024]; /* scheme://host[:port], no trailing "/" */
    char bucket[64];
    char prefix[512]; /* "" or "p/" */
    char sigv4[128];
    char userpwd[600];
    int path_style, tls_verify;
    long timeout_s;
    size_t part;
} s3_config;

/* The configuration st_s3_init read (read-only after). */
extern s3_config s3_cfg;

/* The URL of the real bucket (key NULL) or of an object, then ?query
 * (may be NULL), into u (buf_init'ed here; the caller frees). 0 or -1. */
int s3_url(sp_buf *u, const char *sub, const char *bucket, const char *key,
           const char *query);

/* A signed request to the service (sp_outhttp.h): body (sent again on a
 * retry), extra header lines (NULL-terminated, may be NULL), the answer's
 * body kept in keep or passed to sink. oh_perform's result. */
int s3_call(const char *method, const char *url, const char *body, size_t len,
            const char *const *hdrs, sp_buf *keep,
            int (*sink)(void *, const char *, size_t), void *ctx,
            oh_resp *resp);

/* The status of an answer (rc of s3_call) as the store's. */
sp_status s3_status(int rc, const oh_resp *r, const char *what);

/* The backend's stat. */
sp_status s3_stat(const char *sub, const char *bucket, const char *key,
                  st_meta *out);

/* The backend's put (sp_store_s3_put.c). */
sp_status s3_put(const char *sub, const char *bucket, const char *key,
                 const char *ctype, long long max, st_source src, void *ctx,
                 st_meta *out);

#endif
