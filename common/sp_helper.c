/* sp_helper.c: the typed helper client (sp_helper.h): one function per
 * operation, each building its job's arguments in one place. File bodies
 * go through the spool (sp_spool.h), never into a job or a reply. */
#include "sp_helper.h"
#include "sp_log.h"
#include "sp_lost.h"
#include "sp_spool.h"
#include "sp_status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const hc_names[HC_OP_COUNT] = {
#define HC_NAME(e, name) [e] = name,
    HC_OPS(HC_NAME)
#undef HC_NAME
};

const char *hc_op_name(hc_op op)
{
    return op < HC_OP_COUNT ? hc_names[op] : "";
}

hc_op hc_op_find(const char *name)
{
    for (int i = 0; name != NULL && i < HC_OP_COUNT; i++) {
        if (strcmp(hc_names[i], name) == 0)
            return (hc_op)i;
    }
    return HC_OP_COUNT;
}

/* Send op with args (consumed) to helper and wait up to wait_ms; the reply
 * goes to out when out is not NULL, else it is dropped. */
static int hc_call_exe(const char *helper, hc_op op, cJSON *args,
                       long long wait_ms, const char *exe, rpc_reply *out,
                       rpc_err *err)
{
    rpc_reply local;
    int rc;

    if (args == NULL) {
        rpc_err_set(err, RPC_TRANSPORT, SP_E_INTERNAL, "out of memory");
        if (out != NULL)
            memset(out, 0, sizeof *out);
        return -1;
    }
    rc = rpc_call(helper, hc_op_name(op), args, wait_ms, exe,
                  out != NULL ? out : &local, err);
    cJSON_Delete(args);
    if (out == NULL && rc == 0)
        rpc_reply_free(&local);
    return rc;
}

static int hc_call(const char *helper, hc_op op, cJSON *args, long long wait_ms,
                   rpc_reply *out, rpc_err *err)
{
    return hc_call_exe(helper, op, args, wait_ms, NULL, out, err);
}

/* An execution that was waited for and whose helper is gone: its facts
 * are those of its end as lost (its record says the same, sp_lost.h). */
static int hc_facts_lost(hc_facts *f, const char *exe, rpc_err *err)
{
    cJSON *facts;

    lost_exec(exe, LOST_ERROR);
    memset(f, 0, sizeof *f);
    f->raw.json = cJSON_CreateObject();
    facts = cJSON_AddObjectToObject(f->raw.json, "facts");
    if (facts == NULL) {
        rpc_err_set(err, RPC_TRANSPORT, SP_E_INTERNAL, "out of memory");
        return -1;
    }
    cJSON_AddStringToObject(facts, "id", exe);
    cJSON_AddStringToObject(facts, "status", "error");
    cJSON_AddNumberToObject(facts, "exit_code", -1);
    cJSON_AddNumberToObject(facts, "duration_ms", 0);
    cJSON_AddBoolToObject(facts, "truncated", 0);
    cJSON_AddStringToObject(facts, "error", LOST_ERROR);
    f->json = facts;
    f->out[0] = f->out[1] = "";
    return 0;
}

