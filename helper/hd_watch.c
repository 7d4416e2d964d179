/* hd_watch.c: file watches: the file events of a directory in a sandbox
 * (GET /sandboxes/{id}/watch, docs/DESIGN.md §4.2), from inotify to the
 * watch's event stream.
 *
 * Theory of operation
 * -------------------
 * A watch (op watch_start) belongs to one sandbox, which has at most
 * SP_WATCH_MAX_PER_SANDBOX of them. Its directory is resolved as every
 * file operation resolves a path (hd_dir_open: inside /workspace,
 * /uploaded_files or /tmp, with the sandbox user's rights, never through
 * a link out of them) and kept open O_PATH ("base"). Each watch has its
 * own inotify fd, which the main loop polls; inotify_add_watch is given
 * /proc/self/fd/<fd> of a directory opened below base with only real
 * directories on the way (hd_open_beneath: no symlink, no other mount), so
 * that nothing the code inside plants makes the helper watch a directory
 * of the host. A recursive watch adds every subdirectory, at start and as
 * they appear (or move in), up to SP_WATCH_MAX_DIRS directories per watch;
 * what lies in a directory that appears is reported as created, since it
 * may have been filled before its watch was added (a file may then be
 * reported twice).
 *
 * inotify's events become the watch's events, each {name (relative to the
 * watched directory), isDir}: IN_CREATE → create; IN_MODIFY and
 * IN_CLOSE_WRITE → write (one per name and read of the inotify fd: the
 * kernel already merges repeated IN_MODIFY); IN_ATTRIB → chmod; IN_DELETE
 * → remove; IN_MOVED_FROM and IN_MOVED_TO of one move (same cookie, same
 * read) → rename {name, newName}; a move out of the watched tree → rename
 * without newName, a move into it → create. Events are never dropped in
 * silence: inotify's queue overflowing, the directory limit, or the
 * helper's write queue being full (Redis away) give an overflow {reason}
 * event. The stream (watch:<id>:events) is capped at SP_WATCH_MAXLEN
 * entries and ends with end {reason}: stopped (watch_stop), idle (an
 * ephemeral watch nobody has read for SP_WATCH_GRACE s: the relay marks
 * watch:<id> watched_at while it streams it), path_deleted or path_moved
 * (the watched directory), sandbox_ended; record and stream then expire
 * after SP_EVENT_TTL. A helper that is gone has its watches ended by
 * lost_helper (sp_lost.h). */
#include "hd.h"
#include "sp_config.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define HD_WATCH_MASK                                                          \
    (IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB |          \
     IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |             \
     IN_EXCL_UNLINK | IN_ONLYDIR | IN_MASK_CREATE)
#define HD_WATCH_BUF      (64 * 1024) /* one read of an inotify fd */
#define HD_WATCH_READS    4           /* reads per pass of the main loop */
#define HD_WATCH_CHECK_MS 2000        /* watched_at read this often */
#define HD_WATCH_DEPTH    64          /* directories deep a scan goes */

/* A directory a watch covers. */
typedef struct hd_wdir {
    int wd;
    char *rel; /* "" for the watched directory, else "a/b" below it */
} hd_wdir;

typedef struct hd_watch {
    char id[SP_ID_SIZE];
    hd_sandbox *sbx;
    int ifd;  /* inotify */
    int base; /* O_PATH fd of the watched directory */
    int recursive, ephemeral;
    int capped;    /* the directory limit was reported */
    size_t lost;   /* events dropped: the write queue was full */
    hd_wdir *dirs; /* dirs[0] is the watched directory */
    size_t ndirs, cap;
    hd_evid evid;
    long long watched_ms, checked_ms;
    struct hd_watch *next;
} hd_watch;

/* What one read of the inotify fd has emitted: a write of the same name
 * right after another is the same write. */
typedef struct hd_batch {
    char last_write[HD_PATH_MAX];
} hd_batch;

static void hd_watch_end(hd_watch *w, const char *why);
static hd_watch *hd_watch_find(hd_sandbox *s, const char *id);

static void hd_watch_keys(const hd_watch *w, char *wk, char *vk, size_t n)
{
    key_of(wk, n, KEY_WATCH, w->id);
    key_of(vk, n, KEY_WATCH_EVENTS, w->id);
}

