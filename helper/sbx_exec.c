/*
 * sbx_exec.c — host side of the sp-init protocol (sbx_proto.h): spawning
 * programs, exit events, killing executions, usage.
 *
 * Every message from sp-init is checked for its exact size and for a
 * request id the host issued; anything else marks the sandbox dead. The
 * pid sp-init reports is only a hint: the host looks for it among the
 * processes of the sandbox's own cgroup, in sp-init's PID namespace, and
 * holds a pidfd across the move so a recycled pid cannot be moved instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "sbx_priv.h"
#include "sbx_proto.h"

static const char *const default_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/workspace",
    "LANG=C.UTF-8",
};

static const char *const stage_calls[] = {
    "",        "setsid()", "ioctl(TIOCSCTTY)", "dup2()",
    "chdir()", "execve()", "setuid()",
};

static sbx_exec *find_exec(sbx_sandbox *s, uint32_t req_id)
{
    size_t i;

    for (i = 0; i < SBX_MAX_EXECS; i++)
        if (s->execs[i].state != SBX_EXEC_FREE && s->execs[i].req_id == req_id)
            return &s->execs[i];
    return NULL;
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* An execution is over and its cgroup empty: forget it. */
static void try_release(sbx_sandbox *s, sbx_exec *e)
{
    if (e->state == SBX_EXEC_EXITED &&
        sbx_cg_exec_remove(s->cg, e->req_id) == 0)
        e->state = SBX_EXEC_FREE;
}

/*
 * One message from sp-init. Replies of the type and request awaited are
 * copied to reply; EXIT is queued. Returns 1 when reply was filled, 0
 * otherwise, -1 on a protocol violation.
 */
int sbx_exec_dispatch(sbx_sandbox *s, const void *msg, size_t len,
                      uint32_t want_type, uint32_t want_req, void *reply)
{
    sbx_msg_hdr h;
    sbx_exec *e;

    if (len < sizeof(h))
        return -1;
    memcpy(&h, msg, sizeof(h));
    e = h.req_id ? find_exec(s, h.req_id) : NULL;
    switch (h.type) {
    case SBX_MSG_EXIT: {
        sbx_msg_exit m;

        if (len != sizeof(m))
            return -1;
        memcpy(&m, msg, sizeof(m));
        if (!e || e->state == SBX_EXEC_EXITED)
            return 0; /* an aborted spawn, or a replay */
        if (e->state == SBX_EXEC_RUNNING && s->queued < SBX_MAX_EXECS) {
            s->queue[s->queued].req_id = h.req_id;
            s->queue[s->queued].wait_status = m.status;
            s->queued++;
        }
        e->state = SBX_EXEC_EXITED;
        try_release(s, e);
        return 0;
    }
    case SBX_MSG_SPAWNED:
    case SBX_MSG_STARTED:
        if (len != (h.type == SBX_MSG_SPAWNED ? sizeof(sbx_msg_spawned)
                                              : sizeof(sbx_msg_started)))
            return -1;
        if (h.type != want_type || h.req_id != want_req)
            return 0; /* late reply to a spawn that already failed */
        memcpy(reply, msg, len);
        return 1;
    default:
        return -1;
    }
}

