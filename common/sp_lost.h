/* sp_lost.h: what happens to the work of a helper that is gone (issue
 * "nothing stuck"; docs/DESIGN.md §5.5). A helper proves it is alive with
 * a heartbeat in the sorted set `helpers` (its score: Unix ms) every
 * LOST_BEAT_MS; one whose heartbeat is older than LOST_STALE_MS is gone.
 * Its executions then end with status "error", error "sandbox_lost" and a
 * last event (result, or exit for a terminal), once, whoever notices
 * first: the restarted helper itself, the sweeper of sp-health, or a
 * handler waiting for one of its answers; and its sandboxes' records go.
 * Every function here is safe to run twice or from several programs at
 * once: an execution that has ended is left alone. */
#ifndef SP_LOST_H
#define SP_LOST_H

#define LOST_ERROR    "sandbox_lost"
#define LOST_BEAT_MS  500
#define LOST_STALE_MS 2000
#define LOST_BUSY     (-2) /* lost_helper: another program is sweeping */

/* 1 if helper's heartbeat is older than LOST_STALE_MS or missing, 0 if it
 * is fresh, -1 if Redis could not tell. */
int lost_helper_stale(const char *helper);

/* End execution exe as lost (error why: a word of [a-z_], as LOST_ERROR)
 * unless it has ended or has no
 * record: its record says so and its stream gets its last event. Returns
 * 1 if it ended it, 0 if there was nothing to end, -1 if Redis failed. */
int lost_exec(const char *exe, const char *why);

/* End every execution and file watch of helper's sandboxes as lost (why)
 * and delete the records of those sandboxes (the sandbox, its running,
 * context and watch sets, its place in its owner's set) and the helper's
 * set of them. One caller
 * at a time per helper (others get LOST_BUSY at once). Returns the number of
 * executions ended, or -1 if Redis failed. */
int lost_helper(const char *helper, const char *why);

/* Every helper whose heartbeat is stale: lost_helper, then it leaves
 * `helpers` (a helper that was only slow sees that at its next heartbeat
 * and ends its sandboxes). Nothing is swept until this caller has seen
 * Redis answer for 2 × LOST_STALE_MS: after an outage of Redis every
 * heartbeat looks old. One caller (thread) per process. Returns the
 * number of helpers swept, or -1. */
int lost_sweep(void);

#endif
