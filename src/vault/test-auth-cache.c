/* test-auth-cache.c - unit tests of the vault's credential cache: hits and
   misses, expiry through the injected clock, capacity eviction, dropping an
   account, digest separation of username and password, and TTL 0. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "auth-cache.h"

#define PW(s) (s), (sizeof(s) - 1)
#define T0 1000000 /* an arbitrary monotonic start, in ms */

static void test_hit(void **state ATTR_UNUSED)
{
	struct auth_cache *cache = auth_cache_create(16, 60);
	uint64_t id = 0, version = 0;

	assert_false(auth_cache_lookup(cache, "alice@example.org", PW("secret"),
				       T0, &id, &version));
	auth_cache_insert(cache, "alice@example.org", PW("secret"), 42, 7, T0);
	assert_int_equal(auth_cache_count(cache), 1);
	assert_true(auth_cache_lookup(cache, "alice@example.org", PW("secret"),
				      T0 + 1000, &id, &version));
	assert_int_equal(id, 42);
	assert_int_equal(version, 7);
	auth_cache_destroy(&cache);
	assert_null(cache);
}

static void test_miss_other_password(void **state ATTR_UNUSED)
{
	struct auth_cache *cache = auth_cache_create(16, 60);
	uint64_t id = 0, version = 0;

	auth_cache_insert(cache, "alice@example.org", PW("secret"), 42, 7, T0);
	assert_false(auth_cache_lookup(cache, "alice@example.org", PW("Secret"),
				       T0, &id, &version));
	assert_false(auth_cache_lookup(cache, "alice@example.org", PW(""), T0,
				       &id, &version));
	assert_int_equal(id, 0);
	auth_cache_destroy(&cache);
}

static void test_miss_other_user(void **state ATTR_UNUSED)
{
	struct auth_cache *cache = auth_cache_create(16, 60);
	uint64_t id = 0, version = 0;

	auth_cache_insert(cache, "alice@example.org", PW("secret"), 42, 7, T0);
	assert_false(auth_cache_lookup(cache, "bob@example.org", PW("secret"),
				       T0, &id, &version));
	assert_false(auth_cache_lookup(cache, "alice@example.net", PW("secret"),
				       T0, &id, &version));
	auth_cache_destroy(&cache);
}

static void test_expiry(void **state ATTR_UNUSED)
{
	struct auth_cache *cache = auth_cache_create(16, 30);
	uint64_t id = 0, version = 0;

	auth_cache_insert(cache, "alice@example.org", PW("secret"), 42, 7, T0);
	assert_true(auth_cache_lookup(cache, "alice@example.org", PW("secret"),
				      T0 + 29999, &id, &version));
	assert_false(auth_cache_lookup(cache, "alice@example.org", PW("secret"),
				       T0 + 30000, &id, &version));
	/* The expired entry was removed, not merely hidden. */
	assert_int_equal(auth_cache_count(cache), 0);
	/* A fresh insert renews the lifetime. */
	auth_cache_insert(cache, "alice@example.org", PW("secret"), 42, 7,
			  T0 + 40000);
	assert_true(auth_cache_lookup(cache, "alice@example.org", PW("secret"),
				      T0 + 60000, &id, &version));
	auth_cache_destroy(&cache);
}

static void test_reinsert_updates(void **state ATTR_UNUSED)
{
	struct auth_cache *cache = auth_cache_create(16, 60);
	uint64_t id = 0, version = 0;

	auth_cache_insert(cache, "alice@example.org", PW("secret"), 42, 7, T0);
	auth_cache_insert(cache, "alice@example.org", PW("secret"), 42, 8, T0);
	assert_int_equal(auth_cache_count(cache), 1);
	assert_true(auth_cache_lookup(cache, "alice@example.org", PW("secret"),
				      T0, &id, &version));
	assert_int_equal(version, 8);
	auth_cache_destroy(&cache);
}

