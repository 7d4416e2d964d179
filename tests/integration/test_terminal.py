"""test_terminal.py: the terminal family through the real stack: a login
shell on a PTY, its events over SSE, input, resize seen inside, exit,
errors, ownership, and the cleanup of a terminal nobody watches."""
import http.client
import json
import time
import unittest

import sp

H = {"X-API-Key": sp.API_KEY}


class SSE:
    """A minimal SSE reader over one HTTP connection (bounded in time)."""

    def __init__(self, path, headers=None, timeout=20):
        self.conn = http.client.HTTPConnection(sp.HOST, sp.PORT, timeout=timeout)
        self.conn.request("GET", path, headers=headers or H)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.buf = b""

    def events(self, deadline):
        """Yield (event, data dict) until deadline (monotonic)."""
        while time.monotonic() < deadline:
            while b"\n\n" not in self.buf:
                chunk = self.resp.read1(65536)
                if not chunk:
                    return
                self.buf += chunk
            block, self.buf = self.buf.split(b"\n\n", 1)
            ev, data = "message", []
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    continue
                k, _, v = line.partition(":")
                v = v[1:] if v.startswith(" ") else v
                if k == "event":
                    ev = v
                elif k == "data":
                    data.append(v)
            if data:
                yield ev, json.loads("\n".join(data))

    def close(self):
        self.conn.close()


def wait_output(stream, needle, timeout=15):
    """Read output events until needle appears; returns (text, events)."""
    text, seen = "", []
    for ev, d in stream.events(time.monotonic() + timeout):
        seen.append(ev)
        if ev == "output":
            text += d.get("data", "")
            if needle in text:
                return text, seen
        if ev in ("exit", "error"):
            break
    return text, seen


def helper_live():
    r = sp.get("/health")
    return r.status == 200 and r.json["checks"]["helpers"]["live"] > 0


