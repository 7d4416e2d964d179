/* sse_ws.c: the relay's WebSocket connections (RFC 6455), the transport
 * half: nginx proxies upgrade requests of /, /ws and /terminal to the
 * relay's second socket (state/run/sp-sse-ws.sock); sse_ws_hs.c reads and
 * answers the upgrade request; here client frames are read: masked (else 1002),
 * no RSV bits, control frames short and whole, messages of at most
 * SSE_WS_MSG_MAX bytes whether in one frame or fragmented (else 1009),
 * text only (binary 1003) and valid UTF-8 (else 1007), at most SSE_WS_RATE
 * messages a second after a burst of SSE_WS_BURST (else 1008). Pings are
 * answered with pongs, a close with a close. Server messages are text
 * frames queued on the client's bounded queue (sse_client.c): a client
 * that cannot keep up falls back to reading at its own pace and one that
 * takes nothing for a minute is dropped, as for SSE. What the messages
 * mean is sse_ws_msg.c's. Credentials (header, cookie, query or the first
 * message) are kept only in memory and never logged. */
#include "sse_ws.h"
#include "sp_log.h"
#include "sp_utf8.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SSE_WS_READ 16384

void sse_ws_send(sse_client *cl, const char *json)
{
    unsigned char h[FRAME_WS_HDR_MAX];
    size_t n = strlen(json), hl = frame_ws_header(h, FRAME_WS_TEXT, n);
    sse_ev *ev = sse_ev_new(SSE_EV_STDOUT, hl + n);

    if (ev == NULL || cl->state == SSE_CL_CLOSING) {
        sse_ev_unref(ev);
        return;
    }
    memcpy(ev->data, h, hl);
    memcpy(ev->data + hl, json, n);
    /* A client that cannot take a message of its own is ended (not
     * freed here: the caller may still hold it). */
    if (sse_client_push(cl, ev) != 0)
        sse_client_finish(cl);
    sse_ev_unref(ev);
}

void sse_ws_error(sse_client *cl, const char *code, const char *message)
{
    sp_buf b;

    buf_init(&b, 4096);
    if (buf_printf(&b, "{\"type\":\"error\",\"code\":\"%s\",\"message\":",
                   code) == 0 &&
        utf8_json_string((const unsigned char *)message, strlen(message), &b) ==
            0 &&
        buf_puts(&b, "}") == 0)
        sse_ws_send(cl, b.data);
    buf_free(&b);
}

/* A control frame (opcode, payload of at most 125 bytes) to cl, raw: it
 * gets through a full queue. */
static void sse_ws_control(sse_client *cl, unsigned op, const void *p, size_t n)
{
    unsigned char f[2 + 125];

    f[0] = (unsigned char)(0x80 | op);
    f[1] = (unsigned char)n;
    if (n > 0)
        memcpy(f + 2, p, n);
    sse_client_push_bytes(cl, f, 2 + n, 1);
}

void sse_ws_close(sse_client *cl, unsigned code, const char *reason)
{
    unsigned char p[125];
    size_t rl = reason != NULL ? strlen(reason) : 0;

    if (cl->state == SSE_CL_CLOSING)
        return;
    if (!cl->ws->upgraded) {
        sse_client_finish(cl);
        return;
    }
    if (rl > sizeof p - 2)
        rl = sizeof p - 2;
    p[0] = (unsigned char)(code >> 8);
    p[1] = (unsigned char)code;
    if (rl > 0)
        memcpy(p + 2, reason, rl);
    sse_ws_control(cl, FRAME_WS_CLOSE, p, 2 + rl);
    sse_client_finish(cl);
}

/* One message may go now (token bucket); else the client is closed. */
static int sse_ws_rate_ok(sse_client *cl, long long now_ms)
{
    sse_ws *ws = cl->ws;

    ws->bucket += (double)(now_ms - ws->bucket_ms) * SSE_WS_RATE / 1000.0;
    ws->bucket_ms = now_ms;
    if (ws->bucket > SSE_WS_BURST)
        ws->bucket = SSE_WS_BURST;
    if (ws->bucket < 1) {
        sse_ws_close(cl, SSE_WS_POLICY, "too many messages");
        return 0;
    }
    ws->bucket -= 1;
    return 1;
}

/* A whole frame's payload (unmasked): control frames answered, data
 * frames put together into messages. 0, or -1 when cl was closed. */