/* Read messages until the awaited reply comes (bounded). */
static int await(sbx_sandbox *s, uint32_t type, uint32_t req_id, void *reply,
                 char *err, size_t errlen)
{
    long deadline = now_ms() + SBX_REPLY_TIMEOUT_MS;
    unsigned char buf[64];
    struct pollfd pfd = {s->sock, POLLIN, 0};
    sbx_exec *e;
    ssize_t n;
    int rc;

    for (;;) {
        e = find_exec(s, req_id);
        if (!e || e->state == SBX_EXEC_EXITED) {
            snprintf(err, errlen, "spawn: the process died before exec");
            return -1;
        }
        n = recv(s->sock, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
        if (n > 0) {
            rc = sbx_exec_dispatch(s, buf,
                                   (size_t)n > sizeof(buf) ? 0 : (size_t)n,
                                   type, req_id, reply);
            if (rc < 0)
                break;
            if (rc > 0)
                return 0;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            break;
        rc = (int)(deadline - now_ms());
        if (rc <= 0 || (poll(&pfd, 1, rc) < 0 && errno != EINTR)) {
            snprintf(err, errlen, "spawn: no reply from sp-init");
            return -1;
        }
    }
    s->dead = 1;
    snprintf(err, errlen, "spawn: sandbox died or sp-init misbehaved");
    return -1;
}

static int send_hdr(sbx_sandbox *s, uint32_t type, uint32_t req_id)
{
    sbx_msg_hdr h = {type, req_id};

    return send(s->sock, &h, sizeof(h), MSG_NOSIGNAL) == (ssize_t)sizeof(h)
               ? 0
               : -1;
}

/* Append str (with its NUL) to the message, within SBX_SPAWN_MAX_BYTES. */
static int put(char *buf, size_t *off, const char *str)
{
    size_t len = strlen(str) + 1;

    if (len > SBX_SPAWN_MAX_BYTES - *off)
        return -1;
    memcpy(buf + *off, str, len);
    *off += len;
    return 0;
}

static int has_key(char *const *envp, const char *kv)
{
    size_t klen = (size_t)(strchr(kv, '=') - kv) + 1, i;

    for (i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], kv, klen) == 0)
            return 1;
    return 0;
}

/* Build the SPAWN message in buf; returns its length, 0 if too large. */
static size_t build_spawn(const sbx_spawn_req *req, uint32_t req_id, char *buf)
{
    sbx_msg_spawn m = {{SBX_MSG_SPAWN, req_id},
                       0,
                       req->cols,
                       req->rows,
                       req->user_set ? req->uid : SBX_SANDBOX_UID,
                       req->user_set ? req->gid : SBX_SANDBOX_UID,
                       0,
                       0,
                       0};
    size_t off = sizeof(m), i;

    m.flags = req->pty ? SBX_SPAWN_PTY : 0;
    if (put(buf, &off, req->cwd ? req->cwd : ""))
        return 0;
    for (i = 0; req->argv[i]; i++, m.argc++)
        if (m.argc >= SBX_PROTO_MAX_ARGS || put(buf, &off, req->argv[i]))
            return 0;
    for (i = 0; req->envp && req->envp[i]; i++, m.envc++) {
        const char *eq = strchr(req->envp[i], '=');

        if (!eq || eq == req->envp[i] || m.envc >= SBX_PROTO_MAX_ARGS - 3 ||
            put(buf, &off, req->envp[i]))
            return 0;
    }
    for (i = 0; i < 3; i++) {
        if (has_key(req->envp, default_env[i]))
            continue;
        if (put(buf, &off, default_env[i]))
            return 0;
        m.envc++;
    }
    m.strings_len = (uint32_t)(off - sizeof(m));
    memcpy(buf, &m, sizeof(m));
    return off;
}

