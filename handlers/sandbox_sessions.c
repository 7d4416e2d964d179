/* handlers/sandbox_sessions.c: the sandboxes family's chat sessions: one
 * sandbox per (subject, session id), made by POST /api/sessions/{id}/
 * initialize or by the first chat (sp-chat links this file), of
 * SP_SESSION_TEMPLATE with /uploaded_files made by its root; each
 * initialize, upload and chat pushes its expiry to at least
 * SP_SESSION_IDLE from now, so it ends after that long without activity.
 *
 * Redis keys: session:<sub>:<sid> (the sandbox's id), and
 * session:<sub>:<sid>:lock while one request makes it. */
#include "sandboxes.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int sbxh_session_key(const char *sub, const char *sid, char *k,
                            size_t klen)
{
    return key_of2(k, klen, KEY_SESSION, sub, sid);
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
        key_of(sk, sizeof sk, KEY_SBX, rep->str) == 0) {
        redisReply *own = rds_cmd("HGET %s owner", sk);
        if (own != NULL && own->type == REDIS_REPLY_STRING &&
            strcmp(own->str, sub) == 0) {
            snprintf(id_out, SP_ID_SIZE, "%s", rep->str);
            found = 1;
        }
        freeReplyObject(own);
    }
    freeReplyObject(rep);
    return found;
}

/* The helper of sandbox id (into helper, SP_ID_SIZE), its expiry (Unix
 * seconds) and whether it has a template's root: 0, or -1 when Redis
 * cannot say. */
static int sbxh_helper_of(const char *id, char *helper, long long *expires,
                          int *tpl)
{
    char k[RDS_KEY_MAX];
    redisReply *rep;
    int result = -1;

    if (key_of(k, sizeof k, KEY_SBX, id) != 0)
        return -1;
    rep = rds_cmd("HMGET %s helper expires_at template", k);
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        rep->element[1]->type == REDIS_REPLY_STRING &&
        id_valid(rep->element[0]->str)) {
        snprintf(helper, SP_ID_SIZE, "%s", rep->element[0]->str);
        *expires = atoll(rep->element[1]->str);
        *tpl = rep->element[2]->type == REDIS_REPLY_STRING &&
               strcmp(rep->element[2]->str, "host") != 0;
        result = 0;
    }
    freeReplyObject(rep);
    return result;
}

/* Activity on the session's sandbox id: its expiry at least
 * SP_SESSION_IDLE seconds from now (never shortened). Best effort: a
 * sandbox that cannot be extended now ends at its old expiry. */
static void sbxh_session_touch(const char *id)
{
    char helper[SP_ID_SIZE];
    long long idle = cfg_int(CFG_SP_SESSION_IDLE), expires;
    int tpl;
    rpc_err err;

    if (sbxh_helper_of(id, helper, &expires, &tpl) == 0 &&
        expires < (long long)time(NULL) + idle &&
        hc_timeout(helper, id, idle, &err) != 0)
        log_warn("session sandbox %s not extended: %s", id, err.msg);
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
    sbxh_session_touch(id_out);
    return 0;
}

/* /uploaded_files in a new session sandbox of a template: its root has
 * none, and only its root may make one there (the helper's file
 * operations act with the sandbox user's rights); sticky and open to all
 * as /tmp is. The host view links it into the workspace. Best effort: an
 * upload says what is missing. */
