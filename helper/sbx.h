/*
 * sbx.h — host-side sandbox library used by the sandbox helper daemon.
 *
 * A sandbox is a bubblewrap process tree (user, PID, mount, IPC, UTS and
 * network namespaces) whose PID 1 is sp-init, plus a tmpfs workspace and a
 * set of cgroups holding the limits. The daemon creates sandboxes, starts
 * processes in them through sp-init, polls each sandbox's control fd for
 * exit events and destroys the sandbox when it is done. See sbx.c for the
 * theory of operation.
 *
 * Return convention: 0 on success, -1 on error with a human message naming
 * the failed call in err (when err is not NULL). One thread at a time
 * drives a given sandbox; different sandboxes may be driven from different
 * threads at once (nothing but sbx_global_init's settings is shared, and
 * those are read-only). sbx_global_init runs once before anything else.
 */
#ifndef SBX_H
#define SBX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sp_netpol.h" /* the egress policy's types (no code of common/) */

#define SBX_ID_MAX          64           /* ids are [A-Za-z0-9_-]{1,64} */
#define SBX_SPAWN_MAX_BYTES (120 * 1024) /* argv + env + cwd of one spawn */
#define SBX_MAX_EXECS       1024         /* live executions per sandbox */

typedef struct sbx_config {
    const char *state_dir;   /* sandboxes live in <state_dir>/sandboxes/<id> */
    const char *init_path;   /* host path of the sp-init binary */
    const char *cgroup_name; /* directory under each cgroup mount, "sandpipe" */
} sbx_config;

typedef struct sbx_limits {
    uint64_t memory_mb; /* 0: no limit */
    uint64_t disk_mb;   /* workspace tmpfs size, must be > 0 */
    uint64_t tmp_mb;    /* /tmp tmpfs size, must be > 0 */
    uint32_t pids;      /* 0: no limit */
    double cpus;        /* 0: no limit */
} sbx_limits;

/*
 * The root a sandbox sees. NULL (the "host" view): the host's /usr
 * read-only, a tmpfs workspace, one id (1000) inside. A template: rootfs
 * is its tree (owned by the ids it has inside), seen through an overlay
 * whose writable layer is on an ext4 disk of disk_mb of the sandbox's
 * own; ids 0..SBX_RANGE_IDS-3 (and 65534, 65535) map to host ids from the
 * host_uid given to sbx_create, which owns the sandbox's user namespace;
 * sp-init runs as root of that namespace and programs as the uid each
 * spawn asks for. in_place: rootfs itself is written (template builds;
 * no disk, no overlay).
 */
typedef struct sbx_root {
    const char *rootfs;
    int in_place;
    /* has_layer: layer_fd is a tar archive of a writable layer (a
     * snapshot, sbx_tree.c) unpacked onto the new disk before the overlay
     * is mounted (so the overlay never sees its upper change under it). */
    int has_layer;
    int layer_fd;
} sbx_root;

#define SBX_RANGE_IDS 4096 /* host ids per template sandbox */

typedef struct sbx_sandbox sbx_sandbox; /* opaque */

typedef struct sbx_exit_event {
    uint32_t req_id;
    int wait_status; /* as from waitpid() inside the sandbox */
} sbx_exit_event;

typedef struct sbx_spawn_req {
    char *const *argv; /* argv[0] is looked up in the PATH of envp */
    char *const *envp; /* may be NULL; PATH, HOME, LANG are added if absent */
    const char *cwd;   /* NULL: /workspace */
    int user_set;      /* 0: run as 1000:1000 */
    uint32_t uid, gid; /* inside; the host view has no other than 1000 */
    int pty;           /* run on a fresh pseudo-terminal */
    unsigned short cols, rows;
} sbx_spawn_req;

typedef struct sbx_proc {
    uint32_t req_id;
    pid_t host_pid;
    int stdin_fd; /* pty: the master, also in stdout_fd */
    int stdout_fd;
    int stderr_fd; /* pty: -1 */
} sbx_proc;

