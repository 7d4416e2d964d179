/*
 * sp_init.c — sp-init, PID 1 of every sandbox.
 *
 * bwrap runs it (--as-pid-1) as the sandbox user with the seccomp filter
 * already loaded; argv[1] is the number of the inherited SOCK_SEQPACKET
 * socket to the host (protocol in sbx_proto.h). It forks the processes the
 * host asks for, holds each one before execve until the host has put it in
 * its execution cgroup, reports exec failures and exit statuses, and reaps
 * every orphan of the PID namespace. When the socket closes it returns,
 * and the kernel kills everything left in the namespace.
 *
 * Built without sanitizers: it runs inside the sandbox.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "sbx_proto.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

enum child_state { CH_FREE = 0, CH_HELD, CH_STARTING, CH_RUNNING };

typedef struct child {
    enum child_state state;
    uint32_t req_id;
    pid_t pid;
    int sync_fd; /* write end: one byte = go, EOF = abort */
    int err_fd;  /* read end: EOF = exec'd, 8 bytes = {stage, errno} */
} child;

static child children[SBX_PROTO_MAX_CHILDREN];
static unsigned char msgbuf[SBX_PROTO_MAX_MSG];

static int send_msg(int sock, const void *msg, size_t len)
{
    ssize_t n;

    do
        n = send(sock, msg, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : -1;
}

static child *find_child(uint32_t req_id)
{
    size_t i;

    for (i = 0; i < SBX_PROTO_MAX_CHILDREN; i++)
        if (children[i].state != CH_FREE && children[i].req_id == req_id)
            return &children[i];
    return NULL;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Look argv[0] up in the PATH of envp (not of sp-init) and exec it. */
static int exec_with_path(char **argv, char **envp)
{
    const char *path = DEFAULT_PATH, *p, *end;
    char buf[PATH_MAX];
    size_t i, dlen, flen = strlen(argv[0]);
    int saw_eacces = 0;

    if (strchr(argv[0], '/')) {
        execve(argv[0], argv, envp);
        return errno;
    }
    for (i = 0; envp[i]; i++)
        if (strncmp(envp[i], "PATH=", 5) == 0)
            path = envp[i] + 5;
    for (p = path;; p = end + 1) {
        end = strchrnul(p, ':');
        dlen = (size_t)(end - p);
        if (dlen == 0) /* an empty element means the current directory */
            buf[0] = '.', dlen = 1;
        else if (dlen < sizeof(buf))
            memcpy(buf, p, dlen);
        if (dlen + 1 + flen < sizeof(buf)) {
            buf[dlen] = '/';
            memcpy(buf + dlen + 1, argv[0], flen + 1);
            execve(buf, argv, envp);
            if (errno == EACCES)
                saw_eacces = 1;
            else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE &&
                     errno != ENODEV && errno != ETIMEDOUT)
                return errno;
        }
        if (*end == '\0')
            break;
    }
    return saw_eacces ? EACCES : ENOENT;
}

/*
 * The forked child: set up session and stdio, wait for the host's go, exec.
 * The first failure is remembered and reported only after the go, so the
 * host sees every outcome the same way (STARTED with stage and errno).
 */
/* Become uid:gid (with that one group) unless already so; 0 or errno. */
static int take_user(uint32_t uid, uint32_t gid)
{
    gid_t g = (gid_t)gid;

    if (getuid() == uid && getgid() == gid)
        return 0;
    if (setgroups(1, &g) < 0 || setresgid(g, g, g) < 0 ||
        setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0)
        return errno;
    return 0;
}

static void child_run(int sock, const sbx_msg_spawn *m, const int fds[3],
                      const char *cwd, char **argv, char **envp, int sync_rd,
                      int err_wr)
{
    int pty = (m->flags & SBX_SPAWN_PTY) != 0;
    int32_t report[2] = {0, 0};
    sigset_t none;
    char go;
    int i;

    close(sock);
    /* sp-init blocks SIGCHLD for its signalfd; the mask survives execve. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* A session of its own, so job control and hangups stay per process. */
    if (setsid() < 0) {
        report[0] = SBX_STAGE_SETSID, report[1] = errno;
    } else if (pty && ioctl(fds[0], TIOCSCTTY, 0) < 0) {
        report[0] = SBX_STAGE_CTTY, report[1] = errno;
    }
    for (i = 0; i < 3 && report[0] == 0; i++) {
        if (fds[i] == i) {
            if (fcntl(i, F_SETFD, 0) < 0)
                report[0] = SBX_STAGE_DUP, report[1] = errno;
        } else if (dup2(fds[i], i) < 0) {
            report[0] = SBX_STAGE_DUP, report[1] = errno;
        }
    }
    if (report[0] == 0 && (report[1] = take_user(m->uid, m->gid)) != 0)
        report[0] = SBX_STAGE_USER;
    if (report[0] == 0 && cwd[0] && chdir(cwd) < 0)
        report[0] = SBX_STAGE_CHDIR, report[1] = errno;
    /* Nothing but 0-2 may reach the program; the pipes go at exec. */
    if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) < 0) {
        struct rlimit rl;
        int fd, max = 4096;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536)
            max = (int)rl.rlim_cur;
        for (fd = 3; fd < max; fd++)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (read(sync_rd, &go, 1) != 1)
        _exit(127); /* aborted by the host, or sp-init is gone */
    if (report[0] == 0) {
        report[0] = SBX_STAGE_EXEC;
        report[1] = exec_with_path(argv, envp);
    }
    if (write(err_wr, report, sizeof(report)) < 0)
        _exit(127);
    _exit(127);
}

