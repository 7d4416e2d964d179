/* handlers/envd_process.c: envd's process.Process service over native
 * executions. A process is a background command of the sandbox (hc_exec,
 * kind command, with a PTY for pty.create); E2B names it by a pid, a small
 * number unique in the sandbox, which maps to our execution id in the
 * hash sbx:<id>:pids (sp_keys.h: "next", the last pid given, and one
 * field per pid: {exe, pty, config}). The process outlives its RPC: Start
 * and Connect only hand the request to the relay (X-Accel-Redirect to
 * /_sp/envd/<sbx>/{process|pty}/<exe>/events), whose envd route frames the
 * execution's events as Connect envelopes (sse/sse_envd.c): start {pid}
 * first, data as it comes, end, then the end of the stream. Connect
 * resumes after the last event so far (envd's re-attach sends only what
 * comes next). The Start request's Connect-Timeout-Ms is the process's
 * deadline (envd kills it then). */
#include "envd.h"
#include "sp_b64.h"
#include "sp_config.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_redis.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENVD_URI_MAX   256
#define ENVD_INPUT_MAX (1024 * 1024)
#define ENVD_LIST_MAX  1024

/* The record of process pid of sandbox c into *rec (caller frees); NULL
 * field when absent. 1 found, 0 not, -1 Redis failed. */
static int envd_proc_get(const envd_ctx *c, unsigned long pid, cJSON **rec)
{
    char k[RDS_KEY_MAX];
    redisReply *v;
    int found = 0;

    *rec = NULL;
    key_of(k, sizeof k, KEY_SBX_PIDS, c->sbx);
    v = rds_cmd("HGET %s %lu", k, pid);
    if (v == NULL || v->type == REDIS_REPLY_ERROR)
        found = -1;
    else if (v->type == REDIS_REPLY_STRING &&
             cJSON_IsObject(*rec = cJSON_Parse(v->str)) &&
             id_valid_typed(cJSON_GetStringValue(
                                cJSON_GetObjectItemCaseSensitive(*rec, "exe")),
                            "exe_"))
        found = 1;
    if (found != 1) {
        cJSON_Delete(*rec);
        *rec = NULL;
    }
    freeReplyObject(v);
    return found;
}

/* The pid of the request's "process" selector ({pid} as a number or a
 * string, proto3's int forms). 0 if absent or malformed. */
static unsigned long envd_pid_of(const cJSON *body)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(body, "process"), "pid");
    char *end;
    double d;

    if (cJSON_IsNumber(p)) {
        d = p->valuedouble;
        return d >= 1 && d <= 4294967295.0 && d == (double)(unsigned long)d
                   ? (unsigned long)d
                   : 0;
    }
    if (cJSON_IsString(p) && p->valuestring[0] >= '1' &&
        p->valuestring[0] <= '9' && strlen(p->valuestring) <= 10) {
        unsigned long v = strtoul(p->valuestring, &end, 10);
        return *end == '\0' && v <= 4294967295UL ? v : 0;
    }
    return 0;
}

/* 1 if execution exe still runs (its record has no end), 0 if it ended
 * or is unknown, -1 Redis failed. */
static int envd_exe_running(const char *exe)
{
    char k[RDS_KEY_MAX];
    redisReply *v;
    int rc;

    key_of(k, sizeof k, KEY_EXEC, exe);
    v = rds_cmd("HMGET %s status ended", k);
    if (v == NULL || v->type != REDIS_REPLY_ARRAY || v->elements != 2)
        rc = -1;
    else
        rc = v->element[0]->type == REDIS_REPLY_STRING &&
             v->element[1]->type == REDIS_REPLY_NIL;
    freeReplyObject(v);
    return rc;
}

/* The execution of the request's process into exe (SP_ID_SIZE) and its
 * record into *rec (may be NULL: not wanted), if it still runs. 0, or -1
 * after not_found (unknown pid, a process that ended: envd forgets it)
 * or unavailable. */
