/* handlers/chat_tools.c: the chat's tool registry. python_interpreter
 * (chat_python.c) is built in; operators add HTTP tools with the JSON file
 * named by SP_CHAT_TOOLS, read once at start (a bad file stops sp-chat
 * with the reason):
 *
 *   [{"name": "weather", "description": "…",
 *     "parameters": {JSON schema of an object},
 *     "method": "GET" | "POST",            (GET when absent)
 *     "url": "https://api.example/w?city={city}"}]
 *
 * A call fills each {arg} of the URL with the model's argument of that
 * name, percent-encoded (common/sp_pct.h; strings, numbers, booleans);
 * a POST sends the arguments as its JSON body. The URL then goes through
 * the egress check (common/sp_egress.h: public addresses only, pinned),
 * since the model, which the user steers, chose its arguments; through
 * the one outbound wrapper, within SP_CHAT_TOOL_TIMEOUT, its answer kept
 * up to TOOL_BODY_MAX (more is an error). Whatever fails is the tool's
 * result ({error}), which the model reads; it never ends the chat. */
#include "chat.h"
#include "sp_config.h"
#include "sp_egress.h"
#include "sp_outhttp.h"
#include "sp_pct.h"
#include "sp_utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL_FILE_MAX (1024 * 1024)
#define TOOL_MAX      64
#define TOOL_BODY_MAX (256 * 1024)
#define TOOL_URL_MAX  4096
#define TOOL_STALL_S  30

/* An HTTP tool of SP_CHAT_TOOLS. Strings point into tool_file. */
typedef struct chat_http_tool {
    const char *name, *method, *url;
} chat_http_tool;

/* Read-only once loaded (at start, before the worker threads). */
static cJSON *tool_file;
static cJSON *tool_json;
static chat_http_tool tool_http[TOOL_MAX];
static int tool_nhttp;

/* {type: "function", function: {name, description, parameters}}. */
static cJSON *tool_entry(const char *name, const char *desc,
                         const cJSON *params)
{
    cJSON *t = cJSON_CreateObject(), *f;

    cJSON_AddStringToObject(t, "type", "function");
    f = cJSON_AddObjectToObject(t, "function");
    cJSON_AddStringToObject(f, "name", name);
    cJSON_AddStringToObject(f, "description", desc);
    cJSON_AddItemToObject(f, "parameters", cJSON_Duplicate(params, 1));
    return t;
}

/* The built-in tool's entry. */
static cJSON *tool_python_entry(void)
{
    cJSON *p = cJSON_Parse(
        "{\"type\":\"object\",\"properties\":{\"code\":{\"type\":\"string\","
        "\"description\":\"Python code to run\"}},\"required\":[\"code\"]}");
    cJSON *t = tool_entry(
        CHAT_PYTHON,
        "Run Python code in a stateful interpreter (variables, imports and "
        "files stay between calls; numpy, pandas and matplotlib are "
        "installed). Returns stdout, stderr, the value of the last "
        "expression and errors; a matplotlib chart is shown to the user.",
        p);
    cJSON_Delete(p);
    return t;
}

static int tool_name_ok(const char *n)
{
    size_t i;

    for (i = 0; n[i] != '\0'; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return i > 0 && i < CHAT_TOOL_NAME_MAX;
}

/* One entry of the file: 0, or -1 with the reason in err. */
static int tool_load_one(const cJSON *t, int i, char *err, size_t errlen)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(t, "name");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(t, "description");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(t, "parameters");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(t, "method");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(t, "url");
    const char *method = cJSON_IsString(m) ? m->valuestring : "GET";

    if (!cJSON_IsString(n) || !tool_name_ok(n->valuestring) ||
        strcmp(n->valuestring, CHAT_PYTHON) == 0) {
        snprintf(err, errlen,
                 "tool %d: name must match [A-Za-z0-9_-]{1,63} "
                 "and not be %s",
                 i, CHAT_PYTHON);
        return -1;
    }
    for (int k = 0; k < tool_nhttp; k++) {
        if (strcmp(tool_http[k].name, n->valuestring) == 0) {
            snprintf(err, errlen, "tool %s: named twice", n->valuestring);
            return -1;
        }
    }
    if (!cJSON_IsString(u) || strlen(u->valuestring) >= TOOL_URL_MAX ||
        (strncmp(u->valuestring, "http://", 7) != 0 &&
         strncmp(u->valuestring, "https://", 8) != 0) ||
        (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) ||
        (p != NULL && !cJSON_IsObject(p)) ||
        (d != NULL && !cJSON_IsString(d))) {
        snprintf(err, errlen,
                 "tool %s: needs an http(s) url, method GET or POST, "
                 "parameters an object, description a string",
                 n->valuestring);
        return -1;
    }
    tool_http[tool_nhttp++] =
        (chat_http_tool){n->valuestring, method, u->valuestring};
    cJSON *empty = cJSON_CreateObject();
    cJSON_AddItemToArray(
        tool_json,
        tool_entry(n->valuestring, d ? d->valuestring : "", p ? p : empty));
    cJSON_Delete(empty);
    return 0;
}

