"""IMAP SEARCH (issue 6 item 4) with Python's imaplib against a running
instance: a message set built for the keys (imported from an mbox with
`marmot import`, so that flags, keywords and INTERNALDATEs are ours to
choose), then every search key at least once with the messages it must
find: flags, keywords, sizes, the date families, OLDER/YOUNGER, the
full-text keys with substring semantics ("ello" finds "Hello"), case-
insensitivity, non-ASCII UTF-8 sent as a literal with CHARSET UTF-8,
HEADER, sequence and UID sets, MODSEQ, EMAILID/THREADID, OR/NOT nesting,
ESEARCH's RETURN forms, SEARCHRES "$" used by a following FETCH, UID
SEARCH, IMAP4rev2's ESEARCH, and BAD / NO [BADCHARSET] for bad programs;
messages APPENDed (one while selected) searched alike; last, a timed
SEARCH TEXT over 2,000 messages."""

import imaplib
import os
import re
import tempfile
import time
import unittest

import harness
from harness import DOMAIN, Instance

MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep',
          'Oct', 'Nov', 'Dec']
DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']


def asctime(t):
    tm = time.gmtime(t)
    return '%s %s %2d %02d:%02d:%02d %d' % (
        DAYS[tm.tm_wday], MONTHS[tm.tm_mon - 1], tm.tm_mday, tm.tm_hour,
        tm.tm_min, tm.tm_sec, tm.tm_year)


NOW = int(time.time())

# (headers, body, status, x-status, keywords, internaldate). Sequence
# numbers are the list order + 1.
MESSAGES = [
    # 1: seen, $Work, 2-Jun-2025
    (['From: Alice <alice@example.org>', 'To: bob@example.net',
      'Subject: Hello world', 'Date: Mon, 2 Jun 2025 10:00:00 +0000',
      'X-Spam: yes', 'Message-ID: <m1@example.org>'],
     'Hello there, this is the first message.', 'RO', '', ['$Work'],
     1748865600),
    # 2: flagged + answered, UTF-8, 3-Jun-2025
    (['From: Bob <bob@example.net>', 'To: alice@example.org',
      'Cc: carol@example.org', 'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=',
      'Date: Tue, 3 Jun 2025 09:00:00 +0000', 'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit', 'Message-ID: <m2@example.net>'],
     'Gr\u00fc\u00dfe aus M\u00fcnchen', 'O', 'AF', [], 1748952000),
    # 3: deleted + draft, List-Id, 5-Jun-2025, sent 1-Jan-2024
    (['From: carol@example.org', 'Bcc: dave@example.com',
      'Subject: Meeting', 'List-Id: <team.example.org>',
      'Date: Mon, 1 Jan 2024 08:00:00 +0000',
      'Message-ID: <m3@example.org>'],
     'short', 'O', 'DT', ['todo'], 1749124800),
    # 4: large, no Date, a minute old
    (['From: eve@example.org', 'Subject: big',
      'Message-ID: <m4@example.org>'],
     '\n'.join(['x' * 50] * 100), 'O', '', [], NOW - 60),
]


def mbox_of(messages):
    out = []
    for headers, body, status, xstatus, keywords, date in messages:
        out.append('From sender@example.net ' + asctime(date))
        out += headers
        out.append('Status: ' + status)
        if xstatus:
            out.append('X-Status: ' + xstatus)
        if keywords:
            out.append('X-Keywords: ' + ', '.join(keywords))
        out.append('')
        out += [('>' + ln if re.match(r'^>*From ', ln) else ln)
                for ln in body.split('\n')]
        out.append('')
    return '\n'.join(out) + '\n'


class ImapSearchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance()
        cls.user = 'searcher@' + DOMAIN
        cls.password = cls.inst.add_user(cls.user)
        cls.work = tempfile.mkdtemp(prefix='test-imap-search.')
        path = os.path.join(cls.work, 'in.mbox')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(mbox_of(MESSAGES))
        r = cls.inst.marmot(['import', cls.user, '--mbox', path])
        if r.returncode != 0:
            cls.inst.cleanup()
            raise AssertionError('marmot import: %s %s' % (r.stdout,
                                                           r.stderr))
        cls.inst.start()
        cls.inst.wait_all_ports()
        cls.ctx = cls.inst.ssl_context()

    @classmethod
    def tearDownClass(cls):
        cls.inst.cleanup()
        for name in os.listdir(cls.work):
            os.unlink(os.path.join(cls.work, name))
        os.rmdir(cls.work)

    def setUp(self):
        harness.dump_log_on_failure(self, self.inst)

    def connect(self, select=True):
        m = harness.imap_login(self, self.inst, self.ctx, self.user,
                               self.password, timeout=30)
        if select:
            typ, data = m.select('INBOX')
            self.assertEqual(typ, 'OK', data)
            self.assertEqual(data, [str(len(MESSAGES)).encode()])
        return m

    def search(self, m, *criteria, charset=None):
        typ, data = m.search(charset, *criteria)
        self.assertEqual(typ, 'OK', '%r: %r' % (criteria, data))
        return [int(x) for x in data[0].split()]

    def check(self, m, cases):
        for criteria, want in cases:
            if isinstance(criteria, str):
                criteria = (criteria,)
            self.assertEqual(self.search(m, *criteria), want,
                             'SEARCH %s' % ' '.join(criteria))

    def raw(self, m, line):
        """Sends 'TAG line' and returns (untagged lines, tagged line)."""
        tag = m._new_tag().decode()
        m.send(('%s %s\r\n' % (tag, line)).encode())
        untagged = []
        while True:
            ln = m._get_line().decode('utf-8', 'replace')
            if ln.startswith(tag + ' '):
                return untagged, ln
            untagged.append(ln)

    def test_flags_keywords_sizes(self):
        m = self.connect()
        self.check(m, [
            ('ALL', [1, 2, 3, 4]),
            ('SEEN', [1]), ('UNSEEN', [2, 3, 4]),
            ('ANSWERED', [2]), ('UNANSWERED', [1, 3, 4]),
            ('FLAGGED', [2]), ('UNFLAGGED', [1, 3, 4]),
            ('DELETED', [3]), ('UNDELETED', [1, 2, 4]),
            ('DRAFT', [3]), ('UNDRAFT', [1, 2, 4]),
            ('RECENT', []), ('NEW', []), ('OLD', [1, 2, 3, 4]),
            (('KEYWORD', '$work'), [1]), (('KEYWORD', 'todo'), [3]),
            (('UNKEYWORD', '$Work'), [2, 3, 4]),
            (('LARGER', '4000'), [4]), (('SMALLER', '4000'), [1, 2, 3]),
        ])

    def test_dates(self):
        m = self.connect()
        # RFC 5032 2: OLDER and YOUNGER are announced as WITHIN; the
        # others this file tests are too (RFC 4731, 5182, 8514, 8474).
        typ, data = m.capability()
        caps = data[0].decode().upper().split()
        for cap in ('WITHIN', 'ESEARCH', 'SEARCHRES', 'SAVEDATE',
                    'OBJECTID', 'CONDSTORE'):
            self.assertIn(cap, caps)
        self.check(m, [
            (('BEFORE', '3-Jun-2025'), [1]),
            (('ON', '3-Jun-2025'), [2]),
            (('SINCE', '5-Jun-2025'), [3, 4]),
            (('SENTBEFORE', '2-Jun-2025'), [3]),
            (('SENTON', '03-Jun-2025'), [2]),
            (('SENTSINCE', '2-Jun-2025'), [1, 2]),
            (('SAVEDSINCE', '1-Jan-2000'), [1, 2, 3, 4]),
            (('SAVEDBEFORE', '1-Jan-2000'), []),
            (('SAVEDON', '1-Jan-2000'), []),
            ('SAVEDATESUPPORTED', [1, 2, 3, 4]),
            (('YOUNGER', '3600'), [4]),
            (('OLDER', '3600'), [1, 2, 3]),
        ])

    def test_text_substring_case(self):
        m = self.connect()
        self.check(m, [
            (('BODY', 'ello'), [1]),
            (('BODY', 'HELLO'), [1]),
            (('TEXT', 'hElLo'), [1]),
            (('TEXT', '""'), [1, 2, 3, 4]),
            (('SUBJECT', 'orl'), [1]),
            (('FROM', 'alice'), [1]),
            (('FROM', 'Al'), [1]),
            (('TO', 'bob@'), [1]),
            (('CC', 'carol'), [2]),
            (('BCC', 'dave'), [3]),
            (('FROM', 'nobody-at-all'), []),
            (('HEADER', 'X-Spam', 'yes'), [1]),
            (('HEADER', 'x-spam', 'YE'), [1]),
            (('HEADER', 'List-Id', '""'), [3]),
            (('NOT', 'HEADER', 'List-Id', '""'), [1, 2, 4]),
            (('HEADER', 'Message-ID', 'm2@'), [2]),
        ])

    def test_utf8_literal(self):
        m = self.connect()
        # imaplib sends a literal when m.literal is set.
        for key, text, want in (('BODY', 'M\u00dcNCHEN', [2]),
                                ('BODY', 'gr\u00fc\u00dfe', [2]),
                                ('SUBJECT', 'GR\u00dc\u00dfE', [2]),
                                ('TEXT', '\u00fc', [2])):
            m.literal = text.encode('utf-8')
            typ, data = m.search('UTF-8', key)
            self.assertEqual(typ, 'OK', data)
            self.assertEqual([int(x) for x in data[0].split()], want,
                             'SEARCH CHARSET UTF-8 %s %s' % (key, text))
        self.assertEqual(self.search(m, 'TEXT', 'xxxxx', charset='US-ASCII'),
                         [4])

    def test_sets_and_logic(self):
        m = self.connect()
        self.check(m, [
            ('2:3', [2, 3]), ('*', [4]), ('1,3:*', [1, 3, 4]),
            (('UID', '1:2'), [1, 2]),
            (('OR', 'SEEN', 'FLAGGED'), [1, 2]),
            (('NOT', 'OR', 'SEEN', 'FLAGGED'), [3, 4]),
            (('NOT', '(OR SEEN FLAGGED)'), [3, 4]),
            (('OR', '(SEEN BODY ello)', '(DELETED HEADER List-Id "")'),
             [1, 3]),
            (('OR', 'OR', 'SEEN', 'DRAFT', 'LARGER', '4000'), [1, 3, 4]),
            (('(UNSEEN (UNDELETED))', 'TEXT', '""'), [2, 4]),
            (('NOT', 'NOT', 'SEEN'), [1]),
        ])
        typ, data = m.uid('SEARCH', 'UNSEEN')
        self.assertEqual(typ, 'OK', data)
        typ, uids = m.fetch('2:4', '(UID)')
        want = [int(re.search(rb'UID (\d+)', x).group(1)) for x in uids]
        self.assertEqual([int(x) for x in data[0].split()], want)

    def test_modseq_objectid(self):
        m = self.connect()
        typ, data = m.fetch('1:4', '(MODSEQ EMAILID THREADID)')
        self.assertEqual(typ, 'OK', data)
        modseqs = [int(re.search(rb'MODSEQ \((\d+)\)', x).group(1))
                   for x in data]
        emailids = [re.search(rb'EMAILID \(([\w-]+)\)', x).group(1).decode()
                    for x in data]
        threadids = [re.search(rb'THREADID \(([\w-]+)\)', x).group(1)
                     .decode() for x in data]
        top = max(modseqs)
        untagged, tagged = self.raw(m, 'SEARCH MODSEQ %d' % min(modseqs))
        self.assertTrue(tagged.split()[1] == 'OK', tagged)
        # RFC 7162 3.1.5: the highest MODSEQ of what was found.
        self.assertEqual(untagged, ['* SEARCH 1 2 3 4 (MODSEQ %d)' % top])
        untagged, tagged = self.raw(
            m, 'SEARCH MODSEQ "/flags/\\\\seen" all %d' % (top + 1))
        self.assertEqual(untagged, ['* SEARCH'], tagged)
        self.assertEqual(self.search(m, 'EMAILID', emailids[2]), [3])
        self.assertEqual(self.search(m, 'THREADID', threadids[1]), [2])

    def test_esearch_return(self):
        m = self.connect()
        untagged, tagged = self.raw(m, 'SEARCH RETURN (MIN MAX COUNT) '
                                    'UNSEEN')
        tag = tagged.split()[0]
        self.assertIn(' OK ', tagged)
        self.assertEqual(untagged, ['* ESEARCH (TAG "%s") MIN 2 MAX 4 '
                                    'COUNT 3' % tag])
        untagged, tagged = self.raw(m, 'SEARCH RETURN () 1,3:4')
        self.assertEqual(untagged, ['* ESEARCH (TAG "%s") ALL 1,3:4'
                                    % tagged.split()[0]])
        untagged, tagged = self.raw(m, 'UID SEARCH RETURN (COUNT) '
                                    'FROM nobody-at-all')
        self.assertEqual(untagged, ['* ESEARCH (TAG "%s") UID COUNT 0'
                                    % tagged.split()[0]])

    def test_searchres_fetch(self):
        m = self.connect()
        untagged, tagged = self.raw(m, 'SEARCH RETURN (SAVE) UNSEEN')
        self.assertIn(' OK ', tagged)
        self.assertEqual(untagged, [])
        # RFC 5182: "$" in a following FETCH and SEARCH.
        typ, data = m.fetch('$', '(FLAGS)')
        self.assertEqual(typ, 'OK', data)
        seqs = [int(x.split()[0]) for x in data]
        self.assertEqual(seqs, [2, 3, 4])
        self.assertEqual(self.search(m, '$', 'FLAGGED'), [2])
        self.assertEqual(self.search(m, 'NOT', '$'), [1])
        # A failed SEARCH with SAVE empties "$".
        untagged, tagged = self.raw(m, 'SEARCH RETURN (SAVE) NOSUCHKEY')
        self.assertIn(' BAD ', tagged)
        self.assertEqual(self.search(m, '$'), [])

    def test_imap4rev2_esearch(self):
        m = self.connect(select=False)
        typ, data = m.enable('IMAP4rev2')
        self.assertEqual(typ, 'OK', data)
        typ, data = m.select('INBOX')
        self.assertEqual(typ, 'OK', data)
        untagged, tagged = self.raw(m, 'SEARCH SEEN')
        self.assertIn(' OK ', tagged)
        self.assertEqual(untagged, ['* ESEARCH (TAG "%s") ALL 1'
                                    % tagged.split()[0]])

    def test_append_then_search(self):
        """Messages APPENDed (one while the mailbox is selected, reported
        by NOOP's EXISTS) are searched like imported ones."""
        m = self.connect(select=False)
        msg = (b'From: Zed <zed@example.org>\r\nSubject: appended one\r\n'
               b'\r\nThe quick brown fox.\r\n')
        typ, data = m.append('Archive', '(\\Flagged $Later)',
                             imaplib.Time2Internaldate(1700000000), msg)
        self.assertEqual(typ, 'OK', data)
        typ, data = m.select('Archive')
        self.assertEqual(typ, 'OK', data)
        self.assertEqual(data, [b'1'])
        typ, data = m.append('Archive', '()', None,
                             msg.replace(b'quick', b'slow'))
        self.assertEqual(typ, 'OK', data)
        typ, data = m.noop()
        self.assertEqual(typ, 'OK', data)
        self.check(m, [
            (('FLAGGED', 'BODY', 'QUICK'), [1]),
            (('KEYWORD', '$later'), [1]),
            (('BODY', 'slow'), [2]),
            (('FROM', 'zed', 'SUBJECT', 'appended'), [1, 2]),
            (('ON', '14-Nov-2023'), [1]),
            (('SINCE', '1-Jan-2024'), [2]),
            ('UNFLAGGED', [2]),
        ])

    def test_errors(self):
        m = self.connect()
        for bad in ('SEARCH FOO', 'SEARCH BEFORE 30-Feb-2024',
                    'SEARCH OR SEEN', 'SEARCH RETURN (BOGUS) ALL',
                    'SEARCH LARGER x', 'SEARCH', 'SEARCH UID x'):
            _, tagged = self.raw(m, bad)
            self.assertEqual(tagged.split()[1], 'BAD', '%s: %s'
                             % (bad, tagged))
        _, tagged = self.raw(m, 'SEARCH CHARSET KOI8-R TEXT x')
        self.assertIn(' NO [BADCHARSET (UTF-8 US-ASCII)]', tagged)
        # Not selected: refused, the session goes on.
        m2 = self.connect(select=False)
        _, tagged = self.raw(m2, 'SEARCH ALL')
        self.assertIn(tagged.split()[1], ('BAD', 'NO'), tagged)
        self.assertEqual(self.search(m, 'SEEN'), [1])


