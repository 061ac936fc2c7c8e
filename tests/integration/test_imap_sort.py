"""SORT and THREAD (RFC 5256, RFC 5957 SORT=DISPLAY) with Python's
imaplib over a delivered set: every sort key, REVERSE and several keys,
DATE falling back to INTERNALDATE for a message without Date:, THREAD
REFERENCES (replies by References and In-Reply-To, a missing parent kept
as a dummy, Re:/Fwd: subjects) and ORDEREDSUBJECT, UID SORT/THREAD
(UIDs differ from sequence numbers after an expunge), SEARCH programs
(text, dates, OR/NOT, sets, "$"), bad
criteria answered BAD and an unknown charset NO [BADCHARSET]."""

import imaplib
import re
import time
import unittest

import harness
from harness import DOMAIN


def message(frm, to, subject, msgid, date=None, cc=None, refs=None,
            irt=None, body_len=10):
    lines = ['From: ' + frm]
    if to is not None:
        lines.append('To: ' + to)
    if cc is not None:
        lines.append('Cc: ' + cc)
    lines.append('Subject: ' + subject)
    if date is not None:
        lines.append('Date: ' + date)
    lines.append('Message-ID: <%s>' % msgid)
    if refs is not None:
        lines.append('References: ' + refs)
    if irt is not None:
        lines.append('In-Reply-To: ' + irt)
    lines.append('MIME-Version: 1.0')
    lines.append('Content-Type: text/plain; charset=us-ascii')
    return ('\r\n'.join(lines) + '\r\n\r\n' + 'x' * body_len +
            '\r\n').encode()


# Sequence numbers 1..6 once the filler is expunged. Dates are in 2025,
# so the message without Date: (5, sorted by its INTERNALDATE: now) comes
# last by DATE.
MESSAGES = [
    message('Carol <carol@example.net>', 'zed@example.org', 'Plans',
            'p1@x', 'Wed, 3 Dec 2025 10:00:00 +0000',
            cc='Bob <bob@example.net>', body_len=300),
    message('"Zed Alice" <alice@example.net>', 'Amy <amy@example.org>',
            'Re: Plans', 'p2@x', 'Mon, 1 Dec 2025 10:00:00 +0000',
            refs='<p1@x>', body_len=5000),
    message('bob@example.net', 'carl@example.org', 'Fwd: Lunch', 'l1@x',
            'Tue, 2 Dec 2025 10:00:00 +0000', cc='aaron@example.org',
            irt='<missing@x>', body_len=50),
    message('Dave <dave@example.net>', 'Bob B <bob@example.org>',
            'Re: Lunch', 'l2@x', 'Thu, 4 Dec 2025 10:00:00 +0000',
            refs='<missing@x>', body_len=800),
    message('eve@example.net', None, 'Zebra', 'z@x', None, body_len=20),
    message('Zoe Frank <frank@example.net>', 'yan@example.org',
            'RE: Plans', 'p3@x', 'Fri, 5 Dec 2025 10:00:00 +0100',
            refs='<p1@x> <p2@x>', body_len=2000),
]


