/* handlers/workflows.h: what the files of the workflows family share
 * (workflows.c: the route table and main; workflows_spec.c: a POST's
 * body validated into the spec the worker runs; workflows_runs.c: runs
 * made, read, listed, cancelled and retried; workflows_sched.c:
 * workflows and their schedules). The work itself is sp-worker's
 * (worker/wk_main.c); these only validate, enqueue and answer. */
#ifndef WORKFLOWS_H
#define WORKFLOWS_H

#include "sp_http.h"
#include "sp_workflow.h"

#include <cjson/cJSON.h>

/* The workflow a POST /workflows body describes, validated (each refusal
 * a 400 naming its field): a new spec (caller frees; docs/DESIGN.md §4.3
 * "workflows"), or NULL after having answered. */
cJSON *wfh_spec(http_req *r, const cJSON *body);

/* The schedule of body ("schedule": {cron} or {at}), validated: 0 with
 * *cron (may be NULL) and *first_ms (0: no schedule), or -1 after the 400
 * (a bad cron names its field as the rule). */
int wfh_schedule(http_req *r, const cJSON *body, const char **cron,
                 long long *first_ms);

/* Record workflow wf of the caller (name, spec, schedule) and, when
 * first_ms, put it in the schedule. 0, or -1 after the 503. */
int wfh_workflow_save(http_req *r, const char *wf, const char *name,
                      const char *spec, const char *cron, const char *client,
                      long long first_ms);

void wfh_post(http_req *r);
void wfh_get(http_req *r);
void wfh_delete(http_req *r);
void wfh_runs(http_req *r);
void wfh_run_get(http_req *r);
void wfh_run_cancel(http_req *r);
void wfh_run_retry(http_req *r);

#endif
