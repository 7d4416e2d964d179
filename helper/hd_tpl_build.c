/* hd_tpl_build.c: "template_build": a build asked for through the API.
 * The spec and the files of its context are written to a directory of
 * the build's own ($SP_STATE_DIR/template-ctx/<bld>, regular files only,
 * names checked), then sp-template runs on a thread of its own: every
 * line it prints is a "log" event of events:<bld> (the relay serves it as
 * GET /templates/{name}/builds/{id}/events), its end is the build's
 * record (tbuild:<bld>) and a final "result" event. The thread talks to
 * Redis on its own connection and never touches the main loop's state
 * except hd_tpl_dirty. A helper that stops kills its builds with it
 * (sp-template --die-with-parent); the next helper's start ends the
 * records of those builds as failed (hd_tpl_build_reap). */
#include "hd.h"
#include "sp_config.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"
#include "sp_tspec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HD_BUILD_ARGS    32
#define HD_BUILD_LINE    4096
#define HD_BUILD_EVENTS  "20000" /* MAXLEN of a build's event stream */
#define HD_BUILD_FILES   256
#define HD_BUILD_CTX_MAX (8 << 20)
#define TB_STOPPED       137 /* as a SIGKILL */

extern char **environ;

char hd_template_path[HD_PATH_MAX]; /* sp-template, beside sp-init */

typedef struct hd_build {
    char id[SP_ID_SIZE], name[72], dir[HD_PATH_MAX + 128];
    char *argv[HD_BUILD_ARGS + 1];
    int nargv;
} hd_build;

static void hd_build_free(hd_build *b)
{
    for (int i = 0; i < b->nargv; i++)
        free(b->argv[i]);
    free(b);
}

/* One more argument: v, or v + "/" + leaf when leaf is given. */
static int hd_build_arg(hd_build *b, const char *v, const char *leaf)
{
    if (b->nargv >= HD_BUILD_ARGS ||
        asprintf(&b->argv[b->nargv], "%s%s%s", v, leaf ? "/" : "",
                 leaf ? leaf : "") < 0)
        return -1;
    b->nargv++;
    return 0;
}

/* One file of the context, made under dir (parents too), never through a
 * link: every component is made here, as a directory or the file. */
