#ifndef MARMOT_VAULT_MERGE_H
#define MARMOT_VAULT_MERGE_H
/* The spool merge (ARCHITECTURE.md 1.3, issue 3 item 4): the vault moves
   the sealed records that the delivery path appended to
   DATA/accounts/<id>/spool into the account's encrypted store.

   vault_merge_account() is the work itself, synchronous and blocking
   (SQLite, fsync): unwrap the account's keys with the master key, take the
   spool (spool_take), and for every record: blob_put, message_index_build,
   the filter hook, then store_append_many in batches with the record id
   set, so that merging the same taken file again after a crash adds
   nothing twice; spool_done only after the last commit. Quota is not
   enforced here (mail that was acknowledged is never dropped): an account
   over its quota after the merge is reported in over_quota.

   struct vault_merger is the scheduler in the vault's loop thread: it
   watches DATA/accounts and every account directory with inotify, merges
   every account with a pending spool at start, coalesces bursts of events,
   runs at most one job per account at a time on its own worker pool, and
   reports each committed change to the vault (which tells the fronts).

   Blob collection (blob-gc.h) rides on the merge: a job whose account was
   last collected VAULT_GC_INTERVAL_MSECS ago or more (or never, since the
   vault started) also runs blob_gc_run() after its last commit, with the
   store and blobs the merge opened. So it runs after merges, on the
   worker pool, at most once an hour per account, and never at the same
   time as a merge of that account (one job per account). A collection
   failure is logged (gc.failed) and does not fail the merge.

   Zero-access accounts (doc/zero-access.md): their keys do not open with
   the master key. The merger takes them from the vault's keyring
   (vault-keyring.h), where a login with the password put them; while they
   are not there the account is skipped (logged once as merge.locked) and
   its spool is left untouched, sealed, until vault_merger_schedule() after
   the next unlock. */

#include "lib.h"
#include "account-keys.h"
#include "blob-gc.h"

#include <stdatomic.h>

struct directory;
struct ioloop;
struct message_index;
struct pool;
struct spool_record;

/* The filtering hook (Sieve, spam verdicts): called for every record
   before it is appended. *mailbox_name comes in as the record's mailbox
   hint, or NULL when there is none; the filter may replace it with the
   name of a mailbox (pointing to memory that lives until the record is
   committed, e.g. the record's or the index's). NULL, or a name that does
   not exist in the store, files the message into the default: Junk if the
   record has SPOOL_FLAG_JUNK, else INBOX. Returns 0, or -1 to stop the
   merge and retry it later (a temporary failure). Runs on a worker
   thread. The default filter keeps what it is given, so today mail goes
   to the hinted mailbox, Junk or INBOX. Set once, before the vault
   starts merging. */
typedef int vault_merge_filter_t(const struct spool_record *record,
				 const struct message_index *index,
				 const char **mailbox_name);
extern vault_merge_filter_t *vault_merge_filter;

/* What the merge needs to know about an account (from directory.db). */
struct vault_merge_account {
	uint64_t id;
	uint64_t quota_bytes; /* 0 = unlimited; only reported */
	/* Also collect unreferenced blobs after the merge (if anything was
	   taken), with the age guard BLOB_GC_MIN_AGE_DEFAULT. */
	bool collect;
	uint8_t public_key[ACCOUNT_PUBLIC_KEY_LEN];
	uint8_t wrapped_keys[ACCOUNT_WRAPPED_LEN];
	/* A zero-access account: wrapped_keys is unused, and keys must be
	   given. */
	bool zero_access;
	/* Unlocked keys to use instead of unwrapping wrapped_keys with the
	   master key (the caller owns and wipes them), or NULL. */
	const struct account_keys *keys;
};

/* One committed change: the mailbox that received messages and the
   account's modseq after the commit. */
struct vault_merge_change {
	uint64_t mailbox_id;
	uint64_t modseq;
};

struct vault_merge_result {
	unsigned int files; /* taken spool files merged and removed */
	unsigned int messages; /* records committed (a redo counts again) */
	unsigned int damaged; /* records that did not open: skipped */
	bool stopped; /* *stop was seen: the taken file stays for later */
	bool over_quota;
	/* quota_used is set (the account has a quota and mail was
	   merged). */
	bool quota_known;
	uint64_t quota_used;
	/* account->collect: whether the collection ran, its counts, and its
	   error (pool memory) when it failed. */
	bool collected;
	struct blob_gc_result gc;
	const char *gc_error;
	/* Latest modseq per mailbox that changed (pool memory). */
	struct vault_merge_change *changes;
	unsigned int change_count;
};

/* Merges every pending spool file of account under data_dir (the taken
   file left by a crash first, then the current spool, at most a few
   rounds). stop (may be NULL) is checked between batches. Returns 0 (also
   when there was nothing to merge), or -1 with *error_r (pool memory);
   whatever was committed before the failure stays committed and the taken
   file stays, so a later call finishes the work without duplicates.
   Damaged records are logged (merge.damaged) and the taken file that held
   them is kept as spool.damaged-<time>-<n> for the operator. A
   zero-access account without keys fails before the spool is touched. */
int vault_merge_account(const char *data_dir,
			const uint8_t master_key[MASTER_KEY_LEN],
			const struct vault_merge_account *account,
			const atomic_bool *stop, struct pool *pool,
			struct vault_merge_result *result_r,
			const char **error_r);

struct vault_merger;
struct vault_keyring;

/* Called in the loop thread for each change a merge committed. */
typedef void vault_merge_changed_t(uint64_t account_id, uint64_t mailbox_id,
				   uint64_t modseq, void *context);

/* Starts watching data_dir/accounts (created if missing) and schedules a
   merge of every account. dir is used in the loop thread only; master_key
   must stay valid until vault_merger_destroy(). threads: worker threads,
   so the number of accounts merged at once. Returns NULL with *error_r
   (static or pool-free string) if inotify cannot be set up. */
struct vault_merger *vault_merger_create(
	struct ioloop *ioloop, const char *data_dir, struct directory *dir,
	const uint8_t *master_key, unsigned int threads,
	vault_merge_changed_t *changed, void *context, const char **error_r);
/* Where the unlocked keys of zero-access accounts are found (loop thread
   only; must outlive the merger). Without one they are always locked. */
void vault_merger_set_keyring(struct vault_merger *merger,
			      struct vault_keyring *keyring);
/* Called in the loop thread after a merge of an account with a quota
   committed messages, with its store usage after the commit (the
   recipient check's usage cache, vault-rcpt.h). */
typedef void vault_merge_usage_t(uint64_t account_id, uint64_t used,
				 void *context);
void vault_merger_set_usage_callback(struct vault_merger *merger,
				     vault_merge_usage_t *usage, void *context);
/* How often an account's blobs may be collected (default
   VAULT_GC_INTERVAL_MSECS; tests shorten it). */
#define VAULT_GC_INTERVAL_MSECS (3600ULL * 1000)
void vault_merger_set_gc_interval(struct vault_merger *merger,
				  uint64_t interval_msecs);
/* Asks for a merge of one account (a login, a test); coalesced. */
void vault_merger_schedule(struct vault_merger *merger, uint64_t account_id);
/* Stops scheduling; jobs in flight end after their current batch. */
void vault_merger_stop(struct vault_merger *merger);
/* Merge jobs queued or running. */
unsigned int vault_merger_in_flight(const struct vault_merger *merger);
/* Stops, waits for the jobs in flight (their changes are still reported)
   and frees everything. NULL is tolerated. */
void vault_merger_destroy(struct vault_merger **merger);

#endif
