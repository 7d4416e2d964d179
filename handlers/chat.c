/* handlers/chat.c: the chat family (sp-chat, docs/DESIGN.md §4.3):
 *
 *   POST /api/chat {messages: [{role, content}], session_id,
 *                   protocol?: "data" | "openai"}
 *   POST /api/chat/completions  the same, "openai" unless said (the path
 *                   OpenAI's clients call: base URL …/api)
 *
 * answers with the model's answer streamed (chat_stream.c). Before the
 * answer starts, every error is the JSON envelope: the session's sandbox
 * is found or made (sbxh_session_ensure, sandbox_sessions.c: template
 * SP_SESSION_TEMPLATE, kept alive SP_SESSION_IDLE past its last activity)
 * and its default Python context (ctxh_default, contexts.c), and the
 * files uploaded to /uploaded_files are listed for the model. Then the
 * loop: ask the model (chat_llm.c); while it asks for tools, run each
 * (chat_tools.c), stream the call and its result, give the result back
 * and ask again, at most SP_CHAT_MAX_ROUNDS model calls. A failure after
 * the head is an error part, and the stream ends cleanly.
 *
 * Why a program of its own: one answer holds its worker thread for as
 * long as the model and the tools take (minutes), so chats have their
 * own SP_THREADS and never starve sp-execute or sp-sandboxes; it links
 * the sandboxes family's session code and the contexts' code, as sp-envd
 * links the sandboxes family's (the functions are reused, not copied). */
#include "chat.h"
#include "execute.h"
#include "sandboxes.h"
#include "sp_auth.h"
#include "sp_config.h"
#include "sp_json.h"
#include "sp_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAT_MESSAGES_MAX 256
#define CHAT_FILES_MAX    64 /* uploaded file names told to the model */
#define CHAT_SID_MAX      80

/* One chat request's state. */
typedef struct chat_req {
    chat_out o;
    chat_env env;
    cJSON *conv; /* the conversation as the model reads it */
    chat_usage total;
} chat_req;

/* The client's messages validated into conv (a new array, its
 * {role, content, tool_calls?, tool_call_id?}). 0, or -1 after the 400. */
static int chat_messages(http_req *r, const cJSON *body, cJSON *conv)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages"), *m;
    int n = cJSON_GetArraySize(msgs);

    if (!cJSON_IsArray(msgs) || n < 1 || n > CHAT_MESSAGES_MAX) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "messages",
                        "messages must be an array of 1 to %d messages",
                        CHAT_MESSAGES_MAX);
        return -1;
    }
    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        const cJSON *tcid = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
        int ok = 0;
        cJSON *c;
        for (size_t i = 0; cJSON_IsString(role) && i < 4; i++)
            ok |= strcmp(role->valuestring, roles[i]) == 0;
        if (!ok || !(cJSON_IsString(content) ||
                     (cJSON_IsNull(content) && cJSON_IsArray(calls)))) {
            http_send_error(r, SP_E_INVALID_ARGUMENT, "messages",
                            "each message needs a role (system, user, "
                            "assistant, tool) and a string content");
            return -1;
        }
        c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "role", role->valuestring);
        cJSON_AddItemToObject(c, "content", cJSON_Duplicate(content, 1));
        if (cJSON_IsArray(calls) && strcmp(role->valuestring, "assistant") == 0)
            cJSON_AddItemToObject(c, "tool_calls", cJSON_Duplicate(calls, 1));
        if (cJSON_IsString(tcid) && strcmp(role->valuestring, "tool") == 0)
            cJSON_AddStringToObject(c, "tool_call_id", tcid->valuestring);
        cJSON_AddItemToArray(conv, c);
    }
    return 0;
}

/* Our system message, first: the tool, and the uploaded files' names
 * (best effort: none listed when /uploaded_files cannot be read). */
