/* test-pool.c - unit tests of pool.c: zeroed and 16-byte aligned memory,
   growth across blocks, large allocations, pool_clear() reuse, reference
   counting and the string helpers. ASan checks that every allocation is
   usable to its full size and that pools free everything. */

#include "lib.h"
#include "pool.h"

#include <stdio.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++) {
		if (b[i] != 0)
			return false;
	}
	return true;
}

static void test_pool_alignment_and_zero(void **state)
{
	static const size_t sizes[] = { 0,    1,    2,    3,    7,   8,
					15,   16,   17,   31,   33,  100,
					1000, 1023, 1024, 1025, 5000 };
	pool_t pool = pool_create("test", 0);

	for (unsigned int round = 0; round < 3; round++) {
		for (size_t i = 0; i < N_ELEMENTS(sizes); i++) {
			uint8_t *p = p_malloc(pool, sizes[i]);

			assert_int_equal((uintptr_t)p % 16, 0);
			assert_true(all_zero(p, sizes[i]));
			/* the whole size is usable (ASan checks) */
			memset(p, 0xa5, sizes[i]);
		}
	}
	pool_unref(&pool);
	assert_null(pool);
}

static void test_pool_growth(void **state)
{
	pool_t pool = pool_create("test", 64);
	uint8_t *ptrs[2000];

	/* far more than the first block: allocations stay distinct */
	for (size_t i = 0; i < N_ELEMENTS(ptrs); i++) {
		ptrs[i] = p_malloc(pool, 24);
		memset(ptrs[i], (int)(i & 0xff), 24);
	}
	for (size_t i = 0; i < N_ELEMENTS(ptrs); i++) {
		for (size_t j = 0; j < 24; j++)
			assert_int_equal(ptrs[i][j], i & 0xff);
	}
	/* 24 bytes round up to 32 */
	assert_int_equal(pool_used(pool), N_ELEMENTS(ptrs) * 32);
	pool_unref(&pool);
}

static void test_pool_large(void **state)
{
	pool_t pool = pool_create("test", 1024);
	uint8_t *small1, *big, *small2, *huge;

	small1 = p_malloc(pool, 10);
	big = p_malloc(pool, 100000);
	assert_true(all_zero(big, 100000));
	memset(big, 1, 100000);
	small2 = p_malloc(pool, 10);
	huge = p_malloc(pool, 8 * 1024 * 1024);
	assert_true(all_zero(huge, 8 * 1024 * 1024));
	huge[8 * 1024 * 1024 - 1] = 1;
	assert_true(small1 != small2);
	assert_true(all_zero(small1, 10));
	assert_true(all_zero(small2, 10));
	assert_int_equal(big[99999], 1);
	assert_true(pool_used(pool) >= 100000 + 8 * 1024 * 1024 + 32);
	pool_unref(&pool);
}

static void test_pool_clear(void **state)
{
	pool_t pool = pool_create("test", 4096);
	uint8_t *first, *again;

	first = p_malloc(pool, 100);
	memset(first, 0xff, 100);
	for (unsigned int i = 0; i < 100; i++)
		memset(p_malloc(pool, 1000), 0xee, 1000);
	assert_true(pool_used(pool) > 100000);

	pool_clear(pool);
	assert_int_equal(pool_used(pool), 0);
	/* the first block is reused, and handed out zeroed again */
	again = p_malloc(pool, 100);
	assert_ptr_equal(again, first);
	assert_true(all_zero(again, 100));
	/* and the pool grows again after a clear */
	for (unsigned int i = 0; i < 100; i++) {
		uint8_t *p = p_malloc(pool, 1000);

		assert_true(all_zero(p, 1000));
		memset(p, 0xdd, 1000);
	}
	pool_clear(pool);
	pool_clear(pool); /* twice in a row is fine */
	assert_true(all_zero(p_malloc(pool, 4000), 4000));
	pool_unref(&pool);
}

static void test_pool_used(void **state)
{
	static const struct {
		size_t size;
		size_t used;
	} tests[] = {
		{ 0, 16 },  { 1, 16 },  { 16, 16 },
		{ 17, 32 }, { 32, 32 }, { 100, 112 },
	};

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		pool_t pool = pool_create("test", 0);

		assert_int_equal(pool_used(pool), 0);
		p_malloc(pool, tests[i].size);
		assert_int_equal(pool_used(pool), tests[i].used);
		pool_unref(&pool);
	}
}

static void test_pool_ref(void **state)
{
	pool_t pool = pool_create("test", 0), ref;
	char *s;

	pool_ref(pool);
	ref = pool;
	s = p_strdup(pool, "still here");
	pool_unref(&ref);
	assert_null(ref);
	/* one reference left: memory is alive */
	assert_string_equal(s, "still here");
	pool_unref(&pool);
	assert_null(pool);
	pool_unref(&pool); /* NULL is fine */
}

static void test_pool_strings(void **state)
{
	pool_t pool = pool_create("test", 0);
	char big[3000];
	char *s;

	assert_null(p_strdup(pool, NULL));
	assert_string_equal(p_strdup(pool, ""), "");
	assert_string_equal(p_strdup(pool, "hello"), "hello");
	s = p_strndup(pool, "hello world", 5);
	assert_string_equal(s, "hello");
	/* p_strndup copies exactly len bytes, even past a NUL */
	s = p_strndup(pool, "a\0b", 3);
	assert_memory_equal(s, "a\0b\0", 4);
	assert_string_equal(p_strdup_printf(pool, "%s=%d", "x", 42), "x=42");
	assert_string_equal(p_strdup_printf(pool, "%s", ""), "");
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	s = p_strdup_printf(pool, "<%s>", big);
	assert_int_equal(strlen(s), sizeof(big) + 1);
	assert_int_equal(s[0], '<');
	assert_int_equal(s[sizeof(big)], '>');
	pool_unref(&pool);
}

struct item {
	uint64_t a;
	char name[20];
	long double d;
};

static void test_pool_p_new(void **state)
{
	pool_t pool = pool_create("test", 0);
	struct item *items = p_new(pool, struct item, 100);

	assert_int_equal((uintptr_t)items % _Alignof(struct item), 0);
	assert_true(all_zero(items, sizeof(*items) * 100));
	items[99].a = 1;
	items[99].d = 2.0L;
	assert_true(items[99].d == 2.0L);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_alignment_and_zero),
		cmocka_unit_test(test_pool_growth),
		cmocka_unit_test(test_pool_large),
		cmocka_unit_test(test_pool_clear),
		cmocka_unit_test(test_pool_used),
		cmocka_unit_test(test_pool_ref),
		cmocka_unit_test(test_pool_strings),
		cmocka_unit_test(test_pool_p_new),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
