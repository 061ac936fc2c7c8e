"""SMTP (N+25), submission (N+587) and submissions (N+465): greeting, EHLO
before and after TLS, AUTH only after TLS and never on port 25, MAIL FROM
(530 on submission before AUTH), QUIT, STARTTLS response injection, and
smtplib."""

import base64
import smtplib
import ssl
import unittest

import harness
from harness import HOSTNAME, DOMAIN, LineClient, SharedInstance, auth_plain


class SmtpCase(unittest.TestCase):
    def setUp(self):
        self.inst = SharedInstance.get()
        self.user = SharedInstance.user
        self.password = SharedInstance.password
        self.ctx = self.inst.ssl_context()

    def connect(self, name, tls=False):
        c = LineClient(self.inst.ports[name],
                       tls_context=self.ctx if tls else None)
        self.addCleanup(c.close)
        code, lines = c.smtp_reply()
        expected = '220 %s ESMTP Marmot' % HOSTNAME
        self.assertEqual(code, 220, 'greeting on %s: expected %r, got %r'
                         % (name, expected, lines))
        self.assertTrue(lines[-1].startswith(expected),
                        'greeting on %s: expected %r..., got %r'
                        % (name, expected, lines[-1]))
        return c

    def ehlo(self, c, where):
        c.cmd('EHLO client.test.example')
        code, lines = c.smtp_reply()
        self.assertEqual(code, 250, 'EHLO on %s: expected 250, got %r'
                         % (where, lines))
        return harness.ehlo_keywords(lines)

    def starttls(self, c, where):
        c.cmd('STARTTLS')
        code, lines = c.smtp_reply()
        self.assertEqual(code, 220, 'STARTTLS on %s: expected 220, got %r'
                         % (where, lines))
        c.starttls(self.ctx)

    def auth_line(self, keywords):
        return [k for k in keywords if k.startswith('AUTH')]

    def assert_auth_offered(self, keywords, where):
        auth = self.auth_line(keywords)
        self.assertTrue(auth, 'EHLO on %s: expected AUTH PLAIN LOGIN, got %r'
                        % (where, keywords))
        mechs = auth[0].split()[1:]
        for m in ('PLAIN', 'LOGIN'):
            self.assertIn(m, mechs, 'EHLO on %s: expected AUTH %s, got %r'
                          % (where, m, auth))

    def auth(self, c, user, password):
        c.cmd('AUTH PLAIN ' + auth_plain(user, password))
        return c.smtp_reply()


class SmtpGreetingTest(SmtpCase):
    def test_greeting_all_ports(self):
        self.connect('smtp')
        self.connect('submission')
        self.connect('submissions', tls=True)

    def test_ehlo_before_tls(self):
        for port in ('smtp', 'submission'):
            with self.subTest(port=port):
                c = self.connect(port)
                kw = self.ehlo(c, port)
                for ext in ('STARTTLS', 'ENHANCEDSTATUSCODES'):
                    self.assertIn(ext, kw, 'EHLO on %s before TLS: expected '
                                  '%s, got %r' % (port, ext, kw))
                self.assertFalse(self.auth_line(kw), 'EHLO on %s before '
                                 'TLS: AUTH must not be offered, got %r'
                                 % (port, kw))

    def test_quit(self):
        for port in ('smtp', 'submission'):
            with self.subTest(port=port):
                c = self.connect(port)
                c.cmd('QUIT')
                code, lines = c.smtp_reply()
                self.assertEqual(code, 221, 'QUIT on %s: expected 221, got '
                                 '%r' % (port, lines))


