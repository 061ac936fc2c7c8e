"""The store's operator commands (issue 3, item 9): `marmot import` and
`marmot export` with mbox and Maildir++, `marmot store stats` and
`marmot store verify`. Thirty varied messages (multipart, attachments,
8-bit, CRLF, From lines in bodies, flags and keywords in Status,
X-Status and X-Keywords, three folders with UTF-8 names) are imported
from mboxrd files built here; exports to Maildir++ and to mbox must give
back every message byte for byte (matched by Message-ID) with its flags,
keywords, folder and date; the Maildir export imported into a second
account gives identical stats; verify passes, then names a blob with a
flipped byte (the other account still verifies), and a flipped byte in
store.db fails cleanly."""

import base64
import os
import pwd
import random
import re
import shutil
import unittest

import harness
from harness import DOMAIN, Instance

FOLDERS = ['INBOX', 'Lists/dev', 'Projekte/Entw\u00fcrfe 2024']
ASCTIME_DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']
MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep',
          'Oct', 'Nov', 'Dec']

# Flags as store.h numbers them.
SEEN, ANSWERED, FLAGGED, DELETED, DRAFT = 1, 2, 4, 8, 16


def show(r):
    return 'exit %d\nstdout:\n%s\nstderr:\n%s' % (r.returncode, r.stdout,
                                                  r.stderr)


def asctime(t):
    import time
    tm = time.gmtime(t)
    return '%s %s %2d %02d:%02d:%02d %d' % (
        ASCTIME_DAYS[tm.tm_wday], MONTHS[tm.tm_mon - 1], tm.tm_mday,
        tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year)


def build_message(i, rng):
    """Message i: bytes ending in a newline, of one of several shapes."""
    eol = b'\r\n' if i % 7 == 3 else b'\n'
    mid = '<msg-%d.%08x@import.test>' % (i, rng.getrandbits(32))
    head = [b'From: Sender %d <s%d@example.net>' % (i, i),
            b'To: someone@' + DOMAIN.encode(),
            b'Subject: message %d of the import test' % i,
            b'Message-ID: ' + mid.encode(),
            b'Date: Mon, 2 Jun 2025 10:%02d:00 +0000' % (i % 60)]
    kind = i % 6
    if kind == 0:
        body = [b'Plain text body %d.' % i, b'',
                b'From the desk of the sender (a From line in a body)',
                b'>From a quoted one', b'>>From a doubly quoted one',
                b'From x@y Mon Jan  1 00:00:00 2024', b'', b'end']
    elif kind == 1:
        head += [b'MIME-Version: 1.0',
                 b'Content-Type: multipart/alternative; boundary="alt%d"'
                 % i]
        body = [b'--alt%d' % i, b'Content-Type: text/plain', b'',
                b'text part %d' % i, b'--alt%d' % i,
                b'Content-Type: text/html', b'',
                b'<html><body><p>html <b>part</b> %d</p></body></html>' % i,
                b'--alt%d--' % i]
    elif kind == 2:
        blob = bytes(rng.getrandbits(8) for _ in range(3000 + 97 * i))
        b64 = base64.encodebytes(blob).rstrip(b'\n').split(b'\n')
        head += [b'MIME-Version: 1.0',
                 b'Content-Type: multipart/mixed; boundary="mix%d"' % i]
        body = ([b'--mix%d' % i, b'Content-Type: text/plain', b'',
                 b'see the attachment', b'--mix%d' % i,
                 b'Content-Type: application/octet-stream; name="f%d.bin"'
                 % i,
                 b'Content-Disposition: attachment; filename="f%d.bin"' % i,
                 b'Content-Transfer-Encoding: base64', b''] + b64 +
                [b'--mix%d--' % i])
    elif kind == 3:
        head += [b'MIME-Version: 1.0',
                 b'Content-Type: text/plain; charset=iso-8859-1',
                 b'Content-Transfer-Encoding: 8bit']
        body = [b'8-bit body: caf\xe9, na\xefve, \xa9 %d' % i]
    elif kind == 4:
        head += [b'MIME-Version: 1.0',
                 b'Content-Type: text/plain; charset=utf-8',
                 b'Content-Transfer-Encoding: 8bit']
        body = [('UTF-8 body: gr\u00fc\u00dfe, \u65e5\u672c %d'
                 % i).encode()]
    else:
        body = [b'', b'', b'trailing blank lines follow', b'', b'']
    return mid, eol.join(head) + eol + eol + eol.join(body) + eol


