/* sp_objname.c: the naming rules of buckets and object keys (S3's, and
 * sandpipe's own on top for keys; see sp_objname.h). */
#include "sp_objname.h"
#include "sp_utf8.h"

#include <string.h>

static const char *const obj_reserved_prefixes[] = {"xn--", "sthree-",
                                                    "amzn-s3-demo-"};
static const char *const obj_reserved_suffixes[] = {"-s3alias", "--ol-s3",
                                                    ".mrap", "--x-s3"};

static int obj_is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* 1 if name is four dot-separated decimal numbers (an IPv4 address form). */
static int obj_is_ipv4(const char *name)
{
    int parts = 0, digits = 0;

    for (const char *p = name;; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > 3)
                return 0;
        } else if (*p == '.' || *p == '\0') {
            if (digits == 0)
                return 0;
            parts++;
            digits = 0;
            if (*p == '\0')
                break;
        } else {
            return 0;
        }
    }
    return parts == 4;
}

static int obj_has_affix(const char *name, size_t n, int suffix)
{
    const char *const *set =
        suffix ? obj_reserved_suffixes : obj_reserved_prefixes;
    size_t count = suffix ? sizeof obj_reserved_suffixes / sizeof *set
                          : sizeof obj_reserved_prefixes / sizeof *set;

    for (size_t i = 0; i < count; i++) {
        size_t l = strlen(set[i]);
        if (l <= n && memcmp(suffix ? name + n - l : name, set[i], l) == 0)
            return 1;
    }
    return 0;
}

const char *obj_bucket_rule(const char *name)
{
    size_t n = strlen(name);

    if (n < 3 || n > OBJ_BUCKET_MAX)
        return "bucket_name_length";
    for (size_t i = 0; i < n; i++)
        if (!obj_is_alnum(name[i]) && name[i] != '.' && name[i] != '-')
            return "bucket_name_characters";
    if (!obj_is_alnum(name[0]) || !obj_is_alnum(name[n - 1]))
        return "bucket_name_edges";
    if (strstr(name, "..") != NULL)
        return "bucket_name_adjacent_periods";
    if (obj_is_ipv4(name))
        return "bucket_name_ip_address";
    if (obj_has_affix(name, n, 0))
        return "bucket_name_reserved_prefix";
    if (obj_has_affix(name, n, 1))
        return "bucket_name_reserved_suffix";
    return NULL;
}

/* The rule the segments of s break, NULL if none; a last segment without
 * its "/" is checked only when whole. */
static const char *obj_segments_rule(const char *s, size_t len, int whole)
{
    size_t start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '/')
            continue;
        if (i == len && !whole)
            break;
        size_t l = i - start;
        if ((l == 1 && s[start] == '.') ||
            (l == 2 && s[start] == '.' && s[start + 1] == '.'))
            return "key_dot_segment";
        start = i + 1;
    }
    return NULL;
}

const char *obj_text_rule(const char *s, size_t len)
{
    if (len > OBJ_KEY_MAX)
        return "key_length";
    if (!utf8_valid((const unsigned char *)s, len))
        return "key_utf8";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return "key_control_character";
    return NULL;
}

static const char *obj_bytes_rule(const char *s, size_t len)
{
    const char *rule = obj_text_rule(s, len);

    if (rule == NULL && len > 0 && s[0] == '/')
        return "key_absolute";
    return rule;
}

const char *obj_key_rule(const char *key, size_t len)
{
    const char *rule;

    if (len == 0)
        return "key_length";
    rule = obj_bytes_rule(key, len);
    return rule != NULL ? rule : obj_segments_rule(key, len, 1);
}

const char *obj_prefix_rule(const char *prefix, size_t len)
{
    const char *rule = obj_bytes_rule(prefix, len);
    return rule != NULL ? rule : obj_segments_rule(prefix, len, 0);
}
