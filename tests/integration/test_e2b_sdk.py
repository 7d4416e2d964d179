"""test_e2b_sdk.py: E2B's official JavaScript SDK against the stack. Runs
tests/sdk/*.test.mjs (node's test runner; the npm packages e2b and
@e2b/code-interpreter that ./sandpipe test installs in tests/sdk) with
E2B_API_KEY, E2B_API_URL and E2B_SANDBOX_URL pointing at the stack under
test, and a second API key for the other-owner cases. The hostile cases
the SDK never sends are test_e2b_api.py's."""
import glob
import os
import shutil
import subprocess
import unittest

import sp


class E2BSdkTest(sp.Case):
    def test_sdk_files(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is not installed")
        sdk = os.path.join(sp.ROOT, "tests", "sdk")
        self.assertTrue(
            os.path.isdir(os.path.join(sdk, "node_modules", "e2b")),
            "tests/sdk/node_modules is missing: ./sandpipe test runs npm ci "
            "there")
        _, other, _ = sp.create_key()
        url = f"http://{sp.LISTEN}"
        env = dict(os.environ, E2B_API_KEY=sp.API_KEY, E2B_API_URL=url,
                   E2B_SANDBOX_URL=url, SP_OTHER_KEY=other)
        for v in ("E2B_DEBUG", "E2B_DOMAIN"):
            env.pop(v, None)
        files = sorted(glob.glob(os.path.join(sdk, "*.test.mjs")))
        self.assertTrue(files)
        for f in files:
            with self.subTest(file=os.path.basename(f)):
                try:
                    proc = subprocess.run(
                        [node, "--test", "--test-reporter=tap", f], env=env,
                        cwd=sdk, capture_output=True, text=True,
                        errors="replace", timeout=600)
                except subprocess.TimeoutExpired as e:
                    self.fail(f"{f} did not end in 600 s:\n{e.stdout}")
                lines = (proc.stdout + proc.stderr).splitlines()
                if proc.returncode == 0:
                    lines = [ln for ln in lines
                             if ln.lstrip().startswith(("ok ", "not ok "))]
                print("\n" + "\n".join("    " + ln for ln in lines))
                self.assertEqual(proc.returncode, 0, f"{f} failed")


if __name__ == "__main__":
    unittest.main()
