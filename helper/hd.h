/* hd.h: what the files of the sandbox helper daemon (sp-helperd) share:
 * the sandbox and execution records, jobs, and replies. See helperd.c for
 * the theory of operation.
 *
 * The files are layers; each calls only the ones before it (and later
 * ones only through a function pointer it was given, as a kind's
 * callbacks), which tests/integration/test_layers.py checks:
 *   hd_pub.c       the queue of writes to Redis
 *   hd_job.c       arguments, replies, the clock, the helper's id
 *   hd_work.c      the worker threads: work off the main loop
 *   hd_egress.c    the sandboxes' resolver, the "network" operation
 *   hd_tpl.c       templates read: meta.json, build locks
 *   hd_files*.c    the file operations inside a sandbox (hd_files_path.c:
 *                  how a path is confined)
 *   hd_watch.c     file watches: inotify → a watch's event stream
 *   hd_ports.c     a sandbox's ports: listed, connected for sp-preview
 *   hd_result.c    an execution's end: facts → event, record, answer
 *   hd_exec.c      executions: processes, output, input, deadlines
 *   hd_kind.c      the kinds command and terminal
 *   hd_ctx*.c      stateful contexts (and the kind of their driver)
 *   hd_sandbox.c   sandboxes: made and ended on workers, recorded
 *   hd_tree.c      trees packed and unpacked: snapshots, workspaces
 *   hd_tpl_ops.c   templates listed in Redis, pruned, deleted
 *   hd_tpl_build.c template builds asked for through the API
 *   hd_pool.c      the pool of ready sandboxes, one-off runs
 *   hd_pool_named.c ready sandboxes for create
 *   hd_metrics.c   samples of every sandbox's CPU, memory and disk
 *   hd_ops.c       the table of operations
 *   helperd.c      the intake thread and the main loop */
#ifndef HD_H
#define HD_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <string.h>
#include <stdint.h>
#include <sys/types.h>

#include "sbx.h"
#include "sp_buf.h"
#include "sp_helper.h"
#include "sp_id.h"
#include "sp_netpol.h"
#include "sp_utf8.h"
#include "sp_status.h"

#define HD_MAX_SLOTS 4096 /* sandboxes per helper (one host uid each) */
#define HD_STDIN_MAX (1024 * 1024)
#define HD_PATH_MAX  4096 /* a path inside a sandbox */

typedef struct hd_job {
    char op[32]; /* the name on the wire, for logs */
    hc_op opn;   /* the operation (HC_OP_COUNT if unknown) */
    char rid[SP_ID_SIZE];
    char entry[64]; /* stream entry id, acknowledged when handled */
    int shared;     /* from the shared stream (else our own) */
    long long deadline_ms;
    cJSON *args;
    /* The bytes of a write the helper makes itself (a one-off run's
     * files); never set from a stream entry: a job's file body is in the
     * spool (sp_spool.h). NULL otherwise. */
    const char *data;
    size_t len;
    /* Kept by its function past its return (answered once a worker has
     * done its part): helperd.c neither acknowledges nor frees it then;
     * hd_job_release does, later. */
    int held;
    /* Set by helperd.c while the job's function runs: a release then
     * (a held job answered at once, e.g. a create that takes a ready
     * sandbox) only marks it, and helperd.c frees it after the function
     * returns, never while it still reads the job. */
    int in_op, released;
    struct hd_job *next;
} hd_job;

/* The id of the last event the helper gave a stream: events are added
 * with explicit, increasing ids ("<ms>-<seq>"), so that an event sent
 * again after a Redis outage (its first sending ran, but the answer was
 * lost) is refused by Redis instead of appearing twice (hd_pub.c). */
typedef struct hd_evid {
    long long ms, seq;
} hd_evid;

/* The next id of a stream into out (HD_EVID_SIZE bytes). */
#define HD_EVID_SIZE 48
void hd_evid_next(hd_evid *v, char *out);

struct hd_sandbox;
struct hd_ctx; /* hd_ctx.h */
struct hd_exec;
struct hd_facts;

/* An execution kind (hd_kind.c): what its events are and how it ends. A
 * new kind of execution (a build step, an agent, an E2B process) is one
 * more of these. NULL members take the default of a command. */
