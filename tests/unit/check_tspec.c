/* check_tspec.c: the template spec parser (common/sp_tspec.c): what it
 * takes, what it refuses (with the line), and its limits. */
#include "sp_tspec.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse text (args may be NULL); the spec on success. */
static int parse(const char *text, const char *const *args, ts_spec *s,
                 char *err, int *line)
{
    return ts_parse(text, strlen(text), args, s, err, line);
}

/* text must be refused at line want_line with a message containing
 * want. */
static void refused(const char *text, int want_line, const char *want)
{
    ts_spec s;
    char err[TS_ERR_SIZE];
    int line;

    ck_assert_msg(parse(text, NULL, &s, err, &line) == -1, "taken: %s", text);
    ck_assert_msg(strstr(err, want) != NULL, "%s: error \"%s\", wanted \"%s\"",
                  text, err, want);
    ck_assert_msg(line == want_line, "%s: line %d, wanted %d", text, line,
                  want_line);
    ck_assert_uint_eq(s.n, 0);
    ck_assert_ptr_null(s.steps);
}

START_TEST(tspec_full)
{
    static const char text[] = "# a comment\n"
                               "ARG SUITE=bookworm\n"
                               "FROM debian:${SUITE}-slim\n"
                               "\n"
                               "RUN apt-get update && \\\n"
                               "    apt-get install -y git\n"
                               "RUN [\"python3\", \"-c\", \"print(1)\"]\n"
                               "env HOME=/home/user NAME=\"a b\" \n"
                               "ENV PATH $HOME/bin:/usr/bin\n"
                               "WORKDIR /srv\n"
                               "WORKDIR app/../code\n"
                               "USER user\n"
                               "COPY src/ lib/x.py ./dest/\n"
                               "COPY [\"a b.txt\", \"/opt/f\"]\n"
                               "ARG MODE\n";
    ts_spec s;
    char err[TS_ERR_SIZE];
    int line;

    ck_assert_msg(parse(text, NULL, &s, err, &line) == 0, "%d: %s", line, err);
    ck_assert_str_eq(s.suite, "bookworm");
    ck_assert_int_eq(s.slim, 1);
    ck_assert_str_eq(s.base, "");
    ck_assert_uint_eq(s.n, 11);
    ck_assert_int_eq(s.steps[0].kind, TS_RUN);
    ck_assert_int_eq(s.steps[0].line, 5);
    ck_assert_str_eq(s.steps[0].shell,
                     "apt-get update &&      apt-get install -y git");
    ck_assert_ptr_null(s.steps[1].shell);
    ck_assert_str_eq(s.steps[1].argv[0], "python3");
    ck_assert_str_eq(s.steps[1].argv[2], "print(1)");
    ck_assert_ptr_null(s.steps[1].argv[3]);
    ck_assert_int_eq(s.steps[2].kind, TS_ENV);
    ck_assert_str_eq(s.steps[2].name, "HOME");
    ck_assert_str_eq(s.steps[2].value, "/home/user");
    ck_assert_str_eq(s.steps[3].name, "NAME");
    ck_assert_str_eq(s.steps[3].value, "a b");
    ck_assert_str_eq(s.steps[4].name, "PATH");
    ck_assert_str_eq(s.steps[4].value, "/home/user/bin:/usr/bin");
    ck_assert_str_eq(s.steps[5].value, "/srv");
    ck_assert_str_eq(s.steps[6].value, "/srv/code");
    ck_assert_int_eq(s.steps[7].kind, TS_USER);
    ck_assert_str_eq(s.steps[7].value, "user");
    ck_assert_int_eq(s.steps[8].kind, TS_COPY);
    ck_assert_str_eq(s.steps[8].srcs[0], "src");
    ck_assert_str_eq(s.steps[8].srcs[1], "lib/x.py");
    ck_assert_ptr_null(s.steps[8].srcs[2]);
    ck_assert_str_eq(s.steps[8].dest, "/srv/code/dest/");
    ck_assert_str_eq(s.steps[9].srcs[0], "a b.txt");
    ck_assert_str_eq(s.steps[9].dest, "/opt/f");
    ck_assert_int_eq(s.steps[10].kind, TS_ARG);
    ck_assert_str_eq(s.steps[10].name, "MODE");
    ck_assert_ptr_null(s.steps[10].value);
    ts_free(&s);
    ts_free(&s); /* twice is harmless */
}
END_TEST

