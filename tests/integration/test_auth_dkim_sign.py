"""DKIM signing of submitted mail (issue 5, "Deliver 1", the signing
half): `marmot domain add` prints an Ed25519 and an RSA-2048 key record;
every message submitted on 587 (and 465) as that domain carries two
DKIM-Signature fields, which Debian's dkimpy (/usr/bin/python3 `dkim`, the
oracle) verifies against the printed records, for 60 varied messages:
8-bit bodies, lines near the 998-octet limit, folded and duplicate header
fields, an empty body, trailing empty lines, whitespace runs. Rotation:
`dkim rotate` adds a pending pair that does not sign yet, `dkim activate`
makes it sign and keeps the old pair listed as retiring (mail signed
before still verifies with the old records). A domain without keys is
sent unsigned and logged; a domain whose keys the vault cannot open gets
451, never an unsigned message. And through the outbound queue to a
Postfix MX, the signatures arrive intact.

dkimpy runs in a /usr/bin/python3 subprocess (the tests may run under
another python), with a dnsfunc that answers only the published
records."""

import json
import os
import re
import smtplib
import sqlite3
import subprocess
import time
import unittest

import dnsserver
import harness
import postfix_mx
import test_outbound
from harness import DOMAIN
from smtp_util import MailCase, strip_trace

SIGN_DOMAIN = 'sign.example'
BROKEN_DOMAIN = 'broken.example'
OLD_DOMAIN = 'old.example'  # its keys deleted: as a domain from before
ALICE = 'alice@' + DOMAIN  # the recipient
BOB = 'bob@' + SIGN_DOMAIN
CAROL = 'carol@' + BROKEN_DOMAIN
DAVE = 'dave@' + OLD_DOMAIN


def drop_keys(data_dir, domain):
    """Deletes a domain's DKIM keys, as if it had been added before
    directory.db had any (schema 3)."""
    db = sqlite3.connect(os.path.join(data_dir, 'directory.db'))
    try:
        db.execute('DELETE FROM dkim_keys WHERE domain = ?', (domain,))
        db.commit()
    finally:
        db.close()

# The oracle: reads {"records": {name: txt}, "messages": [b64...]} on
# stdin, prints one JSON line per message: [[selector, algorithm, ok,
# error], ...] for each DKIM-Signature, top first.
VERIFY = r'''
import base64, json, sys
import dkim
req = json.load(sys.stdin)
records = {k.lower().rstrip('.'): v.encode() for k, v in
           req['records'].items()}
def dnsfunc(name, timeout=5):
    return records.get(name.decode().lower().rstrip('.'))
for b64 in req['messages']:
    msg = base64.b64decode(b64)
    d = dkim.DKIM(msg)
    out = []
    sigs = [v for k, v in dkim.rfc822_parse(msg)[0]
            if k.lower() == b'dkim-signature']
    for i, sig in enumerate(sigs):
        tags = dkim.util.parse_tag_value(
            b''.join(sig.split()).replace(b'\r', b'').replace(b'\n', b''))
        try:
            ok = dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)
            err = ''
        except Exception as e:
            ok, err = False, repr(e)
        out.append([tags.get(b's', b'').decode(), tags.get(b'a', b'')
                    .decode(), bool(ok), err,
                    tags.get(b'c', b'').decode(), tags.get(b'h', b'')
                    .decode(), tags.get(b'd', b'').decode()])
    print(json.dumps(out))
'''


def parse_records(text):
    """{name: TXT value} from the zone-file lines marmot prints."""
    out = {}
    for line in text.splitlines():
        m = re.match(r'^(\S+\._domainkey\.\S+) IN TXT (.*)$', line)
        if m:
            out[m.group(1).rstrip('.')] = ''.join(
                re.findall(r'"([^"]*)"', m.group(2)))
    return out


