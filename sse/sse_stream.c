/* sse_stream.c: topics and subscriptions on the loop thread. A topic is
 * one Redis stream that the reader watches for as long as some client
 * reads it; a subscription is one client's position in it. A subscription
 * first pulls its backlog in chunks sized to what the client can take,
 * then turns live and gets each live batch of its topic; any entry not
 * newer than the last one it sent is dropped, so the hand-over has no gap
 * (see sse_reader.c) and no duplicate.
 *
 * The client stream (/events?clientId=) contract with the producer: an
 * execution started with a clientId is announced by XADD of an entry
 * {type:"execution", data:"<exe_id>"} to the capped stream
 * <prefix>client:<sub>:<clientId>. Such a stream's subscription is a
 * "pointer" subscription: each announced execution (within the last
 * SSE_CLIENT_REPLAY_S seconds) gets a subscription of its own on
 * <prefix>events:<exe_id> for the same client, which ends after the
 * execution's result. Resume on a client stream compares the Last-Event-ID
 * with the entry ids of every execution (Redis makes them from one clock),
 * so events of two executions in the same millisecond may be resent or
 * skipped; per-execution streams resume exactly. */
#include "sse_loop.h"
#include "sp_keys.h"
#include "sp_log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SSE_TOPIC_BUCKETS    4096
#define SSE_CLIENT_EXECS_MAX 64

static sse_topic *sse_topics[SSE_TOPIC_BUCKETS];

/* A client to close or a subscription to end after a fan-out. */
typedef struct sse_later {
    uint64_t handle;
    uint32_t sub_id;
    int close;
} sse_later;

static unsigned sse_thash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % SSE_TOPIC_BUCKETS;
}

/* The topic of stream key read through route: a route's framing and
 * mapping make its events' bytes, so two routes on one stream (SSE and
 * WebSocket clients of one execution) are two topics. */
static sse_topic *sse_topic_find(const char *key, const sse_route *route)
{
    for (sse_topic *t = sse_topics[sse_thash(key)]; t != NULL; t = t->hnext) {
        if (t->route == route && strcmp(t->key, key) == 0)
            return t;
    }
    return NULL;
}

static void sse_job_watch(int type, const sse_topic *tp)
{
    sse_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return; /* live entries of it are missed until a resubscribe */
    job->type = type;
    job->route = tp->route;
    job->pointers = tp->pointers;
    snprintf(job->key, sizeof job->key, "%s", tp->key);
    snprintf(job->label, sizeof job->label, "%s", tp->label);
    sse_reader_submit(job);
}

static sse_topic *sse_topic_get(const char *key, const sse_route *route,
                                const char *label, int pointers)
{
    sse_topic *tp = sse_topic_find(key, route);
    unsigned h;
    if (tp != NULL)
        return tp;
    tp = calloc(1, sizeof *tp);
    if (tp == NULL)
        return NULL;
    snprintf(tp->key, sizeof tp->key, "%s", key);
    snprintf(tp->label, sizeof tp->label, "%s", label);
    tp->route = route;
    tp->pointers = pointers;
    h = sse_thash(key);
    tp->hnext = sse_topics[h];
    sse_topics[h] = tp;
    sse_job_watch(SSE_JOB_WATCH, tp);
    return tp;
}

static void sse_topic_release(sse_topic *tp)
{
    sse_topic **pp;
    if (tp->subs != NULL)
        return;
    for (pp = &sse_topics[sse_thash(tp->key)]; *pp != NULL;
         pp = &(*pp)->hnext) {
        if (*pp == tp) {
            *pp = tp->hnext;
            break;
        }
    }
    sse_job_watch(SSE_JOB_UNWATCH, tp);
    free(tp);
}

void sse_sub_request(sse_sub *s)
{
    sse_client *cl = s->cl;
    sse_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return;
    job->type = SSE_JOB_BACKLOG;
    job->handle = sse_client_handle(cl);
    job->sub_id = s->id;
    job->route = s->tp->route;
    job->pointers = s->pointers;
    snprintf(job->key, sizeof job->key, "%s", s->tp->key);
    snprintf(job->label, sizeof job->label, "%s", s->tp->label);
    job->has_after = s->has_last;
    job->after = s->last;
    job->check_lost = s->check_lost;
    s->check_lost = 0;
    job->not_before_ms = s->not_before_ms;
    job->budget =
        cl->qbytes < SSE_OUT_MAX / 2 ? SSE_OUT_MAX / 2 - cl->qbytes : 64 * 1024;
    s->inflight = 1;
    sse_reader_submit(job);
}

sse_sub *sse_sub_add(sse_client *cl, const char *key, const sse_route *route,
                     const char *label, int pointers, const sse_sid *after,
                     int check_lost, long long not_before_ms)
{
    sse_sub *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->tp = sse_topic_get(key, route, label, pointers);
    if (s->tp == NULL) {
        free(s);
        return NULL;
    }
    s->cl = cl;
    s->id = ++cl->next_sub_id;
    s->pointers = (uint8_t)pointers;
    s->check_lost = (uint8_t)check_lost;
    s->not_before_ms = not_before_ms;
    if (after != NULL) {
        s->last = *after;
        s->has_last = 1;
    }
    s->tnext = s->tp->subs;
    if (s->tnext != NULL)
        s->tnext->tprev = s;
    s->tp->subs = s;
    s->cnext = cl->subs;
    cl->subs = s;
    cl->nsubs++;
    sse_sub_request(s);
    return s;
}

