"""test_sandboxes_pause.py: pause and resume of a sandbox, and its metrics
(README "Sandboxes"; docs/DESIGN.md §6.2).

- A paused sandbox uses no CPU (its cgroup CPU time stops), its timeout
  stands still, and every call that needs its processes (commands, stdin,
  files, contexts) is 409 `paused`; GET shows status "paused" and
  paused_at. Pausing a paused sandbox and resuming a running one are
  no-ops answered 200.
- After resume a busy loop goes on (its counter file grows) and a command
  started before the pause ends normally.
- A paused sandbox can be deleted: nothing of it stays (processes,
  cgroups, its metrics).
- A sandbox paused longer than SP_PAUSE_MAX is deleted.
- GET …/metrics returns samples {timestamp, timestampUnix, cpuCount,
  cpuUsedPct, memUsed, memTotal, diskUsed, diskTotal} in a range of Unix
  seconds; a bad range is 400, another subject's sandbox 404; a paused
  sandbox is still sampled, at 0 % CPU.
Every wait is bounded; nothing asserts a speed."""
import glob
import time

import sp
import sbx_util as su
from sbx_util import call

PAUSE_MAX = su.cfg("SP_PAUSE_MAX", 86400)
METRICS_INTERVAL_S = su.cfg("SP_METRICS_INTERVAL", 5000) / 1000

# A loop that counts as fast as it can into /workspace/n.
COUNTER = ("i=0; while :; do i=$((i+1)); "
           "[ $((i % 200)) -eq 0 ] && echo $i > /workspace/n.tmp && "
           "mv /workspace/n.tmp /workspace/n; done")


def cgroups_of(sid):
    return (glob.glob(f"/sys/fs/cgroup/*/sandpipe*/{sid}") +
            glob.glob(f"/sys/fs/cgroup/sandpipe*/{sid}"))


