/* test-imap-seqset.c - unit tests for sequence sets: a table of valid and
   invalid sets (RFC 9051 9 sequence-set: nz-number below 2^32, "*",
   ranges in either order, "$" alone per RFC 5182 2.1), resolving "*"
   with sorting and merging (overlaps, adjacency, 4294967295 without
   wrapping), counting, membership, iteration and writing. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "imap-seqset.h"

static const struct {
	const char *input;
	uint32_t star;
	const char *resolved; /* NULL: parse error; "-": resolve error */
	uint64_t count;
} cases[] = {
	{ "1", 10, "1", 1 },
	{ "1:3", 10, "1:3", 3 },
	{ "3:1", 10, "1:3", 3 },
	{ "2,4:7,9,12:*", 15, "2,4:7,9,12:15", 10 },
	/* RFC 9051 9 seq-range's example: *:4,5:7 with 10 messages. */
	{ "*:4,5:7", 10, "4:10", 7 },
	{ "*", 5, "5", 1 },
	{ "1:*", 0, "-", 0 },
	{ "7", 0, "7", 1 },
	{ "5,1,3,2,4", 9, "1:5", 5 },
	{ "1:3,3:5,10:12,6", 20, "1:6,10:12", 9 },
	{ "4294967295", 1, "4294967295", 1 },
	{ "1:4294967295,4294967295", 1, "1:4294967295", 4294967295ull },
	{ "4294967294:4294967295,1", 1, "1,4294967294:4294967295", 3 },
	{ "4294967296", 1, NULL, 0 },
	{ "99999999999999999999", 1, NULL, 0 },
	{ "0", 1, NULL, 0 },
	{ "01", 1, NULL, 0 },
	{ "1:0", 1, NULL, 0 },
	{ "", 1, NULL, 0 },
	{ ",", 1, NULL, 0 },
	{ "1,", 1, NULL, 0 },
	{ ",1", 1, NULL, 0 },
	{ "1::2", 1, NULL, 0 },
	{ "1:2:3", 1, NULL, 0 },
	{ "1 2", 1, NULL, 0 },
	{ "-1", 1, NULL, 0 },
	{ "**", 1, NULL, 0 },
	{ "$,1", 1, NULL, 0 },
	{ "1,$", 1, NULL, 0 },
	{ "a", 1, NULL, 0 },
};

static void test_table(void **state)
{
	pool_t pool = pool_create("test", 1024);

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		struct imap_seqset set;
		struct imap_seq_range *ranges;
		unsigned int count;
		const char *error = NULL;
		struct buf out = BUF_INIT;
		int ret = imap_seqset_parse(pool, cases[i].input, true, &set,
					    &error);

		if (cases[i].resolved == NULL) {
			if (ret != -1)
				print_error("case %u: %s parsed\n", i,
					    cases[i].input);
			assert_int_equal(ret, -1);
			assert_non_null(error);
			continue;
		}
		assert_int_equal(ret, 0);
		assert_false(set.searchres);
		ret = imap_seqset_resolve(&set, cases[i].star, pool, &ranges,
					  &count);
		if (strcmp(cases[i].resolved, "-") == 0) {
			assert_int_equal(ret, -1);
			continue;
		}
		assert_int_equal(ret, 0);
		imap_seqset_write(&out, ranges, count);
		if (strcmp(buf_cstr(&out), cases[i].resolved) != 0)
			print_error("case %u: %s -> %s\n", i, cases[i].input,
				    buf_cstr(&out));
		assert_string_equal(buf_cstr(&out), cases[i].resolved);
		assert_int_equal(imap_seqset_count(ranges, count),
				 cases[i].count);
		buf_free(&out);
	}
	pool_unref(&pool);
}

static void test_searchres(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct imap_seqset set;
	const char *error;

	assert_int_equal(imap_seqset_parse(pool, "$", true, &set, &error), 0);
	assert_true(set.searchres);
	assert_int_equal(set.count, 0);
	assert_int_equal(imap_seqset_parse(pool, "$", false, &set, &error), -1);
	pool_unref(&pool);
}

static void test_iter_contains(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct imap_seqset set;
	struct imap_seq_range *ranges;
	struct imap_seqset_iter iter;
	unsigned int count;
	const char *error;
	struct buf out = BUF_INIT;
	uint32_t n;

	assert_int_equal(imap_seqset_parse(pool, "9,2:4,*:20,4294967295", false,
					   &set, &error),
			 0);
	/* Unresolved ranges write back as sent. */
	imap_seqset_write(&out, set.ranges, set.count);
	assert_string_equal(buf_cstr(&out), "9,2:4,*:20,4294967295");
	buf_reset(&out);
	assert_int_equal(imap_seqset_resolve(&set, 21, pool, &ranges, &count),
			 0);
	imap_seqset_iter_init(&iter, ranges, count);
	while (imap_seqset_iter_next(&iter, &n))
		buf_printf(&out, "%u ", n);
	assert_string_equal(buf_cstr(&out), "2 3 4 9 20 21 4294967295 ");
	assert_false(imap_seqset_iter_next(&iter, &n));
	for (uint32_t i = 0; i < 30; i++) {
		bool in = (i >= 2 && i <= 4) || i == 9 || i == 20 || i == 21;

		assert_int_equal(imap_seqset_contains(ranges, count, i), in);
	}
	assert_true(imap_seqset_contains(ranges, count, 4294967295u));
	assert_false(imap_seqset_contains(ranges, count, 4294967294u));
	imap_seqset_iter_init(&iter, NULL, 0);
	assert_false(imap_seqset_iter_next(&iter, &n));
	buf_free(&out);
	pool_unref(&pool);
}

static const struct {
	const char *input;
	uint32_t max;
	bool dropped;
	const char *clamped; /* "" = nothing left */
} clamp_cases[] = {
	{ "1:4294967295", 10, true, "1:10" },
	{ "1:10", 10, false, "1:10" },
	{ "2,5:7,20:30,40", 6, true, "2,5:6" },
	{ "2,5:7,20:30,40", 1, true, "" },
	{ "2,5:7,20:30,40", 4294967295u, false, "2,5:7,20:30,40" },
};

static void test_clamp(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct buf out = BUF_INIT;

	for (unsigned int i = 0; i < N_ELEMENTS(clamp_cases); i++) {
		struct imap_seqset set;
		struct imap_seq_range *ranges;
		unsigned int count;
		const char *error;

		assert_int_equal(imap_seqset_parse(pool, clamp_cases[i].input,
						   false, &set, &error),
				 0);
		assert_int_equal(
			imap_seqset_resolve(&set, 10, pool, &ranges, &count),
			0);
		assert_int_equal(
			imap_seqset_clamp(ranges, &count, clamp_cases[i].max),
			clamp_cases[i].dropped);
		buf_reset(&out);
		if (count > 0)
			imap_seqset_write(&out, ranges, count);
		assert_string_equal(buf_cstr(&out), clamp_cases[i].clamped);
	}
	buf_free(&out);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_searchres),
		cmocka_unit_test(test_iter_contains),
		cmocka_unit_test(test_clamp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
