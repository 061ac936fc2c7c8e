"""Real IMAP clients against Marmot (issue 6): Python's imaplib through a
whole session (LIST, SELECT, FETCH, STORE, SEARCH, UID COPY/MOVE with
COPYUID, EXPUNGE, APPEND with APPENDUID, CREATE/RENAME/DELETE, STATUS,
IDLE, two sessions seeing each other's changes, a 3 MB message, UTF-7 and
UTF8=ACCEPT mailbox names), mutt in batch mode (read, flag, move, over
IMAPS and STARTTLS, and a header cache resynchronised with QRESYNC),
mbsync syncing the account to a Maildir and back (flags, deletions and
folders both ways, 150 messages), fetchmail over IMAPS and STARTTLS (keep
and nokeep) and curl's IMAP URLs (fetch by UID, UIDVALIDITY, sections,
SEARCH, EXAMINE, STATUS, LIST, APPEND, STARTTLS).

Mail comes in through `marmot deliver` (waiting for the vault's merge)
and, where the arrival time matters (IDLE), over SMTP on port 25. Each
test has an account of its own on one Marmot instance shared by the
module. Every client runs with a temporary HOME, trusts exactly the
instance's self-signed certificate (mutt does not check the name: it
connects to 127.0.0.1), and every wait is bounded (subprocess timeouts,
socket timeouts, deadlines).

What a client writes is compared with the server's BODY[] byte for byte;
the only differences allowed are the client's own, each removed by a
named helper: Unix line ends where the client stores mail that way (mutt,
Maildir: lf()), isync's X-TUID field (strip_tuid()) and fetchmail's
Received field (strip_fetchmail_received()).

The clients talk to the server named by SERVER_FACTORY (a class with the
interface of MarmotServer below); the tests themselves know nothing of
Marmot's internals, so a failure here is the server's or a client's, and
the assertion message says which command got what."""

import base64
import calendar
import fcntl
import imaplib
import itertools
import os
import random
import re
import select
import shutil
import smtplib
import socket
import struct
import subprocess
import tempfile
import termios
import time
import unittest
import zlib

import harness
from harness import DOMAIN, HOSTNAME, LOOPBACK, LineClient, imap_quote
from smtp_util import MailInstance, first_diff, strip_trace

REMOTE = 'remote.test'
CLIENT_TIMEOUT = 60  # seconds for one run of mutt, mbsync, fetchmail, curl
SOCKET_TIMEOUT = 15


# -- the server under test ---------------------------------------------------

class MarmotServer:
    """One Marmot instance (port base, accounts, delivery) for the module.
    The interface the tests use: host, hostname, ports['imap' | 'imaps' |
    'smtp'], cert_path, new_account(tag), deliver(address, [bytes]),
    deliver_smtp(address, bytes), ssl_context(), log_text(), close()."""

    def __init__(self):
        self.mi = MailInstance(('alice@' + DOMAIN,))
        self.inst = self.mi.inst
        self.inst.wait_port('imaps')
        self.host = LOOPBACK
        self.hostname = HOSTNAME
        self.ports = dict(self.inst.ports)
        self.cert_path = self.inst.cert_path
        self.count = 0

    def new_account(self, tag):
        self.count += 1
        address = '%s%d@%s' % (re.sub(r'[^a-z0-9]', '', tag.lower())[:20],
                               self.count, DOMAIN)
        return address, self.mi.add_user(address)

    def deliver(self, address, messages):
        """Delivers each message with `marmot deliver` and waits until the
        vault has merged them into the store."""
        for msg in messages:
            r = subprocess.run(
                [self.inst.binary, 'deliver', address, '--data',
                 self.inst.data], input=msg, capture_output=True,
                timeout=CLIENT_TIMEOUT)
            if r.returncode != 0:
                raise AssertionError('marmot deliver %s: exit %d\n%s%s'
                                     % (address, r.returncode,
                                        r.stdout.decode(errors='replace'),
                                        r.stderr.decode(errors='replace')))
        self.mi.wait_merged([address])

    def deliver_mbox(self, address, path):
        """Delivers every message of the mbox at path (`marmot deliver
        --mbox`) and waits for the merge."""
        r = subprocess.run(
            [self.inst.binary, 'deliver', address, '--mbox', path, '--data',
             self.inst.data], stdin=subprocess.DEVNULL, capture_output=True,
            timeout=CLIENT_TIMEOUT)
        if r.returncode != 0:
            raise AssertionError('marmot deliver %s --mbox: exit %d\n%s'
                                 % (address, r.returncode,
                                    r.stderr.decode(errors='replace')))
        self.mi.wait_merged([address])

    def deliver_smtp(self, address, msg):
        """Sends msg over SMTP (port 25); returns once it was accepted."""
        with smtplib.SMTP(LOOPBACK, self.ports['smtp'],
                          local_hostname='client.' + REMOTE,
                          timeout=SOCKET_TIMEOUT) as s:
            s.sendmail('sender@' + REMOTE, [address], msg)

    def ssl_context(self):
        return self.inst.ssl_context()

    def log_text(self):
        return self.inst.log_text()

    def close(self):
        self.mi.cleanup()


SERVER_FACTORY = MarmotServer
_server = None
_server_error = None


def get_server():
    global _server, _server_error
    if _server_error is not None:
        raise AssertionError('the server could not start:\n' + _server_error)
    if _server is None:
        try:
            _server = SERVER_FACTORY()
        except BaseException as e:
            _server_error = '%s: %s' % (type(e).__name__, e)
            raise
    return _server


def tearDownModule():
    global _server
    if _server is not None:
        _server.close()
        _server = None


# -- messages ----------------------------------------------------------------

def message(subject, sender='Sender One <one@%s>' % REMOTE, body=None,
            headers=(), date='Tue, 01 Dec 2026 10:00:00 +0000'):
    """A text/plain message with a dot-led line, 8-bit text and a long
    line, so that every client's transparency and line handling is
    exercised."""
    lines = ['From: %s' % sender,
             'To: someone@%s' % DOMAIN,
             'Subject: %s' % subject,
             'Date: %s' % date,
             'Message-ID: <%s.%d@%s>' % (re.sub(r'\W', '-', subject),
                                         zlib.crc32(subject.encode()) % 100000,
                                         REMOTE),
             'MIME-Version: 1.0',
             'Content-Type: text/plain; charset=utf-8',
             'Content-Transfer-Encoding: 8bit']
    lines += ['%s: %s' % h for h in headers]
    text = body if body is not None else (
        'Hello, this is "%s".\r\n'
        '.a line that starts with a dot\r\n'
        'gr\u00fc\u00dfe aus M\u00fcnchen\r\n'
        '%s\r\n' % (subject, 'x' * 200))
    return ('\r\n'.join(lines) + '\r\n\r\n' + text).encode()


def multipart_message(subject, sender='Bob <bob@%s>' % REMOTE):
    return ('From: %s\r\n'
            'To: someone@%s\r\n'
            'Subject: %s\r\n'
            'Date: Wed, 02 Dec 2026 08:30:00 +0100\r\n'
            'Message-ID: <mp.%d@%s>\r\n'
            'X-Marmot-Test: header-marker-5150\r\n'
            'MIME-Version: 1.0\r\n'
            'Content-Type: multipart/mixed; boundary="=_b1"\r\n'
            '\r\n'
            'This is a MIME message.\r\n'
            '--=_b1\r\n'
            'Content-Type: text/plain; charset=us-ascii\r\n'
            '\r\n'
            'The attachment is a few bytes.\r\n'
            '--=_b1\r\n'
            'Content-Type: application/octet-stream; name="data.bin"\r\n'
            'Content-Disposition: attachment; filename="data.bin"\r\n'
            'Content-Transfer-Encoding: base64\r\n'
            '\r\n'
            'AAECAwQFBgcICQ==\r\n'
            '--=_b1--\r\n' % (sender, DOMAIN, subject,
                              zlib.crc32(subject.encode()) % 100000,
                              REMOTE)).encode()


def lf(data):
    """data with CRLF line ends turned into LF (Maildir and mbox clients
    store Unix line ends)."""
    return data.replace(b'\r\n', b'\n')


# -- IMAP response parsing -----------------------------------------------

class ParseError(Exception):
    pass


def parse_sexp(buf):
    """Parses one IMAP response body (atoms, "quoted", {n} and ~{n}
    literals, parenthesised lists, NIL) into nested lists; atoms and
    strings are bytes, NIL is None."""
    pos = 0
    n = len(buf)

    def value():
        nonlocal pos
        while pos < n and buf[pos:pos + 1] == b' ':
            pos += 1
        if pos >= n:
            raise ParseError('unexpected end in %r' % buf[:200])
        c = buf[pos:pos + 1]
        if c == b'(':
            pos += 1
            out = []
            while True:
                while pos < n and buf[pos:pos + 1] == b' ':
                    pos += 1
                if pos >= n:
                    raise ParseError('unclosed list in %r' % buf[:200])
                if buf[pos:pos + 1] == b')':
                    pos += 1
                    return out
                out.append(value())
        if c == b'"':
            pos += 1
            out = bytearray()
            while pos < n and buf[pos:pos + 1] != b'"':
                if buf[pos:pos + 1] == b'\\':
                    pos += 1
                out += buf[pos:pos + 1]
                pos += 1
            if pos >= n:
                raise ParseError('unclosed string in %r' % buf[:200])
            pos += 1
            return bytes(out)
        if c == b'~' and buf[pos + 1:pos + 2] == b'{':
            pos += 1  # literal8 (RFC 3516 4.1)
            c = b'{'
        if c == b'{':
            end = buf.index(b'}', pos)
            size = int(buf[pos + 1:end].rstrip(b'+'))
            start = end + 1
            if buf[start:start + 2] == b'\r\n':
                start += 2
            pos = start + size
            if pos > n:
                raise ParseError('short literal in %r' % buf[:200])
            return buf[start:pos]
        m = re.compile(rb'[^ ()\[\]]+(\[[^\]]*\](<[0-9.]+>)?)?').match(
            buf, pos)
        if not m:
            raise ParseError('unexpected %r at %d in %r' % (c, pos,
                                                            buf[:200]))
        pos = m.end()
        atom = m.group(0)
        return None if atom.upper() == b'NIL' else atom

    out = []
    while True:
        while pos < n and buf[pos:pos + 1] in (b' ', b'\r', b'\n'):
            pos += 1
        if pos >= n:
            return out
        out.append(value())


def imaplib_responses(data):
    """imaplib's list of FETCH (or LIST...) data -> raw responses (bytes,
    literals inlined as {n}CRLF + bytes). A tuple is (text ending in {n},
    literal); whatever follows a tuple continues the same response."""
    out = []
    cont = False
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            if cont:
                out[-1] += item[0] + b'\r\n' + item[1]
            else:
                out.append(item[0] + b'\r\n' + item[1])
            cont = True
        else:
            if cont:
                out[-1] += item
            else:
                out.append(item)
            cont = False
    return out


def fetch_map(data):
    """{sequence number: {ITEM NAME: value}} from imaplib FETCH data."""
    out = {}
    for raw in imaplib_responses(data):
        parsed = parse_sexp(raw)
        if len(parsed) != 2 or not isinstance(parsed[1], list):
            raise ParseError('not a FETCH response: %r' % raw[:300])
        items = parsed[1]
        if len(items) % 2:
            raise ParseError('odd FETCH item list: %r' % raw[:300])
        d = out.setdefault(int(parsed[0]), {})
        for i in range(0, len(items), 2):
            d[items[i].decode().upper()] = items[i + 1]
    return out


