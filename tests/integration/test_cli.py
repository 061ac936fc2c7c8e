"""The admin CLI: init, domain, user, alias, app-password, status, and its
behaviour on invalid input (non-zero exit, a `marmot: ` message, nothing
written)."""

import os
import re
import stat
import tempfile
import shutil
import unittest

import harness
from harness import DOMAIN, HOSTNAME, Instance


def show(r):
    return 'exit %d\nstdout:\n%s\nstderr:\n%s' % (r.returncode, r.stdout,
                                                  r.stderr)


class CliCase(unittest.TestCase):
    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.cleanup)

    def ok(self, args, input=None, **kw):
        r = self.inst.marmot(args, input=input, **kw)
        self.assertEqual(r.returncode, 0, 'marmot %s: expected exit 0, got '
                         '%s' % (' '.join(args), show(r)))
        return r

    def assert_refused(self, args, input=None, **kw):
        """The command fails with a `marmot: ` message and changes
        nothing."""
        before = self.inst.snapshot()
        r = self.inst.marmot(args, input=input, **kw)
        after = self.inst.snapshot_after()
        what = 'marmot %s' % ' '.join(args)
        self.assertNotEqual(r.returncode, 0,
                            '%s: expected a non-zero exit, got %s'
                            % (what, show(r)))
        self.assertTrue(r.stderr.startswith('marmot: '),
                        '%s: expected stderr to start with "marmot: ", got '
                        '%r' % (what, r.stderr))
        diff = harness.diff_snapshots(before, after)
        self.assertEqual(diff, '', '%s failed but changed the data dir:\n%s'
                         % (what, diff))
        return r


class InitTest(CliCase):
    def test_init_creates_data_dir(self):
        d = self.inst.data
        for name in ('marmot.conf', 'master.key', 'directory.db',
                     'tls/cert.pem', 'tls/key.pem'):
            self.assertTrue(os.path.isfile(os.path.join(d, name)),
                            'expected %s/%s after init; found %s'
                            % (d, name, sorted(self.inst.snapshot_files())))
        mode = stat.S_IMODE(os.stat(os.path.join(d, 'master.key')).st_mode)
        self.assertEqual(mode, 0o600, 'master.key: expected mode 0600, got '
                         '%04o' % mode)
        size = os.path.getsize(os.path.join(d, 'master.key'))
        self.assertGreaterEqual(size, 32, 'master.key: expected at least 32 '
                                'bytes (256-bit key), got %d' % size)
        with open(os.path.join(d, 'marmot.conf')) as f:
            conf = f.read()
        self.assertIn(HOSTNAME, conf,
                      'marmot.conf does not mention the host name')
        self.assertIn(str(self.inst.port_base), conf,
                      'marmot.conf does not mention the port base')

    def test_init_certificate_is_self_signed_for_host(self):
        cert = harness.decode_cert(self.inst.cert_path)
        self.assertEqual(cert.get('subject'), cert.get('issuer'),
                         'expected a self-signed certificate (subject == '
                         'issuer), got %r' % cert)
        names = [v for k, v in cert.get('subjectAltName', ()) if k == 'DNS']
        cn = [v for rdn in cert.get('subject', ()) for k, v in rdn
              if k == 'commonName']
        self.assertIn(HOSTNAME, names + cn,
                      'expected the certificate to name %s, got SAN %r, CN '
                      '%r' % (HOSTNAME, names, cn))
        # It must be usable as its own trust anchor (what clients pin).
        ctx = self.inst.ssl_context()
        self.assertIsNotNone(ctx)

    def test_init_prints_dns_records(self):
        out = self.inst.init_result.stdout
        mx = [l for l in out.splitlines() if re.search(r'\bMX\b', l)]
        self.assertTrue(mx, 'expected an MX line in init output, got:\n'
                        + out)
        self.assertTrue(any(HOSTNAME in l for l in mx),
                        'expected the MX line to name %s, got %r'
                        % (HOSTNAME, mx))
        spf = [l for l in out.splitlines()
               if 'TXT' in l and 'v=spf1' in l]
        self.assertTrue(spf, 'expected a TXT "v=spf1" line, got:\n' + out)
        dmarc = [l for l in out.splitlines()
                 if '_dmarc' in l and 'TXT' in l and 'v=DMARC1' in l]
        self.assertTrue(dmarc, 'expected a _dmarc TXT "v=DMARC1" line, '
                        'got:\n' + out)

    def test_init_domain_is_listed(self):
        r = self.ok(['domain', 'list'])
        self.assertIn(DOMAIN, r.stdout.split(),
                      'expected %s in domain list after init, got %r'
                      % (DOMAIN, r.stdout))

    def test_init_refuses_initialised_dir(self):
        args = ['init', '--data', self.inst.data, '--hostname', HOSTNAME,
                '--domain', DOMAIN, '--listen', '127.0.0.1', '--port-base',
                str(self.inst.port_base)]
        self.assert_refused(args, data=False)

    def test_init_refuses_non_empty_dir(self):
        d = tempfile.mkdtemp(prefix='marmot-it-nonempty-')
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, 'keep.txt'), 'w') as f:
            f.write('precious\n')
        before = self.inst.snapshot_files(d)
        r = self.inst.marmot(['init', '--data', d, '--hostname', HOSTNAME,
                              '--domain', DOMAIN], data=False)
        self.assertNotEqual(r.returncode, 0, 'init into a non-empty dir: '
                            'expected a non-zero exit, got ' + show(r))
        self.assertTrue(r.stderr.startswith('marmot: '),
                        'expected stderr to start with "marmot: ", got %r'
                        % r.stderr)
        after = self.inst.snapshot_files(d)
        self.assertEqual(before, after, 'init into a non-empty dir changed '
                         'it: before %r, after %r' % (before, after))

    def test_init_into_empty_existing_dir(self):
        d = tempfile.mkdtemp(prefix='marmot-it-empty-')
        self.addCleanup(shutil.rmtree, d, True)
        r = self.inst.marmot(['init', '--data', d, '--hostname', HOSTNAME,
                              '--domain', DOMAIN, '--listen', '127.0.0.1',
                              '--port-base', '30000'], data=False)
        self.assertEqual(r.returncode, 0, 'init into an empty existing dir: '
                         'expected exit 0, got ' + show(r))
        self.assertTrue(os.path.isfile(os.path.join(d, 'marmot.conf')))


