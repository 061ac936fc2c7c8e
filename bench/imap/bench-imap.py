#!/usr/bin/python3
"""bench/imap/bench-imap.py - the IMAP benchmark of issue 6 (a benchmark,
not a test: CI does not run it). One run generates N messages (default
10,000, seeded), stores the same bytes in a fresh Marmot (`marmot import
--maildir`) and in a private Debian Dovecot (tests/integration/dovecot.py,
the files placed in its Maildir), both reached over IMAPS on 127.0.0.1,
and measures for each:

  fetch   connect + TLS + LOGIN + SELECT INBOX + FETCH 1:* (FLAGS ENVELOPE)
          + LOGOUT, median of --reps runs after one warm-up run (the
          first, cold run is reported too: Dovecot indexes the Maildir then)
  search  SEARCH TEXT WORD on one selected connection, median of --reps
          (WORD is in the body of 1% of the messages; both must find the
          same number)
  body    UID FETCH 1:* BODY[] on one selected connection: message bytes
          per second, median of 3
  idle    --idle connections, each LOGIN + SELECT + IDLE (Marmot without
          IDLE: as far as it gets), then RSS and PSS summed over
          /proc/PID/smaps_rollup of every process of the server (Dovecot
          runs an imap and, with TLS, an imap-login process per
          connection), minus the same sum before, per connection

and prints a Markdown report with the ratios against the goals of issue 6
(FETCH >= 1.5x Dovecot, SEARCH TEXT >= 10x, PSS per IDLE connection <=
1/10 of Dovecot's); --json writes the figures too. Every loop is bounded in
count and in time (--phase-timeout); all traffic is on loopback. A phase
that Marmot does not serve yet (no SELECT, no IDLE) is reported as such.
Run it through bench/imap/run.sh, which builds a release marmot."""

import argparse
import base64
import json
import os
import pwd
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tests', 'integration'))

import dovecot  # noqa: E402
import harness  # noqa: E402
import imap_sexp  # noqa: E402

ADDRESS = 'bench@' + harness.DOMAIN
WORD = 'quokkafrond'
LOOPBACK = '127.0.0.1'

VOCAB = ('mail server message folder inbox account storage index search '
         'result time people meeting project report budget quarter plan '
         'review draft final version update release notes customer order '
         'invoice payment delivery schedule travel hotel flight lunch '
         'weekend family photo garden coffee morning evening question '
         'answer problem solution network backup disk memory process '
         'thread socket buffer cache request response protocol header '
         'body part attachment document spreadsheet slide contract '
         'signature approval deadline friday monday office remote team '
         'library river mountain winter summer spring autumn north south '
         'east west green blue yellow purple orange silver golden quiet '
         'happy simple clear strong bright little great small large').split()


def log(msg):
    print('bench-imap: ' + msg, file=sys.stderr, flush=True)


# -- the corpus -----------------------------------------------------------

def words(rng, n):
    return ' '.join(rng.choice(VOCAB) for _ in range(n))


def paragraph(rng, lines, word_hit=False):
    out = []
    for i in range(lines):
        line = words(rng, rng.randint(6, 12))
        if word_hit and i == lines // 2:
            line += ' ' + WORD
        out.append(line)
    return '\r\n'.join(out) + '\r\n'


