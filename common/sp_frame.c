/* sp_frame.c: the framings of sp_frame.h (SSE, NDJSON, lines, Connect
 * streaming envelopes, WebSocket frames). Every writer checks its
 * arguments, computes the exact size of what it writes, reserves it in
 * the buffer at once (so a refusal leaves nothing behind) and copies the
 * pieces in: the relay frames every event of every stream here, so there
 * is no printf and one pass over the data (the check). */
#include "sp_frame.h"
#include "sp_utf8.h"

#include <string.h>

#define FRAME_CODE_MAX   32
#define FRAME_WS_NORMAL  1000 /* RFC 6455 §7.4.1: normal closure */
#define FRAME_WS_FAILURE 1011 /* the server met an unexpected condition */
#define FRAME_ERR_MAX    (64 * 1024) /* an error end's JSON */

static const char frame_sse_hb[] = ": hb\n\n";
static const char frame_ndjson_hb[] = "{\"type\":\"keepalive\"}\n";
static const unsigned char frame_connect_hb[] = {0, 0, 0, 0, 2, '{', '}'};
static const unsigned char frame_connect_end[] = {2, 0, 0, 0, 2, '{', '}'};
static const unsigned char frame_ws_ping[] = {0x80 | FRAME_WS_PING, 0};

/* 1 if s[0..n) may be carried as an event's data: valid UTF-8, no NUL,
 * no control byte but tab, and CR/LF only when lines_ok. */
static int frame_text_ok(const unsigned char *s, size_t n, int lines_ok)
{
    size_t i = 0;

    while (i < n) {
        unsigned c;
        size_t len;
        /* Eight bytes of 0x20..0x7f at a time, the usual case: no high
         * bit, and no byte below 0x20 (a borrow reaches a byte's top bit
         * only from a byte below 0x20; exact when no high bit is set). */
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (((w | ((w - 0x2020202020202020ULL) & ~w)) &
                 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        c = s[i];
        if (c >= 0x20 && c < 0x80) {
            i++;
            continue;
        }
        if (c < 0x20) {
            if (c != '\t' && !(lines_ok && (c == '\n' || c == '\r')))
                return 0;
            i++;
            continue;
        }
        len = utf8_seq_len(s + i, n - i);
        if (len == 0)
            return 0;
        i += len;
    }
    return 1;
}

/* Length of s if it is 1..max bytes of [A-Za-z0-9_.-] (and ':' when
 * colon), else 0. */
static size_t frame_token_len(const char *s, size_t max, int colon)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= max || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                          c == '.' || (colon && c == ':')))
            return 0;
    }
    return n;
}

/* Check an event's arguments; *il and *tl get the id's and type's
 * lengths (*il 0: no id). 0 or -1. */
static int frame_event_check(const char *id, const char *type, const char *data,
                             size_t dlen, int lines_ok, size_t *il, size_t *tl)
{
    *il = 0;
    if (id != NULL && id[0] != '\0' &&
        (*il = frame_token_len(id, FRAME_ID_MAX, 1)) == 0)
        return -1;
    if (type == NULL || (*tl = frame_token_len(type, FRAME_TYPE_MAX, 0)) == 0)
        return -1;
    if (data == NULL || dlen == 0 || dlen > FRAME_DATA_MAX ||
        !frame_text_ok((const unsigned char *)data, dlen, lines_ok))
        return -1;
    return 0;
}

/* 1 if code is [a-z_]{1,FRAME_CODE_MAX}. */
static int frame_code_ok(const char *code)
{
    size_t n = 0;
    if (code == NULL)
        return 0;
    for (; code[n] != '\0'; n++) {
        if (n >= FRAME_CODE_MAX ||
            !((code[n] >= 'a' && code[n] <= 'z') || code[n] == '_'))
            return 0;
    }
    return n > 0;
}

static char *frame_put(char *d, const void *p, size_t n)
{
    memcpy(d, p, n);
    return d + n;
}

/* Reserve n bytes at the end of b; returns where they go, or NULL. The
 * caller fills exactly n bytes and then calls frame_commit. */
static char *frame_reserve(sp_buf *b, size_t n)
{
    if (buf_ensure(b, n) != 0)
        return NULL;
    return b->data + b->len;
}

