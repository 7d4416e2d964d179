/* sp_config.c: loading and validating the options of sp_config.h. */
#include "sp_config.h"
#include "sp_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_LINE_MAX 8192

#define SP_CFG_ROW(name, type, def, min, max, desc)                            \
    [CFG_##name] = {#name, CFG_T_##type, def, min, max, desc},
const cfg_option cfg_options[CFG_COUNT] = {SP_CONFIG_OPTIONS(SP_CFG_ROW)};
#undef SP_CFG_ROW

/* Values are loaded once at start, before threads exist, and only read
 * afterwards. */
static char *cfg_values[CFG_COUNT];
static long long cfg_ints[CFG_COUNT];

/* 1 if s is a DNS name (RFC 1123 host names): dot-separated labels of
 * 1..63 letters, digits and '-', no label starting or ending with '-',
 * the last one not all digits (no IP address), no empty label. */
static int cfg_dns_ok(const char *s)
{
    size_t label = 0, digits = 0;
    char prev = '.';

    for (; *s != '\0'; prev = *s++) {
        char c = *s;
        if (c == '.') {
            if (label == 0 || prev == '-')
                return 0;
            label = digits = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-') ||
            (c == '-' && label == 0) || ++label > 63)
            return 0;
        if (c >= '0' && c <= '9')
            digits++;
    }
    return label > 0 && prev != '-' && digits < label;
}

static int cfg_find(const char *name, size_t len)
{
    for (int i = 0; i < CFG_COUNT; i++) {
        if (strlen(cfg_options[i].name) == len &&
            memcmp(cfg_options[i].name, name, len) == 0)
            return i;
    }
    return -1;
}

int cfg_check(cfg_id id, const char *value, char *err, size_t errlen)
{
    const cfg_option *o = &cfg_options[id];
    size_t len = strlen(value);

    switch (o->type) {
    case CFG_T_INT: {
        char *end;
        long long v;
        errno = 0;
        v = strtoll(value, &end, 10);
        /* Digits only (a leading minus allowed): strtoll alone would also
         * take " 8" and "+8". */
        if (len == 0 || *end != '\0' || errno != 0 ||
            !(value[0] == '-' || (value[0] >= '0' && value[0] <= '9'))) {
            snprintf(err, errlen, "%s: not an integer", o->name);
            return -1;
        }
        if (v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: %lld is outside %lld..%lld", o->name, v,
                     o->min, o->max);
            return -1;
        }
        return 0;
    }
    case CFG_T_LEVEL: {
        log_level l;
        if (log_parse_level(value, &l) != 0) {
            snprintf(err, errlen, "%s: must be debug, info, warn or error",
                     o->name);
            return -1;
        }
        return 0;
    }
    case CFG_T_DNS:
        if (len < (size_t)o->min || len > (size_t)o->max ||
            !cfg_dns_ok(value)) {
            snprintf(err, errlen,
                     "%s: must be a DNS name (labels of letters, digits and "
                     "'-', at most %lld bytes)",
                     o->name, o->max);
            return -1;
        }
        return 0;
    case CFG_T_STR:
    case CFG_T_SECRET:
        /* An empty value means "unset"; required options are checked by
         * cfg_load. Length bounds apply to set values only. */
        if (len == 0)
            return 0;
        if ((o->min > 0 && (long long)len < o->min) ||
            (o->max > 0 && (long long)len > o->max)) {
            snprintf(err, errlen, "%s: length %zu is outside %lld..%lld",
                     o->name, len, o->min, o->max);
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            if ((unsigned char)value[i] < 0x20) {
                snprintf(err, errlen, "%s: contains a control character",
                         o->name);
                return -1;
            }
        }
        return 0;
    }
    snprintf(err, errlen, "%s: unknown type", o->name);
    return -1;
}

static int cfg_set(int id, const char *value, char *err, size_t errlen)
{
    char *copy;
    if (cfg_check((cfg_id)id, value, err, errlen) != 0)
        return -1;
    copy = strdup(value);
    if (copy == NULL) {
        snprintf(err, errlen, "%s: out of memory", cfg_options[id].name);
        return -1;
    }
    free(cfg_values[id]);
    cfg_values[id] = copy;
    if (cfg_options[id].type == CFG_T_INT)
        cfg_ints[id] = strtoll(value, NULL, 10);
    return 0;
}

