"""Inbound mail authentication on port 25 (issue 5, Deliver 3 and 4):
SPF, DKIM and DMARC over a test DNS server (dnsserver.py, nsd on
127.0.0.10), the Authentication-Results field and the DMARC policy.

Zones: pass.test publishes SPF for 127.0.0.2, an RSA DKIM key (selector
sel) and p=reject; reject.test, quarantine.test and none.test publish SPF
that leaves 127.0.0.2 out and p=reject / p=quarantine / p=none. Messages
go to port 25 from 127.0.0.2 with smtplib; the one from pass.test is
signed with python3-dkim (dkimpy, the oracle), which also verifies the
signature of the stored copy.

- pass.test: acknowledged, in INBOX, and our Authentication-Results says
  spf=pass smtp.mailfrom, dkim=pass header.d/header.s/header.b, dmarc=pass
  header.from; a forged field claiming our authserv-id (the host name) is
  gone, another server's field is kept;
- reject.test (unaligned, unsigned): 550 5.7.1 at the end of data, and
  nothing is stored;
- quarantine.test: acknowledged and filed into Junk with dmarc=fail;
- none.test: delivered to INBOX with dmarc=fail (p=none).
Read back through `marmot export --maildir` (the store)."""

import base64
import os
import smtplib
import subprocess
import tempfile

import dnsserver
import harness
from harness import DOMAIN, HOSTNAME
from smtp_util import MailCase, OTHER_SOURCE

ALICE = 'alice@' + DOMAIN
SOURCE = OTHER_SOURCE  # 127.0.0.2
HELO = 'mx.pass.test'

try:
    import dkim
except ImportError:  # Debian's python3-dkim (scripts/install-deps.sh)
    dkim = None


def make_rsa_key(directory):
    """A 2048-bit RSA key: (PEM private key, base64 SubjectPublicKeyInfo
    for p=)."""
    path = os.path.join(directory, 'dkim.pem')
    subprocess.run(['openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt',
                    'rsa_keygen_bits:2048', '-out', path], check=True,
                   capture_output=True, timeout=60)
    der = subprocess.run(['openssl', 'pkey', '-in', path, '-pubout',
                          '-outform', 'DER'], check=True,
                         capture_output=True, timeout=60).stdout
    with open(path, 'rb') as f:
        pem = f.read()
    return pem, base64.b64encode(der).decode()


def txt(text):
    """A TXT rdata in zone-file syntax, split into strings of at most 255
    octets (RFC 1035 3.3.14)."""
    parts = [text[i:i + 200] for i in range(0, len(text), 200)]
    return ' '.join('"%s"' % p for p in parts)


def zones(p_value):
    spf_other = txt('v=spf1 ip4:127.0.0.99 -all')
    return {
        'pass.test': [
            ('@', 'TXT', txt('v=spf1 ip4:%s -all' % SOURCE)),
            ('mx', 'TXT', txt('v=spf1 ip4:%s -all' % SOURCE)),
            ('mx', 'A', SOURCE),
            ('_dmarc', 'TXT', txt('v=DMARC1; p=reject')),
            ('sel._domainkey', 'TXT',
             txt('v=DKIM1; k=rsa; p=%s' % p_value)),
        ],
        'reject.test': [
            ('@', 'TXT', spf_other),
            ('_dmarc', 'TXT', txt('v=DMARC1; p=reject')),
        ],
        'quarantine.test': [
            ('@', 'TXT', spf_other),
            ('_dmarc', 'TXT', txt('v=DMARC1; p=quarantine')),
        ],
        'none.test': [
            ('@', 'TXT', spf_other),
            ('_dmarc', 'TXT', txt('v=DMARC1; p=none')),
        ],
    }


def message(sender, case, extra=b''):
    return (extra +
            b'From: Bob <' + sender.encode() + b'>\r\n'
            b'To: <' + ALICE.encode() + b'>\r\n'
            b'Subject: auth ' + case.encode() + b'\r\n'
            b'Message-ID: <' + case.encode() + b'@auth.test>\r\n'
            b'Date: Wed, 2 Dec 2026 10:00:00 +0000\r\n'
            b'\r\n'
            b'Hello from ' + sender.encode() + b'.\r\n')


def header_fields(msg, name):
    """The unfolded values of every field called name in msg's header."""
    head = msg.split(b'\r\n\r\n', 1)[0].decode('utf-8', 'replace')
    fields, cur = [], None
    for line in head.split('\r\n'):
        if line[:1] in (' ', '\t') and cur is not None:
            cur += ' ' + line.strip()
            continue
        if cur is not None:
            fields.append(cur)
        cur = line
    if cur is not None:
        fields.append(cur)
    out = []
    for f in fields:
        n, _, v = f.partition(':')
        if n.strip().lower() == name.lower():
            out.append(v.strip())
    return out


