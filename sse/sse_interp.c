/* sse_interp.c: the relay's half of E2B's code interpreter (port 49999;
 * handlers/interp.c has the other half). POST /execute of that family
 * starts a context run and hands the request over by X-Accel-Redirect to
 * the internal route /_sp/interp/{exe}/events (a row of sse_request.c's
 * table), which this file serves:
 *
 *   authorization  E2B's SDK sends no credential on the data plane, only
 *                  the sandbox's tokens: E2B-Traffic-Access-Token and
 *                  X-Access-Token. Each one present must be the token of
 *                  the execution's sandbox (auth_sandbox_token_ok); at
 *                  least one must be; the execution's owner becomes the
 *                  subject. Unknown executions are 404.
 *   mapping        each entry of events:<exe> (a context run's events,
 *                  docs/DESIGN.md §4.2) becomes zero or more lines of
 *                  E2B's NDJSON, framed by frame_lines:
 *     stdout, stderr  {"type":"stdout","text","timestamp"} (nanoseconds
 *                     since the epoch, from the entry's id)
 *     display         {"type":"result","is_main_result",<key>:<data>}:
 *                     key is E2B's name of the MIME type (text, html, png,
 *                     ...; others go to "extra"); JSON is parsed; the main
 *                     result's text loses the quotes of a Python str repr
 *     error           {"type":"error","name","value","traceback"}
 *     result (last)   {"type":"number_of_executions","execution_count"}
 *                     when known, then {"type":"end_of_execution"}
 *     anything else   nothing (status, events_lost)
 *
 * Every line is ASCII: characters past U+007F are written as \uXXXX, so
 * a reader that decodes each network chunk on its own (the SDK does, and
 * nginx may cut a long line anywhere) never sees a character cut in two. */
#include "sse.h"
#include "sp_auth.h"
#include "sp_keys.h"
#include "sp_utf8.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_INTERP_LINE_MAX SSE_EV_MAX

/* E2B's result keys for MIME types. */
static const struct {
    const char *mime, *key;
} sse_interp_keys[] = {
    {"text/plain", "text"},        {"text/html", "html"},
    {"text/markdown", "markdown"}, {"image/svg+xml", "svg"},
    {"image/png", "png"},          {"image/jpeg", "jpeg"},
    {"application/pdf", "pdf"},    {"text/latex", "latex"},
    {"application/json", "json"},  {"application/javascript", "javascript"},
};

