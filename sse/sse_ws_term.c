/* sse_ws_term.c: terminals over WebSocket (/terminal; sse_ws_msg.c has
 * the overview): a new terminal (in a sandbox of SP_WS_TERMINAL_TEMPLATE
 * made first, or in a one-off sandbox of its own), its events followed,
 * input and resize passed on, and its end: when the connection goes, the
 * terminal (and a template sandbox made for it) is ended after
 * SP_TERMINAL_GRACE seconds, unless a client of the same subject comes
 * back with /terminal?terminalId=. What was made for a client that left
 * while it was being made is ended at once. A relay that restarts in the
 * grace period forgets its ends: the helper still closes a terminal nobody
 * watches (SP_TERMINAL_GRACE), and a template sandbox lives to its own
 * timeout. */
#include "sse_ws.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A terminal whose connection went: ended at due unless adopted. */
typedef struct sse_ws_pending {
    struct sse_ws_pending *next;
    char terminal[SSE_ID_LEN], sandbox[SSE_ID_LEN], sub[SSE_ID_LEN];
    char remote[64];
    char *cred;
    int cred_bearer;
    long long due_ms;
} sse_ws_pending;

const sse_route sse_ws_terminal_route = {
    .prefix = "/terminal",
    .id_prefix = "trm_",
    .owner = KEY_TERMINAL,
    .label = "terminalId",
    .final_type = "exit",
    .frame = &frame_websocket,
    .events = KEY_EVENTS,
    .noun = "terminal",
    .touch = 1,
};

static sse_ws_pending *sse_ws_pendings;

/* Subscribe cl to the events of terminal trm (after: from now on only). */
static void sse_ws_follow_terminal(sse_client *cl, int from_now)
{
    char key[RDS_KEY_MAX], msg[256];
    sse_sid after = {(uint64_t)sse_ws_wall_ms(), 0};

    if (key_of(key, sizeof key, KEY_EVENTS, cl->ws->terminal) != 0 ||
        sse_sub_add(cl, key, &sse_ws_terminal_route, cl->ws->terminal, 0,
                    from_now ? &after : NULL, 0, 0) == NULL) {
        sse_ws_close(cl, SSE_WS_INTERNAL, "internal error");
        return;
    }
    snprintf(msg, sizeof msg,
             "{\"type\":\"status\",\"message\":\"terminal %s\","
             "\"terminalId\":\"%s\",\"sandboxId\":\"%s\"}",
             from_now ? "resumed" : "started", cl->ws->terminal,
             cl->ws->sandbox);
    sse_ws_send(cl, msg);
}

/* /terminal?terminalId=: take the terminal back from the pending ends. */
void sse_ws_adopt(sse_client *cl)
{
    sse_ws *ws = cl->ws;

    for (sse_ws_pending **pp = &sse_ws_pendings; *pp != NULL;
         pp = &(*pp)->next) {
        sse_ws_pending *p = *pp;
        if (strcmp(p->terminal, ws->terminal) != 0 ||
            strcmp(p->sub, ws->sub) != 0)
            continue;
        *pp = p->next;
        snprintf(ws->sandbox, sizeof ws->sandbox, "%s", p->sandbox);
        explicit_bzero(p->cred, strlen(p->cred));
        free(p->cred);
        free(p);
        sse_ws_follow_terminal(cl, 1);
        return;
    }
    sse_ws_close(cl, SSE_WS_POLICY, "no such terminal");
}

/* A new terminal: its sandbox first when a template is configured. */
void sse_ws_start_terminal(sse_client *cl)
{
    const char *tpl = cfg_str(CFG_SP_WS_TERMINAL_TEMPLATE);
    cJSON *b = cJSON_CreateObject();

    sse_ws_send(cl, "{\"type\":\"status\",\"message\":\"starting a "
                    "sandbox\"}");
    if (tpl != NULL && tpl[0] != '\0') {
        cJSON_AddStringToObject(b, "template", tpl);
        sse_ws_call_cl(cl, SSE_WSC_SANDBOX, "sandboxes", "POST", "/sandboxes",
                       b);
        return;
    }
    cJSON_AddNumberToObject(b, "cols", cl->ws->cols);
    cJSON_AddNumberToObject(b, "rows", cl->ws->rows);
    sse_ws_call_cl(cl, SSE_WSC_TERMINAL, "terminal", "POST", "/terminal", b);
}

/* {"type":"input", data} and {"type":"resize", cols, rows}. */
void sse_ws_terminal_message(sse_client *cl, const char *type, cJSON *m)
{
    char path[128];

    if (cl->ws->terminal[0] == '\0') {
        sse_ws_error(cl, "conflict", "the terminal is not ready yet");
        return;
    }
    snprintf(path, sizeof path, "/terminal/%s/%s", cl->ws->terminal,
             strcmp(type, "input") == 0 ? "input" : "resize");
    cJSON_DeleteItemFromObjectCaseSensitive(m, "type");
    sse_ws_call_cl(cl, SSE_WSC_INPUT, "terminal", "POST", path,
                   cJSON_Duplicate(m, 1));
}

