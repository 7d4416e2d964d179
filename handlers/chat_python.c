/* handlers/chat_python.c: the built-in tool python_interpreter {code}: a
 * run in the session sandbox's default Python context (contexts.c's
 * ctxh_default; the driver helper/drivers/py_driver.py keeps variables
 * between runs and between chat requests of the session), started through
 * the typed helper client without waiting, then followed on its event
 * stream events:<exe> (the stream the relay serves): stdout and stderr go
 * to the client as they come (the protocol's tool output), rich results
 * (display events: text, tables as HTML, PNG charts as base64) and the
 * exception are gathered, and the "result" event ends it.
 *
 * The run's limit is SP_CHAT_TOOL_TIMEOUT (the helper interrupts it then:
 * status "timeout"). Between reads (every 500 ms at most) the client's
 * connection is looked at: a client that went away cancels the run.
 *
 * The client gets {status, stdout, stderr, results: [{mime: data,
 * main?}], error: {name, value, traceback} | null}; the model gets text:
 * the output, each result's text/plain, a note for a chart, the error and
 * its traceback, cut to CHAT_TOOL_TEXT_MAX. */
#include "chat.h"
#include "sp_config.h"
#include "sp_helper.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"
#include "sp_utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PY_BLOCK_MS    500
#define PY_START_MS    10000
#define PY_SLACK_S     30 /* past the run's own limit: give up on it */
#define PY_CAPTURE_MAX (1024 * 1024)

/* What a run has produced so far. */
typedef struct py_run {
    sp_buf out[2]; /* stdout, stderr */
    cJSON *results;
    cJSON *error;
    char status[32];
    int ended;
} py_run;

static long long py_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

/* s[0..n) as text a JSON string holds whole, appended to out (what
 * fits): bytes that are not UTF-8 become U+FFFD (the helper cuts output
 * at character boundaries, so a chunk's characters are whole), NULs
 * spaces. */
static void py_clean(const char *s, size_t n, sp_buf *out)
{
    size_t from = out->len;

    utf8_sanitize((const unsigned char *)s, n, out);
    for (size_t i = from; i < out->len; i++) {
        if (out->data[i] == '\0')
            out->data[i] = ' ';
    }
}

/* One entry {type, data} of the run's stream. Returns 0, or -1 when the
 * client is gone. */
static int py_entry(py_run *p, chat_out *o, const char *call_id,
                    const char *type, const char *data, size_t len)
{
    cJSON *d;

    if (strcmp(type, "stdout") == 0 || strcmp(type, "stderr") == 0) {
        sp_buf *b = &p->out[type[3] == 'e'];
        size_t from = b->len;
        py_clean(data, len, b);
        return o->p->tool_output(o, call_id, type, b->data + from,
                                 b->len - from);
    }
    d = cJSON_ParseWithLength(data, len);
    if (strcmp(type, "display") == 0 && cJSON_IsObject(d)) {
        const cJSON *mime = cJSON_GetObjectItemCaseSensitive(d, "mime");
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(d, "data");
        if (cJSON_IsString(mime) && cJSON_IsString(val)) {
            cJSON *item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, mime->valuestring, val->valuestring);
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "main")))
                cJSON_AddBoolToObject(item, "main", 1);
            cJSON_AddItemToArray(p->results, item);
        }
    } else if (strcmp(type, "error") == 0 && cJSON_IsObject(d)) {
        const cJSON *f[3] = {cJSON_GetObjectItemCaseSensitive(d, "name"),
                             cJSON_GetObjectItemCaseSensitive(d, "message"),
                             cJSON_GetObjectItemCaseSensitive(d, "traceback")};
        static const char *const names[3] = {"name", "value", "traceback"};
        cJSON_Delete(p->error);
        p->error = cJSON_CreateObject();
        for (int i = 0; i < 3; i++)
            cJSON_AddStringToObject(p->error, names[i],
                                    cJSON_IsString(f[i]) ? f[i]->valuestring
                                                         : "");
    } else if (strcmp(type, "result") == 0) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(d, "data"), "status");
        snprintf(p->status, sizeof p->status, "%s",
                 cJSON_IsString(st) ? st->valuestring : "error");
        p->ended = 1;
    }
    cJSON_Delete(d);
    return 0;
}

/* One XREAD reply's entries after *last (updated). 0, or -1 when the
 * client is gone. */
static int py_entries(py_run *p, chat_out *o, const char *call_id,
                      const redisReply *rep, char *last, size_t lastlen)
{
    const redisReply *entries;

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_ARRAY ||
        rep->element[0]->elements < 2)
        return 0;
    entries = rep->element[0]->element[1];
    for (size_t i = 0; i < entries->elements && !p->ended; i++) {
        const redisReply *e = entries->element[i], *kv;
        const char *type = NULL, *data = "";
        size_t dlen = 0;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
            continue;
        snprintf(last, lastlen, "%s", e->element[0]->str);
        kv = e->element[1];
        for (size_t j = 0; j + 1 < kv->elements; j += 2) {
            if (strcmp(kv->element[j]->str, "type") == 0)
                type = kv->element[j + 1]->str;
            else if (strcmp(kv->element[j]->str, "data") == 0) {
                data = kv->element[j + 1]->str;
                dlen = kv->element[j + 1]->len;
            }
        }
        if (type != NULL && py_entry(p, o, call_id, type, data, dlen) != 0)
            return -1;
    }
    return 0;
}

/* Follow exe's events until its result, the client goes (cancelled), or
 * the deadline (cancelled, status "timeout"). 0, or -1 when gone. */
