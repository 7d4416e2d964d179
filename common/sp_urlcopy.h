/* sp_urlcopy.h: a URL's body fetched into a sandbox through the helper's
 * file operations and the spool (sp_helper.h, sp_spool.h), the way
 * sp_sbxcopy.h copies an object. The URL is http or https, resolved once
 * and refused unless every address is public (sp_egress.h), fetched
 * pinned to the address checked, without following redirects, and at most
 * SPOOL_BODY_MAX bytes. Used by the storage family's URL import
 * (handlers/storage_urls.c) and by the worker's inputs step
 * (worker/wk_steps.c). */
#ifndef SP_URLCOPY_H
#define SP_URLCOPY_H

#include <stddef.h>

#include "sp_rpc.h"

#define URLCOPY_MAX      16   /* URLs in one import */
#define URLCOPY_URL_LEN  2048 /* bytes of one URL */
#define URLCOPY_NAME_MAX 256  /* a file name a URL gives, with its NUL */

/* Why a copy failed. */
typedef enum urlcopy_fail {
    URLCOPY_OK,
    URLCOPY_REFUSED,   /* the URL's rule (egress_url) */
    URLCOPY_TOO_LARGE, /* the body is over SPOOL_BODY_MAX */
    URLCOPY_FETCH,     /* no answer, or not a 2xx */
    URLCOPY_HELPER     /* the helper's error in *err */
} urlcopy_fail;

/* What a copy did: its bytes, or why it failed (and the rule a refused
 * URL broke, static storage). */
typedef struct urlcopy_res {
    long long got;
    long status; /* the answer's HTTP status, 0 when none came */
    urlcopy_fail fail;
    const char *rule;
} urlcopy_res;

/* The form of url only, without resolving it: NULL, or the rule it
 * breaks ("url_malformed": too long or unparsable, "url_scheme"). */
const char *urlcopy_form(const char *url);

/* url checked as urlcopy_form does and resolved: NULL and its pin, or the
 * rule it breaks (egress_url's). */
const char *urlcopy_check(const char *url, char *pin, size_t pinlen);

/* The file name url gives into out: its path's last segment (without
 * query or fragment), else "download" (also for ".", ".." and names
 * starting with "." of at most 2 bytes). */
void urlcopy_name(const char *url, char *out, size_t outlen);

/* url fetched into sandbox sbx (on helper) at path; the URL resolved and
 * checked again here and pinned to what this check saw. 0, or -1 with
 * res->fail (and *err for URLCOPY_HELPER). */
int urlcopy_import(const char *helper, const char *sbx, const char *url,
                   const char *path, urlcopy_res *res, rpc_err *err);

#endif
