"""Outbound TLS policy (issue 5, "Must show"): DANE (RFC 7672) and MTA-STS
(RFC 8461) decide whether a queued message may go to an MX host.

The test builds its zones, signs the DANE ones with ldns-signzone and
serves them with nsd (dnsserver.py); Marmot's resolver (libunbound) gets
the zones' DS records as its trust anchor (dns_trust_anchor_file), so
the MX, A and TLSA answers of the signed zones are DNSSEC-secure. The
receiving MX hosts are small SMTP servers in this process (STARTTLS with
a certificate from the test's own CA, or a certificate from nowhere, or
no STARTTLS at all) on port 25 of loopback addresses of their own; the
MTA-STS policies are served over HTTPS by a tiny Python server on port
443 of another loopback address, with a certificate from the same CA
(queue_tls_ca points Marmot at it).

Shown:
- DANE-EE(3 1 1) TLSA matching the MX certificate: delivered over TLS;
  DANE-TA(2 0 1) matching the CA: delivered; a TLSA record that does not
  match: the message stays queued (451 4.7.5), never sent in plaintext,
  and is delivered once the zone is fixed.
- MTA-STS enforce with a valid policy and certificate: delivered; an MX
  host not in the policy, an MX without STARTTLS, or one whose
  certificate does not chain to the CA: stays queued; testing mode with
  such an MX: delivered.

And our own policy (OwnPolicyTest): the front answers
GET https://mta-sts.<domain>/.well-known/mta-sts.txt with "version:
STSv1", mta_sts_mode, our host name as the one mx, mta_sts_max_age, as
text/plain; not over plain HTTP, not for another Host or path.

TlsPolicyTest needs root (port 25 and 443) and nsd, ldnsutils, openssl;
skipped with the reason otherwise.
"""

import hashlib
import http.client
import http.server
import os
import re
import shutil
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import harness
import dnsserver
import postfix_mx
from postfix_mx import wait_for

OPENSSL = shutil.which('openssl') or '/usr/bin/openssl'


def run(argv, cwd):
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError('%s: %s' % (' '.join(argv), r.stderr))
    return r.stdout


