/* worker/wk_steps.c: the steps of a workflow run, one function each
 * (the table wk_step_fns, in the order of WF_STEPS): inputs written into
 * the sandbox (the workflow's files through the helper's file
 * operations, a bucket's objects through sp_sbxcopy.h, URLs through
 * sp_urlcopy.h), the language's
 * syntax check of each of its files, the tests and lint commands, the
 * run, and the outputs stored (sp_sbxcopy.h). Each command is an
 * execution in the run's sandbox (hc_exec, waited for), announced on the
 * run's clientId stream; its output is published on the run's stream and
 * its tail kept in the step's result. */
#include "wk.h"

#include "sp_announce.h"
#include "sp_buf.h"
#include "sp_config.h"
#include "sp_log.h"
#include "sp_objname.h"
#include "sp_sbxcopy.h"
#include "sp_status.h"
#include "sp_urlcopy.h"
#include "sp_utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WK_TREE_DEPTH 16
#define WK_PATH_MAX   (4096 + 1100)

/* A language's syntax check: argv before the file's path. */
typedef struct wk_lang {
    const char *name, *ext;
    const char *check[4];
} wk_lang;

/* Python's check is what `python3 -m py_compile` does, compile() of the
 * file, without importing py_compile or writing bytecode into the
 * workspace (that took 30 ms more per run), and its error printed as
 * py_compile prints it (traceback.format_exception_only). */
#define WK_PY_CHECK                                                            \
    "import sys\n"                                                             \
    "f = sys.argv[1]\n"                                                        \
    "try:\n"                                                                   \
    "    compile(open(f, 'rb').read(), f, 'exec')\n"                           \
    "except (SyntaxError, ValueError) as e:\n"                                 \
    "    import traceback\n"                                                   \
    "    sys.stderr.write(''.join(traceback.format_exception_only(e)))\n"      \
    "    sys.exit(1)\n"

static const wk_lang wk_langs[] = {
    {"python", "py", {"python3", "-c", WK_PY_CHECK, NULL}},
    {"javascript", "js", {"node", "--check", NULL}},
    {"bash", "sh", {"bash", "-n", NULL}},
    {"c", "c", {"cc", "-fsyntax-only", NULL}},
};

typedef enum wk_ran { WK_RAN, WK_RAN_CANCELLED, WK_RAN_FAILED } wk_ran;

static const cJSON *wk_get(const cJSON *o, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* Set o's name to item (a step that checks several files sets it again). */
static void wk_put(cJSON *o, const char *name, cJSON *item)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, name);
    cJSON_AddItemToObject(o, name, item);
}

/* Publish one stream of a step's output as a "log" event
 * {step, stream, text} (its first WK_LOG_MAX bytes). */
static void wk_log(wk_run *w, const char *step, const char *stream,
                   const char *s, size_t n)
{
    sp_buf b;

    if (n == 0)
        return;
    buf_init(&b, 2 * WK_LOG_MAX + 256);
    buf_printf(&b, "{\"step\":\"%s\",\"stream\":\"%s\",\"text\":", step,
               stream);
    utf8_json_string((const unsigned char *)s, n < WK_LOG_MAX ? n : WK_LOG_MAX,
                     &b);
    if (buf_puts(&b, "}") == 0)
        wk_event(w, "log", b.data, b.len);
    buf_free(&b);
}

/* Run argv (compile first, if given) as an execution of step in the run's
 * sandbox; f gets its facts (WK_RAN: the caller frees them). Its output
 * is published and its tail, exit code and status kept in res. */
