/* cli/sp_admin.c: the operator's tool behind `./sandpipe key ...` and
 * `./sandpipe config`: API keys in Redis, and the configuration table.
 *
 *   sp-admin key create NAME   prints the new key (shown once) and its id
 *   sp-admin key list          id, name, created (never the key)
 *   sp-admin key revoke ID|NAME
 *   sp-admin config-table      the options as a Markdown table
 *   sp-admin keys              the Redis key families as a Markdown table
 *                              (docs/KEYS.md holds exactly this)
 *   sp-admin config-check      loads the configuration, exit 2 if refused */
#include "sp_auth.h"
#include "sp_config.h"
#include "sp_id.h"
#include "sp_json.h"
#include "sp_keys.h"
#include "sp_log.h"
#include "sp_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int admin_usage(void)
{
    fprintf(stderr,
            "usage: sp-admin key create NAME | key list | "
            "key revoke ID|NAME | config-table | keys | config-check\n");
    return 2;
}

static int admin_key_list(void)
{
    char k[RDS_KEY_MAX], kk[RDS_KEY_MAX], when[JSON_TIME_SIZE];
    redisReply *set;

    key_of(k, sizeof k, KEY_KEYS, NULL);
    set = rds_cmd("SMEMBERS %s", k);
    if (set == NULL || set->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "sp-admin: Redis unavailable\n");
        freeReplyObject(set);
        return 1;
    }
    printf("%-30s %-24s %s\n", "ID", "NAME", "CREATED");
    for (size_t i = 0; i < set->elements; i++) {
        redisReply *h;
        if (key_of(kk, sizeof kk, KEY_KEY, set->element[i]->str) != 0)
            continue;
        h = rds_cmd("HMGET %s name created", kk);
        if (h != NULL && h->type == REDIS_REPLY_ARRAY && h->elements == 2 &&
            h->element[0]->type == REDIS_REPLY_STRING &&
            h->element[1]->type == REDIS_REPLY_STRING) {
            json_time(atoll(h->element[1]->str), when, sizeof when);
            printf("%-30s %-24s %s\n", set->element[i]->str, h->element[0]->str,
                   when);
        }
        freeReplyObject(h);
    }
    freeReplyObject(set);
    return 0;
}

static int admin_config_table(void)
{
    printf("| Variable | Default | Description |\n|---|---|---|\n");
    for (int i = 0; i < CFG_COUNT; i++) {
        const cfg_option *o = &cfg_options[i];
        printf("| `%s` | %s%s%s | %s", o->name, *o->def ? "`" : "",
               *o->def ? o->def : "(empty)", *o->def ? "`" : "", o->desc);
        if (o->type == CFG_T_INT)
            printf(" (%lld..%lld)", o->min, o->max);
        printf(" |\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    char err[512];
    char key[AUTH_KEY_LEN + 1], kid[SP_ID_SIZE];
    sp_status st;

    log_set_program("sp-admin");
    if (argc >= 2 && strcmp(argv[1], "config-table") == 0)
        return admin_config_table();
    if (argc == 2 && strcmp(argv[1], "keys") == 0) {
        key_table_markdown(stdout);
        return 0;
    }
    if (cfg_load(NULL, err, sizeof err) != 0) {
        fprintf(stderr, "sp-admin: configuration refused: %s\n", err);
        return 2;
    }
    if (argc >= 2 && strcmp(argv[1], "config-check") == 0)
        return 0;
    if (argc < 3 || strcmp(argv[1], "key") != 0)
        return admin_usage();
    if (rds_init(err, sizeof err) != 0) {
        fprintf(stderr, "sp-admin: %s\n", err);
        return 2;
    }
    if (strcmp(argv[2], "list") == 0 && argc == 3)
        return admin_key_list();
    if (argc != 4)
        return admin_usage();
    if (strcmp(argv[2], "create") == 0) {
        st = auth_key_create(argv[3], key, kid);
        if (st == SP_E_INVALID_ARGUMENT) {
            fprintf(stderr, "sp-admin: NAME must match [A-Za-z0-9_-]{1,64}\n");
            return 2;
        }
        if (st != SP_OK) {
            fprintf(stderr, "sp-admin: could not store the key (%s)\n",
                    sp_status_code(st));
            return 1;
        }
        printf("%s %s\n", kid, key);
        return 0;
    }
    if (strcmp(argv[2], "revoke") == 0) {
        st = auth_key_revoke(argv[3]);
        if (st == SP_E_NOT_FOUND) {
            fprintf(stderr, "sp-admin: no key %s\n", argv[3]);
            return 1;
        }
        if (st != SP_OK) {
            fprintf(stderr, "sp-admin: Redis unavailable\n");
            return 1;
        }
        printf("revoked %s\n", argv[3]);
        return 0;
    }
    return admin_usage();
}
