/* handlers/envd.c: the envd family (program sp-envd): E2B's in-sandbox
 * daemon served from outside the sandbox (docs/DESIGN.md §7, "Protocols
 * are adapters"). The route table, the data plane's authorization (no API
 * key: the sandbox's own envd token, sp_auth.h), the bodies of Connect RPC
 * calls (JSON codec: a unary call's JSON object, a streaming call's one
 * envelope), GET /health and the hand-over of streams to the relay.
 * process.Process is envd_process.c, /files envd_files.c; every operation
 * is a native one of the sandbox's helper (sp_helper.h). */
#include "envd.h"
#include "e2b.h"
#include "sp_auth.h"
#include "sp_b64.h"
#include "sp_config.h"
#include "sp_keys.h"
#include "sp_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ENVD_BODY_MAX (1024 * 1024)
#define ENVD_ENV_HDR  5 /* a Connect envelope's flag and length */

int envd_user_ok(const char *s, size_t n)
{
    if (n == 0 || n >= ENVD_USER_MAX ||
        !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '-'))
            return 0;
    }
    return 1;
}

/* Basic auth "<user>:" (E2B sends no password) into c->user; a user
 * that is not a plain account name is refused. 0, or -1 after the 400. */
static int envd_basic_user(http_req *r, envd_ctx *c)
{
    const char *h = http_header(r, "Authorization");
    const unsigned char *colon;
    unsigned char *dec;
    size_t n = 0;
    int ok;

    c->user[0] = '\0';
    if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
        return 0;
    dec = b64_decode(h + 6, strlen(h + 6), &n);
    if (dec != NULL && (colon = memchr(dec, ':', n)) != NULL)
        n = (size_t)(colon - dec);
    ok = dec != NULL && envd_user_ok((const char *)dec, n);
    if (ok) {
        memcpy(c->user, dec, n);
        c->user[n] = '\0';
    }
    free(dec);
    if (!ok) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "user",
                        "the user must be an account name");
        return -1;
    }
    return 0;
}

int envd_load(http_req *r, envd_ctx *c, const char *id, int how)
{
    char k[RDS_KEY_MAX];
    redisReply *h;
    int result = -1;

    key_of(k, sizeof k, KEY_SBX, id);
    h = rds_cmd("HMGET %s owner helper template", k);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements != 3) {
        http_send_error(r, SP_E_UNAVAILABLE, NULL, "state store unavailable");
    } else if (h->element[0]->type != REDIS_REPLY_STRING ||
               h->element[1]->type != REDIS_REPLY_STRING ||
               !id_valid(h->element[0]->str) || !id_valid(h->element[1]->str)) {
        static const char gone[] = "{\"code\":502,\"message\":\"sandbox not "
                                   "found\"}";
        if (how == ENVD_HEALTH)
            http_send_raw(r, 502, "application/json; charset=utf-8", gone,
                          sizeof gone - 1);
        else
            http_send_error(r, SP_E_NOT_FOUND, NULL, "sandbox not found");
    } else {
        snprintf(c->sbx, sizeof c->sbx, "%s", id);
        snprintf(c->helper, sizeof c->helper, "%s", h->element[1]->str);
        snprintf(r->auth.sub, sizeof r->auth.sub, "%s", h->element[0]->str);
        c->host_view = h->element[2]->type != REDIS_REPLY_STRING ||
                       strcmp(h->element[2]->str, "host") == 0;
        r->params[0] = c->sbx;
        result = envd_basic_user(r, c);
    }
    freeReplyObject(h);
    return result;
}

int envd_begin(http_req *r, envd_ctx *c, int how)
{
    const char *id = FCGX_GetParam("SP_SANDBOX_ID", r->fcgi.envp);
    const char *tok = http_header(r, "X-Access-Token");

    r->errors = how == ENVD_RPC      ? HTTP_ERRORS_CONNECT
                : how == ENVD_STREAM ? HTTP_ERRORS_CONNECT_STREAM
                                     : HTTP_ERRORS_ENVELOPE;
    memset(c, 0, sizeof *c);
    /* The token first: without it nothing says whether a sandbox exists. */
    if (id == NULL || !id_valid_typed(id, "sbx_") || tok == NULL ||
        !auth_sandbox_token_ok(AUTH_SBX_ENVD, id, tok)) {
        http_send_error(r, SP_E_UNAUTHENTICATED, NULL,
                        "missing or invalid X-Access-Token");
        return -1;
    }
    return envd_load(r, c, id, how);
}

