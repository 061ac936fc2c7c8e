"""Open relay (issue 4, "Must show"): address forms that have made mail
servers relay (percent hack, bang paths, quoted local parts holding an
address, source routes, address literals, trailing dots, mixed case,
our own names and addresses, SMTPUTF8, ORCPT pointing elsewhere, ...),
sent without AUTH on port 25 from 127.0.0.2 and from 127.0.0.1 (loopback
earns no trust), some after STARTTLS, some with a local sender or our own
host name in EHLO. Every RCPT that is accepted is completed with DATA.

Pass: 0 accepted for remote delivery. The outbound queue (`marmot queue
list`, and the files under DATA/queue) holds nothing afterwards; every
message that was accepted is stored in a local account (alice, or the
catch-all's target "sink" for catchall.example, a second local domain
with a catch-all: whether the server refuses '%', '!' and quoted local
parts there or delivers them to sink, none is routing anywhere else;
a plain local part there must reach sink, so the catch-all is shown to
work); every plainly remote form is refused
with a permanent 5xx (a 4xx would keep the sender retrying). On 587 and
465 without AUTH, MAIL is refused with 530 5.7.0 (RFC 4954 6) and RCPT
with a 5xx. By contrast, a forward alias of ours to a remote address is
queued: that is our alias, not a relay."""

import time
import unittest

import harness
from harness import DOMAIN, HOSTNAME
from smtp_util import MailCase, OTHER_SOURCE, REMOTE, SmtpClient

ALICE = 'alice@' + DOMAIN
CATCHALL = 'catchall.example'
SINK = 'sink@' + DOMAIN
FWD = 'fwd@' + DOMAIN
FWD_TARGET = 'someone@elsewhere.test'
L, C, R = DOMAIN, CATCHALL, REMOTE

# (RCPT TO argument as sent, plainly remote?, options). Options: 'utf8'
# sends MAIL FROM ... SMTPUTF8, 'lo' connects from 127.0.0.1, 'tls' does
# STARTTLS first, 'helo' says EHLO with our own host name, 'local-from'
# uses a local envelope sender.
FORMS = [
    ('<u%%%s@%s>' % (R, L), False, ()),
    ('<%s!u@%s>' % (R, L), False, ()),
    ('<"u@%s"@%s>' % (R, L), False, ()),
    ('<"u%%%s"@%s>' % (R, L), False, ()),
    ('<@%s:u@%s>' % (L, R), True, ()),
    ('<@%s,@x.test:u@%s>' % (L, R), True, ()),
    ('<@%s:u@%s>' % (R, L), False, ()),
    ('<u@[192.0.2.9]>', True, ()),
    ('<u@[IPv6:2001:db8::1]>', True, ()),
    ('<u@[IPv6:::ffff:127.0.0.1]>', False, ()),
    ('<u@%s.>' % R, True, ()),
    ('<u@%s>' % R.upper(), True, ()),
    ('<U@Remote.Test.>', True, ()),
    ('<u@%s.@%s>' % (L, R), False, ()),
    ('<u@%s@%s>' % (R, L), False, ()),
    ('<u@%s%%%s>' % (L, R), False, ()),
    ('<u@%s%%%s>' % (R, L), False, ()),
    ('<u\\@%s@%s>' % (R, L), False, ()),
    ('<u@%s>' % R, True, ()),
    ('<postmaster@%s>' % R, True, ()),
    (' <u@%s>' % R, True, ()),
    ('< u@%s >' % R, True, ()),
    ('u@%s' % R, True, ()),
    ('<"u"@%s>' % R, True, ()),
    ('<u@127.0.0.1>', False, ()),
    ('<u@[127.0.0.1]>', False, ()),
    ('<u@[127.0.0.2]>', False, ()),
    ('<u@localhost>', False, ()),
    ('<u@%s.%s>' % (L, R), True, ()),
    ('<u@sub.%s>' % L, False, ()),
    ('<u@%s.>' % L, False, ()),
    ('<u@%s>' % HOSTNAME, False, ()),
    ('<u%%%s>' % R, False, ()),
    ('<%s!u>' % R, False, ()),
    ('<u%%%s@%s>' % (R, C), False, ()),
    ('<%s!u@%s>' % (R, C), False, ()),
    ('<"u@%s"@%s>' % (R, C), False, ()),
    ('<u@%s@%s>' % (R, C), False, ()),
    ('<u@%s>' % R, True, ('utf8',)),
    ('<\u00fc@%s>' % R, True, ('utf8',)),
    ('<u@m\u00fcnchen.test>', True, ('utf8',)),
    ('<u@xn--mnchen-3ya.test>', True, ()),
    ('<u@%s> NOTIFY=NEVER' % R, True, ()),
    ('<u@%s>' % R, True, ('lo',)),
    ('<u@[192.0.2.9]>', True, ('lo',)),
    ('<u@%s>' % R, True, ('tls',)),
    ('<u@%s>' % R, True, ('helo',)),
    ('<u@%s>' % R, True, ('local-from',)),
    ('<u@%s>' % R, True, ('local-from', 'lo', 'helo')),
    ('<%s@%s>' % (FWD.split('@')[0], R), True, ()),
]

