"""test_redis_memory.py: Redis memory stays bounded (issue 10, part 3).

File bodies travel between the handlers and the helper through the spool
($SP_STATE_DIR/spool, common/sp_spool.h), never through Redis: large
uploads (raw PUT and multipart) and their reads leave Redis' used_memory
where it was, the job streams empty and the spool empty. Job entries are
deleted once handled, also the dropped and malformed ones. A job sent by
hand with a hostile spool name (a path, a link or a hard link planted in
the spool, a FIFO, a wrong length) is refused and touches nothing outside
the spool. Our own Redis runs with maxmemory, noeviction and AOF
rewrites; /health shows its memory."""
import hashlib
import json
import os
import stat
import time
import uuid

import sp
import sbx_util as su

MiB = 1024 * 1024
SPOOL = os.path.join(sp.STATE, "spool")
# How much Redis may grow while 96 MiB of files go through (the streams'
# and records' own bookkeeping is a few KiB).
GROWTH_MAX = 4 * MiB


def used_memory():
    for line in su.redis("INFO", "memory"):
        if line.startswith("used_memory:"):
            return int(line.split(":", 1)[1])
    raise AssertionError("INFO memory has no used_memory")


def helper_id():
    ids = su.redis("ZRANGE", su.PREFIX + "helpers", "0", "-1")
    if not ids:
        raise AssertionError("no helper is registered")
    return ids[0]


def job_streams():
    return [su.PREFIX + "jobs", su.PREFIX + "hjobs:" + helper_id()]


def stream_lengths():
    return [int((su.redis("XLEN", k) or ["0"])[0]) for k in job_streams()]


def spool_entries():
    return sorted(os.listdir(SPOOL))


def send_job(op, args, wait_s=5, raw_args=None):
    """Send a job by hand to the helper's own stream and wait up to wait_s
    for its answer; returns the answer's JSON (None if none came)."""
    rid = "rid_" + uuid.uuid4().hex
    deadline = int(time.time() * 1000) + wait_s * 1000
    su.redis("XADD", su.PREFIX + "hjobs:" + helper_id(), "*", "op", op,
             "rid", rid, "deadline", str(deadline), "args",
             raw_args if raw_args is not None else json.dumps(args))
    out = su.redis("BLPOP", su.PREFIX + "reply:" + rid, str(wait_s))
    return json.loads(out[1]) if len(out) >= 2 else None


def size_bytes(text):
    """Bytes of a Redis size ("1gb", "512mb", "1000")."""
    units = {"k": 1024, "m": MiB, "g": 1024 * MiB}
    t = text.lower().rstrip("b")
    return int(t[:-1]) * units[t[-1]] if t[-1] in units else int(t)


