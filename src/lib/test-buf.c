/* test-buf.c - unit tests of buf.c: appends and printf across growth, the
   NUL after the content in every state (fresh, grown, consumed, compacted,
   truncated, reset), buf_consume() with later reserve compaction,
   reserve/commit, and buf_free_secure(). */

#include "lib.h"
#include "buf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* The invariants every buf keeps. */
static void assert_buf_ok(const struct buf *buf)
{
	struct span s = buf_span(buf);

	assert_int_equal(s.len, buf->used);
	assert_int_equal(buf_cstr(buf)[buf->used], '\0');
	if (buf->data != NULL)
		assert_true(buf->start + buf->used <= buf->alloc);
}

static void test_buf_empty(void **state)
{
	struct buf buf = BUF_INIT;

	assert_string_equal(buf_cstr(&buf), "");
	assert_int_equal(buf_span(&buf).len, 0);
	assert_non_null(buf_span(&buf).p);
	buf_reset(&buf);
	buf_free(&buf);
	buf_free(&buf); /* twice is fine */

	/* appending nothing to a fresh buf still gives a valid string */
	buf_append(&buf, "", 0);
	assert_buf_ok(&buf);
	assert_string_equal(buf_cstr(&buf), "");
	buf_free(&buf);
	buf_append_str(&buf, "");
	assert_buf_ok(&buf);
	buf_free(&buf);
	buf_printf(&buf, "%s", "");
	assert_buf_ok(&buf);
	assert_string_equal(buf_cstr(&buf), "");
	buf_free(&buf);
	assert_null(buf.data);

	/* a first reserve without a commit leaves an empty string, not
	   uninitialised memory (a reader whose read() returned EAGAIN) */
	(void)buf_reserve(&buf, 4096);
	assert_int_equal(buf.used, 0);
	assert_buf_ok(&buf);
	assert_string_equal(buf_cstr(&buf), "");
	buf_free(&buf);
}

static void test_buf_init(void **state)
{
	struct buf buf;

	buf_init(&buf, 0);
	assert_null(buf.data);
	buf_append_str(&buf, "x");
	assert_string_equal(buf_cstr(&buf), "x");
	buf_free(&buf);

	buf_init(&buf, 10);
	assert_non_null(buf.data);
	assert_int_equal(buf.alloc, 10);
	assert_string_equal(buf_cstr(&buf), "");
	buf_append(&buf, "0123456789", 10);
	/* exactly initial_size: no reallocation needed, NUL still there */
	assert_int_equal(buf.alloc, 10);
	assert_buf_ok(&buf);
	assert_string_equal(buf_cstr(&buf), "0123456789");
	buf_append_c(&buf, 'x');
	assert_true(buf.alloc > 10);
	assert_string_equal(buf_cstr(&buf), "0123456789x");
	buf_free(&buf);
}

static void test_buf_append_growth(void **state)
{
	struct buf buf = BUF_INIT;
	char expected[10001];

	for (size_t i = 0; i < 10000; i++) {
		buf_append_c(&buf, (uint8_t)('a' + i % 26));
		expected[i] = (char)('a' + i % 26);
		if (i % 997 == 0)
			assert_buf_ok(&buf);
	}
	expected[10000] = '\0';
	assert_int_equal(buf.used, 10000);
	assert_string_equal(buf_cstr(&buf), expected);
	/* appending the buf's own kind of data: spans and binary */
	buf_reset(&buf);
	buf_append_span(&buf, SPAN_LIT("a\0b"));
	assert_int_equal(buf.used, 3);
	assert_memory_equal(buf.data, "a\0b\0", 4);
	buf_free(&buf);
}

static void test_buf_printf(void **state)
{
	struct buf buf = BUF_INIT;
	char big[5000];

	buf_printf(&buf, "%d-%s", 42, "x");
	buf_printf(&buf, "|%05u|", 7u);
	assert_string_equal(buf_cstr(&buf), "42-x|00007|");
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* a printf larger than the current allocation */
	buf_printf(&buf, "<%s>", big);
	assert_int_equal(buf.used, 11 + sizeof(big) + 1);
	assert_int_equal(buf_cstr(&buf)[11], '<');
	assert_int_equal(buf_cstr(&buf)[buf.used - 1], '>');
	assert_buf_ok(&buf);
	buf_free(&buf);
}

static void test_buf_reserve_commit(void **state)
{
	struct buf buf = BUF_INIT;
	uint8_t *p;

	buf_append_str(&buf, "head:");
	p = buf_reserve(&buf, 100);
	assert_true(buf.alloc - buf.start - buf.used >= 100);
	memcpy(p, "body", 4);
	/* nothing counts until it is committed (the written bytes cover the
	   NUL, so only the span is meaningful here) */
	assert_int_equal(buf.used, 5);
	assert_true(span_eq(buf_span(&buf), SPAN_LIT("head:")));
	buf_commit(&buf, 4);
	assert_string_equal(buf_cstr(&buf), "head:body");
	buf_commit(&buf, 0);
	assert_string_equal(buf_cstr(&buf), "head:body");
	buf_free(&buf);
}

