/* hd_pool_named.c: ready sandboxes for "create" (POST /sandboxes), so
 * that making one is not on the caller's time. SP_POOL_NAMED sandboxes of
 * SP_POOL_TEMPLATE (SP_DEFAULT_TEMPLATE when empty) with the default
 * limits and no network are kept made; a create that asks for exactly
 * that takes one: it gets the create's owner, env and timeout
 * (hd_sandbox_adopt) and is answered at once with its own id (made with
 * it, its directory and cgroups are named by it: the handler lists that
 * id for the owner instead of the one it proposed), and another is made
 * on a worker. One made from a
 * version of its template that a rebuild has replaced is ended instead of
 * taken. Like hd_pool.c: main thread only; ready sandboxes are listed only
 * in helper:<id>:sbxs. */
#include "hd.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_log.h"

#include <stdlib.h>
#include <string.h>

#define HD_NP_RETRY_MS 2000

static hd_sandbox *hd_np; /* ready, newest first */
static int hd_np_n, hd_np_making, hd_np_stopped;
static long long hd_np_retry_ms;

static const char *hd_np_template(void)
{
    const char *t = cfg_str(CFG_SP_POOL_TEMPLATE);

    return t && *t ? t : cfg_str(CFG_SP_DEFAULT_TEMPLATE);
}

/* 1 if the create job asks for what the pool holds. */
static int hd_np_matches(const hd_job *job, const char *tname)
{
    const cJSON *a = job->args;
    sbx_limits d;

    hd_default_limits(&d);
    return strcmp(tname, hd_np_template()) == 0 &&
           !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "network")) &&
           hd_arg_int(a, "memory_mb", 0) == (long long)d.memory_mb &&
           hd_arg_int(a, "disk_mb", 0) == (long long)d.disk_mb &&
           hd_arg_int(a, "pids", 0) == (long long)d.pids &&
           hd_arg_int(a, "cpus_milli", 0) == cfg_int(CFG_SP_SANDBOX_CPUS);
}

static void hd_np_made(hd_sandbox *s, const sbx_limits *lim, void *arg,
                       const char *err)
{
    (void)lim;
    (void)arg;
    hd_np_making--;
    if (s == NULL) {
        log_warn("the pool of named sandboxes could not make one: %s", err);
        hd_np_retry_ms = hd_now_ms() + HD_NP_RETRY_MS;
    } else if (hd_np_stopped) {
        hd_sandbox_end(s, "helper stopped");
    } else {
        s->next = hd_np;
        hd_np = s;
        hd_np_n++;
    }
}

void hd_np_fill(void)
{
    const char *tname = hd_np_template();
    char id[SP_ID_SIZE];
    sbx_limits lim;
    hd_tpl *tpl = NULL;

    if (hd_np_stopped || hd_np_making > 0 || hd_now_ms() < hd_np_retry_ms ||
        hd_np_n >= cfg_int(CFG_SP_POOL_NAMED))
        return;
    hd_default_limits(&lim);
    if ((strcmp(tname, "host") != 0 &&
         (tpl = hd_tpl_load(tname, "pool")) == NULL) ||
        id_generate_sandbox(id, sizeof id) != 0 ||
        hd_sandbox_make(id, "pool", &lim, 0, NULL, 0, tpl, hd_np_made, NULL) !=
            0) {
        hd_tpl_free(tpl); /* no template (yet), or the helper is full */
        hd_np_retry_ms = hd_now_ms() + HD_NP_RETRY_MS;
        return;
    }
    hd_np_making++;
}

/* A ready one of the template's current version, taken; NULL if none. */
static hd_sandbox *hd_np_take(void)
{
    while (hd_np != NULL) {
        hd_sandbox *s = hd_np;
        cJSON *m = s->tpl ? hd_tpl_meta(s->tpl->name) : NULL;
        const char *v = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(m, "version"));
        int stale = s->tpl && (v == NULL || strcmp(v, s->tpl->version) != 0);

        cJSON_Delete(m);
        hd_np = s->next;
        hd_np_n--;
        if (!stale)
            return s;
        s->next = hd_sandboxes; /* ends as every other one */
        hd_sandboxes = s;
        hd_sandbox_end(s, "its template was rebuilt");
    }
    return NULL;
}

void hd_op_create_pooled(hd_sandbox *none, hd_job *job)
{
    const char *tname;
    sbx_limits lim = {0};
    hd_sandbox *s;

    if (hd_create_args(job, &lim, &tname) != 0)
        return;
    if (hd_np_matches(job, tname) && (s = hd_np_take()) != NULL) {
        hd_sandbox_adopt(s, job, &lim);
        hd_np_fill();
        return;
    }
    hd_op_create(none, job);
}

int hd_np_drain(void)
{
    int n = 0;

    hd_np_stopped = 1;
    while (hd_np != NULL) {
        hd_sandbox *s = hd_np;

        hd_np = s->next;
        hd_np_n--;
        s->next = hd_sandboxes;
        hd_sandboxes = s;
        hd_sandbox_end(s, "helper stopped");
        n++;
    }
    return n;
}
