/* handlers/sandbox_workspaces.c: the sandboxes family: persistent
 * workspaces, a directory tree per subject and name that outlives the
 * sandboxes working in it.
 *
 * The record ws:<sub>:<name> is the workspace's manifest: {created,
 * version, archive (the object holding the tree now), size, synced,
 * holder, held_at, hold_state, mount}. The archive is a tar of the mount
 * directory, stored in the subject's internal bucket (sandbox_snapshots.c)
 * as workspaces/<name>/<version, 12 digits>-<random>.tar.
 *
 * A sync: the holder's helper packs the mount (hc_tree_pack of a path,
 * resolved inside the sandbox as the files API resolves one) into the
 * spool; the archive is stored under a new name; then one Lua script
 * switches the manifest only if the sandbox still holds the workspace and
 * the version is the one read before (compare-and-swap); then the
 * archives of older versions are removed. A crash at any point leaves the
 * manifest naming a whole archive: the old one or the new one. A sync's
 * archive that lost the swap is removed.
 *
 * Holding: POST /sandboxes {workspace, mount} holds the workspace for the
 * new sandbox before it is made (a second holder is 409), restores the
 * archive into the mount before the answer (so before any command), and
 * records workspace/ws_mount in the sandbox's record. A hold is alive only
 * while its sandbox's record exists (or, for 3 minutes, while its create
 * runs): a sandbox that ended any way (timeout, a helper lost) leaves a
 * hold nobody honours, and the next hold or the periodic thread clears
 * it. Syncs: every SP_WORKSPACE_SYNC seconds (a thread of sp-sandboxes,
 * driven by the zset wsync of due times), on POST …/workspace/sync, and
 * before the sandbox is deleted or paused through the API. */
#include "sandboxes.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_log.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WS_MAX         100 /* workspaces per subject */
#define WS_MAKING_S    180 /* a hold whose create runs counts this long */
#define WS_DEFAULT_MNT "/workspace/files"
#define WS_TICK_BATCH  16
#define WS_MEMBER_MAX  (2 * SP_ID_SIZE + 2)
#define WS_END_MARGIN_S 3 /* the last sync before an expiry comes this early */

/* Whether the holder h of the manifest KEYS[1] is alive: its sandbox's
 * record exists (ARGV[2] is the key of a sandbox's record less the id),
 * or its create began less than WS_MAKING_S ago (ARGV[3]: now). */
#define WS_LUA_ALIVE                                                           \
    "local function alive(h) "                                                 \
    "if not h or h == '' then return false end "                               \
    "if redis.call('EXISTS', ARGV[2] .. h) == 1 then return true end "         \
    "local at = tonumber(redis.call('HGET', KEYS[1], 'held_at') or '0') "      \
    "return redis.call('HGET', KEYS[1], 'hold_state') == 'making' and "        \
    "tonumber(ARGV[3]) - at < 180 end "

/* Hold KEYS[1] for ARGV[1] (mount ARGV[4]): 1, 0 if another holds it, -1
 * if there is no such workspace. */
static const char ws_hold_lua[] =
    WS_LUA_ALIVE
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end "
    "local h = redis.call('HGET', KEYS[1], 'holder') "
    "if h ~= ARGV[1] and alive(h) then return 0 end "
    "redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'held_at', ARGV[3], "
    "'hold_state', 'making', 'mount', ARGV[4]) return 1";

/* The hold of ARGV[1] becomes ARGV[4]'s (the id the helper gave), whose
 * record KEYS[3] gets the workspace ARGV[5] at ARGV[6]; due for its
 * periodic sync at ARGV[7] in the zset KEYS[2] as ARGV[8]. 1, or 0 if the
 * hold or the sandbox is gone. */
static const char ws_attach_lua[] =
    "if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return 0 end "
    "if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end "
    "redis.call('HSET', KEYS[1], 'holder', ARGV[4], 'hold_state', 'held') "
    "redis.call('HSET', KEYS[3], 'workspace', ARGV[5], 'ws_mount', ARGV[6]) "
    "redis.call('ZADD', KEYS[2], ARGV[7], ARGV[8]) return 1";

/* Let go of KEYS[1]'s hold if ARGV[1] has it (or nobody does); its member
 * ARGV[2] leaves the zset KEYS[2] then. */
