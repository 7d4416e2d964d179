/*
 * sbx_cgroup_int.h — what sbx_cgroup.c, sbx_cgfile.c and sbx_cgkill.c
 * share: the layout found at start-up and the small file helpers.
 */
#ifndef SBX_CGROUP_INT_H
#define SBX_CGROUP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sbx_cgroup.h"

#define ROLE_MEM       0x1u
#define ROLE_PIDS      0x2u
#define ROLE_CPU       0x4u
#define ROLE_CPUACCT   0x8u
#define ROLE_TRACK     0x10u
#define CG_PATH_MAX    512
#define CG_MOUNT_MAX   256 /* mount points we accept; paths below fit */
#define KILL_WAIT_MS   3000
#define FREEZE_WAIT_MS 1000 /* a pause or resume waits this long at most */
#define CPU_PERIOD_US  100000

typedef struct sbx_cg_hier {
    char *mount;
    int v2;
    unsigned roles; /* ROLE_* */
} sbx_cg_hier;

typedef struct sbx_cg_layout {
    sbx_cg_hier h[SBX_CG_MAX_HIER];
    size_t n;
    char *name;
    int track; /* index of the tracking hierarchy */
    char desc[256];
} sbx_cg_layout;

struct sbx_cg {
    char *dir[SBX_CG_MAX_HIER]; /* <mount>/<name>/<id>, per h[] */
    int procs_fd[SBX_CG_MAX_HIER];
};

/* Set once by sbx_cg_global_init, read-only afterwards. */
extern sbx_cg_layout sbx_cg_g;

/* Sleep ms milliseconds. */
void sbx_cg_sleep_ms(long ms);
long long sbx_cg_now_ms(void); /* CLOCK_MONOTONIC */

/* Write val to path; -1 with err set (err may be NULL). */
int sbx_cg_write_file(const char *path, const char *val, char *err,
                      size_t errlen);

/* Read a small file into buf, NUL-terminated; -1 on error. */
int sbx_cg_read_small(const char *path, char *buf, size_t len);

/* The number after "key " in a flat-keyed file; -1 if absent. */
int sbx_cg_read_key(const char *path, const char *key, uint64_t *val);

/* A file holding one unsigned number. */
int sbx_cg_read_u64(const char *path, uint64_t *val);

/* Up to max pids listed in path (cgroup.procs, tasks); count in *n. */
int sbx_cg_read_pids(const char *path, pid_t *pids, size_t max, size_t *n);

/* Index of the first hierarchy with role, or -1. */
int sbx_cg_has_role(unsigned role);

/* The path of execution req_id's cgroup, into buf. */
void sbx_cg_exec_dir(const sbx_cg *cg, uint32_t req_id, char *buf, size_t len);

#endif
