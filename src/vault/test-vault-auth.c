/* test-vault-auth.c - vault-auth.c against a real directory.db (in a
   temporary directory), a real ioloop and a real worker pool: correct,
   wrong and app passwords, unknown and invalid users, disabled accounts,
   the credential cache (counted in argon2id verifications) and its
   invalidation by a password change, overload, and aborted requests.
   argon2id is slow under ASan, so every test keeps its hash count small. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "vault-auth.h"
#include "directory.h"
#include "ioloop.h"
#include "password.h"
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ALICE_PW "correct horse battery"
#define BOB_PW "bob's password"

struct fixture {
	char tmpdir[64];
	char db_path[128];
	struct directory *dir;
	uint64_t alice_id, bob_id, carol_id, dave_id;
	char alice_app_pw[128];
};

struct result {
	bool called;
	enum auth_result result;
	uint64_t account_id;
	char address[128];
};

static struct fixture fix;

static void auth_callback(const struct vault_auth_reply *reply, void *context)
{
	struct result *res = context;

	assert_false(res->called);
	res->called = true;
	res->result = reply->result;
	res->account_id = reply->account_id;
	snprintf(res->address, sizeof(res->address), "%s", reply->address);
}

static struct vault_auth *auth_create(struct ioloop *ioloop,
				      unsigned int threads,
				      unsigned int max_waiting,
				      unsigned int ttl)
{
	const struct vault_auth_settings set = {
		.max_hashes = threads,
		.max_waiting = max_waiting,
		.cache_ttl_secs = ttl,
	};

	return vault_auth_create(ioloop, fix.dir, &set);
}

static void wait_for(struct ioloop *ioloop, struct result *res)
{
	for (unsigned int i = 0; i < 600 && !res->called; i++)
		ioloop_run_once(ioloop, 100);
	assert_true(res->called);
}

/* Runs one login to completion. */
static struct result login(struct ioloop *ioloop, struct vault_auth *auth,
			   const char *user, const char *password)
{
	struct result res;

	memset(&res, 0, sizeof(res));
	(void)vault_auth_begin(auth, user, password, strlen(password),
			       auth_callback, &res);
	wait_for(ioloop, &res);
	return res;
}

static int group_setup(void **state ATTR_UNUSED)
{
	uint8_t master_key[MASTER_KEY_LEN];
	const char *error, *app_pw;

	snprintf(fix.tmpdir, sizeof(fix.tmpdir), "/tmp/marmot-vault-XXXXXX");
	if (mkdtemp(fix.tmpdir) == NULL)
		return -1;
	snprintf(fix.db_path, sizeof(fix.db_path), "%s/directory.db",
		 fix.tmpdir);
	fix.dir = directory_open(fix.db_path, false, &error);
	if (fix.dir == NULL) {
		fprintf(stderr, "directory_open: %s\n", error);
		return -1;
	}
	memset(master_key, 0x5a, sizeof(master_key));
	if (directory_domain_add(fix.dir, "example.org", &error) < 0 ||
	    directory_account_add(fix.dir, NULL, master_key,
				  "alice@example.org", ALICE_PW, 0,
				  &fix.alice_id, &error) < 0 ||
	    directory_account_add(fix.dir, NULL, master_key,
				  "bob@example.org", BOB_PW, 0, &fix.bob_id,
				  &error) < 0 ||
	    directory_account_set_disabled(fix.dir, "bob@example.org", true,
					   &error) < 0 ||
	    directory_account_add(fix.dir, NULL, master_key,
				  "carol@example.org", "carol-old", 0,
				  &fix.carol_id, &error) < 0 ||
	    directory_account_add(fix.dir, NULL, master_key,
				  "dave@example.org", "dave-pw", 0,
				  &fix.dave_id, &error) < 0 ||
	    directory_app_password_add(fix.dir, "alice@example.org", "phone",
				       &app_pw, &error) < 0) {
		fprintf(stderr, "directory setup: %s\n", error);
		return -1;
	}
	snprintf(fix.alice_app_pw, sizeof(fix.alice_app_pw), "%s", app_pw);
	pool_clear(directory_pool(fix.dir));
	return 0;
}

