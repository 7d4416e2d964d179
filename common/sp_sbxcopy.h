/* sp_sbxcopy.h: copies between object storage (sp_store.h) and a sandbox
 * through the helper's file operations and the spool (sp_helper.h,
 * sp_spool.h), so that the helper never holds a storage credential. Used
 * by the storage family's import and export (handlers/storage_sandbox.c)
 * and by the worker's inputs and outputs steps (worker/wk_steps.c). A
 * file is at most SPOOL_BODY_MAX bytes. */
#ifndef SP_SBXCOPY_H
#define SP_SBXCOPY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "sp_rpc.h"
#include "sp_store.h"

#define SBXCOPY_MAX 1000 /* files in one copy */

/* Object key of sub's bucket (its meta m) into sandbox sbx (on helper) at
 * path. 0, or -1 with *st the store's failure, or *st SP_OK and *err the
 * helper's. */
int sbxcopy_import(const char *helper, const char *sbx, const char *sub,
                   const char *bucket, const char *key, const st_meta *m,
                   const char *path, sp_status *st, rpc_err *err);

/* The file at path of sandbox sbx (on helper) stored as key of sub's
 * bucket; *m gets the object's meta. Failures as sbxcopy_import's. */
int sbxcopy_export(const char *helper, const char *sbx, const char *sub,
                   const char *bucket, const char *key, const char *path,
                   st_meta *m, sp_status *st, rpc_err *err);

/* The regular files of a helper tree's entries arr (hc_file_tree),
 * depth first, into files (borrowed items, each with a string "path"),
 * *n counting; -1 when there are more than SBXCOPY_MAX or one is larger
 * than SPOOL_BODY_MAX. */
int sbxcopy_tree_files(const cJSON *arr, const cJSON **files, size_t *n);

#endif
