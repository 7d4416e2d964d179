/* handlers/sandbox_snapshots.c: the sandboxes family: snapshots of a
 * template sandbox's writable layer, and the object store both snapshots
 * and workspaces (sandbox_workspaces.c) keep their archives in.
 *
 * POST /sandboxes/{id}/snapshots: the helper packs the layer (frozen
 * meanwhile, hc_tree_pack "layer") into a spool file, which is stored as
 * snapshots/<snp>.tar in the subject's internal bucket; the record is
 * snap:<snp> {owner, template, size, created, sandbox, object} and the
 * subject's set snaps:<sub>. POST /sandboxes {snapshot} makes a sandbox of
 * the snapshot's template whose disk gets the layer before its overlay
 * is mounted (hc_sandbox_req.layer_fill), so before the answer and the
 * first command. GET /snapshots, GET and DELETE /snapshots/{id}; another
 * subject's snapshot is 404.
 *
 * The internal bucket is SBXH_STORE_BUCKET, a name obj_bucket_rule
 * refuses ("_" is not a bucket character): no /buckets route can name it,
 * and a user's bucket can never be it. The archives are the helper's
 * output of a sandbox the user controls, so they are as hostile as any
 * upload: the helper unpacks them as the sandbox's own identity
 * (helper/sbx_tree.c). */
#include "sandboxes.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_log.h"
#include "sp_spool.h"
#include "sp_store.h"
#include "sp_tspec.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SBXH_SNAPS_MAX 100 /* snapshots per subject */

static pthread_once_t sbxh_store_once = PTHREAD_ONCE_INIT;
static const st_backend *sbxh_store_be;

static void sbxh_store_init(void)
{
    char err[512];

    if (st_init(err, sizeof err) != 0)
        log_error("storage: %s", err);
    else
        sbxh_store_be = st_get();
}

const st_backend *sbxh_store(void)
{
    pthread_once(&sbxh_store_once, sbxh_store_init);
    return sbxh_store_be;
}

/* A PUT's source: the archive's fd. */
static long sbxh_fd_source(void *ctx, char *buf, size_t len)
{
    ssize_t n;

    while ((n = read(*(int *)ctx, buf, len)) < 0 && errno == EINTR)
        ;
    return (long)n;
}

sp_status sbxh_store_put(const char *sub, const char *key, int fd,
                         long long size, st_meta *out)
{
    const st_backend *be = sbxh_store();
    sp_status st;

    if (be == NULL)
        return SP_E_UNAVAILABLE;
    st = be->bucket_make(sub, SBXH_STORE_BUCKET);
    if (st == SP_OK)
        st = be->put(sub, SBXH_STORE_BUCKET, key, "application/x-tar",
                     size, sbxh_fd_source, &fd, out);
    return st;
}

static int sbxh_fd_sink(void *ctx, const char *buf, size_t len)
{
    return spool_write_all(*(int *)ctx, buf, len);
}

long long sbxh_store_fill(const char *sub, const char *key, int fd)
{
    const st_backend *be = sbxh_store();
    st_meta m;

    if (be == NULL || be->stat(sub, SBXH_STORE_BUCKET, key, &m) != SP_OK)
        return -1;
    if (m.size > 0 && be->get(sub, SBXH_STORE_BUCKET, key, m.etag, 0, m.size,
                              sbxh_fd_sink, &fd) != SP_OK)
        return -1;
    return m.size;
}

void sbxh_store_del(const char *sub, const char *key)
{
    const st_backend *be = sbxh_store();

    if (be == NULL || be->del(sub, SBXH_STORE_BUCKET, key) != SP_OK)
        log_warn("storage: an internal object of a snapshot or workspace "
                 "could not be removed");
}

void sbxh_send_doc(http_req *r, int status, cJSON *o)
{
    if (o != NULL)
        http_send_json(r, status, o);
    else
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
    cJSON_Delete(o);
}

/* hc_tree_pack's take: the archive stored. */
static int sbxh_pack_take(void *ctx, int fd, long long size)
{
    sbxh_pack *p = ctx;

    p->st = sbxh_store_put(p->sub, p->key, fd, size, &p->meta);
    return p->st == SP_OK ? 0 : -1;
}

