"""Pre-authentication abuse of IMAP (issue #6 item 7), against an instance
of its own with lowered limits:

  - the must-show attack: 100 connections each sending a 1 MiB line
    without CRLF and 100 connections each sending `a LOGIN {4294967295}`
    are each refused or closed within a bounded time, the total RSS of
    the marmot processes grows by at most 64 MiB, and meanwhile a
    legitimate LOGIN on 993 from another address succeeds within 1 s;
  - max_connections_per_ip: the connection over the cap gets
    "* BYE Too many connections" and EOF, another address is unaffected;
  - login_timeout: a connection that does not log in is logged out with
    a BYE even while it keeps sending;
  - the vault's failed-login account: after auth_max_failures_per_ip
    wrong passwords from 127.0.0.3, even the right password from there
    is refused temporarily (NO [UNAVAILABLE]), without a hash, while
    127.0.0.4 logs in at once; SMTP AUTH (454) and POP3 (-ERR [SYS/TEMP])
    from 127.0.0.3 are refused too (one account for every protocol).

Attackers spread over source addresses 127.0.0.10-127.0.0.29 (bound
client sockets), 10 connections each, under the per-IP cap. Loopback
only; every loop is bounded in count and time."""

import os
import selectors
import socket
import threading
import time
import unittest

import harness
from harness import DOMAIN, Instance, imap_quote

PER_IP_CAP = 12
LOGIN_TIMEOUT = 4
MAX_FAILURES = 4
ATTACK_LINE = 100
ATTACK_LITERAL = 100
ATTACK_SOURCES = ['127.0.0.%d' % i for i in range(10, 30)]
LINE_BYTES = 1024 * 1024
RSS_LIMIT = 64 * 1024 * 1024


def total_rss(pids):
    """Sum of VmRSS (bytes) over pids that still exist."""
    total = 0
    for pid in pids:
        try:
            with open('/proc/%d/status' % pid) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


def connect_from(source, port, timeout=10.0):
    return socket.create_connection((harness.LOOPBACK, port),
                                    timeout=timeout,
                                    source_address=(source, 0))


def read_line(sock, buf, limit=65536):
    """(line, rest) from a blocking socket; EOFError on close."""
    while b'\n' not in buf:
        if len(buf) > limit:
            raise AssertionError('line too long: %r' % buf[:200])
        chunk = sock.recv(8192)
        if not chunk:
            raise EOFError('closed; partial %r' % buf)
        buf += chunk
    line, rest = buf.split(b'\n', 1)
    return line.rstrip(b'\r').decode('utf-8', 'replace'), rest


def read_until_eof(sock, deadline, limit=1 << 20):
    """Everything the server sends until EOF (or reset); raises if the
    connection is still open at the deadline."""
    data = b''
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError('still open after the deadline; got %r'
                                 % data[-200:])
        sock.settimeout(left)
        try:
            chunk = sock.recv(8192)
        except (ConnectionResetError, BrokenPipeError):
            return data
        except socket.timeout:
            continue
        if not chunk:
            return data
        data += chunk
        if len(data) > limit:
            raise AssertionError('server sent more than %d bytes' % limit)


class ImapAttackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance()
        with open(os.path.join(cls.inst.data, 'marmot.conf'), 'a') as f:
            f.write('\nmax_connections_per_ip = %d\n' % PER_IP_CAP)
            f.write('login_timeout = %ds\n' % LOGIN_TIMEOUT)
            f.write('auth_max_failures_per_ip = %d\n' % MAX_FAILURES)
        cls.user = 'alice@' + DOMAIN
        cls.password = cls.inst.add_user(cls.user)
        cls.inst.start()
        cls.inst.wait_all_ports()
        cls.ctx = cls.inst.ssl_context()

    @classmethod
    def tearDownClass(cls):
        cls.inst.cleanup()

    def setUp(self):
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)

    # -- helpers -----------------------------------------------------------

    def tls_from(self, source, port_name, greeting):
        """An implicit-TLS connection from source whose first line starts
        with greeting; returns (socket, bytes read past that line)."""
        raw = connect_from(source, self.inst.ports[port_name])
        sock = self.ctx.wrap_socket(raw, server_hostname=harness.HOSTNAME)
        self.addCleanup(sock.close)
        line, buf = read_line(sock, b'')
        self.assertTrue(line.startswith(greeting), line)
        return sock, buf

    def imaps_login(self, source, password, tag='l1'):
        """Connects to 993 from source, logs in; returns (tagged reply,
        seconds from connect to the reply)."""
        t0 = time.monotonic()
        sock, buf = self.tls_from(source, 'imaps', '* OK')
        sock.sendall(('%s LOGIN %s %s\r\n' % (
            tag, imap_quote(self.user), imap_quote(password))).encode())
        for _ in range(50):
            line, buf = read_line(sock, buf)
            if line.startswith(tag + ' '):
                return line, time.monotonic() - t0
        raise AssertionError('no tagged reply to LOGIN')

    # -- the must-show attack ----------------------------------------------

    def test_preauth_flood(self):
        inst = self.inst
        port = inst.ports['imap']
        pids = inst.our_pids()
        self.assertTrue(pids, 'no marmot processes found')
        # Let the just-started server settle before the baseline.
        time.sleep(0.5)
        base = total_rss(pids)
        peak = base
        sel = selectors.DefaultSelector()
        conns = []
        line = b'a LOGIN ' + b'x' * (LINE_BYTES - 8)
        for i in range(ATTACK_LINE + ATTACK_LITERAL):
            src = ATTACK_SOURCES[i % len(ATTACK_SOURCES)]
            s = connect_from(src, port)
            s.setblocking(False)
            payload = (line if i < ATTACK_LINE
                       else b'a LOGIN {4294967295}\r\n')
            st = {'sock': s, 'out': memoryview(payload), 'in': b'',
                  'eof': False, 'kind': 'line' if i < ATTACK_LINE
                  else 'literal'}
            conns.append(st)
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE,
                         st)
        self.addCleanup(lambda: [c['sock'].close() for c in conns])

        # Meanwhile, from elsewhere: a real login within 1 s, started
        # once the flood is under way.
        login = {}

        def legit_login():
            time.sleep(0.3)
            try:
                login['result'] = self.imaps_login('127.0.0.2',
                                                   self.password)
            except BaseException as e:
                login['error'] = e
        thread = threading.Thread(target=legit_login, daemon=True)
        thread.start()

        deadline = time.monotonic() + LOGIN_TIMEOUT + 20
        open_left = len(conns)
        last_sample = 0.0
        while open_left > 0 and time.monotonic() < deadline:
            for key, events in sel.select(timeout=0.05):
                st = key.data
                s = st['sock']
                if events & selectors.EVENT_WRITE and len(st['out']):
                    try:
                        n = s.send(st['out'][:65536])
                        st['out'] = st['out'][n:]
                    except BlockingIOError:
                        pass
                    except (BrokenPipeError, ConnectionResetError):
                        st['out'] = memoryview(b'')
                    if not len(st['out']):
                        sel.modify(s, selectors.EVENT_READ, st)
                if events & selectors.EVENT_READ:
                    try:
                        chunk = s.recv(65536)
                    except BlockingIOError:
                        continue
                    except ConnectionResetError:
                        chunk = b''
                    if chunk:
                        st['in'] += chunk
                        self.assertLess(len(st['in']), 65536)
                        continue
                    st['eof'] = True
                    sel.unregister(s)
                    open_left -= 1
            now = time.monotonic()
            if now - last_sample > 0.05:
                last_sample = now
                peak = max(peak, total_rss(pids))
        peak = max(peak, total_rss(pids))
        thread.join(10)
        self.assertNotIn('error', login, login.get('error'))
        self.assertIn('result', login, 'the legitimate login hung')
        tagged, secs = login['result']
        harness.note('legitimate login during the flood: %.3f s' % secs)
        self.assertTrue(tagged.startswith('l1 OK'), tagged)
        self.assertLess(secs, 1.0, 'login took %.3f s' % secs)
        harness.note('RSS: %.1f MiB before, %.1f MiB at the peak '
                     '(+%.1f MiB) with %d attackers'
                     % (base / 1048576.0, peak / 1048576.0,
                        (peak - base) / 1048576.0, len(conns)))
        still = [c['kind'] for c in conns if not c['eof']]
        self.assertEqual(still, [], '%d attack connections still open '
                         'after the deadline' % len(still))
        for c in conns:
            # Each got its greeting and at most a refusal, never a prompt
            # for 4 GiB of literal data.
            text = c['in'].decode('utf-8', 'replace')
            self.assertFalse(
                any(x.startswith('+') for x in text.split('\r\n')),
                'literal accepted: %r' % text[:300])
            self.assertTrue(text.startswith('* OK'), text[:200])
        self.assertLessEqual(peak - base, RSS_LIMIT,
                             'RSS grew by %.1f MiB'
                             % ((peak - base) / 1048576.0))
        # And the server is still fine afterwards.
        tagged, secs = self.imaps_login('127.0.0.2', self.password, 'l2')
        self.assertTrue(tagged.startswith('l2 OK'), tagged)

    # -- per-IP cap ----------------------------------------------------------

    def test_per_ip_cap(self):
        port = self.inst.ports['imap']
        held = []
        self.addCleanup(lambda: [s.close() for s in held])
        for _ in range(PER_IP_CAP):
            s = connect_from('127.0.0.5', port)
            held.append(s)
            greeting, _ = read_line(s, b'')
            self.assertTrue(greeting.startswith('* OK'), greeting)
        extra = connect_from('127.0.0.5', port)
        held.append(extra)
        data = read_until_eof(extra, time.monotonic() + 5)
        self.assertEqual(data, b'* BYE Too many connections from your '
                         b'address\r\n')
        # POP3 and SMTP count against the same cap, in their own words.
        pop = connect_from('127.0.0.5', self.inst.ports['pop3'])
        held.append(pop)
        data = read_until_eof(pop, time.monotonic() + 5)
        self.assertTrue(data.startswith(b'-ERR [SYS/TEMP] '), data)
        smtp = connect_from('127.0.0.5', self.inst.ports['smtp'])
        held.append(smtp)
        data = read_until_eof(smtp, time.monotonic() + 5)
        self.assertTrue(data.startswith(b'421 4.7.0 '), data)
        # Another address is not affected.
        other = connect_from('127.0.0.6', port)
        held.append(other)
        greeting, _ = read_line(other, b'')
        self.assertTrue(greeting.startswith('* OK'), greeting)
        # A slot comes free when one closes.
        held[0].close()
        ok = False
        for _ in range(50):
            time.sleep(0.05)
            s = connect_from('127.0.0.5', port)
            held.append(s)
            line, _ = read_line(s, b'')
            if line.startswith('* OK'):
                ok = True
                break
        self.assertTrue(ok, 'no slot after a close')

    # -- login timeout -------------------------------------------------------

    def test_login_timeout(self):
        s = connect_from('127.0.0.7', self.inst.ports['imap'])
        self.addCleanup(s.close)
        t0 = time.monotonic()
        greeting, _ = read_line(s, b'')
        self.assertTrue(greeting.startswith('* OK'), greeting)
        # Busy but never logging in: a NOOP every half second (each
        # would reset an idle timer, not login_timeout).
        s.settimeout(0.5)
        data = b''
        closed = False
        for i in range(2 * (LOGIN_TIMEOUT + 10)):
            try:
                s.sendall(b'n%d NOOP\r\n' % i)
                chunk = s.recv(8192)
                if chunk:
                    data += chunk
                    time.sleep(0.5)
                    continue
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                pass
            closed = True
            break
        elapsed = time.monotonic() - t0
        self.assertTrue(closed, 'still open after %.1f s' % elapsed)
        self.assertIn(b'n0 OK', data)
        self.assertIn(b'* BYE ', data)
        self.assertGreaterEqual(elapsed, LOGIN_TIMEOUT - 0.5)
        self.assertLess(elapsed, LOGIN_TIMEOUT + 3)

    # -- brute force -----------------------------------------------------------

    def test_brute_force_lockout(self):
        for i in range(MAX_FAILURES):
            tagged, _ = self.imaps_login('127.0.0.3', 'wrong-%d' % i,
                                         'w%d' % i)
            self.assertTrue(tagged.startswith('w%d NO' % i), tagged)
        # The right password from there: refused, temporarily, at once.
        tagged, secs = self.imaps_login('127.0.0.3', self.password, 'r1')
        self.assertTrue(tagged.startswith('r1 NO [UNAVAILABLE]'), tagged)
        # The same account from another address: fine.
        tagged, secs = self.imaps_login('127.0.0.4', self.password, 'r2')
        self.assertTrue(tagged.startswith('r2 OK'), tagged)
        self.assertLess(secs, 1.0)
        # One account for every protocol: SMTP AUTH from 127.0.0.3 too.
        s, buf = self.tls_from('127.0.0.3', 'submissions', '220')
        s.sendall(b'EHLO attacker.example\r\n')
        for _ in range(50):
            line, buf = read_line(s, buf)
            if line.startswith('250 '):
                break
        s.sendall(('AUTH PLAIN %s\r\n' % harness.auth_plain(
            self.user, self.password)).encode())
        line, buf = read_line(s, buf)
        self.assertTrue(line.startswith('454'), line)
        # And POP3.
        p, buf = self.tls_from('127.0.0.3', 'pop3s', '+OK')
        p.sendall(('USER %s\r\n' % self.user).encode())
        line, buf = read_line(p, buf)
        self.assertTrue(line.startswith('+OK'), line)
        p.sendall(('PASS %s\r\n' % self.password).encode())
        line, buf = read_line(p, buf)
        self.assertTrue(line.startswith('-ERR [SYS/TEMP]'), line)
        log = self.inst.log_text(200000)
        self.assertIn('too_many_failures', log)


if __name__ == '__main__':
    unittest.main()
