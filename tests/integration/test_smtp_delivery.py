"""SMTP delivery basics (issue 4), end to end through the store: mail
sent over port 25 (plain, STARTTLS, BDAT in chunks, SMTPUTF8, pipelined
transactions) and over submission after AUTH (smtplib) is stored byte for
byte as sent, after the Return-Path and Received fields we add (checked
through `marmot export`); the Received field names the protocol (RFC 3848,
RFC 6531 4.3) and the TLS cipher; submission refuses a sender or From:
address the account does not own and enforces submission_rate_limit; port
25 refuses address literals and foreign domains (the full relay matrix is
test_smtp_relay.py)."""

import base64
import hashlib
import hmac
import os
import smtplib
import time
import unittest

import harness
from harness import DOMAIN
from smtp_util import MailCase, REMOTE, SmtpClient, first_diff, strip_trace

ALICE = 'alice@' + DOMAIN
BOB = 'bob@' + DOMAIN
CAROL = 'carol@' + DOMAIN
JORG = 'j\u00f6rg@' + DOMAIN
POSTMASTER = 'postmaster@' + DOMAIN

RATE_LIMIT = 3


def body(tag):
    """A message with a dot-stuffing case, 8-bit text and a long line."""
    return ('From: sender@%s\r\n'
            'To: %s\r\n'
            'Subject: delivery test %s\r\n'
            'Message-ID: <%s@test.example>\r\n'
            'MIME-Version: 1.0\r\n'
            'Content-Type: text/plain; charset=utf-8\r\n'
            'Content-Transfer-Encoding: 8bit\r\n'
            '\r\n'
            '.a line that starts with a dot\r\n'
            '..two dots\r\n'
            'gr\u00fc\u00dfe\r\n'
            '%s\r\n'
            '\r\n' % (REMOTE, ALICE, tag, tag, 'x' * 900)).encode()


def dot_stuff(data):
    """RFC 5321 4.5.2 transparency, as a client does it."""
    lines = data.split(b'\r\n')
    return b'\r\n'.join(b'.' + l if l.startswith(b'.') else l
                        for l in lines)


