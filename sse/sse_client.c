/* sse_client.c: the relay's connections from nginx: a fixed table of
 * slots (a handle = slot and generation, so that a late result for a
 * client that has gone finds nothing), and each client's output queue.
 *
 * The queue is a ring of shared events, bounded by SSE_OUT_MAX bytes:
 * a client that cannot keep up is closed rather than let it hold memory or
 * slow anyone. Writes are gathered (writev) once per loop iteration for
 * every client that got output ("dirty"), and EPOLLOUT is asked for only
 * while a client's socket is full. */
#include "sse_loop.h"
#include "sp_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define SSE_IOV_MAX    64
#define SSE_QCAP_START 8

static sse_client **sse_slots;
static uint32_t *sse_free_slots, sse_nfree, sse_nslots, sse_nclients,
    sse_nstreaming;
static uint32_t *sse_gens;
static int sse_epfd = -1;
static sse_client *sse_dirty;

int sse_clients_init(int epfd, uint32_t max)
{
    sse_epfd = epfd;
    sse_nslots = max;
    sse_slots = calloc(max, sizeof *sse_slots);
    sse_free_slots = calloc(max, sizeof *sse_free_slots);
    sse_gens = calloc(max, sizeof *sse_gens);
    if (sse_slots == NULL || sse_free_slots == NULL || sse_gens == NULL)
        return -1;
    for (uint32_t i = 0; i < max; i++)
        sse_free_slots[sse_nfree++] = max - 1 - i;
    return 0;
}

