/* sp_egress.c: public destinations only (see sp_egress.h). */
#include "sp_egress.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct egress_net {
    int family;
    const char *addr;
    int bits;
} egress_net;

/* As helper/sbx_net.c's reject rules. */
static const egress_net egress_blocked[] = {
    {AF_INET, "0.0.0.0", 8},      {AF_INET, "10.0.0.0", 8},
    {AF_INET, "100.64.0.0", 10},  {AF_INET, "127.0.0.0", 8},
    {AF_INET, "169.254.0.0", 16}, {AF_INET, "172.16.0.0", 12},
    {AF_INET, "192.0.0.0", 24},   {AF_INET, "192.168.0.0", 16},
    {AF_INET, "198.18.0.0", 15},  {AF_INET, "224.0.0.0", 3},
    {AF_INET6, "::", 127},        {AF_INET6, "::ffff:0:0", 96},
    {AF_INET6, "64:ff9b::", 96},  {AF_INET6, "fc00::", 7},
    {AF_INET6, "fe80::", 10},     {AF_INET6, "ff00::", 8},
};

static int egress_in(const unsigned char *a, const unsigned char *net, int bits)
{
    int whole = bits / 8, rest = bits % 8;

    if (memcmp(a, net, (size_t)whole) != 0)
        return 0;
    return rest == 0 ||
           ((a[whole] ^ net[whole]) & (unsigned char)(0xff << (8 - rest))) == 0;
}

/* The address bytes of sa and their family; NULL if neither family. */
static const unsigned char *egress_bytes(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (const unsigned char *)&((const struct sockaddr_in *)sa)
            ->sin_addr;
    if (sa->sa_family == AF_INET6)
        return (const unsigned char *)&((const struct sockaddr_in6 *)sa)
            ->sin6_addr;
    return NULL;
}

/* 1 if sa is one of this host's own addresses. */
static int egress_own(const struct sockaddr *sa)
{
    struct ifaddrs *ifs, *i;
    const unsigned char *a = egress_bytes(sa);
    size_t n = sa->sa_family == AF_INET ? 4 : 16;
    int own = 0;

    if (getifaddrs(&ifs) != 0)
        return 1; /* cannot tell: refuse */
    for (i = ifs; i != NULL && !own; i = i->ifa_next)
        own = i->ifa_addr != NULL && i->ifa_addr->sa_family == sa->sa_family &&
              memcmp(egress_bytes(i->ifa_addr), a, n) == 0;
    freeifaddrs(ifs);
    return own;
}

static int egress_public(const struct sockaddr *sa)
{
    const unsigned char *a = egress_bytes(sa);
    unsigned char net[16];

    if (a == NULL)
        return 0;
    for (size_t i = 0; i < sizeof egress_blocked / sizeof *egress_blocked;
         i++) {
        if (egress_blocked[i].family != sa->sa_family ||
            inet_pton(sa->sa_family, egress_blocked[i].addr, net) != 1)
            continue;
        if (egress_in(a, net, egress_blocked[i].bits))
            return 0;
    }
    return !egress_own(sa);
}

/* Resolve host; every address must be public; the first into pin. */
static const char *egress_resolve(const char *host, const char *port, char *pin,
                                  size_t pinlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    char addr[INET6_ADDRSTRLEN];
    const char *rule = NULL;

    if (getaddrinfo(host, port, &hints, &res) != 0)
        return "url_unresolved";
    for (ai = res; ai != NULL && rule == NULL; ai = ai->ai_next)
        if (!egress_public(ai->ai_addr))
            rule = "url_not_public";
    if (rule == NULL && inet_ntop(res->ai_family, egress_bytes(res->ai_addr),
                                  addr, sizeof addr) != NULL) {
        /* curl's "host:port:address" (each ":" apart from a "%s": these
         * are no Redis keys). */
        int n = snprintf(pin, pinlen,
                         res->ai_family == AF_INET6 ? "%s"
                                                      ":%s"
                                                      ":[%s]"
                                                    : "%s"
                                                      ":%s"
                                                      ":%s",
                         host, port, addr);
        if (n <= 0 || (size_t)n >= pinlen)
            rule = "url_malformed";
    }
    freeaddrinfo(res);
    return rule;
}

const char *egress_url(const char *url, char *pin, size_t pinlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
    const char *rule = "url_malformed";

    if (u == NULL ||
        curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != 0 ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != 0)
        goto out;
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rule = "url_scheme";
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == 0 ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != 0 ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != 0)
        goto out;
    if (host[0] == '[') { /* an IPv6 literal: resolve it bare */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    rule = egress_resolve(host, port, pin, pinlen);
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_url_cleanup(u);
    return rule;
}
