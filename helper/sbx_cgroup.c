/*
 * sbx_cgroup.c — the cgroups of the sandboxes.
 *
 * Each sandbox gets <mount>/<name>/<id> in every hierarchy used, and each
 * execution a child exe_<req_id> in the tracking hierarchy only. Roles:
 *   - limits and usage (memory, pids, cpu, cpuacct): on a v2 host the one
 *     cgroup2 tree; on a v1 or hybrid host the v1 controller hierarchies.
 *     Every sandbox process stays in the sandbox cgroup there: v1 counts
 *     an OOM kill in the victim's own cgroup, not its parents, so
 *     per-execution memory cgroups would hide OOM kills from the sandbox.
 *   - tracking and killing: a cgroup2 tree that has cgroup.kill (v2 host,
 *     or the controller-less "unified" tree of a hybrid host), else the v1
 *     freezer. Killing freezes or uses cgroup.kill, so a fork bomb cannot
 *     outrun the kill loop.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbx_cgroup.h"

#define ROLE_MEM 0x1u
#define ROLE_PIDS 0x2u
#define ROLE_CPU 0x4u
#define ROLE_CPUACCT 0x8u
#define ROLE_TRACK 0x10u
#define CG_PATH_MAX 512
#define KILL_WAIT_MS 3000
#define CPU_PERIOD_US 100000

typedef struct hier {
    char *mount;
    int v2;
    unsigned roles;
} hier;

struct sbx_cg {
    char *dir[SBX_CG_MAX_HIER];
    int procs_fd[SBX_CG_MAX_HIER];
};

static struct {
    hier h[SBX_CG_MAX_HIER];
    size_t n;
    char *name;
    int track;   /* index of the tracking hierarchy */
    char desc[256];
} G = {.track = -1};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static int write_file(const char *path, const char *val, char *err,
                      size_t errlen)
{
    size_t len = strlen(val);
    int fd, result = -1;

    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "open(\"%s\") failed: %s", path, strerror(errno));
        return -1;
    }
    if (write(fd, val, len) != (ssize_t)len) {
        snprintf(err, errlen, "write(\"%s\", \"%s\") failed: %s", path, val,
                 strerror(errno));
        goto out;
    }
    result = 0;
out:
    close(fd);
    return result;
}

/* Read a small file into buf (NUL-terminated). */
static int read_small(const char *path, char *buf, size_t len)
{
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* The value after "key " in a flat-keyed file (cpu.stat, memory.events). */
static int read_key(const char *path, const char *key, uint64_t *val)
{
    char buf[4096], *p;
    size_t klen = strlen(key);

    if (read_small(path, buf, sizeof(buf)) < 0)
        return -1;
    for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ') {
            *val = strtoull(p + klen + 1, NULL, 10);
            return 0;
        }
    }
    return -1;
}

static int read_u64(const char *path, uint64_t *val)
{
    char buf[64], *end;

    if (read_small(path, buf, sizeof(buf)) < 0)
        return -1;
    errno = 0;
    *val = strtoull(buf, &end, 10);
    return errno || end == buf ? -1 : 0;
}

static int read_pids(const char *path, pid_t *pids, size_t max, size_t *n)
{
    FILE *f = fopen(path, "re");
    long v;

    *n = 0;
    if (!f)
        return -1;
    while (fscanf(f, "%ld", &v) == 1)
        if (*n < max && v > 0)
            pids[(*n)++] = (pid_t)v;
    fclose(f);
    return 0;
}

static int has_role(unsigned role)
{
    size_t i;

    for (i = 0; i < G.n; i++)
        if (G.h[i].roles & role)
            return (int)i;
    return -1;
}

static int add_hier(const char *mount, int v2, unsigned roles)
{
    size_t i;

    for (i = 0; i < G.n; i++) {
        if (strcmp(G.h[i].mount, mount) == 0) {
            G.h[i].roles |= roles;
            return 0;
        }
    }
    if (G.n == SBX_CG_MAX_HIER)
        return -1;
    G.h[G.n].mount = strdup(mount);
    if (!G.h[G.n].mount)
        return -1;
    G.h[G.n].v2 = v2;
    G.h[G.n].roles = roles;
    G.n++;
    return 0;
}

