/* sse_ws_hs.c: the relay's WebSocket connections (RFC 6455; sse_ws.c has
 * the overview), their start: the listening socket, accepted connections,
 * and the upgrade request, read whole (at most SSE_WS_HEAD_MAX bytes) and
 * checked: GET, Upgrade and Connection, version 13 (else 426), a
 * Sec-WebSocket-Key that is the base64 of 16 bytes, the Origin (absent,
 * FRONTEND_URL, or this host's own: else 403), the route (/, /ws,
 * /terminal: else 404), a clientId that is an id (else 400), and a
 * credential when one is sent (X-API-Key, Authorization: Bearer, the
 * cookie sp_token, ?access_token=; malformed: 401). Refusals are plain
 * HTTP answers with the JSON error envelope; acceptance is the 101 with
 * Sec-WebSocket-Accept, sent once the credential is checked (or at once,
 * when the first message is to bring it). */
#include "sse_ws.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_log.h"
#include "sp_status.h"
#include "sp_utf8.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SSE_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void sse_ws_accept(int lfd, long long now_ms)
{
    for (int i = 0; i < 256; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        sse_client *cl;
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        cl = sse_client_new(fd, now_ms);
        if (cl != NULL)
            cl->ws = calloc(1, sizeof *cl->ws);
        if (cl != NULL && cl->ws == NULL)
            sse_client_close(cl);
        else if (cl == NULL)
            close(fd);
        else {
            buf_init(&cl->ws->msg, SSE_WS_MSG_MAX);
            cl->ws->bucket = SSE_WS_BURST;
            cl->ws->bucket_ms = now_ms;
        }
    }
}

void sse_ws_free(sse_client *cl)
{
    sse_ws *ws = cl->ws;

    if (ws == NULL)
        return;
    sse_ws_gone(cl); /* a terminal's end is scheduled (sse_ws_msg.c) */
    if (ws->cred != NULL) {
        explicit_bzero(ws->cred, strlen(ws->cred));
        free(ws->cred);
    }
    buf_free(&ws->msg);
    free(ws->in);
    free(ws);
    cl->ws = NULL;
}

void sse_ws_refuse(sse_client *cl, int status, const char *code,
                   const char *message, const char *extra)
{
    char body[512], buf[1024];
    int bl = snprintf(body, sizeof body,
                      "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
                      code, message);
    int n =
        snprintf(buf, sizeof buf,
                 "HTTP/1.1 %d %s\r\nContent-Type: application/json; "
                 "charset=utf-8\r\nContent-Length: %d\r\n%sConnection: "
                 "close\r\n\r\n%s",
                 status, sp_http_reason(status), bl, extra ? extra : "", body);
    if (n > 0 && (size_t)n < sizeof buf)
        sse_client_push_bytes(cl, buf, (size_t)n, 1);
    sse_client_finish(cl);
}

/* Value of header name in the request head into out; 1, or 0 if absent
 * (or too long). Names compare without case, at the start of a line. */
static int sse_ws_header(const char *head, const char *name, char *out,
                         size_t outlen)
{
    size_t nl = strlen(name);

    for (const char *p = strstr(head, "\r\n"); p != NULL;
         p = strstr(p + 2, "\r\n")) {
        const char *v = p + 2, *end;
        size_t vl;
        if (strncasecmp(v, name, nl) != 0 || v[nl] != ':')
            continue;
        v += nl + 1;
        v += strspn(v, " \t");
        end = strstr(v, "\r\n");
        vl = end != NULL ? (size_t)(end - v) : strlen(v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (vl >= outlen)
            return 0;
        memcpy(out, v, vl);
        out[vl] = '\0';
        return 1;
    }
    return 0;
}

/* 1 if the comma-separated list v holds tok (without case). */
static int sse_ws_has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);
    for (const char *p = v; *p != '\0';) {
        size_t n;
        p += strspn(p, " \t,");
        n = strcspn(p, " \t,");
        if (n == tl && strncasecmp(p, tok, tl) == 0)
            return 1;
        p += n;
    }
    return 0;
}

/* Sec-WebSocket-Accept of key into out (29 bytes): 0, or -1 if key is
 * not the base64 of 16 bytes. */