/* Make the stdio of the child: three pipes, or a pty. */
static int make_stdio(const sbx_sandbox *s, const sbx_spawn_req *req,
                      int child[3], sbx_proc *out, char *err, size_t errlen)
{
    int p[3][2], i, master;
    struct winsize ws = {req->rows ? req->rows : 24, req->cols ? req->cols : 80,
                         0, 0};
    char ptmx[64];

    if (req->pty) {
        /* The pty comes from the sandbox's own devpts (bwrap --dev mounts
         * a new instance), so that the program finds its terminal as
         * /dev/pts/N inside (ttyname, tty). The host's is the fallback. */
        snprintf(ptmx, sizeof ptmx, "/proc/%d/root/dev/pts/ptmx",
                 (int)s->init_pid);
        /* Opened as the sandbox's user, so the slave is its own inside
         * (devpts gives it the opener's fsuid). Per thread, restored. */
        syscall(SYS_setfsgid, s->gid);
        syscall(SYS_setfsuid, s->uid);
        master = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
        syscall(SYS_setfsuid, 0);
        syscall(SYS_setfsgid, 0);
        if (master < 0)
            master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
            ioctl(master, TIOCSWINSZ, &ws) < 0) {
            snprintf(err, errlen, "posix_openpt() failed: %s", strerror(errno));
            if (master >= 0)
                close(master);
            return -1;
        }
        /* TIOCGPTPEER: the slave without a path lookup in /dev/pts. */
        child[0] = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (child[0] < 0) {
            snprintf(err, errlen, "ioctl(TIOCGPTPEER) failed: %s",
                     strerror(errno));
            close(master);
            return -1;
        }
        child[1] = child[2] = child[0];
        fcntl(master, F_SETFL, O_NONBLOCK);
        out->stdin_fd = out->stdout_fd = master;
        out->stderr_fd = -1;
        return 0;
    }
    for (i = 0; i < 3; i++) {
        if (pipe2(p[i], O_CLOEXEC) < 0) {
            snprintf(err, errlen, "pipe2() failed: %s", strerror(errno));
            while (i-- > 0)
                close(p[i][0]), close(p[i][1]);
            return -1;
        }
    }
    child[0] = p[0][0], out->stdin_fd = p[0][1];
    child[1] = p[1][1], out->stdout_fd = p[1][0];
    child[2] = p[2][1], out->stderr_fd = p[2][0];
    for (i = 0; i < 3; i++)
        fcntl(i == 0   ? out->stdin_fd
              : i == 1 ? out->stdout_fd
                       : out->stderr_fd,
              F_SETFL, O_NONBLOCK);
    return 0;
}

static int send_spawn(sbx_sandbox *s, const char *msg, size_t len,
                      const int fds[3])
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(3 * sizeof(int))];
    } ctl;
    struct iovec iov = {(void *)msg, len};
    struct msghdr mh = {0};
    struct cmsghdr *cm;

    memset(&ctl, 0, sizeof(ctl));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(3 * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, 3 * sizeof(int));
    return sendmsg(s->sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/*
 * The host pid of the process sp-init calls ns_pid: it must sit in the
 * sandbox cgroup itself and in sp-init's PID namespace. Returns a pidfd
 * (O_CLOEXEC) on it and its pid in *pid, or -1.
 */
static int find_host_pid(sbx_sandbox *s, pid_t ns_pid, pid_t *pid)
{
    pid_t pids[4096];
    char path[64], line[256], *p, *end;
    size_t n, i;
    struct stat st;
    FILE *f;
    int pidfd;

    if (ns_pid <= 1 || sbx_cg_sandbox_pids(s->cg, pids, 4096, &n) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        long last = -1, v;
        int fields = 0;

        pidfd = (int)syscall(SYS_pidfd_open, pids[i], 0);
        if (pidfd < 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pids[i]);
        f = fopen(path, "re");
        while (f && fgets(line, sizeof(line), f))
            if (strncmp(line, "NSpid:", 6) == 0)
                for (p = line + 6; (v = strtol(p, &end, 10)), end != p; p = end)
                    fields++, last = v;
        if (f)
            fclose(f);
        snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pids[i]);
        if (fields >= 2 && last == ns_pid && stat(path, &st) == 0 &&
            st.st_dev == s->pidns_dev && st.st_ino == s->pidns_ino) {
            *pid = pids[i];
            return pidfd;
        }
        close(pidfd);
    }
    return -1;
}

