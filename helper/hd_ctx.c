/* hd_ctx.c: stateful execution contexts (docs/DESIGN.md §4.3): one
 * long-lived driver process per context (helper/drivers/), runs of code
 * queued to it one at a time, and the driver's frames turned into the
 * runs' events and results. This file: contexts' life cycle and the
 * queue of runs; hd_ctx_frames.c: the frames and a run's output; hd_ctx.h:
 * the records they share.
 *
 * The driver is an hd_exec of its sandbox like a background command, so
 * its pipes, exit report and kill go through hd_exec.c; its e->ctx points
 * here. Its stdout carries frames only (0x1e, a JSON object, "\n"; see
 * py_driver.py) and never reaches an event stream of its own; its stderr
 * (the driver's own errors, or what a subprocess wrote to an inherited
 * descriptor under node) goes to the current run as stderr.
 *
 * A run is a logical execution: exec:<exe> and events:<exe> are written as
 * hd_exec.c writes them for a process (status event first, then stdout,
 * stderr, display and error events, the result event, TTLs), so that
 * GET /executions/{id}, its SSE events and cancel work unchanged. Runs of
 * one context are serialized: the request line of the next run is written
 * to the driver's stdin when the current one is "done".
 *
 * Limits: at a run's deadline, on cancel, or when its output passes
 * SP_OUTPUT_MAX, the driver gets SIGINT (through its pidfd), which
 * interrupts the run and not the context; if "done" does not follow within
 * HD_CTX_GRACE_MS the context is ended. A frame longer than
 * HD_CTX_FRAME_MAX or not JSON ends the context. When a context ends for
 * any reason, its runs are finished with the error "ContextEnded" and it
 * is gone.
 *
 * Redis: ctx:<id> hash {owner, sandbox, helper, language, created} and the
 * set sbx:<sandbox>:contexts, both deleted when the context ends; each run
 * is in sbx:<sandbox>:running while it is queued or running. */
#include "hd_ctx.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* hd_py_driver, hd_js_driver: the drivers' sources (made by Makefile.am
 * from helper/drivers/). */
#include "helper/hd_drivers.h"

#define HD_CTX_FRAME_MAX   (8 * 1024 * 1024)
#define HD_CTX_GRACE_MS    2000
#define HD_CTX_JS_GRACE_MS 1500
#define HD_CTX_QUEUE_MAX   32
#define HD_CTX_PER_SANDBOX 16
#define HD_CTX_TIMEOUT_MS  30000

static hd_ctx *hd_ctx_find(hd_sandbox *s, const char *id)
{
    for (hd_ctx *c = s->ctxs; id != NULL && c != NULL; c = c->next) {
        if (strcmp(c->id, id) == 0)
            return c;
    }
    return NULL;
}

static void hd_ctx_run_free(hd_ctx_run *run)
{
    if (run == NULL)
        return;
    free(run->line);
    buf_free(&run->cap[0]);
    buf_free(&run->cap[1]);
    cJSON_Delete(run->results);
    cJSON_Delete(run->error);
    free(run);
}

void hd_ctx_interrupt(hd_ctx *c)
{
    hd_exec *d = c->driver;

    if (c->cur == NULL || c->cur->interrupted)
        return;
    c->cur->interrupted = 1;
    c->kill_ms = hd_now_ms() + HD_CTX_GRACE_MS;
    /* The pidfd, not the pid: a reused pid is never hit. */
    if (d == NULL || d->pidfd < 0 ||
        syscall(SYS_pidfd_send_signal, d->pidfd, SIGINT, NULL, 0) != 0)
        c->kill_ms = hd_now_ms();
}

