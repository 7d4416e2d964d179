/* hd_pool_named.c: ready sandboxes for "create" (POST /sandboxes), so
 * that making one is not on the caller's time. Two kinds, each its own
 * list: SP_POOL_NAMED sandboxes of SP_POOL_TEMPLATE (SP_DEFAULT_TEMPLATE
 * when empty) with the default limits and no network, and
 * SP_POOL_NAMED_NETWORK of the same with network: true and no egress
 * lists (slirp4netns started: the slow part of such a create, and E2B's
 * default). A create that asks for exactly one of those takes one: it gets the
 * create's owner, env and timeout (hd_sandbox_adopt) and is answered at once
 * with its own id (made with it, its directory and cgroups are named by it: the
 * handler lists that id for the owner instead of the one it proposed), and
 * another is made on a worker. One made from a version of its template that a
 * rebuild has replaced is ended instead of taken. Like hd_pool.c: main thread
 * only; ready sandboxes are listed only in helper:<id>:sbxs. */
#include "hd.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HD_NP_RETRY_MS 2000

/* The kinds: no network, network without lists. */
enum { HD_NP_NONE, HD_NP_NET, HD_NP_KINDS };

typedef struct hd_np_kind {
    hd_sandbox *ready; /* newest first */
    int n, making;
    long long retry_ms;
} hd_np_kind;

static hd_np_kind hd_np[HD_NP_KINDS];
static int hd_np_stopped;

static const char *hd_np_template(void)
{
    const char *t = cfg_str(CFG_SP_POOL_TEMPLATE);

    return t && *t ? t : cfg_str(CFG_SP_DEFAULT_TEMPLATE);
}

static long long hd_np_size(int kind)
{
    return cfg_int(kind == HD_NP_NET ? CFG_SP_POOL_NAMED_NETWORK
                                     : CFG_SP_POOL_NAMED);
}

/* The kind the create job asks for, or -1 if none the pool holds: the
 * pool's template, the default limits, and no network or network: true
 * (an egress policy object is made to measure). */
static int hd_np_kind_of(const hd_job *job, const char *tname)
{
    const cJSON *a = job->args;
    sbx_limits d;

    hd_default_limits(&d);
    if (strcmp(tname, hd_np_template()) != 0 ||
        cJSON_GetObjectItemCaseSensitive(a, "netpol") != NULL ||
        hd_arg_int(a, "memory_mb", 0) != (long long)d.memory_mb ||
        hd_arg_int(a, "disk_mb", 0) != (long long)d.disk_mb ||
        hd_arg_int(a, "pids", 0) != (long long)d.pids ||
        hd_arg_int(a, "cpus_milli", 0) != cfg_int(CFG_SP_SANDBOX_CPUS))
        return -1;
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "network"))
               ? HD_NP_NET
               : HD_NP_NONE;
}

static void hd_np_made(hd_sandbox *s, const sbx_limits *lim, void *arg,
                       const char *err)
{
    hd_np_kind *k = &hd_np[(int)(intptr_t)arg];

    (void)lim;
    k->making--;
    if (s == NULL) {
        log_warn("the pool of named sandboxes could not make one: %s", err);
        k->retry_ms = hd_now_ms() + HD_NP_RETRY_MS;
    } else if (hd_np_stopped) {
        hd_sandbox_end(s, "helper stopped");
    } else {
        s->next = k->ready;
        k->ready = s;
        k->n++;
    }
}

/* Ask for one more of kind, if it is short of one and none is being made. */
static void hd_np_fill_kind(int kind)
{
    hd_np_kind *k = &hd_np[kind];
    const char *tname = hd_np_template();
    char id[SP_ID_SIZE];
    sbx_limits lim;
    hd_tpl *tpl = NULL;

    if (k->making > 0 || hd_now_ms() < k->retry_ms || k->n >= hd_np_size(kind))
        return;
    hd_default_limits(&lim);
    if ((strcmp(tname, "host") != 0 &&
         (tpl = hd_tpl_load(tname, "pool")) == NULL) ||
        id_generate_sandbox(id, sizeof id) != 0 ||
        hd_sandbox_make(id, "pool", &lim, -1,
                        kind == HD_NP_NET ? &sbx_net_internet : NULL, NULL, 0,
                        tpl, hd_np_made, (void *)(intptr_t)kind) != 0) {
        hd_tpl_free(tpl); /* no template (yet), or the helper is full */
        k->retry_ms = hd_now_ms() + HD_NP_RETRY_MS;
        return;
    }
    k->making++;
}

void hd_np_fill(void)
{
    if (hd_np_stopped)
        return;
    for (int kind = 0; kind < HD_NP_KINDS; kind++)
        hd_np_fill_kind(kind);
}

/* A ready one of kind, of the template's current version, taken; NULL if
 * none. */
static hd_sandbox *hd_np_take(int kind)
{
    hd_np_kind *k = &hd_np[kind];

    while (k->ready != NULL) {
        hd_sandbox *s = k->ready;
        cJSON *m = s->tpl ? hd_tpl_meta(s->tpl->name) : NULL;
        const char *v = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(m, "version"));
        int stale = s->tpl && (v == NULL || strcmp(v, s->tpl->version) != 0);

        cJSON_Delete(m);
        k->ready = s->next;
        k->n--;
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
    int kind;

    if (hd_create_args(job, &lim, &tname) != 0)
        return;
    /* A snapshot's layer goes onto a new disk before its overlay is
     * mounted: never a ready sandbox. */
    if (hd_arg_str(job->args, "layer") == NULL &&
        (kind = hd_np_kind_of(job, tname)) >= 0 &&
        (s = hd_np_take(kind)) != NULL) {
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
    for (int kind = 0; kind < HD_NP_KINDS; kind++) {
        hd_np_kind *k = &hd_np[kind];

        while (k->ready != NULL) {
            hd_sandbox *s = k->ready;

            k->ready = s->next;
            k->n--;
            s->next = hd_sandboxes;
            hd_sandboxes = s;
            hd_sandbox_end(s, "helper stopped");
            n++;
        }
    }
    return n;
}
