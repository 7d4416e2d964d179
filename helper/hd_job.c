/* hd_job.c: what every part of the helper uses to take a job and answer
 * it: its arguments, the reply (on "<prefix>reply:<rid>", sp_rpc.h), the
 * clock and the helper's id. It calls nothing else of the helper, so
 * every other file may use it (HACKING.md, "the helper's layers"). */
#include "hd.h"
#include "sp_keys.h"
#include "sp_redis.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HD_REPLY_TTL 60

char hd_helper_id[SP_ID_SIZE];
unsigned long hd_reply_errors;
void (*hd_job_end)(hd_job *job);

void hd_job_release(hd_job *job)
{
    if (job->in_op) {
        job->released = 1; /* freed by helperd.c once its function returns */
        return;
    }
    hd_job_end(job);
}

long long hd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void hd_reply(const char *rid, cJSON *obj, const void *data, size_t len)
{
    char k[RDS_KEY_MAX];
    char *js;
    sp_buf b;

    cJSON_AddBoolToObject(obj, "ok", 1);
    js = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (js == NULL || key_of(k, sizeof k, KEY_REPLY, rid) != 0) {
        free(js);
        return;
    }
    buf_init(&b, (size_t)1 << 31);
    if (buf_puts(&b, js) == 0 && buf_append(&b, "\n", 1) == 0 &&
        (data == NULL || buf_append(&b, data, len) == 0)) {
        hd_pub("LPUSH %s %b", k, b.data, b.len);
        hd_pub("EXPIRE %s %d", k, HD_REPLY_TTL);
    }
    buf_free(&b);
    free(js);
}

void hd_reply_err(const char *rid, sp_status st, const char *fmt, ...)
{
    char k[RDS_KEY_MAX], msg[512];
    cJSON *obj = cJSON_CreateObject();
    char *js;
    va_list ap;

    hd_reply_errors++;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON_AddBoolToObject(obj, "ok", 0);
    cJSON_AddStringToObject(obj, "code", sp_status_code(st));
    cJSON_AddStringToObject(obj, "message", msg);
    js = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (js != NULL && key_of(k, sizeof k, KEY_REPLY, rid) == 0) {
        hd_pub("LPUSH %s %s", k, js);
        hd_pub("EXPIRE %s %d", k, HD_REPLY_TTL);
    }
    free(js);
}

long long hd_arg_int(const cJSON *o, const char *name, long long def)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(it) ? (long long)it->valuedouble : def;
}

const char *hd_arg_str(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}
