#!/usr/bin/env python3
"""bench/egress.py: what an egress policy costs a sandbox's start, next to
the same sandbox without one, measured interleaved in the same run.

  sudo bench/egress.py [--n 40] [--listen 127.0.0.1:18221]

Starts its own stack (state in state/bench-egress) and stops it. Each
round makes, in turn, a network sandbox without a policy ("network":
true: slirp4netns and the fixed filter), one with a policy (an allow list
of 64 CIDRs, 16 address:port pairs and 16 domains, a deny list: a larger
table, and the sandbox resolver's socket), and one without network; each
is timed from POST /sandboxes to its first command (`true`) done, then
deleted. Both are made for the request (limits other than the default,
so that no ready sandbox is taken: like with like); then, for reference,
the default network: true and no-network creates, which the pools of
ready sandboxes serve. Prints p50/p99 of each and the goal of issue 12:
with a policy, p50 <= 1.2 x without (network: true, made)."""
import argparse, os, sys, time

from benchlib import ROOT, Client, pct, stack

STATE = os.path.join(ROOT, "state", "bench-egress")

POLICY = {"allow_out": [f"203.0.{i}.0/24" for i in range(64)] +
          [f"198.51.100.{i}:443" for i in range(16)] +
          [f"h{i}.example.com" for i in range(16)],
          "deny_out": ["*.bad.example.com", "192.0.2.0/24"]}


def first_command(c, body):
    """ms from POST /sandboxes to its first command done; then deleted."""
    t0 = time.perf_counter()
    s = c.req("POST", "/sandboxes", dict(body, timeout=60))
    r = c.req("POST", f"/sandboxes/{s['id']}/commands", {"argv": ["true"]})
    ms = (time.perf_counter() - t0) * 1000
    assert r["status"] == "ok", r
    c.req("DELETE", f"/sandboxes/{s['id']}")
    return ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--listen", default="127.0.0.1:18221")
    a = ap.parse_args()
    with stack(STATE, a.listen, SP_DEFAULT_TEMPLATE="host",
               SP_BUILTIN_TEMPLATES="") as key:
        c = Client(a.listen, key, timeout=60)
        # Like with like: both made for the request (limits other than
        # the default, so no ready sandbox of the pool is taken); then
        # what the pools give the default requests.
        made = {"limits": {"memory_mb": 384}}
        kinds = [("network: true, made (baseline)",
                  dict(made, network=True)),
                 ("network: policy, made", dict(made, network=POLICY)),
                 ("network: true, ready (SP_POOL_NAMED_NETWORK)",
                  {"network": True}),
                 ("network: false, ready (SP_POOL_NAMED)", {})]
        times = {name: [] for name, _ in kinds}
        first_command(c, dict(made, network=True))  # warm-up
        for _ in range(a.n):
            for name, body in kinds:
                times[name].append(first_command(c, body))
        base = pct(times[kinds[0][0]], 50)
        print(f"\n{'create -> first command done (ms)':46} {'p50':>8} "
              f"{'p99':>8} {'vs baseline p50':>16}")
        for name, _ in kinds:
            xs = times[name]
            print(f"{name:46} {pct(xs, 50):8.2f} {pct(xs, 99):8.2f} "
                  f"{pct(xs, 50) / base:15.2f}x")
        ratio = pct(times[kinds[1][0]], 50) / base
        print(f"\ngoal (issue 12): with a policy p50 <= 1.2 x without: "
              f"{ratio:.2f} x  {'met' if ratio <= 1.2 else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
