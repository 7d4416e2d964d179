/* sp_tspec.c: parsing a template spec (sp_tspec.h). The text is hostile:
 * every instruction, name, value and path is checked, and every error
 * names its line. */
#include "sp_tspec.h"
#include "sp_utf8.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_VARS_MAX  128
#define TS_VALUE_MAX (8 * 1024)
#define TS_PATH_MAX  4096

/* A variable of ARG or ENV, for substitution. */
typedef struct ts_var {
    char name[TS_NAME_MAX + 1];
    char *value; /* owned; NULL: declared without a value */
} ts_var;

/* What the parse keeps between lines. */
typedef struct ts_state {
    ts_spec *out;
    const char *const *args;
    ts_var vars[TS_VARS_MAX];
    size_t nvars;
    char workdir[TS_PATH_MAX];
    int have_from;
    int line;
    char *err;
} ts_state;

static int ts_fail(ts_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int ts_fail(ts_state *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->err, TS_ERR_SIZE, fmt, ap);
    va_end(ap);
    return -1;
}

int ts_name_valid(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > TS_NAME_MAX ||
        !(islower((unsigned char)name[0]) || isdigit((unsigned char)name[0])))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(islower(c) || isdigit(c) || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* 1 if name is a variable name: [A-Za-z_][A-Za-z0-9_]*, bounded. */
static int ts_var_name_valid(const char *name, size_t n)
{
    if (n == 0 || n > TS_NAME_MAX ||
        !(isalpha((unsigned char)name[0]) || name[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (!(isalnum((unsigned char)name[i]) || name[i] == '_'))
            return 0;
    }
    return 1;
}

static ts_var *ts_var_find(ts_state *st, const char *name, size_t n)
{
    for (size_t i = 0; i < st->nvars; i++) {
        if (strlen(st->vars[i].name) == n &&
            memcmp(st->vars[i].name, name, n) == 0)
            return &st->vars[i];
    }
    return NULL;
}

/* Set (or declare, value NULL) a variable. 0 or -1 (too many). */
static int ts_var_set(ts_state *st, const char *name, const char *value)
{
    ts_var *v = ts_var_find(st, name, strlen(name));
    char *copy = value != NULL ? strdup(value) : NULL;

    if (value != NULL && copy == NULL)
        return ts_fail(st, "out of memory");
    if (v == NULL) {
        if (st->nvars >= TS_VARS_MAX) {
            free(copy);
            return ts_fail(st, "more than %d variables", TS_VARS_MAX);
        }
        v = &st->vars[st->nvars++];
        snprintf(v->name, sizeof v->name, "%s", name);
    } else if (value == NULL) {
        return 0; /* declaring again keeps the value */
    }
    free(v->value);
    v->value = copy;
    return 0;
}

/* Append n bytes to the growing string *s of *len (bounded by max). */
static int ts_append(char **s, size_t *len, size_t max, const char *p, size_t n)
{
    char *grown;

    if (*len + n > max)
        return -1;
    grown = realloc(*s, *len + n + 1);
    if (grown == NULL)
        return -1;
    memcpy(grown + *len, p, n);
    *len += n;
    grown[*len] = '\0';
    *s = grown;
    return 0;
}

/* in with $NAME and ${NAME} replaced by the variables' values (unset:
 * empty) and \$ by $; a new string (caller frees), or NULL (error set). */
static char *ts_subst(ts_state *st, const char *in)
{
    char *out = calloc(1, 1);
    size_t len = 0;

    for (const char *p = in; out != NULL && *p != '\0';) {
        const char *name;
        size_t n = 0;
        int braces = 0;
        ts_var *v;
        if (p[0] == '\\' && p[1] == '$') {
            if (ts_append(&out, &len, TS_VALUE_MAX, "$", 1) != 0)
                goto too_long;
            p += 2;
            continue;
        }
        if (*p != '$') {
            if (ts_append(&out, &len, TS_VALUE_MAX, p++, 1) != 0)
                goto too_long;
            continue;
        }
        braces = p[1] == '{';
        name = p + 1 + braces;
        while (isalnum((unsigned char)name[n]) || name[n] == '_')
            n++;
        if (n == 0 || (braces && name[n] != '}')) {
            free(out);
            ts_fail(st, "bad variable reference (use $NAME or ${NAME})");
            return NULL;
        }
        v = ts_var_find(st, name, n);
        if (v != NULL && v->value != NULL &&
            ts_append(&out, &len, TS_VALUE_MAX, v->value, strlen(v->value)) !=
                0)
            goto too_long;
        p = name + n + braces;
    }
    if (out == NULL)
        ts_fail(st, "out of memory");
    return out;
too_long:
    free(out);
    ts_fail(st, "value longer than %d bytes", TS_VALUE_MAX);
    return NULL;
}

/* Next word of *p (skipping blanks): quoted ("..." with \ escapes, or
 * '...') or bare (up to a blank); unquoted into a new string (caller
 * frees). NULL at the end (*err empty) or on a malformed word (err set). */
static char *ts_word(ts_state *st, const char **p)
{
    const char *s = *p;
    char *out = calloc(1, 1);
    size_t len = 0;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0' || out == NULL) {
        free(out);
        *p = s;
        return NULL;
    }
    while (*s != '\0' && *s != ' ' && *s != '\t') {
        char q = *s;
        if (q == '"' || q == '\'') {
            for (s++; *s != q; s++) {
                if (*s == '\0') {
                    free(out);
                    ts_fail(st, "unterminated %c quote", q);
                    return NULL;
                }
                /* \$ stays for ts_subst, which makes it a $. */
                if (q == '"' && *s == '\\' && s[1] != '\0' && s[1] != '$')
                    s++;
                if (ts_append(&out, &len, TS_VALUE_MAX, s, 1) != 0)
                    goto too_long;
            }
            s++;
            continue;
        }
        if (*s == '\\' && s[1] != '\0' && s[1] != '$')
            s++;
        if (ts_append(&out, &len, TS_VALUE_MAX, s++, 1) != 0)
            goto too_long;
    }
    *p = s;
    return out;
too_long:
    free(out);
    ts_fail(st, "value longer than %d bytes", TS_VALUE_MAX);
    return NULL;
}

static ts_step *ts_step_new(ts_state *st, ts_kind kind)
{
    ts_spec *s = st->out;
    ts_step *grown;

    if (s->n >= TS_STEPS_MAX) {
        ts_fail(st, "more than %d instructions", TS_STEPS_MAX);
        return NULL;
    }
    grown = realloc(s->steps, (s->n + 1) * sizeof *grown);
    if (grown == NULL) {
        ts_fail(st, "out of memory");
        return NULL;
    }
    s->steps = grown;
    memset(&grown[s->n], 0, sizeof grown[s->n]);
    grown[s->n].kind = kind;
    grown[s->n].line = st->line;
    return &grown[s->n++];
}

/* A path made canonical: components joined by one '/', no "." and ".."
 * applied; for a relative path (context), a ".." above its start is an
 * error (-1); for an absolute one it stays at "/". Into out (TS_PATH_MAX). */
static int ts_path_norm(const char *in, int absolute, char *out)
{
    char buf[TS_PATH_MAX];
    size_t n = 0;
    const char *p = in;

    if (strlen(in) >= TS_PATH_MAX)
        return -1;
    while (*p != '\0') {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (n == 0 && !absolute)
                return -1; /* escapes the build context */
            while (n > 0 && buf[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (n + len + 2 >= TS_PATH_MAX)
                return -1;
            if (n > 0 || absolute)
                buf[n++] = '/';
            memcpy(buf + n, p, len);
            n += len;
        }
        p += len + (e != NULL);
    }
    buf[n] = '\0';
    if (absolute && n == 0)
        snprintf(out, TS_PATH_MAX, "/");
    else
        snprintf(out, TS_PATH_MAX, "%s", n ? buf : ".");
    return 0;
}

/* ---- instructions ---------------------------------------------------- */

static int ts_from(ts_state *st, const char *rest)
{
    static const char *const suites[] = {"bookworm", "trixie"};
    ts_spec *s = st->out;
    char *word, *v;
    int result = -1;

    while (*rest == ' ' || *rest == '\t')
        rest++;
    word = ts_subst(st, rest);
    if (word == NULL)
        return -1;
    for (v = word + strlen(word); v > word && (v[-1] == ' ' || v[-1] == '\t');)
        *--v = '\0';
    if (st->have_from) {
        ts_fail(st, "only one FROM (multi-stage specs are not supported)");
        goto out;
    }
    if (strncmp(word, "debian:", 7) == 0) {
        const char *suite = word + 7;
        size_t n = strlen(suite);
        s->slim = n > 5 && strcmp(suite + n - 5, "-slim") == 0;
        if (s->slim)
            n -= 5;
        for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
            if (strlen(suites[i]) == n && strncmp(suites[i], suite, n) == 0)
                snprintf(s->suite, sizeof s->suite, "%s", suites[i]);
        }
        if (s->suite[0] == '\0') {
            ts_fail(st, "FROM: a Debian suite is debian:bookworm or "
                        "debian:trixie, with -slim or not");
            goto out;
        }
    } else if (ts_name_valid(word)) {
        snprintf(s->base, sizeof s->base, "%s", word);
    } else {
        ts_fail(st, "FROM: a Debian suite (debian:bookworm[-slim], "
                    "debian:trixie[-slim]) or a template name");
        goto out;
    }
    st->have_from = 1;
    result = 0;
out:
    free(word);
    return result;
}

static int ts_run(ts_state *st, const char *rest)
{
    ts_step *step;
    cJSON *arr, *it;
    size_t n = 0;

    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (*rest == '\0')
        return ts_fail(st, "RUN needs a command");
    if ((step = ts_step_new(st, TS_RUN)) == NULL)
        return -1;
    if (*rest != '[') {
        step->shell = strdup(rest);
        return step->shell ? 0 : ts_fail(st, "out of memory");
    }
    /* The exec form: a JSON array of strings. */
    arr = cJSON_Parse(rest);
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1 ||
        cJSON_GetArraySize(arr) > TS_ARGV_MAX) {
        cJSON_Delete(arr);
        return ts_fail(st, "RUN [...] must be a JSON array of 1 to %d strings",
                       TS_ARGV_MAX);
    }
    step->argv = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(char *));
    cJSON_ArrayForEach(it, arr)
    {
        if (step->argv == NULL || !cJSON_IsString(it) ||
            (step->argv[n++] = strdup(it->valuestring)) == NULL) {
            cJSON_Delete(arr);
            return ts_fail(st, "RUN [...] must be a JSON array of strings");
        }
    }
    cJSON_Delete(arr);
    return 0;
}

