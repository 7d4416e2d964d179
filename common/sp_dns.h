/* sp_dns.h: the few DNS message operations the sandbox resolver needs
 * (helper/hd_egress.c), on messages from hostile senders (a sandbox's
 * queries, an upstream's answers): read a query's question, make a
 * refusal of it, and collect the A and AAAA records of an answer with
 * their TTLs. No name compression is followed into a question; every
 * offset is checked against the message's length. */
#ifndef SP_DNS_H
#define SP_DNS_H

#include <stddef.h>
#include <stdint.h>

#define DNS_MSG_MAX        4096 /* the largest message taken or sent */
#define DNS_NAME_SIZE      256  /* a name in dotted form and its NUL */
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_REFUSED  5

typedef struct dns_question {
    uint16_t id;
    char name[DNS_NAME_SIZE]; /* dotted, as sent (no final dot); "" root */
    uint16_t qtype, qclass;
    size_t end; /* offset just after the question */
} dns_question;

typedef struct dns_addr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    uint32_t ttl;
} dns_addr;

/* Read the question of a standard query (QR 0, opcode 0, one question,
 * no answers) of len bytes into q. 0, or -1 when it is not one. */
int dns_query_parse(const uint8_t *msg, size_t len, dns_question *q);

/* A reply to the query (its header and question, q->end bytes) with
 * rcode and no records into out (cap bytes). Its length, or 0. */
size_t dns_refusal(const uint8_t *query, const dns_question *q, int rcode,
                   uint8_t *out, size_t cap);

/* The A and AAAA records (class IN) of the answer section of a reply of
 * len bytes to q (same id, QR 1, the same question, any case) into out
 * (up to max; *n of them). 0, or -1 when it is not such a reply. */
int dns_answer_addrs(const uint8_t *msg, size_t len, const dns_question *q,
                     dns_addr *out, size_t max, size_t *n);

#endif