void hd_ctx_finish(hd_sandbox *s, hd_ctx_run *run, const char *ended)
{
    hd_facts f = {.id = run->id, .sandbox = s->id};

    if (s->lost) {
        hd_ctx_run_free(run); /* ended as lost already (sp_lost.h) */
        return;
    }
    for (int w = 0; w < 2; w++)
        hd_ctx_emit(NULL, run, w, (const unsigned char *)"", 0, 1);
    if (ended != NULL)
        hd_ctx_set_error(run, "ContextEnded", ended, "");
    if (run->timed_out)
        f.status = "timeout";
    else if (run->cancelled)
        f.status = "cancelled";
    else if (run->over_limit)
        f.status = "output_limit";
    else if (run->error != NULL)
        f.status = "error";
    else
        f.status = "ok";
    f.exit_code = strcmp(f.status, "ok") == 0 ? 0 : 1;
    /* An error the driver reported had its event then; this one is ours. */
    if (ended != NULL)
        hd_ctx_event_json(run, "error", cJSON_Duplicate(run->error, 1));
    f.duration_ms =
        hd_now_ms() - (run->started_ms ? run->started_ms : hd_now_ms());
    f.truncated = run->truncated;
    f.error = ended;
    f.cap[0] = &run->cap[0];
    f.cap[1] = &run->cap[1];
    f.evid = &run->evid;
    f.results = run->results;
    f.exception = run->error;
    f.execution_count = run->count;
    hd_result_record(&f); /* before its event, as for any execution */
    hd_result_event(&f);
    hd_result_answer(&f, run->rid);
    hd_ctx_run_free(run);
}

void hd_ctx_start_next(hd_ctx *c)
{
    while (c->cur == NULL && c->queue != NULL) {
        hd_ctx_run *run = c->queue;
        c->queue = run->next;
        c->nqueued--;
        run->next = NULL;
        if (c->driver == NULL || c->driver->in_fd < 0 ||
            buf_append(&c->driver->pending_in, run->line, run->line_len) != 0) {
            hd_ctx_finish(c->sbx, run,
                          "the code could not be passed to the context");
            continue;
        }
        free(run->line);
        run->line = NULL;
        run->started_ms = hd_now_ms();
        /* JavaScript runs time out inside the driver (vm's timeout), so
         * the helper's SIGINT comes only if that failed: sent at the same
         * moment, it could land in the next run instead. */
        run->deadline_ms =
            run->started_ms + run->timeout_ms +
            (strcmp(c->language, "javascript") == 0 ? HD_CTX_JS_GRACE_MS : 0);
        c->cur = run;
        hd_exec_write_stdin(c->driver);
    }
}

