"""The outbound queue (issue 4 item 4) against a fake SMTP server written
here (asyncio, on 127.0.0.3 or 127.0.0.1) that Marmot reaches through
queue_relay_host: a message is delivered with its envelope and bytes
intact; a 550 gives exactly one DSN (RFC 3464, null sender, to the
original sender, with Final-Recipient, Status and the original headers)
and a 451 is retried with a growing attempt count until accepted; `marmot
queue list/show/hold/release/flush/delete` act on the running server; and
on the client side of STARTTLS, a "250 injected" sent in the same segment
as the 220 is never taken for the answer to the EHLO after TLS.

Messages are handed to the queue with `marmot queue inject` (SMTP
submission is wired by another part of issue 4). With queue_relay_host
every message, the DSNs included, goes to the fake server, which is how
the tests see the DSN; local delivery of DSNs to a local sender's mailbox
comes with the delivery path."""

import asyncio
import email
import email.policy
import os
import re
import signal
import smtplib
import socket
import ssl
import threading
import time
import unittest

import harness
from harness import DOMAIN, Instance

REMOTE = 'remote.example'


def loopback_host():
    """127.0.0.3 when it can be bound (it can on Linux), else 127.0.0.1."""
    s = socket.socket()
    try:
        s.bind(('127.0.0.3', 0))
        return '127.0.0.3'
    except OSError:
        return '127.0.0.1'
    finally:
        s.close()


