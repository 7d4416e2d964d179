/* sse_ws_msg.c: what WebSocket clients of the relay say and hear
 * (sse_ws.c is the transport). Two kinds of connection:
 *
 *   /?clientId=ID, /ws?clientId=ID   the client stream of ID (made up and
 *       told in "connected" when not given): every execution started with
 *       that clientId, as the same events as GET /events?clientId= but one
 *       JSON message each ({"type":"status"|"stdout"|"stderr"|"result",
 *       "executionId", "data"|"status"|..., "duration"}). The client may
 *       send {"type":"execute", code, language, timeout, ...} (answered
 *       {"type":"started","executionId"}) and {"type":"cancel",
 *       executionId}.
 *   /terminal   a shell in a new sandbox (of SP_WS_TERMINAL_TEMPLATE, or
 *       a one-off sandbox of the terminal's own when empty): the client
 *       sends {"type":"input","data"} and {"type":"resize","cols","rows"};
 *       it hears {"type":"status","message",...}, "ready", {"type":"output",
 *       "data"}, "exit" and {"type":"error","message"}. When the
 *       connection goes, the terminal and its sandbox end after
 *       SP_TERMINAL_GRACE seconds unless a client comes back with
 *       /terminal?terminalId=trm_... (same subject).
 *
 * Authentication: the upgrade request's credential, else a first message
 * {"type":"auth","token"|"apiKey"}; anything else first is closed (1008).
 * Every start, cancel, input, resize and end is a call to the handler that
 * serves the same HTTP route (sse_forward.c) with the client's own
 * credential: POST /execute-stream, POST /executions/{id}/cancel, POST
 * /sandboxes, POST /terminal, POST /terminal/{id}/input and /resize,
 * DELETE /terminal/{id} and /sandboxes/{id}. */
#include "sse_ws.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_status.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SSE_WS_REPLAY_S 300 /* executions of a client stream shown again */

const sse_route sse_ws_client_route = {
    .prefix = "/ws",
    .id_prefix = "exe_",
    .owner = KEY_EXEC,
    .label = "executionId",
    .final_type = "result",
    .client_stream = 1,
    .frame = &frame_websocket,
    .events = KEY_EVENTS,
    .noun = "execution",
};

long long sse_ws_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A call for cl (handle 0: for nobody) with the credential cred; body is
 * consumed. */
void sse_ws_call(uint64_t handle, const sse_ws *ws, const char *cred,
                 int bearer, int tag, const char *program, const char *method,
                 const char *path, cJSON *body)
{
    sse_call *c = calloc(1, sizeof *c);

    if (c == NULL) {
        cJSON_Delete(body);
        return;
    }
    c->handle = handle;
    c->tag = tag;
    snprintf(c->program, sizeof c->program, "%s", program);
    snprintf(c->method, sizeof c->method, "%s", method);
    snprintf(c->path, sizeof c->path, "%s", path);
    snprintf(c->remote, sizeof c->remote, "%s", ws->remote);
    c->cred = cred != NULL ? strdup(cred) : NULL;
    c->cred_bearer = bearer;
    if (body != NULL) {
        c->body = cJSON_PrintUnformatted(body);
        c->body_len = c->body != NULL ? strlen(c->body) : 0;
        cJSON_Delete(body);
    }
    sse_forward_submit(c);
}

void sse_ws_call_cl(sse_client *cl, int tag, const char *program,
                    const char *method, const char *path, cJSON *body)
{
    sse_ws_call(sse_client_handle(cl), cl->ws, cl->ws->cred,
                cl->ws->cred_bearer, tag, program, method, path, body);
}

/* Ask the reader to authenticate cl's credential. */
static void sse_ws_authenticate(sse_client *cl)
{
    sse_ws *ws = cl->ws;
    sse_job *job = calloc(1, sizeof *job);

    if (job == NULL) {
        sse_ws_close(cl, SSE_WS_INTERNAL, "internal error");
        return;
    }
    job->type = SSE_JOB_OPEN;
    job->handle = sse_client_handle(cl);
    job->route = &sse_ws_client_route; /* authentication only */
    if (!ws->cred_bearer && strlen(ws->cred) < sizeof job->api_key)
        snprintf(job->api_key, sizeof job->api_key, "%s", ws->cred);
    else
        job->token = strdup(ws->cred);
    ws->opening = 1;
    cl->state = SSE_CL_AUTH;
    sse_reader_submit(job);
}

