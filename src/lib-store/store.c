/* store.c - the backend-independent half of the store interface
   (store.h): argument checks, mailbox name and keyword rules, error
   bookkeeping, the process-local notification registry, and dispatch
   through the backend vtable (store-private.h). Callers are the vault
   (IMAP, POP3, JMAP sessions and the spool merge) and the CLI.

   Security stance: everything a client can influence (mailbox names,
   keywords, flag bits, UID lists, search strings) is checked here before
   a backend sees it, so backends can trust their input's shape; the
   backends still bind every value as an SQL parameter. Error strings
   never contain message content, only names the caller supplied. */

#include "lib.h"
#include "blob.h"
#include "buf.h"
#include "pool.h"
#include "store-private.h"

#include <pthread.h>
#include <strings.h>
#include <stdio.h>

#define STORE_FLAGS_ALL                                               \
	(STORE_FLAG_SEEN | STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED | \
	 STORE_FLAG_DELETED | STORE_FLAG_DRAFT)

int store_set_error(struct store *store, enum store_error error,
		    const char *fmt, ...)
{
	va_list args;

	store->error = error;
	va_start(args, fmt);
	vsnprintf(store->error_str, sizeof(store->error_str), fmt, args);
	va_end(args);
	return -1;
}

enum store_error store_last_error(const struct store *store)
{
	return store->error;
}

static int store_fail(struct store *store, enum store_error error,
		      const char *reason, const char **error_r)
{
	store_set_error(store, error, "%s", reason);
	*error_r = store->error_str;
	return -1;
}

static void store_begin(struct store *store)
{
	store->error = STORE_ERROR_NONE;
	store->error_str[0] = '\0';
}

static int store_result(struct store *store, int ret, const char **error_r)
{
	if (ret < 0) {
		if (store->error == STORE_ERROR_NONE)
			store_set_error(store, STORE_ERROR_TEMP,
					"store backend failed");
		*error_r = store->error_str;
	}
	return ret;
}

/* Name rules */

/* Length of the UTF-8 sequence at s (RFC 3629 4: no overlongs, no
   surrogates, nothing above U+10FFFF), or 0 if it is invalid. */
static size_t utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;
		unsigned char hi = c == 0xed ? 0x9f : 0xbf;

		if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
		unsigned char hi = c == 0xf4 ? 0x8f : 0xbf;

		if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

int store_mailbox_name_normalize(const char *name,
				 char name_r[STORE_MAILBOX_NAME_MAX + 1],
				 const char **error_r)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t len, i, n;

	if (name == NULL || name[0] == '\0') {
		*error_r = "mailbox name is empty";
		return -1;
	}
	len = strlen(name);
	if (len > STORE_MAILBOX_NAME_MAX) {
		*error_r = "mailbox name is too long";
		return -1;
	}
	for (i = 0; i < len; i += n) {
		if (s[i] < 0x20 || s[i] == 0x7f) {
			*error_r = "mailbox name contains a control character";
			return -1;
		}
		n = utf8_seq_len(s + i);
		if (n == 0) {
			*error_r = "mailbox name is not valid UTF-8";
			return -1;
		}
		if (s[i] == '/' &&
		    (i == 0 || i + 1 == len || s[i + 1] == '/')) {
			*error_r = "mailbox name has an empty hierarchy level";
			return -1;
		}
	}
	memcpy(name_r, name, len + 1);
	/* RFC 9051 5.1: INBOX is case-insensitive; its children too, as
	   their first level is INBOX. */
	if (strncasecmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == '/'))
		memcpy(name_r, "INBOX", 5);
	return 0;
}

