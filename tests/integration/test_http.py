"""test_http.py: HTTP conventions of docs/DESIGN.md §3 as nginx and the handlers
apply them: JSON 404/405 envelopes, Allow, CORS, security headers and the
rate limit of the credential routes."""
import http.client
import json
import os
import re
import signal
import threading
import time

import sp
from sp import get, request

BAD_KEY = '{"api_key":"spk_short"}'


def burst(path, total=400, threads=8):
    """Send up to total POSTs of a wrong key to path from several threads
    on keep-alive connections, stopping at the first 429. Returns the
    statuses seen and the first 429 answer (or None)."""
    statuses, first = [], []
    lock = threading.Lock()
    per = total // threads
    deadline = time.monotonic() + 30

    def worker():
        conn = http.client.HTTPConnection(sp.HOST, sp.PORT, timeout=10)
        try:
            for _ in range(per):
                if first or time.monotonic() > deadline:
                    return
                try:
                    conn.request("POST", path, body=BAD_KEY,
                                 headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    body = resp.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(sp.HOST, sp.PORT, timeout=10)
                    continue
                with lock:
                    statuses.append(resp.status)
                    if resp.status == 429 and not first:
                        first.append(sp.Response(resp.status, resp.headers, body))
        finally:
            conn.close()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return statuses, (first[0] if first else None)


def wait_rate_limit_drained():
    sp.wait_until(lambda: sp.post("/api/auth/token", BAD_KEY, patient=False,
                                  headers={"Content-Type": "application/json"}
                                  ).status != 429, 5, 0.2)


class ErrorsTest(sp.Case):
    def test_unknown_route(self):
        for path in ("/nope", "/api/nope", "/api/auth/nope",
                     "/api/auth/verify/extra", "/pingx"):
            with self.subTest(path=path):
                self.assertError(get(path), 404, "not_found")

    def test_method_not_allowed(self):
        r = get("/api/auth/token")
        self.assertError(r, 405, "method_not_allowed")
        self.assertEqual(r.headers.get("Allow"), "POST")
        r = request("DELETE", "/api/auth/verify")
        self.assertError(r, 405, "method_not_allowed")
        self.assertEqual(r.headers.get("Allow"), "GET")
        r = request("PUT", "/ping", b"")
        self.assertError(r, 405, "method_not_allowed")
        self.assertEqual(r.headers.get("Allow"), "GET")

    def test_error_envelope_on_every_path(self):
        # Each producer of errors (nginx location, handler router, JSON
        # body parser, auth check) uses the same envelope.
        self.assertError(get("/nope"), 404)
        self.assertError(get("/api/auth/token"), 405)
        self.assertError(sp.post("/api/auth/token", "{", headers={
            "Content-Type": "application/json"}), 400)
        self.assertError(get("/api/auth/verify"), 401)


class CorsTest(sp.Case):
    def test_preflight_allowed_origin(self):
        for path in ("/api/auth/token", "/api/auth/verify", "/health"):
            with self.subTest(path=path):
                r = request("OPTIONS", path, headers={
                    "Origin": sp.ORIGIN,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type"})
                self.assertEqual(r.status, 204, r)
                self.assertEqual(r.headers.get("Access-Control-Allow-Origin"),
                                 sp.ORIGIN)
                methods = r.headers.get("Access-Control-Allow-Methods", "")
                self.assertIn("POST", methods)
                allowed = r.headers.get("Access-Control-Allow-Headers", "").lower()
                self.assertIn("authorization", allowed)
                self.assertIn("content-type", allowed)

    def test_preflight_other_origin(self):
        for origin in ("http://evil.test", "http://frontend.test.evil.test",
                       "null", "https://frontend.test"):
            with self.subTest(origin=origin):
                r = request("OPTIONS", "/api/auth/token", headers={
                    "Origin": origin, "Access-Control-Request-Method": "POST"})
                self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"), r)

    def test_simple_request_origin(self):
        r = get("/health", headers={"Origin": sp.ORIGIN})
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), sp.ORIGIN)
        r = get("/api/auth/verify", headers={"Origin": sp.ORIGIN})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), sp.ORIGIN)
        r = get("/health", headers={"Origin": "http://evil.test"})
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"))


