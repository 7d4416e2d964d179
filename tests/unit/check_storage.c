/* check_storage.c: storage's pure parts: the bucket and key naming rules
 * (common/sp_objname.c), SigV4 presigned-URL signing (common/sp_sigv4.c)
 * against the example of AWS's documentation, S3's XML answers read
 * (common/sp_s3xml.c), the URLs an import may fetch (common/sp_egress.c,
 * address literals only: no lookup leaves the machine), and the percent
 * codec (common/sp_pct.c). */
#include "sp_egress.h"
#include "sp_objname.h"
#include "sp_pct.h"
#include "sp_s3xml.h"
#include "sp_sigv4.h"
#include "sp_urlcopy.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const char *key_rule(const char *k)
{
    return obj_key_rule(k, strlen(k));
}

START_TEST(names_bucket)
{
    static const struct {
        const char *name, *rule;
    } cases[] = {
        {"abc", NULL},
        {"my.bucket-1", NULL},
        {"ab", "bucket_name_length"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "bucket_name_length"},
        {"aBc", "bucket_name_characters"},
        {"a b", "bucket_name_characters"},
        {"a/b", "bucket_name_characters"},
        {".ab", "bucket_name_edges"},
        {"ab-", "bucket_name_edges"},
        {"a..b", "bucket_name_adjacent_periods"},
        {"10.0.0.1", "bucket_name_ip_address"},
        {"10.0.0.1a", NULL},
        {"xn--ab", "bucket_name_reserved_prefix"},
        {"amzn-s3-demo-x", "bucket_name_reserved_prefix"},
        {"ab-s3alias", "bucket_name_reserved_suffix"},
        {"ab.mrap", "bucket_name_reserved_suffix"},
        {"ab--x-s3", "bucket_name_reserved_suffix"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = obj_bucket_rule(cases[i].name);
        ck_assert_msg(cases[i].rule ? got && !strcmp(got, cases[i].rule)
                                    : got == NULL,
                      "%s: %s", cases[i].name, got ? got : "(valid)");
    }
}
END_TEST

START_TEST(names_key)
{
    char big[OBJ_KEY_MAX + 2];

    ck_assert_ptr_null(key_rule("a"));
    ck_assert_ptr_null(key_rule("a//b/"));
    ck_assert_ptr_null(key_rule("..a/b..c/..."));
    ck_assert_ptr_null(key_rule("d\xc3\xa9j\xc3\xa0"));
    ck_assert_str_eq(key_rule(""), "key_length");
    ck_assert_str_eq(key_rule(".."), "key_dot_segment");
    ck_assert_str_eq(key_rule("a/."), "key_dot_segment");
    ck_assert_str_eq(key_rule("a/../b"), "key_dot_segment");
    ck_assert_str_eq(key_rule("/a"), "key_absolute");
    ck_assert_str_eq(key_rule("a\nb"), "key_control_character");
    ck_assert_str_eq(key_rule("a\x7f"), "key_control_character");
    ck_assert_str_eq(key_rule("\xff"), "key_utf8");
    ck_assert_str_eq(key_rule("\xc3"), "key_utf8");
    ck_assert_str_eq(obj_key_rule("a\0b", 3), "key_control_character");
    memset(big, 'a', sizeof big);
    ck_assert_ptr_null(obj_key_rule(big, OBJ_KEY_MAX));
    ck_assert_str_eq(obj_key_rule(big, OBJ_KEY_MAX + 1), "key_length");
    /* A prefix may end where a key could not. */
    ck_assert_ptr_null(obj_prefix_rule("", 0));
    ck_assert_ptr_null(obj_prefix_rule("a/.", 3));
    ck_assert_str_eq(obj_prefix_rule("a/./", 4), "key_dot_segment");
    ck_assert_str_eq(obj_prefix_rule("/", 1), "key_absolute");
    ck_assert_ptr_null(obj_text_rule("/", 1));
}
END_TEST

/* AWS's example of a presigned GET ("Authenticating Requests: Using Query
 * Parameters", Signature Version 4): its query and its signature. */
START_TEST(sigv4_aws_example)
{
    sv4_presign p = {"GET",
                     "examplebucket.s3.amazonaws.com",
                     "/test.txt",
                     "AKIAIOSFODNN7EXAMPLE",
                     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                     "us-east-1",
                     "s3",
                     "20130524T000000Z",
                     86400};
    char q[1024], sig[SV4_SIG_SIZE];

    ck_assert_int_eq(sv4_query(&p, q, sizeof q), 0);
    ck_assert_str_eq(q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
                        "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F"
                        "aws4_request&X-Amz-Date=20130524T000000Z&"
                        "X-Amz-Expires=86400&X-Amz-SignedHeaders=host");
    ck_assert_int_eq(sv4_signature(&p, sig), 0);
    ck_assert_str_eq(sig, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d1"
                          "57751f604d404");
    /* Anything signed changes it. */
    p.method = "PUT";
    sv4_signature(&p, q);
    ck_assert_str_ne(q, sig);
}
END_TEST

START_TEST(sigv4_dates)
{
    char d[SV4_DATE_SIZE];

    sv4_date(1369353600, d);
    ck_assert_str_eq(d, "20130524T000000Z");
    ck_assert_int_eq(sv4_parse_date(d), 1369353600);
    ck_assert_int_eq(sv4_parse_date("20130524T000000"), -1);
    ck_assert_int_eq(sv4_parse_date("2013052AT000000Z"), -1);
    ck_assert_int_eq(sv4_parse_date(""), -1);
}
END_TEST

START_TEST(s3xml_read)
{
    static const char x[] =
        "<ListBucketResult><IsTruncated>true</IsTruncated>"
        "<Contents><Key>a&amp;b&lt;&#233;&#x20AC;</Key><Size>5</Size>"
        "</Contents><Contents><Key>c</Key></Contents></ListBucketResult>";
    char out[64];
    const char *p, *c;
    size_t n;

    p = s3xml_elem(x, sizeof x - 1, "Contents", &c, &n);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(s3xml_text(c, n, "Key", out, sizeof out));
    ck_assert_str_eq(out, "a&b<\xc3\xa9\xe2\x82\xac");
    ck_assert_ptr_null(s3xml_text(c, n, "Key", out, 4)); /* does not fit */
    p = s3xml_elem(p, sizeof x - 1 - (size_t)(p - x), "Contents", &c, &n);
    ck_assert_ptr_nonnull(s3xml_text(c, n, "Key", out, sizeof out));
    ck_assert_str_eq(out, "c");
    ck_assert_ptr_null(s3xml_text(c, n, "Size", out, sizeof out));
    ck_assert_ptr_nonnull(
        s3xml_text(x, sizeof x - 1, "IsTruncated", out, sizeof out));
    ck_assert_str_eq(out, "true");
    ck_assert_ptr_null(s3xml_text("<Key>open", 9, "Key", out, sizeof out));
}
END_TEST

START_TEST(egress_urls)
{
    static const struct {
        const char *url, *rule;
    } cases[] = {
        {"http://127.0.0.1/x", "url_not_public"},
        {"http://127.1.2.3:8080/", "url_not_public"},
        {"http://10.0.0.1/", "url_not_public"},
        {"http://172.31.255.255/", "url_not_public"},
        {"http://192.168.1.1/", "url_not_public"},
        {"http://169.254.169.254/latest/meta-data", "url_not_public"},
        {"http://100.64.0.1/", "url_not_public"},
        {"http://0.0.0.0/", "url_not_public"},
        {"http://224.0.0.1/", "url_not_public"},
        {"http://[::1]/", "url_not_public"},
        {"http://[::ffff:127.0.0.1]/", "url_not_public"},
        {"http://[fe80::1]/", "url_not_public"},
        {"http://[fd00::1]/", "url_not_public"},
        {"ftp://198.51.100.7/x", "url_scheme"},
        {"file:///etc/passwd", "url_scheme"},
        {"gopher://198.51.100.7/", "url_scheme"},
        {"http://user:pw@198.51.100.7/", "url_malformed"},
        {"not a url", "url_malformed"},
        {"http://198.51.100.7:8080/f", NULL},
        {"https://203.0.113.9/a/b.tar", NULL},
    };
    char pin[EGRESS_PIN_MAX];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = egress_url(cases[i].url, pin, sizeof pin);
        ck_assert_msg(cases[i].rule ? got && !strcmp(got, cases[i].rule)
                                    : got == NULL,
                      "%s: %s", cases[i].url, got ? got : "(allowed)");
    }
    ck_assert_ptr_null(
        egress_url("http://198.51.100.7:8080/f", pin, sizeof pin));
    ck_assert_str_eq(pin, "198.51.100.7:8080:198.51.100.7");
    ck_assert_ptr_null(egress_url("https://203.0.113.9/", pin, sizeof pin));
    ck_assert_str_eq(pin, "203.0.113.9:443:203.0.113.9");
}
END_TEST

