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
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbx_cgroup_int.h"

sbx_cg_layout sbx_cg_g = {.track = -1};

int sbx_cg_has_role(unsigned role)
{
    size_t i;

    for (i = 0; i < sbx_cg_g.n; i++)
        if (sbx_cg_g.h[i].roles & role)
            return (int)i;
    return -1;
}

static int add_hier(const char *mount, int v2, unsigned roles)
{
    size_t i;

    for (i = 0; i < sbx_cg_g.n; i++) {
        if (strcmp(sbx_cg_g.h[i].mount, mount) == 0) {
            sbx_cg_g.h[i].roles |= roles;
            return 0;
        }
    }
    if (sbx_cg_g.n == SBX_CG_MAX_HIER)
        return -1;
    sbx_cg_g.h[sbx_cg_g.n].mount = strdup(mount);
    if (!sbx_cg_g.h[sbx_cg_g.n].mount)
        return -1;
    sbx_cg_g.h[sbx_cg_g.n].v2 = v2;
    sbx_cg_g.h[sbx_cg_g.n].roles = roles;
    sbx_cg_g.n++;
    return 0;
}

/* The super options of the cgroup2 mount at v2 ("" if none), without
 * the generic rw/ro. */
static char v2_opts[1024];

/*
 * Every sandbox spawn moves a process into a new cgroup; on cgroup2 each
 * move takes cgroup_threadgroup_rwsem for writing, which waits for an RCU
 * grace period: several ms on an idle machine (the first command in a
 * sandbox made earlier took 16 ms instead of 4). favordynmods (Linux 6.0)
 * makes such moves cheap at a small cost to forks and exits. It is a
 * property of the whole cgroup2 mount: the mount's other options are kept;
 * a kernel without it refuses the remount and nothing changes.
 */
static void favor_dynmods(const char *v2)
{
    char opts[1100];

    if (!v2[0] || strstr(v2_opts, "favordynmods"))
        return;
    snprintf(opts, sizeof opts, "%s%sfavordynmods", v2_opts,
             v2_opts[0] ? "," : "");
    mount(NULL, v2, NULL, MS_REMOUNT, opts);
}

/* cgroup mounts from mountinfo: the first cgroup2, v1 mount per controller. */
static int scan_mounts(char *v2, size_t v2len, char v1[5][CG_MOUNT_MAX])
{
    static const char *const ctl[5] = {"memory", "pids", "cpu", "cpuacct",
                                       "freezer"};
    char line[4096], mnt[CG_MOUNT_MAX], fstype[64], opts[1024];
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char *sep, *tok, *save;
    int i;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        sep = strstr(line, " - ");
        if (!sep || sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 ||
            sscanf(sep + 3, "%63s %*s %1023s", fstype, opts) != 2 ||
            strchr(mnt, '\\'))
            continue;
        if (strcmp(fstype, "cgroup2") == 0 && !v2[0]) {
            snprintf(v2, v2len, "%s", mnt);
            v2_opts[0] = '\0';
            for (tok = strtok_r(opts, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save))
                if (strcmp(tok, "rw") && strcmp(tok, "ro"))
                    snprintf(v2_opts + strlen(v2_opts),
                             sizeof v2_opts - strlen(v2_opts), "%s%s",
                             v2_opts[0] ? "," : "", tok);
        } else if (strcmp(fstype, "cgroup") == 0) {
            for (tok = strtok_r(opts, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save))
                for (i = 0; i < 5; i++)
                    if (strcmp(tok, ctl[i]) == 0 && !v1[i][0])
                        snprintf(v1[i], CG_MOUNT_MAX, "%s", mnt);
        }
    }
    fclose(f);
    return 0;
}

