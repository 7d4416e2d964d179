/*
 * sbx_egress.c — the egress filter of a network sandbox: one nftables
 * table, "inet sandpipe", in the sandbox's own network namespace, made
 * from its policy (common/sp_netpol.h) and loaded by root (code inside has
 * no capability there and cannot change it).
 *
 * The output chain, in order (the first rule that matches decides):
 *   1. the sandbox's loopback is accepted (its own services; with a
 *      resolver, its DNS address 10.0.2.3 is on lo: hd_egress.c answers);
 *   2. always refused, whatever the policy: NETPOL_ALWAYS_* (loopback,
 *      link-local, multicast, cloud metadata, mapped IPv6) and every
 *      address of this host;
 *   3. packets of connections already made (their addresses were allowed
 *      when they started) go on;
 *   4. deny_out's addresses and address:port pairs are refused;
 *   5. DNS: to slirp4netns' 10.0.2.3 without a resolver; with one, DNS
 *      and DNS over TLS to anywhere else are refused;
 *   6. allow_out CIDRs inside a private range are accepted, then the
 *      private ranges (NETPOL_PRIVATE_*) refused;
 *   7. open (internet, no allow_out): everything else is accepted; with
 *      allow_out: its CIDRs, address:port pairs and the addresses its
 *      names resolved to (sets dyn4/dyn6 for every port, dynp4/dynp6 per
 *      port, filled by the resolver with each answer's TTL), and nothing
 *      else.
 * A policy change replaces the table in one transaction (no moment
 * without a filter); what the resolver had added goes with it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbx_priv.h"

#define SBX_NFT_PATH "/usr/sbin/nft"
#define SBX_NFT_MAX  (512 * 1024) /* 2 x 256 entries and the host's */

/* A bounded text buffer; a write past max makes it fail (sticky). */
typedef struct eg_text {
    char *s;
    size_t len, cap;
    int failed;
} eg_text;

static void eg_add(eg_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void eg_add(eg_text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->failed)
        return;
    if (t->s == NULL && (t->s = malloc(t->cap = 8192)) == NULL) {
        t->failed = 1;
        return;
    }
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        if (n < 0 || t->cap * 2 > SBX_NFT_MAX) {
            t->failed = 1;
            return;
        }
        char *g = realloc(t->s, t->cap * 2);
        if (g == NULL) {
            t->failed = 1;
            return;
        }
        t->s = g, t->cap *= 2;
    }
}

/* A reject rule for every address of this host. */
static void eg_host_addrs(eg_text *t)
{
    struct ifaddrs *ifa = NULL, *i;
    char addr[INET6_ADDRSTRLEN];

    if (getifaddrs(&ifa) != 0) {
        t->failed = 1; /* no table that might let the host through */
        return;
    }
    for (i = ifa; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL)
            continue;
        if (i->ifa_addr->sa_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
                      addr, sizeof addr);
            eg_add(t, "  ip daddr %s reject\n", addr);
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            inet_ntop(AF_INET6,
                      &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, addr,
                      sizeof addr);
            eg_add(t, "  ip6 daddr %s reject\n", addr);
        }
    }
    freeifaddrs(ifa);
}

/* The entries of list (n) of kind and family that pass pick, as the
 * rule "<match> { e, … } <verdict>", or nothing when there are none. */
static void eg_rule(eg_text *t, const netpol_entry *list, size_t n,
                    netpol_kind kind, int family, int priv_only,
                    const char *verdict)
{
    char a[INET6_ADDRSTRLEN];
    int first = 1;

    for (size_t i = 0; i < n; i++) {
        const netpol_entry *e = &list[i];
        if (e->kind != kind || e->family != family || (priv_only && !e->priv))
            continue;
        if (first)
            eg_add(t, "  %s%s daddr %s{ ",
                   kind == NETPOL_ADDR ? "meta l4proto { tcp, udp } " : "",
                   family == AF_INET ? "ip" : "ip6",
                   kind == NETPOL_ADDR ? ". th dport " : "");
        inet_ntop(family, e->addr, a, sizeof a);
        if (kind == NETPOL_ADDR)
            eg_add(t, "%s%s . %u", first ? "" : ", ", a, e->port);
        else
            eg_add(t, "%s%s/%d", first ? "" : ", ", a, e->prefix);
        first = 0;
    }
    if (!first)
        eg_add(t, " } %s\n", verdict);
}

/* Both families' rules of list for kind. */
static void eg_rules(eg_text *t, const netpol_entry *list, size_t n,
                     netpol_kind kind, int priv_only, const char *verdict)
{
    eg_rule(t, list, n, kind, AF_INET, priv_only, verdict);
    eg_rule(t, list, n, kind, AF_INET6, priv_only, verdict);
}

