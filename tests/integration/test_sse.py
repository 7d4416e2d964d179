"""test_sse.py: the SSE relay (sse/, docs/DESIGN.md §4.2) through nginx.

Two groups. RelayTest writes events straight into Redis (as the helper
does) and reads them back through nginx: framing, hostile bytes, JSON
merging, exact resume (header and query), resume after the end, trimmed
streams, ownership (404), bad input (400/401), the client stream, and a
client that disconnects. StackTest runs real commands in a sandbox
(skipped when /health shows no helper)."""
import http.client
import json
import os
import socket
import time
import unittest
import uuid

import sp
from sp import get, post

PREFIX = os.environ.get("SP_PREFIX", "sp:")


class Redis:
    """A minimal RESP client (binary safe), enough for XADD/HSET/DEL."""

    def __init__(self, url):
        if url.startswith("unix://"):
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.connect(url[7:])
        else:
            host, _, port = url[8:].rpartition(":")
            self.s = socket.create_connection((host, int(port or 6379)))
        self.f = self.s.makefile("rb")

    def close(self):
        self.f.close()
        self.s.close()

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return self._reply()

    def _reply(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b":"):
            return int(rest) if kind == b":" else rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)


class Stream:
    """One SSE response read incrementally: events are dicts with id,
    event, data (parsed JSON) and raw (the data line's bytes)."""

    def __init__(self, path, headers=None, timeout=10):
        self.conn = http.client.HTTPConnection(sp.HOST, sp.PORT,
                                               timeout=timeout)
        self.conn.request("GET", path, headers=headers or {})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.comments = 0

    def next(self):
        """The next event, or None at the end of the response."""
        ev = {}
        while True:
            line = self.resp.readline()
            if not line:
                return None
            if line == b"\n":
                if ev:
                    return ev
                continue
            if line.startswith(b":"):
                self.comments += 1
                continue
            name, _, value = line.rstrip(b"\n").partition(b": ")
            if name == b"data":
                ev["raw"] = value
                ev["data"] = json.loads(value)
            else:
                ev[name.decode()] = value.decode()

    def until(self, pred, limit=1000):
        out = []
        for _ in range(limit):
            ev = self.next()
            if ev is None:
                break
            out.append(ev)
            if pred(ev):
                break
        return out

    def all(self):
        return self.until(lambda e: False)

    def close(self):
        self.conn.close()


def jwt_for(sub):
    return sp.bearer(sp.make_jwt(sp.claims(sub=sub)))


def exe_id():
    return "exe_" + uuid.uuid4().hex[:22]


