/* test-vault-merge.c - the spool merge (vault-merge.c) against a real
   directory.db, real spools, stores and blobs in a temporary data
   directory: 20 records land in INBOX byte for byte; a redo over the same
   records after a simulated crash (spool.merging re-created after the
   commit) adds nothing; a damaged record is skipped, logged and its file
   kept; junk, mailbox hints and the filter hook choose the mailbox (the
   verdict's "Junk" hint follows a renamed Junk, and falls back to INBOX
   when there is none); quota
   never refuses; and the scheduler (inotify + worker pool + ioloop)
   merges what arrives while it runs and reports the changes. A merge
   asked to collect removes old unreferenced blobs after its commit; the
   scheduler collects on an account's first merge and then at most once
   per interval. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "vault-merge.h"
#include "vault-keyring.h"
#include "blob.h"
#include "blob-gc.h"
#include "buf.h"
#include "directory.h"
#include "ioloop.h"
#include "log.h"
#include "message-index.h"
#include "pool.h"
#include "spool.h"
#include "store.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

struct fixture {
	char tmpdir[64];
	char account_dir[128];
	struct directory *dir;
	uint8_t master_key[MASTER_KEY_LEN];
	struct vault_merge_account account;
	struct account_keys keys;
};

static struct fixture fix;

static char *test_message(unsigned int n)
{
	return i_strdup_printf("From: Sender %u <sender%u@example.net>\r\n"
			       "To: alice@example.org\r\n"
			       "Subject: merge test %u\r\n"
			       "Message-ID: <m%u@example.net>\r\n"
			       "Date: Mon, 2 Jun 2025 10:00:00 +0000\r\n"
			       "\r\n"
			       "Body of message %u.\r\n",
			       n, n, n, n, n);
}

static void deliver(unsigned int n, uint32_t flags, const char *mailbox)
{
	struct spool_record rec;
	uint8_t id[SPOOL_RECORD_ID_LEN];
	char *msg = test_message(n);
	const char *error;

	memset(&rec, 0, sizeof(rec));
	rec.received = 1700000000 + n;
	rec.flags = flags;
	rec.sender = "sender@example.net";
	rec.recipient = "alice@example.org";
	rec.mailbox = mailbox;
	rec.message = (const uint8_t *)msg;
	rec.message_len = strlen(msg);
	if (spool_append(fix.account_dir, fix.account.public_key, &rec, id,
			 &error) < 0)
		fail_msg("spool_append: %s", error);
	i_free(msg);
}

static bool file_exists(const char *name)
{
	struct stat st;
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", fix.account_dir, name);
	return stat(path, &st) == 0;
}

/* Empties the account directory between tests. */
static void reset_account(void)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'/* '%s'/.[!.]*", fix.account_dir,
		 fix.account_dir);
	assert_int_equal(system(cmd), 0);
}

static int merge(struct vault_merge_result *res_r, pool_t pool)
{
	const char *error;
	int ret;

	ret = vault_merge_account(fix.tmpdir, fix.master_key, &fix.account,
				  NULL, pool, res_r, &error);
	if (ret < 0)
		fail_msg("vault_merge_account: %s", error);
	return ret;
}

static struct store *open_store(void)
{
	const char *error;
	struct store *store = store_open(fix.tmpdir, fix.account.id,
					 fix.keys.data_key, &error);

	if (store == NULL)
		fail_msg("store_open: %s", error);
	return store;
}

static uint32_t count_special(struct store *store, enum store_special_use use,
			      pool_t pool)
{
	struct store_mailbox box;
	const char *error;

	assert_int_equal(
		store_mailbox_find_special(store, use, pool, &box, &error), 1);
	return box.messages;
}

static uint32_t count_named(struct store *store, const char *name, pool_t pool)
{
	struct store_mailbox box;
	const char *error;

	assert_int_equal(store_mailbox_lookup(store, name, pool, &box, &error),
			 1);
	return box.messages;
}

