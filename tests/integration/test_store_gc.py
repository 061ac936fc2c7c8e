"""The blob collector (issue 3, item 3: blobs are removed once
unreferenced): `marmot store gc ADDRESS [--dry-run]` and the vault's
collection after merges.

The orphans are real ones: an import that stops part-way leaves the blobs
of its last, uncommitted batch behind (each message is a durable blob
before the batch commit that references it). Here `import --mbox DIR`
reads A.mbox into a batch, then stops at a file whose name is not a valid
mailbox name (a control character), before the batch is committed. Those
blobs are fresh, so gc first keeps them (the hour-long age guard protects
a writer between blob_put and its commit); with their mtimes set two hours
back (as if the hour had passed), --dry-run reports them and deletes
nothing, gc deletes exactly them and reports their bytes, the committed
messages stay, and `marmot store verify` passes. Then the running vault,
merging a delivered message, collects an aged orphan by itself (gc.done
in the log)."""

import os
import pwd
import re
import time
import unittest

import harness
from harness import DOMAIN, Instance


def show(r):
    return 'exit %d\nstdout:\n%s\nstderr:\n%s' % (r.returncode, r.stdout,
                                                  r.stderr)


def message(n, tag):
    return ('From: Sender %d <s%d@example.net>\n'
            'To: alice@%s\n'
            'Subject: gc test %s %d\n'
            'Message-ID: <gc-%s-%d@example.net>\n'
            'Date: Mon, 2 Jun 2025 10:00:00 +0000\n'
            '\n'
            'Body of message %d (%s), with some words to compress: %s\n'
            % (n, n, DOMAIN, tag, n, tag, n, n, tag, 'lorem ipsum ' * 20))


def write_mbox(path, msgs):
    with open(path, 'w') as f:
        for m in msgs:
            f.write('From sender@example.net Mon Jun  2 10:00:00 2025\n')
            f.write(m)
            f.write('\n')


