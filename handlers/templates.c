/* handlers/templates.c: the templates the helper publishes (tpl:<name>,
 * templates; hd_tpl_ops.c): list, one, delete; builds asked for here
 * (POST /templates: the spec checked, then the helper's template_build)
 * and their records. A private template is its owner's only: to anyone
 * else it does not exist. The command line builds with `sandpipe template
 * build|import` (sp-template) directly. */
#include "sandboxes.h"
#include "sp_helper.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_rpc.h"
#include "sp_keys.h"
#include "sp_redis.h"
#include "sp_tspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A template as the API shows it, or NULL (none, or not the subject's). */
static cJSON *tplh_render(const char *name, const char *subject)
{
    char k[RDS_KEY_MAX];
    redisReply *rep;
    cJSON *m = NULL, *o = NULL;
    const char *owner;

    if (strcmp(name, "host") == 0) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", "host");
        cJSON_AddStringToObject(o, "from", "host");
        cJSON_AddStringToObject(o, "user", "user");
        cJSON_AddStringToObject(o, "workdir", "/workspace");
        cJSON_AddBoolToObject(o, "private", 0);
        return o;
    }
    if (!ts_name_valid(name) || key_of(k, sizeof k, KEY_TPL, name) != 0)
        return NULL;
    rep = rds_cmd("HGET %s meta", k);
    if (rep && rep->type == REDIS_REPLY_STRING)
        m = cJSON_Parse(rep->str);
    freeReplyObject(rep);
    owner = cJSON_GetStringValue(cJSON_GetObjectItem(m, "owner"));
    if (m == NULL || (owner && strcmp(owner, subject) != 0)) {
        cJSON_Delete(m);
        return NULL;
    }
    o = cJSON_CreateObject();
    static const char *const fields[] = {"name", "from",       "version",
                                         "user", "home",       "workdir",
                                         "env",  "created_at", "maker"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        cJSON *v = cJSON_GetObjectItem(m, fields[i]);
        if (v)
            cJSON_AddItemToObject(o, fields[i], cJSON_Duplicate(v, 1));
    }
    cJSON_AddBoolToObject(o, "private", owner != NULL);
    cJSON_Delete(m);
    return o;
}

static cJSON *tplh_render_item(const char *name, const void *subject)
{
    return tplh_render(name, subject);
}

void tplh_list(http_req *r)
{
    char k[RDS_KEY_MAX];

    key_of(k, sizeof k, KEY_TPLS, NULL);
    sbxh_send_set(r, k, "templates", (size_t)-1, tplh_render_item, r->auth.sub);
}

void tplh_get(http_req *r)
{
    cJSON *o = tplh_render(r->params[0], r->auth.sub);

    if (o == NULL) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "template not found");
        return;
    }
    http_send_json(r, 200, o);
    cJSON_Delete(o);
}

void tplh_delete(http_req *r)
{
    rpc_err err;

    if (strcmp(r->params[0], "host") == 0) {
        http_send_error(r, SP_E_FORBIDDEN, NULL,
                        "the host template is built in");
        return;
    }
    if (!ts_name_valid(r->params[0])) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "template not found");
        return;
    }
    if (hc_tpl_delete(r->params[0], r->auth.sub, &err) != 0) {
        http_send_rpc_error(r, &err, "template");
        return;
    }
    http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
}

/* The body's args: an object of strings (at most TB_ARGS of them), as
 * ts_parse wants them ("NAME=value", NULL-terminated, into kv). */
#define TPLH_ARGS 64
static int tplh_args(http_req *r, const cJSON *args, char *kv[TPLH_ARGS + 1])
{
    const cJSON *it;
    int n = 0;

    cJSON_ArrayForEach(it, args)
    {
        if (!cJSON_IsString(it) || n == TPLH_ARGS ||
            asprintf(&kv[n], "%s=%s", it->string, it->valuestring) < 0) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "args",
                            "args must map names to strings (at most %d)",
                            TPLH_ARGS);
            return -1;
        }
        n++;
    }
    kv[n] = NULL;
    return 0;
}

/* The line of the FROM instruction (the first that is not blank, a
 * comment or an ARG); 1 if none is found. */
