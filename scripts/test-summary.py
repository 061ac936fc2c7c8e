#!/usr/bin/python3
"""Counts individual TAP results in a meson testlog.json and prints the
project's own summary.

meson (1.0.1) writes one JSON object per line to meson-logs/testlog.json
with the keys name ("project:suite / test"), stdout, result ("OK", "FAIL",
"SKIP", "TIMEOUT", "ERROR", ...), returncode, duration, starttime, command,
env, and stderr when it was not empty. Every TAP line in stdout is counted:
`ok N ...` passed, `not ok N ...` failed, a `# SKIP` directive (on a test
line or on the plan `1..0 # SKIP why`) skipped. A test whose meson result is
not OK/SKIP but printed no `not ok` line (a crash, a timeout, a bad plan)
counts as one failure.

Usage: test-summary.py build-test/meson-logs/testlog.json
The last line printed is exactly "N passed, M failed" (", K skipped" is
appended when K > 0). Exits 1 if M > 0 or N == 0, 2 if the log is unusable.
"""

import json
import re
import sys

TAP_RESULT = re.compile(r'^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$')
SKIP_DIRECTIVE = re.compile(r'#\s*skip\b', re.IGNORECASE)
TODO_DIRECTIVE = re.compile(r'#\s*todo\b', re.IGNORECASE)
PLAN = re.compile(r'^1\.\.(\d+)\s*(#.*)?$')
GOOD_RESULTS = ('OK', 'SKIP', 'EXPECTEDFAIL')


def suite_of(name):
    """'marmot:unit / test-span' -> 'unit'; 'marmot:unit+slow / x' ->
    'unit+slow'; anything else -> the part before ' / ' or the name."""
    head = name.split(' / ', 1)[0]
    return head.split(':', 1)[1] if ':' in head else head


def test_of(name):
    return name.split(' / ', 1)[1] if ' / ' in name else name


def count_test(entry):
    """Returns (passed, failed, skipped, failure names) for one test."""
    name = test_of(entry.get('name', '?'))
    result = str(entry.get('result', '?')).upper()
    stdout = entry.get('stdout') or ''
    passed = failed = skipped = 0
    failures = []
    saw_tap = False
    for raw in stdout.splitlines():
        line = raw.rstrip()
        m = TAP_RESULT.match(line)
        if m:
            saw_tap = True
            status, number, desc = m.group(1), m.group(2), m.group(3)
            if SKIP_DIRECTIVE.search(desc):
                skipped += 1
            elif status == 'ok':
                passed += 1
            elif TODO_DIRECTIVE.search(desc):
                skipped += 1  # a known, expected failure: not counted as one
            else:
                failed += 1
                label = desc.strip() or ('#' + (number or '?'))
                failures.append('%s: %s' % (name, label))
            continue
        m = PLAN.match(line)
        if m:
            saw_tap = True
            if m.group(1) == '0' and m.group(2) and \
                    SKIP_DIRECTIVE.search(m.group(2)):
                skipped += 1
    if result not in GOOD_RESULTS and failed == 0:
        failed += 1
        why = result.lower()
        if entry.get('returncode') not in (None, 0):
            why += ', exit code %s' % entry.get('returncode')
        failures.append('%s: %s without a "not ok" line' % (name, why))
    elif not saw_tap and failed == 0:
        # A test that does not speak TAP: its meson result is its count.
        if result == 'SKIP':
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped, failures


def main(argv):
    if len(argv) != 2:
        print('usage: test-summary.py TESTLOG.json', file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding='utf-8', errors='replace') as f:
            lines = f.readlines()
    except OSError as e:
        print('test-summary: cannot read %s: %s' % (argv[1], e))
        print('0 passed, 1 failed')
        return 2
    suites = {}
    failures = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError as e:
            suites.setdefault('(unreadable)', [0, 0, 0])[1] += 1
            failures.append('%s line %d: not JSON (%s)' % (argv[1], number, e))
            continue
        p, f, s, names = count_test(entry)
        counts = suites.setdefault(suite_of(entry.get('name', '?')), [0, 0, 0])
        counts[0] += p
        counts[1] += f
        counts[2] += s
        failures.extend(names)
    total = [sum(c[i] for c in suites.values()) for i in range(3)]
    print('Per suite:')
    for suite in sorted(suites):
        p, f, s = suites[suite]
        print('  %-16s %5d passed, %d failed, %d skipped' % (suite, p, f, s))
    if failures:
        print('Failures:')
        for name in failures:
            print('  ' + name)
    if total[0] == 0:
        print('No test passed: nothing ran?')
    summary = '%d passed, %d failed' % (total[0], total[1])
    if total[2]:
        summary += ', %d skipped' % total[2]
    print(summary)
    return 1 if total[1] > 0 or total[0] == 0 else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