class SubmissionAuthTest(SmtpCase):
    def test_auth_refused_before_tls(self):
        c = self.connect('submission')
        self.ehlo(c, 'submission')
        code, lines = self.auth(c, self.user, self.password)
        self.assertTrue(lines[-1].startswith('530 5.7.0'),
                        'AUTH PLAIN on 587 before TLS: expected "530 5.7.0",'
                        ' got %r' % lines)

    def session(self, name):
        """An EHLO'd TLS session on submission (STARTTLS) or submissions."""
        if name == 'submission':
            c = self.connect(name)
            self.ehlo(c, name)
            self.starttls(c, name)
        else:
            c = self.connect(name, tls=True)
        kw = self.ehlo(c, name + ' after TLS')
        return c, kw

    def test_ehlo_after_tls_offers_auth(self):
        for name in ('submission', 'submissions'):
            with self.subTest(port=name):
                c, kw = self.session(name)
                self.assert_auth_offered(kw, name + ' after TLS')
                self.assertNotIn('STARTTLS', kw, 'EHLO on %s after TLS '
                                 'still offers STARTTLS: %r' % (name, kw))

    def test_auth_plain_ok(self):
        for name in ('submission', 'submissions'):
            with self.subTest(port=name):
                c, _ = self.session(name)
                code, lines = self.auth(c, self.user, self.password)
                self.assertEqual(code, 235, 'AUTH PLAIN on %s with the right '
                                 'password: expected 235, got %r'
                                 % (name, lines))

    def test_auth_plain_wrong_and_unknown_same_535(self):
        for name in ('submission', 'submissions'):
            with self.subTest(port=name):
                c, _ = self.session(name)
                code, wrong = self.auth(c, self.user, 'wrong-password')
                self.assertEqual(code, 535, 'AUTH PLAIN on %s with a wrong '
                                 'password: expected 535, got %r'
                                 % (name, wrong))
                c2, _ = self.session(name)
                code, unknown = self.auth(c2, 'nobody@' + DOMAIN,
                                          'wrong-password')
                self.assertEqual(code, 535, 'AUTH PLAIN on %s for an unknown '
                                 'user: expected 535, got %r'
                                 % (name, unknown))
                self.assertEqual(wrong, unknown, 'wrong password and unknown '
                                 'user must get the same reply: %r vs %r'
                                 % (wrong, unknown))

    def test_auth_login_exchange(self):
        """AUTH LOGIN without an initial response: 334 Username, 334
        Password (base64 prompts), then 235."""
        c, _ = self.session('submissions')
        c.cmd('AUTH LOGIN')
        code, lines = c.smtp_reply()
        self.assertEqual(code, 334, 'AUTH LOGIN: expected 334, got %r' % lines)
        c.cmd(base64.b64encode(self.user.encode()).decode())
        code, lines = c.smtp_reply()
        self.assertEqual(code, 334, 'AUTH LOGIN after the user name: '
                         'expected 334, got %r' % lines)
        c.cmd(base64.b64encode(self.password.encode()).decode())
        code, lines = c.smtp_reply()
        self.assertEqual(code, 235, 'AUTH LOGIN with the right password: '
                         'expected 235, got %r' % lines)

    def test_mail_from_after_auth(self):
        c, _ = self.session('submission')
        c.cmd('MAIL FROM:<%s>' % self.user)
        code, lines = c.smtp_reply()
        self.assertEqual(code, 530, 'MAIL FROM on 587 before AUTH: expected '
                         '530, got %r' % lines)
        code, lines = self.auth(c, self.user, self.password)
        self.assertEqual(code, 235, lines)
        c.cmd('MAIL FROM:<%s>' % self.user)
        code, lines = c.smtp_reply()
        # 250 once the vault answers sender questions, 451 while it
        # cannot (never a 5xx for the account's own address).
        self.assertIn(code, (250, 451), 'MAIL FROM on 587 after AUTH: '
                      'expected 250, got %r' % lines)
        c.cmd('QUIT')
        code, lines = c.smtp_reply()
        self.assertEqual(code, 221, 'QUIT after TLS: expected 221, got %r'
                         % lines)


