/* hd_ctx_frames.c: what a context's driver writes (hd_ctx.c has the
 * theory of operation): its stdout cut into frames (0x1e, a JSON object,
 * "\n"; see helper/drivers/py_driver.py), the base64 of their output
 * bytes decoded, and each frame routed to the context's current run as
 * events (stdout, stderr, display, error) and as the captures, results and
 * error of the run's sync /execute answer, which is built here too. Its
 * stderr goes to the current run as stderr.
 *
 * A frame that is not JSON, not an object with "t", too large (the
 * context's frame buffer has a maximum) or whose output is not base64
 * ends the context. "done" finishes the current run and hands the next
 * queued one to the driver (hd_ctx.c). */
#include "hd_ctx.h"
#include "sp_b64.h"
#include "sp_config.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"
#include "sp_utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HD_CTX_MESSAGE_MAX   (8 * 1024)
#define HD_CTX_TRACEBACK_MAX (64 * 1024)

static const char *hd_ctx_streams[2] = {"stdout", "stderr"};

void hd_ctx_event(hd_ctx_run *run, const char *type, const void *data,
                  size_t len)
{
    char vk[RDS_KEY_MAX], maxlen[RDS_NUM_SIZE], id[HD_EVID_SIZE];

    if (key_of(vk, sizeof vk, KEY_EVENTS, run->id) != 0)
        return;
    snprintf(maxlen, sizeof maxlen, "%lld", cfg_int(CFG_SP_STREAM_MAXLEN));
    hd_evid_next(&run->evid, id);
    hd_pub("XADD %s MAXLEN ~ %s %s type %s data %b", vk, maxlen, id, type, data,
           len);
}

/* Output of run may be queued (n bytes): 1, after its events_lost event
 * if output was dropped before; else 0 and it counts as lost (hd_pub). */
static int hd_ctx_output_room(hd_ctx_run *run, size_t n)
{
    char ev[64];

    if (!hd_pub_room(n)) {
        run->lost_bytes += n;
        run->truncated = 1;
        return 0;
    }
    if (run->lost_bytes > 0) {
        snprintf(ev, sizeof ev, "{\"bytes\":%zu}", run->lost_bytes);
        hd_ctx_event(run, "events_lost", ev, strlen(ev));
        run->lost_bytes = 0;
    }
    return 1;
}

void hd_ctx_event_json(hd_ctx_run *run, const char *type, cJSON *obj)
{
    char *js = cJSON_PrintUnformatted(obj);
    if (js != NULL)
        hd_ctx_event(run, type, js, strlen(js));
    free(js);
    cJSON_Delete(obj);
}

void hd_ctx_emit(hd_ctx *c, hd_ctx_run *run, int which, const unsigned char *p,
                 size_t n, int at_eof)
{
    size_t cut, room;
    unsigned char *buf = malloc(run->carry[which].len + n + 1);

    if (buf == NULL)
        return;
    cut = utf8_carry_join(&run->carry[which], p, n, at_eof, buf);
    if (run->over_limit || cut == 0)
        goto out;
    room = run->out_max - run->out_bytes;
    if (cut > room) {
        cut = utf8_cut(buf, room);
        run->truncated = run->over_limit = 1;
        if (c != NULL && run == c->cur)
            hd_ctx_interrupt(c);
    }
    if (cut == 0)
        goto out;
    run->out_bytes += cut;
    if (hd_ctx_output_room(run, cut))
        hd_ctx_event(run, hd_ctx_streams[which], buf, cut);
    if (run->rid[0] != '\0')
        buf_append(&run->cap[which], buf, cut); /* bounded by out_max */
out:
    free(buf);
}

/* Rich output (a display frame, or one mime type of a result): a display
 * event {mime, data, main?} and an entry of results; counted against the
 * output cap. is_main: the value of the cell's last expression (E2B's
 * is_main_result), not a figure or other display. */
static void hd_ctx_display(hd_ctx_run *run, const char *mime, const char *data,
                           int is_main)
{
    size_t n = strlen(data);
    cJSON *ev, *item;

    if (run->over_limit || n > run->out_max - run->out_bytes) {
        run->truncated = 1;
        return;
    }
    run->out_bytes += n;
    if (!hd_ctx_output_room(run, n))
        return;
    ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "mime", mime);
    cJSON_AddStringToObject(ev, "data", data);
    if (is_main)
        cJSON_AddBoolToObject(ev, "main", 1);
    hd_ctx_event_json(run, "display", ev);
    if (run->rid[0] != '\0') {
        item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, mime, data);
        cJSON_AddItemToArray(run->results, item);
    }
}

/* Add s (NULL: "") to o as name, cut to at most max bytes at a UTF-8
 * boundary. */
static void hd_ctx_add_cut(cJSON *o, const char *name, const char *s,
                           size_t max)
{
    size_t n = s != NULL ? strlen(s) : 0;
    char *copy;

    if (n <= max) {
        cJSON_AddStringToObject(o, name, s != NULL ? s : "");
        return;
    }
    n = utf8_cut((const unsigned char *)s, max);
    copy = strndup(s, n);
    cJSON_AddStringToObject(o, name, copy != NULL ? copy : "");
    free(copy);
}

