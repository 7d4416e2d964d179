/* handlers/workflows_runs.c: the workflows family's runs: POST /workflows
 * (validated by workflows_spec.c, then a run queued for sp-worker, or a
 * schedule recorded), GET /workflows/runs (the caller's history, newest
 * first, paged), GET /workflows/runs/{id}, cancel and retry. A run's JSON
 * is rendered in one place, wfh_run_json. Another subject's run is 404
 * (rpc_owned_record). */
#include "workflows.h"

#include "sp_config.h"
#include "sp_helper.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"
#include "sp_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WFH_PAGE_MAX 100

/* Field name of h as a time (Unix ms) into o as name_at (RFC 3339). */
static void wfh_time(cJSON *o, const redisReply *h, const char *field,
                     const char *name)
{
    const char *v = rds_hfield(h, field);
    char t[JSON_TIME_SIZE];

    if (v == NULL || v[0] == '\0') {
        cJSON_AddNullToObject(o, name);
        return;
    }
    json_time(atoll(v) / 1000, t, sizeof t);
    cJSON_AddStringToObject(o, name, t);
}

/* The JSON of run id from its record h: the one place that shape is
 * made (caller frees). */
static cJSON *wfh_run_json(const char *id, const redisReply *h)
{
    cJSON *o = cJSON_CreateObject(), *steps, *err, *objs, *s;
    const char *v;

    cJSON_AddStringToObject(o, "run_id", id);
    v = rds_hfield(h, "workflow");
    cJSON_AddStringToObject(o, "workflow_id", v ? v : "");
    v = rds_hfield(h, "status");
    cJSON_AddStringToObject(o, "status", v ? v : "");
    wfh_time(o, h, "created", "created_at");
    wfh_time(o, h, "started", "started_at");
    wfh_time(o, h, "ended", "ended_at");
    if ((v = rds_hfield(h, "started")) != NULL && rds_hfield(h, "ended"))
        cJSON_AddNumberToObject(
            o, "duration_ms",
            (double)(atoll(rds_hfield(h, "ended")) - atoll(v)));
    v = rds_hfield(h, "retry_of");
    if (v != NULL && v[0] != '\0')
        cJSON_AddStringToObject(o, "retry_of", v);
    v = rds_hfield(h, "client");
    if (v != NULL && v[0] != '\0')
        cJSON_AddStringToObject(o, "clientId", v);
    steps = cJSON_Parse(rds_hfield(h, "steps") ? rds_hfield(h, "steps") : "[]");
    err = cJSON_Parse(rds_hfield(h, "error") ? rds_hfield(h, "error") : "");
    /* The objects the outputs step stored, for a quick look. */
    objs = cJSON_AddArrayToObject(o, "output_objects");
    cJSON_ArrayForEach(s, steps)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(s, "step");
        const cJSON *ks = cJSON_GetObjectItemCaseSensitive(s, "objects"), *k;
        if (!cJSON_IsString(n) || strcmp(n->valuestring, "outputs") != 0)
            continue;
        cJSON_ArrayForEach(k, ks)
            cJSON_AddItemToArray(objs, cJSON_Duplicate(k, 1));
    }
    if (steps == NULL)
        steps = cJSON_CreateArray();
    /* Not started yet (the record has none): every step is pending. */
    for (int i = 0; cJSON_GetArraySize(steps) == i && i < WF_STEP_COUNT; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "step", wf_step_name(i));
        cJSON_AddStringToObject(p, "status", "pending");
        cJSON_AddItemToArray(steps, p);
    }
    cJSON_AddItemToObject(o, "steps", steps);
    cJSON_AddItemToObject(o, "error", err ? err : cJSON_CreateNull());
    return o;
}

/* The answer of a run just queued (POST /workflows, retry): 202
 * {workflow_id, run_id, status, retry_of?, from_step?}, the one place it
 * is made. */
static void wfh_queued(http_req *r, const char *wf, const char *run,
                       const char *retry_of, int from_step)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "workflow_id", wf);
    cJSON_AddStringToObject(o, "run_id", run);
    cJSON_AddStringToObject(o, "status", "queued");
    if (retry_of != NULL) {
        cJSON_AddStringToObject(o, "retry_of", retry_of);
        cJSON_AddStringToObject(o, "from_step", wf_step_name(from_step));
    }
    http_send_json(r, 202, o);
    cJSON_Delete(o);
}

