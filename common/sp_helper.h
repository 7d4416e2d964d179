/* sp_helper.h: the one client through which handlers ask a sandbox helper
 * to act (docs/DESIGN.md, "Helper protocol").
 *
 * Every operation is one row of HC_OPS below: its name on the wire. The
 * helper's table (helper/hd_ops.c) has a row for each with what it needs
 * (a sandbox or not), its argument checks, its function and whether its
 * answer waits for an execution to end. Handlers call the typed functions
 * here; none builds a job by hand.
 *
 * Error model. Each call returns 0 or -1 and fills an rpc_err (sp_rpc.h):
 *   RPC_TRANSPORT  the helper could not be asked or did not answer in time
 *                  (Redis down, no helper, timeout): st SP_E_UNAVAILABLE;
 *   RPC_ANSWER     the helper answered with an error: st is its code
 *                  (not_found, conflict, rate_limited, …), msg its words.
 * Only handlers turn either into HTTP (http_send_rpc_error, sp_http.h).
 *
 * Executions. hc_exec starts a process (a command, a code run, a
 * terminal) in a sandbox, or with sandbox NULL in a one-off sandbox of the
 * pool (which counts against the subject's one-off runs until it ends).
 * With wait set, the answer comes when it has ended: the facts of its end
 * (hc_facts), which the handler renders in the shape its route answers. */
#ifndef SP_HELPER_H
#define SP_HELPER_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "sp_rpc.h"

/* How long a call waits for its answer (executions give their own). */
#define HC_CREATE_WAIT_MS 30000 /* create, delete */
#define HC_OP_WAIT_MS     10000 /* usage, timeout, stdin, signals */
#define HC_FILE_WAIT_MS   30000 /* files */
#define HC_CTX_WAIT_MS    30000 /* context start and end */
#define HC_TREE_WAIT_MS   180000 /* a tree packed or unpacked (tar) */

/* Every helper operation: enum name, name on the wire. */
#define HC_OPS(X)                                                              \
    X(HC_CREATE, "create")           /* make a sandbox (any helper) */         \
    X(HC_RUN, "run")                 /* an execution in a one-off sandbox */   \
    X(HC_DELETE, "delete")           /* end a sandbox */                       \
    X(HC_USAGE, "usage")             /* a sandbox's live usage */              \
    X(HC_TIMEOUT, "timeout")         /* a sandbox's new time to live */        \
    X(HC_NETWORK, "network")         /* a sandbox's new egress policy */       \
    X(HC_PAUSE, "pause")             /* freeze a sandbox's processes */        \
    X(HC_RESUME, "resume")           /* thaw them */                           \
    X(HC_EXEC, "exec")               /* an execution in a sandbox */           \
    X(HC_STDIN, "stdin")             /* input to an execution */               \
    X(HC_CANCEL, "cancel")           /* end an execution as cancelled */       \
    X(HC_SIGNAL, "signal")           /* a signal to an execution */            \
    X(HC_RESIZE, "resize")           /* a terminal's window size */            \
    X(HC_FILE_READ, "file_read")     /* a file's bytes or a directory list */  \
    X(HC_FILE_TREE, "file_tree")     /* a directory tree */                    \
    X(HC_FILE_WRITE, "file_write")   /* write a file (parents made) */         \
    X(HC_FILE_MKDIR, "file_mkdir")   /* make a directory (parents made) */     \
    X(HC_FILE_DELETE, "file_delete") /* remove a file or a tree */             \
    X(HC_FILE_STAT, "file_stat")     /* one entry (a symlink not followed) */  \
    X(HC_FILE_MOVE, "file_move")     /* rename (destination parents made) */   \
    X(HC_CTX_CREATE, "ctx_create")   /* start a stateful context */            \
    X(HC_CTX_RUN, "ctx_run")         /* run code in a context */               \
    X(HC_CTX_DELETE, "ctx_delete")   /* end a context */                       \
    X(HC_TPL_DELETE, "template_delete") /* remove an unused template */        \
    X(HC_TPL_BUILD, "template_build")   /* start a template build */           \
    X(HC_WATCH_START, "watch_start")    /* watch a directory's file events */  \
    X(HC_WATCH_STOP, "watch_stop")      /* end a watch */                      \
    X(HC_PORTS, "ports")                /* a sandbox's listening TCP ports */ \
    X(HC_TREE_PACK, "tree_pack")        /* a layer or directory as tar */     \
    X(HC_TREE_UNPACK, "tree_unpack")    /* a tar archive into a directory */

