/* sp_keys.h: the Redis keyspace, declared once. Every key sandpipe reads
 * or writes belongs to one family below: its name pattern (after the
 * configured SP_PREFIX; <...> stands for a validated id), its Redis type,
 * the programs that write and read it, and what ends it. docs/KEYS.md is
 * this table as printed by `sp-admin keys` (a test compares the two), and
 * key_of() is the only way to build a key: no key is written as a literal
 * anywhere else (tests/integration/test_keys.py looks for them). */
#ifndef SP_KEYS_H
#define SP_KEYS_H

#include <stddef.h>
#include <stdio.h>

/* X(name, pattern, type, writers, readers, lifetime) */
#define SP_KEY_FAMILIES(X)                                                     \
    X(KEY_APIKEY, "apikey:<sha256>", "hash", "sp-admin (key create)",          \
      "every FastCGI program and sp-sse (auth_api_key)",                       \
      "until the key is revoked (sp-admin key revoke deletes it)")             \
    X(KEY_KEY, "key:<kid>", "hash", "sp-admin (key create)",                   \
      "sp-admin (key list, key revoke)",                                       \
      "until the key is revoked (sp-admin key revoke deletes it)")             \
    X(KEY_KEYS, "keys", "set", "sp-admin (key create, key revoke)",            \
      "sp-admin (key list, key revoke)",                                       \
      "permanent; a key id leaves it when the key is revoked")                 \
    X(KEY_KEYREVOKED, "keyrevoked:<kid>", "string", "sp-admin (key revoke)",   \
      "every program that checks a JWT (auth_is_revoked), sp-auth (refresh)",  \
      "expires after SP_REFRESH_TTL + SP_ACCESS_TTL")                          \
    X(KEY_REVOKED, "revoked:<jti>", "string", "sp-auth (revoke)",              \
      "every program that checks a JWT (auth_is_revoked)",                     \
      "expires when the access token would have")                              \
    X(KEY_RTFAM, "rtfam:<family>", "string", "sp-auth (revoke, reuse)",        \
      "sp-auth (refresh)", "expires after SP_REFRESH_TTL")                     \
    X(KEY_RTUSED, "rtused:<jti>", "string", "sp-auth (refresh, SET NX)",       \
      "sp-auth (refresh)", "expires when the refresh token would have")        \
    X(KEY_HELPERS, "helpers", "zset",                                          \
      "sp-helperd (heartbeat: score Unix ms, stop), sp-health (lost_sweep)",   \
      "sp-sandboxes, sp-execute, sp-terminal, sp-health (rpc_live_helpers, "   \
      "lost_helper_stale)",                                                    \
      "permanent; a helper leaves it when it stops or is swept LOST_STALE_MS " \
      "after its last heartbeat")                                              \
    X(KEY_JOBS, "jobs", "stream",                                              \
      "sp-sandboxes, sp-execute, sp-terminal (rpc_call without a helper)",     \
      "sp-helperd (consumer group helpers)",                                   \
      "permanent; an entry (never a file body: sp_spool.h) is deleted once "   \
      "handled or dropped, or when its caller stops waiting; capped at about " \
      "RPC_STREAM_MAXLEN entries")                                             \
    X(KEY_HJOBS, "hjobs:<helper>", "stream",                                   \
      "sp-sandboxes, sp-execute, sp-terminal (rpc_call to a helper)",          \
      "sp-helperd <helper> (consumer group helpers)",                          \
      "permanent; an entry (never a file body: sp_spool.h) is deleted once "   \
      "handled or dropped, or when its caller stops waiting; capped at about " \
      "RPC_STREAM_MAXLEN entries")                                             \
    X(KEY_REPLY, "reply:<rid>", "list", "sp-helperd (hd_reply, hd_reply_err)", \
      "the program that sent job <rid> (rpc_call, BLPOP)",                     \
      "popped by the caller; expires HD_REPLY_TTL (60 s) after the reply")     \
    X(KEY_HELPER_SBXS, "helper:<helper>:sbxs", "set",                          \
      "sp-helperd <helper> (every sandbox it makes, pooled ones too)",         \
      "sp-helperd <helper> (start-up), sp-health, any waiting handler "        \
      "(lost_helper)",                                                         \
      "a sandbox leaves it when it ends; deleted when the helper starts or "   \
      "is found gone")                                                         \
    X(KEY_HELPER_SWEEP, "helper:<helper>:sweep", "string",                     \
      "lost_helper (SET NX): the helper at start, sp-health, waiting "         \
      "handlers",                                                              \
      "lost_helper", "deleted when the sweep ends; expires after 30 s")        \
    X(KEY_SBX, "sbx:<sbx>", "hash",                                            \
      "sp-helperd (create, timeout, pause, resume, network), sp-sandboxes "    \
      "(workspace, ws_mount of a sandbox on a workspace; only while it "       \
      "exists)",                                                               \
      "sp-sandboxes, sp-execute, sp-terminal (rpc_sandbox_helper), "           \
      "sp-helperd (reconcile)",                                                \
      "deleted when the sandbox ends or its helper restarts")                  \
    X(KEY_TPL, "tpl:<name>", "hash",                                           \
      "sp-helperd (template list, template_delete)",                           \
      "sp-sandboxes (GET /templates)",                                         \
      "while the template exists; deleted with it")                            \
    X(KEY_TPLS, "templates", "set", "sp-helperd (template list: RENAME)",      \
      "sp-sandboxes (GET /templates)",                                         \
      "permanent; replaced whole every few seconds")                           \
    X(KEY_TPLS_NEW, "templates:<helper>:new", "set",                           \
      "sp-helperd (template list)", "nobody: renamed to templates",            \
      "renamed away at once")                                                  \
    X(KEY_TBUILD, "tbuild:<bld>", "hash",                                      \
      "sp-sandboxes (POST /templates), sp-helperd (build end)",                \
      "sp-sandboxes (GET /templates/{name}/builds/{id}), sp-sse (owner "       \
      "check)",                                                                \
      "expires SP_EVENT_TTL after the build ends")                             \
    X(KEY_SBX_RUNNING, "sbx:<sbx>:running", "set",                             \
      "sp-helperd (execution and context run start and end)",                  \
      "sp-helperd (start-up reconcile)",                                       \
      "an execution leaves it when it ends; deleted when the helper "          \
      "restarts")                                                              \
    X(KEY_SBX_METRICS, "sbx:<sbx>:metrics", "stream",                          \
      "sp-helperd (a sample every SP_METRICS_INTERVAL ms: cpu, cpus, mem, "    \
      "memmax, disk, diskmax; the entry id is the sample's Unix ms)",          \
      "sp-sandboxes (GET /sandboxes/{id}/metrics)",                            \
      "capped at about SP_METRICS_MAXLEN entries; deleted when the sandbox "   \
      "ends or its helper restarts")                                           \
    X(KEY_SBX_PIDS, "sbx:<sbx>:pids", "hash",                                  \
      "sp-envd (process Start: next, and <pid> -> {exe, pty, config})",        \
      "sp-envd (process Connect, List, SendInput, SendSignal, Update)",        \
      "deleted when the sandbox ends (the helper, lost_helper); expires "      \
      "SP_SANDBOX_MAX_TIMEOUT + SP_PAUSE_MAX after its last process start")    \
    X(KEY_SBX_CONTEXTS, "sbx:<sbx>:contexts", "set",                           \
      "sp-helperd (context create, end)",                                      \
      "sp-execute (context list), sp-helperd (reconcile)",                     \
      "a context leaves it when it ends; deleted when the helper restarts")    \
    X(KEY_SBXS_OF_OWNER, "sbxs:<sub>", "set",                                  \
      "sp-sandboxes (create, reserved by a Lua script), sp-helperd (end)",     \
      "sp-sandboxes (list, per-subject limit)",                                \
      "a sandbox leaves it when it ends or its creation fails")                \
    X(KEY_SESSION, "session:<sub>:<session>", "string",                        \
      "sp-sandboxes (session init), sp-chat (first chat)",                     \
      "sp-sandboxes (session routes), sp-chat",                                \
      "no expiry; replaced when the session is initialised after its "         \
      "sandbox ended")                                                         \
    X(KEY_SESSION_LOCK, "session:<sub>:<session>:lock", "string",              \
      "sp-sandboxes (session init, SET NX), sp-chat (first chat)",             \
      "sp-sandboxes (session init), sp-chat",                                  \
      "deleted when the creation ends; expires after 60 s")                    \
    X(KEY_RUNS, "runs:<sub>", "zset",                                          \
      "sp-execute, sp-terminal (reserve, release), sp-helperd (release)",      \
      "sp-execute, sp-terminal (per-subject limit of one-off runs)",           \
      "runs past their deadline are dropped; expires at the last deadline")    \
    X(KEY_EXEC, "exec:<exe>", "hash",                                          \
      "sp-helperd (execution, context run and terminal start and end)",        \
      "sp-execute, sp-sandboxes, sp-terminal, sp-sse (owner check)",           \
      "expires SP_EVENT_TTL after the execution ends")                         \
    X(KEY_EVENTS, "events:<exe>", "stream",                                    \
      "sp-helperd (hd_event, hd_ctx_event)",                                   \
      "sp-sse, sp-execute (GET /executions), sp-sandboxes (events page), "     \
      "sp-chat (a python_interpreter run followed)",                           \
      "capped at about SP_STREAM_MAXLEN entries; expires SP_EVENT_TTL after "  \
      "the execution ends")                                                    \
    X(KEY_WATCH, "watch:<wch>", "hash",                                        \
      "sp-helperd (watch start and end), sp-sse (watched_at)",                 \
      "sp-sandboxes (watch routes), sp-sse (owner check), sp-helperd "         \
      "(watched_at of a watch that lives while it is read)",                   \
      "expires SP_EVENT_TTL after the watch ends; ended by lost_helper when "  \
      "its helper is gone")                                                    \
    X(KEY_WATCH_EVENTS, "watch:<wch>:events", "stream",                        \
      "sp-helperd (file events of a watch), lost_helper (its end)",            \
      "sp-sse, sp-sandboxes (events page)",                                    \
      "capped at about SP_WATCH_MAXLEN entries; expires SP_EVENT_TTL after "   \
      "the watch ends")                                                        \
    X(KEY_SBX_WATCHES, "sbx:<sbx>:watches", "set",                             \
      "sp-helperd (watch start, end)",                                         \
      "sp-sandboxes (watch list), lost_helper",                                \
      "a watch leaves it when it ends; deleted when the sandbox ends or its "  \
      "helper is gone")                                                        \
    X(KEY_CTX, "ctx:<ctx>", "hash", "sp-helperd (context create)",             \
      "sp-execute (context routes), sp-chat (the session's default context)",  \
      "deleted when the context ends or its helper restarts")                  \
    X(KEY_CLIENT, "client:<sub>:<client>", "stream",                           \
      "sp-execute (announces executions started with a clientId), "            \
      "sp-worker (a workflow run's step executions)",                          \
      "sp-sse (/events?clientId=)",                                            \
      "capped at about 1000 entries; expires SP_EVENT_TTL after the last "     \
      "announcement")                                                          \
    X(KEY_TERMINAL, "terminal:<trm>", "hash",                                  \
      "sp-terminal (create), sp-sse (watched_at), sp-helperd (end)",           \
      "sp-terminal, sp-sse (owner check), sp-helperd (watched_at)",            \
      "expires SP_TERMINAL_TIMEOUT + SP_EVENT_TTL after creation and "         \
      "SP_EVENT_TTL after the shell ends; deleted if the start fails")         \
    X(KEY_TRMRATE, "trmrate:<trm>", "string", "sp-terminal (input, INCR)",     \
      "sp-terminal (input rate limit)", "expires 1 s after its first input")   \
    X(KEY_BUCKETS, "buckets:<sub>", "hash",                                    \
      "sp-storage (bucket create, delete)",                                    \
      "sp-storage (every bucket and object route: the owner check)",           \
      "permanent; a bucket leaves it when deleted")                            \
    X(KEY_SNAP, "snap:<snp>", "hash", "sp-sandboxes (snapshot create)",        \
      "sp-sandboxes (snapshot routes, create from a snapshot)",                \
      "permanent; deleted by DELETE /snapshots/{id}")                          \
    X(KEY_SNAPS_OF_OWNER, "snaps:<sub>", "set",                                \
      "sp-sandboxes (snapshot create, delete)",                                \
      "sp-sandboxes (GET /snapshots, per-subject limit)",                      \
      "permanent; a snapshot leaves it when deleted")                          \
    X(KEY_WS, "ws:<sub>:<name>", "hash",                                       \
      "sp-sandboxes (workspace create, hold, sync: CAS on version, release)",  \
      "sp-sandboxes (workspace routes, create with a workspace, sync)",        \
      "permanent; deleted by DELETE /workspaces/{name} when not held")         \
    X(KEY_WSS_OF_OWNER, "wss:<sub>", "set",                                    \
      "sp-sandboxes (workspace create, delete)",                               \
      "sp-sandboxes (GET /workspaces, per-subject limit)",                     \
      "permanent; a workspace leaves it when deleted")                         \
    X(KEY_WS_SYNC, "wsync", "zset",                                            \
      "sp-sandboxes (hold: added; periodic sync: next time; release)",         \
      "sp-sandboxes (the periodic sync thread)",                               \
      "a member (<sub>:<name>) leaves it when its hold is released or its "    \
      "holder is found gone")                                                  \
    X(KEY_WF, "wf:<wf>", "hash",                                               \
      "sp-workflows (POST /workflows: owner, spec, schedule), sp-worker "      \
      "(next, last_run)",                                                      \
      "sp-workflows (GET /workflows/{id}), sp-worker (the timer)",             \
      "expires SP_WORKFLOW_TTL after it was made or its next run is due; "     \
      "deleted by DELETE /workflows/{id}")                                     \
    X(KEY_WFSCHED, "wfsched", "zset",                                          \
      "sp-workflows (schedule), sp-worker (taken by ZREM, next time added)",   \
      "sp-worker (the timer: due entries, score Unix ms)",                     \
      "permanent; a workflow leaves it when taken (ZREM: one worker only)")    \
    X(KEY_WFQUEUE, "wfqueue", "stream",                                        \
      "sp-workflows (POST /workflows, retry), sp-worker (schedules)",          \
      "sp-worker (consumer group workers, sp_queue.h)",                        \
      "permanent; an entry is deleted once its run ended (XACK, XDEL); "       \
      "capped at about RPC_STREAM_MAXLEN entries")                             \
    X(KEY_WFRUN, "wfrun:<wfr>", "hash",                                        \
      "sp-workflows (create, cancel), sp-worker (steps, status)",              \
      "sp-workflows (GET, list, cancel, retry), sp-sse (owner check)",         \
      "expires SP_WORKFLOW_TTL after the run ends")                            \
    X(KEY_WFRUN_EVENTS, "wfrun:<wfr>:events", "stream",                        \
      "sp-worker (step changes, each step's output, result last)",             \
      "sp-sse (GET /workflows/runs/{id}/events)",                              \
      "capped at about SP_STREAM_MAXLEN entries; expires SP_WORKFLOW_TTL "     \
      "after the run ends")                                                    \
    X(KEY_WFACTIVE, "wfactive:<sub>", "zset",                                  \
      "sp-workflows (a run queued: reserved by a Lua script; a queued run "    \
      "cancelled), sp-worker (a run ended, schedules)",                        \
      "sp-workflows, sp-worker (SP_WORKFLOW_MAX_ACTIVE per subject)",          \
      "a run leaves it when it ends; entries lapse a day after they were "     \
      "made; expires at the last lapse")                                       \
    X(KEY_WFRUNS_OF, "wfruns:<sub>", "zset",                                   \
      "sp-workflows (create, retry), sp-worker (schedules)",                   \
      "sp-workflows (GET /workflows/runs)",                                    \
      "permanent; the newest SP_WORKFLOW_RUNS_MAX runs are kept")              \
    X(KEY_METRICS_REQUESTS, "metrics:requests", "hash",                        \
      "every FastCGI program (http_flusher, once a second)",                   \
      "sp-health (/metrics)", "permanent")

