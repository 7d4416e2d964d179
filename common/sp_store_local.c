/* sp_store_local.c: the "local" storage backend. Objects are files under
 * one directory: <dir>/<subject dir>/<bucket>/<object file>. A bucket name
 * passed S3's rules, so it is a plain path component; a key never becomes
 * a path: its file is "o" + the key with every byte outside
 * [A-Za-z0-9._~-] as %XX (so no "/" and no "." or ".." name can form), or
 * "h" + the SHA-256 of the key when that name would be too long. Every
 * open is relative to the bucket's directory fd with O_NOFOLLOW.
 *
 * A file is a header of ST_LOCAL_HEAD bytes (magic, key, content type,
 * ETag, NUL-padded) and the body. A PUT writes a temporary ".t…" file in
 * the same directory and renames it over the name: a reader sees the old
 * object or the new one, never part of one; a failed PUT removes its
 * temporary file, and one a killed process left is swept at the next
 * start (st_local_init) once it is an hour old. */
#include "sp_store.h"
#include "sp_store_local.h"
#include "sp_auth.h"
#include "sp_id.h"
#include "sp_log.h"
#include "sp_objname.h"
#include "sp_pct.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define ST_LOCAL_MAGIC "SPOBJ1\n"
#define ST_LOCAL_CHUNK (1024 * 1024)
#define ST_LOCAL_FLUSH (8LL * 1024 * 1024) /* writeback started every 8 MiB */

char st_local_dir[ST_LOCAL_DIR_MAX];

int st_local_init(const char *dir, char *err, size_t errlen)
{
    if (strlen(dir) >= sizeof st_local_dir - 200) {
        snprintf(err, errlen, "SP_STORAGE_URL: path too long");
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "SP_STORAGE_URL: mkdir(\"%s\") failed: %s", dir,
                 strerror(errno));
        return -1;
    }
    snprintf(st_local_dir, sizeof st_local_dir, "%s", dir);
    st_local_sweep();
    return 0;
}

/* The file name of key into out (ST_LOCAL_NAME). */
void st_local_name(const char *key, char *out)
{
    sp_buf b;

    /* At most NAME_MAX bytes: "o" and the encoded key, else "h" and the
     * key's SHA-256 (the key itself is in the file's header). */
    buf_init(&b, ST_LOCAL_NAME - 1);
    if (buf_append(&b, "o", 1) == 0 && pct_encode(&b, key, NULL) == 0) {
        memcpy(out, b.data, b.len + 1);
    } else {
        char h[AUTH_SHA256_HEX_SIZE];
        auth_sha256_hex(key, h);
        snprintf(out, ST_LOCAL_NAME, "h%s", h);
    }
    buf_free(&b);
}

/* The bucket's directory, opened (O_DIRECTORY, no link followed); with
 * make, made first. -1 with errno. */
int st_local_bucket_fd(const char *sub, const char *bucket, int make)
{
    char path[sizeof st_local_dir + 128], sd[ST_SUBDIR_SIZE];

    st_subject_dir(sub, sd);
    if (make) {
        snprintf(path, sizeof path, "%s/%s", st_local_dir, sd);
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
    }
    snprintf(path, sizeof path, "%s/%s/%s", st_local_dir, sd, bucket);
    if (make && mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

sp_status st_local_errno(int e)
{
    if (e == ENOENT)
        return SP_E_NOT_FOUND;
    if (e == ENOSPC || e == EDQUOT)
        return SP_E_INSUFFICIENT_STORAGE;
    return SP_E_INTERNAL;
}

static sp_status st_local_bucket_make(const char *sub, const char *bucket)
{
    int fd = st_local_bucket_fd(sub, bucket, 1);

    if (fd < 0) {
        log_error("storage: mkdir of bucket %s failed: %s", bucket,
                  strerror(errno));
        return st_local_errno(errno);
    }
    close(fd);
    return SP_OK;
}

static sp_status st_local_bucket_drop(const char *sub, const char *bucket)
{
    char path[sizeof st_local_dir + 128], sd[ST_SUBDIR_SIZE];
    int fd = st_local_bucket_fd(sub, bucket, 0);
    DIR *d;
    struct dirent *e;

    if (fd < 0)
        return errno == ENOENT ? SP_OK : st_local_errno(errno);
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return SP_E_INTERNAL;
    }
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] == 'o' || e->d_name[0] == 'h' ||
            (e->d_name[0] == '.' && e->d_name[1] == 't'))
            unlinkat(fd, e->d_name, 0);
    closedir(d);
    st_subject_dir(sub, sd);
    snprintf(path, sizeof path, "%s/%s/%s", st_local_dir, sd, bucket);
    return rmdir(path) == 0 || errno == ENOENT ? SP_OK : st_local_errno(errno);
}

