"""Test harness: a real Marmot instance on loopback, driven by real clients.

Instance makes a temp dir, runs `marmot init` into DIR/data with a free
port base, starts `marmot run` in its own session (process group) and tears
everything down again, even when a test fails: stop() sends SIGTERM to the
master, waits, then SIGKILLs the group and every process whose command line
names our data dir. Every wait is bounded in time. All traffic goes to
127.0.0.1. Standard library only (tests run with Debian's /usr/bin/python3).
"""

import base64
import hashlib
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import time
import unittest

# Set by run.py from --marmot.
MARMOT = os.environ.get('MARMOT_BINARY', '')

HOSTNAME = 'mail.test.example'
DOMAIN = 'test.example'
LOOPBACK = '127.0.0.1'

# Port offsets from --port-base (the standard port numbers).
PORT_OFFSETS = {
    'smtp': 25, 'submission': 587, 'submissions': 465,
    'imap': 143, 'imaps': 993, 'pop3': 110, 'pop3s': 995,
    'http': 80, 'https': 443,
}
IMPLICIT_TLS = ('submissions', 'imaps', 'pop3s', 'https')
HEAD_REQUEST = (b'HEAD / HTTP/1.1\r\nHost: ' + HOSTNAME.encode() +
                b'\r\nConnection: close\r\n\r\n')

# Every live Instance, so run.py can tear them down on any exit path.
_live = set()

# Notes a test wants printed as TAP comments (timings and the like).
_notes = []


def note(message):
    """Records a line printed as a TAP comment after the current test."""
    _notes.append(str(message))


def take_notes():
    out = list(_notes)
    del _notes[:]
    return out



def dump_log_on_failure(test, inst):
    """Cleanup helper: prints inst's server log as TAP comments if test
    failed (register with test.addCleanup(dump_log_on_failure, self,
    inst))."""
    outcome = getattr(test, '_outcome', None)
    result = getattr(outcome, 'result', None)
    errors = list(getattr(result, 'errors', [])) + list(
        getattr(result, 'failures', []))
    if any(t is test for t, _ in errors):
        note(inst.log_text())


def is_root():
    return os.geteuid() == 0


def random_password(n=20):
    alphabet = string.ascii_letters + string.digits
    return ''.join(secrets.choice(alphabet) for _ in range(n))


def maildir_folders(root):
    """(folder name, directory) of each folder of the Maildir++ tree
    that `marmot export --maildir` wrote: the root is INBOX, `.A.B` is
    "A.B" as written (callers decode what they need)."""
    for entry in [''] + sorted(os.listdir(root)):
        if entry and not entry.startswith('.'):
            continue
        folder_dir = os.path.join(root, entry)
        if not os.path.isdir(os.path.join(folder_dir, 'cur')):
            continue
        yield ('INBOX' if not entry else entry[1:]), folder_dir


def port_free(port, addr=LOOPBACK):
    """True if a TCP socket can bind addr:port now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def find_port_base(tries=40):
    """A base in 20000..60000 (steps of 1000) whose nine ports are free."""
    for _ in range(tries):
        base = random.randrange(20, 60) * 1000
        if all(port_free(base + off) for off in PORT_OFFSETS.values()):
            return base
    raise RuntimeError('no free port base found in %d tries' % tries)


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return False
    # The state follows the ")" that closes the command name.
    state = stat.rsplit(')', 1)[-1].split()[0]
    return state not in ('Z', 'X')


def proc_cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode('utf-8', 'replace') for a in raw.split(b'\0') if a]


def all_pids():
    out = []
    for name in os.listdir('/proc'):
        if name.isdigit():
            out.append(int(name))
    return out


def proc_uids(pid):
    """(real, effective, saved, fs) uids of pid."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('Uid:'):
                return tuple(int(x) for x in line.split()[1:5])
    raise RuntimeError('no Uid line for pid %d' % pid)


