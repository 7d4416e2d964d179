/* helperd.c: sp-helperd, the sandbox helper daemon (docs/DESIGN.md §5).
 *
 * Theory of operation
 * -------------------
 * One sp-helperd runs as root on each sandbox host and owns every sandbox
 * there. It has these threads:
 *
 *   intake thread   XREADGROUP on "<prefix>jobs" (shared by all helpers,
 *                   consumer group "helpers") and "<prefix>hjobs:<id>" (jobs
 *                   for sandboxes this helper owns); parsed jobs go into a
 *                   queue and one byte into the wake pipe. A job's entry
 *                   is acknowledged and deleted once it is handled (or
 *                   dropped); file bodies are never in it, but in the
 *                   spool (sp_spool.h).
 *   main thread     one poll() loop over: the wake pipe, the workers'
 *                   completion pipe, each sandbox's control socket
 *                   (sp-init's exit reports), the stdout/stderr pipes
 *                   (or PTY master) and stdin of every running execution,
 *                   and the inotify fd of every file watch (hd_watch.c).
 *                   It runs every job, appends output chunks in order to
 *                   "<prefix>events:<exe id>" (a capped stream), writes
 *                   results to "<prefix>exec:<exe id>", answers jobs on
 *                   "<prefix>reply:<rid>", ends executions past their
 *                   deadline and sandboxes past their timeout. It alone
 *                   owns the lists of sandboxes and writes to Redis.
 *   workers         HD_WORKERS threads (hd_work.c) that make sandboxes
 *                   (sbx_create: bwrap, sp-init's hello, cgroups, network),
 *                   remove them (sbx_destroy: the cgroup kill, bwrap
 *                   reaped, unmount, directory) and, while other
 *                   executions run, spawn one-off runs' programs (sp-init
 *                   forks, the host moves, the program execs): the parts
 *                   that wait. A
 *                   finished piece goes to a completion queue and a byte
 *                   into the completion pipe; the main thread then
 *                   records, publishes and answers. A job that waits for
 *                   one (a create, a run that found the pool empty) is
 *                   held: acknowledged once it is answered.
 *   beat thread     every LOST_BEAT_MS renews this helper's score (Unix ms)
 *                   in "<prefix>helpers" (sp_lost.h); it runs apart from
 *                   the main loop, so a long job never makes the helper
 *                   look gone. If the helper was swept as gone anyway, the
 *                   main loop ends its sandboxes without publishing.
 *
 * Sandboxes are made only by the workers, which are started once and never
 * exit while the helper runs: a bwrap process dies with the thread that
 * made it (PDEATHSIG), and with it every process of the sandbox; so a
 * SIGKILLed helper leaves no sandbox process behind.
 *
 * Processes: helperd → bwrap → sp-init (PID 1 inside) → programs (see
 * sbx.c). Each sandbox runs as its own host uid, SP_HELPER_UID + slot.
 *
 * A stateful context (hd_ctx.c) is a background execution running a
 * language driver; its stdout carries frames that become the events and
 * results of the runs sent to it, one run at a time.
 *
 * At start it reconciles: sandboxes, cgroups, mounts and directories of an
 * earlier run are removed (sbx_reap_leftovers); Redis records of the
 * sandboxes it owned (every one it made is listed in helper:<id>:sbxs
 * before use, pooled ones too) are deleted and executions that were
 * running are finished as "error: sandbox_lost" (lost_helper, sp_lost.h,
 * unless a handler did so first); jobs delivered to it but not
 * acknowledged are read again (those past their deadline are dropped:
 * nobody waits for them). */
#include "hd.h"
#include "sp_auth.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_lost.h"
#include "sp_redis.h"
#include "sp_rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HD_TICK_MS  250
#define HD_POLL_MAX 8192

static int hd_wake[2];
static pthread_mutex_t hd_qlock = PTHREAD_MUTEX_INITIALIZER;
static hd_job *hd_qhead, *hd_qtail;
static char hd_k_jobs[RDS_KEY_MAX], hd_k_hjobs[RDS_KEY_MAX];
static volatile sig_atomic_t hd_stop;
static volatile sig_atomic_t hd_lost_flag; /* swept as gone: end all */