static int envd_proc_find(http_req *r, const envd_ctx *c, const cJSON *body,
                          char *exe, unsigned long *pid, cJSON **rec)
{
    cJSON *o = NULL;
    int found;

    *pid = envd_pid_of(body);
    found = *pid != 0 ? envd_proc_get(c, *pid, &o) : 0;
    if (found == 1)
        found = envd_exe_running(
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "exe")));
    if (found != 1) {
        cJSON_Delete(o);
        http_send_error(
            r, found < 0 ? SP_E_UNAVAILABLE : SP_E_NOT_FOUND, "process",
            found < 0 ? "state store unavailable" : "process not found");
        return -1;
    }
    snprintf(exe, SP_ID_SIZE, "%s",
             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "exe")));
    if (rec != NULL)
        *rec = o;
    else
        cJSON_Delete(o);
    return 0;
}

/* argv of a Start request's process: cmd, then its args. NULL after
 * the 400. Caller frees. */
static cJSON *envd_argv(http_req *r, const cJSON *proc)
{
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(proc, "args"), *it;
    const char *cmd;
    cJSON *argv;

    if (json_str(r, proc, "cmd", 1, 32768, &cmd) != 0)
        return NULL;
    if (args != NULL && !cJSON_IsArray(args)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "args",
                        "args must be an array of strings");
        return NULL;
    }
    argv = cJSON_CreateArray();
    cJSON_AddItemToArray(argv, cJSON_CreateString(cmd));
    cJSON_ArrayForEach(it, args)
        cJSON_AddItemToArray(argv, cJSON_Duplicate(it, 0));
    if (sbxh_argv_ok(r, argv) != 0) {
        cJSON_Delete(argv);
        return NULL;
    }
    return argv;
}

/* The process spec of a Start request into q (argv made here into *argv,
 * caller frees); cwd into cwd. 0, or -1 after the 400. */
static int envd_spec(http_req *r, const envd_ctx *c, const cJSON *body,
                     hc_exec_req *q, cJSON **argv, char *cwd, size_t cwdlen)
{
    const cJSON *proc, *pty, *size;
    const char *dir;

    if (json_obj(r, body, "process", &proc) != 0 ||
        json_obj(r, body, "pty", &pty) != 0 ||
        json_bool(r, body, "stdin", 1, &q->stdin_open) != 0)
        return -1;
    if (proc == NULL) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "process",
                        "process is required");
        return -1;
    }
    if (json_str(r, proc, "cwd", 0, ENVD_PATH_MAX - 64, &dir) != 0 ||
        json_obj(r, proc, "envs", &q->env) != 0 ||
        (q->env != NULL && sbxh_env_ok(r, q->env, "envs") != 0))
        return -1;
    if (pty != NULL) {
        size = cJSON_GetObjectItemCaseSensitive(pty, "size");
        q->pty = q->stdin_open = 1;
        if (json_int(r, size, "cols", 0, 1, 1000, 80, &q->cols) != 0 ||
            json_int(r, size, "rows", 0, 1, 1000, 24, &q->rows) != 0)
            return -1;
    }
    if (dir != NULL && dir[0] != '\0') {
        if (envd_path(r, c, dir, cwd, cwdlen) != 0)
            return -1;
        q->cwd = cwd;
    }
    if ((*argv = envd_argv(r, proc)) == NULL)
        return -1;
    q->argv = *argv;
    q->user = c->user[0] ? c->user : NULL;
    return 0;
}

/* The Start request's deadline (Connect-Timeout-Ms), capped at the
 * longest command timeout; 0: none (the process lives with its sandbox).
 * -1 after the 400 for a malformed one. */
static long long envd_deadline_ms(http_req *r)
{
    const char *h = http_header(r, "Connect-Timeout-Ms");
    long long max = cfg_int(CFG_SP_COMMAND_MAX_TIMEOUT) * 1000, v;
    char *end;

    if (h == NULL)
        return 0;
    v = strtoll(h, &end, 10);
    if (h[0] < '0' || h[0] > '9' || *end != '\0' || strlen(h) > 10 || v < 1) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "Connect-Timeout-Ms",
                        "Connect-Timeout-Ms must be a positive integer");
        return -1;
    }
    return v > max ? max : v;
}

