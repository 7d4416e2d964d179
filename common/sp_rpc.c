/* sp_rpc.c: handler-side job submission (sp_rpc.h). */
#include "sp_rpc.h"
#include "sp_http.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_lost.h"
#include "sp_redis.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

long long rpc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long rpc_live_helpers(void)
{
    char k[RDS_KEY_MAX];
    redisReply *rep;
    long long n = -1;

    key_of(k, sizeof k, KEY_HELPERS, NULL);
    rep = rds_cmd("ZCOUNT %s %lld +inf", k, rpc_now_ms() - LOST_STALE_MS);
    if (rep != NULL && rep->type == REDIS_REPLY_INTEGER)
        n = rep->integer;
    freeReplyObject(rep);
    return n;
}

sp_status rpc_sandbox_helper(const char *sub, const char *sbx_id, char *helper)
{
    char k[RDS_KEY_MAX];
    redisReply *rep;
    sp_status st = SP_E_NOT_FOUND;

    if (!id_valid_typed(sbx_id, "sbx_") ||
        key_of(k, sizeof k, KEY_SBX, sbx_id) != 0)
        return SP_E_NOT_FOUND;
    rep = rds_cmd("HMGET %s owner helper", k);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
        st = SP_E_UNAVAILABLE;
    else if (rep->element[0]->type == REDIS_REPLY_STRING &&
             rep->element[1]->type == REDIS_REPLY_STRING &&
             strcmp(rep->element[0]->str, sub) == 0 &&
             id_valid(rep->element[1]->str)) {
        snprintf(helper, SP_ID_SIZE, "%s", rep->element[1]->str);
        st = SP_OK;
    }
    freeReplyObject(rep);
    return st;
}

int rpc_sandbox_of(struct http_req *r, const char *sbx_id, const char *field,
                   char *helper)
{
    /* Another subject's sandbox is "not found", never "forbidden". */
    sp_status st = rpc_sandbox_helper(r->auth.sub, sbx_id, helper);
    if (st != SP_OK)
        http_send_error(r, st, field, "%s",
                        st == SP_E_NOT_FOUND ? "sandbox not found"
                                             : "state store unavailable");
    return st == SP_OK ? 0 : -1;
}

int rpc_need_helper(struct http_req *r)
{
    if (rpc_live_helpers() > 0)
        return 0;
    http_send_error(r, SP_E_UNAVAILABLE, NULL, "no sandbox helper is running");
    return -1;
}

int rpc_new_id(struct http_req *r, const char *prefix, char *out)
{
    if (id_generate(prefix, out, SP_ID_SIZE) == 0)
        return 0;
    http_send_error(r, SP_E_INTERNAL, NULL, "could not make an id");
    return -1;
}

void http_send_rpc_error(struct http_req *r, const rpc_err *err,
                         const char *field)
{
    http_send_error(r, err->st == SP_OK ? SP_E_INTERNAL : err->st, field, "%s",
                    err->msg);
}

/* Drop lapsed reservations, then add this one unless the set is full. */
static const char rpc_reserve_lua[] =
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3]) "
    "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end "
    "redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1]) "
    "local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES') "
    "redis.call('PEXPIREAT', KEYS[1], top[2]) return 1";

sp_status rpc_reserve(int f, const char *sub, const char *id, long long max,
                      long long deadline_ms)
{
    char k[RDS_KEY_MAX], maxs[RDS_NUM_SIZE], now[RDS_NUM_SIZE],
        until[RDS_NUM_SIZE];
    redisReply *r;
    sp_status st = SP_E_UNAVAILABLE;

    if (key_of(k, sizeof k, (sp_key_family)f, sub) != 0 || !id_valid(id))
        return SP_E_INTERNAL;
    snprintf(maxs, sizeof maxs, "%lld", max);
    snprintf(now, sizeof now, "%lld", rpc_now_ms());
    snprintf(until, sizeof until, "%lld", deadline_ms);
    r = rds_cmd("EVAL %s 1 %s %s %s %s %s", rpc_reserve_lua, k, id, maxs, now,
                until);
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        st = r->integer == 1 ? SP_OK : SP_E_RATE_LIMITED;
    freeReplyObject(r);
    return st;
}

void rpc_release(int f, const char *sub, const char *id)
{
    char k[RDS_KEY_MAX];
    if (key_of(k, sizeof k, (sp_key_family)f, sub) == 0 && id_valid(id))
        freeReplyObject(rds_cmd("ZREM %s %s", k, id));
}

sp_status rpc_run_reserve(const char *sub, const char *id,
                          long long deadline_ms)
{
    return rpc_reserve(KEY_RUNS, sub, id, cfg_int(CFG_SP_RUNS_MAX_PER_SUBJECT),
                       deadline_ms);
}

void rpc_run_release(const char *sub, const char *id)
{
    rpc_release(KEY_RUNS, sub, id);
}

