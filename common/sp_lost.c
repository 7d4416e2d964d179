/* sp_lost.c: ending the work of a helper that is gone (sp_lost.h). */
#include "sp_lost.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOST_LOCK_MS 30000

/* If the execution still runs: record its end and add its last event.
 * KEYS: exec, events. ARGV: why, now (ms), ttl (s), event type, event data
 * (a format with one %d for the duration in ms), stream max length. */
static const char lost_exec_lua[] =
    "if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end "
    "local started = tonumber(redis.call('HGET', KEYS[1], 'started')) "
    "local dur = started and math.max(0, tonumber(ARGV[2]) - started) or 0 "
    "redis.call('HSET', KEYS[1], 'status', 'error', 'error', ARGV[1], "
    "'exit_code', '-1', 'duration_ms', dur, 'truncated', '0', "
    "'ended', ARGV[2]) "
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', ARGV[4], "
    "'data', string.format(ARGV[5], dur)) "
    "redis.call('EXPIRE', KEYS[1], ARGV[3]) "
    "redis.call('EXPIRE', KEYS[2], ARGV[3]) "
    "return 1";

/* If the watch is active: record its end and add its end event. KEYS:
 * watch, its events. ARGV: why, now (ms), ttl (s), stream max length. */
static const char lost_watch_lua[] =
    "if redis.call('HGET', KEYS[1], 'status') ~= 'active' then return 0 end "
    "redis.call('HSET', KEYS[1], 'status', 'ended', 'reason', ARGV[1], "
    "'ended', ARGV[2]) "
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'type', 'end', "
    "'data', '{\"reason\":\"' .. ARGV[1] .. '\"}') "
    "redis.call('EXPIRE', KEYS[1], ARGV[3]) "
    "redis.call('EXPIRE', KEYS[2], ARGV[3]) "
    "return 1";

static long long lost_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int lost_helper_stale(const char *helper)
{
    char k[RDS_KEY_MAX];
    redisReply *r;
    int result = -1;

    if (key_of(k, sizeof k, KEY_HELPERS, NULL) != 0 || !id_valid(helper))
        return -1;
    r = rds_cmd("ZSCORE %s %s", k, helper);
    if (r != NULL && r->type == REDIS_REPLY_NIL)
        result = 1;
    else if (r != NULL && r->type == REDIS_REPLY_STRING)
        result = lost_now_ms() - atoll(r->str) > LOST_STALE_MS;
    freeReplyObject(r);
    return result;
}

int lost_exec(const char *exe, const char *why)
{
    char ek[RDS_KEY_MAX], vk[RDS_KEY_MAX], now[RDS_NUM_SIZE], ttl[RDS_NUM_SIZE],
        maxlen[RDS_NUM_SIZE], data[256];
    const char *type = "result";
    redisReply *r;
    int result = -1;

    /* why goes into JSON and a Lua format as is: a plain word only. */
    if (why == NULL || why[0] == '\0' ||
        strspn(why, "abcdefghijklmnopqrstuvwxyz_") != strlen(why) ||
        key_of(ek, sizeof ek, KEY_EXEC, exe) != 0 ||
        key_of(vk, sizeof vk, KEY_EVENTS, exe) != 0)
        return -1;
    if (id_valid_typed(exe, "trm_")) {
        /* A terminal's stream ends with exit. */
        type = "exit";
        snprintf(data, sizeof data, "{\"code\":-1}");
    } else {
        snprintf(data, sizeof data,
                 "{\"data\":{\"exitCode\":-1,\"status\":\"error\","
                 "\"truncated\":false,\"error\":\"%s\"},\"duration\":%%d}",
                 why);
    }
    snprintf(now, sizeof now, "%lld", lost_now_ms());
    snprintf(ttl, sizeof ttl, "%lld", cfg_int(CFG_SP_EVENT_TTL));
    snprintf(maxlen, sizeof maxlen, "%lld", cfg_int(CFG_SP_STREAM_MAXLEN));
    r = rds_cmd("EVAL %s 2 %s %s %s %s %s %s %s %s", lost_exec_lua, ek, vk, why,
                now, ttl, type, data, maxlen);
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        result = (int)r->integer;
    else
        log_warn("ending execution %s as lost failed", exe);
    freeReplyObject(r);
    return result;
}

/* End watch wch as lost (why: a plain word, as for lost_exec) unless it
 * has ended: its stream gets its end event, so that every reader's stream
 * ends. */
static void lost_watch(const char *wch, const char *why)
{
    char wk[RDS_KEY_MAX], vk[RDS_KEY_MAX], now[RDS_NUM_SIZE], ttl[RDS_NUM_SIZE],
        maxlen[RDS_NUM_SIZE];

    if (key_of(wk, sizeof wk, KEY_WATCH, wch) != 0 ||
        key_of(vk, sizeof vk, KEY_WATCH_EVENTS, wch) != 0)
        return;
    snprintf(now, sizeof now, "%lld", lost_now_ms());
    snprintf(ttl, sizeof ttl, "%lld", cfg_int(CFG_SP_EVENT_TTL));
    snprintf(maxlen, sizeof maxlen, "%lld", cfg_int(CFG_SP_WATCH_MAXLEN));
    freeReplyObject(rds_cmd("EVAL %s 2 %s %s %s %s %s %s", lost_watch_lua, wk,
                            vk, why, now, ttl, maxlen));
}