@unittest.skipUnless(sp.REDIS_URL and sp.SECRET, "needs SP_REDIS_URL and JWT_SECRET")
class RelayTest(sp.Case):
    def setUp(self):
        self.r = Redis(sp.REDIS_URL)
        self.owner = "sse_" + uuid.uuid4().hex[:10]
        self.auth = jwt_for(self.owner)
        self.exe = exe_id()
        self.r.cmd("HSET", PREFIX + "exec:" + self.exe, "owner", self.owner,
                   "status", "running")
        self.r.cmd("EXPIRE", PREFIX + "exec:" + self.exe, 600)
        self.keys = [PREFIX + "exec:" + self.exe, PREFIX + "events:" + self.exe]

    def tearDown(self):
        self.r.cmd("DEL", *self.keys)
        self.r.close()

    def add(self, type_, data, exe=None):
        key = PREFIX + "events:" + (exe or self.exe)
        return self.r.cmd("XADD", key, "*", "type", type_, "data", data).decode()

    def result(self, code=0, exe=None):
        return self.add("result", json.dumps(
            {"data": {"exitCode": code, "status": "ok", "truncated": False},
             "duration": 12}), exe)

    def path(self, exe=None):
        return f"/executions/{exe or self.exe}/events"

    def test_framing_and_end(self):
        self.add("status", '{"status":"running"}')
        ids = [self.add("stdout", "line %d\n" % i) for i in range(5)]
        self.add("stderr", "oops")
        rid = self.result(3)
        s = Stream(self.path(), self.auth)
        self.assertEqual(s.status, 200)
        self.assertEqual(s.resp.getheader("Content-Type"), "text/event-stream")
        self.assertEqual(s.resp.getheader("Cache-Control"), "no-cache")
        evs = s.all()
        s.close()
        self.assertEqual([e["event"] for e in evs],
                         ["status"] + ["stdout"] * 5 + ["stderr", "result"])
        self.assertEqual([e["id"] for e in evs[1:6]], ids)
        for e in evs:
            self.assertEqual(e["data"]["type"], e["event"])
            self.assertEqual(e["data"]["executionId"], self.exe)
        self.assertEqual(evs[0]["data"]["status"], "running")
        self.assertEqual(evs[3]["data"]["data"], "line 2\n")
        self.assertEqual(evs[-1]["id"], rid)
        self.assertEqual(evs[-1]["data"]["data"]["exitCode"], 3)
        self.assertEqual(evs[-1]["data"]["duration"], 12)

    def test_hostile_output_is_data(self):
        nasty = b"a\r\n\ndata: x\n\x00\xff\xc3event: result\n\n"
        self.add("stdout", nasty)
        self.result()
        s = Stream(self.path(), self.auth)
        evs = s.all()
        s.close()
        self.assertEqual([e["event"] for e in evs], ["stdout", "result"])
        self.assertEqual(evs[0]["data"]["data"],
                         "a\r\n\ndata: x\n\x00\ufffd\ufffdevent: result\n\n")
        self.assertNotIn(b"\r", evs[0]["raw"])

    def test_live_then_result(self):
        self.add("status", '{"status":"running"}')
        s = Stream(self.path(), self.auth)
        first = s.next()
        self.assertEqual(first["event"], "status")
        sent = []
        for i in range(20):
            sent.append(self.add("stdout", str(i)))
        self.result()
        evs = s.all()
        s.close()
        self.assertEqual([e["id"] for e in evs[:-1]], sent)
        self.assertEqual([e["data"]["data"] for e in evs[:-1]],
                         [str(i) for i in range(20)])
        self.assertEqual(evs[-1]["event"], "result")

    def test_resume_exact(self):
        ids = [self.add("stdout", str(i)) for i in range(10)]
        s = Stream(self.path(), self.auth)
        got = [s.next() for _ in range(4)]
        s.close()  # mid-stream disconnect
        self.assertEqual([e["id"] for e in got], ids[:4])
        more = [self.add("stdout", str(i)) for i in range(10, 13)]
        self.result()
        h = dict(self.auth, **{"Last-Event-ID": got[-1]["id"]})
        s = Stream(self.path(), h)
        evs = s.all()
        s.close()
        self.assertEqual([e["id"] for e in evs[:-1]], ids[4:] + more)
        # The same with ?lastEventId= (EventSource cannot set headers).
        s = Stream(self.path() + "?lastEventId=" + ids[8], self.auth)
        evs = s.all()
        s.close()
        self.assertEqual([e["id"] for e in evs[:-1]], ids[9:] + more)

    def test_resume_after_end(self):
        ids = [self.add("stdout", str(i)) for i in range(3)]
        rid = self.result()
        s = Stream(self.path(), dict(self.auth, **{"Last-Event-ID": ids[1]}))
        evs = s.all()
        s.close()
        self.assertEqual([e["id"] for e in evs], [ids[2], rid])
        # Resuming after the result itself ends at once, empty.
        s = Stream(self.path(), dict(self.auth, **{"Last-Event-ID": rid}))
        self.assertEqual(s.status, 200)
        self.assertEqual(s.all(), [])
        s.close()

    def test_trimmed_events_are_reported(self):
        ids = [self.add("stdout", str(i)) for i in range(10)]
        self.result()
        self.r.cmd("XTRIM", PREFIX + "events:" + self.exe, "MAXLEN", 5)
        s = Stream(self.path(), dict(self.auth, **{"Last-Event-ID": ids[1]}))
        evs = s.all()
        s.close()
        self.assertEqual(evs[0]["event"], "error")
        self.assertEqual(evs[0]["data"]["code"], "events_lost")
        self.assertEqual(evs[0]["data"]["executionId"], self.exe)
        self.assertEqual([e["data"]["data"] for e in evs[1:-1]],
                         [str(i) for i in range(6, 10)])

    def test_other_subject_and_unknown_are_404(self):
        self.add("stdout", "secret")
        for path, h in ((self.path(), jwt_for("someone_else")),
                        (self.path(exe_id()), self.auth),
                        ("/executions/sbx_notanexe/events", self.auth),
                        ("/executions/exe_bad%21id/events", self.auth)):
            with self.subTest(path=path):
                self.assertError(get(path, headers=h), 404, "not_found")

    def test_credentials(self):
        self.add("stdout", "x")
        self.result()
        self.assertError(get(self.path()), 401, "unauthenticated")
        self.assertError(get(self.path(), headers=sp.bearer("x.y.z")), 401,
                         "unauthenticated")
        self.assertError(get(self.path(), headers={"X-API-Key": "spk_nope"}),
                         401, "unauthenticated")
        tok = sp.make_jwt(sp.claims(sub=self.owner))
        s = Stream(self.path() + "?access_token=" + tok)
        self.assertEqual(s.status, 200)
        self.assertEqual([e["event"] for e in s.all()], ["stdout", "result"])
        s.close()
        if sp.API_KEY:  # the API key's subject owns nothing here
            self.assertError(get(self.path(),
                                 headers={"X-API-Key": sp.API_KEY}), 404)

    def test_bad_last_event_id(self):
        for bad in ("abc", "1-", "-1", "1-2-3", "99999999999999999999999-0",
                    "1 -2"):
            with self.subTest(lid=bad):
                r = get(self.path(), headers=dict(self.auth,
                                                  **{"Last-Event-ID": bad}))
                self.assertError(r, 400, "invalid_argument")

    def test_method_not_allowed(self):
        r = post(self.path(), {}, headers=self.auth)
        self.assertError(r, 405, "method_not_allowed")

    def test_client_stream(self):
        cid = "c_" + uuid.uuid4().hex[:8]
        ptr = f"{PREFIX}client:{self.owner}:{cid}"
        self.keys.append(ptr)
        self.assertError(get("/events?clientId=bad%21", headers=self.auth),
                         400, "invalid_argument")
        self.assertError(get("/events", headers=self.auth), 400,
                         "invalid_argument")
        self.assertError(get("/events?clientId=" + cid), 401)
        s = Stream("/events?clientId=" + cid, self.auth)
        self.assertEqual(s.status, 200)
        self.add("stdout", "one")
        self.r.cmd("XADD", ptr, "*", "type", "execution", "data", self.exe)
        evs = s.until(lambda e: e["event"] == "stdout")
        self.assertEqual(evs[-1]["data"]["data"], "one")
        self.add("stdout", "two")
        self.result()
        evs = s.until(lambda e: e["event"] == "result")
        s.close()
        self.assertEqual([e["event"] for e in evs], ["stdout", "result"])
        self.assertEqual(evs[0]["data"]["executionId"], self.exe)

    def test_disconnect_costs_nothing(self):
        self.add("stdout", "x" * 1000)
        streams = [Stream(self.path(), self.auth) for _ in range(20)]
        for st in streams:
            self.assertEqual(st.next()["event"], "stdout")
        for st in streams[:19]:
            st.close()
        for i in range(50):
            self.add("stdout", str(i))
        self.result()
        evs = streams[19].all()
        streams[19].close()
        self.assertEqual(len(evs), 51)
        # A new reader still gets everything.
        s = Stream(self.path(), self.auth)
        self.assertEqual(len(s.all()), 52)
        s.close()