/* The code point of the valid sequence s[0..len). */
static unsigned sse_interp_cp(const unsigned char *s, size_t len)
{
    if (len == 1)
        return s[0];
    if (len == 2)
        return (unsigned)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
    if (len == 3)
        return (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 |
               (s[2] & 0x3f);
    return (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3f) << 12 |
           (unsigned)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

/* JSON text s (n bytes, no raw control bytes) into out with every
 * character past U+007F as \uXXXX (a surrogate pair past U+FFFF) and every
 * invalid byte as \ufffd. Bytes >= 0x80 occur only inside strings, so the
 * JSON stays the same value. 0, or -1 if out is full. */
static int sse_interp_ascii(const unsigned char *s, size_t n, sp_buf *out)
{
    size_t i = 0;

    while (i < n) {
        size_t run = 0, len;
        unsigned cp;
        while (i + run < n && s[i + run] < 0x80)
            run++;
        if (run > 0 && buf_append(out, s + i, run) != 0)
            return -1;
        if ((i += run) >= n)
            break;
        len = utf8_seq_len(s + i, n - i);
        cp = len > 0 ? sse_interp_cp(s + i, len) : 0xfffd;
        i += len > 0 ? len : 1;
        if (cp > 0xffff) {
            cp -= 0x10000;
            if (buf_printf(out, "\\u%04x\\u%04x", 0xd800 + (cp >> 10),
                           0xdc00 + (cp & 0x3ff)) != 0)
                return -1;
        } else if (buf_printf(out, "\\u%04x", cp) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Append one line (a JSON object's text) to wire, framed by fr. */
static int sse_interp_put(const sp_frame *fr, sp_buf *wire, const char *json,
                          size_t n)
{
    sp_buf a;
    int rc = -1;

    buf_init(&a, SSE_INTERP_LINE_MAX);
    if (sse_interp_ascii((const unsigned char *)json, n, &a) == 0)
        rc = fr->event(wire, NULL, "e2b", a.data, a.len);
    buf_free(&a);
    return rc;
}

/* Append the line of a cJSON object (consumed). */
static int sse_interp_put_obj(const sp_frame *fr, sp_buf *wire, cJSON *o)
{
    char *js = cJSON_PrintUnformatted(o);
    int rc = js != NULL ? sse_interp_put(fr, wire, js, strlen(js)) : -1;

    free(js);
    cJSON_Delete(o);
    return rc;
}

static int sse_interp_text(const sp_frame *fr, sp_buf *wire, sse_sid id,
                           const char *type, const char *data, size_t dlen)
{
    sp_buf j;
    int rc = -1;

    buf_init(&j, SSE_INTERP_LINE_MAX);
    if (buf_printf(&j, "{\"type\":\"%s\",\"text\":", type) == 0 &&
        utf8_json_string((const unsigned char *)data, dlen, &j) == 0 &&
        buf_printf(&j, ",\"timestamp\":%llu}",
                   (unsigned long long)id.ms * 1000000ULL) == 0)
        rc = sse_interp_put(fr, wire, j.data, j.len);
    buf_free(&j);
    return rc;
}

/* A display event {mime, data, main?} as a result line. */
static int sse_interp_display(const sp_frame *fr, sp_buf *wire, const cJSON *ev)
{
    const cJSON *mime = cJSON_GetObjectItemCaseSensitive(ev, "mime");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
    int is_main = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "main"));
    const char *key = NULL, *s;
    cJSON *o, *v;
    size_t n;

    if (!cJSON_IsString(mime) || !cJSON_IsString(data))
        return 0;
    for (size_t i = 0; i < sizeof sse_interp_keys / sizeof *sse_interp_keys;
         i++) {
        if (strcmp(mime->valuestring, sse_interp_keys[i].mime) == 0)
            key = sse_interp_keys[i].key;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "result");
    cJSON_AddBoolToObject(o, "is_main_result", is_main);
    s = data->valuestring;
    n = strlen(s);
    if (key != NULL && strcmp(key, "json") == 0 &&
        (v = cJSON_Parse(s)) != NULL) {
        cJSON_AddItemToObject(o, key, v);
    } else if (key != NULL && strcmp(key, "text") == 0 && is_main && n >= 2 &&
               s[0] == '\'' && s[n - 1] == '\'') {
        char *t = strndup(s + 1, n - 2); /* 'abc' → abc, as E2B does */
        cJSON_AddStringToObject(o, key, t != NULL ? t : "");
        free(t);
    } else if (key != NULL) {
        cJSON_AddStringToObject(o, key, s);
    } else {
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "extra"),
                                mime->valuestring, s);
    }
    return sse_interp_put_obj(fr, wire, o);
}

static int sse_interp_error(const sp_frame *fr, sp_buf *wire, const cJSON *ev)
{
    static const char *const names[][2] = {
        {"name", "name"}, {"value", "message"}, {"traceback", "traceback"}};
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "type", "error");
    for (size_t i = 0; i < 3; i++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(ev, names[i][1]);
        cJSON_AddStringToObject(o, names[i][0],
                                cJSON_IsString(f) ? f->valuestring : "");
    }
    return sse_interp_put_obj(fr, wire, o);
}

/* The run's result event: its execution count, then the end. */
static int sse_interp_end(const sp_frame *fr, sp_buf *wire, const cJSON *ev)
{
    static const char end[] = "{\"type\":\"end_of_execution\"}";
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev, "data");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(d, "executionCount");
    char line[96];

    if (cJSON_IsNumber(n) && n->valuedouble >= 1 && n->valuedouble <= 1e9) {
        snprintf(line, sizeof line,
                 "{\"type\":\"number_of_executions\",\"execution_count\":%d}",
                 (int)n->valuedouble);
        if (sse_interp_put(fr, wire, line, strlen(line)) != 0)
            return -1;
    }
    return sse_interp_put(fr, wire, end, sizeof end - 1);
}

