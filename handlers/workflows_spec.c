/* handlers/workflows_spec.c: a POST /workflows body validated into the
 * spec the worker runs (every refusal a 400 naming its field):
 *
 *   {name, language, code | files, inputs: {bucket, prefix, urls},
 *    validate: {syntax, tests, lint}, run: {cmd | entrypoint, args,
 *    timeout}, outputs: {paths, bucket, prefix}, template, limits,
 *    timeout, network, schedule: {cron} | {at}, clientId}
 *
 * becomes {name, language, files: {path: text}, inputs, validate:
 * {syntax, tests: {argv}, lint: {argv}}, run: {argv, compile?,
 * timeout_ms}, outputs, sandbox: {template, timeout_s, memory_mb, pids,
 * disk_mb, cpus_milli, network, netpol}}. The language is the execute
 * family's (lang_canonical), the sandbox's limits are POST /sandboxes's
 * (sbxh_spec), a bucket must be the caller's (stg_bucket_named), a path
 * is what an object key may be (obj_key_rule: relative, no "." or ".."
 * segment, no control character); inputs.urls are [{url, path}], each URL
 * of a form sp_urlcopy.h fetches. */
#include "workflows.h"

#include "execute.h"
#include "sandboxes.h"
#include "storage.h"
#include "sp_config.h"
#include "sp_cron.h"
#include "sp_json.h"
#include "sp_objname.h"
#include "sp_rpc.h"
#include "sp_urlcopy.h"

#include <stdio.h>
#include <string.h>

#define WFH_FILES_MAX   256
#define WFH_OUTPUTS_MAX 64
#define WFH_ARGS_MAX    256
#define WFH_CMD_MAX     32768
#define WFH_NAME_MAX    128
#define WFH_C_BINARY    "/tmp/wf_main"

/* The file name code gets, and how its entrypoint runs, per language. */
typedef struct wfh_lang {
    const char *name, *main_file, *interp;
} wfh_lang;

static const wfh_lang wfh_langs[] = {
    {"python", "main.py", "python3"},
    {"javascript", "main.js", "node"},
    {"bash", "main.sh", "bash"},
    {"c", "main.c", NULL}, /* compiled to WFH_C_BINARY first */
};

/* 0 if s is a path a workflow may name (field), else -1 after the 400. */
static int wfh_path_ok(http_req *r, const char *s, const char *field)
{
    const char *rule = obj_key_rule(s, strlen(s));

    if (rule == NULL && s[strlen(s) - 1] != '/')
        return 0;
    http_send_error_rule(
        r, SP_E_INVALID_ARGUMENT, field, rule ? rule : "path_directory",
        "%s must be relative paths without . or .. segments", field);
    return -1;
}

/* A command (field: a string, run by /bin/sh -c in the sandbox) as
 * {argv} into out under name. 0 (absent too), or -1 after the 400. */
static int wfh_cmd(http_req *r, const cJSON *obj, const char *key,
                   const char *field, cJSON *out)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *v[3] = {"/bin/sh", "-c", NULL};

    if (c == NULL)
        return 0;
    if (!cJSON_IsString(c) || c->valuestring[0] == '\0' ||
        strlen(c->valuestring) > WFH_CMD_MAX) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, field,
                        "%s must be a command of 1 to %d bytes", field,
                        WFH_CMD_MAX);
        return -1;
    }
    v[2] = c->valuestring;
    cJSON_AddItemToObject(cJSON_AddObjectToObject(out, key), "argv",
                          cJSON_CreateStringArray(v, 3));
    return 0;
}

/* code and files into spec's "files". */
static int wfh_files(http_req *r, const cJSON *body, const wfh_lang *l,
                     cJSON *spec)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(body, "files"), *f;
    const char *code;
    cJSON *out = cJSON_AddObjectToObject(spec, "files");

    if (json_str(r, body, "code", 0, (size_t)cfg_int(CFG_SP_BODY_MAX), &code) !=
        0)
        return -1;
    if (files != NULL &&
        (!cJSON_IsObject(files) || cJSON_GetArraySize(files) > WFH_FILES_MAX)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "files",
                        "files must map at most %d paths to their text",
                        WFH_FILES_MAX);
        return -1;
    }
    cJSON_ArrayForEach(f, files)
    {
        if (wfh_path_ok(r, f->string, "files") != 0)
            return -1;
        if (!cJSON_IsString(f)) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "files",
                            "files must map paths to their text");
            return -1;
        }
        cJSON_AddStringToObject(out, f->string, f->valuestring);
    }
    if (code != NULL) {
        if (cJSON_GetObjectItemCaseSensitive(out, l->main_file) != NULL) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "code",
                            "code is %s, which files names too", l->main_file);
            return -1;
        }
        cJSON_AddStringToObject(out, l->main_file, code);
    }
    return 0;
}