class TestPki:
    """A CA, certificates it issues, and one self-signed certificate,
    made with the openssl command in a temp dir."""

    def __init__(self, d):
        self.dir = d
        self.ca_key = os.path.join(d, 'ca.key')
        self.ca_cert = os.path.join(d, 'ca.pem')
        run([OPENSSL, 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
             'ec_paramgen_curve:P-256', '-nodes', '-keyout', self.ca_key,
             '-out', self.ca_cert, '-days', '2', '-subj', '/CN=Marmot test CA',
             '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], d)

    def issue(self, name, sans, self_signed=False):
        """Returns (chain file with leaf then CA, key file)."""
        key = os.path.join(self.dir, name + '.key')
        cert = os.path.join(self.dir, name + '.crt')
        san = ','.join('DNS:' + s for s in sans)
        if self_signed:
            run([OPENSSL, 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key,
                 '-out', cert, '-days', '2', '-subj', '/CN=' + sans[0],
                 '-addext', 'subjectAltName=' + san], self.dir)
            return cert, key
        csr = os.path.join(self.dir, name + '.csr')
        ext = os.path.join(self.dir, name + '.ext')
        with open(ext, 'w') as f:
            f.write('subjectAltName=%s\nbasicConstraints=CA:FALSE\n'
                    'extendedKeyUsage=serverAuth\n' % san)
        run([OPENSSL, 'req', '-newkey', 'ec', '-pkeyopt',
             'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out',
             csr, '-subj', '/CN=' + sans[0]], self.dir)
        run([OPENSSL, 'x509', '-req', '-in', csr, '-CA', self.ca_cert,
             '-CAkey', self.ca_key, '-CAcreateserial', '-days', '2',
             '-out', cert, '-extfile', ext], self.dir)
        chain = os.path.join(self.dir, name + '.chain')
        with open(chain, 'w') as f:
            f.write(open(cert).read() + open(self.ca_cert).read())
        return chain, key

    def spki_sha256(self, cert):
        """RFC 6698 selector 1, matching type 1: SHA-256 of the
        SubjectPublicKeyInfo."""
        pem = run([OPENSSL, 'x509', '-in', cert, '-pubkey', '-noout'],
                  self.dir)
        der = subprocess.run([OPENSSL, 'pkey', '-pubin', '-outform', 'DER'],
                             input=pem.encode(), capture_output=True,
                             check=True, timeout=60).stdout
        return hashlib.sha256(der).hexdigest()

    def cert_sha256(self, cert):
        """Selector 0, matching type 1: SHA-256 of the certificate."""
        der = subprocess.run([OPENSSL, 'x509', '-in', cert, '-outform',
                              'DER'], capture_output=True, check=True,
                             timeout=60).stdout
        return hashlib.sha256(der).hexdigest()


class TestMx:
    """A minimal receiving SMTP server on addr:25 (a thread per
    connection): EHLO, STARTTLS when given a certificate, MAIL, RCPT,
    DATA, RSET, QUIT. Records each message with the TLS version it came
    over."""

    def __init__(self, addr, chain=None, key=None, name='mx.test'):
        self.addr = addr
        self.name = name
        self.ctx = None
        if chain:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(chain, key)
        self.messages = []  # (rcpts, data, tls version or None)
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 25))
        self.sock.listen(16)
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(30)
            threading.Thread(target=self._session, args=(conn,),
                             daemon=True).start()

    def _session(self, conn):
        try:
            self._serve(conn)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _serve(self, conn):
        tls = None
        f = conn.makefile('rb')

        def send(line):
            conn.sendall(line.encode() + b'\r\n')

        send('220 %s ESMTP test' % self.name)
        rcpts = []
        while True:
            line = f.readline(4096)
            if not line:
                return
            cmd = line.decode('ascii', 'replace').strip()
            verb = cmd.split(' ', 1)[0].upper()
            if verb == 'EHLO':
                ext = ['SIZE 10000000', '8BITMIME', 'SMTPUTF8']
                if self.ctx and tls is None:
                    ext.append('STARTTLS')
                send('250-%s' % self.name)
                for e in ext[:-1]:
                    send('250-' + e)
                send('250 ' + ext[-1])
            elif verb == 'HELO':
                send('250 %s' % self.name)
            elif verb == 'STARTTLS' and self.ctx and tls is None:
                send('220 go ahead')
                conn = self.ctx.wrap_socket(conn, server_side=True)
                tls = conn.version()
                f = conn.makefile('rb')
            elif verb == 'MAIL':
                rcpts = []
                send('250 ok')
            elif verb == 'RCPT':
                m = re.search(r'<([^>]*)>', cmd)
                rcpts.append(m.group(1) if m else '')
                send('250 ok')
            elif verb == 'DATA':
                send('354 go on')
                data = b''
                while True:
                    chunk = f.readline(100000)
                    if not chunk:
                        return
                    if chunk == b'.\r\n':
                        break
                    data += chunk
                with self.lock:
                    self.messages.append((rcpts, data, tls))
                send('250 queued')
            elif verb == 'RSET' or verb == 'NOOP':
                send('250 ok')
            elif verb == 'QUIT':
                send('221 bye')
                return
            else:
                send('502 not here')

    def received(self, tag):
        with self.lock:
            return [m for m in self.messages if tag.encode() in m[1]]