static wk_ran wk_exec(wk_run *w, int step, const cJSON *argv,
                      const cJSON *compile, long long timeout_ms, hc_facts *f,
                      cJSON *res)
{
    char exe[SP_ID_SIZE], cid[SP_ID_SIZE];
    hc_exec_req q = {0};
    const cJSON *st;
    rpc_err err;
    int rc;

    if (id_generate("exe_", exe, sizeof exe) != 0) {
        cJSON_AddStringToObject(res, "error", "no execution id");
        return WK_RAN_FAILED;
    }
    /* Recorded before the cancel check: a cancel after it sees the
     * execution and cancels it through the helper. */
    wk_set(w, "exe", exe);
    if (wk_cancelled(w))
        return WK_RAN_CANCELLED;
    if (w->client[0] != '\0')
        announce_execution(w->owner, w->client, exe, cid);
    q.id = exe;
    q.kind = HC_KIND_COMMAND;
    q.owner = w->owner;
    q.sandbox = w->sbx;
    q.argv = argv;
    q.compile = compile;
    q.cwd = WK_CWD;
    q.timeout_ms = timeout_ms;
    q.wait = 1;
    rc = hc_exec(w->helper, &q, timeout_ms + WK_EXEC_SLACK_MS, 0, f, &err);
    wk_set(w, "exe", "");
    wk_put(res, "execution_id", cJSON_CreateString(exe));
    if (rc != 0) {
        wk_put(res, "error", cJSON_CreateString(err.msg));
        return WK_RAN_FAILED;
    }
    wk_log(w, wf_step_name(step), "stdout", f->out[0], f->out_len[0]);
    wk_log(w, wf_step_name(step), "stderr", f->out[1], f->out_len[1]);
    st = wk_get(f->json, "status");
    wk_put(res, "exec_status",
           cJSON_CreateString(cJSON_IsString(st) ? st->valuestring : ""));
    wk_put(
        res, "exit_code",
        cJSON_CreateNumber(cJSON_GetNumberValue(wk_get(f->json, "exit_code"))));
    if (cJSON_IsString(st) && strcmp(st->valuestring, "cancelled") == 0) {
        hc_facts_free(f);
        return WK_RAN_CANCELLED;
    }
    return WK_RAN;
}

/* 1 if the execution of f ended well (status ok). */
static int wk_ok(const hc_facts *f)
{
    const cJSON *st = wk_get(f->json, "status");

    return cJSON_IsString(st) && strcmp(st->valuestring, "ok") == 0;
}

/* The run's step timeout (run.timeout_ms). */
static long long wk_timeout(const wk_run *w)
{
    double t =
        cJSON_GetNumberValue(wk_get(wk_get(w->spec, "run"), "timeout_ms"));

    return t > 0 ? (long long)t : cfg_int(CFG_SP_COMMAND_TIMEOUT) * 1000;
}

/* stdout and stderr's tails kept in res (output: {stdout, stderr}). */
static void wk_keep_output(const hc_facts *f, cJSON *res)
{
    cJSON *o = cJSON_AddObjectToObject(res, "output");

    cJSON_AddItemToObject(o, "stdout",
                          wk_text(f->out[0], f->out_len[0], WK_OUT_TAIL));
    cJSON_AddItemToObject(o, "stderr",
                          wk_text(f->out[1], f->out_len[1], WK_OUT_TAIL));
}

/* The spec's inputs.urls ([{url, path}]) fetched into the workspace
 * (sp_urlcopy.h), each listed in res's "urls" as {url, path, size}. 0,
 * 1 when the run was cancelled between two URLs (each may take
 * minutes), or -1 with res's error naming the URL (inputs.urls[i]) and
 * why. */
static int wk_inputs_urls(wk_run *w, const cJSON *urls, cJSON *res)
{
    static const char *const why[] = {
        [URLCOPY_REFUSED] = "URL refused",
        [URLCOPY_TOO_LARGE] = "body over the file limit",
        [URLCOPY_FETCH] = "could not be fetched",
        [URLCOPY_HELPER] = "could not be written",
    };
    const cJSON *u;
    cJSON *done;
    char path[WK_PATH_MAX], msg[512];
    int i = 0;

    if (urls == NULL)
        return 0;
    done = cJSON_AddArrayToObject(res, "urls");
    cJSON_ArrayForEach(u, urls)
    {
        const char *url = cJSON_GetStringValue(wk_get(u, "url")),
                   *to = cJSON_GetStringValue(wk_get(u, "path"));
        urlcopy_res got;
        rpc_err err;
        cJSON *o;
        if (wk_cancelled(w))
            return 1;
        if (url == NULL || to == NULL) {
            cJSON_AddStringToObject(res, "error", "inputs.urls: bad spec");
            return -1;
        }
        snprintf(path, sizeof path, "%s/%s", WK_CWD, to);
        if (urlcopy_import(w->helper, w->sbx, url, path, &got, &err) != 0) {
            if (got.fail == URLCOPY_REFUSED)
                snprintf(msg, sizeof msg, "inputs.urls[%d]: %s (%s)", i,
                         why[got.fail], got.rule);
            else if (got.fail == URLCOPY_FETCH && got.status != 0)
                snprintf(msg, sizeof msg, "inputs.urls[%d]: %s (HTTP %ld)", i,
                         why[got.fail], got.status);
            else if (got.fail == URLCOPY_HELPER)
                snprintf(msg, sizeof msg, "inputs.urls[%d]: %s (%s)", i,
                         why[got.fail], err.msg);
            else
                snprintf(msg, sizeof msg, "inputs.urls[%d]: %s", i,
                         why[got.fail]);
            cJSON_AddStringToObject(res, "error", msg);
            return -1;
        }
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "url", url);
        cJSON_AddStringToObject(o, "path", to);
        cJSON_AddNumberToObject(o, "size", (double)got.got);
        cJSON_AddItemToArray(done, o);
        i++;
    }
    return 0;
}

