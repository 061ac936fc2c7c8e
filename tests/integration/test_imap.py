"""IMAP (N+143) and IMAPS (N+993): greeting capabilities, LOGINDISABLED
before TLS, STARTTLS, LOGIN, AUTHENTICATIONFAILED, LOGOUT, imaplib, and the
vault's credential cache (a second login is much faster)."""

import imaplib
import time
import unittest

import harness
from harness import DOMAIN, LineClient, SharedInstance, imap_quote


def caps_of(line):
    """'* OK [CAPABILITY A B] text' or '* CAPABILITY A B' -> {'A', 'B'}."""
    if '[CAPABILITY ' in line:
        inner = line.split('[CAPABILITY ', 1)[1].split(']', 1)[0]
        return set(inner.upper().split())
    if line.upper().startswith('* CAPABILITY '):
        return set(line[len('* CAPABILITY '):].upper().split())
    return set()


class ImapCase(unittest.TestCase):
    def setUp(self):
        self.inst = SharedInstance.get()
        self.user = SharedInstance.user
        self.password = SharedInstance.password
        self.ctx = self.inst.ssl_context()

    def connect(self, tls=False):
        port = self.inst.ports['imaps' if tls else 'imap']
        c = LineClient(port, tls_context=self.ctx if tls else None)
        self.addCleanup(c.close)
        greeting = c.read_line()
        self.assertTrue(greeting.startswith('* OK [CAPABILITY '),
                        'IMAP greeting: expected "* OK [CAPABILITY ...]", '
                        'got %r' % greeting)
        return c, caps_of(greeting)

    def capability(self, c, tag='c1'):
        c.cmd(tag + ' CAPABILITY')
        untagged, tagged = c.imap_tagged(tag)
        self.assertTrue(tagged.startswith(tag + ' OK'), 'CAPABILITY: %r %r'
                        % (untagged, tagged))
        caps = set()
        for line in untagged:
            caps |= caps_of(line)
        self.assertTrue(caps, 'CAPABILITY: no "* CAPABILITY" line in %r'
                        % untagged)
        return caps

    def starttls(self, c):
        c.cmd('s1 STARTTLS')
        _, tagged = c.imap_tagged('s1')
        self.assertTrue(tagged.startswith('s1 OK'), 'STARTTLS: expected OK, '
                        'got %r' % tagged)
        c.starttls(self.ctx)

    def login(self, c, user, password, tag='l1'):
        c.cmd('%s LOGIN %s %s' % (tag, imap_quote(user),
                                  imap_quote(password)))
        _, tagged = c.imap_tagged(tag)
        return tagged


