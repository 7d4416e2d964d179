/*
 * sbx_net.c — networking for sandboxes created with network on.
 *
 * The sandbox keeps its private network namespace; slirp4netns, a user-mode
 * TCP/IP stack running as the sandbox's unprivileged host user, attaches a
 * tap device to it and forwards connections from the host's side. Host
 * loopback (10.0.2.2 -> 127.0.0.1) is refused, so services bound to the
 * host's 127.0.0.1 (Redis, the handlers) stay out of reach. slirp4netns
 * lives in the sandbox cgroups and dies with the sandbox or the daemon.
 *
 * slirp4netns makes every connection from the host, so without more a
 * sandbox could reach services on the host's other addresses and on the
 * host's private networks. Before slirp4netns starts, the egress filter
 * of the sandbox's policy (sbx_egress.c) is loaded into the sandbox's
 * network namespace by root: code inside has no capability there and
 * cannot undo it.
 *
 * With a resolver (a policy with lists), the helper answers the
 * sandbox's DNS itself: sbx_net_dns_socket puts slirp4netns' DNS address
 * 10.0.2.3 on the sandbox's loopback (so its queries never reach
 * slirp4netns) and makes a UDP socket bound there, from a short-lived
 * thread that joined the sandbox's network namespace (the socket stays
 * in it; the helper's other threads never change namespace). The bytes
 * a sandbox sent and received are its tap0's counters.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbx_priv.h"

/*
 * --userns-path: slirp4netns joins the user namespace that owns the
 * sandbox's network namespace; the unprivileged host user created it, so
 * it has the rights to make the tap device there without host root. With
 * --disable-userns, sp-init sits in a nested user namespace, so ask the
 * kernel for the owner of the network namespace instead of taking
 * sp-init's. Returns an fd on it (O_CLOEXEC), or -1 (err).
 */
static int net_owner_userns(pid_t init_pid, char *err, size_t errlen)
{
    char path[64];
    int netns, userns;

    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)init_pid);
    netns = open(path, O_RDONLY | O_CLOEXEC);
    userns = netns < 0 ? -1 : ioctl(netns, NS_GET_USERNS);
    if (userns < 0)
        snprintf(err, errlen, "ioctl(\"%s\", NS_GET_USERNS) failed: %s", path,
                 strerror(errno));
    if (netns >= 0)
        close(netns);
    return userns;
}

/* Wait for slirp4netns's ready byte on ready_fd; 0, or -1 with its last
 * complaint (read from errp_fd) in err. */
