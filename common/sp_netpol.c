/* sp_netpol.c: the egress policy's parser, its canonical JSON and the
 * verdict on a DNS name (sp_netpol.h). Every entry is checked whole
 * before anything is kept: a CIDR's address (inet_pton) and prefix, with
 * no host bits set; a port 1..65535 in decimal; a domain's labels
 * (letters, digits, inner hyphens, 1..63 bytes, at most 253 in all, a
 * last label that is not a number). */
#include "sp_netpol.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A range of a NETPOL_* list (np_in_list parses the list's text on
 * each call: a few entries, never on a packet's path). */
typedef struct np_range {
    int family;
    uint8_t addr[16];
    int prefix;
} np_range;

/* A decimal number of len (1..5) digits in [lo, hi]; -1 if not. */
static long np_num(const char *s, size_t len, long lo, long hi)
{
    long v = 0;

    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= lo && v <= hi ? v : -1;
}

/* An address (v4 or v6) of len bytes of s into e; 0 or -1. */
static int np_addr(const char *s, size_t len, netpol_entry *e)
{
    char buf[INET6_ADDRSTRLEN + 1];

    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(e->addr, 0, sizeof e->addr);
    if (inet_pton(AF_INET, buf, e->addr) == 1)
        e->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, e->addr) == 1)
        e->family = AF_INET6;
    else
        return -1;
    return 0;
}

/* 1 if a/prefix lies inside r. */
static int np_inside(int family, const uint8_t *a, int prefix,
                     const np_range *r)
{
    if (family != r->family || prefix < r->prefix)
        return 0;
    for (int bit = 0; bit < r->prefix; bit++) {
        uint8_t m = (uint8_t)(0x80 >> (bit % 8));
        if ((a[bit / 8] & m) != (r->addr[bit / 8] & m))
            return 0;
    }
    return 1;
}

/* 1 if a/prefix lies inside one of list's ranges (NETPOL_* strings:
 * comma-separated "addr/prefix" or bare addresses). */
static int np_in_list(const char *list, int family, const uint8_t *a,
                      int prefix)
{
    char all[512], *save = NULL, *tok;

    snprintf(all, sizeof all, "%s", list);
    for (tok = strtok_r(all, ", ", &save); tok != NULL;
         tok = strtok_r(NULL, ", ", &save)) {
        char *slash = strchr(tok, '/');
        size_t n = slash != NULL ? (size_t)(slash - tok) : strlen(tok);
        netpol_entry r = {0};
        np_range range;

        if (np_addr(tok, n, &r) != 0)
            continue;
        range.family = r.family;
        memcpy(range.addr, r.addr, sizeof range.addr);
        range.prefix =
            slash != NULL ? atoi(slash + 1) : (r.family == AF_INET ? 32 : 128);
        if (np_inside(family, a, prefix, &range))
            return 1;
    }
    return 0;
}

/* 1 if e (a CIDR) lies inside a private range. */
static int np_private(const netpol_entry *e)
{
    return np_in_list(NETPOL_PRIVATE_V4 ", " NETPOL_PRIVATE_V6, e->family,
                      e->addr, e->prefix);
}

int netpol_addr_blocked(int family, const uint8_t *addr)
{
    int bits = family == AF_INET ? 32 : 128;

    if (family != AF_INET && family != AF_INET6)
        return 1;
    return np_in_list(NETPOL_ALWAYS_V4 ", " NETPOL_ALWAYS_V6, family, addr,
                      bits) ||
           np_in_list(NETPOL_PRIVATE_V4 ", " NETPOL_PRIVATE_V6, family, addr,
                      bits);
}

/* "addr/prefix" or a bare address; 0, or -1 with why. */
static int np_cidr(const char *s, netpol_entry *e, const char **why)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    long max, pfx;

    if (np_addr(s, alen, e) != 0) {
        *why = "not an IPv4 or IPv6 address";
        return -1;
    }
    max = e->family == AF_INET ? 32 : 128;
    pfx = slash ? np_num(slash + 1, strlen(slash + 1), 0, max) : max;
    if (pfx < 0) {
        *why = "prefix length out of range";
        return -1;
    }
    for (long bit = pfx; bit < max; bit++) {
        if (e->addr[bit / 8] & (0x80 >> (bit % 8))) {
            *why = "host bits set after the prefix";
            return -1;
        }
    }
    e->kind = NETPOL_CIDR;
    e->prefix = (int)pfx;
    e->priv = np_private(e);
    return 0;
}

