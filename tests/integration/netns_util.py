"""netns_util.py: an HTTP server at a public-looking address, for the
tests of URLs that sandpipe fetches on a user's behalf (storage imports,
workflow inputs), whose egress check refuses loopback, private ranges and
this host's own addresses.

The server runs in a network namespace this module makes, joined to the
host by a veth pair: the host's end holds 198.51.100.<4k+1>/30 and the
namespace's 198.51.100.<4k+2>/30 (TEST-NET-2, in no range the check
refuses; k from the stack's port, so two stacks do not meet). The host
routes to it over the veth; nothing leaves the machine. Python's
http.server serves a temporary directory there on port 8080."""
import os
import shutil
import socket
import subprocess
import tempfile

import sp

P = sp.PORT
K = P % 60
NS = f"spweb{P}"
VETH_H, VETH_N = f"spw{P}h", f"spw{P}n"
HOST_ADDR, ADDR = f"198.51.100.{4 * K + 1}", f"198.51.100.{4 * K + 2}"
PORT = 8080


def _run(*cmd, check=True):
    return subprocess.run(list(cmd), capture_output=True, text=True,
                          timeout=30, check=check)


class WebServer:
    """start(files) serves files ({name: bytes}) at url(name); stop()
    removes the namespace, the veth and the files."""

    def __init__(self):
        self.dir = None
        self.proc = None

    def url(self, name):
        return f"http://{ADDR}:{PORT}/{name}"

    def start(self, files):
        self.dir = tempfile.mkdtemp(prefix="sp-web-")
        os.chmod(self.dir, 0o755)
        for name, data in files.items():
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(data)
        _run("ip", "netns", "del", NS, check=False)
        _run("ip", "link", "del", VETH_H, check=False)
        _run("ip", "netns", "add", NS)
        _run("ip", "link", "add", VETH_H, "type", "veth", "peer", "name",
             VETH_N, "netns", NS)
        _run("ip", "addr", "add", f"{HOST_ADDR}/30", "dev", VETH_H)
        _run("ip", "link", "set", VETH_H, "up")
        _run("ip", "-n", NS, "addr", "add", f"{ADDR}/30", "dev", VETH_N)
        _run("ip", "-n", NS, "link", "set", VETH_N, "up")
        _run("ip", "-n", NS, "link", "set", "lo", "up")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", NS, "python3", "-m", "http.server",
             str(PORT), "--bind", ADDR, "--directory", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not sp.wait_until(self._up, 10):
            self.stop()
            raise AssertionError("the namespace's HTTP server did not start")

    def _up(self):
        try:
            socket.create_connection((ADDR, PORT), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
        _run("ip", "netns", "del", NS, check=False)
        _run("ip", "link", "del", VETH_H, check=False)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
