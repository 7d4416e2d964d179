/* worker/wk.h: what the files of sp-worker share (wk_main.c: theory of
 * operation, the loop; wk_run.c: a run from its queue entry to its end;
 * wk_steps.c: each step; wk_findings.c: a checker's output as findings;
 * wk_sched.c: schedules). */
#ifndef WK_H
#define WK_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "sp_helper.h"
#include "sp_id.h"
#include "sp_queue.h"
#include "sp_redis.h"
#include "sp_workflow.h"

#define WK_OUT_TAIL      4096 /* bytes of each stream a step's record keeps */
#define WK_LOG_MAX       (64 * 1024) /* bytes of each stream a step publishes */
#define WK_CWD           "/workspace"
#define WK_EXEC_SLACK_MS 30000

/* What a step ended as. */
typedef enum wk_end { WK_PASSED, WK_FAILED, WK_SKIPPED, WK_CANCELLED } wk_end;

/* One run while the worker drives it. */
typedef struct wk_run {
    char id[SP_ID_SIZE], owner[SP_ID_SIZE], client[72];
    char sbx[SP_ID_SIZE], helper[SP_ID_SIZE];
    char rkey[RDS_KEY_MAX], ekey[RDS_KEY_MAX];
    cJSON *spec;  /* the validated workflow (owned) */
    cJSON *steps; /* the step results, one object per step (owned) */
    int from_step;
    char err_code[32];
    char err_msg[256];
} wk_run;

/* wk_run.c */
/* Drive the run of queue entry e to its end (or fail it as lost) and
 * finish the entry. */
void wk_run_entry(const sp_queue *q, const queue_entry *e);
/* Publish an event {type, data} on the run's stream (data JSON text or,
 * for text types, text). */
void wk_event(wk_run *w, const char *type, const char *data, size_t len);
/* 1 if the run was asked to stop (its record's cancel). */
int wk_cancelled(wk_run *w);
/* Set field name of the run's record to value. */
void wk_set(wk_run *w, const char *name, const char *value);

/* wk_steps.c */
/* Run step s of w into its result object res (status set by the
 * caller from the return value; fields added here). */
wk_end wk_step(wk_run *w, int s, cJSON *res);

/* wk_findings.c */
/* The findings {file, line, column?, message} a checker printed in
 * out[0..len): Python's SyntaxError, node --check, bash -n and cc
 * diagnostics; at most WK_FINDINGS_MAX. A new array (caller frees). */
#define WK_FINDINGS_MAX 50
cJSON *wk_findings(const char *out, size_t len);
/* s[0..n) as a JSON string of valid UTF-8, its last max bytes only (new,
 * caller frees). */
cJSON *wk_text(const char *s, size_t n, size_t max);

/* wk_sched.c */
/* Start the runs whose schedule is due (each taken by one worker only). */
void wk_sched_tick(void);

#endif