void sse_ws_begin(sse_client *cl)
{
    cl->route = cl->ws->mode == SSE_WS_TERMINAL ? &sse_ws_terminal_route
                                                : &sse_ws_client_route;
    if (cl->ws->cred != NULL)
        sse_ws_authenticate(cl);
    else if (sse_ws_upgrade(cl) != 0)
        sse_client_finish(cl); /* not freed: the parser holds cl */
}

void sse_ws_opened(sse_client *cl, const sse_res *res)
{
    sse_ws *ws = cl->ws;
    char key[RDS_KEY_MAX], msg[128];

    ws->opening = 0;
    if (res->status != SP_OK) {
        if (!ws->upgraded) {
            if (res->status == SP_E_UNAVAILABLE)
                sse_ws_refuse(cl, 503, "unavailable", "service unavailable",
                              "Retry-After: 1\r\n");
            else
                sse_ws_refuse(cl, 401, "unauthenticated",
                              "missing or invalid credentials", NULL);
            return;
        }
        sse_ws_close(cl, SSE_WS_POLICY,
                     res->status == SP_E_UNAVAILABLE ? "service unavailable"
                                                     : "unauthenticated");
        return;
    }
    snprintf(ws->sub, sizeof ws->sub, "%s", res->sub);
    if (sse_ws_upgrade(cl) != 0) {
        sse_client_close(cl);
        return;
    }
    sse_client_streaming(cl);
    if (ws->mode == SSE_WS_TERMINAL) {
        if (ws->terminal[0] != '\0')
            sse_ws_adopt(cl);
        else
            sse_ws_start_terminal(cl);
        return;
    }
    if (ws->client_id[0] == '\0')
        id_generate("cli_", ws->client_id, sizeof ws->client_id);
    snprintf(msg, sizeof msg, "{\"type\":\"connected\",\"clientId\":\"%s\"}",
             ws->client_id);
    sse_ws_send(cl, msg);
    if (key_of2(key, sizeof key, KEY_CLIENT, ws->sub, ws->client_id) != 0 ||
        sse_sub_add(cl, key, &sse_ws_client_route, ws->client_id, 1, NULL, 0,
                    sse_ws_wall_ms() - SSE_WS_REPLAY_S * 1000LL) == NULL)
        sse_ws_close(cl, SSE_WS_INTERNAL, "internal error");
}

/* {"type":"auth","token"|"apiKey"} before anything else. */
static void sse_ws_auth_message(sse_client *cl, const cJSON *m)
{
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(m, "token");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(m, "apiKey");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "type");
    const cJSON *v = cJSON_IsString(tok) ? tok : key;

    if (!cJSON_IsString(t) || strcmp(t->valuestring, "auth") != 0 ||
        !cJSON_IsString(v) || v->valuestring[0] == '\0' ||
        strlen(v->valuestring) > 4096) {
        sse_ws_close(cl, SSE_WS_POLICY, "authenticate first");
        return;
    }
    cl->ws->cred = strdup(v->valuestring);
    cl->ws->cred_bearer = v == tok;
    if (cl->ws->cred == NULL)
        sse_ws_close(cl, SSE_WS_INTERNAL, "internal error");
    else
        sse_ws_authenticate(cl);
}

/* {"type":"execute", code, language, timeout, ...}: POST /execute-stream
 * with this connection's clientId. */
static void sse_ws_execute(sse_client *cl, cJSON *m)
{
    cJSON_DeleteItemFromObjectCaseSensitive(m, "type");
    cJSON_DeleteItemFromObjectCaseSensitive(m, "clientId");
    cJSON_AddStringToObject(m, "clientId", cl->ws->client_id);
    sse_ws_call_cl(cl, SSE_WSC_EXECUTE, "execute", "POST", "/execute-stream",
                   cJSON_Duplicate(m, 1));
}

