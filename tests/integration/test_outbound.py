"""Real outbound delivery (issue 4, "Must show"): a message submitted on
587 for a remote domain is resolved through an authoritative DNS server the
test starts (nsd, dnsserver.py) and delivered to a private Postfix acting
as that domain's MX on port 25 of a loopback address of its own
(postfix_mx.py). A 5xx from Postfix yields exactly one DSN in the sender's
INBOX, a 4xx is retried on schedule (queue_retry_min 2 s, doubling) and
delivered once Postfix accepts, a dead first MX falls back to the second,
a domain without MX is reached through its A record (implicit MX), and a
null MX (RFC 7505) or a domain that does not exist fails at once with a
DSN. The same cases run
again with `marmot queue inject` as the way in (remote senders, whose
DSNs travel to Postfix too).

The infrastructure is tested on its own first: lib-dns (through the
dns-query tool built beside it) resolving through nsd, DNSSEC validation
against zones signed here (secure, bogus, insecure), and Postfix
accepting, rejecting and deferring as configured.

Needs root (port 25, Postfix's mail_owner) and the Debian packages nsd,
ldnsutils and postfix (scripts/install-deps.sh); skipped with the reason
otherwise. An end-to-end class is skipped, per test and with the reason,
while the marmot binary lacks its pieces (the dns_* and queue_* settings,
`marmot queue`, submission handing remote recipients to the queue).
"""

import os
import re
import secrets
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

import harness
from harness import LOOPBACK, DOMAIN, insecure_context
import dnsserver
import postfix_mx
from postfix_mx import body_of, headers_of, wait_for

# Queue timing for the tests (seconds): first retry after 2 s, doubling,
# at most 8 s apart; the runner rescans every second.
RETRY_MIN = 2
RETRY_MAX = 8
SCAN_INTERVAL = 1


def dns_query_binary():
    """build/src/lib-dns/dns-query beside build/src/cli/marmot."""
    marmot = os.path.abspath(harness.MARMOT) if harness.MARMOT else ''
    build = os.path.dirname(os.path.dirname(os.path.dirname(marmot)))
    return os.path.join(build, 'src', 'lib-dns', 'dns-query')


def missing_infra(postfix=False):
    """Why the infrastructure cannot run here, or None."""
    if not os.access(dnsserver.NSD, os.X_OK):
        return 'nsd is not installed (scripts/install-deps.sh)'
    if postfix:
        if os.geteuid() != 0:
            return 'Postfix on port 25 needs root'
        if not os.access(postfix_mx.POSTFIX, os.X_OK):
            return 'postfix is not installed (scripts/install-deps.sh)'
    return None


def token():
    return secrets.token_hex(6)


def make_message(sender, rcpt, tag, body=None):
    if body is None:
        body = ('Hello from Marmot, test %s.\r\n'
                '\r\n'
                '.a line that starts with a dot\r\n'
                'caf\u00e9 8-bit text\r\n' % tag)
    head = ('From: <%s>\r\n'
            'To: <%s>\r\n'
            'Subject: outbound %s\r\n'
            'Message-ID: <%s@test.example>\r\n'
            'Date: Tue, 01 Dec 2026 12:00:00 +0000\r\n'
            'MIME-Version: 1.0\r\n'
            'Content-Type: text/plain; charset=utf-8\r\n'
            'Content-Transfer-Encoding: 8bit\r\n'
            '\r\n' % (sender, rcpt, tag, tag))
    return head.encode() + body.encode('utf-8')


class SkippableCase(unittest.TestCase):
    """A class whose fixture may be unavailable: setUpClass sets
    skip_reason instead of raising SkipTest, and every test then skips in
    setUp, so that each one still gets its TAP line (run.py reports per
    test; a class-level skip would leave the plan short)."""

    skip_reason = None

    def setUp(self):
        # Run as root (CI, scripts/test.sh) everything these tests need
        # is installed and merged, so a reason not to run is a failure;
        # only a developer's unprivileged run may skip.
        if self.skip_reason:
            if os.geteuid() != 0:
                self.skipTest(self.skip_reason)
            self.fail(self.skip_reason)


