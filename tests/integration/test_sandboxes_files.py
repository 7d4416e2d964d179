"""test_sandboxes_files.py: the files API of a sandbox: raw PUT and GET of
any bytes, directory listings, trees with a depth, mkdir, delete (plain and
recursive), multipart uploads, chat-session uploads into /uploaded_files
with their extension list, and what commands see of it (and the other way
round). Paths are as the sandbox sees them; errors are refused cleanly."""
import hashlib
import os
import uuid

import sp
import sbx_util as su
from sbx_util import call


class FilesTest(su.SbxCase):
    @classmethod
    def setUpClass(cls):
        cls.sid = cls.class_sandbox()

    def fresh_dir(self):
        d = "/workspace/t_" + uuid.uuid4().hex[:10]
        r = call("POST", f"/sandboxes/{self.sid}/dirs", {"path": d})
        self.assertEqual(r.status, 201, r)
        return d

    def test_binary_round_trip(self):
        d = self.fresh_dir()
        data = bytes(range(256)) * 64 + b"\x00\xff" + bytes(range(255, -1, -1))
        doc = self.put_ok(self.sid, d + "/all.bin", data)
        self.assertEqual(doc["path"], d + "/all.bin")
        self.assertEqual(doc["size"], len(data))
        r = self.get_ok(self.sid, d + "/all.bin")
        self.assertEqual(r.body, data)
        self.assertTrue(r.headers["Content-Type"].startswith(
            "application/octet-stream"), r.headers)
        # The sandbox sees the same bytes, and may change the file.
        out = self.ok(self.sid, ["sha256sum", d + "/all.bin"])
        self.assertEqual(out.split()[0], hashlib.sha256(data).hexdigest())
        out = self.ok(self.sid, ["stat", "-c", "%u %s", d + "/all.bin"])
        self.assertEqual(out, f"1000 {len(data)}\n")
        self.ok(self.sid, ["sh", "-c", f"echo more >> {d}/all.bin"])
        self.assertEqual(self.get_ok(self.sid, d + "/all.bin").body,
                         data + b"more\n")
        # PUT replaces the whole file.
        self.put_ok(self.sid, d + "/all.bin", b"short")
        self.assertEqual(self.get_ok(self.sid, d + "/all.bin").body, b"short")

    def test_larger_file(self):
        d = self.fresh_dir()
        data = os.urandom(3 * 1024 * 1024 + 17)
        self.put_ok(self.sid, d + "/big.bin", data)
        self.assertEqual(self.get_ok(self.sid, d + "/big.bin").body, data)
        self.ok(self.sid, ["rm", d + "/big.bin"])

    def test_empty_file(self):
        d = self.fresh_dir()
        doc = self.put_ok(self.sid, d + "/empty", b"")
        self.assertEqual(doc["size"], 0)
        r = self.get_ok(self.sid, d + "/empty")
        self.assertEqual(r.body, b"")
        self.assertEqual(self.ok(self.sid, ["wc", "-c", d + "/empty"]),
                         f"0 {d}/empty\n")
        self.ok(self.sid, ["touch", d + "/made-empty"])
        self.assertEqual(self.get_ok(self.sid, d + "/made-empty").body, b"")

    def test_command_and_api_see_each_other(self):
        d = self.fresh_dir()
        self.put_ok(self.sid, d + "/from-api.txt", b"written by the API\n")
        self.assertEqual(self.ok(self.sid, ["cat", d + "/from-api.txt"]),
                         "written by the API\n")
        self.ok(self.sid, f"printf 'made\\000inside' > {d}/from-cmd.bin")
        self.assertEqual(self.get_ok(self.sid, d + "/from-cmd.bin").body,
                         b"made\x00inside")
        # /tmp is reachable too, and is the sandbox's own /tmp.
        name = "/tmp/f_" + uuid.uuid4().hex[:8]
        self.put_ok(self.sid, name, b"tmp data")
        self.assertEqual(self.ok(self.sid, ["cat", name]), "tmp data")
        self.ok(self.sid, f"echo back > {name}.2")
        self.assertEqual(self.get_ok(self.sid, name + ".2").body, b"back\n")
        # Directories the API made belong to the sandbox user.
        self.ok(self.sid, f"echo x > {d}/writable")

    def test_directory_listing(self):
        d = self.fresh_dir()
        self.put_ok(self.sid, d + "/a.txt", b"aaa")
        self.put_ok(self.sid, d + "/sub/b.txt", b"bb")
        self.ok(self.sid, f"ln -s a.txt {d}/link")
        r = self.get_ok(self.sid, d)
        self.assertTrue(r.headers["Content-Type"].startswith(
            "application/json"), r.headers)
        doc = r.json
        self.assertEqual(doc["path"], d)
        self.assertEqual(doc["type"], "directory")
        self.assertIs(doc["truncated"], False)
        entries = {e["name"]: e for e in doc["entries"]}
        self.assertEqual(set(entries), {"a.txt", "sub", "link"})
        self.assertEqual(entries["a.txt"]["type"], "file")
        self.assertEqual(entries["a.txt"]["size"], 3)
        self.assertEqual(entries["a.txt"]["path"], d + "/a.txt")
        self.assertIsInstance(entries["a.txt"]["modified"], (int, float))
        self.assertEqual(entries["sub"]["type"], "directory")
        self.assertEqual(entries["link"]["type"], "symlink")
        # A plain listing does not descend.
        self.assertNotIn("children", entries["sub"])
        # The workspace root lists too.
        r = self.get_ok(self.sid, "/workspace")
        self.assertIn(d.rsplit("/", 1)[1],
                      {e["name"] for e in r.json["entries"]})

    def test_tree_depth(self):
        d = self.fresh_dir()
        self.put_ok(self.sid, d + "/a/b/c/deep.txt", b"deep")
        self.put_ok(self.sid, d + "/top.txt", b"top")

        def tree(depth=None, path=d):
            url = f"/sandboxes/{self.sid}/tree?path={su.q(path)}"
            if depth is not None:
                url += f"&depth={depth}"
            return call("GET", url)

        def names(entries, prefix=""):
            out = set()
            for e in entries:
                out.add(prefix + e["name"])
                out |= names(e.get("children", []), prefix + e["name"] + "/")
            return out

        r = tree(1)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(names(r.json["entries"]), {"a", "top.txt"})
        r = tree(2)
        self.assertEqual(names(r.json["entries"]), {"a", "a/b", "top.txt"})
        r = tree(4)
        self.assertEqual(names(r.json["entries"]),
                         {"a", "a/b", "a/b/c", "a/b/c/deep.txt", "top.txt"})
        r = tree()
        self.assertEqual(r.status, 200, r)
        self.assertIn("a/b/c", names(r.json["entries"]))
        # The default path is the workspace.
        r = call("GET", f"/sandboxes/{self.sid}/tree?depth=1")
        self.assertEqual(r.status, 200, r)
        self.assertIn(d.rsplit("/", 1)[1], names(r.json["entries"]))
        for bad in ("0", "17", "x", "-1", "1.5"):
            with self.subTest(depth=bad):
                self.assertError(tree(bad), 400, "invalid_argument", "depth")
        r = tree(2, d + "/top.txt")
        self.assertError(r, 400, "invalid_argument")
        r = tree(2, d + "/missing")
        self.assertError(r, 404, "not_found")

    def test_mkdir(self):
        d = self.fresh_dir()
        r = call("POST", f"/sandboxes/{self.sid}/dirs", {"path": d + "/m/n/o"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["path"], d + "/m/n/o")
        out = self.ok(self.sid, ["stat", "-c", "%F %u", d + "/m",
                                 d + "/m/n/o"])
        self.assertEqual(out, "directory 1000\ndirectory 1000\n")
        # Again: fine (mkdir -p).
        r = call("POST", f"/sandboxes/{self.sid}/dirs", {"path": d + "/m/n/o"})
        self.assertEqual(r.status, 201, r)
        # Over a file: refused.
        self.put_ok(self.sid, d + "/file", b"x")
        r = call("POST", f"/sandboxes/{self.sid}/dirs", {"path": d + "/file"})
        self.assertIn(r.status, (400, 409), r)
        self.assertError(r, r.status)
        for body in ({}, {"path": 5}, {"path": ""}, {"path": "/etc/x"}):
            with self.subTest(body=body):
                r = call("POST", f"/sandboxes/{self.sid}/dirs", body)
                self.assertError(r, 400, "invalid_argument")

    def test_delete(self):
        d = self.fresh_dir()
        self.put_ok(self.sid, d + "/f.txt", b"x")
        r = self.fdelete(self.sid, d + "/f.txt")
        self.assertEqual(r.status, 204, r)
        self.assertError(self.fget(self.sid, d + "/f.txt"), 404, "not_found")
        self.assertError(self.fdelete(self.sid, d + "/f.txt"), 404,
                         "not_found")
        # An empty directory goes without recursive.
        self.ok(self.sid, f"mkdir {d}/empty")
        self.assertEqual(self.fdelete(self.sid, d + "/empty").status, 204)
        # A full one needs it.
        self.put_ok(self.sid, d + "/full/x/y.txt", b"y")
        self.put_ok(self.sid, d + "/full/z.txt", b"z")
        r = self.fdelete(self.sid, d + "/full")
        self.assertError(r, 409, "conflict")
        self.assertEqual(self.get_ok(self.sid, d + "/full/z.txt").body, b"z")
        r = self.fdelete(self.sid, d + "/full", recursive=True)
        self.assertEqual(r.status, 204, r)
        self.assertError(self.fget(self.sid, d + "/full"), 404, "not_found")
        self.assertEqual(self.ok(self.sid, f"ls -A {d}"), "")
        # Roots cannot be deleted.
        for root in ("/workspace", "/tmp", "/uploaded_files", "/workspace/."):
            with self.subTest(root=root):
                r = self.fdelete(self.sid, root, recursive=True)
                self.assertError(r, r.status)
                self.assertIn(r.status, (400, 404, 409), r)
        self.assertEqual(self.ok(self.sid, "test -d /workspace && echo y"),
                         "y\n")

    def test_multipart_upload(self):
        d = self.fresh_dir()
        one, two = os.urandom(5000), b"second file\n"
        r = self.upload(su.files_url(self.sid, d + "/up"),
                        [("file", "one.bin", one), ("note", None, b"not a file"),
                         ("file", "two.txt", two)])
        self.assertEqual(r.status, 201, r)
        files = r.json["files"]
        self.assertEqual([(f["name"], f["path"], f["size"]) for f in files],
                         [("one.bin", d + "/up/one.bin", 5000),
                          ("two.txt", d + "/up/two.txt", len(two))])
        self.assertEqual(self.get_ok(self.sid, d + "/up/one.bin").body, one)
        self.assertEqual(self.ok(self.sid, ["cat", d + "/up/two.txt"]),
                         two.decode())
        # Default directory: the workspace.
        name = "default_" + uuid.uuid4().hex[:6] + ".txt"
        r = self.upload(f"/sandboxes/{self.sid}/files", [("f", name, b"d")])
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["files"][0]["path"], "/workspace/" + name)
        self.ok(self.sid, ["rm", "/workspace/" + name])
        # Refused: not multipart, no file part, bad names.
        r = call("POST", su.files_url(self.sid, d), b"raw",
                 extra={"Content-Type": "text/plain"})
        self.assertError(r, 415, "unsupported_media_type")
        r = self.upload(su.files_url(self.sid, d), [("a", None, b"x")])
        self.assertError(r, 400, "invalid_argument")
        for bad in ("../escape.txt", "a/b.txt", "..", "x\\y"):
            with self.subTest(filename=bad):
                r = self.upload(su.files_url(self.sid, d),
                                [("file", bad, b"x")])
                self.assertError(r, 400, "invalid_argument")
        r = self.upload(su.files_url(self.sid, "/etc"), [("f", "x.txt", b"x")])
        self.assertError(r, 400, "invalid_argument")
        self.assertEqual(self.ok(self.sid, "ls /workspace | grep -c escape "
                                           "|| true"), "0\n")

    def test_path_errors(self):
        url = f"/sandboxes/{self.sid}/files"
        self.assertError(call("GET", url), 400, "invalid_argument", "path")
        self.assertError(call("GET", url + "?path="), 400, "invalid_argument",
                         "path")
        self.assertError(call("PUT", url, b"x"), 400, "invalid_argument",
                         "path")
        self.assertError(call("DELETE", url), 400, "invalid_argument", "path")
        for bad in ("/etc/passwd", "/", "/usr/bin/env", "/proc/self/environ",
                    "/workspace/../etc/passwd", "/workspacex/a",
                    "/tmpfoo", "/dev/null", "../../etc/passwd"):
            with self.subTest(path=bad):
                self.assertError(self.fget(self.sid, bad), 400,
                                 "invalid_argument")
                self.assertError(self.put(self.sid, bad, b"x"), 400,
                                 "invalid_argument")
                self.assertError(self.fdelete(self.sid, bad), 400,
                                 "invalid_argument")
        self.assertError(self.fget(self.sid, "/workspace/no/such/file"), 404,
                         "not_found")
        # Relative paths are below /workspace; ".." is resolved lexically.
        name = "rel_" + uuid.uuid4().hex[:8]
        doc = self.put_ok(self.sid, name + "/x.txt", b"relative")
        self.assertEqual(doc["path"], f"/workspace/{name}/x.txt")
        self.assertEqual(self.ok(self.sid, ["cat", f"/workspace/{name}/x.txt"]),
                         "relative")
        self.assertEqual(
            self.get_ok(self.sid, f"/workspace/{name}/../{name}/./x.txt").body,
            b"relative")
        self.assertEqual(self.get_ok(self.sid, f"{name}//x.txt").body,
                         b"relative")
        # A directory cannot be overwritten by PUT.
        self.assertIn(self.put(self.sid, f"/workspace/{name}", b"x").status,
                      (400, 409))
        r = self.fdelete(self.sid, name, recursive=True)
        self.assertEqual(r.status, 204, r)


