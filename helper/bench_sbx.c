/*
 * bench_sbx.c — times sbx_create + sbx_spawn("true") + exit + sbx_destroy,
 * and the same program run directly in bwrap as the baseline.
 *
 * Build: gcc -std=gnu11 -O2 -D_GNU_SOURCE -Ihelper helper/bench_sbx.c \
 *            helper/sbx*.c -lseccomp -o bench_sbx
 * Run (root): bench_sbx SP_INIT_PATH [RUNS [ROOTFS]]   prints p50/p90/max
 * in ms of the whole life and of its phases (create, spawn to exit,
 * destroy); with ROOTFS (a template's tree), sandboxes of that template
 * (overlay on an ext4 disk of their own).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbx.h"

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int n)
{
    qsort(t, (size_t)n, sizeof(*t), cmp_double);
    printf("%-40s p50 %6.2f ms  p90 %6.2f ms  max %6.2f ms\n", what, t[n / 2],
           t[n * 9 / 10], t[n - 1]);
}

static const char *rootfs;   /* NULL: the host view */
static double phase[3][4096]; /* create, spawn..exit, destroy */

/* One sandbox life; returns its duration in ms or -1. */
static double one_run(int i)
{
    sbx_root root = {rootfs, 0, 0, -1};
    double t1, t2;
    sbx_limits lim = {256, 64, 64, 128, 1.0};
    char *argv[] = {"true", NULL}, id[32], err[512];
    sbx_spawn_req req = {.argv = argv};
    sbx_exit_event ev;
    sbx_sandbox *s;
    sbx_proc p;
    size_t n = 0;
    double t0 = now_ms();

    snprintf(id, sizeof(id), "bench_%d", i);
    if (sbx_create(id, &lim, 0, rootfs ? 0x30000000 : 1000,
                   rootfs ? 0x30000000 : 1000, rootfs ? &root : NULL, &s, err,
                   sizeof(err)) < 0 ||
        (t1 = now_ms(), sbx_spawn(s, &req, &p, err, sizeof(err))) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    while (n == 0) {
        struct pollfd pfd = {sbx_control_fd(s), POLLIN, 0};

        poll(&pfd, 1, 1000);
        if (sbx_handle_control(s, &ev, 1, &n) < 0)
            return -1;
    }
    close(p.stdin_fd), close(p.stdout_fd), close(p.stderr_fd);
    t2 = now_ms();
    sbx_destroy(s);
    if (i < 4096) {
        phase[0][i] = t1 - t0;
        phase[1][i] = t2 - t1;
        phase[2][i] = now_ms() - t2;
    }
    return now_ms() - t0;
}

/* Baseline: the same isolation flags, bwrap alone, running true. */
static double one_bwrap(void)
{
    char *argv[] = {"setpriv",        "--reuid=1000",
                    "--regid=1000",   "--clear-groups",
                    "--no-new-privs", "/usr/bin/bwrap",
                    "--unshare-user", "--unshare-pid",
                    "--unshare-ipc",  "--unshare-uts",
                    "--unshare-net",  "--die-with-parent",
                    "--as-pid-1",     "--ro-bind",
                    "/usr",           "/usr",
                    "--symlink",      "usr/bin",
                    "/bin",           "--symlink",
                    "usr/lib",        "/lib",
                    "--symlink",      "usr/lib64",
                    "/lib64",         "--proc",
                    "/proc",          "--dev",
                    "/dev",           "--",
                    "/usr/bin/true",  NULL};
    double t0 = now_ms();
    int status;
    pid_t pid = fork();

    if (pid == 0) {
        execv("/usr/bin/setpriv", argv);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    return now_ms() - t0;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/bench_sbx.XXXXXX", err[512];
    sbx_config cfg = {dir, NULL, "sandpipe-bench"};
    int runs = argc > 2 ? atoi(argv[2]) : 200, i, result = 1;
    double *t = NULL;

    if (argc < 2 || runs < 1 || !mkdtemp(dir) || chmod(dir, 0711) < 0)
        goto out;
    cfg.init_path = argv[1];
    rootfs = argc > 3 ? argv[3] : NULL;
    if (runs > 4096)
        runs = 4096;
    if (sbx_global_init(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    t = calloc((size_t)runs, sizeof(*t));
    if (!t)
        goto out;
    for (i = 0; i < runs; i++)
        if ((t[i] = one_run(i)) < 0)
            goto out;
    report("create+spawn(true)+exit+destroy", t, runs);
    report("  create", phase[0], runs);
    report("  spawn(true) to exit", phase[1], runs);
    report("  destroy", phase[2], runs);
    for (i = 0; i < runs; i++)
        t[i] = one_bwrap();
    report("baseline: setpriv+bwrap true", t, runs);
    result = 0;
out:
    free(t);
    sbx_reap_leftovers();
    sbx_global_cleanup();
    return result;
}