/* A new args object naming the sandbox (NULL if out of memory). */
static cJSON *hc_args(const char *sbx)
{
    cJSON *a = cJSON_CreateObject();
    if (a != NULL && sbx != NULL &&
        cJSON_AddStringToObject(a, "sandbox", sbx) == NULL) {
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

/* hc_args plus the execution id exe. */
static cJSON *hc_exe_args(const char *sbx, const char *exe)
{
    cJSON *a = hc_args(sbx);
    if (a != NULL)
        cJSON_AddStringToObject(a, "exe", exe);
    return a;
}

/* Add a copy of j as name unless j is NULL. */
static void hc_put(cJSON *a, const char *name, const cJSON *j)
{
    if (j != NULL)
        cJSON_AddItemToObject(a, name, cJSON_Duplicate(j, 1));
}

static void hc_put_str(cJSON *a, const char *name, const char *s)
{
    if (s != NULL)
        cJSON_AddStringToObject(a, name, s);
}

void hc_facts_free(hc_facts *f)
{
    if (f == NULL)
        return;
    rpc_reply_free(&f->raw);
    memset(f, 0, sizeof *f);
}

/* Point f's fields into its raw reply: json, and stdout/stderr split at
 * out_len of the data part. */
static int hc_facts_take(hc_facts *f, rpc_err *err)
{
    const cJSON *facts = cJSON_GetObjectItemCaseSensitive(f->raw.json, "facts");
    const cJSON *olen =
        cJSON_GetObjectItemCaseSensitive(f->raw.json, "out_len");
    size_t n;

    if (facts == NULL) {
        f->json = f->raw.json; /* started, not ended */
        return 0;
    }
    n = cJSON_IsNumber(olen) && olen->valuedouble >= 0
            ? (size_t)olen->valuedouble
            : 0;
    if (!cJSON_IsObject(facts) || n > f->raw.len) {
        rpc_err_set(err, RPC_TRANSPORT, SP_E_INTERNAL,
                    "malformed helper reply");
        return -1;
    }
    f->json = facts;
    f->out[0] = f->raw.data ? f->raw.data : "";
    f->out_len[0] = n;
    f->out[1] = f->raw.data ? f->raw.data + n : "";
    f->out_len[1] = f->raw.len - n;
    return 0;
}

static int hc_spool_new(int *dir, int *fd, char *name, rpc_err *err);
static void hc_spool_done(int dir, int fd, const char *name);

/* A spool file filled by fill: its name in name and fd; 0, or -1 with
 * err set (nothing left in the spool). */
static int hc_spool_fill(long long (*fill)(void *ctx, int fd), void *ctx,
                         int *dir, int *fd, char *name, rpc_err *err)
{
    long long len;

    if (hc_spool_new(dir, fd, name, err) != 0)
        return -1;
    if ((len = fill(ctx, *fd)) < 0) {
        hc_spool_done(*dir, *fd, name);
        *fd = -1;
        if (err->fail == RPC_OK)
            rpc_err_set(err, RPC_TRANSPORT, SP_E_UNAVAILABLE,
                        "file spool unavailable");
        return -1;
    }
    return 0;
}

int hc_create(const hc_sandbox_req *q, char *id_out, rpc_err *err)
{
    cJSON *a = NULL;
    rpc_reply rr;
    const char *id;
    char name[SPOOL_NAME_SIZE] = "";
    int dir = -1, fd = -1, rc = -1;

    memset(err, 0, sizeof *err);
    if (q->layer_fill != NULL &&
        hc_spool_fill(q->layer_fill, q->layer_ctx, &dir, &fd, name, err) != 0)
        return -1;
    a = hc_args(NULL);
    if (a != NULL) {
        if (q->layer_fill != NULL)
            cJSON_AddStringToObject(a, "layer", name);
        cJSON_AddStringToObject(a, "id", q->id);
        cJSON_AddStringToObject(a, "owner", q->owner);
        cJSON_AddNumberToObject(a, "timeout", (double)q->timeout_s);
        cJSON_AddNumberToObject(a, "memory_mb", (double)q->memory_mb);
        cJSON_AddNumberToObject(a, "pids", (double)q->pids);
        cJSON_AddNumberToObject(a, "disk_mb", (double)q->disk_mb);
        cJSON_AddNumberToObject(a, "cpus_milli", (double)q->cpus_milli);
        cJSON_AddBoolToObject(a, "network", q->network);
        cJSON_AddBoolToObject(a, "public", q->public_ports);
        hc_put(a, "netpol", q->netpol);
        hc_put(a, "env", q->env);
        hc_put(a, "metadata", q->metadata);
        hc_put_str(a, "template", q->template_name);
    }
    if (hc_call(NULL, HC_CREATE, a,
                q->layer_fill ? HC_TREE_WAIT_MS : HC_CREATE_WAIT_MS, &rr,
                err) != 0)
        goto out;
    /* A ready sandbox keeps the id it was made with. */
    id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rr.json, "id"));
    snprintf(id_out, SP_ID_SIZE, "%s",
             id && id_valid_typed(id, "sbx_") ? id : q->id);
    rpc_reply_free(&rr);
    rc = 0;
out:
    if (fd >= 0)
        hc_spool_done(dir, fd, name);
    return rc;
}

