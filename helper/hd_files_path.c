/* hd_files_path.c: how the files API (hd_files.c) and file watches
 * (hd_watch.c) turn a client's path into something the helper, running as
 * root, may open: a root directory fd and a path below it that cannot
 * lead outside the sandbox.
 *
 * A path is normalised lexically ("a/../b", never above "/"), then must
 * lie in one of the sandbox's writable roots: /workspace (the workspace
 * tmpfs), /uploaded_files (a directory of the workspace) or /tmp (the
 * sandbox's private /tmp, reached through its PID 1's root); a template's
 * sandbox: any path of its overlay, /tmp through PID 1. The rest is
 * resolved by openat2() with that root as the root directory
 * (RESOLVE_IN_ROOT: ".." and absolute symlinks stay inside it),
 * RESOLVE_NO_XDEV (no other mount is ever entered, so no symlink reaches
 * /proc, /dev or the host) and RESOLVE_NO_MAGICLINKS. The roots are
 * opened as root; what lies below them is opened as the sandbox's user
 * (hd_fs_as). */
#include "hd_files.h"
#include "sbx_priv.h"
#include "sp_log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HD_RESOLVE (RESOLVE_IN_ROOT | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS)

static int hd_openat2_how(int dirfd, const char *path, int flags,
                          unsigned long long resolve)
{
    struct open_how how = {.flags = (unsigned long long)flags | O_CLOEXEC,
                           .resolve = resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int hd_openat2(int dirfd, const char *path, int flags)
{
    return hd_openat2_how(dirfd, path, flags, HD_RESOLVE);
}

int hd_open_beneath(int dirfd, const char *rel, int flags)
{
    return hd_openat2_how(dirfd, rel, flags,
                          RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                              RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS);
}

void hd_fs_as(const hd_sandbox *s)
{
    /* setfsuid is per thread; only the main thread does file work. The
     * sandbox's user (1000 inside): its own uid in the host view, its
     * range's 1001st in a template's sandbox. */
    uid_t u = s != NULL ? sbx_host_uid(s->sbx, 1000) : 0;

    syscall(SYS_setfsgid, u);
    syscall(SYS_setfsuid, u);
}

/* Lexical normalisation: "a/./b/../c" → "/workspace/a/c"; ".." never goes
 * above "/". Returns 0, or -1 if the path is empty or too long. */
static int hd_normalise(const char *in, char *out, size_t outlen)
{
    char tmp[HD_PATH_MAX];
    size_t o = 0;
    char *save = NULL, *tok;

    if (in == NULL || *in == '\0' || strlen(in) >= sizeof tmp - 12)
        return -1;
    snprintf(tmp, sizeof tmp, "%s%s", in[0] == '/' ? "" : "/workspace/", in);
    out[0] = '\0';
    for (tok = strtok_r(tmp, "/", &save); tok != NULL;
         tok = strtok_r(NULL, "/", &save)) {
        if (strcmp(tok, ".") == 0)
            continue;
        if (strcmp(tok, "..") == 0) {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            out[o] = '\0';
            continue;
        }
        if (o + strlen(tok) + 2 >= outlen)
            return -1;
        out[o++] = '/';
        strcpy(out + o, tok);
        o += strlen(tok);
    }
    if (o == 0)
        strcpy(out, "/");
    return 0;
}

/* Give a new file or directory to the sandbox's user. A failure leaves it
 * root's: readable inside, not writable; worth a log line, not an error. */
void hd_chown(int dirfd, const char *name, uid_t uid)
{
    if (fchownat(dirfd, name, uid, uid,
                 name[0] ? AT_SYMLINK_NOFOLLOW : AT_EMPTY_PATH) != 0)
        log_warn("fchownat(\"%s\") failed: %s", name, strerror(errno));
}

/* The host uid of the sandbox's user (1000 inside), whose the files the
 * API writes are. */
uid_t hd_owner(const hd_sandbox *s)
{
    return sbx_host_uid(s->sbx, 1000);
}

/* A template's sandbox: any absolute path, resolved in its overlay as the
 * host mounted it (without what bwrap mounts on it inside: /proc, /dev,
 * the generated /etc files), except /tmp, its own tmpfs, reached through
 * sp-init's root. No other mount is entered (RESOLVE_NO_XDEV). */
static int hd_path_in_root(hd_sandbox *s, hd_path *p)
{
    char where[64];
    int tmp = strncmp(p->norm, "/tmp", 4) == 0 &&
              (p->norm[4] == '\0' || p->norm[4] == '/');

    if (tmp) {
        p->rel = p->norm[4] == '\0' ? "." : p->norm + 5;
        snprintf(where, sizeof where, "/proc/%d/root/tmp",
                 (int)hd_init_pid(s->sbx));
    } else {
        p->rel = p->norm[1] == '\0' ? "." : p->norm + 1;
    }
    p->root = open(tmp ? where : sbx_root_path(s->sbx),
                   O_PATH | O_DIRECTORY | O_CLOEXEC);
    return p->root < 0 ? -1 : 0;
}

/* Map a client path to a root fd and a relative path. Returns 0, or -1
 * after having replied with the error. */
int hd_path_open(hd_sandbox *s, hd_job *job, const char *path, hd_path *p)
{
    static const struct {
        const char *prefix;
        int kind;
    } roots[] = {{"/workspace", 0}, {"/uploaded_files", 1}, {"/tmp", 2}};
    char where[HD_PATH_MAX + 64];
    size_t n = 0;
    int kind = -1;

    p->root = -1;
    if (hd_normalise(path, p->norm, sizeof p->norm) != 0) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad path");
        return -1;
    }
    if (s->tpl != NULL) {
        if (hd_path_in_root(s, p) == 0)
            return 0;
        hd_reply_err(job->rid, SP_E_UNAVAILABLE, "the sandbox is gone");
        return -1;
    }
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        n = strlen(roots[i].prefix);
        if (strncmp(p->norm, roots[i].prefix, n) == 0 &&
            (p->norm[n] == '\0' || p->norm[n] == '/')) {
            kind = roots[i].kind;
            break;
        }
    }
    if (kind < 0) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT,
                     "path must be inside /workspace, /uploaded_files or "
                     "/tmp");
        return -1;
    }
    p->rel = p->norm[n] == '\0' ? "." : p->norm + n + 1;
    if (kind == 0)
        snprintf(where, sizeof where, "%s", sbx_workspace_path(s->sbx));
    else if (kind == 1) {
        int ws =
            open(sbx_workspace_path(s->sbx), O_PATH | O_DIRECTORY | O_CLOEXEC);
        /* Made on first use, owned by the sandbox user. */
        if (ws >= 0 && mkdirat(ws, "uploaded_files", 0755) == 0)
            hd_chown(ws, "uploaded_files", hd_owner(s));
        if (ws >= 0)
            close(ws);
        snprintf(where, sizeof where, "%s/uploaded_files",
                 sbx_workspace_path(s->sbx));
    } else
        snprintf(where, sizeof where, "/proc/%d/root/tmp",
                 (int)hd_init_pid(s->sbx));
    /* O_NOFOLLOW: the workspace's uploaded_files may be a symlink made by
     * the code inside; it must be a real directory. */
    p->root = open(where, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (p->root < 0) {
        hd_reply_err(job->rid, SP_E_NOT_FOUND, "no such directory");
        return -1;
    }
    return 0;
}

int hd_dir_open(hd_sandbox *s, hd_job *job, const char *path, char *norm,
                size_t normlen)
{
    hd_path p;
    struct stat st;
    int fd;

    if (hd_path_open(s, job, path, &p) != 0)
        return -1;
    hd_fs_as(s);
    fd = hd_openat2(p.root, p.rel, O_PATH);
    hd_fs_as(NULL);
    close(p.root);
    if (fd < 0 || fstat(fd, &st) != 0) {
        hd_reply_err(job->rid, SP_E_NOT_FOUND, "no such directory");
    } else if (!S_ISDIR(st.st_mode)) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "not a directory");
    } else {
        snprintf(norm, normlen, "%s", p.norm);
        return fd;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

pid_t hd_init_pid(const sbx_sandbox *sbx)
{
    return sbx->init_pid;
}
