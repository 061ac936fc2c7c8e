"""SASL on submission (RFC 4954): SCRAM-SHA-256 (RFC 5802, RFC 7677) with
a client written here (hashlib/hmac; smtplib has no SCRAM) on 587 after
STARTTLS and on 465: the account's password and an app password log in
and the server signature is verified; a wrong password, an unknown user,
channel binding and a cancelled exchange fail; unknown users get a salt
like a real one (stable, 16 bytes, 4096 iterations); a zero-access account
cannot use SCRAM but can use PLAIN; `marmot user passwd` gives the new
password SCRAM and takes it from the old one. PLAIN and LOGIN still work
(smtplib)."""

import base64
import hashlib
import hmac
import os
import smtplib
import unicodedata
import unittest

import harness
from harness import DOMAIN, LineClient, SharedInstance

# RFC 7677 3: the example exchange (user "user", password "pencil"). The
# client below reproduces its proof and server signature, so the client
# itself is checked against the RFC before it judges the server.
RFC_CLIENT_NONCE = 'rOprNGfwEbeRWgbNEkqO'
RFC_SERVER_FIRST = ('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,'
                    's=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')
RFC_CLIENT_FINAL = ('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)'
                    'hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=')
RFC_SERVER_FINAL = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='


def b64e(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def b64d(text):
    return base64.b64decode(text.encode(), validate=True)


class ScramClient:
    """RFC 5802 3 and 7, SHA-256, without channel binding."""

    def __init__(self, user, nonce=None):
        # RFC 5802 5.1: saslname escapes ',' and '='
        name = user.replace('=', '=3D').replace(',', '=2C')
        self.nonce = nonce or b64e(os.urandom(18))
        self.bare = 'n=%s,r=%s' % (name, self.nonce)
        self.first = 'n,,' + self.bare
        self.expected_server_final = None

    @staticmethod
    def parse(msg):
        attrs = {}
        for part in msg.split(','):
            if len(part) < 2 or part[1] != '=':
                raise AssertionError('malformed SCRAM message %r' % msg)
            attrs[part[0]] = part[2:]
        return attrs

    def final(self, server_first, password):
        attrs = self.parse(server_first)
        r, salt, iterations = attrs['r'], b64d(attrs['s']), int(attrs['i'])
        if not r.startswith(self.nonce) or len(r) <= len(self.nonce):
            raise AssertionError('server nonce %r does not extend ours %r'
                                 % (r, self.nonce))
        if iterations < 4096:
            raise AssertionError('iteration count %d < 4096 (RFC 7677 3)'
                                 % iterations)
        self.salt, self.iterations = salt, iterations
        salted = hashlib.pbkdf2_hmac('sha256', password.encode(), salt,
                                     iterations)
        client_key = hmac.new(salted, b'Client Key', 'sha256').digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = 'c=biws,r=' + r
        auth = ','.join((self.bare, server_first, without_proof)).encode()
        signature = hmac.new(stored_key, auth, 'sha256').digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b'Server Key', 'sha256').digest()
        self.expected_server_final = 'v=' + b64e(
            hmac.new(server_key, auth, 'sha256').digest())
        return without_proof + ',p=' + b64e(proof)

    def verify(self, server_final):
        return hmac.compare_digest(server_final, self.expected_server_final)


