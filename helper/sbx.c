/*
 * sbx.c — sandbox life cycle: global set-up, create, destroy, leftovers.
 *
 * Theory of operation
 * -------------------
 * Processes of one sandbox, all in its cgroups (sbx_cgroup.c):
 *
 *   daemon (root)
 *     └─ bwrap (host uid, no_new_privs, dies with the daemon thread)
 *          └─ sp-init, PID 1 of the sandbox's namespaces (uid 1000 inside)
 *               └─ each spawned program, in its own exe_<req_id> cgroup
 *     └─ slirp4netns (host uid; only with network)
 *
 * Fds: the daemon holds the host end of a SOCK_SEQPACKET pair whose other
 * end is sp-init's only channel (protocol: sbx_proto.h, host side:
 * sbx_exec.c), the read end of bwrap's stderr (for error messages, kept
 * open so bwrap never gets SIGPIPE) and, with network, the exit pipe of
 * slirp4netns. bwrap receives the seccomp program and the generated /etc
 * files as memfds. It resolves the workspace and sp-init by path as the
 * unprivileged host user, so the state directory must be searchable
 * (0711) by that user; sandboxes/ and each sandbox directory are made
 * 0711, never listable.
 *
 * Who kills whom: the daemon kills a sandbox through its cgroups
 * (cgroup.kill, or freezer + SIGKILL). If the daemon dies, bwrap dies
 * (PDEATHSIG), which kills sp-init (--die-with-parent), and the kernel
 * kills the rest of the PID namespace with it. If sp-init's socket closes,
 * sp-init returns and the namespace goes the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbx_priv.h"
#include "sbx_proto.h"
#include "sbx_seccomp.h"

sbx_globals sbx_g;

extern char **environ;

int sbx_run_capture(char *const argv[], char *buf, size_t len)
{
    posix_spawn_file_actions_t fa;
    int p[2], status, result = -1;
    size_t got = 0;
    ssize_t n;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        goto out;
    close(p[1]);
    p[1] = -1;
    while (got + 1 < len && (n = read(p[0], buf + got, len - 1 - got)) != 0) {
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0)
            got += (size_t)n;
    }
    buf[got] = '\0';
    close(p[0]);
    p[0] = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out:
    posix_spawn_file_actions_destroy(&fa);
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    return result;
}

void sbx_global_cleanup(void)
{
    free(sbx_g.state_dir);
    free(sbx_g.init_path);
    free(sbx_g.seccomp);
    memset(&sbx_g, 0, sizeof(sbx_g));
    sbx_cg_global_cleanup();
}

int sbx_global_init(const sbx_config *cfg, char *err, size_t errlen)
{
    static char help[16384];
    char *help_argv[] = {SBX_BWRAP_PATH, "--help", NULL};
    char path[4096];
    int result = -1;

    sbx_global_cleanup();
    if (!cfg || !cfg->state_dir || !cfg->init_path || !cfg->cgroup_name ||
        !sbx_fs_valid_id(cfg->cgroup_name)) {
        snprintf(err, errlen, "sbx_global_init: missing or bad configuration");
        goto out;
    }
    sbx_g.state_dir = strdup(cfg->state_dir);
    sbx_g.init_path = strdup(cfg->init_path);
    if (!sbx_g.state_dir || !sbx_g.init_path) {
        snprintf(err, errlen, "strdup() failed");
        goto out;
    }
    if (access(sbx_g.init_path, X_OK) < 0) {
        snprintf(err, errlen, "access(\"%s\") failed: %s", sbx_g.init_path,
                 strerror(errno));
        goto out;
    }
    if (sbx_run_capture(help_argv, help, sizeof(help)) < 0 ||
        !strstr(help, "--as-pid-1") || !strstr(help, "--bind-fd") ||
        !strstr(help, "--ro-bind-data") || !strstr(help, "--size")) {
        snprintf(err, errlen,
                 "%s is missing or too old (needs --as-pid-1, "
                 "--bind-fd, --ro-bind-data, --size)",
                 SBX_BWRAP_PATH);
        goto out;
    }
    sbx_g.disable_userns = strstr(help, "--disable-userns") != NULL;
    sbx_g.have_slirp = access(SBX_SLIRP_PATH, X_OK) == 0;
    snprintf(path, sizeof(path), "%s/sandboxes", sbx_g.state_dir);
    if ((mkdir(path, 0711) < 0 && errno != EEXIST) || chmod(path, 0711) < 0) {
        snprintf(err, errlen, "mkdir(\"%s\") failed: %s", path,
                 strerror(errno));
        goto out;
    }
    if (sbx_cg_global_init(cfg->cgroup_name, err, errlen) < 0)
        goto out;
    if (sbx_seccomp_build(&sbx_g.seccomp, &sbx_g.seccomp_len, err, errlen) < 0)
        goto out;
    sbx_g.ready = 1;
    result = 0;
out:
    if (result < 0)
        sbx_global_cleanup();
    return result;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* bwrap's complaint, if it left one, for an error message. */
