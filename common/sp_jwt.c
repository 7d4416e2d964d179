/* sp_jwt.c: issuing and verifying HS256 tokens with libjwt (sp_jwt.h). */
#include "sp_jwt.h"
#include "sp_id.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <jwt.h>
#include <stdlib.h>
#include <string.h>

static const char *tok_use_names[] = {"access", "refresh"};

char *tok_issue(const tok_claims *c, const char *secret, size_t secretlen)
{
    jwt_t *jwt = NULL;
    char *out = NULL;

    if (!id_valid(c->sub) || !id_valid(c->kid) || !id_valid(c->jti) ||
        (c->type == TOK_REFRESH && !id_valid(c->fam)))
        return NULL;
    if (jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret,
                    (int)secretlen) != 0 ||
        jwt_add_grant(jwt, "sub", c->sub) != 0 ||
        jwt_add_grant(jwt, "kid", c->kid) != 0 ||
        jwt_add_grant(jwt, "jti", c->jti) != 0 ||
        jwt_add_grant(jwt, "token_use", tok_use_names[c->type]) != 0 ||
        jwt_add_grant_int(jwt, "iat", c->iat) != 0 ||
        jwt_add_grant_int(jwt, "exp", c->exp) != 0)
        goto out;
    if (c->type == TOK_REFRESH && jwt_add_grant(jwt, "fam", c->fam) != 0)
        goto out;
    out = jwt_encode_str(jwt);
out:
    jwt_free(jwt);
    return out;
}

static int tok_b64url_decode(const char *s, size_t n, char *out, size_t outlen)
{
    unsigned int acc = 0;
    int bits = 0;
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int v;
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= outlen)
                return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return (int)o;
}

/* The header must be exactly {"alg":"HS256"} plus an optional typ "JWT";
 * anything else (alg none, RS256, a kid or jku pointing elsewhere, crit)
 * is refused before libjwt sees the token. */
static int tok_header_ok(const char *token)
{
    const char *dot = strchr(token, '.');
    char hdr[256];
    cJSON *root = NULL, *it;
    int ok = 0, n, seen_alg = 0, seen_typ = 0;

    if (dot == NULL)
        return 0;
    n = tok_b64url_decode(token, (size_t)(dot - token), hdr, sizeof hdr);
    if (n <= 0 || (size_t)n != strlen(hdr))
        return 0;
    root = cJSON_Parse(hdr);
    if (!cJSON_IsObject(root))
        goto out;
    /* A name given twice is refused (RFC 7515 section 4): libjwt's JSON
     * parser keeps the last value, which need not be the one checked. */
    cJSON_ArrayForEach(it, root)
    {
        if (strcmp(it->string, "alg") == 0 && seen_alg++ == 0) {
            if (!cJSON_IsString(it) || strcmp(it->valuestring, "HS256") != 0)
                goto out;
        } else if (strcmp(it->string, "typ") == 0 && seen_typ++ == 0) {
            if (!cJSON_IsString(it) || strcmp(it->valuestring, "JWT") != 0)
                goto out;
        } else {
            goto out;
        }
    }
    ok = seen_alg;
out:
    cJSON_Delete(root);
    return ok;
}

static int tok_copy_id(jwt_t *jwt, const char *name, char *out, size_t len,
                       int required)
{
    const char *v = jwt_get_grant(jwt, name);
    if (v == NULL)
        return required ? -1 : 0;
    if (!id_valid(v) || strlen(v) >= len)
        return -1;
    strcpy(out, v);
    return 0;
}

int tok_verify(const char *token, tok_type want, const char *secret,
               size_t secretlen, long long now, tok_claims *out)
{
    jwt_t *jwt = NULL;
    const char *use;
    int result = -1, dots = 0;

    memset(out, 0, sizeof *out);
    if (token == NULL || strlen(token) > TOK_MAX_LEN)
        return -1;
    for (const char *p = token; *p; p++)
        dots += *p == '.';
    if (dots != 2 || !tok_header_ok(token))
        return -1;
    if (jwt_decode(&jwt, token, (const unsigned char *)secret,
                   (int)secretlen) != 0)
        return -1;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256)
        goto out;
    use = jwt_get_grant(jwt, "token_use");
    if (use == NULL || strcmp(use, tok_use_names[want]) != 0)
        goto out;
    out->type = want;
    errno = 0;
    out->exp = jwt_get_grant_int(jwt, "exp");
    if (errno != 0 || out->exp <= now)
        goto out;
    errno = 0;
    out->nbf = jwt_get_grant_int(jwt, "nbf");
    if (errno == 0 && out->nbf > now)
        goto out;
    errno = 0;
    out->iat = jwt_get_grant_int(jwt, "iat");
    if (errno != 0)
        out->iat = 0;
    if (tok_copy_id(jwt, "sub", out->sub, sizeof out->sub, 1) != 0 ||
        tok_copy_id(jwt, "kid", out->kid, sizeof out->kid, 1) != 0 ||
        tok_copy_id(jwt, "jti", out->jti, sizeof out->jti, 1) != 0 ||
        tok_copy_id(jwt, "fam", out->fam, sizeof out->fam,
                    want == TOK_REFRESH) != 0)
        goto out;
    result = 0;
out:
    jwt_free(jwt);
    return result;
}
