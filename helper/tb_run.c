/* tb_run.c: a build step in a sandbox over the template's tree (written
 * in place, through the build range's idmapping), with network, so that
 * apt-get, pip and npm reach their registries. Its output is ours. */
#include "tb.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sp_config.h"

#define TB_STEP_MEMORY_MB 4096
#define TB_STEP_PIDS      4096

unsigned tb_range(void)
{
    return (unsigned)cfg_tpl_uid(TB_BUILD_UID_SLOT);
}

/* Copy what is readable on fd to stdout; 0 at EOF. */
static int pump(int fd)
{
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof buf);

    if (n > 0) {
        fwrite(buf, 1, (size_t)n, stdout);
        fflush(stdout);
        return 1;
    }
    return n < 0 && (errno == EAGAIN || errno == EINTR) ? 1 : 0;
}

/* Until the program has exited and its pipes are at EOF. */
static int wait_step(sbx_sandbox *s, const sbx_proc *p)
{
    int open_out = 1, open_err = 1, status = -1;

    while (open_out || open_err || status < 0) {
        struct pollfd f[3] = {{sbx_control_fd(s), POLLIN, 0},
                              {open_out ? p->stdout_fd : -1, POLLIN, 0},
                              {open_err ? p->stderr_fd : -1, POLLIN, 0}};
        sbx_exit_event ev[8];
        size_t n = 0;

        if (poll(f, 3, 1000) < 0 && errno != EINTR)
            return -1;
        if (f[1].revents)
            open_out = pump(p->stdout_fd);
        if (f[2].revents)
            open_err = pump(p->stderr_fd);
        if (f[0].revents) {
            if (sbx_handle_control(s, ev, 8, &n) < 0)
                return -1;
            for (size_t i = 0; i < n; i++)
                if (ev[i].req_id == p->req_id)
                    status = WIFEXITED(ev[i].wait_status)
                                 ? WEXITSTATUS(ev[i].wait_status)
                                 : 128 + WTERMSIG(ev[i].wait_status);
        }
    }
    return status;
}

int tb_run(char *const argv[], char *const env[], unsigned uid, unsigned gid,
           const char *cwd, char *err, size_t errlen)
{
    sbx_limits lim = {TB_STEP_MEMORY_MB, 1, 1024, TB_STEP_PIDS, 0};
    sbx_root root = {tb.rootfs, 1, 0, -1};
    sbx_spawn_req req = {0};
    sbx_sandbox *s = NULL;
    char id[64];
    sbx_proc p;
    int rc = -1;

    snprintf(id, sizeof id, "b%d", (int)getpid());
    if (sbx_create(id, &lim, &sbx_net_internet, tb_range(), tb_range(), &root, &s, err,
                   errlen) < 0)
        return -1;
    req.argv = argv;
    req.envp = env;
    req.cwd = cwd;
    req.user_set = 1;
    req.uid = uid;
    req.gid = gid;
    if (sbx_spawn(s, &req, &p, err, errlen) == 0) {
        close(p.stdin_fd);
        rc = wait_step(s, &p);
        close(p.stdout_fd);
        close(p.stderr_fd);
        if (rc < 0)
            snprintf(err, errlen, "the build sandbox failed");
    }
    sbx_destroy(s);
    return rc;
}
