/* hd_ops.c: the helper's table of operations (common/sp_helper.h names
 * them). Each row says whether the job acts on one of this helper's
 * sandboxes, which arguments it takes (checked here, before its function
 * runs, so functions read them without re-checking their types), whether
 * its answer may come later (when an execution ends), and its function,
 * which answers the job (hd_reply, hd_reply_err).
 *
 * Adding an operation: a row in HC_OPS (sp_helper.h), a row here, its
 * function, and its typed call in common/sp_helper.c. */
#include "hd.h"
#include "sp_id.h"
#include "sp_log.h"

#include <stdio.h>
#include <string.h>

#define HD_ARGS_MAX 24

typedef enum hd_arg_type {
    HD_A_STR,  /* a string */
    HD_A_ID,   /* a string that is a valid id */
    HD_A_NUM,  /* a number */
    HD_A_BOOL, /* true or false */
    HD_A_OBJ,  /* an object */
    HD_A_STRV, /* an array of strings */
    HD_A_ARR   /* an array */
} hd_arg_type;

typedef struct hd_arg {
    const char *name;
    hd_arg_type type;
    int required;
} hd_arg;

typedef struct hd_op {
    int sandbox; /* acts on one of our sandboxes (args.sandbox) */
    /* May act on it while it is paused; any other op on a paused sandbox
     * is 409 paused (its processes are frozen: sp-init cannot answer). */
    int paused_ok;
    int later; /* the answer may come when an execution ends */
    void (*fn)(hd_sandbox *s, hd_job *job);
    /* Or: acts on a running execution of the sandbox (args.exe). */
    void (*on_exec)(hd_exec *e, hd_job *job);
    hd_arg args[HD_ARGS_MAX]; /* ends at a NULL name */
} hd_op;

/* Start the execution job describes, of the kind it names ("exec"). */
static void hd_op_exec(hd_sandbox *s, hd_job *job)
{
    const hd_kind *k = hd_kind_find(hd_arg_str(job->args, "kind"));

    if (k == NULL) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "unknown kind");
        return;
    }
    hd_exec_start(s, job, k);
}

/* The running execution exe of job in s, or NULL after answering 409 (a
 * run of a context is answered by hd_ctx_exec_job and is NULL too). */
static hd_exec *hd_exec_target(hd_sandbox *s, hd_job *job)
{
    hd_exec *e = hd_exec_by_id(s, hd_arg_str(job->args, "exe"));

    if (e == NULL && hd_ctx_exec_job(s, job))
        return NULL; /* a run of a context */
    if (e == NULL || e->exited) {
        hd_reply_err(job->rid, SP_E_CONFLICT, "execution is not running");
        return NULL;
    }
    return e;
}

/* clang-format off */
/* Arguments every execution start takes ("exec", and "run" with files). */
#define HD_EXEC_ARGS                                                           \
    {"id", HD_A_ID, 1}, {"kind", HD_A_STR, 0}, {"owner", HD_A_ID, 0},          \
    {"argv", HD_A_STRV, 1}, {"env", HD_A_OBJ, 0}, {"cwd", HD_A_STR, 0},        \
    {"stdin", HD_A_STR, 0}, {"stdin_open", HD_A_BOOL, 0},                      \
    {"pty", HD_A_BOOL, 0}, {"cols", HD_A_NUM, 0}, {"rows", HD_A_NUM, 0},       \
    {"timeout_ms", HD_A_NUM, 0}, {"wait", HD_A_BOOL, 0},                       \
    {"compile", HD_A_STRV, 0}, {"scratch", HD_A_STRV, 0},                      \
    {"expires_in", HD_A_NUM, 0}, {"user", HD_A_STR, 0}
#define HD_SBX    {"sandbox", HD_A_ID, 1}
#define HD_EXE    {"exe", HD_A_ID, 1}
#define HD_PATH   {"path", HD_A_STR, 1}
#define HD_CTX_ID {"ctx", HD_A_ID, 1}
/* A spool file's name (sp_spool.h; hd_files.c checks its pattern). */
#define HD_SPOOL  {"spool", HD_A_STR, 1}

