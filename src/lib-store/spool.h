#ifndef MARMOT_SPOOL_H
#define MARMOT_SPOOL_H
/* The sealed inbound spool of one account (ARCHITECTURE.md 1.3, 3):
   DATA/accounts/<id>/spool. The delivery path (SMTP, `marmot deliver`)
   needs only the account's public key: each record is sealed with
   libsodium's crypto_box_seal (X25519 + XSalsa20-Poly1305) and appended,
   and the file is fsynced before the delivery is acknowledged. Only the
   vault, holding the account's secret key, can open records.

   File format: a sequence of records
     "MSR1" || u32le(sealed length) || sealed
   where sealed opens to
     record id (16 random bytes) || u64le(received unix time) ||
     u32le(flags) || str(envelope sender) || str(recipient) ||
     str(mailbox hint, "" = INBOX) || u64le(message length) || message
   (str = u32le length || bytes). A record cut short at the end of the file
   (a crash during append) is ignored and never acknowledged; a record
   that does not open (tampering) is reported and skipped.

   Writers take an exclusive flock(2) on the spool for the append + fsync
   (several front sessions and the CLI may deliver at once).

   Merging (the vault): spool_take() atomically renames "spool" to
   "spool.merging" under the lock (or returns an existing spool.merging
   left by a crash), so new deliveries go to a fresh spool while the taken
   one is merged. The store records each merged record id in the same
   transaction as the message, so merging the same file twice after a
   crash never duplicates; spool_done() deletes spool.merging after the
   commit.

   Details of this implementation: a new spool is created as
   spool.tmp-<random>, locked, then linked to "spool" and its directory
   fsynced before any record goes in, so no writer can acknowledge a record
   whose file name is not yet durable. A writer that waited for the lock on
   a spool that was taken meanwhile notices (inode check) and appends to
   the fresh one. The reader resynchronises on the next complete frame
   after damage, so one damaged or torn record in the middle loses only
   itself; spool_reader_damaged() counts damaged stretches (a record that
   does not open or parse, or bytes that are not a frame, before a later
   record). Bytes after the last complete record are a torn end, not
   counted. Anyone holding the public key can seal a record: the file's
   permissions (0600, account directory) are what keeps others out.
   Strings returned in *error_r are valid until the next spool_*() call in
   the same thread. */

#include "lib.h"

struct buf;
struct pool;

#define SPOOL_RECORD_ID_LEN 16
#define SPOOL_MAX_MESSAGE (256u * 1024 * 1024)
/* sender + recipient + mailbox lengths, together. */
#define SPOOL_MAX_ENVELOPE 4000u

enum spool_flags {
	SPOOL_FLAG_JUNK = 0x01, /* a verdict said: file into Junk */
};

struct spool_record {
	uint8_t id[SPOOL_RECORD_ID_LEN];
	int64_t received;
	uint32_t flags;
	const char *sender;
	const char *recipient;
	const char *mailbox; /* "" = INBOX */
	const uint8_t *message;
	size_t message_len;
};

/* Sender and recipient must not be NULL; mailbox NULL means "". The three
   strings together are at most SPOOL_MAX_ENVELOPE bytes and contain no NUL.
   Seals record (record->id is ignored: a fresh random id is generated and
   returned in id_r) and appends it to account_dir/spool, fsyncing the file (and
   the directory when the file was created). Returns 0 once durable, -1 with
   *error_r. */
int spool_append(const char *account_dir, const uint8_t public_key[32],
		 const struct spool_record *record,
		 uint8_t id_r[SPOOL_RECORD_ID_LEN], const char **error_r);

/* Group commit: seals count (> 0) records with the same rules as
   spool_append() and appends them all under one flock and one fsync, so
   that many deliveries to one account cost one fsync. ids_r[i] gets the id
   of records[i]. All or nothing: 0 means every record is durable; -1
   means none may be acknowledged (a record that fails the checks fails
   the batch before anything is written, and after a failed write or fsync
   the file is truncated back to its length before the batch; should even
   that fail, the records left may be merged later, so a retry of the
   batch can duplicate but never lose). */
int spool_append_many(const char *account_dir, const uint8_t public_key[32],
		      const struct spool_record *records, unsigned int count,
		      uint8_t (*ids_r)[SPOOL_RECORD_ID_LEN],
		      const char **error_r);

/* Takes the spool for merging (see above). Returns 1 and the path of the
   taken file (pool memory), 0 if there is nothing to merge, -1 on error. */
int spool_take(const char *account_dir, struct pool *pool,
	       const char **taken_path_r, const char **error_r);
/* Deletes the taken file after its records are committed (and fsyncs its
   directory). A file that is already gone is not an error. */
int spool_done(const char *taken_path, const char **error_r);

struct spool_reader;
/* Opens a taken spool file for reading with the account's key pair. */
struct spool_reader *spool_reader_open(const char *path,
				       const uint8_t public_key[32],
				       const uint8_t secret_key[32],
				       const char **error_r);
/* Returns 1 and the next record (valid until the next call or close, which
   wipe it; the strings are NUL-terminated and contain no NUL), 0 at the end
   (including a torn final record), -1 on an I/O error. A record that does
   not open is skipped and counted in spool_reader_damaged(). */
int spool_reader_next(struct spool_reader *reader,
		      struct spool_record *record_r, const char **error_r);
unsigned int spool_reader_damaged(const struct spool_reader *reader);
void spool_reader_close(struct spool_reader **reader);

#endif
