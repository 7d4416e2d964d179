/* sp_status.h: the one project-wide status enum and its mapping to HTTP
 * statuses and stable string codes (the "code" of the JSON error envelope). */
#ifndef SP_STATUS_H
#define SP_STATUS_H

typedef enum sp_status {
    SP_OK = 0,
    SP_E_INVALID_JSON = 1,
    SP_E_INVALID_ARGUMENT = 2,
    SP_E_UNAUTHENTICATED = 3,
    SP_E_NOT_FOUND = 4,
    SP_E_METHOD_NOT_ALLOWED = 5,
    SP_E_CONFLICT = 6,
    SP_E_PAYLOAD_TOO_LARGE = 7,
    SP_E_UNSUPPORTED_MEDIA_TYPE = 8,
    SP_E_RATE_LIMITED = 9,
    SP_E_INTERNAL = 10,
    SP_E_UNAVAILABLE = 11,
    SP_E_FORBIDDEN = 12,
    SP_E_INSUFFICIENT_STORAGE = 13,
    SP_E_PAUSED = 14,      /* 409: the sandbox is paused (resume it first) */
    SP_E_BAD_GATEWAY = 15, /* 502: nothing listens on a sandbox's port */
    SP_E_RANGE = 16,       /* 416: a Range outside the object */
    SP_STATUS_COUNT
} sp_status;

/* HTTP status for st (500 for an out-of-range value). */
int sp_status_http(sp_status st);

/* Stable string code for st, e.g. "invalid_argument"; static storage. */
const char *sp_status_code(sp_status st);

/* The status whose string code is code; SP_E_INTERNAL if unknown. */
sp_status sp_status_from_code(const char *code);

/* Reason phrase for an HTTP status code; static storage. */
const char *sp_http_reason(int http_status);

#endif
