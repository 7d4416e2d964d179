/* tests/unit/check_gzip.c: unit tests of the bounded gzip functions
 * (common/sp_gzip.c): a round trip, several members read as one, the
 * maximum reached exactly and passed by one byte (a bomb: 64 MiB of zeros
 * from a few kilobytes stops at the maximum), truncated, corrupted and
 * trailing bytes refused, and Accept-Encoding's gzip with its weights. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sp_buf.h"
#include "sp_gzip.h"

#define T_BIG (64u * 1024 * 1024)

/* gzip of n bytes of c into z (buf_init'd by the caller). */
static void t_gz(sp_buf *z, int c, size_t n)
{
    char *p = malloc(n ? n : 1);

    ck_assert_ptr_nonnull(p);
    memset(p, c, n);
    buf_init(z, n + n / 1000 + 64);
    ck_assert_int_eq(gz_deflate(p, n, z), GZ_OK);
    free(p);
}

START_TEST(gz_round_trip_and_members)
{
    static const char text[] = "hello, hello, hello";
    sp_buf z, two, out;

    buf_init(&z, 256);
    ck_assert_int_eq(gz_deflate(text, sizeof text - 1, &z), GZ_OK);
    ck_assert_uint_eq((unsigned char)z.data[0], 0x1f);
    ck_assert_uint_eq((unsigned char)z.data[1], 0x8b);
    buf_init(&out, 64);
    ck_assert_int_eq(gz_inflate(z.data, z.len, &out), GZ_OK);
    ck_assert_str_eq(out.data, text);
    /* Two members are one body, as gzip(1) reads them. */
    buf_init(&two, 512);
    buf_append(&two, z.data, z.len);
    buf_append(&two, z.data, z.len);
    buf_reset(&out);
    ck_assert_int_eq(gz_inflate(two.data, two.len, &out), GZ_OK);
    ck_assert_uint_eq(out.len, 2 * (sizeof text - 1));
    /* Exactly the maximum fits; one byte less does not. */
    buf_free(&out);
    buf_init(&out, sizeof text - 1);
    ck_assert_int_eq(gz_inflate(z.data, z.len, &out), GZ_OK);
    buf_free(&out);
    buf_init(&out, sizeof text - 2);
    ck_assert_int_eq(gz_inflate(z.data, z.len, &out), GZ_TOO_LARGE);
    buf_free(&out);
    buf_free(&two);
    buf_free(&z);
}
END_TEST

START_TEST(gz_bomb_stops_at_the_maximum)
{
    sp_buf z, out;

    t_gz(&z, 0, T_BIG + 1);
    ck_assert_uint_lt(z.len, 128 * 1024);
    buf_init(&out, T_BIG);
    ck_assert_int_eq(gz_inflate(z.data, z.len, &out), GZ_TOO_LARGE);
    ck_assert_uint_le(out.len, T_BIG);
    buf_free(&out);
    buf_free(&z);
}
END_TEST

START_TEST(gz_refuses_malformed)
{
    sp_buf z, out, bad;

    t_gz(&z, 'a', 1000);
    buf_init(&out, 4096);
    ck_assert_int_eq(gz_inflate("", 0, &out), GZ_BAD);
    ck_assert_int_eq(gz_inflate("not gzip at all", 15, &out), GZ_BAD);
    buf_reset(&out);
    ck_assert_int_eq(gz_inflate(z.data, z.len - 4, &out), GZ_BAD);
    buf_reset(&out);
    ck_assert_int_eq(gz_inflate(z.data, 10, &out), GZ_BAD);
    buf_init(&bad, 8192);
    buf_append(&bad, z.data, z.len);
    bad.data[bad.len - 6] ^= 0x55; /* the CRC */
    buf_reset(&out);
    ck_assert_int_eq(gz_inflate(bad.data, bad.len, &out), GZ_BAD);
    buf_reset(&bad);
    buf_append(&bad, z.data, z.len);
    buf_append(&bad, "junk", 4);
    buf_reset(&out);
    ck_assert_int_eq(gz_inflate(bad.data, bad.len, &out), GZ_BAD);
    buf_free(&bad);
    buf_free(&out);
    buf_free(&z);
}
END_TEST

START_TEST(gz_accept_encoding)
{
    ck_assert_int_eq(gz_accepted(NULL), 0);
    ck_assert_int_eq(gz_accepted("gzip"), 1);
    ck_assert_int_eq(gz_accepted("deflate, GZIP"), 1);
    ck_assert_int_eq(gz_accepted("br, gzip ; q=0.5"), 1);
    ck_assert_int_eq(gz_accepted("gzip;q=0"), 0);
    ck_assert_int_eq(gz_accepted("gzip;q=0.000"), 0);
    ck_assert_int_eq(gz_accepted("identity, x-gzip2"), 0);
    ck_assert_int_eq(gz_accepted(""), 0);
}
END_TEST

static Suite *gzip_suite(void)
{
    Suite *s = suite_create("gzip");
    TCase *tc = tcase_create("gzip");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gz_round_trip_and_members);
    tcase_add_test(tc, gz_bomb_stops_at_the_maximum);
    tcase_add_test(tc, gz_refuses_malformed);
    tcase_add_test(tc, gz_accept_encoding);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gzip_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