/* Append event type {json} to w's stream (queued, hd_pub). */
static void hd_watch_emit(hd_watch *w, const char *type, const char *json)
{
    char wk[RDS_KEY_MAX], vk[RDS_KEY_MAX], maxlen[RDS_NUM_SIZE],
        id[HD_EVID_SIZE];

    if (w->sbx->lost)
        return; /* lost_helper ended it */
    if (strcmp(type, "end") != 0 && !hd_pub_room(strlen(json) + 256)) {
        w->lost++;
        return;
    }
    hd_watch_keys(w, wk, vk, sizeof wk);
    snprintf(maxlen, sizeof maxlen, "%lld", cfg_int(CFG_SP_WATCH_MAXLEN));
    hd_evid_next(&w->evid, id);
    hd_pub("XADD %s MAXLEN ~ %s %s type %s data %s", vk, maxlen, id, type,
           json);
}

/* A file event: {name, isDir} and newName for a rename within the watch
 * (NULL: none). */
static void hd_watch_file_event(hd_watch *w, hd_batch *b, const char *type,
                                const char *name, const char *newname,
                                int isdir)
{
    cJSON *o;
    char *js;

    if (b != NULL && strcmp(type, "write") == 0) {
        if (strcmp(b->last_write, name) == 0)
            return;
        snprintf(b->last_write, sizeof b->last_write, "%s", name);
    } else if (b != NULL) {
        b->last_write[0] = '\0';
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    if (newname != NULL)
        cJSON_AddStringToObject(o, "newName", newname);
    cJSON_AddBoolToObject(o, "isDir", isdir);
    js = cJSON_PrintUnformatted(o);
    if (js != NULL)
        hd_watch_emit(w, type, js);
    free(js);
    cJSON_Delete(o);
}

/* overflow {reason}: events may be missing from here on. */
static void hd_watch_overflow(hd_watch *w, const char *reason)
{
    char js[128];

    snprintf(js, sizeof js, "{\"reason\":\"%s\"}", reason);
    hd_watch_emit(w, "overflow", js);
}

/* Watch directory rel (below base) too. Returns its index, or -1 (the
 * limit, which is reported once, or it is gone or not a real directory). */
static int hd_wdir_add(hd_watch *w, const char *rel)
{
    char self[64];
    int fd, wd = -1;
    hd_wdir *d;

    if (w->ndirs >= (size_t)cfg_int(CFG_SP_WATCH_MAX_DIRS)) {
        if (!w->capped)
            hd_watch_overflow(w, "max_dirs");
        w->capped = 1;
        return -1;
    }
    if (w->ndirs == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        hd_wdir *nd = realloc(w->dirs, cap * sizeof *nd);
        if (nd == NULL)
            return -1;
        w->dirs = nd;
        w->cap = cap;
    }
    hd_fs_as(w->sbx);
    fd = hd_open_beneath(w->base, rel[0] ? rel : ".", O_PATH | O_DIRECTORY);
    if (fd >= 0) {
        snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
        wd = inotify_add_watch(w->ifd, self, HD_WATCH_MASK);
        close(fd);
    }
    hd_fs_as(NULL);
    if (wd < 0)
        return -1;
    d = &w->dirs[w->ndirs];
    d->wd = wd;
    d->rel = strdup(rel);
    if (d->rel == NULL) {
        inotify_rm_watch(w->ifd, wd);
        return -1;
    }
    return (int)w->ndirs++;
}

static hd_wdir *hd_wdir_find(hd_watch *w, int wd)
{
    for (size_t i = 0; i < w->ndirs; i++) {
        if (w->dirs[i].wd == wd)
            return &w->dirs[i];
    }
    return NULL;
}

/* 1 if rel is prefix or lies below it. */
static int hd_rel_under(const char *rel, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(rel, prefix, n) == 0 && (rel[n] == '\0' || rel[n] == '/');
}

/* Stop watching prefix and every directory below it (never dirs[0]). */
static void hd_wdir_forget(hd_watch *w, const char *prefix)
{
    for (size_t i = 1; i < w->ndirs;) {
        if (!hd_rel_under(w->dirs[i].rel, prefix)) {
            i++;
            continue;
        }
        inotify_rm_watch(w->ifd, w->dirs[i].wd); /* EINVAL if gone: fine */
        free(w->dirs[i].rel);
        w->dirs[i] = w->dirs[--w->ndirs];
    }
}

/* Directory from moved to to (within the watch): the names below it. */
static void hd_wdir_rename(hd_watch *w, const char *from, const char *to)
{
    char buf[HD_PATH_MAX];

    for (size_t i = 1; i < w->ndirs; i++) {
        char *nr;
        if (!hd_rel_under(w->dirs[i].rel, from))
            continue;
        if ((size_t)snprintf(buf, sizeof buf, "%s%s", to,
                             w->dirs[i].rel + strlen(from)) >= sizeof buf ||
            (nr = strdup(buf)) == NULL)
            continue;
        free(w->dirs[i].rel);
        w->dirs[i].rel = nr;
    }
}

/* rel + "/" + name into out; -1 if it does not fit. */
static int hd_rel_join(char *out, size_t n, const char *rel, const char *name)
{
    size_t len =
        (size_t)snprintf(out, n, "%s%s%s", rel, rel[0] ? "/" : "", name);
    return len < n ? 0 : -1;
}

/* Watch the directories below rel (recursive watches), reporting what is
 * there as created when emit is set. */
static void hd_wdir_scan(hd_watch *w, const char *rel, int emit, int depth)
{
    char sub[HD_PATH_MAX];
    struct dirent *de;
    DIR *d;
    int fd;

    hd_fs_as(w->sbx);
    fd = hd_open_beneath(w->base, rel[0] ? rel : ".", O_RDONLY | O_DIRECTORY);
    hd_fs_as(NULL);
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        int isdir = de->d_type == DT_DIR;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            hd_rel_join(sub, sizeof sub, rel, de->d_name) != 0)
            continue;
        if (emit)
            hd_watch_file_event(w, NULL, "create", sub, NULL, isdir);
        if (isdir && depth < HD_WATCH_DEPTH && hd_wdir_add(w, sub) >= 0)
            hd_wdir_scan(w, sub, emit, depth + 1);
    }
    closedir(d);
}

