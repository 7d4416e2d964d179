/* handlers/sandbox_files.c: the files routes of the sandboxes family:
 * download, upload (raw PUT and multipart POST), list, tree, mkdir, delete,
 * and the chat-session upload into /uploaded_files. Paths are as the
 * sandbox sees them; the helper resolves them safely (hd_files.c). */
#include "sandboxes.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_multipart.h"
#include "sp_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SBXF_PATH_MAX 4096

static const char *const sbxf_upload_exts[] = {".csv", ".xlsx", ".json", ".txt",
                                               ".parquet"};

/* The ?path= parameter (required). Returns 0 or -1 (400 sent). */
static int sbxf_path(http_req *r, char *path, size_t len)
{
    int rc = http_query(r, "path", path, len);
    if (rc != 1 || path[0] == '\0') {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "path",
                        rc < 0 ? "path is too long or malformed"
                               : "path is required");
        return -1;
    }
    return 0;
}

/* Run file op on sandbox params[0] at path; num is a tree's depth or a
 * removal's recursive flag, data a write's bytes. *rr is filled (not for
 * file_delete); else the error response is sent. Returns 0 or -1. */
static int sbxf_call(http_req *r, hc_op op, const char *path, long long num,
                     const void *data, size_t len, rpc_reply *rr)
{
    char helper[SP_ID_SIZE];
    const char *sbx = r->params[0];
    rpc_err err;
    int rc;

    if (sbxh_lookup(r, sbx, helper) != 0)
        return -1;
    switch (op) {
    case HC_FILE_READ:
        rc = hc_file_read(helper, sbx, path, rr, &err);
        break;
    case HC_FILE_TREE:
        rc = hc_file_tree(helper, sbx, path, num, rr, &err);
        break;
    case HC_FILE_WRITE:
        rc = hc_file_write(helper, sbx, path, data, len, rr, &err);
        break;
    case HC_FILE_MKDIR:
        rc = hc_file_mkdir(helper, sbx, path, rr, &err);
        break;
    default:
        rc = hc_file_delete(helper, sbx, path, (int)num, &err);
        break;
    }
    if (rc != 0) {
        http_send_rpc_error(r, &err, NULL);
        return -1;
    }
    return 0;
}

static void sbxf_send_json_reply(http_req *r, int status, rpc_reply *rr)
{
    cJSON_DeleteItemFromObject(rr->json, "ok");
    http_send_json(r, status, rr->json);
    rpc_reply_free(rr);
}

void sbxh_files_get(http_req *r)
{
    char path[SBXF_PATH_MAX];
    rpc_reply rr;
    const cJSON *type;

    if (sbxf_path(r, path, sizeof path) != 0)
        return;
    if (sbxf_call(r, HC_FILE_READ, path, 0, NULL, 0, &rr) != 0)
        return;
    type = cJSON_GetObjectItemCaseSensitive(rr.json, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "file") == 0) {
        http_add_header(r, "Content-Disposition: attachment");
        http_send_raw(r, 200, "application/octet-stream",
                      rr.data ? rr.data : "", rr.len);
        rpc_reply_free(&rr);
        return;
    }
    sbxf_send_json_reply(r, 200, &rr);
}

static int sbxf_write(http_req *r, const char *path, const void *data,
                      size_t len, rpc_reply *rr)
{
    return sbxf_call(r, HC_FILE_WRITE, path, 0, data, len, rr);
}

void sbxh_files_put(http_req *r)
{
    char path[SBXF_PATH_MAX];
    rpc_reply rr;

    if (sbxf_path(r, path, sizeof path) != 0)
        return;
    if (http_read_body(r, SBXH_FILE_MAX) != SP_OK) {
        http_send_error(r, SP_E_PAYLOAD_TOO_LARGE, NULL,
                        "file is larger than %d bytes", SBXH_FILE_MAX);
        return;
    }
    if (sbxf_write(r, path, r->body.data, r->body.len, &rr) == 0)
        sbxf_send_json_reply(r, 201, &rr);
}

void sbxh_files_delete(http_req *r)
{
    char path[SBXF_PATH_MAX], rec[8] = "";

    if (sbxf_path(r, path, sizeof path) != 0)
        return;
    http_query(r, "recursive", rec, sizeof rec);
    if (sbxf_call(r, HC_FILE_DELETE, path,
                  strcmp(rec, "true") == 0 || strcmp(rec, "1") == 0, NULL, 0,
                  NULL) != 0)
        return;
    http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
}

