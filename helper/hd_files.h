/* hd_files.h: what the two files of the helper's files API share
 * (hd_files.c: the operations; hd_files_path.c: how a client's path
 * becomes a root directory and a path below it, confined). Private to
 * them; hd.h declares what the rest of the helper calls. */
#ifndef HD_FILES_H
#define HD_FILES_H

#include "hd.h"

/* A client's path, resolved (hd_path_open). */
typedef struct hd_path {
    char norm[HD_PATH_MAX]; /* normalised absolute path inside the sandbox */
    const char *rel;        /* part below the root, "." for the root */
    int root;               /* O_PATH fd of the root directory */
} hd_path;

/* openat2() of path below dirfd with flags | O_CLOEXEC, resolved in
 * dirfd as its root (RESOLVE_IN_ROOT, no other mount, no magic links).
 * An fd, or -1 (errno). */
int hd_openat2(int dirfd, const char *path, int flags);

/* Map a client path to a root fd (p->root, the caller closes it) and a
 * relative path. Returns 0, or -1 after having replied with the error. */
int hd_path_open(hd_sandbox *s, hd_job *job, const char *path, hd_path *p);

/* Give a new file or directory (name in dirfd; "" for dirfd itself) to
 * uid. A failure leaves it root's: logged, not an error. */
void hd_chown(int dirfd, const char *name, uid_t uid);

/* The host uid of the sandbox's user (1000 inside), whose the files the
 * API writes are. */
uid_t hd_owner(const hd_sandbox *s);

#endif
