/*
 * sp-template — builds and imports templates (run as root).
 *
 *   sp-template build NAME SPEC [CONTEXT] [--arg K=V]... [OPTIONS]
 *   sp-template import NAME TARBALL [OPTIONS]
 *   OPTIONS: --private OWNER, --maker SUBJECT, --die-with-parent
 *
 * A template lives in $SP_STATE_DIR/templates/NAME: meta.json (what the
 * helper and the API read: user, workdir, env, start command, owner) and
 * v<build>/rootfs, the tree, owned by the ids it has inside. A build
 * makes a new v<build> beside the old one and then replaces meta.json in
 * one rename, so a sandbox of the old version keeps its tree; the helper
 * removes versions no meta.json and no sandbox uses (hd_tpl.c).
 *
 * FROM debian:SUITE[-slim] starts from a base layer made once with
 * mmdebstrap (cached in templates/.cache, from the host's apt sources) plus
 * the account `user` (uid 1000, /home/user) and /workspace; FROM NAME
 * from that template's tree. RUN steps run in a build sandbox with network
 * (tb_run.c), as the current USER, in the WORKDIR, with ENV and ARG set.
 * Everything is printed on stdout, one line per event, for the helper to
 * stream; the exit status says how it ended (TB_EXIT_*). A failed build
 * leaves nothing: its work directory is removed.
 */
#include "tb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sp_config.h"
#include "sp_tspec.h"

tb_globals tb;

void tb_say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

int tb_fail(int code, const char *fmt, ...)
{
    va_list ap;

    printf("error: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    return code;
}

/* Run argv on the host; its output goes to ours. Exit status, or -1. */
int tb_exec(char *const argv[])
{
    char out[4096];
    int rc = sbx_run_capture(argv, out, sizeof out);

    if (out[0])
        fputs(out, stdout), fflush(stdout);
    return rc;
}

/* One build of a name at a time: an exclusive lock on templates/.locks. */
static int tb_lock(const char *name)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof path, "%s/.locks", tb.dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/.locks/%s", tb.dir, name);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd; /* held until exit */
}

/* Make templates/NAME/v<id> for a new version; its path in out. */
static int tb_new_version(const char *name, char *out, size_t outlen)
{
    char path[4200];

    snprintf(path, sizeof path, "%s/%s", tb.dir, name);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -1;
    snprintf(tb.version, sizeof tb.version, "v%lld-%d", (long long)time(NULL),
             (int)getpid());
    snprintf(out, outlen, "%s/%s/%s", tb.dir, name, tb.version);
    if (mkdir(out, 0700) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/rootfs", out);
    return mkdir(path, 0755);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: sp-template build NAME SPEC [CONTEXT] [--arg K=V]... "
            "[OPTIONS]\n"
            "       sp-template import NAME TARBALL [OPTIONS]\n"
            "options: --private OWNER (only OWNER sees it), --maker SUBJECT "
            "(may rebuild and delete it), --die-with-parent\n");
    return TB_EXIT_USAGE;
}

/* Options after the positional arguments. */
static int tb_options(int argc, char **argv, int first)
{
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--arg") == 0 && i + 1 < argc &&
            tb.nargs < TB_ARGS_MAX)
            tb.args[tb.nargs++] = argv[++i];
        else if (strcmp(argv[i], "--private") == 0 && i + 1 < argc)
            tb.owner = argv[++i];
        else if (strcmp(argv[i], "--maker") == 0 && i + 1 < argc)
            tb.maker = argv[++i];
        else if (strcmp(argv[i], "--die-with-parent") == 0)
            prctl(PR_SET_PDEATHSIG, SIGKILL);
        else
            return -1;
    }
    tb.args[tb.nargs] = NULL;
    return 0;
}

static int tb_init(char *err, size_t errlen)
{
    static char dir[4096], init[4096];
    sbx_config c = {0};
    const char *state;

    if (cfg_load(NULL, err, errlen) < 0)
        return -1;
    state = cfg_str(CFG_SP_STATE_DIR);
    snprintf(dir, sizeof dir, "%s/templates",
             state && *state ? state : "state");
    tb.dir = dir;
    mkdir(dir, 0700);
    /* sp-init sits beside this program, as beside sp-helperd. */
    ssize_t n = readlink("/proc/self/exe", init, sizeof init - 16);

    if (n <= 0) {
        snprintf(err, errlen, "readlink(/proc/self/exe) failed");
        return -1;
    }
    init[n] = '\0';
    snprintf(strrchr(init, '/') ? strrchr(init, '/') + 1 : init, 16, "sp-init");
    /* Searchable by the build sandbox's uid (templates/ is not). */
    snprintf(tb.work, sizeof tb.work, "%s/template-builds",
             state && *state ? state : "state");
    mkdir(tb.work, 0711);
    c.state_dir = tb.work;
    c.init_path = init;
    c.cgroup_name = "sandpipe-build";
    return sbx_global_init(&c, err, errlen);
}

int main(int argc, char **argv)
{
    char err[512], vdir[4096];
    int lock, rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 4 || (strcmp(argv[1], "build") && strcmp(argv[1], "import")))
        return usage();
    tb.name = argv[2];
    if (!ts_name_valid(tb.name) || strcmp(tb.name, "host") == 0)
        return tb_fail(TB_EXIT_BAD, "bad template name \"%s\"", tb.name);
    if (tb_init(err, sizeof err) < 0)
        return tb_fail(TB_EXIT_FAILED, "%s", err);
    lock = tb_lock(tb.name);
    if (lock < 0)
        return tb_fail(TB_EXIT_BUSY, "a build of %s is running", tb.name);
    if (tb_new_version(tb.name, vdir, sizeof vdir) < 0)
        return tb_fail(TB_EXIT_FAILED, "mkdir: %s", strerror(errno));
    snprintf(tb.rootfs, sizeof tb.rootfs, "%s/rootfs", vdir);
    if (strcmp(argv[1], "build") == 0) {
        int has_ctx = argc > 4 && argv[4][0] != '-';

        tb.context = has_ctx ? argv[4] : NULL;
        rc = tb_options(argc, argv, has_ctx ? 5 : 4) < 0 ? usage()
                                                         : tb_build(argv[3]);
    } else {
        rc = tb_options(argc, argv, 4) < 0 ? usage() : tb_import(argv[3]);
    }
    if (rc == 0)
        rc = tb_publish(vdir);
    if (rc != 0)
        sbx_rm_tree(vdir);
    tb_say(rc == 0 ? "built %s (%s)" : "failed: %s", tb.name, tb.version);
    return rc;
}