static const hd_op hd_ops[HC_OP_COUNT] = {
    [HC_CREATE] = {.fn = hd_op_create_pooled, .args = {
        {"id", HD_A_ID, 1}, {"owner", HD_A_ID, 1}, {"timeout", HD_A_NUM, 0},
        {"memory_mb", HD_A_NUM, 0}, {"pids", HD_A_NUM, 0},
        {"disk_mb", HD_A_NUM, 0}, {"cpus_milli", HD_A_NUM, 0},
        {"network", HD_A_BOOL, 0}, {"public", HD_A_BOOL, 0},
        {"netpol", HD_A_OBJ, 0}, {"env", HD_A_OBJ, 0},
        {"metadata", HD_A_OBJ, 0}, {"template", HD_A_STR, 0},
        {"layer", HD_A_STR, 0}}},
    [HC_TPL_DELETE] = {.fn = hd_op_tpl_delete, .args = {
        {"name", HD_A_STR, 1}, {"owner", HD_A_ID, 1}}},
    [HC_TPL_BUILD] = {.fn = hd_op_tpl_build, .args = {
        {"build", HD_A_ID, 1}, {"name", HD_A_STR, 1}, {"owner", HD_A_ID, 1},
        {"spec", HD_A_STR, 1}, {"private", HD_A_BOOL, 0},
        {"args", HD_A_OBJ, 0}, {"files", HD_A_OBJ, 0}}},
    [HC_RUN] = {.later = 1, .fn = hd_op_run, .args = {
        HD_EXEC_ARGS, {"files", HD_A_ARR, 0}}},
    [HC_DELETE] = {.sandbox = 1, .paused_ok = 1, .fn = hd_op_delete,
        .args = {HD_SBX}},
    [HC_USAGE] = {.sandbox = 1, .paused_ok = 1, .fn = hd_op_usage,
        .args = {HD_SBX}},
    [HC_TIMEOUT] = {.sandbox = 1, .paused_ok = 1, .fn = hd_op_timeout,
        .args = {HD_SBX, {"timeout", HD_A_NUM, 1}}},
    [HC_NETWORK] = {.sandbox = 1, .paused_ok = 1, .fn = hd_op_network,
        .args = {HD_SBX, {"netpol", HD_A_OBJ, 1}}},
    [HC_PAUSE] = {.sandbox = 1, .paused_ok = 1, .fn = hd_op_pause,
        .args = {HD_SBX}},
    [HC_RESUME] = {.sandbox = 1, .paused_ok = 1, .fn = hd_op_resume,
        .args = {HD_SBX}},
    [HC_EXEC] = {.sandbox = 1, .later = 1, .fn = hd_op_exec, .args = {
        HD_SBX, HD_EXEC_ARGS}},
    [HC_STDIN] = {.sandbox = 1, .on_exec = hd_exec_stdin, .args = {
        HD_SBX, HD_EXE, {"data", HD_A_STR, 0}, {"eof", HD_A_BOOL, 0}}},
    [HC_CANCEL] = {.sandbox = 1, .on_exec = hd_exec_cancel, .args = {
        HD_SBX, HD_EXE}},
    [HC_SIGNAL] = {.sandbox = 1, .on_exec = hd_exec_signal, .args = {
        HD_SBX, HD_EXE, {"signal", HD_A_NUM, 1}}},
    [HC_RESIZE] = {.sandbox = 1, .on_exec = hd_exec_resize, .args = {
        HD_SBX, HD_EXE, {"cols", HD_A_NUM, 1}, {"rows", HD_A_NUM, 1}}},
    [HC_FILE_READ] = {.sandbox = 1, .fn = hd_op_file, .args = {
        HD_SBX, HD_PATH, HD_SPOOL}},
    [HC_FILE_TREE] = {.sandbox = 1, .fn = hd_op_file, .args = {
        HD_SBX, HD_PATH, {"depth", HD_A_NUM, 0}}},
    [HC_FILE_WRITE] = {.sandbox = 1, .fn = hd_op_file, .args = {
        HD_SBX, HD_PATH, HD_SPOOL, {"len", HD_A_NUM, 1}}},
    [HC_FILE_MKDIR] = {.sandbox = 1, .fn = hd_op_file, .args = {
        HD_SBX, HD_PATH}},
    [HC_FILE_DELETE] = {.sandbox = 1, .fn = hd_op_file, .args = {
        HD_SBX, HD_PATH, {"recursive", HD_A_BOOL, 0}}},
    [HC_FILE_STAT] = {.sandbox = 1, .fn = hd_op_file, .args = {
        HD_SBX, HD_PATH}},
    [HC_FILE_MOVE] = {.sandbox = 1, .fn = hd_op_file, .args = {
        HD_SBX, HD_PATH, {"to", HD_A_STR, 1}}},
    [HC_CTX_CREATE] = {.sandbox = 1, .fn = hd_op_ctx_create, .args = {
        HD_SBX, HD_CTX_ID, {"language", HD_A_STR, 1}, {"owner", HD_A_ID, 1},
        {"cwd", HD_A_STR, 0}}},
    [HC_CTX_RUN] = {.sandbox = 1, .later = 1, .fn = hd_op_ctx_run, .args = {
        HD_SBX, HD_CTX_ID, {"id", HD_A_ID, 1}, {"owner", HD_A_ID, 1},
        {"code", HD_A_STR, 1}, {"timeout_ms", HD_A_NUM, 0},
        {"wait", HD_A_BOOL, 0}}},
    [HC_CTX_DELETE] = {.sandbox = 1, .fn = hd_op_ctx_delete, .args = {
        HD_SBX, HD_CTX_ID, {"owner", HD_A_ID, 0}}},
    [HC_WATCH_START] = {.sandbox = 1, .fn = hd_op_watch_start, .args = {
        HD_SBX, HD_PATH, {"id", HD_A_ID, 1}, {"owner", HD_A_ID, 1},
        {"recursive", HD_A_BOOL, 0}, {"ephemeral", HD_A_BOOL, 0}}},
    [HC_WATCH_STOP] = {.sandbox = 1, .fn = hd_op_watch_stop, .args = {
        HD_SBX, {"watch", HD_A_ID, 1}}},
    [HC_PORTS] = {.sandbox = 1, .paused_ok = 1, .fn = hd_op_ports,
        .args = {HD_SBX}},
    /* A paused sandbox's layer may be packed (it is frozen already). */
    [HC_TREE_PACK] = {.sandbox = 1, .paused_ok = 1, .fn = hd_op_tree_pack,
        .args = {HD_SBX, {"what", HD_A_STR, 1}, HD_SPOOL}},
    [HC_TREE_UNPACK] = {.sandbox = 1, .fn = hd_op_tree_unpack, .args = {
        HD_SBX, HD_PATH, HD_SPOOL}},
};
/* clang-format on */