class FakeSMTP:
    """A small SMTP server: records every transaction; replies come from
    rcpt_reply(address) and data_reply(transaction) so a test can script
    failures. With starttls_context it offers STARTTLS; with inject it
    answers STARTTLS with "220 go\\r\\n250 injected\\r\\n" in one write and
    then watches whether the client speaks before the EHLO reply."""

    def __init__(self, host, starttls_context=None, inject=False):
        self.host = host
        self.starttls_context = starttls_context
        self.inject = inject
        self.transactions = []  # dicts: sender, rcpts, data, tls, params
        self.commands = []
        self.violations = []
        self.sessions = 0
        self.rcpt_reply = lambda addr: '250 2.1.5 ok'
        self.data_reply = lambda tx: '250 2.0.0 queued'
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError('fake SMTP server did not start')

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._session, self.host, 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def close(self):
        async def shutdown():
            self.server.close()
            tasks = [t for t in asyncio.all_tasks()
                     if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()
        self.loop.call_soon_threadsafe(
            lambda: self.loop.create_task(shutdown()))
        self.thread.join(10)
        self.loop.close()

    def delivered(self):
        with self.lock:
            return list(self.transactions)

    async def _session(self, reader, writer):
        self.sessions += 1
        tls = False
        tx = None

        async def reply(text):
            writer.write(text.encode() + b'\r\n')
            await writer.drain()

        await reply('220 fake.' + REMOTE + ' ESMTP')
        try:
            while True:
                line = await asyncio.wait_for(reader.readline(), 30)
                if not line:
                    break
                cmd = line.decode('utf-8', 'replace').rstrip('\r\n')
                with self.lock:
                    self.commands.append((tls, cmd))
                verb = cmd.split(' ', 1)[0].upper()
                if verb == 'EHLO':
                    if tls and self.inject:
                        # A client that took "250 injected" for this
                        # EHLO's answer would speak now.
                        try:
                            early = await asyncio.wait_for(
                                reader.readline(), 0.7)
                            if early:
                                with self.lock:
                                    self.violations.append(
                                        early.decode('utf-8', 'replace'))
                        except asyncio.TimeoutError:
                            pass
                    ext = ['fake.' + REMOTE, 'PIPELINING', 'SIZE 10000000',
                           '8BITMIME', 'DSN', 'ENHANCEDSTATUSCODES']
                    if self.starttls_context is not None and not tls:
                        ext.append('STARTTLS')
                    for e in ext[:-1]:
                        writer.write(('250-%s\r\n' % e).encode())
                    await reply('250 ' + ext[-1])
                elif verb == 'STARTTLS' and self.starttls_context and not tls:
                    if self.inject:
                        writer.write(b'220 go\r\n250 injected\r\n')
                    else:
                        writer.write(b'220 go\r\n')
                    await writer.drain()
                    await writer.start_tls(self.starttls_context)
                    tls = True
                    tx = None
                elif verb == 'HELO':
                    await reply('250 fake.' + REMOTE)
                elif verb == 'MAIL':
                    m = re.match(r'MAIL FROM:<([^>]*)>(.*)$', cmd, re.I)
                    tx = {'sender': m.group(1), 'params': m.group(2).strip(),
                          'rcpts': [], 'rcpt_params': [], 'tls': tls}
                    await reply('250 2.1.0 ok')
                elif verb == 'RCPT':
                    m = re.match(r'RCPT TO:<([^>]*)>(.*)$', cmd, re.I)
                    r = self.rcpt_reply(m.group(1))
                    if r.startswith('2'):
                        tx['rcpts'].append(m.group(1))
                        tx['rcpt_params'].append(m.group(2).strip())
                    await reply(r)
                elif verb == 'DATA':
                    await reply('354 go ahead')
                    data = b''
                    while True:
                        chunk = await asyncio.wait_for(reader.readline(), 30)
                        if not chunk:
                            return
                        if chunk == b'.\r\n':
                            break
                        if chunk.startswith(b'.'):
                            chunk = chunk[1:]
                        data += chunk
                    tx['data'] = data
                    r = self.data_reply(tx)
                    if r.startswith('2'):
                        with self.lock:
                            self.transactions.append(tx)
                    tx = None
                    await reply(r)
                elif verb == 'RSET':
                    tx = None
                    await reply('250 2.0.0 ok')
                elif verb == 'NOOP':
                    await reply('250 2.0.0 ok')
                elif verb == 'QUIT':
                    await reply('221 2.0.0 bye')
                    break
                else:
                    await reply('502 5.5.2 unknown command')
        except (asyncio.TimeoutError, ConnectionError, ssl.SSLError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass


def wait_for(pred, timeout=20.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


MESSAGE = ('From: Alice <alice@%s>\r\n'
           'To: Bob <bob@%s>\r\n'
           'Subject: queue test %%s\r\n'
           'Message-ID: <%%s@%s>\r\n'
           '\r\n'
           'Hello Bob.\r\n'
           '.leading dot survives stuffing\r\n'
           '..two dots too\r\n' % (DOMAIN, REMOTE, DOMAIN))


class QueueCase(unittest.TestCase):
    starttls = False
    inject_reply = False
    retry_min = '1s'
    retry_max = '2s'
    extra = ''

    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.cleanup)
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)
        ctx = None
        if self.starttls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.inst.cert_path, self.inst.key_path)
        self.fake = FakeSMTP(loopback_host(), ctx, self.inject_reply)
        self.addCleanup(self.fake.close)
        with open(os.path.join(self.inst.data, 'marmot.conf'), 'a') as f:
            f.write('\nqueue_relay_host = %s:%d\n' % (self.fake.host,
                                                     self.fake.port))
            f.write('queue_retry_min = %s\nqueue_retry_max = %s\n'
                    % (self.retry_min, self.retry_max))
            f.write('queue_scan_interval = 1s\nqueue_timeout = 10s\n')
            f.write(self.extra)
        self.inst.start()
        self.alice = 'alice@' + DOMAIN

    def inject(self, rcpts, tag, sender=None):
        body = MESSAGE % (tag, tag)
        r = self.inst.marmot(['queue', 'inject'] + rcpts +
                             ['--from', sender or self.alice], input=body)
        self.inst.check_ok(r, 'marmot queue inject')
        m = re.match(r'queued ([0-9a-f]{32})$', r.stdout.strip())
        self.assertIsNotNone(m, r.stdout)
        return m.group(1), body

    def queue_list(self):
        r = self.inst.marmot(['queue', 'list'])
        self.inst.check_ok(r, 'marmot queue list')
        return r.stdout

    def show(self, qid):
        return self.inst.marmot(['queue', 'show', qid])

    def attempts(self, qid):
        r = self.show(qid)
        if r.returncode != 0:
            return None
        m = re.search(r'attempts=(\d+)', r.stdout)
        return int(m.group(1)) if m else None

    def queue_empty(self):
        return self.queue_list().strip().splitlines()[-1] == '0 messages'



