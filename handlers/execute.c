/* handlers/execute.c: the execute family (docs/DESIGN.md §4.3): run code in a
 * language, waiting (/execute) or streaming (/execute-stream, events served
 * by the sse/ relay), in a given sandbox or in a one-off sandbox from the
 * helper's pool; executions (get, cancel, stdin); the language list; and a
 * heuristic "does this chat message want code run?". Runs in a stateful
 * context and the contexts routes are in contexts.c (execute.h says
 * which file holds what).
 *
 * The code is written to /tmp/sp_<exe>.<ext> inside the sandbox and run
 * from there (argv stays small, any size of code up to the limit works).
 * C is compiled first by the helper as the execution's first step; when
 * that fails the program never runs and the status is "compile_error".
 *
 * Redis keys: exec:<id> and events:<id> (written by the helper),
 * client:<sub>:<clientId> (a capped stream of {type:"execution",
 * data:<exe id>} entries read by the relay for /events?clientId=). */
#include "execute.h"
#include "sp_auth.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXE_CODE_MAX           (512 * 1024)
#define EXE_FILES_MAX          64
#define EXE_FILE_MAX           (512 * 1024)
#define EXE_TIMEOUT_DEFAULT_MS 30000
#define EXE_WAIT_SLACK_MS      15000

/* A request to /execute or /execute-stream, validated. Strings and JSON
 * stay the body's, but files, which gains the code file. */
typedef struct exe_req {
    const char *code, *lang_name, *in, *sandbox, *ctx, *client;
    const cJSON *env;
    const exe_lang *lang;
    long long timeout_ms;
    cJSON *files; /* [{path, content}]; owned */
    int stream;
} exe_req;

/* The argv that runs the code file path for lang. */
static cJSON *exe_argv(const exe_lang *lang, const char *path, const char *exe)
{
    char script[96];
    if (strcmp(lang->name, "python") == 0) {
        const char *v[] = {"python3", "-u", path};
        return cJSON_CreateStringArray(v, 3);
    }
    if (strcmp(lang->name, "javascript") == 0) {
        const char *v[] = {"node", path};
        return cJSON_CreateStringArray(v, 2);
    }
    if (strcmp(lang->name, "bash") == 0) {
        const char *v[] = {"bash", path};
        return cJSON_CreateStringArray(v, 2);
    }
    /* C: the program is the binary that the compile step (exe_compile)
     * leaves next to the code. */
    snprintf(script, sizeof script, "/tmp/sp_%s", exe);
    {
        const char *v[] = {script};
        return cJSON_CreateStringArray(v, 1);
    }
}

/* The compile step for lang, or NULL when it runs from source. */
static cJSON *exe_compile(const exe_lang *lang, const char *path,
                          const char *exe)
{
    char bin[96];
    if (strcmp(lang->name, "c") != 0)
        return NULL;
    snprintf(bin, sizeof bin, "/tmp/sp_%s", exe);
    {
        const char *v[] = {"gcc", "-O1", "-o", bin, path, "-lm"};
        return cJSON_CreateStringArray(v, 6);
    }
}

/* Validate files [{path, content}] into a fresh array of the same shape. */
static cJSON *exe_files(http_req *r, const cJSON *body)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(body, "files"), *f;
    cJSON *out = cJSON_CreateArray();

    if (files == NULL || cJSON_IsNull(files))
        return out;
    if (!cJSON_IsArray(files) || cJSON_GetArraySize(files) > EXE_FILES_MAX) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "files",
                        "files must be an array of at most %d {path, "
                        "content}",
                        EXE_FILES_MAX);
        goto fail;
    }
    cJSON_ArrayForEach(f, files)
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "path");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(f, "content");
        cJSON *o;
        if (!cJSON_IsString(p) || p->valuestring[0] == '\0' ||
            strlen(p->valuestring) > 4096 || !cJSON_IsString(c) ||
            strlen(c->valuestring) > EXE_FILE_MAX) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "files",
                            "each file needs a path and a string content of "
                            "at most %d bytes",
                            EXE_FILE_MAX);
            goto fail;
        }
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "path", p->valuestring);
        cJSON_AddStringToObject(o, "content", c->valuestring);
        cJSON_AddItemToArray(out, o);
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

