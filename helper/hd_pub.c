/* hd_pub.c: the helper's writes to Redis (docs/DESIGN.md §5.4, "Redis
 * away"). Every write of the main thread (events, records, replies,
 * acknowledgements) is queued here in order and sent at the end of each
 * pass of the main loop, many in one round trip. While Redis is away the
 * queue keeps them, and sends them in the same order when it is back; so
 * no output is lost silently and an execution that ended during the
 * outage ends in Redis too. Output (stdout, stderr, a terminal's output) is
 * the one thing that may be dropped: its callers ask hd_pub_room first, and
 * past SP_HELPER_BUFFER_MB of queued bytes they drop it and count what
 * they lost (an events_lost event, the result truncated). Everything else is
 * always kept: it is small and bounded by the number of executions.
 *
 * Only the main thread uses it (it sends on that thread's connection). A
 * command that Redis answered is done; one whose answer never came may
 * have run before the connection died, and is sent again: after a crash
 * of Redis itself an event may so appear twice, never go missing. */
#include "hd.h"
#include "sp_config.h"
#include "sp_log.h"
#include "sp_redis.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HD_PUB_BATCH       128
#define HD_PUB_BATCH_BYTES (4 * 1024 * 1024)
#define HD_PUB_RETRY_MS    500

typedef struct hd_pub_item {
    struct hd_pub_item *next;
    size_t len;
    char *cmd; /* the command in the Redis protocol (rds_vformat) */
} hd_pub_item;

static hd_pub_item *hd_pub_head, *hd_pub_tail;
static size_t hd_pub_bytes, hd_pub_n;
static long long hd_pub_retry_at;
static int hd_pub_down; /* the last send failed: Redis is away */

static long long hd_pub_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Queue the command. Returns 0, or -1 if it could not be formatted. */
static int hd_pub_queue(const char *fmt, va_list ap)
{
    hd_pub_item *it;
    char *cmd = NULL;
    long long len = rds_vformat(&cmd, fmt, ap);

    if (len < 0) {
        log_error("cannot format a Redis command (%s)", fmt);
        return -1;
    }
    it = malloc(sizeof *it);
    if (it == NULL) {
        rds_free_formatted(cmd);
        return -1;
    }
    it->next = NULL;
    it->len = (size_t)len;
    it->cmd = cmd;
    if (hd_pub_tail != NULL)
        hd_pub_tail->next = it;
    else
        hd_pub_head = it;
    hd_pub_tail = it;
    hd_pub_bytes += it->len;
    hd_pub_n++;
    return 0;
}

void hd_pub(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    hd_pub_queue(fmt, ap);
    va_end(ap);
}

int hd_pub_room(size_t len)
{
    size_t max = (size_t)cfg_int(CFG_SP_HELPER_BUFFER_MB) * 1024 * 1024;
    return hd_pub_bytes + len <= max;
}

/* Drop the first n items (Redis has them). */
static void hd_pub_pop(int n)
{
    while (n-- > 0 && hd_pub_head != NULL) {
        hd_pub_item *it = hd_pub_head;
        hd_pub_head = it->next;
        if (hd_pub_head == NULL)
            hd_pub_tail = NULL;
        hd_pub_bytes -= it->len;
        hd_pub_n--;
        rds_free_formatted(it->cmd);
        free(it);
    }
}

int hd_pub_flush(void)
{
    char *cmds[HD_PUB_BATCH];
    size_t lens[HD_PUB_BATCH];

    if (hd_pub_head == NULL)
        return 0;
    if (hd_pub_down && hd_pub_now_ms() < hd_pub_retry_at)
        return -1;
    /* Back after an outage: only once Redis has loaded its data, since
     * commands sent while it loads are refused one by one and those after
     * them may run (their order would be lost). */
    if (hd_pub_down && !rds_ready()) {
        hd_pub_retry_at = hd_pub_now_ms() + HD_PUB_RETRY_MS;
        return -1;
    }
    while (hd_pub_head != NULL) {
        int n = 0, done;
        size_t bytes = 0;
        for (hd_pub_item *it = hd_pub_head;
             it != NULL && n < HD_PUB_BATCH &&
             (n == 0 || bytes + it->len <= HD_PUB_BATCH_BYTES);
             it = it->next) {
            cmds[n] = it->cmd;
            lens[n++] = it->len;
            bytes += it->len;
        }
        done = rds_send_formatted(n, cmds, lens);
        hd_pub_pop(done);
        if (done < n) {
            if (!hd_pub_down)
                log_warn("Redis is away: %zu writes (%zu bytes) wait for it",
                         hd_pub_n, hd_pub_bytes);
            hd_pub_down = 1;
            hd_pub_retry_at = hd_pub_now_ms() + HD_PUB_RETRY_MS;
            return -1;
        }
    }
    if (hd_pub_down)
        log_info("Redis is back: every waiting write was sent");
    hd_pub_down = 0;
    return 0;
}

void hd_evid_next(hd_evid *v, char *out)
{
    long long now = hd_pub_now_ms();

    if (now > v->ms) {
        v->ms = now;
        v->seq = 0;
    } else {
        v->seq++; /* same ms (or the clock went back): keep increasing */
    }
    snprintf(out, HD_EVID_SIZE, "%lld-%lld", v->ms, v->seq);
}

size_t hd_pub_pending(void)
{
    return hd_pub_bytes;
}