/* Move the held child into its execution cgroup. */
static int place_child(sbx_sandbox *s, uint32_t req_id, pid_t ns_pid,
                       pid_t *host_pid, char *err, size_t errlen)
{
    int pidfd = find_host_pid(s, ns_pid, host_pid), result = -1;

    if (pidfd < 0) {
        snprintf(err, errlen, "spawn: pid %d not found in the sandbox",
                 (int)ns_pid);
        return -1;
    }
    if (sbx_cg_exec_move(s->cg, req_id, *host_pid, err, errlen) < 0)
        goto out;
    /* Still alive through the pidfd: the pid we moved was this process. */
    if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0) {
        snprintf(err, errlen, "spawn: the process died before exec");
        goto out;
    }
    result = 0;
out:
    close(pidfd);
    return result;
}

/* After SPAWN was sent for e: wait for the held child, move it into its
 * cgroup, let it go and wait for its exec. Returns 0 or -1 (err). */
static int spawn_handshake(sbx_sandbox *s, sbx_exec *e,
                           const sbx_spawn_req *req, sbx_proc *out, char *err,
                           size_t errlen)
{
    sbx_msg_spawned spawned;
    sbx_msg_started started;

    if (await(s, SBX_MSG_SPAWNED, e->req_id, &spawned, err, errlen) < 0)
        return -1;
    if (spawned.err != 0) {
        snprintf(err, errlen, "fork() in the sandbox failed: %s",
                 strerror(spawned.err > 0 && spawned.err < 4096 ? spawned.err
                                                                : EPROTO));
        return -1;
    }
    if (place_child(s, e->req_id, spawned.pid, &out->host_pid, err, errlen) <
        0) {
        send_hdr(s, SBX_MSG_ABORT, e->req_id);
        return -1;
    }
    if (send_hdr(s, SBX_MSG_GO, e->req_id) < 0) {
        snprintf(err, errlen, "send(GO) failed: %s", strerror(errno));
        return -1;
    }
    if (await(s, SBX_MSG_STARTED, e->req_id, &started, err, errlen) < 0)
        return -1;
    if (started.stage != SBX_STAGE_OK) {
        snprintf(err, errlen, "%s failed for \"%s\": %s",
                 started.stage <= SBX_STAGE_MAX ? stage_calls[started.stage]
                                                : "spawn",
                 started.stage == SBX_STAGE_CHDIR && req->cwd ? req->cwd
                                                              : req->argv[0],
                 strerror(started.err > 0 && started.err < 4096 ? started.err
                                                                : EPROTO));
        return -1;
    }
    return 0;
}

/* Close the sandbox-side ends of the child's stdio (a PTY's may repeat). */
static void close_child_fds(int child[3])
{
    for (int i = 0; i < 3; i++)
        if (child[i] >= 0 && (i == 0 || child[i] != child[i - 1]))
            close(child[i]);
    child[0] = child[1] = child[2] = -1;
}

/* Undo a spawn that failed: our stdio ends, its cgroup, its slot. */
static void spawn_undo(sbx_sandbox *s, sbx_exec *e, int made_cg, sbx_proc *out)
{
    if (out->stdin_fd >= 0)
        close(out->stdin_fd);
    if (out->stdout_fd >= 0 && out->stdout_fd != out->stdin_fd)
        close(out->stdout_fd);
    if (out->stderr_fd >= 0)
        close(out->stderr_fd);
    out->stdin_fd = out->stdout_fd = out->stderr_fd = -1;
    out->host_pid = -1;
    if (made_cg) {
        sbx_cg_exec_kill(s->cg, e->req_id);
        sbx_cg_exec_remove(s->cg, e->req_id);
    }
    e->state = SBX_EXEC_FREE;
}

/* A free execution slot of s, or NULL (err set). */
static sbx_exec *free_exec(sbx_sandbox *s, const sbx_spawn_req *req, char *err,
                           size_t errlen)
{
    if (s->dead) {
        snprintf(err, errlen, "spawn: the sandbox is dead");
        return NULL;
    }
    if (!req->argv || !req->argv[0] || !req->argv[0][0]) {
        snprintf(err, errlen, "spawn: empty argv");
        return NULL;
    }
    for (int i = 0; i < SBX_MAX_EXECS; i++)
        if (s->execs[i].state == SBX_EXEC_FREE)
            return &s->execs[i];
    snprintf(err, errlen, "spawn: too many executions in the sandbox");
    return NULL;
}

