"""ws_util.py: what the snapshot and workspace tests share: hand-made tar
archives (hostile ones too), and archives planted in the internal bucket
of the local store in place of the ones sandpipe wrote (the store's file
is its header, kept, and the body, replaced)."""
import glob
import io
import os
import tarfile
import urllib.parse

import sp


def storage_file(key):
    """The local store's file of internal object key (any subject's)."""
    name = "o" + urllib.parse.quote(key, safe="._~-")
    found = glob.glob(os.path.join(sp.STATE, "storage", "*", "_sandpipe",
                                   name))
    return found[0] if len(found) == 1 else None


def plant(key, size, body):
    """Replace the body (of size bytes now) of internal object key with
    body; returns the new size."""
    path = storage_file(key)
    assert path is not None, f"no stored object {key}"
    with open(path, "rb") as f:
        data = f.read()
    head = data[:len(data) - size]
    with open(path, "wb") as f:
        f.write(head + body)
    return len(body)


def tar_of(members):
    """A tar archive of members: (name, kind, value) with kind "file"
    (value: bytes), "dir", "symlink" (value: target), "hardlink" (value:
    target name) or "chr" (value: (major, minor))."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, kind, value in members:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            ti.uid = ti.gid = 0
            if kind == "file":
                ti.size = len(value)
                ti.mode = 0o644
                t.addfile(ti, io.BytesIO(value))
                continue
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, value
            elif kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, value
            elif kind == "chr":
                ti.type, ti.mode = tarfile.CHRTYPE, 0o666
                ti.devmajor, ti.devminor = value
            t.addfile(ti)
    return buf.getvalue()
