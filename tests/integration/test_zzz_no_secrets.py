"""test_zzz_no_secrets.py: no credential in any log, under any failure
(runs last: "zzz", after every fault test). It first presents an access
token, a refresh token and the API key in the ways that used to reach a
log — ?access_token= on the SSE routes and on others while their program
is down (nginx prints the request line, query included, into its error
messages), credentials to a handler that is down, a header line too long,
a malformed request line — and then reads every file under the state's
log/ directory (nginx's access and error logs, every program's log, the
supervisor's) and the launcher's state/test-up.log: none may hold the API
key, those tokens, or anything shaped like an API key or a JWT."""
import os
import re
import signal
import time

import sp

ROOT = os.environ.get("SP_ROOT") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")
API_KEY_SHAPE = re.compile(rb"spk_[A-Za-z0-9_-]{43}")


def log_files():
    out = []
    for d, _, files in os.walk(os.path.join(sp.STATE, "log")):
        out += [os.path.join(d, f) for f in files]
    up = os.path.join(ROOT, "state", "test-up.log")
    if os.path.exists(up):
        out.append(up)
    return out


def quiet(fn):
    """fn(), answering None for a connection nginx closed on us."""
    try:
        return fn()
    except OSError:
        return None


class NoSecretsInLogsTest(sp.Case):
    def down(self, name):
        """Kill name and keep it down until the test's cleanup."""
        pid = sp.read_pid(name)
        sp.hold(name)
        self.addCleanup(lambda: sp.restarted(name, pid, 5))
        self.addCleanup(sp.release, name)
        os.kill(pid, signal.SIGKILL)
        self.assertTrue(sp.wait_until(lambda: not sp.pid_alive(pid), 5, 0.05))

    def provoke(self, pair):
        at, rt = pair["access_token"], pair["refresh_token"]
        key = {"X-API-Key": sp.API_KEY}
        q = "access_token=" + at
        self.down("sp-sse")
        self.down("sp-auth")
        self.down("sp-sandboxes")
        for path in (f"/executions/exe_nothere/events?{q}",
                     f"/terminal/trm_nothere/events?{q}",
                     f"/events?clientId=c1&{q}",
                     f"/sandboxes?{q}", f"/api/auth/verify?{q}"):
            quiet(lambda: sp.get(path, timeout=5))
        quiet(lambda: sp.get("/api/auth/verify", headers=key, timeout=5))
        quiet(lambda: sp.get("/sandboxes", headers=sp.bearer(at), timeout=5))
        quiet(lambda: sp.post("/api/auth/refresh", {"refresh_token": rt},
                              timeout=5, patient=False))
        quiet(lambda: sp.post("/api/auth/token", {"api_key": sp.API_KEY},
                              timeout=5, patient=False))
        # nginx's own refusals name what they refused.
        quiet(lambda: sp.raw(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-API-Key: " +
                             sp.API_KEY.encode() + b"x" * 40000 + b"\r\n\r\n"))
        quiet(lambda: sp.raw(b"GET /x?access_token=" + at.encode() +
                             b" HTTP/1.1 junk\r\n\r\n"))
        quiet(lambda: sp.raw(b"GET /" + at.encode() + b"/" + b"a" * 20000 +
                             b" HTTP/1.1\r\nHost: x\r\n\r\n"))

    def test_no_credential_in_any_log(self):
        pair = sp.token_pair()
        self.provoke(pair)
        self.doCleanups()
        self.assertEqual(sp.get("/api/auth/verify",
                                headers={"X-API-Key": sp.API_KEY}).status, 200)
        time.sleep(1.5)  # nginx flushes its access log every second
        secrets = {"the API key": sp.API_KEY.encode(),
                   "an access token": pair["access_token"].encode(),
                   "a refresh token": pair["refresh_token"].encode()}
        files = log_files()
        self.assertTrue(any(f.endswith("nginx-error.log") for f in files),
                        files)
        found = []
        for path in files:
            with open(path, "rb") as f:
                text = f.read()
            for what, s in secrets.items():
                if s in text:
                    found.append(f"{what} in {path}")
            for shape, rx in (("a JWT", JWT), ("an API key", API_KEY_SHAPE)):
                m = rx.search(text)
                if m:
                    found.append(f"{shape} in {path}: …{m.group()[:16]!r}…")
        self.assertEqual(found, [])


if __name__ == "__main__":
    import unittest
    unittest.main()