int hc_delete(const char *helper, const char *sbx, rpc_err *err)
{
    return hc_call(helper, HC_DELETE, hc_args(sbx), HC_CREATE_WAIT_MS, NULL,
                   err);
}

int hc_usage(const char *helper, const char *sbx, cJSON **usage, rpc_err *err)
{
    rpc_reply rr;

    *usage = NULL;
    if (hc_call(helper, HC_USAGE, hc_args(sbx), HC_OP_WAIT_MS, &rr, err) != 0)
        return -1;
    cJSON_DeleteItemFromObject(rr.json, "ok");
    *usage = rr.json;
    rr.json = NULL;
    rpc_reply_free(&rr);
    return 0;
}

int hc_ports(const char *helper, const char *sbx, cJSON **ports, rpc_err *err)
{
    rpc_reply rr;

    *ports = NULL;
    if (hc_call(helper, HC_PORTS, hc_args(sbx), HC_OP_WAIT_MS, &rr, err) != 0)
        return -1;
    *ports = cJSON_DetachItemFromObjectCaseSensitive(rr.json, "ports");
    rpc_reply_free(&rr);
    if (!cJSON_IsArray(*ports)) {
        cJSON_Delete(*ports);
        *ports = NULL;
        err->fail = RPC_ANSWER;
        err->st = SP_E_INTERNAL;
        snprintf(err->msg, sizeof err->msg, "bad ports answer");
        return -1;
    }
    return 0;
}

int hc_pause(const char *helper, const char *sbx, rpc_err *err)
{
    return hc_call(helper, HC_PAUSE, hc_args(sbx), HC_OP_WAIT_MS, NULL, err);
}

int hc_resume(const char *helper, const char *sbx, rpc_err *err)
{
    return hc_call(helper, HC_RESUME, hc_args(sbx), HC_OP_WAIT_MS, NULL, err);
}

int hc_timeout(const char *helper, const char *sbx, long long timeout_s,
               rpc_err *err)
{
    cJSON *a = hc_args(sbx);
    if (a != NULL)
        cJSON_AddNumberToObject(a, "timeout", (double)timeout_s);
    return hc_call(helper, HC_TIMEOUT, a, HC_OP_WAIT_MS, NULL, err);
}

int hc_network(const char *helper, const char *sbx, const cJSON *netpol,
               cJSON **network, rpc_err *err)
{
    cJSON *a = hc_args(sbx);
    rpc_reply rr;

    *network = NULL;
    hc_put(a, "netpol", netpol);
    if (hc_call(helper, HC_NETWORK, a, HC_OP_WAIT_MS, &rr, err) != 0)
        return -1;
    *network = cJSON_DetachItemFromObjectCaseSensitive(rr.json, "network");
    rpc_reply_free(&rr);
    return 0;
}

/* The job arguments of an execution. */
static cJSON *hc_exec_args(const hc_exec_req *q)
{
    cJSON *a = hc_args(q->sandbox);

    if (a == NULL)
        return NULL;
    cJSON_AddStringToObject(a, "id", q->id);
    cJSON_AddStringToObject(a, "kind", q->kind);
    cJSON_AddStringToObject(a, "owner", q->owner);
    hc_put(a, "argv", q->argv);
    hc_put(a, "env", q->env);
    hc_put_str(a, "cwd", q->cwd);
    hc_put_str(a, "user", q->user);
    hc_put_str(a, "stdin", q->stdin_data);
    cJSON_AddBoolToObject(a, "stdin_open", q->stdin_open);
    cJSON_AddBoolToObject(a, "pty", q->pty);
    cJSON_AddNumberToObject(a, "cols", (double)q->cols);
    cJSON_AddNumberToObject(a, "rows", (double)q->rows);
    cJSON_AddNumberToObject(a, "timeout_ms", (double)q->timeout_ms);
    cJSON_AddBoolToObject(a, "wait", q->wait);
    hc_put(a, "compile", q->compile);
    hc_put(a, "scratch", q->scratch);
    hc_put(a, "files", q->files);
    if (q->expires_in_s > 0)
        cJSON_AddNumberToObject(a, "expires_in", (double)q->expires_in_s);
    return a;
}

