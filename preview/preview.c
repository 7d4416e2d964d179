/* preview.c: sp-preview, the preview proxy (docs/DESIGN.md §4.3 "Preview
 * URLs"): http://<port>-<sandbox id>.<SP_PREVIEW_DOMAIN>/… reaches a
 * server that listens on that port inside the sandbox.
 *
 * Theory of operation. nginx selects the request by its host (or the E2B
 * headers, selectors.conf) and proxies it over HTTP/1.1 to SP_SOCKET, one
 * connection per request (no upstream keepalive: each connection carries
 * exactly one request, or one WebSocket), unbuffered both ways, with the
 * sandbox and port in X-Sp-Sandbox-Id and X-Sp-Sandbox-Port
 * (families/preview.conf). One thread runs one epoll loop:
 *
 *   accept → the head read (pv_head.c: parsed, rewritten) → access checked
 *   (pv_access.c: the traffic token, else the helper's word on the owner
 *   and public, else the owner's credentials through Redis) → a socket
 *   into the sandbox from the helper (common/sp_fwd.h), its connect maybe
 *   still in progress → the rewritten head and what followed it written to
 *   it → bytes pumped both ways until both sides have ended.
 *
 * The pump is edge-triggered: every edge on either socket of a
 * connection moves both directions until each would block; a direction
 * reads only while its buffer is empty, so a slow reader slows its writer
 * down and memory per connection is fixed (two PV_BUF buffers). An end of
 * input on one side is passed on as shutdown(SHUT_WR) of the other once
 * its buffer is written; the connection is closed when both directions
 * have ended, or at the first error. Chunked bodies, SSE and
 * WebSocket frames are bytes like any others: nothing is parsed after the
 * head. The helper's answers and the owner checks are made on this thread
 * (a unix socket round trip; Redis only for an owner's API key or token,
 * not for the traffic token of a preview link): a request never waits for
 * another's server.
 *
 * What sp-preview answers itself: 401, 404, 409 (paused), 502 (nothing
 * listens), 503 (helper or Redis away, too many connections) as the JSON
 * envelope, and the 302 that turns ?token= into a cookie.
 *
 * Options: the common ones (JWT_SECRET, REDIS_URL, SP_SOCKET,
 * SP_STATE_DIR) and SP_PREVIEW_MAX_CONNS. */
#include "pv.h"
#include "sp_config.h"
#include "sp_log.h"
#include "sp_redis.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PV_BUF 65536 /* each direction's buffer */
/* What is read away after an answer of our own: nginx's body limit of the
 * preview location (64 MiB) and some. */
#define PV_DRAIN_MAX ((size_t)80 << 20)
#define PV_EVENTS    256

/* One direction of a connection: bytes read from one socket, to be
 * written to the other. */
typedef struct pv_pipe {
    char *data;
    size_t off, len;
    int eof;  /* its source has ended */
    int shut; /* and that was passed on (shutdown of the destination) */
} pv_pipe;

struct pv_conn;
typedef struct pv_end {
    struct pv_conn *c;
    int fd;
} pv_end;

typedef struct pv_conn {
    pv_end client, up; /* nginx's connection; the sandbox's (fd -1 first) */
    pv_pipe to_up, to_client;
    int connecting; /* up's connect is in progress */
    char *head;     /* while the head is read, else NULL */
    size_t head_len;
    int dead;             /* closed; freed after this batch of events */
    int watched;          /* the client end is in the epoll set */
    int draining;         /* answered: what nginx still sends is read away */
    size_t drain_left;    /* bytes it may still send before we close */
    struct pv_conn *next; /* in pv_dead */
} pv_conn;

static int pv_epfd = -1, pv_listen_fd = -1;
static long long pv_conns, pv_max_conns;
static pv_conn *pv_dead; /* closed in this batch of events */

/* ---- connections --------------------------------------------------------- */

/* Close e's socket, out of the epoll set first: a close alone does not
 * take it out while another descriptor of the same socket is open (the
 * helper may still hold the one it passed us), and its events would then
 * name a connection already freed. */
static void pv_close_end(pv_end *e)
{
    if (e->fd < 0)
        return;
    epoll_ctl(pv_epfd, EPOLL_CTL_DEL, e->fd, NULL);
    close(e->fd);
    e->fd = -1;
}

/* Close c's sockets now; c itself is freed after the batch of events it
 * may still appear in (pv_reap). */
static void pv_close(pv_conn *c)
{
    pv_close_end(&c->client);
    pv_close_end(&c->up);
    c->dead = 1;
    c->next = pv_dead;
    pv_dead = c;
    pv_conns--;
}

static void pv_reap(void)
{
    while (pv_dead != NULL) {
        pv_conn *c = pv_dead;
        pv_dead = c->next;
        free(c->to_up.data);
        free(c->to_client.data);
        free(c->head);
        free(c);
    }
}

