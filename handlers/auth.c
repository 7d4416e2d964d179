/* handlers/auth.c: the auth family (docs/DESIGN.md §4.3): API key → token pair,
 * refresh with rotation and reuse detection, verify, revoke.
 *
 * Refresh tokens belong to a family (one per sign-in). Redis keys:
 *   rtused:<jti>   set NX when a refresh token is rotated; a second use
 *                  finds it and revokes the family
 *   rtfam:<fam>    "revoked" marker for a family */
#include "sp_auth.h"
#include "sp_config.h"
#include "sp_http.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_jwt.h"
#include "sp_keys.h"
#include "sp_redis.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void auth_revoke_family(const char *fam)
{
    char k[RDS_KEY_MAX];
    if (key_of(k, sizeof k, KEY_RTFAM, fam) == 0)
        freeReplyObject(
            rds_cmd("SET %s revoked EX %lld", k, cfg_int(CFG_SP_REFRESH_TTL)));
}

/* Issue an access and a refresh token for sub/kid in family fam and send
 * them as the response. */
static void auth_send_pair(http_req *r, const char *sub, const char *kid,
                           const char *fam)
{
    size_t slen;
    const char *secret = auth_secret(&slen);
    long long now = (long long)time(NULL);
    tok_claims a = {0}, f = {0};
    char *at = NULL, *rt = NULL;
    cJSON *root = NULL;

    a.type = TOK_ACCESS;
    f.type = TOK_REFRESH;
    snprintf(a.sub, sizeof a.sub, "%s", sub);
    snprintf(f.sub, sizeof f.sub, "%s", sub);
    snprintf(a.kid, sizeof a.kid, "%s", kid);
    snprintf(f.kid, sizeof f.kid, "%s", kid);
    snprintf(f.fam, sizeof f.fam, "%s", fam);
    a.iat = f.iat = now;
    a.exp = now + cfg_int(CFG_SP_ACCESS_TTL);
    f.exp = now + cfg_int(CFG_SP_REFRESH_TTL);
    if (id_generate("at_", a.jti, sizeof a.jti) != 0 ||
        id_generate("rt_", f.jti, sizeof f.jti) != 0)
        goto fail;
    at = tok_issue(&a, secret, slen);
    rt = tok_issue(&f, secret, slen);
    if (at == NULL || rt == NULL)
        goto fail;
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "access_token", at);
    cJSON_AddStringToObject(root, "refresh_token", rt);
    cJSON_AddStringToObject(root, "token_type", "Bearer");
    cJSON_AddNumberToObject(root, "expires_in",
                            (double)cfg_int(CFG_SP_ACCESS_TTL));
    http_send_json(r, 200, root);
    goto out;
fail:
    http_send_error(r, SP_E_INTERNAL, NULL, "could not issue tokens");
out:
    cJSON_Delete(root);
    free(at);
    free(rt);
}

static void auth_token(http_req *r)
{
    cJSON *body = http_json_body(r, 0);
    const char *key;
    auth_info who;
    char fam[SP_ID_SIZE];
    sp_status st;

    if (body == NULL)
        return;
    if (json_str(r, body, "api_key", 1, 256, &key) != 0)
        goto out;
    st = auth_api_key(key, &who);
    if (st != SP_OK) {
        http_send_error(
            r, st, st == SP_E_UNAUTHENTICATED ? "api_key" : NULL, "%s",
            st == SP_E_UNAUTHENTICATED ? "invalid API key"
                                       : "authentication backend unavailable");
        goto out;
    }
    if (id_generate("fam_", fam, sizeof fam) != 0) {
        http_send_error(r, SP_E_INTERNAL, NULL, "could not issue tokens");
        goto out;
    }
    auth_send_pair(r, who.sub, who.kid, fam);
out:
    cJSON_Delete(body);
}

