#!/usr/bin/env python3
"""bench/workspace.py: a workspace's restore against `tar -x` of the same
archive, measured in the same run.

  sudo bench/workspace.py [--files 1000] [--mib 100] [--runs 3]
                          [--listen 127.0.0.1:18230]

Starts its own stack (state in state/bench-workspace) and stops it. A
sandbox fills a workspace with --files files of --mib MiB in all and is
deleted (its sync stores the archive). Then, --runs times each,
interleaved: a sandbox made on the workspace (create + restore, answered
once the files are in place) and a plain sandbox of the same limits; the
restore's time is the difference of the two medians. The baseline is
`tar -x` of the same stored archive into a fresh tmpfs of the same size
(a host-view sandbox's workspace is a tmpfs). Prints both and the ratio
(restore / tar -x)."""
import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

ROOT = benchlib.ROOT
STATE = os.path.join(ROOT, "state", "bench-workspace")
MOUNT = "/workspace/files"


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def fill(c, sid, files, mib):
    per = mib * 1024 * 1024 // files
    script = (f"mkdir -p {MOUNT} && cd {MOUNT} && "
              f"head -c {per} /dev/urandom > seed && "
              f"for i in $(seq 1 {files}); do d=d$((i % 20)); mkdir -p $d; "
              f"cp seed $d/f$i; done && rm seed")
    res = c.req("POST", f"/sandboxes/{sid}/commands",
                {"cmd": script, "timeout": 600})
    if res.get("exitCode") != 0:
        raise RuntimeError(f"fill failed: {res}")


def archive_bytes(state, key, size):
    name = "o" + urllib.parse.quote(key, safe="._~-")
    path = glob.glob(os.path.join(state, "storage", "*", "_sandpipe",
                                  name))[0]
    with open(path, "rb") as f:
        data = f.read()
    return data[len(data) - size:]


def tar_x_seconds(archive, disk_mb):
    d = tempfile.mkdtemp(prefix="sp-bench-ws-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={disk_mb}m",
                    "bench", d], check=True)
    try:
        return timed(lambda: subprocess.run(
            ["tar", "-x", "-f", archive, "--no-same-owner", "-C", d],
            check=True))
    finally:
        subprocess.run(["umount", d], check=True)
        os.rmdir(d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--listen", default="127.0.0.1:18230")
    a = ap.parse_args()
    disk = max(256, a.mib * 3)
    lim = {"limits": {"disk_mb": disk}, "template": "host"}
    with benchlib.stack(STATE, a.listen, SP_LOG_LEVEL="debug") as key:
        c = benchlib.Client(a.listen, key, timeout=900)
        name = f"bench{os.getpid()}"
        c.req("POST", "/workspaces", {"name": name})
        sid = c.req("POST", "/sandboxes", dict(lim, workspace=name))["id"]
        fill(c, sid, a.files, a.mib)
        c.req("DELETE", f"/sandboxes/{sid}")
        ws = c.req("GET", f"/workspaces/{name}")
        with tempfile.NamedTemporaryFile(suffix=".tar") as tf:
            keyname = benchlib_archive_key(STATE, name)
            tf.write(archive_bytes(STATE, keyname, int(ws["size"])))
            tf.flush()
            with_ws, plain, base = [], [], []
            for _ in range(a.runs):
                got = {}

                def make_ws():
                    got["id"] = c.req("POST", "/sandboxes",
                                      dict(lim, workspace=name))["id"]
                with_ws.append(timed(make_ws))
                c.req("DELETE", f"/sandboxes/{got['id']}")

                def make_plain():
                    got["id"] = c.req("POST", "/sandboxes", lim)["id"]
                plain.append(timed(make_plain))
                c.req("DELETE", f"/sandboxes/{got['id']}")
                base.append(tar_x_seconds(tf.name, disk))
        restore = statistics.median(with_ws) - statistics.median(plain)
        tar_x = statistics.median(base)
        print(f"workspace restore of {a.files} files / {a.mib} MiB "
              f"(archive {int(ws['size']) / 1048576:.1f} MiB), "
              f"median of {a.runs}:")
        print(f"  create on the workspace  {statistics.median(with_ws):7.3f} s")
        print(f"  create, no workspace     {statistics.median(plain):7.3f} s")
        print(f"  restore (difference)     {restore:7.3f} s")
        print(f"  tar -x (baseline)        {tar_x:7.3f} s")
        print(f"  ratio restore / tar -x   {restore / tar_x:7.2f}")


def benchlib_archive_key(state, name):
    """The archive key the workspace's record names (its Redis)."""
    sock = os.path.join(state, "run", "redis.sock")
    out = subprocess.run(["redis-cli", "-s", sock, "KEYS", f"sp:ws:*:{name}"],
                         capture_output=True, text=True, check=True).stdout
    k = out.split()[0]
    return subprocess.run(["redis-cli", "-s", sock, "HGET", k, "archive"],
                          capture_output=True, text=True,
                          check=True).stdout.strip()


if __name__ == "__main__":
    main()
