/* sp_rpc.h: requests from handlers to sandbox helpers through Redis.
 *
 * A job is an entry of a Redis Stream: fields op, rid (reply id),
 * deadline (Unix ms after which the helper drops it) and args (JSON
 * object); never a file's bytes, which wait in the spool (sp_spool.h).
 * The helper deletes an entry (XACK, XDEL) once it has handled or dropped
 * it; the caller deletes it when it gave up waiting. Jobs that any helper
 * may take (creating a sandbox) go to "<prefix>jobs"; jobs for an
 * existing sandbox go to the stream of the helper that owns it,
 * "<prefix>hjobs:<helper id>". Both are read through the consumer group
 * "helpers".
 *
 * The helper answers by LPUSH to "<prefix>reply:<rid>" of one string: a
 * JSON object, a newline, then optional raw bytes (captured output; a
 * file's bytes come back through the spool). The JSON is
 * {"ok":true,...} or {"ok":false,"code":"<sp_status code>","message":..}. */
#ifndef SP_RPC_H
#define SP_RPC_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "sp_buf.h"
#include "sp_status.h"

#define RPC_STREAM_MAXLEN 100000
#define RPC_WAIT_SLICE_MS 1000 /* replies are awaited in slices this long */
#define RPC_MSG_SIZE      256  /* a message rpc_call writes for the client */
#define RPC_ENTRY_SIZE    64   /* a stream entry id ("<ms>-<seq>") */

typedef struct rpc_reply {
    cJSON *json; /* the reply object; owned, freed by rpc_reply_free */
    char *data;  /* raw bytes after the JSON (may be NULL); owned */
    size_t len;
} rpc_reply;

/* How a call failed (sp_helper.h, "Error model"). */
typedef enum rpc_fail {
    RPC_OK = 0,
    RPC_TRANSPORT, /* not asked, or no answer in time */
    RPC_LOST,      /* the helper that had the job is gone (sp_lost.h) */
    RPC_ANSWER     /* the helper answered with an error */
} rpc_fail;

#define RPC_MSG_MAX 256

typedef struct rpc_err {
    rpc_fail fail;
    sp_status st;          /* SP_OK when fail is RPC_OK */
    char msg[RPC_MSG_MAX]; /* for the client; never internals */
} rpc_err;

/* Send job op with args (not consumed) to helper (NULL: the shared
 * stream) and wait up to wait_ms for the reply. The wait is cut short
 * when the helper is gone (its heartbeat stopped), or, for a job about
 * execution exe (may be NULL), when exe's helper is gone or exe was ended
 * as lost. Returns 0 with the reply (ok true) in *out, or -1 with *err
 * filled: RPC_TRANSPORT (SP_E_UNAVAILABLE, or SP_E_INTERNAL when the job
 * could not be built or the reply was malformed), RPC_LOST
 * (SP_E_UNAVAILABLE) or RPC_ANSWER (the helper's code and message). Only
 * the typed client (sp_helper.c) calls this. */
int rpc_call(const char *helper, const char *op, const cJSON *args,
             long long wait_ms, const char *exe, rpc_reply *out, rpc_err *err);

/* Set err to a failure of kind fail with status st and a message. */
void rpc_err_set(rpc_err *err, rpc_fail fail, sp_status st, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));

/* Free what rpc_call returned in r; NULL-safe. */
void rpc_reply_free(rpc_reply *r);

/* The helper owning sandbox sbx_id, into helper (>= SP_ID_SIZE bytes), if the
 * sandbox exists and belongs to sub. SP_OK, SP_E_NOT_FOUND (also for an
 * invalid id or another subject's sandbox) or SP_E_UNAVAILABLE. */
sp_status rpc_sandbox_helper(const char *sub, const char *sbx_id, char *helper);

/* As rpc_sandbox_helper for the caller of r; on failure the 404 (field
 * may be NULL) or 503 is sent. Returns 0 or -1. */
struct http_req;
/* The hash record of id in key family f (sp_keys.h), if id has the type
 * prefix, the record's "owner" is the caller's subject and, when
 * parent_field is given, its parent_field is parent: the HGETALL reply
 * (struct redisReply *, caller frees); else NULL after answering 404
 * ("<noun> not found": unknown, or another's) or 503. */
struct redisReply *rpc_owned_record(struct http_req *r, int f, const char *id,
                                    const char *prefix, const char *noun,
                                    const char *parent_field,
                                    const char *parent);

int rpc_sandbox_of(struct http_req *r, const char *sbx_id, const char *field,
                   char *helper);

/* 0 if a helper runs (a fresh heartbeat), else -1 after answering r with
 * 503 "no sandbox helper is running": before work that any helper may
 * take (a sandbox, a one-off run). */
int rpc_need_helper(struct http_req *r);

/* A new id of type prefix ("exe_") into out (SP_ID_SIZE bytes): 0, or -1
 * after answering r with 500. */
int rpc_new_id(struct http_req *r, const char *prefix, char *out);

/* Answer r with the failure err of a helper call: its status (503 for a
 * helper that was not reached or did not answer, with Retry-After) and
 * message; field may be NULL. The one place a helper failure becomes
 * HTTP. */
void http_send_rpc_error(struct http_req *r, const rpc_err *err,
                         const char *field);

/* Reserve one of sub's one-off runs (a sandbox made for one /execute or
 * terminal, SP_RUNS_MAX_PER_SUBJECT at once) for run id until deadline_ms
 * (Unix ms; a reservation never released, say by a killed helper, lapses
 * then). SP_OK, SP_E_RATE_LIMITED or SP_E_UNAVAILABLE. */
sp_status rpc_run_reserve(const char *sub, const char *id,
                          long long deadline_ms);

/* Release the reservation of run id (its sandbox has ended). */
void rpc_run_release(const char *sub, const char *id);

/* The same for any per-subject count kept as a sorted set of key family
 * f (sp_keys.h, one <sub> id): reserve id for sub unless max are held
 * (entries past their deadline_ms are dropped first; the key expires at
 * the last deadline), or release it. rpc_run_reserve is this for KEY_RUNS
 * and SP_RUNS_MAX_PER_SUBJECT; workflow runs use KEY_WFACTIVE. */
sp_status rpc_reserve(int f, const char *sub, const char *id, long long max,
                      long long deadline_ms);
void rpc_release(int f, const char *sub, const char *id);

/* Wall-clock time in Unix milliseconds. */
long long rpc_now_ms(void);

/* Number of helpers with a fresh heartbeat (sp_lost.h), or -1 if Redis
 * failed. */
long long rpc_live_helpers(void);

#endif
