/* handlers/executions.c: the executions routes of the execute family:
 * GET /executions/{id} (the /execute shape rebuilt from the execution's
 * record and events, for runs in a context with their results and error
 * object), POST /executions/{id}/cancel and /stdin (through the helper
 * that runs it). Part of sp-execute. */
#include "execute.h"
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
    return rpc_owned_record(r, KEY_EXEC, id, "exe_", "execution", NULL, NULL);
}

static const char *exe_field(const redisReply *h, const char *name)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        if (strcmp(h->element[i]->str, name) == 0)
            return h->element[i + 1]->str;
    }
    return NULL;
}

/* What a run's events say, gathered for its /execute answer. */
typedef struct exe_events {
    sp_buf out, err; /* stdout, stderr bytes */
    sp_buf res;      /* results: "{mime:data},…" (context runs) */
    cJSON *error;    /* the last error event of a context run, or NULL */
} exe_events;

/* A display event {mime, data} of a context run, as a result. */
static void exe_event_display(exe_events *x, const redisReply *d)
{
    cJSON *o = cJSON_ParseWithLength(d->str, d->len);
    const cJSON *mime = cJSON_GetObjectItemCaseSensitive(o, "mime");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");

    if (cJSON_IsString(mime) && cJSON_IsString(data)) {
        buf_puts(&x->res, x->res.len > 1 ? ",{" : "{");
        utf8_json_string((const unsigned char *)mime->valuestring,
                         strlen(mime->valuestring), &x->res);
        buf_puts(&x->res, ":");
        utf8_json_string((const unsigned char *)data->valuestring,
                         strlen(data->valuestring), &x->res);
        buf_puts(&x->res, "}");
    }
    cJSON_Delete(o);
}

/* Read the events of execution id into x; ctx: it ran in a context. */
static void exe_events_read(const char *id, int ctx, exe_events *x)
{
    char k[RDS_KEY_MAX];
    redisReply *ev;

    key_of(k, sizeof k, KEY_EVENTS, id);
    ev = rds_cmd("XRANGE %s - +", k);
    for (size_t i = 0;
         ev != NULL && ev->type == REDIS_REPLY_ARRAY && i < ev->elements; i++) {
        redisReply *f = ev->element[i]->element[1], *d;
        const char *t;
        cJSON *o;
        if (f->elements != 4 || strcmp(f->element[0]->str, "type") != 0)
            continue;
        t = f->element[1]->str;
        d = f->element[3];
        if (strcmp(t, "stdout") == 0) {
            buf_append(&x->out, d->str, d->len);
        } else if (strcmp(t, "stderr") == 0) {
            buf_append(&x->err, d->str, d->len);
        } else if (ctx && d->type == REDIS_REPLY_STRING &&
                   strcmp(t, "display") == 0) {
            exe_event_display(x, d);
        } else if (ctx && d->type == REDIS_REPLY_STRING &&
                   strcmp(t, "error") == 0) {
            /* A later error replaces an earlier one, as in the run's sync
             * answer (the context ending under a run, say). */
            o = cJSON_ParseWithLength(d->str, d->len);
            if (cJSON_IsObject(o)) {
                cJSON_Delete(x->error);
                x->error = o;
            } else {
                cJSON_Delete(o);
            }
        }
    }
    freeReplyObject(ev);
}

/* GET /executions/{id}: the /execute answer rebuilt from exec:<id> and
 * events:<id>. A run in a stateful context (its record names the context)
 * gets what the sync answer of such a run has: results from its display
 * events, each {mime: data}; error the last error event {name, message,
 * traceback}, else the stderr text; and stderr. */
void exe_get(http_req *r)
{
    /* Room for the error object (its strings are capped by the helper at
     * some 72 KiB, 6 bytes a byte once escaped) and the results' mime
     * keys. SP_OUTPUT_MAX is at most 1 GiB: no product below overflows. */
    const size_t rich_max = 1024 * 1024;
    const size_t out_max = (size_t)cfg_int(CFG_SP_OUTPUT_MAX);
    redisReply *h = exe_record(r, r->params[0]);
    exe_events x = {0};
    run_view v = {0};
    const char *f;
    sp_buf b;

    if (h == NULL)
        return;
    v.context = exe_field(h, "context") != NULL;
    buf_init(&x.out, out_max);
    buf_init(&x.err, out_max);
    /* Display data counts against the run's output maximum. */
    buf_init_sticky(&x.res, out_max * 6 + rich_max);
    buf_init_sticky(&b, out_max * 18 + x.res.max + rich_max);
    buf_puts(&x.res, "[");
    exe_events_read(r->params[0], v.context, &x);
    buf_puts(&x.res, "]");
    v.id = r->params[0];
    v.status = (f = exe_field(h, "status")) ? f : "unknown";
    v.out = x.out.data ? x.out.data : "";
    v.out_len = x.out.len;
    v.err = x.err.data ? x.err.data : "";
    v.err_len = x.err.len;
    v.exception = x.error;
    if ((f = exe_field(h, "exit_code")) != NULL)
        v.has_exit = 1, v.exit_code = atoi(f);
    if ((f = exe_field(h, "duration_ms")) != NULL)
        v.has_duration = 1, v.duration_ms = atoll(f);
    v.truncated = (f = exe_field(h, "truncated")) && strcmp(f, "1") == 0;
    v.error = exe_field(h, "error");
    v.results = x.res.data;
    if (!buf_failed(&x.res) && run_render(&v, &b) == 0)
        http_send_raw(r, 200, "application/json; charset=utf-8", b.data, b.len);
    else
        http_send_error(r, SP_E_INTERNAL, NULL, "result too large");
    buf_free(&x.out);
    buf_free(&x.err);
    buf_free(&x.res);
    buf_free(&b);
    cJSON_Delete(x.error);
    freeReplyObject(h);
}

/* Cancel, or input (data, eof) for, the execution params[0] through the
 * helper running it; 409 if it ended. */
static void exe_control(http_req *r, hc_op op, const char *data, int eof)
{
    redisReply *h = exe_record(r, r->params[0]);
    const char *helper, *sandbox, *status;
    rpc_err err;
    cJSON *o;
    int rc;

    if (h == NULL)
        return;
    helper = exe_field(h, "helper");
    sandbox = exe_field(h, "sandbox");
    status = exe_field(h, "status");
    if (status == NULL || strcmp(status, "running") != 0 || helper == NULL ||
        sandbox == NULL || !id_valid(helper)) {
        http_send_error(r, SP_E_CONFLICT, NULL, "execution is not running");
        goto out;
    }
    rc = op == HC_CANCEL
             ? hc_cancel(helper, sandbox, r->params[0], &err)
             : hc_stdin(helper, sandbox, r->params[0], data, eof, &err);
    if (rc != 0) {
        http_send_rpc_error(r, &err, NULL);
        goto out;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "executionId", r->params[0]);
    cJSON_AddStringToObject(o, "status",
                            op == HC_CANCEL ? "cancelled" : "running");
    http_send_json(r, 200, o);
    cJSON_Delete(o);
out:
    freeReplyObject(h);
}

void exe_cancel(http_req *r)
{
    exe_control(r, HC_CANCEL, NULL, 0);
}

void exe_stdin(http_req *r)
{
    cJSON *body = http_json_body(r, 0);
    const char *data;
    int eof;

    if (body == NULL)
        return;
    if (json_str(r, body, "data", 0, 1024 * 1024, &data) == 0 &&
        json_bool(r, body, "eof", 0, &eof) == 0)
        exe_control(r, HC_STDIN, data, eof);
    cJSON_Delete(body);
}