int hc_exec(const char *helper, const hc_exec_req *q, long long wait_ms,
            long long reserve_until_ms, hc_facts *out, rpc_err *err)
{
    sp_status st;
    int rc;

    memset(out, 0, sizeof *out);
    if (q->sandbox == NULL) {
        /* A one-off sandbox counts against the subject's runs until the
         * helper ends it. */
        st = rpc_run_reserve(q->owner, q->id, reserve_until_ms);
        if (st != SP_OK) {
            rpc_err_set(
                err, st == SP_E_RATE_LIMITED ? RPC_ANSWER : RPC_TRANSPORT, st,
                "%s",
                st == SP_E_RATE_LIMITED ? "too many one-off runs at once"
                                        : "state store unavailable");
            return -1;
        }
    }
    rc = hc_call_exe(q->sandbox ? helper : NULL, q->sandbox ? HC_EXEC : HC_RUN,
                     hc_exec_args(q), wait_ms, q->id, &out->raw, err);
    if (rc != 0 && err->fail == RPC_LOST && q->wait) {
        if (q->sandbox == NULL)
            rpc_run_release(q->owner, q->id);
        return hc_facts_lost(out, q->id, err);
    }
    if (rc == 0)
        rc = hc_facts_take(out, err);
    if (rc != 0) {
        if (q->sandbox == NULL)
            rpc_run_release(q->owner, q->id);
        hc_facts_free(out);
    }
    return rc;
}

int hc_stdin(const char *helper, const char *sbx, const char *exe,
             const char *data, int eof, rpc_err *err)
{
    cJSON *a = hc_exe_args(sbx, exe);
    if (a != NULL) {
        hc_put_str(a, "data", data);
        cJSON_AddBoolToObject(a, "eof", eof);
    }
    return hc_call(helper, HC_STDIN, a, HC_OP_WAIT_MS, NULL, err);
}

int hc_cancel(const char *helper, const char *sbx, const char *exe,
              rpc_err *err)
{
    return hc_call(helper, HC_CANCEL, hc_exe_args(sbx, exe), HC_OP_WAIT_MS,
                   NULL, err);
}

int hc_signal(const char *helper, const char *sbx, const char *exe, int sig,
              rpc_err *err)
{
    cJSON *a = hc_exe_args(sbx, exe);
    if (a != NULL)
        cJSON_AddNumberToObject(a, "signal", sig);
    return hc_call(helper, HC_SIGNAL, a, HC_OP_WAIT_MS, NULL, err);
}

int hc_resize(const char *helper, const char *sbx, const char *exe,
              long long cols, long long rows, rpc_err *err)
{
    cJSON *a = hc_exe_args(sbx, exe);
    if (a != NULL) {
        cJSON_AddNumberToObject(a, "cols", (double)cols);
        cJSON_AddNumberToObject(a, "rows", (double)rows);
    }
    return hc_call(helper, HC_RESIZE, a, HC_OP_WAIT_MS, NULL, err);
}

/* hc_args plus path. */
static cJSON *hc_path_args(const char *sbx, const char *path)
{
    cJSON *a = hc_args(sbx);
    if (a != NULL)
        cJSON_AddStringToObject(a, "path", path);
    return a;
}

/* The end of a call that used spool file name (fd): closed and removed,
 * whether the helper consumed it or never took the job. */
static void hc_spool_done(int dir, int fd, const char *name)
{
    if (fd >= 0)
        close(fd);
    if (spool_remove(dir, name) != 0 && errno != ENOENT)
        log_warn("unlinkat(spool file) failed: %s", strerror(errno));
}

/* A new spool file of this process into *fd and name; -1 with err set. */
static int hc_spool_new(int *dir, int *fd, char *name, rpc_err *err)
{
    *fd = -1;
    name[0] = '\0';
    if ((*dir = spool_dir()) < 0 ||
        (*fd = spool_create(*dir, name, SPOOL_NAME_SIZE)) < 0) {
        if (*dir >= 0)
            log_error("openat(spool file) failed: %s", strerror(errno));
        rpc_err_set(err, RPC_TRANSPORT, SP_E_UNAVAILABLE,
                    "file spool unavailable");
        return -1;
    }
    return 0;
}

