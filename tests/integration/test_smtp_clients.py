"""Real clients deliver to local accounts (issue 4, "Must show"): swaks
and Python's smtplib over plain SMTP, STARTTLS (25 and 587 with AUTH),
implicit TLS (465) and BDAT (RFC 3030: smtplib with a raw BDAT
exchange, one chunk and several), with SMTPUTF8 (RFC 6531): an account
whose local part is UTF-8 (jörg@), a UTF-8 envelope sender, and UTF-8
header fields. Each message is read back out of the store with
`marmot export ADDRESS --maildir DIR` and must equal, byte for byte, what
was sent once the trace fields we add at the top are removed: one
Return-Path holding the envelope sender (RFC 5321 4.4) and a Received
field naming this host. What swaks sends is captured first by a small
SMTP server in this test (swaks turns LF into CRLF and ends the data
itself), so the comparison is with the bytes on the wire, not a guess.

swaks (20201014) has no SMTPUTF8 option, so the SMTPUTF8 cases use
smtplib. BINARYMIME (RFC 3030 3): a BDAT message with BODY=BINARYMIME
holding NUL, bare CR and bare LF is stored unchanged. Reply latency: a
NOOP round trip (plain and TLS) averages under LATENCY_MAX_MS, which a
reply held back by Nagle's algorithm and a delayed ACK does not."""

import os
import re
import smtplib
import subprocess
import time
import unittest

import harness
from harness import DOMAIN, HOSTNAME
from smtp_util import CaptureServer, MailCase, REMOTE, SmtpClient, \
    first_diff, strip_trace

ALICE = 'alice@' + DOMAIN
BOB = 'bob@' + DOMAIN
JOERG = 'j\u00f6rg@' + DOMAIN
SENDER = 'sender@' + REMOTE
UTF8_SENDER = 'jos\u00e9@' + REMOTE
# Average round trip of a NOOP allowed (ms): ~1 expected, ~40 when a reply
# waits for a delayed ACK.
LATENCY_MAX_MS = 20.0


def message(case, sender_hdr, to_hdr, utf8=False, extra=b''):
    """A CRLF message with a unique Message-ID and a body of a few shapes
    (a leading dot, long-ish lines, a trailing space, 8-bit text)."""
    subject = ('Gr\u00fc\u00dfe aus K\u00f6ln \u2014 %s' % case if utf8
               else 'Client test %s' % case)
    head = ('From: %s\r\nTo: %s\r\nSubject: %s\r\n'
            'Message-ID: <%s@clients.test>\r\n'
            'Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n'
            'MIME-Version: 1.0\r\n'
            'Content-Type: text/plain; charset=utf-8\r\n'
            'Content-Transfer-Encoding: 8bit\r\n\r\n'
            % (sender_hdr, to_hdr, subject, case))
    body = ('Hello from %s.\r\n'
            '.a line that starts with a dot\r\n'
            '..and one with two\r\n'
            'trailing space \r\n'
            '%s\r\n'
            '\u00e4\u00f6\u00fc \u20ac \U0001f600 8-bit text\r\n'
            '\r\n'
            'last line\r\n' % (case, 'x' * 900))
    return head.encode('utf-8') + body.encode('utf-8') + extra


def message_id(data):
    m = re.search(rb'(?im)^Message-ID: <([^>]+)@clients\.test>', data)
    return m.group(1).decode() if m else None


