"""POP3 maildrop (RFC 1939, RFC 2449, RFC 2595, RFC 5034) on the account
store, with Python's poplib on 110 after STLS and on 995, raw sessions for
what poplib lacks (AUTH PLAIN, SCRAM-SHA-256 with the client of
test_sasl.py, pipelining, bad input), and the real clients fetchmail and
curl.

Mail is delivered with `marmot deliver` and waited for with `marmot store
count`; RETR and TOP must give back the delivered bytes (dot-stuffing
undone by the client), LIST the stored sizes, UIDL ids that are unique
and the same in every session. DELE+QUIT removes (durably before +OK),
DELE+RSET and DELE+drop keep; a second session of the account gets
-ERR [IN-USE] while the first is in TRANSACTION."""

import os
import poplib
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import DOMAIN, Instance, LineClient
from test_sasl import ScramClient, b64d, b64e


def message(n, extra=''):
    """A CRLF message numbered n; lines starting with '.' test the
    dot-stuffing."""
    return ('From: Sender <sender@example.net>\r\n'
            'To: someone@%s\r\n'
            'Subject: pop3 test message %d\r\n'
            'Message-ID: <%d.%s@example.net>\r\n'
            'Date: Mon, 2 Jun 2025 10:00:00 +0000\r\n'
            '\r\n'
            'Line one of message %d.\r\n'
            '.a line starting with a dot\r\n'
            '.\r\n'
            '..two dots\r\n'
            '%s'
            'Last line.\r\n' % (DOMAIN, n, n, os.urandom(4).hex(), n, extra))


