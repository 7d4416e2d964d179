/* handlers/interp.c: the interp family, E2B's code interpreter (port
 * 49999 of an E2B sandbox, as @e2b/code-interpreter 2.x speaks it:
 * docs/DESIGN.md §7), an adapter over the stateful contexts of the execute
 * family (contexts.c), served by sp-execute. nginx selects it by the
 * headers E2b-Sandbox-Id and E2b-Sandbox-Port: 49999 or the host
 * 49999-<id>.<domain> (nginx-conf/selectors.conf) and passes the path as
 * sent behind the prefix /_sp/family/interp (nginx-conf/families/
 * interp.conf), so that these routes never meet the native /execute.
 *
 *   POST   /execute {code, context_id?, language?, env_vars?}
 *          a run in the context, or in the sandbox's default context of
 *          the language (python unless said; made on first use, its id
 *          derived from the sandbox and the language); the answer is the
 *          relay's: by X-Accel-Redirect to /_sp/interp/{exe}/events,
 *          NDJSON lines as they are produced (sse/sse_interp.c)
 *   POST   /contexts {language?, cwd?}        → {id, language, cwd}
 *   GET    /contexts                          → [{id, language, cwd}]
 *   DELETE /contexts/{id}                     → 204
 *   POST   /contexts/{id}/restart             → 204, variables gone
 *
 * Authorization: no credential, the sandbox's data-plane tokens
 * (E2B-Traffic-Access-Token, X-Access-Token; common/sp_auth.h): at least
 * one, each one sent right for this sandbox, on every request; the
 * sandbox must exist; the owner of the sandbox is the subject. A
 * credential sent as well must be the owner's (else 404). */
#include "execute.h"
#include "sp_auth.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_redis.h"

#include <stdio.h>
#include <string.h>

#define INTERP_CODE_MAX    (512 * 1024)
#define INTERP_CWD_DEFAULT "/workspace" /* sandpipe's; E2B's is /home/user */

/* The sandbox a request is for, its helper; r->auth.sub its owner. */
typedef struct interp_sbx {
    char id[SP_ID_SIZE];
    char helper[SP_ID_SIZE];
} interp_sbx;

/* The owner of sandbox id into r->auth.sub: 0, or -1 after 404/503. */
static int interp_owner(http_req *r, const char *id)
{
    char k[RDS_KEY_MAX];
    redisReply *rep;
    int result = -1;

    if (key_of(k, sizeof k, KEY_SBX, id) != 0) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "sandbox not found");
        return -1;
    }
    rep = rds_cmd("HGET %s owner", k);
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
    else if (rep->type != REDIS_REPLY_STRING || !id_valid(rep->str))
        http_send_error(r, SP_E_NOT_FOUND, NULL, "sandbox not found");
    else {
        snprintf(r->auth.sub, sizeof r->auth.sub, "%s", rep->str);
        result = 0;
    }
    freeReplyObject(rep);
    return result;
}

/* Authorize r for the sandbox nginx selected (SP_SANDBOX_ID) and fill s:
 * 0, or -1 after the error was sent. Tokens are checked before any Redis
 * call. */
static int interp_auth(http_req *r, interp_sbx *s)
{
    const char *id = FCGX_GetParam("SP_SANDBOX_ID", r->fcgi.envp);
    const char *traffic = http_header(r, "E2B-Traffic-Access-Token");
    const char *access = http_header(r, "X-Access-Token");
    auth_info ai;
    sp_status st;

    if (id == NULL || !id_valid(id)) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "sandbox not found");
        return -1;
    }
    if ((traffic == NULL && access == NULL) ||
        (traffic != NULL &&
         !auth_sandbox_token_ok(AUTH_SBX_TRAFFIC, id, traffic)) ||
        (access != NULL && !auth_sandbox_token_ok(AUTH_SBX_ENVD, id, access))) {
        http_send_error(r, SP_E_UNAUTHENTICATED, NULL,
                        "missing or invalid sandbox access token");
        return -1;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    if (interp_owner(r, s->id) != 0)
        return -1;
    if (http_header(r, "X-API-Key") != NULL ||
        http_header(r, "Authorization") != NULL) {
        st = auth_check(r, AUTH_REQUIRED, &ai);
        if (st != SP_OK || strcmp(ai.sub, r->auth.sub) != 0) {
            http_send_error(r, st == SP_OK ? SP_E_NOT_FOUND : st, NULL,
                            st == SP_OK ? "sandbox not found"
                                        : "missing or invalid credentials");
            return -1;
        }
    }
    return rpc_sandbox_of(r, s->id, NULL, s->helper);
}

/* A context as E2B shows it; caller frees. */
static cJSON *interp_ctx_json(const char *id, const ctxh_rec *rec)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "language", rec->language);
    cJSON_AddStringToObject(o, "cwd",
                            rec->cwd[0] ? rec->cwd : INTERP_CWD_DEFAULT);
    return o;
}

/* The body of /execute into q, ctx (given, or NULL) and lang. 0, or -1
 * after a 400. */
