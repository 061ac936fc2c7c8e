"""STARTTLS command injection (issue 4, "Must show"; the CVE-2011-0411
class): commands pipelined in the same TCP segment as STARTTLS are
plaintext that an attacker in the path can add; RFC 3207 4.2 says the
server discards any knowledge obtained before TLS, and it must never
answer them, neither in plaintext after the 220 nor inside the TLS
session. On 25 and 587, with NOOP, MAIL FROM, EHLO, RSET and AUTH
injected, with STARTTLS alone and pipelined after EHLO (RFC 2920): the
only plaintext reply is the 220, the TLS handshake succeeds, the first
reply inside TLS is the EHLO reply (multi-line), the injected MAIL FROM
left no transaction behind (RCPT gets 503), QUIT gets the 221 and
nothing else ever arrives. test_smtp.py has the basic NOOP case on 25;
this extends it."""

import unittest

import harness
from harness import DOMAIN
from smtp_util import MailCase, OTHER_SOURCE, SmtpClient

ALICE = 'alice@' + DOMAIN

INJECTED = [
    ('noop', b'NOOP\r\n'),
    ('mail', b'MAIL FROM:<x@evil.test>\r\n'),
    ('mail-rcpt', b'MAIL FROM:<x@evil.test>\r\nRCPT TO:<%s>\r\n'
     % ALICE.encode()),
    ('ehlo', b'EHLO evil.test\r\n'),
    ('rset-noop', b'RSET\r\nNOOP\r\n'),
    ('auth', b'AUTH PLAIN AGFsaWNlQHRlc3QuZXhhbXBsZQB3cm9uZw==\r\n'),
]


class StarttlsInjectionTest(MailCase):
    ACCOUNTS = (ALICE,)
    NEEDS_TRANSACTIONS = False

    def one(self, port, name, injected, pipelined_ehlo):
        where = '%s, injected %s%s' % (port, name, ', EHLO pipelined'
                                       if pipelined_ehlo else '')
        c = SmtpClient(self.inst.ports[port], source=OTHER_SOURCE,
                       timeout=5.0)
        self.addCleanup(c.close)
        c.expect(220, where + ': greeting')
        if pipelined_ehlo:
            c.send(b'EHLO client.test.example\r\nSTARTTLS\r\n' + injected)
            c.expect(250, where + ': EHLO')
        else:
            c.cmd('EHLO client.test.example')
            c.expect(250, where + ': EHLO')
            c.send(b'STARTTLS\r\n' + injected)
        c.expect(220, where + ': STARTTLS')
        try:
            # Fails if any plaintext byte followed the 220 so far.
            c.starttls(self.ctx)
        except AssertionError as e:
            self.fail('%s: plaintext after the 220: %s' % (where, e))
        except OSError as e:  # ssl.SSLError included
            self.fail('%s: TLS handshake after STARTTLS failed (plaintext '
                      'bytes after the 220, e.g. a reply to the injected '
                      'command?): %s' % (where, e))
        c.cmd('EHLO client.test.example')
        lines = c.expect(250, where + ': first reply inside TLS')
        self.assertTrue(len(lines) > 1 and lines[0].startswith('250-'),
                        '%s: the first reply inside TLS must be the '
                        'multi-line EHLO reply, got %r (a reply to the '
                        'injected command?)' % (where, lines))
        kw = harness.ehlo_keywords(lines)
        if port == 'submission':
            self.assertTrue([k for k in kw if k.startswith('AUTH')],
                            '%s: AUTH not offered after TLS: %r'
                            % (where, kw))
        # No transaction survives from before TLS.
        c.cmd('RCPT TO:<%s>' % ALICE)
        lines = c.expect((503, 530), where + ': RCPT without MAIL inside '
                         'TLS')
        c.cmd('QUIT')
        c.expect(221, where + ': QUIT')
        rest = c.replies_until_close()
        self.assertEqual(rest, [], '%s: replies after the 221' % where)

    def test_injection_after_starttls(self):
        n = 0
        for port in ('smtp', 'submission'):
            for name, injected in INJECTED:
                for pipelined_ehlo in (False, True):
                    with self.subTest(port=port, injected=name,
                                      pipelined_ehlo=pipelined_ehlo):
                        self.one(port, name, injected, pipelined_ehlo)
                        n += 1
        harness.note('%d STARTTLS sessions with injected plaintext: no '
                     'reply to any injected command' % n)


if __name__ == '__main__':
    unittest.main()