class DomainTest(CliCase):
    def test_domain_add_list_del(self):
        self.ok(['domain', 'add', 'other.example'])
        r = self.ok(['domain', 'list'])
        self.assertIn('other.example', r.stdout.split(),
                      'domain add then list: got %r' % r.stdout)
        self.ok(['domain', 'del', 'other.example'])
        r = self.ok(['domain', 'list'])
        self.assertNotIn('other.example', r.stdout.split(),
                         'domain del then list: got %r' % r.stdout)
        self.assertIn(DOMAIN, r.stdout.split())

    def test_domain_add_duplicate_refused(self):
        self.assert_refused(['domain', 'add', DOMAIN])

    def test_domain_add_malformed_refused(self):
        self.assert_refused(['domain', 'add', 'bad..example'])

    def test_domain_del_unknown_refused(self):
        self.assert_refused(['domain', 'del', 'nowhere.example'])

    def test_domain_del_with_accounts_refused(self):
        self.inst.add_user('bob@' + DOMAIN)
        self.assert_refused(['domain', 'del', DOMAIN])

    def test_marmot_data_env(self):
        r = self.inst.marmot(['domain', 'add', 'env.example'], data=False,
                             env={'MARMOT_DATA': self.inst.data})
        self.assertEqual(r.returncode, 0, 'with MARMOT_DATA instead of '
                         '--data: ' + show(r))
        r = self.inst.marmot(['domain', 'list'], data=False,
                             env={'MARMOT_DATA': self.inst.data})
        self.assertIn('env.example', r.stdout.split(), show(r))


