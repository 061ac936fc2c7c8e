"""A private Postfix (Debian's package) acting as the MX of remote.test for
integration tests: its own config, queue, data and mail directories in a
temp dir, `postfix -c DIR start-fg` as a child in its own session,
listening only on port 25 of a loopback address of its own (free_mx_addr():
a random 127.0.X.Y, so that concurrent test runs do not collide; the zones
of dnsserver.test_zones() point there). Needs root, as the tests that use
it.

    with PostfixMx() as mx:
        ...  # Marmot delivers to alice@remote.test through the test DNS
        msg = mx.wait_message('alice')          # bytes as Postfix stored it
        mx.set_rcpt_action('defer@remote.test', 'OK')   # and postfix reload

Mail is delivered by virtual(8) into Maildirs DIR/mail/<user>/ for the
users in `users` (default alice, bob, defer, bounce) and for any other
address of the domains into DIR/mail/catchall/. Recipient restrictions
come from a texthash access map, by default:
    bounce@remote.test   550 5.1.1 no such user
    defer@remote.test    450 4.2.0 try later
so a 5xx and a 4xx reply are one RCPT away. Postfix adds Return-Path,
Delivered-To and Received at the top; body_of() and headers_of() split a
stored message for comparisons.

The system Postfix is never started or touched: this instance has its own
config directory, and start() refuses to run when something already
listens on its address and port. stop() (also on every failure path) runs
`postfix stop`, then kills the process group, and removes the temp dir.
Standard library only.
"""

import grp
import os
import pwd
import random
import signal
import socket
import subprocess
import tempfile
import time

from dnsserver import TempServer
import harness

POSTFIX = '/usr/sbin/postfix'
MX_PORT = 25

DEFAULT_USERS = ('alice', 'bob', 'defer', 'bounce')
DEFAULT_ACTIONS = {
    'bounce@remote.test': '550 5.1.1 no such user',
    'defer@remote.test': '450 4.2.0 try later',
}

# Only the services a receiving MX needs, none chrooted (the instance
# lives in a temp dir) - master.cf(5).
MASTER_CF = """\
{addr}:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def port_open(addr, port, timeout=0.5):
    try:
        s = socket.create_connection((addr, port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


def wait_for(fetch, done, timeout, step=0.2):
    """Calls fetch() every step seconds until done(value) or timeout;
    returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(step)


def free_mx_addr(exclude=()):
    """A random loopback address 127.0.X.Y (X, Y in 2..254) on which port
    25 is free: where a Postfix of this run can listen."""
    for _ in range(100):
        addr = '127.0.%d.%d' % (random.randrange(2, 255),
                                random.randrange(2, 255))
        if addr not in exclude and harness.port_free(MX_PORT, addr):
            return addr
    raise RuntimeError('no free loopback address for port %d' % MX_PORT)