static const char ws_release_lua[] =
    "local h = redis.call('HGET', KEYS[1], 'holder') "
    "if h and h ~= ARGV[1] then return 0 end "
    "redis.call('HDEL', KEYS[1], 'holder', 'held_at', 'hold_state') "
    "redis.call('ZREM', KEYS[2], ARGV[2]) return 1";

/* The switch of a sync: if ARGV[1] holds KEYS[1] and its version is
 * ARGV[2], it becomes ARGV[2]+1 naming archive ARGV[3] (size ARGV[4],
 * synced ARGV[5]): {new version, old archive}; {-1} not the holder; {-2}
 * the version moved. */
static const char ws_switch_lua[] =
    "if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return {-1} end "
    "local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0') "
    "if v ~= tonumber(ARGV[2]) then return {-2} end "
    "local old = redis.call('HGET', KEYS[1], 'archive') or '' "
    "redis.call('HSET', KEYS[1], 'version', v + 1, 'archive', ARGV[3], "
    "'size', ARGV[4], 'synced', ARGV[5]) return {v + 1, old}";

/* Delete KEYS[1] unless it is held by a live sandbox: 1, 0 held, -1 none. */
static const char ws_delete_lua[] =
    WS_LUA_ALIVE "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end "
                 "if alive(redis.call('HGET', KEYS[1], 'holder')) then "
                 "return 0 end "
                 "redis.call('DEL', KEYS[1]) "
                 "redis.call('SREM', KEYS[2], ARGV[1]) return 1";

/* Make KEYS[1] unless it exists: 1, or 0. */
static const char ws_create_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
    "redis.call('HSET', KEYS[1], 'created', ARGV[1], 'version', 0, 'size', 0) "
    "redis.call('SADD', KEYS[2], ARGV[2]) return 1";

/* Claim the due member ARGV[1] of zset KEYS[1] whose score was ARGV[2]:
 * its next time is ARGV[3]; 1, or 0 if another claimed it. */
static const char ws_claim_lua[] =
    "if redis.call('ZSCORE', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end "
    "redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) return 1";

/* 1 if name is a workspace name ([a-z0-9][a-z0-9_-]{0,62}), else 0. */
static int ws_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > SBXH_WS_NAME_MAX ||
        !((name[0] >= 'a' && name[0] <= 'z') ||
          (name[0] >= '0' && name[0] <= '9')))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* 0, or -1 after the 400 naming field and the rule. */
static int ws_name_ok(http_req *r, const char *name, const char *field)
{
    if (ws_name_valid(name))
        return 0;
    http_send_error_rule(r, SP_E_INVALID_ARGUMENT, field, "workspace_name",
                         "a workspace name is 1 to 63 of a-z, 0-9, '_' and "
                         "'-', starting with a letter or digit");
    return -1;
}

/* 1 if mount is an absolute path without "." or ".." segments and not
 * in /tmp, else 0 (the helper confines it in the sandbox in any case).
 * /tmp is the sandbox's own tmpfs, in its own mount namespace: scratch
 * space, not a place for a tree that is restored there. */
static int ws_mount_valid(const char *m)
{
    const char *seg;

    if (m == NULL || m[0] != '/' || strlen(m) > SBXH_WS_MOUNT_MAX ||
        (strncmp(m, "/tmp", 4) == 0 && (m[4] == '\0' || m[4] == '/')) ||
        strncmp(m, "//", 2) == 0)
        return 0;
    for (seg = m; seg != NULL; seg = strchr(seg + 1, '/')) {
        const char *s = seg + 1;
        size_t len = strcspn(s, "/");
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
    }
    return strcmp(m, "/") != 0;
}

/* The key of a sandbox's record less its id (the Lua scripts add it). */
static void ws_sbx_prefix(char *out, size_t outlen)
{
    size_t n;

    if (key_of(out, outlen, KEY_SBX, "x") != 0) {
        out[0] = '\0';
        return;
    }
    n = strlen(out);
    out[n - 1] = '\0';
}

/* The member of workspace name of sub in wsync (not a key: sub, ':' and
 * name; neither holds a ':'). */
static void ws_member(const char *sub, const char *name, char *out,
                      size_t outlen)
{
    snprintf(out, outlen, "%s%c%s", sub, ':', name);
}

/* EVAL script with keys k1..k3 (NULL: fewer) and args; the reply (caller
 * frees), NULL without Redis. */