def dkim_verify(records, messages):
    import base64
    req = {'records': records,
           'messages': [base64.b64encode(m).decode() for m in messages]}
    r = subprocess.run(['/usr/bin/python3', '-c', VERIFY],
                       input=json.dumps(req).encode(), capture_output=True,
                       timeout=300)
    if r.returncode != 0:
        raise AssertionError('dkimpy oracle failed: %s' %
                             r.stderr.decode(errors='replace'))
    return [json.loads(line) for line in r.stdout.decode().splitlines()]


def message(i, sender, subject=None, extra=b'', body=None):
    """A submission with a unique Message-ID <dkim-N@sign.example>."""
    subject = subject if subject is not None else b'message %d' % i
    head = (b'From: Bob <' + sender.encode() + b'>\r\n'
            b'To: Alice <' + ALICE.encode() + b'>\r\n'
            b'Subject: ' + subject + b'\r\n'
            b'Date: Wed, 02 Dec 2026 12:00:00 +0000\r\n'
            b'Message-ID: <dkim-%d@sign.example>\r\n' % i + extra)
    if body is None:
        body = b'Hello %d\r\n' % i
    return head + b'\r\n' + body


def varied_messages(sender):
    """60 messages covering what canonicalization must get right."""
    out = []
    long_line = b'x' * 990 + b'\r\n'
    for i in range(60):
        kind = i % 12
        extra, body, subject = b'', None, None
        if kind == 0:
            body = (u'Gr\u00fc\u00dfe, \u65e5\u672c\u8a9e %d\r\n' % i
                    ).encode('utf-8')
            extra = (b'MIME-Version: 1.0\r\nContent-Type: text/plain; '
                     b'charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n')
        elif kind == 1:
            body = long_line * 3 + b'end\r\n'
        elif kind == 2:
            subject = (b'a folded\r\n subject line that goes on\r\n\tand '
                       b'on %d' % i)
        elif kind == 3:
            extra = (b'Comments: first\r\nComments: second\r\n'
                     b'Keywords: a\r\nKeywords: b\r\n')
        elif kind == 4:
            body = b''
        elif kind == 5:
            body = b'trailing empty lines\r\n\r\n\r\n\r\n'
        elif kind == 6:
            body = b'  spaces \t and\ttabs   \r\n \r\n\t\r\nend  \r\n'
            subject = b'  lots   of    space   '
        elif kind == 7:
            extra = b'X-Weird:no-space-after-colon\r\nX-Tab:\tvalue\r\n'
            body = b'.leading dot\r\n..two dots\r\n.\r\nx\r\n'
        elif kind == 8:
            extra = (b'Cc: carol@' + DOMAIN.encode() + b',\r\n  dave@' +
                     DOMAIN.encode() + b'\r\nReply-To: <' +
                     sender.encode() + b'>\r\n')
        elif kind == 9:
            body = b'no final line end'
        elif kind == 10:
            body = (b'--b\r\nContent-Type: text/plain\r\n\r\npart\r\n'
                    b'--b--\r\n')
            extra = (b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed;'
                     b'\r\n boundary="b"\r\n')
        else:
            body = bytes(range(0x80, 0x100)) + b'\r\n' + long_line
        out.append(message(100 + i, sender, subject, extra, body))
    return out