/* A directory appeared at rel (made, or moved in): watched, and what it
 * holds reported. */
static void hd_wdir_appeared(hd_watch *w, const char *rel)
{
    if (w->recursive && hd_wdir_add(w, rel) >= 0)
        hd_wdir_scan(w, rel, 1, 1);
}

/* The IN_MOVED_TO of the same move as ev, later in [p, end), or NULL. */
static struct inotify_event *hd_move_pair(const struct inotify_event *ev,
                                          char *p, const char *end)
{
    while (p + sizeof(struct inotify_event) <= end) {
        struct inotify_event *e = (struct inotify_event *)p;
        if ((e->mask & IN_MOVED_TO) && e->cookie == ev->cookie)
            return e;
        p += sizeof *e + e->len;
    }
    return NULL;
}

/* A move out of dir d (name), paired with its IN_MOVED_TO when it is in
 * the rest of the read [rest, end) (marked handled there). */
static void hd_watch_moved(hd_watch *w, hd_batch *b,
                           const struct inotify_event *ev, const char *name,
                           char *rest, const char *end)
{
    struct inotify_event *to = hd_move_pair(ev, rest, end);
    hd_wdir *td = to != NULL ? hd_wdir_find(w, to->wd) : NULL;
    char newname[HD_PATH_MAX];
    int isdir = (ev->mask & IN_ISDIR) != 0;

    if (td == NULL || to->len == 0 ||
        hd_rel_join(newname, sizeof newname, td->rel, to->name) != 0) {
        hd_watch_file_event(w, b, "rename", name, NULL, isdir);
        if (isdir)
            hd_wdir_forget(w, name);
        return;
    }
    to->mask = 0; /* handled here */
    hd_watch_file_event(w, b, "rename", name, newname, isdir);
    if (isdir)
        hd_wdir_rename(w, name, newname);
}

/* One event of a directory of w. Returns 1 if w has ended (freed). */
static int hd_watch_one(hd_watch *w, hd_batch *b, struct inotify_event *ev,
                        char *rest, const char *end)
{
    hd_wdir *d = hd_wdir_find(w, ev->wd);
    char name[HD_PATH_MAX];
    int isdir = (ev->mask & IN_ISDIR) != 0;

    if (d == NULL || ev->mask == 0)
        return 0;
    if (d == &w->dirs[0] && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF |
                                         IN_UNMOUNT | IN_IGNORED))) {
        hd_watch_end(w,
                     ev->mask & IN_MOVE_SELF ? "path_moved" : "path_deleted");
        return 1;
    }
    if (ev->mask & IN_IGNORED) { /* a subdirectory went */
        free(d->rel);
        *d = w->dirs[--w->ndirs];
        return 0;
    }
    if (ev->len == 0 || hd_rel_join(name, sizeof name, d->rel, ev->name) != 0)
        return 0; /* an event of the directory itself */
    if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
        hd_watch_file_event(w, b, "create", name, NULL, isdir);
        if (isdir)
            hd_wdir_appeared(w, name);
    } else if (ev->mask & IN_MOVED_FROM) {
        hd_watch_moved(w, b, ev, name, rest, end);
    } else if (ev->mask & IN_DELETE) {
        hd_watch_file_event(w, b, "remove", name, NULL, isdir);
        if (isdir)
            hd_wdir_forget(w, name);
    } else if (ev->mask & (IN_MODIFY | IN_CLOSE_WRITE)) {
        hd_watch_file_event(w, b, "write", name, NULL, isdir);
    } else if (ev->mask & IN_ATTRIB) {
        hd_watch_file_event(w, b, "chmod", name, NULL, isdir);
    }
    return 0;
}

