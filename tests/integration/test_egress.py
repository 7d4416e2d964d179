"""test_egress.py: egress policies of network sandboxes (POST /sandboxes
"network": {internet, allow_out, deny_out}, PUT /sandboxes/{id}/network),
against servers on this machine only: a network namespace this test makes
(a veth pair with addresses in a private range and in TEST-NET-3) runs
TCP servers (8080, 8081, 853) and a UDP echo on 53; a tiny DNS server on
loopback (the stack's SP_DNS_UPSTREAM, set by `./sandpipe test`) answers
the test's names and refuses the rest.

Shown: an allow-listed target reachable and an unlisted one refused, by
address and by name through the sandbox resolver; a hard-coded address
of a name not allowed refused; DNS to another server and DNS over TLS
refused; one sandbox's flood of queries the upstream never answers
leaving the resolver to the others; this host's own addresses and
loopback services unreachable under any policy (even listed); a policy change on a running sandbox;
bad entries named in the 400; another subject's PUT 404; the usage's and
the metrics' byte counters moving."""
import json
import os
import socket
import struct
import subprocess
import threading
import time

import sp
import sbx_util as su

P = sp.PORT
NS = f"spegr{P}"
VETH_H, VETH_N = f"spe{P}h", f"spe{P}n"
I = P % 250
PRIV = f"10.213.{I}"  # .1 this host (the veth), .2 and .3 the namespace
T3 = (P % 32) * 8     # a /29 of TEST-NET-3 (203.0.113.0/24)
HOST_T3, OK_ADDR, NO_ADDR = (f"203.0.113.{T3 + n}" for n in (1, 2, 3))
DNS_ADDR = os.environ.get("SP_DNS_UPSTREAM", f"127.0.0.1:{P + 9}")
NAMES = {"ok.egress.test": OK_ADDR, "no.egress.test": NO_ADDR,
         "alt.ok.egress.test": OK_ADDR}

# The servers of the namespace: TCP 8080 and 8081 (a line with a byte
# count asks for that many bytes after "hello <address>"), TCP 853 (DNS
# over TLS's port), UDP 53 (echo).
SERVER = r"""
import socket, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        def serve(c=c):
            try:
                c.settimeout(5)
                c.sendall(("hello %s\n" % c.getsockname()[0]).encode())
                line = c.recv(64).strip()
                if line.isdigit():
                    c.sendall(b"x" * min(int(line), 1 << 22))
            except OSError:
                pass
            c.close()
        threading.Thread(target=serve, daemon=True).start()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 53))
    while True:
        d, a = s.recvfrom(4096); s.sendto(d, a)
threading.Thread(target=tcp, args=(853,), daemon=True).start()
threading.Thread(target=tcp, args=(8081,), daemon=True).start()
threading.Thread(target=udp, daemon=True).start()
tcp(8080)
"""

# Run inside a sandbox: each probe's outcome, as JSON.
PROBE = r"""
import json, socket, sys
def tcp(host, port, n=0):
    s = socket.socket(); s.settimeout(4)
    try:
        s.connect((host, port)); s.sendall(b"%d\n" % n)
        got = b""
        while len(got) < n + 6:
            d = s.recv(65536)
            if not d: break
            got += d
        return got.split(b"\n")[0].decode() if got else "EMPTY"
    except Exception as e:
        return type(e).__name__
def resolve(name):
    try:
        return sorted({a[4][0] for a in socket.getaddrinfo(name, 80, socket.AF_INET)})
    except Exception as e:
        return type(e).__name__
def dns(server, name):
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\x00\x00\x01\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    try:
        s.sendto(q, (server, 53)); s.recvfrom(4096); return "ANSWERED"
    except Exception as e:
        return type(e).__name__
out = []
for p in json.loads(sys.argv[1]):
    out.append({"tcp": tcp, "resolve": resolve, "dns": dns}[p[0]](*p[1:]))
print(json.dumps(out))
"""