def make_message(rng, i):
    """One message: 60% short plain text, 25% multipart/alternative with
    HTML, 15% with a base64 attachment of 8-48 KiB. 1% hold WORD."""
    hit = i % 100 == 37
    kind = rng.random()
    frm = '%s <%s.%d@sender%d.example>' % (
        words(rng, 2).title(), rng.choice(VOCAB), i % 97, i % 13)
    head = ('From: %s\r\nTo: Bench <%s>\r\nSubject: %s\r\n'
            'Date: %s\r\nMessage-ID: <bench.%d@sender.example>\r\n'
            'MIME-Version: 1.0\r\n'
            % (frm, ADDRESS, words(rng, rng.randint(3, 8)),
               time.strftime('%a, %d %b %Y %H:%M:%S +0000',
                             time.gmtime(1700000000 + i * 600)), i))
    text = paragraph(rng, rng.randint(10, 50), hit)
    if kind < 0.60:
        return (head + 'Content-Type: text/plain; charset=utf-8\r\n\r\n' +
                text).encode()
    if kind < 0.85:
        html = '<html><body><p>%s</p></body></html>\r\n' % (
            paragraph(rng, rng.randint(10, 40)).replace('\r\n', '<br>\r\n'))
        return (head + 'Content-Type: multipart/alternative; '
                'boundary="alt%d"\r\n\r\n--alt%d\r\nContent-Type: text/plain; '
                'charset=utf-8\r\n\r\n%s--alt%d\r\nContent-Type: text/html; '
                'charset=utf-8\r\n\r\n%s--alt%d--\r\n'
                % (i, i, text, i, html, i)).encode()
    blob = rng.randbytes(rng.randint(8, 48) * 1024)
    b64 = base64.encodebytes(blob).decode().replace('\n', '\r\n')
    return (head + 'Content-Type: multipart/mixed; boundary="mix%d"\r\n\r\n'
            '--mix%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s'
            '--mix%d\r\nContent-Type: application/pdf; name="doc%d.pdf"\r\n'
            'Content-Disposition: attachment; filename="doc%d.pdf"\r\n'
            'Content-Transfer-Encoding: base64\r\n\r\n%s--mix%d--\r\n'
            % (i, i, text, i, i, i, b64, i)).encode()


def write_maildir(root, n, seed):
    """A Maildir (cur/ only) of n messages; returns (count, bytes)."""
    rng = random.Random(seed)
    for sub in ('cur', 'new', 'tmp'):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    total = 0
    for i in range(n):
        raw = make_message(rng, i)
        total += len(raw)
        name = '%d.M%06dP1.bench,S=%d:2,' % (1700000000 + i, i, len(raw))
        with open(os.path.join(root, 'cur', name), 'wb') as f:
            f.write(raw)
    return n, total


def tree_apply(root, on_dir, on_file):
    for dirpath, _dirs, files in os.walk(root):
        on_dir(dirpath)
        for name in files:
            on_file(os.path.join(dirpath, name))


# -- a lean IMAP client ---------------------------------------------------

class Imap(imap_sexp.RawImap):
    """Reads whole tagged answers, skipping literals by their size (so
    message text is never taken for a tagged line) without keeping them."""

    def __init__(self, port, ctx, timeout=120.0):
        super().__init__(port, timeout=timeout, tls_context=ctx)

    def line(self):
        return self.read_line()

    def skip(self, n):
        while len(self.rbuf) - self.rpos < n:
            n -= len(self.rbuf) - self.rpos
            self.rpos = len(self.rbuf)
            self._fill()
        self.rpos += n

    def send(self, text):
        self.tag_n += 1
        tag = b'b%d' % self.tag_n
        self.sock.sendall(tag + b' ' + text.encode() + b'\r\n')
        return tag

    def run(self, text, keep=False):
        """-> (tagged line, untagged FETCH count, literal bytes, kept
        untagged lines)."""
        tag = self.send(text)
        fetches = literal = 0
        kept = []
        while True:
            ln = self.line()
            if ln.endswith(b'}'):
                j = ln.rfind(b'{')
                size = ln[j + 1:-1].rstrip(b'+')
                if j >= 0 and size.isdigit():
                    self.skip(int(size))
                    literal += int(size)
            if ln.startswith(tag + b' '):
                return ln, fetches, literal, kept
            if ln.startswith(b'* '):
                if b' FETCH ' in ln[:24]:
                    fetches += 1
                elif keep:
                    kept.append(ln)

    def ok(self, text, keep=False):
        tagged, fetches, literal, kept = self.run(text, keep)
        if tagged.split(b' ', 2)[1:2] != [b'OK']:
            raise RuntimeError('%s: %r' % (text.split(' ')[0], tagged))
        return fetches, literal, kept


