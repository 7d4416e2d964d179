/* hd_files.c: the files API inside a sandbox (read, write, list, tree,
 * mkdir, delete, stat, move), done by the helper as root and therefore built so
 * that nothing the code inside has made can lead it outside the sandbox.
 *
 * How a path is confined is hd_files_path.c's (its summary here): a
 * path is normalised lexically, then must lie in one of the sandbox's
 * writable roots: /workspace (the workspace tmpfs), /uploaded_files (a
 * directory of the workspace, linked at /uploaded_files inside) or /tmp
 * (the sandbox's private /tmp, reached through its PID 1's root). The rest
 * is resolved by openat2() with that root as the root directory
 * (RESOLVE_IN_ROOT: ".." and absolute symlinks stay inside it),
 * RESOLVE_NO_XDEV (no other mount is ever entered, so no symlink reaches
 * /proc, /dev or the host) and RESOLVE_NO_MAGICLINKS. Files are first
 * opened O_PATH and checked with fstat(): only regular files are read or
 * written and directories listed, so FIFOs, sockets and devices are never
 * opened for I/O and nothing blocks. New files and directories belong to
 * the sandbox's uid.
 *
 * File bodies never pass through Redis: a write's body and a read's bytes
 * are in a spool file the handler made (sp_spool.h), whose name the job
 * carries. The helper opens it as root before it takes the sandbox's
 * user, only by a name of the spool's pattern inside the spool directory,
 * never through a link, and copies between it and the sandbox's file in
 * chunks (sendfile), so a 64 MiB body is never held in memory. */
#include "hd_files.h"
#include "sp_log.h"
#include "sp_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HD_TREE_MAX_ENTRIES 10000
#define HD_TREE_MAX_DEPTH   16
#define HD_FILE_MAX         SPOOL_BODY_MAX
#define HD_SPOOL_SWEEP_MS   60000

static const char *hd_type_name(mode_t m)
{
    if (S_ISREG(m))
        return "file";
    if (S_ISDIR(m))
        return "directory";
    if (S_ISLNK(m))
        return "symlink";
    return "other";
}

/* The entry of name in dirfd (path dir inside the sandbox), st its
 * lstat: name, path, type, size, modified, and the mode's permission bits,
 * uid, gid, a symlink's target (E2B's EntryInfo is made of these). */
static cJSON *hd_entry(int dirfd, const char *dir, const char *name,
                       const struct stat *st)
{
    cJSON *o = cJSON_CreateObject();
    char full[HD_PATH_MAX * 2], target[HD_PATH_MAX];
    ssize_t n;
    snprintf(full, sizeof full, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/",
             name);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "path", full);
    cJSON_AddStringToObject(o, "type", hd_type_name(st->st_mode));
    cJSON_AddNumberToObject(o, "size", (double)st->st_size);
    cJSON_AddNumberToObject(o, "modified", (double)st->st_mtime);
    cJSON_AddNumberToObject(o, "mode", (double)(st->st_mode & 07777));
    cJSON_AddNumberToObject(o, "uid", (double)st->st_uid);
    cJSON_AddNumberToObject(o, "gid", (double)st->st_gid);
    if (S_ISLNK(st->st_mode) &&
        (n = readlinkat(dirfd, name, target, sizeof target - 1)) >= 0) {
        target[n] = '\0';
        cJSON_AddStringToObject(o, "target", target);
    }
    return o;
}

/* List dirfd (consumed) into arr; recurse into subdirectories (never
 * through symlinks) while depth > 1. *count bounds the total. */
