/*
 * sbx_cgroup.h — per-sandbox cgroups: limits, usage, tracking and killing,
 * on cgroup v1, v2 and hybrid hosts.
 */
#ifndef SBX_CGROUP_H
#define SBX_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sbx.h"

#define SBX_CG_MAX_HIER 8

typedef struct sbx_cg sbx_cg; /* the cgroups of one sandbox */

/*
 * Find the cgroup hierarchies to use (from /proc/self/mountinfo), enable
 * the controllers needed on a v2 host and create <mount>/<name> in each.
 * name is copied. Returns 0, or -1 with err set.
 */
int sbx_cg_global_init(const char *name, char *err, size_t errlen);

/* Forget what sbx_cg_global_init found. */
void sbx_cg_global_cleanup(void);

/* One line describing the layout in use, for logs (static storage). */
const char *sbx_cg_describe(void);

/*
 * Create <mount>/<name>/<id> in every hierarchy and apply lim.
 * On success *out is freed by sbx_cg_destroy.
 */
int sbx_cg_create(const char *id, const sbx_limits *lim, sbx_cg **out,
                  char *err, size_t errlen);

/*
 * Fds (O_WRONLY|O_CLOEXEC, owned by cg) on the cgroup.procs file of the
 * sandbox cgroup in each hierarchy: a freshly forked child writes "0" to
 * each to enter the sandbox before it execs. Returns how many are in fds.
 */
size_t sbx_cg_join_fds(const sbx_cg *cg, int *fds, size_t max);

/* The pids in the sandbox cgroup itself (not its executions). */
int sbx_cg_sandbox_pids(const sbx_cg *cg, pid_t *pids, size_t max, size_t *n);

/* Create the cgroup of execution req_id (in the tracking hierarchy). */
int sbx_cg_exec_create(sbx_cg *cg, uint32_t req_id, char *err, size_t errlen);

/* Move pid into the cgroup of execution req_id. */
int sbx_cg_exec_move(sbx_cg *cg, uint32_t req_id, pid_t pid, char *err,
                     size_t errlen);

/* SIGKILL every process of execution req_id, wait until none is left. */
int sbx_cg_exec_kill(sbx_cg *cg, uint32_t req_id);

/*
 * Freeze (frozen 1: no process of the sandbox runs, executions included)
 * or thaw the sandbox's tracking cgroup; wait at most FREEZE_WAIT_MS for
 * the kernel to finish. Returns 0, or -1 with err set.
 */
int sbx_cg_freeze(sbx_cg *cg, int frozen, char *err, size_t errlen);

/* Remove the (empty) cgroup of execution req_id; -1 if it is busy. */
int sbx_cg_exec_remove(sbx_cg *cg, uint32_t req_id);

/* Sandbox-wide usage: memory bytes, CPU ns, tasks (threads included). */
int sbx_cg_usage(const sbx_cg *cg, uint64_t *mem, uint64_t *cpu_ns,
                 uint32_t *tasks);

/* OOM kills counted in the sandbox. */
int sbx_cg_oom_count(const sbx_cg *cg, uint64_t *count);

/* Kill every process of the sandbox, remove its cgroups, free. NULL ok. */
void sbx_cg_destroy(sbx_cg *cg);

/*
 * Kill and remove every sandbox cgroup under <mount>/<name>. Returns how
 * many sandboxes were removed, -1 if some could not be.
 */
int sbx_cg_reap_leftovers(void);

#endif