static wk_end wk_inputs(wk_run *w, int step, cJSON *res)
{
    const cJSON *files = wk_get(w->spec, "files"),
                *in = wk_get(w->spec, "inputs");
    const cJSON *f, *b = wk_get(in, "bucket"), *p = wk_get(in, "prefix");
    const char *prefix = cJSON_IsString(p) ? p->valuestring : "";
    cJSON *objs = cJSON_AddArrayToObject(res, "objects");
    char path[WK_PATH_MAX];
    st_list set = {0};
    wk_end end = WK_FAILED;
    sp_status st = SP_OK;
    rpc_err err;

    (void)step;
    cJSON_ArrayForEach(f, files)
    {
        rpc_reply rep;
        snprintf(path, sizeof path, "%s/%s", WK_CWD, f->string);
        if (hc_file_write(w->helper, w->sbx, path, f->valuestring,
                          strlen(f->valuestring), &rep, &err) != 0) {
            cJSON_AddStringToObject(res, "error", err.msg);
            goto out;
        }
        rpc_reply_free(&rep);
    }
    cJSON_AddNumberToObject(res, "files", cJSON_GetArraySize(files));
    if (cJSON_IsString(b)) {
        st = st_get()->list(w->owner, b->valuestring, prefix, "", SBXCOPY_MAX,
                            &set);
        if (st == SP_OK && set.truncated)
            st = SP_E_PAYLOAD_TOO_LARGE;
        for (size_t i = 0; st == SP_OK && i < set.n; i++) {
            const char *key = set.v[i].key;
            size_t kl = strlen(key);
            if (kl <= strlen(prefix) || key[kl - 1] == '/')
                continue; /* a "folder/" marker */
            snprintf(path, sizeof path, "%s/%s", WK_CWD, key + strlen(prefix));
            if (sbxcopy_import(w->helper, w->sbx, w->owner, b->valuestring, key,
                               &set.v[i].meta, path, &st, &err) != 0) {
                cJSON_AddStringToObject(
                    res, "error", st != SP_OK ? sp_status_code(st) : err.msg);
                goto out;
            }
            cJSON_AddItemToArray(objs, cJSON_CreateString(key));
        }
        if (st != SP_OK) {
            cJSON_AddStringToObject(res, "error", sp_status_code(st));
            goto out;
        }
    }
    switch (wk_inputs_urls(w, wk_get(in, "urls"), res)) {
    case 0:
        end = WK_PASSED;
        break;
    case 1:
        end = WK_CANCELLED;
        break;
    default:
        break;
    }
out:
    st_list_free(&set);
    return end;
}

/* The language's row, or NULL. */
static const wk_lang *wk_lang_of(const wk_run *w)
{
    const cJSON *l = wk_get(w->spec, "language");

    for (size_t i = 0;
         cJSON_IsString(l) && i < sizeof wk_langs / sizeof wk_langs[0]; i++)
        if (strcmp(wk_langs[i].name, l->valuestring) == 0)
            return &wk_langs[i];
    return NULL;
}

/* 1 if path ends in "." ext. */
static int wk_has_ext(const char *path, const char *ext)
{
    const char *dot = strrchr(path, '.');

    return dot != NULL && strcmp(dot + 1, ext) == 0;
}

