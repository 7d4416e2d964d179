/* hd_sandbox.c: the helper's sandboxes: made (sbx_create) with one host
 * uid per slot, recorded in Redis (sbx:<id>, helper:<id>:sbxs), extended,
 * measured and ended. The records live on the helper's main thread (see
 * helperd.c); sbx_create and sbx_destroy run on a worker (hd_work.c), so
 * that making or ending one sandbox never holds up the others. */
#include "hd.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"
#include "sp_spool.h"
#include <fcntl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

hd_sandbox *hd_sandboxes;
static unsigned char hd_slots[HD_MAX_SLOTS];

hd_sandbox *hd_find(const char *id)
{
    for (hd_sandbox *s = hd_sandboxes; s != NULL; s = s->next) {
        if (strcmp(s->id, id) == 0)
            return s;
    }
    return NULL;
}

static int hd_slot_take(void)
{
    for (int i = 0; i < HD_MAX_SLOTS; i++) {
        if (!hd_slots[i]) {
            hd_slots[i] = 1;
            return i;
        }
    }
    return -1;
}

static void hd_record(const hd_sandbox *s, const sbx_limits *lim,
                      const cJSON *args)
{
    char k[RDS_KEY_MAX], created[RDS_NUM_SIZE], expires[RDS_NUM_SIZE],
        mem[RDS_NUM_SIZE], cpus[RDS_NUM_SIZE], pids[RDS_NUM_SIZE],
        disk[RDS_NUM_SIZE];
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(args, "metadata");
    char *mds = md ? cJSON_PrintUnformatted(md) : strdup("{}");

    key_of(k, sizeof k, KEY_SBX, s->id);
    snprintf(created, sizeof created, "%lld", s->created);
    snprintf(expires, sizeof expires, "%lld", s->expires_at);
    snprintf(mem, sizeof mem, "%llu", (unsigned long long)lim->memory_mb);
    snprintf(cpus, sizeof cpus, "%.3f", lim->cpus);
    snprintf(pids, sizeof pids, "%u", lim->pids);
    snprintf(disk, sizeof disk, "%llu", (unsigned long long)lim->disk_mb);
    hd_pub("HSET %s owner %s helper %s status running created %s expires_at %s "
           "memory_mb %s cpus %s pids %s disk_mb %s network %s metadata %s "
           "template %s public %s",
           k, s->owner, hd_helper_id, created, expires, mem, cpus, pids, disk,
           s->net.network ? "1" : "0", mds ? mds : "{}",
           s->tpl ? s->tpl->name : "host",
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(args, "public"))
               ? "1"
               : "0");
    free(mds);
    hd_egress_record(s);
}

/* A sandbox being made on a worker (hd_work.c). */
typedef struct hd_making {
    hd_work w;
    hd_sandbox *s; /* its record; s->sbx is set by the worker */
    sbx_limits lim;
    long long timeout;
    int layer; /* a snapshot's layer to unpack first, or -1 */
    hd_made_fn made;
    void *arg;
    char err[512];
    struct hd_making *next;
} hd_making;

/* The error of a create whose snapshot layer tar refused. */
static const char hd_err_layer[] = "the snapshot's archive was refused";

/* Sandboxes being made (their ids are taken). */
static hd_making *hd_makings;

static void hd_making_run(hd_work *w)
{
    hd_making *m = (hd_making *)w;
    hd_sandbox *s = m->s;
    sbx_root root = {s->tpl ? s->tpl->rootfs : NULL, 0, m->layer >= 0,
                     m->layer};

    if (sbx_create(s->id, &m->lim, &s->net, s->uid, s->uid,
                   s->tpl ? &root : NULL, &s->sbx, m->err, sizeof m->err) != 0)
        s->sbx = NULL;
    /* Its resolver's socket before any code runs in it (hd_egress.c). */
    if (s->sbx != NULL && s->net.resolver &&
        (s->dns_fd = sbx_net_dns_socket(s->sbx, m->err, sizeof m->err)) < 0) {
        sbx_destroy(s->sbx);
        s->sbx = NULL;
    }
}

int hd_sandbox_making_tpl(const char *name, const char *version)
{
    for (const hd_making *m = hd_makings; m != NULL; m = m->next)
        if (m->s->tpl && strcmp(m->s->tpl->name, name) == 0 &&
            (!version || strcmp(m->s->tpl->version, version) == 0))
            return 1;
    return 0;
}

