/* test-blob-gc.c - the blob collector (blob-gc.c) over a real encrypted
   store and blob store in a temporary directory: referenced blobs
   survive; unreferenced blobs older than the guard are deleted and
   reported with their bytes; young unreferenced blobs survive; a dry run
   deletes nothing but reports the same; a blob shared by a copy survives
   the expunge of one copy and goes with the last; a blob_put of an old
   unreferenced blob (dedup) refreshes it so a pass between that put and
   its commit keeps it; blob_collect itself keeps young blobs; stop is
   honoured; store_verify passes after every pass. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "blob.h"
#include "blob-gc.h"
#include "message-index.h"
#include "pool.h"
#include "store.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ACCOUNT 9
#define HOUR 3600

static const uint8_t data_key[32] = {
	0x51, 0x62, 0x73, 0x84, 0x95, 0xa6, 0xb7, 0xc8, 0xd9, 0xea, 0xfb,
	0x0c, 0x1d, 0x2e, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46,
	0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50,
};

struct fixture {
	char dir[64];
	char account_dir[96];
	struct store *store;
	struct blob_store *blobs;
	pool_t pool;
	uint64_t inbox, archive;
};

static int rm_entry(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = i_new(struct fixture, 1);
	struct store_mailbox box;
	const char *error;

	snprintf(f->dir, sizeof(f->dir), "/tmp/test-blob-gc.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		i_free(f);
		return -1;
	}
	snprintf(f->account_dir, sizeof(f->account_dir), "%s/accounts/%d",
		 f->dir, ACCOUNT);
	f->pool = pool_create("test-blob-gc", 4096);
	f->store = store_open(f->dir, ACCOUNT, data_key, &error);
	if (f->store != NULL)
		f->blobs = blob_store_open(f->account_dir, data_key, &error);
	if (f->store == NULL || f->blobs == NULL ||
	    store_mailbox_lookup(f->store, "INBOX", f->pool, &box, &error) !=
		    1) {
		print_message("# setup: %s\n", error);
		if (f->store != NULL)
			store_close(&f->store);
		blob_store_close(&f->blobs);
		pool_unref(&f->pool);
		nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		i_free(f);
		return -1;
	}
	f->inbox = box.id;
	assert_int_equal(store_mailbox_lookup(f->store, "Archive", f->pool,
					      &box, &error),
			 1);
	f->archive = box.id;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	blob_store_close(&f->blobs);
	store_close(&f->store);
	pool_unref(&f->pool);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	i_free(f);
	return 0;
}

static char *message(unsigned int n)
{
	return i_strdup_printf("From: Sender <s%u@example.net>\r\n"
			       "To: x@example.org\r\n"
			       "Subject: gc test %u\r\n"
			       "Message-ID: <gc%u@example.net>\r\n"
			       "\r\n"
			       "Body %u, long enough to compress a little: "
			       "lorem ipsum dolor sit amet.\r\n",
			       n, n, n, n);
}

/* blob_put of message n; the blob is unreferenced until append(). */
static void put(struct fixture *f, unsigned int n, uint8_t id_r[BLOB_ID_LEN])
{
	char *msg = message(n);
	const char *error;

	if (blob_put(f->blobs, msg, strlen(msg), id_r, NULL, &error) < 0)
		fail_msg("blob_put: %s", error);
	i_free(msg);
}

/* put() and a committed reference in mailbox; returns the UID. */
static uint32_t append(struct fixture *f, uint64_t mailbox, unsigned int n,
		       uint8_t id_r[BLOB_ID_LEN])
{
	char *msg = message(n);
	struct message_index idx;
	struct store_append a;
	const char *error;
	uint32_t uid;
	uint64_t modseq;

	put(f, n, id_r);
	message_index_build(f->pool, msg, strlen(msg), &idx);
	memset(&a, 0, sizeof(a));
	a.mailbox_id = mailbox;
	memcpy(a.blob_id, id_r, BLOB_ID_LEN);
	a.size = strlen(msg);
	a.index = &idx;
	if (store_append(f->store, &a, &uid, &modseq, &error) < 0)
		fail_msg("store_append: %s", error);
	i_free(msg);
	return uid;
}

static void blob_path(struct fixture *f, const uint8_t id[BLOB_ID_LEN],
		      char *path, size_t size)
{
	char hex[BLOB_ID_HEX_LEN + 1];

	blob_id_to_hex(id, hex);
	snprintf(path, size, "%s/blobs/%.2s/%s", f->account_dir, hex, hex);
}

