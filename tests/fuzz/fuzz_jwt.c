/* fuzz_jwt.c: tok_verify (common/sp_jwt.c) with a fixed secret and clock.
 *
 * Input: one mode byte, then either
 *   mode bit 0 clear: the token itself (arbitrary bytes up to a NUL), or
 *   mode bit 0 set:   header JSON '\n' payload JSON, which the harness
 *                     encodes and signs with the secret, so that the checks
 *                     after the signature (claims, ids, times) are reached.
 * Bit 1 picks the wanted token type. Invariants when a token is accepted:
 * the header is exactly alg HS256 (plus typ JWT), exp is after now, nbf is
 * not, sub/kid/jti (and fam for refresh tokens) are valid ids, and a
 * signed token fails with another secret. */
#include "fuzz_util.h"
#include "sp_jwt.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <string.h>

#define FZ_SECRET "fuzz-secret-0123456789abcdefghijklmnopqrstuvwxyz"
#define FZ_OTHER  "fuzz-other--0123456789abcdefghijklmnopqrstuvwxyz"
#define FZ_NOW    1700000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t fz_b64url(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v =
            (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

/* header.payload.signature of the two JSON texts; malloc'd. */
static char *fz_sign(const unsigned char *hdr, size_t hl,
                     const unsigned char *pay, size_t pl)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    size_t o;
    char *tok = malloc((hl + pl) * 4 / 3 + 128);

    o = fz_b64url(hdr, hl, tok);
    tok[o++] = '.';
    o += fz_b64url(pay, pl, tok + o);
    if (HMAC(EVP_sha256(), FZ_SECRET, (int)strlen(FZ_SECRET),
             (const unsigned char *)tok, o, mac, &maclen) == NULL) {
        free(tok);
        return NULL;
    }
    tok[o++] = '.';
    fz_b64url(mac, maclen, tok + o);
    return tok;
}

static int fz_id_ok(const char *s)
{
    size_t n = strnlen(s, 65);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* The header segment of an accepted token, decoded with cJSON. */
static void fz_check_header(const char *tok)
{
    const char *dot = strchr(tok, '.');
    size_t n = (size_t)(dot - tok);
    unsigned char *raw = malloc(n + 4);
    char *txt;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0, keys = 0;
    cJSON *root, *alg, *typ;

    for (size_t i = 0; i < n; i++) {
        const char *p = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
                               "tuvwxyz0123456789-_",
                               tok[i]);
        FZ_CHECK(p != NULL && tok[i] != '\0', "header is not base64url");
        acc = acc << 6 | (unsigned)(p - "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk"
                                        "lmnopqrstuvwxyz0123456789-_");
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[o++] = (unsigned char)(acc >> bits);
        }
    }
    txt = strndup((const char *)raw, o);
    root = cJSON_Parse(txt);
    FZ_CHECK(cJSON_IsObject(root), "accepted header is not an object");
    alg = cJSON_GetObjectItemCaseSensitive(root, "alg");
    typ = cJSON_GetObjectItemCaseSensitive(root, "typ");
    FZ_CHECK(cJSON_IsString(alg) && strcmp(alg->valuestring, "HS256") == 0,
             "accepted header without alg HS256: %s", txt);
    FZ_CHECK(typ == NULL ||
                 (cJSON_IsString(typ) && strcmp(typ->valuestring, "JWT") == 0),
             "accepted header with typ other than JWT: %s", txt);
    for (cJSON *it = root->child; it != NULL; it = it->next)
        keys++;
    FZ_CHECK(keys == 1 + (typ != NULL), "accepted header with extra keys: %s",
             txt);
    cJSON_Delete(root);
    free(txt);
    free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tok_claims c;
    tok_type want;
    char *tok;
    int rc;

    if (size < 1)
        return 0;
    want = (data[0] & 2) ? TOK_REFRESH : TOK_ACCESS;
    if (data[0] & 1) {
        const uint8_t *nl = memchr(data + 1, '\n', size - 1);
        if (nl == NULL || size > TOK_MAX_LEN)
            return 0;
        tok = fz_sign(data + 1, (size_t)(nl - data - 1), nl + 1,
                      (size_t)(data + size - nl - 1));
        if (tok == NULL)
            return 0;
    } else {
        tok = strndup((const char *)data + 1, size - 1);
    }
    rc = tok_verify(tok, want, FZ_SECRET, strlen(FZ_SECRET), FZ_NOW, &c);
    FZ_CHECK(rc == 0 || rc == -1, "tok_verify returned %d", rc);
    if (rc == 0) {
        FZ_CHECK(strlen(tok) <= TOK_MAX_LEN, "over-long token accepted");
        fz_check_header(tok);
        FZ_CHECK(c.type == want, "type %d, wanted %d", c.type, want);
        FZ_CHECK(c.exp > FZ_NOW, "expired token accepted (exp %lld)", c.exp);
        FZ_CHECK(c.nbf <= FZ_NOW, "token before nbf accepted (%lld)", c.nbf);
        FZ_CHECK(fz_id_ok(c.sub) && fz_id_ok(c.kid) && fz_id_ok(c.jti),
                 "accepted ids not valid");
        FZ_CHECK(want != TOK_REFRESH || fz_id_ok(c.fam),
                 "refresh token without a valid fam");
        FZ_CHECK(c.fam[0] == '\0' || fz_id_ok(c.fam), "invalid fam accepted");
        FZ_CHECK(
            tok_verify(tok, want, FZ_OTHER, strlen(FZ_OTHER), FZ_NOW, &c) == -1,
            "token accepted with another secret");
    }
    free(tok);
    return 0;
}
