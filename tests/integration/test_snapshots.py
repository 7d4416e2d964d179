"""test_snapshots.py: snapshots of a template sandbox's writable layer: a
new sandbox from one has its changes (files written as root in /usr,
template files deleted: whiteouts, a directory made again: opaque), one
of a sandbox whose process is writing is one moment of it, the API
(list, one, delete, another subject's 404, names), and hostile archives
planted in the store in place of a snapshot's (climbing names, a symlink
then a member through it, absolute names, a device node): refused or
kept inside the sandbox, never written on the host."""
import os
import unittest
import uuid

import sbx_util as su
import sp
import storage_util
import ws_util as wu
from sbx_util import call


class SnapshotTest(su.SbxCase):
    @classmethod
    def setUpClass(cls):
        r = call("GET", "/templates/base")
        if r.status != 200:
            raise AssertionError(f"the base template is not built: {r!r}")

    def snapshot(self, sid, key=None):
        r = call("POST", f"/sandboxes/{sid}/snapshots", {}, key=key,
                 timeout=120)
        self.assertEqual(r.status, 201, r)
        snap = r.json
        self.assertTrue(snap["id"].startswith("snp_"), snap)
        self.addCleanup(call, "DELETE", f"/snapshots/{snap['id']}", None, key)
        return snap

    def test_changes_come_back(self):
        sid = self.new_sandbox({"template": "base"})["id"]
        self.ok(sid, "echo made > /usr/local/bin/made-here && "
                "chmod 755 /usr/local/bin/made-here && "
                "rm /etc/debian_version && "
                "rm -rf /etc/apt/apt.conf.d && mkdir /etc/apt/apt.conf.d && "
                "echo only > /etc/apt/apt.conf.d/only && "
                "mkdir -p /srv/deep/er && echo x > /srv/deep/er/f && "
                "chown 1000:1000 /srv/deep/er/f", user="root")
        self.ok(sid, "echo mine > ~/note")
        snap = self.snapshot(sid)
        self.assertEqual(snap["template"], "base")
        self.assertEqual(snap["sandbox_id"], sid)
        self.assertGreater(snap["size"], 0)

        new = self.new_sandbox({"snapshot": snap["id"]})
        self.assertEqual(new["template"], "base")
        nid = new["id"]
        self.assertEqual(self.ok(nid, "cat /usr/local/bin/made-here"),
                         "made\n")
        # A deleted template file stays deleted (a whiteout).
        res = self.sh(nid, "test -e /etc/debian_version")
        self.assertEqual(res["exitCode"], 1, res)
        # A directory made again holds only what was made in it (opaque).
        self.assertEqual(self.ok(nid, "ls /etc/apt/apt.conf.d"), "only\n")
        self.assertEqual(self.ok(nid, "stat -c %u:%g /srv/deep/er/f"),
                         "1000:1000\n")
        self.assertEqual(self.ok(nid, "cat ~/note"), "mine\n")
        # The template itself is untouched: a plain sandbox has none of it.
        plain = self.new_sandbox({"template": "base"})["id"]
        self.assertEqual(self.sh(plain, "test -e /usr/local/bin/made-here")
                         ["exitCode"], 1)
        self.assertEqual(self.ok(plain, "cat /etc/debian_version") != "",
                         True)

    def test_running_sandbox_is_one_moment(self):
        sid = self.new_sandbox({"template": "base"})["id"]
        # A writer that appends whole lines as fast as it can.
        self.background(sid, "i=0; while :; do i=$((i+1)); "
                        "echo line-$i-end >> ~/log; done")
        sp.wait_until(lambda: self.sh(sid, "test -s ~/log")["exitCode"] == 0,
                      10)
        snap = self.snapshot(sid)
        # The writer goes on after the snapshot (it was thawed).
        n1 = int(self.ok(sid, "wc -l < ~/log"))
        self.assertTrue(sp.wait_until(
            lambda: int(self.ok(sid, "wc -l < ~/log")) > n1, 10))
        nid = self.new_sandbox({"snapshot": snap["id"]})["id"]
        lines = self.ok(nid, "cat ~/log").split("\n")
        self.assertEqual(lines[-1], "")  # ends with a whole line
        for i, ln in enumerate(lines[:-1], 1):
            self.assertEqual(ln, f"line-{i}-end")

    def test_api(self):
        sid = self.new_sandbox({"template": "base"})["id"]
        snap = self.snapshot(sid)
        got = call("GET", f"/snapshots/{snap['id']}")
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.json, snap)
        ids = [s["id"] for s in call("GET", "/snapshots").json["snapshots"]]
        self.assertIn(snap["id"], ids)
        # Another subject sees nothing of it.
        _, other, _ = sp.create_key()
        self.assertError(call("GET", f"/snapshots/{snap['id']}", key=other),
                         404, "not_found")
        self.assertError(call("DELETE", f"/snapshots/{snap['id']}",
                              key=other), 404, "not_found")
        self.assertError(self.create_raw({"snapshot": snap["id"]}, key=other),
                         404, "not_found")
        self.assertNotIn(snap["id"], [s["id"] for s in call(
            "GET", "/snapshots", key=other).json["snapshots"]])
        self.assertError(call("POST", f"/sandboxes/{sid}/snapshots", {},
                              key=other), 404, "not_found")
        # Names.
        for bad in ("snp_../x", "nope", "snp_" + "a" * 40):
            self.assertError(self.create_raw({"snapshot": bad}), 404,
                             "not_found")
        self.assertError(self.create_raw({"snapshot": "snp_" + "a" * 80}),
                         400, "invalid_argument", "snapshot")
        self.assertError(self.create_raw({"snapshot": 7}), 400,
                         "invalid_argument", "snapshot")
        self.assertError(self.create_raw({"snapshot": snap["id"],
                                          "template": "code-interpreter"}),
                         400, "invalid_argument", "template")
        # The host view has no layer.
        host = self.new_sandbox({"template": "host"})["id"]
        self.assertError(call("POST", f"/sandboxes/{host}/snapshots", {}),
                         400, "invalid_argument")
        # Deleted: gone, and its object with it.
        obj = wu.storage_file(f"snapshots/{snap['id']}.tar")
        self.assertIsNotNone(obj)
        r = call("DELETE", f"/snapshots/{snap['id']}")
        self.assertEqual(r.status, 204, r)
        self.assertError(call("GET", f"/snapshots/{snap['id']}"), 404,
                         "not_found")
        self.assertFalse(os.path.exists(obj))
        self.assertError(self.create_raw({"snapshot": snap["id"]}), 404,
                         "not_found")

    def test_not_reachable_through_buckets(self):
        """The internal bucket is a name no bucket route takes."""
        for path in ("/buckets/_sandpipe/objects", "/buckets/_sandpipe"):
            r = call("GET" if "objects" in path else "DELETE", path)
            self.assertEqual(r.status, 400, r)
        self.assertError(call("POST", "/buckets", {"name": "_sandpipe"}),
                         400, "invalid_argument")

    def hostile(self, members):
        """A snapshot whose stored archive is replaced by members; the
        answer of a create from it."""
        sid = self.new_sandbox({"template": "base"})["id"]
        snap = self.snapshot(sid)
        wu.plant(f"snapshots/{snap['id']}.tar", snap["size"],
                 wu.tar_of(members))
        return self.create_raw({"snapshot": snap["id"]})

    def test_hostile_archives(self):
        tag = uuid.uuid4().hex[:10]
        host_file = f"/tmp/sp-escape-{tag}"
        # A member climbing out: refused.
        r = self.hostile([("../../../../tmp/sp-escape-" + tag, "file", b"x")])
        self.assertError(r, 400, "invalid_argument", "snapshot")
        self.assertFalse(os.path.exists(host_file))
        # A symlink out, then a member through it: refused, nothing out.
        r = self.hostile([("evil", "symlink", "/tmp"),
                          (f"evil/sp-escape-{tag}", "file", b"x")])
        self.assertError(r, 400, "invalid_argument", "snapshot")
        self.assertFalse(os.path.exists(host_file))
        # The same with a relative link that climbs.
        r = self.hostile([("up", "symlink", "../../../../../../tmp"),
                          (f"up/sp-escape-{tag}", "file", b"x")])
        self.assertError(r, 400, "invalid_argument", "snapshot")
        self.assertFalse(os.path.exists(host_file))
        # A device node other than a whiteout: refused.
        r = self.hostile([("dev-null", "chr", (1, 3))])
        self.assertError(r, 400, "invalid_argument", "snapshot")
        # A hard link to a host file: refused (no such file in the layer).
        r = self.hostile([("shadow", "hardlink", "/etc/shadow")])
        self.assertError(r, 400, "invalid_argument", "snapshot")
        # An absolute name lands inside the sandbox's layer.
        r = self.hostile([(f"/srv/abs-{tag}", "file", b"inside")])
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.delete_quietly, r.json["id"])
        self.assertFalse(os.path.exists(f"/srv/abs-{tag}"))
        self.assertEqual(self.ok(r.json["id"], f"cat /srv/abs-{tag}"),
                         "inside")


