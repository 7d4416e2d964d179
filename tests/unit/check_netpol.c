/* check_netpol.c: the egress policy (common/sp_netpol.c): the forms it
 * takes and their canonical JSON, what it refuses (naming the entry), the
 * private ranges an allow_out CIDR opens, the verdict on DNS names; and
 * the resolver's DNS messages (common/sp_dns.c): questions, refusals,
 * the addresses of answers, malformed ones refused. */
#include "sp_dns.h"
#include "sp_netpol.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse text (JSON); 0 or -1 with field and msg. */
static int parse(const char *text, sp_netpol *p, char *field, char *msg)
{
    cJSON *v = cJSON_Parse(text);
    int rc;

    ck_assert_msg(v != NULL, "bad JSON in the test: %s", text);
    rc = netpol_parse(v, p, field, 64, msg, 256);
    cJSON_Delete(v);
    return rc;
}

/* text is taken, and its canonical JSON is want. */
static void taken(const char *text, const char *want)
{
    char field[64], msg[256], *got;
    sp_netpol p;
    cJSON *j;

    ck_assert_msg(parse(text, &p, field, msg) == 0, "%s refused: %s: %s", text,
                  field, msg);
    j = netpol_json(&p);
    got = cJSON_PrintUnformatted(j);
    ck_assert_msg(strcmp(got, want) == 0, "%s: %s, wanted %s", text, got, want);
    free(got);
    cJSON_Delete(j);
    netpol_free(&p);
}

/* text is refused with field, and msg names entry. */
static void refused(const char *text, const char *want_field, const char *entry)
{
    char field[64], msg[256];
    sp_netpol p;

    ck_assert_msg(parse(text, &p, field, msg) == -1, "taken: %s", text);
    ck_assert_msg(strcmp(field, want_field) == 0, "%s: field %s, wanted %s",
                  text, field, want_field);
    ck_assert_msg(strstr(msg, entry) != NULL, "%s: \"%s\" does not name %s",
                  text, msg, entry);
    ck_assert(p.allow == NULL && p.deny == NULL && p.nallow == 0);
}

START_TEST(netpol_forms)
{
    char field[64], msg[256];
    sp_netpol p;

    ck_assert_int_eq(parse("true", &p, field, msg), 0);
    ck_assert(p.network && p.internet && !p.allowlist && !p.resolver);
    ck_assert_int_eq(parse("false", &p, field, msg), 0);
    ck_assert(!p.network);
    ck_assert_int_eq(netpol_parse(NULL, &p, field, 64, msg, 256), 0);
    ck_assert(!p.network);
    ck_assert_int_eq(parse("{\"deny_out\":[\"1.2.3.4\"]}", &p, field, msg), 0);
    ck_assert(!p.network && !p.resolver); /* no internet, no allow list */
    netpol_free(&p);
    ck_assert_int_eq(parse("{\"allow_out\":[\"a.example\"]}", &p, field, msg),
                     0);
    ck_assert(p.network && !p.internet && p.allowlist && p.resolver);
    netpol_free(&p);
    taken("{\"internet\":true}",
          "{\"internet\":true,\"allow_out\":[],\"deny_out\":[]}");
    taken("{\"allow_out\":[\"10.1.0.0/16\",\"1.2.3.4\",\"fd00::/8\","
          "\"[fd00::1]:443\",\"9.9.9.9:53\",\"*.Example.COM.\","
          "\"api.example.com:8443\",\"::\"],\"deny_out\":null}",
          "{\"internet\":false,\"allow_out\":[\"10.1.0.0/16\",\"1.2.3.4/32\","
          "\"fd00::/8\",\"[fd00::1]:443\",\"9.9.9.9:53\",\"*.example.com\","
          "\"api.example.com:8443\",\"::/128\"],\"deny_out\":[]}");
}
END_TEST

