/* hd_egress.c: the sandboxes' resolver and the "network" operation.
 *
 * Theory of operation. A sandbox whose policy has lists (sp_netpol.h,
 * resolver) gets, when made or when a policy change first needs it, a
 * UDP socket bound to 10.0.2.3:53 inside its network namespace
 * (sbx_net_dns_socket: that address is then on its loopback, and its
 * resolv.conf already names it). Its nftables table refuses DNS and DNS
 * over TLS to anywhere else (sbx_egress.c). One resolver thread of the
 * helper reads every such socket:
 *   - a query for a name the policy refuses is answered NXDOMAIN at once;
 *   - an allowed one is sent, as it came, from a new connected UDP socket
 *     of the host's namespace to the upstream (SP_DNS_UPSTREAM, else the
 *     first nameserver of the host's /etc/resolv.conf); at most
 *     EG_QUERIES queries wait at once (EG_BOX_QUERIES of one sandbox;
 *     past that SERVFAIL at once), each for EG_WAIT_MS;
 *   - the upstream's answer (same id and question) is read for its A and
 *     AAAA records; under an allow list their addresses are added to the
 *     sandbox's sets (dyn4/dyn6, or dynp4/dynp6 per port for a name:port
 *     entry) with the answer's TTL (EG_TTL_MIN..EG_TTL_MAX) by nft in the
 *     sandbox's namespace, and only then is the answer passed on, so the
 *     connection that follows finds its address allowed.
 * The thread never touches Redis, hd_pub or the helper's lists: the main
 * thread registers a sandbox (its socket, an fd on its namespace, a copy
 * of its policy), replaces its policy and unregisters it under eg_lock;
 * the thread closes what was unregistered (so no fd it polls is closed
 * under it) and is woken through a pipe. */
#include "hd.h"
#include "sp_config.h"
#include "sp_dns.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define EG_QUERIES     256   /* queries waiting for the upstream at once */
#define EG_BOX_QUERIES 32    /* of them one sandbox's: it cannot take all */
#define EG_WAIT_MS     4000  /* how long one waits */
#define EG_TTL_MIN     10    /* s: an address outlives the connect after it */
#define EG_TTL_MAX     86400 /* s */
#define EG_ADDRS       32    /* addresses taken from one answer */
#define EG_PORTS       16    /* name:port entries one name matches */
#define EG_POLL_MAX    (HD_MAX_SLOTS + EG_QUERIES + 1)

typedef struct eg_box {
    char id[SP_ID_SIZE];
    int dns;   /* the socket at 10.0.2.3:53 inside the sandbox */
    int netns; /* its network namespace */
    sp_netpol pol;
    struct eg_box *next;
} eg_box;

typedef struct eg_query {
    int up; /* connected to the upstream; -1: a free slot */
    char box[SP_ID_SIZE];
    struct sockaddr_storage from; /* who asked, inside the sandbox */
    socklen_t fromlen;
    dns_question q;
    long long deadline_ms;
} eg_query;

static pthread_mutex_t eg_lock = PTHREAD_MUTEX_INITIALIZER;
static eg_box *eg_boxes, *eg_dead; /* registered; to be closed */
static int eg_wake[2] = {-1, -1};
static struct sockaddr_storage eg_up; /* the upstream */
static socklen_t eg_uplen;
static eg_query eg_q[EG_QUERIES]; /* the thread's own */

/* "a", "a:port", "v6", "[v6]:port" into eg_up; 0 or -1. */
static int eg_upstream_parse(const char *s)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    long port = 53;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&eg_up;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&eg_up;

    snprintf(host, sizeof host, "%s", s);
    if (s[0] == '[' && colon != NULL && colon[-1] == ']') {
        snprintf(host, sizeof host, "%.*s", (int)(colon - s - 2), s + 1);
        port = strtol(colon + 1, NULL, 10);
    } else if (colon != NULL && strchr(s, ':') == colon) {
        snprintf(host, sizeof host, "%.*s", (int)(colon - s), s);
        port = strtol(colon + 1, NULL, 10);
    }
    memset(&eg_up, 0, sizeof eg_up);
    if (port < 1 || port > 65535)
        return -1;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        eg_uplen = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        eg_uplen = sizeof *v6;
    } else {
        return -1;
    }
    return 0;
}

