/* handlers/storage_buckets.c: the storage family: buckets (create, list,
 * delete) and the bucket check every route makes. Buckets belong to a
 * subject:
 * the hash buckets:<sub> (name → created_at) says which exist; another
 * subject's bucket is 404. Objects are in the backend SP_STORAGE_URL
 * chose (common/sp_store.h). */
#include "storage.h"
#include "sp_config.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STG_KEY_SIZE 256

/* The key of the caller's bucket hash into k; 0, or -1 after a 500. */
static int stg_buckets_key(http_req *r, char *k)
{
    if (key_of(k, STG_KEY_SIZE, KEY_BUCKETS, r->auth.sub) != 0) {
        http_send_error(r, SP_E_INTERNAL, NULL, "bad subject");
        return -1;
    }
    return 0;
}

static int stg_name_ok(http_req *r, const char *name, const char *field)
{
    const char *rule = obj_bucket_rule(name);

    if (rule == NULL)
        return 1;
    http_send_error_rule(r, SP_E_INVALID_ARGUMENT, field, rule,
                         "bad bucket name (%s)", rule);
    return 0;
}

const char *stg_bucket(http_req *r, int i)
{
    return stg_bucket_named(r, r->params[i], "name");
}

const char *stg_bucket_named(http_req *r, const char *name, const char *field)
{
    char k[STG_KEY_SIZE];
    redisReply *rep;
    int owned;

    if (name == NULL || !stg_name_ok(r, name, field) ||
        stg_buckets_key(r, k) != 0)
        return NULL;
    rep = rds_cmd("HEXISTS %s %s", k, name);
    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(rep);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return NULL;
    }
    owned = rep->integer == 1;
    freeReplyObject(rep);
    if (!owned) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "no such bucket");
        return NULL;
    }
    return name;
}

void stg_send_status(http_req *r, sp_status st, const char *what)
{
    if (st == SP_E_INTERNAL || st == SP_E_UNAVAILABLE)
        log_warn("storage: %s failed: %s", what, sp_status_code(st));
    http_send_error(r, st, NULL, "%s: %s", what,
                    st == SP_E_UNAVAILABLE ? "object store unavailable"
                                           : sp_status_code(st));
}

void stg_bucket_create(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *out;
    const char *name = NULL;
    char k[STG_KEY_SIZE], ts[JSON_TIME_SIZE];
    redisReply *rep = NULL;
    sp_status st;

    if (body == NULL || json_str(r, body, "name", 1, 255, &name) != 0 ||
        !stg_name_ok(r, name, "name") || stg_buckets_key(r, k) != 0)
        goto out;
    rep = rds_cmd("HLEN %s", k);
    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    if (rep->integer >= cfg_int(CFG_SP_BUCKETS_MAX_PER_SUBJECT)) {
        http_send_error(r, SP_E_CONFLICT, NULL, "too many buckets (%lld)",
                        cfg_int(CFG_SP_BUCKETS_MAX_PER_SUBJECT));
        goto out;
    }
    freeReplyObject(rep);
    json_time((long long)time(NULL), ts, sizeof ts);
    rep = rds_cmd("HSETNX %s %s %s", k, name, ts);
    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    if (rep->integer == 0) {
        http_send_error(r, SP_E_CONFLICT, "name", "bucket exists");
        goto out;
    }
    st = st_get()->bucket_make(r->auth.sub, name);
    if (st != SP_OK) {
        freeReplyObject(rds_cmd("HDEL %s %s", k, name));
        stg_send_status(r, st, "bucket create");
        goto out;
    }
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "name", name);
    cJSON_AddStringToObject(out, "created_at", ts);
    http_send_json(r, 201, out);
    cJSON_Delete(out);
out:
    freeReplyObject(rep);
    cJSON_Delete(body);
}

static int stg_cmp_names(const void *a, const void *b)
{
    return strcmp(((const char *const *)a)[0], ((const char *const *)b)[0]);
}

void stg_bucket_list(http_req *r)
{
    char k[STG_KEY_SIZE];
    redisReply *rep;
    cJSON *out, *arr;
    const char **pairs;

    if (stg_buckets_key(r, k) != 0)
        return;
    rep = rds_cmd("HGETALL %s", k);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return;
    }
    pairs = calloc(rep->elements + 1, sizeof *pairs);
    for (size_t i = 0; pairs != NULL && i < rep->elements; i++)
        pairs[i] = rep->element[i]->str;
    if (pairs != NULL)
        qsort(pairs, rep->elements / 2, 2 * sizeof *pairs, stg_cmp_names);
    out = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(out, "buckets");
    for (size_t i = 0; pairs != NULL && i + 1 < rep->elements; i += 2) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "name", pairs[i]);
        cJSON_AddStringToObject(b, "created_at", pairs[i + 1]);
        cJSON_AddItemToArray(arr, b);
    }
    http_send_json(r, 200, out);
    cJSON_Delete(out);
    free(pairs);
    freeReplyObject(rep);
}

void stg_bucket_delete(http_req *r)
{
    const char *name = stg_bucket(r, 0);
    char k[STG_KEY_SIZE], force[8] = "";
    st_list l = {0};
    sp_status st;

    if (name == NULL || stg_buckets_key(r, k) != 0)
        return;
    if (http_query(r, "force", force, sizeof force) < 0 ||
        (force[0] && strcmp(force, "true") && strcmp(force, "false"))) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "force",
                        "force must be true or false");
        return;
    }
    st = st_get()->list(r->auth.sub, name, "", "", 1, &l);
    if (st == SP_OK && l.n > 0 && strcmp(force, "true") != 0)
        st = SP_E_CONFLICT;
    st_list_free(&l);
    if (st == SP_OK)
        st = st_get()->bucket_drop(r->auth.sub, name);
    if (st == SP_E_CONFLICT) {
        http_send_error(r, st, NULL,
                        "bucket not empty (force=true deletes "
                        "its objects)");
        return;
    }
    if (st != SP_OK) {
        stg_send_status(r, st, "bucket delete");
        return;
    }
    freeReplyObject(rds_cmd("HDEL %s %s", k, name));
    http_send_raw(r, 204, "application/json; charset=utf-8", NULL, 0);
}
