/* handlers/storage.c: the storage family (sp-storage): the route table
 * and main. What each route does is in storage_buckets.c,
 * storage_objects.c, storage_list.c and storage_presign.c (storage.h); the
 * backend is chosen once at start (common/sp_store.h). */
#include "storage.h"
#include "sp_log.h"

static const http_route stg_routes[] = {
    {"POST", "/buckets", stg_bucket_create, 1},
    {"GET", "/buckets", stg_bucket_list, 1},
    {"DELETE", "/buckets/*", stg_bucket_delete, 1},
    {"GET", "/buckets/*/objects", stg_list, 1},
    {"GET", "/buckets/*/tree", stg_tree, 1},
    {"POST", "/buckets/*/presign", stg_presign, 1},
    {"POST", "/sandboxes/*/files/import", stg_import, 1},
    {"POST", "/sandboxes/*/files/export", stg_export, 1},
    /* nginx sends /buckets/{name}/objects/{key} here (storage.conf): the
     * key is taken from the raw request URI, byte for byte. A presigned
     * URL is a credential too: these check one themselves (stg_target). */
    {"PUT", "/buckets/*/object", stg_object_put, 0},
    {"GET", "/buckets/*/object", stg_object_get, 0},
    {"HEAD", "/buckets/*/object", stg_object_head, 0},
    {"DELETE", "/buckets/*/object", stg_object_delete, 0},
};

static int stg_init(void)
{
    char err[512];

    if (st_init(err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    log_info("storage backend %s", st_get()->name);
    return 0;
}

int main(void)
{
    return http_main("storage", stg_routes,
                     sizeof stg_routes / sizeof stg_routes[0], stg_init);
}