static int sse_ws_accept_of(const char *key, char *out)
{
    unsigned char raw[32], md[EVP_MAX_MD_SIZE];
    char cat[64];
    unsigned int mdlen = 0;

    if (strlen(key) != 24 ||
        EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18 ||
        key[22] != '=' || key[23] != '=')
        return -1;
    snprintf(cat, sizeof cat, "%s%s", key, SSE_WS_GUID);
    if (EVP_Digest(cat, strlen(cat), md, &mdlen, EVP_sha1(), NULL) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    return 0;
}

/* The Origin header, when there is one, is FRONTEND_URL or this host. */
static int sse_ws_origin_ok(const char *head)
{
    char origin[1100], host[512], self[600];
    const char *front = cfg_str(CFG_FRONTEND_URL);

    if (!sse_ws_header(head, "Origin", origin, sizeof origin))
        return 1; /* not a browser: the credential alone decides */
    if (front != NULL && front[0] != '\0' && strcmp(origin, front) == 0)
        return 1;
    if (!sse_ws_header(head, "Host", host, sizeof host))
        return 0;
    snprintf(self, sizeof self, "http://%s", host);
    if (strcmp(origin, self) == 0)
        return 1;
    snprintf(self, sizeof self, "https://%s", host);
    return strcmp(origin, self) == 0;
}

/* The credential of the upgrade request, as for SSE: X-API-Key, a Bearer
 * token, the cookie sp_token, ?access_token=. None is fine (the first
 * message may bring it); a malformed one is -1. */
static int sse_ws_credential(sse_ws *ws, const char *head, const char *query)
{
    char v[4096];
    const char *c;

    if (sse_ws_header(head, "X-API-Key", v, sizeof v)) {
        ws->cred = strdup(v);
    } else if (sse_ws_header(head, "Authorization", v, sizeof v)) {
        if (strncasecmp(v, "Bearer ", 7) != 0)
            return -1;
        ws->cred = strdup(v + 7 + strspn(v + 7, " "));
        ws->cred_bearer = 1;
    } else if (sse_ws_header(head, "Cookie", v, sizeof v) &&
               (c = strstr(v, "sp_token=")) != NULL &&
               (c == v || c[-1] == ' ' || c[-1] == ';')) {
        c += 9;
        ws->cred = strndup(c, strcspn(c, "; "));
        ws->cred_bearer = 1;
    } else if (sse_query(query, "access_token", v, sizeof v) == 1) {
        ws->cred = strdup(v);
        ws->cred_bearer = 1;
    }
    explicit_bzero(v, sizeof v);
    return ws->cred != NULL && ws->cred[0] == '\0' ? -1 : 0;
}

/* Route, clientId, terminalId, window size from the request target. 0,
 * or -1 after the refusal. */
static int sse_ws_target(sse_client *cl, const char *target, char *query)
{
    sse_ws *ws = cl->ws;
    const char *q = strchr(target, '?');
    size_t pl = q != NULL ? (size_t)(q - target) : strlen(target);
    char n[16];

    snprintf(query, SSE_WS_HEAD_MAX, "%s", q != NULL ? q + 1 : "");
    if ((pl == 1 && target[0] == '/') ||
        (pl == 3 && !strncmp(target, "/ws", 3)))
        ws->mode = SSE_WS_CLIENT;
    else if (pl == 9 && strncmp(target, "/terminal", 9) == 0)
        ws->mode = SSE_WS_TERMINAL;
    else {
        sse_ws_refuse(cl, 404, "not_found", "no such route", NULL);
        return -1;
    }
    ws->cols = sse_query(query, "cols", n, sizeof n) == 1 ? atoi(n) : 80;
    ws->rows = sse_query(query, "rows", n, sizeof n) == 1 ? atoi(n) : 24;
    if (ws->mode == SSE_WS_CLIENT &&
        sse_query(query, "clientId", ws->client_id, sizeof ws->client_id) ==
            1 &&
        !id_valid(ws->client_id)) {
        sse_ws_refuse(cl, 400, "invalid_argument",
                      "clientId must match [A-Za-z0-9_-]{1,64}", NULL);
        return -1;
    }
    if (ws->mode == SSE_WS_TERMINAL &&
        sse_query(query, "terminalId", ws->terminal, sizeof ws->terminal) ==
            1 &&
        !id_valid_typed(ws->terminal, "trm_")) {
        sse_ws_refuse(cl, 404, "not_found", "no such terminal", NULL);
        return -1;
    }
    return 0;
}

/* The upgrade request in head (NUL-terminated): checked, then begun. */
void sse_ws_head(sse_client *cl, char *head)
{
    sse_ws *ws = cl->ws;
    char target[2048], v[256], *query = malloc(SSE_WS_HEAD_MAX);

    if (query == NULL || sscanf(head, "GET %2047s HTTP/1.1\r", target) != 1) {
        sse_ws_refuse(cl, query ? 405 : 500,
                      query ? "method_not_allowed" : "internal",
                      "a WebSocket starts with GET", "Allow: GET\r\n");
        goto out;
    }
    if (!sse_ws_header(head, "Upgrade", v, sizeof v) ||
        !sse_ws_has_token(v, "websocket") ||
        !sse_ws_header(head, "Connection", v, sizeof v) ||
        !sse_ws_has_token(v, "upgrade") ||
        !sse_ws_header(head, "Sec-WebSocket-Key", v, sizeof v) ||
        sse_ws_accept_of(v, ws->accept) != 0) {
        sse_ws_refuse(cl, 400, "invalid_argument",
                      "not a WebSocket upgrade request", NULL);
        goto out;
    }
    if (!sse_ws_header(head, "Sec-WebSocket-Version", v, sizeof v) ||
        strcmp(v, "13") != 0) {
        sse_ws_refuse(cl, 426, "invalid_argument", "WebSocket version 13",
                      "Sec-WebSocket-Version: 13\r\n");
        goto out;
    }
    if (!sse_ws_origin_ok(head)) {
        sse_ws_refuse(cl, 403, "forbidden", "origin not allowed", NULL);
        goto out;
    }
    if (sse_ws_target(cl, target, query) != 0)
        goto out;
    if (sse_ws_credential(ws, head, query) != 0) {
        sse_ws_refuse(cl, 401, "unauthenticated",
                      "missing or invalid credentials", NULL);
        goto out;
    }
    if (!sse_ws_header(head, "X-Real-IP", ws->remote, sizeof ws->remote))
        snprintf(ws->remote, sizeof ws->remote, "unknown");
    sse_ws_begin(cl);
out:
    if (query != NULL)
        explicit_bzero(query, SSE_WS_HEAD_MAX);
    free(query);
}

int sse_ws_upgrade(sse_client *cl)
{
    char buf[256];
    int n;

    if (cl->ws->upgraded)
        return 0;
    n = snprintf(buf, sizeof buf,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                 cl->ws->accept);
    cl->ws->upgraded = 1;
    return sse_client_push_bytes(cl, buf, (size_t)n, 1);
}
