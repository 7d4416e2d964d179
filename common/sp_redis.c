/* sp_redis.c: per-thread Redis connections (sp_redis.h). */
#include "sp_redis.h"
#include "sp_config.h"
#include "sp_keys.h"
#include "sp_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RDS_WARN_EVERY_S 5

static char rds_host[256];
static int rds_port;
static char rds_unix[108];
static struct timeval rds_timeout;
static pthread_key_t rds_tls;
static pthread_once_t rds_once = PTHREAD_ONCE_INIT;

static void rds_tls_free(void *p)
{
    redisFree(p);
}

static void rds_tls_init(void)
{
    pthread_key_create(&rds_tls, rds_tls_free);
}

int rds_init(char *err, size_t errlen)
{
    const char *url = cfg_str(CFG_REDIS_URL);
    long long ms = cfg_int(CFG_SP_REDIS_TIMEOUT_MS);

    pthread_once(&rds_once, rds_tls_init);
    rds_timeout.tv_sec = ms / 1000;
    rds_timeout.tv_usec = (ms % 1000) * 1000;
    if (key_set_prefix(cfg_str(CFG_SP_PREFIX)) != 0) {
        snprintf(err, errlen, "SP_PREFIX: only letters, digits and :_-.");
        return -1;
    }
    rds_unix[0] = rds_host[0] = '\0';
    if (strncmp(url, "unix://", 7) == 0) {
        if (strlen(url + 7) == 0 || strlen(url + 7) >= sizeof rds_unix) {
            snprintf(err, errlen, "REDIS_URL: bad unix socket path");
            return -1;
        }
        snprintf(rds_unix, sizeof rds_unix, "%s", url + 7);
        return 0;
    }
    if (strncmp(url, "redis://", 8) == 0) {
        const char *hp = url + 8, *colon = strrchr(hp, ':');
        char *end;
        long port = 6379;
        size_t hlen = colon ? (size_t)(colon - hp) : strlen(hp);
        if (strchr(hp, '@') != NULL || strchr(hp, '/') != NULL) {
            snprintf(err, errlen,
                     "REDIS_URL: credentials and paths are not supported");
            return -1;
        }
        if (colon != NULL) {
            port = strtol(colon + 1, &end, 10);
            if (*end != '\0' || port < 1 || port > 65535) {
                snprintf(err, errlen, "REDIS_URL: bad port");
                return -1;
            }
        }
        if (hlen == 0 || hlen >= sizeof rds_host) {
            snprintf(err, errlen, "REDIS_URL: bad host");
            return -1;
        }
        memcpy(rds_host, hp, hlen);
        rds_host[hlen] = '\0';
        rds_port = (int)port;
        return 0;
    }
    snprintf(err, errlen, "REDIS_URL: must start with redis:// or unix://");
    return -1;
}

/* This thread's connection, made if needed; *fresh says it was made now. */
static redisContext *rds_conn_fresh(int *fresh)
{
    redisContext *c = pthread_getspecific(rds_tls);

    *fresh = 0;
    if (c != NULL)
        return c;
    if (rds_unix[0] != '\0')
        c = redisConnectUnixWithTimeout(rds_unix, rds_timeout);
    else
        c = redisConnectWithTimeout(rds_host, rds_port, rds_timeout);
    if (c == NULL || c->err) {
        /* Once per RDS_WARN_EVERY_S while Redis stays away, not for every
         * try of every thread. */
        static _Atomic long long last_warn;
        long long now = (long long)time(NULL);
        if (now - last_warn >= RDS_WARN_EVERY_S) {
            last_warn = now;
            log_warn("redis connect failed: %s",
                     c ? c->errstr : "out of memory");
        }
        redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, rds_timeout) != REDIS_OK) {
        redisFree(c);
        return NULL;
    }
    pthread_setspecific(rds_tls, c);
    *fresh = 1;
    return c;
}

static redisContext *rds_conn(void)
{
    int fresh;
    return rds_conn_fresh(&fresh);
}

/* A kept connection whose server went away (a Redis restart) fails on
 * first use with EOF or EPIPE, before the command could run: such a
 * command is safe to send once more on a new connection. */
static int rds_stale(const redisContext *c)
{
    return c->err == REDIS_ERR_EOF ||
           (c->err == REDIS_ERR_IO && (errno == EPIPE || errno == ECONNRESET));
}

void rds_close(void)
{
    redisContext *c = pthread_getspecific(rds_tls);
    if (c != NULL) {
        pthread_setspecific(rds_tls, NULL);
        redisFree(c);
    }
}

/* A NULL reply means the connection is broken (I/O error, timeout, or a
 * protocol error): drop it so that the next command reconnects. */
static redisReply *rds_checked(redisReply *r, redisContext *c)
{
    if (r == NULL) {
        log_warn("redis command failed: %s", c->errstr);
        rds_close();
    }
    return r;
}

/* 1 if r is Redis saying it is still loading its data. */
static int rds_loading(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR &&
           strncmp(r->str, "LOADING", 7) == 0;
}

/* One try of a command on this thread's connection, remade once if a kept
 * connection was stale. */
