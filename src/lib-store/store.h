#ifndef MARMOT_STORE_H
#define MARMOT_STORE_H
/* The store interface: one account's mailboxes, messages, flags, change
   log and quota. Protocol code (IMAP, POP3, JMAP, the spool merge, the CLI)
   sees only this header; the SQLite backend (store-sqlite.c, one encrypted
   DATA/accounts/<id>/store.db per account over the marmot-crypt VFS) is
   the first implementation behind a backend vtable (store-private.h), and
   the clustered mode adds a PostgreSQL backend without touching callers.

   Model (RFC 9051 2.3, RFC 7162, RFC 8474, RFC 8621):
   - A mailbox has an id (never reused), a UTF-8 name with '/' hierarchy,
     an optional special use, a subscribed flag, UIDVALIDITY (fixed at
     creation, never changes), UIDNEXT, HIGHESTMODSEQ, and counts.
   - A message in a mailbox has a UID (strictly ascending per mailbox,
     never reused), a MODSEQ (the account-wide counter at its last change),
     system flags and keywords, INTERNALDATE, SAVEDATE, size, a thread id,
     an email id shared by its copies (RFC 8474 EMAILID / JMAP id), and a
     blob id. The cached ENVELOPE, BODYSTRUCTURE and preview come from
     message-index.h.
   - MODSEQ is one counter per account, bumped by every change; every
     change is recorded in the change log (added, flags changed, expunged,
     mailbox created/renamed/deleted) so that CONDSTORE/QRESYNC, JMAP
     /changes and later DAV sync can be answered from it.

   Every operation is one transaction: it happens entirely or not at all.
   Operations that change anything notify listeners (store_notify_*)
   after the commit.

   Errors: functions return 0 (or 1/0 for lookups) on success and -1 with
   *error_r on failure; store_last_error() classifies the last failure.
   *error_r points into the store and stays valid until the next call on
   the same store (store_open's: until the next store_open in the thread).

   Threads: a struct store belongs to one thread at a time (open one per
   thread that needs it; SQLite's WAL lets them share the file). The
   notification registry is thread-safe. */

#include "lib.h"

struct pool;
struct message_index;

#define STORE_EMAIL_ID_LEN 16 /* printable id, e.g. "M" + 15 chars */
#define STORE_MAILBOX_NAME_MAX 1024 /* octets */
#define STORE_KEYWORD_MAX 128 /* octets of one keyword */

enum store_error {
	STORE_ERROR_NONE,
	STORE_ERROR_NOT_FOUND, /* no such mailbox / message */
	STORE_ERROR_EXISTS, /* mailbox name taken */
	STORE_ERROR_QUOTA, /* over quota: nothing was changed */
	STORE_ERROR_INVALID, /* bad name, bad argument */
	STORE_ERROR_DAMAGED, /* decryption or integrity failure */
	STORE_ERROR_TEMP, /* busy, I/O: may succeed when retried */
};

enum store_special_use {
	STORE_SPECIAL_NONE = 0,
	STORE_SPECIAL_INBOX, /* not a RFC 6154 attribute, but one mailbox */
	STORE_SPECIAL_DRAFTS,
	STORE_SPECIAL_SENT,
	STORE_SPECIAL_JUNK,
	STORE_SPECIAL_TRASH,
	STORE_SPECIAL_ARCHIVE,
	STORE_SPECIAL_ALL,
	STORE_SPECIAL_FLAGGED,
};

/* System flags (RFC 9051 2.3.2) as bits. */
enum store_flag {
	STORE_FLAG_SEEN = 0x01,
	STORE_FLAG_ANSWERED = 0x02,
	STORE_FLAG_FLAGGED = 0x04,
	STORE_FLAG_DELETED = 0x08,
	STORE_FLAG_DRAFT = 0x10,
};

enum store_flag_op {
	STORE_FLAGS_ADD,
	STORE_FLAGS_REMOVE,
	STORE_FLAGS_REPLACE,
};

struct store;

struct store_mailbox {
	uint64_t id;
	const char *name;
	enum store_special_use special_use;
	bool subscribed;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;
	uint32_t recent_or_zero; /* IMAP4rev1 RECENT is not kept: always 0 */
	uint64_t size; /* sum of message sizes */
};

