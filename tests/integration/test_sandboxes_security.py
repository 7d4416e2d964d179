"""test_sandboxes_security.py: code in a sandbox, and requests to the files
API, try to get out. Each attempt must fail inside the sandbox and leave the
host and other sandboxes untouched: host files (canaries in /root and in
the state directory), links, FIFOs and devices made inside, host processes,
network and host loopback, fork and memory bombs, disk fill, leaked
environment and fds, privileges and namespaces, orphans, one sandbox
touching another, and what a deleted sandbox leaves behind."""
import glob
import json
import os
import platform
import posixpath
import shutil
import subprocess
import threading
import time
import uuid

import sp
import sbx_util as su
from sbx_util import call

CLIENT_TIMEOUT = 10  # an answer slower than this is a hang


def state_dir():
    return os.path.abspath(sp.STATE)


def in_sandbox_roots(path):
    """Whether path, normalised as the helper does, names something in
    the sandbox's own /workspace, /uploaded_files or /tmp."""
    if not path.startswith("/"):
        path = "/workspace/" + path
    norm = posixpath.normpath("/" + path.lstrip("/"))
    return any(norm == r or norm.startswith(r + "/")
               for r in ("/workspace", "/uploaded_files", "/tmp"))


def jwt_secret():
    if sp.SECRET:
        return sp.SECRET
    try:
        with open(os.path.join(state_dir(), "jwt_secret")) as f:
            return f.read().strip()
    except OSError:
        return ""




def without_targets(doc):
    """doc with every symlink's "target" left out (tree listings)."""
    if isinstance(doc, dict):
        return {k: without_targets(v) for k, v in doc.items()
                if not (k == "target" and doc.get("type") == "symlink")}
    if isinstance(doc, list):
        return [without_targets(v) for v in doc]
    return doc

