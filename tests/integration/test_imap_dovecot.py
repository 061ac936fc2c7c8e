"""ENVELOPE and BODYSTRUCTURE against Dovecot (issue 6): every message of
tests/mime-corpus/ is APPENDed, byte for byte, to a private Debian Dovecot
(dovecot.py) and its FETCH (ENVELOPE BODYSTRUCTURE BODY) answers are the
reference for what Marmot caches at append time:

- LibMailVsDovecot: the strings message_index_build() caches for each
  corpus file (printed by the imap-index-dump helper) equal Dovecot's, as
  IMAP values (a quoted string and a literal with the same bytes are the
  same value, RFC 9051 4.3);
- SmtpVsDovecot: each corpus message, sent over SMTP to port 25 (CRLF line
  ends, as SMTP carries them, RFC 5321 2.3.8), is stored byte for byte as
  sent after the trace fields we prepend; over IMAP (once Marmot serves
  SELECT and FETCH) its BODY[] is those bytes and its ENVELOPE and
  BODYSTRUCTURE equal Dovecot's for the same bytes; before that the
  stored bytes are read back with `marmot export` and indexed with
  imap-index-dump.

Where Dovecot 2.3 contradicts an RFC, KNOWN_DIFFERENCES names the corpus
file, the item and the RFC section, and that item is not compared; every
other item must be equal. Dovecot refuses an empty message ("Can't save a
zero byte message"), so 47-empty.eml is compared with the unit tests'
expectation only (test-message-index)."""

import difflib
import glob
import imaplib
import os
import re
import smtplib
import subprocess
import time
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


def dovecot_answers(dc, messages, mailbox):
    """APPENDs messages to a new mailbox of dc and FETCHes them back:
    [{item: value}] in the order given."""
    c = imap_sexp.RawImap(dc.port)
    try:
        c.ok('LOGIN %s %s' % (dovecot.USER, dovecot.PASSWORD))
        c.ok('CREATE %s' % mailbox)
        for raw in messages:
            c.tag_n += 1
            tag = b'a%d' % c.tag_n
            c.sock.sendall(tag + b' APPEND %s {%d}\r\n'
                           % (mailbox.encode(), len(raw)))
            cont = c.read_response()
            if not cont.startswith(b'+'):
                raise AssertionError('Dovecot APPEND: %r' % cont)
            c.sock.sendall(raw + b'\r\n')
            for _ in range(100):
                r = c.read_response()
                if r.startswith(tag + b' '):
                    break
            if not r.startswith(tag + b' OK'):
                raise AssertionError('Dovecot APPEND: %r' % r)
        c.ok('SELECT %s' % mailbox)
        got = fetch_all(c, 'ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[]')
    finally:
        c.close()
    if sorted(got) != list(range(1, len(messages) + 1)):
        raise AssertionError('Dovecot UIDs %r for %d messages'
                             % (sorted(got), len(messages)))
    return [got[uid] for uid in sorted(got)]


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


def marmot_imap_fetch(inst, password, count, timeout=60.0):
    """{uid: {item: value}} from Marmot's IMAP (IMAPS, LOGIN, SELECT
    INBOX), or None when this build does not serve SELECT yet."""
    c = imap_sexp.RawImap(inst.ports['imaps'],
                          tls_context=harness.insecure_context())
    try:
        c.ok('LOGIN %s %s' % (harness.imap_quote(ALICE),
                              harness.imap_quote(password)))
        _, tagged = c.command('SELECT INBOX')
        if b' OK' not in tagged[:12]:
            return None
        got = fetch_all(c, 'ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[]')
        return got
    finally:
        c.close()


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
        imap = marmot_imap_fetch(self.mi.inst, self.mi.passwords[ALICE],
                                 len(tagged))
        compared = 0
        if imap is None:
            # Marmot's IMAP does not SELECT yet: index what was stored.
            work = os.path.join(self.mi.inst.dir, 'dump')
            os.makedirs(work, exist_ok=True)
            paths = []
            for i in range(len(tagged)):
                p = os.path.join(work, '%d.eml' % i)
                with open(p, 'wb') as f:
                    f.write(strip_trace(stored[i])[1])
                paths.append(p)
            ours_raw = run_dump(paths)
            for i, mine in enumerate(ours_raw):
                name = os.path.basename(files[i])
                parsed = {k: imap_sexp.parse_string(mine[k]) for k in ITEMS}
                compared += self.compare(name, mine, parsed, theirs[i],
                                         crlf_only=True)
            harness.note('Marmot serves no SELECT yet: compared the stored '
                         'messages through imap-index-dump (%d items)'
                         % compared)
            return
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
                self.assertEqual(rest, raw, '%s: BODY[] differs from the '
                                 'bytes SMTP delivered: %s'
                                 % (name, first_diff(rest, raw)))
                self.assertEqual(theirs[i]['BODY[]'], raw,
                                 '%s: Dovecot\'s BODY[]' % name)
            compared += self.compare(name, {}, ours, theirs[i],
                                     crlf_only=True)
        harness.note('%d messages over SMTP and IMAP, %d items equal to '
                     'Dovecot\'s' % (len(tagged), compared))


if __name__ == '__main__':
    unittest.main()
