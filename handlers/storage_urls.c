/* handlers/storage_urls.c: the storage family: URLs an import fetches into
 * a sandbox ({urls:[...], to}). Every URL is checked first (http or
 * https, every address public: sp_egress.h), then each is fetched into
 * the sandbox at to/<the URL's last path segment> by common/sp_urlcopy.c
 * (resolved again and pinned, no redirects, at most SPOOL_BODY_MAX
 * bytes), which the worker's URL inputs share. */
#include "storage.h"
#include "sp_egress.h"
#include "sp_urlcopy.h"

#include <stdio.h>
#include <string.h>

/* Check every URL first: 0, or -1 after having answered. */
static int stg_urls_check(http_req *r, const cJSON *urls)
{
    const cJSON *u;
    char pin[EGRESS_PIN_MAX];

    if (!cJSON_IsArray(urls) || cJSON_GetArraySize(urls) < 1 ||
        cJSON_GetArraySize(urls) > URLCOPY_MAX) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "urls",
                        "urls must be an array of 1 to %d URLs", URLCOPY_MAX);
        return -1;
    }
    cJSON_ArrayForEach(u, urls)
    {
        const char *rule = !cJSON_IsString(u)
                               ? "url_malformed"
                               : urlcopy_check(u->valuestring, pin, sizeof pin);
        if (rule != NULL) {
            http_send_error_rule(r, SP_E_INVALID_ARGUMENT, "urls", rule,
                                 "URL refused (%s)", rule);
            return -1;
        }
    }
    return 0;
}

/* The failure of fetching urls[i] into the sandbox. */
static void stg_fetch_failed(stg_progress *p, int i, const urlcopy_res *res,
                             const rpc_err *err)
{
    char msg[96];

    if (res->fail == URLCOPY_REFUSED) {
        snprintf(msg, sizeof msg, "urls[%d]: URL refused (%s)", i, res->rule);
        stg_progress_fail(p, SP_E_INVALID_ARGUMENT, "urls", msg);
    } else if (res->fail == URLCOPY_TOO_LARGE) {
        snprintf(msg, sizeof msg,
                 "urls[%d]: the body is over the file limit (64 MiB)", i);
        stg_progress_fail(p, SP_E_PAYLOAD_TOO_LARGE, "urls", msg);
    } else if (res->fail == URLCOPY_FETCH) {
        if (res->status > 0)
            snprintf(msg, sizeof msg,
                     "urls[%d] could not be fetched (HTTP %ld)", i,
                     res->status);
        else
            snprintf(msg, sizeof msg,
                     "urls[%d] could not be fetched (no answer)", i);
        stg_progress_fail(p, SP_E_BAD_GATEWAY, "urls", msg);
    } else
        stg_progress_fail_rpc(p, err, "to");
}

void stg_import_urls(http_req *r, const char *helper, const cJSON *urls,
                     const char *to)
{
    const cJSON *u;
    cJSON *out, *files;
    char name[URLCOPY_NAME_MAX], path[4096 + 300];
    stg_progress p;
    int i = 0;

    if (stg_urls_check(r, urls) != 0)
        return;
    out = cJSON_CreateObject();
    files = cJSON_AddArrayToObject(out, "files");
    stg_progress_start(&p, r, (size_t)cJSON_GetArraySize(urls));
    cJSON_ArrayForEach(u, urls)
    {
        urlcopy_res res;
        rpc_err err;
        cJSON *o;
        urlcopy_name(u->valuestring, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", to, name);
        if (urlcopy_import(helper, r->params[0], u->valuestring, path, &res,
                           &err) != 0) {
            stg_fetch_failed(&p, i, &res, &err);
            goto out;
        }
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "url", u->valuestring);
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddNumberToObject(o, "size", (double)res.got);
        cJSON_AddItemToArray(files, o);
        stg_progress_step(&p, path, res.got);
        i++;
    }
    cJSON_AddNumberToObject(out, "bytes", (double)p.bytes);
    stg_progress_done(&p, out);
out:
    cJSON_Delete(out);
}
