/*
 * sbx_root.c — the root file system of a sandbox made from a template.
 *
 * A template is a read-only tree on the host whose files are owned by the
 * ids they have inside (root is 0, the user 1000). A sandbox sees it as
 * its root, writes anywhere, and keeps its writes on a disk of its own:
 *
 *   <dir>            a small tmpfs holding all of what follows
 *   <dir>.img        sparse ext4 image of disk_mb (mkfs at create),
 *                    unlinked once its loop device holds it
 *   <dir>/disk       that image, loop-mounted (nosuid, nodev)
 *   <dir>/disk/upper the overlay's writable layer; disk/work its workdir
 *   <dir>/lower      the template, idmapped through the sandbox's user
 *                    namespace (detached again once the overlay holds it)
 *   <dir>/root       overlay: lower read-only, upper on the disk
 *
 * The user namespace is made here, before bwrap, with a range mapping:
 * ids 0..SBX_RANGE_IDS-3 inside are host ids range..range+SBX_RANGE_IDS-3,
 * and nobody/nogroup (65534, 65535) are the last two. The idmapped mount
 * shows the template's 0 as the host's `range`, so inside the sandbox root
 * owns /usr and can apt-get install, while on the host every file the
 * sandbox writes belongs to its own unprivileged range. bwrap joins the
 * namespace with --userns as host uid `range` (its owner), which gives
 * bwrap the capabilities it needs there and nowhere else.
 *
 * Filling the disk is ENOSPC inside; nothing of it counts against the
 * memory limit. Removal (sbx_fs_remove) detaches the directory's tmpfs
 * with everything on it in one lazy unmount; the loop device is
 * autoclear, so it goes (and the image's blocks with it) once the disk's
 * last user is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/loop.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbx_priv.h"

#define LOOP_TRIES 16

static int fail(char *err, size_t errlen, const char *what, const char *arg)
{
    snprintf(err, errlen, "%s(\"%s\") failed: %s", what, arg ? arg : "",
             strerror(errno));
    return -1;
}

static int write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = write(fd, data, strlen(data));
    close(fd);
    return n == (ssize_t)strlen(data) ? 0 : -1;
}

int sbx_userns_make(uid_t range, char *err, size_t errlen)
{
    char path[64], map[160];
    int go[2], ready[2], ns = -1;
    pid_t pid;
    char c = 0;

    if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
        return fail(err, errlen, "pipe2", NULL);
    pid = fork();
    if (pid == 0) {
        /* The namespace's owner is this euid: bwrap, run as the same host
         * uid, may then join it with every capability inside it. */
        close(go[1]);
        close(ready[0]);
        if (setresgid(range, range, range) < 0 ||
            setresuid(range, range, range) < 0 || unshare(CLONE_NEWUSER) < 0)
            _exit(1);
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    if (pid > 0 && read(ready[0], &c, 1) == 1) {
        snprintf(map, sizeof map, "0 %u %u\n65534 %u 2\n", (unsigned)range,
                 SBX_RANGE_IDS - 2, (unsigned)range + SBX_RANGE_IDS - 2);
        snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
        if (write_file(path, map) == 0) {
            snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
            if (write_file(path, map) == 0) {
                snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
                ns = open(path, O_RDONLY | O_CLOEXEC);
            }
        }
    }
    if (ns < 0)
        fail(err, errlen, pid < 0 ? "fork" : "user namespace", NULL);
    close(go[1]); /* the child exits; the fd keeps the namespace */
    close(ready[0]);
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    return ns;
}

int sbx_idmap_mount(const char *src, const char *dst, int userns, int ro,
                    char *err, size_t errlen)
{
    struct mount_attr a = {0};
    int t, rc;

    t = (int)syscall(SYS_open_tree, AT_FDCWD, src,
                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (t < 0)
        return fail(err, errlen, "open_tree", src);
    a.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                 (ro ? MOUNT_ATTR_RDONLY : 0);
    a.userns_fd = (uint64_t)userns;
    rc = (int)syscall(SYS_mount_setattr, t, "", AT_EMPTY_PATH | AT_RECURSIVE,
                      &a, sizeof a);
    if (rc == 0)
        rc = (int)syscall(SYS_move_mount, t, "", AT_FDCWD, dst,
                          MOVE_MOUNT_F_EMPTY_PATH);
    if (rc < 0)
        fail(err, errlen, "idmapped mount", src);
    close(t);
    return rc < 0 ? -1 : 0;
}

int sbx_disk_make(const char *img, uint64_t mb, uid_t owner, char *err,
                  size_t errlen)
{
    char size[32], root_owner[64], out[512];
    int fd = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd < 0)
        return fail(err, errlen, "open", img);
    if (ftruncate(fd, (off_t)(mb * 1024 * 1024)) < 0) {
        close(fd);
        return fail(err, errlen, "ftruncate", img);
    }
    close(fd);
    snprintf(size, sizeof size, "%" PRIu64 "M", mb);
    snprintf(root_owner, sizeof root_owner,
             "lazy_itable_init=1,nodiscard,root_owner=%u:%u", (unsigned)owner,
             (unsigned)owner);
    /* No journal: the disk dies with its sandbox. No reserved blocks: the
     * sandbox's root may use all of it, and nobody else may. */
    char *argv[] = {SBX_MKFS_PATH, "-q",           "-F", "-t", "ext4",
                    "-O",          "^has_journal", "-m", "0",  "-E",
                    root_owner,    (char *)img,    size, NULL};
    if (sbx_run_capture(argv, out, sizeof out) != 0) {
        out[strcspn(out, "\n")] = '\0';
        snprintf(err, errlen, "mke2fs of the sandbox disk failed: %s", out);
        return -1;
    }
    return 0;
}

