/* handlers/terminal.c: the terminal family (docs/DESIGN.md §4): an interactive
 * login shell on a PTY in a sandbox (a new one that ends with the terminal,
 * or a given one), its input, its window size, and its end. Its events
 * (status, ready, output, exit) are in events:<trm id> and served by the
 * SSE relay at /terminal/{id}/events.
 *
 * Redis: terminal:<id> hash {owner, sandbox, helper, created, watched_at};
 * the relay refreshes watched_at while a client watches, and the helper
 * closes a terminal nobody watched for SP_TERMINAL_GRACE seconds or nobody
 * typed into for SP_TERMINAL_TIMEOUT. exec:<id> (the helper's) holds the
 * shell's status.
 *
 * With "workspace" (and the other fields of POST /sandboxes: template,
 * mount, limits …) the terminal's sandbox is made by the sandboxes
 * family's own create (sbxh_create, linked in as sp-envd links it): the
 * workspace is held and restored before the shell starts, in its mount.
 * That sandbox outlives the terminal (its id is in the answer) until it
 * is deleted, which syncs the workspace, or its timeout. */
#include "sandboxes.h"
#include "sp_auth.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"
#include "sp_helper.h"
#include "sp_rpc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define TRM_INPUT_MAX    (64 * 1024)
#define TRM_INPUTS_PER_S 200
#define TRM_COLS_MAX     1000
#define TRM_ROWS_MAX     500
#define TRM_WAIT_MS      30000

static long long trm_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Start the shell of terminal id (in sandbox, or in its own one-off
 * sandbox); its sandbox and helper into sbx and helper. Returns 0, or -1
 * with err filled. */
static int trm_start(http_req *r, const char *id, const char *sandbox,
                     const char *cwd, long long cols, long long rows,
                     char *helper, char *sbx, rpc_err *err)
{
    const char *sh[] = {"/bin/bash", "--login", "-i"};
    cJSON *argv = cJSON_CreateStringArray(sh, 3), *env = cJSON_CreateObject();
    hc_exec_req q = {.id = id,
                     .kind = HC_KIND_TERMINAL,
                     .owner = r->auth.sub,
                     .sandbox = sandbox,
                     .argv = argv,
                     .env = env,
                     .cwd = cwd,
                     .stdin_open = 1,
                     .pty = 1,
                     .cols = cols,
                     .rows = rows,
                     .expires_in_s = cfg_int(CFG_SP_TERMINAL_TIMEOUT) + 60};
    const cJSON *h, *b;
    hc_facts f;
    int rc;

    cJSON_AddStringToObject(env, "TERM", "xterm-256color");
    cJSON_AddStringToObject(env, "LANG", "C.UTF-8");
    /* Its own sandbox counts against the subject's one-off runs. */
    rc = hc_exec(sandbox ? helper : NULL, &q, TRM_WAIT_MS,
                 rpc_now_ms() + (cfg_int(CFG_SP_TERMINAL_TIMEOUT) + 120) * 1000,
                 &f, err);
    if (rc == 0) {
        h = cJSON_GetObjectItem(f.json, "helper");
        b = cJSON_GetObjectItem(f.json, "sandbox_id");
        if (cJSON_IsString(h))
            snprintf(helper, SP_ID_SIZE, "%s", h->valuestring);
        snprintf(sbx, SP_ID_SIZE, "%s",
                 cJSON_IsString(b) ? b->valuestring : (sandbox ? sandbox : ""));
        hc_facts_free(&f);
    }
    cJSON_Delete(argv);
    cJSON_Delete(env);
    return rc;
}

