/* handlers/health.c: the health family: /ping, /health (Redis, with its
 * memory, helper checks and the supervisor's view of every program; 503
 * when Redis is down) and /metrics
 * (Prometheus text); and the sweeper that ends the work of helpers that
 * are gone. */
#include "config.h"
#include "sp_buf.h"
#include "sp_config.h"
#include "sp_http.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_lost.h"
#include "sp_redis.h"
#include "sp_rpc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEALTH_METRICS_MAX (1024 * 1024)
#define HEALTH_SWEEP_MS    1000

static time_t health_started;

static void health_ping(http_req *r)
{
    http_send_raw(r, 200, "text/plain; charset=utf-8", "pong\n", 5);
}

/* The value of field name ("used_memory") in the text of INFO, or -1. */
static long long health_info_field(const char *info, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = info; p != NULL && *p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, name, n) == 0 && p[n] == ':')
            return strtoll(p + n + 1, NULL, 10);
    }
    return -1;
}

/* Redis' memory into h: used_memory and maxmemory in bytes (maxmemory 0:
 * no cap), both absent if INFO failed. */
static void health_redis_memory(cJSON *h)
{
    redisReply *rep = rds_cmd("INFO memory");
    long long used, max;

    if (rep != NULL && rep->type == REDIS_REPLY_STRING) {
        used = health_info_field(rep->str, "used_memory");
        max = health_info_field(rep->str, "maxmemory");
        if (used >= 0 && max >= 0) {
            cJSON_AddNumberToObject(h, "used_memory", (double)used);
            cJSON_AddNumberToObject(h, "maxmemory", (double)max);
        }
    }
    freeReplyObject(rep);
}

/* One line of the supervisor's status file into progs; 1 if the program
 * runs, 0 if not, -1 if the line is not a program's. */
static int health_program(const char *line, cJSON *progs, double *restarts)
{
    char name[33], state[16], last[24], ts[JSON_TIME_SIZE];
    int pid;
    unsigned n;
    long long started;
    cJSON *p;

    if (sscanf(line, "%32s %15s %d %u %lld %23s", name, state, &pid, &n,
               &started, last) != 6)
        return -1;
    p = cJSON_AddObjectToObject(progs, name);
    cJSON_AddStringToObject(p, "state", state);
    cJSON_AddNumberToObject(p, "pid", pid);
    cJSON_AddNumberToObject(p, "restarts", n);
    if (started > 0) {
        json_time(started, ts, sizeof ts);
        cJSON_AddStringToObject(p, "started_at", ts);
    }
    cJSON_AddStringToObject(p, "last_exit", last);
    *restarts += n;
    return strcmp(state, "running") == 0;
}

/* checks.supervision: what sp-supervise (cli/sp_supervise.c) says of
 * every program, from $SP_STATE_DIR/run/supervise.status. Status "off"
 * without that file (programs run by systemd, say), "down" when the
 * supervisor that wrote it is gone, "degraded" while a program is not
 * running, else "ok". */
static void health_supervision(cJSON *checks)
{
    char path[4200], line[256];
    const char *dir = cfg_str(CFG_SP_STATE_DIR);
    cJSON *s = cJSON_AddObjectToObject(checks, "supervision"), *progs;
    int spid = 0, all = 1, alive;
    double restarts = 0;
    FILE *f;

    snprintf(path, sizeof path, "%s/run/supervise.status",
             *dir != '\0' ? dir : "state");
    if ((f = fopen(path, "re")) == NULL) {
        cJSON_AddStringToObject(s, "status", "off");
        return;
    }
    progs = cJSON_CreateObject();
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "supervisor %d", &spid) == 1)
            continue;
        if (health_program(line, progs, &restarts) == 0)
            all = 0;
    }
    fclose(f);
    /* EPERM: it runs, as root. */
    alive = spid > 0 && (kill(spid, 0) == 0 || errno == EPERM);
    cJSON_AddStringToObject(s, "status",
                            !alive ? "down" : (all ? "ok" : "degraded"));
    cJSON_AddNumberToObject(s, "restarts", restarts);
    cJSON_AddItemToObject(s, "programs", progs);
}

