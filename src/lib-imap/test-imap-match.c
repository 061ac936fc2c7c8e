/* test-imap-match.c - unit tests for LIST patterns (RFC 9051 6.3.9): "*"
   crosses levels, "%" does not, INBOX is case-insensitive only as the
   first level, wildcard runs collapse, and a pathological pattern
   against a long name finishes at once (no backtracking blow-up). */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "pool.h"
#include "imap-match.h"

#include <time.h>

static const struct {
	const char *pattern, *name;
	bool match;
} cases[] = {
	{ "*", "INBOX", true },
	{ "*", "a/b/c", true },
	{ "%", "a", true },
	{ "%", "a/b", false },
	{ "%/%", "a/b", true },
	{ "%/%", "a/b/c", false },
	{ "a/%", "a/b", true },
	{ "a/%", "a", false },
	{ "a/*", "a/b/c", true },
	{ "a*", "a", true },
	{ "a*", "abc/d", true },
	{ "a%", "abc/d", false },
	{ "a%c", "abc", true },
	{ "a%c", "a/c", false },
	{ "a*c", "a/c", true },
	{ "", "", true },
	{ "", "a", false },
	{ "Sent", "Sent", true },
	{ "sent", "Sent", false },
	{ "inbox", "INBOX", true },
	{ "InBoX/%", "INBOX/x", true },
	{ "inbox/X", "INBOX/x", false },
	{ "i*", "INBOX", true },
	{ "inbox*", "INBOX2", false },
	{ "INBOX*", "INBOX2", true },
	{ "%%%", "abc", true },
	{ "*%*%", "a/b", true },
	{ "%*", "a/b", true },
	{ "*/*/*", "a/b", false },
	{ "*/*", "a/b/c", true },
	{ "Entwürfe", "Entwürfe", true },
	{ "Entw%", "Entwürfe", true },
	{ "abcd", "abc", false },
	{ "a**b", "ab", true },
};

static void test_table(void **state ATTR_UNUSED)
{
	pool_t pool = pool_create("test", 1024);
	unsigned int i;

	for (i = 0; i < N_ELEMENTS(cases); i++) {
		struct imap_match *m =
			imap_match_init(pool, cases[i].pattern, '/');

		if (imap_match(m, cases[i].name) != cases[i].match)
			fail_msg("pattern '%s' name '%s': expected %d",
				 cases[i].pattern, cases[i].name,
				 cases[i].match);
		/* The compiled pattern is reusable. */
		assert_int_equal(imap_match(m, cases[i].name), cases[i].match);
	}
	pool_unref(&pool);
}

/* "*a*a*a...*b" against "aaaa...a" is exponential for a backtracking
   matcher; the automaton is pattern length times name length. */
static void test_pathological(void **state ATTR_UNUSED)
{
	pool_t pool = pool_create("test", 1024);
	char pattern[2050], name[1025];
	unsigned int i;
	struct timespec t0, t1;

	for (i = 0; i < 1024; i += 2) {
		pattern[i] = '*';
		pattern[i + 1] = 'a';
	}
	pattern[1024] = 'b';
	pattern[1025] = '\0';
	memset(name, 'a', 1024);
	name[1024] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct imap_match *m = imap_match_init(pool, pattern, '/');
	assert_false(imap_match(m, name));
	name[1023] = 'b';
	assert_true(imap_match(m, name));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* Two names of 1024 octets, 1026 positions (after the pattern's
	   own "*a" pairs): the cost is counted. */
	assert_true(imap_match_steps(m) > 1024 * 1024);
	assert_true(imap_match_steps(m) <= 2 * 1024 * 1026);
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_pathological),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