static redisReply *ws_eval(const char *script, const char *k1, const char *k2,
                           const char *k3, int argc, const char **argv)
{
    const char *v[16];
    int n = 0, nk = k3 ? 3 : k2 ? 2 : 1;
    char nks[4];

    snprintf(nks, sizeof nks, "%d", nk);
    v[n++] = "EVAL";
    v[n++] = script;
    v[n++] = nks;
    v[n++] = k1;
    if (k2)
        v[n++] = k2;
    if (k3)
        v[n++] = k3;
    for (int i = 0; i < argc && n < 16; i++)
        v[n++] = argv[i];
    return rds_cmdv(n, v, NULL);
}

static long long ws_int(const redisReply *rep)
{
    return rep != NULL && rep->type == REDIS_REPLY_INTEGER ? rep->integer
                                                           : -100;
}

/* The one JSON shape of a workspace from its record h. */
static cJSON *ws_json(const char *name, const redisReply *h)
{
    cJSON *o = cJSON_CreateObject();
    char t[JSON_TIME_SIZE], k[RDS_KEY_MAX];
    const char *v, *holder = sbxh_field(h, "holder");
    redisReply *e = NULL;

    cJSON_AddStringToObject(o, "name", name);
    v = sbxh_field(h, "created");
    json_time(v ? atoll(v) : 0, t, sizeof t);
    cJSON_AddStringToObject(o, "created_at", t);
    v = sbxh_field(h, "version");
    cJSON_AddNumberToObject(o, "version", v ? atof(v) : 0);
    v = sbxh_field(h, "size");
    cJSON_AddNumberToObject(o, "size", v ? atof(v) : 0);
    if ((v = sbxh_field(h, "synced")) != NULL) {
        json_time(atoll(v), t, sizeof t);
        cJSON_AddStringToObject(o, "synced_at", t);
    } else {
        cJSON_AddNullToObject(o, "synced_at");
    }
    /* A holder whose sandbox is gone holds nothing. */
    if (holder != NULL && key_of(k, sizeof k, KEY_SBX, holder) == 0)
        e = rds_cmd("EXISTS %s", k);
    if (e != NULL && ws_int(e) == 1) {
        cJSON_AddStringToObject(o, "holder", holder);
        v = sbxh_field(h, "mount");
        cJSON_AddStringToObject(o, "mount", v ? v : WS_DEFAULT_MNT);
    } else {
        cJSON_AddNullToObject(o, "holder");
    }
    freeReplyObject(e);
    return o;
}

static redisReply *ws_record(const char *sub, const char *name)
{
    char k[RDS_KEY_MAX];

    if (key_of2(k, sizeof k, KEY_WS, sub, name) != 0)
        return NULL;
    return rds_cmd("HGETALL %s", k);
}

static cJSON *ws_render(const char *name, const void *sub)
{
    redisReply *h = ws_record(sub, name);
    cJSON *o = NULL;

    if (h != NULL && h->type == REDIS_REPLY_ARRAY && h->elements > 0)
        o = ws_json(name, h);
    freeReplyObject(h);
    return o;
}

/* Remove the archives of workspace name older than version keep (all
 * with keep 0). */
static void ws_sweep(const char *sub, const char *name, long long keep)
{
    const st_backend *be = sbxh_store();
    char prefix[SBXH_OBJ_KEY_MAX];
    st_list l = {0};
    size_t plen;

    if (be == NULL)
        return;
    plen = (size_t)snprintf(prefix, sizeof prefix, "workspaces/%s/", name);
    if (be->list(sub, SBXH_STORE_BUCKET, prefix, "", ST_LIST_MAX, &l) !=
        SP_OK) {
        st_list_free(&l);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        long long v = atoll(l.v[i].key + plen);
        if (keep == 0 || v < keep)
            sbxh_store_del(sub, l.v[i].key);
    }
    st_list_free(&l);
}

/* One try of ws_sync: 0, 1 when another sync of the same holder moved
 * the version first (try again), or -1 with err. */