class PauseTest(su.SbxCase):
    def pause(self, sid, what="pause"):
        r = call("POST", f"/sandboxes/{sid}/{what}", timeout=30)
        self.assertEqual(r.status, 200, r)
        return r.json

    def info(self, sid):
        r = call("GET", f"/sandboxes/{sid}")
        self.assertEqual(r.status, 200, r)
        return r.json

    def counter(self, sid):
        r = self.fget(sid, "/workspace/n")
        self.assertEqual(r.status, 200, r)
        return int(r.body.decode().strip() or 0)

    def cpu_ms(self, sid):
        usage = self.info(sid)["usage"]
        self.assertIsInstance(usage, dict)
        return usage["cpu_ms"]

    def start_counter(self, sid):
        exe = self.background(sid, ["sh", "-c", COUNTER])
        self.assertTrue(sp.wait_until(
            lambda: self.fget(sid, "/workspace/n").status == 200, 20),
            "the counter never wrote its file")
        return exe

    def test_pause_freezes_and_resume_continues(self):
        sid = self.new_sandbox({"timeout": 600})["id"]
        self.start_counter(sid)
        later = self.background(sid, ["sh", "-c", "sleep 2; echo finished"],
                                timeout=60)
        doc = self.pause(sid)
        self.assertEqual(doc["status"], "paused", doc)
        self.assertIsInstance(doc["paused_at"], str, doc)
        # No CPU while paused: the sandbox's CPU time stands still.
        c1, t1 = self.cpu_ms(sid), self.info(sid)["timeout"]
        time.sleep(2.5)
        info = self.info(sid)
        self.assertEqual(info["status"], "paused", info)
        self.assertLessEqual(info["usage"]["cpu_ms"] - c1, 5, info)
        # Nor does its timeout run.
        self.assertEqual(info["timeout"], t1, info)
        # Idempotent: the same pause, answered 200.
        again = self.pause(sid)
        self.assertEqual((again["status"], again["paused_at"]),
                         ("paused", doc["paused_at"]), again)
        back = self.pause(sid, "resume")
        self.assertEqual(back["status"], "running", back)
        self.assertIsNone(back["paused_at"], back)
        self.assertGreaterEqual(back["timeout"], t1 - 2, back)
        n1 = self.counter(sid)
        self.assertTrue(sp.wait_until(lambda: self.counter(sid) > n1, 20),
                        "the counter did not go on after resume")
        st = self.wait_result(sid, later, timeout=30)
        self.assertEqual(st["result"]["data"]["status"], "ok", st)
        self.assertIn("finished", st["stdout"])
        again = self.pause(sid, "resume")
        self.assertEqual(again["status"], "running", again)

    def test_calls_on_a_paused_sandbox_are_409_paused(self):
        sid = self.new_sandbox()["id"]
        cat = self.background(sid, "cat", stdin_open=True)
        self.put_ok(sid, "/workspace/f.txt", b"x")
        self.pause(sid)
        self.assertError(self.run_raw(sid, "echo hi"), 409, "paused")
        self.assertError(self.run_raw(sid, "sleep 1", background=True), 409,
                         "paused")
        self.assertError(self.stdin(sid, cat, "more\n"), 409, "paused")
        self.assertError(self.fget(sid, "/workspace/f.txt"), 409, "paused")
        self.assertError(self.put(sid, "/workspace/g.txt", b"y"), 409,
                         "paused")
        self.assertError(call("GET", f"/sandboxes/{sid}/tree"), 409,
                         "paused")
        self.assertError(call("POST", f"/sandboxes/{sid}/contexts",
                              {"language": "python"}), 409, "paused")
        # The life cycle still answers: get, timeout.
        r = call("POST", f"/sandboxes/{sid}/timeout", {"timeout": 120})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["status"], r.json["timeout"]),
                         ("paused", 120), r)
        self.pause(sid, "resume")
        self.assertEqual(self.ok(sid, "cat /workspace/f.txt"), "x")

    def test_delete_while_paused(self):
        sid = self.new_sandbox()["id"]
        marker = su.unique_marker()
        self.background(sid, ["sleep", str(marker)])
        self.start_counter(sid)
        self.assertTrue(sp.wait_until(
            lambda: su.pgrep(f"sleep {marker}"), 10))
        self.assertTrue(cgroups_of(sid), "no cgroup of the sandbox seen")
        self.pause(sid)
        r = call("DELETE", f"/sandboxes/{sid}", timeout=60)
        self.assertEqual(r.status, 204, r)
        self.assertError(call("GET", f"/sandboxes/{sid}"), 404, "not_found")
        self.assertTrue(sp.wait_until(
            lambda: not su.pgrep(f"sleep {marker}"), 5),
            "the paused sandbox's sleep outlived its delete")
        self.assertTrue(sp.wait_until(lambda: not cgroups_of(sid), 5),
                        f"cgroups left: {cgroups_of(sid)}")
        self.assertEqual(su.redis("EXISTS", f"{su.PREFIX}sbx:{sid}:metrics"),
                         ["0"])

    def test_paused_longer_than_pause_max_is_deleted(self):
        if PAUSE_MAX > 60:
            self.skipTest(f"SP_PAUSE_MAX is {PAUSE_MAX} s in this stack")
        sid = self.new_sandbox({"timeout": 3600})["id"]
        self.pause(sid)
        gone = sp.wait_until(
            lambda: call("GET", f"/sandboxes/{sid}").status == 404,
            PAUSE_MAX + 15, step=0.5)
        self.assertTrue(gone, f"still there {PAUSE_MAX + 15} s after pause")
        self.assertTrue(sp.wait_until(lambda: not cgroups_of(sid), 5),
                        f"cgroups left: {cgroups_of(sid)}")

    def test_unknown_and_foreign_sandboxes_are_404(self):
        sid = self.new_sandbox()["id"]
        _, other, _ = sp.create_key()
        for what in ("pause", "resume"):
            self.assertError(call("POST", f"/sandboxes/{sid}/{what}",
                                  key=other), 404, "not_found")
            self.assertError(call("POST", f"/sandboxes/sbx_nope/{what}"),
                             404, "not_found")
        self.assertEqual(self.info(sid)["status"], "running")


