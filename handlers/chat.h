/* handlers/chat.h: what the files of the chat family (sp-chat) share.
 * chat.c holds POST /api/chat, the tool loop, the route table and main;
 * it uses the others, which never call back into it:
 *   chat_llm.c     the model call: the request, its streamed SSE chunks
 *                  parsed into an answer (text, tool calls, usage);
 *   chat_stream.c  the answer to the client in one of two protocols (the
 *                  AI SDK's data stream v1, OpenAI's chunks as SSE);
 *   chat_tools.c   the tool registry: HTTP tools of SP_CHAT_TOOLS, the
 *                  tools' JSON for the model, a call dispatched by name;
 *   chat_python.c  the built-in python_interpreter: a run in the session
 *                  sandbox's stateful Python context, its events followed.
 * The answer lives as long as its request (docs/DESIGN.md §7): a client
 * that goes away stops the loop and cancels a running tool call. */
#ifndef CHAT_H
#define CHAT_H

#include <cjson/cJSON.h>

#include "sp_buf.h"
#include "sp_http.h"
#include "sp_id.h"

#define CHAT_CALLS_MAX     16 /* tool calls in one model answer */
#define CHAT_CALL_ID_MAX   128
#define CHAT_TOOL_NAME_MAX 64
#define CHAT_TOOL_TEXT_MAX                                                     \
    (32 * 1024) /* a tool's result as the model                                \
                   reads it */
#define CHAT_PYTHON "python_interpreter"

/* Tokens counted by the model endpoint (when it says). */
typedef struct chat_usage {
    long long prompt, completion;
} chat_usage;

/* ---- chat_stream.c ------------------------------------------------------ */

typedef struct chat_out chat_out;

/* A protocol of the answer: every part the loop emits, written at once
 * (unbuffered). Each returns 0, or -1 when the client is gone. */
typedef struct chat_proto {
    const char *name;  /* the request's "protocol" */
    const char *ctype; /* Content-Type */
    const char *head;  /* an extra header line, or NULL */
    int (*step)(chat_out *o);
    int (*text)(chat_out *o, const char *s);
    int (*tool_call)(chat_out *o, const char *id, const char *name,
                     const cJSON *args);
    int (*tool_output)(chat_out *o, const char *id, const char *stream,
                       const char *s, size_t n);
    int (*tool_result)(chat_out *o, const char *id, const char *name,
                       const cJSON *result, const char *text);
    int (*step_end)(chat_out *o, const char *finish, const chat_usage *u);
    int (*finish)(chat_out *o, const char *finish, const chat_usage *u);
    int (*error)(chat_out *o, const char *msg);
} chat_proto;

struct chat_out {
    http_req *r;
    const chat_proto *p;
    int gone;            /* the client went away: stop */
    char id[SP_ID_SIZE]; /* the message's id (msg_…) */
    long long created;   /* Unix seconds (OpenAI's "created") */
    const char *model;
};

/* The protocol named name ("data", "openai"), or NULL. */
const chat_proto *chat_proto_find(const char *name);

/* Send the head of the answer (200, the protocol's type, unbuffered). 0,
 * or -1 (the client is gone). */
int chat_out_start(chat_out *o, http_req *r, const chat_proto *p,
                   const char *model);

/* 1 if the client has gone away (its connection closed), else 0; sets
 * o->gone. Cheap: one non-blocking peek. */
int chat_out_gone(chat_out *o);

/* ---- chat_llm.c --------------------------------------------------------- */

/* A tool call the model asked for, its pieces accumulated by index. */
typedef struct chat_call {
    char id[CHAT_CALL_ID_MAX];
    char name[CHAT_TOOL_NAME_MAX];
    sp_buf args; /* the arguments' JSON text */
} chat_call;

/* One model answer. */
typedef struct chat_answer {
    sp_buf text;
    chat_call calls[CHAT_CALLS_MAX];
    int ncalls;
    char finish[32]; /* OpenAI's finish_reason, "" when none came */
    chat_usage usage;
    int done;        /* "data: [DONE]" came */
    size_t bytes;    /* text and arguments so far (SP_CHAT_ANSWER_MAX) */
    char error[256]; /* why the call failed, "" if it did not */
} chat_answer;

void chat_answer_init(chat_answer *a);
void chat_answer_free(chat_answer *a); /* NULL-safe */

/* Ask the model (SP_LLM_URL + /chat/completions) with the conversation
 * messages and the tools (an array, or NULL); its text is written to o as
 * it comes. 0 with a filled (a->error set when the model failed), or -1
 * when the client went away. */
int chat_llm_call(const cJSON *messages, const cJSON *tools, chat_out *o,
                  chat_answer *a);

/* ---- chat_tools.c ------------------------------------------------------- */

/* Where a tool call runs: the session's sandbox, its helper, its Python
 * context, the caller. */
typedef struct chat_env {
    const char *sandbox, *helper, *ctx, *owner;
} chat_env;

/* Load SP_CHAT_TOOLS (at start): 0, or -1 with the reason in err. */
int chat_tools_load(char *err, size_t errlen);

/* The tools as the model's request lists them (static, read-only). */
const cJSON *chat_tools_json(void);

/* Run call c (its arguments parsed into args, NULL when they were not
 * JSON) and fill *result (for the client; caller frees) and text (for
 * the model, at most CHAT_TOOL_TEXT_MAX). 0, or -1 when the client went
 * away (the call was cancelled). */
int chat_tool_run(const chat_env *e, chat_out *o, const chat_call *c,
                  const cJSON *args, cJSON **result, sp_buf *text);

/* ---- chat_python.c ------------------------------------------------------ */

/* python_interpreter {code}: as chat_tool_run. */
int chat_python_run(const chat_env *e, chat_out *o, const char *call_id,
                    const char *code, cJSON **result, sp_buf *text);

#endif