/* The header of an object file into buf (ST_LOCAL_HEAD bytes, NUL-padded). */
static int st_local_head_fill(char *buf, const char *key, const st_meta *m)
{
    int n;

    memset(buf, 0, ST_LOCAL_HEAD);
    n = snprintf(buf, ST_LOCAL_HEAD, "%sctype=%s\netag=%s\nkey=%s\n",
                 ST_LOCAL_MAGIC, m->ctype, m->etag, key);
    return n > 0 && n < ST_LOCAL_HEAD ? 0 : -1;
}

/* The value of "name=" in a header into out; 0 or -1. */
static int st_local_head_field(const char *head, const char *name, char *out,
                               size_t outlen)
{
    char pat[16];
    const char *p, *end;

    snprintf(pat, sizeof pat, "\n%s=", name);
    p = strstr(head, pat);
    if (p == NULL)
        return -1;
    p += strlen(pat);
    end = strchr(p, '\n');
    if (end == NULL || (size_t)(end - p) >= outlen)
        return -1;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return 0;
}

/* The meta (and key, when key is not NULL) of the open object file fd. */
sp_status st_local_read_head(int fd, st_meta *m, char *key, size_t keylen)
{
    char head[ST_LOCAL_HEAD + 1];
    struct stat sb;
    ssize_t n = pread(fd, head, ST_LOCAL_HEAD, 0);

    if (n != ST_LOCAL_HEAD || fstat(fd, &sb) != 0 ||
        memcmp(head, ST_LOCAL_MAGIC, strlen(ST_LOCAL_MAGIC)) != 0)
        return SP_E_INTERNAL;
    head[ST_LOCAL_HEAD] = '\0';
    memset(m, 0, sizeof *m);
    if (st_local_head_field(head, "ctype", m->ctype, sizeof m->ctype) != 0 ||
        st_local_head_field(head, "etag", m->etag, sizeof m->etag) != 0 ||
        (key != NULL && st_local_head_field(head, "key", key, keylen) != 0))
        return SP_E_INTERNAL;
    m->size = (long long)sb.st_size - ST_LOCAL_HEAD;
    m->mtime = (long long)sb.st_mtime;
    return SP_OK;
}

/* Open key's file in its bucket for reading; -1 with errno. *dfd gets the
 * bucket's directory fd (the caller closes both). */
static int st_local_open(const char *sub, const char *bucket, const char *key,
                         int *dfd)
{
    char name[ST_LOCAL_NAME];
    int fd;

    *dfd = st_local_bucket_fd(sub, bucket, 0);
    if (*dfd < 0)
        return -1;
    st_local_name(key, name);
    fd = openat(*dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    return fd;
}

static sp_status st_local_stat(const char *sub, const char *bucket,
                               const char *key, st_meta *out)
{
    int dfd, fd = st_local_open(sub, bucket, key, &dfd);
    sp_status st;

    if (fd < 0) {
        st = st_local_errno(errno);
        if (dfd >= 0)
            close(dfd);
        return st;
    }
    st = st_local_read_head(fd, out, NULL, 0);
    close(fd);
    close(dfd);
    return st;
}

/* An XXH3-128 digest as 32 lower-case hex digits (canonical, big-endian
 * byte order) into etag (ST_ETAG_MAX). */
static void st_local_etag(XXH128_hash_t d, char *etag)
{
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, d);
    for (size_t i = 0; i < sizeof c.digest; i++)
        snprintf(etag + 2 * i, 3, "%02x", c.digest[i]);
}

/* Copy src into fd after the header, counting bytes and hashing them; at
 * most max bytes. The ETag is XXH3-128 of the bytes, not MD5: MD5 runs at
 * about a third of the disk's page-cache speed here and would bound every
 * PUT (README "Benchmarks"); an ETag is an opaque validator (S3's own is
 * no MD5 for multipart objects either). Written pages are handed to the
 * disk every ST_LOCAL_FLUSH bytes (sync_file_range, no wait), so the
 * fdatasync before the rename finds little left to write. */
static sp_status st_local_copy_in(int fd, long long max, st_source src,
                                  void *ctx, st_meta *m)
{
    char *buf = malloc(ST_LOCAL_CHUNK);
    XXH3_state_t *h = XXH3_createState();
    sp_status st = SP_E_INTERNAL;
    long long flushed = 0;
    long n;

    if (buf == NULL || h == NULL || XXH3_128bits_reset(h) != XXH_OK)
        goto out;
    m->size = 0;
    while ((n = src(ctx, buf, ST_LOCAL_CHUNK)) > 0) {
        if (m->size + n > max) {
            st = SP_E_PAYLOAD_TOO_LARGE;
            goto out;
        }
        XXH3_128bits_update(h, buf, (size_t)n);
        for (long w = 0; w < n;) {
            ssize_t k = write(fd, buf + w, (size_t)(n - w));
            if (k < 0) {
                st = st_local_errno(errno);
                goto out;
            }
            w += k;
        }
        m->size += n;
        if (m->size - flushed >= ST_LOCAL_FLUSH) {
            /* Best effort: a failure here shows again at fdatasync. */
            (void)sync_file_range(fd, ST_LOCAL_HEAD + flushed,
                                  m->size - flushed, SYNC_FILE_RANGE_WRITE);
            flushed = m->size;
        }
    }
    if (n < 0) {
        st = SP_E_INVALID_ARGUMENT; /* the body ended early */
        goto out;
    }
    st_local_etag(XXH3_128bits_digest(h), m->etag);
    st = SP_OK;
out:
    XXH3_freeState(h);
    free(buf);
    return st;
}

