"""test_workspaces.py: persistent workspaces: the API (names, 409s,
another subject's 404), a workspace restored before a sandbox's first
command, synced on delete, on pause, on POST …/workspace/sync and every
SP_WORKSPACE_SYNC seconds (3 in the test stack), one holder at a time
(409), a hold that ends with its sandbox however it ends (its helper
SIGKILLed: what was synced survives, the workspace is usable), and
hostile archives planted in the store in place of a workspace's."""
import os
import signal
import uuid

import sbx_util as su
import sp
import ws_util as wu
from sbx_util import call

MOUNT = "/workspace/files"


def ws_name():
    return "w" + uuid.uuid4().hex[:12]


class WorkspaceCase(su.SbxCase):
    def workspace(self, key=None):
        name = ws_name()
        r = call("POST", "/workspaces", {"name": name}, key=key)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["version"], 0)
        self.assertIsNone(r.json["holder"])
        self.addCleanup(call, "DELETE", f"/workspaces/{name}", None, key)
        return name

    def ws(self, name, key=None):
        r = call("GET", f"/workspaces/{name}", key=key)
        self.assertEqual(r.status, 200, r)
        return r.json

    def on(self, name, **more):
        body = {"workspace": name}
        body.update(more)
        return self.new_sandbox(body)["id"]

    def delete(self, sid):
        r = call("DELETE", f"/sandboxes/{sid}", timeout=120)
        self.assertEqual(r.status, 204, r)


class WorkspaceApiTest(WorkspaceCase):
    def test_names_and_records(self):
        name = self.workspace()
        self.assertError(call("POST", "/workspaces", {"name": name}), 409,
                         "conflict", "name")
        for bad in ("", "Upper", "-lead", "a/b", "..", "a" * 64, "a b"):
            r = call("POST", "/workspaces", {"name": bad})
            self.assertError(r, 400, "invalid_argument", "name")
            self.assertEqual(r.json["error"].get("rule"), "workspace_name", r)
        self.assertError(call("POST", "/workspaces", {"name": 5}), 400,
                         "invalid_argument", "name")
        names = [w["name"] for w in
                 call("GET", "/workspaces").json["workspaces"]]
        self.assertIn(name, names)
        self.assertError(call("GET", "/workspaces/no-such"), 404, "not_found")
        self.assertError(call("GET", "/workspaces/..%2Fx"), 404, "not_found")
        # Another subject: none of it, and a name of its own is its own.
        _, other, _ = sp.create_key()
        self.assertError(call("GET", f"/workspaces/{name}", key=other), 404,
                         "not_found")
        self.assertError(call("DELETE", f"/workspaces/{name}", key=other),
                         404, "not_found")
        self.assertError(self.create_raw({"workspace": name}, key=other),
                         404, "not_found", "workspace")
        self.assertEqual(call("POST", "/workspaces", {"name": name},
                              key=other).status, 201)
        # Create's fields.
        self.assertError(self.create_raw({"workspace": "no-such-ws"}), 404,
                         "not_found", "workspace")
        self.assertError(self.create_raw({"mount": "/workspace/x"}), 400,
                         "invalid_argument", "mount")
        for bad in ("relative", "/workspace/../etc", "/", "/a/./b", "/tmp",
                    "/tmp/x", "//tmp/x", "/workspace/" + "a" * 1030):
            self.assertError(self.create_raw({"workspace": name,
                                              "mount": bad}),
                             400, "invalid_argument", "mount")
        # A sync of a sandbox without a workspace.
        sid = self.new_sandbox()["id"]
        self.assertError(call("POST", f"/sandboxes/{sid}/workspace/sync", {}),
                         409, "conflict")
        r = call("DELETE", f"/workspaces/{name}")
        self.assertEqual(r.status, 204, r)
        self.assertError(call("DELETE", f"/workspaces/{name}"), 404,
                         "not_found")


