/* sp_sbxcopy.c: object ↔ sandbox copies over the helper's file
 * operations (sp_sbxcopy.h): an object streams from the store into a
 * spool file that the helper writes into the sandbox (hc_file_write_with);
 * a sandbox file comes back through the spool (hc_file_read) and is
 * stored from memory. */
#include "sp_sbxcopy.h"

#include "sp_helper.h"
#include "sp_spool.h"

#include <string.h>

typedef struct sbxcopy_ctx {
    const char *sub, *bucket, *key;
    const st_meta *meta;
    sp_status st;
} sbxcopy_ctx;

typedef struct sbxcopy_mem {
    const char *data;
    size_t len, off;
} sbxcopy_mem;

static int sbxcopy_fd_sink(void *ctx, const char *buf, size_t len)
{
    return spool_write_all(*(int *)ctx, buf, len);
}

/* hc_file_write_with's fill: the object streamed into the spool file. */
static long long sbxcopy_fill(void *ctx, int fd)
{
    sbxcopy_ctx *c = ctx;

    c->st = c->meta->size == 0
                ? SP_OK
                : st_get()->get(c->sub, c->bucket, c->key, c->meta->etag, 0,
                                c->meta->size, sbxcopy_fd_sink, &fd);
    return c->st == SP_OK ? c->meta->size : -1;
}

int sbxcopy_import(const char *helper, const char *sbx, const char *sub,
                   const char *bucket, const char *key, const st_meta *m,
                   const char *path, sp_status *st, rpc_err *err)
{
    sbxcopy_ctx c = {sub, bucket, key, m, SP_OK};
    rpc_reply rep;
    int rc = hc_file_write_with(helper, sbx, path, sbxcopy_fill, &c, &rep, err);

    *st = c.st;
    if (rc == 0)
        rpc_reply_free(&rep);
    return rc;
}

static long sbxcopy_mem_read(void *ctx, char *buf, size_t len)
{
    sbxcopy_mem *m = ctx;
    size_t n = m->len - m->off < len ? m->len - m->off : len;

    memcpy(buf, m->data + m->off, n);
    m->off += n;
    return (long)n;
}

int sbxcopy_export(const char *helper, const char *sbx, const char *sub,
                   const char *bucket, const char *key, const char *path,
                   st_meta *m, sp_status *st, rpc_err *err)
{
    rpc_reply rep;
    sbxcopy_mem mem;

    *st = SP_OK;
    if (hc_file_read(helper, sbx, path, &rep, err) != 0)
        return -1;
    mem = (sbxcopy_mem){rep.data, rep.len, 0};
    *st = st_get()->put(sub, bucket, key, "application/octet-stream",
                        (long long)SPOOL_BODY_MAX, sbxcopy_mem_read, &mem, m);
    rpc_reply_free(&rep);
    return *st == SP_OK ? 0 : -1;
}

int sbxcopy_tree_files(const cJSON *arr, const cJSON **files, size_t *n)
{
    const cJSON *e;

    cJSON_ArrayForEach(e, arr)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(e, "size");
        const cJSON *kids = cJSON_GetObjectItemCaseSensitive(e, "children");
        if (kids != NULL && sbxcopy_tree_files(kids, files, n) != 0)
            return -1;
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "file") != 0 ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "path")))
            continue; /* (every use reads a file entry's path) */
        if (*n == SBXCOPY_MAX || !cJSON_IsNumber(size) ||
            size->valuedouble > (double)SPOOL_BODY_MAX)
            return -1;
        files[(*n)++] = e;
    }
    return 0;
}