/* Split the string block of a SPAWN into cwd, argv and envp (in place). */
static int parse_spawn(const sbx_msg_spawn *m, size_t len, char **cwd,
                       char ***argv, char ***envp)
{
    char *p = (char *)m + sizeof(*m), *end, **vec;
    uint32_t i, total;

    if (len < sizeof(*m) || m->strings_len != len - sizeof(*m) ||
        m->strings_len == 0 || m->argc == 0 || m->argc > SBX_PROTO_MAX_ARGS ||
        m->envc > SBX_PROTO_MAX_ARGS)
        return -1;
    end = p + m->strings_len;
    if (end[-1] != '\0')
        return -1;
    total = m->argc + m->envc;
    vec = calloc((size_t)total + 2, sizeof(*vec));
    if (!vec)
        return -1;
    *cwd = p;
    p += strlen(p) + 1;
    for (i = 0; i < total; i++) {
        if (p >= end) {
            free(vec);
            return -1;
        }
        vec[i + (i >= m->argc)] = p;
        p += strlen(p) + 1;
    }
    if (p != end) {
        free(vec);
        return -1;
    }
    *argv = vec;
    *envp = vec + m->argc + 1;
    return 0;
}

static void handle_spawn(int sock, size_t len, const int fds[3], int nfds)
{
    const sbx_msg_spawn *m = (const sbx_msg_spawn *)msgbuf;
    sbx_msg_spawned reply = {{SBX_MSG_SPAWNED, m->h.req_id}, 0, 0};
    int sync_p[2] = {-1, -1}, err_p[2] = {-1, -1};
    char *cwd, **argv = NULL, **envp;
    child *c = NULL;
    pid_t pid;
    size_t i;

    if (nfds != 3 || m->h.req_id == 0 || find_child(m->h.req_id) ||
        parse_spawn(m, len, &cwd, &argv, &envp) < 0) {
        reply.err = EPROTO;
        goto out;
    }
    for (i = 0; i < SBX_PROTO_MAX_CHILDREN && !c; i++)
        if (children[i].state == CH_FREE)
            c = &children[i];
    if (!c) {
        reply.err = EAGAIN;
        goto out;
    }
    if (pipe2(sync_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0) {
        reply.err = errno;
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        reply.err = errno;
        goto out;
    }
    if (pid == 0)
        child_run(sock, m, fds, cwd, argv, envp, sync_p[0], err_p[1]);
    c->state = CH_HELD;
    c->req_id = m->h.req_id;
    c->pid = pid;
    c->sync_fd = sync_p[1];
    c->err_fd = err_p[0];
    sync_p[1] = err_p[0] = -1;
    reply.pid = pid;
out:
    close_fd(&sync_p[0]);
    close_fd(&sync_p[1]);
    close_fd(&err_p[0]);
    close_fd(&err_p[1]);
    for (i = 0; i < (size_t)nfds; i++)
        close(fds[i]);
    free(argv);
    send_msg(sock, &reply, sizeof(reply));
}

/* The exec outcome of c is known (EOF or a report on err_fd): tell the host. */
static void report_started(int sock, child *c)
{
    sbx_msg_started m = {{SBX_MSG_STARTED, c->req_id}, SBX_STAGE_OK, 0};
    int32_t report[2];
    ssize_t n;

    do
        n = read(c->err_fd, report, sizeof(report));
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(report)) {
        m.stage = (uint32_t)report[0];
        m.err = report[1];
    } else if (n != 0) {
        m.stage = SBX_STAGE_EXEC;
        m.err = EIO;
    }
    close_fd(&c->err_fd);
    c->state = CH_RUNNING;
    send_msg(sock, &m, sizeof(m));
}

/* Reap every dead process; report the ones the host spawned. */
static void reap(int sock)
{
    int status;
    pid_t pid;
    size_t i;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (i = 0; i < SBX_PROTO_MAX_CHILDREN; i++) {
            child *c = &children[i];
            sbx_msg_exit m = {{SBX_MSG_EXIT, c->req_id}, status};

            if (c->state == CH_FREE || c->pid != pid)
                continue;
            if (c->state == CH_STARTING)
                report_started(sock, c);
            close_fd(&c->sync_fd);
            close_fd(&c->err_fd);
            send_msg(sock, &m, sizeof(m));
            c->state = CH_FREE;
            break;
        }
    }
}