static int interp_execute_read(http_req *r, const cJSON *body, ctxh_run *q,
                               const char **ctx, const char **lang)
{
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(body, "env_vars");
    const char *language = NULL;

    if (json_str(r, body, "code", 1, INTERP_CODE_MAX, &q->code) != 0 ||
        json_str(r, body, "context_id", 0, SP_ID_SIZE, ctx) != 0 ||
        json_str(r, body, "language", 0, 32, &language) != 0)
        return -1;
    if (*ctx != NULL && language != NULL) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "language",
                        "give context_id or language, not both");
        return -1;
    }
    *lang = ctxh_language(language != NULL ? language : "python");
    if (*lang == NULL) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "language",
                        "a context runs python or javascript");
        return -1;
    }
    /* A context is one long-lived process: its environment is its own. */
    if (env != NULL && !cJSON_IsNull(env) &&
        !(cJSON_IsObject(env) && env->child == NULL)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "env_vars",
                        "env_vars are not supported in a context run");
        return -1;
    }
    return 0;
}

void interp_execute(http_req *r)
{
    cJSON *body = http_json_body(r, 0);
    ctxh_run q = {.stream = 1, .quiet = 1};
    const char *ctx = NULL, *lang = NULL;
    char id[SP_ID_SIZE], exe[SP_ID_SIZE], cid[SP_ID_SIZE];
    interp_sbx s;
    ctxh_rec rec = {0};
    hc_facts f;

    if (body == NULL)
        return;
    if (interp_auth(r, &s) != 0 ||
        interp_execute_read(r, body, &q, &ctx, &lang) != 0)
        goto out;
    if (ctx != NULL) {
        if (ctxh_find(r, s.id, ctx, "context_id", &rec) != 0)
            goto out;
        snprintf(id, sizeof id, "%s", ctx);
    } else if (ctxh_default(r, s.id, s.helper, lang, id, &rec) != 0) {
        goto out;
    }
    /* E2B's runs have no timeout of their own (the client gives up). */
    q.timeout_ms = cfg_int(CFG_SP_COMMAND_MAX_TIMEOUT) * 1000;
    if (ctxh_start(r, &rec, id, &q, exe, cid, &f) != 0)
        goto out;
    hc_facts_free(&f);
    http_add_header(r, "X-Accel-Redirect: /_sp/interp/%s/events", exe);
    http_send_raw(r, 200, "text/plain", "", 0);
out:
    cJSON_Delete(body);
}

void interp_ctx_create(http_req *r)
{
    cJSON *body = http_json_body(r, 1), *o;
    const char *name = NULL, *lang, *cwd = NULL;
    char id[SP_ID_SIZE];
    interp_sbx s;
    ctxh_rec rec = {0};
    rpc_err err;

    if (body == NULL)
        return;
    if (interp_auth(r, &s) != 0 ||
        json_str(r, body, "language", 0, 32, &name) != 0 ||
        json_str(r, body, "cwd", 0, CTXH_CWD_MAX - 1, &cwd) != 0)
        goto out;
    lang = ctxh_language(name != NULL ? name : "python");
    if (lang == NULL || (cwd != NULL && cwd[0] != '/')) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, lang ? "cwd" : "language",
                        lang ? "cwd must be an absolute path"
                             : "a context runs python or javascript");
        goto out;
    }
    if (rpc_new_id(r, "ctx_", id) != 0)
        goto out;
    if (hc_ctx_create(s.helper, s.id, id, lang, cwd, r->auth.sub, &err) != 0) {
        http_send_rpc_error(r, &err, NULL);
        goto out;
    }
    snprintf(rec.language, sizeof rec.language, "%s", lang);
    snprintf(rec.cwd, sizeof rec.cwd, "%s", cwd ? cwd : "");
    o = interp_ctx_json(id, &rec);
    http_send_json(r, 200, o);
    cJSON_Delete(o);
out:
    cJSON_Delete(body);
}

void interp_ctx_list(http_req *r)
{
    interp_sbx s;
    cJSON *arr;

    if (interp_auth(r, &s) != 0 ||
        (arr = ctxh_list_of(r, s.id, interp_ctx_json)) == NULL)
        return;
    http_send_json(r, 200, arr);
    cJSON_Delete(arr);
}

/* DELETE /contexts/{id}, and POST /contexts/{id}/restart (restart: the
 * same id made again, with its language and directory). */
static void interp_ctx_end(http_req *r, int restart)
{
    interp_sbx s;
    ctxh_rec rec = {0};
    rpc_err err;

    if (interp_auth(r, &s) != 0 ||
        ctxh_find(r, s.id, r->params[0], "context_id", &rec) != 0)
        return;
    if (hc_ctx_delete(rec.helper, s.id, r->params[0], r->auth.sub, &err) != 0 ||
        (restart &&
         hc_ctx_create(rec.helper, s.id, r->params[0], rec.language,
                       rec.cwd[0] ? rec.cwd : NULL, r->auth.sub, &err) != 0)) {
        http_send_rpc_error(r, &err, NULL);
        return;
    }
    http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
}

void interp_ctx_delete(http_req *r)
{
    interp_ctx_end(r, 0);
}

void interp_ctx_restart(http_req *r)
{
    interp_ctx_end(r, 1);
}
