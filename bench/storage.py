#!/usr/bin/env python3
"""bench/storage.py: object storage throughput against its baselines,
measured in the same run.

  sudo bench/storage.py [--mib 512] [--runs 3] [--listen 127.0.0.1:18098]

Starts its own stack (state in state/bench-storage) and stops it. With
the local backend: PUT and GET of one file of --mib MiB through nginx and
sp-storage (curl as the client, bodies streamed both ways) against `cp` of
the same file on the same disk (the storage directory's), and for PUT
also against `cp` followed by `sync -d` of the copy (a PUT answers once
its object is on the disk). With the s3
backend (s3rver from tests/s3 on the next port, the same sp-storage
started with SP_STORAGE_URL=s3://…): PUT through sandpipe against `curl
-T` of the same file straight to the same S3 server, and against curl
sending it as a multipart upload of the same parts (the requests sandpipe
makes past one part; s3rver stores parts and joins them, a single PUT
does neither), and GET the same way.
Prints each median of --runs and the ratio (sandpipe / baseline)."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = os.path.join(ROOT, "state", "bench-storage")
MiB = 1024 * 1024
BUCKET = f"bench-{os.getpid()}"


def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def median_rate(argv_fn, runs, size):
    return size / MiB / statistics.median(timed(argv_fn(i))
                                          for i in range(runs))


def curl(*args):
    return ["curl", "-sS", "-f", "-o", "/dev/null", *args]


def line(name, base, got):
    print(f"  {name:<28} {base:9.1f} MiB/s  {got:9.1f} MiB/s  "
          f"ratio {got / base:5.2f}")


def local_bench(a, key, src, size):
    url = f"http://{a.listen}/buckets/{BUCKET}/objects/"
    hdr = ["-H", f"X-API-Key: {key}"]
    disk = os.path.join(STATE, "storage")
    cp = median_rate(lambda i: ["cp", src, os.path.join(disk, f"cp{i}")],
                     a.runs, size)
    # A stored object is on the disk before its PUT answers (fdatasync
    # before the rename); this baseline makes its copy as durable.
    cps = median_rate(lambda i: ["sh", "-c", 'cp "$1" "$2" && sync -d "$2"',
                                 "-", src, os.path.join(disk, f"cs{i}")],
                      a.runs, size)
    for i in range(a.runs):
        os.unlink(os.path.join(disk, f"cp{i}"))
        os.unlink(os.path.join(disk, f"cs{i}"))
    put = median_rate(lambda i: curl(*hdr, "-T", src, url + f"o{i}"), a.runs,
                      size)
    get = median_rate(lambda i: curl(*hdr, url + f"o{i}"), a.runs, size)
    print(f"local backend, {a.mib} MiB, median of {a.runs}:"
          f"{'baseline':>24}   sandpipe")
    line("PUT vs cp", cp, put)
    line("PUT vs cp + fdatasync", cps, put)
    line("GET vs cp", cp, get)


def curl_multipart(sig, url, src, part):
    """src uploaded to url by curl as S3 multipart parts of part bytes (the
    requests sandpipe's s3 backend makes); seconds taken."""
    t = time.perf_counter()
    up = subprocess.run(["curl", "-sS", "-f", *sig, "-X", "POST",
                         url + "?uploads"], check=True,
                        capture_output=True).stdout
    uid = re.search(rb"<UploadId>(.*?)</UploadId>", up).group(1).decode()
    tags = []
    with open(src, "rb") as f, tempfile.NamedTemporaryFile(dir=STATE) as p:
        while True:
            data = f.read(part)
            if not data:
                break
            p.seek(0)
            p.truncate()
            p.write(data)
            p.flush()
            head = subprocess.run(
                ["curl", "-sS", "-f", "-D-", "-o", "/dev/null", *sig, "-T",
                 p.name, f"{url}?partNumber={len(tags) + 1}&uploadId={uid}"],
                check=True, capture_output=True).stdout
            tags.append(re.search(rb"(?i)etag: *(\S+)", head).group(1))
    body = "<CompleteMultipartUpload>" + "".join(
        f"<Part><PartNumber>{i + 1}</PartNumber><ETag>{e.decode()}</ETag>"
        "</Part>" for i, e in enumerate(tags)) + "</CompleteMultipartUpload>"
    subprocess.run(curl(*sig, "-X", "POST", "--data-binary", body,
                        f"{url}?uploadId={uid}"), check=True)
    return time.perf_counter() - t


def s3_bench(a, key, src, size):
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import storage_util
    port = int(a.listen.rsplit(":", 1)[1]) + 1
    store = storage_util.S3Storage(port, part_mb=a.part_mb)
    store.start()
    try:
        s3 = f"http://127.0.0.1:{port}/{storage_util.S3_BUCKET}/direct/"
        sig = ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
               f"{storage_util.S3_ACCESS}:{storage_util.S3_SECRET}", "-H",
               "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
        url = f"http://{a.listen}/buckets/{BUCKET}/objects/"
        hdr = ["-H", f"X-API-Key: {key}"]
        base_put = median_rate(lambda i: curl(*sig, "-T", src, s3 + f"o{i}"),
                               a.runs, size)
        base_mp = size / MiB / statistics.median(
            curl_multipart(sig, s3 + f"m{i}", src, a.part_mb * MiB)
            for i in range(a.runs))
        put = median_rate(lambda i: curl(*hdr, "-T", src, url + f"s{i}"),
                          a.runs, size)
        base_get = median_rate(lambda i: curl(*sig, s3 + f"o{i}"), a.runs,
                               size)
        get = median_rate(lambda i: curl(*hdr, url + f"s{i}"), a.runs, size)
    finally:
        store.stop()
    print(f"s3 backend (s3rver), {a.mib} MiB, median of {a.runs}:"
          f"{'baseline (curl)':>10}   sandpipe")
    line("PUT vs curl -T to S3", base_put, put)
    line(f"PUT vs curl, {a.part_mb} MiB parts", base_mp, put)
    line("GET vs curl from S3", base_get, get)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--part-mb", type=int, default=8)
    ap.add_argument("--listen", default="127.0.0.1:18098")
    a = ap.parse_args()
    env = dict(os.environ, SP_APIKEY_RATE="999999", SP_APIKEY_BURST="999999",
               SP_STATE_DIR=STATE, SP_LISTEN=a.listen,
               SP_DEFAULT_TEMPLATE="host", SP_BUILTIN_TEMPLATES="")
    env.pop("REDIS_URL", None)
    subprocess.run([os.path.join(ROOT, "sandpipe"), "up"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    src = None
    try:
        key = open(os.path.join(STATE, "api_key")).read().strip()
        os.environ.update(SP_LISTEN=a.listen, SP_STATE_DIR=STATE,
                          SP_API_KEY=key, SP_ROOT=ROOT,
                          SP_BUILD_DIR=env.get("SP_BUILD_DIR",
                                               os.path.join(ROOT, "state",
                                                            "build")))
        fd, src = tempfile.mkstemp(prefix="bench-src-", dir=STATE)
        with os.fdopen(fd, "wb") as f:
            for _ in range(a.mib):
                f.write(os.urandom(MiB))
        size = a.mib * MiB
        subprocess.run(curl("-X", "POST", "-H", f"X-API-Key: {key}", "-H",
                            "Content-Type: application/json", "-d",
                            '{"name":"%s"}' % BUCKET,
                            f"http://{a.listen}/buckets"), check=True)
        local_bench(a, key, src, size)
        s3_bench(a, key, src, size)
        sys.stdout.flush()
        subprocess.run(curl("-X", "DELETE", "-H", f"X-API-Key: {key}",
                            f"http://{a.listen}/buckets/{BUCKET}?force=true"))
    finally:
        if src:
            os.unlink(src)
        subprocess.run([os.path.join(ROOT, "sandpipe"), "down"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
