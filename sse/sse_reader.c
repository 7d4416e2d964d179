/* sse_reader.c: the relay's one Redis thread. It does every Redis call of
 * the relay, so the epoll loop never blocks on Redis:
 *
 *   - OPEN: authenticate (tok_verify + auth_is_revoked, or auth_api_key)
 *     and check that the subject owns the execution (HGET owner);
 *   - BACKLOG: XRANGE a stream after a client's resume point, formatted,
 *     at most the bytes the client can take, and whether it was trimmed;
 *   - live: one XREAD BLOCK over every watched stream at once on a second
 *     connection ("X"), each stream read after its own cursor; when a
 *     stream is added while that XREAD waits, CLIENT UNBLOCK (sent on the
 *     first connection) makes it return so that it is issued again with the
 *     new set. New entries go to the loop as one batch per stream, which
 *     fans them out.
 *
 * Gap-free hand-over (why a client gets every event exactly once): jobs
 * are handled in order, and a WATCH sets the stream's cursor to its last
 * entry before any BACKLOG of that stream. So the final backlog chunk of a
 * client (the one that reached the end of the stream) always reaches at
 * least the cursor, and every live batch queued after it starts after the
 * cursor. The loop ignores live batches for a client until its final chunk
 * has arrived, and drops any entry not newer than the last it sent. */
#include "sse.h"
#include "sp_config.h"
#include "sp_keys.h"
#include "sp_log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SSE_XREAD_BLOCK_MS 10000
#define SSE_XREAD_COUNT    "8"
#define SSE_WATCH_BUCKETS  4096
#define SSE_TOUCH_MS       2000

/* A stream the live XREAD covers (reader thread only). */
typedef struct sse_watch {
    struct sse_watch *next;
    char key[RDS_KEY_MAX];
    char label[SSE_ID_LEN];
    const sse_route *route;
    int pointers;
    sse_sid cursor;
} sse_watch;

static pthread_mutex_t sse_q_lock = PTHREAD_MUTEX_INITIALIZER;
static sse_job *sse_jobs_head, *sse_jobs_tail;
static sse_res *sse_res_head, *sse_res_tail;
static int sse_wake_efd = -1, sse_res_efd = -1;

static sse_watch *sse_watches[SSE_WATCH_BUCKETS];
static size_t sse_nwatches;
static redisContext *sse_x; /* the XREAD connection */
static long long sse_x_id;  /* its CLIENT ID */
static int sse_x_pending, sse_x_unblocked;
static long long sse_x_sent_ms; /* when the pending XREAD was sent */

static long long sse_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned sse_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % SSE_WATCH_BUCKETS;
}

/* The watch of key for route (one per topic of the loop: a stream read
 * through two routes has two watches, which one XREAD key serves). */
static sse_watch *sse_watch_find(const char *key, const sse_route *route)
{
    for (sse_watch *w = sse_watches[sse_hash(key)]; w != NULL; w = w->next) {
        if (w->route == route && strcmp(w->key, key) == 0)
            return w;
    }
    return NULL;
}

/* The first watch of w's key in its bucket: the one that names the key
 * in the XREAD, with the smallest cursor of them into *cursor. */
static const sse_watch *sse_watch_first(const sse_watch *w, sse_sid *cursor)
{
    const sse_watch *first = NULL;

    *cursor = w->cursor;
    for (const sse_watch *o = sse_watches[sse_hash(w->key)]; o != NULL;
         o = o->next) {
        if (strcmp(o->key, w->key) != 0)
            continue;
        if (first == NULL)
            first = o;
        if (sse_sid_cmp(o->cursor, *cursor) < 0)
            *cursor = o->cursor;
    }
    return first;
}

static void sse_efd_signal(int efd)
{
    uint64_t one = 1;
    ssize_t rc = write(efd, &one, sizeof one);
    (void)rc; /* a full counter is still a wake-up */
}

