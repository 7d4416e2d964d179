"""test_sse_restart.py: streams survive a restart of the SSE relay. Runs
tests/browser/sse_restart.test.mjs (node's test runner, headless Chromium
through playwright-core): a plain EventSource on a running execution, the
relay killed by pid and kept down for 4 s, then started again by the
supervisor; every event must arrive exactly once, in order. Skipped when
Debian's chromium is not installed (`./sandpipe test` installs it)."""
import os
import shutil
import subprocess
import unittest

import sp

ROOT = os.environ.get("SP_ROOT") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = "/usr/bin/chromium"
SCRIPT = os.path.join(ROOT, "tests", "browser", "sse_restart.test.mjs")


@unittest.skipUnless(os.access(CHROMIUM, os.X_OK),
                     f"{CHROMIUM} is not installed (Debian package chromium; "
                     "./sandpipe test installs it)")
class RelayRestartTest(sp.Case):
    def test_event_source_across_a_relay_restart(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is not installed")
        self.assertTrue(
            os.path.isdir(os.path.join(ROOT, "web", "node_modules",
                                       "playwright-core")),
            "web/node_modules is missing: ./sandpipe up runs npm ci in web/")
        env = dict(os.environ, SP_LISTEN=sp.LISTEN, SP_API_KEY=sp.API_KEY,
                   SP_STATE_DIR=os.path.abspath(sp.STATE))
        try:
            proc = subprocess.run([node, SCRIPT], env=env, cwd=ROOT,
                                  capture_output=True, text=True,
                                  errors="replace", timeout=180)
        except subprocess.TimeoutExpired as e:
            sp.release("sp-sse")
            self.fail(f"the EventSource test did not end in 180 s:\n{e.stdout}")
        finally:
            sp.release("sp-sse")
        lines = (proc.stdout + proc.stderr).splitlines()
        if proc.returncode == 0:
            lines = [ln for ln in lines if ln.startswith(("ok ", "not ok "))]
        print("\n" + "\n".join("    " + ln for ln in lines))
        self.assertEqual(proc.returncode, 0, "the EventSource test failed")
        # The relay is back and serves.
        self.assertTrue(sp.wait_until(
            lambda: sp.supervision().get("sp-sse", {}).get("state") ==
            "running", 5, 0.1), sp.supervision().get("sp-sse"))


if __name__ == "__main__":
    unittest.main()
