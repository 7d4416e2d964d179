/* handlers/executions.c: the executions routes of the execute family:
 * GET /executions/{id} (the /execute shape rebuilt from the execution's
 * record and events, for runs in a context with their results and error
 * object), POST /executions/{id}/cancel and /stdin (through the helper
 * that runs it). Part of sp-execute. */
#include "contexts.h"
#include "sp_buf.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_redis.h"
#include "sp_rpc.h"
#include "sp_utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The execution's record if the caller owns it (hash reply, caller frees),
 * else NULL after 404/503. */
static redisReply *exe_record(http_req *r, const char *id)
{
    char k[RDS_KEY_MAX];
    redisReply *h;
    const char *owner = NULL;

    if (!id_valid_typed(id, "exe_") || key_of(k, sizeof k, KEY_EXEC, id)) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "execution not found");
        return NULL;
    }
    h = rds_cmd("HGETALL %s", k);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(h);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return NULL;
    }
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        if (strcmp(h->element[i]->str, "owner") == 0)
            owner = h->element[i + 1]->str;
    }
    if (owner == NULL || strcmp(owner, r->auth.sub) != 0) {
        freeReplyObject(h);
        http_send_error(r, SP_E_NOT_FOUND, NULL, "execution not found");
        return NULL;
    }
    return h;
}

static const char *exe_field(const redisReply *h, const char *name)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        if (strcmp(h->element[i]->str, name) == 0)
            return h->element[i + 1]->str;
    }
    return NULL;
}

/* GET /executions/{id}: the /execute answer rebuilt from exec:<id> and
 * events:<id>. A run in a stateful context (its record names the context)
 * gets what the helper's sync answer of such a run has (hd_ctx_reply):
 * results from its display events, each {mime: data}; error the last
 * error event {name, message, traceback}, else the stderr text; and
 * stderr. */
void exe_get(http_req *r)
{
    static const char *const err_fields[] = {"name", "message", "traceback"};
    /* Room for the error object (its strings are capped by the helper at
     * some 72 KiB, 6 bytes a byte once escaped) and the results' mime
     * keys. SP_OUTPUT_MAX is at most 1 GiB: no product below overflows. */
    const size_t rich_max = 1024 * 1024;
    const size_t out_max = (size_t)cfg_int(CFG_SP_OUTPUT_MAX);
    char k[RDS_KEY_MAX];
    redisReply *h = exe_record(r, r->params[0]), *ev = NULL;
    sp_buf out, err, res, b;
    cJSON *error = NULL; /* the last error event of a context run */
    const char *v;
    int ctx, nres = 0;

    if (h == NULL)
        return;
    ctx = exe_field(h, "context") != NULL;
    buf_init(&out, out_max);
    buf_init(&err, out_max);
    /* Display data counts against the run's output maximum. */
    buf_init_sticky(&res, out_max * 6 + rich_max);
    buf_init_sticky(&b, out_max * 18 + res.max + rich_max);
    key_of(k, sizeof k, KEY_EVENTS, r->params[0]);
    ev = rds_cmd("XRANGE %s - +", k);
    for (size_t i = 0;
         ev != NULL && ev->type == REDIS_REPLY_ARRAY && i < ev->elements; i++) {
        redisReply *f = ev->element[i]->element[1];
        if (f->elements == 4 && strcmp(f->element[0]->str, "type") == 0) {
            const char *t = f->element[1]->str;
            redisReply *d = f->element[3];
            cJSON *o, *mime, *data;
            if (strcmp(t, "stdout") == 0) {
                buf_append(&out, d->str, d->len);
            } else if (strcmp(t, "stderr") == 0) {
                buf_append(&err, d->str, d->len);
            } else if (ctx && d->type == REDIS_REPLY_STRING &&
                       strcmp(t, "display") == 0) {
                o = cJSON_ParseWithLength(d->str, d->len);
                mime = cJSON_GetObjectItemCaseSensitive(o, "mime");
                data = cJSON_GetObjectItemCaseSensitive(o, "data");
                if (cJSON_IsString(mime) && cJSON_IsString(data)) {
                    buf_puts(&res, nres++ > 0 ? ",{" : "{");
                    utf8_json_string((const unsigned char *)mime->valuestring,
                                     strlen(mime->valuestring), &res);
                    buf_puts(&res, ":");
                    utf8_json_string((const unsigned char *)data->valuestring,
                                     strlen(data->valuestring), &res);
                    buf_puts(&res, "}");
                }
                cJSON_Delete(o);
            } else if (ctx && d->type == REDIS_REPLY_STRING &&
                       strcmp(t, "error") == 0) {
                /* A later error replaces an earlier one, as in the run's
                 * sync answer (the context ending under a run, say). */
                o = cJSON_ParseWithLength(d->str, d->len);
                if (cJSON_IsObject(o)) {
                    cJSON_Delete(error);
                    error = o;
                } else {
                    cJSON_Delete(o);
                }
            }
        }
    }
    v = exe_field(h, "status");
    buf_printf(&b, "{\"executionId\":\"%s\",\"status\":\"%s\"", r->params[0],
               v ? v : "unknown");
    buf_puts(&b, ",\"output\":");
    utf8_json_string((const unsigned char *)out.data, out.len, &b);
    buf_puts(&b, ",\"error\":");
    if (error != NULL) {
        for (size_t j = 0; j < 3; j++) {
            const cJSON *it =
                cJSON_GetObjectItemCaseSensitive(error, err_fields[j]);
            const char *s = cJSON_IsString(it) ? it->valuestring : "";
            buf_printf(&b, "%s\"%s\":", j > 0 ? "," : "{", err_fields[j]);
            utf8_json_string((const unsigned char *)s, strlen(s), &b);
        }
        buf_puts(&b, "}");
    } else {
        utf8_json_string((const unsigned char *)err.data, err.len, &b);
    }
    if (ctx) {
        buf_puts(&b, ",\"stderr\":");
        utf8_json_string((const unsigned char *)err.data, err.len, &b);
    }
    if ((v = exe_field(h, "exit_code")) != NULL)
        buf_printf(&b, ",\"exitCode\":%d", atoi(v));
    else
        buf_puts(&b, ",\"exitCode\":null");
    if ((v = exe_field(h, "duration_ms")) != NULL)
        buf_printf(&b, ",\"duration\":%lld", atoll(v));
    v = exe_field(h, "truncated");
    buf_printf(&b, ",\"truncated\":%s,\"results\":[",
               v && strcmp(v, "1") == 0 ? "true" : "false");
    if (nres > 0)
        buf_append(&b, res.data, res.len);
    buf_puts(&b, "]}");
    /* One check for the whole answer: the buffers are sticky. */
    if (b.data != NULL && !buf_failed(&res) && !buf_failed(&b))
        http_send_raw(r, 200, "application/json; charset=utf-8", b.data, b.len);
    else
        http_send_error(r, SP_E_INTERNAL, NULL, "result too large");
    buf_free(&out);
    buf_free(&err);
    buf_free(&res);
    buf_free(&b);
    cJSON_Delete(error);
    freeReplyObject(ev);
    freeReplyObject(h);
}

