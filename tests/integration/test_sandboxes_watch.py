"""test_sandboxes_watch.py: file watches of a sandbox (helper/hd_watch.c,
handlers/sandbox_watches.c, the relay's watch route): what commands do in a
watched directory arrives as create, write, rename and remove events with
names relative to it; recursive watches follow new subdirectories and
plain ones do not; a symlink planted inside never leads a watch to the
host; bad paths, other subjects and the per-sandbox limit are refused with
the error envelope; the events as a JSON page; a watch ends (its stream
with it) when it is deleted, when its sandbox is, and, made by GET
…/watch, once nobody reads it. Waits are bounded; nothing is timed."""
import time
import uuid

import sp
import sbx_util as su
from sbx_util import call
from test_sse import Stream


def ev_names(events, type_):
    return [e["data"].get("name") for e in events
            if e.get("event") == type_]


class WatchTest(su.SbxCase):
    @classmethod
    def setUpClass(cls):
        cls.sid = cls.class_sandbox()

    def fresh_dir(self, sid=None):
        d = "/workspace/w_" + uuid.uuid4().hex[:10]
        r = call("POST", f"/sandboxes/{sid or self.sid}/dirs", {"path": d})
        self.assertEqual(r.status, 201, r)
        return d

    def watch(self, path, recursive=False, sid=None, status=201):
        r = call("POST", f"/sandboxes/{sid or self.sid}/watches",
                 {"path": path, "recursive": recursive})
        self.assertEqual(r.status, status, r)
        return r.json

    def stream(self, url, key=None):
        s = Stream(url, headers=su.headers(key), timeout=20)
        self.addCleanup(s.close)
        return s

    def until(self, s, pred, what):
        """Events of s up to the first that pred accepts (which must come:
        the stream's socket timeout bounds each wait)."""
        out = s.until(pred, limit=2000)
        self.assertTrue(out and pred(out[-1]), f"no {what} in {out!r}")
        return out

    def test_create_write_rename_remove(self):
        d = self.fresh_dir()
        w = self.watch(d)
        self.assertTrue(w["watch_id"].startswith("wch_"), w)
        self.assertEqual(w["path"], d)
        self.assertEqual(w["status"], "active")
        s = self.stream(w["events_url"])
        self.assertEqual(s.status, 200)
        self.ok(self.sid, f"echo hi > {d}/a.txt && mv {d}/a.txt {d}/b.txt "
                          f"&& chmod 600 {d}/b.txt && rm {d}/b.txt")
        evs = self.until(s, lambda e: e.get("event") == "remove", "remove")
        kinds = [(e["event"], e["data"].get("name")) for e in evs]
        self.assertIn(("create", "a.txt"), kinds)
        self.assertIn(("write", "a.txt"), kinds)
        self.assertIn(("rename", "a.txt"), kinds)
        self.assertIn(("chmod", "b.txt"), kinds)
        self.assertEqual(kinds[-1], ("remove", "b.txt"))
        ren = [e["data"] for e in evs if e["event"] == "rename"][0]
        self.assertEqual(ren["newName"], "b.txt")
        self.assertIs(ren["isDir"], False)
        for e in evs:
            self.assertEqual(e["data"]["watchId"], w["watch_id"])
            self.assertEqual(e["data"]["type"], e["event"])
            self.assertTrue(e["id"])
        # Order: created before written before renamed before removed.
        order = [k for k, _ in kinds]
        self.assertLess(order.index("create"), order.index("write"))
        self.assertLess(order.index("write"), order.index("rename"))

    def test_recursive_sees_new_subdirectory(self):
        d = self.fresh_dir()
        self.ok(self.sid, f"mkdir -p {d}/old")
        w = self.watch(d, recursive=True)
        s = self.stream(w["events_url"])
        self.ok(self.sid, f"echo x > {d}/old/o.txt && mkdir -p {d}/new/deep "
                          f"&& echo y > {d}/new/deep/f.txt")
        self.until(s, lambda e: e["data"].get("name") == "old/o.txt",
                   "event of old/o.txt")
        evs = self.until(s, lambda e: e["data"].get("name") ==
                         "new/deep/f.txt", "event of new/deep/f.txt")
        self.assertIn("new", ev_names(evs, "create"))

    def test_not_recursive_stays_at_its_level(self):
        d = self.fresh_dir()
        w = self.watch(d)
        s = self.stream(w["events_url"])
        self.ok(self.sid, f"mkdir {d}/sub && echo x > {d}/sub/f.txt "
                          f"&& echo m > {d}/marker")
        evs = self.until(s, lambda e: e["data"].get("name") == "marker",
                         "marker")
        names = [e["data"].get("name") for e in evs]
        self.assertIn("sub", names)
        self.assertFalse([n for n in names if n and n.startswith("sub/")],
                         evs)
        sub = [e["data"] for e in evs if e["data"].get("name") == "sub"][0]
        self.assertIs(sub["isDir"], True)

    def test_symlink_escape_watches_nothing_of_the_host(self):
        d = self.fresh_dir()
        self.ok(self.sid, f"ln -s / {d}/evil && ln -s /etc {d}/etc2")
        for p in (f"{d}/evil/etc", f"{d}/etc2", f"{d}/evil/proc/1/root/etc"):
            with self.subTest(path=p):
                r = call("POST", f"/sandboxes/{self.sid}/watches",
                         {"path": p})
                self.assertError(r, 404, "not_found", "path")
                r = call("GET", f"/sandboxes/{self.sid}/watch?path="
                                f"{su.q(p)}")
                self.assertError(r, 404, "not_found", "path")
        # The link itself, resolved inside the sandbox's root, is the
        # workspace's own root: a watch there sees the workspace only.
        w = self.watch(f"{d}/evil")
        s = self.stream(w["events_url"])
        mark = "m_" + uuid.uuid4().hex[:10]
        self.ok(self.sid, f"echo z > /workspace/{mark}")
        evs = self.until(s, lambda e: e["data"].get("name") == mark,
                         "event of the workspace")
        self.assertTrue(all(not e["data"].get("name", "").startswith("etc")
                            for e in evs), evs)
        self.assertEqual(call("DELETE", f"/sandboxes/{self.sid}/watches/"
                                        f"{w['watch_id']}").status, 204)

    def test_bad_paths(self):
        d = self.fresh_dir()
        self.ok(self.sid, f"echo f > {d}/file")
        r = call("POST", f"/sandboxes/{self.sid}/watches", {})
        self.assertError(r, 400, "invalid_argument", "path")
        r = call("POST", f"/sandboxes/{self.sid}/watches", {"path": 7})
        self.assertError(r, 400, "invalid_argument", "path")
        for p, status, code in ((f"{d}/nothing", 404, "not_found"),
                                (f"{d}/file", 400, "invalid_argument"),
                                ("/etc", 400, "invalid_argument"),
                                ("/workspace/../../etc", 400,
                                 "invalid_argument")):
            with self.subTest(path=p):
                r = call("POST", f"/sandboxes/{self.sid}/watches",
                         {"path": p})
                self.assertError(r, status, code, "path")
        r = call("GET", f"/sandboxes/{self.sid}/watch")
        self.assertError(r, 400, "invalid_argument", "path")
        r = call("GET", f"/sandboxes/{self.sid}/watch?path={d}&recursive=x")
        self.assertError(r, 400, "invalid_argument", "recursive")
        r = call("POST", f"/sandboxes/{self.sid}/watches",
                 {"path": d, "recursive": "yes"})
        self.assertError(r, 400, "invalid_argument", "recursive")

    def test_other_subject_and_unknown_are_404(self):
        d = self.fresh_dir()
        w = self.watch(d)
        other = sp.create_key()[1]
        r = call("POST", f"/sandboxes/{self.sid}/watches", {"path": d},
                 key=other)
        self.assertError(r, 404, "not_found")
        r = call("GET", f"/sandboxes/{self.sid}/watch?path={d}", key=other)
        self.assertError(r, 404, "not_found")
        s = self.stream(w["events_url"], key=other)
        self.assertEqual(s.status, 404)
        r = call("DELETE", f"/sandboxes/{self.sid}/watches/{w['watch_id']}",
                 key=other)
        self.assertError(r, 404, "not_found")
        r = call("GET", w["events_url"] + "?since=0", key=other)
        self.assertError(r, 404, "not_found")
        # An unknown watch, and a real one under another sandbox's path.
        unknown = f"/sandboxes/{self.sid}/watches/wch_{'x' * 22}/events"
        self.assertEqual(self.stream(unknown).status, 404)
        other_sid = self.new_sandbox()["id"]
        wrong = f"/sandboxes/{other_sid}/watches/{w['watch_id']}/events"
        self.assertEqual(self.stream(wrong).status, 404)
        r = call("DELETE", f"/sandboxes/{self.sid}/watches/{w['watch_id']}")
        self.assertEqual(r.status, 204, r)

    def test_events_page_and_delete_ends_the_stream(self):
        d = self.fresh_dir()
        w = self.watch(d)
        wid = w["watch_id"]
        self.ok(self.sid, f"touch {d}/p1")
        page = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = call("GET", w["events_url"] + "?since=0")
            self.assertEqual(r.status, 200, r)
            page = r.json
            if any(e["data"].get("name") == "p1" for e in page["events"]):
                break
            time.sleep(0.1)
        self.assertEqual(page["status"], "active")
        self.assertEqual(page["events"][0]["type"], "create")
        r = call("GET", w["events_url"] + "?since=" + page["next"])
        self.assertEqual(r.json["events"], [])
        r = call("GET", w["events_url"] + "?since=abc")
        self.assertError(r, 400, "invalid_argument", "since")
        listed = call("GET", f"/sandboxes/{self.sid}/watches").json
        self.assertIn(wid, [x["watch_id"] for x in listed["watches"]])
        s = self.stream(w["events_url"])
        r = call("DELETE", f"/sandboxes/{self.sid}/watches/{wid}")
        self.assertEqual(r.status, 204, r)
        evs = s.all()  # the response ends after end
        self.assertEqual(evs[-1]["event"], "end", evs)
        self.assertEqual(evs[-1]["data"]["reason"], "stopped")
        r = call("GET", w["events_url"] + "?since=" + page["next"])
        self.assertEqual(r.json["status"], "ended")
        self.assertEqual(r.json["events"][-1]["type"], "end")
        listed = call("GET", f"/sandboxes/{self.sid}/watches").json
        self.assertNotIn(wid, [x["watch_id"] for x in listed["watches"]])
        # Deleting it again: it has ended, nothing to do.
        r = call("DELETE", f"/sandboxes/{self.sid}/watches/{wid}")
        self.assertEqual(r.status, 204, r)

    def test_one_call_watch_lives_while_read(self):
        d = self.fresh_dir()
        s = self.stream(f"/sandboxes/{self.sid}/watch?path={su.q(d)}"
                        "&recursive=true")
        self.assertEqual(s.status, 200)
        self.ok(self.sid, f"mkdir {d}/s && echo a > {d}/s/one.txt")
        evs = self.until(s, lambda e: e["data"].get("name") == "s/one.txt",
                         "event of s/one.txt")
        wid = evs[0]["data"]["watchId"]
        listed = call("GET", f"/sandboxes/{self.sid}/watches").json
        self.assertIn(wid, [x["watch_id"] for x in listed["watches"]])
        # The reader leaves: the watch ends by itself (SP_WATCH_GRACE).
        s.close()
        gone = sp.wait_until(
            lambda: wid not in [x["watch_id"] for x in call(
                "GET", f"/sandboxes/{self.sid}/watches").json["watches"]],
            60, step=0.5)
        self.assertTrue(gone, "the unread watch did not end")
        r = call("GET", f"/sandboxes/{self.sid}/watches/{wid}/events"
                        "?since=0")
        self.assertEqual(r.json["status"], "ended")
        self.assertEqual(r.json["events"][-1]["data"]["reason"], "idle")

    def test_one_call_watch_with_access_token(self):
        """An EventSource sends no headers: the token in the query goes
        with the request to the relay."""
        d = self.fresh_dir()
        tok = sp.token_pair()["access_token"]
        s = Stream(f"/sandboxes/{self.sid}/watch?path={su.q(d)}"
                   f"&access_token={su.q(tok)}", timeout=20)
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        self.ok(self.sid, f"touch {d}/t.txt")
        self.until(s, lambda e: e["data"].get("name") == "t.txt", "t.txt")
        s = Stream(f"/sandboxes/{self.sid}/watch?path={su.q(d)}"
                   "&access_token=nope", timeout=20)
        self.addCleanup(s.close)
        self.assertEqual(s.status, 401)

    def test_limits(self):
        sid = self.new_sandbox()["id"]
        d = self.fresh_dir(sid)
        made = [self.watch(d, sid=sid) for _ in range(
            su.cfg("SP_WATCH_MAX_PER_SANDBOX", 8))]
        r = call("POST", f"/sandboxes/{sid}/watches", {"path": d})
        self.assertError(r, 429, "rate_limited")
        r = call("DELETE", f"/sandboxes/{sid}/watches/{made[0]['watch_id']}")
        self.assertEqual(r.status, 204, r)
        self.watch(d, sid=sid)
        # A recursive watch covers at most SP_WATCH_MAX_DIRS directories,
        # and says so.
        sid2 = self.new_sandbox()["id"]
        d2 = self.fresh_dir(sid2)
        n = su.cfg("SP_WATCH_MAX_DIRS", 1024) + 2
        self.ok(sid2, f"cd {d2} && mkdir $(seq -f 'd%g' 1 {n})")
        w = self.watch(d2, recursive=True, sid=sid2)
        s = self.stream(w["events_url"])
        ev = self.until(s, lambda e: e["event"] == "overflow", "overflow")
        self.assertEqual(ev[-1]["data"]["reason"], "max_dirs")

    def test_sandbox_delete_ends_the_stream(self):
        sid = self.new_sandbox()["id"]
        d = self.fresh_dir(sid)
        w = self.watch(d, sid=sid)
        s = self.stream(w["events_url"])
        self.ok(sid, f"touch {d}/before")
        self.until(s, lambda e: e["data"].get("name") == "before", "before")
        r = call("DELETE", f"/sandboxes/{sid}")
        self.assertIn(r.status, (200, 204), r)
        evs = s.all()
        self.assertTrue(evs, "the stream ended without its end event")
        self.assertEqual(evs[-1]["event"], "end", evs)
        self.assertEqual(evs[-1]["data"]["reason"], "sandbox_ended")
