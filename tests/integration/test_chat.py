"""test_chat.py: POST /api/chat against a model stand-in (tests/llm/
stand_in.py, on loopback, speaking the chat-completions streaming wire
format). An sp-chat of the stack's own environment is started on the
stack's socket with SP_LLM_URL naming the stand-in (the supervised one is
held meanwhile), a key, small bounds and an HTTP tool.

Checked: the AI SDK data stream's parts in order and valid; a tool call
run in the session's sandbox with its output and result; state across two
chat requests of one session; a matplotlib chart as PNG; uploaded file
names in the model's messages; the tool's result fed back to the model;
the rounds bound; a tool call's timeout; a client that goes away cancels
its tool call; model down, 500, malformed or cut → an error part and a
clean end; the OpenAI protocol; HTTP tools refused on private addresses;
validation; another subject's session is its own; the key as a Bearer
header only, never in Redis, a log or the sandbox."""
import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid

import sbx_util as su
import sp
import storage_util

sys.path.insert(0, os.path.join(sp.ROOT, "tests", "llm"))
import stand_in  # noqa: E402

STAND_IN_PORT = sp.PORT + 11
KEY = "sk-chat-test-" + uuid.uuid4().hex
ROUNDS = 3
TOOL_TIMEOUT = 6
PART = re.compile(r"^([0-9a-z]):(.*)$")


def chat_raw(body, key=None, timeout=120):
    """POST /api/chat; returns the response object (not yet read) and its
    connection."""
    conn = http.client.HTTPConnection(sp.HOST, sp.PORT, timeout=timeout)
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    conn.request("POST", "/api/chat", body=data,
                 headers={"X-API-Key": key or sp.API_KEY,
                          "Content-Type": "application/json"})
    return conn.getresponse(), conn


def parts_of(text):
    """The data stream's parts as (type, value), each line checked."""
    out = []
    assert text.endswith("\n"), text[-200:]
    for line in text[:-1].split("\n"):
        m = PART.match(line)
        assert m, line
        out.append((m.group(1), json.loads(m.group(2))))
    return out


