/* handlers/chat_llm.c: one call of the model, an OpenAI-compatible
 * chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp's server,
 * LiteLLM…): POST SP_LLM_URL + /chat/completions {model, messages, tools,
 * stream: true, stream_options: {include_usage: true}} with
 * "Authorization: Bearer SP_LLM_KEY", through the one outbound wrapper
 * (common/sp_outhttp.h), its answer read as server-sent events line by
 * line: each "data:" line a chunk whose choices[0].delta brings content
 * (passed on to the client at once) and tool_calls pieces (accumulated by
 * index: id, function.name, function.arguments), a finish_reason, and
 * usage when the endpoint counts; "data: [DONE]" ends it.
 *
 * SP_LLM_URL is the operator's configuration, not a user's URL: it may be
 * on loopback or a private network (a local vLLM or Ollama), so it is not
 * put through the egress check (common/sp_egress.h) that URLs chosen for
 * a user are. The key is in sp-chat's memory only; it is never logged (the
 * wrapper logs a failure's method and URL without its query), and an
 * endpoint's error body, which may quote it, is never passed on.
 *
 * Bounds: a line (SP_CHAT_ANSWER_MAX), the answer's text and arguments
 * together (SP_CHAT_ANSWER_MAX), CHAT_CALLS_MAX calls, the time without a
 * byte (SP_LLM_TIMEOUT_S). Whatever fails becomes a->error. */
#include "chat.h"
#include "sp_config.h"
#include "sp_outhttp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLM_ERROR_BODY_MAX (64 * 1024)
#define LLM_AUTH_MAX       4200 /* "Authorization: Bearer " + the key */

/* What the line reader works with. */
typedef struct llm_read {
    chat_out *o;
    chat_answer *a;
} llm_read;

void chat_answer_init(chat_answer *a)
{
    memset(a, 0, sizeof *a);
    buf_init(&a->text, (size_t)cfg_int(CFG_SP_CHAT_ANSWER_MAX));
    for (int i = 0; i < CHAT_CALLS_MAX; i++)
        buf_init(&a->calls[i].args, (size_t)cfg_int(CFG_SP_CHAT_ANSWER_MAX));
}

void chat_answer_free(chat_answer *a)
{
    if (a == NULL)
        return;
    buf_free(&a->text);
    for (int i = 0; i < CHAT_CALLS_MAX; i++)
        buf_free(&a->calls[i].args);
}

/* Count n more bytes of the answer: 0, or -1 (a->error) past the cap. */
static int llm_count(chat_answer *a, size_t n)
{
    a->bytes += n;
    if (a->bytes <= (size_t)cfg_int(CFG_SP_CHAT_ANSWER_MAX))
        return 0;
    snprintf(a->error, sizeof a->error,
             "the model's answer is larger than %lld bytes",
             cfg_int(CFG_SP_CHAT_ANSWER_MAX));
    return -1;
}

/* One piece of a tool call (delta.tool_calls[k]). 0 or -1 (a->error). */
static int llm_call_piece(chat_answer *a, const cJSON *tc)
{
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(tc, "index");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(tc, "id");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    chat_call *c;
    int i = cJSON_IsNumber(idx) ? (int)idx->valuedouble : 0;

    if (i < 0 || i >= CHAT_CALLS_MAX) {
        snprintf(a->error, sizeof a->error,
                 "the model asked for more than %d tool calls at once",
                 CHAT_CALLS_MAX);
        return -1;
    }
    c = &a->calls[i];
    if (i >= a->ncalls)
        a->ncalls = i + 1;
    if (cJSON_IsString(id) && id->valuestring[0] != '\0')
        snprintf(c->id, sizeof c->id, "%s", id->valuestring);
    if (cJSON_IsString(name)) {
        size_t have = strlen(c->name), n = strlen(name->valuestring);
        if (have + n >= sizeof c->name) {
            snprintf(a->error, sizeof a->error, "a tool name is too long");
            return -1;
        }
        memcpy(c->name + have, name->valuestring, n + 1);
    }
    if (cJSON_IsString(args)) {
        size_t n = strlen(args->valuestring);
        if (llm_count(a, n) != 0 ||
            buf_append(&c->args, args->valuestring, n) != 0)
            return -1;
    }
    return 0;
}