class ScramClientSelfTest(unittest.TestCase):
    def test_rfc7677_vector(self):
        c = ScramClient('user', nonce=RFC_CLIENT_NONCE)
        self.assertEqual(c.first, 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO')
        self.assertEqual(c.final(RFC_SERVER_FIRST, 'pencil'),
                         RFC_CLIENT_FINAL)
        self.assertTrue(c.verify(RFC_SERVER_FINAL))
        self.assertFalse(c.verify('v=' + 'A' * 43 + '='))


class SaslCase(unittest.TestCase):
    def setUp(self):
        self.inst = SharedInstance.get()
        self.ctx = self.inst.ssl_context()

    def new_user(self, tag, zero_access=False):
        user = '%s%s@%s' % (tag, os.urandom(3).hex(), DOMAIN)
        if not zero_access:
            return user, self.inst.add_user(user)
        password = harness.random_password()
        r = self.inst.marmot(['user', 'add', user, '--zero-access',
                              '--password-stdin'], input=password + '\n')
        self.assertEqual(r.returncode, 0, 'user add --zero-access: %s%s'
                         % (r.stdout, r.stderr))
        return user, password

    def cli_ok(self, args, input=None):
        r = self.inst.marmot(args, input=input)
        self.assertEqual(r.returncode, 0, 'marmot %s: exit %d %s%s'
                         % (' '.join(args), r.returncode, r.stdout, r.stderr))
        return r

    def app_password(self, user, label):
        r = self.cli_ok(['app-password', 'add', user, label])
        tokens = [t for t in r.stdout.split() if len(t) >= 24 and
                  '@' not in t]
        self.assertEqual(len(tokens), 1, 'app-password add printed %r'
                         % r.stdout)
        return tokens[0]

    def session(self, port='submission'):
        """An EHLO'd TLS session: STARTTLS on 587, implicit on 465.
        Returns the client and the AUTH mechanisms offered."""
        tls = port == 'submissions'
        c = LineClient(self.inst.ports[port],
                       tls_context=self.ctx if tls else None)
        self.addCleanup(c.close)
        code, lines = c.smtp_reply()
        self.assertEqual(code, 220, lines)
        if not tls:
            c.cmd('EHLO client.test.example')
            code, lines = c.smtp_reply()
            self.assertEqual(code, 250, lines)
            c.cmd('STARTTLS')
            code, lines = c.smtp_reply()
            self.assertEqual(code, 220, lines)
            c.starttls(self.ctx)
        c.cmd('EHLO client.test.example')
        code, lines = c.smtp_reply()
        self.assertEqual(code, 250, lines)
        mechs = []
        for kw in harness.ehlo_keywords(lines):
            if kw.startswith('AUTH '):
                mechs = kw.split()[1:]
        return c, mechs

    def scram(self, c, user, password, initial=True):
        """One SCRAM-SHA-256 exchange (RFC 4954 4). Returns (final code,
        lines, client, server-first or None)."""
        client = ScramClient(user)
        if initial:
            c.cmd('AUTH SCRAM-SHA-256 ' + b64e(client.first))
        else:
            c.cmd('AUTH SCRAM-SHA-256')
            code, lines = c.smtp_reply()
            self.assertEqual(lines, ['334 '],
                             'AUTH without initial response: expected an '
                             'empty 334 challenge, got %r' % lines)
            c.cmd(b64e(client.first))
        code, lines = c.smtp_reply()
        if code != 334:
            return code, lines, client, None
        server_first = b64d(lines[0][4:]).decode()
        c.cmd(b64e(client.final(server_first, password)))
        code, lines = c.smtp_reply()
        if code == 334:
            # RFC 4954 4: success with additional data is a 334 challenge
            # carrying server-final-message, answered by an empty line.
            server_final = b64d(lines[0][4:]).decode()
            self.assertTrue(client.verify(server_final),
                            'server signature %r, expected %r: the server '
                            'does not know the password'
                            % (server_final, client.expected_server_final))
            c.cmd('')
            code, lines = c.smtp_reply()
        return code, lines, client, server_first


class ScramTest(SaslCase):
    def test_advertised_after_tls(self):
        for port in ('submission', 'submissions'):
            with self.subTest(port=port):
                _, mechs = self.session(port)
                for m in ('PLAIN', 'LOGIN', 'SCRAM-SHA-256'):
                    self.assertIn(m, mechs, 'EHLO on %s: AUTH %r lacks %s'
                                  % (port, mechs, m))
                # We offer no channel binding.
                self.assertNotIn('SCRAM-SHA-256-PLUS', mechs)

    def test_password(self):
        user, password = self.new_user('scram')
        for port, initial in (('submission', True), ('submissions', False)):
            with self.subTest(port=port, initial=initial):
                c, _ = self.session(port)
                code, lines, client, _ = self.scram(c, user, password,
                                                    initial)
                self.assertEqual(code, 235, 'SCRAM with the password on %s: '
                                 'expected 235, got %r' % (port, lines))
                self.assertEqual(client.iterations, 4096)
                self.assertEqual(len(client.salt), 16)
                c.cmd('AUTH PLAIN ' + harness.auth_plain(user, password))
                code, lines = c.smtp_reply()
                self.assertEqual(code, 503, 'AUTH after success: %r' % lines)

    def test_app_password(self):
        user, password = self.new_user('scramapp')
        app = self.app_password(user, 'phone')
        c, _ = self.session()
        code, lines, _, _ = self.scram(c, user, app)
        self.assertEqual(code, 235, 'SCRAM with an app password: %r' % lines)
        # Same salt for the password and the app password (one per
        # account), and the password still works.
        c, _ = self.session()
        code, lines, _, _ = self.scram(c, user, password)
        self.assertEqual(code, 235, lines)

    def test_wrong_password(self):
        user, password = self.new_user('scramwrong')
        c, _ = self.session()
        code, lines, _, server_first = self.scram(c, user, password + 'x')
        self.assertIsNotNone(server_first, lines)
        self.assertEqual(code, 535, 'SCRAM with a wrong password: expected '
                         '535, got %r' % lines)
        # The session goes on: the right password works next.
        code, lines, _, _ = self.scram(c, user, password)
        self.assertEqual(code, 235, lines)

    def test_unknown_user_looks_real(self):
        salts = []
        for _ in range(2):
            c, _ = self.session()
            code, lines, client, server_first = self.scram(
                c, 'ghost@' + DOMAIN, 'whatever')
            self.assertIsNotNone(server_first, 'unknown user: expected a '
                                 'server-first-message, got %r' % lines)
            self.assertEqual(code, 535, lines)
            self.assertEqual(client.iterations, 4096)
            self.assertEqual(len(client.salt), 16)
            salts.append(client.salt)
        self.assertEqual(salts[0], salts[1], 'an unknown user\'s salt must '
                         'be stable, as a real one is')

    def test_channel_binding_refused(self):
        user, password = self.new_user('scramcb')
        c, _ = self.session()
        first = 'p=tls-exporter,,n=%s,r=%s' % (user, b64e(os.urandom(18)))
        c.cmd('AUTH SCRAM-SHA-256 ' + b64e(first))
        code, lines = c.smtp_reply()
        self.assertTrue(500 <= code < 600, 'channel binding: expected a '
                        '5xx refusal, got %r' % lines)
        self.assertNotEqual(code, 334, 'channel binding must be refused '
                            'before a server-first-message: %r' % lines)
        self.assertNotEqual(code, 235, lines)

    def test_cancel(self):
        user, password = self.new_user('scramcancel')
        c, _ = self.session()
        client = ScramClient(user)
        c.cmd('AUTH SCRAM-SHA-256 ' + b64e(client.first))
        code, lines = c.smtp_reply()
        self.assertEqual(code, 334, lines)
        c.cmd('*')
        code, lines = c.smtp_reply()
        # RFC 4954 4: a cancelled exchange is 501.
        self.assertEqual(code, 501, lines)
        code, lines, _, _ = self.scram(c, user, password)
        self.assertEqual(code, 235, lines)

    def test_passwd_gives_scram(self):
        user, old = self.new_user('scrampw')
        new = harness.random_password()
        self.cli_ok(['user', 'passwd', user, '--password-stdin'],
                    input=new + '\n')
        c, _ = self.session()
        code, lines, _, _ = self.scram(c, user, old)
        self.assertEqual(code, 535, 'old password after passwd: %r' % lines)
        code, lines, _, _ = self.scram(c, user, new)
        self.assertEqual(code, 235, 'new password after passwd: %r' % lines)

    def test_unicode_password(self):
        # Set in decomposed form (e + U+0301, with a NO-BREAK SPACE); a
        # client that prepares it (RFC 8265 4.2: spaces to U+0020, NFC)
        # sends the composed form, and the server prepared it likewise.
        user = 'scramuni%s@%s' % (os.urandom(3).hex(), DOMAIN)
        typed = 'cafe\u0301\u00a0de\u0301ja\u0300 vu'
        self.inst.add_user(user, password=typed)
        prepared = unicodedata.normalize('NFC', typed.replace('\u00a0',
                                                              ' '))
        self.assertEqual(prepared, 'caf\u00e9 d\u00e9j\u00e0 vu')
        c, _ = self.session()
        code, lines, _, _ = self.scram(c, user, prepared)
        self.assertEqual(code, 235, 'SCRAM with the prepared form of a '
                         'decomposed password: %r' % lines)

    def test_zero_access_uses_plain(self):
        user, password = self.new_user('scramza', zero_access=True)
        c, _ = self.session()
        code, lines, client, server_first = self.scram(c, user, password)
        self.assertIsNotNone(server_first, lines)
        self.assertEqual(code, 535, 'SCRAM for a zero-access account: '
                         'expected 535, got %r' % lines)
        c.cmd('AUTH PLAIN ' + harness.auth_plain(user, password))
        code, lines = c.smtp_reply()
        self.assertEqual(code, 235, 'PLAIN for a zero-access account: %r'
                         % lines)
        log = self.inst.log_text(limit=200000)
        self.assertIn('reason=zero_access', log)


class PlainLoginTest(SaslCase):
    def smtplib_login(self, user, password, mech):
        s = smtplib.SMTP_SSL('127.0.0.1', self.inst.ports['submissions'],
                             context=self.ctx, timeout=10)
        try:
            s.ehlo('client.test.example')
            s.user, s.password = user, password
            auth = {'PLAIN': s.auth_plain, 'LOGIN': s.auth_login}[mech]
            return s.auth(mech, auth)
        finally:
            s.close()

    def test_plain_and_login(self):
        user, password = self.new_user('plain')
        app = self.app_password(user, 'mua')
        for mech in ('PLAIN', 'LOGIN'):
            for secret in (password, app):
                with self.subTest(mech=mech, app=secret is app):
                    code, _ = self.smtplib_login(user, secret, mech)
                    self.assertEqual(code, 235)
            with self.subTest(mech=mech, wrong=True):
                with self.assertRaises(smtplib.SMTPAuthenticationError):
                    self.smtplib_login(user, 'wrong', mech)


if __name__ == '__main__':
    unittest.main()