class PolicyServer:
    """HTTPS on addr:443 answering GET /.well-known/mta-sts.txt with the
    policy of the Host header's domain (policies: {'mta-sts.x.test':
    text})."""

    def __init__(self, addr, chain, key, policies):
        self.policies = policies
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get('Host') or '').split(':')[0]
                outer.requests.append((host, self.path))
                body = outer.policies.get(host)
                if self.path != '/.well-known/mta-sts.txt' or body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header('Content-Type', 'text/plain')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(chain, key)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server((addr, 443), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# TLS-RPT period in the test (RFC 8460 asks for days).
TLSRPT_INTERVAL = 30


def policy(mode, *mx):
    return ('version: STSv1\r\nmode: %s\r\n%smax_age: 86400\r\n'
            % (mode, ''.join('mx: %s\r\n' % m for m in mx)))


def missing():
    if os.geteuid() != 0:
        return 'needs root (ports 25 and 443)'
    for tool in (dnsserver.NSD, dnsserver.LDNS_SIGNZONE, OPENSSL):
        if not os.access(tool, os.X_OK):
            return '%s is not installed (scripts/install-deps.sh)' % tool
    return None


class TlsPolicyTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.skip_reason = missing()
        if cls.skip_reason:
            return
        cls.tmp = tempfile.mkdtemp(prefix='marmot-tlspolicy-')
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        pki = TestPki(cls.tmp)
        names = ['mx.dane.test', 'mx.danebad.test', 'mx.daneta.test',
                 'mx.sts.test', 'mx.stsmx.test', 'other.stsmx.test',
                 'mx.ststest.test']
        good_chain, good_key = pki.issue('good', names)
        bad_cert, bad_key = pki.issue('bad', ['mx.stscert.test'],
                                      self_signed=True)
        web_chain, web_key = pki.issue('web', [
            'mta-sts.%s' % d for d in ('sts.test', 'stsmx.test',
                                       'ststls.test', 'stscert.test',
                                       'ststest.test')])
        used = []

        def addr():
            a = postfix_mx.free_mx_addr(exclude=used)
            used.append(a)
            return a

        cls.good = TestMx(addr(), good_chain, good_key)
        cls.addClassCleanup(cls.good.stop)
        cls.plain = TestMx(addr())  # no STARTTLS
        cls.addClassCleanup(cls.plain.stop)
        cls.badcert = TestMx(addr(), bad_cert, bad_key)
        cls.addClassCleanup(cls.badcert.stop)
        web = addr()
        cls.web = PolicyServer(web, web_chain, web_key, {
            'mta-sts.sts.test': policy('enforce', 'mx.sts.test'),
            'mta-sts.stsmx.test': policy('enforce', 'mx.stsmx.test'),
            'mta-sts.ststls.test': policy('enforce', '*.ststls.test'),
            'mta-sts.stscert.test': policy('enforce', 'mx.stscert.test'),
            'mta-sts.ststest.test': policy('testing', 'mx.ststest.test'),
        })
        cls.addClassCleanup(cls.web.stop)
        good_ee = pki.spki_sha256(good_chain)
        ca_ta = pki.cert_sha256(pki.ca_cert)
        cls.good_ee = good_ee
        wrong = hashlib.sha256(b'not this key').hexdigest()

        def sts_zone(mx, target, mode_id='1'):
            return [('@', 'MX', '10 %s' % mx),
                    (mx, 'A', target),
                    ('_mta-sts', 'TXT', '"v=STSv1; id=%s;"' % mode_id),
                    ('mta-sts', 'A', web),
                    ('_smtp._tls', 'TXT',
                     '"v=TLSRPTv1; rua=mailto:tlsrpt@reports.test"')]

        cls.zones = {
            'dane.test': [('@', 'MX', '10 mx'), ('mx', 'A', cls.good.addr),
                          ('_25._tcp.mx', 'TLSA', '3 1 1 ' + good_ee)],
            'danebad.test': [('@', 'MX', '10 mx'),
                             ('mx', 'A', cls.good.addr),
                             ('_25._tcp.mx', 'TLSA', '3 1 1 ' + wrong)],
            'daneta.test': [('@', 'MX', '10 mx'),
                            ('mx', 'A', cls.good.addr),
                            ('_25._tcp.mx', 'TLSA', '2 0 1 ' + ca_ta)],
            'sts.test': sts_zone('mx', cls.good.addr),
            # The MX is other.stsmx.test; the policy names mx.stsmx.test.
            'stsmx.test': sts_zone('other', cls.good.addr),
            'ststls.test': sts_zone('mx', cls.plain.addr),
            'stscert.test': sts_zone('mx', cls.badcert.addr),
            # testing mode, the MX not in the policy and without TLS.
            'ststest.test': sts_zone('other', cls.plain.addr),
            # Where the TLS reports (RFC 8460) go.
            'reports.test': [('@', 'MX', '10 mx'),
                             ('mx', 'A', cls.good.addr)],
        }
        cls.dns = dnsserver.DnsServer(
            cls.zones, signed=['dane.test', 'danebad.test', 'daneta.test'])
        cls.dns.start()
        cls.addClassCleanup(cls.dns.stop)

        cls.inst = harness.Instance()
        cls.addClassCleanup(cls.inst.cleanup)
        with open(os.path.join(cls.inst.data, 'marmot.conf'), 'a') as f:
            f.write('\n# test_auth_tls_policy.py\n'
                    'dns_resolver = %s\n'
                    'dns_trust_anchor_file = %s\n'
                    'dns_timeout = 5s\n'
                    'queue_tls_ca = %s\n'
                    'queue_mta_sts = on\n'
                    'queue_retry_min = 2s\n'
                    'queue_retry_max = 4s\n'
                    'queue_scan_interval = 1s\n'
                    'queue_timeout = 20s\n'
                    'queue_max_age = 1h\n'
                    'queue_tlsrpt_interval = %ds\n'
                    % (cls.dns.resolver, cls.dns.trust_anchor_file,
                       pki.ca_cert, TLSRPT_INTERVAL))
        # The roles run as the marmot user: it must read these files.
        for p in (cls.tmp, cls.dns.dir):
            os.chmod(p, 0o755)
        for p in (pki.ca_cert, cls.dns.trust_anchor_file):
            os.chmod(p, 0o644)
        cls.inst.start(wait_port='submission')

    def setUp(self):
        if self.skip_reason:
            self.skipTest(self.skip_reason)
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)

    # -- helpers -------------------------------------------------------------

    def inject(self, rcpt, tag):
        msg = ('From: <sender@remote.test>\r\nTo: <%s>\r\n'
               'Subject: tls policy %s\r\n\r\nbody %s\r\n'
               % (rcpt, tag, tag))
        r = self.inst.marmot(['queue', 'inject', rcpt, '--from',
                              'sender@remote.test'], input=msg)
        self.inst.check_ok(r, 'marmot queue inject')
        m = re.match(r'queued ([0-9a-f]{32})$', r.stdout.strip())
        self.assertIsNotNone(m, r.stdout)
        return m.group(1)

    def assert_logged(self, pattern):
        self.assertTrue(re.search(pattern, self.log()),
                        'not in the server log: %s' % pattern)

    def log(self):
        with open(self.inst.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def queued(self, qid):
        r = self.inst.marmot(['queue', 'list'])
        self.inst.check_ok(r, 'marmot queue list')
        return qid in r.stdout

    def assert_delivered(self, mx, qid, tag, tls=True):
        got = wait_for(lambda: mx.received(tag), bool, 60.0)
        self.assertTrue(got, 'not delivered: %s' % tag)
        if tls:
            self.assertIsNotNone(got[0][2], 'delivered without TLS')
        self.assertFalse(wait_for(lambda: self.queued(qid), lambda q: not q,
                                  20.0), 'still queued after delivery')

    def assert_stays_queued(self, qid, tag, error_re, host):
        """A failed attempt with error_re in the log for host, then a
        retry (the message is still queued and nothing was sent to any
        MX)."""
        pat = re.compile(r'queue\.host\.failed conn=\S+ host=%s .*%s'
                         % (re.escape(host), error_re))
        pat_skip = re.compile(error_re)
        self.assertTrue(wait_for(
            lambda: pat.search(self.log()) or pat_skip.search(self.log()),
            bool, 60.0), 'no failure matching %s for %s' % (error_re, host))
        # Let a retry run (queue_retry_min 2 s).
        time.sleep(5)
        self.assertTrue(self.queued(qid), 'message left the queue')
        for mx in (self.good, self.plain, self.badcert):
            self.assertEqual(mx.received(tag), [], 'sent despite the policy')

    # -- DANE ------------------------------------------------------------------

    def test_dane_ee_match_delivered(self):
        qid = self.inject('alice@dane.test', 'dane-ee-ok')
        self.assert_delivered(self.good, qid, 'dane-ee-ok')
        self.assert_logged(r'queue\.session conn=\S+ host=mx\.dane\.test '
                         r'tls=TLSv1\.[23] policy=dane')

    def test_dane_ta_match_delivered(self):
        qid = self.inject('alice@daneta.test', 'dane-ta-ok')
        self.assert_delivered(self.good, qid, 'dane-ta-ok')
        self.assert_logged(r'queue\.session conn=\S+ host=mx\.daneta\.test '
                         r'tls=TLSv1\.[23] policy=dane')

    def test_dane_mismatch_stays_queued_then_fixed(self):
        qid = self.inject('alice@danebad.test', 'dane-bad')
        self.assert_stays_queued(qid, 'dane-bad',
                                 r'4\.7\.5 TLS with mx\.danebad\.test failed '
                                 r'\(policy dane\)', 'mx.danebad.test')
        zones = dict(self.zones)
        zones['danebad.test'] = [
            ('@', 'MX', '10 mx'), ('mx', 'A', self.good.addr),
            ('_25._tcp.mx', 'TLSA', '3 1 1 ' + self.good_ee)]
        self.dns.set_zones(zones)
        self.assert_delivered(self.good, qid, 'dane-bad')

    # -- MTA-STS ---------------------------------------------------------------

    def test_sts_enforce_valid_delivered(self):
        qid = self.inject('alice@sts.test', 'sts-ok')
        self.assert_delivered(self.good, qid, 'sts-ok')
        self.assert_logged(r'queue\.mta_sts\.fetched '
                         r'domain=sts\.test id=1 mode=enforce')
        self.assert_logged(r'queue\.session conn=\S+ host=mx\.sts\.test '
                         r'tls=TLSv1\.[23] policy=mta-sts')
        self.assertIn(('mta-sts.sts.test', '/.well-known/mta-sts.txt'),
                      self.web.requests)

    def test_sts_mx_not_in_policy_stays_queued(self):
        qid = self.inject('alice@stsmx.test', 'sts-mx')
        self.assert_stays_queued(qid, 'sts-mx',
                                 r'other\.stsmx\.test is not an MX host of '
                                 r'the MTA-STS policy', 'other.stsmx.test')

    def test_sts_no_starttls_stays_queued(self):
        qid = self.inject('alice@ststls.test', 'sts-notls')
        self.assert_stays_queued(qid, 'sts-notls',
                                 r'4\.7\.10 mx\.ststls\.test does not offer '
                                 r'STARTTLS', 'mx.ststls.test')

    def test_sts_bad_cert_stays_queued(self):
        qid = self.inject('alice@stscert.test', 'sts-cert')
        self.assert_stays_queued(qid, 'sts-cert',
                                 r'4\.7\.5 TLS with mx\.stscert\.test failed '
                                 r'\(policy mta-sts\)', 'mx.stscert.test')

    def test_sts_testing_mode_delivered(self):
        qid = self.inject('alice@ststest.test', 'sts-testing')
        self.assert_delivered(self.plain, qid, 'sts-testing', tls=False)
        self.assert_logged(r'queue\.mta_sts\.mx_mismatch conn=\S+ '
                           r'dest=ststest\.test host=other\.ststest\.test '
                           r'mode=testing')

    # -- TLS-RPT (runs last: it reports on the sessions above) -------------

    def report(self, domain):
        """The JSON of the last TLS report for domain that reached the
        reports MX, or None."""
        import email
        import gzip
        import json
        found = None
        for rcpts, data, _ in list(self.good.messages):
            if 'tlsrpt@reports.test' not in rcpts:
                continue
            msg = email.message_from_bytes(data)
            if msg['TLS-Report-Domain'] != domain:
                continue
            for part in msg.walk():
                if part.get_content_type() == 'application/tlsrpt+gzip':
                    found = (msg, part.get_filename(), json.loads(
                        gzip.decompress(part.get_payload(decode=True))))
        return found

    def test_z_tlsrpt_reports(self):
        # Make sure sts.test and stscert.test have sessions counted in
        # the current period, then wait for its reports.
        qid = self.inject('bob@sts.test', 'rpt-ok')
        self.assert_delivered(self.good, qid, 'rpt-ok')
        self.inject('bob@stscert.test', 'rpt-cert')
        got = wait_for(lambda: self.report('stscert.test'), bool,
                       TLSRPT_INTERVAL * 3)
        self.assertTrue(got, 'no TLS report for stscert.test')
        msg, filename, rpt = got
        self.assertIn('multipart/report', msg['Content-Type'])
        self.assertIn('report-type="tlsrpt"', msg['Content-Type'])
        self.assertRegex(msg['Subject'], r'^Report Domain: stscert\.test '
                         r'Submitter: \S+ Report-ID: <\S+>$')
        self.assertRegex(filename, r'^[^!]+!stscert\.test!\d+!\d+!\S+'
                         r'\.json\.gz$')
        pol = rpt['policies'][0]
        self.assertEqual(pol['policy']['policy-type'], 'sts')
        self.assertEqual(pol['policy']['policy-domain'], 'stscert.test')
        self.assertIn('mode: enforce', pol['policy']['policy-string'])
        self.assertGreaterEqual(
            pol['summary']['total-failure-session-count'], 1)
        kinds = {d['result-type'] for d in pol['failure-details']}
        self.assertIn('certificate-not-trusted', kinds)
        got = wait_for(lambda: self.report('sts.test'), bool,
                       TLSRPT_INTERVAL * 3)
        self.assertTrue(got, 'no TLS report for sts.test')
        pol = got[2]['policies'][0]
        self.assertGreaterEqual(
            pol['summary']['total-successful-session-count'], 1)
        self.assertEqual(pol['summary']['total-failure-session-count'], 0)


class OwnPolicyTest(unittest.TestCase):
    """The policy Marmot publishes for its own domains (RFC 8461 3.3)."""

    @classmethod
    def setUpClass(cls):
        cls.inst = harness.Instance()
        cls.addClassCleanup(cls.inst.cleanup)
        with open(os.path.join(cls.inst.data, 'marmot.conf'), 'a') as f:
            f.write('\nmta_sts_mode = enforce\nmta_sts_max_age = 2d\n')
        cls.inst.start(wait_port='https')

    def setUp(self):
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)

    def get(self, host, path='/.well-known/mta-sts.txt', tls=True,
            method='GET'):
        if tls:
            c = http.client.HTTPSConnection(
                '127.0.0.1', self.inst.ports['https'], timeout=10,
                context=self.inst.ssl_context())
        else:
            c = http.client.HTTPConnection('127.0.0.1',
                                           self.inst.ports['http'],
                                           timeout=10)
        try:
            c.request(method, path, headers={'Host': host})
            r = c.getresponse()
            return r.status, r.getheader('Content-Type'), r.read().decode()
        finally:
            c.close()

    def test_policy_served(self):
        status, ctype, body = self.get('mta-sts.%s' % harness.DOMAIN)
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith('text/plain'), ctype)
        # RFC 8461 3.2: the fields, CRLF-terminated.
        self.assertEqual(body, 'version: STSv1\r\nmode: enforce\r\n'
                         'mx: %s\r\nmax_age: 172800\r\n' % harness.HOSTNAME)
        # Host is case-insensitive and may carry a port.
        status, _, body2 = self.get('MTA-STS.%s:%d' % (
            harness.DOMAIN.upper(), self.inst.ports['https']))
        self.assertEqual((status, body2), (200, body))
        status, _, head = self.get('mta-sts.%s' % harness.DOMAIN,
                                   method='HEAD')
        self.assertEqual((status, head), (200, ''))

    def test_not_served_elsewhere(self):
        policy_start = 'version: STSv1'
        for host, path, tls in (
                (harness.HOSTNAME, '/.well-known/mta-sts.txt', True),
                ('mta-sts.%s' % harness.DOMAIN, '/', True),
                ('mta-sts.%s' % harness.DOMAIN, '/.well-known/mta-sts.txtx',
                 True),
                ('mta-sts', '/.well-known/mta-sts.txt', True),
                # RFC 8461 3.3: HTTPS only.
                ('mta-sts.%s' % harness.DOMAIN, '/.well-known/mta-sts.txt',
                 False)):
            status, _, body = self.get(host, path, tls)
            self.assertEqual(status, 200, (host, path, tls))
            self.assertNotIn(policy_start, body, (host, path, tls))
            self.assertIn('is running', body, (host, path, tls))


if __name__ == '__main__':
    unittest.main()
