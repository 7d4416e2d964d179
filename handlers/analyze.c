/* handlers/analyze.c: POST /analyze-execution-needs {message} →
 * {requiresExecution, suggestedLanguage, codeSnippet}: whether a chat
 * message asks for code to be run, found without a model. Part of
 * sp-execute.
 *
 * Where the code is, first that applies: a fenced block (its info string
 * names the language), inline code in backticks, the text after a colon
 * when it looks like code ("Can you run this: print(1)"), the rest of a
 * sentence after a request verb ("run print(1) for me"), Markdown
 * indented lines. The request itself is one of the phrases of a table in
 * several languages (English, French, Spanish, German, Italian,
 * Portuguese). The language: the fence's, else one named in the message
 * ("this Python code"), else a guess from the code. */
#include "execute.h"
#include "sp_buf.h"
#include "sp_json.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define EXE_MSG_MAX (256 * 1024)

/* Phrases asking for a run (lower case; UTF-8 as typed). The verbs of the
 * second list may be followed by the code itself. */
static const char *const exe_run_phrases[] = {"what does this output",
                                              "what is the output",
                                              "what's the output",
                                              "what would this print",
                                              "what does it print",
                                              "calculate",
                                              "compute",
                                              "plot",
                                              "test this",
                                              "try this",
                                              "quel est le résultat",
                                              "que affiche",
                                              "qu'affiche",
                                              "cuál es la salida",
                                              "was gibt",
                                              "qual è l'output",
                                              "qual é a saída",
                                              "berechne",
                                              "calcule",
                                              "calcola"};
static const char *const exe_run_verbs[] = {
    "run",      "execute",   "evaluate", "exécute",  "executer",
    "exécuter", "lance",     "ejecuta",  "ejecutar", "corre",
    "führe",    "ausführen", "starte",   "esegui",   "eseguire",
    "executa",  "executar",  "rode",     "roda"};

/* Language words a message may name, and what they mean. */
static const struct {
    const char *word, *lang;
} exe_lang_words[] = {
    {"python", "python"},
    {"javascript", "javascript"},
    {"node", "javascript"},
    {"js", "javascript"},
    {"bash", "bash"},
    {"shell", "bash"},
    {"c", "c"},
};

/* Characters that make a word look like code rather than prose. */
static const char exe_code_chars[] = "()[]{}=;\"'<>+*/%$|&`#";
/* Shell commands that look like prose words. */
static const char *const exe_shell_words[] = {
    "echo", "ls", "pwd", "cat", "uname", "whoami", "date", "python3", "node"};

/* msg in lower case into low (lowlen bytes, cut): ASCII, and the Latin-1
 * capitals of UTF-8 (U+00C0..U+00DE but U+00D7: "É" is C3 89, "é" C3 A9).
 * Byte offsets stay those of msg. */
static void exe_lower(const char *msg, char *low, size_t lowlen)
{
    size_t i;
    for (i = 0; msg[i] != '\0' && i < lowlen - 1; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (i > 0 && (unsigned char)msg[i - 1] == 0xc3 && c >= 0x80 &&
            c <= 0x9e && c != 0x97)
            c = (unsigned char)(c + 0x20);
        else
            c = (unsigned char)tolower(c);
        low[i] = (char)c;
    }
    low[i] = '\0';
}

/* Where low holds w as a whole word (not inside another word), or NULL. */
static const char *exe_word(const char *low, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = strstr(low, w); p != NULL; p = strstr(p + 1, w)) {
        int before = p == low || !isalnum((unsigned char)p[-1]);
        int after = !isalnum((unsigned char)p[n]) && p[n] != '+';
        if (before && after)
            return p;
    }
    return NULL;
}

/* The offset just after the first request verb in low, or -1. */
static long exe_verb_end(const char *low)
{
    const char *best = NULL, *p;
    size_t blen = 0;

    for (size_t v = 0; v < sizeof exe_run_verbs / sizeof *exe_run_verbs; v++) {
        p = exe_word(low, exe_run_verbs[v]);
        if (p != NULL && (best == NULL || p < best)) {
            best = p;
            blen = strlen(exe_run_verbs[v]);
        }
    }
    return best != NULL ? (long)(best - low + (long)blen) : -1;
}

static int exe_has_phrase(const char *low)
{
    for (size_t p = 0; p < sizeof exe_run_phrases / sizeof *exe_run_phrases;
         p++) {
        if (strstr(low, exe_run_phrases[p]) != NULL)
            return 1;
    }
    return exe_verb_end(low) >= 0;
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

/* First inline code span (`code` or ``code``) that is not empty. */
static int exe_backticks(const char *msg, sp_buf *code)
{
    for (const char *p = strchr(msg, '`'); p != NULL; p = strchr(p, '`')) {
        size_t ticks = strspn(p, "`"), n;
        const char *close;
        char delim[3] = "``";
        delim[ticks >= 2 ? 2 : 1] = '\0';
        if (ticks > 2)
            return 0; /* an unclosed fence */
        p += ticks;
        close = strstr(p, delim);
        if (close == NULL)
            return 0;
        n = (size_t)(close - p);
        while (n > 0 && *p == ' ')
            p++, n--;
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n > 0 && memchr(p, '\n', n) == NULL)
            return buf_append(code, p, n) == 0;
        p = close + ticks;
    }
    return 0;
}