static void trm_create(http_req *r)
{
    cJSON *body = http_json_body(r, 1), *o;
    const char *sandbox, *cwd;
    char id[SP_ID_SIZE], helper[SP_ID_SIZE] = "", k[RDS_KEY_MAX],
                         sbx[SP_ID_SIZE], made[SP_ID_SIZE];
    long long cols, rows;
    rpc_err err;

    if (body == NULL)
        return;
    if (json_int(r, body, "cols", 0, 1, TRM_COLS_MAX, 80, &cols) != 0 ||
        json_int(r, body, "rows", 0, 1, TRM_ROWS_MAX, 24, &rows) != 0 ||
        json_str(r, body, "sandbox_id", 0, 64, &sandbox) != 0 ||
        json_str(r, body, "cwd", 0, 4096, &cwd) != 0)
        goto out;
    if (cwd != NULL && cwd[0] != '/') {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "cwd",
                        "cwd must be an absolute path");
        goto out;
    }
    if (sandbox == NULL &&
        cJSON_GetObjectItemCaseSensitive(body, "workspace") != NULL) {
        /* A sandbox on the workspace, made as POST /sandboxes makes one;
         * the shell starts in its mount. */
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "mount");
        if (sbxh_create(r, body, made) != 0)
            goto out;
        sandbox = made;
        if (cwd == NULL)
            cwd = cJSON_IsString(m) ? m->valuestring : "/workspace/files";
    }
    if (sandbox != NULL) {
        if (rpc_sandbox_of(r, sandbox, "sandbox_id", helper) != 0)
            goto out;
    } else if (rpc_need_helper(r) != 0) {
        goto out;
    }
    if (rpc_new_id(r, "trm_", id) != 0)
        goto out;
    /* The record exists before the shell, so the relay can serve the
     * stream from its first event. */
    key_of(k, sizeof k, KEY_TERMINAL, id);
    freeReplyObject(rds_cmd("HSET %s owner %s created %lld watched_at %lld", k,
                            r->auth.sub, trm_now_ms(), trm_now_ms()));
    freeReplyObject(
        rds_cmd("EXPIRE %s %lld", k,
                cfg_int(CFG_SP_TERMINAL_TIMEOUT) + cfg_int(CFG_SP_EVENT_TTL)));
    if (trm_start(r, id, sandbox, cwd, cols, rows, helper, sbx, &err) != 0) {
        freeReplyObject(rds_cmd("DEL %s", k));
        http_send_rpc_error(r, &err, NULL);
        /* The sandbox made for it has nothing of its own yet. */
        if (sandbox == made && hc_delete(helper, made, &err) != 0)
            log_warn("sandbox %s: delete after a failed terminal failed",
                     made);
        goto out;
    }
    freeReplyObject(rds_cmd("HSET %s sandbox %s helper %s", k, sbx, helper));
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "sandbox_id", sbx);
    cJSON_AddNumberToObject(o, "cols", (double)cols);
    cJSON_AddNumberToObject(o, "rows", (double)rows);
    http_send_json(r, 201, o);
    cJSON_Delete(o);
out:
    cJSON_Delete(body);
}

typedef struct trm_rec {
    char sandbox[SP_ID_SIZE], helper[SP_ID_SIZE], status[32];
} trm_rec;

/* The caller's terminal params[0]: 0, or -1 after 404/503. */
static int trm_lookup(http_req *r, trm_rec *t)
{
    char k[RDS_KEY_MAX], ek[RDS_KEY_MAX];
    redisReply *h = NULL, *st = NULL;
    int result = -1;

    if (!id_valid_typed(r->params[0], "trm_") ||
        key_of(k, sizeof k, KEY_TERMINAL, r->params[0]) != 0 ||
        key_of(ek, sizeof ek, KEY_EXEC, r->params[0]) != 0) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "terminal not found");
        return -1;
    }
    h = rds_cmd("HMGET %s owner sandbox helper", k);
    st = rds_cmd("HGET %s status", ek);
    if (h == NULL || st == NULL || h->type != REDIS_REPLY_ARRAY ||
        h->elements != 3) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    if (h->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(h->element[0]->str, r->auth.sub) != 0) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "terminal not found");
        goto out;
    }
    snprintf(t->sandbox, sizeof t->sandbox, "%s",
             h->element[1]->type == REDIS_REPLY_STRING ? h->element[1]->str
                                                       : "");
    snprintf(t->helper, sizeof t->helper, "%s",
             h->element[2]->type == REDIS_REPLY_STRING ? h->element[2]->str
                                                       : "");
    snprintf(t->status, sizeof t->status, "%s",
             st->type == REDIS_REPLY_STRING ? st->str : "starting");
    result = 0;
