"""IMAP NOTIFY (RFC 5465) with Python's imaplib, two sessions of one
account: the first asks with NOTIFY SET for events of mailboxes other
than the one it has selected, the second APPENDs, flags, expunges,
creates, renames, deletes and (un)subscribes; the first hears each as an
untagged STATUS (5.1-5.3) or LIST (5.4-5.5) within 1 s, in IDLE and also
between commands with no command of its own running (section 4), and at
a NOOP. NOTIFY SET STATUS sends the initial STATUS (section 3), HIGHEST-
MODSEQ is in it once CONDSTORE is enabled, NOTIFY NONE stops it all,
(SELECTED NONE) silences the selected mailbox while (SELECTED ...) pushes
its EXISTS without a command, MessageNew's fetch attributes bring the
new message's FETCH data after EXISTS (5.2), unsupported events are NO [BADEVENT] and
bad event lists BAD, and mail over SMTP (port 25, smtplib) raises a
STATUS for INBOX while another mailbox is selected.

The responses are read off the socket line by line (imaplib has no API
for unsolicited data), with a deadline for every wait."""

import re
import smtplib
import socket
import time
import unittest

import harness
from harness import DOMAIN, LOOPBACK
from smtp_util import MailInstance

REMOTE = 'remote.test'
ALL_EVENTS = ('(PERSONAL (MessageNew MessageExpunge FlagChange MailboxName '
              'SubscriptionChange))')


def message(n):
    return ('From: Bob <bob@example.net>\r\n'
            'To: alice@%s\r\n'
            'Subject: notify %d\r\n'
            'Message-ID: <notify%d.%f@example.net>\r\n'
            '\r\n'
            'Body %d.\r\n' % (DOMAIN, n, n, time.time(), n)).encode()


class ImapNotifyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.user = 'alice@' + DOMAIN
        cls.mi = MailInstance((cls.user,))
        cls.inst = cls.mi.inst
        cls.inst.wait_port('imaps')
        cls.password = cls.mi.passwords[cls.user]
        cls.ctx = cls.inst.ssl_context()

    @classmethod
    def tearDownClass(cls):
        cls.mi.cleanup()

    def setUp(self):
        harness.dump_log_on_failure(self, self.inst)
        self.buffers = {}

    # -- helpers --

    def connect(self):
        return harness.imap_login(self, self.inst, self.ctx, self.user,
                                  self.password)

    def read_line(self, m, timeout):
        """One response line (literals appended), or None on timeout.
        Reads the socket itself: imaplib's file object is unusable after
        a timeout."""
        buf = self.buffers.setdefault(id(m), bytearray())
        deadline = time.monotonic() + timeout
        need = None  # octets of a literal still to come
        while True:
            end = buf.find(b'\r\n') if need is None else -1
            if need is not None and len(buf) >= need:
                end = buf.find(b'\r\n', need)
            if end >= 0:
                line = bytes(buf[:end])
                lit = re.search(rb'\{(\d+)\}$', line)
                if lit and need is None:
                    need = end + 2 + int(lit.group(1))
                    continue
                del buf[:end + 2]
                return line.decode('utf-8', 'replace')
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            m.sock.settimeout(left)
            try:
                data = m.sock.recv(65536)
            except (TimeoutError, socket.timeout):
                return None
            self.assertTrue(data, 'connection closed')
            buf += data

    def command(self, m, text):
        """Sends a command; returns (untagged lines, tagged line)."""
        tag = m._new_tag().decode()
        m.send(('%s %s\r\n' % (tag, text)).encode())
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.read_line(m, deadline - time.monotonic())
            self.assertIsNotNone(line, 'no answer to %s' % text)
            if line.startswith(tag + ' '):
                return lines, line
            lines.append(line)
        self.fail('no answer to %s' % text)

    def ok(self, m, text):
        lines, tagged = self.command(m, text)
        self.assertRegex(tagged, r'^\S+ OK', '%s: %s' % (text, tagged))
        return lines

    def expect(self, m, pattern, timeout=1.0, what=''):
        """Reads lines until one matches pattern within timeout; returns
        (line, seconds waited, lines before it)."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            line = self.read_line(m, left) if left > 0 else None
            if line is None:
                self.fail('%s: no line matching %r within %.1f s; got %r'
                          % (what, pattern, timeout, seen))
            if re.search(pattern, line):
                return line, time.monotonic() - t0, seen
            seen.append(line)

    def drain(self, m, seconds):
        """Every line that comes within seconds."""
        lines = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            line = self.read_line(m, left) if left > 0 else None
            if line is None:
                return lines
            lines.append(line)

    def silent(self, m, seconds, what=''):
        line = self.read_line(m, seconds)
        self.assertIsNone(line, '%s: unexpected %r' % (what, line))

    def idle(self, m):
        tag = m._new_tag().decode()
        m.send(('%s IDLE\r\n' % tag).encode())
        line = self.read_line(m, 5)
        self.assertTrue(line is not None and line.startswith('+'), line)
        return tag

    def done(self, m, tag):
        m.send(b'DONE\r\n')
        line, _, _ = self.expect(m, r'^%s ' % tag, 5, 'DONE')
        self.assertRegex(line, r'^\S+ OK', line)

    def append(self, m, mailbox, n):
        data = message(n)
        tag = m._new_tag().decode()
        m.send(('%s APPEND %s {%d+}\r\n' % (tag, mailbox, len(data)))
               .encode() + data + b'\r\n')
        line, _, _ = self.expect(m, r'^%s ' % tag, 20, 'APPEND')
        self.assertRegex(line, r'^\S+ OK', line)

    def status(self, m, mailbox):
        lines = self.ok(m, 'STATUS %s (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)' % mailbox)
        st = [ln for ln in lines if ln.startswith('* STATUS')]
        self.assertEqual(len(st), 1, lines)
        return st[0]

    @staticmethod
    def status_re(mailbox, messages=None, unseen=None):
        r = r'^\* STATUS "?%s"? \(MESSAGES ' % re.escape(mailbox)
        r += r'\d+' if messages is None else '%d' % messages
        r += r' UIDNEXT \d+ UIDVALIDITY \d+ UNSEEN '
        r += r'\d+' if unseen is None else '%d' % unseen
        return r

    # -- tests --

    def test_1_capability_and_errors(self):
        a = self.connect()
        lines = self.ok(a, 'CAPABILITY')
        self.assertIn(' NOTIFY', lines[0])
        # RFC 5465 3, 5.6-5.7: events we do not support: NO [BADEVENT
        # (the supported ones)].
        _, tagged = self.command(a, 'NOTIFY SET (PERSONAL (MailboxMetadata))')
        self.assertRegex(tagged, r'^\S+ NO \[BADEVENT \(MessageNew '
                         r'MessageExpunge FlagChange AnnotationChange '
                         r'MailboxName SubscriptionChange\)\]')
        _, tagged = self.command(a, 'NOTIFY SET (PERSONAL (ServerMetadata))')
        self.assertRegex(tagged, r'^\S+ NO \[BADEVENT ')
        _, tagged = self.command(a, 'NOTIFY SET (INBOXES (Nonsense))')
        self.assertRegex(tagged, r'^\S+ NO \[BADEVENT ')
        # RFC 5465 5: MessageNew needs MessageExpunge.
        _, tagged = self.command(a, 'NOTIFY SET (PERSONAL (MessageNew))')
        self.assertRegex(tagged, r'^\S+ BAD ')
        _, tagged = self.command(a, 'NOTIFY SET (SELECTED (MailboxName))')
        self.assertRegex(tagged, r'^\S+ BAD ')
        _, tagged = self.command(a, 'NOTIFY FROB')
        self.assertRegex(tagged, r'^\S+ BAD ')
        self.ok(a, 'NOTIFY SET (PERSONAL (MessageNew MessageExpunge '
                   'AnnotationChange FlagChange))')
        self.ok(a, 'NOTIFY NONE')

    def test_2_idle_hears_other_mailboxes(self):
        a = self.connect()
        b = self.connect()
        self.ok(b, 'CREATE Sel2')
        self.ok(b, 'CREATE Work2')
        self.ok(a, 'SELECT Sel2')
        self.ok(a, 'NOTIFY SET (SELECTED (MessageNew MessageExpunge)) '
                + ALL_EVENTS)
        tag = self.idle(a)
        times = []

        # MessageNew (RFC 5465 5.2).
        self.append(b, 'Work2', 1)
        line, t, _ = self.expect(a, self.status_re('Work2', 1, 1), 1.0,
                                 'APPEND')
        times.append(t)
        self.assertEqual(line, self.status(b, 'Work2'))
        # FlagChange (5.1).
        self.ok(b, 'SELECT Work2')
        self.ok(b, 'STORE 1 +FLAGS (\\Seen)')
        _, t, _ = self.expect(a, self.status_re('Work2', 1, 0), 1.0, 'STORE')
        times.append(t)
        # MessageExpunge (5.3).
        self.ok(b, 'STORE 1 +FLAGS.SILENT (\\Deleted)')
        self.ok(b, 'EXPUNGE')
        _, t, _ = self.expect(a, self.status_re('Work2', 0, 0), 1.0,
                              'EXPUNGE')
        times.append(t)
        self.ok(b, 'CLOSE')
        # MailboxName (5.4): created, renamed (OLDNAME), deleted.
        self.ok(b, 'CREATE New2')
        _, t, _ = self.expect(a, r'^\* LIST \(\\HasNoChildren\) "/" "?New2"?$', 1.0,
                              'CREATE')
        times.append(t)
        self.ok(b, 'RENAME New2 Newer2')
        _, t, _ = self.expect(
            a, r'^\* LIST \(\\HasNoChildren\) "/" "?Newer2"? '
            r'\("OLDNAME" \("?New2"?\)\)$',
            1.0, 'RENAME')
        times.append(t)
        # SubscriptionChange (5.5).
        self.ok(b, 'SUBSCRIBE Newer2')
        _, t, _ = self.expect(a, r'^\* LIST \(\\HasNoChildren \\Subscribed\) '
                              r'"/" "?Newer2"?$',
                              1.0, 'SUBSCRIBE')
        times.append(t)
        self.ok(b, 'UNSUBSCRIBE Newer2')
        _, t, _ = self.expect(a, r'^\* LIST \(\\HasNoChildren\) "/" '
                              r'"?Newer2"?$', 1.0,
                              'UNSUBSCRIBE')
        times.append(t)
        self.ok(b, 'DELETE Newer2')
        _, t, _ = self.expect(a, r'^\* LIST \(\\NonExistent\) "/" "?Newer2"?$',
                              1.0, 'DELETE')
        times.append(t)
        # Changes to the selected mailbox are EXISTS, not STATUS.
        self.append(b, 'Sel2', 2)
        line, _, seen = self.expect(a, r'^\* \d+ EXISTS$', 1.0, 'selected')
        self.assertEqual(line, '* 1 EXISTS')
        self.assertFalse([s for s in seen if 'STATUS' in s], seen)
        self.done(a, tag)
        harness.note('NOTIFY in IDLE: slowest notification %.0f ms'
                     % (max(times) * 1000))

    def test_3_between_commands_and_noop(self):
        a = self.connect()
        b = self.connect()
        self.ok(b, 'CREATE Work3')
        self.ok(a, 'NOTIFY SET ' + ALL_EVENTS)
        # No command running: pushed (RFC 5465 4).
        self.append(b, 'Work3', 1)
        self.expect(a, self.status_re('Work3', 1, 1), 1.0, 'unsolicited')
        # At a NOOP (whether pushed just before it or in its answer).
        self.append(b, 'Work3', 2)
        lines, tagged = self.command(a, 'NOOP')
        lines += [ln for ln in [self.read_line(a, 1.0)] if ln]
        self.assertTrue([ln for ln in lines
                         if re.search(self.status_re('Work3', 2, 2), ln)],
                        lines)
        # NOTIFY NONE: nothing more.
        self.ok(a, 'NOTIFY NONE')
        self.append(b, 'Work3', 3)
        self.ok(b, 'CREATE Quiet3')
        self.silent(a, 1.0, 'after NOTIFY NONE')
        lines = self.ok(a, 'NOOP')
        self.assertEqual(lines, [])
        tag = self.idle(a)
        self.append(b, 'Work3', 4)
        self.silent(a, 1.0, 'IDLE after NOTIFY NONE')
        self.done(a, tag)

    def test_4_set_status_and_condstore(self):
        a = self.connect()
        b = self.connect()
        self.ok(b, 'CREATE Lists4')
        self.ok(b, 'CREATE Lists4/one')
        self.ok(b, 'CREATE Other4')
        self.append(b, 'Lists4/one', 1)
        self.ok(a, 'SELECT Lists4')
        # RFC 5465 3: STATUS for every matched mailbox except the
        # selected one, before the OK.
        lines = self.ok(a, 'NOTIFY SET STATUS (SUBTREE Lists4 '
                           '(MessageNew MessageExpunge))')
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], self.status_re('Lists4/one', 1, 1))
        # Other4 is not watched; Lists4/one is.
        self.append(b, 'Other4', 1)
        self.silent(a, 0.7, 'unwatched mailbox')
        # CONDSTORE (RFC 7162 3.1.6): HIGHESTMODSEQ too.
        self.ok(a, 'ENABLE CONDSTORE')
        self.append(b, 'Lists4/one', 2)
        line, _, _ = self.expect(a, self.status_re('Lists4/one', 2, 2),
                                 1.0, 'CONDSTORE')
        self.assertRegex(line, r' HIGHESTMODSEQ \d+\)$')
        # Flag changes were not asked for.
        self.ok(b, 'SELECT Lists4/one')
        self.ok(b, 'STORE 1 +FLAGS (\\Seen)')
        self.silent(a, 0.7, 'FlagChange not asked for')

    def test_5_selected_filters(self):
        a = self.connect()
        b = self.connect()
        self.ok(b, 'CREATE Sel5')
        self.ok(a, 'SELECT Sel5')
        # No SELECTED group (RFC 5465 3.1: the same as SELECTED NONE):
        # nothing about the selected mailbox, in IDLE neither (4).
        self.ok(a, 'NOTIFY SET ' + ALL_EVENTS)
        tag = self.idle(a)
        self.append(b, 'Sel5', 1)
        self.silent(a, 0.7, 'no SELECTED group, IDLE')
        self.done(a, tag)
        lines = self.ok(a, 'NOOP')
        self.assertFalse([ln for ln in lines if 'EXISTS' in ln], lines)
        # (SELECTED NONE): the same. NOTIFY SET is an implicit NOOP
        # (3.1): the message held back comes with it.
        lines = self.ok(a, 'NOTIFY SET (SELECTED NONE) ' + ALL_EVENTS)
        self.assertIn('* 1 EXISTS', lines)
        self.append(b, 'Sel5', 11)
        self.silent(a, 0.7, 'SELECTED NONE')
        lines = self.ok(a, 'NOOP')
        self.assertFalse([ln for ln in lines if 'EXISTS' in ln], lines)
        # (SELECTED ...): EXISTS pushed with no command running.
        lines = self.ok(a, 'NOTIFY SET (SELECTED (MessageNew MessageExpunge '
                           'FlagChange)) ' + ALL_EVENTS)
        self.assertIn('* 2 EXISTS', lines)
        self.append(b, 'Sel5', 2)
        line, _, _ = self.expect(a, r'^\* \d+ EXISTS$', 1.0, 'SELECTED')
        self.assertEqual(line, '* 3 EXISTS')
        # SELECTED-DELAYED: the expunge waits for a command.
        self.ok(a, 'NOTIFY SET (SELECTED-DELAYED (MessageNew '
                   'MessageExpunge))')
        self.ok(b, 'SELECT Sel5')
        self.ok(b, 'STORE 1 +FLAGS.SILENT (\\Deleted)')
        self.ok(b, 'EXPUNGE')
        pushed = self.drain(a, 0.7)
        self.assertFalse([ln for ln in pushed if 'EXPUNGE' in ln], pushed)
        lines = self.ok(a, 'NOOP')
        self.assertIn('* 1 EXPUNGE', lines)

    def test_8_own_changes_not_echoed(self):
        a = self.connect()
        b = self.connect()
        self.ok(a, 'NOTIFY SET ' + ALL_EVENTS)
        # RFC 5465 5: nothing about this session's own CREATE, RENAME,
        # SUBSCRIBE or DELETE...
        lines = self.ok(a, 'CREATE Own8')
        lines += self.ok(a, 'RENAME Own8 Own8b')
        lines += self.ok(a, 'SUBSCRIBE Own8b')
        lines += self.ok(a, 'DELETE Own8b')
        lines += self.drain(a, 0.7)
        self.assertEqual(lines, [])
        # ... while another session's still are.
        self.ok(b, 'CREATE Theirs8')
        self.expect(a, r'^\* LIST \(\\HasNoChildren\) "/" "?Theirs8"?$', 1.0,
                    'CREATE')
        # RFC 5465 5.4: a created or deleted mailbox's parent is
        # affected too: its LIST with \HasChildren now, or no longer.
        def parent_and_kid(command):
            self.ok(b, command)
            got = sorted(self.expect(a, pattern, 1.0, command)[0]
                         for pattern in (r'^\* LIST .*Theirs8/kid',
                                         r'^\* LIST .*Theirs8"?$'))
            return [re.sub(r'"', '', g) for g in got]

        self.assertEqual(parent_and_kid('CREATE Theirs8/kid'),
                         [r'* LIST (\HasChildren) / Theirs8',
                          r'* LIST (\HasNoChildren) / Theirs8/kid'])
        self.assertEqual(parent_and_kid('DELETE Theirs8/kid'),
                         [r'* LIST (\HasNoChildren) / Theirs8',
                          r'* LIST (\NonExistent) / Theirs8/kid'])

    def test_7_message_new_fetch_attributes(self):
        a = self.connect()
        b = self.connect()
        self.ok(b, 'CREATE Sel7')
        self.append(b, 'Sel7', 1)
        self.ok(a, 'SELECT Sel7')
        # RFC 5465 5.2: the new message's data comes after EXISTS.
        self.ok(a, 'NOTIFY SET (SELECTED (MessageNew (UID '
                   'BODY[HEADER.FIELDS (SUBJECT)]) MessageExpunge))')
        tag = self.idle(a)
        self.append(b, 'Sel7', 7)
        line, _, _ = self.expect(a, r'^\* \d+ EXISTS$', 1.0, 'EXISTS')
        self.assertEqual(line, '* 2 EXISTS')
        line, _, _ = self.expect(a, r'^\* 2 FETCH ', 1.0, 'FETCH')
        self.assertRegex(line, r'^\* 2 FETCH \(UID 2 BODY\[HEADER\.FIELDS '
                         r'\(SUBJECT\)\] \{\d+\}\r\nSubject: notify 7\r\n'
                         r'\r\n\)$')
        self.done(a, tag)
        # Offered, not read: no \Seen.
        self.ok(b, 'SELECT Sel7')
        lines = self.ok(b, 'FETCH 2 (FLAGS)')
        self.assertEqual(lines, ['* 2 FETCH (FLAGS ())'])
        # Bad fetch attributes are BAD.
        _, tagged = self.command(a, 'NOTIFY SET (SELECTED (MessageNew '
                                    '(NOSUCHITEM) MessageExpunge))')
        self.assertRegex(tagged, r'^\S+ BAD ')

    def test_6_smtp_delivery_raises_inbox_status(self):
        a = self.connect()
        self.ok(a, 'CREATE Elsewhere6')
        self.ok(a, 'SELECT Elsewhere6')
        self.ok(a, 'NOTIFY SET (INBOXES (MessageNew MessageExpunge))')
        before = self.status(a, 'INBOX')
        count = int(re.search(r'MESSAGES (\d+)', before).group(1))
        tag = self.idle(a)
        with smtplib.SMTP(LOOPBACK, self.inst.ports['smtp'],
                          local_hostname='client.' + REMOTE,
                          timeout=20) as s:
            s.sendmail('sender@' + REMOTE, [self.user], message(6))
        accepted = time.monotonic()
        line, _, _ = self.expect(a, self.status_re('INBOX', count + 1), 5.0,
                                 'SMTP delivery')
        heard = time.monotonic() - accepted
        harness.note('NOTIFY: STATUS INBOX %.0f ms after SMTP accepted the '
                     'message' % (heard * 1000))
        self.assertLess(heard, 1.0)
        self.done(a, tag)


if __name__ == '__main__':
    unittest.main()
