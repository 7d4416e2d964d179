/* sse_event.c: stream ids and the events of stream entries
 * (docs/DESIGN.md §4). An event is formatted once and the same bytes are
 * queued on every client that receives it (reference counted).
 *
 * An entry becomes the JSON object {"type","<label>",...} on one line:
 * text output goes through utf8_json_string (every control byte escaped,
 * invalid bytes U+FFFD), JSON objects from the producer through cJSON's
 * unformatted printer (no raw newline), so nothing a program prints can
 * become framing. The route's framing (common/sp_frame.h; SSE for every
 * route today: "id: <ms-seq>\nevent: <type>\ndata: <json>\n\n") turns the
 * object into the bytes on the wire; nothing here knows those bytes. */
#include "sse.h"
#include "sp_buf.h"
#include "sp_frame.h"
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

/* The reader thread formats every event, and the loop thread a few: each
 * thread has its own two buffers, kept between events (an event of 64 KiB
 * output needs ~400 KiB of room for escaping; allocating that per event
 * cost more than the copy). Bounded by SSE_EV_MAX each. */
static __thread sp_buf sse_json_buf, sse_wire_buf;

static void sse_bufs_reset(void)
{
    sse_json_buf.max = SSE_EV_MAX;
    sse_wire_buf.max = SSE_EV_MAX;
    buf_reset(&sse_json_buf);
    buf_reset(&sse_wire_buf);
}

/* The envelope of an entry into j: {"type":"<type>","<label_name>":
 * "<label>",...}. 0, or -1 if it does not fit. */
static int sse_envelope(sp_buf *j, const char *type, const char *data,
                        size_t dlen, const char *label_name, const char *label)
{
    if (buf_puts(j, "{\"type\":\"") != 0 || buf_puts(j, type) != 0 ||
        buf_puts(j, "\",\"") != 0 || buf_puts(j, label_name) != 0 ||
        buf_puts(j, "\":\"") != 0 || buf_puts(j, label) != 0 ||
        buf_puts(j, "\"") != 0)
        return -1;
    if (sse_type_is_text(type)) {
        if (buf_puts(j, ",\"data\":") != 0 ||
            utf8_json_string((const unsigned char *)data, dlen, j) != 0)
            return -1;
    } else if (sse_merge_json(j, data, dlen, label_name) != 0) {
        return -1;
    }
    return buf_puts(j, "}");
}

/* A shared event holding the wire buffer's bytes. */
static sse_ev *sse_ev_from_wire(sse_sid id)
{
    sse_ev *ev = sse_ev_new(SSE_EV_STDOUT, sse_wire_buf.len);
    if (ev == NULL)
        return NULL;
    if (sse_wire_buf.len > 0)
        memcpy(ev->data, sse_wire_buf.data, sse_wire_buf.len);
    ev->id = id;
    return ev;
}

/* An error event {"type":"error","<label_name>":"<label>","message",
 * "code"} framed by fr under sid (NULL: none) into the wire buffer. */
static int sse_error_wire(const sp_frame *fr, const char *sid,
                          const char *label_name, const char *label,
                          const char *code, const char *message)
{
    buf_reset(&sse_json_buf);
    buf_reset(&sse_wire_buf);
    if (buf_printf(&sse_json_buf,
                   "{\"type\":\"error\",\"%s\":\"%s\",\"message\":\"%s\","
                   "\"code\":\"%s\"}",
                   label_name, label, message, code) != 0)
        return -1;
    return fr->event(&sse_wire_buf, sid, "error", sse_json_buf.data,
                     sse_json_buf.len);
}