class CanaryTest(su.SbxCase):
    """Host canary files: never readable, writable or deletable from a
    sandbox, whatever the path or the links made inside."""

    @classmethod
    def setUpClass(cls):
        tag = uuid.uuid4().hex[:12]
        cls.secret = "canary-content-" + uuid.uuid4().hex
        cls.root_canary = f"/root/sp-canary-{tag}"
        cls.state_canary = os.path.join(state_dir(), f"sp-canary-{tag}")
        cls.pwned = [f"/root/sp-pwned-{tag}", f"/root/sp-newfile-{tag}",
                     f"/root/evil-{tag}", f"/root/evil-{tag}.txt",
                     os.path.join(state_dir(), f"sp-pwned-{tag}")]
        for path in (cls.root_canary, cls.state_canary):
            with open(path, "w") as f:
                f.write(cls.secret)
            os.chmod(path, 0o644)  # readable by anyone on the host
            cls.addClassCleanup(os.unlink, path)
        cls.tag = tag

    def setUp(self):
        # A fresh sandbox per test: files one test makes (some named like
        # the canaries, inside the sandbox) never confuse another.
        self.sid = self.new_sandbox()["id"]

    def tearDown(self):
        for path in (self.root_canary, self.state_canary):
            with open(path) as f:
                self.assertEqual(f.read(), self.secret, f"{path} was changed")
        for path in self.pwned:
            self.assertFalse(os.path.lexists(path), f"{path} was created")

    def refused(self, r, statuses=(400, 404), path=None):
        """r did not reveal the canary and was refused; for a path that
        lies (lexically) inside one of the sandbox's own roots, as the
        state directory may, only the first holds."""
        self.assertNotIn(self.secret.encode(), r.body, r)
        if path is not None and in_sandbox_roots(path):
            return
        self.assertIn(r.status, statuses, r)
        self.assertError(r, r.status)

    def test_commands_cannot_read_canaries(self):
        for path in (self.root_canary, self.state_canary):
            with self.subTest(path=path):
                res = self.sh(self.sid, ["cat", path])
                self.assertNotEqual(res["exitCode"], 0, res)
                self.assertNotIn(self.secret, res["stdout"] + res["stderr"])
        res = self.sh(self.sid, "ls -la /root; ls -la " + state_dir() +
                      "; ls /; ls /etc")
        self.assertNotIn("sp-canary", res["stdout"])
        self.assertNotIn("jwt_secret", res["stdout"])
        res = self.sh(self.sid, "grep -rlsD skip -e " + self.secret +
                      " / --exclude-dir=proc --exclude-dir=usr"
                      " --exclude-dir=sys 2>/dev/null; true", timeout=60)
        self.assertEqual(res["stdout"], "")
        res = self.sh(self.sid, "find / -xdev -name 'sp-canary*' 2>/dev/null;"
                                " find /proc/1/root/ -maxdepth 3 -name "
                                "'sp-canary*' 2>/dev/null; true")
        self.assertEqual(res["stdout"], "")

    def test_files_api_paths_cannot_reach_canaries(self):
        st = state_dir()
        rel_state = st.lstrip("/")
        name = os.path.basename(self.root_canary)
        sname = os.path.basename(self.state_canary)
        paths = [
            self.root_canary, self.state_canary,
            "/workspace/../root/" + name,
            "/workspace/../../../../root/" + name,
            "../root/" + name, "../../../../../root/" + name,
            "/tmp/../root/" + name,
            "/workspace/" + "../" * 12 + rel_state + "/" + sname,
            "../" * 12 + rel_state + "/" + sname,
            "/uploaded_files/../../root/" + name,
            "/proc/1/root/root/" + name,
            "/proc/self/root" + self.root_canary,
        ]
        for path in paths:
            with self.subTest(path=path):
                self.refused(self.fget(self.sid, path), path=path)
                self.refused(self.put(self.sid, path, b"overwritten"),
                             (400, 404, 409), path)
                self.refused(self.fdelete(self.sid, path), (400, 404, 409),
                             path)
                r = call("GET", f"/sandboxes/{self.sid}/tree?path={su.q(path)}")
                self.refused(r, path=path)
                r = call("POST", f"/sandboxes/{self.sid}/dirs",
                         {"path": path + "-dir"})
                self.assertIn(r.status, (201, 400, 404, 409), r)
        # Percent-encoded dots in the query are decoded before the path is
        # normalised.
        for raw in (f"/workspace/%2e%2e/root/{name}",
                    f"/workspace/%2E%2E/%2E%2E/root/{name}",
                    f"%2e%2e/%2e%2e/root/{name}",
                    f"/workspace%2f..%2froot%2f{name}"):
            with self.subTest(raw=raw):
                r = call("GET", f"/sandboxes/{self.sid}/files?path={raw}")
                self.refused(r)
        # The dirs that may have been made above stay inside the sandbox.
        self.assertFalse(os.path.exists(self.root_canary + "-dir"))
        self.assertFalse(os.path.exists(self.state_canary + "-dir"))

    def test_symlinks_made_inside(self):
        st = state_dir()
        links = {
            "l_root": "/root", "l_proc": "/proc/1/root", "l_self":
            "/proc/self/root", "l_up": "../../../..", "l_file":
            self.root_canary, "l_sfile": self.state_canary, "l_state": st,
            "l_new": self.pwned[1], "l_etc": "/etc", "l_slash": "/",
            "l_usr": "/usr/bin", "l_ws": "/workspace/l_root",
        }
        d = "/workspace/links_" + self.tag
        cmd = f"mkdir -p {d} /tmp/links && cd {d} && " + " && ".join(
            f"ln -s '{t}' {n}" for n, t in links.items())
        cmd += f" && ln -s /root /tmp/links/l_root && ln -s ../../../.. " \
               f"/tmp/links/l_up"
        self.ok(self.sid, cmd)
        name = os.path.basename(self.root_canary)
        sname = os.path.basename(self.state_canary)
        rel_state = st.lstrip("/")
        reads = [
            f"{d}/l_root/{name}", f"{d}/l_proc/root/{name}",
            f"{d}/l_self/root/{name}", f"{d}/l_up/root/{name}",
            f"{d}/l_up/{rel_state}/{sname}", f"{d}/l_file", f"{d}/l_sfile",
            f"{d}/l_state/{sname}", f"{d}/l_etc/passwd", f"{d}/l_etc/shadow",
            f"{d}/l_ws/{name}", f"{d}/l_usr/env", f"{d}/l_proc",
            f"{d}/l_root", "/tmp/links/l_root/" + name,
            f"/tmp/links/l_up/root/{name}",
        ]
        for path in reads:
            with self.subTest(read=path):
                r = self.fget(self.sid, path, timeout=CLIENT_TIMEOUT)
                self.refused(r)
        # Listings through links show the sandbox's own roots at most.
        ws_names = {e["name"] for e in self.get_ok(self.sid, "/workspace")
                    .json["entries"]}
        for path in (f"{d}/l_up", f"{d}/l_slash", "/tmp/links/l_up"):
            with self.subTest(listing=path):
                r = self.fget(self.sid, path, timeout=CLIENT_TIMEOUT)
                self.assertIn(r.status, (200, 400, 404), r)
                if r.status == 200:
                    names = {e["name"] for e in r.json["entries"]}
                    self.assertNotIn("root", names - ws_names)
                    self.assertFalse(names & {"etc", "proc", "usr", "run",
                                              "jwt_secret", "sandboxes"},
                                     names)
                r = call("GET", f"/sandboxes/{self.sid}/tree?path="
                                f"{su.q(path)}&depth=4")
                # A link's "target" is its own text, which the sandbox
                # wrote (the canaries' names among them): not host data.
                body = json.dumps(without_targets(r.json)).encode() \
                    if r.status == 200 else r.body
                self.assertNotIn(b"sp-canary", body)
                self.assertNotIn(b"jwt_secret", body)
        # Writes through links.
        for path in (f"{d}/l_file", f"{d}/l_sfile", f"{d}/l_new",
                     f"{d}/l_root/sp-pwned-{self.tag}",
                     f"{d}/l_state/sp-pwned-{self.tag}",
                     f"{d}/l_up/root/{name}",
                     f"{d}/l_up/{rel_state}/{sname}",
                     f"/tmp/links/l_root/sp-pwned-{self.tag}",
                     f"{d}/l_proc/root/sp-pwned-{self.tag}"):
            with self.subTest(write=path):
                r = self.put(self.sid, path, b"overwritten")
                self.assertIn(r.status, (201, 400, 404, 409), r)
        r = call("POST", f"/sandboxes/{self.sid}/dirs",
                 {"path": f"{d}/l_root/evil-{self.tag}"})
        self.assertIn(r.status, (201, 400, 404, 409), r)
        r = self.upload(su.files_url(self.sid, f"{d}/l_root"),
                        [("file", f"evil-{self.tag}.txt", b"x")])
        self.assertIn(r.status, (201, 400, 404, 409), r)
        # Deletes through links remove the link at most.
        for path in (f"{d}/l_file", f"{d}/l_up/root/{name}",
                     f"{d}/l_up/{rel_state}/{sname}", f"{d}/l_root/{name}"):
            with self.subTest(delete=path):
                r = self.fdelete(self.sid, path, recursive=True)
                self.assertIn(r.status, (204, 400, 404, 409), r)
        r = self.fdelete(self.sid, f"{d}/l_root", recursive=True)
        self.assertEqual(r.status, 204, r)
        r = self.fdelete(self.sid, f"{d}/l_state", recursive=True)
        self.assertEqual(r.status, 204, r)
        self.assertTrue(os.path.isdir("/root"))
        self.assertTrue(os.path.isdir(os.path.join(st, "run")))
        r = self.fdelete(self.sid, d, recursive=True)
        self.assertEqual(r.status, 204, r)

    def test_uploaded_files_replaced_by_a_link(self):
        # The host view, whose /uploaded_files is a link into the workspace
        # (a session's sandbox is of SP_SESSION_TEMPLATE unless it says).
        session = "chat_" + uuid.uuid4().hex
        r = call("POST", f"/api/sessions/{session}/initialize",
                 {"template": "host"}, timeout=60)
        self.assertEqual(r.status, 201, r)
        sid = r.json["sandbox_id"]
        self.addCleanup(self.delete_quietly, sid)
        self.ok(sid, "rm -rf /workspace/uploaded_files && "
                     "ln -s /root /workspace/uploaded_files")
        r = self.upload(f"/api/sandboxes/upload?session_id={session}",
                        [("file", f"evil-{self.tag}.txt", b"pwned")])
        self.assertIn(r.status, (400, 404, 409), r)
        r = self.fget(sid, "/uploaded_files/" +
                      os.path.basename(self.root_canary))
        self.refused(r)
        self.refused(self.put(sid, f"/uploaded_files/evil-{self.tag}.txt",
                              b"x"), (400, 404, 409))

    def test_hard_links(self):
        d = "/workspace/hl_" + self.tag
        res = self.sh(self.sid, f"mkdir -p {d} && cd {d} && "
                                "{ ln /etc/passwd passwd; echo $?; "
                                "ln /.sp/init init; echo $?; "
                                "ln /usr/bin/env env; echo $?; }")
        codes = res["stdout"].split()
        self.assertEqual(len(codes), 3, res)
        self.assertNotIn("0", codes, res)
        for n in ("passwd", "init", "env"):
            self.refused(self.fget(self.sid, f"{d}/{n}"))
        # A hard link between the sandbox's own files is fine.
        self.put_ok(self.sid, f"{d}/orig", b"mine")
        self.ok(self.sid, f"ln {d}/orig {d}/hard")
        self.assertEqual(self.get_ok(self.sid, f"{d}/hard").body, b"mine")
        self.assertEqual(self.fdelete(self.sid, d, recursive=True).status, 204)

    def test_fifos_sockets_and_devices_never_block(self):
        d = "/workspace/special_" + self.tag
        self.ok(self.sid, f"mkdir -p {d} && mkfifo {d}/fifo /tmp/fifo_{self.tag}"
                          f" && ln -s fifo {d}/l_fifo && ln -s /dev/zero "
                          f"{d}/l_zero && ln -s /dev/tty {d}/l_tty")
        self.ok(self.sid, ["python3", "-c",
                           "import socket; s = socket.socket(socket.AF_UNIX);"
                           f" s.bind('{d}/sock')"])
        for path in (f"{d}/fifo", f"/tmp/fifo_{self.tag}", f"{d}/l_fifo",
                     f"{d}/sock", f"{d}/l_zero", f"{d}/l_tty", "/dev/zero",
                     "/dev/null", "/dev/urandom"):
            with self.subTest(path=path):
                started = time.monotonic()
                r = self.fget(self.sid, path, timeout=CLIENT_TIMEOUT)
                self.assertIn(r.status, (400, 404, 409), r)
                self.assertError(r, r.status)
                r = self.put(self.sid, path, b"data", timeout=CLIENT_TIMEOUT)
                self.assertIn(r.status, (400, 404, 409), r)
                self.assertError(r, r.status)
                self.assertLess(time.monotonic() - started, 2 * CLIENT_TIMEOUT)
        # The FIFO is still a FIFO, the listing shows it, and it can go.
        self.assertEqual(self.ok(self.sid, ["stat", "-c", "%F", f"{d}/fifo"]),
                         "fifo\n")
        r = self.get_ok(self.sid, d)
        types = {e["name"]: e["type"] for e in r.json["entries"]}
        self.assertEqual(types["fifo"], "other")
        self.assertEqual(self.fdelete(self.sid, f"{d}/fifo").status, 204)
        # Device nodes cannot be made inside.
        res = self.sh(self.sid, f"mknod {d}/mem c 1 1")
        self.assertNotEqual(res["exitCode"], 0, res)
        self.assertEqual(self.fdelete(self.sid, d, recursive=True).status, 204)


