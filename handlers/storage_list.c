/* handlers/storage_list.c: the storage family: listings. GET
 * /buckets/{name}/objects pages through keys in byte order with a prefix,
 * and with a delimiter folds the keys that share the part up to it into
 * one entry of "prefixes" (S3's CommonPrefixes); the cursor is where the
 * next page starts after. GET /buckets/{name}/tree builds the directory
 * tree of the keys under a prefix, "/" as the separator. */
#include "storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STG_LIST_DEFAULT 1000
#define STG_PAGES_MAX    100000 /* backend pages one listing reads at most */
#define STG_TREE_MAX     10000  /* objects one tree shows at most */
#define STG_ARG_MAX      (OBJ_KEY_MAX + 8)
/* After a folded prefix P, the next page starts past every key that starts
 * with P: P and U+10FFFF (the largest character) sorts after all of them
 * but keys that hold that very character next, which are folded again. */
#define STG_PAST "\xf4\x8f\xbf\xbf"

typedef struct stg_listing {
    const char *prefix, *delim;
    size_t limit, count;
    char after[STG_ARG_MAX + 8]; /* where the next backend page starts */
    char folded[STG_ARG_MAX];    /* the last prefix given */
    int more;
    cJSON *objects, *prefixes;
} stg_listing;

/* A query argument of at most OBJ_KEY_MAX bytes, checked as a key prefix
 * (a delimiter: as text); 0, or -1 after having answered. */
static int stg_arg(http_req *r, const char *name, char *out, size_t outlen)
{
    const char *rule;
    int rc = http_query(r, name, out, outlen);

    if (rc == 0)
        out[0] = '\0';
    if (rc < 0)
        rule = "key_length";
    else if (strcmp(name, "delimiter") == 0)
        rule = obj_text_rule(out, strlen(out));
    else
        rule = obj_prefix_rule(out, strlen(out));
    if (rule == NULL)
        return 0;
    http_send_error_rule(r, SP_E_INVALID_ARGUMENT, name, rule, "bad %s (%s)",
                         name, rule);
    return -1;
}

/* One backend entry into the listing; 1 when the page is full. */
static int stg_list_take(stg_listing *ls, const st_entry *e)
{
    size_t plen = strlen(ls->prefix), dlen = strlen(ls->delim);
    const char *cut = dlen ? strstr(e->key + plen, ls->delim) : NULL;

    if (cut != NULL) {
        size_t n = (size_t)(cut - e->key) + dlen;
        if (strlen(ls->folded) == n && strncmp(ls->folded, e->key, n) == 0)
            return 0; /* folded already */
        if (ls->count == ls->limit)
            return ls->more = 1;
        memcpy(ls->folded, e->key, n);
        ls->folded[n] = '\0';
        cJSON_AddItemToArray(ls->prefixes, cJSON_CreateString(ls->folded));
        snprintf(ls->after, sizeof ls->after, "%s%s", ls->folded, STG_PAST);
    } else {
        if (ls->count == ls->limit)
            return ls->more = 1;
        cJSON_AddItemToArray(ls->objects,
                             stg_object_json(NULL, e->key, &e->meta));
        snprintf(ls->after, sizeof ls->after, "%s", e->key);
    }
    ls->count++;
    return 0;
}

/* Read backend pages into ls until it is full or the keys end. */
static sp_status stg_list_fill(http_req *r, const char *bucket, stg_listing *ls)
{
    char from[sizeof ls->after];
    sp_status st = SP_OK;

    for (int page = 0; page < STG_PAGES_MAX && !ls->more; page++) {
        st_list l = {0};
        int full = 0;
        snprintf(from, sizeof from, "%s", ls->after);
        st = st_get()->list(r->auth.sub, bucket, ls->prefix, from, ST_LIST_MAX,
                            &l);
        for (size_t i = 0; st == SP_OK && i < l.n && !full; i++)
            full = stg_list_take(ls, &l.v[i]);
        /* Every page moves on, even one whose keys were all folded. */
        if (l.n > 0 && strcmp(ls->after, l.v[l.n - 1].key) < 0 && !full)
            snprintf(ls->after, sizeof ls->after, "%s", l.v[l.n - 1].key);
        int truncated = l.truncated;
        st_list_free(&l);
        if (st != SP_OK || full || !truncated)
            break;
    }
    return st;
}

