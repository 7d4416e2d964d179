#!/usr/bin/env python3
"""bench/sandboxes.py: sandbox costs through the real stack, next to a
baseline of bare bubblewrap measured in the same run.

  sudo bench/sandboxes.py [--n 100] [--alive 200]

Starts its own stack (state in state/bench-sbx, port 18092) and stops it.
Prints p50/p99 of: bare `bwrap ... true` (baseline); sandbox create ->
first command (`true`) done -> delete through nginx; POST
/sandboxes/{id}/commands running `true` in a live sandbox; and host memory
per idle sandbox with --alive sandboxes alive. Then the goals of issue 10
(a command in a live sandbox p50 <= bare bwrap p50; create -> command ->
delete p50 <= 1.3 x bare bwrap p50), each against the baseline measured
interleaved with it (the machine's load drifts: one baseline run, then
one of the measured operation, and so on)."""
import argparse, os, subprocess, sys, time

from benchlib import Client, mem_used_kib, pct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTEN = "127.0.0.1:18092"
STATE = os.path.join(ROOT, "state", "bench-sbx")


BWRAP = ["bwrap", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
         "--unshare-net", "--unshare-cgroup-try", "--die-with-parent", "--new-session",
         "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
         "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
         "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--", "/bin/true"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--alive", type=int, default=200)
    a = ap.parse_args()
    env = dict(os.environ, SP_APIKEY_RATE="999999", SP_APIKEY_BURST="999999",
               SP_STATE_DIR=STATE, SP_LISTEN=LISTEN,
               SP_DEFAULT_TEMPLATE="host", SP_BUILTIN_TEMPLATES="",
               SP_SANDBOX_MAX_PER_SUBJECT=str(a.alive + 10))
    env.pop("REDIS_URL", None)
    subprocess.run([os.path.join(ROOT, "sandpipe"), "up"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    try:
        key = open(os.path.join(STATE, "api_key")).read().strip()
        c = Client(LISTEN, key, timeout=60)
        # Baseline: bare bubblewrap running true, as the helper's uid would.
        def bare():
            t = time.perf_counter()
            subprocess.run(BWRAP, check=True)
            return (time.perf_counter() - t) * 1000

        base, base_cmd = [], []
        life, create, first = [], [], []
        for _ in range(a.n):
            base.append(bare())
            t0 = time.perf_counter()
            s = c.req("POST", "/sandboxes", {"timeout": 60})
            t1 = time.perf_counter()
            r = c.req("POST", f"/sandboxes/{s['id']}/commands", {"argv": ["true"]})
            assert r["status"] == "ok", r
            t2 = time.perf_counter()
            c.req("DELETE", f"/sandboxes/{s['id']}")
            t3 = time.perf_counter()
            life.append((t3 - t0) * 1000)
            create.append((t1 - t0) * 1000)
            first.append((t2 - t0) * 1000)
        s = c.req("POST", "/sandboxes", {"timeout": 300})
        cmd = []
        for i in range(a.n * 5):
            if i % 5 == 0:
                base_cmd.append(bare())
            t = time.perf_counter()
            c.req("POST", f"/sandboxes/{s['id']}/commands", {"argv": ["true"]})
            cmd.append((time.perf_counter() - t) * 1000)
        c.req("DELETE", f"/sandboxes/{s['id']}")
        time.sleep(1)
        before = mem_used_kib()
        ids = [c.req("POST", "/sandboxes", {"timeout": 600})["id"] for _ in range(a.alive)]
        time.sleep(2)
        after = mem_used_kib()
        for i in ids:
            c.req("DELETE", f"/sandboxes/{i}")
        per = (after - before) / a.alive / 1024.0
        b50 = pct(base, 50)
        bc50 = pct(base_cmd, 50)
        print(f"\n{'(ms)':44} {'p50':>8} {'p99':>8} {'vs bwrap p50':>13}")
        rows = [("bare bwrap ... true (baseline)", base, b50),
                ("POST /sandboxes", create, b50),
                ("create -> first command done", first, b50),
                ("create -> command -> DELETE", life, b50),
                ("bare bwrap ... true (baseline, 2nd phase)", base_cmd, bc50),
                ("command `true` in a live sandbox", cmd, bc50)]
        for name, xs, b in rows:
            print(f"{name:44} {pct(xs, 50):8.2f} {pct(xs, 99):8.2f} {pct(xs, 50) / b:12.2f}x")
        print(f"host memory per idle sandbox ({a.alive} alive): {per:.2f} MiB")
        print("\ngoals (issue 10), each against the baseline of its phase:")
        r_cmd, r_life = pct(cmd, 50) / bc50, pct(life, 50) / b50
        print(f"  {'command in a live sandbox p50 <= bare bwrap':48} "
              f"{r_cmd:6.2f} x  {'met' if r_cmd <= 1 else 'NOT met'}")
        print(f"  {'create -> command -> delete p50 <= 1.3 x bare':48} "
              f"{r_life:6.2f} x  {'met' if r_life <= 1.3 else 'NOT met'}")
    finally:
        subprocess.run([os.path.join(ROOT, "sandpipe"), "down"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