/* A URL's form without resolving (the workflows' POST), and the file name
 * a URL gives (storage's import, the workflows' inputs). */
START_TEST(urlcopy_form_and_name)
{
    static const struct {
        const char *url, *name;
    } names[] = {
        {"http://198.51.100.7/a/b.tar?x=1#f", "b.tar"},
        {"http://198.51.100.7/", "download"},
        {"http://198.51.100.7", "download"},
        {"http://198.51.100.7/a/..", "download"},
        {"http://198.51.100.7/a/.", "download"},
        {"http://198.51.100.7/a/..?x=/etc/passwd", "download"},
        {"http://198.51.100.7/a/%2e%2e", "%2e%2e"},
    };
    char name[URLCOPY_NAME_MAX], *longurl;

    /* Loopback is refused only once resolved: its form is fine. */
    ck_assert_ptr_null(egress_form("http://127.0.0.1/x"));
    ck_assert_ptr_null(urlcopy_form("https://no-such-host.invalid/x"));
    ck_assert_str_eq(egress_form("file:///etc/passwd"), "url_scheme");
    ck_assert_str_eq(egress_form("http://u:p@198.51.100.7/"), "url_malformed");
    ck_assert_str_eq(egress_form("not a url"), "url_malformed");
    longurl = malloc(URLCOPY_URL_LEN + 32);
    ck_assert_ptr_nonnull(longurl);
    memset(longurl, 'a', URLCOPY_URL_LEN + 31);
    memcpy(longurl, "http://198.51.100.7/", 20);
    longurl[URLCOPY_URL_LEN + 31] = '\0';
    ck_assert_str_eq(urlcopy_form(longurl), "url_malformed");
    free(longurl);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        urlcopy_name(names[i].url, name, sizeof name);
        ck_assert_msg(strcmp(name, names[i].name) == 0, "%s: %s", names[i].url,
                      name);
    }
}
END_TEST

