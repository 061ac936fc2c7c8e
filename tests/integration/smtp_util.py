"""Shared pieces of the SMTP "Must show" tests (issue 4): a raw SMTP
client that can bind its source address (the smuggling test sends from
127.0.0.2), an instance with accounts whose ids are known, and reading
mail back out of the store: the spool merged, `marmot store list`,
`marmot export --maildir` and the trace fields we add removed.

Not a test module itself (run.py discovers test_*.py only). Standard
library only; every wait bounded."""

import os
import pwd
import re
import shutil
import socket
import time
import unittest

import harness
from harness import DOMAIN, HOSTNAME, LOOPBACK, Instance, LineClient

# The address the tests send from where the source matters (a host that
# is not 127.0.0.1, so nothing can trust it as "localhost").
OTHER_SOURCE = '127.0.0.2'

REMOTE = 'remote.test'  # a domain that is not ours


class SmtpClient(LineClient):
    """LineClient with an optional source address, and SMTP helpers."""

    def __init__(self, port, source=None, tls_context=None,
                 server_hostname=HOSTNAME, timeout=15.0):
        src = (source, 0) if source else None
        self.sock = socket.create_connection((LOOPBACK, port),
                                             timeout=timeout,
                                             source_address=src)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = b''
        self.transcript = []
        if tls_context is not None:
            self.sock = tls_context.wrap_socket(
                self.sock, server_hostname=server_hostname)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.transcript.append(('C', data[:300]))
        self.sock.sendall(data)

    def reply(self):
        """(code, lines) of one reply; (None, [why]) on EOF or timeout."""
        try:
            code, lines = self.smtp_reply()
        except EOFError as e:
            return None, ['EOF: %s' % e]
        except socket.timeout:
            return None, ['timeout after %.0f s' % self.timeout]
        except OSError as e:
            return None, ['%s: %s' % (type(e).__name__, e)]
        self.transcript.append(('S', lines))
        return code, lines

    def expect(self, code, what):
        """Reads one reply and fails (AssertionError) unless it has the
        given code (int, or a tuple of accepted codes)."""
        got, lines = self.reply()
        ok = got in code if isinstance(code, tuple) else got == code
        if not ok:
            raise AssertionError('%s: expected %r, got %r\ntranscript:\n%s'
                                 % (what, code, lines, self.show()))
        return lines

    def replies_until_close(self, limit=20):
        """Every reply up to EOF or a 221 (at most limit)."""
        out = []
        for _ in range(limit):
            code, lines = self.reply()
            if code is None:
                break
            out.append(lines)
            if code == 221:
                break
        return out

    def show(self):
        lines = []
        for who, what in self.transcript[-30:]:
            lines.append('%s: %r' % (who, what))
        return '\n'.join(lines)

    def greet_ehlo(self, helo='client.test.example'):
        self.expect(220, 'greeting')
        self.cmd('EHLO ' + helo)
        return harness.ehlo_keywords(self.expect(250, 'EHLO'))

    def starttls_ehlo(self, ctx, helo='client.test.example'):
        self.cmd('STARTTLS')
        self.expect(220, 'STARTTLS')
        self.starttls(ctx)
        self.cmd('EHLO ' + helo)
        return harness.ehlo_keywords(self.expect(250, 'EHLO after TLS'))

    def auth_plain(self, user, password):
        self.cmd('AUTH PLAIN ' + harness.auth_plain(user, password))
        self.expect(235, 'AUTH PLAIN %s' % user)


def strip_trace(data):
    """(trace fields, rest) of a stored message: the Return-Path and
    Received fields at its top (with their continuation lines), which we
    add on delivery (RFC 5321 4.4), the DKIM-Signature fields submission
    adds after them and the Authentication-Results field port 25 adds
    below its Received (RFC 8601), split from the message as sent."""
    trace = []
    rest = data
    while True:
        m = re.match(rb'(?i)(return-path|received|dkim-signature|'
                     rb'authentication-results)[ \t]*:'
                     rb'[^\n]*\n(?:[ \t][^\n]*\n)*', rest)
        if not m:
            return trace, rest
        trace.append(m.group(0))
        rest = rest[m.end():]