class SessionUploadTest(su.SbxCase):
    def test_session_upload(self):
        session = "chat_" + uuid.uuid4().hex
        r = call("POST", f"/api/sessions/{session}/initialize", {}, timeout=60)
        self.assertEqual(r.status, 201, r)
        sid = r.json["sandbox_id"]
        self.addCleanup(self.delete_quietly, sid)
        url = f"/api/sandboxes/upload?session_id={session}"
        csv, js = b"a,b\n1,2\n", b'{"k": [1, 2]}'
        r = self.upload(url, [("file", "data.csv", csv),
                              ("file", "Conf.JSON", js)])
        self.assertEqual(r.status, 201, r)
        self.assertEqual([f["path"] for f in r.json["files"]],
                         ["/uploaded_files/data.csv",
                          "/uploaded_files/Conf.JSON"])
        self.assertEqual(self.ok(sid, ["cat", "/uploaded_files/data.csv"]),
                         csv.decode())
        self.assertEqual(self.get_ok(sid, "/uploaded_files/Conf.JSON").body, js)
        self.assertEqual(self.ok(sid, "ls /uploaded_files"),
                         "Conf.JSON\ndata.csv\n")
        for ext in (".txt", ".xlsx", ".parquet"):
            r = self.upload(url, [("file", "f" + ext, b"\x00\x01")])
            self.assertEqual(r.status, 201, r)
        # Anything else is refused, and nothing of the request is written.
        for bad in ("run.sh", "x.csv.exe", "noext", "a.py", ".csv.", "x.CSVX"):
            with self.subTest(filename=bad):
                r = self.upload(url, [("file", "ok.csv", b"1"),
                                      ("file", bad, b"#!/bin/sh\n")])
                self.assertError(r, 415, "unsupported_media_type")
        self.assertNotIn("run.sh", self.ok(sid, "ls /uploaded_files"))
        # Unknown, missing and malformed sessions.
        r = self.upload("/api/sandboxes/upload?session_id=never_" +
                        uuid.uuid4().hex, [("file", "a.csv", b"1")])
        self.assertError(r, 404, "not_found")
        r = self.upload("/api/sandboxes/upload", [("file", "a.csv", b"1")])
        self.assertError(r, 400, "invalid_argument", "session_id")
        r = self.upload("/api/sandboxes/upload?session_id=a%2F..",
                        [("file", "a.csv", b"1")])
        self.assertError(r, 400, "invalid_argument", "session_id")
        # Another subject cannot upload into this session.
        other = sp.create_key()[1]
        r = self.upload(url, [("file", "evil.csv", b"1")], key=other)
        self.assertError(r, 404, "not_found")
        self.assertNotIn("evil", self.ok(sid, "ls /uploaded_files"))
