"""DMARC aggregate reports we send (issue 5, Deliver 3; RFC 7489 7.2).

Messages reach port 25 from 127.0.0.2 for domains whose DMARC record has
rua=; with dmarc_report_interval = 10s the front mails, per policy
domain, a gzip'ed XML report through the outbound queue
(queue_relay_host: a fake SMTP server, as in test_queue.py). The test
gunzips the attachments and checks the counts:
- rpt.test (rua in its own domain): the two messages, spf pass;
- ext.test (rua at reports.test, which authorizes it with
  ext.test._report._dmarc.reports.test, RFC 7489 7.1): its message;
- noauth.test (rua at reports.test, no authorization): no report."""

import email
import gzip
import os
import smtplib
import time
import unittest
import xml.etree.ElementTree as ET

import dnsserver
import harness
from harness import DOMAIN
from smtp_util import MailCase, OTHER_SOURCE
from test_queue import FakeSMTP, loopback_host

ALICE = 'alice@' + DOMAIN
SOURCE = OTHER_SOURCE  # 127.0.0.2
INTERVAL = 10


def zones():
    spf = '"v=spf1 ip4:%s -all"' % SOURCE
    return {
        'rpt.test': [
            ('@', 'TXT', spf),
            ('_dmarc', 'TXT',
             '"v=DMARC1; p=none; rua=mailto:dmarc@rpt.test!10m"'),
        ],
        'ext.test': [
            ('@', 'TXT', spf),
            ('_dmarc', 'TXT',
             '"v=DMARC1; p=quarantine; rua=mailto:agg@reports.test"'),
        ],
        'noauth.test': [
            ('@', 'TXT', spf),
            ('_dmarc', 'TXT',
             '"v=DMARC1; p=none; rua=mailto:agg@reports.test"'),
        ],
        'reports.test': [
            ('ext.test._report._dmarc', 'TXT', '"v=DMARC1"'),
        ],
    }


class DmarcReportTest(MailCase):
    ACCOUNTS = (ALICE,)

    @classmethod
    def setUpClass(cls):
        cls.dns = dnsserver.DnsServer(zones())
        cls.dns.start()
        cls.addClassCleanup(cls.dns.stop)
        cls.fake = FakeSMTP(loopback_host())
        cls.addClassCleanup(cls.fake.close)
        cls.CONF = (('dns_resolver', cls.dns.resolver),
                    ('dns_timeout', '5s'),
                    ('dmarc_report_interval', '%ds' % INTERVAL),
                    ('queue_relay_host', '%s:%d' % (cls.fake.host,
                                                    cls.fake.port)),
                    ('queue_scan_interval', '1s'),
                    ('queue_retry_min', '1s'),
                    ('queue_retry_max', '2s'))
        super().setUpClass()

    def send(self, sender, case):
        data = ('From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n'
                'Message-ID: <%s@dmarc.test>\r\n\r\nHello.\r\n'
                % (sender, ALICE, case, case)).encode()
        s = smtplib.SMTP(harness.LOOPBACK, self.inst.ports['smtp'],
                         local_hostname='mx.rpt.test', timeout=60,
                         source_address=(SOURCE, 0))
        try:
            self.assertEqual(s.sendmail(sender, [ALICE], data), {})
        finally:
            s.quit()

    def reports(self, domain):
        """[(rcpts, filename, xml root)] of the reports for domain."""
        out = []
        for t in list(self.fake.transactions):
            msg = email.message_from_bytes(t['data'])
            if not (msg['Subject'] or '').startswith(
                    'Report Domain: %s ' % domain):
                continue
            for part in msg.walk():
                if part.get_content_type() == 'application/gzip':
                    out.append((t['rcpts'], part.get_filename(),
                                ET.fromstring(gzip.decompress(
                                    part.get_payload(decode=True)))))
        return out

    def count(self, domain):
        return sum(int(r.findtext('row/count'))
                   for _, _, root in self.reports(domain)
                   for r in root.findall('record'))

    def test_reports(self):
        self.send('bob@rpt.test', 'r1')
        self.send('carol@rpt.test', 'r2')
        self.send('bob@ext.test', 'e1')
        self.send('bob@noauth.test', 'n1')
        deadline = time.time() + INTERVAL * 4
        while time.time() < deadline and (self.count('rpt.test') < 2 or
                                          self.count('ext.test') < 1):
            time.sleep(0.5)
        self.assertEqual(self.count('rpt.test'), 2)
        self.assertEqual(self.count('ext.test'), 1)
        rcpts, filename, root = self.reports('rpt.test')[0]
        self.assertEqual(rcpts, ['dmarc@rpt.test'])
        self.assertRegex(filename, r'^[^!]+!rpt\.test!\d+!\d+\.xml\.gz$')
        self.assertEqual(root.findtext('policy_published/domain'),
                         'rpt.test')
        self.assertEqual(root.findtext('policy_published/p'), 'none')
        rec = root.find('record')
        self.assertEqual(rec.findtext('row/source_ip'), SOURCE)
        self.assertEqual(rec.findtext('row/policy_evaluated/spf'), 'pass')
        self.assertEqual(rec.findtext('identifiers/header_from'),
                         'rpt.test')
        self.assertEqual(rec.findtext('auth_results/spf/domain'),
                         'rpt.test')
        self.assertEqual(rec.findtext('auth_results/spf/result'), 'pass')
        self.assertEqual(self.reports('ext.test')[0][0],
                         ['agg@reports.test'])
        # RFC 7489 7.1: reports.test did not authorize noauth.test.
        time.sleep(INTERVAL)
        self.assertEqual(self.reports('noauth.test'), [])
        with open(self.inst.log_path, encoding='utf-8',
                  errors='replace') as f:
            log = f.read()
        self.assertRegex(log, r'dmarc\.report\.unauthorized.*noauth\.test')


