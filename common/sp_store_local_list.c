/* sp_store_local_list.c: the local backend's reads of whole directories:
 * a bucket's listing (file names decoded back to keys, sorted, a page
 * after a key) and the start-up sweep of temporary files a killed PUT
 * left (see sp_store_local.c for the layout). */
#include "sp_objname.h"
#include "sp_pct.h"
#include "sp_store_local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ST_LOCAL_STALE_S 3600 /* a temporary file this old is a leftover */

/* Remove the temporary files of PUTs that a killed process left in the
 * bucket directory dfd (consumed): older than ST_LOCAL_STALE_S, so that
 * no PUT under way is touched. */
static void st_local_sweep_bucket(int dfd)
{
    DIR *d = fdopendir(dfd);
    struct dirent *e;
    struct stat sb;
    time_t now = time(NULL);

    if (d == NULL) {
        close(dfd);
        return;
    }
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, ".t", 2) == 0 &&
            fstatat(dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(sb.st_mode) && now - sb.st_mtime > ST_LOCAL_STALE_S)
            unlinkat(dfd, e->d_name, 0);
    closedir(d);
}

/* The sweep over every bucket of every subject under the store's root. */
void st_local_sweep(void)
{
    int root = open(st_local_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *subs = root < 0 ? NULL : fdopendir(root);
    struct dirent *s, *b;

    while (subs != NULL && (s = readdir(subs)) != NULL) {
        int sfd = s->d_name[0] == '.'
                      ? -1
                      : openat(root, s->d_name,
                               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *bk = sfd < 0 ? NULL : fdopendir(sfd);
        if (bk == NULL && sfd >= 0)
            close(sfd);
        while (bk != NULL && (b = readdir(bk)) != NULL) {
            int bfd =
                b->d_name[0] == '.'
                    ? -1
                    : openat(sfd, b->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (bfd >= 0)
                st_local_sweep_bucket(bfd);
        }
        if (bk != NULL)
            closedir(bk);
    }
    if (subs != NULL)
        closedir(subs);
    else if (root >= 0)
        close(root);
}

/* The key of the object file name in dfd into key (OBJ_KEY_MAX + 1);
 * 0, or -1 (not an object file). */
static int st_local_key_of(int dfd, const char *name, char *key)
{
    st_meta m;
    int fd;

    if (name[0] == 'h') {
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return -1;
        int rc =
            st_local_read_head(fd, &m, key, OBJ_KEY_MAX + 1) == SP_OK ? 0 : -1;
        close(fd);
        return rc;
    }
    if (name[0] != 'o')
        return -1;
    return pct_decode(name + 1, strlen(name + 1), 0, key, OBJ_KEY_MAX + 1) > 0
               ? 0
               : -1;
}

static int st_local_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every key of the directory dfd with prefix, after after, into *keys
 * (sorted; the caller frees each and the array). -1 on failure. */
static long st_local_keys(int dfd, const char *prefix, const char *after,
                          char ***keys)
{
    size_t n = 0, cap = 0, plen = strlen(prefix);
    char key[OBJ_KEY_MAX + 1], **v = NULL;
    int fd2 = dup(dfd);
    DIR *d = fd2 < 0 ? NULL : fdopendir(fd2);
    struct dirent *e;

    if (d == NULL) {
        if (fd2 >= 0)
            close(fd2);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (st_local_key_of(dfd, e->d_name, key) != 0 ||
            strncmp(key, prefix, plen) != 0 || strcmp(key, after) <= 0)
            continue;
        if (n == cap) {
            char **nv = realloc(v, (cap = cap ? cap * 2 : 256) * sizeof *v);
            if (nv == NULL)
                break;
            v = nv;
        }
        if ((v[n] = strdup(key)) != NULL)
            n++;
    }
    closedir(d);
    if (n > 0)
        qsort(v, n, sizeof *v, st_local_cmp);
    *keys = v;
    return (long)n;
}

sp_status st_local_list(const char *sub, const char *bucket, const char *prefix,
                        const char *after, size_t limit, st_list *out)
{
    int dfd = st_local_bucket_fd(sub, bucket, 0);
    char **keys = NULL;
    long n;
    sp_status st = SP_OK;

    if (dfd < 0)
        return errno == ENOENT ? SP_OK : st_local_errno(errno);
    n = st_local_keys(dfd, prefix, after, &keys);
    if (n < 0) {
        close(dfd);
        return SP_E_INTERNAL;
    }
    for (long i = 0; i < n; i++) {
        st_meta m;
        char name[ST_LOCAL_NAME];
        int fd;
        if (st != SP_OK || out->n >= limit) {
            out->truncated |= st == SP_OK;
            free(keys[i]);
            continue;
        }
        st_local_name(keys[i], name);
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 && st_local_read_head(fd, &m, NULL, 0) == SP_OK &&
            st_list_add(out, keys[i], &m) != 0)
            st = SP_E_INTERNAL;
        if (fd >= 0)
            close(fd);
        free(keys[i]);
    }
    free(keys);
    close(dfd);
    return st;
}
