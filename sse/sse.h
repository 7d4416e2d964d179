/* sse.h: the internals of the SSE relay (sp-sse) shared by its files:
 * stream ids, shared framed events, the FastCGI responder parser, the
 * jobs and results exchanged between the epoll loop and the one Redis
 * reader thread, and the client table. Nothing here is used outside sse/.
 *
 * Threads: the loop (relay.c, sse_client.c, sse_fcgi.c) owns every client,
 * topic and subscription; the reader (sse_reader.c) owns both Redis
 * connections. They talk only through sse_job (loop -> reader) and sse_res
 * (reader -> loop) queues, each woken by an eventfd; a job or result holds
 * copies, never a pointer into the other thread's state. */
#ifndef SSE_H
#define SSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "sp_id.h"
#include "sp_keys.h"
#include "sp_frame.h"
#include "sp_redis.h"

#define SSE_OUT_MAX (1024 * 1024) /* queued bytes per client, then dropped */
#define SSE_EV_MAX  (768 * 1024)  /* one formatted event (< SSE_OUT_MAX) */
#define SSE_ID_LEN  SP_ID_SIZE
#define SSE_SID_STR 44 /* "<u64>-<u64>" + NUL */

/* A Redis Stream entry id, "<ms>-<seq>". */
typedef struct sse_sid {
    uint64_t ms, seq;
} sse_sid;

enum sse_ev_kind {
    SSE_EV_STDOUT = 0, /* body is framed as FastCGI STDOUT records */
    SSE_EV_RAW = 1,    /* body is complete FastCGI records, sent as is */
    SSE_EV_PTR = 2     /* a client stream pointer: aux names an execution */
};

/* A formatted piece of output, shared by every client it is queued on.
 * Only the loop thread touches refs once the event has been handed over. */
typedef struct sse_ev {
    unsigned refs; /* UINT32_MAX: static, never freed */
    uint8_t kind;  /* enum sse_ev_kind */
    uint8_t final; /* the last event of its stream (result, exit) */
    sse_sid id;
    struct sse_ev *next; /* link in a result's list (reader side only) */
    char aux[SSE_ID_LEN];
    uint32_t len;
    char data[];
} sse_ev;

/* A route's own event shapes (a protocol adapter's: sse_envd.c), in
 * place of the envelope {"type","<label>",...} of sse_ev_format. */
typedef struct sse_map {
    /* The first message of a stream, from the request's ?arg= (checked
     * here: -1 refuses it, and the request is 400) as JSON into b; NULL:
     * none. */
    int (*head)(sp_buf *b, const char *arg);
    /* One stream entry as JSON into b: 0 written, 1 skipped (a route's
     * final type is never skipped), -1 failed. */
    int (*entry)(sp_buf *b, const char *type, const char *data, size_t dlen);
    /* NULL, or a second message of the same entry (a rename's new name is
     * a create of its own in envd's watch events): 0 written, 1 none. */
    int (*more)(sp_buf *b, const char *type, const char *data, size_t dlen);
} sse_map;

/* What a route streams; one table entry per route (sse_request.c). A
 * path is prefix, [parent id, mid,] id, suffix. */
typedef struct sse_route {
    const char *prefix;     /* "/executions/" ... or "/events" */
    const char *suffix;     /* "/events" after the id; NULL: exact path */
    const char *id_prefix;  /* "exe_": the id's type prefix */
    sp_key_family owner;    /* hash holding "owner": KEY_EXEC -> exec:<id> */
    const char *label;      /* JSON field naming the id: "executionId" */
    const char *final_type; /* event after which the stream ends */
    int client_stream;      /* 1: /events?clientId= (pointer stream) */
    const sp_frame *frame;  /* the answer's framing (&frame_sse) */
    sp_key_family events;   /* the stream: KEY_EVENTS -> events:<id> */
    const char *noun;       /* what a 404 says is missing: "execution" */
    int touch;              /* 1: the owner hash's watched_at is kept fresh
                             * while the stream is read (its producer ends
                             * it when nobody reads it) */
    const char *mid;        /* NULL, or "/watches/" between a parent id
                             * and the id: the owner hash's field
                             * parent_field must hold the parent id */
    const char *parent_field;
    const sse_map *map;    /* NULL, or the adapter's event shapes */
    const char *sbx_token; /* NULL: an API key or token; else the purpose
                            * of the parent sandbox's token that the
                            * request carries in X-Access-Token (sp_auth.h:
                            * AUTH_SBX_ENVD), its owner the subject */
    /* NULL, or how an entry becomes this route's event(s) instead of
     * sse_ev_format's envelope or a map's one message (several lines of
     * a protocol: sse_interp.c); NULL from it skips the entry. */
    struct sse_ev *(*format)(const struct sse_route *rt, sse_sid id,
                             const char *type, const char *data, size_t dlen,
                             const char *label);
    int sbx_tokens; /* 1: authorized by either of the execution's sandbox's
                       data-plane tokens, E2B-Traffic-Access-Token or
                       X-Access-Token (sse_interp.c) */
} sse_route;

