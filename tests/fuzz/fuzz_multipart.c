/* fuzz_multipart.c: mp_boundary and mp_parse (common/sp_multipart.c).
 *
 * Input: a Content-Type value, '\n', then the body. When the value gives no
 * boundary the body is still parsed with the boundary "fzb", so that the
 * part parser is reached either way. Invariants: the boundary is 1..70
 * bytes and fits the buffer; every part lies inside the body, after the
 * previous one, ends right before CRLF "--" boundary followed by "--" or
 * CRLF and contains no such delimiter; names are non-empty and terminated;
 * parsing again with a maximum of exactly the part count gives the same parts,
 * one less fails. */
#include "fuzz_util.h"
#include "sp_multipart.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 if a delimiter at q (CRLF "--" boundary, dl bytes) really is one: it
 * is followed by "--" (the close) or CRLF (the next part's headers). */
static int fz_real_delim(const char *q, size_t dl, const char *end)
{
    return end - (q + dl) >= 2 && ((q[dl] == '-' && q[dl + 1] == '-') ||
                                   (q[dl] == '\r' && q[dl + 1] == '\n'));
}

static void fz_check_parts(const char *body, size_t len, const char *bnd,
                           const mp_part *parts, int n)
{
    char delim[84];
    size_t dl = (size_t)snprintf(delim, sizeof delim, "\r\n--%s", bnd);
    const char *prev_end = body, *end = body + len;

    for (int i = 0; i < n; i++) {
        const mp_part *p = &parts[i];
        FZ_CHECK(memchr(p->name, '\0', sizeof p->name) != NULL,
                 "part %d name not terminated", i);
        FZ_CHECK(memchr(p->filename, '\0', sizeof p->filename) != NULL,
                 "part %d filename not terminated", i);
        FZ_CHECK(p->name[0] != '\0', "part %d has no name", i);
        FZ_CHECK(p->data >= prev_end && p->data <= end &&
                     p->len <= (size_t)(end - p->data),
                 "part %d outside the body or before the previous one", i);
        FZ_CHECK((size_t)(end - p->data) - p->len >= dl &&
                     memcmp(p->data + p->len, delim, dl) == 0 &&
                     fz_real_delim(p->data + p->len, dl, end),
                 "part %d does not end at a delimiter", i);
        /* Lines that only start like the boundary are data. */
        for (const char *q = p->data;
             (q = memmem(q, (size_t)(p->data + p->len - q), delim, dl)) != NULL;
             q++)
            FZ_CHECK(!fz_real_delim(q, dl, end), "part %d contains a delimiter",
                     i);
        prev_end = p->data + p->len + dl;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ctlen = nl ? (size_t)(nl - data) : size;
    char *ct = malloc(ctlen + 1), *bnd = malloc(72), small[8];
    const char *body = nl ? (const char *)nl + 1 : (const char *)data + size;
    size_t len = (size_t)((const char *)data + size - body);
    mp_part *parts = malloc(sizeof *parts * MP_MAX_PARTS);
    mp_part *again = malloc(sizeof *again * MP_MAX_PARTS);
    int n;

    memcpy(ct, data, ctlen);
    ct[ctlen] = '\0';
    if (mp_boundary(ct, bnd, 72) == 0) {
        size_t bl = strnlen(bnd, 72);
        FZ_CHECK(bl >= 1 && bl <= 70, "boundary length %zu", bl);
        FZ_CHECK(strstr(ct, bnd) != NULL, "boundary not taken from the value");
    } else {
        strcpy(bnd, "fzb");
    }
    /* A buffer too small for the boundary must be refused, not overrun. */
    memset(small, 'x', sizeof small);
    if (mp_boundary(ct, small, sizeof small) == 0)
        FZ_CHECK(memchr(small, '\0', sizeof small) != NULL,
                 "boundary not terminated in a small buffer");

    n = mp_parse(body, len, bnd, parts, MP_MAX_PARTS);
    FZ_CHECK(n >= -1 && n <= MP_MAX_PARTS, "part count %d", n);
    if (n > 0) {
        fz_check_parts(body, len, bnd, parts, n);
        FZ_CHECK(mp_parse(body, len, bnd, again, n) == n,
                 "a maximum of %d changes the result", n);
        for (int i = 0; i < n; i++)
            FZ_CHECK(again[i].data == parts[i].data &&
                         again[i].len == parts[i].len &&
                         strcmp(again[i].name, parts[i].name) == 0 &&
                         strcmp(again[i].filename, parts[i].filename) == 0,
                     "part %d differs on the second parse", i);
        FZ_CHECK(mp_parse(body, len, bnd, again, n - 1) == -1,
                 "%d parts accepted with a maximum of %d", n, n - 1);
    }
    free(ct);
    free(bnd);
    free(parts);
    free(again);
    return 0;
}
