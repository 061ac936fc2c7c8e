"""ENVELOPE and BODYSTRUCTURE against Dovecot (issue 6): every message of
tests/mime-corpus/ is APPENDed, byte for byte, to a private Debian Dovecot
(dovecot.py) and its FETCH (ENVELOPE BODYSTRUCTURE BODY BODY[]) answers
are the reference for Marmot's:

- LibMailVsDovecot: the strings message_index_build() caches for each
  corpus file (printed by the imap-index-dump helper) equal Dovecot's, as
  IMAP values (a quoted string and a literal with the same bytes are the
  same value, RFC 9051 4.3);
- SmtpVsDovecot.test_smtp_delivered_against_dovecot: each corpus message,
  sent over SMTP to port 25 (CRLF line ends, as SMTP carries them, RFC 5321
  2.3.8), is stored byte for byte as sent after the trace fields we
  prepend (`marmot export`), its BODY[] over IMAP is those bytes, and its
  ENVELOPE, BODYSTRUCTURE and BODY equal Dovecot's for the same bytes;
- SmtpVsDovecot.test_append_against_dovecot: the corpus files APPENDed as
  they are (bare LF, bare CR, NULs as literal8) to both servers: BODY[] is
  the bytes APPENDed and the other items equal Dovecot's.

Where Dovecot 2.3 contradicts an RFC, KNOWN_DIFFERENCES names the corpus
file, the item and the RFC section, and that item is not compared (the
reasons are printed as notes); every other item must be equal. Dovecot
refuses an empty message ("Can't save a zero byte message"), so
47-empty.eml is checked by test-message-index only."""

import difflib
import glob
import os
import re
import smtplib
import subprocess
import unittest

import dovecot
import harness
import imap_sexp
from harness import DOMAIN
from smtp_util import MailInstance, first_diff, strip_trace

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS_DIR = os.path.join(HERE, '..', 'mime-corpus')
ITEMS = ('ENVELOPE', 'BODYSTRUCTURE', 'BODY')
# The brief of issue 6: at least this many distinct MIME shapes compared.
MIN_SHAPES = 35

# Why Marmot's cached value differs from Dovecot 2.3.19's on purpose, by
# reason; KNOWN_DIFFERENCES maps (corpus file, item) to one of them.
GLOBAL = ('RFC 9051 9 (media-message: "MESSAGE" ("RFC822" / "GLOBAL")) and '
          'RFC 6532 3.7: a message/global body is described like '
          'message/rfc822, with envelope, body and lines; Dovecot 2.3 '
          'follows RFC 3501 and shows it as a basic body')
INVALID_TYPE = ('RFC 2045 5.2: a syntactically invalid Content-Type ("text" '
                'without a subtype, "/", "foo/") is taken as text/plain; '
                'charset=us-ascii; Dovecot shows an empty subtype or "" ""')
BOUNDARY_PREFIX = ('RFC 2046 5.1.1: a delimiter line is "--" boundary, '
                   'optional transport-padding (white space), CRLF; a line '
                   'that merely starts with "--" boundary followed by other '
                   'text is body text. Dovecot takes any line starting with '
                   '"--" boundary as a delimiter')
LF_SIZE = ('RFC 9051 7.5.2 (body-fld-octets): the size is that of the body '
           'as the server sends it. Marmot sends the stored octets, so a bare '
           'LF counts 1; Dovecot sends bare LFs as CRLF and counts 2. Over '
           'SMTP every line ends in CRLF, and SmtpVsDovecot finds the sizes '
           'equal')
BARE_CR = ('RFC 5322 2.2: bare CR is not a line break, so the header block '
           'of this message is one field; Dovecot cuts the From: value at '
           'the first bare CR. Over SMTP (CR made CRLF) both agree')
NESTED_CLOSE = ('RFC 2046 5.1.1: "--inner--" CRLF "--outer": the one CRLF '
                'belongs to the outer delimiter (multipart-body ends with '
                'close-delimiter, and "[CRLF epilogue]" needs a CRLF of its '
                'own), so the enclosing message/rfc822 body ends after '
                '"--inner--"; Dovecot counts that CRLF (and a line) in the '
                'message/rfc822 body')
