#!/usr/bin/env python3
"""bench/chat.py: what one tool round of /api/chat costs next to a bare
run of the same code in a stateful context, measured interleaved in the
same run, against the model stand-in (tests/llm/stand_in.py, in this
process: its answers take no time of their own).

  sudo bench/chat.py [--n 40] [--listen 127.0.0.1:18331]

Starts its own stack (state in state/bench-chat, the host view: no
template to build; sessions of the host view too) with SP_LLM_URL naming
the stand-in, and stops it. Each round times, in turn:
  - a bare context run: POST /execute {code: "x = 1", context_id} in a
    context of the session's sandbox (the baseline);
  - a chat with one tool round: POST /api/chat "RUN x = 1", read to its
    end: model call, python_interpreter in the session's default context,
    model call again with the result, streamed text;
  - a chat without a tool: the model call alone (what the stand-in and
    the stream cost without the sandbox).
Prints p50/p99 of each and the tool round's p50 over the bare run's."""
import argparse
import http.client
import json
import os
import sys
import time

from benchlib import ROOT, Client, pct, stack

sys.path.insert(0, os.path.join(ROOT, "tests", "llm"))
import stand_in  # noqa: E402

STATE = os.path.join(ROOT, "state", "bench-chat")


def chat(listen, key, session, text):
    """ms for POST /api/chat to its last byte; the body's parts."""
    host, port = listen.split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=120)
    t0 = time.perf_counter()
    c.request("POST", "/api/chat", json.dumps({
        "session_id": session, "messages": [{"role": "user",
                                             "content": text}]}),
        {"X-API-Key": key, "Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read().decode()
    ms = (time.perf_counter() - t0) * 1000
    c.close()
    assert r.status == 200 and "\nd:" in body, body[-300:]
    return ms, body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--listen", default="127.0.0.1:18331")
    a = ap.parse_args()
    model_port = int(a.listen.split(":")[1]) + 1
    model = stand_in.StandIn(model_port)
    model.start()
    try:
        with stack(STATE, a.listen, SP_DEFAULT_TEMPLATE="host",
                   SP_BUILTIN_TEMPLATES="", SP_SESSION_TEMPLATE="host",
                   SP_LLM_URL=f"http://127.0.0.1:{model_port}/v1",
                   SP_LLM_KEY="bench") as key:
            c = Client(a.listen, key)
            s = c.req("POST", "/api/sessions/bench/initialize", {})
            sbx = s["sandbox_id"]
            ctx = c.req("POST", f"/sandboxes/{sbx}/contexts",
                        {"language": "python"})["id"]
            kinds = ["bare context run, /execute (baseline)",
                     "chat, one tool round", "chat, no tool (model only)"]
            times = {k: [] for k in kinds}

            def bare():
                t0 = time.perf_counter()
                r = c.req("POST", "/execute", {"code": "x = 1",
                                               "context_id": ctx})
                assert r["status"] == "ok", r
                return (time.perf_counter() - t0) * 1000

            def tool():
                ms, body = chat(a.listen, key, "bench", "RUN x = 1")
                assert "\na:" in body, body
                return ms

            def talk():
                return chat(a.listen, key, "bench", "hello")[0]

            for f in (bare, tool, talk):  # warm-up
                f()
            for _ in range(a.n):
                for k, f in zip(kinds, (bare, tool, talk)):
                    times[k].append(f())
            base = pct(times[kinds[0]], 50)
            print(f"\n{'latency (ms)':40} {'p50':>8} {'p99':>8} "
                  f"{'vs baseline p50':>16}")
            for k in kinds:
                xs = times[k]
                print(f"{k:40} {pct(xs, 50):8.2f} {pct(xs, 99):8.2f} "
                      f"{pct(xs, 50) / base:15.2f}x")
            c.req("DELETE", f"/sandboxes/{sbx}")
    finally:
        model.stop()


if __name__ == "__main__":
    sys.exit(main())
