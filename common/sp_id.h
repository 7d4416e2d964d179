/* sp_id.h: server-made ids ("exe_" + 22 base64url chars = 132 random bits;
 * sandbox ids "sbx_" + 26 lower-case base32 chars = 130 random bits, so a
 * host name, which has no case, carries one unchanged) and the validation
 * every id passes before it reaches a Redis key. */
#ifndef SP_ID_H
#define SP_ID_H

#include <stddef.h>

#define SP_ID_MAX         64              /* longest id, in characters */
#define SP_ID_SIZE        (SP_ID_MAX + 1) /* a buffer holding any id */
#define ID_RANDOM_CHARS   22              /* 22 * 6 = 132 bits >= 122 */
#define ID_SANDBOX_PREFIX "sbx_"
#define ID_LOWER_CHARS    26 /* 26 * 5 = 130 bits >= 128 */

/* 1 if s matches [A-Za-z0-9_-]{1,SP_ID_MAX}, else 0. NULL is invalid. */
int id_valid(const char *s);

/* 1 if s is valid and starts with prefix (e.g. "sbx_"), else 0. */
int id_valid_typed(const char *s, const char *prefix);

/* Write prefix + 22 random base64url chars into out (size >= outlen).
 * Returns 0, or -1 if the kernel's random source failed or out is small. */
int id_generate(const char *prefix, char *out, size_t outlen);

/* Write a new sandbox id, ID_SANDBOX_PREFIX + ID_LOWER_CHARS characters of
 * [a-z2-7], into out (size >= outlen): lower case only, so that the host
 * <port>-<id>.<domain> of a preview URL is the id itself. 0, or -1 as
 * id_generate. */
int id_generate_sandbox(char *out, size_t outlen);

/* Fill out with n random bytes from getrandom(); 0 or -1. */
int id_random_bytes(void *out, size_t n);

/* base64url (no padding) of n bytes into out; returns chars written or -1
 * if out (including the NUL) is too small. */
int id_b64url(const unsigned char *in, size_t n, char *out, size_t outlen);

#endif
