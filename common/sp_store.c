/* sp_store.c: the choice of the storage backend (SP_STORAGE_URL) and what
 * every backend shares: subject directories, lists. */
#include "sp_store.h"
#include "sp_auth.h"
#include "sp_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const st_backend *st_backend_chosen;

int st_init(char *err, size_t errlen)
{
    const char *url = cfg_str(CFG_SP_STORAGE_URL);
    char dir[4200];
    int rc;

    if (url[0] == '\0') {
        snprintf(dir, sizeof dir, "%s/storage",
                 cfg_str(CFG_SP_STATE_DIR)[0] ? cfg_str(CFG_SP_STATE_DIR)
                                              : "state");
        rc = st_local_init(dir, err, errlen);
        st_backend_chosen = &st_local_backend;
    } else if (strncmp(url, "file://", 7) == 0) {
        if (url[7] != '/') {
            snprintf(err, errlen,
                     "SP_STORAGE_URL: file:// needs an "
                     "absolute path");
            return -1;
        }
        rc = st_local_init(url + 7, err, errlen);
        st_backend_chosen = &st_local_backend;
    } else if (strncmp(url, "s3://", 5) == 0) {
        rc = st_s3_init(url + 5, err, errlen);
        st_backend_chosen = &st_s3_backend;
    } else {
        snprintf(err, errlen,
                 "SP_STORAGE_URL: must be file:///path or "
                 "s3://bucket[/prefix]");
        return -1;
    }
    if (rc != 0)
        st_backend_chosen = NULL;
    return rc;
}

const st_backend *st_get(void)
{
    return st_backend_chosen;
}

void st_subject_dir(const char *sub, char out[ST_SUBDIR_SIZE])
{
    char hex[AUTH_SHA256_HEX_SIZE];

    auth_sha256_hex(sub, hex);
    memcpy(out, hex, ST_SUBDIR_SIZE - 1);
    out[ST_SUBDIR_SIZE - 1] = '\0';
}

int st_list_add(st_list *l, const char *key, const st_meta *m)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        st_entry *v;
        if (cap > ST_LIST_MAX * 4)
            return -1;
        v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].key = strdup(key);
    if (l->v[l->n].key == NULL)
        return -1;
    l->v[l->n].meta = *m;
    l->n++;
    return 0;
}

void st_list_free(st_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].key);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}
