/* sp_spool.h: the spool, where file bodies wait between a handler and the
 * sandbox helper, so that they never pass through Redis (docs/DESIGN.md
 * §5.1).
 *
 * The spool is one directory, $SP_STATE_DIR/spool, made by the launcher:
 * owned by the service user the handlers run as, mode 0700; the helper
 * reaches it as root. A spool file is named SPOOL_PREFIX + 22 random
 * base64url characters (132 bits, id_generate), made with O_EXCL and
 * O_NOFOLLOW, and every open is relative to the directory's fd. Both
 * sides treat a name from the other as hostile: spool_open takes only a
 * name of exactly that pattern (so no "/" and no ".."), never follows a
 * link, and takes only a regular file with one link owned by the
 * directory's owner (so nothing planted there, a FIFO, a symlink or a hard
 * link to a file of someone else, is ever read or written).
 *
 * A write (file_write): the handler makes a spool file, writes the body,
 * and sends the job {spool, len}; the helper opens it, checks its size
 * against len, removes it and copies it into the sandbox's file in chunks.
 * A read (file_read): the handler makes an empty spool file and sends its
 * name; the helper copies the sandbox's file into it and answers with the
 * size; the handler reads it back and removes it. Whoever consumes a file
 * removes it, and the handler removes its own once the call is over,
 * answered or not. A file nobody consumed (a handler or helper killed
 * half-way) is swept by age: the helper removes spool files older than
 * SPOOL_ORPHAN_S (far beyond any file job's deadline) every minute. */
#ifndef SP_SPOOL_H
#define SP_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

#include "sp_id.h"

#define SPOOL_SUBDIR    "spool" /* under SP_STATE_DIR */
#define SPOOL_PREFIX    "spl_"
#define SPOOL_NAME_SIZE (sizeof SPOOL_PREFIX - 1 + ID_RANDOM_CHARS + 1)
#define SPOOL_BODY_MAX  ((size_t)64 * 1024 * 1024) /* largest body, bytes */
#define SPOOL_ORPHAN_S  300 /* a spool file older than this is an orphan */

/* The spool directory of this process ($SP_STATE_DIR/spool, after
 * cfg_load), opened once (O_RDONLY|O_DIRECTORY|O_NOFOLLOW) and kept; safe
 * from any thread. Returns the fd (never to be closed), or -1 if it cannot
 * be opened (logged; tried again on the next call). */
int spool_dir(void);

/* 1 if name is exactly a spool name (SPOOL_PREFIX and 22 base64url
 * characters), else 0. NULL is not. */
int spool_name_valid(const char *name);

/* Make a new, empty spool file in dirfd (O_RDWR, mode 0600, O_CREAT |
 * O_EXCL | O_NOFOLLOW) under a fresh name written to name (namelen >=
 * SPOOL_NAME_SIZE). Returns its fd (the caller closes it and removes the
 * file), or -1 with errno. */
int spool_create(int dirfd, char *name, size_t namelen);

/* Open the spool file name of dirfd with flags (O_RDONLY or O_WRONLY;
 * O_NOFOLLOW, O_NONBLOCK, O_NOCTTY and O_CLOEXEC are added), refusing
 * anything but a regular file with one link owned by the directory's
 * owner. *size gets its size. Returns the fd (caller closes), or -1 with
 * errno: EINVAL for a name that is not a spool name, ELOOP for a link,
 * EPERM for a file that is refused, or open's own. */
int spool_open(int dirfd, const char *name, int flags, off_t *size);

/* Remove spool file name from dirfd (nothing if name is not a spool
 * name). Returns 0, or -1 with errno (ENOENT: already gone). */
int spool_remove(int dirfd, const char *name);

/* Write the n bytes of p to fd. Returns 0, or -1 with errno. */
int spool_write_all(int fd, const void *p, size_t n);

/* Read n bytes from offset 0 of fd into p. Returns 0, or -1 with errno
 * (EIO if the file is shorter). */
int spool_read_all(int fd, void *p, size_t n);

/* Copy up to max bytes from in (at its offset) to out (at its offset) in
 * chunks, through the kernel where it can (sendfile), never holding a
 * whole body in memory. Returns the bytes copied (fewer than max only at
 * the end of in), or -1 with errno (out's ENOSPC is kept). */
long long spool_copy(int in, int out, size_t max);

/* Remove the spool files of dirfd last modified more than max_age_s ago
 * (names that are not spool names are left alone; at most 10000 entries
 * are looked at per call). Returns how many were removed. */
int spool_sweep(int dirfd, long long max_age_s);

#endif