class RedisMemoryTest(su.SbxCase):
    @classmethod
    def setUpClass(cls):
        cls.sid = cls.class_sandbox({"limits": {"disk_mb": 512}})

    def settled(self):
        """Wait until the job streams and the spool are empty; assert
        it."""
        ok = sp.wait_until(lambda: stream_lengths() == [0, 0] and
                           not spool_entries(), 10, 0.2)
        self.assertTrue(ok, f"streams {stream_lengths()}, spool "
                            f"{spool_entries()}")

    def test_large_files_leave_redis_flat(self):
        self.settled()
        before = used_memory()
        d = "/workspace/big_" + uuid.uuid4().hex[:8]
        files = {f"{d}/put{i}.bin": os.urandom(16 * MiB) for i in range(4)}
        for path, data in files.items():
            doc = self.put_ok(self.sid, path, data)
            self.assertEqual(doc["size"], len(data))
        parts = {f"mp{i}.bin": os.urandom(16 * MiB) for i in range(2)}
        r = self.upload(su.files_url(self.sid, d + "/mp"),
                        [("file", name, data) for name, data in
                         parts.items()])
        self.assertEqual(r.status, 201, r)
        files.update({f"{d}/mp/{n}": data for n, data in parts.items()})
        for path, data in files.items():
            with self.subTest(path=path):
                back = self.fget(self.sid, path, timeout=60)
                self.assertEqual(back.status, 200, back)
                self.assertEqual(hashlib.sha256(back.body).hexdigest(),
                                 hashlib.sha256(data).hexdigest())
        out = self.ok(self.sid, ["sh", "-c", f"cat {d}/put0.bin | sha256sum"])
        self.assertEqual(out.split()[0],
                         hashlib.sha256(files[f"{d}/put0.bin"]).hexdigest())
        self.settled()
        grown = used_memory() - before
        self.assertLess(grown, GROWTH_MAX,
                        f"Redis grew by {grown} bytes for "
                        f"{sum(map(len, files.values()))} bytes of files")
        self.ok(self.sid, ["rm", "-rf", d])

    def test_failed_upload_leaves_no_spool_file(self):
        # The helper refuses (a path outside the roots): the handler still
        # removes its spool file.
        r = self.put(self.sid, "/etc/nope", b"x" * 4096)
        self.assertError(r, 400, "invalid_argument")
        r = self.fget(self.sid, "/workspace/no_such_" + uuid.uuid4().hex)
        self.assertError(r, 404, "not_found")
        self.settled()

    def test_dropped_and_malformed_jobs_are_deleted(self):
        stream = su.PREFIX + "hjobs:" + helper_id()
        # Past its deadline, no rid, args that are no JSON object.
        su.redis("XADD", stream, "*", "op", "file_read", "rid",
                 "rid_" + uuid.uuid4().hex, "deadline", "1", "args", "{}")
        su.redis("XADD", stream, "*", "op", "usage", "args", "{}")
        su.redis("XADD", stream, "*", "garbage", "x")
        self.assertIsNone(send_job("usage", None, wait_s=2,
                                   raw_args="[not json"))
        self.settled()

    def test_redis_is_capped(self):
        # The test stack's Redis is the launcher's own (cmd_test).
        want = size_bytes(os.environ.get("SP_REDIS_MAXMEMORY", "1gb"))
        conf = dict(zip(*[iter(su.redis(
            "CONFIG", "GET", "maxmemory*"))] * 2))
        self.assertEqual(int(conf["maxmemory"]), want)
        self.assertEqual(conf["maxmemory-policy"], "noeviction")
        conf = dict(zip(*[iter(su.redis(
            "CONFIG", "GET", "auto-aof-rewrite-*"))] * 2))
        self.assertEqual(conf["auto-aof-rewrite-percentage"], "100")
        self.assertEqual(int(conf["auto-aof-rewrite-min-size"]), 64 * MiB)
        doc = sp.get("/health").json["checks"]["redis"]
        self.assertEqual(doc["maxmemory"], want)
        self.assertGreater(doc["used_memory"], 0)


