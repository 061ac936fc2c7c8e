"""Crash safety of delivery and the spool merge (issue 3, "Must show"):
>= 20 rounds of kill -9 at random moments (0.2-2 s apart) during
concurrent appends and merges, >= 5,000 acknowledged messages in all;
afterwards every acknowledged message is present exactly once, the store
passes `marmot store verify` (PRAGMA integrity_check, the store's own
consistency checks, every blob decrypted and hashed), UIDs are never
reused and UIDVALIDITY never changes.

Set-up: one instance, accounts alice and bob. Four writers each deliver
their own mbox of WRITER_MESSAGES small messages with unique numbered
Message-IDs through `marmot deliver ADDRESS --mbox -` (two to alice's
INBOX, one to alice's "Archive", one to bob), fed through a pipe in small
paced chunks so that the deliveries last as long as the kills. The
deliverer prints "delivered N MESSAGE-ID" once message N is durable: that
line is the acknowledgement. A killer thread does KILL_ROUNDS rounds (and
more while deliveries still run), each a kill -9 of, in turn, the vault (merging), the front and a running
deliverer (the master is killed once instead, mid-way, and `marmot run`
started again on the same data directory), and takes a `marmot store list`
snapshot of both accounts after every kill, while merges run: each
snapshot is checked against the earlier ones (UIDVALIDITY per mailbox
unchanged; every (mailbox, UID) seen keeps its Message-ID and is never
lost; a message that appears later has a UID above every UID already
seen in its mailbox). A killed deliverer is restarted on the
unacknowledged rest of its mbox, as a sending client retries what it saw
no acknowledgement for.

Retries and duplicates, precisely: the deliverer appends messages one
after the other and prints a message's line only after its record is
fsynced, and the line is read from the pipe even after the kill. So when
a deliverer is killed, every message before the first unacknowledged one
of its mbox was acknowledged (never resent), and the messages after it
were not yet appended: only that first unacknowledged message (the one
"in flight") can be durable without an acknowledgement, and the retry
then delivers it a second time. That is the one duplicate a retrying
client causes with any LDA or SMTP server, not a loss of "exactly once"
for acknowledged mail. So each message may appear 1 + (the number of
killed attempts in which it was the in-flight one) times; any other
duplicate, any message acknowledged before the retry that carried it
started appearing twice, any acknowledged message missing, or anything
stored that no writer sent, fails the test. In practice the record is
almost never durable at the instant of the kill, so the allowance is
rarely used (the figures say how often).

DeliverMboxTest checks the two commands this relies on, on their own:
`marmot deliver --mbox` (one acknowledgement line per durable message,
"-" for a message without Message-ID, an oversized message refused and
named while the rest is delivered, exit 1; unreadable input delivers
nothing) and `marmot store list` (format, UIDs in order, sizes).

Every wait is bounded; only 127.0.0.1 is used. Sized for about a minute
under ASan on two cores."""

import os
import random
import re
import secrets
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import DOMAIN, Instance
from test_store_deliver import DeliverCase

WRITERS = 4
WRITER_MESSAGES = 1300  # 5,200 in all: >= 5,000 acknowledged
# Kill rounds: at least KILL_ROUNDS, and on while deliveries run (at most
# MAX_KILL_ROUNDS).
KILL_ROUNDS = 24  # >= 20
MAX_KILL_ROUNDS = 60
MASTER_ROUND = 12  # the round that kills the master instead
KILL_INTERVAL = (0.2, 2.0)  # seconds between kills, uniform
# Pacing of the mbox fed to a deliverer: this many messages, then a pause.
FEED_CHUNK = 10
FEED_PAUSE = (0.1, 0.4)
# Bounds.
WRITE_DEADLINE = 150.0  # all writers done within this (seconds)
MAX_ATTEMPTS = 100  # deliverer starts per writer
MERGE_DEADLINE = 120.0  # everything merged this long after the writers
MBOX_FROM_LINE = 'From sender@crash.example Mon Jun  2 10:00:00 2025\n'

DELIVERED_RE = re.compile(r'^delivered (\d+) (\S+)$')


def crash_message(tag, w, n):
    msgid = '<w%d.%d.%s@crash.example>' % (w, n, tag)
    text = ('From: Writer %d <w%d@crash.example>\n'
            'To: someone@%s\n'
            'Subject: crash test writer %d message %d\n'
            'Message-ID: %s\n'
            'Date: Mon, 2 Jun 2025 10:00:00 +0000\n'
            '\n'
            'Message %d of writer %d (%s).\n'
            % (w, w, DOMAIN, w, n, msgid, n, w, tag))
    return msgid, text


