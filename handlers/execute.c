/* handlers/execute.c: the execute family (docs/DESIGN.md §4.3): run code in a
 * language, waiting (/execute) or streaming (/execute-stream, events served
 * by the sse/ relay), in a given sandbox or in a one-off sandbox from the
 * helper's pool; executions (get, cancel, stdin); the language list; and a
 * heuristic "does this chat message want code run?". Runs in a stateful
 * context and the contexts routes are in contexts.c.
 *
 * The code is written to /tmp/sp_<exe>.<ext> inside the sandbox and run
 * from there (argv stays small, any size of code up to the limit works).
 * C is compiled first by the helper as the execution's first step; when
 * that fails the program never runs and the status is "compile_error".
 *
 * Redis keys: exec:<id> and events:<id> (written by the helper),
 * client:<sub>:<clientId> (a capped stream of {type:"execution",
 * data:<exe id>} entries read by the relay for /events?clientId=). */
#include "contexts.h"
#include "sp_auth.h"
#include "sp_buf.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_redis.h"
#include "sp_rpc.h"
#include "sp_utf8.h"

#include <ctype.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXE_CODE_MAX           (512 * 1024)
#define EXE_FILES_MAX          64
#define EXE_FILE_MAX           (512 * 1024)
#define EXE_TIMEOUT_DEFAULT_MS 30000
#define EXE_WAIT_SLACK_MS      15000
#define EXE_CLIENT_STREAM_MAX  1000

typedef struct exe_lang {
    const char *name;
    const char *aliases[5];
    const char *ext;
    const char *version_argv[3];
    char version[64]; /* probed at start */
} exe_lang;

static exe_lang exe_langs[] = {
    {"python",
     {"python3", "py", NULL},
     "py",
     {"python3", "--version", NULL},
     ""},
    {"javascript",
     {"js", "node", "nodejs", NULL},
     "js",
     {"node", "--version", NULL},
     ""},
    {"bash", {"sh", "shell", NULL}, "sh", {"bash", "--version", NULL}, ""},
    {"c", {"gcc", NULL}, "c", {"gcc", "-dumpfullversion", NULL}, ""},
};
#define EXE_NLANGS (sizeof exe_langs / sizeof exe_langs[0])

extern char **environ;

/* First line of `argv` (stdout and stderr), at start-up only. */
static void exe_probe(const char *const *argv, char *out, size_t outlen)
{
    posix_spawn_file_actions_t fa;
    int p[2], status;
    pid_t pid;
    ssize_t n;
    char buf[256], *s;

    snprintf(out, outlen, "unknown");
    if (pipe2(p, O_CLOEXEC) != 0)
        return;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) ==
        0) {
        close(p[1]);
        n = read(p[0], buf, sizeof buf - 1);
        waitpid(pid, &status, 0);
        if (n > 0) {
            buf[n] = '\0';
            buf[strcspn(buf, "\n")] = '\0';
            /* "Python 3.11.2", "v18.19.0", "GNU bash, version 5.2.15(1)" */
            s = strpbrk(buf, "0123456789");
            if (s != NULL) {
                s[strspn(s, "0123456789.")] = '\0';
                snprintf(out, outlen, "%s", s);
            }
        }
    } else {
        close(p[1]);
    }
    close(p[0]);
    posix_spawn_file_actions_destroy(&fa);
}

