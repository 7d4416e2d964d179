/* sp_queue.c: the durable queue of sp_queue.h over a Redis stream and a
 * consumer group (XADD, XREADGROUP, XAUTOCLAIM, XCLAIM, XACK, XDEL). */
#include "sp_queue.h"

#include "sp_log.h"
#include "sp_redis.h"

#include <stdio.h>
#include <string.h>

/* 1 if s is a non-empty name of [A-Za-z0-9_.:-] shorter than max. */
static int queue_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n >= max)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == ':' ||
              *s == '-'))
            return 0;
    return 1;
}

int queue_init(sp_queue *q, const char *key, const char *group,
               const char *consumer, long long lease_ms, long long maxlen)
{
    memset(q, 0, sizeof *q);
    if (strlen(key) == 0 || strlen(key) >= sizeof q->key ||
        !queue_name_ok(group, sizeof q->group) ||
        !queue_name_ok(consumer, sizeof q->consumer))
        return -1;
    snprintf(q->key, sizeof q->key, "%s", key);
    snprintf(q->group, sizeof q->group, "%s", group);
    snprintf(q->consumer, sizeof q->consumer, "%s", consumer);
    q->lease_ms = lease_ms > 0 ? lease_ms : 60000;
    q->maxlen = maxlen > 0 ? maxlen : 100000;
    return 0;
}

int queue_push(const sp_queue *q, size_t n, const char *const *names,
               const char *const *values, char *id_out)
{
    const char *argv[6 + 2 * QUEUE_FIELDS_MAX];
    char ml[RDS_NUM_SIZE];
    redisReply *r;
    int argc = 0, result = -1;

    if (n == 0 || n > QUEUE_FIELDS_MAX)
        return -1;
    snprintf(ml, sizeof ml, "%lld", q->maxlen);
    argv[argc++] = "XADD";
    argv[argc++] = q->key;
    argv[argc++] = "MAXLEN";
    argv[argc++] = "~";
    argv[argc++] = ml;
    argv[argc++] = "*";
    for (size_t i = 0; i < n; i++) {
        argv[argc++] = names[i];
        argv[argc++] = values[i];
    }
    r = rds_cmdv(argc, argv, NULL);
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        if (id_out != NULL)
            snprintf(id_out, QUEUE_ID_MAX, "%s", r->str);
        result = 0;
    }
    freeReplyObject(r);
    return result;
}

/* The group made if missing (BUSYGROUP when it exists is fine). */
static void queue_group(const sp_queue *q)
{
    freeReplyObject(
        rds_cmd("XGROUP CREATE %s %s 0 MKSTREAM", q->key, q->group));
}

/* One entry [id, [f, v, ...]] into e; 0, or -1 when it is not one (an
 * entry deleted while pending comes as nil). */
static int queue_entry_of(const redisReply *it, queue_entry *e)
{
    const redisReply *kv;

    memset(e, 0, sizeof *e);
    if (it == NULL || it->type != REDIS_REPLY_ARRAY || it->elements != 2 ||
        it->element[0]->type != REDIS_REPLY_STRING)
        return -1;
    snprintf(e->id, sizeof e->id, "%s", it->element[0]->str);
    kv = it->element[1];
    if (kv->type != REDIS_REPLY_ARRAY)
        return 0; /* deleted: its id alone, to be finished */
    for (size_t i = 0; i + 1 < kv->elements && e->n < QUEUE_FIELDS_MAX;
         i += 2) {
        if (kv->element[i]->type != REDIS_REPLY_STRING ||
            kv->element[i + 1]->type != REDIS_REPLY_STRING)
            continue;
        snprintf(e->name[e->n], QUEUE_NAME_MAX, "%s", kv->element[i]->str);
        snprintf(e->value[e->n], QUEUE_VALUE_MAX, "%s",
                 kv->element[i + 1]->str);
        e->n++;
    }
    return 0;
}

/* The first entry of an XREADGROUP reply [[stream, [entries]]] into e:
 * 1, 0 (none), -1 (no reply). */
static int queue_read_reply(redisReply *r, queue_entry *e)
{
    const redisReply *entries;

    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->elements != 2)
        return 0;
    entries = r->element[0]->element[1];
    if (entries->type != REDIS_REPLY_ARRAY || entries->elements < 1)
        return 0;
    return queue_entry_of(entries->element[0], e) == 0 ? 1 : 0;
}

/* The reply r of an XREADGROUP (freed here) as queue_read_reply; a
 * missing group (NOGROUP: the stream was deleted) is made again and
 * counts as no entry. */
static int queue_read_group(const sp_queue *q, redisReply *r, queue_entry *e)
{
    int got;

    if (r != NULL && r->type == REDIS_REPLY_ERROR &&
        strncmp(r->str, "NOGROUP", 7) == 0) {
        freeReplyObject(r);
        queue_group(q);
        return 0;
    }
    got = queue_read_reply(r, e);
    if (got < 0)
        log_warn("XREADGROUP %s failed", q->key);
    freeReplyObject(r);
    return got;
}

int queue_take(sp_queue *q, long long block_ms, queue_entry *e)
{
    redisReply *r;
    int got;

    if (!q->own_done) {
        /* Our own pending entries: we were stopped while holding them. */
        got = queue_read_group(
            q,
            rds_cmd("XREADGROUP GROUP %s %s COUNT 1 STREAMS %s 0", q->group,
                    q->consumer, q->key),
            e);
        if (got != 0) {
            e->reclaimed = got == 1;
            return got;
        }
        q->own_done = 1;
    }
    /* Entries a consumer that is gone held past the lease. */
    r = rds_cmd("XAUTOCLAIM %s %s %s %lld 0-0 COUNT 1", q->key, q->group,
                q->consumer, q->lease_ms);
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
        r->element[1]->type == REDIS_REPLY_ARRAY &&
        r->element[1]->elements >= 1 &&
        queue_entry_of(r->element[1]->element[0], e) == 0) {
        freeReplyObject(r);
        e->reclaimed = 1;
        return 1;
    }
    freeReplyObject(r);
    return queue_read_group(
        q,
        rds_cmd_wait(block_ms + 1000,
                     "XREADGROUP GROUP %s %s COUNT 1 BLOCK %lld STREAMS %s >",
                     q->group, q->consumer, block_ms, q->key),
        e);
}

int queue_renew(const sp_queue *q, const char *id)
{
    redisReply *r = rds_cmd("XCLAIM %s %s %s 0 %s JUSTID", q->key, q->group,
                            q->consumer, id);
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY;

    freeReplyObject(r);
    return ok ? 0 : -1;
}

int queue_done(const sp_queue *q, const char *id)
{
    redisReply *a = rds_cmd("XACK %s %s %s", q->key, q->group, id);
    redisReply *d = rds_cmd("XDEL %s %s", q->key, id);
    int ok = a != NULL && a->type == REDIS_REPLY_INTEGER && d != NULL &&
             d->type == REDIS_REPLY_INTEGER;

    freeReplyObject(a);
    freeReplyObject(d);
    return ok ? 0 : -1;
}

const char *queue_field(const queue_entry *e, const char *name)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->name[i], name) == 0)
            return e->value[i];
    return NULL;
}