def flags_of(value):
    """The flags of a FLAGS item, without \\Recent (session-specific,
    gone in IMAP4rev2, RFC 9051 E.4: a server may or may not report it)."""
    return set(f.decode() for f in value) - {'\\Recent'}


def list_map(data):
    """{mailbox name: (attributes set, delimiter)} from imaplib LIST data."""
    out = {}
    for raw in imaplib_responses(data):
        attrs, delim, name = parse_sexp(raw)
        out[name.decode()] = (set(a.decode().lower() for a in attrs),
                              delim.decode() if delim else None)
    return out


def status_map(data):
    """{ITEM: int} of one imaplib STATUS answer."""
    parsed = parse_sexp(imaplib_responses(data)[0])
    items = parsed[1]
    return {items[i].decode().upper(): int(items[i + 1])
            for i in range(0, len(items), 2)}


def code_args(text, code):
    """The arguments of response code [CODE a b c] in text, or None."""
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    m = re.search(r'\[%s ([^\]]*)\]' % code, text, re.I)
    return m.group(1).split() if m else None


def uid_set(text):
    """'3,5:7' -> [3, 5, 6, 7] (COPYUID and APPENDUID sets)."""
    out = []
    for part in text.split(','):
        if ':' in part:
            a, b = (int(x) for x in part.split(':'))
            out += list(range(min(a, b), max(a, b) + 1))
        else:
            out.append(int(part))
    return out


# -- the base class ------------------------------------------------------

def close_imap(m):
    """LOGOUT and close an imaplib session (again: a no-op)."""
    if getattr(m, 'closed_by_test', False):
        return
    m.closed_by_test = True
    try:
        m.logout()
    except (imaplib.IMAP4.error, OSError, EOFError):
        pass
    try:
        m.shutdown()
    except OSError:
        pass


