/* worker/wk_run.c: one workflow run from its queue entry to its end:
 * the record read, a run found running failed as lost, the sandbox made
 * and deleted, the steps driven in order (a retry's earlier validation
 * results kept), each change recorded in wfrun:<id> and published on
 * wfrun:<id>:events, the end (status, error, "result" last). */
#include "wk.h"

#include "sp_config.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_rpc.h"
#include "sp_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wk_set(wk_run *w, const char *name, const char *value)
{
    freeReplyObject(rds_cmd("HSET %s %s %s", w->rkey, name, value));
}

void wk_event(wk_run *w, const char *type, const char *data, size_t len)
{
    char ml[RDS_NUM_SIZE];
    const char *argv[] = {"XADD", w->ekey, "MAXLEN", "~",    ml,
                          "*",    "type",  type,     "data", data};
    size_t lens[] = {4, strlen(w->ekey), 6, 1, 0, 1, 4, strlen(type), 4, len};

    snprintf(ml, sizeof ml, "%lld", cfg_int(CFG_SP_STREAM_MAXLEN));
    lens[4] = strlen(ml);
    freeReplyObject(rds_cmdv(10, argv, lens));
}

/* An event whose data is the JSON object o. */
static void wk_event_json(wk_run *w, const char *type, const cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);

    if (s != NULL)
        wk_event(w, type, s, strlen(s));
    free(s);
}

int wk_cancelled(wk_run *w)
{
    redisReply *r = rds_cmd("HGET %s cancel", w->rkey);
    int yes =
        r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0;

    freeReplyObject(r);
    return yes;
}

static void wk_save_steps(wk_run *w)
{
    char *s = cJSON_PrintUnformatted(w->steps);

    if (s != NULL)
        wk_set(w, "steps", s);
    free(s);
}

/* Step s's result changed: recorded, and published as a "step" event. */
static void wk_step_changed(wk_run *w, const cJSON *res)
{
    wk_save_steps(w);
    wk_event_json(w, "step", res);
}

/* The run's end: status and error recorded, kept SP_WORKFLOW_TTL, and
 * "result" published last. */
static void wk_finish(wk_run *w, const char *status)
{
    char now[RDS_NUM_SIZE];
    cJSON *o = cJSON_CreateObject(), *e;
    char *err = NULL;

    snprintf(now, sizeof now, "%lld", rpc_now_ms());
    cJSON_AddStringToObject(o, "status", status);
    if (w->err_code[0] != '\0') {
        e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", w->err_code);
        cJSON_AddStringToObject(e, "message", w->err_msg);
        err = cJSON_PrintUnformatted(e);
    }
    freeReplyObject(rds_cmd("HSET %s status %s ended %s error %s exe %s",
                            w->rkey, status, now, err ? err : "", ""));
    wk_event_json(w, "result", o);
    wf_run_ended(w->owner, w->id);
    freeReplyObject(
        rds_cmd("EXPIRE %s %lld", w->rkey, cfg_int(CFG_SP_WORKFLOW_TTL)));
    freeReplyObject(
        rds_cmd("EXPIRE %s %lld", w->ekey, cfg_int(CFG_SP_WORKFLOW_TTL)));
    free(err);
    cJSON_Delete(o);
}

static void wk_error(wk_run *w, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void wk_error(wk_run *w, const char *code, const char *fmt, ...)
{
    va_list ap;

    snprintf(w->err_code, sizeof w->err_code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(w->err_msg, sizeof w->err_msg, fmt, ap);
    va_end(ap);
}

/* The run's sandbox, made from the spec's "sandbox" (validated by the
 * handler as POST /sandboxes validates one). 0, or -1 with the error. */
static int wk_sandbox(wk_run *w)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(w->spec, "sandbox");
    hc_sandbox_req q = {.id = w->sbx, .owner = w->owner};
    rpc_err err;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "template");
#define WK_NUM(f)                                                              \
    (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, f))

    q.timeout_s = WK_NUM("timeout_s");
    q.memory_mb = WK_NUM("memory_mb");
    q.pids = WK_NUM("pids");
    q.disk_mb = WK_NUM("disk_mb");
    q.cpus_milli = WK_NUM("cpus_milli");
