"""Crash safety of SMTP delivery (issue 4, "Must show"): >= 20 rounds of
kill -9 (the front, which holds the SMTP sessions and commits messages;
the vault, which resolves recipients and merges spools; once the master,
then `marmot run` again on the same data directory) while four
concurrent smtplib clients deliver: two on port 25 with DATA (one of
them with two recipients per message), one on 25 with STARTTLS and BDAT
(two chunks per message), one on 587 with STARTTLS and AUTH. Every
message has its own Message-ID.

Acknowledgement and retries, precisely: a message is acknowledged by the
250 reply to the end of its data; a client retries a message until it
gets that 250, as a real client retries what it saw no acknowledgement
for. A message whose data was sent but whose connection died before any
reply is "in flight": it may have been made durable without an
acknowledgement, and then its retry stores it a second time (the one
duplicate a retrying client causes with any SMTP server). A refusal (a
4xx/5xx reply, to RCPT, DATA or the end of the data) means the server did
not take the message: nothing of it may be stored. So at the end, after
the spools are merged, each message must be stored per recipient
1 (if acknowledged) + (the number of its in-flight attempts) times at
most, and at least once if it was acknowledged; nothing that no client
sent may be stored; `marmot store verify` passes for every account.

The same load and checks run once more with an orderly shutdown in
place of the kills: TERM_ROUNDS times SIGTERM to the master (the front
drains its sessions) and `marmot run` again. There no session may be
told 421 at the end of a message that the front then commits.

Every wait is bounded: the clients send while the killer runs, then
finish the message they are on (at most GRACE seconds); sized for well
under a minute under ASan on two cores; only 127.0.0.1 is used."""

import os
import random
import secrets
import shutil
import signal
import smtplib
import threading
import time
import unittest

import harness
import test_crash_safety
from harness import DOMAIN
from smtp_util import MailInstance, NO_TRANSACTIONS, mail_transactions

ALICE = 'alice@' + DOMAIN
BOB = 'bob@' + DOMAIN
CAROL = 'carol@' + DOMAIN

KILL_ROUNDS = 22  # >= 20
MASTER_ROUND = 11
TERM_ROUNDS = 3  # orderly shutdowns in the SIGTERM test
# Seconds between kills: the master restarts a role at once only if it
# lived more than a second.
KILL_INTERVAL = (1.0, 1.8)
GRACE = 30.0  # after the killer: finishing the current message
MAX_MESSAGES = 5000  # per client
RETRY_PAUSE = 0.1
MERGE_DEADLINE = 120.0


