/* sse_request.c: from a complete FastCGI request to a stream: the route
 * table, the checks that come before any Redis call (route, method,
 * credential present, ids, Last-Event-ID, clientId), the OPEN job that
 * the reader answers (authentication and ownership), the JSON error
 * envelope of docs/DESIGN.md §3 for everything refused before streaming
 * starts, and the response headers of a stream.
 *
 * Order of answers: 404 no such route, 405, 503 over the client limit,
 * 401 no or bad credential, 400 bad Last-Event-ID or clientId, 404 unknown
 * or someone else's id. Bad ids are 404 without a Redis call. */
#include "sse_loop.h"
#include "sp_auth.h"
#include "sp_id.h"
#include "sp_jwt.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_pct.h"
#include "sp_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SSE_PATH_MAX        2048
#define SSE_QUERY_MAX       8192
#define SSE_CLIENT_REPLAY_S 300

/* The routes. Adding an event stream is one line (its producer writes
 * its stream and the owner into a hash family of sp_keys.h); tasks, once
 * a KEY_TASK family (task:<id>) exists, would be:
 *   {"/tasks/", "/events", "tsk_", KEY_TASK, "taskId", "result", 0,
 *    &frame_sse, KEY_EVENTS, "task", 0, NULL, NULL, NULL, NULL, NULL, 0},
 * The eighth column is the answer's framing (common/sp_frame.h): a route
 * that answers NDJSON or Connect envelopes names another one there; the
 * others are sse_route's (sse.h). */
static const sse_route sse_routes[] = {
    {"/executions/", "/events", "exe_", KEY_EXEC, "executionId", "result", 0,
     &frame_sse, KEY_EVENTS, "execution", 0, NULL, NULL, NULL, NULL, NULL, 0},
    {"/terminal/", "/events", "trm_", KEY_TERMINAL, "terminalId", "exit", 0,
     &frame_sse, KEY_EVENTS, "terminal", 1, NULL, NULL, NULL, NULL, NULL, 0},
    {"/events", NULL, "exe_", KEY_EXEC, "executionId", "result", 1, &frame_sse,
     KEY_EVENTS, "execution", 0, NULL, NULL, NULL, NULL, NULL, 0},
    /* /sandboxes/{sbx}/watches/{wch}/events: a file watch (hd_watch.c). */
    {"/sandboxes/", "/events", "wch_", KEY_WATCH, "watchId", "end", 0,
     &frame_sse, KEY_WATCH_EVENTS, "watch", 1, "/watches/", "sandbox", NULL,
     NULL, NULL, 0},
    /* /templates/{name}/builds/{bld}/events: a template build's log
     * (hd_tpl_build.c). */
    {"/templates/", "/events", "bld_", KEY_TBUILD, "buildId", "result", 0,
     &frame_sse, KEY_EVENTS, "build", 0, "/builds/", "name", NULL, NULL, NULL, 0},
    /* /workflows/runs/{wfr}/events: a workflow run's steps and their
     * output (worker/wk_run.c), "result" last. */
    {"/workflows/runs/", "/events", "wfr_", KEY_WFRUN, "runId", "result", 0,
     &frame_sse, KEY_WFRUN_EVENTS, "workflow run", 0, NULL, NULL, NULL, NULL,
     NULL, 0},
    /* E2B's envd streams (handlers/envd_process.c hands them over with
     * X-Accel-Redirect; internal locations of families/envd.conf): a
     * process's events as Connect envelopes (sse_envd.c), authorized by
     * the sandbox's envd token; ?arg= is the pid its start message names. */
    {"/_sp/envd/", "/events", "exe_", KEY_EXEC, "executionId", "result", 0,
     &frame_connect, KEY_EVENTS, "process", 0, "/process/", "sandbox",
     &sse_map_process, AUTH_SBX_ENVD, NULL, 0},
    {"/_sp/envd/", "/events", "exe_", KEY_EXEC, "executionId", "result", 0,
     &frame_connect, KEY_EVENTS, "process", 0, "/pty/", "sandbox", &sse_map_pty,
     AUTH_SBX_ENVD, NULL, 0},
    /* WatchDir (handlers/envd_watch.c): a watch that lives while it is read
     * (touch), its events as WatchDirResponse messages. */
    {"/_sp/envd/", "/events", "wch_", KEY_WATCH, "watchId", "end", 0,
     &frame_connect, KEY_WATCH_EVENTS, "watch", 1, "/watch/", "sandbox",
     &sse_map_watch, AUTH_SBX_ENVD, NULL, 0},
    /* /_sp/interp/{exe}/events: a context run as E2B's code interpreter
     * streams it (POST /execute of handlers/interp.c hands it over),
     * authorized by the sandbox's tokens (sse_interp.c). Internal in
     * nginx. */
    {"/_sp/interp/", "/events", "exe_", KEY_EXEC, "executionId", "result", 0,
     &frame_lines, KEY_EVENTS, "execution", 0, NULL, NULL, NULL, NULL,
     sse_interp_format, 1},
};

