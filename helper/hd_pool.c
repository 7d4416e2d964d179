/* hd_pool.c: one-off runs ("run") and the pool of ready sandboxes they
 * take (docs/DESIGN.md §5.4, "The pool").
 *
 * A run takes a ready sandbox of the default limits, writes its files,
 * starts its execution and is answered as for "exec"; the sandbox ends
 * with the execution (removed on a worker, hd_sandbox.c). A run that finds
 * no ready sandbox waits, its job held, for the next one made: it never
 * holds up the main loop. Each such wait grows the pool by one, up to
 * SP_POOL_MAX, so that the next burst finds sandboxes ready; after
 * HD_POOL_CALM_MS without a wait it shrinks by one every
 * HD_POOL_SHRINK_MS, back to SP_POOL_SIZE. Sandboxes are made on workers
 * (hd_work.c), one per two CPUs at a time (hd_pool_making_max).
 *
 * Ready sandboxes are listed only in helper:<id>:sbxs (no sandbox record,
 * no owner) until a run takes one; an earlier run's are removed by
 * sbx_reap_leftovers like any other. Main thread only. */
#include "hd.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HD_POOL_CALM_MS   30000
#define HD_POOL_SHRINK_MS 5000
#define HD_POOL_RETRY_MS  1000

static hd_sandbox *hd_pool;         /* ready, newest first */
static int hd_pool_n;               /* ready */
static int hd_pool_making;          /* being made for the pool */
static int hd_pool_want = -1;       /* its size: SP_POOL_SIZE..SP_POOL_MAX */
static long long hd_pool_waited_ms; /* when a run last waited */
static long long hd_pool_shrunk_ms;
static long long hd_pool_retry_ms; /* after a failure, none made before */
static int hd_pool_stopped;
static hd_job *hd_runs, *hd_runs_tail; /* runs waiting (held), oldest first */
static int hd_runs_n;

/* Write the run's files into s as the files API would, with the same
 * checks. Returns 0, or -1 after answering the job. */
static int hd_run_files(hd_sandbox *s, hd_job *job)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(job->args, "files");
    const cJSON *f;

    cJSON_ArrayForEach(f, files)
    {
        hd_job fj = {.op = "file_write", .opn = HC_FILE_WRITE};
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(f, "content");
        const char *path = hd_arg_str(f, "path") ? hd_arg_str(f, "path") : "";
        unsigned long before = hd_reply_errors;

        fj.args = cJSON_CreateObject();
        cJSON_AddStringToObject(fj.args, "path", path);
        fj.data = cJSON_IsString(c) ? c->valuestring : "";
        fj.len = strlen(fj.data);
        /* The reply goes nowhere (no rid), so a failure is seen through
         * the count of error replies. */
        hd_op_file(s, &fj);
        cJSON_Delete(fj.args);
        if (hd_reply_errors != before) {
            hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT,
                         "files: cannot write %s (paths must be in "
                         "/workspace, /uploaded_files or /tmp)",
                         path);
            return -1;
        }
    }
    return 0;
}

/* A run's process being spawned on a worker (hd_run_go). */
typedef struct hd_run_spawn {
    hd_work w;
    hd_exec *e;
    hd_job *job; /* held */
    int rc;
    char err[512];
} hd_run_spawn;

static void hd_run_spawn_run(hd_work *w)
{
    hd_run_spawn *r = (hd_run_spawn *)w;

    r->rc = hd_exec_spawn_job(r->e, r->job, r->err, sizeof r->err);
}

/* The run's process was spawned (spawn_rc 0) or not: its sandbox joins
 * the others, and its execution begins (or it ends, answered). */
static void hd_run_begin(hd_exec *e, hd_job *job, int spawn_rc, const char *err)
{
    hd_sandbox *s = e->sbx;

    s->next = hd_sandboxes;
    hd_sandboxes = s;
    hd_exec_begin(e, job, spawn_rc, err);
    if (s->execs == NULL)
        hd_sandbox_end(s, "run did not start");
}

static void hd_run_spawn_done(hd_work *w)
{
    hd_run_spawn *r = (hd_run_spawn *)w;

    hd_run_begin(r->e, r->job, r->rc, r->err);
    hd_job_release(r->job);
    free(r);
}

