/* worker/wk_sched.c: the timer that starts scheduled workflows. A
 * workflow with a schedule (wf:<id>: owner, spec, cron or at) waits in
 * the sorted set wfsched scored by its next time (Unix ms). Once a
 * second the first worker thread reads the due ones; each is taken by
 * ZREM, which only one worker can win, then made a run (wf_run_start,
 * as POST /workflows makes one) and, for a cron schedule, put back at
 * its next time. */
#include "wk.h"

#include "sp_config.h"
#include "sp_cron.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_rpc.h"

#include <stdio.h>
#include <string.h>

#define WK_SCHED_BATCH    16
#define WK_SCHED_RETRY_MS 5000

/* Start workflow wf (taken from zk): a run, and its next time. */
static void wk_sched_one(const char *zk, const char *wf)
{
    char k[RDS_KEY_MAX], run[SP_ID_SIZE];
    redisReply *h = NULL;
    const char *owner, *spec, *cron, *client;
    long long now_s = rpc_now_ms() / 1000, next = -1;
    wf_run_new n = {0};
    cron_spec c;
    const char *bad;

    if (key_of(k, sizeof k, KEY_WF, wf) != 0 ||
        (h = rds_cmd("HGETALL %s", k)) == NULL)
        goto retry;
    owner = rds_hfield(h, "owner");
    spec = rds_hfield(h, "spec");
    cron = rds_hfield(h, "cron");
    client = rds_hfield(h, "client");
    if (owner == NULL || spec == NULL)
        goto out; /* expired or deleted: nothing to start */
    n.owner = owner;
    n.workflow = wf;
    n.spec = spec;
    n.client = client != NULL && client[0] != '\0' ? client : NULL;
    if (wf_run_start(&n, run) != SP_OK)
        goto retry;
    if (cron != NULL && cron[0] != '\0' && cron_parse(cron, &c, &bad) == 0)
        next = cron_next(&c, now_s);
    freeReplyObject(rds_cmd("HSET %s last_run %s next %lld", k, run,
                            next > 0 ? next * 1000 : 0));
    if (next > 0)
        freeReplyObject(rds_cmd("ZADD %s %lld %s", zk, next * 1000, wf));
    freeReplyObject(
        rds_cmd("EXPIRE %s %lld", k,
                cfg_int(CFG_SP_WORKFLOW_TTL) + (next > 0 ? next - now_s : 0)));
    log_info("schedule of %s started run %s", wf, run);
    goto out;
retry:
    /* Taken but not started (Redis failed): due again shortly. */
    freeReplyObject(
        rds_cmd("ZADD %s %lld %s", zk, rpc_now_ms() + WK_SCHED_RETRY_MS, wf));
out:
    freeReplyObject(h);
}

void wk_sched_tick(void)
{
    char zk[RDS_KEY_MAX];
    redisReply *due;

    if (key_of(zk, sizeof zk, KEY_WFSCHED, NULL) != 0)
        return;
    due = rds_cmd("ZRANGEBYSCORE %s -inf %lld LIMIT 0 %d", zk, rpc_now_ms(),
                  WK_SCHED_BATCH);
    for (size_t i = 0;
         due != NULL && due->type == REDIS_REPLY_ARRAY && i < due->elements;
         i++) {
        const char *wf = due->element[i]->str;
        redisReply *won;
        if (due->element[i]->type != REDIS_REPLY_STRING ||
            !id_valid_typed(wf, "wf_"))
            continue;
        /* ZREM is the taking: one worker gets 1, the others 0. */
        won = rds_cmd("ZREM %s %s", zk, wf);
        if (won != NULL && won->type == REDIS_REPLY_INTEGER &&
            won->integer == 1)
            wk_sched_one(zk, wf);
        freeReplyObject(won);
    }
    freeReplyObject(due);
}