/* Send op to the helper running execution params[0]; 409 if it ended. */
static void exe_control(http_req *r, const char *op, cJSON *args)
{
    redisReply *h = exe_record(r, r->params[0]);
    const char *helper, *sandbox, *status;
    char msg[RPC_MSG_SIZE];
    rpc_reply rr;
    sp_status st;
    cJSON *o;

    if (h == NULL)
        goto out;
    helper = exe_field(h, "helper");
    sandbox = exe_field(h, "sandbox");
    status = exe_field(h, "status");
    if (status == NULL || strcmp(status, "running") != 0 || helper == NULL ||
        sandbox == NULL || !id_valid(helper)) {
        http_send_error(r, SP_E_CONFLICT, NULL, "execution is not running");
        goto out;
    }
    cJSON_AddStringToObject(args, "sandbox", sandbox);
    cJSON_AddStringToObject(args, "exe", r->params[0]);
    st = rpc_call(helper, op, args, NULL, 0, 10000, &rr, msg, sizeof msg);
    if (st != SP_OK) {
        http_send_error(r, st, NULL, "%s", msg);
        goto out;
    }
    rpc_reply_free(&rr);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "executionId", r->params[0]);
    cJSON_AddStringToObject(
        o, "status", strcmp(op, "cancel") == 0 ? "cancelled" : "running");
    http_send_json(r, 200, o);
    cJSON_Delete(o);
out:
    freeReplyObject(h);
    cJSON_Delete(args);
}

void exe_cancel(http_req *r)
{
    exe_control(r, "cancel", cJSON_CreateObject());
}

void exe_stdin(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *args;
    const char *data;
    int eof;

    if (body == NULL)
        return;
    if (json_str(r, body, "data", 0, 1024 * 1024, &data) == 0 &&
        json_bool(r, body, "eof", 0, &eof) == 0) {
        args = cJSON_CreateObject();
        if (data != NULL)
            cJSON_AddStringToObject(args, "data", data);
        cJSON_AddBoolToObject(args, "eof", eof);
        exe_control(r, "stdin", args);
    }
    cJSON_Delete(body);
}
