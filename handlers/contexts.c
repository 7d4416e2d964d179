/* handlers/contexts.c: stateful execution contexts, part of the execute
 * family and of the sp-execute program (docs/DESIGN.md §4.3): create, list, get
 * and delete the contexts of a sandbox, and run /execute or
 * /execute-stream code with a context_id in one.
 *
 * A context is a long-lived interpreter kept by the helper that owns the
 * sandbox (helper/hd_ctx.c); runs in it keep variables, imports and
 * functions, as in a notebook. That helper writes the records this file
 * reads: ctx:<id> {owner, sandbox, helper, language, created, cwd?} and the set
 * sbx:<sandbox>:contexts; they go when the context or its sandbox ends.
 * Another subject's context, or one of another sandbox than the path
 * names, is "not found". */
#include "execute.h"
#include "sp_auth.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_redis.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CTXH_RUN_SLACK_MS   15000
#define CTXH_STREAM_WAIT_MS 10000

const char *ctxh_language(const char *name)
{
    static const char *const names[][5] = {
        {"python", "python", "python3", "py", NULL},
        {"javascript", "javascript", "js", "node", "nodejs"},
    };
    char low[32];
    size_t i;

    for (i = 0; name[i] != '\0' && i < sizeof low - 1; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    low[i] = '\0';
    for (size_t l = 0; l < sizeof names / sizeof names[0]; l++) {
        for (int a = 1; a < 5 && names[l][a] != NULL; a++) {
            if (strcmp(names[l][a], low) == 0)
                return names[l][0];
        }
    }
    return NULL;
}

int ctxh_load(http_req *r, const char *id, ctxh_rec *rec)
{
    char k[RDS_KEY_MAX];
    redisReply *rep;
    int result = 0;

    if (!id_valid_typed(id, "ctx_") || key_of(k, sizeof k, KEY_CTX, id))
        return 0;
    rep = rds_cmd("HMGET %s owner sandbox helper language created cwd", k);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 6) {
        freeReplyObject(rep);
        return -1;
    }
    for (size_t i = 0; i < 5; i++) {
        if (rep->element[i]->type != REDIS_REPLY_STRING)
            goto out;
    }
    rec->cwd[0] = '\0';
    if (rep->element[5]->type == REDIS_REPLY_STRING)
        snprintf(rec->cwd, sizeof rec->cwd, "%s", rep->element[5]->str);
    if (strcmp(rep->element[0]->str, r->auth.sub) != 0 ||
        !id_valid(rep->element[1]->str) || !id_valid(rep->element[2]->str))
        goto out;
    snprintf(rec->sandbox, sizeof rec->sandbox, "%s", rep->element[1]->str);
    snprintf(rec->helper, sizeof rec->helper, "%s", rep->element[2]->str);
    snprintf(rec->language, sizeof rec->language, "%s", rep->element[3]->str);
    rec->created = atoll(rep->element[4]->str);
    result = 1;
out:
    freeReplyObject(rep);
    return result;
}

/* The context as the API shows it; caller frees. */
static cJSON *ctxh_render(const char *id, const ctxh_rec *rec)
{
    cJSON *o = cJSON_CreateObject();
    char t[JSON_TIME_SIZE];

    json_time(rec->created, t, sizeof t);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "sandbox_id", rec->sandbox);
    cJSON_AddStringToObject(o, "language", rec->language);
    cJSON_AddStringToObject(o, "created_at", t);
    return o;
}

int ctxh_find(http_req *r, const char *sbx, const char *id, const char *field,
              ctxh_rec *rec)
{
    int found = ctxh_load(r, id, rec);

    if (found < 0) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return -1;
    }
    if (found == 0 || strcmp(rec->sandbox, sbx) != 0) {
        http_send_error(r, SP_E_NOT_FOUND, field, "context not found");
        return -1;
    }
    return 0;
}

