/* sp_http.c: FastCGI request handling shared by every handler (sp_http.h). */
#include "sp_http.h"
#include "sp_auth.h"
#include "sp_config.h"
#include "sp_frame.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_multipart.h"
#include "sp_pct.h"
#include "sp_redis.h"
#include "sp_utf8.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The HTTP statuses counted for /metrics; anything else counts as 500. */
static const int http_counted[] = {200, 201, 202, 204, 400, 401, 404,
                                   405, 409, 413, 415, 429, 500, 503};
#define HTTP_NCOUNTED (sizeof http_counted / sizeof http_counted[0])

static atomic_ulong http_counts[HTTP_NCOUNTED];
static const char *http_family = "unknown";
static const http_route *http_routes;
static size_t http_nroutes;
static int http_listen_fd = -1;

void http_count(int status)
{
    size_t i;
    for (i = 0; i < HTTP_NCOUNTED; i++) {
        if (http_counted[i] == status)
            break;
    }
    if (i == HTTP_NCOUNTED)
        i = HTTP_NCOUNTED - 2; /* 500 */
    atomic_fetch_add(&http_counts[i], 1);
}

const char *http_header(http_req *r, const char *name)
{
    char env[128] = "HTTP_";
    size_t i, n = strlen(name);

    if (n + 6 > sizeof env)
        return NULL;
    for (i = 0; i < n; i++)
        env[5 + i] =
            name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    env[5 + n] = '\0';
    if (strcmp(name, "Content-Type") == 0)
        return FCGX_GetParam("CONTENT_TYPE", r->fcgi.envp);
    return FCGX_GetParam(env, r->fcgi.envp);
}

