/* relay.c: sp-sse, the SSE relay (docs/DESIGN.md §4.2). It turns the Redis
 * Streams the sandbox helper writes into Server-Sent Events for every
 * client watching, and is the only program that keeps responses open.
 *
 * Theory of operation. One thread runs one epoll loop over: the FastCGI
 * listening socket (SP_SOCKET), one socket per request from nginx
 * (fastcgi_keep_conn off: one request per connection), an eventfd on
 * which the Redis reader posts results, and a one-second timerfd
 * (heartbeats, set-up timeouts). The one other thread (sse_reader.c) makes
 * every Redis call: authentication and ownership checks, backlog reads,
 * and one XREAD BLOCK covering all watched streams. So thousands of
 * streams cost neither a thread nor a Redis connection each: a stream is a
 * socket, a small struct, and references to event bytes formatted once.
 *
 * Life of a stream: accept -> FastCGI records parsed (sse_fcgi.c) ->
 * request checked (sse_request.c) -> OPEN job (reader: auth, owner) ->
 * headers sent, subscription made (sse_stream.c) -> backlog in chunks ->
 * live -> the final event (result) or the client going away -> every
 * reference dropped at once (sse_client.c). The execution is not touched.
 *
 * WebSocket clients (sse_ws*.c) come on a second socket beside SP_SOCKET
 * (sp-sse-ws.sock for sp-sse.sock), proxied by nginx as HTTP with
 * Upgrade; they are clients of the same table and loop, with raw frames
 * instead of FastCGI records. What they ask (executions, terminals) is
 * passed to the handlers by the forwarding threads (sse_forward.c), whose
 * answers come back on a third eventfd.
 *
 * Options (environment, refused at start if malformed): the common ones
 * (REDIS_URL, JWT_SECRET, SP_SOCKET, SP_PREFIX, ...), SP_SSE_MAX_CLIENTS
 * (streams at once, default 10000; beyond: 503) and SP_SSE_HEARTBEAT_S
 * (seconds of silence before a keepalive, the ": hb" comment of SSE,
 * default 15). */
#include "sse_loop.h"
#include "sp_auth.h"
#include "sp_config.h"
#include "sp_log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SSE_TOK_LISTEN       UINT64_MAX
#define SSE_TOK_RESULTS      (UINT64_MAX - 1)
#define SSE_TOK_TIMER        (UINT64_MAX - 2)
#define SSE_TOK_WS_LISTEN    (UINT64_MAX - 3)
#define SSE_TOK_FORWARD      (UINT64_MAX - 4)
#define SSE_CONN_EXTRA       256 /* connections beyond the stream limit */
#define SSE_SETUP_TIMEOUT_MS 30000
#define SSE_STALL_MS         60000 /* no write progress: the client is gone */
#define SSE_READ_CHUNK       16384
#define SSE_EVENTS           256

#define SSE_FRAMES_MAX 5 /* framings in use, each with its keepalive */

static int sse_listen_fd = -1, sse_res_efd = -1, sse_timer_fd = -1;
static int sse_ws_fd = -1, sse_fwd_efd = -1;
static long long sse_heartbeat_ms = 15000;
/* The keepalive of each framing, made once and shared by every client
 * (static: never freed). */
static struct {
    const sp_frame *frame;
    sse_ev *ev;
} sse_hbs[SSE_FRAMES_MAX];

long long sse_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An integer option of this program only; -1 with a reason if bad. */
static int sse_env_int(const char *name, long long def, long long min,
                       long long max, long long *out, char *err, size_t elen)
{
    const char *v = getenv(name);
    char *end;
    long long x;
    if (v == NULL || *v == '\0') {
        *out = def;
        return 0;
    }
    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || x < min || x > max) {
        snprintf(err, elen, "%s: must be an integer in [%lld, %lld]", name, min,
                 max);
        return -1;
    }
    *out = x;
    return 0;
}

