"""A private Dovecot (Debian's dovecot-imapd) for differential tests and
benchmarks: everything lives under one temp dir (its own dovecot.conf,
base_dir, state_dir, log file, passwd-file passdb/userdb with one test
user, Maildir mail), it listens on 127.0.0.1 on a free port with ssl=no
(tls=True adds IMAPS on a second port with a self-signed certificate), and
it runs unprivileged: `dovecot -F -c CONF` in its own session, stopped with
SIGTERM then SIGKILL of the group. As a normal user every process and the
mail run as that user. As root (CI), imap-login refuses to run as root and
mail may not belong to UID 0, so the login processes run as dovenull, the
internal ones and the mail as dovecot (both made by dovecot-core's
postinst); the master stays root. Standard library only.

    with Dovecot() as dc:
        dc.append_all([raw1, raw2])
        c = dc.login()   # imaplib.IMAP4, INBOX selectable
"""

import imaplib
import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import harness

DOVECOT = '/usr/sbin/dovecot'
LOOPBACK = '127.0.0.1'
USER = 'tester'
PASSWORD = 'dovecot-test-password'


def available():
    """True if Debian's dovecot-core and dovecot-imapd are installed."""
    return (os.access(DOVECOT, os.X_OK) and
            os.path.exists('/usr/lib/dovecot/imap') and
            os.path.exists('/usr/lib/dovecot/imap-login'))


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]
    finally:
        s.close()


CONF = """\
# Written by tests/integration/dovecot.py: a private, unprivileged Dovecot.
protocols = imap
listen = {listen}
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = dovecot-test-{port}
mail_privileged_group =
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
debug_log_path = {dir}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {group}
default_login_user = {login_user}
first_valid_uid = {uid}
last_valid_uid = 0
first_valid_gid = {gid}
mail_location = maildir:{dir}/mail/%u/Maildir
mail_uid = {uid}
mail_gid = {gid}
# Caches nothing between sessions that could hide a parser difference.
mail_cache_min_mail_count = 0
mail_max_userip_connections = {max_conn}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {dir}/passwd
}}
service imap-login {{
  chroot =
  user = {login_user}
  inet_listener imap {{
    address = {listen}
    port = {port}
  }}
  inet_listener imaps {{
    address = {listen}
    port = {tls_port}
  }}
  process_limit = {max_conn}
  client_limit = 1
  service_count = 1
  process_min_avail = 0
}}
service imap {{
  process_limit = {max_conn}
  client_limit = 1
}}
service pop3-login {{
  chroot =
}}
service submission-login {{
  chroot =
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0600
  }}
}}
service anvil {{
  chroot =
}}
service doveadm {{
  inet_listener {{
    port = 0
  }}
}}
default_process_limit = {max_conn}
default_client_limit = {client_limit}
default_vsz_limit = 1G
protocol imap {{
  mail_max_userip_connections = {max_conn}
  imap_idle_notify_interval = 30 mins
}}
"""


def append_raw(c, mailbox, raw):
    """APPEND of raw exactly as given on the logged-in imaplib.IMAP4 c:
    imaplib's own append() rewrites every bare LF or CR to CRLF, which
    would hide how a server handles such messages."""
    c.literal = bytes(raw)
    typ, data = c._simple_command('APPEND', mailbox)
    if typ != 'OK':
        raise RuntimeError('APPEND to %s: %r' % (mailbox, data))
    return data