class WorkspaceFlowTest(WorkspaceCase):
    def test_restore_before_first_command_and_sync_on_delete(self):
        name = self.workspace()
        a = self.on(name)
        self.assertEqual(self.ws(name)["holder"], a)
        self.ok(a, f"cd {MOUNT} && mkdir -p d/e && echo one > d/e/f && "
                "echo top > top && ln -s top link && "
                "head -c 100000 /dev/urandom > blob && sha256sum blob > sum")
        self.delete(a)
        doc = self.ws(name)
        self.assertGreaterEqual(doc["version"], 1, doc)
        self.assertIsNone(doc["holder"])
        # The next sandbox's first command sees it all.
        b = self.on(name)
        self.assertEqual(self.ok(b, f"cd {MOUNT} && cat d/e/f top link && "
                                 "sha256sum -c sum >/dev/null && echo ok"),
                         "one\ntop\ntop\nok\n")
        # A template's sandbox too, as its user, at a mount of its own.
        self.ok(b, f"rm {MOUNT}/top && echo two > {MOUNT}/d/e/f")
        self.delete(b)
        c = self.on(name, template="base", mount="/home/user/proj")
        self.assertEqual(self.ok(c, "cat /home/user/proj/d/e/f; "
                                 "test -e /home/user/proj/top || echo gone; "
                                 "stat -c %u /home/user/proj/d/e/f"),
                         "two\ngone\n1000\n")
        self.assertEqual(self.ws(name)["mount"], "/home/user/proj")

    def test_one_holder(self):
        name = self.workspace()
        a = self.on(name)
        self.assertError(self.create_raw({"workspace": name}), 409,
                         "conflict", "workspace")
        self.assertError(call("DELETE", f"/workspaces/{name}"), 409,
                         "conflict")
        self.delete(a)
        self.on(name)

    def test_explicit_and_periodic_sync(self):
        name = self.workspace()
        a = self.on(name)
        self.ok(a, f"echo 1 > {MOUNT}/n")
        r = call("POST", f"/sandboxes/{a}/workspace/sync", {}, timeout=120)
        self.assertEqual(r.status, 200, r)
        v = r.json["version"]
        self.assertGreaterEqual(v, 1)
        self.assertIsNotNone(r.json["synced_at"])
        _, other, _ = sp.create_key()
        self.assertError(call("POST", f"/sandboxes/{a}/workspace/sync", {},
                              key=other), 404, "not_found")
        # Without asking: the periodic sync (SP_WORKSPACE_SYNC=3) lands.
        self.ok(a, f"echo 2 > {MOUNT}/n")
        self.assertTrue(sp.wait_until(
            lambda: self.ws(name)["version"] > v, 30, 0.5),
            f"no periodic sync: {self.ws(name)}")

    def test_planted_links(self):
        """A mount the sandbox's code replaced by a link to the host's
        /etc is resolved inside the sandbox (no such directory there);
        links inside the mount are kept as links, never followed."""
        name = self.workspace()
        a = self.on(name)
        self.ok(a, f"ln -s /etc/passwd {MOUNT}/pw && ln -s / {MOUNT}/root")
        r = call("POST", f"/sandboxes/{a}/workspace/sync", {}, timeout=120)
        self.assertEqual(r.status, 200, r)
        self.assertLess(r.json["size"], 64 * 1024, r)  # links, not trees
        self.ok(a, f"rm -rf {MOUNT} && ln -s /etc {MOUNT}")
        self.assertError(call("POST", f"/sandboxes/{a}/workspace/sync", {},
                              timeout=120), 404, "not_found", "workspace")
        # Nothing to save does not hold the delete up; the last sync stays.
        self.delete(a)
        b = self.on(name)
        self.assertEqual(self.ok(b, f"readlink {MOUNT}/pw {MOUNT}/root"),
                         "/etc/passwd\n/\n")

    def test_terminal_on_a_workspace(self):
        name = self.workspace()
        a = self.on(name)
        self.ok(a, f"echo from-a > {MOUNT}/t")
        self.delete(a)
        r = call("POST", "/terminal", {"workspace": name}, timeout=60)
        self.assertEqual(r.status, 201, r)
        sid = r.json["sandbox_id"]
        self.addCleanup(self.delete_quietly, sid)
        self.addCleanup(call, "DELETE", f"/terminal/{r.json['id']}")
        self.assertEqual(self.ws(name)["holder"], sid)
        self.assertEqual(self.ok(sid, f"cat {MOUNT}/t"), "from-a\n")
        # Its create's refusals are the create's.
        self.assertError(call("POST", "/terminal", {"workspace": name}), 409,
                         "conflict", "workspace")
        self.assertError(call("POST", "/terminal", {"workspace": "Bad"}), 400,
                         "invalid_argument", "workspace")

    def test_timeout(self):
        """A sandbox that times out: its last sync comes before its end,
        its hold goes with it, and the next sandbox has its files."""
        name = self.workspace()
        r = self.create_raw({"workspace": name, "timeout": 8})
        self.assertEqual(r.status, 201, r)
        a = r.json["id"]
        self.ok(a, f"echo before-the-end > {MOUNT}/e")
        self.assertTrue(sp.wait_until(
            lambda: call("GET", f"/sandboxes/{a}").status == 404, 30, 0.5))
        self.assertIsNone(self.ws(name)["holder"])
        b = self.on(name)
        self.assertEqual(self.ok(b, f"cat {MOUNT}/e"), "before-the-end\n")

    def test_pause_syncs(self):
        name = self.workspace()
        a = self.on(name)
        self.ok(a, f"echo paused > {MOUNT}/p")
        v = self.ws(name)["version"]
        r = call("POST", f"/sandboxes/{a}/pause", {}, timeout=120)
        self.assertEqual(r.status, 200, r)
        self.assertGreater(self.ws(name)["version"], v)
        # Deleted while paused: it was synced already, and it is let go.
        self.delete(a)
        b = self.on(name)
        self.assertEqual(self.ok(b, f"cat {MOUNT}/p"), "paused\n")


