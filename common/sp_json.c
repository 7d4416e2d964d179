/* sp_json.c: request field validation (sp_json.h). */
#include "sp_json.h"

#include <math.h>
#include <string.h>
#include <time.h>

int json_str(http_req *r, const cJSON *obj, const char *name, int required,
             size_t maxlen, const char **out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    *out = NULL;
    if (it == NULL || cJSON_IsNull(it)) {
        if (!required)
            return 0;
        http_send_error(r, SP_E_INVALID_ARGUMENT, name, "%s is required", name);
        return -1;
    }
    if (!cJSON_IsString(it)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, name, "%s must be a string",
                        name);
        return -1;
    }
    if (strlen(it->valuestring) > maxlen) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, name,
                        "%s is longer than %zu bytes", name, maxlen);
        return -1;
    }
    *out = it->valuestring;
    return 0;
}

int json_int(http_req *r, const cJSON *obj, const char *name, int required,
             long long min, long long max, long long def, long long *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    double v;

    *out = def;
    if (it == NULL || cJSON_IsNull(it)) {
        if (!required)
            return 0;
        http_send_error(r, SP_E_INVALID_ARGUMENT, name, "%s is required", name);
        return -1;
    }
    v = it->valuedouble;
    if (!cJSON_IsNumber(it) || !isfinite(v) || v != floor(v)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, name, "%s must be an integer",
                        name);
        return -1;
    }
    if (v < (double)min || v > (double)max) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, name,
                        "%s must be between %lld and %lld", name, min, max);
        return -1;
    }
    *out = (long long)v;
    return 0;
}

int json_bool(http_req *r, const cJSON *obj, const char *name, int def,
              int *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    *out = def;
    if (it == NULL || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsBool(it)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, name,
                        "%s must be true or false", name);
        return -1;
    }
    *out = cJSON_IsTrue(it);
    return 0;
}

int json_obj(http_req *r, const cJSON *obj, const char *name, const cJSON **out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    *out = NULL;
    if (it == NULL || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsObject(it)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, name, "%s must be an object",
                        name);
        return -1;
    }
    *out = it;
    return 0;
}

void json_time(long long t, char *out, size_t outlen)
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