static void sbxh_session_dirs(const char *id, const char *owner)
{
    char helper[SP_ID_SIZE], exe[SP_ID_SIZE];
    long long expires;
    int tpl;
    cJSON *argv = cJSON_CreateArray();
    hc_exec_req q = {.id = exe,
                     .kind = HC_KIND_COMMAND,
                     .owner = owner,
                     .sandbox = id,
                     .argv = argv,
                     .user = "root",
                     .timeout_ms = 30000,
                     .wait = 1};
    hc_facts f;
    rpc_err err;

    cJSON_AddItemToArray(argv, cJSON_CreateString("mkdir"));
    cJSON_AddItemToArray(argv, cJSON_CreateString("-p"));
    cJSON_AddItemToArray(argv, cJSON_CreateString("-m"));
    cJSON_AddItemToArray(argv, cJSON_CreateString("1777"));
    cJSON_AddItemToArray(argv, cJSON_CreateString("/uploaded_files"));
    if (sbxh_helper_of(id, helper, &expires, &tpl) != 0 || !tpl ||
        id_generate("exe_", exe, sizeof exe) != 0)
        goto out;
    if (hc_exec(helper, &q, 40000, 0, &f, &err) != 0)
        log_warn("session sandbox %s: /uploaded_files not made: %s", id,
                 err.msg);
    else
        hc_facts_free(&f);
out:
    cJSON_Delete(argv);
}

/* The body a session's sandbox is made from: the request's, with the
 * session's template and idle time where it names none. Caller frees. */
static cJSON *sbxh_session_spec(const cJSON *body)
{
    cJSON *spec = body != NULL ? cJSON_Duplicate(body, 1) : NULL;
    long long idle = cfg_int(CFG_SP_SESSION_IDLE);

    if (spec == NULL)
        spec = cJSON_CreateObject();
    if (!cJSON_HasObjectItem(spec, "template"))
        cJSON_AddStringToObject(spec, "template",
                                cfg_str(CFG_SP_SESSION_TEMPLATE));
    if (!cJSON_HasObjectItem(spec, "timeout"))
        cJSON_AddNumberToObject(
            spec, "timeout",
            (double)(idle < cfg_int(CFG_SP_SANDBOX_MAX_TIMEOUT)
                         ? idle
                         : cfg_int(CFG_SP_SANDBOX_MAX_TIMEOUT)));
    return spec;
}

int sbxh_session_ensure(http_req *r, const char *sid, const cJSON *body,
                        char *id, int *created)
{
    char k[RDS_KEY_MAX], lock[RDS_KEY_MAX + 8];
    redisReply *rep = NULL;
    cJSON *spec = NULL;
    int found = 0, result = -1;

    *created = 0;
    if (sbxh_session_key(r->auth.sub, sid, k, sizeof k) != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "session_id",
                        "session_id must match [A-Za-z0-9_-]{1,64}");
        return -1;
    }
    key_of2(lock, sizeof lock, KEY_SESSION_LOCK, r->auth.sub, sid);
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
            /* Another creator may have finished between our look and our
             * lock: look again under the lock. */
            found = sbxh_session_get(r->auth.sub, k, id);
            if (found != 0) {
                freeReplyObject(rds_cmd("DEL %s", lock));
                break;
            }
            spec = sbxh_session_spec(body);
            if (sbxh_create(r, spec, id) != 0) {
                freeReplyObject(rds_cmd("DEL %s", lock));
                goto out;
            }
            sbxh_session_dirs(id, r->auth.sub);
            freeReplyObject(rds_cmd("SET %s %s", k, id));
            freeReplyObject(rds_cmd("DEL %s", lock));
            found = *created = 1;
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
    if (!*created)
        sbxh_session_touch(id);
    result = 0;
out:
    cJSON_Delete(spec);
    freeReplyObject(rep);
    return result;
}

void sbxh_session_init(http_req *r)
{
    cJSON *body = http_json_body(r, 1), *o, *root;
    char id[SP_ID_SIZE];
    int created;

    if (body == NULL)
        return;
    if (sbxh_session_ensure(r, r->params[0], body, id, &created) != 0)
        goto out;
    o = sbxh_render(id);
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "session_id", r->params[0]);
    cJSON_AddStringToObject(root, "sandbox_id", id);
    cJSON_AddBoolToObject(root, "created", created);
    cJSON_AddItemToObject(root, "sandbox", o ? o : cJSON_CreateNull());
    http_send_json(r, created ? 201 : 200, root);
    cJSON_Delete(root);
out:
    cJSON_Delete(body);
}
