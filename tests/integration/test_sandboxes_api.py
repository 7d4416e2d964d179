"""test_sandboxes_api.py: the life cycle of sandboxes through nginx, the
handler and the helper: create (defaults, clamped limits, refused input),
list and get (own only, with live usage), extend, delete, expiry, the
per-subject maximum, chat-session sandboxes and ownership (another
subject's ids are 404)."""
import re
import threading
import uuid

import sp
import sbx_util as su
from sbx_util import call

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]00:00)$")


class LifecycleTest(su.SbxCase):
    @classmethod
    def setUpClass(cls):
        cls.other_key = sp.create_key()[1]

    def test_create_defaults(self):
        doc = self.new_sandbox()
        self.assertRegex(doc["id"], r"^sbx_[A-Za-z0-9_-]{1,60}$")
        self.assertEqual(doc["status"], "running")
        self.assertRegex(doc["created_at"], RFC3339)
        self.assertRegex(doc["expires_at"], RFC3339)
        self.assertGreater(doc["timeout"], su.DEF_TIMEOUT - 30)
        self.assertLessEqual(doc["timeout"], su.DEF_TIMEOUT)
        self.assertEqual(doc["limits"], {
            "memory_mb": su.DEF_MEMORY, "cpus": su.DEF_CPUS_MILLI / 1000,
            "pids": su.DEF_PIDS, "disk_mb": su.DEF_DISK})
        self.assertEqual(doc["network"], {"internet": False, "allow_out": [],
                                          "deny_out": []})
        self.assertEqual(doc["metadata"], {})
        # It works: a first command runs.
        self.assertEqual(self.ok(doc["id"], "echo hi"), "hi\n")

    def test_create_with_everything(self):
        doc = self.new_sandbox({
            "timeout": 120, "network": False, "env": {"FOO": "bar"},
            "metadata": {"owner": "tests", "n": [1, 2]},
            "limits": {"memory_mb": 128, "cpus": 0.5, "pids": 64,
                       "disk_mb": 32}})
        self.assertEqual(doc["limits"], {"memory_mb": 128, "cpus": 0.5,
                                         "pids": 64, "disk_mb": 32})
        self.assertEqual(doc["metadata"], {"owner": "tests", "n": [1, 2]})
        self.assertGreater(doc["timeout"], 90)
        self.assertLessEqual(doc["timeout"], 120)
        self.assertEqual(self.ok(doc["id"], "echo $FOO"), "bar\n")
        # The workspace has the size asked for.
        out = self.ok(doc["id"], ["df", "-k", "/workspace"])
        size_kb = int(out.splitlines()[-1].split()[1])
        self.assertLessEqual(size_kb, 32 * 1024)
        self.assertGreater(size_kb, 16 * 1024)

    def test_limits_clamped_to_maxima(self):
        doc = self.new_sandbox({"limits": {
            "memory_mb": 10 ** 9, "pids": 10 ** 6, "disk_mb": 10 ** 9,
            "cpus": 1000}})
        self.assertEqual(doc["limits"], {
            "memory_mb": su.MAX_MEMORY, "pids": su.MAX_PIDS,
            "disk_mb": su.MAX_DISK, "cpus": su.MAX_CPUS_MILLI / 1000})
        got = self.get_ok_sandbox(doc["id"])
        self.assertEqual(got["limits"], doc["limits"])

    def get_ok_sandbox(self, sid, key=None):
        r = call("GET", f"/sandboxes/{sid}", key=key)
        self.assertEqual(r.status, 200, r)
        return r.json

    def test_invalid_input(self):
        cases = [
            ({"limits": {"memory_mb": -1}}, "memory_mb"),
            ({"limits": {"memory_mb": 0}}, "memory_mb"),
            ({"limits": {"memory_mb": "64"}}, "memory_mb"),
            ({"limits": {"memory_mb": 1.5}}, "memory_mb"),
            ({"limits": {"pids": True}}, "pids"),
            ({"limits": {"disk_mb": None, "pids": -5}}, "pids"),
            ({"limits": {"disk_mb": [1]}}, "disk_mb"),
            ({"limits": {"cpus": 0}}, "cpus"),
            ({"limits": {"cpus": -1}}, "cpus"),
            ({"limits": {"cpus": "2"}}, "cpus"),
            ({"limits": {"cpus": 100000}}, "cpus"),
            ({"limits": "big"}, "limits"),
            ({"limits": [1]}, "limits"),
            ({"timeout": 0}, "timeout"),
            ({"timeout": -3}, "timeout"),
            ({"timeout": "60"}, "timeout"),
            ({"timeout": su.MAX_TIMEOUT + 1}, "timeout"),
            ({"network": "yes"}, "network"),
            ({"network": 1}, "network"),
            ({"env": "A=1"}, "env"),
            ({"env": {"A": 1}}, "env"),
            ({"env": {"1A": "x"}}, "env"),
            ({"env": {"A-B": "x"}}, "env"),
            ({"env": {"A=B": "x"}}, "env"),
            ({"env": {"": "x"}}, "env"),
            ({"metadata": "x"}, "metadata"),
            ({"metadata": {"big": "x" * 20000}}, "metadata"),
        ]
        before = self.own_ids()
        for body, field in cases:
            with self.subTest(body=str(body)[:80]):
                r = self.create_raw(body)
                if r.status == 201:
                    self.delete_quietly(r.json["id"])
                self.assertError(r, 400, "invalid_argument", field)
        for raw in (b"{", b"[]", b"42", b'"x"', b"\xff\xfe"):
            with self.subTest(raw=raw):
                r = call("POST", "/sandboxes", raw,
                         extra={"Content-Type": "application/json"})
                if r.status == 201:
                    self.delete_quietly(r.json["id"])
                self.assertError(r, 400, ("invalid_json", "invalid_argument"))
        # Nothing was left behind by the refused requests.
        self.assertEqual(self.own_ids() - before, set())

    def own_ids(self, key=None):
        r = call("GET", "/sandboxes", key=key)
        self.assertEqual(r.status, 200, r)
        return {s["id"] for s in r.json["sandboxes"]}

    def test_needs_credentials(self):
        for method, path in (("GET", "/sandboxes"), ("POST", "/sandboxes"),
                             ("GET", "/sandboxes/sbx_x"),
                             ("DELETE", "/sandboxes/sbx_x"),
                             ("POST", "/sandboxes/sbx_x/commands"),
                             ("GET", "/sandboxes/sbx_x/files?path=/workspace"),
                             ("POST", "/api/sessions/s1/initialize")):
            with self.subTest(method=method, path=path):
                r = sp.request(method, path, body={} if method == "POST"
                               else None)
                self.assertError(r, 401, "unauthenticated")
                r = sp.request(method, path,
                               body={} if method == "POST" else None,
                               headers={"X-API-Key": "sp_wrong_key"})
                self.assertError(r, 401, "unauthenticated")

    def test_list_shows_own_only(self):
        mine = self.new_sandbox()["id"]
        theirs = self.new_sandbox(key=self.other_key)["id"]
        r = call("GET", "/sandboxes")
        self.assertEqual(r.status, 200, r)
        listed = {s["id"]: s for s in r.json["sandboxes"]}
        self.assertIn(mine, listed)
        self.assertNotIn(theirs, listed)
        self.assertEqual(listed[mine]["status"], "running")
        self.assertIn("limits", listed[mine])
        other = self.own_ids(self.other_key)
        self.assertIn(theirs, other)
        self.assertNotIn(mine, other)

    def test_other_subject_gets_404(self):
        sid = self.new_sandbox()["id"]
        exe = self.background(sid, ["sleep", "30"])
        k = self.other_key
        reqs = [
            ("GET", f"/sandboxes/{sid}", None),
            ("DELETE", f"/sandboxes/{sid}", None),
            ("POST", f"/sandboxes/{sid}/timeout", {"timeout": 100}),
            ("POST", f"/sandboxes/{sid}/commands", {"cmd": "true"}),
            ("GET", f"/sandboxes/{sid}/commands/{exe}", None),
            ("GET", f"/sandboxes/{sid}/commands/{exe}/output", None),
            ("POST", f"/sandboxes/{sid}/commands/{exe}/stdin", {"data": "x"}),
            ("POST", f"/sandboxes/{sid}/commands/{exe}/signal",
             {"signal": "KILL"}),
            ("POST", f"/sandboxes/{sid}/packages",
             {"manager": "pip", "packages": ["six"]}),
            ("GET", su.files_url(sid, "/workspace"), None),
            ("PUT", su.files_url(sid, "/workspace/x"), b"x"),
            ("DELETE", su.files_url(sid, "/workspace"), None),
            ("GET", f"/sandboxes/{sid}/tree?path=/workspace", None),
            ("POST", f"/sandboxes/{sid}/dirs", {"path": "/workspace/d"}),
        ]
        for method, path, body in reqs:
            with self.subTest(method=method, path=path):
                r = call(method, path, body, key=k)
                self.assertError(r, 404, "not_found")
        # Still alive and untouched, its execution still running.
        self.assertEqual(self.get_ok_sandbox(sid)["status"], "running")
        r = call("GET", f"/sandboxes/{sid}/commands/{exe}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["status"], "running")
        r = self.fget(sid, "/workspace/x")
        self.assertError(r, 404, "not_found")
        # The other subject's execution id is not found through its own
        # sandbox either.
        theirs = self.new_sandbox(key=k)["id"]
        r = call("GET", f"/sandboxes/{theirs}/commands/{exe}", key=k)
        self.assertError(r, 404, "not_found")

    def test_unknown_ids(self):
        for sid in ("nope", "sbx_doesnotexist", "sbx_" + "a" * 70,
                    "prj_abc", "sbx_%2e%2e"):
            with self.subTest(sid=sid):
                r = call("GET", f"/sandboxes/{sid}")
                self.assertError(r, 404, "not_found")
                r = call("DELETE", f"/sandboxes/{sid}")
                self.assertError(r, 404, "not_found")
        sid = self.new_sandbox()["id"]
        for exe in ("exe_nope", "nope", "sbx_x"):
            with self.subTest(exe=exe):
                r = call("GET", f"/sandboxes/{sid}/commands/{exe}")
                self.assertError(r, 404, "not_found")
                r = call("GET", f"/sandboxes/{sid}/commands/{exe}/output")
                self.assertError(r, 404, "not_found")

    def test_get_with_usage(self):
        sid = self.new_sandbox()["id"]
        self.background(sid, ["sleep", "30"])
        # A little work so there is CPU time and memory to report.
        self.ok(sid, "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")
        doc = self.get_ok_sandbox(sid)
        usage = doc["usage"]
        self.assertIsInstance(usage, dict, doc)
        for k in ("memory_bytes", "cpu_ms", "processes", "oom_kills"):
            self.assertIsInstance(usage.get(k), (int, float), usage)
            self.assertGreaterEqual(usage[k], 0, usage)
        self.assertGreater(usage["memory_bytes"], 0, usage)
        self.assertGreaterEqual(usage["processes"], 1, usage)
        self.assertEqual(usage["oom_kills"], 0, usage)
        self.assertEqual(doc["id"], sid)
        self.assertNotIn("ok", usage)

    def test_extend_timeout(self):
        doc = self.new_sandbox({"timeout": 60})
        sid = doc["id"]
        r = call("POST", f"/sandboxes/{sid}/timeout", {"timeout": 3600})
        self.assertEqual(r.status, 200, r)
        self.assertGreater(r.json["timeout"], 3500)
        self.assertGreater(r.json["expires_at"], doc["expires_at"])
        self.assertGreater(self.get_ok_sandbox(sid)["timeout"], 3500)
        # Shortening works as well: the timeout is "from now".
        r = call("POST", f"/sandboxes/{sid}/timeout", {"timeout": 30})
        self.assertEqual(r.status, 200, r)
        self.assertLessEqual(r.json["timeout"], 30)
        for body, field in (({}, "timeout"), ({"timeout": 0}, "timeout"),
                            ({"timeout": "x"}, "timeout"),
                            ({"timeout": su.MAX_TIMEOUT + 1}, "timeout")):
            with self.subTest(body=body):
                r = call("POST", f"/sandboxes/{sid}/timeout", body)
                self.assertError(r, 400, "invalid_argument", field)
        r = call("POST", "/sandboxes/sbx_nothere/timeout", {"timeout": 10})
        self.assertError(r, 404, "not_found")

    def test_delete(self):
        sid = self.new_sandbox()["id"]
        exe = self.background(sid, ["sleep", "60"])
        r = call("DELETE", f"/sandboxes/{sid}", timeout=60)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        r = call("GET", f"/sandboxes/{sid}")
        self.assertError(r, 404, "not_found")
        self.assertNotIn(sid, self.own_ids())
        r = call("DELETE", f"/sandboxes/{sid}")
        self.assertError(r, 404, "not_found")
        r = self.run_raw(sid, "true")
        self.assertError(r, 404, "not_found")
        r = self.fget(sid, "/workspace")
        self.assertError(r, 404, "not_found")
        # The execution that was running was finished, not left "running".
        rec = su.redis_hash("exec:" + exe)
        self.assertIn(rec.get("status"), ("killed", "error"), rec)

    def test_expires_after_its_timeout(self):
        sid = self.new_sandbox({"timeout": 2})["id"]
        gone = sp.wait_until(
            lambda: call("GET", f"/sandboxes/{sid}").status == 404, 10, 0.25)
        self.assertTrue(gone, "sandbox still there 10 s after a 2 s timeout")
        self.assertNotIn(sid, self.own_ids())
        r = self.run_raw(sid, "true")
        self.assertError(r, 404, "not_found")


class ReadySandboxesTest(su.SbxCase):
    """Creates that take ready sandboxes of both pools (no network, and
    network: true), from several clients at once, each followed by a
    command and a delete: every call answers as it should and the helper
    neither dies nor loses one. (A create that took a ready sandbox used
    to free its job while the helper still read it: a crash some hundred
    creates later.)"""

    def test_parallel_creates_from_both_pools(self):
        before = sp.supervision().get("sp-helperd", {})
        bad, lock = [], threading.Lock()

        def client(n, offset):
            for i in range(n):
                body = {"timeout": 60}
                if (i + offset) % 2:
                    body["network"] = True
                r = call("POST", "/sandboxes", body, timeout=60)
                if r.status != 201:
                    with lock:
                        bad.append(("create", r.status, r.body[:200]))
                    continue
                sid = r.json["id"]
                r = call("POST", f"/sandboxes/{sid}/commands",
                         {"argv": ["true"]}, timeout=60)
                if r.status != 200 or r.json.get("status") != "ok":
                    with lock:
                        bad.append(("command", r.status, r.body[:200]))
                r = call("DELETE", f"/sandboxes/{sid}", timeout=60)
                if r.status != 204:
                    with lock:
                        bad.append(("delete", r.status, r.body[:200]))

        threads = [threading.Thread(target=client, args=(40, k))
                   for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        self.assertFalse(any(t.is_alive() for t in threads),
                         "a client did not finish in 300 s")
        self.assertEqual(bad, [])
        after = sp.supervision().get("sp-helperd", {})
        self.assertEqual(after.get("pid"), before.get("pid"),
                         f"the helper was restarted: {after}")
        self.assertEqual(after.get("restarts"), before.get("restarts"))


class PerSubjectLimitTest(su.SbxCase):
    def test_maximum_live_sandboxes(self):
        key = sp.create_key()[1]
        made = []
        for i in range(su.MAX_PER_SUBJECT):
            r = self.create_raw({"timeout": 300}, key=key)
            self.assertEqual(r.status, 201, f"sandbox {i + 1}: {r!r}")
            made.append(r.json["id"])
            self.addCleanup(self.delete_quietly, r.json["id"], key)
        r = self.create_raw({}, key=key)
        if r.status == 201:
            self.addCleanup(self.delete_quietly, r.json["id"], key)
        self.assertError(r, 429, "rate_limited")
        self.assertTrue(r.headers.get("Retry-After", "").isdigit(), r.headers)
        # Session initialization is held to the same maximum.
        r = call("POST", f"/api/sessions/s_{uuid.uuid4().hex}/initialize",
                 {}, key=key, timeout=60)
        if r.status in (200, 201):
            self.addCleanup(self.delete_quietly, r.json["sandbox_id"], key)
        self.assertError(r, 429, "rate_limited")
        # Another subject is not affected.
        self.new_sandbox()
        # One deleted: there is room for exactly one more.
        r = call("DELETE", f"/sandboxes/{made.pop()}", key=key, timeout=60)
        self.assertEqual(r.status, 204, r)
        r = self.create_raw({}, key=key)
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.delete_quietly, r.json["id"], key)
        r = self.create_raw({}, key=key)
        if r.status == 201:
            self.addCleanup(self.delete_quietly, r.json["id"], key)
        self.assertError(r, 429, "rate_limited")

    def test_concurrent_creates_respect_the_maximum(self):
        key = sp.create_key()[1]
        results = []
        lock = threading.Lock()

        def one():
            r = self.create_raw({}, key=key)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=one)
                   for _ in range(su.MAX_PER_SUBJECT + 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        for r in results:
            if r.status == 201:
                self.addCleanup(self.delete_quietly, r.json["id"], key)
        statuses = sorted(r.status for r in results)
        self.assertEqual(len(results), su.MAX_PER_SUBJECT + 4)
        self.assertEqual(statuses.count(201), su.MAX_PER_SUBJECT, statuses)
        self.assertEqual(statuses.count(429), 4, statuses)


class SessionTest(su.SbxCase):
    def init(self, sid, body=None, key=None):
        return call("POST", f"/api/sessions/{sid}/initialize",
                    {} if body is None else body, key=key, timeout=60)

    def test_initialize_is_idempotent(self):
        session = "chat_" + uuid.uuid4().hex
        r = self.init(session)
        self.assertEqual(r.status, 201, r)
        first = r.json
        self.addCleanup(self.delete_quietly, first["sandbox_id"])
        self.assertEqual(first["session_id"], session)
        self.assertIs(first["created"], True)
        self.assertTrue(first["sandbox_id"].startswith("sbx_"), first)
        self.assertEqual(first["sandbox"]["id"], first["sandbox_id"])
        for _ in range(2):
            r = self.init(session)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["sandbox_id"], first["sandbox_id"])
            self.assertIs(r.json["created"], False)
        # The session's sandbox is an ordinary sandbox of the subject.
        self.assertEqual(self.ok(first["sandbox_id"], "echo s"), "s\n")
        # Another subject's session of the same name is its own.
        other = sp.create_key()[1]
        r = self.init(session, key=other)
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.delete_quietly, r.json["sandbox_id"], other)
        self.assertNotEqual(r.json["sandbox_id"], first["sandbox_id"])
        # Once its sandbox is deleted, the session gets a new one.
        r = call("DELETE", f"/sandboxes/{first['sandbox_id']}", timeout=60)
        self.assertEqual(r.status, 204, r)
        r = self.init(session)
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.delete_quietly, r.json["sandbox_id"])
        self.assertNotEqual(r.json["sandbox_id"], first["sandbox_id"])

    def test_concurrent_initialize_gives_one_sandbox(self):
        session = "chat_" + uuid.uuid4().hex
        results = []
        lock = threading.Lock()

        def one():
            r = self.init(session)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=one) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        ids = set()
        for r in results:
            if r.status in (200, 201):
                ids.add(r.json["sandbox_id"])
        for sid in ids:
            self.addCleanup(self.delete_quietly, sid)
        self.assertEqual(len(results), 3)
        self.assertEqual(sorted(r.status for r in results), [200, 200, 201],
                         results)
        self.assertEqual(len(ids), 1, ids)

    def test_bad_session_ids(self):
        for bad in ("a%20b", "x" * 65, "a.b", "%2e%2e", "a%2Fb"):
            with self.subTest(session=bad):
                r = self.init(bad)
                if r.status in (200, 201):
                    self.delete_quietly(r.json["sandbox_id"])
                self.assertIn(r.status, (400, 404), r)
                if r.status == 400:
                    self.assertError(r, 400, "invalid_argument")

    def test_initialize_takes_sandbox_options(self):
        session = "chat_" + uuid.uuid4().hex
        r = self.init(session, {"limits": {"memory_mb": 10 ** 9},
                                "env": {"SESSION_VAR": "v"}})
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.delete_quietly, r.json["sandbox_id"])
        self.assertEqual(r.json["sandbox"]["limits"]["memory_mb"],
                         su.MAX_MEMORY)
        self.assertEqual(self.ok(r.json["sandbox_id"], "echo $SESSION_VAR"),
                         "v\n")
        r = self.init("chat_" + uuid.uuid4().hex, {"limits": {"pids": -1}})
        self.assertError(r, 400, "invalid_argument", "pids")