void sse_reader_submit(sse_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&sse_q_lock);
    if (sse_jobs_tail != NULL)
        sse_jobs_tail->next = job;
    else
        sse_jobs_head = job;
    sse_jobs_tail = job;
    pthread_mutex_unlock(&sse_q_lock);
    sse_efd_signal(sse_wake_efd);
}

sse_res *sse_reader_take(void)
{
    sse_res *all;
    pthread_mutex_lock(&sse_q_lock);
    all = sse_res_head;
    sse_res_head = sse_res_tail = NULL;
    pthread_mutex_unlock(&sse_q_lock);
    return all;
}

static void sse_res_post(sse_res *res)
{
    res->next = NULL;
    pthread_mutex_lock(&sse_q_lock);
    if (sse_res_tail != NULL)
        sse_res_tail->next = res;
    else
        sse_res_head = res;
    sse_res_tail = res;
    pthread_mutex_unlock(&sse_q_lock);
    sse_efd_signal(sse_res_efd);
}

static void sse_do_watch(const sse_job *job)
{
    sse_watch *w = sse_watch_find(job->key, job->route);
    redisReply *r;
    unsigned h;

    if (w != NULL)
        return;
    w = calloc(1, sizeof *w);
    if (w == NULL)
        return;
    snprintf(w->key, sizeof w->key, "%s", job->key);
    snprintf(w->label, sizeof w->label, "%s", job->label);
    w->route = job->route;
    w->pointers = job->pointers;
    /* Start after the last entry: clients get older ones from backlog. If
     * Redis cannot say, 0-0 is safe (only duplicates, which the loop
     * drops). */
    r = rds_cmd("XREVRANGE %s + - COUNT 1", job->key);
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2 &&
        r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        sse_sid_parse(r->element[0]->element[0]->str,
                      r->element[0]->element[0]->len, &w->cursor);
    freeReplyObject(r);
    h = sse_hash(w->key);
    w->next = sse_watches[h];
    sse_watches[h] = w;
    sse_nwatches++;
    /* The pending XREAD does not cover this stream: make it return. */
    if (sse_x_pending && !sse_x_unblocked) {
        freeReplyObject(rds_cmd("CLIENT UNBLOCK %lld", sse_x_id));
        sse_x_unblocked = 1;
    }
}

static void sse_do_unwatch(const sse_job *job)
{
    sse_watch **pp = &sse_watches[sse_hash(job->key)];
    for (; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->route == job->route && strcmp((*pp)->key, job->key) == 0) {
            sse_watch *w = *pp;
            *pp = w->next;
            free(w);
            sse_nwatches--;
            return; /* a pending XREAD may still name it: harmless */
        }
    }
}

static void sse_run_jobs(void)
{
    sse_job *job;
    pthread_mutex_lock(&sse_q_lock);
    job = sse_jobs_head;
    sse_jobs_head = sse_jobs_tail = NULL;
    pthread_mutex_unlock(&sse_q_lock);
    while (job != NULL) {
        sse_job *next = job->next;
        sse_res *res = NULL;
        if (job->type == SSE_JOB_OPEN || job->type == SSE_JOB_BACKLOG) {
            res = calloc(1, sizeof *res);
            if (res != NULL) {
                res->type = job->type;
                res->handle = job->handle;
                res->sub_id = job->sub_id;
                if (job->type == SSE_JOB_OPEN)
                    sse_do_open(job, res);
                else
                    sse_do_backlog(job, res);
                sse_res_post(res);
            }
        } else if (job->type == SSE_JOB_WATCH) {
            sse_do_watch(job);
        } else {
            sse_do_unwatch(job);
        }
        sse_job_free(job);
        job = next;
    }
}

/* A new connection of our own for XREAD (rds_cmd's is per thread and
 * hidden). REDIS_URL was validated by rds_init. NULL on failure. */
