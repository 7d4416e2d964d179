"""test_preview.py: preview URLs (sp-preview, families/preview.conf, the
helper's port-forward socket). A small server runs inside a sandbox on
port 8000 and is reached as http://8000-<id>.localhost:<port>/ through
nginx: plain HTTP, a chunked answer, an SSE stream whose events arrive
while it is still open, a WebSocket echo; refused without the traffic
token, with another sandbox's, for another subject; ?token= becomes a
cookie the sandbox never sees; unknown sandboxes, closed ports and
contradicting selectors answer at once; the sandbox cannot reach the
host's services. Every request goes to 127.0.0.1; every wait is bounded."""
import base64
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import time
import uuid

import sp
from sbx_util import SbxCase, call

PORT = 8000
SERVER = r'''
import base64, hashlib, json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_body(self, code, ctype, data):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.send_body(200, "application/octet-stream", self.rfile.read(n))

    def do_GET(self):
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(5):
                part = ("part%d;" % i).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif self.path.startswith("/sse"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(b"data: first\n\n")
            self.wfile.flush()
            time.sleep(60)  # open until the client leaves
        elif self.headers.get("Upgrade", "").lower() == "websocket":
            self.websocket()
        else:
            doc = {"path": self.path, "headers": dict(self.headers.items())}
            self.send_body(200, "application/json", json.dumps(doc).encode())

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        acc = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", acc.decode())
        self.end_headers()
        self.wfile.flush()
        r = self.rfile
        b0, b1 = r.read(2)
        n = b1 & 127
        if n == 126:
            n = int.from_bytes(r.read(2), "big")
        mask = r.read(4)
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(r.read(n)))
        self.wfile.write(bytes([0x81, len(data)]) + data)
        self.wfile.flush()

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def host(sid, port=PORT):
    return f"{port}-{sid}.localhost:{sp.PORT}"


def preview(sid, path="/echo", port=PORT, headers=None, method="GET",
            body=None, timeout=15):
    h = {"Host": host(sid, port)}
    h.update(headers or {})
    return sp.request(method, path, body=body, headers=h, timeout=timeout,
                      patient=False)


def tok(sid):
    return {"X-Sandpipe-Traffic-Token": sbx_token(sid)}


_TOKENS = {}


def sbx_token(sid):
    if sid not in _TOKENS:
        r = call("GET", f"/sandboxes/{sid}")
        _TOKENS[sid] = r.json["traffic_token"]
    return _TOKENS[sid]


def open_raw(sid, request_head):
    s = socket.create_connection((sp.HOST, sp.PORT), timeout=15)
    s.sendall(request_head.encode())
    return s


def read_until(s, marker, limit=65536):
    data = b""
    while marker not in data and len(data) < limit:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class PreviewCase(SbxCase):
    @classmethod
    def start_server(cls, sid, port=PORT, key=None):
        r = call("PUT", f"/sandboxes/{sid}/files?path=/workspace/srv.py",
                 SERVER.encode(), key=key)
        assert r.status in (200, 201), r
        r = call("POST", f"/sandboxes/{sid}/commands",
                 {"argv": ["python3", "/workspace/srv.py", str(port)],
                  "background": True}, key=key)
        assert r.status == 202, r
        # Up once it answers (bounded).
        for _ in range(100):
            r = call("GET", f"/sandboxes/{sid}/ports", key=key)
            if r.status == 200 and any(p["port"] == port
                                       for p in r.json["ports"]):
                return
            time.sleep(0.1)
        raise AssertionError(f"the server in {sid} did not listen")


class PreviewAccessTest(PreviewCase):
    @classmethod
    def setUpClass(cls):
        cls.sid = cls.class_sandbox()
        cls.other = cls.class_sandbox()
        cls.start_server(cls.sid)

    def test_id_is_lower_case_and_facts_given(self):
        self.assertEqual(self.sid, self.sid.lower())
        doc = call("GET", f"/sandboxes/{self.sid}").json
        self.assertIs(doc["public"], False)
        self.assertEqual(len(doc["traffic_token"]), 43)
        self.assertEqual(doc["preview_url"],
                         f"http://{{port}}-{self.sid}.localhost:{sp.PORT}/")
        ports = call("GET", f"/sandboxes/{self.sid}/ports").json["ports"]
        self.assertIn({"port": PORT,
                       "url": f"http://{host(self.sid)}/"}, ports)

    def test_token_header_reaches_the_server(self):
        r = preview(self.sid, "/echo?a=1", headers=tok(self.sid))
        self.assertEqual(r.status, 200, r)
        seen = r.json
        self.assertEqual(seen["path"], "/echo?a=1")
        names = {k.lower() for k in seen["headers"]}
        for secret in ("x-sandpipe-traffic-token", "x-sp-sandbox-id",
                       "x-sp-sandbox-port", "x-api-key", "authorization"):
            self.assertNotIn(secret, names)
        self.assertEqual(r.headers.get("X-Sandpipe-Family"), "preview")

    def test_e2b_headers_and_token(self):
        r = sp.request("GET", "/echo", headers={
            "E2b-Sandbox-Id": self.sid, "E2b-Sandbox-Port": str(PORT),
            "E2B-Traffic-Access-Token": sbx_token(self.sid)}, timeout=15)
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("e2b-traffic-access-token",
                         {k.lower() for k in r.json["headers"]})

    def test_owner_credentials_never_reach_the_sandbox(self):
        r = preview(self.sid, headers={"X-API-Key": sp.API_KEY})
        self.assertEqual(r.status, 200, r)
        self.assertNotIn(sp.API_KEY, r.body.decode())
        access = sp.token_pair()["access_token"]
        r = preview(self.sid, headers=sp.bearer(access))
        self.assertEqual(r.status, 200, r)
        self.assertNotIn(access, r.body.decode())
        # Read as auth_credentials reads it (spaces before the token), also
        # when the traffic token was the credential.
        r = preview(self.sid, headers=dict(
            tok(self.sid), Authorization="Bearer   " + access))
        self.assertEqual(r.status, 200, r)
        self.assertNotIn(access, r.body.decode())

    def test_refused_without_or_with_wrong_credentials(self):
        self.assertError(preview(self.sid), 401, "unauthenticated")
        self.assertError(preview(self.sid, headers=tok(self.other)), 401,
                         "unauthenticated")
        self.assertError(preview(self.sid, headers={
            "X-Sandpipe-Traffic-Token": "x" * 43}), 401, "unauthenticated")
        self.assertError(preview(self.sid, method="POST", body=b"x" * 100000),
                         401, "unauthenticated")
        _, stranger, _ = sp.create_key()
        self.assertError(preview(self.sid, headers={"X-API-Key": stranger}),
                         404, "not_found")

    def test_query_token_becomes_a_cookie(self):
        t = sbx_token(self.sid)
        r = preview(self.sid, f"/echo?a=1&token={t}&b=2")
        self.assertEqual(r.status, 302, r)
        self.assertEqual(r.headers["Location"], "/echo?a=1&b=2")
        cookie = r.headers["Set-Cookie"]
        self.assertTrue(cookie.startswith(f"sp_traffic_token={t};"), cookie)
        for attr in ("HttpOnly", "SameSite=Lax", "Path=/"):
            self.assertIn(attr, cookie)
        self.assertNotIn("Domain", cookie)
        r = preview(self.sid, "/echo?a=1&b=2",
                    headers={"Cookie": f"theme=dark; sp_traffic_token={t}"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["headers"].get("Cookie"), "theme=dark")
        self.assertNotIn(t, r.body.decode())
        self.assertError(preview(self.sid, "/echo?token=" + "y" * 43), 401,
                         "unauthenticated")

    def test_query_token_redirect_stays_on_this_host(self):
        # "//host/" and "/\\host/" would send a browser to another host.
        t = sbx_token(self.sid)
        for path in ("//evil.example/x", "/\\evil.example/x"):
            with self.subTest(path=path):
                r = preview(self.sid, f"{path}?token={t}")
                self.assertEqual(r.status, 302, r)
                self.assertEqual(r.headers["Location"], "/." + path)

    def test_chunked_and_bodies_pass(self):
        r = preview(self.sid, "/chunked", headers=tok(self.sid))
        self.assertEqual((r.status, r.body),
                         (200, b"part0;part1;part2;part3;part4;"), r)
        body = os.urandom(300000)
        r = preview(self.sid, "/upload", method="POST", body=body,
                    headers=tok(self.sid))
        self.assertEqual((r.status, r.body == body), (200, True))

    def test_sse_event_arrives_while_the_stream_is_open(self):
        s = open_raw(self.sid, f"GET /sse HTTP/1.1\r\nHost: {host(self.sid)}"
                     f"\r\nX-Sandpipe-Traffic-Token: {sbx_token(self.sid)}"
                     "\r\nAccept: text/event-stream\r\n\r\n")
        try:
            data = read_until(s, b"data: first")
            self.assertIn(b" 200 ", data.split(b"\r\n")[0])
            self.assertIn(b"data: first", data)
            # The server has not ended it: nothing more, and no end.
            s.settimeout(0.5)
            with self.assertRaises(socket.timeout):
                s.recv(1)
        finally:
            s.close()

    def test_websocket_echo(self):
        key = base64.b64encode(os.urandom(16)).decode()
        s = open_raw(self.sid, f"GET /ws HTTP/1.1\r\nHost: {host(self.sid)}"
                     f"\r\nX-Sandpipe-Traffic-Token: {sbx_token(self.sid)}"
                     "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n")
        try:
            head = read_until(s, b"\r\n\r\n")
            self.assertIn(b" 101 ", head.split(b"\r\n")[0], head)
            want = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                .digest())
            self.assertIn(b"Sec-WebSocket-Accept: " + want, head)
            msg, mask = b"hello through the preview", os.urandom(4)
            s.sendall(bytes([0x81, 0x80 | len(msg)]) + mask +
                      bytes(c ^ mask[i % 4] for i, c in enumerate(msg)))
            frame = read_until(s, msg)
            self.assertEqual(frame, bytes([0x81, len(msg)]) + msg)
        finally:
            s.close()

    def test_unknown_sandbox_and_closed_port(self):
        unknown = "sbx_" + uuid.uuid4().hex[:26]
        self.assertError(preview(unknown, headers=tok(self.sid)), 404,
                         "not_found")
        self.assertError(preview(unknown), 404, "not_found")
        self.assertError(preview(unknown, headers={"X-API-Key": sp.API_KEY}),
                         404, "not_found")
        self.assertError(preview(self.sid, port=8001, headers=tok(self.sid)),
                         502, "bad_gateway")

    def test_load_leaves_the_proxy_up(self):
        """Thousands of short connections, half of them to a port nobody
        listens on (refused at once), and the proxy stays the same
        process: a socket it closed must not come back in its events
        (the helper may still hold the descriptor it passed)."""
        wrk = shutil.which("wrk")
        self.assertIsNotNone(wrk, "wrk is not installed (./sandpipe test "
                                  "installs it)")
        before = sp.supervision()["sp-preview"]
        runs = []
        for port in (PORT, 8001):
            runs.append(subprocess.Popen(
                [wrk, "-t1", "-c16", "-d3s",
                 "-H", f"Host: {host(self.sid, port)}",
                 "-H", f"X-Sandpipe-Traffic-Token: {sbx_token(self.sid)}",
                 f"http://{sp.HOST}:{sp.PORT}/echo"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for r in runs:
            out, _ = r.communicate(timeout=60)
            self.assertEqual(r.returncode, 0, out)
        after = sp.supervision()["sp-preview"]
        self.assertEqual((after["pid"], after["restarts"]),
                         (before["pid"], before["restarts"]), after)
        r = preview(self.sid, headers=tok(self.sid))
        self.assertEqual(r.status, 200, r)

    def test_selectors_that_disagree_are_refused(self):
        for extra in ({"E2b-Sandbox-Id": self.other,
                       "E2b-Sandbox-Port": str(PORT)},
                      {"E2b-Sandbox-Id": self.sid,
                       "E2b-Sandbox-Port": str(PORT + 1)}):
            with self.subTest(headers=extra):
                h = dict(tok(self.sid), **extra)
                self.assertError(preview(self.sid, headers=h), 400,
                                 "invalid_argument")
        # nginx's own headers cannot be sent by a client.
        r = preview(self.sid, headers=dict(tok(self.sid), **{
            "X-Sp-Sandbox-Id": self.other, "X-Sp-Sandbox-Port": "1"}))
        self.assertEqual(r.status, 200, r)


class PreviewPublicTest(PreviewCase):
    def test_public_ports_need_no_token(self):
        sid = self.new_sandbox({"public": True})["id"]
        self.start_server(sid)
        self.assertIs(call("GET", f"/sandboxes/{sid}").json["public"], True)
        r = preview(sid)
        self.assertEqual(r.status, 200, r)
        # A made-up ?token= is let through, but never made a cookie (its
        # text would be the cookie's attributes).
        r = preview(sid, "/echo?token=x;Domain=localhost;Path=/")
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.headers.get("Set-Cookie"), r)
        self.assertEqual(r.json["path"], "/echo")

    def test_public_must_be_a_boolean(self):
        r = self.create_raw({"public": "yes"})
        self.assertError(r, 400, "invalid_argument", "public")


class PreviewIsolationTest(PreviewCase):
    PROBE = r'''
