/* handlers/sandboxes.h: what the files of the sandboxes family share
 * (sandboxes.c: life cycle, the sandbox lookup; sandbox_sessions.c: chat
 * sessions;
 * sandbox_commands.c: commands, packages; sandbox_files.c: files;
 * sandbox_watches.c: file watches; sandbox_routes.c: the route table and
 * main). */
#ifndef SANDBOXES_H
#define SANDBOXES_H

#include "sp_http.h"
#include "sp_redis.h"
#include "sp_helper.h"
#include "sp_keys.h"
#include "sp_rpc.h"
#include "sp_store.h"
#include "sp_tspec.h"

#define SBXH_FILE_MAX (64 * 1024 * 1024)

/* Check that the sandbox id exists and belongs to the caller; copy its
 * helper's id into helper (>= SP_ID_SIZE bytes). Returns 0, or -1 after having
 * sent 404 (or 503). */
int sbxh_lookup(http_req *r, const char *id, char *helper);

/* Create a sandbox for the caller from a request body (POST /sandboxes
 * fields). Returns 0 with the new id in id_out (>= SP_ID_SIZE), or -1 after
 * having sent the error. */
int sbxh_create(http_req *r, const cJSON *body, char *id_out);

/* The sandbox a request body asks for (POST /sandboxes's fields:
 * timeout, limits, env, metadata, network, public, template), after
 * policy (validation, clamping to the configured maxima) into q; JSON
 * stays body's but q->netpol, which the caller frees. Also a workflow's
 * sandbox (handlers/workflows_spec.c). Returns 0, or -1 after the 400. */
int sbxh_spec(http_req *r, const cJSON *body, hc_sandbox_req *q);

/* The sandbox as JSON (NULL if it does not exist); caller frees. */
cJSON *sbxh_render(const char *id);

/* Value of field name in an HGETALL reply h, or NULL. */
const char *sbxh_field(const redisReply *h, const char *name);

/* Answer r with {field: [render(id, arg) for each id of the set key]}
 * (at most max; an id rendered as NULL is left out); 503 without Redis. */
typedef cJSON *(*sbxh_render_fn)(const char *id, const void *arg);
void sbxh_send_set(http_req *r, const char *key, const char *field, size_t max,
                   sbxh_render_fn render, const void *arg);

/* 0 if env maps names [A-Za-z_][A-Za-z0-9_]* to strings within bounds,
 * else -1 after the 400 naming field. */
int sbxh_env_ok(http_req *r, const cJSON *env, const char *field);

/* Life-cycle routes (sandboxes.c) and the session route
 * (sandbox_sessions.c). */
void sbxh_post(http_req *r);
void sbxh_list(http_req *r);
void sbxh_get(http_req *r);
void sbxh_delete(http_req *r);
void sbxh_timeout(http_req *r);
void sbxh_session_init(http_req *r);

/* Preview URLs (sandbox_ports.c): the URL of port (a number, or the
 * template "{port}") of sandbox id into out (SBXH_URL_SIZE); the facts
 * the sandbox's JSON carries (public from its record's field, which may be
 * NULL; preview_url; traffic_token); GET /sandboxes/{id}/ports. */
#define SBXH_URL_SIZE 512
void sbxh_preview_url(const char *id, const char *port, char *out, size_t n);
void sbxh_render_preview(cJSON *o, const char *id, const char *public_flag);
void sbxh_ports(http_req *r);
/* The egress policy (sandbox_network.c): POST's "network" into q
 * (q->netpol: the caller frees it), -1 after the 400; a sandbox's
 * "network" into its answer o from its record h; PUT …/network. */
int sbxh_network_spec(http_req *r, const cJSON *body, hc_sandbox_req *q);
void sbxh_network_render(cJSON *o, const redisReply *h);
void sbxh_network_put(http_req *r);

/* Pause, resume and metrics routes (sandbox_pause.c). */
void sbxh_pause(http_req *r);
void sbxh_resume(http_req *r);
void sbxh_metrics(http_req *r);
/* 0 if argv is a non-empty array of at most 256 strings of <= 32 KiB,
 * else -1 after the 400 naming "argv" (sandbox_commands.c). */
int sbxh_argv_ok(http_req *r, const cJSON *argv);

/* The signal named name ("SIGTERM" or "TERM"; TERM, KILL, INT, HUP, QUIT,
 * USR1, USR2, STOP, CONT), or 0 (sandbox_commands.c). */
int sbxh_signal_of(const char *name);

/* Commands routes (sandbox_commands.c). */
void sbxh_commands(http_req *r);
void sbxh_exec_get(http_req *r);
void sbxh_exec_output(http_req *r);
void sbxh_exec_stdin(http_req *r);
void sbxh_exec_signal(http_req *r);
void sbxh_exec_resize(http_req *r);
void sbxh_packages(http_req *r);

/* The events of stream f:<id> after the event id in query parameter
 * param ("-" when absent), a page as JSON {events:[{id, type, data}],
 * next, status?} (status: NULL to leave it out); errors sent
 * (sandbox_commands.c). */
void sbxh_send_events(http_req *r, sp_key_family f, const char *id,
                      const char *param, const char *status);

/* Files routes (sandbox_files.c). */
void sbxh_files_get(http_req *r);
void sbxh_files_put(http_req *r);
void sbxh_files_delete(http_req *r);
void sbxh_files_post(http_req *r);
void sbxh_tree(http_req *r);
void sbxh_dirs(http_req *r);
void sbxh_session_upload(http_req *r);

