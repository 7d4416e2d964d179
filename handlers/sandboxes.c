/* handlers/sandboxes.c: the sandboxes family (docs/DESIGN.md §4): create, list,
 * get (with live usage), delete, extend (chat-session sandboxes are in
 * sandbox_sessions.c, commands and packages in sandbox_commands.c). Policy
 * lives here (validation, clamping to the configured maxima, the per-subject
 * maximum, ownership); the helper that owns the sandbox enforces it (sp_rpc.h).
 *
 * Redis keys:
 *   sbx:<id>            hash written by the helper (owner, helper, limits…)
 *   sbxs:<sub>          set of the subject's live sandboxes
 *   exec:<id>, events:<id>  written by the helper (hd_exec.c) */
#include "sandboxes.h"
#include "e2b.h"
#include "sp_tspec.h"
#include "sp_auth.h"
#include "sp_buf.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"
#include "sp_utf8.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SBXH_ENV_MAX      256
#define SBXH_METADATA_MAX 16384

/* Atomically add a sandbox to the subject's set unless it is full. */
static const char sbxh_reserve_lua[] =
    "if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end "
    "redis.call('SADD', KEYS[1], ARGV[1]) return 1";
/* The id reserved, replaced by the one the helper gave (one place). */
static const char sbxh_swap_lua[] = "redis.call('SREM', KEYS[1], ARGV[1]) "
                                    "redis.call('SADD', KEYS[1], ARGV[2])";

int sbxh_lookup(http_req *r, const char *id, char *helper)
{
    return rpc_sandbox_of(r, id, NULL, helper);
}

const char *sbxh_field(const redisReply *h, const char *name)
{
    return rds_hfield(h, name);
}

cJSON *sbxh_render(const char *id)
{
    char k[RDS_KEY_MAX], t[JSON_TIME_SIZE];
    redisReply *h;
    cJSON *o = NULL, *lim, *md;
    const char *v;
    long long created, expires, paused;
    struct timespec now;

    if (key_of(k, sizeof k, KEY_SBX, id) != 0)
        return NULL;
    h = rds_cmd("HGETALL %s", k);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements == 0)
        goto out;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    v = sbxh_field(h, "status");
    cJSON_AddStringToObject(o, "status", v ? v : "unknown");
    created = atoll((v = sbxh_field(h, "created")) ? v : "0");
    expires = atoll((v = sbxh_field(h, "expires_at")) ? v : "0");
    paused = atoll((v = sbxh_field(h, "paused_at")) ? v : "0");
    json_time(created, t, sizeof t);
    cJSON_AddStringToObject(o, "created_at", t);
    json_time(expires, t, sizeof t);
    cJSON_AddStringToObject(o, "expires_at", t);
    /* Paused, the time left stands still (resume moves expires_at on).
     * The clock is the one the helper reads (time() may read a coarser
     * one that lags it, which made 120 s read as 121). */
    clock_gettime(CLOCK_REALTIME, &now);
    cJSON_AddNumberToObject(o, "timeout",
                            (double)(expires - (paused ? paused : now.tv_sec)));
    json_time(paused, t, sizeof t);
    if (paused != 0)
        cJSON_AddStringToObject(o, "paused_at", t);
    else
        cJSON_AddNullToObject(o, "paused_at");
    lim = cJSON_AddObjectToObject(o, "limits");
    cJSON_AddNumberToObject(lim, "memory_mb",
                            atof((v = sbxh_field(h, "memory_mb")) ? v : "0"));
    cJSON_AddNumberToObject(lim, "cpus",
                            atof((v = sbxh_field(h, "cpus")) ? v : "0"));
    cJSON_AddNumberToObject(lim, "pids",
                            atof((v = sbxh_field(h, "pids")) ? v : "0"));
    cJSON_AddNumberToObject(lim, "disk_mb",
                            atof((v = sbxh_field(h, "disk_mb")) ? v : "0"));
    sbxh_network_render(o, h);
    v = sbxh_field(h, "template");
    cJSON_AddStringToObject(o, "template", v ? v : "host");
    sbxh_render_preview(o, id, sbxh_field(h, "public"));
    v = sbxh_field(h, "metadata");
    md = v ? cJSON_Parse(v) : NULL;
    cJSON_AddItemToObject(o, "metadata", md ? md : cJSON_CreateObject());
    /* The same sandbox in E2B's names (GET /sandboxes/{id} is shared). */
    e2b_sandbox_fields(o, h, id);
out:
    freeReplyObject(h);
    return o;
}

/* Clamp a requested limit to [1, max]; absent → def. Returns -1 (sent)
 * for a value that is not a positive number. */
static int sbxh_limit(http_req *r, const cJSON *lim, const char *name,
                      long long def, long long max, long long *out)
{
    if (json_int(r, lim, name, 0, 1, (long long)1 << 40, def, out) != 0)
        return -1;
    if (*out > max)
        *out = max;
    return 0;
}