void sbxh_tree(http_req *r)
{
    char path[SBXF_PATH_MAX] = "/workspace", depth[8] = "3";
    rpc_reply rr;
    char *end;
    long d;

    if (http_query(r, "path", path, sizeof path) < 0 ||
        http_query(r, "depth", depth, sizeof depth) < 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, NULL, "bad query");
        return;
    }
    d = strtol(depth, &end, 10);
    if (*end != '\0' || d < 1 || d > 16) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "depth",
                        "depth must be between 1 and 16");
        return;
    }
    if (sbxf_call(r, HC_FILE_TREE, path, d, NULL, 0, &rr) == 0)
        sbxf_send_json_reply(r, 200, &rr);
}

void sbxh_dirs(http_req *r)
{
    cJSON *body = http_json_body(r, 0);
    const char *path;
    rpc_reply rr;

    if (body == NULL)
        return;
    if (json_str(r, body, "path", 1, SBXF_PATH_MAX - 1, &path) == 0 &&
        sbxf_call(r, HC_FILE_MKDIR, path, 0, NULL, 0, &rr) == 0)
        sbxf_send_json_reply(r, 201, &rr);
    cJSON_Delete(body);
}

/* A file name from a client: one path component, no control characters. */
static int sbxf_name_ok(const char *n)
{
    if (n[0] == '\0' || strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
        strchr(n, '/') != NULL || strchr(n, '\\') != NULL)
        return 0;
    for (; *n; n++) {
        if ((unsigned char)*n < 0x20 || *n == 0x7f)
            return 0;
    }
    return 1;
}

static int sbxf_ext_ok(const char *n)
{
    const char *dot = strrchr(n, '.');
    for (size_t i = 0; dot != NULL &&
                       i < sizeof sbxf_upload_exts / sizeof sbxf_upload_exts[0];
         i++) {
        if (strcasecmp(dot, sbxf_upload_exts[i]) == 0)
            return 1;
    }
    return 0;
}

/* Write every file part of a multipart body into dir; answer with the list
 * of written paths. only_exts restricts extensions (session uploads). */
static void sbxf_multipart(http_req *r, const char *dir, int only_exts)
{
    static mp_part parts[MP_MAX_PARTS];
    char boundary[80], path[SBXF_PATH_MAX + MP_NAME_MAX];
    cJSON *root = NULL, *arr;
    mp_part *pp;
    int n, files = 0;

    if (http_read_multipart(r, SBXH_FILE_MAX, boundary, sizeof boundary) != 0)
        return;
    pp = calloc(MP_MAX_PARTS, sizeof *pp);
    (void)parts;
    if (pp == NULL) {
        http_send_error(r, SP_E_INTERNAL, NULL, "out of memory");
        return;
    }
    n = mp_parse(r->body.data ? r->body.data : "", r->body.len, boundary, pp,
                 MP_MAX_PARTS);
    if (n < 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, NULL,
                        "malformed multipart body");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (pp[i].filename[0] == '\0')
            continue;
        if (!sbxf_name_ok(pp[i].filename)) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "filename",
                            "bad file name");
            goto out;
        }
        if (only_exts && !sbxf_ext_ok(pp[i].filename)) {
            http_send_error(r, SP_E_UNSUPPORTED_MEDIA_TYPE, "filename",
                            "allowed extensions: .csv .xlsx .json .txt "
                            ".parquet");
            goto out;
        }
        files++;
    }
    if (files == 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "file",
                        "no file part in the body");
        goto out;
    }
    root = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(root, "files");
    for (int i = 0; i < n; i++) {
        rpc_reply rr;
        cJSON *f;
        if (pp[i].filename[0] == '\0')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, pp[i].filename);
        if (sbxf_write(r, path, pp[i].data, pp[i].len, &rr) != 0)
            goto out;
        rpc_reply_free(&rr);
        f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "name", pp[i].filename);
        cJSON_AddStringToObject(f, "path", path);
        cJSON_AddNumberToObject(f, "size", (double)pp[i].len);
        cJSON_AddItemToArray(arr, f);
    }
    http_send_json(r, 201, root);
out:
    cJSON_Delete(root);
    free(pp);
}

void sbxh_files_post(http_req *r)
{
    char dir[SBXF_PATH_MAX] = "/workspace", helper[SP_ID_SIZE];

    if (http_query(r, "path", dir, sizeof dir) < 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "path", "bad path");
        return;
    }
    if (sbxh_lookup(r, r->params[0], helper) != 0)
        return;
    sbxf_multipart(r, dir, 0);
}

void sbxh_session_upload(http_req *r)
{
    char sid[80], id[SP_ID_SIZE];
    int rc = http_query(r, "session_id", sid, sizeof sid);

    if (rc != 1) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "session_id",
                        "session_id is required");
        return;
    }
    if (sbxh_session_sandbox(r, sid, id) != 0)
        return;
    /* The files routes work on params[0]. */
    r->params[0] = id;
    sbxf_multipart(r, "/uploaded_files", 1);
}
