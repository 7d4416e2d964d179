"""sp.py: what the integration tests share: the address of the stack under
test (SP_LISTEN), JSON requests through nginx, token pairs, extra API keys
made with sp-admin, hand-signed JWTs, and the error envelope assertion.
Traffic goes to 127.0.0.1 only."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import unittest
import uuid

LISTEN = os.environ.get("SP_LISTEN", "127.0.0.1:18080")
HOST, PORT = LISTEN.rsplit(":", 1)
PORT = int(PORT)
API_KEY = os.environ.get("SP_API_KEY", "")
BUILD = os.environ.get("SP_BUILD_DIR", "state/build")
REDIS_URL = os.environ.get("SP_REDIS_URL", "")
STATE = os.environ.get("SP_STATE_DIR", "state/test")
SECRET = os.environ.get("JWT_SECRET", "")
ORIGIN = "http://frontend.test"


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage (case-insensitive)
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def request(method, path, body=None, headers=None, timeout=10, patient=True):
    """One request on a fresh connection. A dict or list body is sent as
    JSON with the JSON Content-Type; bytes and str are sent as they are.
    When patient, a 429 of the rate-limited credential routes is retried
    for up to 5 s (only the rate-limit tests want to see it)."""
    deadline = time.monotonic() + 5
    while True:
        r = _request_once(method, path, body, headers, timeout)
        if r.status != 429 or not patient or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def _request_once(method, path, body, headers, timeout):
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def get(path, **kw):
    return request("GET", path, **kw)


def post(path, body=None, **kw):
    return request("POST", path, body=body, **kw)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def raw(data, timeout=5):
    """Send raw bytes to nginx and return everything it answers until it
    closes the connection (or the timeout)."""
    with socket.create_connection((HOST, PORT), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                c = s.recv(65536)
                if not c:
                    break
                chunks.append(c)
        except socket.timeout:
            pass
    return b"".join(chunks)


def raw_status(answer):
    """HTTP status of a raw answer, 0 if there is none."""
    try:
        return int(answer.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def token_pair(key=None):
    """POST /api/auth/token; returns the JSON pair."""
    r = post("/api/auth/token", {"api_key": key or API_KEY})
    if r.status != 200:
        raise AssertionError(f"token request failed: {r!r}")
    return r.json


def admin(*args):
    env = dict(os.environ, REDIS_URL=REDIS_URL)
    return subprocess.run([os.path.join(BUILD, "sp-admin"), *args], env=env,
                          capture_output=True, text=True, timeout=30)


def create_key(name=None):
    """A new API key; returns (kid, key, name)."""
    name = name or "t_" + uuid.uuid4().hex[:12]
    p = admin("key", "create", name)
    if p.returncode != 0:
        raise AssertionError(f"sp-admin key create failed: {p.stderr}")
    kid, key = p.stdout.split()
    return kid, key, name


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
           "HS512": hashlib.sha512, "RS256": hashlib.sha256}


def make_jwt(claims, secret=None, alg="HS256", header=None, sign=True):
    """A JWT built by hand: header and claims as given, HMAC of alg's hash
    with secret (default JWT_SECRET), or an empty signature."""
    header = header if header is not None else {"alg": alg, "typ": "JWT"}
    head = b64url(json.dumps(header, separators=(",", ":")))
    body = b64url(json.dumps(claims, separators=(",", ":")))
    sig = ""
    if sign:
        key = (secret if secret is not None else SECRET).encode()
        mac = hmac.new(key, f"{head}.{body}".encode(), _HASHES.get(alg, hashlib.sha256))
        sig = b64url(mac.digest())
    return f"{head}.{body}.{sig}"


def claims(**over):
    """Claims of a valid access token for subject "forger"."""
    now = int(time.time())
    c = {"sub": "forger", "kid": "key_forged", "jti": "at_" + uuid.uuid4().hex,
         "token_use": "access", "iat": now, "exp": now + 300}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def wait_until(fn, timeout, step=0.1):
    """Call fn until it returns a true value or timeout seconds pass;
    returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def read_pid(name):
    with open(os.path.join(STATE, "run", name + ".pid")) as f:
        return int(f.read().strip())


