"""A selected mailbox changed by another session of the same account, with
two imaplib sessions (src/front/imap-session.c, imap_session_sync):

- DELETE by another session: the session that has it selected gets an
  untagged BYE at its next sync point (NOOP, or at once in IDLE) and the
  connection closes (RFC 2180 3.3, RFC 9051 7.1.5; what Dovecot does),
  so the client cannot go on believing the mailbox is selected; the
  deleting session and new sessions go on without errors;
- RENAME by another session: the mailbox stays selected under its new
  name with the same UIDVALIDITY (RFC 9051 6.3.6); new mail in it is
  reported and fetched, and the session can SELECT it again by the new
  name."""

import imaplib
import time
import unittest

import harness
from harness import DOMAIN


def message(subject):
    return (b'From: Bob <bob@example.net>\r\n'
            b'To: alice@' + DOMAIN.encode() + b'\r\n'
            b'Subject: ' + subject.encode() + b'\r\n'
            b'\r\n'
            b'Body.\r\n')


class SelectedMailboxTest(harness.ImapAccountCase):
    def ok(self, answer):
        typ, data = answer
        self.assertEqual(typ, 'OK', data)
        return data

    def mailbox_with_mail(self, m, name):
        self.ok(m.create(name))
        self.ok(m.append(name, None, None, message('first')))
        self.ok(m.append(name, None, None, message('second')))

    def read_line(self, m, timeout=10.0):
        """One line from an imaplib session (bounded wait); b'' at EOF."""
        m.sock.settimeout(timeout)
        try:
            return m.readline()
        except TimeoutError:
            self.fail('no line within %.0f s' % timeout)
        except (OSError, imaplib.IMAP4.abort):
            return b''

    def test_delete_selected_noop(self):
        a = self.connect()
        b = self.connect()
        self.mailbox_with_mail(b, 'Doomed')
        self.assertEqual(self.ok(a.select('Doomed')), [b'2'])
        self.ok(b.delete('Doomed'))
        # a's next command: BYE (imaplib raises abort on it), then EOF.
        with self.assertRaises(imaplib.IMAP4.abort) as cm:
            a.noop()
        self.assertIn('deleted', str(cm.exception))
        with self.assertRaises((imaplib.IMAP4.abort, OSError)):
            a.noop()
        # The deleting session, and a new one, see no errors.
        self.ok(b.noop())
        self.assertEqual(self.ok(b.select('INBOX'))[0], b'0')
        self.ok(b.list())
        c = self.connect()
        self.ok(c.select('INBOX'))
        typ, data = c.status('Doomed', '(MESSAGES)')
        self.assertEqual(typ, 'NO', data)
        # The same name again is a new mailbox: a fresh session uses it.
        self.ok(b.create('Doomed'))
        self.assertEqual(self.ok(c.select('Doomed')), [b'0'])

    def test_delete_selected_idle(self):
        a = self.connect()
        b = self.connect()
        self.mailbox_with_mail(b, 'Idled')
        self.ok(a.select('Idled'))
        tag = a._new_tag()
        a.send(tag + b' IDLE\r\n')
        self.assertTrue(self.read_line(a).startswith(b'+'))
        start = time.monotonic()
        self.ok(b.delete('Idled'))
        line = self.read_line(a)
        self.assertTrue(line.startswith(b'* BYE '), line)
        self.assertIn(b'deleted', line)
        harness.note('BYE %.3f s after the DELETE'
                     % (time.monotonic() - start))
        # Then the server closes the connection.
        self.assertEqual(self.read_line(a), b'')
        self.ok(b.noop())

    def test_rename_selected(self):
        a = self.connect()
        b = self.connect()
        self.mailbox_with_mail(b, 'Before')
        self.assertEqual(self.ok(a.select('Before')), [b'2'])
        uidvalidity = a.untagged_responses['UIDVALIDITY'][-1]
        self.ok(b.rename('Before', 'After'))
        self.ok(b.append('After', None, None, message('third')))
        # Still selected: NOOP reports the new message, FETCH reads it.
        a.untagged_responses.clear()
        self.ok(a.noop())
        self.assertEqual(a.untagged_responses.get('EXISTS'), [b'3'])
        data = self.ok(a.fetch('3', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])'))
        self.assertIn(b'Subject: third', data[0][1])
        self.ok(a.store('1', '+FLAGS', '(\\Seen)'))
        # Same UIDVALIDITY under the new name (RFC 9051 6.3.6).
        data = self.ok(b.status('After', '(UIDVALIDITY MESSAGES)'))
        self.assertIn(b'UIDVALIDITY ' + uidvalidity, data[0])
        self.assertIn(b'MESSAGES 3', data[0])
        typ, data = a.status('Before', '(MESSAGES)')
        self.assertEqual(typ, 'NO', data)
        # a follows the new name: renaming it again from a works, and it
        # stays selected (a's own RENAME of its selected mailbox).
        self.ok(a.rename('After', 'Later'))
        self.ok(a.noop())
        data = self.ok(a.fetch('1', '(FLAGS)'))
        self.assertIn(b'\\Seen', data[0])
        self.assertEqual(self.ok(a.select('Later')), [b'3'])
        self.assertEqual(a.untagged_responses['UIDVALIDITY'][-1],
                         uidvalidity)


if __name__ == '__main__':
    unittest.main()