bool store_keyword_is_valid(const char *keyword)
{
	size_t i;

	if (keyword == NULL || keyword[0] == '\0' || keyword[0] == '\\')
		return false;
	for (i = 0; keyword[i] != '\0'; i++) {
		unsigned char c = (unsigned char)keyword[i];

		if (i >= STORE_KEYWORD_MAX)
			return false;
		/* RFC 9051 9: ATOM-CHAR is any CHAR except atom-specials. */
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static bool keywords_are_valid(const char *const *keywords)
{
	unsigned int i;

	for (i = 0; keywords != NULL && keywords[i] != NULL; i++) {
		if (!store_keyword_is_valid(keywords[i]))
			return false;
	}
	return true;
}

static bool uids_are_valid(const uint32_t *uids, unsigned int count)
{
	unsigned int i;

	if (count > 0 && uids == NULL)
		return false;
	for (i = 0; i < count; i++) {
		if (uids[i] == 0 || (i > 0 && uids[i] <= uids[i - 1]))
			return false;
	}
	return true;
}

/* Open, close, quota */

struct store *store_open(const char *data_dir, uint64_t account_id,
			 const uint8_t data_key[32], const char **error_r)
{
	if (data_dir == NULL || data_dir[0] == '\0' || account_id == 0 ||
	    data_key == NULL) {
		*error_r = "store_open: invalid arguments";
		return NULL;
	}
	return store_sqlite_open(data_dir, account_id, data_key, error_r);
}

void store_close(struct store **_store)
{
	struct store *store = *_store;

	*_store = NULL;
	if (store == NULL)
		return;
	store->v->close(store);
}

void store_set_quota(struct store *store, uint64_t quota_bytes)
{
	store->quota_bytes = quota_bytes;
}

int store_quota_usage(struct store *store, uint64_t *used_r,
		      const char **error_r)
{
	store_begin(store);
	return store_result(store, store->v->quota_usage(store, used_r),
			    error_r);
}

/* Mailboxes */

int store_mailbox_create(struct store *store, const char *name,
			 enum store_special_use special_use, uint64_t *id_r,
			 const char **error_r)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	const char *reason;
	uint64_t id;

	store_begin(store);
	if (store_mailbox_name_normalize(name, norm, &reason) < 0)
		return store_fail(store, STORE_ERROR_INVALID, reason, error_r);
	if ((unsigned int)special_use > STORE_SPECIAL_FLAGGED ||
	    (special_use == STORE_SPECIAL_INBOX &&
	     strcmp(norm, "INBOX") != 0)) {
		return store_fail(store, STORE_ERROR_INVALID,
				  "invalid special use", error_r);
	}
	if (store->v->mailbox_create(store, norm, special_use, &id) < 0)
		return store_result(store, -1, error_r);
	if (id_r != NULL)
		*id_r = id;
	return 0;
}

int store_mailbox_rename(struct store *store, uint64_t id, const char *name,
			 const char **error_r)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	const char *reason;

	store_begin(store);
	if (store_mailbox_name_normalize(name, norm, &reason) < 0)
		return store_fail(store, STORE_ERROR_INVALID, reason, error_r);
	if (strcmp(norm, "INBOX") == 0) {
		return store_fail(store, STORE_ERROR_EXISTS,
				  "INBOX already exists", error_r);
	}
	return store_result(store, store->v->mailbox_rename(store, id, norm),
			    error_r);
}

int store_mailbox_delete(struct store *store, uint64_t id, const char **error_r)
{
	store_begin(store);
	return store_result(store, store->v->mailbox_delete(store, id),
			    error_r);
}

int store_mailbox_set_subscribed(struct store *store, uint64_t id,
				 bool subscribed, const char **error_r)
{
	store_begin(store);
	return store_result(
		store, store->v->mailbox_set_subscribed(store, id, subscribed),
		error_r);
}

int store_mailbox_lookup(struct store *store, const char *name,
			 struct pool *pool, struct store_mailbox *box_r,
			 const char **error_r)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	const char *reason;

	store_begin(store);
	memset(box_r, 0, sizeof(*box_r));
	/* An invalid name names no mailbox. */
	if (store_mailbox_name_normalize(name, norm, &reason) < 0)
		return 0;
	return store_result(store,
			    store->v->mailbox_lookup(store, norm, pool, box_r),
			    error_r);
}

int store_mailbox_get(struct store *store, uint64_t id, struct pool *pool,
		      struct store_mailbox *box_r, const char **error_r)
{
	store_begin(store);
	memset(box_r, 0, sizeof(*box_r));
	return store_result(
		store, store->v->mailbox_get(store, id, pool, box_r), error_r);
}

int store_mailbox_find_special(struct store *store,
			       enum store_special_use special_use,
			       struct pool *pool, struct store_mailbox *box_r,
			       const char **error_r)
{
	store_begin(store);
	memset(box_r, 0, sizeof(*box_r));
	if (special_use == STORE_SPECIAL_NONE ||
	    (unsigned int)special_use > STORE_SPECIAL_FLAGGED) {
		return store_fail(store, STORE_ERROR_INVALID,
				  "invalid special use", error_r);
	}
	return store_result(
		store,
		store->v->mailbox_find_special(store, special_use, pool, box_r),
		error_r);
}