class SecurityHeadersTest(sp.Case):
    def test_headers_on_every_kind_of_answer(self):
        answers = {
            "ok": get("/ping"),
            "handler error": get("/api/auth/verify"),
            "nginx 404": get("/nope"),
            "json": get("/health"),
            "nginx 413": sp.post("/api/auth/token", "x" * 20000,
                                 headers={"Content-Type": "application/json"}),
        }
        for what, r in answers.items():
            with self.subTest(answer=what):
                self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff", r)
                self.assertIn(r.headers.get("X-Frame-Options"), ("DENY", "SAMEORIGIN"), r)
                self.assertIsNone(r.headers.get("X-Powered-By"))
                server = r.headers.get("Server", "")
                self.assertNotRegex(server, r"\d", "server version leaked")


class RateLimitTest(sp.Case):
    def tearDown(self):
        wait_rate_limit_drained()

    def test_token_burst_gets_429(self):
        statuses, limited = burst("/api/auth/token")
        self.assertIsNotNone(limited, f"no 429 in {len(statuses)} requests")
        self.assertError(limited, 429, "rate_limited")
        self.assertTrue(limited.headers.get("Retry-After", "").isdigit(), limited)
        self.assertNotIn(502, statuses)

    def test_refresh_burst_gets_429(self):
        statuses, limited = burst("/api/auth/refresh")
        self.assertIsNotNone(limited, f"no 429 in {len(statuses)} requests")
        self.assertError(limited, 429, "rate_limited")

    def test_limit_not_bypassed_by_path_spelling(self):
        # Spellings of the token route that nginx normalises differently
        # must not reach the handler without the rate limit.
        for path in ("/api/auth/token/", "/api/auth/token%2F"):
            with self.subTest(path=path):
                statuses, limited = burst(path)
                wait_rate_limit_drained()
                reached = [s for s in statuses if s not in (404, 429)]
                self.assertTrue(limited is not None or not reached,
                                f"{path}: {len(reached)} requests reached the "
                                f"handler, none rate limited "
                                f"(statuses {sorted(set(statuses))})")



def pipelined(keys, path="/api/auth/verify"):
    """A GET of path with each X-API-Key of keys, pipelined on one
    connection; the statuses nginx answered, in order."""
    reqs = [f"GET {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {k}\r\n"
            for k in keys]
    reqs[-1] += "Connection: close\r\n"
    answer = sp.raw("".join(r + "\r\n" for r in reqs).encode(), timeout=30)
    return [int(m) for m in re.findall(rb"^HTTP/1\.1 (\d{3})", answer, re.M)]


