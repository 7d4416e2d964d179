"""test_layers.py: the seams the code grows on stay seams (HACKING.md,
"Where a change goes"). Static checks of the sources; no stack needed.

- every helper operation of HC_OPS (common/sp_helper.h) has a row in the
  helper's table (helper/hd_ops.c) and a typed call in common/sp_helper.c;
  nothing dispatches on an operation's name by string compare, and only
  the typed client calls rpc_call;
- the helper's files are layers (the list at the top of helper/hd.h): a
  file calls only functions of files before it (hd_ctx.c and
  hd_ctx_frames.c are one layer);
- in each handler program, no file calls back into the file holding its
  route table and main;
- no function in common/, handlers/, helper/, sse/ or cli/ is longer than
  80 lines;
- each checker catches a planted example."""
import glob
import os
import re
import unittest

ROOT = os.environ.get("SP_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE_DIRS = ("common", "handlers", "helper", "sse", "cli", "worker")
FUNCTION_MAX = 80


def read(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def strip_comments(src):
    """src without comments (newlines kept) and with string literals
    emptied, so that neither is taken for code."""
    src = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)),
                 src, flags=re.S)
    src = re.sub(r"//[^\n]*", "", src)
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', src)


def functions(src):
    """[(name, first line, length in lines)] of the function definitions of
    a clang-formatted file: a body opens with "{" alone at column 0 and
    closes with "}" at column 0."""
    lines = src.split("\n")
    out = []
    for i, line in enumerate(lines):
        if line != "{" or i == 0:
            continue
        j = i - 1
        while j > 0 and "(" not in lines[j]:
            j -= 1
        m = re.search(r"(\w+)\s*\(", lines[j])
        k = i
        while k < len(lines) and lines[k] != "}":
            k += 1
        out.append((m.group(1) if m else "?", j + 1, k - j + 1))
    return out


def long_functions(files):
    """[(file, name, line, length)] of functions over FUNCTION_MAX."""
    bad = []
    for rel, src in files.items():
        for name, line, n in functions(src):
            if n > FUNCTION_MAX:
                bad.append((rel, name, line, n))
    return bad


def exported(src):
    """Names of the non-static functions a file defines."""
    names = set()
    for m in re.finditer(r"^(?!static\b)[A-Za-z_][\w \*]*?\b(\w+)\(", src,
                         re.M):
        rest = src[m.end():]
        close = rest.find(")")
        if close >= 0 and re.match(r"\)\s*\n\{", rest[close:]):
            names.add(m.group(1))
    for m in re.finditer(r"^const hd_kind (\w+) =", src, re.M):
        names.add(m.group(1))
    return names


def calls(src, names):
    """The names of names that src uses."""
    return {n for n in names if re.search(r"\b%s\b" % re.escape(n), src)}


def layer_violations(layers, files):
    """[(file, callee file, name)] where a file uses a function of a later
    layer. layers: [[file, ...], ...] in order; files: {file: source}."""
    rank = {f: i for i, group in enumerate(layers) for f in group}
    defs = {f: exported(strip_comments(src)) for f, src in files.items()}
    bad = []
    for f, src in files.items():
        body = strip_comments(src)
        for g, names in defs.items():
            if g == f or rank[g] <= rank[f]:
                continue
            for n in sorted(calls(body, names)):
                bad.append((f, g, n))
    return bad


def helper_layers():
    """The helper's layers from the comment at the top of helper/hd.h."""
    head = read("helper/hd.h").split("*/", 1)[0]
    layers = []
    for m in re.finditer(r"^ \*   (\S+\.c)\s", head, re.M):
        name = m.group(1)
        group = sorted(os.path.relpath(p, ROOT) for p in glob.glob(
            os.path.join(ROOT, "helper", name)))
        layers.append(group)
    return layers


class OperationsTest(unittest.TestCase):
    def ops(self):
        return re.findall(r"X\((HC_\w+),\s*\"(\w+)\"\)",
                          read("common/sp_helper.h"))

    def test_every_op_has_a_row_and_a_call(self):
        ops = self.ops()
        self.assertGreater(len(ops), 10, ops)
        table = read("helper/hd_ops.c")
        client = strip_comments(read("common/sp_helper.c"))
        for enum, name in ops:
            with self.subTest(op=name):
                self.assertRegex(table, r"\[%s\]\s*=\s*\{" % enum)
                self.assertRegex(client, r"\b%s\b" % enum)

    def test_no_dispatch_by_name(self):
        for d in SOURCE_DIRS:
            for p in glob.glob(os.path.join(ROOT, d, "*.[ch]")):
                rel = os.path.relpath(p, ROOT)
                src = strip_comments(read(rel))
                with self.subTest(file=rel):
                    self.assertNotRegex(src, r"str(n)?cmp\(\s*\w+->op\b")
                    if rel not in ("common/sp_helper.c", "common/sp_rpc.c",
                                   "common/sp_rpc.h"):
                        self.assertNotRegex(src, r"\brpc_call\s*\(")


class LayersTest(unittest.TestCase):
    def test_helper_layers(self):
        layers = helper_layers()
        listed = {f for g in layers for f in g}
        present = {os.path.relpath(p, ROOT) for p in
                   glob.glob(os.path.join(ROOT, "helper", "h*.c"))}
        self.assertEqual(listed, present,
                         "helper/hd.h's list of layers misses files")
        files = {f: read(f) for f in listed}
        self.assertEqual(layer_violations(layers, files), [])

    def test_checker_catches_a_call_upwards(self):
        files = {"a.c": "void a_low(void)\n{\n}\n",
                 "b.c": "void b_high(void)\n{\n    a_low();\n}\n"}
        self.assertEqual(layer_violations([["a.c"], ["b.c"]], files), [])
        files["a.c"] += "void a_more(void)\n{\n    b_high();\n}\n"
        self.assertEqual(layer_violations([["a.c"], ["b.c"]], files),
                         [("a.c", "b.c", "b_high")])

    def test_handlers_never_call_back_into_their_main(self):
        mk = read("Makefile.am")
        for prog, srcs in re.findall(r"^(sp_\w+)_SOURCES = ((?:.*\\\n)*.*)",
                                     mk, re.M):
            files = [s for s in srcs.replace("\\\n", " ").split()
                     if s.startswith("handlers/") and s.endswith(".c")]
            if len(files) < 2:
                continue
            mains = [f for f in files
                     if re.search(r"^int main\(", read(f), re.M)]
            self.assertEqual(len(mains), 1, (prog, files))
            others = {f: read(f) for f in files if f != mains[0]}
            layers = [list(others), mains]
            with self.subTest(program=prog):
                self.assertEqual(
                    layer_violations(layers, dict(others,
                                                  **{mains[0]:
                                                     read(mains[0])})),
                    [])


class FunctionLengthTest(unittest.TestCase):
    def test_no_long_function(self):
        files = {}
        for d in SOURCE_DIRS:
            for p in glob.glob(os.path.join(ROOT, d, "*.c")):
                rel = os.path.relpath(p, ROOT)
                files[rel] = read(rel)
        self.assertGreater(len(files), 40)
        self.assertEqual(long_functions(files), [])

    def test_checker_measures(self):
        body = "\n".join("    x++;" for _ in range(FUNCTION_MAX))
        src = "static void f(void)\n{\n%s\n}\n" % body
        self.assertEqual(long_functions({"x.c": src}),
                         [("x.c", "f", 1, FUNCTION_MAX + 3)])
        src = "static void f(void)\n{\n    x++;\n}\n"
        self.assertEqual(long_functions({"x.c": src}), [])


if __name__ == "__main__":
    unittest.main()
