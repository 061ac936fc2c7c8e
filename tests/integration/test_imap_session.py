"""The IMAP session core (issue 6) with Python's imaplib: SELECT/EXAMINE,
FETCH (flags, envelope, body sections, partials, BINARY, MODSEQ, EMAILID),
STORE (with CONDSTORE UNCHANGEDSINCE), EXPUNGE / UID EXPUNGE, IDLE hearing
a delivery within 1 s, and two concurrent sessions seeing each other's
flag changes and expunges as RFC 9051 7.5.1 wants (no EXPUNGE during a
plain FETCH/STORE/SEARCH, sequence numbers only shift when the client is
told)."""

import imaplib
import re
import socket
import ssl
import time
import unittest

import harness
from harness import DOMAIN


def message(n, subject=None, body=None):
    subject = subject or 'Message %d' % n
    body = body or 'Body of message %d.\r\nSecond line.\r\n' % n
    return ('From: Bob <bob@example.net>\r\n'
            'To: alice@%s\r\n'
            'Subject: %s\r\n'
            'Date: Tue, 1 Dec 2026 10:00:%02d +0000\r\n'
            'Message-ID: <m%d@example.net>\r\n'
            'MIME-Version: 1.0\r\n'
            'Content-Type: text/plain; charset=utf-8\r\n'
            '\r\n%s' % (DOMAIN, subject, n % 60, n, body)).encode()


MULTIPART = (b'From: Carol <carol@example.net>\r\n'
             b'To: alice@' + DOMAIN.encode() + b'\r\n'
             b'Subject: parts\r\n'
             b'Message-ID: <parts@example.net>\r\n'
             b'MIME-Version: 1.0\r\n'
             b'Content-Type: multipart/mixed; boundary="XX"\r\n'
             b'\r\n'
             b'preamble\r\n'
             b'--XX\r\n'
             b'Content-Type: text/plain; charset=us-ascii\r\n'
             b'\r\n'
             b'first part\r\n'
             b'--XX\r\n'
             b'Content-Type: application/octet-stream\r\n'
             b'Content-Transfer-Encoding: base64\r\n'
             b'\r\n'
             b'AAECAwQ=\r\n'
             b'--XX--\r\n')