class MetricsTest(su.SbxCase):
    def metrics(self, sid, query="", key=None):
        return call("GET", f"/sandboxes/{sid}/metrics{query}", key=key)

    def samples(self, sid, query=""):
        r = self.metrics(sid, query)
        self.assertEqual(r.status, 200, r)
        self.assertIsInstance(r.json, list, r)
        return r.json

    def test_samples_and_ranges(self):
        t0 = int(time.time())
        sid = self.new_sandbox({"limits": {"memory_mb": 256}})["id"]
        self.background(sid, ["sh", "-c", COUNTER])
        got = sp.wait_until(lambda: len(self.samples(sid)) >= 2,
                            3 * METRICS_INTERVAL_S + 10, step=0.5)
        self.assertTrue(got, "fewer than 2 samples")
        s = self.samples(sid)[-1]
        self.assertEqual(set(s), {"timestamp", "timestampUnix", "cpuCount",
                                  "cpuUsedPct", "memUsed", "memTotal",
                                  "diskUsed", "diskTotal", "netRxBytes",
                                  "netTxBytes"}, s)
        # No network: nothing in or out.
        self.assertEqual((s["netRxBytes"], s["netTxBytes"]), (0, 0), s)
        self.assertGreater(s["memUsed"], 0, s)
        self.assertEqual(s["memTotal"], 256 * 1024 * 1024, s)
        self.assertEqual(s["cpuCount"], su.DEF_CPUS_MILLI / 1000, s)
        self.assertGreater(s["diskTotal"], 0, s)
        self.assertLessEqual(s["diskTotal"], su.DEF_DISK * 1024 * 1024, s)
        self.assertTrue(0 <= s["diskUsed"] <= s["diskTotal"], s)
        self.assertTrue(0 <= s["cpuUsedPct"] <= 100 * s["cpuCount"] + 5, s)
        self.assertGreaterEqual(s["timestampUnix"], t0, s)
        self.assertRegex(s["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # The busy loop is seen.
        self.assertTrue(any(x["cpuUsedPct"] > 1 for x in self.samples(sid)),
                        self.samples(sid))
        # Ranges (inclusive, Unix seconds).
        now = int(time.time())
        self.assertEqual(self.samples(sid, f"?start={now + 100}"), [])
        self.assertEqual(self.samples(sid, f"?end={t0 - 100}"), [])
        first = self.samples(sid)[0]["timestampUnix"]
        only = self.samples(sid, f"?start={first}&end={first}")
        self.assertTrue(only and all(x["timestampUnix"] == first
                                     for x in only), only)
        # A paused sandbox is still sampled, at no CPU.
        r = call("POST", f"/sandboxes/{sid}/pause")
        self.assertEqual(r.status, 200, r)
        paused = int(time.time()) + 1
        later = sp.wait_until(
            lambda: len(self.samples(sid, f"?start={paused}")) >= 2,
            3 * METRICS_INTERVAL_S + 10, step=0.5)
        self.assertTrue(later, "no samples while paused")
        self.assertLess(self.samples(sid, f"?start={paused}")[-1]
                        ["cpuUsedPct"], 1)

    def test_bad_ranges_and_owners(self):
        sid = self.new_sandbox()["id"]
        for q, field in (("?start=abc", "start"), ("?end=-5", "end"),
                         ("?start=1.5", "start"), ("?start=20&end=10",
                                                   "start"),
                         ("?end=99999999999999999999", "end")):
            self.assertError(self.metrics(sid, q), 400, "invalid_argument",
                             field)
        _, other, _ = sp.create_key()
        self.assertError(self.metrics(sid, key=other), 404, "not_found")
        self.assertError(self.metrics("sbx_nope"), 404, "not_found")
