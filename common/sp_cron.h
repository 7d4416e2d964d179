/* sp_cron.h: schedules of workflows: a cron expression of five fields
 * (minute hour day-of-month month day-of-week; each `*`, a number, a
 * range a-b, a list a,b,c, and a step: `*` or a range followed by /n;
 * day-of-week 0-7 with 0 and 7 Sunday; when both day fields are
 * restricted a day matching either runs, as cron does), evaluated in
 * UTC, and RFC 3339 times for
 * `at`. The handler validates with these, the worker's timer computes the
 * next time with them. */
#ifndef SP_CRON_H
#define SP_CRON_H

#include <stdint.h>

#define CRON_EXPR_MAX 256

typedef struct cron_spec {
    uint64_t minute;           /* bit i: minute i */
    uint32_t hour, dom, month; /* dom bit 1..31, month bit 1..12 */
    uint8_t dow;               /* bit 0..6, Sunday 0 */
    int dom_any, dow_any;      /* the field was `*` */
} cron_spec;

/* Parse expr into *c. Returns 0, or -1 with *bad_field the static name
 * of the first field that is wrong ("minute", "hour", "day_of_month",
 * "month", "day_of_week", or "cron" when the count of fields is). */
int cron_parse(const char *expr, cron_spec *c, const char **bad_field);

/* The first time (Unix seconds, a whole minute) after after_s that c
 * matches, within the next five years; -1 if none (30 February). */
long long cron_next(const cron_spec *c, long long after_s);

/* An RFC 3339 time ("2026-12-02T17:00:00Z", "…+02:00", fractions
 * ignored) into *out_s (Unix seconds). 0, or -1. */
int cron_parse_time(const char *s, long long *out_s);

#endif
