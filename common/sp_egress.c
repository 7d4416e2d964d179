/* sp_egress.c: public destinations only (see sp_egress.h). */
#include "sp_egress.h"
#include "sp_netpol.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

/* Public: in none of the ranges no policy opens (sp_netpol.h, the same
 * as the sandboxes' egress filter) and not this host's own. */
static int egress_public(const struct sockaddr *sa)
{
    const unsigned char *a = egress_bytes(sa);

    return a != NULL && !netpol_addr_blocked(sa->sa_family, a) &&
           !egress_own(sa);
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

/* Parse url: NULL and its host (an IPv6 literal bare) and port (curl's,
 * the caller frees both with curl_free), or the rule it breaks. */
static const char *egress_parse(const char *url, char **host, char **port)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *user = NULL;
    const char *rule = "url_malformed";

    *host = *port = NULL;
    if (u == NULL ||
        curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != 0 ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != 0)
        goto out;
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rule = "url_scheme";
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == 0 ||
        curl_url_get(u, CURLUPART_HOST, host, 0) != 0 ||
        curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) != 0)
        goto out;
    if ((*host)[0] == '[') { /* an IPv6 literal: resolve it bare */
        memmove(*host, *host + 1, strlen(*host));
        (*host)[strcspn(*host, "]")] = '\0';
    }
    rule = NULL;
out:
    if (rule != NULL) {
        curl_free(*host);
        curl_free(*port);
        *host = *port = NULL;
    }
    curl_free(scheme);
    curl_free(user);
    curl_url_cleanup(u);
    return rule;
}

const char *egress_form(const char *url)
{
    char *host, *port;
    const char *rule = egress_parse(url, &host, &port);

    curl_free(host);
    curl_free(port);
    return rule;
}

const char *egress_url(const char *url, char *pin, size_t pinlen)
{
    char *host, *port;
    const char *rule = egress_parse(url, &host, &port);

    if (rule == NULL)
        rule = egress_resolve(host, port, pin, pinlen);
    curl_free(host);
    curl_free(port);
    return rule;
}