class ImapSearchBenchTest(unittest.TestCase):
    """SEARCH TEXT over 2,000 messages: one index query, well under a
    second (the issue's bench runs 10,000 against Dovecot)."""
    COUNT = 2000

    def test_search_text_many(self):
        inst = Instance()
        self.addCleanup(inst.cleanup)
        user = 'many@' + DOMAIN
        password = inst.add_user(user)
        work = tempfile.mkdtemp(prefix='test-imap-search-bench.')
        path = os.path.join(work, 'many.mbox')
        msgs = []
        for i in range(self.COUNT):
            word = 'needle%d' % i if i % 100 == 7 else 'hay'
            msgs.append((['From: s%d@example.net' % i,
                          'Subject: message %d' % i,
                          'Message-ID: <b%d@example.net>' % i],
                         'Body %d has %s inside it.\nAnd more text.' %
                         (i, word), 'O', '', [], 1700000000 + i))
        with open(path, 'w') as f:
            f.write(mbox_of(msgs))
        r = inst.marmot(['import', user, '--mbox', path], timeout=600)
        os.unlink(path)
        os.rmdir(work)
        self.assertEqual(r.returncode, 0, r.stderr)
        inst.start()
        inst.wait_all_ports()
        m = harness.imap_login(self, inst, inst.ssl_context(), user,
                               password, timeout=60)
        typ, data = m.select('INBOX')
        self.assertEqual(data, [str(self.COUNT).encode()])
        start = time.monotonic()
        typ, data = m.search(None, 'TEXT', 'needle')
        elapsed = time.monotonic() - start
        self.assertEqual(typ, 'OK', data)
        want = [i + 1 for i in range(self.COUNT) if i % 100 == 7]
        self.assertEqual([int(x) for x in data[0].split()], want)
        start2 = time.monotonic()
        typ, data = m.search(None, 'UNSEEN', 'BODY', 'eedle1')
        elapsed2 = time.monotonic() - start2
        self.assertEqual([int(x) for x in data[0].split()],
                         [i + 1 for i in range(self.COUNT)
                          if i % 100 == 7 and str(i).startswith('1')])
        harness.note('SEARCH TEXT over %d messages: %.1f ms; UNSEEN BODY: '
                     '%.1f ms' % (self.COUNT, elapsed * 1000,
                                  elapsed2 * 1000))
        self.assertLess(elapsed, 2.0)
