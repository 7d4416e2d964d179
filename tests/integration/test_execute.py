"""test_execute.py: the execute family through nginx: every language and
its aliases, exit codes and stderr, C compile errors, stdin (given, and
written later to a streamed run), env, files written before the run, runs
in a given sandbox against one-off runs that leave nothing, timeouts,
cancel, the output cap, binary and hostile output, another subject's
executions, every refused input, GET /languages and
POST /analyze-execution-needs.

Stateful contexts (context_id) are not tested here. Every wait is bounded;
nothing asserts how fast a thing happened."""
import json
import re
import time
import uuid

import sp
import sbx_util as su
from sbx_util import call

KNOWN = ("python", "javascript", "bash", "c")
CODE_MAX = 512 * 1024
TIMEOUT_MAX_MS = su.cfg("SP_COMMAND_MAX_TIMEOUT", 3600) * 1000
RESULT_KEYS = {"executionId", "status", "output", "error", "exitCode",
               "duration", "results", "truncated"}
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

HELLO = {
    "python": ('print("py", 6 * 7)', "py 42\n"),
    "javascript": ('console.log("js", 6 * 7)', "js 42\n"),
    "bash": ('echo "sh $((6 * 7))"', "sh 42\n"),
    "c": ('#include <stdio.h>\nint main(void) { printf("c %d\\n", 6 * 7); '
          "return 0; }\n", "c 42\n"),
}

# Prints its first line at once, then keeps printing for about a minute.
TICKER = ("import time\n"
          "for i in range(600):\n"
          "    print('tick', i, flush=True)\n"
          "    time.sleep(0.1)\n")