void hd_ctx_end(hd_ctx *c, const char *why)
{
    char k[RDS_KEY_MAX], sk[RDS_KEY_MAX], msg[256];
    hd_exec *d = c->driver;

    log_info("ending context %s of sandbox %s: %s", c->id, c->sbx->id, why);
    snprintf(msg, sizeof msg, "context ended: %s", why);
    if (c->cur != NULL)
        hd_ctx_finish(c->sbx, c->cur, msg);
    c->cur = NULL;
    while (c->queue != NULL) {
        hd_ctx_run *run = c->queue;
        c->queue = run->next;
        hd_ctx_finish(c->sbx, run, msg);
    }
    if (d != NULL) {
        /* What the driver still writes is nobody's: close our ends; its
         * exit report then finishes the hd_exec as for any process. */
        d->ctx = NULL;
        for (int w = 0; w < 2; w++) {
            if (d->fds[w] >= 0)
                close(d->fds[w]);
            d->fds[w] = -1;
        }
        if (d->in_fd >= 0)
            close(d->in_fd);
        d->in_fd = -1;
        if (!d->exited) {
            d->killed = 1;
            if (sbx_kill_exec(c->sbx->sbx, d->req_id) != 0)
                log_warn("context %s: some processes survived SIGKILL", c->id);
        }
    }
    if (key_of(k, sizeof k, KEY_CTX, c->id) == 0 &&
        key_of(sk, sizeof sk, KEY_SBX_CONTEXTS, c->sbx->id) == 0) {
        hd_pub("DEL %s", k);
        hd_pub("SREM %s %s", sk, c->id);
    }
    for (hd_ctx **pp = &c->sbx->ctxs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    buf_free(&c->frame);
    free(c);
}

void hd_ctx_driver_ended(hd_exec *e)
{
    hd_ctx *c = e->ctx;
    e->ctx = NULL;
    c->driver = NULL;
    hd_ctx_end(c, "its process exited");
}

/* The kind of a context's driver (hd.h, hd_kind). */
static void hd_context_output(hd_exec *e, int which, const unsigned char *p,
                              size_t n, int at_eof)
{
    (void)at_eof;
    /* Once its context has ended (detached), what is left goes nowhere. */
    if (n > 0 && e->ctx != NULL)
        hd_ctx_output(e, which, p, n);
}

/* The driver's runs end with it (hd_ctx.c); its own record is kept like
 * any execution's, for a restart to find. */
static void hd_context_finish(hd_exec *e, const hd_facts *f)
{
    if (e->ctx != NULL)
        hd_ctx_driver_ended(e);
    hd_result_record(f);
    hd_result_answer(f, e->rid);
}

static void hd_context_start(hd_exec *e)
{
    hd_event_str(e, "status", "{\"status\":\"running\"}");
}

const hd_kind hd_kind_context = {NULL, hd_context_start, hd_context_output,
                                 NULL, hd_context_finish};

/* The exec job's arguments of a driver: its id, argv, stdin kept open,
 * the working directory (NULL: the template's). Caller frees. */
static cJSON *hd_ctx_driver_args(const char *drv, const char *lang,
                                 const char *cwd)
{
    const char *py[] = {"python3", "-u", "-c", hd_py_driver};
    /* node cannot dup2: the shell moves its descriptors (js_driver.js). */
    const char *js[] = {"/bin/sh", "-c",
                        "exec node -e \"$0\" 3<&0 4>&1 </dev/null >&2",
                        hd_js_driver};
    cJSON *a = cJSON_CreateObject();

    cJSON_AddStringToObject(a, "id", drv);
    cJSON_AddItemToObject(a, "argv",
                          strcmp(lang, "python") == 0
                              ? cJSON_CreateStringArray(py, 4)
                              : cJSON_CreateStringArray(js, 4));
    cJSON_AddBoolToObject(a, "stdin_open", 1);
    if (cwd != NULL)
        cJSON_AddStringToObject(a, "cwd", cwd);
    return a;
}

/* Start a context's driver; its Redis record is written first, so that a
 * run sent right after the reply finds it. */
void hd_op_ctx_create(hd_sandbox *s, hd_job *job)
{
    const char *id = hd_arg_str(job->args, "ctx");
    const char *lang = hd_arg_str(job->args, "language");
    const char *owner = hd_arg_str(job->args, "owner");
    const char *cwd = hd_arg_str(job->args, "cwd");
    char drv[SP_ID_SIZE], created[RDS_NUM_SIZE], k[RDS_KEY_MAX],
        sk[RDS_KEY_MAX];
    hd_job dj = {.op = "exec", .opn = HC_EXEC};
    size_t n = 0;
    hd_exec *e;
    hd_ctx *c;

    if (!id_valid_typed(id, "ctx_") || lang == NULL ||
        (strcmp(lang, "python") != 0 && strcmp(lang, "javascript") != 0) ||
        owner == NULL || strcmp(owner, s->owner) != 0) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad context job");
        return;
    }
    for (c = s->ctxs; c != NULL; c = c->next)
        n++;
    if (s->ephemeral || hd_ctx_find(s, id) != NULL || n >= HD_CTX_PER_SANDBOX) {
        hd_reply_err(job->rid, SP_E_CONFLICT,
                     "a sandbox holds at most %d contexts", HD_CTX_PER_SANDBOX);
        return;
    }
    if (id_generate("exe_", drv, sizeof drv) != 0 ||
        key_of(k, sizeof k, KEY_CTX, id) != 0 ||
        key_of(sk, sizeof sk, KEY_SBX_CONTEXTS, s->id) != 0) {
        hd_reply_err(job->rid, SP_E_INTERNAL, "could not make an id");
        return;
    }
    snprintf(created, sizeof created, "%lld", hd_now_ms() / 1000);
    hd_pub("HSET %s owner %s sandbox %s helper %s "
           "language %s created %s driver %s",
           k, s->owner, s->id, hd_helper_id, lang, created, drv);
    if (cwd != NULL)
        hd_pub("HSET %s cwd %s", k, cwd);
    hd_pub("SADD %s %s", sk, id);
    snprintf(dj.rid, sizeof dj.rid, "%s", job->rid);
    dj.args = hd_ctx_driver_args(drv, lang, cwd);
    /* Answers the job itself: {execution_id} of the driver, or the error
     * of the spawn. */
    hd_exec_start(s, &dj, &hd_kind_context);
    cJSON_Delete(dj.args);
    e = hd_exec_by_id(s, drv);
    c = e != NULL ? calloc(1, sizeof *c) : NULL;
    if (c == NULL) {
        if (e != NULL) {
            sbx_kill_exec(s->sbx, e->req_id);
            e->killed = 1;
        }
        hd_pub("DEL %s", k);
        hd_pub("SREM %s %s", sk, id);
        return;
    }
    snprintf(c->id, sizeof c->id, "%s", id);
    snprintf(c->language, sizeof c->language, "%s", lang);
    snprintf(c->owner, sizeof c->owner, "%s", s->owner);
    c->sbx = s;
    c->driver = e;
    buf_init(&c->frame, HD_CTX_FRAME_MAX);
    e->ctx = c;
    c->next = s->ctxs;
    s->ctxs = c;
    log_info("context %s (%s) started in sandbox %s", id, lang, s->id);
}