enum sse_job_type {
    SSE_JOB_OPEN,
    SSE_JOB_WATCH,
    SSE_JOB_UNWATCH,
    SSE_JOB_BACKLOG
};

/* A request from the loop to the reader; all strings are copies. */
typedef struct sse_job {
    struct sse_job *next;
    int type;
    uint64_t handle; /* client handle (slot << 32 | generation) */
    uint32_t sub_id; /* subscription within the client (BACKLOG) */
    const sse_route *route;
    char key[RDS_KEY_MAX];    /* stream key (WATCH, UNWATCH, BACKLOG) */
    char label[SSE_ID_LEN];   /* id shown in events ("exe_...") */
    char id[SSE_ID_LEN];      /* OPEN: id from the path or clientId */
    char parent[SSE_ID_LEN];  /* OPEN: the path's parent id (route mid) */
    char api_key[SSE_ID_LEN]; /* OPEN: X-API-Key, or empty */
    char *token;              /* OPEN: bearer/access token, or the
                               * sandbox's (route sbx_token) (malloc'd) */
    char traffic[48];         /* OPEN, sbx_tokens routes: the tokens sent */
    char access[48];
    int has_after;            /* BACKLOG: after is set */
    int check_lost;           /* BACKLOG: report trimmed entries */
    int pointers;             /* WATCH/BACKLOG: entries are pointers */
    sse_sid after;
    long long not_before_ms; /* BACKLOG of pointers: skip older entries */
    size_t budget;           /* BACKLOG: bytes the client can take */
} sse_job;

/* A reply from the reader to the loop. */
typedef struct sse_res {
    struct sse_res *next;
    int type; /* the job type, or SSE_JOB_WATCH for live */
    uint64_t handle;
    uint32_t sub_id;
    int status;             /* sp_status of OPEN; 0/-1 for BACKLOG */
    char sub[SSE_ID_LEN];   /* OPEN: authenticated subject */
    char key[RDS_KEY_MAX];  /* live: stream key */
    const sse_route *route; /* live: the route that framed evs */
    sse_ev *evs;            /* formatted events in order (owned) */
    int lost, done, ended;
} sse_res;

/* sse_event.c ----------------------------------------------------------- */

/* Parse "<ms>-<seq>" (decimal, each fits 64 bits) of exactly len bytes.
 * Returns 0, or -1 if malformed. */
int sse_sid_parse(const char *s, size_t len, sse_sid *out);

/* Write id as "<ms>-<seq>" into out (>= SSE_SID_STR bytes). */
void sse_sid_format(sse_sid id, char *out);

/* <0, 0, >0 as a is before, equal to, after b. */
int sse_sid_cmp(sse_sid a, sse_sid b);

/* A new event of kind with body len bytes (refs 1), or NULL. Caller fills
 * data; free with sse_ev_unref. */
sse_ev *sse_ev_new(int kind, size_t len);

/* Frame one stream entry with fr. type and data come from the entry's
 * fields; label_name/label say which id the event is about
 * ("executionId", "exe_..."). NULL if type is not [a-z_]{1,32} (the entry
 * is skipped) or memory ran out; an entry too large for SSE_EV_MAX
 * becomes an "event_too_large" error event under the same id. Returns the
 * event (refs 1; caller frees with sse_ev_unref). */
sse_ev *sse_ev_format(const sp_frame *fr, sse_sid id, const char *type,
                      const char *data, size_t dlen, const char *label_name,
                      const char *label, const char *final_type);

/* An error event without a stream id, framed by fr: {"type":"error",
 * "<label_name>":"<label>","message","code"}. Caller frees; NULL if out of
 * memory. message and code are the caller's constants (not escaped). */
sse_ev *sse_ev_error(const sp_frame *fr, const char *label_name,
                     const char *label, const char *code, const char *message);

/* As sse_ev_format for a route with a map: the entry in the map's shape
 * (NULL when the map skips it), framed by fr. */
sse_ev *sse_ev_mapped(const sp_frame *fr, const sse_map *map, sse_sid id,
                      const char *type, const char *data, size_t dlen,
                      const char *final_type);

/* The map's head message for arg, framed by fr; NULL if the map has none
 * or refuses arg. Caller frees. */
sse_ev *sse_ev_head(const sp_frame *fr, const sse_map *map, const char *arg);

/* sse_envd.c: the maps of envd's streams (a process's events, a PTY's, a
 * watched directory's). */
extern const sse_map sse_map_process, sse_map_pty, sse_map_watch;

enum sse_part {
    SSE_PART_PREAMBLE = 0,
    SSE_PART_HEARTBEAT,
    SSE_PART_END /* code NULL: normal end; else the error end */
};

/* The bytes of one part of an answer framed by fr (possibly none: len 0)
 * as an event; code and message for an error end. Caller frees; NULL if
 * fr refused or memory ran out. */
sse_ev *sse_ev_part(const sp_frame *fr, int part, const char *code,
                    const char *message);

/* Drop one reference; frees at zero. NULL-safe; static events ignored. */
void sse_ev_unref(sse_ev *ev);

