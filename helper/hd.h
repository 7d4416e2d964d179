/* hd.h: what the files of the sandbox helper daemon (sp-helperd) share:
 * the sandbox and execution records, jobs, and replies. See helperd.c for
 * the theory of operation. */
#ifndef HD_H
#define HD_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <string.h>
#include <stdint.h>
#include <sys/types.h>

#include "sbx.h"
#include "sp_buf.h"
#include "sp_utf8.h"
#include "sp_status.h"

#define HD_MAX_SLOTS 4096 /* sandboxes per helper (one host uid each) */
#define HD_STDIN_MAX (1024 * 1024)

typedef struct hd_job {
    char op[32];
    char rid[65];
    char entry[64]; /* stream entry id, acknowledged when handled */
    int shared;     /* from the shared stream (else our own) */
    long long deadline_ms;
    cJSON *args;
    char *data; /* raw bytes, may be NULL */
    size_t len;
    struct hd_job *next;
} hd_job;

struct hd_sandbox;
struct hd_ctx; /* hd_ctx.h */

typedef struct hd_exec {
    char id[65];
    uint32_t req_id;
    struct hd_sandbox *sbx;
    int fds[2];        /* stdout, stderr read ends (-1 when closed) */
    int in_fd;         /* stdin write end (-1 when closed) */
    int pidfd;         /* of the main process, for signals */
    sp_buf pending_in; /* stdin not yet written */
    int close_in;      /* close stdin once pending_in is written */
    int pty, background;
    int execute_shape; /* reply in the /execute shape (docs/DESIGN.md §4.3) */
    int terminal;      /* a terminal: output/ready/exit events */
    long long last_input_ms, last_watch_check_ms, watched_ms;
    int compiling;      /* the compile step runs; then `then` is run */
    int compile_failed; /* status compile_error: the program never ran */
    cJSON *then;        /* the job's args, kept for the run after it */
    cJSON *scratch;     /* paths removed when the execution ends */
    char rid[65];       /* sync command: reply here at the end */
    long long started_ms, deadline_ms;
    size_t out_bytes, out_max;
    int truncated, timed_out, killed, cancelled, over_limit, oom;
    int exited, wait_status;
    sp_buf cap[2];       /* captured stdout/stderr for sync replies */
    utf8_carry carry[2]; /* partial characters of stdout, stderr */
    uint64_t oom_before;
    struct hd_ctx *ctx; /* a context's driver: its output goes there */
    struct hd_exec *next;
} hd_exec;

typedef struct hd_sandbox {
    char id[65];
    char owner[65];
    sbx_sandbox *sbx;
    int slot;
    uid_t uid;
    long long created, expires_at;
    int network;
    int ephemeral; /* made for one run: ends when its executions do */
    cJSON *env;    /* object of strings given at create */
    hd_exec *execs;
    struct hd_ctx *ctxs; /* stateful contexts (hd_ctx.c) */
    struct hd_sandbox *next;
} hd_sandbox;

/* helperd.c */
extern char hd_helper_id[65];
extern unsigned long hd_reply_errors; /* error replies sent so far */
void hd_reply(const char *rid, cJSON *obj, const void *data, size_t len);
void hd_reply_err(const char *rid, sp_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
long long hd_now_ms(void);

/* hd_sandbox.c: the sandboxes of this helper (main thread only). */
extern hd_sandbox *hd_sandboxes;
hd_sandbox *hd_find(const char *id);
long long hd_arg_int(const cJSON *o, const char *name, long long def);
const char *hd_arg_str(const cJSON *o, const char *name);
void hd_op_create(hd_job *job); /* "create" */
void hd_op_run(hd_job *job);    /* "run": one-off, pooled */
void hd_op_usage(hd_sandbox *s, hd_job *job);
void hd_op_timeout(hd_sandbox *s, hd_job *job);
void hd_sandbox_end(hd_sandbox *s, const char *why); /* frees s */
void hd_pool_fill(void);  /* make one ready sandbox if the pool is short */
void hd_pool_drain(void); /* end the pool's sandboxes (at stop) */

/* hd_exec.c */
void hd_exec_keys(const hd_exec *e, char *ek, char *vk, size_t n);
/* Append one event {type, data (raw bytes)} to the execution's stream. */
void hd_event(const hd_exec *e, const char *type, const void *data, size_t len);
/* The same for a NUL-terminated data string. */
#define hd_event_str(e, type, s) hd_event((e), (type), (s), strlen(s))
void hd_exec_start(hd_sandbox *s, hd_job *job);
void hd_exec_job(hd_sandbox *s, hd_job *job); /* stdin, signal, resize */
void hd_exec_read(hd_exec *e, int which);
void hd_exec_write_stdin(hd_exec *e);
void hd_exec_exited(hd_sandbox *s, uint32_t req_id, int wait_status);
void hd_exec_tick(hd_sandbox *s, long long now_ms);
void hd_exec_kill_all(hd_sandbox *s, const char *why);
long long hd_exec_next_deadline(const hd_sandbox *s);

/* hd_result.c */
/* Record e's result, emit its result (or exit) event, answer a caller
 * that waits, remove its scratch files. e is freed by the caller. */
void hd_exec_finish(hd_exec *e);
/* Finish an execution an earlier run of the helper left running. */
void hd_exec_lost(const char *exe_id, const char *message);
hd_exec *hd_exec_by_id(hd_sandbox *s, const char *id); /* NULL if none */

/* hd_ctx.c, hd_ctx_frames.c: stateful contexts (theory of operation in
 * hd_ctx.c) */
void hd_ctx_op(hd_sandbox *s, hd_job *job); /* ctx_create, _run, _delete */
/* cancel (or stdin, signal, resize) of a context run: answered, 1; 0 if
 * exe is not a run of a context of s */
int hd_ctx_exec_job(hd_sandbox *s, hd_job *job);
/* output of a context's driver (e->ctx set), in place of its events
 * (hd_ctx_frames.c) */
void hd_ctx_output(hd_exec *e, int which, const unsigned char *p, size_t n);
void hd_ctx_driver_ended(hd_exec *e); /* the driver's hd_exec finished */
void hd_ctx_tick(hd_sandbox *s, long long now_ms);
long long hd_ctx_next_deadline(const hd_sandbox *s); /* 0: none */
void hd_ctx_end_all(hd_sandbox *s, const char *why);
void hd_ctx_forget(const char *sandbox_id); /* Redis records, at restart */

/* hd_files.c */
pid_t hd_init_pid(const sbx_sandbox *sbx); /* host pid of sp-init */
void hd_files_job(hd_sandbox *s, hd_job *job);

#endif
