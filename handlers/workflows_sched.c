/* handlers/workflows_sched.c: the workflows family's workflows: each POST
 * is recorded as wf:<id> (its spec, name and schedule); one with a
 * schedule waits in wfsched for sp-worker's timer (worker/wk_sched.c).
 * GET /workflows/{id} shows it, DELETE ends its schedule. */
#include "workflows.h"

#include "sp_config.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_redis.h"
#include "sp_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wfh_workflow_save(http_req *r, const char *wf, const char *name,
                      const char *spec, const char *cron, const char *client,
                      long long first_ms)
{
    char k[RDS_KEY_MAX], zk[RDS_KEY_MAX];
    long long ttl = cfg_int(CFG_SP_WORKFLOW_TTL);
    redisReply *rep;
    int ok;

    if (key_of(k, sizeof k, KEY_WF, wf) != 0 ||
        key_of(zk, sizeof zk, KEY_WFSCHED, NULL) != 0) {
        http_send_error(r, SP_E_INTERNAL, NULL, "bad workflow id");
        return -1;
    }
    rep = rds_cmd("HSET %s owner %s name %s spec %s cron %s client %s "
                  "created %lld next %lld",
                  k, r->auth.sub, name ? name : "", spec, cron ? cron : "",
                  client ? client : "", rpc_now_ms(), first_ms);
    ok = rep != NULL && rep->type == REDIS_REPLY_INTEGER;
    freeReplyObject(rep);
    if (ok && first_ms > 0) {
        rep = rds_cmd("ZADD %s %lld %s", zk, first_ms, wf);
        ok = rep != NULL && rep->type == REDIS_REPLY_INTEGER;
        freeReplyObject(rep);
        ttl += (first_ms - rpc_now_ms()) / 1000;
    }
    if (!ok) {
        freeReplyObject(rds_cmd("DEL %s", k));
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return -1;
    }
    freeReplyObject(rds_cmd("EXPIRE %s %lld", k, ttl));
    return 0;
}

void wfh_get(http_req *r)
{
    redisReply *h = rpc_owned_record(r, KEY_WF, r->params[0], "wf_", "workflow",
                                     NULL, NULL);
    cJSON *o, *spec, *sched;
    const char *v;
    char t[JSON_TIME_SIZE];

    if (h == NULL)
        return;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "workflow_id", r->params[0]);
    v = rds_hfield(h, "name");
    cJSON_AddStringToObject(o, "name", v ? v : "");
    spec = cJSON_Parse(rds_hfield(h, "spec") ? rds_hfield(h, "spec") : "");
    cJSON_AddStringToObject(
        o, "language",
        cJSON_GetStringValue(cJSON_GetObjectItem(spec, "language"))
            ? cJSON_GetStringValue(cJSON_GetObjectItem(spec, "language"))
            : "");
    cJSON_Delete(spec);
    v = rds_hfield(h, "cron");
    sched = cJSON_AddObjectToObject(o, "schedule");
    if (v != NULL && v[0] != '\0')
        cJSON_AddStringToObject(sched, "cron", v);
    v = rds_hfield(h, "next");
    if (v != NULL && atoll(v) > 0) {
        json_time(atoll(v) / 1000, t, sizeof t);
        cJSON_AddStringToObject(o, "next_run_at", t);
    } else {
        cJSON_AddNullToObject(o, "next_run_at");
    }
    v = rds_hfield(h, "last_run");
    if (v != NULL)
        cJSON_AddStringToObject(o, "last_run_id", v);
    else
        cJSON_AddNullToObject(o, "last_run_id");
    http_send_json(r, 200, o);
    cJSON_Delete(o);
    freeReplyObject(h);
}

void wfh_delete(http_req *r)
{
    redisReply *h = rpc_owned_record(r, KEY_WF, r->params[0], "wf_", "workflow",
                                     NULL, NULL);
    char k[RDS_KEY_MAX], zk[RDS_KEY_MAX];

    if (h == NULL)
        return;
    if (key_of(k, sizeof k, KEY_WF, r->params[0]) == 0 &&
        key_of(zk, sizeof zk, KEY_WFSCHED, NULL) == 0) {
        freeReplyObject(rds_cmd("ZREM %s %s", zk, r->params[0]));
        freeReplyObject(rds_cmd("DEL %s", k));
    }
    http_send_raw(r, 204, "application/json", "", 0);
    freeReplyObject(h);
}