int sbxh_env_ok(http_req *r, const cJSON *env, const char *field)
{
    const cJSON *it;
    int n = 0;
    cJSON_ArrayForEach(it, env)
    {
        const char *c = it->string;
        int ok = cJSON_IsString(it) &&
                 (c[0] == '_' || (c[0] >= 'A' && c[0] <= 'Z') ||
                  (c[0] >= 'a' && c[0] <= 'z'));
        for (; ok && *c; c++)
            ok = *c == '_' || (*c >= 'A' && *c <= 'Z') ||
                 (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9');
        if (!ok || ++n > SBXH_ENV_MAX || strlen(it->string) > 256 ||
            strlen(it->valuestring) > 32768) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, field,
                            "%s must map names [A-Za-z_][A-Za-z0-9_]* to "
                            "strings (at most %d, values <= 32 KiB)",
                            field, SBXH_ENV_MAX);
            return -1;
        }
    }
    return 0;
}

int sbxh_spec(http_req *r, const cJSON *body, hc_sandbox_req *q)
{
    const cJSON *lim, *c;

    if (json_int(r, body, "timeout", 0, 1, cfg_int(CFG_SP_SANDBOX_MAX_TIMEOUT),
                 cfg_int(CFG_SP_SANDBOX_TIMEOUT), &q->timeout_s) != 0 ||
        json_obj(r, body, "limits", &lim) != 0 ||
        json_obj(r, body, "env", &q->env) != 0 ||
        json_obj(r, body, "metadata", &q->metadata) != 0 ||
        sbxh_network_spec(r, body, q) != 0 ||
        json_bool(r, body, "public", 0, &q->public_ports) != 0 ||
        json_str(r, body, "template", 0, TS_NAME_MAX, &q->template_name) != 0)
        return -1;
    if (q->template_name != NULL && strcmp(q->template_name, "host") != 0 &&
        !ts_name_valid(q->template_name)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "template",
                        "template must be a template's name "
                        "([a-z0-9][a-z0-9._-]*)");
        return -1;
    }
    if (sbxh_limit(r, lim, "memory_mb", cfg_int(CFG_SP_SANDBOX_MEMORY_MB),
                   cfg_int(CFG_SP_SANDBOX_MAX_MEMORY_MB), &q->memory_mb) != 0 ||
        sbxh_limit(r, lim, "pids", cfg_int(CFG_SP_SANDBOX_PIDS),
                   cfg_int(CFG_SP_SANDBOX_MAX_PIDS), &q->pids) != 0 ||
        sbxh_limit(r, lim, "disk_mb", cfg_int(CFG_SP_SANDBOX_DISK_MB),
                   cfg_int(CFG_SP_SANDBOX_MAX_DISK_MB), &q->disk_mb) != 0)
        return -1;
    q->cpus_milli = cfg_int(CFG_SP_SANDBOX_CPUS);
    if (lim != NULL && (c = cJSON_GetObjectItemCaseSensitive(lim, "cpus"))) {
        double cpus_req = cJSON_IsNumber(c) ? c->valuedouble : -1;
        if (!(cpus_req > 0 && cpus_req <= 1024)) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "cpus",
                            "cpus must be a number above 0");
            return -1;
        }
        q->cpus_milli = (long long)(cpus_req * 1000);
        if (q->cpus_milli < 10)
            q->cpus_milli = 10;
    }
    if (q->cpus_milli > cfg_int(CFG_SP_SANDBOX_MAX_CPUS))
        q->cpus_milli = cfg_int(CFG_SP_SANDBOX_MAX_CPUS);
    if (q->env != NULL && sbxh_env_ok(r, q->env, "env") != 0)
        return -1;
    if (q->metadata != NULL) {
        char *s = cJSON_PrintUnformatted(q->metadata);
        size_t n = s ? strlen(s) : 0;
        free(s);
        if (n > SBXH_METADATA_MAX) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "metadata",
                            "metadata is larger than %d bytes",
                            SBXH_METADATA_MAX);
            return -1;
        }
    }
    return 0;
}

