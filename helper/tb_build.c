/* tb_build.c: a template from a spec: the base (a cached Debian layer or
 * another template), the steps in order, meta.json. */
#include "tb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sp_tspec.h"

#define TB_SPEC_MAX (TS_TEXT_MAX + 1)

/* The account every Debian base has, and where its work goes; and the
 * certificate authorities the host trusts beyond Debian's (its local ones:
 * a TLS-intercepting proxy's, say), so that apt, pip, npm and curl in the
 * templates trust what the host trusts. */
static const char base_hook[] =
    "chroot \"$1\" useradd -m -u 1000 -U -s /bin/bash user && "
    "mkdir -p \"$1/workspace\" && chown 1000:1000 \"$1/workspace\" && "
    "for c in /usr/local/share/ca-certificates/*.crt; do "
    "[ -f \"$c\" ] && cp \"$c\" \"$1/usr/local/share/ca-certificates/\"; "
    "done; chroot \"$1\" update-ca-certificates >/dev/null";
static const char slim_opts[] = "--dpkgopt=path-exclude=/usr/share/man/*";
static const char slim_opts2[] = "--dpkgopt=path-exclude=/usr/share/doc/*";

/* The host's own Debian mirror: the first URI of its apt sources that is
 * not the security archive. */
static int host_mirror(char *out, size_t outlen)
{
    const char *files[] = {"/etc/apt/sources.list",
                           "/etc/apt/sources.list.d/debian.sources"};
    char line[1024], uri[512];

    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "re");

        while (f && fgets(line, sizeof line, f)) {
            if ((sscanf(line, "URIs: %511s", uri) == 1 ||
                 sscanf(line, "deb %511s", uri) == 1) &&
                strncmp(uri, "http", 4) == 0 && !strstr(uri, "security")) {
                snprintf(out, outlen, "%s", uri);
                fclose(f);
                return 0;
            }
        }
        if (f)
            fclose(f);
    }
    return -1;
}

/* templates/.cache/<suite>[-slim]: made once with mmdebstrap, under a
 * lock, into a temporary name renamed when complete. */
static int tb_base_layer(const char *suite, int slim, char *out, size_t outlen)
{
    char lockp[4200], tmp[4200], mirror[512], src[1200], hook[600];
    int fd, rc = 0;

    snprintf(lockp, sizeof lockp, "%s/.cache", tb.dir);
    mkdir(lockp, 0700);
    snprintf(out, outlen, "%s/.cache/%s%s", tb.dir, suite, slim ? "-slim" : "");
    snprintf(lockp, sizeof lockp, "%s.lock", out);
    fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) < 0)
        return tb_fail(TB_EXIT_FAILED, "lock %s: %s", lockp, strerror(errno));
    if (access(out, F_OK) != 0) {
        if (host_mirror(mirror, sizeof mirror) < 0) {
            close(fd);
            return tb_fail(TB_EXIT_FAILED, "no Debian mirror in the host's "
                                           "apt sources");
        }
        snprintf(src, sizeof src, "deb %s %s main", mirror, suite);
        snprintf(hook, sizeof hook, "--customize-hook=%s", base_hook);
        snprintf(tmp, sizeof tmp, "%s.tmp", out);
        sbx_rm_tree(tmp);
        tb_say("making the Debian %s%s base layer (mmdebstrap)", suite,
               slim ? " slim" : "");
        char *argv[] = {"/usr/bin/mmdebstrap",
                        "--quiet",
                        "--mode=root",
                        "--variant=minbase",
                        "--include=ca-certificates",
                        hook,
                        slim ? (char *)slim_opts : "--skip=check/empty",
                        slim ? (char *)slim_opts2 : "--skip=check/empty",
                        (char *)suite,
                        tmp,
                        src,
                        NULL};
        rc = tb_exec(argv);
        if (rc == 0 && rename(tmp, out) < 0)
            rc = -1;
        if (rc != 0)
            sbx_rm_tree(tmp);
    }
    close(fd);
    return rc == 0 ? 0 : tb_fail(TB_EXIT_FAILED, "mmdebstrap failed (%d)", rc);
}

