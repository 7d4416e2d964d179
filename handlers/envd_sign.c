/* handlers/envd_sign.c: the signed file URLs of E2B's SDK
 * (sandbox.uploadUrl / downloadUrl): /files?path=&username=&signature=
 * v1_<sig>[&signature_expiration=<unix s>] with no header at all, for a
 * third party. sig is base64(sha256("<path>:<op>:<user>:<envd token>
 * [:<expiration>]")) without '=' padding, op "write" (POST) or "read"
 * (GET), path and user as the query carries them ("" for no user). The
 * envd token is the sandbox's (auth_sandbox_token, derived, never
 * stored), so a signature is checked by computing it again.
 *
 * Such a URL names its sandbox only by its host, 49983-<id>.<domain>
 * (nginx's selector gives the id in SP_SANDBOX_ID): on one origin
 * (E2B_SANDBOX_URL) nothing in it says which sandbox's token signed it,
 * and nginx answers 400 there (families/envd.conf, docs/DESIGN.md §7). */
#include "envd.h"
#include "sp_auth.h"
#include "sp_b64.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ENVD_SIG_MAX 64 /* "v1_" and 43 base64 characters, with room */
#define ENVD_EXP_MAX 20

/* The signature of the request's path, op, user and expiration exp
 * ("" for none) with sandbox id's token, "v1_…" into out (ENVD_SIG_MAX).
 * 0, or -1 (too long, no secret). */
static int envd_signature(http_req *r, const char *id, const char *op,
                          const char *exp, char *out)
{
    char path[ENVD_PATH_MAX], user[ENVD_USER_MAX], tok[AUTH_SBX_TOKEN_SIZE];
    unsigned char md[SHA256_DIGEST_LENGTH];
    const char *part[] = {path, op, user, tok, exp};
    sp_buf raw, b64;
    int rc = -1;
    int pq = http_query(r, "path", path, sizeof path);
    int uq = http_query(r, "username", user, sizeof user);

    if (pq < 0 || uq < 0 || auth_sandbox_token(AUTH_SBX_ENVD, id, tok) != 0)
        return -1;
    if (pq == 0)
        path[0] = '\0';
    if (uq == 0)
        user[0] = '\0';
    buf_init_sticky(&raw, ENVD_PATH_MAX + 256);
    buf_init(&b64, ENVD_SIG_MAX);
    /* The parts joined by a colon (not a format: no key is built here);
     * the expiration only when there is one. */
    for (size_t i = 0; i < (exp[0] != '\0' ? 5u : 4u); i++) {
        if (i > 0)
            buf_append(&raw, ":", 1);
        buf_puts(&raw, part[i]);
    }
    if (!buf_failed(&raw)) {
        SHA256((const unsigned char *)raw.data, raw.len, md);
        if (buf_puts(&b64, "v1_") == 0 &&
            b64_encode(&b64, md, sizeof md) == 0) {
            while (b64.len > 0 && b64.data[b64.len - 1] == '=')
                b64.data[--b64.len] = '\0';
            snprintf(out, ENVD_SIG_MAX, "%s", b64.data);
            rc = 0;
        }
    }
    explicit_bzero(tok, sizeof tok);
    if (raw.data != NULL)
        explicit_bzero(raw.data, raw.len);
    buf_free(&raw);
    buf_free(&b64);
    return rc;
}

/* ?signature_expiration= into exp ("" when absent); -1 if malformed, 1 if
 * in the past, else 0. */
static int envd_expiration(http_req *r, char *exp)
{
    int rc = http_query(r, "signature_expiration", exp, ENVD_EXP_MAX);
    size_t n;

    if (rc == 0) {
        exp[0] = '\0';
        return 0;
    }
    n = strlen(exp);
    if (rc < 0 || n == 0 || n > 12 || strspn(exp, "0123456789") != n)
        return -1;
    return strtoll(exp, NULL, 10) < (long long)time(NULL) ? 1 : 0;
}

int envd_begin_signed(http_req *r, envd_ctx *c, const char *op)
{
    const char *id = FCGX_GetParam("SP_SANDBOX_ID", r->fcgi.envp);
    char sig[ENVD_SIG_MAX], want[ENVD_SIG_MAX], exp[ENVD_EXP_MAX];
    int e, ok;

    r->errors = HTTP_ERRORS_ENVELOPE;
    memset(c, 0, sizeof *c);
    if (id == NULL || !id_valid_typed(id, "sbx_") ||
        http_query(r, "signature", sig, sizeof sig) != 1) {
        http_send_error(r, SP_E_UNAUTHENTICATED, "signature",
                        "missing or malformed signature");
        return -1;
    }
    if ((e = envd_expiration(r, exp)) != 0) {
        http_send_error(r, SP_E_UNAUTHENTICATED, "signature_expiration",
                        e < 0 ? "malformed signature_expiration"
                              : "the signature has expired");
        return -1;
    }
    ok = envd_signature(r, id, op, exp, want) == 0 &&
         strlen(sig) == strlen(want) &&
         CRYPTO_memcmp(sig, want, strlen(want)) == 0;
    explicit_bzero(want, sizeof want);
    if (!ok) {
        http_send_error(r, SP_E_UNAUTHENTICATED, "signature",
                        "invalid signature");
        return -1;
    }
    return envd_load(r, c, id, ENVD_PLAIN);
}
