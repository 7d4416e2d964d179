/* sse_envd.c: the shapes of E2B's envd streams (sse_map, sse.h): what the
 * relay's envd routes (sse_request.c) send for each entry of an
 * execution's event stream, as process.Process's StartResponse and
 * ConnectResponse messages in protobuf's JSON mapping (framed as Connect
 * envelopes by frame_connect):
 *   head (the pid)   {"event":{"start":{"pid":N}}}, always first
 *   stdout, stderr   {"event":{"data":{"stdout"|"stderr":"<base64>"}}}; a
 *                    PTY's output (route pty) is "pty"
 *   result           {"event":{"end":{"exitCode","exited","status",
 *                    "error"?}}} as Go's os/exec words an end: "exit status
 *                    3"; a signal: exitCode -1, exited false, "signal:
 *                    killed"
 *   anything else    skipped (status, events_lost)
 * Output is base64 of the bytes as the program wrote them, so nothing it
 * prints can become framing and binary output arrives whole. */
#include "sse.h"
#include "sp_b64.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* {"event":{"start":{"pid":<arg>}}}; arg must be a pid. */
static int envd_head_pid(sp_buf *b, const char *arg)
{
    size_t n = strlen(arg);

    if (n == 0 || n > 10 || strspn(arg, "0123456789") != n || arg[0] == '0')
        return -1;
    return buf_printf(b, "{\"event\":{\"start\":{\"pid\":%s}}}", arg);
}

/* {"event":{"data":{"<which>":"<base64 of data>"}}} */
static int envd_data(sp_buf *b, const char *which, const char *data,
                     size_t dlen)
{
    if (buf_printf(b, "{\"event\":{\"data\":{\"%s\":\"", which) != 0 ||
        b64_encode(b, data, dlen) != 0)
        return -1;
    return buf_puts(b, "\"}}}");
}

/* The end message of a result entry ({"data":{exitCode, status, signal?,
 * error?}, "duration"}, helper/hd_result.c). */
static int envd_end(sp_buf *b, const char *data, size_t dlen)
{
    cJSON *ev = cJSON_ParseWithLength(data, dlen), *root, *end;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev, "data");
    const char *sig =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "signal"));
    const char *err =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "error"));
    int code = (int)cJSON_GetNumberValue(
        cJSON_GetObjectItemCaseSensitive(d, "exitCode"));
    char words[96];
    char *s;
    int rc = -1;

    root = cJSON_CreateObject();
    end =
        cJSON_AddObjectToObject(cJSON_AddObjectToObject(root, "event"), "end");
    if (sig != NULL || err != NULL) {
        /* Killed (by a signal, its deadline) or lost: envd's -1. */
        if (sig != NULL) {
            snprintf(words, sizeof words, "signal: %s", sig);
            words[8] = (char)tolower((unsigned char)words[8]);
        } else {
            snprintf(words, sizeof words, "%s", err);
        }
        cJSON_AddNumberToObject(end, "exitCode", -1);
        cJSON_AddBoolToObject(end, "exited", 0);
    } else {
        snprintf(words, sizeof words, "exit status %d", code);
        cJSON_AddNumberToObject(end, "exitCode", code);
        cJSON_AddBoolToObject(end, "exited", 1);
    }
    cJSON_AddStringToObject(end, "status", words);
    if (sig != NULL || err != NULL || code != 0)
        cJSON_AddStringToObject(end, "error", words);
    s = cJSON_PrintUnformatted(root);
    if (s != NULL && cJSON_IsObject(d))
        rc = buf_puts(b, s);
    cJSON_free(s);
    cJSON_Delete(root);
    cJSON_Delete(ev);
    return rc;
}

static int envd_entry(sp_buf *b, const char *type, const char *data,
                      size_t dlen, int pty)
{
    if (strcmp(type, "stdout") == 0 || strcmp(type, "stderr") == 0)
        return envd_data(b, pty ? "pty" : type, data, dlen);
    if (strcmp(type, "result") == 0)
        return envd_end(b, data, dlen);
    return 1;
}

static int envd_entry_process(sp_buf *b, const char *type, const char *data,
                              size_t dlen)
{
    return envd_entry(b, type, data, dlen, 0);
}

static int envd_entry_pty(sp_buf *b, const char *type, const char *data,
                          size_t dlen)
{
    return envd_entry(b, type, data, dlen, 1);
}

const sse_map sse_map_process = {envd_head_pid, envd_entry_process};
const sse_map sse_map_pty = {envd_head_pid, envd_entry_pty};