static void chat_system(const chat_env *e, cJSON *conv)
{
    cJSON *m = cJSON_CreateObject();
    rpc_reply rr = {0};
    rpc_err err;
    const cJSON *it;
    sp_buf b;
    int n = 0;

    buf_init(&b, 64 * 1024);
    buf_puts(&b, "You can run Python code with the tool " CHAT_PYTHON
                 "; its state stays between calls. ");
    if (hc_file_tree(e->helper, e->sandbox, "/uploaded_files", 1, &rr, &err) ==
        0) {
        cJSON_ArrayForEach(it,
                           cJSON_GetObjectItemCaseSensitive(rr.json, "entries"))
        {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
            if (!cJSON_IsString(nm) || n >= CHAT_FILES_MAX)
                continue;
            buf_printf(&b, "%s/uploaded_files/%s",
                       n++ ? ", "
                           : "Files the "
                             "user uploaded: ",
                       nm->valuestring);
        }
        rpc_reply_free(&rr);
    }
    if (n > 0)
        buf_puts(&b, ".");
    cJSON_AddStringToObject(m, "role", "system");
    cJSON_AddStringToObject(m, "content", b.data ? b.data : "");
    cJSON_InsertItemInArray(conv, 0, m);
    buf_free(&b);
}

/* The assistant's message asking for a's tool calls (their ids made up
 * where the model gave none), appended to conv. */
static void chat_assistant(cJSON *conv, chat_answer *a)
{
    cJSON *m = cJSON_CreateObject(), *calls;

    cJSON_AddStringToObject(m, "role", "assistant");
    if (a->text.len > 0)
        cJSON_AddStringToObject(m, "content", a->text.data);
    else
        cJSON_AddNullToObject(m, "content");
    calls = cJSON_AddArrayToObject(m, "tool_calls");
    for (int i = 0; i < a->ncalls; i++) {
        chat_call *c = &a->calls[i];
        cJSON *t = cJSON_CreateObject(), *f;
        if (c->id[0] == '\0' && id_generate("call_", c->id, sizeof c->id) != 0)
            snprintf(c->id, sizeof c->id, "call_%d", i);
        cJSON_AddStringToObject(t, "id", c->id);
        cJSON_AddStringToObject(t, "type", "function");
        f = cJSON_AddObjectToObject(t, "function");
        cJSON_AddStringToObject(f, "name", c->name);
        cJSON_AddStringToObject(f, "arguments",
                                c->args.data ? c->args.data : "{}");
        cJSON_AddItemToArray(calls, t);
    }
    cJSON_AddItemToArray(conv, m);
}

/* Run a's tool calls in order, each streamed and its result appended to
 * the conversation. 0, or -1 when the client went away. */
