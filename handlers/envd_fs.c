/* handlers/envd_fs.c: envd's filesystem.Filesystem unary RPCs over the
 * native file operations (sp_helper.h; the helper confines every path as
 * the files API does, hd_files.c, a Move's destination too):
 *   Stat {path}                 {entry}        hc_file_stat
 *   ListDir {path, depth}       {entries}      hc_file_tree, flattened
 *   MakeDir {path}              {entry}        hc_file_mkdir (parents);
 *                                              an existing path is
 *                                              already_exists
 *   Move {source, destination}  {entry}        hc_file_move
 *   Remove {path}               {}             hc_file_delete, recursive;
 *                                              a missing path is no error
 * An entry is E2B's EntryInfo, rendered once (envd_entry) from the
 * helper's: name, type FILE_TYPE_*, path, size, mode, permissions
 * ("drwxr-xr-x" as Go prints a FileMode), owner, group, modifiedTime (RFC
 * 3339), symlinkTarget. Relative paths start at the user's home
 * (envd_path). */
#include "envd.h"
#include "sp_json.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define ENVD_DEPTH_MAX 16

/* A uid as a name: the sandbox's files are root's or its user's. */
static const char *envd_uid_name(double uid)
{
    return uid == 0 ? "root" : "user";
}

/* "drwxr-xr-x" of type and the permission bits of mode into out[11]. */
static void envd_perm_string(const char *type, unsigned mode, char *out)
{
    static const char rwx[] = "rwxrwxrwx";

    out[0] = strcmp(type, "directory") == 0 ? 'd'
             : strcmp(type, "symlink") == 0 ? 'L'
                                            : '-';
    for (int i = 0; i < 9; i++)
        out[1 + i] = (mode & (1u << (8 - i))) ? rwx[i] : '-';
    out[10] = '\0';
}

/* E2B's EntryInfo of a helper entry e, or NULL for a type E2B has no name
 * for (a FIFO, a socket: its SDK skips those). Caller frees. */
static cJSON *envd_entry(const cJSON *e)
{
    const char *type =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type"));
    const char *target =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "target"));
    unsigned mode = (unsigned)cJSON_GetNumberValue(
        cJSON_GetObjectItemCaseSensitive(e, "mode"));
    time_t mtime = (time_t)cJSON_GetNumberValue(
        cJSON_GetObjectItemCaseSensitive(e, "modified"));
    char perm[11], when[32];
    const char *ft;
    struct tm tm;
    cJSON *o;

    if (type == NULL)
        return NULL;
    ft = strcmp(type, "file") == 0        ? "FILE_TYPE_FILE"
         : strcmp(type, "directory") == 0 ? "FILE_TYPE_DIRECTORY"
         : strcmp(type, "symlink") == 0   ? "FILE_TYPE_SYMLINK"
                                          : NULL;
    if (ft == NULL)
        return NULL;
    envd_perm_string(type, mode, perm);
    gmtime_r(&mtime, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    o = cJSON_CreateObject();
    cJSON_AddItemToObject(
        o, "name",
        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e, "name"), 0));
    cJSON_AddStringToObject(o, "type", ft);
    cJSON_AddItemToObject(
        o, "path",
        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e, "path"), 0));
    cJSON_AddNumberToObject(
        o, "size",
        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "size")));
    cJSON_AddNumberToObject(o, "mode", mode);
    cJSON_AddStringToObject(o, "permissions", perm);
    cJSON_AddStringToObject(o, "owner",
                            envd_uid_name(cJSON_GetNumberValue(
                                cJSON_GetObjectItemCaseSensitive(e, "uid"))));
    cJSON_AddStringToObject(o, "group",
                            envd_uid_name(cJSON_GetNumberValue(
                                cJSON_GetObjectItemCaseSensitive(e, "gid"))));
    cJSON_AddStringToObject(o, "modifiedTime", when);
    if (target != NULL)
        cJSON_AddStringToObject(o, "symlinkTarget", target);
    return o;
}

/* Authorize r, read its body and its path field (the sandbox's path into
 * path). 0, or -1 after the error (*body then NULL). */
static int envd_fs_begin(http_req *r, envd_ctx *c, cJSON **body,
                         const char *field, char *path, size_t n)
{
    const char *raw;

    *body = NULL;
    if (envd_begin(r, c, ENVD_RPC) != 0 || (*body = envd_unary(r)) == NULL)
        return -1;
    if (json_str(r, *body, field, 0, ENVD_PATH_MAX - 64, &raw) != 0 ||
        envd_path(r, c, raw, path, n) != 0) {
        cJSON_Delete(*body);
        *body = NULL;
        return -1;
    }
    return 0;
}

/* Answer a helper call that gave an entry: rc its result, *rr its reply
 * (freed here), err its error (about field). {"entry": EntryInfo}, or the
 * error. */