class Pop3Case(unittest.TestCase):
    inst = None

    @classmethod
    def setUpClass(cls):
        cls.inst = Instance()
        try:
            cls.inst.start()
            cls.inst.wait_all_ports()
        except BaseException:
            cls.inst.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.inst.cleanup()

    def setUp(self):
        self.ctx = self.inst.ssl_context()
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)

    def new_user(self, tag):
        user = '%s%s@%s' % (tag, os.urandom(3).hex(), DOMAIN)
        return user, self.inst.add_user(user)

    def inbox_count(self, user):
        r = self.inst.marmot(['store', 'count', user])
        self.assertEqual(r.returncode, 0, 'store count: %s%s'
                         % (r.stdout, r.stderr))
        for line in r.stdout.splitlines():
            name, _, num = line.rpartition('\t')
            if name == 'INBOX':
                return int(num)
        return 0

    def deliver(self, user, texts, timeout=15.0):
        """Delivers texts and waits until the merge shows them in INBOX."""
        before = self.inbox_count(user)
        for text in texts:
            r = self.inst.marmot(['deliver', user], input=text)
            self.assertEqual(r.returncode, 0, 'deliver: %s%s'
                             % (r.stdout, r.stderr))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.inbox_count(user) == before + len(texts):
                return
            time.sleep(0.1)
        self.fail('%s: %d messages not merged into INBOX within %.0f s'
                  % (user, len(texts), timeout))

    def pop(self, user, password, port='pop3s'):
        """A poplib session in TRANSACTION state: STLS on 110, implicit
        TLS on 995."""
        if port == 'pop3s':
            p = poplib.POP3_SSL('127.0.0.1', self.inst.ports['pop3s'],
                                context=self.ctx, timeout=20)
        else:
            p = poplib.POP3('127.0.0.1', self.inst.ports['pop3'],
                            timeout=20)
            p.stls(context=self.ctx)
        self.addCleanup(p.close)
        p.user(user)
        reply = p.pass_(password)
        self.assertTrue(reply.startswith(b'+OK'), reply)
        return p

    def pop_retry(self, user, password, seconds=10.0):
        """Logs in, retrying while an earlier dropped session still holds
        the lock (the server notices the drop asynchronously)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                return self.pop(user, password)
            except poplib.error_proto as e:
                if b'[IN-USE]' not in e.args[0] or \
                        time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def raw(self, port='pop3s'):
        c = LineClient(self.inst.ports[port],
                       tls_context=self.ctx if port == 'pop3s' else None,
                       timeout=20)
        self.addCleanup(c.close)
        greeting = c.read_line()
        self.assertTrue(greeting.startswith('+OK'), greeting)
        return c

    def raw_login(self, user, password):
        """A raw session after AUTH PLAIN on 995, retrying (bounded) while
        a session the test just dropped still holds the lock."""
        deadline = time.monotonic() + 10
        while True:
            c = self.raw()
            c.cmd('AUTH PLAIN ' + harness.auth_plain(user, password))
            reply = c.read_line()
            if '[IN-USE]' not in reply or time.monotonic() > deadline:
                break
            c.close()
            time.sleep(0.1)
        self.assertTrue(reply.startswith('+OK'), reply)
        return c

    def multiline(self, c, max_lines=10000):
        lines = []
        for _ in range(max_lines):
            line = c.read_line()
            if line == '.':
                return lines
            lines.append(line)
        self.fail('no terminating "." in %d lines' % max_lines)

    def capa(self, c):
        c.cmd('CAPA')
        first = c.read_line()
        self.assertTrue(first.startswith('+OK'), first)
        return [line.upper() for line in self.multiline(c, 100)]


class Pop3MaildropTest(Pop3Case):
    def check_maildrop(self, p, texts):
        count, size = p.stat()
        sizes = [len(t.encode()) for t in texts]
        self.assertEqual((count, size), (len(texts), sum(sizes)),
                         'STAT: expected %d messages of %d octets'
                         % (len(texts), sum(sizes)))
        reply, listing, _ = p.list()
        self.assertTrue(reply.startswith(b'+OK'), reply)
        self.assertEqual(listing, [b'%d %d' % (i + 1, s)
                                   for i, s in enumerate(sizes)])
        for i, text in enumerate(texts):
            self.assertEqual(p.list(i + 1), b'+OK %d %d' % (i + 1, sizes[i]))
            reply, lines, octets = p.retr(i + 1)
            self.assertTrue(reply.startswith(b'+OK'), reply)
            # poplib undoes the dot-stuffing and strips the CRLFs.
            self.assertEqual(b'\r\n'.join(lines) + b'\r\n', text.encode(),
                             'RETR %d: not byte-identical' % (i + 1))
            header, _, body = text.encode().partition(b'\r\n\r\n')
            for n in (0, 2):
                reply, lines, _ = p.top(i + 1, n)
                want = header.split(b'\r\n') + [b''] + \
                    body.split(b'\r\n')[:n]
                self.assertEqual(lines, want, 'TOP %d %d' % (i + 1, n))
        reply, uidls, _ = p.uidl()
        ids = [u.split()[1] for u in uidls]
        self.assertEqual([u.split()[0] for u in uidls],
                         [b'%d' % (i + 1) for i in range(len(texts))])
        self.assertEqual(len(set(ids)), len(ids), 'UIDL not unique: %r'
                         % ids)
        for i, uid in enumerate(ids):
            # RFC 1939 7: 1-70 characters in 0x21-0x7E.
            self.assertRegex(uid, rb'^[\x21-\x7e]{1,70}$')
            self.assertEqual(p.uidl(i + 1), b'+OK %d %s' % (i + 1, uid))
        return ids

    def test_retr_list_uidl_top(self):
        # Message 2 (~620 KB) leaves in several 256 KiB parts.
        user, password = self.new_user('drop')
        big = ''.join('%05d %s\r\n' % (i, 'x' * 70) for i in range(8000))
        texts = [message(1), message(2, big), message(3, '.\r\n' * 5)]
        self.deliver(user, texts)
        for port in ('pop3', 'pop3s'):
            with self.subTest(port=port):
                p = self.pop(user, password, port)
                self.check_maildrop(p, texts)
                self.assertTrue(p.quit().startswith(b'+OK'))

    def test_bare_lf_message(self):
        # `marmot deliver` stores Unix line ends as CRLF (RFC 5322 2.1),
        # so the size STAT and LIST give is what RETR sends (RFC 1939 5).
        user, password = self.new_user('lf')
        text = 'Subject: lf\n\nline 1\n.dot\nno newline at the end'
        self.deliver(user, [text])
        p = self.pop(user, password)
        self.assertEqual(p.stat(), (1, len(text.replace('\n', '\r\n'))))
        _, lines, _ = p.retr(1)
        self.assertEqual(lines, [b'Subject: lf', b'', b'line 1', b'.dot',
                                 b'no newline at the end'])
        p.quit()

    def test_many_messages(self):
        # More messages than one listing chunk (front-pop3.c reads 1000
        # sizes per store call), delivered as one mbox.
        user, password = self.new_user('many')
        n = 1100
        mbox = ''.join('From sender@example.net Mon Jun  2 10:00:00 2025\n'
                       'Subject: many %d\n\nbody %d\n\n' % (i, i)
                       for i in range(1, n + 1))
        r = self.inst.marmot(['deliver', user, '--mbox', '-'], input=mbox,
                             timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        deadline = time.monotonic() + 60
        while self.inbox_count(user) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.inbox_count(user), n)
        p = self.pop(user, password)
        self.assertEqual(p.stat()[0], n)
        listing = p.list()[1]
        self.assertEqual(len(listing), n)
        self.assertEqual(len(set(u.split()[1] for u in p.uidl()[1])), n)
        _, lines, _ = p.retr(1050)
        self.assertIn(b'Subject: many 1050', lines)
        # The mbox's LF line ends are stored (and counted) as CRLF.
        self.assertEqual(b'%d' % len(b'\r\n'.join(lines[:4]) + b'\r\n'),
                         listing[1049].split()[1])
        p.quit()

    def test_empty_maildrop(self):
        user, password = self.new_user('empty')
        p = self.pop(user, password, 'pop3')
        self.assertEqual(p.stat(), (0, 0))
        self.assertEqual(p.list()[1], [])
        self.assertEqual(p.uidl()[1], [])
        with self.assertRaises(poplib.error_proto):
            p.retr(1)
        self.assertTrue(p.quit().startswith(b'+OK'))

    def test_dele_quit_removes(self):
        user, password = self.new_user('dele')
        texts = [message(1), message(2), message(3)]
        self.deliver(user, texts)
        p = self.pop(user, password)
        ids = [u.split()[1] for u in p.uidl()[1]]
        self.assertTrue(p.dele(2).startswith(b'+OK'))
        self.assertEqual(p.stat(), (2, len(texts[0].encode()) +
                                    len(texts[2].encode())))
        # RFC 1939 5: a deleted message may not be referred to.
        for call in (lambda: p.retr(2), lambda: p.dele(2),
                     lambda: p.list(2), lambda: p.top(2, 0),
                     lambda: p.uidl(2)):
            with self.assertRaises(poplib.error_proto):
                call()
        self.assertEqual([x.split()[0] for x in p.list()[1]], [b'1', b'3'])
        self.assertTrue(p.quit().startswith(b'+OK'))
        # Durable before +OK: the store shows it at once.
        self.assertEqual(self.inbox_count(user), 2)
        p = self.pop(user, password, 'pop3')
        self.assertEqual([u.split()[1] for u in p.uidl()[1]],
                         [ids[0], ids[2]])
        _, lines, _ = p.retr(2)
        self.assertEqual(b'\r\n'.join(lines) + b'\r\n', texts[2].encode())
        p.quit()

    def test_dele_rset_keeps(self):
        user, password = self.new_user('rset')
        texts = [message(1), message(2)]
        self.deliver(user, texts)
        p = self.pop(user, password)
        p.dele(1)
        p.dele(2)
        self.assertEqual(p.stat(), (0, 0))
        self.assertTrue(p.rset().startswith(b'+OK'))
        self.assertEqual(p.stat()[0], 2)
        _, lines, _ = p.retr(1)
        self.assertEqual(b'\r\n'.join(lines) + b'\r\n', texts[0].encode())
        p.quit()
        self.assertEqual(self.inbox_count(user), 2)

    def test_drop_without_quit_keeps(self):
        user, password = self.new_user('drop')
        self.deliver(user, [message(1), message(2)])
        p = self.pop(user, password)
        p.dele(1)
        p.dele(2)
        p.sock.shutdown(socket.SHUT_RDWR)
        p.close()
        p = self.pop_retry(user, password)
        self.assertEqual(p.stat()[0], 2, 'a session that ended without '
                         'QUIT must not remove its DELE\'d messages')
        p.quit()
        self.assertEqual(self.inbox_count(user), 2)

    def test_uidl_stable_and_snapshot(self):
        user, password = self.new_user('uidl')
        self.deliver(user, [message(1), message(2)])
        p = self.pop(user, password)
        first = p.uidl()[1]
        p.quit()
        p = self.pop(user, password, 'pop3')
        self.assertEqual(p.uidl()[1], first, 'UIDL changed between '
                         'sessions')
        # Mail arriving during a session shows in the next one only.
        self.deliver(user, [message(3)])
        self.assertEqual(p.stat()[0], 2)
        self.assertEqual(p.uidl()[1], first)
        p.quit()
        p = self.pop(user, password)
        now = p.uidl()[1]
        self.assertEqual(now[:2], first)
        self.assertEqual(len(now), 3)
        self.assertNotIn(now[2].split()[1], [u.split()[1] for u in first])
        p.quit()

    def test_in_use(self):
        user, password = self.new_user('lock')
        self.deliver(user, [message(1)])
        p = self.pop(user, password)
        for port in ('pop3', 'pop3s'):
            with self.subTest(port=port):
                if port == 'pop3s':
                    q = poplib.POP3_SSL('127.0.0.1', self.inst.ports[port],
                                        context=self.ctx, timeout=20)
                else:
                    q = poplib.POP3('127.0.0.1', self.inst.ports[port],
                                    timeout=20)
                    q.stls(context=self.ctx)
                self.addCleanup(q.close)
                q.user(user)
                with self.assertRaises(poplib.error_proto) as cm:
                    q.pass_(password)
                self.assertTrue(cm.exception.args[0].startswith(
                    b'-ERR [IN-USE]'), cm.exception)
                # Still in AUTHORIZATION: no maildrop commands.
                with self.assertRaises(poplib.error_proto):
                    q.stat()
                self.assertTrue(q.quit().startswith(b'+OK'))
        # The first session is unaffected; after its QUIT the lock is free.
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        p = self.pop(user, password)
        self.assertEqual(p.stat()[0], 1)
        p.quit()

    def test_imap_sees_pop3_expunge(self):
        # IMAP does not take the POP3 lock; a POP3 QUIT's expunge reaches
        # an IMAP session of the same account like any other change.
        user, password = self.new_user('both')
        self.deliver(user, [message(1), message(2)])
        imap = harness.imap_login(self, self.inst, self.ctx, user, password)
        typ, data = imap.select('INBOX')
        self.assertEqual((typ, data), ('OK', [b'2']))
        p = self.pop(user, password)
        self.assertEqual(p.stat()[0], 2)
        p.dele(1)
        self.assertTrue(p.quit().startswith(b'+OK'))
        deadline = time.monotonic() + 10
        expunged = None
        while time.monotonic() < deadline and not expunged:
            imap.noop()
            expunged = imap.response('EXPUNGE')[1]
            if expunged == [None]:
                expunged = None
            time.sleep(0.1)
        self.assertEqual(expunged, [b'1'], 'IMAP saw no EXPUNGE')
        imap.logout()

    def test_zero_access_account(self):
        user = 'zpop%s@%s' % (os.urandom(3).hex(), DOMAIN)
        password = harness.random_password()
        r = self.inst.marmot(['user', 'add', user, '--zero-access',
                              '--password-stdin'], input=password + '\n')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        text = message(1)
        r = self.inst.marmot(['deliver', user], input=text)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The login unlocks the keys; the vault then merges the spool,
        # so the message shows in a session after that.
        deadline = time.monotonic() + 15
        while True:
            p = self.pop(user, password)
            if p.stat()[0] == 1 or time.monotonic() > deadline:
                break
            p.quit()
            time.sleep(0.2)
        self.assertEqual(p.stat()[0], 1)
        _, lines, _ = p.retr(1)
        self.assertEqual(b'\r\n'.join(lines) + b'\r\n', text.encode())
        p.quit()


class Pop3ProtocolTest(Pop3Case):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user = 'proto@' + DOMAIN
        cls.password = cls.inst.add_user(cls.user)

    def test_capa_and_stls_required(self):
        c = self.raw('pop3')
        caps = self.capa(c)
        for cap in ('STLS', 'TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE',
                    'PIPELINING'):
            self.assertIn(cap, caps)
        self.assertTrue(any(x.startswith('IMPLEMENTATION') for x in caps))
        # RFC 2595 4: no login in clear text, and none offered.
        self.assertNotIn('USER', caps)
        self.assertFalse(any(x.startswith('SASL') for x in caps), caps)
        for cmd in ('USER ' + self.user, 'AUTH',
                    'AUTH PLAIN ' + harness.auth_plain(self.user,
                                                       self.password)):
            c.cmd(cmd)
            reply = c.read_line()
            self.assertTrue(reply.startswith('-ERR'), '%s before STLS: %r'
                            % (cmd.split()[0], reply))
        c.cmd('STLS')
        self.assertTrue(c.read_line().startswith('+OK'))
        c.starttls(self.ctx)
        caps = self.capa(c)
        self.assertIn('USER', caps)
        self.assertNotIn('STLS', caps)
        sasl = [x for x in caps if x.startswith('SASL ')]
        self.assertEqual(len(sasl), 1, caps)
        for mech in ('PLAIN', 'SCRAM-SHA-256'):
            self.assertIn(mech, sasl[0].split())
        c.cmd('AUTH')
        self.assertTrue(c.read_line().startswith('+OK'))
        mechs = self.multiline(c, 20)
        for mech in ('PLAIN', 'SCRAM-SHA-256'):
            self.assertIn(mech, mechs)
        c.cmd('USER ' + self.user)
        self.assertTrue(c.read_line().startswith('+OK'))
        c.cmd('PASS ' + self.password)
        self.assertTrue(c.read_line().startswith('+OK'))
        caps = self.capa(c)
        self.assertIn('TOP', caps)
        self.assertNotIn('USER', caps)
        self.assertNotIn('STLS', caps)
        c.cmd('QUIT')
        self.assertTrue(c.read_line().startswith('+OK'))

    def test_auth_plain(self):
        # With an initial response, and after an empty challenge.
        c = self.raw()
        c.cmd('AUTH PLAIN ' + harness.auth_plain(self.user, self.password))
        reply = c.read_line()
        self.assertTrue(reply.startswith('+OK'), reply)
        c.cmd('STAT')
        self.assertTrue(c.read_line().startswith('+OK'))
        c.cmd('QUIT')
        self.assertTrue(c.read_line().startswith('+OK'))
        c = self.raw()
        c.cmd('AUTH PLAIN')
        self.assertEqual(c.read_line(), '+ ')
        c.cmd(harness.auth_plain(self.user, self.password))
        reply = c.read_line()
        self.assertTrue(reply.startswith('+OK'), reply)
        c.cmd('QUIT')
        c.read_line()

    def test_auth_failures(self):
        c = self.raw()
        c.cmd('AUTH PLAIN ' + harness.auth_plain(self.user, 'wrong-pw'))
        reply = c.read_line()
        self.assertTrue(reply.startswith('-ERR [AUTH]'), reply)
        c.cmd('AUTH PLAIN')
        self.assertEqual(c.read_line(), '+ ')
        c.cmd('*')  # RFC 5034 4: cancel
        self.assertTrue(c.read_line().startswith('-ERR'))
        c.cmd('AUTH PLAIN !!!notbase64')
        self.assertTrue(c.read_line().startswith('-ERR'))
        c.cmd('AUTH X-UNKNOWN')
        self.assertTrue(c.read_line().startswith('-ERR'))
        c.cmd('PASS x')
        self.assertTrue(c.read_line().startswith('-ERR'))
        # Still usable afterwards.
        c.cmd('USER ' + self.user)
        c.read_line()
        c.cmd('PASS ' + self.password)
        reply = c.read_line()
        self.assertTrue(reply.startswith('+OK'), reply)
        c.cmd('QUIT')
        c.read_line()

    def scram(self, c, user, password):
        client = ScramClient(user)
        c.cmd('AUTH SCRAM-SHA-256 ' + b64e(client.first))
        line = c.read_line()
        self.assertTrue(line.startswith('+ '), line)
        c.cmd(b64e(client.final(b64d(line[2:]).decode(), password)))
        return client, c.read_line()

    def test_auth_scram(self):
        user, password = self.new_user('scram')
        text = message(1)
        self.deliver(user, [text])
        c = self.raw()
        client, line = self.scram(c, user, password)
        # RFC 5034 4: server-final-message in a challenge, answered "".
        self.assertTrue(line.startswith('+ '), line)
        self.assertTrue(client.verify(b64d(line[2:]).decode()),
                        'the server signature is wrong')
        c.cmd('')
        reply = c.read_line()
        self.assertTrue(reply.startswith('+OK'), reply)
        c.cmd('RETR 1')
        self.assertTrue(c.read_line().startswith('+OK'))
        lines = self.multiline(c)
        self.assertEqual('\r\n'.join(l[1:] if l.startswith('.') else l
                                     for l in lines) + '\r\n', text)
        c.cmd('QUIT')
        self.assertTrue(c.read_line().startswith('+OK'))
        # A wrong password fails with [AUTH].
        c = self.raw()
        _, line = self.scram(c, user, 'not-the-password')
        self.assertTrue(line.startswith('-ERR [AUTH]'), line)

    def test_pipelining(self):
        user, password = self.new_user('pipe')
        self.deliver(user, [message(1), message(2)])
        c = self.raw()
        c.send('USER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nUIDL 2\r\nTOP 1 0\r\n'
               'NOOP\r\nDELE 1\r\nRSET\r\nQUIT\r\n' % (user, password))
        self.assertTrue(c.read_line().startswith('+OK'))  # USER
        self.assertTrue(c.read_line().startswith('+OK'))  # PASS
        self.assertRegex(c.read_line(), r'^\+OK 2 \d+$')
        self.assertTrue(c.read_line().startswith('+OK'))
        self.assertEqual(len(self.multiline(c)), 2)
        self.assertRegex(c.read_line(), r'^\+OK 2 \S+$')
        self.assertTrue(c.read_line().startswith('+OK'))
        self.assertEqual(self.multiline(c)[-1], '')
        for cmd in ('NOOP', 'DELE', 'RSET', 'QUIT'):
            reply = c.read_line()
            self.assertTrue(reply.startswith('+OK'), '%s: %r'
                            % (cmd, reply))
        self.assertEqual(self.inbox_count(user), 2)

    def test_bad_commands(self):
        user, password = self.new_user('bad')
        self.deliver(user, [message(1)])
        c = self.raw()
        for cmd in ('STAT', 'RETR 1', 'FOO'):
            c.cmd(cmd)
            reply = c.read_line()
            self.assertTrue(reply.startswith('-ERR'), 'before login %s: %r'
                            % (cmd, reply))
        c.close()
        bad = ('RETR', 'RETR x', 'RETR 0', 'RETR 2', 'RETR -1',
               'RETR 99999999999999999999', 'TOP 1', 'TOP 1 x', 'LIST 1 2',
               'DELE 1', 'DELE 1', 'USER x')
        # Fewer than 10 errors per connection: each keeps working.
        for i in range(0, len(bad), 6):
            c = self.raw_login(user, password)
            for cmd in bad[i:i + 6]:
                c.cmd(cmd)
                reply = c.read_line()
                if cmd == 'DELE 1' and reply.startswith('+OK'):
                    continue  # the first DELE 1 is fine
                self.assertTrue(reply.startswith('-ERR'), '%s: %r'
                                % (cmd, reply))
            c.cmd('RSET')
            self.assertTrue(c.read_line().startswith('+OK'))
            c.cmd('STAT')
            self.assertEqual(c.read_line(), '+OK 1 %d' % len(message(1)))
            c.close()
        # Too many errors close the connection, without an UPDATE.
        c = self.raw_login(user, password)
        c.cmd('DELE 1')
        self.assertTrue(c.read_line().startswith('+OK'))
        for _ in range(10):
            c.cmd('BOGUS')
        lines = []
        try:
            for _ in range(20):
                lines.append(c.read_line())
        except (EOFError, OSError):
            pass
        self.assertTrue(lines and lines[-1].startswith('-ERR'), lines)
        self.assertLess(len(lines), 20, 'no close after too many errors')
        c = self.pop_retry(user, password)
        self.assertEqual(c.stat()[0], 1)
        c.quit()

    def test_unread_output_is_bounded(self):
        # 200 pipelined RETRs of a 1 MB message from a client that reads
        # nothing: the server holds the commands once about 1 MiB of
        # output waits (front-pop3.c POP3_OUTPUT_HIGH) instead of queueing
        # 200 MB, and answers every one once the client reads.
        user, password = self.new_user('flood')
        line = 'x' * 998 + '\r\n'
        text = 'Subject: flood\r\n\r\n' + line * 1000
        self.deliver(user, [text])
        c = self.raw_login(user, password)
        front = self.inst.role_pid('front')

        def rss_kib():
            with open('/proc/%d/status' % front) as f:
                for row in f:
                    if row.startswith('VmRSS:'):
                        return int(row.split()[1])
            return 0

        before = rss_kib()
        n = 200
        c.send('RETR 1\r\n' * n + 'QUIT\r\n')
        time.sleep(3)
        grown = rss_kib() - before
        harness.note('front RSS grew %d KiB with %d RETRs unread'
                     % (grown, n))
        self.assertLess(grown, 100 * 1024, 'the front queued the output of '
                        'unread RETRs (RSS +%d KiB)' % grown)
        # Now read all of it: every response complete, then QUIT's.
        end = b'\r\n.\r\n'
        data, seen, tail = c.buf, 0, b''
        c.buf = b''
        deadline = time.monotonic() + 120
        while seen < n and time.monotonic() < deadline:
            chunk = tail + data
            seen += chunk.count(end)
            tail = chunk[-(len(end) - 1):]
            if seen < n:
                data = c.sock.recv(1 << 20)
                if not data:
                    break
        self.assertEqual(seen, n, 'only %d of %d RETR responses' % (seen, n))
        rest = chunk.rpartition(end)[2] + c.sock.recv(4096)
        self.assertIn(b'+OK', rest)

    def test_random_commands(self):
        # 400 commands drawn from the command set with good and bad
        # arguments, over sessions that end by drop or by the error limit:
        # every reply is +OK or -ERR with the right shape, and since no
        # session QUITs, nothing is removed.
        import random
        user, password = self.new_user('rand')
        self.deliver(user, [message(1), message(2), message(3)])
        rng = random.Random(1939)
        verbs = ('STAT', 'LIST', 'UIDL', 'RETR', 'TOP', 'DELE', 'RSET',
                 'NOOP', 'CAPA', 'XTND', 'USER', 'PASS', 'AUTH', 'STLS',
                 'APOP', 'list', 'Retr')
        args = ('', '0', '1', '2', '3', '4', '-1', 'x', '1 0', '2 3',
                '3 1000', '99999999999', '1 2 3', '%s', '\x7f', 'a' * 40)
        c, sent = None, 0
        while sent < 400:
            if c is None:
                c = self.raw_login(user, password)
            verb = rng.choice(verbs)
            arg = rng.choice(args)
            cmd = verb + (' ' + arg if arg else '')
            c.cmd(cmd)
            sent += 1
            try:
                reply = c.read_line()
            except (EOFError, OSError):
                c.close()
                c = None
                continue
            self.assertTrue(reply.startswith(('+OK', '-ERR')), '%r: %r'
                            % (cmd, reply))
            v, nargs = verb.upper(), len(arg.split())
            multi = reply.startswith('+OK') and (
                v == 'CAPA' or v in ('RETR', 'TOP') or
                (v in ('LIST', 'UIDL') and nargs == 0))
            if multi:
                self.multiline(c)
            if reply.startswith('-ERR Too many'):
                c.close()
                c = None
            elif rng.random() < 0.05:
                c.close()  # a drop: no UPDATE
                c = None
        if c is not None:
            c.close()
        p = self.pop_retry(user, password)
        self.assertEqual(p.stat()[0], 3)
        p.quit()
        self.assertEqual(self.inbox_count(user), 3)

    def test_long_line(self):
        c = self.raw()
        c.cmd('USER ' + 'a' * 300)
        self.assertTrue(c.read_line().startswith('-ERR'))
        c.send(b'X' * (70 * 1024))
        lines = []
        try:
            for _ in range(5):
                lines.append(c.read_line())
        except (EOFError, OSError):
            pass
        self.assertTrue(lines and lines[0].startswith('-ERR'), lines)


class Pop3ShutdownTest(Pop3Case):
    def test_shutdown_during_retr(self):
        # SIGTERM while a 4 MB RETR is half read: the message still ends
        # whole, then the goodbye, never inside the response (busy()).
        import signal
        user, password = self.new_user('term')
        text = 'Subject: term\r\n\r\n' + ('y' * 78 + '\r\n') * 50000
        self.deliver(user, [text])
        c = self.raw_login(user, password)
        c.cmd('RETR 1')
        got = c.buf + c.sock.recv(65536)
        c.buf = b''
        os.kill(self.inst.master_pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                data = c.sock.recv(1 << 20)
            except OSError:
                break
            if not data:
                break
            got += data
        head, _, rest = got.partition(b'\r\n')
        self.assertTrue(head.startswith(b'+OK'), head)
        body, sep, after = rest.partition(b'\r\n.\r\n')
        self.assertEqual(sep, b'\r\n.\r\n', 'the RETR response was cut '
                         'short (%d octets)' % len(rest))
        self.assertEqual(body + b'\r\n', text.encode())
        self.assertTrue(after.startswith(b'-ERR [SYS/TEMP]'), after[:200])


class Pop3ClientsTest(Pop3Case):
    def test_curl(self):
        curl = shutil.which('curl')
        if not curl:
            self.skipTest('curl is not installed')
        user, password = self.new_user('curl')
        texts = [message(1), message(2)]
        self.deliver(user, texts)
        urls = (('pop3s://127.0.0.1:%d/' % self.inst.ports['pop3s'], []),
                ('pop3://127.0.0.1:%d/' % self.inst.ports['pop3'],
                 ['--ssl-reqd']))
        for base, extra in urls:
            for n in (1, 2):
                with self.subTest(url=base, n=n):
                    r = subprocess.run(
                        [curl, '-sSk', '--max-time', '20'] + extra +
                        ['-u', '%s:%s' % (user, password), base + str(n)],
                        stdin=subprocess.DEVNULL, capture_output=True,
                        timeout=60)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertEqual(r.stdout, texts[n - 1].encode())
            with self.subTest(url=base, what='LIST'):
                r = subprocess.run(
                    [curl, '-sSk', '--max-time', '20'] + extra +
                    ['-u', '%s:%s' % (user, password), base],
                    stdin=subprocess.DEVNULL, capture_output=True,
                    timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout.decode().split('\r\n')[:2],
                                 ['1 %d' % len(texts[0]),
                                  '2 %d' % len(texts[1])])
        # curl without TLS on 110 must not get to log in.
        r = subprocess.run(
            [curl, '-sS', '--max-time', '20', '-u', '%s:%s'
             % (user, password), 'pop3://127.0.0.1:%d/1'
             % self.inst.ports['pop3']],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        self.assertNotEqual(r.returncode, 0, 'curl logged in without TLS')
        self.assertEqual(self.inbox_count(user), 2)

    def fetchmail(self, user, password, ssl, out, keep=False, rc_dir=None):
        if rc_dir is None:
            rc_dir = tempfile.mkdtemp(prefix='marmot-fetchmail-')
            self.addCleanup(shutil.rmtree, rc_dir, True)
        rc = os.path.join(rc_dir, 'fetchmailrc')
        port = self.inst.ports['pop3s' if ssl else 'pop3']
        with open(rc, 'w') as f:
            f.write('set no bouncemail\n'
                    'poll 127.0.0.1 with proto POP3 port %d uidl\n'
                    '  user "%s" there with password "%s" is "root" here\n'
                    '  %s no sslcertck%s\n'
                    '  mda "/bin/sh -c \'cat >> %s\'"\n'
                    % (port, user, password,
                       'ssl' if ssl else 'sslproto TLS1.2+',
                       ' keep' if keep else '', out))
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=rc_dir)
        return subprocess.run(
            ['fetchmail', '-f', rc, '--idfile',
             os.path.join(rc_dir, 'fetchids'), '--nodetach', '--invisible',
             '--nosyslog', '-v'],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=120, env=env)

    def test_fetchmail(self):
        if not shutil.which('fetchmail'):
            self.skipTest('fetchmail is not installed')
        for ssl in (True, False):
            with self.subTest(ssl=ssl):
                user, password = self.new_user('fm')
                texts = [message(1), message(2)]
                self.deliver(user, texts)
                out = os.path.join(self.inst.dir, 'fetchmail-%s.mbox'
                                   % user)
                r = self.fetchmail(user, password, ssl, out)
                self.assertEqual(r.returncode, 0, 'fetchmail: exit %d\n%s'
                                 '\n%s' % (r.returncode, r.stdout,
                                           r.stderr))
                if not ssl:
                    self.assertRegex(r.stdout + r.stderr, r'STLS')
                with open(out, 'rb') as f:
                    got = f.read().replace(b'\r\n', b'\n')
                for text in texts:
                    body = text.encode().replace(b'\r\n', b'\n')
                    self.assertIn(body.partition(b'\n\n')[2], got)
                    self.assertIn(b'Subject: ' + re.search(
                        r'Subject: (.*)\r\n', text).group(1).encode(), got)
                # fetchmail deletes what it fetched (no --keep).
                self.assertEqual(self.inbox_count(user), 0)


    def test_fetchmail_keep_uidl(self):
        # fetchmail --keep remembers UIDL ids between runs: the second run
        # fetches nothing, the third only the message delivered since.
        if not shutil.which('fetchmail'):
            self.skipTest('fetchmail is not installed')
        user, password = self.new_user('fmkeep')
        self.deliver(user, [message(1), message(2)])
        rc_dir = tempfile.mkdtemp(prefix='marmot-fetchmail-')
        self.addCleanup(shutil.rmtree, rc_dir, True)
        out = os.path.join(rc_dir, 'out.mbox')

        def run(expect_code):
            r = self.fetchmail(user, password, True, out, keep=True,
                               rc_dir=rc_dir)
            self.assertEqual(r.returncode, expect_code, 'fetchmail: exit %d'
                             '\n%s\n%s' % (r.returncode, r.stdout, r.stderr))
            with open(out, 'rb') as f:
                return f.read().count(b'Subject: pop3 test message')

        self.assertEqual(run(0), 2)
        # fetchmail exits 1 when there was no new mail.
        self.assertEqual(run(1), 2)
        self.deliver(user, [message(3)])
        self.assertEqual(run(0), 3)
        self.assertEqual(self.inbox_count(user), 3)


if __name__ == '__main__':
    unittest.main()
