"""test_keys.py: the Redis key schema has one owner (common/sp_keys.[ch]).

- docs/KEYS.md holds exactly the table that `sp-admin keys` prints;
- no C source of common/, handlers/, helper/, sse/ or cli/ builds a key
  from a literal: no rds_key()/rds_key_fixed() call, no "%s:<suffix>"
  format, no "<family>:%s" literal, no family name as a literal in a
  key-building position (after a size argument, or as an argument of a
  printf-like call);
- the checker itself catches planted examples of each of those.
Needs only the build (sp-admin), not the running stack."""
import os
import re
import subprocess
import tempfile
import unittest

ROOT = os.environ.get("SP_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SP_BUILD_DIR") or os.path.join(ROOT, "build")
SCANNED = ("common", "handlers", "helper", "sse", "cli", "worker")
OWNER = {os.path.join("common", "sp_keys.c"),
         os.path.join("common", "sp_keys.h")}
BEGIN, END = "<!-- BEGIN sp-admin keys -->\n", "<!-- END sp-admin keys -->"
PRINTF_LIKE = ("snprintf", "sprintf", "vsnprintf", "rds_cmd", "rds_cmd_wait",
               "buf_printf", "fprintf", "printf")


def family_patterns():
    """{KEY_NAME: pattern} from the table in common/sp_keys.h."""
    with open(os.path.join(ROOT, "common", "sp_keys.h")) as f:
        text = f.read()
    found = dict(re.findall(r'X\((KEY_\w+),\s*"([^"]+)"', text))
    if not found:
        raise AssertionError("no SP_KEY_FAMILIES rows in sp_keys.h")
    return found


def family_tokens(patterns):
    """The literal words of the patterns: "sbx:<sbx>:running" gives "sbx"
    and "running"; a fixed pattern gives itself and its parts."""
    tokens = set()
    for pat in patterns:
        for part in re.split(r"<[^>]*>", pat):
            part = part.strip(":")
            if part:
                tokens.add(part)
                tokens.update(p for p in part.split(":") if p)
    return tokens