int store_mailbox_list(struct store *store, struct pool *pool,
		       struct store_mailbox **boxes_r, unsigned int *count_r,
		       const char **error_r)
{
	store_begin(store);
	*boxes_r = NULL;
	*count_r = 0;
	return store_result(
		store, store->v->mailbox_list(store, pool, boxes_r, count_r),
		error_r);
}

int store_mailbox_count_flag(struct store *store, uint64_t id, uint32_t flag,
			     uint32_t *count_r, const char **error_r)
{
	store_begin(store);
	*count_r = 0;
	if (flag == 0 || (flag & ~STORE_FLAGS_ALL) != 0)
		return store_fail(store, STORE_ERROR_INVALID, "invalid flags",
				  error_r);
	return store_result(
		store, store->v->mailbox_count_flag(store, id, flag, count_r),
		error_r);
}

/* Messages */

static int append_check(struct store *store, const struct store_append *a,
			unsigned int i, const char **error_r)
{
	if (a->mailbox_id == 0 || (a->flags & ~STORE_FLAGS_ALL) != 0 ||
	    !keywords_are_valid(a->keywords) || a->internaldate < 0) {
		store_set_error(store, STORE_ERROR_INVALID,
				"append %u: invalid mailbox, flags, keyword "
				"or date",
				i);
		*error_r = store->error_str;
		return -1;
	}
	return 0;
}

int store_append(struct store *store, const struct store_append *append,
		 uint32_t *uid_r, uint64_t *modseq_r, const char **error_r)
{
	uint32_t uid = 0;
	uint64_t modseq = 0;

	store_begin(store);
	if (append_check(store, append, 0, error_r) < 0)
		return -1;
	if (store->v->append_many(store, append, 1, &uid, &modseq) < 0)
		return store_result(store, -1, error_r);
	if (uid_r != NULL)
		*uid_r = uid;
	if (modseq_r != NULL)
		*modseq_r = modseq;
	return 0;
}

int store_append_many(struct store *store, const struct store_append *appends,
		      unsigned int count, uint32_t *uids_r,
		      const char **error_r)
{
	unsigned int i;

	store_begin(store);
	if (count == 0)
		return 0;
	if (appends == NULL || uids_r == NULL) {
		return store_fail(store, STORE_ERROR_INVALID,
				  "invalid arguments", error_r);
	}
	for (i = 0; i < count; i++) {
		if (append_check(store, &appends[i], i, error_r) < 0)
			return -1;
	}
	return store_result(
		store,
		store->v->append_many(store, appends, count, uids_r, NULL),
		error_r);
}

static int copy_or_move(struct store *store, uint64_t src_mailbox,
			const uint32_t *uids, unsigned int count,
			uint64_t dst_mailbox, uint32_t *dst_uids_r, bool move,
			const char **error_r)
{
	store_begin(store);
	if (!uids_are_valid(uids, count) || (count > 0 && dst_uids_r == NULL))
		return store_fail(store, STORE_ERROR_INVALID,
				  "UIDs must be non-zero and ascending",
				  error_r);
	if (src_mailbox == dst_mailbox && move)
		return store_fail(store, STORE_ERROR_INVALID,
				  "cannot move into the same mailbox", error_r);
	return store_result(store,
			    store->v->copy(store, src_mailbox, uids, count,
					   dst_mailbox, dst_uids_r, move),
			    error_r);
}

int store_copy(struct store *store, uint64_t src_mailbox, const uint32_t *uids,
	       unsigned int count, uint64_t dst_mailbox, uint32_t *dst_uids_r,
	       const char **error_r)
{
	return copy_or_move(store, src_mailbox, uids, count, dst_mailbox,
			    dst_uids_r, false, error_r);
}

int store_move(struct store *store, uint64_t src_mailbox, const uint32_t *uids,
	       unsigned int count, uint64_t dst_mailbox, uint32_t *dst_uids_r,
	       const char **error_r)
{
	return copy_or_move(store, src_mailbox, uids, count, dst_mailbox,
			    dst_uids_r, true, error_r);
}