class PortTwentyFiveTest(SmtpCase):
    def test_no_auth_on_25_even_after_tls(self):
        c = self.connect('smtp')
        self.ehlo(c, 'smtp')
        self.starttls(c, 'smtp')
        kw = self.ehlo(c, 'smtp after TLS')
        self.assertFalse(self.auth_line(kw), 'EHLO on port 25 after TLS: '
                         'AUTH must never be offered, got %r' % kw)

    def test_auth_refused_on_25_after_tls(self):
        c = self.connect('smtp')
        self.ehlo(c, 'smtp')
        self.starttls(c, 'smtp')
        self.ehlo(c, 'smtp after TLS')
        code, lines = self.auth(c, self.user, self.password)
        self.assertNotEqual(code, 235, 'AUTH PLAIN with valid credentials on '
                            'port 25 after TLS must not succeed, got %r'
                            % lines)
        self.assertGreaterEqual(code, 500, 'AUTH on port 25: expected a 5xx '
                                'refusal, got %r' % lines)

    def test_mail_from(self):
        c = self.connect('smtp')
        self.ehlo(c, 'smtp')
        c.cmd('MAIL FROM:<someone@elsewhere.example>')
        code, lines = c.smtp_reply()
        self.assertEqual(code, 250, 'MAIL FROM on 25: expected 250, got %r'
                         % lines)

    def test_starttls_injection(self):
        c = self.connect('smtp')
        self.ehlo(c, 'smtp')
        # Both commands in one segment: the NOOP must be discarded with the
        # plaintext buffer (CVE-2011-0411 class), never answered.
        c.send(b'STARTTLS\r\nNOOP\r\n')
        code, lines = c.smtp_reply()
        self.assertEqual(code, 220, 'STARTTLS: expected 220, got %r' % lines)
        try:
            c.starttls(self.ctx)  # fails if the NOOP reply came in plaintext
        except (ssl.SSLError, OSError) as e:
            self.fail('TLS handshake after STARTTLS failed (plaintext bytes '
                      'after the 220, e.g. a reply to the injected NOOP?): '
                      '%s' % e)
        c.cmd('EHLO client.test.example')
        code, lines = c.smtp_reply()
        self.assertEqual(code, 250, 'first reply after the TLS handshake '
                         'must be the EHLO reply (the injected NOOP must not '
                         'be answered), got %r' % lines)
        self.assertTrue(len(lines) > 1 and lines[0].startswith('250-'),
                        'expected a multi-line EHLO reply, got %r (the '
                        'answer to the injected NOOP?)' % lines)
        c.cmd('QUIT')
        code, lines = c.smtp_reply()
        self.assertEqual(code, 221, 'after EHLO, expected only the QUIT '
                         'reply 221, got %r (a late reply to the injected '
                         'NOOP?)' % lines)


class SmtplibTest(SmtpCase):
    def test_smtplib_starttls_login(self):
        with smtplib.SMTP('127.0.0.1', self.inst.ports['submission'],
                          local_hostname='client.test.example',
                          timeout=10) as s:
            s.ehlo()
            self.assertTrue(s.has_extn('starttls'), s.esmtp_features)
            self.assertFalse(s.has_extn('auth'), 'AUTH before TLS: %r'
                             % s.esmtp_features)
            s.starttls(context=self.ctx)
            s.ehlo()
            self.assertTrue(s.has_extn('auth'), 'no AUTH after STARTTLS: %r'
                            % s.esmtp_features)
            code, msg = s.login(self.user, self.password)
            self.assertEqual(code, 235, msg)

    def test_smtplib_login_methods(self):
        # smtplib.login() tries CRAM-MD5, PLAIN, LOGIN in that order, with
        # an initial response; force each of PLAIN and LOGIN the same way.
        for method in ('PLAIN', 'LOGIN'):
            with self.subTest(method=method):
                with smtplib.SMTP_SSL('127.0.0.1',
                                      self.inst.ports['submissions'],
                                      local_hostname='client.test.example',
                                      context=self.ctx, timeout=10) as s:
                    s.ehlo()
                    s.user, s.password = self.user, self.password
                    auth = getattr(s, 'auth_' + method.lower())
                    code, msg = s.auth(method, auth)
                    self.assertEqual(code, 235, 'AUTH %s via smtplib: %r %r'
                                     % (method, code, msg))

    def test_smtplib_wrong_password(self):
        with smtplib.SMTP_SSL('127.0.0.1', self.inst.ports['submissions'],
                              local_hostname='client.test.example',
                              context=self.ctx, timeout=10) as s:
            s.ehlo()
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                s.login(self.user, 'not-the-password')
            self.assertEqual(cm.exception.smtp_code, 535, cm.exception)

    def test_smtplib_port_25_no_auth(self):
        with smtplib.SMTP('127.0.0.1', self.inst.ports['smtp'],
                          local_hostname='client.test.example',
                          timeout=10) as s:
            s.ehlo()
            s.starttls(context=self.ctx)
            s.ehlo()
            self.assertFalse(s.has_extn('auth'), 'port 25 offers AUTH after '
                             'STARTTLS: %r' % s.esmtp_features)
            with self.assertRaises(smtplib.SMTPNotSupportedError):
                s.login(self.user, self.password)


if __name__ == '__main__':
    unittest.main()