class Writer:
    """One sending client: delivers its messages with `marmot deliver
    --mbox -`, restarting on the unacknowledged rest after a kill."""

    def __init__(self, test, w, address, mailbox, tag):
        self.test = test
        self.inst = test.inst
        self.w = w
        self.address = address
        self.mailbox = mailbox
        self.messages = [crash_message(tag, w, n)
                         for n in range(WRITER_MESSAGES)]
        self.acked = [False] * WRITER_MESSAGES
        self.acked_count = 0
        # index -> number of killed attempts it was in flight in
        self.in_flight = {}
        self.attempts = 0
        self.killed = 0  # attempts ended by SIGKILL
        self.errors = []
        self.lock = threading.Lock()
        self.proc = None
        self.thread = threading.Thread(target=self.run, daemon=True,
                                       name='writer-%d' % w)

    def pending(self):
        return [i for i in range(WRITER_MESSAGES) if not self.acked[i]]

    def feed(self, proc, indexes):
        """Writes the mbox of indexes to proc's stdin in paced chunks."""
        try:
            for start in range(0, len(indexes), FEED_CHUNK):
                chunk = indexes[start:start + FEED_CHUNK]
                data = ''.join(MBOX_FROM_LINE + self.messages[i][1] + '\n'
                               for i in chunk)
                proc.stdin.write(data.encode())
                proc.stdin.flush()
                if time.monotonic() > self.test.write_deadline:
                    break
                time.sleep(random.uniform(*FEED_PAUSE))
        except (BrokenPipeError, OSError, ValueError):
            pass  # the deliverer was killed
        finally:
            try:
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass

    def attempt(self, indexes):
        argv = [self.inst.binary, 'deliver', self.address, '--mbox', '-',
                '--data', self.inst.data]
        if self.mailbox != 'INBOX':
            argv += ['--mailbox', self.mailbox]
        with tempfile.TemporaryFile() as errf:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=errf)
            with self.lock:
                self.proc = proc
            self.attempts += 1
            feeder = threading.Thread(target=self.feed,
                                      args=(proc, indexes), daemon=True)
            feeder.start()
            # A last resort against a hang: kill at the deadline.
            watchdog = threading.Timer(
                max(1.0, self.test.write_deadline - time.monotonic()),
                lambda: proc.poll() is None and proc.kill())
            watchdog.start()
            acked_here = 0
            try:
                for raw in proc.stdout:
                    line = raw.decode('utf-8', 'replace').rstrip('\n')
                    m = DELIVERED_RE.match(line)
                    if m is None:
                        self.errors.append('unexpected output %r' % line)
                        continue
                    n = int(m.group(1))
                    if n != acked_here + 1 or n > len(indexes):
                        self.errors.append('acknowledgement %r out of '
                                           'order (expected %d)'
                                           % (line, acked_here + 1))
                        continue
                    i = indexes[n - 1]
                    if m.group(2) != self.messages[i][0]:
                        self.errors.append('acknowledgement %r names the '
                                           'wrong Message-ID (expected %s)'
                                           % (line, self.messages[i][0]))
                    with self.lock:
                        self.acked[i] = True
                        self.acked_count += 1
                    acked_here += 1
                rc = proc.wait(timeout=30)
            finally:
                watchdog.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
                feeder.join(timeout=30)
                with self.lock:
                    self.proc = None
            errf.seek(0)
            stderr = errf.read().decode('utf-8', 'replace')
        found = harness.scan_sanitizer(stderr)
        if found:
            harness.sanitizer_findings.append(('marmot deliver', found))
        if acked_here < len(indexes):
            # The first unacknowledged message may be durable (see the
            # module docstring); the ones after it were never appended.
            i = indexes[acked_here]
            self.in_flight[i] = self.in_flight.get(i, 0) + 1
        if rc == -signal.SIGKILL:
            self.killed += 1
        elif rc != 0 or acked_here != len(indexes):
            # deliver needs no server: only our kill may stop it.
            self.errors.append('deliver exited %d after %d of %d '
                               'acknowledgements: %s'
                               % (rc, acked_here, len(indexes),
                                  stderr.strip()[-2000:]))

    def run(self):
        try:
            while self.attempts < MAX_ATTEMPTS:
                indexes = self.pending()
                if not indexes or time.monotonic() > \
                        self.test.write_deadline:
                    break
                self.attempt(indexes)
                if len(self.errors) > 20:
                    break
        except Exception as e:  # reported by the test
            self.errors.append('%s: %s' % (type(e).__name__, e))

    def kill(self):
        """SIGKILL to the running deliverer; False if none is running."""
        with self.lock:
            proc = self.proc
            if proc is None or proc.poll() is not None:
                return False
            try:
                proc.send_signal(signal.SIGKILL)
            except OSError:
                return False
            return True


