"""test_sandboxes_zkill.py: the sandbox helper is killed with SIGKILL
(sorted after the other sandbox tests, before test_zz_redis_outage.py).
Every process of its sandboxes must die with it; the supervisor
(cli/sp_supervise.c) starts the helper again within 2 s, and it
reconciles (the old sandbox is gone, its running execution finished as
"error: sandbox_lost", its file watch ended) and new sandboxes work. While no helper runs (the
supervisor is told to hold it), /health marks it gone within 2 s, its
executions end as "sandbox_lost" within seconds (the sweeper of
sp-health, or the handler that waits for one) and callers that wait get
that answer at once."""
import glob
import os
import signal
import threading
import time

import sp
import sbx_util as su
from sbx_util import call
from test_sse import Stream

def state_dir():
    return os.path.abspath(sp.STATE)


def wait_helper_back(old_pid, timeout=5):
    """The helper's new pid once the supervisor started it again."""
    return sp.restarted("sp-helperd", old_pid, timeout)


def log_tail(n=1500):
    try:
        with open(os.path.join(state_dir(), "log", "sp-helperd.log"),
                  "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode(errors="replace")
    except OSError as e:
        return repr(e)


def live_helpers():
    r = sp.get("/health", timeout=5)
    try:
        return r.json["checks"]["helpers"]["live"]
    except (ValueError, KeyError, TypeError):
        return 0


class HelperKillTest(su.SbxCase):
    def test_sigkilled_helper(self):
        old_pid = sp.read_pid("sp-helperd")
        self.assertTrue(sp.pid_alive(old_pid))
        sid = self.new_sandbox()["id"]
        marker = su.unique_marker()
        exe = self.background(sid, ["sleep", str(marker)])
        exe2 = self.background(sid, "cat", stdin_open=True)
        host = sp.wait_until(lambda: su.pgrep(f"sleep {marker}"), 5)
        self.assertTrue(host, "the sandbox's sleep is not seen on the host")
        bwraps = su.pgrep(f"sandboxes/{sid}/workspace")
        self.assertTrue(bwraps, "no bwrap of the sandbox seen")
        # A file watch of the sandbox, read through the relay.
        w = call("POST", f"/sandboxes/{sid}/watches", {"path": "/workspace"})
        self.assertEqual(w.status, 201, w)
        watch = Stream(w.json["events_url"], headers=su.headers(), timeout=20)
        self.addCleanup(watch.close)

        os.kill(old_pid, signal.SIGKILL)
        self.assertTrue(sp.wait_until(lambda: not sp.pid_alive(old_pid),
                                      5, 0.05),
                        "the helper did not die")
        gone = sp.wait_until(
            lambda: not su.pgrep(f"sleep {marker}") and
            not su.pgrep(f"sandboxes/{sid}/workspace"), 5, 0.1)
        self.assertTrue(gone, "sandbox processes outlived the helper: "
                        f"{su.pgrep(f'sleep {marker}')} "
                        f"{su.pgrep(f'sandboxes/{sid}/workspace')}")

        # The supervisor started it again.
        new_pid = wait_helper_back(old_pid)
        self.assertIsNotNone(new_pid, f"the helper is not back: "
                             f"{sp.supervision().get('sp-helperd')}")
        # Up: the helper announces itself, and the old sandbox is gone.
        up = sp.wait_until(lambda: sp.pid_alive(new_pid) and
                           live_helpers() >= 1 and
                           call("GET", f"/sandboxes/{sid}").status == 404,
                           15, 0.2)
        self.assertTrue(up, f"helper not back: alive={sp.pid_alive(new_pid)} "
                            f"live={live_helpers()}; log: {log_tail()}")
        self.assertNotIn(sid, {s["id"] for s in
                               call("GET", "/sandboxes").json["sandboxes"]})
        # The executions that were running were finished as errors.
        for e in (exe, exe2):
            rec = su.redis_hash("exec:" + e)
            self.assertEqual(rec.get("status"), "error", rec)
            self.assertEqual(rec.get("error"), "sandbox_lost", rec)
            result = [ln for ln in su.redis("XRANGE", su.PREFIX + "events:" + e,
                                            "-", "+")
                      if "sandbox_lost" in ln]
            self.assertTrue(result, f"no result event for {e}")
        # Its watch ended too, and the stream with it.
        evs = watch.all()
        self.assertTrue(evs and evs[-1]["event"] == "end", evs)
        self.assertEqual(evs[-1]["data"]["reason"], "sandbox_lost")
        # Nothing of the old sandbox is left on the host.
        d = os.path.join(state_dir(), "sandboxes", sid)
        clean = sp.wait_until(lambda: not os.path.lexists(d), 10, 0.2)
        self.assertTrue(clean, f"{d} is left")
        with open("/proc/self/mountinfo") as f:
            self.assertNotIn(sid, f.read())
        self.assertTrue(
            sp.wait_until(lambda: not glob.glob(
                f"/sys/fs/cgroup/*/sandpipe*/{sid}"), 5),
            f"cgroups left: {glob.glob(f'/sys/fs/cgroup/*/sandpipe*/{sid}')}")
        # New sandboxes work, with commands, files and background output.
        sid2 = self.new_sandbox()["id"]
        self.assertEqual(self.ok(sid2, "echo back"), "back\n")
        self.put_ok(sid2, "/workspace/f", b"file")
        self.assertEqual(self.get_ok(sid2, "/workspace/f").body, b"file")
        exe = self.background(sid2, "echo bg")
        self.assertEqual(self.wait_result(sid2, exe)["stdout"], "bg\n")
        r = call("DELETE", f"/sandboxes/{sid2}", timeout=60)
        self.assertEqual(r.status, 204, r)
        self.assertGreaterEqual(live_helpers(), 1)


def result_events(exe):
    """The result events of execution exe, as their raw data strings."""
    lines = su.redis("XRANGE", su.PREFIX + "events:" + exe, "-", "+")
    return [ln for ln in lines if '"status"' in ln and '"exitCode"' in ln]


class HelperGoneTest(su.SbxCase):
    """The helper dies and stays dead for a while: nothing stays running."""

    def waiting(self, fn, out, name):
        def run():
            t0 = time.monotonic()
            out[name] = (fn(), time.monotonic() - t0)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def test_health_marks_a_dead_helper_within_2s(self):
        """The helper beats every 500 ms and is gone 2 s after its last
        beat (common/sp_lost.h): /health says so within 2 s of its death
        (and a little slack for the request itself)."""
        old_pid = sp.read_pid("sp-helperd")
        self.assertTrue(sp.wait_until(lambda: live_helpers() >= 1, 10, 0.1))
        sp.hold("sp-helperd")
        try:
            os.kill(old_pid, signal.SIGKILL)
            t_kill = time.monotonic()

            def down():
                h = sp.get("/health", timeout=5).json["checks"]["helpers"]
                return h["status"] == "down" and h["live"] == 0
            self.assertTrue(sp.wait_until(down, 4, 0.05),
                            "/health still counts the dead helper")
            took = time.monotonic() - t_kill
            self.assertLess(took, 2.3, f"/health saw it gone after {took:.2f} s")
            self.assertGreater(took, 1.0, "gone before its heartbeat aged")
        finally:
            sp.release("sp-helperd")
        self.assertIsNotNone(wait_helper_back(old_pid))
        self.assertTrue(sp.wait_until(lambda: live_helpers() >= 1, 15, 0.2),
                        log_tail())

    def test_executions_end_as_lost_while_no_helper_runs(self):
        old_pid = sp.read_pid("sp-helperd")
        self.assertTrue(sp.pid_alive(old_pid))
        before = set(su.redis("KEYS", su.PREFIX + "exec:*"))
        sid = self.new_sandbox()["id"]
        bg = self.background(sid, ["sleep", "600"])
        r = call("POST", "/execute-stream",
                 {"code": "import time\ntime.sleep(600)", "timeout": 600000})
        self.assertEqual(r.status, 200, r)
        streamed = r.json["executionId"]
        out = {}
        threads = [
            self.waiting(lambda: call("POST", "/execute",
                                      {"code": "import time\n"
                                               "print('started', flush=True)\n"
                                               "time.sleep(600)",
                                       "timeout": 600000}, timeout=120),
                         out, "execute"),
            self.waiting(lambda: call("POST", f"/sandboxes/{sid}/commands",
                                      {"cmd": "sleep 600", "timeout": 600},
                                      timeout=120),
                         out, "command"),
        ]
        # All four run before the helper dies.
        def n_running():
            keys = set(su.redis("KEYS", su.PREFIX + "exec:*")) - before
            return sum(su.redis("HGET", k, "status") == ["running"]
                       for k in keys)
        self.assertTrue(sp.wait_until(lambda: n_running() >= 4, 20, 0.2),
                        n_running())
        # The supervisor must not start it again while this test looks.
        sp.hold("sp-helperd")
        os.kill(old_pid, signal.SIGKILL)
        t_kill = time.monotonic()
        try:
            for t in threads:
                t.join(30)
            waited = time.monotonic() - t_kill
            # The waiting callers got the answer within seconds, not at
            # their 600 s timeout.
            self.assertLess(waited, 15, out)
            doc, _ = out["execute"]
            self.assertEqual(doc.status, 200, doc)
            self.assertEqual((doc.json["status"], doc.json["error"]),
                             ("error", "sandbox_lost"), doc.json)
            res, _ = out["command"]
            self.assertEqual(res.status, 200, res)
            self.assertEqual((res.json["status"], res.json.get("error")),
                             ("error", "sandbox_lost"), res.json)
            # Nobody waits for these two: the sweeper ends them.
            for e in (streamed, bg):
                ended = sp.wait_until(
                    lambda: su.redis_hash("exec:" + e).get("status") ==
                    "error", 10, 0.2)
                self.assertTrue(ended, su.redis_hash("exec:" + e))
                self.assertEqual(su.redis_hash("exec:" + e).get("error"),
                                 "sandbox_lost")
                self.assertEqual(len(result_events(e)), 1, result_events(e))
            doc = call("GET", f"/executions/{streamed}")
            self.assertEqual((doc.json["status"], doc.json["error"]),
                             ("error", "sandbox_lost"), doc.json)
            # The dead helper no longer counts, and its sandbox is gone.
            self.assertTrue(sp.wait_until(lambda: live_helpers() == 0, 5))
            self.assertEqual(call("GET", f"/sandboxes/{sid}").status, 404)
            r = call("POST", "/execute", {"code": "print(1)"})
            self.assertEqual(r.status, 503, r)
        finally:
            sp.release("sp-helperd")
        new_pid = wait_helper_back(old_pid)
        self.assertIsNotNone(new_pid, sp.supervision().get("sp-helperd"))
        self.assertTrue(sp.wait_until(lambda: live_helpers() >= 1, 15, 0.2),
                        log_tail())
        # The restarted helper adds no second result to what was ended.
        for e in (streamed, bg):
            self.assertEqual(len(result_events(e)), 1, result_events(e))
        r = call("POST", "/execute", {"code": "print(1)"}, timeout=60)
        self.assertEqual((r.status, r.json.get("output")), (200, "1\n"), r)
        self.assertTrue(sp.pid_alive(new_pid))