# A recipient of ours with an ORCPT (RFC 3461 4.2) naming a remote
# address: accepted, delivered to alice, never queued.
ORCPT_FORM = '<%s> ORCPT=rfc822;u@%s' % (ALICE, R)
# The catch-all at work: accepted, delivered to sink.
CATCHALL_FORM = '<anything@%s>' % C


def marker(n):
    return 'RELAY-CASE-%03d-END' % n


class RelayTest(MailCase):
    ACCOUNTS = (ALICE, SINK)
    ALIASES = ((FWD, (FWD_TARGET,)),)
    # The forward must stay queued and go nowhere: every delivery attempt
    # goes to a closed port on loopback (a temporary failure), the next
    # one an hour later.
    CONF = (('queue_relay_host', '127.0.0.1:9'), ('queue_retry_min', '1h'),
            ('queue_retry_max', '1h'))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        mi = cls.mi
        try:
            mi.ok(['domain', 'add', CATCHALL])
            mi.ok(['alias', 'add', '@' + CATCHALL, SINK])
        except BaseException:
            mi.cleanup()
            cls.mi = None
            raise

    def queue_state(self):
        """(message files under DATA/queue, {queue id: [recipients]} from
        marmot queue list or None where the command does not exist)."""
        files = [f for f in self.mi.queue_files() if f.endswith('.msg')]
        return files, self.mi.queue_list()

    def try_form(self, n, form, opts):
        """One session; returns (RCPT reply code, lines, DATA code)."""
        source = None if 'lo' in opts else OTHER_SOURCE
        c = SmtpClient(self.inst.ports['smtp'], source=source)
        self.addCleanup(c.close)
        c.greet_ehlo(HOSTNAME if 'helo' in opts else 'client.test.example')
        if 'tls' in opts:
            c.starttls_ehlo(self.ctx)
        sender = ALICE if 'local-from' in opts else 'sender@%s' % R
        c.cmd('MAIL FROM:<%s>%s' % (sender,
                                    ' SMTPUTF8' if 'utf8' in opts else ''))
        if 'local-from' in opts:
            # Refusing a local sender without AUTH is fine too.
            code, lines = c.reply()
            if code != 250:
                return code, ['MAIL: %s' % lines[-1]], None
        else:
            c.expect(250, 'case %d MAIL FROM' % n)
        c.send(('RCPT TO:%s\r\n' % form).encode('utf-8'))
        code, lines = c.reply()
        data_code = None
        if code is not None and 200 <= code < 300:
            c.cmd('DATA')
            c.expect(354, 'case %d DATA' % n)
            c.send(('From: %s\r\nTo: x\r\nSubject: %s\r\n'
                    'Message-ID: <relay.%d@relay.test>\r\n\r\n%s\r\n.\r\n'
                    % (sender, marker(n), n, marker(n))).encode())
            data_code, _ = c.reply()
        c.cmd('QUIT')
        c.reply()
        return code, lines, data_code

    def test_1_relay_forms_refused(self):
        files0, listed0 = self.queue_state()
        results = []
        accepted = []
        problems = []
        t0 = time.monotonic()
        forms = FORMS + [(CATCHALL_FORM, False, ()), (ORCPT_FORM, False, ())]
        for n, (form, remote, opts) in enumerate(forms):
            code, lines, data_code = self.try_form(n, form, opts)
            results.append((n, form, opts, code, lines[-1:]))
            if code is None:
                problems.append('case %d %r: no reply to RCPT: %r'
                                % (n, form, lines))
            elif 200 <= code < 300:
                if data_code == 250:
                    accepted.append((n, form))
                if remote:
                    problems.append('case %d %r %r: a remote recipient was '
                                    'accepted without AUTH: %r'
                                    % (n, form, opts, lines))
            elif remote and code < 500:
                problems.append('case %d %r %r: a remote recipient must get '
                                'a permanent refusal (5xx), got %r'
                                % (n, form, opts, lines))
        elapsed = time.monotonic() - t0
        for n, form in ((len(forms) - 2, CATCHALL_FORM),
                        (len(forms) - 1, ORCPT_FORM)):
            self.assertIn((n, form), accepted, 'RCPT TO:%s (local) must be '
                          'accepted: %r' % (form, results[n]))

        # Everything accepted is in a local mailbox, nothing was queued.
        self.mi.wait_merged([ALICE, SINK], timeout=60.0)
        stored = {}
        for address in (ALICE, SINK):
            for _folder, data in self.mi.export(address):
                for n, _form in accepted:
                    if marker(n).encode() in data:
                        stored.setdefault(n, []).append(address)
        for n, form in accepted:
            if len(stored.get(n, [])) != 1:
                problems.append('case %d %r: acknowledged, but stored in '
                                'local accounts %r (expected exactly one)'
                                % (n, form, stored.get(n)))
        if stored.get(len(forms) - 2) not in (None, [SINK]):
            problems.append('%s: stored in %r, expected the catch-all '
                            'target %s' % (CATCHALL_FORM,
                                           stored.get(len(forms) - 2),
                                           SINK))
        files1, listed1 = self.queue_state()
        queued = [f for f in files1 if f not in files0]
        harness.note('%d address forms on port 25 without AUTH in %.1f s: '
                     '%d accepted for local delivery (%s), %d refused; '
                     'queued for remote delivery: %d (queue list: %s)'
                     % (len(forms), elapsed, len(accepted),
                        ', '.join(form for _, form in accepted),
                        len(forms) - len(accepted), len(queued),
                        'not available' if listed1 is None
                        else '%d entries' % len(listed1)))
        codes = {}
        for n, form, opts, code, last in results:
            codes.setdefault(code, []).append(form)
        for code, fs in sorted(codes.items(), key=lambda x: str(x[0])):
            harness.note('RCPT %s: %d forms, e.g. %s' % (code, len(fs),
                                                         fs[:3]))
        self.assertEqual(problems, [])
        self.assertEqual(queued, [], 'new files in DATA/queue')
        if listed1 is not None:
            self.assertEqual(listed1, listed0,
                             'marmot queue list after the relay attempts')
        self.assertGreaterEqual(len(FORMS), 24)

    def test_2_submission_without_auth_refused(self):
        files0, listed0 = self.queue_state()
        checked = 0
        for port, tls in (('submission', False), ('submission', True),
                          ('submissions', None)):
            for rcpt in ('u@%s' % R, ALICE):
                where = '%s %s, RCPT %s' % (
                    port, {False: 'plain', True: 'after STARTTLS',
                           None: 'implicit TLS'}[tls], rcpt)
                c = SmtpClient(self.inst.ports[port], source=OTHER_SOURCE,
                               tls_context=self.ctx if tls is None
                               else None)
                self.addCleanup(c.close)
                c.greet_ehlo()
                if tls:
                    c.starttls_ehlo(self.ctx)
                c.cmd('MAIL FROM:<%s>' % ALICE)
                lines = c.expect((530,), where + ': MAIL FROM without AUTH')
                self.assertTrue(lines[-1].startswith('530 5.7.0'),
                                '%s: expected "530 5.7.0", got %r'
                                % (where, lines))
                c.cmd('RCPT TO:<%s>' % rcpt)
                code, lines = c.reply()
                self.assertIsNotNone(code, where + ': RCPT: %r' % lines)
                self.assertGreaterEqual(code, 500, '%s: RCPT without AUTH '
                                        'must be refused (530 or 503), got '
                                        '%r' % (where, lines))
                c.cmd('DATA')
                code, lines = c.reply()
                self.assertGreaterEqual(code or 500, 500,
                                        '%s: DATA: %r' % (where, lines))
                checked += 1
        files1, listed1 = self.queue_state()
        self.assertEqual([f for f in files1 if f not in files0], [])
        if listed1 is not None:
            self.assertEqual(listed1, listed0)
        harness.note('%d unauthenticated submission sessions: MAIL 530 '
                     '5.7.0, RCPT and DATA refused, nothing queued'
                     % checked)

    def test_3_forward_alias_is_queued(self):
        files0, listed0 = self.queue_state()
        c = SmtpClient(self.inst.ports['smtp'], source=OTHER_SOURCE)
        self.addCleanup(c.close)
        c.greet_ehlo()
        c.cmd('MAIL FROM:<sender@%s>' % R)
        c.expect(250, 'MAIL FROM')
        c.cmd('RCPT TO:<%s>' % FWD)
        c.expect(250, 'RCPT TO our forward alias %s' % FWD)
        c.cmd('DATA')
        c.expect(354, 'DATA')
        c.send(b'From: sender@remote.test\r\nSubject: forwarded\r\n'
               b'Message-ID: <fwd.1@relay.test>\r\n\r\nforward me\r\n.\r\n')
        c.expect(250, 'end of data for the forward')
        c.cmd('QUIT')
        c.expect(221, 'QUIT')
        # The queue entry is durable before the 250; the runner may pick
        # it up at once, so look right away.
        files1, listed1 = self.queue_state()
        new = [f for f in files1 if f not in files0]
        if listed1 is None:
            self.assertTrue(new, 'no new file in DATA/queue after a 250 for '
                            'a forward alias (files %r)' % files1)
            self.fail('marmot queue list failed; DATA/queue gained %r'
                      % new)
        fresh = {i: r for i, r in listed1.items() if i not in listed0}
        self.assertEqual(list(fresh.values()), [[FWD_TARGET]],
                         'queue list after a forward: %r' % listed1)
        self.assertEqual(len(new), 1, 'new queue files %r' % new)
        harness.note('forward alias %s -> %s: queued once (%r)'
                     % (FWD, FWD_TARGET, fresh))


if __name__ == '__main__':
    unittest.main()