static void bwrap_message(sbx_sandbox *s, char *err, size_t errlen,
                          const char *what)
{
    char buf[512];
    ssize_t n = read(s->bwrap_err, buf, sizeof(buf) - 1);

    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    snprintf(err, errlen, "sandbox did not start: %s%s%s", what,
             buf[0] ? ": " : "", buf);
}

/* Find sp-init's host pid: NSpid "<host> ... 1" in the sandbox cgroup. */
static int find_init(sbx_sandbox *s)
{
    pid_t pids[64];
    size_t n, i;
    char path[64], line[256];
    struct stat st;
    FILE *f;

    if (sbx_cg_sandbox_pids(s->cg, pids, 64, &n) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        int nfields = 0;
        long last = 0, v;
        char *p, *end;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pids[i]);
        f = fopen(path, "re");
        if (!f)
            continue;
        while (fgets(line, sizeof(line), f))
            if (strncmp(line, "NSpid:", 6) == 0)
                for (p = line + 6; (v = strtol(p, &end, 10)), end != p; p = end)
                    nfields++, last = v;
        fclose(f);
        snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pids[i]);
        if (nfields >= 2 && last == 1 && stat(path, &st) == 0) {
            s->init_pid = pids[i];
            s->pidns_dev = st.st_dev;
            s->pidns_ino = st.st_ino;
            return 0;
        }
    }
    return -1;
}

/* Wait (bounded) for sp-init's HELLO. */
static int wait_hello(sbx_sandbox *s, char *err, size_t errlen)
{
    long deadline = now_ms() + SBX_REPLY_TIMEOUT_MS;
    sbx_msg_hello h;
    struct pollfd pfd = {s->sock, POLLIN, 0};
    ssize_t n;
    int rc;

    do
        rc = poll(&pfd, 1, (int)(deadline - now_ms()));
    while (rc < 0 && errno == EINTR && now_ms() < deadline);
    if (rc <= 0) {
        bwrap_message(s, err, errlen, "no hello from sp-init");
        return -1;
    }
    n = recv(s->sock, &h, sizeof(h), MSG_DONTWAIT | MSG_TRUNC);
    if (n != (ssize_t)sizeof(h) || h.h.type != SBX_MSG_HELLO ||
        h.version != SBX_PROTO_VERSION || h.pid != 1) {
        bwrap_message(s, err, errlen, n == 0 ? "bwrap exited" : "bad hello");
        return -1;
    }
    if (find_init(s) < 0) {
        snprintf(err, errlen,
                 "sandbox did not start: sp-init not found "
                 "in the sandbox cgroup");
        return -1;
    }
    return 0;
}

static int check_limits(const sbx_limits *lim, char *err, size_t errlen)
{
    if (!lim || lim->disk_mb == 0 || lim->tmp_mb == 0 ||
        lim->disk_mb > (1u << 20) || lim->tmp_mb > (1u << 20) ||
        lim->memory_mb > (1u << 24) || lim->pids > (1u << 22) ||
        !(lim->cpus >= 0 && lim->cpus <= 1024)) {
        snprintf(err, errlen, "sbx_create: limits out of range");
        return -1;
    }
    return 0;
}

const sp_netpol sbx_net_internet = {.network = 1, .internet = 1};

int sbx_create(const char *id, const sbx_limits *lim, const sp_netpol *net,
               uid_t host_uid, gid_t host_gid, const sbx_root *root,
               sbx_sandbox **out, char *err, size_t errlen)
{
    int join[SBX_CG_MAX_HIER], result = -1;
    sbx_sandbox *s = NULL;
    int network = net != NULL && net->network;
    size_t njoin;

    *out = NULL;
    if (!sbx_g.ready) {
        snprintf(err, errlen, "sbx_create: sbx_global_init was not called");
        goto out;
    }
    if (!id || !sbx_fs_valid_id(id) || host_uid == 0 || host_gid == 0) {
        snprintf(err, errlen, "sbx_create: bad id or root host uid/gid");
        goto out;
    }
    if (check_limits(lim, err, errlen) < 0)
        goto out;
    if (network && !sbx_g.have_slirp) {
        snprintf(err, errlen, "sbx_create: network needs %s", SBX_SLIRP_PATH);
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "calloc() failed");
        goto out;
    }
    s->sock = s->bwrap_err = s->slirp_exit = s->userns = -1;
    s->bwrap_pid = s->init_pid = s->slirp_pid = -1;
    snprintf(s->id, sizeof(s->id), "%s", id);
    if (asprintf(&s->dir, "%s/sandboxes/%s", sbx_g.state_dir, id) < 0 ||
        (root && asprintf(&s->root, "%s/root", s->dir) < 0) ||
        asprintf(&s->workspace, "%s/workspace", root ? s->root : s->dir) < 0) {
        snprintf(err, errlen, "asprintf() failed");
        goto out;
    }
    if (access(s->dir, F_OK) == 0) {
        snprintf(err, errlen, "sbx_create: sandbox %s exists", id);
        goto out;
    }
    s->dir_made = 1;
    s->uid = host_uid;
    s->gid = host_gid;
    if ((root ? sbx_root_prepare(s, root, lim->disk_mb, err, errlen)
              : sbx_fs_prepare(s->dir, s->workspace, lim->disk_mb, host_uid,
                               host_gid, err, errlen)) < 0)
        goto out;
    if (sbx_cg_create(id, lim, &s->cg, err, errlen) < 0)
        goto out;
    if (sbx_bwrap_start(s, lim, network, host_uid, host_gid, err, errlen) < 0)
        goto out;
    if (wait_hello(s, err, errlen) < 0)
        goto out;
    if (network) {
        njoin = sbx_cg_join_fds(s->cg, join, SBX_CG_MAX_HIER);
        if (sbx_net_start(s->init_pid, net, host_uid, host_gid, join, njoin,
                          &s->slirp_pid, &s->slirp_exit, err, errlen) < 0)
            goto out;
    }
    *out = s;
    s = NULL;
    result = 0;
