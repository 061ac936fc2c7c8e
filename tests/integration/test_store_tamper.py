"""Tampering with one account's encrypted store while the server runs
(issue 3, "Tamper"): a flipped byte in alice's store.db makes her merges
fail cleanly — the vault stays up (same pid), bob's mail keeps flowing, and
alice's deliveries still succeed and wait, sealed, in her spool. Once the
byte is restored, her waiting mail is merged: nothing was lost."""

import os
import time
import unittest

import harness
from test_store_deliver import DeliverCase, message, show

# Past the 24 clear header bytes of page 1 (sqlite-vfs-crypt.h), inside
# the encrypted part that the VFS authenticates when it opens the file.
TAMPER_OFFSET = 200


class StoreTamperTest(DeliverCase):
    def flip(self, path, offset):
        with open(path, 'r+b') as f:
            f.seek(offset)
            b = f.read(1)
            f.seek(offset)
            f.write(bytes([b[0] ^ 0x5A]))

    def test_tampered_store_is_isolated_and_nothing_is_lost(self):
        for n in range(3):
            self.assertEqual(self.deliver(self.alice, message('ta', n))
                             .returncode, 0)
            self.assertEqual(self.deliver(self.bob, message('tb', n))
                             .returncode, 0)
        self.wait_merged(self.alice, 3)
        self.wait_merged(self.bob, 3)
        vault = self.inst.role_pid('vault')

        db = os.path.join(self.account_dir(self.alice), 'store.db')
        self.flip(db, TAMPER_OFFSET)
        r = self.inst.marmot(['store', 'verify', self.alice])
        self.assertNotEqual(r.returncode, 0,
                            'verify of a tampered store passed: ' + show(r))
        self.assertNotIn('AddressSanitizer', r.stderr)

        # Deliveries to both still succeed: the spool needs no store.
        for n in range(3, 5):
            r = self.deliver(self.alice, message('ta', n))
            self.assertEqual(r.returncode, 0, show(r))
            r = self.deliver(self.bob, message('tb', n))
            self.assertEqual(r.returncode, 0, show(r))
        # Bob is unaffected.
        self.wait_merged(self.bob, 5)
        # Alice's merge fails cleanly; her mail waits in the spool.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if 'merge.failed' in self.inst.log_text(limit=10 ** 6):
                break
            time.sleep(0.1)
        self.assertIn('merge.failed', self.inst.log_text(limit=10 ** 6))
        self.assertTrue(self.spool_pending(self.alice),
                        "alice's undelivered mail is no longer in her spool")
        self.assertEqual(self.inst.role_pid('vault'), vault,
                         'the vault restarted after a damaged store')
        self.assertTrue(self.inst.running())
        self.assertEqual(self.inst.marmot(['store', 'verify', self.bob])
                         .returncode, 0)

        # Restore the byte: the vault retries and nothing was lost.
        self.flip(db, TAMPER_OFFSET)
        counts, waited = self.wait_merged(self.alice, 5, timeout=30)
        harness.note('after repair, alice merged in %.1f s: %r'
                     % (waited, counts))
        self.assertEqual(self.inst.marmot(['store', 'verify', self.alice])
                         .returncode, 0)


if __name__ == '__main__':
    unittest.main()