typedef struct hd_kind {
    const char *name; /* as jobs name it (HC_KIND_*); NULL: internal only */
    /* The first events, once its process runs. */
    void (*start)(struct hd_exec *e);
    /* n bytes of output of stream which (0 stdout, 1 stderr); at_eof:
     * the stream closed (flush what is carried). */
    void (*output)(struct hd_exec *e, int which, const unsigned char *p,
                   size_t n, int at_eof);
    /* Every tick while it runs: 1 if it should be ended now. */
    int (*idle)(struct hd_exec *e, long long now_ms);
    /* It has ended: emit its last event, record it, answer who waits. */
    void (*finish)(struct hd_exec *e, const struct hd_facts *f);
} hd_kind;

extern const hd_kind hd_kind_command, hd_kind_terminal, hd_kind_context;

/* The kind a job names (NULL or "" → command); NULL if unknown or
 * internal. */
const hd_kind *hd_kind_find(const char *name);

typedef struct hd_exec {
    char id[SP_ID_SIZE];
    uint32_t req_id;
    struct hd_sandbox *sbx;
    int fds[2];        /* stdout, stderr read ends (-1 when closed) */
    int in_fd;         /* stdin write end (-1 when closed) */
    int pidfd;         /* of the main process, for signals */
    sp_buf pending_in; /* stdin not yet written */
    int close_in;      /* close stdin once pending_in is written */
    const hd_kind *kind;
    int pty;
    long long last_input_ms, last_watch_check_ms, watched_ms;
    int compiling;        /* the compile step runs; then `then` is run */
    int compile_failed;   /* status compile_error: the program never ran */
    cJSON *then;          /* the job's args, kept for the run after it */
    cJSON *scratch;       /* paths removed when the execution ends */
    char rid[SP_ID_SIZE]; /* sync command: reply here at the end */
    long long started_ms, deadline_ms;
    size_t out_bytes, out_max;
    size_t lost_bytes; /* output dropped while Redis was away, unreported */
    hd_evid evid;      /* the last event id given to its stream */
    int truncated, timed_out, killed, cancelled, over_limit, oom;
    int exited, wait_status;
    sp_buf cap[2];       /* captured stdout/stderr for sync replies */
    utf8_carry carry[2]; /* partial characters of stdout, stderr */
    uint64_t oom_before;
    struct hd_ctx *ctx; /* kind context: the context it drives */
    struct hd_exec *next;
} hd_exec;

#define HD_PATH_MAX 4096

/* A template a sandbox was made from (hd_tpl.c): its meta.json. */
typedef struct hd_tpl {
    char name[72], version[64];
    char rootfs[HD_PATH_MAX + 256];
    char user[64];     /* who programs run as by default */
    char workdir[256]; /* where they start by default */
    cJSON *env;        /* the template's ENV, under the sandbox's own */
} hd_tpl;

typedef struct hd_sandbox {
    char id[SP_ID_SIZE];
    char owner[SP_ID_SIZE];
    sbx_sandbox *sbx;
    int slot;
    uid_t uid;
    long long created, expires_at;
    long long paused_ms; /* Unix ms it was paused at; 0: it runs */
    uint64_t memory_mb;  /* its limits, for its metrics */
    double cpus;
    uint64_t m_cpu_ns; /* its CPU time at the last metrics sample */
    long long m_at_ms; /* when that was (0: none yet) */
    hd_evid m_evid;    /* the last id of its metrics stream */
    int network;   /* made with network (slirp4netns attached) */
    sp_netpol net; /* its egress policy now */
    int dns_fd;    /* its resolver socket until the resolver takes it */
    int resolving; /* the resolver answers its DNS (hd_egress.c) */
    int ephemeral; /* made for one run: ends when its executions do */
    int lost;      /* found gone: its work was ended for it; publish nothing */
    cJSON *env;    /* object of strings given at create */
    hd_tpl *tpl;   /* its template, or NULL for the host view */
    hd_exec *execs;
    struct hd_ctx *ctxs;      /* stateful contexts (hd_ctx.c) */
    struct hd_watch *watches; /* file watches (hd_watch.c) */
    struct hd_sandbox *next;
} hd_sandbox;

/* The facts of an execution's end, from which the result record, the
 * result event and the answer to a waiting caller are made (hd_result.c);
 * the handlers render API answers from them. */
typedef struct hd_facts {
    const char *id, *sandbox;
    const char *status; /* ok, error, timeout, oom, killed, cancelled, … */
    int exit_code;
    const char *signal; /* name of the killing signal, or NULL */
    long long duration_ms;
    int truncated;
    const char *error;      /* why the helper ended it, or NULL */
    const sp_buf *cap[2];   /* stdout, stderr captured (or NULL) */
    hd_evid *evid;          /* its stream's ids (NULL: Redis picks) */
    const cJSON *results;   /* a context run: its rich results, else NULL */
    const cJSON *exception; /* a context run: {name, message, traceback} */
    int execution_count;    /* a context run: its driver's count, else 0 */
} hd_facts;