/* Made (or not): listed in helper:<id>:sbxs before anything runs in it
 * (so that whoever finds this helper gone finds its executions, pooled
 * sandboxes' too), then handed to whoever asked. */
static void hd_making_done(hd_work *w)
{
    hd_making *m = (hd_making *)w, **pp;
    hd_sandbox *s = m->s;
    char hk[RDS_KEY_MAX];

    if (m->layer >= 0)
        close(m->layer);
    for (pp = &hd_makings; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    if (s->sbx == NULL) {
        log_error("sbx_create(%s) failed: %s", s->id, m->err);
        hd_slots[s->slot] = 0;
        cJSON_Delete(s->env);
        hd_tpl_free(s->tpl);
        netpol_free(&s->net);
        free(s);
        /* tar refused the snapshot's archive (sbx_tree.c): the caller's
         * input, not the helper's failure. */
        m->made(NULL, &m->lim, m->arg,
                strncmp(m->err, "tar failed", 10) == 0
                    ? hd_err_layer
                    : "could not create the sandbox");
        free(m);
        return;
    }
    s->created = hd_now_ms() / 1000;
    s->expires_at = s->created + m->timeout;
    s->memory_mb = m->lim.memory_mb;
    s->cpus = m->lim.cpus;
    if (s->dns_fd >= 0 && hd_egress_attach(s) != 0) {
        log_error("sandbox %s: the resolver could not take it: its DNS "
                  "is refused",
                  s->id);
        close(s->dns_fd);
        s->dns_fd = -1;
    }
    if (key_of(hk, sizeof hk, KEY_HELPER_SBXS, hd_helper_id) == 0)
        hd_pub("SADD %s %s", hk, s->id);
    m->made(s, &m->lim, m->arg, NULL);
    free(m);
}

static int hd_making_find(const char *id)
{
    for (const hd_making *m = hd_makings; m != NULL; m = m->next) {
        if (strcmp(m->s->id, id) == 0)
            return 1;
    }
    return 0;
}

/* The first host uid of a slot's ids: one uid in the host view, a
 * range of SBX_RANGE_IDS for a template (sp_config.h). */
_Static_assert(CFG_TPL_UID_SPAN / 4096 == SBX_RANGE_IDS,
               "a template slot's host uids are its sandbox's range");

static uid_t hd_slot_uid(int slot, int template)
{
    return template ? (uid_t)cfg_tpl_uid(slot)
                    : (uid_t)(cfg_int(CFG_SP_HELPER_UID) + slot);
}

/* The template's ENV under env, into s->env (replaced). */
static void hd_sandbox_env(hd_sandbox *s, const cJSON *env)
{
    cJSON_Delete(s->env);
    s->env = s->tpl ? cJSON_Duplicate(s->tpl->env, 1) : cJSON_CreateObject();
    for (const cJSON *it = cJSON_IsObject(env) ? env->child : NULL;
         it != NULL && s->env != NULL; it = it->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(s->env, it->string);
        cJSON_AddItemToObject(s->env, it->string, cJSON_Duplicate(it, 1));
    }
}

int hd_sandbox_make(const char *id, const char *owner, const sbx_limits *lim,
                    int layer, const sp_netpol *net, const cJSON *env,
                    long long timeout, hd_tpl *tpl, hd_made_fn made, void *arg)
{
    hd_making *m = calloc(1, sizeof *m);
    hd_sandbox *s = calloc(1, sizeof *s);

    if (m == NULL || s == NULL ||
        (net != NULL && netpol_copy(&s->net, net) != 0) ||
        (s->slot = hd_slot_take()) < 0) {
        if (s != NULL)
            netpol_free(&s->net);
        free(m);
        free(s);
        if (layer >= 0)
            close(layer);
        return -1;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->owner, sizeof s->owner, "%s", owner);
    s->tpl = tpl;
    s->uid = hd_slot_uid(s->slot, tpl != NULL);
    s->network = s->net.network;
    s->dns_fd = -1;
    hd_sandbox_env(s, env); /* the template's ENV under the sandbox's */
    m->w.run = hd_making_run;
    m->w.done = hd_making_done;
    m->s = s;
    m->lim = *lim;
    m->timeout = timeout;
    m->layer = layer;
    m->made = made;
    m->arg = arg;
    m->next = hd_makings;
    hd_makings = m;
    hd_work_submit(&m->w);
    return 0;
}

void hd_default_limits(sbx_limits *lim)
{
    lim->memory_mb = (uint64_t)cfg_int(CFG_SP_SANDBOX_MEMORY_MB);
    lim->disk_mb = (uint64_t)cfg_int(CFG_SP_SANDBOX_DISK_MB);
    lim->tmp_mb = (uint64_t)cfg_int(CFG_SP_SANDBOX_TMP_MB);
    lim->pids = (uint32_t)cfg_int(CFG_SP_SANDBOX_PIDS);
    lim->cpus = (double)cfg_int(CFG_SP_SANDBOX_CPUS) / 1000.0;
}

/* A named sandbox was made (or not) for the create job arg, which was
 * held: recorded and answered. */
static void hd_created(hd_sandbox *s, const sbx_limits *lim, void *arg,
                       const char *err)
{
    hd_job *job = arg;
    cJSON *rep;

    if (s == NULL) {
        hd_reply_err(job->rid,
                     err == hd_err_layer ? SP_E_INVALID_ARGUMENT
                                         : SP_E_UNAVAILABLE,
                     "%s", err);
    } else {
        s->next = hd_sandboxes;
        hd_sandboxes = s;
        hd_record(s, lim, job->args);
        hd_ports_add(s, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                            job->args, "public")));
        rep = cJSON_CreateObject();
        cJSON_AddStringToObject(rep, "id", s->id);
        hd_reply(job->rid, rep, NULL, 0);
    }
    hd_job_release(job);
}

