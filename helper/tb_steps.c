/* tb_steps.c: each instruction after FROM, and what ends a build:
 * meta.json published, or the version removed; imports of tarballs. */
#include "tb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sp_tspec.h"

#define TB_ENV_MAX 160

static const char copy_script[] =
    "set -e; d=\"$1\"; n=\"$2\"; shift 2\n"
    "while [ $# -gt 0 ]; do s=\"$1\"; b=\"$2\"; shift 2\n"
    "  if [ -d \"$s\" ]; then mkdir -p \"$d\"; cp -a \"$s/.\" \"$d/\"\n"
    "  elif [ \"$n\" -gt 1 ] || [ \"${d%/}\" != \"$d\" ] || [ -d \"$d\" ]; "
    "then mkdir -p \"$d\"; cp -a \"$s\" \"$d/$b\"\n"
    "  else mkdir -p \"$(dirname \"$d\")\"; cp -a \"$s\" \"$d\"; fi\n"
    "done\n";

/* Steps run as root until a USER step (which also becomes the template's
 * user; without one, the base's stays: `user` for a Debian base). */
static unsigned step_uid, step_gid;

/* Build arguments (ARG) seen by RUN steps, beside the template's ENV. */
static char *build_vars[TB_ENV_MAX];
static size_t nbuild_vars;

