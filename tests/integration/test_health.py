"""test_health.py: the health family through nginx: /ping, /health and the
Prometheus text of /metrics."""
import re
import time

import sp
from sp import get

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]00:00)$")


def auth_401_count():
    """Current value of the auth family's 401 counter (0 when absent)."""
    r = get("/metrics")
    if r.status != 200:
        return None
    m = re.search(rb'^sandpipe_requests_total\{family="auth",status="401"\} '
                  rb'(\d+)$', r.body, re.M)
    return int(m.group(1)) if m else 0


class HealthTest(sp.Case):
    def test_ping(self):
        r = get("/ping")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body.strip(), b"pong")

    def test_health_fields(self):
        r = get("/health")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["Content-Type"].startswith("application/json"))
        doc = r.json
        self.assertEqual(doc["status"], "ok")
        self.assertRegex(doc["timestamp"], RFC3339)
        ts = time.mktime(time.strptime(doc["timestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
        self.assertLess(abs(ts - time.mktime(time.gmtime())), 120)
        self.assertIsInstance(doc["uptime"], (int, float))
        self.assertGreaterEqual(doc["uptime"], 0)
        self.assertIsInstance(doc["version"], str)
        self.assertTrue(doc["version"])
        self.assertEqual(doc["checks"]["redis"]["status"], "ok")
        # Redis' memory, in bytes (maxmemory 0: no cap).
        redis = doc["checks"]["redis"]
        self.assertIsInstance(redis["used_memory"], int)
        self.assertGreater(redis["used_memory"], 0)
        self.assertIsInstance(redis["maxmemory"], int)
        self.assertGreaterEqual(redis["maxmemory"], 0)
        helpers = doc["checks"]["helpers"]
        self.assertIn(helpers["status"], ("ok", "down"))

    def test_health_needs_no_credentials_and_ignores_bad_ones(self):
        r = get("/health", headers={"Authorization": "Bearer garbage"})
        self.assertEqual(r.status, 200, r)

    def test_health_wrong_method(self):
        r = sp.post("/health", b"")
        self.assertError(r, 405, "method_not_allowed")
        self.assertEqual(r.headers.get("Allow"), "GET")

    def test_metrics_counts_401(self):
        before = auth_401_count()
        self.assertIsNotNone(before, "/metrics did not answer 200")
        self.assertEqual(get("/api/auth/verify").status, 401)
        # Counters are flushed to Redis once a second.
        after = sp.wait_until(
            lambda: (auth_401_count() or 0) > before and auth_401_count(), 5, 0.2)
        self.assertTrue(after, "the 401 was not counted within 5 s")
        r = get("/metrics")
        self.assertTrue(r.headers["Content-Type"].startswith("text/plain"), r)
        text = r.body.decode()
        self.assertIn('sandpipe_requests_total{family="auth",status="401"}', text)
        self.assertIn("# TYPE sandpipe_requests_total counter", text)
        # Every sample line is "name{labels} value" or "name value".
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, r"^[a-z_]+(\{[^}]*\})? \d+(\.\d+)?$")
