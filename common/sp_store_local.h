/* sp_store_local.h: what the two files of the local backend share
 * (common/sp_store_local.c: layout, names, objects; sp_store_local_list.c:
 * listings and the start-up sweep). Not for other modules: they use the
 * backend through sp_store.h. */
#ifndef SP_STORE_LOCAL_H
#define SP_STORE_LOCAL_H

#include "sp_store.h"

#define ST_LOCAL_HEAD    4096 /* the header before an object's body */
#define ST_LOCAL_NAME    256  /* NAME_MAX + 1 */
#define ST_LOCAL_DIR_MAX 4096

/* The store's root directory (st_local_init). */
extern char st_local_dir[ST_LOCAL_DIR_MAX];

/* The file name of key into out (ST_LOCAL_NAME bytes). */
void st_local_name(const char *key, char *out);

/* The bucket's directory opened (O_DIRECTORY, no link followed); with
 * make, made first. -1 with errno. */
int st_local_bucket_fd(const char *sub, const char *bucket, int make);

/* errno as the store's status. */
sp_status st_local_errno(int e);

/* The meta (and key, when key is not NULL) of the open object file fd. */
sp_status st_local_read_head(int fd, st_meta *m, char *key, size_t keylen);

/* The backend's list (sp_store_local_list.c). */
sp_status st_local_list(const char *sub, const char *bucket, const char *prefix,
                        const char *after, size_t limit, st_list *out);

/* Remove leftover temporary files of every bucket (at start). */
void st_local_sweep(void);

#endif
