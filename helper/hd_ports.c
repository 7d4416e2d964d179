/* hd_ports.c: a sandbox's TCP ports, for preview URLs (docs/DESIGN.md
 * §4.3 "Preview URLs"). Two things:
 *
 *   the op "ports"   (main thread) the ports that listen inside a sandbox,
 *                    from /proc/<sp-init>/net/tcp and tcp6: the sandbox's
 *                    own network namespace, seen by the host's /proc.
 *   the forward thread  serves common/sp_fwd.h on a unix socket of the run
 *                    directory for sp-preview: "is this sandbox here, whose
 *                    is it, is it public or paused", and "a socket
 *                    connected to port P inside it". The thread enters the
 *                    sandbox's network namespace (setns is per thread),
 *                    makes the socket there, and goes back before it does
 *                    anything else; the socket stays in the namespace it
 *                    was made in, so its connect reaches only the
 *                    sandbox's loopback, never the host's.
 *
 * The forward thread never reads the helper's lists (the main thread owns
 * them): the main thread registers each named sandbox here when it is
 * recorded (its owner, public flag and an open fd of its network
 * namespace, taken while sp-init runs, so a pid reused later cannot
 * redirect it), marks it paused and resumed, and removes it when it ends;
 * the registry has its own mutex. */
#include "hd.h"
#include "sp_fwd.h"
#include "sp_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define HD_PORTS_LIST_MAX  256    /* ports in one answer */
#define HD_PORTS_LINES_MAX 100000 /* lines read of one /proc table */
#define HD_FWD_CLIENTS     32     /* sp-preview connections at once */
#define HD_TCP_LISTEN      0x0A   /* st of a listening socket in net/tcp */

typedef struct hd_fwd_ent {
    char id[SP_ID_SIZE], owner[SP_ID_SIZE];
    int public_ports, paused;
    int netns; /* fd of the sandbox's network namespace */
    struct hd_fwd_ent *next;
} hd_fwd_ent;

static pthread_mutex_t hd_fwd_lock = PTHREAD_MUTEX_INITIALIZER;
static hd_fwd_ent *hd_fwd_ents;
static int hd_fwd_listen_fd = -1, hd_fwd_host_ns = -1;
static uid_t hd_fwd_uid; /* the run directory's owner, besides root */

/* ---- the registry (main thread writes, forward thread reads) ---------- */

void hd_ports_add(const hd_sandbox *s, int public_ports)
{
    hd_fwd_ent *e = calloc(1, sizeof *e);

    if (e == NULL || (e->netns = sbx_net_netns(s->sbx)) < 0) {
        log_error("sandbox %s: its network namespace could not be opened: %s",
                  s->id, strerror(errno));
        free(e); /* no preview for it; everything else works */
        return;
    }
    snprintf(e->id, sizeof e->id, "%s", s->id);
    snprintf(e->owner, sizeof e->owner, "%s", s->owner);
    e->public_ports = public_ports;
    pthread_mutex_lock(&hd_fwd_lock);
    e->next = hd_fwd_ents;
    hd_fwd_ents = e;
    pthread_mutex_unlock(&hd_fwd_lock);
}