DEPTH = ('message_index_build() parses MIME nesting down to '
         'MIME_LIMITS_DEFAULT_DEPTH (20) levels and keeps deeper parts as '
         'one opaque leaf; Dovecot goes down to 100')
ENCODED_RFC822 = ('RFC 2046 5.2.1: message/rfc822 may only be 7bit, 8bit '
                  'or binary; Marmot (like GMime) keeps one in base64 as an '
                  'opaque leaf, shown as application/octet-stream since a '
                  'basic body may not be message/rfc822 (RFC 9051 9, '
                  'body-type-msg); Dovecot parses the base64 text as a '
                  'header block and shows an empty message')

KNOWN_DIFFERENCES = {}
for _name, _items, _why in (
        ('04-rfc822-attachment.eml', ('BODYSTRUCTURE', 'BODY'),
         NESTED_CLOSE),
        ('07-broken-boundary.eml', ('BODYSTRUCTURE', 'BODY'),
         BOUNDARY_PREFIX),
        ('11-deep-nesting.eml', ('BODYSTRUCTURE', 'BODY'), DEPTH),
        ('17-no-content-type-parts.eml', ('BODYSTRUCTURE', 'BODY'),
         INVALID_TYPE),
        ('19-message-global.eml', ('BODYSTRUCTURE', 'BODY'), GLOBAL),
        ('38-lf-only-nested.eml', ('BODYSTRUCTURE', 'BODY'), LF_SIZE),
        ('39-cr-only.eml', ('ENVELOPE',), BARE_CR),
        ('41-boundary-prefix-in-body.eml', ('BODYSTRUCTURE', 'BODY'),
         BOUNDARY_PREFIX),
        ('49-invalid-content-types.eml', ('BODYSTRUCTURE', 'BODY'),
         INVALID_TYPE),
        ('50-nesting-30.eml', ('BODYSTRUCTURE', 'BODY'), DEPTH),
        ('53-rfc822-base64.eml', ('BODYSTRUCTURE', 'BODY'),
         ENCODED_RFC822),
        ('56-mixed-line-endings.eml', ('BODYSTRUCTURE', 'BODY'), LF_SIZE),
        ('62-epilogue-and-preamble-noise.eml', ('BODYSTRUCTURE', 'BODY'),
         BOUNDARY_PREFIX)):
    for _item in _items:
        KNOWN_DIFFERENCES[(_name, _item)] = _why
# Only these hold over SMTP too: the LF and CR ones vanish with CRLF.
SMTP_EQUAL = (LF_SIZE, BARE_CR)


def corpus_files():
    return sorted(glob.glob(os.path.join(CORPUS_DIR, '*.eml')))


def dump_tool():
    """build/src/lib-mail/imap-index-dump beside build/src/cli/marmot."""
    build = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(harness.MARMOT))))
    return os.path.join(build, 'src', 'lib-mail', 'imap-index-dump')