/* One NAME=value of ENV or ARG (value may be absent for ARG: NULL). */
static int ts_assign(ts_state *st, ts_kind kind, const char *word)
{
    const char *eq = strchr(word, '=');
    size_t n = eq ? (size_t)(eq - word) : strlen(word);
    char name[TS_NAME_MAX + 1];
    char *value = NULL;
    ts_step *step;
    const char *given = NULL;

    if (!ts_var_name_valid(word, n))
        return ts_fail(st,
                       "%s: a name is [A-Za-z_][A-Za-z0-9_]*, at most "
                       "%d characters",
                       kind == TS_ENV ? "ENV" : "ARG", TS_NAME_MAX);
    memcpy(name, word, n);
    name[n] = '\0';
    if (kind == TS_ENV && eq == NULL)
        return ts_fail(st, "ENV %s needs a value", name);
    if (eq != NULL && (value = ts_subst(st, eq + 1)) == NULL)
        return -1;
    /* A build argument overrides an ARG's default. */
    for (size_t i = 0; kind == TS_ARG && st->args && st->args[i]; i++) {
        if (strncmp(st->args[i], name, n) == 0 && st->args[i][n] == '=')
            given = st->args[i] + n + 1;
    }
    if (given != NULL) {
        free(value);
        if ((value = strdup(given)) == NULL)
            return ts_fail(st, "out of memory");
    }
    if (ts_var_set(st, name, value) != 0 ||
        (st->have_from && (step = ts_step_new(st, kind)) == NULL)) {
        free(value);
        return -1;
    }
    if (!st->have_from) {
        free(value); /* an ARG before FROM serves FROM only */
        return 0;
    }
    step->name = strdup(name);
    step->value = value;
    return step->name ? 0 : ts_fail(st, "out of memory");
}