static void health_health(http_req *r)
{
    time_t now = time(NULL);
    int redis_ok = rds_ping();
    long long helpers = redis_ok ? rpc_live_helpers() : -1;
    cJSON *root = cJSON_CreateObject(), *checks, *h;
    char ts[JSON_TIME_SIZE];

    json_time(now, ts, sizeof ts);
    cJSON_AddStringToObject(root, "status", redis_ok ? "ok" : "unavailable");
    cJSON_AddStringToObject(root, "timestamp", ts);
    cJSON_AddNumberToObject(root, "uptime", (double)(now - health_started));
    cJSON_AddStringToObject(root, "version", PACKAGE_VERSION);
    checks = cJSON_AddObjectToObject(root, "checks");
    h = cJSON_AddObjectToObject(checks, "redis");
    cJSON_AddStringToObject(h, "status", redis_ok ? "ok" : "down");
    if (redis_ok)
        health_redis_memory(h);
    h = cJSON_AddObjectToObject(checks, "helpers");
    cJSON_AddStringToObject(h, "status", helpers > 0 ? "ok" : "down");
    cJSON_AddNumberToObject(h, "live", helpers < 0 ? 0 : (double)helpers);
    health_supervision(checks);
    if (!redis_ok)
        http_add_header(r, "Retry-After: 2");
    http_send_json(r, redis_ok ? 200 : 503, root);
    cJSON_Delete(root);
}

static void health_metrics(http_req *r)
{
    char k[RDS_KEY_MAX];
    redisReply *rep;
    sp_buf b;

    buf_init_sticky(&b, HEALTH_METRICS_MAX);
    key_of(k, sizeof k, KEY_METRICS_REQUESTS, NULL);
    rep = rds_cmd("HGETALL %s", k);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
        return;
    }
    buf_puts(&b, "# HELP sandpipe_requests_total Requests answered, by "
                 "endpoint family and HTTP status.\n"
                 "# TYPE sandpipe_requests_total counter\n");
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        char family[64];
        int status;
        /* Fields are "<family> <status>", written by http_count. */
        if (sscanf(rep->element[i]->str, "%63s %d", family, &status) != 2)
            continue;
        buf_printf(&b,
                   "sandpipe_requests_total{family=\"%s\",status=\"%d\"} "
                   "%s\n",
                   family, status, rep->element[i + 1]->str);
    }
    freeReplyObject(rep);
    buf_printf(&b,
               "# HELP sandpipe_helpers_live Sandbox helpers with a fresh "
               "heartbeat.\n# TYPE sandpipe_helpers_live gauge\n"
               "sandpipe_helpers_live %lld\n"
               "# HELP sandpipe_uptime_seconds Seconds since the health "
               "program started.\n# TYPE sandpipe_uptime_seconds gauge\n"
               "sandpipe_uptime_seconds %lld\n",
               rpc_live_helpers() < 0 ? 0 : rpc_live_helpers(),
               (long long)(time(NULL) - health_started));
    if (b.data != NULL && !buf_failed(&b))
        http_send_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8",
                      b.data, b.len);
    else
        http_send_error(r, SP_E_INTERNAL, NULL, "metrics too large");
    buf_free(&b);
}

static const http_route health_routes[] = {
    {"GET", "/ping", health_ping, 0},
    {"GET", "/health", health_health, 0},
    {"GET", "/metrics", health_metrics, 0},
};

/* The sweeper: once a second, the work of helpers whose heartbeat
 * stopped is ended as lost (sp_lost.h), so that no execution stays
 * "running" while no helper runs to end it. Every sp-health runs one; a
 * lock in Redis makes one of them do each sweep. */
static void *health_sweeper(void *arg)
{
    sigset_t term;

    (void)arg;
    /* SIGTERM belongs to http_main's terminator thread. */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &term, NULL);
    for (;;) {
        lost_sweep();
        usleep(HEALTH_SWEEP_MS * 1000);
    }
    return NULL;
}

static int health_init(void)
{
    pthread_t tid;

    health_started = time(NULL);
    if (pthread_create(&tid, NULL, health_sweeper, NULL) != 0)
        return -1;
    pthread_detach(tid);
    return 0;
}

int main(void)
{
    return http_main("health", health_routes,
                     sizeof health_routes / sizeof health_routes[0],
                     health_init);
}