struct store_message {
	uint64_t mailbox_id;
	uint32_t uid;
	uint64_t modseq;
	uint32_t flags; /* enum store_flag bits */
	const char *const *keywords; /* NULL-terminated, as stored */
	int64_t internaldate; /* unix time */
	int64_t savedate; /* unix time */
	uint64_t size; /* octets of the raw message */
	char email_id[STORE_EMAIL_ID_LEN + 1];
	char thread_id[STORE_EMAIL_ID_LEN + 1];
	uint8_t blob_id[32];
	const char *envelope;
	const char *bodystructure;
	const char *body;
	const char *preview;
};

struct store_append {
	uint64_t mailbox_id;
	uint32_t flags;
	const char *const *keywords; /* NULL-terminated, or NULL */
	int64_t internaldate; /* 0 = now */
	uint8_t blob_id[32]; /* blob_put() returned it; durable */
	uint64_t size;
	const struct message_index *index;
	/* The spool record this message came from, or NULL. An append whose
	   record id was already merged succeeds without adding anything
	   (uid_r = the earlier UID): this makes the spool merge idempotent. */
	const uint8_t *spool_record_id; /* SPOOL_RECORD_ID_LEN bytes */
};

enum store_change_kind {
	STORE_CHANGE_ADDED,
	STORE_CHANGE_FLAGS,
	STORE_CHANGE_EXPUNGED,
	STORE_CHANGE_MAILBOX, /* created, renamed, deleted, subscribed */
};

struct store_change {
	uint64_t modseq;
	enum store_change_kind kind;
	uint64_t mailbox_id;
	uint32_t uid; /* 0 for STORE_CHANGE_MAILBOX */
};

/* Opens (creating if missing) the store of account account_id under
   data_dir with the account's data key (copied, wiped on close). A new
   store gets INBOX, Drafts, Sent, Junk, Trash and Archive with their
   special uses, all subscribed. */
struct store *store_open(const char *data_dir, uint64_t account_id,
			 const uint8_t data_key[32], const char **error_r);
void store_close(struct store **store);
enum store_error store_last_error(const struct store *store);
/* Quota in bytes (0 = unlimited) enforced by store_append/copy. */
void store_set_quota(struct store *store, uint64_t quota_bytes);
int store_quota_usage(struct store *store, uint64_t *used_r,
		      const char **error_r);

/* Mailboxes. Names: non-empty valid UTF-8, no control characters (CR,
   LF, DEL...), no empty hierarchy levels (no leading, trailing or double
   '/'); at most STORE_MAILBOX_NAME_MAX octets. Names are case-sensitive
   except "INBOX" as the first level, which is stored and returned as
   "INBOX" however it was spelt ("inbox/x" is "INBOX/x").
   Creating "a/b/c" also creates missing "a" and "a/b" (RFC 9051 6.3.4).
   Only INBOX may have STORE_SPECIAL_INBOX. */
/* Those name rules (store.c): checks name and copies it to name_r with
   its INBOX prefix normalised ("inbox/x" -> "INBOX/x"), as every call
   taking a name does. Returns 0, or -1 with *error_r (a static string).
   For callers that compare names with the store's. */
int store_mailbox_name_normalize(const char *name,
				 char name_r[STORE_MAILBOX_NAME_MAX + 1],
				 const char **error_r);
int store_mailbox_create(struct store *store, const char *name,
			 enum store_special_use special_use, uint64_t *id_r,
			 const char **error_r);
/* Renaming INBOX moves its messages to a new mailbox and leaves INBOX
   empty (RFC 9051 6.3.6). Children are renamed with their parent. */
int store_mailbox_rename(struct store *store, uint64_t id, const char *name,
			 const char **error_r);
/* Deletes the mailbox and its messages (INBOX cannot be deleted; a
   mailbox with children cannot either: STORE_ERROR_INVALID). */
int store_mailbox_delete(struct store *store, uint64_t id,
			 const char **error_r);
int store_mailbox_set_subscribed(struct store *store, uint64_t id,
				 bool subscribed, const char **error_r);
/* lookup, get and find_special: 1 and *box_r, 0 if none (*box_r
   zeroed), -1 on error. find_special returns the oldest such mailbox. */
int store_mailbox_lookup(struct store *store, const char *name,
			 struct pool *pool, struct store_mailbox *box_r,
			 const char **error_r);
int store_mailbox_get(struct store *store, uint64_t id, struct pool *pool,
		      struct store_mailbox *box_r, const char **error_r);
int store_mailbox_find_special(struct store *store,
			       enum store_special_use special_use,
			       struct pool *pool, struct store_mailbox *box_r,
			       const char **error_r);
