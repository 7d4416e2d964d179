#!/usr/bin/env python3
"""bench/terminal_echo.py: keystroke echo latency of a sandpipe terminal:
the time from POST /terminal/{id}/input of one character to its echo on
the terminal's SSE stream, next to the same round trip through a bare PTY
(bash on os.openpty, no sandbox) measured in the same run.

  sudo bench/terminal_echo.py [--n 300] [--rate 50]

Starts its own stack (state in state/bench-trm, port 18096) and stops it.

Keystrokes are paced at --rate per second (a fast typist makes about 10),
in the bare PTY as through sandpipe: a terminal takes at most
INPUTS_PER_S inputs a second (TRM_INPUTS_PER_S, handlers/terminal.c;
README's API table) and answers 429 past it, and the bench measures echo
latency, not that limit. The pace is refused above the limit."""
import argparse, http.client, json, os, pty, select, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTEN = "127.0.0.1:18096"
STATE = os.path.join(ROOT, "state", "bench-trm")
HOST, PORT = LISTEN.split(":")
CHARS = "abcdefghijklmnopqrstuvwxyz"
INPUTS_PER_S = 200  # handlers/terminal.c, TRM_INPUTS_PER_S


def pace(start, i, rate):
    """Sleep until keystroke i of a run begun at start is due."""
    delay = start + i / rate - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def bare_pty(n, rate):
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
    time.sleep(0.5)
    os.read(fd, 65536)
    out = []
    start = time.perf_counter()
    for i in range(n):
        c = CHARS[i % len(CHARS)]
        pace(start, i, rate)
        t = time.perf_counter()
        os.write(fd, c.encode())
        got = b""
        while c.encode() not in got:
            select.select([fd], [], [], 5)
            got += os.read(fd, 65536)
        out.append((time.perf_counter() - t) * 1000)
        if i % 50 == 49:
            os.write(fd, b"\x15")  # ^U: clear the line
            time.sleep(0.05)
            select.select([fd], [], [], 0.2)
            os.read(fd, 65536)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return out


class Events:
    def __init__(self, path, headers):
        self.c = http.client.HTTPConnection(HOST, int(PORT), timeout=30)
        self.c.request("GET", path, headers=headers)
        self.r = self.c.getresponse()
        assert self.r.status == 200, self.r.status
        self.buf = b""

    def next_output(self):
        while True:
            while b"\n\n" not in self.buf:
                self.buf += self.r.read1(65536)
            block, self.buf = self.buf.split(b"\n\n", 1)
            ev, data = None, None
            for line in block.decode().split("\n"):
                if line.startswith("event: "):
                    ev = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
            if ev == "output":
                return data["data"]


def sandpipe(n, key, rate):
    h = {"X-API-Key": key, "Content-Type": "application/json"}
    c = http.client.HTTPConnection(HOST, int(PORT), timeout=30)

    def post(path, body):
        c.request("POST", path, json.dumps(body), h)
        r = c.getresponse()
        data = r.read()
        assert r.status < 300, (r.status, data)
        return json.loads(data) if data else None

    t = post("/terminal", {"cols": 80, "rows": 24})
    ev = Events(f"/terminal/{t['id']}/events", {"X-API-Key": key})
    post(f"/terminal/{t['id']}/input", {"data": "PS1='$ '\n"})
    time.sleep(0.5)
    out = []
    start = time.perf_counter()
    for i in range(n):
        ch = CHARS[i % len(CHARS)]
        pace(start, i, rate)
        s = time.perf_counter()
        post(f"/terminal/{t['id']}/input", {"data": ch})
        got = ""
        while ch not in got:
            got += ev.next_output()
        out.append((time.perf_counter() - s) * 1000)
        if i % 50 == 49:
            post(f"/terminal/{t['id']}/input", {"data": "\x15"})
            time.sleep(0.05)
    c.request("DELETE", f"/terminal/{t['id']}", headers=h)
    c.getresponse().read()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rate", type=float, default=50,
                    help="keystrokes per second (at most half the "
                         "terminal's input limit, for margin: it counts "
                         "in fixed one-second windows, and the ^U every "
                         "50 keystrokes is an input too)")
    a = ap.parse_args()
    if not 0 < a.rate <= INPUTS_PER_S / 2:
        ap.error(f"--rate must be in (0, {INPUTS_PER_S // 2}]: a terminal "
                 f"takes at most {INPUTS_PER_S} inputs a second")
    env = dict(os.environ, SP_APIKEY_RATE="999999", SP_APIKEY_BURST="999999",
               SP_STATE_DIR=STATE, SP_LISTEN=LISTEN,
               SP_DEFAULT_TEMPLATE="host", SP_BUILTIN_TEMPLATES="")
    env.pop("REDIS_URL", None)
    subprocess.run([os.path.join(ROOT, "sandpipe"), "up"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    try:
        key = open(os.path.join(STATE, "api_key")).read().strip()
        base = bare_pty(a.n, a.rate)
        sp = sandpipe(a.n, key, a.rate)
        print(f"\n{'keystroke echo (ms)':40} {'p50':>8} {'p99':>8}")
        print(f"{'bare PTY (bash, baseline)':40} {pct(base, 50):8.3f} {pct(base, 99):8.3f}")
        print(f"{'sandpipe input -> SSE output':40} {pct(sp, 50):8.3f} {pct(sp, 99):8.3f}")
        print(f"difference at p50: {pct(sp, 50) - pct(base, 50):.3f} ms "
              f"({a.n} keystrokes at {a.rate:g}/s)")
    finally:
        subprocess.run([os.path.join(ROOT, "sandpipe"), "down"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
