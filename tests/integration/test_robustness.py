"""test_robustness.py: clients that misbehave (half-sent requests, hang-ups
before the answer, absurd headers and bodies) never kill a handler and
never turn into a 502."""
import json
import os
import socket

import sp
from sp import get, post

JSON = {"Content-Type": "application/json"}


def handler_pids():
    return {name: sp.read_pid(name) for name in ("sp-auth", "sp-health")}


class RobustnessTest(sp.Case):
    def setUp(self):
        self.pids = handler_pids()
        for name, pid in self.pids.items():
            self.assertTrue(sp.pid_alive(pid), f"{name} is not running")

    def tearDown(self):
        # Same processes as before, alive, and the stack still answers.
        for name, pid in self.pids.items():
            self.assertTrue(sp.pid_alive(pid), f"{name} (pid {pid}) died")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                self.assertIn(name.encode(), f.read())
        self.assertEqual(handler_pids(), self.pids)
        self.assertEqual(get("/ping").status, 200)

    def assertNot502(self, r):
        status = r.status if isinstance(r, sp.Response) else sp.raw_status(r)
        self.assertNotIn(status, (0, 500, 502, 503, 504), r if isinstance(
            r, sp.Response) else r[:300])

    def test_partial_requests(self):
        key = sp.API_KEY.encode()
        body = b'{"api_key":"' + key + b'"}'
        partials = [
            b"GET /ping HT",
            b"GET /health HTTP/1.1\r\nHost: t\r\n",
            b"POST /api/auth/token HTTP/1.1\r\nHost: t\r\n"
            b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
            + body[:10],
            b"POST /api/auth/token HTTP/1.1\r\nHost: t\r\n"
            b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
            b"\r\n10\r\n{\"api",
            b"GET /api/auth/verify HTTP/1.1\r\nHost: t\r\nAuthorization: Bea",
        ]
        for i in range(50):
            with socket.create_connection((sp.HOST, sp.PORT), timeout=5) as s:
                s.sendall(partials[i % len(partials)])
        self.assertEqual(get("/ping").status, 200)

    def test_close_before_reading(self):
        pair = sp.token_pair()
        reqs = [
            b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
            b"GET /api/auth/verify HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
            + pair["access_token"].encode() + b"\r\n\r\n",
            b"GET /api/auth/verify HTTP/1.1\r\nHost: t\r\nX-API-Key: "
            + sp.API_KEY.encode() + b"\r\n\r\n",
        ]
        for i in range(50):
            s = socket.create_connection((sp.HOST, sp.PORT), timeout=5)
            # RST instead of FIN for half of them: the rudest hang-up.
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.sendall(reqs[i % len(reqs)])
            s.close()
        self.assertVerifies(bearer_of(pair))

    def test_huge_authorization_header(self):
        for h in ({"Authorization": "Bearer " + "A" * 8000},
                  {"Authorization": "Bearer " + "a.b." * 2000},
                  {"X-API-Key": "spk_" + "k" * 8000},
                  {"Authorization": "Bearer " + "x" * 4097}):
            with self.subTest(header=list(h)[0]):
                r = get("/api/auth/verify", headers=h)
                self.assertNot502(r)
                self.assertIn(r.status, (400, 401, 431), r)

    def test_odd_header_bytes(self):
        for value in (b"Bearer \x01\x02\x7f", b"Bearer \xff\xfe\xc3(",
                      b"Bearer a.b.\x00c", b"\x00", b"Bearer \t\t "):
            for name in (b"Authorization", b"X-API-Key"):
                with self.subTest(name=name, value=value):
                    ans = sp.raw(b"GET /api/auth/verify HTTP/1.1\r\nHost: t\r\n"
                                 + name + b": " + value
                                 + b"\r\nConnection: close\r\n\r\n")
                    self.assertNot502(ans)
                    self.assertIn(sp.raw_status(ans), (400, 401), ans[:200])

    def test_non_utf8_json_strings(self):
        for body in (b'{"api_key":"\xff\xfe\xfd"}', b'{"api_key":"spk_\xc3("}',
                     b'{"api_key":"\\ud800"}', b'{"\xff":"x","api_key":"y"}'):
            with self.subTest(body=body):
                r = post("/api/auth/token", body, headers=JSON)
                self.assertNot502(r)
                self.assertIn(r.status, (400, 401), r)
                self.assertError(r, r.status)

    def test_deeply_nested_json(self):
        bodies = [
            b"[" * 10000,  # 10000 levels, never closed
            b'{"a":' * 3000,
            b"[" * 8000 + b"]" * 8000,  # closed, still under 16 KiB
            b'{"api_key":' + b"[" * 8000 + b"]" * 8000 + b"}",
        ]
        for body in bodies:
            with self.subTest(size=len(body), head=body[:12]):
                r = post("/api/auth/token", body, headers=JSON)
                self.assertNot502(r)
                self.assertError(r, 400, ("invalid_json", "invalid_argument"))
        # 10000 closed levels are over the family's 16 KiB: nginx says 413.
        r = post("/api/auth/token", b"[" * 10000 + b"]" * 10000, headers=JSON)
        self.assertError(r, 413, "payload_too_large")
        # Also on an authenticated route that reads a body.
        r = post("/api/auth/revoke", b"[" * 8000 + b"]" * 8000,
                 headers=dict(JSON, **{"X-API-Key": sp.API_KEY}))
        self.assertNot502(r)
        self.assertError(r, 400)

    def test_huge_numbers(self):
        for body in (b'{"api_key":1e400}', b'{"api_key":-1e400}',
                     b'{"api_key":"x","n":1e400}',
                     b'{"api_key":' + b"9" * 5000 + b"}",
                     b'{"refresh_token":1e400}'):
            with self.subTest(body=body[:40]):
                r = post("/api/auth/token", body, headers=JSON)
                self.assertNot502(r)
                self.assertIn(r.status, (400, 401), r)
                self.assertError(r, r.status)
        r = post("/api/auth/revoke", b'{"refresh_token":1e400}',
                 headers=dict(JSON, **{"X-API-Key": sp.API_KEY}))
        self.assertError(r, 400, "invalid_argument", "refresh_token")

    def test_duplicate_keys(self):
        good, bad = sp.API_KEY, "spk_" + "D" * 43
        for body in ({"api_key": [bad, good]}, {"api_key": [good, bad]}):
            with self.subTest(order=body["api_key"][0] == good):
                text = '{"api_key":%s,"api_key":%s}' % tuple(
                    json.dumps(k) for k in body["api_key"])
                r = post("/api/auth/token", text, headers=JSON)
                self.assertNot502(r)
                self.assertIn(r.status, (200, 400, 401), r)

    def test_random_bytes_bodies(self):
        for i in range(20):
            body = os.urandom(64 + i * 50)
            r = post("/api/auth/token", body, headers=JSON)
            self.assertNot502(r)
            self.assertError(r, 400)


def bearer_of(pair):
    return sp.bearer(pair["access_token"])


class Utf8EchoTest(sp.Case):
    """An error message that names request input (a file path of /execute)
    is valid UTF-8, whatever bytes the request carried: invalid ones
    become U+FFFD, never raw in the JSON."""

    def test_invalid_utf8_is_never_echoed_raw(self):
        import sbx_util as su
        r = su.call("POST", "/sandboxes", {}, timeout=60)
        self.assertEqual(r.status, 201, r)
        sid = r.json["id"]
        self.addCleanup(su.call, "DELETE", f"/sandboxes/{sid}")
        body = (b'{"code":"print(1)","sandbox_id":"' + sid.encode() +
                b'","files":[{"path":"/etc/\xff\xfe\xc3(bad\xe2\x82","content"'
                b':"x"}]}')
        r = su.call("POST", "/execute", body, extra=JSON, timeout=60)
        err = self.assertError(r, 400)
        self.assertEqual(err.get("field"), "files", r)
        text = r.body.decode("utf-8")  # strict: raises on invalid UTF-8
        self.assertIn("\ufffd", json.loads(text)["error"]["message"], r)
