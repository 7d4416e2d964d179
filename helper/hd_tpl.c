/* hd_tpl.c: templates as the helper reads them: the meta.json that
 * sp-template wrote ($SP_STATE_DIR/templates/<name>), loaded for a
 * sandbox made from it; whether a build holds a name. What is done with
 * the list (published, pruned, deleted, built) is in hd_tpl_ops.c. */
#include "hd.h"
#include "sp_config.h"
#include "sp_tspec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* $SP_STATE_DIR then sub ("/templates"; ./state when unset) into dir,
 * once. */
static const char *hd_state_sub(char *dir, size_t len, const char *sub)
{
    if (!dir[0]) {
        const char *st = cfg_str(CFG_SP_STATE_DIR);

        snprintf(dir, len, "%s%s", st && *st ? st : "state", sub);
    }
    return dir;
}

const char *hd_tpl_dir(void)
{
    static char dir[HD_PATH_MAX];

    return hd_state_sub(dir, sizeof dir, "/templates");
}

const char *hd_tpl_ctx_root(void)
{
    static char dir[HD_PATH_MAX];

    return hd_state_sub(dir, sizeof dir, "/template-ctx");
}

cJSON *hd_tpl_meta(const char *name)
{
    return ts_meta_read(hd_tpl_dir(), name);
}

static const char *meta_str(const cJSON *m, const char *k)
{
    const char *v =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, k));
    return v ? v : "";
}

hd_tpl *hd_tpl_load(const char *name, const char *subject)
{
    cJSON *m = hd_tpl_meta(name);
    const char *owner = meta_str(m, "owner");
    hd_tpl *t;

    if (m == NULL || (owner[0] && strcmp(owner, subject) != 0) ||
        (t = calloc(1, sizeof *t)) == NULL) {
        cJSON_Delete(m); /* another subject's private one: not found */
        return NULL;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->version, sizeof t->version, "%s", meta_str(m, "version"));
    snprintf(t->rootfs, sizeof t->rootfs, "%s/%s/%s/rootfs", hd_tpl_dir(), name,
             t->version);
    snprintf(t->user, sizeof t->user, "%s", meta_str(m, "user"));
    snprintf(t->workdir, sizeof t->workdir, "%s", meta_str(m, "workdir"));
    t->env = cJSON_DetachItemFromObject(m, "env");
    if (!cJSON_IsObject(t->env)) {
        cJSON_Delete(t->env);
        t->env = cJSON_CreateObject();
    }
    cJSON_Delete(m);
    if (strchr(t->version, '/') || !t->version[0]) {
        hd_tpl_free(t);
        return NULL;
    }
    return t;
}

void hd_tpl_free(hd_tpl *t)
{
    if (t) {
        cJSON_Delete(t->env);
        free(t);
    }
}

/* Names of the builds this helper runs (claimed before sp-template takes
 * its lock, released after it exited); build threads and the main loop
 * share them. */
#define HD_TPL_CLAIMS 64
static char hd_tpl_claims[HD_TPL_CLAIMS][72];
static pthread_mutex_t hd_tpl_claims_lock = PTHREAD_MUTEX_INITIALIZER;

static int hd_tpl_claimed(const char *name)
{
    for (int i = 0; i < HD_TPL_CLAIMS; i++)
        if (strcmp(hd_tpl_claims[i], name) == 0)
            return 1;
    return 0;
}

int hd_tpl_claim(const char *name)
{
    int rc = -1;

    pthread_mutex_lock(&hd_tpl_claims_lock);
    for (int i = 0; i < HD_TPL_CLAIMS && rc < 0 && !hd_tpl_claimed(name); i++)
        if (hd_tpl_claims[i][0] == '\0') {
            snprintf(hd_tpl_claims[i], sizeof hd_tpl_claims[i], "%s", name);
            rc = 0;
        }
    pthread_mutex_unlock(&hd_tpl_claims_lock);
    return rc;
}

void hd_tpl_release(const char *name)
{
    pthread_mutex_lock(&hd_tpl_claims_lock);
    for (int i = 0; i < HD_TPL_CLAIMS; i++)
        if (strcmp(hd_tpl_claims[i], name) == 0)
            hd_tpl_claims[i][0] = '\0';
    pthread_mutex_unlock(&hd_tpl_claims_lock);
}

/* 1 while a build of name runs: ours (claimed), or any that holds its
 * lock (sp-template, from the command line too). */
int hd_tpl_building(const char *name)
{
    char path[HD_PATH_MAX + 128];
    int fd, busy;

    pthread_mutex_lock(&hd_tpl_claims_lock);
    busy = hd_tpl_claimed(name);
    pthread_mutex_unlock(&hd_tpl_claims_lock);
    if (busy)
        return 1;

    snprintf(path, sizeof path, "%s/.locks/%s", hd_tpl_dir(), name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        busy = flock(fd, LOCK_EX | LOCK_NB) < 0;
        close(fd); /* releases the lock we may have taken */
    }
    return busy;
}

/* A tree being removed on a worker. */
typedef struct hd_discard {
    hd_work w;
    char path[HD_PATH_MAX + 64];
} hd_discard;

static void hd_discard_run(hd_work *w)
{
    sbx_rm_tree(((hd_discard *)w)->path);
}

static void hd_discard_done(hd_work *w)
{
    free(w);
}

/* Remove path on a worker (a template's tree is hundreds of MB: never on
 * the main loop). */
static void hd_discard_later(const char *path)
{
    hd_discard *d = calloc(1, sizeof *d);

    if (d == NULL) {
        sbx_rm_tree(path);
        return;
    }
    snprintf(d->path, sizeof d->path, "%s", path);
    d->w.run = hd_discard_run;
    d->w.done = hd_discard_done;
    hd_work_submit(&d->w);
}

int hd_tpl_discard(const char *path)
{
    static unsigned n;
    char trash[HD_PATH_MAX + 64];

    snprintf(trash, sizeof trash, "%s/.trash", hd_tpl_dir());
    mkdir(trash, 0700);
    snprintf(trash, sizeof trash, "%s/.trash/%lld-%u", hd_tpl_dir(),
             hd_now_ms(), n++);
    if (rename(path, trash) != 0)
        return errno == ENOENT ? 0 : -1;
    hd_discard_later(trash);
    return 0;
}

void hd_tpl_discard_leftovers(void)
{
    char trash[HD_PATH_MAX + 64], path[HD_PATH_MAX + 400];
    struct dirent *de;
    DIR *d;

    snprintf(trash, sizeof trash, "%s/.trash", hd_tpl_dir());
    d = opendir(trash);
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", trash, de->d_name);
        hd_discard_later(path);
    }
    if (d)
        closedir(d);
}