static void test_capacity_eviction(void **state ATTR_UNUSED)
{
	struct auth_cache *cache = auth_cache_create(4, 60);
	uint64_t id = 0, version = 0;
	char user[32];

	/* Entry i expires at T0 + i*1000 + 60s; entry 2 is inserted first
	   in time order but entry 0 is the closest to expiry. */
	for (unsigned int i = 0; i < 4; i++) {
		snprintf(user, sizeof(user), "user%u@example.org", i);
		auth_cache_insert(cache, user, PW("pw"), i + 1, 1,
				  T0 + i * 1000);
	}
	assert_int_equal(auth_cache_count(cache), 4);
	auth_cache_insert(cache, "new@example.org", PW("pw"), 99, 1, T0 + 5000);
	assert_int_equal(auth_cache_count(cache), 4);
	assert_false(auth_cache_lookup(cache, "user0@example.org", PW("pw"),
				       T0 + 5000, &id, &version));
	for (unsigned int i = 1; i < 4; i++) {
		snprintf(user, sizeof(user), "user%u@example.org", i);
		assert_true(auth_cache_lookup(cache, user, PW("pw"), T0 + 5000,
					      &id, &version));
		assert_int_equal(id, i + 1);
	}
	assert_true(auth_cache_lookup(cache, "new@example.org", PW("pw"),
				      T0 + 5000, &id, &version));
	assert_int_equal(id, 99);
	auth_cache_destroy(&cache);
}

static void test_many_entries(void **state ATTR_UNUSED)
{
	/* Enough entries to put several in each bucket chain and to cycle
	   the free list through evictions. */
	struct auth_cache *cache = auth_cache_create(64, 60);
	uint64_t id = 0, version = 0;
	char user[32];

	for (unsigned int i = 0; i < 200; i++) {
		snprintf(user, sizeof(user), "u%u@example.org", i);
		auth_cache_insert(cache, user, PW("pw"), i, 1, T0 + i);
	}
	assert_int_equal(auth_cache_count(cache), 64);
	for (unsigned int i = 0; i < 200; i++) {
		snprintf(user, sizeof(user), "u%u@example.org", i);
		assert_int_equal(auth_cache_lookup(cache, user, PW("pw"),
						   T0 + 200, &id, &version),
				 i >= 136);
	}
	auth_cache_destroy(&cache);
}

static void test_drop_account(void **state ATTR_UNUSED)
{
	struct auth_cache *cache = auth_cache_create(16, 60);
	uint64_t id = 0, version = 0;

	auth_cache_insert(cache, "alice@example.org", PW("secret"), 42, 7, T0);
	auth_cache_insert(cache, "alice@example.org", PW("app-pw"), 42, 7, T0);
	auth_cache_insert(cache, "bob@example.org", PW("secret"), 43, 1, T0);
	assert_int_equal(auth_cache_drop_account(cache, 42), 2);
	assert_int_equal(auth_cache_count(cache), 1);
	assert_false(auth_cache_lookup(cache, "alice@example.org", PW("secret"),
				       T0, &id, &version));
	assert_false(auth_cache_lookup(cache, "alice@example.org", PW("app-pw"),
				       T0, &id, &version));
	assert_true(auth_cache_lookup(cache, "bob@example.org", PW("secret"),
				      T0, &id, &version));
	assert_int_equal(id, 43);
	assert_int_equal(auth_cache_drop_account(cache, 42), 0);
	auth_cache_destroy(&cache);
}

static void test_remove(void **state ATTR_UNUSED)
{
	struct auth_cache *cache = auth_cache_create(16, 60);
	uint64_t id = 0, version = 0;

	auth_cache_insert(cache, "alice@example.org", PW("secret"), 42, 7, T0);
	auth_cache_insert(cache, "alice@example.org", PW("other"), 42, 7, T0);
	auth_cache_remove(cache, "alice@example.org", PW("secret"));
	auth_cache_remove(cache, "alice@example.org", PW("never-there"));
	assert_int_equal(auth_cache_count(cache), 1);
	assert_false(auth_cache_lookup(cache, "alice@example.org", PW("secret"),
				       T0, &id, &version));
	assert_true(auth_cache_lookup(cache, "alice@example.org", PW("other"),
				      T0, &id, &version));
	auth_cache_destroy(&cache);
}