static int ts_env_or_arg(ts_state *st, ts_kind kind, const char *rest)
{
    const char *p = rest;
    char *word;
    int n = 0;

    /* ENV NAME value (the old form: one name, the rest is its value). */
    while (*p == ' ' || *p == '\t')
        p++;
    if (kind == TS_ENV && strcspn(p, "= \t") < strlen(p) &&
        p[strcspn(p, "= \t")] != '=') {
        char buf[TS_LINE_MAX + 2];
        size_t n1 = strcspn(p, " \t");
        const char *v = p + n1 + strspn(p + n1, " \t");
        snprintf(buf, sizeof buf, "%.*s=%s", (int)n1, p, v);
        return ts_assign(st, kind, buf);
    }
    while ((word = ts_word(st, &p)) != NULL) {
        int rc = ts_assign(st, kind, word);
        free(word);
        if (rc != 0)
            return -1;
        n++;
    }
    if (st->err[0] != '\0')
        return -1;
    return n > 0 ? 0
                 : ts_fail(st, "%s needs NAME=value",
                           kind == TS_ENV ? "ENV" : "ARG");
}

static int ts_workdir(ts_state *st, const char *rest)
{
    char *v = ts_subst(st, rest), joined[2 * TS_PATH_MAX + 2], *end;
    ts_step *step;

    if (v == NULL)
        return -1;
    for (end = v + strlen(v); end > v && (end[-1] == ' ' || end[-1] == '\t');)
        *--end = '\0';
    while (*v == ' ' || *v == '\t')
        memmove(v, v + 1, strlen(v));
    if (v[0] == '\0' || strlen(v) >= TS_PATH_MAX) {
        free(v);
        return ts_fail(st, "WORKDIR needs a path of at most %d bytes",
                       TS_PATH_MAX - 1);
    }
    snprintf(joined, sizeof joined, "%s/%s", v[0] == '/' ? "" : st->workdir, v);
    free(v);
    if (ts_path_norm(joined, 1, st->workdir) != 0)
        return ts_fail(st, "WORKDIR: path too long");
    if ((step = ts_step_new(st, TS_WORKDIR)) == NULL)
        return -1;
    step->value = strdup(st->workdir);
    return step->value ? 0 : ts_fail(st, "out of memory");
}

