/* hd_result.c: the end of an execution: its status (ok, error, timeout,
 * oom, killed, cancelled, output_limit, compile_error), the result record
 * and event, the answer to a caller that waits (as a command or in the
 * /execute shape), its scratch files removed; and executions lost by an
 * earlier run of the helper. */
#include "hd.h"
#include "sp_config.h"
#include "sp_keys.h"
#include "sp_redis.h"
#include "sp_rpc.h"
#include "sp_utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *hd_result_streams[2] = {"stdout", "stderr"};

static cJSON *hd_result_json(const hd_exec *e, const char **status_out,
                             long long *duration)
{
    cJSON *res = cJSON_CreateObject();
    const char *status;
    int code = -1, sig = 0;

    if (WIFEXITED(e->wait_status))
        code = WEXITSTATUS(e->wait_status);
    else if (WIFSIGNALED(e->wait_status)) {
        sig = WTERMSIG(e->wait_status);
        code = 128 + sig;
    }
    if (e->compile_failed)
        status = "compile_error";
    else if (e->timed_out)
        status = "timeout";
    else if (e->cancelled)
        status = "cancelled";
    else if (e->killed)
        status = "killed";
    else if (e->oom)
        status = "oom";
    else if (e->over_limit)
        status = "output_limit";
    else
        status = code == 0 ? "ok" : "error";
    *duration = hd_now_ms() - e->started_ms;
    cJSON_AddNumberToObject(res, "exitCode", code);
    cJSON_AddStringToObject(res, "status", status);
    cJSON_AddBoolToObject(res, "truncated", e->truncated);
    if (sig != 0)
        cJSON_AddStringToObject(res, "signal", strsignal(sig));
    *status_out = status;
    return res;
}

/* Remove the execution's scratch files (the code file, a compiled
 * binary) through the files API's safe path; replies go nowhere. */
static void hd_exec_scratch(hd_exec *e)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, e->scratch)
    {
        hd_job j = {.op = "file_delete"};
        if (!cJSON_IsString(it))
            continue;
        j.args = cJSON_CreateObject();
        cJSON_AddStringToObject(j.args, "path", it->valuestring);
        cJSON_AddBoolToObject(j.args, "recursive", 1);
        hd_files_job(e->sbx, &j);
        cJSON_Delete(j.args);
    }
}

/* The /execute answer: {executionId, status, output, error, exitCode,
 * duration, results, truncated}. Consumes res. */
static void hd_reply_execute(hd_exec *e, cJSON *res, long long duration)
{
    sp_buf b, *err = &e->cap[1];
    const cJSON *st = cJSON_GetObjectItem(res, "status");
    const char *status = cJSON_IsString(st) ? st->valuestring : "error";

    buf_init_sticky(&b, 2 * e->out_max * 6 + 512);
    buf_printf(&b,
               "{\"executionId\":\"%s\",\"status\":\"%s\",\"output\":", e->id,
               status);
    utf8_json_string((const unsigned char *)e->cap[0].data, e->cap[0].len, &b);
    buf_puts(&b, ",\"error\":");
    utf8_json_string((const unsigned char *)err->data, err->len, &b);
    buf_printf(&b,
               ",\"exitCode\":%d,\"duration\":%lld,\"results\":[],"
               "\"truncated\":%s}",
               (int)cJSON_GetObjectItem(res, "exitCode")->valuedouble, duration,
               e->truncated ? "true" : "false");
    cJSON_Delete(res);
    if (b.data != NULL && !buf_failed(&b))
        hd_reply(e->rid, cJSON_CreateObject(), b.data, b.len);
    else
        hd_reply_err(e->rid, SP_E_INTERNAL, "result too large");
    buf_free(&b);
}