class ChatCase(su.SbxCase):
    @classmethod
    def setUpClass(cls):
        cls.model = stand_in.StandIn(STAND_IN_PORT)
        cls.model.start()
        cls.tools = tempfile.NamedTemporaryFile(
            "w", suffix=".json", delete=False, dir=sp.STATE)
        json.dump([{"name": "fetch_local", "description": "a private URL",
                    "parameters": {"type": "object", "properties": {
                        "q": {"type": "string"}}},
                    "url": f"http://127.0.0.1:{STAND_IN_PORT}/tool?q={{q}}"}],
                  cls.tools)
        cls.tools.close()
        os.chmod(cls.tools.name, 0o644)
        cls.log = open(os.path.join(sp.STATE, "log", "sp-chat-test.log"), "ab")
        try:
            cls.proc = storage_util.start_instead("sp-chat", {
                "SP_LLM_URL": f"http://127.0.0.1:{STAND_IN_PORT}/v1/",
                "SP_LLM_KEY": KEY, "SP_LLM_MODEL": "stand-in",
                "SP_LLM_TIMEOUT_S": "10",
                "SP_CHAT_MAX_ROUNDS": str(ROUNDS),
                "SP_CHAT_TOOL_TIMEOUT": str(TOOL_TIMEOUT),
                "SP_CHAT_TOOLS": cls.tools.name}, cls.ready, cls.log)
        except AssertionError:
            cls.proc = None
            cls.tearDownClass()
            raise

    @staticmethod
    def ready():
        # An empty body is a 400 from sp-chat (a 502 while it is away).
        return su.call("POST", "/api/chat", {}).status == 400

    @classmethod
    def tearDownClass(cls):
        storage_util.stop_instead("sp-chat", cls.proc, cls.ready)
        cls.proc = None
        cls.log.close()
        cls.model.stop()
        os.unlink(cls.tools.name)

    # ---- helpers -----------------------------------------------------------

    def session(self, key=None):
        sid = "chat_" + uuid.uuid4().hex
        self.addCleanup(self.end_session, sid, key)
        return sid

    def end_session(self, sid, key=None):
        r = su.call("POST", f"/api/sessions/{sid}/initialize", {}, key=key,
                    timeout=60)
        if r.status in (200, 201):
            self.delete_quietly(r.json["sandbox_id"], key)

    def chat(self, sid, text, key=None, protocol=None, history=()):
        body = {"session_id": sid,
                "messages": list(history) + [{"role": "user",
                                              "content": text}]}
        if protocol:
            body["protocol"] = protocol
        resp, conn = chat_raw(body, key)
        try:
            data = resp.read().decode()
        finally:
            conn.close()
        self.assertEqual(resp.status, 200, data[:500])
        return resp, data

    def parts(self, sid, text, **kw):
        resp, data = self.chat(sid, text, **kw)
        self.assertEqual(resp.getheader("x-vercel-ai-data-stream"), "v1")
        self.assertTrue(resp.getheader("Content-Type").startswith(
            "text/plain; charset=utf-8"))
        return parts_of(data)

    def requests_with(self, marker):
        return [q for q in self.model.requests if q["body"] and
                marker in json.dumps(q["body"])]

    def assertEndsWithError(self, parts, words):
        self.assertEqual(parts[-1][0], "3", parts)
        self.assertIn(words, parts[-1][1])
        self.assertNotIn("d", [t for t, _ in parts])

    # ---- the data stream ---------------------------------------------------

    def test_tool_round_parts_in_order(self):
        sid = self.session()
        tag = uuid.uuid4().hex[:8]
        parts = self.parts(sid, f"RUN print('out-{tag}'); 6 * 7")
        types = [t for t, _ in parts]
        # A step with the call and its result, then a step with the text.
        self.assertEqual(types[:2], ["f", "9"], parts)
        self.assertIn("a", types)
        first_end = types.index("e")
        self.assertLess(types.index("a"), first_end)
        self.assertEqual(types[first_end + 1], "f")
        self.assertEqual(types[-2:], ["e", "d"], parts)
        self.assertTrue(all(t == "0" for t in types[first_end + 2:-2]))
        call = parts[1][1]
        self.assertEqual(call["toolName"], "python_interpreter")
        self.assertEqual(call["args"], {"code": f"print('out-{tag}'); 6 * 7"})
        result = dict(parts)["a"]
        self.assertEqual(result["toolCallId"], call["toolCallId"])
        res = result["result"]
        self.assertEqual(res["status"], "ok", res)
        self.assertEqual(res["stdout"], f"out-{tag}\n")
        self.assertIsNone(res["error"])
        self.assertIn({"text/plain": "42", "main": True}, res["results"])
        # The output came while the tool ran, as a data part.
        outs = [v for t, v in parts if t == "2"]
        self.assertIn(f"out-{tag}", "".join(
            o["text"] for arr in outs for o in arr
            if o["toolCallId"] == call["toolCallId"]))
        self.assertEqual(parts[first_end][1]["finishReason"], "tool-calls")
        self.assertIs(parts[first_end][1]["isContinued"], False)
        text = "".join(v for t, v in parts if t == "0")
        self.assertTrue(text.startswith("TOOL SAID: "), text)
        self.assertIn(f"out-{tag}", text)
        self.assertIn("result: 42", text)
        done = parts[-1][1]
        self.assertEqual(done["finishReason"], "stop")
        self.assertEqual(done["usage"], {"promptTokens": 16,
                                         "completionTokens": 10})
        # What the model got: the tool's result as a tool message, the key
        # as a Bearer header, both tools offered.
        reqs = self.requests_with(f"out-{tag}")
        self.assertEqual(len(reqs), 2, reqs)
        for q in reqs:
            self.assertEqual(q["path"], "/v1/chat/completions")
            self.assertEqual(q["headers"].get("Authorization"),
                             "Bearer " + KEY)
            self.assertIs(q["body"]["stream"], True)
            self.assertEqual(q["body"]["model"], "stand-in")
            names = {t["function"]["name"] for t in q["body"]["tools"]}
            self.assertEqual(names, {"python_interpreter", "fetch_local"})
        msgs = reqs[1]["body"]["messages"]
        self.assertEqual(msgs[-2]["role"], "assistant")
        self.assertEqual(msgs[-2]["tool_calls"][0]["id"], call["toolCallId"])
        self.assertEqual(msgs[-1]["role"], "tool")
        self.assertEqual(msgs[-1]["tool_call_id"], call["toolCallId"])
        self.assertIn(f"out-{tag}", msgs[-1]["content"])

    def test_state_across_requests_of_a_session(self):
        sid = self.session()
        n = int(uuid.uuid4().hex[:6], 16)
        parts = self.parts(sid, f"RUN chat_x = {n}")
        self.assertEqual(dict(parts)["a"]["result"]["status"], "ok")
        parts = self.parts(sid, "RUN print(chat_x + 1)", history=[
            {"role": "user", "content": f"RUN chat_x = {n}"},
            {"role": "assistant", "content": "done"}])
        self.assertEqual(dict(parts)["a"]["result"]["stdout"], f"{n + 1}\n")
        # Another subject's session of the same name is its own: no state.
        other = sp.create_key()[1]
        self.addCleanup(self.end_session, sid, other)
        parts = self.parts(sid, "RUN print(chat_x)", key=other)
        err = dict(parts)["a"]["result"]["error"]
        self.assertEqual(err["name"], "NameError", parts)

    def test_chart_comes_back_as_png(self):
        sid = self.session()
        parts = self.parts(sid, "RUN import matplotlib\n"
                                "matplotlib.use('Agg')\n"
                                "import matplotlib.pyplot as plt\n"
                                "plt.plot([1, 2, 3], [3, 1, 2])\n"
                                "plt.show()")
        res = dict(parts)["a"]["result"]
        self.assertEqual(res["status"], "ok", res)
        pngs = [r["image/png"] for r in res["results"] if "image/png" in r]
        self.assertEqual(len(pngs), 1, res)
        self.assertTrue(base64.b64decode(pngs[0]).startswith(b"\x89PNG"))
        # The model reads a note, not the image.
        text = "".join(v for t, v in parts if t == "0")
        self.assertIn("chart (image/png)", text)
        self.assertNotIn(pngs[0][:40], text)

    def test_uploaded_file_names_reach_the_model(self):
        sid = self.session()
        r = su.call("POST", f"/api/sessions/{sid}/initialize", {}, timeout=60)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["sandbox"]["template"], "code-interpreter")
        name = f"sales_{uuid.uuid4().hex[:6]}.csv"
        r = self.upload(f"/api/sandboxes/upload?session_id={sid}",
                        [("file", name, b"a,b\n1,2\n3,4\n")])
        self.assertEqual(r.status, 201, r)
        parts = self.parts(sid, "RUN import pandas as pd\n"
                                f"print(pd.read_csv('/uploaded_files/{name}')"
                                ".b.sum())")
        self.assertEqual(dict(parts)["a"]["result"]["stdout"], "6\n")
        reqs = self.requests_with(name)
        self.assertTrue(reqs)
        system = reqs[0]["body"]["messages"][0]
        self.assertEqual(system["role"], "system")
        self.assertIn(f"/uploaded_files/{name}", system["content"])

    def test_activity_keeps_the_session_sandbox(self):
        """A session's sandbox ends SP_SESSION_IDLE after its last activity:
        made with a short timeout, a chat and an upload push its expiry to
        at least SP_SESSION_IDLE from now; never shortened."""
        idle = su.cfg("SP_SESSION_IDLE", 3600)
        sid = self.session()
        r = su.call("POST", f"/api/sessions/{sid}/initialize",
                    {"timeout": 60}, timeout=60)
        self.assertEqual(r.status, 201, r)
        sbx = r.json["sandbox_id"]
        self.assertLessEqual(r.json["sandbox"]["timeout"], 60)
        self.parts(sid, "hello")
        left = su.call("GET", f"/sandboxes/{sbx}").json["timeout"]
        self.assertGreater(left, idle - 60)
        r = su.call("POST", f"/sandboxes/{sbx}/timeout", {"timeout": 30})
        self.assertEqual(r.status, 200, r)
        r = self.upload(f"/api/sandboxes/upload?session_id={sid}",
                        [("file", "a.txt", b"x")])
        self.assertEqual(r.status, 201, r)
        self.assertGreater(su.call("GET", f"/sandboxes/{sbx}").json["timeout"],
                           idle - 60)
        # A longer timeout asked for stays.
        r = su.call("POST", f"/sandboxes/{sbx}/timeout", {"timeout": idle * 2})
        self.assertEqual(r.status, 200, r)
        self.parts(sid, "hello")
        self.assertGreater(su.call("GET", f"/sandboxes/{sbx}").json["timeout"],
                           idle * 2 - 60)

    def test_rounds_are_bounded(self):
        sid = self.session()
        tag = uuid.uuid4().hex[:8]
        parts = self.parts(sid, f"LOOP print('{tag}')")
        self.assertEqual([t for t, _ in parts].count("9"), ROUNDS - 1, parts)
        self.assertEndsWithError(parts, f"after {ROUNDS} rounds")
        self.assertEqual(len(self.requests_with(tag)), ROUNDS)

    def test_tool_call_timeout(self):
        sid = self.session()
        parts = self.parts(sid, "RUN import time\ntime.sleep(600)")
        res = dict(parts)["a"]["result"]
        self.assertEqual(res["status"], "timeout", res)
        text = "".join(v for t, v in parts if t == "0")
        self.assertIn(f"stopped after {TOOL_TIMEOUT} s", text)
        self.assertEqual(parts[-1], ("d", parts[-1][1]))
        # The context is usable again.
        parts = self.parts(sid, "RUN print('after')")
        self.assertEqual(dict(parts)["a"]["result"]["stdout"], "after\n")

    def test_client_gone_cancels_the_tool_call(self):
        sid = self.session()
        r = su.call("POST", f"/api/sessions/{sid}/initialize", {}, timeout=60)
        sbx = r.json["sandbox_id"]
        resp, conn = chat_raw({"session_id": sid, "messages": [
            {"role": "user", "content": "RUN import time\ntime.sleep(600)"}]})
        self.assertEqual(resp.status, 200)
        seen = ""
        while "\n9:" not in seen:
            line = resp.readline().decode()
            self.assertTrue(line, seen)
            seen += "\n" + line
        conn.sock.shutdown(2)
        conn.close()

        def ended():
            for k in su.redis("--scan", "--pattern", su.PREFIX + "exec:*"):
                h = su.redis_hash(k[len(su.PREFIX):])
                # The run of a context (not /uploaded_files' mkdir).
                if h.get("sandbox") == sbx and "context" in h and \
                        h.get("status") not in (None, "running"):
                    return h
            return None
        record = sp.wait_until(ended, TOOL_TIMEOUT + 20, 0.3)
        self.assertEqual((record or {}).get("status"), "cancelled", record)

    def test_output_bytes_become_text(self):
        sid = self.session()
        parts = self.parts(sid, "RUN import sys\n"
                                "sys.stdout.buffer.write(b'a\\xffb\\x00c\\n')")
        res = dict(parts)["a"]["result"]
        self.assertEqual(res["stdout"], "a\ufffdb c\n", res)
        live = "".join(o["text"] for t, v in parts if t == "2" for o in v)
        self.assertEqual(live, "a\ufffdb c\n")

    def test_bad_tools_file_stops_start(self):
        env = storage_util.program_env(self.proc.pid)
        d = tempfile.mkdtemp(prefix="sp-chat-tools-", dir=sp.STATE)
        self.addCleanup(shutil.rmtree, d, True)
        for name, content in (
                ("notjson", "[{"),
                ("badname", '[{"name": "a b", "url": "http://x.example/"}]'),
                ("builtin", '[{"name": "python_interpreter", '
                            '"url": "http://x.example/"}]'),
                ("scheme", '[{"name": "f", "url": "file:///etc/passwd"}]'),
                ("twice", '[{"name": "f", "url": "http://x.example/"}, '
                          '{"name": "f", "url": "http://y.example/"}]')):
            with self.subTest(case=name):
                path = os.path.join(d, name + ".json")
                with open(path, "w") as f:
                    f.write(content)
                p = subprocess.run(
                    [os.path.join(sp.BUILD, "sp-chat")],
                    env=dict(env, SP_CHAT_TOOLS=path,
                             SP_SOCKET=os.path.join(d, name + ".sock")),
                    capture_output=True, text=True, timeout=30)
                self.assertNotEqual(p.returncode, 0, p.stderr)
                self.assertIn("SP_CHAT_TOOLS" if name == "notjson" else
                              "tool", p.stderr)

    # ---- the model's failures ----------------------------------------------

    def test_model_500_malformed_cut(self):
        sid = self.session()
        for text, words in (("FAIL500", "answered HTTP 500"),
                            ("MALFORMED", "malformed chunk"),
                            ("CUT", "ended before its end")):
            with self.subTest(mode=text):
                parts = self.parts(sid, text)
                self.assertEqual(parts[0][0], "f")
                self.assertEndsWithError(parts, words)
        # The 500's body (which may quote the key) is not passed on.
        self.assertNotIn("stand-in failure", json.dumps(parts))

    def test_model_down(self):
        sid = self.session()
        su.call("POST", f"/api/sessions/{sid}/initialize", {}, timeout=60)
        self.model.stop()
        try:
            parts = self.parts(sid, "hello")
        finally:
            self.model.start()
        self.assertEndsWithError(parts, "could not be reached")

    # ---- the OpenAI protocol -----------------------------------------------

    def test_openai_protocol(self):
        sid = self.session()
        resp, data = self.chat(sid, "RUN print('oa')", protocol="openai")
        self.assertTrue(resp.getheader("Content-Type").startswith(
            "text/event-stream"))
        events = [e for e in data.split("\n\n") if e]
        self.assertTrue(all(e.startswith("data: ") for e in events), events)
        self.assertEqual(events[-1], "data: [DONE]")
        chunks = [json.loads(e[6:]) for e in events[:-1]]
        content, extras = "", []
        for c in chunks:
            self.assertEqual(c["object"], "chat.completion.chunk")
            for ch in c["choices"]:
                content += ch["delta"].get("content") or ""
            if "sandpipe" in c:
                extras.append(c["sandpipe"])
        self.assertIn("```python\nprint('oa')\n```", content)
        self.assertIn("TOOL SAID: stdout:\noa", content)
        self.assertEqual([x["type"] for x in extras],
                         ["tool_call", "tool_result"])
        self.assertEqual(extras[1]["result"]["stdout"], "oa\n")
        self.assertEqual(chunks[-1]["usage"]["total_tokens"], 26)
        finish = [ch["finish_reason"] for c in chunks for ch in c["choices"]
                  if ch["finish_reason"]]
        self.assertEqual(finish, ["stop"])
        resp, data = self.chat(sid, "FAIL500", protocol="openai")
        events = [e for e in data.split("\n\n") if e]
        self.assertEqual(events[-1], "data: [DONE]")
        self.assertIn("HTTP 500", json.loads(events[-2][6:])["error"]
                      ["message"])

    # ---- tools and requests ------------------------------------------------

    def test_http_tool_to_a_private_address_is_refused(self):
        sid = self.session()
        tag = uuid.uuid4().hex[:8]
        parts = self.parts(sid, 'TOOL fetch_local {"q": "%s"}' % tag)
        self.assertEqual(dict(parts)["9"]["toolName"], "fetch_local")
        res = dict(parts)["a"]["result"]
        self.assertEqual(res, {"error": "url_not_public"})
        self.assertFalse([q for q in self.model.requests
                          if q["path"].startswith("/tool")])
        parts = self.parts(sid, 'TOOL no_such_tool {}')
        self.assertEqual(dict(parts)["a"]["result"], {"error": "no such tool"})

    def test_bad_requests(self):
        sid = self.session()
        good = [{"role": "user", "content": "hi"}]
        for body, field in (
                ({"messages": good}, "session_id"),
                ({"session_id": sid}, "messages"),
                ({"session_id": sid, "messages": []}, "messages"),
                ({"session_id": sid, "messages": [{"role": "x",
                                                   "content": "a"}]},
                 "messages"),
                ({"session_id": sid, "messages": [{"role": "user"}]},
                 "messages"),
                ({"session_id": sid, "messages": good, "protocol": "sse"},
                 "protocol"),
                ({"session_id": "a/b", "messages": good}, "session_id"),
                ({"session_id": "x" * 65, "messages": good}, "session_id")):
            with self.subTest(field=field, body=body):
                self.assertError(su.call("POST", "/api/chat", body), 400,
                                 "invalid_argument", field)
        r = sp.request("POST", "/api/chat", {"session_id": sid,
                                             "messages": good})
        self.assertError(r, 401, "unauthenticated")
        r = su.call("GET", "/api/chat")
        self.assertEqual(r.status, 405, r)

    # ---- the official clients ----------------------------------------------

    def test_official_clients_read_the_streams(self):
        """tests/sdk/chat.mjs: the AI SDK's processDataStream and the openai
        package's streaming (npm, installed by ./sandpipe test)."""
        sdk = os.path.join(sp.ROOT, "tests", "sdk")
        self.assertTrue(os.path.isdir(os.path.join(sdk, "node_modules",
                                                   "@ai-sdk", "ui-utils")))
        sid = self.session()
        env = dict(os.environ, SP_URL=f"http://{sp.LISTEN}",
                   SP_TOKEN=sp.token_pair()["access_token"], SP_SESSION=sid)
        proc = subprocess.run(["node", "--test", "--test-reporter=tap",
                               "chat.mjs"], env=env, cwd=sdk,
                              capture_output=True, text=True,
                              errors="replace", timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_console_chat_page(self):
        """tests/browser/chat.test.mjs: the console's Chat view in
        Chromium (upload, code, output, chart, answer, state, error)."""
        env = dict(os.environ, SP_LISTEN=sp.LISTEN, SP_API_KEY=sp.API_KEY)
        self.addCleanup(self.end_console_sessions)
        proc = sp.run_browser_script(self, "chat.test.mjs", env, 400)
        self.assertEqual(proc.returncode, 0, "chat.test.mjs failed")

    def end_console_sessions(self):
        for k in su.redis("--scan", "--pattern",
                          su.PREFIX + "session:*:console_*"):
            if k.endswith(":lock"):
                continue
            sbx = su.redis("GET", k)
            if sbx:
                self.delete_quietly(sbx[0])

    # ---- the key -----------------------------------------------------------

    def test_zz_key_never_stored_logged_or_in_the_sandbox(self):
        sid = self.session()
        parts = self.parts(sid, "RUN import os, subprocess\n"
                                "print(dict(os.environ))\n"
                                "print(subprocess.run(['env'], "
                                "capture_output=True, text=True).stdout)")
        res = dict(parts)["a"]["result"]
        self.assertEqual(res["status"], "ok", res)
        self.assertIn("PATH", res["stdout"])
        self.assertNotIn(KEY, json.dumps(parts))
        read = {"string": ("GET",), "hash": ("HGETALL",),
                "list": ("LRANGE", "0", "-1"), "set": ("SMEMBERS",),
                "zset": ("ZRANGE", "0", "-1"), "stream": ("XRANGE", "-", "+")}
        keys = su.redis("--scan", "--pattern", su.PREFIX + "*")
        self.assertTrue(keys)
        url = sp.REDIS_URL or "unix://" + os.path.join(sp.STATE, "run",
                                                       "redis.sock")
        cli = (["redis-cli", "-s", url[len("unix://"):]]
               if url.startswith("unix://") else ["redis-cli", "-u", url])
        for k in keys:
            kind = su.redis("TYPE", k)[0]
            # Bytes: values hold any output (not UTF-8 either).
            values = subprocess.run(cli + [read[kind][0], k] +
                                    list(read[kind][1:]),
                                    capture_output=True, timeout=10).stdout
            self.assertNotIn(KEY[-16:].encode(), values, k)
        logs = os.path.join(sp.STATE, "log")
        for name in os.listdir(logs):
            path = os.path.join(logs, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.assertNotIn(KEY.encode(), f.read(), name)


if __name__ == "__main__":
    import unittest
    unittest.main()