class DeliveryTest(QueueCase):
    def test_delivered(self):
        qid, body = self.inject(['bob@' + REMOTE, 'carol@' + REMOTE], 'one')
        self.assertTrue(wait_for(lambda: self.fake.delivered()),
                        'nothing reached the fake server')
        self.assertTrue(wait_for(self.queue_empty), self.queue_list())
        txs = self.fake.delivered()
        self.assertEqual(len(txs), 1, txs)
        tx = txs[0]
        self.assertEqual(tx['sender'], self.alice)
        # One transaction with both recipients of the domain.
        self.assertEqual(tx['rcpts'], ['bob@' + REMOTE, 'carol@' + REMOTE])
        self.assertEqual(tx['data'], body.encode())
        self.assertIn('SIZE=%d' % len(body), tx['params'])
        self.assertIn('RET=HDRS', tx['params'])
        r = self.show(qid)
        self.assertNotEqual(r.returncode, 0)

    def test_reuse_connection(self):
        for i in range(3):
            self.inject(['bob@' + REMOTE], 'reuse%d' % i)
        self.assertTrue(wait_for(lambda: len(self.fake.delivered()) == 3))
        self.assertTrue(wait_for(self.queue_empty))
        # Three messages, fewer sessions (at most queue_max_per_domain
        # in parallel, reused in between).
        self.assertLessEqual(self.fake.sessions, 3)

    def local_messages(self, address):
        r = self.inst.marmot(['store', 'list', address])
        if r.returncode != 0:
            return []
        return [l for l in r.stdout.splitlines() if 'INBOX' in l]

    def test_550_one_dsn(self):
        self.inst.add_user(self.alice)
        self.fake.rcpt_reply = (
            lambda a: '550 5.1.1 no such user here'
            if a.startswith('bob@') else '250 2.1.5 ok')
        qid, body = self.inject(['bob@' + REMOTE, 'carol@' + REMOTE], 'fail')
        # The DSN goes to alice's local mailbox (through the spool, like
        # mail from SMTP), not to the remote side.
        self.assertTrue(wait_for(lambda: self.local_messages(self.alice),
                                 timeout=30),
                        'no DSN in the sender\'s mailbox')
        self.assertTrue(wait_for(self.queue_empty), self.queue_list())
        time.sleep(3)  # a second DSN would arrive by now
        self.assertEqual(len(self.local_messages(self.alice)), 1)
        self.assertEqual([t for t in self.fake.delivered()
                          if t['sender'] == ''], [])
        normal = self.fake.delivered()
        self.assertEqual(len(normal), 1)
        self.assertEqual(normal[0]['rcpts'], ['carol@' + REMOTE])
        # The CLI runs as the data directory's owner.
        out = os.path.join(self.inst.dir, 'export')
        os.mkdir(out)
        st = os.stat(self.inst.data)
        os.chown(out, st.st_uid, st.st_gid)
        mbox = os.path.join(out, 'dsn.mbox')
        self.inst.check_ok(self.inst.marmot(['export', self.alice, '--mbox',
                                             mbox, '--mailbox', 'INBOX']),
                           'marmot export')
        with open(mbox, 'rb') as f:
            data = f.read()
        data = data.split(b'\n', 1)[1]  # the mbox From_ line
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
        self.assertEqual(msg.get_content_type(), 'multipart/report')
        self.assertEqual(msg.get_param('report-type'), 'delivery-status')
        self.assertEqual(msg['Auto-Submitted'], 'auto-replied')
        # RFC 5321 4.4: the null reverse-path as Return-Path.
        self.assertEqual(msg['Return-Path'], '<>')
        parts = msg.get_payload()
        self.assertEqual([p.get_content_type() for p in parts],
                         ['text/plain', 'message/delivery-status',
                          'text/rfc822-headers'])
        status = data.decode('utf-8', 'replace')
        self.assertIn('Final-Recipient: rfc822; bob@' + REMOTE, status)
        self.assertNotIn('Final-Recipient: rfc822; carol@', status)
        self.assertIn('Action: failed', status)
        self.assertIn('Status: 5.1.1', status)
        self.assertIn('Diagnostic-Code: smtp; 550 5.1.1 no such user here',
                      status)
        self.assertIn('Reporting-MTA: dns; ' + harness.HOSTNAME, status)
        self.assertIn('Subject: queue test fail', parts[2].as_string())
        self.assertNotIn('Hello Bob', parts[2].as_string())

    def test_remote_sender_dsn_goes_out(self):
        sender = 'someone@elsewhere.example'
        self.fake.rcpt_reply = lambda a: '550 5.1.1 no such user here'
        self.fake_accept_null = True
        self.inject(['bob@' + REMOTE], 'remote-dsn', sender=sender)
        dsns = lambda: [t for t in self.fake.delivered() if t['sender'] == '']
        self.fake.rcpt_reply = (lambda a: '250 2.1.5 ok' if a == sender
                                else '550 5.1.1 no such user here')
        self.assertTrue(wait_for(dsns), 'no DSN went out')
        self.assertTrue(wait_for(self.queue_empty), self.queue_list())
        time.sleep(2)
        self.assertEqual(len(dsns()), 1)
        self.assertEqual(dsns()[0]['rcpts'], [sender])
        self.assertIn(b'Status: 5.1.1', dsns()[0]['data'])

    def test_null_sender_no_dsn(self):
        self.fake.rcpt_reply = lambda a: '550 5.1.1 no such user'
        r = self.inst.marmot(['queue', 'inject', 'bob@' + REMOTE],
                             input=MESSAGE % ('null', 'null'))
        self.inst.check_ok(r, 'inject with null sender')
        self.assertTrue(wait_for(self.queue_empty), self.queue_list())
        time.sleep(2)
        self.assertEqual(self.fake.delivered(), [])
        self.assertTrue(self.queue_empty())

    def test_451_retried(self):
        tries = []

        def rcpt(addr):
            tries.append(time.monotonic())
            return ('451 4.7.1 greylisted, come back later'
                    if len(tries) < 3 else '250 2.1.5 ok')
        self.fake.rcpt_reply = rcpt
        qid, body = self.inject(['bob@' + REMOTE], 'retry')
        self.assertEqual(wait_for(lambda: self.attempts(qid) == 1 or None),
                         True, self.show(qid).stdout)
        r = self.show(qid)
        self.assertIn('451 4.7.1 greylisted', r.stdout)
        self.assertIn('pending', r.stdout)
        self.assertTrue(wait_for(lambda: len(self.fake.delivered()) == 1,
                                 timeout=30))
        self.assertTrue(wait_for(self.queue_empty))
        self.assertEqual(len(tries), 3)
        # Backoff: 1 s, then 2 s (doubling, capped at queue_retry_max).
        self.assertGreaterEqual(tries[1] - tries[0], 0.9)
        self.assertGreaterEqual(tries[2] - tries[1], 1.9)
        self.assertEqual(self.fake.delivered()[0]['data'], body.encode())


