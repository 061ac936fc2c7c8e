#ifndef MARMOT_BLOB_GC_H
#define MARMOT_BLOB_GC_H
/* The blob collector (issue 3 item 3: blobs are "removed by a collector
   once unreferenced"): deletes the blob files of one account that no row
   of its store references any more (expunged messages, deleted mailboxes,
   the last batch of an import that stopped before its commit).

   Order of a pass, and why:
   1. list the blob files present (the candidates);
   2. then read the set of referenced ids from the store
      (store_foreach_blob: one read transaction, a consistent snapshot);
   3. then remove each candidate that is not in the set and whose file is
      older than min_age_secs (blob_collect).
   Writers call blob_put() before the store commit that references the
   blob, so between the two a blob exists unreferenced. Reading the
   references after listing means a blob that was committed before step 2
   is seen as referenced; a blob whose commit comes after step 2 was put
   (written, or for an existing blob touched: blob_put refreshes its
   mtime) shortly before, so its mtime is younger than the guard and it is
   kept. blob_collect checks the mtime after moving the file aside, so a
   touch racing with the removal either is seen (the blob is put back) or
   finds no file and writes it anew. What remains assumed: a writer
   commits within min_age_secs of its blob_put (the merge and import
   commit every few seconds; BLOB_GC_MIN_AGE_DEFAULT is an hour). A writer
   stopped for longer than that may commit a reference to a collected
   blob, which `marmot store verify` reports as missing.

   Snapshots do not exist yet. They will hard-link blob files; deleting
   our link then frees nothing while a snapshot holds another, which is
   what "out of every snapshot" in the issue asks for, and the bytes
   reported here are those of our links.

   Called by the vault (after merges, at most once an hour per account,
   on its worker pool, never during a merge of the same account) and by
   `marmot store gc`. Security stance: it holds no key; it reads only ids
   from the store and names and mtimes from blobs/, deletes only files
   named by a valid blob id, and logs nothing itself. */

#include "lib.h"

#include <stdatomic.h>

struct store;
struct blob_store;

#define BLOB_GC_MIN_AGE_DEFAULT 3600

struct blob_gc_result {
	uint64_t files; /* blob files listed */
	uint64_t referenced; /* distinct ids the store references */
	uint64_t unreferenced; /* listed and not referenced */
	uint64_t deleted, deleted_bytes; /* removed (dry run: would be) */
	uint64_t young, young_bytes; /* unreferenced, kept by the guard */
	bool stopped; /* *stop was seen: the rest waits for the next pass */
};

/* One pass over the account's blobs. min_age_secs: the age guard
   (BLOB_GC_MIN_AGE_DEFAULT; 0 removes every unreferenced blob, safe only
   when nothing writes the account). dry_run: count, delete nothing. stop
   (may be NULL) is checked between deletions. Returns 0 with *result_r
   filled (also when stopped), or -1 with *error_r (valid until the next
   store or blob call in this thread); what was deleted before a failure
   is reported in *result_r. */
int blob_gc_run(struct store *store, struct blob_store *blobs,
		unsigned int min_age_secs, bool dry_run,
		const atomic_bool *stop, struct blob_gc_result *result_r,
		const char **error_r);

#endif
