"""SMTP smuggling (issue 4, "Must show"): end-of-data variants that some
servers take for the end of DATA (bare LF, bare CR, "\\n.\\n", "\\r.\\r",
"\\n.\\r\\n", ...), each followed in the same stream by a second, smuggled
transaction (MAIL FROM, RCPT TO:<victim+CASE@...>, DATA, a message, the
true <CRLF>.<CRLF>), over DATA and over BDAT (RFC 3030: the chunk holds
the variant, and BDAT has no end-of-data marker at all), each also split
across two TCP segments (DATA) or two chunks (BDAT) in the middle of the
variant; on port 25 and on 587 after STARTTLS and AUTH; all sent from
127.0.0.2.

RFC 5321 4.1.1.4: the mail data ends only at <CRLF>.<CRLF>; 2.3.8:
CR and LF appear only together as CRLF. The server may reject a message
with a bare CR or LF or normalise it, but nothing in it may start a
second transaction. Pass criteria:
  * the victim account holds 0 messages and its spool is empty at the end
    (every smuggled RCPT goes to it; the outer messages go to alice),
    whatever the headers of a stored message say;
  * after the data (and QUIT) the server sends exactly one reply to the
    message (and one per non-final BDAT chunk) and the 221: never a 354
    or a reply to a smuggled command;
  * every outer message acknowledged with 250 is stored, once, in alice's
    mailbox; the dot-stuffed "\\r\\n..\\r\\n" (not an end, and clean) is
    accepted and stored unstuffed; in BDAT the true "\\r\\n.\\r\\n" and
    "\\r\\n..\\r\\n" are plain data, accepted and stored byte for byte.
Control: a true <CRLF>.<CRLF> followed by a pipelined second transaction
(DATA: MAIL, RCPT, DATA in the same segment as the end of the first
message; BDAT: both transactions in one segment) is accepted and both
messages are stored: the first in bob's mailbox, the second in carol's.

"\\r\\r\\n.\\r\\n" is not among the variants: it contains the true
<CRLF>.<CRLF> (after a bare CR), which every conforming sender would
dot-stuff, so it is the end of the data for everyone on the path and the
commands after it are a genuine pipelined transaction; the variant
"\\r\\n\\r.\\r\\n" takes its place."""

import re
import time
import unittest

import harness
from harness import DOMAIN
from smtp_util import MailCase, OTHER_SOURCE, SmtpClient, strip_trace

ALICE = 'alice@' + DOMAIN
BOB = 'bob@' + DOMAIN
CAROL = 'carol@' + DOMAIN
VICTIM = 'victim@' + DOMAIN

# (name, variant): the bytes between the outer message's last text and the
# smuggled MAIL FROM. "start" variants come first in the data, right after
# the CRLF of the DATA command line.
VARIANTS = [
    ('lf-dot-lf', b'\n.\n'),
    ('cr-dot-cr', b'\r.\r'),
    ('lf-dot-crlf', b'\n.\r\n'),
    ('crlf-dot-lf', b'\r\n.\n'),
    ('cr-dot-crlf', b'\r.\r\n'),
    ('crlf-dot-cr', b'\r\n.\r'),
    ('lf-dot-cr', b'\n.\r'),
    ('cr-dot-lf', b'\r.\n'),
    ('crlf-nul-dot-crlf', b'\r\n\x00.\r\n'),
    ('crlf-dot-nul-crlf', b'\r\n.\x00\r\n'),
    ('crlf-dot-cr-crlf', b'\r\n.\r\r\n'),
    ('crlf-dot-lf-crlf', b'\r\n.\n\r\n'),
    ('crlf-cr-dot-crlf', b'\r\n\r.\r\n'),
    ('crlf-sp-dot-crlf', b'\r\n .\r\n'),
    ('crlf-dot-sp-crlf', b'\r\n. \r\n'),
    ('lf-lf-dot-lf-lf', b'\n\n.\n\n'),
    ('crlf-dot-lf-lf', b'\r\n.\n\n'),
    ('crlf-stuffed-dot-crlf', b'\r\n..\r\n'),  # a dot-stuffed line "."
    ('start-dot-lf', b'.\n'),
    ('start-dot-cr', b'.\r'),
    ('start-lf-dot-lf', b'\n.\n'),
]
START = 'start-'
# In BDAT there is no end marker: the true one is plain data there.
BDAT_ONLY = [('bdat-crlf-dot-crlf', b'\r\n.\r\n')]

