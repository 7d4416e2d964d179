/* sp_status.c: the table behind sp_status (see sp_status.h). */
#include "sp_status.h"

#include <stddef.h>
#include <string.h>

static const struct {
    int http;
    const char *code;
} sp_status_table[SP_STATUS_COUNT] = {
    [SP_OK] = {200, "ok"},
    [SP_E_INVALID_JSON] = {400, "invalid_json"},
    [SP_E_INVALID_ARGUMENT] = {400, "invalid_argument"},
    [SP_E_UNAUTHENTICATED] = {401, "unauthenticated"},
    [SP_E_NOT_FOUND] = {404, "not_found"},
    [SP_E_METHOD_NOT_ALLOWED] = {405, "method_not_allowed"},
    [SP_E_CONFLICT] = {409, "conflict"},
    [SP_E_PAYLOAD_TOO_LARGE] = {413, "payload_too_large"},
    [SP_E_UNSUPPORTED_MEDIA_TYPE] = {415, "unsupported_media_type"},
    [SP_E_RATE_LIMITED] = {429, "rate_limited"},
    [SP_E_INTERNAL] = {500, "internal"},
    [SP_E_UNAVAILABLE] = {503, "unavailable"},
    [SP_E_FORBIDDEN] = {403, "forbidden"},
    [SP_E_INSUFFICIENT_STORAGE] = {507, "insufficient_storage"},
    [SP_E_PAUSED] = {409, "paused"},
    [SP_E_BAD_GATEWAY] = {502, "bad_gateway"},
    [SP_E_RANGE] = {416, "range_not_satisfiable"},
};

int sp_status_http(sp_status st)
{
    if ((unsigned)st >= SP_STATUS_COUNT)
        return 500;
    return sp_status_table[st].http;
}

const char *sp_status_code(sp_status st)
{
    if ((unsigned)st >= SP_STATUS_COUNT)
        return "internal";
    return sp_status_table[st].code;
}

sp_status sp_status_from_code(const char *code)
{
    for (int i = 0; i < SP_STATUS_COUNT; i++) {
        if (code != NULL && strcmp(sp_status_table[i].code, code) == 0)
            return (sp_status)i;
    }
    return SP_E_INTERNAL;
}

const char *sp_http_reason(int http_status)
{
    switch (http_status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 302:
        return "Found";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    default:
        return "Internal Server Error";
    }
}
