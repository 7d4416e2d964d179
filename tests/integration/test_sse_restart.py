"""test_sse_restart.py: streams survive a restart of the SSE relay. Runs
tests/browser/sse_restart.test.mjs (node's test runner, headless Chromium
through playwright-core): a plain EventSource on a running execution, the
relay killed by pid and kept down for 4 s, then started again by the
supervisor; every event must arrive exactly once, in order. Skipped when
Debian's chromium is not installed (`./sandpipe test` installs it)."""
import os
import subprocess

import sp


@sp.needs_chromium
class RelayRestartTest(sp.Case):
    def test_event_source_across_a_relay_restart(self):
        env = dict(os.environ, SP_LISTEN=sp.LISTEN, SP_API_KEY=sp.API_KEY,
                   SP_STATE_DIR=os.path.abspath(sp.STATE))
        try:
            proc = sp.run_browser_script(self, "sse_restart.test.mjs", env,
                                         180)
        except subprocess.TimeoutExpired as e:
            self.fail(f"the EventSource test did not end in 180 s:\n{e.stdout}")
        finally:
            sp.release("sp-sse")
        self.assertEqual(proc.returncode, 0, "the EventSource test failed")
        # The relay is back and serves.
        self.assertTrue(sp.wait_until(
            lambda: sp.supervision().get("sp-sse", {}).get("state") ==
            "running", 5, 0.1), sp.supervision().get("sp-sse"))


if __name__ == "__main__":
    unittest.main()