int sbxh_pack_to_store(const char *helper, const char *sbx, const char *what,
                       sbxh_pack *p, rpc_err *err)
{
    p->st = SP_OK;
    return hc_tree_pack(helper, sbx, what, sbxh_pack_take, p, err);
}

int sbxh_pack_store(http_req *r, const char *helper, const char *sbx,
                    const char *what, sbxh_pack *p)
{
    rpc_err err;

    if (sbxh_pack_to_store(helper, sbx, what, p, &err) == 0)
        return 0;
    if (p->st != SP_OK)
        http_send_error(r, p->st == SP_E_PAYLOAD_TOO_LARGE
                               ? SP_E_INSUFFICIENT_STORAGE
                               : SP_E_UNAVAILABLE,
                        NULL, "the archive could not be stored: %s",
                        sp_status_code(p->st));
    else
        http_send_rpc_error(r, &err, NULL);
    return -1;
}

/* snap:<id> if it is the caller's (else NULL after the 404, or 503). */
static redisReply *sbxh_snap_get(http_req *r, const char *id)
{
    return rpc_owned_record(r, KEY_SNAP, id, "snp_", "snapshot", NULL, NULL);
}

/* The one JSON shape of a snapshot, from its record. */
static cJSON *sbxh_snap_json(const char *id, const redisReply *h)
{
    cJSON *o = cJSON_CreateObject();
    char t[JSON_TIME_SIZE];
    const char *v;

    cJSON_AddStringToObject(o, "id", id);
    v = sbxh_field(h, "template");
    cJSON_AddStringToObject(o, "template", v ? v : "");
    v = sbxh_field(h, "sandbox");
    cJSON_AddStringToObject(o, "sandbox_id", v ? v : "");
    v = sbxh_field(h, "size");
    cJSON_AddNumberToObject(o, "size", v ? atof(v) : 0);
    v = sbxh_field(h, "created");
    json_time(v ? atoll(v) : 0, t, sizeof t);
    cJSON_AddStringToObject(o, "created_at", t);
    return o;
}

static cJSON *sbxh_snap_render(const char *id, const void *arg)
{
    char k[RDS_KEY_MAX];
    redisReply *h;
    cJSON *o = NULL;

    (void)arg;
    if (key_of(k, sizeof k, KEY_SNAP, id) != 0)
        return NULL;
    h = rds_cmd("HGETALL %s", k);
    if (h != NULL && h->type == REDIS_REPLY_ARRAY && h->elements > 0)
        o = sbxh_snap_json(id, h);
    freeReplyObject(h);
    return o;
}

/* The template of sandbox sbx (its record's), into out; 0 or -1. */
static int sbxh_template_of(const char *sbx, char *out, size_t outlen)
{
    char k[RDS_KEY_MAX];
    redisReply *v;
    int rc = -1;

    if (key_of(k, sizeof k, KEY_SBX, sbx) != 0)
        return -1;
    v = rds_cmd("HGET %s template", k);
    if (v != NULL && v->type == REDIS_REPLY_STRING && v->len < outlen) {
        snprintf(out, outlen, "%s", v->str);
        rc = 0;
    }
    freeReplyObject(v);
    return rc;
}

