/* sp_store.h: object storage, the one interface over its backends. A
 * backend is a struct of functions (curl's Curl_handler): "local" keeps
 * objects as files under a directory (sp_store_local.c), "s3" in any
 * S3-compatible service (sp_store_s3.c). SP_STORAGE_URL chooses:
 * file:///path (empty: $SP_STATE_DIR/storage) or s3://bucket[/prefix].
 *
 * Names are the caller's to check first (sp_objname.h): a backend takes a
 * subject (an id), a bucket that passed obj_bucket_rule and a key that
 * passed obj_key_rule. Which buckets a subject owns is the caller's too
 * (Redis, handlers/storage.c); a backend only keeps their objects.
 *
 * Bodies stream: a PUT pulls from a source, a GET pushes to a sink; no
 * backend holds a whole object in memory (s3 holds one part). A PUT is
 * all or nothing: the object is there whole, or as it was before. Both
 * the storage handlers and the sandbox helper may call this layer; it is
 * thread-safe once st_init has run. */
#ifndef SP_STORE_H
#define SP_STORE_H

#include <stddef.h>

#include "sp_status.h"

#define ST_CTYPE_MAX 256
#define ST_ETAG_MAX  80
#define ST_LIST_MAX  1000 /* entries one list call returns at most */

typedef struct st_meta {
    long long size;
    long long mtime; /* Unix seconds */
    char ctype[ST_CTYPE_MAX];
    char etag[ST_ETAG_MAX]; /* without quotes: XXH3-128 hex (local), or S3's own */
} st_meta;

/* A PUT's body: up to len bytes into buf; returns the count, 0 at the
 * end, -1 on a read error. */
typedef long (*st_source)(void *ctx, char *buf, size_t len);

/* A GET's body: called with each chunk; 0 to go on, -1 to stop (the
 * client went away). */
typedef int (*st_sink)(void *ctx, const char *buf, size_t len);

typedef struct st_entry {
    char *key; /* owned by the list */
    st_meta meta;
} st_entry;

typedef struct st_list {
    st_entry *v;
    size_t n, cap;
    int truncated; /* more keys follow the last one */
} st_list;

typedef struct st_backend {
    const char *name; /* "local", "s3" */
    /* The longest key bucket may hold (s3: S3's 1024 bytes less the
     * prefix the bucket's keys get). */
    size_t (*key_max)(const char *sub, const char *bucket);
    /* The bucket's place made (local: its directory); idempotent. */
    sp_status (*bucket_make)(const char *sub, const char *bucket);
    /* Every object of the bucket and its place removed. */
    sp_status (*bucket_drop)(const char *sub, const char *bucket);
    /* Store the body from src as key (max bytes at most: beyond,
     * SP_E_PAYLOAD_TOO_LARGE and nothing stored); *out gets its meta. */
    sp_status (*put)(const char *sub, const char *bucket, const char *key,
                     const char *ctype, long long max, st_source src, void *ctx,
                     st_meta *out);
    /* The meta of key (SP_E_NOT_FOUND if none). */
    sp_status (*stat)(const char *sub, const char *bucket, const char *key,
                      st_meta *out);
    /* len bytes of key from off (the caller fitted them to its size) to
     * sink; etag is the one stat gave (a changed object is SP_E_CONFLICT
     * where the backend can tell). */
    sp_status (*get)(const char *sub, const char *bucket, const char *key,
                     const char *etag, long long off, long long len,
                     st_sink sink, void *ctx);
    /* Remove key; removing what is not there is SP_OK (S3's way). */
    sp_status (*del)(const char *sub, const char *bucket, const char *key);
    /* Keys starting with prefix and sorting after after ("" for the
     * first), in byte order, at most limit (<= ST_LIST_MAX), into out. */
    sp_status (*list)(const char *sub, const char *bucket, const char *prefix,
                      const char *after, size_t limit, st_list *out);
} st_backend;

/* Choose and set up the backend from SP_STORAGE_URL and the SP_S3_*
 * options (once, at start). 0, or -1 with the option and the reason in
 * err. */
int st_init(char *err, size_t errlen);

/* The backend st_init chose; NULL before. */
const st_backend *st_get(void);

/* The directory name of subject sub: 32 hex characters of its SHA-256, so
 * that no subject name reaches a path or an S3 key as it is. */
#define ST_SUBDIR_SIZE 33
void st_subject_dir(const char *sub, char out[ST_SUBDIR_SIZE]);

/* Add an entry (key copied) to l; 0 or -1 (out of memory). */
int st_list_add(st_list *l, const char *key, const st_meta *m);

/* Free the entries of l (l itself is the caller's); NULL-safe. */
void st_list_free(st_list *l);

/* The backends (sp_store_local.c, sp_store_s3.c). */
extern const st_backend st_local_backend;
extern const st_backend st_s3_backend;

/* Set up each backend from its part of the configuration. */
int st_local_init(const char *dir, char *err, size_t errlen);
int st_s3_init(const char *url, char *err, size_t errlen);

#endif