static int tplh_from_line(const char *spec)
{
    int line = 1;

    for (const char *p = spec; *p; line++) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        if (n >= 4 && strncasecmp(p, "FROM", 4) == 0)
            return line;
        if (!e)
            break;
        p = e + 1;
    }
    return 1;
}

/* The spec parses (its line in the message if not), with these args,
 * and a FROM template is one the subject may use. */
static int tplh_spec_ok(http_req *r, const char *spec, const cJSON *args)
{
    char *kv[TPLH_ARGS + 1] = {0}, err[TS_ERR_SIZE];
    ts_spec sp = {0};
    int line = 0, rc = -1;

    if (tplh_args(r, args, kv) == 0) {
        rc = ts_parse(spec, strlen(spec), (const char *const *)kv, &sp, err,
                      &line);
        if (rc != 0)
            http_send_error(r, SP_E_INVALID_ARGUMENT, "spec", "line %d: %s",
                            line, err);
    }
    if (rc == 0 && sp.base[0]) {
        cJSON *base = tplh_render(sp.base, r->auth.sub);
        if (base == NULL || strcmp(sp.base, "host") == 0) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "spec",
                            "line %d: FROM %s: no such template (a Debian "
                            "suite or a template of yours)",
                            tplh_from_line(spec), sp.base);
            rc = -1;
        }
        cJSON_Delete(base);
    }
    ts_free(&sp);
    for (int i = 0; kv[i]; i++)
        free(kv[i]);
    return rc;
}

/* POST /templates {name, spec, private, args, files}: 202 and the build,
 * whose log streams at …/builds/{id}/events. */
void tplh_post(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *rep;
    hc_tpl_build_req q = {.owner = r->auth.sub};
    char bid[SP_ID_SIZE], k[RDS_KEY_MAX], url[256];
    rpc_err err;

    if (body == NULL)
        return;
    if (json_str(r, body, "name", 1, TS_NAME_MAX, &q.name) != 0 ||
        json_str(r, body, "spec", 1, TS_TEXT_MAX, &q.spec) != 0 ||
        json_bool(r, body, "private", 0, &q.private_) != 0 ||
        json_obj(r, body, "args", &q.args) != 0 ||
        json_obj(r, body, "files", &q.files) != 0)
        goto out;
    if (!ts_name_valid(q.name) || strcmp(q.name, "host") == 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "name",
                        "name must be [a-z0-9][a-z0-9._-]* and not host");
        goto out;
    }
    if (tplh_spec_ok(r, q.spec, q.args) != 0 || rpc_need_helper(r) != 0 ||
        rpc_new_id(r, "bld_", bid) != 0)
        goto out;
    q.build = bid;
    key_of(k, sizeof k, KEY_TBUILD, bid);
    freeReplyObject(rds_cmd("HSET %s owner %s name %s status building "
                            "created %lld",
                            k, r->auth.sub, q.name, (long long)time(NULL)));
    if (hc_tpl_build(&q, &err) != 0) {
        freeReplyObject(rds_cmd("DEL %s", k));
        http_send_rpc_error(r, &err, "name");
        goto out;
    }
    rep = cJSON_CreateObject();
    cJSON_AddStringToObject(rep, "build_id", bid);
    cJSON_AddStringToObject(rep, "name", q.name);
    cJSON_AddStringToObject(rep, "status", "building");
    snprintf(url, sizeof url, "/templates/%s/builds/%s/events", q.name, bid);
    cJSON_AddStringToObject(rep, "events_url", url);
    http_send_json(r, 202, rep);
    cJSON_Delete(rep);
out:
    cJSON_Delete(body);
}

/* GET /templates/{name}/builds/{id}: the build's record (its owner's). */
void tplh_build_get(http_req *r)
{
    redisReply *h = rpc_owned_record(r, KEY_TBUILD, r->params[1], "bld_",
                                     "build", "name", r->params[0]);
    const char *want[] = {"name", "status", "error", "created", "ended"};
    cJSON *o;

    if (h == NULL)
        return;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "build_id", r->params[1]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *v = sbxh_field(h, want[i]);
        if (v && (i < 3 ? v[0] != '\0' : 1))
            cJSON_AddStringToObject(o, want[i], v);
    }
    freeReplyObject(h);
    http_send_json(r, 200, o);
    cJSON_Delete(o);
}
