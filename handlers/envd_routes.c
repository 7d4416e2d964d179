/* handlers/envd_routes.c: the envd family's route table and the sp-envd
 * program (the routes are in envd.c: /health; envd_process.c:
 * process.Process; envd_fs.c, envd_watch.c: filesystem.Filesystem;
 * envd_files.c:
 * /files). Routes are matched on SP_PATH,
 * the path as the client sent it (nginx gave the request to this family by
 * its E2b-Sandbox-* headers or host); every route authorizes itself with
 * the sandbox's token (envd_begin), never with an API key. */
#include "envd.h"

static const http_route envd_routes[] = {
    {"GET", "/health", envd_health, 0},
    {"GET", "/files", envd_files_get, 0},
    {"POST", "/files", envd_files_post, 0},
    {"POST", "/process.Process/Start", envd_start, 0},
    {"POST", "/process.Process/Connect", envd_connect, 0},
    {"POST", "/process.Process/List", envd_list, 0},
    {"POST", "/process.Process/SendInput", envd_send_input, 0},
    {"POST", "/process.Process/SendSignal", envd_send_signal, 0},
    {"POST", "/process.Process/CloseStdin", envd_close_stdin, 0},
    {"POST", "/process.Process/Update", envd_update, 0},
    {"POST", "/filesystem.Filesystem/Stat", envd_fs_stat, 0},
    {"POST", "/filesystem.Filesystem/ListDir", envd_fs_list, 0},
    {"POST", "/filesystem.Filesystem/MakeDir", envd_fs_mkdir, 0},
    {"POST", "/filesystem.Filesystem/Move", envd_fs_move, 0},
    {"POST", "/filesystem.Filesystem/Remove", envd_fs_remove, 0},
    {"POST", "/filesystem.Filesystem/WatchDir", envd_fs_watch, 0},
};

int main(void)
{
    return http_main("envd", envd_routes,
                     sizeof envd_routes / sizeof envd_routes[0], NULL);
}
