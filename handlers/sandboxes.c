/* handlers/sandboxes.c: the sandboxes family (DESIGN.md §4): create, list,
 * get (with live usage), delete, extend, chat-session sandboxes, commands
 * and packages. Policy lives here (validation, clamping to the configured
 * maxima, the per-subject maximum, ownership); the helper that owns the
 * sandbox enforces it (sp_rpc.h).
 *
 * Redis keys:
 *   sbx:<id>            hash written by the helper (owner, helper, limits…)
 *   sbxs:<sub>          set of the subject's live sandboxes
 *   session:<sub>:<sid> the sandbox of a chat session
 *   exec:<id>, events:<id>  written by the helper (hd_exec.c) */
#include "sandboxes.h"
#include "sp_auth.h"
#include "sp_buf.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_redis.h"
#include "sp_utf8.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SBXH_CREATE_WAIT_MS 30000
#define SBXH_OP_WAIT_MS     10000
#define SBXH_ENV_MAX        256
#define SBXH_ARGV_MAX       256
#define SBXH_STDIN_MAX      (1024 * 1024)
#define SBXH_METADATA_MAX   16384
#define SBXH_EVENTS_PAGE    1000

/* Atomically add a sandbox to the subject's set unless it is full. */
static const char sbxh_reserve_lua[] =
    "if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end "
    "redis.call('SADD', KEYS[1], ARGV[1]) return 1";

void sbxh_send_rpc_error(http_req *r, sp_status st, const char *msg)
{
    http_send_error(r, st, NULL, "%s", msg);
}

int sbxh_lookup(http_req *r, const char *id, char *helper)
{
    /* Another subject's sandbox is "not found", never "forbidden". */
    sp_status st = rpc_sandbox_helper(r->auth.sub, id, helper);
    if (st != SP_OK)
        http_send_error(r, st, NULL, "%s",
                        st == SP_E_NOT_FOUND ? "sandbox not found"
                                             : "state store unavailable");
    return st == SP_OK ? 0 : -1;
}

static const char *sbxh_field(const redisReply *h, const char *name)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        if (strcmp(h->element[i]->str, name) == 0)
            return h->element[i + 1]->str;
    }
    return NULL;
}

