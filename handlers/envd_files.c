/* handlers/envd_files.c: envd's plain HTTP files routes over the native
 * file operations (hc_file_read, hc_file_write; the helper resolves every
 * path inside the sandbox as the files API does, hd_files.c):
 *   GET /files?path=&username=   the file's bytes (a directory: 400);
 *                                gzip'd when Accept-Encoding takes gzip
 *   POST /files?path=&username=  multipart/form-data, one part per file in
 *                                field "file"; a part's filename is its
 *                                path when no ?path= is given (E2B's
 *                                writeFiles); or (envd 0.5.7)
 *                                application/octet-stream, the body is the
 *                                one file at ?path=, Content-Encoding gzip
 *                                inflated within the files API's maximum
 *                                (more: 413, nothing written).
 *                                Answer [{name, type, path}].
 * A relative path is taken from the user's home (envd_path). */
#include "envd.h"
#include "sp_gzip.h"
#include "sp_multipart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ?username= overrides the user whose home relative paths start from. */
static int envd_query_user(http_req *r, envd_ctx *c)
{
    char u[ENVD_USER_MAX];
    int rc = http_query(r, "username", u, sizeof u);

    if (rc < 0 || (rc == 1 && u[0] != '\0' && !envd_user_ok(u, strlen(u)))) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "username",
                        "username must be an account name");
        return -1;
    }
    if (rc == 1 && u[0] != '\0')
        snprintf(c->user, sizeof c->user, "%s", u);
    return 0;
}

/* Authorize r and read its ?path= (required unless optional) into path
 * ("" when absent). 0, or -1 after the error. */
static int envd_files_begin(http_req *r, envd_ctx *c, char *path, size_t n,
                            int optional)
{
    char raw[ENVD_PATH_MAX];
    int rc;

    path[0] = '\0';
    /* No token but a signature: a signed URL (envd_sign.c). */
    if (http_header(r, "X-Access-Token") == NULL &&
        http_query(r, "signature", raw, sizeof raw) != 0)
        rc = envd_begin_signed(
            r, c, strcmp(r->method, "POST") == 0 ? "write" : "read");
    else
        rc = envd_begin(r, c, ENVD_PLAIN);
    if (rc != 0 || envd_query_user(r, c) != 0)
        return -1;
    rc = http_query(r, "path", raw, sizeof raw);
    if (rc < 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "path",
                        "path is too long or malformed");
        return -1;
    }
    if (rc == 0 || raw[0] == '\0')
        return optional ? 0 : envd_path(r, c, "", path, n);
    return envd_path(r, c, raw, path, n);
}

/* 200 with a file's n bytes at p: gzip'd when the client takes gzip and
 * that is smaller. */
static void envd_send_file(http_req *r, const char *p, size_t n)
{
    sp_buf z;

    buf_init(&z, n);
    http_add_header(r, "Vary: Accept-Encoding");
    if (n > 0 && gz_accepted(http_header(r, "Accept-Encoding")) &&
        gz_deflate(p, n, &z) == GZ_OK) {
        http_add_header(r, "Content-Encoding: gzip");
        http_send_raw(r, 200, "application/octet-stream", z.data, z.len);
    } else {
        http_send_raw(r, 200, "application/octet-stream", p, n);
    }
    buf_free(&z);
}

void envd_files_get(http_req *r)
{
    char path[ENVD_PATH_MAX];
    const cJSON *type;
    rpc_reply rr;
    rpc_err err;
    envd_ctx c;

    if (envd_files_begin(r, &c, path, sizeof path, 0) != 0)
        return;
    if (hc_file_read(c.helper, c.sbx, path, &rr, &err) != 0) {
        http_send_rpc_error(r, &err, "path");
        return;
    }
    type = cJSON_GetObjectItemCaseSensitive(rr.json, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "file") == 0)
        envd_send_file(r, rr.data ? rr.data : "", rr.len);
    else
        http_send_error(r, SP_E_INVALID_ARGUMENT, "path",
                        "path is a directory");
    rpc_reply_free(&rr);
}

/* The answer's entry of a file written at path, added to arr. */
static void envd_written(cJSON *arr, const char *path)
{
    cJSON *f = cJSON_CreateObject();
    const char *slash = strrchr(path, '/');

    cJSON_AddStringToObject(f, "name", slash ? slash + 1 : path);
    cJSON_AddStringToObject(f, "type", "file");
    cJSON_AddStringToObject(f, "path", path);
    cJSON_AddItemToArray(arr, f);
}

/* Write the n parts' files (each to path, or to its filename when path is
 * ""); the answer lists them. 0, or -1 after the error (files written
 * before a failure stay). */