static int hd_build_file(int dir, const char *rel, const char *data)
{
    char tmp[HD_PATH_MAX], *save = NULL, *part, *next;
    int fd = dup(dir), rc = -1;

    snprintf(tmp, sizeof tmp, "%s", rel);
    for (part = strtok_r(tmp, "/", &save); part && fd >= 0; part = next) {
        next = strtok_r(NULL, "/", &save);
        if (strcmp(part, ".") == 0 || strcmp(part, "..") == 0)
            break;
        if (next == NULL) {
            int f = openat(fd, part,
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                           0644);
            size_t n = strlen(data);
            rc = f >= 0 && write(f, data, n) == (ssize_t)n ? 0 : -1;
            if (f >= 0)
                close(f);
            break;
        }
        mkdirat(fd, part, 0755);
        int sub =
            openat(fd, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        fd = sub;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* The spec and the files into b->dir. NULL, or why not. */
static const char *hd_build_context(hd_build *b, const cJSON *a)
{
    char path[HD_PATH_MAX + 256];
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(a, "files"), *f;
    size_t total = 0, n = 0;
    int dir, fd;

    snprintf(path, sizeof path, "%s/ctx", b->dir);
    mkdir(hd_tpl_ctx_root(), 0700);
    if (mkdir(b->dir, 0700) < 0 || mkdir(path, 0700) < 0)
        return "could not make the build's directory";
    dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cJSON_ArrayForEach(f, files)
    {
        if (!cJSON_IsString(f) || ++n > HD_BUILD_FILES ||
            (total += strlen(f->valuestring)) > HD_BUILD_CTX_MAX ||
            hd_build_file(dir, f->string, f->valuestring) != 0) {
            close(dir);
            return "files: a path or a file is refused (relative paths, no "
                   "\"..\", each once, 8 MiB in all)";
        }
    }
    close(dir);
    snprintf(path, sizeof path, "%s/spec", b->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    const char *spec = hd_arg_str(a, "spec");
    if (fd < 0 || write(fd, spec, strlen(spec)) != (ssize_t)strlen(spec)) {
        if (fd >= 0)
            close(fd);
        return "could not write the spec";
    }
    close(fd);
    return NULL;
}

/*
 * The build's writes wait for Redis while it is away (up to
 * HD_BUILD_REDIS_WAIT_S): this thread is the build's own, and meanwhile
 * sp-template's lines wait in the pipe (and then sp-template itself), so
 * an outage loses no line and leaves no build "building" for ever.
 */
#define HD_BUILD_REDIS_WAIT_S 600
static int hd_build_redis_back(int *waited)
{
    if (*waited >= HD_BUILD_REDIS_WAIT_S)
        return 0;
    sleep(1);
    (*waited)++;
    return 1;
}

#define HD_BUILD_CMD(...)                                                      \
    do {                                                                       \
        int waited_ = 0;                                                       \
        redisReply *r_;                                                        \
        while ((r_ = rds_cmd(__VA_ARGS__)) == NULL &&                          \
               hd_build_redis_back(&waited_))                                  \
            ;                                                                  \
        freeReplyObject(r_);                                                   \
    } while (0)

/* One event of the build's stream (this thread's Redis connection). */
static void hd_build_event(const hd_build *b, const char *type, cJSON *data)
{
    char k[RDS_KEY_MAX], *js = cJSON_PrintUnformatted(data);

    if (js && key_of(k, sizeof k, KEY_EVENTS, b->id) == 0)
        HD_BUILD_CMD("XADD %s MAXLEN ~ %s * type %s data %s", k,
                     HD_BUILD_EVENTS, type, js);
    free(js);
    cJSON_Delete(data);
}

/* Lines of fd as log events until EOF; the last "error: " line kept. */
static void hd_build_pump(const hd_build *b, int fd, char *last, size_t lastlen)
{
    char line[HD_BUILD_LINE];
    FILE *f = fdopen(fd, "r");

    while (f && fgets(line, sizeof line, f)) {
        cJSON *d = cJSON_CreateObject();
        sp_buf u;

        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "error: ", 7) == 0)
            snprintf(last, lastlen, "%.500s", line + 7);
        buf_init(&u, sizeof line * 3);
        utf8_sanitize((const unsigned char *)line, strlen(line), &u);
        buf_append(&u, "", 1);
        cJSON_AddStringToObject(d, "line", u.data ? u.data : "");
        buf_free(&u);
        hd_build_event(b, "log", d);
    }
    if (f)
        fclose(f);
}

/* How the build ended, in its record and its last event. */
static void hd_build_end(const hd_build *b, int status, const char *why)
{
    char k[RDS_KEY_MAX], ended[32];
    const char *st = status == 0 ? "ready" : "failed";
    cJSON *d = cJSON_CreateObject();

    snprintf(ended, sizeof ended, "%lld", hd_now_ms() / 1000);
    if (key_of(k, sizeof k, KEY_TBUILD, b->id) == 0) {
        HD_BUILD_CMD("HSET %s status %s error %s ended %s", k, st,
                     status == 0 ? "" : why, ended);
        HD_BUILD_CMD("EXPIRE %s %lld", k, cfg_int(CFG_SP_EVENT_TTL));
    }
    cJSON_AddStringToObject(d, "status", st);
    cJSON_AddStringToObject(d, "template", b->name);
    cJSON_AddNumberToObject(d, "exit_code", status);
    if (status != 0)
        cJSON_AddStringToObject(d, "error", why);
    hd_build_event(b, "result", d);
    if (key_of(k, sizeof k, KEY_EVENTS, b->id) == 0)
        HD_BUILD_CMD("EXPIRE %s %lld", k, cfg_int(CFG_SP_EVENT_TTL));
}

static void *hd_build_thread(void *arg)
{
    hd_build *b = arg;
    posix_spawn_file_actions_t fa;
    char why[512] = "the build failed";
    int p[2] = {-1, -1}, status = -1, ws;
    pid_t pid = -1;

    if (pipe2(p, O_CLOEXEC) == 0) {
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        posix_spawn_file_actions_adddup2(&fa, p[1], 2);
        if (posix_spawn(&pid, hd_template_path, &fa, NULL, b->argv, environ) !=
            0)
            pid = -1;
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        hd_build_pump(b, p[0], why, sizeof why);
    }
    while (pid > 0 && waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (pid > 0)
        status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    if (status == 0)
        hd_tpl_register_now(b->name); /* listed before it is said ready */
    hd_build_end(b, status, why);
    sbx_rm_tree(b->dir);
    hd_tpl_release(b->name);
    hd_tpl_dirty = 1;
    log_info("template build %s of %s ended: %d", b->id, b->name, status);
    hd_build_free(b);
    return NULL;
}

/* sp-template's command line for the job's build. */
static int hd_build_argv(hd_build *b, const cJSON *a, const char *owner)
{
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(a, "args"), *it;
    char kv[8192];

    if (hd_build_arg(b, hd_template_path, NULL) ||
        hd_build_arg(b, "build", NULL) || hd_build_arg(b, b->name, NULL) ||
        hd_build_arg(b, b->dir, "spec") || hd_build_arg(b, b->dir, "ctx") ||
        hd_build_arg(b, "--die-with-parent", NULL) ||
        hd_build_arg(b, "--maker", NULL) || hd_build_arg(b, owner, NULL))
        return -1;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "private")) &&
        (hd_build_arg(b, "--private", NULL) || hd_build_arg(b, owner, NULL)))
        return -1;
    cJSON_ArrayForEach(it, args)
    {
        if (!cJSON_IsString(it))
            return -1;
        snprintf(kv, sizeof kv, "%s=%s", it->string, it->valuestring);
        if (hd_build_arg(b, "--arg", NULL) || hd_build_arg(b, kv, NULL))
            return -1;
    }
    return 0;
}

