/* handlers/runs.c: what every run of code shares in sp-execute (one-off,
 * in a sandbox, in a context): its files written first and its /execute
 * answer, whose shape is made here and nowhere else (execute.h); its
 * announcement on a client stream is common/sp_announce.c. */
#include "execute.h"
#include "sp_buf.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"
#include "sp_redis.h"
#include "sp_utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_RICH_MAX          (1024 * 1024)

int run_render(const run_view *v, sp_buf *b)
{
    static const char *const err_fields[] = {"name", "message", "traceback"};

    buf_printf(b,
               "{\"executionId\":\"%s\",\"status\":\"%s\",\"output\":", v->id,
               v->status);
    utf8_json_string((const unsigned char *)v->out, v->out_len, b);
    buf_puts(b, ",\"error\":");
    if (v->exception != NULL) {
        /* Always the three fields, as strings. */
        for (size_t j = 0; j < 3; j++) {
            const cJSON *it =
                cJSON_GetObjectItemCaseSensitive(v->exception, err_fields[j]);
            const char *s = cJSON_IsString(it) ? it->valuestring : "";
            buf_printf(b, "%s\"%s\":", j > 0 ? "," : "{", err_fields[j]);
            utf8_json_string((const unsigned char *)s, strlen(s), b);
        }
        buf_puts(b, "}");
    } else if (v->err_len == 0 && v->error != NULL) {
        utf8_json_string((const unsigned char *)v->error, strlen(v->error), b);
    } else {
        utf8_json_string((const unsigned char *)v->err, v->err_len, b);
    }
    if (v->context) {
        buf_puts(b, ",\"stderr\":");
        utf8_json_string((const unsigned char *)v->err, v->err_len, b);
    }
    if (v->has_exit)
        buf_printf(b, ",\"exitCode\":%d", v->exit_code);
    else
        buf_puts(b, ",\"exitCode\":null");
    if (v->has_duration)
        buf_printf(b, ",\"duration\":%lld", v->duration_ms);
    buf_printf(b, ",\"results\":%s,\"truncated\":%s}",
               v->results ? v->results : "[]", v->truncated ? "true" : "false");
    return buf_failed(b) ? -1 : 0;
}

/* The view of a run that ended, from the helper's facts. results_js
 * receives the printed results (caller frees). */
static void run_view_of(const hc_facts *f, run_view *v, char **results_js)
{
    const cJSON *j = f->json;
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(j, "context");

    memset(v, 0, sizeof *v);
    v->id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "id"));
    v->status =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "status"));
    v->out = f->out[0];
    v->out_len = f->out_len[0];
    v->err = f->out[1];
    v->err_len = f->out_len[1];
    v->has_exit = v->has_duration = 1;
    v->exit_code = (int)cJSON_GetNumberValue(
        cJSON_GetObjectItemCaseSensitive(j, "exit_code"));
    v->duration_ms = (long long)cJSON_GetNumberValue(
        cJSON_GetObjectItemCaseSensitive(j, "duration_ms"));
    v->truncated =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncated"));
    v->error =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "error"));
    *results_js = NULL;
    if (cJSON_IsObject(ctx)) {
        v->context = 1;
        v->exception = cJSON_GetObjectItemCaseSensitive(ctx, "exception");
        *results_js = cJSON_PrintUnformatted(
            cJSON_GetObjectItemCaseSensitive(ctx, "results"));
        v->results = *results_js;
    }
}

void run_answer(http_req *r, int stream, const char *exe, const char *client,
                const hc_facts *f)
{
    size_t out_max = (size_t)cfg_int(CFG_SP_OUTPUT_MAX);
    char *results = NULL;
    run_view v;
    sp_buf b;
    cJSON *o;

    if (stream) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "executionId", exe);
        cJSON_AddStringToObject(o, "status", "streaming");
        cJSON_AddStringToObject(o, "clientId", client);
        http_send_json(r, 200, o);
        cJSON_Delete(o);
        return;
    }
    run_view_of(f, &v, &results);
    if (v.id == NULL || v.status == NULL) {
        http_send_error(r, SP_E_INTERNAL, NULL, "helper sent no result");
        free(results);
        return;
    }
    /* Output escapes to at most 6 bytes a byte, twice for context runs. */
    buf_init_sticky(&b, 3 * out_max * 6 + (results ? strlen(results) : 0) +
                            RUN_RICH_MAX);
    if (run_render(&v, &b) == 0)
        http_send_raw(r, 200, "application/json; charset=utf-8", b.data, b.len);
    else
        http_send_error(r, SP_E_INTERNAL, NULL, "result too large");
    buf_free(&b);
    free(results);
}

int run_put(http_req *r, const char *helper, const char *sandbox,
            const char *path, const char *content)
{
    rpc_reply rr;
    rpc_err err;

    if (hc_file_write(helper, sandbox, path, content, strlen(content), &rr,
                      &err) != 0) {
        http_send_error(r, err.st, "files", "%s: %s", path, err.msg);
        return -1;
    }
    rpc_reply_free(&rr);
    return 0;
}

int run_put_all(http_req *r, const char *helper, const char *sandbox,
                const cJSON *files)
{
    const cJSON *f;

    cJSON_ArrayForEach(f, files)
    {
        if (run_put(r, helper, sandbox,
                    cJSON_GetObjectItem(f, "path")->valuestring,
                    cJSON_GetObjectItem(f, "content")->valuestring) != 0)
            return -1;
    }
    return 0;
}