def quote(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


# -- servers ----------------------------------------------------------------

class Server:
    name = ''
    port = None
    ctx = None
    user = password = None
    selects = True

    def connect(self):
        return Imap(self.port, self.ctx)

    def session(self):
        c = self.connect()
        c.ok('LOGIN %s %s' % (quote(self.user), quote(self.password)))
        if self.selects:
            c.ok('SELECT INBOX')
        return c

    def pids(self):
        raise NotImplementedError


class MarmotServer(Server):
    name = 'Marmot'

    def __init__(self, binary, maildir, max_conn):
        self.inst = harness.Instance(marmot=binary, domain=harness.DOMAIN)
        self.password = self.inst.add_user(ADDRESS)
        self.user = ADDRESS
        with open(os.path.join(self.inst.data, 'marmot.conf'), 'a') as f:
            f.write('max_connections_per_ip = %d\n' % (max_conn + 100))
        t0 = time.monotonic()
        r = self.inst.marmot(['import', ADDRESS, '--maildir', maildir],
                             timeout=3600)
        if r.returncode != 0:
            raise RuntimeError('marmot import: %s%s' % (r.stdout, r.stderr))
        self.import_s = time.monotonic() - t0
        self.inst.start()
        self.port = self.inst.ports['imaps']
        self.ctx = harness.insecure_context()
        # The front listens before the vault answers: wait for a login.
        deadline = time.monotonic() + 30
        while True:
            try:
                c = self.connect()
                tagged, _, _, _ = c.run('LOGIN %s %s' % (
                    quote(self.user), quote(self.password)))
                if b' OK' in tagged[:12]:
                    self.selects = b' OK' in c.run('SELECT INBOX')[0][:12]
                    c.close()
                    break
                c.close()
            except (OSError, EOFError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError('no Marmot IMAP login within 30 s\n%s'
                                   % self.inst.log_text())
            time.sleep(0.2)

    def pids(self):
        return harness.session_pids(self.inst.master_pid)

    def close(self):
        self.inst.cleanup()


class DovecotServer(Server):
    name = 'Dovecot'

    def __init__(self, maildir, max_conn):
        self.dc = dovecot.Dovecot(max_connections=max_conn + 50, tls=True)
        self.dc.write_config()
        home = os.path.join(self.dc.dir, 'mail', dovecot.USER)
        target = os.path.join(home, 'Maildir')
        shutil.copytree(maildir, target)
        if os.getuid() == 0:
            pw = pwd.getpwnam('dovecot')

            def chown(path):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            tree_apply(home, chown, chown)
        self.dc.start()
        self.port = self.dc.tls_port
        self.ctx = harness.insecure_context()
        self.user, self.password = dovecot.USER, dovecot.PASSWORD

    def pids(self):
        return self.dc.pids()

    def close(self):
        self.dc.cleanup()


def memory(pids):
    """(RSS, PSS) in KiB summed over pids' smaps_rollup."""
    rss = pss = 0
    for pid in pids:
        try:
            with open('/proc/%d/smaps_rollup' % pid) as f:
                for line in f:
                    if line.startswith('Rss:'):
                        rss += int(line.split()[1])
                    elif line.startswith('Pss:'):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


# -- phases -----------------------------------------------------------------

def phase_fetch(srv, n, reps, deadline):
    """Seconds of each connect..LOGOUT run, the first being cold."""
    times, cpu = [], []
    for _ in range(reps + 1):
        if time.monotonic() > deadline:
            break
        t0, c0 = time.perf_counter(), time.process_time()
        c = srv.session()
        fetches, _, _ = c.ok('FETCH 1:* (FLAGS ENVELOPE)')
        c.ok('LOGOUT')
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        c.close()
        if fetches != n:
            raise RuntimeError('%s: FETCH 1:* gave %d of %d messages'
                               % (srv.name, fetches, n))
    return times, cpu


def phase_search(srv, reps, deadline):
    c = srv.session()
    times, hits = [], None
    try:
        for _ in range(reps):
            if time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            _, _, kept = c.ok('SEARCH TEXT %s' % WORD, keep=True)
            times.append(time.perf_counter() - t0)
            found = sum(len(k.split()) - 2 for k in kept
                        if k.upper().startswith(b'* SEARCH'))
            hits = found
    finally:
        c.close()
    return times, hits


def phase_body(srv, n, reps, deadline):
    c = srv.session()
    out = []
    try:
        for _ in range(reps):
            if time.monotonic() > deadline:
                break
            t0, c0 = time.perf_counter(), time.process_time()
            fetches, literal, _ = c.ok('UID FETCH 1:* BODY[]')
            dt = time.perf_counter() - t0
            cpu = time.process_time() - c0
            if fetches != n:
                raise RuntimeError('%s: UID FETCH 1:* BODY[] gave %d of %d'
                                   % (srv.name, fetches, n))
            out.append((dt, literal, cpu))
    finally:
        c.close()
    return out


def phase_append(srv, count, deadline):
    """Milliseconds of each APPEND of a ~4 KB message to a new mailbox,
    sent the way Python's imaplib sends it: the command line, then after
    the server's "+" the literal and its CRLF in two writes, with Nagle's
    algorithm on (the client's default)."""
    c = srv.session()
    data = ('From: Bench <bench@sender.example>\r\nTo: <%s>\r\n'
            'Subject: append\r\nMessage-ID: <append@sender.example>\r\n'
            '\r\n%s' % (ADDRESS, paragraph(random.Random(7), 60))).encode()
    times = []
    try:
        c.ok('CREATE bench-append')
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            tag = c.send('APPEND bench-append {%d}' % len(data))
            ln = c.line()
            if not ln.startswith(b'+'):
                raise RuntimeError('%s: APPEND: %r' % (srv.name, ln))
            c.sock.sendall(data)
            c.sock.sendall(b'\r\n')
            while True:
                ln = c.line()
                if ln.startswith(tag + b' '):
                    break
            times.append((time.perf_counter() - t0) * 1000)
            if ln.split(b' ', 2)[1:2] != [b'OK']:
                raise RuntimeError('%s: APPEND: %r' % (srv.name, ln))
    finally:
        c.close()
    return times


def phase_idle(srv, count, deadline):
    """Opens count connections, each logged in, selected and IDLE where
    the server can; returns a dict of what it measured."""
    time.sleep(1.0)
    base = memory(srv.pids())
    conns, idling, errors = [], 0, []
    try:
        for _ in range(count):
            if time.monotonic() > deadline:
                errors.append('phase timeout after %d connections'
                              % len(conns))
                break
            try:
                c = srv.connect()
                conns.append(c)
                c.ok('LOGIN %s %s' % (quote(srv.user), quote(srv.password)))
                if srv.selects:
                    c.ok('SELECT INBOX')
                    c.send('IDLE')
                    ln = c.line()
                    while ln.startswith(b'* '):
                        ln = c.line()
                    if ln.startswith(b'+'):
                        idling += 1
                    elif len(errors) < 3:
                        errors.append('IDLE: %r' % ln[:100])
            except (OSError, EOFError, RuntimeError) as e:
                if len(errors) < 3:
                    errors.append('%s: %s' % (type(e).__name__, e))
                if len(errors) >= 3 and not conns:
                    break
        time.sleep(2.0)
        pids = srv.pids()
        now = memory(pids)
    finally:
        for c in conns:
            c.close()
    n = max(1, len(conns))
    return {'connections': len(conns), 'idling': idling,
            'processes': len(pids), 'rss_base_kib': base[0],
            'pss_base_kib': base[1], 'rss_kib': now[0], 'pss_kib': now[1],
            'rss_per_conn_kib': (now[0] - base[0]) / n,
            'pss_per_conn_kib': (now[1] - base[1]) / n, 'errors': errors}


def run_server(srv, args, n):
    res = {'name': srv.name, 'selects': srv.selects}
    if not srv.selects:
        log('%s serves no SELECT: fetch, search and body skipped' % srv.name)
    else:
        log('%s: fetch' % srv.name)
        t, cpu = phase_fetch(srv, n, args.reps,
                             time.monotonic() + args.phase_timeout)
        res['fetch_cold_s'] = t[0]
        res['fetch_s'] = statistics.median(t[1:]) if len(t) > 1 else t[0]
        res['fetch_client_cpu_s'] = (statistics.median(cpu[1:])
                                     if len(cpu) > 1 else cpu[0])
        log('%s: search' % srv.name)
        t, hits = phase_search(srv, args.reps,
                               time.monotonic() + args.phase_timeout)
        res['search_s'] = statistics.median(t)
        res['search_hits'] = hits
        log('%s: body' % srv.name)
        b = phase_body(srv, n, 3, time.monotonic() + args.phase_timeout)
        dt, size, cpu = sorted(b)[len(b) // 2]
        res['body_s'] = dt
        res['body_client_cpu_s'] = cpu
        res['body_bytes'] = size
        res['body_mb_s'] = size / dt / 1e6
        log('%s: append' % srv.name)
        t = phase_append(srv, args.appends,
                         time.monotonic() + args.phase_timeout)
        res['append_ms'] = statistics.median(t) if t else None
    log('%s: %d idle connections' % (srv.name, args.idle))
    res['idle'] = phase_idle(srv, args.idle,
                             time.monotonic() + args.phase_timeout)
    return res


def ratio(a, b):
    return a / b if a and b else None


def fmt(v, unit=''):
    if v is None:
        return 'n/a'
    if isinstance(v, float):
        if abs(v) < 0.1:
            return '%.4f%s' % (v, unit)
        return ('%.2f%s' if abs(v) < 10 else '%.1f%s') % (v, unit)
    return '%s%s' % (v, unit)


def report(m, d, meta):
    lines = ['# bench/imap: Marmot vs Dovecot %s' % meta['dovecot'], '',
             '%(messages)d messages, %(mbytes).1f MB, seed %(seed)d; IMAPS on '
             'loopback; %(reps)d runs per figure (median); %(cpus)d CPUs.'
             % meta,
             'Load average (1 min) before Marmot, before Dovecot, at the '
             'end: %.2f, %.2f, %.2f.' % tuple(meta['load']), '']
    if not m['selects']:
        lines += ['**Marmot\'s IMAP is partial in this build: no SELECT**, '
                  'so FETCH, SEARCH and BODY[] are not measured and its '
                  'idle connections are only logged in (not IDLE).', '']
    lines += ['| what | Marmot | Dovecot | ratio (speed: Marmot/Dovecot; '
              'memory: Marmot share) | goal |',
              '|---|---|---|---|---|']

    def row(what, mv, dv, r, goal):
        lines.append('| %s | %s | %s | %s | %s |' % (what, mv, dv, r, goal))

    # (label, key, unit, True if more is better, goal)
    for label, key, unit, more, goal in (
            ('login+SELECT+FETCH 1:* (FLAGS ENVELOPE), warm', 'fetch_s',
             ' s', False, '>= 1.5x'),
            ('same, first (cold) run', 'fetch_cold_s', ' s', False, ''),
            ('SEARCH TEXT %s (%s / %s hits)'
             % (WORD, m.get('search_hits'), d.get('search_hits')),
             'search_s', ' s', False, '>= 10x'),
            ('UID FETCH 1:* BODY[]', 'body_mb_s', ' MB/s', True, ''),
            ('APPEND ~4 KB, imaplib-style (median of %d)' % meta['appends'],
             'append_ms', ' ms', False, ''),
            ('client CPU during the warm FETCH', 'fetch_client_cpu_s', ' s',
             None, ''),
            ('client CPU during BODY[]', 'body_client_cpu_s', ' s', None,
             '')):
        mv, dv = m.get(key), d.get(key)
        if more is None:
            row(label, fmt(mv, unit), fmt(dv, unit), '', goal)
            continue
        r = ratio(mv, dv) if more else ratio(dv, mv)
        row(label, fmt(mv, unit), fmt(dv, unit), fmt(r, 'x'), goal)
    mi, di = m['idle'], d['idle']
    row('PSS per idle connection (%d / %d open)' % (mi['connections'],
                                                     di['connections']),
        fmt(mi['pss_per_conn_kib'], ' KiB'),
        fmt(di['pss_per_conn_kib'], ' KiB'),
        fmt(ratio(mi['pss_per_conn_kib'], di['pss_per_conn_kib'])),
        '<= 0.1')
    row('RSS per idle connection', fmt(mi['rss_per_conn_kib'], ' KiB'),
        fmt(di['rss_per_conn_kib'], ' KiB'),
        fmt(ratio(mi['rss_per_conn_kib'], di['rss_per_conn_kib'])), '')
    row('processes with the connections open', mi['processes'],
        di['processes'], '', '')
    lines.append('')
    for who, r in (('Marmot', mi), ('Dovecot', di)):
        lines.append('- %s idle: %d connections, %d in IDLE; PSS %d -> %d '
                     'KiB; %s' % (who, r['connections'], r['idling'],
                                  r['pss_base_kib'], r['pss_kib'],
                                  '; '.join(r['errors']) or 'no errors'))
    return '\n'.join(lines) + '\n'


def dovecot_version():
    r = subprocess.run([dovecot.DOVECOT, '--version'], capture_output=True,
                       text=True, timeout=30)
    return r.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--marmot', required=True, help='the marmot binary')
    ap.add_argument('--messages', type=int, default=10000)
    ap.add_argument('--seed', type=int, default=6)
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--idle', type=int, default=1000)
    ap.add_argument('--appends', type=int, default=50)
    ap.add_argument('--phase-timeout', type=float, default=600.0)
    ap.add_argument('--json', help='write the figures here too')
    args = ap.parse_args()
    if (not 1 <= args.messages <= 200000 or not 0 <= args.idle <= 5000
            or not 1 <= args.appends <= 10000):
        ap.error('--messages 1..200000, --idle 0..5000, --appends 1..10000')
    # Both servers inherit the limit: each connection is an fd here and
    # at least one (Dovecot: several) there.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * args.idle + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    work = tempfile.mkdtemp(prefix='bench-imap-')
    os.chmod(work, 0o755)
    servers = []
    try:
        maildir = os.path.join(work, 'Maildir')
        log('writing %d messages' % args.messages)
        n, size = write_maildir(maildir, args.messages, args.seed)
        # Marmot's CLI reads it as the marmot user.
        tree_apply(work, lambda p: os.chmod(p, 0o755),
                   lambda p: os.chmod(p, 0o644))
        log('starting Marmot (import)')
        m = MarmotServer(args.marmot, maildir, args.idle)
        servers.append(m)
        log('imported in %.1f s' % m.import_s)
        log('starting Dovecot')
        d = DovecotServer(maildir, args.idle)
        servers.append(d)
        # One server at a time: the other is idle meanwhile. The load
        # average before and after says whether the machine was quiet:
        # other work on it moves the wall-clock ratios.
        load0 = os.getloadavg()[0]
        res_m = run_server(m, args, n)
        load1 = os.getloadavg()[0]
        res_d = run_server(d, args, n)
        meta = {'messages': n, 'mbytes': size / 1e6, 'seed': args.seed,
                'reps': args.reps, 'appends': args.appends,
                'cpus': os.cpu_count() or 0,
                'dovecot': dovecot_version(), 'marmot_import_s': m.import_s,
                'load': [load0, load1, os.getloadavg()[0]]}
        text = report(res_m, res_d, meta)
        print(text)
        if args.json:
            with open(args.json, 'w') as f:
                json.dump({'meta': meta, 'marmot': res_m, 'dovecot': res_d},
                          f, indent=1)
    finally:
        for s in servers:
            s.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