/* The id of the sandbox's default context of lang, into id: "ctx_" and
 * 132 bits of an HMAC of the sandbox and the language (a purpose of its
 * own, so it tells nothing of the tokens). 0 or -1. */
static int ctxh_default_id(const char *sbx, const char *lang, char *id)
{
    char purpose[48], mac[AUTH_SBX_TOKEN_SIZE];

    snprintf(purpose, sizeof purpose, "interp-default-context-%s", lang);
    if (auth_sandbox_token(purpose, sbx, mac) != 0)
        return -1;
    snprintf(id, SP_ID_SIZE, "ctx_%.22s", mac);
    return 0;
}

int ctxh_default(http_req *r, const char *sbx, const char *helper,
                 const char *lang, char *id, ctxh_rec *rec)
{
    rpc_err err;
    int found;

    if (ctxh_default_id(sbx, lang, id) != 0) {
        http_send_error(r, SP_E_INTERNAL, NULL, "could not make an id");
        return -1;
    }
    found = ctxh_load(r, id, rec);
    if (found == 0 &&
        hc_ctx_create(helper, sbx, id, lang, NULL, r->auth.sub, &err) != 0 &&
        err.st != SP_E_CONFLICT) {
        http_send_rpc_error(r, &err, NULL);
        return -1;
    }
    return found == 1 ? 0 : ctxh_find(r, sbx, id, "context_id", rec);
}

/* Context params[1] of sandbox params[0], both the caller's; -1 after
 * having sent 404 or 503. */
static int ctxh_of_path(http_req *r, ctxh_rec *rec)
{
    char helper[SP_ID_SIZE];

    if (rpc_sandbox_of(r, r->params[0], NULL, helper) != 0)
        return -1;
    return ctxh_find(r, r->params[0], r->params[1], NULL, rec);
}

void ctxh_create(http_req *r)
{
    cJSON *body = http_json_body(r, 1), *o;
    const char *name, *lang;
    char helper[SP_ID_SIZE], id[SP_ID_SIZE];
    ctxh_rec rec = {0};
    rpc_err err;

    if (body == NULL)
        return;
    if (json_str(r, body, "language", 0, 32, &name) != 0)
        goto out;
    lang = ctxh_language(name != NULL ? name : "python");
    if (lang == NULL) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "language",
                        "a context runs python or javascript");
        goto out;
    }
    if (rpc_sandbox_of(r, r->params[0], NULL, helper) != 0)
        goto out;
    if (rpc_new_id(r, "ctx_", id) != 0)
        goto out;
    if (hc_ctx_create(helper, r->params[0], id, lang, NULL, r->auth.sub,
                      &err) != 0) {
        http_send_rpc_error(r, &err, NULL);
        goto out;
    }
    snprintf(rec.sandbox, sizeof rec.sandbox, "%s", r->params[0]);
    snprintf(rec.language, sizeof rec.language, "%s", lang);
    rec.created = (long long)time(NULL);
    o = ctxh_render(id, &rec);
    http_send_json(r, 201, o);
    cJSON_Delete(o);
out:
    cJSON_Delete(body);
}

cJSON *ctxh_list_of(http_req *r, const char *sbx, ctxh_render_fn render)
{
    char k[RDS_KEY_MAX];
    redisReply *set;
    cJSON *arr = NULL;

    key_of(k, sizeof k, KEY_SBX_CONTEXTS, sbx);
    set = rds_cmd("SMEMBERS %s", k);
    if (set == NULL || set->type != REDIS_REPLY_ARRAY) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    arr = cJSON_CreateArray();
    for (size_t i = 0; i < set->elements; i++) {
        ctxh_rec rec = {0};
        const char *id = set->element[i]->str;
        if (ctxh_load(r, id, &rec) == 1 && strcmp(rec.sandbox, sbx) == 0)
            cJSON_AddItemToArray(arr, render(id, &rec));
    }
out:
    freeReplyObject(set);
    return arr;
}

