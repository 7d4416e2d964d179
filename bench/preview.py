#!/usr/bin/env python3
"""bench/preview.py: a sandbox's port through its preview URL, next to
nginx proxying to the same small HTTP server on the host, both measured in
the same run.

  sudo bench/preview.py [--n 500] [--secs 5] [--conns 16]

Starts its own stack (state in state/bench-preview, port 18201) and a
throwaway nginx (port 18203, the same proxy settings as
families/preview.conf: HTTP/1.1, unbuffered, one upstream connection per
request) in front of the server on the host (port 18202); the same server
(SERVER below: asyncio, answers 200 "hello" and closes) runs in a sandbox
on port 8000. Throughput: wrk, --conns connections for --secs seconds
each, direct then preview then direct again (the mean of the two direct
runs is the baseline). Latency: --n sequential requests each way,
interleaved, on kept-alive client connections; p50 and p99 and the added
p50. Prints the ratios against the goals of issue 12 (throughput >= 50 %
of direct; added p50 <= 1 ms)."""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Client, pct, stack  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTEN = "127.0.0.1:18201"
HOST_SERVER_PORT = 18202
DIRECT = "127.0.0.1:18203"
STATE = os.path.join(ROOT, "state", "bench-preview")
SERVER = r'''
import asyncio, sys
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
async def serve(r, w):
    try:
        await r.readuntil(b"\r\n\r\n")
        w.write(ANSWER)
        await w.drain()
    except Exception:
        pass
    w.close()
async def main():
    s = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]),
                                   backlog=1024)
    await s.serve_forever()
asyncio.run(main())
'''
NGINX = """daemon off; worker_processes auto; pid {d}/nginx.pid;
error_log {d}/error.log crit;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {d}; proxy_temp_path {d};
  fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{
    listen {listen};
    location / {{
      proxy_pass http://127.0.0.1:{port};
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Connection close;
      proxy_buffering off;
      proxy_request_buffering off;
    }}
  }}
}}
"""


def wrk(url, secs, conns, headers):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m is None or bad:
        raise RuntimeError("wrk: " + out)
    return float(m.group(1))


def one(conn, headers):
    t0 = time.perf_counter()
    conn.request("GET", "/", headers=headers)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200 or body != b"hello":
        raise RuntimeError(f"{r.status} {body[:200]!r}")
    return (time.perf_counter() - t0) * 1000


def latency(n, prev_headers):
    h, p = DIRECT.split(":")
    d = http.client.HTTPConnection(h, int(p), timeout=30)
    h, p = LISTEN.split(":")
    v = http.client.HTTPConnection(h, int(p), timeout=30)
    direct, preview = [], []
    for _ in range(n):
        direct.append(one(d, {}))
        preview.append(one(v, prev_headers))
    return direct, preview


def start_servers(key, d):
    c = Client(LISTEN, key)
    sid = c.req("POST", "/sandboxes", {"timeout": 3600})["id"]
    c.c.request("PUT", f"/sandboxes/{sid}/files?path=/workspace/srv.py",
                SERVER.encode(), {"X-API-Key": key})
    c.c.getresponse().read()
    c.req("POST", f"/sandboxes/{sid}/commands",
          {"argv": ["python3", "/workspace/srv.py", "8000"],
           "background": True})
    host = subprocess.Popen([sys.executable, "-c", SERVER,
                             str(HOST_SERVER_PORT)])
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX.format(d=d, listen=DIRECT, port=HOST_SERVER_PORT))
    ngx = subprocess.Popen(["nginx", "-c", os.path.join(d, "nginx.conf"),
                            "-p", d, "-e", os.path.join(d, "error.log")])
    tokn = c.req("GET", f"/sandboxes/{sid}")["traffic_token"]
    for _ in range(100):
        ports = c.req("GET", f"/sandboxes/{sid}/ports")["ports"]
        if any(p["port"] == 8000 for p in ports):
            break
        time.sleep(0.1)
    time.sleep(0.5)
    return sid, tokn, host, ngx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--conns", type=int, default=16)
    a = ap.parse_args()
    procs = []
    with stack(STATE, LISTEN, SP_DEFAULT_TEMPLATE="host",
               SP_BUILTIN_TEMPLATES="") as key:
        try:
            d = tempfile.mkdtemp(prefix="sp-bench-preview-")
            sid, tokn, host, ngx = start_servers(key, d)
            procs = [ngx, host]
            ph = {"Host": f"8000-{sid}.localhost:{LISTEN.split(':')[1]}",
                  "X-Sandpipe-Traffic-Token": tokn}
            latency(50, ph)  # warm-up
            direct, preview = latency(a.n, ph)
            d1 = wrk(f"http://{DIRECT}/", a.secs, a.conns, {})
            pv = wrk(f"http://{LISTEN}/", a.secs, a.conns, ph)
            d2 = wrk(f"http://{DIRECT}/", a.secs, a.conns, {})
            base = (d1 + d2) / 2
            added = pct(preview, 50) - pct(direct, 50)
            print(json.dumps({
                "latency_ms": {"direct_p50": round(pct(direct, 50), 3),
                               "direct_p99": round(pct(direct, 99), 3),
                               "preview_p50": round(pct(preview, 50), 3),
                               "preview_p99": round(pct(preview, 99), 3),
                               "added_p50": round(added, 3)},
                "throughput_rps": {"direct": round(base, 1),
                                   "direct_runs": [round(d1, 1), round(d2, 1)],
                                   "preview": round(pv, 1),
                                   "ratio": round(pv / base, 3)}}, indent=2))
            print(f"goal throughput >= 0.50 x direct: {pv / base:.2f} "
                  f"{'met' if pv / base >= 0.5 else 'NOT met'}")
            print(f"goal added p50 <= 1 ms: {added:.3f} ms "
                  f"{'met' if added <= 1.0 else 'NOT met'}")
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=10)


if __name__ == "__main__":
    main()