static int ws_sync_once(const char *sub, const char *name, const char *sbx,
                        const char *helper, const char *mount,
                        long long *version, rpc_err *err)
{
    char k[RDS_KEY_MAX], expect[32], size[32], now[32], rnd[SP_ID_SIZE];
    sbxh_pack p = {.sub = sub};
    redisReply *rep;
    long long v;
    const char *argv[5];

    memset(err, 0, sizeof *err);
    if (key_of2(k, sizeof k, KEY_WS, sub, name) != 0 ||
        id_generate("a_", rnd, sizeof rnd) != 0) {
        rpc_err_set(err, RPC_ANSWER, SP_E_INTERNAL, "bad workspace");
        return -1;
    }
    rep = rds_cmd("HGET %s version", k);
    if (rep == NULL || rep->type != REDIS_REPLY_STRING) {
        freeReplyObject(rep);
        rpc_err_set(err, RPC_TRANSPORT, SP_E_UNAVAILABLE,
                    "state store unavailable");
        return -1;
    }
    v = atoll(rep->str);
    freeReplyObject(rep);
    /* The archive is named by the version it means to become: a sweep
     * after a later switch never takes one still on its way. */
    snprintf(p.key, sizeof p.key, "workspaces/%s/%012lld-%s.tar", name, v + 1,
             rnd);
    if (sbxh_pack_to_store(helper, sbx, mount, &p, err) != 0) {
        if (p.st != SP_OK)
            rpc_err_set(err, RPC_ANSWER,
                        p.st == SP_E_PAYLOAD_TOO_LARGE
                            ? SP_E_INSUFFICIENT_STORAGE
                            : SP_E_UNAVAILABLE,
                        "the archive could not be stored");
        return -1;
    }
    snprintf(expect, sizeof expect, "%lld", v);
    snprintf(size, sizeof size, "%lld", p.meta.size);
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    argv[0] = sbx, argv[1] = expect, argv[2] = p.key, argv[3] = size,
    argv[4] = now;
    rep = ws_eval(ws_switch_lua, k, NULL, NULL, 5, argv);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[0]->integer < 0) {
        int lost = rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
                   rep->elements > 0 &&
                   rep->element[0]->type == REDIS_REPLY_INTEGER;
        int moved = lost && rep->element[0]->integer == -2;
        freeReplyObject(rep);
        sbxh_store_del(sub, p.key); /* named by no manifest */
        if (moved)
            return 1;
        rpc_err_set(err, lost ? RPC_ANSWER : RPC_TRANSPORT,
                    lost ? SP_E_CONFLICT : SP_E_UNAVAILABLE,
                    lost ? "the workspace changed hands or version meanwhile"
                         : "state store unavailable");
        return -1;
    }
    *version = rep->element[0]->integer;
    freeReplyObject(rep);
    ws_sweep(sub, name, *version);
    return 0;
}

/* Sync workspace name of sub held by sbx (of helper) from mount: 0 with
 * the new version in *version, or -1 with err. A sync that lost the
 * switch to another of the same holder (the periodic one and a delete's)
 * packs again: the later one then has the later files. */
static int ws_sync(const char *sub, const char *name, const char *sbx,
                   const char *helper, const char *mount, long long *version,
                   rpc_err *err)
{
    int rc = 1;

    for (int i = 0; i < 3 && rc == 1; i++)
        rc = ws_sync_once(sub, name, sbx, helper, mount, version, err);
    if (rc == 1)
        rpc_err_set(err, RPC_ANSWER, SP_E_CONFLICT,
                    "the workspace's version kept moving");
    return rc == 0 ? 0 : -1;
}

int sbxh_ws_hold(http_req *r, const cJSON *body, const char *id, sbxh_ws *w)
{
    const char *name = NULL, *mount = NULL;
    char k[RDS_KEY_MAX], pre[RDS_KEY_MAX], now[32];
    const char *argv[4];
    redisReply *rep;
    long long got;

    memset(w, 0, sizeof *w);
    if (json_str(r, body, "workspace", 0, SBXH_WS_NAME_MAX + 1, &name) != 0 ||
        json_str(r, body, "mount", 0, SBXH_WS_MOUNT_MAX, &mount) != 0)
        return -1;
    if (name == NULL) {
        if (mount != NULL) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "mount",
                            "mount needs a workspace");
            return -1;
        }
        return 0;
    }
    if (ws_name_ok(r, name, "workspace") != 0)
        return -1;
    if (mount != NULL && !ws_mount_valid(mount)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "mount",
                        "mount must be an absolute directory path without "
                        "'.' or '..' segments, outside /tmp");
        return -1;
    }
    snprintf(w->mount, sizeof w->mount, "%s", mount ? mount : WS_DEFAULT_MNT);
    key_of2(k, sizeof k, KEY_WS, r->auth.sub, name);
    ws_sbx_prefix(pre, sizeof pre);
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    argv[0] = id, argv[1] = pre, argv[2] = now, argv[3] = w->mount;
    rep = ws_eval(ws_hold_lua, k, NULL, NULL, 4, argv);
    got = ws_int(rep);
    freeReplyObject(rep);
    if (got == 1) {
        snprintf(w->name, sizeof w->name, "%s", name);
        snprintf(w->held_by, sizeof w->held_by, "%s", id);
        return 0;
    }
    if (got == -1)
        http_send_error(r, SP_E_NOT_FOUND, "workspace", "workspace not found");
    else if (got == 0)
        http_send_error(r, SP_E_CONFLICT, "workspace",
                        "the workspace is held by another sandbox");
    else
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
    return -1;
}