void ctxh_list(http_req *r)
{
    char helper[SP_ID_SIZE];
    cJSON *root, *arr;

    if (rpc_sandbox_of(r, r->params[0], NULL, helper) != 0 ||
        (arr = ctxh_list_of(r, r->params[0], ctxh_render)) == NULL)
        return;
    root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "contexts", arr);
    http_send_json(r, 200, root);
    cJSON_Delete(root);
}

void ctxh_get(http_req *r)
{
    ctxh_rec rec = {0};
    cJSON *o;

    if (ctxh_of_path(r, &rec) != 0)
        return;
    o = ctxh_render(r->params[1], &rec);
    http_send_json(r, 200, o);
    cJSON_Delete(o);
}

void ctxh_delete(http_req *r)
{
    ctxh_rec rec = {0};
    rpc_err err;

    if (ctxh_of_path(r, &rec) != 0)
        return;
    if (hc_ctx_delete(rec.helper, rec.sandbox, r->params[1], r->auth.sub,
                      &err) != 0) {
        http_send_rpc_error(r, &err, NULL);
        return;
    }
    http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
}

int ctxh_start(http_req *r, const ctxh_rec *rec, const char *ctx,
               const ctxh_run *q, char *exe, char *cid, hc_facts *f)
{
    hc_ctx_run_req x;
    rpc_err err;

    cid[0] = '\0';
    if (run_put_all(r, rec->helper, rec->sandbox, q->files) != 0)
        return -1;
    if (rpc_new_id(r, "exe_", exe) != 0)
        return -1;
    x = (hc_ctx_run_req){.sandbox = rec->sandbox,
                         .ctx = ctx,
                         .id = exe,
                         .owner = r->auth.sub,
                         .code = q->code,
                         .timeout_ms = q->timeout_ms,
                         .wait = !q->stream};
    /* Before the run starts, as for any execution. */
    if (q->stream && !q->quiet) {
        const char *c = announce_execution(r->auth.sub, q->client, exe, cid);
        if (c != cid)
            snprintf(cid, SP_ID_SIZE, "%s", c);
    }
    /* A sync run may first wait for earlier runs of the context: the
     * slack covers a short queue, not a long one. */
    if (hc_ctx_run(rec->helper, &x,
                   q->stream ? CTXH_STREAM_WAIT_MS
                             : q->timeout_ms + CTXH_RUN_SLACK_MS,
                   f, &err) != 0) {
        http_send_rpc_error(r, &err,
                            err.st == SP_E_NOT_FOUND ? "context_id" : NULL);
        return -1;
    }
    return 0;
}

void ctxh_execute(http_req *r, const ctxh_run *q)
{
    ctxh_rec rec = {0};
    char exe[SP_ID_SIZE], cid[SP_ID_SIZE];
    hc_facts f;
    int found;

    if (q->has_stdin || q->has_env) {
        http_send_error(
            r, SP_E_INVALID_ARGUMENT, q->has_stdin ? "stdin" : "env",
            "a run in a context takes no %s", q->has_stdin ? "stdin" : "env");
        return;
    }
    found = ctxh_load(r, q->ctx, &rec);
    if (found < 0) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return;
    }
    if (found == 0) {
        http_send_error(r, SP_E_NOT_FOUND, "context_id", "context not found");
        return;
    }
    if (q->sandbox != NULL && strcmp(q->sandbox, rec.sandbox) != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "sandbox_id",
                        "the context belongs to another sandbox");
        return;
    }
    if (q->language != NULL && strcmp(q->language, rec.language) != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "language",
                        "the context runs %s", rec.language);
        return;
    }
    if (ctxh_start(r, &rec, q->ctx, q, exe, cid, &f) != 0)
        return;
    run_answer(r, q->stream, exe, cid[0] ? cid : NULL, &f);
    hc_facts_free(&f);
}
