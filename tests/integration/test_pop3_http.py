"""POP3 (N+110, N+995) and HTTP (N+80, N+443): greeting, CAPA, STLS,
USER/PASS, QUIT; GET / over HTTP and HTTPS (http.client, and curl when it
is installed)."""

import http.client
import poplib
import shutil
import subprocess
import unittest

from harness import DOMAIN, LineClient, SharedInstance


class Pop3Test(unittest.TestCase):
    def setUp(self):
        self.inst = SharedInstance.get()
        self.user = SharedInstance.user
        self.password = SharedInstance.password
        self.ctx = self.inst.ssl_context()

    def capa(self, c):
        c.cmd('CAPA')
        first = c.read_line()
        self.assertTrue(first.startswith('+OK'), 'CAPA: expected +OK, got %r'
                        % first)
        caps = []
        for _ in range(100):
            line = c.read_line()
            if line == '.':
                return caps
            caps.append(line.split()[0].upper() if line.split() else '')
        self.fail('CAPA: no terminating "." in 100 lines: %r' % caps)

    def test_greeting_capa_stls(self):
        c = LineClient(self.inst.ports['pop3'])
        self.addCleanup(c.close)
        greeting = c.read_line()
        self.assertTrue(greeting.startswith('+OK'), 'POP3 greeting: expected '
                        '+OK, got %r' % greeting)
        caps = self.capa(c)
        self.assertIn('STLS', caps, 'CAPA before TLS: expected STLS, got %r'
                      % caps)
        c.cmd('STLS')
        reply = c.read_line()
        self.assertTrue(reply.startswith('+OK'), 'STLS: expected +OK, got %r'
                        % reply)
        c.starttls(self.ctx)
        caps = self.capa(c)
        self.assertIn('USER', caps, 'CAPA after STLS: expected USER, got %r'
                      % caps)
        c.cmd('QUIT')
        reply = c.read_line()
        self.assertTrue(reply.startswith('+OK'), 'QUIT: expected +OK, got %r'
                        % reply)

    def test_poplib_stls_login(self):
        p = poplib.POP3('127.0.0.1', self.inst.ports['pop3'], timeout=10)
        try:
            self.assertTrue(p.getwelcome().startswith(b'+OK'))
            p.stls(context=self.ctx)
            self.assertTrue(p.user(self.user).startswith(b'+OK'))
            reply = p.pass_(self.password)
            self.assertTrue(reply.startswith(b'+OK'), 'PASS with the right '
                            'password: expected +OK, got %r' % reply)
            self.assertTrue(p.quit().startswith(b'+OK'))
        finally:
            p.close()

    def test_poplib_failures(self):
        for user, what in ((self.user, 'a wrong password'),
                           ('nobody@' + DOMAIN, 'an unknown user')):
            with self.subTest(what=what):
                p = poplib.POP3('127.0.0.1', self.inst.ports['pop3'],
                                timeout=10)
                try:
                    p.stls(context=self.ctx)
                    with self.assertRaises(poplib.error_proto) as cm:
                        p.user(user)
                        p.pass_('not-the-password')
                    self.assertTrue(str(cm.exception).startswith("b'-ERR"),
                                    'USER/PASS with %s: expected -ERR, got '
                                    '%s' % (what, cm.exception))
                finally:
                    p.close()

    def test_pop3s_login(self):
        p = poplib.POP3_SSL('127.0.0.1', self.inst.ports['pop3s'],
                            context=self.ctx, timeout=10)
        try:
            self.assertTrue(p.getwelcome().startswith(b'+OK'))
            p.user(self.user)
            reply = p.pass_(self.password)
            self.assertTrue(reply.startswith(b'+OK'), reply)
            self.assertTrue(p.quit().startswith(b'+OK'))
        finally:
            p.close()


class HttpTest(unittest.TestCase):
    def setUp(self):
        self.inst = SharedInstance.get()
        self.ctx = self.inst.ssl_context()

    def check_root(self, conn, what):
        try:
            conn.request('GET', '/')
            r = conn.getresponse()
            body = r.read(1024 * 1024)
        finally:
            conn.close()
        self.assertEqual((r.version, r.status), (11, 200), '%s GET /: '
                         'expected HTTP/1.1 200, got version %s status %s'
                         % (what, r.version, r.status))
        ctype = r.getheader('Content-Type', '')
        self.assertTrue(ctype.startswith('text/'), '%s GET /: expected a '
                        'text/* body, got Content-Type %r' % (what, ctype))
        self.assertIn(b'marmot', body.lower(), '%s GET /: expected a body '
                      'mentioning Marmot, got %r' % (what, body[:300]))

    def test_http_root(self):
        self.check_root(http.client.HTTPConnection(
            '127.0.0.1', self.inst.ports['http'], timeout=10), 'HTTP')

    def test_https_root(self):
        self.check_root(http.client.HTTPSConnection(
            '127.0.0.1', self.inst.ports['https'], timeout=10,
            context=self.ctx), 'HTTPS')

    def test_curl(self):
        curl = shutil.which('curl')
        if not curl:
            self.skipTest('curl is not installed')
        for url in ('http://127.0.0.1:%d/' % self.inst.ports['http'],
                    'https://127.0.0.1:%d/' % self.inst.ports['https']):
            with self.subTest(url=url):
                r = subprocess.run(
                    [curl, '-sk', '--max-time', '10', '-o', '-', '-w',
                     '\n%{http_code} %{http_version}', url],
                    stdin=subprocess.DEVNULL, capture_output=True, text=True,
                    timeout=30)
                self.assertEqual(r.returncode, 0, 'curl %s: exit %d %s'
                                 % (url, r.returncode, r.stderr))
                body, _, status = r.stdout.rpartition('\n')
                self.assertEqual(status, '200 1.1', 'curl %s: expected '
                                 '"200 1.1", got %r' % (url, status))
                self.assertIn('marmot', body.lower(), 'curl %s: body %r'
                              % (url, body[:300]))



class Pop3InjectionTest(unittest.TestCase):
    def test_pop3_stls_injection(self):
        inst = SharedInstance.get()
        ctx = inst.ssl_context()
        c = LineClient(inst.ports['pop3'])
        self.addCleanup(c.close)
        c.read_line()
        c.send(b'STLS\r\nCAPA\r\n')
        reply = c.read_line()
        self.assertTrue(reply.startswith('+OK'), reply)
        c.starttls(ctx)  # fails if the CAPA reply came in plaintext
        # Two commands, so exactly two one-line replies and then the close;
        # an answer to the injected CAPA would add a multi-line reply.
        c.cmd('NOOP')
        c.cmd('QUIT')
        lines = []
        for _ in range(100):
            try:
                lines.append(c.read_line())
            except (EOFError, OSError):
                break
        self.assertEqual(len(lines), 2, 'after STLS+CAPA in one segment and '
                         'the handshake, NOOP and QUIT should get two '
                         'replies, got %r (the injected CAPA answered?)'
                         % lines)
        self.assertTrue(lines[0].startswith(('+OK', '-ERR')), lines)
        self.assertTrue(lines[1].startswith('+OK'), lines)


if __name__ == '__main__':
    unittest.main()