class DeliveryTest(MailCase):
    ACCOUNTS = (ALICE, BOB, CAROL, JORG, POSTMASTER)
    CONF = (('submission_rate_limit', str(RATE_LIMIT)),)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(cls.mi.inst.binary, 'rb') as f:
            answers_rcpt = b'rcpt.resolve_failed\0' in f.read()
        if not answers_rcpt:
            cls.mi.cleanup()
            cls.mi = None
            raise unittest.SkipTest('this build\'s vault does not answer '
                                    'IPC_VAULT_RCPT yet (vault-rcpt.c)')
        try:
            cls.wait_vault()
        except BaseException:
            cls.mi.cleanup()
            cls.mi = None
            raise

    @classmethod
    def wait_vault(cls):
        # The vault may still be starting when the SMTP port answers
        # (RCPT is then 451, rightly): wait, bounded, until it answers.
        deadline = time.monotonic() + 30
        while True:
            c = SmtpClient(cls.mi.inst.ports['smtp'])
            try:
                c.greet_ehlo()
                c.cmd('MAIL FROM:<>')
                c.expect(250, 'MAIL')
                c.cmd('RCPT TO:<%s>' % ALICE)
                code, lines = c.reply()
            finally:
                c.close()
            if code == 250:
                return
            if code != 451 or time.monotonic() > deadline:
                raise AssertionError('RCPT TO:<%s> while the vault starts: '
                                     'expected 250 (or 451 for a while), '
                                     'got %r' % (ALICE, lines))
            time.sleep(0.2)

    def stored(self, address, tag, n=1):
        """The stored messages of address whose Subject names tag."""
        self.mi.wait_count(address, 1)
        self.mi.wait_merged([address])
        out = []
        for _folder, data in self.mi.export(address):
            if ('delivery test %s\r\n' % tag).encode() in data:
                out.append(data)
        self.assertEqual(len(out), n, 'expected %d stored message(s) '
                         'tagged %r for %s, found %d' % (n, tag, address,
                                                          len(out)))
        return out

    def assert_same(self, stored, sent, what):
        trace, rest = strip_trace(stored)
        self.assertTrue(trace and trace[0].startswith(b'Return-Path:'),
                        '%s: no Return-Path on top: %r' % (what, trace))
        self.assertEqual(rest, sent, '%s: stored bytes differ from the '
                         'bytes sent: %s' % (what, first_diff(rest, sent)))
        return b''.join(trace)

    def envelope(self, c, sender, rcpts, mail_params=''):
        c.cmd('MAIL FROM:<%s>%s' % (sender, mail_params))
        c.expect(250, 'MAIL FROM')
        for r in rcpts:
            c.cmd('RCPT TO:<%s>' % r)
            c.expect(250, 'RCPT TO:<%s>' % r)

    def test_1_plain_data(self):
        msg = body('plain')
        c = self.client('smtp')
        c.greet_ehlo()
        self.envelope(c, 'sender@' + REMOTE, [ALICE])
        c.cmd('DATA')
        c.expect(354, 'DATA')
        c.send(dot_stuff(msg) + b'.\r\n')
        c.expect(250, 'end of data')
        trace = self.assert_same(self.stored(ALICE, 'plain')[0], msg,
                                 'DATA on 25')
        self.assertIn(b'with ESMTP id', trace, trace)
        self.assertIn(b'for <%s>;' % ALICE.encode(), trace, trace)
        self.assertIn(b'from client.test.example ([127.0.0.1])', trace,
                      trace)

    def test_2_starttls(self):
        msg = body('starttls')
        c = self.client('smtp')
        c.greet_ehlo()
        c.starttls_ehlo(self.mi.inst.ssl_context())
        self.envelope(c, 'sender@' + REMOTE, [ALICE, BOB])
        c.cmd('DATA')
        c.expect(354, 'DATA')
        c.send(dot_stuff(msg) + b'.\r\n')
        c.expect(250, 'end of data after STARTTLS')
        for who in (ALICE, BOB):
            trace = self.assert_same(self.stored(who, 'starttls')[0], msg,
                                     'STARTTLS on 25 for %s' % who)
            self.assertIn(b'with ESMTPS id', trace, trace)
            self.assertIn(b'(using TLSv1.', trace, trace)
            # Two recipients: the Received field names neither.
            self.assertNotIn(b'for <', trace, trace)

    def test_3_bdat_chunks(self):
        msg = body('bdat')
        # Chunks split inside a CRLF, at a line start before a dot and in
        # the middle of a UTF-8 character; no dot-stuffing with BDAT.
        cuts = [msg.index(b'\r\n') + 1, msg.index(b'\r\n.a') + 2,
                msg.index('\u00fc'.encode()) + 1, len(msg)]
        c = self.client('smtp')
        c.greet_ehlo()
        self.envelope(c, 'sender@' + REMOTE, [ALICE], ' BODY=8BITMIME')
        start = 0
        out = b''
        for i, end in enumerate(cuts):
            last = ' LAST' if i == len(cuts) - 1 else ''
            out += b'BDAT %d%s\r\n' % (end - start, last.encode())
            out += msg[start:end]
            start = end
        c.send(out)  # all chunks pipelined in one write
        for i in range(len(cuts) - 1):
            c.expect(250, 'BDAT chunk %d' % (i + 1))
        c.expect(250, 'BDAT LAST')
        self.assert_same(self.stored(ALICE, 'bdat')[0], msg, 'BDAT')

    def test_4_smtputf8(self):
        msg = body('utf8').replace(b'To: ' + ALICE.encode(),
                                   b'To: ' + JORG.encode())
        c = self.client('smtp')
        c.greet_ehlo()
        c.cmd('MAIL FROM:<s\u00e9nder@%s>' % REMOTE)
        c.expect(553, 'UTF-8 sender without SMTPUTF8 (RFC 6531 3.5)')
        self.envelope(c, 's\u00e9nder@' + REMOTE, [JORG], ' SMTPUTF8')
        c.cmd('DATA')
        c.expect(354, 'DATA')
        c.send(dot_stuff(msg) + b'.\r\n')
        c.expect(250, 'end of SMTPUTF8 data')
        trace = self.assert_same(self.stored(JORG, 'utf8')[0], msg,
                                 'SMTPUTF8')
        self.assertIn(b'with UTF8SMTP id', trace, trace)
        self.assertIn(('Return-Path: <s\u00e9nder@%s>' % REMOTE).encode(),
                      trace, trace)

    def test_5_pipelined_transactions(self):
        a, b = body('pipe-a'), body('pipe-b')
        c = self.client('smtp')
        c.greet_ehlo()
        c.send(b'MAIL FROM:<x@%s>\r\nRCPT TO:<%s>\r\nDATA\r\n'
               % (REMOTE.encode(), ALICE.encode()))
        c.expect(250, 'MAIL')
        c.expect(250, 'RCPT')
        c.expect(354, 'DATA')
        c.send(dot_stuff(a) + b'.\r\nMAIL FROM:<y@%s>\r\nRCPT TO:<%s>\r\n'
               b'RCPT TO:<nobody@%s>\r\nDATA\r\n'
               % (REMOTE.encode(), BOB.encode(), DOMAIN.encode()))
        c.expect(250, 'first message')
        c.expect(250, 'second MAIL')
        c.expect(250, 'second RCPT')
        c.expect(550, 'unknown recipient')
        c.expect(354, 'second DATA')
        c.send(dot_stuff(b) + b'.\r\nQUIT\r\n')
        c.expect(250, 'second message')
        c.expect(221, 'QUIT')
        self.assert_same(self.stored(ALICE, 'pipe-a')[0], a, 'first')
        self.assert_same(self.stored(BOB, 'pipe-b')[0], b, 'second')

    def test_6_relay_refused(self):
        c = self.client('smtp')
        c.greet_ehlo()
        c.cmd('MAIL FROM:<x@%s>' % REMOTE)
        c.expect(250, 'MAIL')
        for rcpt in ('<u@%s>' % REMOTE, '<alice@[127.0.0.1]>',
                     '<u@[192.0.2.9]>', '<@%s:u@%s>' % (DOMAIN, REMOTE),
                     '<alice@%s.>' % DOMAIN):
            c.cmd('RCPT TO:%s' % rcpt)
            code, lines = c.reply()
            self.assertTrue(code is not None and code >= 500,
                            'RCPT TO:%s on 25: expected a 5xx, got %r'
                            % (rcpt, lines))
        c.cmd('RCPT TO:<u@%s>' % REMOTE)
        code, lines = c.reply()
        self.assertTrue(lines[-1].startswith('550 5.7.1'),
                        'RCPT to a foreign domain on 25: expected 550 '
                        '5.7.1, got %r' % lines)
        c.cmd('DATA')
        c.expect(554, 'DATA without a recipient (RFC 2920 3.1)')

    def submit(self, user, sender, rcpts, msg):
        """smtplib over 587 with STARTTLS and AUTH; returns the refused
        recipients (raises on other failures)."""
        with smtplib.SMTP(harness.LOOPBACK, self.mi.inst.ports['submission'],
                          local_hostname='client.test.example',
                          timeout=15) as s:
            s.starttls(context=self.mi.inst.ssl_context())
            s.login(user, self.mi.passwords[user])
            return s.sendmail(sender, rcpts, msg)

    def test_7_submission(self):
        # A folded From: with a display name (RFC 5322 3.2.2).
        msg = body('submit').replace(b'From: sender@' + REMOTE.encode(),
                                     b'From: "Alice A."\r\n\t<' +
                                     ALICE.encode() + b'>')
        refused = self.submit(ALICE, ALICE, [BOB], msg)
        self.assertEqual(refused, {})
        trace = self.assert_same(self.stored(BOB, 'submit')[0], msg,
                                 'submission')
        self.assertIn(b'with ESMTPSA id', trace, trace)

    def test_8_submission_ownership(self):
        msg = body('forged').replace(b'From: sender@' + REMOTE.encode(),
                                     b'From: ' + BOB.encode())
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            self.submit(ALICE, BOB, [CAROL], msg)
        self.assertEqual(cm.exception.smtp_code, 550, cm.exception)
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.submit(ALICE, ALICE, [CAROL], msg)
        self.assertEqual(cm.exception.smtp_code, 550, cm.exception)
        self.assertIn(b'5.7.1', cm.exception.smtp_error)
        self.assertEqual(self.mi.store_list(CAROL), [],
                         'a message with a forged From: was stored')

    def test_9_rate_limit(self):
        msg = body('rate').replace(b'From: sender@' + REMOTE.encode(),
                                   b'From: ' + CAROL.encode())
        for i in range(RATE_LIMIT):
            self.assertEqual(self.submit(CAROL, CAROL, [ALICE], msg), {},
                             'message %d of %d' % (i + 1, RATE_LIMIT))
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            self.submit(CAROL, CAROL, [ALICE], msg)
        self.assertEqual(cm.exception.smtp_code, 450, cm.exception)
        self.stored(ALICE, 'rate', n=RATE_LIMIT)


    def test_10_postmaster(self):
        """RFC 5321 4.1.1.3 / 4.5.1: <Postmaster> without a domain reaches
        the postmaster of our domain (the host name's parent here)."""
        msg = body('postmaster')
        c = self.client('smtp')
        c.greet_ehlo()
        c.cmd('MAIL FROM:<>')
        c.expect(250, 'MAIL FROM:<>')
        c.cmd('RCPT TO:<Postmaster>')
        c.expect(250, 'RCPT TO:<Postmaster>')
        c.cmd('DATA')
        c.expect(354, 'DATA')
        c.send(dot_stuff(msg) + b'.\r\n')
        c.expect(250, 'end of data')
        trace = self.assert_same(self.stored(POSTMASTER, 'postmaster')[0],
                                 msg, '<Postmaster>')
        self.assertIn(b'Return-Path: <>', trace, trace)

    def test_11_scram(self):
        """AUTH SCRAM-SHA-256 (RFC 7677) on 465: the server-final message
        comes in a 334 that the client answers with an empty line
        (RFC 4954 4), then 235, then mail is taken."""
        def b64(data):
            if isinstance(data, str):
                data = data.encode()
            return base64.b64encode(data).decode()

        password = self.mi.passwords[ALICE]
        nonce = b64(os.urandom(18))
        bare = 'n=%s,r=%s' % (ALICE.replace('=', '=3D').replace(',', '=2C'),
                              nonce)
        c = self.client('submissions', tls=True)
        c.greet_ehlo()
        c.cmd('AUTH SCRAM-SHA-256 ' + b64('n,,' + bare))
        code, lines = c.reply()
        self.assertEqual(code, 334, lines)
        server_first = base64.b64decode(lines[-1][4:]).decode()
        attrs = dict(kv.split('=', 1) for kv in server_first.split(','))
        self.assertTrue(attrs['r'].startswith(nonce), server_first)
        salted = hashlib.pbkdf2_hmac('sha256', password.encode(),
                                     base64.b64decode(attrs['s']),
                                     int(attrs['i']))
        client_key = hmac.new(salted, b'Client Key', 'sha256').digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = 'c=biws,r=' + attrs['r']
        auth_msg = ','.join((bare, server_first, without_proof)).encode()
        sig = hmac.new(stored_key, auth_msg, 'sha256').digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        c.cmd(b64(without_proof + ',p=' + b64(proof)))
        code, lines = c.reply()
        self.assertEqual(code, 334, 'SCRAM client-final: expected 334 '
                         'with the server-final, got %r' % lines)
        server_key = hmac.new(salted, b'Server Key', 'sha256').digest()
        expected = 'v=' + b64(hmac.new(server_key, auth_msg,
                                       'sha256').digest())
        self.assertEqual(base64.b64decode(lines[-1][4:]).decode(), expected)
        c.cmd('')
        c.expect(235, 'SCRAM after the empty response')
        c.cmd('MAIL FROM:<%s>' % ALICE)
        c.expect(250, 'MAIL after SCRAM')

    def test_12_futurerelease_local(self):
        """FUTURERELEASE (RFC 4865) is offered on submission after AUTH;
        a held message cannot go to a local mailbox (it would be sealed
        at once), which RCPT says with 550 5.3.3."""
        c = self.client('submissions', tls=True)
        c.greet_ehlo()
        c.auth_plain(BOB, self.mi.passwords[BOB])
        c.cmd('EHLO client.test.example')
        code, lines = c.reply()
        self.assertTrue(any(l[4:].startswith('FUTURERELEASE ')
                            for l in lines), lines)
        c.cmd('MAIL FROM:<%s> HOLDFOR=3600' % BOB)
        c.expect(250, 'MAIL with HOLDFOR')
        c.cmd('RCPT TO:<%s>' % ALICE)
        code, lines = c.reply()
        self.assertTrue(lines[-1].startswith('550 5.3.3'), lines)
        c.cmd('RSET')
        c.expect(250, 'RSET')
        c.cmd('MAIL FROM:<%s> HOLDFOR=999999999' % BOB)
        c.expect(501, 'HOLDFOR beyond the advertised maximum')


if __name__ == '__main__':
    unittest.main()