def meta_lines(flags, keywords):
    status = b'Status: ' + (b'R' if flags & SEEN else b'') + b'O'
    xs = b''.join(c for f, c in ((ANSWERED, b'A'), (FLAGGED, b'F'),
                                 (DRAFT, b'T'), (DELETED, b'D'))
                  if flags & f)
    lines = [status]
    if xs:
        lines.append(b'X-Status: ' + xs)
    if keywords:
        lines.append(b'X-Keywords: ' + b', '.join(k.encode()
                                                   for k in keywords))
    return lines


def mboxrd_quote(data):
    out = []
    for line in data.split(b'\n'):
        if re.match(rb'^>*From ', line):
            line = b'>' + line
        out.append(line)
    return b'\n'.join(out)


def write_mbox(path, msgs):
    """msgs: (data, flags, keywords, date). Meta headers go first."""
    with open(path, 'wb') as f:
        for data, flags, keywords, date in msgs:
            f.write(b'From sender@example.net ' + asctime(date).encode() +
                    b'\n')
            eol = b'\r\n' if data.split(b'\n', 1)[0].endswith(b'\r') \
                else b'\n'
            for line in meta_lines(flags, keywords):
                f.write(line + eol)
            f.write(mboxrd_quote(data))
            f.write(b'\n')


def read_mbox(path):
    """Parses an mboxrd file as mbox.h describes it: [(data, flags,
    keywords, date_line)] with the metadata headers removed."""
    with open(path, 'rb') as f:
        raw = f.read()
    msgs, cur, from_line, prev_blank = [], None, None, True
    lines = raw.split(b'\n')
    if lines and lines[-1] == b'':
        lines.pop()
    for line in lines:
        if prev_blank and line.startswith(b'From '):
            if cur is not None:
                msgs.append((from_line, cur))
            cur, from_line = [], line
            prev_blank = False
            continue
        prev_blank = line in (b'', b'\r')
        if re.match(rb'^>+From ', line):
            line = line[1:]
        cur.append(line)
    if cur is not None:
        msgs.append((from_line, cur))
    out = []
    for from_line, body in msgs:
        if body and body[-1] in (b'',):
            body = body[:-1]
        data = b'\n'.join(body) + (b'\n' if body else b'')
        flags, keywords, kept, in_head = 0, [], [], True
        for line in data.split(b'\n')[:-1] if data else []:
            if in_head and line.rstrip(b'\r') == b'':
                in_head = False
            m = re.match(rb'^(Status|X-Status|X-Keywords):(.*?)\r?$', line)
            if in_head and m:
                v = m.group(2)
                if m.group(1) != b'X-Keywords':
                    for c, f in ((b'R', SEEN), (b'A', ANSWERED),
                                 (b'F', FLAGGED), (b'T', DRAFT),
                                 (b'D', DELETED)):
                        if c in v:
                            flags |= f
                else:
                    keywords += [k for k in re.split(rb'[,\s]+', v) if k]
                continue
            kept.append(line + b'\n')
        out.append((b''.join(kept), flags,
                    sorted(k.decode() for k in keywords), from_line))
    return out


def message_id(data):
    m = re.search(rb'^Message-ID: (<[^>]+>)', data, re.M)
    return m.group(1).decode() if m else None


