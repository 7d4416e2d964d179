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

#define SBXH_ARGV_MAX    256
#define SBXH_STDIN_MAX   (1024 * 1024)
#define SBXH_EVENTS_PAGE 1000
#define SBXH_OP_WAIT_MS  10000

static int sbxh_argv_ok(http_req *r, const cJSON *argv)
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

/* Start argv in the sandbox. Sync: the response is the result. */
static void sbxh_run(http_req *r, const char *helper, cJSON *args, int bg,
                     long long timeout)
{
    char exe[SP_ID_SIZE], msg[RPC_MSG_SIZE];
    rpc_reply rr;
    sp_status st;
    cJSON *o;

    if (id_generate("exe_", exe, sizeof exe) != 0) {
        cJSON_Delete(args);
        http_send_error(r, SP_E_INTERNAL, NULL, "could not make an id");
        return;
    }
    cJSON_AddStringToObject(args, "id", exe);
    cJSON_AddNumberToObject(args, "timeout", (double)timeout);
    cJSON_AddBoolToObject(args, "background", bg);
    st = sbxh_op(helper, r->params[0], "exec", args,
                 bg ? SBXH_OP_WAIT_MS : (timeout * 1000 + SBXH_OP_WAIT_MS), &rr,
                 msg, sizeof msg);
    if (st != SP_OK) {
        sbxh_send_rpc_error(r, st, msg);
        return;
    }
    if (bg) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "execution_id", exe);
        cJSON_AddStringToObject(o, "status", "running");
        http_send_json(r, 202, o);
        cJSON_Delete(o);
    } else if (rr.data != NULL) {
        /* The helper encoded the result itself (any bytes in output). */
        http_send_raw(r, 200, "application/json; charset=utf-8", rr.data,
                      rr.len);
    } else {
        http_send_error(r, SP_E_INTERNAL, NULL, "helper sent no result");
    }
    rpc_reply_free(&rr);
}

void sbxh_commands(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *args = NULL;
    const cJSON *argv = NULL, *env;
    const char *cmd, *cwd, *in;
    char helper[SP_ID_SIZE];
    long long timeout, cols, rows;
    int bg, pty, in_open;

    if (body == NULL)
        return;
    if (json_str(r, body, "cmd", 0, 65536, &cmd) != 0 ||
        json_str(r, body, "cwd", 0, 4096, &cwd) != 0 ||
        json_str(r, body, "stdin", 0, SBXH_STDIN_MAX, &in) != 0 ||
        json_obj(r, body, "env", &env) != 0 ||
        json_int(r, body, "timeout", 0, 1, cfg_int(CFG_SP_COMMAND_MAX_TIMEOUT),
                 cfg_int(CFG_SP_COMMAND_TIMEOUT), &timeout) != 0 ||
        json_bool(r, body, "background", 0, &bg) != 0 ||
        json_bool(r, body, "pty", 0, &pty) != 0 ||
        json_bool(r, body, "stdin_open", 0, &in_open) != 0 ||
        json_int(r, body, "cols", 0, 1, 1000, 80, &cols) != 0 ||
        json_int(r, body, "rows", 0, 1, 1000, 24, &rows) != 0)
        goto out;
    argv = cJSON_GetObjectItemCaseSensitive(body, "argv");
    if ((cmd == NULL) == (argv == NULL)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "cmd",
                        "give exactly one of cmd and argv");
        goto out;
    }
    if ((argv != NULL && sbxh_argv_ok(r, argv) != 0) ||
        (env != NULL && sbxh_env_ok(r, env, "env") != 0))
        goto out;
    if (cwd != NULL && cwd[0] != '/') {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "cwd",
                        "cwd must be an absolute path");
        goto out;
    }
    if (sbxh_lookup(r, r->params[0], helper) != 0)
        goto out;
    args = cJSON_CreateObject();
    if (argv != NULL) {
        cJSON_AddItemToObject(args, "argv", cJSON_Duplicate(argv, 1));
    } else {
        const char *sh[] = {"/bin/sh", "-c", cmd};
        cJSON_AddItemToObject(args, "argv", cJSON_CreateStringArray(sh, 3));
    }
    if (cwd != NULL)
        cJSON_AddStringToObject(args, "cwd", cwd);
    if (env != NULL)
        cJSON_AddItemToObject(args, "env", cJSON_Duplicate(env, 1));
    if (in != NULL)
        cJSON_AddStringToObject(args, "stdin", in);
    cJSON_AddBoolToObject(args, "stdin_open", in_open);
    cJSON_AddBoolToObject(args, "pty", pty);
    cJSON_AddNumberToObject(args, "cols", (double)cols);
    cJSON_AddNumberToObject(args, "rows", (double)rows);
    sbxh_run(r, helper, args, bg, timeout);
out:
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

/* GET …/commands/{exe}/output?after=<event id>: the events so far, as JSON
 * (for clients without SSE). Output bytes are made valid UTF-8. */
