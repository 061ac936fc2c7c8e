/* test-vault-throttle.c - the shared failed-login account: the per-IP
   limit refuses even a correct login from the address and nobody else;
   the window ends it; IPv6 counts per /64; the per-user limit refuses
   only addresses that failed themselves; a flood of fresh addresses
   stays in the fixed table and the hot address is still refused; the
   host's own loopback addresses are exempt when asked. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "vault-throttle.h"

#include <sodium.h>
#include <stdio.h>

static void test_per_ip(void **state ATTR_UNUSED)
{
	const struct vault_throttle_settings set = {
		.max_per_ip = 3,
		.max_per_user = 100,
		.window_msecs = 1000,
	};
	struct vault_throttle *t = vault_throttle_create(&set);
	const char *reason = NULL;
	uint64_t now = 5000;

	for (unsigned int i = 0; i < 3; i++) {
		assert_false(vault_throttle_blocked(t, "192.0.2.3", "alice",
						    now, &reason));
		vault_throttle_failure(t, "192.0.2.3", "alice", now);
	}
	/* Whatever the name: the address is out of guesses. */
	assert_true(vault_throttle_blocked(t, "192.0.2.3", "alice", now + 1,
					   &reason));
	assert_string_equal(reason, "too_many_failures");
	assert_true(vault_throttle_blocked(t, "192.0.2.3", "bob", now + 1,
					   &reason));
	assert_true(
		vault_throttle_blocked(t, "192.0.2.3", NULL, now + 1, &reason));
	/* Another address is not affected, for the same name either. */
	assert_false(vault_throttle_blocked(t, "192.0.2.4", "alice", now + 1,
					    &reason));
	/* The window counts from the first failure. */
	assert_true(vault_throttle_blocked(t, "192.0.2.3", "alice", now + 999,
					   &reason));
	assert_false(vault_throttle_blocked(t, "192.0.2.3", "alice", now + 1000,
					    &reason));
	vault_throttle_destroy(&t);
	assert_null(t);
	vault_throttle_destroy(&t);
}

static void test_ipv6_per_64(void **state ATTR_UNUSED)
{
	const struct vault_throttle_settings set = {
		.max_per_ip = 2,
		.max_per_user = 100,
		.window_msecs = 1000,
	};
	struct vault_throttle *t = vault_throttle_create(&set);
	const char *reason;

	/* Two hosts' worth of interface ids are one /64. */
	vault_throttle_failure(t, "2001:db8:0:1::1", "a", 0);
	vault_throttle_failure(t, "2001:db8:0:1:ffff::2", "b", 0);
	assert_true(vault_throttle_blocked(t, "2001:db8:0:1::77", NULL, 1,
					   &reason));
	assert_false(
		vault_throttle_blocked(t, "2001:db8:0:2::1", NULL, 1, &reason));
	/* An IPv4-mapped address is the IPv4 address. */
	vault_throttle_failure(t, "198.51.100.9", "a", 0);
	vault_throttle_failure(t, "::ffff:198.51.100.9", "a", 0);
	assert_true(
		vault_throttle_blocked(t, "198.51.100.9", NULL, 1, &reason));
	vault_throttle_destroy(&t);
}

static void test_per_user_spread(void **state ATTR_UNUSED)
{
	const struct vault_throttle_settings set = {
		.max_per_ip = 10,
		.max_per_user = 5,
		.window_msecs = 1000,
	};
	struct vault_throttle *t = vault_throttle_create(&set);
	const char *reason = NULL;
	char ip[64];

	/* A run spread over many addresses, one guess each. */
	for (unsigned int i = 0; i < 5; i++) {
		snprintf(ip, sizeof(ip), "203.0.113.%u", i + 1);
		assert_false(
			vault_throttle_blocked(t, ip, "alice", 0, &reason));
		vault_throttle_failure(t, ip, "alice", 0);
	}
	/* Those addresses get no second guess at alice ... */
	assert_true(
		vault_throttle_blocked(t, "203.0.113.1", "alice", 1, &reason));
	assert_string_equal(reason, "too_many_user_failures");
	/* ... but may still try other names (their own limit is not
	   reached), and the owner's clean address gets in. */
	assert_false(
		vault_throttle_blocked(t, "203.0.113.1", "bob", 1, &reason));
	assert_false(
		vault_throttle_blocked(t, "192.0.2.50", "alice", 1, &reason));
	vault_throttle_destroy(&t);
}