static void hd_list(int dirfd, const char *path, int depth, cJSON *arr,
                    int *count)
{
    DIR *d = fdopendir(dirfd);
    struct dirent *de;

    if (d == NULL) {
        close(dirfd);
        return;
    }
    while ((de = readdir(d)) != NULL && *count < HD_TREE_MAX_ENTRIES) {
        struct stat st;
        cJSON *e;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        e = hd_entry(dirfd, path, de->d_name, &st);
        (*count)++;
        if (S_ISDIR(st.st_mode) && depth > 1) {
            int sub = openat(dirfd, de->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                hd_list(sub, cJSON_GetObjectItem(e, "path")->valuestring,
                        depth - 1, cJSON_AddArrayToObject(e, "children"),
                        count);
        }
        cJSON_AddItemToArray(arr, e);
    }
    closedir(d);
}

/* A regular file's bytes (fd O_PATH, st its stat) into the spool file
 * out; the answer carries their number. */
static void hd_file_bytes(hd_job *job, int fd, const struct stat *st, int out)
{
    char self[64];
    int rfd;
    long long got;
    cJSON *rep;

    if ((size_t)st->st_size > HD_FILE_MAX) {
        hd_reply_err(job->rid, SP_E_PAYLOAD_TOO_LARGE,
                     "file is larger than %zu bytes", HD_FILE_MAX);
        return;
    }
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    rfd =
        out < 0 ? -1 : open(self, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    /* Up to the size seen at the start: a file that grows meanwhile is
     * cut there, one that shrinks ends early. */
    got = rfd < 0 ? -1 : spool_copy(rfd, out, (size_t)st->st_size);
    if (rfd >= 0)
        close(rfd);
    if (got < 0) {
        log_warn("copying a file to the spool failed: %s", strerror(errno));
        hd_reply_err(job->rid, SP_E_INTERNAL, "could not read the file");
        return;
    }
    rep = cJSON_CreateObject();
    cJSON_AddStringToObject(rep, "type", "file");
    cJSON_AddNumberToObject(rep, "size", (double)got);
    hd_reply(job->rid, rep, NULL, 0);
}

static void hd_file_read(hd_sandbox *s, hd_job *job, hd_path *p, int depth,
                         int out)
{
    char self[64];
    struct stat st;
    int fd = hd_openat2(p->root, p->rel, O_PATH), rfd;
    cJSON *rep;

    if (fd < 0 || fstat(fd, &st) != 0) {
        hd_reply_err(job->rid, SP_E_NOT_FOUND, "no such file or directory");
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        int count = 0;
        snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
        rfd = open(self, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rep = cJSON_CreateObject();
        cJSON_AddStringToObject(rep, "path", p->norm);
        cJSON_AddStringToObject(rep, "type", "directory");
        if (rfd >= 0)
            hd_list(rfd, p->norm, depth, cJSON_AddArrayToObject(rep, "entries"),
                    &count);
        cJSON_AddBoolToObject(rep, "truncated", count >= HD_TREE_MAX_ENTRIES);
        hd_reply(job->rid, rep, NULL, 0);
        goto out;
    }
    if (depth > 0 && job->opn == HC_FILE_TREE) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "not a directory");
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT,
                     "not a regular file or directory");
        goto out;
    }
    hd_file_bytes(job, fd, &st, out);
out:
    if (fd >= 0)
        close(fd);
    (void)s;
}

/* Split p->rel into its parent (opened O_PATH) and last name. Creates
 * missing parents when mkparents. Returns the parent fd or -1 (replied). */
static int hd_parent(hd_sandbox *s, hd_job *job, hd_path *p, int mkparents,
                     const char **name)
{
    char dir[HD_PATH_MAX];
    char *slash;
    int fd;

    if (strcmp(p->rel, ".") == 0) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT,
                     "not allowed on a root directory");
        return -1;
    }
    snprintf(dir, sizeof dir, "%s", p->rel);
    slash = strrchr(dir, '/');
    *name = slash ? p->rel + (slash - dir) + 1 : p->rel;
    if (slash == NULL)
        return fcntl(p->root, F_DUPFD_CLOEXEC, 0);
    *slash = '\0';
    if (mkparents) {
        /* mkdir -p, one component at a time, each resolved in the root. */
        char *q = dir;
        for (;;) {
            char *next = strchr(q, '/');
            int d;
            if (next)
                *next = '\0';
            d = hd_openat2(p->root, dir, O_PATH | O_DIRECTORY);
            if (d < 0) {
                char *cut = strrchr(dir, '/');
                int parent =
                    cut ? (*cut = '\0',
                           hd_openat2(p->root, dir, O_PATH | O_DIRECTORY))
                        : fcntl(p->root, F_DUPFD_CLOEXEC, 0);
                const char *leaf = cut ? cut + 1 : dir;
                if (parent >= 0 && mkdirat(parent, leaf, 0755) == 0)
                    hd_chown(parent, leaf, hd_owner(s));
                if (parent >= 0)
                    close(parent);
                if (cut)
                    *cut = '/';
            } else {
                close(d);
            }
            if (!next)
                break;
            *next = '/';
            q = next + 1;
        }
    }
    fd = hd_openat2(p->root, dir, O_PATH | O_DIRECTORY);
    if (fd < 0)
        hd_reply_err(job->rid, SP_E_NOT_FOUND, "parent directory not found");
    return fd;
}