cJSON *sbxh_render(const char *id)
{
    char k[RDS_KEY_MAX], t[32];
    redisReply *h;
    cJSON *o = NULL, *lim, *md;
    const char *v;
    long long created, expires;

    if (rds_key(k, sizeof k, "sbx", id) != 0)
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
    json_time(created, t, sizeof t);
    cJSON_AddStringToObject(o, "created_at", t);
    json_time(expires, t, sizeof t);
    cJSON_AddStringToObject(o, "expires_at", t);
    cJSON_AddNumberToObject(o, "timeout", (double)(expires - time(NULL)));
    lim = cJSON_AddObjectToObject(o, "limits");
    cJSON_AddNumberToObject(lim, "memory_mb",
                            atof((v = sbxh_field(h, "memory_mb")) ? v : "0"));
    cJSON_AddNumberToObject(lim, "cpus",
                            atof((v = sbxh_field(h, "cpus")) ? v : "0"));
    cJSON_AddNumberToObject(lim, "pids",
                            atof((v = sbxh_field(h, "pids")) ? v : "0"));
    cJSON_AddNumberToObject(lim, "disk_mb",
                            atof((v = sbxh_field(h, "disk_mb")) ? v : "0"));
    v = sbxh_field(h, "network");
    cJSON_AddBoolToObject(o, "network", v != NULL && strcmp(v, "1") == 0);
    v = sbxh_field(h, "metadata");
    md = v ? cJSON_Parse(v) : NULL;
    cJSON_AddItemToObject(o, "metadata", md ? md : cJSON_CreateObject());
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

static int sbxh_env_ok(http_req *r, const cJSON *env, const char *field)
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

int sbxh_create(http_req *r, const cJSON *body, char *id_out)
{
    char k[RDS_KEY_MAX], msg[256], count[24];
    const cJSON *lim, *env, *md;
    long long timeout, mem, pids, disk, cpus_milli;
    double cpus_req = 0;
    int network;
    cJSON *args = NULL;
    redisReply *rep = NULL;
    rpc_reply rr;
    sp_status st;
    int result = -1;

    if (json_int(r, body, "timeout", 0, 1, cfg_int(CFG_SP_SANDBOX_MAX_TIMEOUT),
                 cfg_int(CFG_SP_SANDBOX_TIMEOUT), &timeout) != 0 ||
        json_obj(r, body, "limits", &lim) != 0 ||
        json_obj(r, body, "env", &env) != 0 ||
        json_obj(r, body, "metadata", &md) != 0 ||
        json_bool(r, body, "network", 0, &network) != 0)
        return -1;
    if (sbxh_limit(r, lim, "memory_mb", cfg_int(CFG_SP_SANDBOX_MEMORY_MB),
                   cfg_int(CFG_SP_SANDBOX_MAX_MEMORY_MB), &mem) != 0 ||
        sbxh_limit(r, lim, "pids", cfg_int(CFG_SP_SANDBOX_PIDS),
                   cfg_int(CFG_SP_SANDBOX_MAX_PIDS), &pids) != 0 ||
        sbxh_limit(r, lim, "disk_mb", cfg_int(CFG_SP_SANDBOX_DISK_MB),
                   cfg_int(CFG_SP_SANDBOX_MAX_DISK_MB), &disk) != 0)
        return -1;
    cpus_milli = cfg_int(CFG_SP_SANDBOX_CPUS);
    if (lim != NULL && cJSON_GetObjectItemCaseSensitive(lim, "cpus")) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(lim, "cpus");
        cpus_req = cJSON_IsNumber(c) ? c->valuedouble : -1;
        if (!(cpus_req > 0 && cpus_req <= 1024)) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "cpus",
                            "cpus must be a number above 0");
            return -1;
        }
        cpus_milli = (long long)(cpus_req * 1000);
        if (cpus_milli < 10)
            cpus_milli = 10;
    }
    if (cpus_milli > cfg_int(CFG_SP_SANDBOX_MAX_CPUS))
        cpus_milli = cfg_int(CFG_SP_SANDBOX_MAX_CPUS);
    if (env != NULL && sbxh_env_ok(r, env, "env") != 0)
        return -1;
    if (md != NULL) {
        char *s = cJSON_PrintUnformatted(md);
        size_t n = s ? strlen(s) : 0;
        free(s);
        if (n > SBXH_METADATA_MAX) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "metadata",
                            "metadata is larger than %d bytes",
                            SBXH_METADATA_MAX);
            return -1;
        }
    }
    if (rpc_live_helpers() <= 0) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL,
                        "no sandbox helper is running");
        return -1;
    }
    if (id_generate("sbx_", id_out, 65) != 0 ||
        rds_key(k, sizeof k, "sbxs", r->auth.sub) != 0) {
        http_send_error(r, SP_E_INTERNAL, NULL, "could not make an id");
        return -1;
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
    args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "id", id_out);
    cJSON_AddStringToObject(args, "owner", r->auth.sub);
    cJSON_AddNumberToObject(args, "timeout", (double)timeout);
    cJSON_AddNumberToObject(args, "memory_mb", (double)mem);
    cJSON_AddNumberToObject(args, "pids", (double)pids);
    cJSON_AddNumberToObject(args, "disk_mb", (double)disk);
    cJSON_AddNumberToObject(args, "cpus_milli", (double)cpus_milli);
    cJSON_AddBoolToObject(args, "network", network);
    if (env != NULL)
        cJSON_AddItemToObject(args, "env", cJSON_Duplicate(env, 1));
    if (md != NULL)
        cJSON_AddItemToObject(args, "metadata", cJSON_Duplicate(md, 1));
    st = rpc_call(NULL, "create", args, NULL, 0, SBXH_CREATE_WAIT_MS, &rr, msg,
                  sizeof msg);
    if (st != SP_OK) {
        freeReplyObject(rds_cmd("SREM %s %s", k, id_out));
        sbxh_send_rpc_error(r, st, msg);
        goto out;
    }
    rpc_reply_free(&rr);
    result = 0;