/* All mailboxes, sorted by name. */
int store_mailbox_list(struct store *store, struct pool *pool,
		       struct store_mailbox **boxes_r, unsigned int *count_r,
		       const char **error_r);
/* How many messages of the mailbox have any of the system flags in flag
   (STATUS DELETED, RFC 9051 6.3.11: flag = STORE_FLAG_DELETED). */
int store_mailbox_count_flag(struct store *store, uint64_t id, uint32_t flag,
			     uint32_t *count_r, const char **error_r);

/* Messages. */
int store_append(struct store *store, const struct store_append *append,
		 uint32_t *uid_r, uint64_t *modseq_r, const char **error_r);
/* Appends several in one transaction (the spool merge): all or none. */
int store_append_many(struct store *store, const struct store_append *appends,
		      unsigned int count, uint32_t *uids_r,
		      const char **error_r);
/* Copies uids (ascending) to dst; dst_uids_r (count entries) receives
   the new UIDs (RFC 4315 COPYUID). Missing uids are skipped (their
   dst_uids_r entry is 0). */
int store_copy(struct store *store, uint64_t src_mailbox, const uint32_t *uids,
	       unsigned int count, uint64_t dst_mailbox, uint32_t *dst_uids_r,
	       const char **error_r);
/* Like copy, then expunges from src, atomically (RFC 6851). */
int store_move(struct store *store, uint64_t src_mailbox, const uint32_t *uids,
	       unsigned int count, uint64_t dst_mailbox, uint32_t *dst_uids_r,
	       const char **error_r);
/* Changes flags and keywords of uids. unchangedsince != 0 (RFC 7162 3.1.3)
   skips messages whose modseq is greater, listing them in *failed_r
   (pool memory). *modseq_r gets the new modseq (0 if nothing changed). */
int store_flags_update(struct store *store, uint64_t mailbox_id,
		       const uint32_t *uids, unsigned int count,
		       enum store_flag_op op, uint32_t flags,
		       const char *const *keywords, uint64_t unchangedsince,
		       struct pool *pool, uint32_t **failed_r,
		       unsigned int *failed_count_r, uint64_t *modseq_r,
		       const char **error_r);
/* Expunges uids (or, with uids == NULL, every message flagged \Deleted).
   *expunged_r gets the UIDs actually removed (pool memory). Blobs are not
   deleted here: the collector removes unreferenced ones. */
int store_expunge(struct store *store, uint64_t mailbox_id,
		  const uint32_t *uids, unsigned int count, struct pool *pool,
		  uint32_t **expunged_r, unsigned int *expunged_count_r,
		  const char **error_r);
/* Messages with uid_lo <= UID <= uid_hi (uid_hi 0 = no limit), ascending. */
int store_fetch(struct store *store, uint64_t mailbox_id, uint32_t uid_lo,
		uint32_t uid_hi, struct pool *pool,
		struct store_message **msgs_r, unsigned int *count_r,
		const char **error_r);
/* Like store_fetch without the cached strings (envelope, bodystructure,
   body and preview are NULL): uid, modseq, flags, keywords, dates, size,
   email and thread id and blob id only. SEARCH reads every message's
   row with it. */
int store_fetch_meta(struct store *store, uint64_t mailbox_id, uint32_t uid_lo,
		     uint32_t uid_hi, struct pool *pool,
		     struct store_message **msgs_r, unsigned int *count_r,
		     const char **error_r);
/* The SORT/THREAD keys of a message (RFC 5256, RFC 5957), from
   message-index.h at append time; shared by the copies of an email.
   Strings are never NULL. */
struct store_sort_keys {
	uint32_t uid;
	/* false: appended before the store kept keys (schema 1); the strings
	   are "", date 0: store_sort_keys_fill() sets them. */
	bool present;
	/* The Date: header as unix time (UTC), 0 when missing or
	   unparsable: RFC 5256 2.2 then uses internaldate. */
	int64_t date;
	int64_t internaldate;
	uint64_t size;
	uint64_t modseq; /* the message's (SORT with MODSEQ, RFC 7162) */
	const char *base_subject; /* RFC 5256 2.1, case-folded */
	bool subject_is_reply; /* Re:/Fwd: was removed from it */
	/* addr-mailbox of the first From/To/Cc address, lower-cased. */
	const char *from, *to, *cc;
	/* RFC 5957 display name (or addr-spec) of the first From/To. */
	const char *display_from, *display_to;
	const char *message_id; /* without <>, "" if none */
	/* References then In-Reply-To, without <>, NULL-terminated. */
	const char *const *references;
};
/* The keys of uids (ascending; NULL = every message) in mailbox_id, in
   UID order, one query; missing uids are skipped (pool memory). */