int store_flags_update(struct store *store, uint64_t mailbox_id,
		       const uint32_t *uids, unsigned int count,
		       enum store_flag_op op, uint32_t flags,
		       const char *const *keywords, uint64_t unchangedsince,
		       struct pool *pool, uint32_t **failed_r,
		       unsigned int *failed_count_r, uint64_t *modseq_r,
		       const char **error_r)
{
	uint32_t *failed = NULL;
	unsigned int failed_count = 0;
	uint64_t modseq = 0;

	store_begin(store);
	if (!uids_are_valid(uids, count) || (flags & ~STORE_FLAGS_ALL) != 0 ||
	    !keywords_are_valid(keywords) ||
	    (op != STORE_FLAGS_ADD && op != STORE_FLAGS_REMOVE &&
	     op != STORE_FLAGS_REPLACE) ||
	    (unchangedsince != 0 && pool == NULL)) {
		return store_fail(store, STORE_ERROR_INVALID,
				  "invalid UIDs, flags or keywords", error_r);
	}
	if (store->v->flags_update(store, mailbox_id, uids, count, op, flags,
				   keywords, unchangedsince, pool, &failed,
				   &failed_count, &modseq) < 0)
		return store_result(store, -1, error_r);
	if (failed_r != NULL)
		*failed_r = failed;
	if (failed_count_r != NULL)
		*failed_count_r = failed_count;
	if (modseq_r != NULL)
		*modseq_r = modseq;
	return 0;
}

int store_expunge(struct store *store, uint64_t mailbox_id,
		  const uint32_t *uids, unsigned int count, struct pool *pool,
		  uint32_t **expunged_r, unsigned int *expunged_count_r,
		  const char **error_r)
{
	store_begin(store);
	*expunged_r = NULL;
	*expunged_count_r = 0;
	if ((uids != NULL && !uids_are_valid(uids, count)) || pool == NULL) {
		return store_fail(store, STORE_ERROR_INVALID,
				  "UIDs must be non-zero and ascending",
				  error_r);
	}
	return store_result(store,
			    store->v->expunge(store, mailbox_id, uids, count,
					      pool, expunged_r,
					      expunged_count_r),
			    error_r);
}

static int fetch(struct store *store, bool meta, uint64_t mailbox_id,
		 uint32_t uid_lo, uint32_t uid_hi, struct pool *pool,
		 struct store_message **msgs_r, unsigned int *count_r,
		 const char **error_r)
{
	store_begin(store);
	*msgs_r = NULL;
	*count_r = 0;
	if (uid_hi != 0 && uid_hi < uid_lo)
		return 0;
	return store_result(store,
			    (meta ? store->v->fetch_meta : store->v->fetch)(
				    store, mailbox_id, uid_lo, uid_hi, pool,
				    msgs_r, count_r),
			    error_r);
}

int store_fetch(struct store *store, uint64_t mailbox_id, uint32_t uid_lo,
		uint32_t uid_hi, struct pool *pool,
		struct store_message **msgs_r, unsigned int *count_r,
		const char **error_r)
{
	return fetch(store, false, mailbox_id, uid_lo, uid_hi, pool, msgs_r,
		     count_r, error_r);
}

int store_fetch_meta(struct store *store, uint64_t mailbox_id, uint32_t uid_lo,
		     uint32_t uid_hi, struct pool *pool,
		     struct store_message **msgs_r, unsigned int *count_r,
		     const char **error_r)
{
	return fetch(store, true, mailbox_id, uid_lo, uid_hi, pool, msgs_r,
		     count_r, error_r);
}

int store_sort_keys(struct store *store, uint64_t mailbox_id,
		    const uint32_t *uids, unsigned int count, struct pool *pool,
		    struct store_sort_keys **keys_r, unsigned int *count_r,
		    const char **error_r)
{
	store_begin(store);
	*keys_r = NULL;
	*count_r = 0;
	if (uids != NULL && !uids_are_valid(uids, count))
		return store_fail(store, STORE_ERROR_INVALID,
				  "UIDs must be non-zero and ascending",
				  error_r);
	if (uids != NULL && count == 0)
		return 0;
	return store_result(store,
			    store->v->sort_keys(store, mailbox_id, uids, count,
						pool, keys_r, count_r),
			    error_r);
}

