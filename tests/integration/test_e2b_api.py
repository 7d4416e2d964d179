"""test_e2b_api.py: E2B's wire protocol over raw HTTP, for what the
official SDK never sends (test_e2b_sdk.py drives the SDK): the control
plane's errors and shared paths (both field sets, both error envelopes),
the data plane's authorization (no, a wrong or another sandbox's token,
another key's sandbox, a deleted sandbox), paths that try to leave the
sandbox, malformed Connect envelopes and JSON, the exact frames of a
process stream and of WatchDir, octet-stream and gzip uploads (a gzip bomb
refused), gzip'd reads, signed file URLs (the sandbox's host only).
Sandboxes of the host template (fast)."""
import base64
import gzip
import hashlib
import json
import struct
import threading
import time
import unittest

import sbx_util
import sp
from sbx_util import call


def envd_headers(sid, token=None, extra=None):
    h = {"E2b-Sandbox-Id": sid, "E2b-Sandbox-Port": "49983"}
    if token is not None:
        h["X-Access-Token"] = token
    h.update(extra or {})
    return h


def envelope(msg, flag=0, length=None):
    data = json.dumps(msg).encode() if not isinstance(msg, bytes) else msg
    n = len(data) if length is None else length
    return struct.pack(">BI", flag, n) + data


def frames(body):
    """The Connect envelopes of a stream body: [(flag, parsed JSON)]."""
    out, i = [], 0
    while i < len(body):
        flag, n = struct.unpack(">BI", body[i:i + 5])
        out.append((flag, json.loads(body[i + 5:i + 5 + n])))
        i += 5 + n
    return out


class E2BCase(sbx_util.SbxCase):
    def e2b_sandbox(self, key=None, **body):
        body.setdefault("templateID", "host")
        # E2B's default is internet on; these tests need none (faster).
        body.setdefault("allow_internet_access", False)
        r = call("POST", "/v2/sandboxes", body, key=key, timeout=60)
        self.assertEqual(r.status, 201, r)
        doc = r.json
        self.addCleanup(self.delete_quietly, doc["sandboxID"], key)
        return doc

    @classmethod
    def class_sandbox(cls, **body):
        """One sandbox of the host template for the class: cls.sid, cls.tok
        (its envd token); deleted after the class."""
        r = call("POST", "/v2/sandboxes", {"templateID": "host", **body},
                 timeout=60)
        if r.status != 201:
            raise AssertionError(f"could not create a sandbox: {r!r}")
        cls.sid, cls.tok = r.json["sandboxID"], r.json["envdAccessToken"]
        cls.addClassCleanup(cls.delete_quietly, cls.sid)

    def rpc(self, sid, token, method, msg, stream=False, extra=None):
        ctype = "application/connect+json" if stream else "application/json"
        body = envelope(msg) if stream else json.dumps(msg).encode()
        h = envd_headers(sid, token, {"Content-Type": ctype,
                                      "Connect-Protocol-Version": "1",
                                      **(extra or {})})
        return sp.request("POST", f"/{method}", body=body, headers=h,
                          timeout=60, patient=False)

    def assertConnectError(self, r, status, code):
        self.assertEqual(r.status, status, r)
        doc = r.json
        self.assertEqual(doc.get("code"), code, r)
        self.assertIsInstance(doc.get("message"), str, r)

    def assertStreamError(self, r, code):
        """A streaming call refused: 200, only the end frame, its error."""
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["Content-Type"], "application/connect+json")
        fr = frames(r.body)
        self.assertEqual(len(fr), 1, r)
        self.assertEqual(fr[0][0], 2, r)
        self.assertEqual(fr[0][1]["error"]["code"], code, r)
        self.assertIsInstance(fr[0][1]["error"]["message"], str, r)


