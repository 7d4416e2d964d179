/* hd_tpl_ops.c: what the helper does with templates: the list published
 * to Redis for the API (every HD_TPL_SYNC_MS, and at once after a build or
 * a delete), versions that neither meta.json nor a live sandbox uses
 * removed, template_delete. */
#include "hd.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HD_TPL_SYNC_MS 5000

volatile int hd_tpl_dirty = 1; /* publish the list at the next tick */

static const char *meta_str(const cJSON *m, const char *k)
{
    const char *v =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, k));
    return v ? v : "";
}

static int hd_tpl_in_use(const char *name, const char *version)
{
    for (const hd_sandbox *s = hd_sandboxes; s != NULL; s = s->next)
        if (s->tpl && strcmp(s->tpl->name, name) == 0 &&
            (!version || strcmp(s->tpl->version, version) == 0))
            return 1;
    return hd_sandbox_making_tpl(name, version);
}

/* Versions of name that meta.json does not name and no sandbox uses. */
static void hd_tpl_prune(const char *name, const char *current)
{
    char path[HD_PATH_MAX + 256];
    struct dirent *de;
    DIR *d;

    if (hd_tpl_building(name))
        return; /* its new version is not named yet */
    snprintf(path, sizeof path, "%s/%s", hd_tpl_dir(), name);
    d = opendir(path);
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] != 'v' || strcmp(de->d_name, current) == 0 ||
            hd_tpl_in_use(name, de->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s/%s", hd_tpl_dir(), name, de->d_name);
        log_info("removing unused template version %s", path);
        hd_tpl_discard(path);
    }
    if (d)
        closedir(d);
}

/* The list, in Redis: tpl:<name> for each, the names' set replaced in one
 * RENAME. */
static void hd_tpl_publish(void)
{
    char dk[RDS_KEY_MAX], nk[RDS_KEY_MAX], k[RDS_KEY_MAX];
    struct dirent *de;
    DIR *d = opendir(hd_tpl_dir());

    if (d == NULL || key_of(dk, sizeof dk, KEY_TPLS, NULL) != 0 ||
        key_of(nk, sizeof nk, KEY_TPLS_NEW, hd_helper_id) != 0) {
        if (d)
            closedir(d);
        return;
    }
    hd_pub("DEL %s", nk);
    hd_pub("SADD %s host", nk);
    while ((de = readdir(d)) != NULL) {
        cJSON *m = hd_tpl_meta(de->d_name);
        char *js = m ? cJSON_PrintUnformatted(m) : NULL;

        if (js && key_of(k, sizeof k, KEY_TPL, de->d_name) == 0) {
            hd_pub("HSET %s meta %s owner %s", k, js, meta_str(m, "owner"));
            hd_pub("SADD %s %s", nk, de->d_name);
            hd_tpl_prune(de->d_name, meta_str(m, "version"));
        }
        free(js);
        cJSON_Delete(m);
    }
    closedir(d);
    hd_pub("RENAME %s %s", nk, dk);
}

void hd_tpl_register_now(const char *name)
{
    char k[RDS_KEY_MAX], dk[RDS_KEY_MAX];
    cJSON *m = hd_tpl_meta(name);
    char *js = m ? cJSON_PrintUnformatted(m) : NULL;

    if (js && key_of(k, sizeof k, KEY_TPL, name) == 0 &&
        key_of(dk, sizeof dk, KEY_TPLS, NULL) == 0) {
        freeReplyObject(
            rds_cmd("HSET %s meta %s owner %s", k, js, meta_str(m, "owner")));
        freeReplyObject(rds_cmd("SADD %s %s", dk, name));
    }
    free(js);
    cJSON_Delete(m);
}

void hd_tpl_tick(long long now)
{
    static long long last;

    if (hd_tpl_dirty || now - last >= HD_TPL_SYNC_MS) {
        hd_tpl_dirty = 0;
        last = now;
        hd_tpl_publish();
    }
}

/* template_delete {name, owner}: a template nobody's sandbox uses, made by
 * this subject (built-ins have no maker and stay). */
void hd_op_tpl_delete(hd_sandbox *none, hd_job *job)
{
    const char *name = hd_arg_str(job->args, "name");
    const char *subject = hd_arg_str(job->args, "owner");
    char path[HD_PATH_MAX + 128], k[RDS_KEY_MAX];
    cJSON *m = hd_tpl_meta(name);
    const char *owner = meta_str(m, "owner"), *maker = meta_str(m, "maker");

    (void)none;
    if (m == NULL || (owner[0] && strcmp(owner, subject) != 0))
        hd_reply_err(job->rid, SP_E_NOT_FOUND, "no such template");
    else if (strcmp(maker, subject) != 0)
        hd_reply_err(job->rid, SP_E_FORBIDDEN,
                     "only the subject that made a template may delete it");
    else if (hd_tpl_in_use(name, NULL) || hd_tpl_building(name))
        hd_reply_err(job->rid, SP_E_CONFLICT,
                     "the template is in use by a sandbox or a build");
    else {
        snprintf(path, sizeof path, "%s/%s", hd_tpl_dir(), name);
        if (hd_tpl_discard(path) != 0) {
            hd_reply_err(job->rid, SP_E_INTERNAL, "could not remove it");
        } else {
            if (key_of(k, sizeof k, KEY_TPL, name) == 0)
                hd_pub("DEL %s", k);
            hd_tpl_dirty = 1;
            hd_reply(job->rid, cJSON_CreateObject(), NULL, 0);
        }
    }
    cJSON_Delete(m);
}
