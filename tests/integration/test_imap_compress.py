"""IMAP COMPRESS=DEFLATE (RFC 4978) over IMAPS: advertised only after
login, refused before it; after "c OK" both directions are raw deflate
(checked with Python's zlib, an independent implementation) under TLS;
a second COMPRESS gets NO [COMPRESSIONACTIVE]; a deflate bomb (a 64 MiB
line of one byte in a few tens of KiB) ends in a BYE and a close, not in
memory use."""

import socket
import ssl
import time
import unittest
import zlib

import harness
from harness import LineClient, SharedInstance, imap_quote


class Deflated(LineClient):
    """The client side of a compressed IMAP connection (LineClient's
    imap_tagged() reads through read_line() here)."""

    def __init__(self, sock, leftover=b''):
        self.sock = sock
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.decomp = zlib.decompressobj(-15)
        self.plain = self.decomp.decompress(leftover)

    def send(self, data):
        self.sock.sendall(self.comp.compress(data) +
                          self.comp.flush(zlib.Z_SYNC_FLUSH))

    def read_line(self, limit=1 << 20):
        while b'\n' not in self.plain:
            if len(self.plain) > limit:
                raise AssertionError('line too long')
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError('closed; partial %r' % self.plain[:200])
            self.plain += self.decomp.decompress(chunk)
        line, self.plain = self.plain.split(b'\n', 1)
        return line.rstrip(b'\r').decode('utf-8', 'replace')


class ImapCompressTest(unittest.TestCase):
    def setUp(self):
        self.inst = SharedInstance.get()
        self.ctx = self.inst.ssl_context()
        self.addCleanup(harness.dump_log_on_failure, self, self.inst)

    def login(self):
        c = LineClient(self.inst.ports['imaps'], tls_context=self.ctx)
        self.addCleanup(c.close)
        greeting = c.read_line()
        self.assertTrue(greeting.startswith('* OK'), greeting)
        self.assertNotIn('COMPRESS=DEFLATE', greeting)
        c.cmd('p1 COMPRESS DEFLATE')
        _, tagged = c.imap_tagged('p1')
        self.assertTrue(tagged.startswith('p1 BAD'), tagged)
        c.cmd('l1 LOGIN %s %s' % (imap_quote(SharedInstance.user),
                                  imap_quote(SharedInstance.password)))
        _, tagged = c.imap_tagged('l1')
        self.assertTrue(tagged.startswith('l1 OK'), tagged)
        self.assertIn('COMPRESS=DEFLATE', tagged)
        return c

    def start(self, c):
        c.cmd('c1 COMPRESS DEFLATE')
        _, tagged = c.imap_tagged('c1')
        self.assertEqual(tagged, 'c1 OK DEFLATE active')
        # Whatever came after the OK is compressed already.
        z = Deflated(c.sock, c.buf)
        c.buf = b''
        return z

    def test_compressed_session(self):
        c = self.login()
        c.cmd('x1 COMPRESS LZW')
        _, tagged = c.imap_tagged('x1')
        self.assertTrue(tagged.startswith('x1 BAD'), tagged)
        z = self.start(c)
        z.send(b'n1 NOOP\r\n')
        _, tagged = z.imap_tagged('n1')
        self.assertTrue(tagged.startswith('n1 OK'), tagged)
        # Pipelined and split across flushes.
        z.send(b'n2 NOOP\r\nc2 CAPA')
        z.send(b'BILITY\r\ns1 SELECT INBOX\r\n')
        _, tagged = z.imap_tagged('n2')
        self.assertTrue(tagged.startswith('n2 OK'), tagged)
        untagged, tagged = z.imap_tagged('c2')
        self.assertTrue(tagged.startswith('c2 OK'), tagged)
        self.assertTrue(any('COMPRESS=DEFLATE' in u for u in untagged))
        untagged, tagged = z.imap_tagged('s1')
        self.assertTrue(tagged.startswith('s1 OK'), tagged)
        self.assertTrue(any(u.endswith(' EXISTS') for u in untagged),
                        untagged)
        z.send(b'c3 COMPRESS DEFLATE\r\n')
        _, tagged = z.imap_tagged('c3')
        self.assertTrue(tagged.startswith('c3 NO [COMPRESSIONACTIVE]'),
                        tagged)
        z.send(b'o1 LOGOUT\r\n')
        untagged, tagged = z.imap_tagged('o1')
        self.assertTrue(tagged.startswith('o1 OK'), tagged)
        self.assertIn('* BYE Logging out', untagged)

    def test_deflate_bomb(self):
        c = self.login()
        z = self.start(c)
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = b'a1 NOOP ' + b'x' * (64 * 1024 * 1024)
        data = comp.compress(bomb) + comp.flush(zlib.Z_SYNC_FLUSH)
        harness.note('bomb: %d MiB in %d KiB' % (len(bomb) >> 20,
                                                 len(data) >> 10))
        self.assertLess(len(data), 1 << 20)
        front = self.inst.role_pid('front')

        def rss():
            with open('/proc/%d/status' % front) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        return int(line.split()[1]) * 1024
            return 0
        before = rss()
        c.sock.settimeout(5.0)
        try:
            c.sock.sendall(data)
        except OSError:
            # The server may close (after its BYE) before taking it all:
            # a reset, a TLS EOF, or a send that stalls.
            pass
        lines = []
        closed = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                lines.append(z.read_line())
            except (EOFError, ConnectionResetError, ssl.SSLError):
                closed = True
                break
            except socket.timeout:
                break
        after = rss()
        harness.note('front RSS %.1f -> %.1f MiB' % (before / 1048576.0,
                                                     after / 1048576.0))
        # The parser's limit (lib-imap) or the front's line limit: a BYE
        # either way, then the close.
        self.assertTrue(any(x.startswith('* BYE ') for x in lines), lines)
        self.assertTrue(closed, 'still open after the BYE')
        self.assertLess(after - before, 32 * 1024 * 1024)


if __name__ == '__main__':
    unittest.main()
