/* hd_result.c: the end of an execution: its status (ok, error, timeout,
 * oom, killed, cancelled, output_limit, compile_error), the result record
 * and event, the answer to a caller that waits (as a command or in the
 * /execute shape), its scratch files removed. */
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

/* e's facts: its status from what happened to it (the first cause
 * wins), its exit code (128 + signal when killed), its duration. */
static void hd_exec_facts(hd_exec *e, hd_facts *f)
{
    int code = -1, sig = 0;

    if (WIFEXITED(e->wait_status))
        code = WEXITSTATUS(e->wait_status);
    else if (WIFSIGNALED(e->wait_status)) {
        sig = WTERMSIG(e->wait_status);
        code = 128 + sig;
    }
    memset(f, 0, sizeof *f);
    f->id = e->id;
    f->sandbox = e->sbx->id;
    if (e->compile_failed)
        f->status = "compile_error";
    else if (e->timed_out)
        f->status = "timeout";
    else if (e->cancelled)
        f->status = "cancelled";
    else if (e->killed)
        f->status = "killed";
    else if (e->oom)
        f->status = "oom";
    else if (e->over_limit)
        f->status = "output_limit";
    else
        f->status = code == 0 ? "ok" : "error";
    f->exit_code = code;
    f->signal = sig != 0 ? strsignal(sig) : NULL;
    f->duration_ms = hd_now_ms() - e->started_ms;
    f->truncated = e->truncated;
    f->cap[0] = &e->cap[0];
    f->cap[1] = &e->cap[1];
    f->evid = &e->evid;
}

/* Remove the execution's scratch files (the code file, a compiled
 * binary) through the files API's safe path; replies go nowhere. */
static void hd_exec_scratch(hd_exec *e)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, e->scratch)
    {
        hd_job j = {.op = "file_delete", .opn = HC_FILE_DELETE};
        if (!cJSON_IsString(it))
            continue;
        j.args = cJSON_CreateObject();
        cJSON_AddStringToObject(j.args, "path", it->valuestring);
        cJSON_AddBoolToObject(j.args, "recursive", 1);
        hd_op_file(e->sbx, &j);
        cJSON_Delete(j.args);
    }
}

void hd_result_event(const hd_facts *f)
{
    char k[RDS_KEY_MAX], maxlen[RDS_NUM_SIZE];
    cJSON *ev = cJSON_CreateObject(), *data;
    char *js;

    data = cJSON_AddObjectToObject(ev, "data");
    cJSON_AddNumberToObject(data, "exitCode", f->exit_code);
    cJSON_AddStringToObject(data, "status", f->status);
    cJSON_AddBoolToObject(data, "truncated", f->truncated);
    if (f->signal != NULL)
        cJSON_AddStringToObject(data, "signal", f->signal);
    if (f->error != NULL)
        cJSON_AddStringToObject(data, "error", f->error);
    if (f->execution_count > 0)
        cJSON_AddNumberToObject(data, "executionCount", f->execution_count);
    cJSON_AddNumberToObject(ev, "duration", (double)f->duration_ms);
    js = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    snprintf(maxlen, sizeof maxlen, "%lld", cfg_int(CFG_SP_STREAM_MAXLEN));
    if (js != NULL && key_of(k, sizeof k, KEY_EVENTS, f->id) == 0) {
        char id[HD_EVID_SIZE] = "*";
        if (f->evid != NULL)
            hd_evid_next(f->evid, id);
        hd_pub("XADD %s MAXLEN ~ %s %s type result data %s", k, maxlen, id, js);
    }
    free(js);
}

void hd_result_record(const hd_facts *f)
{
    char ek[RDS_KEY_MAX], vk[RDS_KEY_MAX], sk[RDS_KEY_MAX];
    long long ttl = cfg_int(CFG_SP_EVENT_TTL);

    if (key_of(ek, sizeof ek, KEY_EXEC, f->id) != 0 ||
        key_of(vk, sizeof vk, KEY_EVENTS, f->id) != 0)
        return;
    if (f->error != NULL)
        hd_pub("HSET %s status %s exit_code %d duration_ms %lld truncated %d "
               "ended %lld error %s",
               ek, f->status, f->exit_code, f->duration_ms, f->truncated,
               hd_now_ms(), f->error);
    else
        hd_pub("HSET %s status %s exit_code %d duration_ms %lld truncated %d "
               "ended %lld",
               ek, f->status, f->exit_code, f->duration_ms, f->truncated,
               hd_now_ms());
    hd_pub("EXPIRE %s %lld", ek, ttl);
    hd_pub("EXPIRE %s %lld", vk, ttl);
    if (f->sandbox != NULL &&
        key_of(sk, sizeof sk, KEY_SBX_RUNNING, f->sandbox) == 0)
        hd_pub("SREM %s %s", sk, f->id);
}

/* The facts object of an answer. */
static cJSON *hd_facts_json(const hd_facts *f)
{
    cJSON *o = cJSON_CreateObject(), *c;

    cJSON_AddStringToObject(o, "id", f->id);
    cJSON_AddStringToObject(o, "status", f->status);
    cJSON_AddNumberToObject(o, "exit_code", f->exit_code);
    if (f->signal != NULL)
        cJSON_AddStringToObject(o, "signal", f->signal);
    cJSON_AddNumberToObject(o, "duration_ms", (double)f->duration_ms);
    cJSON_AddBoolToObject(o, "truncated", f->truncated);
    if (f->error != NULL)
        cJSON_AddStringToObject(o, "error", f->error);
    if (f->results != NULL) {
        c = cJSON_AddObjectToObject(o, "context");
        cJSON_AddItemToObject(c, "results", cJSON_Duplicate(f->results, 1));
        if (f->exception != NULL)
            cJSON_AddItemToObject(c, "exception",
                                  cJSON_Duplicate(f->exception, 1));
    }
    return o;
}

void hd_result_answer(const hd_facts *f, const char *rid)
{
    static const sp_buf none = {0};
    const sp_buf *out = f->cap[0] ? f->cap[0] : &none;
    const sp_buf *err = f->cap[1] ? f->cap[1] : &none;
    cJSON *rep;
    sp_buf b;

    if (rid == NULL || rid[0] == '\0')
        return;
    rep = cJSON_CreateObject();
    cJSON_AddItemToObject(rep, "facts", hd_facts_json(f));
    cJSON_AddNumberToObject(rep, "out_len", (double)out->len);
    /* Output may hold any bytes: it follows the JSON raw, stdout first. */
    buf_init(&b, out->len + err->len + 1);
    if ((out->len == 0 || buf_append(&b, out->data, out->len) == 0) &&
        (err->len == 0 || buf_append(&b, err->data, err->len) == 0))
        hd_reply(rid, rep, b.data ? b.data : "", b.len);
    else {
        cJSON_Delete(rep);
        hd_reply_err(rid, SP_E_INTERNAL, "result too large");
    }
    buf_free(&b);
}

void hd_exec_finish(hd_exec *e)
{
    hd_facts f;

    if (e->sbx->lost)
        return; /* ended as lost already (sp_lost.h) */
    hd_exec_facts(e, &f);
    hd_exec_scratch(e);
    /* A one-off sandbox held one of its owner's runs (sp_rpc.h). */
    if (e->sbx->ephemeral)
        rpc_run_release(e->sbx->owner, e->id);
    e->kind->finish(e, &f);
}