class ImapTest(ImapCase):
    def test_greeting_capabilities(self):
        _, caps = self.connect()
        for cap in ('IMAP4REV1', 'IMAP4REV2', 'STARTTLS', 'LOGINDISABLED'):
            self.assertIn(cap, caps, 'greeting on 143: expected %s in %r'
                          % (cap, sorted(caps)))

    def test_login_before_tls_refused(self):
        c, _ = self.connect()
        tagged = self.login(c, self.user, self.password)
        self.assertTrue(tagged.startswith('l1 NO'), 'LOGIN before TLS: '
                        'expected "l1 NO", got %r' % tagged)

    def test_starttls_capabilities(self):
        c, _ = self.connect()
        self.starttls(c)
        caps = self.capability(c)
        self.assertIn('AUTH=PLAIN', caps, 'after STARTTLS: %r' % sorted(caps))
        for cap in ('LOGINDISABLED', 'STARTTLS'):
            self.assertNotIn(cap, caps, 'after STARTTLS: %s must not be '
                             'listed, got %r' % (cap, sorted(caps)))

    def test_imaps_capabilities(self):
        c, greeting_caps = self.connect(tls=True)
        caps = self.capability(c)
        for got in (greeting_caps, caps):
            self.assertIn('AUTH=PLAIN', got, 'on 993: %r' % sorted(got))
            self.assertNotIn('LOGINDISABLED', got, 'on 993: %r' % sorted(got))
            self.assertNotIn('STARTTLS', got, 'on 993: %r' % sorted(got))

    def test_login_after_starttls(self):
        c, _ = self.connect()
        self.starttls(c)
        tagged = self.login(c, self.user, self.password)
        self.assertTrue(tagged.startswith('l1 OK'), 'LOGIN after STARTTLS '
                        'with the right password: got %r' % tagged)

    def test_login_failures(self):
        for user, password, what in (
                (self.user, 'wrong-password', 'a wrong password'),
                ('nobody@' + DOMAIN, 'wrong-password', 'an unknown user')):
            with self.subTest(what=what):
                c, _ = self.connect(tls=True)
                tagged = self.login(c, user, password)
                self.assertTrue(
                    tagged.startswith('l1 NO [AUTHENTICATIONFAILED]'),
                    'LOGIN with %s: expected "l1 NO [AUTHENTICATIONFAILED]",'
                    ' got %r' % (what, tagged))

    def test_logout(self):
        c, _ = self.connect(tls=True)
        c.cmd('o1 LOGOUT')
        untagged, tagged = c.imap_tagged('o1')
        self.assertTrue(any(l.startswith('* BYE') for l in untagged),
                        'LOGOUT: expected "* BYE", got %r' % untagged)
        self.assertTrue(tagged.startswith('o1 OK'), 'LOGOUT: expected '
                        '"o1 OK", got %r' % tagged)


class ImaplibTest(ImapCase):
    def test_imaplib_starttls(self):
        m = imaplib.IMAP4('127.0.0.1', self.inst.ports['imap'], timeout=10)
        try:
            self.assertIn('LOGINDISABLED', m.capabilities)
            m.starttls(ssl_context=self.ctx)
            self.assertIn('AUTH=PLAIN', m.capabilities)
            typ, data = m.login(self.user, self.password)
            self.assertEqual(typ, 'OK', data)
            typ, data = m.logout()
            self.assertEqual(typ, 'BYE', data)
        finally:
            try:
                m.shutdown()
            except OSError:
                pass

    def test_imaplib_ssl(self):
        m = imaplib.IMAP4_SSL('127.0.0.1', self.inst.ports['imaps'],
                              ssl_context=self.ctx, timeout=10)
        try:
            typ, data = m.login(self.user, self.password)
            self.assertEqual(typ, 'OK', data)
            m.logout()
        finally:
            try:
                m.shutdown()
            except OSError:
                pass

    def test_imaplib_wrong_password(self):
        m = imaplib.IMAP4_SSL('127.0.0.1', self.inst.ports['imaps'],
                              ssl_context=self.ctx, timeout=10)
        try:
            with self.assertRaises(imaplib.IMAP4.error) as cm:
                m.login(self.user, 'not-the-password')
            self.assertIn('AUTHENTICATIONFAILED', str(cm.exception))
        finally:
            try:
                m.shutdown()
            except OSError:
                pass


class AuthCacheTest(ImapCase):
    def timed_login(self, user, password):
        c, _ = self.connect(tls=True)
        t0 = time.perf_counter()
        tagged = self.login(c, user, password)
        elapsed = time.perf_counter() - t0
        self.assertTrue(tagged.startswith('l1 OK'), 'LOGIN: %r' % tagged)
        c.close()
        return elapsed

    def test_second_login_is_cached(self):
        # A user of our own, so no earlier test has warmed the cache.
        user = 'cache%d@%s' % (int(time.time() * 1000) % 100000, DOMAIN)
        password = self.inst.add_user(user)
        first = self.timed_login(user, password)
        second = self.timed_login(user, password)
        harness.note('IMAPS LOGIN: first %.1f ms, second %.1f ms'
                     % (first * 1000, second * 1000))
        self.assertLessEqual(second, first / 2, 'expected the second login '
                             '(cached) to take at most half of the first '
                             '(argon2id): first %.1f ms, second %.1f ms'
                             % (first * 1000, second * 1000))


if __name__ == '__main__':
    unittest.main()
