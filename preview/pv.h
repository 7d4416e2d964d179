/* pv.h: what the files of sp-preview, the preview proxy, share (theory of
 * operation in preview.c):
 *   pv_head.c    the request head nginx sends: parsed, checked, rewritten
 *                for the sandbox (credentials and the token taken out)
 *   pv_access.c  who may reach the sandbox's port, and the socket into it
 *                from the helper (common/sp_fwd.h)
 *   preview.c    main, the epoll loop, the byte pump */
#ifndef PV_H
#define PV_H

#include <stddef.h>

#include "sp_auth.h"
#include "sp_buf.h"
#include "sp_id.h"
#include "sp_status.h"

#define PV_HEAD_MAX  32768 /* a request head from nginx */
#define PV_COOKIE    "sp_traffic_token"
#define PV_TOKEN_MAX 64 /* longer than any traffic token */
#define PV_CRED_MAX  4096

/* A request head, parsed. Pointers point into the caller's head bytes. */
typedef struct pv_head {
    char method[16];
    char sandbox[SP_ID_SIZE];
    unsigned port;
    char token[PV_TOKEN_MAX + 1]; /* a traffic token presented, or "" */
    int token_in_query;           /* ... by ?token= (a first visit) */
    char api_key[PV_CRED_MAX + 1], authz[PV_CRED_MAX + 1]; /* or "" */
    int upgrade; /* an Upgrade header (a WebSocket) */
    int https;   /* X-Forwarded-Proto: https */
    sp_buf out;  /* the head the sandbox gets, without its blank line and
                    without Authorization (pv_head_finish adds them) */
    char uri[PV_HEAD_MAX]; /* the URI the sandbox gets (no token) */
} pv_head;

/* Parse the head (len bytes up to and including the blank line) into h
 * and compose h->out without the credentials, the token parameter, the
 * token cookie and nginx's X-Sp-* headers. h->out is initialised here
 * and freed by the caller with buf_free, whatever the result. SP_OK, or
 * SP_E_INVALID_ARGUMENT with msg. */
sp_status pv_head_parse(const char *head, size_t len, pv_head *h, char *msg,
                        size_t msglen);

/* End h->out: the Authorization header unless strip_authz, then the
 * blank line. 0, or -1 if the head would be too large. */
int pv_head_finish(pv_head *h, int strip_authz);

/* The answers sp-preview makes itself, whole, into out (max a few KiB):
 * the JSON error envelope for st with msg, and the redirect of a first
 * visit that sets the token cookie (h->token: a verified traffic token,
 * so nothing of it can be a cookie attribute). Each closes the
 * connection. */
void pv_answer_error(sp_buf *out, sp_status st, const char *msg);
void pv_answer_cookie(sp_buf *out, const pv_head *h);

/* Where the helper's port-forward socket is: run_dir/FWD_SOCKET_NAME. */
void pv_access_init(const char *run_dir);

/* May the request reach h's sandbox and port? SP_OK; or the refusal:
 * SP_E_UNAUTHENTICATED, SP_E_NOT_FOUND (no such sandbox, or another
 * subject's), SP_E_UNAVAILABLE (Redis or the helper cannot be asked),
 * with msg. *strip_authz is set when the Authorization header was the
 * credential (it never reaches the sandbox); *by_token when h->token is
 * this sandbox's traffic token (only such a token becomes the cookie). */
sp_status pv_access(const pv_head *h, int *strip_authz, int *by_token,
                    char *msg, size_t msglen);

/* A socket connected (or connecting) to h's port inside its sandbox, from
 * the helper: >= 0, or -1 with *st (SP_E_NOT_FOUND, SP_E_PAUSED,
 * SP_E_BAD_GATEWAY, SP_E_UNAVAILABLE) and msg. */
int pv_connect(const pv_head *h, sp_status *st, char *msg, size_t msglen);

#endif
