#ifndef MARMOT_STORE_PRIVATE_H
#define MARMOT_STORE_PRIVATE_H
/* store-private.h - the backend side of store.h: the vtable a storage
   backend implements and the helpers store.c offers it. Only store.c and
   the backends (store-sqlite.c; later a PostgreSQL one) include this.

   Division of work: store.c checks every argument (mailbox names,
   keywords, flags, pointers, counts) before calling the backend, so a
   backend may assume valid, normalised input (mailbox names arrive with
   their INBOX prefix spelt "INBOX"). A backend runs each operation as one
   transaction, reports failures with store_set_error(), queues
   notifications with store_notify_queue() while the transaction is open
   and calls store_notify_flush() after the commit (store_notify_discard()
   after a rollback). */

#include "store.h"

struct store_vfuncs {
	void (*close)(struct store *store);
	int (*quota_usage)(struct store *store, uint64_t *used_r);

	int (*mailbox_create)(struct store *store, const char *name,
			      enum store_special_use special_use,
			      uint64_t *id_r);
	int (*mailbox_rename)(struct store *store, uint64_t id,
			      const char *name);
	int (*mailbox_delete)(struct store *store, uint64_t id);
	int (*mailbox_set_subscribed)(struct store *store, uint64_t id,
				      bool subscribed);
	/* The three lookups return 1 (found), 0 (not found) or -1. */
	int (*mailbox_lookup)(struct store *store, const char *name,
			      struct pool *pool, struct store_mailbox *box_r);
	int (*mailbox_get)(struct store *store, uint64_t id, struct pool *pool,
			   struct store_mailbox *box_r);
	int (*mailbox_find_special)(struct store *store,
				    enum store_special_use special_use,
				    struct pool *pool,
				    struct store_mailbox *box_r);
	int (*mailbox_list)(struct store *store, struct pool *pool,
			    struct store_mailbox **boxes_r,
			    unsigned int *count_r);
	int (*mailbox_count_flag)(struct store *store, uint64_t id,
				  uint32_t flag, uint32_t *count_r);

	/* modseqs_r may be NULL. */
	int (*append_many)(struct store *store,
			   const struct store_append *appends,
			   unsigned int count, uint32_t *uids_r,
			   uint64_t *modseqs_r);
	int (*copy)(struct store *store, uint64_t src_mailbox,
		    const uint32_t *uids, unsigned int count,
		    uint64_t dst_mailbox, uint32_t *dst_uids_r, bool move);
	int (*flags_update)(struct store *store, uint64_t mailbox_id,
			    const uint32_t *uids, unsigned int count,
			    enum store_flag_op op, uint32_t flags,
			    const char *const *keywords,
			    uint64_t unchangedsince, struct pool *pool,
			    uint32_t **failed_r, unsigned int *failed_count_r,
			    uint64_t *modseq_r);
	int (*expunge)(struct store *store, uint64_t mailbox_id,
		       const uint32_t *uids, unsigned int count,
		       struct pool *pool, uint32_t **expunged_r,
		       unsigned int *expunged_count_r);
	int (*fetch)(struct store *store, uint64_t mailbox_id, uint32_t uid_lo,
		     uint32_t uid_hi, struct pool *pool,
		     struct store_message **msgs_r, unsigned int *count_r);
	int (*fetch_meta)(struct store *store, uint64_t mailbox_id,
			  uint32_t uid_lo, uint32_t uid_hi, struct pool *pool,
			  struct store_message **msgs_r, unsigned int *count_r);
	int (*sort_keys)(struct store *store, uint64_t mailbox_id,
			 const uint32_t *uids, unsigned int count,
			 struct pool *pool, struct store_sort_keys **keys_r,
			 unsigned int *count_r);
	int (*sort_keys_fill)(struct store *store, uint64_t mailbox_id,
			      const uint32_t *uids,
			      const struct message_index *const *indexes,
			      unsigned int count);
	int (*uids)(struct store *store, uint64_t mailbox_id, uint32_t **uids_r,
		    unsigned int *count_r);
	int (*keywords)(struct store *store, uint64_t mailbox_id,
			struct pool *pool, const char ***keywords_r);
	int (*changes_since)(struct store *store, uint64_t mailbox_id,
			     uint64_t since, struct pool *pool,
			     struct store_change **changes_r,
			     unsigned int *count_r);
	uint64_t (*highest_modseq)(struct store *store);
	int (*search)(struct store *store, uint64_t mailbox_id,
		      enum store_search_field field,
		      enum store_search_mode mode, const char *query,
		      struct pool *pool, uint64_t **mailboxes_r,
		      uint32_t **uids_r, unsigned int *count_r);
	/* Database-level checks only; store.c checks the blobs. */
	int (*verify)(struct store *store);
	int (*foreach_blob)(struct store *store,
			    int (*cb)(const uint8_t blob_id[32], uint64_t size,
				      void *context),
			    void *context);
};

struct store_notify_pending {
	uint64_t mailbox_id;
	uint64_t modseq;
};

#define STORE_ERROR_STR_MAX 256
#define STORE_NOTIFY_PENDING_MAX 16

/* The part of every backend's store object that store.c reads and
   writes; a backend embeds it as its first member. */
struct store {
	const struct store_vfuncs *v;
	uint64_t account_id;
	uint64_t quota_bytes; /* 0 = unlimited */
	enum store_error error;
	char error_str[STORE_ERROR_STR_MAX];
	/* Changes of the open transaction, one entry per mailbox (0 = the
	   mailbox list) with its highest modseq; overflow collapses into a
	   "mailbox list" entry. */
	struct store_notify_pending pending[STORE_NOTIFY_PENDING_MAX];
	unsigned int pending_count;
};

/* Records a failure (kind and a printf-style reason) in store; the public
   functions hand store->error_str to the caller. Returns -1. */
int store_set_error(struct store *store, enum store_error error,
		    const char *fmt, ...) ATTR_FORMAT(3, 4);

void store_notify_queue(struct store *store, uint64_t mailbox_id,
			uint64_t modseq);
/* Calls the listeners of store->account_id for every queued change and
   empties the queue. Call after the commit, never with locks held. */
void store_notify_flush(struct store *store);
void store_notify_discard(struct store *store);

/* The SQLite backend (store-sqlite.c). Returns NULL with *error_r
   (a thread-local buffer) on failure. */
struct store *store_sqlite_open(const char *data_dir, uint64_t account_id,
				const uint8_t data_key[32],
				const char **error_r);

/* RFC 9051 9 flag-keyword: an atom, not starting with '\\'. */
bool store_keyword_is_valid(const char *keyword);

#endif
