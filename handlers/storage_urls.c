/* handlers/storage_urls.c: the storage family: URLs an import fetches into
 * a sandbox ({urls:[...], to}). Each is http or https, resolved once and
 * refused unless every address is public (common/sp_egress.c: the ranges
 * the sandboxes' egress filter rejects, and this host's own), fetched
 * pinned to the address checked, without following redirects, streamed
 * into a spool file up to SPOOL_BODY_MAX bytes, and written into the
 * sandbox by its helper at to/<the URL's last path segment>. */
#include "storage.h"
#include "sp_egress.h"
#include "sp_helper.h"
#include "sp_outhttp.h"
#include "sp_spool.h"

#include <stdio.h>
#include <string.h>

#define STG_URLS_MAX    16
#define STG_URL_LEN     2048
#define STG_URL_TIMEOUT 30
/* One URL's whole fetch at most: 64 MiB at a modest 1 MiB/s and some. */
#define STG_URL_TOTAL 120

typedef struct stg_fetch {
    const char *url, *pin;
    int fd;
    long long got;
    long status;
    int too_large, failed;
} stg_fetch;

static int stg_fetch_sink(void *ctx, const char *buf, size_t len)
{
    stg_fetch *f = ctx;

    if (f->got + (long long)len > (long long)SPOOL_BODY_MAX) {
        f->too_large = 1;
        return -1;
    }
    f->got += (long long)len;
    return spool_write_all(f->fd, buf, len);
}

/* hc_file_write_with's fill: the URL's body into the spool file. */
static long long stg_fetch_fill(void *ctx, int fd)
{
    stg_fetch *f = ctx;
    oh_req q = {0};
    oh_resp resp;

    q.method = "GET";
    q.url = f->url;
    q.pin = f->pin;
    q.sink = stg_fetch_sink;
    q.sink_ctx = f;
    q.timeout_s = STG_URL_TIMEOUT;
    q.total_s = STG_URL_TOTAL;
    q.tls_verify = 1;
    f->fd = fd;
    f->failed = oh_perform(&q, &resp) != 0;
    f->status = resp.status;
    if (f->failed || f->too_large || resp.status < 200 || resp.status > 299)
        return -1;
    return f->got;
}

/* The file name a URL gives: its last path segment, else "download". */
static void stg_url_name(const char *url, char *out, size_t outlen)
{
    const char *p = strstr(url, "://"), *end, *slash;

    p = p ? p + 3 : url;
    end = p + strcspn(p, "?#");
    slash = memrchr(p, '/', (size_t)(end - p));
    if (slash == NULL || end - slash - 1 <= 0 || end - slash - 1 >= 256 ||
        (end - slash - 1 <= 2 && slash[1] == '.')) {
        snprintf(out, outlen, "download");
        return;
    }
    snprintf(out, outlen, "%.*s", (int)(end - slash - 1), slash + 1);
}

/* Check every URL first: 0, or -1 after having answered. */
static int stg_urls_check(http_req *r, const cJSON *urls)
{
    const cJSON *u;
    char pin[EGRESS_PIN_MAX];

    if (!cJSON_IsArray(urls) || cJSON_GetArraySize(urls) < 1 ||
        cJSON_GetArraySize(urls) > STG_URLS_MAX) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "urls",
                        "urls must be an array of 1 to %d URLs", STG_URLS_MAX);
        return -1;
    }
    cJSON_ArrayForEach(u, urls)
    {
        const char *rule =
            !cJSON_IsString(u) || strlen(u->valuestring) > STG_URL_LEN
                ? "url_malformed"
                : egress_url(u->valuestring, pin, sizeof pin);
        if (rule != NULL) {
            http_send_error_rule(r, SP_E_INVALID_ARGUMENT, "urls", rule,
                                 "URL refused (%s)", rule);
            return -1;
        }
    }
    return 0;
}

/* The failure of fetching f into the sandbox. */
static void stg_fetch_failed(stg_progress *p, const stg_fetch *f,
                             const rpc_err *err)
{
    if (f->too_large)
        stg_progress_fail(p, SP_E_PAYLOAD_TOO_LARGE, "urls",
                          "a URL's body is over the file limit (64 MiB)");
    else if (f->failed || f->status != 0)
        stg_progress_fail(p, SP_E_BAD_GATEWAY, "urls",
                          "a URL could not be fetched");
    else
        stg_progress_fail_rpc(p, err, "to");
}

void stg_import_urls(http_req *r, const char *helper, const cJSON *urls,
                     const char *to)
{
    const cJSON *u;
    cJSON *out, *files;
    char pin[EGRESS_PIN_MAX], name[256], path[4096 + 300];
    stg_progress p;

    if (stg_urls_check(r, urls) != 0)
        return;
    out = cJSON_CreateObject();
    files = cJSON_AddArrayToObject(out, "files");
    stg_progress_start(&p, r, (size_t)cJSON_GetArraySize(urls));
    cJSON_ArrayForEach(u, urls)
    {
        stg_fetch f = {u->valuestring, pin, -1, 0, 0, 0, 0};
        rpc_reply rep;
        rpc_err err;
        cJSON *o;
        /* Resolved again here, and pinned to what this check saw. */
        if (egress_url(u->valuestring, pin, sizeof pin) != NULL) {
            stg_progress_fail(&p, SP_E_INVALID_ARGUMENT, "urls",
                              "URL refused (url_not_public)");
            goto out;
        }
        stg_url_name(u->valuestring, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", to, name);
        if (hc_file_write_with(helper, r->params[0], path, stg_fetch_fill, &f,
                               &rep, &err) != 0) {
            stg_fetch_failed(&p, &f, &err);
            goto out;
        }
        rpc_reply_free(&rep);
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "url", u->valuestring);
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddNumberToObject(o, "size", (double)f.got);
        cJSON_AddItemToArray(files, o);
        stg_progress_step(&p, path, f.got);
    }
    cJSON_AddNumberToObject(out, "bytes", (double)p.bytes);
    stg_progress_done(&p, out);
out:
    cJSON_Delete(out);
}
