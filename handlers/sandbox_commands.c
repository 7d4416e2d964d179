/* handlers/sandbox_commands.c: the commands routes of the sandboxes
 * family: run a command (waiting for its result, or in the background),
 * its status and output events, its stdin, signals and window size; and
 * package installs (a pip or npm command). The helper runs them
 * (hd_exec.c); events are in events:<exe id>. */
#include "sandboxes.h"
#include "sp_auth.h"
#include "sp_buf.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_redis.h"
#include "sp_utf8.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SBXH_ARGV_MAX      256
#define SBXH_STDIN_MAX     (1024 * 1024)
#define SBXH_EVENTS_PAGE   1000
#define SBXH_WAIT_SLACK_MS 10000

int sbxh_argv_ok(http_req *r, const cJSON *argv)
{
    const cJSON *it;
    int n = 0;
    if (!cJSON_IsArray(argv) || cJSON_GetArraySize(argv) == 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "argv",
                        "argv must be a non-empty array of strings");
        return -1;
    }
    cJSON_ArrayForEach(it, argv)
    {
        if (!cJSON_IsString(it) || strlen(it->valuestring) > 32768 ||
            ++n > SBXH_ARGV_MAX) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "argv",
                            "argv must be at most %d strings of <= 32 KiB",
                            SBXH_ARGV_MAX);
            return -1;
        }
    }
    return 0;
}

/* The answer of a command that ran to its end: {exitCode, status,
 * truncated, signal?, execution_id, duration_ms, stdout, stderr}. The
 * one place this shape is made. */
static void sbxh_command_answer(http_req *r, const hc_facts *f)
{
    static const char *const streams[2] = {"stdout", "stderr"};
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(f->json, "signal");
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(f->json, "error");
    const cJSON *it;
    sp_buf b;

    buf_init_sticky(&b, 2 * (f->out_len[0] + f->out_len[1]) * 6 + 1024);
    it = cJSON_GetObjectItemCaseSensitive(f->json, "status");
    buf_printf(
        &b, "{\"exitCode\":%d,\"status\":\"%s\",\"truncated\":%s",
        (int)cJSON_GetNumberValue(
            cJSON_GetObjectItemCaseSensitive(f->json, "exit_code")),
        cJSON_IsString(it) ? it->valuestring : "error",
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f->json, "truncated"))
            ? "true"
            : "false");
    if (cJSON_IsString(sig)) {
        buf_puts(&b, ",\"signal\":");
        utf8_json_string((const unsigned char *)sig->valuestring,
                         strlen(sig->valuestring), &b);
    }
    /* Why the helper ended it (the sandbox was lost). */
    if (cJSON_IsString(why)) {
        buf_puts(&b, ",\"error\":");
        utf8_json_string((const unsigned char *)why->valuestring,
                         strlen(why->valuestring), &b);
    }
    buf_printf(
        &b, ",\"execution_id\":\"%s\",\"duration_ms\":%lld",
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f->json, "id")),
        (long long)cJSON_GetNumberValue(
            cJSON_GetObjectItemCaseSensitive(f->json, "duration_ms")));
    /* Output may hold any bytes: made valid UTF-8 in JSON strings. */
    for (int w = 0; w < 2; w++) {
        buf_printf(&b, ",\"%s\":", streams[w]);
        utf8_json_string((const unsigned char *)f->out[w], f->out_len[w], &b);
    }
    buf_puts(&b, "}");
    if (buf_failed(&b))
        http_send_error(r, SP_E_INTERNAL, NULL, "result too large");
    else
        http_send_raw(r, 200, "application/json; charset=utf-8", b.data, b.len);
    buf_free(&b);
}

/* Run q (its argv, env, … set) in sandbox params[0] on helper; the
 * answer is the result (sync) or 202 {execution_id, status} (bg). */
static void sbxh_run(http_req *r, const char *helper, hc_exec_req *q, int bg,
                     long long timeout_s)
{
    char exe[SP_ID_SIZE];
    hc_facts f;
    rpc_err err;
    cJSON *o;

    if (rpc_new_id(r, "exe_", exe) != 0)
        return;
    q->id = exe;
    q->kind = HC_KIND_COMMAND;
    q->owner = r->auth.sub;
    q->sandbox = r->params[0];
    q->timeout_ms = timeout_s * 1000;
    q->wait = !bg;
    if (hc_exec(helper, q,
                bg ? HC_OP_WAIT_MS : (timeout_s * 1000 + SBXH_WAIT_SLACK_MS), 0,
                &f, &err) != 0) {
        http_send_rpc_error(r, &err, NULL);
        return;
    }
    if (bg) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "execution_id", exe);
        cJSON_AddStringToObject(o, "status", "running");
        http_send_json(r, 202, o);
        cJSON_Delete(o);
    } else {
        sbxh_command_answer(r, &f);
    }
    hc_facts_free(&f);
}

