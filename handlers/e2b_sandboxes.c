/* handlers/e2b_sandboxes.c: E2B's control plane (the official SDKs'
 * Sandbox.create, connect, list and the detail of getInfo), an adapter
 * over the sandboxes family's native operations (docs/DESIGN.md §7,
 * "Protocols are adapters"): a create is sbxh_create with the body
 * translated, a connect is resume and timeout, a list is the caller's
 * sandboxes rendered by sbxh_render. The shared paths (GET, DELETE,
 * timeout, pause, metrics of /sandboxes/{id}) are the native routes
 * themselves: a sandbox's JSON carries E2B's fields beside the native
 * ones (e2b_sandbox_fields, called by sbxh_render) and every error body
 * E2B's top-level numeric code (sp_http.c).
 *
 * The data plane (envd, handlers/envd*.c) takes no API key: the answers
 * of create and connect carry the sandbox's own tokens (sp_auth.h,
 * auth_sandbox_token), which are derived, never stored. */
#include "e2b.h"
#include "sandboxes.h"
#include "sp_auth.h"
#include "sp_config.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_pct.h"
#include "sp_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define E2B_LIST_DEFAULT 100
#define E2B_LIST_MAX     1000
#define E2B_QUERY_MAX    4096
#define E2B_META_FILTERS 16

/* E2B's template names and ours. Any other name is taken as ours. */
static const struct {
    const char *e2b, *ours;
} e2b_templates[] = {
    {"base", "base"},
    {"code-interpreter-v1", "code-interpreter"},
};

void e2b_sandbox_fields(cJSON *o, const redisReply *h, const char *id)
{
    const char *v, *status = sbxh_field(h, "status");
    char t[JSON_TIME_SIZE];
    double cpus;

    cJSON_AddStringToObject(o, "sandboxID", id);
    v = sbxh_field(h, "template");
    cJSON_AddStringToObject(o, "templateID", v ? v : "host");
    cJSON_AddStringToObject(o, "clientID", E2B_CLIENT_ID);
    cJSON_AddStringToObject(o, "envdVersion", E2B_ENVD_VERSION);
    json_time(atoll((v = sbxh_field(h, "created")) ? v : "0"), t, sizeof t);
    cJSON_AddStringToObject(o, "startedAt", t);
    json_time(atoll((v = sbxh_field(h, "expires_at")) ? v : "0"), t, sizeof t);
    cJSON_AddStringToObject(o, "endAt", t);
    cJSON_AddStringToObject(
        o, "state",
        status != NULL && strcmp(status, "paused") == 0 ? "paused" : "running");
    cpus = atof((v = sbxh_field(h, "cpus")) ? v : "0");
    cJSON_AddNumberToObject(o, "cpuCount", cpus < 1 ? 1 : (double)(int)cpus);
    cJSON_AddNumberToObject(o, "memoryMB",
                            atof((v = sbxh_field(h, "memory_mb")) ? v : "0"));
    cJSON_AddNumberToObject(o, "diskSizeMB",
                            atof((v = sbxh_field(h, "disk_mb")) ? v : "0"));
    v = sbxh_field(h, "network");
    cJSON_AddBoolToObject(o, "allowInternetAccess",
                          v != NULL && strcmp(v, "1") == 0);
}

/* The answer of create and connect: the sandbox (both field sets) with
 * its data-plane tokens; NULL if it has gone. Caller frees. */
static cJSON *e2b_sandbox_answer(const char *id)
{
    char tok[AUTH_SBX_TOKEN_SIZE];
    cJSON *o = sbxh_render(id);

    if (o == NULL)
        return NULL;
    if (auth_sandbox_token(AUTH_SBX_ENVD, id, tok) == 0)
        cJSON_AddStringToObject(o, "envdAccessToken", tok);
    if (auth_sandbox_token(AUTH_SBX_TRAFFIC, id, tok) == 0)
        cJSON_AddStringToObject(o, "trafficAccessToken", tok);
    explicit_bzero(tok, sizeof tok);
    cJSON_AddNullToObject(o, "domain");
    return o;
}

