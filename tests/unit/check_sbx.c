/*
 * check_sbx.c — unit tests of the sandbox library (helper/sbx*.c) against
 * real sandboxes: bwrap, cgroups, seccomp, sp-init. Runs as root.
 *
 * Needs SP_INIT_PATH (the sp-init binary). Uses a private state directory
 * and a private cgroup name, so it never touches a running daemon's
 * sandboxes. The test binary doubles as a probe program run inside a
 * sandbox (argv[1] == "--probe..."), to try system calls the shell cannot.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "sbx.h"

#define HOST_UID 1000
#define HOST_GID 1000
#define OUT_MAX  65536

typedef struct run_result {
    char out[OUT_MAX];
    char err[OUT_MAX];
    size_t out_len, err_len;
    int status;
} run_result;

static char state_dir[] = "/tmp/check_sbx.XXXXXX";
static char cgroup_name[64];
static const sbx_limits default_limits = {256, 64, 64, 128, 1.0};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static sbx_sandbox *make_sandbox(const char *id, const sbx_limits *lim)
{
    char err[512] = "";
    sbx_sandbox *s = NULL;

    ck_assert_msg(sbx_create(id, lim ? lim : &default_limits, 0, HOST_UID,
                             HOST_GID, NULL, &s, err, sizeof(err)) == 0,
                  "sbx_create: %s", err);
    return s;
}

static void drain(int *fd, char *buf, size_t *len)
{
    ssize_t n;

    for (;;) {
        char tmp[4096];

        n = read(*fd, tmp, sizeof(tmp));
        if (n > 0) {
            size_t room = OUT_MAX - 1 - *len,
                   k = (size_t)n < room ? (size_t)n : room;

            memcpy(buf + *len, tmp, k);
            *len += k;
            buf[*len] = '\0';
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            close(*fd);
            *fd = -1;
        }
        return;
    }
}

/* Wait for the exit of req_id and EOF on the pipes (bounded). */
static int wait_proc(sbx_sandbox *s, sbx_proc *p, run_result *r, double limit)
{
    double deadline = now_s() + limit;
    int exited = 0;

    r->out_len = r->err_len = 0;
    r->out[0] = r->err[0] = '\0';
    r->status = -1;
    while (!exited || p->stdout_fd >= 0 || p->stderr_fd >= 0) {
        struct pollfd pfd[3] = {{sbx_control_fd(s), POLLIN, 0},
                                {p->stdout_fd, POLLIN, 0},
                                {p->stderr_fd, POLLIN, 0}};
        if (now_s() > deadline)
            return -1;
        poll(pfd, 3, 100);
        if (pfd[1].revents)
            drain(&p->stdout_fd, r->out, &r->out_len);
        if (pfd[2].revents)
            drain(&p->stderr_fd, r->err, &r->err_len);
        if (pfd[0].revents) {
            sbx_exit_event ev[8];
            size_t n, i;

            if (sbx_handle_control(s, ev, 8, &n) < 0)
                return -1;
            for (i = 0; i < n; i++)
                if (ev[i].req_id == p->req_id)
                    exited = 1, r->status = ev[i].wait_status;
        }
    }
    return 0;
}

/* Run argv in s, collect its output and wait status. */
static void run(sbx_sandbox *s, char *const argv[], char *const envp[],
                run_result *r)
{
    sbx_spawn_req req = {.argv = argv, .envp = envp};
    char err[512] = "";
    sbx_proc p;

    ck_assert_msg(sbx_spawn(s, &req, &p, err, sizeof(err)) == 0,
                  "sbx_spawn(%s): %s", argv[0], err);
    close(p.stdin_fd);
    ck_assert_msg(wait_proc(s, &p, r, 20) == 0, "%s did not finish", argv[0]);
    sbx_kill_exec(s, p.req_id);
}

static void run_sh(sbx_sandbox *s, const char *script, run_result *r)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};

    run(s, argv, NULL, r);
}

static run_result *result_new(void)
{
    run_result *r = calloc(1, sizeof(*r));

    ck_assert_ptr_nonnull(r);
    return r;
}

START_TEST(test_echo_exit_code)
{
    sbx_sandbox *s = make_sandbox("t_echo", NULL);
    run_result *r = result_new();

    run_sh(s, "echo hello; echo oops >&2; exit 7", r);
    ck_assert_str_eq(r->out, "hello\n");
    ck_assert_str_eq(r->err, "oops\n");
    ck_assert(WIFEXITED(r->status));
    ck_assert_int_eq(WEXITSTATUS(r->status), 7);
    sbx_destroy(s);
    free(r);
}
END_TEST