out:
    sbx_destroy(s);
    return result;
}

int sbx_control_fd(const sbx_sandbox *s)
{
    return s->sock;
}

const char *sbx_workspace_path(const sbx_sandbox *s)
{
    return s->workspace;
}

const char *sbx_id(const sbx_sandbox *s)
{
    return s->id;
}

const char *sbx_root_path(const sbx_sandbox *s)
{
    return s->root;
}

int sbx_userns(const sbx_sandbox *s)
{
    return s->userns;
}

int sbx_upper_open(const sbx_sandbox *s)
{
    char path[PATH_MAX];

    if (s->root == NULL) {
        errno = ENOENT;
        return -1;
    }
    /* The helper made every component; O_NOFOLLOW for the last. */
    snprintf(path, sizeof path, "%s/disk/upper", s->dir);
    return open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

uid_t sbx_host_uid(const sbx_sandbox *s, uint32_t inside)
{
    if (!s->root)
        return s->uid;
    if (inside < SBX_RANGE_IDS - 2)
        return s->uid + inside;
    if (inside == 65534 || inside == 65535)
        return s->uid + SBX_RANGE_IDS - 2 + (inside - 65534);
    return (uid_t)-1;
}

int sbx_disk_usage(const sbx_sandbox *s, uint64_t *used, uint64_t *total)
{
    char path[4096];
    struct statvfs v;

    snprintf(path, sizeof path, "%s/%s", s->dir,
             s->root ? "disk" : "workspace");
    if (statvfs(path, &v) < 0)
        return -1;
    *total = (uint64_t)v.f_blocks * v.f_frsize;
    *used = (uint64_t)(v.f_blocks - v.f_bfree) * v.f_frsize;
    return 0;
}

int sbx_pause(sbx_sandbox *s, char *err, size_t errlen)
{
    return sbx_cg_freeze(s->cg, 1, err, errlen);
}

int sbx_resume(sbx_sandbox *s, char *err, size_t errlen)
{
    return sbx_cg_freeze(s->cg, 0, err, errlen);
}

/* Reap a child of ours that has been killed (bounded wait). */
static void reap_child(pid_t pid)
{
    int status, i;

    if (pid <= 0)
        return;
    for (i = 0; i < 300; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid || (r < 0 && errno != EINTR))
            return;
        if (i == 100)
            kill(pid, SIGKILL); /* not in a cgroup (failed create) */
        usleep(i < 10 ? 1000 : 10000);
    }
}

void sbx_stop(sbx_sandbox *s)
{
    if (!s || s->stopped)
        return;
    /* The cgroup kill takes bwrap, sp-init, every program and slirp. */
    sbx_cg_destroy(s->cg);
    s->cg = NULL;
    close_fd(&s->slirp_exit);
    close_fd(&s->sock);
    reap_child(s->slirp_pid);
    reap_child(s->bwrap_pid);
    s->slirp_pid = s->bwrap_pid = -1;
    s->stopped = 1;
}

void sbx_destroy(sbx_sandbox *s)
{
    if (!s)
        return;
    sbx_stop(s);
    close_fd(&s->bwrap_err);
    close_fd(&s->userns);
    if (s->dir_made)
        sbx_fs_remove(s->dir);
    free(s->dir);
    free(s->root);
    free(s->workspace);
    free(s);
}

int sbx_reap_leftovers(void)
{
    int a, b;

    if (!sbx_g.ready)
        return -1;
    a = sbx_cg_reap_leftovers();
    b = sbx_fs_reap(sbx_g.state_dir);
    if (a < 0 || b < 0)
        return -1;
    return a > b ? a : b;
}
