"""DKIM against the oracle, python3-dkim (dkimpy, the library behind
dkimsign and dkimverify), with keys made here by openssl and handed to
both sides directly (dkimpy's dnsfunc, dkim-tool's stub records), no DNS:

- our signatures (dkim-tool sign: dkim_sign_prepare/finish, RSA and
  Ed25519 on the same message) verify with dkimpy on varied messages:
  8-bit headers and bodies, long lines, folded and duplicate fields,
  empty bodies, odd white space, bare LF;
- our verifier (dkim-tool verify) agrees with dkimpy on messages signed
  by dkimpy with every canonicalization, both algorithms, with and
  without l=, untouched or tampered in many ways: never a pass where
  dkimpy fails. The one documented difference (dkim.h): content appended
  after an l= signature is "policy" for us, a pass for dkimpy;
- ARC (RFC 8617; rsa-sha256, dkimpy's only ARC algorithm): chains sealed
  alternately by us and by dkimpy validate on both sides, and break on
  both sides when the message changes.

dkim-tool is built beside the marmot binary (build/src/lib-auth)."""

import os
import random
import subprocess
import tempfile
import unittest

import harness

try:
    import dkim
except ImportError:  # the test peers are installed by install-deps
    dkim = None

DOMAIN = b'example.com'
MESSAGES = 60


def dkim_tool():
    build = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(harness.MARMOT))))
    return os.path.join(build, 'src', 'lib-auth', 'dkim-tool')


def make_message(rng, k):
    """Message number k: every feature turns up in some, mixed."""
    eol = b'\n' if k % 17 == 5 else b'\r\n'
    h = []
    if k % 2:
        h.append(b'Received: from relay%d.example.net (relay [192.0.2.%d])'
                 % (k, k % 250) + eol + b'\tby mx.example.com; '
                 b'Thu, 1 Jan 2026 00:00:00 +0000')
    if k % 3 == 0:
        h.append(b'Received: from a.example by b.example; '
                 b'Thu, 1 Jan 2026 00:00:01 +0000')
    name = b'Ren\xc3\xa9e M\xc3\xbcller' if k % 4 == 1 else b'Sender %d' % k
    h.append((b'FROM' if k % 11 == 3 else b'From') +
             b': %s <s%d@example.com>' % (name, k))
    if k % 5 == 2:
        # folded, many recipients
        h.append(b'To: ' + (b',' + eol + b'    ').join(
            b'rcpt%d@example.net' % i for i in range(8)))
    else:
        h.append(b'To: rcpt@example.net')
    if k % 6 == 1:
        h.append(b'To: second-to@example.net')  # duplicate
        h.append(b'Cc: a@example.org')
        h.append(b'Cc: b@example.org')
    subj = b'Message %d' % k
    if k % 4 == 1:
        subj += b' \xe2\x82\xac caf\xc3\xa9'  # RFC 6532 raw UTF-8
    if k % 3 == 1:
        subj += eol + b'\t continued   with  spaces\t'  # folded
    if k % 7 == 4:
        subj += b' ' + b'x' * 300  # a long header line
    h.append((b'subject' if k % 9 == 2 else b'Subject') + b': ' + subj)
    h.append(b'Date: Thu, 1 Jan 2026 00:%02d:00 +0000' % (k % 60))
    h.append(b'Message-ID: <%d.%d@example.com>' % (k, rng.randint(0, 1 << 30)))
    if k % 8 == 3:
        h.append(b'MIME-Version: 1.0')
        h.append(b'Content-Type: multipart/mixed; boundary="b%d"' % k)
    elif k % 4 == 2:
        h.append(b'MIME-Version: 1.0')
        h.append(b'Content-Type: text/plain; charset=utf-8')
        h.append(b'Content-Transfer-Encoding: 8bit')
    if k % 10 == 7:
        h.append(b'X-Odd:   lots   of\t\tspace   ')
        h.append(b'X-Empty:')
    body = []
    kind = k % 12
    if kind == 0:
        pass  # empty body
    elif kind == 6:
        body = [b'', b'', b'']  # only empty lines
    elif k % 8 == 3:
        body = [b'--b%d' % k, b'Content-Type: text/plain', b'',
                b'part one', b'--b%d' % k,
                b'Content-Type: application/octet-stream',
                b'Content-Transfer-Encoding: base64', b'',
                b'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
                b'--b%d--' % k]
    else:
        for i in range(rng.randint(1, 30)):
            r = rng.random()
            if r < 0.1:
                body.append(b'')
            elif r < 0.2:
                body.append(b'y' * rng.randint(200, 990))  # long line
            elif r < 0.35:
                body.append(b'8-bit: \xc3\xa9t\xc3\xa9 \xff\xfe \xe6\x97\xa5')
            elif r < 0.5:
                body.append(b'trailing space   \t')
            elif r < 0.6:
                body.append(b'  \tindented\t\tand   spaced')
            elif r < 0.65:
                body.append(b'.dot-start and \r in the middle')
            else:
                body.append(b'line %d of message %d' % (i, k))
        if k % 5 == 4:
            body += [b'', b'', b'']  # trailing empty lines
    msg = eol.join(h) + eol + eol + eol.join(body)
    if body and k % 13 != 8:
        msg += eol  # else the last line has no line end
    return msg


class DkimOracleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if dkim is None:
            raise unittest.SkipTest('python3-dkim is not installed')
        cls.tool = dkim_tool()
        if not os.path.exists(cls.tool):
            raise unittest.SkipTest('dkim-tool not built: ' + cls.tool)
        cls.tmp = tempfile.mkdtemp(prefix='marmot-dkim-')
        cls.rsa_pem = os.path.join(cls.tmp, 'rsa.pem')
        cls.ed_pem = os.path.join(cls.tmp, 'ed.pem')
        subprocess.run(['openssl', 'genpkey', '-algorithm', 'RSA',
                        '-pkeyopt', 'rsa_keygen_bits:2048', '-out',
                        cls.rsa_pem], check=True, capture_output=True)
        subprocess.run(['openssl', 'genpkey', '-algorithm', 'ED25519',
                        '-out', cls.ed_pem], check=True, capture_output=True)
        cls.records = {
            b'rsa': cls.tool_record(cls.rsa_pem),
            b'ed': cls.tool_record(cls.ed_pem),
        }
        # dkimpy takes an Ed25519 private key as the base64 of its 32-byte
        # seed: the last 32 bytes of the PKCS#8 DER
        der = subprocess.run(['openssl', 'pkey', '-in', cls.ed_pem,
                              '-outform', 'DER'], check=True,
                             capture_output=True).stdout
        import base64
        cls.ed_seed = base64.b64encode(der[-32:])
        with open(cls.rsa_pem, 'rb') as f:
            cls.rsa_private = f.read()

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tool_record(cls, pem):
        r = subprocess.run([cls.tool, 'record', '-k', pem], check=True,
                           capture_output=True)
        return r.stdout.strip()

    def dnsfunc(self, name, timeout=5):
        # b'rsa._domainkey.example.com.'
        sel = name.split(b'.', 1)[0]
        if name.rstrip(b'.') != sel + b'._domainkey.' + DOMAIN:
            return None
        return self.records.get(sel)

    def our_sign(self, msg, pem, selector):
        r = subprocess.run([self.tool, 'sign', '-k', pem, '-d', 'example.com',
                            '-s', selector, '-t', '1767225600'], input=msg,
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def our_verify(self, msg):
        args = [self.tool, 'verify']
        for sel, rec in self.records.items():
            args += ['-k', '%s._domainkey.example.com=%s'
                     % (sel.decode(), rec.decode())]
        r = subprocess.run(args, input=msg, capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [line.split(' ', 1)[0] for line in
                r.stdout.decode().splitlines()]

    def oracle_verify(self, msg, idx):
        try:
            return dkim.DKIM(msg).verify(idx=idx, dnsfunc=self.dnsfunc)
        except dkim.DKIMException:
            return False

    def test_dkimpy_verifies_our_signatures(self):
        rng = random.Random(6376)
        checked = 0
        for k in range(MESSAGES):
            msg = make_message(rng, k)
            signed = self.our_sign(msg, self.rsa_pem, 'rsa')
            signed = self.our_sign(signed, self.ed_pem, 'ed')
            # ed25519 on top (idx 0), rsa below (idx 1)
            for idx, alg in ((0, 'ed25519'), (1, 'rsa')):
                self.assertTrue(self.oracle_verify(signed, idx),
                                'dkimpy rejects our %s signature on message '
                                '%d:\n%r' % (alg, k, signed))
            self.assertEqual(self.our_verify(signed), ['pass', 'pass'],
                             'message %d' % k)
            # and a changed signed field breaks both, for dkimpy too
            broken = signed.replace(b'Message %d' % k, b'Massage %d' % k, 1)
            self.assertFalse(self.oracle_verify(broken, 0))
            self.assertFalse(self.oracle_verify(broken, 1))
            self.assertEqual(self.our_verify(broken), ['fail', 'fail'])
            checked += 1
        self.assertGreaterEqual(checked, 50)
        harness.note('dkimpy verified both our signatures on %d messages'
                     % checked)

    TAMPERS = ['none', 'body', 'header', 'body-space', 'header-case',
               'header-space', 'add-from', 'append', 'drop-header',
               'sig-b', 'sig-d', 'none', 'refold', 'add-received']

    def tamper(self, msg, how, rng):
        head, sep, body = msg.partition(b'\r\n\r\n')
        if how == 'body':
            if not body:
                return head + sep + b'new body\r\n'
            i = rng.randrange(len(body))
            return head + sep + body[:i] + b'#' + body[i + 1:]
        if how == 'header':
            return msg.replace(b'Subject: Message', b'Subject: Massage', 1)
        if how == 'body-space':
            return head + sep + body.replace(b' ', b'   ', 1).replace(
                b'\r\n', b' \r\n', 1)
        if how == 'header-case':
            return msg.replace(b'\r\nTo:', b'\r\nTO:', 1)
        if how == 'header-space':
            return msg.replace(b'\r\nDate: ', b'\r\nDate:    ', 1)
        if how == 'add-from':
            return head + b'\r\nFrom: mallory@evil.example' + sep + body
        if how == 'append':
            return msg + b'appended by a list\r\n'
        if how == 'drop-header':
            lines = head.split(b'\r\n')
            lines = [x for x in lines if not x.startswith(b'Date:')]
            return b'\r\n'.join(lines) + sep + body
        if how == 'sig-b':
            i = msg.index(b' b=') + 10
            c = b'A' if msg[i:i + 1] != b'A' else b'B'
            return msg[:i] + c + msg[i + 1:]
        if how == 'sig-d':
            return msg.replace(b'd=example.com', b'd=example.org', 1)
        if how == 'refold':
            return msg.replace(b'\r\nTo: ', b'\r\nTo:\r\n\t', 1)
        if how == 'add-received':
            return b'Received: from x by y; Thu, 1 Jan 2026\r\n' + msg
        return msg

    def test_we_agree_with_dkimpy(self):
        rng = random.Random(8463)
        canons = [(b'simple', b'simple'), (b'relaxed', b'relaxed'),
                  (b'relaxed', b'simple'), (b'simple', b'relaxed')]
        agree = policy = fails = passes = 0
        disagreements = []
        for k in range(MESSAGES):
            msg = make_message(rng, k)
            if b'\r\n' not in msg:  # dkimsign's input here is CRLF
                msg = msg.replace(b'\n', b'\r\n')
            canon = canons[k % 4]
            ed = k % 3 == 1
            length = k % 5 == 3
            include = None
            if k % 7 == 2:
                include = [b'from', b'to', b'subject']
            sig = dkim.sign(msg, b'ed' if ed else b'rsa', DOMAIN,
                            self.ed_seed if ed else self.rsa_private,
                            canonicalize=canon,
                            signature_algorithm=(b'ed25519-sha256' if ed
                                                 else b'rsa-sha256'),
                            include_headers=include, length=length)
            signed = sig + msg
            how = self.TAMPERS[k % len(self.TAMPERS)]
            if length and k % 2 == 0:
                how = 'append'
            tampered = self.tamper(signed, how, rng)
            oracle = self.oracle_verify(tampered, 0)
            ours = self.our_verify(tampered)
            self.assertEqual(len(ours), 1, 'message %d: %r' % (k, ours))
            what = ('message %d (%s/%s, %s, l=%s, h=%s, tamper %s): ours %s,'
                    ' dkimpy %s' % (k, canon[0].decode(), canon[1].decode(),
                                    'ed25519' if ed else 'rsa', length,
                                    include, how, ours[0], oracle))
            # 0 false passes, whatever else happens
            self.assertFalse(ours[0] == 'pass' and not oracle, what)
            if ours[0] == 'policy' and oracle and length and how == 'append':
                policy += 1  # dkim.h: unsigned content after l=
            elif (ours[0] == 'pass') == oracle:
                agree += 1
                if oracle:
                    passes += 1
                else:
                    fails += 1
            else:
                disagreements.append(what)
        self.assertEqual(disagreements, [])
        self.assertGreaterEqual(agree + policy, 50)
        # the set exercises both outcomes
        self.assertGreaterEqual(passes, 15)
        self.assertGreaterEqual(fails, 15)
        self.assertGreaterEqual(policy, 3)
        harness.note('agreed with dkimpy on %d messages (%d pass, %d fail), '
                     '%d l= policy, 0 false passes'
                     % (agree, passes, fails, policy))

    def our_arc_seal(self, msg, cv, selector, pem):
        r = subprocess.run([self.tool, 'arc-seal', '-k', pem, '-d',
                            'example.com', '-s', selector, '-t', '1767225600',
                            '-a', 'mx.example.com', '-r',
                            'spf=pass smtp.mailfrom=example.net; arc=%s' % cv,
                            '-c', cv], input=msg, capture_output=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def our_arc_verify(self, msg):
        args = [self.tool, 'arc-verify']
        for sel, rec in self.records.items():
            args += ['-k', '%s._domainkey.example.com=%s'
                     % (sel.decode(), rec.decode())]
        r = subprocess.run(args, input=msg, capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.decode().split()

    def oracle_arc(self, msg):
        try:
            return dkim.arc_verify(msg, dnsfunc=self.dnsfunc)[0].decode()
        except dkim.DKIMException:
            return 'fail'

    def oracle_arc_seal(self, msg, cv):
        # dkimpy takes cv from our A-R's arc= result for its authserv-id
        msg = (b'Authentication-Results: lists.example.com; arc=%s\r\n'
               % cv.encode()) + msg
        return b''.join(dkim.arc_sign(msg, b'rsa', DOMAIN, self.rsa_private,
                                      b'lists.example.com')) + msg

    def test_arc_with_dkimpy(self):
        rng = random.Random(8617)
        chains = 0
        for k in range(20):
            msg = make_message(rng, k)
            if b'\r\n' not in msg:
                msg = msg.replace(b'\n', b'\r\n')
            # us, then dkimpy, then us: each validates on both sides
            m1 = self.our_arc_seal(msg, 'none', 'rsa', self.rsa_pem)
            self.assertEqual(self.oracle_arc(m1), 'pass', 'message %d' % k)
            self.assertEqual(self.our_arc_verify(m1)[:2],
                             ['pass', 'instances=1'])
            m2 = self.oracle_arc_seal(m1, 'pass')
            self.assertEqual(self.oracle_arc(m2), 'pass')
            self.assertEqual(self.our_arc_verify(m2)[:2],
                             ['pass', 'instances=2'], 'message %d' % k)
            m3 = self.our_arc_seal(m2, 'pass', 'rsa', self.rsa_pem)
            self.assertEqual(self.oracle_arc(m3), 'pass', 'message %d' % k)
            self.assertEqual(self.our_arc_verify(m3)[:2],
                             ['pass', 'instances=3'])
            # a changed body breaks the chain for both
            head, sep, body = m3.partition(b'\r\n\r\n')
            bad = head + sep + body + b'tampered\r\n'
            self.assertEqual(self.oracle_arc(bad), 'fail')
            self.assertEqual(self.our_arc_verify(bad)[0], 'fail')
            # a changed older AAR too (the newest seal covers it)
            bad = m3.replace(b'i=1; mx.example.com;',
                             b'i=1; mx.evil.example;', 1)
            self.assertNotEqual(bad, m3)
            self.assertEqual(self.oracle_arc(bad), 'fail')
            self.assertEqual(self.our_arc_verify(bad)[0], 'fail')
            # dkimpy first: we validate its chain of one
            p1 = self.oracle_arc_seal(msg, 'none')
            self.assertEqual(self.our_arc_verify(p1)[:2],
                             ['pass', 'instances=1'], 'message %d' % k)
            chains += 1
        harness.note('ARC chains of 3 (us, dkimpy, us) valid on both sides '
                     'for %d messages' % chains)


if __name__ == '__main__':
    unittest.main()
