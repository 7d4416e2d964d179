/* hd_exec.c: executions inside a sandbox: start a process, pump its output
 * into the execution's event stream (in order, never splitting a UTF-8
 * character), feed its stdin, enforce its deadline and output cap, and
 * record its result.
 *
 * Redis keys of an execution <id>:
 *   exec:<id>        hash: owner, sandbox, status, exit_code, signal, ...
 *   events:<id>      stream of {type, data}: status, stdout, stderr, result
 *   sbx:<sandbox>:running  set of executions still running (for a restart)
 * Both expire SP_EVENT_TTL seconds after the execution ends.
 *
 * An execution ends when its main process has exited and both output pipes
 * are closed. When the main process exits, everything the execution
 * started is killed (its own cgroup), so nothing it started outlives it. */
#include "hd.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"
#include "sp_utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define HD_READ_CHUNK     65536
#define HD_READS_PER_WAKE 4
#define HD_DRAIN_GRACE_MS 2000
#define HD_ENV_MAX        256
#define HD_ARGV_MAX       256

static const char *hd_stream_names[2] = {"stdout", "stderr"};

void hd_exec_keys(const hd_exec *e, char *ek, char *vk, size_t n)
{
    key_of(ek, n, KEY_EXEC, e->id);
    key_of(vk, n, KEY_EVENTS, e->id);
}

/* Append one event; data is raw bytes (binary safe). */
void hd_event(hd_exec *e, const char *type, const void *data, size_t len)
{
    char ek[RDS_KEY_MAX], vk[RDS_KEY_MAX], maxlen[RDS_NUM_SIZE],
        id[HD_EVID_SIZE];
    hd_exec_keys(e, ek, vk, sizeof ek);
    snprintf(maxlen, sizeof maxlen, "%lld", cfg_int(CFG_SP_STREAM_MAXLEN));
    hd_evid_next(&e->evid, id);
    hd_pub("XADD %s MAXLEN ~ %s %s type %s data %b", vk, maxlen, id, type, data,
           len);
}

void hd_exec_report_lost(hd_exec *e)
{
    char ev[64];

    if (e->lost_bytes == 0)
        return;
    snprintf(ev, sizeof ev, "{\"bytes\":%zu}", e->lost_bytes);
    hd_event(e, "events_lost", ev, strlen(ev));
    e->lost_bytes = 0;
}

static hd_exec *hd_exec_find(hd_sandbox *s, const char *id, uint32_t req)
{
    for (hd_exec *e = s->execs; e != NULL; e = e->next) {
        if (id != NULL ? strcmp(e->id, id) == 0 : e->req_id == req)
            return e;
    }
    return NULL;
}

static void hd_exec_kill(hd_exec *e)
{
    if (sbx_kill_exec(e->sbx->sbx, e->req_id) != 0)
        log_warn("execution %s: some processes survived SIGKILL", e->id);
}

void hd_exec_emit(hd_exec *e, int which, const unsigned char *p, size_t n,
                  int at_eof, const char *type)
{
    unsigned char buf[HD_READ_CHUNK + 4];
    size_t cut, room;

    /* Callers read at most HD_READ_CHUNK bytes at a time: buf fits them
     * and the carried partial character. */
    cut = utf8_carry_join(&e->carry[which], p, n, at_eof, buf);
    if (e->over_limit || cut == 0)
        return;
    room = e->out_max - e->out_bytes;
    if (cut > room) {
        cut = utf8_cut(buf, room);
        e->truncated = e->over_limit = 1;
        hd_exec_kill(e);
    }
    if (cut == 0)
        return;
    e->out_bytes += cut;
    if (!hd_pub_room(cut)) {
        /* Redis is away and the helper's buffer is full: the output is
         * dropped, counted, and said so when there is room again. */
        e->lost_bytes += cut;
        e->truncated = 1;
    } else {
        hd_exec_report_lost(e);
        hd_event(e, type != NULL ? type : hd_stream_names[which], buf, cut);
    }
    if (e->rid[0] != '\0')
        buf_append(&e->cap[which], buf, cut); /* bounded by out_max */
}