static int group_setup(void **state ATTR_UNUSED)
{
	struct directory_account da;
	char db_path[128];
	const char *error;
	uint64_t id;

	if (sodium_init() < 0)
		return -1;
	snprintf(fix.tmpdir, sizeof(fix.tmpdir), "/tmp/marmot-merge-XXXXXX");
	if (mkdtemp(fix.tmpdir) == NULL)
		return -1;
	snprintf(db_path, sizeof(db_path), "%s/directory.db", fix.tmpdir);
	fix.dir = directory_open(db_path, false, &error);
	if (fix.dir == NULL) {
		fprintf(stderr, "directory_open: %s\n", error);
		return -1;
	}
	randombytes_buf(fix.master_key, sizeof(fix.master_key));
	if (directory_domain_add(fix.dir, "example.org", &error) < 0 ||
	    directory_account_add(fix.dir, fix.tmpdir, fix.master_key,
				  "alice@example.org", "alice password", 0, &id,
				  &error) < 0 ||
	    directory_account_lookup_id(fix.dir, id, &da, &error) != 1) {
		fprintf(stderr, "directory setup: %s\n", error);
		return -1;
	}
	fix.account.id = id;
	memcpy(fix.account.public_key, da.public_key,
	       sizeof(fix.account.public_key));
	memcpy(fix.account.wrapped_keys, da.wrapped_keys,
	       sizeof(fix.account.wrapped_keys));
	pool_clear(directory_pool(fix.dir));
	if (account_keys_unwrap(fix.master_key, id, fix.account.public_key,
				fix.account.wrapped_keys,
				sizeof(fix.account.wrapped_keys),
				&fix.keys) < 0)
		return -1;
	snprintf(fix.account_dir, sizeof(fix.account_dir),
		 "%s/accounts/%" PRIu64, fix.tmpdir, id);
	return 0;
}