void sbxh_exec_output(http_req *r)
{
    char helper[SP_ID_SIZE], k[RDS_KEY_MAX], after[64] = "-", start[80];
    redisReply *rep;
    sp_buf b;
    const char *last = NULL;

    if (sbxh_exec_lookup(r, helper) != 0)
        return;
    if (http_query(r, "after", after, sizeof after) < 0 ||
        strspn(after, "0123456789-") != strlen(after)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "after",
                        "after must be an event id");
        return;
    }
    snprintf(start, sizeof start, "%s%s", strcmp(after, "-") ? "(" : "", after);
    key_of(k, sizeof k, KEY_EVENTS, r->params[1]);
    rep = rds_cmd("XRANGE %s %s + COUNT %d", k, start, SBXH_EVENTS_PAGE);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return;
    }
    buf_init_sticky(&b, (size_t)64 << 20);
    buf_puts(&b, "{\"events\":[");
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i], *f = e->element[1];
        const char *type = "unknown";
        const redisReply *data = NULL;
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            if (strcmp(f->element[j]->str, "type") == 0)
                type = f->element[j + 1]->str;
            else if (strcmp(f->element[j]->str, "data") == 0)
                data = f->element[j + 1];
        }
        last = e->element[0]->str;
        buf_printf(&b,
                   "%s{\"id\":\"%s\",\"type\":\"%s\",\"data\":", i ? "," : "",
                   last, type);
        if (data == NULL)
            buf_puts(&b, "null");
        else if (strcmp(type, "stdout") == 0 || strcmp(type, "stderr") == 0)
            utf8_json_string((const unsigned char *)data->str, data->len, &b);
        else
            buf_append(&b, data->str, data->len); /* helper-made JSON */
        buf_puts(&b, "}");
    }
    buf_printf(&b, "],\"next\":\"%s\"}", last ? last : after);
    if (!buf_failed(&b))
        http_send_raw(r, 200, "application/json; charset=utf-8", b.data, b.len);
    else
        http_send_error(r, SP_E_INTERNAL, NULL, "events too large");
    buf_free(&b);
    freeReplyObject(rep);
}

static void sbxh_exec_ctl(http_req *r, const char *op)
{
    cJSON *body = http_json_body(r, 0), *args = cJSON_CreateObject();
    char helper[SP_ID_SIZE], msg[RPC_MSG_SIZE];
    rpc_reply rr;
    sp_status st;

    if (body == NULL)
        goto out;
    if (strcmp(op, "stdin") == 0) {
        const char *data;
        int eof;
        if (json_str(r, body, "data", 0, SBXH_STDIN_MAX, &data) != 0 ||
            json_bool(r, body, "eof", 0, &eof) != 0)
            goto out;
        if (data != NULL)
            cJSON_AddStringToObject(args, "data", data);
        cJSON_AddBoolToObject(args, "eof", eof);
    } else if (strcmp(op, "signal") == 0) {
        static const struct {
            const char *name;
            int sig;
        } sigs[] = {
            {"SIGTERM", SIGTERM}, {"SIGKILL", SIGKILL}, {"SIGINT", SIGINT},
            {"SIGHUP", SIGHUP},   {"SIGQUIT", SIGQUIT}, {"SIGUSR1", SIGUSR1},
            {"SIGUSR2", SIGUSR2}, {"SIGSTOP", SIGSTOP}, {"SIGCONT", SIGCONT}};
        const char *name;
        int sig = 0;
        if (json_str(r, body, "signal", 1, 16, &name) != 0)
            goto out;
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
            if (strcmp(name, sigs[i].name) == 0 ||
                strcmp(name, sigs[i].name + 3) == 0)
                sig = sigs[i].sig;
        }
        if (sig == 0) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "signal",
                            "signal must be one of TERM, KILL, INT, HUP, "
                            "QUIT, USR1, USR2, STOP, CONT");
            goto out;
        }
        cJSON_AddNumberToObject(args, "signal", sig);
    } else {
        long long cols, rows;
        if (json_int(r, body, "cols", 1, 1, 1000, 0, &cols) != 0 ||
            json_int(r, body, "rows", 1, 1, 1000, 0, &rows) != 0)
            goto out;
        cJSON_AddNumberToObject(args, "cols", (double)cols);
        cJSON_AddNumberToObject(args, "rows", (double)rows);
    }
    if (sbxh_exec_lookup(r, helper) != 0)
        goto out;
    cJSON_AddStringToObject(args, "exe", r->params[1]);
    st = sbxh_op(helper, r->params[0], op, args, SBXH_OP_WAIT_MS, &rr, msg,
                 sizeof msg);
    args = NULL;
    if (st != SP_OK) {
        sbxh_send_rpc_error(r, st, msg);
        goto out;
    }
    rpc_reply_free(&rr);
    http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
out:
    cJSON_Delete(args);
    cJSON_Delete(body);
}

void sbxh_exec_stdin(http_req *r)
{
    sbxh_exec_ctl(r, "stdin");
}

void sbxh_exec_signal(http_req *r)
{
    sbxh_exec_ctl(r, "signal");
}

void sbxh_exec_resize(http_req *r)
{
    sbxh_exec_ctl(r, "resize");
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
    cJSON *body = http_json_body(r, 0), *args, *argv;
    const cJSON *pk, *it;
    const char *mgr;
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
    args = cJSON_CreateObject();
    argv = cJSON_AddArrayToObject(args, "argv");
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
    sbxh_run(r, helper, args, 0, 600);
out:
    freeReplyObject(net);
    cJSON_Delete(body);
}