out:
    cJSON_Delete(args);
    freeReplyObject(rep);
    return result;
}

static void sbxh_post(http_req *r)
{
    cJSON *body = http_json_body(r, 1), *o;
    char id[65];

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

static void sbxh_list(http_req *r)
{
    char k[RDS_KEY_MAX];
    redisReply *set;
    cJSON *root, *arr;

    rds_key(k, sizeof k, "sbxs", r->auth.sub);
    set = rds_cmd("SMEMBERS %s", k);
    if (set == NULL || set->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(set);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return;
    }
    root = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(root, "sandboxes");
    for (size_t i = 0; i < set->elements; i++) {
        cJSON *o = sbxh_render(set->element[i]->str);
        if (o != NULL)
            cJSON_AddItemToArray(arr, o);
    }
    freeReplyObject(set);
    http_send_json(r, 200, root);
    cJSON_Delete(root);
}

/* Ask the sandbox's helper to do op with args (sandbox id added). */
static sp_status sbxh_op(const char *helper, const char *id, const char *op,
                         cJSON *args, long long wait_ms, rpc_reply *rr,
                         char *msg, size_t msglen)
{
    sp_status st;
    cJSON_AddStringToObject(args, "sandbox", id);
    st = rpc_call(helper, op, args, NULL, 0, wait_ms, rr, msg, msglen);
    cJSON_Delete(args);
    return st;
}

static void sbxh_get(http_req *r)
{
    char helper[65], msg[256];
    cJSON *o;
    rpc_reply rr;

    if (sbxh_lookup(r, r->params[0], helper) != 0)
        return;
    o = sbxh_render(r->params[0]);
    if (o == NULL) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "sandbox not found");
        return;
    }
    if (sbxh_op(helper, r->params[0], "usage", cJSON_CreateObject(),
                SBXH_OP_WAIT_MS, &rr, msg, sizeof msg) == SP_OK) {
        cJSON_DeleteItemFromObject(rr.json, "ok");
        cJSON_AddItemToObject(o, "usage", rr.json);
        rr.json = NULL;
        rpc_reply_free(&rr);
    } else {
        cJSON_AddNullToObject(o, "usage");
    }
    http_send_json(r, 200, o);
    cJSON_Delete(o);
}

static void sbxh_delete(http_req *r)
{
    char helper[65], msg[256];
    rpc_reply rr;
    sp_status st;

    if (sbxh_lookup(r, r->params[0], helper) != 0)
        return;
    st = sbxh_op(helper, r->params[0], "delete", cJSON_CreateObject(),
                 SBXH_CREATE_WAIT_MS, &rr, msg, sizeof msg);
    if (st != SP_OK) {
        sbxh_send_rpc_error(r, st, msg);
        return;
    }
    rpc_reply_free(&rr);
    http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
}

static void sbxh_timeout(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *args, *o;
    char helper[65], msg[256];
    long long timeout;
    rpc_reply rr;
    sp_status st;

    if (body == NULL)
        return;
    if (json_int(r, body, "timeout", 1, 1, cfg_int(CFG_SP_SANDBOX_MAX_TIMEOUT),
                 0, &timeout) != 0 ||
        sbxh_lookup(r, r->params[0], helper) != 0)
        goto out;
    args = cJSON_CreateObject();
    cJSON_AddNumberToObject(args, "timeout", (double)timeout);
    st = sbxh_op(helper, r->params[0], "timeout", args, SBXH_OP_WAIT_MS, &rr,
                 msg, sizeof msg);
    if (st != SP_OK) {
        sbxh_send_rpc_error(r, st, msg);
        goto out;
    }
    rpc_reply_free(&rr);
    o = sbxh_render(r->params[0]);
    http_send_json(r, 200, o);
    cJSON_Delete(o);
out:
    cJSON_Delete(body);
}

/* ---- chat sessions ---------------------------------------------------- */

static int sbxh_session_key(const char *sub, const char *sid, char *k,
                            size_t klen)
{
    char base[RDS_KEY_MAX];
    if (!id_valid(sid) || rds_key(base, sizeof base, "session", sub) != 0)
        return -1;
    return snprintf(k, klen, "%s:%s", base, sid) < (int)klen ? 0 : -1;
}

