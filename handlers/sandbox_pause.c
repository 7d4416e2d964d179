/* handlers/sandbox_pause.c: the sandboxes family's pause, resume and
 * metrics routes (docs/DESIGN.md §4.3). A paused sandbox's processes are
 * frozen by its helper (hd_op_pause) and its timeout stands still; every
 * operation that needs its processes (commands, files, terminals,
 * contexts) is then 409 paused, answered by the helper. Metrics are the
 * samples the helper appends to sbx:<id>:metrics (helper/hd_metrics.c),
 * read here by time range. */
#include "sandboxes.h"
#include "sp_json.h"
#include "sp_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SBXH_UNIX_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

/* pause (pause 1) or resume the caller's sandbox; answer it as GET does. */
static void sbxh_pause_or_resume(http_req *r, int pause)
{
    cJSON *body = http_json_body(r, 1), *o;
    char helper[SP_ID_SIZE];
    rpc_err err;

    /* The body is optional; E2B's {memory} asks for nothing more here. */
    if (body == NULL || sbxh_lookup(r, r->params[0], helper) != 0 ||
        (pause && sbxh_ws_before_end(r, r->params[0], helper, 0) != 0))
        goto out;
    if ((pause ? hc_pause(helper, r->params[0], &err)
               : hc_resume(helper, r->params[0], &err)) != 0) {
        http_send_rpc_error(r, &err, NULL);
        goto out;
    }
    o = sbxh_render(r->params[0]);
    if (o != NULL)
        http_send_json(r, 200, o);
    else
        http_send_error(r, SP_E_NOT_FOUND, NULL, "sandbox not found");
    cJSON_Delete(o);
out:
    cJSON_Delete(body);
}

void sbxh_pause(http_req *r)
{
    sbxh_pause_or_resume(r, 1);
}

void sbxh_resume(http_req *r)
{
    sbxh_pause_or_resume(r, 0);
}

/* Query parameter name as Unix seconds into *out (def when absent).
 * Returns 0, or -1 after the 400 naming it. */
static int sbxh_unix_param(http_req *r, const char *name, long long def,
                           long long *out)
{
    char v[24], *end;
    int rc = http_query(r, name, v, sizeof v);

    *out = def;
    if (rc == 0)
        return 0;
    if (rc > 0 && v[0] >= '0' && v[0] <= '9') {
        *out = strtoll(v, &end, 10);
        if (*end == '\0' && *out <= SBXH_UNIX_MAX)
            return 0;
    }
    http_send_error(r, SP_E_INVALID_ARGUMENT, name,
                    "%s must be a time in Unix seconds", name);
    return -1;
}

/* One sample (an XRANGE entry [id, [field, value, …]]) in the shape of
 * E2B's metrics; NULL if it is malformed. */
static cJSON *sbxh_metric(const redisReply *e)
{
    static const char *const fields[][2] = {
        {"cpus", "cpuCount"}, {"cpu", "cpuUsedPct"},
        {"mem", "memUsed"},   {"memmax", "memTotal"},
        {"disk", "diskUsed"}, {"diskmax", "diskTotal"},
        {"netrx", "netRxBytes"}, {"nettx", "netTxBytes"}};
    char t[JSON_TIME_SIZE];
    const redisReply *kv;
    long long ms;
    cJSON *o;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    kv = e->element[1];
    ms = atoll(e->element[0]->str);
    o = cJSON_CreateObject();
    json_time(ms / 1000, t, sizeof t);
    cJSON_AddStringToObject(o, "timestamp", t);
    cJSON_AddNumberToObject(o, "timestampUnix", (double)(ms / 1000));
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = sbxh_field(kv, fields[i][0]);
        cJSON_AddNumberToObject(o, fields[i][1], v ? atof(v) : 0);
    }
    return o;
}

void sbxh_metrics(http_req *r)
{
    char helper[SP_ID_SIZE], k[RDS_KEY_MAX], from[32], to[32];
    long long start, end;
    redisReply *rep;
    cJSON *arr;

    if (sbxh_unix_param(r, "start", 0, &start) != 0 ||
        sbxh_unix_param(r, "end", SBXH_UNIX_MAX, &end) != 0)
        return;
    if (start > end) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "start",
                        "start is after end");
        return;
    }
    if (sbxh_lookup(r, r->params[0], helper) != 0 ||
        key_of(k, sizeof k, KEY_SBX_METRICS, r->params[0]) != 0)
        return;
    /* Entry ids are the samples' Unix ms: the range is inclusive. */
    snprintf(from, sizeof from, "%lld", start * 1000);
    snprintf(to, sizeof to, "%lld", end * 1000 + 999);
    rep = rds_cmd("XRANGE %s %s %s", k, from, to);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return;
    }
    arr = cJSON_CreateArray();
    for (size_t i = 0; i < rep->elements; i++) {
        cJSON *o = sbxh_metric(rep->element[i]);
        if (o != NULL)
            cJSON_AddItemToArray(arr, o);
    }
    freeReplyObject(rep);
    http_send_json(r, 200, arr);
    cJSON_Delete(arr);
}