class ControlPlaneTest(E2BCase):
    def test_create_answers_both_field_sets_and_tokens(self):
        doc = self.e2b_sandbox(metadata={"k": "v"}, timeout=90)
        self.assertEqual(doc["sandboxID"], doc["id"])
        self.assertEqual(doc["templateID"], "host")
        self.assertRegex(doc["envdVersion"], r"^\d+\.\d+\.\d+$")
        self.assertEqual(len(doc["envdAccessToken"]), 43)
        self.assertNotEqual(doc["envdAccessToken"],
                            doc["trafficAccessToken"])
        self.assertIsNone(doc["domain"])
        self.assertEqual(doc["metadata"], {"k": "v"})
        r = call("GET", f"/sandboxes/{doc['sandboxID']}")
        self.assertEqual(r.status, 200, r)
        got = r.json
        for f in ("sandboxID", "templateID", "startedAt", "endAt", "state",
                  "cpuCount", "memoryMB", "diskSizeMB", "envdVersion",
                  "clientID", "metadata", "id", "status", "limits"):
            self.assertIn(f, got)
        self.assertEqual(got["state"], "running")
        # The tokens are never in a plain read.
        self.assertNotIn("envdAccessToken", got)

    def test_network_defaults_are_e2bs(self):
        r = call("POST", "/v2/sandboxes", {"templateID": "host"}, timeout=60)
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.delete_quietly, r.json["sandboxID"], None)
        got = call("GET", f"/sandboxes/{r.json['sandboxID']}").json
        self.assertTrue(got["network"]["internet"], got["network"])
        self.assertTrue(got["public"])
        self.assertTrue(got["allowInternetAccess"])
        doc = self.e2b_sandbox(network={"allowPublicTraffic": False})
        got = call("GET", f"/sandboxes/{doc['sandboxID']}").json
        self.assertFalse(got["network"]["internet"], got["network"])
        self.assertFalse(got["public"])
        doc = self.e2b_sandbox(allow_internet_access=True,
                               network={"allowOut": ["203.0.113.7/32"],
                                        "denyOut": ["203.0.113.8/32"]})
        got = call("GET", f"/sandboxes/{doc['sandboxID']}").json
        self.assertEqual(len(got["network"]["allow_out"]), 1, got["network"])
        self.assertEqual(len(got["network"]["deny_out"]), 1, got["network"])
        for body in ({"allow_internet_access": "yes"},
                     {"network": "open"}, {"network": [True]},
                     {"network": {"allowPublicTraffic": "yes"}},
                     {"network": {"allowOut": ["300.1.2.3/8"]}},
                     {"network": {"allowOut": "203.0.113.7"}}):
            body["templateID"] = "host"
            self.assertError(call("POST", "/v2/sandboxes", body), 400)

    def test_template_names_and_bad_bodies(self):
        r = call("POST", "/v2/sandboxes", {"templateID": "no-such-tpl"})
        self.assertError(r, 404, "not_found")
        self.assertEqual(r.json["code"], 404)
        for body in ({"templateID": 7}, {"timeout": "x"},
                     {"templateID": "host", "envVars": {"1x": "y"}},
                     {"templateID": "host", "metadata": []}):
            r = call("POST", "/v2/sandboxes", body)
            self.assertError(r, 400)
        r = sp.request("POST", "/v2/sandboxes", body=b"{nope",
                       headers=sbx_util.headers(
                           extra={"Content-Type": "application/json"}))
        self.assertError(r, 400, "invalid_json")

    def test_another_keys_sandbox_is_not_found_everywhere(self):
        doc = self.e2b_sandbox()
        sid = doc["sandboxID"]
        _, other, _ = sp.create_key()
        for method, path, body in (
                ("GET", f"/sandboxes/{sid}", None),
                ("DELETE", f"/sandboxes/{sid}", None),
                ("POST", f"/sandboxes/{sid}/timeout", {"timeout": 30}),
                ("POST", f"/sandboxes/{sid}/pause", {}),
                ("GET", f"/sandboxes/{sid}/metrics", None),
                ("POST", f"/v2/sandboxes/{sid}/connect", {})):
            r = call(method, path, body, key=other)
            self.assertError(r, 404, "not_found")
            self.assertEqual(r.json["code"], 404)
        self.assertEqual(call("GET", "/v2/sandboxes", key=other).json, [])
        r = call("GET", f"/sandboxes/{sid}")
        self.assertEqual(r.status, 200, r)

    def test_list_pages_and_filters(self):
        tag = str(sbx_util.unique_marker())
        ids = sorted(self.e2b_sandbox(metadata={"tag": tag})["sandboxID"]
                     for _ in range(3))
        seen, token = [], None
        for _ in range(5):
            q = f"?metadata={sbx_util.q('tag=' + sbx_util.q(tag))}&limit=2"
            r = call("GET", "/v2/sandboxes" + q +
                     (f"&nextToken={token}" if token else ""))
            self.assertEqual(r.status, 200, r)
            seen += [s["sandboxID"] for s in r.json]
            token = r.headers.get("X-Next-Token")
            if not token:
                break
        self.assertEqual(seen, ids)
        r = call("GET", "/v2/sandboxes?state=paused&metadata=" +
                 sbx_util.q("tag=" + tag))
        self.assertEqual(r.json, [])
        # A key or value that decodes to a NUL is malformed (the filter's
        # own decoding once kept "%00" as it was, and read "% 41" as "A1").
        for q in ("limit=0", "limit=x", "nextToken=..", "metadata=novalue",
                  "metadata=" + sbx_util.q("tag=%00"),
                  "metadata=" + sbx_util.q("%00=x")):
            self.assertError(call("GET", "/v2/sandboxes?" + q), 400)

    def test_connect_resumes_and_only_extends(self):
        doc = self.e2b_sandbox(timeout=120)
        sid = doc["sandboxID"]
        self.assertEqual(call("POST", f"/sandboxes/{sid}/pause", {}).status,
                         200)
        r = call("POST", f"/v2/sandboxes/{sid}/connect", {"timeout": 10})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["state"], "running")
        self.assertGreater(r.json["timeout"], 60)  # not shortened
        self.assertEqual(r.json["envdAccessToken"], doc["envdAccessToken"])
        r = call("POST", f"/v2/sandboxes/{sid}/connect", {"timeout": 600})
        self.assertGreater(r.json["timeout"], 500)