static int net_wait_ready(int ready_fd, int errp_fd, char *err, size_t errlen)
{
    struct pollfd pfd = {.fd = ready_fd, .events = POLLIN};
    char msg[256] = "", byte;
    ssize_t n;
    int rc;

    do
        rc = poll(&pfd, 1, SBX_REPLY_TIMEOUT_MS);
    while (rc < 0 && errno == EINTR);
    if (rc > 0 && read(ready_fd, &byte, 1) == 1)
        return 0;
    n = read(errp_fd, msg, sizeof(msg) - 1);
    msg[n > 0 ? n : 0] = '\0';
    while (n > 1 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    if (strrchr(msg, '\n'))
        memmove(msg, strrchr(msg, '\n') + 1, strlen(strrchr(msg, '\n')));
    snprintf(err, errlen,
             "slirp4netns did not configure the network "
             "(%s%s%s)",
             rc == 0 ? "timeout" : "it exited", msg[0] ? ": " : "", msg);
    return -1;
}

int sbx_net_start(pid_t init_pid, const sp_netpol *pol, uid_t uid, gid_t gid,
                  const int *join, size_t njoin, pid_t *pid, int *exit_fd,
                  char *err, size_t errlen)
{
    int ready[2] = {-1, -1}, quit[2] = {-1, -1}, keep[3], result = -1;
    int userns = -1, errp[2] = {-1, -1};
    char a_userns[64], a_ready[32], a_exit[32], a_pid[16];
    char *argv[] = {
        "slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
        a_userns,      a_ready,       a_exit,        "--enable-seccomp",
        a_pid,         "tap0",        NULL};
    struct stat st;
    sbx_launch l = {0};

    *pid = -1;
    *exit_fd = -1;
    /* The unprivileged slirp4netns opens the tun device itself. */
    if (stat("/dev/net/tun", &st) < 0 || (st.st_mode & 0006) != 0006) {
        snprintf(err, errlen,
                 "network needs /dev/net/tun with mode 0666 "
                 "(Debian's default) for the sandbox user");
        goto out;
    }
    if (sbx_egress_load(init_pid, pol, 0, err, errlen) != 0)
        goto out;
    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(quit, O_CLOEXEC) < 0 ||
        pipe2(errp, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "pipe2() failed: %s", strerror(errno));
        goto out;
    }
    if ((userns = net_owner_userns(init_pid, err, errlen)) < 0)
        goto out;
    snprintf(a_userns, sizeof(a_userns), "--userns-path=/proc/self/fd/%d",
             userns);
    snprintf(a_ready, sizeof(a_ready), "--ready-fd=%d", ready[1]);
    snprintf(a_exit, sizeof(a_exit), "--exit-fd=%d", quit[0]);
    snprintf(a_pid, sizeof(a_pid), "%d", (int)init_pid);
    keep[0] = ready[1];
    keep[1] = quit[0];
    keep[2] = userns;
    l.path = SBX_SLIRP_PATH;
    l.argv = argv;
    l.keep = keep;
    l.nkeep = 3;
    l.join = join;
    l.njoin = njoin;
    l.uid = uid;
    l.gid = gid;
    l.stdio[0] = l.stdio[1] = -1;
    l.stdio[2] = errp[1]; /* its complaints, for the error message */
    *pid = sbx_launch_child(&l, err, errlen);
    if (*pid < 0)
        goto out;
    close(ready[1]);
    ready[1] = -1;
    if (net_wait_ready(ready[0], errp[0], err, errlen) != 0)
        goto out;
    *exit_fd = quit[1];
    quit[1] = -1;
    result = 0;
out:
    if (errp[0] >= 0)
        close(errp[0]);
    if (errp[1] >= 0)
        close(errp[1]);
    if (userns >= 0)
        close(userns);
    if (ready[0] >= 0)
        close(ready[0]);
    if (ready[1] >= 0)
        close(ready[1]);
    if (quit[0] >= 0)
        close(quit[0]);
    if (quit[1] >= 0)
        close(quit[1]); /* on failure: tells slirp4netns to go */
    return result;
}

int sbx_net_netns(const sbx_sandbox *s)
{
    char path[64];

    if (s->init_pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)s->init_pid);
    return open(path, O_RDONLY | O_CLOEXEC);
}

int sbx_net_policy(sbx_sandbox *s, const sp_netpol *pol, char *err,
                   size_t errlen)
{
    if (s->slirp_pid <= 0) {
        snprintf(err, errlen, "the sandbox was made without network");
        return -1;
    }
    return sbx_egress_load(s->init_pid, pol, 1, err, errlen);
}

/* Append attribute type with len bytes of data to the message nh. */
static void net_rta(struct nlmsghdr *nh, unsigned short type, const void *data,
                    size_t len)
{
    struct rtattr *rta =
        (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));

    rta->rta_type = type;
    rta->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(rta), data, len);
    nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/* Put 10.0.2.3/32 on lo of the calling thread's network namespace
 * (RTM_NEWADDR; an address already there is fine). 0, or -1. */