class UidHistory:
    """Checks `marmot store list` snapshots of one account over time."""

    def __init__(self, address):
        self.address = address
        self.uidvalidity = {}  # mailbox -> UIDVALIDITY
        self.seen = {}  # (mailbox, uid) -> message-id
        self.max_uid = {}  # mailbox -> highest UID seen so far
        self.snapshots = 0
        self.errors = []

    def check(self, entries, uidvalidity):
        self.snapshots += 1
        for box, v in uidvalidity.items():
            old = self.uidvalidity.setdefault(box, v)
            if old != v:
                self.errors.append('%s %s: UIDVALIDITY changed from %d to '
                                   '%d' % (self.address, box, old, v))
        for key, msgid in self.seen.items():
            now = entries.get(key)
            if now is None:
                self.errors.append('%s %s UID %d (%s) disappeared'
                                   % (self.address, key[0], key[1], msgid))
            elif now != msgid:
                self.errors.append('%s %s UID %d reused: was %s, now %s'
                                   % (self.address, key[0], key[1], msgid,
                                      now))
        new = {}
        for key, msgid in entries.items():
            if key in self.seen:
                continue
            box, uid = key
            if uid <= self.max_uid.get(box, 0):
                self.errors.append('%s %s: new message %s got UID %d, not '
                                   'above the highest UID already seen, '
                                   '%d' % (self.address, box, msgid, uid,
                                           self.max_uid[box]))
            new[key] = msgid
        self.seen.update(new)
        for box, uid in new:
            self.max_uid[box] = max(self.max_uid.get(box, 0), uid)
        del self.errors[50:]


