#!/usr/bin/python3
"""bench-smtp.py - the SMTP benchmark of issue 4 (bench/README.md; not a
test, CI does not run it). run.sh builds the release tree and calls this.

In one run, with the same two message files (4 KiB and 100 KiB by
default), it loads
  - Marmot: a fresh instance (`marmot init` with a free port base, one
    account, `marmot run`), its port 25 (port base + 25); spool appends are
    always fsynced;
  - the peer: a private Postfix instance (its own config_directory and
    queue_directory under the temp dir, smtpd on a free loopback port,
    chroot off) that delivers the virtual domain through
    lmtp:inet:127.0.0.1:PORT to a private Dovecot instance (its own
    base_dir, Maildir under the temp dir, mail_fsync = always, static
    passdb/userdb), both started by this script and stopped at the end;
  - optionally (--targets peer,marmot,sink) Postfix's smtp-sink, to show
    what the clients themselves can do;
at each concurrency (1, 8, 32), with two clients: bench-smtp-load (ours:
per-transaction latency) and Postfix's smtp-source -d (for comparability).

Definitions (also printed in the report):
  Marmot throughput: acknowledged messages / time from the first connect
    to the last 250 after DATA (the 250 means sealed and fsynced into the
    recipient's spool). Marmot merge: time from the first connect until
    `marmot store count` shows every message in the store.
  Peer throughput: messages / time from the first connect until the last
    one is in Dovecot's Maildir (the newest ctime among the run's files:
    the rename into new/), because Postfix answers 250 once the message
    is in its own queue; its 250 rate is reported too.
  Latency: per transaction, MAIL FROM written -> reply to "." read (ours
    only; smtp-source has none). p50/p99 by nearest rank.
  CPU: user + system time of every process in the server's session(s)
    from the start of a run until delivered/merged, per message.

Every wait is bounded in time, every loop in count, and all traffic goes
to 127.0.0.1. Standard library only (Debian's /usr/bin/python3)."""

import argparse
import base64
import json
import os
import random
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

LOOPBACK = '127.0.0.1'
DOMAIN = 'bench.example'
RCPT = 'bench@' + DOMAIN
SENDER = 'load@sender.example'
EHLO = 'load.sender.example'
HOSTNAME = 'mx.' + DOMAIN
# marmot's listeners are port_base + these (tests/integration/harness.py).
MARMOT_PORT_OFFSETS = (25, 587, 465, 143, 993, 110, 995, 80, 443)


def log(msg):
    print('bench-smtp: ' + msg, file=sys.stderr, flush=True)


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOOPBACK, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    for _ in range(100):
        port = random.randrange(20000, 60000)
        if port_free(port):
            return port
    raise RuntimeError('no free port in 100 tries')


def marmot_port_base():
    for _ in range(40):
        base = random.randrange(20, 60) * 1000
        if all(port_free(base + off) for off in MARMOT_PORT_OFFSETS):
            return base
    raise RuntimeError('no free marmot port base in 40 tries')