@unittest.skipUnless(helper_live(), "no sandbox helper is running")
class TerminalTest(sp.Case):
    def create(self, body=None, headers=None):
        r = sp.post("/terminal", body if body is not None else {"cols": 100, "rows": 30},
                    headers=headers or H, timeout=40)
        self.assertEqual(r.status, 201, r)
        t = r.json
        self.addCleanup(lambda: sp.request("DELETE", "/terminal/" + t["id"], headers=headers or H))
        return t

    def input(self, tid, data, headers=None):
        return sp.post(f"/terminal/{tid}/input", {"data": data}, headers=headers or H)

    def test_shell_echo_resize_exit(self):
        t = self.create()
        self.assertTrue(t["id"].startswith("trm_"))
        self.assertTrue(t["sandbox_id"].startswith("sbx_"))
        s = SSE(f"/terminal/{t['id']}/events")
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        self.assertEqual(self.input(t["id"], "echo hello-$((6*7)); stty size; echo $TERM\n").status, 204)
        text, seen = wait_output(s, "xterm-256color")
        self.assertIn("ready", seen)
        self.assertIn("hello-42", text)
        self.assertIn("30 100", text)
        r = sp.post(f"/terminal/{t['id']}/resize", {"cols": 132, "rows": 43}, headers=H)
        self.assertEqual(r.status, 204, r)
        self.input(t["id"], "stty size\n")
        text, _ = wait_output(s, "43 132")
        self.assertIn("43 132", text)
        # A UTF-8 character arrives whole.
        self.input(t["id"], "printf '\\xe2\\x82\\xac-euro\\n'\n")
        text, _ = wait_output(s, "\u20ac-euro")
        self.assertIn("\u20ac-euro", text)
        self.input(t["id"], "exit 3\n")
        code = None
        for ev, d in s.events(time.monotonic() + 15):
            if ev == "exit":
                code = d.get("code")
                break
        self.assertEqual(code, 3)
        ok = sp.wait_until(lambda: self.input(t["id"], "x").status == 409, 10)
        self.assertTrue(ok, "input to an ended terminal must be 409")
        r = self.input(t["id"], "x")
        self.assertError(r, 409, "conflict")

    def test_terminal_in_given_sandbox(self):
        r = sp.post("/sandboxes", {}, headers=H, timeout=40)
        self.assertEqual(r.status, 201, r)
        sid = r.json["id"]
        self.addCleanup(lambda: sp.request("DELETE", "/sandboxes/" + sid, headers=H))
        r = sp.request("PUT", f"/sandboxes/{sid}/files?path=/workspace/marker.txt",
                       body=b"marker-7f3", headers=H)
        self.assertEqual(r.status, 201, r)
        t = self.create({"cols": 80, "rows": 24, "sandbox_id": sid, "cwd": "/workspace"})
        self.assertEqual(t["sandbox_id"], sid)
        s = SSE(f"/terminal/{t['id']}/events")
        self.addCleanup(s.close)
        self.input(t["id"], "cat marker.txt; echo\n")
        text, _ = wait_output(s, "marker-7f3")
        self.assertIn("marker-7f3", text)
        # Deleting the terminal leaves the given sandbox alive.
        self.assertEqual(sp.request("DELETE", "/terminal/" + t["id"], headers=H).status, 204)
        self.assertEqual(sp.get("/sandboxes/" + sid, headers=H).status, 200)

    def test_delete_ends_its_own_sandbox(self):
        t = self.create()
        self.assertEqual(sp.request("DELETE", "/terminal/" + t["id"], headers=H).status, 204)
        ok = sp.wait_until(lambda: sp.get("/terminal/" + t["id"], headers=H).json.get("status")
                           not in ("running", "starting"), 10)
        self.assertTrue(ok)
        self.assertError(self.input(t["id"], "x"), 409, "conflict")

    def test_bad_sizes_and_input(self):
        for body in ({"cols": 0, "rows": 24}, {"cols": -1, "rows": 24}, {"cols": 80, "rows": 0},
                     {"cols": 100000, "rows": 24}, {"cols": 80, "rows": 100000},
                     {"cols": "80", "rows": 24}, {"cols": 80.5, "rows": 24}):
            self.assertError(sp.post("/terminal", body, headers=H), 400, "invalid_argument")
        self.assertError(sp.post("/terminal", {"cwd": "relative"}, headers=H), 400, "invalid_argument")
        self.assertError(sp.post("/terminal", {"sandbox_id": "sbx_nope"}, headers=H), 404, "not_found")
        t = self.create()
        for body in ({"cols": 0, "rows": 5}, {"cols": 5}, {"cols": 5, "rows": 1001}):
            self.assertError(sp.post(f"/terminal/{t['id']}/resize", body, headers=H), 400,
                             "invalid_argument")
        self.assertError(sp.post(f"/terminal/{t['id']}/input", {"data": 5}, headers=H), 400,
                         "invalid_argument")
        self.assertError(sp.post(f"/terminal/{t['id']}/input", {"data": "x" * (70 * 1024)},
                                 headers=H), 400, "invalid_argument")
        self.assertError(sp.post(f"/terminal/{t['id']}/input", {}, headers=H), 400,
                         "invalid_argument")

    def test_other_subject_gets_404(self):
        t = self.create()
        other = {"X-API-Key": sp.create_key()[1]}
        self.assertError(sp.get("/terminal/" + t["id"], headers=other), 404, "not_found")
        self.assertError(self.input(t["id"], "id\n", headers=other), 404, "not_found")
        self.assertError(sp.post(f"/terminal/{t['id']}/resize", {"cols": 5, "rows": 5},
                                 headers=other), 404, "not_found")
        self.assertError(sp.request("DELETE", "/terminal/" + t["id"], headers=other), 404,
                         "not_found")
        s = SSE(f"/terminal/{t['id']}/events", headers=other)
        self.addCleanup(s.close)
        self.assertEqual(s.status, 404)
        self.assertError(sp.get("/terminal/trm_doesnotexist", headers=H), 404, "not_found")
        self.assertError(sp.get("/terminal/not-an-id!", headers=H), 404, "not_found")

    def test_unwatched_terminal_is_closed(self):
        # The test stack runs with SP_TERMINAL_GRACE=5 (see ./sandpipe test).
        t = self.create()
        ok = sp.wait_until(lambda: sp.get("/terminal/" + t["id"], headers=H).json.get("status")
                           not in ("running", "starting"), 30, step=0.5)
        self.assertTrue(ok, "a terminal nobody watches must be closed after the grace period")
        self.assertError(self.input(t["id"], "x"), 409, "conflict")
        ok = sp.wait_until(lambda: sp.get("/sandboxes/" + t["sandbox_id"], headers=H).status == 404,
                           10)
        self.assertTrue(ok, "its sandbox must be gone too")

    def test_watched_terminal_stays(self):
        t = self.create()
        s = SSE(f"/terminal/{t['id']}/events", timeout=30)
        self.addCleanup(s.close)
        # Watch past the grace period, typing now and then.
        end = time.monotonic() + 8
        text = ""
        for ev, d in s.events(end):
            if ev == "output":
                text += d.get("data", "")
            if ev == "exit":
                break
        self.assertEqual(self.input(t["id"], "echo still-here\n").status, 204)
        text, _ = wait_output(s, "still-here")
        self.assertIn("still-here", text)


if __name__ == "__main__":
    unittest.main()
