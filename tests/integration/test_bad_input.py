"""Hostile input: a 100 KiB line without CRLF on SMTP, IMAP and POP3 gets
an error reply or a close, and the server still serves new connections."""

import socket
import time
import unittest

import harness
from harness import Instance, LineClient

LONG = b'A' * (100 * 1024)


class LongLineTest(unittest.TestCase):
    # One instance for the class, started lazily from setUp so that a
    # failure to start fails each test with the reason (a setUpClass error
    # would give no TAP line per test).
    inst = None
    start_error = None

    def setUp(self):
        cls = type(self)
        if cls.start_error:
            self.fail('instance did not start: ' + cls.start_error)
        if cls.inst is None:
            inst = None
            try:
                inst = Instance()
                inst.start()
                inst.wait_all_ports()
            except BaseException as e:
                cls.start_error = '%s: %s' % (type(e).__name__, e)
                if inst is not None:
                    inst.cleanup()
                raise
            cls.inst = inst

    @classmethod
    def tearDownClass(cls):
        if cls.inst is not None:
            cls.inst.cleanup()
            cls.inst = None

    def send_long_line(self, port, error_prefixes):
        """Sends the line; returns what came back: ('reply', line) or
        ('closed', partial bytes)."""
        c = LineClient(self.inst.ports[port], timeout=10)
        self.addCleanup(c.close)
        greeting = c.read_line()
        try:
            c.send(LONG)
        except (BrokenPipeError, ConnectionResetError):
            return 'closed', b''
        deadline = time.monotonic() + 10
        got = b''
        c.sock.settimeout(1.0)
        while time.monotonic() < deadline:
            try:
                chunk = c.sock.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return 'closed', got
            if not chunk:
                return 'closed', got
            got += chunk
            if b'\n' in got:
                line = got.split(b'\n', 1)[0].decode('utf-8', 'replace')
                self.assertTrue(line.startswith(error_prefixes),
                                'after a 100 KiB line without CRLF on %s '
                                '(greeting %r): expected an error reply '
                                'starting with %r or a close, got %r'
                                % (port, greeting, error_prefixes, line))
                return 'reply', line
        self.fail('after a 100 KiB line without CRLF on %s: no reply and no '
                  'close within 10 s (got %r)' % (port, got[:200]))

    def still_serves(self, port):
        self.assertTrue(self.inst.running(), 'master exited:\n'
                        + self.inst.log_text())
        self.assertTrue(self.inst.port_answers(port, timeout=5.0),
                        '%s no longer answers after the long line:\n%s'
                        % (port, self.inst.log_text()))

    def test_smtp(self):
        outcome = self.send_long_line('smtp', ('5',))
        harness.note('SMTP: %s %r' % outcome)
        self.still_serves('smtp')

    def test_submission(self):
        outcome = self.send_long_line('submission', ('5',))
        harness.note('submission: %s %r' % outcome)
        self.still_serves('submission')

    def test_imap(self):
        outcome = self.send_long_line('imap', ('* BAD', '* BYE'))
        harness.note('IMAP: %s %r' % outcome)
        self.still_serves('imap')

    def test_pop3(self):
        outcome = self.send_long_line('pop3', ('-ERR',))
        harness.note('POP3: %s %r' % outcome)
        self.still_serves('pop3')


if __name__ == '__main__':
    unittest.main()