/* The body of a write into fd: from the spool file body (its length
 * checked by hd_spool_open), or the bytes of a write the helper makes
 * itself (job->data). Returns the bytes written, or -1 with errno. */
static long long hd_write_body(int fd, const hd_job *job, int body)
{
    long long len = hd_arg_int(job->args, "len", 0), n;

    if (job->data != NULL)
        return spool_write_all(fd, job->data, job->len) == 0
                   ? (long long)job->len
                   : -1;
    n = spool_copy(body, fd, (size_t)len);
    if (n >= 0 && n != len) {
        errno = EIO; /* the spool file shrank under us */
        return -1;
    }
    return n;
}

static void hd_file_write(hd_sandbox *s, hd_job *job, hd_path *p, int body)
{
    const char *name;
    int dir = hd_parent(s, job, p, 1, &name), fd = -1;
    long long n;
    struct stat st;
    cJSON *rep;

    if (dir < 0)
        return;
    fd = openat(dir, name,
                O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK |
                    O_NOCTTY | O_CLOEXEC,
                0644);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        hd_reply_err(job->rid,
                     errno == ENOSPC ? SP_E_INSUFFICIENT_STORAGE
                                     : SP_E_CONFLICT,
                     "cannot write here: %s",
                     fd < 0 ? strerror(errno) : "not a regular file");
        goto out;
    }
    hd_chown(fd, "", hd_owner(s));
    if ((n = hd_write_body(fd, job, body)) < 0) {
        hd_reply_err(
            job->rid,
            errno == ENOSPC ? SP_E_INSUFFICIENT_STORAGE : SP_E_INTERNAL,
            "write failed: %s",
            errno == ENOSPC ? "the sandbox's disk is full" : strerror(errno));
        /* A refused upload leaves nothing behind (a partial file would
         * keep the workspace full). */
        unlinkat(dir, name, 0);
        goto out;
    }
    rep = cJSON_CreateObject();
    cJSON_AddStringToObject(rep, "path", p->norm);
    cJSON_AddNumberToObject(rep, "size", (double)n);
    hd_reply(job->rid, rep, NULL, 0);
out:
    if (fd >= 0)
        close(fd);
    close(dir);
}

static void hd_file_mkdir(hd_sandbox *s, hd_job *job, hd_path *p)
{
    const char *name;
    int dir = hd_parent(s, job, p, 1, &name);
    cJSON *rep;

    if (dir < 0)
        return;
    struct stat st;
    if (mkdirat(dir, name, 0755) != 0 &&
        (errno != EEXIST || fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
         !S_ISDIR(st.st_mode))) {
        /* An existing directory is success; anything else there is not. */
        hd_reply_err(job->rid,
                     errno == ENOSPC ? SP_E_INSUFFICIENT_STORAGE
                                     : SP_E_CONFLICT,
                     "mkdir failed: %s",
                     errno == EEXIST || errno == 0 ? "a file is in the way"
                                                   : strerror(errno));
    } else {
        hd_chown(dir, name, hd_owner(s));
        rep = cJSON_CreateObject();
        cJSON_AddStringToObject(rep, "path", p->norm);
        hd_reply(job->rid, rep, NULL, 0);
    }
    close(dir);
}

