"""test_interp.py: the interp family, E2B's code interpreter (port 49999)
in raw HTTP as @e2b/code-interpreter sends it: the headers E2b-Sandbox-Id
and E2b-Sandbox-Port: 49999, no credential, the sandbox's tokens
(E2B-Traffic-Access-Token, X-Access-Token) computed here as the server
does (HMAC-SHA256 of purpose NUL sandbox id with JWT_SECRET).

POST /execute's NDJSON: lines read as the run produces them (the run
waits for a file this test writes only after it has read the first line),
one JSON object per line, no blank line, ASCII only; stdout with a
timestamp, results (main and display, a matplotlib PNG in the
code-interpreter template, a str without its quotes, JSON), errors with
name, value and traceback (the context survives), the execution count,
end_of_execution. Contexts: create, list, run in, restart (variables
gone), delete; unknown context 404; context and language together 400.
Tokens: missing, wrong, of another sandbox or purpose: 401; another
subject's key or an ended sandbox: 404. Every wait is bounded."""
import base64
import hashlib
import hmac
import http.client
import json

import sp
import sbx_util as su
from sbx_util import call

STREAM_WAIT = 120  # s: the first run of a context starts its driver


def sbx_token(purpose, sid):
    mac = hmac.new(sp.SECRET.encode(), purpose.encode() + b"\0" + sid.encode(),
                   hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def e2b_headers(sid, traffic=True, access=False, extra=None):
    h = {"E2b-Sandbox-Id": sid, "E2b-Sandbox-Port": "49999"}
    if traffic:
        h["E2B-Traffic-Access-Token"] = (
            traffic if isinstance(traffic, str) else sbx_token("traffic", sid))
    if access:
        h["X-Access-Token"] = (
            access if isinstance(access, str) else sbx_token("envd", sid))
    h.update(extra or {})
    return h


def interp(method, path, sid, body=None, timeout=60, **kw):
    return sp.request(method, path, body=body, headers=e2b_headers(sid, **kw),
                      timeout=timeout, patient=False)


class Stream:
    """POST /execute read line by line as it arrives."""

    def __init__(self, sid, body, **kw):
        self.conn = http.client.HTTPConnection(sp.HOST, sp.PORT,
                                               timeout=STREAM_WAIT)
        h = e2b_headers(sid, access=True, **kw)
        h["Content-Type"] = "application/json"
        self.conn.request("POST", "/execute", json.dumps(body).encode(), h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.raw = []

    def line(self):
        """The next line as an object; None at the end of the body."""
        b = self.resp.readline()
        if not b:
            return None
        self.raw.append(b)
        assert b.endswith(b"\n") and b.strip(), b
        return json.loads(b)

    def rest(self):
        out = []
        for _ in range(10000):
            doc = self.line()
            if doc is None:
                return out
            if doc.get("type") != "keepalive":
                out.append(doc)
        raise AssertionError("no end of the stream")

    def close(self):
        self.conn.close()


class InterpCase(su.SbxCase):
    @classmethod
    def setUpClass(cls):
        r = call("GET", "/templates/code-interpreter")
        if r.status != 200:
            raise AssertionError(f"code-interpreter is not built: {r!r}")
        cls.sid = cls.class_sandbox({"template": "code-interpreter"})

    def run_code(self, body, sid=None):
        s = Stream(sid or self.sid, body)
        self.addCleanup(s.close)
        if s.status != 200:
            self.fail(f"{s.status}: {s.resp.read()[:300]!r}")
        self.assertEqual(s.resp.getheader("Content-Type"),
                         "application/x-ndjson")
        lines = s.rest()
        for raw in s.raw:
            raw.decode("ascii")  # every character past U+007F escaped
        self.assertEqual(lines[-1], {"type": "end_of_execution"}, lines)
        return lines

    @staticmethod
    def out(lines):
        return "".join(x["text"] for x in lines if x["type"] == "stdout")

    @staticmethod
    def of(lines, kind):
        return [x for x in lines if x["type"] == kind]


class ExecuteTest(InterpCase):
    def test_lines_as_they_happen(self):
        go = f"/workspace/go-{su.unique_marker()}"
        code = ("import os, time\nprint('first', flush=True)\n"
                f"for _ in range(1200):\n    if os.path.exists({go!r}):\n"
                "        break\n    time.sleep(0.05)\nprint('second')\n")
        s = Stream(self.sid, {"code": code})
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        # The run is still waiting for the file: these lines came alone
        # (print writes "first" and "\n" apart).
        text = ""
        while text != "first\n":
            first = s.line()
            self.assertEqual(first["type"], "stdout", first)
            self.assertIsInstance(first["timestamp"], int)
            text += first["text"]
            self.assertTrue("first\n".startswith(text), text)
        r = call("PUT", su.files_url(self.sid, go), b"x")
        self.assertIn(r.status, (200, 201, 204), r)
        rest = s.rest()
        self.assertEqual("".join(x["text"] for x in self.of(rest, "stdout")),
                         "second\n")
        self.assertEqual(rest[-1], {"type": "end_of_execution"})
        self.assertEqual(len(self.of(rest, "number_of_executions")), 1)

    def test_results_main_and_display(self):
        lines = self.run_code({"code":
                               "import matplotlib.pyplot as plt\n"
                               "plt.plot([1, 2, 3])\nplt.show()\n6 * 7"})
        results = self.of(lines, "result")
        main = [x for x in results if x["is_main_result"]]
        shown = [x for x in results if not x["is_main_result"]]
        self.assertEqual([x.get("text") for x in main], ["42"], results)
        self.assertTrue(shown and all("png" in x for x in shown), results)
        self.assertTrue(base64.b64decode(shown[0]["png"])
                        .startswith(b"\x89PNG"))

    def test_str_result_and_unicode(self):
        lines = self.run_code({"code": "print('h\u00e9llo \u20ac \U0001f600')\n"
                               "'abc'"})
        self.assertEqual(self.out(lines),
                         "h\u00e9llo \u20ac \U0001f600\n")
        self.assertEqual(self.of(lines, "result")[0]["text"], "abc")

    def test_error_and_the_context_survives(self):
        self.run_code({"code": "survivor = 41"})
        lines = self.run_code({"code": "1 / 0"})
        err = self.of(lines, "error")
        self.assertEqual(len(err), 1, lines)
        self.assertEqual(err[0]["name"], "ZeroDivisionError")
        self.assertEqual(err[0]["value"], "division by zero")
        self.assertIn("ZeroDivisionError", err[0]["traceback"])
        lines = self.run_code({"code": "survivor + 1"})
        self.assertEqual(self.of(lines, "result")[0]["text"], "42")
        self.assertEqual(self.of(lines, "error"), [])

    def test_execution_count_grows(self):
        counts = []
        for _ in range(2):
            lines = self.run_code({"code": "None"})
            counts.append(self.of(lines, "number_of_executions")[0]
                          ["execution_count"])
        self.assertEqual(counts[1], counts[0] + 1, counts)
        self.assertGreaterEqual(counts[0], 1)

    def test_javascript_default_context(self):
        lines = self.run_code({"code": "console.log('js', 6 * 7); 1 + 1",
                               "language": "js"})
        self.assertEqual(self.out(lines), "js 42\n")
        self.assertEqual(self.of(lines, "result")[0]["text"], "2")

    def test_refused_bodies(self):
        r = interp("POST", "/execute", self.sid, {"code": "1",
                   "context_id": "ctx_x", "language": "python"}, access=True)
        self.assertError(r, 400, "invalid_argument", "language")
        for body in ({}, {"code": 5}, {"code": "1", "language": "cobol"},
                     {"code": "1", "env_vars": {"A": "b"}}):
            with self.subTest(body=body):
                r = interp("POST", "/execute", self.sid, body, access=True)
                self.assertError(r, 400)
        r = interp("POST", "/execute", self.sid,
                   {"code": "1", "context_id": "ctx_nosuchcontext"})
        self.assertError(r, 404, "not_found")
        r = interp("POST", "/execute", self.sid, b"{",
                   extra={"Content-Type": "application/json"})
        self.assertError(r, 400, "invalid_json")


class ContextsTest(InterpCase):
    def test_create_list_run_restart_delete(self):
        r = interp("POST", "/contexts", self.sid, {"language": "python"})
        self.assertEqual(r.status, 200, r)
        ctx = r.json
        self.assertEqual(set(ctx), {"id", "language", "cwd"}, ctx)
        self.assertEqual(ctx["language"], "python")
        cid = ctx["id"]
        r = interp("GET", "/contexts", self.sid)
        self.assertEqual(r.status, 200, r)
        self.assertIn(cid, [c["id"] for c in r.json], r.json)
        self.run_code({"code": "kept = 'yes'", "context_id": cid})
        lines = self.run_code({"code": "kept", "context_id": cid})
        self.assertEqual(self.of(lines, "result")[0]["text"], "yes")
        r = interp("POST", f"/contexts/{cid}/restart", self.sid, timeout=90)
        self.assertEqual(r.status // 100, 2, r)
        lines = self.run_code({"code": "kept", "context_id": cid})
        self.assertEqual(self.of(lines, "error")[0]["name"], "NameError")
        r = interp("DELETE", f"/contexts/{cid}", self.sid)
        self.assertEqual(r.status // 100, 2, r)
        self.assertError(interp("DELETE", f"/contexts/{cid}", self.sid), 404)
        self.assertError(interp("POST", f"/contexts/{cid}/restart", self.sid),
                         404)
        r = interp("POST", "/execute", self.sid,
                   {"code": "1", "context_id": cid})
        self.assertError(r, 404, "not_found")
        r = interp("GET", "/contexts", self.sid)
        self.assertNotIn(cid, [c["id"] for c in r.json])

    def test_language_alias_and_cwd(self):
        r = interp("POST", "/contexts", self.sid,
                   {"language": "js", "cwd": "/tmp"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["language"], r.json["cwd"]),
                         ("javascript", "/tmp"))
        lines = self.run_code({"code": "process.cwd()",
                               "context_id": r.json["id"]})
        self.assertEqual(self.of(lines, "result")[0]["text"], "/tmp")
        interp("DELETE", f"/contexts/{r.json['id']}", self.sid)

    def test_refused(self):
        for body in ({"language": "cobol"}, {"cwd": "relative"},
                     {"language": 3}):
            with self.subTest(body=body):
                self.assertError(interp("POST", "/contexts", self.sid, body),
                                 400, "invalid_argument")
        self.assertError(interp("DELETE", "/contexts/ctx_nosuch", self.sid),
                         404)
        self.assertError(interp("DELETE", "/contexts/..", self.sid), 404)


class TokensTest(InterpCase):
    def test_tokens(self):
        other = self.new_sandbox()["id"]
        cases = [
            ("none", dict(traffic=False, access=False)),
            ("wrong traffic", dict(traffic="x" * 43)),
            ("wrong access", dict(traffic=True, access="y" * 43)),
            ("other sandbox's", dict(traffic=sbx_token("traffic", other))),
            ("envd token as traffic", dict(traffic=sbx_token("envd",
                                                             self.sid))),
            ("too long", dict(traffic="z" * 5000)),
        ]
        for name, kw in cases:
            with self.subTest(case=name):
                self.assertError(interp("GET", "/contexts", self.sid, **kw),
                                 401, "unauthenticated")
                s = Stream(self.sid, {"code": "print(1)"}, **kw) \
                    if "access" not in kw else None
                if s is not None:
                    self.addCleanup(s.close)
                    self.assertEqual(s.status, 401)
        # Either token alone is enough.
        r = interp("GET", "/contexts", self.sid, traffic=False, access=True)
        self.assertEqual(r.status, 200, r)

    def test_not_found(self):
        # A well-formed token of a sandbox that does not exist (or ended).
        gone = "sbx_doesnotexist0000000"
        self.assertError(interp("GET", "/contexts", gone), 404, "not_found")
        # Another subject's key sent along: the sandbox is not theirs.
        _, key, _ = sp.create_key()
        r = interp("GET", "/contexts", self.sid, extra={"X-API-Key": key})
        self.assertError(r, 404, "not_found")
        r = interp("GET", "/contexts", self.sid,
                   extra={"X-API-Key": sp.API_KEY})
        self.assertEqual(r.status, 200, r)

    def test_internal_routes_are_not_reachable(self):
        for path in ("/_sp/interp/exe_x/events", "/_sp/family/interp",
                     "/_sp/family/interp/execute"):
            with self.subTest(path=path):
                r = call("GET", path)
                self.assertEqual(r.status, 404, r)

    def test_answers_say_the_family(self):
        r = interp("GET", "/contexts", self.sid)
        self.assertEqual(r.headers.get("X-Sandpipe-Family"), "interp")
