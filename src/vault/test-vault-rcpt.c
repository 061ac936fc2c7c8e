/* test-vault-rcpt.c - the vault's recipient and sender answers
   (vault-rcpt.c) against a real directory.db in a temporary data
   directory: accounts (normalised, +tag), aliases with local and remote
   targets, catch-all, unknown and foreign domains; a disabled account is
   DISABLED alone and dropped from an alias; quota: a message larger than
   the quota is refused permanently at once, the usage is loaded by a
   worker the first time (the callback then comes later from the loop),
   spool bytes count, a merge's usage replaces the cache, the front's
   IPC_VAULT_USAGE_STALE drops it (also while a load is in flight, and a
   merge's figure does not bring it back), and a real store
   filled by a merge is measured; a locked zero-access account counts its
   spool only, an unlocked one is measured with the keyring's keys; an
   aborted waiting request calls nobody;
   sender ownership: own address, +tag, aliases (exact and +tag) that
   reach the account, never a catch-all, never another account. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "vault-rcpt.h"
#include "vault-merge.h"
#include "vault-keyring.h"
#include "directory.h"
#include "ioloop.h"
#include "pool.h"
#include "spool.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

struct fixture {
	char tmpdir[64];
	struct directory *dir;
	struct ioloop *ioloop;
	uint8_t master_key[MASTER_KEY_LEN];
	uint64_t alice, bob, carol;
	uint8_t alice_pk[32], bob_pk[32];
	struct vault_rcpt *vr;
};

static struct fixture fix;

struct answer {
	bool called;
	enum ipc_rcpt_result result;
	bool permanent;
	char address[128];
	uint64_t ids[4];
	uint8_t pk0[32];
	unsigned int local_count, remote_count;
	char remote[4][64];
};

static void answer_cb(const struct vault_rcpt_reply *reply, void *context)
{
	struct answer *a = context;

	assert_false(a->called);
	a->called = true;
	a->result = reply->result;
	a->permanent = reply->quota_permanent;
	snprintf(a->address, sizeof(a->address), "%s", reply->address);
	a->local_count = reply->local_count;
	a->remote_count = reply->remote_count;
	for (unsigned int i = 0; i < reply->local_count && i < 4; i++)
		a->ids[i] = reply->locals[i].account_id;
	if (reply->local_count > 0)
		memcpy(a->pk0, reply->locals[0].public_key, 32);
	for (unsigned int i = 0; i < reply->remote_count && i < 4; i++)
		snprintf(a->remote[i], sizeof(a->remote[i]), "%s",
			 reply->remote[i]);
}

/* Resolves and waits (bounded) for the answer. waited_r: it came later. */
static void resolve(const char *address, uint64_t size, struct answer *a,
		    bool *waited_r)
{
	struct vault_rcpt_request *req;

	memset(a, 0, sizeof(*a));
	req = vault_rcpt_resolve(fix.vr, address, size, answer_cb, a);
	if (waited_r != NULL)
		*waited_r = req != NULL;
	assert_true(req == NULL ? a->called : !a->called);
	for (unsigned int i = 0; i < 1000 && !a->called; i++)
		ioloop_run_once(fix.ioloop, 10);
	assert_true(a->called);
}

static uint64_t add_account(const char *address, uint64_t quota,
			    uint8_t pk_r[32])
{
	struct directory_account da;
	const char *error;
	uint64_t id;

	if (directory_account_add(fix.dir, fix.tmpdir, fix.master_key, address,
				  "a password 123", quota, &id, &error) < 0)
		fail_msg("account add: %s", error);
	assert_int_equal(directory_account_lookup_id(fix.dir, id, &da, &error),
			 1);
	if (pk_r != NULL)
		memcpy(pk_r, da.public_key, 32);
	pool_clear(directory_pool(fix.dir));
	return id;
}

static void add_alias(const char *alias, const char *t1, const char *t2,
		      const char *t3)
{
	const char *targets[] = { t1, t2, t3, NULL };
	const char *error;

	if (directory_alias_add(fix.dir, alias, targets, &error) < 0)
		fail_msg("alias add: %s", error);
}