static void hd_close_out(hd_exec *e, int which)
{
    if (e->fds[which] < 0)
        return;
    e->kind->output(e, which, (const unsigned char *)"", 0, 1);
    close(e->fds[which]);
    e->fds[which] = -1;
}

void hd_exec_read(hd_exec *e, int which)
{
    unsigned char buf[HD_READ_CHUNK];

    for (int i = 0; i < HD_READS_PER_WAKE && e->fds[which] >= 0; i++) {
        ssize_t r = read(e->fds[which], buf, sizeof buf);
        if (r > 0) {
            e->kind->output(e, which, buf, (size_t)r, 0);
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        /* EOF, or EIO from a PTY master whose slave side is gone. */
        hd_close_out(e, which);
    }
}

void hd_exec_write_stdin(hd_exec *e)
{
    while (e->in_fd >= 0 && e->pending_in.len > 0) {
        ssize_t w = write(e->in_fd, e->pending_in.data, e->pending_in.len);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            buf_reset(&e->pending_in); /* reader gone: drop what is left */
            break;
        }
        memmove(e->pending_in.data, e->pending_in.data + w,
                e->pending_in.len - (size_t)w);
        e->pending_in.len -= (size_t)w;
    }
    if (e->in_fd >= 0 && e->pending_in.len == 0 && e->close_in) {
        close(e->in_fd);
        e->in_fd = -1;
    }
}

/* Build a NULL-terminated "K=V" array from the sandbox's and the job's env
 * objects (the job wins). Returns 0 or -1 (bad name or too many). */
static int hd_env(const cJSON *who, const cJSON *base, const cJSON *extra,
                  char **envp, size_t max)
{
    size_t n = 0;
    const cJSON *srcs[3] = {who, base, extra};

    for (int s = 0; s < 3; s++) {
        const cJSON *it;
        cJSON_ArrayForEach(it, srcs[s])
        {
            char *kv;
            if (!cJSON_IsString(it) || it->string[0] == '\0' ||
                strchr(it->string, '=') != NULL || n + 1 >= max)
                return -1;
            if (asprintf(&kv, "%s=%s", it->string, it->valuestring) < 0)
                return -1;
            /* A later definition replaces an earlier one. */
            for (size_t i = 0; i < n; i++) {
                size_t kl = strlen(it->string);
                if (strncmp(envp[i], kv, kl + 1) == 0) {
                    free(envp[i]);
                    envp[i] = envp[--n];
                    break;
                }
            }
            envp[n++] = kv;
        }
    }
    envp[n] = NULL;
    return 0;
}

static void hd_strv_free(char **v)
{
    for (size_t i = 0; v[i] != NULL; i++)
        free(v[i]);
}

static void hd_exec_free(hd_exec *e)
{
    for (int w = 0; w < 2; w++) {
        if (e->fds[w] >= 0)
            close(e->fds[w]);
        buf_free(&e->cap[w]);
    }
    if (e->in_fd >= 0)
        close(e->in_fd);
    if (e->pidfd >= 0)
        close(e->pidfd);
    cJSON_Delete(e->then);
    cJSON_Delete(e->scratch);
    buf_free(&e->pending_in);
    free(e);
}

/* Who a program runs as, into req, and its HOME and USER into who: in
 * the host view only the user (1000); in a template's sandbox any account
 * of the sandbox's own /etc/passwd ("root", a name or a uid), the
 * template's user by default. 0, or -1 with err set. */
static int hd_exec_user(const hd_sandbox *s, const char *user,
                        sbx_spawn_req *req, cJSON *who, char *err,
                        size_t errlen)
{
    char root[64];
    sbx_user u;

    if (s->tpl == NULL) {
        if (user && strcmp(user, "user") && strcmp(user, "1000")) {
            snprintf(err, errlen,
                     "the host template has only the user "
                     "\"user\"");
            return -1;
        }
        return 0;
    }
    snprintf(root, sizeof root, "/proc/%d/root", (int)hd_init_pid(s->sbx));
    if (sbx_passwd_lookup(root, user ? user : s->tpl->user, &u) != 0) {
        snprintf(err, errlen, "no user %s in the sandbox",
                 user ? user : s->tpl->user);
        return -1;
    }
    req->user_set = 1;
    req->uid = u.uid;
    req->gid = u.gid;
    cJSON_AddStringToObject(who, "HOME", u.home);
    cJSON_AddStringToObject(who, "USER", u.name);
    return 0;
}