static int py_follow(py_run *p, const chat_env *e, chat_out *o,
                     const char *call_id, const char *exe)
{
    char k[RDS_KEY_MAX], last[64] = "0-0";
    long long deadline =
        py_now_s() + cfg_int(CFG_SP_CHAT_TOOL_TIMEOUT) + PY_SLACK_S;
    rpc_err err;

    if (key_of(k, sizeof k, KEY_EVENTS, exe) != 0)
        return 0;
    while (!p->ended) {
        redisReply *rep;
        if (chat_out_gone(o) || py_now_s() > deadline) {
            if (hc_cancel(e->helper, e->sandbox, exe, &err) != 0)
                log_info("cancel of %s: %s", exe, err.msg);
            snprintf(p->status, sizeof p->status, "timeout");
            return o->gone ? -1 : 0;
        }
        rep = rds_cmd_wait(PY_BLOCK_MS + 1000,
                           "XREAD COUNT 256 BLOCK %d STREAMS %s %s",
                           PY_BLOCK_MS, k, last);
        if (rep == NULL) {
            snprintf(p->status, sizeof p->status, "error");
            p->error = cJSON_CreateObject();
            cJSON_AddStringToObject(p->error, "name", "Unavailable");
            cJSON_AddStringToObject(p->error, "value",
                                    "state store unavailable");
            cJSON_AddStringToObject(p->error, "traceback", "");
            return 0;
        }
        if (py_entries(p, o, call_id, rep, last, sizeof last) != 0) {
            freeReplyObject(rep);
            hc_cancel(e->helper, e->sandbox, exe, &err);
            return -1;
        }
        freeReplyObject(rep);
    }
    return 0;
}

/* The text the model reads of run p into text. */
static void py_text(const py_run *p, sp_buf *text)
{
    static const char *const names[2] = {"stdout", "stderr"};
    const cJSON *it;

    for (int i = 0; i < 2; i++) {
        if (p->out[i].len > 0) {
            buf_printf(text, "%s:\n", names[i]);
            buf_append(text, p->out[i].data, p->out[i].len);
            buf_puts(text, "\n");
        }
    }
    cJSON_ArrayForEach(it, p->results)
    {
        const cJSON *plain = cJSON_GetObjectItemCaseSensitive(it, "text/plain");
        if (cJSON_IsString(plain))
            buf_printf(text, "result: %s\n", plain->valuestring);
        else if (cJSON_GetObjectItemCaseSensitive(it, "image/png") != NULL)
            buf_puts(text, "[a chart (image/png) was shown to the user]\n");
        else if (it->child != NULL)
            buf_printf(text, "[%s output was shown to the user]\n",
                       it->child->string);
    }
    if (p->error != NULL) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(p->error, "name");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p->error, "value");
        const cJSON *t =
            cJSON_GetObjectItemCaseSensitive(p->error, "traceback");
        buf_printf(text, "error: %s: %s\n%s\n", n->valuestring, v->valuestring,
                   t->valuestring);
    }
    if (strcmp(p->status, "timeout") == 0)
        buf_printf(text, "the run was stopped after %lld s\n",
                   cfg_int(CFG_SP_CHAT_TOOL_TIMEOUT));
    if (text->len == 0)
        buf_puts(text, "(no output)\n");
}

/* The client's result of p; caller frees. */
static cJSON *py_result(const py_run *p)
{
    cJSON *r = cJSON_CreateObject();

    cJSON_AddStringToObject(r, "status", p->status[0] ? p->status : "ok");
    for (int i = 0; i < 2; i++)
        cJSON_AddStringToObject(r, i ? "stderr" : "stdout",
                                p->out[i].data ? p->out[i].data : "");
    cJSON_AddItemToObject(r, "results", cJSON_Duplicate(p->results, 1));
    if (p->error != NULL)
        cJSON_AddItemToObject(r, "error", cJSON_Duplicate(p->error, 1));
    else
        cJSON_AddNullToObject(r, "error");
    return r;
}

int chat_python_run(const chat_env *e, chat_out *o, const char *call_id,
                    const char *code, cJSON **result, sp_buf *text)
{
    char exe[SP_ID_SIZE];
    hc_ctx_run_req x = {.sandbox = e->sandbox,
                        .ctx = e->ctx,
                        .id = exe,
                        .owner = e->owner,
                        .code = code,
                        .timeout_ms = cfg_int(CFG_SP_CHAT_TOOL_TIMEOUT) * 1000,
                        .wait = 0};
    py_run p = {.results = cJSON_CreateArray()};
    hc_facts f;
    rpc_err err;
    int rc = 0;

    buf_init(&p.out[0], PY_CAPTURE_MAX);
    buf_init(&p.out[1], PY_CAPTURE_MAX);
    if (id_generate("exe_", exe, sizeof exe) != 0 ||
        hc_ctx_run(e->helper, &x, PY_START_MS, &f, &err) != 0) {
        snprintf(p.status, sizeof p.status, "error");
        p.error = cJSON_CreateObject();
        cJSON_AddStringToObject(p.error, "name", "SandboxError");
        cJSON_AddStringToObject(p.error, "value", "the run could not start");
        cJSON_AddStringToObject(p.error, "traceback", "");
    } else {
        hc_facts_free(&f);
        rc = py_follow(&p, e, o, call_id, exe);
    }
    if (rc == 0) {
        py_text(&p, text);
        *result = py_result(&p);
    }
    buf_free(&p.out[0]);
    buf_free(&p.out[1]);
    cJSON_Delete(p.results);
    cJSON_Delete(p.error);
    return rc;
}