static const char eg_sets[] =
    " set dyn4 { type ipv4_addr; flags timeout; }\n"
    " set dyn6 { type ipv6_addr; flags timeout; }\n"
    " set dynp4 { type ipv4_addr . inet_service; flags timeout; }\n"
    " set dynp6 { type ipv6_addr . inet_service; flags timeout; }\n"
    " chain out {\n"
    "  type filter hook output priority 0; policy accept;\n"
    "  oifname \"lo\" accept\n"
    "  ip daddr { " NETPOL_ALWAYS_V4 " } reject\n"
    "  ip6 daddr { " NETPOL_ALWAYS_V6 " } reject\n";

static const char eg_allowed[] =
    "  ip daddr @dyn4 accept\n"
    "  ip6 daddr @dyn6 accept\n"
    "  meta l4proto { tcp, udp } ip daddr . th dport @dynp4 accept\n"
    "  meta l4proto { tcp, udp } ip6 daddr . th dport @dynp6 accept\n"
    "  reject\n";

/* The table for pol (replace: the old one goes in the same
 * transaction) into a malloc'd string, or NULL. */
static char *eg_table(const sp_netpol *pol, int replace)
{
    eg_text t = {0};

    if (replace)
        eg_add(&t, "table inet sandpipe\ndelete table inet sandpipe\n");
    eg_add(&t, "table inet sandpipe {\n%s", eg_sets);
    eg_host_addrs(&t);
    eg_add(&t, "  ct state established,related accept\n");
    eg_rules(&t, pol->deny, pol->ndeny, NETPOL_CIDR, 0, "reject");
    eg_rules(&t, pol->deny, pol->ndeny, NETPOL_ADDR, 0, "reject");
    if (pol->resolver)
        eg_add(&t, "  meta l4proto { tcp, udp } th dport { 53, 853 } "
                   "reject\n");
    else
        eg_add(&t, "  ip daddr 10.0.2.3 meta l4proto { tcp, udp } "
                   "th dport 53 accept\n");
    eg_rules(&t, pol->allow, pol->nallow, NETPOL_CIDR, 1, "accept");
    eg_add(&t, "  ip daddr { " NETPOL_PRIVATE_V4 " } reject\n");
    eg_add(&t, "  ip6 daddr { " NETPOL_PRIVATE_V6 " } reject\n");
    if (pol->allowlist) {
        eg_rules(&t, pol->allow, pol->nallow, NETPOL_CIDR, 0, "accept");
        eg_rules(&t, pol->allow, pol->nallow, NETPOL_ADDR, 0, "accept");
        eg_add(&t, "%s", eg_allowed);
    } else if (!pol->network) {
        eg_add(&t, "  reject\n");
    }
    eg_add(&t, " }\n}\n");
    if (t.failed) {
        free(t.s);
        return NULL;
    }
    return t.s;
}

int sbx_nft_run(int netns, const char *text, char *err, size_t errlen)
{
    int fd = sbx_fs_memfd("sp-nft", text, strlen(text)), status, result = -1;
    pid_t pid;

    if (fd < 0 || access(SBX_NFT_PATH, X_OK) != 0) {
        snprintf(err, errlen, "the egress filter needs nftables (%s)",
                 SBX_NFT_PATH);
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork() failed: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* Child: only the network namespace changes; stdin is the rules. */
        char *argv[] = {"nft", "-f", "/dev/stdin", NULL};
        char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        if (setns(netns, CLONE_NEWNET) != 0 || dup2(fd, 0) != 0)
            _exit(126);
        execve(SBX_NFT_PATH, argv, envp);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen,
                 "nft refused the sandbox's egress rules "
                 "(status %d)",
                 status);
        goto out;
    }
    result = 0;
out:
    if (fd >= 0)
        close(fd);
    return result;
}

int sbx_egress_load(pid_t init_pid, const sp_netpol *pol, int replace,
                    char *err, size_t errlen)
{
    char path[64], *text = eg_table(pol, replace);
    int ns, result = -1;

    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)init_pid);
    ns = open(path, O_RDONLY | O_CLOEXEC);
    if (text == NULL || ns < 0)
        snprintf(err, errlen, "the egress filter could not be made (%s)",
                 text == NULL ? "too large" : strerror(errno));
    else
        result = sbx_nft_run(ns, text, err, errlen);
    if (ns >= 0)
        close(ns);
    free(text);
    return result;
}