class DnsServerTest(SkippableCase):
    """lib-dns (dns-query) against nsd: what the queue runner sees."""

    @classmethod
    def setUpClass(cls):
        cls.tool = dns_query_binary()
        cls.skip_reason = missing_infra()
        if not cls.skip_reason and not os.access(cls.tool, os.X_OK):
            cls.skip_reason = '%s not built' % cls.tool
        if cls.skip_reason:
            return
        cls.dns = dnsserver.DnsServer()
        cls.dns.start()
        cls.addClassCleanup(cls.dns.stop)

    def lookup(self, rtype, *names):
        r = subprocess.run([self.tool, self.dns.resolver, rtype] +
                           list(names), capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, 'dns-query: %s' % r.stderr)
        # One block per name, in completion order: key them by name.
        blocks, current = {}, None
        for line in r.stdout.splitlines():
            if line.startswith('  '):
                blocks[current].append(line.strip())
            else:
                current = line.split()[0]
                blocks[current] = [line]
        self.assertEqual(sorted(blocks), sorted(names), r.stdout)
        return blocks

    def test_mx_through_nsd(self):
        got = self.lookup('mx', 'remote.test', 'fallback.test',
                          'nullmx.test', 'aonly.test', 'nx.remote.test',
                          'nxmx.test', 'bad..name')
        self.assertEqual(got['remote.test'],
                         ['remote.test mx OK', '10 mx1.remote.test',
                          '20 mx2.remote.test'])
        self.assertEqual(got['fallback.test'],
                         ['fallback.test mx OK', '10 dead.fallback.test',
                          '20 live.fallback.test'])
        # RFC 7505 3: "MX 0 ." is recognised, not returned as a host.
        self.assertEqual(got['nullmx.test'], ['nullmx.test mx OK null_mx'])
        # RFC 5321 5.1: no MX (NODATA) is the caller's implicit MX, and
        # is not an error nor NXDOMAIN.
        self.assertEqual(got['aonly.test'], ['aonly.test mx NODATA'])
        self.assertEqual(got['nx.remote.test'],
                         ['nx.remote.test mx NXDOMAIN'])
        self.assertEqual(got['nxmx.test'],
                         ['nxmx.test mx OK', '10 nowhere.nxmx.test'])
        self.assertEqual(got['bad..name'][0].split()[:3],
                         ['bad..name', 'mx', 'INVALID_NAME'])
        # RFC 5321 5.1: "If a CNAME record is found, the resulting name is
        # processed as if it were the initial name."
        got = self.lookup('mx', 'alias.remote.test')
        self.assertEqual(got['alias.remote.test'],
                         ['alias.remote.test mx OK canonical=remote.test',
                          '10 mx1.remote.test', '20 mx2.remote.test'])

    def test_hosts_and_txt(self):
        got = self.lookup('host', 'mx1.remote.test', 'aonly.test',
                          'nowhere.nxmx.test', 'remote.test')
        self.assertEqual(got['mx1.remote.test'],
                         ['mx1.remote.test host OK', '127.0.0.3'])
        self.assertEqual(got['aonly.test'], ['aonly.test host OK',
                                             '127.0.0.3'])
        self.assertEqual(got['nowhere.nxmx.test'],
                         ['nowhere.nxmx.test host NXDOMAIN'])
        self.assertEqual(got['remote.test'], ['remote.test host NODATA'])
        got = self.lookup('txt', 'remote.test')
        self.assertEqual(got['remote.test'],
                         ['remote.test txt OK',
                          'v=spf1 ip4:127.0.0.0/8 -all'])

    def test_out_of_zone_is_temporary_and_zones_change(self):
        # nsd REFUSES names it does not serve: a temporary failure, never
        # an answer from the real DNS.
        got = self.lookup('mx', 'example.com')
        self.assertTrue(got['example.com'][0].startswith(
            'example.com mx TEMPFAIL'), got)
        zones = dict(self.dns.zones)
        zones['added.test'] = [('@', 'MX', '5 mx1.remote.test.')]
        self.dns.set_zones(zones)
        got = self.lookup('mx', 'added.test')
        self.assertEqual(got['added.test'],
                         ['added.test mx OK', '5 mx1.remote.test'])


