/* sse_fetch.c: the reader thread's requests on behalf of one client:
 * authentication and the ownership check of an OPEN job, and one chunk of
 * backlog (XRANGE after the resume point, formatted, at most the bytes the
 * client can take, with trimmed entries reported). Also turns stream
 * entries into events for the live reader (sse_reader.c). Runs on the
 * reader thread only, with its rds_cmd connection. */
#include "sse.h"
#include "sp_auth.h"
#include "sp_id.h"
#include "sp_jwt.h"
#include "sp_keys.h"
#include "sp_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SSE_BACKLOG_COUNT 256
#define SSE_BACKLOG_FIRST 8

/* Turn one XRANGE/XREAD entry into an event; NULL to skip it. */
static sse_ev *sse_entry_ev(const redisReply *e, const sse_route *route,
                            const char *label, int pointers, sse_sid *id)
{
    const char *type = NULL, *data = "";
    size_t dlen = 0;
    const redisReply *f;
    sse_ev *ev;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        sse_sid_parse(e->element[0]->str, e->element[0]->len, id) != 0)
        return NULL;
    f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY)
        return NULL; /* deleted entry */
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "type") == 0)
            type = v->str;
        else if (strcmp(k->str, "data") == 0) {
            data = v->str;
            dlen = v->len;
        }
    }
    if (type == NULL)
        return NULL;
    if (pointers) {
        /* The client stream contract: {type:"execution", data:<exe id>}. */
        if (strcmp(type, "execution") != 0 || !id_valid_typed(data, "exe_"))
            return NULL;
        ev = sse_ev_new(SSE_EV_PTR, 0);
        if (ev != NULL) {
            ev->id = *id;
            snprintf(ev->aux, sizeof ev->aux, "%s", data);
        }
        return ev;
    }
    if (route->map != NULL) /* an adapter's shapes; it may skip entries */
        return sse_ev_mapped(route->frame, route->map, *id, type, data, dlen,
                             route->final_type);
    if (route->format != NULL) /* a protocol's lines; it may skip entries */
        return route->format(route, *id, type, data, dlen, label);
    ev = sse_ev_format(route->frame, *id, type, data, dlen, route->label, label,
                       route->final_type);
    if (ev == NULL)
        log_warn("stream %s: entry of type \"%.32s\" skipped", label, type);
    return ev;
}

size_t sse_entries(const redisReply *r, const sse_route *route,
                   const char *label, int pointers, sse_ev ***tail,
                   size_t budget, size_t *used, sse_sid *last,
                   long long not_before_ms)
{
    size_t bytes = 0;
    *used = 0;
    for (size_t i = 0; i < r->elements; i++) {
        sse_sid id;
        sse_ev *ev = sse_entry_ev(r->element[i], route, label, pointers, &id);
        (*used)++;
        if (ev != NULL && pointers && (long long)id.ms < not_before_ms) {
            sse_ev_unref(ev);
            ev = NULL;
        }
        if (r->element[i]->type == REDIS_REPLY_ARRAY &&
            r->element[i]->elements == 2 &&
            r->element[i]->element[0]->type == REDIS_REPLY_STRING)
            sse_sid_parse(r->element[i]->element[0]->str,
                          r->element[i]->element[0]->len, last);
        if (ev == NULL)
            continue;
        **tail = ev;
        *tail = &ev->next;
        bytes += ev->len + 64;
        if (bytes >= budget)
            break;
    }
    return bytes;
}

/* A route of a sandbox's data plane: job->token must be the parent
 * sandbox's token of the route's purpose, and the sandbox's owner is the
 * subject. 0, or -1 with res->status set. */
static int sse_open_sandbox(const sse_job *job, sse_res *res)
{
    char key[RDS_KEY_MAX];
    redisReply *r;
    int rc = -1;

    if (job->token == NULL || !id_valid_typed(job->parent, "sbx_") ||
        !auth_sandbox_token_ok(job->route->sbx_token, job->parent, job->token))
        return -1;
    key_of(key, sizeof key, KEY_SBX, job->parent);
    r = rds_cmd("HGET %s owner", key);
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        res->status = SP_E_UNAVAILABLE;
    else if (r->type != REDIS_REPLY_STRING || !id_valid(r->str))
        res->status = SP_E_NOT_FOUND; /* the sandbox has gone */
    else {
        snprintf(res->sub, sizeof res->sub, "%s", r->str);
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}

void sse_do_open(const sse_job *job, sse_res *res)
{
    auth_info ai;
    tok_claims c;
    char key[RDS_KEY_MAX];
    size_t slen;
    const char *secret = auth_secret(&slen);
    redisReply *r = NULL;
    int rev;

    if (job->route->sbx_tokens) {
        sse_interp_open(job, res);
        return;
    }
    res->status = SP_E_UNAUTHENTICATED;
    if (job->route->sbx_token != NULL) {
        if (sse_open_sandbox(job, res) != 0)
            goto out;
    } else if (job->api_key[0] != '\0') {
        res->status = auth_api_key(job->api_key, &ai);
        if (res->status != SP_OK)
            goto out;
        snprintf(res->sub, sizeof res->sub, "%s", ai.sub);
    } else if (job->token != NULL) {
        if (tok_verify(job->token, TOK_ACCESS, secret, slen,
                       (long long)time(NULL), &c) != 0)
            goto out;
        rev = auth_is_revoked(c.jti, c.kid);
        res->status = rev < 0 ? SP_E_UNAVAILABLE : SP_E_UNAUTHENTICATED;
        if (rev != 0)
            goto out;
        snprintf(res->sub, sizeof res->sub, "%s", c.sub);
    } else {
        goto out;
    }
    res->status = SP_OK;
    if (job->route->client_stream)
        goto out;
    /* Unknown, expired and someone else's executions all look alike. */
    res->status = SP_E_NOT_FOUND;
    if (!id_valid_typed(job->id, job->route->id_prefix) ||
        key_of(key, sizeof key, job->route->owner, job->id) != 0)
        goto out;
    /* A route with a parent (a sandbox's watch): the record names it. */
    r = rds_cmd("HMGET %s owner %s", key,
                job->route->parent_field ? job->route->parent_field : "owner");
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        res->status = SP_E_UNAVAILABLE;
    else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
             r->element[0]->type == REDIS_REPLY_STRING &&
             strcmp(r->element[0]->str, res->sub) == 0 &&
             (job->route->parent_field == NULL ||
              (r->element[1]->type == REDIS_REPLY_STRING &&
               strcmp(r->element[1]->str, job->parent) == 0)))
        res->status = SP_OK;
out:
    freeReplyObject(r);
}