/* The live sandbox mapped to the session, into id_out; 1 found, 0 none,
 * -1 Redis failed. A mapping to a sandbox that ended is dropped. */
static int sbxh_session_get(const char *sub, const char *k, char *id_out)
{
    redisReply *rep = rds_cmd("GET %s", k);
    char sk[RDS_KEY_MAX];
    int found = 0;

    if (rep == NULL)
        return -1;
    if (rep->type == REDIS_REPLY_STRING && id_valid(rep->str) &&
        rds_key(sk, sizeof sk, "sbx", rep->str) == 0) {
        redisReply *own = rds_cmd("HGET %s owner", sk);
        if (own != NULL && own->type == REDIS_REPLY_STRING &&
            strcmp(own->str, sub) == 0) {
            snprintf(id_out, 65, "%s", rep->str);
            found = 1;
        }
        freeReplyObject(own);
    }
    freeReplyObject(rep);
    return found;
}

int sbxh_session_sandbox(http_req *r, const char *session_id, char *id_out)
{
    char k[RDS_KEY_MAX];
    if (sbxh_session_key(r->auth.sub, session_id, k, sizeof k) != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "session_id",
                        "session_id must match [A-Za-z0-9_-]{1,64}");
        return -1;
    }
    if (sbxh_session_get(r->auth.sub, k, id_out) != 1) {
        http_send_error(r, SP_E_NOT_FOUND, "session_id",
                        "session has no sandbox; initialize it first");
        return -1;
    }
    return 0;
}

static void sbxh_session_init(http_req *r)
{
    cJSON *body = http_json_body(r, 1), *o = NULL, *root;
    char k[RDS_KEY_MAX], lock[RDS_KEY_MAX + 8], id[65];
    redisReply *rep = NULL;
    int found, created = 0;

    if (body == NULL)
        return;
    if (sbxh_session_key(r->auth.sub, r->params[0], k, sizeof k) != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "session_id",
                        "session_id must match [A-Za-z0-9_-]{1,64}");
        goto out;
    }
    snprintf(lock, sizeof lock, "%s:lock", k);
    /* One creator at a time per session; the others wait for its result
     * (bounded), so concurrent calls all get the same sandbox. */
    for (int i = 0; i < 400; i++) {
        found = sbxh_session_get(r->auth.sub, k, id);
        if (found != 0)
            break;
        freeReplyObject(rep);
        rep = rds_cmd("SET %s 1 NX EX 60", lock);
        if (rep == NULL) {
            found = -1;
            break;
        }
        if (rep->type == REDIS_REPLY_STATUS) {
            if (sbxh_create(r, body, id) != 0) {
                freeReplyObject(rds_cmd("DEL %s", lock));
                goto out;
            }
            freeReplyObject(rds_cmd("SET %s %s", k, id));
            freeReplyObject(rds_cmd("DEL %s", lock));
            found = created = 1;
            break;
        }
        usleep(100000);
    }
    if (found <= 0) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL,
                        found < 0 ? "state store unavailable"
                                  : "session is being initialized; retry");
        goto out;
    }
    o = sbxh_render(id);
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "session_id", r->params[0]);
    cJSON_AddStringToObject(root, "sandbox_id", id);
    cJSON_AddBoolToObject(root, "created", created);
    cJSON_AddItemToObject(root, "sandbox", o ? o : cJSON_CreateNull());
    http_send_json(r, created ? 201 : 200, root);
    cJSON_Delete(root);
out:
    freeReplyObject(rep);
    cJSON_Delete(body);
}

/* ---- commands --------------------------------------------------------- */

static int sbxh_argv_ok(http_req *r, const cJSON *argv)
{
    const cJSON *it;
    int n = 0;
    if (!cJSON_IsArray(argv) || cJSON_GetArraySize(argv) == 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "argv",
                        "argv must be a non-empty array of strings");
        return -1;
    }
    cJSON_ArrayForEach(it, argv)
    {
        if (!cJSON_IsString(it) || strlen(it->valuestring) > 32768 ||
            ++n > SBXH_ARGV_MAX) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "argv",
                            "argv must be at most %d strings of <= 32 KiB",
                            SBXH_ARGV_MAX);
            return -1;
        }
    }
    return 0;
}

