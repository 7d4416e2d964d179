"""test_websocket.py: the relay's WebSocket clients through nginx, with a
minimal RFC 6455 client written here (masked frames, fragments, control
frames, raw bytes for the refusals): a client stream (/ws and /?clientId=)
that starts, follows and cancels executions and sees those started over
HTTP with its clientId; a terminal (/terminal): input, resize, output, and
its sandbox gone after the grace period once the socket closes; the
handshake refused for a bad Origin, a bad key, no WebSocket, a bad
credential or clientId; a socket without a credential that must
authenticate first; unmasked, oversized, binary and non-UTF-8 frames and
message floods closed with their codes; pings answered and sent. Every
wait is bounded; nothing asserts how fast a thing happened."""
import base64
import hashlib
import json
import os
import re
import socket
import struct
import time
import uuid

import sp
import sbx_util as su
from sbx_util import call

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WAIT = 60
GRACE = su.cfg("SP_TERMINAL_GRACE", 60)
TEMPLATE = os.environ.get("SP_WS_TERMINAL_TEMPLATE", "")

# Prints its first line at once, then keeps printing for about a minute.
TICKER = ("import time\nfor i in range(600):\n"
          "    print('tick', i, flush=True)\n    time.sleep(0.1)\n")


class Closed(Exception):
    def __init__(self, code, reason=b""):
        super().__init__(f"closed {code} {reason!r}")
        self.code = code


class Refused(Exception):
    def __init__(self, status, body):
        super().__init__(f"refused {status} {body[:200]!r}")
        self.status = status
        self.body = body


