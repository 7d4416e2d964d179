"""test_storage.py: object storage (handlers/storage*.c, common/sp_store*)
over the real stack, every case on both backends: the stack's own
sp-storage (local: files under the state directory) and one started on
the same socket with the s3 backend against s3rver on loopback
(storage_util.py). Buckets per subject (another's is 404), S3's naming
rules (each 400 names its rule), objects streamed with Content-Type, ETag
and Range kept, listings with prefix, delimiter and cursor paging, the
tree, 409 for a non-empty bucket unless forced, 413 past SP_OBJECT_MAX;
on local, keys never escape the bucket's directory; on s3, a large object
goes in parts and the store going away is 503 with Retry-After and
nothing half-written."""
import glob
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
import unittest
import urllib.parse
import uuid

import sbx_util
import sp
import storage_util
import netns_util

KEY = {"X-API-Key": sp.API_KEY}
OBJECT_MAX = int(os.environ.get("SP_OBJECT_MAX", "5368709120"))


def q(key):
    return urllib.parse.quote(key, safe="/")


def xxh128(data):
    """XXH3-128 of data as the xxhash package's xxhsum prints it."""
    out = subprocess.run(["xxhsum", "-H2", "-"], input=data, check=True,
                         capture_output=True).stdout
    return out.split()[0].decode()


def put(bucket, key, data, ctype=None, headers=None):
    h = dict(KEY, **(headers or {}))
    if ctype:
        h["Content-Type"] = ctype
    return sp.request("PUT", f"/buckets/{bucket}/objects/{q(key)}", body=data,
                      headers=h, timeout=60)


def get(bucket, key, headers=None, method="GET"):
    return sp.request(method, f"/buckets/{bucket}/objects/{q(key)}",
                      headers=dict(KEY, **(headers or {})), timeout=60)


def listing(bucket, **args):
    return sp.get(f"/buckets/{bucket}/objects?" +
                  urllib.parse.urlencode(args), headers=KEY)


