/* sp_queue.h: a small durable queue over a Redis stream read through a
 * consumer group, for long work that a supervised program (sp-worker)
 * does outside any request.
 *
 * A producer adds an entry (queue_push: XADD of field/value pairs). A
 * consumer takes entries (queue_take): first those it took before and
 * never finished (its own pending list: it was restarted), then entries
 * pending longer than the lease on a consumer that is gone (XAUTOCLAIM),
 * then new ones (XREADGROUP with a block timeout). An entry stays pending
 * until the consumer calls queue_done (XACK, then XDEL): a consumer
 * killed at any point leaves it to be taken again, so the work is done or
 * failed explicitly, never dropped. A long job renews its lease with
 * queue_renew (XCLAIM to itself, which resets the idle time). The group
 * is made (MKSTREAM) on first use. Nothing here knows what an entry
 * means. */
#ifndef SP_QUEUE_H
#define SP_QUEUE_H

#include <stddef.h>

#define QUEUE_NAME_MAX   64
#define QUEUE_ID_MAX     64 /* "<ms>-<seq>" */
#define QUEUE_FIELDS_MAX 8
#define QUEUE_VALUE_MAX  1024

typedef struct sp_queue {
    char key[256];                 /* the stream (key_of) */
    char group[QUEUE_NAME_MAX];    /* consumer group */
    char consumer[QUEUE_NAME_MAX]; /* this consumer's name */
    long long lease_ms;            /* idle time after which another may
                                    * take a pending entry */
    long long maxlen;              /* XADD MAXLEN ~ */
    int own_done;                  /* own pending list read through */
} sp_queue;

/* One entry taken: its id and up to QUEUE_FIELDS_MAX field/value pairs
 * (values cut at QUEUE_VALUE_MAX - 1 bytes). */
typedef struct queue_entry {
    char id[QUEUE_ID_MAX];
    size_t n;
    char name[QUEUE_FIELDS_MAX][QUEUE_NAME_MAX];
    char value[QUEUE_FIELDS_MAX][QUEUE_VALUE_MAX];
    int reclaimed; /* taken again: from our own pending list or another's */
} queue_entry;

/* Set q up (no Redis call): key is the stream's full key, group and
 * consumer names of [A-Za-z0-9_.:-]. Returns 0, or -1 for a bad name. */
int queue_init(sp_queue *q, const char *key, const char *group,
               const char *consumer, long long lease_ms, long long maxlen);

/* Add an entry of n pairs names[i] = values[i]; its id into id_out (may
 * be NULL; QUEUE_ID_MAX bytes). 0, or -1 (Redis failed). */
int queue_push(const sp_queue *q, size_t n, const char *const *names,
               const char *const *values, char *id_out);

/* Take one entry into *e, waiting up to block_ms for a new one. Returns
 * 1 (taken), 0 (none within block_ms), -1 (Redis failed: try later). */
int queue_take(sp_queue *q, long long block_ms, queue_entry *e);

/* Renew the lease of entry id (still ours). 0, or -1. */
int queue_renew(const sp_queue *q, const char *id);

/* Finish entry id: acknowledged and deleted. 0, or -1. */
int queue_done(const sp_queue *q, const char *id);

/* The value of field name of e, or NULL. */
const char *queue_field(const queue_entry *e, const char *name);

#endif