/* Spawn argv (a NULL-terminated array of job strings) as e's process
 * with the sandbox's env and extra, as user; e takes its pipes, pidfd and
 * request id. Returns 0, or -1 with a reason in err. */
static int hd_exec_spawn(hd_exec *e, char **argv, const cJSON *extra,
                         const char *cwd, const char *user, unsigned short cols,
                         unsigned short rows, char *err, size_t errlen)
{
    char *envp[HD_ENV_MAX + 1] = {0};
    sbx_spawn_req req = {0};
    cJSON *who = cJSON_CreateObject();
    sbx_proc proc;
    int result = -1;

    if (hd_exec_user(e->sbx, user, &req, who, err, errlen) != 0)
        goto out;
    if (hd_env(who, e->sbx->env, extra, envp, HD_ENV_MAX) != 0) {
        snprintf(err, errlen, "bad argv or env");
        goto out;
    }
    req.argv = argv;
    req.envp = envp;
    req.cwd = cwd ? cwd : e->sbx->tpl ? e->sbx->tpl->workdir : NULL;
    req.pty = e->pty;
    req.cols = cols ? cols : 80;
    req.rows = rows ? rows : 24;
    if (sbx_spawn(e->sbx->sbx, &req, &proc, err, errlen) != 0)
        goto out;
    if (e->pidfd >= 0)
        close(e->pidfd);
    e->req_id = proc.req_id;
    e->fds[0] = proc.stdout_fd;
    e->fds[1] = proc.stderr_fd;
    e->in_fd =
        e->pty ? fcntl(proc.stdin_fd, F_DUPFD_CLOEXEC, 0) : proc.stdin_fd;
    e->pidfd = (int)syscall(SYS_pidfd_open, proc.host_pid, 0);
    result = 0;
out:
    cJSON_Delete(who);
    hd_strv_free(envp);
    return result;
}

/* The strings of array arr into argv (at most HD_ARGV_MAX, then NULL);
 * the number, or -1 if there are none or too many. */
static int hd_argv(const cJSON *arr, char **argv)
{
    const cJSON *it;
    int argc = 0;

    cJSON_ArrayForEach(it, arr)
    {
        if (argc >= HD_ARGV_MAX)
            return -1;
        argv[argc++] = it->valuestring;
    }
    argv[argc] = NULL;
    return argc > 0 ? argc : -1;
}

/* A new execution record of kind k in s for job (not yet linked or
 * spawned), or NULL after answering the job. */
static hd_exec *hd_exec_new(hd_sandbox *s, hd_job *job, const hd_kind *k)
{
    const cJSON *a = job->args;
    const char *in = hd_arg_str(a, "stdin");
    hd_exec *e = calloc(1, sizeof *e);

    if (e == NULL) {
        hd_reply_err(job->rid, SP_E_INTERNAL, "out of memory");
        return NULL;
    }
    snprintf(e->id, sizeof e->id, "%s", hd_arg_str(a, "id"));
    e->sbx = s;
    e->kind = k;
    e->fds[0] = e->fds[1] = e->in_fd = e->pidfd = -1;
    e->pty = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "pty"));
    e->out_max = (size_t)cfg_int(CFG_SP_OUTPUT_MAX);
    buf_init(&e->cap[0], e->out_max);
    buf_init(&e->cap[1], e->out_max);
    buf_init(&e->pending_in, HD_STDIN_MAX);
    e->close_in =
        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "stdin_open"));
    e->scratch =
        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(a, "scratch"), 1);
    if (in != NULL && buf_puts(&e->pending_in, in) != 0) {
        hd_reply_err(job->rid, SP_E_PAYLOAD_TOO_LARGE, "stdin is too large");
        hd_exec_free(e);
        return NULL;
    }
    return e;
}

