/* worker/wk_findings.c: what a syntax checker (or a test or lint
 * command) printed, turned into findings {file, line, column?, message}.
 * The checkers' formats, one pattern each (POSIX extended regexes):
 *
 *   cc              main.c:3:5: error: expected ';' before '}' token
 *   bash -n         main.sh: line 4: syntax error near unexpected token
 *   python          File "main.py", line 2   (then "SyntaxError: …")
 *   node --check    /workspace/main.js:2     (then "SyntaxError: …")
 *
 * A location line without its message on the same line takes the next
 * line of the form "<Name>Error: message". Messages and file names are
 * the checker's output: valid UTF-8 and bounded before they are kept. */
#include "wk.h"

#include "sp_buf.h"
#include "sp_utf8.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#define WK_LINE_MAX 2048
#define WK_MSG_MAX  512
#define WK_FILE_MAX 512

typedef struct wk_pattern {
    const char *re;
    int file, line, col, msg; /* group numbers; 0: none */
} wk_pattern;

static const wk_pattern wk_patterns[] = {
    {"^(.+):([0-9]+):([0-9]+): (fatal error|error|warning): (.*)$", 1, 2, 3, 5},
    {"^(.+): line ([0-9]+): (.*)$", 1, 2, 0, 3},
    {"^ *File \"(.+)\", line ([0-9]+)", 1, 2, 0, 0},
    {"^(/[^: ]+|[^: /][^: ]*):([0-9]+)$", 1, 2, 0, 0},
};
#define WK_NPATTERNS (sizeof wk_patterns / sizeof wk_patterns[0])
#define WK_ERROR_RE  "^([A-Za-z]*Error): (.*)$"

cJSON *wk_text(const char *s, size_t n, size_t max)
{
    sp_buf b;
    cJSON *o;

    if (n > max) {
        s += n - max;
        n = max;
        /* Start at a character, not in one. */
        while (n > 0 && ((unsigned char)*s & 0xC0) == 0x80)
            s++, n--;
    }
    buf_init(&b, n * 3 + 1);
    utf8_sanitize((const unsigned char *)s, n, &b);
    o = cJSON_CreateString(b.data ? b.data : "");
    buf_free(&b);
    return o;
}

/* Group g of line as a JSON string. */
static cJSON *wk_group(const char *line, const regmatch_t *m, int g, size_t max)
{
    return wk_text(line + m[g].rm_so, (size_t)(m[g].rm_eo - m[g].rm_so), max);
}

/* The finding of a location line (pattern p matched as m) whose message
 * may be on a later line: the first "…Error: msg" in rest. */
static cJSON *wk_finding(const wk_pattern *p, const char *line,
                         const regmatch_t *m, const char *rest,
                         const regex_t *error_re)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddItemToObject(o, "file", wk_group(line, m, p->file, WK_FILE_MAX));
    cJSON_AddNumberToObject(o, "line", atoi(line + m[p->line].rm_so));
    if (p->col)
        cJSON_AddNumberToObject(o, "column", atoi(line + m[p->col].rm_so));
    if (p->msg) {
        cJSON_AddItemToObject(o, "message",
                              wk_group(line, m, p->msg, WK_MSG_MAX));
        return o;
    }
    while (rest != NULL && *rest != '\0') {
        char next[WK_LINE_MAX];
        size_t n = strcspn(rest, "\n");
        regmatch_t em[3];
        snprintf(next, sizeof next, "%.*s",
                 (int)(n < sizeof next ? n : sizeof next - 1), rest);
        if (regexec(error_re, next, 3, em, 0) == 0) {
            sp_buf b;
            buf_init(&b, WK_MSG_MAX * 2);
            buf_append(&b, next + em[1].rm_so,
                       (size_t)(em[1].rm_eo - em[1].rm_so));
            buf_puts(&b, ": ");
            buf_append(&b, next + em[2].rm_so,
                       (size_t)(em[2].rm_eo - em[2].rm_so));
            cJSON_AddItemToObject(
                o, "message", wk_text(b.data ? b.data : "", b.len, WK_MSG_MAX));
            buf_free(&b);
            return o;
        }
        rest += n + (rest[n] == '\n');
    }
    cJSON_AddStringToObject(o, "message", "syntax error");
    return o;
}

/* 1 if all already has a finding of file and line as o's. */
static int wk_seen(const cJSON *all, const cJSON *o)
{
    const cJSON *it;
    const char *f = cJSON_GetStringValue(cJSON_GetObjectItem(o, "file"));
    double l = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "line"));

    cJSON_ArrayForEach(it, all)
    {
        const char *f2 = cJSON_GetStringValue(cJSON_GetObjectItem(it, "file"));
        if (f && f2 && strcmp(f, f2) == 0 &&
            cJSON_GetNumberValue(cJSON_GetObjectItem(it, "line")) == l)
            return 1;
    }
    return 0;
}

cJSON *wk_findings(const char *raw, size_t len)
{
    regex_t re[WK_NPATTERNS], error_re;
    cJSON *all = cJSON_CreateArray();
    size_t off = 0, ok = 0;
    char *out = malloc(len + 1);

    /* Captured output is bytes, not a string: a terminated copy. */
    if (out == NULL)
        return all;
    memcpy(out, raw, len);
    out[len] = '\0';
    for (; ok < WK_NPATTERNS; ok++)
        if (regcomp(&re[ok], wk_patterns[ok].re, REG_EXTENDED) != 0)
            break;
    if (ok < WK_NPATTERNS || regcomp(&error_re, WK_ERROR_RE, REG_EXTENDED) != 0)
        goto out;
    while (off < len && cJSON_GetArraySize(all) < WK_FINDINGS_MAX) {
        char line[WK_LINE_MAX];
        size_t n = strcspn(out + off, "\n");
        regmatch_t m[6];
        if (off + n > len)
            n = len - off;
        snprintf(line, sizeof line, "%.*s",
                 (int)(n < sizeof line ? n : sizeof line - 1), out + off);
        off += n + 1;
        for (size_t p = 0; p < WK_NPATTERNS; p++) {
            cJSON *o;
            if (regexec(&re[p], line, 6, m, 0) != 0)
                continue;
            o = wk_finding(&wk_patterns[p], line, m,
                           off < len ? out + off : NULL, &error_re);
            if (wk_seen(all, o))
                cJSON_Delete(o);
            else
                cJSON_AddItemToArray(all, o);
            break;
        }
    }
    regfree(&error_re);
out:
    for (size_t i = 0; i < ok; i++)
        regfree(&re[i]);
    free(out);
    return all;
}