def split_message(data):
    """(header bytes, body bytes) at the first empty line."""
    for sep in (b'\r\n\r\n', b'\n\n'):
        i = data.find(sep)
        if i >= 0:
            return data[:i + len(sep) // 2], data[i + len(sep):]
    return data, b''


def body_of(data):
    return split_message(data)[1]


def headers_of(data):
    return split_message(data)[0]


class PostfixMx(TempServer):
    """One private Postfix instance."""

    def __init__(self, domains=('remote.test', 'fallback.test',
                                'aonly.test'),
                 users=DEFAULT_USERS, actions=None, addr=None,
                 port=MX_PORT, hostname='mx1.remote.test'):
        if os.geteuid() != 0:
            raise RuntimeError('PostfixMx needs root (port 25, mail_owner)')
        if not os.access(POSTFIX, os.X_OK):
            raise RuntimeError('%s not found: apt-get install postfix '
                               '(scripts/install-deps.sh)' % POSTFIX)
        self.domains = tuple(domains)
        self.users = tuple(users)
        self.actions = dict(DEFAULT_ACTIONS if actions is None else actions)
        self.addr = addr or free_mx_addr()
        self.port = port
        self.hostname = hostname
        self.dir = tempfile.mkdtemp(prefix='marmot-postfix-')
        os.chmod(self.dir, 0o755)
        self.conf_dir = os.path.join(self.dir, 'etc')
        self.queue_dir = os.path.join(self.dir, 'queue')
        self.data_dir = os.path.join(self.dir, 'data')
        self.mail_dir = os.path.join(self.dir, 'mail')
        self.log_path = os.path.join(self.dir, 'maillog')
        self.proc = None
        self.out_path = os.path.join(self.dir, 'postfix.out')

    # -- files -------------------------------------------------------------

    def _write_maps(self):
        lines = []
        first = self.domains[0]
        for user in self.users:
            lines.append('%s@%s %s/' % (user, first, user))
        for domain in self.domains:
            lines.append('@%s catchall/' % domain)
        self._write_file('vmailbox', '\n'.join(lines) + '\n')
        self._write_file('rcpt_access', ''.join(
            '%s %s\n' % (a, v) for a, v in sorted(self.actions.items())))

    def _write_file(self, name, text):
        path = os.path.join(self.conf_dir, name)
        with open(path + '.tmp', 'w') as f:
            f.write(text)
        os.rename(path + '.tmp', path)

    def _write_config(self):
        postfix = pwd.getpwnam('postfix')
        nobody = pwd.getpwnam('nobody')
        grp.getgrnam('postdrop')
        for d in (self.conf_dir, self.queue_dir, self.mail_dir):
            os.makedirs(d, exist_ok=True)
        os.makedirs(self.data_dir, exist_ok=True)
        os.chown(self.data_dir, postfix.pw_uid, postfix.pw_gid)
        # virtual(8) delivers as nobody into the Maildirs.
        os.chown(self.mail_dir, nobody.pw_uid, nobody.pw_gid)
        c = self.conf_dir
        main = {
            'compatibility_level': '3.6',
            'queue_directory': self.queue_dir,
            'data_directory': self.data_dir,
            'command_directory': '/usr/sbin',
            'daemon_directory': '/usr/lib/postfix/sbin',
            'shlib_directory': '/usr/lib/postfix',
            'meta_directory': '/etc/postfix',
            'mail_owner': 'postfix',
            'setgid_group': 'postdrop',
            'myhostname': self.hostname,
            'mydomain': self.domains[0],
            'myorigin': '$myhostname',
            'mydestination': '',
            # Postfix checks inet_interfaces against the interface
            # addresses (127.0.X.Y is on lo only as part of 127/8); the
            # listener's address comes from its master.cf service name.
            'inet_interfaces': 'loopback-only',
            'inet_protocols': 'ipv4',
            'mynetworks': '127.0.0.0/8',
            'alias_maps': '',
            'alias_database': '',
            'local_recipient_maps': '',
            'relay_domains': '',
            'virtual_mailbox_domains': ', '.join(self.domains),
            'virtual_mailbox_maps': 'texthash:%s/vmailbox' % c,
            'virtual_mailbox_base': self.mail_dir,
            'virtual_uid_maps': 'static:%d' % nobody.pw_uid,
            'virtual_gid_maps': 'static:%d' % nobody.pw_gid,
            'virtual_minimum_uid': '1',
            'virtual_mailbox_limit': '0',
            # Never relay: reject_unauth_destination only.
            'smtpd_relay_restrictions': 'reject_unauth_destination',
            'smtpd_recipient_restrictions':
                'check_recipient_access texthash:%s/rcpt_access, '
                'reject_unauth_destination' % c,
            'smtpd_banner': '$myhostname ESMTP test',
            'smtputf8_enable': 'yes',
            'message_size_limit': '52428800',
            'maillog_file': self.log_path,
            'maillog_file_prefixes': self.dir,
            'default_process_limit': '20',
            # Fail fast in tests rather than retry for days.
            'bounce_queue_lifetime': '0',
            'maximal_queue_lifetime': '1h',
            'biff': 'no',
            'append_dot_mydomain': 'no',
            'readme_directory': 'no',
            'html_directory': 'no',
            'smtpd_tls_security_level': 'none',
            'smtp_tls_security_level': 'none',
            'disable_dns_lookups': 'yes',
            'smtp_dns_support_level': 'disabled',
        }
        self._write_file('main.cf', ''.join(
            '%s = %s\n' % (k, v) for k, v in main.items()))
        self._write_file('master.cf', MASTER_CF.format(addr=self.addr,
                                                       port=self.port))
        self._write_maps()

    # -- process -----------------------------------------------------------

    def postfix(self, *args, timeout=60):
        """Runs `postfix -c CONF ARGS`. Postfix commands log only to
        syslog (none here) unless stderr is a terminal, so they run under
        script(1) to get their errors into the result."""
        cmd = ' '.join([POSTFIX, '-c', self.conf_dir] + list(args))
        return subprocess.run(['script', '-qec', cmd, '/dev/null'],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)

    def _prepare(self):
        # A previous instance may still be closing its listener.
        wait_for(lambda: port_open(self.addr, self.port), lambda o: not o,
                 timeout=5.0)
        if port_open(self.addr, self.port):
            raise RuntimeError(
                'something already listens on %s:%d (a system Postfix? '
                'stop it: this test runs its own)' % (self.addr, self.port))
        self._write_config()
        self._make_queue_dirs()
        return [POSTFIX, '-c', self.conf_dir, 'start-fg'], self.out_path

    def _make_queue_dirs(self):
        """The queue directories with the owners and modes of Debian's
        postfix-files, made here in milliseconds (`postfix
        set-permissions create-missing` takes seconds)."""
        postfix = pwd.getpwnam('postfix')
        postdrop = grp.getgrnam('postdrop').gr_gid
        for name, gid, mode in (
                ('active', 0, 0o700), ('bounce', 0, 0o700),
                ('corrupt', 0, 0o700), ('defer', 0, 0o700),
                ('deferred', 0, 0o700), ('flush', 0, 0o700),
                ('hold', 0, 0o700), ('incoming', 0, 0o700),
                ('private', 0, 0o700), ('saved', 0, 0o700),
                ('trace', 0, 0o700), ('maildrop', postdrop, 0o730),
                ('public', postdrop, 0o710)):
            path = os.path.join(self.queue_dir, name)
            os.makedirs(path, exist_ok=True)
            os.chown(path, postfix.pw_uid, gid if gid else postfix.pw_gid)
            os.chmod(path, mode)
        os.makedirs(os.path.join(self.queue_dir, 'pid'), mode=0o755,
                    exist_ok=True)
        # postfix-script start then skips check-fatal and check-warn
        # (seconds of scanning); a bad setting still stops master(8),
        # whose reason is in maillog (log_text()).
        with open(os.path.join(self.queue_dir, 'quick-start'), 'w'):
            pass

    def _wait_ready(self, timeout):
        """Waits for the 220 greeting of smtpd."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                # Errors before postlogd runs go to syslog only: `postfix
                # check` on a terminal says what is wrong.
                r = self.postfix('check')
                raise RuntimeError('postfix start-fg exited with %d\n%s%s%s'
                                   % (self.proc.returncode, r.stdout,
                                      r.stderr, self.log_text()))
            try:
                s = socket.create_connection((self.addr, self.port),
                                             timeout=1.0)
                try:
                    s.settimeout(2.0)
                    if s.recv(3) == b'220':
                        s.sendall(b'QUIT\r\n')
                        return
                finally:
                    s.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError('postfix on %s:%d did not greet within '
                                   '%.0f s\n%s' % (self.addr, self.port,
                                                   timeout, self.log_text()))
            time.sleep(0.1)

    def reload(self):
        """Rereads main.cf and the texthash maps (postfix reload: the
        daemons restart; smtpd processes in a session finish it first)."""
        r = self.postfix('reload')
        if r.returncode != 0:
            raise RuntimeError('postfix reload: %s%s' % (r.stdout, r.stderr))
        # New smtpd processes start with the new maps; give the master a
        # moment to retire the old ones before the next connection.
        time.sleep(0.5)
        self._wait_ready(10.0)

    def set_rcpt_action(self, address, action):
        """Sets the access map entry for address ('OK', '450 4.2.0 later',
        '550 5.1.1 gone', or None to remove it) and reloads."""
        if action is None:
            self.actions.pop(address, None)
        else:
            self.actions[address] = action
        self._write_maps()
        self.reload()

    def log_paths(self):
        return [self.out_path, self.log_path]

    def _master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, 'pid',
                                   'master.pid')) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _kill(self):
        p, self.proc = self.proc, None
        master = self._master_pid() if p is not None else None
        if p is not None and p.poll() is None:
            self.postfix('stop', timeout=30)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
        if p is not None:
            # master(8) -s runs in a session of its own, its daemons in
            # its process group: if `postfix stop` did not end them, kill
            # that group (and start-fg's).
            for pgid in (master, p.pid):
                if pgid is None:
                    continue
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            # Until the listener is gone, the next instance cannot start.
            wait_for(lambda: port_open(self.addr, self.port),
                     lambda o: not o, timeout=5.0, step=0.05)

    # -- mail --------------------------------------------------------------

    def maildir_files(self, user):
        out = []
        for sub in ('new', 'cur'):
            d = os.path.join(self.mail_dir, user, sub)
            try:
                names = sorted(os.listdir(d))
            except FileNotFoundError:
                continue
            out += [os.path.join(d, n) for n in names]
        return out

    def messages(self, user):
        """Every message delivered to user's Maildir, oldest first (by
        name, which starts with the delivery time)."""
        out = []
        for path in self.maildir_files(user):
            with open(path, 'rb') as f:
                out.append(f.read())
        return out

    def wait_messages(self, user, count=1, timeout=30.0):
        """Waits (bounded) until user has at least count messages; returns
        them all."""
        msgs = wait_for(lambda: self.messages(user),
                        lambda m: len(m) >= count, timeout)
        if len(msgs) < count:
            raise AssertionError(
                '%d message(s) for %s after %.0f s, expected %d\n%s'
                % (len(msgs), user, timeout, count, self.log_text()))
        return msgs

    def wait_message(self, user, timeout=30.0):
        return self.wait_messages(user, 1, timeout)[0]

    def log_lines(self, needle):
        return [l for l in self.log_text().splitlines() if needle in l]