static int group_setup(void **state ATTR_UNUSED)
{
	char db_path[128];
	const char *error;

	if (sodium_init() < 0)
		return -1;
	snprintf(fix.tmpdir, sizeof(fix.tmpdir), "/tmp/marmot-rcpt-XXXXXX");
	if (mkdtemp(fix.tmpdir) == NULL)
		return -1;
	snprintf(db_path, sizeof(db_path), "%s/directory.db", fix.tmpdir);
	fix.dir = directory_open(db_path, false, &error);
	if (fix.dir == NULL)
		return -1;
	randombytes_buf(fix.master_key, sizeof(fix.master_key));
	if (directory_domain_add(fix.dir, "example.org", &error) < 0 ||
	    directory_domain_add(fix.dir, "example.net", &error) < 0)
		return -1;
	fix.alice = add_account("alice@example.org", 0, fix.alice_pk);
	fix.bob = add_account("bob@example.org", 10000, fix.bob_pk);
	fix.carol = add_account("carol@example.org", 0, NULL);
	if (directory_account_set_disabled(fix.dir, "carol@example.org", true,
					   &error) < 0)
		return -1;
	add_alias("list@example.org", "alice@example.org", "bob@example.org",
		  "far@remote.example");
	add_alias("team@example.org", "alice@example.org", "carol@example.org",
		  NULL);
	add_alias("gone@example.org", "carol@example.org", NULL, NULL);
	add_alias("@example.net", "alice@example.org", NULL, NULL);
	add_alias("fwd@example.org", "someone@elsewhere.example", NULL, NULL);
	pool_clear(directory_pool(fix.dir));
	fix.ioloop = ioloop_create();
	return 0;
}

static int group_teardown(void **state ATTR_UNUSED)
{
	char cmd[160];

	directory_close(&fix.dir);
	ioloop_destroy(&fix.ioloop);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fix.tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int test_setup(void **state ATTR_UNUSED)
{
	fix.vr = vault_rcpt_create(fix.ioloop, fix.tmpdir, fix.dir,
				   fix.master_key, NULL);
	return 0;
}

static int test_teardown(void **state ATTR_UNUSED)
{
	vault_rcpt_destroy(&fix.vr);
	assert_null(fix.vr);
	return 0;
}

static void test_resolve(void **state ATTR_UNUSED)
{
	struct answer a;
	bool waited;

	resolve("Alice@Example.ORG", 1000, &a, &waited);
	assert_false(waited); /* no quota: answered at once */
	assert_int_equal(a.result, IPC_RCPT_OK);
	assert_string_equal(a.address, "alice@example.org");
	assert_int_equal(a.local_count, 1);
	assert_int_equal(a.ids[0], fix.alice);
	assert_memory_equal(a.pk0, fix.alice_pk, 32);
	assert_int_equal(a.remote_count, 0);

	/* RFC 5233 sub-address. */
	resolve("alice+lists@example.org", 0, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OK);
	assert_string_equal(a.address, "alice+lists@example.org");
	assert_int_equal(a.ids[0], fix.alice);

	resolve("nobody@example.org", 0, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_UNKNOWN);
	assert_int_equal(a.local_count, 0);
	resolve("someone@elsewhere.example", 0, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_NOT_LOCAL);
	resolve("not an address", 0, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_NOT_LOCAL);
	assert_string_equal(a.address, "not an address");

	/* Catch-all. */
	resolve("anything@example.net", 0, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OK);
	assert_int_equal(a.ids[0], fix.alice);

	/* An alias with two accounts and a forward. */
	resolve("list@example.org", 100, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OK);
	assert_int_equal(a.local_count, 2);
	assert_true((a.ids[0] == fix.alice && a.ids[1] == fix.bob) ||
		    (a.ids[0] == fix.bob && a.ids[1] == fix.alice));
	assert_int_equal(a.remote_count, 1);
	assert_string_equal(a.remote[0], "far@remote.example");

	/* Forward only: no local target. */
	resolve("fwd@example.org", 100, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OK);
	assert_int_equal(a.local_count, 0);
	assert_int_equal(a.remote_count, 1);
	assert_string_equal(a.remote[0], "someone@elsewhere.example");
}

static void test_disabled(void **state ATTR_UNUSED)
{
	struct answer a;

	resolve("carol@example.org", 0, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_DISABLED);
	assert_int_equal(a.local_count, 0);
	/* An alias still reaches its other members. */
	resolve("team@example.org", 0, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OK);
	assert_int_equal(a.local_count, 1);
	assert_int_equal(a.ids[0], fix.alice);
	/* An alias of only disabled accounts. */
	resolve("gone@example.org", 0, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_DISABLED);
}

static void spool_of(uint64_t account, size_t bytes)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/accounts/%" PRIu64 "/spool",
		 fix.tmpdir, account);
	if (bytes == 0) {
		(void)unlink(path);
		return;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)bytes), 0);
	close(fd);
}