/* A bucket of the caller and a prefix (inputs, outputs) into out. */
static int wfh_bucket(http_req *r, const cJSON *o, const char *bfield,
                      const char *pfield, int required, cJSON *out)
{
    const char *bucket, *prefix, *rule;

    if (json_str(r, o, "bucket", required, 255, &bucket) != 0 ||
        json_str(r, o, "prefix", 0, OBJ_KEY_MAX, &prefix) != 0)
        return -1;
    if (bucket == NULL)
        return 0;
    if (stg_bucket_named(r, bucket, bfield) == NULL)
        return -1;
    if (prefix != NULL &&
        (rule = obj_prefix_rule(prefix, strlen(prefix))) != NULL) {
        http_send_error_rule(r, SP_E_INVALID_ARGUMENT, pfield, rule,
                             "bad prefix");
        return -1;
    }
    cJSON_AddStringToObject(out, "bucket", bucket);
    cJSON_AddStringToObject(out, "prefix", prefix ? prefix : "");
    return 0;
}

/* inputs.urls: 1 to URLCOPY_MAX URLs, each a string or {url, path}, into
 * out's "urls" as [{url, path}] (path relative to the workspace: the
 * given one, else the URL's file name). Only the URL's form is checked
 * here: where it resolves is checked by the inputs step, when it is
 * fetched (sp_urlcopy.h). */
static int wfh_urls(http_req *r, const cJSON *urls, cJSON *out)
{
    const cJSON *u;
    cJSON *list;
    char field[32], name[URLCOPY_NAME_MAX];
    int i = 0;

    if (!cJSON_IsArray(urls) || cJSON_GetArraySize(urls) < 1 ||
        cJSON_GetArraySize(urls) > URLCOPY_MAX) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "inputs.urls",
                        "inputs.urls must be an array of 1 to %d URLs",
                        URLCOPY_MAX);
        return -1;
    }
    list = cJSON_AddArrayToObject(out, "urls");
    cJSON_ArrayForEach(u, urls)
    {
        const cJSON *url =
            cJSON_IsObject(u) ? cJSON_GetObjectItemCaseSensitive(u, "url") : u;
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(u, "path"), *prev;
        cJSON *o;
        const char *rule = cJSON_IsString(url) ? urlcopy_form(url->valuestring)
                                               : "url_malformed";
        snprintf(field, sizeof field, "inputs.urls[%d]", i++);
        if (rule != NULL) {
            http_send_error_rule(r, SP_E_INVALID_ARGUMENT, field, rule,
                                 "%s: URL refused (%s)", field, rule);
            return -1;
        }
        if (cJSON_IsObject(u) && path != NULL &&
            (!cJSON_IsString(path) || path->valuestring[0] == '\0')) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, field,
                            "%s.path must be a relative path", field);
            return -1;
        }
        if (cJSON_IsString(path) && strlen(path->valuestring) >= sizeof name) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, field,
                            "%s.path is too long", field);
            return -1;
        }
        if (cJSON_IsString(path))
            snprintf(name, sizeof name, "%s", path->valuestring);
        else
            urlcopy_name(url->valuestring, name, sizeof name);
        if (wfh_path_ok(r, name, field) != 0)
            return -1;
        cJSON_ArrayForEach(prev, list)
        {
            if (strcmp(cJSON_GetStringValue(
                           cJSON_GetObjectItemCaseSensitive(prev, "path")),
                       name) == 0) {
                http_send_error(r, SP_E_INVALID_ARGUMENT, field,
                                "%s: another URL is written at %s too", field,
                                name);
                return -1;
            }
        }
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "url", url->valuestring);
        cJSON_AddStringToObject(o, "path", name);
        cJSON_AddItemToArray(list, o);
    }
    return 0;
}

/* inputs: {bucket, prefix} (bucket required unless urls), urls. */
static int wfh_inputs(http_req *r, const cJSON *body, cJSON *spec)
{
    const cJSON *in, *urls;
    cJSON *out;

    if (json_obj(r, body, "inputs", &in) != 0)
        return -1;
    if (in == NULL)
        return 0;
    urls = cJSON_GetObjectItemCaseSensitive(in, "urls");
    out = cJSON_AddObjectToObject(spec, "inputs");
    if (urls != NULL && wfh_urls(r, urls, out) != 0)
        return -1;
    return wfh_bucket(
        r, in, "inputs.bucket", "inputs.prefix",
        urls == NULL || cJSON_GetObjectItemCaseSensitive(in, "prefix") != NULL,
        out);
}