class SnapshotS3Test(su.SbxCase):
    """The same archives through the s3 backend (s3rver on loopback): an
    sp-sandboxes started with it in place of the supervised one."""

    @classmethod
    def setUpClass(cls):
        if not os.access(storage_util.S3RVER, os.X_OK):
            raise unittest.SkipTest("tests/s3 not installed (npm ci there)")
        cls.store = storage_util.S3Storage(sp.PORT + 2,
                                           program="sp-sandboxes",
                                           probe="/snapshots")
        cls.store.start()

    @classmethod
    def tearDownClass(cls):
        cls.store.stop()

    def test_snapshot_and_workspace(self):
        sid = self.new_sandbox({"template": "base"})["id"]
        self.ok(sid, "echo s3 > /srv/on-s3 && rm /etc/debian_version",
                user="root")
        r = call("POST", f"/sandboxes/{sid}/snapshots", {}, timeout=120)
        self.assertEqual(r.status, 201, r)
        snap = r.json["id"]
        self.addCleanup(call, "DELETE", f"/snapshots/{snap}")
        # Not in the local store: in the S3 server's files.
        self.assertIsNone(wu.storage_file(f"snapshots/{snap}.tar"))
        nid = self.new_sandbox({"snapshot": snap})["id"]
        self.assertEqual(self.ok(nid, "cat /srv/on-s3; "
                                 "test -e /etc/debian_version || echo gone"),
                         "s3\ngone\n")
        name = "s3" + uuid.uuid4().hex[:10]
        self.assertEqual(call("POST", "/workspaces", {"name": name}).status,
                         201)
        self.addCleanup(call, "DELETE", f"/workspaces/{name}")
        a = self.new_sandbox({"workspace": name})["id"]
        self.ok(a, "echo kept > /workspace/files/k")
        self.assertEqual(call("DELETE", f"/sandboxes/{a}",
                              timeout=120).status, 204)
        b = self.new_sandbox({"workspace": name})["id"]
        self.assertEqual(self.ok(b, "cat /workspace/files/k"), "kept\n")
        self.assertEqual(call("DELETE", f"/snapshots/{snap}").status, 204)
