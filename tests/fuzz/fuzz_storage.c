/* fuzz_storage.c: what the storage family parses from outside: S3's XML
 * answers (common/sp_s3xml.c) and object and bucket names
 * (common/sp_objname.c).
 *
 * Input: the bytes, read as an XML answer and as a name. Invariants: a
 * text found lies in the input, fits its buffer and is NUL-terminated,
 * and the scan moves forward; a key taken is valid UTF-8 without control
 * bytes, not absolute and without "." or ".." segments; a bucket name
 * taken is 3..63 bytes of [a-z0-9.-]. */
#include "fuzz_util.h"
#include "sp_objname.h"
#include "sp_s3xml.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_xml(const char *x, size_t n)
{
    static const char *const names[] = {"Contents", "Key", "ETag", "Size",
                                        "IsTruncated", "UploadId", "Code"};
    char out[64];

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *p = x, *end = x + n, *c;
        size_t cn;
        int rounds = 0;
        while ((p = s3xml_elem(p, (size_t)(end - p), names[i], &c, &cn)) !=
               NULL) {
            FZ_CHECK(c >= x && c + cn <= end && p <= end, "outside input");
            if (s3xml_text(c, cn, "Key", out, sizeof out) != NULL)
                FZ_CHECK(strlen(out) < sizeof out, "text overran");
            FZ_CHECK(++rounds <= (int)n, "no progress");
        }
        if (s3xml_text(x, n, names[i], out, sizeof out) != NULL)
            FZ_CHECK(memchr(out, 0, sizeof out) != NULL, "not terminated");
    }
}

static void fz_names(const char *s, size_t n)
{
    char *z = malloc(n + 1);

    if (z == NULL)
        return;
    memcpy(z, s, n);
    z[n] = '\0';
    if (obj_key_rule(s, n) == NULL) {
        FZ_CHECK(n >= 1 && n <= OBJ_KEY_MAX, "key length %zu", n);
        FZ_CHECK(fz_utf8_valid((const unsigned char *)s, n), "key utf8");
        FZ_CHECK(s[0] != '/', "absolute key");
        FZ_CHECK(strstr(z, "/../") == NULL && strstr(z, "/./") == NULL &&
                     strcmp(z, "..") != 0 && strcmp(z, ".") != 0 &&
                     strncmp(z, "../", 3) != 0 && strncmp(z, "./", 2) != 0,
                 "dot segment taken");
        for (size_t i = 0; i < n; i++)
            FZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f,
                     "control byte");
    }
    if (obj_bucket_rule(z) == NULL) {
        FZ_CHECK(strlen(z) >= 3 && strlen(z) <= 63, "bucket length");
        FZ_CHECK(strspn(z, "abcdefghijklmnopqrstuvwxyz0123456789.-") ==
                     strlen(z),
                 "bucket characters");
    }
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_xml((const char *)data, size);
    fz_names((const char *)data, size);
    return 0;
}