int envd_ctype_is(http_req *r, const char *type)
{
    const char *ct = http_header(r, "Content-Type");
    size_t n = strlen(type);

    return ct != NULL && strncasecmp(ct, type, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Parse n bytes of p as the JSON object of a message. */
static cJSON *envd_message(http_req *r, const char *p, size_t n)
{
    cJSON *o = memchr(p, '\0', n) == NULL ? cJSON_ParseWithLength(p, n) : NULL;

    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        http_send_error(r, SP_E_INVALID_JSON, NULL,
                        "the message must be a JSON object");
        return NULL;
    }
    return o;
}

/* Read r's body, of Content-Type ctype, at most ENVD_BODY_MAX bytes. 0,
 * or -1 after the 415 or 413. */
static int envd_body(http_req *r, const char *ctype)
{
    if (!envd_ctype_is(r, ctype)) {
        http_send_error(r, SP_E_UNSUPPORTED_MEDIA_TYPE, NULL,
                        "Content-Type must be %s", ctype);
        return -1;
    }
    if (http_read_body(r, ENVD_BODY_MAX) != SP_OK) {
        http_send_error(r, SP_E_PAYLOAD_TOO_LARGE, NULL,
                        "the message is larger than %d bytes", ENVD_BODY_MAX);
        return -1;
    }
    return 0;
}

cJSON *envd_unary(http_req *r)
{
    if (envd_body(r, "application/json") != 0)
        return NULL;
    if (r->body.len == 0)
        return cJSON_CreateObject(); /* proto3: every field default */
    return envd_message(r, r->body.data, r->body.len);
}

cJSON *envd_stream_request(http_req *r)
{
    const unsigned char *p;
    size_t len;

    if (envd_body(r, "application/connect+json") != 0)
        return NULL;
    p = (const unsigned char *)r->body.data;
    if (r->body.len < ENVD_ENV_HDR || p[0] != 0) {
        /* Flag 1 is a compressed message: no compression was offered. */
        http_send_error(r, SP_E_INVALID_ARGUMENT, NULL,
                        "the body must be one uncompressed Connect envelope");
        return NULL;
    }
    len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    if (len != r->body.len - ENVD_ENV_HDR) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, NULL,
                        "the envelope's length is not the body's");
        return NULL;
    }
    if (len == 0)
        return cJSON_CreateObject();
    return envd_message(r, r->body.data + ENVD_ENV_HDR, len);
}

int envd_path(http_req *r, const envd_ctx *c, const char *path, char *out,
              size_t outlen)
{
    int n;

    if (path == NULL || path[0] == '\0') {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "path", "path is required");
        return -1;
    }
    if (path[0] == '/')
        n = snprintf(out, outlen, "%s", path);
    else if (c->host_view)
        n = snprintf(out, outlen, "/workspace/%s", path);
    else if (strcmp(c->user, "root") == 0)
        n = snprintf(out, outlen, "/root/%s", path);
    else
        n = snprintf(out, outlen, "/home/%s/%s", c->user[0] ? c->user : "user",
                     path);
    if (n < 0 || (size_t)n >= outlen) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "path", "path is too long");
        return -1;
    }
    return 0;
}

void envd_send(http_req *r, const cJSON *o)
{
    if (o == NULL)
        http_send_raw(r, 200, "application/json", "{}", 2);
    else
        http_send_json(r, 200, o);
}

void envd_relay(http_req *r, const char *uri)
{
    http_add_header(r, "X-Accel-Redirect: %s", uri);
    http_send_raw(r, 200, "text/plain", "", 0);
}

/* GET /health: 204 while the sandbox lives; 502 once it has gone (the
 * SDK's isRunning() reads that as false). */
void envd_health(http_req *r)
{
    envd_ctx c;

    if (envd_begin(r, &c, ENVD_HEALTH) == 0)
        http_send_raw(r, 204, "application/json; charset=utf-8", "", 0);
}