/* The upstream: SP_DNS_UPSTREAM, or the host's first nameserver. */
static void eg_upstream_init(void)
{
    const char *cfg = cfg_str(CFG_SP_DNS_UPSTREAM);
    char line[256], ns[128] = "";
    FILE *f;

    if (cfg[0] == '\0' && (f = fopen("/etc/resolv.conf", "re")) != NULL) {
        while (ns[0] == '\0' && fgets(line, sizeof line, f) != NULL)
            if (sscanf(line, " nameserver %127s", ns) != 1)
                ns[0] = '\0';
        fclose(f);
    }
    if (eg_upstream_parse(cfg[0] ? cfg : ns) != 0)
        log_error("the sandbox resolver has no upstream (SP_DNS_UPSTREAM "
                  "\"%s\", resolv.conf \"%s\"): allowed names fail",
                  cfg, ns);
}

static eg_box *eg_find(const char *id)
{
    for (eg_box *b = eg_boxes; b != NULL; b = b->next)
        if (strcmp(b->id, id) == 0)
            return b;
    return NULL;
}

/* Answer q (from query) with rcode. */
static void eg_refuse(eg_box *b, const uint8_t *query, const dns_question *q,
                      const struct sockaddr_storage *from, socklen_t fromlen,
                      int rcode)
{
    uint8_t out[DNS_MSG_MAX];
    size_t n = dns_refusal(query, q, rcode, out, sizeof out);

    if (n > 0)
        sendto(b->dns, out, n, MSG_DONTWAIT, (const struct sockaddr *)from,
               fromlen);
}

/* A free query slot for b, or NULL when all are taken or b has
 * EG_BOX_QUERIES waiting already. */
static eg_query *eg_slot(const eg_box *b)
{
    eg_query *free_slot = NULL;
    int waiting = 0;

    for (size_t k = 0; k < EG_QUERIES; k++) {
        if (eg_q[k].up < 0 && free_slot == NULL)
            free_slot = &eg_q[k];
        else if (eg_q[k].up >= 0 && strcmp(eg_q[k].box, b->id) == 0)
            waiting++;
    }
    return waiting < EG_BOX_QUERIES ? free_slot : NULL;
}