/* Record process pid (its execution exe) with its config for List. */
static void envd_proc_put(const envd_ctx *c, unsigned long pid, const char *exe,
                          const cJSON *body, int pty)
{
    char k[RDS_KEY_MAX];
    cJSON *rec = cJSON_CreateObject(), *cfg;
    const cJSON *proc = cJSON_GetObjectItemCaseSensitive(body, "process");
    const cJSON *tag = cJSON_GetObjectItemCaseSensitive(body, "tag");
    char *s;

    cJSON_AddStringToObject(rec, "exe", exe);
    cJSON_AddBoolToObject(rec, "pty", pty);
    if (cJSON_IsString(tag))
        cJSON_AddStringToObject(rec, "tag", tag->valuestring);
    cfg = cJSON_AddObjectToObject(rec, "config");
    for (const char *const *f =
             (const char *const[]){"cmd", "args", "envs", "cwd", NULL};
         *f != NULL; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(proc, *f);
        if (v != NULL)
            cJSON_AddItemToObject(cfg, *f, cJSON_Duplicate(v, 1));
    }
    s = cJSON_PrintUnformatted(rec);
    key_of(k, sizeof k, KEY_SBX_PIDS, c->sbx);
    if (s != NULL)
        freeReplyObject(rds_cmd("HSET %s %lu %s", k, pid, s));
    freeReplyObject(rds_cmd("EXPIRE %s %lld", k,
                            cfg_int(CFG_SP_SANDBOX_MAX_TIMEOUT) +
                                cfg_int(CFG_SP_PAUSE_MAX)));
    free(s);
    cJSON_Delete(rec);
}

/* A new pid of sandbox c: 0 after the 503. */
static unsigned long envd_new_pid(http_req *r, const envd_ctx *c)
{
    char k[RDS_KEY_MAX];
    redisReply *v;
    unsigned long pid = 0;

    key_of(k, sizeof k, KEY_SBX_PIDS, c->sbx);
    v = rds_cmd("HINCRBY %s next 1", k);
    if (v != NULL && v->type == REDIS_REPLY_INTEGER && v->integer > 0 &&
        v->integer <= 4294967295LL)
        pid = (unsigned long)v->integer;
    else
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
    freeReplyObject(v);
    return pid;
}

/* The relay's route of a process's events, started at its beginning
 * (after NULL) or after the event id after. */
static void envd_stream(http_req *r, const envd_ctx *c, const char *exe,
                        unsigned long pid, int pty, const char *after)
{
    char uri[ENVD_URI_MAX];

    snprintf(uri, sizeof uri, "/_sp/envd/%s/%s/%s/events?arg=%lu%s%s", c->sbx,
             pty ? "pty" : "process", exe, pid, after ? "&lastEventId=" : "",
             after ? after : "");
    envd_relay(r, uri);
}

/* POST /process.Process/Start (server streaming). */
void envd_start(http_req *r)
{
    char exe[SP_ID_SIZE], cwd[ENVD_PATH_MAX];
    hc_exec_req q = {.stdin_open = 1};
    cJSON *body = NULL, *argv = NULL;
    unsigned long pid;
    hc_facts f;
    rpc_err err;
    envd_ctx c;

    if (envd_begin(r, &c, ENVD_STREAM) != 0 ||
        (body = envd_stream_request(r)) == NULL ||
        envd_spec(r, &c, body, &q, &argv, cwd, sizeof cwd) != 0 ||
        (q.timeout_ms = envd_deadline_ms(r)) < 0 ||
        rpc_new_id(r, "exe_", exe) != 0 || (pid = envd_new_pid(r, &c)) == 0)
        goto out;
    q.id = exe;
    q.kind = HC_KIND_COMMAND;
    q.owner = r->auth.sub;
    q.sandbox = c.sbx;
    if (hc_exec(c.helper, &q, HC_OP_WAIT_MS, 0, &f, &err) != 0) {
        http_send_rpc_error(r, &err, NULL);
        goto out;
    }
    hc_facts_free(&f);
    envd_proc_put(&c, pid, exe, body, q.pty);
    envd_stream(r, &c, exe, pid, q.pty, NULL);
out:
    cJSON_Delete(argv);
    cJSON_Delete(body);
}

