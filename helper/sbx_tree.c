/*
 * sbx_tree.c — a directory of a sandbox packed into a tar archive, or an
 * archive unpacked into one (snapshots and workspaces, hd_tree.c).
 *
 * GNU tar does the format; this file decides who it runs as and what it
 * may reach. The directory comes as an fd the caller resolved inside the
 * sandbox (hd_dir_open: openat2 RESOLVE_IN_ROOT), never as a host path
 * built from a sandbox's name. One child, forked from a worker:
 *
 *   unpack only: a private mount namespace in which every mount is made
 *                read-only (mount_setattr AT_RECURSIVE), then a detached
 *                writable clone of the target directory (open_tree
 *                OPEN_TREE_CLONE) becomes the working directory: tar can
 *                write there and nowhere else, and ".." at the clone's
 *                root goes nowhere;
 *   then         the sandbox's identity: a template's sandbox joins its
 *                user namespace (setns) as the inside uid asked for (0
 *                for its writable layer, 1000 for its user's files), so
 *                capabilities hold only over the sandbox's own range of
 *                host ids; the host view runs as the sandbox's host uid;
 *                no_new_privs; only fds 0-2;
 *   tar          argv, no shell, the archive on stdin or stdout.
 *
 * The archive being unpacked is hostile (the sandbox's own user made it,
 * or storage was tampered with): tar strips leading "/" and refuses
 * members with "..", makes a symlink whose target is absolute or climbs
 * only after every other member (so nothing is written through it), and
 * the kernel refuses device nodes in a user namespace (only an overlay
 * whiteout, char 0/0, may be made there). Size is bounded by the disk it
 * lands on (the sandbox's disk_mb).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbx_priv.h"

#define SBX_TAR_PATH "/usr/bin/tar"

/* The archive's argv: a writable layer keeps owners, whiteouts (char 0/0
 * nodes, as they are) and opaque directories (the overlay's
 * user.overlay.opaque, sbx_overlay_mount's userxattr); a user's tree
 * takes the user's ownership on the way in. */
static char *const tar_pack_layer[] = {
    SBX_TAR_PATH, "--create", "--file=-", "--numeric-owner", "--xattrs",
    "--xattrs-include=user.overlay.opaque", "--one-file-system", ".", NULL};
static char *const tar_unpack_layer[] = {
    SBX_TAR_PATH, "--extract", "--file=-", "--numeric-owner",
    "--same-owner", "--xattrs", "--xattrs-include=user.overlay.opaque",
    "--warning=no-timestamp", NULL};
static char *const tar_pack_tree[] = {SBX_TAR_PATH,      "--create",
                                      "--file=-",        "--numeric-owner",
                                      "--one-file-system", ".",
                                      NULL};
static char *const tar_unpack_tree[] = {
    SBX_TAR_PATH, "--extract", "--file=-", "--no-same-owner",
    "--warning=no-timestamp", NULL};

/* In the child: a detached writable clone of dir (cloned first: a clone's
 * source must be in the caller's mount namespace), then a mount namespace
 * of its own where every mount is read-only. Returns the clone's fd (the
 * new working directory), or -1. */
static int tree_confine(int dir)
{
    struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
    struct mount_attr rw = {.attr_clr = MOUNT_ATTR_RDONLY};
    int t = (int)syscall(SYS_open_tree, dir, "",
                         AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
                             AT_RECURSIVE);

    if (t < 0 || syscall(SYS_mount_setattr, t, "",
                         AT_EMPTY_PATH | AT_RECURSIVE, &rw, sizeof rw) < 0)
        return -1;
    /* No propagation back to the host's namespace, and nothing of it
     * writable: only the clone, which is in no namespace's tree. */
    if (unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &ro,
                sizeof ro) < 0)
        return -1;
    return t;
}

/* The child: never returns. Only system calls between fork and exec. */
static void tree_child(const sbx_tree *t, int errfd)
{
    static char *const envp[] = {"LC_ALL=C", "PATH=/usr/bin:/bin", NULL};
    char *const *argv = t->unpack ? (t->layer ? tar_unpack_layer
                                              : tar_unpack_tree)
                                  : (t->layer ? tar_pack_layer : tar_pack_tree);
    int cwd = t->dir;

    if (t->unpack && (cwd = tree_confine(t->dir)) < 0)
        _exit(120);
    if (fchdir(cwd) < 0)
        _exit(121);
    if (dup2(t->archive, t->unpack ? 0 : 1) < 0 || dup2(errfd, 2) < 0)
        _exit(122);
    if (t->unpack) {
        int null = open("/dev/null", O_WRONLY);
        if (null < 0 || dup2(null, 1) < 0)
            _exit(122);
    } else {
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0)
            _exit(122);
    }
    /* Who it runs as: inside the sandbox's user namespace (ids are its
     * inside ids, capabilities reach its own range only), or its host
     * uid. */
    if (t->userns >= 0 && setns(t->userns, CLONE_NEWUSER) < 0)
        _exit(123);
    if (setgroups(0, NULL) < 0 || setresgid(t->uid, t->uid, t->uid) < 0 ||
        setresuid(t->uid, t->uid, t->uid) < 0)
        _exit(124);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        _exit(125);
    syscall(SYS_close_range, 3, ~0U, 0);
    umask(022);
    execve(SBX_TAR_PATH, argv, envp);
    _exit(127);
}

int sbx_tree_run(const sbx_tree *t, char *err, size_t errlen)
{
    char msg[512];
    size_t got = 0;
    ssize_t n;
    int p[2], status = 0;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe2() failed: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid == 0)
        tree_child(t, p[1]);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        snprintf(err, errlen, "fork() failed: %s", strerror(errno));
        return -1;
    }
    /* tar's complaints, the first of them kept for the answer. */
    while ((n = read(p[0], msg + got, sizeof msg - 1 - got)) != 0) {
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && (got += (size_t)n) == sizeof msg - 1) {
            char sink[4096]; /* the rest is read and dropped */
            while ((n = read(p[0], sink, sizeof sink)) > 0 ||
                   (n < 0 && errno == EINTR))
                ;
            break;
        }
    }
    msg[got] = '\0';
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    /* A pack's 1: a file changed while it was read (a running sandbox's
     * workspace); the archive is whole, with that file as tar read it. */
    if (WIFEXITED(status) &&
        (WEXITSTATUS(status) == 0 || (!t->unpack && WEXITSTATUS(status) == 1)))
        return 0;
    msg[strcspn(msg, "\n")] = '\0';
    if (WIFEXITED(status) && WEXITSTATUS(status) >= 120)
        snprintf(err, errlen, "tar could not be started (step %d)",
                 WEXITSTATUS(status));
    else
        snprintf(err, errlen, "tar failed: %s", msg[0] ? msg : "no message");
    return -1;
}