/* Reads KEY=VALUE lines; blank lines and lines starting with # are skipped;
 * a value may be wrapped in single or double quotes. Unknown keys are
 * refused so that a typo does not silently fall back to a default. */
static int cfg_load_file(const char *path, char *err, size_t errlen)
{
    char line[CFG_LINE_MAX];
    int lineno = 0, result = -1;
    FILE *f = fopen(path, "re");

    if (f == NULL) {
        snprintf(err, errlen, "SP_ENV_FILE: fopen(\"%s\") failed: %s", path,
                 strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char *eq, *val, *p = line;
        size_t vlen;
        int id;
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "SP_ENV_FILE: line %d is too long", lineno);
            goto out;
        }
        line[strcspn(line, "\r\n")] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        if (strncmp(p, "export ", 7) == 0)
            p += 7;
        eq = strchr(p, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "SP_ENV_FILE: line %d has no '='", lineno);
            goto out;
        }
        id = cfg_find(p, (size_t)(eq - p));
        if (id < 0) {
            snprintf(err, errlen, "SP_ENV_FILE: line %d: unknown option",
                     lineno);
            goto out;
        }
        val = eq + 1;
        vlen = strlen(val);
        if (vlen >= 2 && (val[0] == '"' || val[0] == '\'') &&
            val[vlen - 1] == val[0]) {
            val[vlen - 1] = '\0';
            val++;
        }
        if (cfg_set(id, val, err, errlen) != 0)
            goto out;
    }
    result = 0;
out:
    fclose(f);
    return result;
}

/* SP_HELPER_UID from the state directory when it is 0 (sp_config.h), so
 * that two instances on one host (each with its own state directory)
 * never give their sandboxes the same host uids. */
static int cfg_derive_uid(char *err, size_t errlen)
{
    char real[4096], num[24];
    const char *dir = cfg_values[CFG_SP_STATE_DIR];
    unsigned long long h = 1469598103934665603ULL;

    if (cfg_ints[CFG_SP_HELPER_UID] != 0) {
        if (cfg_ints[CFG_SP_HELPER_UID] < 1000) {
            snprintf(err, errlen,
                     "SP_HELPER_UID: must be 0 (derived) or at "
                     "least 1000");
            return -1;
        }
        return 0;
    }
    if (dir == NULL || dir[0] == '\0')
        dir = "state";
    if (realpath(dir, real) == NULL)
        snprintf(real, sizeof real, "%s", dir);
    for (const unsigned char *p = (const unsigned char *)real; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    snprintf(num, sizeof num, "%lld",
             (long long)CFG_UID_FIRST +
                 (long long)(h % CFG_UID_RANGES) * CFG_UID_SPAN);
    return cfg_set(CFG_SP_HELPER_UID, num, err, errlen);
}

int cfg_load(const cfg_id *required, char *err, size_t errlen)
{
    const char *file;

    for (int i = 0; i < CFG_COUNT; i++) {
        if (cfg_set(i, cfg_options[i].def, err, errlen) != 0)
            return -1;
    }
    file = getenv("SP_ENV_FILE");
    if (file != NULL && *file != '\0' && cfg_load_file(file, err, errlen) != 0)
        return -1;
    for (int i = 0; i < CFG_COUNT; i++) {
        const char *v = getenv(cfg_options[i].name);
        if (v != NULL && cfg_set(i, v, err, errlen) != 0)
            return -1;
    }
    for (; required != NULL && *required != CFG_COUNT; required++) {
        if (cfg_values[*required][0] == '\0') {
            snprintf(err, errlen, "%s: is required",
                     cfg_options[*required].name);
            return -1;
        }
    }
    if (cfg_derive_uid(err, errlen) != 0)
        return -1;
    log_parse_level(cfg_values[CFG_SP_LOG_LEVEL], &log_min_level);
    return 0;
}

const char *cfg_str(cfg_id id)
{
    return cfg_values[id] != NULL ? cfg_values[id] : "";
}

long long cfg_int(cfg_id id)
{
    return cfg_ints[id];
}

long long cfg_tpl_uid(int slot)
{
    long long u = cfg_int(CFG_SP_HELPER_UID);
    long long idx = ((u - CFG_UID_FIRST) / CFG_UID_SPAN) % CFG_TPL_INSTANCES;

    if (idx < 0)
        idx = -idx;
    return CFG_TPL_UID_FIRST + idx * CFG_TPL_UID_SPAN +
           (long long)slot * (CFG_TPL_UID_SPAN / 4096);
}