class StoreGcTest(unittest.TestCase):
    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.cleanup)
        self.work = os.path.join(self.inst.dir, 'work')
        os.mkdir(self.work)
        if harness.is_root():
            # The CLI drops to the data directory's owner, who writes the
            # export.
            pw = pwd.getpwnam(self.inst.run_user)
            os.chown(self.work, pw.pw_uid, pw.pw_gid)
        self.alice = 'alice@' + DOMAIN
        r = self.inst.marmot(['user', 'add', self.alice, '--password-stdin'],
                             input=harness.random_password() + '\n')
        self.assertEqual(r.returncode, 0, show(r))
        self.account_id = int(re.search(r'\(id (\d+)', r.stdout).group(1))
        self.blob_dir = os.path.join(self.inst.data, 'accounts',
                                     str(self.account_id), 'blobs')

    def ok(self, args, input=None):
        r = self.inst.marmot(args, input=input)
        self.assertEqual(r.returncode, 0, 'marmot %s: %s'
                         % (' '.join(args), show(r)))
        self.assertNotIn('Sanitizer', r.stderr)
        return r

    def blob_files(self):
        """{path: size} of every blob file (not temporary files)."""
        out = {}
        for d, _, names in os.walk(self.blob_dir):
            for name in names:
                if re.fullmatch(r'[0-9a-f]{64}', name):
                    p = os.path.join(d, name)
                    out[p] = os.path.getsize(p)
        return out

    def age_all(self, secs=7200):
        t = time.time() - secs
        for p in self.blob_files():
            os.utime(p, (t, t))

    def gc(self, dry_run=False):
        args = ['store', 'gc', self.alice] + (['--dry-run'] if dry_run
                                              else [])
        r = self.ok(args)
        harness.note('marmot %s:\n%s' % (' '.join(args), r.stdout))
        m = re.search(r'(deleted|would delete): (\d+) blobs \((\d+) bytes\)',
                      r.stdout)
        self.assertIsNotNone(m, r.stdout)
        young = re.search(r'kept: (\d+) unreferenced blobs', r.stdout)
        return int(m.group(2)), int(m.group(3)), \
            int(young.group(1)) if young else 0

    def interrupted_import(self):
        """Imports 5 messages for good, then 3 whose batch is never
        committed. Returns the orphans' {path: size}."""
        first = os.path.join(self.work, 'first.mbox')
        write_mbox(first, [message(i, 'kept') for i in range(5)])
        self.ok(['import', self.alice, '--mbox', first])
        before = self.blob_files()
        self.assertEqual(len(before), 5)

        stopped = os.path.join(self.work, 'stopped')
        os.mkdir(stopped)
        write_mbox(os.path.join(stopped, 'A.mbox'),
                   [message(i, 'lost') for i in range(3)])
        write_mbox(os.path.join(stopped, 'B\x01.mbox'),
                   [message(9, 'never')])
        r = self.inst.marmot(['import', self.alice, '--mbox', stopped])
        self.assertEqual(r.returncode, 1, show(r))
        self.assertIn('imported 0 messages', r.stdout, show(r))
        orphans = {p: s for p, s in self.blob_files().items()
                   if p not in before}
        self.assertEqual(len(orphans), 3, show(r))
        return orphans

    def test_gc_removes_orphans_of_a_stopped_import(self):
        orphans = self.interrupted_import()
        stats = self.ok(['store', 'stats', self.alice]).stdout
        self.assertIn('unreferenced blobs: 3', stats)

        # Fresh: the age guard keeps them.
        self.assertEqual(self.gc(), (0, 0, 3))
        self.assertEqual(len(self.blob_files()), 8)

        # An hour later (simulated): reported, then deleted.
        self.age_all()
        want = (3, sum(orphans.values()), 0)
        self.assertEqual(self.gc(dry_run=True), want)
        self.assertEqual(len(self.blob_files()), 8)
        self.assertEqual(self.gc(), want)
        left = self.blob_files()
        self.assertEqual(len(left), 5)
        for p in orphans:
            self.assertNotIn(p, left)
        self.assertEqual(self.gc(), (0, 0, 0))

        self.ok(['store', 'verify', self.alice])
        stats = self.ok(['store', 'stats', self.alice]).stdout
        self.assertNotIn('unreferenced', stats)
        self.assertRegex(stats, r'(?m)^INBOX\t5\t')
        out = os.path.join(self.work, 'out.mbox')
        self.ok(['export', self.alice, '--mbox', out, '--mailbox', 'INBOX'])
        with open(out) as f:
            self.assertEqual(f.read().count('Subject: gc test kept'), 5)

    def test_usage(self):
        r = self.inst.marmot(['store', 'gc'])
        self.assertEqual(r.returncode, 2, show(r))
        r = self.inst.marmot(['store', 'gc', 'nobody@' + DOMAIN])
        self.assertEqual(r.returncode, 1, show(r))
        self.assertIn('does not exist', r.stderr)

    def test_vault_collects_after_a_merge(self):
        orphans = self.interrupted_import()
        self.age_all()
        self.inst.start()
        r = self.inst.marmot(['deliver', self.alice],
                             input=message(1, 'delivered'))
        self.assertEqual(r.returncode, 0, show(r))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if not any(os.path.exists(p) for p in orphans) and \
                    'gc.done' in self.inst.log_text():
                break
            time.sleep(0.1)
        log = self.inst.log_text()
        self.assertFalse([p for p in orphans if os.path.exists(p)],
                         'the vault did not collect; log:\n' + log)
        m = re.search(r'gc\.done .*deleted=(\d+) bytes=(\d+)', log)
        self.assertIsNotNone(m, log)
        self.assertEqual(int(m.group(1)), 3, log)
        self.assertEqual(int(m.group(2)), sum(orphans.values()), log)
        self.assertEqual(len(self.blob_files()), 6)
        self.inst.stop()
        self.ok(['store', 'verify', self.alice])


if __name__ == '__main__':
    unittest.main()