def wait_greeting(port, timeout):
    """Waits until the port answers with a 220 greeting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=2) as s:
                s.settimeout(2)
                if s.recv(512).startswith(b'220'):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError('port %d did not greet within %d s' % (port, timeout))


def wait_port(port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((LOOPBACK, port), timeout=2).close()
            return True
        except OSError:
            time.sleep(0.1)
    raise RuntimeError('port %d not listening within %d s' % (port, timeout))


def kill_group(proc, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except OSError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait(5)


CLK_TCK = os.sysconf('SC_CLK_TCK')


def session_cpu(sids):
    """CPU seconds (user + system, with reaped children) of every process
    whose session id is in sids - a server's processes, since each server
    is started in its own session - by name: a Marmot role ("front",
    "vault", ...) or the command name."""
    by = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as f:
                stat = f.read()
            with open('/proc/%s/cmdline' % name, 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        comm, rest = stat.split('(', 1)[1].rsplit(')', 1)
        fields = rest.split()
        # fields[0] is the state; [3] the session; [11:15] utime, stime,
        # cutime, cstime (proc(5)).
        if int(fields[3]) not in sids:
            continue
        label = comm
        if len(argv) > 2 and argv[1] == b'role':
            label = argv[2].decode('ascii', 'replace')
        by[label] = by.get(label, 0) + sum(int(x) for x in fields[11:15])
    return {k: v / CLK_TCK for k, v in by.items()}


def make_message(path, size, seed, attachment):
    """A message of about size bytes (headers included): plain text in
    lines of 76 printable characters (no line starts with a dot), or, with
    attachment, a short text part and a base64 attachment of random bytes
    filling the rest (multipart/mixed), as large mail mostly is."""
    rnd = random.Random(seed)
    words = ['marmot', 'burrow', 'alpine', 'meadow', 'whistle', 'granite',
             'lichen', 'summit', 'valley', 'glacier', 'spruce', 'thistle']

    def text(nbytes):
        out, total = [], 0
        while total < nbytes:
            line = ''
            while len(line) < 70:
                line += rnd.choice(words) + ' '
            line = line[:76] + '\n'
            out.append(line)
            total += len(line)
        return ''.join(out)

    head = ('From: Load <%s>\nTo: <%s>\nSubject: bench %d bytes\n'
            'Date: Tue, 01 Dec 2026 12:00:00 +0000\n'
            'Message-ID: <bench-%d@sender.example>\nMIME-Version: 1.0\n'
            % (SENDER, RCPT, size, size))
    if not attachment:
        body = 'Content-Type: text/plain; charset=us-ascii\n\n'
        body += text(size - len(head) - len(body))
    else:
        boundary = 'bench-boundary-%d' % size
        body = ('Content-Type: multipart/mixed; boundary="%s"\n\n'
                '--%s\nContent-Type: text/plain; charset=us-ascii\n\n%s\n'
                '--%s\nContent-Type: application/octet-stream\n'
                'Content-Disposition: attachment; filename="data.bin"\n'
                'Content-Transfer-Encoding: base64\n\n'
                % (boundary, boundary, text(1500), boundary))
        tail = '--%s--\n' % boundary
        room = size - len(head) - len(body) - len(tail)
        # base64 makes 57 bytes a line of 76 characters + LF.
        nraw = max(room, 0) * 57 // 77
        raw = bytes(rnd.getrandbits(8) for _ in range(nraw))
        b64 = base64.encodebytes(raw).decode('ascii')
        body += b64 + tail
    with open(path, 'w') as f:
        f.write(head + body)


# -- the peer: Postfix -> LMTP -> Dovecot --------------------------------

DOVECOT_CONF = """\
# bench/smtp: a private Dovecot that only speaks LMTP on loopback.
base_dir = {d}/run
state_dir = {d}/state
instance_name = bench-smtp-dovecot
log_path = {d}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain
disable_plaintext_auth = no
hostname = lmtp.{domain}
postmaster_address = postmaster@{domain}
first_valid_uid = 8
mail_location = maildir:{d}/mail/%n/Maildir
# Every mail file, index and uidlist write is fsynced.
mail_fsync = always
lmtp_save_to_detail_mailbox = no
passdb {{
  driver = static
  args = password=bench-not-used
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={d}/mail/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""

POSTFIX_MAIN = """\
# bench/smtp: a private Postfix instance; nothing shared with /etc/postfix
# but the read-only meta files (postfix-files).
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
meta_directory = /etc/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
myhostname = peer.{domain}
mydomain = {domain}
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = {domain}
virtual_mailbox_maps = inline:{{ {rcpt}=bench/ }}
virtual_transport = lmtp:inet:127.0.0.1:{lmtp_port}
biff = no
"""

# /etc/postfix/master.cf's services with chroot off (no copies of /etc in
# the queue directory) and smtpd on our own port.
POSTFIX_MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 300  1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
proxywrite unix  - - n -    1 proxymap
smtp       unix  - - n -    - smtp
relay      unix  - - n -    - smtp
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
local      unix  - n n -    - local
virtual    unix  - n n -    - virtual
lmtp       unix  - - n -    - lmtp
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
"""


class Peer:
    """Postfix (smtpd on self.port) delivering over LMTP to Dovecot."""

    def __init__(self, root):
        self.root = root
        self.dv = os.path.join(root, 'dovecot')
        self.pf = os.path.join(root, 'postfix')
        self.cfg = os.path.join(self.pf, 'etc')
        self.maildir = os.path.join(self.dv, 'mail', 'bench', 'Maildir')
        self.port = None
        self.lmtp_port = None
        self.dovecot = None
        self.postfix_started = False

    def start(self):
        self.lmtp_port = free_port()
        os.makedirs(self.dv)
        conf = os.path.join(self.dv, 'dovecot.conf')
        with open(conf, 'w') as f:
            f.write(DOVECOT_CONF.format(d=self.dv, domain=DOMAIN,
                                        port=self.lmtp_port))
        os.makedirs(os.path.join(self.dv, 'mail'))
        shutil.chown(os.path.join(self.dv, 'mail'), 'mail', 'mail')
        self.dovecot = subprocess.Popen(
            ['dovecot', '-F', '-c', conf], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_port(self.lmtp_port, 20)

        self.port = free_port()
        while self.port == self.lmtp_port:
            self.port = free_port()
        os.makedirs(self.cfg)
        os.makedirs(os.path.join(self.pf, 'data'))
        shutil.chown(os.path.join(self.pf, 'data'), 'postfix', 'postfix')
        os.makedirs(os.path.join(self.pf, 'queue'))
        with open(os.path.join(self.cfg, 'main.cf'), 'w') as f:
            f.write(POSTFIX_MAIN.format(d=self.pf, domain=DOMAIN, rcpt=RCPT,
                                        lmtp_port=self.lmtp_port))
        with open(os.path.join(self.cfg, 'master.cf'), 'w') as f:
            f.write(POSTFIX_MASTER.format(port=self.port))
        for step in (['check'], ['start']):
            r = subprocess.run(['postfix', '-c', self.cfg] + step,
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError('postfix %s failed: %s%s' % (
                    step[0], r.stdout, r.stderr))
            if step[0] == 'start':
                self.postfix_started = True
        wait_greeting(self.port, 30)

    def sessions(self):
        sids = {self.dovecot.pid}
        try:
            pidfile = os.path.join(self.pf, 'queue', 'pid', 'master.pid')
            sids.add(int(open(pidfile).read().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
        return sids

    def delivered(self):
        """Files in the Maildir (new/ and cur/)."""
        n = 0
        for sub in ('new', 'cur'):
            try:
                n += len(os.listdir(os.path.join(self.maildir, sub)))
            except FileNotFoundError:
                pass
        return n

    def last_delivery_ns(self):
        newest = 0
        for sub in ('new', 'cur'):
            try:
                with os.scandir(os.path.join(self.maildir, sub)) as it:
                    for e in it:
                        newest = max(newest, e.stat().st_ctime_ns)
            except FileNotFoundError:
                pass
        return newest

    def wait_delivered(self, count, timeout):
        """Waits (bounded) until count messages are in the Maildir; returns
        the ctime of the newest file in ns, or None on a timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.delivered() >= count:
                return self.last_delivery_ns()
            time.sleep(0.05)
        log('peer: only %d of %d delivered after %d s' % (
            self.delivered(), count, timeout))
        return None

    def reset(self):
        """Empties the Maildir between runs (Dovecot recreates it), so that
        every run starts from an empty mailbox as Marmot's spool does."""
        shutil.rmtree(self.maildir, ignore_errors=True)

    def stop(self):
        if self.postfix_started:
            subprocess.run(['postfix', '-c', self.cfg, 'stop'],
                           capture_output=True, timeout=60)
            self.postfix_started = False
        pidfile = os.path.join(self.pf, 'queue', 'pid', 'master.pid')
        try:
            pid = int(open(pidfile).read().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
        kill_group(self.dovecot)


# -- Marmot ----------------------------------------------------------------

class Marmot:
    def __init__(self, binary, root, log_level=None):
        self.binary = binary
        self.log_level = log_level
        self.data = os.path.join(root, 'marmot-data')
        self.log_path = os.path.join(root, 'marmot-run.log')
        self.proc = None
        self.port = None

    def cli(self, args, stdin=''):
        r = subprocess.run([self.binary] + args, input=stdin,
                           capture_output=True, text=True, timeout=120)
        return r

    def start(self):
        base = marmot_port_base()
        args = ['init', '--data', self.data, '--hostname', HOSTNAME,
                '--domain', DOMAIN, '--listen', LOOPBACK,
                '--port-base', str(base)]
        if os.geteuid() == 0:
            args += ['--user', 'marmot']
        r = self.cli(args)
        if r.returncode != 0:
            raise RuntimeError('marmot init: %s%s' % (r.stdout, r.stderr))
        r = self.cli(['user', 'add', RCPT, '--password-stdin', '--data',
                      self.data], 'bench-password-%d\n' % os.getpid())
        if r.returncode != 0:
            raise RuntimeError('marmot user add: %s%s' % (r.stdout, r.stderr))
        if self.log_level:
            conf = os.path.join(self.data, 'marmot.conf')
            with open(conf) as f:
                lines = [l for l in f.read().splitlines()
                         if not l.startswith('log_level')]
            lines.append('log_level = %s' % self.log_level)
            with open(conf, 'w') as f:
                f.write('\n'.join(lines) + '\n')
        self.port = base + 25
        self.log_file = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            [self.binary, 'run', '--data', self.data],
            stdin=subprocess.DEVNULL, stdout=self.log_file,
            stderr=subprocess.STDOUT, start_new_session=True)
        wait_greeting(self.port, 30)
        self.warm_up(30)

    def warm_up(self, timeout):
        """The front greets before the vault answers RCPT: sends one
        small message until it is accepted (bounded), so that the first
        measured transaction does not meet a 451."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                with smtplib.SMTP(LOOPBACK, self.port, timeout=10) as c:
                    c.ehlo(EHLO)
                    c.sendmail(SENDER, [RCPT],
                               b'Subject: warm-up\r\n\r\nwarm-up\r\n')
                    self.warm_ups = 1
                    return
            except (OSError, smtplib.SMTPException) as e:
                last = e
            time.sleep(0.2)
        raise RuntimeError('marmot did not accept a message within %d s: %s'
                           % (timeout, last))

    def sessions(self):
        return {self.proc.pid}

    def stored(self):
        """Messages in the store (all mailboxes), or -1 if unreadable."""
        r = self.cli(['store', 'count', RCPT, '--data', self.data])
        if r.returncode != 0:
            return -1
        for line in r.stdout.splitlines():
            parts = line.split('\t')
            if len(parts) == 2 and parts[0] == 'total':
                return int(parts[1])
        return -1

    def wait_stored(self, count, timeout, poll):
        """Waits (bounded) until the store holds count messages, asking
        every poll seconds; returns the wall-clock ns when seen, or None."""
        deadline = time.monotonic() + timeout
        n = -1
        while time.monotonic() < deadline:
            n = self.stored()
            if n >= count:
                return time.time_ns()
            time.sleep(poll)
        log('marmot: store holds %d of %d after %d s' % (n, count, timeout))
        return None

    def stop(self):
        kill_group(self.proc, 20)


# -- one measurement -------------------------------------------------------

def run_load(load, port, msgfile, conc, count, per_conn, time_limit):
    argv = [load, '-H', LOOPBACK, '-p', str(port), '-f', msgfile,
            '-t', RCPT, '-s', SENDER, '-e', EHLO, '-c', str(conc),
            '-m', str(count), '-n', str(per_conn), '-T', str(time_limit)]
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=time_limit + 90)
    out = {}
    for field in r.stdout.split():
        k, _, v = field.partition('=')
        out[k] = float(v) if '.' in v else int(v)
    if 'ok' not in out:
        raise RuntimeError('bench-smtp-load: %s%s' % (r.stdout, r.stderr))
    out['rc'] = r.returncode
    return out


def run_smtp_source(port, msgfile, conc, count, time_limit):
    argv = ['smtp-source', '-d', '-s', str(conc), '-m', str(count),
            '-F', msgfile, '-f', SENDER, '-t', RCPT, '-M', EHLO,
            '%s:%d' % (LOOPBACK, port)]
    start_ns = time.time_ns()
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, text=True,
                           timeout=time_limit + 90)
        rc, err = r.returncode, r.stderr.strip()
    except subprocess.TimeoutExpired:
        rc, err = -1, 'timeout'
    elapsed = time.monotonic() - t0
    return {'ok': count if rc == 0 else 0, 'rc': rc, 'error': err[-300:],
            'elapsed_s': elapsed, 'start_ns': start_ns,
            'msgs_per_s': count / elapsed if rc == 0 and elapsed > 0 else 0}


def measure(args, target, server, tool, msgfile, size, conc, count,
            expected_before):
    """Runs one load and completes it with delivery/merge times."""
    sids = server.sessions() if hasattr(server, 'sessions') else set()
    cpu0 = session_cpu(sids) if sids else {}
    if tool == 'load':
        res = run_load(args.load, server.port, msgfile, conc, count,
                       args.per_connection, args.time_limit)
    else:
        res = run_smtp_source(server.port, msgfile, conc, count,
                              args.time_limit)
    res.update(target=target, tool=tool, size=size, conc=conc, count=count)
    wait = args.time_limit + 60
    if target == 'peer':
        res['acked_per_s'] = res['msgs_per_s']
        done = server.wait_delivered(res['ok'], wait) if res['ok'] else None
        if done:
            secs = (done - res['start_ns']) / 1e9
            res['delivered_s'] = secs
            res['msgs_per_s'] = res['ok'] / secs if secs > 0 else 0
        else:
            res['msgs_per_s'] = 0
        server.reset()
    elif target == 'marmot' and args.merge and res['ok']:
        done = server.wait_stored(expected_before + res['ok'], wait,
                                  args.merge_poll)
        if done:
            res['merged_s'] = (done - res['start_ns']) / 1e9
    if sids and res['ok']:
        # Until delivered (peer) or merged (Marmot, unless --no-merge).
        cpu1 = session_cpu(sids)
        res['cpu_by'] = {k: (v - cpu0.get(k, 0)) * 1000 / res['ok']
                         for k, v in cpu1.items()}
        res['cpu_ms'] = sum(res['cpu_by'].values())
    return res


# -- report ----------------------------------------------------------------

def fmt(v, spec='%.0f'):
    return '-' if v is None else spec % v


def report(results, args, host):
    lines = []
    lines.append('# bench/smtp report')
    lines.append('')
    lines.append('%s; %d CPUs; load average %.2f before, %.2f after; '
                 'bench-smtp-load sends %d messages per connection; data '
                 'under %s; %s.' % (
                     host, os.cpu_count() or 0, args.load_before,
                     os.getloadavg()[0], args.per_connection, args.dir,
                     'one run per row' if args.repeat == 1 else
                     'each row the median-throughput run of %d'
                     % args.repeat))
    lines.append('')
    lines.append('- **marmot msg/s**: acknowledged messages / (first connect '
                 '-> last 250 after DATA); a 250 means sealed and fsynced '
                 'into the spool. **merged s**: first connect -> '
                 '`marmot store count` shows them all in the store (asked '
                 'every %.2f s).' % args.merge_poll)
    lines.append('- **peer msg/s** (Postfix -> LMTP -> Dovecot, '
                 'mail_fsync=always): messages / (first connect -> the last '
                 'file appears in the Maildir); **250/s** is the rate of '
                 "Postfix's own 250 (queued, not yet delivered).")
    lines.append('- **p50/p99 ms**: per transaction, MAIL FROM -> reply to '
                 '"." (bench-smtp-load only; smtp-source measures none).')
    lines.append('')
    lines.append('- **CPU ms/msg**: user + system CPU of all the server\'s '
                 'processes from the start of the run until delivered '
                 '(peer) or merged (Marmot), per message.')
    lines.append('')
    lines.append('| size | conc | server | client | ok/sent | msg/s | 250/s '
                 '| p50 ms | p99 ms | max ms | merged s | CPU ms/msg |')
    lines.append('|---|---|---|---|---|---|---|---|---|---|---|---|')
    for r in results:
        lat = r['tool'] == 'load'
        lines.append('| %s | %d | %s | %s | %d/%d | %s | %s | %s | %s | %s '
                     '| %s | %s |' % (
                         human(r['size']), r['conc'], r['target'],
                         'bench-smtp-load' if lat else 'smtp-source',
                         r['ok'], r['count'], fmt(r['msgs_per_s']),
                         fmt(r.get('acked_per_s')),
                         fmt(r.get('p50_ms') if lat else None, '%.1f'),
                         fmt(r.get('p99_ms') if lat else None, '%.1f'),
                         fmt(r.get('max_ms') if lat else None, '%.1f'),
                         fmt(r.get('merged_s'), '%.2f'),
                         cpu_cell(r)))
    lines.append('')
    lines.append('Marmot / peer throughput (goal at concurrency 32: >= 3x, '
                 'Marmot p99 < 100 ms):')
    lines.append('')
    lines.append('| size | conc | client | marmot msg/s | peer msg/s | ratio '
                 '| marmot p99 ms |')
    lines.append('|---|---|---|---|---|---|---|')
    by = {(r['size'], r['conc'], r['tool'], r['target']): r for r in results}
    for size in args.sizes:
        for conc in args.conc:
            for tool in ('load', 'smtp-source'):
                m = by.get((size, conc, tool, 'marmot'))
                p = by.get((size, conc, tool, 'peer'))
                if not m or not p:
                    continue
                ratio = (m['msgs_per_s'] / p['msgs_per_s']
                         if p['msgs_per_s'] else None)
                lines.append('| %s | %d | %s | %s | %s | %s | %s |' % (
                    human(size), conc,
                    'bench-smtp-load' if tool == 'load' else 'smtp-source',
                    fmt(m['msgs_per_s']), fmt(p['msgs_per_s']),
                    fmt(ratio, '%.2fx'),
                    fmt(m.get('p99_ms') if tool == 'load' else None,
                        '%.1f')))
    failures = [r for r in results if r.get('rc')]
    if failures:
        lines.append('')
        lines.append('Runs with errors:')
        for r in failures:
            lines.append('- %s %s %s c=%d: exit %s, %d of %d ok %s' % (
                r['target'], r['tool'], human(r['size']), r['conc'],
                r['rc'], r['ok'], r['count'], r.get('error', '')))
    return '\n'.join(lines) + '\n'


def cpu_cell(r):
    """Total CPU ms per message; for Marmot also front + vault."""
    if r.get('cpu_ms') is None:
        return '-'
    by = r.get('cpu_by', {})
    if r['target'] == 'marmot' and 'front' in by and 'vault' in by:
        return '%.1f (front %.1f, vault %.1f)' % (r['cpu_ms'], by['front'],
                                                  by['vault'])
    return '%.1f' % r['cpu_ms']


def human(size):
    if size % 1024 == 0:
        return '%d KiB' % (size // 1024)
    return '%d B' % size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--marmot', required=True)
    ap.add_argument('--load', required=True)
    ap.add_argument('-d', '--dir', default=None,
                    help='parent of the temp dir (the disk under test)')
    ap.add_argument('--targets', default='peer,marmot',
                    help='comma list of peer, marmot, sink')
    ap.add_argument('--sizes', default='4096,102400')
    ap.add_argument('--conc', default='1,8,32')
    ap.add_argument('--messages', type=int, default=1000,
                    help='per run for messages under 64 KiB')
    ap.add_argument('--messages-large', type=int, default=400,
                    help='per run for messages of 64 KiB or more')
    ap.add_argument('--large', choices=('attachment', 'text'),
                    default='attachment',
                    help='messages of 64 KiB or more: a short text and a '
                    'base64 attachment (default), or all text')
    ap.add_argument('--per-connection', type=int, default=100)
    ap.add_argument('--time-limit', type=int, default=120,
                    help='seconds per run before no new transaction starts')
    ap.add_argument('--repeat', type=int, default=1,
                    help='run every configuration R times (interleaved) '
                    'and report the run of median throughput')
    ap.add_argument('--clients', default='load,smtp-source')
    ap.add_argument('--no-merge', dest='merge', action='store_false',
                    help='do not wait for the merge into the store')
    ap.add_argument('--merge-poll', type=float, default=0.25,
                    help='seconds between two `marmot store count`')
    ap.add_argument('--marmot-log-level', default=None,
                    help='log_level for Marmot (debug shows the group '
                    'commit batches in marmot-run.log; use with --keep)')
    ap.add_argument('--report', default=None, help='write the report here')
    ap.add_argument('--keep', action='store_true',
                    help='keep the temp dir (logs, Maildir, data)')
    args = ap.parse_args()
    args.sizes = [int(x) for x in args.sizes.split(',')]
    args.conc = [int(x) for x in args.conc.split(',')]
    targets = args.targets.split(',')
    clients = args.clients.split(',')
    for n in args.conc:
        if not 1 <= n <= 256:
            ap.error('concurrency must be 1..256')
    if not 1 <= args.repeat <= 10:
        ap.error('--repeat must be 1..10')
    if args.messages > 100000 or args.messages_large > 100000:
        ap.error('at most 100000 messages per run')

    args.load_before = os.getloadavg()[0]
    if not port_free(25):
        log('warning: something (a system MTA?) listens on port 25; this '
            'benchmark does not use it, but it shares the machine')
    root = os.path.abspath(
        tempfile.mkdtemp(prefix='bench-smtp-', dir=args.dir))
    os.chmod(root, 0o755)  # marmot's and Dovecot's users traverse it
    args.dir = root
    servers = {}
    results = []
    try:
        msgfiles = {}
        for size in args.sizes:
            msgfiles[size] = os.path.join(root, 'msg-%d.eml' % size)
            make_message(msgfiles[size], size, size,
                         size >= 65536 and args.large == 'attachment')
        if 'peer' in targets:
            log('starting Dovecot and Postfix')
            servers['peer'] = Peer(root)
            servers['peer'].start()
        if 'marmot' in targets:
            log('starting Marmot')
            servers['marmot'] = Marmot(args.marmot, root,
                                       args.marmot_log_level)
            servers['marmot'].start()
        if 'sink' in targets:
            port = free_port()
            sink = subprocess.Popen(
                ['smtp-sink', '-u', 'nobody', '%s:%d' % (LOOPBACK, port),
                 '256'], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            servers['sink'] = argparse.Namespace(port=port, proc=sink,
                                                 stop=lambda: kill_group(sink))
            wait_greeting(port, 10)
        stored = getattr(servers.get('marmot'), 'warm_ups', 0)
        runs = {}
        for rep in range(args.repeat):
            for size in args.sizes:
                count = (args.messages if size < 65536
                         else args.messages_large)
                for conc in args.conc:
                    for target in targets:
                        for tool in clients:
                            log('[%d/%d] %s %s c=%d %s x%d' % (
                                rep + 1, args.repeat, target, tool, conc,
                                human(size), count))
                            r = measure(args, target, servers[target], tool,
                                        msgfiles[size], size, conc, count,
                                        stored)
                            if target == 'marmot':
                                stored += r['ok']
                            log('  -> %.0f msg/s%s' % (
                                r['msgs_per_s'],
                                ', p99 %.1f ms' % r['p99_ms']
                                if 'p99_ms' in r else ''))
                            runs.setdefault((size, conc, target, tool),
                                            []).append(r)
        # With --repeat, each row is the run of median throughput.
        for key, rs in runs.items():
            rs.sort(key=lambda r: r['msgs_per_s'])
            r = dict(rs[(len(rs) - 1) // 2])
            r['all_msgs_per_s'] = [x['msgs_per_s'] for x in rs]
            results.append(r)
    finally:
        for s in servers.values():
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                log('stop: %s' % e)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            log('kept %s' % root)
    host = os.uname().nodename
    text = report(results, args, host)
    sys.stdout.write(text)
    if args.report:
        with open(args.report, 'w') as f:
            f.write(text)
        with open(args.report + '.json', 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