out:
    freeReplyObject(h);
    freeReplyObject(st);
    return result;
}

/* Input (data), a window size (cols, rows) or the end (op cancel) for
 * terminal t: 204 once its helper has it; 409 when it has ended. */
static void trm_op(http_req *r, const trm_rec *t, hc_op op, const char *data,
                   long long cols, long long rows)
{
    rpc_err err;
    int rc;

    if (strcmp(t->status, "running") != 0 || !id_valid(t->helper)) {
        http_send_error(r, SP_E_CONFLICT, NULL, "terminal has ended");
        return;
    }
    if (op == HC_STDIN)
        rc = hc_stdin(t->helper, t->sandbox, r->params[0], data, 0, &err);
    else if (op == HC_RESIZE)
        rc = hc_resize(t->helper, t->sandbox, r->params[0], cols, rows, &err);
    else
        rc = hc_signal(t->helper, t->sandbox, r->params[0], SIGKILL, &err);
    if (rc != 0)
        http_send_rpc_error(r, &err, NULL);
    else
        http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
}

static void trm_input(http_req *r)
{
    cJSON *body = http_json_body(r, 0);
    const char *data;
    char k[RDS_KEY_MAX + 8];
    redisReply *n;
    trm_rec t;

    if (body == NULL)
        return;
    if (json_str(r, body, "data", 1, TRM_INPUT_MAX, &data) != 0 ||
        trm_lookup(r, &t) != 0)
        goto out;
    /* At most TRM_INPUTS_PER_S inputs per second per terminal. */
    key_of(k, sizeof k, KEY_TRMRATE, r->params[0]);
    n = rds_cmd("INCR %s", k);
    if (n != NULL && n->type == REDIS_REPLY_INTEGER && n->integer == 1)
        freeReplyObject(rds_cmd("EXPIRE %s 1", k));
    if (n != NULL && n->type == REDIS_REPLY_INTEGER &&
        n->integer > TRM_INPUTS_PER_S) {
        freeReplyObject(n);
        http_send_error(r, SP_E_RATE_LIMITED, NULL, "too much input");
        goto out;
    }
    freeReplyObject(n);
    trm_op(r, &t, HC_STDIN, data, 0, 0);
out:
    cJSON_Delete(body);
}

static void trm_resize(http_req *r)
{
    cJSON *body = http_json_body(r, 0);
    long long cols, rows;
    trm_rec t;

    if (body == NULL)
        return;
    if (json_int(r, body, "cols", 1, 1, TRM_COLS_MAX, 0, &cols) == 0 &&
        json_int(r, body, "rows", 1, 1, TRM_ROWS_MAX, 0, &rows) == 0 &&
        trm_lookup(r, &t) == 0)
        trm_op(r, &t, HC_RESIZE, NULL, cols, rows);
    cJSON_Delete(body);
}

static void trm_get(http_req *r)
{
    trm_rec t;
    cJSON *o;

    if (trm_lookup(r, &t) != 0)
        return;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->params[0]);
    cJSON_AddStringToObject(o, "sandbox_id", t.sandbox);
    cJSON_AddStringToObject(o, "status", t.status);
    http_send_json(r, 200, o);
    cJSON_Delete(o);
}

static void trm_delete(http_req *r)
{
    trm_rec t;

    if (trm_lookup(r, &t) != 0)
        return;
    if (strcmp(t.status, "running") != 0) {
        http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
        return;
    }
    trm_op(r, &t, HC_SIGNAL, NULL, 0, 0);
}

static const http_route trm_routes[] = {
    {"POST", "/terminal", trm_create, AUTH_REQUIRED},
    {"GET", "/terminal/*", trm_get, AUTH_REQUIRED},
    {"DELETE", "/terminal/*", trm_delete, AUTH_REQUIRED},
    {"POST", "/terminal/*/input", trm_input, AUTH_REQUIRED},
    {"POST", "/terminal/*/resize", trm_resize, AUTH_REQUIRED},
};

int main(void)
{
    return http_main("terminal", trm_routes,
                     sizeof trm_routes / sizeof trm_routes[0], NULL);
}