/*
 * Detect the cgroup layout, check bwrap and its options, build the seccomp
 * filter. Call once at start-up, as root. cfg strings are copied.
 */
int sbx_global_init(const sbx_config *cfg, char *err, size_t errlen);

/* Release what sbx_global_init allocated. */
void sbx_global_cleanup(void);

/*
 * Build and start a sandbox. id must be [A-Za-z0-9_-]{1,64} and unused.
 * host_uid/host_gid: the unprivileged host identity the sandbox runs as.
 * net: NULL (or net->network 0) for no network; else a private network
 * reached through slirp4netns behind net's egress filter (sbx_egress.c).
 * root: NULL for the host view, else the template (see sbx_root).
 * On success *out is owned by the caller and freed by sbx_destroy.
 * The caller must not reap children it did not start (no waitpid(-1)):
 * the sandbox's bwrap process is the caller's child. The bwrap process
 * dies with the thread that called sbx_create (PR_SET_PDEATHSIG).
 */
int sbx_create(const char *id, const sbx_limits *lim, const sp_netpol *net,
               uid_t host_uid, gid_t host_gid, const sbx_root *root,
               sbx_sandbox **out, char *err, size_t errlen);

/* The fd to poll for POLLIN; readable => call sbx_handle_control. */
int sbx_control_fd(const sbx_sandbox *s);

/*
 * Read what sp-init reported; store up to max exit events of spawned
 * processes in events and their number in *n. Returns 0, or -1 when the
 * sandbox died or misbehaved (it must then be destroyed).
 */
int sbx_handle_control(sbx_sandbox *s, sbx_exit_event *events, size_t max,
                       size_t *n);

/*
 * Start a process in the sandbox and wait until it has exec'd. On success
 * out holds the host ends of its stdio (O_NONBLOCK|O_CLOEXEC, owned by the
 * caller). An exec failure is an error with a message naming execve.
 */
int sbx_spawn(sbx_sandbox *s, const sbx_spawn_req *req, sbx_proc *out,
              char *err, size_t errlen);

/*
 * SIGKILL every process that execution started, orphans included, and wait
 * (bounded) until they are gone. Unknown req_id: 0. Returns -1 if some
 * process survived.
 */
int sbx_kill_exec(sbx_sandbox *s, uint32_t req_id);

/* Current usage of the whole sandbox: memory, CPU time, tasks. */
int sbx_usage(sbx_sandbox *s, uint64_t *mem_bytes, uint64_t *cpu_ns,
              uint32_t *nprocs);

/* How many processes the OOM killer has killed in this sandbox. */
int sbx_oom_count(sbx_sandbox *s, uint64_t *count);

/*
 * Pause: freeze every process of the sandbox (sp-init, its programs,
 * bwrap and slirp4netns) through its cgroup; a frozen process uses no CPU
 * and keeps its memory. Nothing may be asked of sp-init (sbx_spawn) until
 * sbx_resume. sbx_kill_exec and sbx_destroy still work. Waits (at most a
 * second) until the kernel has frozen them all; -1 with err otherwise.
 */
int sbx_pause(sbx_sandbox *s, char *err, size_t errlen);

/* Resume: thaw what sbx_pause froze; every process goes on where it was. */
int sbx_resume(sbx_sandbox *s, char *err, size_t errlen);

/* Set the window size of a pty master returned by sbx_spawn. */
int sbx_pty_resize(int master_fd, unsigned short cols, unsigned short rows);

/*
 * Kill everything and remove the cgroups: no process of the sandbox is
 * left (its mounts and directory are; sbx_destroy removes them). Accepts
 * NULL; a second call does nothing.
 */
void sbx_stop(sbx_sandbox *s);

/*
 * Kill everything, unmount, remove cgroups and the sandbox directory, free.
 * Accepts NULL.
 */
void sbx_destroy(sbx_sandbox *s);

/*
 * At daemon start: kill and remove every cgroup, mount and directory under
 * the configured roots left by an earlier run. Returns the number of
 * sandboxes removed, or -1 if something could not be removed.
 */