class DataPlaneAuthTest(E2BCase):
    def test_tokens_are_checked_and_bound_to_their_sandbox(self):
        a, b = self.e2b_sandbox(), self.e2b_sandbox()
        sid = a["sandboxID"]
        r = sp.get("/health", headers=envd_headers(sid, a["envdAccessToken"]))
        self.assertEqual(r.status, 204, r)
        for tok in (None, "", "x" * 43, b["envdAccessToken"],
                    a["trafficAccessToken"], sp.API_KEY):
            r = sp.get("/health", headers=envd_headers(sid, tok))
            self.assertError(r, 401, "unauthenticated")
            r = self.rpc(sid, tok, "process.Process/List", {})
            self.assertConnectError(r, 401, "unauthenticated")
            r = sp.get("/files?path=/workspace",
                       headers=envd_headers(sid, tok))
            self.assertError(r, 401, "unauthenticated")
        # An API key alone opens nothing on the data plane.
        r = sp.get("/health", headers=envd_headers(
            sid, extra={"X-API-Key": sp.API_KEY}))
        self.assertError(r, 401, "unauthenticated")

    def test_a_deleted_sandbox_is_gone_for_its_token(self):
        doc = self.e2b_sandbox()
        sid, tok = doc["sandboxID"], doc["envdAccessToken"]
        self.assertEqual(call("DELETE", f"/sandboxes/{sid}").status, 204)
        r = sp.get("/health", headers=envd_headers(sid, tok))
        self.assertEqual(r.status, 502, r)
        r = self.rpc(sid, tok, "process.Process/List", {})
        self.assertConnectError(r, 404, "not_found")
        r = self.rpc(sid, tok, "process.Process/Start",
                     {"process": {"cmd": "/bin/true"}}, stream=True)
        self.assertStreamError(r, "not_found")
        r = call("DELETE", f"/sandboxes/{sid}")
        self.assertError(r, 404, "not_found")
        self.assertEqual(r.json["code"], 404)


class ConnectProtocolTest(E2BCase):
    @classmethod
    def setUpClass(cls):
        cls.class_sandbox()

    def test_a_process_stream_frame_by_frame(self):
        r = self.rpc(self.sid, self.tok, "process.Process/Start",
                     {"process": {"cmd": "/bin/sh",
                                  "args": ["-c", "printf 'a\\0b'; exit 3"]},
                      "stdin": False}, stream=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["Content-Type"], "application/connect+json")
        fr = frames(r.body)
        self.assertEqual(fr[0][0], 0)
        pid = fr[0][1]["event"]["start"]["pid"]
        self.assertGreater(pid, 0)
        out = b"".join(base64.b64decode(m["event"]["data"]["stdout"])
                       for f, m in fr if f == 0 and "data" in
                       m.get("event", {}))
        self.assertEqual(out, b"a\0b")
        ends = [m["event"]["end"] for f, m in fr
                if f == 0 and "end" in m.get("event", {})]
        self.assertEqual(ends, [{"exitCode": 3, "exited": True,
                                 "status": "exit status 3",
                                 "error": "exit status 3"}])
        self.assertEqual(fr[-1], (2, {}))

    def test_malformed_envelopes_and_json(self):
        start = "/process.Process/Start"
        ok = {"process": {"cmd": "/bin/true"}}
        base = envd_headers(self.sid, self.tok,
                            {"Content-Type": "application/connect+json"})
        for body in (envelope(ok, flag=1), envelope(ok, length=3),
                     envelope(ok, length=999), b"\0\0", envelope(b"{nope"),
                     envelope(b"[1]"), envelope({"process": 5}),
                     envelope({"process": {"cmd": ""}}),
                     envelope({"process": {"cmd": "x", "args": [1]}}),
                     envelope({"process": {"cmd": "x", "envs": {"a b": "c"}}})):
            r = sp.request("POST", start, body=body, headers=base,
                           patient=False)
            self.assertStreamError(r, "invalid_argument")
        r = sp.request("POST", start, body=json.dumps(ok).encode(),
                       headers=envd_headers(self.sid, self.tok, {
                           "Content-Type": "application/json"}))
        self.assertStreamError(r, "invalid_argument")
        r = self.rpc(self.sid, self.tok, "process.Process/Connect",
                     {"process": {"pid": 99999}}, stream=True)
        self.assertStreamError(r, "not_found")
        r = self.rpc(self.sid, None, "process.Process/Connect",
                     {"process": {"pid": 1}}, stream=True)
        self.assertStreamError(r, "unauthenticated")
        r = sp.request("POST", "/process.Process/List", body=b"{nope",
                       headers=envd_headers(self.sid, self.tok, {
                           "Content-Type": "application/json"}))
        self.assertConnectError(r, 400, "invalid_argument")
        r = self.rpc(self.sid, self.tok, "process.Process/SendInput",
                     {"process": {"pid": 99999}, "input": {"stdin": "aGk="}})
        self.assertConnectError(r, 404, "not_found")
        r = self.rpc(self.sid, self.tok, "process.Process/SendSignal",
                     {"process": {"pid": "1x"}, "signal": "SIGNAL_SIGKILL"})
        self.assertConnectError(r, 404, "not_found")
        r = self.rpc(self.sid, self.tok, "process.Process/Nope", {})
        self.assertEqual(r.status, 404, r)

    def test_one_rule_for_user_names(self):
        """Basic auth's user and /files' ?username= are the same account
        name, [a-z_][a-z0-9_-]*: a name the one refused, the other did
        not refuse either."""
        self.sh(self.sid, "echo in > /workspace/u")
        h = envd_headers(self.sid, self.tok)
        for user in ("-x", "9x", "Root", "a.b", "a/b", "x" * 33, "%00"):
            r = sp.get("/files?path=/workspace/u&username=" +
                       sbx_util.q(user), headers=h)
            self.assertError(r, 400, "invalid_argument")
            basic = base64.b64encode(user.encode() + b":").decode()
            r = sp.get("/files?path=/workspace/u", headers=envd_headers(
                self.sid, self.tok, {"Authorization": "Basic " + basic}))
            self.assertError(r, 400, "invalid_argument")
        for user in ("user", "root", "_a-1"):
            r = sp.get("/files?path=/workspace/u&username=" + user, headers=h)
            self.assertEqual((r.status, r.body), (200, b"in\n"), (user, r))
            basic = base64.b64encode(user.encode() + b":").decode()
            r = sp.get("/files?path=/workspace/u", headers=envd_headers(
                self.sid, self.tok, {"Authorization": "Basic " + basic}))
            self.assertEqual((r.status, r.body), (200, b"in\n"), (user, r))

    def test_paths_stay_in_the_sandbox(self):
        h = envd_headers(self.sid, self.tok)
        self.sh(self.sid, "ln -s / /workspace/root; ln -s /etc "
                "/workspace/etc; echo in > /workspace/f")
        for path in ("/etc/passwd", "../../etc/passwd", "/proc/1/environ"):
            r = sp.get("/files?path=" + sbx_util.q(path), headers=h)
            self.assertIn(r.status, (400, 404), r)
            self.assertNotIn(b"root:", r.body)
        for path in ("/workspace/root/etc/passwd", "/workspace/etc/passwd"):
            r = sp.get("/files?path=" + sbx_util.q(path), headers=h)
            self.assertError(r, 404, "not_found")
        r = sp.get("/files?path=f", headers=h)
        self.assertEqual((r.status, r.body), (200, b"in\n"))
        body, ctype = sbx_util.multipart(
            [("file", "../../../etc/evil", b"x")])
        r = sp.request("POST", "/files", body=body, headers=envd_headers(
            self.sid, self.tok, {"Content-Type": ctype}))
        self.assertError(r, 400, "invalid_argument")


