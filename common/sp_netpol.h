/* sp_netpol.h: a sandbox's egress policy (POST /sandboxes "network", PUT
 * /sandboxes/{id}/network): parsed and validated here, once, for the
 * handler that takes it from a client and for the helper that takes it
 * from a job (hostile input in both places). The helper enforces it
 * (helper/sbx_net.c: the nftables table; helper/hd_egress.c: the
 * resolver); nothing else reads the JSON.
 *
 * The forms: true (every public address: today's network sandbox), false
 * (no network), or {internet, allow_out, deny_out}. Entries are CIDRs
 * ("10.1.0.0/16", a bare address is one host), "address:port"
 * ("[v6]:port"), or domain names ("example.com", "*.example.com" for the
 * names below it), optionally with ":port". With allow_out, only what it
 * lists is reachable (and the addresses its names resolve to, for their
 * TTL); deny_out wins over allow_out. Whatever the policy, this host, its
 * loopback, link-local, multicast and cloud metadata addresses are
 * refused (NETPOL_ALWAYS_*), and the private ranges (NETPOL_PRIVATE_*)
 * unless an allow_out CIDR inside one lists them. */
#ifndef SP_NETPOL_H
#define SP_NETPOL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define NETPOL_MAX_ENTRIES 256 /* per list */
#define NETPOL_ENTRY_MAX   270 /* bytes of one entry as given */
#define NETPOL_NAME_MAX    253 /* a domain name */

/* Destinations no policy opens (the nftables table's first rules), and
 * the private ranges an allow_out CIDR inside them may open. Comma
 * separated nftables set elements; sp_netpol.c parses the same strings. */
#define NETPOL_ALWAYS_V4                                                       \
    "0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 100.100.100.200, 224.0.0.0/3"
#define NETPOL_ALWAYS_V6                                                       \
    "::/127, ::ffff:0:0/96, 64:ff9b::/96, fe80::/10, ff00::/8, fd00:ec2::254"
#define NETPOL_PRIVATE_V4                                                      \
    "10.0.0.0/8, 100.64.0.0/10, 172.16.0.0/12, 192.0.0.0/24, "                 \
    "192.168.0.0/16, 198.18.0.0/15"
#define NETPOL_PRIVATE_V6 "fc00::/7"

typedef enum netpol_kind {
    NETPOL_CIDR,   /* family, addr, prefix; port 0 */
    NETPOL_ADDR,   /* family, addr (a host), port */
    NETPOL_DOMAIN, /* name, wildcard; port 0 (any) or one */
} netpol_kind;

typedef struct netpol_entry {
    netpol_kind kind;
    int family; /* AF_INET, AF_INET6; 0 for a domain */
    uint8_t addr[16];
    int prefix;
    uint16_t port;
    int priv;     /* a CIDR inside a private range (opens it) */
    int wildcard; /* "*.name": the names below name, not name */
    char name[NETPOL_NAME_MAX + 1];  /* a domain, lower case, no "*." */
    char text[NETPOL_ENTRY_MAX + 1]; /* canonical form, as answered */
} netpol_entry;

typedef struct sp_netpol {
    int network;   /* any network at all (else: none, as false) */
    int internet;  /* the field as given */
    int allowlist; /* allow_out given: nothing else is reachable */
    int resolver;  /* a list given: DNS only through the helper's resolver */
    netpol_entry *allow, *deny; /* owned; freed by netpol_free */
    size_t nallow, ndeny;
} sp_netpol;

/* Parse v (NULL: absent, as false) into p. Returns 0, or -1 with the
 * offending field ("network", "network.allow_out[3]") in field and the
 * reason, naming the entry, in msg; p is then empty. Free p with
 * netpol_free (also after a failure). */
int netpol_parse(const cJSON *v, sp_netpol *p, char *field, size_t fieldlen,
                 char *msg, size_t msglen);

/* Release what p holds; NULL-safe; p is empty after. */
void netpol_free(sp_netpol *p);

/* A deep copy of src into dst (freed by netpol_free). 0, or -1 (no
 * memory; dst empty). */
int netpol_copy(sp_netpol *dst, const sp_netpol *src);
/* 1 if the address (4 bytes for AF_INET, 16 for AF_INET6) is one that
 * only an explicit CIDR could open, or none: NETPOL_ALWAYS_* or
 * NETPOL_PRIVATE_* (any other family: 1). For destinations the host
 * itself reaches on a user's behalf (sp_egress.c), which no policy
 * opens. */
int netpol_addr_blocked(int family, const uint8_t *addr);

/* The canonical JSON of p: {internet, allow_out: [...], deny_out: [...]}
 * (the caller frees it), the form the API answers and jobs carry. */
cJSON *netpol_json(const sp_netpol *p);

/* The verdict on a DNS name (any case, an optional final dot) under p:
 * 0 refused, 1 allowed. When allowed under an allow list, *all_ports
 * says whether an entry without a port matched, and ports (up to
 * maxports) the ports of the entries with one that did. */
int netpol_name_allowed(const sp_netpol *p, const char *name, int *all_ports,
                        uint16_t *ports, size_t maxports, size_t *nports);

#endif
