"""The verdict stage and the recipient checks over real SMTP (issue 4,
items 2 and 5): on port 25 from 127.0.0.2,

- a clean message is acknowledged and lands in INBOX, unchanged after
  the trace fields (Return-Path, RFC 5321 4.4, and Received);
- a message holding SpamAssassin's GTUBE string is acknowledged and
  filed into Junk, with "X-Spam: yes" added;
- a message with the EICAR test file as a base64 attachment is refused
  with 550 5.7.1 after the end of data and is not stored (nor is the
  raw EICAR string in a second message);
- quota (RFC 1870 SIZE, RFC 3463 X.2.2): a SIZE larger than the
  account's whole quota gets 552 at RCPT; an account whose store is over
  its quota (it was lowered after a delivery) gets 452 (with or without
  SIZE), while an account with room takes the same message in the same
  transaction;
- the vault's cached store usage follows IMAP: an account filled by
  delivery until RCPT gets 452 takes mail again right after an IMAP
  EXPUNGE (no delivery in between), and an IMAP APPEND that fills an
  account makes the next RCPT 452 (the front's IPC_VAULT_USAGE_STALE);
- a disabled account gets 550, an unknown one 550.

Mailboxes are read back through `marmot export --maildir` (the store,
not the spool). The test strings are spelt out here. VaultIpcTest asks
the vault directly over its socket, as the front does, so the vault's
recipient and sender answers are checked even before the SMTP server
takes mail."""

import base64
import os
import poplib
import smtplib
import socket
import struct
import time

import harness
from harness import DOMAIN
from smtp_util import MailCase, OTHER_SOURCE, REMOTE, strip_trace

ALICE = 'alice@' + DOMAIN
FULL = 'full@' + DOMAIN
TINY = 'tiny@' + DOMAIN
ROOMY = 'roomy@' + DOMAIN
GONE = 'gone@' + DOMAIN
DRAIN = 'drain@' + DOMAIN
FILLED = 'filled@' + DOMAIN
POPPED = 'popped@' + DOMAIN
SENDER = 'sender@' + REMOTE

GTUBE = b'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
EICAR = (b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!'
         b'$H+H*')


def message(case, body, extra_headers=b''):
    return (b'From: <' + SENDER.encode() + b'>\r\n'
            b'To: <' + ALICE.encode() + b'>\r\n'
            b'Subject: verdict ' + case.encode() + b'\r\n'
            b'Message-ID: <' + case.encode() + b'@verdict.test>\r\n'
            b'Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n' + extra_headers +
            b'\r\n' + body)


def eicar_attachment(case):
    b64 = base64.encodebytes(EICAR).replace(b'\n', b'\r\n')
    body = (b'--b1\r\n'
            b'Content-Type: text/plain\r\n\r\n'
            b'Please find the file attached.\r\n'
            b'--b1\r\n'
            b'Content-Type: application/octet-stream; name="eicar.com"\r\n'
            b'Content-Disposition: attachment; filename="eicar.com"\r\n'
            b'Content-Transfer-Encoding: base64\r\n\r\n' + b64 +
            b'--b1--\r\n')
    return message(case, body,
                   b'MIME-Version: 1.0\r\n'
                   b'Content-Type: multipart/mixed; boundary="b1"\r\n')


def dot_stuff(data):
    lines = data.split(b'\r\n')
    return b'\r\n'.join(b'.' + x if x.startswith(b'.') else x for x in lines)