typedef enum hc_op {
#define HC_ENUM(e, name) e,
    HC_OPS(HC_ENUM)
#undef HC_ENUM
        HC_OP_COUNT
} hc_op;

/* Execution kinds the helper knows (helper/hd_kind.c): what a process's
 * events are and how it ends. */
#define HC_KIND_COMMAND  "command"  /* commands and code runs */
#define HC_KIND_TERMINAL "terminal" /* a PTY shell: output/ready/exit */

/* The wire name of op; "" for an unknown value. */
const char *hc_op_name(hc_op op);

/* The op named name, or HC_OP_COUNT if none. */
hc_op hc_op_find(const char *name);

/* What a sandbox is made with (POST /sandboxes after the handler's
 * policy). Strings and JSON stay the caller's. */
typedef struct hc_sandbox_req {
    const char *id, *owner;
    long long timeout_s, memory_mb, pids, disk_mb, cpus_milli;
    int network;               /* any network (sp_netpol's network) */
    int public_ports;          /* its ports open to anyone (preview URLs) */
    const cJSON *netpol;       /* its policy (netpol_json), or NULL */
    const cJSON *env;          /* object of strings, or NULL */
    const cJSON *metadata;     /* object, or NULL */
    const char *template_name; /* NULL: SP_DEFAULT_TEMPLATE */
    /* A snapshot's layer (a tar archive) for the new disk, written by
     * layer_fill into a spool file's fd (returns its size, or -1); NULL:
     * none. */
    long long (*layer_fill)(void *ctx, int fd);
    void *layer_ctx;
} hc_sandbox_req;

/* An execution to start. Strings and JSON stay the caller's. */
typedef struct hc_exec_req {
    const char *id;         /* exe_ or trm_ id made by the caller */
    const char *kind;       /* HC_KIND_* */
    const char *owner;      /* the subject */
    const char *sandbox;    /* NULL: a one-off sandbox (op run) */
    const cJSON *argv;      /* array of strings */
    const cJSON *env;       /* object of strings, or NULL */
    const char *cwd;        /* or NULL */
    const char *user;       /* "root", a name or uid; NULL: the template's */
    const char *stdin_data; /* written first, or NULL */
    int stdin_open;         /* stdin stays open for later input */
    int pty;
    long long cols, rows;
    long long timeout_ms; /* 0: none */
    int wait;             /* answer at the end (facts), not at the start */
    const cJSON *compile; /* argv run first; the program only if it succeeds */
    const cJSON *scratch; /* paths removed at the end */
    const cJSON *files;   /* [{path, content}] written first (one-off only) */
    long long expires_in_s; /* a one-off sandbox's time to live; 0: default */
} hc_exec_req;

/* A run of code in a stateful context. */
typedef struct hc_ctx_run_req {
    const char *sandbox, *ctx, *id, *owner, *code;
    long long timeout_ms;
    int wait;
} hc_ctx_run_req;

/* A watch of a directory in a sandbox (helper/hd_watch.c). Strings stay
 * the caller's. */
typedef struct hc_watch_req {
    const char *sandbox, *id, *owner; /* id: a wch_ id made by the caller */
    const char *path;                 /* as the sandbox sees it */
    int recursive;
    int ephemeral; /* ends once nobody has read its stream for
                    * SP_WATCH_GRACE seconds */
} hc_watch_req;