void sbxh_ws_unhold(const char *sub, const sbxh_ws *w)
{
    char k[RDS_KEY_MAX], z[RDS_KEY_MAX], m[WS_MEMBER_MAX];
    const char *argv[2];

    if (w->name[0] == '\0' || key_of2(k, sizeof k, KEY_WS, sub, w->name) != 0 ||
        key_of(z, sizeof z, KEY_WS_SYNC, NULL) != 0)
        return;
    ws_member(sub, w->name, m, sizeof m);
    argv[0] = w->held_by, argv[1] = m;
    freeReplyObject(ws_eval(ws_release_lua, k, z, NULL, 2, argv));
}

/* The first periodic sync of a sandbox (its record key ks): after
 * SP_WORKSPACE_SYNC seconds, or WS_END_MARGIN_S before its expiry when
 * that comes first. */
static long long ws_first_due(const char *ks)
{
    long long now = (long long)time(NULL);
    long long due = now + cfg_int(CFG_SP_WORKSPACE_SYNC), end;
    redisReply *e = rds_cmd("HGET %s expires_at", ks);

    if (e != NULL && e->type == REDIS_REPLY_STRING) {
        end = atoll(e->str) - WS_END_MARGIN_S;
        if (end > now && end < due)
            due = end;
    }
    freeReplyObject(e);
    return due;
}

/* layer fill of a restore: the workspace's archive from the store. */
typedef struct ws_fill {
    const char *sub, *key;
    long long took_ms; /* the store's part of the restore */
} ws_fill;

static long long ws_fill_fn(void *ctx, int fd)
{
    ws_fill *f = ctx;
    long long t = rpc_now_ms(), n = sbxh_store_fill(f->sub, f->key, fd);

    f->took_ms = rpc_now_ms() - t;
    return n;
}

int sbxh_ws_attach(http_req *r, const char *id, sbxh_ws *w)
{
    char k[RDS_KEY_MAX], z[RDS_KEY_MAX], ks[RDS_KEY_MAX], helper[SP_ID_SIZE];
    char m[WS_MEMBER_MAX], due[32];
    redisReply *rep = NULL;
    rpc_reply out;
    rpc_err err;
    ws_fill f = {.sub = r->auth.sub};
    const char *argv[8];
    int result = -1;

    key_of2(k, sizeof k, KEY_WS, r->auth.sub, w->name);
    key_of(z, sizeof z, KEY_WS_SYNC, NULL);
    if (key_of(ks, sizeof ks, KEY_SBX, id) != 0 ||
        rpc_sandbox_helper(r->auth.sub, id, helper) != SP_OK) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "sandbox vanished");
        return -1;
    }
    /* The mount made (parents too, the sandbox user's), then the tree. */
    if (hc_file_mkdir(helper, id, w->mount, &out, &err) != 0) {
        http_send_rpc_error(r, &err, "mount");
        return -1;
    }
    rpc_reply_free(&out);
    rep = rds_cmd("HGET %s archive", k);
    if (rep == NULL || (rep->type != REDIS_REPLY_STRING &&
                        rep->type != REDIS_REPLY_NIL)) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    if (rep->type == REDIS_REPLY_STRING && rep->len > 0) {
        long long t = rpc_now_ms();
        f.key = rep->str;
        if (hc_tree_unpack(helper, id, w->mount, ws_fill_fn, &f, &err) != 0) {
            http_send_rpc_error(r, &err, "workspace");
            goto out;
        }
        log_info("sandbox %s: workspace restored in %lld ms (%lld from the "
                 "store)",
                 id, rpc_now_ms() - t, f.took_ms);
    }
    /* Restored: now it counts as the sandbox's, and is synced. */
    ws_member(r->auth.sub, w->name, m, sizeof m);
    snprintf(due, sizeof due, "%lld", ws_first_due(ks));
    argv[0] = w->held_by, argv[1] = "", argv[2] = "", argv[3] = id,
    argv[4] = w->name, argv[5] = w->mount, argv[6] = due, argv[7] = m;
    freeReplyObject(rep);
    rep = ws_eval(ws_attach_lua, k, z, ks, 8, argv);
    if (ws_int(rep) != 1) {
        http_send_error(r, SP_E_CONFLICT, "workspace",
                        "the workspace's hold was lost while the sandbox was "
                        "made");
        goto out;
    }
    snprintf(w->held_by, sizeof w->held_by, "%s", id);
    result = 0;