START_TEST(netpol_refused)
{
    char big[256 * 16 + 64];
    size_t n;

    refused("\"yes\"", "network", "network");
    refused("7", "network", "network");
    refused("{\"internet\":1}", "network.internet", "internet");
    refused("{\"public\":true}", "network.public", "public");
    refused("{\"allow_out\":\"a.example\"}", "network.allow_out", "allow_out");
    refused("{\"allow_out\":[\"10.0.0.0/33\"]}", "network.allow_out[0]",
            "10.0.0.0/33");
    refused("{\"allow_out\":[\"a.example\",\"10.1.2.3/8\"]}",
            "network.allow_out[1]", "10.1.2.3/8");
    refused("{\"allow_out\":[\"fd00::1/129\"]}", "network.allow_out[0]",
            "fd00::1/129");
    refused("{\"allow_out\":[\"1.2.3.4/\"]}", "network.allow_out[0]",
            "1.2.3.4/");
    refused("{\"allow_out\":[\"256.1.1.1\"]}", "network.allow_out[0]",
            "256.1.1.1");
    refused("{\"allow_out\":[\"a.example:0\"]}", "network.allow_out[0]",
            "a.example:0");
    refused("{\"allow_out\":[\"a.example:65536\"]}", "network.allow_out[0]",
            "65536");
    refused("{\"allow_out\":[\"a.example:+80\"]}", "network.allow_out[0]",
            "+80");
    refused("{\"allow_out\":[\"[1.2.3.4]:80\"]}", "network.allow_out[0]",
            "[1.2.3.4]:80");
    refused("{\"allow_out\":[\"[::1]\"]}", "network.allow_out[0]", "[::1]");
    refused("{\"deny_out\":[\"a..example\"]}", "network.deny_out[0]", "a..");
    refused("{\"deny_out\":[\"-a.example\"]}", "network.deny_out[0]", "-a");
    refused("{\"deny_out\":[\"a-.example\"]}", "network.deny_out[0]", "a-.");
    refused("{\"deny_out\":[\"a_b.example\"]}", "network.deny_out[0]", "a_b");
    refused("{\"deny_out\":[\"localhost\"]}", "network.deny_out[0]",
            "localhost");
    refused("{\"deny_out\":[\"*.\"]}", "network.deny_out[0]", "*.");
    refused("{\"deny_out\":[\"a.*.example\"]}", "network.deny_out[0]", "a.*");
    refused("{\"deny_out\":[\"\"]}", "network.deny_out[0]", "deny_out[0]");
    refused("{\"deny_out\":[null]}", "network.deny_out[0]", "deny_out[0]");
    refused("{\"deny_out\":[\"a.example\",\"1.2.3.4\",7]}",
            "network.deny_out[2]", "deny_out[2]");
    /* 257 entries. */
    n = (size_t)snprintf(big, sizeof big, "{\"allow_out\":[");
    for (int i = 0; i < 257; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s\"h%d.example\"",
                              i ? "," : "", i);
    snprintf(big + n, sizeof big - n, "]}");
    refused(big, "network.allow_out", "256");
}
END_TEST

START_TEST(netpol_private_ranges)
{
    char field[64], msg[256];
    sp_netpol p;

    ck_assert_int_eq(parse("{\"allow_out\":[\"10.2.0.0/16\",\"0.0.0.0/0\","
                           "\"192.168.1.7\",\"172.15.0.0/16\",\"fd12::/16\","
                           "\"100.64.0.0/10\",\"10.0.0.0/7\"]}",
                           &p, field, msg),
                     0);
    ck_assert_int_eq(p.allow[0].priv, 1); /* inside 10/8 */
    ck_assert_int_eq(p.allow[1].priv, 0); /* all of it: not explicit */
    ck_assert_int_eq(p.allow[2].priv, 1);
    ck_assert_int_eq(p.allow[3].priv, 0); /* outside 172.16/12 */
    ck_assert_int_eq(p.allow[4].priv, 1); /* inside fc00::/7 */
    ck_assert_int_eq(p.allow[5].priv, 1);
    ck_assert_int_eq(p.allow[6].priv, 0); /* wider than 10/8 */
    netpol_free(&p);
}
END_TEST