/* 1 if the word [p, p+n) looks like code. */
static int exe_codeish(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strchr(exe_code_chars, p[i]) != NULL && p[i] != '\0')
            return 1;
    }
    for (size_t s = 0; s < sizeof exe_shell_words / sizeof *exe_shell_words;
         s++) {
        if (strlen(exe_shell_words[s]) == n &&
            strncmp(p, exe_shell_words[s], n) == 0)
            return 1;
    }
    return 0;
}

/* From p, skip prose words up to the first word that looks like code; the
 * code runs from there to the end of the line, without a trailing "?" or
 * prose after its last code character (")" ...). 1 if found. */
static int exe_code_from(const char *p, sp_buf *code)
{
    const char *eol, *end;

    while (*p != '\0' && *p != '\n') {
        size_t n;
        p += strspn(p, " \t:,");
        n = strcspn(p, " \t\n");
        if (n == 0)
            break;
        if (exe_codeish(p, n))
            break;
        p += n;
    }
    if (*p == '\0' || *p == '\n')
        return 0;
    eol = p + strcspn(p, "\n");
    end = eol;
    /* Prose after code that ends in a bracket or quote: cut after it. */
    for (const char *q = eol; q > p; q--) {
        if (strchr(")]}\"';", q[-1]) != NULL) {
            end = q;
            break;
        }
        if (!(isalpha((unsigned char)q[-1]) || q[-1] == ' ' || q[-1] == '?' ||
              q[-1] == '!' || q[-1] == '.' || q[-1] == ','))
            break;
    }
    while (end > p && strchr(" \t\r?", end[-1]) != NULL)
        end--;
    return end > p && buf_append(code, p, (size_t)(end - p)) == 0;
}

/* Inline code after a colon, or after the request verb (offset in low
 * and msg alike: lower-casing keeps byte offsets). */
static int exe_inline(const char *msg, const char *low, sp_buf *code)
{
    long v = exe_verb_end(low);
    const char *colon = v >= 0 ? strchr(msg + v, ':') : strchr(msg, ':');

    if (colon != NULL && exe_code_from(colon + 1, code))
        return 1;
    return v >= 0 && exe_code_from(msg + v, code);
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

/* A language the prose names (the code itself removed), or NULL. */
static const char *exe_named(const char *low, const char *code)
{
    char prose[4096];

    snprintf(prose, sizeof prose, "%s", low);
    if (code[0] != '\0') {
        char lc[4096], *at;
        exe_lower(code, lc, sizeof lc);
        if ((at = strstr(prose, lc)) != NULL)
            memset(at, ' ', strlen(lc));
    }
    for (size_t w = 0; w < sizeof exe_lang_words / sizeof *exe_lang_words;
         w++) {
        /* "c" only as "in c" or "c code": a lone letter is too common. */
        if (strcmp(exe_lang_words[w].word, "c") == 0) {
            if (strstr(prose, " in c ") || strstr(prose, " c code") ||
                strstr(prose, " c program"))
                return "c";
            continue;
        }
        if (exe_word(prose, exe_lang_words[w].word) != NULL)
            return exe_lang_words[w].lang;
    }
    return NULL;
}

/* Guess a language from code when nothing said. */
static const char *exe_guess(const char *code)
{
    if (strstr(code, "#include") || strstr(code, "int main"))
        return "c";
    if (strstr(code, "console.log") || strstr(code, "const ") ||
        strstr(code, "let ") || strstr(code, "=>"))
        return "javascript";
    if (strstr(code, "#!/bin/bash") || strncmp(code, "echo ", 5) == 0 ||
        strstr(code, "\necho ") || strncmp(code, "$ ", 2) == 0 ||
        strncmp(code, "ls", 2) == 0 || strncmp(code, "uname", 5) == 0)
        return "bash";
    return "python";
}

void exe_analyze(http_req *r)
{
    cJSON *body = http_json_body(r, 0), *o;
    const char *msg, *l = NULL;
    char lang[32] = "", low[4096];
    sp_buf code;
    int fenced, phrase, found;

    if (body == NULL)
        return;
    buf_init(&code, EXE_MSG_MAX);
    if (json_str(r, body, "message", 1, EXE_MSG_MAX, &msg) != 0)
        goto out;
    exe_lower(msg, low, sizeof low);
    phrase = exe_has_phrase(low);
    fenced = exe_fenced(msg, lang, sizeof lang, &code);
    found = fenced || exe_backticks(msg, &code) ||
            (phrase && exe_inline(msg, low, &code)) || exe_indented(msg, &code);
    l = lang[0] ? lang_canonical(lang) : NULL;
    o = cJSON_CreateObject();
    /* Code alone is often shown, not to be run; a runnable fenced language
     * or an explicit request makes it execution. */
    cJSON_AddBoolToObject(o, "requiresExecution",
                          found && (phrase || l != NULL));
    if (found) {
        if (l == NULL)
            l = exe_named(low, code.data);
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
