/* tb.h: what the files of sp-template share (sp_template.c: main, locks,
 * versions; tb_build.c: base layers, steps, publishing; tb_run.c: the
 * build sandbox; tb_import.c: root file system tarballs). */
#ifndef TB_H
#define TB_H

#include <stddef.h>

#include "cJSON.h"
#include "sbx.h"
#include "sbx_priv.h"
#include "sp_tspec.h"

/* Exit statuses: the helper turns them into the build's outcome. */
#define TB_EXIT_FAILED 1 /* a step failed, or the machine did */
#define TB_EXIT_BAD    2 /* the spec, the name or a source is wrong: 400 */
#define TB_EXIT_BUSY   3 /* a build of the name is running: 409 */
#define TB_EXIT_USAGE  64

#define TB_ARGS_MAX       64
#define TB_BUILD_UID_SLOT 4095 /* builds' id range (helper: slots below) */

typedef struct tb_globals {
    const char *dir;     /* $SP_STATE_DIR/templates */
    char work[4200];     /* $SP_STATE_DIR/template-builds: sandboxes */
    const char *name;    /* the template being made */
    const char *context; /* COPY sources, or NULL */
    const char *owner;   /* private to this subject, or NULL (shared) */
    const char *maker;   /* the subject that asked (API), or NULL */
    const char *args[TB_ARGS_MAX + 1];
    int nargs;
    char version[64];  /* v<time>-<pid> */
    char rootfs[4300]; /* templates/NAME/<version>/rootfs */
    cJSON *meta;       /* what meta.json will say */
} tb_globals;

extern tb_globals tb;

void tb_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int tb_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int tb_exec(char *const argv[]);

int tb_build(const char *spec_path);
int tb_step(const ts_step *st, size_t no);
void tb_meta_user(const char *who);
/* who (a name or a uid) in the tree's /etc/passwd, read inside it. */
int tb_user_lookup(const char *who, unsigned *uid, unsigned *gid, char *home,
                   size_t homelen, char *name, size_t namelen);
int tb_import(const char *tarball);
int tb_publish(const char *vdir);

/* Run a step in a build sandbox over tb.rootfs: argv as uid:gid in cwd
 * with env (NULL-terminated "K=V"); stdin from the fd (or -1). Output to
 * our stdout. Exit status of the program, or -1 with err set. */
int tb_run(char *const argv[], char *const env[], unsigned uid, unsigned gid,
           const char *cwd, char *err, size_t errlen);

/* The host uid of the build sandboxes' id range. */
unsigned tb_range(void);

#endif
