/* handlers/analyze.c: POST /analyze-execution-needs {message} →
 * {requiresExecution, suggestedLanguage, codeSnippet}: whether a chat
 * message asks for code to be run, found without a model: the first fenced
 * (or else indented) code block, its language (the fence's info string or
 * a guess from the code), and phrases such as "run this". Part of
 * sp-execute. */
#include "execute.h"
#include "sp_buf.h"
#include "sp_json.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char *const exe_run_phrases[] = {"run this",
                                              "run it",
                                              "run the",
                                              "execute",
                                              "what does this output",
                                              "what is the output",
                                              "what's the output",
                                              "calculate",
                                              "compute",
                                              "plot",
                                              "evaluate",
                                              "test this",
                                              "try this",
                                              "can you run"};

static int exe_has_phrase(const char *msg)
{
    char low[4096];
    size_t i;
    for (i = 0; msg[i] && i < sizeof low - 1; i++)
        low[i] = (char)tolower((unsigned char)msg[i]);
    low[i] = '\0';
    for (size_t p = 0; p < sizeof exe_run_phrases / sizeof *exe_run_phrases;
         p++) {
        if (strstr(low, exe_run_phrases[p]) != NULL)
            return 1;
    }
    return 0;
}

/* First fenced block: its info string into lang, its body into code. */
static int exe_fenced(const char *msg, char *lang, size_t llen, sp_buf *code)
{
    const char *open = strstr(msg, "```"), *nl, *close;
    size_t n;

    if (open == NULL || (nl = strchr(open + 3, '\n')) == NULL)
        return 0;
    n = (size_t)(nl - open - 3);
    snprintf(lang, llen, "%.*s", (int)(n < llen ? n : llen - 1), open + 3);
    lang[strcspn(lang, " \t\r{")] = '\0';
    close = strstr(nl + 1, "```");
    n = close ? (size_t)(close - nl - 1) : strlen(nl + 1);
    return buf_append(code, nl + 1, n) == 0;
}

/* Lines indented by 4 spaces or a tab, as Markdown code. */
static int exe_indented(const char *msg, sp_buf *code)
{
    const char *p = msg;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (n > 4 && (strncmp(p, "    ", 4) == 0 || p[0] == '\t')) {
            size_t skip = p[0] == '\t' ? 1 : 4;
            buf_append(code, p + skip, n - skip);
            buf_append(code, "\n", 1);
        }
        p += n + (eol ? 1 : 0);
    }
    return code->len > 0;
}

/* Guess a language from code when the fence did not say. */
static const char *exe_guess(const char *code)
{
    if (strstr(code, "#include") || strstr(code, "int main"))
        return "c";
    if (strstr(code, "console.log") || strstr(code, "const ") ||
        strstr(code, "let ") || strstr(code, "=>"))
        return "javascript";
    if (strstr(code, "#!/bin/bash") || strstr(code, "echo ") ||
        strncmp(code, "$ ", 2) == 0)
        return "bash";
    return "python";
}

void exe_analyze(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *o;
    const char *msg;
    char lang[32] = "";
    const char *l;
    sp_buf code;
    int fenced, phrase;

    if (body == NULL)
        return;
    buf_init(&code, 256 * 1024);
    if (json_str(r, body, "message", 1, 256 * 1024, &msg) != 0)
        goto out;
    fenced = exe_fenced(msg, lang, sizeof lang, &code);
    if (!fenced)
        exe_indented(msg, &code);
    phrase = exe_has_phrase(msg);
    l = lang[0] ? lang_canonical(lang) : NULL;
    o = cJSON_CreateObject();
    /* Code alone is often shown, not to be run; a runnable fenced language
     * or an explicit request makes it execution. */
    cJSON_AddBoolToObject(o, "requiresExecution",
                          code.len > 0 && (phrase || l != NULL));
    if (code.len > 0) {
        cJSON_AddStringToObject(o, "suggestedLanguage",
                                l ? l : exe_guess(code.data));
        cJSON_AddStringToObject(o, "codeSnippet", code.data);
    } else {
        cJSON_AddNullToObject(o, "suggestedLanguage");
        cJSON_AddNullToObject(o, "codeSnippet");
    }
    http_send_json(r, 200, o);
    cJSON_Delete(o);
out:
    buf_free(&code);
    cJSON_Delete(body);
}
