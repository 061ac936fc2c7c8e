"""An authoritative DNS server for integration tests: Debian's nsd, run as
a child in the foreground (`nsd -d`) with its config, zone files, pid and
log in a temp dir, listening on 127.0.0.10 (UDP and TCP) at a free port.

    with DnsServer(DEFAULT_ZONES) as dns:
        inst.set_config('dns_resolver', dns.resolver)   # "127.0.0.10@PORT"
        dns.query('remote.test', 'MX')                  # sanity checks

Marmot's resolver (libunbound, src/lib-dns) forwards to it with RD set;
nsd answers authoritatively for its zones (RA clear, which libunbound
accepts from a forwarder) and REFUSED for anything else, so nothing leaks
to the real DNS.

Zones are dicts: {'remote.test': [('@', 'MX', '10 mx1'), ('mx1', 'A',
'127.0.0.3')], ...}; names are relative to the zone unless they end in
'.', '@' is the apex. SOA and NS records are added. set_zones() rewrites
the zone files and reloads nsd (SIGHUP, or a restart on the same port when
zones are added or removed), then waits until the new serial answers.
start() waits until every zone answers its SOA; stop() and every failure
path kill nsd and remove the temp dir. Standard library only.
"""

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

try:
    import harness
except ImportError:  # used outside the test runner
    harness = None

NSD = '/usr/sbin/nsd'
LDNS_KEYGEN = '/usr/bin/ldns-keygen'
LDNS_SIGNZONE = '/usr/bin/ldns-signzone'
DNS_ADDR = '127.0.0.10'

def test_zones(mx_addr, closed_addr):
    """The zones the outbound tests use, pointing at mx_addr (where
    postfix_mx.py listens) and closed_addr (where nothing listens: a dead
    MX):
    remote.test: two MX hosts (both the same Postfix); alice@, bounce@,
      defer@ exist there (see postfix_mx.py); alias.remote.test is a
      CNAME for it.
    fallback.test: the preferred MX is closed, the second is Postfix.
    nullmx.test: RFC 7505 "MX 0 ." - accepts no mail.
    aonly.test: no MX, an A record: RFC 5321 5.1 implicit MX.
    nxmx.test: its only MX host does not exist."""
    return {
        'remote.test': [
            ('@', 'MX', '10 mx1'),
            ('@', 'MX', '20 mx2'),
            ('mx1', 'A', mx_addr),
            ('mx2', 'A', mx_addr),
            ('@', 'TXT', '"v=spf1 ip4:127.0.0.0/8 -all"'),
            ('alias', 'CNAME', 'remote.test.'),
        ],
        'fallback.test': [
            ('@', 'MX', '10 dead'),
            ('@', 'MX', '20 live'),
            ('dead', 'A', closed_addr),
            ('live', 'A', mx_addr),
        ],
        'nullmx.test': [
            ('@', 'MX', '0 .'),
            ('@', 'A', mx_addr),
        ],
        'aonly.test': [
            ('@', 'A', mx_addr),
        ],
        'nxmx.test': [
            ('@', 'MX', '10 nowhere.nxmx.test.'),
        ],
    }


DEFAULT_ZONES = test_zones('127.0.0.3', '127.0.0.4')

TYPES = {'A': 1, 'NS': 2, 'CNAME': 5, 'SOA': 6, 'PTR': 12, 'MX': 15,
         'TXT': 16, 'AAAA': 28, 'SRV': 33, 'TLSA': 52}
RCODES = {0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN',
          4: 'NOTIMP', 5: 'REFUSED'}