sse_client *sse_client_new(int fd, long long now_ms)
{
    struct epoll_event ev = {0};
    sse_client *cl;
    uint32_t slot;

    if (sse_nfree == 0)
        return NULL;
    cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return NULL;
    slot = sse_free_slots[--sse_nfree];
    cl->fd = fd;
    cl->slot = slot;
    cl->gen = ++sse_gens[slot];
    cl->born_ms = cl->last_out_ms = now_ms;
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = (uint64_t)slot << 32 | cl->gen;
    if (epoll_ctl(sse_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        log_warn("epoll_ctl(ADD) failed: %s", strerror(errno));
        sse_free_slots[sse_nfree++] = slot;
        free(cl);
        return NULL;
    }
    sse_slots[slot] = cl;
    sse_nclients++;
    return cl;
}

uint64_t sse_client_handle(const sse_client *cl)
{
    return (uint64_t)cl->slot << 32 | cl->gen;
}

sse_client *sse_client_get(uint64_t handle)
{
    uint32_t slot = (uint32_t)(handle >> 32), gen = (uint32_t)handle;
    sse_client *cl;
    if (slot >= sse_nslots)
        return NULL;
    cl = sse_slots[slot];
    return cl != NULL && cl->gen == gen ? cl : NULL;
}

static void sse_mark_dirty(sse_client *cl)
{
    if (!cl->dirty) {
        cl->dirty = 1;
        cl->dirty_next = sse_dirty;
        sse_dirty = cl;
    }
}

/* Bytes ev takes on cl's socket: FastCGI records, or itself on a
 * WebSocket connection. */
static size_t sse_wire_len(const sse_client *cl, const sse_ev *ev)
{
    return cl->ws != NULL ? ev->len : sse_fcgi_wire_len(ev);
}

/* The iovecs of ev from offset off for cl (see sse_fcgi_iov). */
static int sse_iov(const sse_client *cl, const sse_ev *ev, size_t off,
                   struct iovec *iov, int maxiov, unsigned char (*hdrs)[8])
{
    if (cl->ws == NULL)
        return sse_fcgi_iov(ev, cl->fcgi.rid, off, iov, maxiov, hdrs);
    if (off >= ev->len)
        return 0;
    iov[0].iov_base = (char *)ev->data + off;
    iov[0].iov_len = ev->len - off;
    return 1;
}

int sse_client_push(sse_client *cl, sse_ev *ev)
{
    size_t wl = sse_wire_len(cl, ev);

    if (cl->state == SSE_CL_CLOSING && ev->kind != SSE_EV_RAW)
        return 0; /* the response is over */
    /* RAW records (END_REQUEST, management replies) are a few bytes and
     * must always get through; the bound is for the stream itself. */
    if (ev->kind != SSE_EV_RAW && cl->qbytes + wl > SSE_OUT_MAX)
        return -1;
    if (cl->qlen == cl->qcap) {
        uint32_t ncap = cl->qcap ? cl->qcap * 2 : SSE_QCAP_START;
        sse_ev **nq;
        if (ncap > SSE_QCAP_MAX)
            return -1;
        nq = malloc(ncap * sizeof *nq);
        if (nq == NULL)
            return -1;
        for (uint32_t i = 0; i < cl->qlen; i++)
            nq[i] = cl->q[(cl->qhead + i) % cl->qcap];
        free(cl->q);
        cl->q = nq;
        cl->qcap = ncap;
        cl->qhead = 0;
    }
    if (ev->refs != UINT32_MAX)
        ev->refs++;
    cl->q[(cl->qhead + cl->qlen) % cl->qcap] = ev;
    cl->qlen++;
    cl->qbytes += wl;
    sse_mark_dirty(cl);
    return 0;
}

int sse_client_push_bytes(sse_client *cl, const void *p, size_t len, int raw)
{
    sse_ev *ev = sse_ev_new(raw ? SSE_EV_RAW : SSE_EV_STDOUT, len);
    int rc;
    if (ev == NULL)
        return -1;
    memcpy(ev->data, p, len);
    rc = sse_client_push(cl, ev);
    sse_ev_unref(ev);
    return rc;
}

void sse_client_finish(sse_client *cl)
{
    unsigned char rec[24];
    if (cl->state == SSE_CL_CLOSING)
        return;
    if (cl->ws != NULL) {
        /* A WebSocket has no records: its close frame is queued; the
         * connection closes once it is written. */
        if (cl->state == SSE_CL_STREAMING)
            sse_nstreaming--;
        sse_subs_drop(cl);
        cl->state = SSE_CL_CLOSING;
        sse_mark_dirty(cl);
        return;
    }
    /* An empty STDOUT record ends the stream, then END_REQUEST. */
    memcpy(rec,
           (unsigned char[8]){1, 6, (unsigned char)(cl->fcgi.rid >> 8),
                              (unsigned char)cl->fcgi.rid, 0, 0, 0, 0},
           8);
    sse_fcgi_end_record(cl->fcgi.rid, rec + 8);
    if (cl->state == SSE_CL_STREAMING)
        sse_nstreaming--;
    sse_subs_drop(cl);
    cl->state = SSE_CL_CLOSING;
    if (sse_client_push_bytes(cl, rec, sizeof rec, 1) != 0)
        sse_client_close(cl);
}

void sse_client_end(sse_client *cl, const char *code, const char *message)
{
    sse_ev *ev;

    if (cl->state != SSE_CL_STREAMING) {
        sse_client_finish(cl);
        return;
    }
    /* SSE has no trailer (len 0). A trailer that cannot be queued leaves
     * an answer without its end: the client is dropped, and a reader that
     * needs the end (Connect) sees the stream as failed, as it was. */
    ev = sse_ev_part(cl->route->frame, SSE_PART_END, code, message);
    if (ev == NULL || (ev->len > 0 && sse_client_push(cl, ev) != 0)) {
        sse_ev_unref(ev);
        sse_client_close(cl);
        return;
    }
    sse_ev_unref(ev);
    sse_client_finish(cl);
}

void sse_client_close(sse_client *cl)
{
    if (cl == NULL)
        return;
    if (cl->state == SSE_CL_STREAMING)
        sse_nstreaming--;
    sse_subs_drop(cl);
    if (cl->ws != NULL)
        sse_ws_free(cl);
    epoll_ctl(sse_epfd, EPOLL_CTL_DEL, cl->fd, NULL);
    close(cl->fd);
    for (uint32_t i = 0; i < cl->qlen; i++)
        sse_ev_unref(cl->q[(cl->qhead + i) % cl->qcap]);
    free(cl->q);
    sse_fcgi_free(&cl->fcgi);
    sse_slots[cl->slot] = NULL;
    sse_free_slots[sse_nfree++] = cl->slot;
    sse_nclients--;
    /* A dirty client is unlinked lazily: its slot check fails. */
    cl->fd = -1;
    cl->state = -1;
    if (!cl->dirty)
        free(cl);
}

static void sse_want_out(sse_client *cl, int on)
{
    struct epoll_event ev = {0};
    if (cl->want_out == on)
        return;
    cl->want_out = on;
    ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0);
    ev.data.u64 = sse_client_handle(cl);
    epoll_ctl(sse_epfd, EPOLL_CTL_MOD, cl->fd, &ev);
}