/* Read and check the body into q; 0, or -1 after the 400. */
static int exe_read(http_req *r, const cJSON *body, exe_req *q)
{
    const cJSON *it;

    if (json_str(r, body, "code", 1, (size_t)-1, &q->code) != 0 ||
        json_str(r, body, "language", 0, 32, &q->lang_name) != 0 ||
        json_int(r, body, "timeout", 0, 100,
                 cfg_int(CFG_SP_COMMAND_MAX_TIMEOUT) * 1000,
                 EXE_TIMEOUT_DEFAULT_MS, &q->timeout_ms) != 0 ||
        json_str(r, body, "stdin", 0, 1024 * 1024, &q->in) != 0 ||
        json_str(r, body, "sandbox_id", 0, 64, &q->sandbox) != 0 ||
        json_str(r, body, "context_id", 0, 64, &q->ctx) != 0 ||
        json_str(r, body, "clientId", 0, 64, &q->client) != 0 ||
        json_obj(r, body, "env", &q->env) != 0 ||
        (q->files = exe_files(r, body)) == NULL)
        return -1;
    if (strlen(q->code) > EXE_CODE_MAX) {
        http_send_error(r, SP_E_PAYLOAD_TOO_LARGE, "code",
                        "code is longer than %d bytes", EXE_CODE_MAX);
        return -1;
    }
    q->lang = lang_find(q->lang_name ? q->lang_name : "python");
    if (q->lang == NULL) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "language",
                        "unknown language; known: python, javascript, bash, "
                        "c (see GET /languages)");
        return -1;
    }
    cJSON_ArrayForEach(it, q->env)
    {
        if (!cJSON_IsString(it) || it->string[0] == '\0' ||
            strchr(it->string, '=') != NULL) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "env",
                            "env must map names to strings");
            return -1;
        }
    }
    if (q->client != NULL && !id_valid(q->client)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "clientId",
                        "clientId must match [A-Za-z0-9_-]{1,64}");
        return -1;
    }
    return 0;
}

/* Start q as execution exe (its code file added to its files) on helper
 * (q->sandbox's, or any for a one-off run) and answer. */
static void exe_start(http_req *r, exe_req *q, const char *helper,
                      const char *exe)
{
    char path[128], bin[96], cid[SP_ID_SIZE];
    cJSON *argv, *scratch, *compile, *o;
    const char *client = NULL;
    hc_exec_req x = {0};
    hc_facts f;
    rpc_err err;

    snprintf(path, sizeof path, "/tmp/sp_%s.%s", exe, q->lang->ext);
    snprintf(bin, sizeof bin, "/tmp/sp_%s", exe);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddStringToObject(o, "content", q->code);
    cJSON_AddItemToArray(q->files, o);
    argv = exe_argv(q->lang, path, exe);
    compile = exe_compile(q->lang, path, exe);
    /* The code file and a compiled binary go when the run ends. */
    scratch = cJSON_CreateArray();
    cJSON_AddItemToArray(scratch, cJSON_CreateString(path));
    if (compile != NULL)
        cJSON_AddItemToArray(scratch, cJSON_CreateString(bin));
    x = (hc_exec_req){.id = exe,
                      .kind = HC_KIND_COMMAND,
                      .owner = r->auth.sub,
                      .sandbox = q->sandbox,
                      .argv = argv,
                      .env = q->env,
                      .stdin_data = q->in,
                      .stdin_open = q->stream && q->in == NULL,
                      .timeout_ms = q->timeout_ms,
                      .wait = !q->stream,
                      .compile = compile,
                      .scratch = scratch,
                      .files = q->sandbox ? NULL : q->files};
    if (q->stream)
        client = announce_execution(r->auth.sub, q->client, exe, cid);
    if (q->sandbox != NULL && run_put_all(r, helper, q->sandbox, q->files) != 0)
        goto out;
    if (hc_exec(q->sandbox ? helper : NULL, &x,
                q->stream ? (q->sandbox ? 10000 : 30000)
                          : q->timeout_ms + EXE_WAIT_SLACK_MS +
                                (q->sandbox ? 0 : 15000),
                rpc_now_ms() + q->timeout_ms + EXE_WAIT_SLACK_MS + 60000, &f,
                &err) != 0) {
        http_send_rpc_error(r, &err, NULL);
        goto out;
    }
    run_answer(r, q->stream, exe, client, &f);
    hc_facts_free(&f);
out:
    cJSON_Delete(argv);
    cJSON_Delete(compile);
    cJSON_Delete(scratch);
}