static void hd_job_free(hd_job *j)
{
    if (j == NULL)
        return;
    cJSON_Delete(j->args);
    free(j);
}

/* ---- intake thread ---------------------------------------------------- */

/* Parse one stream entry [id, [field, value, ...]] into a job. */
static hd_job *hd_job_parse(redisReply *e, int shared)
{
    hd_job *j;
    redisReply *f;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return NULL;
    j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    snprintf(j->entry, sizeof j->entry, "%s", e->element[0]->str);
    j->shared = shared;
    j->opn = HC_OP_COUNT;
    f = e->element[1];
    for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements;
         i += 2) {
        const char *name = f->element[i]->str;
        redisReply *v = f->element[i + 1];
        if (v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(name, "op") == 0) {
            snprintf(j->op, sizeof j->op, "%s", v->str);
            j->opn = hc_op_find(v->str);
        } else if (strcmp(name, "rid") == 0 && id_valid(v->str))
            snprintf(j->rid, sizeof j->rid, "%s", v->str);
        else if (strcmp(name, "deadline") == 0)
            j->deadline_ms = atoll(v->str);
        else if (strcmp(name, "args") == 0)
            j->args = cJSON_Parse(v->str);
    }
    return j;
}

static void hd_enqueue(hd_job *j)
{
    char one = 1;
    pthread_mutex_lock(&hd_qlock);
    if (hd_qtail != NULL)
        hd_qtail->next = j;
    else
        hd_qhead = j;
    hd_qtail = j;
    pthread_mutex_unlock(&hd_qlock);
    if (write(hd_wake[1], &one, 1) < 0 && errno != EAGAIN)
        log_warn("write(wake pipe) failed: %s", strerror(errno));
}

/* Acknowledge and delete entry id of stream at once (its job is dropped
 * or unreadable; intake thread): nothing of it stays in Redis. */
static void hd_forget(const char *stream, const char *id)
{
    const char *ack[] = {"XACK", stream, "helpers", id};
    const char *del[] = {"XDEL", stream, id};
    const char *const *argvs[] = {ack, del};
    const int argcs[] = {4, 3};
    redisReply *rep[2];

    if (rds_pipeline(2, argvs, argcs, rep) == 0) {
        freeReplyObject(rep[0]);
        freeReplyObject(rep[1]);
    }
}

/* Queue entry e of a stream as a job; one that cannot be read is
 * forgotten at once. */
static void hd_take_entry(redisReply *e, int shared)
{
    hd_job *j = hd_job_parse(e, shared);

    if (j != NULL)
        hd_enqueue(j);
    else if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1 &&
             e->element[0]->type == REDIS_REPLY_STRING)
        hd_forget(shared ? hd_k_jobs : hd_k_hjobs, e->element[0]->str);
}

/* Queue every entry of an XREADGROUP reply. */
static void hd_take(redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t s = 0; s < r->elements; s++) {
        redisReply *st = r->element[s];
        int shared;
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2)
            continue;
        shared = strcmp(st->element[0]->str, hd_k_jobs) == 0;
        for (size_t i = 0; i < st->element[1]->elements; i++)
            hd_take_entry(st->element[1]->element[i], shared);
    }
}

static void hd_ensure_groups(void)
{
    freeReplyObject(rds_cmd("XGROUP CREATE %s helpers $ MKSTREAM", hd_k_jobs));
    freeReplyObject(rds_cmd("XGROUP CREATE %s helpers $ MKSTREAM", hd_k_hjobs));
}