/* A domain name of len bytes into e->name (lower case); 0 or -1. */
static int np_domain(const char *s, size_t len, netpol_entry *e)
{
    size_t label = 0, labels = 0, i;
    int digits_only = 1;

    if (len >= 2 && s[0] == '*' && s[1] == '.') {
        e->wildcard = 1;
        s += 2, len -= 2;
    }
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > NETPOL_NAME_MAX)
        return -1;
    for (i = 0; i <= len; i++) {
        char c = i < len ? (char)tolower((unsigned char)s[i]) : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return -1;
            labels++, label = 0;
            e->name[i] = '.';
            continue;
        }
        if (!(isalnum((unsigned char)c) || (c == '-' && label > 0)))
            return -1;
        digits_only = label == 0 ? isdigit((unsigned char)c) != 0
                                 : digits_only && isdigit((unsigned char)c);
        e->name[i] = c;
        label++;
    }
    e->name[len] = '\0';
    if (labels < 2 || digits_only)
        return -1;
    e->kind = NETPOL_DOMAIN;
    return 0;
}

/* "[v6]:port", "address:port" or "domain:port" (colon at the port);
 * 0, or -1 with why. */
static int np_with_port(const char *s, const char *colon, netpol_entry *e,
                        const char **why)
{
    long port = np_num(colon + 1, strlen(colon + 1), 1, 65535);

    if (port < 0) {
        *why = "port must be 1..65535";
        return -1;
    }
    e->port = (uint16_t)port;
    if (s[0] == '[') {
        *why = "not an IPv6 address in [ ]";
        if (colon < s + 2 || colon[-1] != ']' ||
            np_addr(s + 1, (size_t)(colon - s - 2), e) != 0 ||
            e->family != AF_INET6)
            return -1;
        e->kind = NETPOL_ADDR;
        return 0;
    }
    if (np_addr(s, (size_t)(colon - s), e) == 0) {
        e->kind = NETPOL_ADDR;
        return 0;
    }
    *why = "not an address or domain name before the port";
    return np_domain(s, (size_t)(colon - s), e);
}

/* One entry; 0, or -1 with why. */
static int np_entry(const char *s, netpol_entry *e, const char **why)
{
    const char *colon = strrchr(s, ':');

    memset(e, 0, sizeof *e);
    if (s[0] == '[' ||
        (colon != NULL && strchr(s, ':') == colon && strchr(s, '/') == NULL))
        return colon ? np_with_port(s, colon, e, why)
                     : (*why = "a [ ] address needs a port", -1);
    /* A CIDR, an address (IPv6 ones have colons), or a domain. */
    if (np_cidr(s, e, why) == 0)
        return 0;
    if (strchr(s, '/') != NULL || colon != NULL)
        return -1;
    *why = "not a CIDR, address:port or domain name";
    return np_domain(s, strlen(s), e);
}

/* The canonical text of e into e->text. */
static void np_text(netpol_entry *e)
{
    char a[INET6_ADDRSTRLEN];

    if (e->kind != NETPOL_DOMAIN)
        inet_ntop(e->family, e->addr, a, sizeof a);
    /* An address:port is "host" ':' "port" (the port's colon is a
     * character here: nothing in this file is a Redis key). */
    if (e->kind == NETPOL_CIDR)
        snprintf(e->text, sizeof e->text, "%s/%d", a, e->prefix);
    else if (e->kind == NETPOL_ADDR)
        snprintf(e->text, sizeof e->text, "%s%s%s%c%u",
                 e->family == AF_INET6 ? "[" : "", a,
                 e->family == AF_INET6 ? "]" : "", ':', e->port);
    else if (e->port != 0)
        snprintf(e->text, sizeof e->text, "%s%s%c%u", e->wildcard ? "*." : "",
                 e->name, ':', e->port);
    else
        snprintf(e->text, sizeof e->text, "%s%s", e->wildcard ? "*." : "",
                 e->name);
}

/* The list name of v into *out and *n; 0, or -1 with field and msg. */
static int np_list(const cJSON *obj, const char *name, netpol_entry **out,
                   size_t *n, char *field, size_t fieldlen, char *msg,
                   size_t msglen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name), *it;
    const char *why;
    int i = 0;

    if (v == NULL || cJSON_IsNull(v))
        return 0;
    snprintf(field, fieldlen, "network.%s", name);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > NETPOL_MAX_ENTRIES) {
        snprintf(msg, msglen, "%s must be an array of at most %d strings", name,
                 NETPOL_MAX_ENTRIES);
        return -1;
    }
    *out = calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof **out);
    if (*out == NULL) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    cJSON_ArrayForEach(it, v)
    {
        snprintf(field, fieldlen, "network.%s[%d]", name, i++);
        why = "must be a string";
        if (!cJSON_IsString(it) || strlen(it->valuestring) > NETPOL_ENTRY_MAX ||
            np_entry(it->valuestring, &(*out)[*n], &why) != 0) {
            snprintf(msg, msglen, "%s[%d] \"%.64s\": %s", name, i - 1,
                     cJSON_IsString(it) ? it->valuestring : "", why);
            return -1;
        }
        np_text(&(*out)[(*n)++]);
    }
    return 0;
}