class ExecuteCase(su.SbxCase):
    """Helpers for /execute, /execute-stream and /executions/{id}."""

    @staticmethod
    def execute_raw(body, key=None, path="/execute"):
        t = body.get("timeout") if isinstance(body, dict) else None
        wait = (t / 1000 if isinstance(t, int) and 0 < t < 600000 else 30)
        return call("POST", path, body, key=key, timeout=wait + su.SLACK)

    def assertResultShape(self, doc):
        self.assertLessEqual(RESULT_KEYS, set(doc), doc)
        self.assertTrue(doc["executionId"].startswith("exe_"), doc)
        self.assertRegex(doc["executionId"], ID_RE)
        self.assertIsInstance(doc["output"], str, doc)
        self.assertIsInstance(doc["error"], str, doc)
        self.assertIsInstance(doc["results"], list, doc)
        self.assertIsInstance(doc["truncated"], bool, doc)
        self.assertIsInstance(doc["duration"], (int, float), doc)
        self.assertGreaterEqual(doc["duration"], 0, doc)

    def execute(self, code, language=None, key=None, **more):
        """POST /execute (200 and the result shape asserted); the result."""
        body = dict(more, code=code)
        if language is not None:
            body["language"] = language
        r = self.execute_raw(body, key)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith(
            "application/json"), r)
        doc = r.json
        self.assertResultShape(doc)
        return doc

    def run_ok(self, code, language=None, **more):
        """Run code that must succeed; its stdout."""
        doc = self.execute(code, language, **more)
        self.assertEqual((doc["status"], doc["exitCode"]), ("ok", 0), doc)
        return doc["output"]

    def stream(self, code, key=None, **more):
        """POST /execute-stream (200 asserted); the execution id."""
        body = dict(more, code=code)
        r = self.execute_raw(body, key, "/execute-stream")
        self.assertEqual(r.status, 200, r)
        doc = r.json
        self.assertEqual(doc["status"], "streaming", doc)
        self.assertTrue(doc["executionId"].startswith("exe_"), doc)
        self.assertRegex(doc["clientId"], ID_RE)
        # Cancelled at the end if still running, so a failing test does not
        # leave a minute-long program behind.
        self.addCleanup(self.cancel_quietly, doc["executionId"], key)
        return doc["executionId"]

    @staticmethod
    def cancel_quietly(exe, key=None):
        try:
            call("POST", f"/executions/{exe}/cancel", {}, key=key)
        except OSError:
            pass

    @staticmethod
    def get_exec(exe, key=None):
        return call("GET", f"/executions/{exe}", key=key)

    def poll(self, exe, until, timeout=30, key=None):
        """GET /executions/{id} until until(doc) is true (bounded); the last
        document (the caller asserts)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.get_exec(exe, key)
            self.assertEqual(r.status, 200, r)
            doc = r.json
            if until(doc) or time.monotonic() > deadline:
                return doc
            time.sleep(0.05)

    def wait_end(self, exe, timeout=30, key=None):
        doc = self.poll(exe, lambda d: d["status"] != "running", timeout, key)
        self.assertNotEqual(doc["status"], "running",
                            f"still running after {timeout} s: {doc}")
        self.assertResultShape(doc)
        return doc

    @staticmethod
    def send_stdin(exe, key=None, **body):
        return call("POST", f"/executions/{exe}/stdin", body, key=key)


class ExecuteLanguagesTest(ExecuteCase):
    def test_every_language_prints_and_exits(self):
        for lang, (code, want) in HELLO.items():
            with self.subTest(language=lang):
                doc = self.execute(code, lang)
                self.assertEqual(doc["status"], "ok", doc)
                self.assertEqual(doc["exitCode"], 0, doc)
                self.assertEqual(doc["output"], want, doc)
                self.assertEqual(doc["error"], "", doc)
                self.assertIs(doc["truncated"], False, doc)
                self.assertEqual(doc["results"], [], doc)
        # Without a language the code is Python.
        self.assertEqual(self.run_ok(HELLO["python"][0]), "py 42\n")

    def test_aliases(self):
        cases = {"py": "python", "python3": "python", "js": "javascript",
                 "node": "javascript", "nodejs": "javascript", "sh": "bash",
                 "shell": "bash", "gcc": "c", "Python": "python",
                 "JS": "javascript"}
        for alias, lang in cases.items():
            with self.subTest(alias=alias):
                code, want = HELLO[lang]
                self.assertEqual(self.run_ok(code, alias), want)

    def test_languages_list(self):
        r = call("GET", "/languages")
        self.assertEqual(r.status, 200, r)
        langs = r.json["languages"]
        self.assertEqual(sorted(l["name"] for l in langs), sorted(KNOWN))
        by = {l["name"]: l for l in langs}
        for name in KNOWN:
            with self.subTest(language=name):
                self.assertRegex(by[name]["version"], r"^\d+(\.\d+)*$")
                self.assertIsInstance(by[name]["aliases"], list)
                for a in by[name]["aliases"]:
                    self.assertIsInstance(a, str)
        self.assertIn("py", by["python"]["aliases"])
        self.assertIn("js", by["javascript"]["aliases"])
        self.assertIn("node", by["javascript"]["aliases"])
        self.assertIn("sh", by["bash"]["aliases"])
        self.assertIn("gcc", by["c"]["aliases"])
        # Each listed alias is accepted by /execute.
        for l in langs:
            for a in l["aliases"]:
                with self.subTest(alias=a):
                    code, want = HELLO[l["name"]]
                    self.assertEqual(self.run_ok(code, a), want)
        self.assertError(sp.get("/languages"), 401, "unauthenticated")

    def test_failing_programs(self):
        cases = [
            ("python", "import sys\nprint('before')\n"
                       "sys.stderr.write('boom\\n')\nsys.exit(3)\n",
             3, "before\n", "boom\n"),
            ("python", "print('x')\n1 / 0\n", 1, "x\n", "ZeroDivisionError"),
            ("javascript", "console.error('bad'); process.exit(5)", 5, "",
             "bad\n"),
            ("javascript", "throw new Error('thrown-here')", 1, "",
             "thrown-here"),
            ("bash", "echo out; echo err >&2; exit 7", 7, "out\n", "err\n"),
            ("c", "#include <stdio.h>\nint main(void) { "
                  "fprintf(stderr, \"c-err\\n\"); return 4; }\n",
             4, "", "c-err\n"),
        ]
        for lang, code, rc, out, err in cases:
            with self.subTest(language=lang, code=code):
                doc = self.execute(code, lang)
                self.assertEqual(doc["status"], "error", doc)
                self.assertEqual(doc["exitCode"], rc, doc)
                self.assertEqual(doc["output"], out, doc)
                self.assertIn(err, doc["error"], doc)

    def test_c_compile_error(self):
        code = "int main(void) { return undefined_thing_xyz; }\n"
        doc = self.execute(code, "c")
        self.assertEqual(doc["status"], "compile_error", doc)
        self.assertIn("undefined_thing_xyz", doc["error"], doc)
        self.assertIn("error", doc["error"], doc)
        self.assertNotIn("__sp_compile_error__", doc["error"], doc)
        self.assertEqual(doc["output"], "", doc)
        self.assertNotEqual(doc["exitCode"], 0, doc)
        # Warnings alone do not stop the run.
        out = self.run_ok('#include <stdio.h>\nint main(void) { int unused; '
                          'puts("warned"); return 0; }\n', "c")
        self.assertEqual(out, "warned\n")
        # A link error is a compile error too.
        doc = self.execute("void nowhere(void);\n"
                           "int main(void) { nowhere(); return 0; }\n", "c")
        self.assertEqual(doc["status"], "compile_error", doc)
        self.assertIn("nowhere", doc["error"], doc)

    def test_compile_error_not_claimed_by_the_program(self):
        """A program that ran and failed is status error, whatever it
        printed; its stderr comes back whole."""
        marker = "\\n__sp_compile_error__\\n"
        runs = [("c", '#include <stdio.h>\nint main(void) { '
                      f'fputs("{marker}", stderr); return 1; }}\n'),
                ("python", f"import sys\nsys.stderr.write('{marker}')\n"
                           "sys.exit(1)\n"),
                ("bash", f"printf '{marker}' >&2; exit 1")]
        for lang, code in runs:
            with self.subTest(language=lang):
                doc = self.execute(code, lang)
                self.assertEqual(doc["status"], "error", doc)
                self.assertEqual(doc["error"], "\n__sp_compile_error__\n",
                                 doc)

    def test_streamed_compile_error(self):
        exe = self.stream("int main(void) { return nope_streamed; }", language="c")
        doc = self.wait_end(exe)
        self.assertEqual(doc["status"], "compile_error", doc)
        self.assertIn("nope_streamed", doc["error"], doc)
        self.assertNotIn("__sp_compile_error__", doc["error"], doc)

    def test_get_matches_execute(self):
        """GET /executions/{id} of a finished /execute run says what the
        /execute answer said, compile errors included."""
        runs = [(HELLO["python"][0], "python"),
                ("import sys; print('o'); sys.exit('e')", "python"),
                ("int main(void) { return nope_undefined; }", "c")]
        for code, lang in runs:
            with self.subTest(language=lang, code=code):
                doc = self.execute(code, lang)
                r = self.get_exec(doc["executionId"])
                self.assertEqual(r.status, 200, r)
                got = r.json
                self.assertResultShape(got)
                for k in ("executionId", "status", "output", "error",
                          "exitCode", "truncated"):
                    self.assertEqual(got[k], doc[k], (k, got, doc))


class ExecuteIoTest(ExecuteCase):
    def test_stdin(self):
        out = self.run_ok("import sys\nprint(sys.stdin.read()[::-1])",
                          stdin="abc\ndef")
        self.assertEqual(out, "fed\ncba\n")
        out = self.run_ok('read a; read b; echo "[$b|$a]"', "bash",
                          stdin="one\ntwo\n")
        self.assertEqual(out, "[two|one]\n")
        # Without stdin, a reader sees end of file at once (no hang).
        out = self.run_ok("import sys\nprint(repr(sys.stdin.read()))")
        self.assertEqual(out, "''\n")
        # Any text arrives as it is.
        odd = "é \x01 ' \" \\ $(x)\n" * 3
        out = self.run_ok("import sys\nsys.stdout.write(sys.stdin.read())",
                          stdin=odd)
        self.assertEqual(out, odd)

    def test_env(self):
        out = self.run_ok("import os\nprint(os.environ['GREETING'], "
                          "os.environ['OTHER'], sep='|')",
                          env={"GREETING": "hello world", "OTHER": "a'b\"c"})
        self.assertEqual(out, "hello world|a'b\"c\n")
        out = self.run_ok('printf "%s" "$GREETING"', "bash",
                          env={"GREETING": "from-env"})
        self.assertEqual(out, "from-env")
        # The env of a run does not stay for the next one.
        out = self.run_ok("import os\nprint(os.environ.get('GREETING'))")
        self.assertEqual(out, "None\n")

    def test_files_before_the_run(self):
        files = [{"path": "data/in.txt", "content": "alpha\n"},
                 {"path": "/workspace/abs.txt", "content": "beta é"},
                 {"path": "/tmp/t.txt", "content": "gamma"}]
        code = ("import os\n"
                "print(open('/workspace/data/in.txt').read(), end='')\n"
                "print(open('data/in.txt').read(), end='')\n"
                "print(open('/workspace/abs.txt').read())\n"
                "print(open('/tmp/t.txt').read())\n"
                "print(os.getcwd())\n")
        out = self.run_ok(code, files=files)
        self.assertEqual(out, "alpha\nalpha\nbeta é\ngamma\n/workspace\n")
        # Files are there for the other languages too.
        out = self.run_ok("cat data/in.txt", "bash", files=files)
        self.assertEqual(out, "alpha\n")

    def test_files_outside_the_sandbox_refused(self):
        """A file that cannot be written is refused, with or without a
        sandbox_id, and the program does not run."""
        sid = self.new_sandbox()["id"]
        for path in ("/etc/evil", "/proc/x", "/usr/bin/evil"):
            for where in ("one-off", "sandbox"):
                with self.subTest(path=path, where=where):
                    body = {"code": "print('ran')",
                            "files": [{"path": path, "content": "x"}]}
                    if where == "sandbox":
                        body["sandbox_id"] = sid
                    r = self.execute_raw(body)
                    self.assertError(r, 400, "invalid_argument")

    def test_output_cap(self):
        code = ("import sys\n"
                "sys.stdout.write('x' * (3 * 1024 * 1024))\n"
                "sys.stdout.flush()\n"
                "print('never-here')\n")
        doc = self.execute(code, timeout=60000)
        self.assertEqual(doc["status"], "output_limit", {
            k: v for k, v in doc.items() if k != "output"})
        self.assertIs(doc["truncated"], True)
        self.assertGreater(len(doc["output"]), 0)
        self.assertLessEqual(len(doc["output"]) + len(doc["error"]),
                             su.OUTPUT_MAX)
        self.assertEqual(set(doc["output"]), {"x"})
        got = self.get_exec(doc["executionId"]).json
        self.assertEqual((got["status"], got["truncated"]),
                         ("output_limit", True))
        # Just under the cap is whole.
        n = su.OUTPUT_MAX // 2
        doc = self.execute(f"import sys\nsys.stdout.write('y' * {n})")
        self.assertEqual((doc["status"], doc["truncated"]), ("ok", False))
        self.assertEqual(doc["output"], "y" * n)

    def test_binary_and_hostile_output(self):
        code = ("import sys, time\n"
                "o = sys.stdout.buffer\n"
                "o.write(b'a\\x00b\\xff\\xfec\\r\\n\\ndata: x\\n\\n"
                "event: result\\nid: 9\\n')\n"
                "o.write(b'\\x1b[31m\\x7f\\x01\\\"\\\\</script>\\n')\n"
                "o.flush()\n"
                # A character split over two writes stays whole.
                "o.write(b'\\xc3'); o.flush(); time.sleep(0.2)\n"
                "o.write(b'\\xa9\\xe2\\x82'); o.flush(); time.sleep(0.2)\n"
                "o.write(b'\\xac\\n'); o.flush()\n"
                "sys.stderr.buffer.write(b'e\\x00\\xff\\n')\n")
        r = self.execute_raw({"code": code})
        self.assertEqual(r.status, 200, r)
        # The body is strict UTF-8, with no raw control bytes.
        text = r.body.decode("utf-8")
        self.assertNotIn("\x00", text)
        self.assertIn("\\u0000", text)
        doc = json.loads(text)
        self.assertResultShape(doc)
        self.assertEqual(doc["status"], "ok", doc)
        out = doc["output"]
        self.assertTrue(out.startswith("a\x00b"), out)
        self.assertNotIn("\xff", out)
        self.assertIn("\ufffd", out)
        self.assertIn("c\r\n\ndata: x\n\nevent: result\nid: 9\n", out)
        self.assertIn("\x1b[31m\x7f\x01\"\\</script>\n", out)
        self.assertTrue(out.endswith("é€\n"), repr(out))
        self.assertTrue(doc["error"].startswith("e\x00"), doc)
        # The same through GET /executions/{id}.
        r = self.get_exec(doc["executionId"])
        self.assertEqual(r.status, 200, r)
        got = json.loads(r.body.decode("utf-8"))
        self.assertEqual((got["output"], got["error"]),
                         (doc["output"], doc["error"]))


class ExecuteSandboxTest(ExecuteCase):
    def test_run_in_a_given_sandbox(self):
        sid = self.new_sandbox()["id"]
        mark = uuid.uuid4().hex
        doc = self.execute(f"open('/workspace/keep.txt', 'w').write('{mark}')",
                           sandbox_id=sid)
        self.assertEqual(doc["status"], "ok", doc)
        # A second run in the same sandbox sees it; so does the files API.
        out = self.run_ok("print(open('/workspace/keep.txt').read())",
                          sandbox_id=sid)
        self.assertEqual(out, mark + "\n")
        self.assertEqual(self.get_ok(sid, "/workspace/keep.txt").body,
                         mark.encode())
        # Files given with the run are written into that sandbox and stay.
        out = self.run_ok("cat given.txt keep.txt", "bash", sandbox_id=sid,
                          files=[{"path": "given.txt", "content": "g-"}])
        self.assertEqual(out, "g-" + mark)
        self.assertEqual(self.get_ok(sid, "/workspace/given.txt").body, b"g-")
        # Other languages run there too.
        for lang, (code, want) in HELLO.items():
            with self.subTest(language=lang):
                self.assertEqual(self.run_ok(code, lang, sandbox_id=sid),
                                 want)
        # A streamed run in the sandbox.
        exe = self.stream("print(open('/workspace/keep.txt').read())",
                          sandbox_id=sid)
        doc = self.wait_end(exe)
        self.assertEqual((doc["status"], doc["output"]), ("ok", mark + "\n"))
        # Once deleted, the sandbox is not found.
        r = call("DELETE", f"/sandboxes/{sid}", timeout=60)
        self.assertEqual(r.status, 204, r)
        r = self.execute_raw({"code": "print(1)", "sandbox_id": sid})
        self.assertError(r, 404, "not_found")

    def test_sandbox_runs_leave_no_scratch_files(self):
        """The code file (and a C program's binary) of a run in a given
        sandbox is gone after it: otherwise every run takes room in the
        sandbox's small /tmp until runs fail."""
        sid = self.new_sandbox()["id"]
        ids = [self.execute(HELLO[lang][0], lang, sandbox_id=sid)
               ["executionId"] for lang in ("python", "c", "bash")]
        out = self.run_ok("ls -A /tmp /workspace", "bash", sandbox_id=sid)
        for exe in ids:
            with self.subTest(execution=exe):
                self.assertNotIn(exe, out)

    def test_one_off_runs_leave_nothing(self):
        _, key, _ = sp.create_key()
        mark = uuid.uuid4().hex
        code = (f"import os\n"
                f"open('/workspace/left-{mark}', 'w').write('x')\n"
                f"open('/tmp/left-{mark}', 'w').write('x')\n"
                f"os.makedirs('/workspace/dir-{mark}')\n"
                f"print('written')\n")
        self.assertEqual(self.execute(code, key=key)["output"], "written\n")
        check = (f"import os\n"
                 f"print([os.path.exists(p) for p in ('/workspace/left-{mark}',"
                 f" '/tmp/left-{mark}', '/workspace/dir-{mark}')])\n")
        for _ in range(3):  # more than the pool holds
            doc = self.execute(check, key=key)
            self.assertEqual(doc["output"], "[False, False, False]\n", doc)
        # Nothing a one-off run used is listed as the caller's sandbox.
        r = call("GET", "/sandboxes", key=key)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["sandboxes"], [], r)

    def test_unknown_sandbox(self):
        for sid in ("sbx_" + uuid.uuid4().hex, "sbx_", "nope",
                    "../../etc", "exe_" + uuid.uuid4().hex):
            with self.subTest(sandbox_id=sid):
                r = self.execute_raw({"code": "print(1)", "sandbox_id": sid})
                self.assertError(r, 404, "not_found")
        r = self.execute_raw({"code": "print(1)", "sandbox_id": 5})
        self.assertError(r, 400, "invalid_argument", "sandbox_id")


