/* handlers/templates.c: the templates the helper publishes (tpl:<name>,
 * templates; hd_tpl_ops.c): list, one, delete. A private template is its
 * owner's only: to anyone else it does not exist. Templates are built
 * with `sandpipe template build|import` (sp-template). */
#include "sandboxes.h"
#include "sp_helper.h"
#include "sp_keys.h"
#include "sp_redis.h"
#include "sp_tspec.h"

#include <stdlib.h>
#include <string.h>

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
    static const char *const fields[] = {"name",    "from",       "version",
                                         "user",    "home",       "workdir",
                                         "env",     "created_at", "maker"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        cJSON *v = cJSON_GetObjectItem(m, fields[i]);
        if (v)
            cJSON_AddItemToObject(o, fields[i], cJSON_Duplicate(v, 1));
    }
    cJSON_AddBoolToObject(o, "private", owner != NULL);
    cJSON_Delete(m);
    return o;
}

void tplh_list(http_req *r)
{
    char k[RDS_KEY_MAX];
    redisReply *set;
    cJSON *root, *arr;

    key_of(k, sizeof k, KEY_TPLS, NULL);
    set = rds_cmd("SMEMBERS %s", k);
    if (set == NULL || set->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(set);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return;
    }
    root = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(root, "templates");
    for (size_t i = 0; i < set->elements; i++) {
        cJSON *o = tplh_render(set->element[i]->str, r->auth.sub);
        if (o != NULL)
            cJSON_AddItemToArray(arr, o);
    }
    freeReplyObject(set);
    http_send_json(r, 200, root);
    cJSON_Delete(root);
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