static uint32_t sse_max_streams;

void sse_request_init(uint32_t max_streams)
{
    sse_max_streams = max_streams;
}

int sse_query(const char *q, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    while (q != NULL && *q != '\0') {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        if (len > nl && strncmp(q, name, nl) == 0 && q[nl] == '=')
            return pct_decode(q + nl + 1, len - nl - 1, 1, out, outlen) >= 0
                       ? 1
                       : -1;
        q = end ? end + 1 : NULL;
    }
    return 0;
}

/* Send the error envelope and end the response. */
static void sse_reply_error(sse_client *cl, sp_status st, const char *field,
                            const char *message)
{
    char buf[1024];
    int http = sp_status_http(st), n;
    const char *extra = "";

    if (st == SP_E_UNAVAILABLE || st == SP_E_RATE_LIMITED)
        extra = "Retry-After: 1\r\n";
    else if (st == SP_E_METHOD_NOT_ALLOWED)
        extra = "Allow: GET\r\n";
    n = snprintf(buf, sizeof buf,
                 "Status: %d %s\r\nContent-Type: application/json; "
                 "charset=utf-8\r\nCache-Control: no-store\r\n%s\r\n"
                 "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"%s%s%s}}\n",
                 http, sp_http_reason(http), extra, sp_status_code(st), message,
                 field ? ",\"field\":\"" : "", field ? field : "",
                 field ? "\"" : "");
    if (n < 0 || (size_t)n >= sizeof buf ||
        sse_client_push_bytes(cl, buf, (size_t)n, 0) != 0) {
        sse_client_close(cl);
        return;
    }
    sse_client_finish(cl);
}

/* One id segment of path at p, up to the next '/', into id (idlen
 * bytes); anything that cannot be an id is kept as "" (answered 404).
 * Returns the '/' after it, or NULL if there is none or it is empty. */
static const char *sse_segment(const char *p, char *id, size_t idlen)
{
    const char *slash = strchr(p, '/');
    size_t il = slash != NULL ? (size_t)(slash - p) : 0;

    if (il == 0)
        return NULL;
    if (il < idlen) {
        memcpy(id, p, il);
        id[il] = '\0';
    } else {
        id[0] = '\0';
    }
    return slash;
}

/* Match path against the routes; id receives the path's id segment,
 * parent its parent id segment (routes with mid; else ""). */
static const sse_route *sse_route_match(const char *path, char *id,
                                        char *parent, size_t idlen)
{
    for (size_t i = 0; i < sizeof sse_routes / sizeof sse_routes[0]; i++) {
        const sse_route *rt = &sse_routes[i];
        size_t pl = strlen(rt->prefix);
        const char *p = path + pl;
        parent[0] = id[0] = '\0';
        if (rt->suffix == NULL) {
            if (strcmp(path, rt->prefix) == 0)
                return rt;
            continue;
        }
        if (strncmp(path, rt->prefix, pl) != 0)
            continue;
        if (rt->mid != NULL) {
            if ((p = sse_segment(p, parent, idlen)) == NULL ||
                strncmp(p, rt->mid, strlen(rt->mid)) != 0)
                continue;
            p += strlen(rt->mid);
        }
        if ((p = sse_segment(p, id, idlen)) != NULL &&
            strcmp(p, rt->suffix) == 0)
            return rt;
    }
    return NULL;
}

/* Pick the credential as auth_check does: X-API-Key, else a Bearer
 * token, else (no Authorization header at all) ?access_token=. Returns 0
 * (job filled), or -1 (no usable credential). */