/* 1 if some execution runs: its output, exit or stdin may wait for the
 * main loop. */
static int hd_any_running(void)
{
    for (const hd_sandbox *s = hd_sandboxes; s != NULL; s = s->next) {
        if (s->execs != NULL)
            return 1;
    }
    return 0;
}

/* Spawn e's process: here when nothing else runs (no one waits for the
 * main loop, and the hand-over to a worker would only add to the run's
 * latency), else on a worker, first in line, so that the spawn's waits
 * (sp-init forks it, the host moves it into its cgroup, it execs) never
 * hold up other runs. Meanwhile its sandbox is in no list, so the main
 * thread leaves it alone. The job is released here if it was held; one
 * handed to a worker becomes held. */
static void hd_run_go(hd_exec *e, hd_job *job)
{
    hd_run_spawn *r;
    char err[512];
    int held = job->held;

    if (hd_any_running() && (r = calloc(1, sizeof *r)) != NULL) {
        r->w.run = hd_run_spawn_run;
        r->w.done = hd_run_spawn_done;
        r->e = e;
        r->job = job;
        job->held = 1;
        hd_work_submit_first(&r->w);
        return;
    }
    hd_run_begin(e, job, hd_exec_spawn_job(e, job, err, sizeof err), err);
    if (held)
        hd_job_release(job);
}

/* Run job once in the ready sandbox s, which ends with the run: its files
 * are written, its process spawned (hd_run_go). If job was held, it is
 * released once answered. */
static void hd_run_start(hd_sandbox *s, hd_job *job)
{
    const char *owner = hd_arg_str(job->args, "owner");
    long long timeout_ms = hd_arg_int(job->args, "timeout_ms", 30000);
    const hd_kind *kind = hd_kind_find(hd_arg_str(job->args, "kind"));
    hd_exec *e;

    snprintf(s->owner, sizeof s->owner, "%s", owner);
    s->ephemeral = 1;
    s->expires_at = hd_now_ms() / 1000 +
                    hd_arg_int(job->args, "expires_in", timeout_ms / 1000 + 60);
    if (kind == NULL)
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "unknown kind");
    else if (hd_run_files(s, job) == 0 &&
             (e = hd_exec_prepare(s, job, kind)) != NULL) {
        hd_run_go(e, job);
        return;
    }
    s->next = hd_sandboxes; /* so that it ends as every other one */
    hd_sandboxes = s;
    hd_sandbox_end(s, "run did not start");
    if (job->held)
        hd_job_release(job);
}

/* The oldest waiting run someone still waits for (those past their
 * deadline are dropped unanswered, as hd_ops_run does), taken off the
 * list; NULL if none. */
static hd_job *hd_run_next(void)
{
    while (hd_runs != NULL) {
        hd_job *job = hd_runs;
        hd_runs = job->next;
        if (hd_runs == NULL)
            hd_runs_tail = NULL;
        hd_runs_n--;
        job->next = NULL;
        if (job->deadline_ms >= hd_now_ms())
            return job;
        log_info("dropping job %s (run): past its deadline", job->entry);
        hd_job_release(job);
    }
    return NULL;
}

/* Answer every waiting run with an error; returns how many. */
static int hd_runs_fail(const char *why)
{
    hd_job *job;
    int n = 0;

    while ((job = hd_run_next()) != NULL) {
        hd_reply_err(job->rid, SP_E_UNAVAILABLE, "%s", why);
        hd_job_release(job);
        n++;
    }
    return n;
}

/* A sandbox was made for the pool (or not): to the oldest waiting run,
 * else ready. */
static void hd_pool_made(hd_sandbox *s, const sbx_limits *lim, void *arg,
                         const char *err)
{
    hd_job *job;

    (void)lim;
    (void)arg;
    hd_pool_making--;
    if (s == NULL) {
        hd_pool_retry_ms = hd_now_ms() + HD_POOL_RETRY_MS;
        if ((job = hd_run_next()) != NULL) {
            hd_reply_err(job->rid, SP_E_UNAVAILABLE, "no sandbox available: %s",
                         err);
            hd_job_release(job);
        }
        return;
    }
    if (hd_pool_stopped) {
        hd_sandbox_end(s, "helper stopped");
    } else if ((job = hd_run_next()) != NULL) {
        hd_run_start(s, job); /* releases it */
    } else {
        s->next = hd_pool;
        hd_pool = s;
        hd_pool_n++;
    }
}

