#!/usr/bin/env python3
"""bench/templates.py: sandboxes of a real template (base: Debian bookworm
over an overlay on the sandbox's own loop-mounted ext4 disk) through the
real stack, next to baselines measured in the same run.

  sudo bench/templates.py [--n 50] [--alive 200] [--docker] [--up]

Starts its own stack (state in state/bench-tpl, port 18094; the first run
builds the base template there, later runs reuse it) and stops it. Prints
p50/p99 of:
  - bare `bwrap ... /bin/true` on the template's root (the same tree,
    bind-mounted read-only, no disk, no overlay): the baseline;
  - create (template base) -> first command (`true`) -> delete through
    nginx, measured interleaved with the baseline (the machine's load
    drifts);
  - with --docker, where a Docker daemon answers: `docker run --rm
    --network none` of the same root (imported once), /bin/true;
  - host memory per idle template sandbox with --alive of them alive;
  - with --up: `./sandpipe up` on a fresh state directory (built-in
    templates included) and again after `down` (reusing them).
Then the goals of issue 11 with their ratios."""
import argparse, json, os, shutil, subprocess, sys, time

from benchlib import Client, mem_used_kib, pct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTEN = "127.0.0.1:18094"
STATE = os.path.join(ROOT, "state", "bench-tpl")


def sandboxes_charged_kib():
    """What the kernel charges to the memory cgroups of this state's
    sandboxes (their processes, page cache and kernel memory), in KiB."""
    import glob
    total = 0
    for f in (glob.glob("/sys/fs/cgroup/memory/sandpipe-*/memory.usage_in_bytes")
              + glob.glob("/sys/fs/cgroup/sandpipe-*/memory.current")):
        try:
            total += int(open(f).read())
        except (OSError, ValueError):
            pass
    return total // 1024


def rootfs_of(name):
    meta = json.load(open(os.path.join(STATE, "templates", name,
                                       "meta.json")))
    return os.path.join(STATE, "templates", name, meta["version"], "rootfs")


def bare_argv(rootfs):
    return ["bwrap", "--unshare-user", "--unshare-pid", "--unshare-ipc",
            "--unshare-uts", "--unshare-net", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--ro-bind", rootfs, "/",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--",
            "/bin/true"]


def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000


def docker_times(rootfs, n):
    """docker run of the same root, or None without a Docker daemon."""
    if not shutil.which("docker") or subprocess.run(
            ["docker", "info"], capture_output=True).returncode != 0:
        return None
    tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."],
                           stdout=subprocess.PIPE)
    subprocess.run(["docker", "import", "-", "sandpipe-bench-base"],
                   stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL)
    tar.wait()
    run = ["docker", "run", "--rm", "--network", "none",
           "sandpipe-bench-base", "/bin/true"]
    timed(run)  # the first run sets things up
    return [timed(run) for _ in range(n)]