/* A read's file bytes from spool file fd into out->data: exactly the size
 * the helper answered, which the file must have. */
static int hc_spool_take(int fd, rpc_reply *out, rpc_err *err)
{
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(out->json, "size");
    struct stat st;
    size_t n;

    if (!cJSON_IsNumber(size) || size->valuedouble < 0 ||
        size->valuedouble > (double)SPOOL_BODY_MAX || fstat(fd, &st) != 0 ||
        (double)st.st_size != size->valuedouble) {
        rpc_err_set(err, RPC_TRANSPORT, SP_E_INTERNAL,
                    "malformed helper reply");
        return -1;
    }
    n = (size_t)st.st_size;
    free(out->data);
    out->len = 0;
    if ((out->data = malloc(n ? n : 1)) == NULL ||
        spool_read_all(fd, out->data, n) != 0) {
        rpc_err_set(err, RPC_TRANSPORT, SP_E_INTERNAL,
                    "could not read the file back");
        return -1;
    }
    out->len = n;
    return 0;
}

int hc_file_read(const char *helper, const char *sbx, const char *path,
                 rpc_reply *out, rpc_err *err)
{
    char name[SPOOL_NAME_SIZE];
    const cJSON *type;
    cJSON *a;
    int dir, fd, rc;

    memset(out, 0, sizeof *out);
    if (hc_spool_new(&dir, &fd, name, err) != 0)
        return -1;
    if ((a = hc_path_args(sbx, path)) != NULL)
        cJSON_AddStringToObject(a, "spool", name);
    rc = hc_call(helper, HC_FILE_READ, a, HC_FILE_WAIT_MS, out, err);
    type = rc == 0 ? cJSON_GetObjectItemCaseSensitive(out->json, "type") : NULL;
    /* A directory's listing is all in the answer; a file's bytes are in
     * the spool file. */
    if (cJSON_IsString(type) && strcmp(type->valuestring, "file") == 0 &&
        (rc = hc_spool_take(fd, out, err)) != 0)
        rpc_reply_free(out);
    hc_spool_done(dir, fd, name);
    return rc;
}

int hc_file_tree(const char *helper, const char *sbx, const char *path,
                 long long depth, rpc_reply *out, rpc_err *err)
{
    cJSON *a = hc_path_args(sbx, path);
    if (a != NULL)
        cJSON_AddNumberToObject(a, "depth", (double)depth);
    return hc_call(helper, HC_FILE_TREE, a, HC_FILE_WAIT_MS, out, err);
}

/* hc_file_write's fill: the bytes of a buffer. */
typedef struct hc_bytes {
    const void *data;
    size_t len;
} hc_bytes;

static long long hc_fill_bytes(void *ctx, int fd)
{
    const hc_bytes *b = ctx;

    if (b->len > 0 && spool_write_all(fd, b->data, b->len) != 0)
        return -1;
    return (long long)b->len;
}

int hc_file_write(const char *helper, const char *sbx, const char *path,
                  const void *data, size_t len, rpc_reply *out, rpc_err *err)
{
    hc_bytes b = {data, len};

    return hc_file_write_with(helper, sbx, path, hc_fill_bytes, &b, out, err);
}

int hc_file_write_with(const char *helper, const char *sbx, const char *path,
                       long long (*fill)(void *ctx, int fd), void *ctx,
                       rpc_reply *out, rpc_err *err)
{
    char name[SPOOL_NAME_SIZE];
    cJSON *a;
    int dir, fd, rc = -1;
    long long len;

    memset(out, 0, sizeof *out);
    if (hc_spool_new(&dir, &fd, name, err) != 0)
        return -1;
    len = fill(ctx, fd);
    if (len < 0 || len > (long long)SPOOL_BODY_MAX) {
        log_error("write(spool file) failed: %s",
                  len < 0 ? strerror(errno) : "too large");
        rpc_err_set(err, RPC_TRANSPORT,
                    len < 0 ? SP_E_UNAVAILABLE : SP_E_PAYLOAD_TOO_LARGE,
                    len < 0 ? "file spool unavailable" : "file too large");
        goto out;
    }
    if ((a = hc_path_args(sbx, path)) != NULL) {
        cJSON_AddStringToObject(a, "spool", name);
        cJSON_AddNumberToObject(a, "len", (double)len);
    }
    rc = hc_call(helper, HC_FILE_WRITE, a, HC_FILE_WAIT_MS, out, err);
out:
    hc_spool_done(dir, fd, name);
    return rc;
}