int sbxh_create(http_req *r, const cJSON *body, char *id_out)
{
    char k[RDS_KEY_MAX], count[RDS_NUM_SIZE], made[SP_ID_SIZE];
    hc_sandbox_req q = {.id = id_out, .owner = r->auth.sub};
    redisReply *rep = NULL;
    sbxh_from from = {0};
    sbxh_ws ws = {0};
    rpc_err err;
    int result = -1;

    if (sbxh_spec(r, body, &q) != 0 ||
        sbxh_snapshot_spec(r, body, &q, &from) != 0 ||
        rpc_need_helper(r) != 0)
        goto out;
    if (id_generate_sandbox(id_out, SP_ID_SIZE) != 0 ||
        key_of(k, sizeof k, KEY_SBXS_OF_OWNER, r->auth.sub) != 0) {
        http_send_error(r, SP_E_INTERNAL, NULL, "could not make an id");
        goto out;
    }
    snprintf(count, sizeof count, "%lld",
             cfg_int(CFG_SP_SANDBOX_MAX_PER_SUBJECT));
    rep = rds_cmd("EVAL %s 1 %s %s %s", sbxh_reserve_lua, k, id_out, count);
    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    if (rep->integer == 0) {
        http_send_error(r, SP_E_RATE_LIMITED, NULL,
                        "at most %s live sandboxes per subject", count);
        goto out;
    }
    /* A workspace is held before anything is made: a second holder is
     * 409 at once. */
    if (sbxh_ws_hold(r, body, id_out, &ws) != 0) {
        freeReplyObject(rds_cmd("SREM %s %s", k, id_out));
        goto out;
    }
    if (hc_create(&q, made, &err) != 0) {
        freeReplyObject(rds_cmd("SREM %s %s", k, id_out));
        sbxh_ws_unhold(r->auth.sub, &ws);
        http_send_rpc_error(r, &err, q.layer_fill ? "snapshot" : NULL);
        goto out;
    }
    if (strcmp(made, id_out) != 0) {
        freeReplyObject(
            rds_cmd("EVAL %s 1 %s %s %s", sbxh_swap_lua, k, id_out, made));
        snprintf(id_out, SP_ID_SIZE, "%s", made);
    }
    /* Its workspace restored before the answer, so before any command; a
     * sandbox that cannot have it is not left behind. */
    if (ws.name[0] != '\0' && sbxh_ws_attach(r, id_out, &ws) != 0) {
        char helper[SP_ID_SIZE];
        if (rpc_sandbox_helper(r->auth.sub, id_out, helper) == SP_OK &&
            hc_delete(helper, id_out, &err) != 0)
            log_warn("sandbox %s: delete after a failed restore failed",
                     id_out);
        sbxh_ws_unhold(r->auth.sub, &ws);
        goto out;
    }
    result = 0;
out:
    cJSON_Delete((cJSON *)q.netpol);
    freeReplyObject(rep);
    return result;
}

void sbxh_post(http_req *r)
{
    cJSON *body = http_json_body(r, 1), *o;
    char id[SP_ID_SIZE];

    if (body == NULL)
        return;
    if (sbxh_create(r, body, id) == 0) {
        o = sbxh_render(id);
        if (o != NULL)
            http_send_json(r, 201, o);
        else
            http_send_error(r, SP_E_INTERNAL, NULL, "sandbox vanished");
        cJSON_Delete(o);
    }
    cJSON_Delete(body);
}

void sbxh_send_set(http_req *r, const char *key, const char *field, size_t max,
                   sbxh_render_fn render, const void *arg)
{
    redisReply *set = rds_cmd("SMEMBERS %s", key);
    cJSON *root, *arr;

    if (set == NULL || set->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(set);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return;
    }
    root = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(root, field);
    for (size_t i = 0; i < set->elements && i < max; i++) {
        cJSON *o = set->element[i]->type == REDIS_REPLY_STRING
                       ? render(set->element[i]->str, arg)
                       : NULL;
        if (o != NULL)
            cJSON_AddItemToArray(arr, o);
    }
    freeReplyObject(set);
    http_send_json(r, 200, root);
    cJSON_Delete(root);
}

static cJSON *sbxh_render_item(const char *id, const void *arg)
{
    (void)arg;
    return sbxh_render(id);
}

void sbxh_list(http_req *r)
{
    char k[RDS_KEY_MAX];

    key_of(k, sizeof k, KEY_SBXS_OF_OWNER, r->auth.sub);
    sbxh_send_set(r, k, "sandboxes", (size_t)-1, sbxh_render_item, NULL);
}

void sbxh_get(http_req *r)
{
    char helper[SP_ID_SIZE];
    cJSON *o, *usage;
    rpc_err err;

    if (sbxh_lookup(r, r->params[0], helper) != 0)
        return;
    o = sbxh_render(r->params[0]);
    if (o == NULL) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "sandbox not found");
        return;
    }
    /* Usage is live: null when the helper cannot tell now. */
    if (hc_usage(helper, r->params[0], &usage, &err) == 0)
        cJSON_AddItemToObject(o, "usage", usage);
    else
        cJSON_AddNullToObject(o, "usage");
    http_send_json(r, 200, o);
    cJSON_Delete(o);
}

void sbxh_delete(http_req *r)
{
    char helper[SP_ID_SIZE];
    rpc_err err;

    if (sbxh_lookup(r, r->params[0], helper) != 0 ||
        sbxh_ws_before_end(r, r->params[0], helper, 1) != 0)
        return;
    if (hc_delete(helper, r->params[0], &err) != 0) {
        http_send_rpc_error(r, &err, NULL);
        return;
    }
    http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
}

void sbxh_timeout(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *o;
    char helper[SP_ID_SIZE];
    long long timeout;
    rpc_err err;

    if (body == NULL)
        return;
    if (json_int(r, body, "timeout", 1, 1, cfg_int(CFG_SP_SANDBOX_MAX_TIMEOUT),
                 0, &timeout) != 0 ||
        sbxh_lookup(r, r->params[0], helper) != 0)
        goto out;
    if (hc_timeout(helper, r->params[0], timeout, &err) != 0) {
        http_send_rpc_error(r, &err, NULL);
        goto out;
    }
    o = sbxh_render(r->params[0]);
    http_send_json(r, 200, o);
    cJSON_Delete(o);
out:
    cJSON_Delete(body);
}