class StreamHandOverTest(E2BCase):
    """A command that exits at once, run right after its sandbox was made,
    streams its end every time. The relay once ended such a stream after
    its start message only (a backlog that read nothing while the stream's
    last entry, written just after, was its end: about 1 run in 60). A
    few hundred create -> Start -> read cycles, bounded in count and
    time; the sandboxes are deleted on a side thread, as the SDK's users
    do."""
    CYCLES = 300
    BUDGET_S = 180

    def cycle(self, i):
        """One create -> Start -> read: the frames, or None when the
        sandbox was refused before any stream began."""
        r = call("POST", "/v2/sandboxes", {"templateID": "host"}, timeout=60)
        self.assertEqual(r.status, 201, r)
        sid, tok = r.json["sandboxID"], r.json["envdAccessToken"]
        try:
            r = self.rpc(sid, tok, "process.Process/Start",
                         {"process": {"cmd": "/bin/echo", "args": [str(i)]},
                          "stdin": False}, stream=True,
                         extra={"Connect-Timeout-Ms": "60000"})
            self.assertEqual(r.status, 200, r)
            return frames(r.body)
        finally:
            threading.Thread(target=self.delete_quietly, args=(sid,)).start()

    def test_every_quick_stream_has_its_end(self):
        deadline = time.monotonic() + self.BUDGET_S
        done, missing = 0, []
        for i in range(self.CYCLES):
            if time.monotonic() > deadline:
                break
            fr = self.cycle(i)
            done += 1
            self.assertEqual(fr[-1][0], 2, fr)
            if len(fr) == 1:
                continue  # refused up front (an error end), not this bug
            self.assertEqual(fr[0][1]["event"]["start"]["pid"], 1, fr)
            self.assertEqual(fr[-1], (2, {}), fr)
            out = b"".join(base64.b64decode(m["event"]["data"]["stdout"])
                           for f, m in fr[1:-1] if "data" in m["event"])
            ends = [m["event"]["end"] for f, m in fr[1:-1]
                    if "end" in m["event"]]
            if ends != [{"exitCode": 0, "exited": True,
                         "status": "exit status 0"}] or out != b"%d\n" % i:
                missing.append((i, fr))
        self.assertGreaterEqual(done, 50, "too few cycles in the budget")
        self.assertEqual(missing, [], f"{len(missing)} of {done} streams "
                         "lost their output or their end")

