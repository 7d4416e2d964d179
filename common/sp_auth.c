/* sp_auth.c: credential checks and the API key store (sp_auth.h).
 *
 * Redis keys (all under the prefix):
 *   apikey:<sha256 hex>  hash {kid, sub}: lookup by presented key
 *   key:<kid>            hash {name, sub, hash, created}
 *   keys                 set of kids
 *   keyrevoked:<kid>     marker, lives as long as any token of that key
 *   revoked:<jti>        revoked access token, lives until its exp */
#include "sp_auth.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_jwt.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *auth_secret_value;
static size_t auth_secret_len;

int auth_init(char *err, size_t errlen)
{
    auth_secret_value = cfg_str(CFG_JWT_SECRET);
    auth_secret_len = strlen(auth_secret_value);
    if (auth_secret_len < 32) {
        snprintf(err, errlen, "JWT_SECRET: must be at least 32 bytes");
        return -1;
    }
    return 0;
}

const char *auth_secret(size_t *len)
{
    *len = auth_secret_len;
    return auth_secret_value;
}

void auth_sha256_hex(const char *s, char *out)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
    out[64] = '\0';
}

int auth_sandbox_token(const char *purpose, const char *sandbox_id, char *out)
{
    unsigned char msg[160], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t pl, il;

    out[0] = '\0';
    if (auth_secret_value == NULL || purpose == NULL || sandbox_id == NULL)
        return -1;
    pl = strlen(purpose);
    il = strlen(sandbox_id);
    if (pl == 0 || il == 0 || pl + 1 + il > sizeof msg)
        return -1;
    memcpy(msg, purpose, pl);
    msg[pl] = '\0';
    memcpy(msg + pl + 1, sandbox_id, il);
    if (HMAC(EVP_sha256(), auth_secret_value, (int)auth_secret_len, msg,
             pl + 1 + il, md, &mdlen) == NULL ||
        mdlen != 32)
        return -1;
    return id_b64url(md, 32, out, AUTH_SBX_TOKEN_SIZE) == 43 ? 0 : -1;
}

int auth_sandbox_token_ok(const char *purpose, const char *sandbox_id,
                          const char *presented)
{
    char want[AUTH_SBX_TOKEN_SIZE];

    if (presented == NULL || strlen(presented) != AUTH_SBX_TOKEN_SIZE - 1 ||
        auth_sandbox_token(purpose, sandbox_id, want) != 0)
        return 0;
    return CRYPTO_memcmp(want, presented, AUTH_SBX_TOKEN_SIZE - 1) == 0;
}

static int auth_key_format_ok(const char *key)
{
    return key != NULL && strlen(key) == AUTH_KEY_LEN &&
           strncmp(key, AUTH_KEY_PREFIX, 4) == 0 && id_valid(key);
}

sp_status auth_api_key(const char *key, auth_info *out)
{
    char hash[AUTH_SHA256_HEX_SIZE], rkey[RDS_KEY_MAX];
    redisReply *r;
    sp_status st = SP_E_UNAUTHENTICATED;

    if (!auth_key_format_ok(key))
        return SP_E_UNAUTHENTICATED;
    auth_sha256_hex(key, hash);
    key_of(rkey, sizeof rkey, KEY_APIKEY, hash);
    r = rds_cmd("HMGET %s kid sub", rkey);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        st = SP_E_UNAVAILABLE;
        goto out;
    }
    if (r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING ||
        !id_valid(r->element[0]->str) || !id_valid(r->element[1]->str))
        goto out;
    memset(out, 0, sizeof *out);
    snprintf(out->kid, sizeof out->kid, "%s", r->element[0]->str);
    snprintf(out->sub, sizeof out->sub, "%s", r->element[1]->str);
    st = SP_OK;
out:
    freeReplyObject(r);
    return st;
}

int auth_is_revoked(const char *jti, const char *kid)
{
    char k1[RDS_KEY_MAX], k2[RDS_KEY_MAX];
    redisReply *r;
    int result;

    if (key_of(k1, sizeof k1, KEY_REVOKED, jti) != 0 ||
        key_of(k2, sizeof k2, KEY_KEYREVOKED, kid) != 0)
        return 1;
    r = rds_cmd("EXISTS %s %s", k1, k2);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER)
        result = -1;
    else
        result = r->integer > 0;
    freeReplyObject(r);
    return result;
}

sp_status auth_check(http_req *r, int flags, auth_info *out)
{
    const char *authz = http_header(r, "Authorization");
    char qtok[TOK_MAX_LEN + 1];
    const char *token = NULL;

    if (authz == NULL && (flags & AUTH_QUERY_TOKEN) &&
        http_query(r, "access_token", qtok, sizeof qtok) == 1)
        token = qtok; /* EventSource cannot send headers */
    return auth_credentials(http_header(r, "X-API-Key"), authz, token, out);
}

const char *auth_bearer(const char *authz)
{
    if (authz == NULL || strncasecmp(authz, "Bearer ", 7) != 0)
        return NULL;
    authz += 7;
    while (*authz == ' ')
        authz++;
    return authz;
}