/* Start argv in the sandbox. Sync: the response is the result. */
static void sbxh_run(http_req *r, const char *helper, cJSON *args, int bg,
                     long long timeout)
{
    char exe[65], msg[256];
    rpc_reply rr;
    sp_status st;
    cJSON *o;

    if (id_generate("exe_", exe, sizeof exe) != 0) {
        cJSON_Delete(args);
        http_send_error(r, SP_E_INTERNAL, NULL, "could not make an id");
        return;
    }
    cJSON_AddStringToObject(args, "id", exe);
    cJSON_AddNumberToObject(args, "timeout", (double)timeout);
    cJSON_AddBoolToObject(args, "background", bg);
    st = sbxh_op(helper, r->params[0], "exec", args,
                 bg ? SBXH_OP_WAIT_MS : (timeout * 1000 + SBXH_OP_WAIT_MS), &rr,
                 msg, sizeof msg);
    if (st != SP_OK) {
        sbxh_send_rpc_error(r, st, msg);
        return;
    }
    if (bg) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "execution_id", exe);
        cJSON_AddStringToObject(o, "status", "running");
        http_send_json(r, 202, o);
        cJSON_Delete(o);
    } else if (rr.data != NULL) {
        /* The helper encoded the result itself (any bytes in output). */
        http_send_raw(r, 200, "application/json; charset=utf-8", rr.data,
                      rr.len);
    } else {
        http_send_error(r, SP_E_INTERNAL, NULL, "helper sent no result");
    }
    rpc_reply_free(&rr);
}

static void sbxh_commands(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *args = NULL;
    const cJSON *argv = NULL, *env;
    const char *cmd, *cwd, *in;
    char helper[65];
    long long timeout, cols, rows;
    int bg, pty, in_open;

    if (body == NULL)
        return;
    if (json_str(r, body, "cmd", 0, 65536, &cmd) != 0 ||
        json_str(r, body, "cwd", 0, 4096, &cwd) != 0 ||
        json_str(r, body, "stdin", 0, SBXH_STDIN_MAX, &in) != 0 ||
        json_obj(r, body, "env", &env) != 0 ||
        json_int(r, body, "timeout", 0, 1, cfg_int(CFG_SP_COMMAND_MAX_TIMEOUT),
                 cfg_int(CFG_SP_COMMAND_TIMEOUT), &timeout) != 0 ||
        json_bool(r, body, "background", 0, &bg) != 0 ||
        json_bool(r, body, "pty", 0, &pty) != 0 ||
        json_bool(r, body, "stdin_open", 0, &in_open) != 0 ||
        json_int(r, body, "cols", 0, 1, 1000, 80, &cols) != 0 ||
        json_int(r, body, "rows", 0, 1, 1000, 24, &rows) != 0)
        goto out;
    argv = cJSON_GetObjectItemCaseSensitive(body, "argv");
    if ((cmd == NULL) == (argv == NULL)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "cmd",
                        "give exactly one of cmd and argv");
        goto out;
    }
    if ((argv != NULL && sbxh_argv_ok(r, argv) != 0) ||
        (env != NULL && sbxh_env_ok(r, env, "env") != 0))
        goto out;
    if (cwd != NULL && cwd[0] != '/') {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "cwd",
                        "cwd must be an absolute path");
        goto out;
    }
    if (sbxh_lookup(r, r->params[0], helper) != 0)
        goto out;
    args = cJSON_CreateObject();
    if (argv != NULL) {
        cJSON_AddItemToObject(args, "argv", cJSON_Duplicate(argv, 1));
    } else {
        const char *sh[] = {"/bin/sh", "-c", cmd};
        cJSON_AddItemToObject(args, "argv", cJSON_CreateStringArray(sh, 3));
    }
    if (cwd != NULL)
        cJSON_AddStringToObject(args, "cwd", cwd);
    if (env != NULL)
        cJSON_AddItemToObject(args, "env", cJSON_Duplicate(env, 1));
    if (in != NULL)
        cJSON_AddStringToObject(args, "stdin", in);
    cJSON_AddBoolToObject(args, "stdin_open", in_open);
    cJSON_AddBoolToObject(args, "pty", pty);
    cJSON_AddNumberToObject(args, "cols", (double)cols);
    cJSON_AddNumberToObject(args, "rows", (double)rows);
    sbxh_run(r, helper, args, bg, timeout);