static int ts_user(ts_state *st, const char *rest)
{
    char *v, *end;
    ts_step *step;
    size_t n;
    int ok;

    while (*rest == ' ' || *rest == '\t')
        rest++;
    if ((v = ts_subst(st, rest)) == NULL)
        return -1;
    for (end = v + strlen(v); end > v && (end[-1] == ' ' || end[-1] == '\t');)
        *--end = '\0';
    n = strlen(v);
    ok = n > 0 && n <= 32 &&
         (strspn(v, "0123456789") == n ||
          ((islower((unsigned char)v[0]) || v[0] == '_') &&
           strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n));
    if (ok && strspn(v, "0123456789") == n && (n > 5 || atol(v) > 65535))
        ok = 0;
    if (!ok) {
        free(v);
        return ts_fail(st, "USER: a user name ([a-z_][a-z0-9_-]*, at most 32) "
                           "or a uid up to 65535");
    }
    if ((step = ts_step_new(st, TS_USER)) == NULL) {
        free(v);
        return -1;
    }
    step->value = v;
    return 0;
}

/* The words of COPY: a JSON array or blank-separated words. A
 * NULL-terminated array (caller frees each and it), or NULL (err set). */
static char **ts_copy_words(ts_state *st, const char *rest, size_t *n)
{
    char **w = calloc(TS_COPY_MAX + 2, sizeof *w);
    const char *p = rest;
    char *word;

    *n = 0;
    while (*p == ' ' || *p == '\t')
        p++;
    if (w != NULL && *p == '[') {
        cJSON *arr = cJSON_Parse(p), *it;
        cJSON_ArrayForEach(it, arr)
        {
            if (!cJSON_IsString(it) || *n > TS_COPY_MAX ||
                (w[(*n)++] = strdup(it->valuestring)) == NULL) {
                ts_fail(st,
                        "COPY [...] must be a JSON array of at most %d "
                        "sources and a destination",
                        TS_COPY_MAX);
                break;
            }
        }
        if (!cJSON_IsArray(arr))
            ts_fail(st, "COPY [...] must be a JSON array of strings");
        cJSON_Delete(arr);
        return w;
    }
    while (w != NULL && (word = ts_word(st, &p)) != NULL) {
        if (*n > TS_COPY_MAX) {
            free(word);
            ts_fail(st, "COPY takes at most %d sources", TS_COPY_MAX);
            break;
        }
        w[(*n)++] = word;
    }
    if (w == NULL)
        ts_fail(st, "out of memory");
    return w;
}