static void bob_spool(size_t bytes)
{
	spool_of(fix.bob, bytes);
}

static void test_quota(void **state ATTR_UNUSED)
{
	struct answer a;
	uint64_t used;
	bool waited;

	/* Larger than the quota itself: permanent, no usage needed. */
	resolve("bob@example.org", 10001, &a, &waited);
	assert_false(waited);
	assert_int_equal(a.result, IPC_RCPT_OVER_QUOTA);
	assert_true(a.permanent);
	assert_false(vault_rcpt_usage_get(fix.vr, fix.bob, &used));

	/* First use: the usage is loaded (no store yet: 0), later. */
	resolve("bob@example.org", 5000, &a, &waited);
	assert_true(waited);
	assert_int_equal(a.result, IPC_RCPT_OK);
	assert_int_equal(a.ids[0], fix.bob);
	assert_true(vault_rcpt_usage_get(fix.vr, fix.bob, &used));
	assert_int_equal(used, 0);
	/* Now cached: at once. */
	resolve("bob@example.org", 5000, &a, &waited);
	assert_false(waited);
	assert_int_equal(a.result, IPC_RCPT_OK);

	/* Mail in the spool counts. */
	bob_spool(9000);
	resolve("bob@example.org", 2000, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OVER_QUOTA);
	assert_false(a.permanent);
	resolve("bob@example.org", 500, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OK);
	/* Unknown size counts as one byte. */
	bob_spool(10000);
	resolve("bob@example.org", 0, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OVER_QUOTA);
	assert_false(a.permanent);

	/* A merge reports the store's usage. */
	bob_spool(0);
	vault_rcpt_usage_set(fix.vr, fix.bob, 9800);
	resolve("bob@example.org", 100, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OK);
	resolve("bob@example.org", 300, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OVER_QUOTA);

	/* An alias with an over-quota member is refused (temporarily) as a
	   whole, forwards included. */
	resolve("list@example.org", 300, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OVER_QUOTA);
	assert_false(a.permanent);
	assert_int_equal(a.local_count, 0);
	assert_int_equal(a.remote_count, 0);
	vault_rcpt_usage_set(fix.vr, fix.bob, 0);
}

/* IPC_VAULT_USAGE_STALE: the front changed the store (IMAP EXPUNGE,
   APPEND, ...); the cached figure goes and the next RCPT loads it again,
   and a merge's figure never overrides a change the load has not seen. */
static void test_usage_stale(void **state ATTR_UNUSED)
{
	struct vault_rcpt_request *req;
	struct answer a;
	uint64_t used;
	bool waited;

	/* Loaded once (no store yet: 0), then a merge fills it. */
	resolve("bob@example.org", 100, &a, &waited);
	assert_true(waited);
	vault_rcpt_usage_set(fix.vr, fix.bob, 9950);
	resolve("bob@example.org", 100, &a, &waited);
	assert_false(waited);
	assert_int_equal(a.result, IPC_RCPT_OVER_QUOTA);

	/* The front expunged: loaded again from the store (empty). */
	vault_rcpt_usage_stale(fix.vr, fix.bob);
	assert_false(vault_rcpt_usage_get(fix.vr, fix.bob, &used));
	resolve("bob@example.org", 100, &a, &waited);
	assert_true(waited);
	assert_int_equal(a.result, IPC_RCPT_OK);
	assert_true(vault_rcpt_usage_get(fix.vr, fix.bob, &used));
	assert_int_equal(used, 0);

	/* A merge's figure may predate the change: only a load counts. */
	vault_rcpt_usage_stale(fix.vr, fix.bob);
	vault_rcpt_usage_set(fix.vr, fix.bob, 9950);
	assert_false(vault_rcpt_usage_get(fix.vr, fix.bob, &used));
	resolve("bob@example.org", 100, &a, &waited);
	assert_true(waited);
	assert_int_equal(a.result, IPC_RCPT_OK);

	/* A change while a load is in flight: that load's result (and a
	   merge's figure meanwhile) is dropped and a new load answers. */
	vault_rcpt_usage_stale(fix.vr, fix.bob);
	memset(&a, 0, sizeof(a));
	req = vault_rcpt_resolve(fix.vr, "bob@example.org", 100, answer_cb, &a);
	assert_non_null(req);
	vault_rcpt_usage_stale(fix.vr, fix.bob);
	vault_rcpt_usage_set(fix.vr, fix.bob, 9950);
	for (unsigned int i = 0; i < 1000 && !a.called; i++)
		ioloop_run_once(fix.ioloop, 10);
	assert_true(a.called);
	assert_int_equal(a.result, IPC_RCPT_OK);
	assert_true(vault_rcpt_usage_get(fix.vr, fix.bob, &used));
	assert_int_equal(used, 0);
	assert_int_equal(vault_rcpt_in_flight(fix.vr), 0);

	/* Nothing cached (an account never asked for, or no account at
	   all): nothing happens, and no entry is made. */
	vault_rcpt_usage_stale(fix.vr, fix.alice);
	vault_rcpt_usage_stale(fix.vr, 999999);
	assert_false(vault_rcpt_usage_get(fix.vr, 999999, &used));
	assert_false(vault_rcpt_usage_get(fix.vr, fix.alice, &used));
}