static void test_prefix_passwords(void **state ATTR_UNUSED)
{
	struct auth_cache *cache = auth_cache_create(16, 60);
	uint64_t id = 0, version = 0;

	auth_cache_insert(cache, "alice@example.org", PW("secret"), 42, 7, T0);
	/* A prefix and an extension of the cached password both miss. */
	assert_false(auth_cache_lookup(cache, "alice@example.org", PW("secre"),
				       T0, &id, &version));
	assert_false(auth_cache_lookup(cache, "alice@example.org",
				       PW("secret1"), T0, &id, &version));
	/* Bytes after the length are not looked at. */
	assert_true(auth_cache_lookup(cache, "alice@example.org", "secret1", 6,
				      T0, &id, &version));
	/* Moving bytes across the username/password boundary misses. */
	auth_cache_insert(cache, "ab", PW("c"), 1, 1, T0);
	assert_false(
		auth_cache_lookup(cache, "a", PW("bc"), T0, &id, &version));
	assert_false(
		auth_cache_lookup(cache, "abc", PW(""), T0, &id, &version));
	assert_true(auth_cache_lookup(cache, "ab", PW("c"), T0, &id, &version));
	assert_int_equal(id, 1);
	auth_cache_destroy(&cache);
}

static void test_binary_password(void **state ATTR_UNUSED)
{
	struct auth_cache *cache = auth_cache_create(16, 60);
	static const uint8_t pw1[] = { 0x00, 0x01, 0xff };
	static const uint8_t pw2[] = { 0x00, 0x01, 0xfe };
	uint64_t id = 0, version = 0;

	auth_cache_insert(cache, "u@example.org", pw1, sizeof(pw1), 5, 1, T0);
	assert_false(auth_cache_lookup(cache, "u@example.org", pw2, sizeof(pw2),
				       T0, &id, &version));
	assert_true(auth_cache_lookup(cache, "u@example.org", pw1, sizeof(pw1),
				      T0, &id, &version));
	auth_cache_destroy(&cache);
}

static void test_separate_keys(void **state ATTR_UNUSED)
{
	/* Two caches (two processes) use different keys: an entry does not
	   leak from one to the other, and each works on its own. */
	struct auth_cache *a = auth_cache_create(16, 60);
	struct auth_cache *b = auth_cache_create(16, 60);
	uint64_t id = 0, version = 0;

	auth_cache_insert(a, "alice@example.org", PW("secret"), 42, 7, T0);
	assert_false(auth_cache_lookup(b, "alice@example.org", PW("secret"), T0,
				       &id, &version));
	assert_true(auth_cache_lookup(a, "alice@example.org", PW("secret"), T0,
				      &id, &version));
	auth_cache_destroy(&a);
	auth_cache_destroy(&b);
}

static void test_ttl_zero_disables(void **state ATTR_UNUSED)
{
	struct auth_cache *cache = auth_cache_create(16, 0);
	uint64_t id = 0, version = 0;

	auth_cache_insert(cache, "alice@example.org", PW("secret"), 42, 7, T0);
	assert_int_equal(auth_cache_count(cache), 0);
	assert_false(auth_cache_lookup(cache, "alice@example.org", PW("secret"),
				       T0, &id, &version));
	auth_cache_destroy(&cache);
}

static void test_destroy_null(void **state ATTR_UNUSED)
{
	struct auth_cache *cache = NULL;

	auth_cache_destroy(&cache);
	assert_null(cache);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit),
		cmocka_unit_test(test_miss_other_password),
		cmocka_unit_test(test_miss_other_user),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_reinsert_updates),
		cmocka_unit_test(test_capacity_eviction),
		cmocka_unit_test(test_many_entries),
		cmocka_unit_test(test_drop_account),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_prefix_passwords),
		cmocka_unit_test(test_binary_password),
		cmocka_unit_test(test_separate_keys),
		cmocka_unit_test(test_ttl_zero_disables),
		cmocka_unit_test(test_destroy_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