START_TEST(test_exit_by_signal)
{
    sbx_sandbox *s = make_sandbox("t_signal", NULL);
    run_result *r = result_new();

    run_sh(s, "kill -TERM $$", r);
    ck_assert(WIFSIGNALED(r->status));
    ck_assert_int_eq(WTERMSIG(r->status), SIGTERM);
    sbx_destroy(s);
    free(r);
}
END_TEST

START_TEST(test_exec_errors)
{
    sbx_sandbox *s = make_sandbox("t_noexec", NULL);
    char *argv[] = {"no-such-binary-xyz", NULL};
    sbx_spawn_req req = {.argv = argv};
    char err[512] = "";
    sbx_proc p;

    ck_assert_int_eq(sbx_spawn(s, &req, &p, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "execve") && strstr(err, "No such file"),
                  "unclear error: %s", err);
    ck_assert_int_eq(p.stdout_fd, -1);
    req.argv = (char *[]){"/bin/true", NULL};
    req.cwd = "/does/not/exist";
    ck_assert_int_eq(sbx_spawn(s, &req, &p, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "chdir"), "unclear error: %s", err);
    req.argv = (char *[]){NULL};
    ck_assert_int_eq(sbx_spawn(s, &req, &p, err, sizeof(err)), -1);
    /* The sandbox still works after failed spawns. */
    req.argv = (char *[]){"true", NULL};
    req.cwd = "/tmp";
    ck_assert_msg(sbx_spawn(s, &req, &p, err, sizeof(err)) == 0, "%s", err);
    close(p.stdin_fd), close(p.stdout_fd), close(p.stderr_fd);
    sbx_destroy(s);
}
END_TEST

START_TEST(test_clean_env_and_fds)
{
    sbx_sandbox *s = make_sandbox("t_env", NULL);
    run_result *r = result_new();
    char *argv[] = {"env", NULL}, *envp[] = {"A=1", "LANG=C", NULL};
    char *ls[] = {"ls", "-1", "/proc/self/fd", NULL};

    run(s, argv, envp, r);
    ck_assert_str_eq(r->out, "A=1\nLANG=C\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
                             "HOME=/workspace\n");
    /* 0-2 and the directory ls is reading, nothing else. */
    run(s, ls, NULL, r);
    ck_assert_str_eq(r->out, "0\n1\n2\n3\n");
    sbx_destroy(s);
    free(r);
}
END_TEST

START_TEST(test_unprivileged)
{
    sbx_sandbox *s = make_sandbox("t_priv", NULL);
    run_result *r = result_new();

    run_sh(s,
           "id -u; id -g; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):'"
           " /proc/self/status",
           r);
    ck_assert_str_eq(r->out, "1000\n1000\nCapPrm:\t0000000000000000\n"
                             "CapEff:\t0000000000000000\n"
                             "CapBnd:\t0000000000000000\nNoNewPrivs:\t1\n"
                             "Seccomp:\t2\n");
    sbx_destroy(s);
    free(r);
}
END_TEST

START_TEST(test_host_files_hidden)
{
    sbx_sandbox *s = make_sandbox("t_canary", NULL);
    run_result *r = result_new();
    const char *paths[] = {"/root/sbx-canary", "/tmp/sbx-canary"};
    char script[256];
    size_t i;

    for (i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "w");

        ck_assert_ptr_nonnull(f);
        fputs("CANARY-SECRET\n", f);
        fclose(f);
        chmod(paths[i], 0644); /* readable by anyone who can see it */
        snprintf(script, sizeof(script), "cat %s", paths[i]);
        run_sh(s, script, r);
        ck_assert_ptr_null(strstr(r->out, "CANARY"));
        ck_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) != 0);
        unlink(paths[i]);
    }
    run_sh(s,
           "ls /home /root /var /run "
           "/tmp/check_sbx* 2>/dev/null; "
           "cat /etc/shadow",
           r);
    ck_assert_str_eq(r->out, "");
    sbx_destroy(s);
    free(r);
}
END_TEST