class WS:
    """One WebSocket connection through nginx."""

    def __init__(self, path, key=None, headers=None, timeout=WAIT):
        self.sock = socket.create_connection((sp.HOST, sp.PORT),
                                             timeout=timeout)
        self.buf = b""
        nonce = base64.b64encode(os.urandom(16)).decode()
        h = {"Host": f"{sp.HOST}:{sp.PORT}", "Upgrade": "websocket",
             "Connection": "Upgrade", "Sec-WebSocket-Key": nonce,
             "Sec-WebSocket-Version": "13"}
        if key is not False:
            h["X-API-Key"] = key or sp.API_KEY
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        req = f"GET {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        self.sock.sendall(req.encode())
        head = self._read_until(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            raise Refused(status, head + self._drain(head))
        want = base64.b64encode(hashlib.sha1(
            (nonce + GUID).encode()).digest()).decode()
        lines = {ln.split(b":", 1)[0].strip().lower():
                 ln.split(b":", 1)[1].strip()
                 for ln in head.split(b"\r\n")[1:] if b":" in ln}
        assert lines.get(b"sec-websocket-accept") == want.encode(), head

    def _read_until(self, marker):
        for _ in range(10000):
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[:i + len(marker)], self.buf[i + len(
                    marker):]
                return out
            data = self.sock.recv(65536)
            if not data:
                raise Closed(None)
            self.buf += data
        raise AssertionError("no end of the head")

    def _drain(self, head=b""):
        """The body of a refusal: Content-Length bytes when the head says
        (nginx keeps the connection open after it), else up to EOF."""
        out = self.buf
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        try:
            while m is not None and len(out) < int(m.group(1)):
                data = self.sock.recv(65536)
                if not data:
                    break
                out += data
            if m is not None:
                return out
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return out
                out += data
        except OSError:
            return out

    def _read(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise Closed(None)
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_frame(self, opcode, payload, fin=True, mask=True, length=None):
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | opcode
        if n < 126:
            head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
        else:
            head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
        if mask:
            k = os.urandom(4)
            payload = bytes(c ^ k[i % 4] for i, c in enumerate(payload))
            head += k
        self.sock.sendall(head + payload)

    def send(self, obj):
        self.send_frame(1, json.dumps(obj).encode())

    def frame(self):
        """The next server frame (opcode, payload); a server frame is
        never masked."""
        b0, b1 = self._read(2)
        assert not b1 & 0x80, "a server frame is masked"
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        return b0 & 0x0f, self._read(n)

    def recv(self):
        """The next JSON message (pings answered, pongs skipped)."""
        for _ in range(100000):
            op, p = self.frame()
            if op == 1:
                return json.loads(p)
            if op == 9:
                self.send_frame(10, p)
            elif op == 8:
                code = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else None
                raise Closed(code, p[2:])
        raise AssertionError("no message")

    def until(self, pred, what):
        seen = []
        for _ in range(10000):
            m = self.recv()
            seen.append(m)
            if pred(m):
                return m, seen
        raise AssertionError(f"no {what} in {seen[-20:]}")

    def close_code(self):
        """Read until the server's close frame: its code."""
        try:
            for _ in range(100000):
                self.recv()
        except Closed as e:
            return e.code
        raise AssertionError("never closed")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class WebSocketCase(su.SbxCase):
    def ws(self, path="/ws?clientId=" + "c", **kw):
        w = WS(path, **kw)
        self.addCleanup(w.close)
        return w

    def client(self, path=None, **kw):
        cid = "wst_" + uuid.uuid4().hex
        w = self.ws(path or f"/ws?clientId={cid}", **kw)
        hello = w.recv()
        self.assertEqual(hello["type"], "connected", hello)
        return w, hello["clientId"]


class ClientStreamTest(WebSocketCase):
    def test_execute_and_its_events(self):
        w, _ = self.client()
        w.send({"type": "execute", "code": "print('hello', 6 * 7)",
                "language": "python"})
        # Its first events may come before the answer to the request.
        started, before = w.until(lambda m: m["type"] == "started", "started")
        exe = started["executionId"]
        res, seen = w.until(lambda m: m["type"] == "result" and
                            m.get("executionId") == exe, "result")
        seen = before + seen
        out = "".join(m["data"] for m in seen if m["type"] == "stdout" and
                      m["executionId"] == exe)
        self.assertEqual(out, "hello 42\n")
        self.assertEqual(res["data"]["exitCode"], 0, res)
        self.assertIn("duration", res)
        self.assertIn("status", [m["type"] for m in seen])

    def test_cancel(self):
        w, _ = self.client()
        w.send({"type": "execute", "code": TICKER, "language": "python"})
        started, _ = w.until(lambda m: m["type"] == "started", "started")
        exe = started["executionId"]
        w.until(lambda m: m["type"] == "stdout", "output")
        w.send({"type": "cancel", "executionId": exe})
        res, _ = w.until(lambda m: m["type"] == "result", "result")
        self.assertEqual(res["data"]["status"], "cancelled", res)

    def test_refused_messages_answer_errors(self):
        w, _ = self.client()
        w.send({"type": "execute", "code": "1", "language": "cobol"})
        err, _ = w.until(lambda m: m["type"] == "error", "error")
        self.assertEqual(err["code"], "invalid_argument", err)
        w.send({"type": "cancel", "executionId": "exe_nosuchexecution"})
        err, _ = w.until(lambda m: m["type"] == "error", "error")
        self.assertEqual(err["code"], "not_found", err)
        w.send({"type": "what"})
        err, _ = w.until(lambda m: m["type"] == "error", "error")
        self.assertEqual(err["code"], "invalid_argument", err)
        w.send_frame(1, b"not json")
        err, _ = w.until(lambda m: m["type"] == "error", "error")
        self.assertEqual(err["code"], "invalid_json", err)

    def test_runs_started_over_http_reach_the_socket(self):
        cid = "wsh_" + uuid.uuid4().hex
        # The console's path: an upgrade of / goes to the relay.
        w, got = self.client(f"/?clientId={cid}")
        self.assertEqual(got, cid)
        r = call("POST", "/execute-stream", {"code": "echo via-http",
                                              "language": "bash",
                                              "clientId": cid})
        self.assertEqual(r.status, 200, r)
        exe = r.json["executionId"]
        _, seen = w.until(lambda m: m["type"] == "result" and
                          m.get("executionId") == exe, "result")
        self.assertIn("via-http\n", "".join(
            m.get("data", "") for m in seen if m["type"] == "stdout"))
        # The console page itself is still served on /.
        r = sp.request("GET", "/")
        self.assertEqual(r.status, 200)
        self.assertIn(b"<html", r.body.lower())

    def test_authentication_by_first_message(self):
        w = self.ws("/ws?clientId=firstmsg", key=False)
        w.send({"type": "auth", "apiKey": sp.API_KEY})
        hello = w.recv()
        self.assertEqual(hello, {"type": "connected", "clientId": "firstmsg"})
        _, pair = None, sp.token_pair()
        w = self.ws("/ws?clientId=firstmsg2", key=False)
        w.send({"type": "auth", "token": pair["access_token"]})
        self.assertEqual(w.recv()["type"], "connected")


class RefusalTest(WebSocketCase):
    def refused(self, path="/ws?clientId=x", **kw):
        with self.assertRaises(Refused) as cm:
            WS(path, **kw)
        return cm.exception

    def test_handshake_refusals(self):
        e = self.refused(headers={"Origin": "http://evil.test"})
        self.assertEqual(e.status, 403, e.body)
        self.assertIn(b'"forbidden"', e.body)
        e = self.refused(key="spk_" + "x" * 43)
        self.assertEqual(e.status, 401, e.body)
        e = self.refused(headers={"Authorization": "Basic abc"}, key=False)
        self.assertEqual(e.status, 401, e.body)
        e = self.refused("/ws?clientId=bad!id")
        self.assertEqual(e.status, 400, e.body)
        e = self.refused(headers={"Sec-WebSocket-Key": "short"})
        self.assertEqual(e.status, 400, e.body)
        e = self.refused(headers={"Sec-WebSocket-Version": "8"})
        self.assertEqual(e.status, 426, e.body)
        e = self.refused("/terminal?terminalId=nope")
        self.assertEqual(e.status, 404, e.body)
        # Allowed origins: the configured frontend and the server itself.
        self.ws("/ws?clientId=o1", headers={"Origin": sp.ORIGIN}).recv()
        self.ws("/ws?clientId=o2",
                headers={"Origin": f"http://{sp.HOST}:{sp.PORT}"}).recv()

    def test_not_a_websocket(self):
        r = sp.request("GET", "/ws", headers={"X-API-Key": sp.API_KEY})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(json.loads(r.body)["error"]["code"],
                         "invalid_argument")

    def test_no_token_is_refused(self):
        w = self.ws("/ws?clientId=anon", key=False)
        w.send({"type": "execute", "code": "1", "language": "python"})
        self.assertEqual(w.close_code(), 1008)
        w = self.ws("/ws?clientId=anon2", key=False)
        w.send({"type": "auth", "apiKey": "spk_" + "y" * 43})
        self.assertEqual(w.close_code(), 1008)


class FramesTest(WebSocketCase):
    def test_unmasked_frame(self):
        w, _ = self.client()
        w.send_frame(1, b'{"type":"x"}', mask=False)
        self.assertEqual(w.close_code(), 1002)

    def test_reserved_opcode_and_bits(self):
        w, _ = self.client()
        w.send_frame(3, b"x")
        self.assertEqual(w.close_code(), 1002)
        w, _ = self.client()
        w.sock.sendall(bytes([0xC1, 0x80]) + os.urandom(4))  # RSV1 set
        self.assertEqual(w.close_code(), 1002)
        w, _ = self.client()
        w.send_frame(9, b"", fin=False)  # a fragmented ping
        self.assertEqual(w.close_code(), 1002)

    def test_oversized_frame(self):
        w, _ = self.client()
        w.send_frame(1, b"", length=2 * 1024 * 1024)
        self.assertEqual(w.close_code(), 1009)

    def test_oversized_fragmented_message(self):
        w, _ = self.client()
        part = b"x" * (512 * 1024)
        w.send_frame(1, part, fin=False)
        w.send_frame(0, part, fin=False)
        w.send_frame(0, part, fin=True)
        self.assertEqual(w.close_code(), 1009)

    def test_fragmented_message_is_put_together(self):
        w, _ = self.client()
        msg = json.dumps({"type": "execute", "code": "print('frag')",
                          "language": "python"}).encode()
        w.send_frame(1, msg[:10], fin=False)
        w.send_frame(9, b"mid")  # a ping between fragments is allowed
        w.send_frame(0, msg[10:20], fin=False)
        w.send_frame(0, msg[20:], fin=True)
        _, seen = w.until(lambda m: m["type"] == "result", "result")
        self.assertIn("frag\n", "".join(m.get("data", "") for m in seen
                                         if m["type"] == "stdout"))

    def test_binary_and_bad_utf8(self):
        w, _ = self.client()
        w.send_frame(2, b"\x00\x01")
        self.assertEqual(w.close_code(), 1003)
        w, _ = self.client()
        w.send_frame(1, b'{"type":"\xff"}')
        self.assertEqual(w.close_code(), 1007)

    def test_ping_pong_and_server_pings(self):
        w, _ = self.client()
        w.send_frame(9, b"hello")
        op, p = w.frame()
        self.assertEqual((op, p), (10, b"hello"))
        # Idle: the relay pings (SP_SSE_HEARTBEAT_S).
        for _ in range(1000):
            op, p = w.frame()
            if op == 9:
                break
        self.assertEqual(op, 9)
        w.send_frame(8, struct.pack("!H", 1000))
        op, p = w.frame()
        self.assertEqual(op, 8)
        self.assertEqual(struct.unpack("!H", p[:2])[0], 1000)

    def test_message_flood(self):
        w, _ = self.client()
        for _ in range(400):
            try:
                w.send_frame(9, b"")
            except OSError:
                break
        code = None
        for _ in range(1000):
            try:
                op, p = w.frame()
            except Closed:
                break
            if op == 8:
                code = struct.unpack("!H", p[:2])[0]
                break
        self.assertEqual(code, 1008)


class TerminalTest(WebSocketCase):
    def test_terminal_input_resize_and_end(self):
        w = self.ws("/terminal?cols=90&rows=20")
        st, _ = w.until(lambda m: m["type"] == "status" and
                        "terminalId" in m, "terminal status")
        trm, sid = st["terminalId"], st["sandboxId"]
        self.assertTrue(trm.startswith("trm_") and sid.startswith("sbx_"), st)
        w.until(lambda m: m["type"] == "ready", "ready")
        w.send({"type": "input", "data": "echo hi-$((6*7))\n"})
        out = ""
        for _ in range(2000):
            m = w.recv()
            if m["type"] == "output":
                out += m["data"]
                if "hi-42" in out.replace("$((6*7))", ""):
                    break
        self.assertIn("hi-42", out.replace("$((6*7))", ""))
        w.send({"type": "resize", "cols": 100, "rows": 30})
        w.send({"type": "input", "data": "stty size\n"})
        out = ""
        for _ in range(2000):
            m = w.recv()
            if m["type"] == "output":
                out += m["data"]
                if "30 100" in out:
                    break
        self.assertIn("30 100", out)
        w.send({"type": "input", "data": 5})
        err, _ = w.until(lambda m: m["type"] == "error", "error")
        self.assertEqual(err["code"], "invalid_argument", err)
        if TEMPLATE:
            # A sandbox of the template, listed like any other.
            r = call("GET", f"/sandboxes/{sid}")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json.get("template"), TEMPLATE, r.json)
        w.close()
        # After the grace period the terminal and its sandbox are gone.
        gone = sp.wait_until(
            lambda: call("GET", f"/sandboxes/{sid}").status == 404 and
            call("GET", f"/terminal/{trm}").json.get("status") != "running",
            GRACE + WAIT)
        self.assertTrue(gone, f"sandbox {sid} or terminal {trm} still there")

    def test_reconnect_within_grace(self):
        w = self.ws("/terminal")
        st, _ = w.until(lambda m: m["type"] == "status" and
                        "terminalId" in m, "terminal status")
        w.until(lambda m: m["type"] == "ready", "ready")
        w.close()
        w2 = self.ws(f"/terminal?terminalId={st['terminalId']}")
        st2, _ = w2.until(lambda m: m["type"] == "status" and
                          "terminalId" in m, "resumed")
        self.assertEqual(st2["terminalId"], st["terminalId"])
        w2.send({"type": "input", "data": "echo back-$((1+1))\n"})
        out = ""
        for _ in range(2000):
            m = w2.recv()
            if m["type"] == "output":
                out += m["data"]
                if "back-2" in out.replace("$((1+1))", ""):
                    break
        self.assertIn("back-2", out.replace("$((1+1))", ""))
        # Another subject cannot take it.
        w2.close()
        _, key, _ = sp.create_key()
        w3 = self.ws(f"/terminal?terminalId={st['terminalId']}", key=key)
        self.assertEqual(w3.close_code(), 1008)