/* The answer when wf_run_start refused a run (st). */
static void wfh_not_queued(http_req *r, sp_status st)
{
    if (st == SP_E_RATE_LIMITED)
        http_send_error(r, st, NULL,
                        "at most %lld workflow runs queued or running at once",
                        cfg_int(CFG_SP_WORKFLOW_MAX_ACTIVE));
    else
        http_send_error(r, st, NULL, "the run could not be queued");
}

/* The caller's run of route parameter 0: its record (caller frees), or
 * NULL after the 404 or 503. */
static redisReply *wfh_run_record(http_req *r)
{
    return rpc_owned_record(r, KEY_WFRUN, r->params[0], "wfr_", "workflow run",
                            NULL, NULL);
}

void wfh_post(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *spec = NULL, *o = NULL;
    char wf[SP_ID_SIZE], run[SP_ID_SIZE], t[JSON_TIME_SIZE];
    const char *client = NULL, *cron;
    char *text = NULL;
    long long first_ms;
    wf_run_new n = {0};
    sp_status st;

    if (body == NULL || json_str(r, body, "clientId", 0, 64, &client) != 0)
        goto out;
    if (client != NULL && !id_valid(client)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "clientId",
                        "clientId must match [A-Za-z0-9_-]{1,64}");
        goto out;
    }
    if ((spec = wfh_spec(r, body)) == NULL ||
        wfh_schedule(r, body, &cron, &first_ms) != 0)
        goto out;
    if ((text = cJSON_PrintUnformatted(spec)) == NULL ||
        rpc_new_id(r, "wf_", wf) != 0)
        goto out;
    if (wfh_workflow_save(
            r, wf, cJSON_GetStringValue(cJSON_GetObjectItem(spec, "name")),
            text, cron, client, first_ms) != 0)
        goto out;
    if (first_ms > 0) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "workflow_id", wf);
        cJSON_AddNullToObject(o, "run_id");
        json_time(first_ms / 1000, t, sizeof t);
        cJSON_AddStringToObject(o, "next_run_at", t);
        http_send_json(r, 201, o);
        goto out;
    }
    n = (wf_run_new){
        .owner = r->auth.sub, .workflow = wf, .spec = text, .client = client};
    if ((st = wf_run_start(&n, run)) != SP_OK) {
        wfh_not_queued(r, st);
        goto out;
    }
    wfh_queued(r, wf, run, NULL, 0);
out:
    free(text);
    cJSON_Delete(o);
    cJSON_Delete(spec);
    cJSON_Delete(body);
}

void wfh_run_get(http_req *r)
{
    redisReply *h = wfh_run_record(r);
    cJSON *o;

    if (h == NULL)
        return;
    o = wfh_run_json(r->params[0], h);
    http_send_json(r, 200, o);
    cJSON_Delete(o);
    freeReplyObject(h);
}

void wfh_runs(http_req *r)
{
    char k[RDS_KEY_MAX], v[32], rk[RDS_KEY_MAX];
    long long limit = 20, cursor = 0;
    redisReply *ids = NULL;
    cJSON *root = NULL, *arr;

    if (http_query(r, "limit", v, sizeof v) == 1)
        limit = atoll(v);
    if (http_query(r, "cursor", v, sizeof v) == 1)
        cursor = atoll(v);
    if (limit < 1 || limit > WFH_PAGE_MAX || cursor < 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT,
                        limit < 1 || limit > WFH_PAGE_MAX ? "limit" : "cursor",
                        "limit must be 1 to %d, cursor a number from a page",
                        WFH_PAGE_MAX);
        return;
    }
    if (key_of(k, sizeof k, KEY_WFRUNS_OF, r->auth.sub) != 0 ||
        (ids = rds_cmd("ZREVRANGE %s %lld %lld", k, cursor,
                       cursor + limit - 1)) == NULL ||
        ids->type != REDIS_REPLY_ARRAY) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    root = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(root, "runs");
    for (size_t i = 0; i < ids->elements; i++) {
        const char *id = ids->element[i]->str;
        redisReply *h;
        if (key_of(rk, sizeof rk, KEY_WFRUN, id) != 0 ||
            (h = rds_cmd("HGETALL %s", rk)) == NULL)
            continue;
        if (h->type == REDIS_REPLY_ARRAY && h->elements > 0) {
            cJSON *o = wfh_run_json(id, h);
            /* A list shows each run's summary, not its steps. */
            cJSON_DeleteItemFromObjectCaseSensitive(o, "steps");
            cJSON_AddItemToArray(arr, o);
        } else {
            freeReplyObject(rds_cmd("ZREM %s %s", k, id)); /* expired */
        }
        freeReplyObject(h);
    }
    if ((long long)ids->elements == limit)
        cJSON_AddNumberToObject(root, "next_cursor", (double)(cursor + limit));
    else
        cJSON_AddNullToObject(root, "next_cursor");
    http_send_json(r, 200, root);
