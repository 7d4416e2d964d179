/*
 * sbx_seccomp.c — builds the seccomp filter of the sandboxes.
 *
 * Default allow with a deny list: sandboxed code is arbitrary user code
 * (compilers, interpreters, package managers), so only what such code never
 * needs and what widens the kernel's attack surface is refused, with EPERM
 * as if the sandbox user lacked the privilege. Only the native x86_64 ABI
 * is allowed: a syscall made through the i386 (int 0x80) or x32 entry
 * points would bypass rules written for x86_64 numbers, so libseccomp's
 * bad-architecture action kills the process instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbx_seccomp.h"

#define SBX_SECCOMP_MAX_PROG (1024 * 1024)

typedef struct deny_rule {
    const char *name;
    int required; /* 0: may be unknown to an older libseccomp */
} deny_rule;

/* Refused outright with EPERM. */
static const deny_rule deny_list[] = {
    {"mount", 1},            /* no changes to the sandbox's file system view */
    {"umount2", 1},          /* could uncover what bwrap mounted over */
    {"pivot_root", 1},       /* no new root file system */
    {"fsopen", 0},           /* new mount API: same as mount */
    {"fsconfig", 0},         /* new mount API: same as mount */
    {"fsmount", 0},          /* new mount API: same as mount */
    {"fspick", 0},           /* new mount API: same as mount */
    {"move_mount", 0},       /* new mount API: same as mount */
    {"open_tree", 0},        /* new mount API: same as mount */
    {"mount_setattr", 0},    /* new mount API: could make mounts writable */
    {"swapon", 1},           /* host swap configuration */
    {"swapoff", 1},          /* host swap configuration */
    {"reboot", 1},           /* host power state */
    {"kexec_load", 1},       /* replacing the host kernel */
    {"kexec_file_load", 1},  /* replacing the host kernel */
    {"init_module", 1},      /* loading kernel code */
    {"finit_module", 1},     /* loading kernel code */
    {"delete_module", 1},    /* unloading kernel code */
    {"keyctl", 1},           /* kernel keyrings are not namespaced */
    {"add_key", 1},          /* kernel keyrings are not namespaced */
    {"request_key", 1},      /* kernel keyrings are not namespaced */
    {"bpf", 1},              /* eBPF: large kernel attack surface */
    {"userfaultfd", 1},      /* stalls kernel accesses, a classic exploit aid */
    {"perf_event_open", 1},  /* host-wide observation, exploit aid */
    {"ptrace", 1},           /* no tracing of other processes (or sp-init) */
    {"process_vm_readv", 1}, /* reading other processes' memory */
    {"process_vm_writev", 1}, /* writing other processes' memory */
    {"pidfd_getfd", 0},       /* stealing other processes' fds */
    {"io_uring_setup",
     1}, /* io_uring: large attack surface, bypasses filters */
    {"io_uring_enter",
     1}, /* io_uring: large attack surface, bypasses filters */
    {"io_uring_register",
     1}, /* io_uring: large attack surface, bypasses filters */
    {"open_by_handle_at", 1}, /* can open files outside the mounts (shocker) */
    {"name_to_handle_at", 1}, /* companion of open_by_handle_at */
    {"setns", 1},             /* joining other namespaces */
    {"unshare", 1},           /* no nested namespaces */
    {"acct", 1},              /* host process accounting */
    {"quotactl", 1},          /* host disk quotas */
    {"quotactl_fd", 0},       /* host disk quotas */
    {"lookup_dcookie", 1},    /* profiling interface, leaks host paths */
    {"syslog", 1},            /* kernel log leaks host information */
    {"nfsservctl", 1},        /* kernel NFS server control */
    {"settimeofday", 1},      /* the clock is host-wide */
    {"clock_settime", 1},     /* the clock is host-wide */
    {"clock_adjtime", 1},     /* the clock is host-wide */
    {"adjtimex", 1},          /* the clock is host-wide */
    {"vhangup", 1},           /* hangs up the terminal of others */
    {"fanotify_init", 1},     /* file system wide monitoring */
    {"iopl", 1},              /* raw I/O port access */
    {"ioperm", 1},            /* raw I/O port access */
    {"uselib", 0},            /* obsolete loader, never needed */
};

/* Namespace flags that clone() must not carry: no nested namespaces. */
static const uint64_t clone_ns_flags[] = {
    CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
    CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
};

static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name,
                    int required, unsigned argc, const struct scmp_arg_cmp *arg,
                    char *err, size_t errlen)
{
    int nr = seccomp_syscall_resolve_name(name), rc;

    if (nr == __NR_SCMP_ERROR) {
        if (required)
            snprintf(err, errlen, "seccomp: syscall %s unknown to libseccomp",
                     name);
        return required ? -1 : 0;
    }
    rc = seccomp_rule_add_array(ctx, action, nr, argc, arg);
    if (rc < 0) {
        snprintf(err, errlen, "seccomp_rule_add(%s) failed: %s", name,
                 strerror(-rc));
        return -1;
    }
    return 0;
}