/* A query of box b is readable: refuse it or send it upstream. */
static void eg_on_query(eg_box *b, long long now)
{
    uint8_t buf[DNS_MSG_MAX];
    eg_query *s;
    int all;
    uint16_t ports[EG_PORTS];
    size_t np;

    for (int round = 0; round < 16; round++) {
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof from;
        dns_question q;
        ssize_t n = recvfrom(b->dns, buf, sizeof buf, MSG_DONTWAIT,
                             (struct sockaddr *)&from, &fromlen);
        if (n < 0)
            return;
        if (dns_query_parse(buf, (size_t)n, &q) != 0)
            continue; /* not a query: nothing to answer */
        if (!netpol_name_allowed(&b->pol, q.name, &all, ports, EG_PORTS, &np)) {
            eg_refuse(b, buf, &q, &from, fromlen, DNS_RCODE_NXDOMAIN);
            continue;
        }
        s = eg_slot(b);
        if (s == NULL || eg_uplen == 0 ||
            (s->up = socket(eg_up.ss_family,
                            SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) <
                0 ||
            connect(s->up, (struct sockaddr *)&eg_up, eg_uplen) != 0 ||
            send(s->up, buf, (size_t)n, 0) != n) {
            if (s != NULL && s->up >= 0)
                close(s->up), s->up = -1;
            eg_refuse(b, buf, &q, &from, fromlen, DNS_RCODE_SERVFAIL);
            continue;
        }
        snprintf(s->box, sizeof s->box, "%s", b->id);
        s->from = from, s->fromlen = fromlen, s->q = q;
        s->deadline_ms = now + EG_WAIT_MS;
    }
}

/* nft commands adding addrs (n) to b's sets for the name of q. */
static int eg_allow(eg_box *b, const dns_question *q, const dns_addr *addrs,
                    size_t n)
{
    char text[EG_ADDRS * (EG_PORTS + 1) * 96], a[INET6_ADDRSTRLEN], err[256];
    uint16_t ports[EG_PORTS];
    size_t np, len = 0;
    int all;

    if (!b->pol.allowlist || n == 0)
        return 0; /* open: every public address is reachable anyway */
    netpol_name_allowed(&b->pol, q->name, &all, ports, EG_PORTS, &np);
    for (size_t i = 0; i < n && len < sizeof text - 200; i++) {
        unsigned ttl = addrs[i].ttl < EG_TTL_MIN   ? EG_TTL_MIN
                       : addrs[i].ttl > EG_TTL_MAX ? EG_TTL_MAX
                                                   : addrs[i].ttl;
        const char *v = addrs[i].family == AF_INET ? "4" : "6";
        inet_ntop(addrs[i].family, addrs[i].addr, a, sizeof a);
        if (all)
            len += (size_t)snprintf(text + len, sizeof text - len,
                                    "add element inet sandpipe dyn%s "
                                    "{ %s timeout %us }\n",
                                    v, a, ttl);
        for (size_t p = 0; !all && p < np && len < sizeof text - 100; p++)
            len += (size_t)snprintf(text + len, sizeof text - len,
                                    "add element inet sandpipe dynp%s "
                                    "{ %s . %u timeout %us }\n",
                                    v, a, ports[p], ttl);
    }
    if (sbx_nft_run(b->netns, text, err, sizeof err) != 0) {
        log_error("sandbox %s: the addresses of %s were not allowed: %s", b->id,
                  q->name, err);
        return -1;
    }
    return 0;
}

/* The upstream answered query s (or s timed out: timed_out). */
static void eg_on_answer(eg_query *s, int timed_out)
{
    uint8_t buf[DNS_MSG_MAX];
    dns_addr addrs[EG_ADDRS];
    size_t n = 0;
    ssize_t len = timed_out ? -1 : recv(s->up, buf, sizeof buf, 0);
    eg_box *b = eg_find(s->box);

    if (!timed_out && (len < 0 || dns_answer_addrs(buf, (size_t)len, &s->q,
                                                   addrs, EG_ADDRS, &n) != 0))
        return; /* not its answer: it may still come */
    if (b != NULL && len > 0 && eg_allow(b, &s->q, addrs, n) == 0)
        sendto(b->dns, buf, (size_t)len, MSG_DONTWAIT,
               (struct sockaddr *)&s->from, s->fromlen);
    close(s->up);
    s->up = -1;
}

/* Close what the main thread unregistered (under eg_lock). */
static void eg_reap(void)
{
    while (eg_dead != NULL) {
        eg_box *b = eg_dead;
        eg_dead = b->next;
        close(b->dns);
        close(b->netns);
        netpol_free(&b->pol);
        free(b);
    }
}

/* One pass: poll every socket, then handle what is ready. */
static void eg_pass(struct pollfd *pfd, eg_box **who)
{
    size_t n = 1, i;
    long long now;
    char c;

    pthread_mutex_lock(&eg_lock);
    eg_reap();
    for (eg_box *b = eg_boxes; b != NULL && n < EG_POLL_MAX; b = b->next)
        pfd[n] = (struct pollfd){b->dns, POLLIN, 0}, who[n++] = b;
    for (i = 0; i < EG_QUERIES; i++)
        if (eg_q[i].up >= 0)
            pfd[n] = (struct pollfd){eg_q[i].up, POLLIN, 0}, who[n++] = NULL;
    pthread_mutex_unlock(&eg_lock);
    if (poll(pfd, n, 500) < 0)
        return;
    while (read(eg_wake[0], &c, 1) == 1)
        ;
    now = hd_now_ms();
    pthread_mutex_lock(&eg_lock);
    for (i = 1; i < n; i++) {
        if (!(pfd[i].revents & (POLLIN | POLLERR)))
            continue;
        if (who[i] != NULL && who[i]->dns == pfd[i].fd)
            eg_on_query(who[i], now);
        for (size_t k = 0; who[i] == NULL && k < EG_QUERIES; k++)
            if (eg_q[k].up == pfd[i].fd)
                eg_on_answer(&eg_q[k], 0);
    }
    for (i = 0; i < EG_QUERIES; i++)
        if (eg_q[i].up >= 0 && eg_q[i].deadline_ms < now)
            eg_on_answer(&eg_q[i], 1);
    pthread_mutex_unlock(&eg_lock);
}

static void *eg_thread(void *arg)
{
    static struct pollfd pfd[EG_POLL_MAX];
    static eg_box *who[EG_POLL_MAX];

    (void)arg;
    pfd[0] = (struct pollfd){eg_wake[0], POLLIN, 0};
    for (;;)
        eg_pass(pfd, who);
    return NULL;
}

int hd_egress_init(void)
{
    pthread_t t;

    for (size_t i = 0; i < EG_QUERIES; i++)
        eg_q[i].up = -1;
    eg_upstream_init();
    if (pipe2(eg_wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
        pthread_create(&t, NULL, eg_thread, NULL) != 0) {
        log_error("the sandbox resolver did not start: %s", strerror(errno));
        return -1;
    }
    pthread_detach(t);
    return 0;
}

static void eg_poke(void)
{
    if (write(eg_wake[1], "w", 1) < 0) {
        /* full: the thread wakes anyway */
    }
}

int hd_egress_attach(hd_sandbox *s)
{
    eg_box *b = calloc(1, sizeof *b);

    if (b == NULL || netpol_copy(&b->pol, &s->net) != 0 ||
        (b->netns = sbx_net_netns(s->sbx)) < 0) {
        if (b != NULL)
            netpol_free(&b->pol);
        free(b);
        return -1;
    }
    snprintf(b->id, sizeof b->id, "%s", s->id);
    b->dns = s->dns_fd;
    s->dns_fd = -1;
    s->resolving = 1;
    pthread_mutex_lock(&eg_lock);
    b->next = eg_boxes;
    eg_boxes = b;
    pthread_mutex_unlock(&eg_lock);
    eg_poke();
    return 0;
}

void hd_egress_detach(hd_sandbox *s)
{
    pthread_mutex_lock(&eg_lock);
    for (eg_box **pp = &eg_boxes; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, s->id) == 0) {
            eg_box *b = *pp;
            *pp = b->next;
            b->next = eg_dead;
            eg_dead = b;
            break;
        }
    }
    pthread_mutex_unlock(&eg_lock);
    s->resolving = 0;
    eg_poke();
}