PORTS = ('smtp', 'submission')
MODES = ('data', 'data-split', 'bdat', 'bdat-split')
# Bounded waits: a server that waits for more data fails within this.
REPLY_TIMEOUT = 6.0


def has_bare(data):
    """True if data holds a CR or LF that is not part of a CRLF."""
    stripped = data.replace(b'\r\n', b'')
    return b'\r' in stripped or b'\n' in stripped


def outer_text(case, sender):
    return ('From: %s\r\n'
            'To: %s\r\n'
            'Subject: outer %s\r\n'
            'Message-ID: <outer.%s@smuggle.test>\r\n'
            '\r\n'
            'First line of the outer message %s.\r\n'
            'last text' % (sender, ALICE, case, case, case)).encode()


def smuggled_text(case, sender):
    """The smuggled transaction, up to and including the true end."""
    return ('MAIL FROM:<%s>\r\n'
            'RCPT TO:<victim+%s@%s>\r\n'
            'DATA\r\n'
            'From: %s\r\n'
            'To: %s\r\n'
            'Subject: SMUGGLED-%s\r\n'
            'Message-ID: <smuggled.%s@evil.test>\r\n'
            '\r\n'
            'SMUGGLED-%s\r\n'
            '.\r\n' % (sender, case, DOMAIN, sender, VICTIM, case, case,
                       case)).encode()


def dot_unstuff(data):
    """What the server must store from DATA bytes (RFC 5321 4.5.2): a
    leading dot of each line removed (the end marker excluded)."""
    lines = data.split(b'\r\n')
    return b'\r\n'.join(line[1:] if line.startswith(b'.') else line
                        for line in lines)


