#!/usr/bin/env python3
"""bench/redis_memory.py: upload 1 GiB in 64 MiB files to a sandbox
(PUT /sandboxes/{id}/files) and read it back, and show that Redis' memory
does not grow with it: file bodies go through the spool, not Redis.

  sudo bench/redis_memory.py [--total-mib 1024] [--file-mib 64]

Starts its own stack (state in state/bench-mem, port 18097) and stops it.
Prints Redis' used_memory before, at its peak during the transfers (sampled
every 20 ms) and after, with the growth; the AOF's size before and after;
the job streams' length and the spool's entries at the end; and the
throughput of the uploads and downloads next to a baseline measured in the
same run: `cp` of the same files from disk to a tmpfs (the sandbox's
workspace is a tmpfs), with the ratio."""
import argparse
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTEN = "127.0.0.1:18097"
STATE = os.path.join(ROOT, "state", "bench-mem")
PREFIX = os.environ.get("SP_PREFIX", "sp:")
MiB = 1024 * 1024


def redis(*args):
    sock = os.path.join(STATE, "run", "redis.sock")
    p = subprocess.run(["redis-cli", "-s", sock, *args], capture_output=True,
                       text=True, timeout=30, check=True)
    return p.stdout.splitlines()


def info(section, field):
    for line in redis("INFO", section):
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    return -1


class Sampler(threading.Thread):
    """Polls used_memory until stopped; keeps the highest value."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, info("memory", "used_memory"))
            time.sleep(0.02)


class Client:
    def __init__(self, key):
        host, port = LISTEN.split(":")
        self.c = http.client.HTTPConnection(host, int(port), timeout=300)
        self.key = key

    def call(self, method, path, body=None, ctype="application/json"):
        self.c.request(method, path, body,
                       {"X-API-Key": self.key, "Content-Type": ctype})
        r = self.c.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:200]!r}")
        return data


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def baseline(paths, shm):
    """Seconds to cp every file to a tmpfs, and back."""
    out = [os.path.join(shm, os.path.basename(p)) for p in paths]
    up = timed(lambda: [subprocess.run(["cp", p, o], check=True)
                        for p, o in zip(paths, out)])
    back = [o + ".back" for o in out]
    down = timed(lambda: [subprocess.run(["cp", o, b], check=True)
                          for o, b in zip(out, back)])
    for f in out + back:
        os.unlink(f)
    return up, down


def transfer(c, sid, paths):
    """Seconds spent in the PUTs of every file (each read from disk, as
    cp does), and in the GETs of them back (each checked afterwards)."""
    names = [f"/workspace/bench/{os.path.basename(p)}" for p in paths]
    digests, up, down = {}, 0.0, 0.0

    for p, n in zip(paths, names):
        t = time.perf_counter()
        with open(p, "rb") as f:
            data = f.read()
        c.call("PUT", f"/sandboxes/{sid}/files?path={n}", data,
               "application/octet-stream")
        up += time.perf_counter() - t
        digests[n] = hashlib.sha256(data).digest()
    for n in names:
        t = time.perf_counter()
        data = c.call("GET", f"/sandboxes/{sid}/files?path={n}")
        down += time.perf_counter() - t
        if hashlib.sha256(data).digest() != digests[n]:
            raise RuntimeError(f"{n}: read back different bytes")
    return up, down


def report(a, total, mem, aof, up, down, base_up, base_down, left):
    before, peak, after = mem
    print(f"\n{a.total_mib} MiB in {a.file_mib} MiB files, PUT then GET "
          f"(each file checked)")
    print(f"Redis used_memory before {before / MiB:8.2f} MiB")
    print(f"Redis used_memory peak   {peak / MiB:8.2f} MiB "
          f"(growth {(peak - before) / MiB:+.2f} MiB)")
    print(f"Redis used_memory after  {after / MiB:8.2f} MiB "
          f"(growth {(after - before) / MiB:+.2f} MiB)")
    print(f"AOF size before {aof[0] / MiB:.2f} MiB, after "
          f"{aof[1] / MiB:.2f} MiB")
    print(f"job streams' length after: {left[0]}; spool entries after: "
          f"{left[1]}")
    print(f"\n{'MiB/s':28} {'baseline cp':>12} {'sandpipe':>10} "
          f"{'ratio':>7}")
    for name, b, s in (("upload (PUT)", base_up, up),
                       ("download (GET)", base_down, down)):
        print(f"{name:28} {total / MiB / b:12.1f} {total / MiB / s:10.1f} "
              f"{b / s:7.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--total-mib", type=int, default=1024)
    ap.add_argument("--file-mib", type=int, default=64)
    a = ap.parse_args()
    n = a.total_mib // a.file_mib
    total = n * a.file_mib * MiB
    env = dict(os.environ, SP_APIKEY_RATE="999999", SP_APIKEY_BURST="999999",
               SP_STATE_DIR=STATE, SP_LISTEN=LISTEN,
               SP_DEFAULT_TEMPLATE="host", SP_BUILTIN_TEMPLATES="")
    env.pop("REDIS_URL", None)
    subprocess.run([os.path.join(ROOT, "sandpipe"), "up"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    src = tempfile.mkdtemp(prefix="bench-src-", dir=STATE)
    shm = tempfile.mkdtemp(prefix="sp-bench-mem-",
                           dir="/dev/shm" if os.path.isdir("/dev/shm")
                           else STATE)
    try:
        paths = []
        for i in range(n):
            p = os.path.join(src, f"f{i:02d}.bin")
            with open(p, "wb") as f:
                f.write(os.urandom(a.file_mib * MiB))
            paths.append(p)
        base_up, base_down = baseline(paths, shm)
        key = open(os.path.join(STATE, "api_key")).read().strip()
        c = Client(key)
        disk = a.total_mib + 256
        sid = json.loads(c.call("POST", "/sandboxes", json.dumps(
            {"limits": {"disk_mb": disk}, "timeout": 3600})))["id"]
        c.call("POST", f"/sandboxes/{sid}/dirs",
               json.dumps({"path": "/workspace/bench"}))
        mem_before = info("memory", "used_memory")
        aof_before = info("persistence", "aof_current_size")
        sampler = Sampler()
        sampler.start()
        up, down = transfer(c, sid, paths)
        sampler.stop.set()
        sampler.join()
        mem_after = info("memory", "used_memory")
        helper = redis("ZRANGE", PREFIX + "helpers", "0", "0")[0]
        streams = [int(redis("XLEN", PREFIX + k)[0])
                   for k in ("jobs", "hjobs:" + helper)]
        left = (streams, os.listdir(os.path.join(STATE, "spool")))
        aof_after = info("persistence", "aof_current_size")
        c.call("DELETE", f"/sandboxes/{sid}")
        report(a, total, (mem_before, max(sampler.peak, mem_after), mem_after),
               (aof_before, aof_after), up, down, base_up, base_down, left)
        sys.stdout.flush()
    finally:
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)
        subprocess.run([os.path.join(ROOT, "sandpipe"), "down"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
