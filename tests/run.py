#!/usr/bin/env python3
"""tests/run.py: runs every sandpipe test suite and prints one summary line.

First the Check unit binaries (build/check_common, build/check_sbx), built
with make when the build knows them, then the libFuzzer targets of
tests/fuzz/ (tests/fuzz/run.sh, SP_FUZZ_SECONDS each; SP_FUZZ=0 leaves them
out; each target counts as one test), then the integration tests in
tests/integration/test_*.py (unittest) against the stack that
`./sandpipe test` started. Usage: run.py [NAME-FILTER] ("fuzz" or
"fuzz_<target>" picks fuzzing). Ends with "N passed, M failed"; exits 1
if anything failed or nothing ran.
"""
import os
import re
import subprocess
import sys
import unittest

ROOT = os.environ.get("SP_ROOT") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("SP_BUILD_DIR") or os.path.join(ROOT, "build")
CHECK_BINARIES = ("check_common", "check_sbx", "check_frame")
SUMMARY = re.compile(r"(\d+)%: Checks: (\d+), Failures: (\d+), Errors: (\d+)")
FUZZ_LINE = re.compile(r"^fuzz (\S+): (ok|FAIL)")


def run_check(name):
    """Build (if the Makefile has a rule) and run one Check binary.
    Returns (passed, failed), or None if the binary does not exist."""
    if os.path.exists(os.path.join(BUILD, "Makefile")):
        mk = subprocess.run(["make", "-s", "-C", BUILD, name],
                            capture_output=True, text=True)
        if mk.returncode != 0 and "No rule to make target" not in mk.stderr:
            print(f"{name}: build FAILED\n{mk.stdout}{mk.stderr}")
            return 0, 1
    path = os.path.join(BUILD, name)
    if not os.access(path, os.X_OK):
        print(f"{name}: not built, skipped")
        return None
    env = dict(os.environ, CK_FORK="yes")
    init = os.path.join(BUILD, "sp-init")
    if os.path.exists(init):
        env["SP_INIT_PATH"] = init
    try:
        proc = subprocess.run([path], env=env, capture_output=True,
                              text=True, errors="replace", timeout=600)
        out, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired:
        out, rc = "timed out after 600 s", -1
    found = SUMMARY.findall(out)
    if not found:
        print(f"{name}: FAIL (exit {rc}, no Check summary)\n{out}")
        return 0, 1
    total = sum(int(c) for _, c, _, _ in found)
    failed = sum(int(f) + int(e) for _, _, f, e in found)
    print(f"{name}: {total - failed} passed, {failed} failed")
    if failed:
        print(out)
    return total - failed, failed


def run_fuzz(pattern):
    """Run tests/fuzz/run.sh (every target, or the one a "fuzz_<name>"
    filter names). Returns (passed, failed), one test per target, or None
    when left out (SP_FUZZ=0, another filter, no clang)."""
    if os.environ.get("SP_FUZZ", "1") == "0":
        return None
    script = os.path.join(ROOT, "tests", "fuzz", "run.sh")
    targets = []
    if pattern.startswith("fuzz_"):
        targets = [pattern[len("fuzz_"):]]
    elif pattern and pattern not in "fuzz":
        return None
    if not os.path.exists(script):
        return None
    passed = failed = 0
    try:
        # Output goes straight through: a failure prints its report.
        proc = subprocess.Popen([script] + targets, cwd=ROOT, text=True,
                                errors="replace", stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        for line in proc.stdout:
            print(line, end="", flush=True)
            m = FUZZ_LINE.match(line)
            if m and m.group(2) == "ok":
                passed += 1
            elif m:
                failed += 1
        # Bounded by run.sh: each target runs SP_FUZZ_SECONDS.
        rc = proc.wait()
    except OSError as e:
        print(f"fuzz: FAIL ({e})")
        return passed, failed + 1
    if rc != 0 and failed == 0:
        print(f"fuzz: FAIL (run.sh exit {rc})")
        failed = 1
    if passed + failed == 0:
        return None  # skipped: run.sh said why
    return passed, failed


class CountingResult(unittest.TestResult):
    """Prints each test as it ends and counts tests, not subtests."""

    def __init__(self):
        super().__init__()
        self.passed = self.nfailed = 0
        self._bad = False

    def startTest(self, test):
        super().startTest(test)
        self._bad = False
        print(f"{test.id()} ... ", end="", flush=True)

    def _fail(self, test, err, kind):
        self._bad = True
        print(f"\n  {kind}: {self._exc_info_to_string(err, test)}",
              end="", flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err, "ERROR")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err, "FAIL")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._fail(subtest, err, "FAIL")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._bad = True

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        print(f"skipped ({reason}) ", end="")

    def stopTest(self, test):
        super().stopTest(test)
        if self._bad:
            self.nfailed += 1
            print("FAIL", flush=True)
        else:
            self.passed += 1
            print("ok", flush=True)


def flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from flatten(item)
        else:
            yield item


def run_integration(pattern):
    top = os.path.join(ROOT, "tests", "integration")
    if not os.path.isdir(top):
        return 0, 0
    sys.path.insert(0, top)
    loader = unittest.TestLoader()
    tests = [t for t in flatten(loader.discover(top, "test_*.py", top))
             if not pattern or pattern in t.id()]
    result = CountingResult()
    unittest.TestSuite(tests).run(result)
    # A module that does not import shows up as a failing test.
    return result.passed, result.nfailed


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else ""
    passed = failed = 0
    for name in CHECK_BINARIES:
        if pattern and pattern not in name:
            continue
        res = run_check(name)
        if res:
            passed, failed = passed + res[0], failed + res[1]
    res = run_fuzz(pattern)
    if res:
        passed, failed = passed + res[0], failed + res[1]
    if pattern == "fuzz" or pattern.startswith("fuzz_"):
        p, f = 0, 0
    else:
        p, f = run_integration(pattern)
    passed, failed = passed + p, failed + f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