static redisReply *rds_try(const char *fmt, va_list ap)
{
    int fresh;
    redisContext *c = rds_conn_fresh(&fresh);
    redisReply *r;
    va_list again;

    if (c == NULL)
        return NULL;
    va_copy(again, ap);
    r = redisvCommand(c, fmt, ap);
    if (r == NULL && !fresh && rds_stale(c)) {
        rds_close();
        c = rds_conn_fresh(&fresh);
        if (c != NULL)
            r = redisvCommand(c, fmt, again);
    }
    va_end(again);
    return c != NULL ? rds_checked(r, c) : NULL;
}

redisReply *rds_cmd(const char *fmt, ...)
{
    redisReply *r;
    va_list ap;

    for (int waited = 0;; waited += 100) {
        va_start(ap, fmt);
        r = rds_try(fmt, ap);
        va_end(ap);
        if (!rds_loading(r) || waited >= RDS_LOADING_WAIT_MS)
            return r;
        /* Redis is reading its AOF at start: wait for it, not fail. */
        freeReplyObject(r);
        usleep(100 * 1000);
    }
}

long long rds_vformat(char **out, const char *fmt, va_list ap)
{
    return redisvFormatCommand(out, fmt, ap);
}

void rds_free_formatted(char *cmd)
{
    redisFreeCommand(cmd);
}

int rds_send_formatted(int n, char *const *cmds, const size_t *lens)
{
    redisContext *c = rds_conn();
    int got = 0;

    if (c == NULL)
        return 0;
    for (int i = 0; i < n; i++) {
        if (redisAppendFormattedCommand(c, cmds[i], lens[i]) != REDIS_OK)
            goto fail;
    }
    for (; got < n; got++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL)
            goto fail;
        if (rds_loading(r)) {
            /* Not run, nor the ones after it; the connection stays. */
            freeReplyObject(r);
            rds_close(); /* its queued replies are of no use */
            return got;
        }
        /* An event sent again after an outage (its id is taken: it ran
         * the first time) is refused: that is not a failure. */
        if (r->type == REDIS_REPLY_ERROR &&
            strstr(r->str, "equal or smaller than the target stream") == NULL)
            log_warn("redis command failed: %s", r->str);
        freeReplyObject(r);
    }
    return got;
fail:
    log_warn("redis pipeline failed: %s", c->errstr);
    rds_close();
    return got;
}

/* One try of rds_cmd_wait. */
static redisReply *rds_try_wait(long long wait_ms, const char *fmt, va_list ap)
{
    redisContext *c = rds_conn();
    struct timeval tv;
    redisReply *r;

    if (c == NULL)
        return NULL;
    wait_ms += rds_timeout.tv_sec * 1000 + rds_timeout.tv_usec / 1000;
    tv.tv_sec = wait_ms / 1000;
    tv.tv_usec = (wait_ms % 1000) * 1000;
    redisSetTimeout(c, tv);
    r = redisvCommand(c, fmt, ap);
    if (r == NULL)
        return rds_checked(r, c);
    redisSetTimeout(c, rds_timeout);
    return r;
}

redisReply *rds_cmd_wait(long long wait_ms, const char *fmt, ...)
{
    redisReply *r;
    va_list ap;

    for (long long waited = 0;; waited += 100) {
        va_start(ap, fmt);
        r = rds_try_wait(wait_ms, fmt, ap);
        va_end(ap);
        /* While Redis loads its data, wait for it (within wait_ms), as
         * rds_cmd does. */
        if (!rds_loading(r) || waited >= wait_ms)
            return r;
        freeReplyObject(r);
        usleep(100 * 1000);
    }
}

redisReply *rds_cmdv(int argc, const char **argv, const size_t *lens)
{
    int fresh;
    redisContext *c = rds_conn_fresh(&fresh);
    redisReply *r;

    if (c == NULL)
        return NULL;
    r = redisCommandArgv(c, argc, argv, lens);
    if (r == NULL && !fresh && rds_stale(c)) {
        rds_close();
        c = rds_conn_fresh(&fresh);
        if (c == NULL)
            return NULL;
        r = redisCommandArgv(c, argc, argv, lens);
    }
    return rds_checked(r, c);
}

int rds_pipeline(int n, const char *const *argvs[], const int *argcs,
                 redisReply **replies)
{
    redisContext *c = rds_conn();
    int got = 0;

    if (c == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        if (redisAppendCommandArgv(c, argcs[i], (const char **)argvs[i],
                                   NULL) != REDIS_OK)
            goto fail;
    }
    for (; got < n; got++) {
        void *r = NULL;
        if (redisGetReply(c, &r) != REDIS_OK || r == NULL)
            goto fail;
        replies[got] = r;
    }
    return 0;
fail:
    while (got > 0)
        freeReplyObject(replies[--got]);
    log_warn("redis pipeline failed: %s", c->errstr);
    rds_close();
    return -1;
}

/* rds_try with its arguments. */
static redisReply *rds_try_args(const char *fmt, ...)
{
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = rds_try(fmt, ap);
    va_end(ap);
    return r;
}

int rds_ready(void)
{
    redisReply *r = rds_try_args("PING");
    int ok;

    ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return ok;
}

int rds_ping(void)
{
    redisReply *r = rds_cmd("PING");
    int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return ok;
}

const char *rds_hfield(const redisReply *h, const char *name)
{
    if (h == NULL || h->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        if (h->element[i]->type == REDIS_REPLY_STRING &&
            h->element[i + 1]->type == REDIS_REPLY_STRING &&
            strcmp(h->element[i]->str, name) == 0)
            return h->element[i + 1]->str;
    }
    return NULL;
}
