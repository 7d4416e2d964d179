"""test_contexts.py: stateful execution contexts through nginx
(POST/GET /sandboxes/{id}/contexts, GET/DELETE …/contexts/{ctx}, and
/execute or /execute-stream with a context_id): state, imports and
functions across runs, the value of a final expression, exceptions the
context survives, timeouts and cancel that interrupt the run and not the
context, a run that ignores the interrupt or a driver that exits (the
context ends), serialized runs, the events of a run, Python and
JavaScript, another subject's contexts, refused input, and the end of a
context with its sandbox; GET /executions/{id} of a run answers as
/execute did (results, the error object, stderr).

JavaScript: runs share one vm context, so globals, `var`s, functions and
top-level `let`/`const` survive between runs; declaring the same
`let`/`const` name again is a SyntaxError (as in a browser console).
Every wait is bounded; nothing asserts how fast a thing happened."""
import threading
import time

import sp
import sbx_util as su
from sbx_util import call

CTX_KEYS = {"id", "sandbox_id", "language", "created_at"}


class ContextCase(su.SbxCase):
    """Helpers: contexts, and runs in them."""

    def new_context(self, sid, language="python", key=None):
        r = call("POST", f"/sandboxes/{sid}/contexts", {"language": language},
                 key=key, timeout=60)
        self.assertEqual(r.status, 201, r)
        doc = r.json
        self.assertEqual(set(doc), CTX_KEYS, doc)
        self.assertTrue(doc["id"].startswith("ctx_"), doc)
        self.assertEqual(doc["sandbox_id"], sid)
        return doc["id"]

    @staticmethod
    def ctx_raw(ctx, code, key=None, path="/execute", **body):
        body.update(code=code, context_id=ctx)
        wait = body.get("timeout", 30000) / 1000
        return call("POST", path, body, key=key, timeout=wait + su.SLACK)

    def ctx_run(self, ctx, code, key=None, **body):
        """A sync run (200 asserted); the /execute answer."""
        r = self.ctx_raw(ctx, code, key=key, **body)
        self.assertEqual(r.status, 200, r)
        doc = r.json
        self.assertLessEqual({"executionId", "status", "output", "error",
                              "exitCode", "duration", "results",
                              "truncated"}, set(doc), doc)
        self.assertTrue(doc["executionId"].startswith("exe_"), doc)
        return doc

    def value(self, ctx, code, **body):
        """The text/plain result of a run that must succeed."""
        doc = self.ctx_run(ctx, code, **body)
        self.assertEqual((doc["status"], doc["exitCode"]), ("ok", 0), doc)
        texts = [x["text/plain"] for x in doc["results"] if "text/plain" in x]
        return texts[0] if texts else None

    def wait_execution(self, exe, timeout=30):
        """GET /executions/{id} until it is no longer running."""
        def done():
            r = call("GET", f"/executions/{exe}")
            self.assertEqual(r.status, 200, r)
            return r.json if r.json["status"] != "running" else None
        doc = sp.wait_until(done, timeout, 0.1)
        self.assertTrue(doc, f"{exe} still running after {timeout} s")
        return doc

    def assertGetMatches(self, doc):
        """GET /executions/{id} of a finished sync run says what its
        /execute answer said: results, the error object, stderr."""
        got = self.wait_execution(doc["executionId"])
        for k in ("executionId", "status", "output", "error", "stderr",
                  "exitCode", "duration", "results", "truncated"):
            self.assertEqual(got.get(k), doc.get(k), (k, got, doc))
        return got


