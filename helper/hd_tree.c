/* hd_tree.c: the operations tree_pack and tree_unpack — a sandbox's
 * writable layer or one of its directories as a tar archive in a spool
 * file, and an archive unpacked into one of its directories (snapshots
 * and workspaces; the handler moves archives between the spool and
 * object storage, the helper never holds a storage credential).
 *
 * The directory is resolved as the files API resolves a path
 * (hd_dir_open: openat2 RESOLVE_IN_ROOT, as the sandbox's user); the
 * layer is <dir>/disk/upper, which the helper made. tar runs on a worker
 * (sbx_tree.c: as the sandbox's own identity, unpacking where only the
 * target is writable), so the main loop never waits for it. A snapshot
 * of the layer of a running sandbox freezes it first (hd_sandbox_hold)
 * and thaws it when tar is done, whatever tar did, so the archive is one
 * moment of its files. */
#include "hd.h"
#include "sp_log.h"
#include "sp_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HD_TREE_LAYER "layer" /* args.what of the writable layer */

/* One pack or unpack on a worker. */
typedef struct hd_tree_work {
    hd_work w;
    hd_job *job;
    char sbx[SP_ID_SIZE];
    sbx_tree t;
    int held; /* the sandbox was frozen for it (hd_sandbox_hold) */
    long long queued_ms, tar_ms; /* when submitted; tar's own time */
    int rc;
    char err[512];
} hd_tree_work;

static void hd_tree_run(hd_work *w)
{
    hd_tree_work *tw = (hd_tree_work *)w;
    long long t = hd_now_ms();

    tw->rc = sbx_tree_run(&tw->t, tw->err, sizeof tw->err);
    tw->tar_ms = hd_now_ms() - t;
}

/* Thaw, answer ({size} of the archive after a pack), release. */
static void hd_tree_done(hd_work *w)
{
    hd_tree_work *tw = (hd_tree_work *)w;
    hd_sandbox *s = hd_find(tw->sbx); /* it may have ended meanwhile */
    struct stat st;
    cJSON *rep;

    if (tw->held && s != NULL)
        hd_sandbox_unhold(s);
    log_debug("sandbox %s: %s in %lld ms (tar %lld ms)", tw->sbx,
              tw->t.unpack ? "tree_unpack" : "tree_pack",
              hd_now_ms() - tw->queued_ms, tw->tar_ms);
    if (tw->rc != 0) {
        log_warn("sandbox %s: %s", tw->sbx, tw->err);
        /* tar's complaint is about the archive or the tree: the caller's. */
        hd_reply_err(tw->job->rid,
                     strncmp(tw->err, "tar failed", 10) == 0
                         ? (tw->t.unpack ? SP_E_INVALID_ARGUMENT
                                         : SP_E_CONFLICT)
                         : SP_E_UNAVAILABLE,
                     "%s", tw->err);
    } else {
        rep = cJSON_CreateObject();
        if (!tw->t.unpack && fstat(tw->t.archive, &st) == 0)
            cJSON_AddNumberToObject(rep, "size", (double)st.st_size);
        hd_reply(tw->job->rid, rep, NULL, 0);
    }
    close(tw->t.dir);
    close(tw->t.archive);
    if (tw->t.userns >= 0)
        close(tw->t.userns);
    hd_job_release(tw->job);
    free(tw);
}

/* The spool file of job (args.spool, hostile: sp_spool.h): a pack's
 * answer file (emptied) or an unpack's archive (removed from the spool
 * once open). An fd, or -1 after replying. */
static int hd_tree_spool(hd_job *job, int unpack)
{
    const char *name = hd_arg_str(job->args, "spool");
    off_t size;
    int dir = spool_dir(), fd;

    if (dir < 0) {
        hd_reply_err(job->rid, SP_E_UNAVAILABLE, "file spool unavailable");
        return -1;
    }
    fd = spool_open(dir, name, unpack ? O_RDONLY : O_WRONLY, &size);
    if (fd >= 0 && !unpack && ftruncate(fd, 0) != 0) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        log_warn("job %s: spool file refused: %s", job->entry, strerror(errno));
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT, "bad spool file");
        return -1;
    }
    if (unpack)
        spool_remove(dir, name);
    return fd;
}

/* The directory a job names (args.what or args.path: "layer" or a path
 * inside the sandbox) into tw->t (dir, userns, uid, layer); 0, or -1
 * after replying. */
static int hd_tree_target(hd_sandbox *s, hd_job *job, const char *what,
                          hd_tree_work *tw)
{
    char norm[HD_PATH_MAX];
    int userns = sbx_userns(s->sbx);

    tw->t.layer = strcmp(what, HD_TREE_LAYER) == 0;
    if (tw->t.layer) {
        tw->t.dir = sbx_upper_open(s->sbx);
        if (tw->t.dir < 0) {
            hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT,
                         "only a template's sandbox has a layer");
            return -1;
        }
    } else if ((tw->t.dir = hd_dir_open(s, job, what, norm, sizeof norm)) <
               0) {
        return -1;
    }
    /* The layer as the sandbox's root (its owners are kept), a directory
     * as its user (1000 inside; the host view's own uid). */
    tw->t.userns = userns >= 0 ? dup(userns) : -1;
    tw->t.uid = userns >= 0 ? (tw->t.layer ? 0 : 1000) : s->uid;
    if (userns >= 0 && tw->t.userns < 0) {
        close(tw->t.dir);
        hd_reply_err(job->rid, SP_E_UNAVAILABLE, "dup() failed");
        return -1;
    }
    return 0;
}

/* tree_pack and tree_unpack: the shared path of both. */
static void hd_tree_op(hd_sandbox *s, hd_job *job, int unpack)
{
    const char *what = hd_arg_str(job->args, unpack ? "path" : "what");
    hd_tree_work *tw = calloc(1, sizeof *tw);

    if (tw == NULL) {
        hd_reply_err(job->rid, SP_E_UNAVAILABLE, "out of memory");
        return;
    }
    tw->t.unpack = unpack;
    if (unpack && strcmp(what, HD_TREE_LAYER) == 0) {
        /* A layer is unpacked only before its overlay is mounted (the
         * create's args.layer): never under a running sandbox. */
        hd_reply_err(job->rid, SP_E_INVALID_ARGUMENT,
                     "a layer is unpacked at create only");
        free(tw);
        return;
    }
    if (hd_tree_target(s, job, what, tw) != 0) {
        free(tw);
        return;
    }
    if ((tw->t.archive = hd_tree_spool(job, unpack)) < 0) {
        close(tw->t.dir);
        if (tw->t.userns >= 0)
            close(tw->t.userns);
        free(tw);
        return;
    }
    if (tw->t.layer && (tw->held = hd_sandbox_hold(s)) < 0) {
        tw->rc = -1;
        snprintf(tw->err, sizeof tw->err, "could not freeze the sandbox");
        tw->held = 0;
    }
    snprintf(tw->sbx, sizeof tw->sbx, "%s", s->id);
    tw->job = job;
    job->held = 1; /* answered by hd_tree_done */
    tw->w.done = hd_tree_done;
    if (tw->rc != 0) {
        hd_tree_done(&tw->w);
        return;
    }
    tw->w.run = hd_tree_run;
    tw->queued_ms = hd_now_ms();
    hd_work_submit(&tw->w);
}

void hd_op_tree_pack(hd_sandbox *s, hd_job *job)
{
    hd_tree_op(s, job, 0);
}

void hd_op_tree_unpack(hd_sandbox *s, hd_job *job)
{
    hd_tree_op(s, job, 1);
}