static void test_usage_from_store(void **state ATTR_UNUSED)
{
	struct directory_account da;
	struct vault_merge_account account;
	struct vault_merge_result res;
	struct spool_record rec;
	uint8_t id[SPOOL_RECORD_ID_LEN];
	const char *msg =
		"Subject: x\r\n\r\n0123456789012345678901234567890\r\n";
	const char *error;
	char account_dir[128];
	pool_t pool = pool_create("test", 1024);
	struct answer a;
	uint64_t used;
	bool waited;

	snprintf(account_dir, sizeof(account_dir), "%s/accounts/%" PRIu64,
		 fix.tmpdir, fix.bob);
	memset(&rec, 0, sizeof(rec));
	rec.sender = "s@example.net";
	rec.recipient = "bob@example.org";
	rec.message = (const uint8_t *)msg;
	rec.message_len = strlen(msg);
	assert_int_equal(
		spool_append(account_dir, fix.bob_pk, &rec, id, &error), 0);
	assert_int_equal(
		directory_account_lookup_id(fix.dir, fix.bob, &da, &error), 1);
	memset(&account, 0, sizeof(account));
	account.id = fix.bob;
	account.quota_bytes = da.quota_bytes;
	memcpy(account.public_key, da.public_key, sizeof(account.public_key));
	memcpy(account.wrapped_keys, da.wrapped_keys,
	       sizeof(account.wrapped_keys));
	pool_clear(directory_pool(fix.dir));
	assert_int_equal(vault_merge_account(fix.tmpdir, fix.master_key,
					     &account, NULL, pool, &res,
					     &error),
			 0);
	assert_int_equal(res.messages, 1);
	/* The merge measures the usage for the cache. */
	assert_true(res.quota_known);
	assert_int_equal(res.quota_used, strlen(msg));

	/* A fresh cache opens the store on a worker to measure it. */
	resolve("bob@example.org", 100, &a, &waited);
	assert_true(waited);
	assert_int_equal(a.result, IPC_RCPT_OK);
	assert_true(vault_rcpt_usage_get(fix.vr, fix.bob, &used));
	assert_int_equal(used, strlen(msg));
	resolve("bob@example.org", 10000 - strlen(msg) + 1, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OVER_QUOTA);
	assert_false(a.permanent);
	pool_unref(&pool);
}

/* A zero-access account: while locked only its spool counts (answered at
   once); once its keys are in the keyring the store is measured. */