/* The answer of an execution: when it started (wait 0) json holds
 * execution_id, sandbox_id and helper; when it ended, json holds its
 * facts {id, status, exit_code, signal?, duration_ms, truncated, error?,
 * context?: {results, exception?}} and stdout/stderr its captured bytes
 * (any bytes, not NUL-terminated; pointers into raw). */
typedef struct hc_facts {
    const cJSON *json;
    const char *out[2];
    size_t out_len[2];
    rpc_reply raw;
} hc_facts;

/* Release f; NULL-safe. */
void hc_facts_free(hc_facts *f);

/* Make a sandbox on any helper; id_out (SP_ID_SIZE) gets its id: q->id,
 * or the id of a ready sandbox the helper gave instead (hd_pool_named.c). */
int hc_create(const hc_sandbox_req *q, char *id_out, rpc_err *err);

/* End sandbox sbx (on helper). */
int hc_delete(const char *helper, const char *sbx, rpc_err *err);

/* sbx's live usage into *usage (an object the caller frees). */
int hc_usage(const char *helper, const char *sbx, cJSON **usage, rpc_err *err);

/* The TCP ports that listen inside sbx into *ports (an array of
 * {port, address}, ascending by port, that the caller frees). */
int hc_ports(const char *helper, const char *sbx, cJSON **ports, rpc_err *err);

/* Pause sandbox sbx (freeze every process; its timeout stops), or resume
 * it (its processes go on, its timeout with the time it had left); either
 * is a no-op when it is already so. */
int hc_pause(const char *helper, const char *sbx, rpc_err *err);
int hc_resume(const char *helper, const char *sbx, rpc_err *err);

/* Give sbx timeout_s more seconds to live from now. */
int hc_timeout(const char *helper, const char *sbx, long long timeout_s,
               rpc_err *err);

/* Give sbx the egress policy netpol (netpol_json of a parsed policy);
 * *network gets the policy as the helper took it (caller frees).
 * Errors: conflict (a sandbox made without network asked for some). */
int hc_network(const char *helper, const char *sbx, const cJSON *netpol,
               cJSON **network, rpc_err *err);

/* Start q (helper NULL when q->sandbox is NULL) and wait up to wait_ms for
 * the answer into *out (caller frees with hc_facts_free). A one-off run
 * reserves one of q->owner's runs first (SP_E_RATE_LIMITED as an answer
 * when none is left; released here on failure, by the helper at its end;
 * it lapses at reserve_until_ms). */
int hc_exec(const char *helper, const hc_exec_req *q, long long wait_ms,
            long long reserve_until_ms, hc_facts *out, rpc_err *err);

/* Input to execution exe of sbx: data (may be NULL), then eof. */
int hc_stdin(const char *helper, const char *sbx, const char *exe,
             const char *data, int eof, rpc_err *err);

/* Cancel execution exe of sbx. */
int hc_cancel(const char *helper, const char *sbx, const char *exe,
              rpc_err *err);

/* Signal sig to execution exe of sbx. */
int hc_signal(const char *helper, const char *sbx, const char *exe, int sig,
              rpc_err *err);

/* New window size of terminal execution exe of sbx. */
int hc_resize(const char *helper, const char *sbx, const char *exe,
              long long cols, long long rows, rpc_err *err);

/* A file's bytes (json type "file", raw in out->data, caller frees with
 * rpc_reply_free) or a directory's listing (json). The bytes come back
 * through a spool file (sp_spool.h), never through Redis. */
int hc_file_read(const char *helper, const char *sbx, const char *path,
                 rpc_reply *out, rpc_err *err);

/* A directory tree down to depth. */
int hc_file_tree(const char *helper, const char *sbx, const char *path,
                 long long depth, rpc_reply *out, rpc_err *err);

/* Write len bytes of data at path; out gets the file's entry. The bytes
 * go to the helper through a spool file (sp_spool.h), never through
 * Redis. */
int hc_file_write(const char *helper, const char *sbx, const char *path,
                  const void *data, size_t len, rpc_reply *out, rpc_err *err);