/* Send the sandbox id's answer with status, or 404 if it has gone. */
static void e2b_send_sandbox(http_req *r, int status, const char *id)
{
    cJSON *o = e2b_sandbox_answer(id);

    if (o == NULL) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "sandbox not found");
        return;
    }
    http_send_json(r, status, o);
    cJSON_Delete(o);
}

/* Copy member name of from (if present) into to as to_name. */
static void e2b_copy(cJSON *to, const char *to_name, const cJSON *from,
                     const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(from, name);
    if (it != NULL && !cJSON_IsNull(it))
        cJSON_AddItemToObject(to, to_name, cJSON_Duplicate(it, 1));
}

/* E2B's network defaults are open, and an E2B program counts on them:
 * internet unless allow_internet_access is false, and ports open to
 * anyone unless network.allowPublicTraffic is false (then the traffic
 * token is needed, as with E2B). network.allowOut / denyOut become the
 * egress policy's lists (checked there: a bad entry is a 400 naming it). */
static void e2b_network(cJSON *n, const cJSON *body)
{
    const cJSON *inet = cJSON_GetObjectItemCaseSensitive(
                    body, "allow_internet_access"),
                *net = cJSON_GetObjectItemCaseSensitive(body, "network"),
                *pub =
                    cJSON_GetObjectItemCaseSensitive(net, "allowPublicTraffic");
    cJSON *policy;

    /* A value of the wrong type goes on as such: the native create
     * refuses it (400 naming the field). */
    if (inet != NULL && !cJSON_IsNull(inet) && !cJSON_IsBool(inet)) {
        e2b_copy(n, "network", body, "allow_internet_access");
        return;
    }
    if (net != NULL && !cJSON_IsNull(net) && !cJSON_IsObject(net)) {
        e2b_copy(n, "network", body, "network");
        return;
    }
    if (pub != NULL && !cJSON_IsNull(pub) && !cJSON_IsBool(pub))
        e2b_copy(n, "public", net, "allowPublicTraffic");
    else
        cJSON_AddBoolToObject(n, "public", !cJSON_IsFalse(pub));
    if (cJSON_GetObjectItemCaseSensitive(net, "allowOut") == NULL &&
        cJSON_GetObjectItemCaseSensitive(net, "denyOut") == NULL) {
        cJSON_AddBoolToObject(n, "network", !cJSON_IsFalse(inet));
        return;
    }
    policy = cJSON_AddObjectToObject(n, "network");
    cJSON_AddBoolToObject(policy, "internet", !cJSON_IsFalse(inet));
    e2b_copy(policy, "allow_out", net, "allowOut");
    e2b_copy(policy, "deny_out", net, "denyOut");
}

/* The native body (POST /sandboxes) that an E2B create body asks for:
 * templateID → template (E2B's names mapped), timeout, metadata, envVars
 * → env, allow_internet_access and network → network and public (E2B's
 * defaults: e2b_network). The rest (autoPause, mcp, volumes) has no
 * native operation and is ignored. Caller frees. */
static cJSON *e2b_native_body(const cJSON *body)
{
    const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(body, "templateID");
    cJSON *n = cJSON_CreateObject();
    const char *name = "base";

    if (cJSON_IsString(tpl))
        name = tpl->valuestring;
    for (size_t i = 0; i < sizeof e2b_templates / sizeof e2b_templates[0];
         i++) {
        if (strcmp(name, e2b_templates[i].e2b) == 0)
            name = e2b_templates[i].ours;
    }
    if (tpl != NULL && !cJSON_IsString(tpl))
        e2b_copy(n, "template", body, "templateID"); /* refused as such */
    else
        cJSON_AddStringToObject(n, "template", name);
    e2b_copy(n, "timeout", body, "timeout");
    e2b_copy(n, "metadata", body, "metadata");
    e2b_copy(n, "env", body, "envVars");
    e2b_network(n, body);
    return n;
}