def proc_ppid(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return None
    # After the command name: state, ppid, pgrp, session, ...
    return int(stat.rsplit(')', 1)[-1].split()[1])


def session_pids(sid):
    """Every process of session sid (a server started with
    start_new_session=True: its master's pid)."""
    out = []
    for pid in all_pids():
        try:
            if os.getsid(pid) == sid:
                out.append(pid)
        except OSError:
            pass
    return out


def socket_inodes(pid):
    """Inodes of the sockets pid holds (from /proc/PID/fd; needs root or
    the same user)."""
    inodes = set()
    fd_dir = '/proc/%d/fd' % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(int(target[len('socket:['):-1]))
    return inodes


def proc_net_inodes(pid, table):
    """Socket inodes listed in /proc/PID/net/TABLE (the namespace of pid),
    or an empty set if the table does not exist."""
    path = '/proc/%d/net/%s' % (pid, table)
    try:
        with open(path) as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return set()
    inodes = set()
    for line in lines:
        fields = line.split()
        if table in ('unix',):
            # Num RefCount Protocol Flags Type St Inode [Path]
            if len(fields) >= 7 and fields[6].isdigit():
                inodes.add(int(fields[6]))
        elif table == 'netlink':
            # sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
            if len(fields) >= 10 and fields[9].isdigit():
                inodes.add(int(fields[9]))
        else:
            # tcp/udp/raw: sl local rem st tx:rx tr:tm retr uid timeout inode
            if len(fields) >= 10 and fields[9].isdigit():
                inodes.add(int(fields[9]))
    return inodes


def cert_fingerprint_der(der):
    return hashlib.sha256(der).hexdigest()


def cert_fingerprint_pem(path):
    with open(path) as f:
        return cert_fingerprint_der(ssl.PEM_cert_to_DER_cert(f.read()))


def decode_cert(path):
    """The parsed certificate (subject, issuer, subjectAltName, ...) as
    ssl.getpeercert() would give it."""
    return ssl._ssl._test_decode_cert(path)


def make_self_signed(cert_path, key_path, hostname=HOSTNAME, days=30):
    """A new self-signed certificate and key made with the openssl CLI."""
    r = subprocess.run(
        ['openssl', 'req', '-x509', '-newkey', 'ec',
         '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
         '-keyout', key_path, '-out', cert_path, '-days', str(days),
         '-subj', '/CN=' + hostname,
         '-addext', 'subjectAltName=DNS:' + hostname],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError('openssl req failed: %s' % r.stderr)


class Instance:
    """One Marmot data dir (and, once started, one running server)."""

    def __init__(self, marmot=None, hostname=HOSTNAME, domain=DOMAIN,
                 init=True, user='marmot'):
        self.binary = os.path.abspath(marmot or MARMOT)
        if not self.binary or not os.access(self.binary, os.X_OK):
            raise RuntimeError('marmot binary not found: %r' % self.binary)
        self.hostname = hostname
        self.domain = domain
        self.run_user = user if is_root() else None
        self.dir = tempfile.mkdtemp(prefix='marmot-it-')
        # The roles drop to the marmot user: it must traverse this dir.
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, 'data')
        self.log_path = os.path.join(self.dir, 'marmot-run.log')
        self.port_base = None
        self.ports = {}
        self.proc = None
        self.log_file = None
        self.init_result = None
        self.users = {}
        _live.add(self)
        if init:
            self.init()

    # -- CLI ---------------------------------------------------------------

    def marmot(self, args, input=None, data=True, env=None, timeout=120):
        """Runs `marmot ARGS [--data D]` and returns the CompletedProcess
        (text, stdout and stderr captured). Never raises on exit codes."""
        argv = [self.binary] + list(args)
        if data:
            argv += ['--data', self.data]
        full_env = dict(os.environ)
        full_env.pop('MARMOT_DATA', None)
        if env:
            full_env.update(env)
        return subprocess.run(
            argv, input=input if input is not None else '',
            capture_output=True, text=True, timeout=timeout, env=full_env)

    def init(self):
        self.port_base = find_port_base()
        args = ['init', '--data', self.data, '--hostname', self.hostname,
                '--domain', self.domain, '--listen', LOOPBACK,
                '--port-base', str(self.port_base)]
        if self.run_user:
            args += ['--user', self.run_user]
        r = self.marmot(args, data=False)
        self.init_result = r
        if r.returncode != 0:
            raise AssertionError(
                'marmot init failed (exit %d)\nargs: %s\nstdout:\n%s\n'
                'stderr:\n%s' % (r.returncode, ' '.join(args), r.stdout,
                                 r.stderr))
        self.ports = {name: self.port_base + off
                      for name, off in PORT_OFFSETS.items()}
        return r

    def check_ok(self, result, what):
        if result.returncode != 0:
            raise AssertionError(
                '%s: expected exit 0, got %d\nstdout:\n%s\nstderr:\n%s'
                % (what, result.returncode, result.stdout, result.stderr))
        return result

    def add_user(self, address, password=None, quota=None):
        """Adds an account with a password given on stdin; returns the
        password."""
        if password is None:
            password = random_password()
        args = ['user', 'add', address, '--password-stdin']
        if quota is not None:
            args += ['--quota', str(quota)]
        self.check_ok(self.marmot(args, input=password + '\n'),
                      'marmot user add %s' % address)
        self.users[address] = password
        return password

    # -- server ------------------------------------------------------------

    def start(self, wait_port='imaps', timeout=20.0):
        """Starts `marmot run --data D` in its own session, stderr/stdout to
        the log file, and waits until wait_port answers and the vault's
        socket exists (the front listens before the vault is up; logins
        and recipients meanwhile get temporary failures, rightly)."""
        if self.proc is not None:
            raise RuntimeError('already started')
        self.log_file = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            [self.binary, 'run', '--data', self.data],
            stdin=subprocess.DEVNULL, stdout=self.log_file,
            stderr=subprocess.STDOUT, start_new_session=True)
        if wait_port:
            self.wait_port(wait_port, timeout)
            sock = os.path.join(self.data, 'run', 'vault.sock')
            deadline = time.monotonic() + timeout
            while not os.path.exists(sock) and time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        return self.proc

    def run_foreground(self, timeout=10.0):
        """Runs `marmot run` expecting it to exit by itself (bad config);
        returns (exit code or None if it was still running at the timeout,
        elapsed seconds, output)."""
        t0 = time.monotonic()
        p = subprocess.Popen(
            [self.binary, 'run', '--data', self.data],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = p.communicate(timeout=timeout)
            text = out.decode('utf-8', 'replace')
            found = scan_sanitizer(text)
            if found:
                sanitizer_findings.append(('marmot run (foreground)', found))
            return p.returncode, time.monotonic() - t0, text
        except subprocess.TimeoutExpired:
            self._kill_group(p.pid)
            out, _ = p.communicate(timeout=10)
            return None, time.monotonic() - t0, out.decode('utf-8', 'replace')
        finally:
            self.kill_strays()

    @property
    def master_pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def port_answers(self, name, timeout=1.0):
        """True if the listener answers: a greeting on plaintext ports, a
        completed TLS handshake on implicit-TLS ones (HTTP: the connect)."""
        port = self.ports[name]
        try:
            s = socket.create_connection((LOOPBACK, port), timeout=timeout)
        except OSError:
            return False
        try:
            s.settimeout(timeout)
            if name in IMPLICIT_TLS:
                ctx = insecure_context()
                with ctx.wrap_socket(s, server_hostname=self.hostname) as t:
                    if name == 'https':
                        t.sendall(HEAD_REQUEST)
                    return len(t.recv(1)) == 1
            if name == 'http':
                # The master holds the listening sockets: only a reply
                # proves that a front is serving.
                s.sendall(HEAD_REQUEST)
            return len(s.recv(1)) == 1
        except (OSError, ssl.SSLError):
            return False
        finally:
            s.close()

    def wait_port(self, name, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    'marmot run exited with %d before %s (port %d) answered'
                    '\n%s' % (self.proc.returncode, name, self.ports[name],
                              self.log_text()))
            if self.port_answers(name, timeout=1.0):
                return
            time.sleep(0.05)
        raise AssertionError('%s (port %d) did not answer within %.0f s\n%s'
                             % (name, self.ports[name], timeout,
                                self.log_text()))

    def wait_all_ports(self, timeout=20.0):
        for name in PORT_OFFSETS:
            self.wait_port(name, timeout)

    def our_pids(self):
        """Every process whose command line names our data dir."""
        out = []
        me = os.getpid()
        for pid in all_pids():
            if pid == me:
                continue
            argv = proc_cmdline(pid)
            if any(a == self.data or a.startswith(self.data + '/') or
                   a == self.data + '/' for a in argv):
                if pid_alive(pid):
                    out.append(pid)
        return out

    def role_pids(self, role):
        """Pids of live `marmot role ROLE ... --data D` processes."""
        out = []
        for pid in self.our_pids():
            argv = proc_cmdline(pid)
            for i in range(len(argv) - 1):
                if argv[i] == 'role' and argv[i + 1] == role:
                    out.append(pid)
                    break
        return out

    def role_pid(self, role, timeout=10.0):
        """The single pid of role, waiting (bounded) until there is one."""
        deadline = time.monotonic() + timeout
        pids = []
        while time.monotonic() < deadline:
            pids = self.role_pids(role)
            if len(pids) == 1:
                return pids[0]
            time.sleep(0.05)
        raise AssertionError('expected one "role %s" process for %s, found %r'
                             '\n%s' % (role, self.data, pids, self.log_text()))

    def _kill_group(self, pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass

    def kill_strays(self):
        for pid in self.our_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def stop(self, timeout=10.0):
        """SIGTERM to the master, wait, then SIGKILL the whole group and
        anything left that names our data dir. Returns the master's exit
        code (None if it had to be killed)."""
        if self.proc is None:
            self.kill_strays()
            return None
        code = None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                code = None
        else:
            code = self.proc.returncode
        self._kill_group(self.proc.pid)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            strays = self.our_pids()
            if not strays:
                break
            self.kill_strays()
            time.sleep(0.05)
        self.proc = None
        if self.log_file:
            self.log_file.close()
            self.log_file = None
        return code

    def cleanup(self):
        try:
            self.stop()
        finally:
            _live.discard(self)
            try:
                with open(self.log_path, 'rb') as f:
                    found = scan_sanitizer(f.read().decode('utf-8',
                                                           'replace'))
                if found:
                    sanitizer_findings.append((self.log_path, found))
            except OSError:
                pass
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self, limit=8000):
        try:
            with open(self.log_path, 'rb') as f:
                data = f.read()
        except OSError:
            return '(no server log)'
        text = data.decode('utf-8', 'replace')
        if len(text) > limit:
            text = '...\n' + text[-limit:]
        return '--- server log (%s) ---\n%s\n--- end of server log ---' % (
            self.log_path, text)

    # -- TLS ---------------------------------------------------------------

    @property
    def cert_path(self):
        return os.path.join(self.data, 'tls', 'cert.pem')

    @property
    def key_path(self):
        return os.path.join(self.data, 'tls', 'key.pem')

    def ssl_context(self, check_hostname=False):
        """Trusts exactly the instance's self-signed tls/cert.pem. Host
        names are not checked by default because clients connect to
        127.0.0.1; pass check_hostname=True and server_hostname=HOSTNAME
        to check the name too."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=self.cert_path)
        ctx.check_hostname = check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    # -- snapshots for "writes nothing" ----------------------------------

    def snapshot_files(self, root=None):
        """{relative path: (size, mtime_ns)} for files, {path: 'dir'} for
        directories (directory mtimes change with SQLite's temporary files
        and are not compared; nor are -shm files and empty -wal files)."""
        root = root or self.data
        out = {}
        if not os.path.exists(root):
            return None
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            out[rel] = 'dir'
            for name in filenames:
                p = os.path.join(dirpath, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                # SQLite's shared-memory index and an empty WAL come and go
                # with connections; they hold no data. A non-empty WAL does.
                if name.endswith('-shm') or (name.endswith('-wal') and
                                             st.st_size == 0):
                    continue
                out[os.path.normpath(os.path.join(rel, name))] = (
                    st.st_size, st.st_mtime_ns)
        return out

    def snapshot(self):
        """Listings first (they may open the database), then the files."""
        users = self.marmot(['user', 'list'])
        aliases = self.marmot(['alias', 'list'])
        domains = self.marmot(['domain', 'list'])
        return {'user list': (users.returncode, users.stdout),
                'alias list': (aliases.returncode, aliases.stdout),
                'domain list': (domains.returncode, domains.stdout),
                'files': self.snapshot_files()}

    def snapshot_after(self):
        """The same as snapshot(), taking files before listings."""
        files = self.snapshot_files()
        users = self.marmot(['user', 'list'])
        aliases = self.marmot(['alias', 'list'])
        domains = self.marmot(['domain', 'list'])
        return {'user list': (users.returncode, users.stdout),
                'alias list': (aliases.returncode, aliases.stdout),
                'domain list': (domains.returncode, domains.stdout),
                'files': files}


def diff_snapshots(before, after):
    """A readable description of what changed, or '' if nothing did."""
    lines = []
    for key in ('user list', 'alias list', 'domain list'):
        if before.get(key) != after.get(key):
            lines.append('%s changed:\n  before: %r\n  after:  %r'
                         % (key, before.get(key), after.get(key)))
    fb, fa = before.get('files') or {}, after.get('files') or {}
    for path in sorted(set(fb) | set(fa)):
        if fb.get(path) != fa.get(path):
            lines.append('file %s: before %r, after %r'
                         % (path, fb.get(path), fa.get(path)))
    return '\n'.join(lines)


def insecure_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# -- line-oriented raw clients -------------------------------------------

class LineClient:
    """A raw TCP (optionally TLS) connection read line by line, with every
    read bounded by a socket timeout and a size cap."""

    MAX_LINE = 64 * 1024

    def __init__(self, port, tls_context=None, server_hostname=HOSTNAME,
                 timeout=10.0):
        self.sock = socket.create_connection((LOOPBACK, port),
                                             timeout=timeout)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = b''
        if tls_context is not None:
            self.sock = tls_context.wrap_socket(
                self.sock, server_hostname=server_hostname)

    def starttls(self, tls_context, server_hostname=HOSTNAME):
        if self.buf:
            raise AssertionError('bytes received before the TLS handshake '
                                 '(response injection?): %r' % self.buf)
        self.sock = tls_context.wrap_socket(self.sock,
                                            server_hostname=server_hostname)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line + '\r\n')

    def read_line(self):
        """One line without CRLF (str). Raises EOFError on close."""
        while b'\n' not in self.buf:
            if len(self.buf) > self.MAX_LINE:
                raise AssertionError('line longer than %d bytes: %r...'
                                     % (self.MAX_LINE, self.buf[:200]))
            chunk = self.sock.recv(8192)
            if not chunk:
                raise EOFError('connection closed; partial line %r'
                               % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return line.rstrip(b'\r').decode('utf-8', 'replace')

    def smtp_reply(self, max_lines=100):
        """(code, [lines]) of one SMTP reply (multi-line aware)."""
        lines = []
        for _ in range(max_lines):
            line = self.read_line()
            lines.append(line)
            if len(line) < 4 or line[3] != '-':
                break
        else:
            raise AssertionError('SMTP reply of more than %d lines: %r'
                                 % (max_lines, lines))
        try:
            code = int(lines[-1][:3])
        except ValueError:
            raise AssertionError('malformed SMTP reply: %r' % lines)
        return code, lines

    def imap_tagged(self, tag, max_lines=1000):
        """(untagged lines, tagged line) up to the reply for tag."""
        untagged = []
        for _ in range(max_lines):
            line = self.read_line()
            if line.startswith(tag + ' '):
                return untagged, line
            untagged.append(line)
        raise AssertionError('no tagged reply for %s in %d lines: %r'
                             % (tag, max_lines, untagged[-5:]))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def auth_plain(user, password):
    return base64.b64encode(
        b'\0' + user.encode() + b'\0' + password.encode()).decode()


def imap_logout(m):
    """LOGOUT that tolerates a connection already dropped."""
    import imaplib
    try:
        m.logout()
    except (imaplib.IMAP4.error, OSError):
        pass


def imap_connect(test, inst, ctx, timeout=20, host=LOOPBACK, cleanup=None):
    """An imaplib IMAP4_SSL client, not logged in yet, on inst's imaps
    port, logged out when test ends (or by cleanup(m) instead, if given)."""
    import imaplib
    m = imaplib.IMAP4_SSL(host, inst.ports['imaps'], ssl_context=ctx,
                          timeout=timeout)
    test.addCleanup(cleanup or imap_logout, m)
    return m


def imap_login(test, inst, ctx, user, password, **kwargs):
    """imap_connect() (same keyword arguments), then LOGIN as user."""
    m = imap_connect(test, inst, ctx, **kwargs)
    typ, data = m.login(user, password)
    test.assertEqual(typ, 'OK', data)
    return m


class ImapAccountCase(unittest.TestCase):
    """One Instance per test class with one account, USER (alice), whose
    password is cls.password; started with every port up. Subclasses
    add to it in setUpClass after super().setUpClass(). connect(): an
    imap_login() session as that account."""
    USER = 'alice@' + DOMAIN

    @classmethod
    def setUpClass(cls):
        cls.inst = Instance()
        cls.user = cls.USER
        try:
            cls.password = cls.inst.add_user(cls.user)
            cls.inst.start()
            cls.inst.wait_all_ports()
        except BaseException:
            cls.inst.cleanup()
            raise
        cls.ctx = cls.inst.ssl_context()

    @classmethod
    def tearDownClass(cls):
        cls.inst.cleanup()

    def setUp(self):
        dump_log_on_failure(self, self.inst)

    def connect(self):
        return imap_login(self, self.inst, self.ctx, self.user,
                          self.password)


def imap_quote(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def ehlo_keywords(lines):
    """EHLO reply lines -> set of upper-case extension lines without the
    '250-'/'250 ' prefix (the first line, the greeting, is skipped)."""
    return [line[4:].strip().upper() for line in lines[1:]]


class SharedInstance:
    """One running instance with one user, shared by the wire tests of a
    run (started on first use, torn down by run.py at the end)."""
    instance = None
    user = None
    password = None
    error = None

    @classmethod
    def get(cls):
        if cls.error is not None:
            raise AssertionError('the shared instance could not start:\n'
                                 + cls.error)
        if cls.instance is None:
            inst = None
            try:
                inst = Instance()
                cls.user = 'alice@' + DOMAIN
                cls.password = inst.add_user(cls.user)
                inst.start()
                inst.wait_all_ports()
                cls.instance = inst
            except BaseException as e:
                cls.error = '%s: %s' % (type(e).__name__, e)
                if inst is not None:
                    cls.error += '\n' + inst.log_text()
                    inst.cleanup()
                raise
        return cls.instance

    @classmethod
    def teardown(cls):
        if cls.instance is not None:
            cls.instance.cleanup()
            cls.instance = None


# Sanitizer findings in server logs, collected as instances are cleaned up:
# [(log path, excerpt)]. run.py reports them as a test of their own.
sanitizer_findings = []
SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer',
                     'runtime error:', 'WARNING: AddressSanitizer',
                     'ERROR: UndefinedBehaviorSanitizer')


def scan_sanitizer(text):
    """The lines around the first sanitizer report in text, or None."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if any(m in line for m in SANITIZER_MARKERS):
            return '\n'.join(lines[max(0, i - 2):i + 40])
    return None


def cleanup_all():
    SharedInstance.teardown()
    for inst in list(_live):
        try:
            inst.cleanup()
        except Exception as e:  # keep tearing the others down
            print('# cleanup of %s failed: %s' % (inst.dir, e),
                  file=sys.stderr)