/* One file's check; its findings appended to all. */
static wk_ran wk_check_one(wk_run *w, int step, const wk_lang *l,
                           const char *file, cJSON *all, int *bad, cJSON *res)
{
    cJSON *argv = cJSON_CreateArray(), *found, *it;
    hc_facts f = {0};
    sp_buf both;
    wk_ran ran;

    for (int i = 0; l->check[i] != NULL; i++)
        cJSON_AddItemToArray(argv, cJSON_CreateString(l->check[i]));
    cJSON_AddItemToArray(argv, cJSON_CreateString(file));
    ran = wk_exec(w, step, argv, NULL, wk_timeout(w), &f, res);
    if (ran == WK_RAN && !wk_ok(&f)) {
        *bad = 1;
        buf_init(&both, f.out_len[0] + f.out_len[1] + 2);
        buf_append(&both, f.out[1], f.out_len[1]);
        buf_append(&both, "\n", 1);
        buf_append(&both, f.out[0], f.out_len[0]);
        found = wk_findings(both.data ? both.data : "", both.len);
        if (cJSON_GetArraySize(found) == 0) {
            /* Nothing the parser knows: the file and the first line. */
            cJSON *one = cJSON_CreateObject();
            size_t n = both.data
                           ? strcspn(both.data + (both.data[0] == '\n'), "\n")
                           : 0;
            cJSON_AddStringToObject(one, "file", file);
            cJSON_AddNumberToObject(one, "line", 0);
            cJSON_AddItemToObject(
                one, "message",
                wk_text(both.data ? both.data + (both.data[0] == '\n') : "", n,
                        512));
            cJSON_AddItemToArray(found, one);
        }
        while ((it = cJSON_DetachItemFromArray(found, 0)) != NULL &&
               cJSON_GetArraySize(all) < WK_FINDINGS_MAX)
            cJSON_AddItemToArray(all, it);
        cJSON_Delete(it);
        cJSON_Delete(found);
        buf_free(&both);
    }
    if (ran == WK_RAN)
        hc_facts_free(&f);
    cJSON_Delete(argv);
    return ran;
}

static wk_end wk_syntax(wk_run *w, int step, cJSON *res)
{
    const cJSON *v = wk_get(w->spec, "validate"), *f;
    const wk_lang *l = wk_lang_of(w);
    cJSON *all;
    int bad = 0, checked = 0;

    if (cJSON_IsFalse(wk_get(v, "syntax")) || l == NULL)
        return WK_SKIPPED;
    all = cJSON_AddArrayToObject(res, "findings");
    cJSON_ArrayForEach(f, wk_get(w->spec, "files"))
    {
        wk_ran ran;
        if (!wk_has_ext(f->string, l->ext))
            continue;
        checked++;
        ran = wk_check_one(w, step, l, f->string, all, &bad, res);
        if (ran != WK_RAN)
            return ran == WK_RAN_CANCELLED ? WK_CANCELLED : WK_FAILED;
    }
    cJSON_AddNumberToObject(res, "checked", checked);
    if (checked == 0)
        return WK_SKIPPED;
    return bad ? WK_FAILED : WK_PASSED;
}

/* A command step: argv (and compile) from the spec's object o. */
static wk_end wk_command(wk_run *w, int step, const cJSON *o, cJSON *res)
{
    const cJSON *argv = wk_get(o, "argv");
    hc_facts f = {0};
    wk_ran ran;
    wk_end end;

    if (!cJSON_IsArray(argv))
        return WK_SKIPPED;
    ran = wk_exec(w, step, argv, wk_get(o, "compile"), wk_timeout(w), &f, res);
    if (ran != WK_RAN)
        return ran == WK_RAN_CANCELLED ? WK_CANCELLED : WK_FAILED;
    wk_keep_output(&f, res);
    end = wk_ok(&f) ? WK_PASSED : WK_FAILED;
    if (end == WK_FAILED && step != WF_STEP_RUN) {
        cJSON *found = wk_findings(f.out[1] ? f.out[1] : "", f.out_len[1]);
        cJSON_AddItemToObject(res, "findings", found);
    }
    hc_facts_free(&f);
    return end;
}

static wk_end wk_tests(wk_run *w, int step, cJSON *res)
{
    return wk_command(w, step, wk_get(wk_get(w->spec, "validate"), "tests"),
                      res);
}