class IsolationTest(su.SbxCase):
    @classmethod
    def setUpClass(cls):
        cls.sid = cls.class_sandbox({"env": {"GIVEN_VAR": "given"}})

    def test_no_host_processes(self):
        helper_pid = sp.read_pid("sp-helperd")
        out = self.ok(self.sid, ["ps", "ax", "-o", "pid=,args="])
        lines = [ln for ln in out.splitlines() if ln.strip()]
        self.assertLessEqual(len(lines), 5, out)
        for word in ("sp-helperd", "nginx", "redis", "sp-sandboxes", "bwrap",
                     "systemd"):
            self.assertNotIn(word, out)
        first = lines[0].split()
        self.assertEqual(first[0], "1", out)
        pids = self.ok(self.sid, "ls /proc | grep -E '^[0-9]+$'").split()
        self.assertLessEqual(len(pids), 5, pids)
        res = self.sh(self.sid, f"cat /proc/{helper_pid}/cmdline; "
                                "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
        self.assertNotIn("sp-helperd", res["stdout"])
        # Cannot signal the helper by its host pid.
        self.sh(self.sid, f"kill -9 {helper_pid}")
        self.assertTrue(sp.pid_alive(helper_pid))

    def test_no_network(self):
        out = self.ok(self.sid, ["cat", "/proc/net/dev"])
        ifaces = {ln.split(":")[0].strip() for ln in out.splitlines()[2:]}
        self.assertEqual(ifaces, {"lo"}, out)
        res = self.sh(self.sid, ["python3", "-c", self.connect_prog()],
                      timeout=30)
        self.assertEqual(res["exitCode"], 0, res)
        results = json.loads(res["stdout"])
        for target, outcome in results.items():
            self.assertNotEqual(outcome, "CONNECTED", target)

    @staticmethod
    def connect_prog():
        st = state_dir()
        targets = [("127.0.0.1", sp.PORT), ("10.0.2.2", sp.PORT),
                   ("10.0.2.2", 22), ("127.0.0.1", 22)]
        unix = [os.path.join(st, "run", n) for n in
                ("redis.sock", "sp-sandboxes.sock", "sp-auth.sock")]
        return (
            "import json, socket\n"
            "out = {}\n"
            f"for host, port in {targets!r}:\n"
            "    s = socket.socket(); s.settimeout(3)\n"
            "    try:\n"
            "        s.connect((host, port)); out[f'{host}:{port}'] = 'CONNECTED'\n"
            "    except Exception as e:\n"
            "        out[f'{host}:{port}'] = type(e).__name__\n"
            f"for path in {unix!r}:\n"
            "    s = socket.socket(socket.AF_UNIX); s.settimeout(3)\n"
            "    try:\n"
            "        s.connect(path); out[path] = 'CONNECTED'\n"
            "    except Exception as e:\n"
            "        out[path] = type(e).__name__\n"
            "print(json.dumps(out))\n")

    def test_network_sandbox_cannot_reach_host_loopback(self):
        sid = self.new_sandbox({"network": True})["id"]
        out = self.ok(sid, ["cat", "/proc/net/dev"])
        ifaces = {ln.split(":")[0].strip() for ln in out.splitlines()[2:]}
        self.assertIn("lo", ifaces)
        self.assertGreater(len(ifaces), 1, out)
        res = self.sh(sid, ["python3", "-c", self.connect_prog()], timeout=30)
        self.assertEqual(res["exitCode"], 0, res)
        for target, outcome in json.loads(res["stdout"]).items():
            self.assertNotEqual(outcome, "CONNECTED", target)

    def test_network_sandbox_egress_filter(self):
        # slirp4netns connects from the host, so the sandbox's namespace
        # carries a filter, loaded by root, that rejects this host's own
        # addresses and every private range. Read it from the host side
        # (nothing is sent to non-loopback addresses by this test).
        sid = self.new_sandbox({"network": True})["id"]
        marker = su.unique_marker()
        self.background(sid, ["sleep", str(marker)])
        pids = sp.wait_until(lambda: su.pgrep(f"^sleep {marker}$"), 10)
        self.assertTrue(pids, "the sandbox's sleep was not found")
        pid = su.pgrep(f"^sleep {marker}$")[0]
        p = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "nft",
                            "list", "ruleset"], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        rules = p.stdout
        for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                     "169.254.0.0/16", "127.0.0.0/8", "fc00::/7"):
            self.assertIn(cidr, rules)
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"],
                             capture_output=True, text=True,
                             timeout=10).stdout
        host_addrs = {ln.split()[3].split("/")[0] for ln in out.splitlines()}
        self.assertTrue(host_addrs, out)
        for a in host_addrs:
            self.assertIn(a, rules, "a host address is reachable")
        # Code inside cannot change it: no capability in its namespace.
        res = self.sh(sid, ["/usr/sbin/nft", "flush", "ruleset"])
        self.assertNotEqual(res["exitCode"], 0, res)
        # The sandbox's own loopback still works.
        out = self.ok(sid, "python3 -c \"import socket;s=socket.socket();"
                           "s.bind(('127.0.0.1',0));s.listen();"
                           "c=socket.create_connection(s.getsockname());"
                           "print('own-loopback-ok')\"")
        self.assertIn("own-loopback-ok", out)

    def test_clean_environment(self):
        out = self.ok(self.sid, ["env"], env={"CMD_VAR": "c"})
        names = {ln.split("=", 1)[0] for ln in out.splitlines() if "=" in ln}
        self.assertEqual(names, {"GIVEN_VAR", "CMD_VAR", "PATH", "HOME",
                                 "LANG"}, out)
        secret = jwt_secret()
        res = self.sh(self.sid, "cat /proc/[0-9]*/environ 2>/dev/null | "
                                "tr '\\0' '\\n'; env")
        text = res["stdout"]
        for word in ("JWT_SECRET", "REDIS_URL", "SP_", "SUDO", "SSH_"):
            self.assertNotIn(word, text)
        if secret:
            self.assertNotIn(secret, text)
        # The same in a PTY and in the background.
        res = self.sh(self.sid, ["env"], pty=True)
        self.assertNotIn("SP_", res["stdout"])
        exe = self.background(self.sid, ["env"])
        st = self.wait_result(self.sid, exe)
        names = {ln.split("=", 1)[0] for ln in st["stdout"].splitlines()}
        self.assertEqual(names, {"GIVEN_VAR", "PATH", "HOME", "LANG"})

    def test_no_inherited_fds(self):
        for kw in ({}, {"pty": True}, {"stdin": "x"}):
            with self.subTest(**kw):
                res = self.sh(self.sid, ["ls", "/proc/self/fd"], **kw)
                self.assertEqual(res["exitCode"], 0, res)
                self.assertEqual(set(res["stdout"].split()),
                                 {"0", "1", "2", "3"}, res)
        out = self.ok(self.sid, ["ls", "-l", "/proc/self/fd"])
        self.assertNotIn("socket", out)
        self.assertNotIn("memfd", out)
        exe = self.background(self.sid, ["ls", "/proc/self/fd"],
                              stdin_open=True)
        self.stdin(self.sid, exe, eof=True)
        st = self.wait_result(self.sid, exe)
        self.assertEqual(set(st["stdout"].split()), {"0", "1", "2", "3"})

    def test_unprivileged_user(self):
        out = self.ok(self.sid, ["id"])
        self.assertTrue(out.startswith("uid=1000"), out)
        self.assertIn("gid=1000", out)
        status = self.ok(self.sid, ["cat", "/proc/self/status"])
        fields = dict(ln.split(":", 1) for ln in status.splitlines()
                      if ":" in ln)
        fields = {k: v.strip() for k, v in fields.items()}
        self.assertEqual(fields["CapEff"], "0000000000000000")
        self.assertEqual(fields["CapPrm"], "0000000000000000")
        self.assertEqual(fields["CapAmb"], "0000000000000000")
        self.assertEqual(fields["NoNewPrivs"], "1")
        self.assertEqual(fields["Seccomp"], "2")
        # On the host, the sandbox's processes are not root either.
        marker = su.unique_marker()
        exe = self.background(self.sid, ["sleep", str(marker)])
        pids = sp.wait_until(lambda: su.pgrep(f"sleep {marker}"), 5)
        self.assertTrue(pids, "the sandbox's sleep is not seen on the host")
        with open(f"/proc/{pids[0]}/status") as f:
            host = dict(ln.split(":", 1) for ln in f if ":" in ln)
        uids = host["Uid"].split()
        self.assertNotIn("0", uids, host["Uid"])
        self.assertEqual(host["CapEff"].strip(), "0000000000000000")
        call("POST", f"/sandboxes/{self.sid}/commands/{exe}/signal",
             {"signal": "KILL"})
        self.wait_result(self.sid, exe)

    def test_namespaces_mounts_and_tracing_refused(self):
        for cmd in ("unshare -U true", "unshare -r true", "unshare -n true",
                    "unshare -m true", "mount -t tmpfs none /tmp",
                    "mount --bind /workspace /tmp", "umount /workspace",
                    "umount /proc", "cat /proc/1/mem",
                    "ls /proc/1/fd", "cat /proc/1/environ",
                    "echo x > /usr/bin/sp-test-write",
                    "echo x > /etc/passwd", "echo x > /.sp/init",
                    "hostname evil"):
            with self.subTest(cmd=cmd):
                res = self.sh(self.sid, cmd, timeout=10)
                self.assertNotEqual(res["exitCode"], 0, res)
        self.assertFalse(os.path.exists("/usr/bin/sp-test-write"))
        if platform.machine() != "x86_64":
            self.skipTest("syscall numbers below are x86_64")
        # Direct system calls the seccomp filter refuses with EPERM.
        prog = (
            "import ctypes, json, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "calls = {'ptrace_attach_1': (101, 16, 1, 0, 0),\n"
            "         'unshare_user': (272, 0x10000000, 0, 0, 0),\n"
            "         'mount': (165, 0, 0, 0, 0),\n"
            "         'keyctl': (250, 0, 0, 0, 0),\n"
            "         'bpf': (321, 0, 0, 0, 0),\n"
            "         'userfaultfd': (323, 0, 0, 0, 0),\n"
            "         'perf_event_open': (298, 0, 0, 0, 0),\n"
            "         'io_uring_setup': (425, 1, 0, 0, 0),\n"
            "         'setns': (308, 0, 0, 0, 0),\n"
            "         'pidfd_getfd': (438, 0, 0, 0, 0),\n"
            "         'process_vm_readv': (310, 1, 0, 0, 0),\n"
            "         'init_module': (175, 0, 0, 0, 0)}\n"
            "out = {}\n"
            "for name, (nr, *args) in calls.items():\n"
            "    ctypes.set_errno(0)\n"
            "    rc = libc.syscall(nr, *[ctypes.c_long(a) for a in args])\n"
            "    out[name] = [rc, ctypes.get_errno()]\n"
            "print(json.dumps(out))\n")
        res = self.sh(self.sid, ["python3", "-c", prog])
        self.assertEqual(res["exitCode"], 0, res)
        for name, (rc, err) in json.loads(res["stdout"]).items():
            with self.subTest(syscall=name):
                self.assertEqual(rc, -1, name)
                self.assertEqual(err, 1, f"{name}: errno {err}, not EPERM")
        self.assertEqual(self.ok(self.sid, "echo still fine"), "still fine\n")

    def test_no_orphans_after_an_execution(self):
        m1, m2, m3 = (su.unique_marker() for _ in range(3))
        res = self.sh(self.sid, ["sh", "-c", f"sleep {m1} &"], timeout=20)
        self.assertEqual(res["status"], "ok", res)
        res = self.sh(self.sid, f"setsid sh -c 'sleep {m2} &' </dev/null "
                                f">/dev/null 2>&1 & nohup sleep {m3} "
                                ">/dev/null 2>&1 & echo started", timeout=20)
        self.assertEqual(res["stdout"], "started\n", res)
        out = self.ok(self.sid, ["ps", "ax", "-o", "args="])
        for m in (m1, m2, m3):
            self.assertNotIn(f"sleep {m}", out)
        self.assertEqual(
            sp.wait_until(lambda: not any(su.pgrep(f"sleep {m}")
                                          for m in (m1, m2, m3)), 5), True)
        # The same for a background execution once it has ended.
        m4 = su.unique_marker()
        exe = self.background(self.sid, f"sleep {m4} & echo bg")
        st = self.wait_result(self.sid, exe)
        self.assertEqual(st["stdout"], "bg\n")
        self.assertNotIn(f"sleep {m4}", self.ok(self.sid, "ps ax"))
        self.assertTrue(sp.wait_until(lambda: not su.pgrep(f"sleep {m4}"), 5))

    def test_no_orphans_after_a_sandbox(self):
        sid = self.new_sandbox()["id"]
        marker = su.unique_marker()
        self.background(sid, ["sleep", str(marker)])
        self.background(sid, f"setsid sleep {marker + 1} & sleep "
                             f"{marker + 2}")
        found = sp.wait_until(
            lambda: len(su.pgrep(f"sleep {marker}") +
                        su.pgrep(f"sleep {marker + 1}") +
                        su.pgrep(f"sleep {marker + 2}")) >= 3, 5)
        self.assertTrue(found, "the sandbox's sleeps are not seen")
        r = call("DELETE", f"/sandboxes/{sid}", timeout=60)
        self.assertEqual(r.status, 204, r)
        gone = sp.wait_until(
            lambda: not any(su.pgrep(f"sleep {marker + i}") for i in range(3)),
            5)
        self.assertTrue(gone, "sandbox processes outlived the sandbox")


class CrossSandboxTest(su.SbxCase):
    def test_sandboxes_do_not_see_each_other(self):
        a = self.new_sandbox()["id"]
        b = self.new_sandbox()["id"]
        tag = uuid.uuid4().hex[:8]
        self.put_ok(a, f"/workspace/secret-{tag}", b"A's secret")
        self.ok(a, f"echo a > /tmp/tmp-{tag}")
        marker = su.unique_marker()
        exe = self.background(a, ["sleep", str(marker)])
        ws_a = os.path.join(state_dir(), "sandboxes", a, "workspace")
        # B sees nothing of A.
        for cmd in (f"cat /workspace/secret-{tag}", f"cat /tmp/tmp-{tag}",
                    f"ls {ws_a}", f"cat {ws_a}/secret-{tag}",
                    f"ls {state_dir()}/sandboxes"):
            with self.subTest(cmd=cmd):
                res = self.sh(b, cmd)
                self.assertNotEqual(res["exitCode"], 0, res)
                self.assertNotIn("secret", res["stdout"])
        self.assertNotIn(str(marker), self.ok(b, ["ps", "ax"]))
        self.assertEqual(self.ok(b, "ls -A /workspace /tmp"),
                         "/tmp:\n\n/workspace:\n")
        # Nor through the files API, links included.
        self.assertError(self.fget(b, f"/workspace/secret-{tag}"), 404)
        self.ok(b, f"ln -s {ws_a} /workspace/l_a && ln -s /proc/1/root "
                   "/workspace/l_p")
        for path in (f"/workspace/l_a/secret-{tag}",
                     f"/workspace/l_p/workspace/secret-{tag}",
                     "/workspace/" + "../" * 8 + ws_a.lstrip("/") +
                     f"/secret-{tag}"):
            with self.subTest(path=path):
                r = self.fget(b, path)
                self.assertIn(r.status, (400, 404), r)
                self.assertNotIn(b"secret", r.body)
                r = self.put(b, path, b"B was here")
                self.assertIn(r.status, (201, 400, 404, 409), r)
        # Each sandbox runs as its own host user.
        mb = su.unique_marker()
        self.background(b, ["sleep", str(mb)])
        pa = sp.wait_until(lambda: su.pgrep(f"sleep {marker}"), 5)
        pb = sp.wait_until(lambda: su.pgrep(f"sleep {mb}"), 5)
        self.assertTrue(pa and pb)

        def uid(pid):
            with open(f"/proc/{pid}/status") as f:
                for ln in f:
                    if ln.startswith("Uid:"):
                        return ln.split()[1]
            return None

        self.assertNotEqual(uid(pa[0]), uid(pb[0]))
        # A is untouched.
        self.assertEqual(self.get_ok(a, f"/workspace/secret-{tag}").body,
                         b"A's secret")
        self.assertEqual(self.ok(a, f"cat /tmp/tmp-{tag}"), "a\n")
        r = call("GET", f"/sandboxes/{a}/commands/{exe}")
        self.assertEqual(r.json["status"], "running", r)


class ResourceTest(su.SbxCase):
    """Bombs and fills stay inside their sandbox: a bystander sandbox and
    the host keep working."""

    @classmethod
    def setUpClass(cls):
        cls.bystander = cls.class_sandbox()

    def setUp(self):
        self.bystander_exe = self.background(self.bystander, ["sleep", "600"])

    def tearDown(self):
        r = call("GET", f"/sandboxes/{self.bystander}/commands/"
                        f"{self.bystander_exe}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["status"], "running", "bystander was hit")
        call("POST", f"/sandboxes/{self.bystander}/commands/"
                     f"{self.bystander_exe}/signal", {"signal": "KILL"})
        self.assertEqual(self.ok(self.bystander, "echo alive"), "alive\n")
        self.assertEqual(sp.get("/ping", timeout=CLIENT_TIMEOUT).status, 200)

    def test_fork_bomb(self):
        sid = self.new_sandbox({"limits": {"pids": 64}})["id"]
        pings, stop = [], threading.Event()

        def pinger():
            for _ in range(200):
                if stop.is_set():
                    return
                try:
                    pings.append(sp.get("/ping", timeout=CLIENT_TIMEOUT).status)
                except OSError as e:
                    pings.append(repr(e))
                time.sleep(0.25)

        t = threading.Thread(target=pinger)
        t.start()
        try:
            # "wait" keeps the execution (and so the bomb) going until the
            # timeout ends it.
            res = self.sh(sid, ["bash", "-c", ":(){ :|:& };:; wait"],
                          timeout=10)
        finally:
            stop.set()
            t.join(30)
        self.assertIn(res["status"], ("timeout", "ok", "error", "killed"),
                      {k: v for k, v in res.items() if k != "stderr"})
        self.assertTrue(pings, "no ping was answered during the bomb")
        self.assertEqual(set(pings), {200}, pings)
        # Nothing of the bomb is left, and the sandbox works again.
        out = sp.wait_until(
            lambda: len(self.ok(sid, "ps ax").splitlines()) <= 4 and "ok", 10,
            0.5)
        self.assertEqual(out, "ok", self.ok(sid, "ps ax"))
        self.assertEqual(self.ok(sid, "echo recovered"), "recovered\n")
        usage = call("GET", f"/sandboxes/{sid}").json["usage"]
        self.assertLessEqual(usage["processes"], 8, usage)

    def test_memory_bomb(self):
        sid = self.new_sandbox({"limits": {"memory_mb": 64}})["id"]
        res = self.sh(sid, "head -c 2G /dev/zero | tail", timeout=60)
        self.assertEqual(res["status"], "oom", res)
        usage = call("GET", f"/sandboxes/{sid}").json["usage"]
        self.assertGreater(usage["oom_kills"], 0, usage)
        res = self.sh(sid, ["python3", "-c", "x = b'a' * (1 << 30)"],
                      timeout=60)
        self.assertEqual(res["status"], "oom", res)
        # In the background as well.
        exe = self.background(sid, ["python3", "-c",
                                    "x = [b'b' * (1 << 20) for _ in "
                                    "range(4096)]"], timeout=60)
        st = self.wait_result(sid, exe, timeout=70)
        self.assertEqual(st["result"]["data"]["status"], "oom", st)
        self.assertEqual(self.ok(sid, "echo survived"), "survived\n")

    def test_disk_fill(self):
        sid = self.new_sandbox({"limits": {"disk_mb": 16}})["id"]
        free_before = shutil.disk_usage(state_dir()).free
        res = self.sh(sid, "dd if=/dev/zero of=/workspace/big bs=1M "
                           "count=2000", timeout=60)
        self.assertNotEqual(res["exitCode"], 0, res)
        self.assertIn("No space left on device", res["stderr"])
        size = int(self.ok(sid, ["stat", "-c", "%s", "/workspace/big"]))
        self.assertLessEqual(size, 16 * 1024 * 1024)
        # /tmp has its own cap.
        res = self.sh(sid, "dd if=/dev/zero of=/tmp/big bs=1M count=2000",
                      timeout=60)
        self.assertIn("No space left on device", res["stderr"])
        tmp_size = int(self.ok(sid, ["stat", "-c", "%s", "/tmp/big"]))
        self.assertLessEqual(tmp_size,
                             su.cfg("SP_SANDBOX_TMP_MB", 64) * 1024 * 1024)
        free_after = shutil.disk_usage(state_dir()).free
        self.assertGreater(free_after, free_before - 64 * 1024 * 1024)
        # Full: an upload is refused with a clear status.
        r = self.put(sid, "/workspace/more", b"x" * (1024 * 1024))
        self.assertError(r, 507, "insufficient_storage")
        # Freed: usable again, yet an upload above the cap is refused.
        self.ok(sid, "rm -f /workspace/big /tmp/big /workspace/more")
        r = self.put(sid, "/workspace/huge", os.urandom(20 * 1024 * 1024),
                     timeout=60)
        self.assertError(r, 507, "insufficient_storage")
        with self.subTest("a refused upload leaves no partial file"):
            r = self.fget(sid, "/workspace/huge")
            self.assertEqual(r.status, 404, "the refused upload left a "
                             f"partial file of {len(r.body)} bytes")
        self.fdelete(sid, "/workspace/huge")
        self.put_ok(sid, "/workspace/small", b"fits")
        self.assertEqual(self.ok(sid, "cat /workspace/small"), "fits")


    def test_root_is_read_only(self):
        # The sandbox's own root (outside /workspace and /tmp) is read-only:
        # nothing can be written where only the memory limit would bound it.
        sid = self.new_sandbox({"limits": {"memory_mb": 64,
                                           "disk_mb": 16}})["id"]
        for path in ("/big", "/etc/new", "/.sp/x", "/usr/x", "/var-x"):
            res = self.sh(sid, f"dd if=/dev/zero of={path} bs=1M count=1",
                          timeout=30)
            self.assertNotEqual(res["exitCode"], 0, (path, res))
            self.assertIn("Read-only file system", res["stderr"], (path, res))
        self.assertEqual(self.ok(sid, "echo usable > /tmp/t && cat /tmp/t"),
                         "usable\n")


class CleanupTest(su.SbxCase):
    def traces(self, sid):
        """What of sandbox sid is on the host: (directory, mounts,
        cgroup dirs)."""
        d = os.path.join(state_dir(), "sandboxes", sid)
        with open("/proc/self/mountinfo") as f:
            mounts = [ln for ln in f if sid in ln]
        # <hierarchy>/sandpipe[-<hash of the state dir>]/<id>
        cgroups = glob.glob(f"/sys/fs/cgroup/*/sandpipe*/{sid}") + \
            glob.glob(f"/sys/fs/cgroup/sandpipe*/{sid}")
        return os.path.lexists(d), mounts, cgroups

    def test_delete_leaves_nothing(self):
        sid = self.new_sandbox({"network": True})["id"]
        self.put_ok(sid, "/workspace/data.bin", os.urandom(100000))
        marker = su.unique_marker()
        self.background(sid, ["sleep", str(marker)])
        self.ok(sid, "mkdir -p /workspace/a/b && mkfifo /workspace/a/f")
        exists, mounts, cgroups = self.traces(sid)
        self.assertTrue(exists)
        self.assertTrue(mounts, "no mount of the workspace seen")
        self.assertTrue(cgroups, "no cgroup of the sandbox seen")
        self.assertTrue(sp.wait_until(lambda: su.pgrep(f"sleep {marker}"), 5))
        r = call("DELETE", f"/sandboxes/{sid}", timeout=60)
        self.assertEqual(r.status, 204, r)
        clean = sp.wait_until(lambda: self.traces(sid) == (False, [], []), 5)
        self.assertTrue(clean, f"left behind: {self.traces(sid)}")
        self.assertFalse(su.pgrep(f"sleep {marker}"))
        self.assertFalse(su.pgrep(f"{sid}"), "a process still names the "
                                             "sandbox")

    def test_expiry_leaves_nothing(self):
        sid = self.new_sandbox({"timeout": 2})["id"]
        marker = su.unique_marker()
        self.background(sid, ["sleep", str(marker)])
        gone = sp.wait_until(
            lambda: call("GET", f"/sandboxes/{sid}").status == 404, 10, 0.25)
        self.assertTrue(gone)
        clean = sp.wait_until(lambda: self.traces(sid) == (False, [], []), 5)
        self.assertTrue(clean, f"left behind: {self.traces(sid)}")
        self.assertFalse(su.pgrep(f"sleep {marker}"))
