/* sp_auth.h: the one credential check every handler calls, and the API key
 * store. A request is authenticated by "Authorization: Bearer <access JWT>"
 * or "X-API-Key: <key>" (and, for SSE routes, "?access_token="). API keys
 * are stored only as SHA-256 hashes. */
#ifndef SP_AUTH_H
#define SP_AUTH_H

#include <stddef.h>

#include "sp_http.h"
#include "sp_status.h"

#define AUTH_KEY_PREFIX      "spk_"
#define AUTH_KEY_LEN         47 /* "spk_" + 43 base64url chars (256 bits) */
#define AUTH_SHA256_HEX_SIZE 65 /* 64 hex chars of a SHA-256 and the NUL */

/* Route flags (http_route.auth). */
#define AUTH_REQUIRED    1
#define AUTH_QUERY_TOKEN 2 /* also accept ?access_token= (EventSource) */

/* Read JWT_SECRET (after cfg_load). 0, or -1 with a reason. */
int auth_init(char *err, size_t errlen);

/* Authenticate r; flags are the route's AUTH_* flags. SP_OK fills out;
 * SP_E_UNAUTHENTICATED for a missing or bad credential; SP_E_UNAVAILABLE
 * if Redis cannot be asked. */
sp_status auth_check(http_req *r, int flags, auth_info *out);

/* The same from the credentials themselves: the X-API-Key value, the
 * Authorization value and a query token (each NULL when absent; the
 * query token counts only without Authorization). */
sp_status auth_credentials(const char *key, const char *authz,
                           const char *token, auth_info *out);

/* The token of an Authorization value "Bearer <token>" (any case, the
 * spaces before the token skipped), pointing into authz; NULL for any
 * other value. The one reading of the header, for auth_credentials and
 * for sp-preview, which keeps our credentials from a sandbox. */
const char *auth_bearer(const char *authz);

/* Look up an API key. SP_OK fills out (sub, kid), else as auth_check. */
sp_status auth_api_key(const char *key, auth_info *out);

/* 1 if the access token with this jti or the key kid was revoked, 0 if
 * not, -1 if Redis cannot be asked. */
int auth_is_revoked(const char *jti, const char *kid);

/* Create an API key for subject name. Writes the key (shown once) into
 * key_out (>= AUTH_KEY_LEN + 1) and its id into kid_out (>= SP_ID_SIZE).
 * Returns SP_OK, SP_E_INVALID_ARGUMENT (bad name) or SP_E_UNAVAILABLE. */
sp_status auth_key_create(const char *name, char *key_out, char *kid_out);

/* Revoke the key with id kid, or every key of subject kid when by_name.
 * Returns SP_OK, SP_E_NOT_FOUND or SP_E_UNAVAILABLE. */
sp_status auth_key_revoke(const char *kid_or_name);

/* SHA-256 of s as 64 lowercase hex chars into out (>= AUTH_SHA256_HEX_SIZE). */
void auth_sha256_hex(const char *s, char *out);

/* The signing secret and its length. */
const char *auth_secret(size_t *len);

/* Per-sandbox tokens of the data plane (E2B's envdAccessToken and
 * trafficAccessToken, preview URLs): base64url(HMAC-SHA256(secret,
 * purpose NUL sandbox id)), 43 characters. Bound to the sandbox and its
 * purpose, and stateless: ids are never reused, so a token dies with its
 * sandbox (callers check that the sandbox exists); changing JWT_SECRET
 * revokes every one. Purposes: */
#define AUTH_SBX_ENVD       "envd"    /* process, filesystem, files */
#define AUTH_SBX_TRAFFIC    "traffic" /* ports: preview URLs, :49999 */
#define AUTH_SBX_TOKEN_SIZE 44        /* 43 chars and the NUL */
/* Write the token of purpose for sandbox_id into out (AUTH_SBX_TOKEN_SIZE).
 * 0, or -1 (no secret loaded, bad argument). */
int auth_sandbox_token(const char *purpose, const char *sandbox_id, char *out);
/* 1 if presented is that token (compared in constant time), else 0. */
int auth_sandbox_token_ok(const char *purpose, const char *sandbox_id,
                          const char *presented);

#endif