def first_diff(a, b):
    """A short description of where bytes a and b first differ."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            break
    else:
        i = n
    return ('lengths %d and %d, first difference at byte %d: %r vs %r'
            % (len(a), len(b), i, a[max(0, i - 20):i + 40],
               b[max(0, i - 20):i + 40]))


_binary_strings = {}


def binary_knows_setting(binary, name):
    """True if the marmot binary has a setting called name (its settings
    table holds the name as a string literal). marmot.conf refuses unknown
    names, so a test sets an optional tuning only where it exists, e.g.
    queue_* before the queue has landed."""
    data = _binary_strings.get(binary)
    if data is None:
        with open(binary, 'rb') as f:
            data = _binary_strings[binary] = f.read()
    return (b'\0' + name.encode() + b'\0') in data


class MailInstance:
    """An Instance with accounts (address -> id) and read-back helpers.
    conf: extra marmot.conf lines (name, value) appended before start."""

    def __init__(self, accounts, conf=(), aliases=()):
        self.inst = Instance()
        self.ids = {}
        self.passwords = {}
        try:
            for address in accounts:
                self.add_user(address)
            for alias, targets in aliases:
                self.ok(['alias', 'add', alias] + list(targets))
            self.conf_skipped = []
            if conf:
                with open(os.path.join(self.inst.data, 'marmot.conf'),
                          'a') as f:
                    for name, value in conf:
                        if not binary_knows_setting(self.inst.binary, name):
                            self.conf_skipped.append(name)
                            continue
                        f.write('%s = %s\n' % (name, value))
            self.inst.start()
            self.inst.wait_port('smtp')
            self.inst.wait_port('submission')
            if accounts:
                self.wait_vault(accounts[0])
        except BaseException:
            self.inst.cleanup()
            raise
        self.work = os.path.join(self.inst.dir, 'work')
        os.mkdir(self.work)
        if harness.is_root():
            # The CLI drops to the data directory's owner, who writes the
            # exports.
            pw = pwd.getpwnam(self.inst.run_user)
            os.chown(self.work, pw.pw_uid, pw.pw_gid)
        self.exports = 0

    def cleanup(self):
        self.inst.cleanup()

    def wait_vault(self, address, timeout=20.0):
        """Waits (bounded) until RCPT TO:<address> on port 25 is no longer
        answered with a 4xx: the front listens before its vault
        connection is up, and answers RCPT with 451 until then (a
        correct answer, which a real sender retries; the tests start
        once the vault answers). A build without mail transactions
        (MAIL refused) returns at once."""
        deadline = time.monotonic() + timeout
        code, lines = None, []
        while time.monotonic() < deadline:
            c = SmtpClient(self.inst.ports['smtp'])
            try:
                c.greet_ehlo()
                c.cmd('MAIL FROM:<probe@probe.test>')
                code, lines = c.reply()
                if code != 250:
                    return
                c.cmd('RCPT TO:<%s>' % address)
                code, lines = c.reply()
                c.cmd('QUIT')
                c.reply()
            finally:
                c.close()
            if code is not None and not 400 <= code < 500:
                return
            time.sleep(0.1)
        raise AssertionError('RCPT TO:<%s> still %r after %.0f s\n%s'
                             % (address, lines, timeout,
                                self.inst.log_text()))

    def ok(self, args, input=None, timeout=120):
        r = self.inst.marmot(args, input=input, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError('marmot %s: exit %d\nstdout:\n%s\nstderr:'
                                 '\n%s' % (' '.join(args), r.returncode,
                                           r.stdout, r.stderr))
        return r

    def add_user(self, address):
        password = harness.random_password()
        r = self.ok(['user', 'add', address, '--password-stdin'],
                    input=password + '\n')
        m = re.search(r'\(id (\d+)', r.stdout)
        if not m:
            raise AssertionError('no account id in %r' % r.stdout)
        self.ids[address] = int(m.group(1))
        self.passwords[address] = password
        return password

    def account_dir(self, address):
        return os.path.join(self.inst.data, 'accounts',
                            str(self.ids[address]))

    def spool_pending(self, address):
        """True while the account's spool holds records not merged yet."""
        d = self.account_dir(address)
        p = os.path.join(d, 'spool')
        if os.path.exists(os.path.join(d, 'spool.merging')):
            return True
        return os.path.exists(p) and os.path.getsize(p) > 0

    def store_list(self, address):
        """[(mailbox, uid, message-id, size)] from `marmot store list`."""
        r = self.ok(['store', 'list', address])
        lines = r.stdout.splitlines()
        if lines[:1] != ['mailbox\tuidvalidity\tuid\tmessage-id\tsize']:
            raise AssertionError('store list %s: unexpected header %r'
                                 % (address, lines[:1]))
        out = []
        for line in lines[1:]:
            box, _v, uid, msgid, size = line.split('\t')
            out.append((box, int(uid), msgid, int(size)))
        return out

    def wait_merged(self, addresses, timeout=60.0, settle=0.5):
        """Waits (bounded) until no spool of addresses holds unmerged
        records, then a little longer; returns the seconds waited."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if not any(self.spool_pending(a) for a in addresses):
                time.sleep(settle)
                if not any(self.spool_pending(a) for a in addresses):
                    return time.monotonic() - t0
            time.sleep(0.1)
        pending = [a for a in addresses if self.spool_pending(a)]
        raise AssertionError('spools of %r not merged within %.0f s\n%s'
                             % (pending, timeout, self.inst.log_text()))

    def wait_count(self, address, n, timeout=60.0):
        """Waits until store list shows at least n messages; returns the
        listing."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.store_list(address)
            if len(rows) >= n or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)

    def export(self, address):
        """[(folder, bytes)] of every message of address, read back
        through `marmot export ADDRESS --maildir DIR`."""
        self.exports += 1
        root = os.path.join(self.work, 'export-%d' % self.exports)
        self.ok(['export', address, '--maildir', root])
        out = []
        for folder, folder_dir in harness.maildir_folders(root):
            for sub in ('new', 'cur'):
                for name in sorted(os.listdir(os.path.join(folder_dir,
                                                           sub))):
                    with open(os.path.join(folder_dir, sub, name),
                              'rb') as f:
                        out.append((folder, f.read()))
        shutil.rmtree(root, ignore_errors=True)
        return out

    def queue_files(self):
        """Files under DATA/queue (the outbound queue), key excluded."""
        root = os.path.join(self.inst.data, 'queue')
        out = []
        if not os.path.isdir(root):
            return out
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                out.append(os.path.relpath(os.path.join(dirpath, name),
                                           root))
        return sorted(out)

    def queue_list(self):
        """{queue id: [recipient addresses]} from `marmot queue list`, or
        None if this build has no such command. The listing is one line
        "ID QUEUED <sender>[ held]..." per message, then one indented
        "  <rcpt> STATUS ..." line per recipient, then "N messages"."""
        r = self.inst.marmot(['queue', 'list'])
        if r.returncode != 0 and 'unknown command' in r.stderr:
            return None
        if r.returncode != 0:
            raise AssertionError('marmot queue list: exit %d\n%s%s'
                                 % (r.returncode, r.stdout, r.stderr))
        entries = {}
        current = None
        lines = r.stdout.splitlines()
        if not lines or not re.match(r'^\d+ messages?$', lines[-1]):
            raise AssertionError('marmot queue list: no count line at the '
                                 'end: %r' % r.stdout)
        for line in lines[:-1]:
            m = re.match(r'^  <([^>]*)> ', line)
            if m and current is not None:
                entries[current].append(m.group(1))
            elif line and not line.startswith(' '):
                current = line.split()[0]
                entries[current] = []
            else:
                raise AssertionError('marmot queue list: unexpected line %r'
                                     % line)
        if int(lines[-1].split()[0]) != len(entries):
            raise AssertionError('marmot queue list: count line %r for %d '
                                 'entries' % (lines[-1], len(entries)))
        return entries


