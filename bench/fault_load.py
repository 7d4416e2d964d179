#!/usr/bin/env python3
"""bench/fault_load.py: many streamed runs and many SSE clients, with the
sandbox helper killed once in the middle; every execution must end (ok,
or error "sandbox_lost") and every stream must get its last event.

  sudo bench/fault_load.py [--runs 1000] [--streams 5000] [--threads 32]

Starts its own stack (state in state/bench-fault, port 18095) and stops it.
Each run is POST /execute-stream of a short Python program (a random sleep
up to --sleep seconds, then a line); the streams (GET
/executions/{id}/events, spread over the runs) are read with one epoll
loop. Halfway through the submissions the helper is killed with SIGKILL;
the script starts it again (as ./sandpipe up does) unless something else
(a supervisor) did within 3 s. At the end it prints how many runs ended
ok, lost (sandbox_lost), otherwise, and still running (must be 0), and
how many streams got their last event (must be all). Loopback only;
bounded in count and time (--deadline)."""
import argparse
import json
import os
import random
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import http.client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTEN = "127.0.0.1:18095"
STATE = os.path.join(ROOT, "state", "bench-fault")


def redis(*args):
    sock = os.path.join(STATE, "run", "redis.sock")
    p = subprocess.run(["redis-cli", "-s", sock] + list(args),
                       capture_output=True, text=True, timeout=30)
    return p.stdout.splitlines()


def read_pid(name):
    with open(os.path.join(STATE, "run", name + ".pid")) as f:
        return int(f.read().strip())


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_helper(env, build):
    log = open(os.path.join(STATE, "log", "sp-helperd.log"), "ab")
    proc = subprocess.Popen(
        [os.path.join(build, "sp-helperd"), os.path.join(build, "sp-init")],
        env=env, stdin=subprocess.DEVNULL, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    with open(os.path.join(STATE, "run", "sp-helperd.pid"), "w") as f:
        f.write(f"{proc.pid}\n")


def submit(key, n, sleep_max, out, lock, errors):
    host, port = LISTEN.split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=120)
    h = {"X-API-Key": key, "Content-Type": "application/json"}
    for _ in range(n):
        code = (f"import time\ntime.sleep({random.uniform(0, sleep_max):.2f})"
                "\nprint('done')")
        for attempt in range(50):
            try:
                c.request("POST", "/execute-stream",
                          json.dumps({"code": code}), h)
                r = c.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException) as e:
                c.close()
                c = http.client.HTTPConnection(host, int(port), timeout=120)
                errors.append(repr(e))
                time.sleep(0.2)
                continue
            if r.status == 200:
                with lock:
                    out.append(json.loads(data)["executionId"])
                break
            # 503 while no helper runs, 429 while many runs are in flight:
            # try again shortly; anything else is an error.
            if r.status not in (429, 503):
                errors.append(f"{r.status} {data[:200]!r}")
                break
            time.sleep(0.2)
    c.close()


class Streams:
    """Many SSE streams read with one epoll loop; each ends at its last
    event (result) or when the server closes it."""

    def __init__(self, key):
        self.key = key
        self.sel = selectors.DefaultSelector()
        self.open = 0
        self.ended = 0
        self.failed = 0

    def add(self, exe):
        host, port = LISTEN.split(":")
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall((f"GET /executions/{exe}/events HTTP/1.1\r\n"
                   f"Host: {host}\r\nX-API-Key: {self.key}\r\n"
                   "Accept: text/event-stream\r\n\r\n").encode())
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, [b""])
        self.open += 1

    def pump(self, timeout):
        for k, _ in self.sel.select(timeout):
            s, buf = k.fileobj, k.data
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            buf[0] = (buf[0] + chunk)[-4096:]
            done = b"event: result" in buf[0]
            if done or not chunk:
                self.sel.unregister(s)
                s.close()
                self.open -= 1
                if done:
                    self.ended += 1
                else:
                    self.failed += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--streams", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--sleep", type=float, default=2.0)
    ap.add_argument("--deadline", type=float, default=600)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE,
                       (max(soft, min(hard, a.streams + 1024)), hard))
    env = dict(os.environ, SP_STATE_DIR=STATE, SP_LISTEN=LISTEN,
               SP_DEFAULT_TEMPLATE="host", SP_BUILTIN_TEMPLATES="",
               SP_RUNS_MAX_PER_SUBJECT=str(max(100, a.runs)))
    env.pop("REDIS_URL", None)
    build = env.get("SP_BUILD_DIR") or os.path.join(ROOT, "state", "build")
    subprocess.run([os.path.join(ROOT, "sandpipe"), "up"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    t0 = time.monotonic()
    try:
        key = open(os.path.join(STATE, "api_key")).read().strip()
        with open(os.path.join(STATE, "run", "redis_url")) as f:
            henv = dict(env, REDIS_URL=f.read().strip())
        with open(os.path.join(STATE, "jwt_secret")) as f:
            henv["JWT_SECRET"] = f.read().strip()
        exes, lock, errors = [], threading.Lock(), []
        per = [a.runs // a.threads + (i < a.runs % a.threads)
               for i in range(a.threads)]
        ths = [threading.Thread(target=submit,
                                args=(key, n, a.sleep, exes, lock, errors))
               for n in per]
        for t in ths:
            t.start()
        streams = Streams(key)
        per_run = max(1, a.streams // max(1, a.runs))
        opened, killed = 0, False
        while any(t.is_alive() for t in ths) or \
                opened < min(a.streams, len(exes) * per_run):
            with lock:
                new = exes[opened // per_run:] if per_run else []
            for exe in new:
                for _ in range(per_run):
                    if opened < a.streams:
                        streams.add(exe)
                        opened += 1
            streams.pump(0.05)
            if not killed and len(exes) >= a.runs // 2:
                pid = read_pid("sp-helperd")
                os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
                print(f"helper {pid} killed after {len(exes)} runs "
                      f"({killed - t0:.1f} s)", flush=True)
            if killed and killed is not True and \
                    time.monotonic() - killed > 3:
                if not alive(read_pid("sp-helperd")):
                    start_helper(henv, build)
                    print("helper started again", flush=True)
                killed = True
            if time.monotonic() - t0 > a.deadline:
                break
            if opened >= min(a.streams, len(exes) * per_run) and \
                    not any(t.is_alive() for t in ths):
                break
        for t in ths:
            t.join(max(1, a.deadline - (time.monotonic() - t0)))
        while streams.open > 0 and time.monotonic() - t0 < a.deadline:
            streams.pump(0.5)
        statuses = {}
        for exe in exes:
            st = redis("HMGET", "sp:exec:" + exe, "status", "error")
            label = st[0] if st and st[0] else "missing"
            if label == "error" and len(st) > 1 and st[1] == "sandbox_lost":
                label = "sandbox_lost"
            statuses[label] = statuses.get(label, 0) + 1
        took = time.monotonic() - t0
        print(f"runs submitted: {len(exes)} of {a.runs} "
              f"(submission errors: {len(errors)})")
        print("runs by end status: " +
              ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
        print(f"streams: {streams.ended} ended with their result, "
              f"{streams.failed} closed without it, {streams.open} still "
              f"open, of {opened}")
        print(f"took {took:.1f} s")
        stuck = statuses.get("running", 0) + statuses.get("missing", 0)
        ok = (stuck == 0 and streams.open == 0 and streams.failed == 0 and
              len(exes) == a.runs)
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        subprocess.run([os.path.join(ROOT, "sandpipe"), "down"], env=env,
                       stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