static int envd_write_parts(http_req *r, const envd_ctx *c, const char *path,
                            const mp_part *pp, int n, cJSON *arr)
{
    char target[ENVD_PATH_MAX];
    rpc_reply rr;
    rpc_err err;

    for (int i = 0; i < n; i++) {
        if (strcmp(pp[i].name, "file") != 0)
            continue;
        if (path[0] != '\0')
            snprintf(target, sizeof target, "%s", path);
        else if (envd_path(r, c, pp[i].filename, target, sizeof target) != 0)
            return -1;
        if (hc_file_write(c->helper, c->sbx, target, pp[i].data, pp[i].len, &rr,
                          &err) != 0) {
            http_send_rpc_error(r, &err, "path");
            return -1;
        }
        rpc_reply_free(&rr);
        envd_written(arr, target);
    }
    return 0;
}

/* The body of an octet-stream upload, inflated into plain when it came
 * gzip'd (Content-Encoding); *data and *n the file's bytes. 0, or -1
 * after the error (413 past SBXH_FILE_MAX either way). */
static int envd_raw_body(http_req *r, sp_buf *plain, const char **data,
                         size_t *n)
{
    const char *enc = http_header(r, "Content-Encoding");
    int gz = enc != NULL && strcasecmp(enc, "gzip") == 0, rc;

    if (enc != NULL && enc[0] != '\0' && !gz &&
        strcasecmp(enc, "identity") != 0) {
        http_send_error(r, SP_E_UNSUPPORTED_MEDIA_TYPE, NULL,
                        "Content-Encoding must be gzip or identity");
        return -1;
    }
    if (http_read_body(r, SBXH_FILE_MAX) != SP_OK) {
        http_send_error(r, SP_E_PAYLOAD_TOO_LARGE, NULL,
                        "body is larger than %d bytes", SBXH_FILE_MAX);
        return -1;
    }
    *data = r->body.data ? r->body.data : "";
    *n = r->body.len;
    if (!gz)
        return 0;
    rc = gz_inflate(*data, *n, plain);
    if (rc == GZ_TOO_LARGE)
        http_send_error(r, SP_E_PAYLOAD_TOO_LARGE, NULL,
                        "the file inflates to more than %d bytes",
                        SBXH_FILE_MAX);
    else if (rc == GZ_BAD)
        http_send_error(r, SP_E_INVALID_ARGUMENT, NULL,
                        "the body is not valid gzip");
    else if (rc != GZ_OK)
        http_send_error(r, SP_E_INTERNAL, NULL, "out of memory");
    *data = plain->data ? plain->data : "";
    *n = plain->len;
    return rc == GZ_OK ? 0 : -1;
}

/* POST /files with application/octet-stream: the body is the file at
 * path (required). */
static void envd_files_post_raw(http_req *r, const envd_ctx *c,
                                const char *path)
{
    const char *data;
    size_t n;
    sp_buf plain;
    cJSON *arr;
    rpc_reply rr;
    rpc_err err;
    char none[1];

    buf_init(&plain, SBXH_FILE_MAX);
    if (path[0] == '\0') {
        envd_path(r, c, "", none, sizeof none); /* the 400 */
    } else if (envd_raw_body(r, &plain, &data, &n) == 0) {
        if (hc_file_write(c->helper, c->sbx, path, data, n, &rr, &err) != 0) {
            http_send_rpc_error(r, &err, "path");
        } else {
            rpc_reply_free(&rr);
            arr = cJSON_CreateArray();
            envd_written(arr, path);
            http_send_json(r, 200, arr);
            cJSON_Delete(arr);
        }
    }
    buf_free(&plain);
}

void envd_files_post(http_req *r)
{
    char path[ENVD_PATH_MAX], boundary[80];
    mp_part *pp = NULL;
    cJSON *arr = NULL;
    envd_ctx c;
    int n;

    if (envd_files_begin(r, &c, path, sizeof path, 1) != 0)
        return;
    if (envd_ctype_is(r, "application/octet-stream")) {
        envd_files_post_raw(r, &c, path);
        return;
    }
    if (http_read_multipart(r, SBXH_FILE_MAX, boundary, sizeof boundary) != 0)
        return;
    if ((pp = calloc(MP_MAX_PARTS, sizeof *pp)) == NULL) {
        http_send_error(r, SP_E_INTERNAL, NULL, "out of memory");
        return;
    }
    n = mp_parse(r->body.data ? r->body.data : "", r->body.len, boundary, pp,
                 MP_MAX_PARTS);
    arr = cJSON_CreateArray();
    if (n < 0)
        http_send_error(r, SP_E_INVALID_ARGUMENT, NULL,
                        "malformed multipart body");
    else if (envd_write_parts(r, &c, path, pp, n, arr) == 0 &&
             cJSON_GetArraySize(arr) == 0)
        http_send_error(r, SP_E_INVALID_ARGUMENT, "file",
                        "no part in field \"file\"");
    else if (r->status == 0)
        http_send_json(r, 200, arr);
    cJSON_Delete(arr);
    free(pp);
}
