"""test_families.py: how nginx gives a request to a route family
(nginx-conf/nginx.conf.in, selectors.conf): by path as before; by the
E2b-Sandbox-Id/E2b-Sandbox-Port headers or a <port>-<id>.<SP_PREVIEW_DOMAIN>
host (default domain localhost) before any path route; malformed
selectors refused. No program serves a selected family yet: each answers
a JSON error at once, and never a path route's answer."""
import os
import subprocess
import time

import sp
from sp import get, request

SBX = "sbx_AbCdEfGhIjKlMnOpQrStUv"
# Paths that a path route would answer (200, 401, 405, 429 or a stream).
NATIVE_PATHS = ("/ping", "/health", "/api/auth/verify", "/sandboxes",
                "/executions/exe_AbCdEfGhIjKlMnOpQrStUv/events", "/events",
                "/", "/app.js", "/nope")


def envd_headers(sbx=SBX, port="49983"):
    return {"E2b-Sandbox-Id": sbx, "E2b-Sandbox-Port": port}


class FamiliesCase(sp.Case):
    def assertSelected(self, r, family, selector):
        """r was answered by the selected family, not by a path route:
        envd by sp-envd (handlers/envd.c: no X-Access-Token is 401, or a
        Connect stream's end frame; a path it has not is 404 or 405), the
        others (none served yet) by the JSON 404 of nginx.conf.in."""
        if family == "reject":
            self.assertError(r, 400, "invalid_argument")
        elif family == "envd" and r.status == 200:
            self.assertEqual(r.headers.get("Content-Type"),
                             "application/connect+json", r)
            self.assertEqual(r.body[:1], b"\x02", r)
            self.assertIn(b'"unauthenticated"', r.body, r)
        elif family == "envd":
            self.assertIn(r.status, (401, 404, 405), r)
            self.assertError(r, r.status)
        else:
            self.assertError(r, 404, "not_found")
        self.assertEqual(r.headers.get("X-Sandpipe-Family"), family, r)
        self.assertEqual(r.headers.get("X-Sandpipe-Selector"), selector, r)
        # The security headers of every API answer.
        self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff")

    def assertNotSelected(self, r):
        self.assertIsNone(r.headers.get("X-Sandpipe-Family"), r)
        self.assertIsNone(r.headers.get("X-Sandpipe-Selector"), r)


class PathRoutingTest(FamiliesCase):
    def test_path_routes_unchanged(self):
        r = get("/ping")
        self.assertEqual((r.status, r.body.strip()), (200, b"pong"), r)
        self.assertNotSelected(r)
        r = get("/health")
        self.assertEqual(r.status, 200, r)
        self.assertNotSelected(r)
        self.assertError(get("/api/auth/verify"), 401, "unauthenticated")
        r = get("/nope")
        self.assertError(r, 404, "not_found")
        self.assertNotSelected(r)

    def test_other_host_names_route_by_path(self):
        # Host names that are not sandbox hosts: the API under any name.
        for host in ("localhost", "api.localhost", "127.0.0.1",
                     "sbx_abc.localhost", "49983-sbx_abc.example.com",
                     "49983.localhost", "abc-49983.localhost",
                     "localhost.49983-sbx_abc.localhost.example"):
            with self.subTest(host=host):
                r = get("/ping", headers={"Host": host})
                self.assertEqual((r.status, r.body.strip()), (200, b"pong"), r)
                self.assertNotSelected(r)

    def test_empty_selector_headers_are_absent(self):
        r = get("/ping", headers={"E2b-Sandbox-Id": "", "E2b-Sandbox-Port": ""})
        self.assertEqual(r.status, 200, r)
        self.assertNotSelected(r)

    def test_internal_locations_unreachable(self):
        for path in ("/_sp/family/envd", "/_sp/family/reject",
                     "/_sp/family/", "/_sp/family/envd/x"):
            with self.subTest(path=path):
                r = get(path)
                self.assertError(r, 404, "not_found")
                self.assertNotSelected(r)