static hd_fwd_ent *hd_fwd_find(const char *id)
{
    for (hd_fwd_ent *e = hd_fwd_ents; e != NULL; e = e->next)
        if (strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

void hd_ports_paused(const char *id, int paused)
{
    hd_fwd_ent *e;

    pthread_mutex_lock(&hd_fwd_lock);
    if ((e = hd_fwd_find(id)) != NULL)
        e->paused = paused;
    pthread_mutex_unlock(&hd_fwd_lock);
}

void hd_ports_remove(const char *id)
{
    hd_fwd_ent **pp, *e = NULL;

    pthread_mutex_lock(&hd_fwd_lock);
    for (pp = &hd_fwd_ents; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            e = *pp;
            *pp = e->next;
            break;
        }
    }
    pthread_mutex_unlock(&hd_fwd_lock);
    if (e != NULL) {
        close(e->netns);
        free(e);
    }
}

/* ---- the op "ports" ---------------------------------------------------- */

/* Add the listening ports of one /proc/<pid>/net/tcp{,6} table to seen
 * (a bitmap of 65536 ports); v6 says which address family it is. */
static void hd_ports_read(pid_t pid, const char *table, unsigned char *seen)
{
    char path[64], line[512];
    unsigned port, st;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, table);
    if ((f = fopen(path, "re")) == NULL) {
        log_warn("fopen(\"%s\") failed: %s", path, strerror(errno));
        return;
    }
    /* "  0: 0100007F:1F40 00000000:0000 0A ..." (the first line is a
     * header): local address:port in hex, remote, then the state. */
    for (int n = 0; n < HD_PORTS_LINES_MAX && fgets(line, sizeof line, f);
         n++) {
        char *colon = strchr(line, ':'), *port_at;
        if (colon == NULL || (port_at = strchr(colon + 1, ':')) == NULL)
            continue;
        if (sscanf(port_at + 1, "%x %*s %x", &port, &st) == 2 &&
            st == HD_TCP_LISTEN && port > 0 && port < 65536)
            seen[port / 8] |= (unsigned char)(1u << (port % 8));
    }
    fclose(f);
}

void hd_op_ports(hd_sandbox *s, hd_job *job)
{
    unsigned char *seen = calloc(65536 / 8, 1);
    cJSON *rep = cJSON_CreateObject(),
          *arr = cJSON_AddArrayToObject(rep, "ports");
    int n = 0;

    if (seen == NULL || arr == NULL) {
        free(seen);
        cJSON_Delete(rep);
        hd_reply_err(job->rid, SP_E_INTERNAL, "out of memory");
        return;
    }
    hd_ports_read(hd_init_pid(s->sbx), "tcp", seen);
    hd_ports_read(hd_init_pid(s->sbx), "tcp6", seen);
    for (unsigned p = 1; p < 65536 && n < HD_PORTS_LIST_MAX; p++) {
        if (seen[p / 8] & (1u << (p % 8))) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "port", p);
            cJSON_AddItemToArray(arr, o);
            n++;
        }
    }
    free(seen);
    hd_reply(job->rid, rep, NULL, 0);
}

/* ---- the forward thread ------------------------------------------------ */