int sbx_spawn(sbx_sandbox *s, const sbx_spawn_req *req, sbx_proc *out,
              char *err, size_t errlen)
{
    /* Per call, not static: sandboxes may be spawned into from several
     * threads at once (a helper's workers). */
    char *msg = malloc(SBX_PROTO_MAX_MSG);
    int child[3] = {-1, -1, -1}, result = -1, made_cg = 0;
    sbx_exec *e;
    size_t len;

    out->req_id = 0;
    out->host_pid = -1;
    out->stdin_fd = out->stdout_fd = out->stderr_fd = -1;
    if (msg == NULL) {
        snprintf(err, errlen, "malloc() failed");
        return -1;
    }
    if ((e = free_exec(s, req, err, errlen)) == NULL) {
        free(msg);
        return -1;
    }
    if (++s->next_req == 0)
        s->next_req = 1;
    len = build_spawn(req, s->next_req, msg);
    if (len == 0) {
        snprintf(err, errlen, "spawn: argv/env too large or malformed");
        free(msg);
        return -1;
    }
    e->req_id = s->next_req;
    if (sbx_cg_exec_create(s->cg, e->req_id, err, errlen) < 0)
        goto out;
    made_cg = 1;
    if (make_stdio(s, req, child, out, err, errlen) < 0)
        goto out;
    e->state = SBX_EXEC_SPAWNING;
    if (send_spawn(s, msg, len, child) < 0) {
        snprintf(err, errlen, "sendmsg(SPAWN) failed: %s", strerror(errno));
        goto out;
    }
    close_child_fds(child);
    if (spawn_handshake(s, e, req, out, err, errlen) < 0)
        goto out;
    e->state = SBX_EXEC_RUNNING;
    out->req_id = e->req_id;
    result = 0;
out:
    free(msg);
    close_child_fds(child);
    if (result < 0)
        spawn_undo(s, e, made_cg, out);
    return result;
}

int sbx_handle_control(sbx_sandbox *s, sbx_exit_event *events, size_t max,
                       size_t *n)
{
    unsigned char buf[64];
    ssize_t got;
    size_t budget = 256;

    *n = 0;
    for (;;) {
        /* Deliver what was queued first, in order. */
        while (s->queued && *n < max) {
            events[(*n)++] = s->queue[0];
            s->queued--;
            memmove(s->queue, s->queue + 1, s->queued * sizeof(s->queue[0]));
        }
        if (*n == max || s->queued || budget-- == 0 || s->dead)
            break;
        got = recv(s->sock, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (got <= 0 || (size_t)got > sizeof(buf) ||
            sbx_exec_dispatch(s, buf, (size_t)got, 0, 0, NULL) < 0)
            s->dead = 1;
    }
    return s->dead ? -1 : 0;
}

int sbx_kill_exec(sbx_sandbox *s, uint32_t req_id)
{
    sbx_exec *e = find_exec(s, req_id);
    int rc;

    if (!e)
        return 0;
    rc = sbx_cg_exec_kill(s->cg, req_id);
    try_release(s, e);
    return rc;
}

int sbx_usage(sbx_sandbox *s, uint64_t *mem_bytes, uint64_t *cpu_ns,
              uint32_t *nprocs)
{
    return sbx_cg_usage(s->cg, mem_bytes, cpu_ns, nprocs);
}

int sbx_oom_count(sbx_sandbox *s, uint64_t *count)
{
    return sbx_cg_oom_count(s->cg, count);
}

int sbx_pty_resize(int master_fd, unsigned short cols, unsigned short rows)
{
    struct winsize ws = {rows, cols, 0, 0};

    return ioctl(master_fd, TIOCSWINSZ, &ws) < 0 ? -1 : 0;
}