static void envd_send_entry(http_req *r, int rc, rpc_reply *rr,
                            const rpc_err *err, const char *field)
{
    cJSON *root, *entry;

    if (rc != 0) {
        http_send_rpc_error(r, err, field);
        return;
    }
    root = cJSON_CreateObject();
    if ((entry = envd_entry(rr->json)) != NULL)
        cJSON_AddItemToObject(root, "entry", entry);
    envd_send(r, root);
    cJSON_Delete(root);
    rpc_reply_free(rr);
}

/* POST /filesystem.Filesystem/Stat */
void envd_fs_stat(http_req *r)
{
    char path[ENVD_PATH_MAX];
    cJSON *body;
    rpc_reply rr;
    rpc_err err;
    envd_ctx c;

    if (envd_fs_begin(r, &c, &body, "path", path, sizeof path) != 0)
        return;
    envd_send_entry(r, hc_file_stat(c.helper, c.sbx, path, &rr, &err), &rr,
                    &err, "path");
    cJSON_Delete(body);
}

/* The helper's tree entries (children nested) into out, flat, in order. */
static void envd_flatten(const cJSON *entries, cJSON *out)
{
    const cJSON *e;

    cJSON_ArrayForEach(e, entries)
    {
        cJSON *o = envd_entry(e);
        if (o != NULL)
            cJSON_AddItemToArray(out, o);
        envd_flatten(cJSON_GetObjectItemCaseSensitive(e, "children"), out);
    }
}

/* POST /filesystem.Filesystem/ListDir: depth levels (default 1). */
void envd_fs_list(http_req *r)
{
    char path[ENVD_PATH_MAX];
    cJSON *body, *root;
    long long depth;
    rpc_reply rr;
    rpc_err err;
    envd_ctx c;

    if (envd_fs_begin(r, &c, &body, "path", path, sizeof path) != 0)
        return;
    if (json_int(r, body, "depth", 0, 0, ENVD_DEPTH_MAX, 1, &depth) != 0)
        goto out;
    if (hc_file_tree(c.helper, c.sbx, path, depth < 1 ? 1 : depth, &rr, &err) !=
        0) {
        http_send_rpc_error(r, &err, "path");
        goto out;
    }
    root = cJSON_CreateObject();
    envd_flatten(cJSON_GetObjectItemCaseSensitive(rr.json, "entries"),
                 cJSON_AddArrayToObject(root, "entries"));
    envd_send(r, root);
    cJSON_Delete(root);
    rpc_reply_free(&rr);
out:
    cJSON_Delete(body);
}

/* POST /filesystem.Filesystem/MakeDir: parents too; a path that exists
 * (of any type) is already_exists (the SDK's makeDir then says false). */
void envd_fs_mkdir(http_req *r)
{
    static const char exists[] = "{\"code\":\"already_exists\",\"message\":"
                                 "\"the path exists\"}";
    char path[ENVD_PATH_MAX];
    cJSON *body;
    rpc_reply rr;
    rpc_err err;
    envd_ctx c;

    if (envd_fs_begin(r, &c, &body, "path", path, sizeof path) != 0)
        return;
    if (hc_file_stat(c.helper, c.sbx, path, &rr, &err) == 0) {
        rpc_reply_free(&rr);
        http_send_raw(r, 409, "application/json", exists, sizeof exists - 1);
    } else if (err.fail == RPC_ANSWER && err.st == SP_E_NOT_FOUND &&
               hc_file_mkdir(c.helper, c.sbx, path, &rr, &err) == 0) {
        rpc_reply_free(&rr);
        envd_send_entry(r, hc_file_stat(c.helper, c.sbx, path, &rr, &err), &rr,
                        &err, "path");
    } else {
        http_send_rpc_error(r, &err, "path");
    }
    cJSON_Delete(body);
}

/* POST /filesystem.Filesystem/Move */
void envd_fs_move(http_req *r)
{
    char from[ENVD_PATH_MAX], to[ENVD_PATH_MAX];
    const char *raw;
    cJSON *body;
    rpc_reply rr;
    rpc_err err;
    envd_ctx c;

    if (envd_fs_begin(r, &c, &body, "source", from, sizeof from) != 0)
        return;
    if (json_str(r, body, "destination", 0, ENVD_PATH_MAX - 64, &raw) != 0 ||
        envd_path(r, &c, raw, to, sizeof to) != 0)
        goto out;
    envd_send_entry(r, hc_file_move(c.helper, c.sbx, from, to, &rr, &err), &rr,
                    &err, "source");
out:
    cJSON_Delete(body);
}

/* POST /filesystem.Filesystem/Remove: recursive; a missing path is not
 * an error (envd's RemoveAll). */
void envd_fs_remove(http_req *r)
{
    char path[ENVD_PATH_MAX];
    cJSON *body;
    rpc_err err;
    envd_ctx c;

    if (envd_fs_begin(r, &c, &body, "path", path, sizeof path) != 0)
        return;
    if (hc_file_delete(c.helper, c.sbx, path, 1, &err) == 0 ||
        (err.fail == RPC_ANSWER && err.st == SP_E_NOT_FOUND))
        envd_send(r, NULL);
    else
        http_send_rpc_error(r, &err, "path");
    cJSON_Delete(body);
}