/* 1 if v has type t. */
static int hd_arg_is(const cJSON *v, hd_arg_type t)
{
    const cJSON *it;

    switch (t) {
    case HD_A_STR:
        return cJSON_IsString(v);
    case HD_A_ID:
        return cJSON_IsString(v) && id_valid(v->valuestring);
    case HD_A_NUM:
        return cJSON_IsNumber(v);
    case HD_A_BOOL:
        return cJSON_IsBool(v);
    case HD_A_OBJ:
        return cJSON_IsObject(v);
    case HD_A_ARR:
        return cJSON_IsArray(v);
    case HD_A_STRV:
        if (!cJSON_IsArray(v))
            return 0;
        cJSON_ArrayForEach(it, v)
        {
            if (!cJSON_IsString(it))
                return 0;
        }
        return 1;
    }
    return 0;
}

/* Check args against the row's list: each present argument has its type
 * (null counts as absent), each required one is present. Returns NULL or
 * the name of the first bad argument. */
static const char *hd_args_check(const hd_op *op, const cJSON *args)
{
    for (const hd_arg *a = op->args; a->name != NULL; a++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, a->name);
        if (v == NULL || cJSON_IsNull(v)) {
            if (a->required)
                return a->name;
            continue;
        }
        if (!hd_arg_is(v, a->type))
            return a->name;
    }
    return NULL;
}

void hd_ops_run(hd_job *job)
{
    const hd_op *op;
    const char *bad;
    hd_sandbox *s = NULL;

    if (job->rid[0] == '\0' || !cJSON_IsObject(job->args)) {
        log_warn("dropping malformed job %s", job->entry);
        return;
    }
    if (job->deadline_ms < hd_now_ms()) {
        log_info("dropping job %s (%s): past its deadline", job->entry,
                 job->op);
        return;
    }
    if (job->opn >= HC_OP_COUNT ||
        (hd_ops[job->opn].fn == NULL && hd_ops[job->opn].on_exec == NULL)) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "unknown op");
        return;
    }
    op = &hd_ops[job->opn];
    log_debug("job %s: %s%s", job->entry, job->op,
              op->later ? " (answered when its execution ends)" : "");
    if ((bad = hd_args_check(op, job->args)) != NULL) {
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad %s job: %s", job->op,
                     bad);
        return;
    }
    if (op->sandbox) {
        s = hd_find(hd_arg_str(job->args, "sandbox"));
        if (s == NULL) {
            hd_reply_err(job->rid, SP_E_NOT_FOUND, "sandbox not found");
            return;
        }
        if (s->paused_ms != 0 && !op->paused_ok) {
            hd_reply_err(job->rid, SP_E_PAUSED, "sandbox is paused");
            return;
        }
    }
    if (op->on_exec != NULL) {
        hd_exec *e = hd_exec_target(s, job);
        if (e != NULL)
            op->on_exec(e, job);
        return;
    }
    op->fn(s, job);
}