sp_status auth_credentials(const char *key, const char *authz,
                           const char *token, auth_info *out)
{
    tok_claims c;
    int rev;

    if (key != NULL)
        return auth_api_key(key, out);
    if (authz != NULL)
        token = auth_bearer(authz);
    if (token == NULL)
        return SP_E_UNAUTHENTICATED;
    if (tok_verify(token, TOK_ACCESS, auth_secret_value, auth_secret_len,
                   (long long)time(NULL), &c) != 0)
        return SP_E_UNAUTHENTICATED;
    rev = auth_is_revoked(c.jti, c.kid);
    if (rev < 0)
        return SP_E_UNAVAILABLE;
    if (rev)
        return SP_E_UNAUTHENTICATED;
    memset(out, 0, sizeof *out);
    strcpy(out->sub, c.sub);
    strcpy(out->kid, c.kid);
    strcpy(out->jti, c.jti);
    out->exp = c.exp;
    return SP_OK;
}

sp_status auth_key_create(const char *name, char *key_out, char *kid_out)
{
    unsigned char rnd[32];
    char hash[AUTH_SHA256_HEX_SIZE], k_apikey[RDS_KEY_MAX], k_key[RDS_KEY_MAX],
        k_keys[RDS_KEY_MAX], created[32];
    redisReply *r;
    sp_status st = SP_E_UNAVAILABLE;

    if (!id_valid(name))
        return SP_E_INVALID_ARGUMENT;
    if (id_random_bytes(rnd, sizeof rnd) != 0 ||
        id_generate("key_", kid_out, SP_ID_SIZE) != 0)
        return SP_E_INTERNAL;
    strcpy(key_out, AUTH_KEY_PREFIX);
    id_b64url(rnd, sizeof rnd, key_out + 4, AUTH_KEY_LEN - 3);
    auth_sha256_hex(key_out, hash);
    key_of(k_apikey, sizeof k_apikey, KEY_APIKEY, hash);
    key_of(k_key, sizeof k_key, KEY_KEY, kid_out);
    key_of(k_keys, sizeof k_keys, KEY_KEYS, NULL);
    snprintf(created, sizeof created, "%lld", (long long)time(NULL));
    /* MULTI/EXEC so that a key is either fully present or absent. */
    r = rds_cmd("MULTI");
    freeReplyObject(r);
    r = rds_cmd("HSET %s kid %s sub %s", k_apikey, kid_out, name);
    freeReplyObject(r);
    r = rds_cmd("HSET %s name %s sub %s hash %s created %s", k_key, name, name,
                hash, created);
    freeReplyObject(r);
    r = rds_cmd("SADD %s %s", k_keys, kid_out);
    freeReplyObject(r);
    r = rds_cmd("EXEC");
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3)
        st = SP_OK;
    freeReplyObject(r);
    return st;
}

static sp_status auth_key_revoke_one(const char *kid)
{
    char k_key[RDS_KEY_MAX], k_apikey[RDS_KEY_MAX], k_keys[RDS_KEY_MAX],
        k_rev[RDS_KEY_MAX];
    redisReply *r = NULL;
    sp_status st = SP_E_UNAVAILABLE;

    if (key_of(k_key, sizeof k_key, KEY_KEY, kid) != 0)
        return SP_E_NOT_FOUND;
    r = rds_cmd("HGET %s hash", k_key);
    if (r == NULL)
        goto out;
    if (r->type != REDIS_REPLY_STRING || !id_valid(r->str)) {
        st = SP_E_NOT_FOUND;
        goto out;
    }
    key_of(k_apikey, sizeof k_apikey, KEY_APIKEY, r->str);
    key_of(k_rev, sizeof k_rev, KEY_KEYREVOKED, kid);
    key_of(k_keys, sizeof k_keys, KEY_KEYS, NULL);
    freeReplyObject(r);
    /* The marker outlives every token issued from the key. */
    r = rds_cmd("SET %s 1 EX %lld", k_rev,
                cfg_int(CFG_SP_REFRESH_TTL) + cfg_int(CFG_SP_ACCESS_TTL));
    if (r == NULL)
        goto out;
    freeReplyObject(r);
    r = rds_cmd("DEL %s %s", k_apikey, k_key);
    if (r == NULL)
        goto out;
    freeReplyObject(r);
    r = rds_cmd("SREM %s %s", k_keys, kid);
    if (r != NULL)
        st = SP_OK;
out:
    freeReplyObject(r);
    return st;
}

sp_status auth_key_revoke(const char *kid_or_name)
{
    char k_keys[RDS_KEY_MAX], k_key[RDS_KEY_MAX];
    redisReply *r;
    sp_status st = SP_E_NOT_FOUND;

    if (!id_valid(kid_or_name))
        return SP_E_NOT_FOUND;
    if (strncmp(kid_or_name, "key_", 4) == 0)
        return auth_key_revoke_one(kid_or_name);
    /* By subject name: revoke every key whose sub matches. */
    key_of(k_keys, sizeof k_keys, KEY_KEYS, NULL);
    r = rds_cmd("SMEMBERS %s", k_keys);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return SP_E_UNAVAILABLE;
    }
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *sub;
        const char *kid = r->element[i]->str;
        if (key_of(k_key, sizeof k_key, KEY_KEY, kid) != 0)
            continue;
        sub = rds_cmd("HGET %s sub", k_key);
        if (sub != NULL && sub->type == REDIS_REPLY_STRING &&
            strcmp(sub->str, kid_or_name) == 0) {
            sp_status one = auth_key_revoke_one(kid);
            if (one != SP_OK && one != SP_E_NOT_FOUND)
                st = one;
            else if (st == SP_E_NOT_FOUND)
                st = one;
        }
        freeReplyObject(sub);
    }
    freeReplyObject(r);
    return st;
}
