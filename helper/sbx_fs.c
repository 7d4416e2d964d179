/*
 * sbx_fs.c — the sandbox's directory on the host: creation, the workspace
 * tmpfs, and removal that never follows a link planted by sandboxed code.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbx_priv.h"

#define RM_MAX_DEPTH 64

int sbx_fs_valid_id(const char *id)
{
    size_t i;

    for (i = 0; id[i]; i++) {
        char c = id[i];

        if (i >= SBX_ID_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return i > 0;
}

int sbx_fs_prepare(const char *dir, const char *workspace, uint64_t disk_mb,
                   uid_t uid, gid_t gid, char *err, size_t errlen)
{
    char opts[128];

    /*
     * 0711: bwrap runs as the unprivileged host user and resolves the
     * workspace by path, so it must be able to traverse (not list) here.
     */
    if (mkdir(dir, 0711) < 0 || chmod(dir, 0711) < 0) {
        snprintf(err, errlen, "mkdir(\"%s\") failed: %s", dir, strerror(errno));
        return -1;
    }
    if (mkdir(workspace, 0700) < 0) {
        snprintf(err, errlen, "mkdir(\"%s\") failed: %s", workspace,
                 strerror(errno));
        return -1;
    }
    /*
     * A tmpfs of disk_mb is the hard workspace cap: a full workspace is
     * ENOSPC inside and never fills the host disk. nosuid/nodev: nothing
     * written by sandboxed code may gain privilege if ever used outside.
     * nr_inodes bounds the kernel memory that empty files can pin.
     */
    snprintf(opts, sizeof(opts),
             "size=%" PRIu64 "m,nr_inodes=%" PRIu64 ",mode=0755,uid=%u,gid=%u",
             disk_mb, disk_mb * 256 < 16384 ? 16384 : disk_mb * 256,
             (unsigned)uid, (unsigned)gid);
    if (mount("sandpipe-ws", workspace, "tmpfs", MS_NOSUID | MS_NODEV, opts) <
        0) {
        snprintf(err, errlen, "mount(\"%s\") failed: %s", workspace,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* Remove name in dirfd and everything below it, on dev only, no links. */
static int rm_at(int dirfd, const char *name, dev_t dev, int depth)
{
    struct dirent *de;
    struct stat st;
    int fd, result = 0;
    DIR *d;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -1 : 0;
    if (st.st_dev != dev || depth > RM_MAX_DEPTH)
        return -1; /* a mount still in place, or absurd nesting */
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (rm_at(fd, de->d_name, dev, depth + 1) < 0)
            result = -1;
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        result = -1;
    return result;
}

int sbx_fs_remove(const char *dir)
{
    /* The overlay before the disk its upper layer is on (mounts a
     * template's sandbox had before its directory became a tmpfs). */
    static const char *const mounts[] = {"root", "lower", "disk", "workspace"};
    char path[4096];
    struct stat st;
    size_t m;
    int i;

    /*
     * Detach: a process that still holds a file open cannot keep the
     * directory from going. UMOUNT_NOFOLLOW: never unmount through a link.
     * Loop in case something was mounted more than once.
     */
    /* A template sandbox's directory is a tmpfs holding its mounts: one
     * lazy unmount detaches the whole tree. */
    for (i = 0; i < 4; i++)
        if (umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
            break;
    for (m = 0; m < sizeof mounts / sizeof mounts[0]; m++) {
        snprintf(path, sizeof path, "%s/%s", dir, mounts[m]);
        for (i = 0; i < 8; i++)
            if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                break;
    }
    if (lstat(dir, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    return rm_at(AT_FDCWD, dir, st.st_dev, 0);
}

int sbx_fs_reap(const char *state_dir)
{
    char path[4096];
    struct dirent *de;
    int count = 0, failed = 0;
    DIR *d;

    snprintf(path, sizeof(path), "%s/sandboxes", state_dir);
    d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);

        /* A disk image a stopped helper had not unlinked yet (sbx_root.c). */
        if (n > 4 && strcmp(de->d_name + n - 4, ".img") == 0) {
            snprintf(path, sizeof(path), "%s/sandboxes/%s", state_dir,
                     de->d_name);
            unlink(path);
            continue;
        }
        if (!sbx_fs_valid_id(de->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/sandboxes/%s", state_dir, de->d_name);
        if (sbx_fs_remove(path) < 0)
            failed = 1;
        else
            count++;
    }
    closedir(d);
    return failed ? -1 : count;
}

int sbx_fs_memfd(const char *name, const void *data, size_t len)
{
    int fd = memfd_create(name, MFD_CLOEXEC);

    if (fd < 0)
        return -1;
    if (write(fd, data, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int sbx_rm_tree(const char *path)
{
    char out[512];
    char *argv[] = {"/bin/rm", "-rf",        "--one-file-system",
                    "--",      (char *)path, NULL};

    return sbx_run_capture(argv, out, sizeof out) == 0 ? 0 : -1;
}
