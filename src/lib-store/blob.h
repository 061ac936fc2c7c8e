#ifndef MARMOT_BLOB_H
#define MARMOT_BLOB_H
/* Message bodies of one account, immutable and encrypted
   (ARCHITECTURE.md 3): DATA/accounts/<id>/blobs/<hh>/<hex-id>.

   id   = BLAKE2b-256(key = blob_id_key, msg = the raw message bytes), where
	  blob_id_key = BLAKE2b-256(key = data key, msg = "marmot/blob-id/v1")
	  Identical messages in one account share one blob; across accounts
	  the ids differ (keyed), so nothing about the content leaks.
   file = "MBL1" || u64le(raw length) || nonce(24) ||
	  XChaCha20-Poly1305(blob_enc_key, nonce,
			     zstd(raw), ad = "MBL1" || id || u64le(raw len))
	  blob_enc_key = BLAKE2b-256(key = data key, msg = "marmot/blob-enc/v1")

   blob_put() writes to a temporary file in the same directory, fsyncs it,
   renames it into place and fsyncs the directory, so a blob is durable
   before the metadata commit that references it (callers commit after
   blob_put returns). A blob that already exists is not rewritten, but its
   mtime is set to now: the collector (blob-gc.h) removes only blobs whose
   mtime is older than its age guard, so a blob that blob_put just
   returned survives until the caller's commit references it. Files
   are created 0600. blob_get() verifies the tag, decompresses, and checks
   that the content hashes to the id: a flipped byte anywhere is a clean
   error. Sizes are bounded by BLOB_MAX_SIZE.

   Temporary files are blobs/<hh>/.tmp-<random>; blob_foreach() skips them
   and removes those older than an hour (left by a crash). Deleting is not
   fsynced (a blob that comes back after a crash is collected again).
   Strings returned in *error_r are valid until the next blob_*() call in
   the same thread. A blob_store may be used by one thread at a time;
   several processes may write the same store at once. */

#include "lib.h"

#include <time.h>

struct buf;

#define BLOB_ID_LEN 32
#define BLOB_ID_HEX_LEN (BLOB_ID_LEN * 2)
#define BLOB_MAX_SIZE (256u * 1024 * 1024)

struct blob_store;

/* account_dir: DATA/accounts/<id>. data_key: the account's 32-byte data
   key (copied; wiped on close). Creates blobs/ (0700) if missing. */
struct blob_store *blob_store_open(const char *account_dir,
				   const uint8_t data_key[32],
				   const char **error_r);
void blob_store_close(struct blob_store **bs);

/* Computes the id of data without storing it. */
void blob_id_compute(struct blob_store *bs, const void *data, size_t len,
		     uint8_t id_r[BLOB_ID_LEN]);
/* Stores data. Returns 1 if it was written, 0 if it existed already
   (dedup), -1 on error. id_r gets the id in both cases. file_size_r
   (may be NULL) gets the size of the file on disk. An existing file is
   trusted as it is (it is not read back). */
int blob_put(struct blob_store *bs, const void *data, size_t len,
	     uint8_t id_r[BLOB_ID_LEN], uint64_t *file_size_r,
	     const char **error_r);
/* Reads and verifies a blob into out (appended). Returns 0, or -1 with
 *error_r ("blob <hex> is damaged", "blob <hex> is missing"). */
int blob_get(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN],
	     struct buf *out, const char **error_r);
bool blob_exists(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN]);
/* Removes a blob (the collector, once no row references it). Returns 0,
   or -1 on error; a missing blob is not an error. */
int blob_delete(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN],
		const char **error_r);
/* Returns 1 and the size and mtime of a blob's file, 0 if there is none,
   -1 on error. */
int blob_stat(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN],
	      uint64_t *file_size_r, time_t *mtime_r, const char **error_r);
/* The collector's removal: deletes the blob only if its file's mtime is
   before older_than, atomically with respect to blob_put's touch (the
   file is moved to a temporary name, checked there, and put back if a
   writer touched it). Returns 1 if removed (*file_size_r = its size), 0
   if kept (young, or already gone; *file_size_r = 0), -1 on error (the
   blob is put back). */
int blob_collect(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN],
		 time_t older_than, uint64_t *file_size_r,
		 const char **error_r);
/* Calls cb for every blob present (id, file size). Stops and returns -1 if
   cb returns -1. */
int blob_foreach(struct blob_store *bs,
		 int (*cb)(const uint8_t id[BLOB_ID_LEN], uint64_t file_size,
			   void *context),
		 void *context, const char **error_r);

void blob_id_to_hex(const uint8_t id[BLOB_ID_LEN],
		    char hex_r[BLOB_ID_HEX_LEN + 1]);
int blob_id_from_hex(const char *hex, uint8_t id_r[BLOB_ID_LEN]);

#endif