/* POST /process.Process/Connect (server streaming): what the process
 * prints from now on, and its end. */
void envd_connect(http_req *r)
{
    char exe[SP_ID_SIZE], k[RDS_KEY_MAX];
    cJSON *body = NULL, *rec = NULL;
    redisReply *last = NULL;
    unsigned long pid;
    envd_ctx c;

    if (envd_begin(r, &c, ENVD_STREAM) != 0 ||
        (body = envd_stream_request(r)) == NULL ||
        envd_proc_find(r, &c, body, exe, &pid, &rec) != 0)
        goto out;
    key_of(k, sizeof k, KEY_EVENTS, exe);
    last = rds_cmd("XREVRANGE %s + - COUNT 1", k);
    if (last == NULL || last->type != REDIS_REPLY_ARRAY ||
        last->elements != 1 || last->element[0]->type != REDIS_REPLY_ARRAY ||
        last->element[0]->elements != 2 ||
        last->element[0]->element[0]->type != REDIS_REPLY_STRING) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    envd_stream(r, &c, exe, pid,
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "pty")),
                last->element[0]->element[0]->str);
out:
    freeReplyObject(last);
    cJSON_Delete(rec);
    cJSON_Delete(body);
}

/* The List entry of process pid (its record rec), or NULL if it ended. */
static cJSON *envd_list_item(const char *pid, const cJSON *rec)
{
    const char *exe =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "exe"));
    const cJSON *tag = cJSON_GetObjectItemCaseSensitive(rec, "tag");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(rec, "config");
    cJSON *o;

    if (!id_valid_typed(exe, "exe_") || envd_exe_running(exe) != 1)
        return NULL;
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "pid", atof(pid));
    if (cJSON_IsString(tag))
        cJSON_AddStringToObject(o, "tag", tag->valuestring);
    cJSON_AddItemToObject(o, "config",
                          cfg ? cJSON_Duplicate(cfg, 1) : cJSON_CreateObject());
    return o;
}

/* POST /process.Process/List: the processes that run, PTYs too. */
void envd_list(http_req *r)
{
    char k[RDS_KEY_MAX];
    cJSON *body = NULL, *root = NULL, *arr;
    redisReply *h = NULL;
    envd_ctx c;

    if (envd_begin(r, &c, ENVD_RPC) != 0 || (body = envd_unary(r)) == NULL)
        goto out;
    key_of(k, sizeof k, KEY_SBX_PIDS, c.sbx);
    h = rds_cmd("HGETALL %s", k);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    root = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(root, "processes");
    for (size_t i = 0; i + 1 < h->elements && i < 2 * ENVD_LIST_MAX; i += 2) {
        const char *pid = h->element[i]->str;
        cJSON *rec, *o;
        if (pid[0] < '1' || pid[0] > '9')
            continue; /* "next" */
        rec = cJSON_Parse(h->element[i + 1]->str);
        o = envd_list_item(pid, rec);
        if (o != NULL)
            cJSON_AddItemToArray(arr, o);
        else
            freeReplyObject(rds_cmd("HDEL %s %s", k, pid)); /* it ended */
        cJSON_Delete(rec);
    }
    envd_send(r, root);
out:
    cJSON_Delete(root);
    freeReplyObject(h);
    cJSON_Delete(body);
}

/* The unary calls on a process, each one helper operation: SendInput
 * and CloseStdin hc_stdin (CloseStdin its end of input), SendSignal
 * hc_signal, Update hc_resize. */
typedef enum envd_proc_call_kind {
    ENVD_SEND_INPUT,
    ENVD_CLOSE_STDIN,
    ENVD_SEND_SIGNAL,
    ENVD_UPDATE,
} envd_proc_call_kind;

