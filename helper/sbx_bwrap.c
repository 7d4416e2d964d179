/*
 * sbx_bwrap.c — the bubblewrap command line of a sandbox and its launch.
 *
 * Everything bwrap is told is an argv array; the generated /etc files and
 * the seccomp program travel as memfds whose numbers are in that argv.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sbx_priv.h"

#define ARGV_MAX  128
#define OWNED_MAX 32

typedef struct argv_b {
    char *v[ARGV_MAX + 1];
    char *owned[OWNED_MAX];
    size_t n, nowned;
    int full;
} argv_b;

static const char passwd_data[] =
    "root:x:0:0:root:/root:/bin/sh\n"
    "user:x:1000:1000:user:/workspace:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char group_data[] = "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n";
static const char hosts_data[] =
    "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost\n";
/* slirp4netns answers DNS on 10.0.2.3 and forwards to the host's. */
static const char resolv_data[] = "nameserver 10.0.2.3\n";

/* /etc files runtimes need, read-only from the host when present. */
static const char *const etc_files[] = {
    "/etc/ld.so.cache",     "/etc/alternatives", "/etc/ssl",
    "/etc/ca-certificates", "/etc/localtime",    "/etc/nsswitch.conf",
    "/etc/protocols",       "/etc/services",     "/etc/mime.types",
};

static void add(argv_b *a, const char *s)
{
    if (a->n < ARGV_MAX)
        a->v[a->n++] = (char *)s;
    else
        a->full = 1;
}

static void add_fmt_u64(argv_b *a, uint64_t v)
{
    char *s = NULL;

    if (a->nowned == OWNED_MAX || asprintf(&s, "%" PRIu64, v) < 0) {
        a->full = 1;
        return;
    }
    a->owned[a->nowned++] = s;
    add(a, s);
}

static void argv_free(argv_b *a)
{
    size_t i;

    for (i = 0; i < a->nowned; i++)
        free(a->owned[i]);
}

/*
 * What root of a template sandbox's user namespace may do there (and only
 * there): own and change its files (apt-get, dpkg), switch ids (sp-init
 * starts each program as the user it asks for; apt drops to _apt), signal
 * its own processes, bind low ports, chroot, set file capabilities. Not
 * mount, ptrace, raw sockets or anything of CAP_SYS_ADMIN: the seccomp
 * filter denies those calls in any case.
 */
static const char *const root_caps[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE",     "CAP_FOWNER",     "CAP_FSETID",
    "CAP_KILL",    "CAP_SETGID",           "CAP_SETUID",     "CAP_SETFCAP",
    "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE",
};

/* Fds handed to bwrap; -1 when unused. */
typedef struct bw_fds {
    int seccomp, passwd, group, hosts, resolv, sock;
} bw_fds;

/* The host view: the host's /usr read-only and generated accounts. */
static void host_view(argv_b *a, const sbx_sandbox *s, const bw_fds *f)
{
    size_t i;

    add(a, "--unshare-user");
    /* No nested user namespaces, the entry to most kernel attack surface. */
    if (sbx_g.disable_userns)
        add(a, "--disable-userns");
    add(a, "--uid"), add(a, "1000"), add(a, "--gid"), add(a, "1000");
    add(a, "--ro-bind"), add(a, "/usr"), add(a, "/usr");
    add(a, "--symlink"), add(a, "usr/bin"), add(a, "/bin");
    add(a, "--symlink"), add(a, "usr/sbin"), add(a, "/sbin");
    add(a, "--symlink"), add(a, "usr/lib"), add(a, "/lib");
    add(a, "--symlink"), add(a, "usr/lib64"), add(a, "/lib64");
    for (i = 0; i < sizeof(etc_files) / sizeof(etc_files[0]); i++)
        add(a, "--ro-bind-try"), add(a, etc_files[i]), add(a, etc_files[i]);
    /* Generated, so no host account or host name leaks in. */
    add(a, "--perms"), add(a, "0644");
    add(a, "--ro-bind-data"), add_fmt_u64(a, (uint64_t)f->passwd);
    add(a, "/etc/passwd");
    add(a, "--perms"), add(a, "0644");
    add(a, "--ro-bind-data"), add_fmt_u64(a, (uint64_t)f->group);
    add(a, "/etc/group");
    (void)s;
}

/* A template: its overlay as the root, joined to the user namespace made
 * for it (the seccomp filter denies unshare and clone of namespaces, so
 * no nested one), sp-init as root there with root_caps. */
static void template_view(argv_b *a, const sbx_sandbox *s)
{
    size_t i;

    add(a, "--userns"), add_fmt_u64(a, (uint64_t)s->userns);
    add(a, "--uid"), add(a, "0"), add(a, "--gid"), add(a, "0");
    add(a, "--cap-drop"), add(a, "ALL");
    for (i = 0; i < sizeof root_caps / sizeof root_caps[0]; i++)
        add(a, "--cap-add"), add(a, root_caps[i]);
    add(a, "--bind"), add(a, s->root), add(a, "/");
}