/* Watch routes (sandbox_watches.c). */
void sbxh_watch_create(http_req *r);
void sbxh_watch_list(http_req *r);
void sbxh_watch_delete(http_req *r);
void sbxh_watch_events(http_req *r);
void sbxh_watch_stream(http_req *r);

/* The object store of snapshots and workspaces (sandbox_snapshots.c):
 * archives live in the subject's bucket SBXH_STORE_BUCKET, a name no
 * user can give (obj_bucket_rule refuses "_"), so no /buckets route
 * reaches them. */
#define SBXH_STORE_BUCKET "_sandpipe"
#define SBXH_OBJ_KEY_MAX  256
/* The backend (set up once, on first use); NULL if it cannot be. */
const st_backend *sbxh_store(void);
/* Store size bytes from fd as key of sub's internal bucket (meta into
 * out); the backend's status. */
sp_status sbxh_store_put(const char *sub, const char *key, int fd,
                         long long size, st_meta *out);
/* key of sub's internal bucket written to fd: its size, or -1. */
long long sbxh_store_fill(const char *sub, const char *key, int fd);
/* Remove key of sub's internal bucket (a failure is logged). */
void sbxh_store_del(const char *sub, const char *key);

/* Answer r with o and status, or 503 when o is NULL (a record that could
 * not be read back); o is freed. */
void sbxh_send_doc(http_req *r, int status, cJSON *o);

/* A tree packed by the helper and stored as key (sbxh_pack_store). */
typedef struct sbxh_pack {
    const char *sub;
    char key[SBXH_OBJ_KEY_MAX];
    st_meta meta; /* the stored object's */
    sp_status st; /* the store's status (SP_OK: the helper's error) */
} sbxh_pack;
/* Pack what ("layer" or a directory) of sbx and store it as p->key: 0, or
 * -1 with err (the helper's, or the store's in p->st). */
int sbxh_pack_to_store(const char *helper, const char *sbx, const char *what,
                       sbxh_pack *p, rpc_err *err);
/* The same, answering the error itself: 0, or -1 after the answer. */
int sbxh_pack_store(http_req *r, const char *helper, const char *sbx,
                    const char *what, sbxh_pack *p);

/* A create from a snapshot: what its layer_fill reads. */
typedef struct sbxh_from {
    const char *sub;
    char template_name[TS_NAME_MAX + 1];
    char object[SBXH_OBJ_KEY_MAX];
} sbxh_from;
/* POST /sandboxes's "snapshot" into q (its template, its layer through
 * f, which must live until hc_create returns): 0 (also when absent), or
 * -1 after the 400/404. */
int sbxh_snapshot_spec(http_req *r, const cJSON *body, hc_sandbox_req *q,
                       sbxh_from *f);
void sbxh_snapshot_create(http_req *r);
void sbxh_snapshot_list(http_req *r);
void sbxh_snapshot_get(http_req *r);
void sbxh_snapshot_delete(http_req *r);

/* Workspaces (sandbox_workspaces.c). A create's "workspace" and "mount",
 * checked and the workspace held for the sandbox id (so a second holder
 * is 409 before anything is made). */
#define SBXH_WS_NAME_MAX  63
#define SBXH_WS_MOUNT_MAX 1024
typedef struct sbxh_ws {
    char name[SBXH_WS_NAME_MAX + 1]; /* "" when the create has none */
    char mount[SBXH_WS_MOUNT_MAX + 1];
    char held_by[SP_ID_SIZE];
} sbxh_ws;
/* 0 (w->name "" when the body names none), or -1 after the error. */
int sbxh_ws_hold(http_req *r, const cJSON *body, const char *id, sbxh_ws *w);
/* The create failed: the hold is let go (NULL-safe on w->name ""). */
void sbxh_ws_unhold(const char *sub, const sbxh_ws *w);
/* Sandbox id (made, perhaps with another id than the hold's) gets the
 * workspace restored into its mount before the answer: 0, or -1 after the
 * error (the caller deletes the sandbox and lets the hold go). */
int sbxh_ws_attach(http_req *r, const char *id, sbxh_ws *w);
/* Before sbx is deleted or paused: its workspace's last sync, and on
 * delete (release) its hold let go. 0 (also without a workspace), or -1
 * after the error (the sync failed: nothing is deleted or paused). */
int sbxh_ws_before_end(http_req *r, const char *sbx, const char *helper,
                       int release);
void sbxh_ws_create(http_req *r);
void sbxh_ws_list(http_req *r);
void sbxh_ws_get(http_req *r);
void sbxh_ws_delete(http_req *r);
void sbxh_ws_sync_route(http_req *r);
/* Start the periodic sync thread (sp-sandboxes' init); 0 or -1. */
int sbxh_ws_start(void);

/* The sandbox id of a chat session of the caller (its expiry pushed to
 * SP_SESSION_IDLE from now), or -1 (404 sent). */
int sbxh_session_sandbox(http_req *r, const char *session_id, char *id_out);

/* The sandbox of the caller's chat session sid into id (SP_ID_SIZE), made
 * from body (POST /sandboxes fields; template SP_SESSION_TEMPLATE and
 * timeout SP_SESSION_IDLE unless it names them) when the session has none
 * (*created 1), else its expiry pushed to SP_SESSION_IDLE from now. 0, or
 * -1 after the error was sent. */
int sbxh_session_ensure(http_req *r, const char *sid, const cJSON *body,
                        char *id, int *created);

/* templates.c: GET /templates, GET and DELETE /templates/{name}. */
void tplh_list(http_req *r);
void tplh_get(http_req *r);
void tplh_delete(http_req *r);
void tplh_post(http_req *r);
void tplh_build_get(http_req *r);

#endif