class AuthInboundTest(MailCase):
    ACCOUNTS = (ALICE,)

    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix='marmot-dkim-')
        cls.pem, pub = make_rsa_key(cls.keydir)
        cls.zones = zones(pub)
        cls.dns = dnsserver.DnsServer(cls.zones)
        cls.dns.start()
        cls.addClassCleanup(cls.dns.stop)
        cls.CONF = (('dns_resolver', cls.dns.resolver),
                    ('dns_timeout', '5s'))
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        subprocess.run(['rm', '-rf', cls.keydir])

    def dnsfunc(self, name, timeout=5):
        """dkimpy's key lookup, answered from our zones."""
        name = name.decode() if isinstance(name, bytes) else name
        name = name.rstrip('.')
        for zone, records in self.zones.items():
            for rname, rtype, data in records:
                full = zone if rname == '@' else rname + '.' + zone
                if rtype == 'TXT' and full == name:
                    return ''.join(p for p in data.split('"')[1::2])
        return None

    def send(self, sender, data, expect=250):
        """One transaction with smtplib on port 25 from 127.0.0.2."""
        s = smtplib.SMTP(harness.LOOPBACK, self.inst.ports['smtp'],
                         local_hostname=HELO, timeout=60,
                         source_address=(SOURCE, 0))
        try:
            s.ehlo(HELO)
            if expect == 250:
                refused = s.sendmail(sender, [ALICE], data)
                self.assertEqual(refused, {})
                return None
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                s.sendmail(sender, [ALICE], data)
            self.assertEqual(cm.exception.smtp_code, expect)
            return cm.exception.smtp_error.decode()
        finally:
            try:
                s.quit()
            except smtplib.SMTPException:
                pass

    def stored(self, case):
        self.mi.wait_merged([ALICE])
        tag = b'<' + case.encode() + b'@auth.test>'
        return [(folder, data) for folder, data in self.mi.export(ALICE)
                if tag in data]

    def ours(self, data):
        """Our Authentication-Results fields (authserv-id = host name)."""
        return [v for v in header_fields(data, 'Authentication-Results')
                if v.split(';', 1)[0].strip() == HOSTNAME]

    def test_pass_and_forged_removed(self):
        self.assertIsNotNone(dkim, 'python3-dkim is missing')
        forged = (b'Authentication-Results: ' + HOSTNAME.encode() +
                  b'; spf=pass smtp.mailfrom=x@evil.example;\r\n'
                  b'\tdkim=pass header.d=evil.example\r\n'
                  b'Authentication-Results: mx.elsewhere.example; '
                  b'dkim=none\r\n'
                  b'authentication-results: (forged) "'
                  + HOSTNAME.upper().encode() + b'"; dmarc=pass\r\n')
        body = message('bob@pass.test', 'pass', forged)
        sig = dkim.sign(body, b'sel', b'pass.test', self.pem,
                        include_headers=[b'from', b'to', b'subject',
                                         b'date', b'message-id'])
        self.send('bob@pass.test', sig + body)
        got = self.stored('pass')
        self.assertEqual(len(got), 1, got)
        folder, data = got[0]
        self.assertEqual(folder, 'INBOX')
        ar = self.ours(data)
        self.assertEqual(len(ar), 1, header_fields(
            data, 'Authentication-Results'))
        ar = ar[0]
        self.assertIn('spf=pass smtp.mailfrom=bob@pass.test', ar)
        self.assertIn('smtp.helo=mx.pass.test', ar)
        self.assertIn('dkim=pass', ar)
        self.assertIn('header.d=pass.test', ar)
        self.assertIn('header.s=sel', ar)
        self.assertIn('header.b=', ar)
        self.assertIn('dmarc=pass', ar)
        self.assertIn('header.from=pass.test', ar)
        self.assertNotIn('evil.example', ar)
        # The forged fields are gone, the other server's is kept.
        all_ar = header_fields(data, 'Authentication-Results')
        self.assertEqual(len(all_ar), 2, all_ar)
        self.assertIn('mx.elsewhere.example; dkim=none', all_ar)
        self.assertNotIn(b'evil.example', data)
        self.assertNotIn(b'(forged)', data)
        # The oracle: dkimpy still verifies the stored copy.
        self.assertTrue(dkim.verify(data, dnsfunc=self.dnsfunc))
        harness.note('A-R: ' + ar)

    def test_reject(self):
        reply = self.send('bob@reject.test',
                          message('bob@reject.test', 'reject'), expect=550)
        self.assertIn('5.7.1', reply)
        self.assertIn('DMARC', reply)
        self.assertEqual(self.stored('reject'), [])

    def test_quarantine(self):
        self.send('bob@quarantine.test',
                  message('bob@quarantine.test', 'quarantine'))
        got = self.stored('quarantine')
        self.assertEqual(len(got), 1, got)
        folder, data = got[0]
        self.assertEqual(folder, 'Junk')
        ar = self.ours(data)
        self.assertEqual(len(ar), 1)
        self.assertRegex(ar[0], r'spf=fail( \([^)]*\))? '
                         r'smtp\.mailfrom=bob@quarantine\.test')
        self.assertIn('dmarc=fail (p=quarantine dis=quarantine', ar[0])
        self.assertIn('header.from=quarantine.test', ar[0])

    def test_none(self):
        self.send('bob@none.test', message('bob@none.test', 'none'))
        got = self.stored('none')
        self.assertEqual(len(got), 1, got)
        folder, data = got[0]
        self.assertEqual(folder, 'INBOX')
        ar = self.ours(data)
        self.assertEqual(len(ar), 1)
        self.assertIn('dmarc=fail (p=none dis=none', ar[0])
        self.assertIn('header.from=none.test', ar[0])
        self.assertIn('dkim=none', ar[0])
        self.assertIn('arc=none', ar[0])