class ControlTest(QueueCase):
    retry_min = '1h'
    retry_max = '1h'

    def test_hold_release_flush_delete(self):
        self.fake.rcpt_reply = lambda a: '451 4.3.0 try later'
        qid, _ = self.inject(['bob@' + REMOTE], 'ctl')
        self.assertEqual(wait_for(lambda: self.attempts(qid) == 1 or None),
                         True)
        self.assertIn(qid, self.queue_list())

        r = self.inst.marmot(['queue', 'hold', qid])
        self.inst.check_ok(r, 'queue hold')
        self.assertIn('held: yes', self.show(qid).stdout)
        self.assertIn(' held', self.queue_list())
        # A held message is not tried, even when flushed.
        self.inst.check_ok(self.inst.marmot(['queue', 'flush', qid]),
                           'queue flush (held)')
        time.sleep(2)
        self.assertEqual(self.attempts(qid), 1)

        self.inst.check_ok(self.inst.marmot(['queue', 'release', qid]),
                           'queue release')
        self.assertIn('held: no', self.show(qid).stdout)
        time.sleep(2)
        self.assertEqual(self.attempts(qid), 1)  # next try is in 1 h

        self.inst.check_ok(self.inst.marmot(['queue', 'flush']),
                           'queue flush')
        self.assertEqual(wait_for(lambda: self.attempts(qid) == 2 or None),
                         True, self.show(qid).stdout)

        self.inst.check_ok(self.inst.marmot(['queue', 'delete', qid]),
                           'queue delete')
        self.assertTrue(self.queue_empty(), self.queue_list())
        self.assertNotEqual(self.show(qid).returncode, 0)
        self.assertEqual(self.fake.delivered(), [])

    def test_show_is_terminal_safe(self):
        self.fake.rcpt_reply = lambda a: '451 4.3.0 \x1b[2J later'
        body = ('Subject: \x1b]0;owned\x07 hello\r\nX-Esc: \x1b[31m\r\n'
                '\r\nbody\r\n')
        r = self.inst.marmot(['queue', 'inject', 'bob@' + REMOTE, '--from',
                              'ev\x1bil@' + DOMAIN], input=body)
        self.inst.check_ok(r, 'inject')
        qid = r.stdout.split()[1]
        self.assertTrue(wait_for(lambda: self.attempts(qid) == 1))
        for args in (['show', qid], ['list']):
            out = self.inst.marmot(['queue'] + args)
            self.inst.check_ok(out, 'queue ' + args[0])
            self.assertNotIn('\x1b', out.stdout)
            self.assertNotIn('\x07', out.stdout)
        self.assertIn('Subject: ?]0;owned? hello', self.show(qid).stdout)

    def test_bad_ids(self):
        for args in (['show', 'nope'], ['delete', '../../etc/passwd'],
                     ['hold', '0' * 31], ['frobnicate']):
            r = self.inst.marmot(['queue'] + args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
        r = self.inst.marmot(['queue', 'delete', '0' * 32])
        self.assertEqual(r.returncode, 1)
        self.assertIn('no such message', r.stderr)

    def test_encrypted_at_rest(self):
        self.fake.rcpt_reply = lambda a: '451 4.3.0 try later'
        canary = 'zqQueueCanary7731'
        qid, _ = self.inject(['bob@' + REMOTE], canary)
        qdir = os.path.join(self.inst.data, 'queue')
        for name in os.listdir(qdir):
            path = os.path.join(qdir, name)
            if os.path.isfile(path):
                with open(path, 'rb') as f:
                    data = f.read()
                self.assertNotIn(canary.encode(), data, name)
                self.assertNotIn(b'bob@' + REMOTE.encode(), data, name)
        key = os.path.join(self.inst.data, 'queue.key')
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertEqual(os.path.getsize(key), 32)


class ExpiryTest(QueueCase):
    extra = 'queue_max_age = 4s\n'

    def test_expired_after_max_age(self):
        self.inst.add_user(self.alice)
        self.fake.rcpt_reply = lambda a: '451 4.2.0 mailbox busy'
        qid, _ = self.inject(['bob@' + REMOTE], 'expire')
        self.assertTrue(wait_for(lambda: (self.attempts(qid) or 0) >= 2),
                        self.show(qid).stdout)
        # RFC 5321 4.5.4.1: after queue_max_age the message fails; one
        # DSN with the RFC 3463 "delivery time expired" status.
        self.assertTrue(wait_for(self.queue_empty, timeout=30),
                        self.queue_list())
        msgs = wait_for(lambda: DeliveryTest.local_messages(self,
                                                            self.alice))
        self.assertEqual(len(msgs), 1, msgs)
        log = open(self.inst.log_path, encoding='utf-8',
                   errors='replace').read()
        self.assertIn('4.4.7 delivery time expired', log)
        self.assertEqual(self.fake.delivered(), [])


class FutureReleaseTest(QueueCase):
    """RFC 4865 through submission: HOLDFOR keeps the message in the
    queue until its time. Skipped while submission does not offer
    FUTURERELEASE (it comes with the SMTP front)."""

    def test_holdfor(self):
        body = MESSAGE % ('hold', 'hold')
        t0 = time.monotonic()
        submit(self, self.alice, ['bob@' + REMOTE], body, ['HOLDFOR=4'],
               'futurerelease')
        listing = self.queue_list()
        self.assertIn('hold_until=', listing)
        time.sleep(2)
        self.assertEqual(self.fake.delivered(), [])
        self.assertTrue(wait_for(lambda: self.fake.delivered(), timeout=20))
        self.assertGreaterEqual(time.monotonic() - t0, 3.5)
        self.assertTrue(wait_for(self.queue_empty))


def submit(case, sender, rcpts, body, mail_options, needed_extn,
           rcpt_options=()):
    """Submits over 587 (STARTTLS, AUTH) with MAIL parameters; fails the
    test when submission does not offer needed_extn."""
    password = case.inst.add_user(sender)
    s = smtplib.SMTP(harness.LOOPBACK, case.inst.ports['submission'],
                     timeout=20)
    try:
        s.ehlo(harness.HOSTNAME)
        if not s.has_extn('starttls'):
            case.fail('submission does not offer STARTTLS')
        s.starttls(context=harness.insecure_context())
        s.ehlo(harness.HOSTNAME)
        if not s.has_extn('auth'):
            case.fail('submission does not offer AUTH')
        s.login(sender, password)
        s.ehlo(harness.HOSTNAME)
        if not s.has_extn(needed_extn):
            case.fail('submission does not offer %s' % needed_extn)
        s.sendmail(sender, rcpts, body.encode(), mail_options=mail_options,
                   rcpt_options=list(rcpt_options))
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass


class DelayDSNTest(QueueCase):
    """RFC 3461 4.1: NOTIFY=DELAY gets one "delayed" DSN once the message
    has waited longer than queue_retry_max (2 s here); retries go on."""

    def test_one_delay_dsn(self):
        self.fake.rcpt_reply = lambda a: '451 4.2.0 mailbox busy'
        body = MESSAGE % ('delay', 'delay')
        submit(self, self.alice, ['bob@' + REMOTE], body, [], 'dsn',
               rcpt_options=['NOTIFY=DELAY,FAILURE'])
        msgs = wait_for(lambda: DeliveryTest.local_messages(self,
                                                            self.alice),
                        timeout=30)
        self.assertTrue(msgs, 'no delay DSN')
        listing = self.queue_list()
        qid = re.search(r'^([0-9a-f]{32}) ', listing, re.M).group(1)
        self.assertTrue(wait_for(lambda: (self.attempts(qid) or 0) >= 4))
        self.assertEqual(len(DeliveryTest.local_messages(self, self.alice)),
                         1)
        log = open(self.inst.log_path, encoding='utf-8',
                   errors='replace').read()
        self.assertEqual(log.count('queue.dsn.delay_queued'), 1)
        self.inst.check_ok(self.inst.marmot(['queue', 'delete', qid]),
                           'queue delete')


class RequireTLSTest(QueueCase):
    """RFC 8689: a REQUIRETLS message is never sent in the clear; when no
    host offers TLS and REQUIRETLS it fails with 5.7.30 and a DSN."""

    def test_never_in_the_clear(self):
        body = MESSAGE % ('rtls', 'rtls')
        submit(self, self.alice, ['bob@' + REMOTE], body, ['REQUIRETLS'],
               'requiretls')
        self.assertTrue(wait_for(lambda: DeliveryTest.local_messages(
            self, self.alice), timeout=30), 'no DSN')
        self.assertTrue(wait_for(self.queue_empty))
        self.assertEqual(self.fake.delivered(), [])
        self.assertEqual([c for c in self.fake.commands
                          if c[1].upper().startswith('MAIL')], [])
        log = open(self.inst.log_path, encoding='utf-8',
                   errors='replace').read()
        self.assertIn('5.7.30', log)


class CrashTest(QueueCase):
    """kill -9 of the front while the queue delivers: every queued
    message arrives, and duplicates only from transactions in flight at
    a kill (at-least-once: the remote's 250 came, our state save did
    not)."""
    extra = 'queue_max_per_domain = 2\n'

    def test_kill_front_while_delivering(self):
        n = 40
        self.fake.data_reply = lambda tx: (time.sleep(0.05),
                                           '250 2.0.0 queued')[1]
        tags = []
        for i in range(n):
            tag = 'crash%02d' % i
            self.inject(['bob@' + REMOTE], tag)
            tags.append(tag)
        kills = 0
        for _ in range(6):
            time.sleep(0.8)
            if len(self.fake.delivered()) >= n:
                break
            pid = self.inst.role_pid('front')
            os.kill(pid, signal.SIGKILL)
            kills += 1
            # The master starts a new front.
            def restarted():
                pids = self.inst.role_pids('front')
                return len(pids) == 1 and pids[0] != pid
            self.assertTrue(wait_for(restarted, timeout=15),
                            'the master did not restart the front')
        self.assertTrue(wait_for(lambda: self.queue_empty(), timeout=60),
                        self.queue_list())
        got = {}
        for tx in self.fake.delivered():
            m = re.search(rb'Subject: queue test (crash\d+)', tx['data'])
            self.assertIsNotNone(m)
            got[m.group(1).decode()] = got.get(m.group(1).decode(), 0) + 1
        self.assertEqual(sorted(got), tags, 'a message was lost')
        dups = sum(c - 1 for c in got.values())
        harness.note('%d kills, %d duplicates' % (kills, dups))
        # At most the transactions in flight at each kill.
        self.assertLessEqual(dups, kills * 2)


class StartTLSInjectionTest(QueueCase):
    starttls = True
    inject_reply = True

    def test_injected_reply_ignored(self):
        qid, body = self.inject(['bob@' + REMOTE], 'tls')
        self.assertTrue(wait_for(lambda: self.fake.delivered(), timeout=30),
                        'nothing delivered')
        self.assertEqual(self.fake.violations, [],
                         'the client spoke before the EHLO reply after TLS')
        tx = self.fake.delivered()[0]
        self.assertTrue(tx['tls'])
        self.assertEqual(tx['data'], body.encode())
        ehlos = [c for c in self.fake.commands if c[1].startswith('EHLO')]
        self.assertEqual([t for t, _ in ehlos[:2]], [False, True])


class StartTLSTest(QueueCase):
    starttls = True

    def test_opportunistic_tls(self):
        self.inject(['bob@' + REMOTE], 'tls2')
        self.assertTrue(wait_for(lambda: self.fake.delivered(), timeout=30))
        self.assertTrue(self.fake.delivered()[0]['tls'])


if __name__ == '__main__':
    unittest.main()
