/* test-store.c - unit tests of the store interface over the SQLite
   backend: a real encrypted store.db in a mkdtemp() directory per test,
   removed at the end. Covers default mailboxes, mailbox names, create/
   rename (children, INBOX)/delete, append/fetch, UID and MODSEQ
   monotonicity across expunge and reopen, copy/move, flags and keywords
   with UNCHANGEDSINCE, expunge, the change log, STATUS counts, quota,
   spool idempotency, all-or-nothing batches, substring and word search,
   threading, notifications, wrong keys and store_verify (also on a store
   whose counts were tampered with). Message indexes are built by hand.
   Prints (TAP comments) append and FETCH 1:* throughput. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "blob.h"
#include "pool.h"
#include "message-index.h"
#include "spool.h"
#include "sqlite-vfs-crypt.h"
#include "store.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define ACCOUNT 7

static const uint8_t key_a[32] = {
	0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
	0xcc, 0xdd, 0xee, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x12,
};
static const uint8_t key_b[32] = {
	0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b,
	0x5c, 0x6d, 0x7e, 0x8f, 0x90, 0x01, 0x12, 0x23, 0x34, 0x45, 0x56,
	0x67, 0x78, 0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0,
};

struct fixture {
	char dir[64];
	struct store *store;
	pool_t pool;
	uint64_t inbox, archive, trash;
	unsigned int blob_seq;
};

static int rm_entry(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static struct store *open_store(struct fixture *f, const uint8_t *key)
{
	const char *error = NULL;
	struct store *store = store_open(f->dir, ACCOUNT, key, &error);

	if (store == NULL)
		print_message("# store_open: %s\n", error);
	return store;
}

static uint64_t box_id(struct fixture *f, const char *name)
{
	struct store_mailbox box;
	const char *error;

	assert_int_equal(
		store_mailbox_lookup(f->store, name, f->pool, &box, &error), 1);
	return box.id;
}

static int setup(void **state)
{
	struct fixture *f = i_new(struct fixture, 1);

	snprintf(f->dir, sizeof(f->dir), "/tmp/test-store.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->store = open_store(f, key_a);
	if (f->store == NULL) {
		nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		i_free(f);
		return -1;
	}
	f->pool = pool_create("test-store", 4096);
	f->inbox = box_id(f, "INBOX");
	f->archive = box_id(f, "Archive");
	f->trash = box_id(f, "Trash");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(&f->store);
	pool_unref(&f->pool);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	i_free(f);
	return 0;
}

struct msg_spec {
	const char *subject;
	const char *from;
	const char *text;
	const char *message_id;
	const char *const *references;
	int64_t date;
	uint32_t flags;
	const char *const *keywords;
	uint64_t size;
};

static void make_append(struct fixture *f, uint64_t mailbox,
			const struct msg_spec *spec, struct message_index *idx,
			struct store_append *a)
{
	memset(idx, 0, sizeof(*idx));
	idx->envelope = p_strdup_printf(f->pool, "(NIL \"%s\")", spec->subject);
	idx->bodystructure = "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1)";
	idx->body = idx->bodystructure;
	idx->preview = spec->text;
	idx->from = spec->from != NULL ? spec->from : "Alice <a@example.org>";
	idx->to = "Bob <b@example.org>";
	idx->subject = spec->subject;
	idx->text = spec->text;
	idx->message_id = spec->message_id;
	idx->references = spec->references;

	memset(a, 0, sizeof(*a));
	a->mailbox_id = mailbox;
	a->flags = spec->flags;
	a->keywords = spec->keywords;
	a->internaldate = spec->date;
	a->size = spec->size != 0 ? spec->size : 100;
	a->index = idx;
	f->blob_seq++;
	memcpy(a->blob_id, &f->blob_seq, sizeof(f->blob_seq));
}

static uint32_t append(struct fixture *f, uint64_t mailbox,
		       const struct msg_spec *spec, uint64_t *modseq_r)
{
	struct message_index idx;
	struct store_append a;
	const char *error = NULL;
	uint32_t uid = 0;
	uint64_t modseq = 0;

	make_append(f, mailbox, spec, &idx, &a);
	if (store_append(f->store, &a, &uid, &modseq, &error) < 0)
		fail_msg("append: %s", error);
	if (modseq_r != NULL)
		*modseq_r = modseq;
	return uid;
}

static uint32_t append_simple(struct fixture *f, uint64_t mailbox,
			      const char *subject)
{
	struct msg_spec spec = { .subject = subject, .text = "hello" };

	return append(f, mailbox, &spec, NULL);
}

static struct store_mailbox get_box(struct fixture *f, uint64_t id)
{
	struct store_mailbox box;
	const char *error;

	assert_int_equal(store_mailbox_get(f->store, id, f->pool, &box, &error),
			 1);
	return box;
}

static void assert_counts(struct fixture *f, uint64_t id, uint32_t messages,
			  uint32_t unseen, uint64_t size)
{
	struct store_mailbox box = get_box(f, id);

	assert_int_equal(box.messages, messages);
	assert_int_equal(box.unseen, unseen);
	assert_int_equal(box.size, size);
}

static void assert_verify_ok(struct fixture *f)
{
	const char *error = NULL;

	if (store_verify(f->store, NULL, &error) < 0)
		fail_msg("verify: %s", error);
}

static struct store_message *fetch_all(struct fixture *f, uint64_t mailbox,
				       unsigned int *count_r)
{
	struct store_message *msgs;
	const char *error;

	assert_int_equal(store_fetch(f->store, mailbox, 1, 0, f->pool, &msgs,
				     count_r, &error),
			 0);
	return msgs;
}

/* Mailboxes */

static void test_default_mailboxes(void **state)
{
	static const struct {
		const char *name;
		enum store_special_use use;
	} expected[] = {
		{ "Archive", STORE_SPECIAL_ARCHIVE },
		{ "Drafts", STORE_SPECIAL_DRAFTS },
		{ "INBOX", STORE_SPECIAL_INBOX },
		{ "Junk", STORE_SPECIAL_JUNK },
		{ "Sent", STORE_SPECIAL_SENT },
		{ "Trash", STORE_SPECIAL_TRASH },
	};
	struct fixture *f = *state;
	struct store_mailbox *boxes, box;
	unsigned int i, j, count;
	const char *error;

	assert_int_equal(
		store_mailbox_list(f->store, f->pool, &boxes, &count, &error),
		0);
	assert_int_equal(count, N_ELEMENTS(expected));
	for (i = 0; i < count; i++) {
		assert_string_equal(boxes[i].name, expected[i].name);
		assert_int_equal(boxes[i].special_use, expected[i].use);
		assert_true(boxes[i].subscribed);
		assert_int_equal(boxes[i].uidnext, 1);
		assert_int_equal(boxes[i].messages, 0);
		assert_true(boxes[i].uidvalidity > 0);
		for (j = 0; j < i; j++)
			assert_int_not_equal(boxes[i].uidvalidity,
					     boxes[j].uidvalidity);
		assert_int_equal(
			store_mailbox_find_special(f->store, expected[i].use,
						   f->pool, &box, &error),
			1);
		assert_string_equal(box.name, expected[i].name);
	}
	assert_int_equal(store_mailbox_find_special(f->store,
						    STORE_SPECIAL_FLAGGED,
						    f->pool, &box, &error),
			 0);
	assert_int_equal(
		store_mailbox_lookup(f->store, "iNbOx", f->pool, &box, &error),
		1);
	assert_int_equal(box.id, f->inbox);
	assert_int_equal(store_mailbox_lookup(f->store, "archive", f->pool,
					      &box, &error),
			 0);
	assert_int_equal(
		store_mailbox_get(f->store, 9999, f->pool, &box, &error), 0);
	assert_verify_ok(f);
}