/* The stream's last entry is its final one and not after the resume
 * point after: the client had the end. Judged by that entry's id too, not
 * only its type: a final entry written after the backlog was read is
 * newer than after, and its client must still get it. 1 yes, 0 no, -1
 * Redis failed. */
static int sse_resumed_at_end(const char *key, sse_sid after,
                              const char *final_type)
{
    redisReply *r = rds_cmd("XREVRANGE %s + - COUNT 1", key);
    const redisReply *e, *f;
    sse_sid id;
    int result = 0;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        result = -1;
    else if (r->elements == 1 && final_type != NULL &&
             (e = r->element[0])->type == REDIS_REPLY_ARRAY &&
             e->elements == 2 && e->element[0]->type == REDIS_REPLY_STRING &&
             sse_sid_parse(e->element[0]->str, e->element[0]->len, &id) == 0 &&
             sse_sid_cmp(id, after) <= 0 &&
             (f = e->element[1])->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < f->elements; i += 2) {
            if (f->element[i]->type == REDIS_REPLY_STRING &&
                f->element[i + 1]->type == REDIS_REPLY_STRING &&
                strcmp(f->element[i]->str, "type") == 0 &&
                strcmp(f->element[i + 1]->str, final_type) == 0)
                result = 1;
        }
    }
    freeReplyObject(r);
    return result;
}

void sse_do_backlog(const sse_job *job, sse_res *res)
{
    char start[SSE_SID_STR + 1] = "-", cnt[16];
    sse_ev **tail = &res->evs;
    redisReply *r = NULL;
    sse_sid first, last = job->after;
    size_t used = 0, seen = 0;
    int has_after = job->has_after;

    res->status = -1;
    if (has_after && job->check_lost) {
        r = rds_cmd("XRANGE %s - + COUNT 1", job->key);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY)
            goto out;
        if (r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
            r->element[0]->elements == 2 &&
            r->element[0]->element[0]->type == REDIS_REPLY_STRING &&
            sse_sid_parse(r->element[0]->element[0]->str,
                          r->element[0]->element[0]->len, &first) == 0 &&
            sse_sid_cmp(first, job->after) > 0) {
            res->lost = 1; /* entries after the resume point were trimmed */
            has_after = 0;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (has_after) {
        start[0] = '(';
        sse_sid_format(job->after, start + 1);
    }
    /* Ask for few entries first and more while the budget lasts: a COUNT
     * sized for small events made Redis send whole chunks of large ones
     * (64 KiB of output each) that the budget then could not take. */
    for (size_t count = SSE_BACKLOG_FIRST, bytes = 0;;) {
        snprintf(cnt, sizeof cnt, "%zu", count);
        r = rds_cmd("XRANGE %s %s + COUNT %s", job->key, start, cnt);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY)
            goto out;
        bytes +=
            sse_entries(r, job->route, job->label, job->pointers, &tail,
                        job->budget - bytes, &used, &last, job->not_before_ms);
        seen += r->elements;
        res->done = used == r->elements && r->elements < count;
        if (res->done || used < r->elements || bytes >= job->budget)
            break;
        freeReplyObject(r);
        r = NULL;
        start[0] = '(';
        sse_sid_format(last, start + 1);
        count = count * 4 > SSE_BACKLOG_COUNT ? SSE_BACKLOG_COUNT : count * 4;
    }
    /* Nothing after the resume point, which is the final entry: the
     * client had the end. Only with a resume point and when nothing at all
     * came: without one the stream may not have existed yet when it was
     * read (its entries then come live, from 0-0); a stream's end is never
     * judged from a second read of its tail (an end written between the
     * two reads would be lost: the stream would close without it). */
    if (res->done && seen == 0 && has_after && !job->pointers &&
        sse_resumed_at_end(job->key, job->after, job->route->final_type) == 1)
        res->ended = 1;
    res->status = 0;
out:
    freeReplyObject(r);
}