def pid_alive(pid):
    """True while pid runs; a zombie (dead, not yet reaped: a helper the
    tests started themselves) counts as dead, and is reaped if it is
    ours."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True


class Case(unittest.TestCase):
    maxDiff = None

    def assertError(self, r, status, code=None, field=None):
        """r has the given status and the JSON error envelope
        {"error":{"code","message"[,"field"]}} with code (and field); a
        handler's envelope also carries E2B's top-level "code" (the HTTP
        status) and "message" (nginx's and the relay's do not)."""
        self.assertEqual(r.status, status, r)
        ctype = r.headers.get("Content-Type", "")
        self.assertTrue(ctype.startswith("application/json"), ctype)
        try:
            doc = r.json
        except ValueError:
            self.fail(f"error body is not JSON: {r!r}")
        self.assertIsInstance(doc, dict, r)
        self.assertLessEqual(set(doc), {"error", "code", "message"}, r)
        if "code" in doc or "message" in doc:
            self.assertEqual(doc.get("code"), status, r)
            self.assertIsInstance(doc.get("message"), str, r)
        err = doc["error"]
        self.assertIsInstance(err, dict, r)
        self.assertLessEqual(set(err), {"code", "message", "field", "rule"}, r)
        self.assertIsInstance(err.get("code"), str, r)
        self.assertIsInstance(err.get("message"), str, r)
        if code is not None:
            if isinstance(code, (tuple, set, list)):
                self.assertIn(err["code"], code, r)
            else:
                self.assertEqual(err["code"], code, r)
        if field is not None:
            self.assertEqual(err.get("field"), field, r)
        return err

    def assertVerifies(self, headers, sub=None):
        r = get("/api/auth/verify", headers=headers)
        self.assertEqual(r.status, 200, r)
        doc = r.json
        self.assertIs(doc["valid"], True)
        if sub is not None:
            self.assertEqual(doc["sub"], sub)
        return doc

    def assertUnauthenticated(self, headers):
        r = get("/api/auth/verify", headers=headers)
        self.assertError(r, 401, "unauthenticated")
        return r


# The supervisor (cli/sp_supervise.c): its status file, hold files, and
# waiting for a program it starts again.

def supervision():
    """The supervisor's status file as {name: {state, pid, restarts,
    last_exit}}; {} when there is none."""
    out = {}
    try:
        with open(os.path.join(STATE, "run", "supervise.status")) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 6:
                    out[parts[0]] = {"state": parts[1], "pid": int(parts[2]),
                                     "restarts": int(parts[3]),
                                     "last_exit": parts[5]}
    except OSError:
        pass
    return out


def hold(name):
    """Keep the supervisor from starting name again when it ends."""
    with open(os.path.join(STATE, "supervise", "hold", name), "w"):
        pass


def release(name):
    """Undo hold(name): the supervisor starts it again within 100 ms."""
    try:
        os.unlink(os.path.join(STATE, "supervise", "hold", name))
    except FileNotFoundError:
        pass


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def restarted(name, old_pid, timeout=5):
    """The new pid of name once the supervisor has started it again (its
    pid file names a live process of that program other than old_pid),
    or None after timeout seconds."""
    exe = {"redis": "redis-server"}.get(name, name)[:15]

    def new():
        try:
            pid = read_pid(name)
        except (OSError, ValueError):
            return None
        return pid if (pid != old_pid and pid_alive(pid) and
                       comm(pid) == exe) else None
    return wait_until(new, timeout, 0.05)


# ---- tests that drive a browser (tests/browser/*.mjs) ---------------------

CHROMIUM = "/usr/bin/chromium"
ROOT = os.environ.get("SP_ROOT") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))

# Skips a browser test class where Debian's chromium is not installed.
needs_chromium = unittest.skipUnless(
    os.access(CHROMIUM, os.X_OK),
    f"{CHROMIUM} is not installed (Debian package chromium; "
    "./sandpipe test installs it)")


def run_browser_script(case, name, env, timeout):
    """Run tests/browser/<name> (node's test runner, headless Chromium
    through playwright-core) with env; fails case if node or
    playwright-core is missing. Returns the finished process (raises
    subprocess.TimeoutExpired), after printing its TAP verdicts (all of
    its output when it failed), indented as the calling test's."""
    node = shutil.which("node")
    case.assertIsNotNone(node, "node is not installed")
    case.assertTrue(
        os.path.isdir(os.path.join(ROOT, "web", "node_modules",
                                   "playwright-core")),
        "web/node_modules is missing: ./sandpipe up runs npm ci in web/")
    proc = subprocess.run([node, os.path.join(ROOT, "tests", "browser", name)],
                          env=env, cwd=ROOT, capture_output=True, text=True,
                          errors="replace", timeout=timeout)
    lines = (proc.stdout + proc.stderr).splitlines()
    if proc.returncode == 0:
        lines = [ln for ln in lines if ln.startswith(("ok ", "not ok "))]
    print("\n" + "\n".join("    " + ln for ln in lines))
    return proc