int sse_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = -1;

    if (strlen(path) >= sizeof sa.sun_path) {
        log_error("socket path too long: %s", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("socket() failed: %s", strerror(errno));
        return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, 4096) != 0) {
        log_error("bind/listen(\"%s\") failed: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* nginx workers run as the same unprivileged user; nobody else. */
    chmod(path, 0660);
    return fd;
}

static void sse_accept(int epfd, long long now)
{
    (void)epfd;
    for (;;) {
        int fd =
            accept4(sse_listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                log_warn("accept4 failed: %s", strerror(errno));
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        if (sse_client_new(fd, now) == NULL)
            close(fd); /* over every limit: nginx answers 502 */
    }
}

/* Input from nginx on cl's socket. */
static void sse_readable(sse_client *cl, long long now)
{
    unsigned char buf[SSE_READ_CHUNK];

    if (cl->ws != NULL) {
        sse_ws_readable(cl, now);
        return;
    }
    for (int i = 0; i < 4; i++) {
        ssize_t n = read(cl->fd, buf, sizeof buf);
        int rc;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            sse_client_close(cl);
            return;
        }
        rc = sse_fcgi_feed(&cl->fcgi, buf, (size_t)n);
        if (cl->fcgi.reply_len > 0) {
            sse_client_push_bytes(cl, cl->fcgi.reply, cl->fcgi.reply_len, 1);
            free(cl->fcgi.reply);
            cl->fcgi.reply = NULL;
            cl->fcgi.reply_len = 0;
        }
        if (rc == SSE_FCGI_ERROR || rc == SSE_FCGI_ABORT) {
            if (rc == SSE_FCGI_ERROR)
                log_debug("FastCGI protocol error; connection closed");
            sse_client_close(cl);
            return;
        }
        if (rc == SSE_FCGI_READY && cl->state == SSE_CL_READING)
            sse_request(cl);
        (void)now;
    }
}

/* The shared keepalive event of fr, made on first use; NULL if out of
 * memory or the table is full. */
static sse_ev *sse_heartbeat(const sp_frame *fr)
{
    for (size_t i = 0; i < SSE_FRAMES_MAX; i++) {
        if (sse_hbs[i].frame == fr)
            return sse_hbs[i].ev;
        if (sse_hbs[i].frame == NULL) {
            sse_ev *ev = sse_ev_part(fr, SSE_PART_HEARTBEAT, NULL, NULL);
            if (ev == NULL)
                return NULL;
            ev->refs = UINT32_MAX; /* shared by all, never freed */
            sse_hbs[i].frame = fr;
            sse_hbs[i].ev = ev;
            return ev;
        }
    }
    return NULL;
}

static void sse_tick_one(sse_client *cl, long long now)
{
    if (cl->state == SSE_CL_STREAMING) {
        /* A client that takes nothing for this long holds a full queue
         * for nobody: drop it. */
        if (cl->qlen > 0 && now - cl->last_out_ms >= SSE_STALL_MS) {
            log_info("stream dropped: no progress for %d s",
                     SSE_STALL_MS / 1000);
            sse_client_close(cl);
            return;
        }
        if (cl->qlen == 0 && now - cl->last_out_ms >= sse_heartbeat_ms) {
            sse_ev *hb = sse_heartbeat(cl->route->frame);
            if (hb != NULL && hb->len > 0 && sse_client_push(cl, hb) != 0)
                sse_client_close(cl);
        }
    } else if ((cl->state == SSE_CL_READING || cl->state == SSE_CL_AUTH) &&
               now - cl->born_ms > SSE_SETUP_TIMEOUT_MS) {
        sse_client_close(cl);
    } else if (cl->state == SSE_CL_CLOSING && cl->qlen > 0 &&
               now - cl->last_out_ms >= SSE_STALL_MS) {
        sse_client_close(cl); /* its last bytes are never read */
    }
}

static void sse_results(void)
{
    uint64_t cnt;
    sse_res *res;
    ssize_t rc = read(sse_res_efd, &cnt, sizeof cnt);
    (void)rc;
    res = sse_reader_take();
    while (res != NULL) {
        sse_res *next = res->next;
        if (res->type == SSE_JOB_OPEN)
            sse_request_opened(res);
        else
            sse_stream_result(res);
        sse_res_free(res);
        res = next;
    }
}

/* Answers of calls made for WebSocket clients. */
static void sse_forwarded(void)
{
    uint64_t cnt;
    sse_call *c;
    ssize_t rc = read(sse_fwd_efd, &cnt, sizeof cnt);

    (void)rc;
    c = sse_forward_take();
    while (c != NULL) {
        sse_call *next = c->next;
        sse_ws_answered(c);
        sse_call_free(c);
        c = next;
    }
}

/* The WebSocket socket beside SP_SOCKET ("x.sock" -> "x-ws.sock"), the
 * forwarding threads with the handlers' sockets in the same directory. */
static int sse_ws_setup(int epfd)
{
    struct epoll_event ev = {.events = EPOLLIN};
    const char *sock = cfg_str(CFG_SP_SOCKET), *slash = strrchr(sock, '/');
    size_t n = strlen(sock);
    char path[512], dir[512];

    if (n < 5 || strcmp(sock + n - 5, ".sock") != 0 || n + 8 > sizeof path) {
        log_error("SP_SOCKET: must end in .sock");
        return -1;
    }
    snprintf(path, sizeof path, "%.*s-ws.sock", (int)(n - 5), sock);
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - sock) : 1,
             slash ? sock : ".");
    sse_fwd_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if ((sse_ws_fd = sse_listen(path)) < 0 || sse_fwd_efd < 0 ||
        sse_forward_start(sse_fwd_efd, dir) != 0)
        return -1;
    ev.data.u64 = SSE_TOK_WS_LISTEN;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, sse_ws_fd, &ev) != 0)
        return -1;
    ev.data.u64 = SSE_TOK_FORWARD;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, sse_fwd_efd, &ev);
}