# Issue 4 is in: an EHLO without these means SMTP broke, which must fail
# the tests, never skip them.
NO_TRANSACTIONS = ('EHLO on port 25 offers neither PIPELINING nor CHUNKING: '
                   'SMTP mail transactions are broken')


def mail_transactions(inst):
    """True if the instance's SMTP server takes mail: its EHLO reply on
    port 25 offers PIPELINING and CHUNKING (the stub before issue 4
    offered neither and answered MAIL with 451). The issue-4 tests that
    need mail transactions fail on False."""
    c = SmtpClient(inst.ports['smtp'])
    try:
        kw = c.greet_ehlo()
    finally:
        c.close()
    return 'PIPELINING' in kw and 'CHUNKING' in kw


class MailCase(unittest.TestCase):
    """One MailInstance per test class (setUpClass), torn down after."""
    ACCOUNTS = ('alice@' + DOMAIN,)
    ALIASES = ()
    CONF = ()
    NEEDS_TRANSACTIONS = True
    mi = None

    @classmethod
    def setUpClass(cls):
        cls.mi = MailInstance(cls.ACCOUNTS, conf=cls.CONF,
                              aliases=cls.ALIASES)
        try:
            cls.transactions = mail_transactions(cls.mi.inst)
        except BaseException:
            cls.mi.cleanup()
            cls.mi = None
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.mi is not None:
            cls.mi.cleanup()
            cls.mi = None

    def setUp(self):
        if self.NEEDS_TRANSACTIONS and not self.transactions:
            self.fail(NO_TRANSACTIONS)
        self.inst = self.mi.inst
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)
        self.ctx = self.inst.ssl_context()

    def client(self, port_name, source=None, tls=False):
        c = SmtpClient(self.inst.ports[port_name], source=source,
                       tls_context=self.ctx if tls else None)
        self.addCleanup(c.close)
        return c

    def submission_session(self, user, source=None):
        """An authenticated session on 587: EHLO, STARTTLS, EHLO, AUTH."""
        c = self.client('submission', source=source)
        c.greet_ehlo()
        c.starttls_ehlo(self.ctx)
        c.auth_plain(user, self.mi.passwords[user])
        return c