/* Queue a run: its records as for any execution, then the answer at once
 * (async) or at its end. */
void hd_op_ctx_run(hd_sandbox *s, hd_job *job)
{
    const cJSON *a = job->args;
    hd_ctx *c = hd_ctx_find(s, hd_arg_str(a, "ctx"));
    const char *id = hd_arg_str(a, "id"), *code = hd_arg_str(a, "code");
    const char *owner = hd_arg_str(a, "owner");
    long long timeout = (long long)cJSON_GetNumberValue(
        cJSON_GetObjectItemCaseSensitive(a, "timeout_ms"));
    char ek[RDS_KEY_MAX], sk[RDS_KEY_MAX];
    hd_ctx_run *run, **tail;
    cJSON *req;
    char *line;

    if (c == NULL || owner == NULL || strcmp(owner, c->owner) != 0) {
        hd_reply_err(job->rid, SP_E_NOT_FOUND, "context not found");
        return;
    }
    if (!id_valid_typed(id, "exe_") || code == NULL ||
        key_of(ek, sizeof ek, KEY_EXEC, id) != 0 ||
        key_of(sk, sizeof sk, KEY_SBX_RUNNING, s->id) != 0) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad context run");
        return;
    }
    if (c->nqueued >= HD_CTX_QUEUE_MAX) {
        hd_reply_err(job->rid, SP_E_RATE_LIMITED,
                     "the context has %d runs waiting; retry later",
                     HD_CTX_QUEUE_MAX);
        return;
    }
    if (timeout <= 0)
        timeout = HD_CTX_TIMEOUT_MS;
    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "id", id);
    cJSON_AddStringToObject(req, "code", code);
    cJSON_AddNumberToObject(req, "timeout_ms", (double)timeout);
    line = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    run = calloc(1, sizeof *run);
    if (line == NULL || run == NULL) {
        free(line);
        free(run);
        hd_reply_err(job->rid, SP_E_INTERNAL, "out of memory");
        return;
    }
    /* cJSON escapes every newline inside strings: this is one line once
     * its NUL becomes the newline (the length is kept apart). */
    run->line_len = strlen(line);
    line[run->line_len++] = '\n';
    run->line = line;
    snprintf(run->id, sizeof run->id, "%s", id);
    run->timeout_ms = timeout;
    run->out_max = (size_t)cfg_int(CFG_SP_OUTPUT_MAX);
    buf_init(&run->cap[0], run->out_max);
    buf_init(&run->cap[1], run->out_max);
    run->results = cJSON_CreateArray();
    hd_pub("HSET %s owner %s sandbox %s helper %s "
           "status running started %lld context %s",
           ek, s->owner, s->id, hd_helper_id, hd_now_ms(), c->id);
    hd_pub("SADD %s %s", sk, id);
    hd_ctx_event(run, "status", "{\"status\":\"running\"}", 20);
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "wait"))) {
        cJSON *rep = cJSON_CreateObject();
        cJSON_AddStringToObject(rep, "execution_id", id);
        hd_reply(job->rid, rep, NULL, 0);
    } else {
        snprintf(run->rid, sizeof run->rid, "%s", job->rid);
    }
    for (tail = &c->queue; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = run;
    c->nqueued++;
    hd_ctx_start_next(c);
}

