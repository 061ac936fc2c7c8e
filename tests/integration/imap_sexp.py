"""Reading IMAP FETCH answers as values, for comparing two servers: a small
raw client that returns each untagged response with its literals inline,
and a parser of RFC 9051 9 "nstring"/"list" syntax into Python values
(bytes for strings and atoms, None for NIL, lists). Quoted strings and
literals with the same content are the same value: a server may choose
either form (RFC 9051 4.3). Standard library only."""

import socket

LOOPBACK = '127.0.0.1'
# Bounds for what one answer may hold.
MAX_LITERAL = 64 * 1024 * 1024
MAX_LINES = 1000000


class ParseError(Exception):
    pass


class RawImap:
    """A line client for IMAP that keeps literals: read_response() returns
    one whole response (its text with every literal's bytes inline, and
    the literal markers kept) as a list of parts, which parse() reads."""

    def __init__(self, port, timeout=60.0, host=LOOPBACK, tls_context=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls_context is not None:
            self.sock = tls_context.wrap_socket(self.sock)
        self.rbuf = bytearray()
        self.rpos = 0
        self.tag_n = 0
        self.greeting = self.read_line()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        # A bytearray and a read position: no copy of the buffer per line
        # (answers of many megabytes arrive in one buffer).
        if self.rpos > (1 << 20):
            del self.rbuf[:self.rpos]
            self.rpos = 0
        data = self.sock.recv(1 << 18)
        if not data:
            raise EOFError('server closed the connection')
        self.rbuf += data

    def read_line(self):
        while True:
            i = self.rbuf.find(b'\r\n', self.rpos)
            if i >= 0:
                line = bytes(self.rbuf[self.rpos:i])
                self.rpos = i + 2
                return line
            if len(self.rbuf) - self.rpos > MAX_LITERAL:
                raise ParseError('line too long')
            self._fill()

    def read_exact(self, n):
        while len(self.rbuf) - self.rpos < n:
            self._fill()
        data = bytes(self.rbuf[self.rpos:self.rpos + n])
        self.rpos += n
        return data

    def read_response(self):
        """One response: bytes with literals as b'{N}\\r\\n' + data."""
        out = b''
        for _ in range(MAX_LINES):
            line = self.read_line()
            out += line
            if line.endswith(b'}') and b'{' in line:
                n = line[line.rindex(b'{') + 1:-1].rstrip(b'+')
                if n.isdigit():
                    size = int(n)
                    if size > MAX_LITERAL:
                        raise ParseError('literal too large: %d' % size)
                    out += b'\r\n' + self.read_exact(size)
                    continue
            return out
        raise ParseError('too many literals in one response')

    def command(self, text):
        """Sends TAG TEXT; returns (untagged responses, tagged line)."""
        self.tag_n += 1
        tag = b'x%d' % self.tag_n
        self.sock.sendall(tag + b' ' + text.encode() + b'\r\n')
        untagged = []
        for _ in range(MAX_LINES):
            r = self.read_response()
            if r.startswith(tag + b' '):
                return untagged, r
            untagged.append(r)
        raise ParseError('no tagged answer to %r' % text)

    def ok(self, text):
        untagged, tagged = self.command(text)
        if not tagged.split(b' ', 2)[1:2] == [b'OK']:
            raise AssertionError('%s: %r' % (text, tagged))
        return untagged


def parse(data, pos=0):
    """Parses one value at data[pos:] -> (value, new pos)."""
    n = len(data)
    while pos < n and data[pos:pos + 1] == b' ':
        pos += 1
    if pos >= n:
        raise ParseError('value expected at end')
    c = data[pos:pos + 1]
    if c == b'(':
        out = []
        pos += 1
        for _ in range(n):
            while pos < n and data[pos:pos + 1] == b' ':
                pos += 1
            if pos >= n:
                raise ParseError('unterminated list')
            if data[pos:pos + 1] == b')':
                return out, pos + 1
            v, pos = parse(data, pos)
            out.append(v)
        raise ParseError('list too long')
    if c == b'"':
        out = bytearray()
        pos += 1
        while pos < n:
            ch = data[pos:pos + 1]
            if ch == b'\\' and pos + 1 < n:
                out += data[pos + 1:pos + 2]
                pos += 2
                continue
            if ch == b'"':
                return bytes(out), pos + 1
            out += ch
            pos += 1
        raise ParseError('unterminated quoted string')
    if c == b'{' or data[pos:pos + 2] == b'~{':
        if c == b'~':
            pos += 1
        end = data.index(b'}', pos)
        size = int(data[pos + 1:end].rstrip(b'+'))
        if data[end + 1:end + 3] != b'\r\n':
            raise ParseError('literal without CRLF')
        start = end + 3
        if start + size > n:
            raise ParseError('literal past the end')
        return data[start:start + size], start + size
    end = pos
    while end < n and data[end:end + 1] not in (b' ', b'(', b')'):
        # BODY[...] section specs hold spaces and parens inside [].
        if data[end:end + 1] == b'[':
            close = data.find(b']', end)
            if close < 0:
                raise ParseError('unterminated [')
            end = close + 1
            continue
        end += 1
    atom = data[pos:end]
    if atom.upper() == b'NIL':
        return None, end
    return atom, end


def parse_string(text):
    """The value of a whole string (a cached ENVELOPE or BODYSTRUCTURE)."""
    v, pos = parse(text)
    if text[pos:].strip():
        raise ParseError('trailing data after the value: %r' % text[pos:])
    return v


def fetch_items(response):
    """b'* N FETCH (K V K V ...)' -> (N, {K upper: V})."""
    parts = response.split(b' ', 3)
    if len(parts) < 4 or parts[0] != b'*' or parts[2].upper() != b'FETCH':
        raise ParseError('not a FETCH response: %r' % response[:200])
    lst, _ = parse(parts[3])
    if not isinstance(lst, list) or len(lst) % 2:
        raise ParseError('bad FETCH item list: %r' % response[:200])
    items = {}
    for i in range(0, len(lst), 2):
        items[lst[i].upper()] = lst[i + 1]
    return int(parts[1]), items


def show(value, indent=0):
    """A readable multi-line rendering of a parsed value for diffs."""
    pad = '  ' * indent
    if isinstance(value, list):
        if not any(isinstance(v, list) for v in value):
            return pad + '(' + ' '.join(show(v).strip() for v in value) + ')'
        lines = [pad + '(']
        for v in value:
            lines.append(show(v, indent + 1))
        lines.append(pad + ')')
        return '\n'.join(lines)
    if value is None:
        return pad + 'NIL'
    return pad + repr(value)[1:]
