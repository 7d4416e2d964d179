/* handlers/storage_progress.c: the storage family: the answer of a copy
 * between a bucket and a sandbox. By default one JSON answer at the end.
 * A client that sends "Accept: application/x-ndjson" gets the answer as a
 * stream of events in the ndjson framing (common/sp_frame.h) instead: a
 * "progress" event after each file ({done, total, bytes, name}), then
 * "result" with the JSON answer, or the framing's error end when the copy
 * fails half-way (what was copied stays). nginx passes it unbuffered
 * (storage.conf). */
#include "storage.h"
#include "sp_frame.h"
#include "sp_log.h"
#include "sp_rpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define STG_EVENT_MAX 8192 /* an error end */
#define STG_FRAME_MAX 256  /* what the framing adds around an event's data */

/* One event through the framing, flushed to the client. Its buffer is
 * sized by the data: the result of a copy of many files is far larger
 * than a progress event. */
static void stg_progress_event(stg_progress *p, const char *type,
                               const cJSON *data)
{
    char *s = cJSON_PrintUnformatted(data);
    size_t len = s != NULL ? strlen(s) : 0;
    sp_buf b;

    buf_init(&b, len + STG_FRAME_MAX);
    if (s != NULL && frame_ndjson.event(&b, NULL, type, s, len) == 0) {
        FCGX_PutStr(b.data, (int)b.len, p->r->fcgi.out);
        FCGX_FFlush(p->r->fcgi.out);
    }
    buf_free(&b);
    cJSON_free(s);
}

void stg_progress_start(stg_progress *p, http_req *r, size_t total)
{
    const char *accept = http_header(r, "Accept");

    memset(p, 0, sizeof *p);
    p->r = r;
    p->total = total;
    if (accept != NULL && strstr(accept, "application/x-ndjson") != NULL &&
        http_send_head(r, 200, frame_ndjson.content_type, HTTP_LEN_STREAM) == 0)
        p->stream = 1;
}

void stg_progress_step(stg_progress *p, const char *name, long long size)
{
    cJSON *d;

    p->done++;
    p->bytes += size;
    if (!p->stream)
        return;
    d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "done", (double)p->done);
    cJSON_AddNumberToObject(d, "total", (double)p->total);
    cJSON_AddNumberToObject(d, "bytes", (double)p->bytes);
    cJSON_AddStringToObject(d, "name", name);
    stg_progress_event(p, "progress", d);
    cJSON_Delete(d);
}

void stg_progress_fail(stg_progress *p, sp_status st, const char *field,
                       const char *msg)
{
    sp_buf b;

    if (!p->stream) {
        http_send_error(p->r, st, field, "%s", msg);
        return;
    }
    buf_init(&b, STG_EVENT_MAX);
    if (frame_ndjson.error_end(&b, sp_status_code(st), msg) == 0)
        FCGX_PutStr(b.data, (int)b.len, p->r->fcgi.out);
    buf_free(&b);
}

void stg_progress_done(stg_progress *p, const cJSON *answer)
{
    if (p->stream)
        stg_progress_event(p, "result", answer);
    else
        http_send_json(p->r, 200, answer);
}

void stg_progress_fail_rpc(stg_progress *p, const rpc_err *err,
                           const char *field)
{
    if (!p->stream)
        http_send_rpc_error(p->r, err, field);
    else
        stg_progress_fail(p, err->st, field, err->msg);
}
