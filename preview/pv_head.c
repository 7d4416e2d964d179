/* pv_head.c: the request head nginx sends sp-preview (families/
 * preview.conf), parsed and rewritten for the sandbox's server, and the
 * few answers sp-preview makes itself (errors, the cookie redirect).
 *
 * nginx sends "METHOD <the client's URI> HTTP/1.1", then the headers it
 * sets (Host, Connection, Upgrade, X-Sp-Sandbox-Id, X-Sp-Sandbox-Port,
 * X-Forwarded-*; a client's header of the same name is never passed),
 * then the client's other headers. What the sandbox gets is the same
 * without: the token parameter of the query, the token cookie, the
 * traffic-token headers, X-API-Key, nginx's X-Sp-* and the E2B selector
 * headers; Authorization only when it was not a credential of ours. */
#include "pv.h"
#include "sp_utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Headers the sandbox never sees that sp-preview has no use for (the
 * E2B selectors: nginx read them); the ones it reads (pv_header) are
 * taken out there. Compared without case. */
static const char *const pv_dropped[] = {"E2b-Sandbox-Id", "E2b-Sandbox-Port",
                                         NULL};

/* Copy the value [v, v+n) into out (size outlen) if it fits and is not
 * set yet; -1 if it is a second one or too long. */
static int pv_take(char *out, size_t outlen, const char *v, size_t n)
{
    if (out[0] != '\0' || n >= outlen || n == 0)
        return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* The query of uri without its token parameters (the first one's value
 * into h->token) into h->uri. */
static int pv_uri(pv_head *h, const char *uri, size_t n)
{
    const char *q = memchr(uri, '?', n), *end = uri + n;
    size_t o, path_len;

    if (n >= sizeof h->uri)
        return -1;
    o = path_len = q ? (size_t)(q - uri) : n;
    memcpy(h->uri, uri, o);
    for (const char *p = q ? q + 1 : end; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t len = (size_t)((amp ? amp : end) - p);
        if (len >= 6 && memcmp(p, "token=", 6) == 0) {
            if (h->token[0] == '\0' &&
                pv_take(h->token, sizeof h->token, p + 6, len - 6) == 0)
                h->token_in_query = 1;
        } else if (len > 0) {
            h->uri[o] = o == path_len ? '?' : '&';
            o++;
            memcpy(h->uri + o, p, len);
            o += len;
        }
        p += len + 1;
    }
    h->uri[o] = '\0';
    return 0;
}

/* The Cookie header's pairs other than the token cookie (whose value goes
 * to h->token unless a token was presented otherwise) into h->out. */
static void pv_cookie(pv_head *h, const char *v, size_t n)
{
    const char *end = v + n;
    int first = 1;

    for (const char *p = v; p < end;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        size_t len;
        while (p < end && *p == ' ')
            p++;
        len = (size_t)((semi ? semi : end) - p);
        if (len > sizeof PV_COOKIE &&
            memcmp(p, PV_COOKIE "=", sizeof PV_COOKIE) == 0) {
            if (h->token[0] == '\0')
                pv_take(h->token, sizeof h->token, p + sizeof PV_COOKIE,
                        len - sizeof PV_COOKIE);
        } else if (len > 0) {
            buf_puts(&h->out, first ? "Cookie: " : "; ");
            buf_append(&h->out, p, len);
            first = 0;
        }
        p += len + 1;
    }
    if (!first)
        buf_puts(&h->out, "\r\n");
}

/* One header line name: value (value trimmed) into h. -1 on a bad one. */
static int pv_header(pv_head *h, const char *name, size_t nlen, const char *v,
                     size_t vlen)
{
    char port[8] = "";
    int i;

#define PV_IS(s) (nlen == sizeof(s) - 1 && strncasecmp(name, s, nlen) == 0)
    if (PV_IS("X-Sp-Sandbox-Id"))
        return pv_take(h->sandbox, sizeof h->sandbox, v, vlen) == 0 &&
                       id_valid(h->sandbox)
                   ? 0
                   : -1;
    if (PV_IS("X-Sp-Sandbox-Port")) {
        if (h->port != 0 || pv_take(port, sizeof port, v, vlen) != 0)
            return -1;
        h->port = (unsigned)strtoul(port, NULL, 10);
        return h->port > 0 && h->port < 65536 ? 0 : -1;
    }
    if (PV_IS("X-Sandpipe-Traffic-Token") || PV_IS("E2B-Traffic-Access-Token"))
        return h->token[0] ? 0 : pv_take(h->token, sizeof h->token, v, vlen);
    if (PV_IS("X-API-Key"))
        return pv_take(h->api_key, sizeof h->api_key, v, vlen);
    if (PV_IS("Authorization"))
        return pv_take(h->authz, sizeof h->authz, v, vlen);
    if (PV_IS("Cookie")) {
        pv_cookie(h, v, vlen);
        return 0;
    }
    if (PV_IS("Upgrade"))
        h->upgrade = 1;
    if (PV_IS("X-Forwarded-Proto") && vlen == 5 && memcmp(v, "https", 5) == 0)
        h->https = 1;
#undef PV_IS
    for (i = 0; pv_dropped[i] != NULL; i++)
        if (strlen(pv_dropped[i]) == nlen &&
            strncasecmp(name, pv_dropped[i], nlen) == 0)
            return 0;
    buf_append(&h->out, name, nlen);
    buf_puts(&h->out, ": ");
    buf_append(&h->out, v, vlen);
    buf_puts(&h->out, "\r\n");
    return 0;
}

/* The request line "METHOD URI HTTP/1.x" of [p, p+n). */
static int pv_request_line(pv_head *h, const char *p, size_t n)
{
    const char *sp1 = memchr(p, ' ', n), *sp2;

    if (sp1 == NULL || (size_t)(sp1 - p) >= sizeof h->method)
        return -1;
    sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - p));
    if (sp2 == NULL || sp2[1] != 'H' || sp1[1] != '/')
        return -1;
    memcpy(h->method, p, (size_t)(sp1 - p));
    h->method[sp1 - p] = '\0';
    if (pv_uri(h, sp1 + 1, (size_t)(sp2 - sp1 - 1)) != 0)
        return -1;
    buf_printf(&h->out, "%s %s %.*s\r\n", h->method, h->uri,
               (int)(n - (size_t)(sp2 + 1 - p)), sp2 + 1);
    return 0;
}