class ClientsTest(MailCase):
    ACCOUNTS = (ALICE, BOB, JOERG)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # (case, recipient address, envelope sender, bytes as sent)
        cls.sent = []

    def record(self, case, rcpt, sender, data):
        self.sent.append((case, rcpt, sender, data))

    # -- swaks ------------------------------------------------------------

    def swaks_data(self, case, sender_hdr, to_hdr):
        """A data file for swaks (CRLF lines, no line break at the end:
        swaks adds the last CRLF with the end of data) and the bytes swaks
        sends from it, captured by CaptureServer."""
        text = message(case, sender_hdr, to_hdr).rstrip(b'\r\n')
        path = os.path.join(self.mi.work, case + '.eml')
        with open(path, 'wb') as f:
            f.write(text)
        cap = CaptureServer()
        r = self.swaks(cap.port, ['--from', 'x@capture.test', '--to',
                                  'y@capture.test', '--data', path])
        cap.close()
        self.assertEqual(r.returncode, 0, 'swaks against the capture '
                         'server: %s\n%s' % (r.stdout[-2000:], cap.errors))
        self.assertEqual(len(cap.messages), 1, cap.errors)
        return path, cap.messages[0]

    def swaks(self, port, args):
        return subprocess.run(
            ['swaks', '--server', '127.0.0.1', '--port', str(port),
             '--helo', 'client.test.example', '--timeout', '30'] + args,
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=90)

    def test_1_swaks(self):
        cases = [
            ('swaks-plain-25', 'smtp', [], ALICE, SENDER),
            ('swaks-starttls-25', 'smtp', ['--tls'], BOB, SENDER),
            ('swaks-starttls-587', 'submission',
             ['--tls', '--auth', 'PLAIN'], BOB, ALICE),
            ('swaks-tls-465', 'submissions',
             ['--tls-on-connect', '--auth', 'LOGIN'], ALICE, ALICE),
            ('swaks-utf8-rcpt-25', 'smtp', [], JOERG, SENDER),
        ]
        for case, port, opts, rcpt, sender in cases:
            with self.subTest(case=case):
                if rcpt == JOERG:
                    # Without SMTPUTF8 (swaks cannot send it), a UTF-8
                    # recipient is refused, not mangled: RFC 6531 3.5,
                    # "553 5.6.7".
                    path, _ = self.swaks_data(case, sender, rcpt)
                    r = self.swaks(self.inst.ports[port],
                                   ['--from', sender, '--to', rcpt,
                                    '--data', path])
                    self.assertNotEqual(r.returncode, 0,
                                        'a UTF-8 RCPT without SMTPUTF8 '
                                        'was accepted:\n' + r.stdout)
                    self.assertRegex(r.stdout, r'<[*~]\* +553 5\.6\.7',
                                     r.stdout[-1500:])
                    continue
                path, wire = self.swaks_data(case, sender, rcpt)
                args = ['--from', sender, '--to', rcpt, '--data', path]
                if '--auth' in opts:
                    args += ['--auth-user', sender, '--auth-password',
                             self.mi.passwords[sender]]
                r = self.swaks(self.inst.ports[port], opts + args)
                self.assertEqual(r.returncode, 0, 'swaks %s: exit %d\n%s'
                                 % (case, r.returncode, r.stdout[-3000:]))
                self.record(case, rcpt, sender, wire)

    # -- smtplib ----------------------------------------------------------

    def smtp(self, port):
        if port == 'submissions':
            s = smtplib.SMTP_SSL('127.0.0.1', self.inst.ports[port],
                                 local_hostname='client.test.example',
                                 context=self.ctx, timeout=30)
        else:
            s = smtplib.SMTP('127.0.0.1', self.inst.ports[port],
                             local_hostname='client.test.example',
                             timeout=30)
        self.addCleanup(s.close)
        s.ehlo()
        return s

    def bdat(self, s, data, chunks=1, where=''):
        """Sends data with BDAT in chunks (RFC 3030 2); returns the last
        reply."""
        self.assertTrue(s.has_extn('chunking'), '%s: no CHUNKING in %r'
                        % (where, s.esmtp_features))
        size = -(-len(data) // chunks)
        parts = [data[i:i + size] for i in range(0, len(data), size)]
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            s.send(b'BDAT %d%s\r\n' % (len(part), b' LAST' if last else b'')
                   + part)
            code, msg = s.getreply()
            self.assertEqual(code, 250, '%s: BDAT chunk %d of %d: %d %r'
                             % (where, i + 1, len(parts), code, msg))
        return code, msg

    def test_2_smtplib(self):
        # (case, port, starttls, login as, rcpt, envelope sender, mode,
        # SMTPUTF8)
        cases = [
            ('lib-plain-25', 'smtp', False, None, ALICE, SENDER, 'data',
             False),
            ('lib-starttls-25', 'smtp', True, None, BOB, SENDER, 'data',
             False),
            ('lib-starttls-587', 'submission', True, ALICE, BOB, ALICE,
             'data', False),
            ('lib-tls-465', 'submissions', False, ALICE, ALICE, ALICE,
             'data', False),
            ('lib-bdat-25', 'smtp', False, None, ALICE, SENDER, 'bdat',
             False),
            ('lib-bdat3-starttls-25', 'smtp', True, None, BOB, SENDER,
             'bdat3', False),
            ('lib-bdat3-587', 'submission', True, ALICE, BOB, ALICE,
             'bdat3', False),
            ('lib-utf8-rcpt-25', 'smtp', False, None, JOERG, SENDER,
             'data', True),
            ('lib-utf8-sender-25', 'smtp', True, None, JOERG, UTF8_SENDER,
             'data', True),
            ('lib-utf8-bdat-25', 'smtp', False, None, JOERG, UTF8_SENDER,
             'bdat', True),
            ('lib-utf8-587', 'submission', True, ALICE, JOERG, ALICE,
             'data', True),
            ('lib-utf8-bdat-465', 'submissions', False, ALICE, JOERG, ALICE,
             'bdat3', True),
        ]
        for (case, port, tls, login, rcpt, sender, mode,
             utf8) in cases:
            with self.subTest(case=case):
                data = message(case, sender, rcpt, utf8=utf8)
                s = self.smtp(port)
                if tls:
                    s.starttls(context=self.ctx)
                    s.ehlo()
                if login:
                    s.login(login, self.mi.passwords[login])
                opts = ['SMTPUTF8'] if utf8 else []
                if utf8:
                    self.assertTrue(s.has_extn('smtputf8'),
                                    s.esmtp_features)
                if mode == 'data':
                    refused = s.sendmail(sender, [rcpt], data,
                                         mail_options=opts +
                                         ['BODY=8BITMIME'])
                    self.assertEqual(refused, {})
                else:
                    code, msg = s.mail(sender, opts + ['BODY=8BITMIME'])
                    self.assertEqual(code, 250, msg)
                    code, msg = s.rcpt(rcpt)
                    self.assertEqual(code, 250, msg)
                    self.bdat(s, data, 3 if mode == 'bdat3' else 1, case)
                s.quit()
                self.record(case, rcpt, sender, data)

    def test_3_binarymime(self):
        s = self.smtp('smtp')
        self.assertTrue(s.has_extn('binarymime'), s.esmtp_features)
        data = (b'From: sender@remote.test\r\nTo: alice@test.example\r\n'
                b'Subject: binary\r\nMessage-ID: <lib-binarymime@clients'
                b'.test>\r\nMIME-Version: 1.0\r\n'
                b'Content-Type: application/octet-stream\r\n'
                b'Content-Transfer-Encoding: binary\r\n\r\n' +
                bytes(range(256)) + b'\r\n.\r\n\n.\n\r.\r\x00\r\n' +
                bytes(range(255, -1, -1)))
        code, msg = s.mail(SENDER, ['BODY=BINARYMIME'])
        self.assertEqual(code, 250, msg)
        code, msg = s.rcpt(ALICE)
        self.assertEqual(code, 250, msg)
        self.bdat(s, data, 2, 'BINARYMIME')
        s.quit()
        self.record('lib-binarymime', ALICE, SENDER, data)

    def test_5_reply_latency(self):
        """A reply is not held back: NOOP after NOOP, each waiting for its
        reply, takes about a millisecond each, even under ASan. A reply
        written in pieces (code, text, CRLF as separate segments) meets
        Nagle's algorithm and the client's delayed ACK and waits about
        40 ms each; the bound (LATENCY_MAX_MS on average over 40) lies
        well between the two."""
        rounds = 40
        for port, tls in (('smtp', False), ('submission', True)):
            with self.subTest(port=port):
                c = SmtpClient(self.inst.ports[port])
                self.addCleanup(c.close)
                c.greet_ehlo()
                if tls:
                    c.starttls_ehlo(self.ctx)
                t0 = time.monotonic()
                for i in range(rounds):
                    c.cmd('NOOP')
                    c.expect(250, 'NOOP %d' % i)
                per = (time.monotonic() - t0) * 1000.0 / rounds
                harness.note('%s%s: %.1f ms per NOOP round trip'
                             % (port, ' (TLS)' if tls else '', per))
                self.assertLess(per, LATENCY_MAX_MS, '%s: %.1f ms per reply '
                                'on average over %d NOOPs' % (port, per,
                                                              rounds))

    # -- read back --------------------------------------------------------

    def test_4_stored_bytes_equal_sent(self):
        self.assertTrue(self.sent, 'no messages were sent (earlier tests '
                        'failed)')
        expected = {}
        for case, rcpt, sender, data in self.sent:
            expected[case] = (rcpt, sender, data)
        per_rcpt = {}
        for case, (rcpt, _, _) in expected.items():
            per_rcpt[rcpt] = per_rcpt.get(rcpt, 0) + 1
        self.mi.wait_merged(list(per_rcpt), timeout=60.0)
        for rcpt, n in per_rcpt.items():
            self.mi.wait_count(rcpt, n, timeout=30.0)
        found = {}
        for rcpt in per_rcpt:
            for folder, data in self.mi.export(rcpt):
                case = message_id(data)
                found.setdefault(case, []).append((rcpt, folder, data))
        problems = []
        for case, (rcpt, sender, sent) in sorted(expected.items()):
            got = found.get(case, [])
            if len(got) != 1:
                problems.append('%s: stored %d times: %r' % (
                    case, len(got), [(r, f) for r, f, _ in got]))
                continue
            where, folder, data = got[0]
            trace, body = strip_trace(data)
            if (where, folder) != (rcpt, 'INBOX'):
                problems.append('%s: in %s %s, expected %s INBOX'
                                % (case, where, folder, rcpt))
            if body != sent:
                problems.append('%s: stored bytes differ from those sent '
                                'after the trace fields: %s'
                                % (case, first_diff(body, sent)))
            paths = [t for t in trace if t.lower().startswith(
                b'return-path')]
            want_rp = ('Return-Path: <%s>' % sender).encode('utf-8')
            if len(paths) != 1 or paths[0].rstrip(b'\r\n') != want_rp or \
                    not trace[0].lower().startswith(b'return-path'):
                problems.append('%s: expected one %r at the top, got trace '
                                '%r' % (case, want_rp, trace))
            received = [t for t in trace if t.lower().startswith(
                b'received')]
            if not any(HOSTNAME.encode() in t for t in received):
                problems.append('%s: no Received field naming %s: %r'
                                % (case, HOSTNAME, trace))
        harness.note('%d messages (swaks %d, smtplib %d) read back through '
                     'marmot export --maildir: %d byte-equal after '
                     'Return-Path/Received'
                     % (len(expected),
                        len([c for c in expected if c.startswith('swaks')]),
                        len([c for c in expected if c.startswith('lib')]),
                        len(expected) - len(problems)))
        self.assertEqual(problems, [])
        self.assertGreaterEqual(len(expected), 17)


if __name__ == '__main__':
    unittest.main()