#undef WK_NUM
    q.network = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "network"));
    q.netpol = cJSON_GetObjectItemCaseSensitive(s, "netpol");
    q.template_name = cJSON_IsString(t) ? t->valuestring : NULL;
    if (id_generate_sandbox(w->sbx, sizeof w->sbx) != 0 ||
        hc_create(&q, w->sbx, &err) != 0) {
        w->sbx[0] = '\0';
        wk_error(w, "sandbox_failed", "the run's sandbox could not be made");
        return -1;
    }
    if (rpc_sandbox_helper(w->owner, w->sbx, w->helper) != SP_OK) {
        wk_error(w, "sandbox_failed", "the run's sandbox is gone");
        return -1;
    }
    freeReplyObject(
        rds_cmd("HSET %s sandbox %s helper %s", w->rkey, w->sbx, w->helper));
    return 0;
}

static void wk_sandbox_delete(wk_run *w)
{
    rpc_err err;

    if (w->sbx[0] != '\0' && w->helper[0] != '\0' &&
        hc_delete(w->helper, w->sbx, &err) != 0)
        log_warn("run %s: delete of sandbox %s failed: %s", w->id, w->sbx,
                 err.msg);
}

/* The step results: the record's (a retry's earlier ones), each step
 * from from_step on (and inputs: the sandbox is new) pending again. */
static void wk_steps_init(wk_run *w, const char *steps)
{
    cJSON *old = cJSON_Parse(steps ? steps : "[]");

    w->steps = cJSON_CreateArray();
    for (int s = 0; s < WF_STEP_COUNT; s++) {
        cJSON *prev = cJSON_GetArrayItem(old, s), *res;
        if (s != WF_STEP_INPUTS && s < w->from_step && cJSON_IsObject(prev)) {
            res = cJSON_Duplicate(prev, 1);
            cJSON_DeleteItemFromObjectCaseSensitive(res, "reused");
            cJSON_AddBoolToObject(res, "reused", 1);
        } else {
            res = cJSON_CreateObject();
            cJSON_AddStringToObject(res, "step", wf_step_name(s));
            cJSON_AddStringToObject(res, "status", "pending");
        }
        cJSON_AddItemToArray(w->steps, res);
    }
    cJSON_Delete(old);
}

static const char *const wk_end_names[] = {"passed", "failed", "skipped",
                                           "cancelled"};

static void wk_status(cJSON *res, const char *status)
{
    cJSON_DeleteItemFromObjectCaseSensitive(res, "status");
    cJSON_AddStringToObject(res, "status", status);
}

/* Drive the steps; the run's end status. */
static const char *wk_drive(wk_run *w)
{
    for (int s = 0; s < WF_STEP_COUNT; s++) {
        cJSON *res = cJSON_GetArrayItem(w->steps, s);
        long long t0;
        wk_end end;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "reused"))) {
            wk_event_json(w, "step", res);
            continue;
        }
        if (wk_cancelled(w))
            return "cancelled";
        t0 = rpc_now_ms();
        wk_status(res, "running");
        cJSON_AddNumberToObject(res, "started", (double)t0);
        wk_step_changed(w, res);
        end = wk_step(w, s, res);
        wk_status(res, wk_end_names[end]);
        cJSON_AddNumberToObject(res, "duration_ms",
                                (double)(rpc_now_ms() - t0));
        wk_step_changed(w, res);
        if (end == WK_CANCELLED)
            return "cancelled";
        if (end == WK_FAILED) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(res, "error");
            wk_error(w,
                     s <= WF_STEP_LINT && s != WF_STEP_INPUTS
                         ? "validation_failed"
                         : "step_failed",
                     "step %s failed%s%s", wf_step_name(s),
                     cJSON_IsString(e) ? ": " : "",
                     cJSON_IsString(e) ? e->valuestring : "");
            return "failed";
        }
    }
    return "succeeded";
}

/* A run found running when its entry is taken again: its worker is gone
 * mid-run. The step it was in failed, the run failed as worker_lost, its
 * sandbox deleted. */