class DnssecTest(SkippableCase):
    """lib-dns validating through nsd with a trust anchor: the secure and
    bogus flags libunbound gives, which DANE (RFC 7672) will need."""

    ZONES = {
        'secure.test': [
            ('@', 'A', '127.0.0.5'),
            ('_25._tcp.mx', 'TLSA', '3 1 1 ' + '0123456789abcdef' * 4),
        ],
        'bogus.test': [('@', 'A', '127.0.0.5')],
        'plain.test': [('@', 'A', '127.0.0.5')],
    }

    @classmethod
    def setUpClass(cls):
        cls.tool = dns_query_binary()
        cls.skip_reason = missing_infra()
        if not cls.skip_reason and not os.access(dnsserver.LDNS_SIGNZONE,
                                                 os.X_OK):
            cls.skip_reason = ('ldns-signzone is not installed '
                               '(scripts/install-deps.sh)')
        if not cls.skip_reason and not os.access(cls.tool, os.X_OK):
            cls.skip_reason = '%s not built' % cls.tool
        if cls.skip_reason:
            return
        cls.dns = dnsserver.DnsServer(cls.ZONES, signed=['secure.test'],
                                      tampered=['bogus.test'])
        cls.dns.start()
        cls.addClassCleanup(cls.dns.stop)

    def lookup(self, rtype, *names, anchor=True):
        args = [self.tool]
        if anchor:
            args += ['--trust-anchor', self.dns.trust_anchor_file]
        r = subprocess.run(args + [self.dns.resolver, rtype] + list(names),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, 'dns-query: %s' % r.stderr)
        return {l.split()[0]: l for l in r.stdout.splitlines()
                if not l.startswith('  ')}, r.stdout

    def test_secure_bogus_insecure(self):
        got, out = self.lookup('host', 'secure.test', 'bogus.test',
                               'plain.test', 'nx.secure.test')
        self.assertEqual(got['secure.test'], 'secure.test host OK secure',
                         out)
        # RFC 4035 5.5: data whose signature fails is never used: a
        # temporary failure with the bogus flag and libunbound's reason.
        self.assertTrue(got['bogus.test'].startswith(
            'bogus.test host TEMPFAIL bogus error='), out)
        self.assertNotIn('127.0.0.99', out)
        # No trust anchor covers plain.test: insecure, not bogus.
        self.assertEqual(got['plain.test'], 'plain.test host OK', out)
        # Proven non-existence (NSEC) is secure too.
        self.assertEqual(got['nx.secure.test'],
                         'nx.secure.test host NXDOMAIN secure', out)
        got, out = self.lookup('mx', 'secure.test')
        self.assertEqual(got['secure.test'], 'secure.test mx NODATA secure',
                         out)
        got, out = self.lookup('tlsa', '_25._tcp.mx.secure.test')
        self.assertEqual(got['_25._tcp.mx.secure.test'],
                         '_25._tcp.mx.secure.test tlsa OK secure', out)
        self.assertIn('  3 1 1 ' + '0123456789abcdef' * 4 + '\n', out)

    def test_without_trust_anchor_nothing_is_validated(self):
        got, out = self.lookup('host', 'secure.test', 'bogus.test',
                               anchor=False)
        self.assertEqual(got['secure.test'], 'secure.test host OK', out)
        self.assertEqual(got['bogus.test'], 'bogus.test host OK', out)
        self.assertIn('127.0.0.99', out)


