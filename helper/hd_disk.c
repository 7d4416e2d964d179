/* hd_disk.c: the one place that knows where a sandbox's disk is, for its
 * metrics: the file system its code sees as /workspace, measured through
 * sp-init's root (/proc/<pid>/root), so the figure is the sandbox's own
 * view whatever backs it (a tmpfs today). */
#include "hd.h"

#include <stdio.h>
#include <sys/statvfs.h>

int hd_disk_usage(hd_sandbox *s, uint64_t *used, uint64_t *total)
{
    char path[64];
    struct statvfs st;

    *used = *total = 0;
    snprintf(path, sizeof path, "/proc/%d/root/workspace",
             (int)hd_init_pid(s->sbx));
    if (statvfs(path, &st) != 0)
        return -1;
    *total = (uint64_t)st.f_blocks * st.f_frsize;
    *used = (uint64_t)(st.f_blocks - st.f_bfree) * st.f_frsize;
    return 0;
}
