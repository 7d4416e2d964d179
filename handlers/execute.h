/* handlers/execute.h: what the files of sp-execute share. execute.c holds
 * /execute, /execute-stream and the route table; it uses the others,
 * which never call back into it:
 *   runs.c        what every run shares: files written first, the client
 *                 stream, the /execute answer (the one place its shape is
 *                 made);
 *   languages.c   the languages table, GET /languages;
 *   contexts.c    stateful contexts and runs in them;
 *   executions.c  GET /executions/{id}, cancel, stdin;
 *   analyze.c     /analyze-execution-needs;
 *   interp.c      the interp family: E2B's code interpreter over the
 *                 contexts (its routes are under /_sp/family/interp). */
#ifndef EXECUTE_H
#define EXECUTE_H

#include <cjson/cJSON.h>

#include "sp_announce.h"
#include "sp_helper.h"
#include "sp_http.h"
#include "sp_rpc.h"

/* ---- runs.c ------------------------------------------------------------- */

/* What an /execute answer says of one run, from a helper's facts or from
 * the run's record and events. Strings and JSON stay the caller's. */
typedef struct run_view {
    const char *id, *status;
    const char *out, *err; /* stdout, stderr bytes (any bytes) */
    size_t out_len, err_len;
    int context;            /* a run in a context: "stderr" too */
    const cJSON *exception; /* {name, message, traceback}, or NULL */
    const char *error;      /* why the helper ended it (sandbox_lost), or
                               NULL: the "error" when there is no exception
                               and no stderr */
    int has_exit;           /* else exitCode is null (still running) */
    int exit_code;
    int has_duration;
    long long duration_ms;
    int truncated;
    const char *results; /* a JSON array's text, or NULL for [] */
} run_view;

/* Append the /execute answer of v to b: {executionId, status, output,
 * error (the exception, else the stderr text, else why the helper ended
 * it), stderr (context runs),
 * exitCode, duration, results, truncated}. Returns 0, or -1 if b is full. */
int run_render(const run_view *v, sp_buf *b);

/* Answer a run: {executionId, status:"streaming", clientId} when stream,
 * else its /execute answer from the facts in f. */
void run_answer(http_req *r, int stream, const char *exe, const char *client,
                const hc_facts *f);

/* Write one file into a sandbox through its helper; 0, or -1 after the
 * error (field "files") was sent. */
int run_put(http_req *r, const char *helper, const char *sandbox,
            const char *path, const char *content);

/* Write every file of files [{path, content}]; 0 or -1 (sent). */
int run_put_all(http_req *r, const char *helper, const char *sandbox,
                const cJSON *files);


/* ---- languages.c -------------------------------------------------------- */

typedef struct exe_lang {
    const char *name;
    const char *aliases[5];
    const char *ext;
    const char *version_argv[3];
    char version[64]; /* probed at start */
} exe_lang;

/* The language named name or one of its aliases (any case), or NULL. */
const exe_lang *lang_find(const char *name);

/* The canonical name of a language or alias ("py" → "python"), or NULL. */
const char *lang_canonical(const char *name);

/* Probe the languages' versions (at start). */
void lang_probe(void);

/* GET /languages. */
void lang_list(http_req *r);

/* ---- contexts.c --------------------------------------------------------- */

/* A run in a context, as exe_run validated it. Strings stay the caller's. */
typedef struct ctxh_run {
    const char *ctx;      /* context_id, not yet checked */
    const char *sandbox;  /* sandbox_id given with it, or NULL */
    const char *language; /* canonical language given, or NULL */
    const char *code;
    long long timeout_ms;
    int stream;             /* /execute-stream: answer at once */
    const char *client;     /* clientId given (valid), or NULL */
    const cJSON *files;     /* [{path, content}] to write first */
    int has_stdin, has_env; /* refused: a context's process is running */
    int quiet;              /* a stream not announced on a client stream
                               (E2B's /execute streams it itself) */
} ctxh_run;