static redisContext *sse_x_connect(void)
{
    const char *url = cfg_str(CFG_REDIS_URL);
    long long ms = cfg_int(CFG_SP_REDIS_TIMEOUT_MS);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    redisContext *c = NULL;
    redisReply *r = NULL;

    if (strncmp(url, "unix://", 7) == 0) {
        c = redisConnectUnixWithTimeout(url + 7, tv);
    } else {
        char host[256];
        const char *hp = url + 8, *colon = strrchr(hp, ':');
        size_t hl = colon != NULL ? (size_t)(colon - hp) : strlen(hp);
        snprintf(host, sizeof host, "%.*s", (int)hl, hp);
        c = redisConnectWithTimeout(host, colon ? atoi(colon + 1) : 6379, tv);
    }
    if (c == NULL || c->err) {
        log_warn("redis connect (xread) failed: %s",
                 c != NULL ? c->errstr : "out of memory");
        goto fail;
    }
    redisSetTimeout(c, tv);
    r = redisCommand(c, "CLIENT ID");
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        log_warn("redis CLIENT ID failed");
        goto fail;
    }
    sse_x_id = r->integer;
    freeReplyObject(r);
    return c;
fail:
    freeReplyObject(r);
    redisFree(c);
    return NULL;
}

/* Issue one XREAD over every watched stream. 0, or -1 (X is dropped). */
static int sse_x_send(void)
{
    size_t argc = 6 + 2 * sse_nwatches, i = 6;
    const char **argv = calloc(argc, sizeof *argv);
    char(*ids)[SSE_SID_STR] = calloc(sse_nwatches, SSE_SID_STR);
    char block[16];
    int done = 0, result = -1;
    size_t nkeys = 0;

    if (argv == NULL || ids == NULL)
        goto out;
    snprintf(block, sizeof block, "%d", SSE_XREAD_BLOCK_MS);
    argv[0] = "XREAD", argv[1] = "COUNT", argv[2] = SSE_XREAD_COUNT;
    argv[3] = "BLOCK", argv[4] = block, argv[5] = "STREAMS";
    /* Each key once, from the smallest cursor of its watches (a watch
     * further on gets entries it had again: the loop drops those). */
    for (size_t b = 0; b < SSE_WATCH_BUCKETS; b++) {
        for (sse_watch *w = sse_watches[b]; w != NULL; w = w->next) {
            sse_sid cursor;
            if (sse_watch_first(w, &cursor) != w)
                continue;
            argv[i++] = w->key;
            sse_sid_format(cursor, ids[nkeys++]);
        }
    }
    for (size_t k = 0; k < nkeys; k++)
        argv[i++] = ids[k];
    argc = i;
    if (redisAppendCommandArgv(sse_x, (int)argc, argv, NULL) != REDIS_OK)
        goto out;
    while (!done) {
        if (redisBufferWrite(sse_x, &done) != REDIS_OK)
            goto out;
    }
    sse_x_pending = 1;
    sse_x_sent_ms = sse_now_ms();
    sse_x_unblocked = 0;
    result = 0;
out:
    free(argv);
    free(ids);
    return result;
}

/* One result of a watch with the entries of its stream s. */
static void sse_x_post(sse_watch *w, const redisReply *s)
{
    sse_res *res = calloc(1, sizeof *res);
    sse_ev **tail;
    size_t used;

    if (res == NULL)
        return; /* the cursor stays: read again next time */
    res->type = SSE_JOB_WATCH;
    snprintf(res->key, sizeof res->key, "%s", w->key);
    res->route = w->route;
    tail = &res->evs;
    sse_entries(s->element[1], w->route, w->label, w->pointers, &tail, SIZE_MAX,
                &used, &w->cursor, 0);
    sse_res_post(res);
}

/* Fan the XREAD reply out: one result per watch of a stream with new
 * entries. */
static void sse_x_reply(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return; /* nil: timed out or unblocked */
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *s = r->element[i];
        const char *key;
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
            s->element[0]->type != REDIS_REPLY_STRING ||
            s->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        key = s->element[0]->str;
        for (sse_watch *w = sse_watches[sse_hash(key)]; w != NULL;
             w = w->next) {
            if (strcmp(w->key, key) == 0)
                sse_x_post(w, s);
        }
    }
}