/* The members of set key (a SMEMBERS reply the caller frees), or NULL. */
static redisReply *lost_members(const char *key)
{
    redisReply *r = rds_cmd("SMEMBERS %s", key);
    if (r != NULL && r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

/* End sandbox sbx's executions and watches as lost and delete its
 * records; the number of executions ended. */
static int lost_sandbox(const char *sbx, const char *why)
{
    char k[RDS_KEY_MAX], rk[RDS_KEY_MAX], ck[RDS_KEY_MAX], ok[RDS_KEY_MAX],
        xk[RDS_KEY_MAX], mk[RDS_KEY_MAX], wk[RDS_KEY_MAX], pk[RDS_KEY_MAX];
    redisReply *owner, *set;
    int n = 0;

    if (key_of(k, sizeof k, KEY_SBX, sbx) != 0 ||
        key_of(rk, sizeof rk, KEY_SBX_RUNNING, sbx) != 0 ||
        key_of(ck, sizeof ck, KEY_SBX_CONTEXTS, sbx) != 0 ||
        key_of(mk, sizeof mk, KEY_SBX_METRICS, sbx) != 0 ||
        key_of(wk, sizeof wk, KEY_SBX_WATCHES, sbx) != 0 ||
        key_of(pk, sizeof pk, KEY_SBX_PIDS, sbx) != 0)
        return 0;
    owner = rds_cmd("HGET %s owner", k);
    if (owner != NULL && owner->type == REDIS_REPLY_STRING &&
        key_of(ok, sizeof ok, KEY_SBXS_OF_OWNER, owner->str) == 0)
        freeReplyObject(rds_cmd("SREM %s %s", ok, sbx));
    freeReplyObject(owner);
    set = lost_members(rk);
    for (size_t i = 0; set != NULL && i < set->elements; i++)
        n += lost_exec(set->element[i]->str, why) == 1;
    freeReplyObject(set);
    set = lost_members(ck);
    for (size_t i = 0; set != NULL && i < set->elements; i++) {
        if (key_of(xk, sizeof xk, KEY_CTX, set->element[i]->str) == 0)
            freeReplyObject(rds_cmd("DEL %s", xk));
    }
    freeReplyObject(set);
    set = lost_members(wk);
    for (size_t i = 0; set != NULL && i < set->elements; i++)
        lost_watch(set->element[i]->str, why);
    freeReplyObject(set);
    freeReplyObject(rds_cmd("DEL %s %s %s %s %s %s", k, rk, ck, mk, wk, pk));
    return n;
}

int lost_helper(const char *helper, const char *why)
{
    char hk[RDS_KEY_MAX], lk[RDS_KEY_MAX];
    redisReply *lock, *set;
    int n = 0;

    if (key_of(hk, sizeof hk, KEY_HELPER_SBXS, helper) != 0 ||
        key_of(lk, sizeof lk, KEY_HELPER_SWEEP, helper) != 0)
        return -1;
    lock = rds_cmd("SET %s 1 NX PX %d", lk, LOST_LOCK_MS);
    if (lock == NULL || lock->type == REDIS_REPLY_ERROR) {
        freeReplyObject(lock);
        return -1;
    }
    if (lock->type == REDIS_REPLY_NIL) {
        freeReplyObject(lock);
        return LOST_BUSY;
    }
    freeReplyObject(lock);
    set = lost_members(hk);
    for (size_t i = 0; set != NULL && i < set->elements; i++) {
        if (id_valid(set->element[i]->str))
            n += lost_sandbox(set->element[i]->str, why);
    }
    freeReplyObject(set);
    freeReplyObject(rds_cmd("DEL %s %s", hk, lk));
    if (n > 0)
        log_warn("helper %s is gone: %d executions ended as %s", helper, n,
                 why);
    return n;
}

int lost_sweep(void)
{
    /* Since when this sweeper has seen Redis answer (one sweeper thread
     * per process). */
    static long long ok_since;
    char k[RDS_KEY_MAX];
    redisReply *r;
    int n = 0;

    if (key_of(k, sizeof k, KEY_HELPERS, NULL) != 0)
        return -1;
    r = rds_cmd("ZRANGEBYSCORE %s -inf %lld", k, lost_now_ms() - LOST_STALE_MS);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        ok_since = 0;
        return -1;
    }
    if (ok_since == 0)
        ok_since = lost_now_ms();
    /* After Redis was away every heartbeat looks old: helpers get the time
     * to beat again before any is taken for gone. */
    if (lost_now_ms() - ok_since < 2 * LOST_STALE_MS) {
        freeReplyObject(r);
        return 0;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const char *h = r->element[i]->str;
        /* Still stale? A heartbeat may have come since the range was read. */
        if (!id_valid(h) || lost_helper_stale(h) != 1 ||
            lost_helper(h, LOST_ERROR) < 0)
            continue;
        freeReplyObject(rds_cmd("ZREMRANGEBYSCORE %s -inf %lld", k,
                                lost_now_ms() - LOST_STALE_MS));
        n++;
    }
    freeReplyObject(r);
    return n;
}