START_TEST(test_host_processes_hidden)
{
    sbx_sandbox *s = make_sandbox("t_ps", NULL);
    run_result *r = result_new();

    run_sh(s, "ps -e -o pid=,comm=", r);
    /* sp-init, the shell and ps: nothing of the host. */
    ck_assert_msg(strstr(r->out, "    1 init\n") != NULL, "%s", r->out);
    ck_assert_ptr_null(strstr(r->out, "check_sbx"));
    ck_assert_ptr_null(strstr(r->out, "bwrap"));
    ck_assert_ptr_null(strstr(r->out, "systemd"));
    ck_assert_msg(strlen(r->out) < 80, "too many processes: %s", r->out);
    sbx_destroy(s);
    free(r);
}
END_TEST

/* A listening socket on host loopback; returns its fd, port in *port. */
static int host_listener(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

START_TEST(test_no_network)
{
    sbx_sandbox *s = make_sandbox("t_nonet", NULL);
    run_result *r = result_new();
    char script[512];
    int port, lfd = host_listener(&port);

    snprintf(script, sizeof(script),
             "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; "
             "timeout 3 bash -c 'echo > /dev/tcp/127.0.0.1/%d' 2>/dev/null "
             "&& echo CONNECTED; "
             "timeout 3 bash -c 'echo > /dev/tcp/10.0.2.2/%d' 2>/dev/null "
             "&& echo CONNECTED; true",
             port, port);
    run_sh(s, script, r);
    ck_assert_str_eq(r->out, "lo\n");
    ck_assert_int_eq(accept(lfd, NULL, NULL), -1);
    close(lfd);
    sbx_destroy(s);
    free(r);
}
END_TEST

START_TEST(test_network_slirp)
{
    char err[512] = "", script[512];
    sbx_sandbox *s = NULL;
    struct stat st;
    run_result *r;
    int port, lfd, rc;

    rc = sbx_create("t_net", &default_limits, &sbx_net_internet, HOST_UID, HOST_GID, NULL, &s,
                    err, sizeof(err));
    if (stat("/dev/net/tun", &st) == 0 && (st.st_mode & 0006) != 0006) {
        /* This host does not allow it: the refusal must say why. */
        ck_assert_int_eq(rc, -1);
        ck_assert_msg(strstr(err, "/dev/net/tun"), "unclear error: %s", err);
        return;
    }
    ck_assert_msg(rc == 0, "sbx_create(network): %s", err);
    r = result_new();
    lfd = host_listener(&port);
    snprintf(script, sizeof(script),
             "grep -c tap0 /proc/net/dev; cat /etc/resolv.conf; "
             "timeout 3 bash -c 'echo > /dev/tcp/10.0.2.2/%d' 2>/dev/null "
             "&& echo CONNECTED; true",
             port);
    run_sh(s, script, r);
    ck_assert_str_eq(r->out, "1\nnameserver 10.0.2.3\n");
    ck_assert_int_eq(accept(lfd, NULL, NULL), -1);
    close(lfd);
    sbx_destroy(s);
    free(r);
}
END_TEST

/* 1 if this kernel serves i386 system calls at all: the probe, run on
 * the host outside any sandbox, gets through to getpid. */
static int host_has_i386(void)
{
    int status = 0;
    pid_t pid = fork();

    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0)
            dup2(null, 1);
        /* Under ASan, its own SIGSEGV handler would turn the fault into
         * an exit. */
        char *envp[] = {"ASAN_OPTIONS=handle_segv=0", NULL};
        execle("/proc/self/exe", "check_sbx", "--probe-i386", (char *)NULL,
               envp);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 1; /* unknown: demand the filter's SIGSYS */
    return !(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
}

/* Copy this test binary into the workspace and run it there as a probe. */
static void run_probe(sbx_sandbox *s, const char *mode, run_result *r)
{
    char path[4096];
    char *argv[] = {"/workspace/probe", (char *)mode, NULL};
    /* LeakSanitizer needs ptrace, which the filter refuses; ASan's SIGSEGV
     * handler would turn a fault into an exit. */
    char *envp[] = {"ASAN_OPTIONS=detect_leaks=0:handle_segv=0", NULL};
    struct stat st;
    int in, out;

    snprintf(path, sizeof(path), "%s/probe", sbx_workspace_path(s));
    in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    ck_assert(in >= 0 && out >= 0 && fstat(in, &st) == 0);
    ck_assert_int_eq(sendfile(out, in, NULL, (size_t)st.st_size), st.st_size);
    close(in);
    close(out);
    run(s, argv, envp, r);
}

START_TEST(test_seccomp)
{
    sbx_sandbox *s = make_sandbox("t_seccomp", NULL);
    run_result *r = result_new();

    run_sh(s,
           "unshare -U true 2>&1; echo rc=$?; unshare -m true 2>/dev/null;"
           " echo rc=$?; mount -t tmpfs none /tmp 2>/dev/null; echo rc=$?",
           r);
    ck_assert_msg(strstr(r->out, "rc=0") == NULL, "%s", r->out);
    run_probe(s, "--probe", r);
    ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
                  "probe: %s%s", r->out, r->err);
    /* A syscall through the i386 entry point kills the process: by the
     * filter (SIGSYS), or, on a kernel built without that entry point
     * (as the same probe run outside any sandbox shows), by the fault
     * the kernel raises for it. */
    run_probe(s, "--probe-i386", r);
    ck_assert_msg(WIFSIGNALED(r->status) &&
                      (WTERMSIG(r->status) == SIGSYS ||
                       (WTERMSIG(r->status) == SIGSEGV && !host_has_i386())),
                  "i386 syscall not killed: status %#x %s", r->status, r->out);
    sbx_destroy(s);
    free(r);
}
END_TEST