/* Attach img to a free loop device (autoclear: it detaches with the last
 * unmount). Returns the loop device's fd, its name in dev. */
static int loop_attach(const char *img, char *dev, size_t devlen, char *err,
                       size_t errlen)
{
    struct loop_config cfg = {0};
    int ctl, imgfd, lfd = -1, i;

    imgfd = open(img, O_RDWR | O_CLOEXEC);
    if (imgfd < 0)
        return fail(err, errlen, "open", img);
    ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) {
        close(imgfd);
        return fail(err, errlen, "open", "/dev/loop-control");
    }
    cfg.fd = (uint32_t)imgfd;
    /* Direct I/O: the disk's pages are cached once (by the ext4 above the
     * loop device), not twice (again for the image file below it). */
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
    for (i = 0; i < LOOP_TRIES && lfd < 0; i++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);

        if (n < 0)
            break;
        snprintf(dev, devlen, "/dev/loop%d", n);
        lfd = open(dev, O_RDWR | O_CLOEXEC);
        if (lfd < 0 && errno == ENOENT &&
            mknod(dev, S_IFBLK | 0660, makedev(7, (unsigned)n)) == 0)
            lfd = open(dev, O_RDWR | O_CLOEXEC);
        if (lfd >= 0 && ioctl(lfd, LOOP_CONFIGURE, &cfg) < 0) {
            close(lfd); /* taken by another thread meanwhile: next */
            lfd = -1;
            if (errno != EBUSY)
                break;
        }
    }
    if (lfd < 0)
        fail(err, errlen, "loop device for", img);
    close(ctl);
    close(imgfd);
    return lfd;
}

int sbx_disk_mount(const char *img, const char *dst, char *err, size_t errlen)
{
    char dev[64];
    int lfd = loop_attach(img, dev, sizeof dev, err, errlen), rc;

    if (lfd < 0)
        return -1;
    /* noinit_itable: no kernel thread zeroes the inode tables mkfs left
     * uninitialised (it would write, and cache, most of an idle disk). */
    rc = mount(dev, dst, "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME,
               "noinit_itable");
    if (rc < 0)
        fail(err, errlen, "mount", dst);
    close(lfd); /* autoclear: without the mount, the device is freed now */
    return rc;
}

int sbx_overlay_mount(const char *lower, const char *disk, const char *dst,
                      char *err, size_t errlen)
{
    char opts[3 * 4096 + 64];

    if (strpbrk(lower, ",:") || strpbrk(disk, ",:")) {
        snprintf(err, errlen, "overlay: a path holds ',' or ':'");
        return -1;
    }
    /* userxattr: the overlay keeps its marks (an opaque directory) as
     * user.overlay.* xattrs, which the sandbox's own user namespace can
     * read and write: a snapshot of the layer is packed and unpacked
     * there (sbx_tree.c), never with the host's capabilities. */
    snprintf(opts, sizeof opts,
             "lowerdir=%s,upperdir=%s/upper,workdir=%s/work,userxattr", lower,
             disk, disk);
    if (mount("sandpipe-root", dst, "overlay", MS_NOSUID | MS_NODEV, opts) < 0)
        return fail(err, errlen, "overlay mount", dst);
    return 0;
}

/* A new directory with owner and mode; one that exists is left as it is
 * (never chown or chmod a path a template may have made a link). */
static int mkdir_own(const char *path, mode_t mode, uid_t owner, char *err,
                     size_t errlen)
{
    if (mkdir(path, mode) < 0)
        return errno == EEXIST ? 0 : fail(err, errlen, "mkdir", path);
    if (lchown(path, owner, owner) < 0 || chmod(path, mode) < 0)
        return fail(err, errlen, "chown", path);
    return 0;
}

/* A snapshot's layer unpacked onto the new disk as the sandbox's root
 * (its user namespace: its own ids, nothing of the host's). */