class SharedStreamTest(E2BCase):
    """One execution read at the same time by an envd client (Connect
    envelopes) and a native SSE client: each gets its own route's framing
    of the same events (the relay once keyed its topics by stream only,
    and the first reader's framing won)."""

    def test_sse_and_envd_readers_of_one_execution(self):
        doc = self.e2b_sandbox()
        sid, tok = doc["sandboxID"], doc["envdAccessToken"]
        got = {}
        script = ("read go; for i in 1 2 3; do echo line$i; sleep 0.3; done")

        def start():
            got["envd"] = self.rpc(sid, tok, "process.Process/Start",
                                   {"process": {"cmd": "/bin/sh",
                                                "args": ["-c", script]}},
                                   stream=True)
        t = threading.Thread(target=start)
        t.start()
        # The envd reader subscribes first; the process waits for its
        # stdin, so the native reader joins while it runs.
        pids = sbx_util.PREFIX + f"sbx:{sid}:pids"
        self.assertTrue(sp.wait_until(
            lambda: "".join(sbx_util.redis("HGET", pids, "1")), 20))
        exe = json.loads(sbx_util.redis("HGET", pids, "1")[0])["exe"]

        def native():
            got["sse"] = sp.get(f"/executions/{exe}/events",
                                headers=sbx_util.headers(), timeout=30)
        n = threading.Thread(target=native)
        n.start()
        # SendInput without input is refused; it once closed the stdin
        # (CloseStdin's job), and the input below then had nowhere to go.
        r = self.rpc(sid, tok, "process.Process/SendInput",
                     {"process": {"pid": 1}})
        self.assertConnectError(r, 400, "invalid_argument")
        r = self.rpc(sid, tok, "process.Process/SendInput",
                     {"process": {"pid": 1},
                      "input": {"stdin": base64.b64encode(b"go\n").decode()}})
        self.assertEqual(r.status, 200, r)
        t.join(60)
        n.join(60)
        fr = frames(got["envd"].body)
        out = b"".join(base64.b64decode(m["event"]["data"]["stdout"])
                       for f, m in fr if f == 0 and "data" in m["event"])
        self.assertEqual(out, b"line1\nline2\nline3\n")
        self.assertEqual(fr[-1], (2, {}))
        self.assertIn("end", fr[-2][1]["event"])
        r = got["sse"]
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["Content-Type"].startswith(
            "text/event-stream"), r)
        self.assertNotIn(b"\x00", r.body)
        events = [json.loads(line[5:]) for line in r.body.split(b"\n")
                  if line.startswith(b"data:")]
        text = "".join(e.get("data", "") for e in events
                       if e.get("type") == "stdout")
        self.assertEqual(text, "line1\nline2\nline3\n")
        self.assertEqual(events[-1]["type"], "result")
        self.assertEqual(events[-1]["executionId"], exe)


