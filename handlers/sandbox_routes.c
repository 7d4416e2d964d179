/* handlers/sandbox_routes.c: the sandboxes family's route table and the
 * sp-sandboxes program (the routes are in sandboxes.c: life cycle;
 * sandbox_sessions.c: sessions; sandbox_pause.c: pause, resume, metrics;
 * sandbox_commands.c; sandbox_files.c; sandbox_watches.c;
 * sandbox_ports.c; templates.c; sandbox_snapshots.c; sandbox_workspaces.c,
 * whose periodic sync thread the program starts). */
#include "sandboxes.h"
#include "e2b.h"
#include "sp_auth.h"

static const http_route sbxh_routes[] = {
    {"POST", "/sandboxes", sbxh_post, AUTH_REQUIRED},
    {"GET", "/sandboxes", sbxh_list, AUTH_REQUIRED},
    {"GET", "/sandboxes/*", sbxh_get, AUTH_REQUIRED},
    {"DELETE", "/sandboxes/*", sbxh_delete, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/timeout", sbxh_timeout, AUTH_REQUIRED},
    {"PUT", "/sandboxes/*/network", sbxh_network_put, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/pause", sbxh_pause, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/resume", sbxh_resume, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/metrics", sbxh_metrics, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/ports", sbxh_ports, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/commands", sbxh_commands, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/commands/*", sbxh_exec_get, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/commands/*/output", sbxh_exec_output, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/commands/*/stdin", sbxh_exec_stdin, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/commands/*/signal", sbxh_exec_signal, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/commands/*/resize", sbxh_exec_resize, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/packages", sbxh_packages, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/files", sbxh_files_get, AUTH_REQUIRED},
    {"PUT", "/sandboxes/*/files", sbxh_files_put, AUTH_REQUIRED},
    {"DELETE", "/sandboxes/*/files", sbxh_files_delete, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/files", sbxh_files_post, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/tree", sbxh_tree, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/dirs", sbxh_dirs, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/watches", sbxh_watch_create, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/watches", sbxh_watch_list, AUTH_REQUIRED},
    {"DELETE", "/sandboxes/*/watches/*", sbxh_watch_delete, AUTH_REQUIRED},
    {"GET", "/sandboxes/*/watches/*/events", sbxh_watch_events, AUTH_REQUIRED},
    /* An EventSource sends no headers: ?access_token= too. */
    {"GET", "/sandboxes/*/watch", sbxh_watch_stream,
     AUTH_REQUIRED | AUTH_QUERY_TOKEN},
    {"POST", "/sandboxes/*/snapshots", sbxh_snapshot_create, AUTH_REQUIRED},
    {"POST", "/sandboxes/*/workspace/sync", sbxh_ws_sync_route,
     AUTH_REQUIRED},
    {"GET", "/snapshots", sbxh_snapshot_list, AUTH_REQUIRED},
    {"GET", "/snapshots/*", sbxh_snapshot_get, AUTH_REQUIRED},
    {"DELETE", "/snapshots/*", sbxh_snapshot_delete, AUTH_REQUIRED},
    {"POST", "/workspaces", sbxh_ws_create, AUTH_REQUIRED},
    {"GET", "/workspaces", sbxh_ws_list, AUTH_REQUIRED},
    {"GET", "/workspaces/*", sbxh_ws_get, AUTH_REQUIRED},
    {"DELETE", "/workspaces/*", sbxh_ws_delete, AUTH_REQUIRED},
    {"POST", "/api/sessions/*/initialize", sbxh_session_init, AUTH_REQUIRED},
    {"GET", "/templates", tplh_list, AUTH_REQUIRED},
    {"GET", "/templates/*", tplh_get, AUTH_REQUIRED},
    {"DELETE", "/templates/*", tplh_delete, AUTH_REQUIRED},
    {"POST", "/templates", tplh_post, AUTH_REQUIRED},
    {"GET", "/templates/*/builds/*", tplh_build_get, AUTH_REQUIRED},
    {"POST", "/api/sandboxes/upload", sbxh_session_upload, AUTH_REQUIRED},
    /* E2B's control plane (e2b_sandboxes.c); its other calls are the
     * routes above. */
    {"POST", "/v2/sandboxes", e2b_create, AUTH_REQUIRED},
    {"GET", "/v2/sandboxes", e2b_list, AUTH_REQUIRED},
    {"POST", "/v2/sandboxes/*/connect", e2b_connect, AUTH_REQUIRED},
};

int main(void)
{
    return http_main("sandboxes", sbxh_routes,
                     sizeof sbxh_routes / sizeof sbxh_routes[0], sbxh_ws_start);
}
