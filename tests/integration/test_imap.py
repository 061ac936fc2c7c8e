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



class CredentialChangeTest(ImapCase):
    """Admin changes take effect on the next login, cache or not."""

    def new_user(self, tag):
        user = '%s%d@%s' % (tag, int(time.time() * 1000) % 100000, DOMAIN)
        return user, self.inst.add_user(user)

    def login_tls(self, user, password):
        c, _ = self.connect(tls=True)
        tagged = self.login(c, user, password)
        c.close()
        return tagged

    def cli_ok(self, args, input=None):
        r = self.inst.marmot(args, input=input)
        self.assertEqual(r.returncode, 0, 'marmot %s: exit %d %s%s'
                         % (' '.join(args), r.returncode, r.stdout, r.stderr))

    def test_passwd_replaces_cached_password(self):
        user, old = self.new_user('pw')
        self.assertTrue(self.login_tls(user, old).startswith('l1 OK'))
        new = harness.random_password()
        self.cli_ok(['user', 'passwd', user, '--password-stdin'], new + '\n')
        tagged = self.login_tls(user, old)
        self.assertTrue(tagged.startswith('l1 NO [AUTHENTICATIONFAILED]'),
                        'LOGIN with the old (cached) password after `user '
                        'passwd`: expected NO [AUTHENTICATIONFAILED], got %r'
                        % tagged)
        tagged = self.login_tls(user, new)
        self.assertTrue(tagged.startswith('l1 OK'), 'LOGIN with the new '
                        'password after `user passwd`: got %r' % tagged)

    def test_disable_enable(self):
        user, password = self.new_user('dis')
        self.assertTrue(self.login_tls(user, password).startswith('l1 OK'))
        self.cli_ok(['user', 'disable', user])
        tagged = self.login_tls(user, password)
        self.assertTrue(tagged.startswith('l1 NO'), 'LOGIN of a disabled '
                        'user (password cached): expected NO, got %r'
                        % tagged)
        self.cli_ok(['user', 'enable', user])
        tagged = self.login_tls(user, password)
        self.assertTrue(tagged.startswith('l1 OK'), 'LOGIN after `user '
                        'enable`: expected OK, got %r' % tagged)

    def test_deleted_user_cannot_log_in(self):
        user, password = self.new_user('del')
        self.assertTrue(self.login_tls(user, password).startswith('l1 OK'))
        self.cli_ok(['user', 'del', user])
        tagged = self.login_tls(user, password)
        self.assertTrue(tagged.startswith('l1 NO [AUTHENTICATIONFAILED]'),
                        'LOGIN of a deleted user (password cached): expected '
                        'NO [AUTHENTICATIONFAILED], got %r' % tagged)

    def test_app_password_logs_in(self):
        user, password = self.new_user('app')
        r = self.inst.marmot(['app-password', 'add', user, 'phone'])
        self.assertEqual(r.returncode, 0, r.stderr)
        tokens = [t for t in r.stdout.split() if len(t) >= 12 and
                  t != user and '@' not in t]
        self.assertTrue(tokens, 'app-password add printed no password: %r'
                        % r.stdout)
        results = [self.login_tls(user, t) for t in tokens]
        self.assertTrue(any(t.startswith('l1 OK') for t in results),
                        'LOGIN with the app password printed by `app-password'
                        ' add` (%r): got %r' % (r.stdout, results))


class AuthenticateTest(ImapCase):
    def test_authenticate_plain_imaplib(self):
        """AUTH=PLAIN is advertised, so AUTHENTICATE PLAIN must work."""
        m = imaplib.IMAP4_SSL('127.0.0.1', self.inst.ports['imaps'],
                              ssl_context=self.ctx, timeout=10)
        try:
            payload = '\0%s\0%s' % (self.user, self.password)
            typ, data = m.authenticate('PLAIN', lambda _: payload.encode())
            self.assertEqual(typ, 'OK', data)
        finally:
            try:
                m.shutdown()
            except OSError:
                pass

    def test_authenticate_plain_sasl_ir(self):
        c, caps = self.connect(tls=True)
        if 'SASL-IR' not in caps:
            self.skipTest('SASL-IR not advertised')
        c.cmd('a1 AUTHENTICATE PLAIN ' +
              harness.auth_plain(self.user, self.password))
        _, tagged = c.imap_tagged('a1')
        self.assertTrue(tagged.startswith('a1 OK'), 'AUTHENTICATE PLAIN with '
                        'an initial response: got %r' % tagged)


class StarttlsInjectionTest(ImapCase):
    def test_imap_starttls_injection(self):
        c, _ = self.connect()
        c.send(b's1 STARTTLS\r\nn1 NOOP\r\n')
        _, tagged = c.imap_tagged('s1')
        self.assertTrue(tagged.startswith('s1 OK'), tagged)
        c.starttls(self.ctx)  # fails if the NOOP reply came in plaintext
        c.cmd('c1 CAPABILITY')
        untagged, tagged = c.imap_tagged('c1')
        self.assertFalse(any(l.startswith('n1 ') for l in untagged),
                         'the NOOP sent with STARTTLS was answered after the '
                         'handshake: %r' % untagged)
        self.assertTrue(tagged.startswith('c1 OK'), tagged)


if __name__ == '__main__':
    unittest.main()