/* e runs: link it, write its record and its first events, feed its stdin
 * and answer now (started) or keep the job's rid for its end (wait). */
static void hd_exec_started(hd_exec *e, hd_job *job)
{
    char ek[RDS_KEY_MAX], vk[RDS_KEY_MAX], sk[RDS_KEY_MAX];
    hd_sandbox *s = e->sbx;
    long long timeout = hd_arg_int(job->args, "timeout_ms", 0);

    if (timeout > 0)
        e->deadline_ms = e->started_ms + timeout;
    e->next = s->execs;
    s->execs = e;
    hd_exec_keys(e, ek, vk, sizeof ek);
    key_of(sk, sizeof sk, KEY_SBX_RUNNING, s->id);
    hd_pub("HSET %s owner %s sandbox %s helper %s status running started %lld",
           ek, s->owner, s->id, hd_helper_id, e->started_ms);
    hd_pub("SADD %s %s", sk, e->id);
    e->kind->start(e);
    if (e->compiling) {
        close(e->in_fd); /* the compiler reads nothing */
        e->in_fd = -1;
    } else {
        hd_exec_write_stdin(e);
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(job->args, "wait"))) {
        snprintf(e->rid, sizeof e->rid, "%s", job->rid);
    } else {
        cJSON *rep = cJSON_CreateObject();
        cJSON_AddStringToObject(rep, "execution_id", e->id);
        cJSON_AddStringToObject(rep, "sandbox_id", s->id);
        cJSON_AddStringToObject(rep, "helper", hd_helper_id);
        hd_reply(job->rid, rep, NULL, 0);
    }
}

hd_exec *hd_exec_prepare(hd_sandbox *s, hd_job *job, const hd_kind *k)
{
    const cJSON *a = job->args;
    const cJSON *compile = cJSON_GetObjectItemCaseSensitive(a, "compile");
    char *argv[HD_ARGV_MAX + 1] = {0};
    hd_exec *e;

    if (!(id_valid_typed(hd_arg_str(a, "id"), "exe_") ||
          id_valid_typed(hd_arg_str(a, "id"), "trm_")) ||
        hd_argv(cJSON_GetObjectItemCaseSensitive(a, "argv"), argv) < 0) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad exec job");
        return NULL;
    }
    if ((e = hd_exec_new(s, job, k)) == NULL)
        return NULL;
    /* With "compile", that argv runs first (its output is the
     * execution's); the program runs only if it succeeds. */
    if (cJSON_IsArray(compile)) {
        e->then = cJSON_Duplicate(a, 1);
        e->compiling = 1;
        if (hd_argv(compile, argv) < 0) {
            hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad compile");
            hd_exec_free(e);
            return NULL;
        }
    }
    return e;
}

int hd_exec_spawn_job(hd_exec *e, const hd_job *job, char *err, size_t errlen)
{
    const cJSON *a = job->args;
    char *argv[HD_ARGV_MAX + 1] = {0};

    hd_argv(
        cJSON_GetObjectItemCaseSensitive(a, e->compiling ? "compile" : "argv"),
        argv);
    sbx_oom_count(e->sbx->sbx, &e->oom_before);
    e->started_ms = hd_now_ms();
    return hd_exec_spawn(e, argv, cJSON_GetObjectItemCaseSensitive(a, "env"),
                         hd_arg_str(a, "cwd"), hd_arg_str(a, "user"),
                         (unsigned short)hd_arg_int(a, "cols", 80),
                         (unsigned short)hd_arg_int(a, "rows", 24), err,
                         errlen);
}

void hd_exec_begin(hd_exec *e, hd_job *job, int spawn_rc, const char *err)
{
    if (spawn_rc != 0) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "%s", err);
        hd_exec_free(e);
        return;
    }
    hd_exec_started(e, job);
}