int sbx_reap_leftovers(void);

/* The internet policy (every public address), for callers that want
 * today's network sandbox. */
extern const sp_netpol sbx_net_internet;

/* Replace the egress filter of s (a network sandbox) by pol's, in one
 * transaction. 0, or -1 with err (also when s has no network). */
int sbx_net_policy(sbx_sandbox *s, const sp_netpol *pol, char *err,
                   size_t errlen);

/* A new fd (O_CLOEXEC) on the network namespace of s, or -1. */
int sbx_net_netns(const sbx_sandbox *s);

/* Run nft -f on text in the network namespace netns (fork, setns, exec,
 * wait). 0, or -1 with err. Any thread may call it. */
int sbx_nft_run(int netns, const char *text, char *err, size_t errlen);

/* A UDP socket (O_NONBLOCK|O_CLOEXEC, the caller's) bound to 10.0.2.3:53
 * in the network namespace of s, which gets that address on its loopback:
 * the sandbox's DNS (its resolv.conf) then reaches whoever reads it, not
 * slirp4netns. -1 with err. */
int sbx_net_dns_socket(const sbx_sandbox *s, char *err, size_t errlen);

/* Bytes the sandbox received and sent over its network (0 without one).
 * 0, or -1. */
int sbx_net_bytes(const sbx_sandbox *s, uint64_t *rx, uint64_t *tx);

/* Host path of the workspace root (owned by s). */
const char *sbx_workspace_path(const sbx_sandbox *s);

/* Host path of a template sandbox's root (owned by s), NULL in the host
 * view. */
const char *sbx_root_path(const sbx_sandbox *s);

/* The host uid of id `inside` of the sandbox (the host view: its one uid),
 * or (uid_t)-1 when that id is not mapped. */
uid_t sbx_host_uid(const sbx_sandbox *s, uint32_t inside);

/* An account of a root's /etc/passwd, by name or uid (read inside root:
 * no link leads out of it). Returns 0, or -1 when there is none. */
typedef struct sbx_user {
    uint32_t uid, gid;
    char name[64];
    char home[256];
} sbx_user;
int sbx_passwd_lookup(const char *root, const char *who, sbx_user *u);

/* Remove the tree at path (rm -rf on the host: no link followed, no
 * other file system entered). 0, or -1. */
int sbx_rm_tree(const char *path);

/* Run argv on the host (no shell) with stdout and stderr into buf (up to
 * len-1 bytes, NUL-terminated): its exit status (128 + signal), or -1. */
int sbx_run_capture(char *const argv[], char *buf, size_t len);

/* Bytes used and total of the sandbox's disk (the workspace tmpfs in the
 * host view). */
int sbx_disk_usage(const sbx_sandbox *s, uint64_t *used, uint64_t *total);

/* A tar run over a directory of a sandbox (sbx_tree.c): pack dir into
 * archive, or unpack archive into dir, as the sandbox's own identity
 * (unpacking in a mount namespace where only dir is writable). */
typedef struct sbx_tree {
    int dir;     /* O_PATH fd of the directory, resolved by the caller */
    int archive; /* read (unpack) or written (pack) at its offset */
    int userns;  /* the sandbox's user namespace, or -1 (host view) */
    uid_t uid;   /* with userns: the inside uid; else the host uid */
    int layer;   /* a writable layer: owners, whiteouts, opaque dirs kept */
    int unpack;
} sbx_tree;

/* Run t to its end (blocking: a worker's). 0, or -1 with tar's first
 * complaint in err. */
int sbx_tree_run(const sbx_tree *t, char *err, size_t errlen);

/* The user namespace of a template's sandbox (owned by s), or -1. */
int sbx_userns(const sbx_sandbox *s);

/* An O_PATH fd (the caller closes it) of a template sandbox's writable
 * layer, <dir>/disk/upper; -1 (errno ENOENT) for the host view. */
int sbx_upper_open(const sbx_sandbox *s);

/* The sandbox's id (owned by s). */
const char *sbx_id(const sbx_sandbox *s);

#endif