int store_sort_keys(struct store *store, uint64_t mailbox_id,
		    const uint32_t *uids, unsigned int count, struct pool *pool,
		    struct store_sort_keys **keys_r, unsigned int *count_r,
		    const char **error_r);
/* Sets the keys of the emails of (mailbox_id, uids[i]) from indexes[i]
   (rebuilt from the blobs), in one transaction: for messages whose keys
   are not present. UIDs that are gone are skipped. Returns 0 or -1. */
int store_sort_keys_fill(struct store *store, uint64_t mailbox_id,
			 const uint32_t *uids,
			 const struct message_index *const *indexes,
			 unsigned int count, const char **error_r);
/* Every UID of the mailbox, ascending, in *uids_r (i_malloc'ed: the
   caller frees it; NULL when empty). The light form of store_fetch for
   IMAP SELECT's sequence map. */
int store_uids(struct store *store, uint64_t mailbox_id, uint32_t **uids_r,
	       unsigned int *count_r, const char **error_r);
/* The distinct keywords set on the mailbox's messages, sorted,
   NULL-terminated (pool memory): IMAP FLAGS and PERMANENTFLAGS. */
int store_mailbox_keywords(struct store *store, uint64_t mailbox_id,
			   struct pool *pool, const char ***keywords_r,
			   const char **error_r);
/* Changes with modseq > since, ascending; mailbox_id 0 = all mailboxes. */
int store_changes_since(struct store *store, uint64_t mailbox_id,
			uint64_t since, struct pool *pool,
			struct store_change **changes_r, unsigned int *count_r,
			const char **error_r);
uint64_t store_highest_modseq(struct store *store);

enum store_search_mode {
	/* IMAP SEARCH BODY/TEXT/FROM...: case-insensitive substring
	   (trigram index; 1-2 character needles fall back to a scan). */
	STORE_SEARCH_SUBSTRING,
	/* Webmail: words and word prefixes, all must match. */
	STORE_SEARCH_WORDS,
};
enum store_search_field {
	STORE_SEARCH_TEXT, /* everything: headers and body */
	STORE_SEARCH_BODY,
	STORE_SEARCH_FROM,
	STORE_SEARCH_TO,
	STORE_SEARCH_CC,
	STORE_SEARCH_BCC,
	STORE_SEARCH_SUBJECT,
};
/* UIDs in mailbox_id (0 = all mailboxes: results are (mailbox, uid) pairs
   in mailboxes_r) matching query, newest internaldate first. */
int store_search(struct store *store, uint64_t mailbox_id,
		 enum store_search_field field, enum store_search_mode mode,
		 const char *query, struct pool *pool, uint64_t **mailboxes_r,
		 uint32_t **uids_r, unsigned int *count_r,
		 const char **error_r);

/* Integrity (`marmot store verify`): PRAGMA integrity_check, the FTS5
   indexes against their content, the mailbox counts, UIDNEXT and
   HIGHESTMODSEQ against the messages, the quota usage and the modseq
   counter; plus, with blobs given (may be NULL), that every referenced
   blob exists, decrypts, hashes to its id and has the recorded size (it
   reads every blob). Returns 0 if all is well, -1 with
   STORE_ERROR_DAMAGED and a description of the first problem. */
struct blob_store;
int store_verify(struct store *store, struct blob_store *blobs,
		 const char **error_r);
/* Calls cb for every distinct blob id referenced (the collector and
   stats). */
int store_foreach_blob(struct store *store,
		       int (*cb)(const uint8_t blob_id[32], uint64_t size,
				 void *context),
		       void *context, const char **error_r);

/* Change notifications (in this process): after every committed change,
   each listener registered for the account is called with the account id,
   the mailbox id (0 = mailbox list) and the new modseq. The vault also
   forwards them to the front over IPC (IPC_FRONT_CHANGED) so IDLE and
   push in other processes see them at once. */
typedef void store_notify_callback_t(uint64_t account_id, uint64_t mailbox_id,
				     uint64_t modseq, void *context);
void store_notify_add(uint64_t account_id, store_notify_callback_t *cb,
		      void *context);
void store_notify_remove(uint64_t account_id, store_notify_callback_t *cb,
			 void *context);

#endif
