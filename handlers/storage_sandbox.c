/* handlers/storage_sandbox.c: the storage family: copies between a bucket
 * and a sandbox that never pass through the client.
 *
 * POST /sandboxes/{id}/files/import {bucket, prefix | keys, to} (or
 * {urls, to}: storage_urls.c): each
 * object is streamed from the store into a spool file and written into
 * the sandbox by its helper (hc_file_write_with, hd_files.c: the path is
 * resolved inside the sandbox's roots, as every files route is), at
 * to/<key less prefix>. POST /sandboxes/{id}/files/export {from, bucket,
 * prefix}: every regular file under from (the helper's tree) is read back
 * through the spool and stored as prefix + its path below from. A file is
 * at most SPOOL_BODY_MAX bytes (what the helper's file operations carry);
 * a copy holds at most STG_COPY_MAX files. Sizes (and an export's keys) are
 * checked before the first byte moves; the answer comes whole or as
 * progress events (storage_progress.c). */
#include "storage.h"
#include "sp_helper.h"
#include "sp_json.h"
#include "sp_log.h"
#include "sp_rpc.h"
#include "sp_sbxcopy.h"
#include "sp_spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STG_COPY_MAX  SBXCOPY_MAX
#define STG_SBX_PATH  4096
#define STG_TREE_DEEP 16

/* The objects an import takes: keys (each checked and stat'ed) or all
 * under prefix. 0, or -1 after having answered. */
static int stg_import_set(http_req *r, const cJSON *body, const char *bucket,
                          const char *prefix, st_list *set)
{
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(body, "keys"), *k;
    sp_status st = SP_OK;

    if (keys == NULL) {
        st = st_get()->list(r->auth.sub, bucket, prefix, "", STG_COPY_MAX, set);
        if (st == SP_OK && set->truncated)
            st = SP_E_PAYLOAD_TOO_LARGE;
    } else if (!cJSON_IsArray(keys) || cJSON_GetArraySize(keys) < 1 ||
               cJSON_GetArraySize(keys) > STG_COPY_MAX) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "keys",
                        "keys must be an array of 1 to %d keys", STG_COPY_MAX);
        return -1;
    }
    cJSON_ArrayForEach(k, keys)
    {
        st_meta m;
        if (!cJSON_IsString(k) ||
            obj_key_rule(k->valuestring, strlen(k->valuestring))) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "keys",
                            "keys must be valid object keys");
            return -1;
        }
        st = st_get()->stat(r->auth.sub, bucket, k->valuestring, &m);
        if (st != SP_OK || st_list_add(set, k->valuestring, &m) != 0)
            break;
    }
    for (size_t i = 0; st == SP_OK && i < set->n; i++)
        if (set->v[i].meta.size > (long long)SPOOL_BODY_MAX)
            st = SP_E_PAYLOAD_TOO_LARGE;
    if (st == SP_OK)
        return 0;
    if (st == SP_E_PAYLOAD_TOO_LARGE)
        http_send_error(r, st, NULL,
                        "an import takes at most %d objects of "
                        "at most %zu bytes each",
                        STG_COPY_MAX, SPOOL_BODY_MAX);
    else
        stg_send_status(r, st, keys ? "object stat" : "object list");
    return -1;
}

/* 1 if an import copies key (prefix plen bytes): a "folder/" marker has
 * no bytes to copy. */
static int stg_import_takes(const char *key, size_t plen)
{
    size_t kl = strlen(key);

    return kl > plen && key[kl - 1] != '/';
}

static size_t stg_import_count(const st_list *set, size_t plen)
{
    size_t n = 0;

    for (size_t i = 0; i < set->n; i++)
        n += (size_t)stg_import_takes(set->v[i].key, plen);
    return n;
}