static void test_buf_consume(void **state)
{
	struct buf buf = BUF_INIT;

	buf_append_str(&buf, "line1\r\nline2\r\n");
	buf_consume(&buf, 7);
	assert_string_equal(buf_cstr(&buf), "line2\r\n");
	assert_int_equal(buf.used, 7);
	assert_buf_ok(&buf);
	buf_consume(&buf, 0);
	assert_string_equal(buf_cstr(&buf), "line2\r\n");
	/* consuming everything rewinds */
	buf_consume(&buf, 7);
	assert_int_equal(buf.used, 0);
	assert_int_equal(buf.start, 0);
	assert_string_equal(buf_cstr(&buf), "");
	buf_free(&buf);
}

static void test_buf_consume_compaction(void **state)
{
	/* an input buffer: read, parse part, read more. The consumed
	   prefix is reclaimed instead of growing forever. */
	struct buf buf = BUF_INIT;
	size_t alloc;
	uint8_t *p;

	buf_append(&buf, "0123456789", 10);
	p = buf_reserve(&buf, 200);
	memset(p, 'x', 200);
	buf_commit(&buf, 200);
	alloc = buf.alloc;
	buf_consume(&buf, 205);
	assert_true(buf.start > 0);
	assert_int_equal(buf.used, 5);
	assert_string_equal(buf_cstr(&buf), "xxxxx");

	/* room only once the prefix is dropped: compacts, no growth */
	p = buf_reserve(&buf, alloc - 5);
	assert_int_equal(buf.start, 0);
	assert_int_equal(buf.alloc, alloc);
	/* the content moved intact and is still NUL-terminated */
	assert_string_equal(buf_cstr(&buf), "xxxxx");
	assert_buf_ok(&buf);
	memset(p, 'y', alloc - 5);
	buf_commit(&buf, alloc - 5);
	assert_int_equal(buf.used, alloc);
	assert_buf_ok(&buf);

	/* many rounds of append/consume stay bounded */
	buf_reset(&buf);
	for (unsigned int i = 0; i < 10000; i++) {
		buf_append_str(&buf, "abcdefgh");
		buf_consume(&buf, i % 3 == 2 ? buf.used : 7);
		assert_buf_ok(&buf);
	}
	assert_true(buf.alloc <= 2 * alloc);
	buf_free(&buf);
}

static void test_buf_truncate(void **state)
{
	struct buf buf = BUF_INIT;

	buf_append_str(&buf, "hello world");
	buf_truncate(&buf, 5);
	assert_string_equal(buf_cstr(&buf), "hello");
	buf_truncate(&buf, 5);
	assert_string_equal(buf_cstr(&buf), "hello");
	/* truncate is relative to the content, after a consume */
	buf_consume(&buf, 1);
	buf_truncate(&buf, 3);
	assert_string_equal(buf_cstr(&buf), "ell");
	buf_truncate(&buf, 0);
	assert_string_equal(buf_cstr(&buf), "");
	assert_buf_ok(&buf);
	buf_append_str(&buf, "z");
	assert_buf_ok(&buf);
	buf_free(&buf);

	/* truncating a fresh buf to 0 is a no-op */
	buf_truncate(&buf, 0);
	assert_string_equal(buf_cstr(&buf), "");
}

static void test_buf_reset(void **state)
{
	struct buf buf = BUF_INIT;
	size_t alloc;

	buf_append_str(&buf, "some content");
	buf_consume(&buf, 5);
	alloc = buf.alloc;
	buf_reset(&buf);
	assert_int_equal(buf.used, 0);
	assert_int_equal(buf.start, 0);
	assert_int_equal(buf.alloc, alloc);
	assert_string_equal(buf_cstr(&buf), "");
	buf_append_str(&buf, "new");
	assert_string_equal(buf_cstr(&buf), "new");
	buf_free(&buf);
}

static void test_buf_free_secure(void **state)
{
	struct buf buf = BUF_INIT;

	buf_free_secure(&buf); /* empty is fine */
	buf_append_str(&buf, "correct horse battery staple");
	buf_consume(&buf, 8);
	buf_free_secure(&buf);
	assert_null(buf.data);
	assert_int_equal(buf.used, 0);
	assert_int_equal(buf.alloc, 0);
	assert_int_equal(buf.start, 0);
	/* reusable afterwards */
	buf_append_str(&buf, "x");
	assert_string_equal(buf_cstr(&buf), "x");
	buf_free(&buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_empty),
		cmocka_unit_test(test_buf_init),
		cmocka_unit_test(test_buf_append_growth),
		cmocka_unit_test(test_buf_printf),
		cmocka_unit_test(test_buf_reserve_commit),
		cmocka_unit_test(test_buf_consume),
		cmocka_unit_test(test_buf_consume_compaction),
		cmocka_unit_test(test_buf_truncate),
		cmocka_unit_test(test_buf_reset),
		cmocka_unit_test(test_buf_free_secure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