/* One chunk's JSON. 0, -1 (a->error), or -2 when the client is gone. */
static int llm_chunk(llm_read *rd, const cJSON *ch)
{
    chat_answer *a = rd->a;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(ch, "choices");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(ch, "usage");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(ch, "error");
    const cJSON *c0 = cJSON_GetArrayItem(choices, 0), *delta, *fin, *tcs, *tc;
    const cJSON *content;

    if (err != NULL && !cJSON_IsNull(err)) {
        snprintf(a->error, sizeof a->error,
                 "the model endpoint reported an error");
        return -1;
    }
    if (cJSON_IsObject(usage)) {
        const cJSON *p =
            cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
        const cJSON *k =
            cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
        if (cJSON_IsNumber(p))
            a->usage.prompt = (long long)p->valuedouble;
        if (cJSON_IsNumber(k))
            a->usage.completion = (long long)k->valuedouble;
    }
    if (c0 == NULL)
        return 0; /* the usage chunk has no choice */
    delta = cJSON_GetObjectItemCaseSensitive(c0, "delta");
    fin = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
    if (cJSON_IsString(fin))
        snprintf(a->finish, sizeof a->finish, "%s", fin->valuestring);
    content = cJSON_GetObjectItemCaseSensitive(delta, "content");
    if (cJSON_IsString(content) && content->valuestring[0] != '\0') {
        size_t n = strlen(content->valuestring);
        if (llm_count(a, n) != 0 ||
            buf_append(&a->text, content->valuestring, n) != 0)
            return -1;
        if (rd->o->p->text(rd->o, content->valuestring) != 0)
            return -2;
    }
    tcs = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
    cJSON_ArrayForEach(tc, tcs)
    {
        if (llm_call_piece(a, tc) != 0)
            return -1;
    }
    return 0;
}

/* One line of the event stream (oh_lines). Non-zero stops the transfer. */
static int llm_line(void *ctx, const char *text, size_t len)
{
    llm_read *rd = ctx;
    cJSON *ch;
    int rc;

    if (rd->a->done)
        return 0; /* anything after [DONE] is ignored */
    if (len < 5 || strncmp(text, "data:", 5) != 0)
        return 0; /* blank lines, ": comments", "event:", "id:" */
    text += 5;
    len -= 5;
    while (len > 0 && *text == ' ')
        text++, len--;
    if (len == 6 && memcmp(text, "[DONE]", 6) == 0) {
        rd->a->done = 1;
        return 0;
    }
    ch = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(ch)) {
        cJSON_Delete(ch);
        snprintf(rd->a->error, sizeof rd->a->error,
                 "the model endpoint sent a malformed chunk");
        return -1;
    }
    rc = llm_chunk(rd, ch);
    cJSON_Delete(ch);
    return rc;
}

/* The request's body; caller frees. */
static char *llm_body(const cJSON *messages, const cJSON *tools)
{
    cJSON *q = cJSON_CreateObject(), *so;
    char *s;

    cJSON_AddStringToObject(q, "model", cfg_str(CFG_SP_LLM_MODEL));
    cJSON_AddItemReferenceToObject(q, "messages", (cJSON *)messages);
    if (tools != NULL && cJSON_GetArraySize(tools) > 0)
        cJSON_AddItemReferenceToObject(q, "tools", (cJSON *)tools);
    cJSON_AddBoolToObject(q, "stream", 1);
    so = cJSON_AddObjectToObject(q, "stream_options");
    cJSON_AddBoolToObject(so, "include_usage", 1);
    s = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    return s;
}

int chat_llm_call(const cJSON *messages, const cJSON *tools, chat_out *o,
                  chat_answer *a)
{
    char url[1200], auth[LLM_AUTH_MAX];
    const char *base = cfg_str(CFG_SP_LLM_URL), *key = cfg_str(CFG_SP_LLM_KEY);
    const char *hdrs[5] = {"Content-Type: application/json",
                           "Accept: text/event-stream", NULL, NULL, NULL};
    size_t bl = strlen(base);
    llm_read rd = {o, a};
    oh_lines lines;
    oh_resp resp;
    sp_buf errbody;
    char *body = llm_body(messages, tools);
    int rc;

    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    snprintf(url, sizeof url, "%.*s/chat/completions", (int)bl, base);
    if (key[0] != '\0') {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        hdrs[2] = auth;
    }
    oh_lines_init(&lines, (size_t)cfg_int(CFG_SP_CHAT_ANSWER_MAX), llm_line,
                  &rd);
    buf_init(&errbody, LLM_ERROR_BODY_MAX);
    oh_req q = {.method = "POST",
                .url = url,
                .headers = hdrs,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .sink = oh_lines_sink,
                .sink_ctx = &lines,
                .keep = &errbody,
                .timeout_s = cfg_int(CFG_SP_LLM_TIMEOUT_S),
                .retries = 0,
                .tls_verify = 1};
    rc = body != NULL ? oh_perform(&q, &resp) : -1;
    if (rc == 0)
        oh_lines_end(&lines);
    memset(auth, 0, sizeof auth);
    if (o->gone)
        goto out;
    if (a->error[0] != '\0')
        ; /* said by the reader */
    else if (lines.too_long)
        snprintf(a->error, sizeof a->error,
                 "the model endpoint sent a line longer than %lld bytes",
                 cfg_int(CFG_SP_CHAT_ANSWER_MAX));
    else if (resp.status != 0 && (resp.status < 200 || resp.status > 299))
        snprintf(a->error, sizeof a->error,
                 "the model endpoint answered HTTP %ld", resp.status);
    else if (rc != 0)
        snprintf(a->error, sizeof a->error,
                 "the model endpoint could not be reached or stopped "
                 "answering");
    else if (!a->done && a->finish[0] == '\0')
        snprintf(a->error, sizeof a->error,
                 "the model's answer ended before its end");
out:
    oh_lines_free(&lines);
    buf_free(&errbody);
    cJSON_free(body);
    return o->gone ? -1 : 0;
}