#define CTXH_CWD_MAX 1024

/* A context's record, copied out of Redis (ctx:<id>). */
typedef struct ctxh_rec {
    char sandbox[SP_ID_SIZE];
    char helper[SP_ID_SIZE];
    char language[16];
    char cwd[CTXH_CWD_MAX]; /* "" when made without one */
    long long created;
} ctxh_rec;

/* Canonical name of a context language ("py" -> "python"), NULL if no
 * context runs it. Static storage. */
const char *ctxh_language(const char *name);

/* The caller's (r->auth.sub) context id into rec; 1 found, 0 not found
 * (or another subject's), -1 Redis failed. */
int ctxh_load(http_req *r, const char *id, ctxh_rec *rec);

/* The caller's context id of sandbox sbx into rec: 0, or -1 after 503
 * or 404 (none, another subject's or another sandbox's; about field,
 * which may be NULL). */
int ctxh_find(http_req *r, const char *sbx, const char *id, const char *field,
              ctxh_rec *rec);

/* The default context of language lang (canonical) in the caller's
 * sandbox sbx (on helper) into id (SP_ID_SIZE) and rec, made when it is
 * not there yet: its id is derived from the sandbox and the language, so
 * every caller finds the same one (E2B's code interpreter, the chat's
 * python_interpreter); two requests may race: the loser's create is a
 * conflict, and it reads the winner's. 0, or -1 after the error. */
int ctxh_default(http_req *r, const char *sbx, const char *helper,
                 const char *lang, char *id, ctxh_rec *rec);

/* The caller's contexts of sandbox sbx, each rendered by render: a new
 * array (caller frees), or NULL after the 503. */
typedef cJSON *(*ctxh_render_fn)(const char *id, const ctxh_rec *rec);
cJSON *ctxh_list_of(http_req *r, const char *sbx, ctxh_render_fn render);

/* Start q's code in context ctx (its record rec, the caller's): files
 * written first, a new execution id into exe, announced on the client
 * stream unless q->quiet (the client id used into cid, "" if none; both
 * SP_ID_SIZE bytes). 0 with f filled (the run's facts, or only its start
 * for a stream; caller frees with hc_facts_free), or -1 after the error
 * was sent. */
int ctxh_start(http_req *r, const ctxh_rec *rec, const char *ctx,
               const ctxh_run *q, char *exe, char *cid, hc_facts *f);

/* Run q's code in its context and answer the request (the /execute shape,
 * or {executionId, status:"streaming", clientId}); every error is sent
 * here too. */
void ctxh_execute(http_req *r, const ctxh_run *q);

/* POST /sandboxes/{id}/contexts {language} → 201 {id, sandbox_id,
 * language, created_at}. */
void ctxh_create(http_req *r);

/* GET /sandboxes/{id}/contexts → {contexts: [...]}. */
void ctxh_list(http_req *r);

/* GET /sandboxes/{id}/contexts/{ctx} → the context. */
void ctxh_get(http_req *r);

/* DELETE /sandboxes/{id}/contexts/{ctx} → 204; its process ends. */
void ctxh_delete(http_req *r);

/* ---- interp.c ----------------------------------------------------------- */

/* E2B's code interpreter: POST /execute (streamed by the relay), POST and
 * GET /contexts, DELETE /contexts/{id}, POST /contexts/{id}/restart. */
void interp_execute(http_req *r);
void interp_ctx_create(http_req *r);
void interp_ctx_list(http_req *r);
void interp_ctx_delete(http_req *r);
void interp_ctx_restart(http_req *r);

/* ---- executions.c, analyze.c -------------------------------------------- */

/* GET /executions/{id}, POST /executions/{id}/cancel and /stdin. */
void exe_get(http_req *r);
void exe_cancel(http_req *r);
void exe_stdin(http_req *r);

/* POST /analyze-execution-needs. */
void exe_analyze(http_req *r);

#endif
