"""sbx_util.py: what the sandbox tests share (test_sandboxes*.py): requests
with an API key, sandboxes that are deleted when the test ends, commands
(sync and background, with output polling), the files API, multipart
bodies, the configured limits, and direct looks at Redis and the host.
Traffic goes to 127.0.0.1 only; every wait is bounded."""
import json
import os
import subprocess
import time
import urllib.parse
import uuid

import sp

# Configured values the stack under test was started with (sp_config.h
# defaults unless the environment says otherwise).


def cfg(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return int(default)


MAX_PER_SUBJECT = cfg("SP_SANDBOX_MAX_PER_SUBJECT", 10)
DEF_TIMEOUT = cfg("SP_SANDBOX_TIMEOUT", 300)
MAX_TIMEOUT = cfg("SP_SANDBOX_MAX_TIMEOUT", 86400)
DEF_MEMORY = cfg("SP_SANDBOX_MEMORY_MB", 512)
MAX_MEMORY = cfg("SP_SANDBOX_MAX_MEMORY_MB", 4096)
DEF_PIDS = cfg("SP_SANDBOX_PIDS", 256)
MAX_PIDS = cfg("SP_SANDBOX_MAX_PIDS", 1024)
DEF_CPUS_MILLI = cfg("SP_SANDBOX_CPUS", 1000)
MAX_CPUS_MILLI = cfg("SP_SANDBOX_MAX_CPUS", 2000)
DEF_DISK = cfg("SP_SANDBOX_DISK_MB", 512)
MAX_DISK = cfg("SP_SANDBOX_MAX_DISK_MB", 4096)
OUTPUT_MAX = cfg("SP_OUTPUT_MAX", 1048576)
PREFIX = os.environ.get("SP_PREFIX", "sp:")

SLACK = 30  # client timeout beyond a command's own timeout


def headers(key=None, extra=None):
    h = {"X-API-Key": key or sp.API_KEY}
    h.update(extra or {})
    return h


def call(method, path, body=None, key=None, timeout=30, extra=None):
    """One request with an API key; a 429 is returned, never retried."""
    return sp.request(method, path, body=body, headers=headers(key, extra),
                      timeout=timeout, patient=False)


def q(value):
    return urllib.parse.quote(value, safe="")


def files_url(sid, path=None, **more):
    url = f"/sandboxes/{sid}/files"
    params = []
    if path is not None:
        params.append("path=" + q(path))
    params += [f"{k}={q(str(v))}" for k, v in more.items()]
    return url + ("?" + "&".join(params) if params else "")


def multipart(parts):
    """parts: list of (field, filename or None, bytes). Returns (body,
    content type)."""
    boundary = "sbxtest" + uuid.uuid4().hex
    out = []
    for field, filename, data in parts:
        disp = f'form-data; name="{field}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out.append(f"--{boundary}\r\nContent-Disposition: {disp}\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n".encode())
        out.append(data)
        out.append(b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def redis(*args):
    """Run redis-cli against the stack's Redis; returns stdout lines."""
    url = sp.REDIS_URL or "unix://" + os.path.join(sp.STATE, "run",
                                                   "redis.sock")
    base = (["redis-cli", "-s", url[len("unix://"):]]
            if url.startswith("unix://") else ["redis-cli", "-u", url])
    p = subprocess.run(base + list(args), capture_output=True, text=True,
                       timeout=10)
    return p.stdout.splitlines()


def redis_hash(key):
    lines = redis("HGETALL", PREFIX + key)
    return dict(zip(lines[0::2], lines[1::2]))


def pgrep(pattern):
    """Host pids whose command line matches pattern."""
    p = subprocess.run(["pgrep", "-f", pattern], capture_output=True,
                       text=True, timeout=10)
    return [int(x) for x in p.stdout.split()]


def unique_marker():
    """A number unlikely to appear in any other command line: used as the
    argument of a `sleep` that is then found on the host with pgrep."""
    return 3000000 + int(uuid.uuid4().hex[:6], 16) % 900000


class SbxCase(sp.Case):
    """A test case with sandbox helpers. Sandboxes made with new_sandbox()
    (or the class sandbox of setUpClass) are deleted at the end."""

    # ---- sandboxes -------------------------------------------------------

    @staticmethod
    def create_raw(body=None, key=None):
        return call("POST", "/sandboxes", {} if body is None else body,
                    key=key, timeout=60)

    @staticmethod
    def delete_quietly(sid, key=None):
        try:
            call("DELETE", f"/sandboxes/{sid}", key=key, timeout=60)
        except OSError:
            pass

    def new_sandbox(self, body=None, key=None):
        """Create a sandbox (201 asserted), deleted when the test ends."""
        r = self.create_raw(body, key)
        self.assertEqual(r.status, 201, r)
        doc = r.json
        self.addCleanup(self.delete_quietly, doc["id"], key)
        return doc

    @classmethod
    def class_sandbox(cls, body=None, key=None):
        """A sandbox for the whole class (setUpClass); deleted afterwards."""
        r = cls.create_raw(body, key)
        if r.status != 201:
            raise AssertionError(f"could not create a sandbox: {r!r}")
        sid = r.json["id"]
        cls.addClassCleanup(cls.delete_quietly, sid, key)
        return sid

    # ---- commands --------------------------------------------------------

    @staticmethod
    def run_raw(sid, cmd=None, key=None, **body):
        """POST …/commands; cmd (str) is sent as "cmd", a list as "argv"."""
        if isinstance(cmd, str):
            body["cmd"] = cmd
        elif cmd is not None:
            body["argv"] = list(cmd)
        wait = body.get("timeout") if isinstance(body.get("timeout"),
                                                 int) else 60
        return call("POST", f"/sandboxes/{sid}/commands", body, key=key,
                    timeout=wait + SLACK)

    def sh(self, sid, cmd, key=None, **body):
        """Run a command synchronously (200 asserted); returns the result."""
        r = self.run_raw(sid, cmd, key=key, **body)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith(
            "application/json"), r)
        return r.json

    def ok(self, sid, cmd, key=None, **body):
        """Run a command that must succeed; returns its stdout."""
        res = self.sh(sid, cmd, key=key, **body)
        self.assertEqual((res["status"], res["exitCode"]), ("ok", 0), res)
        return res["stdout"]

    def background(self, sid, cmd, key=None, **body):
        """Start a background command (202 asserted); returns its id."""
        body["background"] = True
        r = self.run_raw(sid, cmd, key=key, **body)
        self.assertEqual(r.status, 202, r)
        exe = r.json["execution_id"]
        self.assertTrue(exe.startswith("exe_"), r)
        return exe

    @staticmethod
    def output_page(sid, exe, after=None, key=None):
        url = f"/sandboxes/{sid}/commands/{exe}/output"
        if after:
            url += "?after=" + q(after)
        return call("GET", url, key=key)

    def collect(self, sid, exe, until, timeout=20, key=None):
        """Poll the output of an execution until until(state) is true, where
        state is a dict with stdout, stderr (str), events (list) and result
        (the parsed data of the result event, or None). Bounded by
        timeout seconds; returns the state (the caller asserts)."""
        state = {"stdout": "", "stderr": "", "events": [], "result": None}
        after = None
        deadline = time.monotonic() + timeout
        while True:
            r = self.output_page(sid, exe, after, key)
            self.assertEqual(r.status, 200, r)
            doc = r.json
            for ev in doc["events"]:
                state["events"].append(ev)
                if ev["type"] in ("stdout", "stderr"):
                    state[ev["type"]] += ev["data"]
                elif ev["type"] == "result":
                    state["result"] = (json.loads(ev["data"])
                                       if isinstance(ev["data"], str)
                                       else ev["data"])
            if doc["events"]:
                after = doc["next"]
            if until(state) or time.monotonic() > deadline:
                return state
            time.sleep(0.1)

    def wait_result(self, sid, exe, timeout=20, key=None):
        st = self.collect(sid, exe, lambda s: s["result"] is not None,
                          timeout, key)
        self.assertIsNotNone(st["result"],
                             f"no result event within {timeout} s: {st}")
        return st

    def stdin(self, sid, exe, data=None, eof=False, key=None):
        body = {"eof": eof}
        if data is not None:
            body["data"] = data
        return call("POST", f"/sandboxes/{sid}/commands/{exe}/stdin", body,
                    key=key)

    # ---- files -----------------------------------------------------------

    @staticmethod
    def put(sid, path, data, key=None, timeout=30):
        return call("PUT", files_url(sid, path), data, key=key,
                    timeout=timeout,
                    extra={"Content-Type": "application/octet-stream"})

    @staticmethod
    def fget(sid, path, key=None, timeout=30):
        return call("GET", files_url(sid, path), key=key, timeout=timeout)

    @staticmethod
    def fdelete(sid, path, key=None, recursive=False, timeout=30):
        more = {"recursive": "true"} if recursive else {}
        return call("DELETE", files_url(sid, path, **more), key=key,
                    timeout=timeout)

    def put_ok(self, sid, path, data, key=None):
        r = self.put(sid, path, data, key)
        self.assertEqual(r.status, 201, r)
        return r.json

    def get_ok(self, sid, path, key=None):
        r = self.fget(sid, path, key)
        self.assertEqual(r.status, 200, r)
        return r

    def upload(self, url, parts, key=None):
        body, ctype = multipart(parts)
        return call("POST", url, body, key=key, timeout=60,
                    extra={"Content-Type": ctype})
