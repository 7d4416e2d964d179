/* sp_cron.c: cron expressions and RFC 3339 times (sp_cron.h). Fields are
 * parsed into bit sets; the next time is found day by day, then hour by
 * hour and minute by minute inside a matching day, so a year's search is
 * a few hundred steps. */
#include "sp_cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CRON_SEARCH_DAYS (5 * 366)

typedef struct cron_field {
    const char *name;
    int lo, hi;
} cron_field;

static const cron_field cron_fields[5] = {
    {"minute", 0, 59}, {"hour", 0, 23},       {"day_of_month", 1, 31},
    {"month", 1, 12},  {"day_of_week", 0, 7},
};

/* A number of [lo, hi] at *p (advanced); -1 if there is none. */
static int cron_num(const char **p, int lo, int hi)
{
    long v = 0;
    int digits = 0;

    while (isdigit((unsigned char)**p) && digits < 3) {
        v = v * 10 + (**p - '0');
        (*p)++;
        digits++;
    }
    if (digits == 0 || isdigit((unsigned char)**p) || v < lo || v > hi)
        return -1;
    return (int)v;
}

/* One field's text s (len bytes) into the bit set *bits; 0 or -1. */
static int cron_field_parse(const char *s, size_t len, const cron_field *f,
                            uint64_t *bits, int *any)
{
    char text[64];
    char *save = NULL, *part;

    if (len == 0 || len >= sizeof text)
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    /* strtok_r would skip an empty item of the list: refuse it here. */
    if (text[0] == ',' || text[len - 1] == ',' || strstr(text, ",,") != NULL)
        return -1;
    *bits = 0;
    *any = strcmp(text, "*") == 0;
    for (part = strtok_r(text, ",", &save); part != NULL;
         part = strtok_r(NULL, ",", &save)) {
        const char *p = part;
        int a, b, step = 1;
        if (*p == '*') {
            a = f->lo, b = f->hi;
            p++;
        } else {
            if ((a = cron_num(&p, f->lo, f->hi)) < 0)
                return -1;
            b = a;
            if (*p == '-') {
                p++;
                if ((b = cron_num(&p, f->lo, f->hi)) < 0 || b < a)
                    return -1;
            }
        }
        if (*p == '/') {
            p++;
            if ((step = cron_num(&p, 1, f->hi)) < 0)
                return -1;
            if (b == a)
                b = f->hi; /* "5/15": from 5 on */
        }
        if (*p != '\0')
            return -1;
        for (int v = a; v <= b; v += step)
            *bits |= (uint64_t)1 << v;
    }
    return *bits != 0 ? 0 : -1;
}

int cron_parse(const char *expr, cron_spec *c, const char **bad_field)
{
    const char *p = expr, *start[6];
    size_t len[6];
    int n = 0, any;
    uint64_t bits;

    memset(c, 0, sizeof *c);
    *bad_field = "cron";
    if (expr == NULL || strlen(expr) > CRON_EXPR_MAX)
        return -1;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        if (n == 6)
            return -1;
        start[n] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
        len[n] = (size_t)(p - start[n]);
        n++;
    }
    if (n != 5)
        return -1;
    for (int i = 0; i < 5; i++) {
        *bad_field = cron_fields[i].name;
        if (cron_field_parse(start[i], len[i], &cron_fields[i], &bits, &any) !=
            0)
            return -1;
        switch (i) {
        case 0:
            c->minute = bits;
            break;
        case 1:
            c->hour = (uint32_t)bits;
            break;
        case 2:
            c->dom = (uint32_t)bits, c->dom_any = any;
            break;
        case 3:
            c->month = (uint32_t)bits;
            break;
        default:
            c->dow = (uint8_t)((bits | (bits >> 7)) & 0x7f); /* 7 is 0 */
            c->dow_any = any;
        }
    }
    *bad_field = NULL;
    return 0;
}

/* 1 if day tm (its mday, mon, wday) matches c. */
static int cron_day_ok(const cron_spec *c, const struct tm *tm)
{
    int dom = (c->dom >> tm->tm_mday) & 1, dow = (c->dow >> tm->tm_wday) & 1;

    if (!((c->month >> (tm->tm_mon + 1)) & 1))
        return 0;
    if (c->dom_any || c->dow_any)
        return dom && dow;
    return dom || dow;
}

long long cron_next(const cron_spec *c, long long after_s)
{
    long long t = (after_s / 60 + 1) * 60;
    time_t day0;
    struct tm tm;

    for (int d = 0; d <= CRON_SEARCH_DAYS; d++) {
        time_t tt = (time_t)t;
        if (gmtime_r(&tt, &tm) == NULL)
            return -1;
        if (cron_day_ok(c, &tm)) {
            for (int h = tm.tm_hour; h < 24; h++) {
                if (!((c->hour >> h) & 1))
                    continue;
                for (int m = h == tm.tm_hour ? tm.tm_min : 0; m < 60; m++)
                    if ((c->minute >> m) & 1)
                        return t - tm.tm_hour * 3600LL - tm.tm_min * 60LL +
                               h * 3600LL + m * 60LL;
            }
        }
        day0 = (time_t)(t - tm.tm_hour * 3600LL - tm.tm_min * 60LL - tm.tm_sec);
        t = (long long)day0 + 86400;
    }
    return -1;
}

int cron_parse_time(const char *s, long long *out_s)
{
    int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0, sign = 0;
    struct tm tm = {0};
    const char *p;

    if (s == NULL || strlen(s) > 40 ||
        sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi,
               &sec, &n) != 6 ||
        n != 19)
        return -1;
    p = s + n;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) ||
            p[3] != ':' || !isdigit((unsigned char)p[4]) ||
            !isdigit((unsigned char)p[5]))
            return -1;
        oh = (p[1] - '0') * 10 + (p[2] - '0');
        om = (p[4] - '0') * 10 + (p[5] - '0');
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
        h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59)
        return -1;
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
    tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
    *out_s = (long long)timegm(&tm) - sign * (oh * 3600LL + om * 60LL);
    return 0;
}
