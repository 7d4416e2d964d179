/* worker/wk_main.c: sp-worker, the program that does long work outside
 * any request: today workflow runs (POST /workflows, handlers/workflows*.c).
 *
 * Theory of operation.
 *
 *   Processes. One sp-worker, supervised like every program (sp-supervise
 *   or its systemd unit), started again within 2 s when it dies; more
 *   than one may run (on one host or several) against one Redis. It holds
 *   no socket: its only inputs are Redis (the queue, the schedule) and its
 *   outputs Redis (run records, event streams), the helper (through the
 *   typed client sp_helper.h, like any handler) and object storage
 *   (sp_store.h: it holds the storage credentials, as sp-storage does).
 *
 *   Threads. SP_THREADS threads, each a consumer of its own name
 *   (<SP_WORKER_NAME>-<n>) in the group "workers" of the stream wfqueue
 *   (sp_queue.h). A thread takes one entry, drives that run to its end
 *   (wk_run.c), finishes the entry (XACK, XDEL), and takes the next. The
 *   first thread also runs the timer once a second (wk_sched.c), which
 *   turns due schedules into runs on the same queue; one more thread
 *   renews the leases of the entries being worked on.
 *
 *   A run. Its record wfrun:<id> says queued; the thread marks it running,
 *   makes a sandbox of the workflow's template with its limits (validated
 *   by the handler, as POST /sandboxes validates them), runs each step as
 *   an execution in it (hc_exec with wait; each announced on the run's
 *   clientId stream so its output streams live there), records each
 *   step's result in the record and publishes the step's changes and
 *   output on wfrun:<id>:events, which the relay serves. The sandbox is
 *   deleted at the end whatever happened.
 *
 *   Who kills whom. Cancel (the handler) sets the record's cancel and
 *   cancels the current execution through the helper; the worker sees
 *   the execution end as cancelled, or the flag between steps. A worker
 *   killed mid-run leaves its queue entry pending: when it starts again
 *   each thread first takes its own pending entries, and any worker takes
 *   another's once SP_WORKER_LEASE_S has passed without a renewal (a
 *   renewer thread renews the entry of every run in progress each third
 *   of the lease, however long its step). A run found running then is
 *   failed explicitly (worker_lost) and its sandbox deleted: never left
 *   running.
 *   SIGTERM: the threads take no new entry and the program exits once the
 *   runs in progress have ended; one killed before (the supervisor's stop
 *   timeout) stays pending and is failed as worker_lost at the next
 *   start. */
#include "wk.h"

#include "sp_config.h"
#include "sp_log.h"
#include "sp_store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WK_TAKE_BLOCK_MS 1000
#define WK_THREADS_MAX   64

static volatile sig_atomic_t wk_stop;
static char wk_name[QUEUE_NAME_MAX - 8];

/* The entry each consumer thread is working on ("" when none), for the
 * renewer: a step may run longer than the lease (run.timeout up to
 * SP_COMMAND_MAX_TIMEOUT), and another consumer, even a thread of this
 * worker, would then take the entry as lost. */
typedef struct wk_slot {
    sp_queue q;
    char entry[QUEUE_ID_MAX];
} wk_slot;
static wk_slot wk_slots[WK_THREADS_MAX];
static pthread_mutex_t wk_slots_mu = PTHREAD_MUTEX_INITIALIZER;

static void wk_on_signal(int sig)
{
    (void)sig;
    wk_stop = 1;
}

