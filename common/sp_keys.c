/* sp_keys.c: the key family table of sp_keys.h and the one key builder.
 * A key is the prefix followed by the family's pattern, each <...> of the
 * pattern replaced by a validated id, so the documented pattern and the
 * key in Redis cannot differ. */
#include "sp_keys.h"

#include "sp_id.h"

#include <string.h>

#define KEY_PREFIX_MAX 32
#define KEY_IDS_MAX    2

#define SP_KEY_ROW(name, pattern, type, writers, readers, lifetime)            \
    {#name, pattern, type, writers, readers, lifetime},
static const sp_key_info key_table[KEY_FAMILY_COUNT] = {
    SP_KEY_FAMILIES(SP_KEY_ROW)};
#undef SP_KEY_ROW

/* Written once by rds_init at start, before any thread builds a key. */
static char key_prefix[KEY_PREFIX_MAX + 1] = "sp:";

const sp_key_info *key_info(sp_key_family f)
{
    if ((int)f < 0 || f >= KEY_FAMILY_COUNT)
        return NULL;
    return &key_table[f];
}

int key_set_prefix(const char *prefix)
{
    size_t n = strlen(prefix);

    if (n > KEY_PREFIX_MAX)
        return -1;
    for (const char *p = prefix; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == ':' || *p == '_' || *p == '-' ||
              *p == '.'))
            return -1;
    }
    memcpy(key_prefix, prefix, n + 1);
    return 0;
}

/* Copy n bytes of s to out at *at; -1 if out (with its NUL) is too small. */
static int key_put(char *out, size_t outlen, size_t *at, const char *s,
                   size_t n)
{
    if (n >= outlen - *at)
        return -1;
    memcpy(out + *at, s, n);
    *at += n;
    out[*at] = '\0';
    return 0;
}

/* The builder behind key_of and key_of2: nids ids for the pattern's <...>
 * in order; their number must match the pattern's. */
static int key_build(char *out, size_t outlen, sp_key_family f,
                     const char *const *ids, int nids)
{
    const sp_key_info *ki = key_info(f);
    const char *p, *open;
    size_t at = 0;
    int used = 0;

    if (ki == NULL || out == NULL || outlen == 0)
        return -1;
    out[0] = '\0';
    for (int i = 0; i < nids; i++) {
        if (!id_valid(ids[i]))
            return -1;
    }
    if (key_put(out, outlen, &at, key_prefix, strlen(key_prefix)) != 0)
        return -1;
    for (p = ki->pattern; (open = strchr(p, '<')) != NULL;
         p = strchr(open, '>') + 1) {
        if (used == nids ||
            key_put(out, outlen, &at, p, (size_t)(open - p)) != 0 ||
            key_put(out, outlen, &at, ids[used], strlen(ids[used])) != 0)
            goto fail;
        used++;
    }
    if (used != nids || key_put(out, outlen, &at, p, strlen(p)) != 0)
        goto fail;
    return 0;
fail:
    out[0] = '\0';
    return -1;
}

int key_of(char *out, size_t outlen, sp_key_family f, const char *id)
{
    const char *ids[1] = {id};
    return key_build(out, outlen, f, ids, id != NULL ? 1 : 0);
}

int key_of2(char *out, size_t outlen, sp_key_family f, const char *id,
            const char *id2)
{
    const char *ids[KEY_IDS_MAX] = {id, id2};
    if (id == NULL || id2 == NULL)
        return -1;
    return key_build(out, outlen, f, ids, KEY_IDS_MAX);
}

void key_table_markdown(FILE *fp)
{
    fprintf(fp, "| Family | Key (after SP_PREFIX) | Type | Written by | "
                "Read by | Lifetime |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < KEY_FAMILY_COUNT; i++) {
        const sp_key_info *ki = &key_table[i];
        fprintf(fp, "| `%s` | `%s` | %s | %s | %s | %s |\n", ki->name,
                ki->pattern, ki->type, ki->writers, ki->readers, ki->lifetime);
    }
}