void stg_list(http_req *r)
{
    const char *bucket = stg_bucket(r, 0);
    char prefix[STG_ARG_MAX], delim[STG_ARG_MAX], cursor[STG_ARG_MAX + 8],
        lim[16] = "";
    stg_listing ls = {0};
    cJSON *out;
    sp_status st;

    if (bucket == NULL || stg_arg(r, "prefix", prefix, sizeof prefix) != 0 ||
        stg_arg(r, "delimiter", delim, sizeof delim) != 0)
        return;
    if (http_query(r, "cursor", cursor, sizeof cursor) <= 0)
        cursor[0] = '\0';
    if (http_query(r, "limit", lim, sizeof lim) < 0)
        lim[0] = 'x';
    ls.limit = lim[0] ? strtoul(lim, NULL, 10) : STG_LIST_DEFAULT;
    if (ls.limit < 1 || ls.limit > ST_LIST_MAX ||
        strspn(lim, "0123456789") != strlen(lim)) {
        http_send_error(r, SP_E_INVALID_ARGUMENT, "limit",
                        "limit must be 1 to %d", ST_LIST_MAX);
        return;
    }
    ls.prefix = prefix;
    ls.delim = delim;
    snprintf(ls.after, sizeof ls.after, "%s", cursor);
    out = cJSON_CreateObject();
    ls.objects = cJSON_AddArrayToObject(out, "objects");
    ls.prefixes = cJSON_AddArrayToObject(out, "prefixes");
    st = stg_list_fill(r, bucket, &ls);
    if (st != SP_OK) {
        stg_send_status(r, st, "object list");
    } else {
        cJSON_AddBoolToObject(out, "truncated", ls.more);
        if (ls.more)
            cJSON_AddStringToObject(out, "next_cursor", ls.after);
        else
            cJSON_AddNullToObject(out, "next_cursor");
        http_send_json(r, 200, out);
    }
    cJSON_Delete(out);
}

/* The child of dir named name (len bytes), made as a directory when
 * missing. */
static cJSON *stg_tree_dir(cJSON *dir, const char *name, size_t len,
                           const char *path, size_t pathlen)
{
    cJSON *kids = cJSON_GetObjectItemCaseSensitive(dir, "children"), *c;
    char *nm = strndup(name, len), *pt = strndup(path, pathlen);

    cJSON_ArrayForEach(c, kids)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (nm != NULL && strcmp(n->valuestring, nm) == 0 &&
            cJSON_GetObjectItemCaseSensitive(c, "children") != NULL)
            goto out;
    }
    c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", nm ? nm : "");
    cJSON_AddStringToObject(c, "path", pt ? pt : "");
    cJSON_AddStringToObject(c, "type", "directory");
    cJSON_AddArrayToObject(c, "children");
    cJSON_AddItemToArray(kids, c);
out:
    free(nm);
    free(pt);
    return c;
}

/* Key e under root: a directory for each "/"-ended part, then the file. */
static void stg_tree_add(cJSON *root, size_t plen, const st_entry *e)
{
    cJSON *dir = root, *f;
    const char *p = e->key + plen, *slash;

    while ((slash = strchr(p, '/')) != NULL) {
        dir = stg_tree_dir(dir, p, (size_t)(slash - p), e->key,
                           (size_t)(slash - e->key) + 1);
        p = slash + 1;
    }
    if (*p == '\0')
        return; /* a "folder/" marker key: its directory is there */
    f = stg_object_json(NULL, e->key, &e->meta);
    cJSON_AddStringToObject(f, "name", p);
    cJSON_AddStringToObject(f, "path", e->key);
    cJSON_AddStringToObject(f, "type", "file");
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(dir, "children"), f);
}

void stg_tree(http_req *r)
{
    const char *bucket = stg_bucket(r, 0);
    char prefix[STG_ARG_MAX], after[STG_ARG_MAX] = "";
    cJSON *root;
    size_t count = 0;
    int more = 1;
    sp_status st = SP_OK;

    if (bucket == NULL || stg_arg(r, "prefix", prefix, sizeof prefix) != 0)
        return;
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "path", prefix);
    cJSON_AddStringToObject(root, "type", "directory");
    cJSON_AddArrayToObject(root, "children");
    while (st == SP_OK && more && count < STG_TREE_MAX) {
        st_list l = {0};
        st =
            st_get()->list(r->auth.sub, bucket, prefix, after, ST_LIST_MAX, &l);
        for (size_t i = 0; st == SP_OK && i < l.n && count < STG_TREE_MAX;
             i++, count++) {
            stg_tree_add(root, strlen(prefix), &l.v[i]);
            snprintf(after, sizeof after, "%s", l.v[i].key);
        }
        more = l.truncated || (l.n > 0 && count == STG_TREE_MAX);
        st_list_free(&l);
    }
    cJSON_AddBoolToObject(root, "truncated", more);
    if (st != SP_OK)
        stg_send_status(r, st, "object tree");
    else
        http_send_json(r, 200, root);
    cJSON_Delete(root);
}