int store_sort_keys_fill(struct store *store, uint64_t mailbox_id,
			 const uint32_t *uids,
			 const struct message_index *const *indexes,
			 unsigned int count, const char **error_r)
{
	store_begin(store);
	if (count > 0 && (uids == NULL || indexes == NULL))
		return store_fail(store, STORE_ERROR_INVALID,
				  "no UIDs or indexes", error_r);
	for (unsigned int i = 0; i < count; i++) {
		if (uids[i] == 0 || indexes[i] == NULL)
			return store_fail(store, STORE_ERROR_INVALID,
					  "UID 0 or no index", error_r);
	}
	if (count == 0)
		return 0;
	return store_result(store,
			    store->v->sort_keys_fill(store, mailbox_id, uids,
						     indexes, count),
			    error_r);
}

int store_uids(struct store *store, uint64_t mailbox_id, uint32_t **uids_r,
	       unsigned int *count_r, const char **error_r)
{
	store_begin(store);
	*uids_r = NULL;
	*count_r = 0;
	return store_result(store,
			    store->v->uids(store, mailbox_id, uids_r, count_r),
			    error_r);
}

int store_mailbox_keywords(struct store *store, uint64_t mailbox_id,
			   struct pool *pool, const char ***keywords_r,
			   const char **error_r)
{
	store_begin(store);
	*keywords_r = NULL;
	return store_result(
		store, store->v->keywords(store, mailbox_id, pool, keywords_r),
		error_r);
}

int store_changes_since(struct store *store, uint64_t mailbox_id,
			uint64_t since, struct pool *pool,
			struct store_change **changes_r, unsigned int *count_r,
			const char **error_r)
{
	store_begin(store);
	*changes_r = NULL;
	*count_r = 0;
	return store_result(store,
			    store->v->changes_since(store, mailbox_id, since,
						    pool, changes_r, count_r),
			    error_r);
}

uint64_t store_highest_modseq(struct store *store)
{
	return store->v->highest_modseq(store);
}

int store_search(struct store *store, uint64_t mailbox_id,
		 enum store_search_field field, enum store_search_mode mode,
		 const char *query, struct pool *pool, uint64_t **mailboxes_r,
		 uint32_t **uids_r, unsigned int *count_r, const char **error_r)
{
	store_begin(store);
	if (mailboxes_r != NULL)
		*mailboxes_r = NULL;
	*uids_r = NULL;
	*count_r = 0;
	if (query == NULL || (unsigned int)field > STORE_SEARCH_SUBJECT ||
	    (mode != STORE_SEARCH_SUBSTRING && mode != STORE_SEARCH_WORDS)) {
		return store_fail(store, STORE_ERROR_INVALID, "invalid search",
				  error_r);
	}
	if (query[0] == '\0')
		return 0;
	return store_result(store,
			    store->v->search(store, mailbox_id, field, mode,
					     query, pool, mailboxes_r, uids_r,
					     count_r),
			    error_r);
}

struct verify_blobs {
	struct blob_store *blobs;
	struct buf data;
	unsigned int checked, bad;
	char first[STORE_ERROR_STR_MAX / 2];
};

static int verify_blob(const uint8_t blob_id[32], uint64_t size, void *context)
{
	struct verify_blobs *ctx = context;
	char hex[BLOB_ID_HEX_LEN + 1];
	const char *error;

	ctx->checked++;
	buf_reset(&ctx->data);
	/* blob_get verifies the tag and that the content hashes to the id;
	   the length must also be the size the store recorded. */
	if (blob_get(ctx->blobs, blob_id, &ctx->data, &error) < 0) {
		if (ctx->bad++ == 0)
			snprintf(ctx->first, sizeof(ctx->first), "%s", error);
	} else if (ctx->data.used != size) {
		if (ctx->bad++ == 0) {
			blob_id_to_hex(blob_id, hex);
			snprintf(ctx->first, sizeof(ctx->first),
				 "blob %s has %zu bytes, not %llu", hex,
				 ctx->data.used, (unsigned long long)size);
		}
	}
	return 0;
}

int store_verify(struct store *store, struct blob_store *blobs,
		 const char **error_r)
{
	struct verify_blobs ctx;
	int ret;

	store_begin(store);
	if (store->v->verify(store) < 0)
		return store_result(store, -1, error_r);
	if (blobs == NULL)
		return 0;

	memset(&ctx, 0, sizeof(ctx));
	ctx.blobs = blobs;
	ret = store->v->foreach_blob(store, verify_blob, &ctx);
	/* The buffer held message bodies. */
	buf_free_secure(&ctx.data);
	if (ret < 0)
		return store_result(store, -1, error_r);
	if (ctx.bad > 0) {
		store_set_error(store, STORE_ERROR_DAMAGED,
				"%u of %u blobs damaged or missing, first: %s",
				ctx.bad, ctx.checked, ctx.first);
		*error_r = store->error_str;
		return -1;
	}
	return 0;
}