REPORT = b'''<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <report_id>1234567890</report_id>
    <date_range><begin>1764633600</begin><end>1764719999</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>%s</domain><adkim>r</adkim><aspf>r</aspf>
    <p>reject</p><sp>reject</sp><pct>100</pct>
  </policy_published>
  <record>
    <row><source_ip>192.0.2.1</source_ip><count>5</count>
      <policy_evaluated><disposition>none</disposition>
        <dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>%s</header_from></identifiers>
    <auth_results><spf><domain>%s</domain><result>fail</result></spf>
    </auth_results>
  </record>
  <record>
    <row><source_ip>198.51.100.7</source_ip><count>3</count>
      <policy_evaluated><disposition>reject</disposition>
        <dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>%s</header_from></identifiers>
    <auth_results><spf><domain>x.example</domain><result>fail</result>
    </spf></auth_results>
  </record>
</feedback>
''' % ((DOMAIN.encode(),) * 4)


class DmarcImportTest(unittest.TestCase):
    """`marmot dmarc import FILE` and `marmot dmarc reports`."""

    def setUp(self):
        self.inst = harness.Instance()
        self.addCleanup(self.inst.cleanup)

    def write(self, name, data):
        path = os.path.join(self.inst.dir, name)
        with open(path, 'wb') as f:
            f.write(data)
        return path

    def test_import(self):
        gz = self.write('r.xml.gz', gzip.compress(REPORT))
        r = self.inst.marmot(['dmarc', 'import', gz])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('messages=8 pass=5 fail=3', r.stdout)
        # The same report again is not counted twice.
        r = self.inst.marmot(['dmarc', 'import', self.write('r.xml',
                                                            REPORT)])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('already imported', r.stdout)
        r = self.inst.marmot(['dmarc', 'reports'])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split('\t'),
                         ['org', 'report_id', 'domain', 'begin', 'end',
                          'messages', 'pass', 'fail'])
        self.assertEqual(lines[1:], [
            'google.com\t1234567890\t%s\t2025-12-02T00:00:00Z\t'
            '2025-12-02T23:59:59Z\t8\t5\t3' % DOMAIN])
        # Not a report: a clear error, nothing stored.
        bad = self.write('bad.xml', b'<?xml version="1.0"?><html/>')
        r = self.inst.marmot(['dmarc', 'import', bad])
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.strip())
        r = self.inst.marmot(['dmarc', 'import', bad + '.missing'])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(
            len(self.inst.marmot(['dmarc', 'reports']).stdout.splitlines()),
            2)


class DmarcFetchTest(unittest.TestCase):
    """`marmot dmarc fetch ADDRESS`: the reports mailed to an account
    (here imported into its INBOX) are found among the attachments,
    decoded and stored; other mail is left alone."""

    def test_fetch(self):
        from email.message import EmailMessage
        inst = harness.Instance()
        self.addCleanup(inst.cleanup)
        rcpt = 'dmarc-reports@' + DOMAIN
        inst.add_user(rcpt)
        # RFC 7489 7.2.1.1: a gzip'ed attachment, base64 in transit.
        gz = EmailMessage()
        gz['From'] = 'noreply-dmarc-support@google.com'
        gz['To'] = rcpt
        gz['Subject'] = 'Report Domain: %s Submitter: google.com' % DOMAIN
        gz.set_content('A DMARC aggregate report.\n')
        gz.add_attachment(gzip.compress(REPORT), maintype='application',
                          subtype='gzip',
                          filename='google.com!%s!1.xml.gz' % DOMAIN)
        # Another receiver's report as plain XML, quoted-printable.
        other = REPORT.replace(b'google.com', b'other.example').replace(
            b'1234567890', b'r-2')
        xml = EmailMessage()
        xml['From'] = 'reports@other.example'
        xml['To'] = rcpt
        xml['Subject'] = 'Report'
        xml.set_content(other.decode(), subtype='xml', cte='quoted-printable')
        plain = EmailMessage()
        plain['From'] = 'someone@other.example'
        plain['To'] = rcpt
        plain['Subject'] = 'not a report'
        plain.set_content('hello\n')
        path = os.path.join(inst.dir, 'in.mbox')
        with open(path, 'wb') as f:
            for m in (gz, plain, xml, gz):
                f.write(b'From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n'
                        + bytes(m).replace(b'\nFrom ', b'\n>From ') + b'\n')
        inst.check_ok(inst.marmot(['import', rcpt, '--mbox', path]),
                      'import')
        r = inst.check_ok(inst.marmot(['dmarc', 'fetch', rcpt]),
                          'dmarc fetch')
        self.assertIn('4 messages, 3 report attachments, 2 new reports '
                      'stored, 0 unreadable', r.stdout)
        rows = sorted(inst.marmot(['dmarc', 'reports']).stdout
                      .splitlines()[1:])
        self.assertEqual([x.split('\t')[:3] + x.split('\t')[5:]
                          for x in rows],
                         [['google.com', '1234567890', DOMAIN, '8', '5',
                           '3'],
                          ['other.example', 'r-2', DOMAIN, '8', '5', '3']])
        # A second run stores nothing new; an unknown account fails.
        r = inst.check_ok(inst.marmot(['dmarc', 'fetch', rcpt]),
                          'dmarc fetch again')
        self.assertIn('0 new reports stored', r.stdout)
        r = inst.marmot(['dmarc', 'fetch', 'nobody@' + DOMAIN])
        self.assertEqual(r.returncode, 1)
        self.assertIn('does not exist', r.stderr)