static void build_argv(argv_b *a, const sbx_sandbox *s, const sbx_limits *lim,
                       int network, const bw_fds *f)
{
    add(a, "bwrap");
    /*
     * New user namespace (unprivileged: nothing inside is root on the
     * host), PID (no host processes visible, sp-init is PID 1), IPC, UTS
     * and network (no network unless slirp4netns is attached) namespaces.
     * cgroup namespace when possible so /proc/self/cgroup reveals nothing.
     */
    add(a, "--unshare-pid");
    add(a, "--unshare-ipc");
    add(a, "--unshare-uts");
    add(a, "--unshare-net");
    add(a, "--unshare-cgroup-try");
    /* The sandbox dies with bwrap, bwrap with the daemon. */
    add(a, "--die-with-parent");
    /* sp-init is PID 1 and reaps the namespace itself. */
    add(a, "--as-pid-1");
    /* A fresh session: TIOCSTI cannot reach the daemon's terminal. */
    add(a, "--new-session");
    add(a, "--hostname"), add(a, "sandbox");
    /* The host's runtimes read-only and nothing else of the host, or the
     * template's root. */
    if (s->root)
        template_view(a, s);
    else
        host_view(a, s, f);
    add(a, "--perms"), add(a, "0644");
    add(a, "--ro-bind-data"), add_fmt_u64(a, (uint64_t)f->hosts);
    add(a, "/etc/hosts");
    if (network) {
        add(a, "--perms"), add(a, "0644");
        add(a, "--ro-bind-data"), add_fmt_u64(a, (uint64_t)f->resolv);
        add(a, "/etc/resolv.conf");
    }
    /* A /proc of the new PID namespace and a minimal /dev (null, tty...). */
    add(a, "--proc"), add(a, "/proc");
    add(a, "--dev"), add(a, "/dev");
    /* /tmp is a tmpfs of its own size, counted apart from the workspace. */
    add(a, "--size"), add_fmt_u64(a, lim->tmp_mb * 1024 * 1024);
    add(a, "--perms"), add(a, "1777");
    add(a, "--tmpfs"), add(a, "/tmp");
    if (!s->root) {
        /* The workspace tmpfs: the only writable host storage, capped. */
        add(a, "--bind"), add(a, s->workspace), add(a, "/workspace");
        /* Chat uploads land in the workspace (so they count against its
         * cap) and are seen where clients expect them. */
        add(a, "--symlink"), add(a, "/workspace/uploaded_files");
        add(a, "/uploaded_files");
    }
    add(a, "--ro-bind"), add(a, sbx_g.init_path), add(a, "/.sp/init");
    /* The host view's root (bwrap's tmpfs holding the mount points)
     * read-only: code writes only to /workspace and /tmp, whose sizes are
     * capped, not to / or /etc, which only the memory limit would bound.
     * A template's root is on the sandbox's disk, capped by its size. */
    if (!s->root)
        add(a, "--remount-ro"), add(a, "/");
    add(a, "--chdir"), add(a, "/workspace");
    add(a, "--clearenv");
    add(a, "--setenv"), add(a, "PATH");
    add(a, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    add(a, "--setenv"), add(a, "HOME"), add(a, "/workspace");
    add(a, "--setenv"), add(a, "LANG"), add(a, "C.UTF-8");
    add(a, "--seccomp"), add_fmt_u64(a, (uint64_t)f->seccomp);
    add(a, "--");
    add(a, "/.sp/init");
    add_fmt_u64(a, (uint64_t)f->sock);
    a->v[a->n] = NULL;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int sbx_bwrap_start(sbx_sandbox *s, const sbx_limits *lim, int network,
                    uid_t uid, gid_t gid, char *err, size_t errlen)
{
    bw_fds f = {-1, -1, -1, -1, -1, -1};
    int sp[2] = {-1, -1}, ep[2] = {-1, -1}, keep[7], join[SBX_CG_MAX_HIER];
    argv_b a = {0};
    sbx_launch l = {0};
    int result = -1;

    f.seccomp = sbx_fs_memfd("sbx-seccomp", sbx_g.seccomp, sbx_g.seccomp_len);
    f.passwd = sbx_fs_memfd("sbx-passwd", passwd_data, sizeof(passwd_data) - 1);
    f.group = sbx_fs_memfd("sbx-group", group_data, sizeof(group_data) - 1);
    f.hosts = sbx_fs_memfd("sbx-hosts", hosts_data, sizeof(hosts_data) - 1);
    if (network)
        f.resolv =
            sbx_fs_memfd("sbx-resolv", resolv_data, sizeof(resolv_data) - 1);
    if (f.seccomp < 0 || f.passwd < 0 || f.group < 0 || f.hosts < 0 ||
        (network && f.resolv < 0)) {
        snprintf(err, errlen, "memfd_create() failed: %s", strerror(errno));
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0 ||
        pipe2(ep, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "socketpair()/pipe2() failed: %s",
                 strerror(errno));
        goto out;
    }
    f.sock = sp[1];
    build_argv(&a, s, lim, network, &f);
    if (a.full) {
        snprintf(err, errlen, "sbx_create: bwrap argv too long");
        goto out;
    }
    keep[0] = f.seccomp, keep[1] = f.passwd, keep[2] = f.group;
    keep[3] = f.hosts, keep[4] = f.sock, keep[5] = s->userns;
    keep[6] = f.resolv;
    l.path = SBX_BWRAP_PATH;
    l.argv = a.v;
    l.keep = keep;
    l.nkeep = network ? 7 : 6;
    l.join = join;
    l.njoin = sbx_cg_join_fds(s->cg, join, SBX_CG_MAX_HIER);
    l.uid = uid;
    l.gid = gid;
    l.stdio[0] = l.stdio[1] = -1;
    l.stdio[2] = ep[1];
    s->sock = sp[0];
    s->bwrap_err = ep[0];
    sp[0] = ep[0] = -1;
    s->bwrap_pid = sbx_launch_child(&l, err, errlen);
    if (s->bwrap_pid < 0)
        goto out;
    fcntl(s->bwrap_err, F_SETFL, O_NONBLOCK);
    result = 0;
out:
    argv_free(&a);
    close_fd(&f.seccomp), close_fd(&f.passwd), close_fd(&f.group);
    close_fd(&f.hosts), close_fd(&f.resolv);
    close_fd(&sp[0]), close_fd(&sp[1]), close_fd(&ep[0]), close_fd(&ep[1]);
    return result;
}