/* Copy each object of set to to/<key less plen bytes>; the answer. */
static void stg_import_copy(http_req *r, const char *helper, const char *bucket,
                            const st_list *set, size_t plen, const char *to)
{
    cJSON *out = cJSON_CreateObject(), *files;
    char path[STG_SBX_PATH + 1100];
    stg_progress p;

    files = cJSON_AddArrayToObject(out, "files");
    stg_progress_start(&p, r, stg_import_count(set, plen));
    for (size_t i = 0; i < set->n; i++) {
        const st_entry *e = &set->v[i];
        sp_status st;
        rpc_err err;
        cJSON *f;
        if (!stg_import_takes(e->key, plen))
            continue;
        snprintf(path, sizeof path, "%s/%s", to, e->key + plen);
        if (sbxcopy_import(helper, r->params[0], r->auth.sub, bucket, e->key,
                           &e->meta, path, &st, &err) != 0) {
            if (st != SP_OK)
                stg_progress_fail(&p, st, NULL, "object get failed");
            else
                stg_progress_fail_rpc(&p, &err, "to");
            goto out;
        }
        f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "key", e->key);
        cJSON_AddStringToObject(f, "path", path);
        cJSON_AddNumberToObject(f, "size", (double)e->meta.size);
        cJSON_AddItemToArray(files, f);
        stg_progress_step(&p, e->key, e->meta.size);
    }
    cJSON_AddNumberToObject(out, "bytes", (double)p.bytes);
    stg_progress_done(&p, out);
out:
    cJSON_Delete(out);
}

void stg_import(http_req *r)
{
    char helper[SP_ID_SIZE];
    cJSON *body = http_json_body(r, 0);
    const char *bucket = NULL, *bname, *prefix = NULL, *to;
    st_list set = {0};

    const cJSON *urls =
        body ? cJSON_GetObjectItemCaseSensitive(body, "urls") : NULL;

    if (body == NULL || json_str(r, body, "to", 1, STG_SBX_PATH, &to) != 0 ||
        rpc_sandbox_of(r, r->params[0], NULL, helper) != 0)
        goto out;
    if (urls != NULL) { /* storage_urls.c */
        stg_import_urls(r, helper, urls, to);
        goto out;
    }
    if (json_str(r, body, "bucket", 1, 255, &bname) != 0 ||
        json_str(r, body, "prefix", 0, OBJ_KEY_MAX, &prefix) != 0 ||
        (bucket = stg_bucket_named(r, bname, "bucket")) == NULL)
        goto out;
    if (prefix != NULL && cJSON_GetObjectItemCaseSensitive(body, "keys")) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "keys",
                        "give prefix or keys, not both");
        goto out;
    }
    if (prefix == NULL)
        prefix = "";
    if (obj_prefix_rule(prefix, strlen(prefix)) != NULL) {
        http_send_error_rule(r, SP_E_INVALID_ARGUMENT, "prefix",
                             obj_prefix_rule(prefix, strlen(prefix)),
                             "bad prefix");
        goto out;
    }
    if (stg_import_set(r, body, bucket, prefix, &set) == 0)
        stg_import_copy(r, helper, bucket, &set, strlen(prefix), to);
out:
    st_list_free(&set);
    cJSON_Delete(body);
}

/* The key of sandbox file path: prefix + its path below the root (rootlen
 * bytes) into key; 0, or -1 after having answered (before any copy). */
static int stg_export_key(http_req *r, const char *bucket, const char *prefix,
                          const char *path, size_t rootlen, char *key)
{
    int n = snprintf(key, OBJ_KEY_MAX + 1, "%s%s", prefix, path + rootlen);

    if (n > 0 && (size_t)n <= st_get()->key_max(r->auth.sub, bucket) &&
        obj_key_rule(key, (size_t)n) == NULL)
        return 0;
    http_send_error(r, SP_E_INVALID_ARGUMENT, "from",
                    "a file's path is no valid object key: %s", path);
    return -1;
}

/* One sandbox file (its tree entry e) stored as key; the object's JSON
 * into objs. 0, or -1 after having answered. */
