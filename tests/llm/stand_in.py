"""stand_in.py: a model stand-in for the chat tests and bench: a small HTTP
server on loopback that speaks the OpenAI chat-completions streaming wire
format (POST /v1/chat/completions with "stream": true answers
text/event-stream of chat.completion.chunk objects and "data: [DONE]").

It is scripted by the conversation it is sent (the test talks to sp-chat,
which talks to it), by the first word of the last user message:

  RUN <code>      a tool call python_interpreter {code} (its arguments cut
                  into several chunks), then, once the tool's result comes
                  back, a text answer quoting it: "TOOL SAID: <result>"
  LOOP <code>     a tool call again after every tool result (rounds bound)
  TOOL <name> <json>  a call of the tool name with those arguments
  FAIL500         HTTP 500 with a JSON error body
  MALFORMED       one chunk that is not JSON
  CUT             a chunk of text, then the connection closes (no finish)
  anything else   the text answer "ECHO: <message>" in several chunks

Every request is recorded (path, headers, JSON body) in .requests, so a
test can check what sp-chat sent: the key as a Bearer header, the tools,
the tool's result in the conversation, the uploaded files' names.

Run alone: python3 stand_in.py PORT (for trying sp-chat by hand)."""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _chunk(delta, finish=None, usage=None, cid="chatcmpl-standin"):
    c = {"id": cid, "object": "chat.completion.chunk", "created": 1,
         "model": "stand-in",
         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        c = {"id": cid, "object": "chat.completion.chunk", "created": 1,
             "model": "stand-in", "choices": [], "usage": usage}
    return c


def _last(messages, role):
    for m in reversed(messages):
        if m.get("role") == role:
            return m
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self.server.lock:
            self.server.requests.append({"path": self.path,
                                         "headers": dict(self.headers),
                                         "body": body})
        if not self.path.endswith("/chat/completions") or body is None:
            self._plain(404, b'{"error":{"message":"not here"}}')
            return
        self._answer(body)

    def do_GET(self):
        with self.server.lock:
            self.server.requests.append({"path": self.path,
                                         "headers": dict(self.headers),
                                         "body": None})
        self._plain(200, b"{}")

    def _plain(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _send(self, obj):
        data = obj if isinstance(obj, bytes) else \
            b"data: " + json.dumps(obj).encode() + b"\n\n"
        self.wfile.write(data)
        self.wfile.flush()

    def _text(self, text, pieces=3):
        self._start()
        self._send(_chunk({"role": "assistant", "content": ""}))
        step = max(1, len(text) // pieces)
        for i in range(0, len(text), step):
            self._send(_chunk({"content": text[i:i + step]}))
        self._send(_chunk({}, "stop"))
        self._send(_chunk(None, usage={"prompt_tokens": 11,
                                       "completion_tokens": 7,
                                       "total_tokens": 18}))
        self._send(b"data: [DONE]\n\n")

    def _tool_call(self, name, args):
        self._start()
        self._send(_chunk({"role": "assistant", "content": None}))
        call_id = "call_%d" % int(time.monotonic() * 1e6)
        self._send(_chunk({"tool_calls": [{
            "index": 0, "id": call_id, "type": "function",
            "function": {"name": name, "arguments": ""}}]}))
        a = json.dumps(args)
        for i in range(0, len(a), 7):
            self._send(_chunk({"tool_calls": [{
                "index": 0, "function": {"arguments": a[i:i + 7]}}]}))
        self._send(_chunk({}, "tool_calls"))
        self._send(_chunk(None, usage={"prompt_tokens": 5,
                                       "completion_tokens": 3,
                                       "total_tokens": 8}))
        self._send(b"data: [DONE]\n\n")

    def _answer(self, body):
        msgs = body.get("messages") or []
        user = (_last(msgs, "user") or {}).get("content") or ""
        word, _, rest = user.partition(" ")
        if msgs and msgs[-1].get("role") == "tool" and word != "LOOP":
            self._text("TOOL SAID: " + msgs[-1].get("content", ""))
        elif word in ("RUN", "LOOP"):
            self._tool_call("python_interpreter", {"code": rest})
        elif word == "TOOL":
            name, _, args = rest.partition(" ")
            self._tool_call(name, json.loads(args or "{}"))
        elif word == "FAIL500":
            self._plain(500, b'{"error":{"message":"stand-in failure"}}')
        elif word == "MALFORMED":
            self._start()
            self._send(_chunk({"content": "half"}))
            self._send(b"data: {not json\n\n")
            self._send(b"data: [DONE]\n\n")
        elif word == "CUT":
            self._start()
            self._send(_chunk({"content": "cut short"}))
        else:
            self._text("ECHO: " + user)


class StandIn:
    """The stand-in on 127.0.0.1:port in a thread of the caller."""

    def __init__(self, port):
        self.port = port
        self.server = None
        self.thread = None

    @property
    def requests(self):
        with self.server.lock:
            return list(self.server.requests)

    def start(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self.server.daemon_threads = True
        self.server.lock = threading.Lock()
        self.server.requests = []
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(10)
            self.server = None


if __name__ == "__main__":
    s = StandIn(int(sys.argv[1]))
    s.start()
    s.thread.join()
