"""bench/benchlib.py: what the sandbox benches share: a stack of their
own, percentiles, a keep-alive API client with an API key, and the host's
used memory."""
import contextlib
import http.client
import json
import os
import subprocess

MEMINFO = "/proc/meminfo"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def stack(state, listen, **extra):
    """`./sandpipe up` on state dir state at listen ("host:port"), with its
    own Redis, the API key rate limits lifted and the options in extra;
    yields its API key; `down` at the end, whatever happened."""
    env = dict(os.environ, SP_APIKEY_RATE="999999", SP_APIKEY_BURST="999999",
               SP_STATE_DIR=state, SP_LISTEN=listen, **extra)
    env.pop("REDIS_URL", None)
    sandpipe = os.path.join(ROOT, "sandpipe")
    subprocess.run([sandpipe, "up"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    try:
        with open(os.path.join(state, "api_key")) as f:
            yield f.read().strip()
    finally:
        subprocess.run([sandpipe, "down"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class Client:
    """One kept-alive connection to the stack at listen ("host:port")."""

    def __init__(self, listen, key, timeout=120):
        host, port = listen.split(":")
        self.c = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.h = {"X-API-Key": key, "Content-Type": "application/json"}

    def req(self, method, path, body=None):
        self.c.request(method, path,
                       json.dumps(body) if body is not None else None, self.h)
        r = self.c.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:200]!r}")
        return json.loads(data) if data else None


def mem_used_kib():
    """MemTotal - MemAvailable: it moves with whatever else the machine
    does, so a difference of two is indicative only."""
    info = {}
    with open(MEMINFO) as f:
        for line in f:
            k, v = line.split(":")
            info[k] = int(v.split()[0])
    return info["MemTotal"] - info["MemAvailable"]
