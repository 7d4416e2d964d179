/* sse_event.c: stream ids and the SSE framing of stream entries
 * (docs/DESIGN.md §4). An event is formatted once and the same bytes are queued
 * on every client that receives it (reference counted).
 *
 * Framing: "id: <ms-seq>\nevent: <type>\ndata: <one-line JSON>\n\n". The
 * JSON is always {"type","<label>",...} on one line: text output goes
 * through utf8_json_string (every control byte escaped, invalid bytes
 * U+FFFD), JSON objects from the producer through cJSON's unformatted
 * printer (no raw newline), so nothing a program prints can become
 * framing. */
#include "sse.h"
#include "sp_buf.h"
#include "sp_utf8.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_TYPE_MAX 32

/* "stdout"-like types carry raw bytes; everything else carries a JSON
 * object whose fields are merged into the envelope. */
static int sse_type_is_text(const char *type)
{
    return strcmp(type, "stdout") == 0 || strcmp(type, "stderr") == 0 ||
           strcmp(type, "output") == 0;
}

/* An event name must never carry framing: [a-z_]{1,32}. */
static int sse_type_ok(const char *type)
{
    size_t n = 0;
    for (; type[n] != '\0'; n++) {
        if (!((type[n] >= 'a' && type[n] <= 'z') || type[n] == '_'))
            return 0;
    }
    return n >= 1 && n <= SSE_TYPE_MAX;
}

static int sse_u64_parse(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int sse_sid_parse(const char *s, size_t len, sse_sid *out)
{
    const char *dash = memchr(s, '-', len);
    if (dash == NULL)
        return -1;
    if (sse_u64_parse(s, (size_t)(dash - s), &out->ms) != 0 ||
        sse_u64_parse(dash + 1, len - (size_t)(dash - s) - 1, &out->seq) != 0)
        return -1;
    return 0;
}

void sse_sid_format(sse_sid id, char *out)
{
    snprintf(out, SSE_SID_STR, "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
}

int sse_sid_cmp(sse_sid a, sse_sid b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    return 0;
}

sse_ev *sse_ev_new(int kind, size_t len)
{
    sse_ev *ev;
    if (len > SSE_EV_MAX)
        return NULL;
    ev = calloc(1, sizeof *ev + len + 1);
    if (ev == NULL)
        return NULL;
    ev->refs = 1;
    ev->kind = (uint8_t)kind;
    ev->len = (uint32_t)len;
    return ev;
}

void sse_ev_unref(sse_ev *ev)
{
    if (ev == NULL || ev->refs == UINT32_MAX)
        return;
    if (--ev->refs == 0)
        free(ev);
}

/* Remove every member called name from obj: a JSON text may give a name
 * twice, and a reader keeps the last one. */
static void sse_json_drop(cJSON *obj, const char *name)
{
    cJSON *it;
    while ((it = cJSON_DetachItemFromObjectCaseSensitive(obj, name)) != NULL)
        cJSON_Delete(it);
}

/* Append the producer's JSON object's members (minus the envelope's own
 * names) after the envelope's first members; anything that is not a JSON
 * object is sent as text in "data". */
static int sse_merge_json(sp_buf *b, const char *data, size_t dlen,
                          const char *label_name)
{
    cJSON *obj = cJSON_ParseWithLength(data, dlen), *it;
    char *txt;
    int result = -1;

    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        if (buf_puts(b, ",\"data\":") != 0)
            return -1;
        return utf8_json_string((const unsigned char *)data, dlen, b);
    }
    sse_json_drop(obj, "type");
    sse_json_drop(obj, label_name);
    it = obj->child;
    txt = cJSON_PrintUnformatted(obj);
    if (txt == NULL)
        goto out;
    /* txt is "{...}": splice its members after ours. cJSON copies string
     * bytes as they came (a context driver's display data, say), so
     * invalid UTF-8 is replaced here as it is for text output; only string
     * contents can hold bytes >= 0x80, so the JSON stays well formed. */
    if (it != NULL &&
        (buf_puts(b, ",") != 0 || utf8_sanitize((const unsigned char *)txt + 1,
                                                strlen(txt) - 2, b) != 0))
        goto out;
    result = 0;
out:
    free(txt);
    cJSON_Delete(obj);
    return result;
}

sse_ev *sse_ev_format(sse_sid id, const char *type, const char *data,
                      size_t dlen, const char *label_name, const char *label,
                      const char *final_type)
{
    char sid[SSE_SID_STR];
    sp_buf b;
    sse_ev *ev = NULL;
    int rc;

    if (!sse_type_ok(type))
        return NULL;
    buf_init_sticky(&b, SSE_EV_MAX);
    sse_sid_format(id, sid);
    buf_printf(&b, "id: %s\nevent: %s\ndata: {\"type\":\"%s\",\"%s\":\"%s\"",
               sid, type, type, label_name, label);
    if (sse_type_is_text(type)) {
        buf_puts(&b, ",\"data\":");
        utf8_json_string((const unsigned char *)data, dlen, &b);
        rc = 0;
    } else {
        rc = sse_merge_json(&b, data, dlen, label_name); /* -1: cJSON failed */
    }
    buf_puts(&b, "}\n\n");
    if (rc != 0 || buf_failed(&b)) {
        /* Too large or out of memory: say so in place of the event, under
         * its id, so that the stream goes on and resume stays exact. */
        buf_reset(&b);
        if (buf_printf(&b,
                       "id: %s\nevent: error\ndata: {\"type\":\"error\","
                       "\"%s\":\"%s\",\"message\":\"event too large\","
                       "\"code\":\"event_too_large\"}\n\n",
                       sid, label_name, label) != 0)
            goto out;
    }
    ev = sse_ev_new(SSE_EV_STDOUT, b.len);
    if (ev == NULL)
        goto out;
    memcpy(ev->data, b.data, b.len);
    ev->id = id;
    ev->final = final_type != NULL && strcmp(type, final_type) == 0;
out:
    buf_free(&b);
    return ev;
}

void sse_res_free(sse_res *res)
{
    if (res == NULL)
        return;
    while (res->evs != NULL) {
        sse_ev *n = res->evs->next;
        sse_ev_unref(res->evs);
        res->evs = n;
    }
    free(res);
}

void sse_job_free(sse_job *job)
{
    if (job == NULL)
        return;
    if (job->token != NULL) {
        explicit_bzero(job->token, strlen(job->token));
        free(job->token);
    }
    free(job);
}