def _free_port(addr):
    """A port free for both UDP and TCP on addr."""
    for _ in range(50):
        port = random.randrange(20000, 60000)
        ok = True
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind((addr, port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise RuntimeError('no free UDP+TCP port on %s' % addr)


def _encode_name(name):
    out = b''
    for label in name.rstrip('.').split('.'):
        if label:
            out += bytes([len(label)]) + label.encode('ascii')
    return out + b'\0'


def _skip_name(msg, pos):
    while True:
        length = msg[pos]
        if length & 0xc0 == 0xc0:
            return pos + 2
        pos += 1
        if length == 0:
            return pos
        pos += length


def query(addr, port, name, rtype, timeout=1.0):
    """One UDP query. Returns (rcode name, flags, [rdata bytes of answers of
    type rtype]) or raises OSError/socket.timeout."""
    qtype = TYPES[rtype] if isinstance(rtype, str) else rtype
    qid = random.randrange(65536)
    msg = struct.pack('!HHHHHH', qid, 0x0100, 1, 0, 0, 0)
    msg += _encode_name(name) + struct.pack('!HH', qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(msg, (addr, port))
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            data, _ = s.recvfrom(4096)
            if len(data) >= 12 and struct.unpack('!H', data[:2])[0] == qid:
                break
    finally:
        s.close()
    _, flags, qd, an, _, _ = struct.unpack('!HHHHHH', data[:12])
    pos = 12
    for _ in range(qd):
        pos = _skip_name(data, pos) + 4
    answers = []
    for _ in range(an):
        pos = _skip_name(data, pos)
        t, _, _, rdlen = struct.unpack('!HHIH', data[pos:pos + 10])
        pos += 10
        if t == qtype:
            answers.append(data[pos:pos + rdlen])
        pos += rdlen
    return RCODES.get(flags & 0xf, str(flags & 0xf)), flags, answers


def register_live(server):
    """run.py tears down everything in harness._live (cleanup()) on every
    exit path, SIGTERM from meson's timeout included: so do we."""
    if harness is not None:
        harness._live.add(server)


class TempServer:
    """What DnsServer and PostfixMx share: a temp dir (self.dir) removed
    by stop(), and cleanup() for run.py. Subclasses define _kill()."""

    dir = None
    proc = None

    def _prepare(self):
        """Writes the configuration; returns (argv, output file)."""
        raise NotImplementedError

    def _wait_ready(self, timeout):
        raise NotImplementedError

    def _kill(self):
        raise NotImplementedError

    def log_paths(self):
        raise NotImplementedError

    def log_text(self):
        """The server's output and log, for failure messages."""
        out = []
        for path in self.log_paths() if self.dir else []:
            try:
                with open(path, 'rb') as f:
                    out.append(f.read().decode('utf-8', 'replace'))
            except OSError:
                pass
        return ''.join(out)

    def start(self, timeout=20.0):
        """Runs the server as a child in its own session and waits until
        it serves; on any failure everything is stopped again."""
        register_live(self)
        try:
            argv, out_path = self._prepare()
            with open(out_path, 'ab') as out:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True)
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        self._kill()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if harness is not None:
            harness._live.discard(self)

    def cleanup(self):
        """What run.py calls on every exit path (see register_live)."""
        self.stop()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


class DnsServer(TempServer):
    """One nsd serving zones on DNS_ADDR:port."""

    def __init__(self, zones=None, addr=DNS_ADDR, port=None, signed=(),
                 tampered=()):
        """signed: zones to sign with DNSSEC (ldns-signzone, a KSK and a
        ZSK made here, ECDSA P-256); their DS records go to
        trust_anchor_file. tampered: signed zones whose A records are
        then changed without re-signing, so that validators call them
        bogus."""
        if not os.access(NSD, os.X_OK):
            raise RuntimeError('%s not found: apt-get install nsd '
                               '(scripts/install-deps.sh)' % NSD)
        if (signed or tampered) and not os.access(LDNS_SIGNZONE, os.X_OK):
            raise RuntimeError('%s not found: apt-get install ldnsutils '
                               '(scripts/install-deps.sh)' % LDNS_SIGNZONE)
        self.zones = dict(DEFAULT_ZONES if zones is None else zones)
        self.signed = set(signed) | set(tampered)
        self.tampered = set(tampered)
        self.keys = {}
        self.addr = addr
        self.port = port or _free_port(addr)
        self.dir = tempfile.mkdtemp(prefix='marmot-nsd-')
        self.conf = os.path.join(self.dir, 'nsd.conf')
        self.log_path = os.path.join(self.dir, 'nsd.log')
        self.proc = None
        self.serial = int(time.time()) % 1000000000
        self.trust_anchor_file = os.path.join(self.dir, 'trust-anchors')

    @property
    def resolver(self):
        """The dns_resolver setting that points Marmot here."""
        return '%s@%d' % (self.addr, self.port)

    # -- files -------------------------------------------------------------

    def _zone_text(self, zone, records):
        lines = ['$ORIGIN %s.' % zone, '$TTL 5',
                 '@ IN SOA ns.%s. hostmaster.%s. %d 3600 600 86400 5'
                 % (zone, zone, self.serial),
                 '@ IN NS ns.%s.' % zone,
                 'ns.%s. IN A %s' % (zone, self.addr)]
        for name, rtype, data in records:
            lines.append('%s IN %s %s' % (name, rtype, data))
        return '\n'.join(lines) + '\n'

    def _write(self):
        conf = [
            'server:',
            '  ip-address: %s@%d' % (self.addr, self.port),
            '  do-ip6: no',
            '  username: ""',
            '  chroot: ""',
            '  zonesdir: "%s"' % self.dir,
            '  pidfile: "%s/nsd.pid"' % self.dir,
            '  xfrdfile: "%s/xfrd.state"' % self.dir,
            '  zonelistfile: "%s/zone.list"' % self.dir,
            '  database: ""',
            '  logfile: "%s"' % self.log_path,
            '  verbosity: 1',
            '  server-count: 1',
            '  tcp-count: 16',
            '  hide-version: yes',
            '  identity: ""',
            'remote-control:',
            '  control-enable: no',
        ]
        anchors = []
        for zone in sorted(self.zones):
            fname = '%s.zone' % zone
            path = os.path.join(self.dir, fname)
            with open(path + '.tmp', 'w') as f:
                f.write(self._zone_text(zone, self.zones[zone]))
            if zone in self.signed:
                anchors.append(self._sign(zone, path + '.tmp'))
            os.rename(path + '.tmp', path)
            conf += ['zone:', '  name: "%s"' % zone,
                     '  zonefile: "%s"' % fname]
        with open(self.conf, 'w') as f:
            f.write('\n'.join(conf) + '\n')
        with open(self.trust_anchor_file, 'w') as f:
            f.write(''.join(anchors))

    def _run(self, argv):
        r = subprocess.run(argv, cwd=self.dir, capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError('%s: %s%s' % (' '.join(argv), r.stdout,
                                             r.stderr))
        return r.stdout.strip()

    def _sign(self, zone, path):
        """Signs the zone file at path in place; returns its DS record
        (the trust anchor)."""
        if zone not in self.keys:
            ksk = self._run([LDNS_KEYGEN, '-a', 'ECDSAP256SHA256', '-k',
                             zone])
            zsk = self._run([LDNS_KEYGEN, '-a', 'ECDSAP256SHA256', zone])
            self.keys[zone] = (ksk, zsk)
        ksk, zsk = self.keys[zone]
        self._run([LDNS_SIGNZONE, '-f', path + '.signed', path, ksk, zsk])
        with open(path + '.signed') as f:
            lines = f.read().splitlines()
        if zone in self.tampered:
            # Change the data, keep the signatures: RFC 4035 5.3 fails.
            for i, line in enumerate(lines):
                fields = line.split('\t')
                if len(fields) == 5 and fields[3] == 'A':
                    fields[4] = '127.0.0.99'
                    lines[i] = '\t'.join(fields)
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        os.unlink(path + '.signed')
        with open(os.path.join(self.dir, ksk + '.ds')) as f:
            return f.read()

    # -- process -----------------------------------------------------------

    def _prepare(self):
        self._write()
        r = subprocess.run(['/usr/sbin/nsd-checkconf', self.conf],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError('nsd-checkconf %s: %s%s'
                               % (self.conf, r.stdout, r.stderr))
        for zone in sorted(self.zones):
            path = os.path.join(self.dir, '%s.zone' % zone)
            r = subprocess.run(['/usr/sbin/nsd-checkzone', zone, path],
                               capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise RuntimeError('zone %s: %s%s' % (zone, r.stdout,
                                                      r.stderr))
        return [NSD, '-d', '-c', self.conf], os.path.join(self.dir,
                                                          'nsd.out')

    def _wait_ready(self, timeout):
        """Waits until every zone answers its SOA with the current
        serial."""
        deadline = time.monotonic() + timeout
        pending = set(self.zones)
        while pending:
            if self.proc.poll() is not None:
                raise RuntimeError('nsd exited with %d\n%s'
                                   % (self.proc.returncode, self.log_text()))
            if time.monotonic() > deadline:
                raise RuntimeError('nsd on %s did not serve %s within %.0f s'
                                   '\n%s' % (self.resolver, sorted(pending),
                                             timeout, self.log_text()))
            for zone in list(pending):
                try:
                    rcode, _, ans = query(self.addr, self.port, zone, 'SOA',
                                          timeout=0.2)
                except OSError:
                    continue
                if rcode == 'NOERROR' and ans:
                    # SOA rdata: mname, rname, then the serial.
                    rd = ans[0]
                    pos = _skip_name(rd, _skip_name(rd, 0))
                    if struct.unpack('!I', rd[pos:pos + 4])[0] == \
                            self.serial:
                        pending.discard(zone)
            if pending:
                time.sleep(0.05)

    def set_zones(self, zones, timeout=10.0):
        """Replaces every zone (a dict as in the constructor) and reloads.
        Resolver caches keep old answers for up to the TTL (5 s)."""
        same_names = set(zones) == set(self.zones)
        self.zones = dict(zones)
        self.serial += 1
        if same_names:
            # SIGHUP rereads the zone files, not the list of zones.
            self._write()
            self.proc.send_signal(signal.SIGHUP)
            self._wait_ready(timeout)
            return
        self._kill()
        self.start(timeout)

    def query(self, name, rtype, timeout=1.0):
        return query(self.addr, self.port, name, rtype, timeout)

    def log_paths(self):
        return [os.path.join(self.dir, name)
                for name in ('nsd.out', 'nsd.log')]

    def _kill(self):
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
