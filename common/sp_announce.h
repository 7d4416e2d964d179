/* sp_announce.h: a client stream (client:<sub>:<clientId>, sp_keys.h)
 * learns of an execution before it starts: an entry {type:"execution",
 * data:<exe>} that the relay follows with a subscription to the
 * execution's events (docs/DESIGN.md §4.2 "Client streams"). Written by
 * /execute-stream, context runs and the worker's workflow steps. */
#ifndef SP_ANNOUNCE_H
#define SP_ANNOUNCE_H

#define ANNOUNCE_STREAM_MAX 1000 /* entries a client stream keeps */

/* Announce execution exe on sub's client stream client (NULL: a new
 * clientId is made into cid, SP_ID_SIZE bytes). Returns the clientId used
 * (client or cid). A Redis failure is not reported: the execution runs
 * whether or not anyone follows it. */
const char *announce_execution(const char *sub, const char *client,
                               const char *exe, char *cid);

#endif