static void test_zero_access(void **state ATTR_UNUSED)
{
	const char *password = "zero access password";
	struct directory_account da;
	struct account_keys keys;
	struct vault_keyring *ring = vault_keyring_create(0);
	struct vault_rcpt *saved = fix.vr;
	const char *error;
	struct answer a;
	uint64_t id, used;
	bool waited;

	if (directory_account_add_zero_access(fix.dir, fix.tmpdir,
					      "za@example.org", password, 10000,
					      &id, &error) < 0)
		fail_msg("zero-access add: %s", error);
	fix.vr = vault_rcpt_create(fix.ioloop, fix.tmpdir, fix.dir,
				   fix.master_key, ring);
	resolve("za@example.org", 100, &a, &waited);
	assert_false(waited);
	assert_int_equal(a.result, IPC_RCPT_OK);
	assert_false(vault_rcpt_usage_get(fix.vr, id, &used));
	spool_of(id, 9950);
	resolve("za@example.org", 100, &a, NULL);
	assert_int_equal(a.result, IPC_RCPT_OVER_QUOTA);
	spool_of(id, 0);

	assert_int_equal(directory_account_lookup_id(fix.dir, id, &da, &error),
			 1);
	assert_int_equal(directory_account_keys(&da, NULL, password,
						strlen(password), &keys),
			 0);
	pool_clear(directory_pool(fix.dir));
	vault_keyring_put(ring, id, &keys, ioloop_now_ms(fix.ioloop));
	account_keys_clear(&keys);
	resolve("za@example.org", 100, &a, &waited);
	assert_true(waited);
	assert_int_equal(a.result, IPC_RCPT_OK);
	assert_true(vault_rcpt_usage_get(fix.vr, id, &used));
	assert_int_equal(used, 0);
	vault_rcpt_destroy(&fix.vr);
	fix.vr = saved;
	vault_keyring_destroy(&ring);
}

static void test_abort(void **state ATTR_UNUSED)
{
	struct vault_rcpt_request *req;
	struct answer a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	req = vault_rcpt_resolve(fix.vr, "bob@example.org", 10, answer_cb, &a);
	assert_non_null(req);
	assert_int_equal(vault_rcpt_in_flight(fix.vr), 1);
	vault_rcpt_request_abort(&req);
	assert_null(req);
	/* Another request for the same account waits for the same load. */
	req = vault_rcpt_resolve(fix.vr, "bob+x@example.org", 10, answer_cb,
				 &b);
	assert_non_null(req);
	for (unsigned int i = 0; i < 1000 && !b.called; i++)
		ioloop_run_once(fix.ioloop, 10);
	assert_true(b.called);
	assert_false(a.called);
	assert_int_equal(b.result, IPC_RCPT_OK);
	assert_int_equal(vault_rcpt_in_flight(fix.vr), 0);

	/* Destroy answers what still waits with TEMPFAIL. */
	struct vault_rcpt *vr2 = vault_rcpt_create(
		fix.ioloop, fix.tmpdir, fix.dir, fix.master_key, NULL);
	memset(&a, 0, sizeof(a));
	req = vault_rcpt_resolve(vr2, "bob@example.org", 10, answer_cb, &a);
	assert_non_null(req);
	vault_rcpt_destroy(&vr2);
	assert_true(a.called);
	/* Either the load finished during the destroy or it did not. */
	assert_true(a.result == IPC_RCPT_OK || a.result == IPC_RCPT_TEMPFAIL);
}

static void test_sender(void **state ATTR_UNUSED)
{
	static const struct {
		const char *address;
		bool alice_owns;
	} cases[] = {
		{ "alice@example.org", true },
		{ "ALICE@example.ORG", true },
		{ "alice+news@example.org", true },
		{ "team@example.org", true }, /* alias including alice */
		{ "team+x@example.org", true },
		{ "list@example.org", true },
		{ "bob@example.org", false },
		{ "bob+alice@example.org", false },
		{ "anything@example.net", false }, /* catch-all */
		{ "alice@example.net", false },
		{ "gone@example.org", false },
		{ "nobody@example.org", false },
		{ "alice@elsewhere.example", false },
		{ "", false },
		{ "alice", false },
	};

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		enum vault_sender_result r = vault_rcpt_sender_owned(
			fix.vr, fix.alice, cases[i].address);

		if (r != (cases[i].alice_owns ? VAULT_SENDER_OWNED
					      : VAULT_SENDER_NOT_OWNED))
			fail_msg("%s: got %d", cases[i].address, (int)r);
	}
	assert_int_equal(
		vault_rcpt_sender_owned(fix.vr, fix.bob, "bob+x@example.org"),
		VAULT_SENDER_OWNED);
	assert_int_equal(
		vault_rcpt_sender_owned(fix.vr, fix.bob, "team@example.org"),
		VAULT_SENDER_NOT_OWNED);
	/* No such account. */
	assert_int_equal(
		vault_rcpt_sender_owned(fix.vr, 999999, "alice@example.org"),
		VAULT_SENDER_NOT_OWNED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resolve, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_disabled, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_quota, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_usage_stale, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_usage_from_store,
						test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_zero_access, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_abort, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_sender, test_setup,
						test_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