class WorkspaceHostileTest(WorkspaceCase):
    def planted(self, members):
        """A workspace whose archive is replaced by members; the answer of
        a create on it."""
        name = self.workspace()
        a = self.on(name)
        self.ok(a, f"echo x > {MOUNT}/x")
        self.delete(a)
        keys = su.redis("KEYS", su.PREFIX + f"ws:*:{name}")
        self.assertEqual(len(keys), 1, keys)
        rec = su.redis_hash(keys[0][len(su.PREFIX):])
        wu.plant(rec["archive"], int(rec["size"]), wu.tar_of(members))
        return self.create_raw({"workspace": name}), name

    def test_hostile_archives(self):
        tag = uuid.uuid4().hex[:10]
        host_file = f"/tmp/sp-escape-{tag}"
        for members in (
                [("../../../../tmp/sp-escape-" + tag, "file", b"x")],
                [("evil", "symlink", "/tmp"),
                 (f"evil/sp-escape-{tag}", "file", b"x")],
                [("dev", "chr", (1, 3))]):
            with self.subTest(members=members[0][0]):
                r, name = self.planted(members)
                self.assertError(r, 400, "invalid_argument", "workspace")
                self.assertFalse(os.path.exists(host_file))
                # The failed create let the workspace go.
                self.assertIsNone(self.ws(name)["holder"])
        r, _ = self.planted([(f"/srv/abs-{tag}", "file", b"in")])
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.delete_quietly, r.json["id"])
        self.assertFalse(os.path.exists(f"/srv/abs-{tag}"))
        self.assertEqual(self.ok(r.json["id"], f"cat {MOUNT}/srv/abs-{tag}"),
                         "in")


class ZWorkspaceHelperKillTest(WorkspaceCase):
    def test_helper_killed(self):
        name = self.workspace()
        a = self.on(name)
        self.ok(a, f"echo kept > {MOUNT}/kept")
        r = call("POST", f"/sandboxes/{a}/workspace/sync", {}, timeout=120)
        self.assertEqual(r.status, 200, r)
        old_pid = sp.read_pid("sp-helperd")
        os.kill(old_pid, signal.SIGKILL)
        self.assertIsNotNone(sp.restarted("sp-helperd", old_pid, 15))
        self.assertTrue(sp.wait_until(
            lambda: call("GET", f"/sandboxes/{a}").status == 404, 20, 0.2))
        # The hold went with its sandbox; what was synced is there.
        self.assertTrue(sp.wait_until(
            lambda: self.ws(name)["holder"] is None, 10, 0.2))
        b = self.new_sandbox_when_ready({"workspace": name})
        self.assertEqual(self.ok(b, f"cat {MOUNT}/kept"), "kept\n")
        r = call("POST", f"/sandboxes/{b}/workspace/sync", {}, timeout=120)
        self.assertEqual(r.status, 200, r)

    def new_sandbox_when_ready(self, body):
        """A create once the restarted helper takes them (bounded)."""
        got = {}

        def made():
            r = self.create_raw(body)
            if r.status == 201:
                got["id"] = r.json["id"]
                return True
            self.assertIn(r.status, (503,), r)
            return False
        self.assertTrue(sp.wait_until(made, 20, 0.5))
        self.addCleanup(self.delete_quietly, got["id"])
        return got["id"]
