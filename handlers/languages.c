/* handlers/languages.c: the languages /execute runs (sp-execute): names
 * and aliases, the file extension of their code, and their versions as
 * probed from the host's runtimes at start (GET /languages). */
#include "execute.h"

#include <ctype.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static exe_lang exe_langs[] = {
    {"python",
     {"python3", "py", NULL},
     "py",
     {"python3", "--version", NULL},
     ""},
    {"javascript",
     {"js", "node", "nodejs", NULL},
     "js",
     {"node", "--version", NULL},
     ""},
    {"bash", {"sh", "shell", NULL}, "sh", {"bash", "--version", NULL}, ""},
    {"c", {"gcc", NULL}, "c", {"gcc", "-dumpfullversion", NULL}, ""},
};
#define EXE_NLANGS (sizeof exe_langs / sizeof exe_langs[0])

extern char **environ;

/* First line of `argv` (stdout and stderr), at start-up only. */
static void exe_probe(const char *const *argv, char *out, size_t outlen)
{
    posix_spawn_file_actions_t fa;
    int p[2], status;
    pid_t pid;
    ssize_t n;
    char buf[256], *s;

    snprintf(out, outlen, "unknown");
    if (pipe2(p, O_CLOEXEC) != 0)
        return;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) ==
        0) {
        close(p[1]);
        n = read(p[0], buf, sizeof buf - 1);
        waitpid(pid, &status, 0);
        if (n > 0) {
            buf[n] = '\0';
            buf[strcspn(buf, "\n")] = '\0';
            /* "Python 3.11.2", "v18.19.0", "GNU bash, version 5.2.15(1)" */
            s = strpbrk(buf, "0123456789");
            if (s != NULL) {
                s[strspn(s, "0123456789.")] = '\0';
                snprintf(out, outlen, "%s", s);
            }
        }
    } else {
        close(p[1]);
    }
    close(p[0]);
    posix_spawn_file_actions_destroy(&fa);
}

const exe_lang *lang_find(const char *name)
{
    char low[32];
    size_t i;
    for (i = 0; name[i] && i < sizeof low - 1; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    low[i] = '\0';
    for (size_t l = 0; l < EXE_NLANGS; l++) {
        if (strcmp(exe_langs[l].name, low) == 0)
            return &exe_langs[l];
        for (int a = 0; exe_langs[l].aliases[a]; a++) {
            if (strcmp(exe_langs[l].aliases[a], low) == 0)
                return &exe_langs[l];
        }
    }
    return NULL;
}

const char *lang_canonical(const char *name)
{
    const exe_lang *l = lang_find(name);
    return l ? l->name : NULL;
}

void lang_list(http_req *r)
{
    cJSON *root = cJSON_CreateObject(), *arr;
    arr = cJSON_AddArrayToObject(root, "languages");
    for (size_t l = 0; l < EXE_NLANGS; l++) {
        cJSON *o = cJSON_CreateObject(), *al;
        cJSON_AddStringToObject(o, "name", exe_langs[l].name);
        cJSON_AddStringToObject(o, "version", exe_langs[l].version);
        al = cJSON_AddArrayToObject(o, "aliases");
        for (int a = 0; exe_langs[l].aliases[a]; a++)
            cJSON_AddItemToArray(al,
                                 cJSON_CreateString(exe_langs[l].aliases[a]));
        cJSON_AddStringToObject(o, "extension", exe_langs[l].ext);
        cJSON_AddItemToArray(arr, o);
    }
    http_send_json(r, 200, root);
    cJSON_Delete(root);
}

void lang_probe(void)
{
    for (size_t l = 0; l < EXE_NLANGS; l++)
        exe_probe(exe_langs[l].version_argv, exe_langs[l].version,
                  sizeof exe_langs[l].version);
}