out:
    cJSON_Delete(body);
}

/* Check that execution params[1] belongs to sandbox params[0] and to the
 * caller. Returns 0 or -1 (404 sent). */
static int sbxh_exec_lookup(http_req *r, char *helper)
{
    char k[RDS_KEY_MAX];
    redisReply *rep;
    int ok;

    if (sbxh_lookup(r, r->params[0], helper) != 0)
        return -1;
    if (!id_valid_typed(r->params[1], "exe_") ||
        rds_key(k, sizeof k, "exec", r->params[1]) != 0) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "execution not found");
        return -1;
    }
    rep = rds_cmd("HMGET %s owner sandbox", k);
    ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
         rep->element[0]->type == REDIS_REPLY_STRING &&
         rep->element[1]->type == REDIS_REPLY_STRING &&
         strcmp(rep->element[0]->str, r->auth.sub) == 0 &&
         strcmp(rep->element[1]->str, r->params[0]) == 0;
    freeReplyObject(rep);
    if (!ok)
        http_send_error(r, SP_E_NOT_FOUND, NULL, "execution not found");
    return ok ? 0 : -1;
}

static void sbxh_exec_get(http_req *r)
{
    char helper[65], k[RDS_KEY_MAX];
    redisReply *h;
    cJSON *o;
    const char *v;

    if (sbxh_exec_lookup(r, helper) != 0)
        return;
    rds_key(k, sizeof k, "exec", r->params[1]);
    h = rds_cmd("HGETALL %s", k);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(h);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "execution_id", r->params[1]);
    cJSON_AddStringToObject(o, "sandbox_id", r->params[0]);
    cJSON_AddStringToObject(o, "status",
                            (v = sbxh_field(h, "status")) ? v : "unknown");
    if ((v = sbxh_field(h, "exit_code")) != NULL)
        cJSON_AddNumberToObject(o, "exitCode", atof(v));
    if ((v = sbxh_field(h, "duration_ms")) != NULL)
        cJSON_AddNumberToObject(o, "duration_ms", atof(v));
    if ((v = sbxh_field(h, "truncated")) != NULL)
        cJSON_AddBoolToObject(o, "truncated", strcmp(v, "1") == 0);
    if ((v = sbxh_field(h, "error")) != NULL)
        cJSON_AddStringToObject(o, "error", v);
    freeReplyObject(h);
    http_send_json(r, 200, o);
    cJSON_Delete(o);
}

/* GET …/commands/{exe}/output?after=<event id>: the events so far, as JSON
 * (for clients without SSE). Output bytes are made valid UTF-8. */
static void sbxh_exec_output(http_req *r)
{
    char helper[65], k[RDS_KEY_MAX], after[64] = "-", start[80];
    redisReply *rep;
    sp_buf b;
    const char *last = NULL;

    if (sbxh_exec_lookup(r, helper) != 0)
        return;
    if (http_query(r, "after", after, sizeof after) < 0 ||
        strspn(after, "0123456789-") != strlen(after)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "after",
                        "after must be an event id");
        return;
    }
    snprintf(start, sizeof start, "%s%s", strcmp(after, "-") ? "(" : "", after);
    rds_key(k, sizeof k, "events", r->params[1]);
    rep = rds_cmd("XRANGE %s %s + COUNT %d", k, start, SBXH_EVENTS_PAGE);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return;
    }
    buf_init(&b, (size_t)64 << 20);
    buf_puts(&b, "{\"events\":[");
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i], *f = e->element[1];
        const char *type = "unknown";
        const redisReply *data = NULL;
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            if (strcmp(f->element[j]->str, "type") == 0)
                type = f->element[j + 1]->str;
            else if (strcmp(f->element[j]->str, "data") == 0)
                data = f->element[j + 1];
        }
        last = e->element[0]->str;
        buf_printf(&b,
                   "%s{\"id\":\"%s\",\"type\":\"%s\",\"data\":", i ? "," : "",
                   last, type);
        if (data == NULL)
            buf_puts(&b, "null");
        else if (strcmp(type, "stdout") == 0 || strcmp(type, "stderr") == 0)
            utf8_json_string((const unsigned char *)data->str, data->len, &b);
        else
            buf_append(&b, data->str, data->len); /* helper-made JSON */
        buf_puts(&b, "}");
    }
    buf_printf(&b, "],\"next\":\"%s\"}", last ? last : after);
    http_send_raw(r, 200, "application/json; charset=utf-8", b.data, b.len);
    buf_free(&b);
    freeReplyObject(rep);
}