static sp_status st_local_put(const char *sub, const char *bucket,
                              const char *key, const char *ctype, long long max,
                              st_source src, void *ctx, st_meta *out)
{
    char tmp[ID_RANDOM_CHARS + 8], name[ST_LOCAL_NAME], head[ST_LOCAL_HEAD];
    int dfd = st_local_bucket_fd(sub, bucket, 0), fd = -1;
    sp_status st = SP_E_INTERNAL;

    memset(out, 0, sizeof *out);
    snprintf(out->ctype, sizeof out->ctype, "%s", ctype);
    if (dfd < 0 || id_generate(".t", tmp, sizeof tmp) != 0)
        goto out;
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                0600);
    if (fd < 0 || lseek(fd, ST_LOCAL_HEAD, SEEK_SET) != ST_LOCAL_HEAD) {
        st = st_local_errno(errno);
        goto out;
    }
    st = st_local_copy_in(fd, max, src, ctx, out);
    if (st != SP_OK)
        goto out;
    st = SP_E_INTERNAL;
    if (st_local_head_fill(head, key, out) != 0)
        goto out;
    /* The head, then the whole file on the disk before its name: after a
     * crash an object is its old or its new self, never a torn one. */
    errno = ENOSPC; /* a short write without an error: the disk is full */
    if (pwrite(fd, head, ST_LOCAL_HEAD, 0) != ST_LOCAL_HEAD ||
        fdatasync(fd) != 0) {
        st = st_local_errno(errno);
        goto out;
    }
    st_local_name(key, name);
    if (renameat(dfd, tmp, dfd, name) != 0) {
        st = st_local_errno(errno);
        goto out;
    }
    tmp[0] = '\0'; /* renamed: nothing to remove */
    out->mtime = (long long)time(NULL);
    st = SP_OK;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0) {
        if (fd >= 0 && tmp[0] != '\0')
            unlinkat(dfd, tmp, 0);
        close(dfd);
    }
    return st;
}

static sp_status st_local_get(const char *sub, const char *bucket,
                              const char *key, const char *etag, long long off,
                              long long len, st_sink sink, void *ctx)
{
    int dfd, fd = st_local_open(sub, bucket, key, &dfd);
    char *buf = NULL;
    sp_status st;
    st_meta m;

    if (fd < 0) {
        st = st_local_errno(errno);
        goto out;
    }
    st = st_local_read_head(fd, &m, NULL, 0);
    if (st == SP_OK && etag != NULL && strcmp(etag, m.etag) != 0)
        st = SP_E_CONFLICT;
    if (st == SP_OK && (buf = malloc(ST_LOCAL_CHUNK)) == NULL)
        st = SP_E_INTERNAL;
    while (st == SP_OK && len > 0) {
        size_t want = len < ST_LOCAL_CHUNK ? (size_t)len : ST_LOCAL_CHUNK;
        ssize_t n = pread(fd, buf, want, ST_LOCAL_HEAD + off);
        if (n <= 0)
            st = SP_E_INTERNAL;
        else if (sink(ctx, buf, (size_t)n) != 0)
            break; /* the client is gone: nothing more to say */
        off += n > 0 ? n : 0;
        len -= n > 0 ? n : 0;
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    return st;
}

static sp_status st_local_del(const char *sub, const char *bucket,
                              const char *key)
{
    char name[ST_LOCAL_NAME];
    int dfd = st_local_bucket_fd(sub, bucket, 0);
    sp_status st = SP_OK;

    if (dfd < 0)
        return st_local_errno(errno);
    st_local_name(key, name);
    if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT)
        st = st_local_errno(errno);
    close(dfd);
    return st;
}

static size_t st_local_key_max(const char *sub, const char *bucket)
{
    (void)sub;
    (void)bucket;
    return OBJ_KEY_MAX;
}

const st_backend st_local_backend = {
    .name = "local",
    .key_max = st_local_key_max,
    .bucket_make = st_local_bucket_make,
    .bucket_drop = st_local_bucket_drop,
    .put = st_local_put,
    .stat = st_local_stat,
    .get = st_local_get,
    .del = st_local_del,
    .list = st_local_list, /* sp_store_local_list.c */
};