class VerdictTest(MailCase):
    ACCOUNTS = (ALICE, FULL, TINY, ROOMY, GONE, DRAIN, FILLED,
                POPPED)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        mi = cls.mi
        if mi is None or not cls.transactions:
            return
        mi.ok(['user', 'quota', FULL, '1M'])
        mi.ok(['user', 'quota', TINY, '10K'])
        mi.ok(['user', 'quota', ROOMY, '1M'])
        mi.ok(['user', 'quota', DRAIN, '10K'])
        mi.ok(['user', 'quota', FILLED, '10K'])
        mi.ok(['user', 'quota', POPPED, '10K'])
        mi.ok(['user', 'disable', GONE])

    def send(self, rcpts, data, size=None, expect_data=250):
        """One transaction on port 25 from 127.0.0.2. Returns the RCPT
        reply codes (and the end-of-data reply lines, when any RCPT was
        accepted)."""
        c = self.client('smtp', source=OTHER_SOURCE)
        c.greet_ehlo()
        mail = 'MAIL FROM:<%s>' % SENDER
        if size is not None:
            mail += ' SIZE=%d' % size
        c.cmd(mail)
        c.expect(250, 'MAIL')
        codes = []
        for rcpt in rcpts:
            c.cmd('RCPT TO:<%s>' % rcpt)
            code, lines = c.reply()
            codes.append((code, lines))
        end = None
        if any(code == 250 for code, _ in codes):
            c.cmd('DATA')
            c.expect(354, 'DATA')
            # data ends with CRLF: that CRLF starts <CRLF>.<CRLF>.
            assert data.endswith(b'\r\n')
            c.send(dot_stuff(data) + b'.\r\n')
            end = c.expect(expect_data, 'end of data')
        c.cmd('QUIT')
        c.reply()
        return codes, end

    def stored(self, address):
        self.mi.wait_merged([address])
        return self.mi.export(address)

    def find(self, messages, case):
        tag = b'<' + case.encode() + b'@verdict.test>'
        return [(folder, data) for folder, data in messages if tag in data]

    def test_clean_gtube_eicar(self):
        clean = message('clean', b'Nothing to see here.\r\n')
        spam = message('gtube', b'This is spam:\r\n' + GTUBE + b'\r\n')
        virus = eicar_attachment('eicar-b64')
        virus_raw = message('eicar-raw', EICAR + b'\r\n')

        codes, end = self.send([ALICE], clean)
        self.assertEqual(codes[0][0], 250, codes)
        codes, end = self.send([ALICE], spam)
        self.assertEqual(codes[0][0], 250, codes)
        codes, end = self.send([ALICE], virus, expect_data=550)
        self.assertIn('5.7.1', end[0])
        self.assertIn('EICAR', end[0])
        codes, end = self.send([ALICE], virus_raw, expect_data=550)
        self.assertIn('5.7.1', end[0])

        msgs = self.stored(ALICE)
        got = self.find(msgs, 'clean')
        self.assertEqual(len(got), 1, msgs)
        self.assertEqual(got[0][0], 'INBOX')
        trace, rest = strip_trace(got[0][1])
        self.assertEqual(trace[0], b'Return-Path: <' + SENDER.encode() +
                         b'>\r\n')
        self.assertEqual(rest, clean)

        got = self.find(msgs, 'gtube')
        self.assertEqual(len(got), 1, msgs)
        self.assertEqual(got[0][0], 'Junk')
        trace, rest = strip_trace(got[0][1])
        self.assertTrue(rest.startswith(b'X-Spam: yes\r\n'), rest[:200])
        # Port 25's Authentication-Results follows the verdict's field.
        _, after = strip_trace(rest[len(b'X-Spam: yes\r\n'):])
        self.assertEqual(after, spam)

        self.assertEqual(self.find(msgs, 'eicar-b64'), [])
        self.assertEqual(self.find(msgs, 'eicar-raw'), [])
        harness.note('clean in INBOX, GTUBE in Junk, 2 EICAR refused with '
                     '550 5.7.1')

    def test_quota(self):
        big = message('quota-fill',
                      b''.join(b'%076d\r\n' % i for i in range(200)))
        self.assertGreater(len(big), 15 * 1024)
        small = message('quota-small', b'small\r\n')

        # The message alone is larger than TINY's whole quota: 552.
        codes, _ = self.send([TINY], small, size=50000)
        self.assertEqual(codes[0][0], 552, codes)
        self.assertIn('5.2.2', codes[0][1][0])
        # Within it: taken.
        codes, _ = self.send([TINY], small, size=len(small))
        self.assertEqual(codes[0][0], 250, codes)

        # FULL takes a 16 KB message, then its quota is lowered below
        # that (quota is decided at RCPT; the merge never refuses): 452.
        codes, _ = self.send([FULL], big, size=len(big))
        self.assertEqual(codes[0][0], 250, codes)
        self.mi.wait_merged([FULL])
        self.mi.ok(['user', 'quota', FULL, '10K'])
        deadline = time.monotonic() + 30
        while True:
            codes, _ = self.send([FULL], small, size=len(small))
            if codes[0][0] != 250 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(codes[0][0], 452, codes)
        self.assertIn('4.2.2', codes[0][1][0])
        codes, _ = self.send([FULL], small)  # no SIZE: still full
        self.assertEqual(codes[0][0], 452, codes)

        # In one transaction: the full account refused, the one with room
        # takes it.
        codes, end = self.send([FULL, ROOMY], small, size=len(small))
        self.assertEqual([c for c, _ in codes], [452, 250], codes)
        got = self.find(self.stored(ROOMY), 'quota-small')
        self.assertEqual(len(got), 1)
        full = self.find(self.stored(FULL), 'quota-small')
        self.assertEqual(full, [])

    def rcpt(self, rcpt, size):
        """smtplib on port 25 from 127.0.0.2: MAIL with SIZE, RCPT, QUIT
        (no data). Returns RCPT's (code, text)."""
        s = smtplib.SMTP('127.0.0.1', self.inst.ports['smtp'], timeout=20,
                         source_address=(OTHER_SOURCE, 0))
        try:
            s.ehlo('client.test.example')
            code, text = s.mail(SENDER, ['SIZE=%d' % size])
            self.assertEqual(code, 250, text)
            return s.rcpt(rcpt)
        finally:
            s.quit()

    def imap(self, user):
        return harness.imap_login(self, self.inst, self.ctx, user,
                                  self.mi.passwords[user])

    def fill_by_delivery(self, rcpt, size):
        """Delivers 4 KB messages to rcpt (10K quota) until RCPT with
        SIZE=size says 452 (RFC 3463 4.2.2), the mail merged into the
        store (the vault's cached usage now comes from the merge).
        Returns the number of messages delivered."""
        body = b''.join(b'%076d\r\n' % i for i in range(50))
        codes = []
        for i in range(6):
            code, text = self.rcpt(rcpt, size)
            codes.append(code)
            if code != 250:
                break
            data = message('fill-%d' % i, body)
            got, _ = self.send([rcpt], data, size=len(data))
            self.assertEqual(got[0][0], 250, got)
            self.mi.wait_merged([rcpt])
        self.assertEqual(code, 452, (codes, text))
        self.assertIn(b'4.2.2', text)
        self.mi.wait_merged([rcpt])
        self.assertEqual(self.rcpt(rcpt, size)[0], 452)
        return len(codes) - 1

    def test_quota_follows_imap_expunge(self):
        size = 4000
        delivered = self.fill_by_delivery(DRAIN, size)
        # IMAP expunges everything; the very next RCPT has room.
        m = self.imap(DRAIN)
        typ, data = m.select('INBOX')
        self.assertEqual(typ, 'OK', data)
        self.assertGreaterEqual(int(data[0]), 2)
        typ, data = m.store('1:*', '+FLAGS.SILENT', '(\\Deleted)')
        self.assertEqual(typ, 'OK', data)
        typ, data = m.expunge()
        self.assertEqual(typ, 'OK', data)
        code, text = self.rcpt(DRAIN, size)
        self.assertEqual(code, 250, text)
        harness.note('452 after %d deliveries, 250 right after EXPUNGE'
                     % delivered)

    def test_quota_follows_pop3_dele(self):
        # The same through POP3: DELE, then QUIT's expunge (RFC 1939 6).
        size = 4000
        delivered = self.fill_by_delivery(POPPED, size)
        p = poplib.POP3_SSL('127.0.0.1', self.inst.ports['pop3s'],
                            context=self.ctx, timeout=20)
        self.addCleanup(p.close)
        p.user(POPPED)
        p.pass_(self.mi.passwords[POPPED])
        self.assertEqual(p.stat()[0], delivered)
        for i in range(delivered):
            p.dele(i + 1)
        self.assertTrue(p.quit().startswith(b'+OK'))
        code, text = self.rcpt(POPPED, size)
        self.assertEqual(code, 250, text)

    def test_quota_follows_imap_append(self):
        # The converse: FILLED (10K) takes a 4000-byte RCPT (the vault
        # loads and caches its usage: empty); an IMAP APPEND of 8000
        # bytes fills it and the very next RCPT is 452.
        size = 4000
        code, text = self.rcpt(FILLED, size)
        self.assertEqual(code, 250, text)
        m = self.imap(FILLED)
        data = message('filled', b''.join(b'%076d\r\n' % i
                                          for i in range(105)))
        self.assertGreater(len(data), 8000)
        typ, resp = m.append('INBOX', None, None, data)
        self.assertEqual(typ, 'OK', resp)
        code, text = self.rcpt(FILLED, size)
        self.assertEqual(code, 452, text)
        self.assertIn(b'4.2.2', text)
        # And an EXPUNGE of it gives the room back at once.
        m.select('INBOX')
        m.store('1', '+FLAGS.SILENT', '(\\Deleted)')
        typ, resp = m.expunge()
        self.assertEqual(typ, 'OK', resp)
        code, text = self.rcpt(FILLED, size)
        self.assertEqual(code, 250, text)

    def test_disabled_and_unknown(self):
        small = message('disabled', b'hello\r\n')
        codes, _ = self.send([GONE, 'nobody@' + DOMAIN], small)
        self.assertEqual(codes[0][0], 550, codes)
        self.assertEqual(codes[1][0], 550, codes)
        self.assertIn('5.1.1', codes[1][1][0])