int store_foreach_blob(struct store *store,
		       int (*cb)(const uint8_t blob_id[32], uint64_t size,
				 void *context),
		       void *context, const char **error_r)
{
	store_begin(store);
	return store_result(store, store->v->foreach_blob(store, cb, context),
			    error_r);
}

/* Notifications */

struct store_listener {
	uint64_t account_id;
	store_notify_callback_t *cb;
	void *context;
};

static pthread_mutex_t listeners_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_listener *listeners;
static unsigned int listeners_count, listeners_alloc;

void store_notify_add(uint64_t account_id, store_notify_callback_t *cb,
		      void *context)
{
	pthread_mutex_lock(&listeners_lock);
	if (listeners_count == listeners_alloc) {
		listeners_alloc =
			listeners_alloc == 0 ? 8 : listeners_alloc * 2;
		listeners =
			i_realloc(listeners, i_size_mul(listeners_alloc,
							sizeof(*listeners)));
	}
	listeners[listeners_count++] =
		(struct store_listener){ account_id, cb, context };
	pthread_mutex_unlock(&listeners_lock);
}

void store_notify_remove(uint64_t account_id, store_notify_callback_t *cb,
			 void *context)
{
	unsigned int i;

	pthread_mutex_lock(&listeners_lock);
	for (i = 0; i < listeners_count; i++) {
		if (listeners[i].account_id == account_id &&
		    listeners[i].cb == cb && listeners[i].context == context) {
			memmove(&listeners[i], &listeners[i + 1],
				(listeners_count - i - 1) * sizeof(*listeners));
			listeners_count--;
			break;
		}
	}
	if (listeners_count == 0) {
		i_free(listeners);
		listeners_alloc = 0;
	}
	pthread_mutex_unlock(&listeners_lock);
}

void store_notify_queue(struct store *store, uint64_t mailbox_id,
			uint64_t modseq)
{
	unsigned int i;

	for (i = 0; i < store->pending_count; i++) {
		if (store->pending[i].mailbox_id == mailbox_id) {
			if (store->pending[i].modseq < modseq)
				store->pending[i].modseq = modseq;
			return;
		}
	}
	if (store->pending_count == STORE_NOTIFY_PENDING_MAX) {
		/* Too many mailboxes in one transaction: the last slot
		   becomes "the mailbox list changed", which tells
		   listeners to look at everything. */
		i = STORE_NOTIFY_PENDING_MAX - 1;
		store->pending[i].mailbox_id = 0;
		if (store->pending[i].modseq < modseq)
			store->pending[i].modseq = modseq;
		return;
	}
	store->pending[store->pending_count++] =
		(struct store_notify_pending){ mailbox_id, modseq };
}

void store_notify_discard(struct store *store)
{
	store->pending_count = 0;
}

void store_notify_flush(struct store *store)
{
	struct store_notify_pending pending[STORE_NOTIFY_PENDING_MAX];
	unsigned int i, j, n = 0, pending_count = store->pending_count;
	struct store_listener *copy = NULL;

	if (pending_count == 0)
		return;
	/* A callback may use this store again, which queues anew. */
	memcpy(pending, store->pending, pending_count * sizeof(pending[0]));
	store->pending_count = 0;
	/* Callbacks run without the lock, on a snapshot, so that they may
	   add or remove listeners. */
	pthread_mutex_lock(&listeners_lock);
	for (i = 0; i < listeners_count; i++) {
		if (listeners[i].account_id != store->account_id)
			continue;
		if (copy == NULL)
			copy = i_new(struct store_listener, listeners_count);
		copy[n++] = listeners[i];
	}
	pthread_mutex_unlock(&listeners_lock);

	for (i = 0; i < pending_count; i++) {
		for (j = 0; j < n; j++) {
			copy[j].cb(store->account_id, pending[i].mailbox_id,
				   pending[i].modseq, copy[j].context);
		}
	}
	i_free(copy);
}