static int root_layer(sbx_sandbox *s, const char *upper, int archive,
                      char *err, size_t errlen)
{
    sbx_tree t = {.archive = archive, .userns = s->userns, .uid = 0,
                  .layer = 1, .unpack = 1};
    int rc;

    t.dir = open(upper, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (t.dir < 0)
        return fail(err, errlen, "open", upper);
    rc = sbx_tree_run(&t, err, errlen);
    close(t.dir);
    return rc;
}

/* The disk and the overlay of a sandbox made from a template. */
static int root_overlay(sbx_sandbox *s, const sbx_root *root, uint64_t disk_mb,
                        char *err, size_t errlen)
{
    char *img = NULL, *disk = NULL, *lower = NULL, *upper = NULL, *work = NULL;
    int rc = -1;

    /* The image beside the directory (not in its tmpfs): unlinked once
     * the loop device holds it, so nothing is left to remove at the end
     * and its blocks are freed when the device goes. */
    if (asprintf(&img, "%s.img", s->dir) < 0 ||
        asprintf(&disk, "%s/disk", s->dir) < 0 ||
        asprintf(&lower, "%s/lower", s->dir) < 0 ||
        asprintf(&upper, "%s/disk/upper", s->dir) < 0 ||
        asprintf(&work, "%s/disk/work", s->dir) < 0) {
        snprintf(err, errlen, "asprintf() failed");
        goto out;
    }
    if (mkdir(disk, 0700) < 0 || mkdir(lower, 0700) < 0 ||
        mkdir(s->root, 0755) < 0) {
        fail(err, errlen, "mkdir", s->dir);
        goto out;
    }
    rc = sbx_disk_make(img, disk_mb, s->uid, err, errlen);
    if (rc == 0)
        rc = sbx_disk_mount(img, disk, err, errlen);
    unlink(img);
    if (rc < 0)
        goto out;
    rc = -1;
    /* upper is the root directory as the sandbox sees it: root's, 0755. */
    if (mkdir_own(upper, 0755, s->uid, err, errlen) < 0 ||
        mkdir_own(work, 0700, 0, err, errlen) < 0)
        goto out;
    if (root->has_layer && root_layer(s, upper, root->layer_fd, err, errlen) < 0)
        goto out;
    if (sbx_idmap_mount(root->rootfs, lower, s->userns, 1, err, errlen) < 0)
        goto out;
    rc = sbx_overlay_mount(lower, disk, s->root, err, errlen);
    /* The overlay keeps its own reference to the layer. */
    umount2(lower, MNT_DETACH | UMOUNT_NOFOLLOW);
out:
    free(img), free(disk), free(lower), free(upper), free(work);
    return rc;
}

int sbx_root_prepare(sbx_sandbox *s, const sbx_root *root, uint64_t disk_mb,
                     char *err, size_t errlen)
{
    char *ws = NULL;
    int rc;

    if (mkdir(s->dir, 0711) < 0 || chmod(s->dir, 0711) < 0)
        return fail(err, errlen, "mkdir", s->dir);
    /* Everything the sandbox mounts lies in a small tmpfs on its
     * directory, so one lazy unmount of the directory detaches it all at
     * once (sbx_fs_remove): one wait for the kernel instead of one per
     * mount. */
    if (mount("sandpipe-sbx", s->dir, "tmpfs", MS_NOSUID | MS_NODEV,
              "size=64k,nr_inodes=64,mode=0711") < 0)
        return fail(err, errlen, "mount", s->dir);
    s->userns = sbx_userns_make(s->uid, err, errlen);
    if (s->userns < 0)
        return -1;
    if (root->in_place) {
        if (mkdir(s->root, 0755) < 0)
            return fail(err, errlen, "mkdir", s->root);
        rc = sbx_idmap_mount(root->rootfs, s->root, s->userns, 0, err, errlen);
    } else {
        rc = root_overlay(s, root, disk_mb, err, errlen);
    }
    if (rc < 0)
        return -1;
    /* /workspace, the user's, as in every sandbox (made in the upper layer
     * when the template has none). */
    if (asprintf(&ws, "%s/workspace", s->root) < 0)
        return fail(err, errlen, "asprintf", NULL);
    rc = mkdir_own(ws, 0755, s->uid + SBX_SANDBOX_UID, err, errlen);
    free(ws);
    return rc;
}

int sbx_passwd_lookup(const char *root, const char *who, sbx_user *u)
{
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC), fd, found = -1;
    char line[1024], *f[7];
    FILE *pw;

    if (rfd < 0)
        return -1;
    /* Inside the root: a link the sandbox made cannot lead to the host's. */
    fd = (int)syscall(SYS_openat2, rfd, "etc/passwd", &how, sizeof how);
    close(rfd);
    pw = fd < 0 ? NULL : fdopen(fd, "r");
    while (pw && found < 0 && fgets(line, sizeof line, pw)) {
        char *p = line;
        int n = 0;

        line[strcspn(line, "\n")] = '\0';
        while (n < 7 && (f[n] = strsep(&p, ":")) != NULL)
            n++;
        if (n == 7 && (strcmp(f[0], who) == 0 || strcmp(f[2], who) == 0)) {
            u->uid = (uint32_t)strtoul(f[2], NULL, 10);
            u->gid = (uint32_t)strtoul(f[3], NULL, 10);
            snprintf(u->name, sizeof u->name, "%s", f[0]);
            snprintf(u->home, sizeof u->home, "%s", f[5]);
            found = 0;
        }
    }
    if (pw)
        fclose(pw);
    return found;
}