static int sse_ws_payload(sse_client *cl, unsigned op, int fin,
                          unsigned char *p, size_t n, long long now_ms)
{
    sse_ws *ws = cl->ws;

    if (op == FRAME_WS_PING) {
        sse_ws_control(cl, 0xA, p, n);
        return sse_ws_rate_ok(cl, now_ms) ? 0 : -1;
    }
    if (op == 0xA)
        return 0; /* a pong */
    if (op == FRAME_WS_CLOSE) {
        unsigned code = n >= 2 ? (unsigned)p[0] << 8 | p[1] : SSE_WS_NORMAL;
        sse_ws_close(
            cl, code >= 1000 && code < 5000 ? SSE_WS_NORMAL : SSE_WS_PROTOCOL,
            NULL);
        return -1;
    }
    if (op == 0x2 || (op == 0 && ws->msg_op == 0x2)) {
        sse_ws_close(cl, SSE_WS_UNSUPPORTED, "text messages only");
        return -1;
    }
    if ((op == 0 && ws->msg_op == 0) || (op == FRAME_WS_TEXT && ws->msg_op)) {
        sse_ws_close(cl, SSE_WS_PROTOCOL, "bad fragmentation");
        return -1;
    }
    if (buf_append(&ws->msg, p, n) != 0) {
        sse_ws_close(cl, SSE_WS_TOO_BIG, "message too large");
        return -1;
    }
    ws->msg_op = fin ? 0 : FRAME_WS_TEXT;
    if (!fin)
        return 0;
    if (!utf8_valid((const unsigned char *)ws->msg.data, ws->msg.len)) {
        sse_ws_close(cl, SSE_WS_BAD_DATA, "not UTF-8");
        return -1;
    }
    if (!sse_ws_rate_ok(cl, now_ms))
        return -1;
    sse_ws_message(cl, ws->msg.data != NULL ? ws->msg.data : "", ws->msg.len);
    buf_reset(&ws->msg);
    return 0;
}

/* One frame from the start of in (n bytes): its length, 0 if it is not
 * all there yet, -1 when cl was closed. */
static long sse_ws_frame(sse_client *cl, unsigned char *in, size_t n,
                         long long now_ms)
{
    uint64_t len;
    size_t hl = 2;
    unsigned op;

    if (n < 2)
        return 0;
    op = in[0] & 0x0f;
    len = in[1] & 0x7f;
    if ((in[0] & 0x70) != 0 || !(in[1] & 0x80) || (op > 2 && op < 8) ||
        op > 10 || (op >= 8 && (len > 125 || !(in[0] & 0x80)))) {
        sse_ws_close(cl, SSE_WS_PROTOCOL,
                     !(in[1] & 0x80) ? "frames must be masked" : "bad frame");
        return -1;
    }
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)in[2] << 8 | in[3];
        hl = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | in[2 + i];
        hl = 10;
    }
    if (len > SSE_WS_MSG_MAX) {
        sse_ws_close(cl, SSE_WS_TOO_BIG, "frame too large");
        return -1;
    }
    if (n < hl + 4 + len)
        return 0;
    for (uint64_t i = 0; i < len; i++)
        in[hl + 4 + i] ^= in[hl + (i & 3)];
    if (sse_ws_payload(cl, op, in[0] & 0x80, in + hl + 4, (size_t)len,
                       now_ms) != 0)
        return -1;
    return (long)(hl + 4 + len);
}

/* Parse what is buffered: the upgrade request, then frames. */
static void sse_ws_parse(sse_client *cl, long long now_ms)
{
    sse_ws *ws = cl->ws;
    size_t off = 0;

    if (!ws->upgraded && !ws->opening && cl->state == SSE_CL_READING) {
        char *end = memmem(ws->in, ws->in_len, "\r\n\r\n", 4);
        if (end == NULL) {
            if (ws->in_len >= SSE_WS_HEAD_MAX)
                sse_ws_refuse(cl, 431, "invalid_argument",
                              "request header too large", NULL);
            return;
        }
        end[2] = '\0';
        off = (size_t)(end + 4 - (char *)ws->in);
        sse_ws_head(cl, (char *)ws->in);
        if (cl->state == SSE_CL_CLOSING || cl->ws == NULL)
            return;
    }
    while (ws->upgraded && off < ws->in_len && cl->state != SSE_CL_CLOSING) {
        long used = sse_ws_frame(cl, ws->in + off, ws->in_len - off, now_ms);
        if (used <= 0) {
            if (used < 0)
                return;
            break;
        }
        off += (size_t)used;
    }
    memmove(ws->in, ws->in + off, ws->in_len - off);
    ws->in_len -= off;
    if (ws->in_len == 0) {
        /* Idle connections hold no input buffer (thousands of them). */
        free(ws->in);
        ws->in = NULL;
        ws->in_cap = 0;
    }
}

/* Room for one more read in cl's input buffer, which grows (to a whole
 * frame at most) as a frame needs it. 0 or -1. */
static int sse_ws_room(sse_ws *ws)
{
    size_t want = ws->in_len + SSE_WS_READ, cap = SSE_WS_READ;
    unsigned char *p;

    while (cap < want && cap < SSE_WS_MSG_MAX + 14)
        cap *= 2;
    if (cap > SSE_WS_MSG_MAX + 14)
        cap = SSE_WS_MSG_MAX + 14;
    if (ws->in != NULL && cap <= ws->in_cap)
        return 0;
    p = realloc(ws->in, cap);
    if (p == NULL)
        return -1;
    ws->in = p;
    ws->in_cap = cap;
    return 0;
}

void sse_ws_readable(sse_client *cl, long long now_ms)
{
    for (int i = 0; i < 8 && cl->ws != NULL && cl->state != SSE_CL_CLOSING;
         i++) {
        sse_ws *ws = cl->ws;
        ssize_t n;
        if (sse_ws_room(ws) != 0 || ws->in_len >= ws->in_cap) {
            sse_client_close(cl);
            return;
        }
        n = read(cl->fd, ws->in + ws->in_len, ws->in_cap - ws->in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            sse_client_close(cl);
            return;
        }
        ws->in_len += (size_t)n;
        sse_ws_parse(cl, now_ms);
    }
}