void hd_sandbox_adopt(hd_sandbox *s, hd_job *job, const sbx_limits *lim)
{
    const cJSON *a = job->args;

    /* It keeps its id (its directory and cgroups are named by it): the
     * answer tells the handler, which lists that one for the owner. */
    snprintf(s->owner, sizeof s->owner, "%s", hd_arg_str(a, "owner"));
    hd_sandbox_env(s, cJSON_GetObjectItemCaseSensitive(a, "env"));
    s->created = hd_now_ms() / 1000;
    s->expires_at = s->created + hd_arg_int(a, "timeout", 300);
    job->held = 1; /* hd_created releases it */
    hd_created(s, lim, job, NULL);
}

int hd_create_args(hd_job *job, sbx_limits *lim, const char **tname)
{
    const char *id = hd_arg_str(job->args, "id");
    const cJSON *a = job->args;

    if (!id_valid_typed(id, "sbx_") || !id_valid(hd_arg_str(a, "owner"))) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad id or owner");
        return -1;
    }
    if (hd_find(id) != NULL || hd_making_find(id)) {
        hd_reply_err(job->rid, SP_E_CONFLICT, "sandbox exists");
        return -1;
    }
    lim->memory_mb = (uint64_t)hd_arg_int(a, "memory_mb", 512);
    lim->disk_mb = (uint64_t)hd_arg_int(a, "disk_mb", 512);
    lim->tmp_mb = (uint64_t)cfg_int(CFG_SP_SANDBOX_TMP_MB);
    lim->pids = (uint32_t)hd_arg_int(a, "pids", 256);
    lim->cpus = (double)hd_arg_int(a, "cpus_milli", 1000) / 1000.0;
    *tname = hd_arg_str(a, "template");
    if (*tname == NULL || !(*tname)[0])
        *tname = cfg_str(CFG_SP_DEFAULT_TEMPLATE);
    return 0;
}

/* The create job's egress policy: netpol, else network (true, false);
 * 0, or -1 after answering a bad one. */
static int hd_create_netpol(hd_job *job, sp_netpol *net)
{
    const cJSON *np = cJSON_GetObjectItemCaseSensitive(job->args, "netpol");
    char field[64], msg[256];

    if (np == NULL)
        np = cJSON_GetObjectItemCaseSensitive(job->args, "network");
    if (netpol_parse(np, net, field, sizeof field, msg, sizeof msg) != 0) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "%s: %s", field, msg);
        return -1;
    }
    return 0;
}