class ExecuteControlTest(ExecuteCase):
    def test_timeout(self):
        doc = self.execute("import time\nprint('started', flush=True)\n"
                           "time.sleep(120)\nprint('never')",
                           timeout=1500)
        self.assertEqual(doc["status"], "timeout", doc)
        self.assertEqual(doc["output"], "started\n", doc)
        doc = self.execute("while :; do :; done", "bash", timeout=500)
        self.assertEqual(doc["status"], "timeout", doc)
        doc = self.execute("int main(void) { for (;;) ; }", "c",
                           timeout=2000)
        self.assertEqual(doc["status"], "timeout", doc)
        # A child that outlives its parent does not outlive the timeout.
        doc = self.execute("(sleep 300; echo late) & sleep 300", "bash",
                           timeout=500)
        self.assertEqual(doc["status"], "timeout", doc)
        self.assertEqual(doc["output"], "", doc)
        # A streamed run times out the same way.
        exe = self.stream("import time\ntime.sleep(120)", timeout=500)
        self.assertEqual(self.wait_end(exe)["status"], "timeout")
        # Both bounds are accepted.
        for t in (100, TIMEOUT_MAX_MS):
            with self.subTest(timeout=t):
                r = self.execute_raw({"code": "true", "language": "bash",
                                      "timeout": t})
                self.assertEqual(r.status, 200, r)
                self.assertIn(r.json["status"], ("ok", "timeout"), r)

    def test_cancel_during_a_run(self):
        exe = self.stream(TICKER)
        doc = self.poll(exe, lambda d: "tick 0" in d["output"])
        self.assertIn("tick 0\n", doc["output"], doc)
        self.assertEqual(doc["status"], "running", doc)
        self.assertIsNone(doc["exitCode"], doc)
        r = call("POST", f"/executions/{exe}/cancel", {})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"executionId": exe, "status": "cancelled"})
        doc = self.wait_end(exe)
        self.assertEqual(doc["status"], "cancelled", doc)
        self.assertTrue(doc["output"].startswith("tick 0\n"), doc)
        self.assertNotIn("tick 599", doc["output"])
        # It stays ended: cancel and stdin now conflict.
        r = call("POST", f"/executions/{exe}/cancel", {})
        self.assertError(r, 409, "conflict")
        r = self.send_stdin(exe, data="x")
        self.assertError(r, 409, "conflict")
        # A cancelled run in a sandbox leaves the sandbox working.
        sid = self.new_sandbox()["id"]
        exe = self.stream(TICKER, sandbox_id=sid)
        self.poll(exe, lambda d: "tick 0" in d["output"])
        r = call("POST", f"/executions/{exe}/cancel", {})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.wait_end(exe)["status"], "cancelled")
        self.assertEqual(self.run_ok("print('alive')", sandbox_id=sid),
                         "alive\n")

    def test_interactive_stdin(self):
        cid = "cli-" + uuid.uuid4().hex[:8]
        r = self.execute_raw({"code": "import sys\n"
                                      "print(sys.stdin.read().upper())",
                              "clientId": cid}, path="/execute-stream")
        self.assertEqual(r.status, 200, r)
        doc = r.json
        self.assertEqual(set(doc), {"executionId", "status", "clientId"})
        self.assertEqual((doc["status"], doc["clientId"]), ("streaming", cid))
        exe = doc["executionId"]
        self.addCleanup(self.cancel_quietly, exe)
        # It waits on its open stdin.
        self.assertEqual(self.get_exec(exe).json["status"], "running")
        r = self.send_stdin(exe, data="abc\n")
        self.assertEqual(r.status, 200, r)
        r = self.send_stdin(exe, data="dé")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.get_exec(exe).json["status"], "running")
        r = self.send_stdin(exe, eof=True)
        self.assertEqual(r.status, 200, r)
        doc = self.wait_end(exe)
        self.assertEqual((doc["status"], doc["exitCode"]), ("ok", 0), doc)
        self.assertEqual(doc["output"], "ABC\nDÉ\n", doc)
        # Bad stdin bodies.
        exe = self.stream("import sys\nsys.stdin.read()")
        for body in ({"data": 5}, {"eof": "yes"}, [1]):
            with self.subTest(body=body):
                r = call("POST", f"/executions/{exe}/stdin", body)
                self.assertError(r, 400)
        r = call("POST", f"/executions/{exe}/stdin", b"{nope",
                 extra={"Content-Type": "application/json"})
        self.assertError(r, 400, "invalid_json")
        r = self.send_stdin(exe, eof=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.wait_end(exe)["status"], "ok")

    def test_stream_result_and_given_stdin(self):
        exe = self.stream("import sys\nprint(sys.stdin.read() * 2)",
                          stdin="hi")
        doc = self.wait_end(exe)
        self.assertEqual((doc["status"], doc["output"]), ("ok", "hihi\n"))
        self.assertEqual(doc["executionId"], exe)
        # Without a clientId one is made.
        r = self.execute_raw({"code": "print(1)"}, path="/execute-stream")
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.json["clientId"], ID_RE)
        self.wait_end(r.json["executionId"])

    def test_another_subjects_execution(self):
        _, other, _ = sp.create_key()
        exe = self.stream("import sys\nsys.stdin.read()\nprint('mine')")
        done = self.execute("print('finished')")["executionId"]
        for target in (exe, done):
            with self.subTest(execution=target):
                r = self.get_exec(target, key=other)
                self.assertError(r, 404, "not_found")
                r = call("POST", f"/executions/{target}/cancel", {},
                         key=other)
                self.assertError(r, 404, "not_found")
                r = self.send_stdin(target, key=other, data="x", eof=True)
                self.assertError(r, 404, "not_found")
        # Unknown and malformed ids are the same 404.
        for bad in ("exe_" + uuid.uuid4().hex, "sbx_abc", "exe_"):
            with self.subTest(id=bad):
                self.assertError(self.get_exec(bad), 404, "not_found")
                r = call("POST", f"/executions/{bad}/cancel", {})
                self.assertError(r, 404, "not_found")
        # The other subject's attempts changed nothing.
        self.assertEqual(self.get_exec(exe).json["status"], "running")
        self.assertEqual(self.send_stdin(exe, eof=True).status, 200)
        doc = self.wait_end(exe)
        self.assertEqual((doc["status"], doc["output"]), ("ok", "mine\n"))
        # Nor can it run in the first subject's sandbox.
        sid = self.new_sandbox()["id"]
        r = self.execute_raw({"code": "print(1)", "sandbox_id": sid},
                             key=other)
        self.assertError(r, 404, "not_found")
        r = call("POST", "/execute", {"code": "print(1)"},
                 extra={"X-API-Key": "spk_wrong"})
        self.assertError(r, 401, "unauthenticated")


