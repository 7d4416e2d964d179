#!/usr/bin/env python3
"""sse_bench.py: N concurrent SSE streams on one execution through nginx
(loopback). Opens N streams on /executions/<exe>/events, then appends E
stdout events to the execution's Redis stream (each carrying its send
time) and a result; checks that every stream got every event in order,
and reports delivery latency (p50/p99 over all streams and events) and the
relay's resident memory (VmRSS, VmHWM of --pid).

The events are written straight into Redis as the helper would, so the
numbers are the relay's (and nginx's) alone. Needs SP_LISTEN, REDIS_URL
(unix:// or redis://), JWT_SECRET, optionally SP_PREFIX.

usage: sse_bench.py [-n 5000] [-e 20] [--interval 0.05] [--pid PID]
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import time
import uuid


def b64(d):
    return base64.urlsafe_b64encode(d).rstrip(b"=").decode()


def token(sub):
    now = int(time.time())
    head = b64(b'{"alg":"HS256","typ":"JWT"}')
    body = b64(json.dumps({"sub": sub, "kid": "key_bench", "jti": "at_" + uuid.uuid4().hex,
                           "token_use": "access", "iat": now, "exp": now + 3600}).encode())
    sig = hmac.new(os.environ["JWT_SECRET"].encode(), f"{head}.{body}".encode(),
                   hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def redis_cmd(sock, *args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    sock.sendall(b"".join(out))
    data = b""
    while not data.endswith(b"\r\n"):
        data += sock.recv(65536)
    return data


def redis_connect():
    url = os.environ["REDIS_URL"]
    if url.startswith("unix://"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(url[7:])
        return s
    host, _, port = url[8:].rpartition(":")
    return socket.create_connection((host, int(port or 6379)))


def vm(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS", "VmHWM")):
                    k, v = line.split(":")
                    out[k] = int(v.split()[0]) // 1024
    except OSError:
        pass
    return out


async def stream(host, port, path, tok, nexp, lat, ready, done_ok):
    r, w = await asyncio.open_connection(host, port, limit=1 << 20)
    w.write(f"GET {path} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
            f"Accept: text/event-stream\r\n\r\n".encode())
    await w.drain()
    line = await r.readline()
    if b" 200 " not in line:
        raise RuntimeError(line)
    while (await r.readline()) not in (b"\r\n", b""):
        pass
    ready.release()
    got, last = 0, -1
    while True:
        line = await r.readline()  # chunked framing lines are skipped below
        if not line:
            break
        if line.startswith(b"data: "):
            now = time.time()
            d = json.loads(line[6:])
            if d["type"] == "result":
                break
            n, sent = map(float, d["data"].split())
            if int(n) != last + 1:
                raise RuntimeError(f"gap: {last} -> {n}")
            last = int(n)
            got += 1
            lat.append(now - sent)
    w.close()
    if got == nexp:
        done_ok.append(1)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("-e", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--pid", type=int, default=0)
    a = ap.parse_args()
    host, port = os.environ.get("SP_LISTEN", "127.0.0.1:8080").rsplit(":", 1)
    prefix = os.environ.get("SP_PREFIX", "sp:")
    exe = "exe_" + uuid.uuid4().hex[:22]
    rs = redis_connect()
    redis_cmd(rs, "HSET", prefix + "exec:" + exe, "owner", "bench")
    tok = token("bench")
    lat, ok = [], []
    ready = asyncio.Semaphore(0)
    base = vm(a.pid) if a.pid else {}
    tasks = []
    t0 = time.time()
    for i in range(a.n):
        tasks.append(asyncio.create_task(stream(host, int(port), f"/executions/{exe}/events",
                                                tok, a.e, lat, ready, ok)))
        if i % 200 == 199:
            await asyncio.sleep(0.05)
    for _ in range(a.n):
        await ready.acquire()
    t1 = time.time()
    held = vm(a.pid) if a.pid else {}
    for i in range(a.e):
        redis_cmd(rs, "XADD", prefix + "events:" + exe, "*", "type", "stdout",
                  "data", f"{i} {time.time():.6f}")
        await asyncio.sleep(a.interval)
    redis_cmd(rs, "XADD", prefix + "events:" + exe, "*", "type", "result", "data",
              '{"data":{"exitCode":0,"status":"ok","truncated":false},"duration":1}')
    res = await asyncio.gather(*tasks, return_exceptions=True)
    errs = [x for x in res if isinstance(x, Exception)]
    after = vm(a.pid) if a.pid else {}
    redis_cmd(rs, "DEL", prefix + "exec:" + exe, prefix + "events:" + exe)
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")
    print(f"streams={a.n} events={a.e} complete={len(ok)} errors={len(errs)} "
          f"connect_s={t1 - t0:.1f}")
    print(f"delivery_ms p50={q(0.5):.1f} p99={q(0.99):.1f} max={q(1.0):.1f}")
    if a.pid:
        print(f"relay_rss_mb idle={base.get('VmRSS')} held={held.get('VmRSS')} "
              f"after={after.get('VmRSS')} peak={after.get('VmHWM')}")
    if errs:
        print("first error:", repr(errs[0]))


if __name__ == "__main__":
    asyncio.run(main())