/* As hc_file_write, the bytes written by fill into the spool file's fd
 * (a stream copied in without a buffer of its size): fill returns how
 * many it wrote (at most SPOOL_BODY_MAX), or -1. */
int hc_file_write_with(const char *helper, const char *sbx, const char *path,
                       long long (*fill)(void *ctx, int fd), void *ctx,
                       rpc_reply *out, rpc_err *err);

/* Make directory path (and parents); out gets its entry. */
int hc_file_mkdir(const char *helper, const char *sbx, const char *path,
                  rpc_reply *out, rpc_err *err);

/* Remove path (a directory only when recursive). */
int hc_file_delete(const char *helper, const char *sbx, const char *path,
                   int recursive, rpc_err *err);

/* The entry of path, a symlink not followed: {name, path, type, size,
 * modified, mode, uid, gid, target?} into out (caller frees). */
int hc_file_stat(const char *helper, const char *sbx, const char *path,
                 rpc_reply *out, rpc_err *err);

/* Rename from to to (to's parents made; both confined alike); out gets
 * to's entry as hc_file_stat's (caller frees). */
int hc_file_move(const char *helper, const char *sbx, const char *from,
                 const char *to, rpc_reply *out, rpc_err *err);

/* Start context ctx (language canonical) in sbx for owner, its driver in
 * directory cwd (NULL: the template's working directory). */
int hc_ctx_create(const char *helper, const char *sbx, const char *ctx,
                  const char *language, const char *cwd, const char *owner,
                  rpc_err *err);

/* Run code in a context; answered as hc_exec answers. */
int hc_ctx_run(const char *helper, const hc_ctx_run_req *q, long long wait_ms,
               hc_facts *out, rpc_err *err);

/* End context ctx of sbx (owner's). */
int hc_ctx_delete(const char *helper, const char *sbx, const char *ctx,
                  const char *owner, rpc_err *err);

/* Remove template name (made by owner; not in use). */
int hc_tpl_delete(const char *name, const char *owner, rpc_err *err);

/* A template build (POST /templates after the handler's checks). Strings
 * and JSON stay the caller's. */
typedef struct hc_tpl_build_req {
    const char *build, *name, *owner, *spec;
    int private_;
    const cJSON *args;  /* object of strings, or NULL */
    const cJSON *files; /* object path → text, or NULL */
} hc_tpl_build_req;

/* Start a build (it runs on; its events are events:<build>). */
int hc_tpl_build(const hc_tpl_build_req *q, rpc_err *err);

/* Pack what ("layer": the writable layer of a template's sandbox, frozen
 * meanwhile; else a directory path inside sbx) as a tar archive in a
 * spool file; take(ctx, fd, size) reads it (fd at offset 0) before the
 * file is removed, and its result (0 or -1) is the call's, with err left
 * for take to explain (RPC_ANSWER, SP_E_INTERNAL by default).
 * Errors: invalid_argument (host view "layer", bad path), not_found. */
int hc_tree_pack(const char *helper, const char *sbx, const char *what,
                 int (*take)(void *ctx, int fd, long long size), void *ctx,
                 rpc_err *err);

/* Unpack the tar archive fill writes into a spool file's fd (returns its
 * size, or -1) into directory path of sbx (made first by the caller).
 * Errors: invalid_argument (an archive tar refused), not_found. */
int hc_tree_unpack(const char *helper, const char *sbx, const char *path,
                   long long (*fill)(void *ctx, int fd), void *ctx,
                   rpc_err *err);

/* Start watch q->id on helper; out gets {watch_id, path, recursive}
 * (path normalised). Errors: not_found (no such directory),
 * invalid_argument (bad path, not a directory), rate_limited (the sandbox
 * has SP_WATCH_MAX_PER_SANDBOX watches). */
int hc_watch_start(const char *helper, const hc_watch_req *q, rpc_reply *out,
                   rpc_err *err);

/* End watch wch of sbx (its stream gets its end event). */
int hc_watch_stop(const char *helper, const char *sbx, const char *wch,
                  rpc_err *err);

#endif