/* "K=V" of the template's ENV, the build's ARGs, PATH and HOME. */
static size_t tb_env(char **env, size_t max)
{
    static char home[600];
    cJSON *e, *vars = cJSON_GetObjectItem(tb.meta, "env");
    size_t n = 0;

    env[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:"
               "/bin";
    /* The step's user's home: root's until a USER step. */
    snprintf(home, sizeof home, "HOME=%s",
             step_uid == 0
                 ? "/root"
                 : cJSON_GetStringValue(cJSON_GetObjectItem(tb.meta, "home")));
    env[n++] = home;
    cJSON_ArrayForEach(e, vars)
    {
        char *kv = NULL;

        if (n + 1 < max && cJSON_IsString(e) &&
            asprintf(&kv, "%s=%s", e->string, e->valuestring) > 0)
            env[n++] = kv; /* freed at exit */
    }
    for (size_t i = 0; i < nbuild_vars && n + 1 < max; i++)
        env[n++] = build_vars[i];
    env[n] = NULL;
    return n;
}

/* A step's program in the build sandbox, as uid (root: 0) in the workdir. */
static int tb_step_run(char *const argv[], int as_root, const ts_step *st,
                       size_t no)
{
    char *env[TB_ENV_MAX + 8], err[512];
    unsigned uid = as_root ? 0 : step_uid;
    unsigned gid = as_root ? 0 : step_gid;
    int rc;

    tb_env(env, sizeof env / sizeof env[0]);
    rc = tb_run(argv, env, uid, gid,
                cJSON_GetStringValue(cJSON_GetObjectItem(tb.meta, "workdir")),
                err, sizeof err);
    if (rc < 0)
        return tb_fail(TB_EXIT_FAILED, "step %zu (line %d): %s", no, st->line,
                       err);
    if (rc != 0)
        return tb_fail(TB_EXIT_FAILED,
                       "step %zu (line %d): exited with status %d", no,
                       st->line, rc);
    return 0;
}

static void meta_set_str(const char *k, const char *v)
{
    cJSON_DeleteItemFromObject(tb.meta, k);
    cJSON_AddStringToObject(tb.meta, k, v);
}

static int tb_workdir(const ts_step *st, size_t no)
{
    char uid[16];

    snprintf(uid, sizeof uid, "%u:%u", step_uid, step_gid);
    char *argv[] = {"/bin/sh",
                    "-c",
                    "[ -d \"$1\" ] || { mkdir -p -- \"$1\" && chown \"$2\" "
                    "\"$1\"; }",
                    "sh",
                    st->value,
                    uid,
                    NULL};
    meta_set_str("workdir", "/");
    if (tb_step_run(argv, 1, st, no) != 0)
        return TB_EXIT_FAILED;
    meta_set_str("workdir", st->value);
    return 0;
}

/* COPY: the sources staged in the tree (a fresh directory of a random
 * name at its top), then copied to the destination inside the build
 * sandbox, where no link can lead out of the tree. */
static int tb_copy(const ts_step *st, size_t no)
{
    char stage[4400], rnd[8], name[32], *argv[2 * TS_COPY_MAX + 8];
    unsigned char r[6];
    size_t n = 0, k;
    int rc;

    if (!tb.context)
        return tb_fail(TB_EXIT_BAD, "line %d: COPY without a build context",
                       st->line);
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return tb_fail(TB_EXIT_FAILED, "getrandom failed");
    snprintf(rnd, sizeof rnd, "%02x%02x%02x", r[0], r[1], r[2]);
    snprintf(name, sizeof name, "/.sp-copy-%s", rnd);
    snprintf(stage, sizeof stage, "%s%s", tb.rootfs, name);
    if (mkdir(stage, 0700) < 0)
        return tb_fail(TB_EXIT_FAILED, "mkdir %s: %s", stage, strerror(errno));
    for (k = 0; st->srcs[k]; k++)
        ;
    argv[n++] = "/bin/sh", argv[n++] = "-c", argv[n++] = (char *)copy_script;
    argv[n++] = "sh", argv[n++] = st->dest;
    argv[n++] = k > 1 ? "2" : "1";
    rc = 0;
    for (size_t i = 0; st->srcs[i] && rc == 0; i++) {
        char from[4400], to[4500];
        const char *base = strrchr(st->srcs[i], '/');

        snprintf(from, sizeof from, "%s/%s", tb.context, st->srcs[i]);
        snprintf(to, sizeof to, "%s/%zu", stage, i);
        char *cp[] = {"/bin/cp", "-a", "--", from, to, NULL};
        if (access(from, F_OK) != 0)
            rc = tb_fail(TB_EXIT_BAD,
                         "line %d: COPY %s: not in the build "
                         "context",
                         st->line, st->srcs[i]);
        else if (tb_exec(cp) != 0)
            rc = tb_fail(TB_EXIT_FAILED, "copying %s failed", st->srcs[i]);
        if (asprintf(&argv[n++], "%s/%zu", name, i) < 0)
            rc = TB_EXIT_FAILED;
        argv[n++] = (char *)(base ? base + 1 : st->srcs[i]);
    }
    argv[n] = NULL;
    if (rc == 0)
        rc = tb_step_run(argv, 1, st, no);
    sbx_rm_tree(stage);
    return rc;
}

int tb_step(const ts_step *st, size_t no)
{
    tb_say("step %zu (line %d)", no, st->line);
    switch (st->kind) {
    case TS_RUN: {
        char *sh[] = {"/bin/sh", "-c", st->shell, NULL};
        return tb_step_run(st->argv ? st->argv : sh, 0, st, no);
    }
    case TS_ENV: {
        cJSON *env = cJSON_GetObjectItem(tb.meta, "env");
        cJSON_DeleteItemFromObject(env, st->name);
        cJSON_AddStringToObject(env, st->name, st->value);
        return 0;
    }
    case TS_ARG:
        if (st->value && nbuild_vars < TB_ENV_MAX &&
            asprintf(&build_vars[nbuild_vars], "%s=%s", st->name, st->value) >
                0)
            nbuild_vars++;
        return 0;
    case TS_WORKDIR:
        return tb_workdir(st, no);
    case TS_USER: {
        unsigned u, g;
        char home[512], name[64];
        if (tb_user_lookup(st->value, &u, &g, home, sizeof home, name,
                           sizeof name) < 0)
            return tb_fail(TB_EXIT_BAD, "line %d: USER %s: no such user",
                           st->line, st->value);
        tb_meta_user(st->value);
        step_uid = u, step_gid = g;
        return 0;
    }
    case TS_COPY:
        return tb_copy(st, no);
    }
    return TB_EXIT_FAILED;
}

int tb_publish(const char *vdir)
{
    char tmp[4400], path[4400], *text;
    FILE *f;

    snprintf(path, sizeof path, "%s/.sp", tb.rootfs);
    rmdir(path); /* sp-init's mount point, made by the build sandbox */
    meta_set_str("name", tb.name);
    meta_set_str("version", tb.version);
    cJSON_DeleteItemFromObject(tb.meta, "owner");
    if (tb.owner)
        cJSON_AddStringToObject(tb.meta, "owner", tb.owner);
    cJSON_DeleteItemFromObject(tb.meta, "maker");
    if (tb.maker)
        cJSON_AddStringToObject(tb.meta, "maker", tb.maker);
    cJSON_DeleteItemFromObject(tb.meta, "created_at");
    cJSON_AddNumberToObject(tb.meta, "created_at", (double)time(NULL));
    text = cJSON_Print(tb.meta);
    snprintf(tmp, sizeof tmp, "%s/meta.json.tmp", vdir);
    snprintf(path, sizeof path, "%s/%s/meta.json", tb.dir, tb.name);
    f = fopen(tmp, "we");
    if (!text || !f || fputs(text, f) < 0 || fclose(f) != 0 ||
        rename(tmp, path) < 0) {
        free(text);
        return tb_fail(TB_EXIT_FAILED, "writing meta.json failed");
    }
    free(text);
    return 0;
}

/* After an import: no device nodes, no set-id bits (said in the log). */
static int tb_neutralise(void)
{
    char *dev[] = {"/usr/bin/find",
                   tb.rootfs,
                   "-xdev",
                   "(",
                   "-type",
                   "b",
                   "-o",
                   "-type",
                   "c",
                   ")",
                   "-printf",
                   "removed device node /%P\\n",
                   "-delete",
                   NULL};
    char *sid[] = {"/usr/bin/find",
                   tb.rootfs,
                   "-xdev",
                   "-type",
                   "f",
                   "-perm",
                   "/6000",
                   "-printf",
                   "cleared set-id bits of /%P\\n",
                   "-exec",
                   "chmod",
                   "ug-s",
                   "{}",
                   "+",
                   NULL};

    return tb_exec(dev) == 0 && tb_exec(sid) == 0 ? 0 : -1;
}

int tb_import(const char *tarball)
{
    unsigned u, g;
    char home[512], who[64] = "root";

    tb_say("importing %s", tarball);
    /* bsdtar's defaults refuse absolute names, ".." and extracting
     * through a link; --numeric-owner: ids as they are in the image. */
    char *argv[] = {"/usr/bin/bsdtar",
                    "-x",
                    "-p",
                    "--numeric-owner",
                    "-f",
                    (char *)tarball,
                    "-C",
                    tb.rootfs,
                    NULL};
    if (tb_exec(argv) != 0)
        return tb_fail(TB_EXIT_BAD,
                       "the tarball could not be extracted "
                       "(absolute names, \"..\" or links out are refused)");
    if (tb_neutralise() != 0)
        return tb_fail(TB_EXIT_FAILED, "neutralising the tree failed");
    tb.meta = cJSON_CreateObject();
    cJSON_AddObjectToObject(tb.meta, "env");
    cJSON_AddStringToObject(tb.meta, "from", "import");
    if (tb_user_lookup("1000", &u, &g, home, sizeof home, who, sizeof who) < 0)
        snprintf(who, sizeof who, "root");
    tb_meta_user(who);
    cJSON_AddStringToObject(
        tb.meta, "workdir",
        cJSON_GetStringValue(cJSON_GetObjectItem(tb.meta, "home")));
    return 0;
}