class PostfixMxTest(SkippableCase):
    """The private Postfix behaves as the tests below rely on."""

    @classmethod
    def setUpClass(cls):
        cls.skip_reason = missing_infra(postfix=True)
        if cls.skip_reason:
            return
        cls.mx = postfix_mx.PostfixMx()
        cls.mx.start()
        cls.addClassCleanup(cls.mx.stop)

    def test_accept_reject_defer(self):
        tag = token()
        msg = make_message('someone@test.example', 'alice@remote.test', tag)
        with smtplib.SMTP(self.mx.addr, postfix_mx.MX_PORT,
                          timeout=30) as s:
            s.ehlo('client.test.example')
            self.assertEqual(s.mail('someone@test.example')[0], 250)
            self.assertEqual(s.rcpt('alice@remote.test')[0], 250)
            code, text = s.rcpt('bounce@remote.test')
            self.assertEqual((code, text[:5]), (550, b'5.1.1'))
            code, text = s.rcpt('defer@remote.test')
            self.assertEqual((code, text[:5]), (450, b'4.2.0'))
            # Not an open relay.
            self.assertEqual(s.rcpt('x@elsewhere.example')[0], 554)
            self.assertEqual(s.data(msg)[0], 250)
        stored = [m for m in self.mx.wait_messages('alice')
                  if tag.encode() in m]
        self.assertEqual(len(stored), 1)
        self.assertEqual(body_of(stored[0]),
                         body_of(msg).replace(b'\r\n', b'\n'))
        self.mx.set_rcpt_action('defer@remote.test', 'OK')
        try:
            with smtplib.SMTP(self.mx.addr, postfix_mx.MX_PORT,
                              timeout=30) as s:
                s.ehlo('client.test.example')
                s.mail('someone@test.example')
                self.assertEqual(s.rcpt('defer@remote.test')[0], 250)
        finally:
            self.mx.set_rcpt_action('defer@remote.test',
                                    postfix_mx.DEFAULT_ACTIONS[
                                        'defer@remote.test'])


def start_mx_and_dns(cls, extra_zones=None):
    """Starts this run's Postfix MX (cls.mx, on its own loopback address)
    and nsd (cls.dns) serving dnsserver.test_zones() for it, plus
    extra_zones, both stopped at class cleanup. fallback.test's first MX
    is an address where nothing listens on 25."""
    cls.mx = postfix_mx.PostfixMx()
    cls.addClassCleanup(cls.mx.stop)
    dead_addr = postfix_mx.free_mx_addr(exclude=(cls.mx.addr,))
    zones = dnsserver.test_zones(cls.mx.addr, dead_addr)
    zones.update(extra_zones or {})
    cls.dns = dnsserver.DnsServer(zones)
    cls.dns.start()
    cls.addClassCleanup(cls.dns.stop)
    cls.mx.start()


def append_queue_conf(inst, dns, tag):
    """Points inst's resolver at dns with a fast queue (retries after 2 s,
    a scan every second)."""
    with open(os.path.join(inst.data, 'marmot.conf'), 'a') as f:
        f.write('\n# %s\n'
                'dns_resolver = %s\n'
                'dns_timeout = 5s\n'
                'queue_retry_min = 2s\n'
                'queue_scan_interval = 1s\n' % (tag, dns.resolver))


def marmot_lacks_queue(inst):
    """Why this marmot has no outbound queue to test, or None."""
    with open(inst.binary, 'rb') as f:
        image = f.read()
    for name in (b'dns_resolver', b'queue_retry_min'):
        if name not in image:
            return ('the outbound pieces are not merged yet: the marmot '
                    'binary has no %s setting' % name.decode())
    r = inst.marmot(['queue', 'list'])
    if r.returncode != 0:
        return ('the outbound pieces are not merged yet: marmot queue list '
                'exits %d: %s' % (r.returncode, r.stderr.strip()[:200]))
    return None