static const exe_lang *exe_find_lang(const char *name)
{
    char low[32];
    size_t i;
    for (i = 0; name[i] && i < sizeof low - 1; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    low[i] = '\0';
    for (size_t l = 0; l < EXE_NLANGS; l++) {
        if (strcmp(exe_langs[l].name, low) == 0)
            return &exe_langs[l];
        for (int a = 0; exe_langs[l].aliases[a]; a++) {
            if (strcmp(exe_langs[l].aliases[a], low) == 0)
                return &exe_langs[l];
        }
    }
    return NULL;
}

const char *exe_canonical_language(const char *name)
{
    const exe_lang *l = exe_find_lang(name);
    return l ? l->name : NULL;
}

static void exe_languages(http_req *r)
{
    cJSON *root = cJSON_CreateObject(), *arr;
    arr = cJSON_AddArrayToObject(root, "languages");
    for (size_t l = 0; l < EXE_NLANGS; l++) {
        cJSON *o = cJSON_CreateObject(), *al;
        cJSON_AddStringToObject(o, "name", exe_langs[l].name);
        cJSON_AddStringToObject(o, "version", exe_langs[l].version);
        al = cJSON_AddArrayToObject(o, "aliases");
        for (int a = 0; exe_langs[l].aliases[a]; a++)
            cJSON_AddItemToArray(al,
                                 cJSON_CreateString(exe_langs[l].aliases[a]));
        cJSON_AddStringToObject(o, "extension", exe_langs[l].ext);
        cJSON_AddItemToArray(arr, o);
    }
    http_send_json(r, 200, root);
    cJSON_Delete(root);
}

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

/* Write one file through the sandbox's helper; 0 or -1 (error sent). */
int exe_put(http_req *r, const char *helper, const char *sandbox,
            const char *path, const char *content)
{
    cJSON *args = cJSON_CreateObject();
    char msg[256];
    rpc_reply rr;
    sp_status st;

    cJSON_AddStringToObject(args, "sandbox", sandbox);
    cJSON_AddStringToObject(args, "path", path);
    st = rpc_call(helper, "file_write", args, content, strlen(content), 30000,
                  &rr, msg, sizeof msg);
    cJSON_Delete(args);
    if (st != SP_OK) {
        http_send_error(r, st, "files", "%s: %s", path, msg);
        return -1;
    }
    rpc_reply_free(&rr);
    return 0;
}

static void exe_announce(const char *sub, const char *client, const char *exe)
{
    char base[RDS_KEY_MAX], k[RDS_KEY_MAX + 72];
    if (rds_key(base, sizeof base, "client", sub) != 0)
        return;
    snprintf(k, sizeof k, "%s:%s", base, client);
    freeReplyObject(rds_cmd("XADD %s MAXLEN ~ %d * type execution data %s", k,
                            EXE_CLIENT_STREAM_MAX, exe));
    freeReplyObject(rds_cmd("EXPIRE %s %lld", k, cfg_int(CFG_SP_EVENT_TTL)));
}

static void exe_run(http_req *r, int stream)
{
    cJSON *body = http_json_body(r, 0), *files = NULL, *args = NULL, *o;
    const char *code, *lang_name, *in, *sandbox, *ctx, *client;
    const cJSON *env, *it;
    const exe_lang *lang;
    char exe[65], path[128], helper[65], msg[256], cid[65];
    long long timeout;
    rpc_reply rr;
    sp_status st;

    if (body == NULL)
        return;
    if (json_str(r, body, "code", 1, (size_t)-1, &code) != 0 ||
        json_str(r, body, "language", 0, 32, &lang_name) != 0 ||
        json_int(r, body, "timeout", 0, 100,
                 cfg_int(CFG_SP_COMMAND_MAX_TIMEOUT) * 1000,
                 EXE_TIMEOUT_DEFAULT_MS, &timeout) != 0 ||
        json_str(r, body, "stdin", 0, 1024 * 1024, &in) != 0 ||
        json_str(r, body, "sandbox_id", 0, 64, &sandbox) != 0 ||
        json_str(r, body, "context_id", 0, 64, &ctx) != 0 ||
        json_str(r, body, "clientId", 0, 64, &client) != 0 ||
        json_obj(r, body, "env", &env) != 0 ||
        (files = exe_files(r, body)) == NULL)
        goto out;
    if (strlen(code) > EXE_CODE_MAX) {
        http_send_error(r, SP_E_PAYLOAD_TOO_LARGE, "code",
                        "code is longer than %d bytes", EXE_CODE_MAX);
        goto out;
    }
    lang = exe_find_lang(lang_name ? lang_name : "python");
    if (lang == NULL) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "language",
                        "unknown language; known: python, javascript, bash, "
                        "c (see GET /languages)");
        goto out;
    }
    cJSON_ArrayForEach(it, env)
    {
        if (!cJSON_IsString(it) || it->string[0] == '\0' ||
            strchr(it->string, '=') != NULL) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "env",
                            "env must map names to strings");
            goto out;
        }
    }
    if (client != NULL && !id_valid(client)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "clientId",
                        "clientId must match [A-Za-z0-9_-]{1,64}");
        goto out;
    }
    if (ctx != NULL) {
        /* A run in a stateful context (contexts.c). */
        ctxh_run q = {.ctx = ctx,
                      .sandbox = sandbox,
                      .language = lang_name ? lang->name : NULL,
                      .code = code,
                      .timeout_ms = timeout,
                      .stream = stream,
                      .client = client,
                      .files = files,
                      .has_stdin = in != NULL,
                      .has_env = env != NULL,
                      .announce = exe_announce};
        ctxh_execute(r, &q);
        goto out;
    }
    if (sandbox != NULL &&
        rpc_sandbox_of(r, sandbox, "sandbox_id", helper) != 0)
        goto out;
    if (sandbox == NULL && rpc_live_helpers() <= 0) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL,
                        "no sandbox helper is running");
        goto out;
    }
    if (id_generate("exe_", exe, sizeof exe) != 0) {
        http_send_error(r, SP_E_INTERNAL, NULL, "could not make an id");
        goto out;
    }
    snprintf(path, sizeof path, "/tmp/sp_%s.%s", exe, lang->ext);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddStringToObject(o, "content", code);
    cJSON_AddItemToArray(files, o);
    args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "id", exe);
    cJSON_AddStringToObject(args, "owner", r->auth.sub);
    cJSON_AddItemToObject(args, "argv", exe_argv(lang, path, exe));
    cJSON_AddNumberToObject(args, "timeout_ms", (double)timeout);
    cJSON_AddBoolToObject(args, "execute", 1);
    cJSON_AddBoolToObject(args, "async", stream);
    cJSON_AddBoolToObject(args, "stdin_open", stream && in == NULL);
    {
        /* The code file and a compiled binary go when the run ends. */
        char bin[96];
        cJSON *scratch = cJSON_AddArrayToObject(args, "scratch");
        cJSON *cc = exe_compile(lang, path, exe);
        cJSON_AddItemToArray(scratch, cJSON_CreateString(path));
        if (cc != NULL) {
            snprintf(bin, sizeof bin, "/tmp/sp_%s", exe);
            cJSON_AddItemToArray(scratch, cJSON_CreateString(bin));
            cJSON_AddItemToObject(args, "compile", cc);
        }
    }
    if (in != NULL)
        cJSON_AddStringToObject(args, "stdin", in);
    if (env != NULL)
        cJSON_AddItemToObject(args, "env", cJSON_Duplicate(env, 1));
    if (stream) {
        if (client == NULL) {
            id_generate("cli_", cid, sizeof cid);
            client = cid;
        }
        /* Announced before the run starts, so a client stream that is
         * already open sees every event of it. */
        exe_announce(r->auth.sub, client, exe);
    }
    if (sandbox != NULL) {
        cJSON_ArrayForEach(it, files)
        {
            if (exe_put(r, helper, sandbox,
                        cJSON_GetObjectItem(it, "path")->valuestring,
                        cJSON_GetObjectItem(it, "content")->valuestring) != 0)
                goto out;
        }
        cJSON_AddStringToObject(args, "sandbox", sandbox);
        st = rpc_call(helper, "exec", args, NULL, 0,
                      stream ? 10000 : timeout + EXE_WAIT_SLACK_MS, &rr, msg,
                      sizeof msg);
    } else {
        cJSON_AddItemToObject(args, "files", files);
        files = NULL;
        /* A one-off sandbox counts against the subject's runs until the
         * helper ends it (its reservation lapses after the deadline). */
        st =
            rpc_run_reserve(r->auth.sub, exe,
                            rpc_now_ms() + timeout + EXE_WAIT_SLACK_MS + 60000);
        if (st != SP_OK) {
            http_send_error(r, st, NULL, "%s",
                            st == SP_E_RATE_LIMITED
                                ? "too many one-off runs at once"
                                : "state store unavailable");
            goto out;
        }
        st = rpc_call(NULL, "run", args, NULL, 0,
                      stream ? 30000 : timeout + EXE_WAIT_SLACK_MS + 15000, &rr,
                      msg, sizeof msg);
    }
    if (st != SP_OK) {
        if (sandbox == NULL)
            rpc_run_release(r->auth.sub, exe);
        http_send_error(r, st, NULL, "%s", msg);
        goto out;
    }
    exe_send_run(r, stream, exe, client, &rr);