static void test_flood_bounded(void **state ATTR_UNUSED)
{
	const struct vault_throttle_settings set = {
		.max_per_ip = 3,
		.max_per_user = 1000000,
		.window_msecs = 60000,
	};
	struct vault_throttle *t = vault_throttle_create(&set);
	const char *reason;
	char ip[64];

	for (unsigned int i = 0; i < 3; i++)
		vault_throttle_failure(t, "192.0.2.66", "x", 0);
	/* Fresh addresses, each failing once, far more than the table
	   holds: memory stays fixed; the oldest entries are reused. */
	for (unsigned int i = 0; i < 4 * VAULT_THROTTLE_SLOTS; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 0xff,
			 (i >> 8) & 0xff, i & 0xff);
		vault_throttle_failure(t, ip, NULL, 10);
	}
	/* Refreshing a hot address keeps it: failures go on counting. */
	vault_throttle_failure(t, "192.0.2.77", NULL, 20);
	vault_throttle_failure(t, "192.0.2.77", NULL, 20);
	vault_throttle_failure(t, "192.0.2.77", NULL, 20);
	assert_true(vault_throttle_blocked(t, "192.0.2.77", NULL, 21, &reason));
	assert_false(
		vault_throttle_blocked(t, "192.0.2.78", NULL, 21, &reason));
	vault_throttle_destroy(&t);
}

static void test_localhost_exempt(void **state ATTR_UNUSED)
{
	struct vault_throttle_settings set = {
		.max_per_ip = 1,
		.max_per_user = 1,
		.window_msecs = 1000,
		.exempt_localhost = true,
	};
	struct vault_throttle *t = vault_throttle_create(&set);
	const char *reason;

	/* A webmail on this host: neither counted nor refused ... */
	for (unsigned int i = 0; i < 5; i++) {
		vault_throttle_failure(t, "127.0.0.1", "alice", 0);
		vault_throttle_failure(t, "::1", "alice", 0);
		vault_throttle_failure(t, "::ffff:127.0.0.1", "alice", 0);
	}
	assert_false(
		vault_throttle_blocked(t, "127.0.0.1", "alice", 1, &reason));
	assert_false(vault_throttle_blocked(t, "::1", "alice", 1, &reason));
	/* ... its failures do not count against the user elsewhere ... */
	vault_throttle_failure(t, "192.0.2.1", "bob", 0);
	assert_true(vault_throttle_blocked(t, "192.0.2.1", "x", 1, &reason));
	/* ... and the rest of 127/8 and ::/64 is counted as usual. */
	vault_throttle_failure(t, "127.0.0.3", NULL, 0);
	assert_true(vault_throttle_blocked(t, "127.0.0.3", NULL, 1, &reason));
	vault_throttle_failure(t, "::2", NULL, 0);
	assert_true(vault_throttle_blocked(t, "::3", NULL, 1, &reason));
	vault_throttle_destroy(&t);

	/* count: like any other address. */
	set.exempt_localhost = false;
	t = vault_throttle_create(&set);
	vault_throttle_failure(t, "127.0.0.1", NULL, 0);
	assert_true(vault_throttle_blocked(t, "127.0.0.1", NULL, 1, &reason));
	vault_throttle_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_ip),
		cmocka_unit_test(test_ipv6_per_64),
		cmocka_unit_test(test_per_user_spread),
		cmocka_unit_test(test_flood_bounded),
		cmocka_unit_test(test_localhost_exempt),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
