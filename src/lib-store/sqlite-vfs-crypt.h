#ifndef MARMOT_SQLITE_VFS_CRYPT_H
#define MARMOT_SQLITE_VFS_CRYPT_H
/* sqlite-vfs-crypt - the page-encrypting SQLite VFS "marmot-crypt" that
   every account's store.db uses (ARCHITECTURE.md 3, issue #3 item 2).

   On-disk format, per database page of P bytes (the database is created
   with 40 reserved bytes per page, header byte 20):

     [0, P-40)    ciphertext of the page (XChaCha20-Poly1305, libsodium)
     [P-40, P-16) 24-byte random nonce, fresh on every write
     [P-16, P)    16-byte Poly1305 tag

   except that bytes [0, 24) of page 1 of the main database stay in the
   clear: the magic "SQLite format 3\0", the page size (16-17), the file
   format versions (18-19, which say "WAL"), the reserved-bytes count (20)
   and the payload fractions (21-23). They are read before any page can be
   decrypted (the page size is needed to find the nonce and tag), they
   describe the format, not the content, and they are authenticated as
   associated data of page 1. Everything from byte 24 on (change counter,
   page count, freelist, schema cookie, the schema itself) is encrypted.
   The associated data binds each page to its position: a tag "MCv1", a
   file kind ('D' database, 'W' WAL), the page number and, in the WAL, the
   frame number. Pages cannot be swapped, moved between the database and
   the WAL or between frames, or moved between files with different keys.

   The WAL keeps its 32-byte header and each frame's 24-byte header in the
   clear (page number, commit size, salts, checksums: no content); the page
   image of each frame is encrypted as above. The -shm file holds only the
   WAL index (page numbers, frame numbers, hash tables, a copy of the WAL
   header), never page content, and is not touched by this VFS. Rollback
   journals, statement journals, super-journals and temporary databases
   are refused (SQLITE_CANTOPEN, logged as store.vfs.refused):
   vfs_crypt_open() puts every database in WAL mode with temp_store=MEMORY,
   so SQLite keeps statement journals, sorter runs, temp tables and VACUUM's
   scratch database in memory and never needs such a file. Nothing in
   plaintext reaches disk through this VFS. */

#include "lib.h"

#include <sqlite3.h>

#define VFS_CRYPT_NAME "marmot-crypt"
#define VFS_CRYPT_KEY_LEN 32
/* Reserved bytes at the end of each page: nonce (24) and tag (16). */
#define VFS_CRYPT_RESERVE 40
/* Leading bytes of page 1 that stay in the clear (see above). */
#define VFS_CRYPT_CLEAR_HEADER 24

/* Registers the "marmot-crypt" VFS over the default SQLite VFS (not as the
   default). Idempotent and thread-safe. Returns 0, or -1 with a reason in
   *error_r (thread-local, valid until the next call in this thread). */
int vfs_crypt_register(const char **error_r);

/* Registers key (VFS_CRYPT_KEY_LEN bytes, copied) for the database at
   path, replacing any key already set for it. The path is made absolute
   with the underlying VFS's xFullPathname, as SQLite does, so any spelling
   of it that SQLite resolves to the same name works. xOpen looks the key
   up for the main database and for its -wal; opening a database through
   this VFS with no key registered fails with SQLITE_CANTOPEN. Each open
   file keeps its own copy of the key, but SQLite opens the -wal file only
   at the first transaction, so clear the key only after the connection
   has run one (store-sqlite.c clears it after its schema check, under a
   lock so that two threads opening the same store cannot interleave).
   Thread-safe. Returns 0, or -1 if the VFS
   could not be registered or the path is too long. */
int vfs_crypt_key_set(const char *path, const uint8_t *key);
/* Forgets (and wipes) the key registered for path, if any. Thread-safe. */
void vfs_crypt_key_clear(const char *path);

/* Opens (flags as for sqlite3_open_v2, typically SQLITE_OPEN_READWRITE |
   SQLITE_OPEN_CREATE) the database at path through this VFS with key,
   which it registers with vfs_crypt_key_set(). A new database gets 4096-byte
   pages with 40 reserved bytes and WAL mode; an existing one must be
   encrypted (one left in rollback mode is switched to WAL). Every
   connection gets:
     - extended result codes, SQLITE_DBCONFIG_DEFENSIVE, trusted_schema=OFF,
       double-quoted string literals off, extension loading off;
     - temp_store=MEMORY (no temp files: see above), mmap off;
     - secure_delete=ON (freed cells and pages are overwritten, so deleted
       mail does not linger in free space, even encrypted);
     - journal_mode=WAL and synchronous=FULL: a commit is durable when it
       returns. NORMAL would only risk losing the last commits on power
       loss, but the spool merge truncates the sealed spool after the
       commit and IMAP APPEND acknowledges after it, so both need the
       commit to be on disk;
     - a busy timeout of 5 seconds.
   Returns 0 with the connection in *db_r, or -1 with *db_r = NULL and a
   reason in *error_r (thread-local, valid until the next call in this
   thread). A wrong key, a damaged page 1 or a database that is not
   encrypted fail here (SQLITE_NOTADB) rather than at a later query. */
int vfs_crypt_open(const char *path, const uint8_t *key, int flags,
		   sqlite3 **db_r, const char **error_r);

#endif
