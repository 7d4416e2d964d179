/* handlers/e2b.h: the E2B adapters' shared names: the control plane's
 * routes (e2b_sandboxes.c, in sp-sandboxes) and what the envd family
 * (envd*.c, sp-envd) advertises. */
#ifndef E2B_H
#define E2B_H

#include <cjson/cJSON.h>

#include "sp_http.h"
#include "sp_redis.h"

/* The envd version advertised at create and connect: the highest whose
 * features (E2B's SDK gates on it: 0.4.0 default user, 0.5.2 closeStdin,
 * 0.5.7 octet-stream uploads) are all served by envd*.c. */
#define E2B_ENVD_VERSION "0.5.7"
/* E2B's clientID of a sandbox: which cluster runs it. */
#define E2B_CLIENT_ID "sandpipe"

/* Add E2B's fields of sandbox id (sandboxID, templateID, clientID,
 * envdVersion, startedAt, endAt, state, cpuCount, memoryMB, diskSizeMB,
 * allowInternetAccess) from its record h (HGETALL of sbx:<id>) to o. */
void e2b_sandbox_fields(cJSON *o, const redisReply *h, const char *id);

/* POST /v2/sandboxes, GET /v2/sandboxes, POST /v2/sandboxes/{id}/connect. */
void e2b_create(http_req *r);
void e2b_list(http_req *r);
void e2b_connect(http_req *r);

#endif