class HeaderSelectionTest(FamiliesCase):
    def test_header_selects_before_any_path(self):
        for path in NATIVE_PATHS + ("/process.Process/Start", "/files"):
            with self.subTest(path=path):
                r = get(path, headers=envd_headers(), timeout=5)
                self.assertSelected(r, "envd", "header")

    def test_ports_name_the_family(self):
        for port, family in (("49983", "envd"), ("49999", "interp"),
                             ("3000", "preview"), ("1", "preview"),
                             ("65535", "preview")):
            with self.subTest(port=port):
                r = get("/health", headers=envd_headers(port=port))
                self.assertSelected(r, family, "header")

    def test_connect_stream_request_gets_an_answer(self):
        # What the E2B SDK sends for commands.run: a Connect envelope.
        body = b"\x00\x00\x00\x00\x02{}"
        t0 = time.monotonic()
        r = request("POST", "/process.Process/Start", body, headers=dict(
            envd_headers(), **{"Content-Type": "application/connect+json",
                               "Connect-Protocol-Version": "1"}), timeout=5)
        self.assertSelected(r, "envd", "header")
        self.assertLess(time.monotonic() - t0, 4)

    def test_credential_routes_not_reached(self):
        # Selected requests never reach the auth family (nor its rate limit).
        r = sp.post("/api/auth/token", {"api_key": sp.API_KEY},
                    headers=envd_headers(), patient=False)
        self.assertSelected(r, "envd", "header")
        r = get("/api/auth/verify", headers=dict(
            envd_headers(), **{"X-API-Key": sp.API_KEY}))
        self.assertSelected(r, "envd", "header")

    def test_malformed_headers_rejected(self):
        cases = [
            {"E2b-Sandbox-Id": SBX},                          # no port
            {"E2b-Sandbox-Port": "49983"},                    # no id
            envd_headers(sbx="sbx/../x"),
            envd_headers(sbx="sbx abc"),
            envd_headers(sbx="sbx:1"),
            envd_headers(sbx="sbx|x"),
            envd_headers(sbx="x" * 65),
            envd_headers(port="0"),
            envd_headers(port="65536"),
            envd_headers(port="049983"),
            envd_headers(port="49983x"),
            envd_headers(port="-1"),
            envd_headers(port="4998 3"),
        ]
        for headers in cases:
            with self.subTest(headers=headers):
                r = get("/ping", headers=headers, timeout=5)
                self.assertSelected(r, "reject", "header")

    def test_longest_id(self):
        r = get("/ping", headers=envd_headers(sbx="x" * 64))
        self.assertSelected(r, "envd", "header")


class HostSelectionTest(FamiliesCase):
    def test_host_selects_before_any_path(self):
        for path in NATIVE_PATHS:
            with self.subTest(path=path):
                r = get(path, headers={"Host": "49983-sbx_abc.localhost"},
                        timeout=5)
                self.assertSelected(r, "envd", "host")

    def test_host_forms(self):
        for host, family in (("49983-sbx_abc.localhost", "envd"),
                             (f"49983-sbx_abc.localhost:{sp.PORT}", "envd"),
                             ("49983-SBX_ABC.LOCALHOST", "envd"),
                             ("49983-sbx_abc.localhost.", "envd"),
                             ("49999-sbx_abc.localhost", "interp"),
                             ("8080-sbx_abc.localhost", "preview"),
                             ("1-a.localhost", "preview")):
            with self.subTest(host=host):
                r = get("/health", headers={"Host": host})
                self.assertSelected(r, family, "host")

    def test_malformed_hosts_rejected(self):
        # Shaped like a sandbox host under the domain, but not one.
        for host in ("99999-sbx_abc.localhost", "0-sbx_abc.localhost",
                     "049983-sbx_abc.localhost", "49983-.localhost",
                     "49983-sbx_abc.x.localhost", "49983-" + "x" * 65 +
                     ".localhost", "49983-sbx~abc.localhost"):
            with self.subTest(host=host):
                r = get("/ping", headers={"Host": host}, timeout=5)
                self.assertSelected(r, "reject", "host")


class BothSelectorsTest(FamiliesCase):
    def test_agreeing_host_and_headers(self):
        # The E2B SDK without a sandbox URL sends both; the host has lost
        # the id's case.
        r = get("/health", headers=dict(envd_headers(),
                                        Host=f"49983-{SBX.lower()}.localhost"))
        self.assertSelected(r, "envd", "host header")

    def test_disagreeing_host_and_headers(self):
        for host, headers in (
                ("49983-sbx_other.localhost", envd_headers()),
                (f"49999-{SBX}.localhost", envd_headers()),
                (f"49983-{SBX}.localhost", {"E2b-Sandbox-Id": SBX})):
            with self.subTest(host=host, headers=headers):
                r = get("/ping", headers=dict(headers, Host=host))
                self.assertSelected(r, "reject", "host header")


class PreviewDomainTest(sp.Case):
    def admin_check(self, domain):
        env = dict(os.environ, REDIS_URL=sp.REDIS_URL, SP_PREVIEW_DOMAIN=domain)
        env.pop("SP_ENV_FILE", None)
        return subprocess.run([os.path.join(sp.BUILD, "sp-admin"),
                               "config-check"], env=env, capture_output=True,
                              text=True, timeout=30)

    def test_setting_is_a_dns_name(self):
        for good in ("localhost", "sandbox.example.com", "a-b.c9", "X.Y"):
            with self.subTest(domain=good):
                p = self.admin_check(good)
                self.assertEqual(p.returncode, 0, p.stderr)
        for bad in ("", "exa_mple.com", "-a.com", "a-.com", "a..b", ".a", "a.",
                    "1.2.3.4", "a b", "a/b", "a|b", "x" * 64 + ".com",
                    ("a" * 63 + ".") * 4 + "com"):
            with self.subTest(domain=bad):
                p = self.admin_check(bad)
                self.assertEqual(p.returncode, 2, p)
                self.assertIn("SP_PREVIEW_DOMAIN", p.stderr)

    def test_rendered_configuration(self):
        conf = os.path.join(sp.STATE, "nginx", "conf")
        for name in ("selectors.conf", "nginx.conf"):
            with open(os.path.join(conf, name)) as f:
                text = "".join(line for line in f
                               if not line.lstrip().startswith("#"))
            with self.subTest(file=name):
                self.assertNotRegex(text, r"@[A-Z_]+@")
                if name == "selectors.conf":
                    self.assertIn("[.]localhost$", text)