static void sbxh_exec_ctl(http_req *r, const char *op)
{
    cJSON *body = http_json_body(r, 0), *args = cJSON_CreateObject();
    char helper[65], msg[256];
    rpc_reply rr;
    sp_status st;

    if (body == NULL)
        goto out;
    if (strcmp(op, "stdin") == 0) {
        const char *data;
        int eof;
        if (json_str(r, body, "data", 0, SBXH_STDIN_MAX, &data) != 0 ||
            json_bool(r, body, "eof", 0, &eof) != 0)
            goto out;
        if (data != NULL)
            cJSON_AddStringToObject(args, "data", data);
        cJSON_AddBoolToObject(args, "eof", eof);
    } else if (strcmp(op, "signal") == 0) {
        static const struct {
            const char *name;
            int sig;
        } sigs[] = {
            {"SIGTERM", SIGTERM}, {"SIGKILL", SIGKILL}, {"SIGINT", SIGINT},
            {"SIGHUP", SIGHUP},   {"SIGQUIT", SIGQUIT}, {"SIGUSR1", SIGUSR1},
            {"SIGUSR2", SIGUSR2}, {"SIGSTOP", SIGSTOP}, {"SIGCONT", SIGCONT}};
        const char *name;
        int sig = 0;
        if (json_str(r, body, "signal", 1, 16, &name) != 0)
            goto out;
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
            if (strcmp(name, sigs[i].name) == 0 ||
                strcmp(name, sigs[i].name + 3) == 0)
                sig = sigs[i].sig;
        }
        if (sig == 0) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "signal",
                            "signal must be one of TERM, KILL, INT, HUP, "
                            "QUIT, USR1, USR2, STOP, CONT");
            goto out;
        }
        cJSON_AddNumberToObject(args, "signal", sig);
    } else {
        long long cols, rows;
        if (json_int(r, body, "cols", 1, 1, 1000, 0, &cols) != 0 ||
            json_int(r, body, "rows", 1, 1, 1000, 0, &rows) != 0)
            goto out;
        cJSON_AddNumberToObject(args, "cols", (double)cols);
        cJSON_AddNumberToObject(args, "rows", (double)rows);
    }
    if (sbxh_exec_lookup(r, helper) != 0)
        goto out;
    cJSON_AddStringToObject(args, "exe", r->params[1]);
    st = sbxh_op(helper, r->params[0], op, args, SBXH_OP_WAIT_MS, &rr, msg,
                 sizeof msg);
    args = NULL;
    if (st != SP_OK) {
        sbxh_send_rpc_error(r, st, msg);
        goto out;
    }
    rpc_reply_free(&rr);
    http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
out:
    cJSON_Delete(args);
    cJSON_Delete(body);
}

static void sbxh_exec_stdin(http_req *r)
{
    sbxh_exec_ctl(r, "stdin");
}

static void sbxh_exec_signal(http_req *r)
{
    sbxh_exec_ctl(r, "signal");
}

static void sbxh_exec_resize(http_req *r)
{
    sbxh_exec_ctl(r, "resize");
}

/* ---- packages --------------------------------------------------------- */

/* A package spec: name[extras][==version] style characters only, and never
 * starting with '-' so that it cannot be read as an option. */
