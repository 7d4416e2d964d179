#!/usr/bin/env python3
"""bench/workflow.py: the overhead of a workflow against a bare /execute
of the same trivial code, both measured in the same run.

  sudo bench/workflow.py [--n 30] [--language python] [--code 'print(1)']

Starts its own stack (state in state/bench-wf, port 18241) and stops it.
Baseline: POST /execute {language, code}, answered when the run has
ended. Workflow: POST /workflows {language, code} (validate: the syntax
check; run; no outputs), then its events read over SSE
(/workflows/runs/{id}/events) until "result": queue, a fresh sandbox,
the file written, the syntax check, the run, the sandbox deleted. The
two are interleaved (one of each, --n times) so that the shared
machine's drift hits both alike. Prints p50 and p90 of each and the
ratio of the p50s; the goal of issue 14 is a ratio <= 3."""
import argparse
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTEN = "127.0.0.1:18241"
STATE = os.path.join(ROOT, "state", "bench-wf")


def execute_once(cl, language, code):
    t0 = time.monotonic()
    doc = cl.req("POST", "/execute", {"language": language, "code": code})
    took = time.monotonic() - t0
    if doc.get("status") not in ("ok", "completed", "success"):
        raise RuntimeError(f"/execute: {doc}")
    return took


def workflow_once(cl, key, language, code):
    t0 = time.monotonic()
    doc = cl.req("POST", "/workflows", {"language": language, "code": code})
    host, port = LISTEN.split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=120)
    c.request("GET", f"/workflows/runs/{doc['run_id']}/events",
              headers={"X-API-Key": key})
    r = c.getresponse()
    status, event = None, None
    for line in r:
        if line.startswith(b"event: "):
            event = line[7:].strip()
        elif line.startswith(b"data: ") and event == b"result":
            status = json.loads(line[6:])["status"]
            break
    took = time.monotonic() - t0
    c.close()
    if status != "succeeded":
        raise RuntimeError(f"workflow {doc['run_id']}: {status}")
    return took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--language", default="python")
    ap.add_argument("--code", default="print(1)")
    a = ap.parse_args()
    with benchlib.stack(STATE, LISTEN) as key:
        cl = benchlib.Client(LISTEN, key)
        # Warm both paths (templates loaded, pools filled).
        for _ in range(3):
            execute_once(cl, a.language, a.code)
            workflow_once(cl, key, a.language, a.code)
        ex, wf = [], []
        for _ in range(a.n):
            ex.append(execute_once(cl, a.language, a.code))
            wf.append(workflow_once(cl, key, a.language, a.code))
    e50, w50 = benchlib.pct(ex, 50) * 1000, benchlib.pct(wf, 50) * 1000
    print(f"/execute   p50 {e50:8.1f} ms  p90 "
          f"{benchlib.pct(ex, 90) * 1000:8.1f} ms  (n={a.n})")
    print(f"workflow   p50 {w50:8.1f} ms  p90 "
          f"{benchlib.pct(wf, 90) * 1000:8.1f} ms  (n={a.n})")
    print(f"ratio p50 workflow / execute: {w50 / e50:.2f} (goal <= 3)")


if __name__ == "__main__":
    main()