#define SP_KEY_ENUM(name, pattern, type, writers, readers, lifetime) name,
typedef enum sp_key_family {
    SP_KEY_FAMILIES(SP_KEY_ENUM) KEY_FAMILY_COUNT
} sp_key_family;
#undef SP_KEY_ENUM

/* One row of the table, for printing it (sp-admin keys). */
typedef struct sp_key_info {
    const char *name;     /* "KEY_SBX" */
    const char *pattern;  /* "sbx:<sbx>", after the prefix */
    const char *type;     /* Redis type */
    const char *writers;  /* programs that write it */
    const char *readers;  /* programs that read it */
    const char *lifetime; /* what expires or deletes it */
} sp_key_info;

/* The row of family f, or NULL if f is out of range. Static storage. */
const sp_key_info *key_info(sp_key_family f);

/* Set the prefix of every key (SP_PREFIX; rds_init calls this). Returns
 * 0, or -1 if prefix is longer than 32 bytes or holds a character other
 * than letters, digits and ":_-." (the prefix is then unchanged). */
int key_set_prefix(const char *prefix);

/* Build the key of family f into out: the prefix, then the pattern with
 * its one <...> replaced by id. A family without an id (KEY_HELPERS) takes
 * id NULL. Returns 0, or -1 if id is not a valid id (id_valid), if id is
 * given to a family without one or missing for a family with one, if the
 * family has two ids (use key_of2), or if out is too small. */
int key_of(char *out, size_t outlen, sp_key_family f, const char *id);

/* As key_of for a family with two ids (KEY_SESSION, KEY_CLIENT ...): id
 * and id2 fill its first and second <...>; both must be valid ids. */
int key_of2(char *out, size_t outlen, sp_key_family f, const char *id,
            const char *id2);

/* Print the table as a Markdown table on fp (sp-admin keys;
 * docs/KEYS.md holds exactly this). */
void key_table_markdown(FILE *fp);

#endif