class ExecuteInputTest(ExecuteCase):
    def test_unknown_language(self):
        for path in ("/execute", "/execute-stream"):
            with self.subTest(path=path):
                r = self.execute_raw({"code": "x", "language": "cobol"},
                                     path=path)
                err = self.assertError(r, 400, "invalid_argument", "language")
                for name in KNOWN:
                    self.assertIn(name, err["message"])

    def test_refused_bodies(self):
        cases = [
            ({"language": "python"}, "code"),
            ({"code": 5}, "code"),
            ({"code": None}, "code"),
            ({"code": ["print(1)"]}, "code"),
            ({"code": "x", "language": 5}, "language"),
            ({"code": "x", "timeout": "1000"}, "timeout"),
            ({"code": "x", "timeout": 0}, "timeout"),
            ({"code": "x", "timeout": 99}, "timeout"),
            ({"code": "x", "timeout": -1000}, "timeout"),
            ({"code": "x", "timeout": TIMEOUT_MAX_MS + 1}, "timeout"),
            ({"code": "x", "timeout": 1e30}, "timeout"),
            ({"code": "x", "stdin": 5}, "stdin"),
            ({"code": "x", "env": ["A=1"]}, "env"),
            ({"code": "x", "env": {"A": 1}}, "env"),
            ({"code": "x", "env": {"A=B": "1"}}, "env"),
            ({"code": "x", "env": {"": "1"}}, "env"),
            ({"code": "x", "files": "a.txt"}, "files"),
            ({"code": "x", "files": {"path": "a", "content": "b"}}, "files"),
            ({"code": "x", "files": [{"path": 5, "content": "b"}]}, "files"),
            ({"code": "x", "files": [{"path": "a"}]}, "files"),
            ({"code": "x", "files": [{"path": "", "content": "b"}]}, "files"),
            ({"code": "x", "files": ["a"]}, "files"),
        ]
        for path in ("/execute", "/execute-stream"):
            for body, field in cases:
                with self.subTest(path=path, body=body):
                    r = self.execute_raw(body, path=path)
                    self.assertError(r, 400, "invalid_argument", field)
        for path in ("/execute", "/execute-stream"):
            for body in ([1], "x", 5):
                with self.subTest(path=path, body=body):
                    r = call("POST", path, json.dumps(body).encode(),
                             extra={"Content-Type": "application/json"})
                    self.assertError(r, 400)
            with self.subTest(path=path, body="malformed"):
                r = call("POST", path, b'{"code": "print(1)"',
                         extra={"Content-Type": "application/json"})
                self.assertError(r, 400, "invalid_json")

    def test_bad_client_id(self):
        for cid in ("bad id", "a/b", "x" * 65, "", "é", 5):
            with self.subTest(clientId=cid):
                r = self.execute_raw({"code": "print(1)", "clientId": cid},
                                     path="/execute-stream")
                self.assertError(r, 400, "invalid_argument", "clientId")

    def test_sizes(self):
        # Code of exactly the maximum runs; one byte more is 413.
        tail = "\nprint('big')\n"
        code = "#" + "x" * (CODE_MAX - 1 - len(tail)) + tail
        self.assertEqual(len(code.encode()), CODE_MAX)
        self.assertEqual(self.run_ok(code), "big\n")
        r = self.execute_raw({"code": code + "#"})
        self.assertError(r, 413, "payload_too_large", "code")
        r = self.execute_raw({"code": code + "#"}, path="/execute-stream")
        self.assertError(r, 413, "payload_too_large", "code")
        # A body over the family's 1 MiB is refused by nginx, as JSON.
        r = call("POST", "/execute",
                 {"code": "print(1)", "pad": "x" * (1024 * 1024 + 10)})
        self.assertError(r, 413, "payload_too_large")

    def test_method_not_allowed(self):
        r = call("GET", "/execute")
        err = self.assertError(r, 405, "method_not_allowed")
        self.assertIn("POST", r.headers.get("Allow", ""), err)