void hd_watch_read(hd_watch *w)
{
    static char buf[HD_WATCH_BUF]
        __attribute__((aligned(__alignof__(struct inotify_event))));
    hd_batch b;

    if (w->lost > 0 && hd_pub_room(4096)) {
        log_warn("watch %s: %zu events dropped (write queue full)", w->id,
                 w->lost);
        w->lost = 0;
        hd_watch_overflow(w, "buffer");
    }
    for (int i = 0; i < HD_WATCH_READS; i++) {
        ssize_t n = read(w->ifd, buf, sizeof buf);
        char *p = buf, *end;
        if (n <= 0)
            return;
        end = buf + n;
        b.last_write[0] = '\0';
        while (p + sizeof(struct inotify_event) <= end) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW)
                hd_watch_overflow(w, "queue");
            else if (hd_watch_one(w, &b, ev, p, end))
                return;
        }
    }
}

/* Free w (already unlinked from its sandbox). */
static void hd_watch_free(hd_watch *w)
{
    if (w == NULL)
        return;
    if (w->ifd >= 0)
        close(w->ifd);
    if (w->base >= 0)
        close(w->base);
    for (size_t i = 0; i < w->ndirs; i++)
        free(w->dirs[i].rel);
    free(w->dirs);
    free(w);
}

/* End w: its end event, its record ended, both expiring; freed. */
static void hd_watch_end(hd_watch *w, const char *why)
{
    char wk[RDS_KEY_MAX], vk[RDS_KEY_MAX], sk[RDS_KEY_MAX], js[128];
    long long ttl = cfg_int(CFG_SP_EVENT_TTL);

    log_info("watch %s ends: %s", w->id, why);
    snprintf(js, sizeof js, "{\"reason\":\"%s\"}", why);
    hd_watch_emit(w, "end", js);
    if (!w->sbx->lost) {
        /* Record first, then the stream's expiry: a reader that saw end
         * finds the record ended. */
        hd_watch_keys(w, wk, vk, sizeof wk);
        key_of(sk, sizeof sk, KEY_SBX_WATCHES, w->sbx->id);
        hd_pub("HSET %s status ended reason %s ended %lld", wk, why,
               hd_now_ms());
        hd_pub("EXPIRE %s %lld", wk, ttl);
        hd_pub("EXPIRE %s %lld", vk, ttl);
        hd_pub("SREM %s %s", sk, w->id);
    }
    for (hd_watch **pp = &w->sbx->watches; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    hd_watch_free(w);
}

/* A new watch of s from job's arguments, its directory open and watched
 * (the subdirectories too when recursive), norm its path; NULL after
 * answering the job. */
static hd_watch *hd_watch_new(hd_sandbox *s, hd_job *job, char *norm,
                              size_t normlen)
{
    hd_watch *w = calloc(1, sizeof *w);

    if (w == NULL) {
        hd_reply_err(job->rid, SP_E_INTERNAL, "out of memory");
        return NULL;
    }
    w->ifd = -1;
    snprintf(w->id, sizeof w->id, "%s", hd_arg_str(job->args, "id"));
    w->sbx = s;
    w->recursive =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(job->args, "recursive"));
    w->ephemeral =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(job->args, "ephemeral"));
    w->base = hd_dir_open(s, job, hd_arg_str(job->args, "path"), norm, normlen);
    if (w->base < 0) {
        hd_watch_free(w);
        return NULL;
    }
    w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->ifd < 0 || hd_wdir_add(w, "") != 0) {
        log_warn("watch %s: inotify failed: %s", w->id, strerror(errno));
        hd_reply_err(job->rid,
                     errno == ENOSPC || errno == EMFILE ? SP_E_UNAVAILABLE
                                                        : SP_E_INTERNAL,
                     "cannot watch this directory");
        hd_watch_free(w);
        return NULL;
    }
    if (w->recursive)
        hd_wdir_scan(w, "", 0, 1);
    w->watched_ms = w->checked_ms = hd_now_ms();
    return w;
}