out:
    cJSON_Delete(root);
    freeReplyObject(ids);
}

/* 1 if status is an end. */
static int wfh_ended(const char *status)
{
    return status == NULL || strcmp(status, "succeeded") == 0 ||
           strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0;
}

void wfh_run_cancel(http_req *r)
{
    redisReply *h = wfh_run_record(r), *after = NULL;
    char rk[RDS_KEY_MAX], now[RDS_NUM_SIZE];
    const char *exe, *sbx, *helper;
    cJSON *o;
    rpc_err err;

    if (h == NULL)
        return;
    if (wfh_ended(rds_hfield(h, "status"))) {
        http_send_error(r, SP_E_CONFLICT, NULL, "the run has ended");
        goto out;
    }
    key_of(rk, sizeof rk, KEY_WFRUN, r->params[0]);
    snprintf(now, sizeof now, "%lld", rpc_now_ms());
    /* The flag first: the worker checks it before each step and before
     * each execution starts (it records the execution before it looks). */
    freeReplyObject(rds_cmd("HSET %s cancel 1", rk));
    if (strcmp(rds_hfield(h, "status"), "queued") == 0) {
        /* Not started: the worker will find it ended. It counts no
         * more among the caller's active runs. */
        wf_run_ended(r->auth.sub, r->params[0]);
        freeReplyObject(rds_cmd("HSET %s status cancelled ended %s", rk, now));
        freeReplyObject(
            rds_cmd("EXPIRE %s %lld", rk, cfg_int(CFG_SP_WORKFLOW_TTL)));
    }
    after = rds_cmd("HGETALL %s", rk);
    exe = rds_hfield(after, "exe");
    sbx = rds_hfield(after, "sandbox");
    helper = rds_hfield(after, "helper");
    if (exe != NULL && exe[0] != '\0' && sbx != NULL && helper != NULL &&
        hc_cancel(helper, sbx, exe, &err) != 0)
        log_debug("cancel of %s: %s", exe, err.msg); /* it may have ended */
    o = wfh_run_json(r->params[0], after != NULL ? after : h);
    http_send_json(r, 202, o);
    cJSON_Delete(o);
out:
    freeReplyObject(after);
    freeReplyObject(h);
}

/* The step a retry starts at: the first that did not pass (or was not
 * skipped); outputs needs run's files, which went with the sandbox, so it
 * starts at run. */
static int wfh_retry_from(const cJSON *steps)
{
    const cJSON *s;
    int i = 0;

    cJSON_ArrayForEach(s, steps)
    {
        const char *st =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "status"));
        if (st == NULL ||
            (strcmp(st, "passed") != 0 && strcmp(st, "skipped") != 0))
            return i == WF_STEP_OUTPUTS ? WF_STEP_RUN : i;
        i++;
    }
    return 0;
}

void wfh_run_retry(http_req *r)
{
    redisReply *h = wfh_run_record(r);
    const char *status, *steps_text, *client;
    char run[SP_ID_SIZE];
    cJSON *steps = NULL;
    wf_run_new n = {0};
    sp_status st;

    if (h == NULL)
        return;
    status = rds_hfield(h, "status");
    if (status == NULL ||
        (strcmp(status, "failed") != 0 && strcmp(status, "cancelled") != 0)) {
        http_send_error(r, SP_E_CONFLICT, NULL,
                        "only a failed or cancelled run can be retried");
        goto out;
    }
    steps_text = rds_hfield(h, "steps");
    steps = cJSON_Parse(steps_text ? steps_text : "[]");
    client = rds_hfield(h, "client");
    n.owner = r->auth.sub;
    n.workflow = rds_hfield(h, "workflow");
    n.spec = rds_hfield(h, "spec");
    n.client = client != NULL && client[0] != '\0' ? client : NULL;
    n.retry_of = r->params[0];
    n.from_step = wfh_retry_from(steps);
    n.steps = steps_text;
    if (n.workflow == NULL || n.spec == NULL) {
        http_send_error(r, SP_E_INTERNAL, NULL,
                        "the run's record is unreadable");
        goto out;
    }
    if ((st = wf_run_start(&n, run)) != SP_OK) {
        wfh_not_queued(r, st);
        goto out;
    }
    wfh_queued(r, n.workflow, run, r->params[0], n.from_step);
out:
    cJSON_Delete(steps);
    freeReplyObject(h);
}
