/* handlers/sandbox_watches.c: the file watch routes of the sandboxes
 * family (docs/DESIGN.md §4.2). A watch is made by the sandbox's helper
 * (op watch_start, helper/hd_watch.c), which writes its record watch:<id>
 * and its events to watch:<id>:events; the relay streams them
 * (GET …/watches/{wid}/events, sse/); here: making, listing and ending
 * watches, the events as a JSON page (the same path with ?since=, which
 * nginx sends here), and GET …/watch, which makes a watch that lives while
 * it is read and hands the request to the relay (X-Accel-Redirect). */
#include "sandboxes.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SBXW_PATH_MAX 4096
#define SBXW_LIST_MAX 64 /* watches listed (more than a sandbox may have) */

/* The one rendering of a watch: from its record h (HGETALL). */
static cJSON *sbxw_render(const char *id, const redisReply *h)
{
    cJSON *o = cJSON_CreateObject();
    const char *v;
    char t[JSON_TIME_SIZE];

    cJSON_AddStringToObject(o, "watch_id", id);
    v = sbxh_field(h, "sandbox");
    cJSON_AddStringToObject(o, "sandbox_id", v ? v : "");
    v = sbxh_field(h, "path");
    cJSON_AddStringToObject(o, "path", v ? v : "");
    v = sbxh_field(h, "recursive");
    cJSON_AddBoolToObject(o, "recursive", v != NULL && strcmp(v, "1") == 0);
    v = sbxh_field(h, "status");
    cJSON_AddStringToObject(o, "status", v ? v : "unknown");
    if ((v = sbxh_field(h, "reason")) != NULL)
        cJSON_AddStringToObject(o, "reason", v);
    json_time((v = sbxh_field(h, "created")) ? atoll(v) / 1000 : 0, t,
              sizeof t);
    cJSON_AddStringToObject(o, "created_at", t);
    return o;
}

/* The record of watch wid of sandbox sbx of the caller (HGETALL, caller
 * frees), or NULL after 404 (unknown, another sandbox's or subject's) or
 * 503. */
static redisReply *sbxw_record(http_req *r, const char *sbx, const char *wid)
{
    return rpc_owned_record(r, KEY_WATCH, wid, "wch_", "watch", "sandbox", sbx);
}

/* Start a watch of q (q->id made here) on sandbox q->sandbox of the
 * caller; out gets the helper's answer. 0, or -1 after the error. */
static int sbxw_start(http_req *r, hc_watch_req *q, char *wid, rpc_reply *out)
{
    char helper[SP_ID_SIZE];
    rpc_err err;

    if (sbxh_lookup(r, q->sandbox, helper) != 0 ||
        rpc_new_id(r, "wch_", wid) != 0)
        return -1;
    q->id = wid;
    q->owner = r->auth.sub;
    if (hc_watch_start(helper, q, out, &err) != 0) {
        http_send_rpc_error(
            r, &err,
            err.st == SP_E_NOT_FOUND || err.st == SP_E_INVALID_ARGUMENT ? "path"
                                                                        : NULL);
        return -1;
    }
    return 0;
}

/* POST /sandboxes/{id}/watches {path, recursive?}: 201 with the watch. */
void sbxh_watch_create(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *o;
    hc_watch_req q = {.sandbox = r->params[0]};
    char wid[SP_ID_SIZE], url[256];
    rpc_reply rr;
    redisReply *h;

    if (body == NULL)
        return;
    if (json_str(r, body, "path", 1, SBXW_PATH_MAX - 1, &q.path) != 0 ||
        json_bool(r, body, "recursive", 0, &q.recursive) != 0 ||
        sbxw_start(r, &q, wid, &rr) != 0)
        goto out;
    rpc_reply_free(&rr);
    /* The helper wrote the record before it answered. */
    if ((h = sbxw_record(r, q.sandbox, wid)) == NULL)
        goto out;
    o = sbxw_render(wid, h);
    snprintf(url, sizeof url, "/sandboxes/%s/watches/%s/events", q.sandbox,
             wid);
    cJSON_AddStringToObject(o, "events_url", url);
    http_send_json(r, 201, o);
    cJSON_Delete(o);
    freeReplyObject(h);
out:
    cJSON_Delete(body);
}

/* One running watch as the list shows it, or NULL. */
static cJSON *sbxw_item(const char *wid, const void *arg)
{
    char wk[RDS_KEY_MAX];
    redisReply *h;
    cJSON *o = NULL;

    (void)arg;
    if (!id_valid(wid) || key_of(wk, sizeof wk, KEY_WATCH, wid) != 0)
        return NULL;
    h = rds_cmd("HGETALL %s", wk);
    if (h != NULL && h->type == REDIS_REPLY_ARRAY && h->elements > 0)
        o = sbxw_render(wid, h);
    freeReplyObject(h);
    return o;
}