int chat_tools_load(char *err, size_t errlen)
{
    const char *path = cfg_str(CFG_SP_CHAT_TOOLS);
    sp_buf b;
    FILE *f;
    char chunk[8192];
    size_t n;
    const cJSON *t;
    int i = 0, result = -1;

    tool_json = cJSON_CreateArray();
    cJSON_AddItemToArray(tool_json, tool_python_entry());
    if (path[0] == '\0')
        return 0;
    buf_init(&b, TOOL_FILE_MAX);
    if ((f = fopen(path, "re")) == NULL) {
        snprintf(err, errlen, "SP_CHAT_TOOLS: cannot open %s", path);
        goto out;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    tool_file =
        b.failed ? NULL : cJSON_ParseWithLength(b.data ? b.data : "", b.len);
    if (!cJSON_IsArray(tool_file) || cJSON_GetArraySize(tool_file) > TOOL_MAX) {
        snprintf(err, errlen,
                 "SP_CHAT_TOOLS: %s is not a JSON array of at most %d tools "
                 "(at most %d bytes)",
                 path, TOOL_MAX, TOOL_FILE_MAX);
        goto out;
    }
    cJSON_ArrayForEach(t, tool_file)
    {
        if (tool_load_one(t, i++, err, errlen) != 0)
            goto out;
    }
    result = 0;
out:
    buf_free(&b);
    return result;
}

const cJSON *chat_tools_json(void)
{
    return tool_json;
}

/* The URL of tool t for args into b: each {name} the argument's value,
 * percent-encoded. NULL, or why not. */
static const char *tool_url(const chat_http_tool *t, const cJSON *args,
                            sp_buf *b)
{
    const char *s = t->url;

    while (*s != '\0') {
        const char *open = strchr(s, '{'), *close;
        char name[CHAT_TOOL_NAME_MAX], num[64];
        const cJSON *v;
        if (open == NULL || (close = strchr(open, '}')) == NULL) {
            buf_puts(b, s);
            break;
        }
        buf_append(b, s, (size_t)(open - s));
        if ((size_t)(close - open - 1) >= sizeof name)
            return "a placeholder of the URL is too long";
        memcpy(name, open + 1, (size_t)(close - open - 1));
        name[close - open - 1] = '\0';
        v = cJSON_GetObjectItemCaseSensitive(args, name);
        if (cJSON_IsString(v))
            pct_encode(b, v->valuestring, "");
        else if (cJSON_IsNumber(v)) {
            snprintf(num, sizeof num, "%.17g", v->valuedouble);
            pct_encode(b, num, "");
        } else if (cJSON_IsBool(v))
            buf_puts(b, cJSON_IsTrue(v) ? "true" : "false");
        else
            return "an argument of the URL is missing or not a scalar";
        s = close + 1;
    }
    return b->failed ? "the URL is too long" : NULL;
}

/* Call HTTP tool t: its result into *result, its text into text. */
static void tool_http_call(const chat_http_tool *t, const cJSON *args,
                           cJSON **result, sp_buf *text)
{
    char pin[EGRESS_PIN_MAX];
    const char *why, *hdrs[] = {"Content-Type: application/json",
                                "Accept: application/json, text/plain", NULL};
    char *body = NULL;
    sp_buf url, keep, clean;
    oh_resp resp;
    long long limit = cfg_int(CFG_SP_CHAT_TOOL_TIMEOUT);

    buf_init(&url, TOOL_URL_MAX);
    buf_init(&keep, TOOL_BODY_MAX);
    buf_init(&clean, TOOL_BODY_MAX * 3); /* a byte at most U+FFFD */
    *result = cJSON_CreateObject();
    if ((why = tool_url(t, args, &url)) != NULL ||
        (why = egress_url(url.data, pin, sizeof pin)) != NULL)
        goto out;
    if (strcmp(t->method, "POST") == 0)
        body = cJSON_PrintUnformatted(args);
    oh_req q = {.method = t->method,
                .url = url.data,
                .headers = hdrs,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .keep = &keep,
                .timeout_s = limit < TOOL_STALL_S ? limit : TOOL_STALL_S,
                .total_s = limit,
                .tls_verify = 1,
                .pin = pin};
    if (oh_perform(&q, &resp) != 0) {
        why = keep.failed ? "the answer is too large"
                          : "the tool could not be reached";
        goto out;
    }
    /* As text a JSON string holds: not UTF-8 becomes U+FFFD. */
    utf8_sanitize((const unsigned char *)(keep.data ? keep.data : ""), keep.len,
                  &clean);
    cJSON_AddNumberToObject(*result, "status", (double)resp.status);
    cJSON_AddStringToObject(*result, "body", clean.data ? clean.data : "");
    buf_printf(text, "HTTP %ld\n", resp.status);
    buf_append(text, clean.data ? clean.data : "", clean.len);
out:
    if (why != NULL) {
        cJSON_AddStringToObject(*result, "error", why);
        buf_printf(text, "error: %s\n", why);
    }
    cJSON_free(body);
    buf_free(&url);
    buf_free(&keep);
    buf_free(&clean);
}

int chat_tool_run(const chat_env *e, chat_out *o, const chat_call *c,
                  const cJSON *args, cJSON **result, sp_buf *text)
{
    const char *why = NULL;

    if (args == NULL || !cJSON_IsObject(args))
        why = "the arguments are not a JSON object";
    else if (strcmp(c->name, CHAT_PYTHON) == 0) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(args, "code");
        if (cJSON_IsString(code))
            return chat_python_run(e, o, c->id, code->valuestring, result,
                                   text);
        why = "python_interpreter needs a string \"code\"";
    } else {
        for (int i = 0; i < tool_nhttp; i++) {
            if (strcmp(tool_http[i].name, c->name) == 0) {
                tool_http_call(&tool_http[i], args, result, text);
                return chat_out_gone(o) ? -1 : 0;
            }
        }
        why = "no such tool";
    }
    *result = cJSON_CreateObject();
    cJSON_AddStringToObject(*result, "error", why);
    buf_printf(text, "error: %s\n", why);
    return 0;
}
