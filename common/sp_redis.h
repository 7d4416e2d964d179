/* sp_redis.h: Redis access for every program: one connection per thread,
 * made on first use and remade after any I/O error, with connect and
 * command timeouts so that a dead Redis gives a fast error, not a hang.
 * Keys are built by key_of() of sp_keys.h, which adds the configured
 * prefix and validates ids. */
#ifndef SP_REDIS_H
#define SP_REDIS_H

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stddef.h>

#define RDS_KEY_MAX         256
#define RDS_LOADING_WAIT_MS 60000
#define RDS_NUM_SIZE                                                           \
    24 /* a number as a command argument ("%lld"), with its NUL */

/* Parse REDIS_URL, SP_PREFIX and SP_REDIS_TIMEOUT_MS (after cfg_load).
 * Returns 0, or -1 with a reason in err. */
int rds_init(char *err, size_t errlen);

/* Run a command on this thread's connection (hiredis format). Returns the
 * reply, which the caller frees with freeReplyObject(), or NULL if Redis
 * cannot be reached (the connection is dropped and remade next time). An
 * error reply (REDIS_REPLY_ERROR) is returned as a reply, but for LOADING
 * (Redis reading its data at start): then the command is sent again until
 * Redis is ready, for up to RDS_LOADING_WAIT_MS. */
redisReply *rds_cmd(const char *fmt, ...);

/* As rds_cmd, but the reply may take up to wait_ms (for blocking commands
 * such as BLPOP); the normal timeout is restored afterwards. While Redis
 * is loading its data the command is sent again, for up to wait_ms. */
redisReply *rds_cmd_wait(long long wait_ms, const char *fmt, ...);

/* As rds_cmd, with an argument vector (binary safe). */
redisReply *rds_cmdv(int argc, const char **argv, const size_t *lens);

/* Send n commands in one round trip (pipelining): command i is the
 * argument vector argvs[i] of argcs[i] NUL-terminated strings. replies[]
 * receives n replies (caller frees each); returns 0, or -1 if Redis failed
 * (then no reply is returned). */
int rds_pipeline(int n, const char *const *argvs[], const int *argcs,
                 redisReply **replies);

/* Format a command as rds_cmd would (hiredis format) into the Redis
 * protocol: *out (caller frees with rds_free_formatted) of the returned
 * length, or -1. */
long long rds_vformat(char **out, const char *fmt, va_list ap);
void rds_free_formatted(char *cmd);

/* Send n formatted commands in one round trip and read their replies in
 * order, freeing them (error replies are logged). Returns how many were
 * answered, 0..n; fewer than n means the connection failed (it is
 * dropped) or Redis is still loading its data (LOADING): the rest were not
 * run and may be sent again. */
int rds_send_formatted(int n, char *const *cmds, const size_t *lens);

/* 1 if Redis answers PING now (one try, no wait while it is loading),
 * else 0: before sending many commands to a Redis that may have just
 * come back, as commands sent while it loads are refused one by one and
 * those after them may run. */
int rds_ready(void);

/* 1 if this thread's connection answers PING, else 0. */
int rds_ping(void);

/* The value of field name in an HGETALL reply h (an array of field,
 * value, ...), or NULL (absent, or h is no such array). Points into h. */
const char *rds_hfield(const redisReply *h, const char *name);

/* Close this thread's connection (also done at thread exit). */
void rds_close(void);

#endif