/* One message from the host. Returns -1 when the socket is gone. */
static int handle_socket(int sock)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(3 * sizeof(int))];
    } ctl;
    struct iovec iov = {msgbuf, sizeof(msgbuf)};
    struct msghdr mh = {0};
    struct cmsghdr *cm;
    int fds[3], nfds = 0, i;
    const sbx_msg_hdr *h = (const sbx_msg_hdr *)msgbuf;
    child *c;
    ssize_t n;

    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (n == 0)
        return -1;
    for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        for (i = 0; i < (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
             i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (nfds < 3)
                fds[nfds++] = fd;
            else
                close(fd);
        }
    }
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof(*h)) {
        for (i = 0; i < nfds; i++)
            close(fds[i]);
        return 0;
    }
    if (h->type == SBX_MSG_SPAWN) {
        handle_spawn(sock, (size_t)n, fds, nfds);
        return 0;
    }
    for (i = 0; i < nfds; i++)
        close(fds[i]);
    c = find_child(h->req_id);
    if (!c || c->state != CH_HELD || (size_t)n != sizeof(*h))
        return 0;
    if (h->type == SBX_MSG_GO) {
        char go = 'g';

        if (write(c->sync_fd, &go, 1) != 1) {
            /* The child is already dead; reap() will report it. */
        }
        c->state = CH_STARTING;
    }
    if (h->type == SBX_MSG_GO || h->type == SBX_MSG_ABORT)
        close_fd(&c->sync_fd);
    return 0;
}

/* The control socket named by arg (an fd number), or -1. */
static int control_socket(const char *arg)
{
    struct stat st;
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno || *end || v < 3 || v > INT_MAX)
        return -1;
    if (fstat((int)v, &st) < 0 || !S_ISSOCK(st.st_mode))
        return -1;
    return (int)v;
}

/* Harden this process and its descriptors before anything runs; returns
 * a signalfd for SIGCHLD, or -1. */
static int init_setup(int sock)
{
    struct rlimit no_core = {0, 0};
    sigset_t chld;
    int null_fd;

    /*
     * Not dumpable: code in the sandbox runs as the same uid and could
     * otherwise write to this process through /proc/1/mem and speak to the
     * host in its name.
     */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* No core files filling the workspace. */
    setrlimit(RLIMIT_CORE, &no_core);
    /* Whatever bwrap left open must not reach the sandboxed programs. */
    fcntl(sock, F_SETFD, FD_CLOEXEC);
    syscall(SYS_close_range, 3U, (unsigned)sock - 1, 0U);
    syscall(SYS_close_range, (unsigned)sock + 1, ~0U, 0U);
    null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0)
        return -1;
    for (int i = 0; i < 3; i++)
        if (i != null_fd)
            dup2(null_fd, i);
    if (null_fd > 2)
        close(null_fd);
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    return signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Serve the control socket until the host closes it: spawns, exits,
 * start reports. Returns 0, or -1 if poll failed. */
static int serve(int sock, int sfd)
{
    static struct pollfd pfd[SBX_PROTO_MAX_CHILDREN + 2];
    static child *pchild[SBX_PROTO_MAX_CHILDREN + 2];
    size_t i, n;

    for (;;) {
        pfd[0].fd = sock, pfd[0].events = POLLIN;
        pfd[1].fd = sfd, pfd[1].events = POLLIN;
        n = 2;
        for (i = 0; i < SBX_PROTO_MAX_CHILDREN; i++) {
            if (children[i].state != CH_STARTING)
                continue;
            pfd[n].fd = children[i].err_fd;
            pfd[n].events = POLLIN;
            pchild[n++] = &children[i];
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (pfd[1].revents) {
            struct signalfd_siginfo si;

            while (read(sfd, &si, sizeof(si)) > 0)
                ;
            reap(sock);
        }
        for (i = 2; i < n; i++)
            if (pfd[i].revents && pchild[i]->state == CH_STARTING)
                report_started(sock, pchild[i]);
        if (pfd[0].revents & POLLIN) {
            if (handle_socket(sock) < 0)
                return 0;
        } else if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
            return 0;
        }
    }
}

int main(int argc, char **argv)
{
    sbx_msg_hello hello = {{SBX_MSG_HELLO, 0}, SBX_PROTO_VERSION, 0};
    int sock, sfd;

    if (argc != 2 || (sock = control_socket(argv[1])) < 0)
        return 1;
    if ((sfd = init_setup(sock)) < 0)
        return 1;
    hello.pid = getpid();
    if (send_msg(sock, &hello, sizeof(hello)) < 0)
        return 1;
    return serve(sock, sfd) == 0 ? 0 : 1;
}
