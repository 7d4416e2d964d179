/* hd_sandbox.c: the helper's sandboxes: made (sbx_create) with one host
 * uid per slot, recorded in Redis (sbx:<id>, helper:<id>:sbxs), extended,
 * measured and ended; the pool of ready sandboxes and one-off runs in
 * them. All of it runs on the helper's main thread (see helperd.c). */
#include "hd.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
           "memory_mb %s cpus %s pids %s disk_mb %s network %s metadata %s",
           k, s->owner, hd_helper_id, created, expires, mem, cpus, pids, disk,
           s->network ? "1" : "0", mds ? mds : "{}");
    free(mds);
}

/* Make a sandbox with the given limits, listed in helper:<id>:sbxs before
 * anything runs in it (so that whoever finds this helper gone finds its
 * executions, pooled sandboxes' too); not yet in any other record.
 * Returns NULL after logging (err for the client). */
static hd_sandbox *hd_sandbox_new(const char *id, const char *owner,
                                  const sbx_limits *lim, int network,
                                  const cJSON *env, long long timeout,
                                  char *err, size_t errlen)
{
    hd_sandbox *s = calloc(1, sizeof *s);
    char hk[RDS_KEY_MAX];

    if (s == NULL || (s->slot = hd_slot_take()) < 0) {
        free(s);
        snprintf(err, errlen, "helper is full");
        return NULL;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->owner, sizeof s->owner, "%s", owner);
    s->uid = (uid_t)(cfg_int(CFG_SP_HELPER_UID) + s->slot);
    s->network = network;
    s->env =
        cJSON_IsObject(env) ? cJSON_Duplicate(env, 1) : cJSON_CreateObject();
    if (sbx_create(id, lim, network, s->uid, s->uid, &s->sbx, err, errlen) !=
        0) {
        log_error("sbx_create(%s) failed: %s", id, err);
        hd_slots[s->slot] = 0;
        cJSON_Delete(s->env);
        free(s);
        snprintf(err, errlen, "could not create the sandbox");
        return NULL;
    }
    s->created = hd_now_ms() / 1000;
    s->expires_at = s->created + timeout;
    if (key_of(hk, sizeof hk, KEY_HELPER_SBXS, hd_helper_id) == 0)
        hd_pub("SADD %s %s", hk, s->id);
    return s;
}

static void hd_default_limits(sbx_limits *lim)
{
    lim->memory_mb = (uint64_t)cfg_int(CFG_SP_SANDBOX_MEMORY_MB);
    lim->disk_mb = (uint64_t)cfg_int(CFG_SP_SANDBOX_DISK_MB);
    lim->tmp_mb = (uint64_t)cfg_int(CFG_SP_SANDBOX_TMP_MB);
    lim->pids = (uint32_t)cfg_int(CFG_SP_SANDBOX_PIDS);
    lim->cpus = (double)cfg_int(CFG_SP_SANDBOX_CPUS) / 1000.0;
}

void hd_op_create(hd_sandbox *none, hd_job *job)
{
    const char *id = hd_arg_str(job->args, "id");
    const char *owner = hd_arg_str(job->args, "owner");
    sbx_limits lim = {0};
    hd_sandbox *s;
    char err[512];
    cJSON *rep;

    (void)none; /* made here, not found */
    if (!id_valid_typed(id, "sbx_") || !id_valid(owner)) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad id or owner");
        return;
    }
    if (hd_find(id) != NULL) {
        hd_reply_err(job->rid, SP_E_CONFLICT, "sandbox exists");
        return;
    }
    lim.memory_mb = (uint64_t)hd_arg_int(job->args, "memory_mb", 512);
    lim.disk_mb = (uint64_t)hd_arg_int(job->args, "disk_mb", 512);
    lim.tmp_mb = (uint64_t)cfg_int(CFG_SP_SANDBOX_TMP_MB);
    lim.pids = (uint32_t)hd_arg_int(job->args, "pids", 256);
    lim.cpus = (double)hd_arg_int(job->args, "cpus_milli", 1000) / 1000.0;
    s = hd_sandbox_new(
        id, owner, &lim,
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(job->args, "network")),
        cJSON_GetObjectItemCaseSensitive(job->args, "env"),
        hd_arg_int(job->args, "timeout", 300), err, sizeof err);
    if (s == NULL) {
        hd_reply_err(job->rid, SP_E_UNAVAILABLE, "%s", err);
        return;
    }
    s->next = hd_sandboxes;
    hd_sandboxes = s;
    hd_record(s, &lim, job->args);
    rep = cJSON_CreateObject();
    cJSON_AddStringToObject(rep, "id", s->id);
    hd_reply(job->rid, rep, NULL, 0);
}

/* ---- one-off runs and the pool ---------------------------------------- */

/* Ready sandboxes with the default limits, so that a one-off run does not
 * wait for a sandbox to be made. Listed only in helper:<id>:sbxs (no
 * sandbox record, no owner) until a run takes one; an earlier run's are
 * removed by sbx_reap_leftovers like any other. */
static hd_sandbox *hd_pool;
static int hd_pool_n;

void hd_pool_fill(void)
{
    sbx_limits lim = {0};
    char id[SP_ID_SIZE], err[256];
    hd_sandbox *s;

    if (hd_pool_n >= cfg_int(CFG_SP_POOL_SIZE))
        return;
    hd_default_limits(&lim);
    if (id_generate("sbx_", id, sizeof id) != 0)
        return;
    s = hd_sandbox_new(id, "pool", &lim, 0, NULL, 0, err, sizeof err);
    if (s == NULL)
        return;
    s->next = hd_pool;
    hd_pool = s;
    hd_pool_n++;
}