static int ts_copy(ts_state *st, const char *rest)
{
    size_t n, i;
    char **w = ts_copy_words(st, rest, &n), norm[TS_PATH_MAX];
    ts_step *step = NULL;
    int result = -1;

    if (w == NULL || st->err[0] != '\0')
        goto out;
    if (n < 2) {
        ts_fail(st, "COPY needs one or more sources and a destination");
        goto out;
    }
    if (strncmp(w[0], "--", 2) == 0) {
        ts_fail(st, "COPY options (%s) are not supported", w[0]);
        goto out;
    }
    if ((step = ts_step_new(st, TS_COPY)) == NULL ||
        (step->srcs = calloc(n, sizeof(char *))) == NULL)
        goto out;
    for (i = 0; i + 1 < n; i++) {
        char *src = ts_subst(st, w[i]);
        if (src == NULL)
            goto out;
        if (src[0] == '/' || ts_path_norm(src, 0, norm) != 0) {
            ts_fail(st, "COPY source %s is outside the build context", src);
            free(src);
            goto out;
        }
        free(src);
        if ((step->srcs[i] = strdup(norm)) == NULL)
            goto out;
    }
    {
        char *dest = ts_subst(st, w[n - 1]);
        char joined[2 * TS_PATH_MAX + 2];
        if (dest == NULL)
            goto out;
        snprintf(joined, sizeof joined, "%s/%s",
                 dest[0] == '/' ? "" : st->workdir, dest);
        /* A destination ending in / is a directory: kept so. */
        if (ts_path_norm(joined, 1, norm) != 0 || strlen(dest) == 0) {
            free(dest);
            ts_fail(st, "COPY: bad destination");
            goto out;
        }
        if (dest[strlen(dest) - 1] == '/' && strcmp(norm, "/") != 0)
            strncat(norm, "/", sizeof norm - strlen(norm) - 1);
        free(dest);
        step->dest = strdup(norm);
    }
    result = step->dest ? 0 : ts_fail(st, "out of memory");
out:
    for (i = 0; w != NULL && w[i] != NULL; i++)
        free(w[i]);
    free(w);
    return result;
}

/* ---- lines ------------------------------------------------------------ */

/* One logical line (continuations joined): an instruction. */
static int ts_instruction(ts_state *st, const char *text)
{
    static const char *const names[] = {"FROM", "RUN",  "ENV", "WORKDIR",
                                        "USER", "COPY", "ARG"};
    char word[16];
    size_t n = strcspn(text, " \t");
    const char *rest = text + n;
    int which = -1;

    if (n == 0 || n >= sizeof word)
        return ts_fail(st, "unknown instruction %.*s", (int)(n > 32 ? 32 : n),
                       text);
    for (size_t i = 0; i < n; i++)
        word[i] = (char)toupper((unsigned char)text[i]);
    word[n] = '\0';
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
        if (strcmp(word, names[i]) == 0)
            which = i;
    }
    if (which < 0)
        return ts_fail(st,
                       "unknown instruction %s (FROM, RUN, ENV, WORKDIR, "
                       "USER, COPY or ARG)",
                       word);
    if (which == 0)
        return ts_from(st, rest);
    if (which == 6)
        return ts_env_or_arg(st, TS_ARG, rest);
    if (!st->have_from)
        return ts_fail(st, "the spec must start with FROM");
    switch (which) {
    case 1:
        return ts_run(st, rest);
    case 2:
        return ts_env_or_arg(st, TS_ENV, rest);
    case 3:
        return ts_workdir(st, rest);
    case 4:
        return ts_user(st, rest);
    default:
        return ts_copy(st, rest);
    }
}

/* The next logical line of text from *pos: continuations ("\" at the end
 * of a line) joined, comment and blank lines skipped, into line (caller
 * frees; NULL at the end); st->line is its first line's number. */