MAILDIR_FLAGS = {'D': DRAFT, 'F': FLAGGED, 'R': ANSWERED, 'S': SEEN,
                 'T': DELETED}


def read_maildir(root):
    """{message-id: (folder, data, flags, keywords, mtime)}."""
    found = {}
    for folder, folder_dir in harness.maildir_folders(root):
        letters = {}
        kwfile = os.path.join(folder_dir, 'dovecot-keywords')
        if os.path.exists(kwfile):
            for line in open(kwfile):
                n, name = line.rstrip('\n').split(' ', 1)
                letters[chr(ord('a') + int(n))] = name
        for sub in ('new', 'cur'):
            for name in os.listdir(os.path.join(folder_dir, sub)):
                path = os.path.join(folder_dir, sub, name)
                data = open(path, 'rb').read()
                flags, keywords = 0, []
                if ':2,' in name:
                    for c in name.split(':2,', 1)[1]:
                        if c in MAILDIR_FLAGS:
                            flags |= MAILDIR_FLAGS[c]
                        elif c == 'P':
                            keywords.append('$Forwarded')
                        elif c in letters:
                            keywords.append(letters[c])
                found[message_id(data)] = (folder, data, flags,
                                           sorted(keywords),
                                           int(os.stat(path).st_mtime))
    return found


def utf7_folder(name):
    """Modified UTF-7 (RFC 3501 5.1.3) of one Maildir++ folder path."""
    def enc(level):
        out, run = '', ''
        for ch in level + '\0':
            if ch != '\0' and 0x20 <= ord(ch) <= 0x7e and ch != '.':
                if run:
                    b = base64.b64encode(run.encode('utf-16-be'))
                    out += '&' + b.decode().rstrip('=').replace('/', ',') \
                        + '-'
                    run = ''
                out += '&-' if ch == '&' else ch
            elif ch != '\0':
                run += ch
        if run:
            b = base64.b64encode(run.encode('utf-16-be'))
            out += '&' + b.decode().rstrip('=').replace('/', ',') + '-'
        return out
    return '.'.join(enc(level) for level in name.split('/'))