class ClientCase(unittest.TestCase):
    """A fresh account per test, a temporary directory (the clients'
    HOME) and helpers to check the server's side with imaplib."""

    def setUp(self):
        self.srv = get_server()
        self.addCleanup(harness.dump_log_on_failure, self, self.srv)
        self.user, self.password = self.srv.new_account(
            self._testMethodName.replace('test_', ''))
        self.tmp = tempfile.mkdtemp(prefix='marmot-clients-')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.home = os.path.join(self.tmp, 'home')
        os.mkdir(self.home, 0o700)
        self.cert = os.path.join(self.tmp, 'server-cert.pem')
        shutil.copyfile(self.srv.cert_path, self.cert)

    def env(self):
        env = {'HOME': self.home, 'PATH': '/usr/bin:/bin:/usr/sbin:/sbin',
               'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8', 'TERM': 'vt100',
               'TMPDIR': self.tmp}
        return env

    def write_private(self, name, text):
        """Writes a client's configuration (it holds the password) as
        HOME/name, mode 0600 (fetchmail refuses anything else)."""
        path = os.path.join(self.home, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        return path

    def run_client(self, argv, input=None, ok_codes=(0,), timeout=None):
        """Runs a client with the test's environment; fails unless its
        exit code is one of ok_codes. Returns the CompletedProcess
        (bytes)."""
        try:
            r = subprocess.run(argv, input=input, capture_output=True,
                               env=self.env(), cwd=self.tmp,
                               timeout=timeout or CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            self.fail('%s did not finish within %d s\nstdout:\n%s\n'
                      'stderr:\n%s' % (' '.join(argv), e.timeout,
                                       (e.stdout or b'')[-3000:],
                                       (e.stderr or b'')[-3000:]))
        if r.returncode not in ok_codes:
            self.fail('%s: exit %d (expected %r)\nstdout:\n%s\nstderr:\n%s'
                      % (' '.join(argv), r.returncode, ok_codes,
                         r.stdout.decode(errors='replace')[-4000:],
                         r.stderr.decode(errors='replace')[-4000:]))
        return r

    def curl(self, url, *args, scheme='imaps', input=None, ok_codes=(0,)):
        """curl's output for URL (imaps://HOST:PORT/url) as the test's
        user, checking the instance's certificate (its name resolved to
        loopback)."""
        port = self.srv.ports[scheme]
        argv = ['curl', '-sS', '--max-time', '30',
                '--resolve', '%s:%d:%s' % (self.srv.hostname, port,
                                           self.srv.host),
                '--cacert', self.cert, '-u', '%s:%s' % (self.user,
                                                        self.password),
                '%s://%s:%d/%s' % (scheme, self.srv.hostname, port, url)]
        return self.run_client(argv + list(args), input=input,
                               ok_codes=ok_codes).stdout

    # -- imaplib on the server's side -------------------------------------

    def imap(self, user=None, password=None):
        """A logged-in imaplib session over IMAPS (closed at cleanup)."""
        return harness.imap_login(self, self.srv, self.srv.ssl_context(),
                                  user or self.user,
                                  password or self.password,
                                  timeout=SOCKET_TIMEOUT, host=self.srv.host,
                                  cleanup=close_imap)

    def ok(self, answer, what):
        typ, data = answer
        self.assertEqual(typ, 'OK', '%s: expected OK, got %s %r'
                         % (what, typ, data))
        return data

    def select(self, m, box='INBOX', readonly=False):
        data = self.ok(m.select(imap_quote(box), readonly=readonly),
                       'SELECT ' + box)
        return int(data[0])

    def fetch(self, m, uids, items):
        """{uid: {ITEM: value}} of UID FETCH uids items."""
        data = self.ok(m.uid('FETCH', uids, items),
                       'UID FETCH %s %s' % (uids, items))
        out = {}
        for seq, d in fetch_map(data).items():
            self.assertIn('UID', d, 'UID FETCH %s %s: no UID in the '
                          'response for message %d: %r'
                          % (uids, items, seq, d))
            out[int(d['UID'])] = d
        return out

    def bodies(self, box='INBOX'):
        """{uid: (flags, BODY[])} of every message in box (read-only)."""
        m = self.imap()
        try:
            if self.select(m, box, readonly=True) == 0:
                return {}
            return {uid: (flags_of(d['FLAGS']), d['BODY[]'])
                    for uid, d in self.fetch(m, '1:*',
                                             '(FLAGS BODY.PEEK[])').items()}
        finally:
            close_imap(m)

    def deliver(self, messages):
        self.srv.deliver(self.user, messages)


def strip_delivery_trace(data):
    """The message as sent: the trace fields the delivering server put
    on top (Return-Path, Received, Authentication-Results) removed."""
    return strip_trace(data)[1]


# -- imaplib -------------------------------------------------------------

class ImaplibSessionTest(ClientCase):
    """One account, three messages delivered; imaplib drives a whole
    session and checks each answer against the messages as sent."""

    def setUp(self):
        super().setUp()
        self.sent = [
            message('first kumquat', body='The word kumquat is here.\r\n'
                    '.dot line\r\n'),
            multipart_message('second with attachment'),
            message('third plain', sender='Carol <carol@%s>' % REMOTE),
        ]
        self.deliver(self.sent)
        self.m = self.imap()

    def test_list_select_fetch(self):
        m = self.m
        boxes = list_map(self.ok(m.list('""', '*'), 'LIST "" *'))
        for box in ('INBOX', 'Archive', 'Drafts', 'Sent', 'Junk', 'Trash'):
            self.assertIn(box, boxes, 'LIST "" *: %r' % boxes)
        delims = set(d for _, d in boxes.values())
        self.assertEqual(len(delims), 1, 'one hierarchy delimiter expected: '
                         '%r' % boxes)
        # RFC 6154: the special-use attributes of the default mailboxes.
        self.assertIn('\\archive', boxes['Archive'][0], boxes)
        self.assertIn('\\sent', boxes['Sent'][0], boxes)

        n = self.select(m)
        self.assertEqual(n, 3, 'SELECT INBOX: expected 3 EXISTS')
        for code in ('UIDVALIDITY', 'UIDNEXT', 'PERMANENTFLAGS'):
            self.assertTrue(m.response(code)[1][0], 'SELECT INBOX: no %s'
                            % code)
        items = ('(UID FLAGS ENVELOPE BODYSTRUCTURE BODY.PEEK[] '
                 'RFC822.SIZE INTERNALDATE)')
        data = self.ok(m.fetch('1:*', items), 'FETCH 1:* ' + items)
        got = fetch_map(data)
        self.assertEqual(sorted(got), [1, 2, 3], 'FETCH 1:*: %r'
                         % sorted(got))
        for seq, sent in zip((1, 2, 3), self.sent):
            d = got[seq]
            body = d['BODY[]']
            self.assertEqual(strip_delivery_trace(body), sent,
                             'FETCH %d BODY.PEEK[]: not the message as '
                             'delivered (after its trace fields): %s'
                             % (seq, first_diff(strip_delivery_trace(body),
                                                sent)))
            self.assertEqual(int(d['RFC822.SIZE']), len(body),
                             'FETCH %d: RFC822.SIZE %s but BODY[] has %d '
                             'bytes' % (seq, d['RFC822.SIZE'], len(body)))
            self.assertNotIn('\\Seen', flags_of(d['FLAGS']),
                             'BODY.PEEK[] must not set \\Seen (RFC 9051 '
                             '6.4.5): %r' % d['FLAGS'])
            when = imaplib.Internaldate2tuple(
                b'INTERNALDATE "' + d['INTERNALDATE'] + b'"')
            self.assertIsNotNone(when, 'FETCH %d INTERNALDATE %r does not '
                                 'parse' % (seq, d['INTERNALDATE']))
            # Delivered just now: the INTERNALDATE is the arrival time.
            self.assertLess(abs(time.mktime(when) - time.time()), 3600,
                            'INTERNALDATE %r is not the delivery time'
                            % d['INTERNALDATE'])
        env1 = got[1]['ENVELOPE']
        self.assertEqual(env1[0], b'Tue, 01 Dec 2026 10:00:00 +0000',
                         'ENVELOPE date: %r' % env1)
        self.assertEqual(env1[1], b'first kumquat', 'ENVELOPE subject: %r'
                         % env1)
        self.assertEqual(env1[2], [[b'Sender One', None, b'one', b'remote.test']],
                         'ENVELOPE from: %r' % env1)
        # RFC 9051 7.5.2: sender and reply-to default to from.
        self.assertEqual(env1[3], env1[2], 'ENVELOPE sender: %r' % env1)
        self.assertEqual(env1[4], env1[2], 'ENVELOPE reply-to: %r' % env1)
        self.assertEqual(env1[5], [[None, None, b'someone', DOMAIN.encode()]],
                         'ENVELOPE to: %r' % env1)
        self.assertEqual(env1[9], b'<first-kumquat.%d@remote.test>'
                         % (zlib.crc32(b'first kumquat') % 100000),
                         'ENVELOPE message-id: %r' % env1)
        bs1 = got[1]['BODYSTRUCTURE']
        self.assertEqual([x.upper() if isinstance(x, bytes) else x
                          for x in bs1[:2]], [b'TEXT', b'PLAIN'],
                         'BODYSTRUCTURE of a text/plain message: %r' % bs1)
        self.assertEqual([p.lower() for p in bs1[2]], [b'charset', b'utf-8'],
                         'BODYSTRUCTURE parameters: %r' % bs1)
        # body-fld-octets and body-fld-lines (RFC 9051 7.5.2) of the text.
        text1 = self.sent[0].split(b'\r\n\r\n', 1)[1]
        self.assertEqual((bs1[5].upper(), int(bs1[6]), int(bs1[7])),
                         (b'8BIT', len(text1), text1.count(b'\n')),
                         'BODYSTRUCTURE encoding, size and lines: %r' % bs1)
        bs2 = got[2]['BODYSTRUCTURE']
        parts = [p for p in bs2 if isinstance(p, list) and p and
                 isinstance(p[0], bytes) and len(p) > 6]
        self.assertEqual(len(parts), 2, 'BODYSTRUCTURE of a two-part '
                         'multipart/mixed: %r' % bs2)
        subtype = [x for x in bs2 if isinstance(x, bytes)][0]
        self.assertEqual(subtype.upper(), b'MIXED', 'BODYSTRUCTURE: %r' % bs2)
        self.assertEqual(parts[1][0].upper(), b'APPLICATION', bs2)
        self.assertEqual(parts[1][5].upper(), b'BASE64', bs2)
        # A body part by section number (RFC 9051 6.4.5).
        d = fetch_map(self.ok(m.fetch('2', '(BODY.PEEK[2.MIME] '
                                      'BODY.PEEK[2])'), 'FETCH 2 parts'))[2]
        # The CRLF before the boundary belongs to the boundary (RFC 2046
        # 5.1.1), not to the part.
        self.assertEqual(d['BODY[2]'], b'AAECAwQFBgcICQ==',
                         'FETCH 2 BODY[2]: %r' % d)
        self.assertIn(b'filename="data.bin"', d['BODY[2.MIME]'], d)

    def test_store_and_search(self):
        m = self.m
        self.select(m)
        data = self.ok(m.store('1', '+FLAGS', '(\\Seen \\Flagged $label)'),
                       'STORE 1 +FLAGS (\\Seen \\Flagged $label)')
        got = fetch_map(data)
        self.assertEqual(flags_of(got[1]['FLAGS']),
                         {'\\Seen', '\\Flagged', '$label'},
                         'STORE +FLAGS answer: %r' % data)
        self.ok(m.store('2', '+FLAGS.SILENT', '(\\Answered)'),
                'STORE 2 +FLAGS.SILENT')
        got = fetch_map(self.ok(m.fetch('1:3', '(FLAGS)'), 'FETCH FLAGS'))
        self.assertEqual(flags_of(got[1]['FLAGS']),
                         {'\\Seen', '\\Flagged', '$label'}, got)
        self.assertEqual(flags_of(got[2]['FLAGS']), {'\\Answered'}, got)
        self.assertEqual(flags_of(got[3]['FLAGS']), set(), got)
        self.ok(m.store('1', '-FLAGS', '(\\Flagged)'), 'STORE -FLAGS')
        got = fetch_map(self.ok(m.fetch('1', '(FLAGS)'), 'FETCH FLAGS'))
        self.assertEqual(flags_of(got[1]['FLAGS']), {'\\Seen', '$label'},
                         got)
        # A FETCH of BODY[] (not PEEK) sets \Seen (RFC 9051 6.4.5).
        self.ok(m.fetch('3', '(BODY[TEXT])'), 'FETCH 3 BODY[TEXT]')
        got = fetch_map(self.ok(m.fetch('3', '(FLAGS)'), 'FETCH FLAGS'))
        self.assertIn('\\Seen', flags_of(got[3]['FLAGS']), got)

        def search(*criteria):
            data = self.ok(m.search(None, *criteria),
                           'SEARCH %s' % ' '.join(criteria))
            return sorted(int(x) for x in data[0].split())

        self.assertEqual(search('UNSEEN'), [2])
        self.assertEqual(search('SEEN'), [1, 3])
        self.assertEqual(search('KEYWORD', '$label'), [1])
        self.assertEqual(search('ANSWERED'), [2])
        self.assertEqual(search('FROM', '"bob@remote.test"'), [2])
        self.assertEqual(search('FROM', 'carol'), [3])
        self.assertEqual(search('SUBJECT', 'kumquat'), [1])
        self.assertEqual(search('TEXT', 'kumquat'), [1])
        self.assertEqual(search('BODY', '"attachment is a few"'), [2])
        self.assertEqual(search('HEADER', 'X-Marmot-Test',
                                'header-marker-5150'), [2])
        self.assertEqual(search('TEXT', 'no-such-word-anywhere'), [])
        yesterday = time.strftime('%d-%b-%Y',
                                  time.gmtime(time.time() - 2 * 86400))
        tomorrow = time.strftime('%d-%b-%Y',
                                 time.gmtime(time.time() + 2 * 86400))
        self.assertEqual(search('SINCE', yesterday), [1, 2, 3])
        self.assertEqual(search('SINCE', tomorrow), [])
        self.assertEqual(search('OR', 'FROM', 'carol', 'FLAGGED'), [3])
        self.assertEqual(search('NOT', 'SEEN', 'FROM', 'bob'), [2])
        data = self.ok(m.uid('SEARCH', 'UNSEEN'), 'UID SEARCH UNSEEN')
        uids = [int(x) for x in data[0].split()]
        got = self.fetch(m, '1:*', '(FLAGS)')
        self.assertEqual(uids, [u for u, d in sorted(got.items())
                                if '\\Seen' not in flags_of(d['FLAGS'])])

    def uid_copy(self, m, command, uid, box, validity):
        """UID COPY or UID MOVE of one message; checks its COPYUID (RFC
        4315 3: the destination's UIDVALIDITY, the source UIDs, the
        destination UIDs) and returns the destination UIDs. imaplib's
        uid() answers with untagged data, but files every response code,
        tagged or not, under its name."""
        what = 'UID %s %d %s' % (command, uid, box)
        m.response('COPYUID')
        data = self.ok(m.uid(command, str(uid), box), what)
        cu_data = m.response('COPYUID')[1]
        self.assertTrue(cu_data and cu_data[0], '%s: no [COPYUID] (%r)'
                        % (what, data))
        cu = cu_data[0].decode().split()
        self.assertEqual(int(cu[0]), validity, '%s: %r' % (what, cu))
        self.assertEqual(uid_set(cu[1]), [uid], '%s: %r' % (what, cu))
        dest = uid_set(cu[2])
        self.assertEqual(len(dest), 1, '%s: %r' % (what, cu))
        return dest

    def test_copy_move_expunge(self):
        m = self.m
        # The capabilities after LOGIN (imaplib keeps the greeting's).
        caps = self.ok(m.capability(), 'CAPABILITY')[0].upper().split()
        self.assertIn(b'UIDPLUS', caps, caps)
        self.assertIn(b'MOVE', caps, caps)
        self.select(m)
        uids = sorted(self.fetch(m, '1:*', '(UID)'))
        self.assertEqual(len(uids), 3, uids)
        validity = int(m.response('UIDVALIDITY')[1][0])
        before = self.ok(m.status('Archive', '(MESSAGES UIDNEXT '
                                  'UIDVALIDITY)'), 'STATUS Archive')
        st = status_map(before)
        self.assertEqual(st['MESSAGES'], 0, st)

        copied = self.uid_copy(m, 'COPY', uids[0], 'Archive',
                               st['UIDVALIDITY'])
        self.assertGreaterEqual(copied[0], st['UIDNEXT'], copied)
        # RFC 6851 4.3: COPYUID comes in an untagged OK before the
        # EXPUNGE responses.
        m.response('EXPUNGE')
        moved = self.uid_copy(m, 'MOVE', uids[1], 'Archive',
                              st['UIDVALIDITY'])
        expunged = m.response('EXPUNGE')[1]
        self.assertEqual(expunged, [b'2'], 'UID MOVE of the second '
                         'message: expected "* 2 EXPUNGE", got %r' % expunged)
        left = sorted(self.fetch(m, '1:*', '(UID)'))
        self.assertEqual(left, [uids[0], uids[2]], 'INBOX after UID MOVE')

        st = status_map(self.ok(m.status('Archive', '(MESSAGES UIDNEXT)'),
                                'STATUS Archive'))
        self.assertEqual(st['MESSAGES'], 2, st)
        self.assertGreater(st['UIDNEXT'], max(copied + moved), st)

        # EXPUNGE of a \Deleted message.
        self.ok(m.uid('STORE', str(uids[2]), '+FLAGS.SILENT', '(\\Deleted)'),
                'UID STORE +FLAGS.SILENT \\Deleted')
        # imaplib's expunge() answers with the EXPUNGE data.
        expunged = self.ok(m.expunge(), 'EXPUNGE')
        self.assertEqual(expunged, [b'2'], 'EXPUNGE: expected "* 2 EXPUNGE"'
                         ', got %r' % expunged)
        self.assertEqual(sorted(self.fetch(m, '1:*', '(UID)')), [uids[0]])

        # The copies are the same messages.
        archive = self.bodies('Archive')
        inbox_sent = [strip_delivery_trace(b) for _, b in archive.values()]
        self.assertEqual(sorted(inbox_sent), sorted(self.sent[:2]),
                         'Archive after COPY and MOVE: not the two messages')
        self.assertEqual(sorted(archive), sorted(copied + moved))
        # None of this changes INBOX's UIDVALIDITY.
        self.select(m)
        self.assertEqual(int(m.response('UIDVALIDITY')[1][0]), validity)

    def test_append_mailboxes_status(self):
        m = self.m
        msg = message('appended old', date='Wed, 01 Jan 2020 10:00:00 +0000')
        when = '"01-Jan-2020 10:00:00 +0000"'
        data = self.ok(m.append('Archive', '(\\Seen $label)', when, msg),
                       'APPEND Archive (\\Seen $label) %s' % when)
        au = code_args(data[0], 'APPENDUID')
        self.assertIsNotNone(au, 'APPEND: no [APPENDUID] in %r' % data)
        st = status_map(self.ok(m.status('Archive', '(UIDVALIDITY)'),
                                'STATUS'))
        self.assertEqual(int(au[0]), st['UIDVALIDITY'], au)
        uid = int(au[1])
        self.select(m, 'Archive')
        d = self.fetch(m, str(uid), '(FLAGS INTERNALDATE BODY.PEEK[] '
                       'RFC822.SIZE)')[uid]
        self.assertEqual(d['BODY[]'], msg, 'APPENDed message read back: %s'
                         % first_diff(d['BODY[]'], msg))
        self.assertEqual(int(d['RFC822.SIZE']), len(msg))
        self.assertEqual(flags_of(d['FLAGS']), {'\\Seen', '$label'}, d)
        # The same instant, in whatever zone the server writes it.
        got_when = imaplib.Internaldate2tuple(b'INTERNALDATE "' +
                                              d['INTERNALDATE'] + b'"')
        self.assertEqual(time.mktime(got_when),
                         calendar.timegm((2020, 1, 1, 10, 0, 0)),
                         'APPEND with %s: INTERNALDATE %r'
                         % (when, d['INTERNALDATE']))
        self.assertEqual(self.ok(m.search(None, 'BEFORE', '1-Jan-2021'),
                                 'SEARCH BEFORE')[0], b'1')
        self.assertEqual(self.ok(m.search(None, 'SENTBEFORE', '1-Jan-2021'),
                                 'SEARCH SENTBEFORE')[0], b'1')

        # STATUS of INBOX (3 unseen messages).
        st = status_map(self.ok(m.status('INBOX', '(MESSAGES UNSEEN '
                                         'UIDNEXT UIDVALIDITY)'),
                                'STATUS INBOX'))
        self.assertEqual((st['MESSAGES'], st['UNSEEN']), (3, 3), st)
        self.assertGreater(st['UIDNEXT'], 3, st)

        # CREATE, RENAME, DELETE, with a child.
        for box in ('Projects', 'Projects/2026'):
            self.ok(m.create(imap_quote(box)), 'CREATE ' + box)
        boxes = list_map(self.ok(m.list('""', '*'), 'LIST'))
        delim = boxes['INBOX'][1]
        self.assertEqual(delim, '/', 'hierarchy delimiter: %r' % boxes)
        self.assertIn('Projects/2026', boxes, boxes)
        self.ok(m.append('Projects/2026', None, None, msg), 'APPEND')
        typ, data = m.create('Projects')
        self.assertEqual(typ, 'NO', 'CREATE of an existing mailbox: %r'
                         % data)
        self.ok(m.rename('Projects', 'Done'), 'RENAME Projects Done')
        boxes = list_map(self.ok(m.list('""', '*'), 'LIST'))
        self.assertNotIn('Projects', boxes, boxes)
        self.assertNotIn('Projects/2026', boxes, boxes)
        self.assertIn('Done/2026', boxes, 'RENAME must move the children '
                      '(RFC 9051 6.3.6): %r' % boxes)
        st = status_map(self.ok(m.status('Done/2026', '(MESSAGES)'),
                                'STATUS Done/2026'))
        self.assertEqual(st['MESSAGES'], 1, st)
        boxes = list_map(self.ok(m.list('""', 'Done/%'), 'LIST "" Done/%'))
        self.assertEqual(list(boxes), ['Done/2026'], boxes)
        self.ok(m.delete('Done/2026'), 'DELETE Done/2026')
        self.ok(m.delete('Done'), 'DELETE Done')
        boxes = list_map(self.ok(m.list('""', '*'), 'LIST'))
        self.assertFalse([b for b in boxes if b.startswith('Done')], boxes)
        typ, data = m.delete('INBOX')
        self.assertEqual(typ, 'NO', 'DELETE INBOX: %r' % data)
        typ, data = m.select('NoSuchBox')
        self.assertEqual(typ, 'NO', 'SELECT NoSuchBox: %r' % data)


class ImaplibUtf8Test(ClientCase):
    """Mailbox names beyond ASCII: modified UTF-7 for a client that did
    not enable anything (RFC 3501 5.1.3), UTF-8 after ENABLE UTF8=ACCEPT
    (RFC 6855 3), the same mailbox either way."""

    def test_utf8_accept_mailbox_names(self):
        m = self.imap()
        caps = self.ok(m.capability(), 'CAPABILITY')[0].upper().split()
        if b'UTF8=ACCEPT' not in caps:
            self.skipTest('the server does not offer UTF8=ACCEPT')
        self.ok(m.create('"Entw&APw-rfe"'), 'CREATE "Entw&APw-rfe"')
        self.ok(m.append('"Entw&APw-rfe"', None, None, message('entwurf')),
                'APPEND')
        u = self.imap()
        self.ok(u.enable('UTF8=ACCEPT'), 'ENABLE UTF8=ACCEPT')
        boxes = list_map(self.ok(u.list('""', '*'), 'LIST after ENABLE'))
        self.assertIn('Entw\u00fcrfe', boxes, 'LIST after ENABLE UTF8=ACCEPT must name the '
                      'mailbox in UTF-8: %r' % boxes)
        self.assertNotIn('Entw&APw-rfe', boxes, boxes)
        self.ok(u.create('"\u00c4rger/\u65e5\u672c"'), 'CREATE in UTF-8')
        st = status_map(self.ok(u.status('"Entw\u00fcrfe"', '(MESSAGES)'),
                                'STATUS in UTF-8'))
        self.assertEqual(st['MESSAGES'], 1, st)
        boxes = list_map(self.ok(m.list('""', '*'), 'LIST'))
        self.assertIn('&AMQ-rger/&ZeVnLA-', boxes, 'LIST without ENABLE: '
                      'the mailbox created in UTF-8, in modified UTF-7: %r'
                      % boxes)
        self.assertIn('Entw&APw-rfe', boxes, boxes)


def read_until(sock_file, pattern, deadline, what):
    """Lines from an imaplib session's file until one matches pattern
    (bytes regex); returns (match, lines read). Bounded by deadline."""
    lines = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError('%s: no line matching %r within the time '
                                 'allowed; got %r' % (what, pattern, lines))
        sock_file[0].settimeout(left)
        try:
            line = sock_file[1].readline()
        except socket.timeout:
            raise AssertionError('%s: no line matching %r in time; got %r'
                                 % (what, pattern, lines))
        if not line:
            raise AssertionError('%s: connection closed; got %r'
                                 % (what, lines))
        lines.append(line)
        m = re.match(pattern, line)
        if m:
            return m, lines


class ImaplibIdleTest(ClientCase):
    """IDLE (RFC 2177) in an imaplib session: Debian 12's imaplib (Python
    3.11) has no idle(), so the command goes over the session's own
    socket; mail sent over SMTP while idling must arrive as * N EXISTS
    within a second of the 250 reply."""

    def test_idle_new_mail(self):
        self.deliver([message('before idle')])
        m = self.imap()
        caps = self.ok(m.capability(), 'CAPABILITY')[0].upper().split()
        self.assertIn(b'IDLE', caps, caps)
        self.assertEqual(self.select(m), 1)
        tag = m._new_tag()
        m.send(tag + b' IDLE\r\n')
        conn = (m.sock, m.file)
        read_until(conn, rb'\+ ', time.monotonic() + 10, 'IDLE')
        times = []
        for n in (2, 3):
            self.srv.deliver_smtp(self.user, message('during idle %d' % n))
            t0 = time.monotonic()
            read_until(conn, rb'\* %d EXISTS\r\n' % n, t0 + 5,
                       'IDLE after SMTP delivery %d' % n)
            times.append(time.monotonic() - t0)
        # Another session flags message 2 and expunges message 1: IDLE
        # may carry both (RFC 2177 3; RFC 9051 7.5.1 allows EXPUNGE when
        # a command other than FETCH, STORE, SEARCH is in progress).
        other = self.imap()
        self.select(other)
        self.ok(other.store('2', '+FLAGS', '(\\Flagged)'), 'STORE 2')
        t0 = time.monotonic()
        read_until(conn, rb'\* 2 FETCH \(.*\\Flagged', t0 + 5,
                   'IDLE after another session flagged message 2')
        times.append(time.monotonic() - t0)
        self.ok(other.store('1', '+FLAGS.SILENT', '(\\Deleted)'), 'STORE 1')
        self.ok(other.expunge(), 'EXPUNGE')
        t0 = time.monotonic()
        read_until(conn, rb'\* 1 EXPUNGE\r\n', t0 + 5,
                   'IDLE after another session expunged message 1')
        times.append(time.monotonic() - t0)
        harness.note('IDLE: two * N EXISTS, a FETCH and an EXPUNGE %s s '
                     'after the change' % ', '.join('%.3f' % t
                                                    for t in times))
        m.send(b'DONE\r\n')
        read_until(conn, tag + rb' OK', time.monotonic() + 10, 'DONE')
        for t in times:
            self.assertLessEqual(t, 1.0, 'IDLE: a change came %.3f s '
                                 'after it was made (at most 1 s allowed)'
                                 % t)
        got = fetch_map(self.ok(m.fetch('1:2', '(ENVELOPE)'), 'FETCH'))
        self.assertEqual([got[i]['ENVELOPE'][1] for i in (1, 2)],
                         [b'during idle 2', b'during idle 3'])


class RawImap(LineClient):
    """A second session over IMAPS, spoken by hand so that the order of
    every untagged response is visible."""

    def __init__(self, case):
        super().__init__(case.srv.ports['imaps'],
                         tls_context=case.srv.ssl_context(),
                         timeout=SOCKET_TIMEOUT)
        case.addCleanup(self.close)
        self.n = 0
        self.read_line()

    def command(self, text, expect_ok=True):
        self.n += 1
        tag = 'r%d' % self.n
        self.cmd('%s %s' % (tag, text))
        untagged, tagged = self.imap_tagged(tag)
        if expect_ok and not tagged.startswith(tag + ' OK'):
            raise AssertionError('%s: expected OK, got %r (after %r)'
                                 % (text, tagged, untagged))
        return untagged


class ConcurrentSessionsTest(ClientCase):
    """Two sessions on INBOX: a flag change or an expunge made by one is
    reported to the other at its next command that may carry it (RFC
    9051 7.4.1/7.5.1: a FETCH, STORE or SEARCH never carries EXPUNGE; a
    NOOP does), and sequence numbers never shift under a client."""

    def test_two_sessions(self):
        self.deliver([message('conc %d' % i) for i in (1, 2, 3, 4)])
        a = self.imap()
        self.assertEqual(self.select(a), 4)
        b = RawImap(self)
        b.command('LOGIN %s %s' % (imap_quote(self.user),
                                   imap_quote(self.password)))
        lines = b.command('SELECT INBOX')
        self.assertIn('* 4 EXISTS', lines, lines)

        # A flags message 1: B learns it at its NOOP.
        self.ok(a.store('1', '+FLAGS', '(\\Flagged)'), 'A: STORE')
        lines = b.command('NOOP')
        fetches = [l for l in lines if re.match(r'\* 1 FETCH ', l)]
        self.assertTrue(fetches and '\\Flagged' in fetches[0],
                        'B: NOOP after A flagged message 1: expected '
                        '"* 1 FETCH (FLAGS (\\Flagged))", got %r' % lines)

        # B flags message 3: A sees it in its next FETCH.
        b.command('STORE 3 +FLAGS.SILENT (\\Seen)')
        got = fetch_map(self.ok(a.fetch('3', '(FLAGS)'), 'A: FETCH 3'))
        self.assertEqual(flags_of(got[3]['FLAGS']), {'\\Seen'}, got)

        # A expunges message 2. B's FETCH, STORE and SEARCH must not
        # report the expunge and must keep numbering 4 messages.
        self.ok(a.store('2', '+FLAGS.SILENT', '(\\Deleted)'), 'A: STORE')
        self.ok(a.expunge(), 'A: EXPUNGE')
        for cmd in ('FETCH 1:4 (FLAGS)', 'STORE 4 +FLAGS.SILENT ($x)',
                    'SEARCH ALL'):
            lines = b.command(cmd, expect_ok=False)
            self.assertFalse([l for l in lines if l.endswith(' EXPUNGE')],
                             'B: %s while A expunged message 2: an EXPUNGE '
                             'response is not allowed here (RFC 9051 '
                             '7.5.1): %r' % (cmd, lines))
        lines = b.command('SEARCH ALL')
        found = [set(int(x) for x in l.split()[2:]) for l in lines
                 if l.startswith('* SEARCH')]
        # Message 2 may or may not match (it is gone), but the numbers
        # are still those of four messages.
        self.assertTrue(found and {1, 3, 4} <= found[0] <= {1, 2, 3, 4},
                        'B: SEARCH ALL before it was told of the expunge '
                        '(its messages are still numbered 1 to 4): %r'
                        % lines)
        lines = b.command('NOOP')
        self.assertIn('* 2 EXPUNGE', lines, 'B: NOOP after A expunged '
                      'message 2: %r' % lines)
        lines = b.command('SEARCH ALL')
        self.assertIn('* SEARCH 1 2 3', lines, lines)
        lines = b.command('FETCH 3 (FLAGS)')
        self.assertTrue([l for l in lines if l.startswith('* 3 FETCH') and
                         '$x' in l], 'B: message 4 is now 3 and has $x: %r'
                        % lines)

        # New mail: both sessions get * 4 EXISTS.
        self.deliver([message('conc 5')])
        lines = b.command('NOOP')
        self.assertIn('* 4 EXISTS', lines, 'B: NOOP after a delivery: %r'
                      % lines)
        self.ok(a.noop(), 'A: NOOP')
        self.assertEqual(a.response('EXISTS')[1][-1], b'4')

        # B removes message 1 by CLOSE (RFC 9051 6.4.1: it expunges
        # without EXPUNGE responses to B); A sees it at its NOOP.
        b.command('STORE 1 +FLAGS.SILENT (\\Deleted)')
        b.command('CLOSE')
        a.response('EXPUNGE')
        self.ok(a.noop(), 'A: NOOP')
        self.assertEqual(a.response('EXPUNGE')[1], [b'1'],
                         'A: NOOP after B CLOSEd with message 1 \\Deleted')


# -- mutt ----------------------------------------------------------------

def run_on_pty(argv, env, cwd, timeout):
    """Runs argv with a pseudo-terminal (80x24) as stdin, stdout and
    stderr (mutt needs a terminal even when every key is pushed); returns
    (exit code or None if it had to be killed, the screen output)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 80, 0, 0))
    try:
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                             env=env, cwd=cwd, start_new_session=True)
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([master], [], [], min(left, 0.5))
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every slave end closed
                    chunk = b''
                if not chunk:
                    break
                out += chunk[:1 << 20]
            elif p.poll() is not None:
                break
        try:
            code = p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            code = None
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    return code, out.decode('utf-8', 'replace')


class MuttTest(ClientCase):
    """mutt in batch mode: every key pushed with -e 'push ...', run on a
    pseudo-terminal, over IMAPS trusting the instance's certificate
    (certificate_file; the host name is not checked since the cert names
    mail.test.example and mutt connects to 127.0.0.1)."""

    def muttrc(self, scheme='imaps', extra=()):
        url = '%s://%s@%s:%d/' % (scheme, self.user.replace('@', '%40'),
                                  self.srv.host, self.srv.ports[scheme])
        settings = [
            ('folder', url), ('spoolfile', '+INBOX'),
            ('imap_user', self.user), ('imap_pass', self.password),
            ('certificate_file', self.cert), ('ssl_verify_host', 'no'),
            # Both: imap:// must go through STARTTLS.
            ('ssl_force_tls', 'yes'), ('ssl_starttls', 'yes'),
            ('imap_check_subscribed', 'no'),
            ('record', ''), ('move', 'no'), ('delete', 'yes'),
            ('quit', 'yes'), ('wait_key', 'no'), ('confirmappend', 'no'),
            ('confirmcreate', 'no'), ('pipe_decode', 'no'),
            ('pipe_split', 'no'), ('mark_old', 'no'), ('beep', 'no'),
            ('header_cache', ''), ('message_cachedir', ''),
            ('mail_check', '60'), ('timeout', '60'),
            ('imap_keepalive', '60'), ('sort', 'date-sent'),
        ] + list(extra)
        return self.write_private('muttrc', ''.join(
            'set %s="%s"\n' % (name, value.replace('"', '\\"'))
            for name, value in settings))

    def mutt(self, keys, scheme='imaps', extra=(), debug=False):
        argv = ['mutt', '-n', '-F', self.muttrc(scheme, extra), '-e',
                'push "%s"' % keys]
        if debug:
            # Debian's mutt is built with --enable-debug: -d 5 writes the
            # IMAP conversation to ~/.muttdebug0.
            argv[1:1] = ['-d', '5']
        code, screen = run_on_pty(argv, self.env(), self.tmp,
                                  CLIENT_TIMEOUT)
        self.assertEqual(code, 0, 'mutt %s: exit %r; screen:\n%s'
                         % (' '.join(argv[3:]), code,
                            re.sub(r'\x1b\[[0-9;?]*[A-Za-z]', ' ',
                                   screen)[-3000:]))
        return screen

    def test_mutt_read_flag_move(self):
        sent = [message('mutt one'), multipart_message('mutt readme'),
                message('mutt flagme'), message('mutt moveme')]
        self.deliver(sent)
        server = self.bodies()
        by_subject = {}
        for uid, (_, body) in server.items():
            subj = re.search(rb'\r\nSubject: ([^\r]*)', body).group(1)
            by_subject[subj.decode()] = (uid, body)

        # Read: pipe the message to a file (raw: pipe_decode=no).
        out = os.path.join(self.tmp, 'piped.eml')
        self.mutt('<search>~s readme<enter><pipe-message>cat > %s<enter>'
                  '<quit>' % out)
        with open(out, 'rb') as f:
            piped = f.read()
        # mutt keeps a fetched IMAP message with Unix line ends, so the
        # pipe gets BODY[] with CRLF turned into LF.
        want = lf(by_subject['mutt readme'][1])
        self.assertEqual(piped, want, 'mutt <pipe-message> of "mutt '
                         'readme": not BODY[] (LF line ends): %s'
                         % first_diff(piped, want))

        # pipe-message leaves the message unread; display-message (the
        # pager) marks it \Seen.
        flags = {uid: f for uid, (f, _) in self.bodies().items()}
        uid = by_subject['mutt readme'][0]
        self.assertNotIn('\\Seen', flags[uid], flags)
        self.mutt('<search>~s readme<enter><display-message><exit>'
                  '<sync-mailbox><quit>')
        flags = {uid: f for uid, (f, _) in self.bodies().items()}
        self.assertEqual([u for u, f in flags.items() if '\\Seen' in f],
                         [uid], 'after mutt <display-message> of "mutt '
                         'readme": \\Seen expected on it alone: %r' % flags)

        # Flag: <flag-message>, then <sync-mailbox> writes it back.
        self.mutt('<search>~s flagme<enter><flag-message><sync-mailbox>'
                  '<quit>')
        flags = {uid: f for uid, (f, _) in self.bodies().items()}
        uid = by_subject['mutt flagme'][0]
        self.assertIn('\\Flagged', flags[uid], 'after mutt <flag-message> '
                      'on "mutt flagme": flags %r' % flags)
        self.assertEqual([u for u, f in flags.items() if '\\Flagged' in f],
                         [uid], 'only "mutt flagme" is flagged: %r' % flags)

        # Move: <save-message> to =Archive deletes the original; the
        # sync expunges it.
        self.mutt('<search>~s moveme<enter><save-message>=Archive<enter>'
                  '<sync-mailbox><quit>')
        inbox = self.bodies()
        archive = self.bodies('Archive')
        self.assertNotIn(by_subject['mutt moveme'][0], inbox,
                         'after mutt <save-message>=Archive: the message '
                         'is still in INBOX: %r' % sorted(inbox))
        self.assertEqual(len(inbox), 3, sorted(inbox))
        self.assertEqual([b for _, b in archive.values()],
                         [by_subject['mutt moveme'][1]],
                         'Archive after the move: %r' % archive)

        # Copy into a mailbox mutt creates (CREATE, then APPEND or COPY),
        # delete one and expunge it.
        self.mutt('<search>~s readme<enter><copy-message>=Mutt/Copies<enter>'
                  '<search>~s \'mutt one\'<enter><delete-message>'
                  '<sync-mailbox><quit>')
        copies = self.bodies('Mutt/Copies')
        self.assertEqual([b for _, b in copies.values()],
                         [by_subject['mutt readme'][1]],
                         'Mutt/Copies after mutt <copy-message>: %r' % copies)
        inbox = self.bodies()
        self.assertEqual(sorted(inbox), sorted(
            by_subject[s][0] for s in ('mutt readme', 'mutt flagme')),
            'INBOX after mutt <delete-message> of "mutt one": %r'
            % sorted(inbox))


    def test_mutt_starttls(self):
        self.deliver([message('mutt over starttls')])
        (_, body), = self.bodies().values()
        out = os.path.join(self.tmp, 'piped.eml')
        self.mutt('<pipe-message>cat > %s<enter><quit>' % out,
                  scheme='imap')
        with open(out, 'rb') as f:
            piped = f.read()
        self.assertEqual(piped, lf(body), 'mutt over imap:// (STARTTLS): '
                         '%s' % first_diff(piped, lf(body)))


    def test_mutt_header_cache_qresync(self):
        """mutt with a header cache and imap_qresync: the second run
        resynchronises from the cache (CHANGEDSINCE with VANISHED, RFC
        7162 3.2.6) and must see the flag change and the expunge made in
        between."""
        self.deliver([message('cache %d' % i) for i in range(1, 6)])
        cache = os.path.join(self.tmp, 'hcache')
        os.mkdir(cache)
        extra = (('header_cache', cache + '/'), ('imap_qresync', 'yes'),
                 ('imap_condstore', 'yes'))
        flagged = os.path.join(self.tmp, 'flagged.eml')
        every = os.path.join(self.tmp, 'all.eml')
        keys = ('<tag-pattern>~F<enter><tag-prefix><pipe-message>cat > %s'
                '<enter><untag-pattern>~A<enter><tag-pattern>~A<enter>'
                '<tag-prefix><pipe-message>cat > %s<enter><quit>'
                % (flagged, every))

        def subjects(path):
            if not os.path.exists(path):
                return []
            with open(path, 'rb') as f:
                return sorted(re.findall(rb'(?m)^Subject: (cache \d)$',
                                         f.read()))

        # One flagged message from the start (<tag-prefix> with nothing
        # tagged would act on the current message).
        m = self.imap()
        self.select(m)
        self.ok(m.store('5', '+FLAGS', '(\\Flagged)'), 'STORE 5')
        self.mutt(keys, extra=extra)
        self.assertEqual(subjects(every), [b'cache %d' % i
                                           for i in range(1, 6)])
        self.assertEqual(subjects(flagged), [b'cache 5'])
        self.assertTrue(os.listdir(cache), 'mutt wrote no header cache')

        self.ok(m.noop(), 'NOOP')
        self.ok(m.store('2', '+FLAGS', '(\\Flagged)'), 'STORE 2')
        self.ok(m.store('4', '+FLAGS', '(\\Deleted)'), 'STORE 4')
        self.ok(m.expunge(), 'EXPUNGE')
        os.unlink(every)
        self.mutt(keys, extra=extra, debug=True)
        self.assertEqual(subjects(flagged), [b'cache 2', b'cache 5'],
                         'second mutt run (header cache, QRESYNC): the '
                         'message flagged meanwhile')
        self.assertEqual(subjects(every), [b'cache 1', b'cache 2',
                                           b'cache 3', b'cache 5'],
                         'second mutt run (header cache, QRESYNC): the '
                         'message expunged meanwhile must be gone')
        with open(os.path.join(self.home, '.muttdebug0'), 'rb') as f:
            log = f.read()
        # mutt 2.2 resynchronises with ENABLE QRESYNC, SELECT (CONDSTORE)
        # and UID FETCH ... (CHANGEDSINCE m VANISHED) (RFC 7162 3.2.6).
        sent = b'\n'.join(l for l in log.splitlines() if b'> a0' in l)
        self.assertIn(b'ENABLE QRESYNC\r\n', log, sent)
        self.assertRegex(sent, rb'UID FETCH [0-9:,]+ \(FLAGS\) '
                         rb'\(CHANGEDSINCE \d+ VANISHED\)',
                         'the second mutt run did not resynchronise from its'
                         ' header cache: %r' % sent)


# -- mbsync --------------------------------------------------------------

# A TCP relay for mbsync's Tunnel: stdin/stdout <-> HOST:PORT. isync 1.4
# checks the server certificate's names against Host even when the
# certificate is the one in CertificateFile, and Marmot's names
# mail.test.example, which does not resolve here: with a Tunnel, Host is
# used only for that check, and mbsync still does the TLS itself
# (SSLType IMAPS over the relayed bytes).
RELAY = r'''
import os, select, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
inputs = [0, s]
while inputs:
    r, _, _ = select.select(inputs, [], [], 120)
    if not r:
        break
    if 0 in r:
        d = os.read(0, 65536)
        if d:
            s.sendall(d)
        else:
            s.shutdown(socket.SHUT_WR)
            inputs.remove(0)
    if s in r:
        d = s.recv(65536)
        if not d:
            break
        os.write(1, d)
'''


def maildir_files(root):
    """{folder: {'cur/name' or 'new/name': bytes}} of a Maildir tree
    written by mbsync (SubFolders Verbatim: ROOT/Archive/cur, the inbox
    at ROOT/INBOX), new/ and cur/ only."""
    out = {}
    for dirpath, dirnames, _ in os.walk(root):
        if 'cur' in dirnames and 'new' in dirnames:
            folder = os.path.relpath(dirpath, root)
            files = out.setdefault(folder, {})
            for sub in ('new', 'cur'):
                for name in os.listdir(os.path.join(dirpath, sub)):
                    with open(os.path.join(dirpath, sub, name), 'rb') as f:
                        files[os.path.join(sub, name)] = f.read()
    return out


def maildir_flags(name):
    """The flag letters of a Maildir file name ('cur/x:2,FS' -> 'FS')."""
    return name.rsplit(':2,', 1)[1] if ':2,' in name else ''


def strip_tuid(data):
    """isync writes every message it copies with an "X-TUID: <12
    characters>" field as the last header field (its temporary UID, to
    find the copy again after an interrupted sync): that one line is
    removed, nothing else."""
    return re.sub(rb'(?m)^X-TUID: [A-Za-z0-9+/]{12}\r?\n(?=\r?\n)', b'',
                  data, count=1)


def maildir_put(folder, sub, info, msg):
    """Writes msg (LF line ends, as a Maildir holds it) into folder/sub
    under a new unique name ending in info (':2,S' or '')."""
    name = '%d.P%dQ%d.marmot-test%s' % (time.time(), os.getpid(),
                                         next(_maildir_count), info)
    with open(os.path.join(folder, sub, name), 'wb') as f:
        f.write(lf(msg))


_maildir_count = itertools.count(1)

MAILDIR_LETTERS = {'\\Seen': 'S', '\\Flagged': 'F', '\\Answered': 'R',
                   '\\Draft': 'D', '\\Deleted': 'T'}


class MbsyncCase(ClientCase):
    """An .mbsyncrc for the test's account, one channel syncing every
    mailbox both ways, and the check that the Maildir mirrors the
    server."""

    def mbsyncrc(self):
        self.maildir = os.path.join(self.tmp, 'Mail')
        os.mkdir(self.maildir)
        relay = os.path.join(self.tmp, 'relay.py')
        with open(relay, 'w') as f:
            f.write(RELAY)
        text = ('IMAPAccount marmot\n'
                'Host %s\n'
                'Tunnel "/usr/bin/python3 %s %s %d"\n'
                'User %s\n'
                'Pass "%s"\n'
                'SSLType IMAPS\n'
                'CertificateFile %s\n'
                '\n'
                'IMAPStore far\n'
                'Account marmot\n'
                '\n'
                'MaildirStore near\n'
                'Path %s/\n'
                'Inbox %s/INBOX\n'
                'SubFolders Verbatim\n'
                '\n'
                'Channel sync\n'
                'Far :far:\n'
                'Near :near:\n'
                'Patterns *\n'
                'Sync All\n'
                'Create Both\n'
                'Remove None\n'
                'Expunge Both\n'
                'SyncState *\n'
                % (self.srv.hostname, relay, self.srv.host,
                   self.srv.ports['imaps'], self.user, self.password,
                   self.cert, self.maildir, self.maildir))
        return self.write_private('.mbsyncrc', text)

    def sync(self):
        return self.run_client(['mbsync', '-c', self.rc, '-V', 'sync'])

    def assert_mirror(self, what, boxes=('INBOX', 'Archive')):
        """Every server message of boxes is one Maildir file of the same
        folder, with the same flags, holding BODY[] with LF line ends
        (Maildir is a Unix format: isync converts) and isync's X-TUID
        line. Returns {folder: {server uid: file name}}."""
        local = maildir_files(self.maildir)
        out = {}
        for box in boxes:
            server = self.bodies(box)
            files = local.get(box, {})
            self.assertEqual(len(files), len(server), '%s: %s has %d '
                             'messages on the server, %d files in the '
                             'Maildir: %r' % (what, box, len(server),
                                              len(files), sorted(files)))
            by_body = {}
            for name, data in files.items():
                by_body.setdefault(strip_tuid(data), []).append(name)
            names = out.setdefault(box, {})
            for uid, (flags, body) in server.items():
                # A message uploaded by mbsync has its X-TUID on the
                # server, not in the file written into the Maildir.
                found = by_body.get(lf(strip_tuid(body)), [])
                self.assertEqual(len(found), 1, '%s: %s UID %d: expected '
                                 'one Maildir file holding BODY[] (LF line '
                                 'ends, X-TUID removed), found %r; files %r'
                                 % (what, box, uid, found, sorted(files)))
                name = found[0]
                names[uid] = name
                want = ''.join(sorted(MAILDIR_LETTERS[f] for f in flags
                                      if f in MAILDIR_LETTERS))
                self.assertEqual(maildir_flags(name), want,
                                 '%s: %s UID %d: flags %r on the server, '
                                 'Maildir file %s' % (what, box, uid,
                                                      flags, name))
        return out



class MbsyncTest(MbsyncCase):
    """mbsync (isync) syncs the account to a Maildir and back: every
    folder and message, flags both ways, deletions both ways, and a new
    message written into the Maildir uploaded."""

    def test_mbsync_round_trip(self):
        self.deliver([message('sync %d' % i) for i in (1, 2, 3)] +
                     [multipart_message('sync mp')])
        m = self.imap()
        self.select(m)
        self.ok(m.store('1', '+FLAGS', '(\\Seen)'), 'STORE 1 \\Seen')
        self.ok(m.store('2', '+FLAGS', '(\\Seen \\Answered)'), 'STORE 2')
        self.ok(m.copy('3', 'Archive'), 'COPY 3 Archive')
        self.rc = self.mbsyncrc()

        self.sync()
        names = self.assert_mirror('first sync')['INBOX']

        # Near side changes: flag message 1 (S -> FS), delete message 2,
        # write a new message into INBOX/new.
        inbox_dir = os.path.join(self.maildir, 'INBOX')
        uids = sorted(names)
        first, second = names[uids[0]], names[uids[1]]
        self.assertEqual(maildir_flags(first), 'S', first)
        os.rename(os.path.join(inbox_dir, first),
                  os.path.join(inbox_dir, first.replace(':2,S', ':2,FS')))
        os.unlink(os.path.join(inbox_dir, second))
        new_msg = message('written into the maildir')
        maildir_put(inbox_dir, 'new', '', new_msg)
        self.sync()
        server = self.bodies()
        self.assertEqual(server[uids[0]][0], {'\\Seen', '\\Flagged'},
                         'after mbsync pushed :2,FS for UID %d: %r'
                         % (uids[0], server[uids[0]]))
        self.assertNotIn(uids[1], server, 'mbsync pushed the deletion of '
                         'UID %d (Expunge Both): still on the server: %r'
                         % (uids[1], sorted(server)))
        uploaded = [b for u, (_, b) in server.items() if u not in uids]
        self.assertEqual(len(uploaded), 1, 'the message written into the '
                         'Maildir: %r' % sorted(server))
        # isync uploads with APPEND, CRLF line ends and its X-TUID line.
        self.assertEqual(strip_tuid(uploaded[0]), new_msg, 'message '
                         'uploaded by mbsync: %s'
                         % first_diff(strip_tuid(uploaded[0]), new_msg))
        self.assert_mirror('second sync')

        # Far side changes: flag and unflag on the server, expunge one,
        # deliver a new one.
        m = self.imap()
        self.select(m)
        self.ok(m.uid('STORE', str(uids[2]), '+FLAGS', '(\\Flagged '
                      '\\Seen)'), 'UID STORE')
        self.ok(m.uid('STORE', str(uids[0]), '-FLAGS', '(\\Flagged)'),
                'UID STORE')
        self.ok(m.uid('STORE', str(uids[3]), '+FLAGS', '(\\Deleted)'),
                'UID STORE')
        self.ok(m.expunge(), 'EXPUNGE')
        self.deliver([message('sync new on the server')])
        self.sync()
        names = self.assert_mirror('third sync')['INBOX']
        self.assertEqual(maildir_flags(names[uids[2]]), 'FS', names)
        self.assertEqual(maildir_flags(names[uids[0]]), 'S', names)
        self.assertNotIn(uids[3], names, names)
        self.assertEqual(len(names), 4, names)

        # Create Both: a folder made in the Maildir becomes a mailbox on
        # the server, one made on the server a Maildir folder.
        local_box = os.path.join(self.maildir, 'Projects')
        for sub in ('cur', 'new', 'tmp'):
            os.makedirs(os.path.join(local_box, sub))
        project_msg = message('a project message')
        maildir_put(local_box, 'cur', ':2,S', project_msg)
        self.ok(m.create('Lists/marmot'), 'CREATE Lists/marmot')
        self.ok(m.append('Lists/marmot', '(\\Flagged)', None,
                         message('a list message')), 'APPEND')
        self.sync()
        boxes = list_map(self.ok(m.list('""', '*'), 'LIST'))
        self.assertIn('Projects', boxes, 'mbsync Create Both: the Maildir '
                      'folder Projects is not on the server: %r' % boxes)
        got = self.bodies('Projects')
        self.assertEqual([(f, strip_tuid(b)) for f, b in got.values()],
                         [({'\\Seen'}, project_msg)],
                         'Projects on the server after mbsync: %r' % got)
        self.assertTrue(os.path.isdir(os.path.join(self.maildir, 'Lists',
                                                   'marmot', 'cur')),
                        'mbsync Create Both: no Maildir folder for the '
                        'server mailbox Lists/marmot: %r'
                        % sorted(maildir_files(self.maildir)))
        self.assert_mirror('sync of new folders', boxes=(
            'INBOX', 'Archive', 'Projects', 'Lists/marmot'))

        # A sync with nothing to do changes nothing.
        before = maildir_files(self.maildir)
        self.sync()
        self.assertEqual(maildir_files(self.maildir), before)


def large_message(subject, size=3 << 20):
    """A multipart message with a base64 attachment of about size bytes
    (deterministic pseudo-random data), so that FETCH answers come in
    several parts and clients read long literals."""
    rnd = random.Random(subject)
    raw = bytes(rnd.getrandbits(8) for _ in range(size * 3 // 4))
    b64 = base64.encodebytes(raw).replace(b'\n', b'\r\n')
    return (b'From: Big Sender <big@' + REMOTE.encode() + b'>\r\n'
            b'To: someone@' + DOMAIN.encode() + b'\r\n'
            b'Subject: ' + subject.encode() + b'\r\n'
            b'Date: Tue, 01 Dec 2026 12:00:00 +0000\r\n'
            b'MIME-Version: 1.0\r\n'
            b'Content-Type: multipart/mixed; boundary="big"\r\n'
            b'\r\n'
            b'--big\r\n'
            b'Content-Type: text/plain\r\n'
            b'\r\n'
            b'A large attachment follows.\r\n'
            b'--big\r\n'
            b'Content-Type: application/octet-stream\r\n'
            b'Content-Transfer-Encoding: base64\r\n'
            b'\r\n' + b64 + b'--big--\r\n')


class MbsyncBulkTest(MbsyncCase):
    """mbsync with 150 messages (APPENDed with mixed flags), a 3 MB
    message and a mailbox whose name is not ASCII (modified UTF-7 on the
    wire, RFC 3501 5.1.3; isync 1.4 names the Maildir folder as it comes
    on the wire, decoding only came with isync 1.5)."""

    def test_mbsync_bulk(self):
        big = large_message('a big one')
        self.deliver([big])
        m = self.imap()
        letters = ['\\Seen', '\\Flagged', '\\Answered', '\\Draft']
        t0 = time.monotonic()
        for i in range(150):
            flags = [f for j, f in enumerate(letters) if i >> j & 1]
            self.ok(m.append('INBOX', '(%s)' % ' '.join(flags), None,
                             message('bulk %d' % i)), 'APPEND %d' % i)
        box = 'Entw&APw-rfe'  # "Entwürfe"
        self.ok(m.create(box), 'CREATE ' + box)
        self.ok(m.append(box, '(\\Seen)', None, message('ein Entwurf')),
                'APPEND ' + box)
        boxes = list_map(self.ok(m.list('""', '*'), 'LIST'))
        self.assertIn(box, boxes, 'LIST after CREATE %s: %r' % (box, boxes))
        harness.note('150 APPENDs: %.2f s' % (time.monotonic() - t0))
        self.rc = self.mbsyncrc()
        t0 = time.monotonic()
        self.sync()
        harness.note('mbsync of 151 messages (one of 3 MB): %.2f s'
                     % (time.monotonic() - t0))
        local = self.assert_mirror('first sync', boxes=('INBOX',))
        self.assertEqual(len(local['INBOX']), 151)
        self.assertTrue(os.path.isdir(os.path.join(self.maildir, box,
                                                   'cur')),
                        'no Maildir folder for the mailbox %s: %r'
                        % (box, os.listdir(self.maildir)))
        got = maildir_files(self.maildir)[box]
        self.assertEqual([strip_tuid(d) for d in got.values()],
                         [lf(message('ein Entwurf'))], got)

        # Every message marked \Seen in the Maildir, pushed back.
        inbox_dir = os.path.join(self.maildir, 'INBOX')
        for name in local['INBOX'].values():
            flags = maildir_flags(name)
            if 'S' not in flags:
                new = 'cur/' + os.path.basename(name).split(':2,')[0] + \
                    ':2,' + ''.join(sorted(flags + 'S'))
                os.rename(os.path.join(inbox_dir, name),
                          os.path.join(inbox_dir, new))
        self.sync()
        self.select(m)
        self.assertEqual(self.ok(m.search(None, 'UNSEEN'), 'SEARCH')[0],
                         b'', 'SEARCH UNSEEN after mbsync pushed \\Seen '
                         'for every message')
        self.assert_mirror('after pushing \\Seen', boxes=('INBOX',))


class LargeMessageTest(ClientCase):
    """A 3 MB message (FETCH answers it in parts): BODY[] whole and
    partial, BINARY[] of the attachment (RFC 3516) and RFC822.SIZE with
    imaplib; BODY[] with curl."""

    def test_large_message(self):
        big = large_message('large through clients')
        self.deliver([big])
        m = self.imap()
        self.select(m)
        (uid, d), = self.fetch(m, '1', '(BODY.PEEK[] RFC822.SIZE)').items()
        body = d['BODY[]']
        self.assertEqual(strip_delivery_trace(body), big, 'FETCH BODY[] '
                         'of a 3 MB message: %s'
                         % first_diff(strip_delivery_trace(body), big))
        self.assertEqual(int(d['RFC822.SIZE']), len(body))
        d = self.fetch(m, str(uid), '(BODY.PEEK[]<1000000.5000>)')[uid]
        self.assertEqual(d['BODY[]<1000000>'], body[1000000:1005000],
                         'FETCH BODY.PEEK[]<1000000.5000>')
        caps = self.ok(m.capability(), 'CAPABILITY')[0].upper().split()
        if b'BINARY' in caps:
            d = self.fetch(m, str(uid), '(BINARY.PEEK[2])')[uid]
            raw = base64.b64decode(big.split(b'base64\r\n\r\n', 1)[1]
                                   .split(b'--big--')[0])
            self.assertEqual(d['BINARY[2]'], raw, 'FETCH BINARY.PEEK[2]: '
                             'not the decoded attachment: %s'
                             % first_diff(d['BINARY[2]'], raw))
        got = self.curl('INBOX;UID=%d' % uid)
        self.assertEqual(got, body, 'curl INBOX;UID=%d of 3 MB: %s'
                         % (uid, first_diff(got, body)))


class LineEndTest(ClientCase):
    """A local delivery agent gets messages with Unix line ends (an MTA
    pipes them so, an mbox holds them so), but an IMAP message is RFC
    5322 text with CRLF line ends, and RFC822.SIZE counts them (RFC 9051
    2.3.4): what `marmot deliver` stored with LF must come out with CRLF,
    to imaplib and to curl alike.

    Against Marmot at 7cca0cc this fails: `marmot deliver` stores the LF
    bytes as they came, and FETCH BODY[] / RFC822.SIZE serve them with
    bare LF (FETCH 1 (RFC822.SIZE BODY.PEEK[]) -> "RFC822.SIZE 507
    BODY[] {507} From: ...\\nTo: ..."); `marmot import --maildir` of
    LF files does the same. Dovecot's LDA stores LF and serves CRLF."""

    def test_lf_delivery_served_with_crlf(self):
        msgs = [message('lf line ends'), multipart_message('lf multipart')]
        self.deliver([lf(msg) for msg in msgs])
        path = os.path.join(self.tmp, 'one.mbox')
        with open(path, 'wb') as f:
            f.write(b'From sender@remote.test Tue Dec  1 10:00:00 2026\n' +
                    lf(message('lf from an mbox')) + b'\n')
        self.srv.deliver_mbox(self.user, path)
        msgs.append(message('lf from an mbox'))
        m = self.imap()
        self.select(m)
        got = self.fetch(m, '1:*', '(RFC822.SIZE BODY.PEEK[] '
                         'BODY.PEEK[TEXT])')
        self.assertEqual(len(got), 3, sorted(got))
        for (uid, d), msg in zip(sorted(got.items()), msgs):
            body = strip_delivery_trace(d['BODY[]'])
            self.assertEqual(body, msg, 'UID FETCH %d BODY[] of a message '
                             'delivered with LF line ends: expected CRLF '
                             '(RFC 5322 2.1), %s' % (uid, first_diff(body,
                                                                     msg)))
            self.assertEqual(int(d['RFC822.SIZE']), len(d['BODY[]']),
                             'UID FETCH %d RFC822.SIZE counts CRLF (RFC '
                             '9051 2.3.4)' % uid)
            self.assertEqual(d['BODY[TEXT]'], msg.split(b'\r\n\r\n', 1)[1],
                             'UID FETCH %d BODY[TEXT]' % uid)
            self.assertEqual(self.curl('INBOX;UID=%d' % uid), d['BODY[]'],
                             'curl INBOX;UID=%d' % uid)


class ManyMessagesTest(ClientCase):
    """A mailbox of 500 messages (delivered as one mbox) read whole by
    mutt (headers of all, then every message piped) and by fetchmail
    (fetchall), and searched by curl: every client sees all 500."""

    COUNT = 500

    def test_500_messages(self):
        mbox = b''.join(
            b'From sender@remote.test Tue Dec  1 10:00:00 2026\n' +
            lf(message('many %03d' % i)) + b'\n'
            for i in range(self.COUNT))
        path = os.path.join(self.tmp, 'many.mbox')
        with open(path, 'wb') as f:
            f.write(mbox)
        t0 = time.monotonic()
        self.srv.deliver_mbox(self.user, path)
        harness.note('%d messages delivered from an mbox in %.2f s'
                     % (self.COUNT, time.monotonic() - t0))
        want = [b'many %03d' % i for i in range(self.COUNT)]

        out = self.curl('INBOX?ALL').decode()
        self.assertEqual(out.split()[2:], [str(i) for i in
                                           range(1, self.COUNT + 1)],
                         'curl INBOX?ALL: %r' % out[:300])

        every = os.path.join(self.tmp, 'all.eml')
        t0 = time.monotonic()
        code, screen = run_on_pty(
            ['mutt', '-n', '-F', MuttTest.muttrc(self), '-e',
             'push "<tag-pattern>~A<enter><tag-prefix><pipe-message>'
             'cat > %s<enter><quit>"' % every], self.env(), self.tmp,
            CLIENT_TIMEOUT)
        harness.note('mutt: %d messages opened and piped in %.2f s'
                     % (self.COUNT, time.monotonic() - t0))
        self.assertEqual(code, 0, screen[-2000:])
        with open(every, 'rb') as f:
            got = sorted(re.findall(rb'(?m)^Subject: (many \d+)$', f.read()))
        self.assertEqual(got, want, 'mutt piped %d of %d messages'
                         % (len(got), self.COUNT))

        t0 = time.monotonic()
        r, fetched = FetchmailTest.fetchmail(self, keep=True)
        harness.note('fetchmail: %d messages in %.2f s'
                     % (len(fetched), time.monotonic() - t0))
        # (\r? because the mbox has LF line ends: LineEndTest checks
        # that the server turns them into CRLF.)
        got = sorted(re.search(rb'\nSubject: (many \d+)\r?\n', g).group(1)
                     for g in fetched)
        self.assertEqual(got, want, 'fetchmail fetched %d of %d messages'
                         % (len(got), self.COUNT))


# -- fetchmail -----------------------------------------------------------

def strip_fetchmail_received(data):
    """fetchmail puts one Received field of its own on top of every
    message it hands on ("Received: from 127.0.0.1 ... by HOST with IMAP
    (fetchmail-6.4.37) for <...> (single-drop); DATE", folded over
    several lines): that field (its first line and the continuation
    lines after it) is removed, nothing else."""
    m = re.match(rb'Received: from [^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*',
                 data)
    if not m or b'fetchmail' not in m.group(0):
        raise AssertionError('no fetchmail Received field on top: %r'
                             % data[:300])
    return data[m.end():]


class FetchmailTest(ClientCase):
    """fetchmail over IMAPS: a run with keep fetches every unseen message
    and marks it \\Seen, a second run fetches nothing, a run with nokeep
    fetches the new one and deletes it on the server. Messages go to an
    MDA that writes each to a file of its own; `no stripcr` keeps the CRLF
    line ends, so a file is BODY[] exactly after fetchmail's own Received
    field."""

    def fetchmail(self, keep, ok_codes=(0,), starttls=False, idle=False):
        out = os.path.join(self.tmp, 'fetched')
        os.makedirs(out, exist_ok=True)
        text = ('set no syslog\n'
                'set postmaster "root"\n'
                'poll %s service %d protocol IMAP timeout 20\n'
                '  user "%s" there with password "%s" is root here\n'
                '  folder INBOX\n'
                # ssl: implicit TLS (993); sslproto without ssl:
                # STARTTLS, required (sslcertck makes it mandatory).
                '  %s sslcertck sslcertfile "%s"\n'
                '  sslcommonname "%s"\n'
                '  %s%s\n'
                '  no stripcr\n'
                '  mda "/bin/sh -c \'cat > $(mktemp %s/msg.XXXXXX)\'"\n'
                % (self.srv.host,
                   self.srv.ports['imap' if starttls else 'imaps'],
                   self.user, self.password,
                   "sslproto 'tls1.2+'" if starttls else 'ssl', self.cert,
                   self.srv.hostname,
                   'keep' if keep else 'nokeep', ' idle' if idle else '',
                   out))
        rc = self.write_private('.fetchmailrc', text)
        if idle:
            return rc, out
        r = self.run_client(['fetchmail', '-f', rc, '--nosyslog', '-v',
                             '--nodetach', '--pidfile',
                             os.path.join(self.tmp, 'fetchmail.pid')],
                            ok_codes=ok_codes)
        got = []
        for name in sorted(os.listdir(out)):
            with open(os.path.join(out, name), 'rb') as f:
                got.append(f.read())
            os.unlink(os.path.join(out, name))
        return r, got

    def test_fetchmail_keep_then_nokeep(self):
        self.deliver([message('fetch one'), multipart_message('fetch two'),
                      message('fetch three')])
        server = self.bodies()
        r, got = self.fetchmail(keep=True)
        stripped = sorted(strip_fetchmail_received(g) for g in got)
        want = sorted(b for _, b in server.values())
        self.assertEqual(len(stripped), 3, 'fetchmail (keep) fetched %d of '
                         '3 messages\n%s' % (len(got),
                                             r.stderr.decode()[-3000:]))
        for g, w in zip(stripped, want):
            self.assertEqual(g, w, 'fetched message vs BODY[]: %s'
                             % first_diff(g, w))
        after = self.bodies()
        self.assertEqual(sorted(after), sorted(server), 'keep: every '
                         'message stays on the server')
        for uid, (flags, _) in after.items():
            self.assertIn('\\Seen', flags, 'fetchmail (keep) fetched UID %d'
                          ': \\Seen expected, got %r' % (uid, flags))

        # Nothing unseen: fetchmail exits 1 ("no mail").
        r, got = self.fetchmail(keep=True, ok_codes=(1,))
        self.assertEqual(got, [], 'second fetchmail run fetched again')

        self.deliver([message('fetch four')])
        new = [u for u in self.bodies() if u not in server]
        self.assertEqual(len(new), 1)
        r, got = self.fetchmail(keep=False)
        self.assertEqual(len(got), 1, 'fetchmail (nokeep): %d messages\n%s'
                         % (len(got), r.stderr.decode()[-3000:]))
        after = self.bodies()
        self.assertEqual(sorted(after), sorted(server), 'nokeep: the '
                         'fetched message is deleted (and expunged), the '
                         'others stay: %r' % sorted(after))
        self.assertIn(b'Subject: fetch four\r\n',
                      strip_fetchmail_received(got[0]))


    def test_fetchmail_idle(self):
        """fetchmail as a daemon with `idle` (RFC 2177): a message sent
        over SMTP while it idles is fetched within a few seconds."""
        self.deliver([message('fetch before idle')])
        rc, out = self.fetchmail(keep=True, idle=True)
        p = subprocess.Popen(
            ['fetchmail', '-f', rc, '--nosyslog', '-v', '--nodetach',
             '--daemon', '300', '--pidfile',
             os.path.join(self.tmp, 'fetchmail.pid')],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=self.env(), cwd=self.tmp)

        output = []

        def stop():
            if p.poll() is None:
                p.kill()
            if not output:
                try:
                    output.append(p.communicate(timeout=10)[0])
                except subprocess.TimeoutExpired:
                    output.append(b'(no output: fetchmail did not exit)')
            return output[0].decode(errors='replace')
        self.addCleanup(stop)

        def wait_files(n, timeout):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if len(os.listdir(out)) >= n or p.poll() is not None:
                    break
                time.sleep(0.05)
            return len(os.listdir(out))

        self.assertEqual(wait_files(1, 20), 1, 'fetchmail --daemon with '
                         'idle: the first message was not fetched')
        # Give it time to enter IDLE, then deliver.
        time.sleep(1.5)
        self.srv.deliver_smtp(self.user, message('fetch during idle'))
        t0 = time.monotonic()
        got = wait_files(2, 15)
        elapsed = time.monotonic() - t0
        log = stop()
        harness.note('fetchmail idle: the new message fetched %.2f s after '
                     'the SMTP 250' % elapsed)
        self.assertEqual(got, 2, 'fetchmail with idle did not fetch the '
                         'message sent while it idled\n%s' % log[-3000:])
        self.assertIn('IDLE', log, 'fetchmail -v shows no IDLE:\n%s'
                      % log[-3000:])
        self.assertLess(elapsed, 5.0, 'fetchmail idle took %.2f s' % elapsed)

    def test_fetchmail_starttls(self):
        self.deliver([message('fetch over starttls')])
        server = self.bodies()
        r, got = self.fetchmail(keep=True, starttls=True)
        self.assertEqual([strip_fetchmail_received(g) for g in got],
                         [b for _, b in server.values()],
                         'fetchmail over 143 with STARTTLS\n%s'
                         % r.stdout.decode(errors='replace')[-3000:])
        self.assertIn(b'STARTTLS', r.stdout + r.stderr, 'fetchmail -v does '
                      'not show a STARTTLS')


# -- curl ----------------------------------------------------------------

class CurlTest(ClientCase):
    """curl's IMAP URLs (RFC 5092): over IMAPS with the instance's
    certificate checked (its name resolved to loopback with --resolve),
    and over imap:// with --ssl-reqd (STARTTLS)."""

    def test_curl_urls(self):
        self.deliver([message('curl one'), multipart_message('curl two'),
                      message('curl three')])
        server = self.bodies()
        uids = sorted(server)
        for uid in uids:
            got = self.curl('INBOX;UID=%d' % uid)
            self.assertEqual(got, server[uid][1], 'curl INBOX;UID=%d: %s'
                             % (uid, first_diff(got, server[uid][1])))
        # RFC 5092 6: a URL with the mailbox's UIDVALIDITY; curl refuses
        # the fetch when the mailbox's differs (exit 78).
        m = self.imap()
        validity = status_map(self.ok(m.status('INBOX', '(UIDVALIDITY)'),
                                      'STATUS'))['UIDVALIDITY']
        got = self.curl('INBOX;UIDVALIDITY=%d/;UID=%d' % (validity, uids[0]))
        self.assertEqual(got, server[uids[0]][1], 'curl ;UIDVALIDITY=%d'
                         % validity)
        self.curl('INBOX;UIDVALIDITY=%d/;UID=%d' % (validity + 1, uids[0]),
                  ok_codes=(78,))
        got = self.curl('INBOX;MAILINDEX=2')
        self.assertEqual(got, server[uids[1]][1], 'curl INBOX;MAILINDEX=2')
        got = self.curl('INBOX;UID=%d;SECTION=1' % uids[1])
        self.assertIn(b'The attachment is a few bytes.', got,
                      'curl ;SECTION=1: %r' % got)
        got = self.curl('INBOX;UID=%d;SECTION=HEADER.FIELDS%%20(SUBJECT)'
                        % uids[0])
        self.assertEqual(got, b'Subject: curl one\r\n\r\n',
                         'curl ;SECTION=HEADER.FIELDS (SUBJECT)')

        # The fetches above were BODY[] (not PEEK): all \Seen now.
        self.select(m)
        self.ok(m.uid('STORE', str(uids[1]), '-FLAGS', '(\\Seen)'), 'STORE')
        out = self.curl('INBOX?UNSEEN').decode()
        self.assertEqual(out.strip(), '* SEARCH %d' % uids[1],
                         'curl INBOX?UNSEEN (SEARCH UNSEEN): %r' % out)
        out = self.curl('INBOX?SUBJECT%20three').decode()
        self.assertEqual(out.strip(), '* SEARCH %d' % uids[2], out)

        out = self.curl('', '-X', 'EXAMINE INBOX').decode()
        self.assertIn('* 3 EXISTS', out, 'curl -X "EXAMINE INBOX": %r' % out)
        self.assertRegex(out, r'\[UIDVALIDITY \d+\]', out)

        out = self.curl('').decode()
        names = set()
        for line in out.splitlines():
            parsed = parse_sexp(line.encode()[len('* LIST '):])
            self.assertTrue(line.startswith('* LIST ('), 'curl LIST: %r'
                            % out)
            names.add(parsed[2].decode())
        for box in ('INBOX', 'Archive', 'Sent', 'Trash'):
            self.assertIn(box, names, 'curl LIST (imaps://host/): %r' % out)

        out = self.curl('', '-X', 'STATUS INBOX (MESSAGES UNSEEN)').decode()
        self.assertRegex(out, r'\* STATUS "?INBOX"? \((MESSAGES 3 UNSEEN 1|'
                         r'UNSEEN 1 MESSAGES 3)\)',
                         'curl -X "STATUS INBOX (MESSAGES UNSEEN)": %r' % out)

        # curl -T: APPEND.
        new = message('uploaded with curl')
        path = os.path.join(self.tmp, 'upload.eml')
        with open(path, 'wb') as f:
            f.write(new)
        self.curl('Archive', '-T', path)
        archive = self.bodies('Archive')
        self.assertEqual([b for _, b in archive.values()], [new],
                         'Archive after curl -T: %r' % archive)

        # STARTTLS on the plain port.
        got = self.curl('INBOX;UID=%d' % uids[2], '--ssl-reqd',
                        scheme='imap')
        self.assertEqual(got, server[uids[2]][1], 'curl imap:// --ssl-reqd '
                         'INBOX;UID=%d' % uids[2])

    def test_curl_refusals(self):
        # A wrong password: curl's "login denied" (exit 67), no data.
        port = self.srv.ports['imaps']
        r = subprocess.run(
            ['curl', '-sS', '--max-time', '20', '--cacert', self.cert,
             '--resolve', '%s:%d:%s' % (self.srv.hostname, port,
                                        self.srv.host),
             '-u', '%s:wrong-password' % self.user,
             'imaps://%s:%d/INBOX;UID=1' % (self.srv.hostname, port)],
            capture_output=True, env=self.env(), timeout=CLIENT_TIMEOUT)
        self.assertEqual(r.returncode, 67, 'curl with a wrong password: '
                         'expected exit 67 (login denied), got %d %r'
                         % (r.returncode, r.stderr))


if __name__ == '__main__':
    unittest.main()
