/* sse_loop.h: the epoll loop's own state (loop thread only): clients,
 * their output queues, topics (one per Redis stream with subscribers) and
 * subscriptions (a client's position in one stream). */
#ifndef SSE_LOOP_H
#define SSE_LOOP_H

#include "sse.h"

#define SSE_QCAP_MAX 65536        /* queued events per client */
#define SSE_OUT_LOW  (256 * 1024) /* ask for more backlog below this */

enum sse_cl_state {
    SSE_CL_READING = 0,
    SSE_CL_AUTH,
    SSE_CL_STREAMING,
    SSE_CL_CLOSING
};

typedef struct sse_client sse_client;
typedef struct sse_topic sse_topic;
typedef struct sse_ws sse_ws; /* a WebSocket connection's state (sse_ws.c) */

/* One client's position in one stream. */
typedef struct sse_sub {
    sse_client *cl;
    sse_topic *tp;
    struct sse_sub *tprev, *tnext; /* in the topic's list */
    struct sse_sub *cnext;         /* in the client's list */
    uint32_t id;
    sse_sid last; /* last entry sent (when has_last) */
    uint8_t has_last, live, inflight, want_more, check_lost, pointers;
    long long not_before_ms; /* pointers: older entries skipped */
} sse_sub;

/* A Redis stream that at least one subscription reads. */
struct sse_topic {
    sse_topic *hnext;
    sse_sub *subs;
    const sse_route *route;
    int pointers;
    char key[RDS_KEY_MAX];
    char label[SSE_ID_LEN];
};

struct sse_client {
    int fd;
    uint32_t slot, gen;
    int state;
    sse_fcgi fcgi;
    const sse_route *route;
    char id[SSE_ID_LEN];
    char parent[SSE_ID_LEN]; /* the path's parent id (route mid), or "" */
    sse_sid resume;
    int has_resume;
    const char *bad_param; /* 400 to send after authentication */
    char arg[16];          /* ?arg= of a route with a map (its head) */
    /* Output: a ring of events; qoff bytes of the head are already sent. */
    sse_ev **q;
    uint32_t qcap, qhead, qlen;
    size_t qoff, qbytes;
    int want_out, dirty;
    sse_client *dirty_next;
    long long born_ms, last_out_ms;
    sse_sub *subs;
    uint32_t next_sub_id, nsubs;
    sse_ws *ws; /* NULL: a FastCGI request from nginx; else a WebSocket
                   connection (raw bytes, no records) */
};

/* sse_client.c ---------------------------------------------------------- */

/* Size the client table (max connections). 0 or -1. */
int sse_clients_init(int epfd, uint32_t max);

/* Register a new connection fd (non-blocking). NULL if the table is full
 * (the caller closes fd). */
sse_client *sse_client_new(int fd, long long now_ms);

/* The client behind handle, or NULL if it has gone since. */
sse_client *sse_client_get(uint64_t handle);

/* handle of cl for jobs. */
uint64_t sse_client_handle(const sse_client *cl);

/* Queue ev (takes a reference) on cl. Returns 0, or -1 if cl's output is
 * over its bound (the caller drops cl). */
int sse_client_push(sse_client *cl, sse_ev *ev);

/* Queue len bytes as STDOUT (framed) for cl. 0 or -1. */
int sse_client_push_bytes(sse_client *cl, const void *p, size_t len, int raw);

/* Finish the response: empty STDOUT, END_REQUEST; close once flushed. */
void sse_client_finish(sse_client *cl);

/* Write what cl can take now; closes it when finished or broken. */
void sse_client_flush(sse_client *cl, long long now_ms);

/* Write every client touched since the last call. */
void sse_clients_flush_dirty(long long now_ms);

/* End cl's stream with its framing's trailer (code NULL: the stream is
 * complete) or error end (code, message: sp_status codes, e.g.
 * "unavailable"), then finish the response. */
void sse_client_end(sse_client *cl, const char *code, const char *message);

/* Close cl at once and free everything it holds (subscriptions too). */
void sse_client_close(sse_client *cl);