static int group_teardown(void **state ATTR_UNUSED)
{
	char cmd[160];

	directory_close(&fix.dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fix.tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_correct_password(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 0);
	/* Not normalised on input: the reply carries the canonical form. */
	struct result res = login(ioloop, auth, "Alice@EXAMPLE.org", ALICE_PW);

	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(res.account_id, fix.alice_id);
	assert_string_equal(res.address, "alice@example.org");
	assert_int_equal(vault_auth_hash_count(auth), 1);
	assert_int_equal(vault_auth_in_flight(auth), 0);
	vault_auth_destroy(&auth);
	assert_null(auth);
	ioloop_destroy(&ioloop);
}

static void test_wrong_password(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res = login(ioloop, auth, "alice@example.org", "wrong");

	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_int_equal(res.account_id, 0);
	assert_string_equal(res.address, "");
	/* The account hash, then the one app password. */
	assert_int_equal(vault_auth_hash_count(auth), 2);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_unknown_user(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res = login(ioloop, auth, "nobody@example.org",
				  ALICE_PW);

	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_int_equal(res.account_id, 0);
	assert_string_equal(res.address, "");
	/* Same cost as a wrong password: one argon2id (the dummy). */
	assert_int_equal(vault_auth_hash_count(auth), 1);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_invalid_user(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res = login(ioloop, auth, "not an address", ALICE_PW);

	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	/* Treated as an unknown user, including the cost. */
	assert_int_equal(vault_auth_hash_count(auth), 1);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_app_password(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res = login(ioloop, auth, "alice@example.org",
				  fix.alice_app_pw);

	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(res.account_id, fix.alice_id);
	assert_string_equal(res.address, "alice@example.org");
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_disabled_correct_password(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res = login(ioloop, auth, "bob@example.org", BOB_PW);

	assert_int_equal(res.result, AUTH_RESULT_DISABLED);
	assert_int_equal(res.account_id, fix.bob_id);
	assert_string_equal(res.address, "bob@example.org");
	/* A disabled login is not cached: the next one hashes again. */
	res = login(ioloop, auth, "bob@example.org", BOB_PW);
	assert_int_equal(res.result, AUTH_RESULT_DISABLED);
	assert_int_equal(vault_auth_hash_count(auth), 2);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_disabled_wrong_password(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res = login(ioloop, auth, "bob@example.org", "guess");

	/* DISABLED only after a correct password. */
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_int_equal(res.account_id, 0);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_cache_hit(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res;

	res = login(ioloop, auth, "alice@example.org", ALICE_PW);
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(vault_auth_hash_count(auth), 1);

	/* Answered from the cache, before vault_auth_begin() returns. */
	memset(&res, 0, sizeof(res));
	assert_null(vault_auth_begin(auth, "ALICE@example.org", ALICE_PW,
				     strlen(ALICE_PW), auth_callback, &res));
	assert_true(res.called);
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(res.account_id, fix.alice_id);
	assert_string_equal(res.address, "alice@example.org");
	assert_int_equal(vault_auth_hash_count(auth), 1);

	/* A wrong password is not helped by the cached right one. */
	res = login(ioloop, auth, "alice@example.org", ALICE_PW "x");
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_cache_disabled_by_ttl_zero(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 0);
	struct result res;

	res = login(ioloop, auth, "dave@example.org", "dave-pw");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	res = login(ioloop, auth, "dave@example.org", "dave-pw");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(vault_auth_hash_count(auth), 2);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_passwd_invalidates_cache(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	const char *error;
	struct result res;

	res = login(ioloop, auth, "carol@example.org", "carol-old");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(res.account_id, fix.carol_id);

	assert_int_equal(directory_account_passwd(fix.dir,
						  "carol@example.org",
						  "carol-new", &error), 0);
	pool_clear(directory_pool(fix.dir));

	res = login(ioloop, auth, "carol@example.org", "carol-old");
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	res = login(ioloop, auth, "carol@example.org", "carol-new");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(res.account_id, fix.carol_id);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_disable_after_cache(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	const char *error;
	struct result res;

	res = login(ioloop, auth, "dave@example.org", "dave-pw");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(directory_account_set_disabled(
				 fix.dir, "dave@example.org", true, &error),
			 0);
	pool_clear(directory_pool(fix.dir));
	/* The cached entry must not let a disabled account in. */
	res = login(ioloop, auth, "dave@example.org", "dave-pw");
	assert_int_equal(res.result, AUTH_RESULT_DISABLED);
	assert_int_equal(vault_auth_hash_count(auth), 2);
	assert_int_equal(directory_account_set_disabled(
				 fix.dir, "dave@example.org", false, &error),
			 0);
	pool_clear(directory_pool(fix.dir));
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_bad_password_bytes(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	char *longpw = i_malloc(PASSWORD_MAX_LEN + 2);
	struct result res;

	/* Refused at once, without hashing: embedded NUL, empty, too long. */
	memset(&res, 0, sizeof(res));
	assert_null(vault_auth_begin(auth, "alice@example.org", "ab\0cd", 5,
				     auth_callback, &res));
	assert_true(res.called);
	assert_int_equal(res.result, AUTH_RESULT_FAILED);

	memset(&res, 0, sizeof(res));
	assert_null(vault_auth_begin(auth, "alice@example.org", "", 0,
				     auth_callback, &res));
	assert_int_equal(res.result, AUTH_RESULT_FAILED);

	memset(longpw, 'a', PASSWORD_MAX_LEN + 1);
	memset(&res, 0, sizeof(res));
	assert_null(vault_auth_begin(auth, "alice@example.org", longpw,
				     PASSWORD_MAX_LEN + 1, auth_callback,
				     &res));
	assert_true(res.called);
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_int_equal(vault_auth_hash_count(auth), 0);
	i_free(longpw);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_overload_tempfail(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	/* One thread and one waiting slot: the third request is refused. */
	struct vault_auth *auth = auth_create(ioloop, 1, 1, 60);
	struct result res[3];

	memset(res, 0, sizeof(res));
	for (unsigned int i = 0; i < 2; i++)
		assert_non_null(vault_auth_begin(auth, "x@example.org", "pw",
						 2, auth_callback, &res[i]));
	assert_int_equal(vault_auth_in_flight(auth), 2);
	assert_null(vault_auth_begin(auth, "x@example.org", "pw", 2,
				     auth_callback, &res[2]));
	assert_true(res[2].called);
	assert_int_equal(res[2].result, AUTH_RESULT_TEMPFAIL);
	assert_int_equal(res[2].account_id, 0);
	wait_for(ioloop, &res[0]);
	wait_for(ioloop, &res[1]);
	assert_int_equal(res[0].result, AUTH_RESULT_FAILED);
	assert_int_equal(res[1].result, AUTH_RESULT_FAILED);
	assert_int_equal(vault_auth_in_flight(auth), 0);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_abort(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 1, 0, 60);
	struct vault_auth_request *req;
	struct result res;

	memset(&res, 0, sizeof(res));
	req = vault_auth_begin(auth, "alice@example.org", ALICE_PW,
			       strlen(ALICE_PW), auth_callback, &res);
	assert_non_null(req);
	vault_auth_request_abort(&req);
	assert_null(req);
	/* Destroy drains the job; the aborted callback never runs. */
	vault_auth_destroy(&auth);
	assert_false(res.called);
	ioloop_destroy(&ioloop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_correct_password),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_unknown_user),
		cmocka_unit_test(test_invalid_user),
		cmocka_unit_test(test_app_password),
		cmocka_unit_test(test_disabled_correct_password),
		cmocka_unit_test(test_disabled_wrong_password),
		cmocka_unit_test(test_cache_hit),
		cmocka_unit_test(test_cache_disabled_by_ttl_zero),
		cmocka_unit_test(test_passwd_invalidates_cache),
		cmocka_unit_test(test_disable_after_cache),
		cmocka_unit_test(test_bad_password_bytes),
		cmocka_unit_test(test_overload_tempfail),
		cmocka_unit_test(test_abort),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