static void *hd_intake(void *arg)
{
    int first = 1;
    long long last_claim = 0;
    (void)arg;
    while (!hd_stop) {
        redisReply *r;
        if (first) {
            /* Our own pending entries: delivered before a restart, never
             * acknowledged. */
            hd_ensure_groups();
            r = rds_cmd("XREADGROUP GROUP helpers %s COUNT 1000 STREAMS %s %s "
                        "0 0",
                        hd_helper_id, hd_k_jobs, hd_k_hjobs);
            if (r == NULL) {
                sleep(1);
                continue;
            }
            hd_take(r);
            freeReplyObject(r);
            first = 0;
        }
        if (hd_now_ms() - last_claim > 10000) {
            /* Shared jobs stuck with a helper that died go to us. */
            last_claim = hd_now_ms();
            r = rds_cmd("XAUTOCLAIM %s helpers %s 30000 0-0 COUNT 100",
                        hd_k_jobs, hd_helper_id);
            if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
                redisReply *entries = r->element[1];
                for (size_t i = 0; i < entries->elements; i++)
                    hd_take_entry(entries->element[i], 1);
            }
            freeReplyObject(r);
        }
        r = rds_cmd_wait(1000,
                         "XREADGROUP GROUP helpers %s COUNT 64 BLOCK 1000 "
                         "STREAMS %s %s > >",
                         hd_helper_id, hd_k_jobs, hd_k_hjobs);
        if (r == NULL) {
            sleep(1);
            first = 1;
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "NOGROUP"))
            hd_ensure_groups();
        hd_take(r);
        freeReplyObject(r);
    }
    return NULL;
}

/* The job has been handled or dropped: acknowledged and deleted from its
 * stream, so that the stream does not grow (docs/KEYS.md). */
static void hd_ack(const hd_job *j)
{
    const char *stream = j->shared ? hd_k_jobs : hd_k_hjobs;

    /* Queued after the job's own writes (hd_pub): a job whose effects
     * Redis has not got stays pending, to be read again by a restarted
     * helper; once done nothing of it stays in Redis. */
    hd_pub("XACK %s helpers %s", stream, j->entry);
    hd_pub("XDEL %s %s", stream, j->entry);
}

/* A held job is done (hd_job_release). */
static void hd_job_done(hd_job *j)
{
    hd_ack(j);
    hd_job_free(j);
}

static void hd_drain_jobs(void)
{
    char sink[256];
    hd_job *list;

    while (read(hd_wake[0], sink, sizeof sink) > 0)
        ;
    pthread_mutex_lock(&hd_qlock);
    list = hd_qhead;
    hd_qhead = hd_qtail = NULL;
    pthread_mutex_unlock(&hd_qlock);
    while (list != NULL) {
        hd_job *next = list->next;
        list->in_op = 1;
        hd_ops_run(list);
        list->in_op = 0;
        /* Else its function will release it (later, on a worker's end). */
        if (!list->held || list->released)
            hd_job_done(list);
        /* Its answer now: the next job may be slow (making a sandbox). */
        hd_pub_flush();
        list = next;
    }
}

/* ---- start-up and the loop -------------------------------------------- */

/* Forget what an earlier run of this helper left: its sandboxes on this
 * host, and in Redis its executions (ended as lost) and records. Waits
 * while another program sweeps them (sp_lost.h). */
static void hd_reconcile(void)
{
    int n = sbx_reap_leftovers();

    if (n != 0)
        log_info("removed %d sandboxes left by an earlier run", n);
    for (int tries = 0; tries < 300; tries++) {
        if (lost_helper(hd_helper_id, LOST_ERROR) != LOST_BUSY)
            break;
        usleep(100 * 1000);
    }
}

/* Register this helper (its heartbeat score is Unix ms). */
static void hd_register(void)
{
    char k[RDS_KEY_MAX];
    key_of(k, sizeof k, KEY_HELPERS, NULL);
    freeReplyObject(rds_cmd("ZADD %s %lld %s", k, hd_now_ms(), hd_helper_id));
}

/* Renew the heartbeat if this helper is still registered; if it was swept
 * as gone (its heartbeat was late), its work was ended as lost: the main
 * loop ends its sandboxes without a word (hd_lost_flag), and it registers
 * again. */
static const char hd_beat_lua[] =
    "if redis.call('ZSCORE', KEYS[1], ARGV[1]) then "
    "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) return 1 end return 0";

static void *hd_beat(void *arg)
{
    char k[RDS_KEY_MAX];

    (void)arg;
    key_of(k, sizeof k, KEY_HELPERS, NULL);
    while (!hd_stop) {
        redisReply *r = rds_cmd("EVAL %s 1 %s %s %lld", hd_beat_lua, k,
                                hd_helper_id, hd_now_ms());
        if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
            log_warn("this helper was found gone (late heartbeat): ending "
                     "its sandboxes");
            hd_lost_flag = 1;
            hd_register();
        }
        freeReplyObject(r);
        usleep(LOST_BEAT_MS * 1000);
    }
    return NULL;
}

