/* fuzz_utf8.c: utf8_cut, utf8_sanitize and utf8_json_string
 * (common/sp_utf8.c), checked against the strict validator of fuzz_util.h.
 *
 * Input: one byte choosing where a chunk ends, then the bytes. Invariants:
 * utf8_cut keeps at most 3 bytes back, only the start of a multi-byte
 * sequence that the chunk cuts short, never the inside of a well-formed
 * one, and nothing of a valid chunk; sanitizing the chunk up to the cut
 * and then the carried bytes with the rest gives the same bytes as
 * sanitizing everything at once; sanitized output is valid UTF-8 and equal
 * to valid input; the JSON string is one cJSON string, with no raw control
 * byte, valid UTF-8, that decodes to the sanitized bytes; a full buffer
 * is refused, never overrun. */
#include "fuzz_util.h"
#include "sp_utf8.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_check_cut(const unsigned char *s, size_t n)
{
    size_t r = utf8_cut(s, n), i = 0;

    FZ_CHECK(r <= n && n - r <= 3, "cut %zu of %zu", r, n);
    if (fz_utf8_valid(s, n))
        FZ_CHECK(r == n, "valid chunk cut at %zu of %zu", r, n);
    if (r < n) {
        size_t need = s[r] >= 0xf0 ? 4 : s[r] >= 0xe0 ? 3 : 2;
        FZ_CHECK(s[r] >= 0xc2 && s[r] <= 0xf4, "cut at byte %02x", s[r]);
        FZ_CHECK(n - r < need, "cut before a whole sequence");
        for (size_t k = r + 1; k < n; k++)
            FZ_CHECK((s[k] & 0xc0) == 0x80, "carried bytes are not one "
                                            "sequence start");
    }
    /* Never inside a well-formed sequence of the chunk. */
    while (i < n) {
        size_t l = fz_utf8_one(s + i, n - i);
        if (l == 0)
            l = 1;
        FZ_CHECK(!(i < r && r < i + l), "cut at %zu inside [%zu,%zu)", r, i,
                 i + l);
        i += l;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *s = data + 1;
    size_t n, k, cut;
    sp_buf whole, parts, js, tiny;
    cJSON *v;

    if (size < 1)
        return 0;
    n = size - 1;
    k = (size_t)data[0] * n / 255;

    fz_check_cut(s, n);
    fz_check_cut(s, k);

    buf_init(&whole, SIZE_MAX);
    buf_init(&parts, SIZE_MAX);
    buf_init(&js, SIZE_MAX);
    FZ_CHECK(utf8_sanitize(s, n, &whole) == 0, "sanitize failed");
    FZ_CHECK(whole.len <= 3 * n, "sanitized %zu bytes into %zu", n, whole.len);
    FZ_CHECK(fz_utf8_valid((unsigned char *)whole.data, whole.len),
             "sanitized output is not valid UTF-8");
    if (fz_utf8_valid(s, n))
        FZ_CHECK(whole.len == n && (n == 0 || memcmp(whole.data, s, n) == 0),
                 "valid input changed by sanitize");

    /* Chunked like the helper does it: cut, carry the rest over. */
    cut = utf8_cut(s, k);
    FZ_CHECK(utf8_sanitize(s, cut, &parts) == 0 &&
                 utf8_sanitize(s + cut, n - cut, &parts) == 0,
             "chunked sanitize failed");
    FZ_CHECK(
        parts.len == whole.len &&
            (whole.len == 0 || memcmp(parts.data, whole.data, whole.len) == 0),
        "chunk at %zu (cut %zu) changes the output", k, cut);

    FZ_CHECK(utf8_json_string(s, n, &js) == 0, "json string failed");
    FZ_CHECK(js.len >= 2 && js.data[0] == '"' && js.data[js.len - 1] == '"',
             "not a quoted string");
    for (size_t i = 0; i < js.len; i++)
        FZ_CHECK((unsigned char)js.data[i] >= 0x20, "raw control byte %02x",
                 (unsigned char)js.data[i]);
    FZ_CHECK(fz_utf8_valid((unsigned char *)js.data, js.len),
             "JSON string is not valid UTF-8");
    v = cJSON_ParseWithLength(js.data, js.len);
    FZ_CHECK(cJSON_IsString(v), "cJSON does not read a string: %s", js.data);
    {
        /* cJSON stops at an escaped NUL; compare up to there. */
        size_t vl = strlen(v->valuestring);
        FZ_CHECK(vl <= whole.len &&
                     (vl == 0 || memcmp(v->valuestring, whole.data, vl) == 0) &&
                     (vl == whole.len || whole.data[vl] == '\0'),
                 "JSON string decodes to other bytes than sanitize gives");
    }
    cJSON_Delete(v);

    /* Bounded buffers: refused or within the bound, never past it. */
    buf_init(&tiny, n / 2 + 1);
    if (utf8_sanitize(s, n, &tiny) == 0)
        FZ_CHECK(tiny.len <= tiny.max, "sanitize past the maximum");
    buf_free(&tiny);
    buf_init(&tiny, n + 2);
    if (utf8_json_string(s, n, &tiny) == 0)
        FZ_CHECK(tiny.len <= tiny.max, "json string past the maximum");
    buf_free(&tiny);

    buf_free(&whole);
    buf_free(&parts);
    buf_free(&js);
    return 0;
}