static int mkdir_ok(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir(\"%s\") failed: %s", path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* Decide the roles of each hierarchy and create <mount>/<name>. */
static int choose_layout(const char *v2, char v1[5][CG_MOUNT_MAX], char *err,
                         size_t errlen)
{
    char path[CG_PATH_MAX], ctl[256] = "";
    size_t i;

    if (v2[0]) {
        snprintf(path, sizeof(path), "%s/cgroup.controllers", v2);
        sbx_cg_read_small(path, ctl, sizeof(ctl));
    }
    if (v2[0] && strstr(ctl, "memory") && strstr(ctl, "pids")) {
        /* Pure v2: limits need the controllers enabled down to <name>. */
        if (add_hier(v2, 1, ROLE_MEM | ROLE_PIDS | ROLE_CPU | ROLE_TRACK) < 0)
            goto nomem;
        snprintf(path, sizeof(path), "%s/cgroup.subtree_control", v2);
        if (sbx_cg_write_file(path, "+memory +pids", err, errlen) < 0)
            return -1;
        if (!strstr(ctl, "cpu") ||
            sbx_cg_write_file(path, "+cpu", err, errlen) < 0)
            sbx_cg_g.h[0].roles &= ~ROLE_CPU;
    } else {
        if (!v1[0][0] || !v1[1][0]) {
            snprintf(err, errlen,
                     "cgroups: no memory and pids controllers "
                     "(v1 or v2) are mounted");
            return -1;
        }
        if (add_hier(v1[0], 0, ROLE_MEM) < 0 ||
            add_hier(v1[1], 0, ROLE_PIDS) < 0 ||
            (v1[2][0] && add_hier(v1[2], 0, ROLE_CPU) < 0) ||
            (v1[3][0] && add_hier(v1[3], 0, ROLE_CPUACCT) < 0))
            goto nomem;
        /* Track with the controller-less cgroup2 if it can kill a tree. */
        if (v2[0]) {
            snprintf(path, sizeof(path), "%s/%s", v2, sbx_cg_g.name);
            if (mkdir_ok(path, err, errlen) < 0)
                return -1;
            snprintf(path, sizeof(path), "%s/%s/cgroup.kill", v2,
                     sbx_cg_g.name);
            if (access(path, W_OK) == 0 && add_hier(v2, 1, ROLE_TRACK) < 0)
                goto nomem;
        }
        if (sbx_cg_has_role(ROLE_TRACK) < 0 && v1[4][0] &&
            add_hier(v1[4], 0, ROLE_TRACK) < 0)
            goto nomem;
    }
    sbx_cg_g.track = sbx_cg_has_role(ROLE_TRACK);
    if (sbx_cg_g.track < 0) {
        snprintf(err, errlen,
                 "cgroups: neither cgroup.kill (cgroup2) nor "
                 "the v1 freezer is available");
        return -1;
    }
    for (i = 0; i < sbx_cg_g.n; i++) {
        snprintf(path, sizeof(path), "%s/%s", sbx_cg_g.h[i].mount,
                 sbx_cg_g.name);
        if (mkdir_ok(path, err, errlen) < 0)
            return -1;
        if (sbx_cg_g.h[i].v2 && (sbx_cg_g.h[i].roles & ROLE_MEM)) {
            snprintf(path, sizeof(path), "%s/%s/cgroup.subtree_control",
                     sbx_cg_g.h[i].mount, sbx_cg_g.name);
            if (sbx_cg_write_file(path,
                                  (sbx_cg_g.h[i].roles & ROLE_CPU)
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
    char v2[CG_MOUNT_MAX] = "", v1[5][CG_MOUNT_MAX];
    int result = -1, len = 0;
    size_t i;

    memset(v1, 0, sizeof(v1));
    sbx_cg_global_cleanup();
    sbx_cg_g.name = strdup(name);
    if (!sbx_cg_g.name) {
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
    favor_dynmods(v2);
    for (i = 0;
         i < sbx_cg_g.n && len >= 0 && (size_t)len < sizeof(sbx_cg_g.desc); i++)
        len += snprintf(
            sbx_cg_g.desc + len, sizeof(sbx_cg_g.desc) - (size_t)len,
            "%s%s(%s%s%s%s%s)", i ? " " : "", sbx_cg_g.h[i].mount,
            sbx_cg_g.h[i].v2 ? "v2" : "v1",
            sbx_cg_g.h[i].roles & ROLE_MEM ? ",memory" : "",
            sbx_cg_g.h[i].roles & ROLE_PIDS ? ",pids" : "",
            sbx_cg_g.h[i].roles & (ROLE_CPU | ROLE_CPUACCT) ? ",cpu" : "",
            sbx_cg_g.h[i].roles & ROLE_TRACK ? ",track" : "");
    result = 0;
out:
    if (result < 0)
        sbx_cg_global_cleanup();
    return result;
}

void sbx_cg_global_cleanup(void)
{
    size_t i;

    for (i = 0; i < sbx_cg_g.n; i++)
        free(sbx_cg_g.h[i].mount);
    free(sbx_cg_g.name);
    memset(&sbx_cg_g, 0, sizeof(sbx_cg_g));
    sbx_cg_g.track = -1;
}

const char *sbx_cg_describe(void)
{
    return sbx_cg_g.desc;
}

/* Write the limits of hierarchy i into dir. */
static int apply_limits(size_t i, const char *dir, const sbx_limits *lim,
                        char *err, size_t errlen)
{
    char path[CG_PATH_MAX], val[64];
    const sbx_cg_hier *h = &sbx_cg_g.h[i];

    if ((h->roles & ROLE_MEM) && lim->memory_mb) {
        snprintf(val, sizeof(val), "%" PRIu64, lim->memory_mb * 1024 * 1024);
        snprintf(path, sizeof(path), "%s/%s", dir,
                 h->v2 ? "memory.max" : "memory.limit_in_bytes");
        if (sbx_cg_write_file(path, val, err, errlen) < 0)
            return -1;
        /* No swap: the memory limit must be the real footprint. */
        snprintf(path, sizeof(path), "%s/%s", dir,
                 h->v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes");
        if (access(path, F_OK) == 0 &&
            sbx_cg_write_file(path, h->v2 ? "0" : val, err, errlen) < 0)
            return -1;
    }
    if ((h->roles & ROLE_PIDS) && lim->pids) {
        snprintf(val, sizeof(val), "%" PRIu32, lim->pids);
        snprintf(path, sizeof(path), "%s/pids.max", dir);
        if (sbx_cg_write_file(path, val, err, errlen) < 0)
            return -1;
    }
    if ((h->roles & ROLE_CPU) && lim->cpus > 0) {
        long quota = (long)(lim->cpus * CPU_PERIOD_US);

        if (quota < 1000)
            quota = 1000; /* the kernel's minimum quota is 1 ms */
        if (h->v2) {
            snprintf(val, sizeof(val), "%ld %d", quota, CPU_PERIOD_US);
            snprintf(path, sizeof(path), "%s/cpu.max", dir);
            return sbx_cg_write_file(path, val, err, errlen);
        }
        snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
        snprintf(val, sizeof(val), "%d", CPU_PERIOD_US);
        if (sbx_cg_write_file(path, val, err, errlen) < 0)
            return -1;
        snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
        snprintf(val, sizeof(val), "%ld", quota);
        return sbx_cg_write_file(path, val, err, errlen);
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
    for (i = 0; i < sbx_cg_g.n; i++) {
        if (asprintf(&cg->dir[i], "%s/%s/%s", sbx_cg_g.h[i].mount,
                     sbx_cg_g.name, id) < 0) {
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

    for (i = 0; i < sbx_cg_g.n && n < max; i++)
        if (cg->procs_fd[i] >= 0)
            fds[n++] = cg->procs_fd[i];
    return n;
}

int sbx_cg_sandbox_pids(const sbx_cg *cg, pid_t *pids, size_t max, size_t *n)
{
    char path[CG_PATH_MAX];

    snprintf(path, sizeof(path), "%s/cgroup.procs", cg->dir[sbx_cg_g.track]);
    return sbx_cg_read_pids(path, pids, max, n);
}

void sbx_cg_exec_dir(const sbx_cg *cg, uint32_t req_id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/exe_%" PRIu32, cg->dir[sbx_cg_g.track], req_id);
}

int sbx_cg_exec_create(sbx_cg *cg, uint32_t req_id, char *err, size_t errlen)
{
    char dir[CG_PATH_MAX];

    sbx_cg_exec_dir(cg, req_id, dir, sizeof(dir));
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

    sbx_cg_exec_dir(cg, req_id, path, sizeof(path));
    strncat(path, "/cgroup.procs", sizeof(path) - strlen(path) - 1);
    snprintf(val, sizeof(val), "%d", (int)pid);
    return sbx_cg_write_file(path, val, err, errlen);
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
    i = sbx_cg_has_role(ROLE_MEM);
    snprintf(path, sizeof(path), "%s/%s", cg->dir[i],
             sbx_cg_g.h[i].v2 ? "memory.current" : "memory.usage_in_bytes");
    if (sbx_cg_read_u64(path, mem) < 0)
        return -1;
    i = sbx_cg_has_role(ROLE_PIDS);
    snprintf(path, sizeof(path), "%s/pids.current", cg->dir[i]);
    if (sbx_cg_read_u64(path, &v) < 0)
        return -1;
    *tasks = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    i = sbx_cg_has_role(ROLE_CPUACCT);
    if (i >= 0) {
        snprintf(path, sizeof(path), "%s/cpuacct.usage", cg->dir[i]);
        return sbx_cg_read_u64(path, cpu_ns);
    }
    for (j = 0; j < sbx_cg_g.n; j++) {
        if (!sbx_cg_g.h[j].v2)
            continue;
        snprintf(path, sizeof(path), "%s/cpu.stat", cg->dir[j]);
        if (sbx_cg_read_key(path, "usage_usec", &v) < 0)
            return -1;
        *cpu_ns = v * 1000;
        return 0;
    }
    return -1;
}

int sbx_cg_oom_count(const sbx_cg *cg, uint64_t *count)
{
    char path[CG_PATH_MAX];
    int i = sbx_cg_has_role(ROLE_MEM);

    snprintf(path, sizeof(path), "%s/%s", cg->dir[i],
             sbx_cg_g.h[i].v2 ? "memory.events" : "memory.oom_control");
    return sbx_cg_read_key(path, "oom_kill", count);
}