/* {"type":"cancel", executionId}: POST /executions/{id}/cancel. */
static void sse_ws_cancel(sse_client *cl, const cJSON *m)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "executionId");
    char path[128];

    if (!cJSON_IsString(id) || !id_valid_typed(id->valuestring, "exe_")) {
        sse_ws_error(cl, "not_found", "no such execution");
        return;
    }
    snprintf(path, sizeof path, "/executions/%s/cancel", id->valuestring);
    sse_ws_call_cl(cl, SSE_WSC_CANCEL, "execute", "POST", path, NULL);
}

void sse_ws_message(sse_client *cl, const char *text, size_t len)
{
    cJSON *m = cJSON_ParseWithLength(text, len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "type");
    const char *type = cJSON_IsString(t) ? t->valuestring : "";
    int terminal = cl->ws->mode == SSE_WS_TERMINAL;

    if (cl->ws->sub[0] == '\0' && !cl->ws->opening)
        sse_ws_auth_message(cl, m);
    else if (cl->ws->sub[0] == '\0')
        sse_ws_error(cl, "unauthenticated", "not authenticated yet");
    else if (!cJSON_IsObject(m))
        sse_ws_error(cl, "invalid_json", "a message is a JSON object");
    else if (!terminal && strcmp(type, "execute") == 0)
        sse_ws_execute(cl, m);
    else if (!terminal && strcmp(type, "cancel") == 0)
        sse_ws_cancel(cl, m);
    else if (terminal &&
             (strcmp(type, "input") == 0 || strcmp(type, "resize") == 0))
        sse_ws_terminal_message(cl, type, m);
    else
        sse_ws_error(cl, "invalid_argument", "unknown message type");
    cJSON_Delete(m);
}

/* The error of a handler's answer to cl: its envelope's code and
 * message. */
void sse_ws_answer_error(sse_client *cl, const sse_call *c)
{
    cJSON *a = c->answer ? cJSON_Parse(c->answer) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(a, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");

    sse_ws_error(cl, cJSON_IsString(code) ? code->valuestring : "unavailable",
                 cJSON_IsString(msg) ? msg->valuestring
                                     : "the service could not be asked");
    cJSON_Delete(a);
}

/* A string field of a handler's JSON answer into out; 0 or -1. */
int sse_ws_answer_id(const sse_call *c, const char *name, const char *prefix,
                     char *out, size_t outlen)
{
    cJSON *a = c->answer ? cJSON_Parse(c->answer) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, name);
    int rc = -1;

    if (cJSON_IsString(v) && id_valid_typed(v->valuestring, prefix)) {
        snprintf(out, outlen, "%s", v->valuestring);
        rc = 0;
    }
    cJSON_Delete(a);
    return rc;
}

void sse_ws_answered(sse_call *c)
{
    sse_client *cl = c->handle != 0 ? sse_client_get(c->handle) : NULL;
    char msg[128], exe[SSE_ID_LEN];

    if (cl == NULL || cl->ws == NULL || cl->state == SSE_CL_CLOSING) {
        sse_ws_orphan(c);
        return;
    }
    switch (c->tag) {
    case SSE_WSC_EXECUTE:
        if (c->status / 100 == 2 &&
            sse_ws_answer_id(c, "executionId", "exe_", exe, sizeof exe) == 0) {
            snprintf(msg, sizeof msg,
                     "{\"type\":\"started\",\"executionId\":\"%s\"}", exe);
            sse_ws_send(cl, msg);
            return;
        }
        break;
    case SSE_WSC_SANDBOX:
        sse_ws_sandbox_made(cl, c);
        return;
    case SSE_WSC_TERMINAL:
        sse_ws_terminal_made(cl, c);
        return;
    default:
        if (c->status / 100 == 2)
            return;
    }
    sse_ws_answer_error(cl, c);
}