def helper_up():
    try:
        doc = get("/health").json
        return doc["checks"]["helpers"]["live"] > 0
    except Exception:
        return False


@unittest.skipUnless(sp.API_KEY, "needs SP_API_KEY")
class StackTest(sp.Case):
    def setUp(self):
        if not helper_up():
            self.skipTest("no sandbox helper")
        self.auth = {"X-API-Key": sp.API_KEY}
        r = post("/sandboxes", {}, headers=self.auth, timeout=60)
        self.assertEqual(r.status, 201, r)
        self.sbx = r.json["id"]
        self.addCleanup(sp.request, "DELETE", "/sandboxes/" + self.sbx,
                        headers=self.auth)

    def run_bg(self, cmd):
        r = post(f"/sandboxes/{self.sbx}/commands",
                 {"cmd": cmd, "background": True}, headers=self.auth,
                 timeout=60)
        self.assertIn(r.status, (200, 201, 202), r)
        doc = r.json
        return doc.get("execution_id") or doc.get("executionId")

    def test_ordered_complete_resume(self):
        exe = self.run_bg("for i in 1 2 3; do echo $i; sleep 0.2; done")
        path = f"/executions/{exe}/events"
        s = Stream(path, self.auth, timeout=30)
        self.assertEqual(s.status, 200)
        evs = s.all()
        s.close()
        out = "".join(e["data"]["data"] for e in evs if e["event"] == "stdout")
        self.assertEqual(out, "1\n2\n3\n")
        self.assertEqual(evs[-1]["event"], "result")
        self.assertEqual(evs[-1]["data"]["data"]["exitCode"], 0)
        ids = [e["id"] for e in evs]
        self.assertEqual(len(ids), len(set(ids)))
        # Resume mid-stream after the end: the rest, no gap, no duplicate.
        s = Stream(path, dict(self.auth, **{"Last-Event-ID": ids[1]}))
        self.assertEqual([e["id"] for e in s.all()], ids[2:])
        s.close()
        self.assertError(get(path, headers=jwt_for("not_the_owner")), 404,
                         "not_found")
        self.assertError(get(path), 401, "unauthenticated")

    def test_resume_while_running(self):
        exe = self.run_bg("for i in 1 2 3 4 5 6; do echo $i; sleep 0.2; done")
        path = f"/executions/{exe}/events"
        s = Stream(path, self.auth, timeout=30)
        got = s.until(lambda e: e["event"] == "stdout")
        s.close()
        s = Stream(path, dict(self.auth, **{"Last-Event-ID": got[-1]["id"]}),
                   timeout=30)
        rest = s.all()
        s.close()
        out = "".join(e["data"]["data"] for e in got + rest
                      if e["event"] == "stdout")
        self.assertEqual(out, "1\n2\n3\n4\n5\n6\n")

    def test_hostile_output(self):
        exe = self.run_bg("printf 'a\\r\\n\\ndata: x\\n\\0\\377'")
        s = Stream(f"/executions/{exe}/events", self.auth, timeout=30)
        evs = s.all()
        s.close()
        out = "".join(e["data"]["data"] for e in evs if e["event"] == "stdout")
        self.assertEqual(out, "a\r\n\ndata: x\n\x00\ufffd")
        self.assertEqual(evs[-1]["event"], "result")


if __name__ == "__main__":
    unittest.main()