static int blocked(const char *text)
{
    uint8_t a[16];

    if (inet_pton(AF_INET, text, a) == 1)
        return netpol_addr_blocked(AF_INET, a);
    ck_assert_int_eq(inet_pton(AF_INET6, text, a), 1);
    return netpol_addr_blocked(AF_INET6, a);
}

START_TEST(netpol_addresses_blocked)
{
    static const char *const no[] = {
        "127.0.0.1",
        "0.1.2.3",
        "10.1.2.3",
        "100.64.0.1",
        "169.254.169.254",
        "172.16.5.5",
        "172.31.255.255",
        "192.168.1.1",
        "192.0.0.8",
        "198.19.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "::ffff:1.2.3.4",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "64:ff9b::808:808",
    };
    static const char *const yes[] = {
        "1.1.1.1",     "8.8.8.8",     "172.32.0.1",  "198.51.100.7",
        "203.0.113.9", "100.128.0.1", "2001:db8::1", "2606:4700::1111",
    };
    uint8_t any[16] = {0};

    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        ck_assert_msg(blocked(no[i]), "%s should be blocked", no[i]);
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        ck_assert_msg(!blocked(yes[i]), "%s should be open", yes[i]);
    ck_assert_int_eq(netpol_addr_blocked(AF_UNIX, any), 1);
}
END_TEST

START_TEST(netpol_names)
{
    char field[64], msg[256];
    uint16_t ports[4];
    size_t np;
    int all;
    sp_netpol p;

    ck_assert_int_eq(
        parse(
            "{\"allow_out\":[\"*.a.example\",\"b.example:443\","
            "\"b.example:8443\",\"c.example\"],\"deny_out\":[\"x.a.example\"]}",
            &p, field, msg),
        0);
    ck_assert(netpol_name_allowed(&p, "y.a.example", &all, ports, 4, &np));
    ck_assert(all && np == 0);
    ck_assert(netpol_name_allowed(&p, "Z.Y.A.Example.", &all, ports, 4, &np));
    ck_assert(!netpol_name_allowed(&p, "a.example", &all, ports, 4, &np));
    ck_assert(!netpol_name_allowed(&p, "xa.example", &all, ports, 4, &np));
    ck_assert(!netpol_name_allowed(&p, "x.a.example", &all, ports, 4, &np));
    ck_assert(netpol_name_allowed(&p, "b.example", &all, ports, 4, &np));
    ck_assert(!all && np == 2 && ports[0] == 443 && ports[1] == 8443);
    ck_assert(netpol_name_allowed(&p, "c.example", &all, ports, 4, &np));
    ck_assert(!netpol_name_allowed(&p, "d.example", &all, ports, 4, &np));
    ck_assert(!netpol_name_allowed(&p, "", &all, ports, 4, &np));
    netpol_free(&p);
    ck_assert_int_eq(
        parse("{\"internet\":true,\"deny_out\":[\"*.bad.example\"]}", &p, field,
              msg),
        0);
    ck_assert(netpol_name_allowed(&p, "anything.example", &all, ports, 4, &np));
    ck_assert(!netpol_name_allowed(&p, "a.bad.example", &all, ports, 4, &np));
    netpol_free(&p);
    ck_assert_int_eq(parse("false", &p, field, msg), 0);
    ck_assert(!netpol_name_allowed(&p, "a.example", &all, ports, 4, &np));
}
END_TEST