static int wfh_validate(http_req *r, const cJSON *body, cJSON *spec)
{
    const cJSON *v;
    cJSON *out;
    int syntax;

    if (json_obj(r, body, "validate", &v) != 0)
        return -1;
    out = cJSON_AddObjectToObject(spec, "validate");
    if (v == NULL) {
        cJSON_AddBoolToObject(out, "syntax", 1);
        return 0;
    }
    if (json_bool(r, v, "syntax", 1, &syntax) != 0 ||
        wfh_cmd(r, v, "tests", "validate.tests", out) != 0 ||
        wfh_cmd(r, v, "lint", "validate.lint", out) != 0)
        return -1;
    cJSON_AddBoolToObject(out, "syntax", syntax);
    return 0;
}

/* run.entrypoint and run.args as the argv (and compile) that run it. */
static int wfh_entry(http_req *r, const cJSON *run, const wfh_lang *l,
                     const cJSON *files, cJSON *out)
{
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(run, "args"), *a;
    const char *entry;
    cJSON *argv;

    if (json_str(r, run, "entrypoint", 0, OBJ_KEY_MAX, &entry) != 0)
        return -1;
    if (entry == NULL)
        entry = l->main_file;
    if (wfh_path_ok(r, entry, "run.entrypoint") != 0)
        return -1;
    if (cJSON_GetObjectItemCaseSensitive(files, entry) == NULL) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "run.entrypoint",
                        "run.entrypoint must name one of the files (or give "
                        "code, or run.cmd)");
        return -1;
    }
    if (args != NULL &&
        (!cJSON_IsArray(args) || cJSON_GetArraySize(args) > WFH_ARGS_MAX)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "run.args",
                        "run.args must be an array of at most %d strings",
                        WFH_ARGS_MAX);
        return -1;
    }
    argv = cJSON_AddArrayToObject(out, "argv");
    if (l->interp != NULL) {
        cJSON_AddItemToArray(argv, cJSON_CreateString(l->interp));
        cJSON_AddItemToArray(argv, cJSON_CreateString(entry));
    } else {
        const char *cc[] = {"cc", "-o", WFH_C_BINARY, entry};
        cJSON_AddItemToObject(out, "compile", cJSON_CreateStringArray(cc, 4));
        cJSON_AddItemToArray(argv, cJSON_CreateString(WFH_C_BINARY));
    }
    cJSON_ArrayForEach(a, args)
    {
        if (!cJSON_IsString(a) || strlen(a->valuestring) > WFH_CMD_MAX) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "run.args",
                            "run.args must be strings of at most %d bytes",
                            WFH_CMD_MAX);
            return -1;
        }
        cJSON_AddItemToArray(argv, cJSON_CreateString(a->valuestring));
    }
    return 0;
}

static int wfh_run(http_req *r, const cJSON *body, const wfh_lang *l,
                   cJSON *spec)
{
    const cJSON *run;
    long long timeout;
    cJSON *out = cJSON_CreateObject();
    int rc = -1;

    if (json_obj(r, body, "run", &run) != 0 ||
        json_int(r, run, "timeout", 0, 1, cfg_int(CFG_SP_COMMAND_MAX_TIMEOUT),
                 cfg_int(CFG_SP_COMMAND_TIMEOUT), &timeout) != 0)
        goto out;
    if (cJSON_GetObjectItemCaseSensitive(run, "cmd") != NULL) {
        cJSON *tmp = cJSON_CreateObject();
        rc = wfh_cmd(r, run, "cmd", "run.cmd", tmp);
        if (rc == 0)
            cJSON_AddItemToObject(
                out, "argv",
                cJSON_DetachItemFromObject(
                    cJSON_GetObjectItemCaseSensitive(tmp, "cmd"), "argv"));
        cJSON_Delete(tmp);
        if (rc != 0)
            goto out;
    } else if (wfh_entry(r, run, l,
                         cJSON_GetObjectItemCaseSensitive(spec, "files"),
                         out) != 0) {
        goto out;
    }
    cJSON_AddNumberToObject(out, "timeout_ms", (double)(timeout * 1000));
    cJSON_AddItemToObject(spec, "run", out);
    out = NULL;
    rc = 0;
out:
    cJSON_Delete(out);
    return rc;
}

