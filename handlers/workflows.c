/* handlers/workflows.c: the workflows family (sp-workflows): the route
 * table and main. A workflow's steps run in sp-worker; its events are
 * served by the relay (GET /workflows/runs/{id}/events, sse/). */
#include "workflows.h"

static const http_route wfh_routes[] = {
    {"POST", "/workflows", wfh_post, 1},
    {"GET", "/workflows/runs", wfh_runs, 1},
    {"GET", "/workflows/runs/*", wfh_run_get, 1},
    {"POST", "/workflows/runs/*/cancel", wfh_run_cancel, 1},
    {"POST", "/workflows/runs/*/retry", wfh_run_retry, 1},
    {"GET", "/workflows/*", wfh_get, 1},
    {"DELETE", "/workflows/*", wfh_delete, 1},
};

int main(void)
{
    return http_main("workflows", wfh_routes,
                     sizeof wfh_routes / sizeof wfh_routes[0], NULL);
}