/* Watch e's socket, edge-triggered, for everything, once. */
static int pv_watch(pv_end *e)
{
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = e};

    if (epoll_ctl(pv_epfd, EPOLL_CTL_ADD, e->fd, &ev) == 0)
        return 0;
    log_error("epoll_ctl failed: %s", strerror(errno));
    return -1;
}

/* Read away what nginx still sends after our answer; close c at its end
 * (or past PV_DRAIN_MAX, or on an error). Called again on each edge. */
static void pv_drain(pv_conn *c)
{
    char sink[16384];

    for (;;) {
        ssize_t n = recv(c->client.fd, sink, sizeof sink, 0);
        if (n > 0 && (size_t)n < c->drain_left) {
            c->drain_left -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && c->watched)
            return; /* more to come: the next edge */
        pv_close(c);
        return;
    }
}

/* Answer out on the client (small: written at once) and end c. What
 * nginx sent and sends after it (a body) is read away first, up to a
 * bound, until nginx closes: a unix socket closed with unread bytes resets
 * its peer, and nginx would answer 502 in place of ours. */
static void pv_reply_close(pv_conn *c, sp_buf *out)
{
    if (!buf_failed(out) && out->len > 0 &&
        write(c->client.fd, out->data, out->len) < 0)
        log_debug("write to nginx failed: %s", strerror(errno));
    buf_free(out);
    shutdown(c->client.fd, SHUT_WR);
    pv_close_end(&c->up);
    c->draining = 1;
    c->drain_left = PV_DRAIN_MAX;
    pv_drain(c);
}

static void pv_fail(pv_conn *c, sp_status st, const char *msg)
{
    sp_buf out;

    buf_init(&out, 4096);
    pv_answer_error(&out, st, msg);
    pv_reply_close(c, &out);
}

/* ---- the pump ------------------------------------------------------------ */

/* Move bytes from src to dst through p until one of them would block (its
 * next edge calls this again), passing the end of src on as shutdown of
 * dst once everything before it is written. 0, or -1: broken. */