static void hd_on_signal(int sig)
{
    (void)sig;
    hd_stop = 1;
}

typedef struct hd_pollref {
    hd_sandbox *s;
    hd_exec *e;
    int what; /* 0: control, 1: stdout, 2: stderr, 3: stdin, 4: wake,
               * 5: workers' completions, 6: a watch's inotify */
    struct hd_watch *w;
} hd_pollref;

static struct pollfd hd_pfd[HD_POLL_MAX];
static hd_pollref hd_ref[HD_POLL_MAX];

/* Fill the poll set: the wake pipe, the workers' completions, each
 * sandbox's control socket, each execution's output and pending stdin. Returns
 * its size; *next becomes the earliest deadline before it. */
static nfds_t hd_poll_set(long long *next)
{
    nfds_t n = 0;

    hd_pfd[n] = (struct pollfd){.fd = hd_wake[0], .events = POLLIN};
    hd_ref[n++] = (hd_pollref){NULL, NULL, 4, NULL};
    hd_pfd[n] = (struct pollfd){.fd = hd_work_fd(), .events = POLLIN};
    hd_ref[n++] = (hd_pollref){NULL, NULL, 5, NULL};
    for (hd_sandbox *s = hd_sandboxes; s != NULL; s = s->next) {
        /* A paused sandbox's deadlines wait for its resume. */
        long long d = s->paused_ms ? 0 : hd_exec_next_deadline(s);
        if (d > 0 && d < *next)
            *next = d;
        d = s->paused_ms ? 0 : hd_ctx_next_deadline(s);
        if (d > 0 && d < *next)
            *next = d;
        if (n < HD_POLL_MAX) {
            hd_pfd[n] =
                (struct pollfd){.fd = sbx_control_fd(s->sbx), .events = POLLIN};
            hd_ref[n++] = (hd_pollref){s, NULL, 0, NULL};
        }
        for (struct hd_watch *w = s->watches; w != NULL && n < HD_POLL_MAX;
             w = hd_watch_next(w)) {
            hd_pfd[n] = (struct pollfd){.fd = hd_watch_fd(w), .events = POLLIN};
            hd_ref[n++] = (hd_pollref){s, NULL, 6, w};
        }
        for (hd_exec *e = s->execs; e != NULL; e = e->next) {
            for (int w = 0; w < 2; w++) {
                if (e->fds[w] >= 0 && n < HD_POLL_MAX) {
                    hd_pfd[n] =
                        (struct pollfd){.fd = e->fds[w], .events = POLLIN};
                    hd_ref[n++] = (hd_pollref){s, e, 1 + w, NULL};
                }
            }
            if (e->in_fd >= 0 && e->pending_in.len > 0 && n < HD_POLL_MAX) {
                hd_pfd[n] = (struct pollfd){.fd = e->in_fd, .events = POLLOUT};
                hd_ref[n++] = (hd_pollref){s, e, 3, NULL};
            }
        }
    }
    return n;
}

/* Handle what poll reported for the n entries: output and stdin first,
 * then exit reports (so a process's last output is read before its
 * result), then jobs, then the work the workers finished (sandboxes made
 * or ended). */