/* Read from fd until want appears in buf (bounded). */
static int read_until(int fd, char *buf, size_t len, const char *want)
{
    double deadline = now_s() + 10;
    size_t got = 0;

    buf[0] = '\0';
    while (!strstr(buf, want) && now_s() < deadline && got + 1 < len) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;

        poll(&pfd, 1, 100);
        n = read(fd, buf + got, len - 1 - got);
        if (n > 0)
            got += (size_t)n, buf[got] = '\0';
        else if (n == 0)
            break;
    }
    return strstr(buf, want) ? 0 : -1;
}

START_TEST(test_fork_bomb)
{
    sbx_limits lim = default_limits;
    sbx_sandbox *s;
    run_result *r = result_new();
    char *bomb[] = {"/bin/sh", "-c", "f() { f | f & }; f", NULL};
    char *count[] = {"python3", "-c",
                     "import os, time\n"
                     "n = 0\n"
                     "try:\n"
                     "    while True:\n"
                     "        if os.fork() == 0:\n"
                     "            time.sleep(30); os._exit(0)\n"
                     "        n += 1\n"
                     "except OSError as e:\n"
                     "    print('forked', n, 'errno', e.errno, flush=True)\n",
                     NULL};
    sbx_spawn_req req = {.argv = bomb};
    char err[512], buf[256];
    sbx_proc p;
    uint64_t mem, cpu;
    uint32_t tasks, peak = 0;
    int i, n = 0;

    lim.pids = 48;
    s = make_sandbox("t_forkbomb", &lim);
    /* The classic bomb: bounded, and killed with everything it made. */
    ck_assert_msg(sbx_spawn(s, &req, &p, err, sizeof(err)) == 0, "%s", err);
    for (i = 0; i < 10; i++) {
        usleep(50000);
        ck_assert_int_eq(sbx_usage(s, &mem, &cpu, &tasks), 0);
        peak = tasks > peak ? tasks : peak;
    }
    ck_assert_uint_le(peak, 48);
    ck_assert_int_eq(sbx_kill_exec(s, p.req_id), 0);
    ck_assert_int_eq(sbx_usage(s, &mem, &cpu, &tasks), 0);
    ck_assert_uint_le(tasks, 2); /* bwrap and sp-init */
    close(p.stdin_fd), close(p.stdout_fd), close(p.stderr_fd);
    /* Forking until it fails stops at the limit, with EAGAIN. */
    req.argv = count;
    ck_assert_msg(sbx_spawn(s, &req, &p, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(read_until(p.stdout_fd, buf, sizeof(buf), "\n") == 0,
                  "no output: %s", buf);
    ck_assert_msg(sscanf(buf, "forked %d errno 11", &n) == 1, "%s", buf);
    ck_assert_int_ge(n, 40);
    ck_assert_int_le(n, 48);
    ck_assert_int_eq(sbx_usage(s, &mem, &cpu, &tasks), 0);
    ck_assert_uint_le(tasks, 48);
    ck_assert_int_eq(sbx_kill_exec(s, p.req_id), 0);
    close(p.stdin_fd), close(p.stdout_fd), close(p.stderr_fd);
    /* The host can still fork, the sandbox still runs programs. */
    run_sh(s, "echo alive", r);
    ck_assert_str_eq(r->out, "alive\n");
    sbx_destroy(s);
    free(r);
}
END_TEST

START_TEST(test_memory_bomb)
{
    sbx_limits lim = default_limits;
    run_result *r = result_new();
    uint64_t before = 0, after = 0;
    sbx_sandbox *s;

    lim.memory_mb = 64;
    s = make_sandbox("t_oom", &lim);
    ck_assert_int_eq(sbx_oom_count(s, &before), 0);
    run_sh(s,
           "python3 -c 'a = [bytearray(1 << 20) for _ in range(512)]'; "
           "echo survived",
           r);
    ck_assert_int_eq(sbx_oom_count(s, &after), 0);
    ck_assert_uint_gt(after, before);
    /* The shell lives on (only the hog was killed) and says so. */
    ck_assert_str_eq(r->out, "survived\n");
    sbx_destroy(s);
    free(r);
}
END_TEST

START_TEST(test_disk_cap)
{
    sbx_limits lim = default_limits;
    run_result *r = result_new();
    char path[4096];
    struct stat st;
    sbx_sandbox *s;

    lim.disk_mb = 8;
    s = make_sandbox("t_disk", &lim);
    run_sh(s,
           "dd if=/dev/zero of=/workspace/fill bs=1M count=32 2>&1; "
           "echo rc=$?",
           r);
    ck_assert_msg(strstr(r->out, "No space left on device"), "%s", r->out);
    ck_assert_ptr_nonnull(strstr(r->out, "rc=1"));
    snprintf(path, sizeof(path), "%s/fill", sbx_workspace_path(s));
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_le(st.st_size, 8 * 1024 * 1024);
    ck_assert_int_ge(st.st_size, 7 * 1024 * 1024);
    sbx_destroy(s);
    free(r);
}
END_TEST

START_TEST(test_orphan_killed)
{
    sbx_sandbox *s = make_sandbox("t_orphan", NULL);
    run_result *r = result_new();
    char *argv[] = {"/bin/sh", "-c", "sleep 100 >/dev/null 2>&1 & echo started",
                    NULL};
    sbx_spawn_req req = {.argv = argv};
    char err[512];
    sbx_proc p;
    uint64_t mem, cpu;
    uint32_t tasks;

    ck_assert_msg(sbx_spawn(s, &req, &p, err, sizeof(err)) == 0, "%s", err);
    close(p.stdin_fd);
    ck_assert_int_eq(wait_proc(s, &p, r, 10), 0);
    ck_assert_str_eq(r->out, "started\n");
    ck_assert_int_eq(sbx_usage(s, &mem, &cpu, &tasks), 0);
    ck_assert_uint_eq(tasks, 3); /* bwrap, sp-init, the orphaned sleep */
    ck_assert_int_eq(sbx_kill_exec(s, p.req_id), 0);
    /* The killed orphan counts (pids.current) until sp-init has reaped
     * it: wait for that, boundedly. */
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(sbx_usage(s, &mem, &cpu, &tasks), 0);
        if (tasks == 2)
            break;
        usleep(10 * 1000);
    }
    ck_assert_uint_eq(tasks, 2);
    ck_assert_uint_gt(cpu, 0);
    ck_assert_uint_gt(mem, 0);
    sbx_destroy(s);
    free(r);
}
END_TEST

START_TEST(test_sandboxes_isolated)
{
    sbx_sandbox *a = make_sandbox("t_iso_a", NULL);
    sbx_sandbox *b = make_sandbox("t_iso_b", NULL);
    run_result *r = result_new();
    char script[4096];

    run_sh(a, "echo secret-a > /workspace/f; sleep 30 >/dev/null 2>&1 &", r);
    snprintf(script, sizeof(script),
             "ls -A /workspace; cat %s/f 2>/dev/null; ps -e -o comm= | "
             "grep -c sleep",
             sbx_workspace_path(a));
    run_sh(b, script, r);
    ck_assert_str_eq(r->out, "0\n");
    sbx_destroy(a);
    sbx_destroy(b);
    free(r);
}
END_TEST

static int cgroup_dir_exists(const char *id)
{
    static const char *const mounts[] = {
        "/sys/fs/cgroup",         "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup/memory",  "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/cpu",     "/sys/fs/cgroup/cpuacct",
        "/sys/fs/cgroup/freezer",
    };
    char path[512];
    size_t i;

    for (i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s/%s", mounts[i], cgroup_name, id);
        if (access(path, F_OK) == 0)
            return 1;
    }
    return 0;
}

static int mounted(const char *dir)
{
    char line[4096];
    FILE *f = fopen("/proc/self/mountinfo", "re");
    int found = 0;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f))
        if (strstr(line, dir))
            found = 1;
    fclose(f);
    return found;
}