static int sbxh_pkg_ok(const char *p)
{
    if (p[0] == '\0' || p[0] == '-' || strlen(p) > 214)
        return 0;
    return strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._-@/=<>~^[],!*") == strlen(p);
}

static void sbxh_packages(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *args, *argv;
    const cJSON *pk, *it;
    const char *mgr;
    char helper[65], k[RDS_KEY_MAX];
    redisReply *net = NULL;

    if (body == NULL)
        return;
    if (json_str(r, body, "manager", 1, 8, &mgr) != 0)
        goto out;
    if (strcmp(mgr, "pip") != 0 && strcmp(mgr, "npm") != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "manager",
                        "manager must be pip or npm");
        goto out;
    }
    pk = cJSON_GetObjectItemCaseSensitive(body, "packages");
    if (!cJSON_IsArray(pk) || cJSON_GetArraySize(pk) < 1 ||
        cJSON_GetArraySize(pk) > 64) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "packages",
                        "packages must be an array of 1 to 64 names");
        goto out;
    }
    cJSON_ArrayForEach(it, pk)
    {
        if (!cJSON_IsString(it) || !sbxh_pkg_ok(it->valuestring)) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "packages",
                            "invalid package name");
            goto out;
        }
    }
    if (sbxh_lookup(r, r->params[0], helper) != 0)
        goto out;
    rds_key(k, sizeof k, "sbx", r->params[0]);
    net = rds_cmd("HGET %s network", k);
    if (net == NULL || net->type != REDIS_REPLY_STRING ||
        strcmp(net->str, "1") != 0) {
        http_send_error(r, SP_E_CONFLICT, "network",
                        "installing packages needs network: create the "
                        "sandbox with \"network\": true");
        goto out;
    }
    args = cJSON_CreateObject();
    argv = cJSON_AddArrayToObject(args, "argv");
    if (strcmp(mgr, "pip") == 0) {
        const char *pre[] = {"python3",
                             "-m",
                             "pip",
                             "install",
                             "--user",
                             "--no-input",
                             "--disable-pip-version-check",
                             "--"};
        for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
            cJSON_AddItemToArray(argv, cJSON_CreateString(pre[i]));
    } else {
        const char *pre[] = {"npm",        "install",    "--prefix",
                             "/workspace", "--no-audit", "--no-fund",
                             "--"};
        for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
            cJSON_AddItemToArray(argv, cJSON_CreateString(pre[i]));
    }
    cJSON_ArrayForEach(it, pk)
        cJSON_AddItemToArray(argv, cJSON_CreateString(it->valuestring));
    sbxh_run(r, helper, args, 0, 600);
out:
    freeReplyObject(net);
    cJSON_Delete(body);
}

static const http_route sbxh_routes[] = {
    {"POST", "/sandboxes", sbxh_post, AUTH_REQUIRED},
    {"GET", "/sandboxes", sbxh_list, AUTH_REQUIRED},
    {"GET", "/sandboxes/*", sbxh_get, AUTH_REQUIRED},
    {"DELETE", "/sandboxes/*", sbxh_delete, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/timeout", sbxh_timeout, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/commands", sbxh_commands, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/commands/*", sbxh_exec_get, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/commands/*/output", sbxh_exec_output, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/commands/*/stdin", sbxh_exec_stdin, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/commands/*/signal", sbxh_exec_signal, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/commands/*/resize", sbxh_exec_resize, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/packages", sbxh_packages, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/files", sbxh_files_get, AUTH_REQUIRED},
    {"PUT", "/sandboxes/*/files", sbxh_files_put, AUTH_REQUIRED},
    {"DELETE", "/sandboxes/*/files", sbxh_files_delete, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/files", sbxh_files_post, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/tree", sbxh_tree, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/dirs", sbxh_dirs, AUTH_REQUIRED},
    {"POST", "/api/sessions/*/initialize", sbxh_session_init, AUTH_REQUIRED},
    {"POST", "/api/sandboxes/upload", sbxh_session_upload, AUTH_REQUIRED},
};

int main(void)
{
    return http_main("sandboxes", sbxh_routes,
                     sizeof sbxh_routes / sizeof sbxh_routes[0], NULL);
}
