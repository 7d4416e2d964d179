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
 * prints can become framing and binary output arrives whole.
 *
 * A watched directory's events (a file watch's stream, hd_watch.c) as
 * filesystem.Filesystem's WatchDirResponse messages:
 *   head             {"start":{}}, always first
 *   create, write, remove, chmod
 *                    {"filesystem":{"name":<relative>,"type":
 *                    "EVENT_TYPE_CREATE"|…}}
 *   rename {name, newName?}
 *                    RENAME of name, then CREATE of newName (as envd's
 *                    fsnotify reports a move: two events)
 *   end              {"keepalive":{}} (the stream's end frame follows)
 *   anything else    skipped (overflow) */
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

/* {"start":{}}; a watch's stream takes no argument. */
static int envd_head_watch(sp_buf *b, const char *arg)
{
    if (arg[0] != '\0')
        return -1;
    return buf_puts(b, "{\"start\":{}}");
}

/* {"filesystem":{"name":<field of the entry's JSON>,"type":"EVENT_TYPE_<t>"}};
 * 1 when the entry has no such field. */
static int envd_fs_event(sp_buf *b, const char *data, size_t dlen,
                         const char *field, const char *t)
{
    cJSON *ev = cJSON_ParseWithLength(data, dlen), *root, *fs;
    const char *name =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, field));
    char *s = NULL;
    int rc = 1;

    if (name != NULL) {
        root = cJSON_CreateObject();
        fs = cJSON_AddObjectToObject(root, "filesystem");
        cJSON_AddStringToObject(fs, "name", name);
        cJSON_AddStringToObject(fs, "type", t);
        s = cJSON_PrintUnformatted(root);
        rc = s != NULL ? buf_puts(b, s) : -1;
        cJSON_free(s);
        cJSON_Delete(root);
    }
    cJSON_Delete(ev);
    return rc;
}

static int envd_entry_watch(sp_buf *b, const char *type, const char *data,
                            size_t dlen)
{
    static const char *const types[][2] = {
        {"create", "EVENT_TYPE_CREATE"}, {"write", "EVENT_TYPE_WRITE"},
        {"remove", "EVENT_TYPE_REMOVE"}, {"rename", "EVENT_TYPE_RENAME"},
        {"chmod", "EVENT_TYPE_CHMOD"},
    };

    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(type, types[i][0]) == 0)
            return envd_fs_event(b, data, dlen, "name", types[i][1]);
    }
    if (strcmp(type, "end") == 0)
        return buf_puts(b, "{\"keepalive\":{}}");
    return 1;
}

/* A rename's new name, when it stayed in the watched tree. */
static int envd_more_watch(sp_buf *b, const char *type, const char *data,
                           size_t dlen)
{
    if (strcmp(type, "rename") != 0)
        return 1;
    return envd_fs_event(b, data, dlen, "newName", "EVENT_TYPE_CREATE");
}

const sse_map sse_map_process = {envd_head_pid, envd_entry_process, NULL};
const sse_map sse_map_pty = {envd_head_pid, envd_entry_pty, NULL};
const sse_map sse_map_watch = {envd_head_watch, envd_entry_watch,
                               envd_more_watch};