static int chat_tools(chat_req *q, chat_answer *a)
{
    chat_out *o = &q->o;

    chat_assistant(q->conv, a);
    for (int i = 0; i < a->ncalls; i++) {
        const chat_call *c = &a->calls[i];
        cJSON *args = cJSON_ParseWithLength(c->args.data ? c->args.data : "",
                                            c->args.len);
        cJSON *result = NULL, *m;
        sp_buf text;
        int rc = o->p->tool_call(o, c->id, c->name, args);
        buf_init(&text, CHAT_TOOL_TEXT_MAX);
        if (rc == 0)
            rc = chat_tool_run(&q->env, o, c, args, &result, &text);
        if (rc == 0)
            rc = o->p->tool_result(o, c->id, c->name, result,
                                   text.data ? text.data : "");
        m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "tool");
        cJSON_AddStringToObject(m, "tool_call_id", c->id);
        cJSON_AddStringToObject(m, "content", text.data ? text.data : "");
        cJSON_AddItemToArray(q->conv, m);
        cJSON_Delete(args);
        cJSON_Delete(result);
        buf_free(&text);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* The loop, after the head: model, tools, model… until an answer
 * without tool calls, an error, the rounds bound or the client's going. */
static void chat_loop(chat_req *q)
{
    chat_out *o = &q->o;
    long long rounds = cfg_int(CFG_SP_CHAT_MAX_ROUNDS);
    char msg[300];

    for (long long round = 0;; round++) {
        chat_answer a;
        int stop = 1;
        chat_answer_init(&a);
        if (o->p->step(o) != 0 ||
            chat_llm_call(q->conv, chat_tools_json(), o, &a) != 0)
            goto next;
        q->total.prompt += a.usage.prompt;
        q->total.completion += a.usage.completion;
        if (a.error[0] != '\0') {
            o->p->error(o, a.error);
        } else if (a.ncalls == 0) {
            if (o->p->step_end(o, a.finish, &a.usage) == 0)
                o->p->finish(o, a.finish[0] ? a.finish : "stop", &q->total);
        } else if (round + 1 >= rounds) {
            snprintf(msg, sizeof msg,
                     "the model still asked for tools after %lld rounds",
                     rounds);
            o->p->error(o, msg);
        } else if (chat_tools(q, &a) == 0 &&
                   o->p->step_end(o, "tool_calls", &a.usage) == 0) {
            stop = 0;
        }
    next:
        chat_answer_free(&a);
        if (stop)
            break;
    }
    if (o->gone)
        log_info("the client of %s went away", o->id);
}

/* POST /api/chat (protocol "data" unless said) and POST
 * /api/chat/completions (the same; "openai" unless said: OpenAI's clients
 * call that path with the base URL …/api). */
static void chat_serve(http_req *r, const char *protocol)
{
    cJSON *body = http_json_body(r, 0);
    const char *sid = NULL, *proto = NULL;
    char sbx[SP_ID_SIZE], helper[SP_ID_SIZE], ctx[SP_ID_SIZE];
    chat_req q = {0};
    ctxh_rec rec = {0};
    int created;

    if (body == NULL)
        return;
    q.conv = cJSON_CreateArray();
    if (json_str(r, body, "session_id", 1, CHAT_SID_MAX, &sid) != 0 ||
        json_str(r, body, "protocol", 0, 16, &proto) != 0 ||
        chat_messages(r, body, q.conv) != 0)
        goto out;
    if ((q.o.p = chat_proto_find(proto ? proto : protocol)) == NULL) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "protocol",
                        "protocol must be \"data\" or \"openai\"");
        goto out;
    }
    if (cfg_str(CFG_SP_LLM_URL)[0] == '\0') {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "no model is configured");
        goto out;
    }
    if (sbxh_session_ensure(r, sid, NULL, sbx, &created) != 0 ||
        rpc_sandbox_of(r, sbx, NULL, helper) != 0 ||
        ctxh_default(r, sbx, helper, "python", ctx, &rec) != 0)
        goto out;
    if (id_generate("msg_", q.o.id, sizeof q.o.id) != 0) {
        http_send_error(r, SP_E_INTERNAL, NULL, "could not make an id");
        goto out;
    }
    q.env = (chat_env){sbx, helper, ctx, r->auth.sub};
    chat_system(&q.env, q.conv);
    if (chat_out_start(&q.o, r, q.o.p, cfg_str(CFG_SP_LLM_MODEL)) == 0)
        chat_loop(&q);
out:
    cJSON_Delete(q.conv);
    cJSON_Delete(body);
}

static void chat_post(http_req *r)
{
    chat_serve(r, "data");
}

static void chat_completions(http_req *r)
{
    chat_serve(r, "openai");
}

static const http_route chat_routes[] = {
    {"POST", "/api/chat", chat_post, AUTH_REQUIRED},
    {"POST", "/api/chat/completions", chat_completions, AUTH_REQUIRED},
};

static int chat_init(void)
{
    char err[512];

    if (chat_tools_load(err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

int main(void)
{
    return http_main("chat", chat_routes,
                     sizeof chat_routes / sizeof chat_routes[0], chat_init);
}