/* Free a result's event list and the result. NULL-safe. */
void sse_res_free(sse_res *res);

/* Free a job (and its token, wiped). NULL-safe. */
void sse_job_free(sse_job *job);

/* sse_fcgi.c ------------------------------------------------------------ */

#define SSE_FCGI_PARAMS_MAX  32768
#define SSE_FCGI_NPARAMS_MAX 128

enum sse_fcgi_event {
    SSE_FCGI_MORE = 0,
    SSE_FCGI_READY,
    SSE_FCGI_ABORT,
    SSE_FCGI_ERROR
};

/* The responder side of one FastCGI connection: records in, parameters
 * out. Bounded: params <= SSE_FCGI_PARAMS_MAX bytes. */
typedef struct sse_fcgi {
    unsigned char hdr[8];
    unsigned hdr_got;
    unsigned type;
    unsigned rid; /* the request id of this connection's request */
    uint32_t content_left, pad_left;
    unsigned char small[512]; /* BEGIN_REQUEST / GET_VALUES content */
    unsigned small_len;
    int began, params_done, ready_sent;
    char *params; /* raw name-value pairs (malloc'd) */
    size_t params_len;
    unsigned char *reply; /* management replies to send (malloc'd) */
    size_t reply_len;
} sse_fcgi;

/* Feed n bytes read from the connection. Returns SSE_FCGI_READY once when
 * the parameters are complete (the request can be served), SSE_FCGI_ABORT
 * if the web server aborted the request, SSE_FCGI_ERROR on a protocol
 * violation or a limit, else SSE_FCGI_MORE. Management replies (GET_VALUES,
 * unknown types) accumulate in f->reply for the caller to send. */
int sse_fcgi_feed(sse_fcgi *f, const unsigned char *p, size_t n);

/* Value of parameter name (e.g. "HTTP_LAST_EVENT_ID") copied into out as
 * a NUL-terminated string. Returns its length, -1 if absent, -2 if it
 * does not fit or contains a NUL byte. */
long sse_fcgi_param(const sse_fcgi *f, const char *name, char *out,
                    size_t outlen);

/* Free the parameters and pending replies. */
void sse_fcgi_free(sse_fcgi *f);

/* Build an END_REQUEST record for rid into out[16]. */
void sse_fcgi_end_record(unsigned rid, unsigned char out[16]);

/* Fill iovecs for ev's bytes from virtual offset off as sent to request
 * rid: STDOUT events are cut into records whose 8-byte headers go into
 * hdrs (room for maxiov/2 headers). Returns the number of iovecs used. */
int sse_fcgi_iov(const sse_ev *ev, unsigned rid, size_t off, struct iovec *iov,
                 int maxiov, unsigned char (*hdrs)[8]);

/* Bytes ev occupies on the wire (with record headers). */
size_t sse_fcgi_wire_len(const sse_ev *ev);

/* sse_reader.c ---------------------------------------------------------- */

/* Start the reader thread. res_efd is signalled whenever results are
 * queued. Returns 0 or -1. */
int sse_reader_start(int res_efd);

/* Queue a job for the reader (takes ownership) and wake it. */
void sse_reader_submit(sse_job *job);

/* Take every queued result, oldest first (caller frees each). */
sse_res *sse_reader_take(void);

/* sse_fetch.c (reader thread) ------------------------------------------ */

/* Authenticate an OPEN job and check ownership; fills res->status, sub. */
void sse_do_open(const sse_job *job, sse_res *res);

/* Read one backlog chunk for a BACKLOG job into res. */
void sse_do_backlog(const sse_job *job, sse_res *res);

/* Append the events of r (an XRANGE/XREAD entry array) to *tail until
 * budget bytes; *used counts entries consumed, *last gets the last id.
 * Pointer streams yield SSE_EV_PTR events (older than not_before_ms
 * skipped). Returns the bytes appended. */
size_t sse_entries(const redisReply *r, const sse_route *route,
                   const char *label, int pointers, sse_ev ***tail,
                   size_t budget, size_t *used, sse_sid *last,
                   long long not_before_ms);

/* sse_interp.c: E2B's code interpreter stream -------------------------- */

/* sse_route.format of the interp route: an entry as E2B's NDJSON lines. */
sse_ev *sse_interp_format(const sse_route *rt, sse_sid id, const char *type,
                          const char *data, size_t dlen, const char *label);

/* The tokens of an sbx_tokens route's request into job; 0, or -1 when
 * there is none or one is malformed. */
int sse_interp_credential(const sse_fcgi *f, sse_job *job);

/* OPEN of an sbx_tokens route (reader thread): the owner hash's sandbox
 * must match every token sent; fills res->status and res->sub. */
void sse_interp_open(const sse_job *job, sse_res *res);

/* sse_request.c -------------------------------------------------------- */

/* Query parameter name of the raw query string q, URL-decoded into out.
 * Returns 1 if present, 0 if absent, -1 if too long or holding a NUL. */
int sse_query(const char *q, const char *name, char *out, size_t outlen);

#endif
