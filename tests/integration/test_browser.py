"""test_browser.py: the web console in a real browser, as part of the
integration suite. Runs tests/browser/console.test.mjs (node's test runner,
headless Chromium through playwright-core) against the stack under test
with a fresh API key of its own, so that the sandbox the console makes is
not counted against the other tests' subject. Screenshots land in
$SP_TEST_OUT/browser/. Skipped when Debian's chromium is not installed
(`./sandpipe test` installs it)."""
import os
import subprocess

import sp


@sp.needs_chromium
class BrowserConsoleTest(sp.Case):
    def test_console_in_chromium(self):
        _, key, _ = sp.create_key()
        out = os.environ.get("SP_TEST_OUT") or os.path.join(sp.ROOT, "tests",
                                                            "out")
        env = dict(os.environ, SP_LISTEN=sp.LISTEN, SP_API_KEY=key,
                   SP_TEST_OUT=out)
        try:
            proc = sp.run_browser_script(self, "console.test.mjs", env, 300)
        except subprocess.TimeoutExpired as e:
            self.fail(f"the browser test did not end in 300 s:\n{e.stdout}")
        self.assertEqual(proc.returncode, 0,
                         "the browser test failed (screenshots of failed "
                         f"steps in {out}/browser/)")


if __name__ == "__main__":
    unittest.main()
