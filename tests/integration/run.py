#!/usr/bin/python3
"""Integration test runner: runs every test_*.py beside this file (unittest
discovery) against a real Marmot binary and prints TAP for meson:

    run.py --marmot /path/to/marmot [-k SUBSTRING]...

Prints `1..N`, then `ok K - name` or `not ok K - name` per test case, with
the failure's traceback and the test's notes (timings) as `# ` lines.
Exits 0 only if every test passed (skips count as passing). Every instance
a test started is torn down on every exit path (end, exception, SIGTERM
from meson's timeout, SIGINT).
"""

import argparse
import atexit
import os
import signal
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

# A single test case may not take longer than this (seconds): a hung test
# becomes a failure instead of eating the whole meson timeout.
TEST_TIMEOUT = 240


class TestTimeout(Exception):
    pass


def tap_comment(text):
    return ''.join('# %s\n' % line for line in str(text).splitlines())


def test_name(test):
    """'test_smtp.SubmissionTest.test_auth_plain' style names."""
    tid = test.id()
    if tid.startswith('unittest.loader._FailedTest.'):
        return 'import ' + tid.split('.', 3)[-1]
    return tid


class TapResult(unittest.TestResult):
    """Prints one TAP line per test as soon as it ends."""

    def __init__(self, out):
        super().__init__()
        self.out = out
        self.number = 0
        self.current_failed = None
        self.started = 0.0
        self.broken_fixtures = []
        self.not_ok = 0
        self.skip_reason = None
        self.reported = set()
        # setUpClass raising SkipTest skips every test of the class
        # without startTest/stopTest: remembered here, given their TAP
        # lines after the run (report_unrun), so the plan still holds.
        self.class_skips = {}

    def startTest(self, test):
        super().startTest(test)
        self.current_failed = None
        self.started = time.monotonic()
        harness.take_notes()
        signal.alarm(TEST_TIMEOUT)

    def _fail(self, test, err):
        text = ''.join(traceback.format_exception(*err))
        if not isinstance(test, unittest.TestCase):
            # A class or module fixture (setUpClass...) failed: not a test
            # case of its own, so it cannot get a TAP line; report it and
            # make the run exit non-zero.
            self.broken_fixtures.append(str(test))
            self.out.write(tap_comment('fixture %s failed:\n%s' % (test, text)))
            self.out.flush()
            return
        self.current_failed = text

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            text = ''.join(traceback.format_exception(*err))
            self.current_failed = (self.current_failed or '') + \
                'subtest %s:\n%s' % (subtest, text)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if not isinstance(test, unittest.TestCase):
            # unittest's _ErrorHolder: "setUpClass (module.Class)".
            self.class_skips[str(test).split('(', 1)[-1].rstrip(')')] = reason
            return
        self.skip_reason = reason

    def report_unrun(self, tests):
        """One TAP line for each test case that never started: skipped
        with its class (ok # SKIP), or not run because a fixture broke
        (not ok)."""
        for test in tests:
            name = test_name(test)
            if name in self.reported:
                continue
            self.number += 1
            cls = '%s.%s' % (type(test).__module__, type(test).__qualname__)
            reason = self.class_skips.get(cls)
            if reason is not None:
                self.out.write('ok %d - %s # SKIP %s\n'
                               % (self.number, name,
                                  reason.replace('\n', ' ')))
            else:
                self.not_ok += 1
                self.out.write('not ok %d - %s\n' % (self.number, name))
                self.out.write(tap_comment('never ran (its class or module '
                                           'fixture failed)'))
        self.out.flush()

    def stopTest(self, test):
        signal.alarm(0)
        super().stopTest(test)
        self.number += 1
        elapsed = time.monotonic() - self.started
        name = test_name(test)
        self.reported.add(name)
        reason = getattr(self, 'skip_reason', None)
        self.skip_reason = None
        if self.current_failed is not None:
            self.not_ok += 1
            line = 'not ok %d - %s' % (self.number, name)
        elif reason is not None:
            line = 'ok %d - %s # SKIP %s' % (self.number, name,
                                             reason.replace('\n', ' '))
        else:
            line = 'ok %d - %s' % (self.number, name)
        self.out.write(line + '\n')
        if self.current_failed is not None:
            self.out.write(tap_comment(self.current_failed))
            shared = harness.SharedInstance.instance
            if shared is not None:
                self.out.write(tap_comment(shared.log_text(limit=3000)))
        for n in harness.take_notes():
            self.out.write(tap_comment(n))
        self.out.write('# (%.2f s)\n' % elapsed)
        self.out.flush()


def flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from flatten(item)
        else:
            yield item


def on_alarm(signum, frame):
    raise TestTimeout('test case took longer than %d s' % TEST_TIMEOUT)


def on_term(signum, frame):
    harness.cleanup_all()
    sys.stdout.write('# terminated by signal %d\n' % signum)
    sys.stdout.flush()
    os._exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--marmot', required=True, help='the marmot binary')
    ap.add_argument('-k', action='append', default=[],
                    help='run only tests whose name contains this')
    ap.add_argument('--list', action='store_true',
                    help='list the tests and exit')
    args = ap.parse_args()

    harness.MARMOT = os.path.abspath(args.marmot)
    os.environ['MARMOT_BINARY'] = harness.MARMOT
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    atexit.register(harness.cleanup_all)

    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern='test_*.py', top_level_dir=HERE)
    tests = list(flatten(suite))
    if args.k:
        tests = [t for t in tests if any(k in t.id() for k in args.k)]
    if args.list:
        for t in tests:
            print(test_name(t))
        return 0

    out = sys.stdout
    # One more line than test cases: the sanitizer check over every server
    # log (ASan/UBSan reports in the roles do not make a test fail by
    # themselves).
    out.write('1..%d\n' % (len(tests) + 1))
    if not os.access(harness.MARMOT, os.X_OK):
        out.write(tap_comment('marmot binary %s is not executable'
                              % harness.MARMOT))
    out.write(tap_comment('marmot: %s; python: %s; uid %d'
                          % (harness.MARMOT, sys.version.split()[0],
                             os.geteuid())))
    out.flush()

    result = TapResult(out)
    try:
        unittest.TestSuite(tests).run(result)
    finally:
        harness.cleanup_all()
    result.report_unrun(tests)
    result.number += 1
    if harness.sanitizer_findings:
        result.not_ok += 1
        out.write('not ok %d - sanitizer reports in server logs\n'
                  % result.number)
        for where, text in harness.sanitizer_findings[:5]:
            out.write(tap_comment('%s:\n%s' % (where, text)))
    else:
        out.write('ok %d - sanitizer reports in server logs (none)\n'
                  % result.number)
    if result.broken_fixtures:
        out.write(tap_comment('broken fixtures: %s'
                              % ', '.join(result.broken_fixtures)))
    failed = result.not_ok + len(result.broken_fixtures)
    out.write(tap_comment('%d tests, %d failed, %d skipped'
                          % (result.testsRun, failed, len(result.skipped))))
    out.flush()
    if len(tests) == 0:
        return 1
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
