/*
 * sbx_cgkill.c — freezing, killing what is in a cgroup and removing
 * cgroups.
 *
 * Tracking hierarchy on cgroup2: one write to cgroup.kill SIGKILLs the
 * whole subtree atomically, forks in flight included. On v1: the freezer
 * stops every task, the listed tasks get SIGKILL, the thaw delivers it,
 * and this repeats until nothing is listed. Then the tree is removed in
 * every hierarchy, children first.
 *
 * Pausing a sandbox freezes its tracking cgroup (cgroup.freeze on v2,
 * freezer.state on v1); both freeze the whole subtree, executions
 * included, and a frozen task uses no CPU. On v2 cgroup.kill kills frozen
 * tasks too; on v1 a SIGKILL to a task frozen through its parent is only
 * delivered at the thaw, so a kill there does not wait for it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbx_cgroup_int.h"

/* SIGKILL each pid listed in dir/file; returns how many were listed. */
static size_t kill_listed(const char *dir, const char *file)
{
    char path[CG_PATH_MAX];
    pid_t pids[4096];
    size_t n = 0, i;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (sbx_cg_read_pids(path, pids, sizeof(pids) / sizeof(pids[0]), &n) < 0)
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
    if (sbx_cg_read_key(path, "populated", &v) < 0)
        return access(dir, F_OK) == 0; /* gone: not populated */
    return v != 0;
}

/* The tracking cgroup dir has reached the state asked for: frozen (1) or
 * thawed (0). */
static int freeze_reached(const char *dir, int frozen)
{
    char path[CG_PATH_MAX], state[32];
    uint64_t v = 0;

    if (sbx_cg_g.h[sbx_cg_g.track].v2) {
        snprintf(path, sizeof(path), "%s/cgroup.events", dir);
        return sbx_cg_read_key(path, "frozen", &v) == 0 && (v != 0) == frozen;
    }
    snprintf(path, sizeof(path), "%s/freezer.state", dir);
    return sbx_cg_read_small(path, state, sizeof(state)) == 0 &&
           strncmp(state, frozen ? "FROZEN" : "THAWED", 6) == 0;
}

/*
 * Freeze (frozen 1) or thaw the tracking cgroup dir, with its subtree, and
 * wait at most wait_ms until the kernel has done it. Returns 0, or -1
 * (the request stays: a task in an uninterruptible sleep freezes later).
 */
static int freeze_dir(const char *dir, int frozen, long wait_ms)
{
    char path[CG_PATH_MAX];
    int v2 = sbx_cg_g.h[sbx_cg_g.track].v2;
    long waited;

    snprintf(path, sizeof(path), "%s/%s", dir,
             v2 ? "cgroup.freeze" : "freezer.state");
    if (sbx_cg_write_file(
            path, v2 ? (frozen ? "1" : "0") : (frozen ? "FROZEN" : "THAWED"),
            NULL, 0) < 0)
        return -1;
    for (waited = 0; !freeze_reached(dir, frozen); waited++) {
        if (waited >= wait_ms)
            return -1;
        sbx_cg_sleep_ms(1);
    }
    return 0;
}

/*
 * Kill every process in the tracking cgroup dir and below; wait (bounded)
 * until none is left. Returns 0 when empty.
 */
static int kill_cgroup(const char *dir)
{
    char path[CG_PATH_MAX];
    long step = 1;
    uint64_t v = 0;
    int i;

    if (sbx_cg_g.h[sbx_cg_g.track].v2) {
        /* cgroup.kill: one atomic SIGKILL of the subtree, forks included. */
        snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
        if (sbx_cg_write_file(path, "1", NULL, 0) < 0)
            return access(dir, F_OK) == 0 ? -1 : 0;
        /* cgroup.events wakes poll (POLLPRI) when "populated" changes:
         * no sleep lasts longer than the dying does. */
        snprintf(path, sizeof(path), "%s/cgroup.events", dir);
        int ev = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
        long long deadline = sbx_cg_now_ms() + KILL_WAIT_MS;

        while (rc == 0 && populated(dir)) {
            struct pollfd pfd = {ev, POLLPRI, 0};
            char b[256];

            /* Reading it arms the next notification (kernfs). */
            if (ev >= 0 && pread(ev, b, sizeof b, 0) < 0)
                sbx_cg_sleep_ms(1);
            if (sbx_cg_now_ms() >= deadline)
                rc = -1;
            else if (ev < 0 || poll(&pfd, 1, (int)step) < 0)
                sbx_cg_sleep_ms(step);
            step = step < 16 ? step * 2 : step;
        }
        if (ev >= 0)
            close(ev);
        return rc;
    }
    /*
     * v1 freezer: freeze so nothing can fork while we read the task list,
     * kill what is listed, thaw so the SIGKILLs are delivered, repeat.
     */
    snprintf(path, sizeof(path), "%s/freezer.parent_freezing", dir);
    for (i = 0; i < 200; i++) {
        size_t n;

        freeze_dir(dir, 1, 100);
        n = kill_tree_v1(dir);
        freeze_dir(dir, 0, 0);
        if (n == 0)
            return 0;
        /* Frozen through a paused sandbox: the thaw delivers the kill. */
        if (sbx_cg_read_u64(path, &v) == 0 && v != 0)
            return 0;
        sbx_cg_sleep_ms(i < 5 ? 1 : 10);
    }
    return -1;
}

int sbx_cg_freeze(sbx_cg *cg, int frozen, char *err, size_t errlen)
{
    const char *dir = cg->dir[sbx_cg_g.track];

    if (freeze_dir(dir, frozen, FREEZE_WAIT_MS) < 0) {
        snprintf(err, errlen, "%s \"%s\" did not finish within %d ms",
                 frozen ? "freezing" : "thawing", dir, FREEZE_WAIT_MS);
        return -1;
    }
    return 0;
}

int sbx_cg_exec_kill(sbx_cg *cg, uint32_t req_id)
{
    char dir[CG_PATH_MAX];

    sbx_cg_exec_dir(cg, req_id, dir, sizeof(dir));
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
        sbx_cg_sleep_ms(i < 5 ? 1 : 10);
    }
    return -1;
}

int sbx_cg_exec_remove(sbx_cg *cg, uint32_t req_id)
{
    char dir[CG_PATH_MAX];

    sbx_cg_exec_dir(cg, req_id, dir, sizeof(dir));
    return rmdir(dir) == 0 || errno == ENOENT ? 0 : -1;
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

    if (id_dirs[sbx_cg_g.track] && kill_cgroup(id_dirs[sbx_cg_g.track]) < 0)
        result = -1;
    for (h = 0; h < sbx_cg_g.n; h++) {
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
        for (i = 0;
             i < 20 && !sbx_cg_g.h[h].v2 && kill_listed(id_dirs[h], "tasks");
             i++)
            sbx_cg_sleep_ms(5);
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
    for (i = 0; i < sbx_cg_g.n; i++)
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
    for (h = 0; h < sbx_cg_g.n; h++) {
        snprintf(root, sizeof(root), "%s/%s", sbx_cg_g.h[h].mount,
                 sbx_cg_g.name);
        d = opendir(root);
        while (d && (de = readdir(d))) {
            if (de->d_type != DT_DIR || de->d_name[0] == '.')
                continue;
            for (k = 0; k < sbx_cg_g.n; k++) {
                snprintf(dirs_buf[k], CG_PATH_MAX, "%s/%s/%s",
                         sbx_cg_g.h[k].mount, sbx_cg_g.name, de->d_name);
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