void hd_exec_start(hd_sandbox *s, hd_job *job, const hd_kind *k)
{
    hd_exec *e = hd_exec_prepare(s, job, k);
    char err[512];

    if (e != NULL)
        hd_exec_begin(e, job, hd_exec_spawn_job(e, job, err, sizeof err), err);
}

void hd_exec_stdin(hd_exec *e, hd_job *job)
{
    const char *d = hd_arg_str(job->args, "data");

    if (e->in_fd < 0) {
        hd_reply_err(job->rid, SP_E_CONFLICT, "stdin is closed");
        return;
    }
    if (d != NULL && buf_puts(&e->pending_in, d) != 0) {
        hd_reply_err(job->rid, SP_E_RATE_LIMITED,
                     "stdin buffer is full; retry later");
        return;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(job->args, "eof")))
        e->close_in = 1;
    e->last_input_ms = hd_now_ms();
    hd_exec_write_stdin(e);
    hd_reply(job->rid, cJSON_CreateObject(), NULL, 0);
}

void hd_exec_cancel(hd_exec *e, hd_job *job)
{
    e->cancelled = 1;
    hd_exec_kill(e);
    hd_reply(job->rid, cJSON_CreateObject(), NULL, 0);
}

void hd_exec_signal(hd_exec *e, hd_job *job)
{
    int sig = (int)hd_arg_int(job->args, "signal", 0);

    if (sig == SIGKILL) {
        e->killed = 1;
        hd_exec_kill(e);
    } else if (e->pidfd < 0 ||
               syscall(SYS_pidfd_send_signal, e->pidfd, sig, NULL, 0) != 0) {
        /* The pidfd, not the pid, so a reused pid is never hit. */
        hd_reply_err(job->rid, SP_E_CONFLICT, "could not signal: %s",
                     strerror(errno));
        return;
    }
    hd_reply(job->rid, cJSON_CreateObject(), NULL, 0);
}

void hd_exec_resize(hd_exec *e, hd_job *job)
{
    long long cols = hd_arg_int(job->args, "cols", 0);
    long long rows = hd_arg_int(job->args, "rows", 0);

    if (!e->pty || sbx_pty_resize(e->fds[0], (unsigned short)cols,
                                  (unsigned short)rows) != 0) {
        hd_reply_err(job->rid, SP_E_CONFLICT, "not a terminal");
        return;
    }
    hd_reply(job->rid, cJSON_CreateObject(), NULL, 0);
}

hd_exec *hd_exec_by_id(hd_sandbox *s, const char *id)
{
    return hd_exec_find(s, id, 0);
}

void hd_exec_exited(hd_sandbox *s, uint32_t req_id, int wait_status)
{
    hd_exec *e = hd_exec_find(s, NULL, req_id);
    if (e == NULL || e->exited)
        return;
    e->exited = 1;
    e->wait_status = wait_status;
    /* Killed by the OOM killer before a tick saw the counter move: the
     * counter moves before the victim's exit is reported. */
    if (!e->oom && WIFSIGNALED(wait_status) &&
        WTERMSIG(wait_status) == SIGKILL) {
        uint64_t oom = 0;
        if (sbx_oom_count(s->sbx, &oom) == 0 && oom > e->oom_before)
            e->oom = 1;
    }
    /* Nothing the execution started outlives it; this also closes the
     * last writers of its pipes. */
    hd_exec_kill(e);
    if (e->deadline_ms == 0 || e->deadline_ms > hd_now_ms() + HD_DRAIN_GRACE_MS)
        e->deadline_ms = hd_now_ms() + HD_DRAIN_GRACE_MS;
}

long long hd_exec_next_deadline(const hd_sandbox *s)
{
    long long next = 0;
    for (const hd_exec *e = s->execs; e != NULL; e = e->next) {
        if (e->deadline_ms > 0 && (next == 0 || e->deadline_ms < next))
            next = e->deadline_ms;
    }
    return next;
}

/* The compile step of e has ended. If it succeeded, start the program
 * (same execution: same events, deadline and output cap) and return 0;
 * else mark it compile_failed and return -1 (the execution ends). */