class OutboundCases:
    """The cases, run once per way into the queue (the subclasses): a
    message for a remote domain is resolved through nsd and delivered to
    Postfix; a 5xx gives exactly one DSN; a 4xx is retried on schedule and
    then delivered; a dead first MX falls back to the second; a null MX
    fails at once with a DSN. Subclasses provide send(), dsns() and the
    senders' addresses."""

    SENDERS = ('deliver', 'bounce', 'defer', 'fallback', 'nullmx',
               'implicit', 'nxdomain')
    skip_reason = None

    @classmethod
    def setUpClass(cls):
        cls.skip_reason = missing_infra(postfix=True)
        if cls.skip_reason:
            return
        cls.inst = harness.Instance()
        cls.addClassCleanup(cls.inst.cleanup)
        cls.skip_reason = marmot_lacks_queue(cls.inst)
        if cls.skip_reason:
            return
        start_mx_and_dns(cls)
        with open(os.path.join(cls.inst.data, 'marmot.conf'), 'a') as f:
            f.write('\n# test_outbound.py\n'
                    'dns_resolver = %s\n'
                    'dns_timeout = 5s\n'
                    'queue_retry_min = %ds\n'
                    'queue_retry_max = %ds\n'
                    'queue_scan_interval = %ds\n'
                    'queue_timeout = 20s\n'
                    'queue_max_age = 1h\n'
                    % (cls.dns.resolver, RETRY_MIN, RETRY_MAX,
                       SCAN_INTERVAL))
        cls.prepare()
        cls.inst.start(wait_port='submission')
        cls.inst.wait_port('imaps')
        cls.skip_reason = cls.probe()

    @classmethod
    def prepare(cls):
        """Before the server starts (accounts)."""

    @classmethod
    def probe(cls):
        """After it started: why this way in does not work yet, or None."""
        return None

    def setUp(self):
        # Run as root (CI, scripts/test.sh) everything these tests need
        # is installed and merged, so a reason not to run is a failure;
        # only a developer's unprivileged run may skip.
        if self.skip_reason:
            if os.geteuid() != 0:
                self.skipTest(self.skip_reason)
            self.fail(self.skip_reason)
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)
        self.addCleanup(self.dump_postfix_on_failure)

    def dump_postfix_on_failure(self):
        outcome = getattr(self, '_outcome', None)
        result = getattr(outcome, 'result', None)
        errors = list(getattr(result, 'errors', [])) + list(
            getattr(result, 'failures', []))
        if any(t is self for t, _ in errors):
            harness.note('postfix log:\n' + self.mx.log_text()[-6000:])

    # -- what the subclasses provide -----------------------------------------

    def sender(self, name):
        raise NotImplementedError

    def send(self, sender, rcpt, msg):
        raise NotImplementedError

    def dsns(self, sender, tag):
        """The DSNs that reached sender about the message tagged tag."""
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------

    def mx_messages(self, user, tag):
        return [m for m in self.mx.messages(user) if tag.encode() in m]

    def wait_mx(self, user, tag, timeout=60.0):
        return wait_for(lambda: self.mx_messages(user, tag), bool, timeout)

    def wait_dsns(self, sender, tag, timeout=60.0):
        return wait_for(lambda: self.dsns(sender, tag), bool, timeout, 0.5)

    def assert_dsn(self, dsn, rcpt, status, tag):
        """One RFC 3464 failure report for rcpt, with the original
        headers."""
        head = headers_of(dsn).decode('utf-8', 'replace')
        self.assertRegex(head, r'(?im)^Content-Type:\s*multipart/report;'
                         r'[\s\S]*report-type="?delivery-status',
                         'DSN is not a multipart/report:\n%s' % head)
        text = dsn.decode('utf-8', 'replace')
        self.assertRegex(text, r'(?im)^Content-Type:\s*message/'
                         r'delivery-status')
        # RFC 3464 2.3: per-recipient fields.
        self.assertRegex(text, r'(?im)^Final-Recipient:\s*rfc822;\s*%s\s*$'
                         % re.escape(rcpt))
        self.assertRegex(text, r'(?im)^Action:\s*failed\s*$')
        self.assertRegex(text, r'(?im)^Status:\s*%s\s*$' % re.escape(status))
        # The original headers come back (RET=HDRS is the least).
        self.assertIn('Subject: outbound %s' % tag, text)
        self.assertIn('Message-ID: <%s@test.example>' % tag, text)
        # RFC 3461 6.2, RFC 5321 4.5.5: a DSN has the null sender.
        rp = re.search(r'(?im)^Return-Path:\s*(\S*)', head)
        if rp:
            self.assertEqual(rp.group(1), '<>', head)

    # -- the cases -----------------------------------------------------------

    def test_delivered_to_remote_mx(self):
        sender, tag = self.sender('deliver'), token()
        msg = make_message(sender, 'alice@remote.test', tag)
        self.send(sender, 'alice@remote.test', msg)
        found = self.wait_mx('alice', tag)
        self.assertEqual(len(found), 1, 'delivered to Postfix: %d copies'
                         % len(found))
        stored = found[0]
        # Body identical (Postfix's Maildir stores LF line ends).
        self.assertEqual(body_of(stored), body_of(msg).replace(b'\r\n', b'\n'))
        head = headers_of(stored).decode('utf-8', 'replace')
        for line in ('Subject: outbound %s' % tag,
                     'Message-ID: <%s@test.example>' % tag,
                     'From: <%s>' % sender):
            self.assertIn(line + '\n', head)
        self.assertIn('Return-Path: <%s>' % sender, head)
        # Nothing comes back to the sender for a success (NOTIFY default),
        # and it is delivered once.
        time.sleep(RETRY_MIN + SCAN_INTERVAL)
        self.assertEqual(self.dsns(sender, tag), [])
        self.assertEqual(len(self.mx_messages('alice', tag)), 1)

    def test_5xx_yields_exactly_one_dsn(self):
        sender, tag = self.sender('bounce'), token()
        rcpt = 'bounce@remote.test'
        self.send(sender, rcpt, make_message(sender, rcpt, tag))
        found = self.wait_dsns(sender, tag)
        self.assertEqual(len(found), 1, 'expected one DSN, got %d'
                         % len(found))
        self.assert_dsn(found[0], rcpt, '5.1.1', tag)
        self.assertIn('550', found[0].decode('utf-8', 'replace'))
        # Still exactly one after the time two wrong retries would take.
        time.sleep(3 * RETRY_MIN + 2 * SCAN_INTERVAL)
        self.assertEqual(len(self.dsns(sender, tag)), 1)
        self.assertEqual(self.mx_messages('bounce', tag), [])

    def test_4xx_retried_on_schedule_then_delivered(self):
        sender, tag = self.sender('defer'), token()
        rcpt = 'defer@remote.test'
        needle = 'from=<%s> to=<%s>' % (sender, rcpt)
        self.send(sender, rcpt, make_message(sender, rcpt, tag))
        # Watch Postfix's 450s and note when each attempt arrives.
        seen, times = 0, []
        deadline = time.monotonic() + RETRY_MIN + 2 * RETRY_MAX + 30
        while len(times) < 3 and time.monotonic() < deadline:
            n = len([l for l in self.mx.log_lines(needle) if ' 450 ' in l])
            while seen < n:
                times.append(time.monotonic())
                seen += 1
            time.sleep(0.1)
        self.assertGreaterEqual(len(times), 3, '450 attempts seen: %d'
                                % len(times))
        gaps = [b - a for a, b in zip(times, times[1:])]
        harness.note('retry gaps after 450: %s s'
                     % ', '.join('%.1f' % g for g in gaps))
        # queue_retry_min apart at least (less a log-polling tick).
        self.assertGreaterEqual(gaps[0], RETRY_MIN - 0.5, gaps)
        self.assertLessEqual(gaps[0], RETRY_MIN + SCAN_INTERVAL + 5, gaps)
        # Exponential backoff (queue_retry_min doubling): the second wait
        # is at least 4 s (the runner rounds due times up to the second).
        self.assertGreaterEqual(gaps[1], 2 * RETRY_MIN - 0.5, gaps)
        self.assertLessEqual(gaps[1], 2 * RETRY_MIN + SCAN_INTERVAL + 5,
                             gaps)
        self.assertEqual(self.mx_messages('defer', tag), [])
        self.mx.set_rcpt_action(rcpt, 'OK')
        try:
            found = self.wait_mx('defer', tag, timeout=2 * RETRY_MAX + 30)
            self.assertEqual(len(found), 1)
            time.sleep(RETRY_MIN + SCAN_INTERVAL)
            self.assertEqual(len(self.mx_messages('defer', tag)), 1)
            # No failure report: the message was delivered in the end.
            for m in self.dsns(sender, tag):
                self.assertNotRegex(m.decode('utf-8', 'replace'),
                                    r'(?im)^Action:\s*failed')
        finally:
            self.mx.set_rcpt_action(rcpt, postfix_mx.DEFAULT_ACTIONS[rcpt])

    def test_mx_fallback(self):
        # fallback.test: MX 10 dead.fallback.test (nothing
        # listens), MX 20 live.fallback.test (Postfix). RFC 5321 5.1: try
        # the next MX when one cannot be reached.
        sender, tag = self.sender('fallback'), token()
        rcpt = 'carol@fallback.test'
        self.send(sender, rcpt, make_message(sender, rcpt, tag))
        found = self.wait_mx('catchall', tag)
        self.assertEqual(len(found), 1)
        self.assertIn(b'Delivered-To: carol@fallback.test', found[0])
        self.assertEqual(self.dsns(sender, tag), [])
        # The queue's log names the host that took it: the second MX.
        lines = [l for l in self.inst.log_text(limit=10 ** 6).splitlines()
                 if 'queue.delivered' in l and rcpt in l]
        harness.note('\n'.join(lines))
        self.assertEqual(len(lines), 1, lines)
        self.assertIn('live.fallback.test', lines[0])

    def test_implicit_mx(self):
        # aonly.test has no MX, only an A record: RFC 5321 5.1, "the
        # address is treated as if it was associated with an implicit MX
        # RR, with a preference of 0, pointing to that host".
        sender, tag = self.sender('implicit'), token()
        rcpt = 'dave@aonly.test'
        self.send(sender, rcpt, make_message(sender, rcpt, tag))
        found = self.wait_mx('catchall', tag)
        self.assertEqual(len(found), 1)
        self.assertIn(b'Delivered-To: dave@aonly.test', found[0])
        self.assertEqual(self.dsns(sender, tag), [])

    def test_nxdomain_yields_dsn(self):
        # RFC 5321 5.1: "If a non-existent domain error is returned, this
        # situation MUST be reported as an error": one DSN, 5.1.2.
        sender, tag = self.sender('nxdomain'), token()
        rcpt = 'erin@nowhere.remote.test'
        self.send(sender, rcpt, make_message(sender, rcpt, tag))
        found = self.wait_dsns(sender, tag)
        self.assertEqual(len(found), 1)
        self.assert_dsn(found[0], rcpt, '5.1.2', tag)

    def test_null_mx_yields_dsn(self):
        # RFC 7505 4.1: no delivery attempt, the recipient fails with
        # 556 5.1.10 at once: one DSN, no retries.
        sender, tag = self.sender('nullmx'), token()
        rcpt = 'nobody@nullmx.test'
        start = time.monotonic()
        self.send(sender, rcpt, make_message(sender, rcpt, tag))
        found = self.wait_dsns(sender, tag)
        self.assertEqual(len(found), 1)
        harness.note('null MX DSN after %.1f s' % (time.monotonic() - start))
        self.assert_dsn(found[0], rcpt, '5.1.10', tag)
        time.sleep(3 * RETRY_MIN + SCAN_INTERVAL)
        self.assertEqual(len(self.dsns(sender, tag)), 1)
        self.assertEqual([m for m in self.mx_messages('catchall', tag)
                          if b'Delivered-To: nobody@nullmx.test' in m], [])