/* Remove name in dirfd, recursing into real directories only. */
static int hd_remove(int dirfd, const char *name, int depth)
{
    struct stat st;
    int sub;
    DIR *d;
    struct dirent *de;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0);
    if (depth > 64)
        return -1;
    sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0 || (d = fdopendir(sub)) == NULL) {
        if (sub >= 0)
            close(sub);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            hd_remove(sub, de->d_name, depth + 1);
    }
    closedir(d);
    return unlinkat(dirfd, name, AT_REMOVEDIR);
}

static void hd_file_delete(hd_sandbox *s, hd_job *job, hd_path *p)
{
    const char *name;
    int dir = hd_parent(s, job, p, 0, &name), rc;
    int recursive =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(job->args, "recursive"));
    struct stat st;

    if (dir < 0)
        return;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        hd_reply_err(job->rid, SP_E_NOT_FOUND, "no such file or directory");
    } else {
        if (S_ISDIR(st.st_mode))
            rc = recursive ? hd_remove(dir, name, 0)
                           : unlinkat(dir, name, AT_REMOVEDIR);
        else
            rc = unlinkat(dir, name, 0);
        if (rc != 0)
            hd_reply_err(job->rid, SP_E_CONFLICT, "delete failed: %s",
                         errno == ENOTEMPTY
                             ? "directory is not empty (use recursive)"
                             : strerror(errno));
        else
            hd_reply(job->rid, cJSON_CreateObject(), NULL, 0);
    }
    close(dir);
}

/* The entry of p itself (a symlink is not followed). */
static void hd_file_stat(hd_sandbox *s, hd_job *job, hd_path *p)
{
    char parent[HD_PATH_MAX];
    const char *name, *slash = strrchr(p->norm, '/');
    struct stat st;
    int dir;

    snprintf(parent, sizeof parent, "%.*s",
             slash == p->norm ? 1 : (int)(slash - p->norm), p->norm);
    if (strcmp(p->rel, ".") == 0) { /* a root: /workspace, /tmp */
        if (fstatat(p->root, "", &st, AT_EMPTY_PATH) != 0)
            hd_reply_err(job->rid, SP_E_NOT_FOUND, "no such directory");
        else
            hd_reply(job->rid, hd_entry(p->root, parent, slash + 1, &st), NULL,
                     0);
        return;
    }
    if ((dir = hd_parent(s, job, p, 0, &name)) < 0)
        return;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        hd_reply_err(job->rid, SP_E_NOT_FOUND, "no such file or directory");
    else
        hd_reply(job->rid, hd_entry(dir, parent, name, &st), NULL, 0);
    close(dir);
}

/* Rename p to to (its parents made); both confined alike. The answer is
 * the destination's entry. */
static void hd_file_move(hd_sandbox *s, hd_job *job, hd_path *p, hd_path *to)
{
    const char *sname, *dname;
    int sdir = hd_parent(s, job, p, 0, &sname), ddir = -1;
    struct stat st;

    if (sdir < 0)
        return;
    if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        hd_reply_err(job->rid, SP_E_NOT_FOUND, "no such file or directory");
        goto out;
    }
    if ((ddir = hd_parent(s, job, to, 1, &dname)) < 0)
        goto out;
    if (renameat(sdir, sname, ddir, dname) != 0)
        hd_reply_err(job->rid,
                     errno == ENOSPC ? SP_E_INSUFFICIENT_STORAGE
                                     : SP_E_CONFLICT,
                     "move failed: %s", strerror(errno));
    else
        hd_file_stat(s, job, to);
out:
    if (ddir >= 0)
        close(ddir);
    close(sdir);
}

/* The spool file of job (args.spool), opened as root before the work
 * takes the sandbox's user: a write's body (its size must be args.len;
 * removed from the spool once open, the helper having consumed it) or a
 * read's answer file (emptied), into *fd. A write the helper makes
 * itself (job->data) and the other ops have none (*fd -1). Returns 0, or
 * -1 after replying. */