static void exe_run(http_req *r, int stream)
{
    cJSON *body = http_json_body(r, 0);
    exe_req q = {.stream = stream};
    char exe[SP_ID_SIZE], helper[SP_ID_SIZE];

    if (body == NULL)
        return;
    if (exe_read(r, body, &q) != 0)
        goto out;
    if (q.ctx != NULL) {
        /* A run in a stateful context (contexts.c). */
        ctxh_run c = {.ctx = q.ctx,
                      .sandbox = q.sandbox,
                      .language = q.lang_name ? q.lang->name : NULL,
                      .code = q.code,
                      .timeout_ms = q.timeout_ms,
                      .stream = stream,
                      .client = q.client,
                      .files = q.files,
                      .has_stdin = q.in != NULL,
                      .has_env = q.env != NULL};
        ctxh_execute(r, &c);
        goto out;
    }
    if (q.sandbox != NULL &&
        rpc_sandbox_of(r, q.sandbox, "sandbox_id", helper) != 0)
        goto out;
    if ((q.sandbox == NULL && rpc_need_helper(r) != 0) ||
        rpc_new_id(r, "exe_", exe) != 0)
        goto out;
    exe_start(r, &q, helper, exe);
out:
    cJSON_Delete(q.files);
    cJSON_Delete(body);
}

static void exe_execute(http_req *r)
{
    exe_run(r, 0);
}

static void exe_execute_stream(http_req *r)
{
    exe_run(r, 1);
}

static const http_route exe_routes[] = {
    {"POST", "/execute", exe_execute, AUTH_REQUIRED},
    {"POST", "/execute-stream", exe_execute_stream, AUTH_REQUIRED},
    {"GET", "/executions/*", exe_get, AUTH_REQUIRED},
    {"POST", "/executions/*/cancel", exe_cancel, AUTH_REQUIRED},
    {"POST", "/executions/*/stdin", exe_stdin, AUTH_REQUIRED},
    {"GET", "/languages", lang_list, AUTH_REQUIRED},
    {"POST", "/analyze-execution-needs", exe_analyze, AUTH_REQUIRED},
    /* Stateful contexts (contexts.c). */
    {"POST", "/sandboxes/*/contexts", ctxh_create, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/contexts", ctxh_list, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/contexts/*", ctxh_get, AUTH_REQUIRED},
    {"DELETE", "/sandboxes/*/contexts/*", ctxh_delete, AUTH_REQUIRED},
    /* The interp family (interp.c): E2B's code interpreter, selected by
     * nginx and authorized by sandbox tokens, not by a credential. */
    {"POST", "/_sp/family/interp/execute", interp_execute, 0},
    {"POST", "/_sp/family/interp/contexts", interp_ctx_create, 0},
    {"GET", "/_sp/family/interp/contexts", interp_ctx_list, 0},
    {"DELETE", "/_sp/family/interp/contexts/*", interp_ctx_delete, 0},
    {"POST", "/_sp/family/interp/contexts/*/restart", interp_ctx_restart, 0},
};

static int exe_init(void)
{
    lang_probe();
    return 0;
}

int main(void)
{
    return http_main("execute", exe_routes,
                     sizeof exe_routes / sizeof exe_routes[0], exe_init);
}
