/* handlers/contexts.h: what the files of sp-execute (execute.c,
 * executions.c, contexts.c, analyze.c) share: the contexts routes, a run of
 * /execute or /execute-stream with a context_id, and a few execute.c helpers.
 */
#ifndef CONTEXTS_H
#define CONTEXTS_H

#include <cjson/cJSON.h>

#include "sp_http.h"
#include "sp_rpc.h"

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
    /* Announce exe on the client stream sub/client (execute.c). */
    void (*announce)(const char *sub, const char *client, const char *exe);
} ctxh_run;

/* Run q's code in its context and answer the request (the /execute shape,
 * or {executionId, status:"streaming", clientId}); every error is sent
 * here too. */
void ctxh_execute(http_req *r, const ctxh_run *q);

/* Answer a run (execute.c): {executionId, status:"streaming", clientId}
 * when stream, else the helper's /execute answer in rr (freed here). */
void exe_send_run(http_req *r, int stream, const char *exe, const char *client,
                  rpc_reply *rr);

/* The canonical name of a language or alias ("py" → "python"), or NULL
 * (execute.c). */
const char *exe_canonical_language(const char *name);

/* Write one file into a sandbox through its helper (execute.c); 0, or -1
 * after the error (field "files") was sent. */
int exe_put(http_req *r, const char *helper, const char *sandbox,
            const char *path, const char *content);

/* GET /executions/{id}, POST /executions/{id}/cancel and /stdin
 * (executions.c). */
void exe_get(http_req *r);
void exe_cancel(http_req *r);
void exe_stdin(http_req *r);

/* POST /analyze-execution-needs (analyze.c). */
void exe_analyze(http_req *r);

/* POST /sandboxes/{id}/contexts {language} → 201 {id, sandbox_id,
 * language, created_at}. */
void ctxh_create(http_req *r);

/* GET /sandboxes/{id}/contexts → {contexts: [...]}. */
void ctxh_list(http_req *r);

/* GET /sandboxes/{id}/contexts/{ctx} → the context. */
void ctxh_get(http_req *r);

/* DELETE /sandboxes/{id}/contexts/{ctx} → 204; its process ends. */
void ctxh_delete(http_req *r);

#endif