static void hd_poll_handle(nfds_t n)
{
    for (nfds_t i = 0; i < n; i++) {
        if (hd_pfd[i].revents == 0)
            continue;
        if (hd_ref[i].what == 1 || hd_ref[i].what == 2)
            hd_exec_read(hd_ref[i].e, hd_ref[i].what - 1);
        else if (hd_ref[i].what == 3)
            hd_exec_write_stdin(hd_ref[i].e);
        else if (hd_ref[i].what == 6)
            hd_watch_read(hd_ref[i].w); /* may end only that watch */
    }
    /* Sandboxes can end here, so this pass is last and re-checks that
     * each one still exists. */
    for (nfds_t i = 0; i < n; i++) {
        hd_sandbox *s = hd_ref[i].s;
        sbx_exit_event ev[64];
        size_t nev = 0;
        if (hd_pfd[i].revents == 0 || hd_ref[i].what != 0)
            continue;
        if (sbx_handle_control(s->sbx, ev, 64, &nev) != 0) {
            for (size_t k = 0; k < nev; k++)
                hd_exec_exited(s, ev[k].req_id, ev[k].wait_status);
            hd_sandbox_end(s, "sandbox died");
            /* The references of later sandboxes are still valid, but
             * this one's are not: finish the pass next time round. */
            break;
        }
        for (size_t k = 0; k < nev; k++)
            hd_exec_exited(s, ev[k].req_id, ev[k].wait_status);
    }
    if (hd_pfd[0].revents != 0)
        hd_drain_jobs();
    if (hd_pfd[1].revents != 0)
        hd_work_complete();
}

/* Deadlines, timeouts and one-off sandboxes whose run ended. */
static void hd_tick(long long now)
{
    for (hd_sandbox *s = hd_sandboxes; s != NULL; s = s->next) {
        if (s->paused_ms != 0)
            continue; /* its clocks stand still until it is resumed */
        hd_ctx_tick(s, now);
        hd_exec_tick(s, now);
        hd_watch_tick(s, now);
    }
    /* The ends of executions go out before any slow teardown below, so
     * that a waiting caller never waits for a sandbox's removal. */
    hd_pub_flush();
    for (hd_sandbox *s = hd_sandboxes, *nx; s != NULL; s = nx) {
        const char *why = hd_sandbox_due(s, now);
        nx = s->next;
        if (why != NULL)
            hd_sandbox_end(s, why);
    }
    hd_metrics_tick(now);
    hd_spool_tick(now);
    hd_tpl_tick(now);
}

/* This helper was swept as gone: its executions were ended as lost and
 * its records deleted; end its sandboxes without publishing anything. */
static void hd_end_lost(void)
{
    hd_lost_flag = 0;
    while (hd_sandboxes != NULL) {
        hd_sandboxes->lost = 1;
        hd_sandbox_end(hd_sandboxes, "found gone");
    }
}

static void hd_loop(void)
{
    while (!hd_stop) {
        long long now = hd_now_ms(), next = now + HD_TICK_MS;
        nfds_t n = hd_poll_set(&next);
        int rc = poll(hd_pfd, n, (int)(next > now ? next - now : 0));

        if (rc < 0 && errno != EINTR) {
            log_error("poll() failed: %s", strerror(errno));
            sleep(1);
        }
        if (rc > 0)
            hd_poll_handle(n);
        now = hd_now_ms();
        hd_tick(now);
        if (hd_lost_flag)
            hd_end_lost();
        /* Everything this pass wrote, in one round trip (or kept while
         * Redis is away: hd_pub.c), before a sandbox is made for the pool
         * (slow, and nobody should wait for it). */
        hd_pub_flush();
        hd_pool_fill();
        hd_np_fill();
        hd_pub_flush();
    }
}

/* The helper's id from the host name, and its job streams' keys. */
static int hd_ids(void)
{
    char host[64];

    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "local");
    snprintf(hd_helper_id, sizeof hd_helper_id, "hlp_%.59s", host);
    for (char *p = hd_helper_id; *p; p++) {
        if (!id_valid((char[]){*p, 0}))
            *p = '-';
    }
    return key_of(hd_k_jobs, sizeof hd_k_jobs, KEY_JOBS, NULL) != 0 ||
                   key_of(hd_k_hjobs, sizeof hd_k_hjobs, KEY_HJOBS,
                          hd_helper_id) != 0
               ? -1
               : 0;
}

/* The sandbox library, with a cgroup subtree of this state directory's
 * own: two sandpipes on one host (say a dev stack and the tests) never
 * reap each other's sandboxes at start. Returns 0, or 2 (bad
 * configuration) or 1 after logging. */