class DkimSignTest(MailCase):
    ACCOUNTS = (ALICE,)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        mi = cls.mi
        try:
            r = mi.ok(['domain', 'add', SIGN_DOMAIN])
            cls.add_output = r.stdout
            cls.records = parse_records(r.stdout)
            mi.add_user(BOB)
            mi.ok(['domain', 'add', BROKEN_DOMAIN])
            mi.add_user(CAROL)
            mi.ok(['domain', 'add', OLD_DOMAIN])
            drop_keys(mi.inst.data, OLD_DOMAIN)
            mi.add_user(DAVE)
        except BaseException:
            mi.cleanup()
            cls.mi = None
            raise

    def submit(self, sender, data, port='submission'):
        if port == 'submissions':
            s = smtplib.SMTP_SSL('127.0.0.1', self.inst.ports[port],
                                 local_hostname='client.test.example',
                                 context=self.ctx, timeout=60)
        else:
            s = smtplib.SMTP('127.0.0.1', self.inst.ports[port],
                             local_hostname='client.test.example',
                             timeout=60)
        try:
            s.ehlo()
            if port == 'submission':
                s.starttls(context=self.ctx)
                s.ehlo()
            s.login(sender, self.mi.passwords[sender])
            refused = s.sendmail(sender, [ALICE], data,
                                 mail_options=['BODY=8BITMIME'])
            self.assertEqual(refused, {})
            s.quit()
        finally:
            s.close()

    def stored(self, ids):
        """{message-id: stored bytes} for the Message-IDs in ids, waiting
        until all are in alice's store."""
        deadline = time.monotonic() + 120
        while True:
            got = {}
            for _folder, data in self.mi.export(ALICE):
                m = re.search(rb'(?im)^Message-ID: <([^>]+)>', data)
                if m and m.group(1).decode() in ids:
                    got[m.group(1).decode()] = data
            if len(got) == len(ids) or time.monotonic() > deadline:
                self.assertEqual(sorted(got), sorted(ids),
                                 'messages missing from the store')
                return got
            time.sleep(0.5)

    def selectors(self):
        """{selector: (algorithm, state)} from `dkim list SIGN_DOMAIN`."""
        r = self.mi.ok(['dkim', 'list', SIGN_DOMAIN])
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], 'domain\tselector\talgorithm\tstate\t'
                         'created\tretire_after')
        out = {}
        for line in lines[1:]:
            dom, sel, alg, state, _c, _r = line.split('\t')
            self.assertEqual(dom, SIGN_DOMAIN)
            out[sel] = (alg, state)
        return out

    def check_signed(self, results, records_sel, what):
        """Each message has exactly two signatures, Ed25519 and RSA, with
        the selectors given, relaxed/relaxed, From oversigned, d= the From
        domain, and both verify."""
        for n, sigs in enumerate(results):
            where = '%s, message %d: %r' % (what, n, sigs)
            self.assertEqual(len(sigs), 2, where)
            algs = sorted(s[1] for s in sigs)
            self.assertEqual(algs, ['ed25519-sha256', 'rsa-sha256'], where)
            for sel, alg, ok, err, c, h, d in sigs:
                self.assertTrue(ok, '%s: %s did not verify: %s'
                                % (where, sel, err))
                self.assertIn(sel, records_sel, where)
                self.assertEqual(c, 'relaxed/relaxed', where)
                self.assertEqual(d, SIGN_DOMAIN, where)
                hs = [x.strip().lower() for x in h.split(':')]
                # RFC 6376 8.15: From listed once more than present.
                self.assertGreaterEqual(hs.count('from'), 2, where)

    def test_1_domain_add_records(self):
        self.assertEqual(len(self.records), 2, self.add_output)
        ed = [v for v in self.records.values() if 'k=ed25519' in v]
        rsa = [v for v in self.records.values() if 'k=rsa' in v]
        self.assertEqual(len(ed), 1, self.add_output)
        self.assertEqual(len(rsa), 1, self.add_output)
        import base64
        p = base64.b64decode(ed[0].split('p=')[1])
        self.assertEqual(len(p), 32, 'Ed25519 p= is the raw key')
        p = base64.b64decode(rsa[0].split('p=')[1])
        # SubjectPublicKeyInfo of a 2048-bit RSA key.
        self.assertEqual(len(p), 294, 'RSA p= is SubjectPublicKeyInfo')
        sels = self.selectors()
        self.assertEqual(sorted(s for s, (_a, st) in sels.items()
                                if st == 'active'),
                         sorted(n.split('.')[0] for n in self.records))
        # The private halves are in directory.db only wrapped.
        db = sqlite3.connect(os.path.join(self.inst.data, 'directory.db'))
        try:
            for (blob,) in db.execute('SELECT wrapped_private FROM '
                                      'dkim_keys WHERE domain = ?',
                                      (SIGN_DOMAIN,)):
                self.assertTrue(bytes(blob).startswith(b'MDK1'))
                self.assertNotIn(b'\x30\x82', bytes(blob)[:40])
        finally:
            db.close()

    def test_2_sixty_messages_verify(self):
        msgs = varied_messages(BOB)
        t0 = time.monotonic()
        for i, data in enumerate(msgs):
            self.submit(BOB, data,
                        port='submissions' if i % 10 == 9 else 'submission')
        harness.note('%d submissions in %.1f s' % (len(msgs),
                                                    time.monotonic() - t0))
        ids = ['dkim-%d@sign.example' % (100 + i) for i in range(len(msgs))]
        stored = self.stored(ids)
        # The message as stored is the message as sent, behind the trace
        # fields and the two signatures.
        for mid, data in zip(ids, msgs):
            trace, rest = strip_trace(stored[mid])
            sigs = [t for t in trace if t.startswith(b'DKIM-Signature:')]
            self.assertEqual(len(sigs), 2, '%s: not two DKIM-Signature '
                             'fields on top: %r' % (mid, trace))
            expect = data if data.endswith(b'\r\n') else data + b'\r\n'
            self.assertEqual(rest, expect, mid)
        t0 = time.monotonic()
        results = dkim_verify(self.records, [stored[m] for m in ids])
        harness.note('dkimpy verified %d signatures in %.1f s'
                     % (sum(len(r) for r in results),
                        time.monotonic() - t0))
        sels = [n.split('.')[0] for n in self.records]
        self.check_signed(results, sels, 'initial keys')
        # Tampering breaks both (the oracle is not vacuous).
        bad = stored[ids[0]].replace(b'Hello', b'Jello').replace(
            'Grü'.encode(), b'Gru')
        bad = bad.replace(b'Subject: message', b'Subject: messagE')
        res = dkim_verify(self.records, [bad])[0]
        self.assertEqual([s[2] for s in res], [False, False], res)
        # A From: added later breaks it too (oversigning).
        res = dkim_verify(self.records, [stored[ids[3]].replace(
            b'To: Alice', b'From: mallory@evil.test\r\nTo: Alice', 1)])[0]
        self.assertEqual([s[2] for s in res], [False, False], res)

    def test_3_rotation(self):
        old = dict(self.records)
        r = self.mi.ok(['dkim', 'rotate', SIGN_DOMAIN])
        new = parse_records(r.stdout)
        self.assertEqual(len(new), 2, r.stdout)
        self.assertFalse(set(new) & set(old), 'rotation reused a selector')
        sels = self.selectors()
        self.assertEqual(len(sels), 4, sels)
        for name in new:
            self.assertEqual(sels[name.split('.')[0]][1], 'pending')
        for name in old:
            self.assertEqual(sels[name.split('.')[0]][1], 'active')
        published = dict(old)
        published.update(new)

        # Pending keys do not sign yet.
        self.submit(BOB, message(1, BOB))
        res = dkim_verify(published,
                          [self.stored(['dkim-1@sign.example'])[
                              'dkim-1@sign.example']])
        self.check_signed(res, [n.split('.')[0] for n in old], 'pending')

        r = self.mi.ok(['dkim', 'activate', SIGN_DOMAIN])
        self.assertIn('activated 2', r.stdout)
        sels = self.selectors()
        self.assertEqual(len(sels), 4, sels)
        for name in new:
            self.assertEqual(sels[name.split('.')[0]][1], 'active')
        for name in old:
            self.assertEqual(sels[name.split('.')[0]][1], 'retiring')
        self.submit(BOB, message(2, BOB))
        got = self.stored(['dkim-1@sign.example', 'dkim-2@sign.example'])
        res = dkim_verify(published, [got['dkim-2@sign.example']])
        self.check_signed(res, [n.split('.')[0] for n in new], 'activated')
        # Mail signed before the rotation still verifies: the retiring
        # records stay published during the overlap.
        res = dkim_verify(old, [got['dkim-1@sign.example']])
        self.check_signed(res, [n.split('.')[0] for n in old], 'retiring')
        # Nothing has expired yet: the overlap is 7 days.
        r = self.mi.ok(['dkim', 'expire'])
        self.assertIn('deleted 0', r.stdout)
        self.assertEqual(len(self.selectors()), 4)
        # A second rotation right away is refused while keys are pending?
        # No: none is pending now, so it works; activate without pending
        # keys is refused.
        r = self.inst.marmot(['dkim', 'activate', SIGN_DOMAIN])
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(r.stderr.startswith('marmot: '), r.stderr)

    def test_4_no_keys_unsigned_and_logged(self):
        self.submit(DAVE, message(3, DAVE))
        got = self.stored(['dkim-3@sign.example'])['dkim-3@sign.example']
        self.assertNotIn(b'DKIM-Signature', got)
        deadline = time.monotonic() + 10
        while 'smtp.dkim_unsigned' not in self.inst.log_text(200000):
            self.assertLess(time.monotonic(), deadline,
                            'no smtp.dkim_unsigned log line')
            time.sleep(0.2)

    def test_5_vault_cannot_sign_tempfails(self):
        # Damage carol's domain's wrapped keys: the vault cannot unwrap
        # them, so the message must be refused with 451, not sent
        # unsigned.
        db = sqlite3.connect(os.path.join(self.inst.data, 'directory.db'))
        try:
            db.execute("UPDATE dkim_keys SET wrapped_private = "
                       "X'4d444b3100' WHERE domain = ?", (BROKEN_DOMAIN,))
            db.commit()
        finally:
            db.close()
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.submit(CAROL, message(4, CAROL))
        self.assertEqual(cm.exception.smtp_code, 451, cm.exception)
        for _folder, data in self.mi.export(ALICE):
            self.assertNotIn(b'<dkim-4@sign.example>', data)