class HostileSpoolTest(su.SbxCase):
    """Jobs sent by hand, as a compromised handler could: no spool name
    leads the helper (root) outside the spool, through a link, or into a
    file that is not the handler's own."""

    @classmethod
    def setUpClass(cls):
        cls.sid = cls.class_sandbox()
        cls.owner = os.stat(SPOOL)

    def outside_file(self):
        """A root-owned file next to the spool, with known bytes."""
        path = os.path.join(sp.STATE, "outside_" + uuid.uuid4().hex[:8])
        with open(path, "wb") as f:
            f.write(b"secret outside the spool\n")
        os.chmod(path, 0o644)
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        return path

    def spool_name(self):
        name = "spl_" + uuid.uuid4().hex[:22]
        self.addCleanup(self.remove_planted, os.path.join(SPOOL, name))
        return name

    @staticmethod
    def remove_planted(path):
        if os.path.lexists(path):
            os.unlink(path)

    def plant_file(self, data):
        """A spool file with data, owned as the handlers' would be."""
        name = self.spool_name()
        path = os.path.join(SPOOL, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, self.owner.st_uid, self.owner.st_gid)
        return name

    def write_job(self, name, length, path=None):
        path = path or "/workspace/h_" + uuid.uuid4().hex[:8]
        ans = send_job("file_write", {"sandbox": self.sid, "path": path,
                                      "spool": name, "len": length})
        return ans, path

    def assertRefused(self, ans, code="invalid_argument"):
        self.assertIsNotNone(ans, "the helper did not answer")
        self.assertFalse(ans["ok"], ans)
        self.assertEqual(ans["code"], code, ans)

    def assertAbsent(self, path):
        self.assertError(self.fget(self.sid, path), 404, "not_found")

    def test_names_that_are_paths_are_refused(self):
        outside = self.outside_file()
        size = os.path.getsize(outside)
        rel = os.path.relpath(outside, SPOOL)
        for name in (rel, outside, "spl_/../" + os.path.basename(outside),
                     "spl_" + "A" * 21 + "/", ".", "", "spl_" + "A" * 23):
            with self.subTest(name=name):
                ans, path = self.write_job(name, size)
                self.assertRefused(ans)
                self.assertAbsent(path)
        with open(outside, "rb") as f:
            self.assertEqual(f.read(), b"secret outside the spool\n")

    def test_planted_links_are_never_followed(self):
        outside = self.outside_file()
        size = os.path.getsize(outside)
        self.put_ok(self.sid, "/workspace/readme", b"sandbox bytes " * 100)
        for kind in ("symlink", "hardlink"):
            with self.subTest(kind=kind):
                name = self.spool_name()
                link = os.path.join(SPOOL, name)
                if kind == "symlink":
                    os.symlink(outside, link)
                    os.lchown(link, self.owner.st_uid, self.owner.st_gid)
                else:
                    os.link(outside, link)
                ans, path = self.write_job(name, size)
                self.assertRefused(ans)
                self.assertAbsent(path)
                # A read must not write through it either.
                ans = send_job("file_read", {"sandbox": self.sid,
                                             "path": "/workspace/readme",
                                             "spool": name})
                self.assertRefused(ans)
                st = os.stat(outside)
                self.assertEqual((st.st_uid, st.st_size, st.st_nlink),
                                 (0, size, 2 if kind == "hardlink" else 1))
                with open(outside, "rb") as f:
                    self.assertEqual(f.read(), b"secret outside the spool\n")
                os.unlink(link)

    def test_other_planted_files_are_refused(self):
        # Someone else's file, a FIFO, a directory: refused at once (the
        # helper answers the next job too).
        name = self.spool_name()
        path = os.path.join(SPOOL, name)
        with open(path, "wb") as f:
            f.write(b"root's")
        ans, target = self.write_job(name, 6)
        self.assertRefused(ans)
        self.assertAbsent(target)
        os.unlink(path)
        os.mkfifo(path)
        os.chown(path, self.owner.st_uid, self.owner.st_gid)
        ans, target = self.write_job(name, 0)
        self.assertRefused(ans)
        self.assertAbsent(target)
        self.assertTrue(stat.S_ISFIFO(os.lstat(path).st_mode))
        os.unlink(path)
        os.mkdir(path)
        ans, target = self.write_job(name, 0)
        self.assertRefused(ans)
        os.rmdir(path)
        ans, target = self.write_job(self.spool_name(), 1)  # none there
        self.assertRefused(ans)
        self.assertAbsent(target)

    def test_length_must_match(self):
        name = self.plant_file(b"0123456789")
        for length in (20, 9, -1):
            with self.subTest(len=length):
                ans, path = self.write_job(name, length)
                self.assertRefused(ans, "invalid_argument" if length >= 0
                                   else "payload_too_large")
                self.assertAbsent(path)
        ans, path = self.write_job(name, 64 * MiB + 1)
        self.assertRefused(ans, "payload_too_large")
        # The right length: written, and the spool file consumed.
        ans, path = self.write_job(name, 10)
        self.assertTrue(ans and ans["ok"], ans)
        self.assertEqual(self.get_ok(self.sid, path).body, b"0123456789")
        self.assertFalse(os.path.lexists(os.path.join(SPOOL, name)))
        ans = send_job("file_write", {"sandbox": self.sid, "path": "/x"})
        self.assertRefused(ans)
