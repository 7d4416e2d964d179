/* sp_workflow.h: what the workflows handler (sp-workflows) and the worker
 * (sp-worker) share about a workflow run: its steps, its record
 * wfrun:<id> (sp_keys.h), the subject's history and the queue the worker
 * consumes (sp_queue.h). A run is made in one place, wf_run_start, for a
 * POST, a retry and a schedule alike.
 *
 * The record's fields: owner, workflow (wf_ id), status (queued, running,
 * succeeded, failed, cancelled), spec (the validated workflow as JSON:
 * docs/DESIGN.md §4.3 "workflows"), steps (a JSON array of step results),
 * from_step (a retry starts there), retry_of, client (a clientId),
 * created/started/ended (Unix ms), error {code, message}, and while it
 * runs sandbox, helper, exe (the current step's execution) and cancel. */
#ifndef SP_WORKFLOW_H
#define SP_WORKFLOW_H

#include "sp_queue.h"
#include "sp_status.h"

#define WF_GROUP "workers" /* the queue's consumer group */
/* An active run (KEY_WFACTIVE) stops counting this long after it was
 * queued, should its end never be recorded. */
#define WF_ACTIVE_LAPSE_MS (24LL * 3600 * 1000)

/* The steps in order: enum name, name. */
#define WF_STEPS(X)                                                            \
    X(WF_STEP_INPUTS, "inputs")   /* code, files and objects written */        \
    X(WF_STEP_SYNTAX, "syntax")   /* the language's syntax check */            \
    X(WF_STEP_TESTS, "tests")     /* validate.tests */                         \
    X(WF_STEP_LINT, "lint")       /* validate.lint */                          \
    X(WF_STEP_RUN, "run")         /* run.cmd or the entrypoint */              \
    X(WF_STEP_OUTPUTS, "outputs") /* outputs.paths stored */

typedef enum wf_step {
#define WF_STEP_ENUM(e, name) e,
    WF_STEPS(WF_STEP_ENUM)
#undef WF_STEP_ENUM
        WF_STEP_COUNT
} wf_step;

/* The name of step s ("" if out of range), and the step named name
 * (WF_STEP_COUNT if none). */
const char *wf_step_name(int s);
int wf_step_find(const char *name);

/* A run to make. Strings stay the caller's. */
typedef struct wf_run_new {
    const char *owner;
    const char *workflow; /* wf_ id */
    const char *spec;     /* the validated workflow, JSON text */
    const char *client;   /* clientId, or NULL */
    const char *retry_of; /* the run retried, or NULL */
    int from_step;        /* a retry's first step to run again */
    const char *steps;    /* a retry's earlier step results (JSON), or NULL */
} wf_run_new;

/* Record run n as queued (a new wfr_ id into id_out, SP_ID_SIZE), add it
 * to its owner's history (the newest SP_WORKFLOW_RUNS_MAX kept), count it
 * among the owner's active runs, and add it to the queue. SP_OK, or
 * SP_E_RATE_LIMITED (SP_WORKFLOW_MAX_ACTIVE runs queued or running),
 * SP_E_UNAVAILABLE (Redis) / SP_E_INTERNAL (no id). */
sp_status wf_run_start(const wf_run_new *n, char *id_out);

/* Run id of owner ended (or will never start): it counts no more. */
void wf_run_ended(const char *owner, const char *id);

/* q set up on the workflow queue for consumer (NULL: a producer). 0 or
 * -1. */
int wf_queue(sp_queue *q, const char *consumer);

#endif
