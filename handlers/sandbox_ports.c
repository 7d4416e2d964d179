/* handlers/sandbox_ports.c: the sandboxes family's preview facts
 * (docs/DESIGN.md §4.3 "Preview URLs"): a sandbox's preview URL, the
 * traffic token its owner hands out, and GET /sandboxes/{id}/ports, the
 * TCP ports that listen inside it (the helper reads them) with their URLs.
 * The proxy itself is sp-preview (preview/). */
#include "sandboxes.h"
#include "sp_auth.h"
#include "sp_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ":<port>" of SP_LISTEN for a URL, "" for port 80. */
static const char *sbxh_listen_port(void)
{
    const char *c = strrchr(cfg_str(CFG_SP_LISTEN), ':');

    return c == NULL || strcmp(c, ":80") == 0 ? "" : c;
}

void sbxh_preview_url(const char *id, const char *port, char *out, size_t n)
{
    snprintf(out, n, "http://%s-%s.%s%s/", port, id,
             cfg_str(CFG_SP_PREVIEW_DOMAIN), sbxh_listen_port());
}

void sbxh_render_preview(cJSON *o, const char *id, const char *public_flag)
{
    char url[SBXH_URL_SIZE], tok[AUTH_SBX_TOKEN_SIZE];

    cJSON_AddBoolToObject(o, "public",
                          public_flag != NULL && strcmp(public_flag, "1") == 0);
    sbxh_preview_url(id, "{port}", url, sizeof url);
    cJSON_AddStringToObject(o, "preview_url", url);
    if (auth_sandbox_token(AUTH_SBX_TRAFFIC, id, tok) == 0)
        cJSON_AddStringToObject(o, "traffic_token", tok);
}

void sbxh_ports(http_req *r)
{
    char helper[SP_ID_SIZE], url[SBXH_URL_SIZE], port[8];
    cJSON *ports, *root, *it;
    rpc_err err;

    if (sbxh_lookup(r, r->params[0], helper) != 0)
        return;
    if (hc_ports(helper, r->params[0], &ports, &err) != 0) {
        http_send_rpc_error(r, &err, NULL);
        return;
    }
    cJSON_ArrayForEach(it, ports)
    {
        snprintf(port, sizeof port, "%d",
                 (int)cJSON_GetNumberValue(
                     cJSON_GetObjectItemCaseSensitive(it, "port")));
        sbxh_preview_url(r->params[0], port, url, sizeof url);
        cJSON_AddStringToObject(it, "url", url);
    }
    root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "ports", ports);
    http_send_json(r, 200, root);
    cJSON_Delete(root);
}