void rpc_reply_free(rpc_reply *r)
{
    if (r == NULL)
        return;
    cJSON_Delete(r->json);
    free(r->data);
    r->json = NULL;
    r->data = NULL;
    r->len = 0;
}

void rpc_err_set(rpc_err *err, rpc_fail fail, sp_status st, const char *fmt,
                 ...)
{
    va_list ap;

    err->fail = fail;
    err->st = st;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

/* XADD the job to stream, its entry id into entry (RPC_ENTRY_SIZE); 0,
 * or -1 if Redis did not take it. */
static int rpc_send(const char *stream, const char *op, const char *rid,
                    const char *js, long long wait_ms, char *entry)
{
    char deadline[32], maxlen[RDS_NUM_SIZE];
    const char *argv[16];
    size_t lens[16];
    int argc = 0, result = -1;
    redisReply *rep;

    snprintf(deadline, sizeof deadline, "%lld", rpc_now_ms() + wait_ms);
    snprintf(maxlen, sizeof maxlen, "%d", RPC_STREAM_MAXLEN);
#define RPC_ARG(s, n) (argv[argc] = (s), lens[argc++] = (n))
    RPC_ARG("XADD", 4);
    RPC_ARG(stream, strlen(stream));
    RPC_ARG("MAXLEN", 6);
    RPC_ARG("~", 1);
    RPC_ARG(maxlen, strlen(maxlen));
    RPC_ARG("*", 1);
    RPC_ARG("op", 2);
    RPC_ARG(op, strlen(op));
    RPC_ARG("rid", 3);
    RPC_ARG(rid, strlen(rid));
    RPC_ARG("deadline", 8);
    RPC_ARG(deadline, strlen(deadline));
    RPC_ARG("args", 4);
    RPC_ARG(js, strlen(js));
#undef RPC_ARG
    rep = rds_cmdv(argc, argv, lens);
    if (rep != NULL && rep->type == REDIS_REPLY_STRING &&
        rep->len < RPC_ENTRY_SIZE) {
        memcpy(entry, rep->str, rep->len + 1);
        result = 0;
    }
    freeReplyObject(rep);
    return result;
}

/* Split the reply string v ("JSON\nraw bytes") into out and read its
 * verdict. */
static int rpc_parse(const redisReply *v, rpc_reply *out, rpc_err *err)
{
    const char *nl = memchr(v->str, '\n', v->len);
    size_t jlen = nl ? (size_t)(nl - v->str) : v->len;
    char *jcopy = strndup(v->str, jlen);
    const cJSON *ok, *code, *m;

    out->json = jcopy ? cJSON_Parse(jcopy) : NULL;
    free(jcopy);
    if (!cJSON_IsObject(out->json)) {
        rpc_err_set(err, RPC_TRANSPORT, SP_E_INTERNAL,
                    "malformed helper reply");
        return -1;
    }
    if (nl != NULL && v->len > jlen + 1) {
        out->len = v->len - jlen - 1;
        out->data = malloc(out->len);
        if (out->data == NULL) {
            rpc_err_set(err, RPC_TRANSPORT, SP_E_INTERNAL, "out of memory");
            return -1;
        }
        memcpy(out->data, nl + 1, out->len);
    }
    ok = cJSON_GetObjectItemCaseSensitive(out->json, "ok");
    if (cJSON_IsTrue(ok))
        return 0;
    code = cJSON_GetObjectItemCaseSensitive(out->json, "code");
    m = cJSON_GetObjectItemCaseSensitive(out->json, "message");
    err->st =
        sp_status_from_code(cJSON_IsString(code) ? code->valuestring : NULL);
    if (err->st == SP_OK)
        err->st = SP_E_INTERNAL; /* "ok":false must never pass as success */
    err->fail = RPC_ANSWER;
    snprintf(err->msg, sizeof err->msg, "%s",
             cJSON_IsString(m) ? m->valuestring : "helper error");
    return -1;
}

/* 1 if the wait for a reply should end: the helper (may be NULL) is
 * gone, or execution exe (may be NULL) was ended as lost or its helper is
 * gone. A helper found gone has its work ended as lost here, so that its
 * records say so before the caller answers. */
static int rpc_gone(const char *helper, const char *exe)
{
    char k[RDS_KEY_MAX], h[SP_ID_SIZE] = "";
    redisReply *r;
    int lost = 0;

    if (exe != NULL && key_of(k, sizeof k, KEY_EXEC, exe) == 0) {
        r = rds_cmd("HMGET %s status error helper", k);
        if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
            lost = r->element[1]->type == REDIS_REPLY_STRING &&
                   strcmp(r->element[1]->str, LOST_ERROR) == 0;
            if (r->element[2]->type == REDIS_REPLY_STRING)
                snprintf(h, sizeof h, "%s", r->element[2]->str);
        }
        freeReplyObject(r);
    }
    if (helper == NULL && id_valid(h))
        helper = h;
    if (!lost && helper != NULL && lost_helper_stale(helper) == 1) {
        lost_helper(helper, LOST_ERROR);
        lost = 1;
    }
    return lost;
}

