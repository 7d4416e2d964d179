/* sp_json.h: typed access to fields of a request's JSON object. Each
 * getter validates type and bounds and, on failure, sends the 400
 * invalid_argument envelope naming the field and returns -1. */
#ifndef SP_JSON_H
#define SP_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "sp_http.h"

#define JSON_TIME_SIZE 32 /* a buffer for json_time */

/* String field: *out points into obj (valid while obj lives) or is NULL
 * when absent and not required. maxlen bounds the length in bytes. */
int json_str(http_req *r, const cJSON *obj, const char *name, int required,
             size_t maxlen, const char **out);

/* Integer field within [min, max]; *out = def when absent and optional. */
int json_int(http_req *r, const cJSON *obj, const char *name, int required,
             long long min, long long max, long long def, long long *out);

/* Boolean field; *out = def when absent. */
int json_bool(http_req *r, const cJSON *obj, const char *name, int def,
              int *out);

/* Field that must be an object when present; *out NULL when absent. */
int json_obj(http_req *r, const cJSON *obj, const char *name,
             const cJSON **out);

/* RFC 3339 UTC rendering of a Unix time into out (>= 21 bytes for years
 * 0..9999; JSON_TIME_SIZE leaves room for larger years). */
void json_time(long long t, char *out, size_t outlen);

#endif