class DkimOutboundTest(unittest.TestCase):
    """Signed on submission, through the outbound queue to a Postfix MX
    (nsd for DNS, as test_outbound.py): what arrives there still carries
    both signatures and dkimpy verifies them."""

    @classmethod
    def setUpClass(cls):
        cls.skip_reason = test_outbound.missing_infra(postfix=True)
        if cls.skip_reason:
            return
        cls.inst = harness.Instance()
        cls.addClassCleanup(cls.inst.cleanup)
        cls.skip_reason = test_outbound.marmot_lacks_queue(cls.inst)
        if cls.skip_reason:
            return
        cls.mx = postfix_mx.PostfixMx()
        cls.addClassCleanup(cls.mx.stop)
        dead_addr = postfix_mx.free_mx_addr(exclude=(cls.mx.addr,))
        cls.dns = dnsserver.DnsServer(
            dnsserver.test_zones(cls.mx.addr, dead_addr))
        cls.dns.start()
        cls.addClassCleanup(cls.dns.stop)
        cls.mx.start()
        with open(os.path.join(cls.inst.data, 'marmot.conf'), 'a') as f:
            f.write('\n# test_auth_dkim_sign.py\n'
                    'dns_resolver = %s\n'
                    'dns_timeout = 5s\n'
                    'queue_retry_min = 2s\n'
                    'queue_scan_interval = 1s\n' % cls.dns.resolver)
        r = cls.inst.marmot(['domain', 'add', SIGN_DOMAIN])
        cls.inst.check_ok(r, 'domain add')
        cls.records = parse_records(r.stdout)
        cls.password = cls.inst.add_user(BOB)
        cls.inst.start(wait_port='submission')

    def setUp(self):
        if self.skip_reason:
            if os.geteuid() != 0:
                self.skipTest(self.skip_reason)
            self.fail(self.skip_reason)
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)

    def test_signed_through_the_queue(self):
        rcpt = 'alice@remote.test'
        msgs = varied_messages(BOB)[:12]
        deadline = time.monotonic() + 20
        while True:
            s = smtplib.SMTP(harness.LOOPBACK, self.inst.ports['submission'],
                             timeout=60)
            try:
                s.ehlo('client.test.example')
                s.starttls(context=harness.insecure_context())
                s.ehlo('client.test.example')
                s.login(BOB, self.password)
                break
            except smtplib.SMTPAuthenticationError as e:
                s.close()
                if e.smtp_code != 454 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        try:
            for data in msgs:
                refused = s.sendmail(BOB, [rcpt], data,
                                     mail_options=['BODY=8BITMIME'])
                self.assertEqual(refused, {})
            s.quit()
        finally:
            s.close()
        got = self.mx.wait_messages('alice', len(msgs), timeout=90)
        ours = [m for m in got if b'@sign.example>' in m]
        self.assertEqual(len(ours), len(msgs))
        # Maildir stores LF line ends: back to the wire form.
        wire = [m.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')
                for m in ours]
        results = dkim_verify(self.records, wire)
        sels = [n.split('.')[0] for n in self.records]
        DkimSignTest.check_signed(self, results, sels, 'outbound')