class UserTest(CliCase):
    def test_user_add_list(self):
        self.inst.add_user('bob@' + DOMAIN)
        r = self.ok(['user', 'list'])
        self.assertIn('bob@' + DOMAIN, r.stdout,
                      'user list after add: got %r' % r.stdout)

    def test_user_add_quota(self):
        self.inst.add_user('quota@' + DOMAIN, quota='1G')
        r = self.ok(['user', 'list'])
        self.assertIn('quota@' + DOMAIN, r.stdout)

    def test_user_add_bad_quota_refused(self):
        self.assert_refused(['user', 'add', 'q@' + DOMAIN, '--password-stdin',
                             '--quota', 'lots'], input='secret-pass-1\n')

    def test_user_add_duplicate_refused(self):
        self.inst.add_user('bob@' + DOMAIN)
        self.assert_refused(['user', 'add', 'bob@' + DOMAIN,
                             '--password-stdin'], input='another-pass-2\n')

    def test_user_add_malformed_refused(self):
        for bad in ('bad@@x', 'no-at-sign', '@' + DOMAIN, 'a b@' + DOMAIN):
            with self.subTest(address=bad):
                self.assert_refused(['user', 'add', bad, '--password-stdin'],
                                    input='secret-pass-3\n')

    def test_user_add_unknown_domain_refused(self):
        self.assert_refused(['user', 'add', 'bob@nowhere.example',
                             '--password-stdin'], input='secret-pass-4\n')

    def test_user_add_alias_collision_refused(self):
        self.inst.add_user('bob@' + DOMAIN)
        self.ok(['alias', 'add', 'info@' + DOMAIN, 'bob@' + DOMAIN])
        self.assert_refused(['user', 'add', 'info@' + DOMAIN,
                             '--password-stdin'], input='secret-pass-5\n')

    def test_user_passwd(self):
        self.inst.add_user('bob@' + DOMAIN)
        self.ok(['user', 'passwd', 'bob@' + DOMAIN, '--password-stdin'],
                input='a-new-password-6\n')

    def test_user_passwd_unknown_refused(self):
        self.assert_refused(['user', 'passwd', 'ghost@' + DOMAIN,
                             '--password-stdin'], input='whatever-7\n')

    def test_user_del(self):
        self.inst.add_user('bob@' + DOMAIN)
        self.inst.add_user('carol@' + DOMAIN)
        self.ok(['user', 'del', 'bob@' + DOMAIN])
        r = self.ok(['user', 'list'])
        self.assertNotIn('bob@' + DOMAIN, r.stdout,
                         'user list after del: got %r' % r.stdout)
        self.assertIn('carol@' + DOMAIN, r.stdout)

    def test_user_del_unknown_refused(self):
        self.assert_refused(['user', 'del', 'ghost@' + DOMAIN])

    def test_user_disable_enable(self):
        self.inst.add_user('bob@' + DOMAIN)
        self.ok(['user', 'disable', 'bob@' + DOMAIN])
        self.ok(['user', 'enable', 'bob@' + DOMAIN])

    def test_user_disable_unknown_refused(self):
        self.assert_refused(['user', 'disable', 'ghost@' + DOMAIN])
        self.assert_refused(['user', 'enable', 'ghost@' + DOMAIN])

    def test_missing_data_dir_refused(self):
        missing = os.path.join(self.inst.dir, 'does-not-exist')
        for args in (['user', 'list'], ['domain', 'list'],
                     ['user', 'add', 'bob@' + DOMAIN, '--password-stdin'],
                     ['status']):
            with self.subTest(args=args):
                r = self.inst.marmot(args + ['--data', missing],
                                     input='secret-pass-8\n', data=False)
                self.assertNotEqual(r.returncode, 0, 'marmot %s with a '
                                    'missing data dir: expected non-zero, '
                                    'got %s' % (' '.join(args), show(r)))
                self.assertTrue(r.stderr.startswith('marmot: '),
                                'expected stderr to start with "marmot: ", '
                                'got %r' % r.stderr)
                self.assertFalse(os.path.exists(missing),
                                 'the missing data dir was created')

    def test_app_password_add(self):
        self.inst.add_user('bob@' + DOMAIN)
        r1 = self.ok(['app-password', 'add', 'bob@' + DOMAIN, 'phone'])
        r2 = self.ok(['app-password', 'add', 'bob@' + DOMAIN, 'laptop'])
        tok1 = re.findall(r'[A-Za-z0-9+/=_-]{12,}', r1.stdout)
        tok2 = re.findall(r'[A-Za-z0-9+/=_-]{12,}', r2.stdout)
        self.assertTrue(tok1, 'app-password add: expected a printed '
                        'password, got %r' % r1.stdout)
        self.assertNotEqual(tok1, tok2, 'two app passwords are identical: '
                            '%r' % tok1)

    def test_app_password_unknown_user_refused(self):
        self.assert_refused(['app-password', 'add', 'ghost@' + DOMAIN,
                             'phone'])


class AliasTest(CliCase):
    def test_alias_add_list_del(self):
        self.inst.add_user('bob@' + DOMAIN)
        self.inst.add_user('carol@' + DOMAIN)
        self.ok(['alias', 'add', 'team@' + DOMAIN, 'bob@' + DOMAIN,
                 'carol@' + DOMAIN])
        r = self.ok(['alias', 'list'])
        self.assertIn('team@' + DOMAIN, r.stdout, 'alias list: %r' % r.stdout)
        self.assertIn('carol@' + DOMAIN, r.stdout,
                      'alias list should show the targets: %r' % r.stdout)
        self.ok(['alias', 'del', 'team@' + DOMAIN])
        r = self.ok(['alias', 'list'])
        self.assertNotIn('team@' + DOMAIN, r.stdout,
                         'alias list after del: %r' % r.stdout)

    def test_alias_malformed_refused(self):
        self.inst.add_user('bob@' + DOMAIN)
        self.assert_refused(['alias', 'add', 'bad@@x', 'bob@' + DOMAIN])
        self.assert_refused(['alias', 'add', 'ok@' + DOMAIN, 'bad@@x'])

    def test_alias_unknown_domain_refused(self):
        self.inst.add_user('bob@' + DOMAIN)
        self.assert_refused(['alias', 'add', 'x@nowhere.example',
                             'bob@' + DOMAIN])

    def test_alias_duplicate_refused(self):
        self.inst.add_user('bob@' + DOMAIN)
        self.ok(['alias', 'add', 'team@' + DOMAIN, 'bob@' + DOMAIN])
        self.assert_refused(['alias', 'add', 'team@' + DOMAIN,
                             'bob@' + DOMAIN])
        self.assert_refused(['alias', 'add', 'bob@' + DOMAIN,
                             'team@' + DOMAIN])

    def test_alias_del_unknown_refused(self):
        self.assert_refused(['alias', 'del', 'nothing@' + DOMAIN])


class StatusTest(CliCase):
    def test_status_not_running_exits_3(self):
        r = self.inst.marmot(['status'])
        self.assertEqual(r.returncode, 3, 'marmot status with no server: '
                         'expected exit 3, got ' + show(r))


if __name__ == '__main__':
    unittest.main()