# Run inside a sandbox: many queries for a name the upstream never
# answers, paced so that the helper reads them all (none is lost to a full
# socket buffer).
FLOOD = r"""
import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
q = b"\x04mute\x06egress\x04test\x00\x00\x01\x00\x01"
for i in range(300):
    s.sendto(struct.pack(">6H", i, 0x0100, 1, 0, 0, 0) + q, ("10.0.2.3", 53))
    if i % 8 == 7:
        time.sleep(0.002)
"""
MUTE = "mute.egress.test"


class DnsServer(threading.Thread):
    """Answers A queries for NAMES (TTL 60), never MUTE, REFUSED for
    anything else; counts the names asked."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        host, port = addr.rsplit(":", 1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, int(port)))
        self.sock.settimeout(0.5)
        self.asked = {}
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self.answer(data)
            if reply:
                self.sock.sendto(reply, peer)

    def answer(self, q):
        if len(q) < 17:
            return None
        off, labels = 12, []
        while off < len(q) and q[off] != 0:
            labels.append(q[off + 1:off + 1 + q[off]].decode("ascii", "replace"))
            off += 1 + q[off]
        end = off + 5
        name = ".".join(labels).lower()
        qtype = struct.unpack(">H", q[off + 1:off + 3])[0]
        self.asked[name] = self.asked.get(name, 0) + 1
        if name == MUTE:
            return None
        head = q[:2] + b"\x81\x80" + q[4:6]
        if name not in NAMES:
            return q[:2] + b"\x81\x85" + q[4:6] + b"\0\0\0\0\0\0" + q[12:end]
        if qtype != 1:
            return head + b"\0\0\0\0\0\0" + q[12:end]
        rr = (b"\xc0\x0c\x00\x01\x00\x01" + struct.pack(">IH", 60, 4) +
              socket.inet_aton(NAMES[name]))
        return head + b"\x00\x01\0\0\0\0" + q[12:end] + rr


def run(*cmd, check=True):
    return subprocess.run(list(cmd), capture_output=True, text=True,
                          timeout=30, check=check)


class EgressTest(su.SbxCase):
    @classmethod
    def setUpClass(cls):
        run("ip", "netns", "del", NS, check=False)
        run("ip", "link", "del", VETH_H, check=False)
        run("ip", "netns", "add", NS)
        cls.addClassCleanup(run, "ip", "netns", "del", NS, check=False)
        run("ip", "link", "add", VETH_H, "type", "veth", "peer", "name",
            VETH_N, "netns", NS)
        run("ip", "addr", "add", f"{PRIV}.1/24", "dev", VETH_H)
        run("ip", "addr", "add", f"{HOST_T3}/29", "dev", VETH_H)
        run("ip", "link", "set", VETH_H, "up")
        for a in (f"{PRIV}.2/24", f"{PRIV}.3/24", f"{OK_ADDR}/29",
                  f"{NO_ADDR}/29"):
            run("ip", "-n", NS, "addr", "add", a, "dev", VETH_N)
        run("ip", "-n", NS, "link", "set", VETH_N, "up")
        run("ip", "-n", NS, "link", "set", "lo", "up")
        cls.server = subprocess.Popen(
            ["ip", "netns", "exec", NS, "python3", "-c", SERVER],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.addClassCleanup(cls.server.wait, 10)
        cls.addClassCleanup(cls.server.kill)
        # A listener on this host's own (veth) address: listed or not, a
        # sandbox never reaches it.
        cls.hostl = socket.socket()
        cls.hostl.bind((f"{PRIV}.1", 0))
        cls.hostl.listen(8)
        cls.addClassCleanup(cls.hostl.close)
        cls.dns = DnsServer(DNS_ADDR)
        cls.dns.start()
        cls.addClassCleanup(cls.dns.sock.close)
        sp.wait_until(lambda: cls.reachable(f"{PRIV}.2", 8080), 10)

    @staticmethod
    def reachable(host, port):
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            return False

    def probe(self, sid, *probes):
        res = self.sh(sid, ["python3", "-c", PROBE, json.dumps(probes)],
                      timeout=60)
        self.assertEqual(res["exitCode"], 0, res)
        return json.loads(res["stdout"])

    def egress(self, policy):
        doc = self.new_sandbox({"network": policy})
        return doc["id"], doc

    # ---- the Show list ----------------------------------------------------

    def test_allowlisted_address_reachable_unlisted_refused(self):
        sid, doc = self.egress({"allow_out": [f"{PRIV}.2"]})
        self.assertEqual(doc["network"], {"internet": False,
                                          "allow_out": [f"{PRIV}.2/32"],
                                          "deny_out": []})
        ok, other, named = self.probe(sid, ["tcp", f"{PRIV}.2", 8080],
                                      ["tcp", f"{PRIV}.3", 8080],
                                      ["tcp", OK_ADDR, 8080])
        self.assertEqual(ok, f"hello {PRIV}.2")
        self.assertEqual(other, "ConnectionRefusedError")
        self.assertEqual(named, "ConnectionRefusedError")

    def test_names_through_the_resolver(self):
        sid, _ = self.egress({"allow_out": ["*.ok.egress.test",
                                            "ok.egress.test:8080"]})
        before = dict(self.dns.asked)
        # An address nobody resolved yet is refused, and so is the
        # hard-coded address of a name the policy does not list.
        self.assertEqual(self.probe(sid, ["tcp", OK_ADDR, 8080],
                                    ["tcp", NO_ADDR, 8080]),
                         ["ConnectionRefusedError"] * 2)
        res = self.probe(sid, ["resolve", "no.egress.test"],
                         ["resolve", "ok.egress.test"],
                         ["tcp", OK_ADDR, 8080], ["tcp", OK_ADDR, 8081],
                         ["tcp", NO_ADDR, 8080])
        self.assertEqual(res[0], "gaierror")
        self.assertEqual(res[1], [OK_ADDR])
        self.assertEqual(res[2], f"hello {OK_ADDR}")
        # ok.egress.test:8080 opened that port only.
        self.assertEqual(res[3], "ConnectionRefusedError")
        self.assertEqual(res[4], "ConnectionRefusedError")
        # The refused name never left the helper; the allowed one did.
        self.assertEqual(self.dns.asked.get("no.egress.test", 0),
                         before.get("no.egress.test", 0))
        self.assertGreater(self.dns.asked.get("ok.egress.test", 0),
                           before.get("ok.egress.test", 0))
        # The wildcard: a name below it, every port.
        res = self.probe(sid, ["resolve", "alt.ok.egress.test"],
                         ["tcp", OK_ADDR, 8081], ["tcp", OK_ADDR, 853])
        # (DNS over TLS's port stays refused under any list.)
        self.assertEqual(res, [[OK_ADDR], f"hello {OK_ADDR}",
                               "ConnectionRefusedError"])

    def test_dns_elsewhere_and_dot_refused(self):
        sid, _ = self.egress({"allow_out": [f"{PRIV}.0/24",
                                            "ok.egress.test"]})
        res = self.probe(sid, ["tcp", f"{PRIV}.3", 8080],
                         ["dns", f"{PRIV}.3", "ok.egress.test"],
                         ["tcp", f"{PRIV}.3", 853],
                         ["dns", "10.0.2.3", "ok.egress.test"])
        self.assertEqual(res[0], f"hello {PRIV}.3")  # the address is open
        self.assertNotEqual(res[1], "ANSWERED")      # its DNS is not
        self.assertEqual(res[2], "ConnectionRefusedError")
        self.assertEqual(res[3], "ANSWERED")         # the resolver is

    def test_one_sandbox_cannot_take_the_resolver(self):
        # Each query the upstream leaves unanswered holds a slot of the
        # helper's resolver for its wait (4 s): one sandbox's flood of
        # them holds at most its share, and another's name still resolves.
        flood, _ = self.egress({"allow_out": [MUTE]})
        sid, _ = self.egress({"allow_out": ["ok.egress.test"]})
        before = self.dns.asked.get(MUTE, 0)
        self.ok(flood, ["python3", "-c", FLOOD])
        self.assertEqual(self.probe(sid, ["resolve", "ok.egress.test"]),
                         [[OK_ADDR]])
        sent = self.dns.asked.get(MUTE, 0) - before
        self.assertTrue(0 < sent <= 32, sent)

    def test_host_and_loopback_unreachable_under_any_policy(self):
        out = run("ip", "-4", "-o", "addr", "show").stdout
        host = sorted({ln.split()[3].split("/")[0]
                       for ln in out.splitlines()} - {"127.0.0.1"})
        hport = self.hostl.getsockname()[1]
        listed = [f"{a}/32" for a in host] + [
            "127.0.0.0/8", "10.0.2.0/24", "169.254.0.0/16", "0.0.0.0/0",
            f"127.0.0.1:{P}"]
        probes = [["tcp", "10.0.2.2", P], ["tcp", "127.0.0.1", P],
                  ["tcp", f"{PRIV}.1", hport], ["tcp", "169.254.169.254", 80]]
        probes += [["tcp", a, P] for a in host]
        for policy in (True, {"internet": True},
                       {"allow_out": listed},
                       {"internet": True, "allow_out": listed}):
            sid, _ = self.egress(policy)
            for p, outcome in zip(probes, self.probe(sid, *probes)):
                self.assertFalse(outcome.startswith("hello") or
                                 outcome == "EMPTY", (policy, p, outcome))
        # The unix sockets of Redis and the handlers are not in any view.
        st = os.environ.get("SP_STATE_DIR", "")
        res = self.sh(sid, ["ls", os.path.join(st, "run")])
        self.assertNotEqual(res["exitCode"], 0, res)

    # ---- a running sandbox's policy ---------------------------------------

    def test_policy_change_takes_effect(self):
        sid, _ = self.egress({"allow_out": [f"{PRIV}.2/32"]})
        self.assertEqual(self.probe(sid, ["tcp", f"{PRIV}.3", 8080]),
                         ["ConnectionRefusedError"])
        r = su.call("PUT", f"/sandboxes/{sid}/network",
                    {"allow_out": [f"{PRIV}.3/32"],
                     "deny_out": ["no.egress.test"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["id"], sid)
        want = {"internet": False, "allow_out": [f"{PRIV}.3/32"],
                "deny_out": ["no.egress.test"]}
        self.assertEqual(r.json["network"], want)
        got = su.call("GET", f"/sandboxes/{sid}").json["network"]
        self.assertEqual(got, want)
        self.assertEqual(self.probe(sid, ["tcp", f"{PRIV}.3", 8080],
                                    ["tcp", f"{PRIV}.2", 8080]),
                         [f"hello {PRIV}.3", "ConnectionRefusedError"])
        # Open again, but a deny_out address stays refused.
        r = su.call("PUT", f"/sandboxes/{sid}/network",
                    {"network": {"internet": True, "deny_out": [OK_ADDR]}})
        self.assertEqual(r.status, 200, r)
        res = self.probe(sid, ["tcp", NO_ADDR, 8080], ["tcp", OK_ADDR, 8080],
                         ["resolve", "no.egress.test"])
        self.assertEqual(res, [f"hello {NO_ADDR}", "ConnectionRefusedError",
                               [NO_ADDR]])
        # And shut: nothing but its own loopback.
        r = su.call("PUT", f"/sandboxes/{sid}/network", {"internet": False})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.probe(sid, ["tcp", NO_ADDR, 8080]),
                         ["ConnectionRefusedError"])

    def test_no_network_sandbox_cannot_get_one(self):
        sid, doc = self.egress({"internet": False})
        self.assertEqual(doc["network"]["internet"], False)
        r = su.call("PUT", f"/sandboxes/{sid}/network", {"internet": True})
        self.assertEqual((r.status, r.json["error"]["code"]),
                         (409, "conflict"), r)
        r = su.call("PUT", f"/sandboxes/{sid}/network", {"internet": False})
        self.assertEqual(r.status, 200, r)

    def test_put_on_another_subjects_sandbox_is_404(self):
        sid, _ = self.egress({"allow_out": [f"{PRIV}.2/32"]})
        _, other, _ = sp.create_key()
        r = su.call("PUT", f"/sandboxes/{sid}/network", {"internet": True},
                    key=other)
        self.assertEqual((r.status, r.json["error"]["code"]),
                         (404, "not_found"), r)
        r = su.call("PUT", "/sandboxes/sbx_nonexistent0000000000/network",
                    {"internet": True})
        self.assertEqual(r.status, 404, r)
        got = su.call("GET", f"/sandboxes/{sid}").json["network"]
        self.assertEqual(got["allow_out"], [f"{PRIV}.2/32"])

    # ---- bad input ----------------------------------------------------------

    BAD = [
        ({"allow_out": ["10.0.0.0/33"]}, "network.allow_out[0]"),
        ({"allow_out": ["ok.egress.test", "10.1.2.3/8"]},
         "network.allow_out[1]"),
        ({"allow_out": ["300.1.2.3"]}, "network.allow_out[0]"),
        ({"allow_out": ["example.com:0"]}, "network.allow_out[0]"),
        ({"allow_out": ["example.com:65536"]}, "network.allow_out[0]"),
        ({"allow_out": ["[::1]:x"]}, "network.allow_out[0]"),
        ({"deny_out": ["a..b"]}, "network.deny_out[0]"),
        ({"deny_out": ["-bad.example"]}, "network.deny_out[0]"),
        ({"deny_out": ["bad_name.example"]}, "network.deny_out[0]"),
        ({"deny_out": ["*."]}, "network.deny_out[0]"),
        ({"deny_out": [7]}, "network.deny_out[0]"),
        ({"allow_out": ["x" * 64 + ".example"]}, "network.allow_out[0]"),
        ({"allow_out": [f"h{i}.example" for i in range(257)]},
         "network.allow_out"),
        ({"allow_out": "example.com"}, "network.allow_out"),
        ({"internet": "yes"}, "network.internet"),
        ({"internet": True, "public": True}, "network.public"),
        ("yes", "network"),
    ]

    def test_bad_policies_name_the_entry(self):
        for policy, field in self.BAD:
            r = self.create_raw({"network": policy})
            self.assertEqual(r.status, 400, (policy, r))
            err = r.json["error"]
            self.assertEqual((err["code"], err["field"]),
                             ("invalid_argument", field), policy)
        ok = {"allow_out": [f"h{i}.example" for i in range(256)] +
              ["[fd00::1]:443", "fd00::/8", "*.Example.ORG.", "1.2.3.4:5"]}
        r = self.create_raw({"network": ok})
        self.assertEqual(r.status, 400, r)  # 260 entries: one list too long
        ok["allow_out"] = ok["allow_out"][4:]
        sid, doc = self.egress(ok)
        self.assertEqual(doc["network"]["allow_out"][-4:],
                         ["[fd00::1]:443", "fd00::/8", "*.example.org",
                          "1.2.3.4:5"])
        for policy, field in self.BAD:
            if not isinstance(policy, dict):
                continue  # a PUT's body is an object
            r = su.call("PUT", f"/sandboxes/{sid}/network", policy)
            self.assertEqual(r.status, 400, (policy, r))
            self.assertEqual(r.json["error"]["field"], field, policy)
        got = su.call("GET", f"/sandboxes/{sid}").json["network"]
        self.assertEqual(got, doc["network"])  # nothing changed

    # ---- bytes ----------------------------------------------------------------

    def test_usage_and_metrics_count_bytes(self):
        sid, _ = self.egress({"allow_out": [f"{PRIV}.2/32"]})
        before = su.call("GET", f"/sandboxes/{sid}").json["usage"]
        n = 300000
        self.assertEqual(self.probe(sid, ["tcp", f"{PRIV}.2", 8080, n]),
                         [f"hello {PRIV}.2"])
        after = su.call("GET", f"/sandboxes/{sid}").json["usage"]
        self.assertGreaterEqual(after["net_rx_bytes"] - before["net_rx_bytes"],
                                n)
        self.assertGreater(after["net_tx_bytes"], before["net_tx_bytes"])
        seen = sp.wait_until(lambda: [
            m for m in su.call("GET", f"/sandboxes/{sid}/metrics").json
            if m.get("netRxBytes", 0) >= n], 15, step=1)
        self.assertTrue(seen, "no metrics sample counted the bytes")
        # A sandbox without network counts nothing.
        sid2, _ = self.egress(False)
        usage = su.call("GET", f"/sandboxes/{sid2}").json["usage"]
        self.assertEqual((usage["net_rx_bytes"], usage["net_tx_bytes"]),
                         (0, 0))