int http_query(const http_req *r, const char *name, char *out, size_t outlen)
{
    const char *p = r->query;
    size_t nlen = strlen(name);

    while (*p) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : end;
            return pct_decode(v, (size_t)(end - v), 1, out, outlen) >= 0 ? 1
                                                                         : -1;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

sp_status http_read_body(http_req *r, size_t max)
{
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", r->fcgi.envp);
    char chunk[16384];
    int n;

    if (r->body_read)
        return SP_OK;
    if (cl != NULL && *cl != '\0') {
        char *end;
        unsigned long long len;
        errno = 0;
        len = strtoull(cl, &end, 10);
        if (*end != '\0' || errno != 0 || len > max)
            return SP_E_PAYLOAD_TOO_LARGE;
    }
    buf_init(&r->body, max);
    buf_append(&r->body, "", 0);
    while ((n = FCGX_GetStr(chunk, sizeof chunk, r->fcgi.in)) > 0) {
        if (buf_append(&r->body, chunk, (size_t)n) != 0)
            return SP_E_PAYLOAD_TOO_LARGE;
    }
    r->body_read = 1;
    return SP_OK;
}

static int http_is_json_type(const char *ct)
{
    size_t n = strlen("application/json");
    if (ct == NULL)
        return 0;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

cJSON *http_json_body(http_req *r, int allow_empty)
{
    sp_status st = http_read_body(r, (size_t)cfg_int(CFG_SP_BODY_MAX));
    const char *end = NULL;
    cJSON *root;

    if (st != SP_OK) {
        http_send_error(r, st, NULL, "request body is larger than %lld bytes",
                        cfg_int(CFG_SP_BODY_MAX));
        return NULL;
    }
    if (r->body.len == 0) {
        if (allow_empty)
            return cJSON_CreateObject();
        http_send_error(r, SP_E_INVALID_JSON, NULL, "request body is empty");
        return NULL;
    }
    if (!http_is_json_type(http_header(r, "Content-Type"))) {
        http_send_error(r, SP_E_UNSUPPORTED_MEDIA_TYPE, NULL,
                        "Content-Type must be application/json");
        return NULL;
    }
    if (memchr(r->body.data, '\0', r->body.len) != NULL) {
        http_send_error(r, SP_E_INVALID_JSON, NULL, "body contains NUL");
        return NULL;
    }
    root = cJSON_ParseWithOpts(r->body.data, &end, 1);
    if (root == NULL) {
        http_send_error(r, SP_E_INVALID_JSON, NULL, "body is not valid JSON");
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        http_send_error(r, SP_E_INVALID_JSON, NULL,
                        "body must be a JSON object");
        return NULL;
    }
    return root;
}

void http_add_header(http_req *r, const char *fmt, ...)
{
    size_t used = strlen(r->extra);
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(r->extra + used, sizeof r->extra - used, fmt, ap);
    va_end(ap);
    if (n < 0 || used + (size_t)n + 2 >= sizeof r->extra) {
        r->extra[used] = '\0'; /* drop a header that does not fit */
        return;
    }
    memcpy(r->extra + used + n, "\r\n", 3);
}

int http_send_head(http_req *r, int status, const char *ctype,
                   unsigned long long len)
{
    if (r->status != 0)
        return -1; /* one response per request */
    r->status = status;
    http_count(status);
    /* libfcgi's own FCGX_FPrintF knows no %zu: format here. */
    char head[HTTP_EXTRA_HEADERS + 256], clen[48] = "";
    if (len != HTTP_LEN_STREAM)
        snprintf(clen, sizeof clen, "Content-Length: %llu\r\n", len);
    int n = snprintf(head, sizeof head,
                     "Status: %d %s\r\nContent-Type: %s\r\n"
                     "%sCache-Control: no-store\r\n"
                     "%s\r\n",
                     status, sp_http_reason(status), ctype, clen, r->extra);
    if (n < 0 || (size_t)n >= sizeof head)
        return -1;
    return FCGX_PutStr(head, n, r->fcgi.out) == n ? 0 : -1;
}

void http_send_raw(http_req *r, int status, const char *ctype, const void *data,
                   size_t len)
{
    if (http_send_head(r, status, ctype, len) == 0 && len > 0)
        FCGX_PutStr(data, (int)len, r->fcgi.out);
}

void http_send_json(http_req *r, int status, const cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (s == NULL) {
        http_send_error(r, SP_E_INTERNAL, NULL, "out of memory");
        return;
    }
    http_send_raw(r, status, "application/json; charset=utf-8", s, strlen(s));
    free(s);
}

/* s as valid UTF-8 in out (room for 3 × len + 1): a message or field may
 * echo request input (a path, a name), and JSON is UTF-8, so every byte
 * that is not part of a valid sequence becomes U+FFFD. */
static void http_utf8(const char *s, char *out, size_t outlen)
{
    sp_buf b;

    buf_init(&b, outlen - 1);
    if (utf8_sanitize((const unsigned char *)s, strlen(s), &b) == 0 &&
        b.data != NULL)
        memcpy(out, b.data, b.len + 1);
    else
        snprintf(out, outlen, "%s", "(unprintable)");
    buf_free(&b);
}

/* The error body of r's shape (HTTP_ERRORS_*) for st, msg and fld (NULL:
 * none), both valid UTF-8 already; caller frees. */
static cJSON *http_error_doc(const http_req *r, sp_status st, const char *msg,
                             const char *fld)
{
    cJSON *root = cJSON_CreateObject(), *err;

    if (r->errors == HTTP_ERRORS_CONNECT) {
        cJSON_AddStringToObject(root, "code",
                                frame_connect_code(sp_status_code(st)));
        cJSON_AddStringToObject(root, "message", msg);
        return root;
    }
    err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "code", sp_status_code(st));
    cJSON_AddStringToObject(err, "message", msg);
    if (fld != NULL)
        cJSON_AddStringToObject(err, "field", fld);
    cJSON_AddNumberToObject(root, "code", sp_status_http(st));
    cJSON_AddStringToObject(root, "message", msg);
    return root;
}

/* A Connect stream that fails before its first message: 200 and the end
 * frame carrying the error (Connect's streaming errors are never an HTTP
 * status). */
static void http_send_stream_error(http_req *r, sp_status st, const char *msg)
{
    sp_buf b;

    buf_init(&b, 4096);
    if (frame_connect.error_end(&b, sp_status_code(st), msg) == 0)
        http_send_raw(r, 200, frame_connect.content_type, b.data, b.len);
    else
        http_send_raw(r, 500, "application/json; charset=utf-8", "{}", 2);
    buf_free(&b);
}

static void http_send_error_v(http_req *r, sp_status st, const char *field,
                              const char *rule, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

void http_send_error(http_req *r, sp_status st, const char *field,
                     const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    http_send_error_v(r, st, field, NULL, fmt, ap);
    va_end(ap);
}

void http_send_error_rule(http_req *r, sp_status st, const char *field,
                          const char *rule, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    http_send_error_v(r, st, field, rule, fmt, ap);
    va_end(ap);
}

static void http_send_error_v(http_req *r, sp_status st, const char *field,
                              const char *rule, const char *fmt, va_list ap)
{
    char raw[512], msg[3 * sizeof raw + 1], fld[3 * 64 + 1];
    cJSON *root, *err;
    char *s;
    int n;

    n = vsnprintf(raw, sizeof raw, fmt, ap);
    /* Cut short: never end inside a character. */
    if (n >= (int)sizeof raw)
        raw[utf8_cut((const unsigned char *)raw, strlen(raw))] = '\0';
    http_utf8(raw, msg, sizeof msg);
    if (st == SP_E_RATE_LIMITED || st == SP_E_UNAVAILABLE)
        http_add_header(r, "Retry-After: %d", st == SP_E_UNAVAILABLE ? 2 : 1);
    if (field != NULL) {
        char cut[64];
        snprintf(cut, sizeof cut, "%s", field);
        cut[utf8_cut((const unsigned char *)cut, strlen(cut))] = '\0';
        http_utf8(cut, fld, sizeof fld);
    }
    if (r->errors == HTTP_ERRORS_CONNECT_STREAM) {
        http_send_stream_error(r, st, msg);
        return;
    }
    root = http_error_doc(r, st, msg, field != NULL ? fld : NULL);
    err = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (rule != NULL && err != NULL)
        cJSON_AddStringToObject(err, "rule", rule); /* static, never input */
    s = cJSON_PrintUnformatted(root);
    if (s != NULL) {
        http_send_raw(r, sp_status_http(st), "application/json; charset=utf-8",
                      s, strlen(s));
    } else {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of "
            "memory\"},\"code\":500,\"message\":\"out of memory\"}";
        http_send_raw(r, 500, "application/json; charset=utf-8", oom,
                      sizeof oom - 1);
    }
    free(s);
    cJSON_Delete(root);
}

/* Split the path into segments; empty segments ("//") are dropped. */
static int http_split_path(http_req *r)
{
    const char *p = FCGX_GetParam("SP_PATH", r->fcgi.envp);
    char *save = NULL, *tok;

    if (p == NULL)
        p = FCGX_GetParam("DOCUMENT_URI", r->fcgi.envp);
    if (p == NULL || strlen(p) >= sizeof r->path)
        return -1;
    /* Routes are matched strictly: "/a//b" and "/a/b/" are not "/a/b", so
     * no spelling reaches a handler past a location-based nginx limit. */
    if (strstr(p, "//") != NULL || (strlen(p) > 1 && p[strlen(p) - 1] == '/'))
        return -1;
    strcpy(r->path, p);
    r->nsegs = 0;
    for (tok = strtok_r(r->path, "/", &save); tok != NULL;
         tok = strtok_r(NULL, "/", &save)) {
        if (r->nsegs == HTTP_MAX_SEGS)
            return -1;
        r->segs[r->nsegs++] = tok;
    }
    return 0;
}

/* 1 if the request path matches pattern, filling r->params. */
static int http_match(http_req *r, const char *pattern)
{
    char pat[256];
    char *save = NULL, *tok;
    int i = 0, np = 0;

    snprintf(pat, sizeof pat, "%s", pattern);
    for (tok = strtok_r(pat, "/", &save); tok != NULL;
         tok = strtok_r(NULL, "/", &save), i++) {
        if (i >= r->nsegs)
            return 0;
        if (strcmp(tok, "*") == 0) {
            if (np < HTTP_MAX_PARAMS)
                r->params[np++] = r->segs[i];
        } else if (strcmp(tok, r->segs[i]) != 0) {
            return 0;
        }
    }
    return i == r->nsegs;
}

int http_authenticate(http_req *r, int flags)
{
    sp_status st = auth_check(r, flags, &r->auth);

    if (st == SP_OK)
        return 0;
    if (st == SP_E_UNAUTHENTICATED)
        http_add_header(r, "WWW-Authenticate: Bearer");
    http_send_error(r, st, NULL, "%s",
                    st == SP_E_UNAUTHENTICATED
                        ? "missing or invalid credentials"
                        : "authentication backend unavailable");
    return -1;
}

void http_dispatch(http_req *r, const http_route *routes, size_t n)
{
    char allow[128] = "";
    int path_matched = 0;

    if (http_split_path(r) != 0) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "no such route");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!http_match(r, routes[i].pattern))
            continue;
        path_matched = 1;
        if (strcmp(routes[i].method, r->method) != 0) {
            if (strstr(allow, routes[i].method) == NULL &&
                strlen(allow) + strlen(routes[i].method) + 3 < sizeof allow) {
                if (allow[0] != '\0')
                    strcat(allow, ", ");
                strcat(allow, routes[i].method);
            }
            continue;
        }
        if (routes[i].auth && http_authenticate(r, routes[i].auth) != 0)
            return;
        routes[i].fn(r);
        if (r->status == 0)
            http_send_error(r, SP_E_INTERNAL, NULL, "no response");
        return;
    }
    if (path_matched) {
        http_add_header(r, "Allow: %s", allow);
        http_send_error(r, SP_E_METHOD_NOT_ALLOWED, NULL,
                        "method %s is not allowed here", r->method);
        return;
    }
    http_send_error(r, SP_E_NOT_FOUND, NULL, "no such route");
}

