"""test_run.py: the test runner's own counting (tests/run.py) on synthetic
unittest results: skips are counted apart from passes, errors and skips
outside a test (setUpClass) are counted, the summary line keeps its
parseable format, and a skipped security or isolation test fails in CI
and only warns elsewhere. Needs no running stack."""
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
import run  # noqa: E402 (tests/run.py)


class _Cases:
    """Synthetic cases, run by the tests below. Nested in a plain class
    so that discovery does not collect them."""

    class Plain(unittest.TestCase):
        def test_pass(self):
            pass

        def test_fail(self):
            self.fail("meant to fail")

        def test_error(self):
            raise RuntimeError("meant to err")

        def test_skip(self):
            self.skipTest("nothing to run on")

        def test_skip_in_subtest(self):
            with self.subTest(part=1):
                pass
            with self.subTest(part=2):
                self.skipTest("part 2 needs a thing")

        def test_fail_in_subtest(self):
            with self.subTest(part=1):
                self.skipTest("part 1 needs a thing")
            with self.subTest(part=2):
                self.fail("part 2 fails")

        @unittest.expectedFailure
        def test_unexpected_success(self):
            pass

    class BrokenSetUp(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            raise RuntimeError("class set-up broke")

        def test_never_runs(self):
            pass

    class SkippedSetUp(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            raise unittest.SkipTest("class needs a thing")

        def test_never_runs(self):
            pass

    @unittest.skip("whole class skipped")
    class SkippedClass(unittest.TestCase):
        def test_a(self):
            pass

        def test_b(self):
            pass


def _run(*cases):
    """Run the named tests of the synthetic cases; returns the Tally."""
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for case in cases:
        if isinstance(case, tuple):
            suite.addTest(case[0](case[1]))
        else:
            suite.addTests(loader.loadTestsFromTestCase(case))
    result = run.CountingResult(out=io.StringIO())
    suite.run(result)
    return result.tally


class CountingTest(unittest.TestCase):
    def test_each_outcome(self):
        t = _run(_Cases.Plain)
        # pass; fail, error, subtest failure, unexpected success; skip and
        # a test whose only non-pass is a skipped subtest.
        self.assertEqual((t.passed, t.failed, t.skipped), (1, 4, 2))
        self.assertIn(("_Cases.Plain.test_skip", "nothing to run on"),
                      [(n.split(".", 1)[1], r) for n, r in t.skips])

    def test_class_set_up_error_is_a_failure(self):
        t = _run(_Cases.BrokenSetUp)
        self.assertEqual((t.passed, t.failed, t.skipped), (0, 1, 0))

    def test_class_set_up_skip_is_a_skip(self):
        t = _run(_Cases.SkippedSetUp)
        self.assertEqual((t.passed, t.failed, t.skipped), (0, 0, 1))
        self.assertIn("SkippedSetUp", t.skips[0][0])
        self.assertEqual(t.skips[0][1], "class needs a thing")

    def test_skipped_class_skips_each_test(self):
        t = _run(_Cases.SkippedClass)
        self.assertEqual((t.passed, t.failed, t.skipped), (0, 0, 2))

    def test_summary_line(self):
        t = _run((_Cases.Plain, "test_pass"), (_Cases.Plain, "test_skip"),
                 (_Cases.Plain, "test_fail"))
        line = t.summary()
        self.assertEqual(line, "1 passed, 1 failed, 1 skipped")
        self.assertEqual(run.parse_summary(line), (1, 1, 1))
        self.assertIsNone(run.parse_summary("1 passed, 1 failed"))

    def test_tallies_add_up(self):
        a = run.Tally(passed=2, failed=1)
        a.skip("x", "why")
        b = run.Tally(passed=3)
        b.skip("y", "why not")
        a.add(b)
        self.assertEqual(a.summary(), "5 passed, 1 failed, 2 skipped")


class SecuritySkipTest(unittest.TestCase):
    def test_security_names(self):
        for name in ("check_sbx",
                     "test_sandboxes_security.IsolationTest.test_no_network",
                     "setUpClass (test_sandboxes_security.CanaryTest)",
                     "test_http.SecurityHeadersTest.test_headers",
                     "test_x.Y.test_escape_from_root",
                     "test_x.Y.test_isolation"):
            self.assertTrue(run.is_security(name), name)
        for name in ("check_common", "fuzz",
                     "test_browser.BrowserConsoleTest.test_console_in_chromium",
                     "test_contexts.ContextTest.test_matplotlib"):
            self.assertFalse(run.is_security(name), name)

    def _tally(self):
        t = run.Tally(passed=5)
        t.skip("check_sbx", "check_sbx: needs root and SP_INIT_PATH")
        t.skip("test_browser.BrowserConsoleTest.test_console_in_chromium",
               "no chromium")
        return t

    def test_in_ci_a_security_skip_fails(self):
        t = self._tally()
        lines = run.judge_skips(t, ci=True)
        self.assertEqual((t.passed, t.failed, t.skipped), (5, 1, 1))
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("FAIL: "), lines)
        self.assertIn("check_sbx", lines[0])
        self.assertIn("needs root", lines[0])

    def test_outside_ci_a_security_skip_warns(self):
        t = self._tally()
        lines = run.judge_skips(t, ci=False)
        self.assertEqual((t.passed, t.failed, t.skipped), (5, 0, 2))
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("warning: "), lines)
        self.assertIn("check_sbx", lines[0])

    def test_ci_is_read_as_the_launcher_reads_it(self):
        saved = os.environ.get("CI")
        try:
            for value, want in (("true", True), ("", False), ("1", False)):
                os.environ["CI"] = value
                self.assertIs(run.in_ci(), want, value)
            del os.environ["CI"]
            self.assertFalse(run.in_ci())
        finally:
            if saved is None:
                os.environ.pop("CI", None)
            else:
                os.environ["CI"] = saved


if __name__ == "__main__":
    unittest.main()