class AnalyzeTest(ExecuteCase):
    def analyze(self, message):
        r = call("POST", "/analyze-execution-needs", {"message": message})
        self.assertEqual(r.status, 200, r)
        doc = r.json
        self.assertEqual(set(doc), {"requiresExecution", "suggestedLanguage",
                                    "codeSnippet"}, doc)
        return doc

    def test_fenced_code_with_a_request(self):
        doc = self.analyze("Can you run this for me?\n\n```python\n"
                           "xs = [1, 2, 3]\nprint(sum(xs))\n```\nThanks!")
        self.assertIs(doc["requiresExecution"], True, doc)
        self.assertEqual(doc["suggestedLanguage"], "python", doc)
        self.assertIn("print(sum(xs))", doc["codeSnippet"])
        self.assertIn("xs = [1, 2, 3]", doc["codeSnippet"])
        self.assertNotIn("```", doc["codeSnippet"])
        doc = self.analyze("What is the output of\n```js\n"
                           "console.log([1,2].map(x => x * 2))\n```")
        self.assertIs(doc["requiresExecution"], True, doc)
        self.assertEqual(doc["suggestedLanguage"], "javascript", doc)

    def test_plain_prose(self):
        for msg in ("Tell me about the history of Rome, please.",
                    "I like turtles and sunny days.", ""):
            with self.subTest(message=msg):
                doc = self.analyze(msg)
                self.assertIs(doc["requiresExecution"], False, doc)
                self.assertIsNone(doc["codeSnippet"], doc)
                self.assertIsNone(doc["suggestedLanguage"], doc)

    def test_unknown_fence_without_a_request(self):
        doc = self.analyze("Here is my config:\n```foobarlang\n"
                           "key = value\nother = thing\n```\nLooks right?")
        self.assertIs(doc["requiresExecution"], False, doc)

    def test_bad_input(self):
        for body in ({}, {"message": 5}, {"message": None}, [1]):
            with self.subTest(body=body):
                r = call("POST", "/analyze-execution-needs", body)
                self.assertError(r, 400)
        r = call("POST", "/analyze-execution-needs", b"{",
                 extra={"Content-Type": "application/json"})
        self.assertError(r, 400, "invalid_json")


