"""TLS with the openssl CLI (s_client STARTTLS for IMAP and SMTP, implicit
TLS on IMAPS) and the certificate's host name."""

import shutil
import socket
import ssl
import subprocess
import unittest

import harness
from harness import HOSTNAME, SharedInstance


def s_client(args, stdin_text, timeout=30):
    """Runs openssl s_client; returns (exit code, stdout + stderr)."""
    r = subprocess.run(['openssl', 's_client'] + args, input=stdin_text,
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


class OpensslTest(unittest.TestCase):
    def setUp(self):
        if not shutil.which('openssl'):
            self.skipTest('openssl CLI not installed')
        self.inst = SharedInstance.get()

    def common(self, port):
        return ['-connect', '127.0.0.1:%d' % port, '-servername', HOSTNAME,
                '-CAfile', self.inst.cert_path, '-crlf', '-ign_eof']

    def check_handshake(self, out, what):
        self.assertIn('Cipher is', out, '%s: handshake did not complete '
                      '(no "Cipher is"):\n%s' % (what, out[-3000:]))
        self.assertIn('Verify return code: 0 (ok)', out, '%s: expected the '
                      'certificate to verify against tls/cert.pem:\n%s'
                      % (what, out[-3000:]))

    def test_starttls_imap(self):
        code, out = s_client(['-starttls', 'imap'] +
                             self.common(self.inst.ports['imap']),
                             'a1 CAPABILITY\na2 LOGOUT\n')
        what = 'openssl s_client -starttls imap'
        self.check_handshake(out, what)
        self.assertIn('* CAPABILITY', out, '%s: expected the CAPABILITY '
                      'reply after the handshake:\n%s' % (what, out[-3000:]))
        self.assertIn('AUTH=PLAIN', out, what)
        self.assertIn('a2 OK', out, '%s: expected LOGOUT to complete:\n%s'
                      % (what, out[-3000:]))

    def test_imaps(self):
        code, out = s_client(self.common(self.inst.ports['imaps']),
                             'a1 LOGOUT\n')
        what = 'openssl s_client (IMAPS)'
        self.check_handshake(out, what)
        self.assertIn('* OK', out, '%s: expected the greeting:\n%s'
                      % (what, out[-3000:]))

    def test_starttls_smtp_submission(self):
        code, out = s_client(['-starttls', 'smtp'] +
                             self.common(self.inst.ports['submission']),
                             'EHLO client.test.example\nQUIT\n')
        what = 'openssl s_client -starttls smtp (587)'
        self.check_handshake(out, what)
        self.assertIn('AUTH', out, '%s: expected AUTH in the EHLO reply '
                      'after TLS:\n%s' % (what, out[-3000:]))
        self.assertIn('221', out, '%s: expected 221 to QUIT:\n%s'
                      % (what, out[-3000:]))

    def test_certificate_names_host(self):
        ctx = self.inst.ssl_context(check_hostname=True)
        with socket.create_connection(('127.0.0.1', self.inst.ports['imaps']),
                                      timeout=10) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname=HOSTNAME) as s:
                    version = s.version()
            except ssl.SSLCertVerificationError as e:
                self.fail('certificate does not verify for %s: %s'
                          % (HOSTNAME, e))
        harness.note('IMAPS negotiated %s' % version)
        self.assertIn(version, ('TLSv1.2', 'TLSv1.3'))


if __name__ == '__main__':
    unittest.main()
