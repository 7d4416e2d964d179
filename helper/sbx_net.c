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
 * host's private networks. Before slirp4netns starts, an nftables filter
 * is loaded into the sandbox's network namespace (by root: code inside has
 * no capability there and cannot undo it) that rejects every non-public
 * destination and every address of the host, allowing only the sandbox's
 * own loopback and slirp4netns' DNS at 10.0.2.3.
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
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbx_priv.h"

#define SBX_NFT_PATH "/usr/sbin/nft"
#define SBX_NFT_MAX  8192

/* Non-public destinations: this host, private networks, link-local,
 * shared address space, benchmark ranges, multicast. Not the
 * documentation ranges (TEST-NET-1..3): nothing on a real network lives
 * there, and where a lab puts its package mirror or proxy there, apt and
 * npm inside sandboxes must reach it; this host's own addresses, in any
 * range, are refused by the rules that follow. */
static const char sbx_nft_head[] =
    "table inet sandpipe {\n"
    " chain out {\n"
    "  type filter hook output priority 0; policy accept;\n"
    "  oifname \"lo\" accept\n"
    "  ip daddr 10.0.2.3 meta l4proto { tcp, udp } th dport 53 accept\n"
    "  ip daddr { 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8,"
    " 169.254.0.0/16, 172.16.0.0/12, 192.0.0.0/24, 192.168.0.0/16,"
    " 198.18.0.0/15, 224.0.0.0/3 } reject\n"
    "  ip6 daddr { ::/127, ::ffff:0:0/96, 64:ff9b::/96, fc00::/7,"
    " fe80::/10, ff00::/8 } reject\n";

/* Append a reject rule for every address of this host. */
static void sbx_nft_host_addrs(char *rules, size_t cap)
{
    struct ifaddrs *ifa = NULL, *i;
    char addr[INET6_ADDRSTRLEN];

    if (getifaddrs(&ifa) != 0)
        return;
    for (i = ifa; i != NULL; i = i->ifa_next) {
        size_t used = strlen(rules);
        if (i->ifa_addr == NULL)
            continue;
        if (i->ifa_addr->sa_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
                      addr, sizeof addr);
            snprintf(rules + used, cap - used, "  ip daddr %s reject\n", addr);
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            inet_ntop(AF_INET6,
                      &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, addr,
                      sizeof addr);
            snprintf(rules + used, cap - used, "  ip6 daddr %s reject\n", addr);
        }
    }
    freeifaddrs(ifa);
}

/* Load the egress filter into the network namespace of init_pid. Runs nft
 * as root in a child that has joined only that network namespace. */
static int sbx_net_filter(pid_t init_pid, char *err, size_t errlen)
{
    char rules[SBX_NFT_MAX], path[64];
    int fd = -1, status, result = -1;
    pid_t pid;

    snprintf(rules, sizeof rules, "%s", sbx_nft_head);
    sbx_nft_host_addrs(rules, sizeof rules - 16);
    strncat(rules, " }\n}\n", sizeof rules - strlen(rules) - 1);
    fd = sbx_fs_memfd("sp-nft", rules, strlen(rules));
    if (fd < 0 || access(SBX_NFT_PATH, X_OK) != 0) {
        snprintf(err, errlen,
                 "network needs nftables (%s) for the egress "
                 "filter",
                 SBX_NFT_PATH);
        goto out;
    }
    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)init_pid);
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork() failed: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* Child: only the network namespace changes; stdin is the rules. */
        int ns = open(path, O_RDONLY | O_CLOEXEC);
        char *argv[] = {"nft", "-f", "/dev/stdin", NULL};
        char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        if (ns < 0 || setns(ns, CLONE_NEWNET) != 0 || dup2(fd, 0) != 0)
            _exit(126);
        execve(SBX_NFT_PATH, argv, envp);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen,
                 "nft could not load the sandbox's egress "
                 "filter (status %d)",
                 status);
        goto out;
    }
    result = 0;
out:
    if (fd >= 0)
        close(fd);
    return result;
}

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

int sbx_net_start(pid_t init_pid, uid_t uid, gid_t gid, const int *join,
                  size_t njoin, pid_t *pid, int *exit_fd, char *err,
                  size_t errlen)
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
    if (sbx_net_filter(init_pid, err, errlen) != 0)
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