static void test_mailbox_names(void **state)
{
	static const struct {
		const char *name;
		enum store_error error; /* NONE = accepted */
		const char *stored;
	} cases[] = {
		{ "", STORE_ERROR_INVALID, NULL },
		{ "/a", STORE_ERROR_INVALID, NULL },
		{ "a/", STORE_ERROR_INVALID, NULL },
		{ "a//b", STORE_ERROR_INVALID, NULL },
		{ "a\rb", STORE_ERROR_INVALID, NULL },
		{ "a\nb", STORE_ERROR_INVALID, NULL },
		{ "a\tb", STORE_ERROR_INVALID, NULL },
		{ "del\x7f", STORE_ERROR_INVALID, NULL },
		{ "bad\xc3\x28", STORE_ERROR_INVALID, NULL },
		{ "overlong\xc0\xaf", STORE_ERROR_INVALID, NULL },
		{ "surrogate\xed\xa0\x80", STORE_ERROR_INVALID, NULL },
		{ "cut\xe2\x82", STORE_ERROR_INVALID, NULL },
		{ "big\xf4\x90\x80\x80", STORE_ERROR_INVALID, NULL },
		{ "inbox", STORE_ERROR_EXISTS, NULL },
		{ "Trash", STORE_ERROR_EXISTS, NULL },
		{ "trash", STORE_ERROR_NONE, "trash" },
		{ "Caf\xc3\xa9 \xf0\x9f\x90\xb9", STORE_ERROR_NONE,
		  "Caf\xc3\xa9 \xf0\x9f\x90\xb9" },
		{ "Inbox/Sub", STORE_ERROR_NONE, "INBOX/Sub" },
		{ "INBOXES", STORE_ERROR_NONE, "INBOXES" },
		{ "with space/and \"quote\"", STORE_ERROR_NONE,
		  "with space/and \"quote\"" },
	};
	struct fixture *f = *state;
	struct store_mailbox box;
	char longname[STORE_MAILBOX_NAME_MAX + 2];
	const char *error;
	unsigned int i;
	uint64_t id;

	for (i = 0; i < N_ELEMENTS(cases); i++) {
		int ret = store_mailbox_create(f->store, cases[i].name,
					       STORE_SPECIAL_NONE, &id, &error);

		if (cases[i].error != STORE_ERROR_NONE) {
			assert_int_equal(ret, -1);
			assert_int_equal(store_last_error(f->store),
					 cases[i].error);
			continue;
		}
		assert_int_equal(ret, 0);
		box = get_box(f, id);
		assert_string_equal(box.name, cases[i].stored);
		assert_false(box.subscribed);
	}
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(store_mailbox_create(f->store, longname,
					      STORE_SPECIAL_NONE, &id, &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	longname[STORE_MAILBOX_NAME_MAX] = '\0';
	assert_int_equal(store_mailbox_create(f->store, longname,
					      STORE_SPECIAL_NONE, &id, &error),
			 0);
	/* Only INBOX is the INBOX. */
	assert_int_equal(store_mailbox_create(f->store, "Other",
					      STORE_SPECIAL_INBOX, &id, &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	assert_int_equal(store_mailbox_create(f->store, "Flagged",
					      STORE_SPECIAL_FLAGGED, &id,
					      &error),
			 0);
	assert_int_equal(store_mailbox_find_special(f->store,
						    STORE_SPECIAL_FLAGGED,
						    f->pool, &box, &error),
			 1);
	assert_int_equal(box.id, id);
	/* Invalid names are simply not found. */
	assert_int_equal(
		store_mailbox_lookup(f->store, "a//b", f->pool, &box, &error),
		0);
	assert_verify_ok(f);
}

static void test_mailbox_create_rename_delete(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox box, *boxes;
	unsigned int count;
	uint64_t x, work, other, again;
	uint32_t uidvalidity;
	const char *error;

	assert_int_equal(store_mailbox_create(f->store, "Work/Projects/X",
					      STORE_SPECIAL_NONE, &x, &error),
			 0);
	work = box_id(f, "Work");
	assert_true(box_id(f, "Work/Projects") > work);
	assert_true(x > work);
	uidvalidity = get_box(f, x).uidvalidity;
	assert_int_equal(store_mailbox_create(f->store, "Workshop",
					      STORE_SPECIAL_NONE, &other,
					      &error),
			 0);
	append_simple(f, x, "in X");

	/* A mailbox cannot move into itself; taken names stay taken. */
	assert_int_equal(
		store_mailbox_rename(f->store, work, "Work/Sub", &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	assert_int_equal(store_mailbox_rename(f->store, work, "Trash", &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_EXISTS);
	assert_int_equal(store_mailbox_rename(f->store, work, "inbox", &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_EXISTS);
	assert_int_equal(store_mailbox_rename(f->store, 4242, "Nope", &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);

	assert_int_equal(
		store_mailbox_rename(f->store, work, "Jobs/Old", &error), 0);
	assert_int_equal(
		store_mailbox_lookup(f->store, "Work", f->pool, &box, &error),
		0);
	assert_int_equal(box_id(f, "Jobs/Old"), work);
	assert_int_equal(box_id(f, "Jobs/Old/Projects/X"), x);
	box_id(f, "Jobs"); /* parent created */
	/* "Workshop" only shares a prefix: not a child. */
	assert_int_equal(box_id(f, "Workshop"), other);
	box = get_box(f, x);
	assert_int_equal(box.uidvalidity, uidvalidity);
	assert_int_equal(box.messages, 1);

	/* Delete: not with children, not INBOX, then leaf first. */
	assert_int_equal(store_mailbox_delete(f->store, work, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	assert_int_equal(store_mailbox_delete(f->store, f->inbox, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	assert_int_equal(store_mailbox_delete(f->store, x, &error), 0);
	assert_int_equal(store_mailbox_get(f->store, x, f->pool, &box, &error),
			 0);
	assert_int_equal(store_mailbox_delete(f->store, x, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);
	assert_int_equal(store_quota_usage(f->store, &again, &error), 0);
	assert_int_equal(again, 0);

	/* Ids and UIDVALIDITY are never reused. */
	assert_int_equal(store_mailbox_create(f->store, "Jobs/Old/Projects/X",
					      STORE_SPECIAL_NONE, &again,
					      &error),
			 0);
	assert_true(again > other);
	assert_true(get_box(f, again).uidvalidity > uidvalidity);

	assert_int_equal(
		store_mailbox_set_subscribed(f->store, again, true, &error), 0);
	assert_true(get_box(f, again).subscribed);
	assert_int_equal(
		store_mailbox_set_subscribed(f->store, again, false, &error),
		0);
	assert_false(get_box(f, again).subscribed);
	assert_int_equal(
		store_mailbox_set_subscribed(f->store, 999, false, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);

	assert_int_equal(
		store_mailbox_list(f->store, f->pool, &boxes, &count, &error),
		0);
	assert_int_equal(count, 6 + 5);
	assert_verify_ok(f);
}

static void test_rename_inbox(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox inbox_before, inbox, old;
	struct store_message *msgs;
	unsigned int count;
	uint64_t child;
	const char *error;

	append_simple(f, f->inbox, "one");
	append_simple(f, f->inbox, "two");
	append_simple(f, f->inbox, "three");
	assert_int_equal(store_mailbox_create(f->store, "INBOX/child",
					      STORE_SPECIAL_NONE, &child,
					      &error),
			 0);
	inbox_before = get_box(f, f->inbox);

	/* RFC 9051 6.3.6 */
	assert_int_equal(
		store_mailbox_rename(f->store, f->inbox, "Old Inbox", &error),
		0);
	inbox = get_box(f, f->inbox);
	old = get_box(f, box_id(f, "Old Inbox"));
	assert_string_equal(inbox.name, "INBOX");
	assert_int_equal(inbox.messages, 0);
	assert_int_equal(inbox.uidvalidity, inbox_before.uidvalidity);
	assert_int_equal(inbox.uidnext, 4);
	assert_int_equal(old.messages, 3);
	assert_int_equal(old.size, 300);
	assert_int_not_equal(old.uidvalidity, inbox.uidvalidity);
	assert_int_equal(box_id(f, "INBOX/child"), child);
	msgs = fetch_all(f, old.id, &count);
	assert_int_equal(count, 3);
	assert_string_equal(msgs[2].envelope, "(NIL \"three\")");
	assert_int_equal(append_simple(f, f->inbox, "four"), 4);
	assert_verify_ok(f);
}

/* Messages */

static void test_append_fetch(void **state)
{
	static const char *const kws[] = { "$Forwarded", "work", "WORK",
					   "$label1", NULL };
	static const char *const bad_kw1[] = { "\\Seen", NULL };
	static const char *const bad_kw2[] = { "a b", NULL };
	static const char *const bad_kw3[] = { "a(", NULL };
	struct fixture *f = *state;
	struct msg_spec spec = { .subject = "Hello",
				 .text = "first body",
				 .flags = STORE_FLAG_SEEN | STORE_FLAG_FLAGGED,
				 .keywords = kws,
				 .date = 1700000000,
				 .size = 1234 };
	struct store_message *msgs;
	struct message_index idx;
	struct store_append a;
	unsigned int i, count;
	const char *error;
	uint32_t uid;
	uint64_t m1, m2;
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(append(f, f->inbox, &spec, &m1), 1);
	spec.flags = 0;
	spec.keywords = NULL;
	spec.date = 0;
	spec.size = 10;
	assert_int_equal(append(f, f->inbox, &spec, &m2), 2);
	assert_true(m2 > m1);
	assert_int_equal(store_highest_modseq(f->store), m2);
	assert_int_equal(append(f, f->inbox, &spec, NULL), 3);

	msgs = fetch_all(f, f->inbox, &count);
	assert_int_equal(count, 3);
	assert_int_equal(msgs[0].uid, 1);
	assert_int_equal(msgs[0].mailbox_id, f->inbox);
	assert_int_equal(msgs[0].modseq, m1);
	assert_int_equal(msgs[0].flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	assert_string_equal(msgs[0].keywords[0], "$Forwarded");
	assert_string_equal(msgs[0].keywords[1], "work");
	assert_string_equal(msgs[0].keywords[2], "$label1");
	assert_null(msgs[0].keywords[3]);
	assert_int_equal(msgs[0].internaldate, 1700000000);
	assert_true(msgs[0].savedate >= now);
	assert_int_equal(msgs[0].size, 1234);
	assert_string_equal(msgs[0].envelope, "(NIL \"Hello\")");
	assert_string_equal(msgs[0].preview, "first body");
	assert_non_null(msgs[0].bodystructure);
	assert_int_equal(msgs[0].blob_id[0], 1);
	assert_int_equal(strlen(msgs[0].email_id), STORE_EMAIL_ID_LEN);
	assert_int_equal(msgs[0].email_id[0], 'M');
	assert_int_equal(msgs[0].thread_id[0], 'T');
	for (i = 1; i < STORE_EMAIL_ID_LEN; i++)
		assert_non_null(strchr("0123456789abcdefghjkmnpqrstvwxyz",
				       msgs[0].email_id[i]));
	assert_string_not_equal(msgs[0].email_id, msgs[1].email_id);
	assert_null(msgs[1].keywords[0]);
	assert_true(msgs[1].internaldate >= now);
	assert_counts(f, f->inbox, 3, 2, 1254);

	/* Ranges */
	assert_int_equal(store_fetch(f->store, f->inbox, 2, 3, f->pool, &msgs,
				     &count, &error),
			 0);
	assert_int_equal(count, 2);
	assert_int_equal(msgs[0].uid, 2);
	assert_int_equal(store_fetch(f->store, f->inbox, 3, 0, f->pool, &msgs,
				     &count, &error),
			 0);
	assert_int_equal(count, 1);
	assert_int_equal(store_fetch(f->store, f->inbox, 4, 10, f->pool, &msgs,
				     &count, &error),
			 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_fetch(f->store, f->inbox, 3, 2, f->pool, &msgs,
				     &count, &error),
			 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_fetch(f->store, 999, 1, 0, f->pool, &msgs,
				     &count, &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);

	/* store_fetch_meta: the same rows without the cached strings. */
	{
		struct store_message *full, *meta;
		unsigned int nfull, nmeta;

		assert_int_equal(store_fetch(f->store, f->inbox, 1, 0, f->pool,
					     &full, &nfull, &error),
				 0);
		assert_int_equal(store_fetch_meta(f->store, f->inbox, 1, 0,
						  f->pool, &meta, &nmeta,
						  &error),
				 0);
		assert_int_equal(nmeta, nfull);
		assert_int_equal(nmeta, 3);
		for (i = 0; i < nmeta; i++) {
			assert_int_equal(meta[i].uid, full[i].uid);
			assert_int_equal(meta[i].modseq, full[i].modseq);
			assert_int_equal(meta[i].flags, full[i].flags);
			assert_int_equal(meta[i].size, full[i].size);
			assert_int_equal(meta[i].internaldate,
					 full[i].internaldate);
			assert_int_equal(meta[i].savedate, full[i].savedate);
			assert_string_equal(meta[i].email_id, full[i].email_id);
			assert_string_equal(meta[i].thread_id,
					    full[i].thread_id);
			assert_memory_equal(meta[i].blob_id, full[i].blob_id,
					    sizeof(meta[i].blob_id));
			assert_non_null(meta[i].keywords);
			assert_null(meta[i].envelope);
			assert_null(meta[i].bodystructure);
			assert_non_null(full[i].envelope);
		}
		assert_string_equal(meta[0].keywords[0], full[0].keywords[0]);
		assert_int_equal(store_fetch_meta(f->store, f->inbox, 2, 2,
						  f->pool, &meta, &nmeta,
						  &error),
				 0);
		assert_int_equal(nmeta, 1);
		assert_int_equal(meta[0].uid, 2);
		assert_int_equal(store_fetch_meta(f->store, 999, 1, 0, f->pool,
						  &meta, &nmeta, &error),
				 -1);
	}

	/* Bad input changes nothing. */
	make_append(f, f->inbox, &spec, &idx, &a);
	a.keywords = bad_kw1;
	assert_int_equal(store_append(f->store, &a, &uid, NULL, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	a.keywords = bad_kw2;
	assert_int_equal(store_append(f->store, &a, &uid, NULL, &error), -1);
	a.keywords = bad_kw3;
	assert_int_equal(store_append(f->store, &a, &uid, NULL, &error), -1);
	a.keywords = NULL;
	a.flags = 0x100;
	assert_int_equal(store_append(f->store, &a, &uid, NULL, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	a.flags = 0;
	a.mailbox_id = 999;
	assert_int_equal(store_append(f->store, &a, &uid, NULL, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);
	/* No index at all is allowed (nothing to search). */
	a.mailbox_id = f->inbox;
	a.index = NULL;
	assert_int_equal(store_append(f->store, &a, &uid, NULL, &error), 0);
	assert_int_equal(uid, 4);
	assert_counts(f, f->inbox, 4, 3, 1264);
	assert_verify_ok(f);
}

static void test_uid_modseq_monotonic(void **state)
{
	struct fixture *f = *state;
	uint32_t uids[1] = { 3 }, *expunged;
	unsigned int count;
	uint64_t m3, m4, m5, highest;
	uint32_t uidvalidity = get_box(f, f->inbox).uidvalidity;
	struct msg_spec spec = { .subject = "s", .text = "t" };
	const char *error;

	append(f, f->inbox, &spec, NULL);
	append(f, f->inbox, &spec, NULL);
	assert_int_equal(append(f, f->inbox, &spec, &m3), 3);
	assert_int_equal(store_expunge(f->store, f->inbox, uids, 1, f->pool,
				       &expunged, &count, &error),
			 0);
	assert_int_equal(count, 1);
	assert_int_equal(expunged[0], 3);
	highest = store_highest_modseq(f->store);
	assert_true(highest > m3);
	assert_int_equal(get_box(f, f->inbox).highestmodseq, highest);
	/* The expunged highest UID is not reused. */
	assert_int_equal(append(f, f->inbox, &spec, &m4), 4);
	assert_true(m4 > highest);

	store_close(&f->store);
	f->store = open_store(f, key_a);
	assert_non_null(f->store);
	assert_int_equal(store_highest_modseq(f->store), m4);
	assert_int_equal(get_box(f, f->inbox).uidnext, 5);
	assert_int_equal(get_box(f, f->inbox).uidvalidity, uidvalidity);
	assert_int_equal(append(f, f->inbox, &spec, &m5), 5);
	assert_true(m5 > m4);
	assert_counts(f, f->inbox, 4, 4, 400);
	assert_verify_ok(f);
}

static void test_copy_move(void **state)
{
	struct fixture *f = *state;
	uint32_t src[3], dst[3], bad[2] = { 2, 1 };
	struct store_message *in, *arch, *trash;
	unsigned int n_in, n_arch, n_trash;
	struct store_mailbox box;
	const char *error;

	append_simple(f, f->inbox, "a");
	append_simple(f, f->inbox, "b");
	append_simple(f, f->inbox, "c");
	append_simple(f, f->archive, "pre-existing");

	src[0] = 1;
	src[1] = 3;
	src[2] = 99;
	assert_int_equal(
		store_copy(f->store, f->inbox, src, 3, f->archive, dst, &error),
		0);
	assert_int_equal(dst[0], 2);
	assert_int_equal(dst[1], 3);
	assert_int_equal(dst[2], 0);
	assert_counts(f, f->inbox, 3, 3, 300);
	assert_counts(f, f->archive, 3, 3, 300);

	in = fetch_all(f, f->inbox, &n_in);
	arch = fetch_all(f, f->archive, &n_arch);
	/* RFC 8474: copies share the EMAILID and THREADID. */
	assert_string_equal(arch[1].email_id, in[0].email_id);
	assert_string_equal(arch[2].email_id, in[2].email_id);
	assert_string_equal(arch[1].thread_id, in[0].thread_id);
	assert_string_equal(arch[1].envelope, "(NIL \"a\")");
	assert_memory_equal(arch[1].blob_id, in[0].blob_id, 32);
	assert_int_equal(arch[1].internaldate, in[0].internaldate);
	assert_true(arch[1].modseq > in[2].modseq);

	/* Move: new UIDs in Trash, gone from INBOX, atomically. */
	src[0] = 1;
	src[1] = 2;
	assert_int_equal(
		store_move(f->store, f->inbox, src, 2, f->trash, dst, &error),
		0);
	assert_int_equal(dst[0], 1);
	assert_int_equal(dst[1], 2);
	assert_counts(f, f->inbox, 1, 1, 100);
	assert_counts(f, f->trash, 2, 2, 200);
	trash = fetch_all(f, f->trash, &n_trash);
	assert_int_equal(n_trash, 2);
	assert_string_equal(trash[0].email_id, in[0].email_id);
	assert_string_equal(trash[1].email_id, in[1].email_id);
	in = fetch_all(f, f->inbox, &n_in);
	assert_int_equal(n_in, 1);
	assert_int_equal(in[0].uid, 3);

	/* Bad arguments. */
	assert_int_equal(
		store_copy(f->store, f->inbox, src, 1, 999, dst, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);
	assert_int_equal(
		store_copy(f->store, 999, src, 1, f->inbox, dst, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);
	assert_int_equal(
		store_copy(f->store, f->inbox, bad, 2, f->trash, dst, &error),
		-1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	assert_int_equal(
		store_move(f->store, f->inbox, src, 1, f->inbox, dst, &error),
		-1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	assert_int_equal(
		store_mailbox_get(f->store, f->trash, f->pool, &box, &error),
		1);
	assert_int_equal(box.uidnext, 3);
	/* The email survives while a copy of it exists. */
	src[0] = 2;
	src[1] = 3;
	assert_int_equal(
		store_move(f->store, f->archive, src, 2, f->inbox, dst, &error),
		0);
	assert_verify_ok(f);
}

/* store_uids and store_mailbox_keywords: the sequence map and the
   FLAGS list of an IMAP SELECT. */
static void test_uids_keywords(void **state)
{
	static const char *const kw_a[] = { "work", "$Label1", NULL };
	static const char *const kw_b[] = { "work", "home", NULL };
	struct fixture *f = *state;
	uint32_t one = 1, three = 3, *uids, *failed, *expunged;
	unsigned int n, failed_count;
	const char **kws, *error;
	uint64_t modseq;

	assert_int_equal(store_uids(f->store, f->inbox, &uids, &n, &error), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_mailbox_keywords(f->store, f->inbox, f->pool,
						&kws, &error),
			 0);
	assert_null(kws[0]);
	append_simple(f, f->inbox, "1");
	append_simple(f, f->inbox, "2");
	append_simple(f, f->inbox, "3");
	assert_int_equal(store_flags_update(f->store, f->inbox, &one, 1,
					    STORE_FLAGS_ADD, 0, kw_a, 0,
					    f->pool, &failed, &failed_count,
					    &modseq, &error),
			 0);
	assert_int_equal(store_flags_update(f->store, f->inbox, &three, 1,
					    STORE_FLAGS_ADD, 0, kw_b, 0,
					    f->pool, &failed, &failed_count,
					    &modseq, &error),
			 0);
	assert_int_equal(store_expunge(f->store, f->inbox, (uint32_t[]){ 2 }, 1,
				       f->pool, &expunged, &n, &error),
			 0);
	assert_int_equal(store_uids(f->store, f->inbox, &uids, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_int_equal(uids[0], 1);
	assert_int_equal(uids[1], 3);
	i_free(uids);
	/* Distinct and sorted across messages. */
	assert_int_equal(store_mailbox_keywords(f->store, f->inbox, f->pool,
						&kws, &error),
			 0);
	assert_string_equal(kws[0], "$Label1");
	assert_string_equal(kws[1], "home");
	assert_string_equal(kws[2], "work");
	assert_null(kws[3]);
	assert_int_equal(store_uids(f->store, 9999, &uids, &n, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);
}

static void test_flags(void **state)
{
	static const char *const kw_a[] = { "alpha", "beta", NULL };
	static const char *const kw_b[] = { "BETA", "gamma", NULL };
	static const char *const kw_c[] = { "delta", NULL };
	struct fixture *f = *state;
	uint32_t uids[3] = { 1, 2, 3 }, *failed;
	unsigned int n, failed_count;
	struct store_message *msgs;
	uint64_t modseq, before, m2;
	const char *error;

	append_simple(f, f->inbox, "1");
	append_simple(f, f->inbox, "2");
	append_simple(f, f->inbox, "3");

	assert_int_equal(store_flags_update(f->store, f->inbox, uids, 2,
					    STORE_FLAGS_ADD, STORE_FLAG_SEEN,
					    kw_a, 0, f->pool, &failed,
					    &failed_count, &modseq, &error),
			 0);
	assert_int_equal(failed_count, 0);
	assert_int_equal(modseq, store_highest_modseq(f->store));
	assert_counts(f, f->inbox, 3, 1, 300);
	msgs = fetch_all(f, f->inbox, &n);
	assert_int_equal(msgs[0].flags, STORE_FLAG_SEEN);
	assert_string_equal(msgs[0].keywords[1], "beta");
	assert_true(msgs[1].modseq == modseq);
	assert_true(msgs[0].modseq < msgs[1].modseq);
	m2 = msgs[1].modseq;

	/* Remove is case-insensitive; add skips duplicates. */
	assert_int_equal(store_flags_update(f->store, f->inbox, uids, 1,
					    STORE_FLAGS_REMOVE, 0, kw_b, 0,
					    f->pool, &failed, &failed_count,
					    &modseq, &error),
			 0);
	msgs = fetch_all(f, f->inbox, &n);
	assert_string_equal(msgs[0].keywords[0], "alpha");
	assert_null(msgs[0].keywords[1]);
	assert_int_equal(store_flags_update(f->store, f->inbox, uids, 1,
					    STORE_FLAGS_ADD, 0, kw_b, 0,
					    f->pool, &failed, &failed_count,
					    &modseq, &error),
			 0);
	msgs = fetch_all(f, f->inbox, &n);
	assert_string_equal(msgs[0].keywords[1], "BETA");
	assert_string_equal(msgs[0].keywords[2], "gamma");
	assert_null(msgs[0].keywords[3]);

	/* Replace */
	assert_int_equal(store_flags_update(f->store, f->inbox, uids, 1,
					    STORE_FLAGS_REPLACE,
					    STORE_FLAG_ANSWERED, kw_c, 0,
					    f->pool, &failed, &failed_count,
					    &modseq, &error),
			 0);
	msgs = fetch_all(f, f->inbox, &n);
	assert_int_equal(msgs[0].flags, STORE_FLAG_ANSWERED);
	assert_string_equal(msgs[0].keywords[0], "delta");
	assert_null(msgs[0].keywords[1]);
	assert_counts(f, f->inbox, 3, 2, 300);

	/* No change: no new modseq. */
	before = store_highest_modseq(f->store);
	assert_int_equal(
		store_flags_update(f->store, f->inbox, uids, 1, STORE_FLAGS_ADD,
				   STORE_FLAG_ANSWERED, kw_c, 0, f->pool,
				   &failed, &failed_count, &modseq, &error),
		0);
	assert_int_equal(modseq, 0);
	assert_int_equal(store_highest_modseq(f->store), before);

	/* RFC 7162 3.1.3: UNCHANGEDSINCE. uid 1 changed since m2, uid 2 at
	   m2 exactly, uid 3 earlier. */
	assert_int_equal(store_flags_update(f->store, f->inbox, uids, 3,
					    STORE_FLAGS_ADD, STORE_FLAG_FLAGGED,
					    NULL, m2, f->pool, &failed,
					    &failed_count, &modseq, &error),
			 0);
	assert_int_equal(failed_count, 1);
	assert_int_equal(failed[0], 1);
	msgs = fetch_all(f, f->inbox, &n);
	assert_int_equal(msgs[0].flags, STORE_FLAG_ANSWERED);
	assert_int_equal(msgs[1].flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	assert_int_equal(msgs[2].flags, STORE_FLAG_FLAGGED);
	assert_int_equal(msgs[2].modseq, modseq);

	/* Bad input */
	assert_int_equal(store_flags_update(f->store, f->inbox, uids, 1,
					    STORE_FLAGS_ADD, 0x80, NULL, 0,
					    f->pool, &failed, &failed_count,
					    &modseq, &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	assert_int_equal(store_flags_update(f->store, 999, uids, 1,
					    STORE_FLAGS_ADD, 0, NULL, 0,
					    f->pool, &failed, &failed_count,
					    &modseq, &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);
	assert_verify_ok(f);
}

static void test_expunge(void **state)
{
	struct fixture *f = *state;
	uint32_t uids[4] = { 2, 4 }, some[2] = { 1, 50 }, *expunged, deleted;
	unsigned int count, n;
	uint64_t modseq;
	struct store_message *msgs;
	const char *error;
	uint32_t *failed;
	unsigned int failed_count;

	append_simple(f, f->inbox, "1");
	append_simple(f, f->inbox, "2");
	append_simple(f, f->inbox, "3");
	append_simple(f, f->inbox, "4");
	assert_int_equal(store_flags_update(f->store, f->inbox, uids, 2,
					    STORE_FLAGS_ADD, STORE_FLAG_DELETED,
					    NULL, 0, f->pool, &failed,
					    &failed_count, &modseq, &error),
			 0);
	assert_int_equal(store_mailbox_count_flag(f->store, f->inbox,
						  STORE_FLAG_DELETED, &deleted,
						  &error),
			 0);
	assert_int_equal(deleted, 2);
	assert_int_equal(store_mailbox_count_flag(f->store, f->inbox,
						  STORE_FLAG_SEEN, &deleted,
						  &error),
			 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(store_mailbox_count_flag(f->store, f->inbox, 0x100,
						  &deleted, &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	assert_int_equal(store_mailbox_count_flag(f->store, 999,
						  STORE_FLAG_DELETED, &deleted,
						  &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);
	assert_int_equal(store_expunge(f->store, f->inbox, NULL, 0, f->pool,
				       &expunged, &count, &error),
			 0);
	assert_int_equal(count, 2);
	assert_int_equal(store_mailbox_count_flag(f->store, f->inbox,
						  STORE_FLAG_DELETED, &deleted,
						  &error),
			 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(expunged[0], 2);
	assert_int_equal(expunged[1], 4);
	assert_counts(f, f->inbox, 2, 2, 200);
	assert_int_equal(store_expunge(f->store, f->inbox, NULL, 0, f->pool,
				       &expunged, &count, &error),
			 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_expunge(f->store, f->inbox, some, 2, f->pool,
				       &expunged, &count, &error),
			 0);
	assert_int_equal(count, 1);
	assert_int_equal(expunged[0], 1);
	msgs = fetch_all(f, f->inbox, &n);
	assert_int_equal(n, 1);
	assert_int_equal(msgs[0].uid, 3);
	assert_counts(f, f->inbox, 1, 1, 100);
	assert_int_equal(store_quota_usage(f->store, &modseq, &error), 0);
	assert_int_equal(modseq, 100);
	assert_int_equal(store_expunge(f->store, 999, NULL, 0, f->pool,
				       &expunged, &count, &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);
	assert_verify_ok(f);
}

static void test_changes_since(void **state)
{
	struct fixture *f = *state;
	uint32_t one[1] = { 1 }, two[1] = { 2 }, *out;
	struct store_change *changes;
	unsigned int count, n;
	uint64_t since, modseq, new_box;
	const char *error;

	append_simple(f, f->inbox, "1");
	append_simple(f, f->inbox, "2");
	since = store_highest_modseq(f->store);
	assert_int_equal(store_flags_update(f->store, f->inbox, one, 1,
					    STORE_FLAGS_ADD, STORE_FLAG_SEEN,
					    NULL, 0, f->pool, &out, &n, &modseq,
					    &error),
			 0);
	assert_int_equal(store_expunge(f->store, f->inbox, two, 1, f->pool,
				       &out, &n, &error),
			 0);
	append_simple(f, f->inbox, "3");
	append_simple(f, f->archive, "x");
	assert_int_equal(store_mailbox_create(f->store, "New",
					      STORE_SPECIAL_NONE, &new_box,
					      &error),
			 0);

	assert_int_equal(store_changes_since(f->store, f->inbox, since, f->pool,
					     &changes, &count, &error),
			 0);
	assert_int_equal(count, 3);
	assert_int_equal(changes[0].kind, STORE_CHANGE_FLAGS);
	assert_int_equal(changes[0].uid, 1);
	assert_int_equal(changes[0].modseq, modseq);
	assert_int_equal(changes[1].kind, STORE_CHANGE_EXPUNGED);
	assert_int_equal(changes[1].uid, 2);
	assert_int_equal(changes[2].kind, STORE_CHANGE_ADDED);
	assert_int_equal(changes[2].uid, 3);
	assert_true(changes[0].modseq < changes[1].modseq);
	assert_true(changes[1].modseq < changes[2].modseq);
	assert_int_equal(get_box(f, f->inbox).highestmodseq, changes[2].modseq);

	assert_int_equal(store_changes_since(f->store, 0, since, f->pool,
					     &changes, &count, &error),
			 0);
	assert_int_equal(count, 5);
	assert_int_equal(changes[3].mailbox_id, f->archive);
	assert_int_equal(changes[4].kind, STORE_CHANGE_MAILBOX);
	assert_int_equal(changes[4].mailbox_id, new_box);
	assert_int_equal(changes[4].uid, 0);
	assert_int_equal(changes[4].modseq, store_highest_modseq(f->store));

	assert_int_equal(store_changes_since(f->store, 0,
					     store_highest_modseq(f->store),
					     f->pool, &changes, &count, &error),
			 0);
	assert_int_equal(count, 0);
}

static void test_quota(void **state)
{
	struct fixture *f = *state;
	struct msg_spec spec = { .subject = "q", .text = "t", .size = 100 };
	struct message_index idx[2];
	struct store_append a[2];
	struct store_mailbox before;
	uint32_t uid, uids[2], dst[2];
	uint64_t used, modseq;
	const char *error;

	append(f, f->inbox, &spec, NULL);
	store_set_quota(f->store, 250);
	append(f, f->inbox, &spec, NULL);
	before = get_box(f, f->inbox);
	modseq = store_highest_modseq(f->store);

	make_append(f, f->inbox, &spec, &idx[0], &a[0]);
	assert_int_equal(store_append(f->store, &a[0], &uid, NULL, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_QUOTA);
	/* A batch that crosses the quota adds nothing. */
	spec.size = 40;
	make_append(f, f->inbox, &spec, &idx[0], &a[0]);
	make_append(f, f->inbox, &spec, &idx[1], &a[1]);
	assert_int_equal(store_append_many(f->store, a, 2, uids, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_QUOTA);
	uids[0] = 1;
	uids[1] = 2;
	assert_int_equal(store_copy(f->store, f->inbox, uids, 1, f->archive,
				    dst, &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_QUOTA);

	assert_int_equal(get_box(f, f->inbox).uidnext, before.uidnext);
	assert_counts(f, f->inbox, 2, 2, 200);
	assert_counts(f, f->archive, 0, 0, 0);
	assert_int_equal(store_highest_modseq(f->store), modseq);
	assert_int_equal(store_quota_usage(f->store, &used, &error), 0);
	assert_int_equal(used, 200);

	/* What fits still goes in; a move never grows usage. */
	assert_int_equal(store_append(f->store, &a[0], &uid, NULL, &error), 0);
	assert_int_equal(uid, 3);
	store_set_quota(f->store, 100);
	assert_int_equal(store_move(f->store, f->inbox, uids, 2, f->archive,
				    dst, &error),
			 0);
	assert_counts(f, f->archive, 2, 2, 200);
	store_set_quota(f->store, 0);
	assert_int_equal(store_append(f->store, &a[1], &uid, NULL, &error), 0);
	assert_verify_ok(f);
}

static void test_spool_idempotent(void **state)
{
	struct fixture *f = *state;
	struct msg_spec spec = { .subject = "spooled", .text = "t" };
	uint8_t rec1[SPOOL_RECORD_ID_LEN], rec2[SPOOL_RECORD_ID_LEN];
	struct message_index idx[3];
	struct store_append a[3];
	uint32_t uid1, uid2, uids[3];
	uint64_t modseq, highest;
	const char *error;

	memset(rec1, 0xa1, sizeof(rec1));
	memset(rec2, 0xb2, sizeof(rec2));
	make_append(f, f->inbox, &spec, &idx[0], &a[0]);
	a[0].spool_record_id = rec1;
	assert_int_equal(store_append(f->store, &a[0], &uid1, &modseq, &error),
			 0);
	highest = store_highest_modseq(f->store);
	assert_int_equal(store_append(f->store, &a[0], &uid2, &modseq, &error),
			 0);
	assert_int_equal(uid2, uid1);
	assert_int_equal(modseq, 0);
	assert_int_equal(store_highest_modseq(f->store), highest);
	assert_counts(f, f->inbox, 1, 1, 100);

	/* Replaying a whole merge, with a new record among old ones. */
	make_append(f, f->inbox, &spec, &idx[1], &a[1]);
	a[1].spool_record_id = rec2;
	a[2] = a[1];
	assert_int_equal(store_append_many(f->store, a, 3, uids, &error), 0);
	assert_int_equal(uids[0], uid1);
	assert_int_equal(uids[1], 2);
	assert_int_equal(uids[2], 2);
	assert_counts(f, f->inbox, 2, 2, 200);

	/* Idempotency survives reopening (it is in the database). */
	store_close(&f->store);
	f->store = open_store(f, key_a);
	assert_non_null(f->store);
	assert_int_equal(store_append_many(f->store, a, 2, uids, &error), 0);
	assert_int_equal(uids[1], 2);
	assert_counts(f, f->inbox, 2, 2, 200);
	assert_verify_ok(f);
}

static void test_append_many_atomic(void **state)
{
	static const char *const bad_kw[] = { "ok", "no\"good", NULL };
	struct fixture *f = *state;
	struct msg_spec spec = { .subject = "batch", .text = "zebra" };
	struct message_index idx[4];
	struct store_append a[4];
	uint32_t uids[4];
	uint64_t modseq;
	unsigned int i, count;
	uint64_t *boxes;
	uint32_t *found;
	const char *error;

	append_simple(f, f->inbox, "before");
	modseq = store_highest_modseq(f->store);
	for (i = 0; i < 4; i++)
		make_append(f, i % 2 == 0 ? f->inbox : f->archive, &spec,
			    &idx[i], &a[i]);

	/* Invalid third item (caught before the backend). */
	a[2].keywords = bad_kw;
	assert_int_equal(store_append_many(f->store, a, 4, uids, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	/* Third item fails inside the transaction: earlier ones roll back. */
	a[2].keywords = NULL;
	a[2].mailbox_id = 4242;
	assert_int_equal(store_append_many(f->store, a, 4, uids, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);

	assert_int_equal(store_highest_modseq(f->store), modseq);
	assert_counts(f, f->inbox, 1, 1, 100);
	assert_counts(f, f->archive, 0, 0, 0);
	assert_int_equal(get_box(f, f->inbox).uidnext, 2);
	assert_int_equal(get_box(f, f->archive).uidnext, 1);
	assert_int_equal(store_search(f->store, 0, STORE_SEARCH_TEXT,
				      STORE_SEARCH_SUBSTRING, "zebra", f->pool,
				      &boxes, &found, &count, &error),
			 0);
	assert_int_equal(count, 0);

	a[2].mailbox_id = f->inbox;
	assert_int_equal(store_append_many(f->store, a, 4, uids, &error), 0);
	assert_int_equal(uids[0], 2);
	assert_int_equal(uids[1], 1);
	assert_int_equal(uids[2], 3);
	assert_int_equal(uids[3], 2);
	assert_counts(f, f->inbox, 3, 3, 300);
	assert_counts(f, f->archive, 2, 2, 200);
	assert_verify_ok(f);
}

/* Search */

static void search(struct fixture *f, uint64_t mailbox,
		   enum store_search_field field, enum store_search_mode mode,
		   const char *query, const uint32_t *expected,
		   unsigned int expected_count)
{
	uint64_t *boxes;
	uint32_t *uids;
	unsigned int i, count;
	const char *error = NULL;

	if (store_search(f->store, mailbox, field, mode, query, f->pool, &boxes,
			 &uids, &count, &error) < 0)
		fail_msg("search %s: %s", query, error);
	if (count != expected_count)
		fail_msg("search '%s': %u results, expected %u", query, count,
			 expected_count);
	for (i = 0; i < count; i++) {
		if (uids[i] != expected[i])
			fail_msg("search '%s': result %u is uid %u, not %u",
				 query, i, uids[i], expected[i]);
	}
}

static void add_search_corpus(struct fixture *f)
{
	static const struct msg_spec specs[] = {
		{ .subject = "Quarterly report",
		  .text = "Please find the numbers attached.",
		  .from = "Carol <carol@example.com>",
		  .date = 1000 },
		{ .subject = "Lunch?",
		  .text = "The QUARTERLY meeting moved; caf\xc3\xa9 at noon.",
		  .date = 3000 },
		{ .subject = "Re: Quarterly report",
		  .text = "Reported figures look fine. xy",
		  .date = 2000 },
		{ .subject = "Unrelated",
		  .text = "Nothing to see \"here\" OR there*",
		  .date = 4000 },
	};
	unsigned int i;

	for (i = 0; i < N_ELEMENTS(specs); i++)
		append(f, f->inbox, &specs[i], NULL);
}

static void test_search_substring(void **state)
{
	struct fixture *f = *state;
	const uint32_t q_all[] = { 2, 3, 1 }, q_subj[] = { 3, 1 };
	const uint32_t q_body[] = { 2 }, q_from[] = { 1 }, q_xy[] = { 3 };
	const uint32_t q_quote[] = { 4 }, q_after[] = { 2, 1 };
	const uint32_t q_caf[] = { 2 };
	uint32_t one[1] = { 3 }, dst[1], *expunged;
	uint64_t *boxes;
	uint32_t *uids;
	unsigned int count;
	const char *error;

	add_search_corpus(f);
	/* Case-insensitive, newest internaldate first. */
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_SUBSTRING,
	       "quarterly", q_all, 3);
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_SUBSTRING,
	       "UARTERL", q_all, 3);
	search(f, f->inbox, STORE_SEARCH_SUBJECT, STORE_SEARCH_SUBSTRING,
	       "quarterly", q_subj, 2);
	search(f, f->inbox, STORE_SEARCH_BODY, STORE_SEARCH_SUBSTRING,
	       "quarterly", q_body, 1);
	search(f, f->inbox, STORE_SEARCH_FROM, STORE_SEARCH_SUBSTRING, "carol@",
	       q_from, 1);
	search(f, f->inbox, STORE_SEARCH_TO, STORE_SEARCH_SUBSTRING, "carol",
	       NULL, 0);
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_SUBSTRING,
	       "caf\xc3\xa9", q_caf, 1);
	/* Short needles scan. */
	search(f, f->inbox, STORE_SEARCH_BODY, STORE_SEARCH_SUBSTRING, "XY",
	       q_xy, 1);
	/* FTS5 syntax in the query is just text. */
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_SUBSTRING,
	       "\"here\" OR there*", q_quote, 1);
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_SUBSTRING,
	       "NEAR(a b)", NULL, 0);
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_SUBSTRING,
	       "nomatch-anywhere", NULL, 0);

	/* A copy is found in both mailboxes (email indexed once). */
	assert_int_equal(
		store_copy(f->store, f->inbox, one, 1, f->archive, dst, &error),
		0);
	assert_int_equal(store_search(f->store, 0, STORE_SEARCH_TEXT,
				      STORE_SEARCH_SUBSTRING, "figures",
				      f->pool, &boxes, &uids, &count, &error),
			 0);
	assert_int_equal(count, 2);
	assert_true((boxes[0] == f->inbox && boxes[1] == f->archive) ||
		    (boxes[0] == f->archive && boxes[1] == f->inbox));

	/* Expunged messages are not found; the copy still is. */
	assert_int_equal(store_expunge(f->store, f->inbox, one, 1, f->pool,
				       &expunged, &count, &error),
			 0);
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_SUBSTRING,
	       "quarterly", q_after, 2);
	search(f, f->archive, STORE_SEARCH_TEXT, STORE_SEARCH_SUBSTRING,
	       "figures", dst, 1);
	assert_int_equal(store_expunge(f->store, f->archive, dst, 1, f->pool,
				       &expunged, &count, &error),
			 0);
	search(f, 0, STORE_SEARCH_TEXT, STORE_SEARCH_SUBSTRING, "figures", NULL,
	       0);
	assert_verify_ok(f);
}

static void test_search_words(void **state)
{
	struct fixture *f = *state;
	const uint32_t w_report[] = { 3, 1 }, w_cafe[] = { 2 };
	const uint32_t w_two[] = { 3 }, w_all[] = { 2, 3, 1 };

	add_search_corpus(f);
	/* "report" and its prefix: "Reported" too. */
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_WORDS, "report",
	       w_report, 2);
	search(f, f->inbox, STORE_SEARCH_SUBJECT, STORE_SEARCH_WORDS, "repo",
	       w_report, 2);
	/* Diacritics removed. */
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_WORDS, "cafe",
	       w_cafe, 1);
	/* All words must match. */
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_WORDS,
	       "  figures   QUARTER ", w_two, 1);
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_WORDS, "quarterly",
	       w_all, 3);
	/* Words are not substrings. */
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_WORDS, "uarterly",
	       NULL, 0);
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_WORDS, "   ", NULL,
	       0);
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_WORDS,
	       "\"* AND OR (", NULL, 0);
}

static void test_threading(void **state)
{
	static const char *const refs_b[] = { "a@x", NULL };
	static const char *const refs_c[] = { "a@x", "b@x", NULL };
	static const char *const refs_e[] = { "d@x", NULL };
	struct fixture *f = *state;
	struct msg_spec a = { .subject = "A",
			      .text = "t",
			      .message_id = "a@x" };
	struct msg_spec b = { .subject = "Re: A",
			      .text = "t",
			      .message_id = "b@x",
			      .references = refs_b };
	struct msg_spec c = { .subject = "Re: A",
			      .text = "t",
			      .message_id = "c@x",
			      .references = refs_c };
	struct msg_spec other = { .subject = "Other",
				  .text = "t",
				  .message_id = "o@x" };
	struct msg_spec none = { .subject = "No id", .text = "t" };
	struct msg_spec e = { .subject = "Re: D",
			      .text = "t",
			      .message_id = "e@x",
			      .references = refs_e };
	struct msg_spec d = { .subject = "D",
			      .text = "t",
			      .message_id = "d@x" };
	struct store_message *msgs;
	unsigned int n;

	append(f, f->inbox, &a, NULL);
	append(f, f->archive, &b, NULL);
	append(f, f->inbox, &c, NULL);
	append(f, f->inbox, &other, NULL);
	append(f, f->inbox, &none, NULL);
	append(f, f->inbox, &none, NULL);
	/* The reply arrives first; the original then joins its thread. */
	append(f, f->inbox, &e, NULL);
	append(f, f->inbox, &d, NULL);

	msgs = fetch_all(f, f->inbox, &n);
	assert_int_equal(n, 7);
	assert_string_equal(msgs[0].thread_id, msgs[1].thread_id);
	assert_string_equal(fetch_all(f, f->archive, &n)[0].thread_id,
			    msgs[0].thread_id);
	assert_string_not_equal(msgs[2].thread_id, msgs[0].thread_id);
	assert_string_not_equal(msgs[3].thread_id, msgs[4].thread_id);
	assert_string_not_equal(msgs[3].thread_id, msgs[2].thread_id);
	assert_string_equal(msgs[5].thread_id, msgs[6].thread_id);
	assert_string_not_equal(msgs[5].thread_id, msgs[0].thread_id);
}

/* Closes the store, runs sqltext on the raw database (a damaged or old
   store) and opens the store again. */
static void tamper_and_reopen(struct fixture *f, const char *sqltext)
{
	char path[128];
	const char *error = NULL;
	sqlite3 *db;

	store_close(&f->store);
	snprintf(path, sizeof(path), "%s/accounts/%d/store.db", f->dir,
		 ACCOUNT);
	assert_int_equal(
		vfs_crypt_open(path, key_a, SQLITE_OPEN_READWRITE, &db, &error),
		0);
	assert_int_equal(sqlite3_exec(db, sqltext, NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	vfs_crypt_key_clear(path);
	f->store = open_store(f, key_a);
	assert_non_null(f->store);
}

/* SORT/THREAD keys (email_sort) */

static uint32_t append_keyed(struct fixture *f, uint64_t mailbox,
			     const char *subject, const char *from_key,
			     int64_t date, const char *message_id,
			     const char *const *refs)
{
	struct msg_spec spec = { .subject = subject,
				 .text = "t",
				 .message_id = message_id,
				 .references = refs,
				 .date = 1000 };
	struct message_index idx;
	struct store_append a;
	const char *error = NULL;
	uint32_t uid = 0;
	uint64_t modseq;

	make_append(f, mailbox, &spec, &idx, &a);
	idx.date = date;
	idx.base_subject = subject;
	idx.subject_is_reply = strncmp(subject, "re", 2) == 0;
	idx.sort_from = from_key;
	idx.sort_to = "bob";
	idx.sort_cc = "";
	idx.display_from = "Alice Example";
	idx.display_to = "b@example.org";
	if (store_append(f->store, &a, &uid, &modseq, &error) < 0)
		fail_msg("append: %s", error);
	return uid;
}

static void test_sort_keys(void **state)
{
	static const char *const refs[] = { "a@x", "b@x", NULL };
	struct fixture *f = *state;
	struct store_sort_keys *keys;
	uint32_t uids[3], dst[1], pick[2];
	unsigned int n;
	const char *error = NULL;
	uint32_t *expunged;
	unsigned int expunged_count;

	uids[0] =
		append_keyed(f, f->inbox, "hello", "alice", 5000, "a@x", NULL);
	uids[1] =
		append_keyed(f, f->inbox, "re hello", "carol", 0, "c@x", refs);
	uids[2] = append_keyed(f, f->inbox, "x", "", 7, "", NULL);

	assert_int_equal(store_sort_keys(f->store, f->inbox, NULL, 0, f->pool,
					 &keys, &n, &error),
			 0);
	assert_int_equal(n, 3);
	assert_int_equal(keys[0].uid, uids[0]);
	assert_true(keys[0].present);
	assert_int_equal(keys[0].date, 5000);
	assert_int_equal(keys[0].internaldate, 1000);
	assert_int_equal(keys[0].size, 100);
	assert_string_equal(keys[0].base_subject, "hello");
	assert_false(keys[0].subject_is_reply);
	assert_string_equal(keys[0].from, "alice");
	assert_string_equal(keys[0].to, "bob");
	assert_string_equal(keys[0].cc, "");
	assert_string_equal(keys[0].display_from, "Alice Example");
	assert_string_equal(keys[0].display_to, "b@example.org");
	assert_string_equal(keys[0].message_id, "a@x");
	assert_null(keys[0].references[0]);
	assert_int_equal(keys[1].date, 0);
	assert_true(keys[1].subject_is_reply);
	assert_string_equal(keys[1].references[0], "a@x");
	assert_string_equal(keys[1].references[1], "b@x");
	assert_null(keys[1].references[2]);
	assert_string_equal(keys[2].message_id, "");

	/* A subset, with a UID that does not exist. */
	pick[0] = uids[1];
	pick[1] = uids[2] + 10;
	assert_int_equal(store_sort_keys(f->store, f->inbox, pick, 2, f->pool,
					 &keys, &n, &error),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(keys[0].uid, uids[1]);
	assert_int_equal(store_sort_keys(f->store, f->inbox, uids + 1, 0,
					 f->pool, &keys, &n, &error),
			 0);
	assert_int_equal(n, 0);
	/* Bad input. */
	pick[0] = pick[1] = uids[0];
	assert_int_equal(store_sort_keys(f->store, f->inbox, pick, 2, f->pool,
					 &keys, &n, &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	assert_int_equal(store_sort_keys(f->store, 9999, NULL, 0, f->pool,
					 &keys, &n, &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_NOT_FOUND);

	/* A copy shares the keys, and keeps them when the original goes. */
	assert_int_equal(store_copy(f->store, f->inbox, uids, 1, f->archive,
				    dst, &error),
			 0);
	assert_int_equal(store_expunge(f->store, f->inbox, uids, 1, f->pool,
				       &expunged, &expunged_count, &error),
			 0);
	assert_int_equal(store_sort_keys(f->store, f->archive, NULL, 0, f->pool,
					 &keys, &n, &error),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(keys[0].uid, dst[0]);
	assert_string_equal(keys[0].base_subject, "hello");
	assert_int_equal(keys[0].date, 5000);
	assert_verify_ok(f);
}

/* A schema 1 store (no email_sort) is migrated at open; its old emails
   report no keys until store_sort_keys_fill() gives them. */
static void test_sort_keys_migration(void **state)
{
	struct fixture *f = *state;
	struct store_sort_keys *keys;
	struct message_index idx;
	const struct message_index *fill_idx[2];
	const char *error = NULL;
	uint32_t uid, fill_uids[2];
	unsigned int n;

	uid = append_keyed(f, f->inbox, "old", "alice", 42, "o@x", NULL);
	tamper_and_reopen(f, "DROP TABLE email_sort; "
			     "PRAGMA user_version = 1");
	assert_int_equal(store_sort_keys(f->store, f->inbox, NULL, 0, f->pool,
					 &keys, &n, &error),
			 0);
	assert_int_equal(n, 1);
	assert_false(keys[0].present);
	assert_string_equal(keys[0].base_subject, "");
	assert_int_equal(keys[0].date, 0);
	assert_int_equal(keys[0].internaldate, 1000);
	assert_non_null(keys[0].references);
	assert_null(keys[0].references[0]);

	memset(&idx, 0, sizeof(idx));
	idx.base_subject = "old";
	idx.date = 42;
	idx.sort_from = "alice";
	fill_uids[0] = uid;
	/* A message that is gone is skipped. */
	fill_uids[1] = uid + 5;
	fill_idx[0] = fill_idx[1] = &idx;
	assert_int_equal(store_sort_keys_fill(f->store, f->inbox, fill_uids,
					      fill_idx, 2, &error),
			 0);
	fill_idx[1] = NULL;
	assert_int_equal(store_sort_keys_fill(f->store, f->inbox, fill_uids,
					      fill_idx, 2, &error),
			 -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_INVALID);
	assert_int_equal(store_sort_keys(f->store, f->inbox, NULL, 0, f->pool,
					 &keys, &n, &error),
			 0);
	assert_true(keys[0].present);
	assert_string_equal(keys[0].base_subject, "old");
	assert_string_equal(keys[0].from, "alice");
	assert_string_equal(keys[0].to, "");
	assert_int_equal(keys[0].date, 42);

	/* New appends after the migration have their keys. */
	append_keyed(f, f->inbox, "new", "bob", 43, "n@x", NULL);
	assert_int_equal(store_sort_keys(f->store, f->inbox, NULL, 0, f->pool,
					 &keys, &n, &error),
			 0);
	assert_int_equal(n, 2);
	assert_true(keys[1].present);
	assert_string_equal(keys[1].from, "bob");
	assert_verify_ok(f);
}

/* Notifications */

struct notify_log {
	unsigned int calls;
	uint64_t account_id, mailbox_id, modseq;
};

static void notify_cb(uint64_t account_id, uint64_t mailbox_id, uint64_t modseq,
		      void *context)
{
	struct notify_log *log = context;

	log->calls++;
	log->account_id = account_id;
	log->mailbox_id = mailbox_id;
	log->modseq = modseq;
}

static void test_notifications(void **state)
{
	struct fixture *f = *state;
	struct notify_log mine = { 0 }, other = { 0 };
	struct msg_spec spec = { .subject = "n", .text = "t", .size = 100 };
	struct message_index idx;
	struct store_append a;
	uint32_t uid, uids[1] = { 1 }, dst[1];
	uint64_t modseq, box;
	const char *error;

	store_notify_add(ACCOUNT, notify_cb, &mine);
	store_notify_add(ACCOUNT + 1, notify_cb, &other);

	append(f, f->archive, &spec, &modseq);
	assert_int_equal(mine.calls, 1);
	assert_int_equal(mine.account_id, ACCOUNT);
	assert_int_equal(mine.mailbox_id, f->archive);
	assert_int_equal(mine.modseq, modseq);

	assert_int_equal(store_mailbox_create(f->store, "Box",
					      STORE_SPECIAL_NONE, &box, &error),
			 0);
	assert_int_equal(mine.calls, 2);
	assert_int_equal(mine.mailbox_id, 0);
	assert_int_equal(mine.modseq, store_highest_modseq(f->store));

	/* A move notifies both mailboxes, at the last modseq. */
	mine.calls = 0;
	assert_int_equal(
		store_move(f->store, f->archive, uids, 1, box, dst, &error), 0);
	assert_int_equal(mine.calls, 2);
	assert_int_equal(mine.modseq, store_highest_modseq(f->store));

	/* Failed operations and no-ops notify nobody. */
	mine.calls = 0;
	store_set_quota(f->store, 50);
	make_append(f, f->inbox, &spec, &idx, &a);
	assert_int_equal(store_append(f->store, &a, &uid, NULL, &error), -1);
	store_set_quota(f->store, 0);
	assert_int_equal(store_flags_update(f->store, box, dst, 1,
					    STORE_FLAGS_REMOVE, STORE_FLAG_SEEN,
					    NULL, 0, f->pool, NULL, NULL,
					    &modseq, &error),
			 0);
	assert_int_equal(mine.calls, 0);

	store_notify_remove(ACCOUNT, notify_cb, &mine);
	append(f, f->inbox, &spec, NULL);
	assert_int_equal(mine.calls, 0);
	assert_int_equal(other.calls, 0);
	store_notify_remove(ACCOUNT + 1, notify_cb, &other);
}

/* Keys and integrity */

static void test_wrong_key(void **state)
{
	struct fixture *f = *state;
	struct store *store;
	const char *error = NULL;

	append_simple(f, f->inbox, "secret");
	store_close(&f->store);
	assert_null(f->store);
	store_close(&f->store); /* tolerates NULL */

	store = store_open(f->dir, ACCOUNT, key_b, &error);
	assert_null(store);
	assert_non_null(error);
	assert_int_not_equal(error[0], '\0');

	f->store = open_store(f, key_a);
	assert_non_null(f->store);
	assert_counts(f, f->inbox, 1, 1, 100);
	assert_verify_ok(f);
}

static void test_verify_detects_damage(void **state)
{
	struct fixture *f = *state;
	const char *error = NULL;

	append_simple(f, f->inbox, "1");
	append_simple(f, f->inbox, "2");
	assert_verify_ok(f);
	/* Counts that disagree with the rows are found. */
	tamper_and_reopen(f, "UPDATE mailboxes SET unseen = 5 "
			     "WHERE name = 'INBOX'");
	assert_int_equal(store_verify(f->store, NULL, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_DAMAGED);
	assert_non_null(strstr(error, "INBOX"));
}

static int count_blob(const uint8_t blob_id[32], uint64_t size, void *context)
{
	unsigned int *n = context;

	(void)blob_id;
	assert_int_equal(size, 100);
	(*n)++;
	return 0;
}

static void test_foreach_blob(void **state)
{
	struct fixture *f = *state;
	uint32_t uids[2] = { 1, 2 }, dst[2];
	unsigned int n = 0;
	const char *error;

	append_simple(f, f->inbox, "1");
	append_simple(f, f->inbox, "2");
	assert_int_equal(store_copy(f->store, f->inbox, uids, 2, f->archive,
				    dst, &error),
			 0);
	assert_int_equal(store_foreach_blob(f->store, count_blob, &n, &error),
			 0);
	assert_int_equal(n, 2);
}

static void test_verify_blobs(void **state)
{
	static const char *const bodies[] = {
		"Subject: one\r\n\r\nfirst body\r\n",
		"Subject: two\r\n\r\nsecond body, a little longer\r\n",
	};
	struct fixture *f = *state;
	struct msg_spec spec = { .subject = "b", .text = "t" };
	struct message_index idx;
	struct store_append a;
	struct blob_store *blobs;
	uint8_t ids[2][BLOB_ID_LEN];
	char account_dir[128];
	const char *error = NULL;
	unsigned int i;
	uint32_t uid;

	snprintf(account_dir, sizeof(account_dir), "%s/accounts/%d", f->dir,
		 ACCOUNT);
	blobs = blob_store_open(account_dir, key_a, &error);
	assert_non_null(blobs);
	for (i = 0; i < N_ELEMENTS(bodies); i++) {
		assert_true(blob_put(blobs, bodies[i], strlen(bodies[i]),
				     ids[i], NULL, &error) >= 0);
		make_append(f, f->inbox, &spec, &idx, &a);
		memcpy(a.blob_id, ids[i], BLOB_ID_LEN);
		a.size = strlen(bodies[i]);
		assert_int_equal(store_append(f->store, &a, &uid, NULL, &error),
				 0);
	}
	if (store_verify(f->store, blobs, &error) < 0)
		fail_msg("verify: %s", error);

	/* A missing blob is damage; so is a size that does not match. */
	assert_int_equal(blob_delete(blobs, ids[1], &error), 0);
	assert_int_equal(store_verify(f->store, blobs, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_DAMAGED);
	assert_non_null(strstr(error, "missing"));
	assert_non_null(strstr(error, "1 of 2"));

	assert_true(blob_put(blobs, bodies[1], strlen(bodies[1]), ids[1], NULL,
			     &error) >= 0);
	if (store_verify(f->store, blobs, &error) < 0)
		fail_msg("verify: %s", error);
	assert_true(blob_put(blobs, "abcdef", 6, ids[1], NULL, &error) >= 0);
	make_append(f, f->inbox, &spec, &idx, &a);
	memcpy(a.blob_id, ids[1], BLOB_ID_LEN);
	a.size = 3;
	assert_int_equal(store_append(f->store, &a, &uid, NULL, &error), 0);
	assert_int_equal(store_verify(f->store, blobs, &error), -1);
	assert_int_equal(store_last_error(f->store), STORE_ERROR_DAMAGED);
	assert_non_null(strstr(error, "has 6 bytes, not 3"));
	/* One blob recorded with two sizes is caught without the blobs. */
	make_append(f, f->inbox, &spec, &idx, &a);
	memcpy(a.blob_id, ids[0], BLOB_ID_LEN);
	a.size = 4;
	assert_int_equal(store_append(f->store, &a, &uid, NULL, &error), 0);
	assert_int_equal(store_verify(f->store, NULL, &error), -1);
	assert_non_null(strstr(error, "blob_size_conflicts=1"));
	blob_store_close(&blobs);
}

/* Listeners come and go from other threads while changes commit. */
struct notify_thread {
	unsigned int calls;
};

static void notify_count_cb(uint64_t account_id, uint64_t mailbox_id,
			    uint64_t modseq, void *context)
{
	struct notify_thread *t = context;

	(void)account_id;
	(void)mailbox_id;
	(void)modseq;
	t->calls++;
}

static void *notify_thread_run(void *context)
{
	unsigned int i;

	for (i = 0; i < 2000; i++) {
		store_notify_add(ACCOUNT, notify_count_cb, context);
		store_notify_remove(ACCOUNT, notify_count_cb, context);
	}
	return NULL;
}

static void test_notify_threads(void **state)
{
	struct fixture *f = *state;
	struct notify_thread threads[4], steady = { 0 };
	pthread_t tids[4];
	unsigned int i;

	memset(threads, 0, sizeof(threads));
	store_notify_add(ACCOUNT, notify_count_cb, &steady);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&tids[i], NULL,
						notify_thread_run, &threads[i]),
				 0);
	for (i = 0; i < 20; i++)
		append_simple(f, f->inbox, "x");
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_join(tids[i], NULL), 0);
	assert_int_equal(steady.calls, 20);
	store_notify_remove(ACCOUNT, notify_count_cb, &steady);
	append_simple(f, f->inbox, "y");
	assert_int_equal(steady.calls, 20);
}

/* Throughput (printed, not asserted). */

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_throughput(void **state)
{
	struct fixture *f = *state;
	struct msg_spec spec = { .subject = "Benchmark message subject",
				 .text = "Some ordinary body text of a "
					 "typical short message, repeated "
					 "enough to be realistic. " };
	struct message_index idx[100];
	struct store_append a[100];
	struct store_message *msgs;
	uint32_t uids[100];
	unsigned int i, j, count;
	const char *error;
	double t0, t1, t2;

	t0 = now_sec();
	for (i = 0; i < 200; i++)
		append(f, f->inbox, &spec, NULL);
	t1 = now_sec();
	for (i = 0; i < 18; i++) {
		for (j = 0; j < 100; j++)
			make_append(f, f->inbox, &spec, &idx[j], &a[j]);
		assert_int_equal(
			store_append_many(f->store, a, 100, uids, &error), 0);
	}
	t2 = now_sec();
	print_message("# appends: %.0f/s one per transaction, %.0f/s in "
		      "batches of 100 (spool merge)\n",
		      200 / (t1 - t0), 1800 / (t2 - t1));

	pool_clear(f->pool);
	t0 = now_sec();
	msgs = fetch_all(f, f->inbox, &count);
	t1 = now_sec();
	assert_int_equal(count, 2000);
	assert_int_equal(msgs[1999].uid, 2000);
	print_message("# FETCH 1:* of %u messages: %.1f ms\n", count,
		      (t1 - t0) * 1000);
	t0 = now_sec();
	search(f, f->inbox, STORE_SEARCH_TEXT, STORE_SEARCH_WORDS, "nomatch",
	       NULL, 0);
	t1 = now_sec();
	print_message("# word search over %u messages: %.2f ms\n", count,
		      (t1 - t0) * 1000);
	assert_verify_ok(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_mailboxes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_names, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_mailbox_create_rename_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_inbox, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_fetch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_uid_modseq_monotonic,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_move, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_since, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_idempotent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_many_atomic, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_search_substring, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_search_words, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_threading, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sort_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sort_keys_migration, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_uids_keywords, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_notifications, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_verify_detects_damage,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreach_blob, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_verify_blobs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_notify_threads, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_throughput, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