class QueueToMxTest(OutboundCases, unittest.TestCase):
    """`marmot queue inject` -> queue runner -> nsd -> Postfix. The senders
    are remote (at remote.test), so their DSNs travel the same way and land
    in Postfix's catch-all Maildir."""

    @classmethod
    def probe(cls):
        r = cls.inst.marmot(['queue', 'inject', '--help'])
        if 'inject' not in r.stdout + r.stderr:
            return 'marmot queue inject is not merged yet'
        return None

    def sender(self, name):
        return 'dsn-%s@remote.test' % name

    def send(self, sender, rcpt, msg):
        r = subprocess.run([self.inst.binary, 'queue', 'inject', rcpt,
                            '--from', sender, '--data', self.inst.data],
                           input=msg, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, 'marmot queue inject: %s'
                         % r.stderr.decode('utf-8', 'replace'))

    def dsns(self, sender, tag):
        return [m for m in self.mx_messages('catchall', tag)
                if b'multipart/report' in m and
                ('Delivered-To: %s' % sender).encode() in m]


class SubmissionToMxTest(OutboundCases, unittest.TestCase):
    """Submission on 587 (STARTTLS, AUTH PLAIN, smtplib) -> queue -> nsd
    -> Postfix; the senders are local accounts and their DSNs are read from
    their INBOX in the store (marmot store list, marmot export)."""

    @classmethod
    def prepare(cls):
        cls.passwords = {}
        for name in cls.SENDERS:
            address = 'sender-%s@%s' % (name, DOMAIN)
            cls.passwords[address] = cls.inst.add_user(address)

    @classmethod
    def session(cls, sender):
        """An authenticated submission session (smtplib), retrying AUTH
        while it fails temporarily (454: the vault is still starting)."""
        deadline = time.monotonic() + 20
        while True:
            s = smtplib.SMTP(LOOPBACK, cls.inst.ports['submission'],
                             timeout=30)
            try:
                s.ehlo('client.test.example')
                s.starttls(context=insecure_context())
                s.ehlo('client.test.example')
                s.login(sender, cls.passwords[sender])
                return s
            except smtplib.SMTPAuthenticationError as e:
                s.close()
                if e.smtp_code != 454 or time.monotonic() > deadline:
                    raise
            except BaseException:
                s.close()
                raise
            time.sleep(0.2)

    @classmethod
    def probe(cls):
        # Until submission hands remote recipients to the queue, MAIL
        # after AUTH is refused with 451: the wiring is not merged yet.
        sender = 'sender-deliver@%s' % DOMAIN
        with cls.session(sender) as s:
            code, text = s.mail(sender)
            if code == 451:
                return ('submission is not wired to the queue yet (MAIL '
                        'FROM after AUTH: %d %s)'
                        % (code, text.decode('utf-8', 'replace')))
            s.rset()
        return None

    def sender(self, name):
        return 'sender-%s@%s' % (name, DOMAIN)

    def send(self, sender, rcpt, msg):
        with self.session(sender) as s:
            self.assertEqual(s.sendmail(sender, [rcpt], msg), {})

    def inbox(self, address):
        """Every message in address's INBOX (bytes), read from the store
        with `marmot store list` and `marmot export --maildir`."""
        r = self.inst.marmot(['store', 'list', address, '--mailbox',
                              'INBOX'])
        self.assertEqual(r.returncode, 0, 'marmot store list %s: %s'
                         % (address, r.stderr))
        if len(r.stdout.splitlines()) <= 1:  # the header line only
            return []
        work = tempfile.mkdtemp(dir=self.inst.dir)
        try:
            # The CLI drops root to the data directory's owner.
            os.chmod(work, 0o777)
            target = os.path.join(work, 'export')
            r = self.inst.marmot(['export', address, '--maildir', target])
            self.assertEqual(r.returncode, 0, 'marmot export %s: %s'
                             % (address, r.stderr))
            out = []
            for sub in ('new', 'cur'):
                d = os.path.join(target, sub)
                for name in sorted(os.listdir(d)) if os.path.isdir(d) \
                        else []:
                    with open(os.path.join(d, name), 'rb') as f:
                        out.append(f.read())
            return out
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def dsns(self, sender, tag):
        # Each sender account sends one message per test: everything in
        # its INBOX is about it (a DSN not naming the tag still counts).
        return self.inbox(sender)


if __name__ == '__main__':
    unittest.main()