/* Call fn for every client (heartbeats, timeouts). fn may close it. */
void sse_clients_each(void (*fn)(sse_client *, long long), long long now_ms);

/* Mark cl as streaming (counted against SP_SSE_MAX_CLIENTS). */
void sse_client_streaming(sse_client *cl);

/* Connections and streaming clients now. */
uint32_t sse_clients_count(void);
uint32_t sse_clients_streaming(void);

/* sse_stream.c ---------------------------------------------------------- */

/* Subscribe cl to the stream key (label: the id its events name); after
 * (may be NULL) is the resume point, check_lost asks whether entries after
 * it were trimmed; pointer streams skip entries older than not_before_ms.
 * Returns the subscription, or NULL (out of memory). */
sse_sub *sse_sub_add(sse_client *cl, const char *key, const sse_route *route,
                     const char *label, int pointers, const sse_sid *after,
                     int check_lost, long long not_before_ms);

/* Remove every subscription of cl (topics left empty are unwatched). */
void sse_subs_drop(sse_client *cl);

/* Ask for the next backlog chunk of sub (cl's queue has room). */
void sse_sub_request(sse_sub *sub);

/* Handle a BACKLOG or live result from the reader (res stays the
 * caller's). */
void sse_stream_result(sse_res *res);

/* sse_request.c --------------------------------------------------------- */

/* Set the number of streams served at once (beyond: 503). */
void sse_request_init(uint32_t max_streams);

/* The FastCGI parameters of cl are complete: check what can be checked
 * without Redis, answer errors, else send the OPEN job. Frees the params. */
void sse_request(sse_client *cl);

/* The reader answered an OPEN job: send the error, or start streaming. */
void sse_request_opened(const sse_res *res);

/* sse_forward.c: calls to the handlers for WebSocket clients ------------ */

/* One call to a handler program, and its answer. */
typedef struct sse_call {
    struct sse_call *next;
    uint64_t handle;  /* the client it is for */
    int tag;          /* what its answer is for (sse_ws_msg.c) */
    char program[16]; /* "execute": state/run/sp-execute.sock */
    char method[8];
    char path[256];
    char *body; /* JSON (malloc'd) or NULL */
    size_t body_len;
    char *cred;      /* the client's API key or access token (malloc'd,
                        wiped when freed), or NULL */
    int cred_bearer; /* cred is a token (Authorization: Bearer) */
    char remote[64]; /* the client's address, as nginx said */
    int status;      /* the answer's HTTP status; 0: the handler could not be
                        asked */
    char *answer;    /* its body (malloc'd, NUL-terminated) */
    size_t answer_len;
} sse_call;

/* Start the calling threads; answers are signalled on efd. 0 or -1. */
int sse_forward_start(int efd, const char *run_dir);

/* Queue call c (takes ownership). */
void sse_forward_submit(sse_call *c);

/* Every answered call, oldest first (caller frees each). */
sse_call *sse_forward_take(void);

/* Free c, its credential wiped. NULL-safe. */
void sse_call_free(sse_call *c);

/* sse_ws.c, sse_ws_msg.c: WebSocket clients ------------------------------ */

/* Accept WebSocket connections on fd. */
void sse_ws_accept(int fd, long long now_ms);

/* Input on a WebSocket client's socket. */
void sse_ws_readable(sse_client *cl, long long now_ms);

/* The reader answered the OPEN job of a WebSocket client. */
void sse_ws_opened(sse_client *cl, const sse_res *res);

/* A call made for a WebSocket client was answered (c stays the
 * caller's). */
void sse_ws_answered(sse_call *c);

/* cl is being closed: free its WebSocket state (a terminal it started is
 * ended after the grace period). */
void sse_ws_free(sse_client *cl);

/* Once a second: terminals whose grace period is over are ended. */
void sse_ws_tick(long long now_ms);

/* relay.c --------------------------------------------------------------- */

/* A non-blocking unix listening socket at path (mode 0660: nginx's
 * workers run as the same user). The fd, or -1 (logged). */
int sse_listen(const char *path);

/* Milliseconds of CLOCK_MONOTONIC. */
long long sse_now_ms(void);

#endif
