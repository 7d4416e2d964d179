/* sp_objname.h: bucket and object key names checked as S3 checks them
 * (the bucket naming rules, key length and encoding) plus what sandpipe
 * refuses on top so that a key is always a safe relative path: no "." or
 * ".." segment, no leading "/", no control character. Each refusal names
 * its rule, a stable string the API answers in the error's "rule". */
#ifndef SP_OBJNAME_H
#define SP_OBJNAME_H

#include <stddef.h>

#define OBJ_BUCKET_MAX 63   /* S3: 3 to 63 characters */
#define OBJ_KEY_MAX    1024 /* S3: 1 to 1024 bytes of UTF-8 */

/* NULL if name is a valid bucket name, else the rule it breaks
 * ("bucket_name_length", "bucket_name_characters", "bucket_name_edges",
 * "bucket_name_adjacent_periods", "bucket_name_ip_address",
 * "bucket_name_reserved_prefix", "bucket_name_reserved_suffix"). Static
 * storage. */
const char *obj_bucket_rule(const char *name);

/* NULL if the len bytes at key are a valid object key, else the rule it
 * breaks ("key_length", "key_utf8", "key_control_character",
 * "key_absolute", "key_dot_segment"). Static storage. */
const char *obj_key_rule(const char *key, size_t len);

/* NULL if the len bytes at s are text a key may hold (a delimiter): at
 * most OBJ_KEY_MAX bytes of UTF-8 without control characters; else
 * "key_length", "key_utf8" or "key_control_character". */
const char *obj_text_rule(const char *s, size_t len);

/* NULL if prefix (possibly empty) may start a key: as a key, but empty is
 * allowed and a trailing "." or ".." segment is only refused once the
 * prefix ends with "/" (a prefix "a/." may start "a/.b"). */
const char *obj_prefix_rule(const char *prefix, size_t len);

#endif
