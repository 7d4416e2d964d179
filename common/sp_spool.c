/* sp_spool.c: the spool of file bodies between handlers and the helper
 * (sp_spool.h). */
#include "sp_spool.h"
#include "sp_config.h"
#include "sp_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPOOL_CHUNK       ((size_t)1 << 20) /* bytes per sendfile call */
#define SPOOL_COPY_BUF    65536 /* the read/write fallback's buffer */
#define SPOOL_SWEEP_LOOKS 10000

static pthread_mutex_t spool_lock = PTHREAD_MUTEX_INITIALIZER;
static int spool_fd = -1;

int spool_dir(void)
{
    static int logged; /* a failure is logged once, not per request */
    char path[PATH_MAX];
    const char *state = cfg_str(CFG_SP_STATE_DIR);
    int fd, len;

    pthread_mutex_lock(&spool_lock);
    fd = spool_fd;
    if (fd < 0) {
        len = snprintf(path, sizeof path, "%s/%s", state ? state : "",
                       SPOOL_SUBDIR);
        if (state != NULL && state[0] != '\0' && len < (int)sizeof path)
            fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        else
            errno = EINVAL; /* SP_STATE_DIR empty or too long */
        if (fd < 0 && !logged) {
            log_error("open(\"%s\") failed: %s", path, strerror(errno));
            logged = 1;
        }
        spool_fd = fd;
    }
    pthread_mutex_unlock(&spool_lock);
    return fd;
}

int spool_name_valid(const char *name)
{
    size_t plen = sizeof SPOOL_PREFIX - 1;

    if (name == NULL || strncmp(name, SPOOL_PREFIX, plen) != 0 ||
        strlen(name) != SPOOL_NAME_SIZE - 1)
        return 0;
    for (const char *p = name + plen; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return 0;
    }
    return 1;
}

int spool_create(int dirfd, char *name, size_t namelen)
{
    int fd;

    if (id_generate(SPOOL_PREFIX, name, namelen) != 0) {
        errno = EINVAL;
        return -1;
    }
    fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                0600);
    return fd;
}

int spool_open(int dirfd, const char *name, int flags, off_t *size)
{
    struct stat dst, st;
    int fd;

    if (!spool_name_valid(name)) {
        errno = EINVAL;
        return -1;
    }
    if (fstat(dirfd, &dst) != 0)
        return -1;
    /* O_NONBLOCK: a FIFO planted under the name must not hang the opener
     * (it is refused below, as every other non-regular file). */
    fd = openat(dirfd, name,
                (flags & O_ACCMODE) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                    O_CLOEXEC);
    if (fd < 0)
        return -1;
    /* Checked on the open file itself: nothing can swap it in between. A
     * second link or another owner would be a file of someone else put
     * here to be read or overwritten. */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        st.st_uid != dst.st_uid) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    *size = st.st_size;
    return fd;
}

int spool_remove(int dirfd, const char *name)
{
    if (!spool_name_valid(name)) {
        errno = EINVAL;
        return -1;
    }
    return unlinkat(dirfd, name, 0);
}

int spool_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int spool_read_all(int fd, void *p, size_t n)
{
    char *c = p;
    size_t got = 0;

    while (got < n) {
        ssize_t r = pread(fd, c + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* The copy without sendfile: a small buffer, read then write. */
static long long spool_copy_rw(int in, int out, size_t max)
{
    char buf[SPOOL_COPY_BUF];
    size_t done = 0;

    while (done < max) {
        size_t want = max - done < sizeof buf ? max - done : sizeof buf;
        ssize_t r = read(in, buf, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        if (spool_write_all(out, buf, (size_t)r) != 0)
            return -1;
        done += (size_t)r;
    }
    return (long long)done;
}

long long spool_copy(int in, int out, size_t max)
{
    size_t done = 0;

    while (done < max) {
        size_t want = max - done < SPOOL_CHUNK ? max - done : SPOOL_CHUNK;
        ssize_t w = sendfile(out, in, NULL, want);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && done == 0 && (errno == EINVAL || errno == ENOSYS))
            return spool_copy_rw(in, out, max); /* a file without splice */
        if (w < 0)
            return -1;
        if (w == 0)
            break;
        done += (size_t)w;
    }
    return (long long)done;
}

int spool_sweep(int dirfd, long long max_age_s)
{
    time_t cutoff = time(NULL) - (time_t)max_age_s;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int removed = 0, looked = 0;
    struct dirent *de;
    DIR *d;

    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    while ((de = readdir(d)) != NULL && looked++ < SPOOL_SWEEP_LOOKS) {
        struct stat st;
        if (!spool_name_valid(de->d_name) ||
            fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            st.st_mtime >= cutoff)
            continue;
        if (unlinkat(dirfd, de->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}