class CrashSafetyTest(DeliverCase):
    """alice and bob on a running instance (DeliverCase's setUp), with
    account_dir() and spool_pending() from there."""

    def store_list(self, address):
        """({(mailbox, uid): message-id}, {mailbox: uidvalidity},
        {message-id: count}) from `marmot store list`."""
        r = self.inst.marmot(['store', 'list', address], timeout=120)
        if r.returncode != 0:
            raise AssertionError('marmot store list %s: exit %d\n%s'
                                 % (address, r.returncode, r.stderr))
        lines = r.stdout.splitlines()
        self.assertEqual(lines[:1], ['mailbox\tuidvalidity\tuid\t'
                                     'message-id\tsize'])
        entries, uidvalidity, counts = {}, {}, {}
        for line in lines[1:]:
            box, v, uid, msgid, _size = line.split('\t')
            entries[(box, int(uid))] = msgid
            v = int(v)
            if uidvalidity.setdefault(box, v) != v:
                raise AssertionError('two UIDVALIDITYs for %s in one '
                                     'listing' % box)
            counts[(box, msgid)] = counts.get((box, msgid), 0) + 1
        return entries, uidvalidity, counts

    def kill_role(self, role):
        pid = self.inst.role_pid(role, timeout=20.0)
        os.kill(pid, signal.SIGKILL)

    def kill_master(self):
        """kill -9 of the master; the roles go on their parent-death
        SIGTERM; then `marmot run` again on the same data directory."""
        inst = self.inst
        os.kill(inst.master_pid, signal.SIGKILL)
        inst.proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (inst.role_pids('vault') or
                                               inst.role_pids('front')):
            time.sleep(0.05)
        left = inst.role_pids('vault') + inst.role_pids('front')
        for pid in left:  # not expected: a role outlived its master
            os.kill(pid, signal.SIGKILL)
        inst.log_file.close()
        inst.log_file = None
        inst.proc = None
        inst.start(timeout=30.0)
        return left

    def test_kill_9_during_appends_and_merges(self):
        t0 = time.monotonic()
        self.write_deadline = t0 + WRITE_DEADLINE
        tag = secrets.token_hex(4)
        specs = [(self.alice, 'INBOX'), (self.alice, 'INBOX'),
                 (self.alice, 'Archive'), (self.bob, 'INBOX')]
        writers = [Writer(self, w, addr, box, tag)
                   for w, (addr, box) in enumerate(specs[:WRITERS])]
        history = {a: UidHistory(a) for a in (self.alice, self.bob)}
        kills = {'vault': 0, 'front': 0, 'deliver': 0, 'master': 0}
        killer_errors = []
        kills_while_writing = [0]
        snapshot_secs = [0.0]
        stray_roles = []

        def killer():
            cycle = ['vault', 'front', 'deliver']
            try:
                for rnd in range(MAX_KILL_ROUNDS):
                    time.sleep(random.uniform(*KILL_INTERVAL))
                    writing = any(w.thread.is_alive() for w in writers)
                    if rnd >= KILL_ROUNDS and not writing:
                        break
                    target = ('master' if rnd == MASTER_ROUND
                              else cycle[rnd % len(cycle)])
                    if target == 'deliver':
                        running = [w for w in writers
                                   if w.thread.is_alive()]
                        random.shuffle(running)
                        if not any(w.kill() for w in running):
                            target = 'vault'  # none running right now
                    if target in ('vault', 'front'):
                        self.kill_role(target)
                    elif target == 'master':
                        stray_roles.extend(self.kill_master())
                    kills[target] += 1
                    if writing:
                        kills_while_writing[0] += 1
                    # A snapshot while merges go on.
                    s0 = time.monotonic()
                    for addr, h in history.items():
                        entries, uidvalidity, _ = self.store_list(addr)
                        h.check(entries, uidvalidity)
                    snapshot_secs[0] += time.monotonic() - s0
            except Exception as e:
                killer_errors.append('%s: %s' % (type(e).__name__, e))

        kthread = threading.Thread(target=killer, daemon=True,
                                   name='killer')
        for w in writers:
            w.thread.start()
        kthread.start()
        for w in writers:
            w.thread.join(timeout=max(1.0, self.write_deadline + 60 -
                                      time.monotonic()))
        written = time.monotonic() - t0
        kthread.join(timeout=max(1.0, t0 + WRITE_DEADLINE + 120 -
                                 time.monotonic()))
        self.assertFalse(kthread.is_alive(), 'the killer thread hangs')
        self.assertEqual(killer_errors, [])
        for w in writers:
            self.assertFalse(w.thread.is_alive(), 'writer %d hangs' % w.w)
            self.assertEqual(w.errors, [], 'writer %d' % w.w)
        acked = sum(w.acked_count for w in writers)
        self.assertEqual(acked, WRITERS * WRITER_MESSAGES,
                         'not every message was acknowledged within %.0f s'
                         % WRITE_DEADLINE)
        self.assertTrue(self.inst.running(), self.inst.log_text())

        # Everything merged (bounded), then the final listings.
        m0 = time.monotonic()
        while (any(self.spool_pending(a) for a in history) and
               time.monotonic() - m0 < MERGE_DEADLINE):
            time.sleep(0.2)
        pending = [a for a in history if self.spool_pending(a)]
        self.assertEqual(pending, [], 'spool not merged within %.0f s'
                         % MERGE_DEADLINE)
        merge_wait = time.monotonic() - m0
        final = {}
        for addr, h in history.items():
            entries, uidvalidity, counts = self.store_list(addr)
            h.check(entries, uidvalidity)
            final[addr] = counts
            self.assertEqual(h.errors, [], addr)

        # Exactly once (with the in-flight allowance explained above).
        problems = []
        expected = {}  # (address, mailbox, message-id) -> allowed copies
        allowance_used = 0
        allowed_total = 0
        for w in writers:
            for i, (msgid, _) in enumerate(w.messages):
                allowed = 1 + w.in_flight.get(i, 0)
                allowed_total += allowed - 1
                expected[(w.address, w.mailbox, msgid)] = allowed
        for (addr, box, msgid), allowed in expected.items():
            n = final[addr].get((box, msgid), 0)
            if n == 0:
                problems.append('acknowledged %s missing from %s %s'
                                % (msgid, addr, box))
            elif n > allowed:
                problems.append('%s stored %d times in %s %s (allowed %d)'
                                % (msgid, n, addr, box, allowed))
            elif n > 1:
                allowance_used += n - 1
        for addr, counts in final.items():
            for (box, msgid), n in counts.items():
                if (addr, box, msgid) not in expected:
                    problems.append('%s %s holds %d unexpected message(s) '
                                    '%s' % (addr, box, n, msgid))
        self.assertEqual(problems[:20], [], '%d problems' % len(problems))

        # integrity_check, the store's checks, every blob.
        for addr in history:
            r = self.inst.marmot(['store', 'verify', addr], timeout=180)
            self.assertEqual(r.returncode, 0, 'store verify %s:\n%s%s'
                             % (addr, r.stdout, r.stderr))

        total_kills = sum(kills.values())
        log = self.inst.log_text(limit=10 ** 8)
        damaged = [n for a in history
                   for n in os.listdir(self.account_dir(a))
                   if n.startswith('spool.damaged')]
        harness.note('%d messages acknowledged by %d writers (%d deliver '
                     'runs, %d killed); duplicates allowed for in-flight '
                     'messages: %d, present: %d'
                     % (acked, len(writers),
                        sum(w.attempts for w in writers),
                        sum(w.killed for w in writers), allowed_total,
                        allowance_used))
        harness.note('%d kill -9 rounds (%d while deliveries ran): %r; '
                     'roles left by the dead master: %d'
                     % (total_kills, kills_while_writing[0], kills,
                        len(stray_roles)))
        harness.note('%d store list snapshots per account (%.1f s); '
                     'mailboxes %r'
                     % (history[self.alice].snapshots, snapshot_secs[0],
                        {a: h.uidvalidity for a, h in history.items()}))
        harness.note('vault starts %d, merge.done %d, merge failures %d, '
                     'damaged spool files kept %d'
                     % (len(re.findall(r'vault\.started', log)),
                        len(re.findall(r' merge\.done ', log)),
                        len(re.findall(r' merge\.failed ', log)),
                        len(damaged)))
        harness.note('deliveries %.1f s, merged %.1f s later, total %.1f s'
                     % (written, merge_wait, time.monotonic() - t0))
        self.assertGreaterEqual(total_kills, 20)
        self.assertGreaterEqual(kills['master'], 1)
        self.assertGreaterEqual(acked, 5000)