/* Record the result, emit the result event, answer a waiting caller. */
void hd_exec_finish(hd_exec *e)
{
    char ek[RDS_KEY_MAX], vk[RDS_KEY_MAX], sk[RDS_KEY_MAX];
    const char *status;
    long long duration;
    cJSON *res = hd_result_json(e, &status, &duration), *ev;
    char *js;
    long long ttl = cfg_int(CFG_SP_EVENT_TTL);

    if (e->ctx != NULL)
        hd_ctx_driver_ended(e); /* its runs end with it */
    hd_exec_keys(e, ek, vk, sizeof ek);
    hd_exec_scratch(e);
    /* A one-off sandbox held one of its owner's runs (sp_rpc.h). */
    if (e->sbx->ephemeral)
        rpc_run_release(e->sbx->owner, e->id);
    key_of(sk, sizeof sk, KEY_SBX_RUNNING, e->sbx->id);
    ev = cJSON_CreateObject();
    cJSON_AddItemToObject(ev, "data", cJSON_Duplicate(res, 1));
    cJSON_AddNumberToObject(ev, "duration", (double)duration);
    js = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    if (e->terminal) {
        /* A terminal's stream ends with exit {code}. */
        char ex[64];
        snprintf(ex, sizeof ex, "{\"code\":%d}",
                 (int)cJSON_GetObjectItem(res, "exitCode")->valuedouble);
        hd_event(e, "exit", ex, strlen(ex));
    } else if (js != NULL) {
        hd_event(e, "result", js, strlen(js));
    }
    free(js);
    freeReplyObject(rds_cmd(
        "HSET %s status %s exit_code %d duration_ms %lld truncated %d "
        "ended %lld",
        ek, status, (int)cJSON_GetObjectItem(res, "exitCode")->valuedouble,
        duration, e->truncated, hd_now_ms()));
    freeReplyObject(rds_cmd("EXPIRE %s %lld", ek, ttl));
    freeReplyObject(rds_cmd("EXPIRE %s %lld", vk, ttl));
    freeReplyObject(rds_cmd("SREM %s %s", sk, e->id));
    if (e->terminal && key_of(sk, sizeof sk, KEY_TERMINAL, e->id) == 0)
        freeReplyObject(rds_cmd("EXPIRE %s %lld", sk, ttl));
    if (e->rid[0] != '\0' && e->execute_shape) {
        hd_reply_execute(e, res, duration);
    } else if (e->rid[0] != '\0') {
        sp_buf b;
        buf_init(&b, 2 * e->out_max * 6 + 64);
        cJSON_AddStringToObject(res, "execution_id", e->id);
        cJSON_AddNumberToObject(res, "duration_ms", (double)duration);
        /* Output may hold any bytes: encode it ourselves (cJSON strings
         * stop at NUL) and splice it in raw. */
        for (int w = 0; w < 2; w++) {
            buf_reset(&b);
            if (utf8_json_string((const unsigned char *)e->cap[w].data,
                                 e->cap[w].len, &b) == 0)
                cJSON_AddRawToObject(res, hd_result_streams[w],
                                     b.data ? b.data : "\"\"");
        }
        buf_free(&b);
        /* The result goes in the data part, passed to the client as is. */
        js = cJSON_PrintUnformatted(res);
        cJSON_Delete(res);
        hd_reply(e->rid, cJSON_CreateObject(), js, js ? strlen(js) : 0);
        free(js);
    } else {
        cJSON_Delete(res);
    }
}

void hd_exec_lost(const char *exe_id, const char *message)
{
    char ek[RDS_KEY_MAX], vk[RDS_KEY_MAX], data[512];
    long long ttl = cfg_int(CFG_SP_EVENT_TTL);

    if (key_of(ek, sizeof ek, KEY_EXEC, exe_id) != 0 ||
        key_of(vk, sizeof vk, KEY_EVENTS, exe_id) != 0)
        return;
    snprintf(data, sizeof data,
             "{\"data\":{\"exitCode\":-1,\"status\":\"error\",\"truncated\":"
             "false,\"error\":\"%s\"},\"duration\":0}",
             message);
    freeReplyObject(rds_cmd("XADD %s * type result data %s", vk, data));
    freeReplyObject(rds_cmd("HSET %s status error error %s", ek, message));
    freeReplyObject(rds_cmd("EXPIRE %s %lld", ek, ttl));
    freeReplyObject(rds_cmd("EXPIRE %s %lld", vk, ttl));
}