static void auth_refresh(http_req *r)
{
    cJSON *body = http_json_body(r, 0);
    char k_fam[RDS_KEY_MAX], k_used[RDS_KEY_MAX], k_rev[RDS_KEY_MAX];
    const char *tok;
    size_t slen;
    const char *secret = auth_secret(&slen);
    long long now = (long long)time(NULL);
    redisReply *rep = NULL;
    tok_claims c;

    if (body == NULL)
        return;
    if (json_str(r, body, "refresh_token", 1, TOK_MAX_LEN, &tok) != 0)
        goto out;
    if (tok_verify(tok, TOK_REFRESH, secret, slen, now, &c) != 0) {
        http_send_error(r, SP_E_UNAUTHENTICATED, "refresh_token",
                        "invalid refresh token");
        goto out;
    }
    key_of(k_fam, sizeof k_fam, KEY_RTFAM, c.fam);
    key_of(k_used, sizeof k_used, KEY_RTUSED, c.jti);
    key_of(k_rev, sizeof k_rev, KEY_KEYREVOKED, c.kid);
    rep = rds_cmd("EXISTS %s %s", k_fam, k_rev);
    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    if (rep->integer > 0) {
        http_send_error(r, SP_E_UNAUTHENTICATED, "refresh_token",
                        "refresh token revoked");
        goto out;
    }
    freeReplyObject(rep);
    /* Rotation: the first use marks the token spent; any later use is a
     * replay of a stolen token, and the whole family dies. */
    rep = rds_cmd("SET %s 1 NX EX %lld", k_used, c.exp - now + 1);
    if (rep == NULL) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        goto out;
    }
    if (rep->type == REDIS_REPLY_NIL) {
        auth_revoke_family(c.fam);
        http_send_error(r, SP_E_UNAUTHENTICATED, "refresh_token",
                        "refresh token reuse detected; session revoked");
        goto out;
    }
    auth_send_pair(r, c.sub, c.kid, c.fam);
out:
    freeReplyObject(rep);
    cJSON_Delete(body);
}

static void auth_verify(http_req *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddBoolToObject(root, "valid", 1);
    cJSON_AddStringToObject(root, "sub", r->auth.sub);
    if (r->auth.exp > 0)
        cJSON_AddNumberToObject(root, "exp", (double)r->auth.exp);
    else
        cJSON_AddNullToObject(root, "exp");
    http_send_json(r, 200, root);
    cJSON_Delete(root);
}

/* Revokes the presented access token (if a JWT) and, when given, the
 * family of refresh_token (which must belong to the same subject). */
static void auth_revoke(http_req *r)
{
    cJSON *body = http_json_body(r, 1);
    const char *tok;
    size_t slen;
    const char *secret = auth_secret(&slen);
    long long now = (long long)time(NULL);
    char k[RDS_KEY_MAX];
    tok_claims c;
    cJSON *root = NULL;

    if (body == NULL)
        return;
    if (json_str(r, body, "refresh_token", 0, TOK_MAX_LEN, &tok) != 0)
        goto out;
    if (tok != NULL) {
        if (tok_verify(tok, TOK_REFRESH, secret, slen, now, &c) != 0 ||
            strcmp(c.sub, r->auth.sub) != 0) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "refresh_token",
                            "invalid refresh token");
            goto out;
        }
        auth_revoke_family(c.fam);
    }
    if (r->auth.jti[0] != '\0' &&
        key_of(k, sizeof k, KEY_REVOKED, r->auth.jti) == 0) {
        redisReply *rep = rds_cmd("SET %s 1 EX %lld", k, r->auth.exp - now + 1);
        if (rep == NULL) {
            http_send_error(r, SP_E_UNAVAILABLE, NULL,
                            "state store unavailable");
            goto out;
        }
        freeReplyObject(rep);
    }
    root = cJSON_CreateObject();
    cJSON_AddBoolToObject(root, "revoked", 1);
    http_send_json(r, 200, root);
out:
    cJSON_Delete(root);
    cJSON_Delete(body);
}

static const http_route auth_routes[] = {
    {"POST", "/api/auth/token", auth_token, 0},
    {"POST", "/api/auth/refresh", auth_refresh, 0},
    {"GET", "/api/auth/verify", auth_verify, AUTH_REQUIRED},
    {"POST", "/api/auth/revoke", auth_revoke, AUTH_REQUIRED},
};

int main(void)
{
    return http_main("auth", auth_routes,
                     sizeof auth_routes / sizeof auth_routes[0], NULL);
}