/* The lines of one entry into wire; 0 (possibly none) or -1. */
static int sse_interp_lines(const sp_frame *fr, sp_buf *wire, sse_sid id,
                            const char *type, const char *data, size_t dlen)
{
    cJSON *ev;
    int rc = 0;

    if (strcmp(type, "stdout") == 0 || strcmp(type, "stderr") == 0)
        return sse_interp_text(fr, wire, id, type, data, dlen);
    if (strcmp(type, "display") != 0 && strcmp(type, "error") != 0 &&
        strcmp(type, "result") != 0)
        return 0;
    ev = cJSON_ParseWithLength(data, dlen);
    if (strcmp(type, "display") == 0)
        rc = sse_interp_display(fr, wire, ev);
    else if (strcmp(type, "error") == 0)
        rc = sse_interp_error(fr, wire, ev);
    else
        rc = sse_interp_end(fr, wire, ev);
    cJSON_Delete(ev);
    return rc;
}

sse_ev *sse_interp_format(const sse_route *rt, sse_sid id, const char *type,
                          const char *data, size_t dlen, const char *label)
{
    sp_buf wire;
    sse_ev *ev = NULL;
    int final = strcmp(type, rt->final_type) == 0;

    (void)label;
    buf_init(&wire, SSE_EV_MAX);
    if (sse_interp_lines(rt->frame, &wire, id, type, data, dlen) != 0) {
        /* Too large or out of memory: an error line in its place, and
         * still the end after the last event. */
        buf_reset(&wire);
        if (rt->frame->error_end(&wire, "event_too_large", "event too large") !=
                0 ||
            (final && sse_interp_end(rt->frame, &wire, NULL) != 0))
            goto out;
    }
    if (wire.len == 0)
        goto out; /* nothing for E2B: skipped (an empty record would end
                     the FastCGI stream) */
    ev = sse_ev_new(SSE_EV_STDOUT, wire.len);
    if (ev != NULL) {
        memcpy(ev->data, wire.data, wire.len);
        ev->id = id;
        ev->final = (uint8_t) final;
    }
out:
    buf_free(&wire);
    return ev;
}

int sse_interp_credential(const sse_fcgi *f, sse_job *job)
{
    long t = sse_fcgi_param(f, "HTTP_E2B_TRAFFIC_ACCESS_TOKEN", job->traffic,
                            sizeof job->traffic);
    long a = sse_fcgi_param(f, "HTTP_X_ACCESS_TOKEN", job->access,
                            sizeof job->access);

    if (t < 0)
        job->traffic[0] = '\0';
    if (a < 0)
        job->access[0] = '\0';
    /* Too long is wrong (a token is 43 characters); none at all too. */
    return t == -2 || a == -2 || (t <= 0 && a <= 0) ? -1 : 0;
}

void sse_interp_open(const sse_job *job, sse_res *res)
{
    char key[RDS_KEY_MAX];
    redisReply *r = NULL;
    const char *sbx;

    res->status = SP_E_NOT_FOUND;
    if (!id_valid_typed(job->id, job->route->id_prefix) ||
        key_of(key, sizeof key, job->route->owner, job->id) != 0)
        return;
    r = rds_cmd("HMGET %s owner sandbox", key);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        res->status = SP_E_UNAVAILABLE;
        goto out;
    }
    if (r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING)
        goto out;
    sbx = r->element[1]->str;
    res->status = SP_E_UNAUTHENTICATED;
    if ((job->traffic[0] != '\0' &&
         !auth_sandbox_token_ok(AUTH_SBX_TRAFFIC, sbx, job->traffic)) ||
        (job->access[0] != '\0' &&
         !auth_sandbox_token_ok(AUTH_SBX_ENVD, sbx, job->access)))
        goto out;
    snprintf(res->sub, sizeof res->sub, "%s", r->element[0]->str);
    res->status = SP_OK;
out:
    freeReplyObject(r);
}