/* GET /sandboxes/{id}/watches: the sandbox's watches that run. */
void sbxh_watch_list(http_req *r)
{
    char helper[SP_ID_SIZE], k[RDS_KEY_MAX];

    if (sbxh_lookup(r, r->params[0], helper) != 0)
        return;
    key_of(k, sizeof k, KEY_SBX_WATCHES, r->params[0]);
    sbxh_send_set(r, k, "watches", SBXW_LIST_MAX, sbxw_item, NULL);
}

/* DELETE /sandboxes/{id}/watches/{wid}: 204; the watch's stream ends
 * with end {reason: "stopped"}. A watch that has ended already: 204. */
void sbxh_watch_delete(http_req *r)
{
    redisReply *h = sbxw_record(r, r->params[0], r->params[1]);
    const char *status, *helper;
    rpc_err err;

    if (h == NULL)
        return;
    status = sbxh_field(h, "status");
    helper = sbxh_field(h, "helper");
    if (status != NULL && strcmp(status, "active") == 0 && helper != NULL &&
        hc_watch_stop(helper, r->params[0], r->params[1], &err) != 0 &&
        !(err.fail == RPC_ANSWER && err.st == SP_E_NOT_FOUND)) {
        http_send_rpc_error(r, &err, NULL);
    } else {
        http_send_raw(r, 204, "application/json", "", 0);
    }
    freeReplyObject(h);
}

/* GET /sandboxes/{id}/watches/{wid}/events?since=<event id> (nginx sends
 * it here only with since; "0" or "-": from the start): a page of events
 * as JSON, for clients that poll (E2B's GetWatcherEvents). */
void sbxh_watch_events(http_req *r)
{
    redisReply *h = sbxw_record(r, r->params[0], r->params[1]);
    const char *status;

    if (h == NULL)
        return;
    status = sbxh_field(h, "status");
    sbxh_send_events(r, KEY_WATCH_EVENTS, r->params[1], "since",
                     status ? status : "unknown");
    freeReplyObject(h);
}

/* The raw access_token=… parameter of the query (still URL-encoded), for
 * the relay, into out; "" when absent. -1 if it does not fit or holds a
 * byte that cannot be in a header. */
static int sbxw_token_param(const char *q, char *out, size_t n)
{
    out[0] = '\0';
    for (const char *p = q; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (strncmp(p, "access_token=", 13) == 0) {
            if (len >= n)
                return -1;
            memcpy(out, p, len);
            out[len] = '\0';
            for (size_t i = 0; i < len; i++) {
                if ((unsigned char)out[i] <= 0x20 || out[i] == 0x7f)
                    return -1;
            }
            return 0;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* ?recursive=: absent, false, 0 (no) or true, 1 (yes). 0, or -1 after
 * the 400. */
static int sbxw_query_bool(http_req *r, const char *name, int *out)
{
    char v[8];
    int rc = http_query(r, name, v, sizeof v);

    *out = rc == 1 && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
    if (rc < 0 || (rc == 1 && !*out && strcmp(v, "false") != 0 &&
                   strcmp(v, "0") != 0 && v[0] != '\0')) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, name,
                        "%s must be true or false", name);
        return -1;
    }
    return 0;
}

/* GET /sandboxes/{id}/watch?path=&recursive=: a watch for as long as this
 * stream is read (ephemeral: it ends SP_WATCH_GRACE s after its last
 * reader left), answered by the relay: the request goes there by
 * X-Accel-Redirect to …/watches/{wid}/events. */
void sbxh_watch_stream(http_req *r)
{
    char path[SBXW_PATH_MAX], wid[SP_ID_SIZE], tok[768];
    hc_watch_req q = {.sandbox = r->params[0], .path = path, .ephemeral = 1};
    rpc_reply rr;
    int rc = http_query(r, "path", path, sizeof path);

    if (rc != 1 || path[0] == '\0') {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "path",
                        rc < 0 ? "path is too long or malformed"
                               : "path is required");
        return;
    }
    if (sbxw_query_bool(r, "recursive", &q.recursive) != 0)
        return;
    if (sbxw_token_param(r->query, tok, sizeof tok) != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "access_token",
                        "access_token too long: send it in Authorization");
        return;
    }
    if (sbxw_start(r, &q, wid, &rr) != 0)
        return;
    rpc_reply_free(&rr);
    http_add_header(r, "X-Accel-Redirect: /sandboxes/%s/watches/%s/events%s%s",
                    q.sandbox, wid, tok[0] ? "?" : "", tok);
    http_send_raw(r, 200, "text/plain", "", 0);
}
