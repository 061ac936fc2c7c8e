"""Processes: master/vault/front, privilege drop, the vault's lack of
network sockets, restart of a killed front, SIGTERM drain, SIGHUP reload,
config errors, and `marmot status`."""

import os
import pwd
import re
import signal
import ssl
import time
import unittest

import harness
from harness import HOSTNAME, DOMAIN, Instance, LineClient, PORT_OFFSETS


def project_version():
    """The version in meson.build of the source tree we live in."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                        '..', 'meson.build')
    try:
        with open(path) as f:
            m = re.search(r"version:\s*'([^']+)'", f.read())
        return m.group(1) if m else None
    except OSError:
        return None


class RunningCase(unittest.TestCase):
    """A fresh running instance per test (these tests kill things)."""

    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.cleanup)
        self.user = 'alice@' + DOMAIN
        self.password = self.inst.add_user(self.user)
        self.inst.start()
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)



class ProcessTest(RunningCase):
    def test_roles_running(self):
        vault = self.inst.role_pid('vault')
        front = self.inst.role_pid('front')
        master = self.inst.master_pid
        harness.note('master %d, vault %d, front %d' % (master, vault, front))
        self.assertEqual(harness.proc_ppid(vault), master,
                         'vault %d: expected parent %d (master), got %s'
                         % (vault, master, harness.proc_ppid(vault)))
        self.assertEqual(harness.proc_ppid(front), master,
                         'front %d: expected parent %d (master), got %s'
                         % (front, master, harness.proc_ppid(front)))
        for pid, role in ((vault, 'vault'), (front, 'front')):
            argv = harness.proc_cmdline(pid)
            self.assertIn('--data', argv, '%s argv: %r' % (role, argv))

    def test_roles_drop_to_marmot_user(self):
        if not harness.is_root():
            self.skipTest('not root: no privilege drop to test')
        try:
            uid = pwd.getpwnam('marmot').pw_uid
        except KeyError:
            self.skipTest('no marmot user (run scripts/install-deps.sh)')
        for role in ('vault', 'front'):
            pid = self.inst.role_pid(role)
            uids = harness.proc_uids(pid)
            self.assertEqual(uids, (uid,) * 4,
                             '%s (pid %d): expected real/effective/saved/fs '
                             'uid %d (marmot), got %r'
                             % (role, pid, uid, uids))

    def test_vault_has_no_network_socket(self):
        if not harness.is_root():
            self.skipTest('not root: /proc/PID/fd of the vault is not '
                          'readable')
        vault = self.inst.role_pid('vault')
        # Let it finish starting (it may open its sockets lazily).
        self.inst.wait_port('imaps')
        sockets = harness.socket_inodes(vault)
        inet = set()
        for table in ('tcp', 'tcp6', 'udp', 'udp6', 'udplite', 'udplite6',
                      'raw', 'raw6'):
            inet |= harness.proc_net_inodes(vault, table) & sockets
        self.assertFalse(inet, 'vault (pid %d) holds AF_INET/AF_INET6 '
                         'sockets: inodes %r' % (vault, sorted(inet)))
        known = harness.proc_net_inodes(vault, 'unix') | \
            harness.proc_net_inodes(vault, 'netlink')
        unknown = sockets - known
        self.assertFalse(unknown, 'vault (pid %d) holds sockets that are '
                         'neither AF_UNIX nor netlink (an unbound inet '
                         'socket?): inodes %r' % (vault, sorted(unknown)))
        harness.note('vault pid %d: %d sockets, all AF_UNIX/netlink'
                     % (vault, len(sockets)))

    def test_status_running(self):
        r = self.inst.marmot(['status'])
        self.assertEqual(r.returncode, 0, 'marmot status while running: '
                         'exit %d\n%s%s' % (r.returncode, r.stdout, r.stderr))
        out = r.stdout
        for role in ('master', 'vault', 'front'):
            self.assertIn(role, out, 'status: expected role %s in:\n%s'
                          % (role, out))
        pids = {'master': self.inst.master_pid,
                'vault': self.inst.role_pid('vault'),
                'front': self.inst.role_pid('front')}
        for role, pid in pids.items():
            self.assertRegex(out, r'\b%d\b' % pid, 'status: expected the %s '
                             'pid %d in:\n%s' % (role, pid, out))
        for name, port in self.inst.ports.items():
            self.assertRegex(out, r'\b%d\b' % port, 'status: expected '
                             'listener %s port %d in:\n%s' % (name, port, out))
        version = project_version()
        if version:
            self.assertIn(version, out, 'status: expected version %s in:\n%s'
                          % (version, out))
        harness.note('status output:\n' + out)

    def test_kill_front_restarts_within_2s(self):
        front = self.inst.role_pid('front')
        vault = self.inst.role_pid('vault')
        t0 = time.monotonic()
        os.kill(front, signal.SIGKILL)
        answered = {}
        deadline = t0 + 10.0
        pending = list(PORT_OFFSETS)
        while pending and time.monotonic() < deadline:
            name = pending[0]
            if self.inst.port_answers(name, timeout=0.5):
                answered[name] = time.monotonic() - t0
                pending.pop(0)
            else:
                time.sleep(0.02)
        worst = max(answered.values()) if answered else None
        harness.note('after kill -9 of front %d: %s' % (front, ', '.join(
            '%s %.3f s' % kv for kv in sorted(answered.items(),
                                               key=lambda kv: kv[1]))))
        self.assertFalse(pending, 'listeners %r did not answer within 10 s '
                         'of kill -9 of the front' % pending)
        self.assertLessEqual(worst, 2.0, 'expected every listener to answer '
                             'within 2 s of kill -9 of the front, the last '
                             'took %.3f s' % worst)
        new_front = self.inst.role_pid('front')
        self.assertNotEqual(new_front, front, 'front pid unchanged')
        self.assertTrue(self.inst.running(), 'master exited')
        harness.note('new front %d; vault %d -> %s' % (
            new_front, vault, self.inst.role_pids('vault')))

    def test_sigterm_all_exit_within_10s(self):
        pids = [self.inst.master_pid, self.inst.role_pid('vault'),
                self.inst.role_pid('front')]
        t0 = time.monotonic()
        os.kill(self.inst.master_pid, signal.SIGTERM)
        alive = pids
        while time.monotonic() - t0 < 10.0:
            self.inst.proc.poll()  # reap the master
            alive = [p for p in pids if harness.pid_alive(p)]
            if not alive:
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        harness.note('SIGTERM: all exited after %.3f s; master exit code %r'
                     % (elapsed, self.inst.proc.poll()))
        self.assertFalse(alive, 'still alive 10 s after SIGTERM to the '
                         'master: %r (of master/vault/front %r)'
                         % (alive, pids))
        strays = self.inst.our_pids()
        self.assertFalse(strays, 'processes naming the data dir still '
                         'alive: %r' % strays)
        r = self.inst.marmot(['status'])
        self.assertEqual(r.returncode, 3, 'status after SIGTERM: expected '
                         'exit 3, got %d: %s%s' % (r.returncode, r.stdout,
                                                   r.stderr))

    def test_sighup_reloads_certificate_keeps_connections(self):
        ctx = harness.insecure_context()
        old_fp = harness.cert_fingerprint_pem(self.inst.cert_path)
        old = LineClient(self.inst.ports['imaps'], tls_context=ctx)
        self.addCleanup(old.close)
        greeting = old.read_line()
        self.assertTrue(greeting.startswith('* OK'), greeting)
        seen = harness.cert_fingerprint_der(
            old.sock.getpeercert(binary_form=True))
        self.assertEqual(seen, old_fp, 'the server presents a certificate '
                         'other than tls/cert.pem')

        # A new pair made with the openssl CLI, owned like the old one.
        st_cert = os.stat(self.inst.cert_path)
        st_key = os.stat(self.inst.key_path)
        tmp_cert = os.path.join(self.inst.dir, 'new-cert.pem')
        tmp_key = os.path.join(self.inst.dir, 'new-key.pem')
        harness.make_self_signed(tmp_cert, tmp_key, HOSTNAME)
        new_fp = harness.cert_fingerprint_pem(tmp_cert)
        with open(tmp_cert, 'rb') as f:
            cert_bytes = f.read()
        with open(tmp_key, 'rb') as f:
            key_bytes = f.read()
        with open(self.inst.cert_path, 'wb') as f:
            f.write(cert_bytes)
        with open(self.inst.key_path, 'wb') as f:
            f.write(key_bytes)
        os.chmod(self.inst.key_path, 0o600)
        os.chown(self.inst.cert_path, st_cert.st_uid, st_cert.st_gid)
        os.chown(self.inst.key_path, st_key.st_uid, st_key.st_gid)

        master = self.inst.master_pid
        os.kill(master, signal.SIGHUP)
        t0 = time.monotonic()
        fp = None
        while time.monotonic() - t0 < 10.0:
            try:
                with LineClient(self.inst.ports['imaps'], tls_context=ctx,
                                timeout=2.0) as c:
                    fp = harness.cert_fingerprint_der(
                        c.sock.getpeercert(binary_form=True))
            except (OSError, ssl.SSLError):
                fp = None
            if fp == new_fp:
                break
            time.sleep(0.1)
        harness.note('new certificate served after %.3f s'
                     % (time.monotonic() - t0))
        self.assertEqual(fp, new_fp, 'after SIGHUP: expected new '
                         'connections to present the new certificate %s, '
                         'got %s (old was %s)' % (new_fp, fp, old_fp))
        # The established connection survived.
        old.cmd('n1 NOOP')
        _, tagged = old.imap_tagged('n1')
        self.assertTrue(tagged.startswith('n1 OK'), 'NOOP on the connection '
                        'opened before SIGHUP: expected "n1 OK", got %r'
                        % tagged)
        self.assertTrue(self.inst.running(), 'master exited on SIGHUP')
        self.assertEqual(self.inst.master_pid, master)


class ConfigErrorTest(unittest.TestCase):
    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.cleanup)
        self.conf = os.path.join(self.inst.data, 'marmot.conf')
        with open(self.conf) as f:
            self.lines = f.read().split('\n')

    def replace_setting(self, name, new_line):
        """Replaces the active `name = ...` line (or appends); returns the
        1-based line number."""
        pat = re.compile(r'^\s*%s\s*=' % re.escape(name))
        for i, line in enumerate(self.lines):
            if pat.match(line):
                self.lines[i] = new_line
                number = i + 1
                break
        else:
            if self.lines and self.lines[-1] == '':
                self.lines.insert(len(self.lines) - 1, new_line)
                number = len(self.lines) - 1
            else:
                self.lines.append(new_line)
                number = len(self.lines)
        with open(self.conf, 'w') as f:
            f.write('\n'.join(self.lines))
        return number

    def check_refused(self, number):
        code, elapsed, out = self.inst.run_foreground(timeout=10.0)
        harness.note('marmot run exit %r after %.3f s: %s'
                     % (code, elapsed, out.strip()[:500]))
        self.assertIsNotNone(code, 'marmot run with a broken marmot.conf '
                             'was still running after 10 s; output:\n' + out)
        self.assertNotEqual(code, 0, 'marmot run with a broken marmot.conf: '
                            'expected non-zero exit, got 0; output:\n' + out)
        self.assertLess(elapsed, 5.0, 'expected a quick exit, took %.1f s'
                        % elapsed)
        self.assertIn('marmot.conf:%d:' % number, out,
                      'expected the message to name marmot.conf:%d:, got:\n%s'
                      % (number, out))

    def test_misspelt_setting(self):
        number = self.replace_setting('hostname', 'hostnmae = ' + HOSTNAME)
        self.check_refused(number)

    def test_bad_port_base(self):
        number = self.replace_setting('port_base', 'port_base = abc')
        self.check_refused(number)


if __name__ == '__main__':
    unittest.main()


class FirstLoginTest(unittest.TestCase):
    """The master starts the front only once the vault says HELLO (after
    vault.sock listens), so a client that connects the moment the ports
    are bound waits in the backlog and its first login succeeds, instead
    of a 454 from a front whose vault is not there yet."""

    def test_login_at_once_after_start(self):
        import smtplib
        inst = Instance()
        self.addCleanup(inst.cleanup)
        password = inst.add_user('first@' + DOMAIN)
        inst.start(wait_port=None)
        port = inst.ports['submissions']
        deadline = time.monotonic() + 20
        ctx = harness.insecure_context()
        while True:
            try:
                s = smtplib.SMTP_SSL(harness.LOOPBACK, port, timeout=20,
                                     context=ctx)
                break
            except OSError:
                # The master has not bound the port yet.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        try:
            s.ehlo(HOSTNAME)
            code, msg = s.login('first@' + DOMAIN, password)
            self.assertEqual(code, 235, msg)
        finally:
            s.close()
        log = inst.log_text(limit=10 ** 6)
        vault_up = re.search(r'vault\[\d+\] \S+ vault\.started', log)
        front = re.search(r'master\.role\.started role=front', log)
        self.assertIsNotNone(vault_up, log)
        self.assertIsNotNone(front, log)
        self.assertLess(vault_up.start(), front.start(),
                        'the front was started before the vault listened')