void hd_ctx_set_error(hd_ctx_run *run, const char *name, const char *message,
                      const char *tb)
{
    cJSON_Delete(run->error);
    run->error = cJSON_CreateObject();
    hd_ctx_add_cut(run->error, "name", name ? name : "Error", 256);
    hd_ctx_add_cut(run->error, "message", message, HD_CTX_MESSAGE_MAX);
    hd_ctx_add_cut(run->error, "traceback", tb, HD_CTX_TRACEBACK_MAX);
}

/* What the driver's stderr pipe holds now was written before the frame
 * being handled: it belongs to the run, whose end that frame may be. */
static void hd_ctx_drain_stderr(hd_ctx *c, hd_ctx_run *run)
{
    unsigned char buf[16384];
    ssize_t r;

    if (c->driver == NULL)
        return;
    for (int i = 0; i < 64 && c->driver->fds[1] >= 0; i++) {
        r = read(c->driver->fds[1], buf, sizeof buf);
        if (r <= 0)
            return; /* EAGAIN; EOF and errors are hd_exec_read's */
        hd_ctx_emit(c, run, 1, buf, (size_t)r, 0);
    }
}

/* One complete frame (without 0x1e and "\n"). Returns 0, or -1 if it is
 * not a frame (the context must end). May end the current run and start
 * the next one. */
static int hd_ctx_frame(hd_ctx *c, const char *js, size_t len)
{
    cJSON *f = cJSON_ParseWithLength(js, len);
    const char *t = hd_arg_str(f, "t");
    hd_ctx_run *run = c->cur;
    int result = -1;

    if (!cJSON_IsObject(f) || t == NULL)
        goto out;
    result = 0;
    /* Output after a run's "done" (a JavaScript timer, say) has no run
     * to go to: dropped. */
    if (run == NULL)
        goto out;
    if (strcmp(t, "stdout") == 0 || strcmp(t, "stderr") == 0) {
        const char *b = hd_arg_str(f, "b");
        size_t n = 0;
        unsigned char *bytes = b ? b64_decode(b, strlen(b), &n) : NULL;
        if (bytes == NULL) {
            result = -1;
            goto out;
        }
        hd_ctx_emit(c, run, t[3] == 'e' ? 1 : 0, bytes, n, 0);
        free(bytes);
    } else if (strcmp(t, "display") == 0) {
        const char *mime = hd_arg_str(f, "mime");
        const char *data = hd_arg_str(f, "data");
        if (mime != NULL && data != NULL)
            hd_ctx_display(run, mime, data, 0);
    } else if (strcmp(t, "result") == 0) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(f, "data"))
        {
            if (cJSON_IsString(it))
                hd_ctx_display(run, it->string, it->valuestring, 1);
        }
    } else if (strcmp(t, "error") == 0) {
        hd_ctx_set_error(run, hd_arg_str(f, "name"), hd_arg_str(f, "message"),
                         hd_arg_str(f, "traceback"));
        hd_ctx_event_json(run, "error", cJSON_Duplicate(run->error, 1));
    } else if (strcmp(t, "done") == 0) {
        const char *st = hd_arg_str(f, "status");
        const cJSON *count = cJSON_GetObjectItemCaseSensitive(f, "count");
        if (st != NULL && strcmp(st, "timeout") == 0)
            run->timed_out = 1;
        if (cJSON_IsNumber(count) && count->valuedouble >= 1 &&
            count->valuedouble <= 1e9)
            run->count = (int)count->valuedouble;
        hd_ctx_drain_stderr(c, run);
        c->cur = NULL;
        c->kill_ms = 0;
        hd_ctx_finish(c->sbx, run, NULL);
        hd_ctx_start_next(c);
    }
out:
    cJSON_Delete(f);
    return result;
}

void hd_ctx_output(hd_exec *e, int which, const unsigned char *p, size_t n)
{
    hd_ctx *c = e->ctx;

    if (which == 1) {
        if (c->cur != NULL)
            hd_ctx_emit(c, c->cur, 1, p, n, 0);
        else
            log_info("context %s wrote outside a run: %.*s", c->id,
                     (int)(n < 300 ? n : 300), (const char *)p);
        return;
    }
    while (n > 0) {
        const unsigned char *nl = memchr(p, '\n', n);
        size_t take = nl != NULL ? (size_t)(nl - p) + 1 : n;
        if (buf_append(&c->frame, p, take) != 0) {
            hd_ctx_end(c, "the context sent a frame that is too large");
            return;
        }
        p += take;
        n -= take;
        if (nl == NULL)
            return;
        if (c->frame.len < 2 || c->frame.data[0] != '\x1e' ||
            hd_ctx_frame(c, c->frame.data + 1, c->frame.len - 2) != 0) {
            hd_ctx_end(c, "the context sent a malformed frame");
            return;
        }
        buf_reset(&c->frame);
    }
}
