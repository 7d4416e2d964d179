/* sp_workflow.c: a workflow run's steps, its making and its queue
 * (sp_workflow.h). */
#include "sp_workflow.h"

#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"
#include "sp_redis.h"
#include "sp_rpc.h"

#include <stdio.h>
#include <string.h>

static const char *const wf_step_names[] = {
#define WF_STEP_NAME(e, name) name,
    WF_STEPS(WF_STEP_NAME)
#undef WF_STEP_NAME
};

const char *wf_step_name(int s)
{
    return s >= 0 && s < WF_STEP_COUNT ? wf_step_names[s] : "";
}

int wf_step_find(const char *name)
{
    for (int s = 0; s < WF_STEP_COUNT; s++)
        if (strcmp(wf_step_names[s], name) == 0)
            return s;
    return WF_STEP_COUNT;
}

int wf_queue(sp_queue *q, const char *consumer)
{
    char k[RDS_KEY_MAX];

    if (key_of(k, sizeof k, KEY_WFQUEUE, NULL) != 0)
        return -1;
    return queue_init(q, k, WF_GROUP, consumer ? consumer : "producer",
                      cfg_int(CFG_SP_WORKER_LEASE_S) * 1000, RPC_STREAM_MAXLEN);
}

sp_status wf_run_start(const wf_run_new *n, char *id_out)
{
    char rk[RDS_KEY_MAX], hk[RDS_KEY_MAX], now[RDS_NUM_SIZE], from[16],
        keep[RDS_NUM_SIZE];
    const char *names[] = {"run"}, *values[] = {id_out};
    redisReply *r;
    sp_status st;
    sp_queue q;
    int ok;

    if (id_generate("wfr_", id_out, SP_ID_SIZE) != 0 ||
        key_of(rk, sizeof rk, KEY_WFRUN, id_out) != 0 ||
        key_of(hk, sizeof hk, KEY_WFRUNS_OF, n->owner) != 0 ||
        wf_queue(&q, NULL) != 0)
        return SP_E_INTERNAL;
    /* Counted among the owner's active runs until the worker ends it. */
    if ((st = rpc_reserve(KEY_WFACTIVE, n->owner, id_out,
                          cfg_int(CFG_SP_WORKFLOW_MAX_ACTIVE),
                          rpc_now_ms() + WF_ACTIVE_LAPSE_MS)) != SP_OK)
        return st;
    snprintf(now, sizeof now, "%lld", rpc_now_ms());
    snprintf(from, sizeof from, "%d", n->from_step);
    snprintf(keep, sizeof keep, "%lld", -cfg_int(CFG_SP_WORKFLOW_RUNS_MAX) - 1);
    r = rds_cmd("HSET %s owner %s workflow %s status queued spec %s steps %s "
                "from_step %s retry_of %s client %s created %s",
                rk, n->owner, n->workflow, n->spec, n->steps ? n->steps : "[]",
                from, n->retry_of ? n->retry_of : "",
                n->client ? n->client : "", now);
    ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
    freeReplyObject(r);
    if (!ok) {
        rpc_release(KEY_WFACTIVE, n->owner, id_out);
        return SP_E_UNAVAILABLE;
    }
    /* Bounded history: the oldest runs drop out of the index (their
     * records expire on their own). */
    freeReplyObject(rds_cmd("ZADD %s %s %s", hk, now, id_out));
    freeReplyObject(rds_cmd("ZREMRANGEBYRANK %s 0 %s", hk, keep));
    if (queue_push(&q, 1, names, values, NULL) != 0) {
        freeReplyObject(rds_cmd("DEL %s", rk));
        freeReplyObject(rds_cmd("ZREM %s %s", hk, id_out));
        rpc_release(KEY_WFACTIVE, n->owner, id_out);
        return SP_E_UNAVAILABLE;
    }
    return SP_OK;
}

void wf_run_ended(const char *owner, const char *id)
{
    rpc_release(KEY_WFACTIVE, owner, id);
}
