"""test_workflows.py: workflows (handlers/workflows*.c, worker/) over the
real stack: POST /workflows queues a run that sp-worker drives through
its steps in a fresh sandbox (inputs from a bucket, the language's syntax
check, tests and lint commands, the run, outputs stored in a bucket).
A syntax error gives findings (file, line, message) and the run step
never executes; each language's checker; a failing tests command; cancel
while the run step runs; retry from the failed step keeping the earlier
results; the run's events over SSE and on its clientId stream; sp-worker
killed by pid mid-run fails the run explicitly (worker_lost), never left
running, and the helper killed mid-run fails its step; cron validation
naming the field; an `at` schedule that runs; another subject's run and
workflow are 404; a subject's active runs are bounded (429); bad input
is 400 naming the field; a step longer than the worker's lease is kept
(a worker of its own with a short lease). The bucket-to-bucket case runs
on both storage backends (the s3 one: sp-storage and sp-worker against
s3rver, storage_util.py). Every wait is bounded; nothing asserts a
duration."""
import datetime
import os
import signal
import urllib.parse
import uuid

import sp
import netns_util
import storage_util
from test_sse import Stream

KEY = {"X-API-Key": sp.API_KEY}
MAX_ACTIVE = int(os.environ.get("SP_WORKFLOW_MAX_ACTIVE", "16"))
ENDED = ("succeeded", "failed", "cancelled")
STEPS = ["inputs", "syntax", "tests", "lint", "run", "outputs"]


def post_wf(body, headers=None):
    return sp.post("/workflows", body, headers=headers or KEY, timeout=30)


def run_doc(run_id, headers=None):
    r = sp.get(f"/workflows/runs/{run_id}", headers=headers or KEY)
    assert r.status == 200, r
    return r.json


def wait_end(run_id, timeout=180, headers=None):
    doc = sp.wait_until(lambda: (lambda d: d if d["status"] in ENDED
                                 else None)(run_doc(run_id, headers)),
                        timeout, 0.2)
    assert doc, f"run {run_id} did not end: {run_doc(run_id, headers)}"
    return doc


def step(doc, name):
    return doc["steps"][STEPS.index(name)]


def new_bucket(headers=None):
    name = "wf-" + uuid.uuid4().hex[:12]
    r = sp.post("/buckets", {"name": name}, headers=headers or KEY)
    assert r.status in (200, 201), r
    return name


def put_object(bucket, key, data):
    r = sp.request("PUT", f"/buckets/{bucket}/objects/"
                   f"{urllib.parse.quote(key, safe='/')}", body=data,
                   headers=KEY, timeout=30)
    assert r.status in (200, 201), r


def get_object(bucket, key):
    return sp.get(f"/buckets/{bucket}/objects/"
                  f"{urllib.parse.quote(key, safe='/')}", headers=KEY,
                  timeout=30)


def log_text(events):
    return "".join(e["data"].get("text", "") for e in events
                   if e.get("event") == "log")


