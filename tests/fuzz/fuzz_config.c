/* fuzz_config.c: cfg_check (common/sp_config.c) on arbitrary values of
 * every option of the table.
 *
 * Input: one byte choosing the option, one choosing the size of the error
 * buffer, then the value (up to a NUL). Invariants: the answer is 0 or -1;
 * a refusal leaves a terminated reason inside the buffer that starts with
 * the option's name; an accepted integer is one in the option's range, an
 * accepted level one of the four names, an accepted DNS name well formed
 * (labels of 1..63 letters, digits and inner '-', the last not numeric),
 * an accepted string empty or within its length bounds and free of control
 * bytes. */
#include "fuzz_util.h"
#include "sp_config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cfg_id id;
    const cfg_option *o;
    size_t errlen, len;
    char *err, *value;
    int rc;

    if (size < 2)
        return 0;
    id = (cfg_id)(data[0] % CFG_COUNT);
    o = &cfg_options[id];
    errlen = 1 + data[1] % 200;
    err = malloc(errlen);
    memset(err, 'x', errlen);
    value = strndup((const char *)data + 2, size - 2);
    len = strlen(value);

    rc = cfg_check(id, value, err, errlen);
    FZ_CHECK(rc == 0 || rc == -1, "cfg_check returned %d", rc);
    if (rc == -1) {
        size_t nl = strlen(o->name);
        FZ_CHECK(memchr(err, '\0', errlen) != NULL, "reason not terminated");
        FZ_CHECK(strncmp(err, o->name, nl < errlen - 1 ? nl : errlen - 1) == 0,
                 "reason does not name %s: %s", o->name, err);
    } else if (o->type == CFG_T_INT) {
        char *end;
        long long v;
        errno = 0;
        v = strtoll(value, &end, 10);
        FZ_CHECK(len > 0 && *end == '\0' && errno == 0,
                 "%s: accepted a non-integer", o->name);
        FZ_CHECK(v >= o->min && v <= o->max, "%s: accepted %lld", o->name, v);
    } else if (o->type == CFG_T_DNS) {
        size_t label = 0;
        FZ_CHECK(len >= 1 && len <= 253 && value[0] != '.' &&
                     value[len - 1] != '.' && value[len - 1] != '-',
                 "%s: accepted \"%s\"", o->name, value);
        for (size_t i = 0; i < len; i++) {
            char c = value[i];
            label = c == '.' ? 0 : label + 1;
            FZ_CHECK(label <= 63 &&
                         (c == '.' || c == '-' || (c >= 'a' && c <= 'z') ||
                          (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')),
                     "%s: accepted \"%s\"", o->name, value);
            FZ_CHECK(
                !(c == '.' && (value[i + 1] == '.' || value[i + 1] == '-' ||
                               value[i - 1] == '-')),
                "%s: accepted a bad label in \"%s\"", o->name, value);
        }
        FZ_CHECK(strspn(strrchr(value, '.') ? strrchr(value, '.') + 1 : value,
                        "0123456789") < label,
                 "%s: accepted a numeric last label in \"%s\"", o->name, value);
    } else if (o->type == CFG_T_LEVEL) {
        FZ_CHECK(strcmp(value, "debug") == 0 || strcmp(value, "info") == 0 ||
                     strcmp(value, "warn") == 0 || strcmp(value, "error") == 0,
                 "%s: accepted level %s", o->name, value);
    } else {
        FZ_CHECK(len == 0 || ((o->min == 0 || (long long)len >= o->min) &&
                              (o->max == 0 || (long long)len <= o->max)),
                 "%s: accepted length %zu", o->name, len);
        for (size_t i = 0; i < len; i++)
            FZ_CHECK((unsigned char)value[i] >= 0x20,
                     "%s: accepted a control byte", o->name);
    }
    free(err);
    free(value);
    return 0;
}
