/* sp_announce.c: an execution announced on a client stream
 * (sp_announce.h). */
#include "sp_announce.h"

#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"
#include "sp_redis.h"

const char *announce_execution(const char *sub, const char *client,
                               const char *exe, char *cid)
{
    char k[RDS_KEY_MAX];

    if (client == NULL) {
        id_generate("cli_", cid, SP_ID_SIZE);
        client = cid;
    }
    /* Announced before the run starts, so a client stream that is already
     * open sees every event of it. */
    if (key_of2(k, sizeof k, KEY_CLIENT, sub, client) != 0)
        return client;
    freeReplyObject(rds_cmd("XADD %s MAXLEN ~ %d * type execution data %s", k,
                            ANNOUNCE_STREAM_MAX, exe));
    freeReplyObject(rds_cmd("EXPIRE %s %lld", k, cfg_int(CFG_SP_EVENT_TTL)));
    return client;
}