out:
    freeReplyObject(rep);
    return result;
}

/* The workspace and mount of sandbox sbx's record into name and mount:
 * 1, 0 for none, -1 without Redis. */
static int ws_of_sandbox(const char *sbx, char *name, char *mount)
{
    char k[RDS_KEY_MAX];
    redisReply *rep;
    int rc = -1;

    if (key_of(k, sizeof k, KEY_SBX, sbx) != 0)
        return 0;
    rep = rds_cmd("HMGET %s workspace ws_mount", k);
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
        rc = 0;
        if (rep->element[0]->type == REDIS_REPLY_STRING &&
            rep->element[1]->type == REDIS_REPLY_STRING &&
            rep->element[0]->len <= SBXH_WS_NAME_MAX &&
            rep->element[1]->len <= SBXH_WS_MOUNT_MAX) {
            snprintf(name, SBXH_WS_NAME_MAX + 1, "%s", rep->element[0]->str);
            snprintf(mount, SBXH_WS_MOUNT_MAX + 1, "%s", rep->element[1]->str);
            rc = 1;
        }
    }
    freeReplyObject(rep);
    return rc;
}

int sbxh_ws_before_end(http_req *r, const char *sbx, const char *helper,
                       int release)
{
    sbxh_ws w = {0};
    long long version;
    rpc_err err;
    int has = ws_of_sandbox(sbx, w.name, w.mount);

    if (has <= 0)
        return 0;
    /* A paused sandbox was synced when it was paused; one whose mount is
     * no directory any more (its code removed it) has nothing to save:
     * neither may keep it from its end. Any other failure (the helper or
     * the store away) is answered: nothing is ended with changes that
     * were not saved. */
    if (ws_sync(r->auth.sub, w.name, sbx, helper, w.mount, &version, &err) !=
            0 &&
        !(err.fail == RPC_ANSWER &&
          (err.st == SP_E_PAUSED || err.st == SP_E_NOT_FOUND ||
           err.st == SP_E_INVALID_ARGUMENT))) {
        log_warn("sandbox %s: the sync of its workspace failed: %s", sbx,
                 err.msg);
        http_send_rpc_error(r, &err, "workspace");
        return -1;
    }
    if (release) {
        snprintf(w.held_by, sizeof w.held_by, "%s", sbx);
        sbxh_ws_unhold(r->auth.sub, &w);
    }
    return 0;
}

void sbxh_ws_sync_route(http_req *r)
{
    char helper[SP_ID_SIZE], name[SBXH_WS_NAME_MAX + 1];
    char mount[SBXH_WS_MOUNT_MAX + 1];
    long long version;
    rpc_err err;
    int has;

    if (sbxh_lookup(r, r->params[0], helper) != 0)
        return;
    if ((has = ws_of_sandbox(r->params[0], name, mount)) <= 0) {
        if (has < 0)
            http_send_error(r, SP_E_UNAVAILABLE, NULL,
                            "state store unavailable");
        else
            http_send_error(r, SP_E_CONFLICT, NULL,
                            "the sandbox has no workspace");
        return;
    }
    if (ws_sync(r->auth.sub, name, r->params[0], helper, mount, &version,
                &err) != 0) {
        http_send_rpc_error(r, &err, "workspace");
        return;
    }
    sbxh_send_doc(r, 200, ws_render(name, r->auth.sub));
}