class DeliverMboxTest(unittest.TestCase):
    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.cleanup)
        self.alice = 'alice@' + DOMAIN
        self.inst.add_user(self.alice)
        self.inst.start()

    def test_mbox_acknowledgements_and_store_list(self):
        big = 'X' * 1023 + '\n'
        msgs = [
            'Message-ID: <one@x.example>\nSubject: 1\n\nbody\n',
            'Subject: 2 has no Message-ID\n\nbody\n',
            'Subject: 3\nMessage-ID:\n <three@x.example>\n\n'
            'From the start of a line\n',
            'Message-ID: <four@x.example>\n\n' +
            big * (50 * 1024 + 1),
            'Message-ID: <five@x.example>\nStatus: RO\n\nbody\n',
        ]
        path = os.path.join(self.inst.dir, 'in.mbox')
        with open(path, 'w') as f:
            for m in msgs:
                f.write(MBOX_FROM_LINE + m.replace('\nFrom ', '\n>From ')
                        + '\n')
        r = self.inst.marmot(['deliver', self.alice, '--mbox', path])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout.splitlines(), [
            'delivered 1 <one@x.example>', 'delivered 2 -',
            'delivered 3 <three@x.example>',
            'delivered 5 <five@x.example>'])
        self.assertIn('message 4 ', r.stderr)
        self.assertIn('too large', r.stderr)

        # Nothing more is delivered from input that is not an mbox.
        for args, data in ((['--mbox', path + '.missing'], ''),
                           (['--mbox', '-'], 'Subject: not an mbox\n'),
                           (['--mbox', '-'], '')):
            r = self.inst.marmot(['deliver', self.alice] + args,
                                 input=data)
            self.assertEqual((r.returncode, r.stdout), (1, ''), r.stderr)

        deadline = time.monotonic() + 30
        while True:
            r = self.inst.marmot(['store', 'list', self.alice])
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.splitlines()
            if len(lines) >= 5 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(lines[0], 'mailbox\tuidvalidity\tuid\t'
                         'message-id\tsize')
        rows = [line.split('\t') for line in lines[1:]]
        self.assertEqual(len(rows), 4, r.stdout)
        self.assertEqual([row[0] for row in rows], ['INBOX'] * 4)
        self.assertEqual(len({row[1] for row in rows}), 1)
        self.assertEqual([int(row[2]) for row in rows], [1, 2, 3, 4])
        self.assertEqual([row[3] for row in rows],
                         ['<one@x.example>', '-', '<three@x.example>',
                          '<five@x.example>'])
        # Sizes: mboxrd quoting undone, Status removed, and the Unix
        # line ends of the mbox stored as CRLF (RFC 5322 2.1).
        expect = [msgs[0], msgs[1], msgs[2],
                  msgs[4].replace('Status: RO\n', '')]
        self.assertEqual([int(row[4]) for row in rows],
                         [len(m.replace('\n', '\r\n')) for m in expect])
        r = self.inst.marmot(['store', 'list', self.alice, '--mailbox',
                              'Nope'])
        self.assertEqual(r.returncode, 1)
        self.assertIn("no mailbox 'Nope'", r.stderr)
        r = self.inst.marmot(['store', 'list', self.alice, '--mailbox',
                              'INBOX'])
        self.assertEqual(r.stdout, '\n'.join(lines) + '\n')


if __name__ == '__main__':
    unittest.main()