class FilesystemTest(E2BCase):
    """filesystem.Filesystem's unary RPCs: EntryInfo, ListDir's depth,
    MakeDir's already_exists, Move, Remove's RemoveAll, and every path
    (a Move's destination too) kept in the sandbox."""

    @classmethod
    def setUpClass(cls):
        cls.class_sandbox()

    def fs(self, method, msg):
        return self.rpc(self.sid, self.tok, "filesystem.Filesystem/" + method,
                        msg)

    def test_stat_list_mkdir_move_remove(self):
        self.sh(self.sid, "mkdir -p /workspace/t/a/b && echo hi > "
                "/workspace/t/a/f && chmod 640 /workspace/t/a/f && "
                "ln -s f /workspace/t/a/l")
        r = self.fs("Stat", {"path": "t/a/f"})
        self.assertEqual(r.status, 200, r)
        e = r.json["entry"]
        self.assertEqual((e["name"], e["type"], e["path"], e["size"]),
                         ("f", "FILE_TYPE_FILE", "/workspace/t/a/f", 3))
        self.assertEqual((e["mode"], e["permissions"]), (0o640, "-rw-r-----"))
        self.assertRegex(e["modifiedTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIn(e["owner"], ("user", "root"))
        e = self.fs("Stat", {"path": "/workspace/t/a/l"}).json["entry"]
        self.assertEqual((e["type"], e["symlinkTarget"]),
                         ("FILE_TYPE_SYMLINK", "f"))
        self.assertConnectError(self.fs("Stat", {"path": "t/nope"}), 404,
                                "not_found")
        r = self.fs("ListDir", {"path": "/workspace/t", "depth": 1})
        self.assertEqual([x["path"] for x in r.json["entries"]],
                         ["/workspace/t/a"])
        r = self.fs("ListDir", {"path": "/workspace/t", "depth": 3})
        self.assertEqual(sorted(x["path"] for x in r.json["entries"]),
                         ["/workspace/t/a", "/workspace/t/a/b",
                          "/workspace/t/a/f", "/workspace/t/a/l"])
        self.assertConnectError(self.fs("ListDir", {"path": "t/nope"}), 404,
                                "not_found")
        r = self.fs("MakeDir", {"path": "t/x/y/z"})
        self.assertEqual(r.json["entry"]["type"], "FILE_TYPE_DIRECTORY", r)
        self.assertConnectError(self.fs("MakeDir", {"path": "t/x/y/z"}), 409,
                                "already_exists")
        r = self.fs("Move", {"source": "t/a/f", "destination": "t/m/g"})
        self.assertEqual(r.json["entry"]["path"], "/workspace/t/m/g", r)
        self.assertEqual(self.sh(self.sid, "cat /workspace/t/m/g")["stdout"],
                         "hi\n")
        self.assertConnectError(self.fs("Move", {"source": "t/a/f",
                                                 "destination": "t/q"}),
                                404, "not_found")
        self.assertEqual(self.fs("Remove", {"path": "t"}).status, 200)
        self.assertEqual(self.fs("Remove", {"path": "t"}).json, {})
        self.assertConnectError(self.fs("Stat", {"path": "t"}), 404,
                                "not_found")

    def test_paths_stay_in_the_sandbox(self):
        self.sh(self.sid, "ln -s / /workspace/up; ln -s /etc /workspace/e; "
                "echo keep > /workspace/keep")
        # Outside every root of the files API: refused, whatever the call.
        for path in ("/etc", "/etc/passwd", "../../etc", "/proc/1",
                     "/workspace/../etc/passwd"):
            for method, msg in (
                    ("Stat", {"path": path}), ("ListDir", {"path": path}),
                    ("Remove", {"path": path}),
                    ("MakeDir", {"path": path + "/x"}),
                    ("Move", {"source": "keep", "destination": path + "/k"}),
                    ("Move", {"source": path, "destination": "stolen"})):
                r = self.fs(method, msg)
                self.assertIn(r.status, (400, 404), (method, path, r))
                self.assertNotIn(b"root:", r.body)
        # Links to / and /etc resolve in the workspace (RESOLVE_IN_ROOT):
        # what they lead to is the workspace's, never the host's.
        r = self.fs("Stat", {"path": "/workspace/e/passwd"})
        self.assertConnectError(r, 404, "not_found")
        r = self.fs("Move", {"source": "keep",
                             "destination": "/workspace/up/etc/passwd"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.sh(self.sid, "cat /workspace/etc/passwd")
                         ["stdout"], "keep\n")
        with open("/etc/passwd", "rb") as f:
            self.assertIn(b"root:", f.read())
        r = self.fs("ListDir", {"path": "/workspace/up/proc"})
        self.assertConnectError(r, 404, "not_found")
        for msg in ({}, {"path": 5}, {"path": "x", "depth": -1},
                    {"path": "x", "depth": "deep"}):
            self.assertConnectError(self.fs("ListDir", msg), 400,
                                    "invalid_argument")
        self.assertConnectError(self.fs("Move", {"source": "keep"}), 400,
                                "invalid_argument")


class WatchDirTest(E2BCase):
    """WatchDir's frames: start first, then one filesystem message per
    change named relative to the directory (a rename is RENAME of the old
    name and CREATE of the new one), the end frame when the watch ends
    (deleted by the native API, or its sandbox deleted); paths that leave
    the sandbox are refused in the stream's end frame."""

    def watch_in_thread(self, sid, tok, msg):
        got = {}

        def run():
            got["r"] = self.rpc(sid, tok, "filesystem.Filesystem/WatchDir",
                                msg, stream=True)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, got

    def wait_watch(self, sid):
        """The id of the sandbox's one watch, once the helper has it."""
        for _ in range(200):
            r = call("GET", f"/sandboxes/{sid}/watches")
            if r.status == 200 and r.json["watches"]:
                return r.json["watches"][0]["watch_id"]
            time.sleep(0.05)
        self.fail("the WatchDir's watch never appeared")

    def test_events_then_the_end_frame(self):
        doc = self.e2b_sandbox()
        sid, tok = doc["sandboxID"], doc["envdAccessToken"]
        self.sh(sid, "mkdir -p /workspace/w/sub")
        t, got = self.watch_in_thread(sid, tok, {"path": "w",
                                                 "recursive": True})
        wid = self.wait_watch(sid)
        self.sh(sid, "cd /workspace/w && echo 1 > a && mv a b && "
                "echo 2 > sub/c && rm b")
        for _ in range(200):  # until the helper wrote the last change
            r = call("GET", f"/sandboxes/{sid}/watches/{wid}/events?since=0")
            if any(e.get("type") == "remove" for e in r.json["events"]):
                break
            time.sleep(0.05)
        self.assertEqual(call("DELETE", f"/sandboxes/{sid}/watches/{wid}")
                         .status, 204)
        t.join(30)
        self.assertFalse(t.is_alive(), "the stream did not end")
        r = got["r"]
        self.assertEqual((r.status, r.headers["Content-Type"]),
                         (200, "application/connect+json"), r)
        fr = frames(r.body)
        self.assertEqual(fr[0], (0, {"start": {}}))
        self.assertEqual(fr[-1], (2, {}))
        evs = [(m["filesystem"]["type"], m["filesystem"]["name"])
               for f, m in fr if f == 0 and "filesystem" in m]
        for want in (("EVENT_TYPE_CREATE", "a"), ("EVENT_TYPE_WRITE", "a"),
                     ("EVENT_TYPE_RENAME", "a"), ("EVENT_TYPE_CREATE", "b"),
                     ("EVENT_TYPE_CREATE", "sub/c"),
                     ("EVENT_TYPE_REMOVE", "b")):
            self.assertIn(want, evs)
        self.assertLess(evs.index(("EVENT_TYPE_RENAME", "a")),
                        evs.index(("EVENT_TYPE_CREATE", "b")))
        # Every other message is one WatchDirResponse case.
        for f, m in fr[1:-1]:
            self.assertEqual(f, 0)
            self.assertLessEqual(set(m), {"filesystem", "keepalive"}, m)

    def test_a_deleted_sandbox_ends_the_stream(self):
        doc = self.e2b_sandbox()
        sid, tok = doc["sandboxID"], doc["envdAccessToken"]
        t, got = self.watch_in_thread(sid, tok, {"path": "/workspace"})
        self.wait_watch(sid)
        self.assertEqual(call("DELETE", f"/sandboxes/{sid}", timeout=60)
                         .status, 204)
        t.join(30)
        self.assertFalse(t.is_alive(), "the stream did not end")
        fr = frames(got["r"].body)
        self.assertEqual(fr[0], (0, {"start": {}}))
        self.assertEqual(fr[-1][0], 2)

    def test_refused_watches(self):
        doc = self.e2b_sandbox()
        sid, tok = doc["sandboxID"], doc["envdAccessToken"]
        self.sh(sid, "ln -s /etc /workspace/etc; echo x > /workspace/f")
        method = "filesystem.Filesystem/WatchDir"
        for path in ("/etc", "../../etc", "/proc/1", "/workspace/../etc",
                     "/workspace/nope"):
            r = self.rpc(sid, tok, method, {"path": path}, stream=True)
            self.assertEqual(r.status, 200, r)
            fr = frames(r.body)
            self.assertEqual(len(fr), 1, (path, r))
            self.assertIn(fr[0][1]["error"]["code"],
                          ("invalid_argument", "not_found"), (path, r))
        for msg in ({}, {"path": 5}, {"path": "x", "recursive": "yes"}):
            r = self.rpc(sid, tok, method, msg, stream=True)
            self.assertStreamError(r, "invalid_argument")
        r = self.rpc(sid, "wrong", method, {"path": "/workspace"}, stream=True)
        self.assertStreamError(r, "unauthenticated")
        # The link leads to the workspace's own etc, which does not exist.
        r = self.rpc(sid, tok, method, {"path": "/workspace/etc"},
                     stream=True)
        self.assertStreamError(r, "not_found")
        self.assertEqual(call("GET", f"/sandboxes/{sid}/watches")
                         .json["watches"], [])
        # The relay's internal location is not reachable from outside.
        r = sp.get(f"/_sp/envd/{sid}/watch/wch_x/events",
                   headers=envd_headers(sid, tok))
        self.assertEqual(r.status, 404, r)


class UploadTest(E2BCase):
    """POST /files with application/octet-stream (envd 0.5.7): one file at
    ?path=, optionally Content-Encoding gzip, inflated within the files
    API's maximum (a gzip bomb: 413 and nothing written); GET /files
    gzip'd for Accept-Encoding gzip."""
    FILE_MAX = 64 * 1024 * 1024

    @classmethod
    def setUpClass(cls):
        cls.class_sandbox(allow_internet_access=False)

    def post(self, path, body, extra=None):
        h = envd_headers(self.sid, self.tok,
                         {"Content-Type": "application/octet-stream",
                          **(extra or {})})
        url = "/files" if path is None else "/files?path=" + sbx_util.q(path)
        return sp.request("POST", url, body=body, headers=h, timeout=60)

    def test_octet_stream_and_gzip(self):
        r = self.post("raw.bin", b"\0\1raw")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, [{"name": "raw.bin", "type": "file",
                                   "path": "/workspace/raw.bin"}])
        self.assertEqual(sp.get("/files?path=raw.bin", headers=envd_headers(
            self.sid, self.tok)).body, b"\0\1raw")
        data = b"compress me " * 5000
        r = self.post("/workspace/z/g.txt", gzip.compress(data),
                      {"Content-Encoding": "gzip"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json[0]["path"], "/workspace/z/g.txt")
        got = sp.get("/files?path=z/g.txt", headers=envd_headers(
            self.sid, self.tok, {"Accept-Encoding": "gzip"}))
        self.assertEqual(got.headers["Content-Encoding"], "gzip", got)
        self.assertLess(len(got.body), len(data) // 10)
        self.assertEqual(gzip.decompress(got.body), data)
        plain = sp.get("/files?path=z/g.txt", headers=envd_headers(
            self.sid, self.tok, {"Accept-Encoding": "br, gzip;q=0"}))
        self.assertIsNone(plain.headers["Content-Encoding"])
        self.assertEqual(plain.body, data)
        # Two gzip members are one file, as gzip(1) reads them.
        r = self.post("two", gzip.compress(b"ab") + gzip.compress(b"cd"),
                      {"Content-Encoding": "gzip"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.sh(self.sid, "cat /workspace/two")["stdout"],
                         "abcd")
        self.assertEqual(self.post("empty", b"").status, 200)

    def test_a_gzip_bomb_is_refused_and_writes_nothing(self):
        # 100 KB that inflate to one byte more than a file may have.
        bomb = gzip.compress(b"\0" * (self.FILE_MAX + 1), 9)
        self.assertLess(len(bomb), 1024 * 1024)
        r = self.post("bomb", bomb, {"Content-Encoding": "gzip"})
        self.assertError(r, 413, "payload_too_large")
        self.assertEqual(self.sh(self.sid, "ls /workspace/bomb 2>&1; true")
                         ["stdout"].count("No such file"), 1)
        r = self.post("fits", gzip.compress(b"\0" * self.FILE_MAX, 9),
                      {"Content-Encoding": "gzip"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.sh(self.sid, "stat -c %s /workspace/fits")
                         ["stdout"], f"{self.FILE_MAX}\n")

    def test_bad_bodies_and_paths(self):
        gz = gzip.compress(b"hello")
        for body in (b"not gzip", gz[:-4], gz[:10], gz + b"junk", b""):
            r = self.post("bad", body, {"Content-Encoding": "gzip"})
            self.assertError(r, 400, "invalid_argument")
        r = self.post("bad", b"x", {"Content-Encoding": "br"})
        self.assertError(r, 415, "unsupported_media_type")
        self.assertError(self.post(None, b"x"), 400, "invalid_argument")
        self.assertEqual(self.sh(self.sid, "ls /workspace/bad 2>&1; true")
                         ["stdout"].count("No such file"), 1)
        self.sh(self.sid, "ln -sf /etc /workspace/etc")
        for path in ("/etc/evil", "../../../etc/evil", "/proc/1/x"):
            r = self.post(path, gzip.compress(b"evil"),
                          {"Content-Encoding": "gzip"})
            self.assertIn(r.status, (400, 404), (path, r))
        r = self.post("/workspace/etc/evil", b"in the workspace")
        self.assertIn(r.status, (200, 404), r)
        self.assertFalse(__import__("os").path.exists("/etc/evil"))
        r = sp.request("POST", "/files?path=x", body=b"x",
                       headers=envd_headers(self.sid, None, {
                           "Content-Type": "application/octet-stream"}))
        self.assertError(r, 401, "unauthenticated")


def signed(path, op, token, user="", exp=None):
    """The query of an E2B signed file URL (the SDK's signature.ts)."""
    raw = f"{path}:{op}:{user}:{token}" + ("" if exp is None else f":{exp}")
    sig = "v1_" + base64.b64encode(
        hashlib.sha256(raw.encode()).digest()).decode().rstrip("=")
    q = f"path={sbx_util.q(path)}&signature={sbx_util.q(sig)}"
    if user:
        q += f"&username={sbx_util.q(user)}"
    if exp is not None:
        q += f"&signature_expiration={exp}"
    return q


class SignedUrlTest(E2BCase):
    """uploadUrl/downloadUrl: /files with a signature and no header at
    all, on the sandbox's host 49983-<id>.<domain> (the test stack's
    domain is localhost); on one origin a clear 400."""

    @classmethod
    def setUpClass(cls):
        cls.class_sandbox(allow_internet_access=False)

    def host(self, sid=None):
        return {"Host": f"49983-{sid or self.sid}.localhost"}

    def test_read_and_write_by_signature(self):
        exp = int(time.time()) + 60
        r = sp.request("POST", "/files?" + signed("s/up.txt", "write",
                                                  self.tok, exp=exp),
                       body=b"signed", headers={
                           **self.host(),
                           "Content-Type": "application/octet-stream"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json[0]["path"], "/workspace/s/up.txt")
        body, ctype = sbx_util.multipart([("file", "m.txt", b"multi")])
        r = sp.request("POST", "/files?" + signed("s/m.txt", "write",
                                                  self.tok),
                       body=body, headers={**self.host(),
                                           "Content-Type": ctype})
        self.assertEqual(r.status, 200, r)
        r = sp.get("/files?" + signed("s/up.txt", "read", self.tok),
                   headers=self.host())
        self.assertEqual((r.status, r.body), (200, b"signed"), r)
        r = sp.get("/files?" + signed("/workspace/s/m.txt", "read", self.tok,
                                      user="user", exp=exp),
                   headers=self.host())
        self.assertEqual((r.status, r.body), (200, b"multi"), r)

    def test_bad_signatures_are_refused(self):
        self.sh(self.sid, "echo secret > /workspace/f")
        other = self.e2b_sandbox()
        good = signed("f", "read", self.tok)
        now = int(time.time())
        for q in (good.replace("path=f", "path=g"),      # another path
                  good + "x",                            # tampered
                  signed("f", "write", self.tok),        # not a read's
                  signed("f", "read", other["envdAccessToken"]),
                  signed("f", "read", self.tok, exp=now - 5),  # expired
                  signed("f", "read", self.tok, exp=now + 60).replace(
                      f"signature_expiration={now + 60}",
                      f"signature_expiration={now + 3600}"),
                  signed("f", "read", self.tok, exp="soon"),
                  signed("f", "read", self.tok, user="root"
                         ).replace("&username=root", ""),
                  "path=f&signature=", "path=f&signature=v1_" + "A" * 200):
            r = sp.get("/files?" + q, headers=self.host())
            self.assertError(r, 401, "unauthenticated")
            self.assertNotIn(b"secret", r.body)
        # Another sandbox's host with this one's signature.
        r = sp.get("/files?" + good, headers=self.host(other["sandboxID"]))
        self.assertError(r, 401, "unauthenticated")
        r = sp.request("POST", "/files?" + good, body=b"x", headers={
            **self.host(), "Content-Type": "application/octet-stream"})
        self.assertError(r, 401, "unauthenticated")
        # A token sent with it wins: a wrong one is refused.
        r = sp.get("/files?" + good, headers={**self.host(),
                                              "X-Access-Token": "nope"})
        self.assertError(r, 401, "unauthenticated")
        r = sp.get("/files?" + good, headers=self.host())
        self.assertEqual((r.status, r.body), (200, b"secret\n"), r)

    def test_paths_stay_in_the_sandbox_and_one_origin_is_clear(self):
        self.sh(self.sid, "ln -sf / /workspace/up")
        for path in ("/etc/passwd", "../../etc/passwd", "/workspace/up/etc/"
                     "passwd", "/proc/1/environ"):
            r = sp.get("/files?" + signed(path, "read", self.tok),
                       headers=self.host())
            self.assertIn(r.status, (400, 404), (path, r))
            self.assertNotIn(b"root:", r.body)
            r = sp.request("POST", "/files?" + signed(path, "write",
                                                      self.tok),
                           body=b"evil", headers={
                               **self.host(),
                               "Content-Type": "application/octet-stream"})
            self.assertIn(r.status, (200, 400, 404), (path, r))
        with open("/etc/passwd", "rb") as f:
            self.assertIn(b"root:", f.read())
        # One origin: no sandbox named; answered at once.
        r = sp.get("/files?" + signed("f", "read", self.tok), timeout=5)
        self.assertError(r, 400, "invalid_argument")
        self.assertIn(b"49983-", r.body)


if __name__ == "__main__":
    unittest.main()