class Dovecot:
    """One private Dovecot: start() writes the config and starts it,
    stop() ends it, cleanup() also removes the temp dir."""

    def __init__(self, max_connections=100, tls=False):
        if not available():
            raise RuntimeError('Dovecot (dovecot-imapd) is not installed')
        self.dir = tempfile.mkdtemp(prefix='dovecot-it-')
        os.chmod(self.dir, 0o755)
        self.port = None
        self.tls = tls
        self.tls_port = None
        self.proc = None
        self.max_connections = max_connections
        self.conf_path = os.path.join(self.dir, 'dovecot.conf')
        self.log_path = os.path.join(self.dir, 'dovecot.log')

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def write_config(self):
        uid, gid = os.getuid(), os.getgid()
        user = pwd.getpwuid(uid).pw_name
        group = grp.getgrgid(gid).gr_name
        login_user = internal_user = user
        if uid == 0:
            # imap-login refuses to run as root ("This process must not be
            # be run as root"): use the users dovecot-core's postinst made.
            # Mail access as UID 0 is refused too ("invalid UID '0'"):
            # the mail belongs to the dovecot user.
            login_user, internal_user = 'dovenull', 'dovecot'
            pw = pwd.getpwnam(internal_user)
            uid, gid = pw.pw_uid, pw.pw_gid
            group = grp.getgrgid(gid).gr_name
        home = os.path.join(self.dir, 'mail', USER)
        os.makedirs(home, exist_ok=True)
        if os.getuid() == 0:
            for path in (os.path.join(self.dir, 'mail'), home):
                os.chown(path, uid, gid)
        for sub in ('run', 'state'):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        # passwd-file: user:password:uid:gid::home::
        with open(os.path.join(self.dir, 'passwd'), 'w') as f:
            f.write('%s:{PLAIN}%s:%d:%d::%s::\n' % (USER, PASSWORD, uid, gid,
                                                     home))
        self.port = free_port()
        ssl_conf = 'ssl = no'
        self.tls_port = 0
        if self.tls:
            # IMAPS on a port of its own with a fresh self-signed
            # certificate (the key readable by the master only).
            cert = os.path.join(self.dir, 'cert.pem')
            key = os.path.join(self.dir, 'key.pem')
            harness.make_self_signed(cert, key)
            os.chmod(key, 0o600)
            ssl_conf = 'ssl = yes\nssl_cert = <%s\nssl_key = <%s' % (cert, key)
            self.tls_port = free_port()
        with open(self.conf_path, 'w') as f:
            f.write(CONF.format(
                listen=LOOPBACK, dir=self.dir, port=self.port,
                tls_port=self.tls_port, ssl=ssl_conf,
                login_user=login_user, internal_user=internal_user,
                group=group, uid=uid, gid=gid,
                max_conn=self.max_connections,
                client_limit=max(1000, self.max_connections * 2 + 100)))

    def start(self, timeout=20.0):
        if self.proc is not None:
            raise RuntimeError('already started')
        self.write_config()
        self.proc = subprocess.Popen(
            [DOVECOT, '-F', '-c', self.conf_path],
            stdin=subprocess.DEVNULL,
            stdout=open(os.path.join(self.dir, 'dovecot.out'), 'ab'),
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('dovecot exited with %d at start:\n%s'
                                   % (self.proc.returncode, self.log_text()))
            try:
                s = socket.create_connection((LOOPBACK, self.port),
                                             timeout=1.0)
            except OSError:
                time.sleep(0.05)
                continue
            try:
                s.settimeout(2.0)
                if s.recv(4).startswith(b'* OK'):
                    return
            except OSError:
                pass
            finally:
                s.close()
            time.sleep(0.05)
        self.stop()
        raise RuntimeError('dovecot did not answer on %s:%d within %.0fs:\n%s'
                           % (LOOPBACK, self.port, timeout, self.log_text()))

    def log_text(self):
        out = []
        for name in ('dovecot.out', 'dovecot.log'):
            try:
                with open(os.path.join(self.dir, name), errors='replace') as f:
                    out.append(f.read()[-20000:])
            except OSError:
                pass
        return '\n'.join(out)

    @property
    def master_pid(self):
        return self.proc.pid if self.proc else None

    def pids(self):
        """Every process of this Dovecot (its own session: the master and
        the imap and imap-login processes it forks per connection)."""
        if self.proc is None:
            return []
        return harness.session_pids(self.proc.pid)

    def _signal_group(self, sig, timeout):
        """Sends sig to the process group, waits up to timeout for the
        master."""
        try:
            os.killpg(self.proc.pid, sig)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, timeout=10.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM, timeout)
        # Children outlive a killed master: end the whole group.
        self._signal_group(signal.SIGKILL, timeout)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- clients -------------------------------------------------------

    def login(self, timeout=60.0, select='INBOX'):
        c = imaplib.IMAP4(LOOPBACK, self.port, timeout=timeout)
        c.login(USER, PASSWORD)
        if select:
            typ, data = c.select(select)
            if typ != 'OK':
                raise RuntimeError('dovecot SELECT %s: %r' % (select, data))
        return c

    def append_all(self, messages, mailbox='INBOX'):
        """APPENDs every raw message (bytes) in order; UIDs follow the list
        order from 1 on a fresh mailbox. Returns the number appended."""
        c = imaplib.IMAP4(LOOPBACK, self.port, timeout=120)
        try:
            c.login(USER, PASSWORD)
            for raw in messages:
                append_raw(c, mailbox, raw)
        finally:
            try:
                c.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
        return len(messages)