class DkimCliTest(unittest.TestCase):
    """`marmot dkim ...` refuses what makes no sense, with a `marmot: `
    message and no change to the keys."""

    def setUp(self):
        self.inst = harness.Instance()
        self.addCleanup(self.inst.cleanup)

    def run_ok(self, args):
        return self.inst.check_ok(self.inst.marmot(args),
                                  'marmot ' + ' '.join(args))

    def listing(self):
        return self.run_ok(['dkim', 'list']).stdout

    def refused(self, args, message):
        before = self.listing()
        r = self.inst.marmot(args)
        self.assertNotEqual(r.returncode, 0, 'marmot %s: %s' % (args,
                                                                 r.stdout))
        self.assertTrue(r.stderr.startswith('marmot: '), r.stderr)
        self.assertIn(message, r.stderr)
        self.assertEqual(self.listing(), before, 'refused but changed')

    def test_init_makes_keys(self):
        # `marmot init` printed the first domain's two records.
        records = parse_records(self.inst.init_result.stdout)
        self.assertEqual(sorted(n.split('.', 1)[1] for n in records),
                         ['_domainkey.' + DOMAIN] * 2,
                         self.inst.init_result.stdout)
        rows = self.listing().splitlines()[1:]
        self.assertEqual(len(rows), 2, rows)
        self.assertEqual(sorted(r.split('\t')[1] for r in rows),
                         sorted(n.split('.')[0] for n in records))

    def test_refusals(self):
        # A domain from before DKIM keys has none: generate makes them.
        drop_keys(self.inst.data, DOMAIN)
        self.assertEqual(self.listing().splitlines()[1:], [])
        self.refused(['dkim', 'rotate', DOMAIN], 'no DKIM keys yet')
        r = self.run_ok(['dkim', 'generate', DOMAIN])
        self.assertEqual(len(parse_records(r.stdout)), 2, r.stdout)
        self.assertEqual(len(self.listing().splitlines()), 3)
        self.refused(['dkim', 'generate', DOMAIN], 'already has DKIM keys')
        self.refused(['dkim', 'activate', DOMAIN], 'no new DKIM keys')
        self.refused(['dkim', 'generate', 'nowhere.example'],
                     'unknown domain')
        self.refused(['dkim', 'list', 'nowhere.example'], 'unknown domain')
        self.refused(['dkim', 'rotate', 'bad..example'], 'invalid domain')
        self.refused(['domain', 'add', DOMAIN], 'exists')
        self.run_ok(['dkim', 'rotate', DOMAIN])
        self.refused(['dkim', 'rotate', DOMAIN], 'pending DKIM keys')
        self.assertEqual(len(self.listing().splitlines()), 5)
        # Deleting the domain deletes its keys.
        self.run_ok(['domain', 'add', 'gone.example'])
        self.assertIn('gone.example', self.listing())
        self.run_ok(['domain', 'del', 'gone.example'])
        self.assertNotIn('gone.example', self.listing())