/* Run argv once in a pooled (or new) sandbox of the default limits that
 * ends with the run: files are written first, then it starts and is
 * answered as for "exec" (at its end with "wait", else at once). */
void hd_op_run(hd_sandbox *none, hd_job *job)
{
    const char *owner = hd_arg_str(job->args, "owner");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(job->args, "files");
    const cJSON *f;
    const hd_kind *kind;
    hd_sandbox *s = hd_pool;
    long long timeout_ms = hd_arg_int(job->args, "timeout_ms", 30000);
    char err[256], id[SP_ID_SIZE];

    (void)none; /* taken from the pool */

    if (!id_valid(owner)) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad owner");
        return;
    }
    if (s != NULL) {
        hd_pool = s->next;
        hd_pool_n--;
    } else {
        sbx_limits lim = {0};
        hd_default_limits(&lim);
        if (id_generate("sbx_", id, sizeof id) != 0 ||
            (s = hd_sandbox_new(id, owner, &lim, 0, NULL, 0, err,
                                sizeof err)) == NULL) {
            hd_reply_err(job->rid, SP_E_UNAVAILABLE, "no sandbox available");
            return;
        }
    }
    snprintf(s->owner, sizeof s->owner, "%s", owner);
    s->ephemeral = 1;
    s->expires_at = hd_now_ms() / 1000 +
                    hd_arg_int(job->args, "expires_in", timeout_ms / 1000 + 60);
    s->next = hd_sandboxes;
    hd_sandboxes = s;
    cJSON_ArrayForEach(f, files)
    {
        hd_job fj = {.op = "file_write", .opn = HC_FILE_WRITE};
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(f, "content");
        fj.args = cJSON_CreateObject();
        cJSON_AddStringToObject(fj.args, "path",
                                hd_arg_str(f, "path") ? hd_arg_str(f, "path")
                                                      : "");
        fj.data = cJSON_IsString(c) ? c->valuestring : "";
        fj.len = strlen(fj.data);
        /* Written as the files API would, with the same checks; the
         * reply goes nowhere (no rid), so a failure is seen through the
         * count of error replies. */
        unsigned long before = hd_reply_errors;
        hd_op_file(s, &fj);
        cJSON_Delete(fj.args);
        if (hd_reply_errors != before) {
            hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT,
                         "files: cannot write %s (paths must be in "
                         "/workspace, /uploaded_files or /tmp)",
                         hd_arg_str(f, "path") ? hd_arg_str(f, "path") : "");
            hd_sandbox_end(s, "run did not start");
            return;
        }
    }
    kind = hd_kind_find(hd_arg_str(job->args, "kind"));
    if (kind != NULL)
        hd_exec_start(s, job, kind);
    else
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "unknown kind");
    if (s->execs == NULL)
        hd_sandbox_end(s, "run did not start");
}

/* End a sandbox: its executions are finished as killed, its processes,
 * mounts, cgroups and directory removed, its Redis records deleted. */
void hd_sandbox_end(hd_sandbox *s, const char *why)
{
    char k[RDS_KEY_MAX], ok[RDS_KEY_MAX], hk[RDS_KEY_MAX];
    hd_sandbox **pp;

    log_info("ending sandbox %s: %s", s->id, why);
    hd_ctx_end_all(s, why); /* before the executions: drivers among them */
    hd_exec_kill_all(s, why);
    sbx_destroy(s->sbx);
    key_of(k, sizeof k, KEY_SBX, s->id);
    key_of(ok, sizeof ok, KEY_SBXS_OF_OWNER, s->owner);
    key_of(hk, sizeof hk, KEY_HELPER_SBXS, hd_helper_id);
    hd_pub("DEL %s", k);
    hd_pub("SREM %s %s", ok, s->id);
    hd_pub("SREM %s %s", hk, s->id);
    for (pp = &hd_sandboxes; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    hd_slots[s->slot] = 0;
    cJSON_Delete(s->env);
    free(s);
}

void hd_op_delete(hd_sandbox *s, hd_job *job)
{
    hd_sandbox_end(s, "deleted");
    hd_reply(job->rid, cJSON_CreateObject(), NULL, 0);
}

void hd_op_usage(hd_sandbox *s, hd_job *job)
{
    uint64_t mem = 0, cpu = 0, oom = 0;
    uint32_t n = 0;
    cJSON *rep = cJSON_CreateObject();

    sbx_usage(s->sbx, &mem, &cpu, &n);
    sbx_oom_count(s->sbx, &oom);
    cJSON_AddNumberToObject(rep, "memory_bytes", (double)mem);
    cJSON_AddNumberToObject(rep, "cpu_ms", (double)(cpu / 1000000));
    cJSON_AddNumberToObject(rep, "processes", n);
    cJSON_AddNumberToObject(rep, "oom_kills", (double)oom);
    hd_reply(job->rid, rep, NULL, 0);
}

void hd_op_timeout(hd_sandbox *s, hd_job *job)
{
    char k[RDS_KEY_MAX];
    cJSON *rep = cJSON_CreateObject();

    s->expires_at = hd_now_ms() / 1000 + hd_arg_int(job->args, "timeout", 300);
    key_of(k, sizeof k, KEY_SBX, s->id);
    hd_pub("HSET %s expires_at %lld", k, s->expires_at);
    cJSON_AddNumberToObject(rep, "expires_at", (double)s->expires_at);
    hd_reply(job->rid, rep, NULL, 0);
}

void hd_pool_drain(void)
{
    while (hd_pool != NULL) {
        hd_sandbox *p = hd_pool;
        hd_pool = p->next;
        p->next = hd_sandboxes;
        hd_sandboxes = p;
        hd_pool_n--;
        hd_sandbox_end(p, "helper stopped");
    }
}
