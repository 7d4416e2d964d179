/* sp_tspec.h: the spec a template is built from (docs/DESIGN.md §7,
 * "Templates and disks"): a Dockerfile-style text, parsed into steps that
 * the builder runs in order.
 *
 *   FROM debian:bookworm | debian:bookworm-slim | debian:trixie[-slim]
 *        | <template name>             first instruction (ARGs may precede)
 *   RUN <shell command> | RUN ["argv", ...]
 *   ENV NAME=value [NAME2=value2 ...] | ENV NAME value
 *   WORKDIR /absolute/path             (relative: to the previous WORKDIR)
 *   USER name                          ([a-z_][a-z0-9_-]{0,31}, or a uid)
 *   COPY src... dest                   src inside the build context
 *   ARG NAME[=default]
 *
 * Lines may continue with a final backslash; # starts a comment line;
 * instructions are case-insensitive. $NAME and ${NAME} of earlier ARGs and
 * ENVs are replaced in ENV, WORKDIR, USER and COPY (not in RUN, whose shell
 * sees them as variables). Anything else is refused with the line number
 * and the reason. Every limit holds: the text, the steps, a line, a value,
 * the number of sources of a COPY. */
#ifndef SP_TSPEC_H
#define SP_TSPEC_H

#include <stddef.h>

#define TS_TEXT_MAX  (64 * 1024) /* bytes of a spec */
#define TS_STEPS_MAX 256
#define TS_LINE_MAX  (16 * 1024) /* an instruction with its continuations */
#define TS_ARGV_MAX  256         /* strings of an exec-form RUN */
#define TS_COPY_MAX  64          /* sources of one COPY */
#define TS_NAME_MAX  64          /* a template or variable name */
#define TS_ERR_SIZE  256

typedef enum ts_kind {
    TS_RUN,
    TS_ENV,
    TS_WORKDIR,
    TS_USER,
    TS_COPY,
    TS_ARG
} ts_kind;

/* One step. Strings are owned by the spec (ts_free). */
typedef struct ts_step {
    ts_kind kind;
    int line;    /* where it starts, from 1 */
    char *shell; /* RUN, shell form: the command for /bin/sh -c */
    char **argv; /* RUN, exec form: NULL-terminated */
    char *name;  /* ENV, ARG: the variable */
    char *value; /* ENV: its value; ARG: its default (may be NULL);
                    WORKDIR: the absolute path; USER: the user */
    char **srcs; /* COPY: NULL-terminated, normalised, relative */
    char *dest;  /* COPY: absolute (relative: to the WORKDIR then) */
} ts_step;

typedef struct ts_spec {
    /* FROM: a Debian suite ("bookworm", "trixie") with slim, or a
     * template; exactly one of suite and base is set. */
    char suite[16];
    int slim;
    char base[TS_NAME_MAX + 1];
    ts_step *steps; /* the steps after FROM, in order */
    size_t n;
} ts_spec;

/* Parse len bytes of text into *out (empty on failure). args: NULL or a
 * NULL-terminated list of "NAME=value" build arguments, which override
 * ARG defaults (an argument no ARG declares is an error). Returns 0, or -1
 * with the reason in err (TS_ERR_SIZE bytes) and its line in *line (0 for
 * the whole text). */
int ts_parse(const char *text, size_t len, const char *const *args,
             ts_spec *out, char *err, int *line);

/* Free what ts_parse made; NULL-safe, and safe on a spec ts_parse left
 * empty. */
void ts_free(ts_spec *s);

/* 1 if name is a valid template name: [a-z0-9][a-z0-9._-]{0,63}. */
int ts_name_valid(const char *name);

/* The meta.json of template name under dir ($SP_STATE_DIR/templates),
 * parsed (caller frees with cJSON_Delete); NULL for a bad name, none, or
 * one that is not JSON or over TS_META_MAX bytes. */
#define TS_META_MAX (1 << 20)
struct cJSON;
struct cJSON *ts_meta_read(const char *dir, const char *name);

#endif
