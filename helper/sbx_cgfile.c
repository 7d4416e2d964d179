/*
 * sbx_cgfile.c — small file helpers for the cgroup code: cgroupfs files
 * are tiny, read and written whole, and every fd is closed before return.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbx_cgroup_int.h"

long long sbx_cg_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sbx_cg_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

int sbx_cg_write_file(const char *path, const char *val, char *err,
                      size_t errlen)
{
    size_t len = strlen(val);
    int fd, result = -1;

    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "open(\"%s\") failed: %s", path, strerror(errno));
        return -1;
    }
    if (write(fd, val, len) != (ssize_t)len) {
        snprintf(err, errlen, "write(\"%s\", \"%s\") failed: %s", path, val,
                 strerror(errno));
        goto out;
    }
    result = 0;
out:
    close(fd);
    return result;
}

/* Read a small file into buf (NUL-terminated). */
int sbx_cg_read_small(const char *path, char *buf, size_t len)
{
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* The value after "key " in a flat-keyed file (cpu.stat, memory.events). */
int sbx_cg_read_key(const char *path, const char *key, uint64_t *val)
{
    char buf[4096], *p;
    size_t klen = strlen(key);

    if (sbx_cg_read_small(path, buf, sizeof(buf)) < 0)
        return -1;
    for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ') {
            *val = strtoull(p + klen + 1, NULL, 10);
            return 0;
        }
    }
    return -1;
}

int sbx_cg_read_u64(const char *path, uint64_t *val)
{
    char buf[64], *end;

    if (sbx_cg_read_small(path, buf, sizeof(buf)) < 0)
        return -1;
    errno = 0;
    *val = strtoull(buf, &end, 10);
    return errno || end == buf ? -1 : 0;
}

int sbx_cg_read_pids(const char *path, pid_t *pids, size_t max, size_t *n)
{
    FILE *f = fopen(path, "re");
    long v;

    *n = 0;
    if (!f)
        return -1;
    while (fscanf(f, "%ld", &v) == 1)
        if (*n < max && v > 0)
            pids[(*n)++] = (pid_t)v;
    fclose(f);
    return 0;
}