static int group_teardown(void **state ATTR_UNUSED)
{
	char cmd[160];

	account_keys_clear(&fix.keys);
	directory_close(&fix.dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fix.tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int test_setup(void **state ATTR_UNUSED)
{
	reset_account();
	fix.account.quota_bytes = 0;
	fix.account.collect = false;
	return 0;
}

static void test_nothing_to_merge(void **state ATTR_UNUSED)
{
	struct vault_merge_result res;
	pool_t pool = pool_create("test", 1024);

	assert_int_equal(merge(&res, pool), 0);
	assert_int_equal(res.messages, 0);
	assert_int_equal(res.files, 0);
	/* No spool: the store was not even opened (or created). */
	assert_false(file_exists("store.db"));
	pool_unref(&pool);
}

static void test_merge_20_and_redo(void **state ATTR_UNUSED)
{
	struct vault_merge_result res;
	struct store_message *msgs;
	struct store_mailbox inbox;
	struct blob_store *blobs;
	struct store *store;
	struct buf raw = BUF_INIT;
	pool_t pool = pool_create("test", 1024);
	char spool_path[256], merging_path[256], cmd[600];
	unsigned int count;
	const char *error;

	for (unsigned int i = 0; i < 20; i++)
		deliver(i, 0, "");
	/* Keep the records to replay them as a crash leftover. */
	snprintf(spool_path, sizeof(spool_path), "%s/spool", fix.account_dir);
	snprintf(merging_path, sizeof(merging_path), "%s/spool.merging",
		 fix.account_dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s/spool.copy'", spool_path,
		 fix.account_dir);
	assert_int_equal(system(cmd), 0);

	assert_int_equal(merge(&res, pool), 0);
	assert_int_equal(res.messages, 20);
	assert_int_equal(res.files, 1);
	assert_int_equal(res.damaged, 0);
	assert_int_equal(res.change_count, 1);
	assert_true(res.changes[0].modseq > 0);
	assert_false(file_exists("spool.merging"));

	store = open_store();
	assert_int_equal(store_mailbox_find_special(store, STORE_SPECIAL_INBOX,
						    pool, &inbox, &error),
			 1);
	assert_int_equal(inbox.messages, 20);
	assert_int_equal(res.changes[0].mailbox_id, inbox.id);
	assert_int_equal(
		store_fetch(store, inbox.id, 1, 0, pool, &msgs, &count, &error),
		0);
	assert_int_equal(count, 20);
	blobs = blob_store_open(fix.account_dir, fix.keys.data_key, &error);
	assert_non_null(blobs);
	for (unsigned int i = 0; i < count; i++) {
		char *expected = test_message(i);
		char subject[64];

		buf_reset(&raw);
		if (blob_get(blobs, msgs[i].blob_id, &raw, &error) < 0)
			fail_msg("blob_get: %s", error);
		assert_int_equal(raw.used, strlen(expected));
		assert_memory_equal(buf_span(&raw).p, expected, raw.used);
		assert_int_equal(msgs[i].size, strlen(expected));
		assert_int_equal(msgs[i].internaldate, 1700000000 + i);
		snprintf(subject, sizeof(subject), "\"merge test %u\"", i);
		assert_non_null(msgs[i].envelope);
		assert_non_null(strstr(msgs[i].envelope, subject));
		i_free(expected);
	}
	store_close(&store);

	/* A crash after the commit, before spool_done: the same records
	   come back as spool.merging. */
	snprintf(cmd, sizeof(cmd), "%s/spool.copy", fix.account_dir);
	assert_int_equal(rename(cmd, merging_path), 0);
	assert_int_equal(merge(&res, pool), 0);
	assert_int_equal(res.messages, 20); /* committed again: no-ops */
	assert_false(file_exists("spool.merging"));
	store = open_store();
	assert_int_equal(count_special(store, STORE_SPECIAL_INBOX, pool), 20);
	store_close(&store);

	blob_store_close(&blobs);
	buf_free(&raw);
	pool_unref(&pool);
}

/* Flips a byte inside the sealed part of record n (0-based) of spool. */
static void damage_record(unsigned int n)
{
	char path[256];
	uint8_t hdr[8], byte;
	off_t off = 0;
	uint32_t len;
	int fd;

	snprintf(path, sizeof(path), "%s/spool", fix.account_dir);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	for (unsigned int i = 0;; i++) {
		assert_int_equal(pread(fd, hdr, sizeof(hdr), off), 8);
		assert_memory_equal(hdr, "MSR1", 4);
		len = (uint32_t)hdr[4] | (uint32_t)hdr[5] << 8 |
		      (uint32_t)hdr[6] << 16 | (uint32_t)hdr[7] << 24;
		if (i == n)
			break;
		off += 8 + (off_t)len;
	}
	off += 8 + len / 2;
	assert_int_equal(pread(fd, &byte, 1, off), 1);
	byte ^= 0x01;
	assert_int_equal(pwrite(fd, &byte, 1, off), 1);
	close(fd);
}

static bool damaged_file_kept(void)
{
	struct dirent *d;
	DIR *dp = opendir(fix.account_dir);
	bool found = false;

	assert_non_null(dp);
	while ((d = readdir(dp)) != NULL) {
		if (strncmp(d->d_name, "spool.damaged-", 14) == 0)
			found = true;
	}
	closedir(dp);
	return found;
}

static void test_damaged_record(void **state ATTR_UNUSED)
{
	struct vault_merge_result res;
	struct store *store;
	pool_t pool = pool_create("test", 1024);
	char log_path[128], logged[4096];
	ssize_t n;
	int log_fd;

	for (unsigned int i = 0; i < 3; i++)
		deliver(100 + i, 0, "");
	damage_record(1);

	snprintf(log_path, sizeof(log_path), "%s/log", fix.tmpdir);
	log_fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(log_fd >= 0);
	log_set_fd(log_fd);
	assert_int_equal(merge(&res, pool), 0);
	log_set_fd(2);
	n = pread(log_fd, logged, sizeof(logged) - 1, 0);
	close(log_fd);
	assert_true(n > 0);
	logged[n] = '\0';
	assert_non_null(strstr(logged, "merge.damaged"));
	assert_non_null(strstr(logged, "records=1"));

	assert_int_equal(res.messages, 2);
	assert_int_equal(res.damaged, 1);
	assert_true(damaged_file_kept());
	assert_false(file_exists("spool.merging"));
	store = open_store();
	assert_int_equal(count_special(store, STORE_SPECIAL_INBOX, pool), 2);
	store_close(&store);
	pool_unref(&pool);
}

static void test_junk_and_hints(void **state ATTR_UNUSED)
{
	struct vault_merge_result res;
	struct store *store;
	pool_t pool = pool_create("test", 1024);

	deliver(1, SPOOL_FLAG_JUNK, "");
	deliver(2, 0, "Archive");
	deliver(3, 0, "bad//name"); /* invalid: INBOX */
	deliver(4, SPOOL_FLAG_JUNK, "No such folder");
	assert_int_equal(merge(&res, pool), 0);
	assert_int_equal(res.messages, 4);
	assert_int_equal(res.change_count, 3);

	store = open_store();
	assert_int_equal(count_special(store, STORE_SPECIAL_JUNK, pool), 2);
	assert_int_equal(count_named(store, "Archive", pool), 1);
	assert_int_equal(count_special(store, STORE_SPECIAL_INBOX, pool), 1);
	store_close(&store);
	pool_unref(&pool);
}

/* What the front's verdict stage writes for junk (hint "Junk" and
   SPOOL_FLAG_JUNK): the Junk mailbox; a renamed Junk (special use kept)
   is found by its special use; with no Junk mailbox at all, INBOX. */
static void test_verdict_junk(void **state ATTR_UNUSED)
{
	struct vault_merge_result res;
	struct store_mailbox box;
	struct store *store;
	const char *error;
	pool_t pool = pool_create("test", 1024);

	deliver(1, SPOOL_FLAG_JUNK, "Junk");
	assert_int_equal(merge(&res, pool), 0);
	store = open_store();
	assert_int_equal(count_named(store, "Junk", pool), 1);
	/* The user renames Junk to Spam: the hint names no mailbox. */
	assert_int_equal(
		store_mailbox_lookup(store, "Junk", pool, &box, &error), 1);
	assert_int_equal(store_mailbox_rename(store, box.id, "Spam", &error),
			 0);
	store_close(&store);
	deliver(2, SPOOL_FLAG_JUNK, "Junk");
	assert_int_equal(merge(&res, pool), 0);
	store = open_store();
	assert_int_equal(count_named(store, "Spam", pool), 2);
	/* And deletes it: junk goes to INBOX rather than nowhere. */
	assert_int_equal(
		store_mailbox_lookup(store, "Spam", pool, &box, &error), 1);
	assert_int_equal(store_mailbox_delete(store, box.id, &error), 0);
	store_close(&store);
	deliver(3, SPOOL_FLAG_JUNK, "Junk");
	assert_int_equal(merge(&res, pool), 0);
	assert_int_equal(res.messages, 1);
	store = open_store();
	assert_int_equal(count_special(store, STORE_SPECIAL_INBOX, pool), 1);
	store_close(&store);
	pool_unref(&pool);
}

static int filter_to_trash(const struct spool_record *record,
			   const struct message_index *index,
			   const char **mailbox_name)
{
	/* Sees the decoded message: file by subject. */
	if (index->subject != NULL && strstr(index->subject, "test 7") != NULL)
		*mailbox_name = "Trash";
	(void)record;
	return 0;
}

static void test_filter_hook(void **state ATTR_UNUSED)
{
	vault_merge_filter_t *saved = vault_merge_filter;
	struct vault_merge_result res;
	struct store *store;
	pool_t pool = pool_create("test", 1024);

	deliver(6, 0, "");
	deliver(7, 0, "");
	vault_merge_filter = filter_to_trash;
	assert_int_equal(merge(&res, pool), 0);
	vault_merge_filter = saved;
	store = open_store();
	assert_int_equal(count_named(store, "Trash", pool), 1);
	assert_int_equal(count_special(store, STORE_SPECIAL_INBOX, pool), 1);
	store_close(&store);
	pool_unref(&pool);
}

static void test_over_quota_still_stored(void **state ATTR_UNUSED)
{
	struct vault_merge_result res;
	struct store *store;
	pool_t pool = pool_create("test", 1024);

	fix.account.quota_bytes = 100;
	for (unsigned int i = 0; i < 5; i++)
		deliver(i, 0, "");
	assert_int_equal(merge(&res, pool), 0);
	assert_int_equal(res.messages, 5);
	assert_true(res.over_quota);
	assert_true(res.quota_used > 100);
	store = open_store();
	assert_int_equal(count_special(store, STORE_SPECIAL_INBOX, pool), 5);
	store_close(&store);
	pool_unref(&pool);
}

struct changes {
	unsigned int calls;
	uint64_t account_id, modseq;
};

static void changed(uint64_t account_id, uint64_t mailbox_id ATTR_UNUSED,
		    uint64_t modseq, void *context)
{
	struct changes *c = context;

	c->calls++;
	c->account_id = account_id;
	c->modseq = modseq;
}

static uint32_t inbox_count(void)
{
	pool_t pool = pool_create("test", 1024);
	struct store *store = open_store();
	uint32_t n = count_special(store, STORE_SPECIAL_INBOX, pool);

	store_close(&store);
	pool_unref(&pool);
	return n;
}

static void test_merger_inotify(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_merger *merger;
	struct changes c;
	uint64_t first_modseq;
	const char *error;

	memset(&c, 0, sizeof(c));
	/* Waiting before the start: merged by the start-up sweep. */
	for (unsigned int i = 0; i < 3; i++)
		deliver(i, 0, "");
	merger = vault_merger_create(ioloop, fix.tmpdir, fix.dir,
				     fix.master_key, 2, changed, &c, &error);
	assert_non_null(merger);
	for (unsigned int i = 0; i < 300 && c.calls == 0; i++)
		ioloop_run_once(ioloop, 100);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.account_id, fix.account.id);
	first_modseq = c.modseq;
	assert_int_equal(vault_merger_in_flight(merger), 0);

	/* Arriving while it runs: inotify. */
	for (unsigned int i = 3; i < 10; i++)
		deliver(i, 0, "");
	for (unsigned int i = 0; i < 300 && inbox_count() < 10; i++)
		ioloop_run_once(ioloop, 100);
	assert_int_equal(inbox_count(), 10);
	/* Let the last done() run. */
	for (unsigned int i = 0; i < 300 && vault_merger_in_flight(merger) > 0;
	     i++)
		ioloop_run_once(ioloop, 100);
	assert_true(c.calls >= 2);
	assert_true(c.modseq > first_modseq);
	assert_false(file_exists("spool.merging"));

	vault_merger_destroy(&merger);
	assert_null(merger);
	ioloop_destroy(&ioloop);
}

/* A blob that nothing references, its mtime two hours back (as if left
   by an import that stopped before its commit). */
static void orphan_blob(unsigned int n, uint8_t id_r[BLOB_ID_LEN])
{
	struct blob_store *blobs;
	struct timespec ts[2];
	char *msg = test_message(n);
	char hex[BLOB_ID_HEX_LEN + 1], path[320];
	const char *error;

	blobs = blob_store_open(fix.account_dir, fix.keys.data_key, &error);
	assert_non_null(blobs);
	assert_int_equal(blob_put(blobs, msg, strlen(msg), id_r, NULL, &error),
			 1);
	blob_store_close(&blobs);
	i_free(msg);
	blob_id_to_hex(id_r, hex);
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s", fix.account_dir, hex,
		 hex);
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - 7200;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static bool blob_present(const uint8_t id[BLOB_ID_LEN])
{
	struct blob_store *blobs;
	const char *error;
	bool ret;

	blobs = blob_store_open(fix.account_dir, fix.keys.data_key, &error);
	assert_non_null(blobs);
	ret = blob_exists(blobs, id);
	blob_store_close(&blobs);
	return ret;
}

static void verify_store(void)
{
	struct blob_store *blobs;
	struct store *store = open_store();
	const char *error;

	blobs = blob_store_open(fix.account_dir, fix.keys.data_key, &error);
	assert_non_null(blobs);
	if (store_verify(store, blobs, &error) < 0)
		fail_msg("store_verify: %s", error);
	blob_store_close(&blobs);
	store_close(&store);
}

static void test_merge_collects(void **state ATTR_UNUSED)
{
	struct vault_merge_result res;
	uint8_t orphan[BLOB_ID_LEN];
	pool_t pool = pool_create("test", 1024);

	deliver(1, 0, "");
	assert_int_equal(merge(&res, pool), 0);
	assert_false(res.collected);
	orphan_blob(500, orphan);
	deliver(2, 0, "");
	deliver(3, 0, "");
	fix.account.collect = true;
	assert_int_equal(merge(&res, pool), 0);
	assert_int_equal(res.messages, 2);
	assert_true(res.collected);
	assert_null(res.gc_error);
	assert_int_equal(res.gc.files, 4);
	assert_int_equal(res.gc.referenced, 3);
	assert_int_equal(res.gc.deleted, 1);
	assert_true(res.gc.deleted_bytes > 0);
	/* The merge's own blobs are young and referenced: never candidates. */
	assert_int_equal(res.gc.young, 0);
	assert_false(blob_present(orphan));
	verify_store();
	pool_unref(&pool);
}

/* Runs the loop until the merger has merged n messages in all. */
static void run_until_inbox(struct ioloop *ioloop, struct vault_merger *merger,
			    uint32_t n)
{
	for (unsigned int i = 0;
	     i < 300 &&
	     (inbox_count() < n || vault_merger_in_flight(merger) > 0);
	     i++)
		ioloop_run_once(ioloop, 100);
	assert_int_equal(inbox_count(), n);
	assert_int_equal(vault_merger_in_flight(merger), 0);
}

static void test_merger_collects_once_per_interval(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_merger *merger;
	uint8_t o1[BLOB_ID_LEN], o2[BLOB_ID_LEN];
	struct changes c;
	const char *error;

	memset(&c, 0, sizeof(c));
	deliver(1, 0, "");
	/* The store must exist for the orphans to be unreferenced in it. */
	{
		struct vault_merge_result res;
		pool_t pool = pool_create("test", 1024);

		assert_int_equal(merge(&res, pool), 0);
		pool_unref(&pool);
	}
	orphan_blob(600, o1);
	deliver(2, 0, "");
	merger = vault_merger_create(ioloop, fix.tmpdir, fix.dir,
				     fix.master_key, 2, changed, &c, &error);
	assert_non_null(merger);
	/* The account's first merge since the start collects. */
	run_until_inbox(ioloop, merger, 2);
	assert_false(blob_present(o1));

	/* Within the hour: the next merge does not. */
	orphan_blob(601, o2);
	deliver(3, 0, "");
	run_until_inbox(ioloop, merger, 3);
	assert_true(blob_present(o2));

	/* Once the interval has passed, it does again. */
	vault_merger_set_gc_interval(merger, 0);
	deliver(4, 0, "");
	run_until_inbox(ioloop, merger, 4);
	assert_false(blob_present(o2));
	verify_store();

	vault_merger_destroy(&merger);
	ioloop_destroy(&ioloop);
}

/* A zero-access account's spool waits untouched (no take, no store) while
   its keys are not in the keyring, and is merged once a login has put
   them there (unwrapped with the password) and scheduled it. */
static void test_zero_access_locked_until_unlock(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_keyring *keyring = vault_keyring_create(0);
	struct vault_merge_account za;
	struct vault_merge_result res;
	struct directory_account da;
	struct vault_merger *merger;
	struct account_keys keys;
	struct store *store;
	struct changes c;
	char dir[128], path[192];
	pool_t pool = pool_create("test", 1024);
	const char *error;
	struct stat st;
	uint64_t id;

	memset(&c, 0, sizeof(c));
	if (directory_account_add_zero_access(fix.dir, fix.tmpdir,
					      "zed@example.org", "zed pw", 0,
					      &id, &error) < 0 ||
	    directory_account_lookup_id(fix.dir, id, &da, &error) != 1)
		fail_msg("zero-access account: %s", error);
	assert_true(da.zero_access);
	snprintf(dir, sizeof(dir), "%s/accounts/%" PRIu64, fix.tmpdir, id);
	/* Delivery needs only the public key. */
	for (unsigned int i = 0; i < 3; i++) {
		struct spool_record rec;
		uint8_t rid[SPOOL_RECORD_ID_LEN];
		char *msg = test_message(100 + i);

		memset(&rec, 0, sizeof(rec));
		rec.received = 1700000000 + i;
		rec.sender = "sender@example.net";
		rec.recipient = "zed@example.org";
		rec.mailbox = "";
		rec.message = (const uint8_t *)msg;
		rec.message_len = strlen(msg);
		if (spool_append(dir, da.public_key, &rec, rid, &error) < 0)
			fail_msg("spool_append: %s", error);
		i_free(msg);
	}

	/* Without keys, vault_merge_account refuses before the spool. */
	memset(&za, 0, sizeof(za));
	za.id = id;
	za.zero_access = true;
	memcpy(za.public_key, da.public_key, sizeof(za.public_key));
	pool_clear(directory_pool(fix.dir));
	assert_int_equal(vault_merge_account(fix.tmpdir, fix.master_key, &za,
					     NULL, pool, &res, &error),
			 -1);
	snprintf(path, sizeof(path), "%s/spool", dir);
	assert_int_equal(stat(path, &st), 0);

	/* The merger skips it while locked: spool untouched, no store. */
	merger = vault_merger_create(ioloop, fix.tmpdir, fix.dir,
				     fix.master_key, 2, changed, &c, &error);
	assert_non_null(merger);
	vault_merger_set_keyring(merger, keyring);
	for (unsigned int i = 0; i < 10; i++)
		ioloop_run_once(ioloop, 100);
	vault_merger_schedule(merger, id);
	for (unsigned int i = 0; i < 5; i++)
		ioloop_run_once(ioloop, 100);
	assert_int_equal(c.calls, 0);
	assert_int_equal(vault_merger_in_flight(merger), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > 0);
	snprintf(path, sizeof(path), "%s/spool.merging", dir);
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/store.db", dir);
	assert_int_equal(stat(path, &st), -1);

	/* A login unwraps with the password and schedules: merged. */
	assert_int_equal(directory_account_keys(&da, NULL, "zed pw", 6, &keys),
			 0);
	pool_clear(directory_pool(fix.dir));
	vault_keyring_put(keyring, id, &keys, ioloop_now_ms(ioloop));
	vault_merger_schedule(merger, id);
	for (unsigned int i = 0; i < 300 && c.calls == 0; i++)
		ioloop_run_once(ioloop, 100);
	for (unsigned int i = 0; i < 300 && vault_merger_in_flight(merger) > 0;
	     i++)
		ioloop_run_once(ioloop, 100);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.account_id, id);
	snprintf(path, sizeof(path), "%s/spool.merging", dir);
	assert_int_equal(stat(path, &st), -1);
	store = store_open(fix.tmpdir, id, keys.data_key, &error);
	assert_non_null(store);
	assert_int_equal(count_special(store, STORE_SPECIAL_INBOX, pool), 3);
	store_close(&store);

	/* Expired keys are wiped and no longer handed out. */
	assert_int_equal(vault_keyring_expire(keyring, UINT64_MAX - 1), 1);
	assert_false(vault_keyring_get(keyring, id, 0, NULL));
	account_keys_clear(&keys);
	vault_merger_destroy(&merger);
	vault_keyring_destroy(&keyring);
	assert_null(keyring);
	ioloop_destroy(&ioloop);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_nothing_to_merge, test_setup),
		cmocka_unit_test_setup(test_merge_20_and_redo, test_setup),
		cmocka_unit_test_setup(test_damaged_record, test_setup),
		cmocka_unit_test_setup(test_junk_and_hints, test_setup),
		cmocka_unit_test_setup(test_verdict_junk, test_setup),
		cmocka_unit_test_setup(test_filter_hook, test_setup),
		cmocka_unit_test_setup(test_over_quota_still_stored,
				       test_setup),
		cmocka_unit_test_setup(test_merger_inotify, test_setup),
		cmocka_unit_test_setup(test_zero_access_locked_until_unlock,
				       test_setup),
		cmocka_unit_test_setup(test_merge_collects, test_setup),
		cmocka_unit_test_setup(test_merger_collects_once_per_interval,
				       test_setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
