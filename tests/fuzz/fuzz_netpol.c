/* fuzz_netpol.c: netpol_parse (common/sp_netpol.c) on any JSON, and the
 * resolver's DNS reads (common/sp_dns.c) on the same bytes as a message.
 *
 * Invariants: a refused policy is empty, with a field and a message; a
 * taken one has at most NETPOL_MAX_ENTRIES per list, network whenever it
 * has internet or an allow list, and its canonical JSON is taken again
 * as the same canonical JSON. A message read as a query has a name of
 * printable bytes within the message, and its refusal is as long as its
 * question; an answer's addresses are at most what was asked for. */
#include "fuzz_util.h"
#include "sp_dns.h"
#include "sp_netpol.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_policy(const uint8_t *data, size_t size)
{
    cJSON *v = cJSON_ParseWithLength((const char *)data, size), *j, *j2;
    char field[64], msg[256], *a, *b;
    sp_netpol p, p2;

    if (netpol_parse(v, &p, field, sizeof field, msg, sizeof msg) != 0) {
        FZ_CHECK(p.allow == NULL && p.deny == NULL, "refused, not empty");
        FZ_CHECK(field[0] != '\0' && msg[0] != '\0', "no field or message");
        cJSON_Delete(v);
        return;
    }
    FZ_CHECK(p.nallow <= NETPOL_MAX_ENTRIES && p.ndeny <= NETPOL_MAX_ENTRIES,
             "%zu/%zu entries", p.nallow, p.ndeny);
    FZ_CHECK(p.network == (p.internet || p.nallow > 0), "network");
    j = netpol_json(&p);
    FZ_CHECK(netpol_parse(j, &p2, field, sizeof field, msg, sizeof msg) == 0,
             "canonical form refused: %s %s", field, msg);
    j2 = netpol_json(&p2);
    a = cJSON_PrintUnformatted(j);
    b = cJSON_PrintUnformatted(j2);
    FZ_CHECK(a && b && strcmp(a, b) == 0, "%s became %s", a, b);
    free(a);
    free(b);
    cJSON_Delete(j);
    cJSON_Delete(j2);
    netpol_free(&p);
    netpol_free(&p2);
    cJSON_Delete(v);
}

static void fz_dns(const uint8_t *data, size_t size)
{
    static const uint8_t ask[] = {0, 0, 1, 0,   0, 1, 0, 0, 0, 0,
                                  0, 0, 1, 'a', 0, 0, 1, 0, 1};
    uint8_t out[DNS_MSG_MAX];
    dns_question q;
    dns_addr addrs[8];
    size_t n;

    if (dns_query_parse(data, size, &q) == 0) {
        FZ_CHECK(q.end <= size && strlen(q.name) < DNS_NAME_SIZE, "question");
        for (const char *c = q.name; *c; c++)
            FZ_CHECK(*c > 0x20 && *c < 0x7f, "name byte %d", *c);
        FZ_CHECK(dns_refusal(data, &q, DNS_RCODE_REFUSED, out, sizeof out) ==
                     q.end,
                 "refusal length");
    }
    FZ_CHECK(dns_query_parse(ask, sizeof ask, &q) == 0, "the fixed query");
    if (size >= 2)
        q.id = (uint16_t)(data[0] << 8 | data[1]);
    if (dns_answer_addrs(data, size, &q, addrs, 8, &n) == 0)
        FZ_CHECK(n <= 8, "%zu addresses", n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_policy(data, size);
    fz_dns(data, size);
    return 0;
}