/* Send text (and fd, unless -1) as one message to c. */
static void hd_fwd_send(int c, const char *text, int fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {(void *)text, strlen(text)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

    if (fd >= 0) {
        struct cmsghdr *cm;
        m.msg_control = cbuf;
        m.msg_controllen = sizeof cbuf;
        cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    }
    if (sendmsg(c, &m, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_debug("sendmsg to sp-preview failed: %s", strerror(errno));
}

/* A TCP socket of family af (AF_INET, AF_INET6) made inside the network
 * namespace ns, or -1 with errno. The thread is back in the host's
 * namespace when this returns (or the helper stops: it must never do its
 * own work from a sandbox's namespace). */
static int hd_fwd_socket_in(int ns, int af)
{
    int fd, saved;

    if (setns(ns, CLONE_NEWNET) != 0)
        return -1;
    fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    saved = errno;
    if (setns(hd_fwd_host_ns, CLONE_NEWNET) != 0) {
        log_error("setns(host network) failed: %s; stopping", strerror(errno));
        abort(); /* start-up state broken: the supervisor restarts us */
    }
    errno = saved;
    return fd;
}

/* Connect to port on the loopback of ns: 127.0.0.1, then [::1] (a server
 * that listens on "localhost" may have only that). The socket (its
 * connect done or in progress), or -1 with errno. */
static int hd_fwd_connect(int ns, unsigned port)
{
    struct sockaddr_in a4 = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
                              .sin6_port = htons((uint16_t)port),
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int fd = hd_fwd_socket_in(ns, AF_INET);

    if (fd >= 0 && connect(fd, (struct sockaddr *)&a4, sizeof a4) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        fd = hd_fwd_socket_in(ns, AF_INET6);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a6, sizeof a6) != 0 &&
            errno != EINPROGRESS) {
            close(fd);
            fd = -1;
        }
    }
    return fd;
}

/* Answer one request of sp_fwd.h (req: NUL-terminated) on c. */
static void hd_fwd_answer(int c, const char *req)
{
    char id[SP_ID_SIZE + 1], out[FWD_MSG_MAX];
    unsigned port = 0;
    int is_info = sscanf(req, "info %64s", id) == 1;
    int fd = -1;
    hd_fwd_ent *e;

    if (!is_info && (sscanf(req, "connect %64s %u", id, &port) != 2 ||
                     port == 0 || port > 65535)) {
        hd_fwd_send(c, "2 malformed request", -1);
        return;
    }
    pthread_mutex_lock(&hd_fwd_lock);
    e = id_valid(id) ? hd_fwd_find(id) : NULL;
    if (e == NULL)
        snprintf(out, sizeof out, "%d no such sandbox", SP_E_NOT_FOUND);
    else if (is_info)
        snprintf(out, sizeof out, "0 %s %d %d", e->owner, e->public_ports,
                 e->paused);
    else if (e->paused)
        snprintf(out, sizeof out, "%d the sandbox is paused", SP_E_PAUSED);
    else if ((fd = hd_fwd_connect(e->netns, port)) < 0)
        snprintf(out, sizeof out, "%d nothing listens on port %u",
                 SP_E_BAD_GATEWAY, port);
    else
        snprintf(out, sizeof out, "0");
    pthread_mutex_unlock(&hd_fwd_lock);
    hd_fwd_send(c, out, fd);
    if (fd >= 0)
        close(fd);
}

/* A new client, if it runs as root or as the run directory's owner. */
static int hd_fwd_accept(void)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    int c = accept4(hd_fwd_listen_fd, NULL, NULL, SOCK_CLOEXEC);

    if (c < 0)
        return -1;
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 ||
        (cr.uid != 0 && cr.uid != hd_fwd_uid)) {
        log_warn("port-forward socket: refused a client of uid %d",
                 (int)cr.uid);
        close(c);
        return -1;
    }
    return c;
}

static void *hd_fwd_thread(void *unused)
{
    struct pollfd p[HD_FWD_CLIENTS + 1];
    char req[FWD_MSG_MAX + 1];
    int n = 1;

    (void)unused;
    p[0] = (struct pollfd){.fd = hd_fwd_listen_fd, .events = POLLIN};
    for (;;) {
        p[0].events = n <= HD_FWD_CLIENTS ? POLLIN : 0;
        if (poll(p, (nfds_t)n, -1) < 0)
            continue; /* EINTR */
        for (int i = n - 1; i >= 1; i--) {
            ssize_t r;
            if (p[i].revents == 0)
                continue;
            r = recv(p[i].fd, req, FWD_MSG_MAX, MSG_DONTWAIT);
            if (r > 0) {
                req[r] = '\0';
                hd_fwd_answer(p[i].fd, req);
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(p[i].fd);
                p[i] = p[--n];
            }
        }
        if ((p[0].revents & POLLIN) && n <= HD_FWD_CLIENTS) {
            int c = hd_fwd_accept();
            if (c >= 0)
                p[n++] = (struct pollfd){.fd = c, .events = POLLIN};
        }
    }
    return NULL;
}

int hd_ports_serve(const char *run_dir)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    pthread_t tid;

    if (stat(run_dir, &st) != 0 ||
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", run_dir,
                 FWD_SOCKET_NAME) >= (int)sizeof sa.sun_path) {
        log_error("port-forward socket: bad run directory %s", run_dir);
        return -1;
    }
    hd_fwd_uid = st.st_uid;
    hd_fwd_host_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    hd_fwd_listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    unlink(sa.sun_path);
    if (hd_fwd_host_ns < 0 || hd_fwd_listen_fd < 0 ||
        bind(hd_fwd_listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        chmod(sa.sun_path, 0666) != 0 || listen(hd_fwd_listen_fd, 64) != 0 ||
        pthread_create(&tid, NULL, hd_fwd_thread, NULL) != 0) {
        log_error("port-forward socket %s failed: %s", sa.sun_path,
                  strerror(errno));
        return -1;
    }
    pthread_detach(tid);
    return 0;
}
