"""test_browser.py: the web console in a real browser, as part of the
integration suite. Runs tests/browser/console.test.mjs (node's test runner,
headless Chromium through playwright-core) against the stack under test
with a fresh API key of its own, so that the sandbox the console makes is
not counted against the other tests' subject. Screenshots land in
$SP_TEST_OUT/browser/. Skipped when Debian's chromium is not installed
(`./sandpipe test` installs it)."""
import os
import shutil
import subprocess
import unittest

import sp

ROOT = os.environ.get("SP_ROOT") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = "/usr/bin/chromium"
SCRIPT = os.path.join(ROOT, "tests", "browser", "console.test.mjs")


@unittest.skipUnless(os.access(CHROMIUM, os.X_OK),
                     f"{CHROMIUM} is not installed (Debian package chromium; "
                     "./sandpipe test installs it)")
class BrowserConsoleTest(sp.Case):
    def test_console_in_chromium(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is not installed")
        self.assertTrue(
            os.path.isdir(os.path.join(ROOT, "web", "node_modules",
                                       "playwright-core")),
            "web/node_modules is missing: ./sandpipe up runs npm ci in web/")
        _, key, _ = sp.create_key()
        out = os.environ.get("SP_TEST_OUT") or os.path.join(ROOT, "tests",
                                                            "out")
        env = dict(os.environ, SP_LISTEN=sp.LISTEN, SP_API_KEY=key,
                   SP_TEST_OUT=out)
        try:
            proc = subprocess.run([node, SCRIPT], env=env, cwd=ROOT,
                                  capture_output=True, text=True,
                                  errors="replace", timeout=300)
        except subprocess.TimeoutExpired as e:
            self.fail(f"the browser test did not end in 300 s:\n{e.stdout}")
        # Node's TAP output, indented so that it reads as this test's: the
        # verdict of each step, and everything when something failed.
        lines = (proc.stdout + proc.stderr).splitlines()
        if proc.returncode == 0:
            lines = [ln for ln in lines if ln.startswith(("ok ", "not ok "))]
        print("\n" + "\n".join("    " + ln for ln in lines))
        self.assertEqual(proc.returncode, 0,
                         "the browser test failed (screenshots of failed "
                         f"steps in {out}/browser/)")


if __name__ == "__main__":
    unittest.main()