void hd_op_ctx_delete(hd_sandbox *s, hd_job *job)
{
    hd_ctx *c = hd_ctx_find(s, hd_arg_str(job->args, "ctx"));
    const char *owner = hd_arg_str(job->args, "owner");

    if (c == NULL || (owner != NULL && strcmp(owner, c->owner) != 0)) {
        hd_reply_err(job->rid, SP_E_NOT_FOUND, "context not found");
        return;
    }
    hd_ctx_end(c, "deleted");
    hd_reply(job->rid, cJSON_CreateObject(), NULL, 0);
}

int hd_ctx_exec_job(hd_sandbox *s, hd_job *job)
{
    const char *exe = hd_arg_str(job->args, "exe");

    for (hd_ctx *c = s->ctxs; exe != NULL && c != NULL; c = c->next) {
        hd_ctx_run **pp = &c->queue;
        if (c->cur != NULL && strcmp(c->cur->id, exe) == 0) {
            if (job->opn != HC_CANCEL) {
                hd_reply_err(job->rid, SP_E_CONFLICT,
                             "%s is not supported for a context run", job->op);
                return 1;
            }
            c->cur->cancelled = 1;
            hd_ctx_interrupt(c);
            hd_reply(job->rid, cJSON_CreateObject(), NULL, 0);
            return 1;
        }
        for (; *pp != NULL; pp = &(*pp)->next) {
            hd_ctx_run *run = *pp;
            if (strcmp(run->id, exe) != 0)
                continue;
            if (job->opn != HC_CANCEL) {
                hd_reply_err(job->rid, SP_E_CONFLICT,
                             "%s is not supported for a context run", job->op);
                return 1;
            }
            *pp = run->next;
            c->nqueued--;
            run->cancelled = 1;
            hd_ctx_finish(s, run, NULL);
            hd_reply(job->rid, cJSON_CreateObject(), NULL, 0);
            return 1;
        }
    }
    return 0;
}

void hd_ctx_tick(hd_sandbox *s, long long now_ms)
{
    for (hd_ctx *c = s->ctxs, *nx; c != NULL; c = nx) {
        hd_ctx_run *run = c->cur;
        nx = c->next;
        if (c->kill_ms > 0 && now_ms >= c->kill_ms) {
            hd_ctx_end(c, "the run did not stop after an interrupt");
            continue;
        }
        if (run != NULL && !run->interrupted && run->deadline_ms > 0 &&
            now_ms >= run->deadline_ms) {
            run->timed_out = 1;
            hd_ctx_interrupt(c);
        }
    }
}

long long hd_ctx_next_deadline(const hd_sandbox *s)
{
    long long next = 0;

    for (const hd_ctx *c = s->ctxs; c != NULL; c = c->next) {
        long long d = c->kill_ms;
        if (d == 0 && c->cur != NULL && !c->cur->interrupted)
            d = c->cur->deadline_ms;
        if (d > 0 && (next == 0 || d < next))
            next = d;
    }
    return next;
}

void hd_ctx_shift(hd_sandbox *s, long long delta_ms)
{
    for (hd_ctx *c = s->ctxs; c != NULL; c = c->next) {
        if (c->kill_ms > 0)
            c->kill_ms += delta_ms;
        if (c->cur != NULL && c->cur->deadline_ms > 0)
            c->cur->deadline_ms += delta_ms;
        if (c->cur != NULL)
            c->cur->started_ms += delta_ms;
    }
}

void hd_ctx_end_all(hd_sandbox *s, const char *why)
{
    char msg[128];

    snprintf(msg, sizeof msg, "the sandbox ended (%s)", why);
    while (s->ctxs != NULL)
        hd_ctx_end(s->ctxs, msg);
}