void sbxh_ws_create(http_req *r)
{
    cJSON *body = http_json_body(r, 0);
    const char *name = NULL;
    char k[RDS_KEY_MAX], ks[RDS_KEY_MAX], now[32];
    const char *argv[2];
    redisReply *rep = NULL;
    long long got;

    if (body == NULL ||
        json_str(r, body, "name", 1, SBXH_WS_NAME_MAX + 1, &name) != 0 ||
        ws_name_ok(r, name, "name") != 0)
        goto out;
    key_of2(k, sizeof k, KEY_WS, r->auth.sub, name);
    key_of(ks, sizeof ks, KEY_WSS_OF_OWNER, r->auth.sub);
    rep = rds_cmd("SCARD %s", ks);
    if ((got = ws_int(rep)) < 0) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    if (got >= WS_MAX) {
        http_send_error(r, SP_E_RATE_LIMITED, NULL,
                        "at most %d workspaces per subject", WS_MAX);
        goto out;
    }
    freeReplyObject(rep);
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    argv[0] = now, argv[1] = name;
    rep = ws_eval(ws_create_lua, k, ks, NULL, 2, argv);
    if ((got = ws_int(rep)) != 1) {
        if (got == 0)
            http_send_error(r, SP_E_CONFLICT, "name",
                            "a workspace of that name exists");
        else
            http_send_error(r, SP_E_UNAVAILABLE, NULL,
                            "state store unavailable");
        goto out;
    }
    sbxh_send_doc(r, 201, ws_render(name, r->auth.sub));
out:
    freeReplyObject(rep);
    cJSON_Delete(body);
}

void sbxh_ws_list(http_req *r)
{
    char k[RDS_KEY_MAX];

    key_of(k, sizeof k, KEY_WSS_OF_OWNER, r->auth.sub);
    sbxh_send_set(r, k, "workspaces", WS_MAX, ws_render, r->auth.sub);
}

void sbxh_ws_get(http_req *r)
{
    cJSON *o = ws_name_valid(r->params[0])
                   ? ws_render(r->params[0], r->auth.sub)
                   : NULL;

    if (o == NULL) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "workspace not found");
        return;
    }
    http_send_json(r, 200, o);
    cJSON_Delete(o);
}

void sbxh_ws_delete(http_req *r)
{
    char k[RDS_KEY_MAX], ks[RDS_KEY_MAX], pre[RDS_KEY_MAX], now[32];
    const char *argv[3];
    redisReply *rep;
    long long got;

    if (!ws_name_valid(r->params[0])) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "workspace not found");
        return;
    }
    key_of2(k, sizeof k, KEY_WS, r->auth.sub, r->params[0]);
    key_of(ks, sizeof ks, KEY_WSS_OF_OWNER, r->auth.sub);
    ws_sbx_prefix(pre, sizeof pre);
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    /* ARGV[1] is the name (SREM); alive() reads ARGV[2] and ARGV[3]. */
    argv[0] = r->params[0], argv[1] = pre, argv[2] = now;
    rep = ws_eval(ws_delete_lua, k, ks, NULL, 3, argv);
    got = ws_int(rep);
    freeReplyObject(rep);
    if (got == 1) {
        ws_sweep(r->auth.sub, r->params[0], 0);
        http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
    } else if (got == 0) {
        http_send_error(r, SP_E_CONFLICT, NULL,
                        "the workspace is held by a sandbox");
    } else if (got == -1) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "workspace not found");
    } else {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
    }
}

/* The helper ends a sandbox at its expiry without a sync: the last
 * periodic one before it is moved to WS_END_MARGIN_S seconds ahead of the
 * expiry when that comes before the next due time, so a timeout loses at
 * most the last seconds. */
static void ws_due_before_end(const char *member, long long expires_at)
{
    long long now = (long long)time(NULL);
    long long at = expires_at - WS_END_MARGIN_S;
    char z[RDS_KEY_MAX], score[32];

    if (at <= now || at >= now + cfg_int(CFG_SP_WORKSPACE_SYNC) ||
        key_of(z, sizeof z, KEY_WS_SYNC, NULL) != 0)
        return;
    snprintf(score, sizeof score, "%lld", at);
    /* XX: only while it is still a member (not let go meanwhile). */
    freeReplyObject(rds_cmd("ZADD %s XX %s %s", z, score, member));
}