static int hd_exec_compiled(hd_exec *e)
{
    const cJSON *a = e->then;
    char *argv[HD_ARGV_MAX + 1] = {0}, err[512];
    long long t = hd_arg_int(a, "timeout_ms", 0);

    e->compiling = 0;
    if (!WIFEXITED(e->wait_status) || WEXITSTATUS(e->wait_status) != 0 ||
        e->timed_out || e->killed || e->cancelled || e->over_limit) {
        e->compile_failed = !e->timed_out && !e->killed && !e->cancelled;
        return -1;
    }
    if (hd_argv(cJSON_GetObjectItemCaseSensitive(a, "argv"), argv) < 0 ||
        hd_exec_spawn(e, argv, cJSON_GetObjectItemCaseSensitive(a, "env"),
                      hd_arg_str(a, "cwd"), hd_arg_str(a, "user"), 0, 0, err,
                      sizeof err) != 0) {
        static const char msg[] = "could not start the program\n";
        hd_event(e, "stderr", msg, sizeof msg - 1);
        return -1;
    }
    e->exited = 0;
    e->wait_status = 0;
    /* The drain grace set at the compiler's exit is not the deadline. */
    e->deadline_ms = t > 0 ? e->started_ms + t : 0;
    hd_exec_write_stdin(e);
    return 0;
}

/* e has ended: what it lost while Redis was away, then its end. */
static void hd_exec_end(hd_exec *e)
{
    if (!e->sbx->lost)
        hd_exec_report_lost(e);
    hd_exec_finish(e);
}

void hd_exec_tick(hd_sandbox *s, long long now_ms)
{
    uint64_t oom = 0;
    /* Every pass of the loop: the cgroup file only when something runs. */
    int oom_read = s->execs != NULL && sbx_oom_count(s->sbx, &oom) == 0;

    for (hd_exec **pp = &s->execs; *pp != NULL;) {
        hd_exec *e = *pp;
        if (!e->exited && oom_read && oom > e->oom_before && !e->oom) {
            /* The OOM killer struck: the whole execution ends. */
            e->oom = 1;
            hd_exec_kill(e);
        }
        if (e->kind->idle != NULL && !e->exited && e->kind->idle(e, now_ms)) {
            e->killed = 1;
            hd_exec_kill(e);
        }
        if (e->deadline_ms > 0 && now_ms >= e->deadline_ms) {
            if (!e->exited) {
                e->timed_out = 1;
                hd_exec_kill(e);
                e->deadline_ms = now_ms + HD_DRAIN_GRACE_MS;
            } else {
                /* Output still open after the grace period: something
                 * holds the pipe; stop waiting for it. */
                hd_close_out(e, 0);
                hd_close_out(e, 1);
            }
        }
        if (e->exited && e->fds[0] < 0 && e->fds[1] < 0 && e->compiling &&
            hd_exec_compiled(e) == 0)
            continue; /* the program runs now */
        if (e->exited && e->fds[0] < 0 && e->fds[1] < 0) {
            *pp = e->next;
            hd_exec_end(e);
            hd_exec_free(e);
            continue;
        }
        pp = &e->next;
    }
}

void hd_exec_shift(hd_sandbox *s, long long delta_ms)
{
    for (hd_exec *e = s->execs; e != NULL; e = e->next) {
        if (e->deadline_ms > 0)
            e->deadline_ms += delta_ms;
        e->started_ms += delta_ms; /* its duration is its running time */
        e->last_input_ms += delta_ms;
        e->watched_ms += delta_ms;
    }
}

void hd_exec_kill_all(hd_sandbox *s, const char *why)
{
    while (s->execs != NULL) {
        hd_exec *e = s->execs;
        s->execs = e->next;
        if (!e->exited) {
            e->killed = 1;
            hd_exec_kill(e);
            e->wait_status = SIGKILL; /* as if killed by the signal */
        }
        for (int w = 0; w < 2; w++) {
            if (e->fds[w] >= 0) {
                hd_exec_read(e, w);
                hd_close_out(e, w);
            }
        }
        (void)why;
        hd_exec_end(e);
        hd_exec_free(e);
    }
}
