"""test_browser.py: the web console in a real browser, as part of the
integration suite. Runs tests/browser/console.test.mjs (the workspace: run,
terminal, files) and tests/browser/templates.test.mjs (the Templates and
Sandbox views: a build with its live log, a sandbox of it with its disk)
and tests/browser/workflows.test.mjs (the Workflows view: a run's
findings, status and log) and tests/browser/workspaces.test.mjs (the
Workspaces view: a workspace's file across two sandboxes, a snapshot)
with node's test runner, headless Chromium through playwright-core, against
the stack under test, each with a fresh API key of its own, so that the
sandboxes the console makes are not counted against the other tests'
subject. Screenshots land in $SP_TEST_OUT/browser/. Skipped when Debian's
chromium is not installed (`./sandpipe test` installs it)."""
import os
import subprocess
import unittest

import sp


@sp.needs_chromium
class BrowserConsoleTest(sp.Case):
    def browser(self, script, timeout):
        """Runs tests/browser/<script> with a key of its own; fails when
        any of its steps failed or it did not end in timeout seconds."""
        _, key, _ = sp.create_key()
        out = os.environ.get("SP_TEST_OUT") or os.path.join(sp.ROOT, "tests",
                                                            "out")
        env = dict(os.environ, SP_LISTEN=sp.LISTEN, SP_API_KEY=key,
                   SP_TEST_OUT=out)
        try:
            proc = sp.run_browser_script(self, script, env, timeout)
        except subprocess.TimeoutExpired as e:
            self.fail(f"{script} did not end in {timeout} s:\n{e.stdout}")
        self.assertEqual(proc.returncode, 0,
                         f"{script} failed (screenshots of failed steps in "
                         f"{out}/browser/)")

    def test_console_in_chromium(self):
        self.browser("console.test.mjs", 300)

    def test_templates_in_chromium(self):
        self.browser("templates.test.mjs", 600)

    def test_workflows_in_chromium(self):
        self.browser("workflows.test.mjs", 300)

    def test_workspaces_in_chromium(self):
        self.browser("workspaces.test.mjs", 400)


if __name__ == "__main__":
    unittest.main()
