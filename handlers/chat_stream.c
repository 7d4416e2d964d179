/* handlers/chat_stream.c: the chat's answer in one of two protocols,
 * each part written to the client as soon as it is made (nginx passes the
 * answer unbuffered: families/chat.conf).
 *
 * "data": the AI SDK's data stream protocol v1 (header
 *   x-vercel-ai-data-stream: v1), one part a line, TYPE:JSON —
 *   f:{messageId} a step starts, 0:"text", 9:{toolCallId, toolName,
 *   args}, 2:[{type:"tool-output", toolCallId, stream, text}] the tool's
 *   output while it runs, a:{toolCallId, result}, e:{finishReason, usage,
 *   isContinued} a step ends, d:{finishReason, usage} the message ends,
 *   3:"message" an error (the last part then).
 * "openai": server-sent events of OpenAI's chat.completion.chunk objects
 *   and "data: [DONE]". The tool's activity is text an OpenAI client shows
 *   as it is (the code in a python fence, its result in a plain fence;
 *   a chart as a note), and the same chunk carries the structured part in
 *   an extra field "sandpipe" ({type:"tool_call"|"tool_result", …}) that
 *   OpenAI's clients ignore. An error is a chunk {"error":{message,
 *   type}} (the openai client raises it) and then [DONE]. */
#include "chat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Write one part: prefix, the JSON of v (consumed), suffix. */
static int chat_write(chat_out *o, const char *prefix, cJSON *v,
                      const char *suffix)
{
    char *js = cJSON_PrintUnformatted(v);
    size_t lp = strlen(prefix), ls = strlen(suffix), lj;
    sp_buf b;
    int rc = -1;

    cJSON_Delete(v);
    if (o->gone || js == NULL)
        goto out;
    lj = strlen(js);
    buf_init(&b, lp + lj + ls + 1);
    if (buf_append(&b, prefix, lp) == 0 && buf_append(&b, js, lj) == 0 &&
        buf_append(&b, suffix, ls) == 0)
        rc = http_write_body(o->r, b.data, b.len);
    buf_free(&b);
    if (rc != 0)
        o->gone = 1;
out:
    cJSON_free(js);
    return o->gone ? -1 : 0;
}

/* The AI SDK's finish reasons from OpenAI's. */
static const char *chat_reason(const char *finish)
{
    static const char *const map[][2] = {{"stop", "stop"},
                                         {"length", "length"},
                                         {"tool_calls", "tool-calls"},
                                         {"function_call", "tool-calls"},
                                         {"content_filter", "content-filter"},
                                         {"error", "error"}};

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(finish, map[i][0]) == 0)
            return map[i][1];
    }
    return finish[0] ? "other" : "unknown";
}

static cJSON *chat_usage_json(const chat_usage *u)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "promptTokens", (double)u->prompt);
    cJSON_AddNumberToObject(o, "completionTokens", (double)u->completion);
    return o;
}

/* ---- the AI SDK's data stream ------------------------------------------- */

static int ds_step(chat_out *o)
{
    cJSON *v = cJSON_CreateObject();

    cJSON_AddStringToObject(v, "messageId", o->id);
    return chat_write(o, "f:", v, "\n");
}

static int ds_text(chat_out *o, const char *s)
{
    return chat_write(o, "0:", cJSON_CreateString(s), "\n");
}

static int ds_tool_call(chat_out *o, const char *id, const char *name,
                        const cJSON *args)
{
    cJSON *v = cJSON_CreateObject();

    cJSON_AddStringToObject(v, "toolCallId", id);
    cJSON_AddStringToObject(v, "toolName", name);
    cJSON_AddItemToObject(
        v, "args", args ? cJSON_Duplicate(args, 1) : cJSON_CreateObject());
    return chat_write(o, "9:", v, "\n");
}

static int ds_tool_output(chat_out *o, const char *id, const char *stream,
                          const char *s, size_t n)
{
    cJSON *arr = cJSON_CreateArray(), *v = cJSON_CreateObject();
    char *copy = strndup(s, n);

    cJSON_AddStringToObject(v, "type", "tool-output");
    cJSON_AddStringToObject(v, "toolCallId", id);
    cJSON_AddStringToObject(v, "stream", stream);
    cJSON_AddStringToObject(v, "text", copy ? copy : "");
    free(copy);
    cJSON_AddItemToArray(arr, v);
    return chat_write(o, "2:", arr, "\n");
}