import socket, sys
ok = []
for h, p in [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1]))
             for a in sys.argv[1:]]:
    try:
        socket.create_connection((h, p), timeout=2).close()
        ok.append("%s:%d" % (h, p))
    except OSError:
        pass
for path in SOCKETS:
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        ok.append(path)
    except OSError:
        pass
print("reached:" + ",".join(ok))
'''

    def host_targets(self):
        out = subprocess.run(["hostname", "-I"], capture_output=True,
                             text=True, timeout=5).stdout.split()
        addrs = ["127.0.0.1", "10.0.2.2"] + [a for a in out if ":" not in a]
        ports = [sp.PORT, 6379]
        return [f"{a}:{p}" for a in addrs for p in ports]

    def test_sandboxes_cannot_reach_host_services(self):
        run = os.path.abspath(os.path.join(sp.STATE, "run"))
        sockets = [os.path.join(run, n) for n in (
            "redis.sock", "sp-sandboxes.sock", "sp-preview.sock",
            "sp-helperd-ports.sock")]
        probe = self.PROBE.replace("SOCKETS", repr(sockets))
        for body in ({}, {"network": True}):
            with self.subTest(sandbox=body):
                sid = self.new_sandbox(body)["id"]
                out = self.ok(sid, ["python3", "-c", probe] +
                              self.host_targets(), timeout=60)
                self.assertEqual(out.strip(), "reached:", out)

    def test_preview_of_the_host_port_stays_in_the_sandbox(self):
        # nginx listens on sp.PORT on the host; inside the sandbox nothing
        # does: the preview URL of that port is 502, never the host's API.
        sid = self.new_sandbox()["id"]
        r = preview(sid, "/health", port=sp.PORT, headers=tok(sid))
        self.assertError(r, 502, "bad_gateway")