void sbxh_commands(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *sh = NULL;
    const cJSON *argv = NULL;
    const char *cmd;
    char helper[SP_ID_SIZE];
    long long timeout;
    hc_exec_req q = {0};
    int bg;

    if (body == NULL)
        return;
    if (json_str(r, body, "cmd", 0, 65536, &cmd) != 0 ||
        json_str(r, body, "cwd", 0, 4096, &q.cwd) != 0 ||
        json_str(r, body, "user", 0, 64, &q.user) != 0 ||
        json_str(r, body, "stdin", 0, SBXH_STDIN_MAX, &q.stdin_data) != 0 ||
        json_obj(r, body, "env", &q.env) != 0 ||
        json_int(r, body, "timeout", 0, 1, cfg_int(CFG_SP_COMMAND_MAX_TIMEOUT),
                 cfg_int(CFG_SP_COMMAND_TIMEOUT), &timeout) != 0 ||
        json_bool(r, body, "background", 0, &bg) != 0 ||
        json_bool(r, body, "pty", 0, &q.pty) != 0 ||
        json_bool(r, body, "stdin_open", 0, &q.stdin_open) != 0 ||
        json_int(r, body, "cols", 0, 1, 1000, 80, &q.cols) != 0 ||
        json_int(r, body, "rows", 0, 1, 1000, 24, &q.rows) != 0)
        goto out;
    argv = cJSON_GetObjectItemCaseSensitive(body, "argv");
    if ((cmd == NULL) == (argv == NULL)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "cmd",
                        "give exactly one of cmd and argv");
        goto out;
    }
    if ((argv != NULL && sbxh_argv_ok(r, argv) != 0) ||
        (q.env != NULL && sbxh_env_ok(r, q.env, "env") != 0))
        goto out;
    if (q.cwd != NULL && q.cwd[0] != '/') {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "cwd",
                        "cwd must be an absolute path");
        goto out;
    }
    if (sbxh_lookup(r, r->params[0], helper) != 0)
        goto out;
    if (argv == NULL) {
        const char *v[] = {"/bin/sh", "-c", cmd};
        argv = sh = cJSON_CreateStringArray(v, 3);
    }
    q.argv = argv;
    sbxh_run(r, helper, &q, bg, timeout);
out:
    cJSON_Delete(sh);
    cJSON_Delete(body);
}

/* Check that execution params[1] belongs to sandbox params[0] and to the
 * caller. Returns 0 or -1 (404 sent). */
static int sbxh_exec_lookup(http_req *r, char *helper)
{
    char k[RDS_KEY_MAX];
    redisReply *rep;
    int ok;

    if (sbxh_lookup(r, r->params[0], helper) != 0)
        return -1;
    if (!id_valid_typed(r->params[1], "exe_") ||
        key_of(k, sizeof k, KEY_EXEC, r->params[1]) != 0) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "execution not found");
        return -1;
    }
    rep = rds_cmd("HMGET %s owner sandbox", k);
    ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
         rep->element[0]->type == REDIS_REPLY_STRING &&
         rep->element[1]->type == REDIS_REPLY_STRING &&
         strcmp(rep->element[0]->str, r->auth.sub) == 0 &&
         strcmp(rep->element[1]->str, r->params[0]) == 0;
    freeReplyObject(rep);
    if (!ok)
        http_send_error(r, SP_E_NOT_FOUND, NULL, "execution not found");
    return ok ? 0 : -1;
}

void sbxh_exec_get(http_req *r)
{
    char helper[SP_ID_SIZE], k[RDS_KEY_MAX];
    redisReply *h;
    cJSON *o;
    const char *v;

    if (sbxh_exec_lookup(r, helper) != 0)
        return;
    key_of(k, sizeof k, KEY_EXEC, r->params[1]);
    h = rds_cmd("HGETALL %s", k);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(h);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "execution_id", r->params[1]);
    cJSON_AddStringToObject(o, "sandbox_id", r->params[0]);
    cJSON_AddStringToObject(o, "status",
                            (v = sbxh_field(h, "status")) ? v : "unknown");
    if ((v = sbxh_field(h, "exit_code")) != NULL)
        cJSON_AddNumberToObject(o, "exitCode", atof(v));
    if ((v = sbxh_field(h, "duration_ms")) != NULL)
        cJSON_AddNumberToObject(o, "duration_ms", atof(v));
    if ((v = sbxh_field(h, "truncated")) != NULL)
        cJSON_AddBoolToObject(o, "truncated", strcmp(v, "1") == 0);
    if ((v = sbxh_field(h, "error")) != NULL)
        cJSON_AddStringToObject(o, "error", v);
    freeReplyObject(h);
    http_send_json(r, 200, o);
    cJSON_Delete(o);
}