class StorageCases:
    """Every storage case; a subclass picks the backend."""

    def bucket(self, headers=None):
        name = "b-" + uuid.uuid4().hex[:12]
        r = sp.post("/buckets", {"name": name}, headers=headers or KEY)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["name"], name)
        return name

    def test_bucket_life(self):
        b = self.bucket()
        r = sp.get("/buckets", headers=KEY)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b, [x["name"] for x in r.json["buckets"]])
        self.assertError(sp.post("/buckets", {"name": b}, headers=KEY), 409,
                         "conflict")
        r = sp.request("DELETE", f"/buckets/{b}", headers=KEY)
        self.assertEqual(r.status, 204, r)
        self.assertNotIn(b, [x["name"] for x in
                             sp.get("/buckets", headers=KEY).json["buckets"]])
        self.assertError(sp.request("DELETE", f"/buckets/{b}", headers=KEY),
                         404, "not_found")

    def test_bucket_names(self):
        cases = {"ab": "bucket_name_length", "a" * 64: "bucket_name_length",
                 "Abc": "bucket_name_characters",
                 "a_b": "bucket_name_characters",
                 "-ab": "bucket_name_edges", "ab.": "bucket_name_edges",
                 "a..b": "bucket_name_adjacent_periods",
                 "192.168.5.4": "bucket_name_ip_address",
                 "xn--abc": "bucket_name_reserved_prefix",
                 "sthree-abc": "bucket_name_reserved_prefix",
                 "abc-s3alias": "bucket_name_reserved_suffix",
                 "abc--ol-s3": "bucket_name_reserved_suffix"}
        for name, rule in cases.items():
            r = sp.post("/buckets", {"name": name}, headers=KEY)
            err = self.assertError(r, 400, "invalid_argument", "name")
            self.assertEqual(r.json["error"]["rule"], rule, name)
        self.assertError(sp.post("/buckets", {}, headers=KEY), 400,
                         "invalid_argument", "name")
        self.assertError(sp.post("/buckets", {"name": 5}, headers=KEY), 400,
                         "invalid_argument", "name")
        for name in ("abc", "a.b-c.9", "9" * 63):
            r = sp.post("/buckets", {"name": name}, headers=KEY)
            self.assertIn(r.status, (201, 409), r)
            sp.request("DELETE", f"/buckets/{name}?force=true", headers=KEY)

    def test_object_round_trip(self):
        b = self.bucket()
        data = os.urandom(300000)
        r = put(b, "dir/sub/blob.bin", data, "application/x-test")
        self.assertEqual(r.status, 200, r)
        doc = r.json
        self.assertEqual(doc["size"], len(data))
        self.assertEqual(doc["key"], "dir/sub/blob.bin")
        if self.backend == "local":
            # The local ETag is XXH3-128 of the bytes (xxhsum -H2 agrees).
            self.assertEqual(doc["etag"], xxh128(data))
        self.assertEqual(r.headers["ETag"], '"%s"' % doc["etag"])
        r = get(b, "dir/sub/blob.bin")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, data)
        self.assertEqual(r.headers["Content-Type"], "application/x-test")
        self.assertEqual(r.headers["ETag"], '"%s"' % doc["etag"])
        r = get(b, "dir/sub/blob.bin", method="HEAD")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["Content-Length"], str(len(data)))
        self.assertEqual(r.body, b"")
        # Overwritten whole; an empty object is an object.
        self.assertEqual(put(b, "dir/sub/blob.bin", b"new").status, 200)
        self.assertEqual(get(b, "dir/sub/blob.bin").body, b"new")
        self.assertEqual(put(b, "empty", b"").status, 200)
        r = get(b, "empty")
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(r.headers["Content-Type"], "application/octet-stream")
        r = sp.request("DELETE", f"/buckets/{b}/objects/empty", headers=KEY)
        self.assertEqual(r.status, 204, r)
        self.assertError(get(b, "empty"), 404, "not_found")
        self.assertEqual(sp.request("DELETE", f"/buckets/{b}/objects/empty",
                                    headers=KEY).status, 204)

    def test_keys_as_sent(self):
        b = self.bucket()
        keys = ["folder/", "sp ace/ü/%41", "x?y#z"]
        if self.backend == "local":
            keys += ["a//b", "a" * 1024, "déjà/" + "é" * 300]
        else:
            # s3rver keeps objects as files: no "//", no part of a key
            # over 255 bytes.
            keys += ["a" * 200 + "/" + "é" * 100]
            # The key of the real bucket has the bucket's prefix in front:
            # a key that would make it longer than S3's 1024 is refused.
            r = put(b, "a" * 1024, b"x")
            self.assertError(r, 400, "invalid_argument", "key")
            self.assertEqual(r.json["error"]["rule"], "key_length")
        for k in keys:
            self.assertEqual(put(b, k, k.encode()).status, 200, k)
        for k in keys:
            r = get(b, k)
            self.assertEqual((r.status, r.body), (200, k.encode()), k)
        got = [o["key"] for o in listing(b).json["objects"]]
        self.assertEqual(got, sorted(keys, key=lambda s: s.encode()))

    def test_key_rules(self):
        b = self.bucket()
        cases = {"a/../b": "key_dot_segment", "..": "key_dot_segment",
                 "a/./b": "key_dot_segment", "x/..": "key_dot_segment",
                 "/etc/passwd": "key_absolute", "a\x01b": "key_control_character",
                 "a\x00b": "key_control_character", "a" * 1025: "key_length"}
        for k, rule in cases.items():
            # Sent encoded, so the bytes reach the key as they are; nginx
            # still resolves dot segments in its own view of the path,
            # which may then be no object route at all (404).
            path = f"/buckets/{b}/objects/" + urllib.parse.quote(k, safe="")
            r = sp.request("PUT", path, body=b"x", headers=KEY)
            if rule == "key_dot_segment" and r.status == 404:
                continue
            if "\x00" in k:  # nginx refuses a NUL in a path itself
                self.assertError(r, 400, "invalid_argument")
                continue
            self.assertError(r, 400, "invalid_argument", "key")
            self.assertEqual(r.json["error"]["rule"], rule, k)
        # Unencoded, nginx resolves the dot segments first: what is left
        # is no object route (404), or a key that says what it was (400).
        for path in ("..", "x/..", "a/../b", "a/./b"):
            r = sp.request("PUT", f"/buckets/{b}/objects/{path}", body=b"x",
                           headers=KEY)
            self.assertIn(r.status, (400, 404, 405), (path, r))
        r = sp.request("PUT", f"/buckets/{b}/objects/%FF%FE", body=b"x",
                       headers=KEY)
        self.assertEqual(r.json["error"]["rule"], "key_utf8", r)
        self.assertEqual(listing(b).json["objects"], [])

    def test_range(self):
        b = self.bucket()
        data = bytes(range(256)) * 40
        put(b, "r", data)
        for rng, want in (("bytes=0-9", data[:10]), ("bytes=100-", data[100:]),
                          ("bytes=-5", data[-5:]),
                          ("bytes=10000-99999", data[10000:])):
            r = get(b, "r", {"Range": rng})
            self.assertEqual(r.status, 206, (rng, r))
            self.assertEqual(r.body, want, rng)
            first = len(data) - len(want)
            self.assertEqual(r.headers["Content-Range"],
                             f"bytes {first}-{len(data) - 1}/{len(data)}"
                             if rng != "bytes=0-9" else
                             f"bytes 0-9/{len(data)}")
        r = get(b, "r", {"Range": "bytes=20000-"})
        self.assertError(r, 416, "range_not_satisfiable")
        self.assertEqual(r.headers["Content-Range"], f"bytes */{len(data)}")
        # Several ranges, or another unit: the whole object.
        r = get(b, "r", {"Range": "bytes=0-1,5-6"})
        self.assertEqual((r.status, r.body), (200, data))

    def test_listing_delimiter_and_cursor(self):
        b = self.bucket()
        keys = ["a/1", "a/2", "a/b/3", "b", "c/1", "c/2", "d"]
        for k in keys:
            self.assertEqual(put(b, k, b"x").status, 200)
        r = listing(b, delimiter="/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual([o["key"] for o in r.json["objects"]], ["b", "d"])
        self.assertEqual(r.json["prefixes"], ["a/", "c/"])
        self.assertIs(r.json["truncated"], False)
        self.assertIsNone(r.json["next_cursor"])
        r = listing(b, prefix="a/", delimiter="/")
        self.assertEqual([o["key"] for o in r.json["objects"]], ["a/1", "a/2"])
        self.assertEqual(r.json["prefixes"], ["a/b/"])
        o = r.json["objects"][0]
        self.assertEqual(set(o) >= {"key", "size", "etag", "last_modified"},
                         True, o)
        # Pages of two, with and without the delimiter, lose and repeat
        # nothing.
        for args, want in (({}, keys), ({"delimiter": "/"},
                                        ["a/", "b", "c/", "d"])):
            seen, cursor = [], None
            for _ in range(10):
                a = dict(args, limit=2)
                if cursor:
                    a["cursor"] = cursor
                page = listing(b, **a).json
                seen += [o["key"] for o in page["objects"]] + page["prefixes"]
                cursor = page["next_cursor"]
                if not page["truncated"]:
                    break
            self.assertEqual(sorted(seen), sorted(want), args)
        for bad in ({"limit": "0"}, {"limit": "1001"}, {"limit": "x"}):
            self.assertError(listing(b, **bad), 400, "invalid_argument",
                             "limit")
        self.assertError(listing(b, prefix="/x"), 400, "invalid_argument",
                         "prefix")

    def test_tree(self):
        b = self.bucket()
        for k in ("src/main.c", "src/lib/a.c", "README", "docs/"):
            put(b, k, b"t")
        r = sp.get(f"/buckets/{b}/tree", headers=KEY)
        self.assertEqual(r.status, 200, r)
        t = r.json
        names = {c["name"]: c for c in t["children"]}
        self.assertEqual(set(names), {"src", "README", "docs"})
        self.assertEqual(names["README"]["type"], "file")
        self.assertEqual(names["docs"]["type"], "directory")
        src = {c["name"]: c for c in names["src"]["children"]}
        self.assertEqual(src["main.c"]["path"], "src/main.c")
        self.assertEqual(src["lib"]["children"][0]["path"], "src/lib/a.c")
        r = sp.get(f"/buckets/{b}/tree?prefix=src/", headers=KEY)
        self.assertEqual({c["name"] for c in r.json["children"]},
                         {"main.c", "lib"})

    def test_delete_nonempty(self):
        b = self.bucket()
        put(b, "k", b"v")
        self.assertError(sp.request("DELETE", f"/buckets/{b}", headers=KEY),
                         409, "conflict")
        self.assertEqual(get(b, "k").body, b"v")
        self.assertError(sp.request("DELETE", f"/buckets/{b}?force=maybe",
                                    headers=KEY), 400, "invalid_argument")
        r = sp.request("DELETE", f"/buckets/{b}?force=true", headers=KEY)
        self.assertEqual(r.status, 204, r)
        # Made again, it is empty.
        self.assertEqual(sp.post("/buckets", {"name": b}, headers=KEY).status,
                         201)
        self.assertEqual(listing(b).json["objects"], [])
        sp.request("DELETE", f"/buckets/{b}", headers=KEY)

    def test_other_subject(self):
        b = self.bucket()
        put(b, "secret", b"mine")
        _, key2, _ = sp.create_key()
        other = {"X-API-Key": key2}
        self.assertNotIn(b, [x["name"] for x in
                             sp.get("/buckets", headers=other).json["buckets"]])
        for method, path in (("GET", f"/buckets/{b}/objects/secret"),
                             ("HEAD", f"/buckets/{b}/objects/secret"),
                             ("PUT", f"/buckets/{b}/objects/secret"),
                             ("DELETE", f"/buckets/{b}/objects/secret"),
                             ("GET", f"/buckets/{b}/objects"),
                             ("GET", f"/buckets/{b}/tree"),
                             ("DELETE", f"/buckets/{b}?force=true")):
            r = sp.request(method, path, body=b"x" if method == "PUT" else
                           None, headers=other)
            self.assertEqual(r.status, 404, (method, path, r))
        # The same name is the other subject's own bucket.
        self.assertEqual(sp.post("/buckets", {"name": b},
                                 headers=other).status, 201)
        self.assertError(get(b, "secret", {"X-API-Key": key2}), 404)
        self.assertEqual(get(b, "secret").body, b"mine")
        self.assertEqual(sp.get("/buckets", headers={}).status, 401)

    def test_too_large(self):
        b = self.bucket()
        # Announced too large: refused before any byte is read.
        s = sp.raw(f"PUT /buckets/{b}/objects/big HTTP/1.1\r\nHost: x\r\n"
                   f"X-API-Key: {sp.API_KEY}\r\n"
                   f"Content-Length: {OBJECT_MAX + 1}\r\n"
                   "Connection: close\r\n\r\n".encode() + b"x" * 1000)
        self.assertEqual(sp.raw_status(s), 413, s[:300])
        self.assertIn(b'"payload_too_large"', s)
        if OBJECT_MAX <= 64 * 1024 * 1024:
            # Streamed (chunked, no length) past the maximum.
            conn = http.client.HTTPConnection(sp.HOST, sp.PORT, timeout=60)
            conn.putrequest("PUT", f"/buckets/{b}/objects/big")
            conn.putheader("X-API-Key", sp.API_KEY)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            chunk = b"y" * (1 << 20)
            try:
                for _ in range(OBJECT_MAX // len(chunk) + 2):
                    conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                conn.send(b"0\r\n\r\n")
            except OSError:
                pass
            r = conn.getresponse()
            self.assertEqual(r.status, 413)
            conn.close()
        self.assertError(get(b, "big"), 404, "not_found")
        self.assertEqual(listing(b).json["objects"], [])

    def test_client_gone_mid_upload(self):
        """A client that goes away half-way through its body leaves no
        object, whether it announced a length or sent chunks; what was
        there before stays."""
        b = self.bucket()
        self.assertEqual(put(b, "kept", b"old").status, 200)
        for key, framing in (("cut-len", "Content-Length: 1000000\r\n"),
                             ("cut-chunked", "Transfer-Encoding: chunked\r\n"),
                             ("kept", "Transfer-Encoding: chunked\r\n")):
            s = socket.create_connection((sp.HOST, sp.PORT), timeout=10)
            s.sendall(f"PUT /buckets/{b}/objects/{key} HTTP/1.1\r\nHost: x\r\n"
                      f"X-API-Key: {sp.API_KEY}\r\n{framing}\r\n".encode())
            part = b"z" * 100000
            if "chunked" in framing:
                part = b"%x\r\n%s\r\n" % (len(part), part)
            s.sendall(part)
            time.sleep(0.3)
            s.close()
        time.sleep(0.5)
        self.assertError(get(b, "cut-len"), 404, "not_found")
        self.assertError(get(b, "cut-chunked"), 404, "not_found")
        self.assertEqual(get(b, "kept").body, b"old")
        self.assertEqual([o["key"] for o in listing(b).json["objects"]],
                         ["kept"])


    def presign(self, b, key, method="GET", **kw):
        r = sp.post(f"/buckets/{b}/presign", dict(key=key, method=method, **kw),
                    headers=KEY)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["method"], method)
        self.assertTrue(r.json["url"].endswith(r.json["path"]), r.json)
        return r.json["path"]

    def test_presign(self):
        b = self.bucket()
        up = self.presign(b, "p/ü x.txt", "PUT", expires_in=600)
        r = sp.request("PUT", up, body=b"presigned",
                       headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 200, r)
        down = self.presign(b, "p/ü x.txt")
        r = sp.request("GET", down)
        self.assertEqual((r.status, r.body), (200, b"presigned"), r)
        self.assertEqual(r.headers["Content-Type"], "text/plain")
        # The method, key, signature and time are all signed.
        self.assertError(sp.request("PUT", down, body=b"x"), 401,
                         "unauthenticated")
        self.assertError(sp.request("GET", up), 401, "unauthenticated")
        other = down.replace("p/%C3%BC%20x.txt", "p/other")
        self.assertNotEqual(other, down)
        self.assertError(sp.request("GET", other), 401, "unauthenticated")
        sig = down[-1]
        bad = down[:-1] + ("0" if sig != "0" else "1")
        self.assertError(sp.request("GET", bad), 401, "unauthenticated")
        longer = down.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200")
        self.assertNotEqual(longer, down)
        self.assertError(sp.request("GET", longer), 401, "unauthenticated")
        self.assertError(sp.request(
            "GET", down, headers={"Host": "elsewhere.test"}), 401,
            "unauthenticated")
        # Not a credential for any other route.
        self.assertError(sp.request("GET", f"/buckets/{b}/objects?" +
                                    down.split("?", 1)[1]), 401)
        short = self.presign(b, "p/ü x.txt", expires_in=1)
        sp.wait_until(lambda: sp.request("GET", short).status == 401, 5)
        self.assertError(sp.request("GET", short), 401, "unauthenticated")
        # Bad requests.
        for body, field in (({"key": "k", "method": "DELETE"}, "method"),
                            ({"key": "k", "expires_in": 0}, "expires_in"),
                            ({"key": "k", "expires_in": 604801}, "expires_in"),
                            ({"key": "../k"}, "key"), ({}, "key")):
            self.assertError(sp.post(f"/buckets/{b}/presign", body,
                                     headers=KEY), 400, "invalid_argument",
                             field)
        _, key2, _ = sp.create_key()
        self.assertError(sp.post(f"/buckets/{b}/presign", {"key": "k"},
                                 headers={"X-API-Key": key2}), 404)


    def test_import_export(self):
        b = self.bucket()
        sid = self.new_sandbox()["id"]
        blob = os.urandom(200000)
        for k, v in (("data/a.txt", b"alpha"), ("data/sub/b.bin", blob),
                     ("data/folder/", b""), ("other/c", b"gamma")):
            self.assertEqual(put(b, k, v).status, 200, k)
        imp = f"/sandboxes/{sid}/files/import"
        r = sp.post(imp, {"bucket": b, "prefix": "data/",
                          "to": "/workspace/in"}, headers=KEY, timeout=60)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(f["path"] for f in r.json["files"]),
                         ["/workspace/in/a.txt", "/workspace/in/sub/b.bin"])
        self.assertEqual(r.json["bytes"], 5 + len(blob))
        got = sbx_util.call("GET", sbx_util.files_url(
            sid, "/workspace/in/sub/b.bin"))
        self.assertEqual((got.status, got.body), (200, blob))
        r = sp.post(imp, {"bucket": b, "keys": ["other/c"], "to": "/workspace/k"},
                    headers=KEY, timeout=60)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.ok(sid, "cat /workspace/k/other/c"), "gamma")
        self.ok(sid, "mkdir -p /workspace/out/d && printf hi > /workspace/out/d/x"
                " && printf yo > /workspace/out/y"
                " && ln -s /etc/passwd /workspace/out/link")
        r = sp.post(f"/sandboxes/{sid}/files/export",
                    {"bucket": b, "from": "/workspace/out", "prefix": "exp/"},
                    headers=KEY, timeout=60)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(o["key"] for o in r.json["objects"]),
                         ["exp/d/x", "exp/y"])
        self.assertEqual(get(b, "exp/d/x").body, b"hi")
        self.assertError(get(b, "exp/link"), 404)
        # As a stream of progress events, then the same answer.
        ndjson = dict(KEY, Accept="application/x-ndjson")
        for path, body, n in ((imp, {"bucket": b, "prefix": "data/",
                                     "to": "/workspace/again"}, 2),
                              (f"/sandboxes/{sid}/files/export",
                               {"bucket": b, "from": "/workspace/out",
                                "prefix": "exp2/"}, 2)):
            r = sp.post(path, body, headers=ndjson, timeout=60)
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.headers["Content-Type"].startswith(
                "application/x-ndjson"), r.headers)
            lines = [json.loads(x) for x in r.body.splitlines()]
            self.assertEqual([x["type"] for x in lines],
                             ["progress"] * n + ["result"], lines)
            self.assertEqual([x["data"]["done"] for x in lines[:n]],
                             list(range(1, n + 1)))
            self.assertEqual({x["data"]["total"] for x in lines[:n]}, {n})
            result = lines[-1]["data"]
            self.assertEqual(len(result.get("files", result.get("objects"))),
                             n, result)
        self.assertEqual(get(b, "exp2/y").body, b"yo")
        # A result far larger than one progress event still comes whole.
        many = [f"many/{'n' * 150}/{'m' * 150}/{i:02d}" for i in range(40)]
        for k in many:
            self.assertEqual(put(b, k, b"m").status, 200)
        r = sp.post(imp, {"bucket": b, "prefix": "many/", "to": "/workspace/m"},
                    headers=ndjson, timeout=120)
        lines = [json.loads(x) for x in r.body.splitlines()]
        self.assertEqual([x["type"] for x in lines],
                         ["progress"] * len(many) + ["result"], lines[-1:])
        self.assertEqual(sorted(f["key"] for f in lines[-1]["data"]["files"]),
                         many)
        # A failure half-way ends the stream with the error.
        r = sp.post(imp, {"bucket": b, "keys": ["data/a.txt", "other/c"],
                          "to": "/etc"}, headers=ndjson, timeout=60)
        lines = [json.loads(x) for x in r.body.splitlines()]
        self.assertIn("error", lines[-1], lines)

    def test_import_export_refused(self):
        b = self.bucket()
        put(b, "k", b"v")
        sid = self.new_sandbox()["id"]
        imp = f"/sandboxes/{sid}/files/import"
        _, key2, _ = sp.create_key()
        for body, status, field in (
                ({"bucket": b, "prefix": "", "keys": ["k"], "to": "/workspace"},
                 400, "keys"),
                ({"bucket": b, "keys": [], "to": "/workspace"}, 400, "keys"),
                ({"bucket": b, "keys": ["../k"], "to": "/workspace"}, 400,
                 "keys"),
                ({"bucket": "B!", "to": "/workspace"}, 400, "bucket"),
                ({"bucket": b}, 400, "to"),
                ({"bucket": b, "keys": ["missing"], "to": "/workspace"}, 404,
                 None),
                ({"bucket": "no-such-bucket", "to": "/workspace"}, 404, None)):
            r = sp.post(imp, body, headers=KEY, timeout=60)
            self.assertError(r, status, None, field)
        # Outside the sandbox's roots: the helper's rule for every path.
        r = sp.post(imp, {"bucket": b, "keys": ["k"], "to": "/etc"},
                    headers=KEY, timeout=60)
        self.assertEqual(r.status, 400, r)
        # Another's sandbox, another's bucket.
        self.assertError(sp.post(imp, {"bucket": b, "keys": ["k"],
                                       "to": "/workspace"},
                                 headers={"X-API-Key": key2}), 404)
        self.assertError(sp.post(f"/sandboxes/{sid}/files/export",
                                 {"bucket": b, "from": "/nonexistent-dir"},
                                 headers=KEY, timeout=60), 400)

    def test_import_urls_refused(self):
        """URLs are fetched from the host: never to it, its networks or
        link-local services (the sandboxes' egress rules); a fetch from a
        public-looking address is test_import_urls_fetched."""
        sid = self.new_sandbox()["id"]
        imp = f"/sandboxes/{sid}/files/import"
        for url, rule in ((f"http://127.0.0.1:{sp.PORT}/ping", "url_not_public"),
                          (f"http://localhost:{sp.PORT}/ping", "url_not_public"),
                          ("http://10.1.2.3/x", "url_not_public"),
                          ("http://169.254.169.254/latest", "url_not_public"),
                          ("http://[::1]/x", "url_not_public"),
                          ("http://[::ffff:127.0.0.1]/x", "url_not_public"),
                          ("file:///etc/passwd", "url_scheme"),
                          ("ftp://198.51.100.7/x", "url_scheme"),
                          ("http://u:p@198.51.100.7/x", "url_malformed")):
            r = sp.post(imp, {"urls": [url], "to": "/workspace"}, headers=KEY,
                        timeout=60)
            self.assertError(r, 400, "invalid_argument", "urls")
            self.assertEqual(r.json["error"]["rule"], rule, url)
        for urls in ([], "http://x", [5], ["http://198.51.100.7/"] * 17):
            self.assertError(sp.post(imp, {"urls": urls, "to": "/workspace"},
                                     headers=KEY), 400, "invalid_argument",
                             "urls")
        self.assertEqual(self.ok(sid, "ls /workspace"), "")