/* Sets the blob's mtime secs into the past. */
static void age(struct fixture *f, const uint8_t id[BLOB_ID_LEN], time_t secs)
{
	struct timespec ts[2];
	char path[256];

	blob_path(f, id, path, sizeof(path));
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - secs;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static uint64_t file_size(struct fixture *f, const uint8_t id[BLOB_ID_LEN])
{
	struct stat st;
	char path[256];

	blob_path(f, id, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void gc(struct fixture *f, unsigned int min_age, bool dry_run,
	       struct blob_gc_result *res)
{
	const char *error;

	if (blob_gc_run(f->store, f->blobs, min_age, dry_run, NULL, res,
			&error) < 0)
		fail_msg("blob_gc_run: %s", error);
}

static void assert_verify_ok(struct fixture *f)
{
	const char *error;

	if (store_verify(f->store, f->blobs, &error) < 0)
		fail_msg("store_verify: %s", error);
}

static void expunge(struct fixture *f, uint64_t mailbox, uint32_t uid)
{
	uint32_t *expunged;
	unsigned int count;
	const char *error;

	if (store_expunge(f->store, mailbox, &uid, 1, f->pool, &expunged,
			  &count, &error) < 0)
		fail_msg("store_expunge: %s", error);
	assert_int_equal(count, 1);
}

static void test_referenced_survive_old_orphans_go(void **state)
{
	struct fixture *f = *state;
	uint8_t a[BLOB_ID_LEN], b[BLOB_ID_LEN], o1[BLOB_ID_LEN],
		o2[BLOB_ID_LEN];
	struct blob_gc_result res;
	uint64_t bytes;

	(void)append(f, f->inbox, 1, a);
	(void)append(f, f->archive, 2, b);
	put(f, 3, o1);
	put(f, 4, o2);
	age(f, a, 2 * HOUR);
	age(f, b, 2 * HOUR);
	age(f, o1, 2 * HOUR);
	age(f, o2, 2 * HOUR);
	bytes = file_size(f, o1) + file_size(f, o2);

	gc(f, BLOB_GC_MIN_AGE_DEFAULT, false, &res);
	assert_int_equal(res.files, 4);
	assert_int_equal(res.referenced, 2);
	assert_int_equal(res.unreferenced, 2);
	assert_int_equal(res.deleted, 2);
	assert_int_equal(res.deleted_bytes, bytes);
	assert_int_equal(res.young, 0);
	assert_false(res.stopped);
	assert_true(blob_exists(f->blobs, a));
	assert_true(blob_exists(f->blobs, b));
	assert_false(blob_exists(f->blobs, o1));
	assert_false(blob_exists(f->blobs, o2));
	assert_verify_ok(f);

	/* A second pass finds nothing more. */
	gc(f, BLOB_GC_MIN_AGE_DEFAULT, false, &res);
	assert_int_equal(res.files, 2);
	assert_int_equal(res.deleted, 0);
	assert_verify_ok(f);
}

static void test_young_orphans_survive(void **state)
{
	struct fixture *f = *state;
	uint8_t young[BLOB_ID_LEN], old[BLOB_ID_LEN];
	struct blob_gc_result res;

	put(f, 10, young);
	put(f, 11, old);
	age(f, young, HOUR - 60);
	age(f, old, HOUR + 60);
	gc(f, BLOB_GC_MIN_AGE_DEFAULT, false, &res);
	assert_int_equal(res.unreferenced, 2);
	assert_int_equal(res.deleted, 1);
	assert_int_equal(res.young, 1);
	assert_int_equal(res.young_bytes, file_size(f, young));
	assert_true(blob_exists(f->blobs, young));
	assert_false(blob_exists(f->blobs, old));

	/* Without a guard it goes too (nothing writes this account). */
	gc(f, 0, false, &res);
	assert_int_equal(res.deleted, 1);
	assert_false(blob_exists(f->blobs, young));
	assert_verify_ok(f);
}

static void test_dry_run(void **state)
{
	struct fixture *f = *state;
	uint8_t ref[BLOB_ID_LEN], o[BLOB_ID_LEN];
	struct blob_gc_result res, real;
	uint64_t bytes;

	(void)append(f, f->inbox, 20, ref);
	put(f, 21, o);
	age(f, ref, 2 * HOUR);
	age(f, o, 2 * HOUR);
	bytes = file_size(f, o);

	gc(f, BLOB_GC_MIN_AGE_DEFAULT, true, &res);
	assert_int_equal(res.deleted, 1);
	assert_int_equal(res.deleted_bytes, bytes);
	assert_true(blob_exists(f->blobs, o));
	assert_true(blob_exists(f->blobs, ref));
	/* The real pass does what the dry run said. */
	gc(f, BLOB_GC_MIN_AGE_DEFAULT, false, &real);
	assert_memory_equal(&real, &res, sizeof(res));
	assert_false(blob_exists(f->blobs, o));
	assert_true(blob_exists(f->blobs, ref));
	assert_verify_ok(f);
}

static void test_shared_by_copy(void **state)
{
	struct fixture *f = *state;
	uint8_t id[BLOB_ID_LEN], id2[BLOB_ID_LEN];
	struct blob_gc_result res;
	uint32_t uid, copy_uid, dup_uid;
	const char *error;

	uid = append(f, f->inbox, 30, id);
	if (store_copy(f->store, f->inbox, &uid, 1, f->archive, &copy_uid,
		       &error) < 0)
		fail_msg("store_copy: %s", error);
	/* The same content appended again: another email row, same blob. */
	dup_uid = append(f, f->inbox, 30, id2);
	assert_memory_equal(id, id2, BLOB_ID_LEN);
	age(f, id, 2 * HOUR);

	expunge(f, f->inbox, uid);
	gc(f, 0, false, &res);
	assert_int_equal(res.deleted, 0);
	assert_true(blob_exists(f->blobs, id));
	assert_verify_ok(f);

	expunge(f, f->archive, copy_uid);
	gc(f, 0, false, &res);
	assert_int_equal(res.deleted, 0);
	assert_true(blob_exists(f->blobs, id));
	assert_verify_ok(f);

	/* The last reference goes: so does the blob. */
	expunge(f, f->inbox, dup_uid);
	gc(f, 0, false, &res);
	assert_int_equal(res.referenced, 0);
	assert_int_equal(res.deleted, 1);
	assert_false(blob_exists(f->blobs, id));
	assert_verify_ok(f);
}

static void test_dedup_put_refreshes(void **state)
{
	struct fixture *f = *state;
	uint8_t id[BLOB_ID_LEN], again[BLOB_ID_LEN];
	struct blob_gc_result res;
	uint64_t size;
	time_t mtime;
	const char *error;

	/* An old orphan (say, an expunged message) that a writer stores
	   again: blob_put dedups, and its commit is still to come. */
	put(f, 40, id);
	age(f, id, 2 * HOUR);
	put(f, 40, again);
	assert_memory_equal(id, again, BLOB_ID_LEN);
	assert_int_equal(blob_stat(f->blobs, id, &size, &mtime, &error), 1);
	assert_true(mtime >= time(NULL) - 5);

	/* A pass between that put and the commit keeps it. */
	gc(f, BLOB_GC_MIN_AGE_DEFAULT, false, &res);
	assert_int_equal(res.deleted, 0);
	assert_int_equal(res.young, 1);
	assert_true(blob_exists(f->blobs, id));
	(void)append(f, f->inbox, 40, again);
	assert_verify_ok(f);
}

static void test_collect_checks_age(void **state)
{
	struct fixture *f = *state;
	uint8_t id[BLOB_ID_LEN];
	uint64_t size, expected;
	time_t mtime;
	const char *error;

	put(f, 50, id);
	expected = file_size(f, id);
	/* Touched after the cutoff (a writer's put): kept, in place. */
	assert_int_equal(
		blob_collect(f->blobs, id, time(NULL) - HOUR, &size, &error),
		0);
	assert_int_equal(size, 0);
	assert_true(blob_exists(f->blobs, id));
	age(f, id, 2 * HOUR);
	assert_int_equal(
		blob_collect(f->blobs, id, time(NULL) - HOUR, &size, &error),
		1);
	assert_int_equal(size, expected);
	assert_false(blob_exists(f->blobs, id));
	/* Already gone: kept (nothing to do), not an error. */
	assert_int_equal(
		blob_collect(f->blobs, id, time(NULL) - HOUR, &size, &error),
		0);
	assert_int_equal(blob_stat(f->blobs, id, &size, &mtime, &error), 0);
}

static void test_stop(void **state)
{
	struct fixture *f = *state;
	uint8_t o[BLOB_ID_LEN];
	struct blob_gc_result res;
	atomic_bool stop;
	const char *error;

	put(f, 60, o);
	age(f, o, 2 * HOUR);
	atomic_init(&stop, true);
	assert_int_equal(blob_gc_run(f->store, f->blobs, HOUR, false, &stop,
				     &res, &error),
			 0);
	assert_true(res.stopped);
	assert_int_equal(res.deleted, 0);
	assert_true(blob_exists(f->blobs, o));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_referenced_survive_old_orphans_go, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_young_orphans_survive,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_by_copy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dedup_put_refreshes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_collect_checks_age, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