static int net_dns_addr(void)
{
    struct {
        struct nlmsghdr nh;
        struct ifaddrmsg ifa;
        char attrs[64];
    } req = {0};
    struct {
        struct nlmsghdr nh;
        struct nlmsgerr e;
        char more[256];
    } ack;
    struct in_addr a = {htonl(0x0a000203)}; /* 10.0.2.3 */
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    int rc = -1;

    if (fd < 0)
        return -1;
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof req.ifa);
    req.nh.nlmsg_type = RTM_NEWADDR;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK;
    req.ifa.ifa_family = AF_INET;
    req.ifa.ifa_prefixlen = 32;
    req.ifa.ifa_scope = RT_SCOPE_HOST;
    req.ifa.ifa_index = 1; /* lo is the first device of every namespace */
    net_rta(&req.nh, IFA_LOCAL, &a, sizeof a);
    net_rta(&req.nh, IFA_ADDRESS, &a, sizeof a);
    if (send(fd, &req, req.nh.nlmsg_len, 0) == (ssize_t)req.nh.nlmsg_len &&
        recv(fd, &ack, sizeof ack, 0) >= (ssize_t)NLMSG_LENGTH(sizeof ack.e) &&
        ack.nh.nlmsg_type == NLMSG_ERROR &&
        (ack.e.error == 0 || ack.e.error == -EEXIST))
        rc = 0;
    close(fd);
    return rc;
}

typedef struct net_dns_job {
    int netns;
    int fd; /* out: the socket, or -1 */
    int err;
} net_dns_job;

/* On a thread of its own: join the sandbox's network namespace, put the
 * DNS address on its loopback and bind a UDP socket there. The thread
 * ends in that namespace; nothing else runs on it. */
static void *net_dns_thread(void *arg)
{
    net_dns_job *j = arg;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(53),
                             .sin_addr = {htonl(0x0a000203)}};
    int fd;

    j->fd = -1;
    if (setns(j->netns, CLONE_NEWNET) != 0 || net_dns_addr() != 0) {
        j->err = errno ? errno : EIO;
        return NULL;
    }
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        j->err = errno;
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    j->fd = fd;
    return NULL;
}

int sbx_net_dns_socket(const sbx_sandbox *s, char *err, size_t errlen)
{
    net_dns_job j = {.netns = sbx_net_netns(s), .fd = -1};
    pthread_t t;
    int rc;

    if (j.netns < 0 || s->slirp_pid <= 0) {
        snprintf(err, errlen,
                 "the sandbox has no network namespace to "
                 "resolve in");
        goto out;
    }
    rc = pthread_create(&t, NULL, net_dns_thread, &j);
    if (rc != 0) {
        snprintf(err, errlen, "pthread_create() failed: %s", strerror(rc));
        goto out;
    }
    pthread_join(t, NULL);
    if (j.fd < 0)
        snprintf(err, errlen, "the sandbox's DNS socket: %s", strerror(j.err));
out:
    if (j.netns >= 0)
        close(j.netns);
    return j.fd;
}

int sbx_net_bytes(const sbx_sandbox *s, uint64_t *rx, uint64_t *tx)
{
    char path[64], line[512];
    unsigned long long r, t, skip;
    FILE *f;
    int result = -1;

    *rx = *tx = 0;
    if (s->init_pid <= 0 || s->slirp_pid <= 0)
        return s->init_pid > 0 ? 0 : -1; /* no network: nothing moved */
    snprintf(path, sizeof path, "/proc/%d/net/dev", (int)s->init_pid);
    if ((f = fopen(path, "re")) == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        char *p = strstr(line, "tap0:");
        /* tap0: rx bytes, packets, errs, drop, fifo, frame, compressed,
         * multicast, then tx bytes: what the sandbox received and sent. */
        if (p != NULL &&
            sscanf(p + 5, "%llu %llu %llu %llu %llu %llu %llu %llu %llu", &r,
                   &skip, &skip, &skip, &skip, &skip, &skip, &skip, &t) == 9) {
            *rx = r, *tx = t;
            result = 0;
        }
    }
    fclose(f);
    return result;
}