/* POST /v2/sandboxes: 201 with the sandbox and its tokens. */
void e2b_create(http_req *r)
{
    cJSON *body = http_json_body(r, 1), *n;
    char id[SP_ID_SIZE];

    if (body == NULL)
        return;
    n = e2b_native_body(body);
    if (sbxh_create(r, n, id) == 0)
        e2b_send_sandbox(r, 201, id);
    cJSON_Delete(n);
    cJSON_Delete(body);
}

/* POST /v2/sandboxes/{id}/connect {timeout?}: a paused sandbox is resumed;
 * a timeout only ever extends its life (E2B's rule). 200 with the
 * sandbox and its tokens. */
void e2b_connect(http_req *r)
{
    cJSON *body = http_json_body(r, 1);
    char helper[SP_ID_SIZE], k[RDS_KEY_MAX];
    long long timeout;
    redisReply *h = NULL;
    rpc_err err;

    if (body == NULL)
        return;
    if (json_int(r, body, "timeout", 0, 1, cfg_int(CFG_SP_SANDBOX_MAX_TIMEOUT),
                 0, &timeout) != 0 ||
        sbxh_lookup(r, r->params[0], helper) != 0)
        goto out;
    key_of(k, sizeof k, KEY_SBX, r->params[0]);
    h = rds_cmd("HMGET %s status expires_at", k);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements != 2) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    if (h->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(h->element[0]->str, "paused") == 0 &&
        hc_resume(helper, r->params[0], &err) != 0) {
        http_send_rpc_error(r, &err, NULL);
        goto out;
    }
    if (timeout > 0 && h->element[1]->type == REDIS_REPLY_STRING &&
        (long long)time(NULL) + timeout > atoll(h->element[1]->str) &&
        hc_timeout(helper, r->params[0], timeout, &err) != 0) {
        http_send_rpc_error(r, &err, NULL);
        goto out;
    }
    e2b_send_sandbox(r, 200, r->params[0]);
out:
    freeReplyObject(h);
    cJSON_Delete(body);
}

/* The filters of GET /v2/sandboxes. */
typedef struct e2b_filter {
    char state[64]; /* "running,paused" or "" (any) */
    char meta[E2B_QUERY_MAX];
    char *keys[E2B_META_FILTERS], *vals[E2B_META_FILTERS];
    int nmeta;
} e2b_filter;

/* URL-decode s in place (pct_decode never writes ahead of what it has
 * read); '+' stays: the SDK encodes a space as %20. 0, or -1 for a NUL. */
static int e2b_unescape(char *s)
{
    size_t n = strlen(s);

    return pct_decode(s, n, 0, s, n + 1) < 0 ? -1 : 0;
}

/* metadata=<"k=v&k2=v2", each key and value encoded once more>: split
 * into f's pairs. 0, or -1 (malformed, too many). */
static int e2b_meta_filter(e2b_filter *f)
{
    char *save = NULL, *pair;

    for (pair = strtok_r(f->meta, "&", &save); pair != NULL;
         pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        if (eq == NULL || f->nmeta == E2B_META_FILTERS)
            return -1;
        *eq = '\0';
        if (e2b_unescape(pair) != 0 || e2b_unescape(eq + 1) != 0)
            return -1;
        f->keys[f->nmeta] = pair;
        f->vals[f->nmeta++] = eq + 1;
    }
    return 0;
}

/* 1 if sandbox o (rendered) passes f. */
static int e2b_passes(const cJSON *o, const e2b_filter *f)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    const char *state =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "state"));

    if (f->state[0] != '\0' &&
        (state == NULL || strstr(f->state, state) == NULL))
        return 0;
    for (int i = 0; i < f->nmeta; i++) {
        const char *v = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(md, f->keys[i]));
        if (v == NULL || strcmp(v, f->vals[i]) != 0)
            return 0;
    }
    return 1;
}

