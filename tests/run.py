#!/usr/bin/env python3
"""tests/run.py: runs every sandpipe test suite and prints one summary line.

First the Check unit binaries (check_common, check_sbx in the build
directory, SP_BUILD_DIR, default state/build), built with make when the
build knows them, then the Python unit tests of tests/unit/test_*.py
(the runner's own), then the libFuzzer targets of tests/fuzz/
(tests/fuzz/run.sh, SP_FUZZ_SECONDS each; SP_FUZZ=0 leaves them out; each
target counts as one test), then the integration tests in
tests/integration/test_*.py (unittest) against the stack that
`./sandpipe test` started. Usage: run.py [NAME-FILTER] ("fuzz" or
"fuzz_<target>" picks fuzzing).

A skipped test counts as skipped, not passed. A skipped security or
isolation test (is_security) fails the run in CI (CI=true, as the launcher
reads it), where everything those tests need is installed; elsewhere it
prints a warning. The last line is "N passed, M failed, K skipped"
(SUMMARY_FORMAT); exits 1 if anything failed or nothing passed.
"""
import os
import re
import subprocess
import sys
import unittest

ROOT = os.environ.get("SP_ROOT") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("SP_BUILD_DIR") or os.path.join(ROOT, "state",
                                                       "build")
CHECK_BINARIES = ("check_common", "check_sbx", "check_frame", "check_tspec",
                  "check_netpol", "check_storage",
                  "check_gzip")
CHECK_SUMMARY = re.compile(r"(\d+)%: Checks: (\d+), Failures: (\d+), "
                           r"Errors: (\d+)")
CHECK_SKIPPED = 77  # automake's exit status for "skipped"
FUZZ_LINE = re.compile(r"^fuzz (\S+): (ok|FAIL)")
SUMMARY_FORMAT = "{passed} passed, {failed} failed, {skipped} skipped"
SUMMARY_LINE = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$")

# Suites that test security or isolation: a skip there means a guarantee
# went unchecked. Names are matched against Check binaries and unittest ids
# (which include the module), and so are the words of SECURITY_WORDS.
SECURITY_SUITES = ("check_sbx", "test_sandboxes_security")
SECURITY_WORDS = re.compile(r"security|isolat|escape", re.IGNORECASE)


def in_ci():
    """True when CI=true, as the launcher reads it."""
    return os.environ.get("CI") == "true"


def is_security(name):
    """Whether the test or suite called name is a security or isolation
    test (SECURITY_SUITES, or a name that says so)."""
    return (any(s in name for s in SECURITY_SUITES)
            or SECURITY_WORDS.search(name) is not None)


class Tally:
    """Counts of one run or one part of it; skips keep their name and
    reason."""

    def __init__(self, passed=0, failed=0):
        self.passed = passed
        self.failed = failed
        self.skips = []  # (name, reason)

    @property
    def skipped(self):
        return len(self.skips)

    def skip(self, name, reason):
        self.skips.append((name, reason))

    def add(self, other):
        self.passed += other.passed
        self.failed += other.failed
        self.skips += other.skips

    def summary(self):
        return SUMMARY_FORMAT.format(passed=self.passed, failed=self.failed,
                                     skipped=self.skipped)


def parse_summary(line):
    """(passed, failed, skipped) of a summary line, or None."""
    m = SUMMARY_LINE.match(line.strip())
    return tuple(int(g) for g in m.groups()) if m else None


def judge_skips(tally, ci):
    """Security and isolation skips: with ci each one moves from skipped to
    failed; without, each stays a skip. Returns the lines that say so."""
    lines, kept = [], []
    for name, reason in tally.skips:
        if not is_security(name):
            kept.append((name, reason))
        elif ci:
            tally.failed += 1
            lines.append(f"FAIL: security/isolation test {name} was skipped "
                         f"in CI ({reason}); CI has what it needs, so a "
                         "skip is a failure")
        else:
            kept.append((name, reason))
            lines.append(f"warning: security/isolation test {name} was "
                         f"skipped ({reason}); CI fails on this")
    tally.skips = kept
    return lines


def run_check(name):
    """Build (if the Makefile has a rule) and run one Check binary.
    Returns a Tally; a binary that is not built, or that exits 77 without a
    Check summary (check_sbx without root), is one skip."""
    tally = Tally()
    if os.path.exists(os.path.join(BUILD, "Makefile")):
        mk = subprocess.run(["make", "-s", "-C", BUILD, name],
                            capture_output=True, text=True)
        if mk.returncode != 0 and "No rule to make target" not in mk.stderr:
            print(f"{name}: build FAILED\n{mk.stdout}{mk.stderr}")
            tally.failed = 1
            return tally
    path = os.path.join(BUILD, name)
    if not os.access(path, os.X_OK):
        print(f"{name}: not built, skipped")
        tally.skip(name, f"not built in {BUILD}")
        return tally
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
    found = CHECK_SUMMARY.findall(out)
    if not found and rc == CHECK_SKIPPED:
        reason = out.strip().splitlines()[-1] if out.strip() else "exit 77"
        print(f"{name}: skipped ({reason})")
        tally.skip(name, reason)
        return tally
    if not found:
        print(f"{name}: FAIL (exit {rc}, no Check summary)\n{out}")
        tally.failed = 1
        return tally
    total = sum(int(c) for _, c, _, _ in found)
    tally.failed = sum(int(f) + int(e) for _, _, f, e in found)
    tally.passed = total - tally.failed
    print(f"{name}: {tally.passed} passed, {tally.failed} failed")
    if tally.failed:
        print(out)
    return tally


