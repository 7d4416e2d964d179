/*
 * sbx_launch.c — fork and exec a helper program (bwrap, slirp4netns) as the
 * sandbox's unprivileged host user, inside the sandbox's cgroups.
 *
 * Between fork and exec the child only makes system calls. Anything that
 * fails there is written as {stage, errno} to a close-on-exec pipe, so the
 * parent learns either "exec'd" (EOF) or what went wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbx_priv.h"

enum {
    ST_CGROUP = 1,
    ST_SETSID,
    ST_NNP,
    ST_SETGROUPS,
    ST_SETGID,
    ST_SETUID,
    ST_PDEATHSIG,
    ST_DUP,
    ST_FDS,
    ST_EXEC
};

static const char *const stage_names[] = {
    "",
    "write(cgroup.procs)",
    "setsid()",
    "prctl(PR_SET_NO_NEW_PRIVS)",
    "setgroups()",
    "setresgid()",
    "setresuid()",
    "prctl(PR_SET_PDEATHSIG)",
    "dup2()",
    "fcntl()",
    "execve()",
};

static void fail(int fd, int stage)
{
    int32_t r[2] = {stage, errno};

    if (write(fd, r, sizeof(r)) < 0)
        _exit(127);
    _exit(127);
}

/* In the child: never returns. */
static void child(const sbx_launch *l, pid_t parent, int null_fd, int report)
{
    static char *const no_env[] = {NULL};
    size_t i;
    int fd;

    /*
     * Enter the sandbox cgroups first: the program and everything it
     * starts are then limited, counted and killed with the sandbox.
     */
    for (i = 0; i < l->njoin; i++)
        if (write(l->join[i], "0", 1) != 1)
            fail(report, ST_CGROUP);
    /* Own session: the daemon's terminal signals must not reach it. */
    if (setsid() < 0)
        fail(report, ST_SETSID);
    /* No set-uid binary may give privileges back. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail(report, ST_NNP);
    /*
     * Unprivileged on the host: bwrap then builds its namespaces as an
     * ordinary user, so nothing in them is root on the host.
     */
    if (setgroups(0, NULL) < 0)
        fail(report, ST_SETGROUPS);
    if (setresgid(l->gid, l->gid, l->gid) < 0)
        fail(report, ST_SETGID);
    if (setresuid(l->uid, l->uid, l->uid) < 0)
        fail(report, ST_SETUID);
    /* Die with the daemon (credential changes reset this, so set it now). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        fail(report, ST_PDEATHSIG);
    if (getppid() != parent)
        _exit(127); /* the daemon died already */
    for (i = 0; i < 3; i++)
        if (dup2(l->stdio[i] >= 0 ? l->stdio[i] : null_fd, (int)i) < 0)
            fail(report, ST_DUP);
    /* Every other fd of the daemon closes at exec; the kept ones stay. */
    if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) < 0) {
        struct rlimit rl = {4096, 4096};

        getrlimit(RLIMIT_NOFILE, &rl);
        for (fd = 3; fd < (int)rl.rlim_cur && fd < 65536; fd++)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    for (i = 0; i < l->nkeep; i++)
        if (l->keep[i] >= 0 && fcntl(l->keep[i], F_SETFD, 0) < 0)
            fail(report, ST_FDS);
    execve(l->path, l->argv, no_env);
    fail(report, ST_EXEC);
}

pid_t sbx_launch_child(const sbx_launch *l, char *err, size_t errlen)
{
    int report[2] = {-1, -1}, null_fd, status;
    pid_t parent = getpid(), pid, result = -1;
    int32_t r[2];
    ssize_t n;

    null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0) {
        snprintf(err, errlen, "open(\"/dev/null\") failed: %s",
                 strerror(errno));
        return -1;
    }
    if (pipe2(report, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe2() failed: %s", strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork() failed: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child(l, parent, null_fd, report[1]);
    close(report[1]);
    report[1] = -1;
    do
        n = read(report[0], r, sizeof(r));
    while (n < 0 && errno == EINTR);
    if (n == 0) {
        result = pid;
        goto out;
    }
    if (n == (ssize_t)sizeof(r) && r[0] > 0 && r[0] <= ST_EXEC)
        snprintf(err, errlen, "%s failed in the child for %s: %s",
                 stage_names[r[0]], l->path, strerror(r[1]));
    else
        snprintf(err, errlen, "child for %s failed before exec", l->path);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
out:
    if (report[0] >= 0)
        close(report[0]);
    if (report[1] >= 0)
        close(report[1]);
    close(null_fd);
    return result;
}