/* hd_pub.c: every write of the main thread to Redis, queued in order and
 * sent at the end of each pass of the main loop; kept while Redis is away
 * (hiredis format, as rds_cmd). */
void hd_pub(const char *fmt, ...);
/* 1 if len more bytes of output fit in the queue now (else: drop it and
 * count it as lost). */
int hd_pub_room(size_t len);
/* Send what is queued; 0, or -1 if Redis is away (kept for later). */
int hd_pub_flush(void);
size_t hd_pub_pending(void); /* bytes queued */

/* hd_job.c: taking and answering jobs (every file may use it). */
extern char hd_helper_id[SP_ID_SIZE];
/* A held job (hd_job.held) is done: acknowledged and freed (through
 * hd_job_end, which helperd.c sets at start). */
void hd_job_release(hd_job *job);
extern void (*hd_job_end)(hd_job *job);
extern unsigned long hd_reply_errors; /* error replies sent so far */
void hd_reply(const char *rid, cJSON *obj, const void *data, size_t len);
void hd_reply_err(const char *rid, sp_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
long long hd_now_ms(void);
/* A job argument: a number (def when absent or not a number), a string
 * (NULL when absent or not a string). */
long long hd_arg_int(const cJSON *o, const char *name, long long def);
const char *hd_arg_str(const cJSON *o, const char *name);

/* hd_work.c: work off the main loop, on worker threads that live as long
 * as the helper (a sandbox's bwrap dies with the thread that made it).
 * A piece of work is a struct whose first member is an hd_work: run is
 * called on a worker (the sandbox library and the records handed to it
 * only, which nothing else uses meanwhile: never Redis, hd_pub or the
 * helper's lists), then done on the main thread (it publishes, answers
 * and frees). */
typedef struct hd_work {
    void (*run)(struct hd_work *w);
    void (*done)(struct hd_work *w);
    struct hd_work *next;
} hd_work;
int hd_work_init(void); /* start the workers (once); 0, or -1 logged */
void hd_work_submit(hd_work *w);
void hd_work_submit_first(hd_work *w); /* before all waiting work */
int hd_work_fd(void);                  /* readable: call hd_work_complete */
void hd_work_complete(void);           /* call done of each finished piece */
size_t hd_work_pending(void);          /* submitted, done not yet called */
void hd_work_wait(void);               /* complete until nothing is pending */

/* hd_egress.c: the resolver of sandboxes whose policy has lists (theory
 * of operation there) and the operation that changes a policy. */
int hd_egress_init(void); /* start its thread (once); 0, or -1 logged */
/* The resolver takes s->dns_fd and answers s's DNS under a copy of
 * s->net (main thread). 0, or -1 (s->dns_fd stays the caller's). */
int hd_egress_attach(hd_sandbox *s);
void hd_egress_detach(hd_sandbox *s); /* s ends: the resolver lets go */
/* network and netpol of sbx:<id> from s->net (hd_pub). */
void hd_egress_record(const hd_sandbox *s);
void hd_op_network(hd_sandbox *s, hd_job *job); /* "network" */

/* hd_sandbox.c: the sandboxes of this helper (main thread only; made and
 * ended on workers). */
extern hd_sandbox *hd_sandboxes;
hd_sandbox *hd_find(const char *id);
/* made(s, lim, arg, err) on the main thread once a sandbox asked for by
 * hd_sandbox_make is made (listed in helper:<id>:sbxs, in no other list;
 * the callee owns s) or not (s NULL; err says why). */
typedef void (*hd_made_fn)(hd_sandbox *s, const sbx_limits *lim, void *arg,
                           const char *err);
/* Make a sandbox on a worker; made is called later. layer: -1, or the fd
 * of a snapshot's layer (a tar archive, sbx_root) for a template's
 * sandbox, taken over (closed here, whatever happens). Returns 0, or -1
 * if it cannot be asked for (the helper is full; made is not called). */
int hd_sandbox_make(const char *id, const char *owner, const sbx_limits *lim,
                    int layer, const sp_netpol *net, const cJSON *env, long long timeout,
                    hd_tpl *tpl, hd_made_fn made, void *arg);
void hd_default_limits(sbx_limits *lim); /* a one-off run's */
/* A create job's limits and template name (SP_DEFAULT_TEMPLATE if it
 * names none); -1 after answering a bad one. */
int hd_create_args(hd_job *job, sbx_limits *lim, const char **tname);
/* The ready sandbox s becomes the one the create job asked for (owner,
 * env, timeout; it keeps its own id, which the answer gives): recorded,
 * answered. */
void hd_sandbox_adopt(hd_sandbox *s, hd_job *job, const sbx_limits *lim);
/* Freeze s for the helper's own moment (a snapshot of its layer): 1 if
 * frozen now (hd_sandbox_unhold thaws it and moves its clocks on), 0 if
 * its owner had paused it (left so), -1 if it could not be frozen. While
 * held, it is paused to every operation (409 paused). */
int hd_sandbox_hold(hd_sandbox *s);
void hd_sandbox_unhold(hd_sandbox *s);
/* 1 if a sandbox being made uses version (NULL: any) of template name. */
int hd_sandbox_making_tpl(const char *name, const char *version);

/* hd_tree.c: "tree_pack" {sandbox, what: "layer" | path, spool}: the
 * writable layer (frozen meanwhile) or a directory as a tar archive in
 * the spool file, answered {size}; "tree_unpack" {sandbox, path, spool}:
 * the archive unpacked into the directory path (a layer: at create only,
 * the create's args.layer). */
void hd_op_tree_pack(hd_sandbox *s, hd_job *job);
void hd_op_tree_unpack(hd_sandbox *s, hd_job *job);

/* hd_ports.c: a sandbox's TCP ports (theory of operation there). The
 * registry the forward thread reads, kept by the main thread: a named
 * sandbox added once recorded (public_ports: anyone may reach its ports),
 * marked paused or not, removed when it ends. */
void hd_ports_add(const hd_sandbox *s, int public_ports);
void hd_ports_paused(const char *id, int paused);
void hd_ports_remove(const char *id);
/* Start the forward thread on run_dir/FWD_SOCKET_NAME (sp_fwd.h); 0, or
 * -1 logged (the helper goes on without preview URLs). */
int hd_ports_serve(const char *run_dir);
/* "ports": {ports:[{port}]} of the sandbox's listening TCP sockets. */
void hd_op_ports(hd_sandbox *s, hd_job *job);

/* hd_tpl.c: templates read. The templates directory; a template's meta
 * (NULL: none); one loaded for a sandbox of subject (NULL: none, or
 * another subject's private one); freed; 1 while a build holds name. */
const char *hd_tpl_dir(void);
const char *hd_tpl_ctx_root(void); /* API builds' specs and files */
cJSON *hd_tpl_meta(const char *name);
hd_tpl *hd_tpl_load(const char *name, const char *subject);
void hd_tpl_free(hd_tpl *t);
int hd_tpl_building(const char *name);
/* Take the tree at path away at once (renamed into templates/.trash) and
 * remove it on a worker; 0, or -1 if it could not be moved. At start:
 * what an earlier helper left in .trash, removed the same way. */
int hd_tpl_discard(const char *path);
void hd_tpl_discard_leftovers(void);
/* A build of name starts (-1: one runs already, or too many) / ended. */
int hd_tpl_claim(const char *name);
void hd_tpl_release(const char *name);

/* hd_tpl_ops.c: the list in Redis (every few seconds, at once when
 * hd_tpl_dirty), unused versions removed, "template_delete". */
extern volatile int hd_tpl_dirty;
void hd_tpl_tick(long long now);
/* name's record and place in the list now, on the calling thread's own
 * Redis connection (a build's thread, before it says the build ended). */
void hd_tpl_register_now(const char *name);
void hd_op_tpl_delete(hd_sandbox *none, hd_job *job);

/* hd_tpl_build.c: "template_build" (sp-template on a thread of its own,
 * its output as the build's events). hd_template_path: sp-template. At
 * start: builds a stopped helper left, ended as failed. */
extern char hd_template_path[HD_PATH_MAX];
void hd_op_tpl_build(hd_sandbox *none, hd_job *job);
void hd_tpl_build_reap(void);
void hd_op_create(hd_sandbox *none, hd_job *job); /* "create" */
void hd_op_delete(hd_sandbox *s, hd_job *job);
void hd_op_usage(hd_sandbox *s, hd_job *job);
void hd_op_timeout(hd_sandbox *s, hd_job *job);
/* "pause": freeze its processes, stop its timeout and its executions'
 * deadlines; "resume": thaw them and move every deadline by the time it
 * was paused. Each answers {status, paused_at?} and is a no-op when the
 * sandbox already is so. */
void hd_op_pause(hd_sandbox *s, hd_job *job);
void hd_op_resume(hd_sandbox *s, hd_job *job);
/* Why s must end now (its timeout passed; paused longer than
 * SP_PAUSE_MAX), or NULL. */
const char *hd_sandbox_due(const hd_sandbox *s, long long now_ms);
/* End s: its executions finish now, its records go; on workers its
 * processes and cgroups end, then rid (NULL or "": none) is answered,
 * then its mounts, disk and directory are removed (and only then is its
 * slot free again). Frees s. */
void hd_sandbox_end_then(hd_sandbox *s, const char *why, const char *rid);
void hd_sandbox_end(hd_sandbox *s, const char *why); /* answers nobody */

/* hd_pool.c: ready sandboxes for one-off runs, sized to demand. */
void hd_op_run(hd_sandbox *none, hd_job *job); /* "run": one-off, pooled */
/* hd_pool_named.c: ready sandboxes for "create" (SP_POOL_NAMED of
 * SP_POOL_TEMPLATE): kept made (every pass), taken by a create that asks
 * for exactly them (else hd_op_create), ended at stop. */
void hd_np_fill(void);
void hd_op_create_pooled(hd_sandbox *none, hd_job *job);
int hd_np_drain(void);

/* Make ready sandboxes (on workers) while the pool is short; shrink it
 * back slowly when runs stop waiting. Every pass of the main loop. */
void hd_pool_fill(void);
/* At stop: answer the runs waiting for a sandbox, end the ready ones.
 * Returns how many it ended or answered. */
int hd_pool_drain(void);

/* hd_exec.c */
void hd_exec_keys(const hd_exec *e, char *ek, char *vk, size_t n);
/* Append one event {type, data (raw bytes)} to the execution's stream
 * (queued, hd_pub). */
void hd_event(hd_exec *e, const char *type, const void *data, size_t len);
/* The same for a NUL-terminated data string. */
#define hd_event_str(e, type, s) hd_event((e), (type), (s), strlen(s))
/* Start the execution job describes as kind k. Answers the job. */
void hd_exec_start(hd_sandbox *s, hd_job *job, const hd_kind *k);
/* The same in three steps, so that the spawn (which waits for sp-init)
 * may run on a worker: hd_exec_prepare makes the execution (NULL after
 * answering the job); hd_exec_spawn_job starts its process (0, or -1
 * with err) and touches only e, its sandbox's sbx and job, so any one
 * thread may call it while no other uses that sandbox; hd_exec_begin
 * (main thread) links e into its sandbox, writes its first events and
 * answers the job now or at its end, or, if the spawn failed, answers
 * err and frees e. */
hd_exec *hd_exec_prepare(hd_sandbox *s, hd_job *job, const hd_kind *k);
int hd_exec_spawn_job(hd_exec *e, const hd_job *job, char *err, size_t errlen);
void hd_exec_begin(hd_exec *e, hd_job *job, int spawn_rc, const char *err);
/* stdin {data, eof}, cancel, signal {signal}, resize {cols, rows} of a
 * running execution; each answers the job. */
void hd_exec_stdin(hd_exec *e, hd_job *job);
void hd_exec_cancel(hd_exec *e, hd_job *job);
void hd_exec_signal(hd_exec *e, hd_job *job);
void hd_exec_resize(hd_exec *e, hd_job *job);
/* The default output of a kind: UTF-8 whole, capped, as events named by
 * type (stdout/stderr when type is NULL) and captured for a waiter. */
void hd_exec_emit(hd_exec *e, int which, const unsigned char *p, size_t n,
                  int at_eof, const char *type);
/* The events_lost {bytes} event for output e dropped, if any. */
void hd_exec_report_lost(hd_exec *e);
void hd_exec_read(hd_exec *e, int which);
void hd_exec_write_stdin(hd_exec *e);
void hd_exec_exited(hd_sandbox *s, uint32_t req_id, int wait_status);
void hd_exec_tick(hd_sandbox *s, long long now_ms);
void hd_exec_kill_all(hd_sandbox *s, const char *why);
/* s was paused for delta_ms: its executions' deadlines and idle clocks
 * move by as much. */
void hd_exec_shift(hd_sandbox *s, long long delta_ms);
long long hd_exec_next_deadline(const hd_sandbox *s);

/* hd_result.c */
/* e has ended: its facts go to its kind's finish, its scratch files are
 * removed. e is freed by the caller. */
void hd_exec_finish(hd_exec *e);
/* The parts a kind's finish is made of: the result event {data:{exitCode,
 * status, truncated, signal?, error?}, duration}; the record exec:<id>
 * (status, exit code, duration, ended; TTLs) and its leaving the
 * sandbox's running set; the answer to rid (may be "": none waits):
 * {"ok":true, "facts":{…}, "out_len":N} then stdout and stderr bytes. */
void hd_result_event(const hd_facts *f);
void hd_result_record(const hd_facts *f);
void hd_result_answer(const hd_facts *f, const char *rid);
hd_exec *hd_exec_by_id(hd_sandbox *s, const char *id); /* NULL if none */

/* hd_ctx.c, hd_ctx_frames.c: stateful contexts (theory of operation in
 * hd_ctx.c) */
void hd_op_ctx_create(hd_sandbox *s, hd_job *job);
void hd_op_ctx_run(hd_sandbox *s, hd_job *job);
void hd_op_ctx_delete(hd_sandbox *s, hd_job *job);
/* cancel (or stdin, signal, resize) of a context run: answered, 1; 0 if
 * exe is not a run of a context of s */
int hd_ctx_exec_job(hd_sandbox *s, hd_job *job);
/* output of a context's driver (kind context), in place of its events
 * (hd_ctx_frames.c) */
void hd_ctx_output(hd_exec *e, int which, const unsigned char *p, size_t n);
void hd_ctx_driver_ended(hd_exec *e); /* the driver's hd_exec finished */
void hd_ctx_tick(hd_sandbox *s, long long now_ms);
long long hd_ctx_next_deadline(const hd_sandbox *s); /* 0: none */
void hd_ctx_end_all(hd_sandbox *s, const char *why);
void hd_ctx_shift(hd_sandbox *s, long long delta_ms); /* as hd_exec_shift */

/* hd_files.c: the file operations (file_read, _tree, _write, _mkdir,
 * _delete), as the sandbox's user; bodies through the spool. */
pid_t hd_init_pid(const sbx_sandbox *sbx); /* host pid of sp-init */
void hd_op_file(hd_sandbox *s, hd_job *job);
/* Directory path of s, resolved as every file operation resolves a path
 * (inside /workspace, /uploaded_files or /tmp; never through a link out
 * of them) with the rights of s's user: an O_PATH fd (the caller closes)
 * and its normalised form in norm; or -1 after answering job
 * (invalid_argument: bad path or not a directory; not_found). */
int hd_dir_open(hd_sandbox *s, hd_job *job, const char *path, char *norm,
                size_t normlen);
/* rel below dirfd with only real directories on the way (no symlink, no
 * other mount, never above dirfd), opened with flags | O_CLOEXEC; -1 with
 * errno. */
int hd_open_beneath(int dirfd, const char *rel, int flags);
/* This thread's file system rights: s's user's, or root's (s NULL). */
void hd_fs_as(const hd_sandbox *s);
/* Every tick: once a minute, remove orphaned spool files (sp_spool.h). */
void hd_spool_tick(long long now_ms);

/* hd_metrics.c: every SP_METRICS_INTERVAL ms, a sample of each named
 * sandbox (CPU %, memory, disk) appended to sbx:<id>:metrics (hd_pub). */
void hd_metrics_tick(long long now_ms);

/* hd_watch.c: file watches (theory of operation there). A watch belongs
 * to its sandbox and ends with it. */
struct hd_watch;
void hd_op_watch_start(hd_sandbox *s, hd_job *job); /* "watch_start" */
void hd_op_watch_stop(hd_sandbox *s, hd_job *job);  /* "watch_stop" */
/* The inotify fd of watch w and the watch after it (NULL: none) of s's
 * list, for the poll set. */
int hd_watch_fd(const struct hd_watch *w);
struct hd_watch *hd_watch_next(const struct hd_watch *w);
/* w's fd is readable: its events go to its stream (w may end). */
void hd_watch_read(struct hd_watch *w);
/* Every tick: end the watches nobody reads any more (ephemeral ones). */
void hd_watch_tick(hd_sandbox *s, long long now_ms);
/* End every watch of s (end {reason: "sandbox_ended"}). */
void hd_watch_end_all(hd_sandbox *s);

/* hd_ops.c: the table of operations. */
/* Run one job: look its op up, check its arguments against the op's
 * row, find its sandbox, call its function (which answers it). */
void hd_ops_run(hd_job *job);

#endif