/* The end of a terminal (and of the sandbox made for it), for nobody. */
static void sse_ws_end_terminal(const sse_ws *ws, const char *cred, int bearer,
                                const char *trm, const char *sbx)
{
    char path[128];

    if (trm != NULL && trm[0] != '\0') {
        snprintf(path, sizeof path, "/terminal/%s", trm);
        sse_ws_call(0, ws, cred, bearer, SSE_WSC_END, "terminal", "DELETE",
                    path, NULL);
    }
    if (sbx != NULL && sbx[0] != '\0') {
        snprintf(path, sizeof path, "/sandboxes/%s", sbx);
        sse_ws_call(0, ws, cred, bearer, SSE_WSC_END, "sandboxes", "DELETE",
                    path, NULL);
    }
}

/* A sandbox or terminal made for a client that has gone: ended. */
void sse_ws_orphan(const sse_call *c)
{
    sse_ws none = {0};
    char id[SSE_ID_LEN], sbx[SSE_ID_LEN] = "";

    snprintf(none.remote, sizeof none.remote, "%s", c->remote);
    if (c->tag == SSE_WSC_SANDBOX && c->status == 201 &&
        sse_ws_answer_id(c, "id", "sbx_", id, sizeof id) == 0)
        sse_ws_end_terminal(&none, c->cred, c->cred_bearer, NULL, id);
    if (c->tag == SSE_WSC_TERMINAL && c->status == 201 &&
        sse_ws_answer_id(c, "id", "trm_", id, sizeof id) == 0) {
        sse_ws_answer_id(c, "sandbox_id", "sbx_", sbx, sizeof sbx);
        sse_ws_end_terminal(&none, c->cred, c->cred_bearer, id,
                            cfg_str(CFG_SP_WS_TERMINAL_TEMPLATE)[0] ? sbx
                                                                    : NULL);
    }
}

/* The sandbox of a new terminal is made: the terminal in it now. */
void sse_ws_sandbox_made(sse_client *cl, const sse_call *c)
{
    cJSON *b;

    if (c->status != 201 || sse_ws_answer_id(c, "id", "sbx_", cl->ws->sandbox,
                                             sizeof cl->ws->sandbox) != 0) {
        sse_ws_answer_error(cl, c);
        sse_ws_close(cl, SSE_WS_INTERNAL, "no sandbox");
        return;
    }
    b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "sandbox_id", cl->ws->sandbox);
    cJSON_AddNumberToObject(b, "cols", cl->ws->cols);
    cJSON_AddNumberToObject(b, "rows", cl->ws->rows);
    sse_ws_call_cl(cl, SSE_WSC_TERMINAL, "terminal", "POST", "/terminal", b);
}

void sse_ws_terminal_made(sse_client *cl, const sse_call *c)
{
    if (c->status != 201 || sse_ws_answer_id(c, "id", "trm_", cl->ws->terminal,
                                             sizeof cl->ws->terminal) != 0) {
        sse_ws_answer_error(cl, c);
        sse_ws_close(cl, SSE_WS_INTERNAL, "no terminal");
        return;
    }
    if (cl->ws->sandbox[0] == '\0')
        sse_ws_answer_id(c, "sandbox_id", "sbx_", cl->ws->sandbox,
                         sizeof cl->ws->sandbox);
    sse_ws_follow_terminal(cl, 0);
}

void sse_ws_gone(sse_client *cl)
{
    sse_ws *ws = cl->ws;
    sse_ws_pending *p;

    if (ws->mode != SSE_WS_TERMINAL || ws->terminal[0] == '\0' ||
        ws->cred == NULL || (p = calloc(1, sizeof *p)) == NULL)
        return;
    snprintf(p->terminal, sizeof p->terminal, "%s", ws->terminal);
    /* A sandbox of the terminal's own ends with it: only a template
     * sandbox is ours to delete. */
    snprintf(p->sandbox, sizeof p->sandbox, "%s",
             cfg_str(CFG_SP_WS_TERMINAL_TEMPLATE)[0] ? ws->sandbox : "");
    snprintf(p->sub, sizeof p->sub, "%s", ws->sub);
    snprintf(p->remote, sizeof p->remote, "%s", ws->remote);
    p->cred = ws->cred; /* moved */
    p->cred_bearer = ws->cred_bearer;
    ws->cred = NULL;
    p->due_ms = sse_now_ms() + cfg_int(CFG_SP_TERMINAL_GRACE) * 1000;
    p->next = sse_ws_pendings;
    sse_ws_pendings = p;
}

void sse_ws_tick(long long now_ms)
{
    for (sse_ws_pending **pp = &sse_ws_pendings; *pp != NULL;) {
        sse_ws_pending *p = *pp;
        sse_ws ws = {0};
        if (p->due_ms > now_ms) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        snprintf(ws.remote, sizeof ws.remote, "%s", p->remote);
        sse_ws_end_terminal(&ws, p->cred, p->cred_bearer, p->terminal,
                            p->sandbox);
        explicit_bzero(p->cred, strlen(p->cred));
        free(p->cred);
        free(p);
    }
}