class StoreCliTest(unittest.TestCase):
    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.cleanup)
        self.work = os.path.join(self.inst.dir, 'work')
        os.mkdir(self.work)
        if harness.is_root():
            # The CLI drops to the data directory's owner, who writes the
            # exports.
            pw = pwd.getpwnam(self.inst.run_user)
            os.chown(self.work, pw.pw_uid, pw.pw_gid)
        self.ids = {}

    def add_user(self, address):
        r = self.inst.marmot(['user', 'add', address, '--password-stdin'],
                             input=harness.random_password() + '\n')
        self.assertEqual(r.returncode, 0, show(r))
        self.ids[address] = int(re.search(r'\(id (\d+)', r.stdout).group(1))

    def ok(self, args):
        r = self.inst.marmot(args)
        self.assertEqual(r.returncode, 0, 'marmot %s: %s'
                         % (' '.join(args), show(r)))
        self.assertNotIn('Sanitizer', r.stderr)
        return r

    def stats_table(self, address):
        r = self.ok(['store', 'stats', address])
        table = r.stdout.split('\n\n')[0]
        rows = {}
        for line in table.splitlines()[1:]:
            name, msgs, unseen, size = line.split('\t')
            if name == 'total':
                continue
            rows[name] = (int(msgs), int(unseen), int(size))
        return rows, r.stdout

    def corpus(self):
        rng = random.Random(4242)
        expected = {}
        per_folder = {f: [] for f in FOLDERS}
        for i in range(30):
            folder = FOLDERS[0] if i < 20 else FOLDERS[1 + i % 2]
            flags = [0, SEEN, SEEN | ANSWERED, FLAGGED, SEEN | DRAFT,
                     DELETED | SEEN][i % 6]
            keywords = [[], ['$Label1'], ['work', 'todo'], []][i % 4]
            date = 1700000000 + i * 86400 + i * 61
            mid, data = build_message(i, rng)
            expected[mid] = (folder, data, flags, sorted(keywords), date)
            per_folder[folder].append((data, flags, keywords, date))
        return expected, per_folder

    def test_import_export_stats_verify(self):
        a, b = 'alice@' + DOMAIN, 'bob@' + DOMAIN
        self.add_user(a)
        self.add_user(b)
        expected, per_folder = self.corpus()
        for n, folder in enumerate(FOLDERS):
            path = os.path.join(self.work, 'in%d.mbox' % n)
            write_mbox(path, per_folder[folder])
            r = self.ok(['import', a, '--mbox', path, '--mailbox', folder])
            self.assertIn('imported %d messages' % len(per_folder[folder]),
                          r.stdout)

        rows, text = self.stats_table(a)
        harness.note('stats after import:\n' + text)
        self.assertEqual(sum(v[0] for v in rows.values()), 30, text)
        for folder in FOLDERS:
            self.assertEqual(rows[folder][0], len(per_folder[folder]), text)
        unseen = sum(1 for v in expected.values() if not v[2] & SEEN)
        self.assertEqual(sum(v[1] for v in rows.values()), unseen, text)
        self.assertEqual(sum(v[2] for v in rows.values()),
                         sum(len(v[1]) for v in expected.values()), text)

        # Maildir++ export: bytes, flags, keywords, folder and date.
        md = os.path.join(self.work, 'export-maildir')
        self.ok(['export', a, '--maildir', md])
        got = read_maildir(md)
        self.assertEqual(sorted(got), sorted(expected))
        for mid, (folder, data, flags, keywords, date) in expected.items():
            g = got[mid]
            self.assertEqual(g[0], utf7_folder(folder) if folder != 'INBOX'
                             else 'INBOX', mid)
            self.assertEqual(g[1], data, 'bytes of %s differ' % mid)
            self.assertEqual(g[2], flags, 'flags of %s' % mid)
            self.assertEqual(g[3], keywords, 'keywords of %s' % mid)
            self.assertEqual(g[4], date, 'date of %s' % mid)

        # mbox export of everything: DIR/NAME.mbox per mailbox.
        mb = os.path.join(self.work, 'export-mbox')
        self.ok(['export', a, '--mbox', mb])
        seen = set()
        for folder in FOLDERS:
            path = os.path.join(mb, folder + '.mbox')
            self.assertTrue(os.path.isfile(path), path)
            for data, flags, keywords, from_line in read_mbox(path):
                mid = message_id(data)
                self.assertIn(mid, expected)
                e = expected[mid]
                self.assertEqual(e[0], folder)
                self.assertEqual(data, e[1], 'mbox bytes of %s' % mid)
                self.assertEqual(flags, e[2], 'mbox flags of %s' % mid)
                self.assertEqual(keywords, e[3])
                self.assertTrue(from_line.endswith(asctime(e[4]).encode()),
                                from_line)
                seen.add(mid)
        self.assertEqual(seen, set(expected))
        # One mailbox as one file.
        one = os.path.join(self.work, 'lists.mbox')
        self.ok(['export', a, '--mbox', one, '--mailbox', 'Lists/dev'])
        self.assertEqual(len(read_mbox(one)), len(per_folder['Lists/dev']))

        # The Maildir export imported into bob: identical stats.
        self.ok(['import', b, '--maildir', md])
        rows_b, text_b = self.stats_table(b)
        self.assertEqual(rows_b, rows, text_b)
        # The mbox directory imported into a third account: same again.
        c = 'carol@' + DOMAIN
        self.add_user(c)
        self.ok(['import', c, '--mbox', mb])
        rows_c, text_c = self.stats_table(c)
        self.assertEqual(rows_c, rows, text_c)

        for who in (a, b, c):
            self.ok(['store', 'verify', who])

        # A flipped byte in one of alice's blobs: verify names it.
        blobs = os.path.join(self.inst.data, 'accounts', str(self.ids[a]),
                             'blobs')
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(blobs)
                       for f in fs)
        self.assertEqual(len(files), 30)
        victim = files[len(files) // 2]
        with open(victim, 'r+b') as f:
            f.seek(os.path.getsize(victim) // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0x01]))
        r = self.inst.marmot(['store', 'verify', a])
        self.assertNotEqual(r.returncode, 0, show(r))
        self.assertGreater(r.returncode, 0, 'killed by a signal: ' + show(r))
        hexname = os.path.basename(victim).split('.')[0]
        self.assertIn(hexname, r.stderr, show(r))
        self.assertNotIn('Sanitizer', r.stderr)
        self.ok(['store', 'verify', b])

        # A flipped byte in bob's store.db (page 1, past the clear
        # header): a clean failure, no crash; alice's store still opens.
        db = os.path.join(self.inst.data, 'accounts', str(self.ids[b]),
                          'store.db')
        for suffix in ('-wal', '-shm'):
            self.assertFalse(os.path.exists(db + suffix) and
                             os.path.getsize(db + suffix) > 0 and
                             suffix == '-wal',
                             'store.db-wal left behind')
        with open(db, 'r+b') as f:
            f.seek(100)
            byte = f.read(1)
            f.seek(100)
            f.write(bytes([byte[0] ^ 0x80]))
        for args in (['store', 'verify', b], ['store', 'stats', b]):
            r = self.inst.marmot(args)
            self.assertGreater(r.returncode, 0, show(r))
            self.assertTrue(r.stderr.startswith('marmot: ') or
                            'marmot: ' in r.stderr, show(r))
            self.assertNotIn('Sanitizer', r.stderr)
            self.assertNotIn('runtime error', r.stderr)
        self.ok(['store', 'stats', a])
        self.ok(['store', 'verify', c])

    def test_refusals(self):
        a = 'alice@' + DOMAIN
        self.add_user(a)
        mbox = os.path.join(self.work, 'x.mbox')
        with open(mbox, 'wb') as f:
            f.write(b'not an mbox\n')
        cases = [
            (['import', a], 2),
            (['import', a, '--mbox', mbox, '--maildir', self.work], 2),
            (['import', a, '--maildir', self.work, '--mailbox', 'X'], 2),
            (['import', a, '--mbox', os.path.join(self.work, 'nope')], 1),
            (['import', 'nobody@' + DOMAIN, '--mbox', mbox], 1),
            (['import', a, '--mbox', mbox], 1),
            (['import', a, '--maildir', self.work], 1),
            (['export', a, '--mbox', self.work], 1),
            (['export', a, '--maildir', os.path.join(self.work, 'm'),
              '--mailbox', 'No/Such'], 1),
            (['store', 'stats', 'not an address'], 1),
            (['store', 'verify', 'nobody@' + DOMAIN], 1),
        ]
        for args, code in cases:
            r = self.inst.marmot(args)
            self.assertEqual(r.returncode, code,
                             '%s: %s' % (' '.join(args), show(r)))
            self.assertIn('marmot: ', r.stderr)
            self.assertNotIn('Sanitizer', r.stderr)
        # The mbox is opened before the data directory is checked: no
        # leak when that check fails.
        good = os.path.join(self.work, 'good.mbox')
        with open(good, 'wb') as f:
            f.write(b'From a@b Mon Jan  1 00:00:00 2024\nA: 1\n\nx\n\n')
        r = self.inst.marmot(['import', a, '--mbox', good, '--data',
                              os.path.join(self.work, 'nope')], data=False)
        self.assertEqual(r.returncode, 1, show(r))
        self.assertNotIn('Sanitizer', r.stderr)
        rows, text = self.stats_table(a)
        self.assertEqual(sum(v[0] for v in rows.values()), 0, text)


if __name__ == '__main__':
    unittest.main()