static wk_end wk_lint(wk_run *w, int step, cJSON *res)
{
    return wk_command(w, step, wk_get(wk_get(w->spec, "validate"), "lint"),
                      res);
}

static wk_end wk_run_step(wk_run *w, int step, cJSON *res)
{
    return wk_command(w, step, wk_get(w->spec, "run"), res);
}

/* One sandbox file stored as prefix + its path below WK_CWD. */
static int wk_store(wk_run *w, const char *bucket, const char *prefix,
                    const char *path, cJSON *objs, cJSON *res)
{
    char key[OBJ_KEY_MAX + 1];
    const char *rel = path;
    sp_status st;
    rpc_err err;
    st_meta m;

    if (strncmp(rel, WK_CWD "/", strlen(WK_CWD) + 1) == 0)
        rel += strlen(WK_CWD) + 1;
    if (snprintf(key, sizeof key, "%s%s", prefix, rel) >= (int)sizeof key ||
        obj_key_rule(key, strlen(key)) != NULL) {
        cJSON_AddStringToObject(res, "error",
                                "an output's path is no valid key");
        return -1;
    }
    if (sbxcopy_export(w->helper, w->sbx, w->owner, bucket, key, path, &m, &st,
                       &err) != 0) {
        cJSON_AddStringToObject(res, "error",
                                st != SP_OK ? sp_status_code(st) : err.msg);
        return -1;
    }
    cJSON_AddItemToArray(objs, cJSON_CreateString(key));
    return 0;
}

/* Output path (relative to WK_CWD): a file, or every file below a
 * directory, stored. */
static int wk_store_path(wk_run *w, const char *bucket, const char *prefix,
                         const char *rel, cJSON *objs, cJSON *res)
{
    char path[WK_PATH_MAX];
    const cJSON **files = NULL, *type;
    rpc_reply rep = {0};
    rpc_err err;
    size_t n = 0;
    int rc = -1;

    snprintf(path, sizeof path, "%s/%s", WK_CWD, rel);
    if (hc_file_stat(w->helper, w->sbx, path, &rep, &err) != 0) {
        cJSON_AddStringToObject(res, "error", err.msg);
        cJSON_AddStringToObject(res, "path", rel);
        return -1;
    }
    type = wk_get(rep.json, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "file") == 0) {
        rc = wk_store(w, bucket, prefix, path, objs, res);
        goto out;
    }
    rpc_reply_free(&rep);
    files = calloc(SBXCOPY_MAX, sizeof *files);
    if (files == NULL ||
        hc_file_tree(w->helper, w->sbx, path, WK_TREE_DEPTH, &rep, &err) != 0 ||
        sbxcopy_tree_files(wk_get(rep.json, "entries"), files, &n) != 0) {
        cJSON_AddStringToObject(res, "error",
                                "an output directory holds too many or too "
                                "large files, or is no directory");
        goto out;
    }
    rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = wk_store(w, bucket, prefix, wk_get(files[i], "path")->valuestring,
                      objs, res);
out:
    free(files);
    rpc_reply_free(&rep);
    return rc;
}

static wk_end wk_outputs(wk_run *w, int step, cJSON *res)
{
    const cJSON *o = wk_get(w->spec, "outputs"), *p;
    const cJSON *b = wk_get(o, "bucket"), *pre = wk_get(o, "prefix");
    cJSON *objs;

    (void)step;
    if (!cJSON_IsString(b) || cJSON_GetArraySize(wk_get(o, "paths")) == 0)
        return WK_SKIPPED;
    objs = cJSON_AddArrayToObject(res, "objects");
    cJSON_ArrayForEach(p, wk_get(o, "paths"))
    {
        if (wk_store_path(w, b->valuestring,
                          cJSON_IsString(pre) ? pre->valuestring : "",
                          p->valuestring, objs, res) != 0)
            return WK_FAILED;
    }
    return WK_PASSED;
}

typedef wk_end (*wk_step_fn)(wk_run *w, int step, cJSON *res);

/* One function per step, in the order of WF_STEPS. */
static const wk_step_fn wk_step_fns[WF_STEP_COUNT] = {
    wk_inputs, wk_syntax, wk_tests, wk_lint, wk_run_step, wk_outputs,
};

wk_end wk_step(wk_run *w, int s, cJSON *res)
{
    return wk_step_fns[s](w, s, res);
}