START_TEST(pct_codec)
{
    char out[64];
    sp_buf b;

    buf_init(&b, 64);
    ck_assert_int_eq(pct_encode(&b, "a b/\xc3\xa9~x-_.", "/"), 0);
    ck_assert_str_eq(b.data, "a%20b/%C3%A9~x-_.");
    buf_reset(&b);
    ck_assert_int_eq(pct_encode(&b, "a/b", NULL), 0);
    ck_assert_str_eq(b.data, "a%2Fb");
    buf_free(&b);
    buf_init(&b, 4);
    ck_assert_int_eq(pct_encode(&b, "a b", NULL), -1); /* past its max */
    buf_free(&b);
    ck_assert_int_eq(pct_decode("a%20b%c3%A9+", 12, 0, out, sizeof out), 6);
    ck_assert_str_eq(out, "a b\xc3\xa9+");
    ck_assert_int_eq(pct_decode("a+b", 3, 1, out, sizeof out), 3);
    ck_assert_str_eq(out, "a b");
    ck_assert_int_eq(pct_decode("%zz%4", 5, 0, out, sizeof out), 5);
    ck_assert_str_eq(out, "%zz%4");
    ck_assert_int_eq(pct_decode("a%00b", 5, 0, out, sizeof out), -2);
    ck_assert_int_eq(pct_decode("abcd", 4, 0, out, 4), -1);
    ck_assert_int_eq(pct_decode("abc", 3, 0, out, 4), 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage");
    TCase *tc = tcase_create("storage");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, names_bucket);
    tcase_add_test(tc, names_key);
    tcase_add_test(tc, sigv4_aws_example);
    tcase_add_test(tc, sigv4_dates);
    tcase_add_test(tc, s3xml_read);
    tcase_add_test(tc, egress_urls);
    tcase_add_test(tc, urlcopy_form_and_name);
    tcase_add_test(tc, pct_codec);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