START_TEST(tspec_from_forms)
{
    static const struct {
        const char *text, *suite, *base;
        int slim;
    } ok[] = {
        {"FROM debian:bookworm", "bookworm", "", 0},
        {"from debian:trixie-slim\n", "trixie", "", 1},
        {"FROM code-interpreter", "", "code-interpreter", 0},
        {"  FROM   base.v2  \r\n", "", "base.v2", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ts_spec s;
        char err[TS_ERR_SIZE];
        int line;
        ck_assert_msg(parse(ok[i].text, NULL, &s, err, &line) == 0, "%s: %s",
                      ok[i].text, err);
        ck_assert_str_eq(s.suite, ok[i].suite);
        ck_assert_str_eq(s.base, ok[i].base);
        ck_assert_int_eq(s.slim, ok[i].slim);
        ts_free(&s);
    }
}
END_TEST

START_TEST(tspec_refused)
{
    refused("", 0, "no FROM");
    refused("# only a comment\n", 0, "no FROM");
    refused("RUN true\n", 1, "must start with FROM");
    refused("FROM debian:sid\n", 1, "Debian suite");
    refused("FROM ubuntu:22.04\n", 1, "template name");
    refused("FROM Base\n", 1, "template name");
    refused("FROM base AS build\n", 1, "template name");
    refused("FROM base\nFROM base\n", 2, "only one FROM");
    refused("FROM base\nEXPOSE 80\n", 2, "unknown instruction EXPOSE");
    refused("FROM base\nADD x /x\n", 2, "unknown instruction ADD");
    refused("FROM base\n\nRUN\n", 3, "RUN needs a command");
    refused("FROM base\nRUN [\"a\", 1]\n", 2, "array of strings");
    refused("FROM base\nRUN [\"a\"\n", 2, "JSON array");
    refused("FROM base\nENV\n", 2, "ENV needs");
    refused("FROM base\nENV 1X=y\n", 2, "a name is");
    refused("FROM base\nENV A\n", 2, "needs a value");
    refused("FROM base\nENV A=\"open\n", 2, "unterminated");
    refused("FROM base\nENV A=${B\n", 2, "bad variable reference");
    refused("FROM base\nUSER root;rm\n", 2, "USER");
    refused("FROM base\nUSER 70000\n", 2, "USER");
    refused("FROM base\nWORKDIR\n", 2, "WORKDIR needs");
    refused("FROM base\nCOPY onlyone\n", 2, "sources and a destination");
    refused("FROM base\nCOPY ../etc/passwd /x\n", 2, "outside the build");
    refused("FROM base\nCOPY a/../../b /x\n", 2, "outside the build");
    refused("FROM base\nCOPY /etc/passwd /x\n", 2, "outside the build");
    refused("FROM base\nCOPY --chown=1 a /x\n", 2, "not supported");
    refused("FROM base\nCOPY [\"a\", 2]\n", 2, "JSON array");
    refused("FROM base\nRUN true \\\n  && x\nBAD\n", 4, "unknown instruction");
}
END_TEST

START_TEST(tspec_args)
{
    static const char text[] = "ARG V=1\nFROM base\nARG V\nENV X=$V\n";
    const char *args[] = {"V=2", NULL}, *bad[] = {"W=3", NULL};
    ts_spec s;
    char err[TS_ERR_SIZE];
    int line;

    ck_assert_int_eq(parse(text, NULL, &s, err, &line), 0);
    ck_assert_str_eq(s.steps[1].value, "1");
    ts_free(&s);
    ck_assert_int_eq(parse(text, args, &s, err, &line), 0);
    ck_assert_str_eq(s.steps[0].kind == TS_ARG ? s.steps[1].value : "", "2");
    ts_free(&s);
    ck_assert_int_eq(parse(text, bad, &s, err, &line), -1);
    ck_assert_msg(strstr(err, "not declared") != NULL, "%s", err);
    /* An unset variable is empty; \$ stays a dollar. */
    ck_assert_int_eq(
        parse("FROM base\nENV A=x${NOPE}y B=\\$V\n", NULL, &s, err, &line), 0);
    ck_assert_str_eq(s.steps[0].value, "xy");
    ck_assert_str_eq(s.steps[1].value, "$V");
    ts_free(&s);
}
END_TEST

START_TEST(tspec_limits)
{
    size_t n = TS_TEXT_MAX + 1, i;
    char *big = malloc(n + 1), err[TS_ERR_SIZE];
    ts_spec s;
    int line;

    ck_assert_ptr_nonnull(big);
    memset(big, '#', n);
    big[n] = '\0';
    ck_assert_int_eq(ts_parse(big, n, NULL, &s, err, &line), -1);
    ck_assert_msg(strstr(err, "larger than") != NULL, "%s", err);
    /* Too many steps. */
    strcpy(big, "FROM base\n");
    for (i = 0; i <= TS_STEPS_MAX; i++)
        strcat(big, "RUN true\n");
    ck_assert_int_eq(parse(big, NULL, &s, err, &line), -1);
    ck_assert_msg(strstr(err, "more than") != NULL, "%s", err);
    ck_assert_int_eq(line, TS_STEPS_MAX + 2);
    /* A line past its maximum, through continuations. */
    strcpy(big, "FROM base\nRUN ");
    for (i = 0; i < TS_LINE_MAX / 4; i++)
        strcat(big, "echo \\\n");
    strcat(big, "end\n");
    ck_assert_int_eq(parse(big, NULL, &s, err, &line), -1);
    ck_assert_msg(strstr(err, "longer than") != NULL, "%s", err);
    /* NUL bytes and bad UTF-8. */
    ck_assert_int_eq(ts_parse("FROM base\0x", 11, NULL, &s, err, &line), -1);
    ck_assert_int_eq(parse("FROM base\nRUN \xff\n", NULL, &s, err, &line), -1);
    ck_assert_msg(strstr(err, "UTF-8") != NULL, "%s", err);
    free(big);
}
END_TEST

START_TEST(tspec_names)
{
    ck_assert(ts_name_valid("base"));
    ck_assert(ts_name_valid("code-interpreter-v1"));
    ck_assert(ts_name_valid("0day.x_y"));
    ck_assert(!ts_name_valid(""));
    ck_assert(!ts_name_valid("-x"));
    ck_assert(!ts_name_valid("A"));
    ck_assert(!ts_name_valid("a/b"));
    ck_assert(!ts_name_valid("a b"));
    ck_assert(!ts_name_valid(
        "a1234567890123456789012345678901234567890123456789012345678901234"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tspec");
    TCase *tc = tcase_create("parse");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, tspec_full);
    tcase_add_test(tc, tspec_from_forms);
    tcase_add_test(tc, tspec_refused);
    tcase_add_test(tc, tspec_args);
    tcase_add_test(tc, tspec_limits);
    tcase_add_test(tc, tspec_names);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
