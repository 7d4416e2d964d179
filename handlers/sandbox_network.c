/* handlers/sandbox_network.c: the sandboxes family's egress policy: the
 * "network" field of POST /sandboxes (true, false, or {internet,
 * allow_out, deny_out}), PUT /sandboxes/{id}/network (a running
 * sandbox's new policy) and "network" as every sandbox answer shows it.
 * common/sp_netpol.c parses and checks the policy (the helper does again:
 * a job is hostile input too); helper/hd_egress.c applies a change. */
#include "sandboxes.h"
#include "sp_netpol.h"

#include <stdio.h>
#include <string.h>

/* Parse v into pol; -1 after the 400 naming the entry at fault. */
static int sbxh_netpol(http_req *r, const cJSON *v, sp_netpol *pol)
{
    char field[64], msg[256];

    if (netpol_parse(v, pol, field, sizeof field, msg, sizeof msg) == 0)
        return 0;
    http_send_error(r, SP_E_INVALID_ARGUMENT, field, "%s", msg);
    return -1;
}

int sbxh_network_spec(http_req *r, const cJSON *body, hc_sandbox_req *q)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "network");
    sp_netpol pol;

    if (sbxh_netpol(r, v, &pol) != 0)
        return -1;
    q->network = pol.network;
    /* The object form travels as the helper parses it again; true and
     * false as they always did (so a ready sandbox still matches). */
    q->netpol = cJSON_IsObject(v) ? netpol_json(&pol) : NULL;
    netpol_free(&pol);
    return 0;
}

void sbxh_network_render(cJSON *o, const redisReply *h)
{
    const char *np = sbxh_field(h, "netpol"), *on = sbxh_field(h, "network");
    cJSON *j = np != NULL ? cJSON_Parse(np) : NULL;

    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = cJSON_CreateObject();
        cJSON_AddBoolToObject(j, "internet", on != NULL && !strcmp(on, "1"));
        cJSON_AddArrayToObject(j, "allow_out");
        cJSON_AddArrayToObject(j, "deny_out");
    }
    cJSON_AddItemToObject(o, "network", j);
}

void sbxh_network_put(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *np = NULL, *got = NULL, *o;
    char helper[SP_ID_SIZE];
    sp_netpol pol = {0};
    rpc_err err;

    if (body == NULL)
        return;
    /* The body is the policy; {"network": policy} is taken too. */
    if (cJSON_GetObjectItemCaseSensitive(body, "network") != NULL &&
        cJSON_GetArraySize(body) == 1)
        np = cJSON_DetachItemFromObjectCaseSensitive(body, "network");
    if (sbxh_netpol(r, np ? np : body, &pol) != 0 ||
        sbxh_lookup(r, r->params[0], helper) != 0)
        goto out;
    cJSON_Delete(np);
    np = netpol_json(&pol);
    if (hc_network(helper, r->params[0], np, &got, &err) != 0) {
        http_send_rpc_error(r, &err, NULL);
        goto out;
    }
    o = sbxh_render(r->params[0]);
    if (o == NULL) {
        http_send_error(r, SP_E_NOT_FOUND, NULL, "sandbox not found");
        goto out;
    }
    http_send_json(r, 200, o);
    cJSON_Delete(o);
out:
    cJSON_Delete(got);
    cJSON_Delete(np);
    netpol_free(&pol);
    cJSON_Delete(body);
}
