/* sp_dns.c: DNS messages read and made for the sandbox resolver (see
 * sp_dns.h). RFC 1035 layout: a 12-byte header (id, flags, four counts),
 * the question (labels, type, class), then resource records (name, type,
 * class, TTL, data length, data). */
#include "sp_dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#define DNS_HDR 12

static uint16_t dns_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* The labels at off (no compression) into name; the offset after them,
 * or 0 when malformed. */
static size_t dns_name_read(const uint8_t *msg, size_t len, size_t off,
                            char *name)
{
    size_t out = 0;

    for (;;) {
        size_t l;
        if (off >= len)
            return 0;
        l = msg[off++];
        if (l == 0)
            break;
        if (l > 63 || off + l > len || out + l + 1 >= DNS_NAME_SIZE)
            return 0;
        if (out > 0)
            name[out++] = '.';
        for (size_t i = 0; i < l; i++) {
            uint8_t c = msg[off + i];
            if (c == '.' || c < 0x21 || c > 0x7e)
                return 0; /* nothing a policy could name */
            name[out++] = (char)c;
        }
        off += l;
    }
    name[out] = '\0';
    return off;
}

/* Skip a name at off that may end in a compression pointer; the offset
 * after it, or 0. */
static size_t dns_name_skip(const uint8_t *msg, size_t len, size_t off)
{
    for (int hops = 0; hops < 128; hops++) {
        if (off >= len)
            return 0;
        if (msg[off] == 0)
            return off + 1;
        if ((msg[off] & 0xc0) == 0xc0)
            return off + 2 <= len ? off + 2 : 0;
        if (msg[off] & 0xc0)
            return 0;
        off += 1u + msg[off];
    }
    return 0;
}

int dns_query_parse(const uint8_t *msg, size_t len, dns_question *q)
{
    size_t off;

    memset(q, 0, sizeof *q);
    if (len < DNS_HDR || len > DNS_MSG_MAX)
        return -1;
    /* QR 0, opcode 0 (QUERY); one question; no answer or authority. */
    if ((msg[2] & 0xf8) != 0 || dns_u16(msg + 4) != 1 ||
        dns_u16(msg + 6) != 0 || dns_u16(msg + 8) != 0)
        return -1;
    off = dns_name_read(msg, len, DNS_HDR, q->name);
    if (off == 0 || off + 4 > len)
        return -1;
    q->id = dns_u16(msg);
    q->qtype = dns_u16(msg + off);
    q->qclass = dns_u16(msg + off + 2);
    q->end = off + 4;
    return 0;
}

size_t dns_refusal(const uint8_t *query, const dns_question *q, int rcode,
                   uint8_t *out, size_t cap)
{
    if (q->end < DNS_HDR || q->end > cap)
        return 0;
    memcpy(out, query, q->end);
    out[2] = (uint8_t)(0x80 | (query[2] & 0x01)); /* QR, keep RD */
    out[3] = (uint8_t)(0x80 | (rcode & 0x0f));    /* RA, the code */
    memset(out + 6, 0, 6);                        /* no records */
    return q->end;
}

int dns_answer_addrs(const uint8_t *msg, size_t len, const dns_question *q,
                     dns_addr *out, size_t max, size_t *n)
{
    char name[DNS_NAME_SIZE];
    size_t off;
    unsigned ancount;

    *n = 0;
    if (len < DNS_HDR || len > DNS_MSG_MAX || dns_u16(msg) != q->id ||
        !(msg[2] & 0x80) || dns_u16(msg + 4) != 1)
        return -1;
    off = dns_name_read(msg, len, DNS_HDR, name);
    if (off == 0 || off + 4 > len || strcasecmp(name, q->name) != 0 ||
        dns_u16(msg + off) != q->qtype || dns_u16(msg + off + 2) != q->qclass)
        return -1;
    off += 4;
    ancount = dns_u16(msg + 6);
    for (unsigned i = 0; i < ancount; i++) {
        uint16_t type, klass, rdlen;
        off = dns_name_skip(msg, len, off);
        if (off == 0 || off + 10 > len)
            return -1;
        type = dns_u16(msg + off);
        klass = dns_u16(msg + off + 2);
        rdlen = dns_u16(msg + off + 8);
        if (off + 10 + rdlen > len)
            return -1;
        if (klass == 1 &&
            ((type == 1 && rdlen == 4) || (type == 28 && rdlen == 16)) &&
            *n < max) {
            dns_addr *a = &out[(*n)++];
            a->family = type == 1 ? AF_INET : AF_INET6;
            memset(a->addr, 0, sizeof a->addr);
            memcpy(a->addr, msg + off + 10, rdlen);
            a->ttl =
                (uint32_t)dns_u16(msg + off + 4) << 16 | dns_u16(msg + off + 6);
        }
        off += 10u + rdlen;
    }
    return 0;
}