static int pv_move(pv_pipe *p, int src, int dst)
{
    for (;;) {
        if (p->len == 0 && !p->eof) {
            ssize_t r = recv(src, p->data, PV_BUF, 0);
            if (r < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -1;
            p->off = 0;
            p->len = (size_t)r;
            p->eof = r == 0;
        }
        if (p->len > 0) {
            ssize_t w = send(dst, p->data + p->off, p->len, MSG_NOSIGNAL);
            if (w < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -1;
            p->off += (size_t)w;
            p->len -= (size_t)w;
            continue;
        }
        if (!p->shut) {
            shutdown(dst, SHUT_WR);
            p->shut = 1;
        }
        return 0;
    }
}

/* Something happened on c's sockets: both directions make progress; c
 * ends when both have ended, or at an error. */
static void pv_pump(pv_conn *c)
{
    if (pv_move(&c->to_up, c->client.fd, c->up.fd) != 0 ||
        pv_move(&c->to_client, c->up.fd, c->client.fd) != 0 ||
        (c->to_up.shut && c->to_client.shut))
        pv_close(c);
}

/* up's connect has finished (or failed: 502, nothing was sent yet). */
static void pv_connected(pv_conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(c->up.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
        pv_fail(c, SP_E_BAD_GATEWAY, "nothing listens on that port");
        return;
    }
    c->connecting = 0;
    pv_pump(c);
}

/* An edge while up connects: only up's says anything (the client's
 * bytes wait in its socket until the pump reads them). */
static void pv_connected_edge(pv_end *e)
{
    if (e == &e->c->up)
        pv_connected(e->c);
}

/* ---- a request's head ---------------------------------------------------- */

/* The head is complete (len bytes; what follows, rest bytes, is the
 * body's start): check, connect, and start pumping. */
static void pv_start(pv_conn *c, size_t len, size_t rest)
{
    char msg[256];
    pv_head h;
    sp_status st;
    int strip = 0, by_token = 0;

    if ((st = pv_head_parse(c->head, len, &h, msg, sizeof msg)) != SP_OK ||
        (st = pv_access(&h, &strip, &by_token, msg, sizeof msg)) != SP_OK) {
        buf_free(&h.out);
        pv_fail(c, st, msg);
        return;
    }
    /* Only the sandbox's own token becomes a cookie: a public sandbox
     * admits any, and a made-up one ("x;Domain=...") must not set one. */
    if (h.token_in_query && by_token && !h.upgrade &&
        (strcmp(h.method, "GET") == 0 || strcmp(h.method, "HEAD") == 0)) {
        sp_buf out;
        buf_init(&out, PV_HEAD_MAX + 1024);
        pv_answer_cookie(&out, &h);
        buf_free(&h.out);
        pv_reply_close(c, &out);
        return;
    }
    if (pv_head_finish(&h, strip) != 0 || h.out.len + rest > PV_BUF) {
        buf_free(&h.out);
        pv_fail(c, SP_E_INVALID_ARGUMENT, "request head too large");
        return;
    }
    memcpy(c->to_up.data, h.out.data, h.out.len);
    memcpy(c->to_up.data + h.out.len, c->head + len, rest);
    c->to_up.len = h.out.len + rest;
    buf_free(&h.out);
    free(c->head);
    c->head = NULL;
    if ((c->up.fd = pv_connect(&h, &st, msg, sizeof msg)) < 0) {
        pv_fail(c, st, msg);
        return;
    }
    c->connecting = 1;
    if (pv_watch(&c->up) != 0)
        pv_close(c); /* else its first edge says whether it connected */
}

/* nginx's connection had an edge while the head is read: read until it
 * would block, or the head is whole. */
static void pv_read_head(pv_conn *c)
{
    for (;;) {
        ssize_t r = recv(c->client.fd, c->head + c->head_len,
                         PV_HEAD_MAX - c->head_len, 0);
        char *end;

        if (r <= 0) {
            if (r == 0 || (errno != EAGAIN && errno != EINTR))
                pv_close(c);
            return;
        }
        c->head_len += (size_t)r;
        c->head[c->head_len] = '\0';
        end = strstr(c->head, "\r\n\r\n");
        if (end != NULL) {
            size_t len = (size_t)(end + 4 - c->head);
            pv_start(c, len, c->head_len - len);
            return;
        }
        if (c->head_len == PV_HEAD_MAX) {
            pv_fail(c, SP_E_INVALID_ARGUMENT, "request head too large");
            return;
        }
    }
}

static void pv_accept(void)
{
    for (;;) {
        int fd =
            accept4(pv_listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        pv_conn *c;

        if (fd < 0)
            return;
        c = calloc(1, sizeof *c);
        if (c != NULL) {
            c->to_up.data = malloc(PV_BUF);
            c->to_client.data = malloc(PV_BUF);
            c->head = malloc(PV_HEAD_MAX + 1);
        }
        if (c == NULL || !c->to_up.data || !c->to_client.data || !c->head) {
            if (c != NULL) {
                free(c->to_up.data);
                free(c->to_client.data);
                free(c->head);
            }
            free(c);
            close(fd);
            continue;
        }
        pv_conns++;
        c->client = (pv_end){c, fd};
        c->up = (pv_end){c, -1};
        if (pv_conns > pv_max_conns) {
            pv_fail(c, SP_E_UNAVAILABLE, "too many preview connections");
            continue;
        }
        if (pv_watch(&c->client) != 0)
            pv_close(c);
        else
            c->watched = 1;
    }
}

/* ---- main ---------------------------------------------------------------- */

static void pv_loop(void)
{
    struct epoll_event evs[PV_EVENTS];

    for (;;) {
        int n = epoll_wait(pv_epfd, evs, PV_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            pv_end *e = evs[i].data.ptr;
            if (e == NULL)
                pv_accept();
            else if (e->c->dead)
                continue;
            else if (e->c->draining)
                pv_drain(e->c);
            else if (e->c->head != NULL)
                pv_read_head(e->c);
            else if (e->c->connecting)
                pv_connected_edge(e);
            else
                pv_pump(e->c);
        }
        pv_reap();
    }
}

static int pv_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

    if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path) >=
        (int)sizeof sa.sun_path) {
        log_error("SP_SOCKET: path too long");
        return -1;
    }
    pv_listen_fd =
        socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    unlink(path);
    if (pv_listen_fd < 0 ||
        bind(pv_listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(pv_listen_fd, 4096) != 0 ||
        epoll_ctl(pv_epfd, EPOLL_CTL_ADD, pv_listen_fd, &ev) != 0) {
        log_error("bind/listen(\"%s\") failed: %s", path, strerror(errno));
        return -1;
    }
    /* nginx workers run as the same unprivileged user; nobody else. */
    chmod(path, 0660);
    return 0;
}

int main(void)
{
    static const cfg_id required[] = {CFG_JWT_SECRET, CFG_SP_SOCKET,
                                      CFG_REDIS_URL, CFG_SP_STATE_DIR,
                                      CFG_COUNT};
    char err[512], run[PATH_MAX];
    struct rlimit rl;

    log_set_program("preview");
    signal(SIGPIPE, SIG_IGN); /* a client that goes away never kills us */
    if (cfg_load(required, err, sizeof err) != 0 ||
        rds_init(err, sizeof err) != 0 || auth_init(err, sizeof err) != 0) {
        log_error("configuration refused: %s", err);
        return 2;
    }
    pv_max_conns = cfg_int(CFG_SP_PREVIEW_MAX_CONNS);
    snprintf(run, sizeof run, "%s/run", cfg_str(CFG_SP_STATE_DIR));
    pv_access_init(run);
    /* Each connection is two sockets. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if ((pv_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        pv_listen(cfg_str(CFG_SP_SOCKET)) != 0) {
        log_error("start-up failed");
        return 1;
    }
    log_info("listening on %s (max %lld connections)", cfg_str(CFG_SP_SOCKET),
             pv_max_conns);
    pv_loop();
    return 0;
}