/*
 * personality(): only PER_LINUX (0) and the query value 0xffffffff may
 * pass; other personas turn off ASLR or map page zero. The kernel reads a
 * 32-bit argument and libseccomp cannot compare one argument twice in a
 * rule, so "neither all zeros nor all ones" is spelt as "bit 0 differs
 * from bit j" for each j, one masked compare per rule.
 */
static int add_personality_rules(scmp_filter_ctx ctx, char *err, size_t errlen)
{
    struct scmp_arg_cmp cmp;
    unsigned j;

    for (j = 1; j < 32; j++) {
        uint64_t mask = 1u | (1ull << j);

        cmp = SCMP_A0(SCMP_CMP_MASKED_EQ, mask, 1u);
        if (add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "personality", 1, 1, &cmp, err,
                     errlen) < 0)
            return -1;
        cmp = SCMP_A0(SCMP_CMP_MASKED_EQ, mask, 1ull << j);
        if (add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "personality", 1, 1, &cmp, err,
                     errlen) < 0)
            return -1;
    }
    return 0;
}

static int add_rules(scmp_filter_ctx ctx, char *err, size_t errlen)
{
    struct scmp_arg_cmp cmp;
    size_t i;

    for (i = 0; i < sizeof(deny_list) / sizeof(deny_list[0]); i++)
        if (add_rule(ctx, SCMP_ACT_ERRNO(EPERM), deny_list[i].name,
                     deny_list[i].required, 0, NULL, err, errlen) < 0)
            return -1;
    /* clone(): flags are argument 0 on x86_64; refuse any CLONE_NEW*. */
    for (i = 0; i < sizeof(clone_ns_flags) / sizeof(clone_ns_flags[0]); i++) {
        cmp = SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns_flags[i], clone_ns_flags[i]);
        if (add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, 1, &cmp, err,
                     errlen) < 0)
            return -1;
    }
    /*
     * clone3(): its flags sit in memory a filter cannot read; ENOSYS makes
     * glibc fall back to clone(), whose flags are checked above.
     */
    if (add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, 0, NULL, err,
                 errlen) < 0)
        return -1;
    /*
     * ioctl(TIOCSTI) pushes input into a terminal (escape to whoever reads
     * it next), TIOCLINUX can do the same on a VT. The kernel truncates the
     * command to 32 bits, so compare only those.
     */
    cmp = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI);
    if (add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "ioctl", 1, 1, &cmp, err, errlen) <
        0)
        return -1;
    cmp = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCLINUX);
    if (add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "ioctl", 1, 1, &cmp, err, errlen) <
        0)
        return -1;
    return add_personality_rules(ctx, err, errlen);
}

/* Export the filter through a memfd and read it back into memory. */
static int export_prog(scmp_filter_ctx ctx, unsigned char **prog, size_t *len,
                       char *err, size_t errlen)
{
    unsigned char *buf = NULL;
    struct stat st;
    int fd, rc, result = -1;
    ssize_t n;

    fd = memfd_create("sbx-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "memfd_create() failed: %s", strerror(errno));
        return -1;
    }
    rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0) {
        snprintf(err, errlen, "seccomp_export_bpf() failed: %s", strerror(-rc));
        goto out;
    }
    if (fstat(fd, &st) < 0 || st.st_size <= 0 ||
        st.st_size > SBX_SECCOMP_MAX_PROG) {
        snprintf(err, errlen, "seccomp: exported filter has a bad size");
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (!buf) {
        snprintf(err, errlen, "malloc() failed");
        goto out;
    }
    n = pread(fd, buf, (size_t)st.st_size, 0);
    if (n != st.st_size) {
        snprintf(err, errlen, "pread(seccomp memfd) failed");
        goto out;
    }
    *prog = buf;
    *len = (size_t)st.st_size;
    buf = NULL;
    result = 0;
out:
    free(buf);
    close(fd);
    return result;
}

int sbx_seccomp_build(unsigned char **prog, size_t *len, char *err,
                      size_t errlen)
{
    scmp_filter_ctx ctx;
    int rc, result = -1;

    ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        snprintf(err, errlen, "seccomp_init() failed");
        return -1;
    }
    /* Foreign ABIs (i386, x32) would dodge the x86_64 rules: kill. */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc < 0) {
        snprintf(err, errlen, "seccomp_attr_set(BADARCH) failed: %s",
                 strerror(-rc));
        goto out;
    }
    /* bwrap sets no_new_privs itself; the filter must not depend on it. */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    if (rc < 0) {
        snprintf(err, errlen, "seccomp_attr_set(NNP) failed: %s",
                 strerror(-rc));
        goto out;
    }
    if (add_rules(ctx, err, errlen) < 0)
        goto out;
    result = export_prog(ctx, prog, len, err, errlen);
out:
    seccomp_release(ctx);
    return result;
}