/* A query for name (type A) into buf; its length. */
static size_t query(uint8_t *buf, const char *name)
{
    size_t n = 12;

    memset(buf, 0, 12);
    buf[0] = 0xab, buf[1] = 0xcd, buf[2] = 0x01, buf[5] = 1;
    for (const char *l = name; *l;) {
        size_t len = strcspn(l, ".");
        buf[n++] = (uint8_t)len;
        memcpy(buf + n, l, len);
        n += len;
        l += len + (l[len] == '.');
    }
    buf[n++] = 0;
    buf[n++] = 0, buf[n++] = 1, buf[n++] = 0, buf[n++] = 1;
    return n;
}

START_TEST(dns_messages)
{
    uint8_t q[512], a[512], r[512];
    dns_question dq;
    dns_addr addrs[4];
    size_t qn = query(q, "Ok.Example"), an, n;
    static const uint8_t rr_a[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0,
                                   0,    60,   0, 4, 9, 8, 7, 6};
    static const uint8_t rr_cname[] = {0xc0, 0x0c, 0, 5, 0, 1,    0,
                                       0,    0,    9, 0, 2, 0xc0, 0x0c};

    ck_assert_int_eq(dns_query_parse(q, qn, &dq), 0);
    ck_assert_str_eq(dq.name, "Ok.Example");
    ck_assert_uint_eq(dq.id, 0xabcd);
    ck_assert_uint_eq(dq.qtype, 1);
    ck_assert_uint_eq(dns_refusal(q, &dq, DNS_RCODE_NXDOMAIN, r, sizeof r), qn);
    ck_assert_uint_eq(r[2] & 0x80, 0x80);
    ck_assert_uint_eq(r[3] & 0x0f, DNS_RCODE_NXDOMAIN);
    /* An answer: a CNAME, then an A record (TTL 60). */
    memcpy(a, q, qn);
    a[2] |= 0x80, a[7] = 2;
    memcpy(a + qn, rr_cname, sizeof rr_cname);
    memcpy(a + qn + sizeof rr_cname, rr_a, sizeof rr_a);
    an = qn + sizeof rr_cname + sizeof rr_a;
    ck_assert_int_eq(dns_answer_addrs(a, an, &dq, addrs, 4, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(addrs[0].family, AF_INET);
    ck_assert_uint_eq(addrs[0].ttl, 60);
    ck_assert(memcmp(addrs[0].addr, "\x09\x08\x07\x06", 4) == 0);
    /* Cut short anywhere: refused, never read past the end. */
    for (size_t cut = 0; cut < an; cut++)
        ck_assert_int_eq(dns_answer_addrs(a, cut, &dq, addrs, 4, &n), -1);
    /* Another id, another question, or not an answer: refused. */
    a[1] ^= 1;
    ck_assert_int_eq(dns_answer_addrs(a, an, &dq, addrs, 4, &n), -1);
    a[1] ^= 1, a[13] ^= 0x20; /* "ok" in another case is the same */
    ck_assert_int_eq(dns_answer_addrs(a, an, &dq, addrs, 4, &n), 0);
    a[13] = 'x';
    ck_assert_int_eq(dns_answer_addrs(a, an, &dq, addrs, 4, &n), -1);
    ck_assert_int_eq(dns_answer_addrs(q, qn, &dq, addrs, 4, &n), -1);
    /* Queries that are not: an answer, two questions, a pointer, short. */
    ck_assert_int_eq(dns_query_parse(a, an, &dq), -1);
    q[5] = 2;
    ck_assert_int_eq(dns_query_parse(q, qn, &dq), -1);
    q[5] = 1, q[12] = 0xc0;
    ck_assert_int_eq(dns_query_parse(q, qn, &dq), -1);
    ck_assert_int_eq(dns_query_parse(q, 11, &dq), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("netpol");
    TCase *tc = tcase_create("parse");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, netpol_forms);
    tcase_add_test(tc, netpol_refused);
    tcase_add_test(tc, netpol_private_ranges);
    tcase_add_test(tc, netpol_addresses_blocked);
    tcase_add_test(tc, netpol_names);
    tcase_add_test(tc, dns_messages);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
