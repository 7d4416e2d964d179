/* sp_jwt.h: HS256 JSON Web Tokens for sandpipe's access and refresh
 * tokens. Only HS256 is ever accepted: the header is checked before any
 * library parses the token, and the claims are checked after. Pure
 * functions: no Redis, no clock of their own (the caller passes now). */
#ifndef SP_JWT_H
#define SP_JWT_H

#include <stddef.h>

#include "sp_id.h"

#define TOK_MAX_LEN 4096

typedef enum tok_type { TOK_ACCESS = 0, TOK_REFRESH = 1 } tok_type;

typedef struct tok_claims {
    tok_type type;
    char sub[SP_ID_SIZE];
    char kid[SP_ID_SIZE];
    char jti[SP_ID_SIZE];
    char fam[SP_ID_SIZE]; /* refresh family; empty for access tokens */
    long long iat, nbf, exp;
} tok_claims;

/* Sign c as an HS256 JWT. Returns a malloc'd string the caller frees, or
 * NULL (invalid claims or out of memory). */
char *tok_issue(const tok_claims *c, const char *secret, size_t secretlen);

/* Verify token: HS256 header, signature with secret, exp present and > now,
 * nbf (if present) <= now, token_use equal to want, sub/kid/jti valid ids.
 * Returns 0 and fills out, or -1 (any failure: the caller answers 401). */
int tok_verify(const char *token, tok_type want, const char *secret,
               size_t secretlen, long long now, tok_claims *out);

#endif