static int sse_credential(sse_client *cl, const char *query, sse_job *job)
{
    char v[TOK_MAX_LEN + 16];
    long n = sse_fcgi_param(&cl->fcgi, "HTTP_X_API_KEY", v, sizeof v);
    const char *tok = NULL;

    if (cl->route->sbx_token != NULL) {
        /* A sandbox's data plane: its own token, nothing else. */
        n = sse_fcgi_param(&cl->fcgi, "HTTP_X_ACCESS_TOKEN", v, sizeof v);
        if (n <= 0 || n > TOK_MAX_LEN)
            return -1;
        job->token = strdup(v);
        explicit_bzero(v, sizeof v);
        return job->token != NULL ? 0 : -1;
    }
    if (n >= 0) {
        if ((size_t)n >= sizeof job->api_key || n == 0)
            return -1;
        memcpy(job->api_key, v, (size_t)n + 1);
        return 0;
    }
    if (n == -2)
        return -1;
    n = sse_fcgi_param(&cl->fcgi, "HTTP_AUTHORIZATION", v, sizeof v);
    if (n == -2)
        return -1;
    if (n >= 0) {
        if (strncasecmp(v, "Bearer ", 7) != 0)
            return -1;
        tok = v + 7;
        while (*tok == ' ')
            tok++;
    } else if (sse_query(query, "access_token", v, TOK_MAX_LEN + 1) == 1) {
        tok = v; /* EventSource cannot send headers */
    }
    if (tok == NULL || *tok == '\0' || strlen(tok) > TOK_MAX_LEN)
        return -1;
    job->token = strdup(tok);
    explicit_bzero(v, sizeof v);
    return job->token != NULL ? 0 : -1;
}

void sse_request(sse_client *cl)
{
    char path[SSE_PATH_MAX], method[16], query[SSE_QUERY_MAX], lid[64];
    sse_job *job = NULL;
    long n;

    if (sse_fcgi_param(&cl->fcgi, "SP_PATH", path, sizeof path) < 0 &&
        sse_fcgi_param(&cl->fcgi, "DOCUMENT_URI", path, sizeof path) < 0)
        path[0] = '\0';
    if (sse_fcgi_param(&cl->fcgi, "REQUEST_METHOD", method, sizeof method) < 0)
        method[0] = '\0';
    if (sse_fcgi_param(&cl->fcgi, "QUERY_STRING", query, sizeof query) < 0)
        query[0] = '\0';
    cl->route = sse_route_match(path, cl->id, cl->parent, sizeof cl->id);
    if (cl->route == NULL) {
        sse_reply_error(cl, SP_E_NOT_FOUND, NULL, "no such route");
        goto out;
    }
    if (strcmp(method, "GET") != 0) {
        sse_reply_error(cl, SP_E_METHOD_NOT_ALLOWED, NULL,
                        "method not allowed");
        goto out;
    }
    if (sse_clients_streaming() >= sse_max_streams) {
        sse_reply_error(cl, SP_E_UNAVAILABLE, NULL, "too many streams");
        goto out;
    }
    job = calloc(1, sizeof *job);
    if (job == NULL) {
        sse_reply_error(cl, SP_E_INTERNAL, NULL, "internal error");
        goto out;
    }
    if ((cl->route->sbx_tokens ? sse_interp_credential(&cl->fcgi, job)
                              : sse_credential(cl, query, job)) != 0) {
        sse_reply_error(cl, SP_E_UNAUTHENTICATED, NULL,
                        "missing or invalid credentials");
        goto out;
    }
    /* Checked after authentication (in sse_request_opened): remember. */
    n = sse_fcgi_param(&cl->fcgi, "HTTP_LAST_EVENT_ID", lid, sizeof lid);
    if (n == -1) {
        int q = sse_query(query, "lastEventId", lid, sizeof lid);
        n = q == 1 ? (long)strlen(lid) : q == 0 ? -1 : -2;
    }
    if (n == -2 || (n > 0 && sse_sid_parse(lid, (size_t)n, &cl->resume) != 0))
        cl->bad_param = "Last-Event-ID";
    else
        cl->has_resume = n > 0;
    if (cl->route->client_stream &&
        (sse_query(query, "clientId", cl->id, sizeof cl->id) != 1 ||
         !id_valid(cl->id)))
        cl->bad_param = "clientId";
    if (cl->route->map != NULL &&
        sse_query(query, "arg", cl->arg, sizeof cl->arg) < 0)
        cl->bad_param = "arg";
    job->type = SSE_JOB_OPEN;
    job->handle = sse_client_handle(cl);
    job->route = cl->route;
    snprintf(job->id, sizeof job->id, "%s", cl->id);
    snprintf(job->parent, sizeof job->parent, "%s", cl->parent);
    cl->state = SSE_CL_AUTH;
    sse_reader_submit(job);
    job = NULL;
out:
    sse_job_free(job);
    explicit_bzero(query, sizeof query);
    /* The parameters (credentials among them) are not kept. */
    sse_fcgi_free(&cl->fcgi);
}

