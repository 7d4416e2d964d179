"""bench/benchlib.py: what the sandbox benches share: percentiles, a
keep-alive API client with an API key, and the host's used memory."""
import http.client
import json

MEMINFO = "/proc/meminfo"


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