class WorkflowTest(sp.Case):
    def start(self, body, headers=None):
        r = post_wf(body, headers)
        self.assertEqual(r.status, 202, r)
        self.assertTrue(r.json["run_id"].startswith("wfr_"), r)
        self.assertTrue(r.json["workflow_id"].startswith("wf_"), r)
        return r.json["run_id"]

    def events(self, run_id, headers=None):
        s = Stream(f"/workflows/runs/{run_id}/events",
                   headers=headers or KEY, timeout=180)
        self.assertEqual(s.status, 200)
        evs = s.until(lambda e: e.get("event") == "result")
        s.close()
        return evs

    def test_inputs_validate_run_outputs(self):
        self.inputs_to_outputs()

    def inputs_to_outputs(self):
        src, dst = new_bucket(), new_bucket()
        put_object(src, "in/data.txt", b"21")
        put_object(src, "in/sub/more.txt", b"hello")
        code = ("import os\n"
                "n = int(open('data.txt').read())\n"
                "os.makedirs('out/deep', exist_ok=True)\n"
                "open('out/result.txt', 'w').write(str(n * 2))\n"
                "open('out/deep/echo.txt', 'w').write(open('sub/more.txt')"
                ".read())\n"
                "print('done', n * 2)\n")
        run_id = self.start({
            "name": "double", "language": "python", "code": code,
            "inputs": {"bucket": src, "prefix": "in/"},
            "validate": {"syntax": True, "tests": "test -s data.txt",
                         "lint": "python3 -c 'import ast,sys; "
                                 "ast.parse(open(\"main.py\").read())'"},
            "outputs": {"paths": ["out"], "bucket": dst, "prefix": "r1/"}})
        doc = wait_end(run_id)
        self.assertEqual(doc["status"], "succeeded", doc)
        self.assertEqual([s["step"] for s in doc["steps"]], STEPS)
        self.assertEqual([s["status"] for s in doc["steps"]],
                         ["passed"] * 6, doc)
        self.assertEqual(sorted(step(doc, "inputs")["objects"]),
                         ["in/data.txt", "in/sub/more.txt"])
        self.assertIn("done 42", step(doc, "run")["output"]["stdout"])
        for s in doc["steps"]:
            self.assertIsInstance(s["duration_ms"], (int, float))
        self.assertEqual(sorted(doc["output_objects"]),
                         ["r1/out/deep/echo.txt", "r1/out/result.txt"])
        self.assertEqual(get_object(dst, "r1/out/result.txt").body, b"42")
        self.assertEqual(get_object(dst, "r1/out/deep/echo.txt").body,
                         b"hello")
        self.assertIsNone(doc["error"])
        # In the history, newest first.
        r = sp.get("/workflows/runs?limit=5", headers=KEY)
        self.assertEqual(r.status, 200, r)
        self.assertIn(run_id, [x["run_id"] for x in r.json["runs"]])

    def test_syntax_error_never_runs(self):
        # main.py is fine and would print the marker; lib.py is not.
        marker = "RAN-" + uuid.uuid4().hex
        run_id = self.start({
            "language": "python",
            "files": {"main.py": f"print('{marker}')\n",
                      "pkg/lib.py": "x = 1\ndef f(:\n    pass\n"}})
        evs = self.events(run_id)
        doc = wait_end(run_id)
        self.assertEqual(doc["status"], "failed", doc)
        self.assertEqual(doc["error"]["code"], "validation_failed", doc)
        syn = step(doc, "syntax")
        self.assertEqual(syn["status"], "failed", syn)
        self.assertEqual(len(syn["findings"]), 1, syn)
        f = syn["findings"][0]
        self.assertTrue(f["file"].endswith("pkg/lib.py"), f)
        self.assertEqual(f["line"], 2, f)
        self.assertIn("SyntaxError", f["message"])
        # The run step never executed: no execution, no output, no marker
        # anywhere in the run's events.
        run = step(doc, "run")
        self.assertEqual(run["status"], "pending", run)
        self.assertNotIn("execution_id", run)
        self.assertNotIn(marker.encode(), b"".join(e["raw"] for e in evs))
        self.assertEqual(evs[-1]["data"]["status"], "failed")

    def test_each_languages_syntax_check(self):
        cases = [
            ("python", "print('ok-py')\n", "x = (1,\n\n", "main.py", 1),
            ("javascript", "console.log('ok-js')\n", "let a = 1;\nlet b = ;\n",
             "main.js", 2),
            ("bash", "echo ok-sh\n", "echo a\nif true; then\n  echo b\nfi fi\n",
             "main.sh", 4),
            ("c", "#include <stdio.h>\nint main(void){puts(\"ok-c\");"
                  "return 0;}\n",
             "int main(void) {\n  return 0\n}\n", "main.c", 2),
        ]
        for lang, good, bad, fname, line in cases:
            with self.subTest(language=lang):
                ok = wait_end(self.start({"language": lang, "code": good}))
                self.assertEqual(ok["status"], "succeeded", ok)
                self.assertIn(f"ok-{fname.split('.')[1]}"
                              if lang != "python" else "ok-py",
                              step(ok, "run")["output"]["stdout"])
                doc = wait_end(self.start({"language": lang, "code": bad}))
                self.assertEqual(doc["status"], "failed", doc)
                syn = step(doc, "syntax")
                self.assertGreaterEqual(len(syn["findings"]), 1, syn)
                f = syn["findings"][0]
                self.assertTrue(f["file"].endswith(fname), f)
                self.assertEqual(f["line"], line, f)
                self.assertTrue(f["message"], f)
                self.assertEqual(step(doc, "run")["status"], "pending")

    def test_failing_tests_command(self):
        doc = wait_end(self.start({
            "language": "bash", "code": "echo never\n",
            "validate": {"tests": "echo checking; exit 3"}}))
        self.assertEqual(doc["status"], "failed", doc)
        self.assertEqual(doc["error"]["code"], "validation_failed")
        self.assertEqual(step(doc, "syntax")["status"], "passed")
        t = step(doc, "tests")
        self.assertEqual((t["status"], t["exit_code"]), ("failed", 3), t)
        self.assertIn("checking", t["output"]["stdout"])
        self.assertEqual(step(doc, "run")["status"], "pending")

    def wait_step_running(self, run_id, name, timeout=120):
        def running():
            d = run_doc(run_id)
            return d if step(d, name)["status"] == "running" else None
        d = sp.wait_until(running, timeout, 0.1)
        self.assertTrue(d, f"step {name} never ran: {run_doc(run_id)}")
        return d

    def test_cancel_mid_run(self):
        run_id = self.start({"language": "bash",
                             "code": "echo started\nsleep 120\necho never\n",
                             "run": {"timeout": 300}})
        self.wait_step_running(run_id, "run")
        r = sp.post(f"/workflows/runs/{run_id}/cancel", headers=KEY)
        self.assertEqual(r.status, 202, r)
        doc = wait_end(run_id, 60)
        self.assertEqual(doc["status"], "cancelled", doc)
        self.assertEqual(step(doc, "run")["status"], "cancelled", doc)
        self.assertEqual(step(doc, "outputs")["status"], "pending")
        self.assertError(sp.post(f"/workflows/runs/{run_id}/cancel",
                                 headers=KEY), 409, "conflict")

    def test_url_input_not_public_fails_at_inputs(self):
        # The egress check refuses loopback, private and link-local
        # addresses (and this host's own): the form is fine at POST, the
        # inputs step fails naming the URL and the rule, and the code
        # never runs (a fetch that is allowed: test_url_inputs_fetched).
        marker = "RAN-" + uuid.uuid4().hex
        for url in (f"http://127.0.0.1:{sp.PORT}/health",
                    f"http://localhost:{sp.PORT}/health",
                    "http://169.254.169.254/latest/meta-data",
                    "http://[::ffff:127.0.0.1]/x"):
            with self.subTest(url=url):
                run_id = self.start({
                    "language": "python", "code": f"print('{marker}')\n",
                    "inputs": {"urls": [url]}})
                doc = wait_end(run_id)
                self.assertEqual(doc["status"], "failed", doc)
                self.assertEqual(doc["error"]["code"], "step_failed", doc)
                inp = step(doc, "inputs")
                self.assertEqual(inp["status"], "failed", inp)
                self.assertIn("inputs.urls[0]", inp["error"])
                self.assertIn("url_not_public", inp["error"])
                self.assertIn("url_not_public", doc["error"]["message"])
                run = step(doc, "run")
                self.assertEqual(run["status"], "pending", run)
                self.assertNotIn("execution_id", run)

    def test_url_inputs_fetched(self):
        # A server at a public-looking address (TEST-NET-2, in a network
        # namespace this test makes: netns_util) is fetched into
        # /workspace, at a given path or the URL's last segment.
        web = netns_util.WebServer()
        web.start({"data.txt": b"21", "table.csv": b"a,b\n1,2\n"})
        self.addCleanup(web.stop)
        run_id = self.start({
            "language": "python",
            "code": ("n = int(open('in/n.txt').read())\n"
                     "rows = open('table.csv').read().split()\n"
                     "print('got', n * 2, len(rows))\n"),
            "inputs": {"urls": [{"url": web.url("data.txt"),
                                 "path": "in/n.txt"},
                                web.url("table.csv")]}})
        doc = wait_end(run_id)
        self.assertEqual(doc["status"], "succeeded", doc)
        inp = step(doc, "inputs")
        self.assertEqual([(u["path"], u["size"]) for u in inp["urls"]],
                         [("in/n.txt", 2), ("table.csv", 8)], inp)
        self.assertIn("got 42 2", step(doc, "run")["output"]["stdout"])

    def test_url_inputs_come_after_the_buckets(self):
        # Bucket inputs are written first, then the URLs in order: the
        # first URL (loopback) fails the step after the bucket's object
        # was copied, and its index is the one named. Target paths given
        # or derived (a last segment "..", a query) pass validation.
        src = new_bucket()
        put_object(src, "in/data.txt", b"1")
        run_id = self.start({
            "language": "bash", "code": "echo never\n",
            "inputs": {"bucket": src, "prefix": "in/",
                       "urls": [{"url": "http://127.0.0.1/a",
                                 "path": "sub/a.bin"},
                                "http://[::1]/..",
                                "http://127.0.0.1/b?x=1#y"]}})
        doc = wait_end(run_id)
        self.assertEqual(doc["status"], "failed", doc)
        inp = step(doc, "inputs")
        self.assertEqual(inp["objects"], ["in/data.txt"], inp)
        self.assertIn("inputs.urls[0]", inp["error"])
        self.assertEqual(inp["urls"], [], inp)

    def test_retry_from_failed_step(self):
        src = new_bucket()
        put_object(src, "flag.txt", b"bad")
        code = ("import sys\nflag = open('flag.txt').read()\n"
                "print('flag', flag)\nsys.exit(0 if flag == 'good' else 1)\n")
        first = self.start({"language": "python", "code": code,
                            "inputs": {"bucket": src},
                            "validate": {"tests": "echo tested"}})
        doc = wait_end(first)
        self.assertEqual(doc["status"], "failed", doc)
        self.assertEqual(doc["error"]["code"], "step_failed")
        self.assertEqual(step(doc, "run")["status"], "failed")
        tests_exe = step(doc, "tests")["execution_id"]
        self.assertError(sp.post("/workflows/runs/wfr_nosuchrunatall0000"
                                 "00/retry", headers=KEY), 404, "not_found")
        put_object(src, "flag.txt", b"good")
        r = sp.post(f"/workflows/runs/{first}/retry", headers=KEY, timeout=30)
        self.assertEqual(r.status, 202, r)
        self.assertEqual((r.json["retry_of"], r.json["from_step"]),
                         (first, "run"), r)
        again = wait_end(r.json["run_id"])
        self.assertEqual(again["status"], "succeeded", again)
        self.assertEqual(again["retry_of"], first)
        # Validation kept from the first run, not run again; the inputs
        # step runs again (a new sandbox), the run step too.
        t = step(again, "tests")
        self.assertEqual((t["status"], t.get("reused"), t["execution_id"]),
                         ("passed", True, tests_exe), t)
        self.assertTrue(step(again, "syntax").get("reused"))
        self.assertFalse(step(again, "inputs").get("reused"))
        self.assertIn("flag good", step(again, "run")["output"]["stdout"])
        # A run that succeeded is not retried.
        self.assertError(sp.post(f"/workflows/runs/{again['run_id']}/retry",
                                 headers=KEY), 409, "conflict")

    def test_events_over_sse_and_client_stream(self):
        client = "wfc-" + uuid.uuid4().hex[:12]
        cs = Stream(f"/events?clientId={client}", headers=KEY, timeout=120)
        self.assertEqual(cs.status, 200)
        marker = "hello-" + uuid.uuid4().hex[:8]
        run_id = self.start({"language": "python",
                             "code": f"print('{marker}')\n",
                             "clientId": client})
        evs = self.events(run_id)
        types = [e["event"] for e in evs]
        self.assertEqual(types[-1], "result")
        self.assertEqual(evs[-1]["data"]["status"], "succeeded")
        self.assertEqual(evs[-1]["data"]["runId"], run_id)
        changes = [(e["data"]["step"], e["data"]["status"]) for e in evs
                   if e["event"] == "step"]
        self.assertIn(("syntax", "running"), changes)
        self.assertIn(("run", "passed"), changes)
        self.assertLess(changes.index(("syntax", "passed")),
                        changes.index(("run", "running")))
        self.assertIn(marker, log_text(evs))
        # Resume after the first event gives the rest, the same.
        s = Stream(f"/workflows/runs/{run_id}/events",
                   headers=dict(KEY, **{"Last-Event-ID": evs[0]["id"]}))
        rest = s.until(lambda e: e.get("event") == "result")
        s.close()
        self.assertEqual([e["id"] for e in rest], [e["id"] for e in evs[1:]])
        # The clientId stream carried the steps' executions, live.
        got = cs.until(lambda e: e.get("event") == "stdout" and
                       marker in e["data"].get("data", ""), 200)
        cs.close()
        self.assertTrue(got and marker in got[-1]["data"]["data"], got[-5:])

    def kill_mid_run(self, program):
        """A run killed by pid while its run step runs: the ended run."""
        run_id = self.start({"language": "bash",
                             "code": "echo started\nsleep 120\n",
                             "run": {"timeout": 300}})
        self.wait_step_running(run_id, "run")
        old = sp.read_pid(program)
        os.kill(old, signal.SIGKILL)
        self.assertIsNotNone(sp.restarted(program, old, 10))
        doc = wait_end(run_id, 120)
        self.assertEqual(doc["status"], "failed", doc)
        return doc

    def test_worker_killed_mid_run_is_failed_not_left_running(self):
        doc = self.kill_mid_run("sp-worker")
        self.assertEqual(doc["error"]["code"], "worker_lost", doc)
        self.assertEqual(step(doc, "run")["status"], "failed")
        # And the worker works after its restart.
        ok = wait_end(self.start({"language": "bash", "code": "echo ok\n"}))
        self.assertEqual(ok["status"], "succeeded", ok)

    def test_zz_helper_killed_mid_run_fails_the_run(self):
        # Last of the class: the helper comes back, its pools refill.
        doc = self.kill_mid_run("sp-helperd")
        self.assertEqual(doc["error"]["code"], "step_failed", doc)
        self.assertEqual(step(doc, "run")["status"], "failed", doc)
        self.assertEqual(step(doc, "outputs")["status"], "pending", doc)

        def runs_again():
            d = wait_end(self.start({"language": "bash",
                                     "code": "echo back\n"}), 120)
            return d if d["status"] == "succeeded" else None
        # The first runs may find no live helper yet (sandbox_failed).
        self.assertTrue(sp.wait_until(runs_again, 60, 1),
                        "no workflow ran after the helper came back")

    def test_active_runs_per_subject_are_bounded(self):
        _, key2, _ = sp.create_key()
        other = {"X-API-Key": key2}
        body = {"language": "bash", "code": "sleep 120\n",
                "run": {"timeout": 300}}
        runs = []
        try:
            for _ in range(MAX_ACTIVE):
                runs.append(self.start(body, other))
            err = self.assertError(post_wf(body, other), 429, "rate_limited")
            self.assertIn(str(MAX_ACTIVE), err["message"])
            # Another subject is not held up by this one's runs.
            mine = self.start({"language": "bash", "code": "echo free\n"})
        finally:
            for run_id in runs:
                sp.post(f"/workflows/runs/{run_id}/cancel", headers=other)
        for run_id in runs:
            self.assertEqual(wait_end(run_id, 120, other)["status"],
                             "cancelled")
        self.assertEqual(wait_end(mine)["status"], "succeeded")
        # Ended runs count no more.
        self.assertEqual(post_wf({"language": "bash", "code": "true\n"},
                                 other).status, 202)

    def test_cron_validation(self):
        bad = [("61 * * * *", "minute"), ("* 24 * * *", "hour"),
               ("* * 0 * *", "day_of_month"), ("* * * 13 *", "month"),
               ("* * * * 8", "day_of_week"), ("*/0 * * * *", "minute"),
               ("5-1 * * * *", "minute"), ("* * * *", "cron"),
               ("* * * * * *", "cron"), ("a * * * *", "minute"),
               ("0 0 30 2 *", "day_of_month")]
        for expr, rule in bad:
            with self.subTest(cron=expr):
                r = post_wf({"language": "bash", "code": "true\n",
                             "schedule": {"cron": expr}})
                err = self.assertError(r, 400, "invalid_argument",
                                       "schedule.cron")
                self.assertEqual(err.get("rule"), rule, r)
        r = post_wf({"language": "bash", "code": "true\n",
                     "schedule": {"cron": "*/5 1-3,7 * * 1-5"}})
        self.assertEqual(r.status, 201, r)
        self.assertIsNone(r.json["run_id"])
        wf = r.json["workflow_id"]
        g = sp.get(f"/workflows/{wf}", headers=KEY)
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.json["schedule"]["cron"], "*/5 1-3,7 * * 1-5")
        self.assertEqual(g.json["next_run_at"], r.json["next_run_at"])
        self.assertEqual(sp.request("DELETE", f"/workflows/{wf}",
                                    headers=KEY).status, 204)
        self.assertEqual(sp.get(f"/workflows/{wf}", headers=KEY).status, 404)
        self.assertError(post_wf({"language": "bash", "code": "true\n",
                                  "schedule": {"at": "yesterday"}}),
                         400, "invalid_argument", "schedule.at")
        self.assertError(post_wf({"language": "bash", "code": "true\n",
                                  "schedule": {"at": "2001-01-01T00:00:00Z"}}),
                         400, "invalid_argument", "schedule.at")

    def test_at_schedule_runs(self):
        at = (datetime.datetime.now(datetime.timezone.utc) +
              datetime.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = post_wf({"language": "python", "code": "print('scheduled')\n",
                     "schedule": {"at": at}})
        self.assertEqual(r.status, 201, r)
        wf = r.json["workflow_id"]

        def last_run():
            g = sp.get(f"/workflows/{wf}", headers=KEY)
            return g.json.get("last_run_id") if g.status == 200 else None
        run_id = sp.wait_until(last_run, 60, 0.2)
        self.assertTrue(run_id, "the at schedule never ran")
        doc = wait_end(run_id)
        self.assertEqual(doc["status"], "succeeded", doc)
        self.assertEqual(doc["workflow_id"], wf)
        self.assertIn("scheduled", step(doc, "run")["output"]["stdout"])
        self.assertIsNone(sp.get(f"/workflows/{wf}",
                                 headers=KEY).json["next_run_at"])

    def test_another_subjects_run_is_404(self):
        _, key2, _ = sp.create_key()
        other = {"X-API-Key": key2}
        run_id = self.start({"language": "bash", "code": "echo mine\n"})
        wf = run_doc(run_id)["workflow_id"]
        for method, path in [("GET", f"/workflows/runs/{run_id}"),
                             ("POST", f"/workflows/runs/{run_id}/cancel"),
                             ("POST", f"/workflows/runs/{run_id}/retry"),
                             ("GET", f"/workflows/runs/{run_id}/events"),
                             ("GET", f"/workflows/{wf}"),
                             ("DELETE", f"/workflows/{wf}")]:
            with self.subTest(path=path, method=method):
                self.assertError(sp.request(method, path, headers=other), 404,
                                 "not_found")
        r = sp.get("/workflows/runs?limit=100", headers=other)
        self.assertEqual(r.status, 200, r)
        self.assertNotIn(run_id, [x["run_id"] for x in r.json["runs"]])
        # Nor another's bucket as input or output.
        mine = new_bucket()
        self.assertError(post_wf({"language": "bash", "code": "true\n",
                                  "inputs": {"bucket": mine}}, other),
                         404, "not_found")
        self.assertEqual(wait_end(run_id)["status"], "succeeded")
        self.assertError(sp.get(f"/workflows/runs/{run_id}"), 401,
                         "unauthenticated")

    def test_bad_input_is_400_naming_the_field(self):
        b = new_bucket()
        cases = [
            ({}, "language"),
            ({"language": "cobol", "code": "x"}, "language"),
            ({"language": "python", "code": 5}, "code"),
            ({"language": "python", "files": ["main.py"]}, "files"),
            ({"language": "python", "files": {"../escape.py": "x"}}, "files"),
            ({"language": "python", "files": {"/etc/passwd": "x"}}, "files"),
            ({"language": "python", "files": {"a/./b.py": "x"}}, "files"),
            ({"language": "python", "files": {"main.py": 1}}, "files"),
            ({"language": "python", "code": "x", "files": {"main.py": "y"}},
             "code"),
            ({"language": "python", "files": {"a.py": "x"}}, "run.entrypoint"),
            ({"language": "python", "code": "x",
              "run": {"entrypoint": "../main.py"}}, "run.entrypoint"),
            ({"language": "python", "code": "x", "run": {"cmd": ""}},
             "run.cmd"),
            ({"language": "python", "code": "x", "run": {"args": "a"}},
             "run.args"),
            ({"language": "python", "code": "x", "validate": {"tests": 5}},
             "validate.tests"),
            ({"language": "python", "code": "x", "validate": {"lint": []}},
             "validate.lint"),
            ({"language": "python", "code": "x", "validate": {"syntax": 1}},
             "syntax"),
            ({"language": "python", "code": "x",
              "inputs": {"urls": ["file:///etc/passwd"]}}, "inputs.urls[0]"),
            ({"language": "python", "code": "x",
              "inputs": {"urls": ["http://198.51.100.7/a",
                                  "ftp://198.51.100.7/x"]}}, "inputs.urls[1]"),
            ({"language": "python", "code": "x",
              "inputs": {"urls": ["http://u:p@198.51.100.7/x"]}},
             "inputs.urls[0]"),
            ({"language": "python", "code": "x",
              "inputs": {"urls": ["http://198.51.100.7/" + "a" * 2100]}},
             "inputs.urls[0]"),
            ({"language": "python", "code": "x", "inputs": {"urls": [5]}},
             "inputs.urls[0]"),
            ({"language": "python", "code": "x", "inputs": {"urls": []}},
             "inputs.urls"),
            ({"language": "python", "code": "x",
              "inputs": {"urls": "http://198.51.100.7/"}}, "inputs.urls"),
            ({"language": "python", "code": "x",
              "inputs": {"urls": [f"http://198.51.100.7/{i}"
                                  for i in range(17)]}}, "inputs.urls"),
            ({"language": "python", "code": "x",
              "inputs": {"urls": [{"url": "http://198.51.100.7/a",
                                   "path": "../../etc/cron.d/x"}]}},
             "inputs.urls[0]"),
            ({"language": "python", "code": "x",
              "inputs": {"urls": [{"url": "http://198.51.100.7/a",
                                   "path": "/etc/passwd"}]}},
             "inputs.urls[0]"),
            ({"language": "python", "code": "x",
              "inputs": {"urls": [{"url": "http://198.51.100.7/a",
                                   "path": 5}]}}, "inputs.urls[0]"),
            ({"language": "python", "code": "x",
              "inputs": {"urls": [{"path": "a"}]}}, "inputs.urls[0]"),
            # Two URLs written at the same place (derived, then given).
            ({"language": "python", "code": "x",
              "inputs": {"urls": ["http://198.51.100.7/d/a.txt",
                                  {"url": "http://198.51.100.8/",
                                   "path": "a.txt"}]}}, "inputs.urls[1]"),
            ({"language": "python", "code": "x",
              "inputs": {"urls": ["http://198.51.100.7/a"], "prefix": "a"}},
             "bucket"),
            ({"language": "python", "code": "x", "inputs": {"prefix": "a"}},
             "bucket"),
            ({"language": "python", "code": "x",
              "inputs": {"bucket": b, "prefix": "../"}}, "inputs.prefix"),
            ({"language": "python", "code": "x",
              "outputs": {"paths": ["out"]}}, "bucket"),
            ({"language": "python", "code": "x",
              "outputs": {"paths": ["../../etc"], "bucket": b}},
             "outputs.paths"),
            ({"language": "python", "code": "x",
              "outputs": {"paths": [], "bucket": b}}, "outputs.paths"),
            ({"language": "python", "code": "x", "limits": {"memory_mb": 0}},
             "memory_mb"),
            ({"language": "python", "code": "x", "template": "../base"},
             "template"),
            ({"language": "python", "code": "x", "clientId": "a b"},
             "clientId"),
            ({"language": "python", "code": "x", "schedule": {}}, "schedule"),
            ({"language": "python", "code": "x",
              "schedule": {"cron": "* * * * *", "at": "2030-01-01T00:00:00Z"}},
             "schedule"),
        ]
        for body, field in cases:
            with self.subTest(body=body):
                self.assertError(post_wf(body), 400, "invalid_argument",
                                 field)
        self.assertError(sp.post("/workflows", "not json", headers=dict(
            KEY, **{"Content-Type": "application/json"})), 400,
            "invalid_json")
        self.assertError(sp.get("/workflows/runs?limit=0", headers=KEY), 400,
                         "invalid_argument", "limit")
        self.assertError(sp.get("/workflows/runs/wfr_../x", headers=KEY), 404)
        self.assertError(sp.get("/workflows/runs/exe_notarun", headers=KEY),
                         404, "not_found")


class OwnWorker:
    """sp-worker with extra settings (the s3 backend, a short lease) in
    place of the supervised one, which is held meanwhile."""

    def __init__(self, extra_env):
        self.extra_env = extra_env
        self.proc = None

    def start(self):
        self.proc, self.env, self.owner = storage_util.replace_program(
            "sp-worker", self.extra_env)

    def replace(self, extra_env):
        """This worker killed, another started with extra_env on top."""
        self.proc.kill()
        self.proc.wait()
        self.proc = storage_util.start_program(
            "sp-worker", dict(self.env, **extra_env), self.owner)

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            old, self.proc = self.proc.pid, None
            sp.release("sp-worker")
            assert sp.restarted("sp-worker", old, 10), "sp-worker not back"


class WorkflowLeaseTest(WorkflowTest):
    """A step longer than the lease (SP_WORKER_LEASE_S 6 here) is not
    taken as lost: the worker's renewer keeps it. A worker of another
    name takes the run of one that died once the lease has passed
    (XAUTOCLAIM) and fails it as worker_lost."""

    @classmethod
    def setUpClass(cls):
        cls.worker = OwnWorker({"SP_WORKER_LEASE_S": "6",
                                "SP_WORKER_NAME": "wa"})
        cls.worker.start()

    def test_another_worker_takes_a_dead_ones_run(self):
        run_id = self.start({"language": "bash",
                             "code": "echo started\nsleep 120\n",
                             "run": {"timeout": 300}})
        self.wait_step_running(run_id, "run")
        # wa dies; wb has other consumer names: only the lease's end lets
        # it take wa's entry.
        self.worker.replace({"SP_WORKER_NAME": "wb"})
        doc = wait_end(run_id, 120)
        self.assertEqual(doc["status"], "failed", doc)
        self.assertEqual(doc["error"]["code"], "worker_lost", doc)
        ok = wait_end(self.start({"language": "bash", "code": "echo b\n"}))
        self.assertEqual(ok["status"], "succeeded", ok)

    @classmethod
    def tearDownClass(cls):
        cls.worker.stop()

    def test_step_longer_than_the_lease(self):
        doc = wait_end(self.start({"language": "bash",
                                   "code": "sleep 15\necho slept\n",
                                   "run": {"timeout": 60}}))
        self.assertEqual(doc["status"], "succeeded", doc)
        self.assertIn("slept", step(doc, "run")["output"]["stdout"])


class WorkflowS3Test(WorkflowTest):
    """The bucket-to-bucket case with sp-storage and sp-worker both on the
    s3 backend against s3rver on loopback."""

    @classmethod
    def setUpClass(cls):
        cls.store = storage_util.S3Storage(sp.PORT + 2)
        cls.store.start()
        cls.worker = OwnWorker(storage_util.s3_settings(cls.store.s3.port))
        try:
            cls.worker.start()
        except BaseException:
            cls.store.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.worker.stop()
        finally:
            cls.store.stop()

    def test_inputs_validate_run_outputs(self):
        self.inputs_to_outputs()


# Only their own cases run in the classes with a worker of their own.
for _name in [n for n in dir(WorkflowTest) if n.startswith("test_")]:
    if _name != "test_inputs_validate_run_outputs":
        setattr(WorkflowS3Test, _name, None)
    setattr(WorkflowLeaseTest, _name, None)


if __name__ == "__main__":
    import unittest
    unittest.main()