int hc_file_mkdir(const char *helper, const char *sbx, const char *path,
                  rpc_reply *out, rpc_err *err)
{
    return hc_call(helper, HC_FILE_MKDIR, hc_path_args(sbx, path),
                   HC_FILE_WAIT_MS, out, err);
}

int hc_file_delete(const char *helper, const char *sbx, const char *path,
                   int recursive, rpc_err *err)
{
    cJSON *a = hc_path_args(sbx, path);
    if (a != NULL)
        cJSON_AddBoolToObject(a, "recursive", recursive);
    return hc_call(helper, HC_FILE_DELETE, a, HC_FILE_WAIT_MS, NULL, err);
}

int hc_file_stat(const char *helper, const char *sbx, const char *path,
                 rpc_reply *out, rpc_err *err)
{
    return hc_call(helper, HC_FILE_STAT, hc_path_args(sbx, path),
                   HC_FILE_WAIT_MS, out, err);
}

int hc_file_move(const char *helper, const char *sbx, const char *from,
                 const char *to, rpc_reply *out, rpc_err *err)
{
    cJSON *a = hc_path_args(sbx, from);
    if (a != NULL)
        cJSON_AddStringToObject(a, "to", to);
    return hc_call(helper, HC_FILE_MOVE, a, HC_FILE_WAIT_MS, out, err);
}

/* hc_args plus ctx and owner. */
static cJSON *hc_ctx_args(const char *sbx, const char *ctx, const char *owner)
{
    cJSON *a = hc_args(sbx);
    if (a != NULL) {
        cJSON_AddStringToObject(a, "ctx", ctx);
        cJSON_AddStringToObject(a, "owner", owner);
    }
    return a;
}

int hc_ctx_create(const char *helper, const char *sbx, const char *ctx,
                  const char *language, const char *cwd, const char *owner,
                  rpc_err *err)
{
    cJSON *a = hc_ctx_args(sbx, ctx, owner);
    if (a != NULL)
        cJSON_AddStringToObject(a, "language", language);
    if (a != NULL && cwd != NULL)
        cJSON_AddStringToObject(a, "cwd", cwd);
    return hc_call(helper, HC_CTX_CREATE, a, HC_CTX_WAIT_MS, NULL, err);
}

int hc_ctx_run(const char *helper, const hc_ctx_run_req *q, long long wait_ms,
               hc_facts *out, rpc_err *err)
{
    cJSON *a = hc_ctx_args(q->sandbox, q->ctx, q->owner);

    memset(out, 0, sizeof *out);
    if (a != NULL) {
        cJSON_AddStringToObject(a, "id", q->id);
        cJSON_AddStringToObject(a, "code", q->code);
        cJSON_AddNumberToObject(a, "timeout_ms", (double)q->timeout_ms);
        cJSON_AddBoolToObject(a, "wait", q->wait);
    }
    if (hc_call_exe(helper, HC_CTX_RUN, a, wait_ms, q->id, &out->raw, err) != 0)
        return err->fail == RPC_LOST && q->wait ? hc_facts_lost(out, q->id, err)
                                                : -1;
    return hc_facts_take(out, err);
}

int hc_ctx_delete(const char *helper, const char *sbx, const char *ctx,
                  const char *owner, rpc_err *err)
{
    return hc_call(helper, HC_CTX_DELETE, hc_ctx_args(sbx, ctx, owner),
                   HC_CTX_WAIT_MS, NULL, err);
}

int hc_tpl_delete(const char *name, const char *owner, rpc_err *err)
{
    cJSON *a = hc_args(NULL);

    if (a != NULL) {
        cJSON_AddStringToObject(a, "name", name);
        cJSON_AddStringToObject(a, "owner", owner);
    }
    return hc_call(NULL, HC_TPL_DELETE, a, HC_OP_WAIT_MS, NULL, err);
}