class VaultIpcTest(MailCase):
    """The vault's side alone, over DATA/run/vault.sock as the front
    speaks it (src/lib/ipc.h): IPC_VAULT_RCPT and IPC_VAULT_SENDER. Runs
    before the SMTP server takes mail, so the vault wiring is checked on
    its own."""
    ACCOUNTS = (ALICE, GONE)
    ALIASES = (('team@' + DOMAIN, (ALICE, 'far@' + REMOTE)),)
    NEEDS_TRANSACTIONS = False

    VAULT_RCPT, VAULT_SENDER = 110, 111
    RCPT_REPLY, SENDER_REPLY = 210, 211

    def setUp(self):
        super().setUp()
        self.mi.ok(['user', 'disable', GONE])
        # The vault may still be starting when the front's ports answer.
        path = os.path.join(self.inst.data, 'run', 'vault.sock')
        deadline = time.monotonic() + 30
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(15)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.addCleanup(self.sock.close)
        self.next_id = 1

    def request(self, type_, payload):
        rid = self.next_id
        self.next_id += 1
        self.sock.sendall(struct.pack('<IHHI', len(payload), type_, 0, rid)
                          + payload)
        head = b''
        while len(head) < 12:
            chunk = self.sock.recv(12 - len(head))
            self.assertTrue(chunk, 'vault closed the connection')
            head += chunk
        length, rtype, flags, reply_id = struct.unpack('<IHHI', head)
        body = b''
        while len(body) < length:
            chunk = self.sock.recv(length - len(body))
            self.assertTrue(chunk, 'vault closed the connection')
            body += chunk
        self.assertEqual((flags, reply_id), (0, rid))
        return rtype, body

    @staticmethod
    def s(text):
        b = text.encode()
        return struct.pack('<I', len(b)) + b

    def rcpt(self, address, size=0):
        rtype, body = self.request(self.VAULT_RCPT,
                                   self.s(address) + struct.pack('<Q', size))
        self.assertEqual(rtype, self.RCPT_REPLY)
        pos = 0

        def u32():
            nonlocal pos
            v = struct.unpack_from('<I', body, pos)[0]
            pos += 4
            return v

        def blob():
            nonlocal pos
            n = u32()
            v = body[pos:pos + n]
            pos += n
            return v

        result, permanent = u32(), u32()
        address = blob().decode()
        locals_ = []
        for _ in range(u32()):
            account = struct.unpack_from('<Q', body, pos)[0]
            pos += 8
            key = blob()
            self.assertEqual(len(key), 32)
            locals_.append(account)
        remotes = [blob().decode() for _ in range(u32())]
        self.assertEqual(pos, len(body))
        return result, permanent, address, locals_, remotes

    def test_rcpt(self):
        alice = self.mi.ids[ALICE]
        self.assertEqual(self.rcpt('Alice@' + DOMAIN.upper(), 100),
                         (0, 0, ALICE, [alice], []))
        self.assertEqual(self.rcpt('alice+tag@' + DOMAIN)[3], [alice])
        self.assertEqual(self.rcpt('team@' + DOMAIN),
                         (0, 0, 'team@' + DOMAIN, [alice],
                          ['far@' + REMOTE]))
        self.assertEqual(self.rcpt('nobody@' + DOMAIN)[0], 1)  # UNKNOWN
        self.assertEqual(self.rcpt('x@' + REMOTE)[0], 2)  # NOT_LOCAL
        self.assertEqual(self.rcpt(GONE)[0], 3)  # DISABLED

    def test_sender(self):
        alice = self.mi.ids[ALICE]
        for address, owned in ((ALICE, 1), ('alice+x@' + DOMAIN, 1),
                               ('team@' + DOMAIN, 1), (GONE, 0),
                               ('alice@' + REMOTE, 0)):
            rtype, body = self.request(
                self.VAULT_SENDER,
                struct.pack('<Q', alice) + self.s(address))
            self.assertEqual(rtype, self.SENDER_REPLY)
            self.assertEqual(struct.unpack('<I', body)[0], owned, address)