/* template_build {build, name, spec, owner, private, args, files}. */
void hd_op_tpl_build(hd_sandbox *none, hd_job *job)
{
    const cJSON *a = job->args;
    const char *owner = hd_arg_str(a, "owner"), *err;
    cJSON *m = hd_tpl_meta(hd_arg_str(a, "name")), *rep;
    const char *maker = cJSON_GetStringValue(cJSON_GetObjectItem(m, "maker"));
    hd_build *b = calloc(1, sizeof *b);
    pthread_t t;

    (void)none;
    snprintf(b->id, sizeof b->id, "%s", hd_arg_str(a, "build"));
    snprintf(b->name, sizeof b->name, "%s", hd_arg_str(a, "name"));
    snprintf(b->dir, sizeof b->dir, "%s/%s", hd_tpl_ctx_root(), b->id);
    if (!ts_name_valid(b->name) || strcmp(b->name, "host") == 0 ||
        !id_valid_typed(b->id, "bld_"))
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad name or build id");
    else if (m != NULL && (maker == NULL || strcmp(maker, owner) != 0))
        hd_reply_err(job->rid, SP_E_FORBIDDEN,
                     "the template %s is another's (or built in)", b->name);
    else if (hd_tpl_building(b->name) || hd_tpl_claim(b->name) != 0)
        hd_reply_err(job->rid, SP_E_CONFLICT, "a build of %s is running",
                     b->name);
    else if ((err = hd_build_context(b, a)) != NULL ||
             hd_build_argv(b, a, owner) != 0) {
        hd_tpl_release(b->name);
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "%s",
                     err ? err : "bad build arguments");
    } else if (pthread_create(&t, NULL, hd_build_thread, b) != 0) {
        hd_tpl_release(b->name);
        hd_reply_err(job->rid, SP_E_UNAVAILABLE, "could not start the build");
    } else {
        pthread_detach(t);
        rep = cJSON_CreateObject();
        cJSON_AddStringToObject(rep, "build", b->id);
        hd_reply(job->rid, rep, NULL, 0);
        b = NULL; /* the thread's now */
    }
    if (b != NULL) {
        sbx_rm_tree(b->dir);
        hd_build_free(b);
    }
    cJSON_Delete(m);
}

void hd_tpl_build_reap(void)
{
    DIR *d = opendir(hd_tpl_ctx_root());
    struct dirent *de;

    while (d && (de = readdir(d)) != NULL) {
        hd_build b = {0};

        if (!id_valid_typed(de->d_name, "bld_"))
            continue;
        snprintf(b.id, sizeof b.id, "%.64s", de->d_name);
        snprintf(b.dir, sizeof b.dir, "%s/%s", hd_tpl_ctx_root(), b.id);
        hd_build_end(&b, TB_STOPPED, "the helper stopped during the build");
        sbx_rm_tree(b.dir);
    }
    if (d)
        closedir(d);
}