static int stg_export_one(stg_progress *p, const char *helper,
                          const char *bucket, const char *key, const cJSON *e,
                          cJSON *objs)
{
    const char *path = cJSON_GetObjectItemCaseSensitive(e, "path")->valuestring;
    http_req *r = p->r;
    rpc_err err;
    st_meta m;
    sp_status st;

    if (sbxcopy_export(helper, r->params[0], r->auth.sub, bucket, key, path, &m,
                       &st, &err) != 0) {
        if (st != SP_OK)
            stg_progress_fail(p, st, NULL, "object put failed");
        else
            stg_progress_fail_rpc(p, &err, "from");
        return -1;
    }
    cJSON_AddItemToArray(objs, stg_object_json(NULL, key, &m));
    stg_progress_step(p, key, m.size);
    return 0;
}

/* Every file of the tree stored; the answer. */
static void stg_export_copy(http_req *r, const char *helper, const char *bucket,
                            const char *prefix, const cJSON **files, size_t n,
                            size_t rootlen)
{
    char(*keys)[OBJ_KEY_MAX + 1] = calloc(n ? n : 1, sizeof *keys);
    cJSON *out = cJSON_CreateObject(), *objs;
    stg_progress p;

    objs = cJSON_AddArrayToObject(out, "objects");
    if (keys == NULL) {
        http_send_error(r, SP_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (stg_export_key(
                r, bucket, prefix,
                cJSON_GetObjectItemCaseSensitive(files[i], "path")->valuestring,
                rootlen, keys[i]) != 0)
            goto out;
    stg_progress_start(&p, r, n);
    for (size_t i = 0; i < n; i++)
        if (stg_export_one(&p, helper, bucket, keys[i], files[i], objs) != 0)
            goto out;
    stg_progress_done(&p, out);
out:
    free(keys);
    cJSON_Delete(out);
}

void stg_export(http_req *r)
{
    char helper[SP_ID_SIZE];
    cJSON *body = http_json_body(r, 0);
    const char *bucket = NULL, *bname, *prefix = NULL, *from;
    const cJSON **files = NULL;
    const cJSON *root, *entries;
    rpc_reply tree = {0};
    rpc_err err;
    size_t n = 0, rootlen;

    if (body == NULL || json_str(r, body, "bucket", 1, 255, &bname) != 0 ||
        json_str(r, body, "prefix", 0, OBJ_KEY_MAX, &prefix) != 0 ||
        json_str(r, body, "from", 1, STG_SBX_PATH, &from) != 0 ||
        rpc_sandbox_of(r, r->params[0], NULL, helper) != 0 ||
        (bucket = stg_bucket_named(r, bname, "bucket")) == NULL)
        goto out;
    if (prefix == NULL)
        prefix = "";
    if (hc_file_tree(helper, r->params[0], from, STG_TREE_DEEP, &tree, &err) !=
        0) {
        http_send_rpc_error(r, &err, "from");
        goto out;
    }
    root = cJSON_GetObjectItemCaseSensitive(tree.json, "path");
    entries = cJSON_GetObjectItemCaseSensitive(tree.json, "entries");
    files = calloc(STG_COPY_MAX, sizeof *files);
    if (!cJSON_IsString(root) || files == NULL ||
        sbxcopy_tree_files(entries, files, &n) != 0) {
        http_send_error(r, SP_E_PAYLOAD_TOO_LARGE, "from",
                        "an export takes at most %d files of at most %zu "
                        "bytes each",
                        STG_COPY_MAX, SPOOL_BODY_MAX);
        goto out;
    }
    rootlen = strlen(root->valuestring) + (strcmp(root->valuestring, "/") != 0);
    stg_export_copy(r, helper, bucket, prefix, files, n, rootlen);
out:
    free(files);
    rpc_reply_free(&tree);
    cJSON_Delete(body);
}