int netpol_parse(const cJSON *v, sp_netpol *p, char *field, size_t fieldlen,
                 char *msg, size_t msglen)
{
    const cJSON *it, *in;

    memset(p, 0, sizeof *p);
    snprintf(field, fieldlen, "network");
    if (v == NULL || cJSON_IsNull(v) || cJSON_IsBool(v)) {
        p->network = p->internet = cJSON_IsTrue(v);
        return 0;
    }
    if (!cJSON_IsObject(v)) {
        snprintf(msg, msglen,
                 "network must be true, false or an object "
                 "{internet, allow_out, deny_out}");
        return -1;
    }
    cJSON_ArrayForEach(it, v)
    {
        if (strcmp(it->string, "internet") != 0 &&
            strcmp(it->string, "allow_out") != 0 &&
            strcmp(it->string, "deny_out") != 0) {
            snprintf(field, fieldlen, "network.%.32s", it->string);
            snprintf(msg, msglen, "network has no field \"%.32s\"", it->string);
            goto fail;
        }
    }
    in = cJSON_GetObjectItemCaseSensitive(v, "internet");
    if (in != NULL && !cJSON_IsBool(in) && !cJSON_IsNull(in)) {
        snprintf(field, fieldlen, "network.internet");
        snprintf(msg, msglen, "internet must be true or false");
        goto fail;
    }
    p->internet = cJSON_IsTrue(in);
    if (np_list(v, "allow_out", &p->allow, &p->nallow, field, fieldlen, msg,
                msglen) != 0 ||
        np_list(v, "deny_out", &p->deny, &p->ndeny, field, fieldlen, msg,
                msglen) != 0)
        goto fail;
    p->allowlist = p->nallow > 0;
    p->network = p->internet || p->allowlist;
    p->resolver = p->network && (p->nallow > 0 || p->ndeny > 0);
    return 0;
fail:
    netpol_free(p);
    return -1;
}

void netpol_free(sp_netpol *p)
{
    if (p == NULL)
        return;
    free(p->allow);
    free(p->deny);
    memset(p, 0, sizeof *p);
}

int netpol_copy(sp_netpol *dst, const sp_netpol *src)
{
    *dst = *src;
    dst->allow = dst->deny = NULL;
    if (src->nallow > 0 &&
        (dst->allow = malloc(src->nallow * sizeof *src->allow)) == NULL)
        goto fail;
    if (src->ndeny > 0 &&
        (dst->deny = malloc(src->ndeny * sizeof *src->deny)) == NULL)
        goto fail;
    if (src->nallow > 0)
        memcpy(dst->allow, src->allow, src->nallow * sizeof *src->allow);
    if (src->ndeny > 0)
        memcpy(dst->deny, src->deny, src->ndeny * sizeof *src->deny);
    return 0;
fail:
    netpol_free(dst);
    return -1;
}

cJSON *netpol_json(const sp_netpol *p)
{
    cJSON *o = cJSON_CreateObject(), *a, *d;

    if (o == NULL)
        return NULL;
    cJSON_AddBoolToObject(o, "internet", p->internet);
    a = cJSON_AddArrayToObject(o, "allow_out");
    d = cJSON_AddArrayToObject(o, "deny_out");
    for (size_t i = 0; a != NULL && i < p->nallow; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(p->allow[i].text));
    for (size_t i = 0; d != NULL && i < p->ndeny; i++)
        cJSON_AddItemToArray(d, cJSON_CreateString(p->deny[i].text));
    return o;
}

/* 1 if the domain entry e matches name (lower case, no final dot). */
static int np_name_match(const netpol_entry *e, const char *name)
{
    size_t n = strlen(name), m = strlen(e->name);

    if (e->kind != NETPOL_DOMAIN)
        return 0;
    if (!e->wildcard)
        return strcmp(name, e->name) == 0;
    return n > m + 1 && name[n - m - 1] == '.' &&
           strcmp(name + n - m, e->name) == 0;
}

int netpol_name_allowed(const sp_netpol *p, const char *name, int *all_ports,
                        uint16_t *ports, size_t maxports, size_t *nports)
{
    char low[NETPOL_NAME_MAX + 2];
    size_t n = strlen(name);
    int hit = 0;

    *all_ports = 0;
    *nports = 0;
    if (n == 0 || n > NETPOL_NAME_MAX + 1)
        return 0;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    if (low[n - 1] == '.')
        low[n - 1] = '\0';
    for (size_t i = 0; i < p->ndeny; i++)
        if (np_name_match(&p->deny[i], low))
            return 0;
    if (!p->allowlist) {
        *all_ports = 1;
        return p->network;
    }
    for (size_t i = 0; i < p->nallow; i++) {
        if (!np_name_match(&p->allow[i], low))
            continue;
        hit = 1;
        if (p->allow[i].port == 0)
            *all_ports = 1;
        else if (*nports < maxports)
            ports[(*nports)++] = p->allow[i].port;
    }
    return hit;
}