static int sse_setup(int epfd)
{
    struct epoll_event ev = {.events = EPOLLIN};
    struct itimerspec its = {{1, 0}, {1, 0}};

    sse_res_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    sse_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (sse_res_efd < 0 || sse_timer_fd < 0 ||
        timerfd_settime(sse_timer_fd, 0, &its, NULL) != 0) {
        log_error("eventfd/timerfd failed: %s", strerror(errno));
        return -1;
    }
    ev.data.u64 = SSE_TOK_LISTEN;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, sse_listen_fd, &ev) != 0)
        return -1;
    ev.data.u64 = SSE_TOK_RESULTS;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, sse_res_efd, &ev) != 0)
        return -1;
    ev.data.u64 = SSE_TOK_TIMER;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, sse_timer_fd, &ev) != 0 ||
        sse_ws_setup(epfd) != 0)
        return -1;
    return sse_reader_start(sse_res_efd);
}

static void sse_loop(int epfd)
{
    struct epoll_event evs[SSE_EVENTS];

    for (;;) {
        int n = epoll_wait(epfd, evs, SSE_EVENTS, -1);
        long long now = sse_now_ms();
        for (int i = 0; i < n; i++) {
            uint64_t tok = evs[i].data.u64;
            sse_client *cl;
            if (tok == SSE_TOK_LISTEN) {
                sse_accept(epfd, now);
            } else if (tok == SSE_TOK_RESULTS) {
                sse_results();
            } else if (tok == SSE_TOK_WS_LISTEN) {
                sse_ws_accept(sse_ws_fd, now);
            } else if (tok == SSE_TOK_FORWARD) {
                sse_forwarded();
            } else if (tok == SSE_TOK_TIMER) {
                uint64_t cnt;
                ssize_t rc = read(sse_timer_fd, &cnt, sizeof cnt);
                (void)rc;
                sse_clients_each(sse_tick_one, now);
                sse_ws_tick(now);
            } else if ((cl = sse_client_get(tok)) != NULL) {
                if (evs[i].events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
                    sse_client_close(cl); /* the reader went away */
                    continue;
                }
                if (evs[i].events & EPOLLIN)
                    sse_readable(cl, now);
                if ((cl = sse_client_get(tok)) != NULL &&
                    (evs[i].events & EPOLLOUT))
                    sse_client_flush(cl, now);
            }
        }
        sse_clients_flush_dirty(now);
    }
}

int main(void)
{
    static const cfg_id required[] = {CFG_JWT_SECRET, CFG_SP_SOCKET,
                                      CFG_REDIS_URL, CFG_COUNT};
    char err[512];
    long long max_clients, hb_s;
    struct rlimit rl;
    int epfd, result = 1;

    log_set_program("sse");
    /* A client that goes away must never kill the relay. */
    signal(SIGPIPE, SIG_IGN);
    if (cfg_load(required, err, sizeof err) != 0 ||
        rds_init(err, sizeof err) != 0 || auth_init(err, sizeof err) != 0 ||
        sse_env_int("SP_SSE_MAX_CLIENTS", 10000, 1, 1000000, &max_clients, err,
                    sizeof err) != 0 ||
        sse_env_int("SP_SSE_HEARTBEAT_S", 15, 1, 3600, &hb_s, err,
                    sizeof err) != 0) {
        log_error("configuration refused: %s", err);
        return 2;
    }
    sse_heartbeat_ms = hb_s * 1000;
    /* Each stream is one socket: let the process have as many as allowed. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sse_request_init((uint32_t)max_clients);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0 ||
        sse_clients_init(epfd, (uint32_t)max_clients + SSE_CONN_EXTRA) != 0 ||
        (sse_listen_fd = sse_listen(cfg_str(CFG_SP_SOCKET))) < 0 ||
        sse_setup(epfd) != 0)
        goto out;
    log_info("listening on %s (max %lld streams, heartbeat %lld s)",
             cfg_str(CFG_SP_SOCKET), max_clients, hb_s);
    sse_loop(epfd);
out:
    log_error("start-up failed");
    return result;
}
