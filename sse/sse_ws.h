/* sse_ws.h: what the relay's two WebSocket files share: sse_ws.c (the
 * connection: handshake, frames in and out, close, limits) and
 * sse_ws_msg.c (what the messages mean: the client stream, executions,
 * terminals). Nothing else includes it. */
#ifndef SSE_WS_H
#define SSE_WS_H

#include "sse_loop.h"

#include <cjson/cJSON.h>

/* RFC 6455 §7.4.1 close codes. */
#define SSE_WS_NORMAL      1000
#define SSE_WS_PROTOCOL    1002
#define SSE_WS_UNSUPPORTED 1003
#define SSE_WS_BAD_DATA    1007
#define SSE_WS_POLICY      1008
#define SSE_WS_TOO_BIG     1009
#define SSE_WS_INTERNAL    1011
#define SSE_WS_MSG_MAX     (1024 * 1024) /* a message (or frame) */
#define SSE_WS_HEAD_MAX    (16 * 1024)   /* the upgrade request */
#define SSE_WS_RATE        50            /* messages a second, sustained */
#define SSE_WS_BURST       100           /* and at once */

enum sse_ws_mode {
    SSE_WS_CLIENT = 0, /* "/", "/ws": the client stream of a clientId */
    SSE_WS_TERMINAL    /* "/terminal": a shell in a new sandbox */
};

struct sse_ws {
    int mode;
    int upgraded;      /* 101 sent */
    int opening;       /* OPEN job in flight */
    unsigned char *in; /* bytes read and not yet parsed */
    size_t in_len;     /* bounded: SSE_WS_HEAD_MAX, then a frame */
    size_t in_cap;
    sp_buf msg;           /* a fragmented message being put together */
    int msg_op;           /* its opcode, 0 when none */
    char accept[32];      /* Sec-WebSocket-Accept */
    char *cred;           /* the credential (malloc'd, wiped), or NULL */
    int cred_bearer;      /* cred is an access token */
    char sub[SSE_ID_LEN]; /* the subject, once authenticated */
    char client_id[SSE_ID_LEN];
    char terminal[SSE_ID_LEN]; /* terminal mode: its terminal ... */
    char sandbox[SSE_ID_LEN];  /* ... and the sandbox made for it, or "" */
    int cols, rows;
    char remote[64];
    double bucket; /* message tokens left (rate limit) */
    long long bucket_ms;
};

/* sse_ws.c */

/* Send one text message (a JSON object's text) to cl; a client whose
 * queue is full is closed. */
void sse_ws_send(sse_client *cl, const char *json);

/* Send {"type":"error","code","message"} to cl. */
void sse_ws_error(sse_client *cl, const char *code, const char *message);

/* Close cl with status code (and reason, may be NULL): the close frame,
 * then the connection once it is written. */
void sse_ws_close(sse_client *cl, unsigned code, const char *reason);

/* A plain HTTP answer before the upgrade (status, code, message, extra
 * header lines or NULL), then the end of the connection. */
void sse_ws_refuse(sse_client *cl, int status, const char *code,
                   const char *message, const char *extra);

/* sse_ws_hs.c: the upgrade request in head (NUL-terminated): checked,
 * then refused or begun (sse_ws_begin). */
void sse_ws_head(sse_client *cl, char *head);

/* Send the 101 answer (once). 0 or -1. */
int sse_ws_upgrade(sse_client *cl);

/* sse_ws_msg.c */

/* The upgrade request was accepted: authenticate now (a credential came
 * with it) or wait for an "auth" message. */
void sse_ws_begin(sse_client *cl);

/* cl's connection is going: a terminal it holds is ended after the grace
 * period (unless a client reconnects to it). */
void sse_ws_gone(sse_client *cl);

/* One complete text message from the client (valid UTF-8). */
void sse_ws_message(sse_client *cl, const char *text, size_t len);

/* The route WebSocket clients authenticate and stream through. */
extern const sse_route sse_ws_client_route;
/* The route of a terminal's events (its watched_at kept fresh). */
extern const sse_route sse_ws_terminal_route;

enum sse_ws_call_tag {
    SSE_WSC_EXECUTE = 1,
    SSE_WSC_CANCEL,
    SSE_WSC_SANDBOX,
    SSE_WSC_TERMINAL,
    SSE_WSC_INPUT,
    SSE_WSC_END
};

/* Milliseconds of the wall clock (stream ids are made from it). */
long long sse_ws_wall_ms(void);

/* A call to program (sse_forward.c) for the client of handle (0: for
 * nobody), with the credential cred and ws's remote address; body is
 * consumed (may be NULL). */
void sse_ws_call(uint64_t handle, const sse_ws *ws, const char *cred,
                 int bearer, int tag, const char *program, const char *method,
                 const char *path, cJSON *body);

/* The same for cl, with its credential. */
void sse_ws_call_cl(sse_client *cl, int tag, const char *program,
                    const char *method, const char *path, cJSON *body);

/* Send cl the error of a handler's answer (its envelope's code and
 * message). */
void sse_ws_answer_error(sse_client *cl, const sse_call *c);

/* The id-valued string field name of c's JSON answer (type prefix) into
 * out; 0 or -1. */
int sse_ws_answer_id(const sse_call *c, const char *name, const char *prefix,
                     char *out, size_t outlen);

/* sse_ws_term.c */

/* A new terminal for cl (authenticated). */
void sse_ws_start_terminal(sse_client *cl);

/* /terminal?terminalId=: take that terminal back from the ends pending
 * after a connection went (same subject), else close. */
void sse_ws_adopt(sse_client *cl);

/* {"type":"input", data} or {"type":"resize", cols, rows} (m: the
 * message, changed). */
void sse_ws_terminal_message(sse_client *cl, const char *type, cJSON *m);

/* Answers of the calls that make a terminal: its sandbox, then itself. */
void sse_ws_sandbox_made(sse_client *cl, const sse_call *c);
void sse_ws_terminal_made(sse_client *cl, const sse_call *c);

/* An answer for a client that has gone: what was made for it is ended. */
void sse_ws_orphan(const sse_call *c);

#endif