/* cgroup mounts from mountinfo: the first cgroup2, v1 mount per controller. */
static int scan_mounts(char *v2, size_t v2len, char v1[5][CG_PATH_MAX])
{
    static const char *const ctl[5] = {"memory", "pids", "cpu", "cpuacct",
                                       "freezer"};
    char line[4096], mnt[CG_PATH_MAX], fstype[64], opts[1024];
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char *sep, *tok, *save;
    int i;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        sep = strstr(line, " - ");
        if (!sep || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 ||
            sscanf(sep + 3, "%63s %*s %1023s", fstype, opts) != 2 ||
            strchr(mnt, '\\'))
            continue;
        if (strcmp(fstype, "cgroup2") == 0 && !v2[0]) {
            snprintf(v2, v2len, "%s", mnt);
        } else if (strcmp(fstype, "cgroup") == 0) {
            for (tok = strtok_r(opts, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save))
                for (i = 0; i < 5; i++)
                    if (strcmp(tok, ctl[i]) == 0 && !v1[i][0])
                        snprintf(v1[i], CG_PATH_MAX, "%s", mnt);
        }
    }
    fclose(f);
    return 0;
}

static int mkdir_ok(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir(\"%s\") failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Decide the roles of each hierarchy and create <mount>/<name>. */
static int choose_layout(const char *v2, char v1[5][CG_PATH_MAX], char *err,
                         size_t errlen)
{
    char path[CG_PATH_MAX], ctl[256] = "";
    size_t i;

    if (v2[0]) {
        snprintf(path, sizeof(path), "%s/cgroup.controllers", v2);
        read_small(path, ctl, sizeof(ctl));
    }
    if (v2[0] && strstr(ctl, "memory") && strstr(ctl, "pids")) {
        /* Pure v2: limits need the controllers enabled down to <name>. */
        if (add_hier(v2, 1, ROLE_MEM | ROLE_PIDS | ROLE_CPU | ROLE_TRACK) < 0)
            goto nomem;
        snprintf(path, sizeof(path), "%s/cgroup.subtree_control", v2);
        if (write_file(path, "+memory +pids", err, errlen) < 0)
            return -1;
        if (!strstr(ctl, "cpu") || write_file(path, "+cpu", err, errlen) < 0)
            G.h[0].roles &= ~ROLE_CPU;
    } else {
        if (!v1[0][0] || !v1[1][0]) {
            snprintf(err, errlen, "cgroups: no memory and pids controllers "
                                  "(v1 or v2) are mounted");
            return -1;
        }
        if (add_hier(v1[0], 0, ROLE_MEM) < 0 || add_hier(v1[1], 0, ROLE_PIDS) < 0 ||
            (v1[2][0] && add_hier(v1[2], 0, ROLE_CPU) < 0) ||
            (v1[3][0] && add_hier(v1[3], 0, ROLE_CPUACCT) < 0))
            goto nomem;
        /* Track with the controller-less cgroup2 if it can kill a tree. */
        if (v2[0]) {
            snprintf(path, sizeof(path), "%s/%s", v2, G.name);
            if (mkdir_ok(path, err, errlen) < 0)
                return -1;
            snprintf(path, sizeof(path), "%s/%s/cgroup.kill", v2, G.name);
            if (access(path, W_OK) == 0 && add_hier(v2, 1, ROLE_TRACK) < 0)
                goto nomem;
        }
        if (has_role(ROLE_TRACK) < 0 && v1[4][0] &&
            add_hier(v1[4], 0, ROLE_TRACK) < 0)
            goto nomem;
    }
    G.track = has_role(ROLE_TRACK);
    if (G.track < 0) {
        snprintf(err, errlen, "cgroups: neither cgroup.kill (cgroup2) nor "
                              "the v1 freezer is available");
        return -1;
    }
    for (i = 0; i < G.n; i++) {
        snprintf(path, sizeof(path), "%s/%s", G.h[i].mount, G.name);
        if (mkdir_ok(path, err, errlen) < 0)
            return -1;
        if (G.h[i].v2 && (G.h[i].roles & ROLE_MEM)) {
            snprintf(path, sizeof(path), "%s/%s/cgroup.subtree_control",
                     G.h[i].mount, G.name);
            if (write_file(path, (G.h[i].roles & ROLE_CPU)
                                     ? "+memory +pids +cpu"
                                     : "+memory +pids",
                           err, errlen) < 0)
                return -1;
        }
    }
    return 0;
nomem:
    snprintf(err, errlen, "cgroups: out of memory or too many hierarchies");
    return -1;
}

int sbx_cg_global_init(const char *name, char *err, size_t errlen)
{
    char v2[CG_PATH_MAX] = "", v1[5][CG_PATH_MAX];
    int result = -1, len = 0;
    size_t i;

    memset(v1, 0, sizeof(v1));
    sbx_cg_global_cleanup();
    G.name = strdup(name);
    if (!G.name) {
        snprintf(err, errlen, "strdup() failed");
        goto out;
    }
    if (scan_mounts(v2, sizeof(v2), v1) < 0) {
        snprintf(err, errlen, "fopen(\"/proc/self/mountinfo\") failed: %s",
                 strerror(errno));
        goto out;
    }
    if (choose_layout(v2, v1, err, errlen) < 0)
        goto out;
    for (i = 0; i < G.n && len >= 0 && (size_t)len < sizeof(G.desc); i++)
        len += snprintf(G.desc + len, sizeof(G.desc) - (size_t)len,
                        "%s%s(%s%s%s%s%s)", i ? " " : "", G.h[i].mount,
                        G.h[i].v2 ? "v2" : "v1",
                        G.h[i].roles & ROLE_MEM ? ",memory" : "",
                        G.h[i].roles & ROLE_PIDS ? ",pids" : "",
                        G.h[i].roles & (ROLE_CPU | ROLE_CPUACCT) ? ",cpu" : "",
                        G.h[i].roles & ROLE_TRACK ? ",track" : "");
    result = 0;
out:
    if (result < 0)
        sbx_cg_global_cleanup();
    return result;
}

void sbx_cg_global_cleanup(void)
{
    size_t i;

    for (i = 0; i < G.n; i++)
        free(G.h[i].mount);
    free(G.name);
    memset(&G, 0, sizeof(G));
    G.track = -1;
}

const char *sbx_cg_describe(void)
{
    return G.desc;
}

/* Write the limits of hierarchy i into dir. */
static int apply_limits(size_t i, const char *dir, const sbx_limits *lim,
                        char *err, size_t errlen)
{
    char path[CG_PATH_MAX], val[64];
    const hier *h = &G.h[i];

    if ((h->roles & ROLE_MEM) && lim->memory_mb) {
        snprintf(val, sizeof(val), "%" PRIu64, lim->memory_mb * 1024 * 1024);
        snprintf(path, sizeof(path), "%s/%s", dir,
                 h->v2 ? "memory.max" : "memory.limit_in_bytes");
        if (write_file(path, val, err, errlen) < 0)
            return -1;
        /* No swap: the memory limit must be the real footprint. */
        snprintf(path, sizeof(path), "%s/%s", dir,
                 h->v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes");
        if (access(path, F_OK) == 0 &&
            write_file(path, h->v2 ? "0" : val, err, errlen) < 0)
            return -1;
    }
    if ((h->roles & ROLE_PIDS) && lim->pids) {
        snprintf(val, sizeof(val), "%" PRIu32, lim->pids);
        snprintf(path, sizeof(path), "%s/pids.max", dir);
        if (write_file(path, val, err, errlen) < 0)
            return -1;
    }
    if ((h->roles & ROLE_CPU) && lim->cpus > 0) {
        long quota = (long)(lim->cpus * CPU_PERIOD_US);

        if (quota < 1000)
            quota = 1000; /* the kernel's minimum quota is 1 ms */
        if (h->v2) {
            snprintf(val, sizeof(val), "%ld %d", quota, CPU_PERIOD_US);
            snprintf(path, sizeof(path), "%s/cpu.max", dir);
            return write_file(path, val, err, errlen);
        }
        snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
        snprintf(val, sizeof(val), "%d", CPU_PERIOD_US);
        if (write_file(path, val, err, errlen) < 0)
            return -1;
        snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
        snprintf(val, sizeof(val), "%ld", quota);
        return write_file(path, val, err, errlen);
    }
    return 0;
}

int sbx_cg_create(const char *id, const sbx_limits *lim, sbx_cg **out,
                  char *err, size_t errlen)
{
    char path[CG_PATH_MAX];
    sbx_cg *cg;
    size_t i;
    int result = -1;

    cg = calloc(1, sizeof(*cg));
    if (!cg) {
        snprintf(err, errlen, "calloc() failed");
        return -1;
    }
    for (i = 0; i < SBX_CG_MAX_HIER; i++)
        cg->procs_fd[i] = -1;
    for (i = 0; i < G.n; i++) {
        if (asprintf(&cg->dir[i], "%s/%s/%s", G.h[i].mount, G.name, id) < 0) {
            cg->dir[i] = NULL;
            snprintf(err, errlen, "asprintf() failed");
            goto out;
        }
        if (mkdir(cg->dir[i], 0755) < 0) {
            snprintf(err, errlen, "mkdir(\"%s\") failed: %s", cg->dir[i],
                     strerror(errno));
            free(cg->dir[i]);
            cg->dir[i] = NULL; /* not ours: never remove it */
            goto out;
        }
        if (apply_limits(i, cg->dir[i], lim, err, errlen) < 0)
            goto out;
        snprintf(path, sizeof(path), "%s/cgroup.procs", cg->dir[i]);
        cg->procs_fd[i] = open(path, O_WRONLY | O_CLOEXEC);
        if (cg->procs_fd[i] < 0) {
            snprintf(err, errlen, "open(\"%s\") failed: %s", path,
                     strerror(errno));
            goto out;
        }
    }
    *out = cg;
    cg = NULL;
    result = 0;
out:
    sbx_cg_destroy(cg);
    return result;
}

size_t sbx_cg_join_fds(const sbx_cg *cg, int *fds, size_t max)
{
    size_t i, n = 0;

    for (i = 0; i < G.n && n < max; i++)
        if (cg->procs_fd[i] >= 0)
            fds[n++] = cg->procs_fd[i];
    return n;
}

int sbx_cg_sandbox_pids(const sbx_cg *cg, pid_t *pids, size_t max, size_t *n)
{
    char path[CG_PATH_MAX];

    snprintf(path, sizeof(path), "%s/cgroup.procs", cg->dir[G.track]);
    return read_pids(path, pids, max, n);
}

static void exec_dir(const sbx_cg *cg, uint32_t req_id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/exe_%" PRIu32, cg->dir[G.track], req_id);
}

int sbx_cg_exec_create(sbx_cg *cg, uint32_t req_id, char *err, size_t errlen)
{
    char dir[CG_PATH_MAX];

    exec_dir(cg, req_id, dir, sizeof(dir));
    if (mkdir(dir, 0755) < 0) {
        snprintf(err, errlen, "mkdir(\"%s\") failed: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int sbx_cg_exec_move(sbx_cg *cg, uint32_t req_id, pid_t pid, char *err,
                     size_t errlen)
{
    char path[CG_PATH_MAX], val[32];

    exec_dir(cg, req_id, path, sizeof(path));
    strncat(path, "/cgroup.procs", sizeof(path) - strlen(path) - 1);
    snprintf(val, sizeof(val), "%d", (int)pid);
    return write_file(path, val, err, errlen);
}

/* SIGKILL each pid listed in dir/file; returns how many were listed. */
static size_t kill_listed(const char *dir, const char *file)
{
    char path[CG_PATH_MAX];
    pid_t pids[4096];
    size_t n = 0, i;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (read_pids(path, pids, sizeof(pids) / sizeof(pids[0]), &n) < 0)
        return 0;
    for (i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    return n;
}

/* Kill a whole v1 subtree: its tasks and those of its child cgroups. */
static size_t kill_tree_v1(const char *dir)
{
    char sub[CG_PATH_MAX];
    struct dirent *de;
    size_t n = kill_listed(dir, "tasks");
    DIR *d = opendir(dir);

    if (!d)
        return n;
    while ((de = readdir(d))) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
        n += kill_tree_v1(sub);
    }
    closedir(d);
    return n;
}

static int populated(const char *dir)
{
    uint64_t v = 1;
    char path[CG_PATH_MAX];

    snprintf(path, sizeof(path), "%s/cgroup.events", dir);
    if (read_key(path, "populated", &v) < 0)
        return access(dir, F_OK) == 0; /* gone: not populated */
    return v != 0;
}

/*
 * Kill every process in the tracking cgroup dir and below; wait (bounded)
 * until none is left. Returns 0 when empty.
 */
static int kill_cgroup(const char *dir)
{
    char path[CG_PATH_MAX], state[32];
    long waited = 0, step = 1;
    int i;

    if (G.h[G.track].v2) {
        /* cgroup.kill: one atomic SIGKILL of the subtree, forks included. */
        snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
        if (write_file(path, "1", NULL, 0) < 0)
            return access(dir, F_OK) == 0 ? -1 : 0;
        while (populated(dir)) {
            if (waited >= KILL_WAIT_MS)
                return -1;
            sleep_ms(step);
            waited += step;
            step = step < 16 ? step * 2 : step;
        }
        return 0;
    }
    /*
     * v1 freezer: freeze so nothing can fork while we read the task list,
     * kill what is listed, thaw so the SIGKILLs are delivered, repeat.
     */
    snprintf(path, sizeof(path), "%s/freezer.state", dir);
    for (i = 0; i < 200; i++) {
        size_t n;
        int w;

        write_file(path, "FROZEN", NULL, 0);
        for (w = 0; w < 100; w++) {
            if (read_small(path, state, sizeof(state)) < 0 ||
                strncmp(state, "FROZEN", 6) == 0)
                break;
            sleep_ms(1);
        }
        n = kill_tree_v1(dir);
        write_file(path, "THAWED", NULL, 0);
        if (n == 0)
            return 0;
        sleep_ms(i < 5 ? 1 : 10);
    }
    return -1;
}

int sbx_cg_exec_kill(sbx_cg *cg, uint32_t req_id)
{
    char dir[CG_PATH_MAX];

    exec_dir(cg, req_id, dir, sizeof(dir));
    return kill_cgroup(dir);
}

/* rmdir, retrying while the kernel finishes tearing processes down. */
static int rmdir_retry(const char *dir, int tries)
{
    int i;

    for (i = 0; i < tries; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return -1;
        sleep_ms(i < 5 ? 1 : 10);
    }
    return -1;
}

int sbx_cg_exec_remove(sbx_cg *cg, uint32_t req_id)
{
    char dir[CG_PATH_MAX];

    exec_dir(cg, req_id, dir, sizeof(dir));
    return rmdir(dir) == 0 || errno == ENOENT ? 0 : -1;
}

int sbx_cg_usage(const sbx_cg *cg, uint64_t *mem, uint64_t *cpu_ns,
                 uint32_t *tasks)
{
    char path[CG_PATH_MAX];
    uint64_t v = 0;
    int i;
    size_t j;

    *mem = *cpu_ns = 0;
    *tasks = 0;
    i = has_role(ROLE_MEM);
    snprintf(path, sizeof(path), "%s/%s", cg->dir[i],
             G.h[i].v2 ? "memory.current" : "memory.usage_in_bytes");
    if (read_u64(path, mem) < 0)
        return -1;
    i = has_role(ROLE_PIDS);
    snprintf(path, sizeof(path), "%s/pids.current", cg->dir[i]);
    if (read_u64(path, &v) < 0)
        return -1;
    *tasks = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    i = has_role(ROLE_CPUACCT);
    if (i >= 0) {
        snprintf(path, sizeof(path), "%s/cpuacct.usage", cg->dir[i]);
        return read_u64(path, cpu_ns);
    }
    for (j = 0; j < G.n; j++) {
        if (!G.h[j].v2)
            continue;
        snprintf(path, sizeof(path), "%s/cpu.stat", cg->dir[j]);
        if (read_key(path, "usage_usec", &v) < 0)
            return -1;
        *cpu_ns = v * 1000;
        return 0;
    }
    return -1;
}

int sbx_cg_oom_count(const sbx_cg *cg, uint64_t *count)
{
    char path[CG_PATH_MAX];
    int i = has_role(ROLE_MEM);

    snprintf(path, sizeof(path), "%s/%s", cg->dir[i],
             G.h[i].v2 ? "memory.events" : "memory.oom_control");
    return read_key(path, "oom_kill", count);
}

/*
 * Kill everything in a sandbox cgroup (found by its path in the tracking
 * hierarchy) and remove its tree in every hierarchy. Returns 0 or -1.
 */
static int remove_sandbox(const char *id_dirs[SBX_CG_MAX_HIER])
{
    char sub[CG_PATH_MAX];
    struct dirent *de;
    int result = 0, i;
    size_t h;
    DIR *d;

    if (id_dirs[G.track] && kill_cgroup(id_dirs[G.track]) < 0)
        result = -1;
    for (h = 0; h < G.n; h++) {
        if (!id_dirs[h])
            continue;
        d = opendir(id_dirs[h]);
        while (d && (de = readdir(d))) {
            if (de->d_type != DT_DIR || de->d_name[0] == '.')
                continue;
            snprintf(sub, sizeof(sub), "%s/%s", id_dirs[h], de->d_name);
            if (rmdir_retry(sub, 50) < 0)
                result = -1;
        }
        if (d)
            closedir(d);
        /* A v1 hierarchy may still list a process the tracker missed. */
        for (i = 0; i < 20 && !G.h[h].v2 && kill_listed(id_dirs[h], "tasks");
             i++)
            sleep_ms(5);
        if (rmdir_retry(id_dirs[h], 100) < 0)
            result = -1;
    }
    return result;
}

void sbx_cg_destroy(sbx_cg *cg)
{
    const char *dirs[SBX_CG_MAX_HIER] = {0};
    size_t i;

    if (!cg)
        return;
    for (i = 0; i < G.n; i++)
        dirs[i] = cg->dir[i];
    remove_sandbox(dirs);
    for (i = 0; i < SBX_CG_MAX_HIER; i++) {
        if (cg->procs_fd[i] >= 0)
            close(cg->procs_fd[i]);
        free(cg->dir[i]);
    }
    free(cg);
}

int sbx_cg_reap_leftovers(void)
{
    char root[CG_PATH_MAX], dirs_buf[SBX_CG_MAX_HIER][CG_PATH_MAX];
    const char *dirs[SBX_CG_MAX_HIER];
    struct dirent *de;
    int count = 0, failed = 0;
    size_t h, k;
    DIR *d;

    /* Walk every hierarchy, so a sandbox half-created in one is found. */
    for (h = 0; h < G.n; h++) {
        snprintf(root, sizeof(root), "%s/%s", G.h[h].mount, G.name);
        d = opendir(root);
        while (d && (de = readdir(d))) {
            if (de->d_type != DT_DIR || de->d_name[0] == '.')
                continue;
            for (k = 0; k < G.n; k++) {
                snprintf(dirs_buf[k], CG_PATH_MAX, "%s/%s/%s", G.h[k].mount,
                         G.name, de->d_name);
                dirs[k] = access(dirs_buf[k], F_OK) == 0 ? dirs_buf[k] : NULL;
            }
            if (remove_sandbox(dirs) < 0)
                failed = 1;
            else
                count++;
        }
        if (d)
            closedir(d);
    }
    return failed ? -1 : count;
}