/* The create job's snapshot layer (args.layer, a spool file the handler
 * filled from storage): its fd, removed from the spool once open; -1 for
 * none; -2 after answering a bad one. */
static int hd_create_layer(hd_job *job, const hd_tpl *tpl)
{
    const char *name = hd_arg_str(job->args, "layer");
    int dir, fd;
    off_t size;

    if (name == NULL)
        return -1;
    if (tpl == NULL) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT,
                     "a snapshot needs a template's sandbox");
        return -2;
    }
    /* The name is hostile: only a spool name, inside the spool. */
    if ((dir = spool_dir()) < 0 ||
        (fd = spool_open(dir, name, O_RDONLY, &size)) < 0) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad spool file");
        return -2;
    }
    spool_remove(dir, name);
    return fd;
}

void hd_op_create(hd_sandbox *none, hd_job *job)
{
    const char *id = hd_arg_str(job->args, "id");
    const char *owner = hd_arg_str(job->args, "owner");
    const cJSON *a = job->args;
    sbx_limits lim = {0};
    sp_netpol net;
    const char *tname;
    hd_tpl *tpl = NULL;
    int layer;

    (void)none; /* made here, not found */
    if (hd_create_args(job, &lim, &tname) != 0 ||
        hd_create_netpol(job, &net) != 0)
        return;
    if (strcmp(tname, "host") != 0 &&
        (tpl = hd_tpl_load(tname, owner)) == NULL) {
        hd_reply_err(job->rid, SP_E_NOT_FOUND, "no template named %s", tname);
        goto out;
    }
    if ((layer = hd_create_layer(job, tpl)) == -2) {
        hd_tpl_free(tpl);
        goto out;
    }
    if (hd_sandbox_make(id, owner, &lim, layer, &net,
                        cJSON_GetObjectItemCaseSensitive(a, "env"),
                        hd_arg_int(a, "timeout", 300), tpl, hd_created,
                        job) != 0) {
        hd_tpl_free(tpl);
        hd_reply_err(job->rid, SP_E_UNAVAILABLE, "helper is full");
        goto out;
    }
    job->held = 1; /* answered by hd_created */
out:
    netpol_free(&net);
}

/* A sandbox being ended on a worker: its processes, mounts, cgroups and
 * directory. Its slot (host uid) is free again only when that is done. */
typedef struct hd_ending {
    hd_work w;
    sbx_sandbox *sbx;
    int slot;
    char rid[SP_ID_SIZE]; /* answered once it is gone ("": nobody) */
} hd_ending;

/* In two steps on workers: its processes end (then whoever asked is
 * answered: nothing of the sandbox runs any more, and its id and records
 * are gone already), then its mounts, disk and directory go; only then is
 * its slot (its host uids) free again. */
static void hd_ending_run(hd_work *w)
{
    sbx_destroy(((hd_ending *)w)->sbx);
}

static void hd_ending_done(hd_work *w)
{
    hd_ending *d = (hd_ending *)w;

    hd_slots[d->slot] = 0;
    free(d);
}

static void hd_ending_stop(hd_work *w)
{
    sbx_stop(((hd_ending *)w)->sbx);
}

static void hd_ending_stopped(hd_work *w)
{
    hd_ending *d = (hd_ending *)w;

    if (d->rid[0] != '\0')
        hd_reply(d->rid, cJSON_CreateObject(), NULL, 0);
    d->w.run = hd_ending_run;
    d->w.done = hd_ending_done;
    hd_work_submit(&d->w);
}

/* Hand s's sandbox to a worker to be removed (at once, here, if there is
 * no memory for that). */
static void hd_sandbox_remove(hd_sandbox *s, const char *rid)
{
    hd_ending *d = calloc(1, sizeof *d);

    if (d == NULL) {
        sbx_destroy(s->sbx);
        hd_slots[s->slot] = 0;
        if (rid != NULL && rid[0] != '\0')
            hd_reply(rid, cJSON_CreateObject(), NULL, 0);
        return;
    }
    d->w.run = hd_ending_stop;
    d->w.done = hd_ending_stopped;
    d->sbx = s->sbx;
    d->slot = s->slot;
    snprintf(d->rid, sizeof d->rid, "%s", rid != NULL ? rid : "");
    hd_work_submit(&d->w);
}