static void sse_x_drop(void)
{
    redisFree(sse_x);
    sse_x = NULL;
    sse_x_pending = 0;
}

/* Set watched_at only in a record that exists: one that has expired is
 * not made again (without its TTL). */
static const char sse_touch_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then "
    "redis.call('HSET', KEYS[1], 'watched_at', ARGV[1]) end return 0";

/* Terminals and the watches of GET /sandboxes/{id}/watch are ended by
 * their helper when nobody reads them (handlers/terminal.c,
 * helper/hd_watch.c): while a stream of a touch route is open, say so in
 * its owner hash's watched_at (Unix ms) every SSE_TOUCH_MS. */
static void sse_touch_streams(void)
{
    static long long last;
    long long now = sse_now_ms();
    struct timespec wall;
    char k[RDS_KEY_MAX];

    if (now - last < SSE_TOUCH_MS)
        return;
    last = now;
    clock_gettime(CLOCK_REALTIME, &wall);
    for (size_t b = 0; b < SSE_WATCH_BUCKETS; b++) {
        for (sse_watch *w = sse_watches[b]; w != NULL; w = w->next) {
            if (!w->route->touch ||
                key_of(k, sizeof k, w->route->owner, w->label) != 0)
                continue;
            freeReplyObject(rds_cmd("EVAL %s 1 %s %lld", sse_touch_lua, k,
                                    (long long)wall.tv_sec * 1000 +
                                        wall.tv_nsec / 1000000));
        }
    }
}

static void *sse_reader_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd pf[2] = {{sse_wake_efd, POLLIN, 0}, {-1, POLLIN, 0}};
        int timeout = -1, n;
        uint64_t cnt;

        sse_run_jobs();
        if (sse_x == NULL && sse_nwatches > 0)
            sse_x = sse_x_connect();
        if (sse_x != NULL && !sse_x_pending && sse_nwatches > 0 &&
            sse_x_send() != 0) {
            log_warn("redis XREAD failed: %s", sse_x->errstr);
            sse_x_drop();
        }
        if (sse_x_pending)
            pf[1].fd = sse_x->fd;
        else if (sse_nwatches > 0)
            timeout = 1000; /* X is down: try again soon */
        /* Wake at least every SSE_TOUCH_MS for the touch routes' marks. */
        if (timeout < 0 || timeout > SSE_TOUCH_MS)
            timeout = SSE_TOUCH_MS;
        n = poll(pf, 2, timeout);
        sse_touch_streams();
        if (n == 0 && sse_x_pending &&
            sse_now_ms() - sse_x_sent_ms > SSE_XREAD_BLOCK_MS + 5000) {
            log_warn("redis XREAD gave no answer; reconnecting");
            sse_x_drop();
            continue;
        }
        if (n == 0)
            continue;
        if (pf[0].revents & POLLIN) {
            ssize_t rc = read(sse_wake_efd, &cnt, sizeof cnt);
            (void)rc;
        }
        if (sse_x_pending && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            void *reply = NULL;
            if (redisBufferRead(sse_x) != REDIS_OK ||
                redisGetReplyFromReader(sse_x, &reply) != REDIS_OK) {
                log_warn("redis XREAD failed: %s", sse_x->errstr);
                sse_x_drop();
                continue;
            }
            if (reply != NULL) {
                sse_x_pending = 0;
                sse_x_reply(reply);
                freeReplyObject(reply);
            }
        }
    }
    return NULL;
}

int sse_reader_start(int res_efd)
{
    pthread_t tid;
    sse_res_efd = res_efd;
    sse_wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sse_wake_efd < 0) {
        log_error("eventfd failed: %s", strerror(errno));
        return -1;
    }
    if (pthread_create(&tid, NULL, sse_reader_main, NULL) != 0) {
        log_error("pthread_create failed");
        return -1;
    }
    pthread_detach(tid);
    return 0;
}
