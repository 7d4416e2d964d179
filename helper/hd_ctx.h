/* hd_ctx.h: what the two files of the helper's stateful contexts share
 * (hd_ctx.c: contexts and runs; hd_ctx_frames.c: the driver's frames and
 * a run's output). See hd_ctx.c for the theory of operation. Nothing
 * outside those two files includes it: the rest of the helper sees only
 * the hd_ctx_ functions of hd.h. */
#ifndef HD_CTX_H
#define HD_CTX_H

#include "hd.h"

typedef struct hd_ctx_run {
    char id[SP_ID_SIZE];  /* exe_ id of the logical execution */
    char rid[SP_ID_SIZE]; /* sync run: reply here at the end */
    char *line;           /* request line for the driver until sent */
    size_t line_len;
    long long timeout_ms, started_ms, deadline_ms;
    int interrupted; /* SIGINT sent for this run */
    int timed_out, cancelled, over_limit, truncated;
    int count; /* the driver's cells so far at "done" (0: unknown) */
    size_t out_bytes, out_max;
    size_t lost_bytes;   /* output dropped while Redis was away */
    hd_evid evid;        /* the last event id given to its stream */
    sp_buf cap[2];       /* stdout, stderr for the sync reply */
    utf8_carry carry[2]; /* partial characters of stdout, stderr */
    cJSON *results;      /* [{mime: data}] for the sync reply */
    cJSON *error;        /* {name, message, traceback} or NULL */
    struct hd_ctx_run *next;
} hd_ctx_run;

typedef struct hd_ctx {
    char id[SP_ID_SIZE];
    char language[16];
    char owner[SP_ID_SIZE];
    hd_sandbox *sbx;
    hd_exec *driver;   /* NULL once detached */
    hd_ctx_run *cur;   /* the run the driver is working on */
    hd_ctx_run *queue; /* runs waiting, in order */
    size_t nqueued;
    long long kill_ms; /* end the context at this time (0: never) */
    sp_buf frame;      /* a frame not yet complete */
    struct hd_ctx *next;
} hd_ctx;

/* hd_ctx.c */

/* SIGINT to the driver for c's current run (once per run): the run stops,
 * the context stays; if the run is not "done" within the grace period,
 * hd_ctx_tick ends the context. No-op without a current run. */
void hd_ctx_interrupt(hd_ctx *c);

/* Finish a run that is no longer the context's (taken off cur or the
 * queue): result event and exec record, TTLs, the sync reply; frees run.
 * ended is the reason when the context ended under it (NULL: it ran to
 * "done" or was cancelled while queued). */
void hd_ctx_finish(hd_sandbox *s, hd_ctx_run *run, const char *ended);

/* Hand queued runs to the driver while it is idle (c->cur NULL). */
void hd_ctx_start_next(hd_ctx *c);

/* End the context: its runs are finished with why, its driver killed and
 * detached, its records deleted; c is unlinked and freed. */
void hd_ctx_end(hd_ctx *c, const char *why);

/* hd_ctx_frames.c */

/* Append one event {type, data} to the run's stream; data is len raw
 * bytes. Redis failures are not reported (the stream is best effort). */
void hd_ctx_event(hd_ctx_run *run, const char *type, const void *data,
                  size_t len);

/* The same with data a JSON object; obj is consumed (freed), may be NULL. */
void hd_ctx_event_json(hd_ctx_run *run, const char *type, cJSON *obj);

/* n bytes of output of stream which (0 stdout, 1 stderr) of run: cut at
 * UTF-8 boundaries (at_eof flushes the carried partial character), capped
 * at run->out_max, then a stdout/stderr event and the sync capture. Past
 * the cap, the run is marked truncated and, if it is c's current run
 * (c may be NULL), interrupted. */
void hd_ctx_emit(hd_ctx *c, hd_ctx_run *run, int which, const unsigned char *p,
                 size_t n, int at_eof);

/* Set run->error to {name, message, traceback} (NULL: "Error", "", ""),
 * each cut to its maximum; replaces an earlier error. No event. */
void hd_ctx_set_error(hd_ctx_run *run, const char *name, const char *message,
                      const char *tb);

#endif
