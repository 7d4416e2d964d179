/* hd_metrics.c: samples of every named sandbox, every SP_METRICS_INTERVAL
 * ms, on the main loop: its CPU use since the last sample (as a % of one
 * CPU), its memory and memory limit, its disk used and size, and the
 * bytes its network received and sent so far. Each sample
 * is one entry of the capped stream sbx:<id>:metrics (about
 * SP_METRICS_MAXLEN entries), written through the queue of hd_pub.c (never
 * a Redis call here); its id is the sample's time in Unix ms, so that
 * GET /sandboxes/{id}/metrics reads a time range with XRANGE, and a sample
 * sent twice after a Redis outage is refused instead of doubled. The
 * stream is deleted with the sandbox (hd_sandbox.c). A paused sandbox is
 * sampled too (its CPU use is then 0). One-off sandboxes are not. */
#include "hd.h"
#include "sp_config.h"
#include "sp_keys.h"
#include "sp_redis.h"

#include <stdio.h>

static long long hd_metrics_next_ms;

/* Append one sample of s taken at now_ms. */
static void hd_metrics_sample(hd_sandbox *s, long long now_ms)
{
    char k[RDS_KEY_MAX], id[HD_EVID_SIZE], cpu[32], cpus[32];
    uint64_t mem = 0, cpu_ns = 0, used = 0, total = 0, rx = 0, tx = 0;
    uint32_t tasks = 0;
    long long since = s->m_at_ms ? s->m_at_ms : s->created * 1000;
    double pct = 0;

    if (key_of(k, sizeof k, KEY_SBX_METRICS, s->id) != 0 ||
        sbx_usage(s->sbx, &mem, &cpu_ns, &tasks) != 0)
        return;
    if (sbx_disk_usage(s->sbx, &used, &total) != 0)
        used = total = 0;
    sbx_net_bytes(s->sbx, &rx, &tx); /* 0 without network */
    if (now_ms > since && cpu_ns >= s->m_cpu_ns)
        pct = (double)(cpu_ns - s->m_cpu_ns) / 1e4 / (double)(now_ms - since);
    s->m_cpu_ns = cpu_ns;
    s->m_at_ms = now_ms;
    snprintf(cpu, sizeof cpu, "%.2f", pct);
    snprintf(cpus, sizeof cpus, "%.3g", s->cpus);
    hd_evid_next(&s->m_evid, id);
    hd_pub("XADD %s MAXLEN ~ %lld %s cpu %s cpus %s mem %llu memmax %llu "
           "disk %llu diskmax %llu netrx %llu nettx %llu",
           k, cfg_int(CFG_SP_METRICS_MAXLEN), id, cpu, cpus,
           (unsigned long long)mem,
           (unsigned long long)(s->memory_mb * 1024 * 1024),
           (unsigned long long)used, (unsigned long long)total,
           (unsigned long long)rx, (unsigned long long)tx);
}

void hd_metrics_tick(long long now_ms)
{
    if (now_ms < hd_metrics_next_ms)
        return;
    hd_metrics_next_ms = now_ms + cfg_int(CFG_SP_METRICS_INTERVAL);
    for (hd_sandbox *s = hd_sandboxes; s != NULL; s = s->next) {
        if (!s->ephemeral && !s->lost)
            hd_metrics_sample(s, now_ms);
    }
}