out:
    cJSON_Delete(args);
    cJSON_Delete(files);
    cJSON_Delete(body);
}

void exe_send_run(http_req *r, int stream, const char *exe, const char *client,
                  rpc_reply *rr)
{
    cJSON *o;

    if (stream) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "executionId", exe);
        cJSON_AddStringToObject(o, "status", "streaming");
        cJSON_AddStringToObject(o, "clientId", client);
        http_send_json(r, 200, o);
        cJSON_Delete(o);
    } else if (rr->data != NULL) {
        /* The helper encoded the answer (output may hold any bytes). */
        http_send_raw(r, 200, "application/json; charset=utf-8", rr->data,
                      rr->len);
    } else {
        http_send_error(r, SP_E_INTERNAL, NULL, "helper sent no result");
    }
    rpc_reply_free(rr);
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
    {"GET", "/languages", exe_languages, AUTH_REQUIRED},
    {"POST", "/analyze-execution-needs", exe_analyze, AUTH_REQUIRED},
    /* Stateful contexts (contexts.c). */
    {"POST", "/sandboxes/*/contexts", ctxh_create, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/contexts", ctxh_list, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/contexts/*", ctxh_get, AUTH_REQUIRED},
    {"DELETE", "/sandboxes/*/contexts/*", ctxh_delete, AUTH_REQUIRED},
};

static int exe_init(void)
{
    for (size_t l = 0; l < EXE_NLANGS; l++)
        exe_probe(exe_langs[l].version_argv, exe_langs[l].version,
                  sizeof exe_langs[l].version);
    return 0;
}

int main(void)
{
    return http_main("execute", exe_routes,
                     sizeof exe_routes / sizeof exe_routes[0], exe_init);
}