class OneOffLimitTest(ExecuteCase):
    """One-off runs (a sandbox made for one /execute or terminal) are
    bounded per subject (SP_RUNS_MAX_PER_SUBJECT, 16 by default)."""

    def test_limit_then_freed(self):
        kid, key, _ = sp.create_key()
        h = {"X-API-Key": key}
        limit = int(su.cfg("SP_RUNS_MAX_PER_SUBJECT", "16"))
        started = []
        try:
            for _ in range(limit):
                r = sp.post("/execute-stream",
                            {"code": "import time; time.sleep(30)"},
                            headers=h, timeout=40)
                self.assertEqual(r.status, 200, r)
                started.append(r.json["executionId"])
            r = sp.post("/execute-stream", {"code": "print(1)"}, headers=h,
                        timeout=40)
            self.assertError(r, 429, "rate_limited")
            self.assertIsNotNone(r.headers.get("Retry-After"))
            # Another subject is not affected.
            r = sp.post("/execute", {"code": "print(2)"},
                        headers={"X-API-Key": sp.API_KEY}, timeout=40)
            self.assertEqual(r.status, 200, r)
        finally:
            for exe in started:
                sp.post(f"/executions/{exe}/cancel", {}, headers=h)
        # Ended runs give their places back.
        ok = sp.wait_until(
            lambda: sp.post("/execute", {"code": "print(3)"}, headers=h,
                            timeout=40).status == 200, 20, step=0.5)
        self.assertTrue(ok, "ended runs must free their places")
