"""The IMAP mailbox commands (issue 6, src/front/imap-cmd-mailbox.c) with
Python's imaplib: LIST and its extensions (LIST-EXTENDED selection and
return options, SPECIAL-USE attributes of a new account, CHILDREN,
LIST-STATUS, "" for the delimiter, reference names), LSUB, modified UTF-7
names and UTF-8 names after ENABLE UTF8=ACCEPT, STATUS items, CREATE (with
USE and MAILBOXID) / RENAME / DELETE / SUBSCRIBE, QUOTA, APPEND with
APPENDUID whose FETCH BODY[] is byte-identical, APPEND over quota,
TRYCREATE, and COPY / MOVE with COPYUID and the moved messages' EXPUNGE."""

import imaplib
import re
import time
import unittest

import harness
from harness import DOMAIN, Instance

MSG = (b'From: Bob <bob@example.net>\r\n'
       b'To: alice@' + DOMAIN.encode() + b'\r\n'
       b'Subject: appended\r\n'
       b'Message-ID: <app1@example.net>\r\n'
       b'\r\n'
       b'Body line one.\r\n'
       b'Caf\xc3\xa9 8-bit line.\r\n')


class ImapMailboxTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance()
        cls.user = 'alice@' + DOMAIN
        cls.password = cls.inst.add_user(cls.user)
        cls.small = 'bob@' + DOMAIN
        cls.small_password = cls.inst.add_user(cls.small, quota=40000)
        cls.inst.start()
        cls.inst.wait_all_ports()
        cls.ctx = cls.inst.ssl_context()

    @classmethod
    def tearDownClass(cls):
        cls.inst.cleanup()

    def setUp(self):
        harness.dump_log_on_failure(self, self.inst)

    def connect(self, user=None, password=None):
        return harness.imap_login(self, self.inst, self.ctx,
                                  user or self.user,
                                  password or self.password)

    @staticmethod
    def raw(m, name, *args):
        """Sends a command; returns (status, tagged text, untagged dict)."""
        m.untagged_responses.clear()
        try:
            typ, data = m._simple_command(name, *args)
        except imaplib.IMAP4.error as e:
            # imaplib raises on BAD.
            m.untagged_responses.clear()
            return 'BAD', str(e), {}
        untagged = {k: list(v) for k, v in m.untagged_responses.items()}
        m.untagged_responses.clear()
        text = data[-1] if data else b''
        if isinstance(text, bytes):
            text = text.decode('utf-8', 'replace')
        return typ, text, untagged

    @staticmethod
    def lines(untagged, key='LIST'):
        return [d.decode('utf-8') if isinstance(d, bytes) else d
                for d in untagged.get(key, [])]

    def list_map(self, untagged, key='LIST'):
        """{name: attributes} from LIST responses."""
        out = {}
        for ln in self.lines(untagged, key):
            mt = re.match(r'\(([^)]*)\) "/" (.*?)( \(.*\))?$', ln)
            self.assertIsNotNone(mt, ln)
            name = mt.group(2)
            if name.startswith('"'):
                name = name[1:-1]
            out[name] = set(mt.group(1).split())
        return out

    def test_1_list_special_use(self):
        m = self.connect()
        typ, text, u = self.raw(m, 'LIST', '""', '*')
        self.assertEqual(typ, 'OK', text)
        boxes = self.list_map(u)
        self.assertEqual(set(boxes), {'INBOX', 'Drafts', 'Sent', 'Junk',
                                      'Trash', 'Archive'})
        for name, attr in (('Drafts', '\\Drafts'), ('Sent', '\\Sent'),
                           ('Junk', '\\Junk'), ('Trash', '\\Trash'),
                           ('Archive', '\\Archive')):
            self.assertIn(attr, boxes[name])
            self.assertIn('\\HasNoChildren', boxes[name])
        self.assertEqual(boxes['INBOX'], {'\\HasNoChildren'})

        # RFC 9051 6.3.9: "" gives the delimiter.
        typ, text, u = self.raw(m, 'LIST', '""', '""')
        self.assertEqual(self.lines(u), ['(\\Noselect) "/" ""'])

        # RFC 6154 5.1: only special-use mailboxes.
        typ, text, u = self.raw(m, 'LIST', '(SPECIAL-USE)', '""', '*')
        self.assertEqual(typ, 'OK', text)
        self.assertEqual(set(self.list_map(u)),
                         {'Drafts', 'Sent', 'Junk', 'Trash', 'Archive'})
        # INBOX is case-insensitive.
        typ, text, u = self.raw(m, 'LIST', '""', 'inbox')
        self.assertEqual(list(self.list_map(u)), ['INBOX'])
        # Unknown options are BAD.
        typ, text, u = self.raw(m, 'LIST', '(BOGUS)', '""', '*')
        self.assertEqual(typ, 'BAD')
        typ, text, u = self.raw(m, 'LIST', '(RECURSIVEMATCH)', '""', '*')
        self.assertEqual(typ, 'BAD')

    def test_2_hierarchy_wildcards_subscribed(self):
        m = self.connect()
        for name in ('Lists/marmot/dev', 'Lists/other', 'Lists2'):
            typ, data = m.create(name)
            self.assertEqual(typ, 'OK', data)
            self.assertRegex(data[0].decode(), r'\[MAILBOXID \(F\d+\)\]')
        typ, text, u = self.raw(m, 'LIST', '""', '%')
        boxes = self.list_map(u)
        self.assertIn('Lists', boxes)
        self.assertNotIn('Lists/other', boxes)
        self.assertIn('\\HasChildren', boxes['Lists'])
        self.assertIn('\\HasNoChildren', boxes['Lists2'])
        typ, text, u = self.raw(m, 'LIST', 'Lists/', '%')
        self.assertEqual(set(self.list_map(u)),
                         {'Lists/marmot', 'Lists/other'})
        typ, text, u = self.raw(m, 'LIST', '""', 'Lists/*')
        self.assertEqual(set(self.list_map(u)),
                         {'Lists/marmot', 'Lists/marmot/dev', 'Lists/other'})
        # Names that need quoting come back quoted.
        typ, text, u = self.raw(m, 'CREATE', '"Sent Items \\"x\\""')
        self.assertEqual(typ, 'OK', text)
        typ, text, u = self.raw(m, 'LIST', '""', '"Sent *"')
        self.assertEqual(self.lines(u),
                         ['(\\HasNoChildren) "/" "Sent Items \\"x\\""'])
        # Several patterns (RFC 5258 3).
        typ, text, u = self.raw(m, 'LIST', '""', '(Lists2 Sent)')
        self.assertEqual(set(self.list_map(u)), {'Lists2', 'Sent'})

        # Created mailboxes are not subscribed; the defaults are.
        self.assertEqual(m.subscribe('Lists/marmot/dev')[0], 'OK')
        typ, text, u = self.raw(m, 'LIST', '(SUBSCRIBED)', '""', '*')
        boxes = self.list_map(u)
        self.assertIn('Lists/marmot/dev', boxes)
        self.assertNotIn('Lists', boxes)
        self.assertIn('\\Subscribed', boxes['Lists/marmot/dev'])
        self.assertIn('\\Subscribed', boxes['INBOX'])
        # RFC 5258 3.1 RECURSIVEMATCH: the parent with CHILDINFO.
        typ, text, u = self.raw(m, 'LIST', '(SUBSCRIBED RECURSIVEMATCH)',
                                '""', '%')
        lines = self.lines(u)
        self.assertIn('(\\HasChildren) "/" Lists ("CHILDINFO" ("SUBSCRIBED"))',
                      lines)
        # LSUB with % shows the unsubscribed parent as \Noselect.
        typ, text, u = self.raw(m, 'LSUB', '""', 'Lists/%')
        self.assertEqual(self.lines(u, 'LSUB'),
                         ['(\\Noselect) "/" Lists/marmot'])
        # RETURN (SUBSCRIBED) on a plain selection.
        typ, text, u = self.raw(m, 'LIST', '""', 'Lists*', 'RETURN',
                                '(SUBSCRIBED CHILDREN)')
        boxes = self.list_map(u)
        self.assertIn('\\Subscribed', boxes['Lists/marmot/dev'])
        self.assertNotIn('\\Subscribed', boxes['Lists'])
        self.assertEqual(m.unsubscribe('Lists/marmot/dev')[0], 'OK')
        typ, text, u = self.raw(m, 'LSUB', '""', 'Lists*')
        self.assertEqual(self.lines(u, 'LSUB'), [])
        typ, data = m.subscribe('Nonexistent')
        self.assertEqual(typ, 'NO')

    def test_3_utf7_and_utf8_names(self):
        m = self.connect()
        typ, data = m.create('Entw&APw-rfe')
        self.assertEqual(typ, 'OK', data)
        typ, text, u = self.raw(m, 'LIST', '""', 'Entw*')
        self.assertEqual(self.lines(u), ['(\\HasNoChildren) "/" Entw&APw-rfe'])
        # Invalid modified UTF-7 is refused.
        typ, text, u = self.raw(m, 'CREATE', 'Bad&APw')
        self.assertEqual(typ, 'BAD', text)
        typ, text, u = self.raw(m, 'CREATE', '&Jjo!')
        self.assertEqual(typ, 'BAD', text)
        # "&" itself.
        self.assertEqual(m.create('A&-B')[0], 'OK')
        typ, text, u = self.raw(m, 'LIST', '""', 'A&-B')
        self.assertEqual(self.lines(u), ['(\\HasNoChildren) "/" A&-B'])

        u8 = self.connect()
        typ, data = u8.enable('UTF8=ACCEPT')
        self.assertEqual(typ, 'OK', data)
        typ, text, u = self.raw(u8, 'LIST', '""', '"Entw*"')
        self.assertEqual(self.lines(u), ['(\\HasNoChildren) "/" "Entwürfe"'])
        typ, text, u = self.raw(u8, 'LIST', '""', '"A&*"')
        self.assertEqual(self.lines(u), ['(\\HasNoChildren) "/" A&B'])
        # IMAP4rev2 (RFC 9051 5.1) also has UTF-8 names.
        rev2 = self.connect()
        self.assertEqual(rev2.enable('IMAP4rev2')[0], 'OK')
        typ, text, u = self.raw(rev2, 'LIST', '""', 'Entw*')
        self.assertEqual(self.lines(u), ['(\\HasNoChildren) "/" "Entwürfe"'])
        typ, text, u = self.raw(u8, 'CREATE', '"Größe/Ünter"')
        self.assertEqual(typ, 'OK', text)
        # RFC 6855 4: APPEND UTF8 (~{N}) once UTF8=ACCEPT is on.
        u8.send(('U8 APPEND "Entwürfe" UTF8 (~{%d}\r\n'
                 % len(MSG)).encode())
        self.assertTrue(u8.readline().startswith(b'+'))
        u8.send(MSG + b')\r\n')
        line = u8.readline()
        self.assertTrue(line.startswith(b'U8 OK [APPENDUID '), line)
        typ, data = m.status('Entw&APw-rfe', '(MESSAGES)')
        self.assertIn(b'MESSAGES 1', data[0])
        typ, text, u = self.raw(m, 'LIST', '""', 'Gr*')
        self.assertEqual(self.lines(u),
                         ['(\\HasChildren) "/" Gr&APYA3w-e',
                          '(\\HasNoChildren) "/" Gr&APYA3w-e/&ANw-nter'])

    def test_4_status(self):
        m = self.connect()
        self.assertEqual(m.create('StatusBox')[0], 'OK')
        for flags in ('(\\Seen)', '(\\Deleted \\Seen)', '()'):
            typ, data = m.append('StatusBox', flags, None, MSG)
            self.assertEqual(typ, 'OK', data)
        typ, data = m.status('StatusBox', '(MESSAGES UIDNEXT UIDVALIDITY '
                             'UNSEEN DELETED SIZE HIGHESTMODSEQ RECENT '
                             'APPENDLIMIT MAILBOXID)')
        self.assertEqual(typ, 'OK', data)
        line = data[0].decode()
        self.assertIn('MESSAGES 3', line)
        self.assertIn('UIDNEXT 4', line)
        self.assertIn('UNSEEN 1', line)
        self.assertIn('DELETED 1', line)
        self.assertIn('SIZE %d' % (3 * len(MSG)), line)
        self.assertIn('RECENT 0', line)
        self.assertIn('APPENDLIMIT 67108864', line)
        self.assertRegex(line, r'UIDVALIDITY \d+')
        self.assertRegex(line, r'HIGHESTMODSEQ [1-9]\d*')
        self.assertRegex(line, r'MAILBOXID \(F\d+\)')
        typ, data = m.status('NoSuchBox', '(MESSAGES)')
        self.assertEqual(typ, 'NO')
        typ, text, u = self.raw(m, 'STATUS', 'StatusBox', '(BOGUS)')
        self.assertEqual(typ, 'BAD')
        # RFC 5819 LIST-STATUS.
        typ, text, u = self.raw(m, 'LIST', '""', 'Status*', 'RETURN',
                                '(STATUS (MESSAGES DELETED))')
        self.assertEqual(typ, 'OK', text)
        self.assertEqual(self.lines(u, 'STATUS'),
                         ['StatusBox (MESSAGES 3 DELETED 1)'])

    def test_5_create_rename_delete(self):
        m = self.connect()
        typ, text, u = self.raw(m, 'CREATE', 'MyDrafts', '(USE (\\Drafts))')
        self.assertEqual(typ, 'OK', text)
        typ, text, u = self.raw(m, 'LIST', '""', 'MyDrafts')
        self.assertEqual(self.lines(u),
                         ['(\\HasNoChildren \\Drafts) "/" MyDrafts'])
        typ, text, u = self.raw(m, 'CREATE', 'X1', '(USE (\\Bogus))')
        self.assertEqual(typ, 'NO')
        self.assertIn('[USEATTR]', text)
        typ, data = m.create('MyDrafts')
        self.assertEqual(typ, 'NO')
        self.assertIn(b'ALREADYEXISTS', data[0])
        self.assertEqual(m.create('INBOX')[0], 'NO')
        # RFC 9051 6.3.4: a trailing delimiter is dropped.
        self.assertEqual(m.create('Trail/')[0], 'OK')
        typ, text, u = self.raw(m, 'LIST', '""', 'Trail*')
        self.assertEqual(list(self.list_map(u)), ['Trail'])
        # A mailbox cannot become its own child.
        self.assertEqual(m.rename('Trail', 'Trail/Sub')[0], 'NO')

        self.assertEqual(m.create('Old/Child')[0], 'OK')
        self.assertEqual(m.append('Old/Child', None, None, MSG)[0], 'OK')
        typ, data = m.rename('Old', 'New')
        self.assertEqual(typ, 'OK', data)
        typ, text, u = self.raw(m, 'LIST', '""', 'New*')
        self.assertEqual(set(self.list_map(u)), {'New', 'New/Child'})
        typ, data = m.status('New/Child', '(MESSAGES)')
        self.assertIn(b'MESSAGES 1', data[0])
        self.assertEqual(m.rename('Missing', 'X')[0], 'NO')
        self.assertEqual(m.rename('New', 'Sent')[0], 'NO')

        # A parent with children is refused; INBOX too.
        typ, data = m.delete('New')
        self.assertEqual(typ, 'NO')
        self.assertEqual(m.delete('INBOX')[0], 'NO')
        self.assertEqual(m.delete('New/Child')[0], 'OK')
        self.assertEqual(m.delete('New')[0], 'OK')
        self.assertEqual(m.delete('New')[0], 'NO')

        # Deleting the selected mailbox leaves the selected state.
        self.assertEqual(m.create('Doomed')[0], 'OK')
        self.assertEqual(m.select('Doomed')[0], 'OK')
        typ, text, u = self.raw(m, 'DELETE', 'Doomed')
        self.assertEqual(typ, 'OK', text)
        self.assertIn('CLOSED', u)
        typ, text, u = self.raw(m, 'FETCH', '1', '(UID)')
        self.assertEqual(typ, 'BAD', text)
        m.state = 'AUTH'
        typ, text, u = self.raw(m, 'NOOP')
        self.assertEqual(typ, 'OK')

        # Deleted under another session's feet: that session is told
        # with a BYE (RFC 2180 3.3; test_imap_selected), this one goes on.
        self.assertEqual(m.create('Shared')[0], 'OK')
        self.assertEqual(m.append('Shared', None, None, MSG)[0], 'OK')
        other = self.connect()
        self.assertEqual(other.select('Shared')[0], 'OK')
        self.assertEqual(m.delete('Shared')[0], 'OK')
        with self.assertRaises(imaplib.IMAP4.abort):
            other.noop()
        typ, text, u = self.raw(m, 'LIST', '""', 'Shared')
        self.assertEqual((typ, self.lines(u)), ('OK', []))

        # RENAME INBOX moves its messages and leaves INBOX empty.
        self.assertEqual(m.append('INBOX', None, None, MSG)[0], 'OK')
        self.assertEqual(m.rename('INBOX', 'OldInbox')[0], 'OK')
        typ, data = m.status('INBOX', '(MESSAGES)')
        self.assertIn(b'MESSAGES 0', data[0])
        typ, data = m.status('OldInbox', '(MESSAGES)')
        self.assertIn(b'MESSAGES 1', data[0])

    def test_6_append_fetch(self):
        m = self.connect()
        self.assertEqual(m.create('AppendBox')[0], 'OK')
        typ, data = m.append('AppendBox', '(\\Flagged $Label1)',
                             '"05-Mar-2026 14:30:00 +0100"', MSG)
        self.assertEqual(typ, 'OK', data)
        mt = re.search(rb'\[APPENDUID (\d+) (\d+)\]', data[0])
        self.assertIsNotNone(mt, data)
        uidvalidity, uid = mt.group(1), mt.group(2)
        typ, data = m.select('AppendBox')
        self.assertEqual(m.untagged_responses['UIDVALIDITY'][0], uidvalidity)
        typ, data = m.uid('FETCH', uid.decode(),
                          '(FLAGS INTERNALDATE BODY.PEEK[])')
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(data[0][1], MSG)
        self.assertIn(b'\\Flagged', data[0][0])
        self.assertIn(b'$Label1', data[0][0])
        # The instant is kept (the store keeps UTC).
        self.assertIn(b'"05-Mar-2026 13:30:00 +0000"', data[0][0])

        # Appending to the selected mailbox: EXISTS comes.
        typ, data = m.append('AppendBox', None, None, MSG)
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(m.untagged_responses.get('EXISTS')[-1], b'2')

        # literal8 with a NUL (RFC 3516 4.1), which imaplib cannot send.
        binary = MSG.replace(b'Body line one.', b'Bin\x00ary')
        m.send(b'L8 APPEND AppendBox ~{%d}\r\n' % len(binary))
        self.assertTrue(m.readline().startswith(b'+'))
        m.send(binary + b'\r\n')
        while True:
            line = m.readline()
            if line.startswith(b'L8 '):
                break
        self.assertTrue(line.startswith(b'L8 OK [APPENDUID '), line)
        uid8 = re.search(rb'APPENDUID \d+ (\d+)', line).group(1)
        typ, data = m.uid('FETCH', uid8.decode(), '(BINARY.PEEK[])')
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(data[0][1], binary)
        # A NUL in a plain literal is refused (BAD raises in imaplib).
        m.literal = binary
        with self.assertRaisesRegex(imaplib.IMAP4.error, 'BAD.*NUL'):
            m._simple_command('APPEND', 'AppendBox')

        # Over APPENDLIMIT: NO [TOOBIG] before any data is sent (RFC 7889).
        m.send(b'TB APPEND AppendBox {%d}\r\n' % (64 * 1024 * 1024 + 1))
        line = m.readline()
        self.assertTrue(line.startswith(b'TB NO [TOOBIG]'), line)
        typ, data = m.noop()
        self.assertEqual(typ, 'OK', data)

        typ, data = m.append('Missing', None, None, MSG)
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[TRYCREATE]', data[0])
        m.literal = MSG
        typ, text, u = self.raw(m, 'APPEND', 'AppendBox',
                                '"31-Foo-2026 14:30:00 +0100"')
        self.assertEqual(typ, 'BAD')

    def test_7_quota(self):
        m = self.connect(self.small, self.small_password)
        big = MSG + b'x' * 25000 + b'\r\n'
        typ, data = m.append('INBOX', None, None, big)
        self.assertEqual(typ, 'OK', data)
        typ, data = m.getquotaroot('INBOX')
        self.assertEqual(typ, 'OK', data)
        flat = b' '.join(d for ds in data for d in ds)
        self.assertIn(b'INBOX ""', flat)
        self.assertIn(b'(STORAGE %d %d)' % ((len(big) + 1023) // 1024,
                                           40000 // 1024), flat)
        typ, data = m.append('INBOX', None, None, big)
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[OVERQUOTA]', data[0])
        typ, data = m.getquota('""')
        self.assertEqual(typ, 'OK', data)
        typ, text, u = self.raw(m, 'SETQUOTA', '""', '(STORAGE 1)')
        self.assertEqual(typ, 'NO')
        # COPY over quota fails as a whole.
        self.assertEqual(m.select('INBOX')[0], 'OK')
        typ, data = m.copy('1', 'Archive')
        self.assertEqual(typ, 'NO')
        self.assertIn(b'OVERQUOTA', data[0])
        # MOVE does not grow the usage: it is allowed.
        typ, data = m.uid('MOVE', '1', 'Archive')
        self.assertEqual(typ, 'OK', data)

    def test_8_copy_move(self):
        m = self.connect()
        self.assertEqual(m.create('Src')[0], 'OK')
        self.assertEqual(m.create('Dst')[0], 'OK')
        for _ in range(4):
            self.assertEqual(m.append('Src', None, None, MSG)[0], 'OK')
        typ, data = m.status('Dst', '(UIDVALIDITY)')
        dst_uidvalidity = re.search(rb'UIDVALIDITY (\d+)', data[0]).group(1)
        self.assertEqual(m.select('Src')[0], 'OK')
        typ, data = m.copy('2:3', 'Dst')
        self.assertEqual(typ, 'OK', data)
        self.assertIn(b'[COPYUID ' + dst_uidvalidity + b' 2:3 1:2]',
                      data[0])
        typ, data = m.copy('1', 'Nowhere')
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[TRYCREATE]', data[0])

        m.untagged_responses.clear()
        typ, data = m.uid('MOVE', '1,3', 'Dst')
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(m.untagged_responses.get('COPYUID'),
                         [dst_uidvalidity + b' 1,3 3:4'])
        # Highest first, each number valid when sent.
        self.assertEqual(m.untagged_responses.get('EXPUNGE'), [b'3', b'1'])
        typ, data = m.fetch('1:*', '(UID)')
        self.assertEqual([re.search(rb'UID (\d+)', d).group(1)
                          for d in data], [b'2', b'4'])
        typ, data = m.status('Dst', '(MESSAGES)')
        self.assertIn(b'MESSAGES 4', data[0])
        # A UID set naming nothing is not an error.
        typ, data = m.uid('COPY', '100:200', 'Dst')
        self.assertEqual(typ, 'OK', data)
        # Under QRESYNC the moved messages are one VANISHED (RFC 7162
        # 3.2.10), and another session learns of them at its next sync.
        q = self.connect()
        self.assertEqual(q.enable('QRESYNC')[0], 'OK')
        self.assertEqual(q.select('Dst')[0], 'OK')
        self.assertEqual(m.select('Dst')[0], 'OK')
        q.untagged_responses.clear()
        typ, data = q.uid('MOVE', '1:2', 'Src')
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(q.untagged_responses.get('VANISHED'), [b'1:2'])
        self.assertNotIn('EXPUNGE', q.untagged_responses)
        m.untagged_responses.clear()
        typ, data = m.noop()
        self.assertEqual(m.untagged_responses.get('EXPUNGE'), [b'2', b'1'])
        # EXAMINE refuses MOVE.
        self.assertEqual(m.select('Src', readonly=True)[0], 'OK')
        typ, data = m.uid('MOVE', '2', 'Dst')
        self.assertEqual(typ, 'NO')

    def test_9_list_cost_bounded(self):
        m = self.connect()
        for c in 'xyz':
            self.assertEqual(m.create(c + 'a' * 999)[0], 'OK')
        # Each pattern costs about name x pattern length per name; 60 of
        # them against three 1000-octet names exceed the budget and are
        # refused quickly instead of holding the front.
        pattern = '*a' * 500 + '*b'
        start = time.monotonic()
        typ, text, u = self.raw(m, 'LIST', '""',
                                '(' + ' '.join([pattern] * 60) + ')')
        self.assertEqual(typ, 'NO', text)
        self.assertIn('[LIMIT]', text)
        self.assertLess(time.monotonic() - start, 10)
        typ, text, u = self.raw(m, 'LIST', '""',
                                '(' + ' '.join(['%'] * 65) + ')')
        self.assertEqual(typ, 'BAD', text)
        # One such pattern is fine.
        typ, text, u = self.raw(m, 'LIST', '""', pattern)
        self.assertEqual(typ, 'OK', text)
        self.assertEqual(self.lines(u), [])


if __name__ == '__main__':
    unittest.main()