def up_times(env):
    """`up` on a fresh state (built-ins made), then again after down."""
    fresh = dict(env, SP_STATE_DIR=STATE + "-up", SP_LISTEN="127.0.0.1:18095")
    fresh.pop("SP_BUILTIN_TEMPLATES", None)  # all of them, as a first up
    shutil.rmtree(fresh["SP_STATE_DIR"], ignore_errors=True)
    out = []
    for _ in range(2):
        t = time.perf_counter()
        subprocess.run([os.path.join(ROOT, "sandpipe"), "up"], env=fresh,
                       check=True, stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - t)
        subprocess.run([os.path.join(ROOT, "sandpipe"), "down"], env=fresh,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


PHASES = {"create": [], "command": [], "delete": []}


def lifecycle(c, rootfs, n):
    base, life = [], []
    for _ in range(n):
        base.append(timed(bare_argv(rootfs)))
        t0 = time.perf_counter()
        s = c.req("POST", "/sandboxes", {"template": "base", "timeout": 60})
        t1 = time.perf_counter()
        r = c.req("POST", f"/sandboxes/{s['id']}/commands",
                  {"argv": ["true"]})
        assert r["status"] == "ok", r
        t2 = time.perf_counter()
        c.req("DELETE", f"/sandboxes/{s['id']}")
        t3 = time.perf_counter()
        life.append((t3 - t0) * 1000)
        for k, a, b in (("create", t0, t1), ("command", t1, t2),
                        ("delete", t2, t3)):
            PHASES[k].append((b - a) * 1000)
    return base, life


def idle_memory(c, alive):
    time.sleep(1)
    before, cg_before = mem_used_kib(), sandboxes_charged_kib()
    ids = [c.req("POST", "/sandboxes", {"template": "base",
                                        "timeout": 600})["id"]
           for _ in range(alive)]
    time.sleep(2)
    after, cg_after = mem_used_kib(), sandboxes_charged_kib()
    ok = sum(c.req("POST", f"/sandboxes/{i}/commands",
                   {"argv": ["true"]})["status"] == "ok" for i in ids)
    for i in ids:
        c.req("DELETE", f"/sandboxes/{i}")
    return ((after - before) / alive / 1024.0,
            (cg_after - cg_before) / alive / 1024.0, ok)


def report(base, life, dock, per, ok, alive, ups):
    b50 = pct(base, 50)
    print(f"\n{'(ms)':48} {'p50':>8} {'p99':>8} {'vs bwrap p50':>13}")
    rows = [("bare bwrap /bin/true on the template's root", base),
            ("create (base) -> command -> delete", life)]
    if dock:
        rows.append(("docker run --rm of the same root", dock))
    for name, xs in rows:
        print(f"{name:48} {pct(xs, 50):8.2f} {pct(xs, 99):8.2f} "
              f"{pct(xs, 50) / b50:12.2f}x")
    print("  of which p50: " + ", ".join(
        f"{k} {pct(v, 50):.2f}" for k, v in PHASES.items()))
    per, cg = per
    print(f"host memory per idle template sandbox ({alive} alive, {ok} "
          f"answered a command): {per:.2f} MiB (MemTotal - MemAvailable), "
          f"{cg:.2f} MiB charged to their memory cgroups")
    if ups:
        print(f"up on a fresh state (built-ins made): {ups[0]:.1f} s; "
              f"again after down: {ups[1]:.1f} s")
    print("\ngoals (issue 11):")
    r = pct(life, 50) / b50
    print(f"  {'create -> command -> delete p50 <= 1.3 x bare bwrap':52} "
          f"{r:6.2f} x  {'met' if r <= 1.3 else 'NOT met'}")
    if dock:
        d = pct(dock, 50) / pct(life, 50)
        print(f"  {'>= 20 x faster than docker run':52} {d:6.2f} x  "
              f"{'met' if d >= 20 else 'NOT met'}")
    else:
        print("  >= 20 x faster than docker run: no Docker daemon here "
              "(--docker where one runs)")
    worst = max(per, cg)
    print(f"  {'host memory per idle sandbox <= 2 MiB':52} {worst:6.2f}    "
          f"{'met' if worst <= 2 else 'NOT met'}")
    print(f"  {f'{alive} idle sandboxes':52} {ok:6d}    "
          f"{'met' if ok == alive else 'NOT met'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--alive", type=int, default=200)
    ap.add_argument("--docker", action="store_true")
    ap.add_argument("--up", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ, SP_APIKEY_RATE="999999", SP_APIKEY_BURST="999999",
               SP_STATE_DIR=STATE, SP_LISTEN=LISTEN,
               SP_BUILTIN_TEMPLATES="base",
               SP_SANDBOX_MAX_PER_SUBJECT=str(a.alive + 10))
    env.pop("REDIS_URL", None)
    ups = up_times(env) if a.up else None
    subprocess.run([os.path.join(ROOT, "sandpipe"), "up"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    try:
        c = Client(LISTEN, open(os.path.join(STATE, "api_key")).read().strip())
        rootfs = rootfs_of("base")
        base, life = lifecycle(c, rootfs, a.n)
        dock = docker_times(rootfs, max(5, a.n // 5)) if a.docker else None
        per, cg, ok = idle_memory(c, a.alive)
        report(base, life, dock, (per, cg), ok, a.alive, ups)
    finally:
        subprocess.run([os.path.join(ROOT, "sandpipe"), "down"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