def run_dump(paths):
    """[{item: bytes}] per path, from imap-index-dump."""
    tool = dump_tool()
    if not os.access(tool, os.X_OK):
        raise AssertionError('imap-index-dump not built: %s' % tool)
    out = subprocess.run([tool] + list(paths), stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError('imap-index-dump: exit %d: %s'
                             % (out.returncode, out.stderr[-2000:]))
    data, pos, recs = out.stdout, 0, []
    while pos < len(data):
        nl = data.index(b'\n', pos)
        name, size = data[pos:nl].split(b' ')
        start = nl + 1
        end = start + int(size)
        recs.append((name.decode(), data[start:end]))
        pos = end + 1
    if len(recs) != 3 * len(paths):
        raise AssertionError('imap-index-dump: %d records for %d files'
                             % (len(recs), len(paths)))
    return [dict(recs[i:i + 3]) for i in range(0, len(recs), 3)]


def fetch_all(client, what='ENVELOPE BODYSTRUCTURE BODY'):
    """{uid: {item: value}} of every message of the selected mailbox."""
    out = {}
    for r in client.ok('UID FETCH 1:* (UID %s)' % what):
        if not re.match(rb'\* \d+ FETCH ', r):
            continue
        _, items = imap_sexp.fetch_items(r)
        uid = int(items.pop(b'UID'))
        out[uid] = {k.decode(): v for k, v in items.items()}
    return out


def append_and_fetch(c, messages, mailbox, literal8=True):
    """APPENDs messages (bytes, sent as literals exactly as given, as
    literal8 if they hold a NUL and literal8) to a new
    mailbox over the logged-in RawImap c, SELECTs it and FETCHes them
    back: [{item: value}] in the order given."""
    c.ok('CREATE %s' % mailbox)
    for raw in messages:
        c.tag_n += 1
        tag = b'a%d' % c.tag_n
        # RFC 9051 4.3: NULs only in a literal8 (RFC 3516 BINARY), and
        # Marmot refuses them in a literal. Dovecot takes them in either,
        # but re-encodes binary parts of a literal8 APPEND as base64: it
        # gets plain literals (literal8=False).
        marker = b'~' if literal8 and b'\0' in raw else b''
        c.sock.sendall(tag + b' APPEND %s %s{%d}\r\n'
                       % (mailbox.encode(), marker, len(raw)))
        cont = c.read_response()
        if not cont.startswith(b'+'):
            raise AssertionError('APPEND: %r' % cont)
        c.sock.sendall(raw + b'\r\n')
        for _ in range(100):
            r = c.read_response()
            if r.startswith(tag + b' '):
                break
        if not r.startswith(tag + b' OK'):
            raise AssertionError('APPEND of %r...: %r' % (raw[:60], r))
    c.ok('SELECT %s' % mailbox)
    got = fetch_all(c, 'ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[]')
    if sorted(got) != list(range(1, len(messages) + 1)):
        raise AssertionError('UIDs %r for %d messages'
                             % (sorted(got), len(messages)))
    return [got[uid] for uid in sorted(got)]


def dovecot_answers(dc, messages, mailbox):
    """append_and_fetch() on Dovecot."""
    c = imap_sexp.RawImap(dc.port)
    try:
        c.ok('LOGIN %s %s' % (dovecot.USER, dovecot.PASSWORD))
        return append_and_fetch(c, messages, mailbox, literal8=False)
    finally:
        c.close()


def describe(name, item, ours, theirs, ours_raw=None):
    """A failure message with a line diff of both values."""
    diff = '\n'.join(difflib.unified_diff(
        imap_sexp.show(theirs).splitlines(),
        imap_sexp.show(ours).splitlines(), 'dovecot', 'marmot',
        lineterm='', n=3))
    text = '%s %s differs from Dovecot\'s:\n%s' % (name, item, diff)
    if ours_raw is not None:
        text += '\nmarmot sent: %r' % ours_raw[:2000]
    return text


def crlf(raw):
    """The message as SMTP carries it: every line ending CRLF (bare CR and
    bare LF become CRLF) and a CRLF at the end (RFC 5321 2.3.8, 4.1.1.4)."""
    out = re.sub(rb'\r\n|\r|\n', b'\r\n', raw)
    if not out.endswith(b'\r\n'):
        out += b'\r\n'
    return out


class DovecotCase(unittest.TestCase):
    """Starts one private Dovecot per class."""
    dc = None

    def setUp(self):
        # reason -> corpus files with an item not compared for it
        self.skipped = {}
        self.addCleanup(self.note_skipped)

    def note_skipped(self):
        for why, names in sorted(self.skipped.items()):
            harness.note('not compared in %s: %s'
                         % (', '.join(sorted(names)), why))

    @classmethod
    def setUpClass(cls):
        if not dovecot.available():
            raise AssertionError('Dovecot is not installed: '
                                 'scripts/install-deps.sh installs '
                                 'dovecot-imapd')
        cls.dc = dovecot.Dovecot()
        cls.start_or_clean(cls.dc.start)

    @classmethod
    def start_or_clean(cls, start):
        """Runs start(); on any failure tears the class down and
        re-raises."""
        try:
            return start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.dc is not None:
            cls.dc.cleanup()
            cls.dc = None

    def compare(self, name, ours_raw, ours, theirs, crlf_only=False):
        """ours_raw: {item: bytes as Marmot sends it}; ours/theirs: parsed
        values. crlf_only: the messages had every line ending made CRLF.
        Returns the number of items compared."""
        n = 0
        for item in ITEMS:
            why = KNOWN_DIFFERENCES.get((name, item))
            if why is not None and not (crlf_only and why in SMTP_EQUAL):
                self.skipped.setdefault(why, set()).add(name)
                continue
            with self.subTest(message=name, item=item):
                self.assertEqual(ours[item], theirs[item],
                                 describe(name, item, ours[item],
                                          theirs[item], ours_raw.get(item)))
            n += 1
        return n


class LibMailVsDovecot(DovecotCase):
    def test_corpus_against_dovecot(self):
        files = [f for f in corpus_files() if os.path.getsize(f) > 0]
        self.assertGreaterEqual(len(files), MIN_SHAPES,
                                'tests/mime-corpus holds %d non-empty '
                                'messages, fewer than %d shapes'
                                % (len(files), MIN_SHAPES))
        raws = []
        for path in files:
            with open(path, 'rb') as f:
                raws.append(f.read())
        theirs = dovecot_answers(self.dc, raws, 'corpus')
        ours = run_dump(files)
        compared = 0
        for path, mine, dov in zip(files, ours, theirs):
            name = os.path.basename(path)
            parsed = {}
            for item in ITEMS:
                try:
                    parsed[item] = imap_sexp.parse_string(mine[item])
                except (imap_sexp.ParseError, ValueError) as e:
                    self.fail('%s: Marmot\'s cached %s does not parse as '
                              'an IMAP value (%s): %r'
                              % (name, item, e, mine[item][:2000]))
            compared += self.compare(name, mine, parsed, dov)
        harness.note('%d messages, %d items equal to Dovecot\'s'
                     % (len(files), compared))


ALICE = 'alice@' + DOMAIN
SENDER = 'sender@remote.example'


def marmot_login(inst, password):
    """A RawImap logged in to Marmot over IMAPS."""
    c = imap_sexp.RawImap(inst.ports['imaps'],
                          tls_context=harness.insecure_context())
    try:
        c.ok('LOGIN %s %s' % (harness.imap_quote(ALICE),
                              harness.imap_quote(password)))
    except BaseException:
        c.close()
        raise
    return c


class SmtpVsDovecot(DovecotCase):
    """Deliver over SMTP to Marmot, APPEND the same bytes to Dovecot."""
    mi = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mi = cls.start_or_clean(lambda: MailInstance((ALICE,)))

    @classmethod
    def tearDownClass(cls):
        if cls.mi is not None:
            cls.mi.cleanup()
            cls.mi = None
        super().tearDownClass()

    def deliver(self, messages):
        """Sends each message in its own transaction on port 25."""
        port = self.mi.inst.ports['smtp']
        s = smtplib.SMTP(harness.LOOPBACK, port, timeout=60)
        try:
            s.ehlo('client.remote.example')
            for i, raw in enumerate(messages):
                try:
                    s.sendmail(SENDER, [ALICE], raw,
                               mail_options=['BODY=8BITMIME'])
                except smtplib.SMTPException as e:
                    self.fail('message %d refused over SMTP: %r' % (i, e))
            s.quit()
        finally:
            s.close()

    def test_smtp_delivered_against_dovecot(self):
        files = [f for f in corpus_files() if os.path.getsize(f) > 0]
        sent = []
        for path in files:
            with open(path, 'rb') as f:
                sent.append(crlf(f.read()))
        # Each message's position, found again by a unique header line.
        tagged = []
        for i, raw in enumerate(sent):
            tagged.append(b'X-Corpus-Index: %d\r\n' % i + raw)
        self.deliver(tagged)
        self.mi.wait_count(ALICE, len(tagged))
        self.mi.wait_merged([ALICE])
        theirs = dovecot_answers(self.dc, tagged, 'smtp')
        stored = {}
        for _folder, data in self.mi.export(ALICE):
            m = re.search(rb'(?m)^X-Corpus-Index: (\d+)\r$', data)
            if m:
                stored[int(m.group(1))] = data
        self.assertEqual(sorted(stored), list(range(len(tagged))),
                         'stored messages by X-Corpus-Index')
        # BODY[] as delivered: our trace fields on top, then the bytes
        # sent, unchanged.
        for i, raw in enumerate(tagged):
            trace, rest = strip_trace(stored[i])
            name = os.path.basename(files[i])
            with self.subTest(message=name, item='stored bytes'):
                self.assertTrue(trace and trace[0].startswith(
                    b'Return-Path:'), '%s: no Return-Path on top' % name)
                self.assertEqual(rest, raw, '%s: stored bytes differ from '
                                 'the bytes sent: %s'
                                 % (name, first_diff(rest, raw)))
        c = marmot_login(self.mi.inst, self.mi.passwords[ALICE])
        try:
            c.ok('SELECT INBOX')
            imap = fetch_all(c, 'ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[]')
        finally:
            c.close()
        compared = 0
        by_index = {}
        for uid, items in imap.items():
            m = re.search(rb'(?m)^X-Corpus-Index: (\d+)\r$',
                          items.get('BODY[]') or b'')
            if m:
                by_index[int(m.group(1))] = items
        self.assertEqual(sorted(by_index), list(range(len(tagged))),
                         'messages FETCHed from Marmot by X-Corpus-Index')
        for i, raw in enumerate(tagged):
            name = os.path.basename(files[i])
            ours = by_index[i]
            with self.subTest(message=name, item='BODY[]'):
                trace, rest = strip_trace(ours['BODY[]'])
                # RFC 9051 9: a literal holds no NUL (CHAR8 is %x01-ff),
                # so a message's NULs go out as 0x80 in BODY[], by
                # Marmot (imap-cmd-fetch.c) as by Dovecot; BINARY[]
                # carries them (16-, 46-nul-bytes). Every other byte is
                # the one SMTP delivered.
                sent = raw.replace(b'\0', b'\x80')
                self.assertEqual(rest, sent, '%s: BODY[] differs from the '
                                 'bytes SMTP delivered: %s'
                                 % (name, first_diff(rest, sent)))
                self.assertEqual(theirs[i]['BODY[]'], sent,
                                 '%s: Dovecot\'s BODY[]' % name)
            compared += self.compare(name, {}, ours, theirs[i],
                                     crlf_only=True)
        harness.note('%d messages over SMTP and IMAP, %d items equal to '
                     'Dovecot\'s' % (len(tagged), compared))


    def test_append_against_dovecot(self):
        """The corpus files APPENDed as they are (bare LF and CR, NULs and
        no final newline included) to Marmot and to Dovecot."""
        files = [f for f in corpus_files() if os.path.getsize(f) > 0]
        raws = []
        for path in files:
            with open(path, 'rb') as f:
                raws.append(f.read())
        theirs = dovecot_answers(self.dc, raws, 'appended')
        c = marmot_login(self.mi.inst, self.mi.passwords[ALICE])
        try:
            ours = append_and_fetch(c, raws, 'appended')
        finally:
            c.close()
        compared = 0
        for path, raw, mine, dov in zip(files, raws, ours, theirs):
            name = os.path.basename(path)
            with self.subTest(message=name, item='BODY[]'):
                # NULs as 0x80 (RFC 9051 9 CHAR8), as above.
                sent = raw.replace(b'\0', b'\x80')
                self.assertEqual(mine['BODY[]'], sent, '%s: BODY[] differs '
                                 'from the bytes APPENDed: %s'
                                 % (name, first_diff(mine['BODY[]'], sent)))
            compared += self.compare(name, {}, mine, dov)
        harness.note('%d messages APPENDed, %d items equal to Dovecot\'s'
                     % (len(files), compared))


if __name__ == '__main__':
    unittest.main()