/* Alive and not a zombie. */
static int pid_alive(pid_t pid)
{
    char path[64], buf[512], *p;
    int fd;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

START_TEST(test_destroy_leaves_nothing)
{
    sbx_sandbox *s = make_sandbox("t_destroy", NULL);
    char *argv[] = {"sleep", "100", NULL};
    sbx_spawn_req req = {.argv = argv};
    char err[512], dir[4096];
    sbx_proc p;

    ck_assert_msg(sbx_spawn(s, &req, &p, err, sizeof(err)) == 0, "%s", err);
    snprintf(dir, sizeof(dir), "%s/sandboxes/t_destroy", state_dir);
    ck_assert(cgroup_dir_exists("t_destroy"));
    ck_assert(mounted(dir));
    ck_assert(pid_alive(p.host_pid));
    sbx_destroy(s);
    ck_assert(!pid_alive(p.host_pid));
    ck_assert(!cgroup_dir_exists("t_destroy"));
    ck_assert(!mounted(dir));
    ck_assert_int_eq(access(dir, F_OK), -1);
    close(p.stdin_fd), close(p.stdout_fd), close(p.stderr_fd);
}
END_TEST

START_TEST(test_pause)
{
    sbx_sandbox *s = make_sandbox("t_pause", NULL);
    char *argv[] = {"/bin/sh", "-c", "while :; do :; done", NULL};
    sbx_spawn_req req = {.argv = argv};
    char err[512];
    sbx_proc p;
    uint64_t mem, c1 = 0, c2 = 0;
    uint32_t tasks;
    int i;

    ck_assert_msg(sbx_spawn(s, &req, &p, err, sizeof(err)) == 0, "%s", err);
    for (i = 0; i < 200 && c1 < 20 * 1000000ULL; i++) {
        usleep(10 * 1000);
        ck_assert_int_eq(sbx_usage(s, &mem, &c1, &tasks), 0);
    }
    ck_assert_msg(sbx_pause(s, err, sizeof(err)) == 0, "%s", err);
    /* Idempotent, and frozen: no CPU is used while paused. */
    ck_assert_msg(sbx_pause(s, err, sizeof(err)) == 0, "%s", err);
    /* The cgroup's CPU time is summed lazily (rstat): on a loaded machine
     * a read right after the freeze can miss the last few ms of the tasks'
     * run before it. Settled, it must not grow. */
    usleep(100 * 1000);
    ck_assert_int_eq(sbx_usage(s, &mem, &c1, &tasks), 0);
    usleep(300 * 1000);
    ck_assert_int_eq(sbx_usage(s, &mem, &c2, &tasks), 0);
    ck_assert_uint_eq(c2, c1);
    ck_assert(pid_alive(p.host_pid));
    /* Thawed, it goes on. */
    ck_assert_msg(sbx_resume(s, err, sizeof(err)) == 0, "%s", err);
    for (i = 0; i < 200 && c2 == c1; i++) {
        usleep(10 * 1000);
        ck_assert_int_eq(sbx_usage(s, &mem, &c2, &tasks), 0);
    }
    ck_assert_uint_gt(c2, c1);
    /* A paused sandbox is destroyed without waiting for a thaw. */
    ck_assert_msg(sbx_pause(s, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(sbx_kill_exec(s, p.req_id), 0);
    sbx_destroy(s);
    ck_assert(!pid_alive(p.host_pid));
    ck_assert(!cgroup_dir_exists("t_pause"));
    close(p.stdin_fd), close(p.stdout_fd), close(p.stderr_fd);
}
END_TEST

START_TEST(test_parent_killed)
{
    char *argv[] = {"sleep", "1000", NULL};
    sbx_spawn_req req = {.argv = argv};
    int pfd[2], status, i;
    pid_t child, sleeper = 0;
    char dir[4096];

    /* Adopt the orphaned bwrap so it is reaped, not left a zombie. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    ck_assert_int_eq(pipe(pfd), 0);
    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        char err[512];
        sbx_sandbox *s;
        sbx_proc p;

        if (sbx_create("t_parent", &default_limits, 0, HOST_UID, HOST_GID, NULL,
                       &s, err, sizeof(err)) < 0 ||
            sbx_spawn(s, &req, &p, err, sizeof(err)) < 0)
            _exit(1);
        if (write(pfd[1], &p.host_pid, sizeof(p.host_pid)) < 0)
            _exit(1);
        pause();
        _exit(0);
    }
    close(pfd[1]);
    ck_assert_int_eq(read(pfd[0], &sleeper, sizeof(sleeper)),
                     (ssize_t)sizeof(sleeper));
    close(pfd[0]);
    ck_assert(pid_alive(sleeper));
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    for (i = 0; i < 300 && pid_alive(sleeper); i++)
        usleep(10000);
    ck_assert_msg(!pid_alive(sleeper), "sandbox survived its parent");
    for (i = 0; i < 100 && waitpid(-1, &status, WNOHANG) >= 0; i++)
        usleep(10000);
    /* What the dead parent left is what sbx_reap_leftovers is for. */
    ck_assert_int_ge(sbx_reap_leftovers(), 1);
    snprintf(dir, sizeof(dir), "%s/sandboxes/t_parent", state_dir);
    ck_assert_int_eq(access(dir, F_OK), -1);
    ck_assert(!mounted(dir));
    ck_assert(!cgroup_dir_exists("t_parent"));
}
END_TEST

START_TEST(test_pty)
{
    sbx_sandbox *s = make_sandbox("t_pty", NULL);
    char *argv[] = {"/bin/sh", "-c",
                    "test -t 0 && echo tty; stty size; "
                    "read x; echo got $x",
                    NULL};
    sbx_spawn_req req = {.argv = argv, .pty = 1, .cols = 100, .rows = 30};
    run_result *r = result_new();
    struct winsize ws;
    char err[512];
    sbx_proc p;

    ck_assert_msg(sbx_spawn(s, &req, &p, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(p.stderr_fd, -1);
    ck_assert_int_eq(p.stdin_fd, p.stdout_fd);
    ck_assert_int_eq(write(p.stdin_fd, "hi\n", 3), 3);
    p.stdout_fd = dup(p.stdin_fd);
    fcntl(p.stdout_fd, F_SETFL, O_NONBLOCK);
    /* EIO on the master once the last slave user is gone ends the read. */
    wait_proc(s, &p, r, 10);
    ck_assert_msg(strstr(r->out, "tty\r\n"), "%s", r->out);
    ck_assert_msg(strstr(r->out, "30 100\r\n"), "%s", r->out);
    ck_assert_msg(strstr(r->out, "got hi"), "%s", r->out);
    ck_assert_int_eq(sbx_pty_resize(p.stdin_fd, 120, 40), 0);
    ck_assert_int_eq(ioctl(p.stdin_fd, TIOCGWINSZ, &ws), 0);
    ck_assert_int_eq(ws.ws_col, 120);
    ck_assert_int_eq(ws.ws_row, 40);
    close(p.stdin_fd);
    sbx_destroy(s);
    free(r);
}
END_TEST

START_TEST(test_bad_input)
{
    sbx_limits lim = default_limits;
    char err[512];
    sbx_sandbox *s = NULL, *t = NULL;

    ck_assert_int_eq(sbx_create("../etc", &default_limits, 0, HOST_UID,
                                HOST_GID, NULL, &s, err, sizeof(err)),
                     -1);
    ck_assert_int_eq(
        sbx_create("ok", &default_limits, 0, 0, 0, NULL, &s, err, sizeof(err)),
        -1);
    lim.disk_mb = 0;
    ck_assert_int_eq(sbx_create("ok", &lim, 0, HOST_UID, HOST_GID, NULL, &s,
                                err, sizeof(err)),
                     -1);
    s = make_sandbox("t_dup", NULL);
    ck_assert_int_eq(sbx_create("t_dup", &default_limits, 0, HOST_UID, HOST_GID,
                                NULL, &t, err, sizeof(err)),
                     -1);
    ck_assert_ptr_null(t);
    sbx_destroy(s);
    sbx_destroy(NULL);
}
END_TEST

/* Inside the sandbox: system calls the filter must refuse. */
static int probe(void)
{
    int failures = 0;

#define EXPECT(call, want)                                                     \
    do {                                                                       \
        errno = 0;                                                             \
        long rc_ = (long)(call);                                               \
        if (rc_ != -1 || errno != (want)) {                                    \
            printf("FAIL %s: rc %ld errno %d\n", #call, rc_, errno);           \
            failures++;                                                        \
        }                                                                      \
    } while (0)
    EXPECT(mount("none", "/tmp", "tmpfs", 0, NULL), EPERM);
    EXPECT(unshare(CLONE_NEWUSER), EPERM);
    EXPECT(unshare(CLONE_NEWNS), EPERM);
    EXPECT(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0), EPERM);
    EXPECT(syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0), EPERM);
    EXPECT(syscall(SYS_clone3, NULL, 0), ENOSYS);
    EXPECT(ioctl(0, TIOCSTI, "x"), EPERM);
    EXPECT(syscall(SYS_ioctl, 0, TIOCSTI | (1UL << 32), "x"), EPERM);
    EXPECT(personality(ADDR_NO_RANDOMIZE), EPERM);
    EXPECT(personality(0x0008 /* PER_LINUX32 */), EPERM);
    EXPECT(syscall(SYS_keyctl, 0, 0, 0, 0, 0), EPERM);
    EXPECT(syscall(SYS_bpf, 0, NULL, 0), EPERM);
    EXPECT(syscall(SYS_io_uring_setup, 1, NULL), EPERM);
    EXPECT(ptrace(PTRACE_TRACEME, 0, NULL, NULL), EPERM);
    EXPECT(syscall(SYS_setns, 0, 0), EPERM);
    EXPECT(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM);
    EXPECT(syscall(SYS_userfaultfd, 0), EPERM);
    EXPECT(syscall(SYS_open_by_handle_at, 0, NULL, 0), EPERM);
#undef EXPECT
    if (personality(0xffffffff) == -1) {
        printf("FAIL personality query\n");
        failures++;
    }
    if (fork() == 0) /* plain fork still works */
        _exit(0);
    return failures;
}

static int probe_i386(void)
{
    long ret;

    /* getpid through int 0x80 (i386 ABI number 20). */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    printf("i386 getpid returned %ld\n", ret);
    return 0;
}

static void remove_cgroup_roots(void)
{
    static const char *const mounts[] = {
        "/sys/fs/cgroup",         "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup/memory",  "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/cpu",     "/sys/fs/cgroup/cpuacct",
        "/sys/fs/cgroup/freezer",
    };
    char path[512];
    size_t i;

    for (i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", mounts[i], cgroup_name);
        rmdir(path);
    }
}

static Suite *sbx_suite(void)
{
    Suite *s = suite_create("sbx");
    TCase *tc = tcase_create("sandbox");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_echo_exit_code);
    tcase_add_test(tc, test_exit_by_signal);
    tcase_add_test(tc, test_exec_errors);
    tcase_add_test(tc, test_clean_env_and_fds);
    tcase_add_test(tc, test_unprivileged);
    tcase_add_test(tc, test_host_files_hidden);
    tcase_add_test(tc, test_host_processes_hidden);
    tcase_add_test(tc, test_no_network);
    tcase_add_test(tc, test_network_slirp);
    tcase_add_test(tc, test_seccomp);
    tcase_add_test(tc, test_fork_bomb);
    tcase_add_test(tc, test_memory_bomb);
    tcase_add_test(tc, test_disk_cap);
    tcase_add_test(tc, test_orphan_killed);
    tcase_add_test(tc, test_sandboxes_isolated);
    tcase_add_test(tc, test_destroy_leaves_nothing);
    tcase_add_test(tc, test_pause);
    tcase_add_test(tc, test_parent_killed);
    tcase_add_test(tc, test_pty);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    sbx_config cfg = {state_dir, NULL, cgroup_name};
    char err[512] = "";
    SRunner *sr;
    int failed;

    if (argc == 2 && strcmp(argv[1], "--probe") == 0)
        return probe();
    if (argc == 2 && strcmp(argv[1], "--probe-i386") == 0)
        return probe_i386();
    cfg.init_path = getenv("SP_INIT_PATH");
    if (!cfg.init_path || getuid() != 0) {
        fprintf(stderr, "check_sbx: needs root and SP_INIT_PATH\n");
        return 77; /* automake: skipped */
    }
    snprintf(cgroup_name, sizeof(cgroup_name), "sandpipe-test-%d",
             (int)getpid());
    if (!mkdtemp(state_dir) || chmod(state_dir, 0711) < 0) {
        perror("mkdtemp");
        return 1;
    }
    if (sbx_global_init(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "sbx_global_init: %s\n", err);
        return 1;
    }
    sr = srunner_create(sbx_suite());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    sbx_reap_leftovers();
    remove_cgroup_roots();
    rmdir(state_dir); /* sandboxes/ too */
    {
        char sub[64];

        snprintf(sub, sizeof(sub), "%s/sandboxes", state_dir);
        rmdir(sub);
        rmdir(state_dir);
    }
    sbx_global_cleanup();
    return failed ? 1 : 0;
}