class CaptureServer:
    """A minimal SMTP server on 127.0.0.1 (one session at a time, in a
    thread) that records the content of each DATA, dot-stuffing undone:
    what a client such as swaks really sends, so that a test compares the
    store with the bytes sent rather than with a guess of them."""

    def __init__(self, timeout=20.0):
        import threading
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(4)
        self.listener.settimeout(timeout)
        self.port = self.listener.getsockname()[1]
        self.messages = []
        self.errors = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError as e:
            self.errors.append('accept: %s' % e)
            return
        conn.settimeout(20.0)
        try:
            self._session(conn)
        except (OSError, ValueError) as e:
            self.errors.append('%s: %s' % (type(e).__name__, e))
        finally:
            conn.close()

    def _session(self, conn):
        conn.sendall(b'220 capture.test ESMTP\r\n')
        buf = b''
        in_data = False
        for _ in range(10000):
            if in_data:
                # Dot-stuffed data up to the first <CRLF>.<CRLF> (the
                # DATA command's CRLF counts as the first CRLF).
                data = b'\r\n' + buf
                end = data.find(b'\r\n.\r\n')
                if end >= 0:
                    body = data[2:end + 2]
                    buf = data[end + 5:]
                    lines = body.split(b'\r\n')
                    self.messages.append(b'\r\n'.join(
                        x[1:] if x.startswith(b'.') else x for x in lines))
                    in_data = False
                    conn.sendall(b'250 2.0.0 captured\r\n')
                    continue
            elif b'\r\n' in buf:
                line, buf = buf.split(b'\r\n', 1)
                verb = line.split(b' ', 1)[0].upper()
                if verb in (b'EHLO', b'HELO'):
                    conn.sendall(b'250-capture.test\r\n250 8BITMIME\r\n')
                elif verb == b'DATA':
                    in_data = True
                    conn.sendall(b'354 go ahead\r\n')
                elif verb == b'QUIT':
                    conn.sendall(b'221 bye\r\n')
                    return
                else:
                    conn.sendall(b'250 ok\r\n')
                continue
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk

    def close(self):
        self.thread.join(timeout=25.0)
        self.listener.close()