int tb_user_lookup(const char *who, unsigned *uid, unsigned *gid, char *home,
                   size_t homelen, char *name, size_t namelen)
{
    sbx_user u;

    if (sbx_passwd_lookup(tb.rootfs, who, &u) < 0)
        return -1;
    *uid = u.uid, *gid = u.gid;
    snprintf(home, homelen, "%s", u.home);
    snprintf(name, namelen, "%s", u.name);
    return 0;
}

/* The meta of a new template: its user (the account, as a name), home,
 * workdir, environment. */
void tb_meta_user(const char *who)
{
    unsigned uid = 0, gid = 0;
    char home[512] = "/root", user[64] = "root";

    if (tb_user_lookup(who, &uid, &gid, home, sizeof home, user, sizeof user) <
        0)
        uid = gid = 0;
    cJSON_DeleteItemFromObject(tb.meta, "user");
    cJSON_DeleteItemFromObject(tb.meta, "uid");
    cJSON_DeleteItemFromObject(tb.meta, "gid");
    cJSON_DeleteItemFromObject(tb.meta, "home");
    cJSON_AddStringToObject(tb.meta, "user", user);
    cJSON_AddNumberToObject(tb.meta, "uid", uid);
    cJSON_AddNumberToObject(tb.meta, "gid", gid);
    cJSON_AddStringToObject(tb.meta, "home", home);
}

static int tb_copy_tree(const char *from)
{
    char src[4200];

    snprintf(src, sizeof src, "%s/.", from);
    char *argv[] = {"/bin/cp", "-a", "--reflink=auto", src, tb.rootfs, NULL};
    return tb_exec(argv) == 0
               ? 0
               : tb_fail(TB_EXIT_FAILED, "copying %s failed", from);
}

/* FROM: the tree to start from and the meta it brings. */
static int tb_from(const ts_spec *sp)
{
    char path[4096];

    if (sp->suite[0]) {
        if (tb_base_layer(sp->suite, sp->slim, path, sizeof path) != 0)
            return TB_EXIT_FAILED;
        if (tb_copy_tree(path) != 0)
            return TB_EXIT_FAILED;
        tb.meta = cJSON_CreateObject();
        cJSON_AddObjectToObject(tb.meta, "env");
        cJSON_AddStringToObject(tb.meta, "workdir", "/home/user");
        tb_meta_user("user");
        snprintf(path, sizeof path, "debian:%s%s", sp->suite,
                 sp->slim ? "-slim" : "");
    } else {
        cJSON *base = ts_meta_read(tb.dir, sp->base);

        if (!base)
            return tb_fail(TB_EXIT_BAD, "FROM %s: no such template", sp->base);
        snprintf(path, sizeof path, "%s/%s/%s/rootfs", tb.dir, sp->base,
                 cJSON_GetStringValue(cJSON_GetObjectItem(base, "version")));
        tb.meta = base;
        if (tb_copy_tree(path) != 0)
            return TB_EXIT_FAILED;
        snprintf(path, sizeof path, "%s", sp->base);
    }
    cJSON_DeleteItemFromObject(tb.meta, "from");
    cJSON_AddStringToObject(tb.meta, "from", path);
    return 0;
}

int tb_build(const char *spec_path)
{
    static char text[TB_SPEC_MAX];
    char err[TS_ERR_SIZE];
    ts_spec sp = {0};
    int line = 0, rc;
    size_t n;
    FILE *f = fopen(spec_path, "re");

    if (!f)
        return tb_fail(TB_EXIT_BAD, "%s: %s", spec_path, strerror(errno));
    n = fread(text, 1, sizeof text, f);
    fclose(f);
    if (n >= sizeof text)
        return tb_fail(TB_EXIT_BAD, "the spec is over %d bytes", TS_TEXT_MAX);
    if (ts_parse(text, n, tb.args, &sp, err, &line) < 0)
        return tb_fail(TB_EXIT_BAD, "line %d: %s", line, err);
    rc = tb_from(&sp);
    for (size_t i = 0; rc == 0 && i < sp.n; i++)
        rc = tb_step(&sp.steps[i], i + 1);
    ts_free(&sp);
    return rc;
}