/* How many sandboxes are made for the pool at once: one per two CPUs.
 * Making one is mostly kernel work under global locks (cgroups, mounts,
 * namespaces); on 2 CPUs several at once made /execute at 8 clients
 * about 15 % slower than one at a time (bench/execute.py). */
static int hd_pool_making_max(void)
{
    static int n;

    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus >= 4 ? (int)(cpus / 2) : 1;
    }
    return n;
}

/* Calm for a while: one ready sandbox fewer, now and then. */
static void hd_pool_shrink(long long now, int base)
{
    hd_sandbox *s;

    if (hd_runs_n > 0 || now - hd_pool_waited_ms < HD_POOL_CALM_MS ||
        now - hd_pool_shrunk_ms < HD_POOL_SHRINK_MS)
        return;
    hd_pool_shrunk_ms = now;
    if (hd_pool_want > base)
        hd_pool_want--;
    if (hd_pool_n > hd_pool_want && (s = hd_pool) != NULL) {
        hd_pool = s->next;
        hd_pool_n--;
        hd_sandbox_end(s, "the pool shrinks");
    }
}

void hd_pool_fill(void)
{
    long long now = hd_now_ms();
    int base = (int)cfg_int(CFG_SP_POOL_SIZE);
    sbx_limits lim = {0};
    char id[SP_ID_SIZE];

    if (hd_pool_stopped)
        return;
    if (hd_pool_want < 0)
        hd_pool_want = base;
    hd_pool_shrink(now, base);
    hd_default_limits(&lim);
    while (hd_pool_n + hd_pool_making < hd_pool_want + hd_runs_n &&
           hd_pool_making < hd_pool_making_max() && now >= hd_pool_retry_ms) {
        if (id_generate_sandbox(id, sizeof id) != 0 ||
            hd_sandbox_make(id, "pool", &lim, -1, 0, NULL, 0, NULL, hd_pool_made,
                            NULL) != 0) {
            hd_pool_retry_ms = now + HD_POOL_RETRY_MS;
            break;
        }
        hd_pool_making++;
    }
    /* Nothing on its way for the runs that wait: they are told now. */
    if (hd_runs_n > 0 && hd_pool_making == 0 && hd_pool_n == 0)
        hd_runs_fail("no sandbox available");
}

void hd_op_run(hd_sandbox *none, hd_job *job)
{
    hd_sandbox *s = hd_pool;
    int most = (int)cfg_int(CFG_SP_POOL_MAX);

    (void)none; /* taken from the pool */
    if (!id_valid(hd_arg_str(job->args, "owner"))) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad owner");
        return;
    }
    if (hd_pool_stopped) {
        hd_reply_err(job->rid, SP_E_UNAVAILABLE, "helper stopped");
        return;
    }
    if (s != NULL && hd_runs_n == 0) {
        hd_pool = s->next;
        hd_pool_n--;
        hd_run_start(s, job);
        return;
    }
    /* None ready: it waits for the next one made, and the pool grows. */
    job->held = 1;
    job->next = NULL;
    if (hd_runs_tail != NULL)
        hd_runs_tail->next = job;
    else
        hd_runs = job;
    hd_runs_tail = job;
    hd_runs_n++;
    hd_pool_waited_ms = hd_now_ms();
    if (hd_pool_want < most)
        hd_pool_want++;
    hd_pool_fill();
}

int hd_pool_drain(void)
{
    int n;

    hd_pool_stopped = 1;
    n = hd_runs_fail("helper stopped");
    while (hd_pool != NULL) {
        hd_sandbox *s = hd_pool;
        hd_pool = s->next;
        hd_pool_n--;
        hd_sandbox_end(s, "helper stopped");
        n++;
    }
    return n;
}