class ImapSessionTest(harness.ImapAccountCase):
    def deliver(self, data, wait_count=None, mailbox='INBOX'):
        r = self.inst.marmot(['deliver', self.user], input=data.decode())
        self.assertEqual(r.returncode, 0, r.stderr)
        if wait_count is not None:
            self.wait_count(mailbox, wait_count)

    def wait_count(self, mailbox, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.inst.marmot(['store', 'list', self.user, '--mailbox',
                                  mailbox])
            if r.returncode == 0 and \
                    len([ln for ln in r.stdout.splitlines() if ln]) >= n:
                return
            time.sleep(0.05)
        self.fail('%d messages did not reach %s within %.0f s'
                  % (n, mailbox, timeout))

    def test_1_select_fetch_store_expunge(self):
        for n in range(1, 4):
            self.deliver(message(n))
        self.deliver(MULTIPART, wait_count=4)
        m = self.connect()
        typ, data = m.select('INBOX')
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(data, [b'4'])
        self.assertIn('READ-WRITE', m.untagged_responses)
        self.assertTrue(m.untagged_responses.get('UIDVALIDITY'))
        self.assertIn(b'\\*', m.untagged_responses['PERMANENTFLAGS'][0])

        typ, data = m.fetch('1:4', '(UID FLAGS RFC822.SIZE ENVELOPE)')
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(len(data), 4, data)
        self.assertIn(b'"Message 1"', data[0])
        self.assertIn(b'FLAGS ()', data[0])

        # BODY.PEEK does not set \Seen; the blob is byte-identical.
        typ, data = m.fetch('1', '(BODY.PEEK[])')
        self.assertEqual(data[0][1], message(1).replace(b'\r\n', b'\r\n'))
        typ, data = m.fetch('1', '(FLAGS)')
        self.assertNotIn(b'\\Seen', data[0])
        # BODY[] sets it, and the response carries FLAGS.
        typ, data = m.fetch('1', '(BODY[HEADER.FIELDS (SUBJECT)])')
        self.assertEqual(data[0][1], b'Subject: Message 1\r\n\r\n')
        self.assertIn(b'\\Seen', data[0][0] + data[1])
        typ, data = m.fetch('1', '(BODY.PEEK[TEXT]<5.7>)')
        self.assertEqual(data[0][1], b'of mess', data)
        self.assertIn(b'BODY[TEXT]<5>', data[0][0])

        # Sections of the multipart; BINARY decodes base64.
        typ, data = m.fetch('4', '(BODY.PEEK[1] BODY.PEEK[2.MIME] '
                                 'BINARY.PEEK[2] BINARY.SIZE[2])')
        self.assertEqual(typ, 'OK', data)
        parts = [d for d in data if isinstance(d, tuple)]
        self.assertEqual(parts[0][1], b'first part')
        self.assertEqual(parts[1][1],
                         b'Content-Type: application/octet-stream\r\n'
                         b'Content-Transfer-Encoding: base64\r\n\r\n')
        self.assertEqual(parts[2][1], b'\x00\x01\x02\x03\x04')
        self.assertIn(b'BINARY.SIZE[2] 5', b''.join(
            p if isinstance(p, bytes) else p[0] for p in data))

        # STORE with keywords (labels) and the flags response.
        typ, data = m.store('2', '+FLAGS', '(\\Flagged $Label1 work)')
        self.assertEqual(typ, 'OK', data)
        self.assertIn(b'\\Flagged', data[0])
        self.assertIn(b'$Label1', data[0])
        typ, data = m.fetch('2', '(FLAGS)')
        self.assertIn(b'work', data[0])
        # Labels show in FLAGS after a new SELECT.
        m.select('INBOX')
        self.assertIn(b'$Label1', m.untagged_responses['FLAGS'][0])
        typ, data = m.store('2', '-FLAGS.SILENT', '(work)')
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(data, [None])

        # EXPUNGE of a \Deleted message renumbers.
        m.store('3', '+FLAGS.SILENT', '(\\Deleted)')
        typ, data = m.expunge()
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(data, [b'3'])
        typ, data = m.fetch('3', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
        self.assertEqual(data[0][1], b'Subject: parts\r\n\r\n')

        # Bad input: BAD, and the session goes on.
        for bad in ('5', '0', 'x', '1:*:2'):
            with self.assertRaises(imaplib.IMAP4.error):
                m.fetch(bad, '(FLAGS)')
        with self.assertRaises(imaplib.IMAP4.error):
            m.fetch('1', '(NOSUCHITEM)')
        typ, _ = m.noop()
        self.assertEqual(typ, 'OK')

    def test_2_uid_forms_condstore(self):
        m = self.connect()
        m.select('INBOX')
        typ, data = m.uid('FETCH', '1:*', '(FLAGS)')
        self.assertEqual(typ, 'OK', data)
        uids = [int(re.search(rb'UID (\d+)', d).group(1)) for d in data]
        self.assertEqual(uids, sorted(uids))
        # UID FETCH of UIDs that do not exist is empty, not an error.
        typ, data = m.uid('FETCH', '4000000000:*', '(FLAGS)')
        self.assertEqual(typ, 'OK', data)
        typ, data = m.fetch('1', '(MODSEQ EMAILID THREADID SAVEDATE '
                                 'PREVIEW)')
        self.assertEqual(typ, 'OK', data)
        self.assertRegex(data[0], rb'MODSEQ \(\d+\)')
        self.assertRegex(data[0], rb'EMAILID \(M[^)]+\)')
        modseq = int(re.search(rb'MODSEQ \((\d+)\)', data[0]).group(1))
        # UNCHANGEDSINCE: one below the message's value fails, with
        # MODIFIED naming it (RFC 7162 3.1.3).
        m.untagged_responses.pop('MODIFIED', None)
        typ, data = m._simple_command(
            'STORE', '1', '(UNCHANGEDSINCE %d)' % (modseq - 1),
            '+FLAGS', '(\\Answered)')
        self.assertEqual(typ, 'OK')
        self.assertEqual(m.untagged_responses.pop('MODIFIED', None),
                         [b'1'])
        typ, data = m.fetch('1', '(FLAGS)')
        self.assertNotIn(b'\\Answered', data[0])
        typ, data = m._simple_command(
            'STORE', '1', '(UNCHANGEDSINCE %d)' % modseq, '+FLAGS',
            '(\\Answered)')
        self.assertEqual(typ, 'OK')
        typ, data = m.fetch('1', '(FLAGS)')
        self.assertIn(b'\\Answered', data[0])
        # CHANGEDSINCE gives only what changed after the highest
        # modseq the client had seen.
        typ, data = m.fetch('1:*', '(MODSEQ)')
        top = max(int(re.search(rb'MODSEQ \((\d+)\)', d).group(1))
                  for d in data)
        m.store('2', '+FLAGS.SILENT', '(\\Answered)')
        m.untagged_responses.pop('FETCH', None)
        typ, data = m._simple_command('FETCH', '1:*', '(FLAGS)',
                                      '(CHANGEDSINCE %d)' % top)
        self.assertEqual(typ, 'OK')
        fetched = m.untagged_responses.pop('FETCH', [])
        self.assertEqual(len(fetched), 1, fetched)

    def test_3_idle_hears_delivery_within_1s(self):
        m = self.connect()
        typ, data = m.select('INBOX')
        before = int(data[0])
        tag = m._new_tag().decode()
        m.send(('%s IDLE\r\n' % tag).encode())
        self.assertTrue(m.readline().startswith(b'+'))
        t0 = time.monotonic()
        r = self.inst.marmot(['deliver', self.user], input=message(99).decode())
        self.assertEqual(r.returncode, 0, r.stderr)
        delivered = time.monotonic()
        m.sock.settimeout(5)
        line = m.readline()
        heard = time.monotonic()
        self.assertEqual(line.strip(), b'* %d EXISTS' % (before + 1))
        harness.note('IDLE: EXISTS %.0f ms after the delivery was '
                     'acknowledged (%.0f ms after it started)'
                     % ((heard - delivered) * 1000, (heard - t0) * 1000))
        self.assertLess(heard - delivered, 1.0)
        m.send(b'DONE\r\n')
        line = m.readline()
        self.assertTrue(line.startswith(tag.encode() + b' OK'), line)

    def test_4_two_sessions(self):
        a = self.connect()
        b = self.connect()
        a.select('INBOX')
        typ, data = b.select('INBOX')
        count = int(data[0])
        self.assertGreaterEqual(count, 3)
        # A flags message 1: B hears it at its next command.
        a.store('1', '+FLAGS', '(\\Flagged)')
        typ, _ = b.noop()
        fetches = b.untagged_responses.pop('FETCH', [])
        self.assertTrue(any(b'\\Flagged' in f for f in fetches), fetches)
        # A expunges message 1: during B's FETCH no EXPUNGE is sent and
        # B's sequence numbers do not move (RFC 9051 7.5.1).
        a.store('1', '+FLAGS.SILENT', '(\\Deleted)')
        a.expunge()
        typ, data = b.fetch('1', '(UID)')
        self.assertEqual(typ, 'OK')
        self.assertNotIn('EXPUNGE', b.untagged_responses)
        typ, _ = b.noop()
        self.assertEqual(b.untagged_responses.pop('EXPUNGE', None), [b'1'])
        typ, data = b.fetch('%d' % (count - 1), '(UID)')
        self.assertEqual(typ, 'OK', data)
        with self.assertRaises(imaplib.IMAP4.error):
            b.fetch('%d' % count, '(UID)')

    def test_5_examine_is_readonly(self):
        self.deliver(message(50))
        m = self.connect()
        typ, data = m.select('INBOX', readonly=True)
        self.assertEqual(typ, 'OK')
        typ, data = m.fetch('1', '(BODY[])')
        self.assertEqual(typ, 'OK')
        typ, data = m.store('1', '+FLAGS', '(\\Seen)')
        self.assertEqual(typ, 'NO', data)
        typ, data = m.close()
        self.assertEqual(typ, 'OK')
        with self.assertRaises(imaplib.IMAP4.error):
            m.fetch('1', '(FLAGS)')
        typ, data = m.select('"No such mailbox"')
        self.assertEqual(typ, 'NO', data)

    def test_6_enable_namespace_id_idle_pipelined(self):
        m = self.connect()
        typ, data = m._simple_command('ENABLE', 'IMAP4rev2', 'CONDSTORE')
        self.assertEqual(typ, 'OK')
        self.assertIn(b'IMAP4rev2', m.untagged_responses['ENABLED'][0])
        typ, data = m.namespace()
        self.assertEqual(typ, 'OK')
        self.assertEqual(data, [b'(("" "/")) NIL NIL'])
        typ, data = m.xatom('ID', 'NIL')
        self.assertEqual(typ, 'OK')
        typ, data = m.select('INBOX')
        self.assertEqual(typ, 'OK')
        # rev2 clients get no RECENT, but a LIST of the mailbox.
        self.assertNotIn('RECENT', m.untagged_responses)


    def test_7_large_fetch_in_parts(self):
        # 40 messages of ~64 KiB: the answer (2.6 MB) is produced in
        # parts of 256 KiB as the client reads; every body intact, and
        # a command pipelined behind it is answered after it.
        other = 'big@' + DOMAIN
        password = self.inst.add_user(other)
        bodies = []
        for n in range(40):
            line = ('%02d' % n) * 40 + '\r\n'
            body = line * 800
            data = message(n, subject='big %d' % n, body=body)
            bodies.append(data)
            r = self.inst.marmot(['deliver', other], input=data.decode())
            self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = self.inst.marmot(['store', 'list', other])
            if len(r.stdout.splitlines()) >= 40:
                break
            time.sleep(0.1)
        m = harness.imap_login(self, self.inst, self.ctx, other, password,
                               timeout=30)
        m.select('INBOX')
        typ, data = m.fetch('1:*', '(BODY.PEEK[])')
        self.assertEqual(typ, 'OK')
        got = [d[1] for d in data if isinstance(d, tuple)]
        self.assertEqual(len(got), 40)
        self.assertEqual(got, bodies)
        typ, _ = m.noop()
        self.assertEqual(typ, 'OK')


    def test_8_qresync(self):
        # RFC 7162 3.2: a client that remembers UIDVALIDITY and MODSEQ
        # learns what vanished and what changed since, and another
        # session's expunges reach it as VANISHED, not EXPUNGE.
        other = 'qr@' + DOMAIN
        password = self.inst.add_user(other)
        for n in range(1, 6):
            r = self.inst.marmot(['deliver', other],
                                 input=message(n).decode())
            self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = self.inst.marmot(['store', 'list', other])
            if len(r.stdout.splitlines()) >= 5:
                break
            time.sleep(0.1)

        def login():
            m = harness.imap_login(self, self.inst, self.ctx, other,
                                   password)
            typ, _ = m._simple_command('ENABLE', 'QRESYNC')
            self.assertEqual(typ, 'OK')
            return m

        a = login()
        a.select('INBOX')
        uidvalidity = int(a.untagged_responses['UIDVALIDITY'][-1])
        modseq = int(a.untagged_responses['HIGHESTMODSEQ'][-1])
        b = login()
        b.select('INBOX')
        # Changes while a is away: b expunges UID 2, flags UID 4.
        a.close()
        b.uid('STORE', '2', '+FLAGS.SILENT', '(\\Deleted)')
        typ, data = b.expunge()
        self.assertEqual(typ, 'OK')
        self.assertNotIn('EXPUNGE', b.untagged_responses)
        b.uid('STORE', '4', '+FLAGS.SILENT', '(\\Flagged)')
        for k in ('VANISHED', 'FETCH'):
            a.untagged_responses.pop(k, None)
        typ, data = a._simple_command(
            'SELECT', 'INBOX', '(QRESYNC (%d %d 1:5))'
            % (uidvalidity, modseq))
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(a.untagged_responses.get('VANISHED'),
                         [b'(EARLIER) 2'])
        fetches = a.untagged_responses.get('FETCH', [])
        self.assertTrue(any(b'UID 4 ' in f and b'\\Flagged' in f
                            for f in fetches), fetches)
        # Now a is selected; b expunges UID 3: a hears VANISHED 3.
        b.uid('STORE', '3', '+FLAGS.SILENT', '(\\Deleted)')
        b.expunge()
        a.untagged_responses.pop('VANISHED', None)
        a.noop()
        self.assertEqual(a.untagged_responses.get('VANISHED'), [b'3'])
        self.assertNotIn('EXPUNGE', a.untagged_responses)


    def test_9_authenticate_scram_sha_256(self):
        # RFC 9051 6.2.2 with SASL-IR (RFC 4959): the client-first in the
        # command, the server-first and -final as continuations, the
        # client's empty line, then OK; the session then reads mail.
        from test_sasl import ScramClient, b64d, b64e
        m = harness.imap_connect(self, self.inst, self.ctx)
        self.assertIn('AUTH=SCRAM-SHA-256', m.capabilities)
        sc = ScramClient(self.user)
        tag = m._new_tag().decode()
        m.send(('%s AUTHENTICATE SCRAM-SHA-256 %s\r\n'
                % (tag, b64e(sc.first.encode()))).encode())
        line = m.readline().strip()
        self.assertTrue(line.startswith(b'+ '), line)
        final = sc.final(b64d(line[2:].decode()).decode(), self.password)
        m.send(b64e(final.encode()).encode() + b'\r\n')
        line = m.readline().strip()
        self.assertTrue(line.startswith(b'+ '), line)
        self.assertTrue(sc.verify(b64d(line[2:].decode()).decode()),
                        'server signature does not verify: %r' % line)
        m.send(b'\r\n')
        line = m.readline().strip()
        self.assertTrue(line.startswith(tag.encode() + b' OK'), line)
        m.state = 'AUTH'
        typ, data = m.select('INBOX')
        self.assertEqual(typ, 'OK', data)
        # A wrong password fails like LOGIN's.
        m2 = harness.imap_connect(self, self.inst, self.ctx)
        sc = ScramClient(self.user)
        tag = m2._new_tag().decode()
        m2.send(('%s AUTHENTICATE SCRAM-SHA-256 %s\r\n'
                 % (tag, b64e(sc.first.encode()))).encode())
        line = m2.readline().strip()
        final = sc.final(b64d(line[2:].decode()).decode(),
                         'not the password')
        m2.send(b64e(final.encode()).encode() + b'\r\n')
        line = m2.readline().strip()
        self.assertTrue(line.startswith(tag.encode() + b' NO'), line)


if __name__ == '__main__':
    unittest.main()