class ApiKeyRateLimitTest(sp.Case):
    """Requests that present an API key in X-API-Key are rate limited per
    address, as guesses at /api/auth/token are (snippets/api.conf); those
    without one are not counted."""
    BAD = "spk_" + "A" * 43

    def tearDown(self):
        sp.wait_until(lambda: get("/api/auth/verify", patient=False, headers={
            "X-API-Key": sp.API_KEY}).status != 429, 15, 0.2)

    def test_api_key_burst_gets_429(self):
        statuses, out = [], []
        lock = threading.Lock()

        def conn():
            got = pipelined([self.BAD] * 500)
            with lock:
                out.extend(got)
        deadline = time.monotonic() + 30
        while 429 not in out and len(out) < 8000 and \
                time.monotonic() < deadline:
            ts = [threading.Thread(target=conn) for _ in range(4)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        statuses = out
        self.assertIn(429, statuses, f"no 429 in {len(statuses)} requests")
        self.assertLessEqual(set(statuses), {401, 429}, set(statuses))
        # The right key is limited too while the address is over its rate
        # (a key's validity is what must not be learnt faster): the last
        # of a burst.
        got = pipelined([self.BAD] * 300 + [sp.API_KEY])
        self.assertEqual(got[-1], 429, got[-5:])
        r = sp.raw(b"GET /api/auth/verify HTTP/1.1\r\nHost: x\r\nX-API-Key: "
                   + self.BAD.encode() + b"\r\nConnection: close\r\n\r\n")
        if sp.raw_status(r) == 429:
            self.assertIn(b'"rate_limited"', r)
            self.assertIn(b"Retry-After:", r)
        # Requests without an API key are not counted.
        self.assertEqual(get("/ping", patient=False).status, 200)
        pair_r = get("/api/auth/verify", patient=False)
        self.assertError(pair_r, 401, "unauthenticated")


class NginxErrorsTest(sp.Case):
    """nginx's own refusals before any handler: the JSON envelope."""

    def assertRawError(self, answer, status, code):
        self.assertEqual(sp.raw_status(answer), status, answer[:300])
        head, _, body = answer.partition(b"\r\n\r\n")
        self.assertIn(b"application/json", head)
        doc = json.loads(body)
        self.assertEqual(set(doc), {"error"})
        self.assertEqual(doc["error"]["code"], code)
        self.assertIsInstance(doc["error"]["message"], str)

    def test_malformed_request_line(self):
        self.assertRawError(sp.raw(b"GARBAGE\r\n\r\n"), 400,
                            "invalid_argument")

    def test_malformed_header(self):
        self.assertRawError(sp.raw(b"GET /ping HTTP/1.1\r\nHost: x\r\n"
                                   b"Bad Header\r\n\r\n"), 400,
                            "invalid_argument")

    def test_header_too_large(self):
        self.assertRawError(sp.raw(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: "
                                   + b"a" * 40000 + b"\r\n\r\n"), 400,
                            "invalid_argument")

    def test_uri_too_long(self):
        self.assertRawError(sp.raw(b"GET /" + b"a" * 20000 +
                                   b" HTTP/1.1\r\nHost: x\r\n\r\n"), 414,
                            "invalid_argument")

    def test_body_too_large(self):
        r = sp.post("/api/auth/token", b"x" * (64 * 1024),
                    headers={"Content-Type": "application/json"})
        self.assertError(r, 413, "payload_too_large")

    def test_handler_down_is_json_503_family(self):
        pid = sp.read_pid("sp-terminal")
        sp.hold("sp-terminal")
        try:
            os.kill(pid, signal.SIGKILL)
            self.assertTrue(sp.wait_until(lambda: not sp.pid_alive(pid), 5))
            r = get("/terminal/trm_x", headers={"X-API-Key": sp.API_KEY})
            self.assertError(r, 502, "unavailable")
        finally:
            sp.release("sp-terminal")
        self.assertIsNotNone(sp.restarted("sp-terminal", pid, 5))
        sp.wait_until(lambda: get("/terminal/trm_x", headers={
            "X-API-Key": sp.API_KEY}).status == 404, 5)


class LogsTest(sp.Case):
    def test_no_credentials_in_logs(self):
        pair = sp.token_pair()
        marker = "/api/auth/verify"
        r = get(marker + "?access_token=" + pair["access_token"])
        # verify is not an SSE route: the query token is not a credential.
        self.assertError(r, 401, "unauthenticated")
        self.assertEqual(get(marker, headers=sp.bearer(pair["access_token"])).status, 200)
        log = os.path.join(sp.STATE, "log", "nginx-access.log")

        def logged():
            with open(log, "rb") as f:
                return marker.encode() in f.read()
        # The access log is flushed once a second.
        self.assertTrue(sp.wait_until(logged, 5, 0.2), "request not logged")
        secrets = [sp.API_KEY, pair["access_token"], pair["refresh_token"],
                   pair["access_token"].split(".")[2]]
        for name in os.listdir(os.path.join(sp.STATE, "log")):
            with open(os.path.join(sp.STATE, "log", name), "rb") as f:
                text = f.read()
            for secret in secrets:
                with self.subTest(log=name, secret=secret[:12]):
                    self.assertNotIn(secret.encode(), text)