static int e2b_id_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read the list's query into f, *limit and after (the page token: the
 * last id of the page before). 0, or -1 after the 400. */
static int e2b_list_query(http_req *r, e2b_filter *f, long long *limit,
                          char *after, size_t alen)
{
    char lim[16] = "";
    char *end;

    if (http_query(r, "state", f->state, sizeof f->state) < 0 ||
        http_query(r, "metadata", f->meta, sizeof f->meta) < 0 ||
        e2b_meta_filter(f) != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "metadata",
                        "metadata and state must be short, well-formed "
                        "queries");
        return -1;
    }
    *limit = E2B_LIST_DEFAULT;
    if (http_query(r, "limit", lim, sizeof lim) != 0) {
        *limit = strtoll(lim, &end, 10);
        if (*end != '\0' || *limit < 1 || *limit > E2B_LIST_MAX) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "limit",
                            "limit must be between 1 and %d", E2B_LIST_MAX);
            return -1;
        }
    }
    if (http_query(r, "nextToken", after, alen) < 0 ||
        (after[0] != '\0' && !id_valid(after))) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "nextToken",
                        "nextToken is not one of this list's");
        return -1;
    }
    return 0;
}

/* Append to arr the sandboxes of ids (sorted) after `after` that pass f,
 * at most limit; *next gets the last one when more may follow. */
static void e2b_list_page(cJSON *arr, char **ids, size_t n, const char *after,
                          const e2b_filter *f, long long limit, char *next)
{
    long long got = 0;

    next[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        cJSON *o;
        if (after[0] != '\0' && strcmp(ids[i], after) <= 0)
            continue;
        if ((o = sbxh_render(ids[i])) == NULL)
            continue;
        if (!e2b_passes(o, f)) {
            cJSON_Delete(o);
            continue;
        }
        if (got == limit) {
            cJSON_Delete(o); /* one more: next holds the page's last */
            return;
        }
        cJSON_AddItemToArray(arr, o);
        got++;
        /* The page's last: the next page starts after it. */
        snprintf(next, SP_ID_SIZE, "%s", ids[i]);
    }
    next[0] = '\0';
}

/* GET /v2/sandboxes?metadata=&state=&limit=&nextToken=: the caller's
 * sandboxes in id order, a page at a time (X-Next-Token when more). */
void e2b_list(http_req *r)
{
    e2b_filter *f = calloc(1, sizeof *f);
    char k[RDS_KEY_MAX], after[SP_ID_SIZE + 8] = "", next[SP_ID_SIZE];
    redisReply *set = NULL;
    char **ids = NULL;
    long long limit;
    cJSON *arr;
    size_t n = 0;

    if (f == NULL) {
        http_send_error(r, SP_E_INTERNAL, NULL, "out of memory");
        return;
    }
    if (e2b_list_query(r, f, &limit, after, sizeof after) != 0)
        goto out;
    key_of(k, sizeof k, KEY_SBXS_OF_OWNER, r->auth.sub);
    set = rds_cmd("SMEMBERS %s", k);
    if (set == NULL || set->type != REDIS_REPLY_ARRAY) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    if ((ids = calloc(set->elements + 1, sizeof *ids)) == NULL) {
        http_send_error(r, SP_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < set->elements; i++) {
        if (set->element[i]->type == REDIS_REPLY_STRING &&
            id_valid(set->element[i]->str))
            ids[n++] = set->element[i]->str;
    }
    qsort(ids, n, sizeof *ids, e2b_id_cmp);
    arr = cJSON_CreateArray();
    e2b_list_page(arr, ids, n, after, f, limit, next);
    if (next[0] != '\0')
        http_add_header(r, "X-Next-Token: %s", next);
    http_send_json(r, 200, arr);
    cJSON_Delete(arr);
out:
    free(ids);
    freeReplyObject(set);
    free(f);
}
