/*
 * sbx_priv.h — what the files of the sandbox library share with each other
 * and nobody else: the sandbox record, the launcher of unprivileged
 * children, the file system and network helpers.
 */
#ifndef SBX_PRIV_H
#define SBX_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sbx.h"
#include "sbx_cgroup.h"

#define SBX_BWRAP_PATH       "/usr/bin/bwrap"
#define SBX_SLIRP_PATH       "/usr/bin/slirp4netns"
#define SBX_SANDBOX_UID      1000 /* the uid and gid code sees inside */
#define SBX_MKFS_PATH        "/usr/sbin/mke2fs"
#define SBX_REPLY_TIMEOUT_MS 5000

enum sbx_exec_state {
    SBX_EXEC_FREE = 0,
    SBX_EXEC_SPAWNING,
    SBX_EXEC_RUNNING,
    SBX_EXEC_EXITED
};

typedef struct sbx_exec {
    uint32_t req_id;
    enum sbx_exec_state state;
} sbx_exec;

struct sbx_sandbox {
    char id[SBX_ID_MAX + 1];
    char *dir;       /* <state_dir>/sandboxes/<id> */
    char *workspace; /* <dir>/workspace (tmpfs), or <root>/workspace */
    char *root;      /* <dir>/root: the template's root, or NULL (host) */
    int userns;      /* the user namespace of a template's sandbox, or -1 */
    int dir_made;    /* dir is ours to remove */
    sbx_cg *cg;
    int sock;      /* host end of the sp-init socket */
    int bwrap_err; /* read end of bwrap's stderr */
    pid_t bwrap_pid;
    pid_t init_pid; /* host pid of sp-init */
    uid_t uid;      /* the host identity the sandbox runs as */
    gid_t gid;
    dev_t pidns_dev; /* sp-init's PID namespace */
    ino_t pidns_ino;
    pid_t slirp_pid;
    int slirp_exit; /* closing it stops slirp4netns */
    int dead;
    int stopped; /* sbx_stop has run: no process of it is left */
    uint32_t next_req;
    sbx_exec execs[SBX_MAX_EXECS];
    sbx_exit_event queue[SBX_MAX_EXECS]; /* exits read during a spawn */
    size_t queued;
};

/* A child to start as an unprivileged user in the sandbox's cgroups. */
typedef struct sbx_launch {
    const char *path;
    char *const *argv;
    const int *keep; /* fds passed on (their numbers are in argv) */
    size_t nkeep;
    const int *join; /* cgroup.procs fds to write "0" to */
    size_t njoin;
    uid_t uid;
    gid_t gid;
    int stdio[3]; /* -1: /dev/null */
} sbx_launch;

/* Global settings, set by sbx_global_init (sbx.c), read-only after. */
typedef struct sbx_globals {
    char *state_dir;
    char *init_path;
    unsigned char *seccomp; /* BPF program for bwrap --seccomp */
    size_t seccomp_len;
    int disable_userns; /* bwrap knows --disable-userns */
    int have_slirp;
    int ready;
} sbx_globals;

extern sbx_globals sbx_g;

/*
 * Start bwrap for s (sbx_bwrap.c): sets s->sock (host end of the sp-init
 * socket), s->bwrap_err and s->bwrap_pid. Returns 0, or -1 with err set.
 */
int sbx_bwrap_start(sbx_sandbox *s, const sbx_limits *lim, int network,
                    uid_t uid, gid_t gid, char *err, size_t errlen);

/*
 * Fork and exec l->path as l->uid/l->gid with no_new_privs, in its own
 * session, dying with the calling thread, only l->keep and stdio open.
 * Returns the pid once the exec succeeded, or -1 with err set (the child
 * is then reaped).
 */
pid_t sbx_launch_child(const sbx_launch *l, char *err, size_t errlen);

/* 1 if id is [A-Za-z0-9_-]{1,SBX_ID_MAX}. */
int sbx_fs_valid_id(const char *id);

/*
 * Create dir (0711) and dir/workspace and mount the workspace tmpfs of
 * disk_mb owned by uid:gid on it. Returns 0, or -1 with err set.
 */
int sbx_fs_prepare(const char *dir, const char *workspace, uint64_t disk_mb,
                   uid_t uid, gid_t gid, char *err, size_t errlen);

/*
 * Template roots (sbx_root.c): a user namespace owned by host uid range
 * mapping SBX_RANGE_IDS ids (its fd), the template idmapped through it,
 * the sandbox's ext4 disk image and its loop mount, the overlay; and all
 * of them for s (dir, root, userns set). Each returns -1 with err set.
 */
int sbx_userns_make(uid_t range, char *err, size_t errlen);
int sbx_idmap_mount(const char *src, const char *dst, int userns, int ro,
                    char *err, size_t errlen);
int sbx_disk_make(const char *img, uint64_t mb, uid_t owner, char *err,
                  size_t errlen);
int sbx_disk_mount(const char *img, const char *dst, char *err, size_t errlen);
int sbx_overlay_mount(const char *lower, const char *disk, const char *dst,
                      char *err, size_t errlen);
int sbx_root_prepare(sbx_sandbox *s, const sbx_root *root, uint64_t disk_mb,
                     char *err, size_t errlen);


/* Unmount what a sandbox mounted under dir (root, lower, disk, workspace)
 * and remove dir without following links. */
int sbx_fs_remove(const char *dir);

/* sbx_fs_remove every entry of <state_dir>/sandboxes. Count, or -1. */
int sbx_fs_reap(const char *state_dir);

/* A sealed-off memfd (O_CLOEXEC) holding data, offset 0; -1 on error. */
int sbx_fs_memfd(const char *name, const void *data, size_t len);

/*
 * Start slirp4netns for the network namespace of init_pid (host pid),
 * after loading pol's egress filter there, as uid:gid inside the sandbox's user namespace, and wait until the
 * interface is configured. *exit_fd: closing it stops slirp4netns.
 */
int sbx_net_start(pid_t init_pid, const sp_netpol *pol, uid_t uid, gid_t gid,
                  const int *join, size_t njoin, pid_t *pid, int *exit_fd,
                  char *err, size_t errlen);

/*
 * Load the egress filter of pol into the network namespace of init_pid
 * (sbx_egress.c); replace: in one transaction with the removal of the
 * one there. Returns 0, or -1 with err set.
 */
int sbx_egress_load(pid_t init_pid, const sp_netpol *pol, int replace,
                    char *err, size_t errlen);

/* Handle one message from sp-init (sbx_exec.c). -1: protocol violation. */
int sbx_exec_dispatch(sbx_sandbox *s, const void *msg, size_t len,
                      uint32_t want_type, uint32_t want_req, void *reply);

#endif