void hd_sandbox_end_then(hd_sandbox *s, const char *why, const char *rid)
{
    char k[RDS_KEY_MAX], ok[RDS_KEY_MAX], hk[RDS_KEY_MAX], mk[RDS_KEY_MAX],
        pk[RDS_KEY_MAX];
    hd_sandbox **pp;

    log_info("ending sandbox %s: %s", s->id, why);
    /* A paused sandbox is not thawed: its frozen processes are killed as
     * they are (sbx_cgkill.c), so none of its code runs again. */
    hd_watch_end_all(s);
    hd_ctx_end_all(s, why); /* before the executions: drivers among them */
    hd_exec_kill_all(s, why);
    key_of(k, sizeof k, KEY_SBX, s->id);
    key_of(ok, sizeof ok, KEY_SBXS_OF_OWNER, s->owner);
    key_of(hk, sizeof hk, KEY_HELPER_SBXS, hd_helper_id);
    key_of(mk, sizeof mk, KEY_SBX_METRICS, s->id);
    key_of(pk, sizeof pk, KEY_SBX_PIDS, s->id); /* envd's processes */
    hd_pub("DEL %s %s %s", k, mk, pk);
    hd_pub("SREM %s %s", ok, s->id);
    hd_pub("SREM %s %s", hk, s->id);
    hd_ports_remove(s->id);
    for (pp = &hd_sandboxes; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    if (s->resolving)
        hd_egress_detach(s);
    if (s->dns_fd >= 0)
        close(s->dns_fd);
    netpol_free(&s->net);
    hd_sandbox_remove(s, rid);
    cJSON_Delete(s->env);
    hd_tpl_free(s->tpl);
    free(s);
}

void hd_sandbox_end(hd_sandbox *s, const char *why)
{
    hd_sandbox_end_then(s, why, NULL);
}

void hd_op_delete(hd_sandbox *s, hd_job *job)
{
    /* Answered once it is gone: a deleted sandbox has no process left. */
    hd_sandbox_end_then(s, "deleted", job->rid);
}

void hd_op_usage(hd_sandbox *s, hd_job *job)
{
    uint64_t mem = 0, cpu = 0, oom = 0, used = 0, total = 0, rx = 0, tx = 0;
    uint32_t n = 0;
    cJSON *rep = cJSON_CreateObject();

    sbx_usage(s->sbx, &mem, &cpu, &n);
    sbx_oom_count(s->sbx, &oom);
    cJSON_AddNumberToObject(rep, "memory_bytes", (double)mem);
    cJSON_AddNumberToObject(rep, "cpu_ms", (double)(cpu / 1000000));
    cJSON_AddNumberToObject(rep, "processes", n);
    cJSON_AddNumberToObject(rep, "oom_kills", (double)oom);
    if (sbx_disk_usage(s->sbx, &used, &total) == 0) {
        cJSON_AddNumberToObject(rep, "disk_bytes", (double)used);
        cJSON_AddNumberToObject(rep, "disk_total_bytes", (double)total);
    }
    sbx_net_bytes(s->sbx, &rx, &tx);
    cJSON_AddNumberToObject(rep, "net_rx_bytes", (double)rx);
    cJSON_AddNumberToObject(rep, "net_tx_bytes", (double)tx);
    hd_reply(job->rid, rep, NULL, 0);
}

void hd_op_timeout(hd_sandbox *s, hd_job *job)
{
    char k[RDS_KEY_MAX];
    cJSON *rep = cJSON_CreateObject();
    /* Paused, the time left starts counting at the resume, which moves
     * expires_at by the time it was paused. */
    long long from = s->paused_ms != 0 ? s->paused_ms : hd_now_ms();

    s->expires_at = from / 1000 + hd_arg_int(job->args, "timeout", 300);
    key_of(k, sizeof k, KEY_SBX, s->id);
    hd_pub("HSET %s expires_at %lld", k, s->expires_at);
    cJSON_AddNumberToObject(rep, "expires_at", (double)s->expires_at);
    hd_reply(job->rid, rep, NULL, 0);
}

/* The answer of pause and resume: the state s is in. */
static void hd_pause_reply(const hd_sandbox *s, const char *rid)
{
    cJSON *rep = cJSON_CreateObject();

    cJSON_AddStringToObject(rep, "status", s->paused_ms ? "paused" : "running");
    if (s->paused_ms != 0)
        cJSON_AddNumberToObject(rep, "paused_at",
                                (double)(s->paused_ms / 1000));
    cJSON_AddNumberToObject(rep, "expires_at", (double)s->expires_at);
    hd_reply(rid, rep, NULL, 0);
}

void hd_op_pause(hd_sandbox *s, hd_job *job)
{
    char k[RDS_KEY_MAX], err[256];

    if (s->paused_ms == 0) {
        if (s->ephemeral) {
            hd_reply_err(job->rid, SP_E_CONFLICT, "a one-off sandbox");
            return;
        }
        if (sbx_pause(s->sbx, err, sizeof err) != 0) {
            log_error("sbx_pause(%s) failed: %s", s->id, err);
            if (sbx_resume(s->sbx, err, sizeof err) != 0)
                log_error("sbx_resume(%s) failed: %s", s->id, err);
            hd_reply_err(job->rid, SP_E_UNAVAILABLE,
                         "could not pause the sandbox");
            return;
        }
        s->paused_ms = hd_now_ms();
        hd_ports_paused(s->id, 1);
        key_of(k, sizeof k, KEY_SBX, s->id);
        hd_pub("HSET %s status paused paused_at %lld", k, s->paused_ms / 1000);
        log_info("paused sandbox %s", s->id);
    }
    hd_pause_reply(s, job->rid);
}

/* Thaw s and move its clocks on by the time it stood still; 0, or -1
 * logged (it stays frozen). */
static int hd_thaw(hd_sandbox *s)
{
    char err[256];
    long long delta;

    if (sbx_resume(s->sbx, err, sizeof err) != 0) {
        log_error("sbx_resume(%s) failed: %s", s->id, err);
        return -1;
    }
    /* The clocks stood still while it was paused. */
    delta = hd_now_ms() - s->paused_ms;
    s->expires_at += (delta + 500) / 1000;
    hd_exec_shift(s, delta);
    hd_ctx_shift(s, delta);
    s->paused_ms = 0;
    hd_ports_paused(s->id, 0);
    log_info("resumed sandbox %s after %lld ms", s->id, delta);
    return 0;
}

void hd_op_resume(hd_sandbox *s, hd_job *job)
{
    char k[RDS_KEY_MAX];

    if (s->paused_ms != 0) {
        if (hd_thaw(s) != 0) {
            hd_reply_err(job->rid, SP_E_UNAVAILABLE,
                         "could not resume the sandbox");
            return;
        }
        key_of(k, sizeof k, KEY_SBX, s->id);
        hd_pub("HSET %s status running expires_at %lld", k, s->expires_at);
        hd_pub("HDEL %s paused_at", k);
    }
    hd_pause_reply(s, job->rid);
}

int hd_sandbox_hold(hd_sandbox *s)
{
    char err[256];

    if (s->paused_ms != 0)
        return 0; /* paused by its owner: it stays so */
    if (sbx_pause(s->sbx, err, sizeof err) != 0) {
        log_error("sbx_pause(%s) failed: %s", s->id, err);
        if (sbx_resume(s->sbx, err, sizeof err) != 0)
            log_error("sbx_resume(%s) failed: %s", s->id, err);
        return -1;
    }
    /* Paused as far as the loop knows: no tick, no spawn (409 paused),
     * until hd_sandbox_unhold. Nothing is published: it is a moment. */
    s->paused_ms = hd_now_ms();
    hd_ports_paused(s->id, 1);
    return 1;
}

void hd_sandbox_unhold(hd_sandbox *s)
{
    if (s->paused_ms != 0)
        hd_thaw(s);
}

const char *hd_sandbox_due(const hd_sandbox *s, long long now_ms)
{
    if (s->paused_ms != 0)
        return now_ms - s->paused_ms >= cfg_int(CFG_SP_PAUSE_MAX) * 1000
                   ? "paused longer than SP_PAUSE_MAX"
                   : NULL;
    if (now_ms / 1000 >= s->expires_at)
        return "timeout";
    if (s->ephemeral && s->execs == NULL)
        return "run finished";
    return NULL;
}
