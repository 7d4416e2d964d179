/* hd_kind.c: the kinds of execution (hd.h, hd_kind). An execution is a
 * process in a sandbox; its kind says which events it emits while it runs
 * and how it ends:
 *
 *   command   commands and code runs: status "running", stdout/stderr
 *             events, a result event; a caller that waits gets the facts
 *             with the captured output.
 *   terminal  a PTY shell: status "starting", "ready", output events, and
 *             exit {code}; closed when nobody watches or types.
 *   context   a stateful context's driver (internal, hd_ctx.c): its
 *             output is the driver's frames, its end ends the context.
 *
 * Input, signals and resizing act on the process and are the same for
 * every kind (hd_exec.c); the API answers are rendered by the handlers
 * from the facts. */
#include "hd.h"
#include "sp_config.h"
#include "sp_keys.h"
#include "sp_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HD_WATCH_CHECK_MS 2000

/* ---- command ------------------------------------------------------------ */

static void hd_command_start(hd_exec *e)
{
    hd_event_str(e, "status", "{\"status\":\"running\"}");
}

static void hd_command_output(hd_exec *e, int which, const unsigned char *p,
                              size_t n, int at_eof)
{
    hd_exec_emit(e, which, p, n, at_eof, NULL);
}

/* The record first, then the event: whoever saw the result event finds
 * the record ended too. */
static void hd_command_finish(hd_exec *e, const hd_facts *f)
{
    hd_result_record(f);
    hd_result_event(f);
    hd_result_answer(f, e->rid);
}

const hd_kind hd_kind_command = {HC_KIND_COMMAND, hd_command_start,
                                 hd_command_output, NULL, hd_command_finish};

/* ---- terminal ----------------------------------------------------------- */

static void hd_terminal_start(hd_exec *e)
{
    hd_event_str(e, "status", "{\"status\":\"starting\"}");
    hd_event_str(e, "ready", "{}");
    e->last_input_ms = e->watched_ms = e->started_ms;
}

static void hd_terminal_output(hd_exec *e, int which, const unsigned char *p,
                               size_t n, int at_eof)
{
    hd_exec_emit(e, which, p, n, at_eof, "output");
}

/* 1 if terminal e should be closed: nobody has watched it for the grace
 * period, or nobody typed for the inactivity timeout. The SSE relay writes
 * terminal:<id> watched_at (Unix ms) while a client is connected; it is
 * read every few seconds. */
static int hd_terminal_idle(hd_exec *e, long long now_ms)
{
    char k[RDS_KEY_MAX];
    redisReply *r;

    if (now_ms - e->last_input_ms > cfg_int(CFG_SP_TERMINAL_TIMEOUT) * 1000)
        return 1;
    if (now_ms - e->last_watch_check_ms < HD_WATCH_CHECK_MS)
        return 0;
    e->last_watch_check_ms = now_ms;
    if (key_of(k, sizeof k, KEY_TERMINAL, e->id) == 0) {
        r = rds_cmd("HGET %s watched_at", k);
        if (r != NULL && r->type == REDIS_REPLY_STRING &&
            atoll(r->str) > e->watched_ms)
            e->watched_ms = atoll(r->str);
        freeReplyObject(r);
    }
    return now_ms - e->watched_ms > cfg_int(CFG_SP_TERMINAL_GRACE) * 1000;
}

/* A terminal's stream ends with exit {code}; its record then lives as
 * long as its events. */
static void hd_terminal_finish(hd_exec *e, const hd_facts *f)
{
    char ex[64], k[RDS_KEY_MAX];

    snprintf(ex, sizeof ex, "{\"code\":%d}", f->exit_code);
    hd_result_record(f);
    hd_event_str(e, "exit", ex);
    if (key_of(k, sizeof k, KEY_TERMINAL, e->id) == 0)
        hd_pub("EXPIRE %s %lld", k, cfg_int(CFG_SP_EVENT_TTL));
    hd_result_answer(f, e->rid);
}

const hd_kind hd_kind_terminal = {HC_KIND_TERMINAL, hd_terminal_start,
                                  hd_terminal_output, hd_terminal_idle,
                                  hd_terminal_finish};

/* ---- lookup ------------------------------------------------------------- */

const hd_kind *hd_kind_find(const char *name)
{
    static const hd_kind *const kinds[] = {&hd_kind_command, &hd_kind_terminal};

    if (name == NULL || name[0] == '\0')
        return &hd_kind_command;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    }
    return NULL;
}