static int wfh_outputs(http_req *r, const cJSON *body, cJSON *spec)
{
    const cJSON *o, *paths, *p;
    cJSON *out;

    if (json_obj(r, body, "outputs", &o) != 0)
        return -1;
    if (o == NULL)
        return 0;
    paths = cJSON_GetObjectItemCaseSensitive(o, "paths");
    if (!cJSON_IsArray(paths) || cJSON_GetArraySize(paths) < 1 ||
        cJSON_GetArraySize(paths) > WFH_OUTPUTS_MAX) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "outputs.paths",
                        "outputs.paths must be an array of 1 to %d paths",
                        WFH_OUTPUTS_MAX);
        return -1;
    }
    cJSON_ArrayForEach(p, paths)
    {
        if (!cJSON_IsString(p)) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "outputs.paths",
                            "outputs.paths must be strings");
            return -1;
        }
        if (wfh_path_ok(r, p->valuestring, "outputs.paths") != 0)
            return -1;
    }
    out = cJSON_AddObjectToObject(spec, "outputs");
    cJSON_AddItemToObject(out, "paths", cJSON_Duplicate(paths, 1));
    return wfh_bucket(r, o, "outputs.bucket", "outputs.prefix", 1, out);
}

/* The sandbox's template and limits as POST /sandboxes takes them. */
static int wfh_sandbox(http_req *r, const cJSON *body, cJSON *spec)
{
    hc_sandbox_req q = {0};
    cJSON *s;

    if (sbxh_spec(r, body, &q) != 0)
        return -1;
    s = cJSON_AddObjectToObject(spec, "sandbox");
    if (q.template_name != NULL) /* else SP_DEFAULT_TEMPLATE's pool */
        cJSON_AddStringToObject(s, "template", q.template_name);
    cJSON_AddNumberToObject(s, "timeout_s", (double)q.timeout_s);
    cJSON_AddNumberToObject(s, "memory_mb", (double)q.memory_mb);
    cJSON_AddNumberToObject(s, "pids", (double)q.pids);
    cJSON_AddNumberToObject(s, "disk_mb", (double)q.disk_mb);
    cJSON_AddNumberToObject(s, "cpus_milli", (double)q.cpus_milli);
    cJSON_AddBoolToObject(s, "network", q.network);
    if (q.netpol != NULL)
        cJSON_AddItemToObject(s, "netpol", (cJSON *)q.netpol);
    return 0;
}

cJSON *wfh_spec(http_req *r, const cJSON *body)
{
    cJSON *spec = cJSON_CreateObject();
    const wfh_lang *l = NULL;
    const char *name, *lang, *canon;

    if (json_str(r, body, "name", 0, WFH_NAME_MAX, &name) != 0 ||
        json_str(r, body, "language", 1, 32, &lang) != 0)
        goto fail;
    canon = lang_canonical(lang);
    for (size_t i = 0; canon && i < sizeof wfh_langs / sizeof wfh_langs[0]; i++)
        if (strcmp(wfh_langs[i].name, canon) == 0)
            l = &wfh_langs[i];
    if (l == NULL) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "language",
                        "language must be python, javascript, bash or c");
        goto fail;
    }
    cJSON_AddStringToObject(spec, "name", name ? name : "");
    cJSON_AddStringToObject(spec, "language", l->name);
    if (wfh_files(r, body, l, spec) != 0 || wfh_inputs(r, body, spec) != 0 ||
        wfh_validate(r, body, spec) != 0 || wfh_run(r, body, l, spec) != 0 ||
        wfh_outputs(r, body, spec) != 0 || wfh_sandbox(r, body, spec) != 0)
        goto fail;
    return spec;
fail:
    cJSON_Delete(spec);
    return NULL;
}

int wfh_schedule(http_req *r, const cJSON *body, const char **cron,
                 long long *first_ms)
{
    const cJSON *s;
    const char *at, *bad;
    long long t;
    cron_spec c;

    *cron = NULL;
    *first_ms = 0;
    if (json_obj(r, body, "schedule", &s) != 0 ||
        json_str(r, s, "cron", 0, CRON_EXPR_MAX, cron) != 0 ||
        json_str(r, s, "at", 0, 64, &at) != 0)
        return -1;
    if (s == NULL)
        return 0;
    if ((*cron == NULL) == (at == NULL)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "schedule",
                        "schedule must give cron or at");
        return -1;
    }
    if (*cron != NULL) {
        if (cron_parse(*cron, &c, &bad) != 0 ||
            (t = cron_next(&c, rpc_now_ms() / 1000)) < 0) {
            if (bad == NULL)
                bad = "day_of_month"; /* parsed, but no such day */
            http_send_error_rule(r, SP_E_INVALID_ARGUMENT, "schedule.cron", bad,
                                 "schedule.cron: bad %s field", bad);
            return -1;
        }
        *first_ms = t * 1000;
        return 0;
    }
    if (cron_parse_time(at, &t) != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "schedule.at",
                        "schedule.at must be an RFC 3339 time");
        return -1;
    }
    if (t * 1000 < rpc_now_ms() - 60000) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "schedule.at",
                        "schedule.at is in the past");
        return -1;
    }
    *first_ms = t * 1000 > rpc_now_ms() ? t * 1000 : rpc_now_ms();
    return 0;
}