/* Queue the response headers of a stream and its framing's preamble.
 * Returns 0, or -1 with nothing queued (the caller answers 500). */
static int sse_stream_head(sse_client *cl)
{
    const sp_frame *fr = cl->route->frame;
    sse_ev *pre = sse_ev_part(fr, SSE_PART_PREAMBLE, NULL, NULL), *first;
    char head[256];
    int n, rc = -1;

    if (pre == NULL)
        return -1;
    /* An adapter's first message (envd's start {pid}) goes with them. */
    first = sse_ev_head(fr, cl->route->map, cl->arg);
    if (cl->route->map != NULL && cl->route->map->head != NULL &&
        first == NULL) {
        sse_ev_unref(pre);
        return -1;
    }
    n = snprintf(head, sizeof head,
                 "Status: 200 OK\r\n%s%s%sCache-Control: no-cache\r\n"
                 "X-Accel-Buffering: no\r\n\r\n",
                 fr->content_type ? "Content-Type: " : "",
                 fr->content_type ? fr->content_type : "",
                 fr->content_type ? "\r\n" : "");
    /* The queue is empty here: past the size check only memory can fail
     * (the client is then dropped with its half-sent answer). */
    if (n > 0 && (size_t)n < sizeof head &&
        (size_t)n + pre->len <= SSE_OUT_MAX / 2 &&
        sse_client_push_bytes(cl, head, (size_t)n, 0) == 0 &&
        (pre->len == 0 || sse_client_push(cl, pre) == 0) &&
        (first == NULL || sse_client_push(cl, first) == 0))
        rc = 0;
    sse_ev_unref(pre);
    sse_ev_unref(first);
    return rc;
}

void sse_request_opened(const sse_res *res)
{
    sse_client *cl = sse_client_get(res->handle);
    char key[RDS_KEY_MAX];
    sp_status st = (sp_status)res->status;

    if (cl == NULL || cl->state != SSE_CL_AUTH)
        return;
    if (cl->ws != NULL) {
        sse_ws_opened(cl, res);
        return;
    }
    if (st != SP_OK && st != SP_E_NOT_FOUND) {
        sse_reply_error(cl, st, NULL,
                        st == SP_E_UNAUTHENTICATED
                            ? "missing or invalid credentials"
                            : "service unavailable");
        return;
    }
    if (cl->bad_param != NULL) {
        sse_reply_error(cl, SP_E_INVALID_ARGUMENT, cl->bad_param,
                        cl->route->client_stream &&
                                strcmp(cl->bad_param, "clientId") == 0
                            ? "clientId must match [A-Za-z0-9_-]{1,64}"
                            : "Last-Event-ID must be <ms>-<seq>");
        return;
    }
    if (st == SP_E_NOT_FOUND) {
        char msg[64];
        snprintf(msg, sizeof msg, "no such %s", cl->route->noun);
        sse_reply_error(cl, st, NULL, msg);
        return;
    }
    if (cl->route->client_stream) {
        if (key_of2(key, sizeof key, KEY_CLIENT, res->sub, cl->id) != 0)
            goto fail;
    } else if (key_of(key, sizeof key, cl->route->events, cl->id) != 0) {
        goto fail;
    }
    if (sse_stream_head(cl) != 0)
        goto fail;
    sse_client_streaming(cl);
    if (cl->route->client_stream) {
        if (sse_sub_add(cl, key, cl->route, cl->id, 1, NULL, 0,
                        (long long)time(NULL) * 1000 -
                            SSE_CLIENT_REPLAY_S * 1000LL) == NULL)
            sse_client_end(cl, "internal", "internal error");
    } else if (sse_sub_add(cl, key, cl->route, cl->id, 0,
                           cl->has_resume ? &cl->resume : NULL, cl->has_resume,
                           0) == NULL) {
        sse_client_end(cl, "internal", "internal error");
    }
    return;
fail:
    sse_reply_error(cl, SP_E_INTERNAL, NULL, "internal error");
}