class UrlImportTest(sbx_util.SbxCase):
    """URL imports that are fetched: a server at a TEST-NET-2 address in a
    network namespace (netns_util), which the egress check allows."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data = os.urandom(300000)
        cls.web = netns_util.WebServer()
        cls.web.start({"blob.bin": cls.data, "notes.txt": b"hello url\n"})
        cls.addClassCleanup(cls.web.stop)

    def test_import_urls_fetched(self):
        sid = self.new_sandbox()["id"]
        imp = f"/sandboxes/{sid}/files/import"
        r = sp.post(imp, {"urls": [self.web.url("blob.bin"),
                                   self.web.url("notes.txt")],
                          "to": "/workspace/in"}, headers=KEY, timeout=60)
        self.assertEqual(r.status, 200, r)
        got = {f["path"]: f["size"] for f in r.json["files"]}
        self.assertEqual(got, {"/workspace/in/blob.bin": len(self.data),
                               "/workspace/in/notes.txt": 10}, r.json)
        self.assertEqual(r.json["bytes"], len(self.data) + 10)
        self.assertEqual(self.ok(sid, "cat /workspace/in/notes.txt"),
                         "hello url\n")
        self.assertEqual(
            self.ok(sid, "sha256sum < /workspace/in/blob.bin").split()[0],
            hashlib.sha256(self.data).hexdigest())
        # A missing file is the server's 404, named; nothing more written.
        r = sp.post(imp, {"urls": [self.web.url("absent")],
                          "to": "/workspace/other"}, headers=KEY, timeout=60)
        self.assertError(r, 502, "bad_gateway", "urls")
        self.assertIn("urls[0] could not be fetched (HTTP 404)",
                      r.json["error"]["message"])
        self.assertEqual(self.ok(sid, "ls /workspace"), "in\n")


class TestStorageLocal(StorageCases, sbx_util.SbxCase):
    backend = "local"

    def test_no_escape(self):
        """Keys are file names made of the key, never paths: nothing is
        written outside the bucket's directory, whatever the key."""
        b = self.bucket()
        root = os.path.join(sp.STATE, "storage")

        def shallow():
            # The state's top levels (its template trees are large) and
            # everything under storage/.
            return set(glob.glob(sp.STATE + "/*") + glob.glob(sp.STATE + "/*/*")
                       + glob.glob(root + "/**", recursive=True))
        before = shallow()
        for k in ("..%2F..%2Fescaped", "a%2F..%2F..%2F..%2Fescaped",
                  "%2E%2E/%2E%2E/escaped", "a/..%2f..%2fescaped"):
            sp.request("PUT", f"/buckets/{b}/objects/{k}", body=b"e",
                       headers=KEY)
        ok = ["..a/..b", "...", "a/.../b", ".hidden", ".t_x"]
        for k in ok:
            self.assertEqual(put(b, k, b"v").status, 200, k)
        after = shallow()
        new = [p for p in after - before
               if not p.startswith((sp.STATE + "/log", sp.STATE + "/redis",
                                    sp.STATE + "/run", sp.STATE + "/spool",
                                    sp.STATE + "/test-out"))]
        self.assertTrue(new)
        for p in new:
            self.assertTrue(p.startswith(root + "/"), p)
            self.assertEqual(os.path.dirname(os.path.dirname(p)),
                             os.path.dirname(os.path.dirname(new[0])), p)
        self.assertEqual(sorted(o["key"] for o in listing(b).json["objects"]),
                         sorted(ok, key=lambda s: s.encode()))
        self.assertFalse([p for p in after if p.endswith("escaped")])


    def test_leftovers_swept(self):
        """A temporary file a killed PUT left is removed at the next start
        once it is an hour old; a younger one (a PUT under way) is not."""
        b = self.bucket()
        self.assertEqual(put(b, "k", b"v").status, 200)
        [bdir] = glob.glob(os.path.join(sp.STATE, "storage", "*", b))
        old, young = os.path.join(bdir, ".tstale"), os.path.join(bdir, ".tyoung")
        for p in (old, young):
            with open(p, "wb") as f:
                f.write(b"partial")
        os.utime(old, (time.time() - 7200, time.time() - 7200))
        pid = sp.read_pid("sp-storage")
        os.kill(pid, signal.SIGKILL)
        self.assertIsNotNone(sp.restarted("sp-storage", pid))
        sp.wait_until(lambda: sp.get("/buckets", headers=KEY).status == 200, 5)
        self.assertFalse(os.path.exists(old))
        self.assertTrue(os.path.exists(young))
        os.unlink(young)
        self.assertEqual(get(b, "k").body, b"v")