void hd_op_watch_start(hd_sandbox *s, hd_job *job)
{
    char norm[HD_PATH_MAX], wk[RDS_KEY_MAX], vk[RDS_KEY_MAX], sk[RDS_KEY_MAX];
    long long n = 0, max = cfg_int(CFG_SP_WATCH_MAX_PER_SANDBOX);
    hd_watch *w;
    cJSON *rep;

    for (hd_watch *x = s->watches; x != NULL; x = x->next)
        n++;
    if (n >= max) {
        hd_reply_err(job->rid, SP_E_RATE_LIMITED,
                     "this sandbox has %lld watches already (the most)", max);
        return;
    }
    if (hd_watch_find(s, hd_arg_str(job->args, "id")) != NULL) {
        hd_reply_err(job->rid, SP_E_CONFLICT, "watch exists");
        return;
    }
    if ((w = hd_watch_new(s, job, norm, sizeof norm)) == NULL)
        return;
    w->next = s->watches;
    s->watches = w;
    hd_watch_keys(w, wk, vk, sizeof wk);
    key_of(sk, sizeof sk, KEY_SBX_WATCHES, s->id);
    hd_pub("HSET %s owner %s sandbox %s helper %s path %s recursive %d "
           "ephemeral %d status active created %lld watched_at %lld",
           wk, hd_arg_str(job->args, "owner"), s->id, hd_helper_id, norm,
           w->recursive, w->ephemeral, w->watched_ms, w->watched_ms);
    hd_pub("SADD %s %s", sk, w->id);
    rep = cJSON_CreateObject();
    cJSON_AddStringToObject(rep, "watch_id", w->id);
    cJSON_AddStringToObject(rep, "path", norm);
    cJSON_AddBoolToObject(rep, "recursive", w->recursive);
    cJSON_AddNumberToObject(rep, "dirs", (double)w->ndirs);
    hd_reply(job->rid, rep, NULL, 0);
}

void hd_op_watch_stop(hd_sandbox *s, hd_job *job)
{
    hd_watch *w = hd_watch_find(s, hd_arg_str(job->args, "watch"));

    if (w == NULL) {
        hd_reply_err(job->rid, SP_E_NOT_FOUND, "watch not found");
        return;
    }
    hd_watch_end(w, "stopped");
    hd_reply(job->rid, cJSON_CreateObject(), NULL, 0);
}

static hd_watch *hd_watch_find(hd_sandbox *s, const char *id)
{
    for (hd_watch *w = s->watches; w != NULL && id != NULL; w = w->next) {
        if (strcmp(w->id, id) == 0)
            return w;
    }
    return NULL;
}

int hd_watch_fd(const hd_watch *w)
{
    return w->ifd;
}

hd_watch *hd_watch_next(const hd_watch *w)
{
    return w->next;
}

/* 1 if ephemeral watch w has had no reader for SP_WATCH_GRACE seconds;
 * the relay's watched_at is read every HD_WATCH_CHECK_MS. */
static int hd_watch_idle(hd_watch *w, long long now_ms)
{
    char k[RDS_KEY_MAX];
    redisReply *r;

    if (!w->ephemeral || now_ms - w->checked_ms < HD_WATCH_CHECK_MS)
        return 0;
    w->checked_ms = now_ms;
    if (key_of(k, sizeof k, KEY_WATCH, w->id) == 0) {
        r = rds_cmd("HGET %s watched_at", k);
        if (r != NULL && r->type == REDIS_REPLY_STRING &&
            atoll(r->str) > w->watched_ms)
            w->watched_ms = atoll(r->str);
        freeReplyObject(r);
    }
    return now_ms - w->watched_ms > cfg_int(CFG_SP_WATCH_GRACE) * 1000;
}

void hd_watch_tick(hd_sandbox *s, long long now_ms)
{
    for (hd_watch *w = s->watches, *nx; w != NULL; w = nx) {
        nx = w->next;
        if (hd_watch_idle(w, now_ms))
            hd_watch_end(w, "idle");
    }
}

void hd_watch_end_all(hd_sandbox *s)
{
    char sk[RDS_KEY_MAX];

    while (s->watches != NULL)
        hd_watch_end(s->watches, "sandbox_ended");
    if (!s->lost && key_of(sk, sizeof sk, KEY_SBX_WATCHES, s->id) == 0)
        hd_pub("DEL %s", sk);
}