class ImapSortTest(harness.ImapAccountCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        filler = message('f@example.net', None, 'filler', 'filler@x')
        for data in [filler] + MESSAGES:
            r = cls.inst.marmot(['deliver', cls.user], input=data.decode())
            assert r.returncode == 0, r.stderr

    def selected(self):
        """A session on INBOX holding exactly MESSAGES, seq = uid - 1."""
        m = self.connect()
        for _ in range(100):
            typ, data = m.select('INBOX')
            self.assertEqual(typ, 'OK', data)
            if int(data[0]) > 0 and \
                    self.uids(m)[-1] == len(MESSAGES) + 1:
                break
            m.close()
            time.sleep(0.1)
        uids = self.uids(m)
        if len(uids) == len(MESSAGES) + 1:
            # The filler goes: UIDs and sequence numbers differ by one.
            m.uid('STORE', str(uids[0]), '+FLAGS', '(\\Deleted)')
            m.expunge()
        self.assertEqual(self.uids(m), list(range(2, len(MESSAGES) + 2)))
        return m

    @staticmethod
    def uids(m):
        typ, data = m.fetch('1:*', '(UID)')
        return [int(re.search(rb'UID (\d+)', d).group(1)) for d in data]

    def sort(self, m, criteria, *search):
        typ, data = m.sort(criteria, 'UTF-8', *(search or ('ALL',)))
        self.assertEqual(typ, 'OK', data)
        return [int(n) for n in data[0].split()]

    def test_1_capabilities(self):
        m = self.connect()
        typ, data = m.capability()
        caps = data[0].decode().split()
        for cap in ('SORT', 'SORT=DISPLAY', 'THREAD=ORDEREDSUBJECT',
                    'THREAD=REFERENCES'):
            self.assertIn(cap, caps)

    def test_2_each_key(self):
        m = self.selected()
        cases = {
            # RFC 5256 2.2: 5 has no Date:, its INTERNALDATE (now) counts.
            '(DATE)': [2, 3, 1, 4, 6, 5],
            '(REVERSE DATE)': [5, 6, 4, 1, 3, 2],
            # Base subjects: lunch (3, 4), plans (1, 2, 6), zebra (5).
            '(SUBJECT)': [3, 4, 1, 2, 6, 5],
            '(SUBJECT DATE)': [3, 4, 2, 1, 6, 5],
            '(REVERSE SUBJECT DATE)': [5, 2, 1, 6, 3, 4],
            '(SUBJECT REVERSE DATE)': [4, 3, 6, 1, 2, 5],
            # addr-mailbox of the first From.
            '(FROM)': [2, 3, 1, 4, 5, 6],
            '(REVERSE FROM)': [6, 5, 4, 1, 3, 2],
            # No To sorts as "" first.
            '(TO)': [5, 2, 4, 3, 6, 1],
            # No Cc: "" in mailbox order, then aaron, bob.
            '(CC)': [2, 4, 5, 6, 3, 1],
            # RFC 5957: display names, else the address.
            '(DISPLAYFROM)': [3, 1, 4, 5, 2, 6],
            '(DISPLAYTO)': [5, 2, 4, 3, 6, 1],
        }
        for criteria, want in cases.items():
            self.assertEqual(self.sort(m, criteria), want, criteria)

    def test_3_size_and_arrival(self):
        m = self.selected()
        typ, data = m.fetch('1:*', '(RFC822.SIZE INTERNALDATE)')
        self.assertEqual(typ, 'OK', data)
        sizes, dates = {}, {}
        for line in data:
            seq = int(line.split()[0])
            sizes[seq] = int(re.search(rb'RFC822\.SIZE (\d+)', line).group(1))
            dates[seq] = imaplib.Internaldate2tuple(line)
        self.assertEqual(self.sort(m, '(SIZE)'),
                         sorted(sizes, key=lambda s: (sizes[s], s)))
        self.assertEqual(self.sort(m, '(REVERSE SIZE)'),
                         sorted(sizes, key=lambda s: (-sizes[s], s)))
        self.assertEqual(self.sort(m, '(ARRIVAL)'),
                         sorted(dates, key=lambda s: (dates[s], s)))
        # Delivered one after another: arrival order is mailbox order.
        self.assertEqual(self.sort(m, '(ARRIVAL)'), [1, 2, 3, 4, 5, 6])

    def test_4_uid_and_sets(self):
        m = self.selected()
        typ, data = m.uid('SORT', '(DATE)', 'UTF-8', 'ALL')
        self.assertEqual(typ, 'OK', data)
        self.assertEqual([int(u) for u in data[0].split()],
                         [3, 4, 2, 5, 7, 6])
        self.assertEqual(self.sort(m, '(DATE)', '2:4'), [2, 3, 4])
        self.assertEqual(self.sort(m, '(REVERSE DATE)', 'UID', '2:4'),
                         [1, 3, 2])
        typ, data = m.uid('SORT', '(SUBJECT)', 'US-ASCII', '1:3')
        self.assertEqual([int(u) for u in data[0].split()], [4, 2, 3])
        typ, data = m.uid('THREAD', 'REFERENCES', 'UTF-8', 'ALL')
        self.assertEqual(data, [b'((4)(5))(2 3 7)(6)'])

    def test_4b_search_program(self):
        m = self.selected()
        # The SEARCH program: text, dates, OR/NOT, the charset.
        self.assertEqual(self.sort(m, '(DATE)', 'SUBJECT', 'plans'),
                         [2, 1, 6])
        self.assertEqual(self.sort(m, '(REVERSE DATE)', 'FROM', 'bob'),
                         [3])
        # SENT* read the Date: header: 5 has none.
        self.assertEqual(self.sort(m, '(SUBJECT)', 'SENTSINCE',
                                   '3-Dec-2025'), [4, 1, 6])
        self.assertEqual(self.sort(m, '(FROM)', 'OR', 'TO', 'amy',
                                   'CC', 'aaron'), [2, 3])
        self.assertEqual(self.sort(m, '(SIZE)', 'NOT', 'SUBJECT',
                                   'plans', 'NOT', 'SUBJECT', 'zebra'),
                         [3, 4])
        typ, data = m.sort('(DATE)', '"US-ASCII"', 'SUBJECT', '"lunch"')
        self.assertEqual(data, [b'3 4'])
        typ, data = m.thread('REFERENCES', 'UTF-8', 'SUBJECT', 'plans')
        self.assertEqual(data, [b'(1 2 6)'])
        typ, data = m.thread('ORDEREDSUBJECT', 'UTF-8', 'NOT', 'FROM',
                             'eve')
        self.assertEqual(data, [b'(2 (1)(6))(3 4)'])
        # RFC 5182: "$" is a saved SEARCH result.
        typ, data = m._simple_command('SEARCH', 'RETURN', '(SAVE)', 'OR',
                                      'FROM', 'carol', 'FROM', 'dave')
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(self.sort(m, '(REVERSE DATE)', '$'), [4, 1])
        typ, data = m.uid('THREAD', 'REFERENCES', 'UTF-8', '$')
        self.assertEqual(data, [b'(2)(5)'])
        # RFC 7162 3.1.5: with a MODSEQ key, the highest MODSEQ found.
        typ, data = m.fetch('1:*', '(MODSEQ)')
        modseqs = [int(re.search(rb'MODSEQ \((\d+)\)', d).group(1))
                   for d in data]
        typ, data = m.sort('(DATE)', 'UTF-8', 'MODSEQ', '1')
        self.assertEqual(data, [b'2 3 1 4 6 5 (MODSEQ %d)' % max(modseqs)])
        typ, data = m.sort('(DATE)', 'UTF-8', 'MODSEQ', '1', '2:3')
        self.assertEqual(data, [b'2 3 (MODSEQ %d)' % max(modseqs[1:3])])
        # Nothing matches: an empty answer.
        typ, data = m.sort('(DATE)', 'UTF-8', 'SUBJECT', 'nothing-here')
        self.assertEqual(typ, 'OK', data)
        self.assertIn(data[0], (None, b''))

    def test_5_thread(self):
        m = self.selected()
        typ, data = m.thread('REFERENCES', 'UTF-8', 'ALL')
        self.assertEqual(typ, 'OK', data)
        # The missing parent of 3 (In-Reply-To) and 4 (References) is a
        # dummy at the top; 6 answers 2 which answers 1.
        self.assertEqual(data, [b'((3)(4))(1 2 6)(5)'])
        typ, data = m.thread('ORDEREDSUBJECT', 'UTF-8', 'ALL')
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(data, [b'(2 (1)(6))(3 4)(5)'])
        typ, data = m.thread('REFERENCES', 'UTF-8', '3:5')
        self.assertEqual(data, [b'((3)(4))(5)'])
        typ, data = m.thread('references', 'utf-8', '1', '6')
        self.assertEqual(typ, 'OK', data)

    def test_6_bad(self):
        m = self.selected()
        for args in (('(COLOR)', 'UTF-8', 'ALL'),
                     ('(REVERSE)', 'UTF-8', 'ALL'),
                     ('(REVERSE REVERSE DATE)', 'UTF-8', 'ALL'),
                     ('()', 'UTF-8', 'ALL'),
                     ('(DATE)', 'UTF-8'),
                     ('(DATE)', 'UTF-8', 'NOSUCHKEY')):
            with self.assertRaises(imaplib.IMAP4.error) as e:
                m._simple_command('SORT', *args)
            self.assertIn('BAD', str(e.exception), args)
        # Criteria that are not a list.
        with self.assertRaises(imaplib.IMAP4.error) as e:
            m._simple_command('SORT', 'DATE', 'UTF-8', 'ALL')
        self.assertIn('BAD', str(e.exception))
        for args in (('NOSUCH', 'UTF-8', 'ALL'), ('REFERENCES',)):
            with self.assertRaises(imaplib.IMAP4.error):
                m._simple_command('THREAD', *args)
        typ, data = m._simple_command('SORT', '(DATE)', 'KOI8-R', 'ALL')
        self.assertEqual(typ, 'NO', data)
        self.assertIn(b'BADCHARSET', data[0])
        typ, data = m._simple_command('THREAD', 'REFERENCES', 'KOI8-R',
                                      'ALL')
        self.assertEqual(typ, 'NO', data)
        # The session is still fine.
        self.assertEqual(self.sort(m, '(DATE)'), [2, 3, 1, 4, 6, 5])

    def test_7_not_selected(self):
        m = self.connect()
        with self.assertRaises(imaplib.IMAP4.error):
            m._simple_command('SORT', '(DATE)', 'UTF-8', 'ALL')


if __name__ == '__main__':
    unittest.main()