/* The periodic sync of one due member "<sub>:<name>" of wsync. */
static void ws_tick_one(const char *member)
{
    char sub[SP_ID_SIZE], name[SBXH_WS_NAME_MAX + 1], k[RDS_KEY_MAX];
    char ks[RDS_KEY_MAX], mount[SBXH_WS_MOUNT_MAX + 1];
    const char *colon = strchr(member, ':');
    redisReply *h = NULL, *s = NULL;
    sbxh_ws w = {0};
    long long version;
    rpc_err err;

    if (colon == NULL || (size_t)(colon - member) >= sizeof sub ||
        strlen(colon + 1) >= sizeof name)
        return;
    snprintf(sub, sizeof sub, "%.*s", (int)(colon - member), member);
    snprintf(name, sizeof name, "%s", colon + 1);
    if (key_of2(k, sizeof k, KEY_WS, sub, name) != 0)
        return;
    h = rds_cmd("HMGET %s holder mount", k);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements != 2)
        goto out;
    snprintf(w.name, sizeof w.name, "%s", name);
    if (h->element[0]->type != REDIS_REPLY_STRING ||
        key_of(ks, sizeof ks, KEY_SBX, h->element[0]->str) != 0) {
        sbxh_ws_unhold(sub, &w); /* nobody holds it: out of the zset */
        goto out;
    }
    snprintf(w.held_by, sizeof w.held_by, "%s", h->element[0]->str);
    snprintf(mount, sizeof mount, "%s",
             h->element[1]->type == REDIS_REPLY_STRING ? h->element[1]->str
                                                       : WS_DEFAULT_MNT);
    s = rds_cmd("HMGET %s helper status expires_at", ks);
    if (s == NULL || s->type != REDIS_REPLY_ARRAY || s->elements != 3)
        goto out;
    if (s->element[0]->type != REDIS_REPLY_STRING) {
        /* The holder is gone (timeout, a lost helper): its changes since
         * the last sync went with it; the hold goes now. */
        log_info("workspace %s: its holder %s is gone", name, w.held_by);
        sbxh_ws_unhold(sub, &w);
        goto out;
    }
    if (s->element[1]->type == REDIS_REPLY_STRING &&
        strcmp(s->element[1]->str, "paused") == 0)
        goto out; /* synced when it was paused */
    if (ws_sync(sub, name, w.held_by, s->element[0]->str, mount, &version,
                &err) != 0)
        log_warn("workspace %s: periodic sync failed: %s", name, err.msg);
    if (s->element[2]->type == REDIS_REPLY_STRING)
        ws_due_before_end(member, atoll(s->element[2]->str));
out:
    freeReplyObject(h);
    freeReplyObject(s);
}

/* Every due member of wsync, claimed (so one program syncs it) and
 * synced. */
static void ws_tick(void)
{
    char z[RDS_KEY_MAX], now[32], next[32];
    redisReply *due;
    const char *argv[3];

    if (key_of(z, sizeof z, KEY_WS_SYNC, NULL) != 0)
        return;
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    snprintf(next, sizeof next, "%lld",
             (long long)time(NULL) + cfg_int(CFG_SP_WORKSPACE_SYNC));
    due = rds_cmd("ZRANGEBYSCORE %s -inf %s WITHSCORES LIMIT 0 %d", z, now,
                  WS_TICK_BATCH);
    for (size_t i = 0; due != NULL && due->type == REDIS_REPLY_ARRAY &&
                       i + 1 < due->elements;
         i += 2) {
        redisReply *c;
        argv[0] = due->element[i]->str, argv[1] = due->element[i + 1]->str,
        argv[2] = next;
        c = ws_eval(ws_claim_lua, z, NULL, NULL, 3, argv);
        if (ws_int(c) == 1)
            ws_tick_one(due->element[i]->str);
        freeReplyObject(c);
    }
    freeReplyObject(due);
}

static void *ws_thread(void *arg)
{
    (void)arg;
    for (;;) {
        sleep(1);
        ws_tick();
    }
    return NULL;
}

int sbxh_ws_start(void)
{
    pthread_t t;
    pthread_attr_t a;
    sigset_t all, old;
    int rc;

    /* The thread takes no signal: SIGTERM is for http_main's terminator
     * (a thread that took it while it is ignored would keep it from
     * there). */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &a, ws_thread, NULL);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        log_error("pthread_create(workspace sync) failed: %s", strerror(rc));
    return rc == 0 ? 0 : -1;
}