sp_status pv_head_parse(const char *head, size_t len, pv_head *h, char *msg,
                        size_t msglen)
{
    const char *p = head, *end = head + len;
    int line = 0;

    memset(h, 0, sizeof *h);
    buf_init_sticky(&h->out, PV_HEAD_MAX + 1024);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p)), *colon, *v;
        size_t n = (size_t)((eol ? eol : end) - p), vlen;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break; /* the blank line */
        if (line++ == 0) {
            if (pv_request_line(h, p, n) != 0)
                goto bad;
        } else {
            if ((colon = memchr(p, ':', n)) == NULL || colon == p)
                goto bad;
            for (v = colon + 1; v < p + n && (*v == ' ' || *v == '\t'); v++)
                ;
            vlen = (size_t)(p + n - v);
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (pv_header(h, p, (size_t)(colon - p), v, vlen) != 0)
                goto bad;
        }
        p = eol ? eol + 1 : end;
    }
    if (h->sandbox[0] == '\0' || h->port == 0 || buf_failed(&h->out))
        goto bad;
    return SP_OK;
bad:
    snprintf(msg, msglen, "malformed request head");
    return SP_E_INVALID_ARGUMENT;
}

int pv_head_finish(pv_head *h, int strip_authz)
{
    if (!strip_authz && h->authz[0] != '\0')
        buf_printf(&h->out, "Authorization: %s\r\n", h->authz);
    buf_puts(&h->out, "\r\n");
    return buf_failed(&h->out) ? -1 : 0;
}

void pv_answer_error(sp_buf *out, sp_status st, const char *msg)
{
    sp_buf body;

    /* The message (the helper's words among them) as a JSON string, and
     * the Content-Length of exactly what is sent. */
    buf_init_sticky(&body, 1024);
    buf_printf(&body,
               "{\"error\":{\"code\":\"%s\",\"message\":", sp_status_code(st));
    utf8_json_string((const unsigned char *)msg, strlen(msg), &body);
    buf_puts(&body, "}}\n");
    if (buf_failed(&body))
        buf_reset(&body);
    buf_printf(out,
               "HTTP/1.1 %d %s\r\nContent-Type: application/json; "
               "charset=utf-8\r\nContent-Length: %zu\r\nCache-Control: "
               "no-store\r\nConnection: close\r\n%s\r\n",
               sp_status_http(st), sp_http_reason(sp_status_http(st)), body.len,
               st == SP_E_UNAVAILABLE ? "Retry-After: 1\r\n" : "");
    buf_append(out, body.data, body.len);
    buf_free(&body);
}

void pv_answer_cookie(sp_buf *out, const pv_head *h)
{
    /* A path that starts "//" or "/\" is another host to a browser
     * ("//evil.example/"): "/." before it keeps the redirect on this one. */
    const char *here = h->uri[1] == '/' || h->uri[1] == '\\' ? "/." : "";

    /* Host-only (no Domain): the cookie goes back to this sandbox's port
     * only; HttpOnly: no script of the page reads it. */
    buf_printf(out,
               "HTTP/1.1 302 Found\r\nLocation: %s%s\r\nSet-Cookie: %s=%s; "
               "Path=/; HttpOnly; SameSite=Lax%s\r\nCache-Control: "
               "no-store\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
               here, h->uri, PV_COOKIE, h->token, h->https ? "; Secure" : "");
}