class PythonContextTest(ContextCase):
    @classmethod
    def setUpClass(cls):
        cls.sid = cls.class_sandbox()

    def test_create_list_get(self):
        ctx = self.new_context(self.sid)
        r = call("GET", f"/sandboxes/{self.sid}/contexts")
        self.assertEqual(r.status, 200, r)
        listed = {c["id"]: c for c in r.json["contexts"]}
        self.assertIn(ctx, listed)
        self.assertEqual(listed[ctx]["language"], "python")
        r = call("GET", f"/sandboxes/{self.sid}/contexts/{ctx}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["id"], ctx)
        # Aliases name the same languages; no body means python.
        r = call("POST", f"/sandboxes/{self.sid}/contexts", {"language": "py"})
        self.assertEqual((r.status, r.json["language"]), (201, "python"), r)
        r = call("POST", f"/sandboxes/{self.sid}/contexts",
                 {"language": "NodeJS"})
        self.assertEqual((r.status, r.json["language"]), (201, "javascript"),
                         r)
        r = call("POST", f"/sandboxes/{self.sid}/contexts", b"")
        self.assertEqual((r.status, r.json["language"]), (201, "python"), r)

    def test_state_imports_functions(self):
        ctx = self.new_context(self.sid)
        doc = self.ctx_run(ctx, "x = 1")
        self.assertEqual((doc["status"], doc["results"]), ("ok", []), doc)
        self.assertEqual(self.value(ctx, "x + 1"), "2")
        self.ctx_run(ctx, "import math\ndef f(n):\n    return math.factorial(n)")
        self.assertEqual(self.value(ctx, "f(5) + x"), "121")
        self.assertEqual(self.value(ctx, "math.pi > 3"), "True")
        # The value of the last expression only; None is no result.
        self.assertEqual(self.value(ctx, "1\n'two'"), "'two'")
        self.assertIsNone(self.value(ctx, "None"))
        self.assertIsNone(self.value(ctx, "y = x * 10"))
        self.assertEqual(self.value(ctx, "y"), "10")

    def test_output_of_code_and_subprocesses(self):
        ctx = self.new_context(self.sid)
        doc = self.ctx_run(ctx, "import sys, subprocess\nprint('out1')\n"
                            "sys.stderr.write('err1\\n')\n"
                            "subprocess.run(['echo', 'sub'])\n"
                            "subprocess.run('echo suberr >&2', shell=True)\n"
                            "print('out2')\n41 + 1")
        self.assertEqual(doc["status"], "ok", doc)
        self.assertEqual(doc["output"], "out1\nsub\nout2\n")
        self.assertEqual(doc["error"], "err1\nsuberr\n")
        self.assertEqual(doc["results"], [{"text/plain": "42"}])
        # The driver's own channels are out of reach: stdin is empty.
        doc = self.ctx_run(ctx, "input()")
        self.assertEqual(doc["error"]["name"], "EOFError", doc)

    def test_exception_then_context_survives(self):
        ctx = self.new_context(self.sid)
        doc = self.ctx_run(ctx, "kept = 5\ndef g():\n    return 1 / 0\ng()")
        self.assertEqual((doc["status"], doc["exitCode"]), ("error", 1), doc)
        err = doc["error"]
        self.assertEqual(err["name"], "ZeroDivisionError")
        self.assertEqual(err["message"], "division by zero")
        self.assertIn("Traceback", err["traceback"])
        self.assertIn("in g", err["traceback"])
        self.assertIn("ZeroDivisionError", err["traceback"])
        self.assertEqual(self.value(ctx, "kept"), "5")
        doc = self.ctx_run(ctx, "def broken(:\n    pass")
        self.assertEqual(doc["error"]["name"], "SyntaxError", doc)
        doc = self.ctx_run(ctx, "raise SystemExit(3)")
        self.assertEqual(doc["error"]["name"], "SystemExit", doc)
        self.assertEqual(self.value(ctx, "kept * 2"), "10")

    def test_timeout_interrupts_the_run_not_the_context(self):
        ctx = self.new_context(self.sid)
        self.ctx_run(ctx, "before = 'still here'")
        doc = self.ctx_run(ctx, "while True: pass", timeout=1000)
        self.assertEqual(doc["status"], "timeout", doc)
        self.assertEqual(doc["error"]["name"], "KeyboardInterrupt", doc)
        self.assertEqual(self.value(ctx, "before"), "'still here'")
        doc = self.ctx_run(ctx, "import time\ntime.sleep(60)", timeout=1000)
        self.assertEqual(doc["status"], "timeout", doc)
        self.assertEqual(self.value(ctx, "before"), "'still here'")

    def test_run_that_ignores_the_interrupt_ends_the_context(self):
        ctx = self.new_context(self.sid)
        doc = self.ctx_run(ctx, "import signal\n"
                            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                            "while True: pass", timeout=1000)
        self.assertEqual(doc["status"], "timeout", doc)
        self.assertEqual(doc["error"]["name"], "ContextEnded", doc)
        r = self.ctx_raw(ctx, "1")
        self.assertError(r, 404, "not_found", "context_id")
        r = call("GET", f"/sandboxes/{self.sid}/contexts")
        self.assertNotIn(ctx, [c["id"] for c in r.json["contexts"]])

    def test_driver_exit_ends_the_context(self):
        ctx = self.new_context(self.sid)
        doc = self.ctx_run(ctx, "import os\nos._exit(3)")
        self.assertEqual(doc["status"], "error", doc)
        self.assertEqual(doc["error"]["name"], "ContextEnded", doc)
        self.assertError(self.ctx_raw(ctx, "1"), 404, "not_found",
                         "context_id")

    def test_runs_are_serialized(self):
        ctx = self.new_context(self.sid)
        first = {}

        def slow():
            first["doc"] = self.ctx_run(ctx, "import time\ntime.sleep(1.5)\n"
                                         "order = ['first']")
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        # Sent while the first runs: it waits for it, then sees its state.
        self.assertEqual(self.value(ctx, "order.append('second'); order"),
                         "['first', 'second']")
        t.join(60)
        self.assertEqual(first["doc"]["status"], "ok", first)

    def test_stream_events_and_get(self):
        ctx = self.new_context(self.sid)
        r = self.ctx_raw(ctx, "print('streamed')\n6 * 7",
                         path="/execute-stream", clientId="ctx-client")
        self.assertEqual(r.status, 200, r)
        doc = r.json
        self.assertEqual((doc["status"], doc["clientId"]),
                         ("streaming", "ctx-client"), doc)
        exe = doc["executionId"]
        rec = self.wait_execution(exe)
        self.assertEqual((rec["status"], rec["exitCode"]), ("ok", 0), rec)
        self.assertEqual(rec["output"], "streamed\n")
        self.assertEqual(rec["results"], [{"text/plain": "42"}], rec)
        self.assertEqual((rec["error"], rec["stderr"]), ("", ""), rec)
        # The events as the relay sees them: status first, result last,
        # the value as a text/plain display in between, marked as the main
        # result (the value of the last expression, not a figure); the
        # result says how many runs the context has made.
        lines = su.redis("XRANGE", f"{su.PREFIX}events:{exe}", "-", "+")
        types = [lines[i + 1] for i, v in enumerate(lines[:-1])
                 if v == "type"]
        self.assertEqual(types[0], "status", lines)
        self.assertEqual(types[-1], "result", lines)
        self.assertIn("stdout", types)
        self.assertIn("display", types)
        self.assertIn('{"mime":"text/plain","data":"42","main":true}', lines)
        self.assertIn('"executionCount":', lines[-1])
        # An exception is an error event {name, message, traceback}.
        r = self.ctx_raw(ctx, "int('x')", path="/execute-stream")
        exe = r.json["executionId"]
        rec = self.wait_execution(exe)
        self.assertEqual(rec["status"], "error")
        self.assertEqual(rec["error"]["name"], "ValueError", rec)
        self.assertIn("invalid literal", rec["error"]["message"], rec)
        self.assertEqual(rec["results"], [], rec)
        lines = su.redis("XRANGE", f"{su.PREFIX}events:{exe}", "-", "+")
        errors = [lines[i + 1] for i, v in enumerate(lines[:-1])
                  if v == "data" and '"name":"ValueError"' in lines[i + 1]]
        self.assertEqual(len(errors), 1, lines)
        self.assertIn('"traceback":', errors[0])

    def test_get_matches_execute(self):
        ctx = self.new_context(self.sid)
        doc = self.ctx_run(ctx, "import sys\nprint('o')\n"
                            "sys.stderr.write('e\\n')\n6 * 7")
        got = self.assertGetMatches(doc)
        self.assertEqual(got["results"], [{"text/plain": "42"}])
        self.assertEqual((got["error"], got["stderr"]), ("e\n", "e\n"))
        # A value with savefig is drawn as a figure (no matplotlib needed):
        # an image/png result, then its text/plain one.
        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
        doc = self.ctx_run(ctx, "class Fig:\n"
                            "    def savefig(self, f, **kw):\n"
                            f"        f.write({png!r})\n"
                            "    def __repr__(self):\n"
                            "        return 'Fig <\\u00e9>\\n\"'\n"
                            "Fig()")
        got = self.assertGetMatches(doc)
        import base64
        self.assertEqual(len(got["results"]), 2, got)
        self.assertEqual(base64.b64decode(got["results"][0]["image/png"]),
                         png)
        self.assertEqual(got["results"][1],
                         {"text/plain": 'Fig <\u00e9>\n"'})
        # An exception: the error object, and stderr apart.
        doc = self.ctx_run(ctx, "import sys\nsys.stderr.write('before\\n')\n"
                            "def g():\n    return 1 / 0\ng()")
        got = self.assertGetMatches(doc)
        self.assertEqual(got["error"]["name"], "ZeroDivisionError", got)
        self.assertIn("in g", got["error"]["traceback"], got)
        self.assertEqual((got["stderr"], got["results"]), ("before\n", []))
        # The driver's error, then the context ending under the run: the
        # last one, as in the /execute answer.
        doc = self.ctx_run(ctx, "import os\nos._exit(3)")
        got = self.assertGetMatches(doc)
        self.assertEqual(got["error"]["name"], "ContextEnded", got)
        # An execution outside a context keeps its shape.
        r = call("POST", "/execute", {"code": "import sys\nprint(1)\n"
                                      "sys.exit('bad')", "language": "python",
                                      "sandbox_id": self.sid},
                 timeout=su.SLACK)
        self.assertEqual(r.status, 200, r)
        got = self.wait_execution(r.json["executionId"])
        self.assertEqual(set(got), {"executionId", "status", "output",
                                    "error", "exitCode", "duration",
                                    "truncated", "results"}, got)
        self.assertEqual((got["output"], got["error"], got["results"]),
                         ("1\n", "bad\n", []), got)

    def test_cancel(self):
        ctx = self.new_context(self.sid)
        self.ctx_run(ctx, "mark = 1")
        r = self.ctx_raw(ctx, "import time\ntime.sleep(60)",
                         path="/execute-stream")
        exe = r.json["executionId"]
        time.sleep(0.3)
        r = call("POST", f"/executions/{exe}/cancel")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.wait_execution(exe, 10)["status"], "cancelled")
        self.assertEqual(self.value(ctx, "mark"), "1")
        # Stdin for a context run is refused; it is not a process.
        r = self.ctx_raw(ctx, "time.sleep(60)", path="/execute-stream")
        exe = r.json["executionId"]
        r = call("POST", f"/executions/{exe}/stdin", {"data": "x"})
        self.assertError(r, 409, "conflict")
        self.assertEqual(call("POST", f"/executions/{exe}/cancel").status,
                         200)
        self.assertEqual(self.wait_execution(exe, 10)["status"], "cancelled")

    def test_output_cap(self):
        ctx = self.new_context(self.sid)
        doc = self.ctx_run(ctx, f"print('x' * {su.OUTPUT_MAX * 2})")
        self.assertIs(doc["truncated"], True, {**doc, "output": "…"})
        self.assertEqual(doc["status"], "output_limit")
        self.assertLessEqual(len(doc["output"]), su.OUTPUT_MAX)
        self.assertEqual(self.value(ctx, "2 + 2"), "4")

    def test_matplotlib_figure_when_available(self):
        ctx = self.new_context(self.sid)
        doc = self.ctx_run(ctx, "try:\n    import matplotlib.pyplot as plt\n"
                            "except ImportError:\n    plt = None\n"
                            "plt is not None")
        if doc["results"] != [{"text/plain": "True"}]:
            # Not installed: the driver's figure code stays quiet.
            self.assertEqual(self.value(ctx, "'no plot'"), "'no plot'")
            self.skipTest("matplotlib is not installed on this host")
        doc = self.ctx_run(ctx, "plt.plot([1, 2, 3])\nNone")
        pngs = [x["image/png"] for x in doc["results"] if "image/png" in x]
        self.assertEqual(len(pngs), 1, doc)
        import base64
        self.assertTrue(base64.b64decode(pngs[0]).startswith(b"\x89PNG"))


