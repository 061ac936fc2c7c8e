"""ARC sealing when Marmot forwards (issue 5, Deliver 5, RFC 8617 5.1):
fwd.example (`marmot domain add`: an Ed25519 and an RSA key) has the
alias list@fwd.example -> alice@remote.test. A message sent to it on
port 25 goes through the outbound queue to a Postfix MX (nsd for DNS, as
test_outbound.py); the copy that arrives there carries an ARC set that
Debian's dkimpy (`dkim.arc_verify`, the oracle) validates against the
records `domain add` printed:

- a message without ARC: cv=pass, one set (i=1), sealed by d=fwd.example
  with the RSA key (most ARC verifiers know no Ed25519);
- a message that arrives with a valid set by origin.test (sealed here
  with dkimpy's arc_sign, its key published in the test DNS): cv=pass,
  the new set is i=2;
- a message whose set arrives broken (its body changed after sealing):
  forwarded, with no new set (RFC 8617 5.1 step 2: a chain that failed
  gets none);
- an alias to a remote and a local address: the local copy (read back
  with `marmot export`) has no ARC field, the remote one is sealed;
- a domain whose keys the vault cannot unwrap: the forward still goes
  out, unsealed, and smtp.arc_unsealed is logged (a forward is never
  lost or delayed for its seal).
dkimpy is imported directly (the runner is Debian's /usr/bin/python3)."""

import os
import re
import shutil
import smtplib
import sqlite3
import tempfile
import subprocess
import time
import unittest

import dnsserver
import harness
import postfix_mx
import test_outbound
from test_auth_dkim_sign import parse_records
from test_auth_inbound import header_fields, make_rsa_key, txt
from smtp_util import OTHER_SOURCE

try:
    import dkim
except ImportError:  # Debian's python3-dkim (scripts/install-deps.sh)
    dkim = None

FWD_DOMAIN = 'fwd.example'
ALIAS = 'list@' + FWD_DOMAIN
TARGET = 'alice@remote.test'
ORIGIN = 'origin.test'
BOTH = 'both@' + FWD_DOMAIN
CAROL = 'carol@' + FWD_DOMAIN
BROKEN_DOMAIN = 'broken-fwd.example'
BROKEN_ALIAS = 'list@' + BROKEN_DOMAIN
HELO = 'mx.origin.test'


def message(tag, extra=b'', to=ALIAS):
    return (extra +
            b'From: Bob <bob@' + ORIGIN.encode() + b'>\r\n'
            b'To: <' + to.encode() + b'>\r\n'
            b'Subject: arc ' + tag.encode() + b'\r\n'
            b'Message-ID: <' + tag.encode() + b'@origin.test>\r\n'
            b'Date: Wed, 2 Dec 2026 10:00:00 +0000\r\n'
            b'\r\n'
            b'Forward me, ' + tag.encode() + b'.\r\n')


class ArcForwardTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.skip_reason = test_outbound.missing_infra(postfix=True)
        if cls.skip_reason is None and dkim is None:
            cls.skip_reason = 'python3-dkim is not installed'
        if cls.skip_reason:
            return
        cls.inst = harness.Instance()
        cls.addClassCleanup(cls.inst.cleanup)
        cls.skip_reason = test_outbound.marmot_lacks_queue(cls.inst)
        if cls.skip_reason:
            return
        cls.keydir = tempfile.mkdtemp(prefix='marmot-arc-')
        cls.addClassCleanup(subprocess.run, ['rm', '-rf', cls.keydir])
        cls.origin_pem, pub = make_rsa_key(cls.keydir)
        cls.mx = postfix_mx.PostfixMx()
        cls.addClassCleanup(cls.mx.stop)
        dead_addr = postfix_mx.free_mx_addr(exclude=(cls.mx.addr,))
        zones = dnsserver.test_zones(cls.mx.addr, dead_addr)
        zones[ORIGIN] = [
            ('@', 'TXT', txt('v=spf1 ip4:%s -all' % OTHER_SOURCE)),
            ('sel._domainkey', 'TXT', txt('v=DKIM1; k=rsa; p=%s' % pub)),
        ]
        cls.dns = dnsserver.DnsServer(zones)
        cls.dns.start()
        cls.addClassCleanup(cls.dns.stop)
        cls.mx.start()
        with open(os.path.join(cls.inst.data, 'marmot.conf'), 'a') as f:
            f.write('\n# test_auth_arc_forward.py\n'
                    'dns_resolver = %s\n'
                    'dns_timeout = 5s\n'
                    'queue_retry_min = 2s\n'
                    'queue_scan_interval = 1s\n' % cls.dns.resolver)
        r = cls.inst.marmot(['domain', 'add', FWD_DOMAIN])
        cls.inst.check_ok(r, 'domain add')
        cls.records = parse_records(r.stdout)
        cls.records['sel._domainkey.' + ORIGIN] = 'v=DKIM1; k=rsa; p=' + pub
        cls.inst.check_ok(cls.inst.marmot(['alias', 'add', ALIAS, TARGET]),
                          'alias add')
        cls.inst.add_user(CAROL)
        cls.inst.check_ok(cls.inst.marmot(['alias', 'add', BOTH, TARGET,
                                           CAROL]), 'alias add')
        cls.inst.check_ok(cls.inst.marmot(['domain', 'add', BROKEN_DOMAIN]),
                          'domain add')
        cls.inst.check_ok(cls.inst.marmot(['alias', 'add', BROKEN_ALIAS,
                                           TARGET]), 'alias add')
        # Keys the vault cannot unwrap (as test_auth_dkim_sign.py).
        db = sqlite3.connect(os.path.join(cls.inst.data, 'directory.db'))
        try:
            db.execute("UPDATE dkim_keys SET wrapped_private = "
                       "X'4d444b3100' WHERE domain = ?", (BROKEN_DOMAIN,))
            db.commit()
        finally:
            db.close()
        cls.inst.start(wait_port='smtp')

    def setUp(self):
        if self.skip_reason:
            if os.geteuid() != 0 or dkim is None:
                self.skipTest(self.skip_reason)
            self.fail(self.skip_reason)
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)

    def dnsfunc(self, name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        value = self.records.get(name.lower().rstrip('.'))
        return value.encode() if value is not None else None

    def send(self, data, rcpt=ALIAS):
        """One transaction on port 25 from 127.0.0.2; retried while the
        front answers 451 (its vault connection not up yet)."""
        deadline = time.monotonic() + 20
        while True:
            s = smtplib.SMTP(harness.LOOPBACK, self.inst.ports['smtp'],
                             local_hostname=HELO, timeout=60,
                             source_address=(OTHER_SOURCE, 0))
            try:
                s.ehlo(HELO)
                refused = s.sendmail('bob@' + ORIGIN, [rcpt], data)
                self.assertEqual(refused, {})
                s.quit()
                return
            except smtplib.SMTPRecipientsRefused as e:
                code = list(e.recipients.values())[0][0]
                if code // 100 != 4 or time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
            finally:
                s.close()

    def forwarded(self, tag):
        """The copy the MX got for the message with Message-ID tag, in
        wire form (CRLF)."""
        needle = ('<%s@origin.test>' % tag).encode()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            for m in self.mx.messages('alice'):
                if needle in m:
                    return m.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')
            time.sleep(0.5)
        self.fail('no forwarded copy of %s at the MX\n%s'
                  % (tag, self.mx.log_text()))

    def check_chain(self, msg, instances, what):
        cv, results, comment = dkim.arc_verify(msg, dnsfunc=self.dnsfunc)
        self.assertEqual(cv, b'pass', '%s: dkimpy arc_verify says %r %r '
                         '%r\n%s' % (what, cv, comment, results,
                                     msg[:3000]))
        self.assertEqual(len(results), instances, what)
        seals = header_fields(msg, 'ARC-Seal')
        self.assertEqual(len(seals), instances, what)
        newest = seals[0]
        self.assertIn('i=%d' % instances, re.sub(r'\s', '', newest))
        self.assertIn('d=' + FWD_DOMAIN, re.sub(r'\s', '', newest))
        self.assertIn('a=rsa-sha256', re.sub(r'\s', '', newest))
        aar = [v for v in header_fields(msg, 'ARC-Authentication-Results')
               if v.startswith('i=%d;' % instances)]
        self.assertEqual(len(aar), 1, what)
        self.assertIn(harness.HOSTNAME, aar[0])
        harness.note('%s: cv=%s, %d set(s), newest %s' %
                     (what, cv.decode(), instances, newest[:60]))

    def test_1_sealed_once(self):
        self.send(message('arc-1'))
        msg = self.forwarded('arc-1')
        self.check_chain(msg, 1, 'no chain before')
        self.assertIn('cv=none', re.sub(r'\s', '', header_fields(
            msg, 'ARC-Seal')[0]))

    def origin_sealed(self, tag):
        """A message sealed by origin.test (i=1) with dkimpy."""
        msg = (b'Authentication-Results: ' + HELO.encode() +
               b'; spf=pass smtp.mailfrom=bob@origin.test\r\n' +
               message(tag))
        sets = dkim.arc_sign(msg, b'sel', ORIGIN.encode(), self.origin_pem,
                             HELO.encode(), timestamp=int(time.time()))
        return b''.join(sets) + msg

    def test_2_existing_chain_gets_instance_2(self):
        sealed = self.origin_sealed('arc-2')
        cv, _, comment = dkim.arc_verify(sealed, dnsfunc=self.dnsfunc)
        self.assertEqual(cv, b'pass', 'the test set itself: %r' % comment)
        self.send(sealed)
        msg = self.forwarded('arc-2')
        self.check_chain(msg, 2, 'origin.test set before')
        self.assertIn('cv=pass', re.sub(r'\s', '', header_fields(
            msg, 'ARC-Seal')[0]))

    def test_3_failed_chain_gets_no_set(self):
        sealed = self.origin_sealed('arc-3').replace(b'Forward me',
                                                     b'Changed me')
        self.send(sealed)
        msg = self.forwarded('arc-3')
        seals = header_fields(msg, 'ARC-Seal')
        self.assertEqual(len(seals), 1, 'a broken chain got a new set')
        self.assertIn('d=' + ORIGIN, re.sub(r'\s', '', seals[0]))
        harness.note('broken origin.test chain: forwarded, no new set')

    def local_copies(self, address, needle):
        root = tempfile.mkdtemp(prefix='marmot-arc-export-')
        self.addCleanup(shutil.rmtree, root, True)
        out = []
        deadline = time.monotonic() + 30
        while not out and time.monotonic() < deadline:
            shutil.rmtree(root, True)
            self.inst.check_ok(self.inst.marmot(
                ['export', address, '--maildir', root]), 'export')
            for _folder, folder_dir in harness.maildir_folders(root):
                for sub in ('new', 'cur'):
                    d = os.path.join(folder_dir, sub)
                    for name in sorted(os.listdir(d)):
                        with open(os.path.join(d, name), 'rb') as f:
                            data = f.read()
                        if needle in data:
                            out.append(data)
            if not out:
                time.sleep(0.3)
        return out

    def test_4_local_copy_unsealed(self):
        self.send(message('arc-4', to=BOTH), rcpt=BOTH)
        msg = self.forwarded('arc-4')
        self.check_chain(msg, 1, 'local and remote alias, remote copy')
        local = self.local_copies(CAROL, b'<arc-4@origin.test>')
        self.assertEqual(len(local), 1, 'local copies of arc-4')
        self.assertNotIn(b'ARC-', local[0].split(b'\n\n', 1)[0].replace(
            b'\r', b''), 'the local copy got ARC fields')
        harness.note('local copy without ARC, remote copy sealed')

    def test_5_vault_cannot_sign_forwards_unsealed(self):
        self.send(message('arc-5', to=BROKEN_ALIAS), rcpt=BROKEN_ALIAS)
        msg = self.forwarded('arc-5')
        self.assertEqual(header_fields(msg, 'ARC-Seal'), [],
                         'sealed without a usable key?')
        # (test_3 logs smtp.arc_unsealed too, for its broken chain.)
        pat = re.compile(r'smtp\.arc_unsealed .*vault')
        deadline = time.monotonic() + 10
        while (not pat.search(self.inst.log_text(10 ** 7)) and
               time.monotonic() < deadline):
            time.sleep(0.2)
        self.assertRegex(self.inst.log_text(10 ** 7), pat)
        harness.note('vault cannot sign: forwarded unsealed, logged')


if __name__ == '__main__':
    unittest.main()
