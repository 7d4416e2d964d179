/* sp_http.h: the FastCGI side of every handler program: request accessors
 * (method, path segments, query, headers, body with a hard maximum), JSON
 * responses and the error envelope, a route table matcher (405 with Allow,
 * 404), and the multi-threaded accept loop. Nothing here knows a route. */
#ifndef SP_HTTP_H
#define SP_HTTP_H

#include <cjson/cJSON.h>
#include <fcgiapp.h>
#include <stddef.h>

#include "sp_buf.h"
#include "sp_id.h"
#include "sp_status.h"

#define HTTP_MAX_SEGS      16
#define HTTP_MAX_PARAMS    4
#define HTTP_PATH_MAX      2048
#define HTTP_EXTRA_HEADERS 1024

typedef struct auth_info {
    char sub[SP_ID_SIZE]; /* the subject (owner of resources) */
    char kid[SP_ID_SIZE]; /* API key id the credential came from */
    char jti[SP_ID_SIZE]; /* token id, empty for an API key */
    long long exp;        /* token expiry (0 for an API key) */
} auth_info;

typedef struct http_req {
    FCGX_Request fcgi;
    const char *method;       /* "GET", ...; never NULL */
    const char *query;        /* raw query string; never NULL */
    char path[HTTP_PATH_MAX]; /* decoded copy of the path, split in segs */
    char *segs[HTTP_MAX_SEGS];
    int nsegs;
    const char *params[HTTP_MAX_PARAMS]; /* segments matched by '*' */
    sp_buf body;
    int body_read;
    int status;                     /* HTTP status sent, 0 before */
    char extra[HTTP_EXTRA_HEADERS]; /* extra response header lines */
    auth_info auth;                 /* filled by the router for auth routes */
    int errors;                     /* HTTP_ERRORS_*: the error body's shape */
} http_req;

/* The shape of an error body (http_req.errors; http_send_error).
 *   HTTP_ERRORS_ENVELOPE  {"error":{"code","message","field"?},
 *                         "code":<HTTP status>,"message"}: the envelope of
 *                         docs/DESIGN.md §3 with E2B's top-level numeric
 *                         code and message beside it (its SDKs read those),
 *                         so that one body serves both on shared paths.
 *   HTTP_ERRORS_CONNECT   {"code":"<Connect code>","message"}: a Connect
 *                         RPC's unary error (the envd family).
 *   HTTP_ERRORS_CONNECT_STREAM  a Connect streaming RPC's error: 200, and
 *                         the stream's end frame (frame_connect's error
 *                         end) as the whole body. */
#define HTTP_ERRORS_ENVELOPE       0
#define HTTP_ERRORS_CONNECT        1
#define HTTP_ERRORS_CONNECT_STREAM 2

typedef void (*http_fn)(http_req *r);

/* A route: method, a pattern of segments where "*" matches one segment
 * (e.g. "/sandboxes/ * /files" without spaces), the function, and whether
 * the caller must be authenticated first. */
typedef struct http_route {
    const char *method;
    const char *pattern;
    http_fn fn;
    int auth;
} http_route;

/* Value of a request header by its HTTP name ("X-API-Key"); NULL if absent.
 * Valid until the request ends. */
const char *http_header(http_req *r, const char *name);

/* Query parameter, URL-decoded into out. Returns 1 if present, 0 if absent,
 * -1 if it does not fit in out or contains a NUL byte. */
int http_query(const http_req *r, const char *name, char *out, size_t outlen);

/* Read the body, at most max bytes. Returns SP_OK or
 * SP_E_PAYLOAD_TOO_LARGE (nothing more is read then). */
sp_status http_read_body(http_req *r, size_t max);
/* A multipart/form-data request: its boundary into boundary (blen) and
 * its body read whole (at most max bytes, as http_read_body). 0, or -1
 * after answering 415 (another Content-Type) or 413. */
int http_read_multipart(http_req *r, size_t max, char *boundary, size_t blen);

/* Read and parse a JSON object body (Content-Type must be JSON when a body
 * is present). An empty body is {} when allow_empty, else invalid_json.
 * Returns the tree (caller frees with cJSON_Delete) or NULL after having
 * sent the error response itself. */
cJSON *http_json_body(http_req *r, int allow_empty);

/* Add a response header line ("Name: value", no CRLF) to the next reply. */
void http_add_header(http_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Send a JSON body with the given HTTP status; obj stays the caller's. */
void http_send_json(http_req *r, int status, const cJSON *obj);

/* Send the head of an answer of len bytes (Content-Length; HTTP_LEN_STREAM:
 * none, a stream of unknown length) whose body the caller then writes
 * with http_write_body (a streamed object). 0, or -1 (an answer was
 * already sent, or the client is gone). */
#define HTTP_LEN_STREAM (~0ULL)
int http_send_head(http_req *r, int status, const char *ctype,
                   unsigned long long len);

/* Write len bytes of a body after http_send_head, in large FastCGI
 * records straight to the connection (sp_http_body.c). 0, or -1 (the
 * client is gone). */
int http_write_body(http_req *r, const char *buf, size_t len);

/* Send raw bytes with the given status and content type. */
void http_send_raw(http_req *r, int status, const char *ctype, const void *data,
                   size_t len);

/* Send the error body of r->errors's shape (HTTP_ERRORS_*; the envelope
 * {"error":{"code","message","field"}} by default); field may be NULL.
 * Adds Retry-After for rate_limited and unavailable. */
void http_send_error(http_req *r, sp_status st, const char *field,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* As http_send_error, with "rule": the static name of the naming rule the
 * input broke (storage names: "bucket_name_length" ...). */
void http_send_error_rule(http_req *r, sp_status st, const char *field,
                          const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The credential check of a route (auth_check with flags into r->auth):
 * 0, or -1 after having answered 401 (with WWW-Authenticate) or 503. The
 * router calls it for auth routes; a route that takes another credential
 * first (a presigned URL) calls it itself. */
int http_authenticate(http_req *r, int flags);

/* Match r against routes and call the route's function; answers 404 and
 * 405 (with Allow) itself, and 401 for auth routes without a valid
 * credential. */
void http_dispatch(http_req *r, const http_route *routes, size_t n);

/* Program entry: load configuration, connect Redis lazily, listen on
 * SP_SOCKET and serve routes with SP_THREADS threads. family names the
 * program in logs and metrics. init (may be NULL) runs once after the
 * configuration is loaded; non-zero aborts start-up. Returns the exit code
 * (only on start-up failure). */
int http_main(const char *family, const http_route *routes, size_t n,
              int (*init)(void));

/* Number of requests answered by this process with each HTTP status,
 * flushed to Redis as "<prefix>metrics:requests" once a second. */
void http_count(int status);

#endif