static int ts_next_line(ts_state *st, const char *text, size_t len, size_t *pos,
                        int *lineno, char **line)
{
    size_t n = 0;

    *line = NULL;
    while (*pos < len) {
        const char *s = text + *pos, *nl = memchr(s, '\n', len - *pos);
        size_t l = nl ? (size_t)(nl - s) : len - *pos;
        size_t skip = 0;
        int cont;
        /* The text is not NUL-terminated: stay within the line. */
        while (skip < l && (s[skip] == ' ' || s[skip] == '\t'))
            skip++;
        *pos += l + (nl != NULL);
        (*lineno)++;
        if (l > 0 && s[l - 1] == '\r')
            l--;
        if (*line == NULL && (skip >= l || s[skip] == '#'))
            continue; /* blank or comment (not inside a continuation) */
        if (*line == NULL)
            st->line = *lineno;
        cont = l > 0 && s[l - 1] == '\\';
        if (ts_append(line, &n, TS_LINE_MAX, s + (*line ? 0 : skip),
                      l - cont - (*line ? 0 : skip)) != 0) {
            free(*line);
            *line = NULL;
            return ts_fail(st, "instruction longer than %d bytes", TS_LINE_MAX);
        }
        if (!cont)
            break;
        if (ts_append(line, &n, TS_LINE_MAX, " ", 1) != 0)
            return ts_fail(st, "instruction longer than %d bytes", TS_LINE_MAX);
    }
    return 0;
}

/* The build arguments must each be NAME=value of a declared ARG. */
static int ts_check_args(ts_state *st)
{
    for (size_t i = 0; st->args != NULL && st->args[i] != NULL; i++) {
        const char *a = st->args[i], *eq = strchr(a, '=');
        if (eq == NULL || ts_var_find(st, a, (size_t)(eq - a)) == NULL)
            return ts_fail(st, "build argument %.*s is not declared by ARG",
                           (int)(eq ? (size_t)(eq - a) : strlen(a)) > 64
                               ? 64
                               : (int)(eq ? (size_t)(eq - a) : strlen(a)),
                           a);
    }
    return 0;
}

int ts_parse(const char *text, size_t len, const char *const *args,
             ts_spec *out, char *err, int *line)
{
    ts_state st = {.out = out, .args = args, .err = err};
    size_t pos = 0;
    int lineno = 0, result = -1;
    char *l;

    memset(out, 0, sizeof *out);
    err[0] = '\0';
    *line = 0;
    snprintf(st.workdir, sizeof st.workdir, "/");
    if (len > TS_TEXT_MAX) {
        ts_fail(&st, "the spec is larger than %d bytes", TS_TEXT_MAX);
        goto out;
    }
    if (memchr(text, '\0', len) != NULL ||
        !utf8_valid((const unsigned char *)text, len)) {
        ts_fail(&st, "the spec must be UTF-8 text without NUL bytes");
        goto out;
    }
    for (;;) {
        if (ts_next_line(&st, text, len, &pos, &lineno, &l) != 0)
            goto at_line;
        if (l == NULL)
            break;
        if (ts_instruction(&st, l) != 0) {
            free(l);
            goto at_line;
        }
        free(l);
    }
    if (!st.have_from) {
        ts_fail(&st, "the spec has no FROM");
        goto out;
    }
    if (ts_check_args(&st) != 0)
        goto out;
    result = 0;
    goto out;
at_line:
    *line = st.line;
out:
    for (size_t i = 0; i < st.nvars; i++)
        free(st.vars[i].value);
    if (result != 0)
        ts_free(out);
    return result;
}

void ts_free(ts_spec *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        ts_step *t = &s->steps[i];
        for (size_t j = 0; t->argv != NULL && t->argv[j] != NULL; j++)
            free(t->argv[j]);
        for (size_t j = 0; t->srcs != NULL && t->srcs[j] != NULL; j++)
            free(t->srcs[j]);
        free(t->argv);
        free(t->srcs);
        free(t->shell);
        free(t->name);
        free(t->value);
        free(t->dest);
    }
    free(s->steps);
    memset(s, 0, sizeof *s);
}

cJSON *ts_meta_read(const char *dir, const char *name)
{
    char path[4200], *text = NULL;
    cJSON *meta = NULL;
    long len;
    FILE *f;

    if (!ts_name_valid(name))
        return NULL;
    snprintf(path, sizeof path, "%s/%s/meta.json", dir, name);
    f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 &&
        len < TS_META_MAX && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)len + 1)) != NULL &&
        fread(text, 1, (size_t)len, f) == (size_t)len) {
        text[len] = '\0';
        meta = cJSON_Parse(text);
    }
    free(text);
    fclose(f);
    return meta;
}