sse_ev *sse_ev_format(const sp_frame *fr, sse_sid id, const char *type,
                      const char *data, size_t dlen, const char *label_name,
                      const char *label, const char *final_type)
{
    char sid[SSE_SID_STR];
    sse_ev *ev;

    if (!sse_type_ok(type))
        return NULL;
    sse_bufs_reset();
    sse_sid_format(id, sid);
    if (sse_envelope(&sse_json_buf, type, data, dlen, label_name, label) != 0 ||
        fr->event(&sse_wire_buf, sid, type, sse_json_buf.data,
                  sse_json_buf.len) != 0) {
        /* Too large or out of memory: say so in place of the event, under
         * its id, so that the stream goes on and resume stays exact. */
        if (sse_error_wire(fr, sid, label_name, label, "event_too_large",
                           "event too large") != 0)
            return NULL;
    }
    ev = sse_ev_from_wire(id);
    if (ev != NULL)
        ev->final = final_type != NULL && strcmp(type, final_type) == 0;
    return ev;
}

sse_ev *sse_ev_mapped(const sp_frame *fr, const sse_map *map, sse_sid id,
                      const char *type, const char *data, size_t dlen,
                      const char *final_type)
{
    char sid[SSE_SID_STR];
    int final = final_type != NULL && strcmp(type, final_type) == 0;
    sse_ev *ev;
    int rc;

    if (!sse_type_ok(type))
        return NULL;
    sse_bufs_reset();
    sse_sid_format(id, sid);
    rc = map->entry(&sse_json_buf, type, data, dlen);
    if (rc == 1 && !final)
        return NULL;
    if (rc == 0)
        rc = fr->event(&sse_wire_buf, sid, type, sse_json_buf.data,
                       sse_json_buf.len);
    if (rc == 0 && map->more != NULL) {
        /* A second message of the entry follows the first in one event. */
        buf_reset(&sse_json_buf);
        rc = map->more(&sse_json_buf, type, data, dlen);
        if (rc == 0)
            rc = fr->event(&sse_wire_buf, sid, type, sse_json_buf.data,
                           sse_json_buf.len);
        else if (rc == 1)
            rc = 0;
    }
    if (rc != 0) {
        buf_reset(&sse_wire_buf);
        if (sse_error_wire(fr, sid, "type", type, "event_too_large",
                           "event too large") != 0)
            return NULL;
    }
    ev = sse_ev_from_wire(id);
    if (ev != NULL)
        ev->final = final;
    return ev;
}

sse_ev *sse_ev_head(const sp_frame *fr, const sse_map *map, const char *arg)
{
    sse_sid none = {0, 0};

    if (map == NULL || map->head == NULL)
        return NULL;
    sse_bufs_reset();
    if (map->head(&sse_json_buf, arg) != 0 ||
        fr->event(&sse_wire_buf, NULL, "start", sse_json_buf.data,
                  sse_json_buf.len) != 0)
        return NULL;
    return sse_ev_from_wire(none);
}

sse_ev *sse_ev_error(const sp_frame *fr, const char *label_name,
                     const char *label, const char *code, const char *message)
{
    sse_sid none = {0, 0};

    sse_bufs_reset();
    if (sse_error_wire(fr, NULL, label_name, label, code, message) != 0)
        return NULL;
    return sse_ev_from_wire(none);
}

sse_ev *sse_ev_part(const sp_frame *fr, int part, const char *code,
                    const char *message)
{
    sse_sid none = {0, 0};
    int rc;

    sse_bufs_reset();
    switch (part) {
    case SSE_PART_PREAMBLE:
        rc = fr->preamble(&sse_wire_buf);
        break;
    case SSE_PART_HEARTBEAT:
        rc = fr->heartbeat(&sse_wire_buf);
        break;
    case SSE_PART_END:
        rc = code != NULL ? fr->error_end(&sse_wire_buf, code, message)
                          : fr->end(&sse_wire_buf);
        break;
    default:
        rc = -1;
    }
    return rc == 0 ? sse_ev_from_wire(none) : NULL;
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
    explicit_bzero(job->traffic, sizeof job->traffic);
    explicit_bzero(job->access, sizeof job->access);
    free(job);
}