def strip_comments(src):
    """src with comments replaced by spaces (newlines kept, so line
    numbers stay), string and character literals left alone."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def call_context(code, pos):
    """(function name, list of argument texts, index of the argument at
    pos) of the innermost call around pos, or None."""
    depth, i = 0, pos
    while i > 0:
        i -= 1
        if code[i] in ")]":
            depth += 1
        elif code[i] in "([":
            if depth == 0:
                break
            depth -= 1
        elif code[i] in ";{}" and depth == 0:
            return None
    if i <= 0 or code[i] != "(":
        return None
    m = re.search(r"(\w+)\s*$", code[:i])
    name = m.group(1) if m else ""
    args, cur, depth, j, index = [], [], 0, i + 1, None
    while j < len(code):
        ch = code[j]
        if j == pos:
            index = len(args)
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif ch == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
            j += 1
            continue
        elif ch == '"':
            k = j + 1
            while k < len(code) and code[k] != '"':
                k += 2 if code[k] == "\\" else 1
            if j <= pos <= k:
                index = len(args)
            cur.append(code[j:k + 1])
            j = k + 1
            continue
        cur.append(ch)
        j += 1
    args.append("".join(cur).strip())
    return name, args, index


SIZE_ARG = re.compile(r"^(sizeof\b.*|RDS_KEY_MAX\b.*|\w*len\w*|n)$")


def scan_source(rel, src, tokens):
    """Findings [(file, line, reason)] of one C source."""
    code = strip_comments(src)
    found = []

    def line_of(pos):
        return code.count("\n", 0, pos) + 1

    bare = LITERAL.sub(lambda m: '"' + " " * (len(m.group(0)) - 2) + '"',
                       code)
    for m in re.finditer(r"\brds_key(_fixed)?\s*\(", bare):
        found.append((rel, line_of(m.start()),
                      "rds_key call outside sp_keys.c"))
    head = "|".join(sorted((re.escape(t) for t in tokens), key=len,
                           reverse=True))
    prefixed = re.compile(r"^(sp:)?(%s):[%%A-Za-z0-9_<]" % head)
    for m in LITERAL.finditer(code):
        text, pos = m.group(1), m.start()
        if re.search(r"%s:[A-Za-z_%]", text):
            found.append((rel, line_of(pos),
                          'key suffix in a format ("%s:...")'))
        elif prefixed.match(text):
            found.append((rel, line_of(pos),
                          'key family literal "%s"' % text))
        elif text.rstrip(":") in tokens:
            ctx = call_context(code, pos + 1)
            if ctx is None:
                continue
            name, args, index = ctx
            if index is None:
                continue
            after_size = index > 0 and SIZE_ARG.match(args[index - 1])
            printf_arg = name in PRINTF_LIKE and index > 0 and \
                any(a.startswith('"') and "%" in a for a in args[:index])
            if after_size or printf_arg:
                found.append((rel, line_of(pos),
                              'family name "%s" in a key-building call of %s'
                              % (text, name or "?")))
    return found


def scan_tree(root, tokens, dirs=SCANNED, owner=OWNER):
    found = []
    for d in dirs:
        for base, _, files in os.walk(os.path.join(root, d)):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(base, f)
                rel = os.path.relpath(path, root)
                if rel in owner:
                    continue
                with open(path, errors="replace") as fh:
                    found += scan_source(rel, fh.read(), tokens)
    return found


class KeyLiteralTest(unittest.TestCase):
    def test_no_key_literal_outside_sp_keys(self):
        tokens = family_tokens(family_patterns().values())
        found = scan_tree(ROOT, tokens)
        self.assertEqual(found, [], "keys built outside common/sp_keys.c; "
                         "use key_of() with a KEY_ family:\n" +
                         "\n".join("%s:%d: %s" % f for f in found))

    def test_rds_key_not_exported(self):
        with open(os.path.join(ROOT, "common", "sp_redis.h")) as f:
            self.assertNotRegex(strip_comments(f.read()), r"\brds_key")

    def test_checker_catches_planted_literals(self):
        tokens = family_tokens(family_patterns().values())
        bad = {
            "a.c": 'void f(char *k) { rds_key(k, 256, "sbx", id); }\n',
            "b.c": 'void f(void) {\n  rds_key_fixed(k, sizeof k, '
                   '"helpers");\n}\n',
            "c.c": 'void f(void) { x = rds_cmd("SADD %s:running %s", sk, '
                   'id); }\n',
            "d.c": 'void f(void) { snprintf(k, sizeof k, "%s:%s", base, '
                   'sid); }\n',
            "e.c": 'void f(void) { snprintf(k, sizeof k, "sbx:%s", id); }\n',
            "f.c": 'void f(void) { build(k, sizeof k, "events", id); }\n',
            "g.c": 'void f(void) { rds_cmd("DEL %s%s", pfx, "helpers"); }\n',
            "h.c": 'static const char *k = "sp:metrics:requests";\n',
            "i.h": '#define LOCK_FMT "%s:lock"\n',
            "j.c": 'void f(void) { mk(k, klen, "session:", sub); }\n',
        }
        good = (
            '/* rds_key(k, 1, "sbx", id) and "%s:running" in a comment */\n'
            '// rds_key_fixed(k, sizeof k, "jobs");\n'
            'void f(void) {\n'
            '  key_of(k, sizeof k, KEY_SBX_RUNNING, id);\n'
            '  rpc_call(helper, "exec", args, 0, &rr, msg, sizeof msg);\n'
            '  snprintf(err, errlen, "%s: not an integer", name);\n'
            '  log_info("ending sandbox %s: %s", id, why);\n'
            '  rds_cmd("XGROUP CREATE %s helpers $ MKSTREAM", k);\n'
            '  x = "rds_key(";\n'
            '}\n')
        with tempfile.TemporaryDirectory() as tmp:
            os.mkdir(os.path.join(tmp, "src"))
            for name, text in list(bad.items()) + [("good.c", good)]:
                with open(os.path.join(tmp, "src", name), "w") as f:
                    f.write(text)
            found = scan_tree(tmp, tokens, dirs=("src",), owner=set())
        files = sorted({os.path.basename(f) for f, _, _ in found})
        self.assertEqual(files, sorted(bad), found)
        lines = {os.path.basename(f): line for f, line, _ in found}
        self.assertEqual(lines["b.c"], 2)

    def test_docs_keys_md_is_the_table(self):
        admin = os.path.join(BUILD, "sp-admin")
        p = subprocess.run([admin, "keys"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(ROOT, "docs", "KEYS.md")) as f:
            doc = f.read()
        self.assertIn(BEGIN, doc)
        self.assertIn(END, doc)
        table = doc.split(BEGIN, 1)[1].split(END, 1)[0]
        self.assertEqual(table, p.stdout,
                         "docs/KEYS.md differs from `sp-admin keys`: paste "
                         "its output between the markers")
        outside = doc.replace(BEGIN + table + END, "")
        self.assertNotRegex(outside, r"(?m)^\|",
                            "a key table outside the generated block")
        for name in family_patterns():
            self.assertIn("| `%s` |" % name, table)


if __name__ == "__main__":
    unittest.main()
