"""storage_util.py: what the storage tests and bench share: the S3 test
server (s3rver from tests/s3, installed by ./sandpipe test) started on
loopback and stopped by pid, and an sp-storage of the stack's own
environment started on the stack's socket with the s3 backend while the
supervised one is held (the same nginx, Redis and credentials;
start_instead, which test_chat.py uses for its sp-chat too)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import sp

ROOT = os.environ.get("SP_ROOT") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
S3RVER = os.path.join(ROOT, "tests", "s3", "node_modules", ".bin", "s3rver")
# s3rver's built-in account; the real bucket sandpipe's buckets live in.
S3_ACCESS, S3_SECRET, S3_BUCKET = "S3RVER", "S3RVER", "sp-test"


def wait_port(port, timeout=15):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    return sp.wait_until(up, timeout)


class S3Server:
    """s3rver on 127.0.0.1:port with its data in a temporary directory."""

    def __init__(self, port):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="sp-s3rver-")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [S3RVER, "-d", self.dir, "-a", "127.0.0.1", "-p", str(self.port),
             "-s", "--no-vhost-buckets", "--configure-bucket", S3_BUCKET],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        if not wait_port(self.port):
            self.stop()
            raise AssertionError("s3rver did not start")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def program_env(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e]
    return {k.decode(): v.decode() for k, v in pairs}


def owner_of(pid):
    st = os.stat(f"/proc/{pid}")
    return st.st_uid, st.st_gid


def s3_settings(s3port, part_mb=5):
    """The environment of a program on the s3 backend against s3rver on
    s3port (sp-storage, sp-sandboxes, sp-worker)."""
    return dict(SP_STORAGE_URL=f"s3://{S3_BUCKET}/sandpipe",
                SP_S3_ENDPOINT=f"http://127.0.0.1:{s3port}",
                SP_S3_ACCESS_KEY=S3_ACCESS, SP_S3_SECRET_KEY=S3_SECRET,
                SP_S3_PART_MB=str(part_mb), SP_S3_TIMEOUT_S="5")


def start_program(name, env, owner, out=subprocess.DEVNULL):
    """Program name of the build with environment env, as owner (uid,
    gid) when we are root; returns the Popen."""
    uid, gid = owner

    def drop():
        os.setgid(gid)
        os.setuid(uid)
    return subprocess.Popen(
        [os.path.join(sp.BUILD, name)], env=env,
        preexec_fn=drop if os.getuid() == 0 else None, stdout=out, stderr=out)


def replace_program(name, extra_env, out=subprocess.DEVNULL):
    """Hold the supervised program name, kill it, and start it again
    ourselves with its own environment plus extra_env, as its own user;
    returns (the Popen, that environment, its owner). Kill it and
    release(name) to give the program back to the supervisor."""
    old = sp.read_pid(name)
    env = program_env(old)
    owner = owner_of(old)
    env.update(extra_env)
    sp.hold(name)
    os.kill(old, signal.SIGKILL)
    sp.wait_until(lambda: not sp.pid_alive(old), 5)
    return start_program(name, env, owner, out), env, owner


def start_instead(name, overrides, ready, out=subprocess.DEVNULL):
    """replace_program, waited for: the process once its socket is there
    and ready() is true; raises AssertionError (after stop_instead) when
    that is not within 10 s."""
    proc, env, _ = replace_program(name, overrides, out)
    sock = env["SP_SOCKET"]
    if not sp.wait_until(lambda: os.path.exists(sock) and ready(), 10):
        stop_instead(name, proc, ready)
        raise AssertionError(f"{name} (in place of the supervised one) did "
                             "not start")
    return proc


def stop_instead(name, proc, ready):
    """End what start_instead started; the supervised name is back once
    ready() is true (10 s at most)."""
    if proc is not None:
        proc.kill()
        proc.wait()
    sp.release(name)
    sp.wait_until(ready, 10)


class S3Storage:
    """A program with the s3 backend (sp-storage, or sp-sandboxes for
    snapshots and workspaces) in place of the supervised one; probe is a
    GET path that answers 200 once it serves."""

    def __init__(self, s3port, part_mb=5, program="sp-storage",
                 probe="/buckets"):
        self.s3 = S3Server(s3port)
        self.part_mb = part_mb
        self.program, self.probe = program, probe
        self.proc = None

    def up(self):
        return sp.get(self.probe, headers={
            "X-API-Key": sp.API_KEY}).status == 200

    def start(self):
        self.s3.start()
        try:
            self.proc = start_instead(
                self.program, s3_settings(self.s3.port, self.part_mb),
                self.up)
        except AssertionError:
            self.s3.remove()
            raise

    def stop(self):
        stop_instead(self.program, self.proc, self.up)
        self.proc = None
        self.s3.remove()