static int hd_spool_open(hd_job *job, int *fd)
{
    const char *name = hd_arg_str(job->args, "spool");
    long long len = hd_arg_int(job->args, "len", -1);
    int is_write = job->opn == HC_FILE_WRITE, dir;
    off_t size = 0;

    *fd = -1;
    if ((!is_write && job->opn != HC_FILE_READ) || job->data != NULL)
        return 0;
    if (is_write && (len < 0 || (size_t)len > HD_FILE_MAX)) {
        hd_reply_err(job->rid, SP_E_PAYLOAD_TOO_LARGE,
                     "file is larger than %zu bytes", HD_FILE_MAX);
        return -1;
    }
    if ((dir = spool_dir()) < 0) {
        hd_reply_err(job->rid, SP_E_UNAVAILABLE, "file spool unavailable");
        return -1;
    }
    /* The name is hostile: never logged, never used unless it is a spool
     * name, and only inside the spool directory (sp_spool.h). */
    *fd = spool_open(dir, name, is_write ? O_RDONLY : O_WRONLY, &size);
    if (*fd >= 0 && (is_write ? size != len : ftruncate(*fd, 0) != 0)) {
        close(*fd);
        *fd = -1;
        errno = EINVAL;
    }
    if (*fd < 0) {
        log_warn("job %s: spool file refused: %s", job->entry, strerror(errno));
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad spool file");
        return -1;
    }
    if (is_write)
        spool_remove(dir, name);
    return 0;
}

void hd_spool_tick(long long now_ms)
{
    static long long last;
    int dir, n;

    if (now_ms - last < HD_SPOOL_SWEEP_MS)
        return;
    last = now_ms;
    if ((dir = spool_dir()) >= 0 && (n = spool_sweep(dir, SPOOL_ORPHAN_S)) > 0)
        log_info("removed %d orphaned spool files", n);
}

/* file_move: the destination args.to is confined as the source p was
 * (its root opened as root), then both are used as the sandbox's user. */
static void hd_file_move_op(hd_sandbox *s, hd_job *job, hd_path *p)
{
    hd_path to;

    if (hd_path_open(s, job, hd_arg_str(job->args, "to"), &to) == 0) {
        hd_fs_as(s);
        hd_file_move(s, job, p, &to);
        hd_fs_as(NULL);
        close(to.root);
    }
    close(p->root);
}

/* Run the file op of job with the spool file body (-1: none). */
static void hd_file_op(hd_sandbox *s, hd_job *job, hd_path *p, int depth,
                       int body)
{
    switch (job->opn) {
    case HC_FILE_READ:
        hd_file_read(s, job, p, 1, body);
        break;
    case HC_FILE_TREE:
        hd_file_read(s, job, p, depth, -1);
        break;
    case HC_FILE_WRITE:
        hd_file_write(s, job, p, body);
        break;
    case HC_FILE_MKDIR:
        hd_file_mkdir(s, job, p);
        break;
    case HC_FILE_DELETE:
        hd_file_delete(s, job, p);
        break;
    case HC_FILE_STAT:
        hd_file_stat(s, job, p);
        break;
    default:
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "unknown file op");
        break;
    }
}

void hd_op_file(hd_sandbox *s, hd_job *job)
{
    const cJSON *jp = cJSON_GetObjectItemCaseSensitive(job->args, "path");
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(job->args, "depth");
    hd_path p;
    int depth = cJSON_IsNumber(jd) ? (int)jd->valuedouble : 1, body;

    if (depth < 1)
        depth = 1;
    if (depth > HD_TREE_MAX_DEPTH)
        depth = HD_TREE_MAX_DEPTH;
    if (!cJSON_IsString(jp) || hd_path_open(s, job, jp->valuestring, &p) != 0) {
        if (!cJSON_IsString(jp))
            hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "path is required");
        return;
    }
    if (job->opn == HC_FILE_MOVE) {
        hd_file_move_op(s, job, &p);
        return;
    }
    if (hd_spool_open(job, &body) != 0) {
        close(p.root);
        return;
    }
    /* From here on the file system sees the sandbox's user: permissions
     * are the sandbox's own, new files are its, and the sandbox's private
     * mounts (its /tmp belongs to its user namespace, where host root is
     * not mapped) accept the writes. The root fd above and the spool file
     * were opened as root. */
    hd_fs_as(s);
    hd_file_op(s, job, &p, depth, body);
    hd_fs_as(NULL);
    if (body >= 0)
        close(body);
    close(p.root);
}