/* Consume n written bytes from the head of the queue. */
static void sse_consume(sse_client *cl, size_t n)
{
    cl->qbytes -= n;
    while (n > 0 && cl->qlen > 0) {
        sse_ev *ev = cl->q[cl->qhead];
        size_t left = sse_wire_len(cl, ev) - cl->qoff;
        if (n < left) {
            cl->qoff += n;
            return;
        }
        n -= left;
        cl->qoff = 0;
        sse_ev_unref(ev);
        cl->qhead = (cl->qhead + 1) % cl->qcap;
        cl->qlen--;
    }
}

/* Room again: subscriptions waiting to read more backlog go on. */
static void sse_client_refill(sse_client *cl)
{
    if (cl->qbytes >= SSE_OUT_LOW)
        return;
    for (sse_sub *s = cl->subs; s != NULL; s = s->cnext) {
        if (s->want_more && !s->inflight) {
            s->want_more = 0;
            sse_sub_request(s);
        }
    }
}

void sse_client_flush(sse_client *cl, long long now_ms)
{
    struct iovec iov[SSE_IOV_MAX];
    unsigned char hdrs[SSE_IOV_MAX][8];

    while (cl->qlen > 0) {
        int n = 0;
        ssize_t w;
        for (uint32_t i = 0; i < cl->qlen && n < SSE_IOV_MAX; i++) {
            sse_ev *ev = cl->q[(cl->qhead + i) % cl->qcap];
            n += sse_iov(cl, ev, i == 0 ? cl->qoff : 0, iov + n,
                         SSE_IOV_MAX - n, hdrs + n);
            if (n >= SSE_IOV_MAX - 1)
                break;
        }
        w = writev(cl->fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            sse_want_out(cl, 1);
            sse_client_refill(cl);
            return;
        }
        if (w <= 0) {
            sse_client_close(cl); /* nginx went away */
            return;
        }
        cl->last_out_ms = now_ms;
        sse_consume(cl, (size_t)w);
    }
    if (cl->state == SSE_CL_CLOSING) {
        sse_client_close(cl);
        return;
    }
    sse_want_out(cl, 0);
    sse_client_refill(cl);
}

void sse_clients_flush_dirty(long long now_ms)
{
    while (sse_dirty != NULL) {
        sse_client *cl = sse_dirty;
        sse_dirty = cl->dirty_next;
        cl->dirty = 0;
        if (cl->fd < 0) {
            free(cl); /* closed while dirty */
            continue;
        }
        sse_client_flush(cl, now_ms);
    }
}

void sse_clients_each(void (*fn)(sse_client *, long long), long long now_ms)
{
    for (uint32_t i = 0; i < sse_nslots; i++) {
        if (sse_slots[i] != NULL)
            fn(sse_slots[i], now_ms);
    }
}

uint32_t sse_clients_count(void)
{
    return sse_nclients;
}

uint32_t sse_clients_streaming(void)
{
    return sse_nstreaming;
}

void sse_client_streaming(sse_client *cl)
{
    if (cl->state != SSE_CL_STREAMING) {
        cl->state = SSE_CL_STREAMING;
        sse_nstreaming++;
    }
}