/* One consumer: take, run, repeat; thread 0 also runs the timer. */
static void *wk_thread(void *arg)
{
    long n = (long)arg;
    char consumer[QUEUE_NAME_MAX];
    long long last_tick = 0;
    sp_queue q;

    snprintf(consumer, sizeof consumer, "%s-%ld", wk_name, n);
    if (wf_queue(&q, consumer) != 0) {
        log_error("bad consumer name %s", consumer);
        return NULL;
    }
    while (!wk_stop) {
        queue_entry e;
        int got;
        if (n == 0 && rpc_now_ms() - last_tick >= 1000) {
            last_tick = rpc_now_ms();
            wk_sched_tick();
        }
        got = queue_take(&q, WK_TAKE_BLOCK_MS, &e);
        if (got == 1) {
            pthread_mutex_lock(&wk_slots_mu);
            wk_slots[n].q = q;
            snprintf(wk_slots[n].entry, QUEUE_ID_MAX, "%s", e.id);
            pthread_mutex_unlock(&wk_slots_mu);
            wk_run_entry(&q, &e);
            pthread_mutex_lock(&wk_slots_mu);
            wk_slots[n].entry[0] = '\0';
            pthread_mutex_unlock(&wk_slots_mu);
        } else if (got < 0) {
            sleep(1); /* Redis away: try again */
        }
    }
    rds_close();
    return NULL;
}

/* The renewer: every third of the lease, the lease of each entry being
 * worked on is renewed (XCLAIM to its own consumer), so only a worker
 * that is gone loses its runs. */
static void *wk_renewer(void *arg)
{
    long long every_ms = cfg_int(CFG_SP_WORKER_LEASE_S) * 1000 / 3;
    wk_slot copy[WK_THREADS_MAX];

    (void)arg;
    while (!wk_stop) {
        for (long long slept = 0; slept < every_ms && !wk_stop; slept += 200)
            usleep(200 * 1000);
        pthread_mutex_lock(&wk_slots_mu);
        memcpy(copy, wk_slots, sizeof copy);
        pthread_mutex_unlock(&wk_slots_mu);
        for (int i = 0; i < WK_THREADS_MAX; i++)
            if (copy[i].entry[0] != '\0' &&
                queue_renew(&copy[i].q, copy[i].entry) != 0)
                log_warn("lease of %s not renewed", copy[i].entry);
    }
    rds_close();
    return NULL;
}

/* The consumer name's base: SP_WORKER_NAME, or w-<hostname> (only
 * [A-Za-z0-9_.-] kept). */
static void wk_set_name(void)
{
    char host[64] = "host";
    const char *cfg = cfg_str(CFG_SP_WORKER_NAME);
    size_t j = 0;

    if (cfg[0] == '\0') {
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "host");
        host[sizeof host - 1] = '\0';
    }
    snprintf(wk_name, sizeof wk_name, "%s%s", cfg[0] ? "" : "w-",
             cfg[0] ? cfg : host);
    for (size_t i = 0; wk_name[i]; i++) {
        char c = wk_name[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')
            wk_name[j++] = c;
    }
    wk_name[j] = '\0';
}

int main(void)
{
    static const cfg_id required[] = {CFG_REDIS_URL, CFG_SP_STATE_DIR,
                                      CFG_COUNT};
    pthread_t tids[WK_THREADS_MAX], renewer;
    struct sigaction sa = {0};
    char err[512];
    long n, started = 0;

    log_set_program("sp-worker");
    signal(SIGPIPE, SIG_IGN);
    if (cfg_load(required, err, sizeof err) != 0 ||
        rds_init(err, sizeof err) != 0 || st_init(err, sizeof err) != 0) {
        log_error("configuration refused: %s", err);
        return 2;
    }
    wk_set_name();
    if (wk_name[0] == '\0') {
        log_error("SP_WORKER_NAME: no usable character");
        return 2;
    }
    sa.sa_handler = wk_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    n = (long)cfg_int(CFG_SP_THREADS);
    if (n > WK_THREADS_MAX)
        n = WK_THREADS_MAX;
    for (long i = 0; i < n; i++) {
        if (pthread_create(&tids[i], NULL, wk_thread, (void *)i) != 0) {
            log_error("pthread_create failed: %s", strerror(errno));
            break;
        }
        started++;
    }
    if (started > 0 && pthread_create(&renewer, NULL, wk_renewer, NULL) != 0)
        log_error("pthread_create failed: %s", strerror(errno));
    log_info("consuming workflow runs as %s-0..%ld", wk_name, started - 1);
    for (long i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    return started > 0 ? 0 : 1;
}