class Client:
    """One smtplib client sending numbered messages until told to stop,
    retrying each until it is acknowledged."""

    def __init__(self, test, k, port, starttls, login, rcpts, tag,
                 bdat=False):
        self.test = test
        self.inst = test.inst
        self.k = k
        self.port = port
        self.starttls = starttls
        self.login = login
        self.sender = login or 'sender%d@crash-remote.test' % k
        self.rcpts = rcpts
        self.tag = tag
        self.bdat = bdat
        self.sent = []  # message-ids in order
        self.acked = set()
        self.in_flight = {}  # message-id -> attempts that died unanswered
        self.refusals = 0
        self.history = {}  # message-id -> what each attempt got
        self.sessions = 0
        self.connect_failures = 0
        self.errors = []
        self.thread = threading.Thread(target=self.run, daemon=True,
                                       name='smtp-client-%d' % k)

    def message(self, n):
        msgid = '<c%d.%d.%s@crash.test>' % (self.k, n, self.tag)
        size = 40 * 1024 if n % 17 == 5 else 200
        text = ('From: %s\r\nTo: %s\r\nSubject: crash client %d message '
                '%d\r\nMessage-ID: %s\r\n\r\n' % (
                    self.sender, ', '.join(self.rcpts), self.k, n, msgid))
        body = ''.join('line %d of message %d %s\r\n' % (i, n, 'x' * 40)
                       for i in range(max(1, size // 60)))
        return msgid, (text + body).encode()

    def connect(self):
        port = self.inst.ports[self.port]
        if self.port == 'submissions':
            s = smtplib.SMTP_SSL('127.0.0.1', port, timeout=15,
                                 context=self.test.ctx,
                                 local_hostname='client.test.example')
        else:
            s = smtplib.SMTP('127.0.0.1', port, timeout=15,
                             local_hostname='client.test.example')
        try:
            s.ehlo()
            if self.starttls:
                s.starttls(context=self.test.ctx)
                s.ehlo()
            if self.login:
                s.login(self.login, self.test.mi.passwords[self.login])
        except BaseException:
            s.close()
            raise
        self.sessions += 1
        return s

    def note(self, msgid, what):
        self.history.setdefault(msgid, []).append(
            '%.2f %s' % (time.monotonic() - self.test.t0, what))

    def refused(self, s, msgid, what, code, msg):
        self.refusals += 1
        self.note(msgid, '%s refused: %s %r' % (what, code, msg[:80]))
        s.rset()
        return False

    def one(self, s, msgid, data):
        """One attempt; returns True if acknowledged. Raises on a dead
        connection (after recording an in-flight attempt if the data was
        under way)."""
        code, msg = s.mail(self.sender)
        if code != 250:
            return self.refused(s, msgid, 'MAIL', code, msg)
        for r in self.rcpts:
            code, msg = s.rcpt(r)
            if code != 250:
                return self.refused(s, msgid, 'RCPT', code, msg)
        try:
            if self.bdat:
                # Two chunks (RFC 3030 2), the second LAST.
                half = len(data) // 2
                s.send(b'BDAT %d\r\n' % half + data[:half])
                code, msg = s.getreply()
                if code != 250:
                    return self.refused(s, msgid, 'first BDAT chunk', code,
                                        msg)
                s.send(b'BDAT %d LAST\r\n' % (len(data) - half) +
                       data[half:])
                code, msg = s.getreply()
            else:
                code, msg = s.data(data)
        except smtplib.SMTPDataError as e:
            # DATA itself refused: nothing was sent.
            return self.refused(s, msgid, 'DATA', e.smtp_code,
                                e.smtp_error)
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            self.in_flight[msgid] = self.in_flight.get(msgid, 0) + 1
            self.note(msgid, 'in flight: %s: %s' % (type(e).__name__, e))
            raise
        if code == 250:
            self.note(msgid, 'acknowledged: %r' % msg[:80])
            return True
        return self.refused(s, msgid, 'end of data', code, msg)

    def run(self):
        s = None
        n = 0
        try:
            while n < MAX_MESSAGES:
                if self.test.stop.is_set():
                    break
                msgid, data = self.message(n)
                self.sent.append(msgid)
                while True:
                    if self.test.stop.is_set() and \
                            time.monotonic() > self.test.grace_deadline:
                        return
                    try:
                        if s is None:
                            s = self.connect()
                        if self.one(s, msgid, data):
                            self.acked.add(msgid)
                            break
                    except (smtplib.SMTPException, OSError) as e:
                        self.note(msgid, 'session: %s: %s'
                                  % (type(e).__name__, e))
                        if s is None:
                            self.connect_failures += 1
                        else:
                            try:
                                s.close()
                            except OSError:
                                pass
                        s = None
                    time.sleep(RETRY_PAUSE)
                n += 1
        except Exception as e:  # a bug in the client: report it
            self.errors.append('%s: %s' % (type(e).__name__, e))
        finally:
            if s is not None:
                try:
                    s.quit()
                except (smtplib.SMTPException, OSError):
                    pass


class SmtpCrashTest(unittest.TestCase):
    def setUp(self):
        # Client 3 submits far more than the default hourly limit.
        self.mi = MailInstance([ALICE, BOB, CAROL],
                               conf=[('submission_rate_limit', '0')])
        self.addCleanup(self.mi.cleanup)
        if not mail_transactions(self.mi.inst):
            self.fail(NO_TRANSACTIONS)
        self.inst = self.mi.inst
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)
        self.ctx = self.inst.ssl_context()
        self.stop = threading.Event()
        self.grace_deadline = 0.0
        self.t0 = time.monotonic()

    def kill_role(self, role):
        os.kill(self.inst.role_pid(role, timeout=20.0), signal.SIGKILL)

    def stop_master(self):
        """SIGTERM to the master: the orderly shutdown (the front drains
        its sessions), then `marmot run` again on the same data
        directory."""
        inst = self.inst
        os.kill(inst.master_pid, signal.SIGTERM)
        inst.proc.wait(timeout=30)
        inst.log_file.close()
        inst.log_file = None
        inst.proc = None
        inst.start(timeout=30.0)

    def test_kill_9_during_smtp_load(self):
        plan = [('master' if rnd == MASTER_ROUND
                 else ['front', 'vault'][rnd % 2])
                for rnd in range(KILL_ROUNDS)]
        kills = self.run_load(plan)
        self.assertGreaterEqual(sum(kills.values()), 20)
        self.assertEqual(kills['master'], 1)

    def test_orderly_shutdown_during_smtp_load(self):
        """SIGTERM to the master while messages are being committed: a
        session whose message is being made durable gets its 250 (or no
        reply), never a 421 for a message that is then stored."""
        kills = self.run_load(['master-term'] * TERM_ROUNDS)
        self.assertEqual(kills['master-term'], TERM_ROUNDS)

    def run_load(self, plan):
        """Runs the four clients while the killer works through plan (a
        list of 'front', 'vault', 'master' (kill -9) and 'master-term'
        (SIGTERM)), then checks what is stored. Returns the counts of
        kills by target."""
        tag = secrets.token_hex(4)
        clients = [
            Client(self, 0, 'smtp', False, None, [ALICE], tag),
            Client(self, 1, 'smtp', False, None, [BOB, CAROL], tag),
            Client(self, 2, 'smtp', True, None, [CAROL], tag, bdat=True),
            Client(self, 3, 'submission', True, ALICE, [BOB], tag),
        ]
        kills = {'front': 0, 'vault': 0, 'master': 0, 'master-term': 0}
        killer_errors = []
        stray_roles = []
        kill_log = []  # 'seconds target', after each kill

        def killer():
            try:
                for target in plan:
                    time.sleep(random.uniform(*KILL_INTERVAL))
                    if target == 'master':
                        stray_roles.extend(
                            test_crash_safety.CrashSafetyTest.kill_master(
                                self))
                    elif target == 'master-term':
                        self.stop_master()
                    else:
                        self.kill_role(target)
                    kills[target] += 1
                    kill_log.append('%.2f %s' % (time.monotonic() - self.t0,
                                                 target))
                # A last stretch without kills, so that every client gets
                # through to a live front again.
                time.sleep(2.0)
            except Exception as e:
                killer_errors.append('%s: %s' % (type(e).__name__, e))

        t0 = self.t0 = time.monotonic()
        for c in clients:
            c.thread.start()
        kthread = threading.Thread(target=killer, daemon=True,
                                   name='killer')
        kthread.start()
        kthread.join(timeout=len(plan) * (KILL_INTERVAL[1] + 35) + 60)
        self.assertFalse(kthread.is_alive(), 'the killer thread hangs')
        self.grace_deadline = time.monotonic() + GRACE
        self.stop.set()
        for c in clients:
            c.thread.join(timeout=GRACE + 30)
        loaded = time.monotonic() - t0
        self.assertEqual(killer_errors, [])
        for c in clients:
            self.assertFalse(c.thread.is_alive(), 'client %d hangs' % c.k)
            self.assertEqual(c.errors, [], 'client %d' % c.k)
        self.assertTrue(self.inst.running(), self.inst.log_text())

        accounts = (ALICE, BOB, CAROL)
        m0 = time.monotonic()
        self.mi.wait_merged(accounts, timeout=MERGE_DEADLINE)
        merge_wait = time.monotonic() - m0
        stored = {}  # (address, message-id) -> copies
        for address in accounts:
            for box, _uid, msgid, _size in self.mi.store_list(address):
                key = (address, msgid)
                stored[key] = stored.get(key, 0) + 1

        problems = []
        expected = set()
        allowance_used = 0
        acked_total = 0
        for c in clients:
            acked_total += len(c.acked)
            for msgid in c.sent:
                for r in c.rcpts:
                    expected.add((r, msgid))
                    n = stored.get((r, msgid), 0)
                    allowed = (1 if msgid in c.acked else 0) + \
                        c.in_flight.get(msgid, 0)
                    if msgid in c.acked and n == 0:
                        problems.append('acknowledged %s missing from %s; '
                                        'attempts: %r'
                                        % (msgid, r, c.history.get(msgid)))
                    elif n > allowed:
                        problems.append('%s stored %d times in %s (allowed '
                                        '%d: acknowledged %s, %d attempts '
                                        'in flight); attempts: %r'
                                        % (msgid, n, r, allowed,
                                           msgid in c.acked,
                                           c.in_flight.get(msgid, 0),
                                           c.history.get(msgid)))
                    elif n > 1 or (n == 1 and msgid not in c.acked):
                        allowance_used += n - (1 if msgid in c.acked
                                               else 0)
        for key, n in stored.items():
            if key not in expected:
                problems.append('%s holds %d unexpected message(s) %s'
                                % (key[0], n, key[1]))

        for address in accounts:
            r = self.inst.marmot(['store', 'verify', address], timeout=180)
            if r.returncode != 0:
                problems.append('store verify %s: %s%s'
                                % (address, r.stdout, r.stderr))

        log = self.inst.log_text(limit=10 ** 8)
        harness.note('%d messages acknowledged by %d clients in %.1f s '
                     '(%d SMTP sessions, %d connection failures, %d '
                     'refusals retried); in-flight attempts %d, copies '
                     'they left %d'
                     % (acked_total, len(clients), loaded,
                        sum(c.sessions for c in clients),
                        sum(c.connect_failures for c in clients),
                        sum(c.refusals for c in clients),
                        sum(sum(c.in_flight.values()) for c in clients),
                        allowance_used))
        harness.note('kill rounds: %r (roles left by the dead master: '
                     '%d); vault starts %d, front starts %d; merged %.1f s '
                     'after the load'
                     % (kills, len(stray_roles),
                        log.count(' vault.started '),
                        log.count(' front.start '), merge_wait))
        harness.note('per client acknowledged: %r'
                     % [len(c.acked) for c in clients])
        if problems or stray_roles:
            harness.note('kills (seconds from the start, after the kill): '
                         '%s' % ', '.join(kill_log))
            keep = os.environ.get('MARMOT_KEEP_LOGS')
            if keep:  # a directory to keep the whole server log in
                path = os.path.join(keep, 'smtp-crash-%s.log' % tag)
                shutil.copy(self.inst.log_path, path)
                harness.note('server log kept in %s' % path)
        self.assertEqual(problems[:20], [], '%d problems' % len(problems))
        for c in clients:
            self.assertGreaterEqual(len(c.acked), 20, 'client %d got only '
                                    '%d acknowledgements' % (c.k,
                                                             len(c.acked)))
        return kills

if __name__ == '__main__':
    unittest.main()