static int ds_tool_result(chat_out *o, const char *id, const char *name,
                          const cJSON *result, const char *text)
{
    cJSON *v = cJSON_CreateObject();

    (void)name;
    (void)text;
    cJSON_AddStringToObject(v, "toolCallId", id);
    cJSON_AddItemToObject(v, "result", cJSON_Duplicate(result, 1));
    return chat_write(o, "a:", v, "\n");
}

static int ds_step_end(chat_out *o, const char *finish, const chat_usage *u)
{
    cJSON *v = cJSON_CreateObject();

    cJSON_AddStringToObject(v, "finishReason", chat_reason(finish));
    cJSON_AddItemToObject(v, "usage", chat_usage_json(u));
    cJSON_AddBoolToObject(v, "isContinued", 0);
    return chat_write(o, "e:", v, "\n");
}

static int ds_finish(chat_out *o, const char *finish, const chat_usage *u)
{
    cJSON *v = cJSON_CreateObject();

    cJSON_AddStringToObject(v, "finishReason", chat_reason(finish));
    cJSON_AddItemToObject(v, "usage", chat_usage_json(u));
    return chat_write(o, "d:", v, "\n");
}

static int ds_error(chat_out *o, const char *msg)
{
    return chat_write(o, "3:", cJSON_CreateString(msg), "\n");
}

/* ---- OpenAI's chunks ---------------------------------------------------- */

/* A chat.completion.chunk with delta (consumed; NULL: {}), finish reason
 * (NULL: null) and an extra field "sandpipe" (consumed, may be NULL). */
static int oa_chunk(chat_out *o, cJSON *delta, const char *finish, cJSON *extra)
{
    cJSON *v = cJSON_CreateObject(), *choices, *c;

    cJSON_AddStringToObject(v, "id", o->id);
    cJSON_AddStringToObject(v, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(v, "created", (double)o->created);
    cJSON_AddStringToObject(v, "model", o->model);
    choices = cJSON_AddArrayToObject(v, "choices");
    c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON_AddItemToObject(c, "delta", delta ? delta : cJSON_CreateObject());
    if (finish != NULL)
        cJSON_AddStringToObject(c, "finish_reason", finish);
    else
        cJSON_AddNullToObject(c, "finish_reason");
    cJSON_AddItemToArray(choices, c);
    if (extra != NULL)
        cJSON_AddItemToObject(v, "sandpipe", extra);
    return chat_write(o, "data: ", v, "\n\n");
}

static cJSON *oa_content(const char *s)
{
    cJSON *d = cJSON_CreateObject();

    cJSON_AddStringToObject(d, "content", s);
    return d;
}

static int oa_step(chat_out *o)
{
    cJSON *d = oa_content("");

    cJSON_AddStringToObject(d, "role", "assistant");
    return oa_chunk(o, d, NULL, NULL);
}

static int oa_text(chat_out *o, const char *s)
{
    return oa_chunk(o, oa_content(s), NULL, NULL);
}

static int oa_tool_call(chat_out *o, const char *id, const char *name,
                        const cJSON *args)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(args, "code");
    cJSON *x = cJSON_CreateObject();
    char *a = args ? cJSON_PrintUnformatted(args) : NULL;
    sp_buf b;
    int rc;

    buf_init(&b, (size_t)1 << 26);
    if (strcmp(name, CHAT_PYTHON) == 0 && cJSON_IsString(code))
        buf_printf(&b, "\n\n```python\n%s\n```\n", code->valuestring);
    else
        buf_printf(&b, "\n\n`%s(%s)`\n", name, a ? a : "{}");
    cJSON_AddStringToObject(x, "type", "tool_call");
    cJSON_AddStringToObject(x, "toolCallId", id);
    cJSON_AddStringToObject(x, "toolName", name);
    cJSON_AddItemToObject(
        x, "args", args ? cJSON_Duplicate(args, 1) : cJSON_CreateObject());
    rc = oa_chunk(o, oa_content(b.data ? b.data : ""), NULL, x);
    buf_free(&b);
    cJSON_free(a);
    return rc;
}

