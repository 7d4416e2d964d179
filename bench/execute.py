#!/usr/bin/env python3
"""bench/execute.py: POST /execute of Python `print(1)` end to end through
nginx, next to a baseline of the same code run directly under bubblewrap,
both measured in the same run.

  sudo bench/execute.py [--n 200] [--count 200] [--conc 1,2,8]
                        [--rounds 4] [--pool N]

Starts its own stack (state in state/bench-exe, port 18093) and stops it.
Baseline: `bwrap --unshare-all ... -- python3 -c 'print(1)'`. sandpipe:
one-off runs (no sandbox_id), each client thread on its own keep-alive
HTTP connection. Prints p50/p99 latency at concurrency 1 over --n runs,
throughput (runs/s) at each concurrency over --count runs, the p50
difference in ms and the throughput ratio to the baseline, then the goals
of issue 10 (runs/s at c=8 >= 0.9 x baseline; p50 <= baseline + 3 ms and
p99 <= baseline + 10 ms at c=1) with the measured value of each.

The machine is shared, so its load drifts while the bench runs; the
baseline and sandpipe are therefore measured interleaved: at c=1 one
baseline run then one /execute, --n times; for throughput, --rounds
rounds of count/rounds baseline runs then as many /execute runs (the
ratio is of the totals; the spread of the per-round ratios is printed).
--pool sets SP_POOL_SIZE for the stack (default: the configured
default)."""
import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTEN = "127.0.0.1:18093"
STATE = os.path.join(ROOT, "state", "bench-exe")
CODE = "print(1)"
BWRAP = ["bwrap", "--unshare-all", "--die-with-parent",
         "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
         "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
         "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
         "--", "python3", "-c", CODE]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def baseline_once():
    p = subprocess.run(BWRAP, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0 or p.stdout != b"1\n":
        raise RuntimeError(f"bwrap baseline failed: {p.returncode} "
                           f"{p.stdout[:200]!r} {p.stderr[:200]!r}")


class CountingConnection(http.client.HTTPConnection):
    """An HTTP connection that counts its TCP connects (to show keep-alive
    held: one per client thread)."""
    connects = 0
    lock = threading.Lock()

    def connect(self):
        with CountingConnection.lock:
            CountingConnection.connects += 1
        super().connect()


class Client:
    """One keep-alive HTTP/1.1 connection to nginx."""

    def __init__(self, key):
        host, port = LISTEN.split(":")
        self.c = CountingConnection(host, int(port), timeout=120)
        self.h = {"X-API-Key": key, "Content-Type": "application/json"}
        self.body = json.dumps({"code": CODE, "language": "python"})

    def execute_once(self):
        self.c.request("POST", "/execute", self.body, self.h)
        r = self.c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"/execute: {r.status} {data[:200]!r}")
        doc = json.loads(data)
        if doc["status"] != "ok" or doc["output"] != "1\n":
            raise RuntimeError(f"/execute: unexpected result {doc}")

    def close(self):
        self.c.close()