/* s's resolver follows s->net (registered first when it needs one and
 * has none). 0, or -1 with err. */
static int eg_follow(hd_sandbox *s, char *err, size_t errlen)
{
    eg_box *b;
    sp_netpol copy;

    if (!s->resolving) {
        if (!s->net.resolver)
            return 0;
        if ((s->dns_fd = sbx_net_dns_socket(s->sbx, err, errlen)) < 0)
            return -1;
        if (hd_egress_attach(s) == 0)
            return 0;
        close(s->dns_fd);
        s->dns_fd = -1;
        snprintf(err, errlen, "the resolver could not take the sandbox");
        return -1;
    }
    if (netpol_copy(&copy, &s->net) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_lock(&eg_lock);
    if ((b = eg_find(s->id)) != NULL) {
        netpol_free(&b->pol);
        b->pol = copy;
    }
    pthread_mutex_unlock(&eg_lock);
    if (b == NULL)
        netpol_free(&copy);
    return 0;
}

void hd_egress_record(const hd_sandbox *s)
{
    char k[RDS_KEY_MAX];
    cJSON *j = netpol_json(&s->net);
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;

    key_of(k, sizeof k, KEY_SBX, s->id);
    hd_pub("HSET %s network %s netpol %s", k, s->net.network ? "1" : "0",
           text ? text : "{}");
    free(text);
    cJSON_Delete(j);
}

void hd_op_network(hd_sandbox *s, hd_job *job)
{
    char field[64], msg[256], err[256];
    sp_netpol pol, old = s->net;
    cJSON *rep;

    if (netpol_parse(cJSON_GetObjectItemCaseSensitive(job->args, "netpol"),
                     &pol, field, sizeof field, msg, sizeof msg) != 0) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "%s: %s", field, msg);
        return;
    }
    if (!s->network && pol.network) {
        netpol_free(&pol);
        hd_reply_err(job->rid, SP_E_CONFLICT,
                     "the sandbox was made without network; make one with "
                     "network to give it a policy");
        return;
    }
    s->net = pol;
    /* The resolver first: the new table refuses DNS elsewhere. */
    if (s->network && (eg_follow(s, err, sizeof err) != 0 ||
                       sbx_net_policy(s->sbx, &pol, err, sizeof err) != 0)) {
        log_error("sandbox %s: the new egress policy failed: %s", s->id, err);
        s->net = old;
        eg_follow(s, err, sizeof err);
        netpol_free(&pol);
        hd_reply_err(job->rid, SP_E_UNAVAILABLE, "the policy was not applied");
        return;
    }
    netpol_free(&old);
    hd_egress_record(s);
    rep = cJSON_CreateObject();
    cJSON_AddItemToObject(rep, "network", netpol_json(&s->net));
    hd_reply(job->rid, rep, NULL, 0);
}