static void wk_lost(wk_run *w, const redisReply *h)
{
    const char *sbx = rds_hfield(h, "sandbox"),
               *helper = rds_hfield(h, "helper");
    cJSON *res;

    w->steps =
        cJSON_Parse(rds_hfield(h, "steps") ? rds_hfield(h, "steps") : "[]");
    cJSON_ArrayForEach(res, w->steps)
    {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(res, "status");
        if (cJSON_IsString(st) && strcmp(st->valuestring, "running") == 0) {
            wk_status(res, "failed");
            cJSON_AddStringToObject(res, "error", "worker_lost");
        }
    }
    if (w->steps != NULL)
        wk_save_steps(w);
    if (sbx != NULL && helper != NULL && id_valid(sbx) && id_valid(helper)) {
        snprintf(w->sbx, sizeof w->sbx, "%s", sbx);
        snprintf(w->helper, sizeof w->helper, "%s", helper);
        wk_sandbox_delete(w);
    }
    wk_error(w, "worker_lost",
             "the worker running this run stopped; retry it to run again");
    wk_finish(w, "failed");
}

/* Everything a run needs from its record h; 0, or -1 (no such run). */
static int wk_load(wk_run *w, const char *id, const redisReply *h)
{
    const char *owner = rds_hfield(h, "owner"), *spec = rds_hfield(h, "spec");
    const char *client = rds_hfield(h, "client"),
               *from = rds_hfield(h, "from_step");

    if (owner == NULL || spec == NULL || !id_valid(owner))
        return -1;
    snprintf(w->id, sizeof w->id, "%s", id);
    snprintf(w->owner, sizeof w->owner, "%s", owner);
    snprintf(w->client, sizeof w->client, "%s", client ? client : "");
    w->from_step = from ? atoi(from) : 0;
    if (w->from_step < 0 || w->from_step >= WF_STEP_COUNT)
        w->from_step = 0;
    w->spec = cJSON_Parse(spec);
    return w->spec != NULL ? 0 : -1;
}

void wk_run_entry(const sp_queue *q, const queue_entry *e)
{
    const char *id = queue_field(e, "run"), *status;
    wk_run *w = calloc(1, sizeof *w);
    redisReply *h = NULL;
    char now[RDS_NUM_SIZE];
    const char *end;

    if (w == NULL || id == NULL || !id_valid_typed(id, "wfr_") ||
        key_of(w->rkey, sizeof w->rkey, KEY_WFRUN, id) != 0 ||
        key_of(w->ekey, sizeof w->ekey, KEY_WFRUN_EVENTS, id) != 0)
        goto done;
    snprintf(w->id, sizeof w->id, "%s", id);
    h = rds_cmd("HGETALL %s", w->rkey);
    if (h == NULL)
        goto keep; /* Redis away: the entry stays pending, taken again */
    status = rds_hfield(h, "status");
    if (status == NULL || strcmp(status, "queued") != 0) {
        const char *owner = rds_hfield(h, "owner");
        if (owner != NULL && id_valid(owner))
            snprintf(w->owner, sizeof w->owner, "%s", owner);
        if (status != NULL && strcmp(status, "running") == 0)
            wk_lost(w, h);
        else if (w->owner[0] != '\0')
            wf_run_ended(w->owner, w->id); /* cancelled while queued */
        goto done; /* ended, gone, or just failed as lost */
    }
    if (wk_load(w, id, h) != 0) {
        wk_error(w, "internal", "the run's record is unreadable");
        wk_finish(w, "failed");
        goto done;
    }
    wk_steps_init(w, rds_hfield(h, "steps"));
    snprintf(now, sizeof now, "%lld", rpc_now_ms());
    freeReplyObject(rds_cmd("HSET %s status running started %s worker %s",
                            w->rkey, now, q->consumer));
    wk_save_steps(w);
    log_info("run %s started", w->id);
    if (wk_cancelled(w))
        end = "cancelled";
    else if (wk_sandbox(w) != 0)
        end = "failed";
    else
        end = wk_drive(w);
    /* The end is told first: deleting the sandbox is cleanup, not part of
     * the run's time (a worker killed in between leaves it to its
     * timeout). */
    wk_finish(w, end);
    wk_sandbox_delete(w);
    log_info("run %s %s", w->id, end);
done:
    queue_done(q, e->id);
keep:
    freeReplyObject(h);
    if (w != NULL) {
        cJSON_Delete(w->spec);
        cJSON_Delete(w->steps);
    }
    free(w);
}
