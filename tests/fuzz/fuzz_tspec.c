/* fuzz_tspec.c: ts_parse (common/sp_tspec.c) on any text.
 *
 * Invariants: a refused spec is left empty, with a message and a line
 * within the text; a taken one has a FROM (a known suite or a valid
 * template name, not both), at most TS_STEPS_MAX steps in line order,
 * and every step well formed: RUN one form, names valid, WORKDIR and COPY
 * destinations absolute and canonical, COPY sources relative and inside
 * the context (no "..", no "/" first, no empty component). */
#include "fuzz_util.h"
#include "sp_tspec.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_path_ok(const char *p, int absolute)
{
    size_t n = strlen(p);

    FZ_CHECK(n > 0, "empty path");
    FZ_CHECK((p[0] == '/') == absolute, "path %s", p);
    FZ_CHECK(strstr(p, "//") == NULL, "path %s has //", p);
    for (const char *c = p; *c != '\0';) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        FZ_CHECK(!(len == 2 && c[0] == '.' && c[1] == '.'), "path %s", p);
        FZ_CHECK(!(len == 1 && c[0] == '.' && (n > 1 || absolute)),
                 "path %s has .", p);
        c += len + (e != NULL);
    }
}

static void fz_step_ok(const ts_step *t, int prev_line)
{
    FZ_CHECK(t->line >= prev_line && t->line > 0, "line %d", t->line);
    switch (t->kind) {
    case TS_RUN:
        FZ_CHECK((t->shell != NULL) != (t->argv != NULL), "RUN form");
        FZ_CHECK(t->argv == NULL || t->argv[0] != NULL, "empty argv");
        break;
    case TS_ENV:
    case TS_ARG:
        FZ_CHECK(t->name != NULL && t->name[0] != '\0', "name");
        FZ_CHECK(t->kind == TS_ARG || t->value != NULL, "ENV value");
        break;
    case TS_WORKDIR:
        fz_path_ok(t->value, 1);
        break;
    case TS_USER:
        FZ_CHECK(t->value != NULL && strlen(t->value) <= 32, "user");
        break;
    case TS_COPY:
        FZ_CHECK(t->srcs != NULL && t->srcs[0] != NULL && t->dest != NULL,
                 "COPY");
        for (size_t i = 0; t->srcs[i] != NULL; i++)
            fz_path_ok(t->srcs[i], 0);
        FZ_CHECK(t->dest[0] == '/', "dest %s", t->dest);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[TS_ERR_SIZE];
    int line, lines = 1;
    ts_spec s;

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (ts_parse((const char *)data, size, NULL, &s, err, &line) != 0) {
        FZ_CHECK(s.n == 0 && s.steps == NULL, "refused but not empty");
        FZ_CHECK(err[0] != '\0', "refused without a message");
        FZ_CHECK(memchr(err, '\0', sizeof err) != NULL, "message");
        FZ_CHECK(line >= 0 && line <= lines, "line %d of %d", line, lines);
        return 0;
    }
    FZ_CHECK((s.suite[0] != '\0') != (s.base[0] != '\0'), "FROM");
    FZ_CHECK(s.base[0] == '\0' || ts_name_valid(s.base), "base %s", s.base);
    FZ_CHECK(s.n <= TS_STEPS_MAX, "%zu steps", s.n);
    for (size_t i = 0; i < s.n; i++)
        fz_step_ok(&s.steps[i], i ? s.steps[i - 1].line : 1);
    ts_free(&s);
    return 0;
}