void sbxh_send_events(http_req *r, sp_key_family f, const char *id,
                      const char *param, const char *status)
{
    char k[RDS_KEY_MAX], after[64] = "-", start[80];
    redisReply *rep;
    sp_buf b;
    const char *last = NULL;

    if (http_query(r, param, after, sizeof after) < 0 || after[0] == '\0' ||
        strspn(after, "0123456789-") != strlen(after)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, param,
                        "%s must be an event id", param);
        return;
    }
    snprintf(start, sizeof start, "%s%s", strcmp(after, "-") ? "(" : "", after);
    key_of(k, sizeof k, f, id);
    rep = rds_cmd("XRANGE %s %s + COUNT %d", k, start, SBXH_EVENTS_PAGE);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return;
    }
    buf_init_sticky(&b, (size_t)64 << 20);
    buf_puts(&b, "{\"events\":[");
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i], *fl = e->element[1];
        const char *type = "unknown";
        const redisReply *data = NULL;
        for (size_t j = 0; j + 1 < fl->elements; j += 2) {
            if (strcmp(fl->element[j]->str, "type") == 0)
                type = fl->element[j + 1]->str;
            else if (strcmp(fl->element[j]->str, "data") == 0)
                data = fl->element[j + 1];
        }
        last = e->element[0]->str;
        buf_printf(&b,
                   "%s{\"id\":\"%s\",\"type\":\"%s\",\"data\":", i ? "," : "",
                   last, type);
        if (data == NULL)
            buf_puts(&b, "null");
        else if (strcmp(type, "stdout") == 0 || strcmp(type, "stderr") == 0)
            utf8_json_string((const unsigned char *)data->str, data->len, &b);
        else /* helper-made JSON; its strings made valid UTF-8 */
            utf8_sanitize((const unsigned char *)data->str, data->len, &b);
        buf_puts(&b, "}");
    }
    buf_printf(&b, "],\"next\":\"%s\"", last ? last : after);
    if (status != NULL)
        buf_printf(&b, ",\"status\":\"%s\"", status);
    buf_puts(&b, "}");
    if (!buf_failed(&b))
        http_send_raw(r, 200, "application/json; charset=utf-8", b.data, b.len);
    else
        http_send_error(r, SP_E_INTERNAL, NULL, "events too large");
    buf_free(&b);
    freeReplyObject(rep);
}

/* GET …/commands/{exe}/output?after=<event id>: the events so far, as JSON
 * (for clients without SSE). Output bytes are made valid UTF-8. */
void sbxh_exec_output(http_req *r)
{
    char helper[SP_ID_SIZE];

    if (sbxh_exec_lookup(r, helper) == 0)
        sbxh_send_events(r, KEY_EVENTS, r->params[1], "after", NULL);
}

int sbxh_signal_of(const char *name)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {
        {"SIGTERM", SIGTERM}, {"SIGKILL", SIGKILL}, {"SIGINT", SIGINT},
        {"SIGHUP", SIGHUP},   {"SIGQUIT", SIGQUIT}, {"SIGUSR1", SIGUSR1},
        {"SIGUSR2", SIGUSR2}, {"SIGSTOP", SIGSTOP}, {"SIGCONT", SIGCONT}};

    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (strcmp(name, sigs[i].name) == 0 ||
            strcmp(name, sigs[i].name + 3) == 0)
            return sigs[i].sig;
    }
    return 0;
}

/* Input, a signal or a window size (op) for command params[1] of sandbox
 * params[0]: 204 once its helper has it. */