static void http_handle(http_req *r)
{
    r->method = FCGX_GetParam("REQUEST_METHOD", r->fcgi.envp);
    r->query = FCGX_GetParam("QUERY_STRING", r->fcgi.envp);
    if (r->method == NULL)
        r->method = "GET";
    if (r->query == NULL)
        r->query = "";
    r->status = 0;
    r->extra[0] = '\0';
    r->body_read = 0;
    r->errors = HTTP_ERRORS_ENVELOPE;
    buf_init(&r->body, 0);
    memset(&r->auth, 0, sizeof r->auth);
    memset(r->params, 0, sizeof r->params);
    http_dispatch(r, http_routes, http_nroutes);
    buf_free(&r->body);
}

static pthread_mutex_t http_accept_lock = PTHREAD_MUTEX_INITIALIZER;

static void *http_worker(void *arg)
{
    http_req *r = calloc(1, sizeof *r);
    (void)arg;
    if (r == NULL || FCGX_InitRequest(&r->fcgi, http_listen_fd, 0) != 0) {
        log_error("FCGX_InitRequest failed");
        free(r);
        return NULL;
    }
    for (;;) {
        int rc;
        pthread_mutex_lock(&http_accept_lock);
        rc = FCGX_Accept_r(&r->fcgi);
        pthread_mutex_unlock(&http_accept_lock);
        if (rc < 0) {
            log_warn("FCGX_Accept_r failed: %d", rc);
            continue;
        }
        http_handle(r);
        FCGX_Finish_r(&r->fcgi);
    }
    return NULL;
}