def latencies(fn, n):
    """n sequential calls of fn; milliseconds each."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def interleaved_latencies(fa, fb, n):
    """n sequential calls of fa and of fb, alternating; ms each."""
    a, b = [], []
    for _ in range(n):
        a += latencies(fa, 1)
        b += latencies(fb, 1)
    return a, b


def throughput(make_worker, conc, count, workers=None):
    """count calls spread over conc threads, each with its own worker
    (a callable made by make_worker(), or the given workers); returns
    (runs, seconds)."""
    left = [count]
    lock = threading.Lock()
    errors = []
    if workers is None:
        workers = [make_worker() for _ in range(conc)]

    def loop(fn):
        try:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                fn()
        except Exception as e:  # reported after the join
            errors.append(e)

    threads = [threading.Thread(target=loop, args=(w,)) for w in workers]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    if errors:
        raise errors[0]
    return count, elapsed


def interleaved_throughput(base_worker, sp_workers, conc, count, rounds):
    """rounds rounds of count/rounds baseline runs then as many sandpipe
    runs over conc threads. Returns (baseline runs/s, sandpipe runs/s,
    [per-round ratio])."""
    per = max(1, count // rounds)
    bt = [0, 0.0]
    st = [0, 0.0]
    ratios = []
    for _ in range(rounds):
        b = throughput(lambda: base_worker, conc, per)
        s = throughput(None, conc, per, sp_workers)
        bt = [bt[0] + b[0], bt[1] + b[1]]
        st = [st[0] + s[0], st[1] + s[1]]
        ratios.append((s[0] / s[1]) / (b[0] / b[1]))
    return bt[0] / bt[1], st[0] / st[1], ratios


def goal(name, value, ok):
    print(f"  {name:44} {value:>12}  {'met' if ok else 'NOT met'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200,
                    help="runs for the latency percentiles")
    ap.add_argument("--count", type=int, default=200,
                    help="runs per throughput measurement")
    ap.add_argument("--conc", default="1,2,8")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=4,
                    help="interleaved rounds per throughput measurement")
    ap.add_argument("--pool", type=int, default=None,
                    help="SP_POOL_SIZE of the stack")
    a = ap.parse_args()
    concs = [int(c) for c in a.conc.split(",")]
    env = dict(os.environ, SP_APIKEY_RATE="999999", SP_APIKEY_BURST="999999",
               SP_STATE_DIR=STATE, SP_LISTEN=LISTEN,
               SP_DEFAULT_TEMPLATE="host", SP_BUILTIN_TEMPLATES="")
    env.pop("REDIS_URL", None)
    if a.pool is not None:
        env["SP_POOL_SIZE"] = str(a.pool)
    subprocess.run([os.path.join(ROOT, "sandpipe"), "up"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    clients = []
    try:
        key = open(os.path.join(STATE, "api_key")).read().strip()

        def new_client():
            c = Client(key)
            clients.append(c)
            return c.execute_once

        one = new_client()
        for _ in range(a.warmup):
            baseline_once()
            one()
        base_lat, sp_lat = interleaved_latencies(baseline_once, one, a.n)
        base_tp, sp_tp, spread = {}, {}, {}
        for c in concs:
            workers = [one] + [new_client() for _ in range(c - 1)]
            base_tp[c], sp_tp[c], spread[c] = interleaved_throughput(
                baseline_once, workers, c, a.count, a.rounds)

        b50, s50 = pct(base_lat, 50), pct(sp_lat, 50)
        b99, s99 = pct(base_lat, 99), pct(sp_lat, 99)
        print(f"\nlatency, concurrency 1, {a.n} runs (ms)")
        print(f"{'':40} {'p50':>8} {'p99':>8}")
        print(f"{'bwrap python3 -c print(1) (baseline)':40} "
              f"{b50:8.2f} {b99:8.2f}")
        print(f"{'POST /execute print(1)':40} "
              f"{s50:8.2f} {s99:8.2f}")
        print(f"p50 difference: {s50 - b50:+.2f} ms")
        print(f"\nthroughput, {a.count} runs each (runs/s)")
        print(f"{'concurrency':>12} {'baseline':>10} {'/execute':>10} "
              f"{'ratio':>7}  per-round ratios")
        for c in concs:
            print(f"{c:12d} {base_tp[c]:10.1f} {sp_tp[c]:10.1f} "
                  f"{sp_tp[c] / base_tp[c]:7.2f}  "
                  f"{min(spread[c]):.2f}-{max(spread[c]):.2f}")
        print(f"\nHTTP connections opened: {CountingConnection.connects} "
              f"for {len(clients)} clients")
        print("\ngoals (issue 10), each against the baseline of this run:")
        if 8 in concs:
            r8 = sp_tp[8] / base_tp[8]
            goal("runs/s at c=8 >= 0.9 x bare bwrap", f"{r8:.2f} x",
                 r8 >= 0.9)
        goal("p50 at c=1 <= bare bwrap + 3 ms", f"{s50 - b50:+.2f} ms",
             s50 - b50 <= 3)
        goal("p99 at c=1 <= bare bwrap + 10 ms", f"{s99 - b99:+.2f} ms",
             s99 - b99 <= 10)
    finally:
        for c in clients:
            c.close()
        subprocess.run([os.path.join(ROOT, "sandpipe"), "down"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