static int oa_tool_output(chat_out *o, const char *id, const char *stream,
                          const char *s, size_t n)
{
    /* Shown once, with the result: an OpenAI client has no place for
     * output that a later chunk would replace. */
    (void)id, (void)stream, (void)s, (void)n;
    return chat_out_gone(o) ? -1 : 0;
}

static int oa_tool_result(chat_out *o, const char *id, const char *name,
                          const cJSON *result, const char *text)
{
    cJSON *x = cJSON_CreateObject();
    sp_buf b;
    int rc;

    buf_init(&b, CHAT_TOOL_TEXT_MAX + 64);
    buf_printf(&b, "```\n%s\n```\n\n", text);
    cJSON_AddStringToObject(x, "type", "tool_result");
    cJSON_AddStringToObject(x, "toolCallId", id);
    cJSON_AddStringToObject(x, "toolName", name);
    cJSON_AddItemToObject(x, "result", cJSON_Duplicate(result, 1));
    rc = oa_chunk(o, oa_content(b.data ? b.data : ""), NULL, x);
    buf_free(&b);
    return rc;
}

static int oa_step_end(chat_out *o, const char *finish, const chat_usage *u)
{
    (void)finish, (void)u;
    return o->gone ? -1 : 0;
}

static int oa_finish(chat_out *o, const char *finish, const chat_usage *u)
{
    cJSON *v = cJSON_CreateObject();
    int rc;

    cJSON_AddNumberToObject(v, "prompt_tokens", (double)u->prompt);
    cJSON_AddNumberToObject(v, "completion_tokens", (double)u->completion);
    cJSON_AddNumberToObject(v, "total_tokens",
                            (double)(u->prompt + u->completion));
    /* The usage rides on the last chunk, as OpenAI's include_usage. */
    rc = oa_chunk(o, NULL, finish[0] ? finish : "stop", NULL);
    if (rc == 0) {
        cJSON *last = cJSON_CreateObject();
        cJSON_AddStringToObject(last, "id", o->id);
        cJSON_AddStringToObject(last, "object", "chat.completion.chunk");
        cJSON_AddNumberToObject(last, "created", (double)o->created);
        cJSON_AddStringToObject(last, "model", o->model);
        cJSON_AddArrayToObject(last, "choices");
        cJSON_AddItemToObject(last, "usage", v);
        v = NULL;
        rc = chat_write(o, "data: ", last, "\n\ndata: [DONE]\n\n");
    }
    cJSON_Delete(v);
    return rc;
}

static int oa_error(chat_out *o, const char *msg)
{
    cJSON *v = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(v, "error");

    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", "server_error");
    return chat_write(o, "data: ", v, "\n\ndata: [DONE]\n\n");
}

static const chat_proto chat_protos[] = {
    {"data", "text/plain; charset=utf-8", "x-vercel-ai-data-stream: v1",
     ds_step, ds_text, ds_tool_call, ds_tool_output, ds_tool_result,
     ds_step_end, ds_finish, ds_error},
    {"openai", "text/event-stream; charset=utf-8", NULL, oa_step, oa_text,
     oa_tool_call, oa_tool_output, oa_tool_result, oa_step_end, oa_finish,
     oa_error},
};

const chat_proto *chat_proto_find(const char *name)
{
    for (size_t i = 0; i < sizeof chat_protos / sizeof chat_protos[0]; i++) {
        if (strcmp(chat_protos[i].name, name) == 0)
            return &chat_protos[i];
    }
    return NULL;
}

int chat_out_start(chat_out *o, http_req *r, const chat_proto *p,
                   const char *model)
{
    o->r = r;
    o->p = p;
    o->gone = 0;
    o->created = (long long)time(NULL);
    o->model = model;
    if (p->head != NULL)
        http_add_header(r, "%s", p->head);
    http_add_header(r, "Cache-Control: no-cache");
    http_add_header(r, "X-Accel-Buffering: no");
    if (http_send_head(r, 200, p->ctype, HTTP_LEN_STREAM) != 0)
        o->gone = 1;
    return o->gone ? -1 : 0;
}

int chat_out_gone(chat_out *o)
{
    char c;
    ssize_t n;

    if (o->gone)
        return 1;
    /* nginx closes its connection when the client goes (it sends nothing
     * more once the request's body is in): EOF or an error says so. */
    n = recv(o->r->fcgi.ipcFd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 ||
        (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        o->gone = 1;
    return o->gone;
}