static int frame_commit(sp_buf *b, size_t n)
{
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* The ndjson/websocket event object: size, then writing it. */
static size_t frame_obj_len(size_t il, size_t tl, size_t dlen)
{
    /* {  "id":"<id>",  "type":"<type>  ","data":  <data>  } */
    return 1 + (il ? 6 + il + 2 : 0) + 8 + tl + 9 + dlen + 1;
}

static char *frame_obj_put(char *d, const char *id, size_t il, const char *type,
                           size_t tl, const char *data, size_t dlen)
{
    *d++ = '{';
    if (il) {
        d = frame_put(d, "\"id\":\"", 6);
        d = frame_put(d, id, il);
        d = frame_put(d, "\",", 2);
    }
    d = frame_put(d, "\"type\":\"", 8);
    d = frame_put(d, type, tl);
    d = frame_put(d, "\",\"data\":", 9);
    d = frame_put(d, data, dlen);
    *d++ = '}';
    return d;
}

/* {"error":{"code":"<code>","message":"<message>"}} into out (empty,
 * bounded by the caller). 0 or -1. */
static int frame_error_json(sp_buf *out, const char *code, const char *message)
{
    if (buf_puts(out, "{\"error\":{\"code\":\"") != 0 ||
        buf_puts(out, code) != 0 || buf_puts(out, "\",\"message\":") != 0 ||
        utf8_json_string((const unsigned char *)message, strlen(message),
                         out) != 0 ||
        buf_puts(out, "}}") != 0)
        return -1;
    return 0;
}

static int frame_none(sp_buf *b)
{
    (void)b;
    return 0;
}

/* ---------------------------------------------------------------- SSE */

static int frame_sse_event(sp_buf *b, const char *id, const char *type,
                           const char *data, size_t dlen)
{
    size_t il, tl, n;
    char *d;

    if (frame_event_check(id, type, data, dlen, 0, &il, &tl) != 0)
        return -1;
    n = (il ? 4 + il + 1 : 0) + 7 + tl + 1 + 6 + dlen + 2;
    if ((d = frame_reserve(b, n)) == NULL)
        return -1;
    if (il) {
        d = frame_put(d, "id: ", 4);
        d = frame_put(d, id, il);
        *d++ = '\n';
    }
    d = frame_put(d, "event: ", 7);
    d = frame_put(d, type, tl);
    d = frame_put(d, "\ndata: ", 7);
    d = frame_put(d, data, dlen);
    frame_put(d, "\n\n", 2);
    return frame_commit(b, n);
}

static int frame_sse_heartbeat(sp_buf *b)
{
    return buf_append(b, frame_sse_hb, sizeof frame_sse_hb - 1);
}

/* An SSE stream has no trailer: it ends when the response does, and the
 * EventSource reconnects with Last-Event-ID. Errors inside a stream are
 * events of type "error" that the streaming side sends itself. */
static int frame_sse_error_end(sp_buf *b, const char *code, const char *message)
{
    (void)b;
    return frame_code_ok(code) && message != NULL ? 0 : -1;
}

const sp_frame frame_sse = {
    .name = "sse",
    .content_type = "text/event-stream",
    .preamble = frame_none,
    .event = frame_sse_event,
    .heartbeat = frame_sse_heartbeat,
    .error_end = frame_sse_error_end,
    .end = frame_none,
};

/* -------------------------------------------------------------- NDJSON */

static int frame_ndjson_event(sp_buf *b, const char *id, const char *type,
                              const char *data, size_t dlen)
{
    size_t il, tl, n;
    char *d;

    if (frame_event_check(id, type, data, dlen, 0, &il, &tl) != 0)
        return -1;
    n = frame_obj_len(il, tl, dlen) + 1;
    if ((d = frame_reserve(b, n)) == NULL)
        return -1;
    d = frame_obj_put(d, id, il, type, tl, data, dlen);
    *d = '\n';
    return frame_commit(b, n);
}

static int frame_ndjson_heartbeat(sp_buf *b)
{
    return buf_append(b, frame_ndjson_hb, sizeof frame_ndjson_hb - 1);
}

/* The error object of an error end into e (initialised here, freed by
 * the caller): 0, or -1 if code or message is refused or too long. */
static int frame_error_doc(sp_buf *e, const char *code, const char *message)
{
    buf_init(e, FRAME_ERR_MAX);
    if (!frame_code_ok(code) || message == NULL)
        return -1;
    return frame_error_json(e, code, message);
}

static int frame_ndjson_error_end(sp_buf *b, const char *code,
                                  const char *message)
{
    sp_buf e;
    int result = -1;

    if (frame_error_doc(&e, code, message) == 0 && buf_append(&e, "\n", 1) == 0)
        result = buf_append(b, e.data, e.len);
    buf_free(&e);
    return result;
}

const sp_frame frame_ndjson = {
    .name = "ndjson",
    .content_type = "application/x-ndjson",
    .preamble = frame_none,
    .event = frame_ndjson_event,
    .heartbeat = frame_ndjson_heartbeat,
    .error_end = frame_ndjson_error_end,
    .end = frame_none,
};

/* --------------------------------------------------------------- lines */

static int frame_lines_event(sp_buf *b, const char *id, const char *type,
                             const char *data, size_t dlen)
{
    size_t il, tl;
    char *d;

    if (frame_event_check(id, type, data, dlen, 0, &il, &tl) != 0)
        return -1;
    if ((d = frame_reserve(b, dlen + 1)) == NULL)
        return -1;
    d = frame_put(d, data, dlen);
    *d = '\n';
    return frame_commit(b, dlen + 1);
}

static int frame_lines_error_end(sp_buf *b, const char *code,
                                 const char *message)
{
    sp_buf e;
    int result = -1;

    buf_init(&e, FRAME_ERR_MAX);
    if (frame_code_ok(code) && message != NULL &&
        buf_puts(&e, "{\"type\":\"error\",\"name\":\"") == 0 &&
        buf_puts(&e, code) == 0 && buf_puts(&e, "\",\"value\":") == 0 &&
        utf8_json_string((const unsigned char *)message, strlen(message), &e) ==
            0 &&
        buf_puts(&e, ",\"traceback\":\"\"}\n") == 0)
        result = buf_append(b, e.data, e.len);
    buf_free(&e);
    return result;
}

const sp_frame frame_lines = {
    .name = "lines",
    .content_type = "application/x-ndjson",
    .preamble = frame_none,
    .event = frame_lines_event,
    .heartbeat = frame_ndjson_heartbeat,
    .error_end = frame_lines_error_end,
    .end = frame_none,
};

/* ------------------------------------------------------------- Connect */

static void frame_be32(char *d, uint32_t v)
{
    d[0] = (char)(v >> 24);
    d[1] = (char)(v >> 16);
    d[2] = (char)(v >> 8);
    d[3] = (char)v;
}

/* One envelope: flags, big-endian length, payload. */
static int frame_envelope(sp_buf *b, unsigned flags, const char *p, size_t n)
{
    char *d;

    if (n > FRAME_DATA_MAX || (d = frame_reserve(b, 5 + n)) == NULL)
        return -1;
    d[0] = (char)flags;
    frame_be32(d + 1, (uint32_t)n);
    memcpy(d + 5, p, n);
    return frame_commit(b, 5 + n);
}

static int frame_connect_event(sp_buf *b, const char *id, const char *type,
                               const char *data, size_t dlen)
{
    size_t il, tl;

    if (frame_event_check(id, type, data, dlen, 1, &il, &tl) != 0)
        return -1;
    return frame_envelope(b, 0x00, data, dlen);
}

static int frame_connect_heartbeat(sp_buf *b)
{
    return buf_append(b, frame_connect_hb, sizeof frame_connect_hb);
}

static int frame_connect_error_end(sp_buf *b, const char *code,
                                   const char *message)
{
    sp_buf e = {0};
    int result = -1;

    /* Checked as one of ours, sent as Connect's code. */
    if (frame_code_ok(code) &&
        frame_error_doc(&e, frame_connect_code(code), message) == 0)
        result = frame_envelope(b, 0x02, e.data, e.len);
    buf_free(&e);
    return result;
}

static int frame_connect_trailer(sp_buf *b)
{
    return buf_append(b, frame_connect_end, sizeof frame_connect_end);
}

const sp_frame frame_connect = {
    .name = "connect",
    .content_type = "application/connect+json",
    .preamble = frame_none,
    .event = frame_connect_event,
    .heartbeat = frame_connect_heartbeat,
    .error_end = frame_connect_error_end,
    .end = frame_connect_trailer,
};

/* Connect's codes, and what the project's other codes mean in them. */
static const char *const frame_connect_codes[] = {
    "canceled",
    "unknown",
    "invalid_argument",
    "deadline_exceeded",
    "not_found",
    "already_exists",
    "permission_denied",
    "resource_exhausted",
    "failed_precondition",
    "aborted",
    "out_of_range",
    "unimplemented",
    "internal",
    "unavailable",
    "data_loss",
    "unauthenticated",
};
static const struct {
    const char *from, *to;
} frame_connect_map[] = {
    {"invalid_json", "invalid_argument"},
    {"method_not_allowed", "unimplemented"},
    {"conflict", "aborted"},
    {"payload_too_large", "resource_exhausted"},
    {"unsupported_media_type", "invalid_argument"},
    {"rate_limited", "resource_exhausted"},
    {"event_too_large", "resource_exhausted"},
    {"events_lost", "data_loss"},
    {"forbidden", "permission_denied"},
    {"paused", "failed_precondition"},
    {"insufficient_storage", "resource_exhausted"},
};

const char *frame_connect_code(const char *code)
{
    if (code == NULL)
        return "unknown";
    for (size_t i = 0; i < sizeof frame_connect_codes / sizeof(char *); i++) {
        if (strcmp(code, frame_connect_codes[i]) == 0)
            return frame_connect_codes[i];
    }
    for (size_t i = 0;
         i < sizeof frame_connect_map / sizeof frame_connect_map[0]; i++) {
        if (strcmp(code, frame_connect_map[i].from) == 0)
            return frame_connect_map[i].to;
    }
    return "unknown";
}

/* ----------------------------------------------------------- WebSocket */

size_t frame_ws_header(unsigned char out[FRAME_WS_HDR_MAX], unsigned opcode,
                       uint64_t len)
{
    out[0] = (unsigned char)(0x80 | (opcode & 0x0f)); /* FIN, no RSV bits */
    /* The mask bit stays clear: a server never masks (RFC 6455 §5.1). */
    if (len <= 125) {
        out[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
    return 10;
}

static int frame_ws_event(sp_buf *b, const char *id, const char *type,
                          const char *data, size_t dlen)
{
    unsigned char h[FRAME_WS_HDR_MAX];
    size_t il, tl, pl, hl;
    char *d;

    if (frame_event_check(id, type, data, dlen, 1, &il, &tl) != 0)
        return -1;
    pl = dlen;
    hl = frame_ws_header(h, FRAME_WS_TEXT, pl);
    if ((d = frame_reserve(b, hl + pl)) == NULL)
        return -1;
    d = frame_put(d, h, hl);
    frame_put(d, data, dlen);
    return frame_commit(b, hl + pl);
}

static int frame_ws_heartbeat(sp_buf *b)
{
    return buf_append(b, frame_ws_ping, sizeof frame_ws_ping);
}

/* A close frame carrying status (no reason), after extra bytes (a text
 * frame) when n > 0. */
static int frame_ws_close(sp_buf *b, unsigned status, const char *extra,
                          size_t n)
{
    unsigned char h[FRAME_WS_HDR_MAX];
    size_t hl = 0;
    char *d;

    if (n > 0)
        hl = frame_ws_header(h, FRAME_WS_TEXT, n);
    if ((d = frame_reserve(b, hl + n + 4)) == NULL)
        return -1;
    d = frame_put(d, h, hl);
    d = frame_put(d, extra, n);
    d[0] = (char)(0x80 | FRAME_WS_CLOSE);
    d[1] = 2;
    d[2] = (char)(status >> 8);
    d[3] = (char)status;
    return frame_commit(b, hl + n + 4);
}

static int frame_ws_error_end(sp_buf *b, const char *code, const char *message)
{
    sp_buf e;
    int result = -1;

    if (frame_error_doc(&e, code, message) == 0)
        result = frame_ws_close(b, FRAME_WS_FAILURE, e.data, e.len);
    buf_free(&e);
    return result;
}

static int frame_ws_end(sp_buf *b)
{
    return frame_ws_close(b, FRAME_WS_NORMAL, "", 0);
}

const sp_frame frame_websocket = {
    .name = "websocket",
    .content_type = NULL,
    .preamble = frame_none,
    .event = frame_ws_event,
    .heartbeat = frame_ws_heartbeat,
    .error_end = frame_ws_error_end,
    .end = frame_ws_end,
};

/* --------------------------------------------------------------- lookup */

const sp_frame *frame_find(const char *name)
{
    static const sp_frame *const all[] = {&frame_sse, &frame_ndjson,
                                          &frame_lines, &frame_connect,
                                          &frame_websocket};
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    }
    return NULL;
}
