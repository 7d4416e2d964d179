"""test_templates.py: sandboxes of a real template (base, built with
mmdebstrap and a RUN step by `./sandpipe test` once, cached): the user and
root inside, apt-get with network, a root that is the sandbox's own and
vanishes with it, a disk of its own (ENOSPC and 507 with memory
untouched, usage.disk_bytes), the template API (list, one, unknown,
another subject's private one), bad input, and nothing left behind (no
mount, no loop device, no image) once a sandbox is deleted."""
import os
import subprocess
import uuid

import sbx_util as su
import sp
from sbx_util import call


def state_dir():
    return os.path.abspath(sp.STATE)


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(path)]


def loop_backing_under(path):
    out = subprocess.run(["losetup", "-a", "-n", "-O", "BACK-FILE"],
                         capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if path in ln]


class TemplateLeftoversTest(su.SbxCase):
    """What a killed helper leaves (a template sandbox's overlay, disk
    mount, loop device, image) is gone once the supervisor has started it
    again; and `sandpipe down` removes such leftovers of its state."""

    def test_restarted_helper_leaves_nothing(self):
        sid = self.new_sandbox({"template": "base"})["id"]
        path = os.path.realpath(os.path.join(state_dir(), "sandboxes", sid))
        self.assertTrue(mounts_under(path + "/"))
        old = sp.read_pid("sp-helperd")
        os.kill(old, 9)
        self.assertIsNotNone(sp.restarted("sp-helperd", old, timeout=10))
        self.assertTrue(sp.wait_until(
            lambda: not mounts_under(path + "/") and
            not loop_backing_under(path) and not os.path.exists(path), 15),
            (mounts_under(path + "/"), loop_backing_under(path)))
        # The helper serves again.
        other = self.new_sandbox({"template": "base"})["id"]
        self.assertEqual(self.ok(other, "echo back"), "back\n")

    def test_down_removes_leftover_disks(self):
        import tempfile
        st = tempfile.mkdtemp(prefix="sp-down-tpl-", dir=os.path.dirname(
            os.path.abspath(sp.STATE)))
        d = os.path.join(st, "sandboxes", "sbx_left")
        for sub in ("disk", "lower", "root"):
            os.makedirs(os.path.join(d, sub))
        img = os.path.join(d, "disk.img")
        subprocess.run(["truncate", "-s", "32M", img], check=True)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", img], check=True)
        subprocess.run(["mount", "-o", "loop", img, os.path.join(d, "disk")],
                       check=True)
        for sub in ("upper", "work"):
            os.mkdir(os.path.join(d, "disk", sub))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir=/usr,upperdir={d}/disk/upper,"
                        f"workdir={d}/disk/work", os.path.join(d, "root")],
                       check=True)
        self.assertEqual(len(mounts_under(d + "/")), 2)
        env = dict(os.environ, SP_STATE_DIR=st, SP_LISTEN="127.0.0.1:1",
                   SP_ENV_FILE="")
        p = subprocess.run([os.path.join(sp.ROOT, "sandpipe"), "down"],
                           env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(sp.wait_until(lambda: not loop_backing_under(d), 5),
                        loop_backing_under(d))
        self.assertEqual(mounts_under(d + "/"), [])
        self.assertFalse(os.path.exists(img))
        subprocess.run(["rm", "-rf", st])


class TemplatesTest(su.SbxCase):
    @classmethod
    def setUpClass(cls):
        r = call("GET", "/templates/base")
        if r.status != 200:
            raise AssertionError(f"the base template is not built: {r!r}")
        cls.sid = cls.class_sandbox({"template": "base", "network": True,
                                     "limits": {"disk_mb": 256}})

    def test_user_home_and_root(self):
        out = self.ok(self.sid, 'id -u; echo "$HOME"; pwd; whoami')
        self.assertEqual(out.split(), ["1000", "/home/user", "/home/user",
                                       "user"])
        out = self.ok(self.sid, 'id -u; echo "$HOME"', user="root")
        self.assertEqual(out.split(), ["0", "/root"])
        # The user cannot write the system; root (of the sandbox) can, and
        # that root is not the host's: the write lands on the sandbox's
        # own layer.
        res = self.sh(self.sid, "touch /usr/local/bin/x")
        self.assertNotEqual(res["exitCode"], 0, res)
        self.ok(self.sid, "echo mine > /usr/local/bin/x && chown user "
                "/usr/local/bin/x", user="root")
        self.assertEqual(self.ok(self.sid, "cat /usr/local/bin/x"), "mine\n")
        r = self.run_raw(self.sid, "true", user="nobody-such")
        self.assertEqual(r.status, 400, r)
        self.assertIn("no user", r.json["error"]["message"])

    def test_root_inside_is_not_the_hosts(self):
        """Root of a template's sandbox: writes to the system land on the
        sandbox's own layer (the template on the host is untouched), and
        mount, new namespaces, other processes' memory and the host's
        processes stay out of reach."""
        meta = call("GET", "/templates/base").json
        host_ls = os.path.join(state_dir(), "templates", "base",
                               meta["version"], "rootfs", "usr", "bin", "ls")
        before = open(host_ls, "rb").read()
        sid = self.new_sandbox({"template": "base"})["id"]
        self.ok(sid, "echo overwritten > /usr/bin/ls", user="root")
        self.assertEqual(open(host_ls, "rb").read(), before)
        other = self.new_sandbox({"template": "base"})["id"]
        self.assertNotEqual(self.ok(other, "head -c 11 /usr/bin/ls | "
                                    "od -c | head -1"), "")
        self.assertEqual(self.ok(sid, "cat /usr/bin/ls"), "overwritten\n")
        for cmd in ("mount -t tmpfs none /mnt",
                    "unshare -U true", "unshare -m true",
                    "cat /proc/1/environ",
                    "cat /proc/1/root/etc/hostname",
                    "chroot /proc/1/root true"):
            with self.subTest(cmd=cmd):
                res = self.sh(sid, cmd, user="root")
                self.assertNotEqual(res["exitCode"], 0, res)
        procs = self.ok(sid, "find /proc -maxdepth 1 -name '[0-9]*' | wc -l",
                        user="root")
        self.assertLess(int(procs), 10)
        # Its files on the host belong to its own unprivileged uids.
        self.ok(sid, "touch /root/mine", user="root")
        import glob
        found = glob.glob(os.path.join(state_dir(), "sandboxes", "*", "disk",
                                       "upper", "root", "mine"))
        self.assertEqual(len(found), 1, found)
        for path in found:
            self.assertGreater(os.stat(path).st_uid, 65535, path)

    def test_apt_get_install_as_root(self):
        res = self.sh(self.sid, "apt-get install -y -q jq >/dev/null 2>&1; "
                      "echo '{\"a\": 41}' | jq '.a + 1'", user="root",
                      timeout=300)
        self.assertEqual((res["exitCode"], res["stdout"]), (0, "42\n"), res)
        # Another sandbox of the same template does not have it.
        other = self.new_sandbox({"template": "base"})["id"]
        res = self.sh(other, "command -v jq || echo none")
        self.assertEqual(res["stdout"], "none\n")

    def test_execute_and_contexts(self):
        """/execute with the sandbox's id and a stateful context run in
        the template's root, as its user."""
        r = call("POST", "/execute", {"code": "import os\nprint(2 + 2, "
                                      "os.getuid(), os.getcwd())",
                                      "language": "python",
                                      "sandbox_id": self.sid}, timeout=60)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["output"], "4 1000 /home/user\n", r.json)
        r = call("POST", f"/sandboxes/{self.sid}/contexts",
                 {"language": "python"}, timeout=60)
        self.assertEqual(r.status, 201, r)
        ctx = r.json["id"]
        for code, want in (("x = 20", ""), ("print(x + 1)", "21\n")):
            r = call("POST", "/execute", {"code": code, "context_id": ctx,
                                          "sandbox_id": self.sid},
                     timeout=60)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["output"], want, r.json)

    def test_npm_install(self):
        """A package from the npm registry lands in the project's
        node_modules (not one of Debian's node-* packages found instead)."""
        out = self.ok(self.sid, "mkdir -p p && cd p && npm install --silent "
                      "--no-audit --no-fund is-number@7.0.0 >/dev/null && "
                      "node -p \"require.resolve('is-number') + ' ' + "
                      "require('is-number/package.json').version\"",
                      timeout=300)
        self.assertEqual(out, "/home/user/p/node_modules/is-number/index.js "
                              "7.0.0\n")
        # TLS to the registry npm is configured with (whatever host that
        # is) verifies with the template's certificate authorities.
        self.assertEqual(self.ok(self.sid, "curl -sS -o /dev/null -w "
                                 "'%{http_code}' \"$(npm config get "
                                 "registry)is-number\"", timeout=60)[:1], "2")

    def test_files_anywhere_in_the_root(self):
        self.put_ok(self.sid, "/home/user/notes/a.txt", b"hello")
        self.assertEqual(self.ok(self.sid, "cat notes/a.txt; stat -c %U "
                                 "notes/a.txt"), "hello" + "user\n")
        self.assertEqual(self.get_ok(self.sid, "/etc/debian_version").status,
                         200)
        # A link the sandbox makes to / stays inside its own root.
        self.ok(self.sid, "ln -sfn / /home/user/up")
        r = self.fget(self.sid, "/home/user/up/home/user/notes/a.txt")
        self.assertEqual((r.status, r.body), (200, b"hello"), r)
        self.assertFalse(os.path.exists("/home/user/notes/a.txt"))
        # /tmp is the sandbox's own; /proc and /dev are never entered, by
        # name or through a link.
        self.put_ok(self.sid, "/tmp/t.txt", b"tmp")
        self.assertEqual(self.ok(self.sid, "cat /tmp/t.txt"), "tmp")
        self.ok(self.sid, "ln -sfn /proc/1/environ /home/user/env; "
                "ln -sfn /dev/tty /home/user/tty")
        for path in ("/proc/1/environ", "/home/user/env", "/dev/tty",
                     "/home/user/tty", "/proc/self/mem"):
            with self.subTest(path=path):
                # Not there (the overlay's empty /proc), or a device node
                # of the template's tree refused as not a file: never read.
                r = self.fget(self.sid, path)
                self.assertIn(r.status, (400, 404), r)
        # A watch sees a file a command writes in the user's home.
        r = call("POST", f"/sandboxes/{self.sid}/watches",
                 {"path": "/home/user", "recursive": False})
        self.assertEqual(r.status, 201, r)
        wid = r.json["watch_id"]
        self.ok(self.sid, "echo x > /home/user/watched.txt")
        seen = sp.wait_until(lambda: any(
            e["data"].get("name") == "watched.txt" for e in call(
                "GET", f"/sandboxes/{self.sid}/watches/{wid}/events?since=0")
            .json["events"]), 10)
        self.assertTrue(seen)

    def test_disk_full_is_enospc_not_oom(self):
        sid = self.new_sandbox({"template": "base",
                                "limits": {"disk_mb": 64,
                                           "memory_mb": 128}})["id"]
        res = self.sh(sid, "dd if=/dev/zero of=big bs=1M count=200",
                      timeout=120)
        self.assertIn("No space left on device", res["stderr"])
        doc = call("GET", f"/sandboxes/{sid}").json
        self.assertEqual(doc["template"], "base")
        usage = doc["usage"]
        self.assertEqual(usage["oom_kills"], 0, usage)
        self.assertGreater(usage["disk_bytes"], 40 * 1024 * 1024, usage)
        self.assertLessEqual(usage["disk_total_bytes"], 64 * 1024 * 1024)
        self.assertLess(usage["memory_bytes"], 100 * 1024 * 1024, usage)
        r = self.put(sid, "/home/user/more", b"x" * (2 * 1024 * 1024))
        self.assertError(r, 507, "insufficient_storage")
        # A disk above the memory limit is usable.
        big = self.new_sandbox({"template": "base",
                                "limits": {"disk_mb": 1024,
                                           "memory_mb": 64}})["id"]
        self.ok(big, "dd if=/dev/zero of=f bs=1M count=300 status=none && "
                "sync", timeout=120)

    def test_deleted_sandbox_leaves_nothing(self):
        sid = self.new_sandbox({"template": "base"})["id"]
        path = os.path.realpath(os.path.join(state_dir(), "sandboxes", sid))
        self.assertTrue(mounts_under(path + "/"), "no mounts while it runs")
        self.assertTrue(loop_backing_under(path))
        r = call("DELETE", f"/sandboxes/{sid}", timeout=60)
        self.assertIn(r.status, (200, 204), r)
        # Answered once its processes are gone; its mounts, loop device
        # and directory follow within moments.
        self.assertTrue(sp.wait_until(
            lambda: not mounts_under(path + "/") and
            not loop_backing_under(path) and not os.path.exists(path), 5),
            (mounts_under(path + "/"), loop_backing_under(path)))

    def test_template_api(self):
        names = [t["name"] for t in call("GET", "/templates").json["templates"]]
        self.assertIn("base", names)
        self.assertIn("host", names)
        base = call("GET", "/templates/base").json
        self.assertEqual((base["user"], base["workdir"], base["private"]),
                         ("user", "/home/user", False))
        self.assertEqual(base["from"], "debian:bookworm")
        self.assertError(call("GET", "/templates/no-such"), 404, "not_found")
        self.assertError(self.create_raw({"template": "no-such"}), 404,
                         "not_found")
        self.assertError(self.create_raw({"template": "../etc"}), 400,
                         "invalid_argument")
        self.assertError(self.create_raw({"template": 7}), 400,
                         "invalid_argument")
        # Built in: not deletable through the API; in use: not either.
        self.assertError(call("DELETE", "/templates/base"), 403, "forbidden")
        self.assertError(call("DELETE", "/templates/host"), 403, "forbidden")

    def test_private_template_of_another_subject(self):
        spec = os.path.join(os.environ.get("SP_TEST_OUT", "/tmp"),
                            "private.spec")
        with open(spec, "w") as f:
            f.write("FROM base\nENV SECRET_TEMPLATE=1\n")
        env = dict(os.environ, SP_STATE_DIR=state_dir())
        res = subprocess.run([os.path.join(sp.BUILD, "sp-template"), "build",
                              "theirs", spec, "--private", "someone-else"],
                             env=env, capture_output=True, text=True,
                             timeout=600)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertError(self.create_raw({"template": "theirs"}), 404,
                         "not_found")
        self.assertError(call("GET", "/templates/theirs"), 404, "not_found")
        names = [t["name"] for t in call("GET", "/templates").json["templates"]]
        self.assertNotIn("theirs", names)

    def test_bad_specs_and_tarballs(self):
        env = dict(os.environ, SP_STATE_DIR=state_dir())
        tool = os.path.join(sp.BUILD, "sp-template")
        out = os.environ.get("SP_TEST_OUT", "/tmp")
        cases = {"FROM debian:bookworm\nFROBNICATE x\n": "line 2",
                 "FROM ubuntu:24.04\n": "line 1",
                 "FROM base\nCOPY ../../etc/passwd /x\n": "line 2"}
        for i, (text, where) in enumerate(cases.items()):
            with self.subTest(spec=text):
                spec = os.path.join(out, f"bad{i}.spec")
                with open(spec, "w") as f:
                    f.write(text)
                res = subprocess.run([tool, "build", f"bad{i}", spec, out],
                                     env=env, capture_output=True, text=True,
                                     timeout=120)
                self.assertEqual(res.returncode, 2, res.stdout)
                self.assertIn(where, res.stdout)
                self.assertFalse(os.path.exists(os.path.join(
                    state_dir(), "templates", f"bad{i}", "meta.json")))
        # A failing RUN: failed, with the step, and no template left.
        spec = os.path.join(out, "fails.spec")
        with open(spec, "w") as f:
            f.write("FROM base\nRUN echo about-to-fail && exit 3\n")
        res = subprocess.run([tool, "build", "fails", spec], env=env,
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertIn("about-to-fail", res.stdout)
        self.assertIn("step 1 (line 2): exited with status 3", res.stdout)
        self.assertEqual(os.listdir(os.path.join(state_dir(), "templates",
                                                 "fails")), [])
        # A tarball with a device node and a setuid file: both neutralised.
        root = os.path.join(out, "imp")
        os.makedirs(os.path.join(root, "etc"), exist_ok=True)
        with open(os.path.join(root, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        suid = os.path.join(root, "suid")
        open(suid, "w").close()
        os.chmod(suid, 0o4755)
        dev = os.path.join(root, "null")
        if not os.path.exists(dev):
            os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 3))
        tar = os.path.join(out, "imp.tar")
        subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
        res = subprocess.run([tool, "import", "imported", tar], env=env,
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertIn("removed device node /null", res.stdout)
        self.assertIn("cleared set-id bits of /suid", res.stdout)
        # A member with ".." is refused, and nothing is left.
        evil = os.path.join(out, "evil.tar")
        subprocess.run(["tar", "-C", root, "-cf", evil, "-P",
                        "--transform", "s,^,../../,", "etc/passwd"],
                       check=True)
        res = subprocess.run([tool, "import", "evil", evil], env=env,
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(res.returncode, 2, res.stdout)
        self.assertFalse(os.path.exists(os.path.join(
            state_dir(), "templates", "evil", "meta.json")))


class TemplateBuildApiTest(su.SbxCase):
    """POST /templates: a real build (FROM base, COPY, RUN) whose log
    streams over SSE; its record; the template in use; refusals."""

    def build(self, body, expect=202):
        r = call("POST", "/templates", body, timeout=30)
        self.assertEqual(r.status, expect, r)
        return r.json

    def events(self, url, timeout=600):
        from test_sse import Stream
        s = Stream(url, headers=su.headers(), timeout=timeout)
        self.assertEqual(s.status, 200)
        evs = s.until(lambda e: e.get("event") == "result")
        s.close()
        return evs

    def test_build_stream_use_delete(self):
        name = "api-" + uuid.uuid4().hex[:8]
        doc = self.build({"name": name, "spec":
                          "FROM base\nARG N=6\nCOPY app.py /home/user/\n"
                          "RUN python3 /home/user/app.py $N > /home/user/out\n"
                          "ENV FROM_SPEC=yes\n",
                          "args": {"N": "7"},
                          "files": {"app.py": "import sys\n"
                                    "print(6 * int(sys.argv[1]))\n"}})
        self.assertTrue(doc["build_id"].startswith("bld_"), doc)
        evs = self.events(doc["events_url"])
        lines = [e["data"]["line"] for e in evs if e.get("event") == "log"]
        self.assertTrue(any("step" in ln for ln in lines), lines)
        self.assertEqual(evs[-1]["data"]["status"], "ready", evs[-1])
        rec = call("GET", f"/templates/{name}/builds/{doc['build_id']}").json
        self.assertEqual(rec["status"], "ready", rec)
        t = call("GET", f"/templates/{name}").json
        self.assertEqual((t["from"], t["env"]["FROM_SPEC"]), ("base", "yes"))
        sid = self.new_sandbox({"template": name})["id"]
        self.assertEqual(self.ok(sid, "cat out; echo $FROM_SPEC"), "42\nyes\n")
        # In use: not deletable; then deleted by its maker.
        self.assertError(call("DELETE", f"/templates/{name}"), 409,
                         "conflict")
        call("DELETE", f"/sandboxes/{sid}", timeout=60)
        r = call("DELETE", f"/templates/{name}", timeout=60)
        self.assertEqual(r.status, 204, r)
        self.assertError(call("GET", f"/templates/{name}"), 404, "not_found")

    def test_failing_build_leaves_nothing(self):
        name = "fail-" + uuid.uuid4().hex[:8]
        doc = self.build({"name": name,
                          "spec": "FROM base\nRUN echo partial > /x && false\n"})
        evs = self.events(doc["events_url"])
        res = evs[-1]["data"]
        self.assertEqual(res["status"], "failed", res)
        self.assertIn("line 2", res["error"])
        self.assertError(call("GET", f"/templates/{name}"), 404, "not_found")
        self.assertError(self.create_raw({"template": name}), 404)

    def test_refusals(self):
        r = call("POST", "/templates", {"name": "x1", "spec":
                                        "FROM base\nEXPOSE 80\n"})
        self.assertError(r, 400, "invalid_argument", "spec")
        self.assertIn("line 2", r.json["error"]["message"])
        r = call("POST", "/templates", {"name": "x3", "spec":
                                        "# a comment\nFROM nowhere-such\n"})
        self.assertError(r, 400, "invalid_argument", "spec")
        self.assertIn("line 2", r.json["error"]["message"])
        self.assertError(call("POST", "/templates",
                              {"name": "Bad/Name", "spec": "FROM base\n"}),
                         400, "invalid_argument", "name")
        self.assertError(call("POST", "/templates",
                              {"name": "host", "spec": "FROM base\n"}),
                         400, "invalid_argument", "name")
        self.assertError(call("POST", "/templates",
                              {"name": "x2", "spec": "FROM base\n",
                               "files": {"../escape": "x"}}),
                         400, "invalid_argument")
        # A built-in is not anyone's to rebuild.
        self.assertError(call("POST", "/templates",
                              {"name": "base", "spec": "FROM base\n"}),
                         403, "forbidden")
        # Two builds of one name at once: the second is refused.
        name = "twice-" + uuid.uuid4().hex[:8]
        first = self.build({"name": name,
                            "spec": "FROM base\nRUN sleep 5\n"})
        r = call("POST", "/templates", {"name": name, "spec": "FROM base\n"})
        self.assertError(r, 409, "conflict")
        self.events(first["events_url"])
        call("DELETE", f"/templates/{name}", timeout=60)


class CodeInterpreterTest(su.SbxCase):
    """The code-interpreter template does what it is for: the scientific
    stack imports, and a stateful context turns a matplotlib figure into
    an image result."""

    @classmethod
    def setUpClass(cls):
        r = call("GET", "/templates/code-interpreter")
        if r.status != 200:
            raise AssertionError(f"code-interpreter is not built: {r!r}")
        cls.sid = cls.class_sandbox({"template": "code-interpreter"})

    def test_stack_and_a_figure(self):
        out = self.ok(self.sid, "python3 -c 'import numpy, pandas, scipy, "
                      "matplotlib; print(pandas.DataFrame({\"a\": "
                      "numpy.arange(3)}).a.sum())'", timeout=120)
        self.assertEqual(out, "3\n")
        r = call("POST", f"/sandboxes/{self.sid}/contexts",
                 {"language": "python"}, timeout=60)
        self.assertEqual(r.status, 201, r)
        r = call("POST", "/execute", {
            "code": "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\n"
                    "None", "context_id": r.json["id"],
            "sandbox_id": self.sid}, timeout=120)
        self.assertEqual(r.status, 200, r)
        pngs = [x["image/png"] for x in r.json["results"] if "image/png" in x]
        self.assertEqual(len(pngs), 1, r.json)
        import base64
        self.assertTrue(base64.b64decode(pngs[0]).startswith(b"\x89PNG"))