/* BLPOP the reply key in slices until wait_ms passed, a reply came or the
 * helper is gone (rpc_gone). Returns the reply's value (a BLPOP reply the
 * caller frees) or NULL with err set. */
static redisReply *rpc_wait(const char *rkey, long long wait_ms,
                            const char *helper, const char *exe, rpc_err *err)
{
    long long end = rpc_now_ms() + wait_ms;

    for (;;) {
        long long left = end - rpc_now_ms(), slice;
        redisReply *rep;

        if (left <= 0)
            break;
        slice = left < RPC_WAIT_SLICE_MS ? left : RPC_WAIT_SLICE_MS;
        rep = rds_cmd_wait(slice + 1000, "BLPOP %s %.3f", rkey,
                           (double)slice / 1000.0);
        if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2)
            return rep;
        if (rep == NULL || rep->type != REDIS_REPLY_NIL) {
            freeReplyObject(rep);
            rpc_err_set(err, RPC_TRANSPORT, SP_E_UNAVAILABLE,
                        "state store unavailable");
            return NULL;
        }
        freeReplyObject(rep);
        if ((helper != NULL || exe != NULL) && rpc_gone(helper, exe)) {
            rpc_err_set(err, RPC_LOST, SP_E_UNAVAILABLE,
                        "the sandbox's helper is gone");
            return NULL;
        }
    }
    rpc_err_set(err, RPC_TRANSPORT, SP_E_UNAVAILABLE,
                "sandbox helper did not answer in time");
    return NULL;
}

int rpc_call(const char *helper, const char *op, const cJSON *args,
             long long wait_ms, const char *exe, rpc_reply *out, rpc_err *err)
{
    char stream[RDS_KEY_MAX], rkey[RDS_KEY_MAX], rid[40], entry[RPC_ENTRY_SIZE];
    char *js = NULL;
    redisReply *rep = NULL;
    int result = -1;

    memset(out, 0, sizeof *out);
    rpc_err_set(err, RPC_OK, SP_OK, "%s", "");
    if (helper != NULL ? key_of(stream, sizeof stream, KEY_HJOBS, helper)
                       : key_of(stream, sizeof stream, KEY_JOBS, NULL)) {
        rpc_err_set(err, RPC_TRANSPORT, SP_E_INTERNAL,
                    "sandbox is on an unknown helper");
        return -1;
    }
    if (id_generate("rid_", rid, sizeof rid) != 0 ||
        key_of(rkey, sizeof rkey, KEY_REPLY, rid) != 0 ||
        (js = cJSON_PrintUnformatted(args)) == NULL) {
        rpc_err_set(err, RPC_TRANSPORT, SP_E_INTERNAL, "out of resources");
        return -1;
    }
    if (rpc_send(stream, op, rid, js, wait_ms, entry) != 0) {
        rpc_err_set(err, RPC_TRANSPORT, SP_E_UNAVAILABLE,
                    "sandbox helper unavailable");
        goto out;
    }
    rep = rpc_wait(rkey, wait_ms, helper, exe, err);
    if (rep == NULL) {
        /* Nobody waits for it any more: a job no helper took (its helper
         * is gone) must not stay in the stream. A helper that has it
         * already drops it at its deadline. */
        freeReplyObject(rds_cmd("XDEL %s %s", stream, entry));
        goto out;
    }
    result = rpc_parse(rep->element[1], out, err);
out:
    if (result != 0)
        rpc_reply_free(out);
    freeReplyObject(rep);
    free(js);
    return result;
}

static const char *rpc_field(const redisReply *h, const char *name)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(h->element[i]->str, name) == 0 &&
            h->element[i + 1]->type == REDIS_REPLY_STRING)
            return h->element[i + 1]->str;
    return NULL;
}

redisReply *rpc_owned_record(http_req *r, int f, const char *id,
                             const char *prefix, const char *noun,
                             const char *parent_field, const char *parent)
{
    char k[RDS_KEY_MAX];
    const char *owner, *in;
    redisReply *h;

    if (!id_valid_typed(id, prefix) ||
        key_of(k, sizeof k, (sp_key_family)f, id) != 0) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "%s not found", noun);
        return NULL;
    }
    h = rds_cmd("HGETALL %s", k);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(h);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return NULL;
    }
    owner = rpc_field(h, "owner");
    in = parent_field ? rpc_field(h, parent_field) : NULL;
    if (owner == NULL || strcmp(owner, r->auth.sub) != 0 ||
        (parent_field && (in == NULL || strcmp(in, parent) != 0))) {
        freeReplyObject(h);
        http_send_error(r, SP_E_NOT_FOUND, NULL, "%s not found", noun);
        return NULL;
    }
    return h;
}
