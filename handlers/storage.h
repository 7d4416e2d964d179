/* handlers/storage.h: what the files of the storage family share
 * (handlers/storage.c: the route table and main; storage_buckets.c:
 * buckets; storage_objects.c: one object; storage_list.c: listings and
 * the tree; storage_presign.c: presigned URLs; storage_sandbox.c: copies
 * between buckets and sandboxes; storage_urls.c: URLs into sandboxes;
 * storage_progress.c: a copy's answer, whole or as progress events). */
#ifndef STORAGE_H
#define STORAGE_H

#include "sp_http.h"
#include "sp_objname.h"
#include "sp_store.h"

/* The bucket of route parameter i, checked: a valid name (else 400 with
 * its rule) that the caller owns (else 404). Returns the name, or NULL
 * after having answered. */
const char *stg_bucket(http_req *r, int i);

/* The same for a bucket named in a request field (400 names field). */
const char *stg_bucket_named(http_req *r, const char *name, const char *field);

/* The answer for a backend failure st (503 with Retry-After when the
 * store is unreachable, nothing internal in the message). */
void stg_send_status(http_req *r, sp_status st, const char *what);

/* The JSON of one object (key, size, etag, content_type, last_modified),
 * the one place that shape is made. */
cJSON *stg_object_json(const char *bucket, const char *key, const st_meta *m);

/* The credential of an object route: a presigned query (storage_presign.c)
 * fills r->auth and returns 0; none returns 1; a bad one answers 401 and
 * returns -1. */
int stg_presigned(http_req *r);
void stg_presign(http_req *r);

void stg_bucket_create(http_req *r);
void stg_bucket_list(http_req *r);
void stg_bucket_delete(http_req *r);
void stg_object_put(http_req *r);
void stg_object_get(http_req *r);
void stg_object_head(http_req *r);
void stg_object_delete(http_req *r);
void stg_list(http_req *r);
/* The answer of a copy, whole or as ndjson progress events
 * (storage_progress.c). */
typedef struct stg_progress {
    http_req *r;
    int stream; /* the head of an ndjson stream is sent */
    size_t total, done;
    long long bytes;
} stg_progress;
void stg_progress_start(stg_progress *p, http_req *r, size_t total);
void stg_progress_step(stg_progress *p, const char *name, long long size);
/* A failure after the start: the error envelope, or the stream's error
 * end. */
void stg_progress_fail(stg_progress *p, sp_status st, const char *field,
                       const char *msg);
/* The same for a helper call that failed (rpc_err of sp_rpc.h). */
struct rpc_err;
void stg_progress_fail_rpc(stg_progress *p, const struct rpc_err *err,
                           const char *field);
/* The end: answer (the caller's) as the JSON body or the "result" event. */
void stg_progress_done(stg_progress *p, const cJSON *answer);

void stg_import(http_req *r);
/* An import of urls (storage_urls.c) into to of the sandbox of route
 * parameter 0, whose helper is helper; answers. */
void stg_import_urls(http_req *r, const char *helper, const cJSON *urls,
                     const char *to);
void stg_export(http_req *r);
void stg_tree(http_req *r);

#endif