/* The operation of SendInput, CloseStdin, SendSignal and Update on the
 * request's process: 0, or -1 after the error (body checked first). */
static int envd_proc_op(http_req *r, const envd_ctx *c, const cJSON *body,
                        envd_proc_call_kind kind)
{
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(body, "input");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(body, "pty"), "size");
    char exe[SP_ID_SIZE], *data = NULL;
    long long cols = 0, rows = 0;
    unsigned long pid;
    int sig = 0, rc = -1;
    rpc_err err;

    if (kind == ENVD_SEND_INPUT) {
        const char *b =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "stdin"));
        size_t n = 0;
        if (b == NULL)
            b = cJSON_GetStringValue(
                cJSON_GetObjectItemCaseSensitive(in, "pty"));
        if (b == NULL)
            b = ""; /* proto3 leaves empty bytes out */
        /* No input at all is no end of input: that is CloseStdin. */
        data = cJSON_IsObject(in) && strlen(b) <= ENVD_INPUT_MAX
                   ? (char *)b64_decode(b, strlen(b), &n)
                   : NULL;
        if (data == NULL || memchr(data, '\0', n) != NULL) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "input",
                            "input must be base64 text without NUL");
            goto out;
        }
        data[n] = '\0';
    } else if (kind == ENVD_SEND_SIGNAL) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(body, "signal");
        const char *name = cJSON_GetStringValue(s);
        if (name != NULL && strncmp(name, "SIGNAL_", 7) == 0)
            sig = sbxh_signal_of(name + 7);
        else if (cJSON_IsNumber(s) && (s->valueint == 9 || s->valueint == 15))
            sig = s->valueint;
        if (sig != SIGKILL && sig != SIGTERM) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "signal",
                            "signal must be SIGNAL_SIGKILL or SIGNAL_SIGTERM");
            goto out;
        }
    } else if (kind == ENVD_UPDATE &&
               (json_int(r, size, "cols", 1, 1, 1000, 0, &cols) != 0 ||
                json_int(r, size, "rows", 1, 1, 1000, 0, &rows) != 0)) {
        goto out;
    }
    if (envd_proc_find(r, c, body, exe, &pid, NULL) != 0)
        goto out;
    if (kind == ENVD_SEND_SIGNAL)
        rc = hc_signal(c->helper, c->sbx, exe, sig, &err);
    else if (kind == ENVD_UPDATE)
        rc = hc_resize(c->helper, c->sbx, exe, cols, rows, &err);
    else
        rc = hc_stdin(c->helper, c->sbx, exe, data, kind == ENVD_CLOSE_STDIN,
                      &err);
    if (rc != 0 && err.fail == RPC_ANSWER && err.st == SP_E_CONFLICT)
        /* It ended meanwhile: as envd, the process is gone. */
        http_send_error(r, SP_E_NOT_FOUND, "process", "process not found");
    else if (rc != 0)
        http_send_rpc_error(r, &err, NULL);
out:
    free(data);
    return rc;
}

/* The unary calls on a process: each answers {} once its helper has it. */
static void envd_proc_call(http_req *r, envd_proc_call_kind kind)
{
    cJSON *body = NULL;
    envd_ctx c;

    if (envd_begin(r, &c, ENVD_RPC) == 0 && (body = envd_unary(r)) != NULL &&
        envd_proc_op(r, &c, body, kind) == 0)
        envd_send(r, NULL);
    cJSON_Delete(body);
}

void envd_send_input(http_req *r)
{
    envd_proc_call(r, ENVD_SEND_INPUT);
}

void envd_send_signal(http_req *r)
{
    envd_proc_call(r, ENVD_SEND_SIGNAL);
}

/* CloseStdin is SendInput's end of input (an "input" in its body is
 * not read). */
void envd_close_stdin(http_req *r)
{
    envd_proc_call(r, ENVD_CLOSE_STDIN);
}

void envd_update(http_req *r)
{
    envd_proc_call(r, ENVD_UPDATE);
}