void sbxh_snapshot_create(http_req *r)
{
    char helper[SP_ID_SIZE], id[SP_ID_SIZE], tpl[TS_NAME_MAX + 1];
    char k[RDS_KEY_MAX], ks[RDS_KEY_MAX], size[32], now[32];
    sbxh_pack p = {.sub = r->auth.sub};
    redisReply *rep = NULL;

    if (sbxh_lookup(r, r->params[0], helper) != 0)
        return;
    if (sbxh_template_of(r->params[0], tpl, sizeof tpl) != 0 ||
        strcmp(tpl, "host") == 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, NULL,
                        "only a template's sandbox has a layer to snapshot");
        return;
    }
    if (id_generate("snp_", id, sizeof id) != 0 ||
        key_of(k, sizeof k, KEY_SNAP, id) != 0 ||
        key_of(ks, sizeof ks, KEY_SNAPS_OF_OWNER, r->auth.sub) != 0) {
        http_send_error(r, SP_E_INTERNAL, NULL, "could not make an id");
        return;
    }
    rep = rds_cmd("SCARD %s", ks);
    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER ||
        rep->integer >= SBXH_SNAPS_MAX) {
        if (rep == NULL || rep->type != REDIS_REPLY_INTEGER)
            http_send_error(r, SP_E_UNAVAILABLE, NULL,
                            "state store unavailable");
        else
            http_send_error(r, SP_E_RATE_LIMITED, NULL,
                            "at most %d snapshots per subject",
                            SBXH_SNAPS_MAX);
        goto out;
    }
    snprintf(p.key, sizeof p.key, "snapshots/%s.tar", id);
    if (sbxh_pack_store(r, helper, r->params[0], "layer", &p) != 0)
        goto out;
    snprintf(size, sizeof size, "%lld", p.meta.size);
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    freeReplyObject(rep);
    rep = rds_cmd("HSET %s owner %s template %s size %s created %s sandbox %s "
                  "object %s",
                  k, r->auth.sub, tpl, size, now, r->params[0], p.key);
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        sbxh_store_del(r->auth.sub, p.key);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    freeReplyObject(rds_cmd("SADD %s %s", ks, id));
    sbxh_send_doc(r, 201, sbxh_snap_render(id, NULL));
out:
    freeReplyObject(rep);
}

void sbxh_snapshot_list(http_req *r)
{
    char k[RDS_KEY_MAX];

    key_of(k, sizeof k, KEY_SNAPS_OF_OWNER, r->auth.sub);
    sbxh_send_set(r, k, "snapshots", SBXH_SNAPS_MAX, sbxh_snap_render, NULL);
}

void sbxh_snapshot_get(http_req *r)
{
    redisReply *h = sbxh_snap_get(r, r->params[0]);

    if (h == NULL)
        return;
    sbxh_send_doc(r, 200, sbxh_snap_json(r->params[0], h));
    freeReplyObject(h);
}

void sbxh_snapshot_delete(http_req *r)
{
    redisReply *h = sbxh_snap_get(r, r->params[0]);
    char k[RDS_KEY_MAX], ks[RDS_KEY_MAX];
    const char *obj;

    if (h == NULL)
        return;
    key_of(k, sizeof k, KEY_SNAP, r->params[0]);
    key_of(ks, sizeof ks, KEY_SNAPS_OF_OWNER, r->auth.sub);
    /* The record first: a snapshot is gone once nobody can name it; its
     * object after (a failure leaves an unnamed object, logged). */
    freeReplyObject(rds_cmd("DEL %s", k));
    freeReplyObject(rds_cmd("SREM %s %s", ks, r->params[0]));
    if ((obj = sbxh_field(h, "object")) != NULL)
        sbxh_store_del(r->auth.sub, obj);
    freeReplyObject(h);
    http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
}

/* hc_create's layer_fill: the snapshot's archive from the store. */
static long long sbxh_snap_fill(void *ctx, int fd)
{
    const sbxh_from *f = ctx;

    return sbxh_store_fill(f->sub, f->object, fd);
}

int sbxh_snapshot_spec(http_req *r, const cJSON *body, hc_sandbox_req *q,
                       sbxh_from *f)
{
    const char *snap = NULL, *v;
    redisReply *h;

    if (json_str(r, body, "snapshot", 0, SP_ID_MAX, &snap) != 0)
        return -1;
    if (snap == NULL)
        return 0;
    if ((h = sbxh_snap_get(r, snap)) == NULL)
        return -1;
    snprintf(f->template_name, sizeof f->template_name, "%s",
             (v = sbxh_field(h, "template")) ? v : "");
    snprintf(f->object, sizeof f->object, "%s",
             (v = sbxh_field(h, "object")) ? v : "");
    freeReplyObject(h);
    /* Its changes are on top of its template: no other one. */
    if (q->template_name != NULL &&
        strcmp(q->template_name, f->template_name) != 0) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "template",
                        "a snapshot's sandbox has the snapshot's template (%s)",
                        f->template_name);
        return -1;
    }
    f->sub = r->auth.sub;
    q->template_name = f->template_name;
    q->layer_fill = sbxh_snap_fill;
    q->layer_ctx = f;
    return 0;
}