static void sbxh_exec_ctl(http_req *r, hc_op op)
{
    cJSON *body = http_json_body(r, 0);
    char helper[SP_ID_SIZE];
    const char *data = NULL, *name;
    long long cols = 0, rows = 0;
    int eof = 0, sig = 0, rc;
    rpc_err err;

    if (body == NULL)
        return;
    if (op == HC_STDIN) {
        if (json_str(r, body, "data", 0, SBXH_STDIN_MAX, &data) != 0 ||
            json_bool(r, body, "eof", 0, &eof) != 0)
            goto out;
    } else if (op == HC_SIGNAL) {
        if (json_str(r, body, "signal", 1, 16, &name) != 0)
            goto out;
        if ((sig = sbxh_signal_of(name)) == 0) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "signal",
                            "signal must be one of TERM, KILL, INT, HUP, "
                            "QUIT, USR1, USR2, STOP, CONT");
            goto out;
        }
    } else if (json_int(r, body, "cols", 1, 1, 1000, 0, &cols) != 0 ||
               json_int(r, body, "rows", 1, 1, 1000, 0, &rows) != 0) {
        goto out;
    }
    if (sbxh_exec_lookup(r, helper) != 0)
        goto out;
    if (op == HC_STDIN)
        rc = hc_stdin(helper, r->params[0], r->params[1], data, eof, &err);
    else if (op == HC_SIGNAL)
        rc = hc_signal(helper, r->params[0], r->params[1], sig, &err);
    else
        rc = hc_resize(helper, r->params[0], r->params[1], cols, rows, &err);
    if (rc != 0)
        http_send_rpc_error(r, &err, NULL);
    else
        http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
out:
    cJSON_Delete(body);
}

void sbxh_exec_stdin(http_req *r)
{
    sbxh_exec_ctl(r, HC_STDIN);
}

void sbxh_exec_signal(http_req *r)
{
    sbxh_exec_ctl(r, HC_SIGNAL);
}

void sbxh_exec_resize(http_req *r)
{
    sbxh_exec_ctl(r, HC_RESIZE);
}

/* ---- packages --------------------------------------------------------- */

/* A package spec: name[extras][==version] style characters only, and never
 * starting with '-' so that it cannot be read as an option. */
static int sbxh_pkg_ok(const char *p)
{
    if (p[0] == '\0' || p[0] == '-' || strlen(p) > 214)
        return 0;
    return strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._-@/=<>~^[],!*") == strlen(p);
}

void sbxh_packages(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *argv = NULL;
    const cJSON *pk, *it;
    const char *mgr;
    hc_exec_req q = {0};
    char helper[SP_ID_SIZE], k[RDS_KEY_MAX];
    redisReply *net = NULL;

    if (body == NULL)
        return;
    if (json_str(r, body, "manager", 1, 8, &mgr) != 0)
        goto out;
    if (strcmp(mgr, "pip") != 0 && strcmp(mgr, "npm") != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "manager",
                        "manager must be pip or npm");
        goto out;
    }
    pk = cJSON_GetObjectItemCaseSensitive(body, "packages");
    if (!cJSON_IsArray(pk) || cJSON_GetArraySize(pk) < 1 ||
        cJSON_GetArraySize(pk) > 64) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "packages",
                        "packages must be an array of 1 to 64 names");
        goto out;
    }
    cJSON_ArrayForEach(it, pk)
    {
        if (!cJSON_IsString(it) || !sbxh_pkg_ok(it->valuestring)) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "packages",
                            "invalid package name");
            goto out;
        }
    }
    if (sbxh_lookup(r, r->params[0], helper) != 0)
        goto out;
    key_of(k, sizeof k, KEY_SBX, r->params[0]);
    net = rds_cmd("HGET %s network", k);
    if (net == NULL || net->type != REDIS_REPLY_STRING ||
        strcmp(net->str, "1") != 0) {
        http_send_error(r, SP_E_CONFLICT, "network",
                        "installing packages needs network: create the "
                        "sandbox with \"network\": true");
        goto out;
    }
    argv = cJSON_CreateArray();
    if (strcmp(mgr, "pip") == 0) {
        const char *pre[] = {"python3",
                             "-m",
                             "pip",
                             "install",
                             "--user",
                             "--no-input",
                             "--disable-pip-version-check",
                             "--"};
        for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
            cJSON_AddItemToArray(argv, cJSON_CreateString(pre[i]));
    } else {
        const char *pre[] = {"npm",        "install",    "--prefix",
                             "/workspace", "--no-audit", "--no-fund",
                             "--"};
        for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
            cJSON_AddItemToArray(argv, cJSON_CreateString(pre[i]));
    }
    cJSON_ArrayForEach(it, pk)
        cJSON_AddItemToArray(argv, cJSON_CreateString(it->valuestring));
    q.argv = argv;
    sbxh_run(r, helper, &q, 0, 600);
out:
    cJSON_Delete(argv);
    freeReplyObject(net);
    cJSON_Delete(body);
}