class JavaScriptContextTest(ContextCase):
    @classmethod
    def setUpClass(cls):
        cls.sid = cls.class_sandbox()

    def test_state_functions_require(self):
        ctx = self.new_context(self.sid, "javascript")
        doc = self.ctx_run(ctx, "var a = 20; let b = 1; const c = 100;\n"
                            "function twice(n) { return 2 * n; }\n"
                            "console.log('hello', {k: 1}); a + b")
        self.assertEqual(doc["output"], "hello { k: 1 }\n")
        self.assertEqual(doc["results"], [{"text/plain": "21"}])
        self.assertEqual(self.value(ctx, "twice(a) + b + c"), "141")
        self.ctx_run(ctx, "const path = require('path')")
        self.assertEqual(self.value(ctx, "path.join('a', 'b')"), "'a/b'")
        self.assertIsNone(self.value(ctx, "undefined"))
        self.assertEqual(self.value(ctx, "Promise.resolve(a * 2)"), "40")
        # A name declared with let cannot be declared again.
        doc = self.ctx_run(ctx, "let b = 2")
        self.assertEqual(doc["error"]["name"], "SyntaxError", doc)
        self.assertEqual(self.value(ctx, "b = 5; b"), "5")

    def test_exception_and_timeout(self):
        ctx = self.new_context(self.sid, "js")
        self.assertGetMatches(self.ctx_run(ctx, "var kept = 'yes'; [kept]"))
        doc = self.ctx_run(ctx, "function f() { return null.x; }\nf()")
        self.assertEqual((doc["status"], doc["exitCode"]), ("error", 1), doc)
        self.assertGetMatches(doc)
        self.assertEqual(doc["error"]["name"], "TypeError")
        self.assertIn("cell-", doc["error"]["traceback"])
        doc = self.ctx_run(ctx, "throw new RangeError('out')")
        self.assertEqual((doc["error"]["name"], doc["error"]["message"]),
                         ("RangeError", "out"), doc)
        doc = self.ctx_run(ctx, "while (true) {}", timeout=1000)
        self.assertEqual(doc["status"], "timeout", doc)
        doc = self.ctx_run(ctx, "new Promise(() => {})", timeout=1000)
        self.assertEqual(doc["status"], "timeout", doc)
        self.assertEqual(self.value(ctx, "kept"), "'yes'")
        # Output of a subprocess is not lost (it arrives as stderr).
        doc = self.ctx_run(ctx, "require('child_process').execSync('echo sub', "
                            "{stdio: 'inherit'}); 1")
        self.assertEqual(doc["status"], "ok", doc)
        self.assertIn("sub", doc["output"] + doc["stderr"])