static void sse_sub_remove(sse_sub *s)
{
    sse_client *cl = s->cl;
    sse_topic *tp = s->tp;
    for (sse_sub **pp = &cl->subs; *pp != NULL; pp = &(*pp)->cnext) {
        if (*pp == s) {
            *pp = s->cnext;
            break;
        }
    }
    cl->nsubs--;
    if (s->tprev != NULL)
        s->tprev->tnext = s->tnext;
    else
        tp->subs = s->tnext;
    if (s->tnext != NULL)
        s->tnext->tprev = s->tprev;
    free(s);
    sse_topic_release(tp);
}

void sse_subs_drop(sse_client *cl)
{
    while (cl->subs != NULL)
        sse_sub_remove(cl->subs);
}

static sse_sub *sse_sub_find(sse_client *cl, uint32_t id)
{
    for (sse_sub *s = cl->subs; s != NULL; s = s->cnext) {
        if (s->id == id)
            return s;
    }
    return NULL;
}

/* A pointer entry: follow the announced execution on cl's stream. */
static void sse_follow(sse_client *cl, const char *exe)
{
    char key[RDS_KEY_MAX];
    if (cl->nsubs > SSE_CLIENT_EXECS_MAX ||
        key_of(key, sizeof key, KEY_EVENTS, exe) != 0)
        return;
    for (sse_sub *s = cl->subs; s != NULL; s = s->cnext) {
        if (strcmp(s->tp->key, key) == 0)
            return;
    }
    sse_sub_add(cl, key, cl->route, exe, 0, cl->has_resume ? &cl->resume : NULL,
                0, 0);
}

/* Send ev on s. Returns 0, 1 when it was the stream's final event, -1
 * when the client cannot take it now (s is back in backlog mode). */
static int sse_deliver(sse_sub *s, sse_ev *ev)
{
    sse_sid prev = s->last;
    uint8_t had_last = s->has_last;

    if (s->has_last && sse_sid_cmp(ev->id, s->last) <= 0)
        return 0;
    s->last = ev->id;
    s->has_last = 1;
    if (ev->kind == SSE_EV_PTR) {
        sse_follow(s->cl, ev->aux);
        return 0;
    }
    if (sse_client_push(s->cl, ev) != 0) {
        /* The client's queue is full: it falls back to reading the stream
         * from Redis at its own pace (the stream is the buffer); ev and
         * the rest come again from its backlog. */
        s->last = prev;
        s->has_last = had_last;
        s->live = 0;
        s->want_more = 1;
        s->check_lost = 1;
        return -1;
    }
    return ev->final ? 1 : 0;
}

/* The final event of s went out: the response ends, or on a client
 * stream only that execution's subscription does. */
static void sse_sub_end(sse_sub *s)
{
    sse_client *cl = s->cl;
    if (cl->route->client_stream)
        sse_sub_remove(s);
    else
        sse_client_end(cl, NULL, NULL);
}

static void sse_later_run(const sse_later *l)
{
    sse_client *cl = sse_client_get(l->handle);
    sse_sub *s;
    if (cl == NULL)
        return;
    if (l->close)
        sse_client_close(cl);
    else if ((s = sse_sub_find(cl, l->sub_id)) != NULL)
        sse_sub_end(s);
}

static void sse_on_backlog(sse_res *res)
{
    sse_client *cl = sse_client_get(res->handle);
    sse_sub *s;
    sse_ev *lost;
    int rc = 0;

    if (cl == NULL || cl->state != SSE_CL_STREAMING ||
        (s = sse_sub_find(cl, res->sub_id)) == NULL)
        return;
    s->inflight = 0;
    if (res->status != 0) {
        /* Redis failed: end the response; the client resumes later. */
        sse_client_end(cl, "unavailable", "events could not be read");
        return;
    }
    if (res->lost) {
        lost = sse_ev_error(s->tp->route->frame, s->tp->route->label,
                            s->tp->label, "events_lost", "events were lost");
        if (lost == NULL || sse_client_push(cl, lost) != 0)
            rc = -1;
        sse_ev_unref(lost);
    }
    for (sse_ev *ev = res->evs; ev != NULL && rc == 0; ev = ev->next)
        rc = sse_deliver(s, ev);
    if (rc < 0) {
        if (cl->qlen == 0)
            sse_client_close(cl); /* cannot take even one event */
    } else if (rc > 0 || res->ended) {
        sse_sub_end(s);
    } else if (res->done) {
        s->live = 1;
    } else if (cl->qbytes < SSE_OUT_LOW) {
        sse_sub_request(s);
    } else {
        s->want_more = 1; /* asked again when the queue drains */
    }
}

static void sse_on_live(sse_res *res)
{
    sse_topic *tp = sse_topic_find(res->key, res->route);
    sse_later *later = NULL;
    size_t nlater = 0, cap = 0;

    if (tp == NULL)
        return;
    /* Clients are closed after the walk: closing one changes the list. */
    for (sse_sub *s = tp->subs; s != NULL; s = s->tnext) {
        int rc = 0;
        if (!s->live)
            continue; /* still in backlog: a later chunk covers these */
        for (sse_ev *ev = res->evs; ev != NULL && rc == 0; ev = ev->next)
            rc = sse_deliver(s, ev);
        if (rc <= 0)
            continue; /* delivered, or back to backlog mode */
        if (nlater == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            sse_later *n = realloc(later, ncap * sizeof *n);
            if (n == NULL)
                break;
            later = n;
            cap = ncap;
        }
        later[nlater].handle = sse_client_handle(s->cl);
        later[nlater].sub_id = s->id;
        later[nlater++].close = rc < 0;
    }
    for (size_t i = 0; i < nlater; i++)
        sse_later_run(&later[i]);
    free(later);
}

void sse_stream_result(sse_res *res)
{
    if (res->type == SSE_JOB_BACKLOG)
        sse_on_backlog(res);
    else if (res->type == SSE_JOB_WATCH)
        sse_on_live(res);
}