/* Once a second, move this process's counters into Redis. A failed flush
 * puts the counts back so nothing is lost while Redis is down. */
static void *http_flusher(void *arg)
{
    char key[RDS_KEY_MAX];
    (void)arg;
    key_of(key, sizeof key, KEY_METRICS_REQUESTS, NULL);
    for (;;) {
        sleep(1);
        for (size_t i = 0; i < HTTP_NCOUNTED; i++) {
            unsigned long n = atomic_exchange(&http_counts[i], 0);
            redisReply *rep;
            char field[96];
            if (n == 0)
                continue;
            snprintf(field, sizeof field, "%s %d", http_family,
                     http_counted[i]);
            rep = rds_cmd("HINCRBY %s %s %lu", key, field, n);
            if (rep == NULL)
                atomic_fetch_add(&http_counts[i], n);
            freeReplyObject(rep);
        }
    }
    return NULL;
}

/* Waits for SIGTERM (blocked in every other thread) and ends the process.
 * libfcgi installs its own handlers for it, which only ask for a stop
 * after the next accept; a blocked signal taken by sigwait() is out of
 * their reach. A handler holds no state worth a graceful stop. */
static void *http_terminator(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    _exit(0);
    return NULL;
}

int http_main(const char *family, const http_route *routes, size_t n,
              int (*init)(void))
{
    static const cfg_id required[] = {CFG_JWT_SECRET, CFG_SP_SOCKET,
                                      CFG_REDIS_URL, CFG_COUNT};
    char err[512];
    pthread_t tid;
    long nthreads;

    log_set_program(family);
    /* A client that goes away must never kill a handler. */
    signal(SIGPIPE, SIG_IGN);
    if (cfg_load(required, err, sizeof err) != 0 ||
        rds_init(err, sizeof err) != 0 || auth_init(err, sizeof err) != 0) {
        log_error("configuration refused: %s", err);
        return 2;
    }
    http_family = family;
    http_routes = routes;
    http_nroutes = n;
    if (init != NULL && init() != 0)
        return 1;
    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    /* SIGTERM and SIGUSR1 are blocked here, so in every thread made from
     * now on, and taken by the terminator thread alone. */
    {
        static sigset_t term;
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        sigaddset(&term, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &term, NULL);
        if (pthread_create(&tid, NULL, http_terminator, &term) != 0) {
            log_error("pthread_create failed");
            return 1;
        }
        pthread_detach(tid);
    }
    unlink(cfg_str(CFG_SP_SOCKET));
    http_listen_fd = FCGX_OpenSocket(cfg_str(CFG_SP_SOCKET), 1024);
    if (http_listen_fd < 0) {
        log_error("FCGX_OpenSocket(\"%s\") failed", cfg_str(CFG_SP_SOCKET));
        return 1;
    }
    /* nginx workers run as the same unprivileged user; nobody else. */
    chmod(cfg_str(CFG_SP_SOCKET), 0660);
    nthreads = cfg_int(CFG_SP_THREADS);
    for (long i = 0; i < nthreads; i++) {
        if (pthread_create(&tid, NULL, http_worker, NULL) != 0) {
            log_error("pthread_create failed");
            return 1;
        }
        pthread_detach(tid);
    }
    log_info("listening on %s with %ld threads", cfg_str(CFG_SP_SOCKET),
             nthreads);
    http_flusher(NULL);
    return 0;
}

int http_read_multipart(http_req *r, size_t max, char *boundary, size_t blen)
{
    if (mp_boundary(http_header(r, "Content-Type"), boundary, blen) != 0) {
        http_send_error(r, SP_E_UNSUPPORTED_MEDIA_TYPE, NULL,
                        "Content-Type must be multipart/form-data");
        return -1;
    }
    if (http_read_body(r, max) != SP_OK) {
        http_send_error(r, SP_E_PAYLOAD_TOO_LARGE, NULL,
                        "body is larger than %zu bytes", max);
        return -1;
    }
    return 0;
}