class ContextAccessTest(ContextCase):
    @classmethod
    def setUpClass(cls):
        cls.sid = cls.class_sandbox()
        cls.other_key = sp.create_key()[1]

    def test_other_subject_gets_404(self):
        ctx = self.new_context(self.sid)
        k = self.other_key
        self.assertError(self.ctx_raw(ctx, "1", key=k), 404, "not_found",
                         "context_id")
        for method, path in (("GET", f"/sandboxes/{self.sid}/contexts"),
                             ("GET", f"/sandboxes/{self.sid}/contexts/{ctx}"),
                             ("DELETE",
                              f"/sandboxes/{self.sid}/contexts/{ctx}")):
            with self.subTest(method=method, path=path):
                self.assertError(call(method, path, key=k), 404, "not_found")
        r = call("POST", f"/sandboxes/{self.sid}/contexts",
                 {"language": "python"}, key=k)
        self.assertError(r, 404, "not_found")
        # Their own sandbox does not reach our context either.
        theirs = self.new_sandbox(key=k)["id"]
        r = call("DELETE", f"/sandboxes/{theirs}/contexts/{ctx}", key=k)
        self.assertError(r, 404, "not_found")
        self.assertEqual(self.value(ctx, "'mine'"), "'mine'")

    def test_refused_input(self):
        ctx = self.new_context(self.sid)
        base = f"/sandboxes/{self.sid}/contexts"
        for lang in ("ruby", "bash", "c", ""):
            with self.subTest(language=lang):
                r = call("POST", base, {"language": lang})
                self.assertError(r, 400, "invalid_argument", "language")
        self.assertError(call("POST", base, {"language": 5}), 400,
                         "invalid_argument", "language")
        self.assertError(call("POST", "/sandboxes/sbx_nope/contexts",
                              {"language": "python"}), 404, "not_found")
        self.assertError(call("GET", f"{base}/ctx_unknown0000000000000"), 404,
                         "not_found")
        self.assertError(call("GET", f"{base}/not-a-ctx-id"), 404,
                         "not_found")
        for bad in ("ctx_unknown0000000000000", "nope", "sbx_x"):
            with self.subTest(context_id=bad):
                self.assertError(self.ctx_raw(bad, "1"), 404, "not_found",
                                 "context_id")
        other = self.new_sandbox()["id"]
        r = self.ctx_raw(ctx, "1", sandbox_id=other)
        self.assertError(r, 400, "invalid_argument", "sandbox_id")
        self.assertEqual(self.ctx_raw(ctx, "1", sandbox_id=self.sid).status,
                         200)
        r = self.ctx_raw(ctx, "1", language="javascript")
        self.assertError(r, 400, "invalid_argument", "language")
        self.assertEqual(self.ctx_raw(ctx, "1", language="py").status, 200)
        self.assertError(self.ctx_raw(ctx, "1", stdin="x"), 400,
                         "invalid_argument", "stdin")
        self.assertError(self.ctx_raw(ctx, "1", env={"A": "b"}), 400,
                         "invalid_argument", "env")
        # A context in another sandbox's path is not found there.
        self.assertError(call("GET", f"/sandboxes/{other}/contexts/{ctx}"),
                         404, "not_found")

    def test_files_are_written_first(self):
        ctx = self.new_context(self.sid)
        v = self.value(ctx, "open('/workspace/ctx-in.txt').read()",
                       files=[{"path": "/workspace/ctx-in.txt",
                               "content": "from files"}])
        self.assertEqual(v, "'from files'")

    def test_delete_context_then_run(self):
        ctx = self.new_context(self.sid)
        self.ctx_run(ctx, "z = 1")
        r = call("DELETE", f"/sandboxes/{self.sid}/contexts/{ctx}")
        self.assertEqual(r.status, 204, r)
        self.assertError(self.ctx_raw(ctx, "z"), 404, "not_found",
                         "context_id")
        r = call("DELETE", f"/sandboxes/{self.sid}/contexts/{ctx}")
        self.assertError(r, 404, "not_found")
        self.assertEqual(su.redis_hash(f"ctx:{ctx}"), {})

    def test_sandbox_end_ends_contexts(self):
        sid = self.new_sandbox()["id"]
        ctxs = [self.new_context(sid), self.new_context(sid, "javascript")]
        self.assertEqual(su.redis_hash(f"ctx:{ctxs[0]}")["sandbox"], sid)
        r = self.ctx_raw(ctxs[0], "import time\ntime.sleep(60)",
                         path="/execute-stream")
        exe = r.json["executionId"]
        r = call("DELETE", f"/sandboxes/{sid}", timeout=60)
        self.assertEqual(r.status, 204, r)
        rec = self.wait_execution(exe, 10)
        self.assertEqual(rec["status"], "error", rec)
        for ctx in ctxs:
            self.assertEqual(su.redis_hash(f"ctx:{ctx}"), {})
            self.assertError(self.ctx_raw(ctx, "1"), 404, "not_found",
                             "context_id")
        self.assertEqual(su.redis("SCARD", f"{su.PREFIX}sbx:{sid}:contexts"),
                         ["0"])