int hc_tpl_build(const hc_tpl_build_req *q, rpc_err *err)
{
    cJSON *a = hc_args(NULL);

    if (a != NULL) {
        cJSON_AddStringToObject(a, "build", q->build);
        cJSON_AddStringToObject(a, "name", q->name);
        cJSON_AddStringToObject(a, "owner", q->owner);
        cJSON_AddStringToObject(a, "spec", q->spec);
        cJSON_AddBoolToObject(a, "private", q->private_);
        hc_put(a, "args", q->args);
        hc_put(a, "files", q->files);
    }
    return hc_call(NULL, HC_TPL_BUILD, a, HC_OP_WAIT_MS, NULL, err);
}

int hc_watch_start(const char *helper, const hc_watch_req *q, rpc_reply *out,
                   rpc_err *err)
{
    cJSON *a = hc_path_args(q->sandbox, q->path);

    memset(out, 0, sizeof *out);
    if (a != NULL) {
        cJSON_AddStringToObject(a, "id", q->id);
        cJSON_AddStringToObject(a, "owner", q->owner);
        cJSON_AddBoolToObject(a, "recursive", q->recursive);
        cJSON_AddBoolToObject(a, "ephemeral", q->ephemeral);
    }
    return hc_call(helper, HC_WATCH_START, a, HC_FILE_WAIT_MS, out, err);
}

int hc_watch_stop(const char *helper, const char *sbx, const char *wch,
                  rpc_err *err)
{
    cJSON *a = hc_args(sbx);
    if (a != NULL)
        cJSON_AddStringToObject(a, "watch", wch);
    return hc_call(helper, HC_WATCH_STOP, a, HC_OP_WAIT_MS, NULL, err);
}

int hc_tree_pack(const char *helper, const char *sbx, const char *what,
                 int (*take)(void *ctx, int fd, long long size), void *ctx,
                 rpc_err *err)
{
    char name[SPOOL_NAME_SIZE];
    const cJSON *size;
    struct stat st;
    rpc_reply rr;
    cJSON *a;
    int dir, fd, rc = -1;

    memset(err, 0, sizeof *err);
    if (hc_spool_new(&dir, &fd, name, err) != 0)
        return -1;
    if ((a = hc_args(sbx)) != NULL) {
        cJSON_AddStringToObject(a, "what", what);
        cJSON_AddStringToObject(a, "spool", name);
    }
    if (hc_call(helper, HC_TREE_PACK, a, HC_TREE_WAIT_MS, &rr, err) != 0)
        goto out;
    size = cJSON_GetObjectItemCaseSensitive(rr.json, "size");
    /* The size the helper saw is the file's: nothing else wrote it. */
    if (!cJSON_IsNumber(size) || fstat(fd, &st) != 0 ||
        (double)st.st_size != size->valuedouble) {
        rpc_err_set(err, RPC_TRANSPORT, SP_E_INTERNAL,
                    "malformed helper reply");
    } else if (lseek(fd, 0, SEEK_SET) == 0) {
        rc = take(ctx, fd, (long long)st.st_size);
        if (rc != 0 && err->fail == RPC_OK)
            rpc_err_set(err, RPC_ANSWER, SP_E_INTERNAL,
                        "the archive could not be stored");
    }
    rpc_reply_free(&rr);
out:
    hc_spool_done(dir, fd, name);
    return rc;
}

int hc_tree_unpack(const char *helper, const char *sbx, const char *path,
                   long long (*fill)(void *ctx, int fd), void *ctx,
                   rpc_err *err)
{
    char name[SPOOL_NAME_SIZE];
    cJSON *a;
    int dir, fd, rc;

    memset(err, 0, sizeof *err);
    if (hc_spool_fill(fill, ctx, &dir, &fd, name, err) != 0)
        return -1;
    if ((a = hc_path_args(sbx, path)) != NULL)
        cJSON_AddStringToObject(a, "spool", name);
    rc = hc_call(helper, HC_TREE_UNPACK, a, HC_TREE_WAIT_MS, NULL, err);
    hc_spool_done(dir, fd, name);
    return rc;
}
