/* handlers/envd_watch.c: envd's filesystem.Filesystem/WatchDir (server
 * streaming) over the native file watches (op watch_start, helper/
 * hd_watch.c): {path, recursive?} makes an ephemeral watch of the
 * directory (it lives while its stream is read, as GET /sandboxes/{id}/
 * watch's does) and hands the request to the relay (X-Accel-Redirect to
 * /_sp/envd/<sbx>/watch/<wch>/events), whose envd watch route frames the
 * watch's events as WatchDirResponse messages (sse/sse_envd.c): start
 * first, then one filesystem event per change with its name relative to
 * the directory, keepalives, and the end frame when the watch ends (the
 * directory or the sandbox gone). The helper resolves and confines the
 * path as every file operation does; includeEntry (envd 0.6.3) and
 * allowNetworkMounts (0.6.4) are above the advertised version and
 * ignored. */
#include "envd.h"
#include "sp_json.h"

#include <stdio.h>

#define ENVD_WATCH_URI_MAX 256

/* POST /filesystem.Filesystem/WatchDir (server streaming). */
void envd_fs_watch(http_req *r)
{
    char path[ENVD_PATH_MAX], wid[SP_ID_SIZE], uri[ENVD_WATCH_URI_MAX];
    hc_watch_req q = {.path = path, .ephemeral = 1};
    const char *p = NULL;
    cJSON *body = NULL;
    rpc_reply rr;
    rpc_err err;
    envd_ctx c;

    if (envd_begin(r, &c, ENVD_STREAM) != 0 ||
        (body = envd_stream_request(r)) == NULL ||
        json_str(r, body, "path", 0, ENVD_PATH_MAX - 1, &p) != 0 ||
        json_bool(r, body, "recursive", 0, &q.recursive) != 0 ||
        envd_path(r, &c, p, path, sizeof path) != 0 ||
        rpc_new_id(r, "wch_", wid) != 0)
        goto out;
    q.sandbox = c.sbx;
    q.id = wid;
    q.owner = r->auth.sub;
    if (hc_watch_start(c.helper, &q, &rr, &err) != 0) {
        http_send_rpc_error(r, &err, "path");
        goto out;
    }
    rpc_reply_free(&rr);
    snprintf(uri, sizeof uri, "/_sp/envd/%s/watch/%s/events", c.sbx, wid);
    envd_relay(r, uri);
out:
    cJSON_Delete(body);
}