class SmugglingTest(MailCase):
    ACCOUNTS = (ALICE, BOB, CAROL, VICTIM)
    # alice submits about 90 messages on 587 here.
    CONF = (('submission_rate_limit', '0'),)

    def session(self, port):
        """An EHLO'd session from 127.0.0.2: plain on 25, STARTTLS and
        AUTH on 587. Returns (client, MAIL FROM address, EHLO keywords)."""
        c = SmtpClient(self.inst.ports[port], source=OTHER_SOURCE,
                       timeout=REPLY_TIMEOUT)
        self.addCleanup(c.close)
        kw = c.greet_ehlo()
        if port == 'submission':
            kw = c.starttls_ehlo(self.ctx)
            c.auth_plain(ALICE, self.mi.passwords[ALICE])
            return c, ALICE, kw
        return c, 'x@evil.test', kw

    def run_case(self, port, mode, name, variant):
        """One session; returns (outcome, problems, outer bytes as the
        server must store them or None if not determined)."""
        case = '%s.%s.%s' % (port, mode, name)
        c, sender, kw = self.session(port)
        if mode.startswith('bdat') and 'CHUNKING' not in kw:
            return 'no CHUNKING', ['EHLO does not offer CHUNKING: %r'
                                   % kw], None
        from_hdr = sender if port == 'submission' else 'x@evil.test'
        outer = b'' if name.startswith(START) else outer_text(case,
                                                              from_hdr)
        smuggled = smuggled_text(case, sender)
        payload = outer + variant + smuggled
        c.cmd('MAIL FROM:<%s>' % sender)
        c.expect(250, '%s: MAIL FROM' % case)
        c.cmd('RCPT TO:<%s>' % ALICE)
        c.expect(250, '%s: RCPT TO' % case)
        split = len(outer) + max(1, len(variant) // 2)
        expected_replies = 1
        if mode.startswith('data'):
            c.cmd('DATA')
            c.expect(354, '%s: DATA' % case)
            if mode == 'data-split':
                c.send(payload[:split])
                time.sleep(0.05)
                c.send(payload[split:] + b'QUIT\r\n')
            else:
                c.send(payload + b'QUIT\r\n')
            # What a correct server stores: everything up to the true end.
            stored = dot_unstuff(payload[:-len(b'.\r\n')])
        elif mode == 'bdat':
            c.send(b'BDAT %d LAST\r\n' % len(payload) + payload +
                   b'QUIT\r\n')
            stored = payload
        else:
            one, two = payload[:split], payload[split:]
            c.send(b'BDAT %d\r\n' % len(one) + one)
            time.sleep(0.05)
            c.send(b'BDAT %d LAST\r\n' % len(two) + two + b'QUIT\r\n')
            expected_replies = 2
            stored = payload
        replies = c.replies_until_close()
        problems = []
        codes = [int(r[-1][:3]) for r in replies]
        if 354 in codes:
            problems.append('a 354 after the data: a smuggled DATA was '
                            'accepted; replies %r' % replies)
        closing = codes[expected_replies:]
        if len(codes) < expected_replies:
            problems.append('expected %d replies to the data, got %r'
                            % (expected_replies, replies))
        elif closing not in ([221], []):
            problems.append('replies after the message reply: %r (only '
                            'the 221 to QUIT may follow); all: %r'
                            % (closing, replies))
        elif closing == [] and codes[expected_replies - 1] < 400:
            problems.append('no 221 after an accepted message: %r'
                            % replies)
        final = codes[expected_replies - 1] if len(codes) >= \
            expected_replies else None
        if mode == 'bdat-split' and codes and codes[0] != 250 and \
                final == 250:
            problems.append('first chunk refused, message accepted: %r'
                            % replies)
        if problems:
            problems = ['%s: %s\ntranscript:\n%s' % (case, p, c.show())
                        for p in problems]
        outcome = 'accepted' if final == 250 else ('refused %s' % final)
        return outcome, problems, stored if final == 250 else None

    def test_smuggling_variants(self):
        t0 = time.monotonic()
        problems = []
        accepted = {}  # case -> (bytes the server must store, name)
        outcomes = {}  # (port, mode, name) -> outcome
        sessions = 0
        for port in PORTS:
            for mode in MODES:
                variants = VARIANTS + (BDAT_ONLY if mode.startswith('bdat')
                                       else [])
                for name, variant in variants:
                    sessions += 1
                    outcome, probs, stored = self.run_case(port, mode, name,
                                                           variant)
                    outcomes[(port, mode, name)] = outcome
                    problems.extend(probs)
                    if stored is not None:
                        accepted['%s.%s.%s' % (port, mode, name)] = (
                            stored, name)
        sent = time.monotonic() - t0

        # Clean messages must be accepted, whatever the policy for bare
        # CR and LF is.
        for port in PORTS:
            for mode in MODES:
                names = ['crlf-stuffed-dot-crlf', 'crlf-sp-dot-crlf',
                         'crlf-dot-sp-crlf']
                if mode.startswith('bdat'):
                    names.append('bdat-crlf-dot-crlf')
                for name in names:
                    got = outcomes[(port, mode, name)]
                    if got != 'accepted':
                        problems.append('%s %s %s: a message without bare '
                                        'CR or LF must be accepted, got %s'
                                        % (port, mode, name, got))

        # Every smuggled RCPT went to the victim: its mailbox stays empty.
        self.mi.wait_merged([ALICE, VICTIM], timeout=90.0)
        victim = self.mi.store_list(VICTIM)
        pending = self.mi.spool_pending(VICTIM)
        smuggled_count = len(victim) + (1 if pending else 0)
        if victim or pending:
            problems.append('SMUGGLED messages in the victim account: %r '
                            '(spool pending: %s)' % (victim[:20], pending))

        # Every acknowledged outer message is stored once, as sent.
        rows = self.mi.wait_count(ALICE, len(accepted), timeout=30.0)
        exported = {}
        # Each case's text is marked "SMUGGLED-CASE" (outer messages of
        # the "start" variants have no header of their own).
        markers = {case: re.compile(rb'SMUGGLED-' + re.escape(case.encode())
                                    + rb'[\r\n]') for case in accepted}
        for _folder, data in self.mi.export(ALICE):
            _trace, body = strip_trace(data)
            for case, marker in markers.items():
                if marker.search(body):
                    exported.setdefault(case, []).append(body)
        bare_accepted = []
        for msgid, (want, name) in sorted(accepted.items()):
            got = exported.get(msgid, [])
            if len(got) != 1:
                problems.append('acknowledged %s stored %d times in alice'
                                % (msgid, len(got)))
                continue
                continue
            if has_bare(want):
                # Normalised: not byte-equal; the text must still be
                # one message that holds the smuggled lines as text.
                bare_accepted.append(name)
                if b'SMUGGLED-' not in got[0]:
                    problems.append('%s: the accepted message lost the '
                                    'text after the variant' % msgid)
            elif got[0] != want:
                problems.append('%s: stored bytes differ from the data '
                                'sent (after our trace fields): %r vs %r'
                                % (msgid, got[0][-200:], want[-200:]))
        if len(rows) != len(accepted):
            problems.append('alice holds %d messages, %d were acknowledged'
                            % (len(rows), len(accepted)))

        summary = {}
        for key, outcome in outcomes.items():
            summary.setdefault(outcome, []).append('/'.join(key))
        harness.note('%d sessions from %s (%d variants x %d modes x %d '
                     'ports + BDAT-only) in %.1f s; outer messages '
                     'accepted %d (with bare CR/LF, normalised: %d), '
                     'refused %d; smuggled messages stored: %d'
                     % (sessions, OTHER_SOURCE, len(VARIANTS), len(MODES),
                        len(PORTS), sent, len(accepted),
                        len(bare_accepted), sessions - len(accepted),
                        smuggled_count))
        for outcome, keys in sorted(summary.items()):
            harness.note('%s: %d, e.g. %s' % (outcome, len(keys),
                                              ', '.join(keys[:4])))
        self.assertEqual(problems[:15], [], '%d problems' % len(problems))
        self.assertEqual(smuggled_count, 0)
        self.assertGreaterEqual(len(VARIANTS), 14)

    def test_control_pipelined_second_transaction(self):
        """A true <CRLF>.<CRLF>, then a pipelined second transaction: both
        accepted, both stored (DATA and BDAT, on 25 and 587)."""
        before_bob = len(self.mi.store_list(BOB))
        before_carol = len(self.mi.store_list(CAROL))
        want = {}
        for port in PORTS:
            for mode in ('data', 'bdat'):
                case = 'control.%s.%s' % (port, mode)
                c, sender, kw = self.session(port)
                from_hdr = sender if port == 'submission' else \
                    'x@evil.test'
                first = outer_text(case, from_hdr) + b'\r\n'
                second = ('From: %s\r\nTo: %s\r\nSubject: second %s\r\n'
                          'Message-ID: <second.%s@smuggle.test>\r\n\r\n'
                          'The pipelined second message.\r\n'
                          % (from_hdr, CAROL, case, case)).encode()
                want['<outer.%s@smuggle.test>' % case] = first
                want['<second.%s@smuggle.test>' % case] = second
                c.cmd('MAIL FROM:<%s>' % sender)
                c.expect(250, case + ' MAIL')
                c.cmd('RCPT TO:<%s>' % BOB)
                c.expect(250, case + ' RCPT')
                if mode == 'data':
                    c.cmd('DATA')
                    c.expect(354, case + ' DATA')
                    # RFC 2920 3.1: the end of the data, MAIL, RCPT and
                    # DATA in one group.
                    c.send(first + b'.\r\nMAIL FROM:<%s>\r\n'
                           b'RCPT TO:<%s>\r\nDATA\r\n'
                           % (sender.encode(), CAROL.encode()))
                    c.expect(250, case + ' first message')
                    c.expect(250, case + ' pipelined MAIL')
                    c.expect(250, case + ' pipelined RCPT')
                    c.expect(354, case + ' pipelined DATA')
                    c.send(second + b'.\r\nQUIT\r\n')
                else:
                    self.assertIn('CHUNKING', kw)
                    # RFC 3030 4.2: BDAT may be pipelined.
                    c.send(b'BDAT %d LAST\r\n' % len(first) + first +
                           b'MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n'
                           % (sender.encode(), CAROL.encode()) +
                           b'BDAT %d LAST\r\n' % len(second) + second +
                           b'QUIT\r\n')
                    c.expect(250, case + ' first message')
                    c.expect(250, case + ' pipelined MAIL')
                    c.expect(250, case + ' pipelined RCPT')
                c.expect(250, case + ' second message')
                c.expect(221, case + ' QUIT')
        rows_b = self.mi.wait_count(BOB, before_bob + 4)
        rows_c = self.mi.wait_count(CAROL, before_carol + 4)
        self.assertEqual((len(rows_b), len(rows_c)),
                         (before_bob + 4, before_carol + 4))
        found = {}
        for address in (BOB, CAROL):
            for _folder, data in self.mi.export(address):
                _trace, body = strip_trace(data)
                for msgid, sent in want.items():
                    if ('Message-ID: %s' % msgid).encode() in body:
                        found.setdefault(msgid, []).append(
                            (address, body == sent))
        for msgid in want:
            box = CAROL if msgid.startswith('<second') else BOB
            self.assertEqual(found.get(msgid), [(box, True)],
                             '%s: expected once in %s, byte for byte'
                             % (msgid, box))
        harness.note('control: %d messages accepted and stored byte for '
                     'byte (4 first, 4 pipelined second)' % len(want))


if __name__ == '__main__':
    unittest.main()