def run_fuzz(pattern):
    """Run tests/fuzz/run.sh (every target, or the one a "fuzz_<name>"
    filter names). Returns a Tally, one test per target (one skip when
    run.sh ran none: no clang), or None when left out (SP_FUZZ=0, another
    filter)."""
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
    tally = Tally()
    last = ""
    try:
        # Output goes straight through: a failure prints its report.
        proc = subprocess.Popen([script] + targets, cwd=ROOT, text=True,
                                errors="replace", stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.strip():
                last = line.strip()
            m = FUZZ_LINE.match(line)
            if m and m.group(2) == "ok":
                tally.passed += 1
            elif m:
                tally.failed += 1
        # Bounded by run.sh: each target runs SP_FUZZ_SECONDS.
        rc = proc.wait()
    except OSError as e:
        print(f"fuzz: FAIL ({e})")
        tally.failed += 1
        return tally
    if rc != 0 and tally.failed == 0:
        print(f"fuzz: FAIL (run.sh exit {rc})")
        tally.failed = 1
    if tally.passed + tally.failed == 0:
        tally.skip("fuzz", last or "run.sh ran no target")  # run.sh said why
    return tally


class CountingResult(unittest.TestResult):
    """Prints each test as it ends (to out) and counts tests, not subtests,
    into a Tally: a test with any failure, error or unexpected success
    failed; else one that skipped (itself or a subtest) is skipped; else it
    passed. Errors and skips outside a test (setUpClass, setUpModule, class
    cleanups) count as one failure or skip each, under the name unittest
    gives them."""

    def __init__(self, out=None):
        super().__init__()
        self.out = out or sys.stdout
        self.tally = Tally()
        self._current = None
        self._bad = False
        self._skip = None

    def _print(self, text):
        print(text, end="", file=self.out, flush=True)

    def startTest(self, test):
        super().startTest(test)
        self._current = test
        self._bad = False
        self._skip = None
        self._print(f"{test.id()} ... ")

    def _fail(self, test, err, kind):
        self._print(f"\n  {kind}: {self._exc_info_to_string(err, test)}")
        if self._current is None:
            # Outside a test: the whole class or module did not run.
            self._print(f"{test.id()} FAIL\n")
            self.tally.failed += 1
        else:
            self._bad = True

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
        if self._current is None:
            self._print(f"{test.id()} ... skipped ({reason})\n")
            self.tally.skip(test.id(), reason)
        else:
            self._print(f"skipped ({reason}) ")
            if self._skip is None:
                self._skip = reason

    def stopTest(self, test):
        super().stopTest(test)
        if self._bad:
            self.tally.failed += 1
            self._print("FAIL\n")
        elif self._skip is not None:
            self.tally.skip(test.id(), self._skip)
            self._print("skipped\n")
        else:
            self.tally.passed += 1
            self._print("ok\n")
        self._current = None


def flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from flatten(item)
        else:
            yield item


def run_unittests(top, pattern):
    """Run the tests of top/test_*.py whose id matches pattern. Returns a
    Tally; a module that does not import shows up as a failing test."""
    if not os.path.isdir(top):
        return Tally()
    sys.path.insert(0, top)
    loader = unittest.TestLoader()
    tests = [t for t in flatten(loader.discover(top, "test_*.py", top))
             if not pattern or pattern in t.id()]
    result = CountingResult()
    unittest.TestSuite(tests).run(result)
    return result.tally


def main():
    # Several names, given apart or comma-separated ("test_e2b,test_sse"):
    # each is run as if given alone, in order.
    patterns = [p for a in sys.argv[1:] for p in a.split(",") if p] or [""]
    tally = Tally()
    for pattern in patterns:
        run_pattern(pattern, tally)
    for line in judge_skips(tally, in_ci()):
        print(line)
    print(tally.summary())
    return 1 if tally.failed or tally.passed == 0 else 0


def run_pattern(pattern, tally):
    for name in CHECK_BINARIES:
        if pattern and pattern not in name:
            continue
        tally.add(run_check(name))
    fuzz_only = pattern == "fuzz" or pattern.startswith("fuzz_")
    if not fuzz_only:
        tally.add(run_unittests(os.path.join(ROOT, "tests", "unit"), pattern))
    res = run_fuzz(pattern)
    if res:
        tally.add(res)
    if not fuzz_only:
        tally.add(run_unittests(os.path.join(ROOT, "tests", "integration"),
                                pattern))


if __name__ == "__main__":
    sys.exit(main())
