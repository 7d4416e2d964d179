/* handlers/envd.h: what the files of the envd family share (envd.c: the
 * data plane's authorization, Connect request bodies, /health;
 * envd_process.c: process.Process; envd_fs.c: filesystem.Filesystem;
 * envd_watch.c: WatchDir; envd_files.c: /files; envd_routes.c:
 * the route table and main). The
 * family is E2B's in-sandbox daemon spoken from outside: a request comes
 * with E2b-Sandbox-Id and E2b-Sandbox-Port 49983 (or a host
 * 49983-<id>.<domain>), nginx's selector gives it to sp-envd with the
 * sandbox in SP_SANDBOX_ID, and every operation is a native one
 * (sp_helper.h) on that sandbox. */
#ifndef ENVD_H
#define ENVD_H

#include "sandboxes.h"
#include "sp_http.h"
#include "sp_id.h"

#define ENVD_PATH_MAX 4096
#define ENVD_USER_MAX 33

/* The sandbox a request was authorized for. */
typedef struct envd_ctx {
    char sbx[SP_ID_SIZE];
    char helper[SP_ID_SIZE];
    char user[ENVD_USER_MAX]; /* from Basic auth or ?username=; "" default */
    int host_view;            /* the "host" template: files in /workspace */
} envd_ctx;

/* How envd_begin answers: a unary Connect RPC (errors in Connect's
 * shape), a streaming one, a plain route (the envelope) or /health (502
 * for a sandbox that has gone). */
#define ENVD_RPC    1
#define ENVD_PLAIN  2
#define ENVD_HEALTH 3
#define ENVD_STREAM 4 /* a streaming RPC: errors in its end frame */

/* Authorize r for its sandbox: its X-Access-Token must be the sandbox's
 * envd token (sp_auth.h) and the sandbox must exist; r->auth.sub becomes
 * the sandbox's owner and r->params[0] its id (the sandboxes family's
 * functions work on those). Returns 0, or -1 after 401 (no or wrong
 * token), 404 (the sandbox has gone; 502 for ENVD_HEALTH) or 400 (a
 * malformed user). */
int envd_begin(http_req *r, envd_ctx *c, int how);

/* envd_begin's second half, for a request already authorized for
 * sandbox id (a valid id): c and r filled from the sandbox's record. 0,
 * or -1 after 404/502 (gone), 503 or 400 (a malformed user). */
int envd_load(http_req *r, envd_ctx *c, const char *id, int how);

/* Authorize a /files request by the signature of a signed URL (E2B's
 * uploadUrl/downloadUrl, envd_sign.c) instead of X-Access-Token: op is
 * "read" or "write". 0 (c filled as by envd_begin), or -1 after 401
 * (no, a wrong or an expired signature) or the errors of envd_load. */
int envd_begin_signed(http_req *r, envd_ctx *c, const char *op);

/* 1 if s[0..n) is a plain account name (E2B's user: Basic auth,
 * ?username=): [a-z_][a-z0-9_-]*, shorter than ENVD_USER_MAX; else 0. */
int envd_user_ok(const char *s, size_t n);

/* 1 if r's Content-Type is type (parameters allowed), else 0. */
int envd_ctype_is(http_req *r, const char *type);

/* The JSON object of a unary call (Content-Type application/json), or
 * NULL after the error. Caller frees. */
cJSON *envd_unary(http_req *r);

/* The one message of a server-streaming call's request (Content-Type
 * application/connect+json, one uncompressed envelope), or NULL after the
 * error. Caller frees. */
cJSON *envd_stream_request(http_req *r);

/* path as the sandbox sees it into out: a relative path is taken from
 * the user's home (E2B's rule). 0, or -1 after the 400. */
int envd_path(http_req *r, const envd_ctx *c, const char *path, char *out,
              size_t outlen);

/* Answer a unary call with the JSON object o (NULL: {}). */
void envd_send(http_req *r, const cJSON *o);

/* Hand r over to the relay (X-Accel-Redirect to uri, an internal
 * location of families/envd.conf). */
void envd_relay(http_req *r, const char *uri);

/* GET /health (envd.c). */
void envd_health(http_req *r);

/* process.Process (envd_process.c). */
void envd_start(http_req *r);
void envd_connect(http_req *r);
void envd_list(http_req *r);
void envd_send_input(http_req *r);
void envd_send_signal(http_req *r);
void envd_close_stdin(http_req *r);
void envd_update(http_req *r);

/* filesystem.Filesystem's unary RPCs (envd_fs.c). */
void envd_fs_stat(http_req *r);
void envd_fs_list(http_req *r);
void envd_fs_mkdir(http_req *r);
void envd_fs_move(http_req *r);
void envd_fs_remove(http_req *r);

/* filesystem.Filesystem/WatchDir, a stream over a file watch
 * (envd_watch.c). */
void envd_fs_watch(http_req *r);

/* GET and POST /files (envd_files.c). */
void envd_files_get(http_req *r);
void envd_files_post(http_req *r);

#endif
