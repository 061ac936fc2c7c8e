"""Zero-access accounts (issue 3 item 8, doc/zero-access.md): the keys of
an account made with `marmot user add --zero-access` open only with the
user's password. Mail delivered while nobody is logged in waits sealed in
the spool (the vault logs merge.locked and merges nothing); an IMAPS login
with the password unlocks the keys in the vault and the spool is merged at
once (merge.done); `marmot user passwd --old-password-stdin` re-wraps the
keys under a new password (the new one logs in, the old one does not, the
mail stays readable), and an operator reset without the old password is
refused; master.key alone opens nothing: store commands refuse the account
without --password-stdin, and directory.db holds no master-key wrapping
for it."""

import imaplib
import os
import re
import sqlite3
import time
import unittest

import harness
from harness import DOMAIN, Instance


def show(r):
    return 'exit %d\nstdout:\n%s\nstderr:\n%s' % (r.returncode, r.stdout,
                                                  r.stderr)


def message(n):
    return ('From: Sender <sender@example.net>\r\n'
            'To: zed@%s\r\n'
            'Subject: waiting sealed %d\r\n'
            'Message-ID: <za%d@example.net>\r\n'
            'Date: Mon, 2 Jun 2025 10:00:00 +0000\r\n'
            '\r\n'
            'Message %d waited in the spool.\r\n' % (DOMAIN, n, n, n))


class ZeroAccessTest(unittest.TestCase):
    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.cleanup)
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)
        self.zed = 'zed@' + DOMAIN
        self.password = harness.random_password()
        r = self.inst.marmot(['user', 'add', self.zed, '--zero-access',
                              '--password-stdin'],
                             input=self.password + '\n')
        self.assertEqual(r.returncode, 0, show(r))
        m = re.search(r'\(id (\d+),', r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertIn('zero-access', r.stdout)
        self.acct_id = int(m.group(1))
        self.account_dir = os.path.join(self.inst.data, 'accounts',
                                        str(self.acct_id))


    def log_has(self, event):
        pattern = re.compile(r'%s\b.*\baccount=%d\b' % (re.escape(event),
                                                         self.acct_id))
        return any(pattern.search(line) for line in
                   self.inst.log_text(limit=10 ** 7).splitlines())

    def wait_log(self, event, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_has(event):
                return True
            time.sleep(0.1)
        return False

    def spool_size(self):
        size = 0
        for name in ('spool', 'spool.merging'):
            p = os.path.join(self.account_dir, name)
            if os.path.exists(p):
                size += os.path.getsize(p) + (1 if name != 'spool' else 0)
        return size

    def imap_login(self, password):
        m = imaplib.IMAP4_SSL('127.0.0.1', self.inst.ports['imaps'],
                              ssl_context=self.inst.ssl_context(),
                              timeout=20)
        try:
            typ, _ = m.login(self.zed, password)
            ok = typ == 'OK'
            m.logout()
        except imaplib.IMAP4.error:
            ok = False
        finally:
            try:
                m.shutdown()
            except OSError:
                pass
        return ok

    def stats(self, password):
        return self.inst.marmot(['store', 'stats', self.zed,
                                 '--password-stdin'],
                                input=password + '\n')

    def test_locked_until_login_then_rewrap(self):
        # directory.db: no master-key wrapping, a password wrapping.
        db = sqlite3.connect('file:%s?mode=ro' % os.path.join(
            self.inst.data, 'directory.db'), uri=True)
        row = db.execute('SELECT zero_access, length(wrapped_keys), '
                         'substr(password_wrapped_keys, 1, 4) FROM '
                         'accounts WHERE id = ?', (self.acct_id,)).fetchone()
        db.close()
        self.assertEqual(row, (1, 0, b'MKZ1'))

        self.inst.start()
        for n in range(3):
            r = self.inst.marmot(['deliver', self.zed], input=message(n))
            self.assertEqual(r.returncode, 0, 'deliver %d: %s' % (n, show(r)))
        self.assertTrue(self.wait_log('merge.locked'),
                        'no merge.locked for account %d' % self.acct_id)
        # Nothing merged: the sealed spool waits, untouched.
        time.sleep(1.0)
        self.assertGreater(self.spool_size(), 0)
        self.assertFalse(os.path.exists(os.path.join(self.account_dir,
                                                     'spool.merging')))
        self.assertFalse(self.log_has('merge.done'))

        # master.key alone opens nothing.
        for args in (['store', 'stats', self.zed],
                     ['store', 'verify', self.zed],
                     ['export', self.zed, '--maildir',
                      os.path.join(self.inst.dir, 'out')]):
            r = self.inst.marmot(args)
            self.assertNotEqual(r.returncode, 0, show(r))
            self.assertIn("zero-access account: its keys need the user's "
                          'password', r.stderr)
        r = self.inst.marmot(['app-password', 'add', self.zed, 'phone'])
        self.assertNotEqual(r.returncode, 0, show(r))
        self.assertFalse(self.log_has('merge.done'))

        # A login with the password unlocks and merges at once.
        t0 = time.monotonic()
        self.assertTrue(self.imap_login(self.password))
        self.assertTrue(self.wait_log('merge.done', timeout=10.0),
                        'the spool was not merged after the login')
        deadline = time.monotonic() + 5
        while self.spool_size() > 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.spool_size(), 0)
        harness.note('merged %.2f s after the login'
                     % (time.monotonic() - t0))
        r = self.stats(self.password)
        self.assertEqual(r.returncode, 0, show(r))
        self.assertRegex(r.stdout, r'(?m)^INBOX\t3\t')

        # An operator reset without the old password is refused.
        r = self.inst.marmot(['user', 'passwd', self.zed,
                              '--password-stdin'], input='reset-pw\n')
        self.assertNotEqual(r.returncode, 0, show(r))
        self.assertIn('unreadable', r.stderr)
        r = self.inst.marmot(['user', 'passwd', self.zed,
                              '--old-password-stdin'],
                             input='not-the-old\nnew-one\n')
        self.assertNotEqual(r.returncode, 0, show(r))

        # With the old password: re-wrapped, nothing re-encrypted.
        new_password = harness.random_password()
        r = self.inst.marmot(['user', 'passwd', self.zed,
                              '--old-password-stdin'],
                             input='%s\n%s\n' % (self.password, new_password))
        self.assertEqual(r.returncode, 0, show(r))
        self.assertTrue(self.imap_login(new_password))
        self.assertFalse(self.imap_login(self.password))
        self.assertNotEqual(self.stats(self.password).returncode, 0)
        r = self.stats(new_password)
        self.assertEqual(r.returncode, 0, show(r))
        self.assertRegex(r.stdout, r'(?m)^INBOX\t3\t')


if __name__ == '__main__':
    unittest.main()
