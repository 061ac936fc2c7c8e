"""`marmot dns records` and `marmot dns check` against nsd (dnsserver.py):
a zone built from the records output checks all OK, and a deliberately
broken zone (wrong MX, two SPF records, missing DMARC, wrong MTA-STS id,
missing TLS-RPT, wrong SRV port, wrong DKIM p= when the domain has keys)
names each broken record with its fix and exits 1.

Needs Debian's nsd (scripts/install-deps.sh)."""

import os
import subprocess
import unittest

import harness
import dnsserver

DOMAIN = 'doctor.test'
HOST = 'mx.doctor.test'


def marmot(args, data):
    return subprocess.run([os.path.abspath(harness.MARMOT)] + args +
                          ['--data', data], capture_output=True, text=True,
                          timeout=120)


def parse_records(text):
    """Zone-file lines of `marmot dns records` as (name, type, rdata)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith(';'):
            continue
        name, _ttl, _in, rtype, rdata = line.split(None, 4)
        out.append((name, rtype, rdata))
    return out


class DnsDoctorTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(dnsserver.NSD, os.X_OK):
            raise unittest.SkipTest('nsd is not installed')
        cls.inst = harness.Instance(hostname=HOST, domain=DOMAIN)
        cls.addClassCleanup(cls.inst.cleanup)
        cls.data = cls.inst.data
        # DKIM keys: made by init / domain add, else by dkim generate.
        r = marmot(['dns', 'records', DOMAIN], cls.data)
        if '._domainkey.' not in r.stdout:
            marmot(['dkim', 'generate', DOMAIN], cls.data)
            r = marmot(['dns', 'records', DOMAIN], cls.data)
        cls.records = parse_records(r.stdout)
        assert cls.records, r.stdout + r.stderr
        cls.have_dkim = '._domainkey.' in r.stdout
        assert r.returncode == (0 if cls.have_dkim else 1), r.stderr
        cls.good = cls.records + [(HOST + '.', 'A', '127.0.0.1')]
        cls.dns = dnsserver.DnsServer({DOMAIN: cls.good})
        cls.dns.start()
        cls.addClassCleanup(cls.dns.stop)

    def check(self):
        r = marmot(['dns', 'check', DOMAIN, '--resolver',
                    '%s:%d' % (self.dns.addr, self.dns.port)], self.data)
        return r, r.stdout.splitlines()

    def line(self, lines, status, name):
        for i, line in enumerate(lines):
            fields = line.split()
            if fields and fields[0] == status and (name + ':') in line:
                fix = lines[i + 1] if i + 1 < len(lines) else ''
                return line, fix
        self.fail('no %s line for %s in:\n%s' % (status, name,
                                                  '\n'.join(lines)))

    def test_1_records(self):
        types = {(n, t) for n, t, _ in self.records}
        for want in [(DOMAIN + '.', 'MX'), (DOMAIN + '.', 'TXT'),
                     ('_dmarc.%s.' % DOMAIN, 'TXT'),
                     ('_mta-sts.%s.' % DOMAIN, 'TXT'),
                     ('mta-sts.%s.' % DOMAIN, 'CNAME'),
                     ('_smtp._tls.%s.' % DOMAIN, 'TXT'),
                     ('_25._tcp.%s.' % HOST, 'TLSA'),
                     ('_submissions._tcp.%s.' % DOMAIN, 'SRV'),
                     ('_imaps._tcp.%s.' % DOMAIN, 'SRV'),
                     ('_pop3s._tcp.%s.' % DOMAIN, 'SRV'),
                     ('autoconfig.%s.' % DOMAIN, 'CNAME')]:
            self.assertIn(want, types)
        self.assertIn((DOMAIN + '.', 'TXT', '"v=spf1 mx -all"'),
                      self.records)

    def test_2_good_zone(self):
        self.dns.set_zones({DOMAIN: self.good})
        r, lines = self.check()
        self.assertTrue(lines, r.stderr)
        for line in lines:
            if not line.startswith(' '):
                self.assertTrue(line.startswith('OK '), r.stdout)
        self.assertTrue(self.have_dkim, 'no DKIM keys for ' + DOMAIN)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_3_broken_zone(self):
        broken = [(HOST + '.', 'A', '127.0.0.1')]
        for n, t, d in self.records:
            if n.startswith('_dmarc.') or n.startswith('_smtp._tls.'):
                continue  # missing DMARC and TLS-RPT
            if t == 'MX':
                d = '10 other.example.net.'
            if n.startswith('_mta-sts.'):
                d = '"v=STSv1; id=20200101"'
            if n.startswith('_imaps.'):
                d = '0 1 1 %s.' % HOST
            if '._domainkey.' in n:
                d = '"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCB"'
            broken.append((n, t, d))
        broken.append((DOMAIN + '.', 'TXT', '"v=spf1 a -all"'))
        self.dns.set_zones({DOMAIN: broken})
        r, lines = self.check()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        line, fix = self.line(lines, 'WRONG', DOMAIN)  # MX first
        self.assertIn('other.example.net', line)
        self.assertIn('fix:', fix)
        self.assertIn('IN MX 10 %s.' % HOST, fix)
        line, fix = self.line(lines, 'MISSING', '_dmarc.' + DOMAIN)
        self.assertIn('IN TXT "v=DMARC1; p=quarantine', fix)
        line, fix = self.line(lines, 'MISSING', '_smtp._tls.' + DOMAIN)
        self.assertIn('v=TLSRPTv1; rua=mailto:tls-reports@' + DOMAIN, fix)
        line, fix = self.line(lines, 'WRONG', '_mta-sts.' + DOMAIN)
        self.assertIn('20200101', line)
        want = [d for n, t, d in self.records
                if n.startswith('_mta-sts.')][0]
        self.assertIn(want, fix)
        line, fix = self.line(lines, 'WRONG', '_imaps._tcp.' + DOMAIN)
        self.assertIn(' %d %s.' % (self.inst.ports['imaps'], HOST), fix)
        spf = [l for l in lines if l.startswith('WRONG') and ' SPF ' in l]
        self.assertTrue(spf, r.stdout)
        self.assertIn('2 SPF records', spf[0])
        if self.have_dkim:
            dk = [l for l in lines if l.startswith('WRONG') and
                  ' DKIM ' in l]
            self.assertTrue(dk, r.stdout)
            self.assertIn('different public key', dk[0])


if __name__ == '__main__':
    unittest.main()