static int hd_sandboxes_init(const char *init_path)
{
    char err[512], state[PATH_MAX], digest[AUTH_SHA256_HEX_SIZE], cgname[64];
    sbx_config sc;

    if (realpath(cfg_str(CFG_SP_STATE_DIR), state) == NULL) {
        log_error("realpath(\"%s\") failed: %s", cfg_str(CFG_SP_STATE_DIR),
                  strerror(errno));
        return 2;
    }
    auth_sha256_hex(state, digest);
    snprintf(cgname, sizeof cgname, "sandpipe-%.12s", digest);
    sc.state_dir = state;
    sc.init_path = init_path;
    sc.cgroup_name = cgname;
    if (sbx_global_init(&sc, err, sizeof err) != 0) {
        log_error("sandbox set-up failed: %s", err);
        return 1;
    }
    return 0;
}

/* The port-forward socket for sp-preview in $SP_STATE_DIR/run (without
 * it the helper works on; preview URLs answer 503). */
static void hd_ports_start(void)
{
    char state[PATH_MAX], run[PATH_MAX + 8];

    if (realpath(cfg_str(CFG_SP_STATE_DIR), state) != NULL) {
        snprintf(run, sizeof run, "%s/run", state);
        hd_ports_serve(run);
    }
}

/* End every sandbox (those being made too, once they are), hand Redis
 * what is still queued (a few seconds if it is away) and leave the set
 * of helpers. */
static void hd_shutdown(void)
{
    char k[RDS_KEY_MAX];

    log_info("stopping: ending every sandbox");
    do {
        while (hd_sandboxes != NULL)
            hd_sandbox_end(hd_sandboxes, "helper stopped");
        hd_pool_drain();
        hd_np_drain();
        hd_work_wait();
    } while (hd_sandboxes != NULL);
    for (int i = 0; i < 10 && hd_pub_flush() != 0; i++)
        usleep(500 * 1000);
    if (hd_pub_pending() > 0)
        log_warn("stopping with %zu bytes of writes Redis never got",
                 hd_pub_pending());
    key_of(k, sizeof k, KEY_HELPERS, NULL);
    freeReplyObject(rds_cmd("ZREM %s %s", k, hd_helper_id));
    sbx_global_cleanup();
}

int main(int argc, char **argv)
{
    static const cfg_id required[] = {CFG_REDIS_URL, CFG_SP_STATE_DIR,
                                      CFG_COUNT};
    char err[512];
    const char *init_path = argc > 1 ? argv[1] : NULL;
    pthread_t tid;
    struct sigaction sa = {0};
    int rc;

    log_set_program("helperd");
    signal(SIGPIPE, SIG_IGN);
    if (init_path == NULL) {
        log_error("usage: sp-helperd /path/to/sp-init");
        return 2;
    }
    if (cfg_load(required, err, sizeof err) != 0 ||
        rds_init(err, sizeof err) != 0) {
        log_error("configuration refused: %s", err);
        return 2;
    }
    if (hd_ids() != 0) {
        log_error("bad helper id");
        return 2;
    }
    if ((rc = hd_sandboxes_init(init_path)) != 0)
        return rc;
    hd_ports_start();
    /* sp-template sits beside sp-init. */
    snprintf(hd_template_path, sizeof hd_template_path, "%.*s/sp-template",
             (int)(strrchr(init_path, '/') ? strrchr(init_path, '/') - init_path
                                           : 1),
             strrchr(init_path, '/') ? init_path : ".");
    if (pipe2(hd_wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_error("pipe2() failed: %s", strerror(errno));
        return 1;
    }
    hd_job_end = hd_job_done;
    if (hd_work_init() != 0 || hd_egress_init() != 0)
        return 1;
    hd_tpl_discard_leftovers();
    sa.sa_handler = hd_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* The templates are listed before the helper says it is alive. */
    hd_tpl_tick(hd_now_ms());
    hd_pub_flush();
    hd_register();
    hd_reconcile();
    hd_tpl_build_reap();
    if (pthread_create(&tid, NULL, hd_beat, NULL) != 0 ||
        pthread_create(&tid, NULL, hd_intake, NULL) != 0) {
        log_error("pthread_create failed");
        return 1;
    }
    log_info("helper %s ready", hd_helper_id);
    hd_loop();
    hd_shutdown();
    return 0;
}