class TestStorageS3(StorageCases, sbx_util.SbxCase):
    backend = "s3"

    @classmethod
    def setUpClass(cls):
        if not os.access(storage_util.S3RVER, os.X_OK):
            raise unittest.SkipTest("tests/s3 not installed (npm ci there)")
        cls.store = storage_util.S3Storage(sp.PORT + 1)
        cls.store.start()

    @classmethod
    def tearDownClass(cls):
        cls.store.stop()

    def test_multipart(self):
        b = self.bucket()
        data = os.urandom(11 * 1024 * 1024 + 7)  # three parts of 5 MiB
        r = put(b, "big/blob", data, "application/x-big")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["size"], len(data))
        self.assertEqual(r.headers["ETag"], '"%s"' % r.json["etag"])
        r = get(b, "big/blob")
        self.assertEqual(hashlib.sha256(r.body).digest(),
                         hashlib.sha256(data).digest())
        r = get(b, "big/blob", {"Range": "bytes=5242870-5242889"})
        self.assertEqual(r.body, data[5242870:5242890])

    def test_hostile_listing(self):
        """Keys the S3 service lists under a bucket that are no valid key
        there (written to the real bucket by someone else: control
        characters) are not listed."""
        b = self.bucket()
        self.assertEqual(put(b, "fine", b"f").status, 200)
        # s3rver keeps an object as files named after its key.
        [bdir] = {os.path.dirname(p) for p in glob.glob(
            os.path.join(self.store.s3.dir, "**", b, "fine*"), recursive=True)}
        real = os.path.relpath(bdir, os.path.join(self.store.s3.dir,
                                                  storage_util.S3_BUCKET))
        s3 = (f"http://127.0.0.1:{self.store.s3.port}/"
              f"{storage_util.S3_BUCKET}/{real}/")
        for k in ("ctl%01x", "del%7Fx"):
            subprocess.run(
                ["curl", "-sS", "-f", "-o", "/dev/null",
                 "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
                 f"{storage_util.S3_ACCESS}:{storage_util.S3_SECRET}", "-H",
                 "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-T", "/dev/null",
                 s3 + k], check=True)
        self.assertEqual([o["key"] for o in listing(b).json["objects"]],
                         ["fine"])

    def test_store_down(self):
        """The S3 service gone: 503 with Retry-After, and what was there
        stays as it was; back, everything works again."""
        b = self.bucket()
        self.assertEqual(put(b, "kept", b"old").status, 200)
        self.store.s3.stop()
        try:
            for r in (put(b, "kept", b"new"), put(b, "fresh", b"x" * 6000000),
                      get(b, "kept"), listing(b)):
                self.assertError(r, 503, "unavailable")
                self.assertIn("Retry-After", r.headers)
        finally:
            self.store.s3.start()
        self.assertEqual(get(b, "kept").body, b"old")
        self.assertError(get(b, "fresh"), 404, "not_found")
        self.assertEqual([o["key"] for o in listing(b).json["objects"]],
                         ["kept"])


if __name__ == "__main__":
    unittest.main()
