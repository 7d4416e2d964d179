"""test_zz_redis_outage.py: Redis dies under a running sandpipe and comes
back (runs last: "zz"). While it is down (the supervisor is told to hold
it), /health is 503 with Redis "down" and Retry-After, and authenticated
routes answer 503 unavailable quickly (no 502, no hang). Redis is then
started again by the supervisor, as up started it, and the same API key
works again without restarting sandpipe."""
import os
import signal
import subprocess
import threading
import time

import sp
from sp import get

TIMEOUT = 5  # client timeout: an answer slower than this is a hang


def start_redis():
    """Let the supervisor start Redis again (as ./sandpipe up did); its
    new pid."""
    old = sp.read_pid("redis") if os.path.exists(
        os.path.join(sp.STATE, "run", "redis.pid")) else 0
    sp.release("redis")
    return sp.restarted("redis", old, 5)


def start_helper(extra_env):
    """Start sp-helperd by hand, with extra_env added to what the
    supervisor gives it (its own session, output appended to its log, pid
    where ./sandpipe down looks). The supervisor holds its own meanwhile."""
    runner_only = ("SP_ROOT", "SP_BUILD_DIR", "SP_API_KEY", "SP_REDIS_URL",
                   "SP_TEST_OUT")
    st = os.path.abspath(sp.STATE)
    env = {k: v for k, v in os.environ.items() if k not in runner_only}
    with open(os.path.join(st, "jwt_secret")) as f:
        secret = sp.SECRET or f.read().strip()
    with open(os.path.join(st, "run", "redis_url")) as f:
        url = f.read().strip()
    env.update(SP_STATE_DIR=st, REDIS_URL=url, JWT_SECRET=secret, **extra_env)
    build = os.path.abspath(sp.BUILD)
    log = open(os.path.join(st, "log", "sp-helperd.log"), "ab")
    try:
        proc = subprocess.Popen(
            [os.path.join(build, "sp-helperd"), os.path.join(build, "sp-init")],
            env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()
    with open(os.path.join(st, "run", "sp-helperd.pid"), "w") as f:
        f.write(f"{proc.pid}\n")
    return proc


def redis_answers():
    sock = os.path.join(sp.STATE, "run", "redis.sock")
    try:
        p = subprocess.run(["redis-cli", "-s", sock, "ping"],
                           capture_output=True, text=True, timeout=2)
    except subprocess.TimeoutExpired:
        return False
    return p.stdout.strip() == "PONG"


class RedisOutageTest(sp.Case):
    def test_outage_and_recovery(self):
        key_headers = {"X-API-Key": sp.API_KEY}
        pair = sp.token_pair()
        self.assertVerifies(key_headers, "admin")

        pid = sp.read_pid("redis")
        self.assertTrue(sp.pid_alive(pid))
        sp.hold("redis")
        os.kill(pid, signal.SIGTERM)
        gone = sp.wait_until(lambda: not sp.pid_alive(pid), 10, 0.05)
        self.assertTrue(gone, "Redis did not exit after SIGTERM")
        try:
            self.check_down(key_headers, pair)
        finally:
            new = start_redis()
            up = sp.wait_until(redis_answers, 10, 0.1)
        self.assertTrue(up, "Redis did not come back")
        self.assertIsNotNone(new, sp.supervision().get("redis"))
        self.assertTrue(sp.pid_alive(new))
        self.check_recovered(key_headers, pair)

    def check_down(self, key_headers, pair):
        def health_down():
            r = get("/health", timeout=TIMEOUT)
            return r if r.status == 503 else None
        # A second /health answer suffices; 2 s is generous.
        r = sp.wait_until(health_down, 2, 0.1)
        self.assertIsNotNone(r, "/health did not turn 503 within 2 s")
        doc = r.json
        self.assertEqual(doc["checks"]["redis"]["status"], "down")
        self.assertNotEqual(doc["status"], "ok")
        self.assertTrue(r.headers.get("Retry-After", "").isdigit(), r)
        self.assertEqual(get("/ping", timeout=TIMEOUT).status, 200)

        for what, call in (
                ("verify X-API-Key", lambda: get(
                    "/api/auth/verify", headers=key_headers, timeout=TIMEOUT)),
                ("verify Bearer", lambda: get(
                    "/api/auth/verify", headers=sp.bearer(pair["access_token"]),
                    timeout=TIMEOUT)),
                ("token", lambda: sp.post(
                    "/api/auth/token", {"api_key": sp.API_KEY}, timeout=TIMEOUT)),
                ("refresh", lambda: sp.post(
                    "/api/auth/refresh", {"refresh_token": pair["refresh_token"]},
                    timeout=TIMEOUT)),
                ("metrics", lambda: get("/metrics", timeout=TIMEOUT))):
            with self.subTest(call=what):
                r = call()
                self.assertError(r, 503, "unavailable")
                self.assertTrue(r.headers.get("Retry-After", "").isdigit(), r)
        # Credentials that need no Redis are still refused as 401.
        r = get("/api/auth/verify", timeout=TIMEOUT)
        self.assertError(r, 401, "unauthenticated")

    def assertAll200(self, answers):
        bad = [a for a in answers if a.status != 200]
        if bad:
            self.fail(f"{len(bad)} of {len(answers)} answers after Redis came "
                      f"back were not 200, e.g. {bad[0]!r}")

    def check_recovered(self, key_headers, pair):
        r = sp.wait_until(lambda: get("/health", timeout=TIMEOUT).status == 200,
                          5, 0.1)
        self.assertTrue(r, "/health did not return to 200")
        # From now on every request succeeds, whichever handler thread
        # takes it: each burst is wider than the handlers' thread count.
        with self.subTest(check="health after recovery"):
            answers = burst(lambda: get("/health", timeout=TIMEOUT))
            self.assertAll200(answers)
            for a in answers:
                self.assertEqual(a.json["checks"]["redis"]["status"], "ok")
        with self.subTest(check="same API key after recovery (AOF)"):
            answers = burst(lambda: get("/api/auth/verify", headers=key_headers,
                                        timeout=TIMEOUT))
            self.assertAll200(answers)
        # Eventually (after the first failures, if any) everything works.
        ok = sp.wait_until(lambda: all(
            get("/api/auth/verify", headers=key_headers).status == 200
            for _ in range(16)), 5, 0.1)
        self.assertTrue(ok, "verify with the API key never recovered")
        self.assertVerifies(key_headers, "admin")
        self.assertVerifies(sp.bearer(pair["access_token"]), "admin")
        r = sp.post("/api/auth/refresh", {"refresh_token": pair["refresh_token"]},
                    timeout=TIMEOUT)
        self.assertEqual(r.status, 200, r)
        new = sp.token_pair()
        self.assertVerifies(sp.bearer(new["access_token"]), "admin")
        self.assertEqual(get("/metrics", timeout=TIMEOUT).status, 200)


def burst(call, threads=8, each=4):
    """Run call threads*each times from several threads; the answers."""
    answers = []
    lock = threading.Lock()

    def worker():
        for _ in range(each):
            r = call()
            with lock:
                answers.append(r)
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return answers


def stop_redis(test):
    pid = sp.read_pid("redis")
    sp.hold("redis")
    os.kill(pid, signal.SIGTERM)
    test.assertTrue(sp.wait_until(lambda: not sp.pid_alive(pid), 10, 0.05),
                    "Redis did not exit after SIGTERM")


def restart_redis(test):
    start_redis()
    test.assertTrue(sp.wait_until(redis_answers, 20, 0.1),
                    "Redis did not come back")


class HelperThroughOutageTest(sp.Case):
    """The helper keeps what it could not write while Redis was away and
    writes it, in order, when Redis is back (docs/DESIGN.md §5.4)."""

    def test_output_and_result_kept_through_an_outage(self):
        import sbx_util as su
        r = su.call("POST", "/sandboxes", {}, timeout=60)
        self.assertEqual(r.status, 201, r)
        sid = r.json["id"]
        self.addCleanup(su.call, "DELETE", f"/sandboxes/{sid}")
        # 150 lines over 3 s; Redis goes away 0.5 s in and comes back after
        # the program has ended.
        r = su.call("POST", f"/sandboxes/{sid}/commands",
                    {"argv": ["python3", "-c",
                              "import time\n"
                              "for i in range(150):\n"
                              "    print('line', i, flush=True)\n"
                              "    time.sleep(0.02)\n"],
                     "background": True})
        self.assertEqual(r.status, 202, r)
        exe = r.json["execution_id"]
        time.sleep(0.5)
        stop_redis(self)
        try:
            time.sleep(5)
        finally:
            restart_redis(self)
        ended = sp.wait_until(
            lambda: su.redis_hash("exec:" + exe).get("status") == "ok", 20, 0.2)
        self.assertTrue(ended, su.redis_hash("exec:" + exe))
        rec = su.redis_hash("exec:" + exe)
        self.assertEqual(rec.get("truncated"), "0", rec)
        page = su.call("GET", f"/sandboxes/{sid}/commands/{exe}/output")
        self.assertEqual(page.status, 200, page)
        out = "".join(e["data"] for e in page.json["events"]
                      if e["type"] == "stdout")
        self.assertEqual(out, "".join(f"line {i}\n" for i in range(150)))
        types = [e["type"] for e in page.json["events"]]
        self.assertEqual(types.count("result"), 1, types)
        self.assertEqual(types[-1], "result", types)
        self.assertNotIn("events_lost", types)

    def test_overflow_is_reported(self):
        """With a 1 MiB buffer, 4 MiB of output during an outage: what did
        not fit is dropped, counted in an events_lost event, and the result
        says truncated."""
        import sbx_util as su
        import test_sandboxes_zkill as zk
        # The supervised helper makes way for one started by hand with a
        # 1 MiB buffer and room for all the output in the execution.
        pid = sp.read_pid("sp-helperd")
        sp.hold("sp-helperd")
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(sp.wait_until(lambda: not sp.pid_alive(pid), 20))
        mine = start_helper({"SP_HELPER_BUFFER_MB": "1",
                             "SP_OUTPUT_MAX": "16777216"})
        try:
            self.assertTrue(sp.wait_until(lambda: zk.live_helpers() >= 1, 20))
            r = su.call("POST", "/sandboxes", {}, timeout=60)
            self.assertEqual(r.status, 201, r)
            sid = r.json["id"]
            r = su.call("POST", f"/sandboxes/{sid}/commands",
                        {"argv": ["python3", "-c",
                                  "import sys, time\n"
                                  "time.sleep(1)\n"
                                  "for i in range(64):\n"
                                  "    sys.stdout.write('x' * 65535 + '\\n')\n"
                                  "    sys.stdout.flush()\n"],
                         "background": True})
            self.assertEqual(r.status, 202, r)
            exe = r.json["execution_id"]
            stop_redis(self)
            try:
                time.sleep(5)
            finally:
                restart_redis(self)
            ended = sp.wait_until(
                lambda: su.redis_hash("exec:" + exe).get("status") == "ok",
                20, 0.2)
            self.assertTrue(ended, su.redis_hash("exec:" + exe))
            self.assertEqual(su.redis_hash("exec:" + exe).get("truncated"),
                             "1")
            page = su.call("GET", f"/sandboxes/{sid}/commands/{exe}/output")
            evs = page.json["events"]
            lost = [e for e in evs if e["type"] == "events_lost"]
            self.assertTrue(lost, [e["type"] for e in evs])
            got = sum(len(e["data"]) for e in evs if e["type"] == "stdout")
            lost_bytes = sum(e["data"]["bytes"] for e in lost)
            self.assertGreater(lost_bytes, 0)
            self.assertEqual(got + lost_bytes, 64 * 65536)
            self.assertLess(got, 2 * 1024 * 1024)
            result = [e for e in evs if e["type"] == "result"]
            self.assertEqual(len(result), 1)
            self.assertTrue(result[0]["data"]["data"]["truncated"])
            su.call("DELETE", f"/sandboxes/{sid}")
        finally:
            # Back to the supervised helper.
            mine.terminate()
            try:
                mine.wait(20)
            except subprocess.TimeoutExpired:
                mine.kill()
                mine.wait()
            sp.release("sp-helperd")
            self.assertIsNotNone(sp.restarted("sp-helperd", mine.pid, 5))
            sp.wait_until(lambda: zk.live_helpers() >= 1, 20)
